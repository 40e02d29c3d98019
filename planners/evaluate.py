"""Metrics and violations of any plan, including one edited by hand, checked VM by VM.

This is deliberately independent of how the planner works: it reads the plan as written (wave list
order is execution order) and checks every rule against the graph and the constraints. Edges to VMs
that are not in a wave (excluded or missing) count in no metric.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import networkx as nx

from planners.feasibility import lower_bound
from planners.plan_model import Constraints, Plan, PlanMetrics, Violation, WaveMetrics
from planners.rule_report import hard_rule_violations, rule_outcomes
from planners.units import Instance, build_instance, edge_weight, names_text

__all__ = ["evaluate", "evaluate_instance"]

_EPS = 1e-9


class _Checker:
    """Walks a plan once, collecting positions and violations."""

    def __init__(self, plan: Plan, graph: nx.Graph) -> None:
        self.plan = plan
        self.graph = graph
        self.node = {str(n): n for n in graph.nodes}
        self.violations: list[Violation] = []
        self.pos: dict[str, int] = {}                 # VM id -> wave position (0-based)
        self.where: dict[str, str] = {}               # VM id -> field where it is (first place)
        self.excluded: dict[str, str] = {}

    def add(self, where: str, message: str, vms: list[str] | None = None) -> None:
        self.violations.append(Violation(field=where, message=message, vms=vms or []))

    def name(self, vm: str) -> str:
        return str(self.graph.nodes[self.node[vm]].get("name") or vm)

    def walk(self) -> None:
        for i, wave in enumerate(self.plan.waves):
            if wave.id != i + 1:
                self.add(f"waves[{i}].id", f"is {wave.id} but this is wave {i + 1} in execution order: "
                         "number waves 1..N in list order")
            for j, vm in enumerate(wave.vms):
                self.place(vm, f"waves[{i}].vms[{j}]", i)
            if wave.vm_names is not None:
                self.names(i, wave.vms, wave.vm_names)
        for j, entry in enumerate(self.plan.excluded):
            self.place(entry.id, f"excluded[{j}].id", None)
            if entry.id in self.node and entry.id not in self.excluded:
                self.excluded[entry.id] = entry.reason
        missing = [vm for vm in self.node if vm not in self.where]
        for vm in missing:
            self.add("waves", f"VM {self.name(vm)} ({vm}) is in no wave and not excluded", [vm])

    def place(self, vm: str, where: str, wave: int | None) -> None:
        if vm not in self.node:
            self.add(where, f"unknown VM {vm!r}: not in the inventory or graph", [vm])
            return
        if vm in self.where:
            self.add(where, f"VM {self.name(vm)} ({vm}) is listed twice: also at {self.where[vm]}", [vm])
            return
        self.where[vm] = where
        if wave is not None:
            self.pos[vm] = wave

    def names(self, i: int, vms: list[str], names: list[str]) -> None:
        if len(names) != len(vms):
            self.add(f"waves[{i}].vm_names", f"has {len(names)} names for {len(vms)} VMs: keep vm_names parallel "
                     "to vms, or delete it")
            return
        for j, (vm, name) in enumerate(zip(vms, names, strict=True)):
            if vm in self.node and self.name(vm) != name:
                self.add(f"waves[{i}].vm_names[{j}]", f"is {name!r} but waves[{i}].vms[{j}] is VM "
                         f"{self.name(vm)!r}: move ids, not only names", [vm])


def _rules(ck: _Checker, inst: Instance, constraints: Constraints, prefix: str) -> None:
    """Hard groups, keep-apart, precedence and pins."""
    groups: dict[int, list[int]] = defaultdict(list)
    for k, unit in enumerate(inst.unit_of):
        groups[unit].append(k)
    for unit, members in groups.items():
        if len(members) < 2:
            continue
        spots: dict[int, list[int]] = defaultdict(list)
        for k in members:
            vm = inst.ids[k]
            if vm in ck.pos or vm in ck.excluded:
                spots[ck.pos.get(vm, -1)].append(k)
        if len(spots) > 1:
            ordered = sorted(spots.items(), key=lambda item: (item[0] < 0, item[0]))
            text = "; ".join(f"{names_text((inst.names[k] for k in ks), 4)} in "
                             f"{'wave ' + str(w + 1) if w >= 0 else 'excluded'}" for w, ks in ordered)
            moved = [inst.ids[k] for _, ks in ordered for k in ks]
            ck.add(ck.where[inst.ids[ordered[1][1][0]]],
                   f"must-move group split: {text} ({inst.describe(unit)})", moved)
    for a, b, reason in inst.keep_apart_vms:
        va, vb = inst.ids[a], inst.ids[b]
        if va in ck.pos and ck.pos.get(va) == ck.pos.get(vb):
            ck.add(ck.where[vb], f"{inst.names[a]} and {inst.names[b]} must stay apart ({reason}) but are both in "
                   f"wave {ck.pos[va] + 1}", [va, vb])
    for rule in inst.precedence:
        before = [(ck.pos[vm], vm) for u in rule.before for k in inst.members[u] if (vm := inst.ids[k]) in ck.pos]
        after = [(ck.pos[vm], vm) for u in rule.after for k in inst.members[u] if (vm := inst.ids[k]) in ck.pos]
        if before and after and max(before)[0] + rule.gap > min(after)[0]:
            (wb, vb), (wa, va) = max(before), min(after)
            ck.add(ck.where[va], f"{rule.label} ({rule.text}): {ck.name(vb)} is in wave {wb + 1} but must move "
                   f"{'before' if rule.gap else 'no later than'} {ck.name(va)}, in wave {wa + 1}", [vb, va])
    for unit, pin in enumerate(inst.pin):
        if pin is None:
            continue
        for k in inst.members[unit]:
            vm = inst.ids[k]
            if vm in ck.pos and ck.pos[vm] != pin:
                ck.add(ck.where[vm], f"{inst.names[k]} is pinned to wave {pin + 1} by {inst.pin_field[unit]} but "
                       f"is in wave {ck.pos[vm] + 1}", [vm])
    for vm, exclusion in inst.excluded.items():
        if vm in ck.pos:
            ck.add(ck.where[vm], f"{ck.name(vm)} is excluded by {exclusion.field} ({exclusion.reason}) but is in "
                   f"wave {ck.pos[vm] + 1}", [vm])
    _windows(ck, constraints, prefix)
    if inst.rules is not None:
        pos = [ck.pos.get(vm) for vm in inst.ids]
        for where, message, vms in hard_rule_violations(inst, inst.rules, pos):
            ck.add(where, message, [inst.ids[k] for k in vms])


def _windows(ck: _Checker, constraints: Constraints, prefix: str) -> None:
    previous: tuple[int, Any] | None = None
    allowed = constraints.windows
    for i, wave in enumerate(ck.plan.waves):
        if wave.window is None:
            continue
        if previous is not None and wave.window.start < previous[1].end:
            ck.add(f"waves[{i}].window", f"starts {wave.window.start.isoformat()}, before the window of waves"
                   f"[{previous[0]}] ends ({previous[1].end.isoformat()}): windows must follow the wave order")
        if allowed and not any(w.start <= wave.window.start and wave.window.end <= w.end for w in allowed):
            ck.add(f"waves[{i}].window", f"{wave.window.start.isoformat()} - {wave.window.end.isoformat()} is in "
                   f"none of the allowed windows ({prefix}windows)")
        previous = (i, wave.window)


def _metrics(ck: _Checker, inst: Instance) -> PlanMetrics:
    k = len(ck.plan.waves)
    vms, gb = [0] * k, [0.0] * k
    internal, cut_by = [0.0] * k, [0.0] * k
    for vm, p in ck.pos.items():
        vms[p] += 1
        gb[p] += float(ck.graph.nodes[ck.node[vm]].get("gb") or 0.0)
    total = cut = spread = 0.0
    for x, y, data in ck.graph.edges(data=True):
        px, py = ck.pos.get(str(x)), ck.pos.get(str(y))
        if px is None or py is None or x == y:
            continue
        w = edge_weight(data)
        total += w
        if px == py:
            internal[px] += w
        else:
            cut += w
            spread += w * abs(px - py)
            cut_by[px] += w
            cut_by[py] += w
    cap = inst.capacity
    for i in range(k):
        if vms[i] > cap.vms(i):
            ck.add(f"waves[{i}].vms", f"wave {i + 1} has {vms[i]} VMs, more than its cap of {cap.vms(i):g}"
                   + (" (ramp)" if i < len(cap.ramp) else ""))
        if gb[i] > cap.gb(i) + _EPS:
            ck.add(f"waves[{i}].vms", f"wave {i + 1} has {gb[i]:g} GB, more than max_gb {cap.gb(i):g}")
    bound = lower_bound(inst)
    outcomes = rule_outcomes(inst.rules, [ck.pos.get(vm) for vm in inst.ids]) if inst.rules is not None else None
    return PlanMetrics(
        waves=k, lower_bound=bound.value, lower_bound_by=bound.parts, cut_weight=round(cut, 6),
        total_weight=round(total, 6),
        cut_fraction=round(cut / total, 6) if total else 0.0, exposure=round(spread / total, 6) if total else 0.0,
        max_wave_vms=max(vms, default=0), max_wave_gb=round(max(gb, default=0.0), 3),
        per_wave=[WaveMetrics(wave=i + 1, vms=vms[i], gb=round(gb[i], 3), internal_weight=round(internal[i], 6),
                              cut_weight=round(cut_by[i], 6)) for i in range(k)],
        rules=outcomes, rule_cost=round(sum(o.cost for o in outcomes.values()), 6) if outcomes is not None else None,
        violations=len(ck.violations), violation_list=list(ck.violations))


def evaluate(plan: Plan, graph: nx.Graph, constraints: Constraints | None = None, *,
             constraints_file: str = "constraints", prefix: str = "", graph_file: str = "graph") -> PlanMetrics:
    """The metrics of `plan` and, in `violation_list`, every rule it breaks (`violations` counts them).

    Constraints default to the plan's own `constraints`. Constraints that cannot be resolved against
    the graph (unknown names, contradictions) raise InputError: that is bad input, not a bad plan.
    """
    if constraints is None:
        constraints, prefix = plan.constraints, prefix or "constraints."
    inst = build_instance(graph, constraints, constraints_file=constraints_file, prefix=prefix, graph_file=graph_file)
    return evaluate_instance(inst, plan, constraints, prefix)


def evaluate_instance(inst: Instance, plan: Plan, constraints: Constraints, prefix: str = "") -> PlanMetrics:
    """evaluate() on an instance already built from the same graph and constraints."""
    ck = _Checker(plan, inst.graph)
    ck.walk()
    _rules(ck, inst, constraints, prefix)
    return _metrics(ck, inst)
