"""The grpc-tls kustomize component (deploy/k8s/components/grpc-tls) added to each overlay, built
by kustomize as an overlay that lists it would be: every process mounts the mesh's certificate
and reads it through the ORCH_GRPC_TLS_* settings, and the services are probed by the images'
health check (which speaks TLS) instead of Kubernetes' plaintext gRPC probes."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from orchestrator.common.settings import Settings
from orchestrator.common.tls import tls_enabled
from tests.unit.deploy.manifests import (
    DEPLOY,
    OVERLAYS,
    SERVICES,
    Manifest,
    by_name,
    container,
    dockerfile_stages,
    load_yaml,
    of_kind,
    pod_spec,
    render,
    with_components,
    workloads,
)

COMPONENT = DEPLOY / "k8s" / "components" / "grpc-tls"
SECRET = "orch-grpc-tls"
VOLUME = "grpc-tls"
MOUNT = "/etc/orch/tls"
# The keys of the Secret (cert-manager's layout), and the settings that point at them.
TLS_SETTINGS = {
    "ORCH_GRPC_TLS_CA_FILE": f"{MOUNT}/ca.crt",
    "ORCH_GRPC_TLS_CERT_FILE": f"{MOUNT}/tls.crt",
    "ORCH_GRPC_TLS_KEY_FILE": f"{MOUNT}/tls.key",
    "ORCH_GRPC_TLS_CLIENT_AUTH": "require",
}
# Every process of the mesh speaks gRPC: the services serve it, the gateway and workers dial.
WORKLOADS = {**dict.fromkeys((*SERVICES, "gateway"), "Deployment"), "worker": "StatefulSet"}
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
KUBERNETES = "1.31.0"


@functools.cache
def with_tls(name: str) -> tuple[Manifest, ...]:
    """The overlay with the component added, as `kustomize build` prints it."""
    return with_components(name, COMPONENT)


def plain(name: str) -> tuple[Manifest, ...]:
    return render(f"overlays/{name}")


def config_map(manifests: tuple[Manifest, ...]) -> Manifest:
    maps = [m for m in of_kind(manifests, "ConfigMap") if m["metadata"]["name"].startswith("orch-")]
    assert len(maps) == 1
    return maps[0]


def healthcheck_module() -> Any:
    spec = importlib.util.spec_from_file_location("healthcheck", DEPLOY / "docker/healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def without_tls(manifest: Manifest) -> Manifest:
    """A resource less what the component may change: the ConfigMap's name (a hash of its
    data), the Secret's volume and mount, how the probes ask and how long they wait."""
    manifest = copy.deepcopy(manifest)
    if manifest["kind"] == "ConfigMap":
        manifest["metadata"]["name"] = "orch-config"
        manifest["data"] = {k: v for k, v in manifest["data"].items() if "_GRPC_TLS_" not in k}
    if manifest["kind"] in WORKLOADS.values():
        pod = pod_spec(manifest)
        pod["volumes"] = [v for v in pod["volumes"] if v["name"] != VOLUME]
        box = container(manifest)
        box["volumeMounts"] = [m for m in box["volumeMounts"] if m["name"] != VOLUME]
        box["envFrom"] = [{"configMapRef": {"name": "orch-config"}}]
        for probe in PROBES:
            for how in ("grpc", "exec", "timeoutSeconds"):
                box.get(probe, {}).pop(how, None)
    return manifest


