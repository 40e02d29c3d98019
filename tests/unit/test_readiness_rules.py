"""The readiness catalog's rules, one condition at a time, on inventory facts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from migrate.core.models.inventory import (
    Cluster,
    Datastore,
    Disk,
    DrsRule,
    Guest,
    Host,
    Inventory,
    Nic,
    Provenance,
    Vm,
)
from migrate.engine.readiness import METHODS, RULES
from migrate.engine.readiness_assess import assess
from migrate.engine.readiness_context import Context, max_hardware_version, target_cluster

GIB = 2**30


def clean_vm(**changes: Any) -> Vm:
    """A VM no rule finds anything on."""
    fields: dict[str, Any] = dict(
        id="vm-1", name="app-01", cpus=2, memory_mb=4096, firmware="efi", hardware_version="vmx-13",
        power_state="poweredOn", change_tracking=True, consolidation_needed=False, running_on_snapshot=False,
        cpu_hot_add=False, memory_hot_add=False, fault_tolerance_state="notConfigured", secure_boot=False,
        encrypted=False, disks=[Disk(key=2000, capacity_bytes=40 * GIB, datastore="ds1", path="app-01/app-01.vmdk",
                                     controller="pvscsi:0", mode="persistent")],
        nics=[Nic(key=4000, adapter="vmxnet3", network="pg-app")],
        guest=Guest(hostname="app-01.corp", ip_addresses=["10.0.0.5"], guest_id="rhel8_64Guest",
                    tools_status="toolsOk"))
    fields.update(changes)
    return Vm(**fields)


def guest(**fields: Any) -> Guest:
    """Guest facts with VMware Tools running unless said otherwise."""
    return Guest(**{"tools_status": "toolsOk", **fields})


def inventory(*vms: Vm, clusters: list[Cluster] | None = None, free: int | None = 500 * GIB,
              hosts: list[Host] | None = None) -> Inventory:
    return Inventory(provenance=Provenance(source="vc", kind="vcenter", collected_at=datetime(2026, 1, 1, tzinfo=UTC)),
                     vms=list(vms), clusters=clusters or [], hosts=hosts or [],
                     datastores=[Datastore(id="ds-1", name="ds1", free_bytes=free)])


def findings(vm: Vm, method: str, **context: Any) -> dict[str, str]:
    """rule id -> status of the findings on `vm` for `method`."""
    inv = context.pop("inv", None) or inventory(vm)
    result = assess(Context.of(inv, **context), methods=[method])
    return {f.rule: f.status for f in result.vms[0].methods[method].findings}


def test_a_clean_vm_is_ready_for_every_method() -> None:
    """No rule fires on a VM with every fact known and nothing wrong."""
    result = assess(Context.of(inventory(clean_vm())))
    assert {m: v.verdict for m, v in result.vms[0].methods.items()} == dict.fromkeys(METHODS, "ready")
    assert set(result.not_assessed) == {"hardware_version", "evc_mode"}


@pytest.mark.parametrize(("changes", "method", "rule", "status"), [
    ({"change_tracking": False}, "warm", "change_tracking", "warn"),
    ({"change_tracking": False, "snapshots": 1}, "warm_replatform", "change_tracking", "block"),
    ({"change_tracking": None}, "warm", "change_tracking", "unknown"),
    ({"snapshots": 2}, "cold", "snapshots", "block"),
    ({"consolidation_needed": True}, "live", "consolidation", "block"),
    ({"disks": [Disk(key=2000, capacity_bytes=GIB, datastore="ds1", path="a/a-000001.vmdk")]}, "cold",
     "consolidation", "block"),
    ({"disks": [Disk(key=2000, capacity_bytes=GIB, datastore="ds1", mode="independent_persistent")]}, "warm",
     "independent_disk", "block"),
    ({"disks": [Disk(key=2000, capacity_bytes=GIB, datastore="ds1", rdm="physical")]}, "live", "rdm", "block"),
    ({"disks": [Disk(key=2000, capacity_bytes=GIB, datastore="ds1", sharing="sharingMultiWriter")]}, "replatform",
     "shared_disk", "block"),
    ({"disks": [Disk(key=2000, capacity_bytes=GIB, datastore="ds1", controller="ide:0")]}, "cold", "controller",
     "block"),
    ({"devices": ["serial", "cdrom"]}, "cold", "devices", "block"),
    ({"devices": ["pci-passthrough"]}, "live", "devices", "block"),
    ({"nics": [Nic(key=4000, adapter="sriov", network="pg-app")]}, "warm", "sriov", "block"),
    ({"devices": ["tpm"]}, "cold", "vtpm", "warn"),
    ({"devices": ["tpm"]}, "replatform", "vtpm", "block"),
    ({"encrypted": True}, "live", "encryption", "warn"),
    ({"encrypted": True}, "warm_replatform", "encryption", "block"),
    ({"fault_tolerance_state": "running"}, "cold", "fault_tolerance", "block"),
    ({"cpu_hot_add": True}, "replatform", "hot_add", "warn"),
    ({"guest": guest(hostname="a", guest_id="rhel8_64Guest")}, "replatform", "guest_identity", "warn"),
    ({"guest": guest(ip_addresses=["10.0.0.5"], guest_id="rhel8_64Guest")}, "replatform", "guest_identity", "warn"),
    ({"guest": guest(hostname="a", ip_addresses=["10.0.0.5"], guest_id="freebsd64Guest")}, "replatform",
     "guest_os", "block"),
    ({"guest": guest(hostname="a", ip_addresses=["10.0.0.5"])}, "replatform", "guest_os", "unknown"),
    ({"secure_boot": True}, "replatform", "guest_os", "warn"),
    ({"disks": [Disk(key=2000, capacity_bytes=17 * 2**40, datastore="ds9")]}, "replatform", "disk_size", "block"),
    ({"disks": [Disk(key=2000 + i, capacity_bytes=GIB, datastore="ds1") for i in range(27)]}, "replatform", "disks",
     "block"),
    ({"disks": []}, "replatform", "disks", "block"),
    ({"disks": [Disk(key=2000, capacity_bytes=6000 * GIB, datastore="ds1")]}, "warm", "snapshot_space", "warn"),
    ({"disks": [Disk(key=2000, capacity_bytes=GIB, datastore="nowhere")]}, "warm", "snapshot_space", "unknown"),
    ({"guest": guest(hostname="a", ip_addresses=["10.0.0.5"], guest_id="rhel8_64Guest",
                     tools_status="toolsNotRunning")}, "cold", "tools", "warn"),
])
def test_each_rule_finds_its_condition(changes: dict[str, Any], method: str, rule: str, status: str) -> None:
    """Each condition gives its rule id with the expected status for a method the rule applies to."""
    assert rule in RULES and method in RULES[rule].methods
    assert findings(clean_vm(**changes), method).get(rule) == status


@pytest.mark.parametrize(("changes", "method"), [
    ({"change_tracking": False}, "cold"),          # only the warm methods track changes
    ({"snapshots": 1}, "live"),                    # vMotion moves snapshots along
    ({"cpu_hot_add": True}, "warm"),               # a rehosted VM keeps hot-add
    ({"disks": [Disk(key=2000, capacity_bytes=17 * 2**40, datastore="ds9")]}, "cold"),
    ({"guest": guest(guest_id="freebsd64Guest", hostname="a", ip_addresses=["10.0.0.5"])}, "warm"),
    ({"power_state": "poweredOff", "guest": guest(hostname="a", ip_addresses=["1.2.3.4"], guest_id="rhel8_64Guest",
                                                  tools_status="toolsNotRunning")}, "cold"),
])
def test_rules_leave_other_methods_alone(changes: dict[str, Any], method: str) -> None:
    """A condition that matters for some methods does not touch the others."""
    assert findings(clean_vm(**changes), method) == {}


def test_vm_host_rules_warn_for_members_of_the_vm_group() -> None:
    """A VM in a VM-host rule (directly or through its VM group) gets a host_affinity warning."""
    vm = clean_vm()
    cluster = Cluster(id="c1", name="cl", vm_groups={"g": ["vm-1"]},
                      rules=[DrsRule(name="pin", kind="vm-host", vm_group="g", host_group="h", mandatory=True)])
    assert findings(vm, "live", inv=inventory(vm, clusters=[cluster])) == {"host_affinity": "warn"}


def test_kept_private_ip_without_a_guest_ip_blocks() -> None:
    """site.yaml keeping the private IP of the VM's port group turns a missing IP into a block."""
    vm = clean_vm(guest=guest(hostname="a", guest_id="rhel8_64Guest"))
    assert findings(vm, "replatform", kept_ip_networks=["pg-app"]) == {"guest_identity": "block"}
    assert findings(vm, "replatform", kept_ip_networks=["pg-web"]) == {}


