"""Ordering waves so that split dependencies reunite soon: minimum linear arrangement under constraints.

Exposure is sum(W[x][y] * |pos x - pos y|) over wave pairs, where W is the soft weight between waves.
A valid order keeps pinned waves at their positions, puts waves holding a rule's `before` side ahead
of waves holding its `after` side, and fits each wave under the (ramp) cap of its position. Up to
EXACT_WAVES waves the best order is found exactly (dynamic programming over subsets: exposure is the
sum of the cuts between each prefix and the rest); beyond, adjacent swaps run until none helps.
"""

from __future__ import annotations

from planners.units import Instance

__all__ = ["EXACT_WAVES", "order_waves"]

EXACT_WAVES = 12
_EPS = 1e-9


class _Order:
    """The wave-level view of an assignment."""

    def __init__(self, inst: Instance, wave: list[int], k: int) -> None:
        self.k = k
        self.weights = [[0.0] * k for _ in range(k)]
        for u, adj in enumerate(inst.adj):
            a = wave[u]
            row = self.weights[a]
            for v, x in adj.items():
                if wave[v] != a:
                    row[wave[v]] += x / 2
        for a in range(k):
            for b in range(a + 1, k):
                total = self.weights[a][b] + self.weights[b][a]
                self.weights[a][b] = self.weights[b][a] = total
        self.load_c = [0] * k
        self.load_g = [0.0] * k
        self.pinned: list[int | None] = [None] * k
        for u, a in enumerate(wave):
            self.load_c[a] += inst.count[u]
            self.load_g[a] += inst.gb[u]
            if inst.pin[u] is not None:
                self.pinned[a] = inst.pin[u]
        self.preds = [0] * k                     # bitmask of waves that must come first
        for rule in inst.precedence:
            before = {wave[u] for u in rule.before}
            after = {wave[u] for u in rule.after}
            mask = sum(1 << x for x in before)
            for y in after:
                self.preds[y] |= mask & ~(1 << y)        # gap-0 rules may hold both sides in one wave
        self.cap = [(inst.capacity.vms(p), inst.capacity.gb(p)) for p in range(k)]
        self.min_pos = [0] * k                   # critical_not_before (hard): the earliest position of a wave
        for u, a in enumerate(wave):
            self.min_pos[a] = max(self.min_pos[a], inst.min_wave[u])

    def fits(self, x: int, pos: int) -> bool:
        if (self.pinned[x] is not None and self.pinned[x] != pos) or pos < self.min_pos[x]:
            return False
        cap_c, cap_g = self.cap[pos]
        return self.load_c[x] <= cap_c and self.load_g[x] <= cap_g + _EPS

    def cost(self, order: list[int]) -> float:
        pos = {x: p for p, x in enumerate(order)}
        return sum(self.weights[x][y] * abs(pos[x] - pos[y]) for x in range(self.k) for y in range(x + 1, self.k))

    def exact(self) -> list[int] | None:
        """The best valid order by dynamic programming over subsets of waves."""
        k = self.k
        pinned_at = {p: x for x, p in enumerate(self.pinned) if p is not None}
        best: dict[int, tuple[float, int, int]] = {0: (0.0, -1, -1)}      # mask -> (cost, prev mask, wave)
        degree = [sum(row) for row in self.weights]
        cut = {0: 0.0}
        for size in range(k):
            layer = [m for m in best if m.bit_count() == size]
            for mask in layer:
                base = best[mask][0]
                for x in range(k):
                    if mask >> x & 1 or self.preds[x] & ~mask or not self.fits(x, size):
                        continue
                    if size in pinned_at and pinned_at[size] != x:
                        continue
                    new = mask | 1 << x
                    if new not in cut:
                        inward = sum(self.weights[x][y] for y in range(k) if mask >> y & 1)
                        cut[new] = cut[mask] + degree[x] - 2 * inward
                    cost = base + cut[new]
                    if new not in best or cost < best[new][0] - _EPS:
                        best[new] = (cost, mask, x)
        full = (1 << k) - 1
        if full not in best:
            return None
        order = []
        mask = full
        while mask:
            _, prev, x = best[mask]
            order.append(x)
            mask = prev
        return list(reversed(order))

    def swaps(self, order: list[int]) -> list[int]:
        """Adjacent swaps that lower the exposure and keep the order valid, until none is left."""
        order = list(order)
        improved = True
        while improved:
            improved = False
            for p in range(self.k - 1):
                x, y = order[p], order[p + 1]
                if self.preds[y] >> x & 1 or not self.fits(x, p + 1) or not self.fits(y, p):
                    continue
                delta = 0.0
                for q, z in enumerate(order):
                    if z in (x, y):
                        continue
                    delta += self.weights[x][z] * (abs(p + 1 - q) - abs(p - q))
                    delta += self.weights[y][z] * (abs(p - q) - abs(p + 1 - q))
                if delta < -_EPS:
                    order[p], order[p + 1] = y, x
                    improved = True
        return order


def order_waves(inst: Instance, wave: list[int], k: int) -> list[int]:
    """The waves (0-based labels) in the execution order that keeps exposure lowest; the input order is valid."""
    view = _Order(inst, wave, k)
    current = list(range(k))
    found = view.exact() if k <= EXACT_WAVES else view.swaps(current)
    if found is None or view.cost(found) >= view.cost(current) - _EPS:
        return current
    return found
