"""The one error the embedded stack raises: something a person must fix before `orch up` works."""

from __future__ import annotations

from orchestrator.common.errors import OrchestratorError


class StackError(OrchestratorError):
    """A server or child process could not be found, started, reached or stopped."""

    code = "stack"
