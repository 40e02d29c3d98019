"""The warm phases against an in-memory source and target that follow the vSphere contract (snapshots freeze
the disk, change ids name points in the write history, QueryChangedDiskAreas answers what changed between
two points): crashes at chosen moments, then the phases again, as a resumed run calls them.

The lab tests (tests/integration/migration/test_warm_*.py) run the same phases against vcsim; these pin the
orderings a random kill -9 only samples.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
import structlog

from migrate.core.errors import AdapterError
from migrate.core.ports import Adapters, OperationState, OperationStatus, SnapshotDisk
from migrate.engine.context import PhaseContext
from migrate.engine.plan import VmFacts, WavePlan
from migrate.engine.replication import MemoryReplication
from migrate.engine.warm import CHUNK, _cycle, final_sync, power_off_source, replicate

SIZE = 3 * CHUNK + 12345
VM = "vm-1"


class Done:
    def __init__(self, result: Any = None) -> None:
        self.id, self.result = "op", result

    def poll(self) -> OperationStatus:
        return OperationStatus(OperationState.SUCCESS, 100, self.result)


class Crash(Exception):
    """A kill -9 at a chosen moment."""


class Source:
    """One running VM with one disk: writes are tracked by epoch; a snapshot freezes the bytes and seals an epoch."""

    name = "onprem"

    def __init__(self) -> None:
        self.data = bytearray(random.Random(1).randbytes(SIZE))
        self.epoch = 0
        self.writes: list[tuple[int, int, int]] = []          # (epoch, offset, length)
        self.snaps: dict[str, tuple[str, bytes, int]] = {}    # id -> (name, frozen bytes, sealed epoch)
        self.power = "poweredOn"
        self.crash_reads_after: int | None = None

    def write(self, offset: int, data: bytes) -> None:
        assert self.power == "poweredOn"
        self.data[offset:offset + len(data)] = data
        self.writes.append((self.epoch, offset, len(data)))

    # ReplicationSource
    def snapshots(self, vm_id: str) -> list[dict[str, Any]]:
        return [{"id": sid, "name": name} for sid, (name, _, _) in self.snaps.items()]

    def create_snapshot(self, vm_id: str, name: str) -> Done:
        sid = f"snap-{len(self.snaps)}-{self.epoch}"
        self.snaps[sid] = (name, bytes(self.data), self.epoch)
        self.epoch += 1
        return Done(sid)

    def remove_snapshot(self, snapshot_id: str) -> Done:
        self.snaps.pop(snapshot_id, None)
        return Done()

    def snapshot_disks(self, vm_id: str, snapshot_id: str) -> list[SnapshotDisk]:
        _, frozen, sealed = self.snaps[snapshot_id]
        return [SnapshotDisk(key=2000, file="[ds] vm/disk.vmdk", size=len(frozen), change_id=f"52 aa/{sealed}",
                             capacity_bytes=10 * SIZE, files=("[ds] vm/disk.vmdk",))]

    def changed_extents(self, vm_id: str, snapshot_id: str, disk: SnapshotDisk,
                        since: str) -> Iterator[tuple[int, int]]:
        sealed = self.snaps[snapshot_id][2]
        if since == "*":
            yield 0, SIZE
            return
        after = int(since.rsplit("/", 1)[1])
        yield from sorted((o, n) for e, o, n in self.writes if after < e <= sealed)

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        if self.crash_reads_after is not None:
            if self.crash_reads_after == 0:
                raise Crash("killed while copying")
            self.crash_reads_after -= 1
        (_, frozen, _), = self.snaps.values()   # the base file holds the one snapshot's frozen bytes
        return frozen[offset:offset + length]

    def read_file(self, path: str) -> Iterator[bytes]:
        yield b""

    # SourceInventory / DiskSource
    def vm_power_state(self, vm_id: str) -> str:
        return self.power

    def power_off_vm(self, vm_id: str) -> Done:
        self.power = "poweredOff"
        return Done()

    def __getattr__(self, name: str) -> Any:   # verbs these phases do not call
        raise AttributeError(name)


class Target:
    name = "cloud"

    def __init__(self) -> None:
        self.files: dict[str, bytearray] = {}
        self.lock = threading.Lock()   # ranges arrive from several threads, as ranged PUTs of one file do

    def write_range(self, path: str, offset: int, data: bytes, total: int) -> None:
        with self.lock:
            buf = self.files.setdefault(path, bytearray())
            if len(buf) < max(total, offset + len(data)):
                buf.extend(bytes(max(total, offset + len(data)) - len(buf)))
            buf[offset:offset + len(data)] = data

    def file_size(self, path: str) -> int | None:
        return len(self.files[path]) if path in self.files else None

    def write_file(self, path: str, chunks: Iterable[bytes]) -> str:
        self.files[path] = bytearray(b"".join(chunks))
        return ""


def _ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fakes pass the warm method's port checks (they implement what these phases call)."""
    import migrate.engine.cold as cold
    import migrate.engine.warm as warm
    import migrate.engine.warm_cycles as cycles
    monkeypatch.setattr(cycles, "source", lambda ctx: ctx.adapters.source)
    monkeypatch.setattr(warm, "source", lambda ctx: ctx.adapters.source)
    monkeypatch.setattr(warm, "_target", lambda ctx: ctx.adapters.target)
    monkeypatch.setattr(cold, "_inventory", lambda ctx: ctx.adapters.source)


