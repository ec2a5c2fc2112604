"""Dot paths: parsing, reading, writing and deleting, and paths that cross a non-object."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.common.errors import InvalidArgument
from orchestrator.context.domain import MISSING, parse_path
from orchestrator.context.domain.paths import delete_at, get_at, is_within, related, set_at


def test_the_empty_path_is_the_whole_document() -> None:
    doc = {"a": 1}
    assert parse_path("", "path") == ()
    assert get_at(doc, (), "path") is doc


def test_segments_are_object_keys() -> None:
    assert parse_path("config.model", "path") == ("config", "model")
    assert parse_path("with-dash_and:colon@x", "path") == ("with-dash_and:colon@x",)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("a..b", "empty segment"),
        (".a", "empty segment"),
        ("a.", "empty segment"),
        ("a.\x00", "control character"),
        ("k" * 129, "1 to 128 characters"),
        (".".join(["x"] * 33), "at most 32"),
    ],
)
def test_malformed_paths_are_refused_naming_the_problem(path: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_path(path, "operations[0].path")
    assert problem in err.value.message
    assert err.value.field == "operations[0].path"


def test_a_path_of_32_segments_is_allowed() -> None:
    assert len(parse_path(".".join(["x"] * 32), "path")) == 32


def test_get_finds_nested_values_and_missing_ones() -> None:
    doc: dict[str, Any] = {"config": {"model": "m", "nothing": None}}
    assert get_at(doc, ("config", "model"), "path") == "m"
    assert get_at(doc, ("config", "nothing"), "path") is None
    assert get_at(doc, ("config", "absent"), "path") is MISSING
    assert get_at(doc, ("absent", "deeper"), "path") is MISSING


@pytest.mark.parametrize(
    ("value", "kind"),
    [("text", "string"), (3, "number"), ([1, 2], "list"), (None, "null"), (True, "boolean")],
)
def test_every_operation_refuses_a_path_through_a_non_object(value: Any, kind: str) -> None:
    doc: dict[str, Any] = {"a": {"b": value}}
    for action in (
        lambda: get_at(doc, ("a", "b", "c"), "path"),
        lambda: set_at(doc, ("a", "b", "c", "d"), 1, "path"),
        lambda: delete_at(doc, ("a", "b", "c"), "path"),
    ):
        with pytest.raises(InvalidArgument) as err:
            action()
        assert "'a.b'" in err.value.message and f"holds a {kind}" in err.value.message
    assert doc == {"a": {"b": value}}


def test_set_creates_missing_parent_objects() -> None:
    doc: dict[str, Any] = {}
    set_at(doc, ("a", "b", "c"), [1], "path")
    assert doc == {"a": {"b": {"c": [1]}}}


def test_set_stores_a_copy_of_the_value() -> None:
    value = {"x": [1]}
    doc = set_at({}, ("k",), value, "path")
    value["x"].append(2)
    assert doc == {"k": {"x": [1]}}


def test_set_of_the_empty_path_replaces_the_document_with_an_object_only() -> None:
    assert set_at({"old": 1}, (), {"new": 2}, "path") == {"new": 2}
    with pytest.raises(InvalidArgument, match="must be an object"):
        set_at({}, (), [1], "path")


def test_delete_removes_a_key_and_ignores_absent_paths() -> None:
    doc: dict[str, Any] = {"a": {"b": 1, "c": 2}}
    delete_at(doc, ("a", "b"), "path")
    delete_at(doc, ("a", "zz"), "path")
    delete_at(doc, ("nope", "zz"), "path")
    assert doc == {"a": {"c": 2}}
    assert delete_at(doc, (), "path") == {}


def test_within_and_related() -> None:
    assert is_within("a.b", "a") and is_within("a", "a") and is_within("a", "")
    assert not is_within("ab", "a") and not is_within("a", "a.b")
    assert related("a", "a.b") and related("a.b", "a") and related("", "x")
    assert not related("a.b", "a.c")
