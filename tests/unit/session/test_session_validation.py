"""Every creation rule: the edges that pass and the refusals, each naming its field."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from orchestrator.common.errors import InvalidArgument
from orchestrator.session.domain import Session, SessionLimits


def create(t0: datetime, **fields: Any) -> Session:
    fields.setdefault("title", "IND-1 title")
    fields.setdefault("initial_prompt", "Do the thing.")
    return Session.create(now=t0, **fields)


SELF_ID = "6f1c7a52-0d8e-4a8e-9a51-3f0e3a3a2b10"

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("blank title", {"title": "   "}, "title"),
    ("title of 201", {"title": "x" * 201}, "title"),
    ("description of 10,001", {"description": "d" * 10_001}, "description"),
    ("empty prompt", {"initial_prompt": ""}, "initial_prompt"),
    ("blank prompt", {"initial_prompt": " \n "}, "initial_prompt"),
    ("prompt of 10,001", {"initial_prompt": "p" * 10_001}, "initial_prompt"),
    ("model without provider", {"model_identifier": "gpt-4o"}, "model_identifier"),
    ("upper-case provider", {"model_identifier": "OpenAI/gpt-4o"}, "model_identifier"),
    ("empty model", {"model_identifier": "openai/"}, "model_identifier"),
    ("space in model", {"model_identifier": "openai/gpt 4o"}, "model_identifier"),
    ("model of 201", {"model_identifier": "a/" + "m" * 199}, "model_identifier"),
    ("duration of 59", {"max_duration_seconds": 59}, "max_duration_seconds"),
    ("duration of 86,401", {"max_duration_seconds": 86_401}, "max_duration_seconds"),
    ("negative duration", {"max_duration_seconds": -1}, "max_duration_seconds"),
    ("empty tag", {"tags": [""]}, "tags"),
    ("upper-case tag", {"tags": ["Backend"]}, "tags"),
    ("tag with space", {"tags": ["two words"]}, "tags"),
    ("tag of 65", {"tags": ["t" * 65]}, "tags"),
    ("33 tags", {"tags": [f"t{i}" for i in range(33)]}, "tags"),
    (
        "negative parallelism",
        {"limits": SessionLimits(max_parallel_tasks=-1)},
        "limits.max_parallel_tasks",
    ),
    ("negative token budget", {"limits": SessionLimits(token_budget=-1)}, "limits.token_budget"),
    (
        "negative cost budget",
        {"limits": SessionLimits(cost_budget_usd=-0.01)},
        "limits.cost_budget_usd",
    ),
    (
        "infinite cost budget",
        {"limits": SessionLimits(cost_budget_usd=float("inf"))},
        "limits.cost_budget_usd",
    ),
    ("11 retries", {"limits": SessionLimits(max_retries=11)}, "limits.max_retries"),
    ("negative retries", {"limits": SessionLimits(max_retries=-1)}, "limits.max_retries"),
    ("metadata with a set", {"metadata": {"a": {1}}}, "metadata"),
    ("metadata with NaN", {"metadata": {"a": [float("nan")]}}, "metadata"),
    ("metadata with an int key", {"metadata": {"a": {1: "x"}}}, "metadata"),
    ("metadata with a datetime", {"metadata": {"at": datetime(2025, 1, 1)}}, "metadata"),
    ("id that is no UUID", {"session_id": "session-1"}, "session_id"),
    ("parent that is no UUID", {"parent_id": "nope"}, "parent_id"),
    ("parent is itself", {"session_id": SELF_ID, "parent_id": SELF_ID}, "parent_id"),
    ("unknown type", {"session_type": "research"}, "session_type"),
    ("unknown priority", {"priority": "urgent"}, "priority"),
    ("unknown policy", {"permission_policy": "maybe"}, "permission_policy"),
    ("empty agent_config key", {"agent_config": {"": "x"}}, "agent_config"),
]


@pytest.mark.parametrize(
    ("fields", "field"), [(f, n) for _, f, n in REFUSED], ids=[case for case, _, _ in REFUSED]
)
def test_refused_with_the_field_named(t0: datetime, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        create(t0, **fields)
    assert refused.value.field == field
    assert field in refused.value.message


def test_title_is_trimmed_and_may_be_200_long(t0: datetime) -> None:
    assert create(t0, title=" x ").title == "x"
    assert len(create(t0, title="y" * 200).title) == 200


def test_prompt_of_10_000_is_kept_verbatim(t0: datetime) -> None:
    prompt = "  indent matters\n" + "p" * (10_000 - 17)
    assert create(t0, initial_prompt=prompt).initial_prompt == prompt


@pytest.mark.parametrize(
    "model",
    [
        "",
        "anthropic/claude-sonnet-4",
        "openai/gpt-4o",
        "ollama/llama3:8b",
        "openrouter/meta-llama/llama-3.1-70b",
        "my-co.ai/Model_2",
    ],
)
def test_model_identifiers_accepted(t0: datetime, model: str) -> None:
    assert create(t0, model_identifier=model).model_identifier == model


@pytest.mark.parametrize(("given", "kept"), [(0, 3_600), (60, 60), (86_400, 86_400)])
def test_duration_edges(t0: datetime, given: int, kept: int) -> None:
    assert create(t0, max_duration_seconds=given).max_duration_seconds == kept


def test_tags_are_deduplicated_before_counting(t0: datetime) -> None:
    thirty_two_twice = [f"t{i}" for i in range(32)] * 2
    assert len(create(t0, tags=thirty_two_twice).tags) == 32
    kept = create(t0, tags=["b", "a", "b", "a.b_c:d-9", "x" * 64]).tags
    assert kept == ["b", "a", "a.b_c:d-9", "x" * 64]


@pytest.mark.parametrize("retries", [0, 10])
def test_retry_limit_edges(t0: datetime, retries: int) -> None:
    limits = SessionLimits(max_retries=retries)
    assert create(t0, limits=limits).limits.max_retries == retries


def test_description_of_10_000_is_accepted(t0: datetime) -> None:
    assert len(create(t0, description="d" * 10_000).description) == 10_000


def test_metadata_is_json_and_copied(t0: datetime) -> None:
    metadata: dict[str, Any] = {
        "repo": {"branches": ["main"], "stars": 3, "ok": True, "ratio": 0.5, "none": None}
    }
    session = create(t0, metadata=metadata)
    metadata["repo"]["branches"].append("dev")
    assert session.metadata["repo"]["branches"] == ["main"]


def test_parent_id_is_kept_in_canonical_form(t0: datetime) -> None:
    parent = uuid.uuid4()
    assert create(t0, parent_id=str(parent).upper()).parent_id == str(parent)
    assert create(t0, parent_id="").parent_id is None


def test_an_empty_id_means_generate_one(t0: datetime) -> None:
    first, second = create(t0, session_id=""), create(t0, session_id=None)
    assert first.id != second.id
    assert uuid.UUID(first.id).version == 4
