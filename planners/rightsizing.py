"""EC2 right-sizing for re-platform candidates: the smallest fitting type, and why it was chosen.

Requirement per VM (mode "utilisation", the default; headroom default 0.2 = 20 % above the average):

    vCPU   = ceil(configured vCPU * cpu_usage_percent / 100 * (1 + headroom)), between 1 and configured
    memory = ceil(memory_active_mb (or memory_mb * memory_usage_percent / 100) * (1 + headroom)) MiB,
             at most the configured memory

A dimension without a measurement uses the configured size; mode "configured" always does.
Candidates: current-generation, not bare metal, no accelerators (GPU, FPGA, ...), not burstable
(unless allowed), the VM's architecture (guest id containing "arm"/"aarch64" -> arm64, else x86_64)
and, when the type lists SupportedBootModes, the VM's boot mode (firmware efi -> uefi, bios ->
legacy-bios). Choice: general-purpose families first (m, c, r; others only when none of them fits),
then fewest vCPUs, then family (m, then c or r: c first when the VM needs < 4 GiB per vCPU, else r),
then least memory, then name. There is no price in the data, so "smallest" is by vCPU and memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from migrate.core.guest import architecture_of, boot_mode_of
from migrate.core.models.inventory import Vm
from planners.instance_types import InstanceType

__all__ = [
    "MAX_HEADROOM",
    "PREFERRED_FAMILIES",
    "Mode",
    "Requirement",
    "RightsizeResult",
    "requirement",
    "rightsize",
    "rightsize_vm",
]

Mode = Literal["utilisation", "configured"]
PREFERRED_FAMILIES = ("m", "c", "r")
GENERAL_RATIO_GIB = 4.0   # GiB per vCPU of the m family: below it c is the next choice, above it r
MAX_HEADROOM = 100.0      # right-sizing margin: at most 100 x (10,000 %) over the observed average
@dataclass(frozen=True)
class Requirement:
    """What the EC2 type must offer, and where each number came from."""

    vcpus: int
    memory_mib: int
    architecture: str
    boot_mode: str | None
    cpu_basis: str
    memory_basis: str
    notes: list[str] = field(default_factory=list)

    @property
    def gib_per_vcpu(self) -> float:
        return self.memory_mib / 1024 / max(self.vcpus, 1)


@dataclass(frozen=True)
class RightsizeResult:
    """The chosen type for one VM (None when nothing fits), with the numbers behind the choice."""

    vm_id: str
    vm_name: str
    configured_vcpus: int
    configured_memory_mb: int
    requirement: Requirement
    instance_type: str | None
    vcpus: int | None
    memory_mib: int | None
    candidates: int
    rejected: dict[str, int]
    alternatives: dict[str, str]
    why: str

    def to_dict(self) -> dict[str, Any]:
        req = self.requirement
        return {"vm_id": self.vm_id, "vm_name": self.vm_name, "instance_type": self.instance_type,
                "vcpus": self.vcpus, "memory_mib": self.memory_mib,
                "configured": {"vcpus": self.configured_vcpus, "memory_mb": self.configured_memory_mb},
                "requirement": {"vcpus": req.vcpus, "memory_mib": req.memory_mib, "architecture": req.architecture,
                                "boot_mode": req.boot_mode, "cpu_basis": req.cpu_basis,
                                "memory_basis": req.memory_basis, "notes": list(req.notes)},
                "candidates": self.candidates, "rejected": dict(self.rejected),
                "alternatives": dict(self.alternatives), "why": self.why}


def requirement(vm: Vm, mode: Mode = "utilisation", headroom: float = 0.2) -> Requirement:
    """The vCPU and memory one VM needs on EC2, from utilisation (plus headroom) or its configured size."""
    if mode not in ("utilisation", "configured"):
        raise ValueError(f"mode must be utilisation or configured, got {mode!r}")
    if headroom < 0:
        raise ValueError(f"headroom must be >= 0, got {headroom}")
    notes: list[str] = []
    util = vm.utilisation if mode == "utilisation" else None
    factor = 1 + headroom
    if util is not None and util.cpu_usage_percent is not None and vm.cpus > 0:
        used = vm.cpus * util.cpu_usage_percent / 100
        vcpus = min(vm.cpus, max(1, _ceil(used * factor)))
        cpu_basis = (f"utilisation: {util.cpu_usage_percent:g}% of {vm.cpus} vCPU = {used:.2f} "
                     f"+{headroom:.0%} = {used * factor:.2f} -> {vcpus}")
    else:
        vcpus = max(1, vm.cpus)
        cpu_basis = f"configured: {vm.cpus} vCPU" + (" (no CPU utilisation)" if mode == "utilisation" else "")
    active = None
    if util is not None and util.memory_active_mb is not None:
        active, source = util.memory_active_mb, "active"
    elif util is not None and util.memory_usage_percent is not None and vm.memory_mb > 0:
        active, source = vm.memory_mb * util.memory_usage_percent / 100, f"{util.memory_usage_percent:g}% of"
    if active is not None:
        memory = max(1, _ceil(active * factor))
        if vm.memory_mb > 0:
            memory = min(memory, vm.memory_mb)
        detail = f"{active:.0f} MiB" if source == "active" else f"{vm.memory_mb} MiB = {active:.0f} MiB"
        memory_basis = f"utilisation: {source} {detail} +{headroom:.0%} -> {memory} MiB"
    else:
        memory = vm.memory_mb
        memory_basis = f"configured: {vm.memory_mb} MiB" + (" (no memory utilisation)" if mode == "utilisation"
                                                           else "")
    if vm.cpus <= 0:
        notes.append("configured vCPU count unknown: assumed 1")
    if vm.guest.guest_id is None:
        notes.append("guest id unknown: assumed x86_64")
    boot = boot_mode_of(vm.firmware)
    if boot is None:
        notes.append(f"firmware {vm.firmware!r} unknown: any boot mode accepted")
    return Requirement(vcpus=vcpus, memory_mib=memory, architecture=architecture_of(vm.guest.guest_id),
                       boot_mode=boot, cpu_basis=cpu_basis, memory_basis=memory_basis, notes=notes)


def _ceil(value: float) -> int:
    return math.ceil(round(value, 9))


def _static_reason(t: InstanceType, allow_burstable: bool) -> str | None:
    if not t.current_generation:
        return "previous_generation"
    if t.bare_metal:
        return "bare_metal"
    if t.accelerators:
        return "accelerated"
    if t.burstable and not allow_burstable:
        return "burstable"
    return None


def _family_rank(family: str, gib_per_vcpu: float) -> int:
    if family == "m":
        return 0
    order = ("c", "r") if gib_per_vcpu < GENERAL_RATIO_GIB else ("r", "c")
    return 1 + order.index(family) if family in order else 3


def rightsize_vm(vm: Vm, types: Sequence[InstanceType], mode: Mode = "utilisation", headroom: float = 0.2,
                 allow_burstable: bool = False) -> RightsizeResult:
    """The EC2 type for one VM, by the rules in this module's docstring."""
    req = requirement(vm, mode, headroom)
    return _result(vm, req, _select(req, types, allow_burstable), len(types))


