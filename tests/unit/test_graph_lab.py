"""The graph of the lab's seeded estate, from the same flows.csv the lab writes: structure, not numbers."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import networkx as nx
import pytest

from adapters.lab.estate import Estate, make_estate
from migrate.core.models.inventory import Cluster, Disk, DrsRule, Guest, Inventory, Provenance, VApp, Vm
from migrate.lab.flows import EXTERNAL_ENDPOINT, flows_csv
from planners import build_graph, conflicts, graph_summary, must_move_groups, parse_flows


def _provenance(source: str) -> Provenance:
    return Provenance(source=source, kind="vcenter", collected_at=datetime(2024, 1, 1, tzinfo=UTC))



def _uuid(name: str) -> str:
    return f"uuid-{name}"


def lab_inventory(estate: Estate) -> Inventory:
    """An inventory such as discovery reports for the lab: ids, guest IPs, tags, vApp and DRS rules."""
    vms = [Vm(id=_uuid(vm.name), name=vm.name, cpus=vm.cpus, memory_mb=vm.memory_mb, cluster=vm.cluster,
              power_state="poweredOn" if vm.powered_on else "poweredOff", vapp=vm.vapp,
              guest=Guest(hostname=vm.hostname, ip_addresses=[vm.ip]),
              tags={"app": [vm.app], "tier": [vm.tier], "env": [vm.env]},
              disks=[Disk(key=2000 + i, capacity_bytes=d.size_gb * 2**30, datastore=d.datastore,
                          path=f"{vm.name}/{vm.name}_{i}.vmdk") for i, d in enumerate(vm.disks)])
           for vm in estate.vms]
    clusters: dict[str, list[DrsRule]] = defaultdict(list)
    for rule in estate.rules:
        kind = "affinity" if rule.keep_together else "anti-affinity"
        clusters[rule.cluster].append(DrsRule(name=rule.name, kind=kind, vms=[_uuid(n) for n in rule.vms]))
    vapps = [VApp(id=f"resgroup-v{i}", name=name, vms=[_uuid(vm.name) for vm in estate.vms if vm.vapp == name])
             for i, name in enumerate(estate.vapps)]
    return Inventory(provenance=_provenance("lab"),
                     vms=vms, clusters=[Cluster(id=f"domain-{c}", name=c, rules=r) for c, r in clusters.items()],
                     vapps=vapps)


@pytest.fixture(scope="module")
def lab() -> tuple[Estate, nx.Graph]:
    estate = make_estate(40, 1)
    return estate, build_graph(lab_inventory(estate), parse_flows(flows_csv(estate), "flows.csv"))


def test_every_app_is_connected(lab: tuple[Estate, nx.Graph]) -> None:
    """The VMs of each application form one connected piece of the graph, flows or not."""
    estate, graph = lab
    apps: dict[str, list[str]] = defaultdict(list)
    for vm in estate.vms:
        apps[vm.app].append(_uuid(vm.name))
    assert len(apps) >= 8
    for app, members in apps.items():
        assert nx.is_connected(graph.subgraph(members)), app


def test_vapp_and_affinity_are_hard_anti_affinity_is_keep_apart(lab: tuple[Estate, nx.Graph]) -> None:
    """The vApp VMs and the affinity pair are joined by hard edges; the anti-affinity pair is kept apart."""
    estate, graph = lab
    vapp = sorted(_uuid(vm.name) for vm in estate.vms if vm.vapp)
    assert len(vapp) == 2
    assert graph.edges[vapp[0], vapp[1]]["hard"] and "vapp" in graph.edges[vapp[0], vapp[1]]["kinds"]
    affinity = next(r for r in estate.rules if r.keep_together)
    edge = graph.edges[_uuid(affinity.vms[0]), _uuid(affinity.vms[1])]
    assert edge["hard"] and "affinity" in edge["kinds"] and "flow" in edge["kinds"]
    anti = next(r for r in estate.rules if not r.keep_together)
    assert graph.graph["keep_apart"] == [{"a": _uuid(anti.vms[0]), "b": _uuid(anti.vms[1]),
                                          "reason": f"DRS rule {anti.name}"}]
    assert {g.vms for g in must_move_groups(graph)} == {tuple(vapp), tuple(sorted(_uuid(n) for n in affinity.vms))}
    assert conflicts(graph) == []


def test_external_endpoint_reported_unknown(lab: tuple[Estate, nx.Graph]) -> None:
    """The outside address in the lab's flows is the one unknown endpoint; nothing is ambiguous."""
    _, graph = lab
    assert [e["endpoint"] for e in graph.graph["unknown_endpoints"]] == [EXTERNAL_ENDPOINT]
    assert graph.graph["ambiguous_endpoints"] == []
    summary = graph_summary(graph)
    assert summary["unknown_endpoints"]["count"] == 1
    assert summary["flow_stats"]["unresolved"] == 1


def test_intra_app_weight_dominates(lab: tuple[Estate, nx.Graph]) -> None:
    """Most weight stays inside apps, and every VM's heaviest edge joins it to its own application."""
    _, graph = lab
    app = nx.get_node_attributes(graph, "app")
    inside = sum(w for a, b, w in graph.edges(data="weight") if app[a] == app[b])
    across = sum(w for a, b, w in graph.edges(data="weight") if app[a] != app[b])
    assert inside > 20 * across
    for node in graph:
        heaviest = max(graph.edges(node, data="weight"), key=lambda e: e[2])
        assert app[heaviest[1]] == app[node], (graph.nodes[node]["name"], heaviest)
