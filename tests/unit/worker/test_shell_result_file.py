"""The shell executor's result file: a command reports its usage and more of its result by
writing JSON to $ORCH_RESULT_FILE; a file that cannot be used never fails the run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2

from orchestrator.api.common.v1 import common_pb2
from orchestrator.api.task.v1 import task_pb2
from orchestrator.worker.executors import ShellExecutor
from orchestrator.worker.executors.base import Job
from orchestrator.worker.executors.result_file import MAX_BYTES, read_result_file

pytestmark = pytest.mark.timeout(20)


def _job(command: str, workspace: Path) -> Job:
    fields = struct_pb2.Struct()
    fields.update({"command": command})
    return Job(task_pb2.Task(id="t-1", session_id="s-1", input=fields), workspace, asyncio.Event())


async def test_usage_and_details_written_by_the_command_come_back(tmp_path: Path) -> None:
    doc = {
        "usage": {"input_tokens": 500, "output_tokens": 200, "cost_usd": 0.01},
        "summary": "wrote the parser",
        "files": ["parser.py"],
    }
    command = f"echo '{json.dumps(doc)}' > \"$ORCH_RESULT_FILE\""
    result = await ShellExecutor().run(_job(command, tmp_path))
    assert result.succeeded
    assert result.usage == common_pb2.Usage(input_tokens=500, output_tokens=200, cost_usd=0.01)
    assert dict(result.details) == {"summary": "wrote the parser", "files": ["parser.py"]}


async def test_a_failing_command_reports_its_usage_too(tmp_path: Path) -> None:
    command = 'echo \'{"usage": {"output_tokens": 7}}\' > "$ORCH_RESULT_FILE"; exit 2'
    result = await ShellExecutor().run(_job(command, tmp_path))
    assert result.exit_code == 2 and result.usage == common_pb2.Usage(output_tokens=7)


async def test_each_run_gets_its_own_file_outside_the_workspace_and_it_is_removed(
    tmp_path: Path,
) -> None:
    command = 'echo "$ORCH_RESULT_FILE" >> seen.txt; test ! -e "$ORCH_RESULT_FILE"'
    executor = ShellExecutor()
    for _ in range(2):
        assert (await executor.run(_job(command, tmp_path))).succeeded
    first, second = (tmp_path / "seen.txt").read_text().split()
    assert first != second
    assert not Path(first).is_relative_to(tmp_path)
    assert not Path(first).exists() and not Path(first).parent.exists()


async def test_no_file_means_no_usage_and_no_details(tmp_path: Path) -> None:
    result = await ShellExecutor().run(_job("true", tmp_path))
    assert result.usage is None and dict(result.details) == {}


def _read(tmp_path: Path, content: bytes | str) -> tuple[Any, dict[str, Any]]:
    path = tmp_path / "result.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return read_result_file(path)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "must hold a JSON object, not a list"),
        ('{"a": NaN}', "is not JSON: NaN is not a JSON number"),
        (b"\xff\xfe", "is not JSON"),
    ],
)
def test_an_unusable_file_is_reported_in_the_result(
    tmp_path: Path, content: str | bytes, error: str
) -> None:
    usage, details = _read(tmp_path, content)
    assert usage is None
    assert details["result_file_error"].startswith("ORCH_RESULT_FILE ")
    assert error in details["result_file_error"]


@pytest.mark.parametrize(
    ("spent", "error"),
    [
        ([1], "usage: must be a JSON object"),
        ({"input_tokens": -5}, "input_tokens must be a finite number >= 0"),
        ({"cost_usd": -0.5}, "cost_usd must be a finite number >= 0"),
        ({"tokens": 5}, "usage: "),
        ({"input_tokens": "many"}, "usage: "),
    ],
)
def test_bad_usage_is_dropped_and_named_but_the_details_stay(
    tmp_path: Path, spent: object, error: str
) -> None:
    usage, details = _read(tmp_path, json.dumps({"usage": spent, "note": "kept"}))
    assert usage is None
    assert details["note"] == "kept" and error in details["result_file_error"]


def test_a_file_too_large_is_refused(tmp_path: Path) -> None:
    usage, details = _read(tmp_path, '{"x": "' + "a" * MAX_BYTES + '"}')
    assert usage is None and "larger than" in details["result_file_error"]


def test_a_file_without_usage_gives_only_details(tmp_path: Path) -> None:
    assert _read(tmp_path, '{"summary": "ok"}') == (None, {"summary": "ok"})


async def test_the_command_reads_the_session_context_and_shares_values(tmp_path: Path) -> None:
    from orchestrator.worker.executors.base import SessionBrief

    job = _job(
        'cp "$ORCH_CONTEXT_FILE" seen.json;'
        ' echo \'{"context": {"api.port": 8080, "notes": {"a": 1}}, "summary": "ok"}\''
        ' > "$ORCH_RESULT_FILE"',
        tmp_path,
    )
    job.session = SessionBrief(id="s-1", context={"api": {"host": "db"}})
    result = await ShellExecutor().run(job)
    assert result.succeeded
    assert json.loads((tmp_path / "seen.json").read_text()) == {"api": {"host": "db"}}
    assert dict(result.context) == {"api.port": 8080, "notes": {"a": 1}}
    assert dict(result.details) == {"summary": "ok"}  # shared values are not result fields


async def test_without_a_session_the_context_file_is_an_empty_object(tmp_path: Path) -> None:
    result = await ShellExecutor().run(_job('cp "$ORCH_CONTEXT_FILE" seen.json', tmp_path))
    assert result.succeeded and json.loads((tmp_path / "seen.json").read_text()) == {}
    assert dict(result.context) == {}


@pytest.mark.parametrize(
    ("shared", "problem"),
    [
        ([1, 2], "context must be a JSON object, not list"),
        ({"": 1}, "context: '' is not a dot path"),
        ({"a..b": 1}, "context: 'a..b' is not a dot path"),
    ],
)
def test_a_context_that_is_not_dot_paths_shares_nothing_and_says_why(
    shared: Any, problem: str
) -> None:
    from orchestrator.worker.executors.result_file import split_context

    details, context = split_context({"context": shared, "summary": "ok"})
    assert context == {}
    assert details == {"summary": "ok", "result_file_error": f"ORCH_RESULT_FILE {problem}"}
