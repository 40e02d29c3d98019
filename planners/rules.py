"""Policy rules (planners.rule_model) resolved against a graph: per-VM classes, and the hard rules as constraints.

Hard rules become constraints the planner already keeps: `application_whole` and the cycles of
`dependencies_first` join VMs into units (as hard ties do); `environment_order` and `dependencies_first`
become precedence with gap 0 (the same wave or earlier); `critical_not_before` an earliest wave per unit;
`no_mixed_environments` one environment class per unit that no wave may mix. Soft rules are costs
(planners.penalty). A unit that joins VMs of two environments under a hard environment rule is a problem.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from migrate.core.errors import Problem
from planners.instance import Instance, PrecedenceSet, names_text
from planners.rule_model import Classifier, Classify, Rules

__all__ = ["RULES_FIELD", "RuleSet", "VmClasses", "add_reasons", "attach_rules", "classify_nodes", "rule_unions"]

RULES_FIELD = "rules"


@dataclass
class VmClasses:
    """Per graph node (by position in list(graph.nodes)): environment (casefolded), critical, application."""

    env: list[str | None]
    critical: list[bool]
    app: list[str | None]


@dataclass
class RuleSet:
    """The rules in force and what they read, per included VM (index k) and per unit."""

    rules: Rules
    prefix: str
    env_names: list[str]                    # environment values; a VM's class is its index here
    env_rank: dict[int, int]                # class -> rank in environment_order (classes in the order only)
    app_names: list[str]
    vm_env: list[int]                       # per included VM: class or -1
    vm_critical: list[bool]
    vm_app: list[int]                       # per included VM: application index or -1
    vm_deps: list[tuple[int, int]]          # (provider VM, consumer VM): the provider moves first or with it
    unit_env: list[dict[int, int]] = field(default_factory=list)     # per unit: class -> VMs
    unit_app: list[dict[int, int]] = field(default_factory=list)
    unit_critical: list[int] = field(default_factory=list)
    unit_deps: list[tuple[int, int, int]] = field(default_factory=list)  # provider unit, consumer unit, VM pairs
    app_fits: list[bool] = field(default_factory=list)    # per application: fits one wave (else it may split)
    dep_units: set[int] = field(default_factory=set)

    def field(self, name: str) -> str:
        return f"{self.prefix}{RULES_FIELD}.{name}"

    def bears(self, u: int) -> bool:
        """Whether any rule reads unit u."""
        return bool(self.unit_env[u] or self.unit_app[u] or self.unit_critical[u] or u in self.dep_units)


def _casefold(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _value(attrs: Mapping[str, Any], name: str, classifier: Classifier) -> str | None:
    """The value a classifier finds for one VM: tag category, then custom attribute, then name pattern."""
    if classifier.tag:
        tags = attrs.get("tags")
        wanted = classifier.tag.lower()
        for category, values in sorted(tags.items()) if isinstance(tags, Mapping) else ():
            if str(category).lower() == wanted:
                items = sorted(str(v) for v in (values if isinstance(values, list | tuple) else [values]) if v)
                if items:
                    return items[0]
        if wanted == "app" and attrs.get("app"):
            return str(attrs["app"])        # the graph keeps the app tag as the node's `app`
    if classifier.attribute:
        custom = attrs.get("attributes")
        if isinstance(custom, Mapping) and _casefold(custom.get(classifier.attribute)):
            return str(custom[classifier.attribute]).strip()
    if classifier.pattern:
        match = re.search(classifier.pattern, name)
        if match:
            groups = match.groupdict()
            value = groups.get("value") if "value" in groups else (match.group(1) if match.re.groups else match[0])
            return _casefold(value)
    return None


def classify_nodes(graph: nx.Graph, classify: Classify | None, rules: Rules) -> VmClasses:
    """Every node's environment, criticality and application, as the rules in force need them."""
    classify = classify or Classify()
    crit_rule = rules.critical_not_before
    critical_values = {v.strip().lower() for v in crit_rule.values} if crit_rule else set()
    env_wanted = rules.environment_order is not None or rules.no_mixed_environments is not None
    env: list[str | None] = []
    critical: list[bool] = []
    app: list[str | None] = []
    for node, attrs in graph.nodes(data=True):
        name = str(attrs.get("name") or node)
        value = _value(attrs, name, classify.environment) if env_wanted else None
        env.append(value.lower() if value else None)
        crit = _value(attrs, name, classify.criticality) if critical_values else None
        critical.append(bool(crit) and str(crit).lower() in critical_values)
        app.append(_value(attrs, name, classify.application) if rules.application_whole else None)
    return VmClasses(env, critical, app)


def _providers(graph: nx.Graph) -> list[tuple[Any, Any]]:
    """(provider node, consumer node) for every flow direction the graph records."""
    pairs = []
    for a, b, data in graph.edges(data=True):
        for p in data.get("providers") or []:
            if str(p) == str(a):
                pairs.append((a, b))
            elif str(p) == str(b):
                pairs.append((b, a))
    return pairs


