"""The first assignment of units to waves: greedy graph growing, one wave after the other.

Waves are filled in execution order. A unit is ready once every precedence rule it follows has its
`before` side in closed (earlier) waves. Each wave first takes its pinned units and the units whose
latest possible wave it is, then grows by the ready unit whose move in cuts least (weight into the
wave minus weight to units not placed yet; ties favour units tied to earlier waves, so split
applications reunite soon). A wave stops at its share of what is left (proportional to its cap),
but goes on while the best candidate is pulled in more than out. Returns None when `waves` is too few
for this greedy pass; `first_fit` is the fallback that packs tight instances.
"""

from __future__ import annotations

import heapq
import random

from planners.units import Instance

__all__ = ["construct", "first_fit"]

_EPS = 1e-9


class _Grower:
    """State of one construction: what is placed, loads, and the gains of candidates."""

    def __init__(self, inst: Instance, waves: int, latest: list[int], rng: random.Random) -> None:
        self.inst = inst
        self.waves = waves
        self.latest = latest
        self.rng = rng
        n = inst.units
        self.wave = [-1] * n
        self.degree = [sum(a.values()) for a in inst.adj]
        self.ext = list(self.degree)                          # weight to units not placed yet
        self.inside = [0.0] * n                               # weight to the wave being filled
        self.waiting = [len(inst.after_of[u]) for u in range(n)]
        self.rule_left = [len(p.before) for p in inst.precedence]
        self.noise = [rng.random() for _ in range(n)]
        self.late_starters: dict[int, list[int]] = {}       # critical_not_before (hard): first wave -> units
        for u in range(n):
            if inst.min_wave[u]:
                self.late_starters.setdefault(inst.min_wave[u], []).append(u)
        self.heap: list[tuple[int, float, float, float, int]] = []
        self.touched: list[int] = []
        self.current: list[int] = []
        self.load_c = 0
        self.load_g = 0.0
        self.blocked: set[int] = set()                      # partners of units in the current wave
        self.index = 0                                      # the wave being filled
        self.wave_class = -1                                # its environment (no_mixed_environments, hard)

    def key(self, u: int) -> tuple[int, float, float, float, int]:
        """Frontier units (tied to the wave) first, by least cut after adding them; then new seeds."""
        placed_before = self.degree[u] - self.ext[u] - self.inside[u]
        frontier = 0 if self.inside[u] > 0 else 1
        return (frontier, self.ext[u] - self.inside[u], -placed_before, self.noise[u], u)

    def push(self, u: int) -> None:
        heapq.heappush(self.heap, self.key(u))

    def free(self, u: int) -> bool:
        inst = self.inst
        return self.wave[u] == -1 and self.waiting[u] == 0 and inst.pin[u] is None and inst.min_wave[u] <= self.index

    def fits(self, u: int, index: int) -> bool:
        inst = self.inst
        cap = inst.capacity
        cls = inst.env_class[u]
        return (self.load_c + inst.count[u] <= cap.vms(index)
                and self.load_g + inst.gb[u] <= cap.gb(index) + _EPS and u not in self.blocked
                and (cls < 0 or self.wave_class < 0 or cls == self.wave_class))

    def release(self, r: int) -> None:
        """Rule r's `before` side is placed: its `after` units may be placed from now on."""
        for v in self.inst.precedence[r].after:
            self.waiting[v] -= 1
            if self.free(v):
                self.push(v)

    def place(self, u: int, index: int) -> None:
        inst = self.inst
        self.wave[u] = index
        self.current.append(u)
        self.load_c += inst.count[u]
        self.load_g += inst.gb[u]
        self.blocked.update(inst.partners[u])
        if inst.env_class[u] >= 0:
            self.wave_class = inst.env_class[u]
        for r in inst.before_of[u]:
            if inst.precedence[r].gap == 0:         # the same wave will do: release when the side is placed
                self.rule_left[r] -= 1
                if self.rule_left[r] == 0:
                    self.release(r)
        for v, w in inst.adj[u].items():
            if self.wave[v] == -1:
                self.ext[v] -= w
                self.inside[v] += w
                self.touched.append(v)
                if self.free(v):
                    self.push(v)

    def close(self) -> None:
        """End the current wave: reset the inside weights, release the rules it completes."""
        inst = self.inst
        for v in self.touched:
            self.inside[v] = 0.0
        self.touched = []
        for u in self.current:
            for r in inst.before_of[u]:
                if inst.precedence[r].gap:
                    self.rule_left[r] -= 1
                    if self.rule_left[r] == 0:
                        self.release(r)
        self.current = []
        self.load_c, self.load_g = 0, 0.0
        self.blocked = set()
        self.wave_class = -1
        self.index += 1
        for u in self.late_starters.pop(self.index, []):
            if self.free(u):
                self.push(u)

    def pop(self) -> int | None:
        """The best free unit by its current gain (lazy: stale entries are re-pushed)."""
        while self.heap:
            entry = heapq.heappop(self.heap)
            u = entry[4]
            if not self.free(u):
                continue
            fresh = self.key(u)
            if fresh != entry:
                heapq.heappush(self.heap, fresh)
                continue
            return u
        return None


