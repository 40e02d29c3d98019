"""Iterated local search for small instances: kick the best plan (a few random moves or swaps),
refine it again (FM, then rule-aware moves and swaps), keep it when it scores better.

Restarts from scratch rarely escape the same local optimum on instances of a few dozen units; kicks
from the best plan do (measured on the 30-50 VM enterprise graphs of tests/bench/bench_planner.py
against the CP-SAT optimum). Deterministic for a given rng.

Most kicks are undone by FM: the refined assignment is one seen in an earlier round (often the best
itself), and the rule-aware moves and swaps (penalty.improve, most of a round's time) would only repeat
their earlier work. Their result and score are remembered per refined assignment, so each distinct one
is improved once; the rounds and rng draws are those of the loop without the memo, and so are the plans
(improve sees the assignment, and connection sums equal up to rounding: identical plans on all 59 lab and
bench instances measured, tests/unit/test_polish.py pins one). The number of rounds stays fixed:
improvements arrive at any round (up to round 100 of 100 on the lab estate and the bench graphs), so
stopping after a run of rounds without one (patience) loses them.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from planners.instance import Instance
from planners.penalty import improve
from planners.refine import WaveState, refine

__all__ = ["POLISH_ROUNDS", "POLISH_UNITS", "polish"]

POLISH_UNITS = 100         # instances of at most this many units are polished
POLISH_ROUNDS = 100

Score = tuple[int, int, int, int]


def polish(inst: Instance, wave: list[int], k: int, rng: random.Random,
           score: Callable[[list[int]], Score]) -> list[int]:
    """The best assignment found by POLISH_ROUNDS kicks from `wave` (which is returned when none helps)."""
    best, best_score = list(wave), score(wave)
    most = max(2, inst.units // 6)
    improved: dict[tuple[int, ...], tuple[list[int], Score]] = {}   # refined assignment -> improved, score
    for _ in range(POLISH_ROUNDS):
        st = WaveState(inst, best, k)
        for _ in range(rng.randint(2, most)):
            _kick(st, rng)
        refine(st, rng)
        key = tuple(st.wave)
        known = improved.get(key)
        if known is None:
            improve(st)
            known = improved[key] = (st.wave, score(st.wave))
        if known[1] < best_score:
            best, best_score = list(known[0]), known[1]
    return best


def _kick(st: WaveState, rng: random.Random) -> None:
    """One random move, or a random swap when capacity leaves no room (full waves)."""
    n, k = st.inst.units, st.k
    u, b = rng.randrange(n), rng.randrange(k)
    if st.allowed(u, b, overload=False):
        st.move(u, b)
        return
    v = rng.randrange(n)
    a, b = st.wave[u], st.wave[v]
    if a == b or not st.allowed(u, b, overload=True):
        return
    st.move(u, b)
    if st.allowed(v, a, overload=False):
        st.move(v, a)
        if not st.overloaded(b):
            return
        st.move(v, b)
    st.move(u, a)
