"""Where a task works, and what it changed there.

A session with a git repository gives each task its own worktree and branch (`orch/<task>`),
based on the tip of the session's integration branch (`orch/session-<session>`), so tasks that
depend on one another see each other's work. When the task ends, its work is committed on its
branch, the changes are the diff of that commit against the base, and the integration branch
moves forward to include it (merging when another task got there first; a conflict leaves the
integration branch alone and says so). Then the worktree folder goes (`release`): the work lives
on in its branch. A worktree whose work could not be integrated, or whose run failed, stays for
a person to look at (a retry of the task starts again from a clean one).

Without a repository a task works in the worker's folder, and its changes are found by
comparing snapshots of the folder taken before and after the run.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.api.task.v1 import task_pb2

if TYPE_CHECKING:
    from orchestrator.worker.executors.base import Job

log = logging.getLogger(__name__)

# Diffs travel in task events: a huge one is cut, and says so.
MAX_DIFF_BYTES = 200_000
# Snapshots keep the text of files up to this size (to diff them) and only a digest otherwise.
MAX_TEXT_FILE_BYTES = 256 * 1024
MAX_SNAPSHOT_FILES = 10_000
SKIPPED_DIRS = frozenset({".git", "node_modules", ".venv", "__pycache__", ".mypy_cache"})
AUTHOR = ("-c", "user.name=orchestrator", "-c", "user.email=orchestrator@localhost")
_repo_locks: dict[Path, asyncio.Lock] = {}


class WorkspaceError(RuntimeError):
    """The task's workspace could not be prepared (a bad repository, say)."""


class TaskWorkspace(Protocol):
    path: Path

    async def changes(self, message: str) -> task_pb2.WorkspaceChanges:
        """What the task changed since the workspace was opened."""
        ...

    def details(self) -> dict[str, Any]:
        """Fields for the task's result (worktree, whether the work was integrated)."""
        ...

    async def release(self) -> None:
        """Cleans up after a run whose changes were taken, keeping what a person must see."""
        ...


async def workspace_for(job: Job) -> TaskWorkspace:
    """A git worktree when the job's session names a repository, else the worker's folder."""
    repository = job.session.repository if job.session is not None else ""
    if repository:
        return await GitWorktree.open(repository, job.workspace, job.task)
    return await FolderSnapshot.open(job.workspace)


def short_id(value: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]", "", value)[:8].lower() or "task"


