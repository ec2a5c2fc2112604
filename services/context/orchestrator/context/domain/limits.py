"""How big a context may grow, in one place so messages and tests quote the same numbers.

Sizes are of the compact UTF-8 JSON text. A context event carries the changes it applied and
NATS refuses messages over 1 MiB by default, which is what bounds one write's changes.
"""

from __future__ import annotations

KIB = 1024

# One value written by one SET operation; larger is INVALID_ARGUMENT.
MAX_VALUE_BYTES = 64 * KIB
# The whole document after a create, update, merge or clone; larger is RESOURCE_EXHAUSTED.
MAX_DOCUMENT_BYTES = 1024 * KIB
# Old plus new values of everything one update or merge changes; larger is RESOURCE_EXHAUSTED.
MAX_CHANGE_BYTES = 512 * KIB
# Segments of a path, and nesting of objects and lists in the data.
MAX_DEPTH = 32
MAX_KEY_LENGTH = 128
MAX_OPERATIONS = 1_000
MAX_SHARES = 100
MAX_NAME_LENGTH = 128
MAX_OWNER_LENGTH = 128
DEFAULT_TTL_SECONDS = 3_600
MAX_TTL_SECONDS = 30 * 24 * 3_600
# An event carries the context's data only while data and changes together stay below this.
EVENT_DATA_BUDGET_BYTES = 768 * KIB


def describe_bytes(size: int) -> str:
    """`65536 bytes (64 KiB)`: the exact number for machines, the rounded one for people."""
    if size >= KIB * KIB and size % (KIB * KIB) == 0:
        return f"{size} bytes ({size // (KIB * KIB)} MiB)"
    if size >= KIB and size % KIB == 0:
        return f"{size} bytes ({size // KIB} KiB)"
    return f"{size} bytes"