def _ctx(source: Source, target: Target, replication: MemoryReplication, prior: Mapping[str, Any],
         phase: str) -> PhaseContext:
    facts = {"folder": "vm", "disks": [{"key": 2000, "source": "[ds] vm/disk.vmdk", "target_datastore": "t-ds"}]}
    return PhaseContext(run_id="r1", wave=WavePlan(id=1, vms=[VM], method="warm", precopy_interval=1.0),
                        vm=VmFacts(id=VM, name="vm", facts=facts), phase=phase, attempt=1, key=phase,
                        adapters=Adapters(source=source, target=target),  # type: ignore[arg-type]
                        prior=prior,
                        log=structlog.get_logger(), replication=replication)


def _replica(target: Target) -> bytes:
    return bytes(target.files["[t-ds] vm/disk.vmdk"])


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> tuple[Source, Target, MemoryReplication]:
    _ports(monkeypatch)
    return Source(), Target(), MemoryReplication(due=None)


def _replicate_cycles(source: Source, target: Target, rep: MemoryReplication, cycles: int) -> None:
    """`cycles` replication cycles, as `replicate` runs them, then the cutover is due."""
    for cycle in range(cycles):
        _cycle(_ctx(source, target, rep, {}, "replicate"), cycle)
    rep.due = "now"
    assert replicate(_ctx(source, target, rep, {}, "replicate"))["cycles"] == cycles


def test_final_sync_after_a_killed_precopy_cycle_takes_a_snapshot_of_its_own(
        rig: tuple[Source, Target, MemoryReplication]) -> None:
    """A precopy cycle killed after its snapshot, then writes, then the cutover: the final cycle must not
    reuse the precopy snapshot (its frozen bytes miss the writes made before the shutdown)."""
    source, target, rep = rig
    _replicate_cycles(source, target, rep, 1)
    source.write(CHUNK + 10, b"a" * 5000)
    source.crash_reads_after = 0
    with pytest.raises(Crash):   # cycle 1: snapshot taken, killed at its first range
        _cycle(_ctx(source, target, rep, {}, "replicate"), 1)
    source.crash_reads_after = None
    source.write(2 * CHUNK + 7, b"b" * 3000)                 # after cycle 1's snapshot, before the shutdown
    off = power_off_source(_ctx(source, target, rep, {}, "power_off_source"))
    final_sync(_ctx(source, target, rep, {"power_off_source": off}, "final_sync"))
    assert _replica(target) == bytes(source.data)
    assert source.snaps == {}


def test_a_kill_after_the_final_cycle_is_recorded_leaves_no_snapshot(
        rig: tuple[Source, Target, MemoryReplication], monkeypatch: pytest.MonkeyPatch) -> None:
    source, target, rep = rig
    _replicate_cycles(source, target, rep, 2)
    source.write(100, b"c" * 100)
    off = power_off_source(_ctx(source, target, rep, {}, "power_off_source"))
    real_remove = source.remove_snapshot

    def killed(snapshot_id: str) -> Done:
        raise Crash("killed before the snapshot was removed")

    monkeypatch.setattr(source, "remove_snapshot", killed)
    with pytest.raises(Crash):
        final_sync(_ctx(source, target, rep, {"power_off_source": off}, "final_sync"))
    assert rep.cycles()[-1]["final"] and source.snaps   # recorded, snapshot still there
    monkeypatch.setattr(source, "remove_snapshot", real_remove)
    out = final_sync(_ctx(source, target, rep, {"power_off_source": off}, "final_sync"))
    assert source.snaps == {} and out["cycle"] == rep.cycles()[-1]["cycle"]
    assert _replica(target) == bytes(source.data)


def test_a_cycle_killed_mid_copy_resumes_with_what_was_recorded(rig: tuple[Source, Target, MemoryReplication]) -> None:
    """Killed after two ranges of a full copy: the resumed cycle reuses its snapshot, copies the rest, and
    the replica equals the frozen disk; writes made meanwhile come in the next cycle."""
    source, target, rep = rig
    rep.blocks.batch = 1                                   # every range recorded at once
    source.crash_reads_after = 2
    rep.due = "now"
    with pytest.raises(Crash):
        replicate(_ctx(source, target, rep, {}, "replicate"))
    source.crash_reads_after = None
    source.write(10, b"d" * 10)
    replicate(_ctx(source, target, rep, {}, "replicate"))
    assert [c["cycle"] for c in rep.cycles()] == [0]
    off = power_off_source(_ctx(source, target, rep, {}, "power_off_source"))
    final = final_sync(_ctx(source, target, rep, {"power_off_source": off}, "final_sync"))
    assert _replica(target) == bytes(source.data) and final["bytes"] == 10
    assert off["off_at"] is not None


def test_a_source_found_off_gives_no_downtime_figure(rig: tuple[Source, Target, MemoryReplication]) -> None:
    source, target, rep = rig
    source.power = "poweredOff"
    assert power_off_source(_ctx(source, target, rep, {}, "power_off_source"))["off_at"] is None


def test_a_refused_change_id_copies_the_whole_disk_again(rig: tuple[Source, Target, MemoryReplication],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    source, target, rep = rig
    _replicate_cycles(source, target, rep, 1)
    real = source.changed_extents

    def reset(vm_id: str, snapshot_id: str, disk: SnapshotDisk, since: str) -> Iterator[tuple[int, int]]:
        if since != "*":
            raise AdapterError("vcenter", "query changed disk areas", "cannotGetChanges", code="FileFault")
        return real(vm_id, snapshot_id, disk, since)

    monkeypatch.setattr(source, "changed_extents", reset)
    source.write(5, b"e" * 5)
    off = power_off_source(_ctx(source, target, rep, {}, "power_off_source"))
    final = final_sync(_ctx(source, target, rep, {"power_off_source": off}, "final_sync"))
    assert final["bytes"] == SIZE and _replica(target) == bytes(source.data)
