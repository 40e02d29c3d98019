"""The `warm` method: replicate a running VM into the cloud vCenter in cycles, then a short cutover.

Replication (the source keeps running): turn changed block tracking on, copy every allocated area of
every disk from a snapshot (cycle 0), then precopy cycles at the wave's `precopy_interval` (or adaptive):
snapshot, the areas written since the last cycle's change id, copy only those ranges into the replica
files on the target datastore (written in place), remove the snapshot. Cutover, once due (the window
opens, the VM's `cutover_at` passes, or `migrate cutover` asks): guest shutdown, a final cycle, then the
target VM as the cold method builds it (hardware, mapped networks, MACs, tag), powered on, verified,
the source marked. `downtime_s` is measured from the source off to the target on.

Crash safety: each finished cycle is a journal row with the disks' change ids; the ranges a cycle copied
are recorded in batches (migrate.engine.replication), keyed by everything their list depends on, so a
resumed cycle copies only what no record holds. Snapshots are named `migrate-warm <run> cycle <n>` (the
final one `... final`, taken after the shutdown) and found again by name after a crash: the current
cycle's is reused, every other one of ours is removed. Test copies (`migrate test`) are made between two
cycles. Rollback removes test copies, the target VM, the replica files, every snapshot of ours, and turns
tracking off again if the run turned it on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from migrate.core.drivers import Role
from migrate.core.errors import OperationalError
from migrate.core.ports import ReplicaTarget, SnapshotDisk, missing_port
from migrate.engine import cold
from migrate.engine.context import PhaseContext, retry_unit, wait_operation
from migrate.engine.methods import Method, Phase, RollbackStep, Stage
from migrate.engine.outputs import CopiedDisks, SourceState, TargetVm
from migrate.engine.timing import Interrupted
from migrate.engine.vm_checks import Check, check, settle
from migrate.engine.warm_cycles import (
    PROVIDER,
    SNAPSHOT_PREFIX,
    enable_change_tracking,
    final_cycle,
    health_checks,
    ours,
    power_off_source,
    preflight,
    remove_snapshots,
    restore_change_tracking,
    run_cycle,
    snapshot_name,
    source,
)
from migrate.engine.warm_cycles import downtime_s as _downtime
from migrate.engine.warm_cycles import replicate as _replicate

__all__ = ["CHUNK", "SNAPSHOT_PREFIX", "WARM", "replica_path", "snapshot_name"]

CHUNK = 4 * 1024 * 1024      # bytes per ranged read and write (and per recorded unit of progress)
GAP = 64 * 1024              # changed areas this close are copied as one range
TEST_SUFFIX = "-test"        # test copies: the VM's folder and name with this
COPY_THREADS = 4             # ranges of one disk copied at once


def _target(ctx: PhaseContext) -> ReplicaTarget:
    target = ctx.adapters.target
    if not isinstance(target, ReplicaTarget):
        raise missing_port(target, "ReplicaTarget", "target", "warm")
    return target


def _planned(ctx: PhaseContext, disk_key: int) -> Mapping[str, Any]:
    for disk in ctx.vm.facts.get("disks", []):
        if int(disk["key"]) == disk_key:
            return dict(disk)
    raise OperationalError(f"disk {disk_key} of {ctx.vm.name or ctx.vm.id} is not in the plan")


def replica_path(ctx: PhaseContext, disk_key: int, source_path: str | None = None) -> str:
    """Where the replica of a file of the VM's disk `disk_key` (its descriptor by default) lives on the target."""
    disk = _planned(ctx, disk_key)
    return cold.target_file(source_path or str(disk["source"]), str(disk["target_datastore"]),
                            ctx.vm.facts["folder"])


