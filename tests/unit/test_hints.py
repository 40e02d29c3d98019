"""Dependency hints (planners.hints): the rule of each kind, the group cap, weights, flows outweighing hints."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from migrate.cli.graph_cmd import render_graph_summary
from migrate.cli.hint_options import hint_options
from migrate.core.errors import InputError
from migrate.core.models.inventory import Inventory, Provenance, VApp, Vm
from planners import build_graph, graph_summary, parse_flows, read_graph, write_graph
from planners.hints import (
    DEFAULT_HINT_WEIGHTS,
    DEFAULT_MAX_GROUP,
    FLOW_SHARE,
    HintOptions,
    annotation_key,
    name_stem,
    parse_hints,
)
from planners.plan_model import Constraints
from planners.waves import plan_waves


def _inventory(*vms: Vm, vapps: list[VApp] | None = None) -> Inventory:
    provenance = Provenance(source="test", kind="vcenter", collected_at=datetime(2025, 1, 1, tzinfo=UTC))
    return Inventory(provenance=provenance, vms=list(vms), vapps=vapps or [])


def _vm(name: str, **fields: Any) -> Vm:
    return Vm(id=f"id-{name}", name=name, **fields)


def _hints(*kinds: str, max_group: int = DEFAULT_MAX_GROUP, **weights: float) -> HintOptions:
    return HintOptions(weights={k: weights.get(k, DEFAULT_HINT_WEIGHTS[k]) for k in kinds}, max_group=max_group)


def _hint_weight(graph: nx.Graph, node: str) -> float:
    return sum(d["weight"] for _, _, d in graph.edges(node, data=True)
               if any(k.startswith("hint-") for k in d["kinds"]))


@pytest.mark.parametrize(("name", "stem"), [
    ("shop-web-01", "shop"), ("shop-db-02", "shop"), ("SHOP_APP_3", "shop"), ("shop2-app-01", "shop2"),
    ("appsrv01", "appsrv"), ("payroll-sql-01.corp.local", "payroll"), ("shop-01-web", "shop"),
    ("prd-shop-web-01", "prd-shop"), ("infra-dns-01", "infra"), ("shop-web2", "shop"),
    ("web01", None), ("PRD-SQL-01", None), ("x1", None), ("01", None), ("dev-app-02", None),
])
def test_name_stem(name: str, stem: str | None) -> None:
    """The name minus its counter and trailing tier words; nothing when only tier/environment words are left."""
    assert name_stem(name) == stem


@pytest.mark.parametrize(("annotation", "attributes", "key"), [
    ("app=Shop; owner=ops", {}, "app=shop"),
    ("Backup daily\nApplication:  Payroll   System", {}, "app=payroll system"),
    ("service: crm | tier 2", {}, "app=crm"),
    ("Payroll server", {}, "notes=payroll server"),
    ("Created by vRA on 2024-01-02", {}, None),
    ("Owner: bob", {}, None),
    ("x" * 81, {}, None),
    (None, {"Application": "CRM"}, "app=crm"),
    ("app=shop", {"AppName": "Billing"}, "app=billing"),
    (None, {"owner": "ops"}, None),
])
def test_annotation_key(annotation: str | None, attributes: dict[str, str], key: str | None) -> None:
    """An app custom attribute, else an app token of the notes, else a non-generic first line."""
    assert annotation_key(_vm("a", annotation=annotation, custom_attributes=attributes)) == key


def test_folder_hints_link_a_folder_with_its_weight_per_vm() -> None:
    """VMs of one folder are linked; separating one of them costs the folder weight; other folders stay apart."""
    vms = [_vm(f"s{i}", folder="/dc/vm/shop") for i in range(3)] + [_vm("c0", folder="/dc/vm/crm")]
    graph = build_graph(_inventory(*vms), hints=_hints("folder"))
    assert graph.number_of_edges() == 3
    assert all(d["kinds"] == ["hint-folder"] and not d["hard"] and d["reasons"] == ["hint folder /dc/vm/shop"]
               for _, _, d in graph.edges(data=True))
    assert _hint_weight(graph, "id-s0") == pytest.approx(DEFAULT_HINT_WEIGHTS["folder"])
    assert graph.graph["hints"]["edges_by_kind"] == {"folder": 3}
    assert graph.graph["hints"]["groups_by_kind"] == {"folder": 1}


def test_generic_folders_and_root_pools_are_skipped_and_reported() -> None:
    """The root VM folder, Discovered virtual machine and a cluster's root pool give no hints, with the reason."""
    vms = [_vm(f"r{i}", folder="/dc/vm", resource_pool="/dc/host/cl/Resources") for i in range(3)]
    vms += [_vm(f"d{i}", folder="/dc/vm/Discovered virtual machine", resource_pool="/dc/host/cl/Resources/web")
            for i in range(2)]
    graph = build_graph(_inventory(*vms), hints=_hints("folder", "pool"))
    report = graph.graph["hints"]
    assert {(s["kind"], s["key"], s["reason"]) for s in report["skipped_groups"]} == {
        ("folder", "/dc/vm", "a datacenter's root VM folder"),
        ("folder", "/dc/vm/Discovered virtual machine", "generic folder 'Discovered virtual machine'"),
        ("pool", "/dc/host/cl/Resources", "a root resource pool")}
    assert report["edges_by_kind"] == {"folder": 0, "pool": 1}
    assert [d["kinds"] for _, _, d in graph.edges(data=True)] == [["hint-pool"]]


