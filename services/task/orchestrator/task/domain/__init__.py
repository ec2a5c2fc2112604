"""The task domain: the Task aggregate, its status machine, scheduling rules, the precedence
network, the critical path and decomposition.

Pure Python (and networkx): nothing here imports protobuf, gRPC, databases or message brokers.
"""

from .decomposition import (
    DEFAULT_MAX_DEPTH,
    MAX_DEPTH,
    Decomposition,
    choose_template,
    decompose,
    parts_from_text,
    validate_max_depth,
)
from .dependency import Dependency, validate_lag, validate_pair
from .estimate import Estimate, complexity_of, default_estimate
from .events import DomainEvent, TaskEventType
from .kinds import (
    Capability,
    DecompositionTemplate,
    DependencyType,
    Hold,
    TaskComplexity,
    TaskPriority,
)
from .network import GraphTask, TaskNetwork
from .outcome import Review, Usage, WorkspaceChanges
from .schedule import Schedule, Timing, schedule
from .scheduling import KEEP, Peer, Step, Verdict, apply, decide, finish_blockers
from .status import (
    DEAD_STATUSES,
    LEASED_STATUSES,
    SCHEDULABLE_STATUSES,
    SKIPPABLE_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    TaskStatus,
    can_transition,
    ensure_transition,
)
from .task import Task
from .validation import parse_uuid

__all__ = [
    "DEAD_STATUSES",
    "DEFAULT_MAX_DEPTH",
    "KEEP",
    "LEASED_STATUSES",
    "MAX_DEPTH",
    "SCHEDULABLE_STATUSES",
    "SKIPPABLE_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "Capability",
    "Decomposition",
    "DecompositionTemplate",
    "Dependency",
    "DependencyType",
    "DomainEvent",
    "Estimate",
    "GraphTask",
    "Hold",
    "Peer",
    "Review",
    "Schedule",
    "Step",
    "Task",
    "TaskComplexity",
    "TaskEventType",
    "TaskNetwork",
    "TaskPriority",
    "TaskStatus",
    "Timing",
    "Usage",
    "Verdict",
    "WorkspaceChanges",
    "apply",
    "can_transition",
    "choose_template",
    "complexity_of",
    "decide",
    "decompose",
    "default_estimate",
    "ensure_transition",
    "finish_blockers",
    "parse_uuid",
    "parts_from_text",
    "schedule",
    "validate_lag",
    "validate_max_depth",
    "validate_pair",
]