def _replica_files(ctx: PhaseContext, disk_key: int) -> list[str]:
    """The replica files of a disk that exist on the target: its descriptor and, for a flat disk, the extent."""
    target, descriptor = _target(ctx), replica_path(ctx, disk_key)
    candidates = [descriptor, descriptor.removesuffix(".vmdk") + "-flat.vmdk"] if descriptor.endswith(".vmdk") \
        else [descriptor]
    return [path for path in candidates if target.file_size(path) is not None]


# -- precheck ----------------------------------------------------------------------------------------

def precheck(ctx: PhaseContext) -> dict[str, Any]:
    """Cold's checks on both sides (our own snapshots aside), plus tracking (the source names independent disks,
    physical RDMs, old hardware) and ranged writes."""
    src, facts = source(ctx), ctx.vm.facts
    live = src.describe_vm(ctx.vm.id)
    mine = [s for s in src.snapshots(ctx.vm.id) if ours(s)]
    seen = {**live, "snapshots": max(0, int(live.get("snapshots") or 0) - len(mine))}
    checks: list[Check] = cold.source_checks(facts, seen) + cold.target_checks(ctx, facts, live)
    checks.extend(check("change_tracking", "block", problem) for problem in src.change_tracking_problems(ctx.vm.id))
    if not ctx.dry_run:   # the probe writes a scratch file: a dry-run changes nothing
        target = _target(ctx)
        for datastore in sorted({str(d["target_datastore"]) for d in facts.get("disks", [])}):
            checks.extend(check("ranged_writes", "block", p) for p in target.ranged_write_problems(datastore))
    settle(checks, ctx.log)
    return {"power_state": live["power_state"], "name": live["name"], "checks": checks}


# -- replication -------------------------------------------------------------------------------------

