"""Task workspaces against real git and real folders: worktrees, branches, integration, and
snapshot diffs for folders without a repository."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from orchestrator.api.task.v1 import task_pb2
from orchestrator.worker.executors.base import Job, SessionBrief
from orchestrator.worker.executors.shell import ShellExecutor, TaskInputError
from orchestrator.worker.workspace import (
    FolderSnapshot,
    GitWorktree,
    WorkspaceError,
    workspace_for,
)

pytestmark = pytest.mark.timeout(30)
SESSION = "5e55a000-0000-4000-8000-000000000001"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", ".")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    return path


def _task(number: int) -> task_pb2.Task:
    return task_pb2.Task(id=f"{number:08x}-aaaa-4bbb-8ccc-000000000000", session_id=SESSION)


def _job(task: task_pb2.Task, root: Path, repository: str = "") -> Job:
    brief = SessionBrief(id=SESSION, repository=repository)
    return Job(task=task, workspace=root, cancel=asyncio.Event(), session=brief)


async def test_a_task_gets_its_own_worktree_and_branch(repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    base = _git(repo, "rev-parse", "HEAD")
    workspace = await workspace_for(_job(_task(1), root, str(repo)))
    assert isinstance(workspace, GitWorktree)
    assert workspace.path == root / "worktrees" / "00000001"
    assert _git(workspace.path, "branch", "--show-current") == "orch/00000001"

    (workspace.path / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (workspace.path / "notes.md").write_text("fixed\n")
    changes = await workspace.changes("Fix add")

    assert changes.branch == "orch/00000001" and changes.base_commit == base
    assert changes.head_commit == _git(repo, "rev-parse", "orch/00000001") != base
    assert changes.changed_files == ["calc.py", "notes.md"]
    assert "-    return a - b\n+    return a + b" in changes.diff
    assert _git(repo, "log", "-1", "--format=%s", "orch/00000001") == "Fix add"
    # The session's integration branch took the work; the main checkout did not change.
    assert workspace.details()["integrated"] is True
    assert _git(repo, "rev-parse", f"orch/session-{SESSION[:8]}") == changes.head_commit
    assert (repo / "calc.py").read_text().endswith("a - b\n")


async def test_a_later_task_starts_from_the_work_of_earlier_ones(
    repo: Path, tmp_path: Path
) -> None:
    first = await GitWorktree.open(str(repo), tmp_path / "ws", _task(1))
    (first.path / "a.txt").write_text("a\n")
    done = await first.changes("a")
    second = await GitWorktree.open(str(repo), tmp_path / "ws", _task(2))
    assert second.base_commit == done.head_commit and (second.path / "a.txt").exists()


async def test_parallel_tasks_are_merged_and_a_conflict_is_reported(
    repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    one, two, three = [await GitWorktree.open(str(repo), root, _task(n)) for n in (1, 2, 3)]
    (one.path / "one.txt").write_text("1\n")
    (two.path / "two.txt").write_text("2\n")
    (three.path / "one.txt").write_text("not 1\n")
    await one.changes("one")
    changed = await two.changes("two")
    # Two's own changes are its diff, though the integration merged one's work in.
    assert changed.changed_files == ["two.txt"] and two.integrated
    tip = f"orch/session-{SESSION[:8]}"
    assert set(_git(repo, "ls-tree", "--name-only", tip).split()) >= {"one.txt", "two.txt"}
    await three.changes("three")
    assert three.integrated is False
    assert _git(repo, "show", f"{tip}:one.txt") == "1"


async def test_a_task_without_changes_reports_an_empty_diff(repo: Path, tmp_path: Path) -> None:
    workspace = await GitWorktree.open(str(repo), tmp_path / "ws", _task(1))
    changes = await workspace.changes("nothing")
    assert changes.head_commit == changes.base_commit and changes.diff == ""
    assert list(changes.changed_files) == []


async def test_a_retried_task_starts_again_from_a_clean_worktree(
    repo: Path, tmp_path: Path
) -> None:
    first = await GitWorktree.open(str(repo), tmp_path / "ws", _task(1))
    (first.path / "half-done.txt").write_text("left over\n")
    again = await GitWorktree.open(str(repo), tmp_path / "ws", _task(1))
    assert again.path == first.path and not (again.path / "half-done.txt").exists()


async def test_a_remote_repository_is_cloned_once(repo: Path, tmp_path: Path) -> None:
    url = f"file://{repo}"
    one = await GitWorktree.open(url, tmp_path / "ws", _task(1))
    two = await GitWorktree.open(url, tmp_path / "ws", _task(2))
    assert one.repository == two.repository
    assert one.repository.parent == tmp_path / "ws" / "repositories"
    assert (one.path / "calc.py").exists()


async def test_a_missing_or_plain_folder_is_no_repository(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        await workspace_for(_job(_task(1), tmp_path / "ws", str(tmp_path / "nowhere")))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(WorkspaceError, match="not a git repository"):
        await workspace_for(_job(_task(1), tmp_path / "ws", str(plain)))


async def test_without_a_repository_snapshots_tell_the_changes(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "keep.txt").write_text("same\n")
    (root / "edit.txt").write_text("old\n")
    (root / "gone.txt").write_text("bye\n")
    (root / "blob.bin").write_bytes(b"\0\1")
    (root / ".git").mkdir()
    workspace = await workspace_for(_job(_task(1), root))
    assert isinstance(workspace, FolderSnapshot)

    (root / "edit.txt").write_text("new\n")
    (root / "gone.txt").unlink()
    (root / "sub").mkdir()
    (root / "sub" / "added.txt").write_text("hello\n")
    (root / "blob.bin").write_bytes(b"\0\2")
    (root / ".git" / "HEAD").write_text("ignored\n")
    changes = await workspace.changes("ignored")

    assert changes.changed_files == ["blob.bin", "edit.txt", "gone.txt", "sub/added.txt"]
    assert "Binary or large file blob.bin changed" in changes.diff
    assert "--- a/edit.txt\n+++ b/edit.txt\n@@ -1 +1 @@\n-old\n+new\n" in changes.diff
    assert "--- a/gone.txt\n+++ /dev/null" in changes.diff
    assert "--- /dev/null\n+++ b/sub/added.txt\n@@ -0,0 +1 @@\n+hello\n" in changes.diff
    assert not changes.branch and not changes.head_commit


async def test_a_shell_task_in_a_repository_runs_in_its_worktree(
    repo: Path, tmp_path: Path
) -> None:
    task = _task(7)
    task.title = "Fix add"
    task.input.update({"command": "sed -i 's/a - b/a + b/' calc.py && pwd > where.txt"})
    result = await ShellExecutor().run(_job(task, tmp_path / "ws", str(repo)))
    worktree = tmp_path / "ws" / "worktrees" / "00000007"
    assert result.succeeded and result.changes is not None
    assert _git(repo, "show", "orch/00000007:where.txt") == str(worktree)
    assert result.changes.branch == "orch/00000007"
    assert sorted(result.changes.changed_files) == ["calc.py", "where.txt"]
    assert _git(repo, "show", "orch/00000007:calc.py").endswith("return a + b")
    assert result.details["worktree"] == str(worktree)
    # Its work integrated and on its branch, the folder is gone.
    assert result.details["worktree_kept"] is False and not worktree.exists()
    assert str(worktree) not in _git(repo, "worktree", "list")


async def test_a_shell_task_with_a_wrong_repository_fails_for_good(tmp_path: Path) -> None:
    task = _task(8)
    task.input.update({"command": "true"})
    with pytest.raises(TaskInputError, match="does not exist"):
        await ShellExecutor().run(_job(task, tmp_path / "ws", str(tmp_path / "nowhere")))


async def test_a_worktree_goes_once_its_work_is_integrated_and_stays_on_a_conflict(
    repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    one, two, idle = [await GitWorktree.open(str(repo), root, _task(n)) for n in (1, 2, 3)]
    (one.path / "same.txt").write_text("1\n")
    (two.path / "same.txt").write_text("2\n")
    for workspace, message in ((one, "one"), (two, "two"), (idle, "nothing")):
        await workspace.changes(message)
        await workspace.release()
    # Integrated, or nothing to integrate: removed; its branch keeps the work.
    assert not one.path.exists() and one.details()["worktree_kept"] is False
    assert _git(repo, "show", "orch/00000001:same.txt") == "1"
    assert not idle.path.exists()
    # A conflict stays for a person to resolve.
    assert two.integrated is False and two.path.exists() and two.details()["worktree_kept"]
    # A later attempt of a removed task's worktree opens cleanly again.
    again = await GitWorktree.open(str(repo), root, _task(1))
    assert again.path.exists()
