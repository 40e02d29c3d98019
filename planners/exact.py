"""Small instances solved exactly: depth-first search over every assignment of units to waves.

Used when waves ** units <= EXACT_SPACE. Every hard constraint is checked as units are placed (caps and
ramp, pins, keep-apart, precedence with its gap, earliest waves, one environment per wave), every wave
must end up non-empty, and branches whose cut alone already exceeds the best score are pruned (the soft
rules only add cost). The result is a proven optimum of the planner's objective for that wave count.
"""

from __future__ import annotations

from collections.abc import Callable

from planners.instance import Instance

__all__ = ["EXACT_SPACE", "exact_fits", "solve_exact"]

EXACT_SPACE = 100_000
_EPS = 1e-9

Score = tuple[int, int, int, int]


def exact_fits(inst: Instance, k: int) -> bool:
    """Whether an exhaustive search of `k` waves is small enough."""
    return k >= 1 and inst.units >= 1 and k ** inst.units <= EXACT_SPACE


def _relations(inst: Instance) -> list[list[tuple[int, int, int]]]:
    """Per unit: (other unit, gap, +1 when the other is after it / -1 before it): wave[after] - wave[before] >= gap."""
    rel: list[list[tuple[int, int, int]]] = [[] for _ in range(inst.units)]
    for rule in inst.precedence:
        for b in rule.before:
            for a in rule.after:
                rel[b].append((a, rule.gap, 1))
                rel[a].append((b, rule.gap, -1))
    return rel


def solve_exact(inst: Instance, k: int, score: Callable[[list[int]], Score]) -> list[int] | None:
    """The best assignment of units to `k` waves by `score`, or None when none keeps every hard constraint."""
    n = inst.units
    order = sorted(range(n), key=lambda u: (-len(inst.adj[u]), -inst.count[u], u))
    rel = _relations(inst)
    cap = inst.capacity
    caps = [(cap.vms(w), cap.gb(w)) for w in range(k)]
    quantum = max(inst.total_weight, 1.0) * 1e-10
    wave = [-1] * n
    load_c, load_g = [0] * k, [0.0] * k
    classes: list[dict[int, int]] = [{} for _ in range(k)]
    best_score: Score | None = None
    best_wave: list[int] | None = None

    def ok(u: int, w: int) -> bool:
        if (inst.pin[u] is not None and inst.pin[u] != w) or w < inst.min_wave[u]:
            return False
        if load_c[w] + inst.count[u] > caps[w][0] or load_g[w] + inst.gb[u] > caps[w][1] + _EPS:
            return False
        if any(wave[v] == w for v in inst.partners[u]):
            return False
        cls = inst.env_class[u]
        if cls >= 0 and any(c != cls and m for c, m in classes[w].items()):
            return False
        return all(wave[v] < 0 or side * (wave[v] - w) >= gap for v, gap, side in rel[u])

    def visit(i: int, cut: float) -> None:
        nonlocal best_score, best_wave
        if best_score is not None and round(cut / quantum) > best_score[1]:
            return
        if i == n:
            if all(load_c):
                found = score(list(wave))
                if best_score is None or found < best_score:
                    best_score, best_wave = found, list(wave)
            return
        u = order[i]
        for w in range(k):
            if not ok(u, w):
                continue
            added = sum(x for v, x in inst.adj[u].items() if wave[v] >= 0 and wave[v] != w)
            wave[u] = w
            load_c[w] += inst.count[u]
            load_g[w] += inst.gb[u]
            cls = inst.env_class[u]
            if cls >= 0:
                classes[w][cls] = classes[w].get(cls, 0) + 1
            visit(i + 1, cut + added)
            if cls >= 0:
                classes[w][cls] -= 1
            load_c[w] -= inst.count[u]
            load_g[w] -= inst.gb[u]
            wave[u] = -1

    visit(0, 0.0)
    return best_wave
