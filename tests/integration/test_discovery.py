"""Discovery against the lab: every seeded fact arrives in the inventory, field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.lab.estate import ONPREM
from migrate import discover, load_inventory
from migrate.core.config import SiteConfig
from migrate.core.models.inventory import Inventory, Utilisation, Vm
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli

from .conftest import site_copy


@pytest.fixture(scope="module")
def inventory(site: SiteConfig, tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    out = tmp_path_factory.mktemp("discovery") / "inventory.json"
    result, stats = discover(site, out=out)
    assert stats["full_reads"] == len(result.vms)
    assert load_inventory(out) == result          # what was written is what was returned
    return result


def by_name(inventory: Inventory) -> dict[str, Vm]:
    return {vm.name: vm for vm in inventory.vms}


def test_every_vm_with_hardware_power_and_guest(inventory: Inventory, manifest: dict[str, Any],
                                                lab: LabInfo) -> None:
    """Ids, CPU, memory, firmware, guest OS, power state, IPs and host names match what was seeded."""
    vms = by_name(inventory)
    assert len(vms) == len(manifest["vms"])
    assert inventory.provenance.instance_uuid == lab.instance_uuids["onprem"]
    for item in manifest["vms"]:
        vm = vms[item["name"]]
        assert vm.id == item["instance_uuid"] and vm.moref == item["moref"]
        assert (vm.cpus, vm.memory_mb, vm.firmware) == (item["cpus"], item["memory_mb"], item["firmware"])
        assert vm.guest.guest_id == item["guest_id"]
        assert vm.power_state == ("poweredOn" if item["powered_on"] else "poweredOff")
        assert vm.guest.ip_addresses == [item["ip"]]
        assert vm.guest.hostname == item["hostname"]
        assert (vm.host, vm.cluster, vm.datacenter) == (item["host"], item["cluster"], ONPREM.datacenter)


def test_disks_both_and_nics_mapped(inventory: Inventory, manifest: dict[str, Any]) -> None:
    """Every disk (datastore, path, size, controller) and every NIC (port group, MAC) is there."""
    vms = by_name(inventory)
    for item in manifest["vms"]:
        vm = vms[item["name"]]
        assert [(d.datastore, d.path, d.capacity_bytes) for d in vm.disks] == [
            (d["datastore"], d["path"], d["size_gb"] * 2**30) for d in item["disks"]]
        assert all(d.controller == "pvscsi:0" and d.thin for d in vm.disks)
        assert len(vm.nics) == 1 and vm.nics[0].network == item["portgroup"] and vm.nics[0].mac
        assert vm.nics[0].adapter == "vmxnet3"
    assert any(len(vms[i["name"]].disks) == 2 for i in manifest["vms"])


def test_tags_custom_attributes_and_vapp(inventory: Inventory, manifest: dict[str, Any]) -> None:
    """app/tier/env tags, the owner attribute and vApp membership come through."""
    vms = by_name(inventory)
    for item in manifest["vms"]:
        vm = vms[item["name"]]
        assert vm.tags == {"app": [item["app"]], "env": [item["env"]], "tier": [item["tier"]]}
        assert vm.custom_attributes == {"owner": item["owner"]}
        assert vm.vapp == item["vapp"]
    assert inventory.custom_attribute_names == ["owner"]
    [vapp] = inventory.vapps
    assert vapp.name == "vapp-reporting"
    assert sorted(vapp.vms) == sorted(i["instance_uuid"] for i in manifest["vms"] if i["vapp"])


def test_drs_rules_with_vm_ids(inventory: Inventory, manifest: dict[str, Any]) -> None:
    """Affinity and anti-affinity rules come from configurationEx, members as VM ids."""
    ids = {i["name"]: i["instance_uuid"] for i in manifest["vms"]}
    clusters = {c.name: c for c in inventory.clusters}
    rules = {r.name: r for r in clusters["cl-prod"].rules}
    for expected in manifest["rules"]:
        rule = rules[expected["name"]]
        assert rule.kind == ("affinity" if expected["keep_together"] else "anti-affinity")
        assert sorted(rule.vms) == sorted(ids[n] for n in expected["vms"])
        assert rule.enabled


def test_utilisation_for_powered_on_vms(inventory: Inventory) -> None:
    """Powered-on VMs carry CPU/memory averages of the history over the hour, stated as twelve 5-minute rollups
    (vcsim lists no historical intervals: vSphere's defaults); powered-off ones carry none (their history,
    read while the VMs were, is dropped)."""
    assert any(vm.power_state != "poweredOn" for vm in inventory.vms)
    for vm in inventory.vms:
        usage = vm.utilisation
        if vm.power_state == "poweredOn":
            assert usage is not None and (usage.basis, usage.window_seconds, usage.interval_seconds) == (
                "history", 3600, 300)
            assert 0 < usage.samples <= 12
            assert usage.cpu_usage_percent is not None and usage.memory_usage_percent is not None
            assert usage.memory_active_mb is not None and usage.cpu_usage_mhz is not None
        else:
            assert usage is None


def test_utilisation_kept_or_read_by_incremental_scan(inventory: Inventory, site: SiteConfig) -> None:
    """An incremental scan keeps an unchanged VM's utilisation as it was and reads it for a VM read in full."""
    kept, fresh = [vm for vm in inventory.vms if vm.power_state == "poweredOn"][:2]
    marked = Utilisation(window_seconds=60, samples=3, interval_seconds=20, cpu_usage_percent=1.25)
    since = inventory.model_copy(update={"vms": [vm.model_copy(update={"utilisation": marked}) if vm is kept else vm
                                                 for vm in inventory.vms if vm is not fresh]})
    result, stats = discover(site, since=since)
    assert stats["incremental"] is True and stats["full_reads"] < len(result.vms)
    vms = {vm.id: vm for vm in result.vms}
    assert vms[kept.id].utilisation == marked
    usage = vms[fresh.id].utilisation
    assert usage is not None and (usage.basis, usage.window_seconds, usage.interval_seconds) == ("history", 3600, 300)