def rule_unions(rules: Rules, graph: nx.Graph, classes: VmClasses, included: list[bool],
                find: Callable[[int], int], union: Callable[[int, int], None],
                limits: tuple[float, float], warnings: list[str], prefix: str) -> dict[int, list[str]]:
    """Join VMs the hard rules keep together; returns reasons by node position (of one member)."""
    nodes = list(graph.nodes)
    reasons: dict[int, list[str]] = defaultdict(list)
    if rules.application_whole is not None and rules.application_whole.hard:
        _whole_apps(graph, classes, included, find, union, limits, warnings, reasons, prefix)
    if rules.dependencies_first is not None and rules.dependencies_first.hard:
        pos = {node: i for i, node in enumerate(nodes)}
        digraph = nx.DiGraph()
        for p, c in _providers(graph):
            i, j = pos[p], pos[c]
            if included[i] and included[j] and find(i) != find(j):
                digraph.add_edge(find(i), find(j))
        for scc in nx.strongly_connected_components(digraph):
            if len(scc) < 2:
                continue
            members = sorted(scc)
            for other in members[1:]:
                union(members[0], other)
            names = [str(graph.nodes[nodes[i]].get("name") or nodes[i]) for i in members]
            reasons[members[0]].append(f"depend on each other: {names_text(sorted(names), 4)} "
                                       f"({prefix}{RULES_FIELD}.dependencies_first)")
    return reasons


def _whole_apps(graph: nx.Graph, classes: VmClasses, included: list[bool], find: Callable[[int], int],
                union: Callable[[int, int], None], limits: tuple[float, float], warnings: list[str],
                reasons: dict[int, list[str]], prefix: str) -> None:
    nodes = list(graph.nodes)
    pos = {str(node): i for i, node in enumerate(nodes)}
    apart = [(pos[str(p["a"])], pos[str(p["b"])]) for p in graph.graph.get("keep_apart", [])
             if str(p["a"]) in pos and str(p["b"]) in pos]
    size: dict[int, list[float]] = defaultdict(lambda: [0, 0.0])
    for i, node in enumerate(nodes):
        if included[i]:
            entry = size[find(i)]
            entry[0] += 1
            entry[1] += float(graph.nodes[node].get("gb") or 0.0)
    members: dict[str, list[int]] = defaultdict(list)
    for i, app in enumerate(classes.app):
        if app is not None and included[i]:
            members[app].append(i)
    for app, vms in sorted(members.items()):
        roots = sorted({find(i) for i in vms})
        count = sum(size[r][0] for r in roots)
        gb = sum(size[r][1] for r in roots)
        if count > limits[0] or gb > limits[1] + 1e-9:
            warnings.append(f"{prefix}{RULES_FIELD}.application_whole: application {app} ({count:g} VMs, {gb:g} GB "
                            "with its hard ties) exceeds a wave and may be split")
            continue
        inside = set(roots)
        pair = next(((i, j) for i, j in apart if find(i) in inside and find(j) in inside), None)
        if pair is not None:
            names = [str(graph.nodes[nodes[i]].get("name") or nodes[i]) for i in pair]
            warnings.append(f"{prefix}{RULES_FIELD}.application_whole: application {app} holds {names[0]} and "
                            f"{names[1]}, which must stay apart: it may be split")
            continue
        if len(roots) < 2:
            continue
        for r in roots[1:]:
            union(roots[0], r)
        size[find(roots[0])] = [count, gb]
        reasons[vms[0]].append(f"application {app} whole ({prefix}{RULES_FIELD}.application_whole)")


def add_reasons(inst: Instance, keep: list[int], reasons: Mapping[int, list[str]]) -> None:
    """Why rules joined units, for messages and plan.yaml (keep: node position of each VM)."""
    local = {g: k for k, g in enumerate(keep)}
    for g, texts in reasons.items():
        if g in local:
            inst.extra_reasons.setdefault(inst.unit_of[local[g]], []).extend(texts)


