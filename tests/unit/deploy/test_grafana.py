"""deploy/grafana/orchestrator-dashboard.json reads only the metrics the mesh exports, by
their exact names, and shows each of them somewhere."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.unit.deploy.manifests import DEPLOY, load_yaml

DASHBOARD: dict[str, Any] = json.loads(
    (DEPLOY / "grafana" / "orchestrator-dashboard.json").read_text()
)
HISTOGRAMS = {
    "orch_rpc_duration_seconds": {"service", "method", "code"},
    "orch_http_request_duration_seconds": {"route", "method", "status"},
    "orch_session_budget_used_ratio": set(),
}
SERIES = {
    "orch_outbox_backlog": {"schema"},
    "orch_outbox_oldest_age_seconds": {"schema"},
    "orch_consumer_pending": {"consumer", "stream"},
    "orch_tasks": {"status"},
    "orch_agents": {"status"},
    "orch_agent_slots_used": set(),
    "orch_agent_slots_total": set(),
    "orch_events_published_total": {"schema"},
    **{
        f"{name}{suffix}": labels | ({"le"} if suffix == "_bucket" else set())
        for name, labels in HISTOGRAMS.items()
        for suffix in ("_bucket", "_count", "_sum")
    },
}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "rate", "irate", "increase",
    "histogram_quantile", "clamp_min", "clamp_max", "by", "without", "on", "ignoring",
    "and", "or", "unless", "offset", "bool", "le",
}  # fmt: skip


def panels() -> list[dict[str, Any]]:
    found = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
    for row in DASHBOARD["panels"]:
        found += row.get("panels", [])
    return found


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """Identifiers of `expr` that are neither PromQL, label names, strings nor variables."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+|\[[^\]]*\]", "", text)
    words = set(re.findall(r"\b[a-zA-Z_:][\w:]*\b", text))
    return {w for w in words if w not in PROMQL_WORDS}


def grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    for matcher in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"(\w+)\s*[!=]~?", matcher))
    return labels


def test_every_panel_has_a_query_on_the_prometheus_datasource_variable() -> None:
    assert panels()
    for panel in panels():
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    (variable,) = DASHBOARD["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )


@pytest.mark.parametrize("expr", expressions())
def test_queries_use_only_exported_metrics_and_their_labels(expr: str) -> None:
    names = metric_names(expr)
    assert names, expr
    assert names <= set(SERIES), f"unknown metric in {expr}: {names - set(SERIES)}"
    known = set().union(*(SERIES[name] for name in names))
    assert grouping_labels(expr) <= known, expr


def test_every_exported_metric_is_on_the_dashboard() -> None:
    used = set().union(*(metric_names(expr) for expr in expressions()))
    for name in SERIES:
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in used or any(u.startswith(family) for u in used), name


def test_the_name_check_sees_a_stray_metric() -> None:
    assert metric_names('sum by (schema) (rate(orch_eventz_total{schema="x"}[5m]))') == {
        "orch_eventz_total"
    }


def test_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not mine & cells, panel["title"]
        cells |= mine
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    provider = load_yaml(DEPLOY / "grafana/provisioning/dashboards/orchestrator.yaml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")
    assert source["datasources"][0]["type"] == "prometheus"
