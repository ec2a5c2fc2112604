"""PERT three-point estimates and the complexity bands of SPEC §2."""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.common.errors import InvalidArgument

from .kinds import TaskComplexity

MAX_HOURS = 10_000.0

# Upper bounds (exclusive) of each band in hours; EXPERT is everything above.
_BANDS: tuple[tuple[float, TaskComplexity], ...] = (
    (0.25, TaskComplexity.TRIVIAL),
    (1.0, TaskComplexity.SIMPLE),
    (4.0, TaskComplexity.MODERATE),
    (8.0, TaskComplexity.COMPLEX),
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Optimistic, most likely and pessimistic hours; expected and sigma follow from them."""

    optimistic_hours: float
    most_likely_hours: float
    pessimistic_hours: float

    @classmethod
    def validated(cls, optimistic: float, most_likely: float, pessimistic: float) -> Estimate:
        """Each value finite, 0..MAX_HOURS, and optimistic <= most likely <= pessimistic."""
        for name, value in (
            ("optimistic_hours", optimistic),
            ("most_likely_hours", most_likely),
            ("pessimistic_hours", pessimistic),
        ):
            _check_hours(value, f"estimate.{name}")
        if not optimistic <= most_likely <= pessimistic:
            raise InvalidArgument(
                "estimate must satisfy optimistic <= most likely <= pessimistic; got "
                f"{optimistic} / {most_likely} / {pessimistic} hours",
                field="estimate",
            )
        return cls(float(optimistic), float(most_likely), float(pessimistic))

    @property
    def expected_hours(self) -> float:
        """(o + 4m + p) / 6."""
        o, m, p = self.optimistic_hours, self.most_likely_hours, self.pessimistic_hours
        return (o + 4 * m + p) / 6

    @property
    def sigma_hours(self) -> float:
        """(p - o) / 6."""
        return (self.pessimistic_hours - self.optimistic_hours) / 6

    @property
    def variance(self) -> float:
        return self.sigma_hours**2

    def scaled(self, factor: float) -> Estimate:
        """The same shape of uncertainty for a share of the work."""
        return Estimate(
            self.optimistic_hours * factor,
            self.most_likely_hours * factor,
            self.pessimistic_hours * factor,
        )


def _check_hours(value: float, field: str) -> None:
    if not math.isfinite(value):
        raise InvalidArgument(f"{field} must be a finite number of hours; got {value}", field=field)
    if value < 0:
        raise InvalidArgument(f"{field} must not be negative; got {value}", field=field)
    if value > MAX_HOURS:
        raise InvalidArgument(f"{field} must be at most {MAX_HOURS:g} hours", field=field)


def complexity_of(expected_hours: float) -> TaskComplexity:
    for upper, complexity in _BANDS:
        if expected_hours < upper:
            return complexity
    return TaskComplexity.EXPERT


# Typical spreads per band: the expected value sits inside the band, the tails reach out.
_DEFAULTS: dict[TaskComplexity, Estimate] = {
    TaskComplexity.TRIVIAL: Estimate(0.05, 0.15, 0.25),
    TaskComplexity.SIMPLE: Estimate(0.25, 0.5, 1.0),
    TaskComplexity.MODERATE: Estimate(1.0, 2.0, 4.0),
    TaskComplexity.COMPLEX: Estimate(4.0, 6.0, 8.0),
    TaskComplexity.EXPERT: Estimate(8.0, 12.0, 24.0),
}


def default_estimate(complexity: TaskComplexity) -> Estimate:
    """What a task of this complexity takes when nobody said otherwise."""
    return _DEFAULTS[complexity]
