"""The `replatform` method's phases: move a VM off vCenter onto a native, right-sized EC2 instance.

The source is `site.yaml`'s `source` vCenter, as for the cold method: a team re-platforming VMs that
already run in the cloud SDDC points `source` at the cloud vCenter; the lab can also re-platform
straight from its on-prem vCenter (disks are read over datastore HTTP either way). Phases:

    precheck -> power_off_source -> upload_disks -> register_image -> launch_instance
             -> wait_ready -> verify -> mark_source_migrated

Each phase first looks for what an interrupted attempt made (snapshots, image and instance are found
by their idempotency-key tag), acts, and returns plain outputs. The instance type and NIC placements
were fixed when the plan was built (migrate.replatform_plan); live state comes from vCenter and AWS
through the duck-typed verbs below (adapters/vcenter/source.py, adapters/aws/replatformer.py).

Block-level resume: `upload_disks` records the blocks each snapshot has accepted in the run journal
(its `blocks` table, through migrate.core.block_progress), in batches while it runs; after a crash the resumed phase
finds its unsealed snapshot by tag and puts only the blocks not recorded there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from migrate.core.drivers import Role
from migrate.core.errors import AdapterError, OperationalError
from migrate.core.ports import DiskSource, ReplatformTarget, missing_port
from migrate.engine.cold import disk_source, power_off_source
from migrate.engine.context import PhaseContext, wait_operation
from migrate.engine.methods import Method, Phase, RollbackStep, Stage
from migrate.engine.outputs import PhaseOutput, SourceState
from migrate.engine.replatform_facts import ReplatformPlanner
from migrate.engine.vm_checks import Check, ebs_checks, settle, source_vm_checks

__all__ = ["REPLATFORM", "LaunchedInstance", "RegisteredImage", "ReplatformTarget",
           "UploadedDisk", "UploadedDisks", "cloud_checks", "disk_image", "owner", "plan_of"]

GIB = 1024 ** 3


class UploadedDisk(PhaseOutput):
    """One disk in a sealed, verified EBS snapshot."""

    key: int
    snapshot_id: str
    volume_size_gib: int
    checksum: str


class UploadedDisks(PhaseOutput):
    """Every disk of the VM, boot disk first."""

    disks: list[UploadedDisk]


class RegisteredImage(PhaseOutput):
    """The AMI registered from the snapshots."""

    image_id: str
    name: str
    state: str
    architecture: str
    boot_mode: str | None = None


class LaunchedInstance(PhaseOutput):
    """The EC2 instance that now runs the VM."""

    target_field = "instance_id"
    instance_id: str


def _source(ctx: PhaseContext) -> DiskSource:
    return disk_source(ctx.adapters.source, "replatform")


def _cloud(ctx: PhaseContext) -> ReplatformTarget:
    cloud = ctx.adapters.replatformer
    if not isinstance(cloud, ReplatformTarget):
        raise missing_port(cloud, "ReplatformTarget", "replatformer", "replatform")
    return cloud


def owner(ctx: PhaseContext) -> dict[str, str]:
    """Whose resources these are: the source VM's instanceUuid, the run, the wave (become tags)."""
    return {"source_id": ctx.vm.id, "run_id": ctx.run_id, "wave": str(ctx.wave.id)}


def plan_of(ctx: PhaseContext) -> Mapping[str, Any]:
    """The VM's re-platform facts fixed with the plan: instance type, architecture, boot mode, NIC placements."""
    rp: Mapping[str, Any] = ctx.vm.facts["replatform"]
    return rp


def disk_image(disk: Mapping[str, Any]) -> tuple[str, int | None]:
    """The datastore file holding a disk's raw image, and its length when known without reading it.

    On a real vCenter a flat disk's data is its `-flat.vmdk` extent, which describe_vm lists in `files`
    (with each file's size from layoutEx in `file_bytes`, the chain's in `bytes`); the extent is exactly
    `capacity_bytes` long. The lab's vcsim lists an extent that is empty (or not there at all) and keeps the
    seeded data in the descriptor file `[ds] vm/vm.vmdk` itself: then the descriptor is the image, and its
    length is found by reading it. The extent's own size decides: after a snapshot is removed vcsim counts
    the descriptor's bytes in the chain's total.
    """
    extent = next((str(f) for f in disk.get("files", []) if str(f).endswith("-flat.vmdk")), None)
    sizes = disk.get("file_bytes")   # older callers give only the chain's total
    own = int(sizes.get(extent) or 0) if sizes is not None and extent is not None else int(disk.get("bytes") or 0)
    if extent is not None and own > 0:
        return extent, int(disk["capacity_bytes"])
    return str(disk["file"]), None


