"""The kustomize overlays, built by kustomize itself (kubectl's), every resource validated
against the Kubernetes schema of the oldest version they support, then held to what a
production deployment of this mesh needs."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from orchestrator.common.settings import Settings
from tests.unit.deploy.manifests import (
    DEPLOY,
    GATEWAY_PORT,
    METRICS_PORT,
    OVERLAYS,
    SERVICES,
    Manifest,
    by_name,
    container,
    load_yaml,
    of_kind,
    pod_spec,
    render,
    workloads,
)

# The oldest Kubernetes the manifests are for (PodDisruptionBudget's unhealthyPodEvictionPolicy
# is GA there; gRPC probes since 1.27).
KUBERNETES = "1.31.0"
# Custom resources of the operators the overlays rely on: not in Kubernetes' schema.
OPERATOR_KINDS = {("postgresql.cnpg.io/v1", "Cluster")}
COMPONENTS = (*SERVICES, "gateway", "worker")
IMAGE = re.compile(r"^(?:registry\.example\.com/)?orchestrator/(?P<name>[a-z]+):(?P<tag>[\w.-]+)$")


def overlay(name: str) -> tuple[Manifest, ...]:
    return render(f"overlays/{name}")


def config_map(manifests: tuple[Manifest, ...]) -> dict[str, str]:
    maps = [m for m in of_kind(manifests, "ConfigMap") if m["metadata"]["name"].startswith("orch-")]
    assert len(maps) == 1
    data: dict[str, str] = maps[0]["data"]
    return data


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_resource_is_valid_for_kubernetes(name: str) -> None:
    manifests = overlay(name)
    assert manifests
    for manifest in manifests:
        if (manifest["apiVersion"], manifest["kind"]) in OPERATOR_KINDS:
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']}: {exc.message}")


def test_the_validator_refuses_what_kubernetes_would() -> None:
    deployment = dict(by_name(overlay("dev"), "Deployment", "session"))
    deployment["spec"] = {**deployment["spec"], "replicaz": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


@pytest.mark.parametrize("name", OVERLAYS)
def test_each_overlay_has_the_whole_mesh_in_one_namespace(name: str) -> None:
    manifests = overlay(name)
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for component in COMPONENTS:
        kind = "StatefulSet" if component == "worker" else "Deployment"
        assert (kind, component) in kinds
        assert ("Service", component) in kinds
        assert ("PodDisruptionBudget", component) in kinds
    (namespace,) = of_kind(manifests, "Namespace")
    for manifest in manifests:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == namespace["metadata"]["name"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_workloads_are_unprivileged_and_bounded(name: str) -> None:
    for workload in workloads(overlay(name)):
        where = workload["metadata"]["name"]
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        security = container(workload)["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["capabilities"]["drop"] == ["ALL"], where
        resources = container(workload)["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), f"{where}: {bound}"


@pytest.mark.parametrize("name", OVERLAYS)
def test_services_are_probed_over_grpc_health(name: str) -> None:
    manifests = overlay(name)
    for service, port in SERVICES.items():
        box = container(by_name(manifests, "Deployment", service))
        assert {"name": "grpc", "containerPort": port} in box["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            # grpc.health.v1 with service "" (unset), which every server answers.
            assert box[probe]["grpc"] == {"port": port}, f"{service}: {probe}"
        assert box["command"] == ["python", "-m", f"orchestrator.{service}.main"]
        headless = by_name(manifests, "Service", service)
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_gateway_is_probed_over_http(name: str) -> None:
    box = container(by_name(overlay(name), "Deployment", "gateway"))
    assert box["livenessProbe"]["httpGet"] == {"path": "/live", "port": "http"}
    assert box["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert {"name": "http", "containerPort": GATEWAY_PORT} in box["ports"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_scalable_deployment_has_an_autoscaler_and_a_budget(name: str) -> None:
    manifests = overlay(name)
    scalers = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    budgets = {p["metadata"]["name"]: p for p in of_kind(manifests, "PodDisruptionBudget")}
    for workload in workloads(manifests):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        budget = budgets[workload["metadata"]["name"]]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        if workload["kind"] == "Deployment":
            scaler = scalers[workload["metadata"]["name"]]
            assert 1 <= scaler["spec"]["minReplicas"] <= scaler["spec"]["maxReplicas"]
            assert "replicas" not in workload["spec"], "the autoscaler owns the count"


def test_production_runs_more_and_larger_than_dev() -> None:
    def floor(name: str) -> int:
        scalers = of_kind(overlay(name), "HorizontalPodAutoscaler")
        return min(int(h["spec"]["minReplicas"]) for h in scalers)

    assert floor("dev") == 1
    assert floor("production") >= 3
    dev_pg = by_name(overlay("dev"), "Cluster", "orch-postgres")
    prod_pg = by_name(overlay("production"), "Cluster", "orch-postgres")
    assert (dev_pg["spec"]["instances"], prod_pg["spec"]["instances"]) == (1, 3)
    assert of_kind(overlay("production"), "Ingress")


@pytest.mark.parametrize("name", OVERLAYS)
def test_images_are_ours_at_one_tag(name: str) -> None:
    tags = set()
    for workload in workloads(overlay(name)):
        match = IMAGE.match(container(workload)["image"])
        assert match, container(workload)["image"]
        assert match["name"] == workload["metadata"]["name"]
        tags.add(match["tag"])
    version = re.search(r'^version = "(.+)"$', (DEPLOY.parent / "pyproject.toml").read_text(), re.M)
    assert version and tags == {version.group(1)}


def env_of(box: Manifest) -> dict[str, Any]:
    return {item["name"]: item for item in box.get("env", [])}


@pytest.mark.parametrize("name", OVERLAYS)
def test_configuration_is_real_settings_with_valid_values(name: str) -> None:
    manifests = overlay(name)
    data = config_map(manifests)
    for workload in workloads(manifests):
        box = container(workload)
        literal = {k: v["value"] for k, v in env_of(box).items() if "value" in v}
        names = [*data, *env_of(box)]
        for key in names:
            if key.startswith("ORCH_"):
                assert key[len("ORCH_") :].lower() in Settings.model_fields, key
        values = {**data, **literal}
        # What Kubernetes substitutes ($(VAR)) and what comes from a Secret: stand-ins.
        values = {k: re.sub(r"\$\(\w+\)", "pw", v) for k, v in values.items()}
        values.setdefault("ORCH_DATABASE_URL", "postgresql://orch:pw@orch-postgres-rw:5432/orch")
        settings = Settings.model_validate(
            {k[len("ORCH_") :].lower(): v for k, v in values.items() if k.startswith("ORCH_")}
        )
        component = workload["metadata"]["name"]
        if component in SERVICES:
            listen = getattr(settings, f"{component}_addr")
            assert listen == f"0.0.0.0:{SERVICES[component]}"


@pytest.mark.parametrize("name", OVERLAYS)
def test_clients_dial_the_services_by_their_service_names(name: str) -> None:
    data = config_map(overlay(name))
    for service, port in SERVICES.items():
        assert data[f"ORCH_{service.upper()}_ADDR"] == f"{service}:{port}"
    assert data["ORCH_NATS_URL"] == "nats://nats:4222"
    assert data["ORCH_GATEWAY_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("name", OVERLAYS)
def test_server_secrets_come_from_the_operators_secrets(name: str) -> None:
    for workload in of_kind(overlay(name), "Deployment"):
        env = env_of(container(workload))
        database = env["ORCH_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert database == {"name": "orch-postgres-app", "key": "uri"}
        password = env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": "orch-valkey-users", "key": "default"}
        # $(REDIS_PASSWORD) is only expanded when defined before it.
        order = list(env)
        assert order.index("REDIS_PASSWORD") < order.index("ORCH_REDIS_URL")
        assert env["ORCH_REDIS_URL"]["value"] == "redis://default:$(REDIS_PASSWORD)@valkey:6379/0"


@pytest.mark.parametrize("name", OVERLAYS)
def test_metrics_are_announced_where_they_are_served(name: str) -> None:
    manifests = overlay(name)
    data = config_map(manifests)
    assert data["ORCH_METRICS_PORT"] == str(METRICS_PORT)
    assert data["ORCH_METRICS_HOST"] == "0.0.0.0"
    for workload in workloads(manifests):
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        ports = {p["name"]: p["containerPort"] for p in container(workload)["ports"]}
        if workload["metadata"]["name"] == "gateway":
            assert annotations["prometheus.io/port"] == str(GATEWAY_PORT)
            assert env_of(container(workload))["ORCH_METRICS_PORT"]["value"] == "0"
        else:
            assert annotations["prometheus.io/port"] == str(METRICS_PORT)
            assert ports["metrics"] == METRICS_PORT


def test_workers_take_a_valid_agent_name_from_their_pod() -> None:
    worker = by_name(overlay("production"), "StatefulSet", "worker")
    box = container(worker)
    script = box["args"][0]
    # Kubernetes turns $$ into $; the shell then upper-cases the pod's name.
    assert '--name "AGENT-$$(echo "$$POD_NAME" | tr a-z A-Z)"' in script
    assert script.startswith("exec orch agent run")
    assert env_of(box)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert pod_spec(worker)["terminationGracePeriodSeconds"] >= 45  # 30 s drain + slack


def test_dev_makes_the_valkey_secret_production_does_not() -> None:
    (secret,) = of_kind(overlay("dev"), "Secret")
    assert secret["metadata"]["name"] == "orch-valkey-users"
    assert not of_kind(overlay("production"), "Secret")


def test_datastores_come_from_their_charts_and_operator() -> None:
    nats = load_yaml(DEPLOY / "k8s/datastores/nats/values.yaml")
    assert nats["config"]["jetstream"]["enabled"] is True
    assert nats["config"]["jetstream"]["fileStore"]["enabled"] is True
    assert nats["config"]["cluster"]["replicas"] >= 3
    valkey = load_yaml(DEPLOY / "k8s/datastores/valkey/values.yaml")
    assert valkey["auth"]["usersExistingSecret"] == "orch-valkey-users"
    assert "default" in valkey["auth"]["aclUsers"]
    for dev in ("nats/values-dev.yaml", "valkey/values-dev.yaml"):
        assert isinstance(load_yaml(DEPLOY / "k8s/datastores" / dev), dict)
    (cluster,) = render("datastores/postgres")
    assert (cluster["apiVersion"], cluster["kind"]) in OPERATOR_KINDS
    assert cluster["metadata"]["name"] == "orch-postgres"
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "orch", "owner": "orch"}
