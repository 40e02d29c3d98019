"""The EBS side of warm re-platforming against an in-memory cloud that follows the EBS direct APIs' contract (a
child snapshot starts as its parent; sealed snapshots are found by key): which blocks each cycle puts, when a
snapshot is a child, and that a resumed cycle neither loses nor repeats a block."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
import structlog

from migrate.core.ports import Adapters, SnapshotDisk
from migrate.engine import warm_replatform
from migrate.engine.context import PhaseContext
from migrate.engine.plan import VmFacts, WavePlan
from migrate.engine.replication import MemoryReplication
from migrate.engine.warm_replatform import BLOCK, _copy_disk, blocks_of

SIZE = 6 * BLOCK + 1000
DISK = SnapshotDisk(key=2000, file="[ds] vm/disk.vmdk", size=SIZE, change_id="52 aa/1", capacity_bytes=8 * BLOCK,
                    files=("[ds] vm/disk.vmdk",))


class Crash(Exception):
    """A kill -9 at a chosen block."""


class Source:
    def __init__(self) -> None:
        self.data = bytearray(SIZE)
        self.data[0:10] = b"boot code!"
        self.data[3 * BLOCK:3 * BLOCK + 5] = b"hello"

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        return bytes(self.data[offset:offset + length])


class Cloud:
    """EBS snapshots as {index: block}; a child starts with its parent's blocks."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[int, bytes]] = {}
        self.keys: dict[str, str] = {}
        self.sealed: set[str] = set()
        self.parents: dict[str, str | None] = {}
        self.puts: list[tuple[str, int]] = []
        self.crash_after: int | None = None

    def find_sealed_snapshot(self, key: str) -> str | None:
        found = self.keys.get(key)
        return found if found in self.sealed else None

    def find_pending_snapshot(self, key: str) -> str | None:
        found = self.keys.get(key)
        return found if found is not None and found not in self.sealed else None

    def sealed_checksum(self, snapshot_id: str) -> str | None:
        return "sum" if snapshot_id in self.sealed else None

    def start_disk_snapshot(self, *, owner: Mapping[str, str], key: str, volume_gib: int, description: str,
                            parent_id: str | None = None) -> str:
        snapshot_id = f"snap-{len(self.snapshots)}"
        self.snapshots[snapshot_id] = dict(self.snapshots[parent_id]) if parent_id else {}
        self.keys[key], self.parents[snapshot_id] = snapshot_id, parent_id
        return snapshot_id

    def upload_blocks(self, blocks: Iterable[tuple[int, bytes]], *, snapshot_id: str, volume_gib: int,
                      total_blocks: int, done: frozenset[int] = frozenset(), skip_zero: bool = False,
                      on_block: Any = None) -> dict[str, Any]:
        sent = resumed = 0
        for index, block in blocks:
            assert len(block) == BLOCK
            if skip_zero and not block.strip(b"\0"):
                continue
            if index in done:
                resumed += 1
                continue
            if self.crash_after is not None and len(self.puts) >= self.crash_after:
                raise Crash()
            self.snapshots[snapshot_id][index] = block
            self.puts.append((snapshot_id, index))
            sent += 1
            on_block(index, "")
        self.sealed.add(snapshot_id)
        return {"checksum": "sum", "blocks_sent": sent, "blocks_resumed": resumed}


def _ctx(source: Source, cloud: Cloud, rep: MemoryReplication) -> PhaseContext:
    facts = {"name": "vm", "disks": [{"key": 2000, "capacity_bytes": 8 * BLOCK}]}
    return PhaseContext(run_id="r1", wave=WavePlan(id=1, vms=["vm-1"], method="warm_replatform"),
                        vm=VmFacts(id="vm-1", name="vm", facts=facts), phase="replicate", attempt=1, key="k",
                        adapters=Adapters(source=source), prior={},  # type: ignore[arg-type]
                        log=structlog.get_logger(), replication=rep)


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> tuple[Source, Cloud, MemoryReplication]:
    cloud = Cloud()
    monkeypatch.setattr(warm_replatform, "_cloud", lambda ctx: cloud)
    monkeypatch.setattr(warm_replatform, "source", lambda ctx: ctx.adapters.source)
    return Source(), cloud, MemoryReplication(due=None)


