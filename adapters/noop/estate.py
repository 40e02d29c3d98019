"""The noop driver's estate: a fake source and target held by this process (both roles, one estate).

`NoopEstate` plays both vCenters. Every change it makes is an *effect*: one JSON line appended to its
effects file (one write(2) with O_APPEND, so a kill -9 leaves whole lines), and the estate is rebuilt
from that file when it is opened again, as a real vCenter would still hold what was done. Several
processes (Temporal workers) share one estate through the file: each call holds an exclusive flock(2)
on it and first applies the lines other processes appended since its last call. Like a real
provider, `create_vm` creates a new VM each time it is called: only the phases' own checks (find the
VM created for this source first) keep a VM from being created twice, which is what the crash test
verifies. Its verbs follow migrate/core/ports.py; provider-only verbs are `ex_`. A source VM it has
not been told about is powered on.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from migrate.core.ports import Adapters, OperationState, OperationStatus, PowerState

__all__ = ["NoopEstate", "NoopOperation", "NoopSource", "NoopTarget"]


class KnownVm(Protocol):
    """A VM the estate starts with: its id and facts (`power_state`)."""

    @property
    def id(self) -> str: ...

    @property
    def facts(self) -> Mapping[str, Any]: ...


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

    def __init__(self, vms: Iterable[KnownVm] = (), path: Path | None = None, *, latency: float = 0.0,
                 copy_seconds: float = 0.0) -> None:
        self.path = path
        self.latency = latency
        self.copy_seconds = copy_seconds
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
        self._read = 0          # bytes of the effects file applied so far
        self._users = 1
        if path is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            self._catch_up()

    def try_acquire(self) -> bool:
        """One more user of this estate (each calls `close` once), unless the last one has closed it."""
        with self._lock:
            if self._users == 0:
                return False
            self._users += 1
            return True

    def close(self) -> None:
        """One user less; the last closes the effects file."""
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._fd is not None:
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

    def _catch_up(self) -> None:
        """Apply the whole lines appended to the effects file since the last call (by any process)."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size <= self._read:
            return
        data = os.pread(self._fd, size - self._read, self._read)
        whole = data[:data.rfind(b"\n") + 1]
        for line in whole.decode().splitlines():
            if line.strip():
                self._apply(json.loads(line))
        self._read += len(whole)

    def effect(self, kind: str, vm: str, **data: Any) -> None:
        """Make one change: apply it and append it to the effects file (caller is inside `call`)."""
        effect = {"effect": kind, "vm": vm, **data}
        if self._fd is not None:
            line = (json.dumps(effect, sort_keys=True) + "\n").encode()
            os.write(self._fd, line)
            self._read += len(line)
        self._apply(effect)

    @contextmanager
    def call(self) -> Iterator[None]:
        """After the simulated provider latency, hold the estate (this process's lock and the file's flock),
        up to date with every other process's effects."""
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            if self._fd is None:
                yield
                return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                self._catch_up()
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def new_target_id(self) -> str:
        """A fresh target VM id."""
        return f"vm-{next(self._ids)}"


class NoopSource:
    """The source side of a NoopEstate (a SourceInventory)."""

    name = PROVIDER + "-source"

    def __init__(self, estate: NoopEstate) -> None:
        self.estate = estate

    def close(self) -> None:
        """Let go of the estate (the driver's adapters share one)."""
        self.estate.close()

    def vm_power_state(self, vm_id: str) -> PowerState:
        """Current power state."""
        with self.estate.call():
            return self.estate.source_power.get(vm_id, "poweredOn")

    def power_off_vm(self, vm_id: str) -> NoopOperation:
        """Power off; nothing if off."""
        with self.estate.call():
            if self.estate.source_power.get(vm_id, "poweredOn") != "poweredOff":
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
        """Copy the VM's disks (again, if called again), taking the estate's `copy_seconds` (the I/O)."""
        if self.estate.copy_seconds:
            time.sleep(self.estate.copy_seconds)
        with self.estate.call():
            self.estate.effect("copy", vm_id)


class NoopTarget:
    """The target side of a NoopEstate (a MigrationTarget)."""

    name = PROVIDER + "-target"

    def __init__(self, estate: NoopEstate) -> None:
        self.estate = estate

    def close(self) -> None:
        """Let go of the estate (the driver's adapters share one)."""
        self.estate.close()

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
