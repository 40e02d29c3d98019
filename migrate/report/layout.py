"""The dependency graph laid out for the report: deterministic, linear in the VM count, no numpy.

Each wave is a region of the drawing (waves left to right, wrapping into rows); inside it, the VMs
of one application or must-move group in that wave form a *unit*, drawn as a ring (or a grid when
large) so that what moves together sits together, and units are shelf-packed in the region. So the
edges that cross between regions are exactly the dependencies the plan cuts, and a split application
shows as the same name in two regions joined by highlighted edges. Above `AGGREGATE_ABOVE` VMs each
unit is drawn as one node (sized by its VM count) and edges are summed between units.

networkx does the graph work (must-move groups, edge aggregation); the geometry is ours, so the
output is byte-identical for the same input on any machine (networkx's own layouts need numpy, and a
force layout of thousands of nodes is a slow hairball that hides the waves).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from migrate.report.model import GraphEdge, GraphGroup, GraphNode, GraphOutline, GraphView, KeepApart, WaveBox
from planners.summary import must_move_groups

__all__ = ["AGGREGATE_ABOVE", "MAX_EDGES", "MAX_UNIT_EDGES", "LayoutVm", "convex_hull", "layout_graph"]

AGGREGATE_ABOVE = 300     # more VMs than this: one node per application/group and wave
MAX_EDGES = 2500          # drawn edges at most: the heaviest (hard ties first)
MAX_UNIT_EDGES = 1000     # the same for an aggregated graph (its edges are long: fewer stay readable)
SPACING = 50.0            # between VM nodes (room for a label)
VM_R = 7.0
PAD = 18.0                # around units
WAVE_PAD = 30.0           # inside a wave region, round its units (room for the title)
RING_MAX = 16             # units up to this many VMs are rings, larger ones grids


@dataclass(frozen=True)
class LayoutVm:
    """What the layout needs of a VM."""

    id: str
    name: str
    app: str | None
    wave: int | None


@dataclass
class _Unit:
    key: str
    wave: int | None
    members: list[str] = field(default_factory=list)
    apps: set[str] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)
    w: float = 0.0
    h: float = 0.0
    x: float = 0.0     # top-left, once packed
    y: float = 0.0
    local: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.apps:
            names = sorted(self.apps)
            return ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")
        if self.groups:
            return f"group {min(self.groups)}"
        return "other VMs"


def convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull of `points` (Andrew's monotone chain), counter-clockwise, without repeats."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _find(parent: dict[str, str], key: str) -> str:
    while parent[key] != key:
        parent[key] = parent[parent[key]]
        key = parent[key]
    return key


def _units(vms: list[LayoutVm], group_of: Mapping[str, int]) -> list[_Unit]:
    """VMs of one wave joined by application and by must-move group."""
    parent: dict[str, str] = {}
    first_key: dict[str, str] = {}
    group_key: dict[tuple[int | None, int], str] = {}
    for vm in vms:
        wave = "-" if vm.wave is None else str(vm.wave)
        group = group_of.get(vm.id)
        if vm.app:
            key = f"{wave}|app|{vm.app}"
        elif group is not None:
            key = f"{wave}|group|{group}"
        else:
            key = f"{wave}|other"
        parent.setdefault(key, key)
        first_key[vm.id] = key
        if group is not None:
            joined = group_key.setdefault((vm.wave, group), key)
            a, b = _find(parent, joined), _find(parent, key)
            if a != b:
                parent[max(a, b)] = min(a, b)
    units: dict[str, _Unit] = {}
    for vm in vms:
        root = _find(parent, first_key[vm.id])
        unit = units.setdefault(root, _Unit(key=root, wave=vm.wave))
        unit.members.append(vm.id)
        if vm.app:
            unit.apps.add(vm.app)
        if vm.id in group_of:
            unit.groups.add(group_of[vm.id])
    return [units[k] for k in sorted(units)]


def _place_members(unit: _Unit, order: list[str]) -> None:
    """Member positions relative to the unit's top-left corner: a ring, or a grid in boustrophedon order."""
    n = len(order)
    if n == 1:  # wide enough for its label
        unit.local = {order[0]: (SPACING, PAD)}
        unit.w, unit.h = 2 * SPACING, 2 * PAD + 12
    elif n <= RING_MAX:
        radius = max(SPACING * n / (2 * math.pi), SPACING / 1.5)
        centre = radius + PAD
        for i, vm in enumerate(order):
            angle = 2 * math.pi * i / n - math.pi / 2
            unit.local[vm] = (centre + radius * math.cos(angle), centre + radius * math.sin(angle))
        unit.w = unit.h = 2 * centre
    else:
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        for i, vm in enumerate(order):
            row, col = divmod(i, cols)
            if row % 2:
                col = cols - 1 - col
            unit.local[vm] = (PAD + col * SPACING, PAD + row * SPACING)
        unit.w = 2 * PAD + (cols - 1) * SPACING
        unit.h = 2 * PAD + (rows - 1) * SPACING


