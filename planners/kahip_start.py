"""A starting assignment from KaHIP (kaffpa, PyPI `kahip`, pinned): one more restart for the planner.

KaHIP partitions the unit graph into k blocks of at most max_vms VMs (its balance bound) and knows
nothing else, so it is used only where blocks can be waves in any order: no precedence, pins, earliest
waves or ramp. Its blocks are taken only when they keep every other hard constraint (GiB caps,
keep-apart pairs, one environment per wave, no empty wave); the planner then refines and orders them
like its own. Measured in tests/bench/bench_planner.py: KaHIP strong alone beats our own restarts on
some denser graphs; refined from its blocks, the plan is never worse than KaHIP's.
"""

from __future__ import annotations

import math
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import kahip  # type: ignore[import-untyped]

from planners.instance import Instance

__all__ = ["KAHIP_MAX_UNITS", "KAHIP_STRONG_UNITS", "KAHIP_TRIES_UNITS", "kahip_starts"]

KAHIP_STRONG_UNITS = 12_000    # up to this many units the strong preset (about 3 s at 10,000), above the fast one
KAHIP_MAX_UNITS = 1_000_000
KAHIP_TRIES_UNITS = 5_000      # up to this many units KaHIP runs with two seeds (its results vary with the seed)
_WEIGHT_RANGE = 10_000         # edge weights become integers up to this (at 10^6 KaHIP takes 4 s on 30 VMs)
_EPS = 1e-9


def _usable(inst: Instance, k: int) -> bool:
    cap = inst.capacity
    return (k >= 2 and 2 <= inst.units <= KAHIP_MAX_UNITS and cap.max_vms is not None and not cap.ramp
            and not inst.precedence and all(p is None for p in inst.pin) and not any(inst.min_wave))


def _valid(inst: Instance, blocks: list[int], k: int) -> bool:
    cap = inst.capacity
    count, gb = [0] * k, [0.0] * k
    classes: list[set[int]] = [set() for _ in range(k)]
    for u, w in enumerate(blocks):
        count[w] += inst.count[u]
        gb[w] += inst.gb[u]
        if inst.env_class[u] >= 0:
            classes[w].add(inst.env_class[u])
    return (all(0 < count[w] <= cap.vms(w) and gb[w] <= cap.gb(w) + _EPS and len(classes[w]) <= 1 for w in range(k))
            and all(blocks[a] != blocks[b] for a, b, _ in inst.keep_apart_pairs))


def kahip_starts(inst: Instance, k: int, seed: int) -> list[list[int]]:
    """KaHIP's blocks (a wave per unit), one list per seed tried, those that keep every hard constraint."""
    if not _usable(inst, k):
        return []
    largest = max((w for row in inst.adj for w in row.values()), default=1.0)
    integral = largest <= _WEIGHT_RANGE and all(float(w).is_integer() for row in inst.adj for w in row.values())
    scale = 1.0 if integral or largest <= 0 else _WEIGHT_RANGE / largest
    xadj, adjncy, adjcwgt = [0], [], []
    for row in inst.adj:
        for v, w in sorted(row.items()):
            adjncy.append(v)
            adjcwgt.append(max(1, round(w * scale)))
        xadj.append(len(adjncy))
    total = sum(inst.count)
    base = math.ceil(total / k)
    max_vms = inst.capacity.max_vms or total
    imbalance = max(0.0, max_vms / base - 1 - _EPS)
    mode = kahip.STRONG if inst.units <= KAHIP_STRONG_UNITS else kahip.FAST
    found: list[list[int]] = []
    # KaHIP is C++ and can crash the process on some inputs (seen: a segmentation fault at imbalance 0 with
    # vertices of weight 2): it runs in a child process, and a crash only costs this starting plan
    context = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for attempt in range(2 if inst.units <= KAHIP_TRIES_UNITS else 1):
            try:
                blocks = pool.submit(_kaffpa, list(inst.count), xadj, adjcwgt, adjncy, k, imbalance,
                                     (seed + attempt) % 2**31, mode).result()
            except BrokenProcessPool:
                return found
            if _valid(inst, blocks, k):
                found.append(blocks)
    return found


def _kaffpa(vwgt: list[int], xadj: list[int], adjcwgt: list[int], adjncy: list[int], k: int, imbalance: float,
            seed: int, mode: int) -> list[int]:
    """kaffpa's block per vertex (in the child process)."""
    _, blocks = kahip.kaffpa(vwgt, xadj, adjcwgt, adjncy, k, imbalance, True, seed, mode)
    return [int(b) for b in blocks]
