"""Diffs between two documents, with and without a common base."""

from __future__ import annotations

from typing import Any

from orchestrator.context.domain import MISSING, DiffEntry, diff


def _paths(entries: tuple[DiffEntry, ...]) -> list[str]:
    return [e.path for e in entries]


def test_equal_documents_have_an_empty_diff() -> None:
    doc = {"a": {"b": [1, 2]}, "c": None}
    found = diff(doc, {"a": {"b": [1, 2]}, "c": None}, None)
    assert found.is_empty and found.conflicts == ()


def test_added_removed_and_changed_are_read_towards_the_other() -> None:
    first = {"keep": 1, "gone": True, "moved": "x"}
    other = {"keep": 1, "new": [1], "moved": "y"}
    found = diff(first, other, None)
    assert found.added == (DiffEntry("new", MISSING, [1]),)
    assert found.removed == (DiffEntry("gone", True, MISSING),)
    assert found.changed == (DiffEntry("moved", "x", "y"),)


def test_objects_are_compared_key_by_key_and_lists_whole() -> None:
    first = {"cfg": {"model": "a", "tools": ["x", "y"], "deep": {"n": 1}}}
    other = {"cfg": {"model": "b", "tools": ["y", "x"], "deep": {"n": 1, "m": 2}}}
    found = diff(first, other, None)
    assert _paths(found.changed) == ["cfg.model", "cfg.tools"]
    assert _paths(found.added) == ["cfg.deep.m"]


def test_an_object_against_a_scalar_is_one_change() -> None:
    found = diff({"a": {"b": 1}}, {"a": 5}, None)
    assert found.changed == (DiffEntry("a", {"b": 1}, 5),)
    assert found.added == found.removed == ()


def test_an_empty_object_gaining_keys_is_an_addition_inside_it() -> None:
    found = diff({"a": {}}, {"a": {"x": 1}}, None)
    assert _paths(found.added) == ["a.x"] and found.changed == ()


def test_equality_is_json_equality() -> None:
    assert diff({"n": 1}, {"n": 1.0}, None).is_empty
    assert _paths(diff({"flag": True}, {"flag": 1}, None).changed) == ["flag"]
    assert _paths(diff({"v": None}, {"v": 0}, None).changed) == ["v"]
    assert _paths(diff({"v": "1"}, {"v": 1}, None).changed) == ["v"]


def test_without_a_base_every_changed_path_is_a_conflict() -> None:
    found = diff({"a": 1, "b": 2, "only": 0}, {"a": 9, "b": 8}, None)
    assert found.conflicts == found.changed and _paths(found.conflicts) == ["a", "b"]
    assert all(e.base_value is MISSING for e in found.changed)


def test_with_a_base_only_paths_both_sides_changed_conflict() -> None:
    base: dict[str, Any] = {"a": 1, "b": 1, "c": 1}
    first = {"a": 2, "b": 1, "c": 3}  # changed a and c
    other = {"a": 1, "b": 5, "c": 4}  # changed b and c
    found = diff(first, other, base)
    assert _paths(found.changed) == ["a", "b", "c"]
    assert found.conflicts == (DiffEntry("c", 3, 4, 1),)
    assert [e.base_value for e in found.changed] == [1, 1, 1]


def test_a_path_both_sides_added_differently_conflicts() -> None:
    found = diff({"n": 1}, {"n": 2}, {})
    assert found.conflicts == (DiffEntry("n", 1, 2, MISSING),)


def test_base_values_are_reported_for_additions_and_removals_too() -> None:
    found = diff({"x": 1}, {"y": 2}, {"x": 0, "y": 0})
    assert found.removed == (DiffEntry("x", 1, MISSING, 0),)
    assert found.added == (DiffEntry("y", MISSING, 2, 0),)


def test_a_base_value_below_a_non_object_counts_as_absent() -> None:
    found = diff({"a": {"b": 1}}, {"a": {"b": 2}}, {"a": "flat"})
    assert found.changed[0].base_value is MISSING and len(found.conflicts) == 1
