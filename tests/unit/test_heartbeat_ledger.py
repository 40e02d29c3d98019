"""Block progress kept in Temporal heartbeats: what an attempt records is what the next attempt skips."""

from __future__ import annotations

import random

from migrate.core.block_progress import BlockProgress
from migrate.temporal.heartbeat_ledger import HeartbeatLedger, from_ranges, to_ranges


def test_ranges_round_trip_any_set_of_blocks() -> None:
    """[start, end) runs give back exactly the blocks, and a sequential upload is one run."""
    rng = random.Random(7)
    for _ in range(200):
        blocks = {rng.randrange(0, 5000) for _ in range(rng.randrange(0, 300))}
        assert from_ranges(to_ranges(blocks)) == blocks
    assert to_ranges(range(0, 4096)) == [[0, 4096]]


def test_next_attempt_sees_the_blocks_of_the_last_heartbeat_only() -> None:
    """A second attempt (another worker) starts from the details the first attempt's heartbeat carried."""
    first = HeartbeatLedger()
    beat = first.begin("run-1", "vm-1", [])
    progress = BlockProgress(first, batch=2)
    with progress.recorder("run-1", "vm-1", "2000", "snap-a") as record:
        for index in (0, 1, 2, 5):
            record(index)
    sent = beat.details()        # the last heartbeat before the worker died
    progress.append(("run-1", "vm-1", "2000", "snap-a"), [6, 7])    # put after it: not in the heartbeat
    first.end("run-1", "vm-1")

    second = HeartbeatLedger()
    second.begin("run-1", "vm-1", [{"bytes": 10}, sent])
    assert BlockProgress(second).done("run-1", "vm-1", "2000", "snap-a") == frozenset({0, 1, 2, 5})
    assert BlockProgress(second).done("run-1", "vm-1", "2000", "snap-b") == frozenset()
    assert BlockProgress(second).done("run-1", "vm-2", "2000", "snap-a") == frozenset()


def test_blocks_of_a_vm_without_a_running_phase_are_not_kept() -> None:
    """Recording for a VM with no phase running on this worker keeps nothing (no unbounded growth)."""
    ledger = HeartbeatLedger()
    ledger.record_blocks("run-1", "vm-9", "2000", "snap-a", [1, 2])
    assert ledger.blocks_done("run-1", "vm-9", "2000") == {}
