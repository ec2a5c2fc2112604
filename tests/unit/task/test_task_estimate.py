"""PERT three-point estimates, worked out by hand here rather than read from the code."""

from __future__ import annotations

import math

import pytest

from orchestrator.common.errors import InvalidArgument
from orchestrator.task.domain import Estimate, TaskComplexity
from orchestrator.task.domain.estimate import complexity_of, default_estimate


@pytest.mark.parametrize(
    ("o", "m", "p", "expected", "sigma"),
    [
        (1.0, 2.0, 3.0, 2.0, 1 / 3),
        (2.0, 3.0, 10.0, 4.0, 4 / 3),
        (1.0, 1.0, 1.0, 1.0, 0.0),
        (0.0, 0.0, 0.0, 0.0, 0.0),
        (4.0, 6.0, 14.0, 7.0, 10 / 6),
        (0.5, 1.5, 5.5, (0.5 + 6 + 5.5) / 6, 5 / 6),
    ],
)
def test_expected_and_sigma(o: float, m: float, p: float, expected: float, sigma: float) -> None:
    estimate = Estimate(o, m, p)
    assert estimate.expected_hours == pytest.approx(expected)
    assert estimate.sigma_hours == pytest.approx(sigma)
    assert estimate.variance == pytest.approx(sigma**2)


def test_scaling_keeps_the_shape() -> None:
    half = Estimate(2.0, 4.0, 12.0).scaled(0.5)
    assert (half.optimistic_hours, half.most_likely_hours, half.pessimistic_hours) == (1, 2, 6)
    assert half.expected_hours == pytest.approx(Estimate(2.0, 4.0, 12.0).expected_hours / 2)


@pytest.mark.parametrize(
    ("o", "m", "p", "field", "words"),
    [
        (-1.0, 2.0, 3.0, "estimate.optimistic_hours", "negative"),
        (1.0, -2.0, 3.0, "estimate.most_likely_hours", "negative"),
        (1.0, 2.0, -3.0, "estimate.pessimistic_hours", "negative"),
        (math.nan, 2.0, 3.0, "estimate.optimistic_hours", "finite"),
        (1.0, math.inf, 3.0, "estimate.most_likely_hours", "finite"),
        (3.0, 2.0, 4.0, "estimate", "optimistic <= most likely <= pessimistic"),
        (1.0, 5.0, 4.0, "estimate", "optimistic <= most likely <= pessimistic"),
        (1.0, 2.0, 20_000.0, "estimate.pessimistic_hours", "at most"),
    ],
)
def test_bad_estimates_name_the_field(o: float, m: float, p: float, field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        Estimate.validated(o, m, p)
    assert err.value.field == field
    assert words in err.value.message


@pytest.mark.parametrize(
    ("hours", "complexity"),
    [
        (0.0, TaskComplexity.TRIVIAL),
        (0.2, TaskComplexity.TRIVIAL),
        (0.25, TaskComplexity.SIMPLE),
        (0.99, TaskComplexity.SIMPLE),
        (1.0, TaskComplexity.MODERATE),
        (3.9, TaskComplexity.MODERATE),
        (4.0, TaskComplexity.COMPLEX),
        (7.9, TaskComplexity.COMPLEX),
        (8.0, TaskComplexity.EXPERT),
        (100.0, TaskComplexity.EXPERT),
    ],
)
def test_complexity_follows_the_spec_bands(hours: float, complexity: TaskComplexity) -> None:
    assert complexity_of(hours) is complexity


@pytest.mark.parametrize("complexity", list(TaskComplexity))
def test_default_estimate_lies_in_its_complexity_band(complexity: TaskComplexity) -> None:
    assert complexity_of(default_estimate(complexity).expected_hours) is complexity
