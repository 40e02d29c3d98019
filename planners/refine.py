"""Improving an assignment: Fiduccia-Mattheyses style moves of units between waves under every constraint.

A pass moves unlocked units, best gain first (cut, then exposure), even when the gain is negative,
and at the end rolls back to the best state seen in which every wave is within its caps. To get
through full waves, a move may overload its target wave by one unit; the next moves then must take
units out of that wave (a swap or a rotation), and only a state without overload counts as a result.
Pins, keep-apart pairs and precedence are never broken, not even for a moment. Gains are compared as
integers in units of 1e-10 of the total weight, so rounding noise never makes a move look useful.
"""

from __future__ import annotations

import heapq
import random

from planners.units import Instance

__all__ = ["WaveState", "balance", "refine"]

_EPS = 1e-9
_MAX_REPAIRS = 16
FULL_SCAN_UNITS = 20_000       # above this many units, a pass starts only from units with a gain >= 0
LARGE_PASSES = 3               # and at most this many passes run (coarser levels did most of the work)
MIN_PASS_GAIN = 1e-4            # another pass only after one that gained this share of the total weight


class WaveState:
    """An assignment of units to waves with what moves need: connections per wave, loads, rule counts."""

    def __init__(self, inst: Instance, wave: list[int], waves: int) -> None:
        self.inst = inst
        self.wave = list(wave)
        self.k = waves
        self.cap_c = [inst.capacity.vms(i) for i in range(waves)]
        self.cap_g = [inst.capacity.gb(i) for i in range(waves)]
        self.load_c = [0] * waves
        self.load_g = [0.0] * waves
        self.conn: list[dict[int, float]] = [{} for _ in range(inst.units)]
        self.before_cnt = [[0] * waves for _ in inst.precedence]
        self.after_cnt = [[0] * waves for _ in inst.precedence]
        wave, conn = self.wave, self.conn
        self.class_cnt: list[dict[int, int]] = [{} for _ in range(waves)]
        for u, w in enumerate(wave):
            self.load_c[w] += inst.count[u]
            self.load_g[w] += inst.gb[u]
            if inst.env_class[u] >= 0:
                cnt = self.class_cnt[w]
                cnt[inst.env_class[u]] = cnt.get(inst.env_class[u], 0) + 1
            for r in inst.before_of[u]:
                self.before_cnt[r][w] += 1
            for r in inst.after_of[u]:
                self.after_cnt[r][w] += 1
        for v, adj in enumerate(inst.adj):
            c = conn[v]
            get = c.get
            for u, x in adj.items():
                w = wave[u]
                c[w] = get(w, 0.0) + x
        self.quantum = max(inst.total_weight, 1.0) * 1e-10

    def q(self, value: float) -> int:
        """A weight as an integer number of quanta."""
        return round(value / self.quantum)

    def cut(self) -> float:
        """The soft weight between units of different waves."""
        return sum(x for u, c in enumerate(self.conn) for w, x in c.items() if w != self.wave[u]) / 2

    def exposure_sum(self) -> float:
        """sum(w * |wave_u - wave_v|) over unit pairs."""
        return sum(x * abs(w - self.wave[u]) for u, c in enumerate(self.conn) for w, x in c.items()) / 2

    def overloaded(self, w: int) -> bool:
        return self.load_c[w] > self.cap_c[w] or self.load_g[w] > self.cap_g[w] + _EPS

    def window(self, u: int) -> tuple[int, int]:
        """The waves precedence allows for u, given where every other unit is."""
        inst = self.inst
        lo, hi = inst.min_wave[u], self.k - 1
        for r in inst.after_of[u]:
            cnt = self.before_cnt[r]
            top = next(i for i in range(self.k - 1, -1, -1) if cnt[i])
            lo = max(lo, top + inst.precedence[r].gap)
        for r in inst.before_of[u]:
            cnt = self.after_cnt[r]
            bottom = next(i for i in range(self.k) if cnt[i])
            hi = min(hi, bottom - inst.precedence[r].gap)
        return lo, hi

    def allowed(self, u: int, b: int, *, overload: bool) -> bool:
        """Whether u may move to wave b (capacity may be exceeded by this one unit when `overload`)."""
        inst = self.inst
        if inst.pin[u] is not None or b == self.wave[u] or self.load_c[self.wave[u]] == inst.count[u]:
            return False            # pinned, no move, or the move would leave its wave empty
        if not overload and (self.load_c[b] + inst.count[u] > self.cap_c[b]
                             or self.load_g[b] + inst.gb[u] > self.cap_g[b] + _EPS):
            return False
        if any(self.wave[v] == b for v in inst.partners[u]):
            return False
        cls = inst.env_class[u]
        if cls >= 0 and any(c != cls and n for c, n in self.class_cnt[b].items()):
            return False            # no_mixed_environments (hard): wave b holds another environment
        if inst.before_of[u] or inst.after_of[u] or inst.min_wave[u]:
            lo, hi = self.window(u)
            return lo <= b <= hi
        return True

    def gains(self, u: int, b: int) -> tuple[int, int]:
        """(cut gain, exposure gain) of moving u to b, in quanta."""
        c = self.conn[u]
        return self.q(c.get(b, 0.0) - c.get(self.wave[u], 0.0)), self.exposure_gain(u, b)

    def exposure_gain(self, u: int, b: int) -> int:
        """How much exposure moving u to b saves, in quanta."""
        a = self.wave[u]
        return self.q(sum(x * (abs(a - w) - abs(b - w)) for w, x in self.conn[u].items()))

    def move(self, u: int, b: int) -> None:
        inst = self.inst
        a = self.wave[u]
        self.wave[u] = b
        self.load_c[a] -= inst.count[u]
        self.load_c[b] += inst.count[u]
        self.load_g[a] -= inst.gb[u]
        self.load_g[b] += inst.gb[u]
        cls = inst.env_class[u]
        if cls >= 0:
            self.class_cnt[a][cls] -= 1
            self.class_cnt[b][cls] = self.class_cnt[b].get(cls, 0) + 1
        for r in inst.before_of[u]:
            self.before_cnt[r][a] -= 1
            self.before_cnt[r][b] += 1
        for r in inst.after_of[u]:
            self.after_cnt[r][a] -= 1
            self.after_cnt[r][b] += 1
        for v, x in inst.adj[u].items():
            c = self.conn[v]
            left = c[a] - x
            if left > _EPS * x:
                c[a] = left
            else:
                del c[a]
            c[b] = c.get(b, 0.0) + x


