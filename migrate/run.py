"""Library verbs for running a plan: run, dry-run, resume, status, rollback (the CLI is a thin layer on these).

    from migrate.run import start_run
    result = start_run("plan.yaml", "site.yaml", journal="run.db")

Inputs are checked before anything changes: plan.yaml, inventory.json (the plan's own, or given) and
site.yaml must agree (every VM known, every port group and datastore mapped), else InputError (exit 2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from migrate.capacity import grows_cluster, open_capacity, open_provisioner, provisioner_settings
from migrate.config import ROLE_SECTIONS, load_site_config
from migrate.core.block_progress import BlockLedger, BlockProgress
from migrate.core.config import DriverSettings, SiteConfig
from migrate.core.drivers import ConnectOptions, Role, get_driver
from migrate.core.errors import InputError, Problem
from migrate.core.ports import Adapters
from migrate.engine.capacity import release_capacity
from migrate.engine.capacity_plan import CapacitySettings, resolve_host_type
from migrate.engine.capacity_step import capacity_step as engine_capacity_step
from migrate.engine.context import vm_adapters
from migrate.engine.dryrun import plan_actions
from migrate.engine.journal import CycleRecord, Journal
from migrate.engine.journal_check import check_playbooks
from migrate.engine.methods import get_method
from migrate.engine.plan import Policy, RunPlan
from migrate.engine.playbook import Playbook, load_playbook
from migrate.engine.progress import ProgressListener
from migrate.engine.rollback import RollbackResult, cleanup_left
from migrate.engine.run_state import RetryScope, RunSettings, WaveStep
from migrate.engine.runner import Runner, RunResult, phase_functions
from migrate.engine.timing import CancelToken
from migrate.execution_plan import build_run_plan
from migrate.inventory import load_inventory
from planners.plan_io import load_plan

__all__ = [
    "capacity_step",
    "dry_run",
    "load_run_plan",
    "open_adapters",
    "outcomes_of_tests",
    "preflight",
    "replicating_vms",
    "replication_status",
    "request_cutover",
    "request_test",
    "resume_run",
    "rollback_run",
    "run_playbooks",
    "run_status",
    "start_run",
    "with_capacity",
    "with_precopy_interval",
]

# VM states in which a replicating VM can still be asked to cut over
_BEFORE_CUTOVER = frozenset({"pending", "prechecked", "ready", "replicating"})


def with_precopy_interval(plan: RunPlan, interval: float | str | None) -> RunPlan:
    """`plan` with every replicating wave's precopy interval set to `interval` (None: as planned)."""
    if interval is None:
        return plan
    waves = [w.model_copy(update={"precopy_interval": interval}) if get_method(w.method).replicates else w
             for w in plan.waves]
    return plan.model_copy(update={"waves": waves})


def _inventory_path(plan_path: Path, inventory: str | Path | None, plan_inventory: str | None) -> Path:
    if inventory is not None:
        return Path(inventory)
    if plan_inventory is None:
        raise InputError.single(str(plan_path), "source.inventory",
                                "the plan does not name its inventory: pass --inventory")
    candidate = Path(plan_inventory)
    if not candidate.is_absolute() and not candidate.exists():
        candidate = plan_path.parent / candidate
    return candidate


def load_run_plan(plan: str | Path, site: str | Path | SiteConfig, *, inventory: str | Path | None = None,
                  waves: Sequence[int] | None = None, policy: Policy = "continue") -> tuple[RunPlan, SiteConfig]:
    """Check plan.yaml, its inventory and site.yaml together; the engine's RunPlan and the site config."""
    plan_path = Path(plan)
    problems: list[Problem] = []
    config: SiteConfig | None = None
    loaded = None
    try:
        config = site if isinstance(site, SiteConfig) else load_site_config(site)
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        loaded = load_plan(plan_path)
    except InputError as exc:
        problems.extend(exc.problems)
    if problems or loaded is None or config is None:
        raise InputError(problems)
    inv = load_inventory(_inventory_path(plan_path, inventory, loaded.source.inventory if loaded.source else None))
    run_plan = build_run_plan(loaded, inv, config, plan_file=str(plan_path),
                              site_file=str(site) if not isinstance(site, SiteConfig) else "site.yaml",
                              waves=waves, policy=policy)
    return run_plan, config


