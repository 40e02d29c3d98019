"""Soft policy rules as costs on units: the cost of an assignment, its change when one unit moves, and a
local search that trades cut weight for rule cost (the objective is cut + the cost of every soft rule).

Costs, each `weight` per violation (planners.rule_model): environment_order, per VM in an earlier wave
than the last VM of a lower environment; no_mixed_environments, per VM outside its wave's largest
environment; dependencies_first, per dependency whose provider moves after its consumer;
critical_not_before, per critical VM before the wave; application_whole, per VM outside its
application's largest share, for applications that fit a wave.
"""

from __future__ import annotations

from collections import defaultdict

from planners.instance import Instance
from planners.refine import WaveState
from planners.rules import RuleSet

__all__ = ["MAX_RULE_PASSES", "SWAP_UNITS", "Penalty", "improve", "order_violations", "soft_cost"]

MAX_RULE_PASSES = 10
SWAP_UNITS = 200                # instances of at most this many units get pair swaps (and moves of every unit)
_EPS = 1e-9


def order_violations(cnt: list[dict[int, int]]) -> int:
    """VMs in an earlier wave than some VM of a lower rank; cnt[w][rank] = VMs."""
    none = 1 << 30
    low = [min((q for q, n in c.items() if n), default=none) for c in cnt]     # each wave's lowest rank
    total = 0
    for r in sorted({q for c in cnt for q, n in c.items() if n}):
        last = next((w for w in range(len(cnt) - 1, -1, -1) if low[w] < r), -1)
        total += sum(cnt[w].get(r, 0) for w in range(last))
    return total


def _soft(rs: RuleSet, name: str) -> float:
    rule = getattr(rs.rules, name)
    return 0.0 if rule is None or rule.hard else rule.cost


class Penalty:
    """The soft rules' cost of a unit assignment, kept up to date as units move."""

    def __init__(self, inst: Instance, wave: list[int], k: int) -> None:
        rs: RuleSet = inst.rules
        self.rs, self.wave, self.k = rs, wave, k
        self.w_order, self.w_mixed = _soft(rs, "environment_order"), _soft(rs, "no_mixed_environments")
        self.w_deps, self.w_crit = _soft(rs, "dependencies_first"), _soft(rs, "critical_not_before")
        self.w_app = _soft(rs, "application_whole")
        self.first = rs.rules.critical_not_before.wave - 1 if rs.rules.critical_not_before else 0
        self.rank = [{rs.env_rank[c]: n for c, n in envs.items() if c in rs.env_rank} for envs in rs.unit_env]
        self.order_cnt: list[dict[int, int]] = [defaultdict(int) for _ in range(k)]
        self.class_cnt: list[dict[int, int]] = [defaultdict(int) for _ in range(k)]
        self.app_cnt: list[dict[int, int]] = [defaultdict(int) for _ in rs.app_names]
        self.deps: list[list[tuple[int, int, int]]] = [[] for _ in range(inst.units)]  # (other, VMs, +1 if u provides)
        for p, c, m in rs.unit_deps:
            self.deps[p].append((c, m, 1))
            self.deps[c].append((p, m, -1))
        for u, a in enumerate(wave):
            self._add(u, a, 1)
        self.order_now = self._order()
        self.active = [bool((self.w_order and self.rank[u]) or (self.w_mixed and rs.unit_env[u])
                            or (self.w_app and rs.unit_app[u]) or (self.w_crit and rs.unit_critical[u])
                            or (self.w_deps and self.deps[u])) for u in range(inst.units)]

    def _add(self, u: int, w: int, sign: int) -> None:
        rs = self.rs
        for r, n in self.rank[u].items():
            self.order_cnt[w][r] += sign * n
        for c, n in rs.unit_env[u].items():
            self.class_cnt[w][c] += sign * n
        for app, n in rs.unit_app[u].items():
            self.app_cnt[app][w] += sign * n

    def _local(self, u: int, waves: tuple[int, ...]) -> float:
        """The cost terms a move of u between `waves` can change, except environment order."""
        rs = self.rs
        cost = 0.0
        if self.w_mixed:
            for w in waves:
                cnt = self.class_cnt[w]
                cost += self.w_mixed * (sum(cnt.values()) - max(cnt.values(), default=0))
        if self.w_app:
            for app in rs.unit_app[u]:
                if rs.app_fits[app]:
                    cnt = self.app_cnt[app]
                    cost += self.w_app * (sum(cnt.values()) - max(cnt.values(), default=0))
        if self.w_crit and rs.unit_critical[u] and self.wave[u] < self.first:
            cost += self.w_crit * rs.unit_critical[u]
        if self.w_deps:
            a = self.wave[u]
            for v, m, sign in self.deps[u]:
                if sign * (a - self.wave[v]) > 0:
                    cost += self.w_deps * m
        return cost

    def _order(self) -> float:
        return self.w_order * order_violations(self.order_cnt) if self.w_order else 0.0

    def delta(self, u: int, b: int) -> float:
        """How much the cost changes if u moves to wave b."""
        a = self.wave[u]
        before = self._local(u, (a, b))
        self._shift(u, b)
        after = self._local(u, (a, b)) + (self._order() - self.order_now if self.rank[u] else 0.0)
        self._shift(u, a)
        return after - before

    def _shift(self, u: int, b: int) -> None:
        a = self.wave[u]
        self._add(u, a, -1)
        self._add(u, b, 1)
        self.wave[u] = b

    def move(self, u: int, b: int) -> None:
        """Record that u moved to b (this keeps its own copy of the waves)."""
        self._shift(u, b)
        if self.rank[u]:
            self.order_now = self._order()