def test_infrastructure(inventory: Inventory) -> None:
    """Hosts (sized), clusters, datastores and port groups with VLANs match the on-prem topology."""
    assert {h.name for h in inventory.hosts} == {h for hosts in ONPREM.clusters.values() for h in hosts}
    assert all(h.cpu_cores == ONPREM.host_cores and h.memory_bytes == ONPREM.host_memory_mb * 2**20
               for h in inventory.hosts)
    assert {c.name: sorted(c.hosts) for c in inventory.clusters} == {k: sorted(v) for k, v in ONPREM.clusters.items()}
    assert {d.name for d in inventory.datastores} == set(ONPREM.datastores)
    # vcsim leaves config.uplink unset on the switch's uplink port group (real vCenter sets it)
    vlans = {n.name: n.vlan for n in inventory.networks if n.kind == "distributed" and "DVUplinks" not in n.name}
    assert vlans == ONPREM.portgroups
    assert all(n.switch == ONPREM.switch for n in inventory.networks if n.kind == "distributed")


def test_cli_discover_json_and_file(lab: LabInfo, tmp_path: Path) -> None:
    """`migrate discover --json` writes a loadable inventory and reports its summary."""
    out = tmp_path / "inv.json"
    result = run_cli("discover", "--config", lab.site_config, "--out", out, "--no-utilisation", "--json")
    assert result.code == 0, result
    body = result.json()
    assert body["summary"]["vms"] == lab.vms and body["summary"]["drs_rules"] == 2
    assert load_inventory(out).provenance.kind == "vcenter"
    # the wall time of the whole discovery: no more than its phases added up (some of them overlap)
    assert 0 < body["stats"]["elapsed"] <= sum(body["stats"]["seconds"].values()) + 0.5
    again = run_cli("discover", "--config", lab.site_config, "--out", tmp_path / "again.json", "--since", out,
                    "--no-utilisation")
    assert again.code == 0, again
    assert f"Discovered {lab.vms} VMs" in again.stdout and "(incremental: " in again.stdout, again.stdout


def test_cli_discover_corrupt_since_is_bad_input(lab: LabInfo, tmp_path: Path) -> None:
    """A corrupt --since inventory is exit 2 naming the file, and --out is not written."""
    since = tmp_path / "old.json"
    since.write_text('{"vms": [ {"id": 1} ]')
    out = tmp_path / "new.json"
    result = run_cli("discover", "--config", lab.site_config, "--out", out, "--since", since)
    assert result.code == 2, result
    assert str(since) in result.stderr
    assert not out.exists()


def test_cli_discover_wrong_password_and_unreachable(lab: LabInfo, tmp_path: Path) -> None:
    """Wrong credentials and a dead endpoint are exit 1 naming the endpoint; no inventory is written."""
    out = tmp_path / "inv.json"
    bad_password = site_copy(lab, tmp_path, password_file=None, password_env="SRC_PW")
    result = run_cli("discover", "--config", bad_password, "--out", out, env={"SRC_PW": "not-the-password"})
    assert result.code == 1 and "invalid user name or password" in result.stderr, result
    (tmp_path / "dead").mkdir()
    dead = site_copy(lab, tmp_path / "dead", url="https://127.0.0.1:9/sdk")
    result = run_cli("discover", "--config", dead, "--out", out)
    assert result.code == 1 and "127.0.0.1:9" in result.stderr, result
    assert "Traceback" not in result.output
    assert not out.exists()
