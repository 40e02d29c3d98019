"""Hints through `python -m migrate graph|plan|validate`: an estate without flows or tags still plans by app."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from adapters.lab.estate import make_estate
from migrate.cli.main import cli
from migrate.inventory import save_inventory
from tests.unit.test_graph_lab import lab_inventory

MIGRATE = [sys.executable, "-m", "migrate"]
ALL_HINTS = "folder,pool,vapp,name,annotation"


def _migrate(*args: str, cwd: Path) -> dict[str, Any]:
    ran = subprocess.run([*MIGRATE, *args, "--json"], capture_output=True, text=True, cwd=cwd, timeout=300,
                         check=False)
    assert ran.returncode == 0, ran.stderr
    result: dict[str, Any] = json.loads(ran.stdout)
    return result


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """60 lab VMs with no tags and no flows: half the apps in their own folder (the rest in the root VM folder),
    every third app named in the notes, every VM in its cluster's root pool. Returns (dir, VM name -> app)."""
    where = tmp_path_factory.mktemp("hints")
    lab = make_estate(60, 1)
    apps = sorted({vm.app for vm in lab.vms})
    spec = {vm.name: vm for vm in lab.vms}
    inventory = lab_inventory(lab)
    vms = []
    for vm in inventory.vms:
        app = spec[vm.name].app
        k = apps.index(app)
        vms.append(vm.model_copy(update={
            "tags": {}, "folder": f"/dc-east/vm/{app}" if k % 2 == 0 else "/dc-east/vm",
            "annotation": f"Owner: {spec[vm.name].owner}\napp={app}" if k % 3 == 0 else None,
            "resource_pool": f"/dc-east/host/{spec[vm.name].cluster}/Resources"}))
    save_inventory(inventory.model_copy(update={"vms": vms}), where / "inventory.json")
    return where, {vm.name: vm.app for vm in lab.vms}


def _together(plan_file: Path, apps: dict[str, str]) -> float:
    """Fraction of the pairs of VMs of one application that the plan puts in the same wave."""
    plan = yaml.safe_load(plan_file.read_text())
    wave = {name: w["id"] for w in plan["waves"] for name in w["vm_names"]}
    pairs = [(a, b) for a, b in itertools.combinations(sorted(apps), 2) if apps[a] == apps[b]]
    return sum(wave[a] == wave[b] for a, b in pairs) / len(pairs)


def test_graph_reports_hints_by_kind(estate: tuple[Path, dict[str, str]]) -> None:
    """`migrate graph --hints` counts edges per hint kind and names the root folder and pools it skipped."""
    where, _ = estate
    data = _migrate("graph", "--inventory", "inventory.json", "--hints", ALL_HINTS, "--hint-weight", "pool=5",
                    "--out", "graph.graphml", cwd=where)
    assert {"hint-folder", "hint-name", "hint-annotation"} <= set(data["edges_by_kind"])
    hints = data["hints"]
    assert hints["weights"]["pool"] == 5.0 and hints["scale"] == 1.0
    assert hints["edges_by_kind"]["name"] == data["edges_by_kind"]["hint-name"] > 0
    skipped = {(s["kind"], s["key"]): s["reason"] for s in hints["skipped_groups"]}
    assert skipped[("folder", "/dc-east/vm")] == "a datacenter's root VM folder"
    assert skipped[("pool", "/dc-east/host/cl-prod/Resources")] == "a root resource pool"
    assert "hint-name" in (where / "graph.graphml").read_text()


def test_plan_with_hints_keeps_applications_together(estate: tuple[Path, dict[str, str]]) -> None:
    """Without flows, hints raise the share of same-app VM pairs planned into one wave (measured both ways)."""
    where, apps = estate
    _migrate("plan", "--inventory", "inventory.json", "--max-vms", "10", "--out", "plain.yaml", cwd=where)
    _migrate("plan", "--inventory", "inventory.json", "--max-vms", "10", "--hints", ALL_HINTS,
             "--out", "hinted.yaml", cwd=where)
    plain, hinted = _together(where / "plain.yaml", apps), _together(where / "hinted.yaml", apps)
    print(f"same-app pairs in one wave: {plain:.2f} without hints, {hinted:.2f} with hints")
    assert hinted >= 0.8 and hinted >= plain + 0.3
    recorded = yaml.safe_load((where / "hinted.yaml").read_text())["source"]["hints"]
    assert recorded.startswith("folder=20,pool=10,vapp=20,name=20,annotation=40")
    checked = _migrate("validate", "hinted.yaml", "--inventory", "inventory.json", "--hints", ALL_HINTS, cwd=where)
    assert checked["valid"] and checked["metrics"]["cut_weight"] < checked["metrics"]["total_weight"] / 5


def test_hint_options_bad_input_exit_2(estate: tuple[Path, dict[str, str]]) -> None:
    """A weight without --hints, an unknown kind, and --hints with --graph are input errors (exit 2)."""
    where, _ = estate
    runner = CliRunner()
    inventory = str(where / "inventory.json")
    alone = runner.invoke(cli, ["graph", "--inventory", inventory, "--hint-weight", "folder=1",
                                "--out", str(where / "x.json")])
    assert alone.exit_code == 2 and "goes with --hints" in alone.output
    unknown = runner.invoke(cli, ["plan", "--inventory", inventory, "--hints", "folder,colour",
                                  "--out", str(where / "x.yaml")])
    assert unknown.exit_code == 2 and "unknown hint 'colour'" in unknown.output
    on_graph = runner.invoke(cli, ["plan", "--graph", str(where / "graph.graphml"), "--hints", "name",
                                   "--out", str(where / "x.yaml")])
    assert on_graph.exit_code == 2 and "goes with --inventory, not --graph" in on_graph.output
