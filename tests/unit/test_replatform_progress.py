"""Block progress of EBS uploads next to the journal: batched, durable, keyed, tolerant of a torn line."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from migrate.engine.block_progress import BlockProgress, progress_path
from migrate.engine.replatform import disk_image


def test_batches_by_size_and_flushes_on_exit(tmp_path: Path) -> None:
    """A recorder writes every `batch` blocks and the rest when it closes; done() unions the batches."""
    store = BlockProgress(tmp_path / "run.db.blocks.jsonl", batch=3, interval=3600)
    with store.recorder("r1", "vm-a", "2000", "snap-1") as record:
        for index in (5, 1, 9, 4):
            record(index, "checksum")
        assert len((tmp_path / "run.db.blocks.jsonl").read_text().splitlines()) == 1
    lines = [json.loads(line) for line in (tmp_path / "run.db.blocks.jsonl").read_text().splitlines()]
    assert lines == [{"run": "r1", "vm": "vm-a", "disk": "2000", "snapshot": "snap-1", "blocks": [1, 5, 9]},
                     {"run": "r1", "vm": "vm-a", "disk": "2000", "snapshot": "snap-1", "blocks": [4]}]
    assert store.done("r1", "vm-a", "2000", "snap-1") == {1, 4, 5, 9}
    assert record.recorded == 4


def test_batches_by_age(tmp_path: Path) -> None:
    """With interval 0 every accepted block is durable at once."""
    store = BlockProgress(tmp_path / "p.jsonl", batch=1000, interval=0)
    record = store.recorder("r1", "vm-a", "2000", "snap-1")
    record(0)
    record(3)
    assert store.done("r1", "vm-a", "2000", "snap-1") == {0, 3}


def test_keyed_by_run_vm_disk_and_snapshot(tmp_path: Path) -> None:
    """Progress of another run, VM, disk or snapshot never counts (a new snapshot starts from nothing)."""
    store = BlockProgress(tmp_path / "p.jsonl", batch=1)
    identities = [("r1", "a", "1", "s1"), ("r2", "a", "1", "s1"), ("r1", "b", "1", "s1"), ("r1", "a", "2", "s1"),
                  ("r1", "a", "1", "s2")]
    for index, identity in enumerate(identities):
        with store.recorder(*identity) as record:
            record(index)
    assert [store.done(*identity) for identity in identities] == [{0}, {1}, {2}, {3}, {4}]
    assert store.done("r1", "a", "1", "s9") == frozenset()
    assert store.done("r9", "a", "1", "s1") == frozenset()


def test_torn_last_line_is_skipped_and_closed(tmp_path: Path) -> None:
    """A crash mid-write leaves a torn line: it is ignored, and the next append starts on a new line."""
    path = tmp_path / "p.jsonl"
    path.write_text('{"run":"r1","vm":"a","disk":"1","snapshot":"s1","blocks":[1,2]}\n{"run":"r1","vm":"a","di')
    store = BlockProgress(path, batch=1)
    assert store.done("r1", "a", "1", "s1") == {1, 2}
    with store.recorder("r1", "a", "1", "s1") as record:
        record(7)
    store.close()
    assert store.done("r1", "a", "1", "s1") == {1, 2, 7}
    assert len(path.read_text().splitlines()) == 3


def test_threads_share_one_store(tmp_path: Path) -> None:
    """VMs upload on threads of their own: every block of every disk is recorded once, no line mixed."""
    store = BlockProgress(tmp_path / "p.jsonl", batch=7)

    def upload(disk: str) -> None:
        with store.recorder("r1", "vm", disk, f"snap-{disk}") as record:
            for index in range(500):
                record(index)

    threads = [threading.Thread(target=upload, args=(str(d),)) for d in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for disk in range(6):
        assert store.done("r1", "vm", str(disk), f"snap-{disk}") == set(range(500))


def test_memory_store_and_path() -> None:
    """Without a path progress lives in memory; the side file sits next to the journal."""
    store = BlockProgress(None, batch=1)
    with store.recorder("r", "v", "d", "s") as record:
        record(2)
    assert store.done("r", "v", "d", "s") == {2}
    assert progress_path("/x/run.db") == Path("/x/run.db.blocks.jsonl")


def test_disk_image_is_the_extent_on_vcenter_and_the_descriptor_in_the_lab() -> None:
    """A real vCenter's flat extent (non-zero chain size) is read for capacity bytes; vcsim's empty
    extent means the descriptor holds the data, length unknown until read."""
    files = ["[ds] vm/vm-flat.vmdk", "[ds] vm/vm.vmdk"]
    real = {"file": "[ds] vm/vm.vmdk", "files": files, "bytes": 10 * 2**30, "capacity_bytes": 40 * 2**30}
    lab = {**real, "bytes": 0}
    assert disk_image(real) == ("[ds] vm/vm-flat.vmdk", 40 * 2**30)
    assert disk_image(lab) == ("[ds] vm/vm.vmdk", None)
    assert disk_image({**real, "files": ["[ds] vm/vm.vmdk"]}) == ("[ds] vm/vm.vmdk", None)
