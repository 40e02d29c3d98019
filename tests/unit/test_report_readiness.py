"""The report's readiness section: from the plan's notes, else from the inventory; counts, rows, HTML, schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from migrate import save_inventory
from migrate.engine.readiness_notes import with_readiness
from migrate.report.data import build_report
from migrate.report.html import render_html, report_json
from migrate.schemas import schema_text
from planners.plan_io import load_plan, write_plan
from planners.plan_model import Plan, PlanSource, Wave
from tests.unit.test_readiness_notes import _estate


def _files(tmp_path: Path, *, notes: bool = True, method: str | None = None) -> Path:
    """inventory.json and plan.yaml (two waves; the method set on both when given; notes or none)."""
    context, plan = _estate()
    save_inventory(context.inventory, tmp_path / "inventory.json")
    waves = [w.model_copy(update={"method": method}) if method else w for w in plan.waves]
    planned = Plan(source=PlanSource(inventory=str(tmp_path / "inventory.json"), generated_at="2026-01-01T00:00:00Z",
                                     planner="test"), waves=waves)
    write_plan(with_readiness(planned, context) if notes else planned, tmp_path / "plan.yaml")
    return tmp_path / "plan.yaml"


def test_the_section_comes_from_the_plan_s_notes(tmp_path: Path) -> None:
    """Counts by verdict for each VM's wave method; the not-ready VM first with its rule ids and reasons; the
    page shows it and the JSON follows the shipped schema."""
    plan = _files(tmp_path)
    (tmp_path / "inventory.json").unlink()   # the notes alone are enough
    doc = yaml.safe_load(plan.read_text())
    doc["source"].pop("inventory")
    plan.write_text(yaml.safe_dump(doc))
    report = build_report(plan)
    section = report.readiness
    assert section is not None and section.source == "plan"
    assert section.counts == {"ready": 3, "ready_with_warnings": 0, "not_ready": 1, "not_assessed": 0}
    [db] = section.vms
    assert (db.name, db.wave, db.method, db.verdict) == ("db-01", 1, "cold", "not_ready")
    assert [(f.rule, f.status) for f in db.findings] == [("snapshots", "block")]
    assert set(section.not_assessed) == {"hardware_version", "evc_mode"}
    page = render_html(report)
    assert '<section id="readiness">' in page and '<tr data-verdict="not_ready"><td>db-01</td>' in page
    assert "<code>snapshots</code>" in page and "1 snapshot(s): consolidate" in page
    jsonschema.validate(json.loads(report_json(report)), json.loads(schema_text("report")))


def test_a_method_the_notes_do_not_cover_is_computed_from_the_inventory(tmp_path: Path) -> None:
    """Notes written for replatform, waves edited to warm: the verdicts come from the inventory (the same rules)."""
    plan = _files(tmp_path, method="replatform")
    assert load_plan(plan).readiness.methods == ["replatform"]  # type: ignore[union-attr]
    plan.write_text(plan.read_text().replace("method: replatform", "method: warm"))
    section = build_report(plan).readiness
    assert section is not None and section.source == "inventory"
    assert section.counts == {"ready": 3, "ready_with_warnings": 0, "not_ready": 1, "not_assessed": 0}
    [db] = section.vms
    assert db.method == "warm" and {f.rule for f in db.findings} == {"snapshots", "change_tracking"}


def test_a_plan_without_notes_is_assessed_from_its_inventory(tmp_path: Path) -> None:
    """An old plan (no `readiness`) with its inventory: the same section, computed; a noop wave is not assessed."""
    plan = _files(tmp_path, notes=False)
    section = build_report(plan).readiness
    assert section is not None and section.source == "inventory"
    assert [(v.name, v.verdict) for v in section.vms] == [("db-01", "not_ready")]
    plan.write_text(plan.read_text().replace("method: cold", "method: noop"))
    section = build_report(plan).readiness
    assert section is not None and section.counts["not_assessed"] == 4 and section.counts["ready"] == 0


def test_without_notes_or_inventory_there_is_no_section(tmp_path: Path) -> None:
    """No notes, no inventory: readiness is None and the page says it was not assessed."""
    plan = tmp_path / "plan.yaml"
    write_plan(Plan(waves=[Wave(id=1, name="w1", vms=["vm-1"])]), plan)
    report = build_report(plan)
    assert report.readiness is None
    assert "Not assessed: the plan has no readiness notes" in render_html(report)
