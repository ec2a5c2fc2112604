"""The lease reaper holds off after a spell in which no lease could be renewed."""

from __future__ import annotations

from orchestrator.task.reaper import Sight


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _looks(sight: Sight, clock: Clock, count: int, every: float) -> list[bool]:
    """What `count` looks, `every` seconds apart from now on, answer."""
    seen = []
    for _ in range(count):
        seen.append(sight.looked())
        clock.now += every
    return seen


def test_a_fresh_reaper_waits_one_grace_then_reaps_at_every_look() -> None:
    clock = Clock()
    sight = Sight(blind_after=6, grace=30, clock=clock)
    # Looks at 100, 102, ...: quiet until 130, reaping from the look at 130 on.
    assert _looks(sight, clock, 20, every=2) == [False] * 15 + [True] * 5


def test_a_gap_up_to_the_limit_is_not_a_blind_spell() -> None:
    clock = Clock()
    sight = Sight(blind_after=6, grace=30, clock=clock)
    _looks(sight, clock, 16, every=2)
    clock.now += 4  # 6 s after the last look
    assert sight.looked() is True


def test_a_blind_spell_starts_a_new_grace() -> None:
    clock = Clock()
    sight = Sight(blind_after=6, grace=30, clock=clock)
    _looks(sight, clock, 16, every=2)
    clock.now += 10  # a database outage: no lease could be renewed meanwhile
    assert _looks(sight, clock, 16, every=2) == [False] * 15 + [True]
