"""Numbers out of range in input files and options: exit 2 naming file and field, before any work sized by them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.fuzz_bases import bases
from tests.unit.fuzz_support import check_outcome, csv_text, invoke, json_text, yaml_text


def _files(tmp_path: Path, **docs: Any) -> dict[str, Path]:
    b = bases()
    texts = {"inventory": json_text(docs.get("inventory", b.inventory)), "flows": csv_text(docs.get("flows", b.flows)),
             "constraints": yaml_text(docs.get("constraints", b.constraints)),
             "types": json_text(b.types)}
    paths = {}
    for key, text in texts.items():
        paths[key] = tmp_path / f"{key}.{'csv' if key == 'flows' else 'yaml' if key == 'constraints' else 'json'}"
        paths[key].write_text(text)
    return paths


def _plan(f: dict[str, Path], tmp_path: Path, *extra: str) -> list[str | Path]:
    return ["plan", "--inventory", f["inventory"], "--flows", f["flows"], "--constraints", f["constraints"],
            "--out", tmp_path / "p.yaml", *extra]


def _exit_2(args: list[str | Path], file: str | Path, field: str) -> str:
    outcome = invoke(args, [])
    check_outcome(outcome, [str(file)])
    assert outcome.result.exit_code == 2, outcome.result.output
    assert field in outcome.result.output, outcome.result.output
    return outcome.result.output


@pytest.mark.parametrize("wave", [10**30, 10_001, 1000])
def test_pin_to_a_huge_wave(tmp_path: Path, wave: int) -> None:
    """A pin to wave 10^30 (once an allocation of 24 GiB and more) or past what the VMs can fill is exit 2."""
    constraints = copy.deepcopy(bases().constraints)
    constraints["pins"][0]["wave"] = wave
    f = _files(tmp_path, constraints=constraints)
    _exit_2(_plan(f, tmp_path), f["constraints"], "pins[0]")


def test_ramp_that_forces_empty_waves(tmp_path: Path) -> None:
    """Ten thousand ramp caps of 1 before a two-VM group would mean thousands of empty waves: exit 2."""
    constraints = copy.deepcopy(bases().constraints)
    constraints.update(ramp=[1] * 10_000, pins=[])
    f = _files(tmp_path, constraints=constraints)
    assert "empty waves" in _exit_2(_plan(f, tmp_path), f["constraints"], "ramp")


@pytest.mark.parametrize("text", ["seed: " + "9" * 5000, "max_vms: " + "[" * 20_000 + "]" * 20_000,
                                  "windows: [{start: 2025-13-45T99:00:00Z, end: 2025-03-02T04:00:00Z}]"])
def test_yaml_values_the_parser_cannot_hold(tmp_path: Path, text: str) -> None:
    """A 5,000-digit number, 20,000 nested lists or an impossible date in YAML is exit 2 naming the file."""
    f = _files(tmp_path)
    f["constraints"].write_text("version: 1\n" + text + "\n")
    _exit_2(_plan(f, tmp_path), f["constraints"], "not valid YAML")


NAN_USE = {"window_seconds": 60, "samples": 1, "cpu_usage_percent": float("nan")}


@pytest.mark.parametrize("edit", [{"cpus": 10**30}, {"memory_mb": -1}, {"utilisation": NAN_USE},
                                  {"disks": [{"key": 1, "capacity_bytes": 2**70}]}])
def test_inventory_numbers_out_of_range(tmp_path: Path, edit: dict[str, Any]) -> None:
    """VM sizes beyond any real VM, negative or NaN are exit 2 naming the VM's field."""
    inventory = copy.deepcopy(bases().inventory)
    inventory["vms"][1].update(edit)
    f = _files(tmp_path, inventory=inventory)
    _exit_2(["graph", "--inventory", f["inventory"], "--out", tmp_path / "g.json"], f["inventory"], "vms[1].")


def test_inventory_nested_too_deeply(tmp_path: Path) -> None:
    """JSON nested 100,000 deep is exit 2, not a RecursionError."""
    f = _files(tmp_path)
    f["inventory"].write_text('{"vms": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _exit_2(["graph", "--inventory", f["inventory"], "--out", tmp_path / "g.json"], f["inventory"], "nested too deeply")


@pytest.mark.parametrize("value", ["9" * 5000, "1e400", str(2**61), "0" * 4000 + "1x"])
def test_flow_byte_counts_out_of_range(tmp_path: Path, value: str) -> None:
    """A flows.csv byte count past 1 EiB (or not a number) is exit 2 naming row and column."""
    rows = copy.deepcopy(bases().flows)
    rows[1][rows[0].index("bytes")] = value
    f = _files(tmp_path, flows=rows)
    _exit_2(["graph", "--inventory", f["inventory"], "--flows", f["flows"], "--out", tmp_path / "g.json"],
            f["flows"], "row 2, column bytes")


@pytest.mark.parametrize(("option", "value"), [("--max-vms", str(10**30)), ("--seed", str(10**30)),
                                               ("--max-gb", "inf"), ("--ramp", "9" * 5000)])
def test_plan_options_meet_the_file_ranges(tmp_path: Path, option: str, value: str) -> None:
    """Command-line values are checked against the same ranges as the constraints file."""
    f = _files(tmp_path)
    _exit_2(_plan(f, tmp_path, option, value), option, option)


def test_graph_app_weight_must_be_finite(tmp_path: Path) -> None:
    """--app-weight inf once wrote a graph JSON could not hold (internal error)."""
    f = _files(tmp_path)
    _exit_2(["graph", "--inventory", f["inventory"], "--out", tmp_path / "g.json", "--app-weight", "inf"],
            "--app-weight", "--app-weight")


def test_size_headroom_must_be_finite(tmp_path: Path) -> None:
    """--headroom inf once overflowed in right-sizing (internal error)."""
    f = _files(tmp_path)
    _exit_2(["size", "--inventory", f["inventory"], "--instance-types", f["types"], "--rightsize", "--headroom", "inf"],
            "--headroom", "--headroom")


def test_graph_file_node_sizes(tmp_path: Path) -> None:
    """A graph.json node with a size that is not a number in range is exit 2 naming the node's field."""
    doc = copy.deepcopy(bases().graph)
    doc["graph"]["nodes"][0]["gb"] = "big"
    doc["graph"]["links"][0]["weight"] = 1e300
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(doc))
    output = _exit_2(["plan", "--graph", path, "--out", tmp_path / "p.yaml"], path, "graph.nodes[0].gb")
    assert "graph.links[0].weight" in output


def test_plan_wave_ids_in_range(tmp_path: Path) -> None:
    """plan.yaml wave ids past 10,000 are exit 2 naming the wave."""
    plan = copy.deepcopy(bases().plan)
    plan["waves"][0]["id"] = 10**12
    f = _files(tmp_path)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    _exit_2(["validate", path, "--inventory", f["inventory"]], path, "waves[0].id")
