"""Memory and CPU time of the processes of a running mesh.

PSS (proportional set size) is reported rather than RSS: PostgreSQL backends share its buffer
pool, and RSS would count those shared pages once per backend.
"""

from __future__ import annotations

import psutil


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except psutil.Error:
            continue
    return total / (1024 * 1024)


def table(groups: dict[str, list[int]]) -> dict[str, float]:
    return {name: pss_mb(pids) for name, pids in groups.items()}


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds each group of processes has used so far."""
    out: dict[str, float] = {}
    for name, pids in groups.items():
        total = 0.0
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        out[name] = total
    return out
