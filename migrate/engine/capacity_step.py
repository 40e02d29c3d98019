"""The `ensure_capacity` wave step: grow the target cluster before a wave's prechecks.

The runner journals and retries it like any step (a retryable provider error runs it again under the
run's retry policy: it is idempotent). Inside, the allocation is recorded in the run journal before and
after the provider is asked, and waits follow the run's clock and stop on its cancel token.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from typing import Any

from migrate.engine.capacity import CapacityPorts, ensure_capacity
from migrate.engine.capacity_journal import journal_recorder
from migrate.engine.capacity_plan import CapacitySettings, plan_capacity, resolve_host_type, vm_sizes_from_facts
from migrate.engine.capacity_waits import Pacing
from migrate.engine.methods import get_method
from migrate.engine.run_state import WaveStep, WaveStepContext

__all__ = ["STEP", "capacity_step"]

STEP = "ensure_capacity"


def capacity_step(open_ports: Callable[[], CapacityPorts], settings: CapacitySettings) -> tuple[str, WaveStep]:
    """The wave step (name, function); `open_ports` opens the provisioner and cluster for one run of it."""

    def ensure(ctx: WaveStepContext) -> dict[str, Any]:
        if not get_method(ctx.wave.method).grows_cluster:  # e.g. replatform: its VMs leave vCenter
            return {"skipped": f"{ctx.wave.method} wave", "hosts_to_add": 0}
        with closing(open_ports()) as ports:
            host = resolve_host_type(ports.provisioner, settings.host_type)
            if ctx.dry_run:  # what the run will find: the cluster as it is plus the waves before this one
                waves = [(f"before-{i + 1}", vm_sizes_from_facts(vms)) for i, vms in enumerate(ctx.earlier)]
                waves.append((str(ctx.wave.id), vm_sizes_from_facts(ctx.vms)))
                plan = plan_capacity(ports.cluster, waves, settings, host).plans[-1]
                return {"dry_run": True, "hosts_to_add": plan.hosts_to_add, "plan": plan.to_dict()}
            record = journal_recorder(ctx.journal, ctx.run_id, str(ctx.wave.id)) if ctx.journal is not None else None
            result = ensure_capacity(ports, vm_sizes_from_facts(ctx.vms), plan_tag=ctx.run_id, wave_id=str(ctx.wave.id),
                                     settings=settings, host=host, pacing=Pacing(ctx.clock, ctx.cancel),
                                     record=record)
            return result.to_dict()

    return STEP, ensure
