"""The source side of warm migration, shared by every replica target (cloud vCenter, EBS): changed block tracking,
our snapshots, one replication cycle, the precopy loop, test requests between cycles, and the cutover's start.

A cycle: take (or find again) this cycle's snapshot of the source, ask each disk's changed areas since the last
cycle's change id, let the target's `CopyDisk` copy them into its replica, journal the cycle with the change ids
(and what the target says of its replica), remove the snapshot. Our snapshots are named `migrate-warm <run>
cycle <n>` (the final one `... final`, taken after the shutdown), so a crash leaves nothing unnamed: the current
cycle's is reused, every other one of ours is removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from migrate.core.errors import AdapterError, MigrateError
from migrate.core.ports import Adapters, ReplicationSource, SnapshotDisk, missing_port
from migrate.engine import cold
from migrate.engine.context import PhaseContext, retry_unit, wait_operation
from migrate.engine.hooks import run_hook
from migrate.engine.plan import VmFacts
from migrate.engine.replication import next_cycle_after
from migrate.engine.timing import Interrupted

__all__ = [
    "POLL_SECONDS",
    "PROVIDER",
    "SNAPSHOT_PREFIX",
    "CopyDisk",
    "TestAction",
    "changed_extents",
    "downtime_s",
    "enable_change_tracking",
    "final_cycle",
    "health_checks",
    "last_cycle",
    "ours",
    "power_off_source",
    "preflight",
    "remove_ours",
    "remove_snapshots",
    "replicate",
    "restore_change_tracking",
    "run_cycle",
    "snapshot_name",
    "source",
]

PROVIDER = "vcenter"
SNAPSHOT_PREFIX = "migrate-warm"
POLL_SECONDS = 2.0           # how often a waiting replication looks for a due cutover


class CopyDisk(Protocol):
    """Copies one disk's `extents` (changed since `since`, read from the source snapshot) into the replica;
    returns {"bytes": copied, "ranges": requests, **what the target keeps of the replica (journaled)}.
    `previous` is the last cycle's record for this disk's replica ({} for the first cycle)."""

    def __call__(self, ctx: PhaseContext, cycle: int, snapshot_id: str, disk: SnapshotDisk, since: str,
                 extents: list[tuple[int, int]], previous: Mapping[str, Any], *, final: bool) -> dict[str, Any]: ...


TestAction = Callable[[PhaseContext], dict[str, Any]]


def snapshot_name(run_id: str, cycle: int, *, final: bool = False) -> str:
    """The name of this run's snapshot for `cycle` (found again by it after a crash); the final cycle's has a
    name of its own, so it is never one a precopy cycle took before the source was shut down."""
    return f"{SNAPSHOT_PREFIX} {run_id} {'final' if final else f'cycle {cycle}'}"


def source(ctx: PhaseContext) -> ReplicationSource:
    found = ctx.adapters.source
    if not isinstance(found, ReplicationSource):
        raise missing_port(found, "ReplicationSource", "source", ctx.wave.method)
    return found


def ours(snapshot: Mapping[str, Any]) -> bool:
    return str(snapshot["name"]).startswith(f"{SNAPSHOT_PREFIX} ")


def enable_change_tracking(ctx: PhaseContext) -> dict[str, Any]:
    """Turn changed block tracking on (the first snapshot makes it take effect)."""
    return {"enabled": source(ctx).enable_change_tracking(ctx.vm.id)}


def changed_extents(ctx: PhaseContext, snapshot_id: str, disk: SnapshotDisk,
                    since: str) -> tuple[str, list[tuple[int, int]]]:
    """(what the extents are relative to, the extents) to copy: changed since `since`, clipped to the disk; every
    allocated area ("*") when the disk has no tracking or the vCenter refuses the id (tracking was reset on the
    source), as every tool does then."""
    src = source(ctx)

    def clipped(extents: Iterator[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(o, min(o + n, disk.size) - o) for o, n in extents if o < min(o + n, disk.size)]

    if disk.change_id is None:   # no tracking on this disk (the API has no answer then): all of it, every cycle
        return "*", clipped(iter([(0, disk.size)]))
    try:
        return since, clipped(src.changed_extents(ctx.vm.id, snapshot_id, disk, since))
    except AdapterError as exc:
        if exc.code != "FileFault" or since == "*":
            raise
        ctx.log.warning("change id refused: copying the whole disk again", disk=disk.key, since=since, error=str(exc))
        return "*", clipped(src.changed_extents(ctx.vm.id, snapshot_id, disk, "*"))


def _snapshot(ctx: PhaseContext, name: str) -> str:
    """The snapshot called `name`: found (a crash came after it was taken), or a new one; every other one of
    ours is removed (a finished cycle's whose removal was cut short, or an unfinished cycle's)."""
    src = source(ctx)
    existing = None
    for snapshot in src.snapshots(ctx.vm.id):
        if snapshot["name"] == name and existing is None:
            existing = str(snapshot["id"])
        elif ours(snapshot):   # a finished cycle's, whose removal a crash interrupted
            wait_operation(src.remove_snapshot(str(snapshot["id"])), ctx, provider=PROVIDER,
                           what="remove old snapshot", poll_seconds=0.2)
    if existing is not None:
        return existing
    return str(wait_operation(src.create_snapshot(ctx.vm.id, name), ctx, provider=PROVIDER,
                              what="create snapshot", poll_seconds=0.2))


def run_cycle(ctx: PhaseContext, cycle: int, copy_disk: CopyDisk, *, final: bool = False) -> Mapping[str, Any]:
    """Run (or finish) replication cycle `cycle`: snapshot, copy what changed, record it, remove the snapshot."""
    src = source(ctx)
    finished = {int(c["cycle"]): c for c in ctx.replication.cycles()}
    if cycle in finished:
        return finished[cycle]
    last = finished.get(cycle - 1, {})
    started = time.monotonic()
    snapshot_id = _snapshot(ctx, snapshot_name(ctx.run_id, cycle, final=final))
    planned = {int(d["key"]) for d in ctx.vm.facts.get("disks", [])}
    changes: dict[str, str | None] = {}
    replicas: dict[str, dict[str, Any]] = {}
    moved = ranges = 0
    for disk in src.snapshot_disks(ctx.vm.id, snapshot_id):
        if disk.key not in planned:
            continue
        since, extents = changed_extents(ctx, snapshot_id, disk, last.get("disks", {}).get(str(disk.key)) or "*")
        copied = copy_disk(ctx, cycle, snapshot_id, disk, since, extents,
                           last.get("replicas", {}).get(str(disk.key), {}), final=final)
        moved += int(copied["bytes"])
        ranges += int(copied["ranges"])
        changes[str(disk.key)] = disk.change_id
        extra = {k: v for k, v in copied.items() if k not in ("bytes", "ranges")}
        if extra:
            replicas[str(disk.key)] = extra
    data: dict[str, Any] = {"disks": changes, "bytes": moved, "ranges": ranges,
                            "seconds": round(time.monotonic() - started, 3), "final": final}
    if replicas:
        data["replicas"] = replicas
    ctx.replication.record_cycle(cycle, data)
    wait_operation(src.remove_snapshot(snapshot_id), ctx, provider=PROVIDER, what="remove snapshot",
                   poll_seconds=0.2)
    ctx.log.info("replication cycle done", cycle=cycle, bytes=moved, ranges=ranges, final=final)
    return {**data, "cycle": cycle}


def _hold(ctx: PhaseContext) -> None:
    """Take the VM's slots again before it works (they went to other VMs while it waited)."""
    if not ctx.replication.hold():
        raise Interrupted("stopped while waiting for a free slot (a resume goes on from the last cycle)")


