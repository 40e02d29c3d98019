"""Block progress of EBS uploads in the run journal: batched, durable, keyed by run, VM, disk and snapshot."""

from __future__ import annotations

import threading
from pathlib import Path

from migrate.core.block_progress import BlockProgress
from migrate.engine.journal import Journal
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from migrate.engine.replatform import disk_image

PLAN = RunPlan(waves=[WavePlan(id=1, vms=["vm-a", "vm-b", "vm"])],
               vms=[VmFacts(id="vm-a"), VmFacts(id="vm-b"), VmFacts(id="vm")])


def _journal(tmp_path: Path, *run_ids: str) -> Journal:
    journal = Journal(tmp_path / "run.db")
    for run_id in run_ids or ("r1",):
        journal.create_run(PLAN, {}, run_id)
    return journal


def test_batches_by_size_and_flushes_on_exit(tmp_path: Path) -> None:
    """A recorder writes every `batch` blocks and the rest when it closes; done() unions the batches."""
    with _journal(tmp_path) as journal:
        store = BlockProgress(journal, batch=3, interval=3600)
        with store.recorder("r1", "vm-a", "2000", "snap-1") as record:
            for index in (5, 1, 9, 4):
                record(index, "checksum")
            assert store.done("r1", "vm-a", "2000", "snap-1") == {1, 5, 9}  # the first batch, committed
        assert store.done("r1", "vm-a", "2000", "snap-1") == {1, 4, 5, 9}
        assert record.recorded == 4
    with Journal(tmp_path / "run.db", create=False) as reopened:  # durable: another process sees it
        assert BlockProgress(reopened).done("r1", "vm-a", "2000", "snap-1") == {1, 4, 5, 9}


def test_batches_by_age(tmp_path: Path) -> None:
    """With interval 0 every accepted block is durable at once."""
    with _journal(tmp_path) as journal:
        store = BlockProgress(journal, batch=1000, interval=0)
        record = store.recorder("r1", "vm-a", "2000", "snap-1")
        record(0)
        record(3)
        assert store.done("r1", "vm-a", "2000", "snap-1") == {0, 3}


def test_keyed_by_run_vm_disk_and_snapshot(tmp_path: Path) -> None:
    """Progress of another run, VM, disk or snapshot never counts (a new snapshot starts from nothing)."""
    with _journal(tmp_path, "r1", "r2") as journal:
        store = BlockProgress(journal, batch=1)
        identities = [("r1", "vm-a", "1", "s1"), ("r2", "vm-a", "1", "s1"), ("r1", "vm-b", "1", "s1"),
                      ("r1", "vm-a", "2", "s1"), ("r1", "vm-a", "1", "s2")]
        for index, identity in enumerate(identities):
            with store.recorder(*identity) as record:
                record(index)
        assert [store.done(*identity) for identity in identities] == [{0}, {1}, {2}, {3}, {4}]
        assert store.done("r1", "vm-a", "1", "s9") == frozenset()


def test_threads_share_one_store(tmp_path: Path) -> None:
    """VMs upload on threads of their own: every block of every disk is recorded."""
    with _journal(tmp_path) as journal:
        store = BlockProgress(journal, batch=7)

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


def test_memory_store() -> None:
    """Without a journal (dry runs) progress lives in memory."""
    store = BlockProgress(None, batch=1)
    with store.recorder("r", "v", "d", "s") as record:
        record(2)
    assert store.done("r", "v", "d", "s") == {2}


def test_disk_image_is_the_extent_on_vcenter_and_the_descriptor_in_the_lab() -> None:
    """A real vCenter's flat extent (non-zero chain size) is read for capacity bytes; vcsim's empty
    extent means the descriptor holds the data, length unknown until read."""
    files = ["[ds] vm/vm-flat.vmdk", "[ds] vm/vm.vmdk"]
    real = {"file": "[ds] vm/vm.vmdk", "files": files, "bytes": 10 * 2**30, "capacity_bytes": 40 * 2**30}
    lab = {**real, "bytes": 0}
    assert disk_image(real) == ("[ds] vm/vm-flat.vmdk", 40 * 2**30)
    assert disk_image(lab) == ("[ds] vm/vm.vmdk", None)
    assert disk_image({**real, "files": ["[ds] vm/vm.vmdk"]}) == ("[ds] vm/vm.vmdk", None)
    # each file's own size decides: after a snapshot is removed vcsim counts the descriptor's bytes in the chain
    after_snapshot = {**real, "file_bytes": {"[ds] vm/vm-flat.vmdk": 0, "[ds] vm/vm.vmdk": 10 * 2**30}}
    assert disk_image(after_snapshot) == ("[ds] vm/vm.vmdk", None)
    assert disk_image({**real, "file_bytes": {"[ds] vm/vm-flat.vmdk": 40 * 2**30, "[ds] vm/vm.vmdk": 512}}) == (
        "[ds] vm/vm-flat.vmdk", 40 * 2**30)
