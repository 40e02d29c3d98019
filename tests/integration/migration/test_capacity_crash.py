"""kill -9 of `migrate run` between the EC2 host allocation and AddHost, then resume: no host allocated twice,
the allocated one is added to the cluster before the wave goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from adapters.aws.session import aws_client
from adapters.aws.settings import aws_settings
from adapters.vcenter.collector import read_view
from migrate.config import load_site_config
from migrate.engine.journal import Journal
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.conftest import site_copy
from tests.integration.migration.conftest import plan_lab, sessions, start_lab
from tests.integration.relay import Relay


@pytest.fixture(scope="module")
def xlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "capacity-crash", 10, 6)


def _ours(ec2: Any, run_id: str | None) -> list[dict[str, Any]]:
    return [h for h in ec2.describe_hosts()["Hosts"] if h.get("State") != "released"
            and any(t["Key"] == "migrate:plan" and (run_id is None or t["Value"] == run_id) for t in h.get("Tags", []))]


def test_kill9_between_allocation_and_add_host(xlab: LabInfo, tmp_path: Path) -> None:
    plan = plan_lab(xlab, tmp_path, max_vms=10)
    target_url = yaml.safe_load(xlab.site_config.read_text())["target"]["url"]
    relay = Relay(("127.0.0.1", int(target_url.split(":")[2].split("/")[0])))
    site_path = site_copy(xlab, tmp_path)
    doc = yaml.safe_load(site_path.read_text())
    doc["capacity"] = {"spare_hosts": 1, "min_hosts": 3}  # the lab's 3 hosts + 1 spare: one host to add
    real = yaml.safe_dump(doc)
    doc["target"]["url"] = f"https://127.0.0.1:{relay.port}/sdk"
    relayed = tmp_path / "relayed.yaml"
    relayed.write_text(yaml.safe_dump(doc))
    site_path.write_text(real)
    site = load_site_config(site_path)
    ec2 = aws_client(aws_settings(site.replatformer), "ec2")  # type: ignore[arg-type]
    journal = tmp_path / "run.db"

    proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config", str(relayed),
                             "--journal", str(journal)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _ours(ec2, None) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        relay.hold()  # the vCenter stops answering: AddHost hangs
        time.sleep(0.5)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        relay.close()
    allocated = _ours(ec2, None)
    assert len(allocated) == 1
    _, target = sessions(xlab)
    try:
        assert len(list(read_view(target.si, vim.HostSystem, ["name"]))) == 3  # not added yet
    finally:
        target.close()
    with Journal(journal, create=False) as jr:
        run_id = jr.runs()[-1].run_id
        steps = {s.step: s.status for s in jr.steps(run_id, "wave")}
    assert steps.get("capacity_allocate") == "finished"

    resumed = run_cli("resume", "--config", site_path, "--journal", journal, "--json")
    assert resumed.code == 0, resumed
    assert resumed.json()["status"] == "completed"
    assert [h["HostId"] for h in _ours(ec2, run_id)] == [h["HostId"] for h in allocated]  # none allocated twice
    _, target = sessions(xlab)
    try:
        names = [p["name"] for _, p in read_view(target.si, vim.HostSystem, ["name"])]
    finally:
        target.close()
    assert len(names) == 4 and f"{allocated[0]['HostId']}.sddc.internal" in names
