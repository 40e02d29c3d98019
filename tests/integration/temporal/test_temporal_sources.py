"""Two on-prem vCenters on Temporal (`lab up --sources 2 --temporal`): each VM's disk copies run on its own
source's data queue, by the worker placed next to that vCenter; the target check is the local engine's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.vcenter.connection import connect
from adapters.vcenter.settings import vcenter_settings
from migrate.config import load_site_config
from migrate.lab.manager import LabInfo, lab_down, lab_up
from tests.integration.migration.conftest import assert_targets_match_sources, estate, plan_lab, vms_by_uuid
from tests.integration.temporal.conftest import Workers, migrate
from tests.integration.temporal.test_temporal_lab import _phases_run

pytestmark = pytest.mark.lab
QUEUES = {"onprem": "migrate-onprem", "onprem2": "migrate-onprem2"}


@pytest.fixture(scope="module")
def slab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("temporal-sources")
    info = lab_up(directory, vms=10, seed=4, temporal=True, sources=2)
    try:
        yield info
    finally:
        lab_down(directory)


def test_each_sources_copies_run_next_to_it(slab: LabInfo, tmp_path: Path) -> None:
    site = load_site_config(slab.site_config)
    assert site.engine is not None and site.engine.data_task_queues == {"onprem2": QUEUES["onprem2"]}
    plan = plan_lab(slab, tmp_path, max_vms=10)
    before: dict[str, list[dict[str, Any]]] = {}
    for name, section in site.source_sections.items():
        with connect(vcenter_settings(section, name)) as vc:
            before.update(vms_by_uuid(vc))
    workers = Workers()
    try:
        workers.start(slab.site_config, "--task-queue", "migrate", log=tmp_path / "worker-control.log")
        for name, queue in QUEUES.items():
            workers.start(slab.site_config, "--task-queue", queue, log=tmp_path / f"worker-{name}.log")
        result = migrate("run", plan, "--config", slab.site_config, "--engine", "temporal", "--json", cwd=tmp_path)
    finally:
        workers.stop_all()
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads(result.stdout)
    assert data["status"] == "completed", data
    assert_targets_match_sources(slab, before)
    copies: set[str] = set()
    for vm in estate(slab)["vms"]:
        for phase, queue, identity in _phases_run(site.engine.address, data["run_id"], [vm["instance_uuid"]]):
            assert queue == (QUEUES[vm["source"]] if phase == "copy_disks" else "migrate"), (vm["name"], phase)
            assert identity.endswith("@" + queue), (phase, identity)
            if phase == "copy_disks":
                copies.add(queue)
    assert copies == set(QUEUES.values())
