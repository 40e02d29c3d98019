"""`migrate assess`: table and JSON (valid against the shipped schema), bad input exit 2; the prechecks agree."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from migrate import save_inventory
from migrate.cli.main import cli
from migrate.core.models.inventory import Disk
from migrate.engine.readiness_assess import assess
from migrate.engine.readiness_context import Context
from migrate.engine.vm_checks import source_vm_checks
from migrate.schemas import generate_schema, schema_text
from tests.unit.test_readiness_rules import GIB, clean_vm, inventory


def _inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.json"
    save_inventory(inventory(clean_vm(), clean_vm(id="vm-2", name="db-01", snapshots=1, change_tracking=False)), path)
    return path


def test_shipped_schema_is_the_model_s() -> None:
    """assess.schema.json is what the Assessment model generates."""
    assert schema_text("assess") == generate_schema("assess")


def test_json_output_validates_against_the_schema(tmp_path: Path) -> None:
    """--json prints an Assessment the shipped schema accepts, with rule ids per method."""
    result = CliRunner().invoke(cli, ["assess", "--inventory", str(_inventory_file(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    jsonschema.validate(data, json.loads(schema_text("assess")))
    db = next(vm for vm in data["vms"] if vm["name"] == "db-01")
    assert db["methods"]["cold"]["verdict"] == "not_ready"
    assert {f["rule"] for f in db["methods"]["warm"]["findings"]} == {"snapshots", "change_tracking"}
    assert db["methods"]["live"]["verdict"] == "ready"
    assert data["summary"]["cold"] == {"ready": 1, "ready_with_warnings": 0, "not_ready": 1}


def test_human_table(tmp_path: Path) -> None:
    """The table shows a verdict per method, each finding once with its methods, and the counts."""
    result = CliRunner().invoke(cli, ["assess", "--inventory", str(_inventory_file(tmp_path)), "--method", "cold",
                                      "--method", "warm"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["VM", "cold", "warm"]
    assert any(line.split()[:3] == ["db-01", "NOT", "READY"] for line in lines)
    assert "    block snapshots [all]: 1 snapshot(s)" in result.output
    assert "    block change_tracking [warm]:" in result.output
    assert "cold: 1 ready, 0 with warnings, 1 not ready" in result.output
    assert "not assessed: hardware_version" in result.output


def test_bad_input_exits_2_naming_each_file(tmp_path: Path) -> None:
    """A missing inventory, a target inventory that is not JSON and an unknown method are all listed."""
    bad = tmp_path / "target.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(cli, ["assess", "--inventory", str(tmp_path / "missing.json"), "--target-inventory",
                                      str(bad), "--method", "teleport"])
    assert result.exit_code == 2, result.output
    assert "missing.json" in result.output and "target.json" in result.output and "teleport" in result.output


def test_plan_vm_not_in_inventory_exits_2(tmp_path: Path) -> None:
    """--plan naming a VM the inventory lacks is bad input."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\nwaves:\n- id: 1\n  name: w1\n  vms: [ghost]\n")
    result = CliRunner().invoke(cli, ["assess", "--inventory", str(_inventory_file(tmp_path)), "--plan", str(plan)])
    assert result.exit_code == 2, result.output
    assert "ghost" in result.output


def test_prechecks_and_assessment_agree_on_shared_conditions() -> None:
    """The source prechecks report the catalog's ids and severities for the conditions they share."""
    disks = [Disk(key=2000, capacity_bytes=GIB, datastore="ds1", rdm="virtual"),
             Disk(key=2001, capacity_bytes=GIB, datastore="ds1", sharing="sharingMultiWriter")]
    vm = clean_vm(snapshots=1, devices=["usb"], disks=disks)
    facts = {"disks": [d.model_dump() for d in disks]}
    live = {"power_state": "poweredOn", "snapshots": 1, "devices": ["usb"], "tools_running": True,
            "disks": [{"key": d.key, "rdm": d.rdm} for d in disks]}
    prechecks = {(c["check"], c["status"]) for c in source_vm_checks(facts, live, moved="copied")
                 if c["status"] != "ok"}
    assessed = assess(Context.of(inventory(vm)), methods=["cold"]).vms[0].methods["cold"].findings
    assert prechecks == {(f.rule, f.status) for f in assessed} == {
        ("snapshots", "block"), ("devices", "block"), ("rdm", "block"), ("shared_disk", "block")}
