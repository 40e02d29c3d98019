"""`migrate assess` on a lab seeded with the readiness VMs: each seeded condition found, clean VMs clean."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from migrate.lab.manager import LabInfo, lab_down, lab_up
from tests.helpers import run_cli

# vcsim realities of the ordinary seeded VMs, which the migration tests rely on: tracking off (warm turns it on
# and back off) and no VMware Tools. The readiness lab's clean rdy-* VMs have neither.
ESTATE_REALITIES = {"change_tracking", "tools"}


@pytest.fixture(scope="module")
def rlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("readiness")
    info = lab_up(directory, vms=10, seed=5, readiness=True)
    try:
        yield info
    finally:
        lab_down(directory)


@pytest.fixture(scope="module")
def assessed(rlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """discover the source and the target (its own site.yaml: target as source), then assess through the CLI."""
    work = tmp_path_factory.mktemp("assess")
    site = rlab.site_config
    assert run_cli("discover", "--config", site, "--out", work / "inventory.json").code == 0
    doc = yaml.safe_load(site.read_text())
    doc["source"] = doc["target"]
    target_site = rlab.directory / "site-target.yaml"     # beside site.yaml: its relative paths still resolve
    target_site.write_text(yaml.safe_dump(doc))
    found = run_cli("discover", "--config", target_site, "--out", work / "target.json")
    assert found.code == 0, found
    result = run_cli("assess", "--inventory", work / "inventory.json", "--target-inventory", work / "target.json",
                     "--config", site, "--json")
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.stdout)
    data["inventory_doc"] = json.loads((work / "inventory.json").read_text())
    return data


def _short(assessed: dict[str, Any], vm_id: str) -> bool:
    """The inventory says a datastore of the VM has less free than 10% of the VM's disks (snapshot_space's test)."""
    free = {d["name"]: d.get("free_bytes") for d in assessed["inventory_doc"]["datastores"]}
    record = next(v for v in assessed["inventory_doc"]["vms"] if v["id"] == vm_id)
    need = sum(d["capacity_bytes"] for d in record["disks"]) * 0.1
    return any((free.get(d["datastore"]) or 0) < need for d in record["disks"])


def _rules(vm: dict[str, Any]) -> set[str]:
    return {f["rule"] for verdict in vm["methods"].values() for f in verdict["findings"]}


def test_each_seeded_condition_is_found(rlab: LabInfo, assessed: dict[str, Any]) -> None:
    """Every rdy-* VM shows the rules seeded on it, and only those."""
    manifest = json.loads((rlab.directory / "estate.json").read_text())
    seeded = {vm["name"]: set(vm["readiness_rules"]) for vm in manifest["vms"] if "readiness_rules" in vm}
    assert len(seeded) >= 20
    found = {vm["name"]: _rules(vm) for vm in assessed["vms"]}
    assert "snapshot_space" in found["rdy-bigdisk"]
    for vm in assessed["vms"]:     # vcsim counts thin disks as used: a datastore may really be short
        if vm["name"] in seeded and _short(assessed, vm["id"]):
            found[vm["name"]].discard("snapshot_space")
            seeded[vm["name"]].discard("snapshot_space")
    assert {name: found.get(name) for name in seeded} == seeded
    assert assessed["not_assessed"] == {}


def test_the_estate_s_vms_hold_only_what_vcsim_gives_them(assessed: dict[str, Any]) -> None:
    """The ordinary seeded VMs carry nothing but tracking off and no VMware Tools (and snapshot space where the
    machine's disk, which vcsim's datastores report, is short)."""
    for vm in assessed["vms"]:
        if vm["name"].startswith("rdy-"):
            continue
        rules = _rules(vm) - ESTATE_REALITIES
        if _short(assessed, vm["id"]):
            rules.discard("snapshot_space")
        assert rules == set(), (vm["name"], rules)
        assert vm["methods"]["cold"]["verdict"] in ("ready", "ready_with_warnings"), vm