def _serve_tests(ctx: PhaseContext, test: TestAction, cleanup: TestAction) -> None:
    """Do what `migrate test` asked of this VM; a test that fails is recorded, replication goes on."""
    asked = ctx.replication.tests_asked()
    if asked:
        _hold(ctx)
    for request, kind in asked:
        action = test if kind == "test" else cleanup
        try:
            outcome = {"kind": kind, **retry_unit(ctx, kind, partial(action, ctx))}
        except MigrateError as exc:
            outcome = {"kind": kind, "ok": False, "error": str(exc)}
        ctx.log.info("test request done", request=request, kind=kind, ok=outcome.get("ok", True))
        ctx.replication.record_outcome(request, outcome)


def replicate(ctx: PhaseContext, cycle: Callable[[PhaseContext, int], Any], test: TestAction,
              cleanup: TestAction) -> dict[str, Any]:
    """The initial full copy, then precopy cycles until the cutover is due; test copies between cycles. While it
    waits for the next cycle the VM's concurrency slots go back to the wave (other VMs start replicating)."""
    while True:
        cycles = ctx.replication.cycles()
        if not cycles:
            _hold(ctx)
            cycle(ctx, 0)
            continue
        _serve_tests(ctx, test, cleanup)
        last = cycles[-1]
        why = ctx.replication.cutover_due()
        if why is not None:
            _hold(ctx)   # the cutover phases run with the slots held
            ctx.log.info("cutover due", why=why, cycles=len(cycles))
            return {"cycles": len(cycles), "bytes": sum(int(c["bytes"]) for c in cycles), "cutover": why}
        next_at = datetime.fromisoformat(str(last["at"])).timestamp() + next_cycle_after(
            ctx.wave.precopy_interval, float(last["seconds"]))
        wait = next_at - ctx.clock.now().timestamp()
        if wait <= 0:
            _hold(ctx)
            cycle(ctx, int(last["cycle"]) + 1)
            continue
        ctx.replication.release()
        if ctx.clock.sleep(min(POLL_SECONDS, wait), ctx.cancel.requested):
            raise Interrupted("stopped replicating (a resume goes on from the last cycle)")


