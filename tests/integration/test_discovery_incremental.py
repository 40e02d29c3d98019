"""Incremental discovery: after changes on the vCenter, `--since` gives what a full scan gives."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from adapters.vcenter import discovery, vm_markers
from adapters.vcenter.collector import read_view, wait_for_task
from adapters.vcenter.connection import connect
from adapters.vcenter.rest import RestClient, TaggingClient
from adapters.vcenter.vm_scan import EVENT_MARGIN
from migrate import discover
from migrate.config import load_site_config
from migrate.core.models.inventory import Host, Inventory
from migrate.lab.manager import LabInfo, lab_down, lab_up


@pytest.fixture(scope="module")
def small_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("inc-lab")
    info = lab_up(directory, vms=12, seed=3)
    try:
        yield info
    finally:
        lab_down(directory)


def comparable(inventory: Inventory) -> dict[str, Any]:
    """Everything but when it was collected and the (noisy) utilisation samples."""
    data = inventory.model_dump(exclude={"provenance"})
    for vm in data["vms"]:
        vm.pop("utilisation")
    return data


def change_the_estate(lab: LabInfo) -> None:
    """Reconfigure, power off/on, rename, re-attribute, tag, create, delete, change a guest IP, move to
    another folder and snapshot VMs through the real APIs."""
    config = load_site_config(lab.site_config)
    with connect(config.source) as vc:
        si = vc.si
        found = list(read_view(si, vim.VirtualMachine, ["name", "runtime.powerState", "parent"]))
        vms = {props["name"]: ref for ref, props in found}
        power = {props["name"]: props["runtime.powerState"] for _, props in found}
        names = sorted(vms)
        reconfigure, power_off, rename, attribute, tag, create_like, delete, guest_ip, move, snapshot = names[:10]
        power_on = next(name for name in names[10:] + names[:10] if power[name] == "poweredOff"
                        and name not in (power_off, delete))
        # changes with no event in vcsim: a folder move and a snapshot; a guest IP (a reconfiguration here)
        folder = next(props["parent"] for ref, props in found if props["name"] == move)
        target = folder.CreateFolder(name="moved-here")
        wait_for_task(si, target.MoveIntoFolder_Task([vms[move]]), "move")
        wait_for_task(si, vms[snapshot].CreateSnapshot_Task(name="s1", memory=False, quiesce=False), "snapshot")
        ip_spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key="SET.guest.ipAddress", value="10.9.9.9")])
        wait_for_task(si, vms[guest_ip].ReconfigVM_Task(ip_spec), "guest ip")
        if power[power_on] == "poweredOff":
            wait_for_task(si, vms[power_on].PowerOnVM_Task(), "power on")
        wait_for_task(si, vms[reconfigure].ReconfigVM_Task(vim.vm.ConfigSpec(memoryMB=3072, numCPUs=3)), "reconfig")
        wait_for_task(si, vms[power_off].PowerOffVM_Task(), "power off")
        wait_for_task(si, vms[rename].Rename_Task(newName=f"{rename}-renamed"), "rename")
        manager = si.content.customFieldsManager
        owner = next(f for f in manager.field if f.name == "owner")
        manager.SetField(entity=vms[attribute], key=owner.key, value="new-owner")
        rest = RestClient(vc)
        try:
            tagging = TaggingClient(rest)
            category = tagging.create_category("backup")
            tagging.attach(tagging.create_tag(category, "daily"), [("VirtualMachine", vms[tag]._moId)])
        finally:
            rest.close()
        # a new VM (vcsim's CloneVM_Task rewrites the source's disk paths, so create one instead)
        template = list(read_view(si, vim.VirtualMachine, ["name", "parent", "resourcePool", "runtime.host"]))
        props = next(p for _, p in template if p["name"] == create_like)
        spec = vim.vm.ConfigSpec(name="new-vm-01", guestId="otherGuest", numCPUs=1, memoryMB=512,
                                 files=vim.vm.FileInfo(vmPathName="[ds-prod-01]"))
        wait_for_task(si, props["parent"].CreateVM_Task(config=spec, pool=props["resourcePool"],
                                                        host=props["runtime.host"]), "create")
        state = dict(read_view(si, vim.VirtualMachine, ["runtime.powerState"]))[vms[delete]]
        if state["runtime.powerState"] == "poweredOn":
            wait_for_task(si, vms[delete].PowerOffVM_Task(), "power off")
        wait_for_task(si, vms[delete].Destroy_Task(), "destroy")
        change_the_infrastructure(si, folder)


def change_the_infrastructure(si: Any, folder: Any) -> None:
    """No event names a VM here: a new standard port group on a host, and a renamed VM
    folder (every VM in it gets a new folder path)."""
    host = next(ref for ref, _ in read_view(si, vim.HostSystem, ["name"]))
    spec = vim.host.PortGroup.Specification(name="pg-added", vlanId=0, vswitchName="vSwitch0",
                                            policy=vim.host.NetworkPolicy())
    host.configManager.networkSystem.AddPortGroup(spec)
    wait_for_task(si, folder.Rename_Task(newName=f"{folder.name}-renamed"), "rename folder")


def test_incremental_equals_full_scan(small_lab: LabInfo, tmp_path: Path) -> None:
    """After VM changes of ten kinds and two infrastructure changes, an incremental scan equals a full one
    and re-reads only changed VMs."""
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)   # the lab's seeding events are older than the margin
    before, _ = discover(small_lab.site_config, out=tmp_path / "before.json")
    change_the_estate(small_lab)
    incremental, stats = discover(small_lab.site_config, since=tmp_path / "before.json")
    full, _ = discover(small_lab.site_config)
    assert stats["incremental"] is True and stats["mode"] == "events"
    assert stats["full_reads"] < len(full.vms) // 2
    assert comparable(incremental) == comparable(full), _diff(comparable(incremental), comparable(full))
    # the full scan stored a marker digest per VM; only VMs whose markers moved were parsed
    assert set((before.provenance.vm_markers or {}).keys()) == {vm.moref for vm in before.vms}
    assert 0 < stats["parsed_markers"] < len(full.vms) // 2
    # digests as a full scan takes them, but none for VMs read while the marker pass ran (events named them)
    kept_markers = incremental.provenance.vm_markers or {}
    assert kept_markers and kept_markers.items() <= (full.provenance.vm_markers or {}).items()
    assert incremental.provenance.incremental_from == before.provenance.collected_at
    assert len(full.vms) == len(before.vms)            # one VM created, one deleted
    assert "new-vm-01" in {vm.name for vm in incremental.vms}
    changed = {vm.name: vm for vm in incremental.vms}
    assert any("10.9.9.9" in vm.guest.ip_addresses for vm in incremental.vms)
    assert any(vm.folder and vm.folder.endswith("/moved-here") for vm in incremental.vms)
    assert any(vm.snapshots for vm in changed.values())
    assert "pg-added" in {n.name for n in incremental.networks}   # (vcsim keeps no VLAN in host config)
    assert any(vm.folder and vm.folder.endswith("-renamed") for vm in incremental.vms)


def test_since_from_another_vcenter_falls_back_to_full_scan(small_lab: LabInfo, lab: LabInfo,
                                                            tmp_path: Path) -> None:
    """An inventory of another vCenter is not trusted for an incremental scan."""
    other, _ = discover(lab.site_config, utilisation=False)
    result, stats = discover(small_lab.site_config, since=other, utilisation=False)
    assert stats["incremental"] is False and stats["full_reads"] == len(result.vms)
    assert any("another source" in w for w in stats["warnings"])


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    avms = {v["id"]: v for v in a["vms"]}
    for vm in b["vms"]:
        other = avms.get(vm["id"])
        if other is None:
            out.append(f"missing {vm['name']}")
            continue
        for key in vm:
            if vm[key] != other.get(key):
                out.append(f"{vm['name']}.{key}: {other.get(key)!r} != {vm[key]!r}")
    return out


def test_rescan_of_an_incremental_sees_a_change_without_event(small_lab: LabInfo, tmp_path: Path) -> None:
    """A later re-scan from an incremental inventory (digests stored by it) catches an event-less custom
    value change and a renamed custom attribute (no VM's bytes change: every digest must move)."""
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)   # earlier tests' events are older than the margin
    base, _ = discover(small_lab.site_config, utilisation=False)
    first, _ = discover(small_lab.site_config, since=base, utilisation=False, out=tmp_path / "first.json")
    config = load_site_config(small_lab.site_config)
    with connect(config.source) as vc:
        si = vc.si
        vm = next(ref for ref, props in read_view(si, vim.VirtualMachine, ["name"])
                  if props["name"] == first.vms[0].name)
        manager = si.content.customFieldsManager
        owner = next(f for f in manager.field if f.name == "owner")
        manager.SetField(entity=vm, key=owner.key, value="someone-else")
    second, stats = discover(small_lab.site_config, since=tmp_path / "first.json", utilisation=False)
    assert stats["mode"] == "events" and stats["parsed_markers"] == 1 and stats["full_reads"] == 0, stats
    assert comparable(second) == comparable(discover(small_lab.site_config, utilisation=False)[0])
    assert {vm.name: vm.custom_attributes.get("owner") for vm in second.vms}[first.vms[0].name] == "someone-else"
    with connect(config.source) as vc:
        manager = vc.si.content.customFieldsManager
        owner = next(f for f in manager.field if f.name == "owner")
        manager.RenameCustomFieldDef(key=owner.key, name="owned-by")
    third, stats = discover(small_lab.site_config, since=second, utilisation=False)
    assert stats["parsed_markers"] == len(third.vms)
    assert comparable(third) == comparable(discover(small_lab.site_config, utilisation=False)[0])
    assert any("owned-by" in vm.custom_attributes for vm in third.vms)


