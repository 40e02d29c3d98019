"""`migrate run` grows the cloud cluster before a wave that does not fit: EC2 hosts allocated (moto), added
to Cluster-1 (vcsim), as many as the capacity plan says, before that wave's cutover.

The provisioner-error test runs through the API with one immediate retry: the lab's AWS endpoint answers the EVS
request with HTTP 500, a transient fault the default policy (all the CLI has) retries 8 times over ~70 s."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from adapters.aws.session import aws_client
from adapters.aws.settings import aws_settings
from adapters.vcenter.collector import read_view
from migrate.capacity import open_capacity
from migrate.config import load_site_config
from migrate.engine.capacity_plan import CapacitySettings, plan_capacity, resolve_host_type, vm_sizes_from_facts
from migrate.engine.journal import Journal
from migrate.engine.run_state import RunSettings
from migrate.engine.timing import RetryPolicy
from migrate.lab.manager import LabInfo
from migrate.run import load_run_plan, start_run
from tests.helpers import run_cli
from tests.integration.conftest import site_copy
from tests.integration.migration.conftest import plan_lab, sessions, start_lab, vms_by_uuid

LAB_HOSTS = 3


@pytest.fixture(scope="module")
def klab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "capacity-run", 12, 4)


def _site_with(klab: LabInfo, tmp_path: Path, capacity: dict[str, Any]) -> Path:
    path = site_copy(klab, tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["capacity"] = capacity
    path.write_text(yaml.safe_dump(doc))
    return path


def test_unknown_host_type_is_bad_input_before_any_change(klab: LabInfo, tmp_path: Path) -> None:
    plan_path = plan_lab(klab, tmp_path, max_vms=6)
    site_path = _site_with(klab, tmp_path, {"host_type": "i9z.metal"})
    result = run_cli("run", plan_path, "--config", site_path, "--journal", tmp_path / "run.db")
    assert result.code == 2, result
    assert "capacity.host_type" in result.stderr and "i9z.metal" in result.stderr
    assert not (tmp_path / "run.db").exists()


def test_provisioner_error_fails_the_wave_before_any_vm_is_touched(klab: LabInfo, tmp_path: Path) -> None:
    plan_path = plan_lab(klab, tmp_path, max_vms=6)
    # EVS through the lab's AWS endpoint, which has no EVS service: the host request fails at the provider.
    site_path = _site_with(klab, tmp_path, {"provisioner": "evs", "evs_environment_id": "env-0123456789",
                                            "evs_key_name": "lab-key"})
    plan, site = load_run_plan(plan_path, site_path)
    settings = RunSettings(retry=RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0))
    result = start_run(plan, site, tmp_path / "run.db", settings=settings)
    assert result.status == "failed", result   # `migrate run` exits 1
    status = run_cli("status", "--journal", tmp_path / "run.db", "--json").json()
    assert status["waves"][0]["state"] == "failed"
    assert {vm["state"] for vm in status["vms"] if vm["wave"] == status["waves"][0]["id"]} == {"skipped"}
    with Journal(tmp_path / "run.db", create=False) as jr:
        step = next(s for s in jr.steps(status["run_id"], "wave") if s.step == "ensure_capacity")
        tries = [e for e in jr.history(status["run_id"], "wave", steps_only=True)
                 if e.step == "ensure_capacity" and e.event == "step_failed"]
    assert step.status == "failed" and step.error and "evs" in step.error["message"].lower()
    assert len(tries) == 2, tries   # retried (the endpoint's 500 is transient), then failed
    source, target = sessions(klab)
    try:
        assert not vms_by_uuid(target)
        assert all(not vms[0]["name"].endswith("(migrated)") for vms in vms_by_uuid(source).values())
        assert len(list(read_view(target.si, vim.HostSystem, ["name"]))) == LAB_HOSTS
    finally:
        source.close()
        target.close()


def test_second_wave_gets_the_hosts_the_capacity_plan_says(klab: LabInfo, tmp_path: Path) -> None:
    plan_path = plan_lab(klab, tmp_path, max_vms=6)
    plan, _ = load_run_plan(plan_path, klab.site_config)
    assert len(plan.waves) >= 2
    vcpus = [sum(int(plan.vm_index[v].facts["cpus"]) for v in w.vms) for w in plan.waves]
    # No spare host and a CPU ratio under which the lab's 3 hosts hold wave 1 but not waves 1 + 2.
    ratio = (vcpus[0] + (vcpus[0] + vcpus[1])) / 2 / (LAB_HOSTS * 64)
    site_path = site_copy(klab, tmp_path)
    doc = yaml.safe_load(site_path.read_text())
    doc["capacity"] = {"spare_hosts": 0, "min_hosts": 3, "vcpu_per_core": ratio}
    site_path.write_text(yaml.safe_dump(doc))
    site = load_site_config(site_path)

    waves = [(str(w.id), vm_sizes_from_facts(plan.vm_index[v] for v in w.vms)) for w in plan.waves]
    settings = CapacitySettings.from_config(site.capacity)
    with closing(open_capacity(site)) as ports:
        host = resolve_host_type(ports.provisioner, settings.host_type)
        expected = [p.hosts_to_add for p in plan_capacity(ports.cluster, waves, settings, host).plans]
    assert expected[0] == 0 and expected[1] >= 1, expected

    dry = run_cli("run", plan_path, "--config", site_path, "--dry-run", "--json")  # the same numbers, no change
    assert dry.code == 0, dry
    assert [a["outputs"]["hosts_to_add"] for a in dry.json() if a["action"] == "wave_step"] == expected

    journal = tmp_path / "run.db"
    result = run_cli("run", plan_path, "--config", site_path, "--journal", journal, "--json")
    assert result.code == 0, result
    run_id = result.json()["run_id"]

    ec2 = aws_client(aws_settings(site.replatformer), "ec2")  # type: ignore[arg-type]
    ours = [h for h in ec2.describe_hosts()["Hosts"] if h.get("State") != "released"
            and {"Key": "migrate:plan", "Value": run_id} in h.get("Tags", [])]
    assert len(ours) == sum(expected)
    _, target = sessions(klab)
    try:
        cluster_hosts = [p["name"] for _, p in read_view(target.si, vim.HostSystem, ["name"])]
    finally:
        target.close()
    assert len(cluster_hosts) == LAB_HOSTS + sum(expected)
    assert {f"{h['HostId']}.sddc.internal" for h in ours} <= set(cluster_hosts)

    with Journal(journal, create=False) as jr:
        steps = {s.entity_id: s.outputs for s in jr.steps(run_id, "wave") if s.step == "ensure_capacity"}
        history = jr.history(run_id)
    assert [steps[str(w.id)]["hosts_to_add"] for w in plan.waves] == expected
    second = plan.waves[1]
    added_at = next(e.id for e in history if e.kind == "wave" and e.entity_id == str(second.id)
                    and e.step == "ensure_capacity" and e.event == "step_finished")
    first_cutover = min(e.id for e in history if e.kind == "vm" and e.entity_id in second.vms
                        and e.trigger == "start_cutover")
    assert added_at < first_cutover

    back = run_cli("rollback", "--config", site_path, "--journal", journal, "--json")
    assert back.code == 0, back
    assert sorted(back.json()["hosts_released"]) == sorted(h["HostId"] for h in ours)
    assert not [h for h in ec2.describe_hosts()["Hosts"] if h["HostId"] in {o["HostId"] for o in ours}
                and h.get("State") != "released"]
    _, target = sessions(klab)
    try:
        assert len(list(read_view(target.si, vim.HostSystem, ["name"]))) == LAB_HOSTS
    finally:
        target.close()
