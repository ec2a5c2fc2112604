"""Resident memory of the processes of a running mesh."""

from __future__ import annotations

import psutil


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total / (1024 * 1024)


def table(groups: dict[str, list[int]]) -> dict[str, float]:
    return {name: rss_mb(pids) for name, pids in groups.items()}
