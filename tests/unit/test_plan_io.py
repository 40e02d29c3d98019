"""plan.yaml and constraints.yaml: round trips, strict validation naming every bad field, CLI overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from migrate.core.errors import InputError
from planners.plan_io import load_constraints, load_plan, merge_constraints, parse_ramp, plan_yaml, write_plan
from planners.plan_model import Constraints, Plan
from planners.waves import plan_waves
from tests.unit.test_planner import graph_of, two_triangles


def test_plan_yaml_round_trip(tmp_path: Path) -> None:
    """A written plan reads back equal (metrics, windows, why and all), with the editing header on top."""
    windows = [{"start": "2025-03-01T20:00:00Z", "end": "2025-03-02T04:00:00+01:00"}]
    plan = plan_waves(two_triangles(), Constraints(max_vms=3, windows=windows, ramp=[3],
                                                   precedence=[{"before": "a", "after": "f", "reason": "db"}]))
    path = tmp_path / "plan.yaml"
    write_plan(plan, path)
    text = path.read_text()
    assert text.startswith("# Migration wave plan") and "vm_names:" in text
    again = load_plan(path)
    assert again.model_dump() == plan.model_dump()
    assert again.metrics is not None and again.metrics.cut_weight == 1.0
    assert yaml.safe_load(text)["waves"][0]["window"]["start"] == "2025-03-01T20:00:00Z"


def test_hand_written_yaml_with_unquoted_timestamps(tmp_path: Path) -> None:
    """YAML timestamps people type unquoted still load as aware datetimes."""
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nwindows:\n  - {start: 2025-03-01T20:00:00Z, end: 2025-03-01T23:00:00+01:00}\n")
    window = load_constraints(path).windows[0]
    assert (window.end - window.start).total_seconds() == 7200


def test_constraints_file_names_every_bad_field(tmp_path: Path) -> None:
    """Unknown keys, bad numbers, pins with both or neither target, naive and reversed windows."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\nmax_vms: 0\nmax_gb: -1\nramp: [5, 0]\ncolour: red\n"
        "precedence:\n  - {before: '', after: b}\n"
        "pins:\n  - {vm: a, wave: 1, exclude: old}\n  - {vm: b}\n  - {vm: app:crm, wave: 2}\n  - {vm: c, wave: 0}\n"
        "windows:\n  - {start: 2025-03-01T20:00:00, end: 2025-03-02T04:00:00Z}\n"
        "  - {start: 2025-03-05T20:00:00Z, end: 2025-03-05T19:00:00Z}\n")
    with pytest.raises(InputError) as info:
        load_constraints(path)
    fields = {p.field for p in info.value.problems}
    assert fields == {"max_vms", "max_gb", "ramp", "colour", "precedence[0].before", "pins[0]", "pins[1]", "pins[2]",
                      "pins[3].wave", "windows[0].start", "windows[1]"}
    assert all(p.file == str(path) for p in info.value.problems)


def test_plan_file_structure_is_checked(tmp_path: Path) -> None:
    """A plan with a typo'd key or a bad wave id is refused with the field named."""
    path = tmp_path / "plan.yaml"
    path.write_text("version: 1\nwaves:\n  - {id: 0, name: w, vms: [a]}\n  - {id: 2, name: w2, vm: [b]}\n")
    with pytest.raises(InputError) as info:
        load_plan(path)
    assert {p.field for p in info.value.problems} == {"waves[0].id", "waves[1].vms", "waves[1].vm"}


def test_ramp_option_parsing() -> None:
    """--ramp takes comma-separated whole numbers >= 1."""
    assert parse_ramp("5, 15") == [5, 15]
    for bad in ("5,x", "0", "", "5,,6", "-3"):
        with pytest.raises(InputError):
            parse_ramp(bad)


def test_command_line_values_win_over_the_file() -> None:
    """merge_constraints replaces only what was given and checks it."""
    base = Constraints(max_vms=10, max_gb=500, ramp=[2], seed=1)
    merged = merge_constraints(base, max_vms=20, ramp=[3, 4])
    assert (merged.max_vms, merged.max_gb, merged.ramp, merged.seed) == (20, 500, [3, 4], 1)
    assert merge_constraints(base) is base
    with pytest.raises(InputError) as info:
        merge_constraints(base, max_vms=0, max_gb=0)
    assert {p.field for p in info.value.problems} == {"--max-vms", "--max-gb"}


def test_plan_json_schema_is_exposed() -> None:
    """The Plan model gives a JSON Schema with waves, excluded and metrics."""
    schema = Plan.model_json_schema()
    assert {"waves", "excluded", "metrics", "constraints", "version"} <= set(schema["properties"])
    assert "Wave" in schema["$defs"] and schema["$defs"]["Wave"]["additionalProperties"] is False


def test_excluded_vms_survive_the_round_trip(tmp_path: Path) -> None:
    """Excluded VMs are written with id, name and reason, and read back."""
    plan = plan_waves(graph_of("abc"), Constraints(pins=[{"vm": "c", "exclude": "retired 2024"}]))
    text = plan_yaml(plan)
    assert "reason: retired 2024" in text
    path = tmp_path / "p.yaml"
    write_plan(plan, path)
    assert [(e.id, e.reason) for e in load_plan(path).excluded] == [("id-c", "retired 2024")]
