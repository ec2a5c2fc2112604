"""API keys, pure: their format, minting, hashing, scopes and why one is refused.

A key reads `orch_<id>_<secret>`: `id` (16 hex digits) is public, names the key in lists and
finds its record; `secret` (64 hex digits, 256 random bits) is shown once and stored only as its
SHA-256. The `orch_` prefix makes a leaked key easy to spot (and to redact from logs).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

Scope = Literal["read", "write", "admin"]
# Each scope includes the ones before it: write can read, admin can write.
SCOPES: tuple[Scope, ...] = get_args(Scope)

KEY_PATTERN = re.compile(r"orch_([0-9a-f]{16})_([0-9a-f]{64})")
_ID_BYTES = 8
_SECRET_BYTES = 32


class Refusal(enum.Enum):
    """Why a presented key does not authenticate; every one is a 401."""

    MISSING = "an API key is required: send `Authorization: Bearer <key>`"
    MALFORMED = "the API key is not a key of this gateway (orch_<id>_<secret>)"
    UNKNOWN = "unknown API key"
    REVOKED = "the API key was revoked"
    EXPIRED = "the API key expired"


@dataclass(frozen=True)
class KeyRecord:
    """A key as stored: everything but the secret itself."""

    id: str
    name: str
    scopes: frozenset[Scope]
    secret_sha256: bytes
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    rate_limit: float | None = None
    burst: int | None = None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class MintedKey:
    id: str
    plaintext: str  # shown once, never stored
    secret_sha256: bytes


@dataclass(frozen=True)
class PresentedKey:
    id: str
    secret_sha256: bytes


def mint() -> MintedKey:
    key_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_hex(_SECRET_BYTES)
    return MintedKey(key_id, f"orch_{key_id}_{secret}", _digest(secret))


def parse(presented: str) -> PresentedKey | None:
    """The id and the secret's hash of a well-formed key; None for anything else."""
    match = KEY_PATTERN.fullmatch(presented.strip())
    if match is None:
        return None
    return PresentedKey(match.group(1), _digest(match.group(2)))


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def refusal_of(record: KeyRecord | None, presented: PresentedKey, now: datetime) -> Refusal | None:
    """None when `presented` is the key of `record` and the key is in force."""
    if record is None or not hmac.compare_digest(record.secret_sha256, presented.secret_sha256):
        return Refusal.UNKNOWN
    if record.revoked_at is not None:
        return Refusal.REVOKED
    if record.expires_at is not None and record.expires_at <= now:
        return Refusal.EXPIRED
    return None


def granted(scopes: Iterable[str]) -> frozenset[Scope]:
    """The scopes `scopes` amount to, implied ones included (admin → write → read)."""
    ranks = [SCOPES.index(s) for s in scopes if s in SCOPES]
    return frozenset(SCOPES[: max(ranks) + 1]) if ranks else frozenset()


def normalise_scopes(scopes: Iterable[str]) -> tuple[Scope, ...]:
    """Validated scopes, deduplicated, in rank order; ValueError names an unknown one."""
    wanted = {s.strip().lower() for s in scopes if s.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    if not wanted:
        raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in wanted)


_DURATION = re.compile(r"([0-9]+)\s*([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `3600s` or `3600` → a positive duration."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 90d, 12h, 30m or 3600s")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
