"""End to end on the lab: discover -> plan -> run moves every seeded VM to the cloud vCenter, then rollback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.vcenter.rest import RestClient, TaggingClient
from migrate.core.errors import AdapterError
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.migration.conftest import (
    assert_targets_match_sources,
    estate,
    file_sha256,
    migrate_cli,
    plan_lab,
    sessions,
    start_lab,
    vms_by_uuid,
)


@pytest.fixture(scope="module")
def mlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "cold-e2e", 40, 7)


@pytest.fixture(scope="module")
def run(mlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("cold-run")
    plan = plan_lab(mlab, work)
    source, target = sessions(mlab)
    before = vms_by_uuid(source)
    target_before = len(vms_by_uuid(target))
    source.close()
    target.close()
    journal = work / "run.db"
    dry = [migrate_cli(mlab, "run", plan, "--dry-run", "--json", "--journal", journal) for _ in range(2)]
    journal_after_dry_run = journal.exists()
    result = migrate_cli(mlab, "run", plan, "--journal", journal, "--json")
    return {"work": work, "plan": plan, "before": before, "target_before": target_before, "dry": dry,
            "journal_after_dry_run": journal_after_dry_run, "result": result, "journal": journal}


def test_dry_run_lists_actions_changes_nothing_and_is_stable(run: dict[str, Any]) -> None:
    first, second = run["dry"]
    assert first.code == 0, first
    assert first.stdout == second.stdout
    actions = first.json()
    phases = [a["phase"] for a in actions if a["action"] == "phase"]
    assert phases.count("copy_disks") == 40 and phases.count("create_target_vm") == 40
    assert not any(a.get("error") for a in actions), [a for a in actions if a.get("error")][:2]
    assert not run["journal_after_dry_run"]
    assert run["target_before"] == 0


def test_run_completes_every_vm(run: dict[str, Any]) -> None:
    result = run["result"]
    assert result.code == 0, result
    data = result.json()
    assert data["status"] == "completed"
    assert data["vms"] == {"completed": 40}


def test_target_has_the_same_hardware_networks_macs_disks_and_power(run: dict[str, Any], mlab: LabInfo) -> None:
    assert_targets_match_sources(mlab, run["before"])


def test_target_vms_are_tagged_with_their_source(run: dict[str, Any], mlab: LabInfo) -> None:
    _, target = sessions(mlab)
    rest = RestClient(target)
    try:
        tagging = TaggingClient(rest)
        category = next(c for c in tagging.categories() if c["name"] == "migrate-source")
        tags = {t["id"]: t["name"] for t in tagging.tags() if t["category_id"] == category["id"]}
        on_target = vms_by_uuid(target)
        attached = tagging.attached_tags([("VirtualMachine", vms[0]["moref"]) for vms in on_target.values()])
        for uuid, vms in on_target.items():
            assert [tags[t] for t in attached[vms[0]["moref"]] if t in tags] == [uuid]
    finally:
        rest.close()
        target.close()


def test_sources_are_marked_and_off(run: dict[str, Any], mlab: LabInfo) -> None:
    source, _ = sessions(mlab)
    try:
        for uuid, vms in vms_by_uuid(source).items():
            if uuid in run["before"] and run["before"][uuid][0]["name"] in {v["name"] for v in estate(mlab)["vms"]}:
                assert vms[0]["name"] == run["before"][uuid][0]["name"] + " (migrated)"
                assert vms[0]["runtime.powerState"] == "poweredOff"
                assert any('"note"' in str(v.value) for v in vms[0]["customValue"])
    finally:
        source.close()


def test_status_reports_every_vm_with_its_target(run: dict[str, Any], mlab: LabInfo) -> None:
    status = migrate_status(run["journal"])
    assert status["status"] == "completed"
    assert {vm["state"] for vm in status["vms"]} == {"completed"}
    assert all(vm["target_id"] for vm in status["vms"])
    assert len({vm["target_id"] for vm in status["vms"]}) == 40


def migrate_status(journal: Path) -> dict[str, Any]:
    result = run_cli("status", "--journal", journal, "--json")
    assert result.code == 0, result
    data: dict[str, Any] = result.json()
    return data


def test_a_second_run_of_the_same_plan_is_refused_by_prechecks(run: dict[str, Any], mlab: LabInfo) -> None:
    again = migrate_cli(mlab, "run", run["plan"], "--journal", run["work"] / "again.db", "--waves", "1", "--json")
    assert again.code == 1
    data = again.json()
    assert data["vms"].get("completed", 0) == 0  # names are taken on the target: nothing is created twice
    source, target = sessions(mlab)
    try:
        assert all(len(vms) == 1 for vms in vms_by_uuid(target).values())
    finally:
        source.close()
        target.close()


def test_rollback_one_vm_restores_the_source_and_removes_the_target(run: dict[str, Any], mlab: LabInfo) -> None:
    vm = max((v for v in estate(mlab)["vms"] if v["powered_on"]), key=lambda v: len(v["disks"]))
    for attempt in range(2):  # the second rollback finds nothing left to do
        result = migrate_cli(mlab, "rollback", "--journal", run["journal"], "--vm", vm["name"], "--json")
        assert result.code == 0, result
        assert result.json()["rolled_back"] == [vm["instance_uuid"]], attempt
    source, target = sessions(mlab)
    try:
        assert vm["instance_uuid"] not in vms_by_uuid(target)
        src = vms_by_uuid(source)[vm["instance_uuid"]][0]
        assert src["name"] == vm["name"]
        assert src["runtime.powerState"] == "poweredOn"
        for disk in vm["disks"]:
            with pytest.raises(AdapterError) as gone:
                file_sha256(target, "SDDC-Datacenter", f"[WorkloadDatastore] {disk['path']}")
            assert gone.value.code == "HTTP 404"
    finally:
        source.close()
        target.close()
    status = migrate_status(run["journal"])
    states = {v["id"]: v["state"] for v in status["vms"]}
    assert states[vm["instance_uuid"]] == "rolled_back"
    assert list(states.values()).count("completed") == 39