@contextlib.contextmanager
def open_adapters(site: SiteConfig, *, shutdown_grace: float = 120.0,
                  journal: BlockLedger | None = None) -> Iterator[Any]:
    """The adapters of `site`'s roles, each opened by its section's driver (logging in lazily) and closed at
    the end; block copies record their progress in `journal` (the run journal, or a Temporal worker's ledger)."""
    options = ConnectOptions(shutdown_grace=shutdown_grace, block_progress=BlockProgress(journal))
    opened: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:   # each opened adapter is closed, even when another's close fails
        def connect(settings: DriverSettings, role: Role, field: str) -> Any:
            adapter = get_driver(settings.driver, role, field_name=f"{field}.driver").connect(role, settings, options)
            stack.callback(adapter.close)
            return adapter

        for key, role in ROLE_SECTIONS.items():
            settings = getattr(site, key)
            if settings is not None and not (key == "source" and site.sources):
                opened[key] = connect(settings, role, key)
        for index, settings in enumerate(site.sources):
            sources[settings.source_name()] = connect(settings, Role.SOURCE, f"sources[{index}]")
        if sources:
            opened["source"] = next(iter(sources.values()))
        yield Adapters(source=opened.get("source"), target=opened.get("target"),
                       replatformer=opened.get("replatformer"), sources=sources)


def capacity_step(site: SiteConfig) -> tuple[str, WaveStep]:
    """The wave step that grows the target cluster before a wave's prechecks (site.yaml `capacity`): the
    engine's, on the site's host provisioner and target cluster (opened for each run of the step)."""
    return engine_capacity_step(lambda: open_capacity(site), CapacitySettings.from_config(site.capacity))


def check_capacity(site: SiteConfig, site_file: str = "site.yaml") -> None:
    """site.yaml `capacity` is sound and its host type one the provisioner has: else InputError, before any change."""
    settings = CapacitySettings.from_config(site.capacity)
    section = provisioner_settings(site)
    problems = [Problem(site_file, f"capacity.{p.field}", p.message) for p in settings.problems()]
    problems += section.file_problems(site_file, "capacity.provisioner", dict(os.environ))
    if not problems:
        try:
            with contextlib.closing(open_provisioner(site, section)) as provisioner:
                resolve_host_type(provisioner, settings.host_type)
        except InputError as exc:
            problems = [Problem(site_file, f"capacity.{p.field}" if p.file == "capacity" else p.field, p.message)
                        for p in exc.problems]
    if problems:
        raise InputError(problems)


def with_capacity(settings: RunSettings | None, site: SiteConfig, capacity: bool,
                  site_file: str = "site.yaml") -> RunSettings:
    """`settings` with the capacity wave step when asked for and the site can grow its target cluster (a target
    cluster, and a `capacity` section or an AWS replatformer), after checking the capacity settings."""
    settings = settings or RunSettings()
    if capacity and grows_cluster(site):
        check_capacity(site, site_file)
        settings = dataclasses.replace(settings, wave_steps=(*settings.wave_steps, capacity_step(site)))
    return settings


def run_playbooks(plan: RunPlan, playbook: str | Path | None) -> dict[str, Playbook]:
    """The playbook of each wave's method: `playbook` for its method, the built-in one for the others."""
    books: dict[str, Playbook] = {}
    if playbook is not None:
        book = load_playbook(playbook)
        books[book.method] = book
    for wave in plan.waves:
        if wave.method not in books:
            books[wave.method] = load_playbook(wave.method)
    return books


def dry_run(plan: RunPlan, site: SiteConfig, *, playbook: str | Path | None = None,
            prechecks: bool = True, capacity: bool = True) -> list[dict[str, Any]]:
    """The ordered actions a run would take; with `prechecks`, the read-only prechecks (and the capacity
    plan of each wave, against the cluster as it is now) run against the vCenters."""
    books = run_playbooks(plan, playbook)
    if not prechecks:
        return plan_actions(plan, books)
    steps = with_capacity(None, site, capacity).wave_steps
    with open_adapters(site) as adapters:
        return plan_actions(plan, books, prechecks=phase_functions(), adapters=adapters, wave_steps=steps)


