"""Executors run a task's work inside the worker."""

from orchestrator.worker.executors.base import (
    Checkpoint,
    ExecutionResult,
    Executor,
    Job,
    SessionBrief,
)
from orchestrator.worker.executors.shell import ShellExecutor

__all__ = ["Checkpoint", "ExecutionResult", "Executor", "Job", "SessionBrief", "ShellExecutor"]