def _unit_radius(vms: int) -> float:
    return 6.0 + 4.0 * math.sqrt(vms)


def _shelf(boxes: list[tuple[float, float]], target: float) -> tuple[list[tuple[float, float]], float, float]:
    """Top-left positions of boxes packed in rows no wider than `target` (a wider box gets a row)."""
    placed, x, y, row_h, width = [], 0.0, 0.0, 0.0, 0.0
    for w, h in boxes:
        if x > 0 and x + w > target:
            x, y, row_h = 0.0, y + row_h, 0.0
        placed.append((x, y))
        x += w
        row_h = max(row_h, h)
        width = max(width, x)
    return placed, width, y + row_h


def _wave_sort(wave: int | None) -> tuple[int, int]:
    return (1, 0) if wave is None else (0, wave)


def layout_graph(vms: list[LayoutVm], graph: nx.Graph | None, *,
                 aggregate_above: int = AGGREGATE_ABOVE) -> GraphView:
    """Lay out the VMs (in plan order) and the edges among them; see the module docstring."""
    known = {vm.id for vm in vms}
    groups = [g for g in must_move_groups(graph)] if graph is not None else []
    group_of: dict[str, int] = {}
    for i, group in enumerate(groups, start=1):
        for vm_id in group.vms:
            if vm_id in known:
                group_of[vm_id] = i
    by_id = {vm.id: vm for vm in vms}
    aggregated = len(vms) > aggregate_above
    by_wave: dict[int | None, list[LayoutVm]] = defaultdict(list)
    for vm in vms:
        by_wave[vm.wave].append(vm)
    wave_units: dict[int | None, list[_Unit]] = {}
    for wave in sorted(by_wave, key=_wave_sort):
        units = _units(by_wave[wave], group_of)
        for unit in units:
            if aggregated:
                unit.w = unit.h = 2 * (_unit_radius(len(unit.members)) + PAD / 2)
            else:
                ring = sorted(unit.members, key=lambda v: (group_of.get(v, 1 << 30), by_id[v].app or "",
                                                           by_id[v].name, v))
                _place_members(unit, ring)
        units.sort(key=lambda u: (-len(u.members), u.label, u.key))
        wave_units[wave] = units

    # pack units inside each wave, then the waves in rows
    wave_size: dict[int | None, tuple[float, float]] = {}
    for wave, units in wave_units.items():
        area = sum(u.w * u.h for u in units)
        target = max(max(u.w for u in units), math.sqrt(area) * 1.25)
        spots, w, h = _shelf([(u.w, u.h) for u in units], target)
        for unit, (x, y) in zip(units, spots, strict=True):
            unit.x, unit.y = x + WAVE_PAD, y + WAVE_PAD + 10
        wave_size[wave] = (w + 2 * WAVE_PAD, h + 2 * WAVE_PAD + 10)
    order = sorted(wave_units, key=_wave_sort)
    total = sum(bw * bh for bw, bh in wave_size.values())
    target = max(max(bw for bw, _ in wave_size.values()), math.sqrt(total) * 1.6)
    spots, width, height = _shelf([wave_size[wid] for wid in order], target)
    boxes = []
    for wave, (wx, wy) in zip(order, spots, strict=True):
        gap = 10.0
        boxes.append(WaveBox(wave=wave, x=round(wx + gap / 2, 1), y=round(wy + gap / 2, 1),
                             w=round(wave_size[wave][0] - gap, 1), h=round(wave_size[wave][1] - gap, 1)))
        for unit in wave_units[wave]:
            unit.x += wx
            unit.y += wy

    units_all = [u for wid in order for u in wave_units[wid]]
    nodes: list[GraphNode] = []
    node_of: dict[str, str] = {}
    point: dict[str, tuple[float, float]] = {}
    for n, unit in enumerate(units_all, start=1):
        if aggregated:
            r = _unit_radius(len(unit.members))
            node_id = f"u{n}"
            cx, cy = round(unit.x + unit.w / 2, 1), round(unit.y + unit.h / 2, 1)
            members = sorted(unit.members, key=lambda v: (by_id[v].name, v))
            nodes.append(GraphNode(id=node_id, label=unit.label, wave=unit.wave, x=cx, y=cy, r=round(r, 1),
                                   vms=len(members), members=members,
                                   app=sorted(unit.apps)[0] if len(unit.apps) == 1 else None))
            point[node_id] = (cx, cy)
            for vm_id in members:
                node_of[vm_id] = node_id
        else:
            for vm_id, (lx, ly) in sorted(unit.local.items(), key=lambda item: (by_id[item[0]].name, item[0])):
                vm = by_id[vm_id]
                cx, cy = round(unit.x + lx, 1), round(unit.y + ly, 1)
                nodes.append(GraphNode(id=vm_id, label=vm.name, wave=vm.wave, x=cx, y=cy, r=VM_R, vms=1,
                                       app=vm.app))
                point[vm_id] = (cx, cy)
                node_of[vm_id] = vm_id

    edges, total_edges = _edges(graph, node_of, by_id, aggregated)
    outlines = _outlines(units_all, group_of, node_of, point, aggregated)
    keep = _keep_apart(graph, node_of)
    graph_groups = [GraphGroup(id=i, vms=[v for v in g.vms if v in known], reasons=list(g.reasons),
                               waves=sorted({wid for v in g.vms if v in by_id and (wid := by_id[v].wave) is not None}))
                    for i, g in enumerate(groups, start=1)]
    return GraphView(level="unit" if aggregated else "vm", width=round(max(width, 200.0), 1),
                     height=round(max(height, 100.0), 1), nodes=nodes, edges=edges, edges_total=total_edges,
                     groups=graph_groups, outlines=outlines, keep_apart=keep, waves=boxes)


