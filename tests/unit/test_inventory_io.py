"""inventory.json: validated on load with every bad field named; written atomically."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate import load_inventory, save_inventory
from migrate.core.errors import InputError
from migrate.core.models.inventory import Disk, Inventory, Provenance, Vm
from migrate.schemas import generate_schema, schema_text


def sample() -> Inventory:
    return Inventory(
        provenance=Provenance(source="vc.example", kind="vcenter", collected_at=datetime(2026, 1, 2, tzinfo=UTC)),
        vms=[Vm(id="u-1", name="web-01", cpus=2, memory_mb=4096,
                disks=[Disk(key=2000, capacity_bytes=10 * 2**30, datastore="ds1", path="web-01/web-01.vmdk")])],
    )


def test_round_trip(tmp_path: Path) -> None:
    """What save_inventory writes, load_inventory reads back equal."""
    path = tmp_path / "inventory.json"
    save_inventory(sample(), path)
    assert load_inventory(path) == sample()
    assert sample().vms[0].storage_bytes == 10 * 2**30


def test_every_bad_field_named(tmp_path: Path) -> None:
    """Wrong types and missing fields are listed with their paths."""
    data = json.loads(sample().model_dump_json())
    data["vms"][0]["cpus"] = "many"
    data["vms"][0]["disks"][0]["capacity_bytes"] = -1
    del data["vms"][0]["name"]
    data["vms"].append({"id": "u-2"})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as exc:
        load_inventory(path)
    fields = {p.field for p in exc.value.problems}
    assert {"vms[0].cpus", "vms[0].disks[0].capacity_bytes", "vms[0].name", "vms[1].name"} <= fields


def test_duplicate_vm_ids_rejected(tmp_path: Path) -> None:
    """Two VMs with one id would break every later step: refused at load."""
    data = json.loads(sample().model_dump_json())
    data["vms"].append(dict(data["vms"][0]))
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="duplicate VM ids: u-1"):
        load_inventory(path)


@pytest.mark.parametrize(("text", "message"), [("{not json", "not valid JSON"), ("[1, 2]", "top level"),
                                               ('{"version": 1}', "required field is missing")])
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    """Syntax errors name the line; a non-object or incomplete document is bad input."""
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_inventory(path)


def test_failed_write_leaves_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails midway leaves the old inventory intact and no temp file behind."""
    path = tmp_path / "inventory.json"
    save_inventory(sample(), path)
    before = path.read_bytes()

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        save_inventory(sample().model_copy(update={"vms": []}), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["inventory.json"]


def test_shipped_inventory_schema_matches_model() -> None:
    """The packaged JSON Schema for inventory.json is current."""
    assert schema_text("inventory") == generate_schema("inventory")
