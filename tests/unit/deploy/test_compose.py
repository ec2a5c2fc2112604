"""deploy/compose.yaml against the Compose Specification's JSON schema (as vendored by
check-jsonschema, with its licence), and what the stack needs to come up in order."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from orchestrator.common.settings import Settings
from tests.unit.deploy.manifests import DEPLOY, SERVICES, interpolate, load_yaml

RAW = load_yaml(DEPLOY / "compose.yaml")
COMPOSE: dict[str, Any] = interpolate(RAW)
MESH = (*SERVICES, "gateway", "worker-shell")


def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    assert "Apache" in (vendor / "licenses" / "LICENSE.compose-spec").read_text()
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def test_the_file_is_valid_against_the_compose_specification() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_catches_a_broken_file() -> None:
    schema = compose_schema()
    broken = {"services": {"session": {"image": "x", "depends_on": {"nats": {"when": "up"}}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_whole_stack_is_there() -> None:
    assert {"nats", "postgres", "valkey", *MESH} <= set(COMPOSE["services"])
    assert "--jetstream" in COMPOSE["services"]["nats"]["command"]


@pytest.mark.parametrize("name", [*SERVICES, "gateway", "nats", "postgres", "valkey"])
def test_servers_have_health_checks(name: str) -> None:
    assert COMPOSE["services"][name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")


def test_start_order_waits_for_health() -> None:
    services = COMPOSE["services"]
    for name in SERVICES:
        needs = services[name]["depends_on"]
        for store in ("postgres", "nats", "valkey"):
            assert needs[store]["condition"] == "service_healthy"
    for name in ("gateway", "worker-shell"):
        for service in SERVICES:
            assert services[name]["depends_on"][service]["condition"] == "service_healthy"


def environment(name: str) -> dict[str, str]:
    env = COMPOSE["services"][name].get("environment", {})
    assert isinstance(env, dict), f"{name}: environment as a mapping"
    return {key: str(value) for key, value in env.items()}


@pytest.mark.parametrize("name", MESH)
def test_environment_is_real_settings_with_valid_values(name: str) -> None:
    env = environment(name)
    for key in env:
        assert key.startswith("ORCH_"), key
        assert key[len("ORCH_") :].lower() in Settings.model_fields, f"{name}: {key}"
    values = {key[len("ORCH_") :].lower(): value for key, value in env.items()}
    Settings.model_validate(values)


@pytest.mark.parametrize("service", SERVICES)
def test_services_listen_on_their_port_and_dial_each_other_by_name(service: str) -> None:
    env = environment(service)
    assert env[f"ORCH_{service.upper()}_ADDR"] == f"0.0.0.0:{SERVICES[service]}"
    for other, port in SERVICES.items():
        if other != service:
            assert env[f"ORCH_{other.upper()}_ADDR"] == f"{other}:{port}"
    assert env["ORCH_DATABASE_URL"].startswith("postgresql://orch:")
    assert env["ORCH_DATABASE_URL"].endswith("@postgres:5432/orch")
    assert env["ORCH_NATS_URL"] == "nats://nats:4222"
    assert env["ORCH_REDIS_URL"] == "redis://valkey:6379/0"
    assert COMPOSE["services"][service]["command"] == [
        "python",
        "-m",
        f"orchestrator.{service}.main",
    ]


def test_the_gateway_is_published_on_loopback_by_default() -> None:
    env = environment("gateway")
    assert env["ORCH_GATEWAY_HOST"] == "0.0.0.0"
    assert COMPOSE["services"]["gateway"]["ports"] == ["127.0.0.1:8080:8080"]


def test_the_worker_is_a_shell_agent_with_a_valid_name_and_its_own_volume() -> None:
    worker = COMPOSE["services"]["worker-shell"]
    command = worker["command"]
    assert command[command.index("--executor") + 1] == "shell"
    assert command[command.index("--name") + 1].startswith("AGENT-")
    # `$$` in the file: the shell, not Compose, expands the task's title.
    assert command[-1] == 'echo "did: $ORCH_TASK_TITLE"'
    assert "worker-data:/var/lib/orch" in worker["volumes"]
    assert "ORCH_DATABASE_URL" not in environment("worker-shell")


@pytest.mark.parametrize("name", MESH)
def test_orchestrator_containers_are_built_from_their_target_and_hardened(name: str) -> None:
    service = COMPOSE["services"][name]
    target = name.removesuffix("-shell")
    assert service["build"] == {
        "context": "..",
        "dockerfile": "deploy/docker/Dockerfile",
        "target": target,
    }
    assert service["image"] == f"orchestrator/{target}:0.1.0"
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]


def test_monitoring_mounts_exist() -> None:
    for name in ("prometheus", "grafana"):
        service = COMPOSE["services"][name]
        assert service["profiles"] == ["monitoring"]
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
    scrape = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {
        t for job in scrape["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    }
    assert targets == {*(f"{s}:9090" for s in SERVICES), "gateway:8080", "worker-shell:9090"}
