"""`migrate report`: the data it assembles, byte-identical output, one self-contained file, bad input is exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from migrate.cli.main import cli
from migrate.report.data import build_report
from migrate.report.html import render_html, report_json
from migrate.report.layout import convex_hull
from migrate.schemas import generate_schema, schema_text
from tests.unit.report_support import lab_files, noop_run
from tests.unit.test_engine_helpers import _quiet_logs

__all__ = ["_quiet_logs"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 40-VM lab plan and a noop run of it in which one VM fails."""
    directory = tmp_path_factory.mktemp("report")
    found: dict[str, Any] = dict(lab_files(directory))
    doc = yaml.safe_load(found["plan"].read_text())
    found["victim"] = doc["waves"][0]["vms"][1]
    found["journal"] = directory / "run.db"
    noop_run(found["plan"], found["journal"], fail=found["victim"])
    return found


def _report(files: dict[str, Any], out: Path, *extra: str) -> Any:
    args = ["report", "--plan", str(files["plan"]), "--inventory", str(files["inventory"]), "--flows",
            str(files["flows"]), "--out", str(out), *extra]
    return CliRunner().invoke(cli, args)


def test_plan_review_has_every_vm_and_the_graph(files: dict[str, Any]) -> None:
    """Before a run: one planned row per VM, estate totals from the inventory, metrics evaluated, cross-wave edges."""
    report = build_report(files["plan"], inventory=files["inventory"], flows=files["flows"])
    doc = yaml.safe_load(files["plan"].read_text())
    planned = [vm for wave in doc["waves"] for vm in wave["vms"]]
    assert [vm.id for vm in report.vms] == planned
    assert {vm.state for vm in report.vms} == {"planned"}
    estate = report.summary.estate
    assert estate.vms == 40 and estate.from_inventory and estate.vcpu > 0 and estate.storage_gb > 0
    plan = report.summary.plan
    assert plan.metrics_from == "evaluated" and plan.waves == len(doc["waves"]) and plan.violations == 0
    assert plan.cut_fraction == pytest.approx(doc["metrics"]["cut_fraction"])
    graph = report.graph
    assert graph.level == "vm" and {n.id for n in graph.nodes} == set(planned)
    wave_of = {vm.id: vm.wave for vm in report.vms}
    assert graph.edges and all(e.cross_wave == (wave_of[e.a] != wave_of[e.b]) for e in graph.edges)
    assert any(e.cross_wave for e in graph.edges)
    assert graph.groups and graph.outlines, "the lab has must-move groups (vApp, DRS affinity)"
    assert graph.keep_apart, "the lab has a DRS anti-affinity rule"
    assert report.summary.run is None and report.summary.failures == []
    page = render_html(report)
    assert 'id="timeline-svg"' in page and "no run yet" in page


def test_run_report_puts_failures_first_with_provider_and_operation(files: dict[str, Any]) -> None:
    """After a run: states from the journal, the failed VM first with its provider and op, phases, downtime."""
    report = build_report(files["plan"], inventory=files["inventory"], flows=files["flows"], journal=files["journal"])
    run = report.summary.run
    assert run is not None and run.run_id == "r1" and run.status == "partial"
    assert run.states == {"completed": 39, "failed": 1}
    [failure] = report.summary.failures
    assert failure.vm == files["victim"] and failure.phase == "copy_disks"
    assert failure.error is not None
    assert (failure.error.provider, failure.error.op) == ("vcenter", "CopyDatastoreFile_Task")
    rows = {vm.id: vm for vm in report.vms}
    victim = rows[files["victim"]]
    assert victim.state == "failed" and victim.phases[-1].status == "failed" and victim.downtime_s is None
    done = [vm for vm in report.vms if vm.state == "completed"]
    assert all(vm.phases[0].phase == "precheck" and vm.phases[-1].end for vm in done)
    assert all(vm.target_id for vm in done)
    down = [vm for vm in done if vm.downtime_s is not None]
    assert down and all(vm.downtime_s is not None and vm.downtime_s >= 0 for vm in down)
    assert len(down) < len(done), "VMs that were off lose no uptime"
    assert all(w.actual is not None and w.actual.end for w in report.waves)
    assert report.waves[0].states.get("failed") == 1 and sum(report.waves[0].states.values()) == report.waves[0].vms
    page = render_html(report)
    assert page.index("VM(s) failed") < page.index('id="waves"')
    assert "CopyDatastoreFile_Task" in page


def test_two_reports_of_the_same_inputs_are_byte_identical(files: dict[str, Any], tmp_path: Path) -> None:
    """HTML and JSON, through the CLI, twice: the same bytes; --timestamp is the only way to get a time in."""
    outs = []
    for n in (1, 2):
        out = tmp_path / f"r{n}.html"
        result = _report(files, out, "--journal", str(files["journal"]))
        assert result.exit_code == 0, result.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    first = _report(files, tmp_path / "a.json", "--journal", str(files["journal"]))
    second = _report(files, tmp_path / "b.json", "--journal", str(files["journal"]))
    assert first.exit_code == second.exit_code == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert b"generated" not in outs[0]
    stamped = _report(files, tmp_path / "t.html", "--timestamp")
    assert stamped.exit_code == 0 and "generated 20" in (tmp_path / "t.html").read_text()