async def git(*args: str, cwd: Path, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise WorkspaceError(f"git {' '.join(args)}: {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


@dataclass
class GitWorktree:
    repository: Path
    path: Path
    branch: str
    integration_branch: str
    base_commit: str
    integrated: bool = False
    # The run committed something (its head moved past the base).
    changed: bool = False
    # The folder is still there (until `release` removes it).
    kept: bool = True

    @classmethod
    async def open(cls, repository: str, root: Path, task: task_pb2.Task) -> GitWorktree:
        repo = await _local_repository(repository, root)
        integration = f"orch/session-{short_id(task.session_id)}"
        branch = f"orch/{short_id(task.id)}"
        path = root / "worktrees" / short_id(task.id)
        async with _lock(repo):
            if not await _has_branch(repo, integration):
                await git("branch", integration, "HEAD", cwd=repo)
            base = (await git("rev-parse", f"refs/heads/{integration}", cwd=repo)).strip()
            if path.exists():  # an earlier attempt of this task: start again from the tip
                await git("worktree", "remove", "--force", str(path), cwd=repo, check=False)
            await git("worktree", "prune", cwd=repo)
            path.parent.mkdir(parents=True, exist_ok=True)
            await git("worktree", "add", "-q", "-B", branch, str(path), base, cwd=repo)
        return cls(repo, path, branch, integration, base)

    async def changes(self, message: str) -> task_pb2.WorkspaceChanges:
        await git("add", "-A", cwd=self.path)
        if await _staged(self.path):
            await git(*AUTHOR, "commit", "-q", "--no-verify", "-m", message, cwd=self.path)
        head = (await git("rev-parse", "HEAD", cwd=self.path)).strip()
        diff = await git("diff", "--no-color", self.base_commit, head, cwd=self.path)
        names = await git("diff", "--name-only", self.base_commit, head, cwd=self.path)
        self.changed = head != self.base_commit
        if self.changed:
            self.integrated = await self._integrate(head)
        return task_pb2.WorkspaceChanges(
            branch=self.branch,
            base_commit=self.base_commit,
            head_commit=head,
            diff=_capped(diff),
            changed_files=[n for n in names.splitlines() if n],
        )

    def details(self) -> dict[str, Any]:
        return {
            "worktree": str(self.path),
            "branch": self.branch,
            "integration_branch": self.integration_branch,
            "integrated": self.integrated,
            "worktree_kept": self.kept,
        }

    async def release(self) -> None:
        """Removes the worktree once nothing in it needs a person: its work is integrated (and
        on its branch, which stays), or it changed nothing. Work that conflicted stays."""
        if self.changed and not self.integrated:
            return
        async with _lock(self.repository):
            await git(
                "worktree", "remove", "--force", str(self.path), cwd=self.repository, check=False
            )
        # A folder that would not go is only left behind, never a reason to fail the task.
        self.kept = await asyncio.to_thread(self.path.exists)
        if self.kept:
            log.warning("worktree %s could not be removed; it stays", self.path)

    async def _integrate(self, head: str) -> bool:
        """Moves the integration branch forward to include `head`; False on a conflict."""
        ref = f"refs/heads/{self.integration_branch}"
        async with _lock(self.repository):
            tip = (await git("rev-parse", ref, cwd=self.repository)).strip()
            merged = head
            if tip != self.base_commit and not await _is_ancestor(self.path, tip, head):
                merge = ("merge", "-q", "--no-edit", "--no-verify", self.integration_branch)
                if await _succeeds(self.path, *AUTHOR, *merge):
                    merged = (await git("rev-parse", "HEAD", cwd=self.path)).strip()
                else:
                    await git("merge", "--abort", cwd=self.path, check=False)
                    log.warning("%s conflicts with %s: not integrated", self.branch, ref)
                    return False
            await git("update-ref", ref, merged, tip, cwd=self.repository)
            return True


@dataclass
class FolderSnapshot:
    path: Path
    before: dict[str, FileState] = field(default_factory=dict)

    @classmethod
    async def open(cls, folder: Path) -> FolderSnapshot:
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        return cls(folder, await asyncio.to_thread(snapshot, folder))

    async def changes(self, message: str) -> task_pb2.WorkspaceChanges:
        after = await asyncio.to_thread(snapshot, self.path)
        changed = sorted(
            name
            for name in self.before.keys() | after.keys()
            if self.before.get(name) != after.get(name)
        )
        diff = "".join(_file_diff(n, self.before.get(n), after.get(n)) for n in changed)
        return task_pb2.WorkspaceChanges(diff=_capped(diff), changed_files=changed)

    def details(self) -> dict[str, Any]:
        return {}

    async def release(self) -> None:
        return None  # the worker's own folder: nothing of it is the task's to remove


@dataclass(frozen=True)
class FileState:
    digest: str
    # None for binary or large files: their change is named, not shown.
    text: str | None = field(compare=False)


def snapshot(folder: Path) -> dict[str, FileState]:
    states: dict[str, FileState] = {}
    for path in _files(folder):
        if len(states) >= MAX_SNAPSHOT_FILES:
            log.warning("more than %d files in %s: snapshot cut", MAX_SNAPSHOT_FILES, folder)
            break
        try:
            data = path.read_bytes()
        except OSError:
            continue
        text = None
        if len(data) <= MAX_TEXT_FILE_BYTES and b"\0" not in data:
            text = data.decode("utf-8", errors="replace")
        name = path.relative_to(folder).as_posix()
        states[name] = FileState(hashlib.sha256(data).hexdigest(), text)
    return states


def _files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if entry.name not in SKIPPED_DIRS:
                yield from _files(entry)
        elif entry.is_file():
            yield entry


def _file_diff(name: str, old: FileState | None, new: FileState | None) -> str:
    header = f"diff --git a/{name} b/{name}\n"
    if (old is not None and old.text is None) or (new is not None and new.text is None):
        return header + f"Binary or large file {name} changed\n"
    before = old.text.splitlines(keepends=True) if old is not None and old.text else []
    after = new.text.splitlines(keepends=True) if new is not None and new.text else []
    lines = difflib.unified_diff(
        before,
        after,
        fromfile=f"a/{name}" if old is not None else "/dev/null",
        tofile=f"b/{name}" if new is not None else "/dev/null",
    )
    return header + "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _capped(diff: str) -> str:
    data = diff.encode()
    if len(data) <= MAX_DIFF_BYTES:
        return diff
    cut = data[:MAX_DIFF_BYTES].decode(errors="ignore")
    return cut + f"\n… diff cut at {MAX_DIFF_BYTES} bytes of {len(data)}\n"


def _lock(repo: Path) -> asyncio.Lock:
    return _repo_locks.setdefault(repo, asyncio.Lock())


async def _local_repository(repository: str, root: Path) -> Path:
    """A local repository as it is; a remote one is cloned once under the worker's folder."""
    local = Path(repository)
    if local.is_absolute() and await asyncio.to_thread(local.exists):
        top = await git("rev-parse", "--show-toplevel", cwd=local, check=False)
        if not top.strip():
            raise WorkspaceError(f"{repository} is not a git repository")
        return Path(top.strip())
    if local.is_absolute():
        raise WorkspaceError(f"repository {repository} does not exist")
    digest = hashlib.sha256(repository.encode()).hexdigest()[:10]
    name = re.sub(r"[^0-9A-Za-z._-]", "-", repository.rstrip("/").rsplit("/", 1)[-1])
    clone = root / "repositories" / f"{name.removesuffix('.git')}-{digest}"
    async with _lock(clone):
        if not (clone / ".git").exists():
            clone.parent.mkdir(parents=True, exist_ok=True)
            await git("clone", "-q", repository, str(clone), cwd=clone.parent)
    return clone


async def _has_branch(repo: Path, branch: str) -> bool:
    return await _succeeds(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")


async def _is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    return await _succeeds(cwd, "merge-base", "--is-ancestor", ancestor, descendant)


async def _staged(cwd: Path) -> bool:
    return not await _succeeds(cwd, "diff", "--cached", "--quiet")


async def _succeeds(cwd: Path, *args: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await proc.wait() == 0
