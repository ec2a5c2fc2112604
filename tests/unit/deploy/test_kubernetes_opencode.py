"""The opencode-workers kustomize component (deploy/k8s/components/opencode-workers) added to each
overlay, built by kustomize as an overlay that lists it would be: the worker StatefulSet runs the
worker-opencode image with `--executor opencode`, takes provider keys from an optional Secret
and its model from WORKER_MODEL; nothing else changes."""

from __future__ import annotations

import copy
import functools
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import typer.main
import yaml

from orchestrator.cli.agent import app
from tests.unit.deploy.manifests import (
    DEPLOY,
    OVERLAYS,
    Manifest,
    by_name,
    container,
    load_yaml,
    render,
    with_components,
)

COMPONENT = DEPLOY / "k8s" / "components" / "opencode-workers"
IMAGE = "orchestrator/worker-opencode"
SECRET = "orch-opencode-credentials"
MODEL = "WORKER_MODEL"
KUBERNETES = "1.31.0"


@functools.cache
def with_opencode(name: str) -> tuple[Manifest, ...]:
    return with_components(name, COMPONENT)


def plain(name: str) -> tuple[Manifest, ...]:
    return render(f"overlays/{name}")


def worker(manifests: tuple[Manifest, ...]) -> Manifest:
    return container(by_name(manifests, "StatefulSet", "worker"))


def overlay_images(name: str) -> list[dict[str, str]]:
    images: list[dict[str, str]] = load_yaml(
        DEPLOY / "k8s" / "overlays" / name / "kustomization.yaml"
    ).get("images", [])
    return images


def opencode_images(name: str) -> list[dict[str, str]]:
    """The overlay's line for the worker image, made the line for worker-opencode: what an
    overlay that sets the images' registry or tag adds with the component."""
    return [
        {**line, "name": IMAGE, "newName": line["newName"].replace("/worker", "/worker-opencode")}
        for line in overlay_images(name)
        if line["name"] == "orchestrator/worker"
    ]


def without_opencode(manifest: Manifest) -> Manifest:
    """A resource less what the component changes: the worker's image, its command's arguments,
    the Secret it reads, WORKER_MODEL."""
    manifest = copy.deepcopy(manifest)
    if manifest["kind"] == "StatefulSet" and manifest["metadata"]["name"] == "worker":
        box = container(manifest)
        for field in ("image", "args"):
            box.pop(field)
        box["envFrom"] = [ref for ref in box["envFrom"] if "secretRef" not in ref]
        box["env"] = [var for var in box["env"] if var["name"] != MODEL]
    return manifest


def env_names(box: Manifest) -> list[str]:
    return [var["name"] for var in box["env"]]


def argv(box: Manifest, model: str | None = None) -> list[str]:
    """The arguments the container's shell passes to `orch`: the command run by sh with the
    container's plain env values (and WORKER_MODEL=`model` when given), `orch` a stub that
    prints them. Kubernetes reduces `$$` to `$` first."""
    env = {var["name"]: var["value"] for var in box["env"] if "value" in var}
    env["POD_NAME"] = "worker-0"
    if model is not None:
        env[MODEL] = model
    script = box["args"][0].replace("$$", "$")
    with tempfile.TemporaryDirectory() as folder:
        stub = Path(folder) / "orch"
        stub.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\"\n")
        stub.chmod(0o755)
        env["PATH"] = f"{folder}:/usr/bin:/bin"
        out = subprocess.run(
            [*box["command"], script], env=env, check=True, capture_output=True, timeout=10
        ).stdout
    return out.decode().split("\0")[:-1]


def agent_run(args: list[str]) -> dict[str, Any]:
    """The options `orch agent run` parses from `args`: the real command reads them."""
    assert args[:2] == ["agent", "run"], args
    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    with command.make_context("run", args[2:]) as context:
        return dict(context.params)


def test_it_is_a_component_that_patches_the_workers_alone() -> None:
    kustomization = load_yaml(COMPONENT / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert kustomization["kind"] == "Component"
    targets = [patch["target"] for patch in kustomization["patches"]]
    assert targets == [{"kind": "StatefulSet", "name": "worker"}]


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_workers_it_changes_are_still_valid_for_kubernetes(name: str) -> None:
    statefulset = by_name(with_opencode(name), "StatefulSet", "worker")
    # Raises ValidationError, naming the field, on what the API server would refuse.
    kubernetes_validate.validate(statefulset, KUBERNETES, strict=True)


@pytest.mark.parametrize("name", OVERLAYS)
def test_it_changes_nothing_else(name: str) -> None:
    def keyed(manifests: tuple[Manifest, ...]) -> dict[tuple[str, str], Manifest]:
        return {(m["kind"], m["metadata"]["name"]): without_opencode(m) for m in manifests}

    assert keyed(with_opencode(name)) == keyed(plain(name))


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_worker_runs_the_opencode_image(name: str) -> None:
    assert worker(with_opencode(name))["image"] == f"{IMAGE}:0.1.0"
    # With the overlay's registry and tag, when the overlay lists the image as it lists worker.
    images = opencode_images(name)
    if not images:
        assert worker(plain(name))["image"] == "orchestrator/worker:0.1.0"
        return
    (line,) = images
    image = worker(with_components(name, COMPONENT, images=images))["image"]
    assert image == f"{line['newName']}:{line['newTag']}"
    assert image.replace("/worker-opencode:", "/worker:") == worker(plain(name))["image"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_worker_runs_its_tasks_on_opencode(name: str) -> None:
    box = worker(with_opencode(name))
    options = agent_run(argv(box))
    assert options["executor"] == "opencode"
    assert options["model"] is None, "no model given: OpenCode's default"
    assert options["opencode_bin"] is None, "the image's ORCH_OPENCODE_BIN finds it"
    # Everything else as the shell workers run: name, capabilities, slots, workspace.
    shell = agent_run(argv(worker(plain(name))))
    assert shell["executor"] == "shell"
    assert {**options, "executor": "shell"} == shell
    assert options["name"] == "AGENT-WORKER-0"


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_model_comes_from_worker_model(name: str) -> None:
    box = worker(with_opencode(name))
    assert {"name": MODEL, "value": ""} in box["env"]
    assert agent_run(argv(box, "anthropic/claude-sonnet-4"))["model"] == (
        "anthropic/claude-sonnet-4"
    )
    # An overlay sets it with a patch of the container's env.
    patch = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "worker"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "worker", "env": [{"name": MODEL, "value": "openai/gpt-5"}]}
                    ]
                }
            }
        },
    }
    overlay = with_components(name, COMPONENT, patches=[{"patch": yaml.safe_dump(patch)}])
    patched = worker(overlay)
    assert agent_run(argv(patched))["model"] == "openai/gpt-5"
    assert sorted(env_names(patched)) == sorted(env_names(box))


@pytest.mark.parametrize("name", OVERLAYS)
def test_provider_keys_come_from_the_optional_secret(name: str) -> None:
    box = worker(with_opencode(name))
    before = worker(plain(name))["envFrom"]
    # orch-config's reference as it was, then the Secret's (a key in both: the Secret's value).
    assert box["envFrom"] == [*before, {"secretRef": {"name": SECRET, "optional": True}}]


@pytest.mark.parametrize("name", OVERLAYS)
def test_without_it_the_workers_run_the_shell(name: str) -> None:
    box = worker(plain(name))
    assert "/worker:" in box["image"]
    assert agent_run(argv(box))["executor"] == "shell"
    assert not [ref for ref in box["envFrom"] if "secretRef" in ref]
    assert MODEL not in env_names(box)
