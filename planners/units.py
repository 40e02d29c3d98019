"""The planning instance: VMs contracted into units (must-move groups) with every constraint resolved to them.

A unit is a connected component over hard edges; the planner places units, never single VMs of one.
Soft edge weights between units are summed into `adj`; keep-apart pairs, precedence rules and pins are
resolved from VM references (id, name or `app:NAME`) to unit numbers. Resolution problems (unknown or
ambiguous names, contradictions inside one unit) are collected and raised together as InputError.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import networkx as nx

from migrate.core.errors import InputError, Problem
from planners.instance import Capacity, Exclusion, Instance, PrecedenceSet, edge_weight, names_text
from planners.plan_model import Constraints
from planners.rule_model import Rules
from planners.rules import add_reasons, attach_rules, classify_nodes, rule_unions

__all__ = ["Capacity", "Exclusion", "Instance", "PrecedenceSet", "Resolver", "build_instance", "edge_weight",
           "names_text"]


class Resolver:
    """Maps VM references (id, exact name, app:NAME) to graph node keys (as strings)."""

    def __init__(self, graph: nx.Graph) -> None:
        self.ids = {str(node) for node in graph.nodes}
        self.by_name: dict[str, list[str]] = defaultdict(list)
        self.by_app: dict[str, list[str]] = defaultdict(list)
        for node, data in graph.nodes(data=True):
            self.by_name[str(data.get("name") or node)].append(str(node))
            if data.get("app"):
                self.by_app[str(data["app"])].append(str(node))

    def resolve(self, ref: str, *, allow_app: bool = True) -> tuple[list[str], str | None]:
        """The VM ids a reference names, or an error message."""
        if ref.startswith("app:") and allow_app:
            members = self.by_app.get(ref[4:].strip())
            return (sorted(members), None) if members else ([], f"no VM has app {ref[4:].strip()!r}")
        if ref in self.ids:
            return [ref], None
        found = self.by_name.get(ref, [])
        if len(found) == 1:
            return found, None
        if found:
            return [], f"{len(found)} VMs are named {ref!r}: use the VM id ({', '.join(sorted(found)[:3])}, ...)"
        return [], f"no VM with id or name {ref!r}"


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class _Builder:
    """Resolves constraints against a graph, collecting every problem."""

    def __init__(self, graph: nx.Graph, constraints: Constraints, cfile: str, prefix: str) -> None:
        self.graph = graph
        self.constraints = constraints
        self.cfile = cfile
        self.prefix = prefix
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.resolver = Resolver(graph)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.cfile, f"{self.prefix}{where}", message))

    def one_vm(self, ref: str, where: str) -> str | None:
        ids, error = self.resolver.resolve(ref, allow_app=False)
        if error:
            self.problem(where, error)
            return None
        return ids[0]

    def exclusions(self, extra: Mapping[str, Exclusion]) -> tuple[dict[str, Exclusion], dict[str, tuple[int, str]]]:
        excluded = dict(extra)
        pins: dict[str, tuple[int, str]] = {}
        seen: dict[str, tuple[str, int | str]] = {}
        for i, pin in enumerate(self.constraints.pins):
            where = f"pins[{i}].vm"
            vm = self.one_vm(pin.vm, where)
            if vm is None:
                continue
            value: int | str = pin.wave if pin.wave is not None else f"exclude: {pin.exclude}"
            if vm in seen:
                if seen[vm][1] != value:
                    self.problem(where, f"{pin.vm} is pinned differently by {self.prefix}{seen[vm][0]} "
                                 f"({seen[vm][1]}) and here ({value})")
                continue
            seen[vm] = (where, value)
            if pin.wave is not None:
                pins[vm] = (pin.wave - 1, f"{self.prefix}{where}")
            else:
                excluded[vm] = Exclusion(str(pin.exclude), f"{self.prefix}{where}")
        return excluded, pins


def _node_name(graph: nx.Graph, node: Any) -> str:
    return str(graph.nodes[node].get("name") or node)


def build_instance(graph: nx.Graph, constraints: Constraints, *, constraints_file: str = "constraints",
                   prefix: str = "", graph_file: str = "graph",
                   extra_excluded: Mapping[str, Exclusion] | None = None, strict: bool = True) -> Instance:
    """Contract hard groups into units and resolve every constraint; InputError lists every problem.

    `prefix` goes before constraint field names (e.g. "constraints." when they come from a plan);
    `extra_excluded` adds exclusions (e.g. the `excluded` list of a hand-edited plan). With
    `strict=False` the problems are left in `inst.problems` (rules that cannot be resolved are skipped),
    so that feasibility checks can add theirs and report everything at once.
    """
    b = _Builder(graph, constraints, constraints_file, prefix)
    _windows(b)
    excluded, pinned = b.exclusions(extra_excluded or {})
    nodes = list(graph.nodes)
    all_index = {str(node): i for i, node in enumerate(nodes)}
    uf = _UnionFind(len(nodes))
    soft: list[tuple[int, int, float]] = []
    total = 0.0
    for x, y, data in graph.edges(data=True):
        i, j = all_index[x if isinstance(x, str) else str(x)], all_index[y if isinstance(y, str) else str(y)]
        if i == j:
            continue
        if data.get("hard"):
            uf.union(i, j)
        soft.append((i, j, float(data.get("weight", 1.0))))
    _check_excluded_groups(b, nodes, uf, excluded)
    rules = constraints.rules or Rules()
    included = [str(node) not in excluded for node in nodes]
    classes = reasons = None
    if rules.active():
        classes = classify_nodes(graph, constraints.classify, rules)
        cap = Capacity(constraints.max_vms, constraints.max_gb, tuple(constraints.ramp))
        reasons = rule_unions(rules, graph, classes, included, uf.find, uf.union,
                              (cap.vms(len(cap.ramp)), cap.gb(0)), b.warnings, prefix)

    keep = [i for i, node in enumerate(nodes) if included[i]]
    local = {g: k for k, g in enumerate(keep)}
    roots: dict[int, int] = {}
    unit_of = []
    members: list[list[int]] = []
    for k, g in enumerate(keep):
        root = uf.find(g)
        unit = roots.get(root)
        if unit is None:
            unit = roots[root] = len(members)
            members.append([])
        members[unit].append(k)
        unit_of.append(unit)
    attrs = [graph.nodes[nodes[g]] for g in keep]
    gb_vm = [float(a.get("gb") or 0.0) for a in attrs]
    adj: list[dict[int, float]] = [{} for _ in members]
    for i, j, w in soft:
        li, lj = local.get(i), local.get(j)
        if li is None or lj is None:
            continue
        total += w
        ui, uj = unit_of[li], unit_of[lj]
        if ui != uj and w:
            adj[ui][uj] = adj[ui].get(uj, 0.0) + w
            adj[uj][ui] = adj[uj].get(ui, 0.0) + w
    inst = Instance(
        graph=graph, nodes=[nodes[g] for g in keep], ids=[str(nodes[g]) for g in keep],
        names=[_node_name(graph, nodes[g]) for g in keep],
        unit_of=unit_of, members=members, count=[len(m) for m in members],
        gb=[round(sum(gb_vm[k] for k in m), 6) for m in members], adj=adj, total_weight=total,
        partners=[[] for _ in members], keep_apart_pairs=[], keep_apart_vms=[], precedence=[],
        before_of=[[] for _ in members], after_of=[[] for _ in members], pin=[None] * len(members), pin_field={},
        capacity=Capacity(constraints.max_vms, constraints.max_gb, tuple(constraints.ramp)),
        excluded=excluded, constraints_file=constraints_file, graph_file=graph_file,
        min_wave=[0] * len(members), env_class=[-1] * len(members))
    index = {vm: k for k, vm in enumerate(inst.ids)}
    if reasons:
        add_reasons(inst, keep, reasons)
    _keep_apart(b, inst, index)
    _precedence(b, inst, index)
    _pins(b, inst, index, pinned)
    if classes is not None:
        attach_rules(inst, rules, classes, keep, b.problems, prefix)
    inst.warnings.extend(b.warnings)
    if b.problems and strict:
        raise InputError(b.problems)
    inst.problems = b.problems
    return inst


def _windows(b: _Builder) -> None:
    """Cutover windows must not overlap and must come in chronological order."""
    windows = b.constraints.windows
    for i in range(1, len(windows)):
        if windows[i].start < windows[i - 1].end:
            b.problem(f"windows[{i}]", f"starts {windows[i].start.isoformat()}, before windows[{i - 1}] ends "
                      f"({windows[i - 1].end.isoformat()}): list windows in chronological order, without overlap")


def _check_excluded_groups(b: _Builder, nodes: list[Any], uf: _UnionFind, excluded: Mapping[str, Exclusion]) -> None:
    """A must-move group is excluded whole or not at all."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(nodes)):
        groups[uf.find(i)].append(i)
    for group in groups.values():
        out = [i for i in group if str(nodes[i]) in excluded]
        if out and len(out) < len(group):
            stay = [_node_name(b.graph, nodes[i]) for i in group if str(nodes[i]) not in excluded]
            first = excluded[str(nodes[out[0]])]
            b.problems.append(Problem(b.cfile, first.field, (
                f"{names_text(_node_name(b.graph, nodes[i]) for i in out)} excluded ({first.reason}) but must move "
                f"with {names_text(stay)} (hard ties): exclude the whole group or none of it")))


