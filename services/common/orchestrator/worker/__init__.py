"""The agent worker (`orch agent run`): runs the tasks the orchestrator assigns to one agent."""

from orchestrator.worker.config import WorkerConfig, agent_id_for
from orchestrator.worker.worker import Worker

__all__ = ["Worker", "WorkerConfig", "agent_id_for"]
