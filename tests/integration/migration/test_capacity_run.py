"""`migrate run` grows the cloud cluster before a wave that does not fit: EC2 hosts allocated (moto), added
to Cluster-1 (vcsim), as many as the capacity plan says, before that wave's cutover."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pyVmomi import vim

from adapters.aws.session import aws_client
from adapters.vcenter.collector import read_view
from migrate.capacity import CapacitySettings, plan_capacity, vm_sizes_from_facts
from migrate.config import load_site_config
from migrate.engine.journal import Journal
from migrate.lab.manager import LabInfo
from migrate.run import load_run_plan
from tests.helpers import run_cli
from tests.integration.conftest import site_copy
from tests.integration.migration.conftest import plan_lab, sessions, start_lab

LAB_HOSTS = 3


@pytest.fixture(scope="module")
def klab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "capacity-run", 12, 4)


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
    expected = [p.hosts_to_add for p in plan_capacity(site, waves, CapacitySettings.from_site(site)).plans]
    assert expected[0] == 0 and expected[1] >= 1, expected

    dry = run_cli("run", plan_path, "--config", site_path, "--dry-run", "--json")  # the same numbers, no change
    assert dry.code == 0, dry
    assert [a["outputs"]["hosts_to_add"] for a in dry.json() if a["action"] == "wave_step"] == expected

    journal = tmp_path / "run.db"
    result = run_cli("run", plan_path, "--config", site_path, "--journal", journal, "--json")
    assert result.code == 0, result
    run_id = result.json()["run_id"]

    ec2 = aws_client(site.aws, "ec2")  # type: ignore[arg-type]
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
