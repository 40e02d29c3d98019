"""The chain on the lab: discover -> graph -> plan -> validate -> size, each step reading the previous file."""

from __future__ import annotations

from pathlib import Path

from migrate import load_inventory
from migrate.lab.flows import EXTERNAL_ENDPOINT
from migrate.lab.manager import LabInfo
from planners import build_graph, graph_summary, load_plan, must_move_groups, read_graph
from tests.helpers import run_cli


def test_discover_then_graph(lab: LabInfo, tmp_path: Path) -> None:
    """`migrate discover` then `migrate graph` on the lab: apps hang together, rules become edges, the outside
    address is reported unknown."""
    inventory_path, graph_path = tmp_path / "inventory.json", tmp_path / "graph.json"
    assert run_cli("discover", "--config", lab.site_config, "--out", inventory_path, "--no-utilisation").code == 0
    assert lab.flows is not None
    result = run_cli("graph", "--inventory", inventory_path, "--flows", lab.flows, "--out", graph_path, "--json")
    assert result.code == 0, result
    graph = read_graph(graph_path)
    inventory = load_inventory(inventory_path)
    assert graph.number_of_nodes() == len(inventory.vms)
    assert EXTERNAL_ENDPOINT in {u["endpoint"] for u in graph.graph["unknown_endpoints"]}

    names = {vm.id: vm.name for vm in inventory.vms}
    groups = [sorted(group.names) for group in must_move_groups(graph)]
    assert ["crm-app-01", "crm-db-01"] in groups                      # DRS affinity
    assert ["reporting-db-01", "reporting-web-01"] in groups          # the vApp
    apart = {tuple(sorted((names[p["a"]], names[p["b"]]))) for p in graph.graph["keep_apart"]}
    assert apart == {("shop-db-01", "shop-db-02")}                    # DRS anti-affinity

    rebuilt = build_graph(inventory, flows=lab.flows)
    assert graph_summary(rebuilt)["nodes"] == graph_summary(graph)["nodes"]
    by_app: dict[str, set[str]] = {}
    for vm in inventory.vms:
        by_app.setdefault(vm.tags["app"][0], set()).add(vm.id)
    for app, members in by_app.items():
        if len(members) > 1:
            assert rebuilt.subgraph(members).number_of_edges() >= len(members) - 1, app


def test_discover_plan_validate_size(lab: LabInfo, tmp_path: Path) -> None:
    """discover -> plan -> validate -> size on the lab: hard groups stay whole, keep-apart pairs apart,
    validate agrees, and sizing covers every planned VM."""
    inventory_path, plan_path = tmp_path / "inventory.json", tmp_path / "plan.yaml"
    assert run_cli("discover", "--config", lab.site_config, "--out", inventory_path, "--no-utilisation").code == 0
    assert lab.flows is not None
    planned = run_cli("plan", "--inventory", inventory_path, "--flows", lab.flows, "--max-vms", "15", "--ramp", "5",
                      "--out", plan_path, "--json")
    assert planned.code == 0, planned
    plan = load_plan(plan_path)
    inventory = load_inventory(inventory_path)
    wave_of = {vm: wave.id for wave in plan.waves for vm in wave.vms}
    assert sorted(wave_of) == sorted(vm.id for vm in inventory.vms)
    assert len(plan.waves[0].vms) <= 5 and all(len(w.vms) <= 15 for w in plan.waves)
    ids = {vm.name: vm.id for vm in inventory.vms}
    assert wave_of[ids["crm-app-01"]] == wave_of[ids["crm-db-01"]]
    assert wave_of[ids["reporting-web-01"]] == wave_of[ids["reporting-db-01"]]
    assert wave_of[ids["shop-db-01"]] != wave_of[ids["shop-db-02"]]
    assert plan.metrics.violations == 0

    valid = run_cli("validate", plan_path, "--inventory", inventory_path, "--flows", lab.flows)
    assert valid.code == 0, valid
    sized = run_cli("size", "--inventory", inventory_path, "--plan", plan_path, "--config", lab.site_config,
                    "--json")
    assert sized.code == 0, sized
    assert sum(w["vms"] for w in sized.json()["waves"]) == len(inventory.vms)