def start_run(plan: RunPlan, site: SiteConfig, journal: str | Path, *, playbook: str | Path | None = None,
              settings: RunSettings | None = None, cancel: CancelToken | None = None,
              run_id: str | None = None, capacity: bool = True,
              progress: ProgressListener | None = None) -> RunResult:
    """Record a new run of `plan` in the journal and execute it (growing the target cluster per wave);
    `progress` gets its progress events (migrate.engine.progress) from any thread."""
    books = run_playbooks(plan, playbook)
    settings = with_capacity(settings, site, capacity)
    with Journal(journal) as jr, open_adapters(site, journal=jr) as adapters:
        preflight(plan, adapters)
        runner = Runner(jr, adapters=adapters, settings=settings, cancel=cancel, progress=progress)
        return runner.start(plan, books, run_id=run_id)


def preflight(plan: RunPlan, adapters: Adapters) -> None:
    """InputError naming every VM its method cannot move at all (Method.preflight), before anything runs."""
    problems: list[Problem] = []
    for wave in plan.waves:
        check = get_method(wave.method).preflight
        if check is None:
            continue
        for vm_id in wave.vms:
            vm = plan.vm_index[vm_id]
            problems.extend(Problem("plan", f"waves[{wave.id}] {vm.name or vm_id}", f"{wave.method}: {problem}")
                            for problem in check(vm_adapters(adapters, vm), vm))
    if problems:
        raise InputError(problems)


def resume_run(site: SiteConfig, journal: str | Path, *, run_id: str | None = None,
               retry_failed: bool | RetryScope = False,
               settings: RunSettings | None = None, cancel: CancelToken | None = None,
               capacity: bool = True, progress: ProgressListener | None = None) -> RunResult:
    """Continue the latest (or the named) run of the journal; `retry_failed` also retries failed VMs (all, or
    those a RetryScope names). A wave that failed before any VM started (capacity step) is retried either way.
    `progress` gets its progress events, as with start_run."""
    settings = with_capacity(settings, site, capacity)
    with Journal(journal, create=False) as jr, open_adapters(site, journal=jr) as adapters:
        runner = Runner(jr, adapters=adapters, settings=settings, cancel=cancel, progress=progress)
        return runner.resume(run_id, retry_failed=retry_failed)


def rollback_run(site: SiteConfig, journal: str | Path, *, run_id: str | None = None,
                 vms: list[str] | None = None, waves: list[int] | None = None,
                 settings: RunSettings | None = None, release_hosts: bool = True) -> RollbackResult:
    """Roll back VMs of a run (named ones, whole waves, or everything the run touched).

    A whole-run rollback that leaves nothing pending also gives back the bare-metal hosts the run added
    (taken out of the cluster, released at the provider), unless `release_hosts` is False.
    """
    with Journal(journal, create=False) as jr, open_adapters(site, journal=jr) as adapters:
        runner = Runner(jr, adapters=adapters, settings=settings)
        result = runner.rollback(run_id, vms=vms, waves=waves)
    whole = vms is None and waves is None
    if release_hosts and whole and result.ok and not result.pending_cleanup and grows_cluster(site):
        with contextlib.closing(open_capacity(site)) as ports:
            released = release_capacity(ports, result.run_id,
                                        timeout=CapacitySettings.from_config(site.capacity).connect_timeout_s)
        result.hosts_released = released.released
    return result