def test_hardware_version_and_evc_against_the_target_cluster() -> None:
    """A newer hardware version than the target's hosts run blocks rehost; a higher EVC baseline blocks live."""
    target = inventory(hosts=[Host(id="h1", name="h1", cluster="Cluster-1", version="7.0.3",
                                   max_evc_mode="intel-cascadelake"),
                              Host(id="h2", name="h2", cluster="Cluster-1", version="8.0.2",
                                   max_evc_mode="intel-icelake")])
    cluster = target_cluster(target, "Cluster-1")
    assert (cluster.hardware_version, cluster.evc_mode) == (19, "intel-cascadelake")
    assert findings(clean_vm(hardware_version="vmx-21"), "cold", target=cluster) == {"hardware_version": "block"}
    assert findings(clean_vm(hardware_version="vmx-19"), "warm", target=cluster) == {}
    assert findings(clean_vm(min_evc_mode="intel-icelake"), "live", target=cluster) == {"evc_mode": "block"}
    assert findings(clean_vm(min_evc_mode="intel-skylake"), "live", target=cluster) == {}
    assert findings(clean_vm(min_evc_mode="amd-zen2"), "live", target=cluster) == {"evc_mode": "block"}
    unknown = target_cluster(inventory(hosts=[Host(id="h", name="h", version="8.0.2")]), None)
    assert findings(clean_vm(min_evc_mode="intel-skylake"), "live", target=unknown) == {"evc_mode": "unknown"}


