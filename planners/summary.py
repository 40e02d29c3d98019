"""Reading a built graph: must-move-together groups, contradictions, and a summary for people."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import networkx as nx

from planners.graph import hard_reasons

__all__ = ["MoveGroup", "conflicts", "graph_summary", "hard_subgraph", "must_move_groups"]

TOP = 10


@dataclass(frozen=True)
class MoveGroup:
    """VMs joined by hard edges: they move in the same wave or not at all."""

    vms: tuple[str, ...]          # VM ids, in name order
    names: tuple[str, ...]
    gb: float
    vcpu: int
    memory_mb: int
    reasons: tuple[str, ...]      # why: the hard reasons of the edges inside the group

    @property
    def size(self) -> int:
        return len(self.vms)

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "vms": list(self.vms), "names": list(self.names), "gb": self.gb,
                "vcpu": self.vcpu, "memory_mb": self.memory_mb, "reasons": list(self.reasons)}


def hard_subgraph(graph: nx.Graph) -> nx.Graph:
    """Every node of `graph`, with only its hard edges."""
    hard = nx.Graph()
    hard.add_nodes_from(graph.nodes)
    hard.add_edges_from((a, b, data) for a, b, data in graph.edges(data=True) if data.get("hard"))
    return hard


def _name(graph: nx.Graph, node: str) -> str:
    return str(graph.nodes[node].get("name") or node)


def must_move_groups(graph: nx.Graph, *, min_size: int = 2) -> list[MoveGroup]:
    """Connected components over hard edges with at least `min_size` VMs, largest first, with their sizes.

    `min_size=1` returns a partition of every VM (singletons included), the units a wave planner places.
    """
    hard = hard_subgraph(graph)
    groups = []
    for component in nx.connected_components(hard):
        if len(component) < min_size:
            continue
        members = sorted(component, key=lambda n: (_name(graph, n), str(n)))
        attrs = [graph.nodes[n] for n in members]
        reasons = dict.fromkeys(r for _, _, data in hard.subgraph(members).edges(data=True)
                                for r in hard_reasons(data.get("reasons", [])))
        groups.append(MoveGroup(
            vms=tuple(members), names=tuple(_name(graph, n) for n in members),
            gb=round(sum(float(a.get("gb") or 0) for a in attrs), 3),
            vcpu=sum(int(a.get("vcpu") or 0) for a in attrs),
            memory_mb=sum(int(a.get("memory_mb") or 0) for a in attrs),
            reasons=tuple(reasons)))
    groups.sort(key=lambda g: (-g.size, -g.gb, g.names))
    return groups


def conflicts(graph: nx.Graph) -> list[dict[str, Any]]:
    """Keep-apart pairs whose VMs hard edges join into one must-move-together group (a contradiction).

    Each comes with the chain of VMs that joins them and the reasons of its edges, so a person can see
    which rule to drop. The planner refuses a graph with conflicts.
    """
    hard = hard_subgraph(graph)
    found = []
    for pair in graph.graph.get("keep_apart", []):
        a, b = pair["a"], pair["b"]
        if a not in hard or b not in hard or not nx.has_path(hard, a, b):
            continue
        path = nx.shortest_path(hard, a, b)
        joined_by = dict.fromkeys(r for x, y in itertools.pairwise(path)
                                  for r in hard_reasons(hard.edges[x, y].get("reasons", [])))
        found.append({"a": a, "b": b, "a_name": _name(graph, a), "b_name": _name(graph, b),
                      "reason": pair.get("reason", ""), "path": [_name(graph, n) for n in path],
                      "joined_by": list(joined_by)})
    return found


def _endpoints(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(entries), "rows": sum(int(e.get("rows", 0)) for e in entries),
            "bytes": sum(int(e.get("bytes", 0)) for e in entries), "top": entries[:TOP]}


def graph_summary(graph: nx.Graph) -> dict[str, Any]:
    """Counts and highlights for people: edges by kind, groups, heaviest cross-app links, endpoints.

    Cross-app links join two VMs whose (present) app tags differ; untagged VMs are not counted. `hints`
    is the graph's hint report (planners.hints) or None when it was built without hints.
    """
    kinds: Counter[str] = Counter()
    cross_app = []
    for a, b, data in graph.edges(data=True):
        kinds.update(data.get("kinds", []))
        app_a, app_b = graph.nodes[a].get("app"), graph.nodes[b].get("app")
        if app_a and app_b and app_a != app_b and data.get("weight", 0.0) > 0:
            first, second = sorted([(_name(graph, a), app_a), (_name(graph, b), app_b)])
            cross_app.append({"a": first[0], "b": second[0], "a_app": first[1], "b_app": second[1],
                              "weight": float(data.get("weight", 0.0)), "kinds": list(data.get("kinds", []))})
    cross_app.sort(key=lambda e: (-e["weight"], e["a"], e["b"]))
    groups = must_move_groups(graph)
    return {
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "edges_by_kind": dict(sorted(kinds.items())),
        "hard_edges": sum(1 for _, _, hard in graph.edges(data="hard") if hard),
        "components": nx.number_connected_components(graph) if len(graph) else 0,
        "isolated": nx.number_of_isolates(graph),
        "must_move_groups": len(groups),
        "vms_in_groups": sum(g.size for g in groups),
        "largest_group": groups[0].to_dict() if groups else None,
        "heaviest_cross_app": cross_app[:TOP],
        "keep_apart": len(graph.graph.get("keep_apart", [])),
        "conflicts": conflicts(graph),
        "unknown_endpoints": _endpoints(graph.graph.get("unknown_endpoints", [])),
        "ambiguous_endpoints": _endpoints(graph.graph.get("ambiguous_endpoints", [])),
        "flow_stats": graph.graph.get("flow_stats"),
        "hints": graph.graph.get("hints"),
        "warnings": list(graph.graph.get("warnings", [])),
    }
