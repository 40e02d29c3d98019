"""The `warm_replatform` method: replicate a running VM into EBS snapshots in cycles, then a short cutover to EC2.

The source side is the warm method's (migrate.engine.warm_cycles: tracking, our snapshots, cycles, cutover
requests, test requests). Each cycle puts each disk into an EBS snapshot through the EBS direct APIs: the
first a full one (all-zero blocks skipped), each later one a child of the last (`ParentSnapshotId`) holding
only the 512 KiB blocks that changed (zero blocks too: they may replace data). After a cycle is journaled
the older snapshots of the line are deleted (a child holds its parent's data). Cutover: guest shutdown, a
final cycle, the AMI from the final snapshots, the right-sized instance in the mapped subnets (as the
replatform method launches it), `downtime_s` from the source off to the instance passing its status checks;
then every block of each final snapshot is read back and compared with the source disk at power-off, before
the source is marked. That read-back comes after the launch so the downtime does not grow with the disk; the
source stays off until it passed, and a failure leaves the VM to roll back. Each block put carries its sha256,
which EBS checks, and each snapshot is sealed with the aggregate of its blocks.

Crash safety: a cycle's snapshots carry an idempotency key (run, VM, cycle, source snapshot, disk) and are found after
a crash: a sealed one is kept, a pending one resumed (the blocks recorded in the journal are not put again).
Test migrations (`migrate test`) register an AMI from the latest cycle and launch a test instance in
`replatformer.test_networks`, tagged as a test: verify, resume and the replatform checks never count it;
`--cleanup` and rollback remove it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

from migrate.core.drivers import Role
from migrate.core.errors import AdapterError, OperationalError
from migrate.core.ports import SnapshotChainTarget, SnapshotDisk, missing_port
from migrate.engine import replatform
from migrate.engine.context import PhaseContext, retry_unit
from migrate.engine.methods import Method, Phase, RollbackStep, Stage
from migrate.engine.outputs import SourceState
from migrate.engine.replatform import LaunchedInstance, RegisteredImage, UploadedDisks
from migrate.engine.replatform_facts import ReplatformPlanner
from migrate.engine.timing import Interrupted
from migrate.engine.vm_checks import check, settle
from migrate.engine.warm_cycles import (
    downtime_s,
    enable_change_tracking,
    final_cycle,
    health_checks,
    last_cycle,
    ours,
    power_off_source,
    preflight,
    remove_snapshots,
    replicate,
    restore_change_tracking,
    run_cycle,
    source,
)

__all__ = ["BLOCK", "WARM_REPLATFORM", "blocks_of"]

BLOCK = 512 * 1024       # the EBS direct APIs' block size
READ_BLOCKS = 8          # blocks per ranged read of the source (4 MiB)
GIB = 1024 ** 3


def _cloud(ctx: PhaseContext) -> SnapshotChainTarget:
    cloud = ctx.adapters.replatformer
    if not isinstance(cloud, SnapshotChainTarget):
        raise missing_port(cloud, "SnapshotChainTarget", "replatformer", "warm_replatform")
    return cloud


def _line(ctx: PhaseContext) -> str:
    """The idempotency-key prefix of this VM's replica snapshots in this run."""
    return f"{ctx.run_id}:{ctx.vm.id}:replica:"


