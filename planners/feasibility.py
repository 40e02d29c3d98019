"""What makes a planning instance impossible, and how many waves it needs at least.

Precedence is a DAG over units and rules: unit -> rule for every unit of a rule's `before` side,
rule -> unit for its `after` side; a rule adds one wave. `earliest` and `latest` are the longest-path
bounds of each unit's wave (0-based), pins included.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from migrate.core.errors import InputError, Problem
from planners.units import Instance, names_text

__all__ = ["LowerBound", "check_feasible", "earliest_waves", "latest_waves", "lower_bound", "topological_order"]

_EPS = 1e-9


def topological_order(inst: Instance) -> tuple[list[int], list[int]]:
    """Kahn order of the precedence DAG (units 0..U-1, rules U..U+R-1) and the nodes left on cycles."""
    units = inst.units
    indeg = [len(inst.after_of[u]) for u in range(units)] + [len(p.before) for p in inst.precedence]
    queue = [n for n, d in enumerate(indeg) if d == 0]
    order: list[int] = []
    while queue:
        node = queue.pop()
        order.append(node)
        successors = inst.before_of[node] if node < units else inst.precedence[node - units].after
        offset = units if node < units else 0
        for s in successors:
            indeg[s + offset] -= 1
            if indeg[s + offset] == 0:
                queue.append(s + offset)
    return order, [n for n, d in enumerate(indeg) if d > 0]


def earliest_waves(inst: Instance, order: list[int]) -> tuple[list[int], list[int]]:
    """The earliest wave of every unit (pins as lower bounds) and the predecessor unit that forces it (-1)."""
    units = inst.units
    early = [p if p is not None else inst.min_wave[u] for u, p in enumerate(inst.pin)] + [0] * len(inst.precedence)
    via = [-1] * (units + len(inst.precedence))
    for node in order:
        if node < units:
            for r in inst.before_of[node]:
                if early[node] >= early[units + r] and (via[units + r] == -1 or early[node] > early[units + r]):
                    early[units + r], via[units + r] = early[node], node
        else:
            rule = inst.precedence[node - units]
            for v in rule.after:
                if early[node] + rule.gap > early[v]:
                    early[v], via[v] = early[node] + rule.gap, node
    return early[:units], via


def latest_waves(inst: Instance, order: list[int], waves: int) -> list[int]:
    """The latest wave of every unit in a plan of `waves` waves (pins as upper bounds)."""
    units = inst.units
    late = [p if p is not None else waves - 1 for p in inst.pin] + [waves - 1] * len(inst.precedence)
    for node in reversed(order):
        if node < units:
            for r in inst.after_of[node]:
                late[units + r] = min(late[units + r], late[node])
        else:
            rule = inst.precedence[node - units]
            for u in rule.before:
                late[u] = min(late[u], late[node] - rule.gap)
    return late[:units]


def _cycle(inst: Instance, left: list[int]) -> list[int]:
    """One cycle among the nodes Kahn could not order, as DAG nodes."""
    units = inst.units
    on = set(left)
    node = left[0]
    seen: dict[int, int] = {}
    path: list[int] = []
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        preds = ([units + r for r in inst.after_of[node]] if node < units
                 else inst.precedence[node - units].before)
        node = next(p for p in preds if p in on)
    return list(reversed(path[seen[node]:]))


def _chain(inst: Instance, unit: int, via: list[int]) -> list[str]:
    names = [inst.unit_names(unit)[0]]
    node = via[unit]
    while node != -1:
        if node < inst.units:
            names.append(inst.unit_names(node)[0])
        node = via[node]
    return list(reversed(names))


def check_feasible(inst: Instance) -> tuple[list[int], list[int]]:
    """Raise InputError naming every impossibility; return the topological order and earliest waves."""
    problems: list[Problem] = list(inst.problems)
    cap = inst.capacity
    for u in range(inst.units):
        if inst.count[u] > cap.vms(len(cap.ramp)):
            problems.append(Problem(inst.constraints_file, "max_vms", (
                f"{inst.describe(u)} must move together but has {inst.count[u]} VMs, more than max_vms "
                f"{cap.max_vms}")))
        if inst.gb[u] > cap.gb(0) + _EPS:
            problems.append(Problem(inst.constraints_file, "max_gb", (
                f"{inst.describe(u)} must move together but has {inst.gb[u]:g} GB, more than max_gb {cap.max_gb:g}")))
    order, left = topological_order(inst)
    if left:
        cycle = _cycle(inst, left)
        rules = [inst.precedence[n - inst.units] for n in cycle if n >= inst.units]
        loop = [inst.unit_names(n)[0] for n in cycle if n < inst.units]
        labels = ", ".join(inst.precedence[i].label for i in sorted({n - inst.units for n in cycle if n >= inst.units}))
        problems.append(Problem(inst.constraints_file, labels, (
            f"precedence cycle: {' -> '.join([*loop, loop[0]])} (rules: {'; '.join(r.text for r in rules)})")))
        raise InputError(problems)
    problems += _wave_count_problems(inst)   # before anything is sized by the wave count
    early, via = earliest_waves(inst, order)
    for u, pin in enumerate(inst.pin):
        if pin is not None and early[u] > pin:
            chain = _chain(inst, u, via)
            problems.append(Problem(inst.constraints_file, inst.pin_field[u], (
                f"{inst.unit_names(u)[0]} is pinned to wave {pin + 1} but precedence puts it in wave "
                f"{early[u] + 1} at the earliest: {' -> '.join(chain)}")))
    problems += _pinned_waves(inst)
    if problems:
        raise InputError(problems)
    return order, early


def _first_fit_wave(inst: Instance) -> int:
    """The first wave (0-based) whose VM cap takes the largest unit: the ramp caps of earlier waves are smaller."""
    cap = inst.capacity
    largest = max(inst.count, default=0)
    return next((i for i in range(len(cap.ramp)) if cap.vms(i) >= largest), len(cap.ramp))


def _wave_count_problems(inst: Instance) -> list[Problem]:
    """Pins and ramp caps that would make a plan of more waves than there are units (mostly empty waves)."""
    problems = []
    first = _first_fit_wave(inst)
    if inst.units and first >= inst.units:
        u = inst.count.index(max(inst.count))
        problems.append(Problem(inst.constraints_file, "ramp", (
            f"{inst.describe(u)} has {inst.count[u]} VMs, more than the ramp caps of waves 1 to {first}: a plan "
            f"of {inst.units} units would need empty waves before it; raise the first ramp caps")))
    most = inst.units + min(first, inst.units)
    problems += [Problem(inst.constraints_file, inst.pin_field[u], (
        f"{inst.unit_names(u)[0]} is pinned to wave {pin + 1}, but {most} waves at most can hold the "
        f"{sum(inst.count)} VMs to move: pin it to a wave from 1 to {most}"))
        for u, pin in enumerate(inst.pin) if pin is not None and pin >= most]
    return problems


def _pinned_waves(inst: Instance) -> list[Problem]:
    problems = []
    by_wave: dict[int, list[int]] = defaultdict(list)
    for u, pin in enumerate(inst.pin):
        if pin is not None:
            by_wave[pin].append(u)
    cap = inst.capacity
    for wave, units in sorted(by_wave.items()):
        count, gb = sum(inst.count[u] for u in units), sum(inst.gb[u] for u in units)
        names = names_text(n for u in units for n in inst.unit_names(u))
        fields = ", ".join(sorted({inst.pin_field[u] for u in units}))
        if count > cap.vms(wave):
            problems.append(Problem(inst.constraints_file, fields, (
                f"wave {wave + 1} would hold {count} pinned VMs ({names}), more than its cap of {cap.vms(wave):g}")))
        if gb > cap.gb(wave) + _EPS:
            problems.append(Problem(inst.constraints_file, fields, (
                f"wave {wave + 1} would hold {gb:g} GB of pinned VMs ({names}), more than max_gb {cap.max_gb:g}")))
        if len({inst.env_class[u] for u in units} - {-1}) > 1:
            problems.append(Problem(inst.constraints_file, fields, (
                f"wave {wave + 1} would hold pinned VMs of several environments ({names}), but no wave may "
                "mix environments (rules.no_mixed_environments)")))
        inside = set(units)
        for u in units:
            for v in inst.partners[u]:
                if u < v and v in inside:
                    problems.append(Problem(inst.constraints_file, fields, (
                        f"{inst.describe(u)} and {inst.describe(v)} must stay apart but are both pinned to "
                        f"wave {wave + 1}")))
    return problems


def _class_bound(inst: Instance) -> int:
    """no_mixed_environments (hard): each environment fills waves of its own, at most max_vms VMs each."""
    counts: dict[int, int] = defaultdict(int)
    for u, c in enumerate(inst.env_class):
        if c >= 0:
            counts[c] += inst.count[u]
    cap = inst.capacity.max_vms
    return sum(1 if cap is None else math.ceil(n / cap) for n in counts.values())


@dataclass(frozen=True)
class LowerBound:
    """The fewest waves any plan can have, and what forces it."""

    value: int
    parts: dict[str, int]


def _count_bound(inst: Instance) -> int:
    total = sum(inst.count)
    if total == 0:
        return 0
    cum, k = 0.0, 0
    while cum < total:
        cum += inst.capacity.vms(k)
        k += 1
    return k


def _big_count_bound(inst: Instance) -> int:
    """Units of more than half the VM cap cannot share a wave, and early ramp waves may be too small."""
    cap = inst.capacity
    if cap.max_vms is None:
        return _first_fit_wave(inst) + 1 if inst.units else 0
    big = sorted((c for c in inst.count if 2 * c > cap.max_vms), reverse=True)
    bound = 0
    ramp = len(cap.ramp)
    for j, size in enumerate(big, start=1):
        fitting = [i for i in range(ramp) if cap.vms(i) >= size]
        bound = max(bound, fitting[j - 1] + 1 if j <= len(fitting) else ramp + j - len(fitting))
    return max(bound, _first_fit_wave(inst) + 1 if inst.units else 0)


def lower_bound(inst: Instance, order: list[int] | None = None) -> LowerBound:
    """max(VM count with the ramp, GB bin packing, big groups, longest precedence chain, pins, keep-apart)."""
    cap = inst.capacity
    parts = {"vms": _count_bound(inst), "big_groups": _big_count_bound(inst)}
    if cap.max_gb is not None and inst.units:
        parts["gb"] = max(math.ceil(sum(inst.gb) / cap.max_gb - _EPS),
                          sum(1 for g in inst.gb if g > cap.max_gb / 2 + _EPS))
    if order is None:
        order, left = topological_order(inst)
        order = [] if left else order
    if inst.precedence and order:
        parts["precedence"] = max(earliest_waves(inst, order)[0], default=-1) + 1
    pins = [p for p in inst.pin if p is not None]
    if pins:
        parts["pins"] = max(pins) + 1
    if inst.keep_apart_pairs:
        parts["keep_apart"] = 2
    if any(inst.min_wave):
        parts["critical"] = max(inst.min_wave) + 1
    if any(c >= 0 for c in inst.env_class):
        parts["environments"] = _class_bound(inst)
    return LowerBound(max(parts.values(), default=0), {k: v for k, v in parts.items() if v or k == "vms"})
