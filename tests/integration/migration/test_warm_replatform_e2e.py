"""Warm re-platform on the lab: a wave replicates into EBS while `lab churn` writes to its running VMs, a test
instance is launched and removed, then the wave cuts over to EC2.

After the cutover the last snapshot of every disk, read back block by block through the EBS direct APIs, equals
the source disk at power-off (sha256); each later cycle was a child snapshot holding only changed blocks; every
VM runs as one instance in its production subnet; no snapshot of ours is left on the source.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws.cleanup import list_leftovers
from adapters.aws.common import TAG_SOURCE, TAG_TEST, AwsClients, make_clients
from adapters.aws.ebs_blocks import BLOCK_SIZE
from adapters.aws.ebs_verify import iter_snapshot_blocks
from adapters.aws.settings import aws_settings
from adapters.lab.estate import ONPREM
from adapters.vcenter.datastore_http import DatastoreFiles, split_datastore_path
from migrate.config import load_site_config
from migrate.engine.journal import Journal
from migrate.lab.churn import churn
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.migration.conftest import disk_files, estate, plan_lab, sessions, vms_by_uuid
from tests.integration.migration.test_warm_e2e import snapshots_of, status, wait_for_cycles

pytestmark = pytest.mark.lab
CYCLES_BEFORE_CUTOVER = 3


@pytest.fixture(scope="module")
def rwlab(warm_lab: LabInfo) -> LabInfo:
    return warm_lab   # after test_warm_e2e rolled its wave back


@pytest.fixture(scope="module")
def clients(rwlab: LabInfo) -> AwsClients:
    settings = aws_settings(load_site_config(rwlab.site_config).replatformer)
    assert settings is not None
    return make_clients(settings)


def steps(journal: Path, step: str) -> dict[str, dict[str, Any]]:
    """The finished outputs of `step` per VM id."""
    with Journal(journal, create=False, read_only=True) as jr:
        run_id = jr.runs()[-1].run_id
        return {s.entity_id: s.outputs for s in jr.steps(run_id, "vm") if s.step == step and s.status == "finished"}


def snapshot_sha256(clients: AwsClients, snapshot_id: str, size: int) -> str:
    """sha256 of the disk image an EBS snapshot holds (unwritten blocks read as zeros), cut to `size` bytes."""
    blocks = dict(iter_snapshot_blocks(clients.ebs, snapshot_id))
    digest = hashlib.sha256()
    for index in range(-(-size // BLOCK_SIZE)):
        data = blocks.get(index, bytes(BLOCK_SIZE))
        digest.update(data[:size - index * BLOCK_SIZE])
    return digest.hexdigest()


@pytest.fixture(scope="module")
def run(rwlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("warm-replatform-run")
    plan = plan_lab(rwlab, work, max_vms=4)
    doc = yaml.safe_load(plan.read_text())
    wave = doc["waves"][0]
    wave.update(method="warm_replatform", precopy_interval=1.0)
    plan.write_text(yaml.safe_dump(doc, sort_keys=False))
    journal = work / "run.db"
    names = set(wave.get("vm_names") or [])
    running = [vm["name"] for vm in estate(rwlab)["vms"] if vm["name"] in names and vm["powered_on"]]
    assert running, "the first wave has no running VM to replicate"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config", str(rwlab.site_config),
                             "--inventory", str(work / "inventory.json"), "--waves", str(wave["id"]),
                             "--journal", str(journal), "--json", "--per-host", "8", "--per-datastore", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    written: dict[str, Any] = {}

    def write() -> None:
        written["result"] = churn(rwlab.directory, vms=running, mib_per_s=2.0, seconds=600, seed=7, stop=stop)

    churner = threading.Thread(target=write, daemon=True)
    churner.start()
    try:
        replicating = wait_for_cycles(journal, proc, CYCLES_BEFORE_CUTOVER)
        tested = run_cli("test", "--journal", journal, "--vm", running[0], "--wait", "120", "--json")
        cleaned = run_cli("test", "--journal", journal, "--vm", running[0], "--cleanup", "--wait", "120", "--json")
        asked = run_cli("cutover", "--journal", journal, "--wave", str(wave["id"]), "--json")
        out, err = proc.communicate(timeout=300)
    finally:
        stop.set()
        churner.join(timeout=60)
    uuids = {vm["instance_uuid"] for vm in estate(rwlab)["vms"] if vm["name"] in names}
    return {"plan": plan, "wave": wave, "journal": journal, "running": running, "replicating": replicating,
            "tested": tested, "cleaned": cleaned, "asked": asked, "code": proc.returncode, "out": out, "err": err,
            "written": written.get("result"), "names": names, "uuids": uuids}


def test_replicates_into_ebs_while_running_then_cuts_over(run: dict[str, Any]) -> None:
    assert run["asked"].code == 0, run["asked"]
    assert run["code"] == 0, (run["out"], run["err"][-3000:])
    assert json.loads(run["out"])["status"] == "completed"
    churned = run["written"]
    assert churned is not None and churned.bytes > 0
    assert set(churned.stopped) == set(run["running"])   # every guest wrote until its shutdown
    assert {vm["state"] for vm in run["replicating"]["vms"]} == {"replicating"}


def assert_final_snapshots_equal_sources(lab: LabInfo, clients: AwsClients, journal: Path, uuids: set[str]) -> None:
    """Every disk's final EBS snapshot, read back block by block, has the sha256 of its source disk (off now);
    at least one disk changed since it was seeded (else equality proves nothing)."""
    final = steps(journal, "final_sync")
    verified = steps(journal, "verify_disks")
    assert uuids <= set(final) and uuids <= set(verified)
    source, target = sessions(lab)
    target.close()
    files = DatastoreFiles(source)
    try:
        on_source = vms_by_uuid(source)
        seeded = {d["sha256"] for vm in estate(lab)["vms"] for d in vm["disks"]}
        changed = 0
        for uuid in uuids:
            paths = sorted(disk_files(on_source[uuid][0]), key=lambda p: p.rsplit("/", 1)[-1])
            snapshots = final[uuid]["disks"]
            assert len(paths) == len(snapshots)
            for path, disk in zip(paths, snapshots, strict=True):
                size = files.size(ONPREM.datacenter, *split_datastore_path(path))
                assert size
                digest = hashlib.sha256()
                for chunk in files.download(ONPREM.datacenter, *split_datastore_path(path)):
                    digest.update(chunk)
                assert snapshot_sha256(clients, disk["snapshot_id"], size) == digest.hexdigest(), (uuid, path)
                changed += digest.hexdigest() not in seeded
        assert changed, "churn changed no disk: the test proves nothing"
    finally:
        files.close()
        source.close()


def test_the_final_snapshot_equals_the_source_at_power_off(run: dict[str, Any], rwlab: LabInfo,
                                                           clients: AwsClients) -> None:
    assert_final_snapshots_equal_sources(rwlab, clients, run["journal"], run["uuids"])


def test_later_cycles_are_child_snapshots_of_the_changed_blocks(run: dict[str, Any]) -> None:
    with Journal(run["journal"], create=False, read_only=True) as jr:
        run_id = jr.runs()[-1].run_id
        for uuid in run["uuids"]:
            cycles = jr.cycles(run_id, uuid)
            assert len(cycles) >= CYCLES_BEFORE_CUTOVER + 1 and cycles[-1].data["final"]
            parents: dict[str, str | None] = {}
            for cycle in cycles:
                replicas = cycle.data["replicas"]
                for key, replica in replicas.items():
                    assert replica["parent_id"] == parents.get(key), (cycle.cycle, replica)   # a line of children
                    parents[key] = replica["snapshot_id"]
                if cycle.cycle:   # a child holds the blocks the changed areas touch, zero or not, and no more
                    put = sum(r["blocks_sent"] + r["blocks_resumed"] for r in replicas.values())
                    assert put == cycle.data["ranges"], cycle.data
            assert cycles[0].data["bytes"] > 0


def test_one_instance_per_vm_in_its_subnet_and_only_the_final_snapshots_kept(run: dict[str, Any], rwlab: LabInfo,
                                                                             clients: AwsClients) -> None:
    site = yaml.safe_load(rwlab.site_config.read_text())
    production = {m["subnet_id"] for m in site["replatformer"]["networks"].values()}
    final = steps(run["journal"], "final_sync")
    launched = steps(run["journal"], "launch_instance")
    for uuid in run["uuids"]:
        left = list_leftovers(clients.ec2, {TAG_SOURCE: uuid})
        assert left.instances == [launched[uuid]["instance_id"]], left
        instance = clients.ec2.describe_instances(InstanceIds=left.instances)["Reservations"][0]["Instances"][0]
        assert instance["State"]["Name"] == "running" and instance["SubnetId"] in production
        assert sorted(left.snapshots) == sorted(d["snapshot_id"] for d in final[uuid]["disks"])   # older cycles pruned
    assert not any(n.startswith("migrate-warm") for names in snapshots_of(rwlab).values() for n in names)
    for vm in status(run["journal"])["vms"]:   # measured for the VMs that ran (an off one has no downtime)
        downtime = vm["replication"]["downtime_s"]
        assert (downtime is not None and downtime >= 0) == (vm["name"] in run["running"]), vm


def test_a_test_instance_runs_in_the_test_subnet_and_cleanup_removes_it(run: dict[str, Any], rwlab: LabInfo,
                                                                       clients: AwsClients) -> None:
    tested, cleaned = run["tested"], run["cleaned"]
    assert tested.code == 0, tested
    (outcome,) = tested.json()["outcomes"].values()
    assert outcome["ok"] and outcome["power_state"] == "running", outcome
    site = yaml.safe_load(rwlab.site_config.read_text())
    test_subnets = {m["subnet_id"] for m in site["replatformer"]["test_networks"].values()}
    found = clients.ec2.describe_instances(InstanceIds=[outcome["test_vm"]])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in found["Tags"]}
    assert found["SubnetId"] in test_subnets and tags[TAG_TEST] == "true"
    assert cleaned.code == 0, cleaned
    (removed,) = cleaned.json()["outcomes"].values()
    assert found["InstanceId"] in removed["removed"] and removed["deleted"], removed
    assert found["InstanceId"] not in {v["instance_id"] for v in steps(run["journal"], "verify").values()}
    assert clients.ec2.describe_instances(InstanceIds=[found["InstanceId"]])["Reservations"][0]["Instances"][0][
        "State"]["Name"] == "terminated"


def test_rollback_leaves_nothing_in_aws_and_restores_the_sources(run: dict[str, Any], rwlab: LabInfo,
                                                                 clients: AwsClients) -> None:
    back = run_cli("rollback", "--journal", run["journal"], "--config", rwlab.site_config, "--json")
    assert back.code == 0, back
    assert sorted(back.json()["rolled_back"]) == sorted(run["uuids"])
    for uuid in run["uuids"]:
        left = list_leftovers(clients.ec2, {TAG_SOURCE: uuid})
        assert left.empty(), left.to_dict()
    source, target = sessions(rwlab)
    target.close()
    try:
        on_source = vms_by_uuid(source)
        for uuid in run["uuids"]:
            assert not on_source[uuid][0]["name"].endswith("(migrated)")
        running = {vm["instance_uuid"] for vm in estate(rwlab)["vms"] if vm["name"] in run["running"]}
        assert {u for u in running if on_source[u][0]["runtime.powerState"] == "poweredOn"} == running
    finally:
        source.close()
