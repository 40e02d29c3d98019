"""Reading and writing plan.yaml and constraints.yaml (validated, every bad field named; written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migrate.errors import InputError, Problem
from migrate.fileio import atomic_write, load_yaml_mapping, validation_problems
from planners.plan_model import Constraints, Plan

__all__ = ["PLAN_HEADER", "load_constraints", "load_plan", "merge_constraints", "parse_ramp", "plan_document",
           "plan_yaml", "write_plan"]

PLAN_HEADER = ("# Migration wave plan (migrate plan). Edit freely: reorder waves (renumber `id` 1..N in list\n"
               "# order), move VM ids between waves (keep `vm_names` parallel or delete it), then run\n"
               "# `migrate validate` to re-check every rule. `size`, `why` and `metrics` are not re-read.\n")

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


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
        if not part.isdigit() or int(part) < 1:
            raise InputError.single(option, option, f"expected whole numbers >= 1 separated by commas, got {text!r}")
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
    problems: list[Problem] = []
    if max_vms is not None and max_vms < 1:
        problems.append(Problem("--max-vms", "--max-vms", "must be at least 1"))
    if max_gb is not None and not max_gb > 0:
        problems.append(Problem("--max-gb", "--max-gb", "must be more than 0"))
    if problems:
        raise InputError(problems)
    return base.model_copy(update=update)


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as plain YAML-ready data, in the key order people read it."""
    data = plan.model_dump(mode="json", exclude_none=True)
    for wave in data.get("waves", []):
        if wave.get("why") == {"groups": [], "more_groups": 0, "heaviest": []}:
            del wave["why"]
    return data


def plan_yaml(plan: Plan) -> str:
    """plan.yaml text, with the header that tells people how to edit it."""
    text = yaml.dump(plan_document(plan), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=120)
    return PLAN_HEADER + text


def write_plan(plan: Plan, path: str | Path) -> None:
    """Write plan.yaml atomically (temp file + rename)."""
    atomic_write(Path(path), plan_yaml(plan))
