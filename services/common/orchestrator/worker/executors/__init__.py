"""Executors run a task's work inside the worker: a shell command now, OpenCode later."""

from orchestrator.worker.executors.base import ExecutionResult, Executor
from orchestrator.worker.executors.shell import ShellExecutor

__all__ = ["ExecutionResult", "Executor", "ShellExecutor"]
