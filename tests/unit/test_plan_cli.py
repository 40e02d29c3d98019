"""`migrate plan` and `migrate validate` through click's runner: outputs, overrides, exit 2 with every problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from adapters.lab.estate import make_estate
from migrate.cli.plan_cmd import plan
from migrate.cli.validate_cmd import validate
from migrate.inventory import save_inventory
from migrate.lab.flows import flows_csv
from planners import write_graph
from planners.plan_io import load_plan
from tests.unit.test_graph_lab import lab_inventory
from tests.unit.test_planner import two_triangles


@pytest.fixture
def lab(tmp_path: Path) -> dict[str, Path]:
    """A 40-VM lab inventory, its flows, and a constraints file."""
    estate = make_estate(40, 1)
    files = {"inventory": tmp_path / "inventory.json", "flows": tmp_path / "flows.csv",
             "constraints": tmp_path / "constraints.yaml"}
    save_inventory(lab_inventory(estate), files["inventory"])
    files["flows"].write_text(flows_csv(estate))
    files["constraints"].write_text(
        "version: 1\nmax_vms: 15\nramp: [5]\nprecedence:\n  - {before: app:crm, after: app:shop}\n"
        "windows:\n  - {start: 2025-03-01T20:00:00Z, end: 2025-03-02T04:00:00Z}\n")
    return files


def _plan(lab: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["--inventory", str(lab["inventory"]), "--flows", str(lab["flows"]), "--constraints",
            str(lab["constraints"]), "--out", str(out), *extra]


def test_plan_writes_the_file_and_a_summary(lab: dict[str, Path], tmp_path: Path) -> None:
    """The summary names waves, sizes, lower bound, cut and exposure; plan.yaml validates clean."""
    out = tmp_path / "out" / "plan.yaml"
    result = CliRunner().invoke(plan, _plan(lab, out))
    assert result.exit_code == 0, result.output
    assert "plan: 40 VMs in 4 waves (lower bound 4)" in result.output
    assert "wave-01:" in result.output and "2025-03-01T20:00:00Z" in result.output
    assert "of the dependency weight crosses waves; exposure" in result.output
    written = load_plan(out)
    assert written.constraints.max_vms == 15 and len(written.waves[0].vms) <= 5
    assert written.source is not None and written.source.inventory == str(lab["inventory"])
    check = CliRunner().invoke(validate, [str(out), "--inventory", str(lab["inventory"]), "--flows", str(lab["flows"])])
    assert check.exit_code == 0, check.output
    assert "valid: 4 waves (lower bound 4)" in check.output


def test_flags_override_the_file_and_json(lab: dict[str, Path], tmp_path: Path) -> None:
    """--max-vms, --ramp and --seed win over the file; --json prints metrics and waves."""
    out = tmp_path / "plan.yaml"
    result = CliRunner().invoke(plan, _plan(lab, out, "--max-vms", "10", "--ramp", "3,6", "--seed", "4", "--json"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metrics"]["waves"] == 6 and data["metrics"]["violations"] == 0     # 3 + 6 + 3 * 10 < 40
    caps = (3, 6, 10, 10, 10, 10)
    assert [w["size"]["vms"] <= cap for w, cap in zip(data["waves"], caps, strict=True)] == [True] * 6
    constraints = load_plan(out).constraints
    assert (constraints.max_vms, constraints.ramp, constraints.seed) == (10, [3, 6], 4)


def test_plan_from_a_graph_file(tmp_path: Path) -> None:
    """--graph takes a graph.json; --max-gb applies."""
    graph_file = tmp_path / "g.json"
    write_graph(two_triangles(), graph_file)
    out = tmp_path / "plan.yaml"
    result = CliRunner().invoke(plan, ["--graph", str(graph_file), "--max-gb", "30", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["cut_weight"] == 1.0


def test_plan_bad_input_lists_every_problem(lab: dict[str, Path], tmp_path: Path) -> None:
    """Both --inventory and --graph, a bad --ramp and a bad constraints file: one exit 2, no file written."""
    lab["constraints"].write_text("version: 1\nmax_vms: many\npins: [{vm: x}]\n")
    out = tmp_path / "plan.yaml"
    result = CliRunner().invoke(plan, _plan(lab, out, "--graph", str(tmp_path / "g.json"), "--ramp", "a", "--json"))
    assert result.exit_code == 2
    fields = {p["field"] for p in json.loads(result.stdout)["problems"]}
    assert fields == {"max_vms", "pins[0]", "--ramp", "--inventory/--graph"}
    assert not out.exists()


def test_plan_infeasible_is_exit_2_naming_vms(lab: dict[str, Path], tmp_path: Path) -> None:
    """A precedence cycle between apps is exit 2 with the rules and VMs named."""
    lab["constraints"].write_text("version: 1\nprecedence:\n  - {before: app:crm, after: app:shop}\n"
                                  "  - {before: app:shop, after: app:crm}\n")
    result = CliRunner().invoke(plan, _plan(lab, tmp_path / "p.yaml"))
    assert result.exit_code == 2
    assert "precedence cycle" in result.output and "precedence[0], precedence[1]" in result.output


def test_validate_lists_every_problem_of_an_edited_plan(lab: dict[str, Path], tmp_path: Path) -> None:
    """Moving a VM into the pilot wave and duplicating another: exit 2, each named by plan.yaml field."""
    out = tmp_path / "plan.yaml"
    assert CliRunner().invoke(plan, _plan(lab, out)).exit_code == 0
    data = yaml.safe_load(out.read_text())
    moved = [data["waves"][2]["vms"].pop() for _ in range(5)]
    del data["waves"][2]["vm_names"][-5:]
    data["waves"][0]["vms"] += [*moved, data["waves"][1]["vms"][0]]
    del data["waves"][0]["vm_names"]
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(validate, [str(out), "--inventory", str(lab["inventory"]), "--json"])
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]
    assert all(p["file"] == str(out) for p in problems)
    messages = " | ".join(p["message"] for p in problems)
    assert "more than its cap of 5 (ramp)" in messages and "listed twice" in messages


def test_validate_needs_a_graph_source_and_a_readable_plan(tmp_path: Path) -> None:
    """No --inventory/--graph and a missing plan file: both problems in one exit 2."""
    result = CliRunner().invoke(validate, [str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.output and "give exactly one of --inventory or --graph" in result.output


def test_validate_with_other_constraints(lab: dict[str, Path], tmp_path: Path) -> None:
    """--constraints checks the plan against another file: a tighter max_vms fails it."""
    out = tmp_path / "plan.yaml"
    assert CliRunner().invoke(plan, _plan(lab, out)).exit_code == 0
    tight = tmp_path / "tight.yaml"
    tight.write_text("version: 1\nmax_vms: 4\n")
    result = CliRunner().invoke(validate, [str(out), "--inventory", str(lab["inventory"]), "--constraints", str(tight)])
    assert result.exit_code == 2 and "more than its cap of 4" in result.output
