"""RVTools fidelity (issue 19): 3.x and 4.x exports, as xlsx and as per-tab CSV files, several vCenters merged."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from migrate.cli.import_cmd import import_group
from migrate.core.errors import InputError, Problem
from migrate.core.models.inventory import Inventory, Vm
from migrate.importers import import_rvtools
from migrate.inventory import load_inventory
from tests.unit.rvtools_fixture import (
    SDK_SERVER,
    SDK_UUID,
    VC_B,
    Generation,
    set_cell,
    uuid_of,
    vm_uuid,
    write_csv,
    write_rvtools,
)

Format = Literal["xlsx", "csv"]
EXPORTS = [pytest.param(g, f, id=f"{'4.x' if g == 'MiB' else '3.x'}-{f}")
           for g in ("MiB", "MB") for f in ("xlsx", "csv")]


def _write(tmp_path: Path, generation: Generation, fmt: Format, name: str = "a", **kw: object) -> Path:
    if fmt == "xlsx":
        return write_rvtools(tmp_path / f"{name}.xlsx", generation, **kw)  # type: ignore[arg-type]
    return write_csv(tmp_path / name, generation, **kw)  # type: ignore[arg-type]


def _vm(inventory: Inventory, name: str, source: str | None = None) -> Vm:
    return next(vm for vm in inventory.vms if vm.name == name and (source is None or vm.source == source))


def _problems(*paths: Path) -> list[Problem]:
    with pytest.raises(InputError) as caught:
        import_rvtools(*paths)
    return caught.value.problems


# --- the facts, per version and format ------------------------------------------------------------------

@pytest.mark.parametrize(("generation", "fmt"), EXPORTS)
def test_disk_paths_are_vmdk_paths(tmp_path: Path, generation: Generation, fmt: Format) -> None:
    """Every disk's path is its VMDK on its datastore, never the guest's mount points (4.x "Disk Path")."""
    inventory = import_rvtools(_write(tmp_path, generation, fmt))
    assert [(d.datastore, d.path) for d in _vm(inventory, "app-01").disks] == [
        ("ds-prod-01", "app-01/app-01.vmdk"), ("ds-prod-02", "app-01/app-01_1.vmdk")]
    assert [(d.datastore, d.path, d.rdm) for d in _vm(inventory, "db-01").disks] == [
        ("ds-prod-01", "db-01/db-01.vmdk", None), ("ds-prod-02", "shared/quorum.vmdk", None),
        ("ds-prod-02", "db-01/db-01_rdm.vmdk", "physical")]
    assert all(d.path.endswith(".vmdk") and d.datastore for vm in inventory.vms for d in vm.disks)


@pytest.mark.parametrize(("generation", "fmt"), EXPORTS)
def test_snapshot_deltas_and_snapshots(tmp_path: Path, generation: Generation, fmt: Format) -> None:
    """A -00000N.vmdk disk flags the VM as running on a snapshot; vSnapshot gives the count and the oldest."""
    inventory = import_rvtools(_write(tmp_path, generation, fmt))
    on_snapshot = {vm.name for vm in inventory.vms if vm.running_on_snapshot}
    assert on_snapshot == {"web-02", "mon-01"}
    assert _vm(inventory, "web-02").disks[0].path == "web-02/web-02-000001.vmdk"
    assert (_vm(inventory, "mon-01").consolidation_needed, _vm(inventory, "mon-01").snapshots) == (True, 0)
    assert _vm(inventory, "web-01").consolidation_needed is False
    web, app = _vm(inventory, "web-02"), _vm(inventory, "app-01")
    assert (web.snapshots, web.oldest_snapshot) == (1, datetime(2024, 4, 2, 22, 0, 5, tzinfo=UTC))
    assert (app.snapshots, app.oldest_snapshot) == (2, datetime(2024, 1, 15, 9, 0, tzinfo=UTC))
    assert (app.running_on_snapshot, _vm(inventory, "web-01").oldest_snapshot) == (False, None)


@pytest.mark.parametrize(("generation", "fmt"), EXPORTS)
def test_folder_recovered_from_other_sheets(tmp_path: Path, generation: Generation, fmt: Format) -> None:
    """ldap-01's vInfo "Folder" is empty in 4.x ("Folder ID" set): its vDisk/vNetwork rows give it back."""
    inventory = import_rvtools(_write(tmp_path, generation, fmt))
    assert _vm(inventory, "ldap-01").folder == "dc-east/vm/prod"
    assert inventory.folders == ["dc-east/vm/app", "dc-east/vm/dev", "dc-east/vm/prod"]


