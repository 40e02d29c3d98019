"""kill -9 of a warm run at random points of replication and cutover, then resume: the replicas end equal to the
sources at power-off, every VM is on the target once, and no snapshot of ours is left.

CI size: 2 kills while replicating (of the run, then of a resume) and up to 2 inside the cutover, per test. A
campaign by hand: `MIGRATE_WARM_KILLS=6` (kills in each of the two stages; 3 was the CI size before).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws.cleanup import list_leftovers
from adapters.aws.common import TAG_SOURCE, make_clients
from adapters.aws.settings import aws_settings
from migrate.config import load_site_config
from migrate.core.errors import InputError
from migrate.engine.journal import Journal
from migrate.lab.churn import churn
from migrate.lab.manager import LabInfo
from tests.helpers import CliResult, run_cli
from tests.integration.migration.conftest import assert_migrated_once, estate, migrate_cli, plan_lab
from tests.integration.migration.test_cold_crash import _has_run
from tests.integration.migration.test_warm_e2e import disks_equal, snapshots_of, warm_plan
from tests.integration.migration.test_warm_replatform_e2e import assert_final_snapshots_equal_sources, steps

KILLS = int(os.environ.get("MIGRATE_WARM_KILLS", "2"))   # kill -9s in each stage (a campaign: more)
REPLICATING_KILLS = KILLS
CUTOVER_KILLS = KILLS
# the phases of the cutover: a kill lands in one of them at a random point of its first 0.3 s
CUTOVER_PHASES = frozenset({"power_off_source", "final_sync", "create_target_vm", "tag_target", "power_on_target",
                            "verify", "mark_source_migrated"})
LIMITS = ["--per-host", "8", "--per-datastore", "8"]
REPLICATING = frozenset({"enable_change_tracking", "replicate"})   # a kill lands 0-4 s after one starts


@pytest.fixture(scope="module")
def crash_lab(warm_fault_lab: LabInfo) -> LabInfo:
    return warm_fault_lab


def _phase_started(journal: Path, since: float, phases: frozenset[str]) -> bool:
    """Whether one of `phases` started after `since` (epoch seconds); False while the journal is being created.

    Read in a forked child: a run restarting after a kill -9 rebuilds the journal's WAL index (-shm), and a
    reader polling it meanwhile can take a SIGBUS on the shrunk mapping (it killed the whole test process)."""
    child = os.fork()
    if child == 0:   # the child: exit 0 when started, 1 when not
        started = False
        try:
            if _has_run(journal):
                with Journal(journal, create=False, read_only=True) as jr:
                    run = jr.runs()[-1].run_id
                    started = any(s.step in phases and s.started_at >= since for s in jr.steps(run, "vm"))
        except InputError:   # the run is creating it right now
            pass
        finally:
            os._exit(0 if started else 1)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _kill_in(args: list[str | Path], journal: Path, rng: random.Random, log: Path, phases: frozenset[str],
             within: float = 0.3) -> bool:
    """Start the CLI and kill -9 it a random moment (0 to `within` s) after it starts one of `phases`; True if it
    was killed there, False if it ended first (those phases were done)."""
    since = time.time()
    with log.open("a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "migrate", *map(str, args)], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "MIGRATE_LOG_LEVEL": "info"})
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if _phase_started(journal, since, phases):
                time.sleep(rng.uniform(0.0, within))
                alive = proc.poll() is None
                if alive:
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return alive
            time.sleep(0.02)
        proc.wait()
    return False


def _crash_and_resume(lab: LabInfo, plan: Path, wave: dict[str, Any], work: Path, seed: int,
                      phases: frozenset[str]) -> tuple[CliResult, int, set[str], Path]:
    """Run the wave while its guests write; kill -9 it REPLICATING_KILLS times while replicating (resuming each
    time), ask for the cutover, kill -9 inside it up to CUTOVER_KILLS times, then resume to the end.
    (the last resume, kills that landed in the cutover, the wave's VM uuids, the journal)"""
    names = set(wave.get("vm_names") or [])
    vms = [vm for vm in estate(lab)["vms"] if vm["name"] in names]
    running = [vm["name"] for vm in vms if vm["powered_on"]]
    assert running, "the wave has no running VM to replicate"
    site, journal, log = lab.site_config, work / "run.db", work / "crash.log"
    start: list[str | Path] = ["run", plan, "--config", site, "--journal", journal, "--waves", str(wave["id"]), *LIMITS]
    again: list[str | Path] = ["resume", "--config", site, "--journal", journal, *LIMITS]
    rng = random.Random(seed)
    stop = threading.Event()
    churner = threading.Thread(target=lambda: churn(lab.directory, vms=running, mib_per_s=1.0, seconds=900,
                                                    seed=seed % 1000, stop=stop), daemon=True)
    churner.start()
    try:   # the guests write until they are shut down
        for _ in range(REPLICATING_KILLS):   # replicating never ends by itself: every kill lands in it
            assert _kill_in(again if _has_run(journal) else start, journal, rng, log, REPLICATING, within=4.0)
        asked = run_cli("cutover", "--journal", journal, "--wave", str(wave["id"]))
        assert asked.code == 0, asked
        in_cutover = 0
        for _ in range(CUTOVER_KILLS):   # now each kill lands in the cutover, until a resume finishes it
            if not _kill_in(again, journal, rng, log, phases):
                break
            in_cutover += 1
        final = run_cli("resume", "--config", site, "--journal", journal, "--json", *LIMITS, timeout=600)
    finally:
        stop.set()
        churner.join(timeout=60)
    assert final.code == 0, (final, log.read_text()[-3000:])
    return final, in_cutover, {vm["instance_uuid"] for vm in vms}, journal


def test_kill9_in_precopy_and_cutover_then_resume(crash_lab: LabInfo, tmp_path: Path) -> None:
    plan, wave = warm_plan(crash_lab, tmp_path, interval=1.0, max_vms=3)
    final, in_cutover, uuids, journal = _crash_and_resume(crash_lab, plan, wave, tmp_path, 20261206, CUTOVER_PHASES)
    assert final.json()["status"] == "completed"
    assert in_cutover >= 1, "no kill landed inside the cutover"
    assert_migrated_once(crash_lab, uuids)
    pairs = disks_equal(crash_lab, uuids)
    assert pairs and all(src == tgt for src, tgt in pairs.values()), pairs
    left = {vm: n for vm, n in snapshots_of(crash_lab).items() if any(s.startswith("migrate-warm") for s in n)}
    assert not left, left
    back = migrate_cli(crash_lab, "rollback", "--journal", journal, "--json")
    assert back.code == 0, back


REPLATFORM_CUTOVER = frozenset({"power_off_source", "final_sync", "register_image", "launch_instance", "wait_ready",
                                "verify_disks", "verify", "mark_source_migrated"})


def test_kill9_in_warm_replatform_precopy_and_cutover_then_resume(crash_lab: LabInfo, tmp_path: Path) -> None:
    """The same kills for a wave replicating into EBS: each disk's final snapshot equals the source at power-off,
    one instance per VM, no snapshot of ours left on the source, only the final snapshots left in EBS."""
    plan = plan_lab(crash_lab, tmp_path, max_vms=3)
    doc = yaml.safe_load(plan.read_text())
    wave = next(w for w in doc["waves"][1:] if any(vm["powered_on"] for vm in estate(crash_lab)["vms"]
                                                   if vm["name"] in set(w.get("vm_names") or [])))
    wave.update(method="warm_replatform", precopy_interval=1.0)
    plan.write_text(yaml.safe_dump(doc, sort_keys=False))
    final, in_cutover, uuids, journal = _crash_and_resume(crash_lab, plan, wave, tmp_path, 20261207,
                                                          REPLATFORM_CUTOVER)
    assert final.json()["status"] == "completed"
    assert in_cutover >= 1, "no kill landed inside the cutover"
    settings = aws_settings(load_site_config(crash_lab.site_config).replatformer)
    assert settings is not None
    clients = make_clients(settings)
    launched, synced = steps(journal, "launch_instance"), steps(journal, "final_sync")
    for uuid in uuids:
        left = list_leftovers(clients.ec2, {TAG_SOURCE: uuid})
        assert left.instances == [launched[uuid]["instance_id"]], left
        assert sorted(left.snapshots) == sorted(d["snapshot_id"] for d in synced[uuid]["disks"]), left
    assert_final_snapshots_equal_sources(crash_lab, clients, journal, uuids)
    ours = {vm: n for vm, n in snapshots_of(crash_lab).items() if any(s.startswith("migrate-warm") for s in n)}
    assert not ours, ours
    back = migrate_cli(crash_lab, "rollback", "--journal", journal, "--json")
    assert back.code == 0, back
    assert all(list_leftovers(clients.ec2, {TAG_SOURCE: uuid}).empty() for uuid in uuids)
