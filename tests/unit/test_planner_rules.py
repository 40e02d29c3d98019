"""Policy rules on small random graphs, each plan proven optimal by brute force under the rule.

Brute force enumerates every assignment of VMs to waves, keeps those that respect the caps and the hard
rules (checked here from their definitions, not through the planner), and finds the fewest waves, then
the least cut + soft rule cost. The planner must reach both.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pytest

from migrate.core.errors import InputError
from planners import exact
from planners.bound import cut_lower_bound
from planners.plan_model import Constraints, Plan
from planners.units import build_instance
from planners.waves import plan_waves

ENVS = ["dev", "test", "prod"]
RULES = ("environment_order", "no_mixed_environments", "dependencies_first", "critical_not_before",
         "application_whole")


@dataclass
class Case:
    """VMs v0..vN with env, criticality and app tags, flow edges with a direction, a VM cap."""

    env: list[str | None]
    critical: list[bool]
    app: list[str | None]
    edges: list[tuple[int, int, float]]        # (consumer, provider, weight): the consumer depends on the provider
    max_vms: int

    def graph(self) -> nx.Graph:
        graph = nx.Graph()
        for i in range(len(self.env)):
            tags: dict[str, list[str]] = {}
            if self.env[i]:
                tags["env"] = [str(self.env[i])]
            if self.critical[i]:
                tags["criticality"] = ["high"]
            if self.app[i]:
                tags["app"] = [str(self.app[i])]
            graph.add_node(f"v{i}", name=f"v{i}", app=None, gb=1.0, vcpu=1, memory_mb=1, tags=tags)
        for c, p, w in self.edges:
            graph.add_edge(f"v{c}", f"v{p}", weight=w, hard=False, kinds=["flow"], reasons=["flows"],
                           providers=[f"v{p}"])
        graph.graph["keep_apart"] = []
        return graph


def random_case(rng: random.Random) -> Case:
    n = rng.randint(3, 7)
    edges = {}
    for _ in range(rng.randint(1, 2 * n)):
        c, p = rng.sample(range(n), 2)
        if (p, c) not in edges:
            edges[(c, p)] = float(rng.choice([1, 5, 20, 80, 200]))
    return Case(env=[rng.choice([*ENVS, None]) for _ in range(n)], critical=[rng.random() < 0.3 for _ in range(n)],
                app=[rng.choice(["a", "b", None]) for _ in range(n)],
                edges=[(c, p, w) for (c, p), w in edges.items()], max_vms=rng.randint(2, n))


def violations(case: Case, rule: str, spec: dict[str, Any], wave: tuple[int, ...]) -> int:
    """Violations of one rule by an assignment, from the rule's definition."""
    n = len(wave)
    if rule == "environment_order":
        rank = [ENVS.index(e) if e else None for e in case.env]
        return sum(1 for v in range(n) if rank[v] is not None and any(
            rank[u] is not None and rank[u] < rank[v] and wave[u] > wave[v] for u in range(n)))
    if rule == "no_mixed_environments":
        total = 0
        for w in set(wave):
            counts = Counter(case.env[v] for v in range(n) if wave[v] == w and case.env[v])
            total += sum(counts.values()) - max(counts.values(), default=0)
        return total
    if rule == "dependencies_first":
        return sum(1 for c, p, _ in case.edges if wave[p] > wave[c])
    if rule == "critical_not_before":
        return sum(1 for v in range(n) if case.critical[v] and wave[v] < spec["wave"] - 1)
    total = 0
    for app in {a for a in case.app if a}:
        members = [v for v in range(n) if case.app[v] == app]
        if len(members) <= case.max_vms:
            total += len(members) - max(Counter(wave[v] for v in members).values())
    return total


