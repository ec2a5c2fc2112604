"""JSON logging for entry points, with trace, session and task ids attached.

Only entry points call `configure_logging`; library code just uses `logging.getLogger(__name__)`.
Every line goes through `redact`: no password, token or key reaches the log, whoever logs it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from orchestrator.common.redaction import redact, remember_secrets, secret_values
from orchestrator.common.telemetry import current_ids

# Set for the duration of handling (a gRPC call, an event, a worker's run) by whoever knows
# them: the gRPC interceptor from the request, consumers from the event, the worker per task.
session_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("session_id", default="")
task_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")


@contextlib.contextmanager
def log_ids(session_id: str = "", task_id: str = "") -> Iterator[None]:
    """The block's log lines name this session and task (those given)."""
    tokens = []
    if session_id:
        tokens.append((session_id_var, session_id_var.set(session_id)))
    if task_id:
        tokens.append((task_id_var, task_id_var.set(task_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        trace_id, span_id = current_ids()
        if trace_id:
            entry["trace_id"] = trace_id
            entry["span_id"] = span_id
        for key, var in (("session_id", session_id_var), ("task_id", task_id_var)):
            if var.get():
                entry[key] = var.get()
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """`<time> <service> <level> <message>`, secrets masked."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s {service} %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(
    service: str,
    level: str = "INFO",
    json_lines: bool = True,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Logs to stdout; the values of secret variables of `environ` (default: this process's
    environment, e.g. OPENCODE_SERVER_PASSWORD) are masked in every line."""
    remember_secrets(secret_values(os.environ if environ is None else environ))
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service) if json_lines else PlainFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # grpc and asyncio chatter at INFO drowns the service's own lines.
    logging.getLogger("asyncio").setLevel(logging.WARNING)
