"""Failed work is retryable: a wave whose step failed runs again on a plain resume; --retry-failed takes the VMs
or waves it names and no others."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.noop.estate import NoopEstate
from migrate.core.errors import AdapterError, InputError
from migrate.engine import Runner
from migrate.engine.context import PhaseContext, PhaseFn
from migrate.engine.noop import NOOP
from migrate.engine.run_state import RetryScope, WaveStepContext
from tests.unit.test_engine_helpers import _quiet_logs, fast_settings, make_plan, open_journal, registry

__all__ = ["_quiet_logs"]


def _failing(bad: set[str]) -> dict[str, PhaseFn]:
    def fn(ctx: PhaseContext) -> Mapping[str, Any]:
        if ctx.vm.id in bad:
            raise AdapterError("vcenter", "copy_disks", "datastore full")
        return NOOP.functions["copy_disks"](ctx)
    return {"copy_disks": fn}


def _states(journal: Any, run_id: str) -> dict[str, str]:
    return {vm: e.state for vm, e in journal.vm_states(run_id).items()}


def test_a_wave_whose_step_failed_runs_again_on_a_plain_resume(tmp_path: Path) -> None:
    """A capacity-like wave step that keeps hitting a dropped connection fails the wave before any VM; resume
    without flags runs the step again and then every VM."""
    plan = make_plan([3, 2])
    calls: list[str] = []
    outage = {"on": True}

    def ensure(ctx: WaveStepContext) -> Mapping[str, Any]:
        calls.append(str(ctx.wave.id))
        if outage["on"]:
            raise AdapterError("vcenter", "connect", "cannot reach the vCenter (reset)", retryable=True)
        return {"hosts_to_add": 0}

    settings = fast_settings(wave_steps=(("ensure_capacity", ensure),))
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(), adapters=NoopEstate(plan.vms).adapters(), settings=settings)
        first = runner.start(plan)
        assert first.status == "failed" and first.waves == {1: "failed", 2: "pending"}
        assert first.vms == {"pending": 2, "skipped": 3}
        assert calls == ["1"] * settings.retry.attempts
        outage["on"] = False
        second = runner.resume()
        assert second.status == "completed" and second.vms == {"completed": 5}


def test_retry_failed_takes_only_the_named_vm(tmp_path: Path) -> None:
    """With two failed VMs, a scope naming one retries that one; the other stays failed until asked for."""
    plan = make_plan([4])
    bad = {"vm-0001", "vm-0002"}
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(overrides=_failing(bad)), adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings())
        first = runner.start(plan)
        assert first.vms == {"completed": 2, "failed": 2}
        bad.clear()
        runner.resume(retry_failed=RetryScope(vms=frozenset({"vm-0002"})))
        states = _states(journal, first.run_id)
        assert (states["vm-0001"], states["vm-0002"]) == ("failed", "completed")
        last = runner.resume(retry_failed=RetryScope(waves=frozenset({1})))
        assert last.status == "completed" and last.vms == {"completed": 4}


def test_retry_scope_outside_the_run_is_bad_input(tmp_path: Path) -> None:
    """A VM or wave the run does not hold is exit 2, before anything runs."""
    plan = make_plan([2])
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(overrides=_failing({"vm-0000"})), adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings())
        runner.start(plan)
        with pytest.raises(InputError) as caught:
            runner.resume(retry_failed=RetryScope(vms=frozenset({"vm-9"}), waves=frozenset({7})))
        assert {p.file for p in caught.value.problems} == {"--vm", "--wave"}