def test_vms_on_a_host_the_previous_inventory_did_not_know_are_found(small_lab: LabInfo, tmp_path: Path) -> None:
    """The marker pass goes through the previous inventory's hosts: the VMs of a host it did not list (as
    if added since) are read after it, because the hosts' and pools' lists name them; the result equals
    a full scan."""
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)
    base, _ = discover(small_lab.site_config, utilisation=False)
    busiest = Counter(vm.host for vm in base.vms).most_common(1)[0]
    unknown = base.model_copy(update={"hosts": [h for h in base.hosts if h.name != busiest[0]]})
    incremental, stats = discover(small_lab.site_config, since=unknown, utilisation=False)
    assert stats["mode"] == "events" and stats["marker_pass"] == "hosts", stats
    assert stats["late_markers"] == busiest[1] > 0, stats
    assert stats["full_reads"] == 0 and stats["parsed_markers"] == 0, stats
    assert comparable(incremental) == comparable(discover(small_lab.site_config, utilisation=False)[0])


def test_a_vm_gone_before_it_is_read_after_the_pass_makes_one_pass_over_a_view(
        small_lab: LabInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A VM the hosts' lists named but that is deleted before the pass's late read (injected: the lists
    name a VM that does not exist) fails that read with ManagedObjectNotFound: the scan falls back to one
    pass over a container view and still equals a full scan."""
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)
    base, _ = discover(small_lab.site_config, utilisation=False)
    read_estate = discovery.read_estate

    def with_a_gone_vm(reader: Any, **kwargs: Any) -> Any:
        estate = read_estate(reader, **kwargs)
        host = next(iter(estate.placement.host.values()))
        estate.placement.host["vm-deleted-999"] = host
        return estate

    monkeypatch.setattr(discovery, "read_estate", with_a_gone_vm)
    incremental, stats = discover(small_lab.site_config, since=base, utilisation=False)
    monkeypatch.undo()
    assert stats["mode"] == "events" and stats["marker_pass"] == "view" and stats["late_markers"] == 0, stats
    assert comparable(incremental) == comparable(discover(small_lab.site_config, utilisation=False)[0])


def test_a_host_gone_since_the_previous_inventory_makes_one_pass_over_a_view(small_lab: LabInfo) -> None:
    """A host of the previous inventory that no longer exists fails the pass through the hosts: the scan
    falls back to one pass over a container view and still equals a full scan."""
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)
    base, _ = discover(small_lab.site_config, utilisation=False)
    gone = Host(id="host-removed-999", name="esx-removed.lab")
    incremental, stats = discover(small_lab.site_config, since=base.model_copy(update={"hosts": [*base.hosts, gone]}),
                                  utilisation=False)
    assert stats["mode"] == "events" and stats["marker_pass"] == "view", stats
    assert stats["late_markers"] == 0 and stats["full_reads"] == 0, stats
    assert comparable(incremental) == comparable(discover(small_lab.site_config, utilisation=False)[0])


def test_marker_pages_that_cannot_be_cut_are_parsed_whole(small_lab: LabInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server whose pages the byte split does not recognise (another layout: vcsim has one, so the split
    is made to decline) gets every marker page parsed; a new VM and a renamed one are still right."""
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)
    base, _ = discover(small_lab.site_config, utilisation=False)
    config = load_site_config(small_lab.site_config)
    with connect(config.source) as vc:
        si = vc.si
        found = list(read_view(si, vim.VirtualMachine, ["name", "parent", "resourcePool", "runtime.host"]))
        ref, props = found[0]
        spec = vim.vm.ConfigSpec(name="new-vm-unsplit", guestId="otherGuest", numCPUs=1, memoryMB=256,
                                 files=vim.vm.FileInfo(vmPathName="[ds-prod-01]"))
        wait_for_task(si, props["parent"].CreateVM_Task(config=spec, pool=props["resourcePool"],
                                                        host=props["runtime.host"]), "create")
        wait_for_task(si, ref.Rename_Task(newName=f"{props['name']}-unsplit"), "rename")
    monkeypatch.setattr(vm_markers, "split_objects", lambda page: None)
    incremental, stats = discover(small_lab.site_config, since=base, utilisation=False)
    monkeypatch.undo()
    assert stats["mode"] == "events" and stats["parsed_markers"] == len(base.vms), stats
    assert not incremental.provenance.vm_markers           # no digests without a split: the next scan parses all
    assert {"new-vm-unsplit", f"{props['name']}-unsplit"} <= {vm.name for vm in incremental.vms}
    assert comparable(incremental) == comparable(discover(small_lab.site_config, utilisation=False)[0])


