"""Register an AMI from verified EBS snapshots (root + gp3 data disks); find, wait for and deregister it."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.aws.common import (
    TAG_KEY,
    AwsClients,
    RetryPolicy,
    aws_error,
    client_token,
    endpoint_of,
    tag_list,
)
from adapters.aws.ebs_verify import SnapshotVerification, snapshot_info
from migrate.core.errors import AdapterError, InputError, OperationalError
from migrate.core.guest import architecture_of, boot_mode_of

__all__ = [
    "DATA_DEVICES",
    "ROOT_DEVICE",
    "ImageRecord",
    "block_device_mappings",
    "deregister_image",
    "find_image",
    "image_name",
    "register_image",
    "wait_image_available",
]

ROOT_DEVICE = "/dev/xvda"                                   # one naming scheme for root and data disks
DATA_DEVICES = tuple(f"/dev/xvd{c}" for c in "bcdefghijklmnopqrstuvwxyz")
_LIVE_STATES = ("pending", "available")


@dataclass(frozen=True)
class ImageRecord:
    """An AMI we registered (or found again), with what we asked EC2 for."""

    image_id: str
    name: str
    state: str
    architecture: str
    boot_mode: str | None
    root_snapshot_id: str
    data_snapshot_ids: tuple[str, ...] = ()
    found_existing: bool = False
    launch_devices: list[dict[str, Any]] = field(default_factory=list, repr=False)   # for run_instances

    def to_dict(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "name": self.name, "state": self.state,
                "architecture": self.architecture, "boot_mode": self.boot_mode,
                "root_snapshot_id": self.root_snapshot_id, "data_snapshot_ids": list(self.data_snapshot_ids),
                "found_existing": self.found_existing}


def image_name(vm_name: str, key: str) -> str:
    """A deterministic, EC2-legal AMI name (3-128 chars of [A-Za-z0-9()[] ./'@_-]); unique per key."""
    safe = re.sub(r"[^A-Za-z0-9()\[\] ./'@_-]", "-", vm_name)[:90] or "vm"
    return f"migrate-{safe}-{client_token(key, 'image')[:16]}"


def find_image(ec2: Any, key: str) -> dict[str, Any] | None:
    """Our live (pending/available) AMI for `key`, found by tag; None when there is none."""
    try:
        images = ec2.describe_images(Owners=["self"], Filters=[
            {"Name": f"tag:{TAG_KEY}", "Values": [key]},
            {"Name": "state", "Values": list(_LIVE_STATES)}])["Images"]
    except Exception as exc:
        raise aws_error(exc, "describe_images", endpoint_of(ec2)) from None
    return sorted(images, key=lambda i: i.get("CreationDate", ""))[-1] if images else None


def _find_image_by_name(ec2: Any, name: str) -> dict[str, Any] | None:
    try:
        images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    except Exception as exc:
        raise aws_error(exc, "describe_images", endpoint_of(ec2)) from None
    live = [i for i in images if i.get("State") in _LIVE_STATES]
    return live[0] if live else None


def block_device_mappings(root: SnapshotVerification, data: Sequence[SnapshotVerification], *,
                          delete_on_termination: bool = True, with_root_snapshot: bool = True
                          ) -> list[dict[str, Any]]:
    """Root from its snapshot at /dev/xvda, data disks as gp3 volumes from theirs at /dev/xvdb, ..."""
    if len(data) > len(DATA_DEVICES):
        raise InputError.single("plan", "disks", f"{len(data)} data disks; at most {len(DATA_DEVICES)} supported")
    root_ebs: dict[str, Any] = {"VolumeSize": root.volume_size_gib, "VolumeType": "gp3",
                                "DeleteOnTermination": delete_on_termination}
    if with_root_snapshot:
        root_ebs["SnapshotId"] = root.snapshot_id
    mappings = [{"DeviceName": ROOT_DEVICE, "Ebs": root_ebs}]
    for device, disk in zip(DATA_DEVICES, data, strict=False):
        mappings.append({"DeviceName": device, "Ebs": {
            "SnapshotId": disk.snapshot_id, "VolumeSize": disk.volume_size_gib, "VolumeType": "gp3",
            "DeleteOnTermination": delete_on_termination}})
    return mappings


def _refuse_unsound(ec2: Any, disks: Sequence[SnapshotVerification]) -> None:
    """Registration refuses a snapshot that failed verification or is (no longer) completed."""
    problems = [f"{d.snapshot_id}: {p}" for d in disks for p in d.problems()]
    for disk in disks:
        if not problems:
            state = snapshot_info(ec2, disk.snapshot_id).get("State")
            if state != "completed":
                problems.append(f"{disk.snapshot_id}: state is now {state}, not completed")
    if problems:
        raise OperationalError("refusing to register an image from unverified snapshots: " + "; ".join(problems))


def register_image(clients: AwsClients, *, vm_name: str, firmware: str | None, guest_id: str | None,
                   root: SnapshotVerification, data: Sequence[SnapshotVerification] = (), key: str,
                   tags: Mapping[str, str], retry: RetryPolicy | None = None) -> ImageRecord:
    """Register (or find again, by tag or name) the AMI of one VM from its verified disk snapshots.

    ENA on, HVM, BootMode from firmware (efi -> uefi, bios -> legacy-bios), Architecture from the guest
    id (arm -> arm64, else x86_64). Refuses (OperationalError) when a verification is not `ok` or a
    snapshot is no longer completed. The AMI and its snapshots are tagged with `tags` plus the key.
    """
    retry = retry or RetryPolicy()
    ec2 = clients.ec2
    arch, mode = architecture_of(guest_id), boot_mode_of(firmware)
    if arch == "arm64" and mode == "legacy-bios":
        raise InputError.single("inventory", f"{vm_name}.firmware", "arm64 guests boot with UEFI only")
    name = image_name(vm_name, key)
    mappings = block_device_mappings(root, data)
    all_tags = {**tags, TAG_KEY: key}

    def record(image: Mapping[str, Any], found: bool) -> ImageRecord:
        return ImageRecord(image_id=str(image["ImageId"]), name=name, state=str(image.get("State", "pending")),
                           architecture=arch, boot_mode=mode, root_snapshot_id=root.snapshot_id,
                           data_snapshot_ids=tuple(d.snapshot_id for d in data), found_existing=found,
                           launch_devices=block_device_mappings(root, data, with_root_snapshot=False))

    existing = find_image(ec2, key) or _find_image_by_name(ec2, name)
    if existing is not None:
        _tag(ec2, [existing["ImageId"]], all_tags, retry)
        return record(existing, True)
    _refuse_unsound(ec2, [root, *data])
    kwargs: dict[str, Any] = {
        "Name": name, "Description": f"migrate: re-platformed {vm_name}"[:255], "Architecture": arch,
        "RootDeviceName": ROOT_DEVICE, "BlockDeviceMappings": mappings, "VirtualizationType": "hvm",
        "EnaSupport": True, "TagSpecifications": [{"ResourceType": "image", "Tags": tag_list(all_tags)}]}
    if mode is not None:
        kwargs["BootMode"] = mode
    try:
        image_id = retry.call(lambda: ec2.register_image(**kwargs)["ImageId"], "register_image", endpoint_of(ec2))
    except AdapterError as exc:
        if exc.code != "InvalidAMIName.Duplicate":
            raise
        again = _find_image_by_name(ec2, name)    # registered by an attempt that died before tagging
        if again is None:
            raise
        image_id = again["ImageId"]
    _tag(ec2, [image_id], all_tags, retry)          # some endpoints (moto) ignore TagSpecifications here
    return record({"ImageId": image_id, "State": "pending"}, False)


def _tag(ec2: Any, resources: list[str], tags: Mapping[str, str], retry: RetryPolicy) -> None:
    retry.call(lambda: ec2.create_tags(Resources=resources, Tags=tag_list(tags)), "create_tags", endpoint_of(ec2))


def wait_image_available(ec2: Any, image_id: str, *, timeout: float = 1800.0, poll: float = 5.0) -> str:
    """Wait until the AMI is available; AdapterError when it fails or the wait times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            images = ec2.describe_images(ImageIds=[image_id])["Images"]
        except Exception as exc:
            raise aws_error(exc, "describe_images", endpoint_of(ec2)) from None
        state = images[0].get("State") if images else "missing"
        if state == "available":
            return state
        if state in ("failed", "invalid", "deregistered", "error", "missing"):
            raise AdapterError("aws", "register_image", f"image {image_id} is {state}", endpoint=endpoint_of(ec2),
                               code=f"Image.{state}")
        if time.monotonic() > deadline:
            raise AdapterError("aws", "register_image", f"image {image_id} still {state} after {timeout:.0f} s",
                               retryable=True, endpoint=endpoint_of(ec2), code="Timeout")
        time.sleep(poll)


def deregister_image(ec2: Any, image_id: str) -> bool:
    """Deregister the AMI; False when it was already gone (idempotent). Its snapshots stay (delete them next)."""
    try:
        ec2.deregister_image(ImageId=image_id)
    except Exception as exc:
        error = aws_error(exc, "deregister_image", endpoint_of(ec2))
        if error.code in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            return False
        raise error from None
    return True
