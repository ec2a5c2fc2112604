"""Regenerates the Python stubs of every proto under protos/ into orchestrator.api.

The protos keep the package names of their paths (orchestrator.session.v1); the Python modules
live one level down, under orchestrator.api, so generated code never mixes with service code.
Run through `make proto`; CI fails when the committed stubs differ from a fresh run.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent
TARGET = ROOT.parent / "services" / "common" / "orchestrator" / "api"
_IMPORT = re.compile(r"\borchestrator\.(common|events|session|agent|task|context)\.v1\b")


def _protoc(sources: list[Path], out: Path) -> None:
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(s.relative_to(ROOT)) for s in sources),
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")


def _relocate(text: str, *, stub: bool) -> str:
    """Points imports of our protos at orchestrator.api; the serialized descriptors keep the proto
    package names, so in .py files only import lines change."""
    if stub:
        return _IMPORT.sub(r"orchestrator.api.\1.v1", text)
    lines = text.splitlines(keepends=True)
    return "".join(
        _IMPORT.sub(r"orchestrator.api.\1.v1", line)
        if line.startswith(("from ", "import "))
        else line
        for line in lines
    )


def main() -> None:
    # The mypy-protobuf plugins sit beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    sources = sorted(ROOT.glob("orchestrator/**/*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _protoc(sources, out)
        if TARGET.exists():
            shutil.rmtree(TARGET)
        generated = out / "orchestrator"
        for path in sorted(generated.rglob("*")):
            if path.is_dir():
                continue
            dest = TARGET / path.relative_to(generated)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(_relocate(path.read_text(), stub=path.suffix == ".pyi"))
    for folder in [TARGET, *(p for p in TARGET.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").write_text("")
    (TARGET / "py.typed").write_text("")
    print(f"generated {len(sources)} protos into {TARGET.relative_to(ROOT.parent)}")


if __name__ == "__main__":
    main()