def test_a_vm_moved_between_its_read_and_the_estates_is_placed_again_next_time(
        small_lab: LabInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A VM moved to another folder (no event) after a full scan read it and before that scan read the
    containers' lists: the scan keeps no digest for those folders, so the next scans place it where it is."""
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)
    config = load_site_config(small_lab.site_config)
    with connect(config.source) as vc:
        found = {props["name"]: (ref, props) for ref, props in read_view(vc.si, vim.VirtualMachine, ["name", "parent"])}
        name = sorted(found)[-1]
        target_id = found[name][1]["parent"].CreateFolder(name="moved-meanwhile")._moId
        vm_id = found[name][0]._moId
    vms_read = threading.Event()
    scan_vms, read_estate = discovery.scan_vms, discovery.read_estate

    def scan_then_signal(*args: Any, **kwargs: Any) -> Any:
        try:
            return scan_vms(*args, **kwargs)
        finally:
            vms_read.set()

    def move_then_read_estate(reader: Any, **kwargs: Any) -> Any:
        assert vms_read.wait(60)
        with connect(config.source) as vc:
            folder = vim.Folder(target_id, vc.si._stub)
            wait_for_task(vc.si, folder.MoveIntoFolder_Task([vim.VirtualMachine(vm_id, vc.si._stub)]), "move")
        return read_estate(reader, **kwargs)

    monkeypatch.setattr(discovery, "scan_vms", scan_then_signal)
    monkeypatch.setattr(discovery, "read_estate", move_then_read_estate)
    base, _ = discover(small_lab.site_config, utilisation=False)
    monkeypatch.undo()
    assert not {vm.folder for vm in base.vms if vm.name == name}.pop().endswith("/moved-meanwhile")
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)
    first, _ = discover(small_lab.site_config, since=base, utilisation=False)
    second, _ = discover(small_lab.site_config, since=first, utilisation=False)
    for inventory in (first, second):
        assert {vm.folder for vm in inventory.vms if vm.name == name}.pop().endswith("/moved-meanwhile")
    assert comparable(second) == comparable(discover(small_lab.site_config, utilisation=False)[0])


