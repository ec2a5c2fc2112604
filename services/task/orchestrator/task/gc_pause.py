"""A scoped pause of Python's cyclic garbage collector, for GetGraph.

Building a 10,000-task graph allocates a few hundred thousand small objects; each burst makes
the collector scan every live object of the process, which costs more than the work itself.
Those objects hold no reference cycles, so reference counting frees them all when the call
ends: pausing the cyclic collector meanwhile loses nothing. Pauses nest and overlap (calls run
concurrently, partly in worker threads); the collector resumes when the last one ends.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_resume = False


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
