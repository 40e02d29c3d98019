"""The `noop` method: the cold phases against the noop driver's fake estate (adapters/noop), for trying
the engine without a provider, crash tests and benchmarks:

    source: {driver: noop}
    target: {driver: noop}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from migrate.core.drivers import Role
from migrate.core.errors import OperationalError
from migrate.core.ports import Operation, PowerState
from migrate.engine.cold import COLD
from migrate.engine.context import PhaseContext, wait_operation
from migrate.engine.methods import Method, Phase, Stage
from migrate.engine.outputs import SourceState, TargetVm

__all__ = ["NOOP", "ListingTarget", "NoopCopySource"]

PROVIDER = "noop"


@runtime_checkable
class NoopCopySource(Protocol):
    """A source whose disks are copied by one call (the noop driver's; a real copy is the cold method's)."""

    def vm_power_state(self, vm_id: str) -> PowerState: ...

    def ex_disks_copied(self, vm_id: str) -> bool: ...

    def ex_copy_disks(self, vm_id: str) -> None: ...


@runtime_checkable
class ListingTarget(Protocol):
    """A target that lists every VM made for a source, so verify can see a duplicate."""

    def ex_find_all(self, source_id: str) -> list[str]: ...

    def find_vm(self, source_id: str) -> str | None: ...

    def create_vm(self, source_id: str, spec: Mapping[str, Any]) -> Operation: ...

    def is_tagged(self, target_id: str, source_id: str) -> bool: ...

    def vm_power_state(self, target_id: str) -> PowerState: ...

# -- the phases: each checks whether its effect exists before acting -------------------------------

def _source(ctx: PhaseContext) -> NoopCopySource:
    source = ctx.adapters.source
    if not isinstance(source, NoopCopySource):
        raise OperationalError("the noop method needs the noop driver as its source (site.yaml source.driver: noop)")
    return source


def _target(ctx: PhaseContext) -> ListingTarget:
    target = ctx.adapters.target
    if not isinstance(target, ListingTarget):
        raise OperationalError("the noop method needs the noop driver as its target (site.yaml target.driver: noop)")
    return target


def _target_id(ctx: PhaseContext) -> str:
    return ctx.output(TargetVm).target_id


def precheck(ctx: PhaseContext) -> dict[str, Any]:
    """Record the source power state (power_on_target restores it)."""
    return {"power_state": _source(ctx).vm_power_state(ctx.vm.id)}


def copy_disks(ctx: PhaseContext) -> dict[str, Any]:
    """Copy the disks unless they are copied."""
    source = _source(ctx)
    if source.ex_disks_copied(ctx.vm.id):
        return {"copied": False, "datastores": ctx.vm.datastores}
    source.ex_copy_disks(ctx.vm.id)
    return {"copied": True, "datastores": ctx.vm.datastores}


def create_target_vm(ctx: PhaseContext) -> dict[str, Any]:
    """Create the target VM unless one exists for this source."""
    target = _target(ctx)
    existing = target.find_vm(ctx.vm.id)
    if existing is not None:
        return {"target_id": existing, "created": False}
    spec = {"name": ctx.vm.name or ctx.vm.id, "cluster": ctx.vm.target_cluster}
    target_id = wait_operation(target.create_vm(ctx.vm.id, spec), ctx, provider=PROVIDER, what="create_vm")
    return {"target_id": target_id, "created": True}


def verify(ctx: PhaseContext) -> dict[str, Any]:
    """Exactly one target VM, tagged, in the source's original power state."""
    target = _target(ctx)
    found = target.ex_find_all(ctx.vm.id)
    if len(found) != 1:
        raise OperationalError(f"verify: {len(found)} target VMs for source {ctx.vm.id}: {found}")
    target_id = found[0]
    problems = []
    if not target.is_tagged(target_id, ctx.vm.id):
        problems.append("not tagged")
    expected = ctx.output(SourceState).power_state
    power = target.vm_power_state(target_id)
    if (expected == "poweredOn") != (power == "poweredOn"):
        problems.append(f"power state {power}, source was {expected}")
    if problems:
        raise OperationalError(f"verify {target_id}: {'; '.join(problems)}")
    return {"target_id": target_id, "power_state": power}


# The cold phases that only use the adapter interfaces, and fakes of those that need a real vCenter.
NOOP = Method(
    name="noop",
    description="The cold phases against the noop driver's fake estate: the engine with no provider "
                "(tests, benchmarks).",
    phases=(
        Phase("precheck", Stage.PRECHECK, precheck, provides=SourceState),
        COLD.phase("power_off_source"),
        Phase("copy_disks", Stage.CUTOVER, copy_disks, moves_data=True),
        Phase("create_target_vm", Stage.CUTOVER, create_target_vm, provides=TargetVm),
        COLD.phase("tag_target"),
        COLD.phase("power_on_target"),
        Phase("verify", Stage.VERIFY, verify, reads_only=True, requires=(SourceState, TargetVm)),
        COLD.phase("mark_source_migrated"),
    ),
    roles=frozenset({Role.SOURCE, Role.TARGET}),
)