@pytest.fixture(scope="module")
def bare_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("inc-bare")
    info = lab_up(directory, vms=16, bare=True)
    try:
        yield info
    finally:
        lab_down(directory)


def test_custom_values_are_read_once_an_attribute_for_vms_exists(bare_lab: LabInfo) -> None:
    """Without a custom attribute for VMs no VM's customValue is asked for; once one is defined and set,
    the next incremental scan sees the value (every digest moved with the paths) and equals a full scan."""
    time.sleep(EVENT_MARGIN.total_seconds() + 0.2)
    config = load_site_config(bare_lab.site_config)
    with connect(config.source) as vc:
        assert not vc.si.content.customFieldsManager.field
    base, _ = discover(bare_lab.site_config, utilisation=False)
    assert base.custom_attribute_names == [] and all(not vm.custom_attributes for vm in base.vms)
    host_only = "rack"
    with connect(config.source) as vc:
        manager = vc.si.content.customFieldsManager
        manager.AddCustomFieldDef(name=host_only, moType=vim.HostSystem)
    second, stats = discover(bare_lab.site_config, since=base, utilisation=False)
    assert stats["parsed_markers"] == 0, stats         # a host-only attribute: VMs' paths unchanged
    with connect(config.source) as vc:
        manager = vc.si.content.customFieldsManager
        field = manager.AddCustomFieldDef(name="owner", moType=vim.VirtualMachine)
        vm = next(ref for ref, props in read_view(vc.si, vim.VirtualMachine, ["name"])
                  if props["name"] == base.vms[0].name)
        manager.SetField(entity=vm, key=field.key, value="team-a")
    third, stats = discover(bare_lab.site_config, since=second, utilisation=False)
    assert stats["mode"] == "events" and stats["parsed_markers"] == len(third.vms), stats
    assert {vm.name: vm.custom_attributes for vm in third.vms}[base.vms[0].name] == {"owner": "team-a"}
    assert comparable(third) == comparable(discover(bare_lab.site_config, utilisation=False)[0])
