"""Update operations: what they write, the changes they report, and the limits they obey."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.common.errors import InvalidArgument, ResourceExhausted
from orchestrator.context.domain import (
    MISSING,
    Context,
    ContextEventType,
    Edit,
    Operation,
    OperationType,
    apply_operations,
)
from orchestrator.context.domain.changes import collapse

MakeContext = Callable[..., Context]


def set_op(path: str, value: Any = MISSING) -> Operation:
    return Operation(OperationType.SET, path, value)


def delete_op(path: str) -> Operation:
    return Operation(OperationType.DELETE, path)


def test_operations_apply_in_order_and_report_one_edit_per_changed_path() -> None:
    data = {"cfg": {"model": "a"}, "old": 1}
    doc, edits = apply_operations(
        data,
        [
            set_op("cfg.model", "b"),
            set_op("cfg.tools", ["x"]),
            delete_op("old"),
            delete_op("absent"),
        ],
    )
    assert doc == {"cfg": {"model": "b", "tools": ["x"]}}
    assert edits == [
        Edit("cfg.model", "a", "b"),
        Edit("cfg.tools", MISSING, ["x"]),
        Edit("old", 1, MISSING),
    ]
    assert data == {"cfg": {"model": "a"}, "old": 1}


def test_setting_a_value_it_already_has_records_nothing() -> None:
    doc, edits = apply_operations(
        {"a": {"b": [1]}}, [set_op("a.b", [1]), set_op("a", {"b": [1.0]})]
    )
    assert edits == [] and doc == {"a": {"b": [1]}}


def test_null_is_a_value_and_not_a_delete() -> None:
    doc, edits = apply_operations({"a": 1}, [set_op("a", None)])
    assert doc == {"a": None} and edits == [Edit("a", 1, None)]


def test_a_set_without_a_value_is_refused() -> None:
    with pytest.raises(InvalidArgument) as err:
        apply_operations({}, [set_op("a")])
    assert err.value.field == "operations[0].value" and "DELETE" in err.value.message


def test_repeated_writes_of_a_path_fold_into_one_edit() -> None:
    _, edits = apply_operations({"n": 0}, [set_op("n", 1), set_op("other", 1), set_op("n", 2)])
    assert edits == [Edit("n", 0, 2), Edit("other", MISSING, 1)]
    _, edits = apply_operations({"n": 0}, [set_op("n", 1), set_op("n", 0)])
    assert edits == []


def test_writes_to_related_paths_stay_apart_so_replay_gives_the_same_document() -> None:
    edits = collapse([Edit("a.b", MISSING, 1), Edit("a", {"b": 1}, {}), Edit("a.b", MISSING, 2)])
    assert [e.path for e in edits] == ["a.b", "a", "a.b"]


def test_the_empty_path_sets_or_clears_the_whole_document() -> None:
    doc, edits = apply_operations({"a": 1}, [set_op("", {"b": 2})])
    assert doc == {"b": 2} and edits == [Edit("", {"a": 1}, {"b": 2})]
    doc, _ = apply_operations({"a": 1}, [delete_op("")])
    assert doc == {}


def test_one_bad_operation_refuses_them_all_naming_its_index() -> None:
    data: dict[str, Any] = {"a": "text"}
    with pytest.raises(InvalidArgument) as err:
        apply_operations(data, [set_op("ok", 1), set_op("a.b", 1)])
    assert err.value.field == "operations[1].path"
    assert "'a.b'" in err.value.message and "goes through 'a'" in err.value.message
    assert data == {"a": "text"}


@pytest.mark.parametrize("count", [0, 1001])
def test_an_update_takes_1_to_1000_operations(count: int) -> None:
    with pytest.raises(InvalidArgument, match="1 to 1000 operations") as err:
        apply_operations({}, [set_op(f"k{i}", i) for i in range(count)])
    assert err.value.field == "operations"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("nan"), "NaN"),
        ({"a.b": 1}, "contains a dot"),
        ({"": 1}, "1 to 128 characters"),
        ({"x": object()}, "not a JSON value"),
    ],
)
def test_values_must_be_json_a_context_can_hold(value: Any, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem) as err:
        apply_operations({}, [set_op("v", value)])
    assert err.value.field == "operations[0].value"


def test_nesting_is_limited_to_32_levels_counting_the_path() -> None:
    deep: Any = 1
    for _ in range(30):
        deep = [deep]
    apply_operations({}, [set_op("a.b", deep)])  # 2 + 30 levels
    with pytest.raises(InvalidArgument, match="at most 32 levels"):
        apply_operations({}, [set_op("a.b.c", deep)])


def test_a_value_over_64_kib_is_invalid_and_names_the_limit() -> None:
    apply_operations({}, [set_op("blob", "x" * (64 * 1024 - 2))])  # 65536 bytes with its quotes
    with pytest.raises(InvalidArgument) as err:
        apply_operations({}, [set_op("blob", "x" * (64 * 1024 - 1))])
    assert "65537 bytes" in err.value.message and "65536 bytes (64 KiB)" in err.value.message
    assert "'blob'" in err.value.message and err.value.field == "operations[0].value"


def test_a_document_over_1_mib_is_resource_exhausted(make_context: MakeContext) -> None:
    chunk = "x" * 60_000
    context = make_context({f"k{i}": chunk for i in range(17)})  # about 1.02 MB
    with pytest.raises(ResourceExhausted) as err:
        context.update(context.created_at, [set_op("k17", chunk)])
    assert "1048576 bytes (1 MiB)" in err.value.message
    assert context.version == 1 and "k17" not in context.data


def test_one_write_may_change_at_most_512_kib(make_context: MakeContext) -> None:
    chunk = "x" * 60_000
    context = make_context({})
    ops = [set_op(f"k{i}", chunk) for i in range(9)]  # 540 kB of new values
    with pytest.raises(ResourceExhausted, match=r"524288 bytes \(512 KiB\)"):
        context.update(context.created_at, ops)
    assert context.data == {} and context.pull_events() == []


def test_an_update_bumps_the_version_once_and_records_its_changes(
    make_context: MakeContext,
) -> None:
    context = make_context({"a": 1})
    later = context.created_at.replace(minute=5)
    changes = context.update(later, [set_op("a", 2), set_op("b.c", True)], actor="agent-7")
    assert context.version == 2 and context.updated_at == later
    assert [(c.path, c.old, c.new, c.version, c.changed_by) for c in changes] == [
        ("a", 1, 2, 2, "agent-7"),
        ("b.c", MISSING, True, 2, "agent-7"),
    ]
    [event] = context.pull_events()
    assert (event.type, event.version, event.changes) == (
        ContextEventType.UPDATED,
        2,
        tuple(changes),
    )


def test_an_update_that_changes_nothing_keeps_the_version(make_context: MakeContext) -> None:
    context = make_context({"a": 1})
    assert context.update(context.created_at, [set_op("a", 1), delete_op("zz")]) == []
    assert context.version == 1 and context.pull_events() == []
