"""`migrate import rvtools`: an RVTools xlsx export read into the inventory format (both generations).

CSV exports, several vCenters merged, and the facts issue 19 asked for are in test_rvtools_estates.py."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from migrate.cli.import_cmd import import_group
from migrate.core.errors import InputError, Problem
from migrate.core.models.inventory import Inventory, Vm
from migrate.importers import import_rvtools
from migrate.inventory import load_inventory
from tests.unit.rvtools_fixture import (
    SDK_UUID,
    Generation,
    bios_uuid,
    delete_column,
    set_cell,
    vm_uuid,
    write_rvtools,
)

GIB = 2**30


def _import(tmp_path: Path, generation: Generation = "MiB") -> Inventory:
    return import_rvtools(write_rvtools(tmp_path / f"export-{generation}.xlsx", generation))


def _vm(inventory: Inventory, name: str) -> Vm:
    return next(vm for vm in inventory.vms if vm.name == name)


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(InputError) as caught:
        import_rvtools(path)
    return caught.value.problems


# --- a good export, field by field -------------------------------------------------------------------------

@pytest.mark.parametrize("generation", ["MiB", "MB"])
def test_vm_fields_from_vinfo(tmp_path: Path, generation: Generation) -> None:
    """A powered-on VM's vInfo columns land in the right fields, in both column generations."""
    inventory = _import(tmp_path, generation)
    assert [vm.name for vm in inventory.vms] == ["web-01", "web-02", "app-01", "db-01", "db-02", "dev-01", "dev-02",
                                                 "tpl-rhel9", "mon-01", "ldap-01"]
    web = _vm(inventory, "web-01")
    assert web.id == vm_uuid("web-01") == "50000001-1111-2222-3333-000000000001"
    assert web.moref == "vm-1001"
    assert web.bios_uuid == (bios_uuid("web-01") if generation == "MiB" else None)
    assert (web.cpus, web.memory_mb) == (2, 4096)
    assert (web.power_state, web.template) == ("poweredOn", False)
    assert (web.firmware, web.hardware_version) == ("bios", "vmx-19")
    assert web.annotation == "Web front end"
    assert web.change_version == "2024-05-02T10:00:00.000001Z"
    assert (web.datacenter, web.cluster, web.host) == ("dc-east", "cl-prod", "esx-01.corp.local")
    assert (web.folder, web.resource_pool, web.vapp) == ("dc-east/vm/prod", "Resources/prod", None)
    assert web.guest.hostname == "web-01.corp.local"
    assert web.guest.full_name == "Ubuntu 22.04.3 LTS"
    assert web.guest.ip_addresses == ["10.10.1.11"]
    assert web.tags == {}


@pytest.mark.parametrize("generation", ["MiB", "MB"])
def test_power_states_and_template(tmp_path: Path, generation: Generation) -> None:
    """Powered-off, suspended and template VMs keep their state; an off VM falls back to the configured OS."""
    inventory = _import(tmp_path, generation)
    off, suspended, template = (_vm(inventory, n) for n in ("dev-01", "dev-02", "tpl-rhel9"))
    assert (off.power_state, off.template, off.firmware, off.hardware_version) == ("poweredOff", False, "efi", "vmx-17")
    assert off.guest.full_name == "Microsoft Windows Server 2022 (64-bit)"
    assert off.guest.hostname is None and off.guest.ip_addresses == []
    assert suspended.power_state == "suspended"
    assert (template.power_state, template.template) == ("poweredOff", True)
    assert [vm.template for vm in inventory.vms].count(True) == 1