def _length(chunks: Iterable[bytes]) -> int:
    return sum(len(chunk) for chunk in chunks)


# -- precheck ----------------------------------------------------------------------------------------

def _source_checks(facts: Mapping[str, Any], live: Mapping[str, Any]) -> list[Check]:
    """The shared source checks plus what EBS and an AMI can hold (the readiness catalog's disk rules)."""
    return source_vm_checks(facts, live, moved="streamed") + ebs_checks(facts)


def cloud_checks(ctx: PhaseContext, live: Mapping[str, Any]) -> list[Check]:
    """The source checks against `live` (describe_vm), then the instance type, placement and no live instance
    of another run on the cloud side (read-only)."""
    facts, rp = ctx.vm.facts, plan_of(ctx)
    checks = _source_checks(facts, live)
    cloud = _cloud(ctx)
    checks.extend({"check": "launch", "status": "block", "message": problem}
                  for problem in cloud.launch_problems(vm=facts["name"], instance_type=rp["instance_type"],
                                                       architecture=rp["architecture"], boot_mode=rp["boot_mode"],
                                                       nics=list(rp["nics"])))
    for instance in cloud.instances_of(ctx.vm.id):
        if instance.get("run_id") != ctx.run_id and instance["state"] not in ("terminated", "shutting-down"):
            checks.append({"check": "instance", "status": "block",
                           "message": f"{instance['instance_id']} already runs this VM (run {instance.get('run_id')}):"
                                      " roll that run back first"})
    return checks


def precheck(ctx: PhaseContext) -> dict[str, Any]:
    """Source VM, disks, instance type and network placement checked (read-only); records the power state."""
    live = _source(ctx).describe_vm(ctx.vm.id)
    checks = settle(cloud_checks(ctx, live), ctx.log)
    return {"power_state": live["power_state"], "name": live["name"], "instance_type": plan_of(ctx)["instance_type"],
            "checks": checks}


# -- cutover -----------------------------------------------------------------------------------------

def _counted(chunks: Iterable[bytes], report: Callable[[int], None]) -> Iterator[bytes]:
    """`chunks`, reporting the bytes read so far (the upload's pace: it reads as fast as it sends)."""
    read = 0
    for chunk in chunks:
        read += len(chunk)
        report(read)
        yield chunk


