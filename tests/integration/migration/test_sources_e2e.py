"""Two on-prem vCenters (`lab up --sources 2`): discovered in parallel into one inventory, `--since` per source,
planned and run to the cloud vCenter with each VM read, copied and marked through the vCenter it came from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from adapters.vcenter.collector import read_view, wait_for_task
from adapters.vcenter.connection import connect
from adapters.vcenter.settings import VCenterEndpoint, vcenter_settings
from migrate.config import load_site_config
from migrate.core.models.inventory import Inventory
from migrate.discovery import discover
from migrate.lab.manager import LabInfo, lab_down, lab_up
from tests.helpers import run_cli
from tests.integration.chaos import ChaosProxy

from .conftest import assert_targets_match_sources, estate, vms_by_uuid


@pytest.fixture(scope="module")
def two_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("two-sources")
    info = lab_up(directory, vms=12, seed=5, sources=2)
    try:
        yield info
    finally:
        lab_down(directory)


def source_hosts(lab: LabInfo) -> dict[str, str]:
    """Source name -> host:port, from site.yaml."""
    return {name: endpoint(lab, name).host for name in load_site_config(lab.site_config).source_sections}


def endpoint(lab: LabInfo, name: str) -> VCenterEndpoint:
    return vcenter_settings(load_site_config(lab.site_config).source_sections[name], name)


def comparable(inventory: Inventory) -> dict[str, Any]:
    """Everything but when and how it was collected and the (noisy) utilisation samples."""
    data = inventory.model_dump(exclude={"provenance", "sources"})
    for vm in data["vms"]:
        vm.pop("utilisation")
    return data


def test_site_lists_both_sources_and_check_logs_in_to_each(two_lab: LabInfo) -> None:
    assert list(source_hosts(two_lab)) == ["onprem", "onprem2"]
    result = run_cli("check", "--config", two_lab.site_config, "--json")
    assert result.code == 0, result
    checked = json.loads(result.stdout)
    assert checked["source onprem"]["ok"] and checked["source onprem2"]["ok"]


def test_discovery_reads_both_into_one_inventory(two_lab: LabInfo, tmp_path: Path) -> None:
    out = tmp_path / "inventory.json"
    result = run_cli("discover", "--config", two_lab.site_config, "--out", out, "--json")
    assert result.code == 0, result
    stats = json.loads(result.stdout)["stats"]
    assert set(stats["sources"]) == {"onprem", "onprem2"}
    inventory = Inventory.model_validate_json(out.read_text())
    hosts = source_hosts(two_lab)
    seeded = {vm["instance_uuid"]: hosts[vm["source"]] for vm in estate(two_lab)["vms"]}
    assert {vm.id: vm.source for vm in inventory.vms} == seeded
    assert len(set(seeded.values())) == 2 and stats["vms"] == len(seeded)
    assert [p.instance_uuid for p in inventory.sources] == [two_lab.instance_uuids[n] for n in ("onprem", "onprem2")]
    assert {vm.source_instance_uuid for vm in inventory.vms} == {p.instance_uuid for p in inventory.sources}
    # the two vCenters have the same topology (same morefs): their entities stay apart, each naming its source
    assert {h.source for h in inventory.hosts} == set(hosts.values())
    assert len({h.id for h in inventory.hosts}) == len(inventory.hosts)


def test_since_continues_each_source_from_its_own_part(two_lab: LabInfo, tmp_path: Path) -> None:
    discover(two_lab.site_config, utilisation=False, out=tmp_path / "base.json")
    changed = next(vm for vm in estate(two_lab)["vms"] if vm["source"] == "onprem2")
    with connect(endpoint(two_lab, "onprem2")) as vc:
        ref = next(obj for obj, props in read_view(vc.si, vim.VirtualMachine, ["name"])
                   if props["name"] == changed["name"])
        wait_for_task(vc.si, ref.ReconfigVM_Task(vim.vm.ConfigSpec(memoryMB=changed["memory_mb"] + 1024)),
                      "reconfigure")
        try:
            _incremental_equals_full(two_lab, tmp_path / "base.json", changed)
        finally:   # as seeded again, for the run's target check
            wait_for_task(vc.si, ref.ReconfigVM_Task(vim.vm.ConfigSpec(memoryMB=changed["memory_mb"])), "restore")


def _incremental_equals_full(two_lab: LabInfo, base_file: Path, changed: dict[str, Any]) -> None:
    base = Inventory.model_validate_json(base_file.read_text())
    incremental, stats = discover(two_lab.site_config, since=base_file, utilisation=False)
    assert stats["incremental"] and stats["sources"]["onprem"]["incremental"]
    assert stats["sources"]["onprem"]["full_reads"] == 0
    assert stats["sources"]["onprem2"]["full_reads"] >= 1 and stats["sources"]["onprem2"]["incremental"]
    assert next(vm for vm in incremental.vms if vm.name == changed["name"]).memory_mb == changed["memory_mb"] + 1024
    full, _ = discover(two_lab.site_config, utilisation=False)
    assert comparable(incremental) == comparable(full)
    assert comparable(base) != comparable(full)


def test_discovery_through_a_lossy_link_to_one_source_equals_a_clean_one(two_lab: LabInfo, tmp_path: Path) -> None:
    """A third of the connections to onprem2 reset at random (utilisation on, the default): the merged inventory
    equals a clean discovery's (before the run below powers the sources off)."""
    second = endpoint(two_lab, "onprem2")
    host, port = second.host.rsplit(":", 1)
    proxy = ChaosProxy((host, int(port)), reset_rate=0.3, seed=7, max_bytes=8 * 1024)
    try:
        document = yaml.safe_load(two_lab.site_config.read_text())
        document["sources"][1]["url"] = second.url.replace(second.host, f"127.0.0.1:{proxy.port}")
        lossy = two_lab.directory / "site-lossy.yaml"
        lossy.write_text(yaml.safe_dump(document))
        through, _ = discover(lossy)
        assert proxy.stats.resets > 0
    finally:
        proxy.close()
    clean, _ = discover(two_lab.site_config)
    assert sum(vm.utilisation is not None for vm in through.vms) == sum(vm.utilisation is not None
                                                                         for vm in clean.vms) > 0
    lossy_view = comparable(through)
    for vm in lossy_view["vms"]:   # the same VMs, named by the proxy's host:port
        if vm["source"] == f"127.0.0.1:{proxy.port}":
            vm["source"] = second.host
    for item in (x for kind in ("hosts", "clusters", "datastores", "networks") for x in lossy_view[kind]):
        if item["source"] == f"127.0.0.1:{proxy.port}":
            item["source"] = second.host
    assert lossy_view == comparable(clean)


