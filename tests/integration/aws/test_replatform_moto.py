"""Re-platform a seeded lab VM on the lab's moto server: stream its disks from the vcsim datastore into
EBS snapshots, read every block back, register an AMI, launch, check placement and tags, roll back."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from adapters.aws.cleanup import list_leftovers, rollback
from adapters.aws.common import TAG_KEY, TAG_RUN, TAG_SOURCE, TAG_WAVE, AwsClients, resource_tags
from adapters.aws.ebs import UploadResult, upload_snapshot
from adapters.aws.ebs_blocks import BLOCK_SIZE, is_zero, iter_blocks
from adapters.aws.ebs_verify import SnapshotVerification, iter_snapshot_blocks, verify_snapshot
from adapters.aws.images import ROOT_DEVICE, register_image, wait_image_available
from adapters.aws.instances import launch_instance, place_nics, wait_instance_ready
from adapters.aws.settings import AwsSettings
from adapters.vcenter.datastore_http import DatastoreFiles
from migrate.core.config import SiteConfig

pytestmark = pytest.mark.lab
RUN = "run-it-1"
INSTANCE_TYPE = "m7i.xlarge"


def _key(vm: dict[str, Any], part: str) -> str:
    return f"{RUN}/{vm['instance_uuid']}/{part}"


@pytest.fixture(scope="module")
def uploads(aws_clients: AwsClients, datastore_files: DatastoreFiles, site: SiteConfig,
            db_vm: dict[str, Any]) -> list[UploadResult]:
    """Both disks of the VM streamed from the datastore into EBS (capacity as the VM reports it)."""
    assert site.source.datacenter
    tags = resource_tags(db_vm["instance_uuid"], _key(db_vm, "disks"), run_id=RUN, wave="1")
    return [upload_snapshot(aws_clients, datastore_files.download(site.source.datacenter, d["datastore"], d["path"]),
                            d["seeded_bytes"], key=_key(db_vm, f"disk{n}"), tags=tags, volume_gib=d["size_gb"],
                            description=f"{db_vm['name']} disk {n}")
            for n, d in enumerate(db_vm["disks"])]


@pytest.fixture(scope="module")
def verified(aws_clients: AwsClients, uploads: list[UploadResult]) -> list[SnapshotVerification]:
    return [verify_snapshot(aws_clients, u.snapshot_id, u.block_sha256) for u in uploads]


def test_every_block_reads_back_as_the_source(aws_clients: AwsClients, datastore_files: DatastoreFiles,
                                              site: SiteConfig, db_vm: dict[str, Any],
                                              uploads: list[UploadResult]) -> None:
    """Each EBS block has its source block's sha256, zero blocks are absent, the whole disk's sha256 holds."""
    assert site.source.datacenter
    for disk, result in zip(db_vm["disks"], uploads, strict=True):
        source = dict(iter_blocks(datastore_files.download(site.source.datacenter, disk["datastore"], disk["path"]),
                                  disk["seeded_bytes"]))
        nonzero = {i for i, block in source.items() if not is_zero(block)}
        assert 0 < len(nonzero) < len(source)              # the lab seeds some zero blocks in every disk
        read = dict(iter_snapshot_blocks(aws_clients.ebs, result.snapshot_id))
        assert set(read) == nonzero
        for index, data in read.items():
            assert hashlib.sha256(data).digest() == hashlib.sha256(source[index]).digest(), index
        whole = b"".join(read.get(i, bytes(BLOCK_SIZE)) for i in range(len(source)))[:disk["seeded_bytes"]]
        assert hashlib.sha256(whole).hexdigest() == disk["sha256"]
        assert (result.blocks_sent, result.bytes_sent, result.zero_blocks, result.volume_size_gib) == (
            len(nonzero), len(nonzero) * BLOCK_SIZE, len(source) - len(nonzero), disk["size_gb"])


def test_snapshots_verify_and_carry_tags(aws_clients: AwsClients, db_vm: dict[str, Any],
                                         verified: list[SnapshotVerification]) -> None:
    """verify_snapshot passes; the snapshots carry the source instanceUuid, run id and wave."""
    assert all(v.ok for v in verified), [v.problems() for v in verified]
    snapshots = aws_clients.ec2.describe_snapshots(SnapshotIds=[v.snapshot_id for v in verified])["Snapshots"]
    for snapshot in snapshots:
        tags = {t["Key"]: t["Value"] for t in snapshot["Tags"]}
        assert (tags[TAG_SOURCE], tags[TAG_RUN], tags[TAG_WAVE]) == (db_vm["instance_uuid"], RUN, "1")


def test_image_launch_placement_and_rollback(aws_clients: AwsClients, aws_mapped: AwsSettings,
                                             vpc: dict[str, Any], db_vm: dict[str, Any],
                                             verified: list[SnapshotVerification]) -> None:
    """AMI from the verified snapshots, instance of the given type in the mapped subnet with the VM's IP
    and tags, data disk gp3 from its snapshot; a second attempt finds both; rollback leaves nothing."""
    ec2, uuid = aws_clients.ec2, db_vm["instance_uuid"]
    tags = resource_tags(uuid, _key(db_vm, "image"), run_id=RUN, wave="1")
    image = register_image(aws_clients, vm_name=db_vm["name"], firmware=db_vm["firmware"],
                           guest_id=db_vm["guest_id"], root=verified[0], data=verified[1:],
                           key=_key(db_vm, "image"), tags=tags)
    assert (image.architecture, image.boot_mode) == ("x86_64", "uefi")
    assert wait_image_available(ec2, image.image_id, poll=0.1, timeout=30) == "available"
    nics = place_nics(aws_mapped, db_vm["name"], [(db_vm["portgroup"], db_vm["ip"])])
    launched = launch_instance(aws_clients, vm=db_vm["name"], image=image, instance_type=INSTANCE_TYPE, nics=nics,
                               key=_key(db_vm, "instance"), tags=tags)
    status = wait_instance_ready(ec2, launched.instance_id, poll=0.2, timeout=60)
    assert status["InstanceStatus"]["Status"] == "ok"

    instance = ec2.describe_instances(InstanceIds=[launched.instance_id])["Reservations"][0]["Instances"][0]
    assert (instance["InstanceType"], instance["SubnetId"], instance["PrivateIpAddress"]) == (
        INSTANCE_TYPE, vpc["subnets"][db_vm["portgroup"]], db_vm["ip"])
    assert [g["GroupId"] for g in instance["NetworkInterfaces"][0]["Groups"]] == [vpc["security_group"]]
    instance_tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert (instance_tags[TAG_SOURCE], instance_tags[TAG_RUN], instance_tags[TAG_WAVE], instance_tags["Name"]) == (
        uuid, RUN, "1", db_vm["name"])
    volumes = {v["Attachments"][0]["Device"]: v for v in ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [launched.instance_id]}])["Volumes"]}
    assert set(volumes) == {ROOT_DEVICE, "/dev/xvdb"}
    data = volumes["/dev/xvdb"]
    assert (data["VolumeType"], data["SnapshotId"], data["Size"]) == (
        "gp3", verified[1].snapshot_id, db_vm["disks"][1]["size_gb"])

    again_image = register_image(aws_clients, vm_name=db_vm["name"], firmware=db_vm["firmware"],
                                 guest_id=db_vm["guest_id"], root=verified[0], data=verified[1:],
                                 key=_key(db_vm, "image"), tags=tags)
    again = launch_instance(aws_clients, vm=db_vm["name"], image=again_image, instance_type=INSTANCE_TYPE,
                            nics=nics, key=_key(db_vm, "instance"), tags=tags)
    assert (again_image.image_id, again_image.found_existing) == (image.image_id, True)
    assert (again.instance_id, again.found_existing) == (launched.instance_id, True)

    found = list_leftovers(ec2, {TAG_SOURCE: uuid})
    assert (found.instances, found.images) == ([launched.instance_id], [image.image_id])
    assert set(found.snapshots) == {v.snapshot_id for v in verified}
    rollback(aws_clients, {TAG_SOURCE: uuid}, poll=0.2)
    assert list_leftovers(ec2, {TAG_SOURCE: uuid}).empty()
    rollback(aws_clients, {TAG_SOURCE: uuid}, poll=0.2)          # idempotent
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": f"tag:{TAG_KEY}",
                                                          "Values": [_key(db_vm, "image")]}])["Images"] == []