def rightsize(vms: Iterable[Vm], types: Sequence[InstanceType], mode: Mode = "utilisation", headroom: float = 0.2,
              allow_burstable: bool = False) -> list[RightsizeResult]:
    """rightsize_vm for many VMs; VMs with the same requirement share one search."""
    cache: dict[tuple[int, int, str, str | None], _Selection] = {}
    out = []
    for vm in vms:
        req = requirement(vm, mode, headroom)
        key = (req.vcpus, req.memory_mib, req.architecture, req.boot_mode)
        if key not in cache:
            cache[key] = _select(req, types, allow_burstable)
        out.append(_result(vm, req, cache[key], len(types)))
    return out


@dataclass(frozen=True)
class _Selection:
    best: InstanceType | None
    fitting: int
    rejected: dict[str, int]
    alternatives: dict[str, str]


def _select(req: Requirement, types: Sequence[InstanceType], allow_burstable: bool) -> _Selection:
    rejected: dict[str, int] = {}
    fitting: list[InstanceType] = []
    for t in types:
        reason = _static_reason(t, allow_burstable)
        if reason is None and req.architecture not in t.architectures:
            reason = "architecture"
        if reason is None and req.boot_mode and t.boot_modes and req.boot_mode not in t.boot_modes:
            reason = "boot_mode"
        if reason is None and (t.vcpus < req.vcpus or t.memory_mib < req.memory_mib):
            reason = "too_small"
        if reason is None:
            fitting.append(t)
        else:
            rejected[reason] = rejected.get(reason, 0) + 1
    ratio = req.gib_per_vcpu

    def key(t: InstanceType) -> tuple[int, int, int, int, str]:
        tier = 0 if t.family in PREFERRED_FAMILIES else 1
        return (tier, t.vcpus, _family_rank(t.family, ratio), t.memory_mib, t.name)

    fitting.sort(key=key)
    best = fitting[0] if fitting else None
    alternatives: dict[str, str] = {}
    for t in fitting:
        if t.family in PREFERRED_FAMILIES:
            alternatives.setdefault(t.family, t.name)
    if best is not None:
        alternatives.pop(best.family, None)
    return _Selection(best=best, fitting=len(fitting), rejected=rejected, alternatives=alternatives)


def _result(vm: Vm, req: Requirement, sel: _Selection, total: int) -> RightsizeResult:
    best = sel.best
    need = f"{req.vcpus} vCPU / {req.memory_mib} MiB, {req.architecture}" + (
        f", {req.boot_mode} boot" if req.boot_mode else "")
    skipped = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in sorted(sel.rejected.items()))
    basis = f"vCPU from {req.cpu_basis}; memory from {req.memory_basis}"
    if best is None:
        why = f"no type fits {need} among {total} types (rejected: {skipped or 'none'}); {basis}"
    else:
        group = ("general-purpose (m, c, r) type" if best.family in PREFERRED_FAMILIES
                 else "type of any family (no m, c or r type fits)")
        why = (f"{best.name} ({best.vcpus} vCPU, {best.memory_mib} MiB) is the smallest {group} for {need}: "
               f"{sel.fitting} of {total} types fit (rejected: {skipped or 'none'}); {basis}")
    return RightsizeResult(vm_id=vm.id, vm_name=vm.name, configured_vcpus=vm.cpus, configured_memory_mb=vm.memory_mb,
                           requirement=req, instance_type=best.name if best else None,
                           vcpus=best.vcpus if best else None, memory_mib=best.memory_mib if best else None,
                           candidates=sel.fitting, rejected=dict(sel.rejected), alternatives=dict(sel.alternatives),
                           why=why)
