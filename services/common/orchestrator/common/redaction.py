"""Secrets kept out of logs and printed output.

Three kinds: credentials inside URLs and DSNs (`postgresql://orch:pw@db/orch`, `redis://:pw@…`,
`nats://token@…`, `password=pw`), the secret part of the gateway's API keys, and the values of
secret environment variables (OpenCode's `OPENCODE_SERVER_PASSWORD`, providers' `*_API_KEY`,
`*_TOKEN`…), which the log formatters learn at start-up and mask wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

MASK = "***"

# scheme://user:password@ → the password masked; the user stays (it helps and is not secret).
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@]*):([^\s/@]*)@", re.IGNORECASE)
# NATS takes a bare token as the user part: nats://token@host.
_NATS_TOKEN = re.compile(r"(\b(?:nats|tls|ws|wss)://)[^\s:/@]+@", re.IGNORECASE)
# DSN keywords and query parameters: password=pw, ?sslpassword=pw.
_PASSWORD_PARAM = re.compile(r"(\b(?:ssl)?(?:password|passwd|pwd)=)[^\s&;'\"]+", re.IGNORECASE)

# The gateway's API keys (orch_<id>_<secret>): the public id stays, the secret goes, in any
# process's output (the CLI that minted one, a worker that was handed one).
_API_KEY = re.compile(r"(\borch_[0-9a-f]{16}_)[0-9a-f]{64}")

# Environment variables whose values are secrets, by the end of their name.
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|_KEY)$", re.IGNORECASE)
# Shorter values would mask ordinary words; such a secret is too weak to hide anyway.
MIN_SECRET_LENGTH = 4

_known: set[str] = set()


def redact(text: str) -> str:
    """`text` with URL credentials, password parameters and every known secret masked."""
    text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    text = _NATS_TOKEN.sub(rf"\1{MASK}@", text)
    text = _PASSWORD_PARAM.sub(rf"\1{MASK}", text)
    text = _API_KEY.sub(rf"\1{MASK}", text)
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def remember_secrets(values: Iterable[str]) -> None:
    """Masks these values from now on wherever `redact` runs (empty and short ones aside)."""
    _known.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of the variables in `environ` whose names say they hold a secret, and the
    passwords inside URLs (ORCH_DATABASE_URL…), should a library print one on its own."""
    found = [value for name, value in environ.items() if _SECRET_NAME.search(name)]
    for value in environ.values():
        found += [unquote(match.group(2)) for match in _URL_PASSWORD.finditer(value)]
    return found


def forget_secrets() -> None:
    """For tests: the known secrets from before are no longer masked."""
    _known.clear()