def _targets(inst: Instance, index: int, waves: int, rem_c: int, rem_g: float,
             fill: float) -> tuple[float, float, float, float]:
    """This wave's share of what is left (by caps, moved `fill` of the way to its cap) and the least it
    must take so that the rest still fits."""
    cap = inst.capacity
    caps_c = [min(cap.vms(i), rem_c) for i in range(index, waves)]
    caps_g = [min(cap.gb(i), rem_g) for i in range(index, waves)]
    share_c = rem_c * caps_c[0] / sum(caps_c) if sum(caps_c) else 0.0
    share_g = rem_g * caps_g[0] / sum(caps_g) if sum(caps_g) else 0.0
    share_c += fill * (caps_c[0] - share_c)
    share_g += fill * (caps_g[0] - share_g)
    need_c = rem_c - sum(cap.vms(i) for i in range(index + 1, waves))
    need_g = rem_g - sum(cap.gb(i) for i in range(index + 1, waves))
    return share_c, share_g, need_c, need_g


def construct(inst: Instance, waves: int, latest: list[int], rng: random.Random, *,
              random_seed_units: bool = False, fill: float = 0.0) -> list[int] | None:
    """A feasible wave (0-based) per unit, or None.

    `random_seed_units` starts each empty wave at a random unit; `fill` (0..1) fills waves beyond their
    share of what is left, up to their cap at 1 (for tight capacity).
    """
    n = inst.units
    if any(latest[u] < 0 for u in range(n)):
        return None
    g = _Grower(inst, waves, latest, rng)
    forced: list[list[int]] = [[] for _ in range(waves)]
    for u in range(n):
        pin = inst.pin[u]
        if pin is not None or latest[u] < waves - 1:
            forced[pin if pin is not None else latest[u]].append(u)
        if g.free(u):
            g.push(u)
    rem_c, rem_g = sum(inst.count), sum(inst.gb)
    partnered = [u for u in range(n) if inst.partners[u]]
    for index in range(waves):
        last = index == waves - 1
        share_c, share_g, need_c, need_g = _targets(inst, index, waves, rem_c, rem_g, fill)
        for u in forced[index]:
            if g.wave[u] != -1:
                continue
            if g.waiting[u] or not g.fits(u, index):
                return None
            g.place(u, index)
        left = waves - index - 1
        for u in partnered:
            if (not last and g.free(u) and g.fits(u, index)
                    and sum(1 for v in inst.partners[u] if g.wave[v] == -1) >= left):
                g.place(u, index)
        if random_seed_units and not g.current:
            pool = [u for u in range(n) if g.free(u) and g.fits(u, index)]
            if pool:
                g.place(rng.choice(pool), index)
        deferred: dict[int, None] = {}
        while (popped := g.pop()) is not None:
            u = popped
            if u in deferred:
                continue
            enough = (g.load_c >= share_c - _EPS or g.load_g >= share_g - _EPS) and \
                g.load_c >= need_c - _EPS and g.load_g >= need_g - _EPS
            if enough and not last and g.inside[u] - g.ext[u] <= _EPS:
                g.push(u)
                break
            if not g.fits(u, index):
                deferred[u] = None
                continue
            g.place(u, index)
        if g.load_c < need_c - _EPS or g.load_g < need_g - _EPS:
            return None
        rem_c -= g.load_c
        rem_g -= g.load_g
        g.close()
        for u in deferred:
            g.push(u)
    return None if any(w == -1 for w in g.wave) else g.wave


def first_fit(inst: Instance, waves: int, latest: list[int]) -> list[int] | None:
    """Fallback for tight instances: urgent and big units first, each into the earliest wave that takes it."""
    n = inst.units
    cap = inst.capacity
    wave = [-1] * n
    load_c, load_g = [0] * waves, [0.0] * waves
    waiting = [len(inst.after_of[u]) for u in range(n)]
    rule_left = [len(p.before) for p in inst.precedence]
    rule_top = [-1] * len(inst.precedence)
    wave_class = [-1] * waves
    ready = [(latest[u], -inst.count[u], -inst.gb[u], u) for u in range(n) if waiting[u] == 0]
    heapq.heapify(ready)
    while ready:
        u = heapq.heappop(ready)[3]
        lo = max([inst.min_wave[u], *(rule_top[r] + inst.precedence[r].gap for r in inst.after_of[u])])
        pin = inst.pin[u]
        cls = inst.env_class[u]
        options = [pin] if pin is not None else range(lo, latest[u] + 1)
        for w in options:
            if (w >= lo and load_c[w] + inst.count[u] <= cap.vms(w)
                    and load_g[w] + inst.gb[u] <= cap.gb(w) + _EPS
                    and (cls < 0 or wave_class[w] in (-1, cls))
                    and all(wave[v] != w for v in inst.partners[u])):
                wave[u] = w
                load_c[w] += inst.count[u]
                load_g[w] += inst.gb[u]
                if cls >= 0:
                    wave_class[w] = cls
                break
        else:
            return None
        for r in inst.before_of[u]:
            rule_top[r] = max(rule_top[r], wave[u])
            rule_left[r] -= 1
            if rule_left[r] == 0:
                for v in inst.precedence[r].after:
                    waiting[v] -= 1
                    if waiting[v] == 0:
                        heapq.heappush(ready, (latest[v], -inst.count[v], -inst.gb[v], v))
    return None if any(w == -1 for w in wave) else wave