def soft_cost(inst: Instance, wave: list[int], k: int) -> float:
    """The soft rules' cost of an assignment of units (0 without rules)."""
    if inst.rules is None:
        return 0.0
    pen = Penalty(inst, list(wave), k)
    rs = pen.rs
    cost = pen._order()
    for w in range(k):
        cnt = pen.class_cnt[w]
        cost += pen.w_mixed * (sum(cnt.values()) - max(cnt.values(), default=0))
    for app, cnt in enumerate(pen.app_cnt):
        if rs.app_fits[app]:
            cost += pen.w_app * (sum(cnt.values()) - max(cnt.values(), default=0))
    cost += pen.w_crit * sum(n for u, n in enumerate(rs.unit_critical) if wave[u] < pen.first)
    cost += pen.w_deps * sum(m for p, c, m in rs.unit_deps if wave[p] > wave[c])
    return cost


def improve(st: WaveState) -> None:
    """Best single moves (of rule-bearing units; of every unit on small instances), then pair swaps on small
    instances, by cut + rule cost under every hard constraint, until none helps."""
    inst = st.inst
    pen = Penalty(inst, list(st.wave), st.k) if inst.rules is not None else None
    small = inst.units <= SWAP_UNITS
    movers = list(range(inst.units)) if small else [u for u in range(inst.units) if pen is not None and pen.active[u]]
    if not movers or st.k < 2:
        return
    for _ in range(MAX_RULE_PASSES):
        if not (_moves(st, pen, movers) or (small and _swaps(st, pen))):
            break


def _threshold(st: WaveState) -> float:
    return -_EPS * max(st.inst.total_weight, 1.0)


def _gain(st: WaveState, pen: Penalty | None, u: int, b: int) -> float:
    """The change of cut + rule cost if u moves to b (negative is better)."""
    conn = st.conn[u]
    return conn.get(st.wave[u], 0.0) - conn.get(b, 0.0) + (pen.delta(u, b) if pen is not None else 0.0)


def _shift(st: WaveState, pen: Penalty | None, u: int, b: int) -> None:
    if pen is not None:
        pen.move(u, b)
    st.move(u, b)


def _moves(st: WaveState, pen: Penalty | None, movers: list[int]) -> bool:
    moved = False
    for u in movers:
        best, target = _threshold(st), -1
        for b in range(st.k):
            if b != st.wave[u] and st.allowed(u, b, overload=False):
                gain = _gain(st, pen, u, b)
                if gain < best:
                    best, target = gain, b
        if target >= 0:
            _shift(st, pen, u, target)
            moved = True
    return moved


def _swaps(st: WaveState, pen: Penalty | None) -> bool:
    """u and v trade waves when that lowers cut + rule cost (through full waves, which single moves cannot)."""
    moved = False
    n = st.inst.units
    for u in range(n):
        for v in range(u + 1, n):
            a, b = st.wave[u], st.wave[v]
            if a == b or not st.allowed(u, b, overload=True):
                continue
            first = _gain(st, pen, u, b)
            _shift(st, pen, u, b)
            if st.allowed(v, a, overload=False):
                total = first + _gain(st, pen, v, a)
                _shift(st, pen, v, a)
                if total < _threshold(st) and not st.overloaded(b):
                    moved = True
                    continue
                _shift(st, pen, v, b)
            _shift(st, pen, u, a)
    return moved
