"""A logging filter that blanks API keys and credential headers out of log lines.

The gateway itself never logs a key; this is for what others might: an access log line of a
client that put its key in a URL, a library's debug dump of handshake headers (websockets logs
every header at DEBUG). The gateway's entry point puts it on its log handlers.
"""

from __future__ import annotations

import logging
import re

_KEY = re.compile(r"(orch_[0-9a-f]{16}_)[0-9A-Za-z]+")
_HEADER = re.compile(
    r"(?i)((?:authorization|x-api-key)[\"']?\s*[:=,]\s*[\"']?(?:bearer\s+|basic\s+)?)[^\s\"',)]+"
)
_HINTS = ("orch_", "uthorization", "pi-key", "PI-KEY", "UTHORIZATION")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    if not any(hint in text for hint in _HINTS):
        return text
    return _HEADER.sub(rf"\1{REDACTED}", _KEY.sub(rf"\1{REDACTED}", text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            cleaned_trace = redact(trace)
            if cleaned_trace != trace:  # rare: then the traceback goes out as redacted text
                record.msg = f"{record.getMessage()}\n{cleaned_trace}"
                record.args, record.exc_info, record.exc_text = None, None, None
        return True


def redact_logs() -> None:
    """Puts the filter on every handler of the root logger (the entry point's)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())
