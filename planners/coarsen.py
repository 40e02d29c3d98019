"""Multilevel coarsening: heavy-edge matching merges units into ever fewer, larger units.

Partitioning the coarse instance first keeps heavily tied units (an application, then a business
domain) in one wave, and refinement on the way back down fixes the details. Two units merge only if
no constraint can tell them apart: the same pin, the same precedence rule memberships (so no
precedence path joins them and no rule changes meaning) and no keep-apart pair between them; and the
merged unit stays under a size limit so waves can still be packed.
"""

from __future__ import annotations

import random
from dataclasses import replace

from planners.units import Instance, PrecedenceSet

__all__ = ["Level", "coarsen", "hierarchy"]

SHRINK = 0.9           # stop when a level keeps more than this share of the units


Level = tuple[Instance, list[int]]      # a coarser instance and the map from the finer units to its units


def coarsen(inst: Instance, rng: random.Random, max_count: float, max_gb: float) -> Level | None:
    """One level of heavy-edge matching; None when it would barely shrink the instance."""
    n = inst.units
    kinds: dict[tuple[tuple[int, ...], tuple[int, ...], int | None, int, int], int] = {((), (), None, 0, -1): 0}
    signature = [0] * n
    for u in range(n):
        if (inst.before_of[u] or inst.after_of[u] or inst.pin[u] is not None or inst.min_wave[u]
                or inst.env_class[u] >= 0):
            key = (tuple(inst.before_of[u]), tuple(inst.after_of[u]), inst.pin[u], inst.min_wave[u],
                   inst.env_class[u])
            signature[u] = kinds.setdefault(key, len(kinds))
    partners = [set(p) for p in inst.partners]
    count, gb = inst.count, inst.gb
    match = [-1] * n
    visit = list(range(n))
    rng.shuffle(visit)
    visit.sort(key=lambda u: len(inst.adj[u]))
    for u in visit:
        if match[u] != -1:
            continue
        best, heaviest = u, 0.0
        room_c, room_g, kind, apart = max_count - count[u], max_gb - gb[u], signature[u], partners[u]
        for v, w in inst.adj[u].items():
            if (w > heaviest and match[v] == -1 and count[v] <= room_c and gb[v] <= room_g
                    and signature[v] == kind and not (apart and v in apart)):
                best, heaviest = v, w
        match[u], match[best] = best, u
    cmap = [-1] * n
    units = 0
    for u in range(n):
        if cmap[u] == -1:
            cmap[u] = cmap[match[u]] = units
            units += 1
    if units > SHRINK * n:
        return None
    return _contract(inst, cmap, units), cmap


def _contract(inst: Instance, cmap: list[int], units: int) -> Instance:
    members: list[list[int]] = [[] for _ in range(units)]
    count, gb = [0] * units, [0.0] * units
    adj: list[dict[int, float]] = [{} for _ in range(units)]
    partners: list[set[int]] = [set() for _ in range(units)]
    pin: list[int | None] = [None] * units
    pin_field: dict[int, str] = {}
    min_wave, env_class = [0] * units, [-1] * units
    before_of: list[list[int]] = [[] for _ in range(units)]
    after_of: list[list[int]] = [[] for _ in range(units)]
    fine_adj, fine_partners, fine_members = inst.adj, inst.partners, inst.members
    for u, c in enumerate(cmap):
        members[c] += fine_members[u]
        count[c] += inst.count[u]
        gb[c] += inst.gb[u]
        if fine_partners[u]:
            partners[c].update(cmap[p] for p in fine_partners[u])
        row = adj[c]
        get = row.get
        for v, w in fine_adj[u].items():
            d = cmap[v]
            if d != c:
                row[d] = get(d, 0.0) + w
        if inst.pin[u] is not None:
            pin[c] = inst.pin[u]
            pin_field[c] = inst.pin_field[u]
        min_wave[c], env_class[c] = inst.min_wave[u], inst.env_class[u]     # the same in merged units
        if inst.before_of[u] or inst.after_of[u]:       # merged units have the same memberships
            before_of[c] = inst.before_of[u]
            after_of[c] = inst.after_of[u]
    precedence = [PrecedenceSet(sorted({cmap[u] for u in p.before}), sorted({cmap[u] for u in p.after}),
                                p.label, p.text, p.gap) for p in inst.precedence]
    unit_of = [cmap[u] for u in inst.unit_of]
    pairs = sorted({(min(cmap[a], cmap[b]), max(cmap[a], cmap[b]), r) for a, b, r in inst.keep_apart_pairs})
    return replace(inst, unit_of=unit_of, members=members, count=count, gb=gb, adj=adj,
                   partners=[sorted(p) for p in partners], keep_apart_pairs=pairs, precedence=precedence,
                   before_of=before_of, after_of=after_of, pin=pin, pin_field=pin_field, min_wave=min_wave,
                   env_class=env_class, extra_reasons={}, rules=None)


def hierarchy(inst: Instance, rng: random.Random, waves: int, *, target: int) -> list[Level]:
    """Coarser and coarser levels until about `target` units; level i maps the units of level i-1 (or inst)."""
    cap = inst.capacity
    total_c, total_g = sum(inst.count), sum(inst.gb)
    max_count = min(cap.vms(len(cap.ramp)), total_c / max(waves, 1)) / 4
    max_gb = min(cap.gb(0), total_g / max(waves, 1)) / 4
    levels: list[Level] = []
    current = inst
    while current.units > target:
        level = coarsen(current, rng, max(max_count, 2.0), max_gb)
        if level is None:
            break
        levels.append(level)
        current = level[0]
    return levels