def _keep_apart(b: _Builder, inst: Instance, index: Mapping[str, int]) -> None:
    pairs: dict[tuple[int, int], list[tuple[str, str]]] = {}
    raw: list[tuple[str, str, str, str]] = [(str(p["a"]), str(p["b"]), str(p.get("reason", "")), "graph")
                                            for p in inst.graph.graph.get("keep_apart", [])]
    for i, rule in enumerate(b.constraints.keep_apart):
        a, c = b.one_vm(rule.a, f"keep_apart[{i}].a"), b.one_vm(rule.b, f"keep_apart[{i}].b")
        if a is not None and c is not None:
            if a == c:
                b.problem(f"keep_apart[{i}]", f"{rule.a} and {rule.b} are the same VM")
                continue
            raw.append((a, c, rule.reason or "keep_apart", f"{b.prefix}keep_apart[{i}]"))
    for a, c, reason, where in raw:
        if a not in index or c not in index:
            continue
        ua, uc = inst.unit_of[index[a]], inst.unit_of[index[c]]
        if ua == uc and a != c:
            names = (inst.names[index[a]], inst.names[index[c]])
            file, fld = (inst.graph_file, "keep_apart") if where == "graph" else (b.cfile, where)
            b.problems.append(Problem(file, fld, f"{names[0]} and {names[1]} must stay apart ({reason}) but "
                                      f"must move together: {inst.describe(ua)}"))
            continue
        key = (min(ua, uc), max(ua, uc))
        pairs.setdefault(key, []).append((reason, where))
        inst.keep_apart_vms.append((index[a], index[c], reason))
    for (ua, uc), reasons in sorted(pairs.items()):
        inst.partners[ua].append(uc)
        inst.partners[uc].append(ua)
        inst.keep_apart_pairs.append((ua, uc, "; ".join(dict.fromkeys(r for r, _ in reasons))))


