"""`orch up` gives each service its own metrics port and keeps them out of the shared env."""

from __future__ import annotations

from orchestrator.cli.up import SERVICES, observability_environment, own_environment
from orchestrator.common.metrics import SESSION_BUDGET_USED, observe_budget_use
from orchestrator.common.settings import Settings


def test_each_service_gets_a_port_of_its_own_and_the_shared_env_none() -> None:
    env = observability_environment(Settings(otel_exporter="otlp"))
    assert "ORCH_METRICS_PORT" not in env  # a worker reading mesh.env must not take one
    assert env["ORCH_OTEL_EXPORTER"] == "otlp"
    ports = {name: own_environment(env, name)["ORCH_METRICS_PORT"] for name, _, _ in SERVICES}
    assert len(set(ports.values())) == len(SERVICES)
    assert all(int(port) > 0 for port in ports.values())
    assert own_environment({}, "task") == {}


def _observed() -> float:
    (family,) = SESSION_BUDGET_USED.collect()
    samples = family.samples
    return float(next(s.value for s in samples if s.name.endswith("_count")))


def test_budget_use_is_the_larger_share_and_only_for_budgeted_sessions() -> None:
    before = _observed()
    observe_budget_use(tokens=500, token_budget=0, cost=1.0, cost_budget=0.0)
    assert _observed() == before
    observe_budget_use(tokens=500, token_budget=1000, cost=0.9, cost_budget=1.0)
    assert _observed() == before + 1
