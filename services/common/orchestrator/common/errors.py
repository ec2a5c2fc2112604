"""The error hierarchy every layer raises; one interceptor turns it into gRPC status codes.

Domain code raises these (they import nothing from infrastructure). Each carries a machine code
(its class's `code`) and a sentence a person can act on.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every expected failure. `code` names the class of failure for clients."""

    code = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(OrchestratorError):
    """The request itself is wrong: a field is missing, malformed or out of range."""

    code = "invalid_argument"


class NotFound(OrchestratorError):
    code = "not_found"


class AlreadyExists(OrchestratorError):
    code = "already_exists"


class FailedPrecondition(OrchestratorError):
    """The request is well formed but the resource's state refuses it (e.g. a transition)."""

    code = "failed_precondition"


class Aborted(OrchestratorError):
    """Optimistic locking: the caller's expected version is stale. Re-read and try again."""

    code = "aborted"


class ResourceExhausted(OrchestratorError):
    code = "resource_exhausted"


class Unavailable(OrchestratorError):
    code = "unavailable"


class StaleVersion(Aborted):
    def __init__(self, kind: str, ident: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{kind} {ident} is at version {actual}, not the expected version {expected}; "
            "re-read it and try again"
        )
        self.expected = expected
        self.actual = actual
