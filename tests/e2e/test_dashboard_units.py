"""The dashboard's own unit tests (Vitest: data shaping, the live socket and its store), run as
part of `make test`, and its type check and build (`tsc --noEmit`, Vite)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


def _npm(*args: str) -> str:
    assert (DASHBOARD / "node_modules").is_dir(), "dashboard/node_modules: run `make install`"
    done = subprocess.run(
        ["npm", *args],
        cwd=DASHBOARD,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_vitest_unit_tests_pass() -> None:
    output = _npm("test", "--silent")
    assert " passed" in output and "failed" not in output, output


def test_the_dashboard_type_checks_strictly() -> None:
    _npm("run", "typecheck", "--silent")
    # No `any` anywhere in the sources, explicit or as a cast.
    offenders = [
        f"{path.relative_to(DASHBOARD)}:{number}"
        for path in (DASHBOARD / "src").rglob("*.ts*")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ": any" in line or "as any" in line or "<any>" in line
    ]
    assert not offenders, offenders
