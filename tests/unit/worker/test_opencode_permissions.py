"""Permission requests answered by the session's policy."""

from __future__ import annotations

import pytest

from orchestrator.worker.executors.opencode.permissions import (
    MAX_DESCRIBED,
    ONCE,
    REJECT,
    PermissionRequest,
    decide,
)

BASH = PermissionRequest("per_1", "ses_1", "bash", ("rm -rf build",))


def test_allow_grants_once_and_lets_the_task_go_on() -> None:
    decision = decide("allow", BASH)
    assert decision.reply == ONCE and not decision.failure and not decision.stop


def test_deny_refuses_and_fails_the_task() -> None:
    decision = decide("deny", BASH)
    assert decision.reply == REJECT and not decision.stop
    assert decision.failure == "denied by the session's permission policy: bash (rm -rf build)"


@pytest.mark.parametrize("policy", ["escalate", "", "ask-the-boss"])
def test_escalate_and_unknown_policies_stop_for_a_human(policy: str) -> None:
    decision = decide(policy, BASH)
    assert decision.reply == REJECT and decision.stop
    assert decision.failure == "needs a human: bash (rm -rf build)"


def test_requests_are_read_from_the_event() -> None:
    request = PermissionRequest.from_event(
        {"id": "per_2", "sessionID": "ses_9", "permission": "edit", "patterns": ["a.py", "b.py"]}
    )
    assert request == PermissionRequest("per_2", "ses_9", "edit", ("a.py", "b.py"))
    assert request.describe() == "edit (a.py; b.py)"
    assert PermissionRequest.from_event({"permission": "webfetch"}).describe() == "webfetch"


def test_a_long_command_is_cut_in_the_reason() -> None:
    request = PermissionRequest("p", "s", "bash", ("x" * 1_000,))
    assert len(request.describe()) == len("bash ()") + MAX_DESCRIBED