def test_large_groups_are_capped_and_rings_stay_linear() -> None:
    """A folder above max_group gives no edges (reported); below it, members link in a ring of O(n) edges."""
    vms = [_vm(f"vm-{i:03d}", folder="/dc/vm/big") for i in range(120)]
    capped = build_graph(_inventory(*vms), hints=_hints("folder"))
    assert capped.number_of_edges() == 0
    assert capped.graph["hints"]["skipped_groups"] == [
        {"kind": "folder", "key": "/dc/vm/big", "size": 120, "reason": f"more than {DEFAULT_MAX_GROUP} VMs"}]
    ring = build_graph(_inventory(*vms), hints=_hints("folder", max_group=200))
    assert ring.number_of_edges() == 4 * 120
    assert max(_hint_weight(ring, n) for n in ring) == pytest.approx(DEFAULT_HINT_WEIGHTS["folder"])
    assert nx.is_connected(ring)


def test_vapp_hints_add_nothing_beyond_the_hard_ties() -> None:
    """vApp members already move together (hard): the vapp hint adds no soft edge and says so."""
    vms = [_vm(f"v{i}", vapp="va") for i in range(3)]
    graph = build_graph(_inventory(*vms, vapps=[VApp(id="resgroup-1", name="va", vms=[v.id for v in vms])]),
                        hints=_hints("vapp"))
    assert all(d["kinds"] == ["vapp"] and d["hard"] for _, _, d in graph.edges(data=True))
    assert graph.graph["hints"]["skipped_pairs"]["must_move"] == 3


def test_name_and_annotation_kinds_add_up_and_weights_are_configurable() -> None:
    """Kinds on the same pair add their weights; --hint-weight changes one kind's weight."""
    vms = [_vm("shop-web-01", annotation="app=shop"), _vm("shop-db-01", annotation="app=shop"),
           _vm("crm-web-01")]
    options = parse_hints("name,annotation", ["name=5"])
    assert options is not None and dict(options.weights) == {"name": 5.0, "annotation": 40.0}
    graph = build_graph(_inventory(*vms), hints=options)
    edge = graph.edges["id-shop-db-01", "id-shop-web-01"]
    assert edge["kinds"] == ["hint-annotation", "hint-name"] and edge["weight"] == pytest.approx(45.0)
    assert graph.degree("id-crm-web-01") == 0


def test_parse_hints_lists_every_problem() -> None:
    """Unknown kinds, bad weights, weights of kinds not asked for and a tiny cap are all reported at once."""
    assert parse_hints(None) is None
    all_kinds = parse_hints("all")
    assert all_kinds is not None and dict(all_kinds.weights) == dict(DEFAULT_HINT_WEIGHTS)
    with pytest.raises(InputError) as caught:
        parse_hints("folder,colour", ["folder=-1", "pool=3", "nokind", "name=x"], max_group=1)
    fields = [p.field for p in caught.value.problems]
    assert fields == ["--hints", "--hint-weight folder", "--hint-weight pool", "--hint-weight", "--hint-weight name",
                      "--hint-max-group"]


