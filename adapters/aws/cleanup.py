"""Rollback of a re-platform: terminate, deregister, delete (each idempotent) and list what is left."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from adapters.aws.common import TAG_KEY, TAG_RUN, TAG_SOURCE, TAG_UPLOAD, TAG_WAVE, AwsClients, aws_error, endpoint_of
from adapters.aws.images import deregister_image
from adapters.aws.instances import terminate_instance

__all__ = ["Leftovers", "delete_snapshots", "delete_volumes", "list_leftovers", "list_tagged", "rollback"]

_GONE_SNAPSHOT = ("InvalidSnapshot.NotFound",)
_GONE_VOLUME = ("InvalidVolume.NotFound",)


@dataclass
class Leftovers:
    """Every resource carrying the tags: instances (not terminated), images, snapshots, volumes."""

    instances: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.instances or self.images or self.snapshots or self.volumes)

    def to_dict(self) -> dict[str, list[str]]:
        return {"instances": self.instances, "images": self.images, "snapshots": self.snapshots,
                "volumes": self.volumes}


def _filters(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


def _describe(ec2: Any, filters: list[dict[str, Any]], op: str) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Reservations, our images, our snapshots and volumes matching `filters` (AdapterError named `op`)."""
    try:
        return (ec2.describe_instances(Filters=filters)["Reservations"],
                ec2.describe_images(Owners=["self"], Filters=filters)["Images"],
                ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"],
                ec2.describe_volumes(Filters=filters)["Volumes"])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise aws_error(exc, op, endpoint_of(ec2)) from None


def list_leftovers(ec2: Any, tags: Mapping[str, str]) -> Leftovers:
    """What still exists with all of `tags` (e.g. {TAG_SOURCE: uuid}); terminated instances do not count."""
    if not tags:
        raise ValueError("list_leftovers needs at least one tag to filter on")
    reservations, images, snapshots, volumes = _describe(ec2, _filters(tags), "list_leftovers")
    return Leftovers(
        instances=sorted(i["InstanceId"] for r in reservations for i in r["Instances"]
                         if i["State"]["Name"] != "terminated"),
        images=sorted(i["ImageId"] for i in images if i.get("State") != "deregistered"),
        snapshots=sorted(s["SnapshotId"] for s in snapshots),
        volumes=sorted(v["VolumeId"] for v in volumes))


def _ours(kind: str, resource_id: str, state: str | None, tags: list[dict[str, str]] | None) -> dict[str, Any]:
    found = {t["Key"]: t["Value"] for t in tags or []}
    return {"kind": kind, "id": resource_id, "state": state, "source_id": found.get(TAG_SOURCE),
            "run_id": found.get(TAG_RUN), "wave": found.get(TAG_WAVE), "key": found.get(TAG_KEY),
            "sealed": TAG_UPLOAD in found}


def list_tagged(ec2: Any, run_id: str | None = None) -> list[dict[str, Any]]:
    """Read-only: every instance (not terminated), image, snapshot and volume carrying our source tag (and
    `run_id`'s run tag when given), as {kind, id, state, source_id, run_id, wave, key, sealed}."""
    filters: list[dict[str, Any]] = [{"Name": "tag-key", "Values": [TAG_SOURCE]}]
    if run_id is not None:
        filters.append({"Name": f"tag:{TAG_RUN}", "Values": [run_id]})
    reservations, images, snapshots, volumes = _describe(ec2, filters, "list_tagged")
    found = [_ours("instance", i["InstanceId"], i["State"]["Name"], i.get("Tags"))
             for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    found += [_ours("image", i["ImageId"], i.get("State"), i.get("Tags")) for i in images
              if i.get("State") != "deregistered"]
    found += [_ours("snapshot", s["SnapshotId"], s.get("State"), s.get("Tags")) for s in snapshots]
    found += [_ours("volume", v["VolumeId"], v.get("State"), v.get("Tags")) for v in volumes]
    return sorted(found, key=lambda r: (r["kind"], r["id"]))


def _delete_each(ec2: Any, op: str, param: str, ids: Iterable[str], gone: tuple[str, ...]) -> list[str]:
    deleted = []
    for resource_id in ids:
        try:
            getattr(ec2, op)(**{param: resource_id})
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            error = aws_error(exc, op, endpoint_of(ec2))
            if error.code in gone:
                continue
            raise error from None
        deleted.append(resource_id)
    return deleted


def delete_snapshots(ec2: Any, snapshot_ids: Iterable[str]) -> list[str]:
    """Delete the snapshots; those already gone are skipped. Returns the ones deleted now."""
    return _delete_each(ec2, "delete_snapshot", "SnapshotId", snapshot_ids, _GONE_SNAPSHOT)


def delete_volumes(ec2: Any, volume_ids: Iterable[str]) -> list[str]:
    """Delete detached volumes; those already gone are skipped. Returns the ones deleted now."""
    return _delete_each(ec2, "delete_volume", "VolumeId", volume_ids, _GONE_VOLUME)


def _wait_terminated(ec2: Any, instance_ids: list[str], timeout: float, poll: float) -> None:
    deadline = time.monotonic() + timeout
    while instance_ids:
        try:
            reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(exc, "describe_instances", endpoint_of(ec2)) from None
        instance_ids = [i["InstanceId"] for r in reservations for i in r["Instances"]
                        if i["State"]["Name"] != "terminated"]
        if not instance_ids:
            return
        if time.monotonic() > deadline:
            raise aws_error(TimeoutError(), "rollback", endpoint_of(ec2))
        time.sleep(poll)


def rollback(clients: AwsClients, tags: Mapping[str, str], *, timeout: float = 900.0, poll: float = 5.0) -> Leftovers:
    """Remove everything carrying `tags`: terminate instances (and wait), deregister images, delete
    snapshots and volumes left detached. Safe to repeat; returns what was found at the start."""
    ec2 = clients.ec2
    found = list_leftovers(ec2, tags)
    for instance_id in found.instances:
        terminate_instance(ec2, instance_id)
    _wait_terminated(ec2, list(found.instances), timeout, poll)
    for image_id in found.images:
        deregister_image(ec2, image_id)
    delete_snapshots(ec2, found.snapshots)
    delete_volumes(ec2, list_leftovers(ec2, tags).volumes)     # volumes the terminations did not delete
    return found
