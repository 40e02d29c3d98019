"""plan.yaml + inventory + site.yaml -> RunPlan for the cold method: facts, mappings, every problem at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pyVmomi import vim

from adapters.vcenter.settings import VCenterEndpoint
from adapters.vcenter.vm_spec import SOURCE_KEY, config_spec
from migrate.core.config import Mappings, SiteConfig
from migrate.core.errors import InputError
from migrate.core.models.inventory import Disk, Inventory, Nic, Provenance, Vm
from migrate.engine.cold import target_file
from migrate.execution_plan import build_run_plan, target_folder
from planners.plan_model import Plan, Wave

SOURCE = VCenterEndpoint(name="onprem", url="https://vc.example/sdk", username="u", password_env="P")
TARGET = VCenterEndpoint(name="cloud", url="https://sddc.example/sdk", username="u", password_env="P",
                         datacenter="SDDC", cluster="Cluster-1", datastore="WorkloadDatastore", folder="Workloads")
SITE = SiteConfig(source=SOURCE, target=TARGET,
                  mappings=Mappings(networks={"pg-web": "seg-web", "pg-db": "seg-db"}, datastores={"ds2": "vsan2"}))


def _vm(name: str, net: str = "pg-web", ds: str = "ds1") -> Vm:
    return Vm(id=f"uuid-{name}", name=name, cpus=2, memory_mb=4096, host="esx-1", firmware="efi",
              disks=[Disk(key=2000, capacity_bytes=2**30, datastore=ds, path=f"{name}/{name}.vmdk",
                          controller="pvscsi:0", unit=0, thin=True)],
              nics=[Nic(key=4000, network=net, mac="00:50:56:00:00:01", adapter="vmxnet3")])


def _inv(vms: list[Vm]) -> Inventory:
    return Inventory(vms=vms, provenance=Provenance(source="unit", kind="vcenter", collected_at=datetime.now(UTC)))


def test_facts_map_datastores_networks_and_placement() -> None:
    vms = [_vm("web-01"), _vm("db/01", net="pg-db", ds="ds2")]
    plan = build_run_plan(Plan(waves=[Wave(id=1, name="w1", vms=["uuid-web-01", "db/01"])]), _inv(vms), SITE)
    web, db = plan.vms
    assert web.facts["disks"][0]["target_datastore"] == "WorkloadDatastore"  # the target's default
    assert db.facts["disks"][0]["target_datastore"] == "vsan2"               # mapped
    assert [n["target_network"] for n in db.facts["nics"]] == ["seg-db"]
    assert db.facts["folder"] == "db_01" == target_folder("db/01")
    assert web.facts["placement"] == {"cluster": "Cluster-1", "folder": "Workloads", "resource_pool": None,
                                      "datastore": "WorkloadDatastore"}
    assert plan.waves[0].vms == ["uuid-web-01", "uuid-db/01"]  # names resolve to ids
    assert (web.source_host, web.datastores, web.target_cluster) == ("esx-1", ["ds1"], "Cluster-1")


def test_every_problem_is_listed_with_its_file_and_field() -> None:
    site = SiteConfig(source=SOURCE, target=TARGET.model_copy(update={"datastore": None}),
                      mappings=Mappings(networks={"pg-web": "seg-web"}))
    vms = [_vm("web-01", ds="ds9"), _vm("app-01", net="pg-app")]
    plan = Plan(waves=[Wave(id=1, name="w1", vms=["uuid-web-01", "uuid-app-01", "ghost"], method="teleport")])
    with pytest.raises(InputError) as err:
        build_run_plan(plan, _inv(vms), site, plan_file="p.yaml", site_file="s.yaml", waves=[1, 7])
    found = {(p.file, p.field) for p in err.value.problems}
    assert found == {("--waves", "7"), ("p.yaml", "waves[0].method"), ("p.yaml", "waves[0].vms[2]"),
                     ("s.yaml", "mappings.networks.pg-app"), ("s.yaml", "mappings.datastores.ds1"),
                     ("s.yaml", "mappings.datastores.ds9")}


def test_vms_of_one_name_cannot_both_go_to_the_target() -> None:
    """Two VMs named alike (two folders, or two vCenters): the target folder holds one; re-platformed ones may."""
    twin = _vm("web-01").model_copy(update={"id": "uuid-other-web-01", "folder": "dc/other"})
    vms = [_vm("web-01"), twin, _vm("db-01", net="pg-db")]
    with pytest.raises(InputError) as err:
        build_run_plan(Plan(waves=[Wave(id=1, name="w1", vms=["uuid-web-01", "uuid-db-01"]),
                                   Wave(id=2, name="w2", vms=["uuid-other-web-01"])]), _inv(vms), SITE)
    (problem,) = err.value.problems
    assert (problem.field, "uuid-web-01, uuid-other-web-01" in problem.message) == ("waves", True)
    with pytest.raises(InputError):   # a run of one wave: its twin would meet it on the target later
        build_run_plan(Plan(waves=[Wave(id=1, name="w1", vms=["uuid-web-01", "uuid-db-01"]),
                                   Wave(id=2, name="w2", vms=["uuid-other-web-01"])]), _inv(vms), SITE, waves=[1])
    replatformed = Plan(waves=[Wave(id=1, name="w1", vms=["uuid-web-01"]),
                               Wave(id=2, name="w2", vms=["uuid-other-web-01"], method="replatform")])
    assert len(build_run_plan(replatformed, _inv(vms), SITE, waves=[1]).vms) == 1


def test_cold_needs_a_target() -> None:
    with pytest.raises(InputError) as err:
        build_run_plan(Plan(waves=[Wave(id=1, name="w1", vms=["uuid-web-01"])]), _inv([_vm("web-01")]),
                       SiteConfig(source=SOURCE, mappings=SITE.mappings))
    assert ("site.yaml", "target") in {(p.file, p.field) for p in err.value.problems}


def test_target_file_keeps_the_file_name_in_the_vm_folder() -> None:
    assert target_file("[ds1] a/b/web-01-flat.vmdk", "vsan", "web-01") == "[vsan] web-01/web-01-flat.vmdk"


def test_config_spec_records_the_source_and_keeps_macs() -> None:
    spec = {"name": "web-01", "source_id": "uuid-1", "vm_path": "[vsan]", "cpus": 4, "cores_per_socket": 2,
            "memory_mb": 8192, "guest_id": "rhel8_64Guest", "firmware": "efi", "hardware_version": "vmx-19",
            "disks": [{"file": "[vsan] web-01/web-01.vmdk", "capacity_bytes": 2**30 + 1, "controller": "pvscsi:0",
                       "unit": 0, "thin": True},
                      {"file": "[vsan] web-01/web-01_1.vmdk", "capacity_bytes": 2**30, "controller": "lsilogic:1",
                       "unit": 0}],
            "nics": [{"mac": "00:50:56:aa:bb:cc", "adapter": "e1000e", "network": {
                "kind": "dvs", "name": "seg-web", "key": "dvportgroup-1", "switch_uuid": "50 1a"}},
                {"mac": None, "network": {"kind": "standard", "name": "VM Network", "moref": "network-1"}}]}
    config = config_spec(spec)
    assert config.instanceUuid == "uuid-1"
    assert [(o.key, o.value) for o in config.extraConfig] == [(SOURCE_KEY, "uuid-1")]
    devices = [c.device for c in config.deviceChange]
    controllers = [d for d in devices if isinstance(d, vim.vm.device.VirtualController)]
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    nics: list[Any] = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert [type(c).__name__ for c in controllers] == ["vim.vm.device.ParaVirtualSCSIController",
                                                       "vim.vm.device.VirtualLsiLogicController"]
    assert [d.controllerKey for d in disks] == [c.key for c in controllers]
    assert disks[0].capacityInKB == 2**20 + 1  # rounded up, never shrunk
    assert all(c.fileOperation is None for c in config.deviceChange)  # attach the copied files
    assert (nics[0].addressType, nics[0].macAddress) == ("manual", "00:50:56:aa:bb:cc")
    assert type(nics[0]).__name__ == "vim.vm.device.VirtualE1000e"
    assert nics[0].backing.port.portgroupKey == "dvportgroup-1"
    assert nics[1].addressType is None and nics[1].backing.deviceName == "VM Network"
