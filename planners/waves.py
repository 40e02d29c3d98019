"""Wave planning: the fewest waves capacity allows, then the least dependency weight cut between waves.

    from planners import plan_waves, Constraints
    plan = plan_waves(graph, Constraints(max_vms=50, ramp=[5, 15]))

Objectives, in strict order: (1) break no hard constraint (capacity, ramp, must-move groups,
keep-apart, precedence, pins, hard policy rules); (2) as few waves as possible: from the lower bound
up, the first count for which a plan is found; (3) least cut weight plus the cost of soft policy rules
(rule_model.py); (4) least exposure (split dependencies reunite soon); (5) balanced waves. Method: hard
groups (and what hard rules join) are contracted into units. Instances small enough are searched
exhaustively (exact.py: a proven optimum). Otherwise, for each of a few seeded restarts, a greedy
graph-growing pass fills waves in order (partition.py), FM refinement improves it (refine.py), the
waves are put in the order of least exposure (ordering.py) and refined again, then rule-aware moves
and swaps (penalty.py); KaHIP's blocks are one more start where they may be used (kahip_start.py); the
best candidate of a small instance gets kicks of iterated local search (polish.py); with soft rules, the
rules planned as hard ones are one more start (_hardened). The best candidate wins. Infeasible input
raises InputError naming every problem and the VMs involved.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import networkx as nx

from migrate.core.errors import InputError, Problem
from planners.bound import BOUND_TEXT, cut_lower_bound
from planners.coarsen import hierarchy
from planners.evaluate import evaluate_instance
from planners.exact import exact_fits, solve_exact
from planners.explain import wave_sizes, wave_whys
from planners.feasibility import check_feasible, latest_waves, lower_bound, topological_order
from planners.kahip_start import kahip_starts
from planners.ordering import order_waves
from planners.partition import construct, first_fit
from planners.penalty import improve, soft_cost
from planners.plan_model import Constraints, Excluded, Plan, PlanSource, Wave
from planners.polish import POLISH_UNITS, polish
from planners.refine import FULL_SCAN_UNITS, MIN_PASS_GAIN, WaveState, balance, refine
from planners.rule_report import RULE_NAMES
from planners.units import Instance, build_instance

__all__ = ["PLANNER_VERSION", "plan_waves"]

PLANNER_VERSION = "waves-1"
RESTART_BUDGET = 200_000       # restarts * (units + unit edges) stays near this, between 1 and MAX_RESTARTS
MAX_RESTARTS = 8                # plus one from KaHIP's blocks where they may be used (planners.kahip_start)
HARDENED_RESTARTS = 2          # restarts of each hardened variant of the soft rules (_hardened)
FAILED_TRIES = 3               # constructions that may fail before trying one wave more
COARSE_TARGET = 64             # coarsen down to about max(this, 8 * waves) units
COARSE_UNITS = 3000            # a coarsest level this small gets COARSE_TRIES constructions
COARSE_TRIES = 4
LARGE_MIN_PASS_GAIN = 1e-3     # on instances of more than FULL_SCAN_UNITS units, fewer passes per level


@dataclass
class _Candidate:
    wave: list[int]            # per unit, 0-based position
    k: int
    score: tuple[int, int, int, int]
    proven: bool = False       # found by exhaustive search: no plan of k waves scores better


def _score(inst: Instance, wave: list[int], k: int) -> tuple[int, int, int, int]:
    quantum = max(inst.total_weight, 1.0) * 1e-10
    cut = spread = 0.0
    for u, adj in enumerate(inst.adj):
        a = wave[u]
        for v, x in adj.items():
            if wave[v] != a:
                cut += x
                spread += x * abs(wave[v] - a)
    loads = [0] * k
    for u, a in enumerate(wave):
        loads[a] += inst.count[u]
    cost = cut / 2 + soft_cost(inst, wave, k)
    return k, round(cost / quantum), round(spread / 2 / quantum), sum(x * x for x in loads)


def _compact(inst: Instance, wave: list[int], k: int) -> tuple[list[int], int]:
    """Drop empty waves when pins and ramp caps allow the later waves to move up."""
    loads_c, loads_g = [0] * k, [0.0] * k
    pinned: dict[int, int] = {}
    earliest = [0] * k
    for u, a in enumerate(wave):
        loads_c[a] += inst.count[u]
        loads_g[a] += inst.gb[u]
        earliest[a] = max(earliest[a], inst.min_wave[u])
        if inst.pin[u] is not None:
            pinned[a] = a
    keep = list(range(k))
    cap = inst.capacity
    for empty in [w for w in reversed(range(k)) if loads_c[w] == 0]:
        trial = [w for w in keep if w != empty]
        if all(pinned.get(w, p) == p and earliest[w] <= p and loads_c[w] <= cap.vms(p)
               and loads_g[w] <= cap.gb(p) + 1e-9 for p, w in enumerate(trial)):
            keep = trial
    if len(keep) == k:
        return wave, k
    new = {w: p for p, w in enumerate(keep)}
    return [new[a] for a in wave], len(keep)


def _initial(levels: list[Instance], k: int, rng: random.Random, restart: int,
             min_gain: float) -> tuple[int, WaveState] | None:
    """Construct and refine on the coarsest level that gives a plan, best of a few tries when it is small."""
    for depth in range(len(levels) - 1, -1, -1):
        level = levels[depth]
        order, _ = topological_order(level)
        latest = latest_waves(level, order, k)
        tries = COARSE_TRIES if level.units <= COARSE_UNITS else 2
        best: tuple[tuple[int, int, int, int], WaveState] | None = None
        for attempt in range(tries):
            assign = construct(level, k, latest, rng, random_seed_units=restart > 0 or attempt > 1,
                               fill=float(attempt % 2))
            if assign is None:
                continue
            st = WaveState(level, assign, k)
            refine(st, rng, min_gain=min_gain)
            score = _score(level, st.wave, k)
            if best is None or score < best[0]:
                best = (score, st)
        if best is None:
            assign = first_fit(level, k, latest)
            if assign is not None:
                st = WaveState(level, assign, k)
                refine(st, rng, min_gain=min_gain)
                best = (_score(level, st.wave, k), st)
        if best is not None:
            return depth, best[1]
    return None


def _reordered(level: Instance, st: WaveState, k: int, rng: random.Random, min_gain: float) -> WaveState:
    """The waves in the order of least exposure, refined again if the order changed."""
    order = order_waves(level, st.wave, k)
    if order == list(range(k)):
        return st
    position = {old: new for new, old in enumerate(order)}
    st = WaveState(level, [position[a] for a in st.wave], k)
    refine(st, rng, min_gain=min_gain)
    return st


def _attempt(inst: Instance, k: int, rng: random.Random, restart: int) -> _Candidate | None:
    levels = [inst]
    maps = []
    for coarse, cmap in hierarchy(inst, rng, k, target=max(COARSE_TARGET, 8 * k)):
        levels.append(coarse)
        maps.append(cmap)
    min_gain = MIN_PASS_GAIN if inst.units <= FULL_SCAN_UNITS else LARGE_MIN_PASS_GAIN
    start = _initial(levels, k, rng, restart, min_gain)
    if start is None:
        return None
    depth, st = start
    if depth:
        st = _reordered(levels[depth], st, k, rng, min_gain)   # order on the small level first
    while depth > 0:
        depth -= 1
        cmap = maps[depth]
        st = WaveState(levels[depth], [st.wave[cmap[u]] for u in range(levels[depth].units)], k)
        refine(st, rng, min_gain=min_gain)
    return _finish(inst, st, k, rng, min_gain)


def _finish(inst: Instance, st: WaveState, k: int, rng: random.Random, min_gain: float) -> _Candidate:
    """Order the waves, apply the rule-aware moves and balancing, drop empty waves: a candidate plan."""
    st = _reordered(inst, st, k, rng, min_gain)
    improve(st)
    balance(st)
    wave, k2 = _compact(inst, st.wave, k)
    return _Candidate(wave, k2, _score(inst, wave, k2))


def _from_kahip(inst: Instance, k: int, seed: int) -> _Candidate | None:
    """The best of KaHIP's blocks, when it may be used and they keep every hard constraint, refined and ordered."""
    best: _Candidate | None = None
    min_gain = MIN_PASS_GAIN if inst.units <= FULL_SCAN_UNITS else LARGE_MIN_PASS_GAIN
    for i, start in enumerate(kahip_starts(inst, k, seed)):
        rng = random.Random(f"{seed}:{k}:kahip{i}")  # noqa: S311 (planning choices, not secrets)
        st = WaveState(inst, start, k)
        refine(st, rng, min_gain=min_gain)
        found = _finish(inst, st, k, rng, min_gain)
        if best is None or found.score < best.score:
            best = found
    return best


