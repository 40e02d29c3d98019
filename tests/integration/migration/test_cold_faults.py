"""Faults on the lab: a vCenter task error fails that VM alone (the wave policy decides the rest), a dropped
connection in the middle of a disk copy is retried; bad input changes nothing.

The rollback against an unreachable target runs through the API with one try per step: each try already waits
out the login deadline (~30 s of refused connections), and the default policy (all the CLI has) tries each of
the two target steps twice (~110 s in all)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.config import load_site_config
from migrate.engine.journal import Journal
from migrate.engine.run_state import RunSettings
from migrate.engine.timing import RetryPolicy
from migrate.lab.manager import LabInfo
from migrate.run import rollback_run
from tests.helpers import run_cli
from tests.integration.conftest import site_copy
from tests.integration.migration.conftest import (
    block_the_mark,
    estate,
    migrate_cli,
    plan_lab,
    sessions,
    start_lab,
    vms_by_uuid,
)
from tests.integration.relay import Relay


@pytest.fixture(scope="module")
def flab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "cold-faults", 10, 5)


@pytest.fixture(scope="module")
def planned(flab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("faults")
    plan = plan_lab(flab, work, max_vms=6)
    waves = yaml.safe_load(plan.read_text())["waves"]
    names = {vm["instance_uuid"]: vm["name"] for vm in estate(flab)["vms"]}
    victim = next(uuid for uuid in waves[0]["vms"]   # not in a vApp: block_the_mark creates a VM in its folder
                  if any(v["instance_uuid"] == uuid and len(v["disks"]) == 1 and not v.get("vapp")
                         for v in estate(flab)["vms"]))
    datastore = next(v["disks"][0]["datastore"] for v in estate(flab)["vms"] if v["instance_uuid"] == victim)
    return {"work": work, "plan": plan, "waves": waves, "names": names, "victim": victim, "datastore": datastore}


def _status(journal: Path) -> dict[str, Any]:
    result = run_cli("status", "--journal", journal, "--json")
    assert result.code == 0, result
    data: dict[str, Any] = result.json()
    return data


def test_bad_input_is_refused_before_any_change(flab: LabInfo, planned: dict[str, Any], tmp_path: Path) -> None:
    doc = yaml.safe_load(planned["plan"].read_text())
    doc["waves"][0]["vms"].append("no-such-vm")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump(doc))
    site = yaml.safe_load(flab.site_config.read_text())
    del site["mappings"]["networks"]["pg-web"]
    for key in ("password_file",):
        for role in ("source", "target"):
            site[role][key] = str(flab.directory / site[role][key])
    site["source"]["tls"]["ca_file"] = site["target"]["tls"]["ca_file"] = str(flab.directory / "tls" / "ca.pem")
    site["replatformer"]["credentials_file"] = str(flab.directory / "secrets" / "aws-credentials")
    site["replatformer"]["ca_bundle"] = str(flab.directory / "tls" / "ca.pem")
    unmapped = tmp_path / "site.yaml"
    unmapped.write_text(yaml.safe_dump(site))
    playbook = tmp_path / "bad-playbook.yaml"
    playbook.write_text("version: 1\nname: cold\nmethod: cold\nphases: [precheck, teleport]\n")
    journal = tmp_path / "bad.db"
    cases = [
        (run_cli("run", unknown, "--config", flab.site_config, "--journal", journal), "no-such-vm"),
        (run_cli("run", planned["plan"], "--config", unmapped, "--journal", journal), "mappings.networks.pg-web"),
        (run_cli("run", planned["plan"], "--config", flab.site_config, "--journal", journal, "--playbook", playbook),
         "teleport"),
        (run_cli("run", planned["plan"], "--config", flab.site_config, "--journal", journal, "--waves", "9"),
         "no wave 9"),
    ]
    for result, needle in cases:
        assert result.code == 2, result
        assert needle in result.stderr, result
        assert "Traceback" not in result.output
    assert not journal.exists()
    _, target = sessions(flab)
    try:
        assert vms_by_uuid(target) == {}
    finally:
        target.close()


def test_task_error_fails_the_vm_alone_and_policy_stop_stops_the_run(flab: LabInfo, planned: dict[str, Any]) -> None:
    victim = planned["victim"]
    block_the_mark(flab, planned["names"][victim], victim, planned["datastore"])
    journal = planned["work"] / "stop.db"
    result = migrate_cli(flab, "run", planned["plan"], "--journal", journal, "--policy", "stop", "--json")
    assert result.code == 1, result
    status = _status(journal)
    by_id = {vm["id"]: vm for vm in status["vms"]}
    assert by_id[victim]["state"] == "failed"
    assert by_id[victim]["phase"] == "mark_source_migrated"
    assert "InvalidArgument" in by_id[victim]["error"]["message"]
    assert status["waves"][0]["state"] == "failed"
    assert status["waves"][1]["state"] == "pending"
    _, target = sessions(flab)
    try:
        on_target = set(vms_by_uuid(target))
    finally:
        target.close()
    assert not on_target & set(planned["waves"][1]["vms"])  # the stopped run never started wave 2
    back = migrate_cli(flab, "rollback", "--journal", journal, "--wave", "1", "--json")
    assert back.code == 0, back
    _, target = sessions(flab)
    try:
        assert vms_by_uuid(target) == {}
    finally:
        target.close()


def test_dropped_connection_mid_copy_is_retried_and_policy_continue_goes_on(
        flab: LabInfo, planned: dict[str, Any], tmp_path: Path) -> None:
    source_url = yaml.safe_load(flab.site_config.read_text())["source"]["url"]
    port = int(source_url.split(":")[2].split("/")[0])
    block_the_mark(flab, planned["names"][planned["victim"]], planned["victim"], planned["datastore"])
    proxy = Relay(("127.0.0.1", port), drop_after_bytes=3 * 2**20)
    try:
        site = site_copy(flab, tmp_path, url=f"https://127.0.0.1:{proxy.port}/sdk")
        journal = planned["work"] / "continue.db"
        result = run_cli("run", planned["plan"], "--config", site, "--journal", journal, "--json")
    finally:
        proxy.close()
    assert proxy.drops == 1
    assert result.code == 1, result  # the victim still cannot be marked
    data = result.json()
    assert data["status"] == "partial"
    assert list(data["failed"]) == [planned["victim"]]
    assert data["vms"] == {"completed": len(planned["names"]) - 1, "failed": 1}
    # the drop is absorbed where it happened: the call or the one file's copy is tried again (and logged)
    retries = [json.loads(line) for line in result.stderr.splitlines() if '"retrying"' in line]
    assert retries, "the dropped connection was not retried"
    with Journal(journal, create=False) as jr:
        failed = [e for e in jr.history(data["run_id"], "vm", steps_only=True) if e.event == "step_failed"
                  and e.entity_id != planned["victim"] and not (e.error or {}).get("retryable")]
    assert not failed, failed


def test_rollback_with_the_target_unreachable_leaves_cleanup_pending_then_finishes(
        flab: LabInfo, planned: dict[str, Any], tmp_path: Path) -> None:
    """Two VMs: the first finds the target unreachable (its login deadline once), the second's target steps are
    left pending untried; both sources are renamed back at once and stay off; a later rollback finishes both."""
    journal = planned["work"] / "continue.db"
    status = _status(journal)
    powered_on = {e["instance_uuid"] for e in estate(flab)["vms"] if e["powered_on"]}
    vms = [v for v in status["vms"] if v["state"] == "completed" and v["id"] in powered_on][:2]
    assert len(vms) == 2
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    site = site_copy(flab, tmp_path)
    doc = yaml.safe_load(site.read_text())
    doc["target"]["url"] = f"https://127.0.0.1:{port}/sdk"
    unreachable = tmp_path / "unreachable.yaml"
    unreachable.write_text(yaml.safe_dump(doc))

    first = rollback_run(load_site_config(unreachable), journal, vms=[vm["id"] for vm in vms],
                         settings=RunSettings(retry=RetryPolicy(attempts=1)))
    assert first.ok, first.to_dict()   # `migrate rollback` exits 0
    assert first.pending_cleanup == {vm["id"]: ["remove_target", "remove_copies", "restore_source_power"]
                                     for vm in vms}
    with Journal(journal) as jr:
        tried = [{s.step for s in jr.steps(status["run_id"], "vm", vm["id"])} for vm in vms]
    # the first VM rolled back tried the target once; the other's target steps were left untried
    assert sorted("rollback:remove_target" in steps for steps in tried) == [False, True]
    assert not any("rollback:remove_copies" in steps for steps in tried)
    source, target = sessions(flab)
    try:
        for vm in vms:
            src = vms_by_uuid(source)[vm["id"]][0]
            assert (src["name"], src["runtime.powerState"]) == (vm["name"], "poweredOff")  # renamed back, kept off
            assert vm["id"] in vms_by_uuid(target)  # the target copy is still there
    finally:
        source.close()
        target.close()
    after = {v["id"]: v for v in _status(journal)["vms"]}
    assert all(after[vm["id"]]["state"] == "rolled_back" and after[vm["id"]]["pending_cleanup"] for vm in vms), after

    names = [arg for vm in vms for arg in ("--vm", vm["name"])]
    second = run_cli("rollback", "--config", site, "--journal", journal, *names, "--json")
    assert second.code == 0, second
    assert second.json()["pending_cleanup"] == {}
    source, target = sessions(flab)
    try:
        for vm in vms:
            assert vms_by_uuid(source)[vm["id"]][0]["runtime.powerState"] == "poweredOn"
            assert vm["id"] not in vms_by_uuid(target)
    finally:
        source.close()
        target.close()
    assert all(v["pending_cleanup"] == [] for v in _status(journal)["vms"] if v["id"] in {vm["id"] for vm in vms})