class _Pass:
    """One FM pass over a WaveState."""

    def __init__(self, st: WaveState, rng: random.Random) -> None:
        self.st = st
        self.rng = rng
        self.version = [0] * st.inst.units
        self.locked = [False] * st.inst.units
        self.global_heap: list[tuple[int, int, float, int, int, int]] = []
        self.wave_heaps: list[list[tuple[int, int, float, int, int, int]]] = [[] for _ in range(st.k)]

    def best(self, u: int, *, overload: bool) -> tuple[int, int, int] | None:
        """The best allowed move of u to a wave it is connected to: (cut gain, tie-break, target).

        Exposure only breaks ties between targets of the same cut gain (computing it for every candidate
        costs too much); the pass still keeps the prefix that is best by cut, then exposure.
        """
        st = self.st
        a = st.wave[u]
        conn = st.conn[u]
        here = conn.get(a, 0.0)
        slack = st.quantum / 2
        top = -1e300
        ties: list[int] = []
        for b, x in conn.items():
            if b == a or x < top - slack or not st.allowed(u, b, overload=overload):
                continue
            if x > top + slack:
                top, ties = x, [b]
            else:
                ties.append(b)
        if not ties:
            return None
        cut = st.q(top - here)
        if len(ties) == 1:
            return cut, 0, ties[0]
        return max((cut, st.exposure_gain(u, b), b) for b in ties)

    def push(self, u: int, *, overload: bool = True) -> None:
        self.version[u] += 1
        if self.locked[u]:
            return
        move = self.best(u, overload=overload)
        if move is None:
            return
        entry = (-move[0], -move[1], self.rng.random(), u, move[2], self.version[u])
        heapq.heappush(self.global_heap, entry)
        heapq.heappush(self.wave_heaps[self.st.wave[u]], entry)

    def pop(self, heap: list[tuple[int, int, float, int, int, int]], *, overload: bool) -> tuple[int, int] | None:
        """The best valid move left in `heap`; entries whose gain dropped since are re-evaluated."""
        st = self.st
        while heap:
            entry = heapq.heappop(heap)
            u, b, version = entry[3], entry[4], entry[5]
            if self.locked[u] or version != self.version[u]:
                continue
            if not st.allowed(u, b, overload=overload):
                self.push(u, overload=overload)
                continue
            fresh = self.best(u, overload=overload)
            if fresh is None or (-fresh[0], -fresh[1], fresh[2]) != (entry[0], entry[1], b):
                self.push(u, overload=overload)
                continue
            return u, b
        return None

    def apply(self, u: int, b: int) -> tuple[int, int, int]:
        st = self.st
        a = st.wave[u]
        cut, expo = st.gains(u, b)
        st.move(u, b)
        self.locked[u] = True
        wave = st.wave
        for v in st.inst.adj[u]:
            # a neighbour already in b only lost gain: its heap entry is checked when popped
            if not self.locked[v] and wave[v] != b:
                self.push(v)
        return a, cut, expo

    def run(self, patience: int) -> tuple[int, int]:
        """Moves until patience runs out; keeps the best feasible prefix; returns its (cut, exposure) gain."""
        st = self.st
        everyone = st.inst.units <= FULL_SCAN_UNITS
        for u, conn in enumerate(st.conn):
            a = st.wave[u]
            boundary = len(conn) > 1 or (conn and a not in conn)
            if boundary and (everyone or max(x for w, x in conn.items() if w != a) >= conn.get(a, 0.0)):
                self.push(u)
        done: list[tuple[int, int]] = []
        score = best = (0, 0)
        best_len = 0
        over: int | None = None
        repairs = 0
        while len(done) - best_len < patience:
            if over is None:
                chosen = self.pop(self.global_heap, overload=True)
            else:
                chosen = self.pop(self.wave_heaps[over], overload=False)
            if chosen is None:
                break
            u, b = chosen
            a, cut, expo = self.apply(u, b)
            done.append((u, a))
            score = (score[0] + cut, score[1] + expo)
            if over is None and st.overloaded(b):
                over, repairs = b, 0
            elif over is not None and not st.overloaded(over):
                over = None
            elif over is not None:
                repairs += 1
                if repairs > _MAX_REPAIRS:
                    break
            if over is None and score > best:
                best, best_len = score, len(done)
        for u, a in reversed(done[best_len:]):
            st.move(u, a)
        return best


