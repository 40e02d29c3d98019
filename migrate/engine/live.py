"""The `live` method's phases: cross-vCenter vMotion (RelocateVM_Task with a ServiceLocator), through the
target's migrate.core.ports.LiveRelocation verbs (adapters/vcenter/target.py).

Real vCenter pairs only: the lab's simulator has no cross-vCenter relocate, so on the lab the
`relocate` phase fails cleanly after the spec was built and validated against the real target.
vMotion keeps the VM's instanceUuid, so the moved VM is found on the target by it.
"""

from __future__ import annotations

from typing import Any

from migrate.core.drivers import Role
from migrate.core.errors import OperationalError
from migrate.core.ports import DiskSource, LiveRelocation
from migrate.engine.cold import source_checks, target_of
from migrate.engine.context import PhaseContext, wait_operation
from migrate.engine.methods import Method, Phase, Stage
from migrate.engine.outputs import SourceState, TargetVm
from migrate.engine.vm_checks import settle

__all__ = ["LIVE"]


def _pair(ctx: PhaseContext) -> tuple[DiskSource, LiveRelocation]:
    """The source and a target that can receive a running VM from it (migrate.core.ports.LiveRelocation)."""
    source, target = ctx.adapters.source, ctx.adapters.target
    if source is None or target is None:
        raise OperationalError("the live method needs a source and a target (site.yaml `source` and `target`)")
    if not isinstance(target, LiveRelocation):
        raise OperationalError(f"the live method needs a target that can receive a running VM: target "
                               f"{target.name!r} ({type(target).__name__}) cannot")
    if not isinstance(source, DiskSource):
        raise OperationalError(f"the live method needs a source that describes its VMs: source {source.name!r} "
                               f"({type(source).__name__}) cannot")
    return source, target


def precheck(ctx: PhaseContext) -> dict[str, Any]:
    """The cold method's source checks plus a relocate spec that validates against the target."""
    source, target = _pair(ctx)
    live = source.describe_vm(ctx.vm.id)
    checks = [c for c in source_checks(ctx.vm.facts, live) if c["check"] != "snapshots"]
    described = target.describe_relocation(source, ctx.vm.id, ctx.vm.facts)
    checks += [{"check": "relocate_spec", "status": "block", "message": p} for p in described.problems]
    settle(checks, ctx.log)
    return {"power_state": live["power_state"], "name": live["name"], "checks": checks}


def build_relocate_spec(ctx: PhaseContext) -> dict[str, Any]:
    """The spec as plain data (no credentials), journaled for review."""
    source, target = _pair(ctx)
    described = target.describe_relocation(source, ctx.vm.id, ctx.vm.facts)
    return {"spec": described.spec, "problems": list(described.problems)}


def relocate(ctx: PhaseContext) -> dict[str, Any]:
    """vMotion the VM to the target vCenter unless it is there already."""
    source, target = _pair(ctx)
    existing = target.find_relocated(ctx.vm.id)
    if existing is None:
        wait_operation(target.start_relocation(source, ctx.vm.id, ctx.vm.facts), ctx, provider="vcenter",
                       what="relocate", poll_seconds=1.0)
        existing = target.find_relocated(ctx.vm.id)
        if existing is None:
            raise OperationalError(f"relocate finished but the target has no VM {ctx.vm.id}")
    return {"target_id": existing}


def verify(ctx: PhaseContext) -> dict[str, Any]:
    """The VM is on the target with its MACs on the mapped networks and its power state."""
    target = target_of(ctx)
    target_id = ctx.output(TargetVm).target_id
    live = target.describe_vm(target_id)
    want = sorted((str(n.get("mac") or "").lower(), n["target_network"]) for n in ctx.vm.facts.get("nics", []))
    have = sorted((str(n.get("mac") or "").lower(), n["network_name"]) for n in live["nics"])
    if want != have:
        raise OperationalError(f"verify {target_id}: NICs {have}, planned {want}")
    return {"target_id": target_id, "power_state": live["power_state"]}


LIVE = Method(
    name="live",
    description="Cross-vCenter vMotion (RelocateVM_Task with a ServiceLocator): real vCenter pairs only.",
    phases=(
        Phase("precheck", Stage.PRECHECK, precheck, provides=SourceState),
        Phase("build_relocate_spec", Stage.CUTOVER, build_relocate_spec, reads_only=True),
        Phase("relocate", Stage.CUTOVER, relocate, provides=TargetVm),
        Phase("verify", Stage.VERIFY, verify, reads_only=True, requires=(TargetVm,)),
    ),
    roles=frozenset({Role.SOURCE, Role.TARGET}),
    grows_cluster=True,
)