@pytest.mark.parametrize("generation", ["MiB", "MB"])
def test_two_disks_on_two_datastores(tmp_path: Path, generation: Generation) -> None:
    """app-01's two disks keep size (MiB x 2**20), datastore, path, provisioning, controller and unit."""
    first, second = _vm(_import(tmp_path, generation), "app-01").disks
    assert (first.label, first.capacity_bytes, first.datastore, first.path) == (
        "Hard disk 1", 60 * GIB, "ds-prod-01", "app-01/app-01.vmdk")
    assert (second.label, second.capacity_bytes, second.datastore, second.path) == (
        "Hard disk 2", 200 * GIB, "ds-prod-02", "app-01/app-01_1.vmdk")
    assert (first.thin, second.thin) == (True, False)
    assert (first.mode, first.sharing, first.rdm) == ("persistent", "sharingNone", None)
    assert (first.controller, first.unit, second.controller, second.unit) == ("scsi:0", 0, "scsi:0", 1)
    assert (first.key, second.key) == ((2000, 2001) if generation == "MiB" else (0, 1))


@pytest.mark.parametrize("generation", ["MiB", "MB"])
def test_multi_writer_disk_shared_by_two_vms(tmp_path: Path, generation: Generation) -> None:
    """The quorum disk appears on db-01 and db-02 with the same file and multi-writer sharing."""
    inventory = _import(tmp_path, generation)
    shared = [(vm.name, d) for vm in inventory.vms for d in vm.disks if d.sharing == "sharingMultiWriter"]
    assert [name for name, _ in shared] == ["db-01", "db-02"]
    for _, disk in shared:
        assert (disk.datastore, disk.path, disk.capacity_bytes) == ("ds-prod-02", "shared/quorum.vmdk", 500 * GIB)
        assert (disk.mode, disk.controller, disk.thin) == ("independent_persistent", "scsi:1", False)


@pytest.mark.parametrize("generation", ["MiB", "MB"])
def test_rdm_disk(tmp_path: Path, generation: Generation) -> None:
    """A physical-mode RDM is marked rdm=physical, with its mapping file (not the LUN device) as the path."""
    disks = _vm(_import(tmp_path, generation), "db-01").disks
    assert [d.rdm for d in disks] == [None, None, "physical"]
    rdm = disks[2]
    assert (rdm.label, rdm.capacity_bytes, rdm.controller) == ("Hard disk 3", 1024 * GIB, "scsi:2")
    assert (rdm.datastore, rdm.path) == ("ds-prod-02", "db-01/db-01_rdm.vmdk")


@pytest.mark.parametrize("generation", ["MiB", "MB"])
def test_vm_with_two_nics(tmp_path: Path, generation: Generation) -> None:
    """app-01's two NICs keep label, MAC (lower case), adapter, port group and connection; IPs go to the guest."""
    inventory = _import(tmp_path, generation)
    vm = _vm(inventory, "app-01")
    assert [(n.key, n.label, n.mac, n.adapter, n.network, n.connected) for n in vm.nics] == [
        (0, "Network adapter 1", "00:50:56:aa:03:01", "vmxnet3", "pg-app", True),
        (1, "Network adapter 2", "00:50:56:aa:03:02", "vmxnet3", "pg-backup", False),
    ]
    ipv6 = ["fe80::250:56ff:feaa:301"] if generation == "MiB" else []  # only the newer export has the column
    assert vm.guest.ip_addresses == ["10.10.2.21", *ipv6, "10.10.9.21"]
    dev = _vm(inventory, "dev-01")
    assert [(n.adapter, n.network, n.connected) for n in dev.nics] == [("e1000e", "pg-dev", False)]


@pytest.mark.parametrize("generation", ["MiB", "MB"])
def test_custom_attributes(tmp_path: Path, generation: Generation) -> None:
    """Columns between "Annotation" and "Datacenter" are custom attributes; empty cells are left out."""
    inventory = _import(tmp_path, generation)
    assert inventory.custom_attribute_names == ["backup policy", "cost center", "owner"]
    assert _vm(inventory, "web-01").custom_attributes == {"owner": "alice", "cost center": "CC-100"}
    assert _vm(inventory, "app-01").custom_attributes == {"owner": "bob", "backup policy": "gold"}
    assert _vm(inventory, "mon-01").custom_attributes == {}


