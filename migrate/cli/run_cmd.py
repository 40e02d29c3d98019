"""`migrate run | resume | status | rollback`: execute a plan's waves, journaled, resumable, reversible."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from migrate.cli.methods_help import MethodsHelpCommand
from migrate.cli.output import Reporter, command_errors, json_option
from migrate.cli.worker_cmd import address_option, engine_option, namespace_option, temporal_engine
from migrate.core.errors import EXIT_OPERATIONAL, InputError, Problem

__all__ = ["resume", "rollback", "run", "status"]

DEFAULT_JOURNAL = "run.db"

journal_option = click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path),
                              default=DEFAULT_JOURNAL, show_default=True,
                              help="The run journal (SQLite). One journal can hold many runs.")
config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                             required=True, help="site.yaml: the source and target vCenters and the mappings.")
run_id_option = click.option("--run-id", help="A run of the journal (default: the latest).")


class PrecopyInterval(click.ParamType[float | str]):
    """Seconds between precopy cycles (1 to 43200), or `adaptive`."""

    name = "SECONDS|adaptive"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | str:
        if value == "adaptive":
            return "adaptive"
        try:
            seconds = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of seconds nor `adaptive`", param, ctx)
        if not 1 <= seconds <= 43200:
            self.fail(f"{seconds:g} s is outside 1 to 43200", param, ctx)
        return seconds


def _ids(text: str | None, option: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError.single(option, "", f"expected wave ids like 1,2 (got {text!r})") from None


def _settings(concurrency: int | None, per_host: int | None, per_datastore: int | None,
              per_cluster: int | None = None) -> Any:
    from migrate.engine.limits import Limits
    from migrate.engine.run_state import RunSettings

    limits = Limits()
    changes = {k: v for k, v in {"total": concurrency, "per_source_host": per_host, "per_datastore": per_datastore,
                                 "per_target_cluster": per_cluster}.items() if v is not None}
    return RunSettings(limits=limits.model_copy(update=changes))


_DONE = frozenset({"completed", "failed", "rolled_back", "skipped"})


@contextlib.contextmanager
def _progress(settings: Any, vms: int, as_json: bool) -> Iterator[tuple[Any, Any]]:
    """(settings, progress listener): the live view when stdout is a terminal (not --json), else `settings` with
    an observer advancing one bar on stderr (when it is a terminal) as VMs reach a final state."""
    from migrate.cli.live_view import live_board, use_live_view
    from migrate.progress import progress_bar

    if use_live_view(as_json):
        with live_board() as board:
            yield settings, board
        return
    with progress_bar(f"migrating {vms} VM(s)", vms) as advance:
        def observe(kind: str, entity: str, trigger: str, state: str) -> None:
            if kind == "vm" and state in _DONE:
                advance(1)
        yield dataclasses.replace(settings, observer=observe), None


def _render_result(data: dict[str, Any]) -> str:
    lines = [f"run {data['run_id']}: {data['status']} in {data['seconds']:.1f} s "
             f"({', '.join(f'{n} {s}' for s, n in data['vms'].items())})"]
    lines += [f"  wave {wave}: {state}" for wave, state in data["waves"].items()]
    names = data.get("names", {})
    for vm_id, error in data["failed"].items():
        lines.append(f"  failed: {names.get(vm_id, vm_id)} ({vm_id}): {error.get('message', error)}")
    if data.get("engine") == "temporal":
        lines.append(f"Temporal: workflow {data['workflow_id']} at {data['address']}  (migrate status --engine "
                     f"temporal --config SITE --run-id {data['run_id']})")
    else:
        lines.append(f"Journal: {data['journal']}  (migrate status --journal {data['journal']})")
    return "\n".join(lines)


def _finish(result: Any, journal: Path | None, names: dict[str, str], as_json: bool) -> None:
    data = {**(result if isinstance(result, dict) else result.to_dict()), "names": names}
    if journal is not None:
        data["journal"] = str(journal)
    Reporter(as_json).result(data, _render_result)
    if data["status"] in ("interrupted", "canceled", "detached"):
        raise SystemExit(130)
    if data["status"] != "completed":
        raise SystemExit(EXIT_OPERATIONAL)


def _render_actions(actions: list[dict[str, Any]]) -> str:
    lines = []
    for action in actions:
        where = f"wave {action['wave']}" + (f" vm {action['vm']}" if action.get("vm") else "")
        what = action.get("phase") or action.get("step") or action.get("trigger") or action.get("message") or ""
        extra = ""
        if action.get("action") == "transition":
            extra = f" {action.get('src')} -> {action.get('dst')}"
        if action.get("error"):
            extra += f"  FAILS: {action['error'].get('message')}"
        lines.append(f"{where}: {action['action']} {what}{extra}")
    return "\n".join(lines)


def _limit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--per-cluster", type=click.IntRange(min=1), help="VMs in flight per target cluster.")(func)
    func = click.option("--per-datastore", type=click.IntRange(min=1), help="VMs in flight per source datastore.")(func)
    func = click.option("--per-host", type=click.IntRange(min=1), help="VMs in flight per source host.")(func)
    return click.option("--concurrency", type=click.IntRange(min=1),
                        help="VMs in flight at once in a wave (default 8).")(func)


@click.command(cls=MethodsHelpCommand)
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@click.option("--inventory", "inventory_path", type=click.Path(dir_okay=False, path_type=Path),
              help="inventory.json (default: the one the plan was made from).")
@journal_option
@click.option("--waves", help="Run only these waves, e.g. 1,2 (default: all, in plan order).")
@click.option("--policy", type=click.Choice(["continue", "pause", "stop"]), default="continue", show_default=True,
              help="When a VM fails: continue the wave, pause it, or stop the run.")
@click.option("--playbook", "playbook_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A playbook to use instead of the built-in one of its method (migrate/playbooks/<method>.yaml).")
@click.option("--dry-run", is_flag=True, help="List every action in order, run the read-only prechecks, change "
                                              "nothing. Stable output: diff two dry-runs.")
@click.option("--no-prechecks", is_flag=True, help="With --dry-run: do not contact the vCenters at all.")
@click.option("--capacity/--no-capacity", default=True, show_default=True,
              help="Before each wave's prechecks, add bare-metal hosts to the target cluster if the wave does not "
                   "fit (site.yaml `capacity`: host type, provisioner, N+1).")
@_limit_options
@click.option("--precopy-interval", type=PrecopyInterval(), help="Waves that replicate (warm): seconds between two "
              "precopy cycles (1 to 43200), or `adaptive` (after min(max(1 h, last cycle / 2), 12 h)). Default: "
              "the plan's, else 3600.")
@click.option("--run-id", help="Id for the new run (default: generated). With --engine temporal, the id of a run "
                                "still going re-attaches to it.")
@engine_option("local: this process runs the waves, journaled in --journal. temporal: `migrate worker` "
              "processes run them (site.yaml `engine`), this process follows.")
@address_option
@namespace_option
@json_option
@command_errors
def run(plan_path: Path, config_path: Path, inventory_path: Path | None, journal_path: Path, waves: str | None,
        policy: str, playbook_path: Path | None, dry_run: bool, no_prechecks: bool, capacity: bool,
        concurrency: int | None,
        per_host: int | None, per_datastore: int | None, per_cluster: int | None, precopy_interval: float | str | None,
        run_id: str | None, engine: str, address: str | None, namespace: str | None, as_json: bool) -> None:
    """Run a plan's waves: prechecks, cutover, verification, per VM, journaled.

    Each wave runs its method's phases per VM (the method's built-in playbook, or --playbook), with
    the limits per wave, source host, datastore and target cluster; before a wave's prechecks the
    target cluster grows if the wave does not fit (site.yaml `capacity`, unless --no-capacity).
    On a terminal a live view shows each wave and the VMs in flight (phase, bytes, rate, ETA).

    Kill it at any point and `migrate resume` continues without creating any VM twice. With --engine
    temporal the run lives in Temporal: kill this process and run the same command with --run-id to follow
    it again; Ctrl-C once starts nothing new, twice stops following (the run goes on).
    Exit codes: 0 all VMs completed, 1 some failed (see `migrate status`), 2 bad input, 130 interrupted.
    """
    from migrate import run as api
    from migrate.engine.timing import CancelToken, handle_sigint

    if no_prechecks and not dry_run:
        raise InputError.single("--no-prechecks", "", "only with --dry-run")
    plan, site = api.load_run_plan(plan_path, config_path, inventory=inventory_path, waves=_ids(waves, "--waves"),
                                   policy=policy)  # type: ignore[arg-type]
    plan = api.with_precopy_interval(plan, precopy_interval)
    if dry_run:
        actions = api.dry_run(plan, site, playbook=playbook_path, prechecks=not no_prechecks, capacity=capacity)
        Reporter(as_json).result(actions, _render_actions)
        return
    names = {vm.id: vm.name for vm in plan.vms}
    settings = _settings(concurrency, per_host, per_datastore, per_cluster)
    if engine == "temporal":
        _finish(_run_on_temporal(plan, site, playbook_path, settings, run_id, capacity, address, namespace, as_json),
                None, names, as_json)
        return
    if journal_path.exists() and run_id is None:
        from migrate.engine.journal import Journal

        with Journal(journal_path, create=False) as jr:
            unfinished = [r.run_id for r in jr.runs() if r.status in ("running", "interrupted", "canceled", "paused")]
        if unfinished:
            raise InputError([Problem(str(journal_path), "runs", f"run {unfinished[-1]} is not finished: "
                                      "`migrate resume` it, `migrate rollback` it, or use another --journal")])
    cancel = CancelToken()
    with handle_sigint(cancel), _progress(settings, len(plan.vms), as_json) as (settings, listener):
        result = api.start_run(plan, site, journal_path, playbook=playbook_path, settings=settings, cancel=cancel,
                               run_id=run_id, capacity=capacity, progress=listener)
    _finish(result, journal_path, names, as_json)


def _run_on_temporal(plan: Any, site: Any, playbook: Path | None, settings: Any, run_id: str | None, capacity: bool,
                     address: str | None, namespace: str | None, as_json: bool) -> dict[str, Any]:
    """Run the plan on Temporal, a bar on stderr (a terminal) counting the VMs done."""
    from migrate.engine.timing import CancelToken, handle_sigint
    from migrate.progress import progress_bar
    from migrate.temporal.run import engine_of, run_on_temporal

    engine = engine_of(site, address=address, namespace=namespace)
    cancel = CancelToken()
    with handle_sigint(cancel), progress_bar(f"migrating {len(plan.vms)} VM(s) on Temporal", len(plan.vms)) as bar:
        shown = [0]

        def on_done(count: int) -> None:
            if count > shown[0]:
                bar(count - shown[0])
                shown[0] = count

        return run_on_temporal(plan, site, engine=engine, playbook=playbook, settings=settings, run_id=run_id,
                               capacity=capacity, cancel=cancel, on_done=on_done)


@click.command()
@config_option
@journal_option
@run_id_option
@click.option("--retry-failed", is_flag=True,
              help="Also retry failed VMs from their failed phase (phases they finished are kept).")
@click.option("--vm", "vms", multiple=True, help="With --retry-failed: only this VM (instanceUuid or name); "
                                                 "repeatable.")
@click.option("--wave", "waves", multiple=True, type=int, help="With --retry-failed: only the failed VMs of this "
                                                                "wave; repeatable.")
@click.option("--capacity/--no-capacity", default=True, show_default=True,
              help="Grow the target cluster before waves that have not started yet.")
@_limit_options
@engine_option("temporal: resume an ended run of `migrate run --engine temporal` (--run-id) as a new execution of "
              "its workflow.")
@address_option
@namespace_option
@json_option
@command_errors
def resume(config_path: Path, journal_path: Path, run_id: str | None, retry_failed: bool, vms: tuple[str, ...],
           waves: tuple[int, ...], capacity: bool, concurrency: int | None,
           per_host: int | None, per_datastore: int | None, per_cluster: int | None, engine: str,
           address: str | None, namespace: str | None, as_json: bool) -> None:
    """Continue an interrupted run from its journal (after a crash, Ctrl-C, a pause, a window or a fault).

    Every phase first checks whether its effect already exists, so nothing is done twice. A wave that failed
    before any of its VMs started (its capacity step or a pre-hook) starts again; failed VMs are retried
    only with --retry-failed (`migrate status` marks the failures worth retrying).
    """
    from migrate import run as api
    from migrate.config import load_site_config
    from migrate.engine.run_state import RetryScope
    from migrate.engine.timing import CancelToken, handle_sigint

    if (vms or waves) and not retry_failed:
        raise InputError.single("--vm" if vms else "--wave", "", "only with --retry-failed")
    site = load_site_config(config_path)
    if engine == "temporal":
        _finish(_resume_on_temporal(site, run_id, retry_failed, vms, waves, address, namespace), None, {}, as_json)
        return
    before = api.run_status(journal_path, run_id=run_id)
    scope = RetryScope(vms=frozenset(_vm_ids(vms, before["vms"])) if vms else None,
                       waves=frozenset(waves) if waves else None) if retry_failed else None
    left = sum(1 for vm in before["vms"] if vm["state"] not in _DONE or (
        scope is not None and vm["state"] in ("failed", "skipped") and (scope.vms is None or vm["id"] in scope.vms)
        and (scope.waves is None or vm["wave"] in scope.waves)))
    cancel = CancelToken()
    with handle_sigint(cancel), _progress(_settings(concurrency, per_host, per_datastore, per_cluster),
                                          left, as_json) as (settings, listener):
        result = api.resume_run(site, journal_path, run_id=run_id, retry_failed=scope or False, settings=settings,
                                cancel=cancel, capacity=capacity, progress=listener)
    names = {vm["id"]: vm["name"] for vm in api.run_status(journal_path, run_id=result.run_id)["vms"]}
    _finish(result, journal_path, names, as_json)


def _resume_on_temporal(site: Any, run_id: str | None, retry_failed: bool, vms: tuple[str, ...],
                        waves: tuple[int, ...], address: str | None, namespace: str | None) -> dict[str, Any]:
    """Resume an ended Temporal run (its failed VMs too with --retry-failed) and follow it to its end."""
    from migrate.engine.run_state import RetryScope
    from migrate.engine.timing import CancelToken, handle_sigint
    from migrate.temporal.client import start_temporal_run
    from migrate.temporal.run import engine_of
    from migrate.temporal.run_view import resume_input, temporal_status

    if run_id is None:
        raise InputError.single("--run-id", "", "name the Temporal run to resume")
    engine = engine_of(site, address=address, namespace=namespace)
    run_vms = temporal_status(engine, run_id)["vms"]
    scope = RetryScope(vms=frozenset(_vm_ids(vms, run_vms)) if vms else None,
                       waves=frozenset(waves) if waves else None) if retry_failed else None
    cancel = CancelToken()
    with handle_sigint(cancel):
        return start_temporal_run(engine, resume_input(engine, run_id, scope), cancel=cancel, resume=True)


def _vm_ids(refs: tuple[str, ...], run_vms: list[dict[str, Any]]) -> list[str]:
    """VM ids for `--vm` values (id or name); a name two VMs of the run share is bad input."""
    ids: dict[str, list[str]] = {}
    for vm in run_vms:
        ids.setdefault(vm["name"], []).append(vm["id"])
    problems = [Problem("--vm", ref, f"{len(ids[ref])} VMs of the run are called {ref!r}: give the instanceUuid")
                for ref in refs if len(ids.get(ref, [])) > 1]
    if problems:
        raise InputError(problems)
    return [ids[ref][0] if ref in ids else ref for ref in refs]


def _replication_detail(rep: dict[str, Any]) -> str:
    """Cycles, bytes of the last one and its duration, then the projected or measured downtime."""
    if not rep["cycles"]:
        return "  replication starting"
    text = (f"  {rep['cycles']} cycle(s), last {rep['bytes_per_cycle'][-1] / 2**20:.1f} MiB in "
            f"{rep['last_cycle_s']:.1f} s")
    if rep["downtime_s"] is not None:
        return text + f", downtime {rep['downtime_s']:.1f} s"
    if rep["projected_downtime_s"] is not None:
        text += f", cutover now ~{rep['projected_downtime_s']:.1f} s of copy"
    test = rep.get("last_test")
    if test and test.get("kind") == "test":
        text += f", test {'passed' if test.get('ok') else 'failed'}" + (f" ({test['test_vm']})" if test.get("test_vm")
                                                                        else "")
    return text + (", cutover requested" if rep["cutover_requested"] else "")


def _render_status(data: dict[str, Any]) -> str:
    lines = [f"run {data['run_id']}: {data['status']}"]
    for wave in data["waves"]:
        counts = ", ".join(f"{n} {s}" for s, n in wave["vms"].items())
        grown = f", {wave['hosts_added']} host(s) added first" if wave.get("hosts_added") else ""
        lines.append(f"  wave {wave['id']} {wave['name']} ({wave['method']}): {wave['state']}  [{counts}]{grown}")
    retryable = 0
    for vm in data["vms"]:
        detail = vm["phase"] or ""
        if vm["error"]:
            again = vm["state"] == "failed" and bool(vm["error"].get("retryable"))
            retryable += again
            detail += f"  error{' (retryable)' if again else ''}: {vm['error'].get('message')}"
        if vm["pending_cleanup"]:
            detail += f"  cleanup pending: {', '.join(vm['pending_cleanup'])}"
        if vm.get("replication"):
            detail += _replication_detail(vm["replication"])
        target = f" -> {vm['target_id']}" if vm["target_id"] else ""
        lines.append(f"    {vm['name']:<28} {vm['state']:<13}{target} {detail}".rstrip())
    failed = sum(1 for vm in data["vms"] if vm["state"] == "failed")
    if failed:
        lines.append(f"{failed} VM(s) failed, {retryable} of them on a fault worth retrying (a dropped connection, "
                     "throttling, a busy object): `migrate resume --retry-failed [--vm NAME] [--wave N]` takes them "
                     "again from their failed phase")
    return "\n".join(lines)


@click.command()
@journal_option
@run_id_option
@click.option("--watch", is_flag=True, help="Follow the run until it is no longer running (or Ctrl-C): on a "
                                            "terminal a live view of its waves and VMs in flight; piped or with "
                                            "--json, the status once it has ended.")
@click.option("--interval", type=click.FloatRange(min=0.1), help="With --watch: seconds between two reads of the "
                                                                  "journal (default 1).")
@engine_option("temporal: read a run of `migrate run --engine temporal` from its workflows (--config or "
              "--address names the Temporal).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="With --engine temporal: site.yaml, for its `engine` section.")
@address_option
@namespace_option
@json_option
@command_errors
def status(journal_path: Path, run_id: str | None, watch: bool, interval: float | None, engine: str,
           config_path: Path | None, address: str | None, namespace: str | None, as_json: bool) -> None:
    """Show a run from its journal: each wave, each VM's state, phase, error, target VM, pending cleanup.

    The journal is only read, also with --watch, so it is safe while the run goes on in another process.
    With --engine temporal the same model comes from the run's workflows (their history and queries).
    """
    from migrate import run as api
    from migrate.cli.live_view import follow, live_board, use_live_view

    if interval is not None and not watch:
        raise InputError.single("command line", "--interval", "only with --watch")
    if engine == "temporal":
        if watch:
            raise InputError.single("command line", "--watch", "not with --engine temporal yet")
        Reporter(as_json).result(_temporal_status(config_path, address, namespace, run_id), _render_status)
        return
    if watch:
        if use_live_view(as_json):
            with live_board() as board:
                follow(journal_path, run_id, interval or 1.0, board)
            return
        run_id = follow(journal_path, run_id, interval or 1.0, lambda _event: None)
    Reporter(as_json).result(api.run_status(journal_path, run_id=run_id), _render_status)


def _temporal_status(config_path: Path | None, address: str | None, namespace: str | None,
                     run_id: str | None) -> dict[str, Any]:
    from migrate.temporal.run_view import temporal_status

    return temporal_status(temporal_engine(config_path, address, namespace), run_id)


def _render_rollback(data: dict[str, Any]) -> str:
    lines = [f"run {data['run_id']}: rolled back {len(data['rolled_back'])} VM(s)"]
    lines += [f"  cleanup pending on the target for {vm}: {', '.join(steps)} (run rollback again when it is "
              "reachable)" for vm, steps in data["pending_cleanup"].items()]
    lines += [f"  failed: {vm}: {error.get('message')}" for vm, error in data["failed"].items()]
    lines += [f"  not rolled back: {vm}: {why}" for vm, why in data["not_applicable"].items()]
    if data["hosts_released"]:
        hosts = data["hosts_released"]
        lines.append(f"  released {len(hosts)} bare-metal host(s) the run had added: {', '.join(hosts)}")
    return "\n".join(lines)


@click.command()
@config_option
@journal_option
@run_id_option
@click.option("--vm", "vms", multiple=True, help="A VM (instanceUuid or name) to roll back; repeatable.")
@click.option("--wave", "waves", multiple=True, type=int, help="A wave to roll back; repeatable.")
@click.option("--keep-hosts", is_flag=True, help="After a whole-run rollback, keep the bare-metal hosts the run "
                                                 "added (default: take them out of the cluster and release them).")
@engine_option("temporal: a run of `migrate run --engine temporal` (ended): it is first copied into --journal, "
              "where the rollback is journaled.")
@address_option
@namespace_option
@json_option
@command_errors
def rollback(config_path: Path, journal_path: Path, run_id: str | None, vms: tuple[str, ...],
             waves: tuple[int, ...], keep_hosts: bool, engine: str, address: str | None, namespace: str | None,
             as_json: bool) -> None:
    """Undo a run for some VMs, some waves, or all of it (before or after cutover).

    Removes the target VM and the copied disk files, restores the source's name and power state. If the
    target is unreachable the source is restored (left off) and the cleanup stays pending in the journal.
    """
    from migrate import run as api
    from migrate.config import load_site_config

    site = load_site_config(config_path)
    if engine == "temporal":
        from migrate.temporal.run import engine_of
        from migrate.temporal.run_view import import_run

        if run_id is None:
            raise InputError.single("--run-id", "", "name the Temporal run to roll back")
        import_run(engine_of(site, address=address, namespace=namespace), run_id, journal_path)
    ids = _vm_ids(vms, api.run_status(journal_path, run_id=run_id)["vms"])
    result = api.rollback_run(site, journal_path, run_id=run_id, vms=ids or None, waves=list(waves) or None,
                              release_hosts=not keep_hosts)
    Reporter(as_json).result(result.to_dict(), _render_rollback)
    if not result.ok:
        raise SystemExit(EXIT_OPERATIONAL)
