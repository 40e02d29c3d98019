"""`migrate discover`: the source vCenter into inventory.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migrate.cli.check_cmd import config_option
from migrate.cli.output import Reporter, command_errors, json_option

__all__ = ["discover_command"]


@click.command("discover")
@config_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("inventory.json"),
              show_default=True, help="Where to write the inventory (atomically).")
@click.option("--since", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A previous inventory of the same vCenter(s): re-read in full only VMs that changed "
                   "(same result as a full scan, a fraction of the time); with several sources, each against "
                   "its own part.")
@click.option("--utilisation/--no-utilisation", default=True, show_default=True,
              help="Collect CPU/memory averages of powered-on VMs from the performance manager.")
@click.option("--window", "window_s", type=click.IntRange(20, 31 * 86400), default=3600, show_default=True,
              help="Utilisation window in seconds.")
@json_option
@command_errors
def discover_command(config_path: Path, out: Path, since: Path | None, utilisation: bool, window_s: int,
                     as_json: bool) -> None:
    """Read VMs, hosts, clusters (DRS rules), datastores, networks, vApps, tags and utilisation.

    With several sources (site.yaml `sources:`), reads them in parallel into one inventory, each VM
    naming its vCenter in `source`.

    Read-only. Uses the PropertyCollector in parallel chunks; --since makes a re-scan cost a
    fraction of a full one: only VMs that events name, new VMs and VMs whose configuration moved are
    read again; the others keep their previous record, refreshed where their name, guest facts,
    custom attributes, snapshots, placement or tags moved. The result equals a full scan.
    """
    from migrate.discovery import discover, inventory_summary
    from migrate.progress import progress_status

    with progress_status("discovering") as update:
        inventory, stats = discover(config_path, out=out, since=since, utilisation=utilisation, window_s=window_s,
                                    progress=update)
    data = {"inventory": str(out), "summary": inventory_summary(inventory), "stats": stats}

    def human(d: dict[str, Any]) -> str:
        s, st = d["summary"], d["stats"]
        mode = (f"incremental: {st['full_reads']} VMs re-read, {st['light_reads'] - st['full_reads']} unchanged"
                if st["incremental"] else "full scan")
        lines = [
            f"Discovered {s['vms']} VMs ({s['powered_on']} on, {s['powered_off']} off, {s['templates']} templates) "
            f"from {s['source']} in {st['elapsed']:.1f} s ({mode})",
            f"  {s['vcpus']} vCPU, {s['memory_gib']} GiB memory, {s['storage_gib']} GiB in {s['disks']} disks",
            f"  {s['hosts']} hosts, {s['clusters']} clusters ({s['drs_rules']} DRS rules), "
            f"{s['datastores']} datastores, {s['networks']} networks, {s['vapps']} vApps",
            f"  {s['tagged_vms']} VMs tagged, {s['with_utilisation']} with utilisation",
        ]
        lines += [f"  source {name}: {part['vms']} VMs in {part['elapsed']:.1f} s ({part['mode']})"
                  for name, part in st.get("sources", {}).items()]
        lines.append(f"Wrote {d['inventory']}")
        lines += [f"warning: {w}" for w in st["warnings"]]
        return "\n".join(lines)

    Reporter(as_json).result(data, human)
