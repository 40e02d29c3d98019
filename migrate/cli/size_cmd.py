"""`migrate size` (bare-metal hosts per wave, EC2 right-sizing) and `migrate instance-types fetch`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.core.errors import InputError, Problem

if TYPE_CHECKING:
    from migrate.core.models.inventory import Inventory
    from planners.instance_types import InstanceType

__all__ = ["instance_types_group", "read_plan_waves", "render_sizing", "size"]

CLI = "command line"
_OPTION_OF = {"vcpu_per_core": "--ratio", "memory_max_util": "--max-util", "storage_usable_fraction": "--storage-util",
              "dedup_ratio": "--dedup", "vsan_policy": "--policy", "spare_hosts": "--spare"}
_path = click.Path(dir_okay=False, path_type=Path)


def read_plan_waves(path: Path, inventory: Inventory, *, on_cluster: bool = False) -> list[tuple[str, list[str]]]:
    """(wave id, VM ids) from plan.yaml, read leniently: only `waves[].id`, `waves[].vms` and `waves[].method`
    matter. With `on_cluster`, the waves whose method moves VMs off vCenter (replatform, warm_replatform: they
    never land on the cloud cluster) keep no VMs.

    A VM entry is an id string or a mapping with an `id`. InputError lists every VM not in the
    inventory, every VM in two waves, every unknown method and every malformed wave.
    """
    from migrate.core.fileio import load_yaml_mapping
    from migrate.engine.methods import get_method

    file = str(path)
    doc = load_yaml_mapping(path)
    waves = doc.get("waves")
    if not isinstance(waves, list):
        raise InputError.single(file, "waves", "must be a list of waves, each with `id` and `vms`")
    known = inventory.vm_by_id()
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    out: list[tuple[str, list[str]]] = []
    for i, wave in enumerate(waves):
        if not isinstance(wave, dict):
            problems.append(Problem(file, f"waves[{i}]", "must be a mapping with `id` and `vms`"))
            continue
        wave_id = str(wave.get("id", i + 1))
        vms = wave.get("vms")
        if not isinstance(vms, list):
            problems.append(Problem(file, f"waves[{i}].vms", "must be a list of VM ids"))
            continue
        ids: list[str] = []
        for j, entry in enumerate(vms):
            vm_id = entry.get("id") if isinstance(entry, dict) else entry
            where = f"waves[{i}].vms[{j}]"
            if not isinstance(vm_id, str) or not vm_id:
                problems.append(Problem(file, where, "must be a VM id (string) or a mapping with `id`"))
            elif vm_id not in known:
                problems.append(Problem(file, where, f"VM {vm_id!r} is not in the inventory"))
            elif vm_id in seen:
                problems.append(Problem(file, where, f"VM {vm_id!r} ({known[vm_id].name}) is already in wave "
                                                     f"{seen[vm_id]}"))
            else:
                seen[vm_id] = wave_id
                ids.append(vm_id)
        try:
            method = get_method(str(wave.get("method", "cold")), file=file, field_name=f"waves[{i}].method")
            leaves = on_cluster and not method.grows_cluster
        except InputError as exc:
            problems.extend(exc.problems)
            leaves = False
        out.append((wave_id, [] if leaves else ids))
    if problems:
        raise InputError(problems)
    return out


def _option_problems(config_path: Path | None, types_path: Path | None, existing_hosts: int, headroom: float,
                     policy_values: dict[str, Any]) -> list[Problem]:
    from planners.rightsizing import MAX_HEADROOM
    from planners.sizing import policy_problems

    problems = [Problem(CLI, _OPTION_OF[name], message) for name, message in policy_problems(**policy_values)]
    if (config_path is None) == (types_path is None):
        problems.append(Problem(CLI, "--config/--instance-types",
                                "give exactly one: --config to ask the EC2 API, or --instance-types FILE"))
    if existing_hosts < 0:
        problems.append(Problem(CLI, "--existing-hosts", f"must be >= 0, got {existing_hosts}"))
    if not 0 <= headroom <= MAX_HEADROOM:
        problems.append(Problem(CLI, "--headroom", f"must be from 0 to {MAX_HEADROOM:g}, got {headroom:g}"))
    return problems


def _fetch_from_config(config_path: Path, host_type: str, everything: bool) -> tuple[list[InstanceType], str]:
    """Instance types from the EC2 API named by site.yaml: current generation, plus the host type."""
    from adapters.aws.instance_types import fetch_instance_types  # boto3 loads when asked, not with the CLI
    from adapters.aws.settings import aws_settings
    from migrate.config import load_site_config
    from planners.instance_types import InstanceType

    config = load_site_config(config_path)
    aws = aws_settings(config.replatformer, str(config_path))
    records = fetch_instance_types(aws) if everything else []
    if not any(r["name"] == host_type for r in records):
        try:
            records += fetch_instance_types(aws, [host_type])
        except InputError:
            if not records:   # list what exists, so the error can say so
                records = fetch_instance_types(aws)
    source = f"EC2 {aws.region}" + (f" at {aws.endpoint_url}" if aws.endpoint_url else "")
    return [InstanceType.model_validate(r) for r in records], source


@click.command()
@click.option("--inventory", "inventory_path", type=_path, required=True, help="inventory.json to size.")
@click.option("--plan", "plan_path", type=_path, help="plan.yaml: size per wave and cumulative (waves[].id, vms).")
@click.option("--config", "config_path", type=_path, help="site.yaml: fetch instance types from its EC2 endpoint.")
@click.option("--instance-types", "types_path", type=_path,
              help="instance-types.json from `migrate instance-types fetch` (offline).")
@click.option("--host-type", default="i4i.metal", show_default=True, help="Bare-metal instance type of the hosts.")
@click.option("--ratio", type=float, default=4.0, show_default=True, help="vCPUs per physical core.")
@click.option("--policy", "vsan_policy", default="raid1-ftt1", show_default=True,
              help="vSAN policy: raid1-ftt1, raid1-ftt2, raid5-ftt1 or raid6-ftt2.")
@click.option("--max-util", type=float, default=0.7, show_default=True, help="Highest memory utilisation per host.")
@click.option("--storage-util", type=float, default=0.7, show_default=True,
              help="Usable fraction of raw vSAN capacity (slack for rebuilds).")
@click.option("--dedup", type=float, default=1.0, show_default=True, help="Dedup/compression ratio (1.0 = none).")
@click.option("--spare", type=int, default=1, show_default=True, help="Spare hosts for host failure (N+1).")
@click.option("--existing-hosts", type=int, default=0, show_default=True, help="Hosts the cluster already has.")
@click.option("--rightsize", is_flag=True, help="Also pick an EC2 instance type per VM.")
@click.option("--rightsize-mode", type=click.Choice(["utilisation", "configured"]), default="utilisation",
              show_default=True, help="Right-size from observed utilisation or from the configured size.")
@click.option("--headroom", type=float, default=0.2, show_default=True,
              help="Right-sizing margin over observed average utilisation.")
@json_option
@command_errors
def size(inventory_path: Path, plan_path: Path | None, config_path: Path | None, types_path: Path | None,
         host_type: str, ratio: float, vsan_policy: str, max_util: float, storage_util: float, dedup: float,
         spare: int, existing_hosts: int, rightsize: bool, rightsize_mode: str, headroom: float,
         as_json: bool) -> None:
    """Size the cloud cluster's bare-metal hosts (per wave with --plan) and right-size VMs for EC2."""
    from migrate.inventory import load_inventory
    from planners.instance_types import find_instance_type, load_instance_types
    from planners.rightsizing import rightsize as pick_types
    from planners.sizing import SizingPolicy, VmSize, host_problems, size_waves

    values: dict[str, Any] = {"vcpu_per_core": ratio, "memory_max_util": max_util,
                              "storage_usable_fraction": storage_util, "dedup_ratio": dedup,
                              "vsan_policy": vsan_policy, "spare_hosts": spare}
    problems = _option_problems(config_path, types_path, existing_hosts, headroom, values)
    inventory = None
    try:
        inventory = load_inventory(inventory_path)
    except InputError as exc:
        problems.extend(exc.problems)
    waves: list[tuple[str, list[str]]] = []
    sized_waves: list[tuple[str, list[str]]] = []
    if plan_path is not None and inventory is not None:
        try:
            waves = read_plan_waves(plan_path, inventory)
            sized_waves = read_plan_waves(plan_path, inventory, on_cluster=True)
        except InputError as exc:
            problems.extend(exc.problems)
    types: list[InstanceType] = []
    source = ""
    if types_path is not None and config_path is None:
        try:
            types, source = load_instance_types(types_path).instance_types, str(types_path)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    assert inventory is not None
    if config_path is not None:
        types, source = _fetch_from_config(config_path, host_type, everything=rightsize)
    host = find_instance_type(types, host_type, source=source, field="--host-type")
    unusable = host_problems(host)
    if unusable:
        # the type as its source describes it: name the instance-types file when it came from one
        raise InputError([Problem(source if types_path else CLI, "--host-type", message) for message in unusable])

    by_id = inventory.vm_by_id()
    if plan_path is None:
        waves = sized_waves = [("all", [vm.id for vm in inventory.vms])]

    def vm_size(vm_id: str) -> VmSize:
        found = VmSize.from_vm(by_id[vm_id])
        # a template never runs: it needs datastore space but no CPU or memory
        return VmSize(found.id, 0, 0, found.storage_gb, found.name) if by_id[vm_id].template else found

    policy = SizingPolicy(**values)
    sized = size_waves([[vm_size(i) for i in ids] for _, ids in sized_waves], host, policy, existing_hosts,
                       wave_ids=[wave_id for wave_id, _ in sized_waves])
    in_scope = [vm_id for _, ids in waves for vm_id in ids]   # right-sizing: every VM of the plan
    off_cluster = len(in_scope) - sum(len(ids) for _, ids in sized_waves)
    data: dict[str, Any] = {
        "instance_types_source": source,
        "host_type": host.model_dump(mode="json"),
        "policy": {**values, "vsan_factor": round(policy.vsan.factor, 4), "vsan_min_hosts": policy.vsan.min_hosts,
                   "vsan_description": policy.vsan.description},
        "existing_hosts": existing_hosts,
        "waves": [w.to_dict() for w in sized],
        "hosts": sized[-1].hosts_after if sized else existing_hosts,
        "vms_sized": len(in_scope) - off_cluster,
        "vms_off_cluster": off_cluster,   # in waves that re-platform them to EC2: not on the cluster
        "vms_not_in_plan": len(by_id) - len(in_scope),
    }
    if rightsize:
        candidates = [by_id[i] for i in in_scope if not by_id[i].template]
        picks = pick_types(candidates, types, mode="configured" if rightsize_mode == "configured" else "utilisation",
                           headroom=headroom)
        data["rightsizing"] = [p.to_dict() for p in picks]
    Reporter(as_json).result(data, render_sizing)