@pytest.mark.parametrize(("esxi", "hw"), [("6.5.0", 13), ("7.0.1", 18), ("7.0.3", 19), ("8.0.0", 20),
                                          ("8.0.3", 21), (None, None), ("5.5.0", None)])
def test_max_hardware_version_of_an_esxi_release(esxi: str | None, hw: int | None) -> None:
    """ESXi releases map to the newest virtual hardware they run (KB 2007240)."""
    assert max_hardware_version(esxi) == hw


def test_verdicts_and_summary() -> None:
    """Any block: not ready; warnings or unknowns only: ready with warnings; counts per method."""
    vms = [clean_vm(), clean_vm(id="vm-2", name="b", snapshots=1), clean_vm(id="vm-3", name="c", change_tracking=False),
           clean_vm(id="vm-4", name="tpl", template=True)]
    result = assess(Context.of(inventory(*vms)), methods=["cold", "warm"])
    assert [vm.name for vm in result.vms] == ["app-01", "b", "c"]    # templates are not assessed
    assert result.summary["cold"] == {"ready": 2, "ready_with_warnings": 0, "not_ready": 1}
    assert result.summary["warm"] == {"ready": 1, "ready_with_warnings": 1, "not_ready": 1}
    planned = assess(Context.of(inventory(*vms)), planned={"vm-3": "warm"})
    assert [(vm.name, vm.planned_method) for vm in planned.vms] == [("c", "warm")]


def test_the_catalog_is_complete() -> None:
    """Every rule names methods the tool has, facts, a fix and a title."""
    for rule in RULES.values():
        assert rule.methods and set(rule.methods) <= set(METHODS), rule
        assert rule.facts and rule.fix and rule.title and rule.severity in ("block", "warn"), rule