def test_hints_never_join_a_flow_pair_and_stay_below_the_lightest_flow() -> None:
    """With flows: no hint on a flow pair, and all hints of a VM weigh at most FLOW_SHARE of the lightest flow."""
    vms = [_vm(f"shop-web-0{i}", folder="/dc/vm/shop") for i in range(1, 5)]
    flows = parse_flows("src,dst,connections\nshop-web-01,shop-web-02,1\nshop-web-03,shop-web-04,100\n", "flows.csv")
    graph = build_graph(_inventory(*vms), flows, hints=_hints("folder", "name"))
    lightest = graph.graph["hints"]["lightest_flow"]
    assert lightest == pytest.approx(0.25)
    assert graph.edges["id-shop-web-01", "id-shop-web-02"]["kinds"] == ["flow"]
    assert graph.graph["hints"]["skipped_pairs"]["flow"] == 4      # 2 flow pairs x 2 kinds
    assert all(_hint_weight(graph, n) <= FLOW_SHARE * lightest + 1e-9 for n in graph)
    assert graph.graph["hints"]["scale"] == pytest.approx(FLOW_SHARE * lightest / 40)


def test_planner_prefers_a_flow_over_hints() -> None:
    """Two folders of two VMs, one light flow across them: the plan keeps the flow, without it the folders."""
    vms = [_vm("a", folder="/dc/vm/f1"), _vm("b", folder="/dc/vm/f1"),
           _vm("c", folder="/dc/vm/f2"), _vm("d", folder="/dc/vm/f2")]
    inventory = _inventory(*vms)
    hints = _hints("folder")
    waves_of = {}
    for label, flows in (("hints", None), ("flows", parse_flows("src,dst,connections\na,c,1\n", "flows.csv"))):
        plan = plan_waves(build_graph(inventory, flows, app_weight=0, hints=hints), Constraints(max_vms=2))
        waves_of[label] = sorted(sorted(w.vm_names) for w in plan.waves)
    assert waves_of["hints"] == [["a", "b"], ["c", "d"]]
    assert waves_of["flows"] == [["a", "c"], ["b", "d"]]


def test_graph_files_and_summary_carry_hint_kinds(tmp_path: Path) -> None:
    """graph.json and graph.graphml keep the hint kinds of edges and the hint report; the summary counts them."""
    vms = [_vm("shop-web-01", folder="/dc/vm/shop"), _vm("shop-db-01", folder="/dc/vm/shop"), _vm("crm-web-01")]
    graph = build_graph(_inventory(*vms), hints=_hints("folder", "name"))
    for suffix in ("json", "graphml"):
        write_graph(graph, tmp_path / f"g.{suffix}")
        back = read_graph(tmp_path / f"g.{suffix}")
        assert back.edges["id-shop-db-01", "id-shop-web-01"]["kinds"] == ["hint-folder", "hint-name"]
        assert back.graph["hints"]["edges_by_kind"] == {"folder": 1, "name": 1}
    summary = graph_summary(graph)
    assert summary["edges_by_kind"] == {"hint-folder": 1, "hint-name": 1}
    summary.update(out="g.json")
    assert "hints: folder 1 edges (1 groups, weight 20), name 1 edges (1 groups, weight 20)" \
        in render_graph_summary(summary)


def test_help_states_the_planner_defaults() -> None:
    """The defaults --help states are the planner's."""
    import click

    command = hint_options(click.command()(lambda **_: None))
    params = {p.name: p for p in command.params}
    help_text = params["hint_weights"].help or ""
    stated = dict(re.findall(r"(\w+)=(\d+)", help_text))
    assert {k: float(v) for k, v in stated.items()} == dict(DEFAULT_HINT_WEIGHTS)
    assert params["hint_max_group"].default == DEFAULT_MAX_GROUP
