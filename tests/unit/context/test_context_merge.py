"""Merge strategies: each one's rule, and what every strategy shares."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

import pytest

from orchestrator.context.domain import MISSING, Edit, MergeStrategy, WriteLog, plan_merge
from orchestrator.context.domain.paths import set_at

M = MergeStrategy


class Logs(TypedDict):
    target_log: WriteLog
    source_log: WriteLog


def _logs(
    t0: datetime, target: dict[str, int] | None = None, source: dict[str, int] | None = None
) -> Logs:
    """Write logs whose paths were last written `n` minutes after t0."""

    def log(latest: dict[str, int] | None) -> WriteLog:
        times = {p: t0 + timedelta(minutes=n) for p, n in (latest or {}).items()}
        return WriteLog(created_at=t0, latest=times)

    return Logs(target_log=log(target), source_log=log(source))


@pytest.mark.parametrize("strategy", list(MergeStrategy))
def test_every_strategy_adds_source_only_paths_and_keeps_target_only_ones(
    strategy: MergeStrategy, t0: datetime
) -> None:
    target = {"mine": 1, "shared": {"t": True}}
    source = {"theirs": 2, "shared": {"s": False}}
    plan = plan_merge(target, source, strategy, **_logs(t0))
    assert plan.data == {"mine": 1, "theirs": 2, "shared": {"t": True, "s": False}}
    assert plan.edits == (Edit("shared.s", MISSING, False), Edit("theirs", MISSING, 2))
    assert plan.conflicts == ()


@pytest.mark.parametrize("strategy", list(MergeStrategy))
def test_no_strategy_touches_its_inputs(strategy: MergeStrategy, t0: datetime) -> None:
    target: dict[str, Any] = {"a": {"l": [1]}, "x": 1}
    source: dict[str, Any] = {"a": {"l": [2], "n": 1}, "x": 2}
    plan_merge(target, source, strategy, base={"x": 0}, **_logs(t0))
    assert target == {"a": {"l": [1]}, "x": 1}
    assert source == {"a": {"l": [2], "n": 1}, "x": 2}


@pytest.mark.parametrize("strategy", list(MergeStrategy))
def test_merging_equal_documents_changes_nothing(strategy: MergeStrategy, t0: datetime) -> None:
    doc = {"a": [1, {"b": None}]}
    plan = plan_merge(doc, {"a": [1, {"b": None}]}, strategy, **_logs(t0))
    assert plan.edits == () and plan.data == doc


def test_last_write_wins_takes_the_later_side_per_path(t0: datetime) -> None:
    target = {"a": "t", "b": "t"}
    source = {"a": "s", "b": "s"}
    plan = plan_merge(
        target, source, M.LAST_WRITE_WINS, **_logs(t0, {"a": 5, "b": 1}, {"a": 2, "b": 3})
    )
    assert plan.data == {"a": "t", "b": "s"}
    assert plan.edits == (Edit("b", "t", "s"),)
    assert [c.path for c in plan.conflicts] == ["a", "b"]


def test_last_write_wins_counts_writes_above_and_below_the_path(t0: datetime) -> None:
    target = {"cfg": {"model": "t", "other": 1}}
    source = {"cfg": {"model": "s", "other": 1}}
    # The target wrote the whole `cfg` object last; the source only an unrelated path.
    plan = plan_merge(
        target, source, M.LAST_WRITE_WINS, **_logs(t0, {"cfg": 9}, {"cfg.model": 4, "zzz": 20})
    )
    assert plan.data["cfg"]["model"] == "t"
    # A later write below the path counts for the path too.
    plan = plan_merge(
        {"cfg": {"k": 1}}, {"cfg": 5}, M.LAST_WRITE_WINS, **_logs(t0, {"cfg.k": 9}, {"cfg": 4})
    )
    assert plan.data == {"cfg": {"k": 1}}


def test_last_write_wins_falls_back_to_creation_and_a_tie_goes_to_the_source(
    t0: datetime,
) -> None:
    source_created_later = Logs(
        target_log=WriteLog(created_at=t0),
        source_log=WriteLog(created_at=t0 + timedelta(seconds=1)),
    )
    assert plan_merge({"a": 1}, {"a": 2}, M.LAST_WRITE_WINS, **source_created_later).data == {
        "a": 2
    }
    target_written_later = _logs(t0, {"a": 1})
    assert plan_merge({"a": 1}, {"a": 2}, M.LAST_WRITE_WINS, **target_written_later).data == {
        "a": 1
    }
    assert plan_merge({"a": 1}, {"a": 2}, M.LAST_WRITE_WINS, **_logs(t0)).data == {"a": 2}


def test_last_write_wins_needs_both_logs() -> None:
    with pytest.raises(ValueError, match="write logs"):
        plan_merge({}, {}, M.LAST_WRITE_WINS)


def test_deep_merge_unites_lists_and_otherwise_takes_the_source() -> None:
    target = {"tags": ["a", "b", "a"], "cfg": {"model": "t", "keep": 1}, "n": [1]}
    source = {"tags": ["b", "c", {"x": 1}], "cfg": {"model": "s"}, "n": 7}
    plan = plan_merge(target, source, M.DEEP_MERGE)
    assert plan.data == {
        "tags": ["a", "b", "a", "c", {"x": 1}],
        "cfg": {"model": "s", "keep": 1},
        "n": 7,
    }
    assert [e.path for e in plan.edits] == ["cfg.model", "n", "tags"]


def test_deep_merge_ignores_the_base() -> None:
    # The source did not change `a` since the base, yet DEEP_MERGE still takes its value.
    plan = plan_merge({"a": 2}, {"a": 1}, M.DEEP_MERGE, base={"a": 1})
    assert plan.data == {"a": 1}


def test_prefer_source_without_a_base_takes_the_source_everywhere() -> None:
    plan = plan_merge({"a": 1, "b": {"c": 1}}, {"a": 2, "b": {"c": 2}}, M.PREFER_SOURCE)
    assert plan.data == {"a": 2, "b": {"c": 2}}
    assert [c.path for c in plan.conflicts] == ["a", "b.c"]


def test_prefer_target_without_a_base_keeps_the_target_at_every_difference() -> None:
    plan = plan_merge({"a": 1, "t": 0}, {"a": 2, "s": 0}, M.PREFER_TARGET)
    assert plan.data == {"a": 1, "t": 0, "s": 0}
    assert plan.edits == (Edit("s", MISSING, 0),)


BASE = {"a": 0, "b": 0, "c": 0}
TARGET = {"a": 1, "b": 0, "c": 1}  # changed a and c since the base
SOURCE = {"a": 0, "b": 2, "c": 2}  # changed b and c since the base


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (M.PREFER_SOURCE, {"a": 1, "b": 2, "c": 2}),
        (M.PREFER_TARGET, {"a": 1, "b": 2, "c": 1}),
        (M.MANUAL, {"a": 1, "b": 2, "c": 1}),
    ],
)
def test_with_a_base_one_sided_changes_win_and_conflicts_follow_the_strategy(
    strategy: MergeStrategy, expected: dict[str, int]
) -> None:
    plan = plan_merge(TARGET, SOURCE, strategy, base=BASE)
    assert plan.data == expected
    assert [(c.path, c.value, c.other_value, c.base_value) for c in plan.conflicts] == [
        ("c", 1, 2, 0)
    ]


def test_manual_proposes_the_merge_and_reports_conflicts_without_guessing() -> None:
    plan = plan_merge({"x": "t", "keep": 1}, {"x": "s", "new": 2}, M.MANUAL)
    assert plan.data == {"x": "t", "keep": 1, "new": 2}
    assert [(c.path, c.value, c.other_value) for c in plan.conflicts] == [("x", "t", "s")]
    assert plan.edits == (Edit("new", MISSING, 2),)


def test_edits_replayed_in_order_rebuild_the_merged_document() -> None:
    target: dict[str, Any] = {"a": {"b": 1}, "z": [1]}
    source: dict[str, Any] = {"a": {"b": 2, "c": {"d": 1}}, "y": True, "z": [2]}
    for strategy in (M.DEEP_MERGE, M.PREFER_SOURCE):
        plan = plan_merge(target, source, strategy)
        replayed: dict[str, Any] = {"a": {"b": 1}, "z": [1]}
        for edit in plan.edits:
            set_at(replayed, tuple(edit.path.split(".")), edit.new, "path")
        assert replayed == plan.data
