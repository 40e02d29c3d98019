"""A wave of seeded lab VMs re-platformed to EC2 by `migrate run`, read back block by block, rolled back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.cleanup import list_leftovers
from adapters.aws.common import TAG_RUN, TAG_SOURCE, TAG_WAVE
from adapters.aws.ebs_verify import iter_snapshot_blocks
from migrate.engine.journal import Journal
from tests.integration.replatform.conftest import KEEP_IP, World

pytestmark = pytest.mark.lab
# two disks and BIOS firmware / powered off / a port group whose IP is not kept
WAVE = ["shop-db-01", "ci-app-01", "reporting-web-01"]


def _outputs(journal: Path, step: str) -> dict[str, Any]:
    with Journal(journal, create=False) as jr:
        run_id = jr.open_run().run_id
        return {s.entity_id: s.outputs for s in jr.steps(run_id, "vm") if s.step == step and s.status == "finished"}


@pytest.fixture(scope="module")
def ran(world: World) -> dict[str, Any]:
    """`migrate run` of one replatform wave; its journal and the source VMs as they were before."""
    before = world.source_vms()
    plan = world.plan("e2e", WAVE)
    journal = world.work / "e2e.db"
    result = world.run(plan, journal)
    assert result.code == 0, result
    return {"plan": plan, "journal": journal, "before": before, "result": result.json()}


def test_every_ebs_block_equals_the_source_block(world: World, ran: dict[str, Any]) -> None:
    """Each disk's snapshot holds exactly the source's non-zero blocks (zero blocks absent), sha256-equal."""
    uploads = _outputs(ran["journal"], "upload_disks")
    for name in WAVE:
        vm = world.vms[name]
        disks = uploads[vm["instance_uuid"]]["disks"]
        expected = world.source_blocks(name)
        assert len(disks) == len(vm["disks"]) == len(expected)
        for disk, want in zip(disks, expected, strict=True):
            got = {i: hashlib.sha256(data).digest() for i, data in iter_snapshot_blocks(world.clients.ebs,
                                                                                       disk["snapshot_id"])}
            assert got == want, (name, disk["key"])
            assert (disk["blocks_sent"], disk["written_blocks"], disk["resumed"]) == (len(want), len(want), "new")
            assert disk["zero_blocks"] > 0


def test_instance_type_tags_and_subnet_as_planned(world: World, ran: dict[str, Any]) -> None:
    """The instance type equals `migrate size --rightsize`; tags carry the instanceUuid and wave; the NIC is
    in the subnet mapped for its port group, with the VM's IP when the mapping keeps it."""
    sized = world.cli("size", "--inventory", world.inventory, "--plan", ran["plan"], "--rightsize", "--json")
    assert sized.code == 0, sized
    rightsized = {p["vm_id"]: p["instance_type"] for p in sized.json()["rightsizing"]}
    launched = _outputs(ran["journal"], "launch_instance")
    images = _outputs(ran["journal"], "register_image")
    uploads = _outputs(ran["journal"], "upload_disks")
    ec2 = world.clients.ec2
    for name in WAVE:
        vm = world.vms[name]
        uuid = vm["instance_uuid"]
        instance_id = launched[uuid]["instance_id"]
        instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert instance["State"]["Name"] == "running"
        assert rightsized[uuid] is not None and instance["InstanceType"] == rightsized[uuid]
        assert (tags[TAG_SOURCE], tags[TAG_WAVE], tags[TAG_RUN], tags["Name"]) == (
            uuid, "1", ran["result"]["run_id"], name)
        assert instance["SubnetId"] == world.vpc["subnets"][vm["portgroup"]]
        assert [g["GroupId"] for g in instance["NetworkInterfaces"][0]["Groups"]] == [world.vpc["security_group"]]
        if KEEP_IP[vm["portgroup"]]:
            assert instance["PrivateIpAddress"] == vm["ip"]
        # moto keeps no BootMode of its own (it answers uefi): check what the AMI was registered with
        image = images[uuid]
        assert (image["image_id"], image["boot_mode"], image["architecture"]) == (
            instance["ImageId"], "uefi" if vm["firmware"] == "efi" else "legacy-bios", "x86_64")
        assert [d["snapshot_id"] for d in uploads[uuid]["disks"]] == [image["root_snapshot_id"],
                                                                     *image["data_snapshot_ids"]]


def test_sources_are_marked_and_off(world: World, ran: dict[str, Any]) -> None:
    """Each source is renamed "(migrated)" and left off for rollback."""
    now = world.source_vms()
    for name in WAVE:
        vm = now[world.vms[name]["instance_uuid"]]
        assert (vm["name"], vm["runtime.powerState"]) == (f"{name} (migrated)", "poweredOff")


def test_rollback_leaves_nothing_and_restores_the_sources(world: World, ran: dict[str, Any]) -> None:
    """`migrate rollback`: no instance, image, snapshot or volume of these VMs is left; each source has its
    name and power state back (on if it was on); a second rollback changes nothing."""
    result = world.cli("rollback", "--journal", ran["journal"], "--json")
    assert result.code == 0, result
    assert sorted(result.json()["rolled_back"]) == sorted(world.vms[n]["instance_uuid"] for n in WAVE)
    for name in WAVE:
        left = list_leftovers(world.clients.ec2, {TAG_SOURCE: world.vms[name]["instance_uuid"]})
        assert left.empty(), (name, left.to_dict())
    now = world.source_vms()
    for uuid, vm in ran["before"].items():
        assert (now[uuid]["name"], now[uuid]["runtime.powerState"]) == (vm["name"], vm["runtime.powerState"])
    assert now[world.vms["ci-app-01"]["instance_uuid"]]["runtime.powerState"] == "poweredOff"
    assert world.cli("rollback", "--journal", ran["journal"], "--json").code == 0
