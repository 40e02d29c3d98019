"""`migrate test`: test copies of replicating VMs (a VM started from the latest replica on isolated networks)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.cli.run_cmd import journal_option, run_id_option
from migrate.core.errors import EXIT_OPERATIONAL

__all__ = ["test_command"]


def _render(data: dict[str, Any]) -> str:
    if not data["running"]:
        return (f"run {data['run_id']}: {data['kind']} asked for {len(data['vms'])} VM(s); the run is not running: "
                "it happens when `migrate resume` continues it (between two replication cycles)")
    lines = [f"run {data['run_id']}: {data['kind']}"]
    for vm, outcome in data["outcomes"].items():
        if outcome is None:
            lines.append(f"  {vm}: not done yet (see `migrate status`)")
        elif data["kind"] == "test_cleanup":
            lines.append(f"  {vm}: removed {', '.join(outcome.get('removed') or []) or 'nothing'}")
        elif outcome.get("error"):
            lines.append(f"  {vm}: failed: {outcome['error']}")
        else:
            failed = [c for c in outcome.get("checks", []) if not c["ok"]]
            verdict = "passed" if outcome["ok"] else "failed"
            lines.append(f"  {vm}: test VM {outcome['test_vm']} ({outcome['power_state']}) from cycle "
                         f"{outcome['cycle']}: {len(outcome.get('checks', []))} check(s) {verdict}"
                         + "".join(f"\n    {c['kind']} #{c['hook']}: {c['error']}" for c in failed))
    return "\n".join(lines)


@click.command("test")
@journal_option
@run_id_option
@click.option("--wave", "waves", multiple=True, type=int, help="Test every replicating VM of this wave; repeatable.")
@click.option("--vm", "vms", multiple=True, help="Test this VM (instanceUuid or name); repeatable.")
@click.option("--cleanup", is_flag=True, help="Remove the test copies instead (rollback removes them too).")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds to wait for the running run to do it (0: only ask).")
@json_option
@command_errors
def test_command(journal_path: Path, run_id: str | None, waves: tuple[int, ...], vms: tuple[str, ...], cleanup: bool,
                 wait_s: float, as_json: bool) -> None:
    """Start a test copy of replicating (warm) VMs, leaving the sources running and replication going on.

    Between two replication cycles the run copies each VM's latest replica, creates a VM on it with the
    networks of site.yaml `mappings.test_networks` (an isolated segment) and new MACs, powers it on and
    runs the playbook's VM post hooks (health checks) against it; for `warm_replatform` it registers an
    AMI from the latest cycle and launches `<name>-test` in `replatformer.test_networks`. The result is
    journaled and shown here and by `migrate status`. A test copy is never taken for the migrated VM; a
    new test replaces the last, `--cleanup` removes it, and so does rollback. Exit 1 if a test failed or
    did not finish in --wait.
    """
    from migrate import run as api

    asked = api.request_test(journal_path, waves=waves, vms=vms, cleanup=cleanup, run_id=run_id)
    outcomes: dict[str, Any] = dict.fromkeys(asked["vms"])
    deadline = time.monotonic() + wait_s
    while asked["running"] and wait_s and None in outcomes.values() and time.monotonic() < deadline:
        time.sleep(1.0)
        outcomes = api.outcomes_of_tests(journal_path, asked["run_id"], asked["requests"], asked["vms"])
    data = {**asked, "outcomes": outcomes}
    Reporter(as_json).result(data, _render)
    failed = any(o is None or o.get("ok") is False for o in outcomes.values()) if asked["running"] and wait_s else False
    if failed:
        raise SystemExit(EXIT_OPERATIONAL)