def _edges(graph: nx.Graph | None, node_of: Mapping[str, str], by_id: Mapping[str, LayoutVm],
           aggregated: bool) -> tuple[list[GraphEdge], int]:
    if graph is None:
        return [], 0
    summed: dict[tuple[str, str], list[Any]] = {}
    for a, b, data in graph.edges(data=True):
        na, nb = node_of.get(str(a)), node_of.get(str(b))
        if na is None or nb is None or na == nb:
            continue
        key = (na, nb) if na < nb else (nb, na)
        entry = summed.setdefault(key, [0.0, False, False])
        entry[0] += float(data.get("weight") or 0.0)
        entry[1] = entry[1] or bool(data.get("hard"))
        entry[2] = entry[2] or by_id[str(a)].wave != by_id[str(b)].wave
    ranked = sorted(summed.items(), key=lambda item: (not item[1][1], -item[1][0], item[0]))
    kept = sorted(ranked[:MAX_UNIT_EDGES if aggregated else MAX_EDGES], key=lambda item: item[0])
    return [GraphEdge(a=a, b=b, weight=round(w, 3), hard=hard, cross_wave=cross)
            for (a, b), (w, hard, cross) in kept], len(summed)


def _outlines(units: list[_Unit], group_of: Mapping[str, int], node_of: Mapping[str, str],
              point: Mapping[str, tuple[float, float]], aggregated: bool) -> list[GraphOutline]:
    parts: dict[tuple[int, int], set[str]] = defaultdict(set)
    for n, unit in enumerate(units):
        for vm_id in unit.members:
            if vm_id in group_of:
                parts[(group_of[vm_id], n)].add(node_of[vm_id])
    outlines: list[GraphOutline] = []
    for (group, _), node_ids in sorted(parts.items()):
        if aggregated:
            outlines.extend(GraphOutline(group=group, node=node) for node in sorted(node_ids))
            continue
        hull = convex_hull([point[n] for n in node_ids])
        if len(hull) == 1:
            x, y = hull[0]
            hull = [(round(x - 0.5, 1), y), (round(x + 0.5, 1), y)]
        outlines.append(GraphOutline(group=group, points=hull))
    return outlines


def _keep_apart(graph: nx.Graph | None, node_of: Mapping[str, str]) -> list[KeepApart]:
    if graph is None:
        return []
    pairs: dict[tuple[str, str], str] = {}
    for entry in graph.graph.get("keep_apart") or []:
        a, b = node_of.get(str(entry.get("a"))), node_of.get(str(entry.get("b")))
        if a is None or b is None or a == b:
            continue
        key = (a, b) if a < b else (b, a)
        pairs.setdefault(key, str(entry.get("reason") or ""))
    return [KeepApart(a=a, b=b, reason=reason) for (a, b), reason in sorted(pairs.items())]
