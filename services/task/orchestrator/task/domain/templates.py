"""The decomposition templates of SPEC §2 and the words that choose them.

Each part carries its share of the parent's effort (`weight`, summing to 1 per template), the
capabilities an agent needs for it, the sibling parts it waits for (finish-to-start), and how
it is split further when it is still large: by another template, or into design, implement
and verify.
"""

from __future__ import annotations

from dataclasses import dataclass

from .kinds import Capability as C
from .kinds import DecompositionTemplate as T


@dataclass(frozen=True, slots=True)
class Part:
    key: str
    title: str
    task_type: str
    brief: str
    capabilities: tuple[C, ...]
    weight: float
    after: tuple[str, ...] = ()
    # How a large part splits again; None = design / implement / verify.
    then: T | None = None
    # Never split again (the parts of the design / implement / verify split).
    atomic: bool = False


_IMPL = "implementation"

MICROSERVICE = (
    Part(
        "api",
        "API layer",
        _IMPL,
        "Expose the service: routes or RPCs, request and response schemas, input validation "
        "and the mapping of errors to status codes.",
        (C.CODE_GENERATION, C.SYSTEM_DESIGN),
        0.25,
        ("service",),
        T.CRUD,
    ),
    Part(
        "service",
        "Service layer",
        _IMPL,
        "The use cases and business rules, independent of transport and storage.",
        (C.CODE_GENERATION,),
        0.30,
        ("data", "shared"),
    ),
    Part(
        "data",
        "Data layer",
        _IMPL,
        "Schema, migrations and the repository that reads and writes the service's data.",
        (C.CODE_GENERATION, C.CONFIGURATION),
        0.20,
        ("shared",),
        T.CRUD,
    ),
    Part(
        "shared",
        "Shared components",
        "design",
        "Configuration, logging, error types and the domain model the layers share.",
        (C.ARCHITECTURE_PLANNING, C.CODE_GENERATION),
        0.10,
    ),
    Part(
        "tests",
        "Tests",
        "test",
        "Unit tests per layer and integration tests through the API against real dependencies.",
        (C.TEST_GENERATION, C.TESTING),
        0.15,
        ("api", "service", "data"),
    ),
)

CRUD = (
    Part(
        "create",
        "Create",
        _IMPL,
        "Creating a record: input, defaults, persistence, response.",
        (C.CODE_GENERATION,),
        0.20,
        ("validate",),
    ),
    Part(
        "read",
        "Read",
        _IMPL,
        "Reading one record and listing many, with filters and pages.",
        (C.CODE_GENERATION,),
        0.15,
    ),
    Part(
        "update",
        "Update",
        _IMPL,
        "Changing a record safely: partial updates and versions.",
        (C.CODE_GENERATION,),
        0.20,
        ("validate", "read"),
    ),
    Part(
        "delete",
        "Delete",
        _IMPL,
        "Removing a record, or marking it deleted, and what follows.",
        (C.CODE_GENERATION,),
        0.10,
        ("read",),
    ),
    Part(
        "validate",
        "Validate",
        _IMPL,
        "The rules every field must satisfy, with clear errors.",
        (C.CODE_GENERATION, C.REQUIREMENTS_ANALYSIS),
        0.15,
    ),
    Part(
        "authorize",
        "Authorize",
        _IMPL,
        "Who may do each operation, enforced on every path.",
        (C.SECURITY_AUDIT, C.CODE_GENERATION),
        0.20,
        ("create", "read", "update", "delete"),
    ),
)

SECURITY = (
    Part(
        "threat",
        "Threat model",
        "analysis",
        "Assets, trust boundaries, attackers and the threats worth mitigating.",
        (C.SECURITY_AUDIT, C.REQUIREMENTS_ANALYSIS),
        0.15,
    ),
    Part(
        "identity",
        "Identity",
        _IMPL,
        "Authentication: accounts, credentials, sessions, tokens.",
        (C.CODE_GENERATION, C.SECURITY_AUDIT),
        0.25,
        ("threat",),
    ),
    Part(
        "access",
        "Access control",
        _IMPL,
        "Roles and permissions checked on every operation.",
        (C.CODE_GENERATION, C.SECURITY_AUDIT),
        0.25,
        ("identity",),
    ),
    Part(
        "encryption",
        "Encryption",
        _IMPL,
        "Data in transit and at rest, keys and their rotation.",
        (C.CODE_GENERATION, C.SECURITY_AUDIT, C.CONFIGURATION),
        0.20,
        ("threat",),
    ),
    Part(
        "audit",
        "Audit",
        "review",
        "An audit trail of security events, and a review of it all.",
        (C.SECURITY_AUDIT, C.COMPLIANCE_CHECK, C.MONITORING),
        0.15,
        ("access", "encryption"),
    ),
)