def attach_rules(inst: Instance, rules: Rules, classes: VmClasses, keep: list[int], problems: list[Problem],
                 prefix: str) -> None:
    """Per-unit rule data and the hard rules as constraints on `inst` (keep: node position of each VM)."""
    env_names = sorted({e for e in (classes.env[g] for g in keep) if e is not None})
    env_index = {e: i for i, e in enumerate(env_names)}
    apps = sorted({a for a in (classes.app[g] for g in keep) if a is not None})
    app_index = {a: i for i, a in enumerate(apps)}
    rank: dict[int, int] = {}
    if rules.environment_order is not None:
        order = [v.strip().lower() for v in rules.environment_order.order]
        rank = {env_index[e]: order.index(e) for e in env_names if e in order}
        unknown = [e for e in env_names if e not in order]
        if unknown:
            inst.warnings.append(f"{prefix}{RULES_FIELD}.environment_order: environments {', '.join(unknown)} are "
                                 "not in its order; their VMs are not ordered")
    index = {str(n): k for k, n in enumerate(inst.nodes)}
    vm_deps = sorted({(index[str(p)], index[str(c)]) for p, c in _providers(inst.graph)
                      if str(p) in index and str(c) in index})
    rs = RuleSet(rules=rules, prefix=prefix, env_names=env_names, env_rank=rank, app_names=apps,
                 vm_env=[env_index.get(classes.env[g] or "", -1) for g in keep],
                 vm_critical=[classes.critical[g] for g in keep],
                 vm_app=[app_index.get(classes.app[g] or "", -1) for g in keep], vm_deps=vm_deps)
    n = inst.units
    rs.unit_env = [defaultdict(int) for _ in range(n)]
    rs.unit_app = [defaultdict(int) for _ in range(n)]
    rs.unit_critical = [0] * n
    for k, u in enumerate(inst.unit_of):
        if rs.vm_env[k] >= 0:
            rs.unit_env[u][rs.vm_env[k]] += 1
        if rs.vm_app[k] >= 0:
            rs.unit_app[u][rs.vm_app[k]] += 1
        rs.unit_critical[u] += rs.vm_critical[k]
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    for p, c in vm_deps:
        up, uc = inst.unit_of[p], inst.unit_of[c]
        if up != uc:
            pairs[(up, uc)] += 1
    rs.unit_deps = [(p, c, m) for (p, c), m in sorted(pairs.items())]
    rs.dep_units = {u for p, c, _ in rs.unit_deps for u in (p, c)}
    app_size: list[list[float]] = [[0, 0.0] for _ in apps]
    for k, a in enumerate(rs.vm_app):
        if a >= 0:
            app_size[a][0] += 1
            app_size[a][1] += float(inst.graph.nodes[inst.nodes[k]].get("gb") or 0.0)
    cap = inst.capacity
    rs.app_fits = [n <= cap.vms(len(cap.ramp)) and gb <= cap.gb(0) + 1e-9 for n, gb in app_size]
    for a, b, _ in inst.keep_apart_vms:       # an application holding a keep-apart pair cannot be whole
        if rs.vm_app[a] >= 0 and rs.vm_app[a] == rs.vm_app[b]:
            rs.app_fits[rs.vm_app[a]] = False
    inst.rules = rs
    _hard_rules(inst, rs, problems)


def _hard_rules(inst: Instance, rs: RuleSet, problems: list[Problem]) -> None:
    rules = rs.rules
    file = inst.constraints_file
    if rules.environment_order is not None and rules.environment_order.hard:
        where = rs.field("environment_order")
        by_rank: dict[int, list[int]] = defaultdict(list)
        for u, envs in enumerate(rs.unit_env):
            ranks = {rs.env_rank[c] for c in envs if c in rs.env_rank}
            if len(ranks) > 1:
                problems.append(Problem(file, where, f"{inst.describe(u)} must move together but holds environments "
                                        f"{', '.join(sorted(rs.env_names[c] for c in envs))}: make the rule soft "
                                        "(a weight) or split the group"))
            elif ranks:
                by_rank[ranks.pop()].append(u)
        present = sorted(by_rank)
        order = rules.environment_order.order
        for lo, hi in itertools.pairwise(present):
            _add_precedence(inst, by_rank[lo], by_rank[hi], where, f"{order[lo]} before or with {order[hi]}")
    if rules.no_mixed_environments is not None and rules.no_mixed_environments.hard:
        for u, envs in enumerate(rs.unit_env):
            if len(envs) > 1:
                problems.append(Problem(file, rs.field("no_mixed_environments"), (
                    f"{inst.describe(u)} must move together but holds environments "
                    f"{', '.join(sorted(rs.env_names[c] for c in envs))}: no wave could take it")))
            elif envs:
                inst.env_class[u] = next(iter(envs))
    if rules.dependencies_first is not None and rules.dependencies_first.hard:
        where = rs.field("dependencies_first")
        for p, c, _ in rs.unit_deps:
            _add_precedence(inst, [p], [c], where, f"{inst.unit_names(p)[0]} (depended on) before or with "
                            f"{inst.unit_names(c)[0]}")
    crit = rules.critical_not_before
    if crit is not None and crit.hard:
        for u, count in enumerate(rs.unit_critical):
            if not count:
                continue
            inst.min_wave[u] = crit.wave - 1
            pin = inst.pin[u]
            if pin is not None and pin < crit.wave - 1:
                problems.append(Problem(file, inst.pin_field[u], (
                    f"{inst.unit_names(u)[0]} is pinned to wave {pin + 1} but is critical: "
                    f"{rs.field('critical_not_before')} allows wave {crit.wave} or later")))


def _add_precedence(inst: Instance, before: list[int], after: list[int], label: str, text: str) -> None:
    k = len(inst.precedence)
    inst.precedence.append(PrecedenceSet(sorted(before), sorted(after), label, text, gap=0))
    for u in before:
        inst.before_of[u].append(k)
    for u in after:
        inst.after_of[u].append(k)