def health_checks(ctx: PhaseContext, target_id: str, target_ip: str) -> tuple[list[dict[str, Any]], bool]:
    """Run the playbook's VM post hooks (health checks) against a test copy: each hook's result, and whether no
    blocking one failed."""
    variables = {"run_id": ctx.run_id, "wave": str(ctx.wave.id), "vm": ctx.vm.id, "vm_name": ctx.vm.name or ctx.vm.id,
                 "target_id": target_id, "target_ip": target_ip}
    checks: list[dict[str, Any]] = []
    ok = True
    for index, hook in enumerate(ctx.replication.post_hooks):
        try:
            checks.append({"hook": index, "kind": hook.kind, "ok": True,
                           "outputs": run_hook(hook, variables, clock=ctx.clock, cancel=ctx.cancel, approver=None)})
        except (MigrateError, OSError) as exc:
            checks.append({"hook": index, "kind": hook.kind, "ok": False, "error": str(exc)})
            ok = ok and not hook.blocking
    return checks, ok


def final_cycle(ctx: PhaseContext, cycle: Callable[..., Mapping[str, Any]]) -> Mapping[str, Any]:
    """The final cycle (the source is off): run now, or found recorded (a crash came after it, before its
    snapshot was removed: removed now)."""
    last = last_cycle(ctx)
    if last is not None and last.get("final"):
        remove_ours(ctx)
        return last
    return cycle(ctx, int(last["cycle"]) + 1 if last is not None else 0, final=True)


def last_cycle(ctx: PhaseContext) -> Mapping[str, Any] | None:
    cycles = ctx.replication.cycles()
    return cycles[-1] if cycles else None


# -- cutover -----------------------------------------------------------------------------------------

def power_off_source(ctx: PhaseContext) -> dict[str, Any]:
    """Shut the source down (the downtime starts). Found off (a crash came after the shutdown, or it was off
    before the run): when it went off is not known, so no downtime is measured rather than a wrong one."""
    started = ctx.clock.now()
    result = cold.power_off_source(ctx)
    return {**result, "off_at": started.isoformat() if result["powered_off"] else None}


def downtime_s(ctx: PhaseContext) -> dict[str, Any]:
    """`on_at` now and `downtime_s` since the source's power-off (None when that was not seen)."""
    now = ctx.clock.now()
    off = ctx.prior.get("power_off_source", {}).get("off_at")
    downtime = round((now - datetime.fromisoformat(off)).total_seconds(), 3) if off else None
    return {"on_at": now.isoformat(), "downtime_s": downtime}


# -- rollback ----------------------------------------------------------------------------------------

def remove_ours(ctx: PhaseContext) -> list[str]:
    """Remove every snapshot of ours the VM still has; their names."""
    src = source(ctx)
    removed = []
    for snapshot in src.snapshots(ctx.vm.id):
        if ours(snapshot):
            wait_operation(src.remove_snapshot(str(snapshot["id"])), ctx, provider=PROVIDER,
                           what="remove snapshot", poll_seconds=0.2)
            removed.append(str(snapshot["name"]))
    return removed


def remove_snapshots(ctx: PhaseContext) -> dict[str, Any]:
    """Remove every snapshot of ours the VM still has (a crash may leave one)."""
    return {"removed": remove_ours(ctx)}


def restore_change_tracking(ctx: PhaseContext) -> dict[str, Any]:
    """Turn tracking off again if this run turned it on."""
    if not ctx.prior.get("enable_change_tracking", {}).get("enabled"):
        return {"disabled": False}
    source(ctx).disable_change_tracking(ctx.vm.id)
    return {"disabled": True}


def preflight(adapters: Adapters, vm: VmFacts) -> list[str]:
    """Before a run starts: the source must be able to track changes of the VM's disks."""
    src = adapters.source
    if not isinstance(src, ReplicationSource):
        return [str(missing_port(src, "ReplicationSource", "source", "warm"))]
    return [f"changed block tracking: {p}" for p in src.change_tracking_problems(vm.id)]
