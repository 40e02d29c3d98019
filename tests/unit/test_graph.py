"""The dependency graph built from inventories made in code: nodes, every edge kind, groups, conflicts, summary."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from migrate.core.errors import InputError
from migrate.core.models.inventory import Cluster, Disk, DrsRule, Guest, Inventory, Provenance, VApp, Vm
from planners import (
    APP_NEIGHBOURS,
    DEFAULT_APP_WEIGHT,
    EDGE_KINDS,
    build_graph,
    conflicts,
    graph_summary,
    must_move_groups,
    parse_flows,
    parse_links,
)


def _provenance(source: str) -> Provenance:
    return Provenance(source=source, kind="vcenter", collected_at=datetime(2024, 1, 1, tzinfo=UTC))



def _vm(name: str, app: str | None = None, ip: str | None = None, **fields: Any) -> Vm:
    return Vm(id=f"uuid-{name}", name=name, tags={"app": [app]} if app else {},
              guest=Guest(ip_addresses=[ip] if ip else []), **fields)


def _inventory(*vms: Vm, rules: list[DrsRule] | None = None, vapps: list[VApp] | None = None) -> Inventory:
    return Inventory(provenance=_provenance("test"),
                     vms=list(vms), clusters=[Cluster(id="domain-c1", name="cl", rules=rules or [])],
                     vapps=vapps or [])


def _edge(graph: nx.Graph, a: str, b: str) -> dict[str, Any]:
    return dict(graph.edges[f"uuid-{a}", f"uuid-{b}"])


def test_nodes_carry_size_and_app() -> None:
    """Each VM is a node keyed by id with name, app, gb, vcpu, memory_mb and powered_on."""
    vm = _vm("db", "shop", cpus=4, memory_mb=8192, power_state="poweredOn",
             disks=[Disk(key=1, capacity_bytes=40 * 2**30), Disk(key=2, capacity_bytes=2**29)])
    graph = build_graph(_inventory(vm, _vm("lonely", power_state="poweredOff")))
    assert graph.nodes["uuid-db"] == {"name": "db", "app": "shop", "gb": 40.5, "vcpu": 4, "memory_mb": 8192,
                                      "powered_on": True}
    assert graph.nodes["uuid-lonely"]["app"] is None
    assert graph.nodes["uuid-lonely"]["powered_on"] is False
    assert graph.number_of_edges() == 0
    assert graph.graph["keep_apart"] == [] and graph.graph["unknown_endpoints"] == []


def test_app_edges_cost_app_weight_per_vm() -> None:
    """Small apps are cliques whose edges around any one VM add up to app_weight; app_weight=0 adds none."""
    inventory = _inventory(*(_vm(f"s{i}", "shop") for i in range(4)), _vm("x", "other"))
    graph = build_graph(inventory, app_weight=30)
    assert graph.number_of_edges() == 6
    for node in ("uuid-s0", "uuid-s3"):
        assert graph.degree(node, weight="weight") == pytest.approx(30)
    edge = _edge(graph, "s0", "s1")
    assert edge["kinds"] == ["app"] and edge["hard"] is False and edge["reasons"] == ["app shop"]
    assert build_graph(inventory, app_weight=0).number_of_edges() == 0
    assert build_graph(inventory).degree("uuid-s0", weight="weight") == pytest.approx(DEFAULT_APP_WEIGHT)


def test_large_app_uses_linear_ring() -> None:
    """A 40-VM app gets 2*APP_NEIGHBOURS links per VM, stays connected, and still costs app_weight per VM."""
    graph = build_graph(_inventory(*(_vm(f"v{i:02d}", "big") for i in range(40))), app_weight=10)
    assert graph.number_of_edges() == 40 * APP_NEIGHBOURS
    assert {d for _, d in graph.degree()} == {2 * APP_NEIGHBOURS}
    assert nx.is_connected(graph)
    assert graph.degree("uuid-v07", weight="weight") == pytest.approx(10)


def test_drs_rules_affinity_hard_anti_affinity_keep_apart() -> None:
    """Enabled affinity rules join VMs with hard edges; anti-affinity pairs go to keep_apart; others are ignored."""
    rules = [
        DrsRule(name="together", kind="affinity", vms=["uuid-a", "uuid-b", "uuid-c"]),
        DrsRule(name="off", kind="affinity", enabled=False, vms=["uuid-c", "uuid-d"]),
        DrsRule(name="apart", kind="anti-affinity", vms=["uuid-d", "uuid-e", "uuid-f", "uuid-ghost"]),
        DrsRule(name="pin", kind="vm-host", vms=["uuid-e"], vm_group="g", host_group="h"),
    ]
    graph = build_graph(_inventory(*(_vm(n) for n in "abcdef"), rules=rules))
    assert _edge(graph, "a", "b") == {"kinds": ["affinity"], "weight": 0.0, "hard": True, "bytes": 0,
                                      "connections": 0, "reasons": ["DRS rule together"]}
    assert nx.has_path(graph, "uuid-a", "uuid-c")
    assert not graph.has_edge("uuid-c", "uuid-d")
    assert graph.graph["keep_apart"] == [
        {"a": "uuid-d", "b": "uuid-e", "reason": "DRS rule apart"},
        {"a": "uuid-d", "b": "uuid-f", "reason": "DRS rule apart"},
        {"a": "uuid-e", "b": "uuid-f", "reason": "DRS rule apart"},
    ]
    assert any("uuid-ghost" in w for w in graph.graph["warnings"])


def test_multi_writer_shared_disks_are_hard() -> None:
    """VMs sharing one datastore path with sharingMultiWriter must move together; other disks do not tie."""
    def disk(path: str, sharing: str = "sharingMultiWriter") -> Disk:
        return Disk(key=1, capacity_bytes=2**30, datastore="ds1", path=path, sharing=sharing)

    graph = build_graph(_inventory(
        _vm("rac1", disks=[disk("rac/shared.vmdk")]), _vm("rac2", disks=[disk("rac/shared.vmdk")]),
        _vm("p", disks=[disk("x/x.vmdk", "sharingNone")]), _vm("q", disks=[disk("x/x.vmdk", "sharingNone")]),
    ))
    assert _edge(graph, "rac1", "rac2")["reasons"] == ["shared disk [ds1] rac/shared.vmdk"]
    assert _edge(graph, "rac1", "rac2")["kinds"] == ["shared-disk"]
    assert not graph.has_edge("uuid-p", "uuid-q")


def test_vapp_members_from_both_sources_move_together() -> None:
    """Members listed by the vApp and VMs naming the vApp all join one hard group."""
    graph = build_graph(_inventory(_vm("a"), _vm("b"), _vm("c", vapp="va"), _vm("d", vapp="solo"), _vm("e"),
                                   vapps=[VApp(id="resgroup-v1", name="va", vms=["uuid-a", "uuid-b"])]))
    groups = must_move_groups(graph)
    assert [g.names for g in groups] == [("a", "b", "c")]
    assert groups[0].reasons == ("vApp va",)
    assert {k for _, _, d in graph.edges(data=True) for k in d["kinds"]} == {"vapp"}
    assert len(must_move_groups(graph, min_size=1)) == 3


def test_kinds_merge_on_one_edge_and_are_sorted() -> None:
    """Flows, app, DRS and declared links between the same pair become one edge with sorted kinds."""
    inventory = _inventory(_vm("a", "shop", "10.0.0.1"), _vm("b", "shop", "10.0.0.2"),
                           rules=[DrsRule(name="r", kind="affinity", vms=["uuid-a", "uuid-b"])])
    flows = parse_flows(f"src,dst,bytes\n10.0.0.1,10.0.0.2,{5 * 2**20}\nb,a,{2**20}\n")
    links = parse_links({"version": 1, "links": [{"a": "a", "b": "b", "weight": 4, "reason": "batch"}]})
    edge = _edge(build_graph(inventory, flows, links, app_weight=10), "a", "b")
    assert edge["kinds"] == sorted(edge["kinds"]) == ["affinity", "app", "declared", "flow"]
    assert set(edge["kinds"]) <= set(EDGE_KINDS)
    assert edge["weight"] == pytest.approx(6 + 10 + 4)
    assert edge["hard"] is True
    assert (edge["bytes"], edge["connections"]) == (6 * 2**20, 0)
    assert "declared link: batch" in edge["reasons"] and "DRS rule r" in edge["reasons"]


def test_declared_links_and_keep_apart() -> None:
    """Declared hard links join groups, soft ones add weight, keep_apart merges with DRS pairs."""
    inventory = _inventory(_vm("a"), _vm("b"), _vm("c"),
                           rules=[DrsRule(name="ha", kind="anti-affinity", vms=["uuid-a", "uuid-c"])])
    links = {"version": 1, "links": [{"a": "a", "b": "b", "hard": True, "reason": "log shipping"},
                                     {"a": "b", "b": "c"}],
             "keep_apart": [{"a": "c", "b": "a", "reason": "HA"}]}
    graph = build_graph(inventory, links=links)
    assert _edge(graph, "a", "b")["hard"] and _edge(graph, "a", "b")["reasons"] == ["declared hard link: log shipping"]
    assert _edge(graph, "b", "c")["weight"] == 100.0 and not _edge(graph, "b", "c")["hard"]
    assert graph.graph["keep_apart"] == [{"a": "uuid-a", "b": "uuid-c", "reason": "DRS rule ha; declared: HA"}]
    assert conflicts(graph) == []


def test_keep_apart_inside_a_hard_group_is_a_conflict() -> None:
    """A keep-apart pair joined through hard edges is reported by conflicts(), with the chain that joins it."""
    disk = Disk(key=1, capacity_bytes=1, datastore="ds", path="q.vmdk", sharing="sharingMultiWriter")
    inventory = _inventory(_vm("a", disks=[disk]), _vm("b", disks=[disk]), _vm("c", vapp="v"), _vm("d", vapp="v"),
                           rules=[DrsRule(name="ha", kind="anti-affinity", vms=["uuid-a", "uuid-c"])])
    links = {"version": 1, "links": [{"a": "b", "b": "c", "hard": True, "reason": "pair"}]}
    graph = build_graph(inventory, links=links)     # builds: the planner refuses it later
    found = conflicts(graph)
    assert len(found) == 1
    assert found[0]["path"] == ["a", "b", "c"]
    assert found[0]["joined_by"] == ["shared disk [ds] q.vmdk", "declared hard link: pair"]
    assert graph_summary(graph)["conflicts"] == found


def test_summary_reports_groups_cross_app_and_endpoints() -> None:
    """The summary counts kinds, names the largest group and the heaviest cross-app links, lists unknowns."""
    inventory = _inventory(_vm("web", "shop", "10.0.0.1", vapp="v"), _vm("db", "shop", "10.0.0.2", vapp="v"),
                           _vm("bill", "billing", "10.0.0.3"), _vm("rep", "reporting", "10.0.0.4"))
    flows = parse_flows(f"src,dst,bytes\nweb,bill,{2**21}\nbill,rep,{2**20}\nweb,8.8.8.8,{2**20}\n")
    summary = graph_summary(build_graph(inventory, flows))
    assert summary["nodes"] == 4 and summary["edges"] == 3
    assert summary["edges_by_kind"] == {"app": 1, "flow": 2, "vapp": 1}
    assert summary["components"] == 1 and summary["hard_edges"] == 1
    assert summary["largest_group"]["names"] == ["db", "web"]
    assert [(e["a"], e["b"], e["weight"]) for e in summary["heaviest_cross_app"]] == [
        ("bill", "web", 2.0), ("bill", "rep", 1.0)]
    assert summary["unknown_endpoints"]["top"] == [{"endpoint": "8.8.8.8", "rows": 1, "bytes": 2**20}]
    assert summary["flow_stats"] == {"rows": 3, "used": 2, "self": 0, "unresolved": 1}


def test_inputs_as_paths_and_problems_of_both_files_at_once(tmp_path: Path) -> None:
    """Paths work like parsed inputs; a bad flows file and a bad links file are reported together."""
    inventory = _inventory(_vm("a", ip="10.0.0.1"), _vm("b", ip="10.0.0.2"))
    flows, links = tmp_path / "flows.csv", tmp_path / "links.yaml"
    flows.write_text("src,dst,bytes\na,b,1048576\n")
    links.write_text("version: 1\nkeep_apart:\n  - {a: a, b: b}\n")
    graph = build_graph(inventory, str(flows), links)
    assert graph.graph["sources"] == {"inventory": "test", "flows": str(flows), "links": str(links)}
    assert graph.edges["uuid-a", "uuid-b"]["weight"] == 1.0
    flows.write_text("src,dst,bytes\na,b,x\n")
    links.write_text("version: 1\nlinks:\n  - {a: a}\n")
    with pytest.raises(InputError) as exc:
        build_graph(inventory, flows, links)
    assert {(p.file, p.field) for p in exc.value.problems} == {(str(flows), "row 2, column bytes"),
                                                               (str(links), "links[0].b")}