def test_the_page_is_self_contained(files: dict[str, Any]) -> None:
    """No external script, style, font or image; a CSP that forbids every fetch; tables without JS."""
    page = render_html(build_report(files["plan"], inventory=files["inventory"], flows=files["flows"],
                                    journal=files["journal"]))
    assert "<script src" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}, urls
    assert "default-src 'none'" in page
    assert page.count('<tr data-state="') == 40


def test_json_output_matches_the_shipped_schema(files: dict[str, Any], tmp_path: Path) -> None:
    """--json prints the same content as data; it validates against `migrate schema report`."""
    result = _report(files, tmp_path / "r.html", "--journal", str(files["journal"]), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert schema_text("report") == generate_schema("report")
    jsonschema.validate(data, json.loads(schema_text("report")))
    assert len(data["vms"]) == 40 and data["summary"]["run"]["run_id"] == "r1"
    shown = CliRunner().invoke(cli, ["schema", "report"])
    assert shown.exit_code == 0 and json.loads(shown.output)["title"] == "Report"


def test_aggregated_graph_keeps_every_vm_in_one_node(files: dict[str, Any]) -> None:
    """Above the threshold nodes are apps/groups per wave: each VM in exactly one node of its own wave."""
    report = build_report(files["plan"], inventory=files["inventory"], flows=files["flows"], aggregate_above=10)
    graph = report.graph
    assert graph.level == "unit" and len(graph.nodes) < 40
    members = [vm for node in graph.nodes for vm in node.members]
    assert sorted(members) == sorted(vm.id for vm in report.vms)
    wave_of = {vm.id: vm.wave for vm in report.vms}
    assert all(wave_of[vm] == node.wave for node in graph.nodes for vm in node.members)
    assert sum(node.vms for node in graph.nodes) == 40
    assert all(e.a != e.b for e in graph.edges) and any(e.cross_wave for e in graph.edges)
    assert all(o.node is not None for o in graph.outlines)
    assert report_json(report) == report_json(build_report(files["plan"], inventory=files["inventory"],
                                                            flows=files["flows"], aggregate_above=10))


def test_without_an_inventory_the_plan_alone_is_reported(files: dict[str, Any], tmp_path: Path) -> None:
    """A plan that names no inventory: rows and wave sizes from the plan, no edges, metrics as recorded."""
    doc = yaml.safe_load(files["plan"].read_text())
    doc["source"].pop("inventory", None)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(doc, sort_keys=False))
    report = build_report(plan)
    assert len(report.vms) == 40 and report.summary.plan.metrics_from == "plan"
    assert not report.summary.estate.from_inventory and report.summary.estate.vms == 40
    assert report.graph.edges == [] and len(report.graph.nodes) == 40


def test_bad_input_is_exit_2_naming_the_file(files: dict[str, Any], tmp_path: Path) -> None:
    """A missing inventory, one the plan names but is gone, and a journal of another plan: exit 2, file named."""
    missing = tmp_path / "nope.json"
    result = CliRunner().invoke(cli, ["report", "--plan", str(files["plan"]), "--inventory", str(missing),
                                      "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and str(missing) in result.output
    doc = yaml.safe_load(files["plan"].read_text())
    doc["source"]["inventory"] = str(tmp_path / "gone.json")
    named = tmp_path / "named.yaml"
    named.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(cli, ["report", "--plan", str(named), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "gone.json" in result.output
    other = dict(doc)
    other["waves"] = [doc["waves"][1], doc["waves"][0], *doc["waves"][2:]]
    for i, wave in enumerate(other["waves"], start=1):
        wave["id"] = i
    other["source"]["inventory"] = str(files["inventory"])
    other_plan = tmp_path / "other.yaml"
    other_plan.write_text(yaml.safe_dump(other, sort_keys=False))
    result = CliRunner().invoke(cli, ["report", "--plan", str(other_plan), "--journal", str(files["journal"]),
                                      "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and str(files["journal"]) in result.output and "another plan" in result.output
    assert not (tmp_path / "r.html").exists()
    for extra, named in ((["--journal", str(tmp_path / "no.db")], "no.db"),
                         (["--journal", str(files["journal"]), "--run-id", "r9"], "r9"),
                         (["--run-id", "r1"], "--run-id")):
        result = _report(files, tmp_path / "r.html", *extra)
        assert result.exit_code == 2 and named in result.output, result.output


def test_convex_hull() -> None:
    """The outline of a group: the hull of its points, inner points dropped."""
    square = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0), (1.0, 1.0)]
    assert convex_hull(square) == [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]
    assert convex_hull([(1.0, 1.0)]) == [(1.0, 1.0)]