@pytest.mark.parametrize(("generation", "fmt"), EXPORTS)
def test_cbt_primary_ip_and_source_vcenter(tmp_path: Path, generation: Generation, fmt: Format) -> None:
    """vInfo "CBT", "Primary IP Address" and the VM's vCenter ("VI SDK Server"/"VI SDK UUID") are kept."""
    inventory = import_rvtools(_write(tmp_path, generation, fmt))
    web, dev = _vm(inventory, "web-01"), _vm(inventory, "dev-01")
    assert (web.change_tracking, dev.change_tracking) == (True, False)
    assert {(vm.source, vm.source_instance_uuid) for vm in inventory.vms} == {(SDK_SERVER, SDK_UUID)}
    assert (web.id, web.instance_uuid) == (vm_uuid("web-01"), None)
    assert _vm(inventory, "app-01").guest.ip_addresses[0] == "10.10.2.21"
    assert (web.min_evc_mode, web.fault_tolerance_state) == ("intel-broadwell", "notConfigured")
    secure = (True, False) if generation == "MiB" else (None, None)  # 3.x has no "EFI Secure boot"
    assert (_vm(inventory, "app-01").secure_boot, web.secure_boot) == secure


@pytest.mark.parametrize(("generation", "fmt"), EXPORTS)
def test_cpu_memory_and_tools_facts(tmp_path: Path, generation: Generation, fmt: Format) -> None:
    """vCPU (cores per socket, hot add/remove), vMemory (hot add) and vTools (status, version) reach the VM."""
    inventory = import_rvtools(_write(tmp_path, generation, fmt))
    db1, db2, web, dev = (_vm(inventory, n) for n in ("db-01", "db-02", "web-01", "dev-01"))
    assert (db1.cpu_hot_add, db1.cpu_hot_remove, db1.memory_hot_add) == (True, False, True)
    assert (db2.cpu_hot_add, db2.memory_hot_add, web.cpu_hot_add) == (True, False, False)
    assert (db1.cores_per_socket, web.cores_per_socket) == (2, 1)
    assert (web.guest.tools_status, web.guest.tools_version) == ("toolsOk", "12352")
    assert dev.guest.tools_status == "toolsNotRunning"


@pytest.mark.parametrize(("generation", "fmt"), EXPORTS)
def test_host_facts(tmp_path: Path, generation: Generation, fmt: Format) -> None:
    """vHost: CPU model, threads (cores x 2 with hyperthreading active), EVC modes (4.x only)."""
    host = import_rvtools(_write(tmp_path, generation, fmt)).hosts[0]
    assert (host.cpu_cores, host.cpu_threads, host.cpu_model) == (64, 128, "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz")
    expected = ("intel-icelake", "intel-icelake") if generation == "MiB" else (None, None)
    assert (host.evc_mode, host.max_evc_mode) == expected


@pytest.mark.parametrize("generation", ["MiB", "MB"])
def test_csv_and_xlsx_give_the_same_inventory(tmp_path: Path, generation: Generation) -> None:
    """The same export as a workbook and as tab CSV files (thousands separators, True/False) reads the same."""
    book = import_rvtools(_write(tmp_path, generation, "xlsx"))
    tabs = import_rvtools(_write(tmp_path, generation, "csv"))
    assert tabs.model_dump(exclude={"provenance"}) == book.model_dump(exclude={"provenance"})
    assert (tabs.provenance.source, book.provenance.source) == ("a", "a.xlsx")


def test_csv_files_given_one_by_one(tmp_path: Path) -> None:
    """Tab CSV files named on the command line (not their directory) form one export."""
    directory = write_csv(tmp_path / "export")
    inventory = import_rvtools(*sorted(directory.glob("RVTools_tab*.csv")))
    assert len(inventory.vms) == 10


def test_csv_with_semicolons_and_windows_encoding(tmp_path: Path) -> None:
    """A CSV export written with ";" (locales with a decimal comma) in Windows-1252 reads too."""
    directory = write_csv(tmp_path / "export", edit=lambda wb: set_cell(wb, "vInfo", "Annotation", "Café",
                                                                        VM="web-01"))
    for path in directory.glob("*.csv"):
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
        with path.open("w", newline="", encoding="cp1252") as out:
            csv.writer(out, delimiter=";").writerows(rows)
    inventory = import_rvtools(directory)
    assert _vm(inventory, "web-01").annotation == "Café"
    assert _vm(inventory, "db-01").memory_mb == 32768


