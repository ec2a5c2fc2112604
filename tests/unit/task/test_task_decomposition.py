"""Each template, the AUTO choice, the text heuristics, estimates and recursion depth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from orchestrator.common.errors import FailedPrecondition, InvalidArgument
from orchestrator.task.domain import (
    Capability,
    DecompositionTemplate,
    Estimate,
    Task,
    TaskEventType,
    TaskPriority,
    TaskStatus,
    choose_template,
    complexity_of,
    decompose,
)

MakeTask = Callable[..., Task]
C = Capability
T = DecompositionTemplate
# 12 h expected: every part of one level stays under the 4 h split threshold.
MEDIUM = Estimate(6.0, 12.0, 18.0)


def level_one(task: Task, template: T, t0: datetime) -> tuple[list[Task], dict[str, set[str]]]:
    """The subtasks by title, and for each the titles of the siblings it waits for."""
    result = decompose(task, template, 1, t0)
    titles = {s.id: s.title.split(":")[0] for s in result.subtasks}
    after = {
        titles[s.id]: {titles[d.predecessor_id] for d in s.dependencies} for s in result.subtasks
    }
    return result.subtasks, after


def test_microservice(make_task: MakeTask, t0: datetime) -> None:
    task = make_task(title="Billing service", estimate=MEDIUM)
    subtasks, after = level_one(task, T.MICROSERVICE, t0)
    assert [s.title for s in subtasks] == [
        "API layer: Billing service",
        "Service layer: Billing service",
        "Data layer: Billing service",
        "Shared components: Billing service",
        "Tests: Billing service",
    ]
    assert after == {
        "API layer": {"Service layer"},
        "Service layer": {"Data layer", "Shared components"},
        "Data layer": {"Shared components"},
        "Shared components": set(),
        "Tests": {"API layer", "Service layer", "Data layer"},
    }
    assert subtasks[4].required_capabilities == [C.TEST_GENERATION, C.TESTING]
    assert subtasks[4].task_type == "test"


def test_crud(make_task: MakeTask, t0: datetime) -> None:
    subtasks, after = level_one(make_task(estimate=MEDIUM), T.CRUD, t0)
    assert list(after) == ["Create", "Read", "Update", "Delete", "Validate", "Authorize"]
    assert after["Authorize"] == {"Create", "Read", "Update", "Delete"}
    assert after["Update"] == {"Validate", "Read"} and after["Read"] == set()
    assert C.SECURITY_AUDIT in subtasks[5].required_capabilities


def test_security(make_task: MakeTask, t0: datetime) -> None:
    subtasks, after = level_one(make_task(estimate=MEDIUM), T.SECURITY, t0)
    assert list(after) == ["Threat model", "Identity", "Access control", "Encryption", "Audit"]
    assert after["Audit"] == {"Access control", "Encryption"}
    assert after["Threat model"] == set()
    assert all(C.SECURITY_AUDIT in s.required_capabilities for s in subtasks)


def test_ui_component(make_task: MakeTask, t0: datetime) -> None:
    _, after = level_one(make_task(estimate=MEDIUM), T.UI_COMPONENT, t0)
    assert after == {
        "Components": set(),
        "State": {"Components"},
        "Styles": {"Components"},
        "Tests": {"Components", "State", "Styles"},
    }


@pytest.mark.parametrize("template", [T.MICROSERVICE, T.CRUD, T.SECURITY, T.UI_COMPONENT])
def test_estimates_share_the_parent_and_set_complexity(
    make_task: MakeTask, t0: datetime, template: T
) -> None:
    task = make_task(estimate=MEDIUM, priority="high", technologies=["python"], max_attempts=5)
    subtasks = decompose(task, template, 1, t0).subtasks
    assert sum(s.estimate.expected_hours for s in subtasks) == pytest.approx(12.0)
    for s in subtasks:
        # MEDIUM's sigma is a sixth of its expected hours; each share keeps that shape.
        assert s.estimate.sigma_hours == pytest.approx(s.estimate.expected_hours / 6)
        assert s.complexity is complexity_of(s.estimate.expected_hours)
        assert (s.priority, s.technologies, s.max_attempts) == (TaskPriority.HIGH, ["python"], 5)
        assert (s.parent_id, s.depth, s.session_id) == (task.id, 1, task.session_id)
        assert s.status is TaskStatus.PENDING and s.metadata["decomposed_from"] == task.id


def test_the_task_becomes_a_parent(make_task: MakeTask, t0: datetime) -> None:
    task = make_task("ready", estimate=MEDIUM)
    result = decompose(task, T.CRUD, 1, t0, actor="planner")
    assert task.child_ids == [s.id for s in result.subtasks] and task.version == 2
    [event] = task.pull_events()
    assert event.type is TaskEventType.DECOMPOSED and event.actor == "planner"
    assert all(s.pull_events()[0].type is TaskEventType.CREATED for s in result.subtasks)
    assert result.dependencies == [d for s in result.subtasks for d in s.dependencies]


@pytest.mark.parametrize(
    ("title", "description", "template"),
    [
        ("Billing microservice", "Expose a REST API for invoices.", T.MICROSERVICE),
        ("Add login", "Authentication with OAuth, encrypt the tokens at rest.", T.SECURITY),
        ("Settings page", "A React component with a form.", T.UI_COMPONENT),
        ("Customer records", "Create, read, update and delete customers.", T.CRUD),
        ("Tidy the repo", "Rename a few things.", None),
    ],
)
def test_auto_chooses_by_words(title: str, description: str, template: T | None) -> None:
    assert choose_template(title, description) is template


def titles_and_after(task: Task, t0: datetime) -> list[tuple[str, list[str]]]:
    result = decompose(task, T.AUTO, 1, t0)
    names = {s.id: s.title for s in result.subtasks}
    return [(s.title, [names[d.predecessor_id] for d in s.dependencies]) for s in result.subtasks]


def test_bullets_are_parallel_parts(make_task: MakeTask, t0: datetime) -> None:
    task = make_task(title="Chores", description="Do these:\n- tidy the docs\n- bump the pins\n")
    assert titles_and_after(task, t0) == [("tidy the docs", []), ("bump the pins", [])]


def test_numbered_steps_are_a_sequence(make_task: MakeTask, t0: datetime) -> None:
    task = make_task(title="Chores", description="1. write the tests\n2) fix the bug\n3. ship it")
    assert titles_and_after(task, t0) == [
        ("write the tests", []),
        ("fix the bug", ["write the tests"]),
        ("ship it", ["fix the bug"]),
    ]
    subtasks = decompose(
        make_task(title="x", description="1. write tests\n2. fix it"), T.AUTO, 1, t0
    )
    assert subtasks.subtasks[0].required_capabilities == [C.TEST_GENERATION, C.TESTING]


def test_and_then_and_sentences_are_sequences(make_task: MakeTask, t0: datetime) -> None:
    then = make_task(title="Chores", description="profile the parser and then tune the hot loop")
    assert titles_and_after(then, t0) == [
        ("profile the parser", []),
        ("tune the hot loop", ["profile the parser"]),
    ]
    sentences = make_task(title="Chores", description="Read the old notes. Write a summary.")
    assert [t for t, _ in titles_and_after(sentences, t0)] == [
        "Read the old notes",
        "Write a summary",
    ]


def test_text_without_structure_splits_into_design_implement_verify(
    make_task: MakeTask, t0: datetime
) -> None:
    task = make_task(title="Tidy the repo", description="")
    assert titles_and_after(task, t0) == [
        ("Design: Tidy the repo", []),
        ("Implement: Tidy the repo", ["Design: Tidy the repo"]),
        ("Verify: Tidy the repo", ["Implement: Tidy the repo"]),
    ]


def test_recursion_reaches_three_levels_on_large_work(make_task: MakeTask, t0: datetime) -> None:
    task = make_task(title="Billing service", estimate=Estimate(40.0, 80.0, 160.0))
    result = decompose(task, T.AUTO, 0, t0)
    depths = [s.depth for s in result.subtasks]
    assert depths == sorted(depths) and max(depths) == 3
    by_id = {s.id: s for s in result.subtasks}
    # Parents before their children, and every parent lists its children.
    seen = {task.id}
    for s in result.subtasks:
        assert s.parent_id in seen
        seen.add(s.id)
        assert s.child_ids == [c.id for c in result.subtasks if c.parent_id == s.id]
    api = next(s for s in result.subtasks if s.title.startswith("API layer"))
    assert [by_id[c].title.split(":")[0] for c in api.child_ids][:2] == ["Create", "Read"]
    # Small parts stop splitting before the depth runs out.
    assert all(s.estimate.expected_hours > 4 for s in result.subtasks if s.child_ids)


def test_max_depth_bounds_the_levels(make_task: MakeTask, t0: datetime) -> None:
    big = Estimate(400.0, 800.0, 1600.0)
    one = decompose(make_task(estimate=big), T.MICROSERVICE, 1, t0)
    assert {s.depth for s in one.subtasks} == {1}
    five = decompose(make_task(estimate=big), T.MICROSERVICE, 5, t0)
    assert max(s.depth for s in five.subtasks) <= 5 and len(five.subtasks) <= 2_000


@pytest.mark.parametrize("depth", [-1, 6, 100])
def test_bad_depth_is_refused_before_any_change(
    make_task: MakeTask, t0: datetime, depth: int
) -> None:
    task = make_task()
    with pytest.raises(InvalidArgument) as err:
        decompose(task, T.AUTO, depth, t0)
    assert err.value.field == "max_depth" and task.version == 1 and not task.child_ids


def test_only_pending_or_ready_leaves_split(make_task: MakeTask, t0: datetime) -> None:
    running = make_task("in_progress")
    with pytest.raises(FailedPrecondition):
        decompose(running, T.CRUD, 1, t0)
    assert running.version == 1
    task = make_task(estimate=MEDIUM)
    decompose(task, T.CRUD, 1, t0)
    with pytest.raises(FailedPrecondition, match="already decomposed"):
        decompose(task, T.CRUD, 1, t0)
