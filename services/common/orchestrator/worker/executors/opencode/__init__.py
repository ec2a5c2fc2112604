"""The OpenCode executor: each task is one session of a real `opencode serve`."""

from orchestrator.worker.executors.opencode.client import (
    OpenCodeClient,
    OpenCodeError,
    OpenCodeRefused,
    OpenCodeUnavailable,
)
from orchestrator.worker.executors.opencode.executor import OpenCodeExecutor
from orchestrator.worker.executors.opencode.launch import OpenCodeOptions, opencode_executor
from orchestrator.worker.executors.opencode.server import OpenCodeServer, find_binary

__all__ = [
    "OpenCodeClient",
    "OpenCodeError",
    "OpenCodeExecutor",
    "OpenCodeOptions",
    "OpenCodeRefused",
    "OpenCodeServer",
    "OpenCodeUnavailable",
    "find_binary",
    "opencode_executor",
]
