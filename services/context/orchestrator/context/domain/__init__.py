"""The context domain: the Context aggregate, dot paths, diffs, merge strategies and limits.

Pure Python: nothing here imports protobuf, gRPC, databases or message brokers.
"""

from .changes import Change, Edit, Operation, OperationType, apply_operations
from .context import Context, MergeOutcome
from .diff import ContextDiff, DiffEntry, diff
from .events import ContextEventType, DomainEvent
from .merge import MergePlan, MergeStrategy, WriteLog, plan_merge
from .paths import is_within, parse_path
from .scope import ContextScope, Share, session_of, validate_owner
from .validation import parse_id
from .values import MISSING, json_equal, json_size

__all__ = [
    "MISSING",
    "Change",
    "Context",
    "ContextDiff",
    "ContextEventType",
    "ContextScope",
    "DiffEntry",
    "DomainEvent",
    "Edit",
    "MergeOutcome",
    "MergePlan",
    "MergeStrategy",
    "Operation",
    "OperationType",
    "Share",
    "WriteLog",
    "apply_operations",
    "diff",
    "is_within",
    "json_equal",
    "json_size",
    "parse_id",
    "parse_path",
    "plan_merge",
    "session_of",
    "validate_owner",
]
