"""Iterated local search (planners.polish): the memo of improved assignments saves work, never changes a plan."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from planners import polish as polish_module
from planners.instance import Instance
from planners.penalty import improve
from planners.plan_model import Constraints
from planners.polish import POLISH_ROUNDS, polish
from planners.refine import WaveState, refine
from planners.units import build_instance

Score = tuple[int, int, int, int]


def _instance() -> Instance:
    """45 VMs, 110 random flows, 15 VMs per wave: 3 full waves, so kicks need swaps."""
    graph = nx.gnm_random_graph(45, 110, seed=5)
    weights = random.Random(5)
    nx.set_edge_attributes(graph, {e: weights.uniform(1, 50) for e in graph.edges}, "weight")
    graph = nx.relabel_nodes(graph, {n: f"vm{n:02d}" for n in graph.nodes})
    nx.set_node_attributes(graph, 10.0, "gb")
    return build_instance(graph, Constraints(max_vms=15))


def _score(inst: Instance, wave: list[int]) -> Score:
    """Cut, then exposure, in thousandths (enough to order the assignments of this test)."""
    cut = spread = 0.0
    for u, adj in enumerate(inst.adj):
        for v, x in adj.items():
            cut += x * (wave[u] != wave[v])
            spread += x * abs(wave[u] - wave[v])
    return 3, round(cut * 500), round(spread * 500), 0


def _plain(inst: Instance, wave: list[int], k: int, rng: random.Random) -> list[int]:
    """The loop without the memo: every round improves its refined assignment."""
    best, best_score = list(wave), _score(inst, wave)
    most = max(2, inst.units // 6)
    for _ in range(POLISH_ROUNDS):
        st = WaveState(inst, best, k)
        for _ in range(rng.randint(2, most)):
            polish_module._kick(st, rng)
        refine(st, rng)
        improve(st)
        found = _score(inst, st.wave)
        if found < best_score:
            best, best_score = list(st.wave), found
    return best


def test_memo_gives_the_plan_of_the_plain_loop() -> None:
    """Same rng, same start: the memoised polish returns what improving every round returns, and improves the start."""
    inst = _instance()
    start = [u % 3 for u in range(inst.units)]
    found = polish(inst, start, 3, random.Random(11), lambda w: _score(inst, w))
    assert found == _plain(inst, start, 3, random.Random(11))
    assert _score(inst, found) < _score(inst, start)


def test_each_distinct_refined_assignment_is_improved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """improve runs once per distinct assignment FM leaves, fewer times than there are rounds."""
    inst = _instance()
    refined: list[tuple[int, ...]] = []
    improved = 0

    def recording_refine(st: WaveState, rng: random.Random) -> None:
        refine(st, rng)
        refined.append(tuple(st.wave))

    def counting_improve(st: WaveState) -> None:
        nonlocal improved
        improved += 1
        improve(st)

    monkeypatch.setattr(polish_module, "refine", recording_refine)
    monkeypatch.setattr(polish_module, "improve", counting_improve)
    polish(inst, [u % 3 for u in range(inst.units)], 3, random.Random(11), lambda w: _score(inst, w))
    assert len(refined) == POLISH_ROUNDS
    assert improved == len(set(refined)) < POLISH_ROUNDS
