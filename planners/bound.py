"""A lower bound on the cut of any plan (a relaxation), for plans not proven optimal by exhaustive search.

Edges that every plan cuts count whole: keep-apart partners, and units of two environments when no wave
may mix them. For the rest, a wave holds at most C VMs (the largest cap), so a unit u keeps at most C -
size(u) VMs of its neighbours in its wave: the lightest of its edges beyond that are cut. Relaxing each
unit's choice to a fractional knapsack (keep the heaviest weight per VM first) gives the least weight u
must cut; every cut edge is counted by at most its two ends, so half the sum is a bound. Soft rule
costs are never negative, so the bound holds for cut + rule cost as well.
"""

from __future__ import annotations

import math

from planners.instance import Instance

__all__ = ["BOUND_TEXT", "cut_lower_bound"]

BOUND_TEXT = ("relaxation: edges every plan cuts (keep-apart, environments that may not mix), plus half the "
              "weight each unit must cut when a wave takes at most max_vms VMs (fractional knapsack per unit)")


def cut_lower_bound(inst: Instance) -> float:
    """The least cut weight any plan of `inst` can have, by the relaxation above."""
    cap = inst.capacity
    largest = max((cap.vms(w) for w in range(len(cap.ramp) + 1)), default=math.inf)
    apart = [set(p) for p in inst.partners]
    forced = 0.0
    per_unit = 0.0
    for u, row in enumerate(inst.adj):
        room = largest - inst.count[u]
        cls = inst.env_class[u]
        rest: list[tuple[float, int, float]] = []
        for v, w in row.items():
            if w <= 0:
                continue
            if v in apart[u] or (cls >= 0 and 0 <= inst.env_class[v] != cls):
                if u < v:
                    forced += w
                continue
            rest.append((w / inst.count[v], inst.count[v], w))
        if math.isinf(room) or sum(c for _, c, _ in rest) <= room:
            continue
        rest.sort(reverse=True)
        kept = 0.0
        for density, size, _ in rest:
            take = min(size, room)
            kept += density * take
            room -= take
            if room <= 0:
                break
        per_unit += sum(w for _, _, w in rest) - kept
    return forced + per_unit / 2