def test_hosts_from_vhost(tmp_path: Path) -> None:
    """vHost rows become hosts: moref id, cores, MHz, memory (MiB x 2**20), maintenance mode, version."""
    hosts = _import(tmp_path).hosts
    assert [h.name for h in hosts] == ["esx-01.corp.local", "esx-02.corp.local", "esx-03.corp.local",
                                       "esx-04.corp.local"]
    first, last = hosts[0], hosts[3]
    assert (first.id, first.cluster, first.datacenter) == ("host-101", "cl-prod", "dc-east")
    assert (first.cpu_cores, first.cpu_mhz, first.memory_bytes) == (64, 2000, 1024 * GIB)
    assert (first.maintenance_mode, first.version) == (False, "VMware ESXi 8.0.2 build-22380479")
    assert (last.id, last.cluster, last.maintenance_mode) == ("host-104", "cl-dev", True)


def test_hosts_from_older_vhost(tmp_path: Path) -> None:
    """Without "# Cores" and "Object ID", cores are sockets x cores per socket and the id is the name."""
    host = _import(tmp_path, "MB").hosts[0]
    assert (host.id, host.cpu_cores, host.memory_bytes) == ("esx-01.corp.local", 64, 1024 * GIB)


def test_clusters_from_vcluster(tmp_path: Path) -> None:
    """vCluster rows become clusters with HA/DRS flags, their hosts from vHost and their datacenter."""
    prod, dev = _import(tmp_path).clusters
    assert (prod.id, prod.name, prod.datacenter) == ("domain-c201", "cl-prod", "dc-east")
    assert prod.hosts == ["esx-01.corp.local", "esx-02.corp.local"]
    assert (prod.ha_enabled, prod.drs_enabled) == (True, True)
    assert (dev.id, dev.hosts, dev.ha_enabled, dev.drs_enabled) == (
        "domain-c202", ["esx-03.corp.local", "esx-04.corp.local"], False, True)


def test_datastores_networks_vapps_folders(tmp_path: Path) -> None:
    """Datastores from vDatastore, port groups from vNetwork (vDS ones from dvSwitch), vApps, folders, pools."""
    inventory = _import(tmp_path)
    ds = {d.name: d for d in inventory.datastores}
    assert list(ds) == ["ds-prod-01", "ds-prod-02", "ds-dev-01"]
    assert (ds["ds-prod-01"].id, ds["ds-prod-01"].type) == ("datastore-301", "VMFS")
    assert (ds["ds-prod-01"].capacity_bytes, ds["ds-prod-01"].free_bytes) == (4096 * GIB, 1024 * GIB)
    assert (ds["ds-dev-01"].type, ds["ds-dev-01"].url) == ("NFS", "ds:///vmfs/volumes/datastore-303/")
    assert [(n.name, n.kind, n.switch) for n in inventory.networks] == [
        ("pg-app", "distributed", "dvs-prod"), ("pg-backup", "distributed", "dvs-prod"),
        ("pg-db", "distributed", "dvs-prod"), ("pg-dev", "standard", "vSwitch0"),
        ("pg-web", "distributed", "dvs-prod")]
    assert [(a.name, a.vms) for a in inventory.vapps] == [("payments", [vm_uuid("app-01"), vm_uuid("db-01")])]
    assert inventory.folders == ["dc-east/vm/app", "dc-east/vm/dev", "dc-east/vm/prod"]
    assert inventory.resource_pools == ["Resources/dev", "Resources/prod"]


def test_provenance(tmp_path: Path) -> None:
    """Provenance: kind rvtools, the file name, the file's mtime in UTC, the vCenter's UUID and API version."""
    path = write_rvtools(tmp_path / "estate.xlsx")
    os.utime(path, (1714983300, 1714983300))
    provenance = import_rvtools(path).provenance
    assert (provenance.kind, provenance.source) == ("rvtools", "estate.xlsx")
    assert provenance.collected_at == datetime(2024, 5, 6, 8, 15, tzinfo=UTC)
    assert (provenance.instance_uuid, provenance.api_version) == (SDK_UUID, "8.0.2.0")