def brute_force(case: Case, rule: str, spec: dict[str, Any]) -> tuple[int, float] | None:
    """(fewest waves, least cut + rule cost) over every assignment that keeps the caps and hard rules."""
    n = len(case.env)
    for k in range(1, n + 2):
        best: float | None = None
        for wave in itertools.product(range(k), repeat=n):
            loads = Counter(wave)
            if len(loads) < k or max(loads.values()) > case.max_vms:
                continue
            count = violations(case, rule, spec, wave)
            if spec.get("hard") and count:
                continue
            cost = sum(w for c, p, w in case.edges if wave[c] != wave[p]) + (0 if spec.get("hard") else
                                                                              spec["weight"] * count)
            best = cost if best is None else min(best, cost)
        if best is not None:
            return k, best
    return None


def objective(plan: Plan) -> tuple[int, float]:
    m = plan.metrics
    assert m is not None and m.violations == 0 and m.rules is not None
    return m.waves, m.cut_weight + (m.rule_cost or 0.0)


def specs(rule: str) -> list[dict[str, Any]]:
    extra: dict[str, Any] = {"order": ENVS} if rule == "environment_order" else \
        {"wave": 2} if rule == "critical_not_before" else {}
    return [{**extra, "hard": True}, {**extra, "weight": 10.0}, {**extra, "weight": 100.0}]


CASES = 14


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("spec_index", [0, 1, 2], ids=["hard", "weight10", "weight100"])
def test_rule_plans_are_optimal(rule: str, spec_index: int) -> None:
    """On random graphs of 3-7 VMs the plan has the fewest waves, then the least cut + rule cost."""
    rng = random.Random(f"{rule}:{spec_index}")
    spec = specs(rule)[spec_index]
    for _ in range(CASES):
        case = random_case(rng)
        best = brute_force(case, rule, spec)
        constraints = Constraints(max_vms=case.max_vms, rules={rule: spec})
        if best is None:
            with pytest.raises(InputError):
                plan_waves(case.graph(), constraints)
            continue
        plan = plan_waves(case.graph(), constraints)
        waves, cost = objective(plan)
        assert (waves, round(cost, 6)) == (best[0], round(best[1], 6)), (case, plan.metrics)
        assert plan.metrics is not None and plan.metrics.rules is not None
        assert plan.metrics.cost_bound == pytest.approx(cost) and plan.metrics.cost_bound_by is not None
        outcome = plan.metrics.rules[rule]
        wave_of = {vm: w.id - 1 for w in plan.waves for vm in w.vm_names or []}
        assignment = tuple(wave_of[f"v{i}"] for i in range(len(case.env)))
        assert outcome.violations == violations(case, rule, spec, assignment)


@pytest.mark.parametrize("rule", RULES)
def test_heuristic_keeps_hard_rules(rule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the exhaustive search, the heuristic keeps every hard rule, within one wave of the minimum."""
    monkeypatch.setattr(exact, "EXACT_SPACE", 0)
    rng = random.Random(f"heuristic:{rule}")
    spec = specs(rule)[0]
    for _ in range(CASES):
        case = random_case(rng)
        best = brute_force(case, rule, spec)
        if best is None:
            continue
        plan = plan_waves(case.graph(), Constraints(max_vms=case.max_vms, rules={rule: spec}))
        waves, _ = objective(plan)
        wave_of = {vm: w.id - 1 for w in plan.waves for vm in w.vm_names or []}
        assert violations(case, rule, spec, tuple(wave_of[f"v{i}"] for i in range(len(case.env)))) == 0
        assert best[0] <= waves <= best[0] + 1


@pytest.mark.parametrize("spec_index", [0, 1], ids=["hard", "weight10"])
def test_relaxation_bound_never_exceeds_the_optimum(spec_index: int) -> None:
    """The relaxation plan.yaml states for large instances is at most the brute-force optimum."""
    rng = random.Random(f"bound:{spec_index}")
    spec = specs("no_mixed_environments")[spec_index]
    checked = 0
    for _ in range(3 * CASES):
        case = random_case(rng)
        best = brute_force(case, "no_mixed_environments", spec)
        if best is None:
            continue
        inst = build_instance(case.graph(), Constraints(max_vms=case.max_vms,
                                                        rules={"no_mixed_environments": spec}))
        bound = cut_lower_bound(inst)
        assert bound <= best[1] + 1e-9
        checked += bound > 0
    assert checked >= 5
