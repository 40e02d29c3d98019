"""Reading and writing plan.yaml and constraints.yaml (validated, every bad field named; written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migrate.core.errors import InputError, Problem
from migrate.core.fileio import atomic_write, load_yaml_mapping, validation_problems
from migrate.core.models.inventory import MAX_VMS
from planners.plan_model import Constraints, Plan

__all__ = ["PLAN_HEADER", "load_constraints", "load_plan", "merge_constraints", "parse_ramp", "plan_document",
           "plan_yaml", "write_plan"]

PLAN_HEADER = ("# Migration wave plan (migrate plan). Edit freely: reorder waves (renumber `id` 1..N in list\n"
               "# order), move VM ids between waves (keep `vm_names` parallel or delete it), then run\n"
               "# `migrate validate` to re-check every rule. `size`, `why` and `metrics` are not re-read, nor\n"
               "# `readiness` (notes for reviewers: VMs some readiness rule found something on; `migrate assess`).\n")


class _Flow(dict[str, Any]):
    """A mapping written on one line (a readiness verdict map, finding or unknown fact: one line each in a diff)."""


class _FlowList(list[Any]):
    """A list written on one line."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """The safe dumper (libyaml's when there), writing `_Flow` mappings in flow style."""


def _flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


def _flow_list(dumper: yaml.SafeDumper, data: _FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(_Flow, _flow)
_Dumper.add_representer(_FlowList, _flow_list)


def load_constraints(path: str | Path) -> Constraints:
    """Read and validate a constraints file; InputError names every bad field (e.g. pins[2].wave)."""
    path = Path(path)
    return validation_problems(Constraints, load_yaml_mapping(path), str(path))


def load_plan(path: str | Path) -> Plan:
    """Read and validate plan.yaml (its structure; `migrate validate` checks its content)."""
    path = Path(path)
    return validation_problems(Plan, load_yaml_mapping(path), str(path))


def parse_ramp(text: str, option: str = "--ramp") -> list[int]:
    """'5,15' -> [5, 15]; InputError naming the option when an entry is not a whole number >= 1."""
    caps = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdecimal() or len(part) > len(str(MAX_VMS)) or not 1 <= int(part) <= MAX_VMS:
            shown = text if len(text) <= 80 else text[:80] + "..."
            raise InputError.single(option, option, f"expected whole numbers from 1 to {MAX_VMS} separated by "
                                    f"commas, got {shown!r}")
        caps.append(int(part))
    return caps


def merge_constraints(base: Constraints, *, max_vms: int | None = None, max_gb: float | None = None,
                      ramp: list[int] | None = None, seed: int | None = None) -> Constraints:
    """`base` with the command-line values that were given (they win over the file)."""
    update: dict[str, Any] = {}
    for key, value in (("max_vms", max_vms), ("max_gb", max_gb), ("ramp", ramp), ("seed", seed)):
        if value is not None:
            update[key] = value
    if not update:
        return base
    try:   # validated again, so the command line meets the same ranges as the file
        return validation_problems(Constraints, {**base.model_dump(exclude_unset=True), **update}, "command line")
    except InputError as exc:
        options = ["--" + p.field.split("[")[0].replace("_", "-") for p in exc.problems]
        raise InputError(Problem(o, o, p.message) for o, p in zip(options, exc.problems, strict=True)) from None


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as plain YAML-ready data, in the key order people read it."""
    data = plan.model_dump(mode="json", exclude_none=True)
    for wave in data.get("waves", []):
        if wave.get("why") == {"groups": [], "more_groups": 0, "heaviest": []}:
            del wave["why"]
    return data


def plan_yaml(plan: Plan) -> str:
    """plan.yaml text, with the header that tells people how to edit it."""
    data = plan_document(plan)
    readiness = data.get("readiness")
    if readiness is not None:
        readiness["methods"] = _FlowList(readiness["methods"])
        readiness["summary"] = {method: _Flow(counts) for method, counts in readiness["summary"].items()}
        readiness["unknown_facts"] = {rule: _Flow(fact) for rule, fact in readiness["unknown_facts"].items()}
        for vm in readiness["vms"]:
            if "verdicts" in vm:
                vm["verdicts"] = _Flow(vm["verdicts"])
            vm["unknown"] = _FlowList(vm["unknown"])
            vm["findings"] = [_Flow(finding) for finding in vm["findings"]]
            for key in ("unknown", "findings"):   # empty: left out
                if not vm[key]:
                    del vm[key]
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=120)
    return PLAN_HEADER + text


def write_plan(plan: Plan, path: str | Path) -> None:
    """Write plan.yaml atomically (temp file + rename)."""
    atomic_write(Path(path), plan_yaml(plan))