def restarts_for(inst: Instance) -> int:
    """How many seeded restarts an instance of this size gets."""
    size = inst.units + sum(len(a) for a in inst.adj) // 2
    return max(1, min(MAX_RESTARTS, RESTART_BUDGET // max(size, 1)))


def _exact(inst: Instance, bound: int) -> _Candidate | None:
    """The proven best plan when the instance is small enough to search exhaustively, else None."""
    for k in range(max(bound, 1), inst.units + 1):
        if not exact_fits(inst, k):
            return None
        wave = solve_exact(inst, k, functools.partial(_score, inst, k=k))
        if wave is not None:
            return _Candidate(wave, k, _score(inst, wave, k), proven=True)
    return None


def _search(inst: Instance, order: list[int], early: list[int], bound: int, seed: int,
            most: int | None = None, restarts: int | None = None) -> _Candidate:
    restarts = restarts_for(inst) if restarts is None else min(restarts, restarts_for(inst))
    limit = bound + inst.units + len(inst.capacity.ramp) + 1 if most is None else most
    for k in range(max(bound, 1), limit + 1):
        latest = latest_waves(inst, order, k)
        if any(e > late for e, late in zip(early, latest, strict=True)):
            continue
        best = _from_kahip(inst, k, seed)
        failed = 0
        for restart in range(restarts):
            rng = random.Random(f"{seed}:{k}:{restart}")  # noqa: S311 (planning choices, not secrets)
            found = _attempt(inst, k, rng, restart)
            if found is None:
                failed += 1
                if best is None and failed >= FAILED_TRIES:
                    break
                continue
            if best is None or found.score < best.score:
                best = found
        if best is not None:
            return _polished(inst, best, seed) if inst.units <= POLISH_UNITS else best
    raise InputError([Problem(inst.constraints_file, "", "found no plan that respects every constraint "
                              "(capacity, ramp, keep-apart, precedence and pins together)")])


def _polished(inst: Instance, best: _Candidate, seed: int) -> _Candidate:
    """The best candidate after iterated local search (planners.polish), ordered and compacted again."""
    rng = random.Random(f"{seed}:{best.k}:polish")  # noqa: S311 (planning choices, not secrets)
    wave = polish(inst, best.wave, best.k, rng, functools.partial(_score, inst, k=best.k))
    if wave == best.wave:
        return best
    found = _finish(inst, WaveState(inst, wave, best.k), best.k, rng, MIN_PASS_GAIN)
    return found if found.score < best.score else best


def _hardened(graph: nx.Graph, constraints: Constraints, inst: Instance, found: _Candidate) -> _Candidate | None:
    """The soft rules planned as hard ones at the same wave count, then costed and improved as soft: a start
    the cut-first search does not reach (e.g. every dev VM before every prod VM). None when that is infeasible."""
    rules = constraints.rules
    soft = [n for n in RULE_NAMES if rules is not None and (r := getattr(rules, n)) is not None and not r.hard]
    if rules is None or not soft:
        return None
    variants = [soft, [n for n in soft if n != "dependencies_first"],
                [n for n in soft if n not in ("dependencies_first", "no_mixed_environments")],
                [n for n in soft if n == "environment_order"]]
    for names in dict.fromkeys(tuple(v) for v in variants if v):
        hard = rules.model_copy(update={n: getattr(rules, n).model_copy(update={"hard": True, "weight": None})
                                        for n in names})
        try:
            strict = build_instance(graph, constraints.model_copy(update={"rules": hard}))
            order, early = check_feasible(strict)
            if lower_bound(strict, order).value > found.k:
                continue
            alt = _search(strict, order, early, found.k, constraints.seed, most=found.k, restarts=HARDENED_RESTARTS)
        except InputError:
            continue
        vm_wave = [alt.wave[u] for u in strict.unit_of]          # both instances list the same VMs in order
        st = WaveState(inst, [vm_wave[inst.members[u][0]] for u in range(inst.units)], alt.k)
        improve(st)
        return _Candidate(st.wave, alt.k, _score(inst, st.wave, alt.k))
    return None


def _assemble(inst: Instance, found: _Candidate, constraints: Constraints,
              source: Mapping[str, str | None] | None) -> Plan:
    vm_wave = [found.wave[inst.unit_of[k]] for k in range(len(inst.ids))]
    members: list[list[int]] = [[] for _ in range(found.k)]
    for k, w in enumerate(vm_wave):
        members[w].append(k)
    sizes = wave_sizes(inst, vm_wave, found.k)
    whys = wave_whys(inst, vm_wave, found.k)
    windows = constraints.windows
    waves = []
    for w in range(found.k):
        vms = sorted(members[w], key=lambda k: (inst.names[k], inst.ids[k]))
        waves.append(Wave(id=w + 1, name=f"wave-{w + 1:02d}", vms=[inst.ids[k] for k in vms],
                          vm_names=[inst.names[k] for k in vms], window=windows[w] if w < len(windows) else None,
                          size=sizes[w], why=whys[w]))
    names = {str(n): str(d.get("name") or n) for n, d in inst.graph.nodes(data=True) if str(n) in inst.excluded}
    excluded = [Excluded(id=vm, name=names.get(vm), reason=e.reason)
                for vm, e in sorted(inst.excluded.items(), key=lambda item: (names.get(item[0], ""), item[0]))
                if vm in names]
    warnings = list(inst.warnings)
    if windows and found.k > len(windows):
        warnings.append(f"{found.k - len(windows)} wave(s) have no cutover window: the constraints list "
                        f"{len(windows)} window(s) for {found.k} waves")
    src = PlanSource(generated_at=datetime.now(UTC).replace(microsecond=0), planner=PLANNER_VERSION,
                     seed=constraints.seed, **dict(source or {}))
    return Plan(source=src, constraints=constraints, waves=waves, excluded=excluded, warnings=warnings)


def plan_waves(graph: nx.Graph, constraints: Constraints | None = None, *, constraints_file: str = "constraints",
               graph_file: str = "graph", source: Mapping[str, str | None] | None = None) -> Plan:
    """Plan migration waves for `graph` under `constraints`; InputError lists every reason it cannot.

    `source` fills plan.source (inventory, flows, links, graph, constraints file names).
    """
    constraints = constraints or Constraints()
    inst = build_instance(graph, constraints, constraints_file=constraints_file, graph_file=graph_file, strict=False)
    order, early = check_feasible(inst)
    bound = lower_bound(inst, order)
    found = (_exact(inst, bound.value) or _search(inst, order, early, bound.value, constraints.seed)) if inst.units \
        else _Candidate([], 0, (0, 0, 0, 0), proven=True)
    if not found.proven and (alt := _hardened(graph, constraints, inst, found)) is not None and alt.score < found.score:
        found = alt
    plan = _assemble(inst, found, constraints, source)
    metrics = evaluate_instance(inst, plan, constraints)
    if metrics.violations:
        details = "; ".join(f"{v.field}: {v.message}" for v in metrics.violation_list[:5])
        raise RuntimeError(f"the planner broke {metrics.violations} rule(s), a bug: {details}")
    if found.k > bound.value + 1:
        plan.warnings.append(f"{found.k} waves, {found.k - bound.value} more than the lower bound {bound.value}: "
                             "keep-apart pairs, precedence or pins leave no tighter plan this planner can find")
    if found.proven:
        metrics.cost_bound = round(metrics.cut_weight + (metrics.rule_cost or 0.0), 6)
        metrics.cost_bound_by = (f"proven optimum: exhaustive search of every assignment of {inst.units} units to "
                                 f"{found.k} waves")
    else:
        metrics.cost_bound = math.floor(cut_lower_bound(inst) * 1e6) / 1e6
        metrics.cost_bound_by = BOUND_TEXT
    plan.metrics = metrics
    return plan