def blocks_of(extents: list[tuple[int, int]]) -> list[int]:
    """The 512 KiB block indices the extents touch, in order."""
    touched: set[int] = set()
    for offset, length in extents:
        if length > 0:
            touched.update(range(offset // BLOCK, (offset + length - 1) // BLOCK + 1))
    return sorted(touched)


def _runs(indices: list[int]) -> Iterator[tuple[int, int]]:
    """(first index, count) of consecutive indices, at most READ_BLOCKS each."""
    start = count = 0
    for index in indices:
        if count and index == start + count and count < READ_BLOCKS:
            count += 1
            continue
        if count:
            yield start, count
        start, count = index, 1
    if count:
        yield start, count


def _read_blocks(ctx: PhaseContext, disk: SnapshotDisk, indices: list[int], cycle: int) -> Iterator[tuple[int, bytes]]:
    """(index, block) read from the frozen disk, the last one zero-padded; stops at Ctrl-C."""
    src = source(ctx)
    done = 0
    for start, count in _runs(indices):
        if ctx.cancel.is_interrupt:
            raise Interrupted(f"stopped in cycle {cycle} of disk {disk.key}")
        offset, length = start * BLOCK, min(count * BLOCK, disk.size - start * BLOCK)
        data = retry_unit(ctx, f"read {disk.file} @{offset}", partial(src.read_range, disk.file, offset, length))
        for i in range(count):
            block = data[i * BLOCK:(i + 1) * BLOCK]
            yield start + i, block + bytes(BLOCK - len(block))
        done += count
        ctx.progress.bytes(done * BLOCK, len(indices) * BLOCK)


def _volume_gib(ctx: PhaseContext, disk: SnapshotDisk) -> int:
    capacity = next((int(d["capacity_bytes"]) for d in ctx.vm.facts.get("disks", []) if int(d["key"]) == disk.key),
                    disk.size)
    return max(1, -(-capacity // GIB), -(-disk.size // GIB))


def _copy_disk(ctx: PhaseContext, cycle: int, snapshot_id: str, disk: SnapshotDisk, since: str,
               extents: list[tuple[int, int]], previous: Mapping[str, Any], *, final: bool) -> dict[str, Any]:
    """Put the blocks the extents touch into this cycle's EBS snapshot: a child of the last cycle's when the
    extents are the changes since it, else a new full one."""
    cloud = _cloud(ctx)
    parent = str(previous["snapshot_id"]) if since != "*" and previous.get("snapshot_id") else None
    # the source snapshot is in the key: a precopy cycle killed after its seal must not stand for the final one
    key = f"{_line(ctx)}cycle-{cycle}:{snapshot_id}:disk-{disk.key}"
    volume_gib = _volume_gib(ctx, disk)
    indices = blocks_of(extents)
    replica = {"bytes": len(indices) * BLOCK, "ranges": len(indices), "parent_id": parent,
               "volume_size_gib": volume_gib, "file": disk.file, "size": disk.size}
    sealed = cloud.find_sealed_snapshot(key)
    if sealed is not None:   # a crash came after the seal, before the cycle was journaled
        return {**replica, "snapshot_id": sealed, "checksum": cloud.sealed_checksum(sealed)}
    ebs_id = cloud.find_pending_snapshot(key) or cloud.start_disk_snapshot(
        owner=replatform.owner(ctx), key=key, volume_gib=volume_gib, parent_id=parent,
        description=f"{ctx.vm.facts['name']} disk {disk.key} cycle {cycle}")
    part = f"disk-{disk.key}"
    blocks = ctx.replication.blocks
    done = blocks.done(ctx.run_id, ctx.vm.id, part, ebs_id)
    with blocks.recorder(ctx.run_id, ctx.vm.id, part, ebs_id) as record:
        result = cloud.upload_blocks(_read_blocks(ctx, disk, indices, cycle), snapshot_id=ebs_id,
                                     volume_gib=volume_gib, total_blocks=-(-disk.size // BLOCK), done=done,
                                     skip_zero=parent is None, on_block=record)
    return {**replica, "snapshot_id": ebs_id, "checksum": result["checksum"], "blocks_sent": result["blocks_sent"],
            "blocks_resumed": result["blocks_resumed"]}


def _cycle(ctx: PhaseContext, cycle: int, *, final: bool = False) -> Mapping[str, Any]:
    """Run (or finish) cycle `cycle` into EBS, then delete the line's older snapshots."""
    record = run_cycle(ctx, cycle, _copy_disk, final=final)
    _prune(ctx, record)
    return record


def _prune(ctx: PhaseContext, record: Mapping[str, Any]) -> None:
    """Delete the line's snapshots other than this cycle's (a crash may have come before an earlier prune)."""
    keep = [str(r["snapshot_id"]) for r in record.get("replicas", {}).values()]
    pruned = _cloud(ctx).prune_snapshots(replatform.owner(ctx), _line(ctx), keep)
    if pruned:
        ctx.log.info("older replica snapshots deleted", cycle=record["cycle"], snapshots=len(pruned))


def _replicas(record: Mapping[str, Any], ctx: PhaseContext) -> list[dict[str, Any]]:
    """The cycle's snapshots as UploadedDisk records, in the plan's disk order (the boot disk first)."""
    replicas = record.get("replicas", {})
    disks = []
    for disk in ctx.vm.facts.get("disks", []):
        replica = replicas.get(str(disk["key"]))
        if replica is None:
            raise OperationalError(f"cycle {record['cycle']} holds no replica of disk {disk['key']}")
        disks.append({"key": int(disk["key"]), "snapshot_id": replica["snapshot_id"],
                      "volume_size_gib": replica["volume_size_gib"], "checksum": replica["checksum"]})
    return disks


# -- precheck ----------------------------------------------------------------------------------------

def precheck(ctx: PhaseContext) -> dict[str, Any]:
    """The replatform method's checks (our own snapshots aside), plus changed block tracking."""
    src = source(ctx)
    live = src.describe_vm(ctx.vm.id)
    mine = sum(1 for s in src.snapshots(ctx.vm.id) if ours(s))
    checks = replatform.cloud_checks(ctx, {**live, "snapshots": max(0, int(live.get("snapshots") or 0) - mine)})
    checks.extend(check("change_tracking", "block", problem) for problem in src.change_tracking_problems(ctx.vm.id))
    settle(checks, ctx.log)
    return {"power_state": live["power_state"], "name": live["name"],
            "instance_type": replatform.plan_of(ctx)["instance_type"], "checks": checks}


# -- test migrations (migrate test) --------------------------------------------------------------------

def remove_tests(ctx: PhaseContext) -> dict[str, Any]:
    """Terminate the VM's test instances and deregister their images (none is fine); the shape of the rehost
    method's: what was removed, what was deleted."""
    result = _cloud(ctx).remove_tests(replatform.owner(ctx))
    left = {kind: ids for kind, ids in result["left"].items() if ids}
    if left:
        raise AdapterError("aws", "remove test", f"still there after cleanup: {left}", retryable=True)
    removed = result["removed"]
    return {"removed": [*removed["instances"], *removed["images"]], "deleted": removed["volumes"]}


def _test_launch(ctx: PhaseContext) -> dict[str, Any]:
    """Between two cycles: an AMI from the latest cycle's snapshots, an instance of it in the test subnets, the
    playbook's VM post hooks against it. The source runs on; replication goes on after."""
    cloud, rp = _cloud(ctx), replatform.plan_of(ctx)
    remove_tests(ctx)   # a new test replaces the last one
    record = ctx.replication.cycles()[-1]
    key = f"{_line(ctx)}test-{record['cycle']}"
    disks = _replicas(record, ctx)
    facts = ctx.vm.facts
    image = cloud.register_image(owner=replatform.owner(ctx), key=key, vm_name=f"{facts['name']}-test",
                                 firmware=facts.get("firmware"), guest_id=facts.get("guest_id"), disks=disks,
                                 test=True)
    launched = cloud.launch(owner=replatform.owner(ctx), key=key, vm=f"{facts['name']}-test", image=image,
                            disks=disks, instance_type=rp["instance_type"], nics=list(rp.get("test_nics", [])),
                            test=True)
    instance_id = str(launched["instance_id"])
    ready = cloud.wait_ready(instance_id)
    checks, ok = health_checks(ctx, instance_id, str(launched.get("private_ip") or ""))
    return {"test_vm": instance_id, "image_id": image["image_id"], "power_state": ready["state"],
            "cycle": record["cycle"], "replica_at": record["at"], "checks": checks, "ok": ok}


def replicate_to_ebs(ctx: PhaseContext) -> dict[str, Any]:
    """The initial full copy, then precopy cycles until the cutover is due; test launches between cycles."""
    return replicate(ctx, _cycle, _test_launch, remove_tests)


# -- cutover -----------------------------------------------------------------------------------------

def final_sync(ctx: PhaseContext) -> dict[str, Any]:
    """The last cycle, with the source off: each disk's final snapshot now equals the source disk."""
    final = final_cycle(ctx, _cycle)
    _prune(ctx, final)   # again: a crash may have come between recording it and deleting the older snapshots
    return {"disks": _replicas(final, ctx), "cycle": final["cycle"], "bytes": final["bytes"],
            "seconds": final["seconds"]}


def wait_ready(ctx: PhaseContext) -> dict[str, Any]:
    """Wait until the instance runs and passes both status checks (the downtime ends)."""
    return {**replatform.wait_ready(ctx), **downtime_s(ctx)}


def verify_disks(ctx: PhaseContext) -> dict[str, Any]:
    """Read every block of each final snapshot back and compare it with the source disk, off since the cutover."""
    src, cloud = source(ctx), _cloud(ctx)
    if src.vm_power_state(ctx.vm.id) != "poweredOff":
        raise OperationalError("the source is no longer off: its disks may differ from the final snapshots")
    final = last_cycle(ctx)
    if final is None or not final.get("final"):
        raise OperationalError("no final cycle is recorded: the cutover did not sync the last changes")
    checked = []
    for disk in ctx.output(UploadedDisks).disks:
        replica = final["replicas"][str(disk.key)]   # the file the cycles read (its snapshot is consolidated now)
        path, size = str(replica["file"]), int(replica["size"])
        result = cloud.verify_chain(disk.snapshot_id, src.read_file(path), size)
        if not result["verified"]:
            raise OperationalError(f"disk {disk.key}: snapshot {disk.snapshot_id} does not match the source: "
                                   + "; ".join(result["problems"]))
        checked.append({"key": disk.key, "snapshot_id": disk.snapshot_id, "file": path, "bytes": size,
                        "blocks_checked": result["blocks_checked"]})
    return {"disks": checked}


WARM_REPLATFORM = Method(
    name="warm_replatform",
    description="Replicate the running source into EBS snapshots (changed block tracking, child snapshots per "
                "cycle), then a short cutover: shut down, final delta, AMI, right-sized EC2 instance, read-back.",
    phases=(
        Phase("precheck", Stage.PRECHECK, precheck, provides=SourceState),
        Phase("enable_change_tracking", Stage.REPLICATE, enable_change_tracking),
        Phase("replicate", Stage.REPLICATE, replicate_to_ebs, moves_data=True, cycle=_cycle),
        Phase("power_off_source", Stage.CUTOVER, power_off_source),
        Phase("final_sync", Stage.CUTOVER, final_sync, provides=UploadedDisks, moves_data=True),
        Phase("register_image", Stage.CUTOVER, replatform.register_image, requires=(UploadedDisks,),
              provides=RegisteredImage),
        Phase("launch_instance", Stage.CUTOVER, replatform.launch_instance, requires=(UploadedDisks, RegisteredImage),
              provides=LaunchedInstance),
        Phase("wait_ready", Stage.VERIFY, wait_ready, reads_only=True, requires=(LaunchedInstance,)),
        Phase("verify_disks", Stage.VERIFY, verify_disks, reads_only=True, requires=(UploadedDisks,),
              moves_data=True),
        Phase("verify", Stage.VERIFY, replatform.verify, reads_only=True, requires=(LaunchedInstance,)),
        Phase("mark_source_migrated", Stage.VERIFY, replatform.mark_source_migrated, requires=(LaunchedInstance,)),
    ),
    rollback=(
        RollbackStep("remove_aws", replatform.remove_aws, "target"),
        RollbackStep("remove_snapshots", remove_snapshots, "source"),
        RollbackStep("restore_change_tracking", restore_change_tracking, "source"),
        RollbackStep("restore_source", replatform.restore_source, "source"),
    ),
    roles=frozenset({Role.SOURCE, Role.REPLATFORMER}),
    facts=lambda site, plan_file, site_file, catalog: ReplatformPlanner(site, plan_file=plan_file, site_file=site_file,
                                                                        catalog=catalog, tests=True),
    grows_cluster=False,
    preflight=preflight,
)
