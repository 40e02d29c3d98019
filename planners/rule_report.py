"""Policy rules checked VM by VM on a plan as written: violations of hard rules, counts and costs of every
rule, and the lines each wave's `why` shows (same definitions as planners.penalty)."""

from __future__ import annotations

from collections import Counter, defaultdict

from planners.instance import Instance, names_text
from planners.penalty import order_violations
from planners.plan_model import RuleOutcome
from planners.rules import RuleSet

__all__ = ["RULE_NAMES", "hard_rule_violations", "rule_outcomes", "wave_rule_lines"]

RULE_NAMES = ("environment_order", "no_mixed_environments", "dependencies_first", "critical_not_before",
              "application_whole")

Pos = list[int | None]          # per included VM (index k): its wave (0-based), None when in no wave


def _counts(rs: RuleSet, pos: Pos) -> dict[str, int]:
    k = max((p for p in pos if p is not None), default=-1) + 1
    rules = rs.rules
    out: dict[str, int] = {}
    if rules.environment_order is not None:
        cnt: list[dict[int, int]] = [defaultdict(int) for _ in range(k)]
        for vm, w in enumerate(pos):
            if w is not None and rs.vm_env[vm] in rs.env_rank:
                cnt[w][rs.env_rank[rs.vm_env[vm]]] += 1
        out["environment_order"] = order_violations(cnt)
    if rules.no_mixed_environments is not None:
        per = [Counter(rs.vm_env[vm] for vm, p in enumerate(pos) if p == w and rs.vm_env[vm] >= 0) for w in range(k)]
        out["no_mixed_environments"] = sum(c.total() - max(c.values(), default=0) for c in per)
    if rules.dependencies_first is not None:
        out["dependencies_first"] = sum(1 for p, c in rs.vm_deps if _later(pos[p], pos[c]))
    if rules.critical_not_before is not None:
        first = rules.critical_not_before.wave - 1
        out["critical_not_before"] = sum(1 for vm, p in enumerate(pos) if rs.vm_critical[vm] and p is not None
                                         and p < first)
    if rules.application_whole is not None:
        per_app = [Counter(p for vm, p in enumerate(pos) if rs.vm_app[vm] == a and p is not None)
                   for a in range(len(rs.app_names))]
        out["application_whole"] = sum(c.total() - max(c.values(), default=0)
                                       for a, c in enumerate(per_app) if rs.app_fits[a])
    return out


def _later(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a > b


def rule_outcomes(rs: RuleSet, pos: Pos) -> dict[str, RuleOutcome]:
    """Per active rule: hard or its weight, violations (VMs or dependencies) and cost."""
    out = {}
    for name, count in _counts(rs, pos).items():
        rule = getattr(rs.rules, name)
        out[name] = RuleOutcome(hard=rule.hard, weight=None if rule.hard else rule.cost, violations=count,
                                cost=0.0 if rule.hard else round(rule.cost * count, 6))
    return out


def hard_rule_violations(inst: Instance, rs: RuleSet, pos: Pos) -> list[tuple[str, str, list[int]]]:
    """(field, message, VM indexes) for hard critical_not_before and no_mixed_environments; the other hard
    rules are unit joins and precedence, which evaluate() checks as such."""
    found = []
    crit = rs.rules.critical_not_before
    if crit is not None and crit.hard:
        early = [vm for vm, p in enumerate(pos) if rs.vm_critical[vm] and p is not None and p < crit.wave - 1]
        if early:
            found.append((rs.field("critical_not_before"), f"critical VMs {names_text(inst.names[vm] for vm in early)} "
                          f"move before wave {crit.wave}", early))
    mixed = rs.rules.no_mixed_environments
    if mixed is not None and mixed.hard:
        waves: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for vm, p in enumerate(pos):
            if p is not None and rs.vm_env[vm] >= 0:
                waves[p][rs.vm_env[vm]].append(vm)
        for w, envs in sorted(waves.items()):
            if len(envs) > 1:
                text = "; ".join(f"{rs.env_names[c]}: {names_text((inst.names[vm] for vm in vms), 3)}"
                                 for c, vms in sorted(envs.items()))
                found.append((rs.field("no_mixed_environments"), f"wave {w + 1} mixes environments ({text})",
                              [vm for vms in envs.values() for vm in vms]))
    return found


def wave_rule_lines(inst: Instance, rs: RuleSet, vm_wave: list[int], k: int) -> list[list[str]]:
    """Per wave, one line per active rule saying how the wave stands with it."""
    rules = rs.rules
    lines: list[list[str]] = [[] for _ in range(k)]
    env = [Counter(rs.env_names[rs.vm_env[vm]] for vm, p in enumerate(vm_wave) if p == w and rs.vm_env[vm] >= 0)
           for w in range(k)]
    for w in range(k):
        shown = ", ".join(f"{e} ({n} VMs)" for e, n in sorted(env[w].items()))
        if rules.environment_order is not None or rules.no_mixed_environments is not None:
            kind = "one environment" if len(env[w]) == 1 else "environments" if env[w] else "no environment"
            mode = _mode(rs, "environment_order", "no_mixed_environments")
            lines[w].append(f"{kind}{': ' + shown if shown else ''} ({mode})")
    if rules.dependencies_first is not None:
        late = Counter(vm_wave[c] for p, c in rs.vm_deps if vm_wave[p] > vm_wave[c])
        first = Counter(vm_wave[p] for p, c in rs.vm_deps if vm_wave[p] <= vm_wave[c])
        for w in range(k):
            lines[w].append(f"{first[w]} dependencies' providers move here, with or before their consumers"
                            + (f"; {late[w]} dependencies here wait for a provider of a later wave" if late[w] else "")
                            + f" ({_mode(rs, 'dependencies_first')})")
    if rules.critical_not_before is not None:
        start = rules.critical_not_before.wave
        for w in range(k):
            n = sum(1 for vm, p in enumerate(vm_wave) if p == w and rs.vm_critical[vm])
            lines[w].append(f"{n} critical VMs; critical VMs move from wave {start} on "
                            f"({_mode(rs, 'critical_not_before')})")
    if rules.application_whole is not None:
        where: dict[int, set[int]] = defaultdict(set)
        for vm, p in enumerate(vm_wave):
            if rs.vm_app[vm] >= 0:
                where[rs.vm_app[vm]].add(p)
        for w in range(k):
            apps = sorted(a for a, ws in where.items() if w in ws)
            whole = [rs.app_names[a] for a in apps if len(where[a]) == 1]
            split = [rs.app_names[a] for a in apps if len(where[a]) > 1 and rs.app_fits[a]]
            free = [rs.app_names[a] for a in apps if len(where[a]) > 1 and not rs.app_fits[a]]
            text = f"applications whole here: {names_text(whole, 6) or 'none'}"
            if split:
                text += f"; split: {names_text(split, 6)}"
            if free:
                text += f"; split as allowed (larger than a wave, or with a keep-apart pair): {names_text(free, 6)}"
            lines[w].append(f"{text} ({_mode(rs, 'application_whole')})")
    return lines


def _mode(rs: RuleSet, *names: str) -> str:
    parts = []
    for name in names:
        rule = getattr(rs.rules, name)
        if rule is not None:
            parts.append(f"{rs.field(name)}: {'hard' if rule.hard else f'weight {rule.cost:g}'}")
    return "; ".join(parts)
