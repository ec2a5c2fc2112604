"""What an agent is and does, and what a task asks for: the vocabularies routing compares.

Values are the proto enum names without their prefix, lower-cased; UNSPECIFIED has no member
because the servicer turns it into None (or refuses it) before the domain sees it.
"""

from __future__ import annotations

from enum import StrEnum


class AgentType(StrEnum):
    ARCHITECT = "architect"
    IMPLEMENTER = "implementer"
    REVIEWER = "reviewer"
    DEBUGGER = "debugger"
    INTEGRATOR = "integrator"
    ORCHESTRATOR = "orchestrator"
    ANALYST = "analyst"
    OPTIMIZER = "optimizer"


class Capability(StrEnum):
    """What an agent can do and what a task needs. `name` (e.g. SECURITY_AUDIT) is what
    refusal messages show, as the proto spells it."""

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


class ExecutorKind(StrEnum):
    OPENCODE = "opencode"
    SHELL = "shell"


class SessionType(StrEnum):
    """The session types of SPEC §2, spoken here as well: services share protos, not code."""

    PLANNING = "planning"
    EXECUTION = "execution"
    REVIEW = "review"
    DEBUG = "debug"
    INTEGRATION = "integration"


class TaskComplexity(StrEnum):
    """Ordered by size; compare by `rank` (1 for TRIVIAL up to 5 for EXPERT), not by value."""

    TRIVIAL = "trivial"
    SIMPLE = "simple"
    MODERATE = "moderate"
    COMPLEX = "complex"
    EXPERT = "expert"

    @property
    def rank(self) -> int:
        return _COMPLEXITY_RANKS[self]


_COMPLEXITY_RANKS: dict[TaskComplexity, int] = {
    c: rank for rank, c in enumerate(TaskComplexity, start=1)
}


class TaskOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