def refine(st: WaveState, rng: random.Random, *, max_passes: int = 8, patience: int | None = None,
           min_gain: float = MIN_PASS_GAIN) -> None:
    """FM passes until one gains less than `min_gain` of the total weight, or max_passes."""
    if patience is None:
        patience = max(30, min(st.inst.units, 150 + st.inst.units // 100))
    if st.inst.units > FULL_SCAN_UNITS:
        max_passes = min(max_passes, LARGE_PASSES)
    small = round(min_gain / 1e-10)               # in quanta (1e-10 of the total weight)
    for _ in range(max_passes):
        cut, expo = _Pass(st, rng).run(patience)
        if cut < small and (cut > 0 or expo < small):
            break


def balance(st: WaveState) -> None:
    """Lowest priority: move units without soft edges from fuller to emptier waves (relative to their caps)."""
    inst = st.inst
    finite = all(c != float("inf") for c in st.cap_c)
    norm = st.cap_c if finite else [1.0] * st.k
    fill = st.load_c.__getitem__
    for u in sorted(range(inst.units), key=lambda u: -inst.count[u]):
        if inst.adj[u] or inst.pin[u] is not None or (inst.rules is not None and inst.rules.bears(u)):
            continue
        a = st.wave[u]
        b = min(range(st.k), key=lambda w: fill(w) / norm[w])
        if (st.load_c[b] + inst.count[u]) / norm[b] < st.load_c[a] / norm[a] and st.allowed(u, b, overload=False):
            st.move(u, b)
