"""The planning instance as data: units (must-move groups), their sizes, soft adjacency and resolved constraints."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from migrate.core.errors import Problem
from planners.graph import hard_reasons

__all__ = ["Capacity", "Exclusion", "Instance", "PrecedenceSet", "edge_weight", "names_text"]

SHOWN_NAMES = 8


def edge_weight(data: Mapping[str, Any]) -> float:
    """The soft weight of an edge (networkx convention: 1 when the edge has no `weight`)."""
    return float(data.get("weight", 1.0))


def names_text(names: Iterable[str], limit: int = SHOWN_NAMES) -> str:
    """Names joined for a message, cut after `limit` with a count of the rest."""
    items = list(names)
    shown = ", ".join(items[:limit])
    return f"{shown}, and {len(items) - limit} more" if len(items) > limit else shown


@dataclass(frozen=True)
class Capacity:
    """Per-wave caps: max_vms (with the ramp for the first waves) and max_gb; None means unlimited."""

    max_vms: int | None = None
    max_gb: float | None = None
    ramp: tuple[int, ...] = ()

    def vms(self, wave: int) -> float:
        """The VM cap of wave `wave` (0-based)."""
        cap = math.inf if self.max_vms is None else float(self.max_vms)
        return min(cap, float(self.ramp[wave])) if wave < len(self.ramp) else cap

    def gb(self, wave: int) -> float:
        """The disk GiB cap of wave `wave` (0-based): the same for every wave."""
        return math.inf if self.max_gb is None else self.max_gb


@dataclass(frozen=True)
class Exclusion:
    """A VM left out of the migration: why, and which field said so."""

    reason: str
    field: str


@dataclass
class PrecedenceSet:
    """Every unit of `before` moves at least `gap` waves before every unit of `after` (1: strictly earlier,
    0: the same wave or earlier)."""

    before: list[int]
    after: list[int]
    label: str          # the rule's field, e.g. "precedence[2]"
    text: str           # the rule as written, for messages
    gap: int = 1


@dataclass
class Instance:
    """Units, their sizes and soft adjacency, and the constraints on them (see the module docstring)."""

    graph: nx.Graph
    nodes: list[Any]                         # included VMs (not excluded) as graph nodes, by index
    ids: list[str]                           # the same as strings
    names: list[str]
    unit_of: list[int]
    members: list[list[int]]
    count: list[int]
    gb: list[float]
    adj: list[dict[int, float]]
    total_weight: float                      # soft weight of every edge between included VMs
    partners: list[list[int]]                # keep-apart partner units
    keep_apart_pairs: list[tuple[int, int, str]]
    keep_apart_vms: list[tuple[int, int, str]]  # the same as VM index pairs, as declared
    precedence: list[PrecedenceSet]
    before_of: list[list[int]]
    after_of: list[list[int]]
    pin: list[int | None]                    # 0-based wave of a pinned unit
    pin_field: dict[int, str]
    capacity: Capacity
    excluded: dict[str, Exclusion]
    constraints_file: str
    graph_file: str
    warnings: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)     # resolution problems, when not raised
    min_wave: list[int] = field(default_factory=list)         # per unit, the earliest wave (hard rules), 0-based
    env_class: list[int] = field(default_factory=list)        # per unit, its environment when no wave may mix them
    extra_reasons: dict[int, list[str]] = field(default_factory=dict)   # units joined by rules, and why
    rules: Any = None                                         # planners.rules.RuleSet, when rules are active

    @property
    def units(self) -> int:
        return len(self.members)

    def unit_names(self, unit: int) -> list[str]:
        """The VM names of a unit."""
        return [self.names[i] for i in self.members[unit]]

    def unit_reasons(self, unit: int) -> list[str]:
        """The hard reasons that join a unit."""
        sub = self.graph.subgraph([self.nodes[i] for i in self.members[unit]])
        return list(dict.fromkeys([*(r for _, _, d in sub.edges(data=True) if d.get("hard")
                                     for r in hard_reasons(d.get("reasons", []))),
                                   *self.extra_reasons.get(unit, [])]))

    def describe(self, unit: int) -> str:
        """A unit for messages: its names, and its hard reasons if it is a group."""
        names = self.unit_names(unit)
        if len(names) == 1:
            return names[0]
        reasons = "; ".join(self.unit_reasons(unit)[:3])
        return f"group of {len(names)} VMs ({names_text(names)})" + (f" joined by {reasons}" if reasons else "")
