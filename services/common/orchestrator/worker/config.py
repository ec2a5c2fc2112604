"""What a worker is told on its command line, and the identity derived from it."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.api.agent.v1 import agent_pb2
from orchestrator.api.common.v1 import taxonomy_pb2

# Fixed forever: agent ids derive from it, so changing it would orphan every worker's registration.
AGENT_ID_NAMESPACE = uuid.UUID("6f1c4a52-2f0e-5c1e-9d0a-6a1b7e3c9b10")
NAME_PATTERN = re.compile(r"^AGENT-[A-Z0-9-]+$")
DEFAULT_GRACE_SECONDS = 30.0


class WorkerConfigError(ValueError):
    pass


def agent_id_for(name: str) -> str:
    """Stable per name, so a restarted worker registers again as the same agent."""
    return str(uuid.uuid5(AGENT_ID_NAMESPACE, name))


@dataclass(frozen=True)
class WorkerConfig:
    name: str
    workspace: Path
    agent_type: int = agent_pb2.AGENT_TYPE_IMPLEMENTER
    capabilities: tuple[int, ...] = (taxonomy_pb2.CAPABILITY_CODE_GENERATION,)
    executor_kind: int = agent_pb2.EXECUTOR_KIND_SHELL
    # The OpenCode server's URL for EXECUTOR_KIND_OPENCODE; empty for SHELL.
    executor_endpoint: str = ""
    max_tasks: int = 1
    # Running tasks get this long to finish after a stop before they are released.
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise WorkerConfigError(
                f"agent name {self.name!r} must be AGENT- followed by upper-case letters, "
                "digits or dashes (e.g. AGENT-IMPL-01)"
            )
        if self.max_tasks < 1:
            raise WorkerConfigError("max tasks must be at least 1")
        if not self.capabilities:
            raise WorkerConfigError("at least one capability is required")

    @property
    def agent_id(self) -> str:
        return agent_id_for(self.name)

    @property
    def durable(self) -> str:
        return f"worker-{self.name.lower()}"


def parse_agent_type(value: str) -> int:
    key = f"AGENT_TYPE_{value.strip().upper()}"
    if key not in agent_pb2.AgentType.DESCRIPTOR.values_by_name or key.endswith("UNSPECIFIED"):
        raise WorkerConfigError(f"unknown agent type {value!r}; one of: {_names('AGENT_TYPE_')}")
    return agent_pb2.AgentType.Value(key)


def parse_capabilities(value: str) -> tuple[int, ...]:
    found: list[int] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        key = f"CAPABILITY_{part.upper()}"
        known = taxonomy_pb2.Capability.DESCRIPTOR.values_by_name
        if key not in known or key.endswith("UNSPECIFIED"):
            raise WorkerConfigError(f"unknown capability {part!r}")
        found.append(taxonomy_pb2.Capability.Value(key))
    if not found:
        raise WorkerConfigError("at least one capability is required")
    return tuple(found)


def _names(prefix: str) -> str:
    keys = agent_pb2.AgentType.keys()
    return ", ".join(k.removeprefix(prefix).lower() for k in keys if not k.endswith("UNSPECIFIED"))