def _image(cloud: Cloud, snapshot_id: str) -> bytes:
    blocks = cloud.snapshots[snapshot_id]
    return b"".join(blocks.get(i, bytes(BLOCK)) for i in range(-(-SIZE // BLOCK)))[:SIZE]


def test_blocks_of_extents() -> None:
    """Each extent touches the blocks from its first to its last byte; touching extents share blocks."""
    assert blocks_of([(0, 1), (BLOCK - 1, 2), (5 * BLOCK, BLOCK), (7 * BLOCK, 0)]) == [0, 1, 5]


def test_the_first_cycle_skips_zero_blocks_and_a_child_puts_only_changed_blocks_zero_or_not(
        rig: tuple[Source, Cloud, MemoryReplication]) -> None:
    source, cloud, rep = rig
    ctx = _ctx(source, cloud, rep)
    first = _copy_disk(ctx, 0, "vmsnap-0", DISK, "*", [(0, SIZE)], {}, final=False)
    assert first["parent_id"] is None and sorted(cloud.snapshots[first["snapshot_id"]]) == [0, 3]
    source.data[3 * BLOCK:4 * BLOCK] = bytes(BLOCK)          # the guest zeroes data
    source.data[5 * BLOCK + 7:5 * BLOCK + 9] = b"xy"
    cloud.puts.clear()
    child = _copy_disk(ctx, 1, "vmsnap-1", DISK, "52 aa/1", [(3 * BLOCK, BLOCK), (5 * BLOCK + 7, 2)], first,
                       final=False)
    assert child["parent_id"] == first["snapshot_id"]
    assert cloud.puts == [(child["snapshot_id"], 3), (child["snapshot_id"], 5)]   # the zero block too
    assert _image(cloud, child["snapshot_id"]) == bytes(source.data)


def test_a_refused_change_id_starts_a_new_full_snapshot(rig: tuple[Source, Cloud, MemoryReplication]) -> None:
    """Extents relative to "*" (all allocated data) cannot be applied over a parent: blocks freed since would stay."""
    source, cloud, rep = rig
    ctx = _ctx(source, cloud, rep)
    first = _copy_disk(ctx, 0, "vmsnap-0", DISK, "*", [(0, SIZE)], {}, final=False)
    again = _copy_disk(ctx, 1, "vmsnap-1", DISK, "*", [(0, SIZE)], first, final=False)
    assert again["parent_id"] is None and cloud.parents[again["snapshot_id"]] is None


def test_a_cycle_killed_mid_upload_resumes_its_snapshot_without_putting_a_block_twice(
        rig: tuple[Source, Cloud, MemoryReplication]) -> None:
    source, cloud, rep = rig
    ctx = _ctx(source, cloud, rep)
    source.data[:] = bytes(range(256)) * (SIZE // 256) + bytes(SIZE % 256)   # every block holds data
    cloud.crash_after = 3
    with pytest.raises(Crash):
        _copy_disk(ctx, 0, "vmsnap-0", DISK, "*", [(0, SIZE)], {}, final=False)
    cloud.crash_after = None
    done = _copy_disk(ctx, 0, "vmsnap-0", DISK, "*", [(0, SIZE)], {}, final=False)
    indices = [index for _, index in cloud.puts]
    assert sorted(indices) == list(range(7)) and len(set(indices)) == len(indices)
    assert done["blocks_resumed"] == 3 and len(cloud.snapshots) == 1
    assert hashlib.sha256(_image(cloud, done["snapshot_id"])).digest() == hashlib.sha256(source.data).digest()
    again = _copy_disk(ctx, 0, "vmsnap-0", DISK, "*", [(0, SIZE)], {}, final=False)   # sealed: found, nothing put
    assert again["snapshot_id"] == done["snapshot_id"] and len(cloud.puts) == 7


def test_the_final_cycle_never_takes_a_killed_precopy_cycles_sealed_snapshot(
        rig: tuple[Source, Cloud, MemoryReplication]) -> None:
    """Precopy cycle 1 sealed its snapshot, then the kill; the cutover runs cycle 1 again as the final one from a
    new source snapshot (taken after the shutdown): its EBS snapshot must hold the writes made in between."""
    source, cloud, rep = rig
    ctx = _ctx(source, cloud, rep)
    first = _copy_disk(ctx, 0, "vmsnap-0", DISK, "*", [(0, SIZE)], {}, final=False)
    source.data[0:4] = b"AAAA"
    precopy = _copy_disk(ctx, 1, "vmsnap-1", DISK, "52 aa/1", [(0, 4)], first, final=False)
    source.data[0:4] = b"BBBB"   # written before the shutdown, after the precopy snapshot
    final = _copy_disk(ctx, 1, "vmsnap-final", DISK, "52 aa/1", [(0, 4)], first, final=True)
    assert final["snapshot_id"] != precopy["snapshot_id"]
    assert _image(cloud, final["snapshot_id"]) == bytes(source.data)