def test_vmdk_in_disk_path_column(tmp_path: Path) -> None:
    """An export that writes the VMDK into "Disk Path" and the RDM device into "Path" still gives VMDK paths."""
    def swap(wb: Workbook) -> None:
        ws = wb["vDisk"]
        headers = [c.value for c in ws[1]]
        disk_path, path = headers.index("Disk Path") + 1, headers.index("Path") + 1
        for number in range(2, ws.max_row + 1):
            vmdk = ws.cell(number, path).value
            raw = ws.cell(number, headers.index("Raw") + 1).value
            ws.cell(number, disk_path).value = vmdk
            ws.cell(number, path).value = "/vmfs/devices/disks/naa.600c0ff000" if raw else None

    inventory = import_rvtools(write_rvtools(tmp_path / "swapped.xlsx", edit=swap))
    assert [d.path for d in _vm(inventory, "db-01").disks] == [
        "db-01/db-01.vmdk", "shared/quorum.vmdk", "db-01/db-01_rdm.vmdk"]


# --- two vCenters merged ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("generation", "fmt"), EXPORTS)
def test_two_vcenters_merged(tmp_path: Path, generation: Generation, fmt: Format) -> None:
    """Two exports of two vCenters: every VM keeps its vCenter; the instanceUuid both hold gets qualified ids."""
    a = _write(tmp_path, generation, fmt, "a")
    b = _write(tmp_path, generation, fmt, "b", vc=VC_B)
    inventory = import_rvtools(a, b)
    assert len(inventory.vms) == 13
    copy_a, copy_b = _vm(inventory, "web-01", SDK_SERVER), _vm(inventory, "web-01", VC_B.server)
    uuid = vm_uuid("web-01")
    assert (copy_a.id, copy_a.instance_uuid) == (f"{SDK_UUID}:{uuid}", uuid)
    assert (copy_b.id, copy_b.instance_uuid, copy_b.source_instance_uuid) == (f"{VC_B.uuid}:{uuid}", uuid, VC_B.uuid)
    erp = _vm(inventory, "erp-01")
    assert (erp.id, erp.instance_uuid, erp.source, erp.folder) == (uuid_of(101), None, VC_B.server, "dc-west/vm/erp")
    assert _vm(inventory, "web-02").id == vm_uuid("web-02")
    assert len({vm.id for vm in inventory.vms}) == 13
    # morefs both vCenters use are qualified; the rest keep their ids
    if generation == "MiB":  # 3.x has no "Object ID": hosts go by name, and the names collide instead
        assert sorted(h.id for h in inventory.hosts) == [
            f"{SDK_UUID}:host-101", f"{SDK_UUID}:host-102", f"{VC_B.uuid}:host-101", f"{VC_B.uuid}:host-102",
            "host-103", "host-104"]
    assert len({h.id for h in inventory.hosts}) == len(inventory.hosts) == 6
    assert sorted(c.name for c in inventory.clusters) == ["cl-dev", "cl-prod", "cl-west"]
    assert len({d.id for d in inventory.datastores}) == len(inventory.datastores) == 4
    assert inventory.provenance.instance_uuid is None
    assert inventory.provenance.source == f"{a.name}, {b.name}"


def test_merge_does_not_depend_on_file_order(tmp_path: Path) -> None:
    """The ids come from the set of VMs read, not from which file came first."""
    a, b = write_rvtools(tmp_path / "a.xlsx"), write_csv(tmp_path / "b", vc=VC_B)
    forward, backward = import_rvtools(a, b), import_rvtools(b, a)
    assert sorted(vm.id for vm in forward.vms) == sorted(vm.id for vm in backward.vms)


def test_same_vcenter_twice_is_a_problem(tmp_path: Path) -> None:
    """The same vCenter's export given twice: every VM of the second is a duplicate, named with both files."""
    a = write_rvtools(tmp_path / "a.xlsx")
    again = write_csv(tmp_path / "again")
    problems = _problems(a, again)
    assert len(problems) == 10
    assert problems[0] == Problem(str(again / "RVTools_tabvInfo.csv"), 'vInfo row 2, column "VM UUID"',
                                  f"duplicate VM id '{vm_uuid('web-01')}' of vCenter {SDK_UUID} (also in {a} row 2): "
                                  "the same vCenter exported twice?")


