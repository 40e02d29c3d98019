"""kill -9 of a warm run at random points of replication and cutover, then resume: the replicas end equal to the
sources at power-off, every VM is on the target once, and no snapshot of ours is left."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.engine.journal import Journal
from migrate.lab.churn import churn
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.migration.conftest import assert_migrated_once, estate, migrate_cli, start_lab
from tests.integration.migration.test_cold_crash import _has_run, _killed
from tests.integration.migration.test_warm_e2e import disks_equal, snapshots_of, warm_plan

REPLICATING_KILLS = 3
CUTOVER_KILLS = 3
# the phases of the cutover: a kill lands in one of them at a random point of its first 0.3 s
CUTOVER_PHASES = frozenset({"power_off_source", "final_sync", "create_target_vm", "tag_target", "power_on_target",
                            "verify", "mark_source_migrated"})
LIMITS = ["--per-host", "8", "--per-datastore", "8"]


@pytest.fixture(scope="module")
def crash_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "warm-crash", 10, 13)


def _cutover_started(journal: Path, since: float) -> bool:
    """Whether a cutover phase started after `since` (epoch seconds)."""
    with Journal(journal, create=False, read_only=True) as jr:
        run = jr.runs()[-1].run_id
        return any(s.step in CUTOVER_PHASES and s.started_at >= since for s in jr.steps(run, "vm"))


def _kill_in_cutover(args: list[str | Path], journal: Path, rng: random.Random, log: Path) -> bool:
    """Start the CLI and kill -9 it a random moment (0-0.3 s) after it starts a cutover phase; True if it was
    killed there, False if it ended first (the cutover was done)."""
    since = time.time()
    with log.open("a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "migrate", *map(str, args)], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "MIGRATE_LOG_LEVEL": "info"})
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if _cutover_started(journal, since):
                time.sleep(rng.uniform(0.0, 0.3))
                alive = proc.poll() is None
                if alive:
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return alive
            time.sleep(0.02)
        proc.wait()
    return False


def test_kill9_in_precopy_and_cutover_then_resume(crash_lab: LabInfo, tmp_path: Path) -> None:
    plan, wave = warm_plan(crash_lab, tmp_path, interval=1.0, max_vms=3)
    names = set(wave.get("vm_names") or [])
    vms = [vm for vm in estate(crash_lab)["vms"] if vm["name"] in names]
    running = [vm["name"] for vm in vms if vm["powered_on"]]
    uuids = {vm["instance_uuid"] for vm in vms}
    site, journal, log = crash_lab.site_config, tmp_path / "run.db", tmp_path / "crash.log"
    start = ["run", plan, "--config", site, "--journal", journal, "--waves", str(wave["id"]), *LIMITS]
    again = ["resume", "--config", site, "--journal", journal, *LIMITS]
    rng = random.Random(20261206)
    stop = threading.Event()
    churner = threading.Thread(target=lambda: churn(crash_lab.directory, vms=running, mib_per_s=1.0, seconds=900,
                                                    seed=9, stop=stop), daemon=True)
    churner.start()
    try:   # the guests write until they are shut down
        for _ in range(REPLICATING_KILLS):   # replicating never ends by itself: every kill lands in it
            assert _killed(again if _has_run(journal) else start, rng.uniform(2.0, 6.0), log)
        if not _has_run(journal):
            pytest.fail(f"three runs were killed before the journal had a run: {log.read_text()[-2000:]}")
        asked = run_cli("cutover", "--journal", journal, "--wave", str(wave["id"]))
        assert asked.code == 0, asked
        in_cutover = 0
        for _ in range(CUTOVER_KILLS):   # now each kill lands in the cutover, until a resume finishes it
            if not _kill_in_cutover(again, journal, rng, log):
                break
            in_cutover += 1
        final = run_cli("resume", "--config", site, "--journal", journal, "--json", *LIMITS, timeout=600)
    finally:
        stop.set()
        churner.join(timeout=60)
    assert final.code == 0, (final, log.read_text()[-3000:])
    assert final.json()["status"] == "completed"
    assert in_cutover >= 1, "no kill landed inside the cutover"
    assert_migrated_once(crash_lab, uuids)
    pairs = disks_equal(crash_lab, uuids)
    assert pairs and all(src == tgt for src, tgt in pairs.values()), pairs
    left = {vm: n for vm, n in snapshots_of(crash_lab).items() if any(s.startswith("migrate-warm") for s in n)}
    assert not left, left
    back = migrate_cli(crash_lab, "rollback", "--journal", journal, "--json")
    assert back.code == 0, back
