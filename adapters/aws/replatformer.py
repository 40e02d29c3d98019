"""The AWS re-platformer the engine drives (migrate.core.ports.Replatformer): plain data in, plain data out.

It wraps the provider layer (ebs, ebs_verify, images, instances, cleanup) for the `replatform` phases of
migrate.engine.replatform, which never see boto3. Every resource it creates carries our tags (source
instanceUuid, run id, wave, idempotency key), so each verb can first look for what an interrupted
attempt already made. `owner` is {"source_id", "run_id", "wave"} of the VM being moved.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import botocore.exceptions

from adapters.aws.cleanup import delete_snapshots, list_leftovers, list_tagged, rollback
from adapters.aws.common import (
    TAG_KEY,
    TAG_RUN,
    TAG_SOURCE,
    TAG_TEST,
    TAG_UPLOAD,
    TAG_WAVE,
    AwsClients,
    RetryPolicy,
    aws_error,
    resource_tags,
)
from adapters.aws.ebs import (
    DEFAULT_TIMEOUT_MINUTES,
    ResumePoint,
    find_pending_snapshot,
    start_snapshot,
    upload_blocks,
    upload_snapshot,
)
from adapters.aws.ebs_blocks import is_zero, iter_blocks
from adapters.aws.ebs_verify import SnapshotVerification, seal_of, snapshot_info, verify_snapshot
from adapters.aws.images import ImageRecord, block_device_mappings, register_image, wait_image_available
from adapters.aws.instances import (
    NicPlacement,
    check_launch,
    find_instance,
    launch_instance,
    wait_instance_ready,
)
from adapters.aws.session import aws_client
from adapters.aws.settings import AwsSettings
from migrate.core.block_progress import BlockProgress
from migrate.core.errors import AdapterError, InputError

__all__ = ["AwsReplatformer"]

Owner = Mapping[str, str]


class AwsReplatformer:
    """EBS snapshots, AMIs and instances for VMs leaving vCenter; clients are made on first use."""

    def __init__(self, settings: AwsSettings, *, progress: BlockProgress | None = None, workers: int = 8,
                 poll: float = 1.0, ready_timeout: float = 900.0) -> None:
        self.settings = settings
        self.progress = progress or BlockProgress(None)
        self.workers = workers
        self.poll = poll
        self.ready_timeout = ready_timeout
        self._clients: AwsClients | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Provider label for logs and errors."""
        return "aws"

    @property
    def clients(self) -> AwsClients:
        """EC2 and EBS clients, pooled for the parallel block puts of several VMs."""
        with self._lock:
            if self._clients is None:
                pool = 4 * self.workers
                try:
                    self._clients = AwsClients(ec2=aws_client(self.settings, "ec2", max_pool_connections=pool),
                                               ebs=aws_client(self.settings, "ebs", max_pool_connections=pool))
                except botocore.exceptions.BotoCoreError as exc:
                    raise aws_error(exc, "client", self.settings.endpoint_url) from None
            return self._clients

    def tags(self, owner: Owner, key: str, *, test: bool = False) -> dict[str, str]:
        """Our tags for a resource made for `owner` under idempotency key `key` (a test migration's: marked)."""
        return resource_tags(owner["source_id"], key, run_id=owner.get("run_id"), wave=owner.get("wave"),
                             extra={TAG_TEST: "true"} if test else None)

    # -- prechecks -------------------------------------------------------------------------------------
    def launch_problems(self, *, vm: str, instance_type: str, architecture: str, boot_mode: str | None,
                        nics: Sequence[Mapping[str, Any]]) -> list[str]:
        """What would stop run_instances (type, architecture, boot mode, subnets, groups, IPs); [] when none."""
        try:
            check_launch(self.clients.ec2, vm=vm, instance_type=instance_type, architecture=architecture,
                         boot_mode=boot_mode, nics=_placements(nics))
        except InputError as exc:
            return [f"{p.field}: {p.message}" for p in exc.problems]
        return []

    def instances_of(self, source_id: str) -> list[dict[str, Any]]:
        """Live instances (any run) carrying the source's tag, described; test migrations' are not counted."""
        found = list_leftovers(self.clients.ec2, {TAG_SOURCE: source_id}).instances
        return [d for d in (self.describe_instance(i) for i in found) if d is not None and not d["test"]]

    # -- disks -----------------------------------------------------------------------------------------
    def find_sealed_snapshot(self, key: str) -> str | None:
        """The completed upload (tagged `migrate:upload`) of idempotency key `key`, if any."""
        try:
            snapshots = self.clients.ec2.describe_snapshots(OwnerIds=["self"], Filters=[
                {"Name": f"tag:{TAG_KEY}", "Values": [key]}, {"Name": "tag-key", "Values": [TAG_UPLOAD]}]
            )["Snapshots"]
        except Exception as exc:
            raise aws_error(exc, "describe_snapshots", self.settings.endpoint_url) from None
        sealed = sorted((s for s in snapshots if s.get("State") != "error"), key=lambda s: s["StartTime"])
        return str(sealed[-1]["SnapshotId"]) if sealed else None

    def sealed_checksum(self, snapshot_id: str) -> str | None:
        """The aggregate checksum a sealed snapshot was completed with (None when it is not sealed)."""
        return seal_of(snapshot_info(self.clients.ec2, snapshot_id))

    def find_pending_snapshot(self, key: str) -> str | None:
        """The unsealed snapshot an earlier attempt with `key` started, if any."""
        return find_pending_snapshot(self.clients.ec2, key)

    def start_disk_snapshot(self, *, owner: Owner, key: str, volume_gib: int, description: str,
                            parent_id: str | None = None) -> str:
        """Start the snapshot of one disk (a ClientToken from `key`: a retried start gets the same one); with
        `parent_id`, a child holding the parent's blocks until others are put."""
        return start_snapshot(self.clients.ebs, size_gib=volume_gib, key=key, tags=self.tags(owner, key),
                              description=description, timeout_minutes=DEFAULT_TIMEOUT_MINUTES, retry=RetryPolicy(),
                              parent_id=parent_id)

    def upload_blocks(self, blocks: Iterable[tuple[int, bytes]], *, snapshot_id: str, volume_gib: int,
                      total_blocks: int, done: frozenset[int] = frozenset(), skip_zero: bool = False,
                      on_block: Callable[[int, str], None] | None = None) -> dict[str, Any]:
        """Put (index, 512 KiB block) into a started snapshot (those in `done` are only hashed) and seal it.
        Each put carries the block's sha256, which EBS checks; the seal carries the aggregate of them all."""
        result = upload_blocks(self.clients, blocks, snapshot_id=snapshot_id, volume_gib=volume_gib,
                               total_blocks=total_blocks, done=done, skip_zero=skip_zero, on_block=on_block,
                               workers=self.workers)
        return result.to_dict()

    def verify_chain(self, snapshot_id: str, chunks: Iterable[bytes], size_bytes: int) -> dict[str, Any]:
        """Read every block of the last snapshot of a chain back and compare it with the source stream."""
        expected = _digests(chunks, size_bytes)
        check = verify_snapshot(self.clients, snapshot_id, expected, workers=self.workers, chain=True)
        return {"snapshot_id": snapshot_id, "blocks_expected": len(expected), **_verification(check)}

    def prune_snapshots(self, owner: Owner, key_prefix: str, keep: Iterable[str]) -> list[str]:
        """Delete the owner's snapshots whose idempotency key starts with `key_prefix`, except `keep` (and
        those an image still uses: EBS refuses them, they go with the image). Returns the ones deleted."""
        try:
            snapshots = self.clients.ec2.describe_snapshots(OwnerIds=["self"], Filters=[
                {"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(self._owner_tags(owner).items())])["Snapshots"]
        except Exception as exc:
            raise aws_error(exc, "describe_snapshots", self.settings.endpoint_url) from None
        kept = set(keep)
        stale = [str(s["SnapshotId"]) for s in snapshots if str(s["SnapshotId"]) not in kept
                 and str({t["Key"]: t["Value"] for t in s.get("Tags", [])}.get(TAG_KEY, "")).startswith(key_prefix)]
        deleted = []
        for snapshot_id in stale:
            try:
                deleted += delete_snapshots(self.clients.ec2, [snapshot_id])
            except AdapterError as exc:
                if exc.code != "InvalidSnapshot.InUse":
                    raise
        return deleted

    def upload_disk(self, chunks: Iterable[bytes], size_bytes: int, *, owner: Owner, key: str, volume_gib: int,
                    description: str, resume_snapshot: str | None = None, done: frozenset[int] = frozenset(),
                    on_block: Callable[[int, str], None] | None = None) -> dict[str, Any]:
        """Stream a raw disk image into an EBS snapshot (resuming one when given), seal it, read it back.

        Returns the upload's numbers plus the verification (`verified`, `problems`) against the block
        digests of what was streamed.
        """
        resume = ResumePoint(resume_snapshot, done) if resume_snapshot else None
        result = upload_snapshot(self.clients, chunks, size_bytes, key=key, tags=self.tags(owner, key),
                                 volume_gib=volume_gib, description=description, resume=resume,
                                 on_block=on_block, workers=self.workers)
        check = verify_snapshot(self.clients, result.snapshot_id, result.block_sha256, workers=self.workers)
        return {**result.to_dict(), **_verification(check)}

    def verify_disk(self, snapshot_id: str, chunks: Iterable[bytes], size_bytes: int) -> dict[str, Any]:
        """Read `snapshot_id` back and compare it with the source stream, block by block."""
        expected = _digests(chunks, size_bytes)
        check = verify_snapshot(self.clients, snapshot_id, expected, workers=self.workers)
        return {"snapshot_id": snapshot_id, "written_blocks": len(expected), "blocks_sent": 0,
                "blocks_resumed": len(expected), "checksum": check.expected_checksum, **_verification(check)}

    # -- image and instance ----------------------------------------------------------------------------
    def register_image(self, *, owner: Owner, key: str, vm_name: str, firmware: str | None,
                       guest_id: str | None, disks: Sequence[Mapping[str, Any]], test: bool = False) -> dict[str, Any]:
        """Register (or find again) the AMI of the uploaded disks (root first), then wait until available.

        The disks' verifications are rebuilt from what upload recorded plus the snapshots' live state
        and seal, so a snapshot changed or unsealed since then is refused.
        """
        checks = [self._rechecked(d) for d in disks]
        image = register_image(self.clients, vm_name=vm_name, firmware=firmware, guest_id=guest_id,
                               root=checks[0], data=checks[1:], key=key, tags=self.tags(owner, key, test=test))
        state = wait_image_available(self.clients.ec2, image.image_id, poll=self.poll)
        return {**image.to_dict(), "state": state}

    def _rechecked(self, disk: Mapping[str, Any]) -> SnapshotVerification:
        info = snapshot_info(self.clients.ec2, str(disk["snapshot_id"]))
        return SnapshotVerification(
            snapshot_id=str(disk["snapshot_id"]), state=str(info.get("State", "unknown")),
            sealed_checksum=seal_of(info), expected_checksum=str(disk["checksum"]),
            volume_size_gib=int(disk["volume_size_gib"]), blocks_checked=int(disk.get("blocks_checked", 0)))

    def launch(self, *, owner: Owner, key: str, vm: str, image: Mapping[str, Any],
               disks: Sequence[Mapping[str, Any]], instance_type: str,
               nics: Sequence[Mapping[str, Any]], test: bool = False) -> dict[str, Any]:
        """Launch (or find again by `key`) the instance of `image` in the mapped subnets."""
        sizes = [SnapshotVerification(snapshot_id=str(d["snapshot_id"]), state="completed", sealed_checksum=None,
                                      expected_checksum="", volume_size_gib=int(d["volume_size_gib"]),
                                      blocks_checked=0) for d in disks]
        record = ImageRecord(image_id=str(image["image_id"]), name=str(image["name"]), state=str(image["state"]),
                             architecture=str(image["architecture"]), boot_mode=image.get("boot_mode"),
                             root_snapshot_id=sizes[0].snapshot_id,
                             data_snapshot_ids=tuple(s.snapshot_id for s in sizes[1:]),
                             launch_devices=block_device_mappings(sizes[0], sizes[1:], with_root_snapshot=False))
        launched = launch_instance(self.clients, vm=vm, image=record, instance_type=instance_type,
                                   nics=_placements(nics), key=key, tags=self.tags(owner, key, test=test))
        return launched.to_dict()

    def find_instance(self, key: str) -> str | None:
        """The live instance launched under `key`, if any."""
        found = find_instance(self.clients.ec2, key)
        return str(found["InstanceId"]) if found else None

    def wait_ready(self, instance_id: str) -> dict[str, Any]:
        """Wait for the instance to run with both status checks ok."""
        status = wait_instance_ready(self.clients.ec2, instance_id, poll=self.poll, timeout=self.ready_timeout)
        return {"instance_id": instance_id, "state": status.get("InstanceState", {}).get("Name"),
                "instance_status": status.get("InstanceStatus", {}).get("Status"),
                "system_status": status.get("SystemStatus", {}).get("Status")}

    def describe_instance(self, instance_id: str) -> dict[str, Any] | None:
        """Plain facts of one instance (None when unknown): state, type, network, our tags."""
        try:
            reservations = self.clients.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except Exception as exc:
            error = aws_error(exc, "describe_instances", self.settings.endpoint_url)
            if error.code == "InvalidInstanceID.NotFound":
                return None
            raise error from None
        found = [i for r in reservations for i in r["Instances"]]
        if not found:
            return None
        item = found[0]
        tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
        nics = sorted(item.get("NetworkInterfaces", []), key=lambda n: n.get("Attachment", {}).get("DeviceIndex", 0))
        return {"instance_id": item["InstanceId"], "state": item["State"]["Name"],
                "instance_type": item["InstanceType"], "image_id": item.get("ImageId"),
                "subnet_id": item.get("SubnetId"), "private_ip": item.get("PrivateIpAddress"),
                "source_id": tags.get(TAG_SOURCE), "run_id": tags.get(TAG_RUN), "wave": tags.get(TAG_WAVE),
                "name": tags.get("Name"), "test": tags.get(TAG_TEST) == "true",
                "nics": [{"subnet_id": n.get("SubnetId"), "private_ip": n.get("PrivateIpAddress"),
                          "security_group_ids": sorted(g["GroupId"] for g in n.get("Groups", []))} for n in nics]}

    def tagged_resources(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Read-only: our live instances, images, snapshots and volumes (of `run_id` when given) with their tags
        (see adapters.aws.cleanup.list_tagged)."""
        return list_tagged(self.clients.ec2, run_id)

    # -- rollback --------------------------------------------------------------------------------------
    def remove(self, owner: Owner) -> dict[str, Any]:
        """Terminate, deregister and delete everything tagged with the owner's source and run."""
        tags = self._owner_tags(owner)
        found = rollback(self.clients, tags, poll=self.poll)
        return {"removed": found.to_dict(), "left": list_leftovers(self.clients.ec2, tags).to_dict()}

    def remove_tests(self, owner: Owner) -> dict[str, Any]:
        """Terminate the owner's test instances and deregister their images (the replica snapshots stay)."""
        tags = {**self._owner_tags(owner), TAG_TEST: "true"}
        found = rollback(self.clients, tags, poll=self.poll)
        return {"removed": found.to_dict(), "left": list_leftovers(self.clients.ec2, tags).to_dict()}

    def leftovers(self, owner: Owner) -> dict[str, list[str]]:
        """What still exists with the owner's tags (instances not terminated, images, snapshots, volumes)."""
        return list_leftovers(self.clients.ec2, self._owner_tags(owner)).to_dict()

    @staticmethod
    def _owner_tags(owner: Owner) -> dict[str, str]:
        tags = {TAG_SOURCE: owner["source_id"]}
        if owner.get("run_id"):
            tags[TAG_RUN] = owner["run_id"]
        return tags

    def close(self) -> None:
        """Release the progress store."""
        self.progress.close()


def _placements(nics: Sequence[Mapping[str, Any]]) -> list[NicPlacement]:
    return [NicPlacement(portgroup=str(n["portgroup"]), subnet_id=str(n["subnet_id"]),
                         security_group_ids=tuple(n.get("security_group_ids") or ()),
                         private_ip=n.get("private_ip")) for n in nics]


def _digests(chunks: Iterable[bytes], size_bytes: int) -> dict[int, bytes]:
    """{block index: raw sha256} of the stream's non-zero 512 KiB blocks (what a sound snapshot holds)."""
    return {i: hashlib.sha256(b).digest() for i, b in iter_blocks(chunks, size_bytes) if not is_zero(b)}


def _verification(check: SnapshotVerification) -> dict[str, Any]:
    return {"verified": check.ok, "problems": check.problems(), "blocks_checked": check.blocks_checked,
            "state": check.state, "sealed_checksum": check.sealed_checksum}
