"""The dependency graph: VMs joined by what ties them (traffic, application, DRS, disks, vApps, people).

Nodes are VM ids with `name`, `app`, `gb` (disk GiB), `vcpu`, `memory_mb`, `powered_on`. One
undirected edge per VM pair carries:

- `kinds`: sorted reasons for the edge among flow, app, affinity, shared-disk, vapp, declared, and the
  hint kinds hint-folder, hint-pool, hint-vapp, hint-name, hint-annotation (planners.hints, opt-in);
- `hard`: the two VMs must move in the same wave (DRS VM-VM affinity rules that are enabled,
  multi-writer disks shared by the same datastore path, vApp membership, declared hard links);
- `weight`: the soft cost of cutting the edge across waves, in MiB of observed traffic (flows:
  bytes / 2**20, see planners.flows for rows without bytes), plus the application weight and
  declared weights in the same unit. Hard ties add no weight (they are never cut);
- `bytes`, `connections`: flow totals, both directions (0 without flows); `reasons`: short texts;
- `providers` (only on edges with flows): the VMs that are a flow's `dst`, i.e. the ones the other
  end depends on (both ends when rows go both ways).

Nodes also carry `tags` (category -> names, but the app category: that is `app`) and `attributes` (custom
attributes) when the VM has any.

Application weight: VMs sharing an `app` tag are linked so that separating one VM from the rest of
its application costs `app_weight` (default 100, i.e. as much as 100 MiB of traffic): a clique for
applications of up to 9 VMs, beyond that a ring in name order where each VM links to its
APP_NEIGHBOURS nearest neighbours on each side (the edge count stays linear in the VM count).
Traffic inside an application is usually far heavier, so the app weight mostly matters for VMs
without observed flows. `app_weight=0` adds no app edges. A VM with several app tags joins each
of those applications; its node `app` is the first name in sorted order.

Graph attributes: `keep_apart` (pairs from enabled DRS anti-affinity rules and declared keep_apart,
each {"a", "b", "reason"} with a < b), `unknown_endpoints` and `ambiguous_endpoints` (flow endpoints
that name no VM or several), `flow_stats`, `warnings` (rules or vApps naming VMs not in the
inventory), `app_weight`, `weight_unit`, `sources`, and with hints `hints` (weights, scale, edges and
groups by kind, skipped groups and pairs: planners.hints.hint_links).
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from migrate.core.errors import InputError, Problem
from migrate.core.models.inventory import Inventory, Vm
from planners.flows import EndpointIndex, FlowTable, load_flows, resolve_flows
from planners.hints import HINT_KINDS, HINT_REASON, HintOptions, hint_kind, hint_links
from planners.links import LinksFile, load_links, parse_links, resolve_links

__all__ = [
    "APP_NEIGHBOURS",
    "DEFAULT_APP_WEIGHT",
    "EDGE_KINDS",
    "FlowsInput",
    "LinksInput",
    "build_graph",
    "hard_reasons",
    "vm_app",
]

DEFAULT_APP_WEIGHT = 100.0
APP_NEIGHBOURS = 4
EDGE_KINDS = tuple(sorted(("affinity", "app", "declared", "flow", "shared-disk", "vapp",
                           *(hint_kind(k) for k in HINT_KINDS))))
MULTI_WRITER = "sharingMultiWriter"
APP_REASON = "app "
# Reasons of soft contributions start with these; every other reason comes from a hard tie.
SOFT_REASON_PREFIXES = (APP_REASON, "flows ", "declared link", HINT_REASON)

FlowsInput = FlowTable | str | os.PathLike[str]
LinksInput = LinksFile | Mapping[str, Any] | str | os.PathLike[str]


@dataclass
class _Edge:
    kinds: set[str] = field(default_factory=set)
    weight: float = 0.0
    hard: bool = False
    bytes: int = 0
    connections: int = 0
    reasons: list[str] = field(default_factory=list)
    providers: set[str] = field(default_factory=set)


class _Edges:
    """Accumulates every reason for every VM pair into one edge."""

    def __init__(self) -> None:
        self.edges: dict[tuple[str, str], _Edge] = {}

    def add(self, a: str, b: str, kind: str, reason: str, *, weight: float = 0.0, hard: bool = False) -> _Edge:
        key = (a, b) if a < b else (b, a)
        edge = self.edges.get(key)
        if edge is None:
            edge = self.edges[key] = _Edge()
        edge.kinds.add(kind)
        edge.weight += weight
        edge.hard = edge.hard or hard
        if reason not in edge.reasons:
            edge.reasons.append(reason)
        return edge

    def chain(self, members: Iterable[str], kind: str, reason: str) -> None:
        """Hard edges joining all members into one group (a path is enough for connectivity)."""
        for a, b in itertools.pairwise(dict.fromkeys(members)):
            self.add(a, b, kind, reason, hard=True)


def hard_reasons(reasons: Iterable[str]) -> list[str]:
    """The reasons of an edge that come from hard ties (DRS rule, shared disk, vApp, declared hard link)."""
    return [r for r in reasons if not r.startswith(SOFT_REASON_PREFIXES)]


def vm_app(vm: Vm) -> list[str]:
    """The VM's application names: its tags in the category named `app` (any case), sorted."""
    names: set[str] = set()
    for category, tags in vm.tags.items():
        if category.lower() == "app":
            names.update(t for t in tags if t)
    return sorted(names)


