"""`migrate worker`: one process that runs the run/wave/VM workflows and the phase activities.

A worker polls the task queues it is given (default: site.yaml `engine.task_queue` and
`engine.data_task_queue`). On the control queue it runs the workflows and every activity; on any other
queue (a source site's data queue) only activities. Its drivers come from its own site.yaml, so a worker
placed near an on-prem vCenter reads that vCenter; the engine's limits are enforced by the wave workflows,
`--max-activities` bounds what this one process runs at once. SIGINT/SIGTERM stop it gracefully (the
activities it was running go to another worker after their heartbeat timeout).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Sequence
from datetime import timedelta

from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from migrate.core.config import EngineConfig, SiteConfig
from migrate.core.log import get_logger
from migrate.run import open_adapters, with_capacity
from migrate.temporal.activities import Activities
from migrate.temporal.client import connect
from migrate.temporal.heartbeat_ledger import HeartbeatLedger
from migrate.temporal.workflows import RunWorkflow, VmWorkflow, WaveWorkflow

__all__ = ["DEFAULT_MAX_ACTIVITIES", "run_worker"]

DEFAULT_MAX_ACTIVITIES = 16
HEARTBEAT_EVERY = timedelta(seconds=2)
_log = get_logger("migrate.temporal")


async def _serve(site: SiteConfig, engine: EngineConfig, queues: Sequence[str], max_activities: int,
                 identity: str, stop: asyncio.Event) -> None:
    client = await connect(engine)
    steps = dict(with_capacity(None, site, True).wave_steps)
    ledger = HeartbeatLedger()
    with open_adapters(site, journal=ledger) as adapters:
        activities = Activities(adapters, steps, threads=max_activities, ledger=ledger)
        workers = [Worker(client, task_queue=queue, activities=activities.all(),
                          workflows=[RunWorkflow, WaveWorkflow, VmWorkflow] if queue == engine.task_queue else [],
                          max_concurrent_activities=max_activities, identity=f"{identity}@{queue}",
                          # block progress rides on heartbeats: send them at least this often
                          max_heartbeat_throttle_interval=HEARTBEAT_EVERY,
                          # Workflow code is deterministic by construction (workflow.now(), timers, no I/O);
                          # the sandbox would re-import the project for every workflow run.
                          workflow_runner=UnsandboxedWorkflowRunner())
                   for queue in queues]
        try:
            async with asyncio.TaskGroup() as group:
                for worker in workers:
                    group.create_task(worker.run())
                _log.info("worker polling", address=engine.address, namespace=engine.namespace, queues=list(queues),
                          max_activities=max_activities, identity=identity)
                await stop.wait()
                _log.info("worker stopping: activities in flight finish or move to another worker")
                await asyncio.gather(*(worker.shutdown() for worker in workers))
        finally:
            activities.close()


def run_worker(site: SiteConfig, *, queues: Sequence[str] = (), max_activities: int = DEFAULT_MAX_ACTIVITIES,
               identity: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM; `queues` default to the site's control and data queues."""
    engine = site.engine or EngineConfig()
    chosen = list(dict.fromkeys(queues or (engine.task_queue, engine.data_queue)))
    name = identity or f"{socket.gethostname()}:{os.getpid()}"

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await _serve(site, engine, chosen, max_activities, name, stop)

    asyncio.run(main())