def test_cli_two_vcenters(tmp_path: Path) -> None:
    """`migrate import rvtools A.xlsx Bdir --out I` writes one inventory of both and counts the vCenters."""
    a, b = write_rvtools(tmp_path / "a.xlsx"), write_csv(tmp_path / "b", vc=VC_B)
    out = tmp_path / "inventory.json"
    result = CliRunner().invoke(import_group, ["rvtools", str(a), str(b), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["vcenters"], body["vms"], body["templates"], body["source"]) == (2, 12, 1, "a.xlsx, b")
    assert len(load_inventory(out).vms) == 13


# --- bad input: every file, sheet, row and column ---------------------------------------------------------

def test_bad_csv_cells_name_their_csv_file(tmp_path: Path) -> None:
    """Bad cells of a CSV export are named by their tab file, sheet, row (header = row 1) and column."""
    def spoil(wb: Workbook) -> None:
        set_cell(wb, "vInfo", "CPUs", "many", VM="web-02")
        set_cell(wb, "vCPU", "Hot Add", "perhaps", VM="db-01")
        set_cell(wb, "vSnapshot", "Date / time", "last Tuesday", VM="app-01", Name="before-patch-1")

    directory = write_csv(tmp_path / "bad", edit=spoil)
    assert [(Path(p.file).name, p.field, p.message) for p in _problems(directory)] == [
        ("RVTools_tabvInfo.csv", 'vInfo row 3, column "CPUs"', "not a whole number: 'many'"),
        ("RVTools_tabvCPU.csv", 'vCPU row 5, column "Hot Add"', "not true or false: 'perhaps'"),
        ("RVTools_tabvSnapshot.csv", 'vSnapshot row 4, column "Date / time"',
         "not a date and time: 'last Tuesday'"),
    ]


def test_missing_tab_csv_and_column(tmp_path: Path) -> None:
    """A missing required tab CSV names the directory; a missing column names its CSV file."""
    directory = write_csv(tmp_path / "partial")
    (directory / "RVTools_tabvDisk.csv").unlink()
    info = directory / "RVTools_tabvInfo.csv"
    rows = list(csv.reader(info.read_text(encoding="utf-8-sig").splitlines()))
    drop = rows[0].index("Memory")
    info.write_text("\n".join(",".join(f'"{c}"' for i, c in enumerate(r) if i != drop) for r in rows) + "\n")
    assert _problems(directory) == [
        Problem(str(info), 'vInfo, column "Memory"', "required column is missing"),
        Problem(str(directory), 'sheet "vDisk"', "required sheet is missing (no RVTools_tabvDisk.csv)"),
    ]


def test_every_bad_file_is_listed(tmp_path: Path) -> None:
    """Several bad exports (and a missing one): one InputError lists them all, exit 2 on the CLI."""
    a = write_rvtools(tmp_path / "a.xlsx", edit=lambda wb: set_cell(wb, "vDisk", "Capacity MiB", "big",
                                                                    VM="web-01"))
    b = write_csv(tmp_path / "b", "MB", vc=VC_B, edit=lambda wb: set_cell(wb, "vNetwork", "IP Address",
                                                                          "10.0.0.999", VM="erp-02"))
    fake = tmp_path / "c.xlsx"
    fake.write_text("not a workbook")
    missing = tmp_path / "absent"
    problems = _problems(a, b, fake, missing)
    assert [(Path(p.file).name, p.field) for p in problems] == [
        ("c.xlsx", ""), ("absent", ""), ("a.xlsx", 'vDisk row 2, column "Capacity MiB"'),
        ("RVTools_tabvNetwork.csv", 'vNetwork row 4, column "IP Address"')]
    result = CliRunner().invoke(import_group, ["rvtools", str(a), str(b), str(fake), str(missing),
                                               "--out", str(tmp_path / "i.json")])
    assert result.exit_code == 2
    assert "4 problem(s)" in result.stderr
    assert not (tmp_path / "i.json").exists()


def test_directory_without_export(tmp_path: Path) -> None:
    """A directory with neither tab CSV files nor workbooks is a problem naming it."""
    (tmp_path / "empty").mkdir()
    assert _problems(tmp_path / "empty") == [Problem(str(tmp_path / "empty"), "", "no RVTools export in this "
                                                     "directory (no RVTools_tab<sheet>.csv, no .xlsx)")]