def render_sizing(data: dict[str, Any]) -> str:
    """The sizing as a short table for people, with the formulas of the final cluster."""
    host, pol = data["host_type"], data["policy"]
    disks = ", ".join(f"{d['count']} x {d['size_gb']} GB {d['type'] or ''}".rstrip() for d in host["storage_disks"])
    lines = [
        f"host type {host['name']} ({data['instance_types_source']}): {host['default_cores']} cores, "
        f"{host['memory_mib'] // 1024} GiB, {host['instance_storage_gb']} GB instance storage ({disks}), "
        f"{host['network_performance']}",
        f"policy {pol['vsan_policy']} (x{pol['vsan_factor']:.2f}, at least {pol['vsan_min_hosts']} hosts), "
        f"{pol['vcpu_per_core']:g} vCPU/core, memory <= {pol['memory_max_util']:.0%}, "
        f"vSAN <= {pol['storage_usable_fraction']:.0%} used, dedup {pol['dedup_ratio']:g}, "
        f"{pol['spare_hosts']} spare; existing hosts {data['existing_hosts']}",
        f"{'wave':<12} {'VMs':>5} {'total':>6} {'needed':>6} {'add':>4} {'cluster':>7}  {'binding':<14}  cpu  mem vSAN",
    ]
    for wave in data["waves"]:
        s = wave["sizing"]
        use = s["utilisation"]
        lines.append(f"{wave['wave_id'][:12]:<12} {wave['vms']:>5} {wave['vms_cumulative']:>6} {s['hosts']:>6} "
                     f"{wave['hosts_to_add']:>4} {wave['hosts_after']:>7}  {s['binding']:<14} "
                     f"{use.get('cpu', 0):>4.0%} {use.get('memory', 0):>4.0%} {use.get('storage', 0):>4.0%}")
    if data["waves"]:
        lines.append("after the last wave:")
        lines += [f"  {line}" for line in data["waves"][-1]["sizing"]["explanation"]]
    lines.append(f"cluster: {data['hosts']} x {host['name']} for {data['vms_sized']} VMs"
                 + (f" ({data['vms_not_in_plan']} inventory VMs in no wave)" if data["vms_not_in_plan"] else "")
                 + (f"; {data['vms_off_cluster']} VMs re-platformed to EC2 are not on it"
                    if data.get("vms_off_cluster") else ""))
    for pick in data.get("rightsizing", []):
        req = pick["requirement"]
        chosen = (f"{pick['instance_type']} ({pick['vcpus']} vCPU, {pick['memory_mib']} MiB)"
                  if pick["instance_type"] else "NO FIT")
        conf = pick["configured"]
        lines.append(f"  {pick['vm_name'][:28]:<28} {conf['vcpus']:>3} vCPU {conf['memory_mb']:>7} MiB -> needs "
                     f"{req['vcpus']:>3} vCPU {req['memory_mib']:>7} MiB {req['architecture']:<6} -> {chosen}")
    if data.get("rightsizing"):
        lines.insert(len(lines) - len(data["rightsizing"]), "EC2 right-sizing (see --json for why):")
    return "\n".join(lines)


