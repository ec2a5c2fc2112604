"""The NetworkPolicies of each overlay, evaluated as Kubernetes would between the mesh's pods
and the datastores' pods of the same namespace: exactly the flows the mesh needs are open."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.deploy.manifests import OVERLAYS, SERVICES, Manifest, of_kind, render, workloads

Labels = dict[str, str]
Flow = tuple[str, str, int]

# The datastores' pods as their operator and charts label them (release names nats, valkey).
DATASTORES: dict[str, tuple[Labels, int]] = {
    "postgres": ({"cnpg.io/cluster": "orch-postgres"}, 5432),
    "nats": ({"app.kubernetes.io/name": "nats", "app.kubernetes.io/component": "nats"}, 4222),
    "valkey": ({"app.kubernetes.io/name": "valkey"}, 6379),
}
SERVERS = (*SERVICES, "gateway")
NEEDED: set[Flow] = {
    *(
        (client, service, port)
        for service, port in SERVICES.items()
        for client in ("gateway", "worker")
    ),
    ("task", "agent", SERVICES["agent"]),
    *((server, store, port) for server in SERVERS for store, (_, port) in DATASTORES.items()),
    ("worker", "nats", DATASTORES["nats"][1]),
}


def selects(selector: dict[str, Any], labels: Labels) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator, values = expression["operator"], expression.get("values", [])
        if not {
            "In": present and value in values,
            "NotIn": not present or value not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def peer_allows(peers: list[Manifest] | None, labels: Labels) -> bool:
    """A same-namespace pod matches a rule's peers (no peers: everyone)."""
    if peers is None:
        return True
    return any(
        "podSelector" in peer
        and "namespaceSelector" not in peer
        and selects(peer["podSelector"], labels)
        for peer in peers
    )


def port_allows(ports: list[Manifest] | None, port: int) -> bool:
    return ports is None or any(
        p.get("protocol", "TCP") == "TCP" and p["port"] == port for p in ports
    )


def allowed(policies: list[Manifest], direction: str, pod: Labels, peer: Labels, port: int) -> bool:
    kind = {"ingress": "Ingress", "egress": "Egress"}[direction]
    mine = [
        p
        for p in policies
        if selects(p["spec"]["podSelector"], pod) and kind in p["spec"]["policyTypes"]
    ]
    if not mine:
        return True
    side = "from" if direction == "ingress" else "to"
    return any(
        peer_allows(rule.get(side), peer) and port_allows(rule.get("ports"), port)
        for policy in mine
        for rule in policy["spec"].get(direction, [])
    )


def open_flows(manifests: tuple[Manifest, ...]) -> set[Flow]:
    policies = of_kind(manifests, "NetworkPolicy")
    pods = {
        w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"]
        for w in workloads(manifests)
    }
    ports = sorted({*SERVICES.values(), 8080, 9090, *(port for _, port in DATASTORES.values())})
    targets = {**pods, **{name: labels for name, (labels, _) in DATASTORES.items()}}
    return {
        (source, target, port)
        for source, source_labels in pods.items()
        for target, target_labels in targets.items()
        for port in ports
        if source != target
        and allowed(policies, "egress", source_labels, target_labels, port)
        and allowed(policies, "ingress", target_labels, source_labels, port)
    }


@pytest.mark.parametrize("name", OVERLAYS)
def test_exactly_the_needed_flows_are_open(name: str) -> None:
    flows = open_flows(render(f"overlays/{name}"))
    assert flows - NEEDED == set(), "open but not needed"
    assert NEEDED - flows == set(), "needed but closed"


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_pod_of_the_mesh_starts_from_deny_all(name: str) -> None:
    manifests = render(f"overlays/{name}")
    (deny,) = [
        p
        for p in of_kind(manifests, "NetworkPolicy")
        if not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for workload in workloads(manifests):
        assert selects(
            deny["spec"]["podSelector"], workload["spec"]["template"]["metadata"]["labels"]
        )


@pytest.mark.parametrize("name", OVERLAYS)
def test_outside_traffic_is_dns_metrics_the_ingress_and_workers_https(name: str) -> None:
    outside = []
    for policy in of_kind(render(f"overlays/{name}"), "NetworkPolicy"):
        for direction, side in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                for peer in rule.get(side, []):
                    if "namespaceSelector" in peer or "ipBlock" in peer:
                        ports = sorted(p["port"] for p in rule["ports"])
                        outside.append((policy["metadata"]["name"], direction, ports))
    assert sorted(outside) == sorted(
        [
            ("orch-dns", "egress", [53, 53]),
            ("orch-metrics", "ingress", [9090]),
            ("gateway", "ingress", [8080]),
            ("gateway", "ingress", [8080]),
            ("worker", "egress", [443]),
        ]
    )
