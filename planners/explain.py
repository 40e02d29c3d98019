"""What people read in each wave: its size and why its VMs are together."""

from __future__ import annotations

import heapq
from collections import defaultdict

from planners.graph import hard_reasons
from planners.plan_model import WaveFlow, WaveGroup, WaveSize, WaveWhy
from planners.rule_report import wave_rule_lines
from planners.units import Instance, edge_weight

__all__ = ["TOP_FLOWS", "TOP_GROUPS", "wave_sizes", "wave_whys"]

TOP_FLOWS = 5
TOP_GROUPS = 10


def wave_sizes(inst: Instance, vm_wave: list[int], waves: int) -> list[WaveSize]:
    """VMs, disk GiB, vCPUs and memory of every wave (vm_wave: wave of each included VM)."""
    vms, vcpu, mem = [0] * waves, [0] * waves, [0] * waves
    gb = [0.0] * waves
    for k, w in enumerate(vm_wave):
        attrs = inst.graph.nodes[inst.nodes[k]]
        vms[w] += 1
        gb[w] += float(attrs.get("gb") or 0.0)
        vcpu[w] += int(attrs.get("vcpu") or 0)
        mem[w] += int(attrs.get("memory_mb") or 0)
    return [WaveSize(vms=vms[w], gb=round(gb[w], 3), vcpu=vcpu[w], memory_mb=mem[w]) for w in range(waves)]


def wave_whys(inst: Instance, vm_wave: list[int], waves: int) -> list[WaveWhy]:
    """Per wave: its must-move groups (largest first) with their hard reasons, and its heaviest inner edges."""
    index = {node: k for k, node in enumerate(inst.nodes)}
    reasons: dict[int, dict[str, None]] = defaultdict(dict)
    heaviest: list[list[tuple[float, str, str, list[str]]]] = [[] for _ in range(waves)]
    for x, y, data in inst.graph.edges(data=True):
        kx, ky = index.get(x), index.get(y)
        if kx is None or ky is None or kx == ky:
            continue
        if data.get("hard"):
            for r in hard_reasons(data.get("reasons", [])):
                reasons[inst.unit_of[kx]][r] = None
            continue
        w = vm_wave[kx]
        weight = edge_weight(data)
        if w != vm_wave[ky] or weight <= 0:
            continue
        a, b = sorted((inst.names[kx], inst.names[ky]))
        item = (weight, a, b, list(data.get("kinds", [])))
        top = heaviest[w]
        if len(top) < TOP_FLOWS:
            heapq.heappush(top, item)
        elif item > top[0]:
            heapq.heapreplace(top, item)
    rule_lines = wave_rule_lines(inst, inst.rules, vm_wave, waves) if inst.rules is not None else None
    groups: list[list[int]] = [[] for _ in range(waves)]
    for unit, members in enumerate(inst.members):
        if len(members) > 1:
            groups[vm_wave[members[0]]].append(unit)
    out = []
    for w in range(waves):
        units = sorted(groups[w], key=lambda u: (-inst.count[u], sorted(inst.unit_names(u))))
        shown = [WaveGroup(vms=sorted(inst.unit_names(u)), reasons=[*reasons[u], *inst.extra_reasons.get(u, [])])
                 for u in units[:TOP_GROUPS]]
        flows = [WaveFlow(a=a, b=b, weight=round(weight, 6), kinds=kinds)
                 for weight, a, b, kinds in sorted(heaviest[w], key=lambda t: (-t[0], t[1], t[2]))]
        out.append(WaveWhy(groups=shown, more_groups=max(0, len(units) - TOP_GROUPS), heaviest=flows,
                           rules=rule_lines[w] if rule_lines else None))
    return out