def test_it_is_a_component() -> None:
    kustomization = load_yaml(COMPONENT / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert kustomization["kind"] == "Component"


@pytest.mark.parametrize("name", OVERLAYS)
def test_what_it_changes_is_still_valid_for_kubernetes(name: str) -> None:
    manifests = with_tls(name)
    for manifest in [*workloads(manifests), config_map(manifests)]:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']}: {exc.message}")


@pytest.mark.parametrize("name", OVERLAYS)
def test_it_changes_nothing_else(name: str) -> None:
    def key(manifest: Manifest) -> tuple[str, str]:
        return manifest["kind"], manifest["metadata"]["name"]

    after = sorted((without_tls(m) for m in with_tls(name)), key=key)
    before = sorted((without_tls(m) for m in plain(name)), key=key)
    assert [key(m) for m in after] == [key(m) for m in before]
    for changed, unchanged in zip(after, before, strict=True):
        assert changed == unchanged, key(changed)


@pytest.mark.parametrize("name", OVERLAYS)
def test_services_are_probed_by_the_health_check_over_tls(name: str) -> None:
    stages = {stage.name: stage for stage in dockerfile_stages(DEPLOY / "docker/Dockerfile")}
    budget = healthcheck_module().WITHIN_SECONDS
    for service in SERVICES:
        box = container(by_name(with_tls(name), "Deployment", service))
        base = container(by_name(plain(name), "Deployment", service))
        # The command the image itself runs as its HEALTHCHECK: the script is where it says.
        healthcheck = stages[service].all("HEALTHCHECK")[-1].split(" CMD ", 1)[1]
        command = json.loads(healthcheck)
        assert command == ["python", "/app/deploy/docker/healthcheck.py", service]
        for probe in PROBES:
            where = f"{service}: {probe}"
            assert "grpc" not in box[probe], where
            assert box[probe]["exec"] == {"command": command}, where
            # The check's own dial budget, plus Python's start-up.
            assert box[probe]["timeoutSeconds"] >= budget + 2, where
            timing = {k: v for k, v in box[probe].items() if k not in ("exec", "timeoutSeconds")}
            kept = {k: v for k, v in base[probe].items() if k not in ("grpc", "timeoutSeconds")}
            assert timing == kept, where


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_gateway_keeps_its_http_probes(name: str) -> None:
    box = container(by_name(with_tls(name), "Deployment", "gateway"))
    base = container(by_name(plain(name), "Deployment", "gateway"))
    for probe in PROBES:
        assert box[probe] == base[probe]
        assert "httpGet" in box[probe]


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_process_mounts_the_mesh_certificate(name: str) -> None:
    manifests = with_tls(name)
    found = {w["metadata"]["name"]: w["kind"] for w in workloads(manifests)}
    assert found == WORKLOADS
    for workload in workloads(manifests):
        where = workload["metadata"]["name"]
        pod = pod_spec(workload)
        volumes = {v["name"]: v for v in pod["volumes"]}
        secret = volumes[VOLUME]["secret"]
        assert secret["secretName"] == SECRET, where
        # Kubernetes makes the files root's, group fsGroup: the group may read them, no one
        # else may. The processes run as uid 10001 with fsGroup 10001 among their groups.
        mode = secret["defaultMode"]
        assert mode & 0o040 and not mode & 0o007, f"{where}: {mode:o}"
        assert pod["securityContext"]["fsGroup"] == 10001, where
        assert pod["securityContext"]["runAsUser"] == 10001, where
        mounts = [m for m in container(workload)["volumeMounts"] if m["name"] == VOLUME]
        # The whole Secret (no subPath), read-only.
        assert mounts == [{"name": VOLUME, "mountPath": MOUNT, "readOnly": True}], where
        before = container(by_name(plain(name), workload["kind"], where))
        assert len(container(workload)["volumeMounts"]) == len(before["volumeMounts"]) + 1


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_configuration_turns_on_mutual_tls_with_the_mounted_files(name: str) -> None:
    manifests = with_tls(name)
    config = config_map(manifests)
    data: dict[str, str] = config["data"]
    tls = {k: v for k, v in data.items() if k.startswith("ORCH_GRPC_TLS_")}
    assert tls == TLS_SETTINGS
    # Merged into the overlay's settings, none lost or changed.
    assert {k: v for k, v in data.items() if k not in tls} == config_map(plain(name))["data"]
    for workload in workloads(manifests):
        refs = [e["configMapRef"]["name"] for e in container(workload)["envFrom"]]
        assert refs == [config["metadata"]["name"]], workload["metadata"]["name"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_without_it_the_overlays_are_plaintext(name: str) -> None:
    manifests = plain(name)
    assert not [k for k in config_map(manifests)["data"] if k.startswith("ORCH_GRPC_TLS_")]
    for service, port in SERVICES.items():
        box = container(by_name(manifests, "Deployment", service))
        for probe in PROBES:
            assert box[probe]["grpc"] == {"port": port}
            assert "exec" not in box[probe]
    for workload in workloads(manifests):
        assert VOLUME not in {v["name"] for v in pod_spec(workload)["volumes"]}
        assert MOUNT not in {m["mountPath"] for m in container(workload)["volumeMounts"]}


def test_the_settings_it_sets_are_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read from the environment as a process reads them: a renamed field would leave its
    default behind, and TLS off."""
    (pairs,) = {
        tuple((k, v) for k, v in config_map(with_tls(name))["data"].items() if "_GRPC_TLS_" in k)
        for name in OVERLAYS
    }
    values = dict(pairs)
    for field in Settings.model_fields:
        if field.startswith("grpc_tls_"):
            monkeypatch.delenv(f"ORCH_{field.upper()}", raising=False)
    for key, value in values.items():
        assert key[len("ORCH_") :].lower() in Settings.model_fields, key
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.grpc_tls_ca_file == Path(values["ORCH_GRPC_TLS_CA_FILE"])
    assert settings.grpc_tls_cert_file == Path(values["ORCH_GRPC_TLS_CERT_FILE"])
    assert settings.grpc_tls_key_file == Path(values["ORCH_GRPC_TLS_KEY_FILE"])
    assert settings.grpc_tls_client_auth == "require"
    # One certificate for the mesh: clients present the servers' own, and check the name they
    # dial (no override).
    assert settings.grpc_tls_client_cert_file is None
    assert settings.grpc_tls_server_name is None
    assert tls_enabled(settings)