def _chunks(extents: Iterator[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """The extents as ranges of at most CHUNK bytes, clipped to the file's `size`; areas at most GAP apart are
    one range (fewer requests for a few more bytes: the gap's unchanged bytes are copied again)."""
    ranges: list[list[int]] = []
    for offset, length in extents:
        end = min(offset + length, size)
        if offset >= end:
            continue
        if ranges and offset - sum(ranges[-1]) <= GAP and end - ranges[-1][0] <= CHUNK:
            ranges[-1][1] = max(ranges[-1][1], end - ranges[-1][0])
            continue
        while offset < end:
            step = min(CHUNK, end - offset)
            ranges.append([offset, step])
            offset += step
    return [(offset, length) for offset, length in ranges]


def _copy_disk(ctx: PhaseContext, cycle: int, snapshot_id: str, disk: SnapshotDisk, since: str,
               extents: list[tuple[int, int]], previous: Mapping[str, Any], *, final: bool) -> dict[str, Any]:
    """Copy the disk's changed ranges into its replica file, written in place."""
    src, target = source(ctx), _target(ctx)
    path = replica_path(ctx, disk.key, disk.file)
    for other in disk.files:   # the descriptor (or the lab's empty extent): small, copied whole first and last
        replica = replica_path(ctx, disk.key, other)
        if other != disk.file and (final or target.file_size(replica) is None):
            def copy_whole(other: str = other, replica: str = replica) -> str:
                return target.write_file(replica, src.read_file(other))
            retry_unit(ctx, f"copy {other}", copy_whole)
    ranges = _chunks(iter(extents), disk.size)
    # recorded positions index this very list: the label names everything it depends on
    part, label = f"disk-{disk.key}", f"cycle-{cycle} {snapshot_id} since {since} chunk {CHUNK} gap {GAP}"
    blocks = ctx.replication.blocks
    done = blocks.done(ctx.run_id, ctx.vm.id, part, label)
    total = sum(length for _, length in ranges)
    moved = sum(length for i, (_, length) in enumerate(ranges) if i in done)
    todo = [(index, where) for index, where in enumerate(ranges) if index not in done]

    def copy(offset: int, length: int) -> None:
        target.write_range(path, offset, src.read_range(disk.file, offset, length), disk.size)

    # a few ranges at once (each a GET and a PUT: latency, not bandwidth, bounds a cycle of scattered changes),
    # recorded in order as they land; a failure leaves the unrecorded ones to be copied again
    with blocks.recorder(ctx.run_id, ctx.vm.id, part, label) as record, \
            ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="warm-copy") as pool:
        for start in range(0, len(todo), 2 * COPY_THREADS):
            if ctx.cancel.is_interrupt:
                raise Interrupted(f"stopped in cycle {cycle} of disk {disk.key}")
            batch = todo[start:start + 2 * COPY_THREADS]
            futures = [pool.submit(retry_unit, ctx, f"copy {disk.file} @{offset}", partial(copy, offset, length))
                       for _, (offset, length) in batch]
            for (index, (_, length)), future in zip(batch, futures, strict=True):
                future.result()
                record(index)
                moved += length
                ctx.progress.bytes(moved, total)
    # the replica as long as the frozen disk, even when its last area holds nothing (or the disk is empty)
    if target.file_size(path) != disk.size:
        if disk.size == 0:
            target.write_file(path, iter([b""]))
        else:
            target.write_range(path, disk.size - 1, src.read_range(disk.file, disk.size - 1, 1), disk.size)
    return {"bytes": total, "ranges": len(ranges)}


def _cycle(ctx: PhaseContext, cycle: int, *, final: bool = False) -> Mapping[str, Any]:
    """Run (or finish) replication cycle `cycle` into the replica files on the target datastore."""
    return run_cycle(ctx, cycle, _copy_disk, final=final)


# -- test copies (migrate test) ------------------------------------------------------------------------

def _test_file(ctx: PhaseContext, disk_key: int, replica: str) -> str:
    """Where the test copy of a replica file goes: the VM's folder with `-test`."""
    datastore = str(_planned(ctx, disk_key)["target_datastore"])
    return cold.target_file(replica, datastore, f"{ctx.vm.facts['folder']}{TEST_SUFFIX}")


def remove_test_copies(ctx: PhaseContext) -> dict[str, Any]:
    """Destroy every test copy of the VM and delete its disk copies (none is fine)."""
    target = _target(ctx)
    removed = []
    for test_id in target.find_test_vms(ctx.vm.id):
        wait_operation(target.destroy_vm(test_id), ctx, provider=PROVIDER, what="destroy test vm", poll_seconds=0.2)
        removed.append(test_id)
    deleted = []
    for disk in ctx.vm.facts.get("disks", []):
        for replica in _replica_files(ctx, int(disk["key"])):
            copy = _test_file(ctx, int(disk["key"]), replica)
            if target.file_size(copy) is not None:
                wait_operation(target.delete_file(copy), ctx, provider=PROVIDER, what="delete test copy",
                               poll_seconds=0.2)
                deleted.append(copy)
    return {"removed": removed, "deleted": deleted}


def _test_copy(ctx: PhaseContext) -> dict[str, Any]:
    """Between two cycles (the replicas are consistent): copy them, start a VM on them on the test networks,
    run the playbook's VM post hooks against it. The source runs on; replication goes on after."""
    target = _target(ctx)
    remove_test_copies(ctx)   # a new test replaces the last one
    disk_files = {}
    for disk in ctx.vm.facts.get("disks", []):
        key = int(disk["key"])
        for replica in _replica_files(ctx, key):
            wait_operation(target.copy_file(replica, _test_file(ctx, key, replica)), ctx, provider=PROVIDER,
                           what="copy replica for a test", poll_seconds=0.2)
        disk_files[key] = _test_file(ctx, key, replica_path(ctx, key))
    test_id = str(wait_operation(target.create_vm(ctx.vm.id, cold.vm_spec(ctx, disk_files, test=True)), ctx,
                                 provider=PROVIDER, what="create test vm", poll_seconds=0.2))
    wait_operation(target.power_on_vm(test_id), ctx, provider=PROVIDER, what="power on test vm", poll_seconds=0.2)
    checks, ok = health_checks(ctx, test_id, "")
    cycle = ctx.replication.cycles()[-1]
    return {"test_vm": test_id, "power_state": target.vm_power_state(test_id), "cycle": cycle["cycle"],
            "replica_at": cycle["at"], "checks": checks, "ok": ok}


def replicate(ctx: PhaseContext) -> dict[str, Any]:
    """The initial full copy, then precopy cycles until the cutover is due; test copies between cycles."""
    return _replicate(ctx, _cycle, _test_copy, remove_test_copies)


# -- cutover -----------------------------------------------------------------------------------------

def final_sync(ctx: PhaseContext) -> dict[str, Any]:
    """The last cycle, with the source off: the replicas now equal the source disks."""
    final = final_cycle(ctx, _cycle)
    disks = []
    for disk in ctx.vm.facts.get("disks", []):
        key = int(disk["key"])
        disks.append({"key": key, "file": replica_path(ctx, key),
                      "files": [{"target": path} for path in _replica_files(ctx, key)]})
    return {"disks": disks, "cycle": final["cycle"], "bytes": final["bytes"], "seconds": final["seconds"]}


def power_on_target(ctx: PhaseContext) -> dict[str, Any]:
    """Power the target on (the downtime ends: `downtime_s` from the source's power-off)."""
    return {**cold.power_on_target(ctx), **_downtime(ctx)}


# -- rollback ----------------------------------------------------------------------------------------

def remove_replicas(ctx: PhaseContext) -> dict[str, Any]:
    """Delete the replica files (those Destroy_Task left, or of a replication that never cut over)."""
    target = _target(ctx)
    deleted = []
    for disk in ctx.vm.facts.get("disks", []):
        for path in _replica_files(ctx, int(disk["key"])):
            wait_operation(target.delete_file(path), ctx, provider=PROVIDER, what="delete replica", poll_seconds=0.2)
            deleted.append(path)
    return {"deleted": deleted}


WARM = Method(
    name="warm",
    description="Replicate the running source into the cloud vCenter (changed block tracking, precopy cycles), "
                "then a short cutover: shut down, final delta, the same VM on the target, power on, verify.",
    phases=(
        Phase("precheck", Stage.PRECHECK, precheck, provides=SourceState),
        Phase("enable_change_tracking", Stage.REPLICATE, enable_change_tracking),
        Phase("replicate", Stage.REPLICATE, replicate, moves_data=True, cycle=_cycle),
        Phase("power_off_source", Stage.CUTOVER, power_off_source),
        Phase("final_sync", Stage.CUTOVER, final_sync, provides=CopiedDisks, moves_data=True),
        Phase("create_target_vm", Stage.CUTOVER, cold.create_target_vm, requires=(CopiedDisks,), provides=TargetVm),
        Phase("tag_target", Stage.CUTOVER, cold.tag_target, requires=(TargetVm,)),
        Phase("power_on_target", Stage.CUTOVER, power_on_target, requires=(SourceState, TargetVm)),
        Phase("verify", Stage.VERIFY, cold.verify, reads_only=True, requires=(SourceState, CopiedDisks, TargetVm)),
        Phase("mark_source_migrated", Stage.VERIFY, cold.mark_source_migrated, requires=(TargetVm,)),
    ),
    rollback=(
        RollbackStep("remove_test_copies", remove_test_copies, "target"),
        RollbackStep("remove_target", cold.remove_target, "target"),
        RollbackStep("remove_replicas", remove_replicas, "target"),
        RollbackStep("remove_snapshots", remove_snapshots, "source"),
        RollbackStep("restore_change_tracking", restore_change_tracking, "source"),
        RollbackStep("restore_source_name", cold.restore_source_name, "source"),
        RollbackStep("restore_source_power", cold.restore_source_power, "after_target"),
    ),
    roles=frozenset({Role.SOURCE, Role.TARGET}),
    grows_cluster=True,
    preflight=preflight,
)