UI_COMPONENT = (
    Part(
        "components",
        "Components",
        _IMPL,
        "The component tree, its props and accessibility.",
        (C.CODE_GENERATION, C.SYSTEM_DESIGN),
        0.35,
    ),
    Part(
        "state",
        "State",
        _IMPL,
        "State, data fetching and the loading, empty and error cases.",
        (C.CODE_GENERATION,),
        0.25,
        ("components",),
    ),
    Part(
        "styles",
        "Styles",
        _IMPL,
        "Styles and responsive layout, in the design system's terms.",
        (C.CODE_GENERATION,),
        0.20,
        ("components",),
    ),
    Part(
        "tests",
        "Tests",
        "test",
        "Component tests of behaviour, states and accessibility.",
        (C.TEST_GENERATION, C.TESTING),
        0.20,
        ("components", "state", "styles"),
    ),
)

# What a large piece of work without a better template splits into.
DESIGN_IMPLEMENT_VERIFY = (
    Part(
        "design",
        "Design",
        "design",
        "Decide the approach and the interfaces.",
        (C.SYSTEM_DESIGN, C.REQUIREMENTS_ANALYSIS),
        0.25,
        atomic=True,
    ),
    Part(
        "implement",
        "Implement",
        _IMPL,
        "Write the code.",
        (C.CODE_GENERATION,),
        0.50,
        ("design",),
        atomic=True,
    ),
    Part(
        "verify",
        "Verify",
        "test",
        "Test it and check it does what was asked.",
        (C.TEST_GENERATION, C.TESTING),
        0.25,
        ("implement",),
        atomic=True,
    ),
)

TEMPLATES: dict[T, tuple[Part, ...]] = {
    T.MICROSERVICE: MICROSERVICE,
    T.CRUD: CRUD,
    T.SECURITY: SECURITY,
    T.UI_COMPONENT: UI_COMPONENT,
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Listed in the order that wins a tie: the more specific template first.
KEYWORDS: dict[T, frozenset[str]] = {
    T.SECURITY: _words(
        "security secure auth authentication authorization oauth oidc sso jwt encrypt "
        "encryption threat threats vulnerability vulnerabilities rbac permission permissions "
        "secret secrets audit compliance identity"
    ),
    T.UI_COMPONENT: _words(
        "ui ux component components frontend front-end react vue svelte angular button form "
        "forms page widget css style styles layout modal screen"
    ),
    T.CRUD: _words(
        "crud create read update delete manage management entity entities record records "
        "resource resources admin edit"
    ),
    T.MICROSERVICE: _words(
        "microservice microservices service api apis grpc rest endpoint endpoints backend "
        "server http"
    ),
}

# For parts split from free text: words that say what kind of agent the part needs.
CAPABILITY_WORDS: tuple[tuple[frozenset[str], tuple[C, ...], str], ...] = (
    (_words("test tests testing verify spec specs"), (C.TEST_GENERATION, C.TESTING), "test"),
    (
        _words("design architecture architect plan interface interfaces schema"),
        (C.SYSTEM_DESIGN, C.ARCHITECTURE_PLANNING),
        "design",
    ),
    (_words("document documentation docs readme"), (C.DOCUMENTATION,), "docs"),
    (_words("deploy deployment release ship rollout"), (C.DEPLOYMENT,), "deployment"),
    (_words("fix bug bugs regression"), (C.BUG_FIXING, C.DEBUGGING), "bugfix"),
    (_words("debug investigate diagnose"), (C.DEBUGGING, C.ROOT_CAUSE_ANALYSIS), "debugging"),
    (_words("refactor refactoring cleanup restructure"), (C.REFACTORING,), "refactor"),
    (_words("review"), (C.CODE_REVIEW,), "review"),
    (_words("security secure auth encrypt"), (C.SECURITY_AUDIT,), "security"),
    (
        _words("performance optimize optimise speed latency profile"),
        (C.PERFORMANCE_ANALYSIS, C.OPTIMIZATION),
        "performance",
    ),
    (_words("configure configuration config settings"), (C.CONFIGURATION,), "configuration"),
    (_words("monitor monitoring metrics alerts alerting"), (C.MONITORING,), "ops"),
    (_words("requirements analyse analyze research"), (C.REQUIREMENTS_ANALYSIS,), "analysis"),
)