@click.group("instance-types")
def instance_types_group() -> None:
    """EC2 instance-type specs for sizing and right-sizing, kept in a file so planning works offline."""


@instance_types_group.command("fetch")
@click.option("--config", "config_path", type=_path, default=Path("site.yaml"), show_default=True,
              help="Site configuration file; its `replatformer` section (driver aws) names the region and endpoint.")
@click.option("--out", "out", type=_path, default=Path("instance-types.json"), show_default=True,
              help="Where to write the specs (written atomically).")
@click.option("--type", "names", multiple=True,
              help="Fetch only this type (repeatable); default: every current-generation type.")
@json_option
@command_errors
def fetch(config_path: Path, out: Path, names: tuple[str, ...], as_json: bool) -> None:
    """Ask the EC2 API (DescribeInstanceTypes) for instance-type specs and write instance-types.json."""
    from adapters.aws.instance_types import fetch_instance_types  # boto3 loads when asked, not with the CLI
    from adapters.aws.settings import aws_settings
    from migrate.config import load_site_config
    from planners.instance_types import save_instance_types

    config = load_site_config(config_path)
    aws = aws_settings(config.replatformer, str(config_path))
    records = fetch_instance_types(aws, list(names) or None)
    written = save_instance_types(records, out, region=aws.region, endpoint_url=aws.endpoint_url,
                                  fetched_at=datetime.now(UTC))
    types = written.instance_types
    data = {"out": str(out), "region": aws.region, "count": len(types),
            "bare_metal": sorted(t.name for t in types if t.bare_metal and t.instance_storage_gb)}
    Reporter(as_json).result(data, lambda d: f"{d['count']} instance types from {d['region']} -> {d['out']} "
                                             f"({len(d['bare_metal'])} bare metal with local storage)")
