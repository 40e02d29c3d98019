"""Warm migration under network faults, on the lab: a `warm` wave and a `warm_replatform` wave replicate and cut
over while a quarter of the connections to both vCenters and to AWS are reset at random (snapshots, changed-area
queries, ranged reads and writes, EBS block puts all cross them). Every VM completes (retries; at most one
`resume --retry-failed`), none twice, and every replica equals its source at power-off."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from adapters.aws.cleanup import list_leftovers
from adapters.aws.common import TAG_SOURCE, make_clients
from adapters.aws.settings import aws_settings
from migrate.config import load_site_config
from migrate.lab.churn import churn
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.chaos import ChaosProxy
from tests.integration.conftest import site_copy
from tests.integration.migration.conftest import assert_migrated_once, estate, plan_lab
from tests.integration.migration.test_warm_e2e import disks_equal, snapshots_of, status
from tests.integration.migration.test_warm_replatform_e2e import assert_final_snapshots_equal_sources, steps

pytestmark = pytest.mark.lab
SEED = int(os.environ.get("FAULT_SEED", "3"))
RATE = 0.25
LIMITS = ["--per-host", "8", "--per-datastore", "8"]


@pytest.fixture(scope="module")
def flab(warm_fault_lab: LabInfo) -> LabInfo:
    return warm_fault_lab   # after test_warm_crash rolled its waves back


def _through(url: str, proxy: ChaosProxy) -> str:
    return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{proxy.port}"))


def _upstream(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 443


def _chaos_site(lab: LabInfo, work: Path) -> tuple[Path, list[ChaosProxy]]:
    """A copy of the lab's site.yaml with source, target and the AWS endpoint behind reset-prone proxies."""
    path = site_copy(lab, work)
    doc = yaml.safe_load(path.read_text())
    proxies = []
    for index, (section, key) in enumerate((("source", "url"), ("target", "url"), ("replatformer", "endpoint_url"))):
        proxy = ChaosProxy(_upstream(doc[section][key]), reset_rate=RATE, seed=SEED * 31 + index)
        doc[section][key] = _through(doc[section][key], proxy)
        proxies.append(proxy)
    path.write_text(yaml.safe_dump(doc))
    return path, proxies


def _wait_for_cycles(journal: Path, proc: subprocess.Popen[str], uuids: set[str], cycles: int,
                     timeout: float = 300) -> None:
    """Wait until each of these VMs has done `cycles` replication cycles."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        found = run_cli("status", "--journal", journal, "--json") if journal.exists() else None
        if found is not None and found.code == 0:   # (exit 2 while the run is creating its journal)
            done = {vm["id"]: (vm.get("replication") or {}).get("cycles", 0) for vm in found.json()["vms"]}
            if all(done.get(uuid, 0) >= cycles for uuid in uuids):
                return
        time.sleep(0.5)
    raise AssertionError(f"no {cycles} cycles in {timeout} s: {status(journal)}")


@pytest.mark.timeout(1200)
def test_warm_and_warm_replatform_waves_finish_under_connection_resets(flab: LabInfo, tmp_path: Path) -> None:
    plan = plan_lab(flab, tmp_path, max_vms=3)
    doc = yaml.safe_load(plan.read_text())
    powered = {vm["name"] for vm in estate(flab)["vms"] if vm["powered_on"]}
    waves = [w for w in doc["waves"] if set(w.get("vm_names") or []) & powered][:2]
    assert len(waves) == 2, "the plan needs two waves with running VMs"
    waves[0].update(method="warm", precopy_interval=1.0)
    waves[1].update(method="warm_replatform", precopy_interval=1.0)
    plan.write_text(yaml.safe_dump(doc, sort_keys=False))
    by_method: dict[str, set[str]] = {}
    for wave in waves:
        names = set(wave.get("vm_names") or [])
        by_method[wave["method"]] = {vm["instance_uuid"] for vm in estate(flab)["vms"] if vm["name"] in names}
    running = [vm["name"] for vm in estate(flab)["vms"] if vm["name"] in powered
               and any(vm["name"] in set(w.get("vm_names") or []) for w in waves)]
    site, proxies = _chaos_site(flab, tmp_path)
    journal = tmp_path / "run.db"
    ids = ",".join(str(w["id"]) for w in waves)
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config", str(site),
                             "--inventory", str(tmp_path / "inventory.json"), "--waves", ids, "--journal",
                             str(journal), "--json", "--concurrency", "16", *LIMITS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    churner = threading.Thread(target=lambda: churn(flab.directory, vms=running, mib_per_s=1.0, seconds=900,
                                                    seed=SEED, stop=stop), daemon=True)
    churner.start()
    try:   # waves run in turn: the warm one replicates until asked; the other then copies once and cuts over
        _wait_for_cycles(journal, proc, by_method["warm"], 2)
        for wave in waves:
            assert run_cli("cutover", "--journal", journal, "--wave", str(wave["id"])).code == 0
        out, err = proc.communicate(timeout=600)
        first = yaml.safe_load(out) if out.strip() else {}
        retried: Any = None
        if first.get("status") != "completed":   # a VM whose faults outlasted its retries: retried once
            retried = run_cli("resume", "--config", site, "--journal", journal, "--retry-failed", "--json", *LIMITS,
                              timeout=600)
    finally:
        if proc.poll() is None:   # never outlive the test (its lab goes away)
            proc.kill()
            proc.wait()
        stop.set()
        churner.join(timeout=60)
        resets = sum(p.stats.resets for p in proxies)
        for proxy in proxies:
            proxy.close()
    print(f"warm fault trial: seed {SEED}, rate {RATE}, resets {resets}, first {first.get('status')}, "
          f"retried {retried.json()['status'] if retried else None}")
    assert resets > 0
    final = retried.json() if retried else first
    assert final["status"] == "completed", (final, err[-3000:])
    assert_migrated_once(flab, by_method["warm"])
    pairs = disks_equal(flab, by_method["warm"])
    assert pairs and all(src == tgt for src, tgt in pairs.values()), pairs
    settings = aws_settings(load_site_config(flab.site_config).replatformer)
    assert settings is not None
    clients = make_clients(settings)
    launched = steps(journal, "launch_instance")
    for uuid in by_method["warm_replatform"]:
        assert list_leftovers(clients.ec2, {TAG_SOURCE: uuid}).instances == [launched[uuid]["instance_id"]]
    assert_final_snapshots_equal_sources(flab, clients, journal, by_method["warm_replatform"])
    ours = {vm: n for vm, n in snapshots_of(flab).items() if any(s.startswith("migrate-warm") for s in n)}
    assert not ours, ours
