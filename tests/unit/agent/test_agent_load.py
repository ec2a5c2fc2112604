"""Utilisation and load levels: IDLE 0, OPTIMAL <= 0.6, HIGH <= 0.8, CRITICAL < 1, OVERLOADED."""

from __future__ import annotations

import pytest

from orchestrator.agent.domain import LoadLevel, load_level, utilisation

L = LoadLevel


@pytest.mark.parametrize(
    ("current", "maximum", "used", "level"),
    [
        (0, 5, 0.0, L.IDLE),
        (1, 5, 0.2, L.OPTIMAL),
        (3, 5, 0.6, L.OPTIMAL),
        (4, 5, 0.8, L.HIGH),
        (7, 10, 0.7, L.HIGH),
        (9, 10, 0.9, L.CRITICAL),
        (5, 5, 1.0, L.OVERLOADED),
        (1, 1, 1.0, L.OVERLOADED),
        (7, 5, 1.0, L.OVERLOADED),  # reported above the maximum: capped at 1
    ],
)
def test_levels(current: int, maximum: int, used: float, level: LoadLevel) -> None:
    assert utilisation(current, maximum) == pytest.approx(used)
    assert load_level(current, maximum) is level