def test_optional_sheets_absent(tmp_path: Path) -> None:
    """Without vHost, vCluster and vDatastore the import works; clusters and datastores come from the VMs."""
    def drop(wb: Workbook) -> None:
        for name in ("vHost", "vCluster", "vDatastore", "dvSwitch"):
            del wb[name]

    inventory = import_rvtools(write_rvtools(tmp_path / "slim.xlsx", edit=drop))
    assert inventory.hosts == []
    assert [(c.id, c.name, c.datacenter, c.hosts) for c in inventory.clusters] == [
        ("cl-dev", "cl-dev", "dc-east", []), ("cl-prod", "cl-prod", "dc-east", [])]
    assert [(d.id, d.capacity_bytes) for d in inventory.datastores] == [
        ("ds-dev-01", None), ("ds-prod-01", None), ("ds-prod-02", None)]
    assert {n.kind for n in inventory.networks} == {"standard"}


def test_names_join_when_vm_uuid_is_absent(tmp_path: Path) -> None:
    """The older export has no "VM UUID" in vDisk/vNetwork: disks and NICs still reach the right VMs by name."""
    inventory = _import(tmp_path, "MB")
    assert [len(vm.disks) for vm in inventory.vms] == [1, 1, 2, 3, 2, 1, 1, 1, 1, 1]
    assert [len(vm.nics) for vm in inventory.vms] == [1, 1, 2, 1, 1, 1, 1, 1, 1, 1]
    assert _vm(inventory, "db-02").disks[0].path == "db-02/db-02.vmdk"


def test_vm_uuid_joins_despite_duplicate_names(tmp_path: Path) -> None:
    """Two VMs of the same name stay apart when vDisk and vNetwork carry "VM UUID"."""
    def rename(wb: Workbook) -> None:
        for sheet in ("vInfo", "vDisk", "vNetwork"):
            set_cell(wb, sheet, "VM", "web-01", VM="web-02")

    inventory = import_rvtools(write_rvtools(tmp_path / "dupes.xlsx", edit=rename))
    twins = [vm for vm in inventory.vms if vm.name == "web-01"]
    assert [vm.id for vm in twins] == [vm_uuid("web-01"), vm_uuid("web-02")]
    assert [vm.disks[0].path for vm in twins] == ["web-01/web-01.vmdk", "web-02/web-02-000001.vmdk"]
    assert [vm.nics[0].mac for vm in twins] == ["00:50:56:aa:01:01", "00:50:56:aa:02:01"]