def _app_edges(edges: _Edges, inventory: Inventory, app_weight: float) -> None:
    if app_weight <= 0:
        return
    members: dict[str, list[Vm]] = defaultdict(list)
    for vm in inventory.vms:
        for app in vm_app(vm):
            members[app].append(vm)
    for app, vms in sorted(members.items()):
        ring = [vm.id for vm in sorted(vms, key=lambda v: (v.name, v.id))]
        n = len(ring)
        if n < 2:
            continue
        reach = min(APP_NEIGHBOURS, n // 2)
        per_edge = app_weight / min(2 * reach, n - 1)
        pairs = {tuple(sorted((ring[i], ring[(i + k) % n]))) for i in range(n) for k in range(1, reach + 1)}
        for a, b in sorted(pairs):
            edges.add(a, b, "app", f"{APP_REASON}{app}", weight=per_edge)


def _drs_rules(edges: _Edges, inventory: Inventory, keep_apart: dict[tuple[str, str], list[str]],
               warnings: list[str]) -> None:
    known = {vm.id for vm in inventory.vms}
    for cluster in inventory.clusters:
        for rule in cluster.rules:
            if not rule.enabled or rule.kind == "vm-host":
                continue
            missing = [vm for vm in rule.vms if vm not in known]
            if missing:
                warnings.append(f"DRS rule {rule.name} (cluster {cluster.name}) names VMs not in the "
                                f"inventory: {', '.join(missing)}")
            members = [vm for vm in dict.fromkeys(rule.vms) if vm in known]
            reason = f"DRS rule {rule.name}"
            if rule.kind == "affinity":
                edges.chain(members, "affinity", reason)
            else:
                for a, b in itertools.combinations(sorted(members), 2):
                    keep_apart.setdefault((a, b), []).append(reason)


def _shared_disks(edges: _Edges, inventory: Inventory) -> None:
    sharers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for vm in inventory.vms:
        for disk in vm.disks:
            if disk.sharing == MULTI_WRITER and disk.path:
                sharers[(disk.datastore or "", disk.path)].append(vm.id)
    for (datastore, path), vms in sorted(sharers.items()):
        edges.chain(vms, "shared-disk", f"shared disk [{datastore}] {path}")


def _vapps(edges: _Edges, inventory: Inventory, warnings: list[str]) -> None:
    known = {vm.id for vm in inventory.vms}
    groups: dict[str, list[str]] = {}
    by_name: dict[str, list[str]] = defaultdict(list)
    for vapp in inventory.vapps:
        by_name[vapp.name].append(vapp.id)
        missing = [vm for vm in vapp.vms if vm not in known]
        if missing:
            warnings.append(f"vApp {vapp.name} names VMs not in the inventory: {', '.join(missing)}")
        groups[f"id:{vapp.id}"] = [vm for vm in vapp.vms if vm in known]
    labels = {f"id:{vapp.id}": vapp.name for vapp in inventory.vapps}
    for vm in inventory.vms:
        if not vm.vapp:
            continue
        ids = by_name.get(vm.vapp, [])
        key = f"id:{ids[0]}" if len(ids) == 1 else f"name:{vm.vapp}"
        groups.setdefault(key, []).append(vm.id)
        labels.setdefault(key, vm.vapp)
    for key, members in sorted(groups.items()):
        edges.chain(sorted(set(members)), "vapp", f"vApp {labels[key]}")


def _node(vm: Vm) -> dict[str, Any]:
    apps = vm_app(vm)
    node: dict[str, Any] = {"name": vm.name, "app": apps[0] if apps else None,
                            "gb": round(vm.storage_bytes / 2**30, 3), "vcpu": vm.cpus, "memory_mb": vm.memory_mb,
                            "powered_on": vm.power_state == "poweredOn"}
    tags = {category: sorted(names) for category, names in sorted(vm.tags.items()) if category.lower() != "app"}
    if tags:
        node["tags"] = tags
    if vm.custom_attributes:
        node["attributes"] = dict(sorted(vm.custom_attributes.items()))
    return node


def _load_inputs(flows: FlowsInput | None, links: LinksInput | None) -> tuple[FlowTable | None, LinksFile | None]:
    """Read the flows and links files, reporting the problems of both at once."""
    problems: list[Problem] = []
    table: FlowTable | None = None
    declared: LinksFile | None = None
    try:
        table = flows if isinstance(flows, FlowTable) or flows is None else load_flows(Path(flows))
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        if isinstance(links, LinksFile) or links is None:
            declared = links
        elif isinstance(links, Mapping):
            declared = parse_links(links)
        else:
            declared = load_links(Path(links))
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return table, declared


def _hard_groups(edges: _Edges) -> dict[str, int]:
    """VM id -> its must-move group's number, for the VMs that hard edges join."""
    hard = nx.Graph((a, b) for (a, b), edge in edges.edges.items() if edge.hard)
    return {vm: i for i, component in enumerate(nx.connected_components(hard)) for vm in component}


def _hint_edges(edges: _Edges, inventory: Inventory, hints: HintOptions,
                flow_weights: dict[tuple[str, str], float]) -> dict[str, Any]:
    groups = _hard_groups(edges)
    result = hint_links(inventory, hints, flow_weights=flow_weights,
                        together=lambda a, b: a in groups and groups[a] == groups.get(b))
    for link in result.links:
        edges.add(link.a, link.b, link.kind, link.reason, weight=link.weight)
    return result.report


def build_graph(inventory: Inventory, flows: FlowsInput | None = None, links: LinksInput | None = None, *,
                app_weight: float = DEFAULT_APP_WEIGHT, hints: HintOptions | None = None) -> nx.Graph:
    """Build the undirected dependency graph of an inventory (see the module docstring for its schema).

    `flows` is a flows.csv path or a parsed FlowTable; `links` a links.yaml path, a parsed LinksFile or
    the mapping read from YAML; `hints` the hint kinds to add (planners.hints), none by default. Bad
    files raise InputError listing every problem; flow endpoints that name no VM are reported in
    graph.graph["unknown_endpoints"], never an error. Contradictions (a
    keep-apart pair that hard edges join) are left for planners.summary.conflicts to report.
    """
    if app_weight < 0:
        raise InputError.single("--app-weight", "app_weight", "must not be negative")
    table, declared = _load_inputs(flows, links)
    index = EndpointIndex(inventory)
    resolved = resolve_links(declared, inventory, index) if declared is not None else None

    edges = _Edges()
    keep_apart: dict[tuple[str, str], list[str]] = {}
    warnings: list[str] = []
    _app_edges(edges, inventory, app_weight)
    _drs_rules(edges, inventory, keep_apart, warnings)
    _shared_disks(edges, inventory)
    _vapps(edges, inventory, warnings)

    graph = nx.Graph()
    graph.graph.update(app_weight=float(app_weight), weight_unit="MiB",
                       sources={"inventory": inventory.provenance.source,
                                "flows": table.file if table else None,
                                "links": declared.file if declared else None})
    if table is not None:
        flow_result = resolve_flows(table.rows, index)
        for (a, b), flow in sorted(flow_result.edges.items()):
            edge = edges.add(a, b, "flow", flow.reason(), weight=flow.weight)
            edge.bytes += flow.bytes
            edge.connections += flow.connections
            edge.providers.update(flow.providers)
        graph.graph["flow_stats"] = flow_result.stats
        unknown = [r.to_dict() for r in flow_result.unknown]
        ambiguous = [r.to_dict() for r in flow_result.ambiguous]
        flow_weights = {pair: flow.weight for pair, flow in flow_result.edges.items()}
    else:
        unknown, ambiguous, flow_weights = [], [], {}
    if resolved is not None:
        for link in resolved.links:
            label = "declared hard link" if link.hard else "declared link"
            reason = f"{label}: {link.reason}" if link.reason else label
            edges.add(link.a, link.b, "declared", reason, weight=link.weight, hard=link.hard)
        for pair in resolved.keep_apart:
            keep_apart.setdefault((pair.a, pair.b), []).append(
                f"declared: {pair.reason}" if pair.reason else "declared keep-apart")
    if hints is not None:
        graph.graph["hints"] = _hint_edges(edges, inventory, hints, flow_weights)

    for vm in inventory.vms:
        graph.add_node(vm.id, **_node(vm))
    for (a, b), edge in sorted(edges.edges.items()):
        extra = {"providers": sorted(edge.providers)} if edge.providers else {}
        graph.add_edge(a, b, kinds=sorted(edge.kinds), weight=round(edge.weight, 6), hard=edge.hard,
                       bytes=edge.bytes, connections=edge.connections, reasons=list(edge.reasons), **extra)
    graph.graph.update(
        keep_apart=[{"a": a, "b": b, "reason": "; ".join(dict.fromkeys(reasons))}
                    for (a, b), reasons in sorted(keep_apart.items())],
        unknown_endpoints=unknown,
        ambiguous_endpoints=ambiguous,
        warnings=warnings,
    )
    return graph
