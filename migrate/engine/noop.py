"""The `noop` method: the cold phases against a fake estate held by this process.

`NoopEstate` plays both vCenters. Every change it makes is an *effect*: one JSON line appended to its
effects file (one write(2) with O_APPEND, so a kill -9 leaves whole lines), and the estate is rebuilt
from that file when it is opened again, as a real vCenter would still hold what was done. Like a real
provider, `create_vm` creates a new VM each time it is called: only the phases' own checks (find the
VM created for this source first) keep a VM from being created twice, which is what the crash test
verifies. Its verbs follow migrate/core/ports.py; provider-only verbs are `ex_`.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from migrate.core.errors import OperationalError
from migrate.core.ports import Adapters, OperationState, OperationStatus, PowerState
from migrate.engine.cold import COLD
from migrate.engine.context import PhaseContext, wait_operation
from migrate.engine.methods import Method, Phase, Stage
from migrate.engine.outputs import SourceState, TargetVm
from migrate.engine.plan import VmFacts

__all__ = ["NOOP", "NoopEstate", "NoopOperation"]

PROVIDER = "noop"


@dataclass(frozen=True)
class NoopOperation:
    """An operation that has already ended."""

    id: str
    result: Any = None

    def poll(self) -> OperationStatus:
        """Always done."""
        return OperationStatus(OperationState.SUCCESS, 100, self.result)


@dataclass
class _TargetVm:
    source_id: str
    power: PowerState = "poweredOff"
    tags: set[str] = field(default_factory=set)


class NoopEstate:
    """A fake source and target estate; effects in memory and, with `path`, in a JSON-lines file."""

    def __init__(self, vms: Iterable[VmFacts], path: Path | None = None, *, latency: float = 0.0) -> None:
        self.path = path
        self.latency = latency
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.source_power: dict[str, PowerState] = {
            vm.id: cast(PowerState, vm.facts.get("power_state", "poweredOn")) for vm in vms}
        self.marked: dict[str, str] = {}
        self.copied: set[str] = set()
        self.targets: dict[str, _TargetVm] = {}
        self.by_source: dict[str, list[str]] = {}
        self.effects: list[dict[str, Any]] = []
        self._fd: int | None = None
        if path is not None:
            if path.exists():
                for line in path.read_text().splitlines():
                    if line.strip():
                        self._apply(json.loads(line))
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        """Close the effects file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def source(self) -> NoopSource:
        """The on-prem side."""
        return NoopSource(self)

    @property
    def target(self) -> NoopTarget:
        """The cloud side."""
        return NoopTarget(self)

    def adapters(self) -> Adapters:
        """Both sides, as a run's adapters."""
        return Adapters(source=self.source, target=self.target)

    def _apply(self, effect: dict[str, Any]) -> None:
        kind, vm = effect["effect"], effect["vm"]
        if kind == "power_off":
            self.source_power[vm] = "poweredOff"
        elif kind == "copy":
            self.copied.add(vm)
        elif kind == "create":
            self.targets[effect["target"]] = _TargetVm(source_id=vm)
            self.by_source.setdefault(vm, []).append(effect["target"])
            self._ids = itertools.count(int(effect["target"].split("-")[1]) + 1)
        elif kind == "tag":
            self.targets[effect["target"]].tags.add(vm)
        elif kind == "power_on":
            self.targets[effect["target"]].power = "poweredOn"
        elif kind == "mark":
            self.marked[vm] = effect["note"]
        self.effects.append(effect)

    def effect(self, kind: str, vm: str, **data: Any) -> None:
        """Make one change: apply it and append it to the effects file (caller holds the lock)."""
        effect = {"effect": kind, "vm": vm, **data}
        if self._fd is not None:
            os.write(self._fd, (json.dumps(effect, sort_keys=True) + "\n").encode())
        self._apply(effect)

    def call(self) -> threading.Lock:
        """Take the estate's lock after the simulated provider latency."""
        if self.latency:
            time.sleep(self.latency)
        return self._lock

    def new_target_id(self) -> str:
        """A fresh target VM id."""
        return f"vm-{next(self._ids)}"


