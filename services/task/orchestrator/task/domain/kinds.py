"""How a task is classified: priority, complexity, capabilities, dependency types, templates.

Values are the proto enum names without their prefix, lower-cased; UNSPECIFIED has no member
because the servicer resolves it to a default before the domain sees it.
"""

from __future__ import annotations

from enum import StrEnum


class TaskPriority(StrEnum):
    """BLOCKER is the most urgent. Compare by `rank` (values sort alphabetically)."""

    BLOCKER = "blocker"
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"
    BACKGROUND = "background"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANKS[self]


_PRIORITY_RANKS: dict[TaskPriority, int] = {p: rank for rank, p in enumerate(TaskPriority)}


class TaskComplexity(StrEnum):
    """TRIVIAL < 15 min, SIMPLE 15-60 min, MODERATE 1-4 h, COMPLEX 4-8 h, EXPERT 8 h+."""

    TRIVIAL = "trivial"
    SIMPLE = "simple"
    MODERATE = "moderate"
    COMPLEX = "complex"
    EXPERT = "expert"


class Capability(StrEnum):
    """What a task needs from its agent; the same names as `orchestrator.common.v1.Capability`."""

    REQUIREMENTS_ANALYSIS = "requirements_analysis"
    SYSTEM_DESIGN = "system_design"
    ARCHITECTURE_PLANNING = "architecture_planning"
    TASK_DECOMPOSITION = "task_decomposition"
    CODE_GENERATION = "code_generation"
    TEST_GENERATION = "test_generation"
    TESTING = "testing"
    DOCUMENTATION = "documentation"
    REFACTORING = "refactoring"
    CODE_REVIEW = "code_review"
    SECURITY_AUDIT = "security_audit"
    PERFORMANCE_ANALYSIS = "performance_analysis"
    COMPLIANCE_CHECK = "compliance_check"
    DEBUGGING = "debugging"
    BUG_FIXING = "bug_fixing"
    TROUBLESHOOTING = "troubleshooting"
    ROOT_CAUSE_ANALYSIS = "root_cause_analysis"
    OPTIMIZATION = "optimization"
    DEPLOYMENT = "deployment"
    CONFIGURATION = "configuration"
    MONITORING = "monitoring"
    SCALING = "scaling"
    WORKFLOW_ORCHESTRATION = "workflow_orchestration"
    RESOURCE_ALLOCATION = "resource_allocation"
    CONFLICT_RESOLUTION = "conflict_resolution"
    PROGRESS_TRACKING = "progress_tracking"


class DependencyType(StrEnum):
    """`<predecessor event>_to_<successor event>`; see `Link` for what each one constrains."""

    FINISH_TO_START = "finish_to_start"
    START_TO_START = "start_to_start"
    FINISH_TO_FINISH = "finish_to_finish"
    START_TO_FINISH = "start_to_finish"

    @property
    def predecessor_event(self) -> str:
        """ "start" or "finish": which event of the predecessor the successor waits for."""
        return _EVENTS[self][0]

    @property
    def successor_event(self) -> str:
        """ "start": it gates READY. "finish": it holds a finished successor BLOCKED."""
        return _EVENTS[self][1]


# Looked up, not parsed: the graph asks this of every edge of a session on every GetGraph.
_EVENTS: dict[DependencyType, tuple[str, str]] = {
    kind: (kind.value.split("_to_")[0], kind.value.split("_to_")[1]) for kind in DependencyType
}


class DecompositionTemplate(StrEnum):
    AUTO = "auto"
    MICROSERVICE = "microservice"
    CRUD = "crud"
    SECURITY = "security"
    UI_COMPONENT = "ui_component"


class Hold(StrEnum):
    """Why a BLOCKED task is blocked; NONE in every other status."""

    NONE = "none"
    # BlockTask: a person or service said so; ResumeTask lifts it.
    MANUAL = "manual"
    # The agent finished a `requires_approval` task; ApproveTask or RejectTask decides.
    APPROVAL = "approval"
    # The agent finished but a FINISH_TO_FINISH / START_TO_FINISH predecessor has not; the
    # task completes by itself once it has.
    FINISH = "finish"
