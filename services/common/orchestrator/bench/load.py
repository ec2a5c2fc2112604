"""Closed-loop load: N calls in flight until a count is done; latency percentiles."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    calls: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def line(self, label: str) -> str:
        return (
            f"{label:<34} {self.per_second:>9.0f}/s  p50 {self.percentile(50):6.2f} ms"
            f"  p99 {self.percentile(99):6.2f} ms  ({self.calls} calls)"
        )


async def closed_loop(
    call: Callable[[], Awaitable[object]], total: int, in_flight: int
) -> LoadResult:
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return LoadResult(total, time.perf_counter() - began, latencies)