def test_inventory_round_trips_through_inventory_json(tmp_path: Path) -> None:
    """What the importer builds saves and loads back unchanged through the inventory.json format."""
    inventory = _import(tmp_path)
    out = tmp_path / "inventory.json"
    result = CliRunner().invoke(import_group, ["rvtools", str(tmp_path / "export-MiB.xlsx"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    loaded = load_inventory(out)
    assert loaded.vms == inventory.vms
    assert loaded.model_dump(exclude={"provenance"}) == inventory.model_dump(exclude={"provenance"})


# --- bad input: every problem named by file, sheet, row and column -------------------------------------------

def test_missing_required_sheets_are_named(tmp_path: Path) -> None:
    """Missing vDisk and vNetwork: one InputError naming the file and both sheets."""
    def drop(wb: Workbook) -> None:
        del wb["vDisk"]
        del wb["vNetwork"]

    path = write_rvtools(tmp_path / "partial.xlsx", edit=drop)
    assert _problems(path) == [Problem(str(path), 'sheet "vDisk"', "required sheet is missing"),
                               Problem(str(path), 'sheet "vNetwork"', "required sheet is missing")]


def test_missing_required_columns_are_named(tmp_path: Path) -> None:
    """Missing "CPUs" in vInfo and the capacity column in vDisk: both named with their sheet."""
    def drop(wb: Workbook) -> None:
        delete_column(wb, "vInfo", "CPUs")
        delete_column(wb, "vDisk", "Capacity MiB")

    path = write_rvtools(tmp_path / "cols.xlsx", edit=drop)
    problems = _problems(path)
    assert [(p.field, p.message) for p in problems] == [
        ('vInfo, column "CPUs"', "required column is missing"),
        ('vDisk, column "Capacity MiB"', "required column is missing (nor 'Capacity MB')"),
    ]
    assert {p.file for p in problems} == {str(path)}


def test_bad_cell_values_are_all_listed(tmp_path: Path) -> None:
    """Several bad cells across sheets: each one reported with sheet, row and column, none dropped."""
    rows: dict[str, int] = {}

    def spoil(wb: Workbook) -> None:
        rows["cpus"] = set_cell(wb, "vInfo", "CPUs", "abc", VM="web-02")
        rows["memory"] = set_cell(wb, "vInfo", "Memory", -512, VM="app-01")
        rows["power"] = set_cell(wb, "vInfo", "Powerstate", "on", VM="db-01")
        rows["template"] = set_cell(wb, "vInfo", "Template", "maybe", VM="mon-01")
        rows["capacity"] = set_cell(wb, "vDisk", "Capacity MiB", "big", VM="app-01", Disk="Hard disk 2")
        rows["ip"] = set_cell(wb, "vNetwork", "IPv4 Address", "10.10.1.999", VM="web-01")
        rows["speed"] = set_cell(wb, "vHost", "Speed", "fast", Host="esx-02.corp.local")

    path = write_rvtools(tmp_path / "bad.xlsx", edit=spoil)
    assert [(p.field, p.message) for p in _problems(path)] == [
        (f'vInfo row {rows["cpus"]}, column "CPUs"', "not a whole number: 'abc'"),
        (f'vInfo row {rows["memory"]}, column "Memory"', "must be at least 0, got -512"),
        (f'vInfo row {rows["power"]}, column "Powerstate"', "must be poweredOn, poweredOff or suspended, got 'on'"),
        (f'vInfo row {rows["template"]}, column "Template"', "not true or false: 'maybe'"),
        (f'vDisk row {rows["capacity"]}, column "Capacity MiB"', "not a number: 'big'"),
        (f'vNetwork row {rows["ip"]}, column "IPv4 Address"', "not an IP address: '10.10.1.999'"),
        (f'vHost row {rows["speed"]}, column "Speed"', 'not a whole number: \'fast\''),
    ]
    assert rows["cpus"] == 3  # web-02 is the second VM: header row 1, web-01 row 2


def test_ambiguous_vm_name_is_a_problem(tmp_path: Path) -> None:
    """Without "VM UUID" in vDisk, a disk whose VM name two vInfo rows share cannot be placed: a problem."""
    def twin(wb: Workbook) -> None:
        set_cell(wb, "vInfo", "VM", "web-01", VM="web-02")

    path = write_rvtools(tmp_path / "twins.xlsx", "MB", edit=twin)
    problems = [p for p in _problems(path) if p.field.startswith("vDisk")]
    assert [(p.field, p.message) for p in problems] == [
        ('vDisk row 2, column "VM"', "VM name 'web-01' is ambiguous (vInfo rows 2, 3); "
                                     'export with the "VM UUID" column to tell them apart'),
        ('vDisk row 3, column "VM"', "no VM named 'web-02' in vInfo"),
    ]


def test_duplicate_vm_uuid_and_unknown_vm(tmp_path: Path) -> None:
    """A VM UUID used twice in vInfo and a NIC of a VM vInfo lacks are reported, and every row of the dropped VM."""
    def spoil(wb: Workbook) -> None:
        set_cell(wb, "vInfo", "VM UUID", vm_uuid("web-01"), VM="web-02")
        set_cell(wb, "vNetwork", "VM UUID", "50000099-0000-0000-0000-000000000099", VM="ldap-01")

    path = write_rvtools(tmp_path / "dup.xlsx", edit=spoil)
    nic_row = 12  # ldap-01's NIC: after 1 header and 10 rows of NICs of the other VMs (app-01 has two)
    lost = f"no VM with UUID '{vm_uuid('web-02')}' in vInfo"
    assert [(p.field, p.message) for p in _problems(path)] == [
        ('vInfo row 3, column "VM UUID"', f"duplicate VM id '{vm_uuid('web-01')}' (also in row 2)"),
        ('vDisk row 3, column "VM UUID"', lost),
        ('vNetwork row 3, column "VM UUID"', lost),
        (f'vNetwork row {nic_row}, column "VM UUID"',
         "no VM with UUID '50000099-0000-0000-0000-000000000099' in vInfo"),
        ('vCPU row 3, column "VM UUID"', lost),
        ('vMemory row 3, column "VM UUID"', lost),
        ('vSnapshot row 2, column "VM UUID"', lost),  # web-02 has the first snapshot row
        ('vTools row 3, column "VM UUID"', lost),
    ]


def test_rdm_without_mode_is_a_problem(tmp_path: Path) -> None:
    """A disk marked Raw whose compatibility mode is empty cannot be described: a problem on that cell."""
    rows: list[int] = []

    def spoil(wb: Workbook) -> None:
        rows.append(set_cell(wb, "vDisk", "Raw Comp. Mode", None, VM="db-01", Disk="Hard disk 3"))

    path = write_rvtools(tmp_path / "rdm.xlsx", edit=spoil)
    assert [(p.field, p.message) for p in _problems(path)] == [
        (f'vDisk row {rows[0]}, column "Raw Comp. Mode"',
         "empty, but the disk is a raw device mapping (Raw is true): physicalMode or virtualMode expected")]


def test_not_an_xlsx_file(tmp_path: Path) -> None:
    """A CSV not named like an RVTools tab, or garbage named .xlsx, is bad input naming the file, not a crash."""
    csv = tmp_path / "export.csv"
    csv.write_text("VM,CPUs\nweb-01,2\n")
    fake = tmp_path / "fake.xlsx"
    fake.write_text("this is not a zip file")
    for path, start in ((csv, "not an RVTools tab CSV"), (fake, "not an xlsx workbook")):
        (problem,) = _problems(path)
        assert problem.file == str(path)
        assert problem.message.startswith(start)


def test_missing_file(tmp_path: Path) -> None:
    """A path that does not exist is bad input."""
    assert _problems(tmp_path / "absent.xlsx") == [Problem(str(tmp_path / "absent.xlsx"), "", "no such file")]


def test_empty_workbook_lists_every_required_sheet(tmp_path: Path) -> None:
    """An xlsx with none of the RVTools sheets names all three required ones."""
    wb = Workbook()
    wb.active.title = "Sheet1"
    path = tmp_path / "empty.xlsx"
    wb.save(path)
    assert [p.field for p in _problems(path)] == ['sheet "vInfo"', 'sheet "vDisk"', 'sheet "vNetwork"']


# --- the CLI command ---------------------------------------------------------------------------------------

def test_cli_writes_inventory_and_prints_summary(tmp_path: Path) -> None:
    """`import rvtools FILE --out PATH` exits 0, writes a loadable inventory and summarises it."""
    export = write_rvtools(tmp_path / "estate.xlsx")
    out = tmp_path / "out" / "inventory.json"
    result = CliRunner().invoke(import_group, ["rvtools", str(export), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(load_inventory(out).vms) == 10
    assert "9 (7 powered on, 1 powered off, 1 suspended) and 1 template(s)" in result.stdout
    assert "disks       14 on 3 datastore(s)" in result.stdout
    assert "NICs        11 on 5 network(s)" in result.stdout
    assert "hosts       4 in 2 cluster(s)" in result.stdout
    # vCPU/memory over the 9 VMs; storage counts the shared quorum disk once: 2824 GiB - 500 GiB
    assert "total       30 vCPU, 89.0 GiB memory, 2324.0 GiB storage" in result.stdout
    assert f"Written to {out}" in result.stdout


def test_cli_json_output(tmp_path: Path) -> None:
    """With --json the summary is one JSON object on stdout."""
    export = write_rvtools(tmp_path / "estate.xlsx", "MB")
    out = tmp_path / "inventory.json"
    result = CliRunner().invoke(import_group, ["rvtools", str(export), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body == {"output": str(out), "source": "estate.xlsx", "vcenters": 1, "vms": 9, "templates": 1,
                    "powered_on": 7, "powered_off": 1, "suspended": 1, "disks": 14, "nics": 11, "hosts": 4,
                    "clusters": 2, "datastores": 3, "networks": 5, "vcpus": 30, "memory_gib": 89.0,
                    "storage_gib": 2324.0}


def test_cli_bad_input_exit_2_and_nothing_written(tmp_path: Path) -> None:
    """Bad cells give exit 2 with every problem on stderr; a fresh output is not created, an old one not touched."""
    def spoil(wb: Workbook) -> None:
        set_cell(wb, "vInfo", "CPUs", "abc", VM="web-01")
        set_cell(wb, "vInfo", "Memory", -1, VM="web-02")

    export = write_rvtools(tmp_path / "bad.xlsx", edit=spoil)
    fresh = tmp_path / "fresh.json"
    result = CliRunner().invoke(import_group, ["rvtools", str(export), "--out", str(fresh)])
    assert result.exit_code == 2
    assert "2 problem(s)" in result.stderr
    assert f'{export}: vInfo row 2, column "CPUs": not a whole number' in result.stderr
    assert f'{export}: vInfo row 3, column "Memory": must be at least 0' in result.stderr
    assert "Traceback" not in result.output
    assert not fresh.exists()
    old = tmp_path / "old.json"
    old.write_text("previous inventory\n")
    assert CliRunner().invoke(import_group, ["rvtools", str(export), "--out", str(old)]).exit_code == 2
    assert old.read_text() == "previous inventory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xlsx", "old.json"]


def test_cli_not_xlsx_exit_2_json(tmp_path: Path) -> None:
    """A file that is not an xlsx: exit 2, and with --json the problem comes as JSON on stdout."""
    bogus = tmp_path / "inventory.xlsx"
    bogus.write_bytes(b"\x00\x01 not a workbook")
    result = CliRunner().invoke(import_group, ["rvtools", str(bogus), "--out", str(tmp_path / "i.json"), "--json"])
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    assert body["error"] == "InputError"
    assert body["problems"][0]["file"] == str(bogus)
    assert not (tmp_path / "i.json").exists()


def test_cli_requires_out(tmp_path: Path) -> None:
    """--out is required: click's usage error, exit 2."""
    result = CliRunner().invoke(import_group, ["rvtools", str(write_rvtools(tmp_path / "e.xlsx"))])
    assert result.exit_code == 2
    assert "--out" in result.stderr


def test_row_numbers_match_excel(tmp_path: Path) -> None:
    """Problems name the row as Excel shows it, also past blank rows."""
    def spoil(wb: Workbook) -> None:
        wb["vInfo"].insert_rows(5, amount=2)  # two blank rows before the 4th VM

    path = write_rvtools(tmp_path / "gaps.xlsx", edit=spoil)
    assert len(import_rvtools(path).vms) == 10

    def spoil_more(wb: Workbook) -> None:
        spoil(wb)
        set_cell(wb, "vInfo", "CPUs", "x", VM="db-01")

    path = write_rvtools(tmp_path / "gaps2.xlsx", edit=spoil_more)
    (problem,) = _problems(path)
    assert problem.field == 'vInfo row 7, column "CPUs"'
