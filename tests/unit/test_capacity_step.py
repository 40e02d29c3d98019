"""The engine's `ensure_capacity` wave step on in-memory ports, run by the Runner: its waits follow the run's
clock and stop on its cancel token, and a transient provider error is retried under the run's retry policy,
without ever allocating twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.noop.estate import NoopEstate
from migrate.core.capacity_ports import HostCluster, HostProvisioner
from migrate.core.errors import AdapterError
from migrate.engine import Runner
from migrate.engine.capacity import CapacityPorts, ensure_capacity
from migrate.engine.capacity_plan import CapacitySettings, resolve_host_type
from migrate.engine.capacity_step import capacity_step
from migrate.engine.capacity_waits import Pacing, poll_until
from migrate.engine.context import PhaseContext, PhaseFn
from migrate.engine.run_state import WaveStep
from migrate.engine.timing import CancelToken, Interrupted
from planners.sizing import VmSize
from tests.unit.capacity_fakes import FakeCluster, FakeProvisioner
from tests.unit.test_engine_helpers import FakeClock, _quiet_logs, fast_settings, make_plan, open_journal, registry

__all__ = ["_quiet_logs"]


def _cold() -> dict[str, dict[str, PhaseFn]]:
    """The cold method's phases as stubs returning the typed outputs the next ones need (no provider)."""
    outputs: dict[str, Mapping[str, Any]] = {"precheck": {"power_state": "poweredOn"}, "copy_disks": {"disks": []},
                                             "create_target_vm": {"target_id": "vm-target"}}

    def stub(out: Mapping[str, Any]) -> PhaseFn:
        def phase(ctx: PhaseContext) -> Mapping[str, Any]:
            return out
        return phase

    return registry("cold", overrides={name: stub(out) for name, out in outputs.items()})


def _runner_parts(provisioner: FakeProvisioner, cluster: FakeCluster) -> tuple[CapacityPorts, tuple[str, WaveStep]]:
    ports = CapacityPorts(provisioner=provisioner, cluster=cluster)

    def open_ports() -> CapacityPorts:
        return ports

    return ports, capacity_step(open_ports, CapacitySettings())


def test_fakes_are_the_ports() -> None:
    assert isinstance(FakeProvisioner(), HostProvisioner) and isinstance(FakeCluster(), HostCluster)


def test_a_cancel_stops_the_wait_at_once_and_the_resumed_run_adds_the_hosts_allocated_once(tmp_path: Path) -> None:
    """Hosts that are not ready yet: a cancel during the (30-minute) wait ends the run within moments, the wave
    canceled before any VM; the allocation is journaled. Resumed once the hosts are ready: nothing is allocated
    again, the allocated host is added, every VM completes."""
    plan = make_plan([2], method="cold")
    provisioner, cluster = FakeProvisioner(ready=False), FakeCluster()
    _, step = _runner_parts(provisioner, cluster)
    settings = fast_settings(wave_steps=(step,))
    cancel = CancelToken()
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, _cold(), adapters=NoopEstate(plan.vms).adapters(), settings=settings,
                        cancel=cancel)
        threading.Timer(0.3, cancel.cancel, kwargs={"drain": True}).start()
        began = time.monotonic()
        first = runner.start(plan)
        assert time.monotonic() - began < 5
        assert first.status == "canceled" and first.waves == {1: "canceled"} and first.vms == {"pending": 2}
        assert provisioner.allocations == 1 and len(provisioner.hosts) == 1 and cluster.added == []
        steps = {s.step: s.status for s in journal.steps(first.run_id, "wave", "1")}
        assert steps == {"capacity_allocate": "finished", "ensure_capacity": "started"}

        provisioner.ready = True
        second = Runner(journal, _cold(), adapters=NoopEstate(plan.vms).adapters(),
                        settings=settings).resume()
        assert second.status == "completed" and second.vms == {"completed": 2}
    assert provisioner.allocations == 1 and len(provisioner.hosts) == 1
    assert cluster.added == [h.name for h in provisioner.hosts.values()]


def test_a_transient_provider_error_in_the_step_is_retried(tmp_path: Path) -> None:
    """The allocation takes effect but its answer is lost (a retryable error): the run's retry policy runs the step
    again, which finds the host by its tags and adds it; one allocation, one host, the wave completes."""
    plan = make_plan([2], method="cold")
    provisioner, cluster = FakeProvisioner(), FakeCluster()
    provisioner.faults["allocate"] = [AdapterError("fake", "allocate", "connection reset", retryable=True)]
    _, step = _runner_parts(provisioner, cluster)
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, _cold(), adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings(wave_steps=(step,)))
        result = runner.start(plan)
        events = [(e.event, e.attempt) for e in journal.history(result.run_id, "wave", "1", steps_only=True)
                  if e.step == "ensure_capacity"]
    assert result.status == "completed"
    assert events == [("step_started", 1), ("step_failed", 1), ("step_started", 2), ("step_finished", 2)]
    assert provisioner.allocations == 1 and len(provisioner.hosts) == 1 and len(cluster.added) == 1


def test_non_cluster_waves_skip_the_step(tmp_path: Path) -> None:
    """A method whose VMs do not land in the cluster (noop here) allocates nothing."""
    plan = make_plan([2])
    provisioner, cluster = FakeProvisioner(), FakeCluster()
    _, step = _runner_parts(provisioner, cluster)
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(), adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings(wave_steps=(step,)))
        assert runner.start(plan).status == "completed"
    assert provisioner.allocations == 0


def test_poll_retries_transient_errors_until_its_deadline() -> None:
    """A retryable error of one poll is polled again; the deadline is the clock's; other errors end it at once."""
    clock = FakeClock()
    answers: list[object] = [AdapterError("fake", "find", "reset", retryable=True), None, "ready"]

    def check() -> str | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, str) else None

    pacing = Pacing(clock=clock)
    assert poll_until(pacing, "x", check, 60, lambda: AdapterError("fake", "x", "late")) == "ready"
    assert clock.slept == [0.5, 1.0]
    with pytest.raises(AdapterError, match="late"):
        poll_until(pacing, "x", lambda: None, 10, lambda: AdapterError("fake", "x", "late"))
    assert sum(clock.slept) == pytest.approx(1.5 + 10)

    def broken() -> None:
        raise AdapterError("fake", "find", "denied")

    with pytest.raises(AdapterError, match="denied"):
        poll_until(pacing, "x", broken, 10, lambda: AdapterError("fake", "x", "late"))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Interrupted):
        poll_until(Pacing(clock=clock, cancel=token), "x", lambda: None, 10, lambda: AdapterError("fake", "x", "late"))


def test_hosts_never_ready_time_out_retryably_on_the_clock() -> None:
    """The provider never says ready: HostNotReady (retryable) after ready_timeout_s of the run's clock."""
    provisioner, cluster = FakeProvisioner(ready=False), FakeCluster()
    ports = CapacityPorts(provisioner=provisioner, cluster=cluster)
    settings = CapacitySettings(ready_timeout_s=120)
    clock = FakeClock()
    with pytest.raises(AdapterError) as caught:
        ensure_capacity(ports, [VmSize("a", 2, 1024, 1.0)], plan_tag="run-1", wave_id="1", settings=settings,
                        host=resolve_host_type(provisioner, "i4i.metal"), pacing=Pacing(clock=clock))
    assert caught.value.code == "HostNotReady" and caught.value.retryable
    assert sum(clock.slept) == pytest.approx(120) and cluster.added == []