class NoopSource:
    """The source side of a NoopEstate (a SourceInventory)."""

    name = PROVIDER + "-source"

    def __init__(self, estate: NoopEstate) -> None:
        self.estate = estate

    def vm_power_state(self, vm_id: str) -> PowerState:
        """Current power state."""
        with self.estate.call():
            return self.estate.source_power[vm_id]

    def power_off_vm(self, vm_id: str) -> NoopOperation:
        """Power off; nothing if off."""
        with self.estate.call():
            if self.estate.source_power[vm_id] != "poweredOff":
                self.estate.effect("power_off", vm_id)
        return NoopOperation(f"power-off-{vm_id}")

    def is_marked_migrated(self, vm_id: str) -> bool:
        """True once marked."""
        with self.estate.call():
            return vm_id in self.estate.marked

    def mark_migrated(self, vm_id: str, note: str) -> None:
        """Mark; nothing if marked."""
        with self.estate.call():
            if vm_id not in self.estate.marked:
                self.estate.effect("mark", vm_id, note=note)

    def ex_disks_copied(self, vm_id: str) -> bool:
        """True once the VM's disks were copied (a real copy compares checksums)."""
        with self.estate.call():
            return vm_id in self.estate.copied

    def ex_copy_disks(self, vm_id: str) -> None:
        """Copy the VM's disks (again, if called again)."""
        with self.estate.call():
            self.estate.effect("copy", vm_id)


class NoopTarget:
    """The target side of a NoopEstate (a MigrationTarget)."""

    name = PROVIDER + "-target"

    def __init__(self, estate: NoopEstate) -> None:
        self.estate = estate

    def ex_find_all(self, source_id: str) -> list[str]:
        """Every target VM created for `source_id` (more than one is a duplicate)."""
        with self.estate.call():
            return list(self.estate.by_source.get(source_id, []))

    def find_vm(self, source_id: str) -> str | None:
        """The target VM created for `source_id`, or None."""
        found = self.ex_find_all(source_id)
        return found[0] if found else None

    def create_vm(self, source_id: str, spec: Mapping[str, Any]) -> NoopOperation:
        """Create a new target VM, every time it is called."""
        with self.estate.call():
            target_id = self.estate.new_target_id()
            self.estate.effect("create", source_id, target=target_id, name=str(spec.get("name", "")))
        return NoopOperation(f"create-{target_id}", target_id)

    def is_tagged(self, target_id: str, source_id: str) -> bool:
        """True if tagged with `source_id`."""
        with self.estate.call():
            return source_id in self.estate.targets[target_id].tags

    def tag_vm(self, target_id: str, source_id: str) -> None:
        """Tag; nothing if tagged."""
        with self.estate.call():
            if source_id not in self.estate.targets[target_id].tags:
                self.estate.effect("tag", source_id, target=target_id)

    def vm_power_state(self, target_id: str) -> PowerState:
        """Current power state."""
        with self.estate.call():
            return self.estate.targets[target_id].power

    def power_on_vm(self, target_id: str) -> NoopOperation:
        """Power on; nothing if on."""
        with self.estate.call():
            vm = self.estate.targets[target_id]
            if vm.power != "poweredOn":
                self.estate.effect("power_on", vm.source_id, target=target_id)
        return NoopOperation(f"power-on-{target_id}")


# -- the phases: each checks whether its effect exists before acting -------------------------------

def _source(ctx: PhaseContext) -> NoopSource:
    source = ctx.adapters.source
    if not isinstance(source, NoopSource):
        raise OperationalError("the noop method needs a NoopEstate as its source adapter")
    return source


def _target(ctx: PhaseContext) -> NoopTarget:
    target = ctx.adapters.target
    if not isinstance(target, NoopTarget):
        raise OperationalError("the noop method needs a NoopEstate as its target adapter")
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
    description="The cold phases against a fake estate in this process: dry-run style tests and benchmarks.",
    phases=(
        Phase("precheck", Stage.PRECHECK, precheck, provides=SourceState),
        COLD.phase("power_off_source"),
        Phase("copy_disks", Stage.CUTOVER, copy_disks),
        Phase("create_target_vm", Stage.CUTOVER, create_target_vm, provides=TargetVm),
        COLD.phase("tag_target"),
        COLD.phase("power_on_target"),
        Phase("verify", Stage.VERIFY, verify, reads_only=True, requires=(SourceState, TargetVm)),
        COLD.phase("mark_source_migrated"),
    ),
    roles=frozenset(),   # its source and target are the in-process NoopEstate, not site.yaml's
)