def _side(b: _Builder, inst: Instance, index: Mapping[str, int], ref: str, where: str) -> list[int] | None:
    ids, error = b.resolver.resolve(ref)
    if error:
        b.problem(where, error)
        return None
    return sorted({inst.unit_of[index[vm]] for vm in ids if vm in index})


def _precedence(b: _Builder, inst: Instance, index: Mapping[str, int]) -> None:
    for i, rule in enumerate(b.constraints.precedence):
        where = f"precedence[{i}]"
        before = _side(b, inst, index, rule.before, f"{where}.before")
        after = _side(b, inst, index, rule.after, f"{where}.after")
        if before is None or after is None:
            continue
        if not before or not after:
            b.warnings.append(f"{b.prefix}{where} ({rule.before} before {rule.after}) is ignored: every VM of one "
                              "side is excluded")
            continue
        both = sorted(set(before) & set(after))
        if both:
            b.problem(where, f"{rule.before} must move before {rule.after}, but both name "
                      f"{inst.describe(both[0])}, which cannot move before itself")
            continue
        k = len(inst.precedence)
        inst.precedence.append(PrecedenceSet(before, after, f"{b.prefix}{where}", f"{rule.before} before {rule.after}"))
        for u in before:
            inst.before_of[u].append(k)
        for u in after:
            inst.after_of[u].append(k)


def _pins(b: _Builder, inst: Instance, index: Mapping[str, int], pinned: Mapping[str, tuple[int, str]]) -> None:
    for vm, (wave, where) in pinned.items():
        if vm not in index:
            continue
        unit = inst.unit_of[index[vm]]
        if inst.pin[unit] is not None and inst.pin[unit] != wave:
            b.problems.append(Problem(b.cfile, where, (
                f"{inst.names[index[vm]]} is pinned to wave {wave + 1} but {inst.describe(unit)} is also pinned "
                f"to wave {(inst.pin[unit] or 0) + 1} by {inst.pin_field[unit]}")))
            continue
        inst.pin[unit] = wave
        inst.pin_field.setdefault(unit, where)