def _upload_disk(ctx: PhaseContext, disk: Mapping[str, Any], live: Mapping[str, Any], *, before: int = 0,
                 total: int | None = None) -> dict[str, Any]:
    """One disk into a sealed, read-back-verified EBS snapshot; resumes a half-done upload block by block.
    Its bytes go to `ctx.progress` after the VM's `before` bytes (of `total`)."""
    source, cloud = _source(ctx), _cloud(ctx)
    path, size = disk_image(live)
    if size is None:
        size = _length(source.read_file(path))
    disk_id = str(disk["key"])
    key = f"{ctx.key}:disk-{disk_id}"
    who = owner(ctx)
    volume_gib = max(1, -(-int(disk["capacity_bytes"]) // GIB), -(-size // GIB))
    description = f"{ctx.vm.facts['name']} disk {disk_id}"
    sealed = cloud.find_sealed_snapshot(key)
    if sealed is not None:
        result = cloud.verify_disk(sealed, source.read_file(path), size)
        result["volume_size_gib"] = volume_gib
        resumed = "sealed"
    else:
        snapshot = cloud.find_pending_snapshot(key)
        resumed = "blocks" if snapshot is not None else "new"
        if snapshot is None:
            snapshot = cloud.start_disk_snapshot(owner=who, key=key, volume_gib=volume_gib, description=description)
        store = cloud.progress
        done = store.done(ctx.run_id, ctx.vm.id, disk_id, snapshot)
        with store.recorder(ctx.run_id, ctx.vm.id, disk_id, snapshot) as record:
            chunks = _counted(source.read_file(path), lambda n: ctx.progress.bytes(before + n, total))
            result = cloud.upload_disk(chunks, size, owner=who, key=key, volume_gib=volume_gib,
                                       description=description, resume_snapshot=snapshot, done=done,
                                       on_block=record)
    if not result["verified"]:
        raise OperationalError(f"disk {disk_id}: snapshot {result['snapshot_id']} does not match the source: "
                               + "; ".join(result["problems"]))
    out = {"key": disk["key"], "source_file": path, "bytes": size, "resumed": resumed,
           **{k: result.get(k) for k in ("snapshot_id", "volume_size_gib", "total_blocks", "written_blocks",
                                         "blocks_sent", "blocks_resumed", "zero_blocks", "checksum",
                                         "blocks_checked")}}
    ctx.log.info("disk uploaded", disk=disk_id, snapshot=out["snapshot_id"], sent=out["blocks_sent"],
                 resumed=out["blocks_resumed"], written=out["written_blocks"])
    return out


def upload_disks(ctx: PhaseContext) -> dict[str, Any]:
    """Stream every disk (planned order: the first is the boot disk) into its own EBS snapshot."""
    live = {int(d["key"]): d for d in _source(ctx).describe_vm(ctx.vm.id)["disks"]}
    missing = [d["key"] for d in ctx.vm.facts["disks"] if int(d["key"]) not in live]
    if missing:
        raise OperationalError(f"disk {missing[0]} is no longer on the source VM")
    sizes = [disk_image(live[int(d["key"])])[1] for d in ctx.vm.facts["disks"]]
    total = sum(s for s in sizes if s is not None) if None not in sizes else None
    disks, before = [], 0
    for disk in ctx.vm.facts["disks"]:
        disks.append(_upload_disk(ctx, disk, live[int(disk["key"])], before=before, total=total))
        before += int(disks[-1]["bytes"])
    ctx.progress.bytes(before, total)
    return {"disks": disks}


def register_image(ctx: PhaseContext) -> dict[str, Any]:
    """Register the AMI from the verified snapshots (root + gp3 data disks), unless registered; wait for it."""
    facts = ctx.vm.facts
    return _cloud(ctx).register_image(owner=owner(ctx), key=ctx.key, vm_name=facts["name"],
                                      firmware=facts.get("firmware"), guest_id=facts.get("guest_id"),
                                      disks=ctx.output(UploadedDisks).model_dump()["disks"])


def launch_instance(ctx: PhaseContext) -> dict[str, Any]:
    """Launch the right-sized instance in the mapped subnets, unless an earlier attempt did."""
    rp = plan_of(ctx)
    return _cloud(ctx).launch(owner=owner(ctx), key=ctx.key, vm=ctx.vm.facts["name"],
                              image=ctx.output(RegisteredImage).model_dump(),
                              disks=ctx.output(UploadedDisks).model_dump()["disks"],
                              instance_type=rp["instance_type"], nics=list(rp["nics"]))


def _instance_id(ctx: PhaseContext) -> str:
    return ctx.output(LaunchedInstance).instance_id


# -- verify ------------------------------------------------------------------------------------------

def wait_ready(ctx: PhaseContext) -> dict[str, Any]:
    """Wait until the instance runs and passes both status checks."""
    return _cloud(ctx).wait_ready(_instance_id(ctx))


def verify(ctx: PhaseContext) -> dict[str, Any]:
    """Exactly one live instance for this VM: running, the planned type, subnets, IPs, groups and tags."""
    cloud, rp = _cloud(ctx), plan_of(ctx)
    instance_id = _instance_id(ctx)
    live = [i for i in cloud.instances_of(ctx.vm.id) if i["state"] not in ("terminated", "shutting-down")]
    problems = []
    if [i["instance_id"] for i in live] != [instance_id]:
        problems.append(f"live instances for this VM: {[i['instance_id'] for i in live]}, expected [{instance_id}]")
    found = cloud.describe_instance(instance_id)
    if found is None:
        raise OperationalError(f"verify: instance {instance_id} does not exist")
    if found["state"] != "running":
        problems.append(f"state {found['state']}")
    if found["instance_type"] != rp["instance_type"]:
        problems.append(f"type {found['instance_type']}, planned {rp['instance_type']}")
    if (found["source_id"], found["run_id"], found["wave"]) != (ctx.vm.id, ctx.run_id, str(ctx.wave.id)):
        problems.append(f"tags source/run/wave {found['source_id']}/{found['run_id']}/{found['wave']}")
    want = [(n["subnet_id"], sorted(n.get("security_group_ids") or [])) for n in rp["nics"]]
    have = [(n["subnet_id"], n["security_group_ids"]) for n in found["nics"]]
    if want != have:
        problems.append(f"NICs (subnet, groups) {have}, planned {want}")
    for index, nic in enumerate(rp["nics"]):
        if nic.get("private_ip") and index < len(found["nics"]) and found["nics"][index]["private_ip"] != \
                nic["private_ip"]:
            problems.append(f"NIC {index} has IP {found['nics'][index]['private_ip']}, kept IP is {nic['private_ip']}")
    if problems:
        raise OperationalError(f"verify {instance_id}: {'; '.join(problems)}")
    return {"instance_id": instance_id, "instance_type": found["instance_type"], "subnet_id": found["subnet_id"],
            "private_ip": found["private_ip"]}


def mark_source_migrated(ctx: PhaseContext) -> dict[str, Any]:
    """Mark the source migrated (custom field + rename), keeping it off for rollback."""
    _source(ctx).mark_migrated(ctx.vm.id, note=f"{ctx.run_id}: {_cloud(ctx).name}/{_instance_id(ctx)}")
    return {"marked": True}


# -- rollback ----------------------------------------------------------------------------------------

def remove_aws(ctx: PhaseContext) -> dict[str, Any]:
    """Terminate the instance, deregister the image, delete snapshots and volumes of this VM's run."""
    result = _cloud(ctx).remove(owner(ctx))
    left = {kind: ids for kind, ids in result["left"].items() if ids}
    if left:
        raise AdapterError("aws", "rollback", f"still there after cleanup: {left}", retryable=True)
    return {"removed": result["removed"]}


def restore_source(ctx: PhaseContext) -> dict[str, Any]:
    """Restore the source's name and, once nothing can run on AWS, its power state."""
    source = _source(ctx)
    source.unmark_migrated(ctx.vm.id)
    before = ctx.maybe_output(SourceState)
    was = before.power_state if before is not None else None
    # An instance can exist only once an image was registered; it is gone once remove_aws finished.
    nothing_runs = "rollback:remove_aws" in ctx.prior or "register_image" not in ctx.prior
    powered_on = False
    if was == "poweredOn" and nothing_runs and source.vm_power_state(ctx.vm.id) != "poweredOn":
        wait_operation(source.power_on_vm(ctx.vm.id), ctx, provider="vcenter", what="power on source",
                       poll_seconds=0.2)
        powered_on = True
    return {"powered_on": powered_on, "left_off": was == "poweredOn" and not nothing_runs}


REPLATFORM = Method(
    name="replatform",
    description="Stream the disks into verified EBS snapshots, register an AMI, launch a right-sized EC2 "
                "instance in the mapped subnets, check it, mark the source.",
    phases=(
        Phase("precheck", Stage.PRECHECK, precheck, provides=SourceState),
        Phase("power_off_source", Stage.CUTOVER, power_off_source),
        Phase("upload_disks", Stage.CUTOVER, upload_disks, provides=UploadedDisks, moves_data=True),
        Phase("register_image", Stage.CUTOVER, register_image, requires=(UploadedDisks,), provides=RegisteredImage),
        Phase("launch_instance", Stage.CUTOVER, launch_instance, requires=(UploadedDisks, RegisteredImage),
              provides=LaunchedInstance),
        Phase("wait_ready", Stage.VERIFY, wait_ready, reads_only=True, requires=(LaunchedInstance,)),
        Phase("verify", Stage.VERIFY, verify, reads_only=True, requires=(LaunchedInstance,)),
        Phase("mark_source_migrated", Stage.VERIFY, mark_source_migrated, requires=(LaunchedInstance,)),
    ),
    rollback=(
        RollbackStep("remove_aws", remove_aws, "target"),
        RollbackStep("restore_source", restore_source, "source"),
    ),
    roles=frozenset({Role.SOURCE, Role.REPLATFORMER}),
    facts=lambda site, plan_file, site_file, catalog: ReplatformPlanner(site, plan_file=plan_file,
                                                                        site_file=site_file, catalog=catalog),
    grows_cluster=False,   # its VMs leave vCenter: the target cluster does not grow for them
)
