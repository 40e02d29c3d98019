"""Crash safety: kill -9 a 200-VM run at random points, resume, and find every VM moved exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from adapters.noop.estate import NoopEstate
from migrate.core.log import configure_logging
from migrate.engine import Limits, RetryPolicy, Runner, RunSettings
from migrate.engine.journal import Journal
from migrate.engine.noop import NOOP
from tests.unit.test_engine_helpers import make_plan

ROOT = Path(__file__).resolve().parents[2]
WAVES = [50, 50, 60, 40]
PLAN = make_plan(WAVES, hosts=6, datastores=4, clusters=2)
TOTAL_EFFECTS = sum(4 + (2 if vm.facts["power_state"] == "poweredOn" else 0) for vm in PLAN.vms)


def child_main() -> None:
    """Entry point of the child process: start (or resume) the 200-VM noop run."""
    journal_path, effects_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    configure_logging("error", json_logs=True)
    estate = NoopEstate(PLAN.vms, Path(effects_path), latency=0.0005)
    settings = RunSettings(limits=Limits(total=8, per_source_host=3, per_datastore=4),
                           retry=RetryPolicy(attempts=2, base_delay=0.0), poll_seconds=0.05)
    with Journal(journal_path) as journal:
        runner = Runner(journal, {"noop": NOOP.functions}, adapters=estate.adapters(), settings=settings)
        result = runner.start(PLAN, run_id="crash") if mode == "start" else runner.resume(plan=PLAN)
    estate.close()
    print(json.dumps(result.to_dict()))


def _spawn(tmp: Path, mode: str) -> subprocess.Popen[str]:
    code = "from tests.unit.test_engine_crash import child_main; child_main()"
    return subprocess.Popen([sys.executable, "-c", code, str(tmp / "j.db"), str(tmp / "effects.jsonl"), mode],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _effects(tmp: Path) -> list[dict[str, str]]:
    path = tmp / "effects.jsonl"
    if not path.exists():
        return []
    text = path.read_text()   # the run may be appending a line right now: only whole lines count
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]


def _kill_after(proc: subprocess.Popen[str], tmp: Path, target: int, rng: random.Random) -> bool:
    """Kill -9 `proc` once the estate holds `target` effects (plus a random few ms); False if it ended first."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and len(_effects(tmp)) < target:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("child made no progress")
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.02))
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_and_resume_moves_every_vm_exactly_once(seed: int, tmp_path: Path) -> None:
    """Three kills at random points, then a resume to the end: no VM missing or duplicated, all completed."""
    rng = random.Random(seed)
    kills = 0
    for round_ in range(3):
        done = len(_effects(tmp_path))
        target = done + rng.randint(1, max(1, (TOTAL_EFFECTS - done) // 2))
        proc = _spawn(tmp_path, "start" if round_ == 0 else "resume")
        kills += _kill_after(proc, tmp_path, target, rng)
    assert kills >= 2, "the kills landed mid-run"
    final = _spawn(tmp_path, "resume")
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err[-3000:]
    assert json.loads(out.splitlines()[-1])["status"] == "completed"

    effects = _effects(tmp_path)
    counts = Counter((e["vm"], e["effect"]) for e in effects)
    for vm in PLAN.vms:
        on = vm.facts["power_state"] == "poweredOn"
        expected = {"create": 1, "copy": 1, "tag": 1, "mark": 1, "power_off": int(on), "power_on": int(on)}
        assert {k: counts[(vm.id, k)] for k in expected} == expected, vm.id
    assert len(effects) == TOTAL_EFFECTS
    targets = [e["target"] for e in effects if e["effect"] == "create"]
    assert len(targets) == len(set(targets)) == len(PLAN.vms)

    with Journal(tmp_path / "j.db") as journal:
        states = journal.vm_states("crash")
        assert {s.state for s in states.values()} == {"completed"}
        assert {s.state for s in journal.wave_states("crash").values()} == {"completed"}
        assert [s.key for s in journal.steps("crash") if s.status != "finished"] == []
        estate = NoopEstate(PLAN.vms, tmp_path / "effects.jsonl")
        assert all(len(estate.target.ex_find_all(vm.id)) == 1 for vm in PLAN.vms)
        estate.close()


def test_crash_plan_shape() -> None:
    """The crash run moves 200 VMs in four waves."""
    assert sum(WAVES) == len(PLAN.vms) == 200 and TOTAL_EFFECTS > 800