def replication_status(cycles: Sequence[CycleRecord], downtime_s: float | None, requested: bool,
                       test: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A replicating VM's figures: cycles done, bytes per cycle, the last cycle's duration, the downtime a
    cutover now would take (about the last precopy cycle's copy: the final one copies as much) or, after the
    cutover, the measured one (source off to target on); and its latest test request's outcome."""
    precopy = [c for c in cycles if c.cycle > 0 and not c.data.get("final")]
    last = cycles[-1].data if cycles else None
    return {"cycles": len(cycles), "bytes_per_cycle": [int(c.data.get("bytes") or 0) for c in cycles],
            "last_cycle_s": float(last["seconds"]) if last else None,
            "projected_downtime_s": float(precopy[-1].data["seconds"]) if precopy and downtime_s is None else None,
            "downtime_s": downtime_s, "cutover_requested": requested, "last_test": dict(test) if test else None}


def request_cutover(journal: str | Path, *, waves: Sequence[int] = (), vms: Sequence[str] = (),
                    run_id: str | None = None) -> dict[str, Any]:
    """Ask a run (running now, or resumed later) to cut these waves or VMs over now; journaled.

    Bad input (exit 2, nothing recorded): an unknown wave or VM, a wave whose method does not replicate,
    a VM that is not replicating or waiting to (already cutting over, done, failed or of another method).
    """
    if not waves and not vms:
        raise InputError.single("command line", "--wave/--vm", "name at least one wave or VM to cut over")
    with Journal(journal, create=False) as jr:
        record = jr.open_run(run_id)
        _, vm_ids, problems = replicating_vms(record.plan, jr.vm_states(record.run_id), waves, vms, "cutover")
        if problems:
            raise InputError(problems)
        for wave_id in waves:
            jr.request(record.run_id, "cutover", "wave", str(wave_id))
        for vm_id in vm_ids:
            jr.request(record.run_id, "cutover", "vm", vm_id)
    return {"run_id": record.run_id, "waves": list(waves), "vms": vm_ids}


def replicating_vms(plan: RunPlan, states: Mapping[str, Any], waves: Sequence[int], vms: Sequence[str],
                     what: str) -> tuple[list[str], list[str], list[Problem]]:
    """The ids of the VMs of `waves` that replicate and have not cut over yet, the ids of `vms` (names or
    ids), and what is wrong (unknown, ambiguous, not replicating)."""
    problems: list[Problem] = []
    by_name: dict[str, list[str]] = {}
    for vm in plan.vms:
        by_name.setdefault(vm.name, []).append(vm.id)
    wave_of = {vm_id: wave for wave in plan.waves for vm_id in wave.vms}

    def state(vm_id: str) -> str:
        return str(states[vm_id].state) if vm_id in states else "pending"

    chosen: list[str] = []
    named: list[str] = []
    for wave_id in waves:
        wave = next((w for w in plan.waves if w.id == wave_id), None)
        if wave is None:
            problems.append(Problem("--wave", str(wave_id), f"the run has no wave {wave_id}"))
        elif not get_method(wave.method).replicates:
            problems.append(Problem("--wave", str(wave_id), f"wave {wave_id} is {wave.method}: it does not "
                                                              f"replicate, so it has no {what}"))
        else:
            chosen += [vm_id for vm_id in wave.vms if state(vm_id) in _BEFORE_CUTOVER]
    for ref in vms:
        ids = [ref] if ref in plan.vm_index else by_name.get(ref, [])
        if len(ids) != 1:
            why = "is not a VM of the run" if not ids else f"names {len(ids)} VMs: give the instanceUuid"
            problems.append(Problem("--vm", ref, f"{ref!r} {why}"))
            continue
        wave = wave_of[ids[0]]
        if not get_method(wave.method).replicates or state(ids[0]) not in _BEFORE_CUTOVER:
            problems.append(Problem("--vm", ref, f"{ref} is not replicating ({wave.method}, {state(ids[0])})"))
        named.append(ids[0])
    return chosen, named, problems


def request_test(journal: str | Path, *, waves: Sequence[int] = (), vms: Sequence[str] = (), cleanup: bool = False,
                 run_id: str | None = None) -> dict[str, Any]:
    """Ask a replicating run for test copies of these waves' or VMs' latest replicas (or, with `cleanup`, to
    remove them); journaled, done by the running run (or a resumed one) between two cycles.

    Bad input (exit 2, nothing recorded): as for `request_cutover`, plus a VM with a NIC whose port group
    site.yaml's `mappings.test_networks` did not map when the run was planned.
    """
    kind = "test_cleanup" if cleanup else "test"
    if not waves and not vms:
        raise InputError.single("command line", "--wave/--vm", "name at least one wave or VM")
    with Journal(journal, create=False) as jr:
        record = jr.open_run(run_id)
        plan = record.plan
        in_waves, named, problems = replicating_vms(plan, jr.vm_states(record.run_id), waves, vms, "test copy")
        chosen = list(dict.fromkeys(in_waves + named))
        for vm_id in chosen if not cleanup else []:
            facts = plan.vm_index[vm_id]
            method = get_method(next(w.method for w in plan.waves if vm_id in w.vms))
            mapping = "replatformer.test_networks" if Role.REPLATFORMER in method.roles else "mappings.test_networks"
            unmapped = sorted({str(n.get("network")) for n in facts.facts.get("nics", []) if not n.get("test_network")})
            problems += [Problem("site.yaml", f"{mapping}.{pg}", f"no test network for port group {pg!r} "
                                 f"of {facts.name or vm_id} (map it, then plan and run again)") for pg in unmapped]
        if problems:
            raise InputError(problems)
        if not chosen:
            raise InputError.single("command line", "--wave", "no VM of these waves is replicating")
        for wave_id in waves:
            jr.request(record.run_id, kind, "wave", str(wave_id))
        for vm_id in named:
            jr.request(record.run_id, kind, "vm", vm_id)
        ids = [request for request, _, _, _ in jr.request_rows(record.run_id, (kind,))]
        active = jr.runner_active()
    asked = ids[-(len(waves) + len(named)):]
    return {"run_id": record.run_id, "kind": kind, "requests": asked, "vms": chosen, "running": active}


def outcomes_of_tests(journal: str | Path, run_id: str, requests: Sequence[int], vms: Sequence[str]) -> dict[str, Any]:
    """The outcome of each VM's test request among `requests` (None while not done), read-only."""
    with Journal(journal, create=False, read_only=True) as jr:
        found = {vm: data for request, vm, _, data in jr.outcomes(run_id) if request in requests}
    return {vm: found.get(vm) for vm in vms}


def run_status(journal: str | Path, *, run_id: str | None = None) -> dict[str, Any]:
    """What the journal says about a run: per wave and per VM, state, phase, error, target, pending cleanup.

    Read-only: a damaged journal is an InputError naming it and the damage, and stays as it was.
    """
    with Journal(journal, create=False, read_only=True) as jr:
        record = jr.open_run(run_id)
        check_playbooks(jr.path, record.run_id, record.playbooks)
        plan = record.plan
        vm_states = jr.vm_states(record.run_id)
        wave_states = jr.wave_states(record.run_id)
        steps = jr.steps(record.run_id, "vm")
        capacity = {s.entity_id: s.outputs for s in jr.steps(record.run_id, "wave")
                    if s.step == "ensure_capacity" and s.status == "finished" and s.outputs}
        cycles = jr.cycles(record.run_id)
        requests = jr.requests(record.run_id, "cutover")
        tests = {vm: data for _, vm, _, data in jr.outcomes(record.run_id)}   # each VM's latest
    methods = {vm_id: get_method(wave.method) for wave in plan.waves for vm_id in wave.vms}
    targets: dict[str, str] = {}
    downtimes: dict[str, float] = {}
    finished: dict[str, set[str]] = {}
    for step in steps:
        method = methods.get(step.entity_id)
        target = method.target_in(step.step, step.outputs) if method and step.status == "finished" else None
        if target is not None:
            targets[step.entity_id] = target
        if method is not None and method.replicates and step.status == "finished" and step.outputs \
                and step.outputs.get("downtime_s") is not None:
            downtimes[step.entity_id] = float(step.outputs["downtime_s"])
        if step.status == "finished":
            finished.setdefault(step.entity_id, set()).add(step.step)
    vms = []
    for wave in plan.waves:
        for vm_id in wave.vms:
            state = vm_states.get(vm_id)
            vms.append({"id": vm_id, "name": plan.vm_index[vm_id].name, "wave": wave.id,
                        "state": state.state if state else "pending", "phase": state.phase if state else None,
                        "error": state.error if state else None, "target_id": targets.get(vm_id),
                        "pending_cleanup": cleanup_left(methods[vm_id].rollback, finished.get(vm_id, set()))
                        if state and state.state == "rolled_back" else []})
            if methods[vm_id].replicates:
                vms[-1]["replication"] = replication_status(
                    [c for c in cycles if c.vm == vm_id], downtimes.get(vm_id),
                    ("vm", vm_id) in requests or ("wave", str(wave.id)) in requests, tests.get(vm_id))
    waves = []
    for wave in plan.waves:
        counts: dict[str, int] = {}
        for vm in vms:
            if vm["wave"] == wave.id:
                counts[str(vm["state"])] = counts.get(str(vm["state"]), 0) + 1
        state = wave_states.get(wave.id)
        grown = capacity.get(str(wave.id), {})
        hosts = sum(len(v) for v in (grown.get("added"), grown.get("already_in_cluster")) if isinstance(v, list))
        waves.append({"id": wave.id, "name": wave.name, "method": wave.method,
                      "state": state.state if state else "pending", "vms": dict(sorted(counts.items())),
                      "hosts_added": hosts if grown.get("hosts_to_add") else 0})
    return {"run_id": record.run_id, "status": record.status, "plan_digest": record.plan_digest,
            "created_at": record.created_at, "updated_at": record.updated_at, "waves": waves, "vms": vms}
