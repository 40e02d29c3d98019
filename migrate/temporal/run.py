"""Library verb: run a plan on the Temporal engine (the CLI's `migrate run --engine temporal`).

    from migrate.temporal.run import run_on_temporal
    result = run_on_temporal(plan, site)        # plan, site from migrate.run.load_run_plan

The same checks as the local engine come first, before anything starts (bad input, exit 2): playbooks
against the installed methods, each method's preflight against the providers, the capacity settings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate.core.config import EngineConfig, SiteConfig
from migrate.engine.journal import new_run_id
from migrate.engine.plan import RunPlan
from migrate.engine.run_state import RunSettings
from migrate.engine.runner import check_run, phase_functions
from migrate.engine.timing import CancelToken
from migrate.run import open_adapters, preflight, run_playbooks, with_capacity
from migrate.temporal.client import check_plan, engine_settings, run_input, start_temporal_run

__all__ = ["engine_of", "run_on_temporal"]


def engine_of(site: SiteConfig, *, address: str | None = None, namespace: str | None = None) -> EngineConfig:
    """site.yaml's `engine` (or the defaults) with the command line's address and namespace."""
    engine = site.engine or EngineConfig()
    changes = {k: v for k, v in {"address": address, "namespace": namespace}.items() if v}
    return engine.model_copy(update=changes) if changes else engine


def run_on_temporal(plan: RunPlan, site: SiteConfig, *, engine: EngineConfig | None = None,
                    playbook: str | Path | None = None, settings: RunSettings | None = None,
                    run_id: str | None = None, capacity: bool = True, cancel: CancelToken | None = None,
                    on_done: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Start (or, with the id of a run still going, re-attach to) a run on Temporal and wait for its end."""
    engine = engine or engine_of(site)
    books = run_playbooks(plan, playbook)
    check_run(plan, books, phase_functions())
    check_plan(plan, books)
    settings = with_capacity(settings, site, capacity)
    with open_adapters(site) as adapters:
        preflight(plan, adapters)
    queued = engine_settings(engine, settings, [name for name, _ in settings.wave_steps],
                             queue_timeout_s=engine.queue_timeout_s, heartbeat_s=engine.heartbeat_timeout_s)
    return start_temporal_run(engine, run_input(run_id or new_run_id(), plan, books, queued), cancel=cancel,
                              on_done=on_done)
