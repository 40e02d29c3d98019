"""Readiness notes in plan.yaml: per-VM verdicts, unknown facts and findings, small and stable; `migrate plan` writes
them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from migrate import save_inventory
from migrate.core.errors import InputError
from migrate.core.models.inventory import Disk, Guest
from migrate.engine.readiness_assess import assess
from migrate.engine.readiness_context import Context
from migrate.engine.readiness_notes import plan_readiness, vm_readiness, with_readiness
from migrate.engine.replatform import _source_checks
from planners.plan_io import load_plan, plan_yaml, write_plan
from planners.plan_model import Plan, Readiness, VmReadiness, Wave
from tests.helpers import run_cli
from tests.unit.test_readiness_rules import GIB, clean_vm, inventory

TIB = 2**40


def _estate() -> tuple[Context, Plan]:
    """Three clean VMs and one with a snapshot and tracking off, in one wave that sets no method."""
    vms = [clean_vm(id="vm-3", name="web-01"), clean_vm(id="vm-2", name="db-01", snapshots=1, change_tracking=False),
           clean_vm(id="vm-1", name="app-01"), clean_vm(id="vm-4", name="cache-01", cpu_hot_add=True)]
    plan = Plan(waves=[Wave(id=1, name="w1", vms=["vm-3", "vm-2"]), Wave(id=2, name="w2", vms=["vm-1", "vm-4"])])
    return Context.of(inventory(*vms)), plan


def test_only_vms_with_findings_get_notes_with_every_method_when_unpinned() -> None:
    """A wave without `method`: each VM against every method; clean VMs get no note; each finding once."""
    context, plan = _estate()
    notes = plan_readiness(plan, context)
    assert notes.methods == ["cold", "warm", "live", "replatform", "warm_replatform"]
    assert [n.name for n in notes.vms] == ["cache-01", "db-01"]
    db = notes.vms[1]
    assert db.verdicts == {"cold": "not_ready", "warm": "not_ready", "live": "ready", "replatform": "not_ready",
                           "warm_replatform": "not_ready"}
    by_rule = {f.rule: f for f in db.findings}
    assert by_rule["snapshots"].status == "block" and "1 snapshot(s)" in by_rule["snapshots"].message
    assert by_rule["snapshots"].methods == ["cold", "warm", "replatform", "warm_replatform"]
    assert by_rule["change_tracking"].methods == ["warm", "warm_replatform"]
    cache = notes.vms[0]
    assert cache.verdicts["replatform"] == "ready_with_warnings" and cache.verdicts["cold"] == "ready"
    assert notes.summary["cold"] == {"ready": 3, "ready_with_warnings": 0, "not_ready": 1}
    assert notes.summary["replatform"] == {"ready": 2, "ready_with_warnings": 1, "not_ready": 1}
    assert set(notes.not_assessed) == {"hardware_version", "evc_mode"}


def test_a_pinned_wave_is_assessed_for_its_method_only() -> None:
    """A wave that sets `method` (or a method the catalog lacks, e.g. noop) gives its VMs that verdict alone."""
    context, plan = _estate()
    waves = [Wave(id=1, name="w1", vms=["vm-3", "vm-2"], method="live"),
             Wave(id=2, name="w2", vms=["vm-1", "vm-4"], method="replatform")]
    notes = plan_readiness(plan.model_copy(update={"waves": waves}), context)
    assert notes.methods == ["live", "replatform"]
    assert [(n.name, n.verdicts) for n in notes.vms] == [("cache-01", {"replatform": "ready_with_warnings"})]
    assert [f.rule for f in notes.vms[0].findings] == ["hot_add"] and notes.vms[0].findings[0].methods is None
    assert notes.summary == {"live": {"ready": 2, "ready_with_warnings": 0, "not_ready": 0},
                             "replatform": {"ready": 1, "ready_with_warnings": 1, "not_ready": 0}}
    noop = [Wave(id=1, name="w1", vms=["vm-2"], method="noop")]
    assert plan_readiness(Plan(waves=noop), context).vms == []


def test_notes_are_stable_and_small_in_plan_yaml(tmp_path: Path) -> None:
    """Same input, same text; the notes sort by name whatever the waves' order; one line per verdict map and
    finding; the written plan reads back equal."""
    context, plan = _estate()
    noted = with_readiness(plan, context)
    swapped = with_readiness(plan.model_copy(update={"waves": list(reversed(plan.waves))}), context)
    assert noted.readiness == swapped.readiness
    text = plan_yaml(noted)
    assert text == plan_yaml(with_readiness(plan, context))
    lines = text.splitlines()
    assert "    verdicts: {cold: not_ready, warm: not_ready, live: ready, replatform: not_ready, warm_replatform: " \
           "not_ready}" in lines
    assert any(line.startswith("    - {rule: hot_add, status: warn, message:") for line in lines)
    assert text.count("- id: vm-") == 2, "only the VMs with findings"
    path = tmp_path / "plan.yaml"
    write_plan(noted, path)
    assert load_plan(path).model_dump() == noted.model_dump()


def test_old_plans_without_notes_still_load(tmp_path: Path) -> None:
    """A plan.yaml written before the notes (no `readiness`) loads, with none; a bad note is named."""
    path = tmp_path / "plan.yaml"
    path.write_text("version: 1\nwaves:\n- id: 1\n  name: w1\n  vms: [vm-1]\n  method: cold\n")
    assert load_plan(path).readiness is None
    path.write_text(path.read_text() + "readiness:\n  methods: [cold]\n  vms:\n  - {id: vm-1, verdicts: {cold: "
                                       "maybe}}\n")
    with pytest.raises(InputError, match=r"readiness\.vms\[0\]\.verdicts\.cold"):
        load_plan(path)


def test_a_vm_s_verdict_read_back_for_its_method() -> None:
    """vm_readiness: a noted VM's verdict and the findings of that method; not noted: ready; uncovered method:
    not assessed."""
    context, plan = _estate()
    notes = plan_readiness(plan, context)
    verdict, found = vm_readiness(notes, "vm-2", "live")
    assert verdict == "ready" and found == []
    verdict, found = vm_readiness(notes, "vm-2", "cold")
    assert verdict == "not_ready" and [f.rule for f in found] == ["snapshots"]
    assert vm_readiness(notes, "vm-1", "warm") == ("ready", [])
    assert vm_readiness(notes, "vm-1", "noop") == ("not_assessed", [])


def test_unknown_facts_are_rule_ids_per_vm_and_messages_once() -> None:
    """Facts the inventory lacks: each VM names the rules in `unknown`, each message is written once with its VM
    count (another message of the same rule stays a finding); one `verdict` when the methods agree; read back,
    every verdict and finding is what `migrate assess` finds."""
    def guest(**changes: str | None) -> Guest:
        return clean_vm().guest.model_copy(update=changes)

    vms = [clean_vm(id="vm-1", name="a-01", change_tracking=None, guest=guest(tools_status=None)),
           clean_vm(id="vm-2", name="b-01", change_tracking=None),
           clean_vm(id="vm-3", name="c-01"),
           clean_vm(id="vm-4", name="d-01", guest=guest(guest_id=None)),
           clean_vm(id="vm-5", name="e-01", firmware=None),
           clean_vm(id="vm-6", name="f-01", guest=guest(guest_id=None))]
    context = Context.of(inventory(*vms))
    plan = Plan(waves=[Wave(id=1, name="w1", vms=[vm.id for vm in vms])])
    notes = plan_readiness(plan, context)
    facts = {rule: (f.vms, f.methods, f.message) for rule, f in notes.unknown_facts.items()}
    assert facts == {
        "change_tracking": (2, ["warm", "warm_replatform"], "changed block tracking state unknown"),
        "guest_os": (3, ["replatform", "warm_replatform"], "guest OS unknown: EC2 import support not known"),
        "tools": (1, None, "VMware Tools status unknown: the source may be powered off, not shut down")}
    by_name = {n.name: n for n in notes.vms}
    assert list(by_name) == ["a-01", "b-01", "d-01", "e-01", "f-01"]
    a, b, e = by_name["a-01"], by_name["b-01"], by_name["e-01"]
    assert (a.verdict, a.verdicts, a.unknown, a.findings) == ("ready_with_warnings", None, ["tools", "change_tracking"],
                                                              [])
    assert b.verdict is None and b.verdicts is not None and b.verdicts["cold"] == "ready" and b.unknown == [
        "change_tracking"]
    assert e.unknown == [] and [(f.rule, f.status, f.message) for f in e.findings] == [
        ("guest_os", "unknown", "boot firmware None: EC2 boot mode unknown")]
    assessed = {item.id: item for item in assess(Context.of(inventory(*vms)), methods=list(notes.methods)).vms}
    for vm in vms:
        for method in notes.methods:
            verdict, found = vm_readiness(notes, vm.id, method)
            expected = assessed[vm.id].methods[method]
            assert verdict == expected.verdict, (vm.name, method)
            assert sorted((f.rule, f.status, f.message) for f in found) == sorted(
                (f.rule, f.status, f.message) for f in expected.findings), (vm.name, method)
    text = plan_yaml(Plan(waves=plan.waves, readiness=notes))
    for fact in notes.unknown_facts.values():
        assert text.count(fact.message) == 1, fact.message
    lines = text.splitlines()
    assert "    tools: {vms: 1, message: 'VMware Tools status unknown: the source may be powered off, not shut " \
           "down'}" in lines
    assert lines[lines.index("  - id: vm-1") + 2:][:2] == ["    verdict: ready_with_warnings",
                                                          "    unknown: [tools, change_tracking]"]
    assert "findings: []" not in text


def test_old_format_notes_still_read() -> None:
    """A note with a verdict map and unknown findings in full (the first format) loads and reads back; a note
    with both verdict forms, or neither, is refused."""
    notes = Readiness.model_validate({"methods": ["cold", "warm"], "vms": [
        {"id": "vm-1", "verdicts": {"cold": "ready_with_warnings", "warm": "ready_with_warnings"},
         "findings": [{"rule": "tools", "status": "unknown", "message": "tools unknown"}]}]})
    assert vm_readiness(notes, "vm-1", "warm") == ("ready_with_warnings", notes.vms[0].findings)
    for verdicts in ({"verdict": "ready", "verdicts": {"cold": "ready"}}, {}):
        with pytest.raises(ValidationError, match="either `verdict`"):
            VmReadiness.model_validate({"id": "vm-1", **verdicts})


@pytest.mark.parametrize("disks", [
    [Disk(key=2000, capacity_bytes=40 * GIB, datastore="ds1"), Disk(key=2001, capacity_bytes=17 * TIB,
                                                                    datastore="ds1")],
    [Disk(key=2000 + i, capacity_bytes=GIB, datastore="ds1") for i in range(27)],
    [],
])
def test_replatform_disk_prechecks_are_the_catalog_s(disks: list[Disk]) -> None:
    """The replatform precheck's disk_size / disks results are exactly what the assessment finds."""
    vm = clean_vm(disks=disks)
    facts = {"disks": [d.model_dump() for d in disks]}
    live = {"power_state": "poweredOn", "snapshots": 0, "devices": [], "tools_running": True,
            "disks": [{"key": d.key} for d in disks]}
    prechecks = {(c["check"], c["status"], c["message"]) for c in _source_checks(facts, live)
                 if c["check"] in ("disk_size", "disks")}
    assessed = assess(Context.of(inventory(vm)), methods=["replatform"]).vms[0].methods["replatform"].findings
    found = {(f.rule, f.status, f.message) for f in assessed if f.rule in ("disk_size", "disks")}
    assert prechecks == found and found