def test_plan_and_run_move_both_sources_to_the_cloud(two_lab: LabInfo, tmp_path: Path) -> None:
    site = two_lab.site_config
    assert run_cli("discover", "--config", site, "--out", tmp_path / "inventory.json").code == 0
    plan = run_cli("plan", "--inventory", tmp_path / "inventory.json", "--flows", two_lab.directory / "flows.csv",
                   "--max-vms", "8", "--out", tmp_path / "plan.yaml")
    assert plan.code == 0, plan
    config = load_site_config(site)
    before: dict[str, list[dict[str, Any]]] = {}
    sources = {}
    for name in config.source_sections:
        with connect(endpoint(two_lab, name)) as vc:
            sources[name] = vms_by_uuid(vc)
        before.update(sources[name])
    result = run_cli("run", tmp_path / "plan.yaml", "--config", site, "--journal", tmp_path / "run.db", "--json",
                     timeout=600)
    assert result.code == 0, result
    assert json.loads(result.stdout)["status"] == "completed"
    assert_targets_match_sources(two_lab, before)
    for name in config.source_sections:   # marked and off in the vCenter each came from
        with connect(endpoint(two_lab, name)) as vc:
            after = vms_by_uuid(vc)
        for vm in estate(two_lab)["vms"]:
            if vm["source"] == name:
                (src,) = after[vm["instance_uuid"]]
                assert (src["name"], src["runtime.powerState"]) == (f"{vm['name']} (migrated)", "poweredOff")
            else:
                assert vm["instance_uuid"] not in after


def test_a_site_without_a_vms_source_refuses_the_run(two_lab: LabInfo, tmp_path: Path) -> None:
    """site.yaml with only the first vCenter and an inventory of both: exit 2 naming the other's VMs, nothing run."""
    assert run_cli("discover", "--config", two_lab.site_config, "--out", tmp_path / "inventory.json").code == 0
    assert run_cli("plan", "--inventory", tmp_path / "inventory.json", "--max-vms", "20",
                   "--out", tmp_path / "plan.yaml").code == 0
    document = yaml.safe_load(two_lab.site_config.read_text())
    document["source"] = document.pop("sources")[0]
    one = two_lab.directory / "site-one.yaml"
    one.write_text(yaml.safe_dump(document))
    result = run_cli("run", tmp_path / "plan.yaml", "--config", one, "--journal", tmp_path / "run.db")
    assert result.code == 2, result
    others = [vm["name"] for vm in estate(two_lab)["vms"] if vm["source"] == "onprem2"]
    named = [line for line in result.stderr.splitlines() if "which no source serves" in line]
    assert len(named) == len(others) and all(any(f"VM {name}" in line for line in named) for name in others)
    assert not (tmp_path / "run.db").exists()


def test_one_sources_wrong_password_fails_discovery_naming_it(two_lab: LabInfo, tmp_path: Path) -> None:
    """A source that refuses the login: exit 1 naming its endpoint, no password in the output, nothing written."""
    document = yaml.safe_load(two_lab.site_config.read_text())
    wrong = two_lab.directory / "secrets" / "wrong.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    document["sources"][1]["password_file"] = "secrets/wrong.password"
    site = two_lab.directory / "site-wrong.yaml"   # beside site.yaml: its relative paths hold
    site.write_text(yaml.safe_dump(document))
    result = run_cli("discover", "--config", site, "--out", tmp_path / "inventory.json")
    assert result.code == 1, result
    assert endpoint(two_lab, "onprem2").host in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout
    assert not (tmp_path / "inventory.json").exists()
