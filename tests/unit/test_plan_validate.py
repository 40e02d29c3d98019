"""evaluate() on hand-edited plans: every kind of violation is caught, with its field and the VMs named."""

from __future__ import annotations

from typing import Any

import networkx as nx
import pytest

from migrate.core.errors import InputError
from planners.evaluate import evaluate
from planners.plan_model import Constraints, Plan, Violation
from tests.unit.test_planner import graph_of


def base_graph() -> nx.Graph:
    """a=b hard pair, c/d keep-apart, e free; app crm = a, b; app shop = e."""
    nodes: dict[str, dict[str, Any]] = {"a": {"app": "crm"}, "b": {"app": "crm"}, "c": {}, "d": {},
                                        "e": {"app": "shop"}}
    return graph_of(nodes, [("a", "b", 0, True), ("b", "c", 5), ("d", "e", 3)], keep_apart=[("c", "d")])


def plan_of(*waves: list[str], excluded: list[dict[str, str]] | None = None, **constraints: object) -> Plan:
    """A plan as a person would write it: waves of VM names turned into ids."""
    return Plan.model_validate({
        "constraints": constraints,
        "waves": [{"id": i + 1, "name": f"w{i + 1}", "vms": [f"id-{n}" for n in names]}
                  for i, names in enumerate(waves)],
        "excluded": excluded or []})


def violations(plan: Plan, graph: nx.Graph | None = None, constraints: Constraints | None = None) -> list[Violation]:
    """The violations evaluate() finds."""
    metrics = evaluate(plan, graph if graph is not None else base_graph(), constraints)
    assert metrics.violations == len(metrics.violation_list)
    return metrics.violation_list


def test_a_valid_hand_plan_has_metrics_and_no_violation() -> None:
    """Two waves keeping every rule: metrics are computed, nothing is reported."""
    metrics = evaluate(plan_of(["a", "b", "c"], ["d", "e"], max_vms=3), base_graph())
    assert metrics.violation_list == [] and metrics.waves == 2 and metrics.lower_bound == 2
    assert (metrics.cut_weight, metrics.total_weight, metrics.max_wave_vms) == (0.0, 8.0, 3)
    assert [w.vms for w in metrics.per_wave] == [3, 2]


def test_unknown_duplicated_and_missing_vms() -> None:
    """An unknown id, a VM listed twice and a VM in no wave are each reported where they are."""
    found = violations(plan_of(["a", "b", "c", "zz"], ["d", "c"]))
    by_field = {v.field: v.message for v in found}
    assert "unknown VM 'id-zz'" in by_field["waves[0].vms[3]"]
    assert "listed twice: also at waves[0].vms[2]" in by_field["waves[1].vms[1]"]
    assert "VM e (id-e) is in no wave and not excluded" in by_field["waves"]


def test_split_group_and_keep_apart_together() -> None:
    """Moving b away from a splits the group; putting c with d breaks keep-apart."""
    found = violations(plan_of(["a", "c", "d"], ["b", "e"]))
    messages = {v.field: v for v in found}
    assert "must-move group split: a in wave 1; b in wave 2" in messages["waves[1].vms[0]"].message
    assert messages["waves[1].vms[0]"].vms == ["id-a", "id-b"]
    assert "c and d must stay apart (HA) but are both in wave 1" in messages["waves[0].vms[2]"].message


def test_capacity_and_ramp() -> None:
    """Wave 1 over the ramp cap and wave 2 over max_gb are both reported on the wave's vms."""
    found = violations(plan_of(["a", "b", "c"], ["d", "e"], max_vms=3, ramp=[2], max_gb=15))
    messages = [v.message for v in found]
    assert ("waves[0].vms", "wave 1 has 3 VMs, more than its cap of 2 (ramp)") in [(v.field, v.message) for v in found]
    assert any("wave 2 has 20 GB, more than max_gb 15" in m for m in messages)


def test_precedence_pins_and_exclusions() -> None:
    """app:shop before app:crm is broken; a pin to wave 1 is broken; an excluded VM sits in a wave."""
    constraints: dict[str, Any] = {"precedence": [{"before": "app:shop", "after": "app:crm"}],
                   "pins": [{"vm": "d", "wave": 1}, {"vm": "c", "exclude": "retired"}]}
    found = violations(plan_of(["a", "b", "c"], ["d", "e"], **constraints))
    text = {v.field: v.message for v in found}
    assert "constraints.precedence[0] (app:shop before app:crm): e is in wave 2 but must move before a" in \
        text["waves[0].vms[0]"]
    assert "d is pinned to wave 1 by constraints.pins[0].vm but is in wave 2" in text["waves[1].vms[0]"]
    assert "c is excluded by constraints.pins[1].vm (retired) but is in wave 1" in text["waves[0].vms[2]"]


def test_hand_excluded_vm_of_a_group() -> None:
    """Excluding b by hand while a moves splits the group; a hand exclusion of a free VM is fine."""
    found = violations(plan_of(["a", "c"], ["d"], excluded=[{"id": "id-b", "reason": "x"},
                                                           {"id": "id-e", "reason": "retired"}]))
    assert [v.field for v in found] == ["excluded[0].id"]
    assert "a in wave 1; b in excluded" in found[0].message


def test_windows_order_and_allowed_windows() -> None:
    """A wave window starting before the previous one ends, and one outside every allowed window."""
    plan = plan_of(["a", "b", "c"], ["d", "e"],
                   windows=[{"start": "2025-03-01T00:00:00Z", "end": "2025-03-01T10:00:00Z"}])
    plan.waves[0].window = plan.constraints.windows[0]
    plan.waves[1].window = type(plan.constraints.windows[0]).model_validate(
        {"start": "2025-03-01T09:00:00Z", "end": "2025-03-01T12:00:00Z"})
    found = violations(plan)
    assert [v.field for v in found] == ["waves[1].window", "waves[1].window"]
    assert "before the window of waves[0] ends" in found[0].message
    assert "none of the allowed windows" in found[1].message


def test_wave_ids_and_vm_names_must_match() -> None:
    """Reordered waves need renumbered ids; vm_names must stay parallel to vms."""
    plan = plan_of(["a", "b", "c"], ["d", "e"])
    plan.waves.reverse()
    plan.waves[0].vm_names = ["d", "x"]
    plan.waves[1].vm_names = ["a"]
    found = {v.field: v.message for v in violations(plan)}
    assert "is 2 but this is wave 1" in found["waves[0].id"] and "waves[1].id" in found
    assert "is 'x' but waves[0].vms[1] is VM 'e'" in found["waves[0].vm_names[1]"]
    assert "has 1 names for 3 VMs" in found["waves[1].vm_names"]


def test_explicit_constraints_override_the_plan_and_bad_ones_are_input_errors() -> None:
    """Given constraints replace the plan's own; unresolvable ones raise InputError, not violations."""
    plan = plan_of(["a", "b", "c"], ["d", "e"], max_vms=1)
    assert violations(plan, constraints=Constraints(max_vms=3)) == []
    assert len(violations(plan)) == 2
    with pytest.raises(InputError) as info:
        evaluate(plan, base_graph(), Constraints(pins=[{"vm": "nobody", "wave": 1}]), constraints_file="c.yaml")
    assert [(p.file, p.field) for p in info.value.problems] == [("c.yaml", "pins[0].vm")]