def test_migrate_plan_writes_the_notes_and_counts_them(tmp_path: Path) -> None:
    """`python -m migrate plan`: the snapshot VM's note is in plan.yaml, the summary line and --json count it,
    and `migrate validate` accepts the plan."""
    context, _ = _estate()
    save_inventory(context.inventory, tmp_path / "inventory.json")
    out = tmp_path / "plan.yaml"
    result = run_cli("plan", "--inventory", tmp_path / "inventory.json", "--out", out)
    assert result.code == 0, result
    assert "readiness: cold 1 not ready, 0 with warnings, 3 ready; " in result.stdout
    assert "replatform 1 not ready, 1 with warnings, 2 ready" in result.stdout
    assert "(2 VM(s) with notes in the plan's `readiness`)" in result.stdout
    doc = yaml.safe_load(out.read_text())
    [db] = [vm for vm in doc["readiness"]["vms"] if vm["name"] == "db-01"]
    assert db["id"] == "vm-2" and db["verdicts"]["cold"] == "not_ready"
    assert [f["rule"] for f in db["findings"]] == ["snapshots", "change_tracking"]
    as_json = run_cli("plan", "--inventory", tmp_path / "inventory.json", "--out", out, "--json")
    assert as_json.code == 0, as_json
    readiness = json.loads(as_json.stdout)["readiness"]
    assert readiness["vms"] == 2
    assert readiness["summary"]["cold"] == {"ready": 3, "ready_with_warnings": 0, "not_ready": 1}
    check = run_cli("validate", out, "--inventory", tmp_path / "inventory.json")
    assert check.code == 0, check
