"""End to end on the lab with the Temporal engine: `lab up --temporal`, two `migrate worker` processes and
`migrate run --engine temporal` move the seeded estate; the target check is the local engine's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.config import load_site_config
from migrate.core.config import EngineConfig
from migrate.lab.manager import LabInfo, lab_down, lab_up
from migrate.temporal.client import connect
from migrate.temporal.workflows import vm_workflow_id
from tests.integration.migration.conftest import (
    assert_targets_match_sources,
    estate,
    plan_lab,
    sessions,
    vms_by_uuid,
)
from tests.integration.temporal.conftest import Workers, migrate

pytestmark = pytest.mark.lab
VMS = 12


@pytest.fixture(scope="module")
def tlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("temporal-lab")
    info = lab_up(directory, vms=VMS, seed=21, temporal=True)
    try:
        yield info
    finally:
        lab_down(directory)


@pytest.fixture(scope="module")
def moved(tlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("temporal-run")
    plan = plan_lab(tlab, work, max_vms=5)
    source, target = sessions(tlab)
    before = vms_by_uuid(source)
    source.close()
    target.close()
    workers = Workers()
    try:
        # one worker for the control queue, one for the on-prem site's data queue (as a team deploys them)
        workers.start(tlab.site_config, "--task-queue", "migrate", log=work / "worker-control.log")
        workers.start(tlab.site_config, "--task-queue", "migrate-onprem", log=work / "worker-onprem.log")
        result = migrate("run", plan, "--config", tlab.site_config, "--engine", "temporal", "--json", cwd=work)
        yield {"work": work, "plan": plan, "before": before, "result": result}
    finally:
        workers.stop_all()


def test_run_on_two_workers_completes_every_vm(moved: dict[str, Any]) -> None:
    """The run ends completed with every seeded VM completed."""
    result = moved["result"]
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads(result.stdout)
    assert data["status"] == "completed" and data["vms"] == {"completed": VMS}, data
    assert data["engine"] == "temporal" and data["workflow_id"] == f"migrate-run-{data['run_id']}"


def test_target_check_is_the_local_engines(moved: dict[str, Any], tlab: LabInfo) -> None:
    """Every VM once on the target with its hardware, networks, MACs, power state and every disk's sha256."""
    assert_targets_match_sources(tlab, moved["before"])


def _phases_run(address: str, run_id: str, vm_ids: list[str]) -> list[tuple[str, str, str]]:
    """(phase, task queue, worker identity) of every phase the VMs' workflows ran as activities (a group of
    phases is one activity), from their history."""

    async def read() -> list[tuple[str, str, str]]:
        client = await connect(EngineConfig(address=address))   # the engine's own converter (zlib)
        found = []
        for vm_id in vm_ids:
            scheduled: dict[int, tuple[str, str]] = {}
            async for event in client.get_workflow_handle(vm_workflow_id(run_id, vm_id)).fetch_history_events():
                if event.HasField("activity_task_scheduled_event_attributes"):
                    attrs = event.activity_task_scheduled_event_attributes
                    task = (await client.data_converter.decode(attrs.input.payloads))[0]
                    scheduled[event.event_id] = (",".join(task.get("phases") or ["hook"]), attrs.task_queue.name)
                elif event.HasField("activity_task_started_event_attributes"):
                    attrs = event.activity_task_started_event_attributes
                    phases, queue = scheduled[attrs.scheduled_event_id]
                    found += [(phase, queue, attrs.identity) for phase in phases.split(",")]
        return found

    return asyncio.run(read())


def test_disk_copies_run_on_the_source_sites_queue(moved: dict[str, Any], tlab: LabInfo) -> None:
    """copy_disks goes to the data queue (its worker near the source), every other phase to the control queue."""
    run_id = json.loads(moved["result"].stdout)["run_id"]
    site = load_site_config(tlab.site_config)
    assert site.engine is not None
    ran = _phases_run(site.engine.address, run_id, [vm["instance_uuid"] for vm in estate(tlab)["vms"]])
    assert {phase for phase, _, _ in ran} >= {"copy_disks", "create_target_vm", "verify"}
    for phase, queue, identity in ran:
        assert queue == ("migrate-onprem" if phase == "copy_disks" else "migrate"), (phase, queue)
        assert identity.endswith("@" + queue), (phase, identity)


def test_status_reads_the_run_from_its_workflows(moved: dict[str, Any], tlab: LabInfo) -> None:
    """`migrate status --engine temporal` gives the local status model: waves, VMs, targets."""
    run_id = json.loads(moved["result"].stdout)["run_id"]
    shown = migrate("status", "--engine", "temporal", "--config", tlab.site_config, "--run-id", run_id, "--json",
                    cwd=Path(moved["work"]))
    assert shown.returncode == 0, shown.stderr[-3000:]
    data = json.loads(shown.stdout)
    assert data["run_id"] == run_id and data["status"] == "completed"
    assert [w["state"] for w in data["waves"]] == ["completed"] * len(data["waves"])
    assert sum(sum(w["vms"].values()) for w in data["waves"]) == VMS
    assert {vm["state"] for vm in data["vms"]} == {"completed"}
    assert len({vm["target_id"] for vm in data["vms"]}) == VMS and all(vm["target_id"] for vm in data["vms"])


def test_report_reads_the_temporal_run(moved: dict[str, Any], tlab: LabInfo) -> None:
    """`migrate report --engine temporal` reports the run as it reports a local one."""
    run_id = json.loads(moved["result"].stdout)["run_id"]
    out = Path(moved["work"]) / "report.json"
    made = migrate("report", "--plan", moved["plan"], "--engine", "temporal", "--config", tlab.site_config,
                   "--run-id", run_id, "--out", out, cwd=Path(moved["work"]))
    assert made.returncode == 0, made.stderr[-3000:]
    run = json.loads(out.read_text())["summary"]["run"]
    assert (run["run_id"], run["status"], run["states"]) == (run_id, "completed", {"completed": VMS})


def test_rollback_of_the_temporal_run_restores_every_source(moved: dict[str, Any], tlab: LabInfo) -> None:
    """`migrate rollback --engine temporal` copies the ended run into a journal and rolls it back from there:
    no target VM left, every source back under its name; a second rollback finds nothing to do."""
    run_id = json.loads(moved["result"].stdout)["run_id"]
    journal = Path(moved["work"]) / "rollback.db"
    for attempt in range(2):
        undone = migrate("rollback", "--engine", "temporal", "--config", tlab.site_config, "--run-id", run_id,
                         "--journal", journal, "--json", cwd=Path(moved["work"]))
        assert undone.returncode == 0, (attempt, undone.stderr[-3000:])
        assert len(json.loads(undone.stdout)["rolled_back"]) == VMS, attempt
    source, target = sessions(tlab)
    try:
        seeded = {vm["instance_uuid"]: vm["name"] for vm in estate(tlab)["vms"]}
        assert not set(seeded) & set(vms_by_uuid(target))
        names = {uuid: found[0]["name"] for uuid, found in vms_by_uuid(source).items()}
        assert all(names[uuid] == name for uuid, name in seeded.items())
    finally:
        source.close()
        target.close()
