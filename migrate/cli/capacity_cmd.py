"""`migrate capacity plan|apply|release`: grow the cloud cluster with bare-metal hosts ahead of the waves."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.core.errors import InputError, Problem

if TYPE_CHECKING:
    from migrate.core.config import DriverSettings, SiteConfig
    from migrate.engine.capacity import CapacityPorts
    from migrate.engine.capacity_plan import CapacitySettings
    from planners.instance_types import InstanceType
    from planners.sizing import VmSize

__all__ = ["capacity"]

F = TypeVar("F", bound=Callable[..., Any])
_path = click.Path(dir_okay=False, path_type=Path)
CLI = "command line"
# the option naming each field of CapacitySettings and of the provisioner's section
_OPTION = {"host_type": "--host-type", "min_hosts": "--min-hosts", "spare_hosts": "--spare",
           "vcpu_per_core": "--ratio", "memory_max_util": "--max-util", "storage_usable_fraction": "--storage-util",
           "dedup_ratio": "--dedup", "vsan_policy": "--policy", "connect_timeout_s": "--connect-timeout",
           "ready_timeout_s": "--ready-timeout", "driver": "--provisioner", "availability_zone": "--zone",
           "host_domain": "--domain", "environment_id": "--evs-environment", "key_name": "--evs-key-name",
           "esxi_username": "--esxi-user", "esxi_password_env": "--esxi-password-env",
           "trust_host_thumbprint": "--trust-host-thumbprint"}


def _settings_options(func: F) -> F:
    """The capacity knobs shared by the three verbs."""
    options = [
        click.option("--config", "config_path", type=_path, default=Path("site.yaml"), show_default=True,
                     help="site.yaml: the cloud vCenter (`target`, with its cluster) and the AWS account."),
        click.option("--host-type", default=None,
                     help="Bare-metal instance type of the new hosts (checked with EC2 DescribeInstanceTypes) "
                          "[default: site.yaml capacity, else i4i.metal]."),
        click.option("--provisioner", default=None,
                     help="Host provisioner driver: ec2 (EC2 dedicated hosts), evs (Amazon Elastic VMware Service "
                          "hosts) or an installed one [default: site.yaml, else ec2]."),
        click.option("--min-hosts", type=int, default=None,
                     help="Fewest hosts the cluster runs on, spares not counted [default: the vSAN policy's, 3]."),
        click.option("--spare", type=int, default=None,
                     help="Spare hosts for host failure (N+1) [default: site.yaml, else 1]."),
        click.option("--ratio", type=float, default=None, help="vCPUs per physical core [default: site.yaml, else 4]."),
        click.option("--policy", "vsan_policy", default="raid1-ftt1", show_default=True,
                     help="vSAN policy: raid1-ftt1, raid1-ftt2, raid5-ftt1 or raid6-ftt2."),
        click.option("--max-util", type=float, default=None,
                     help="Highest memory utilisation per host [default: site.yaml, else 0.7]."),
        click.option("--storage-util", type=float, default=0.7, show_default=True,
                     help="Usable fraction of raw vSAN capacity (slack for rebuilds)."),
        click.option("--dedup", type=float, default=1.0, show_default=True,
                     help="Dedup/compression ratio (1.0 = none)."),
        click.option("--zone", "availability_zone", default=None,
                     help="EC2 availability zone of the hosts [default: the region's first]."),
        click.option("--domain", "host_domain", default=None,
                     help="DNS suffix of the names new hosts get in the cloud vCenter [default: site.yaml, else "
                          "sddc.internal]."),
        click.option("--evs-environment", "evs_environment_id", default=None, help="EVS environment id (env-...)."),
        click.option("--evs-key-name", default=None, help="EC2 key pair name for EVS hosts."),
        click.option("--esxi-user", "esxi_username", default=None,
                     help="ESXi user vCenter logs in with when adding a host [default: site.yaml, else root]."),
        click.option("--esxi-password-env", default=None,
                     help="Environment variable holding the ESXi password (never given on the command line)."),
        click.option("--trust-host-thumbprint", is_flag=True,
                     help="Accept the certificate thumbprint a new host presents (trust on first use)."),
        click.option("--connect-timeout", "connect_timeout_s", type=float, default=600.0, show_default=True,
                     help="Seconds a new host has to connect to vCenter."),
        click.option("--ready-timeout", "ready_timeout_s", type=float, default=1800.0, show_default=True,
                     help="Seconds the provider has to make a new host ready."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _cli_problem(problem: Problem, config_path: Path) -> Problem:
    """A problem of the options (or of site.yaml's provisioner section), named as the user gave it."""
    field = problem.field.rsplit(".", 1)[-1]
    if field in _OPTION:
        return Problem(CLI, _OPTION[field], problem.message)
    where = problem.field if problem.field.startswith("capacity.") else f"capacity.provisioner.{problem.field}"
    return Problem(str(config_path), where, problem.message)


def _settings(values: dict[str, Any], site: SiteConfig,
              config_path: Path) -> tuple[CapacitySettings, DriverSettings]:
    """The capacity settings and the provisioner's section: the options given, else site.yaml `capacity`, else the
    defaults (popping the options from `values`); InputError lists every bad one."""
    from migrate.core.capacity_ports import ProvisionerSettings
    from migrate.core.config import CapacityConfig
    from migrate.engine.capacity_plan import CapacitySettings

    base = CapacitySettings.from_config(site.capacity)
    given = {"host_type": values.pop("host_type"), "min_hosts": values.pop("min_hosts"),
             "spare_hosts": values.pop("spare"), "vcpu_per_core": values.pop("ratio"),
             "memory_max_util": values.pop("max_util")}
    settings = dataclasses.replace(
        base, **{k: v for k, v in given.items() if v is not None}, vsan_policy=values.pop("vsan_policy"),
        storage_usable_fraction=values.pop("storage_util"), dedup_ratio=values.pop("dedup"),
        connect_timeout_s=values.pop("connect_timeout_s"), ready_timeout_s=values.pop("ready_timeout_s"))
    problems = [_cli_problem(p, config_path) for p in settings.problems()]
    fields = {"availability_zone": values.pop("availability_zone"), "host_domain": values.pop("host_domain"),
              "evs_environment_id": values.pop("evs_environment_id"), "evs_key_name": values.pop("evs_key_name"),
              "esxi_username": values.pop("esxi_username"), "esxi_password_env": values.pop("esxi_password_env"),
              "trust_host_thumbprint": values.pop("trust_host_thumbprint") or None}
    driver = values.pop("provisioner")
    try:
        section = (site.capacity or CapacityConfig()).with_provisioner(
            driver, **{k: v for k, v in fields.items() if v is not None})
    except InputError as exc:
        raise InputError(problems + [_cli_problem(p, config_path) for p in exc.problems]) from None
    problems += [_cli_problem(p, config_path) for p in section.file_problems(CLI, "capacity.provisioner",
                                                                              dict(os.environ))]
    if isinstance(section, ProvisionerSettings):
        problems += [_cli_problem(p, config_path) for p in section.missing()]
    if problems:
        raise InputError(problems)
    return settings, section


def _site(config_path: Path) -> SiteConfig:
    from migrate.config import load_site_config

    site = load_site_config(config_path)
    if site.target is None or not site.target.placement().cluster:
        raise InputError.single(str(config_path), "target.cluster", "the cloud vCenter and its cluster are needed")
    return site


def _host_type(ports: CapacityPorts, settings: CapacitySettings) -> InstanceType:
    """The host type's specs; InputError naming --host-type when the provider has no such type."""
    from migrate.engine.capacity_plan import resolve_host_type

    try:
        return resolve_host_type(ports.provisioner, settings.host_type)
    except InputError as exc:
        raise InputError([Problem(CLI, "--host-type", p.message) for p in exc.problems]) from None


def _waves(inventory_path: Path | None, plan_path: Path | None) -> list[tuple[str, list[VmSize]]]:
    """(wave id, VM sizes) from plan.yaml + inventory.json (re-platformed waves hold none: their VMs leave
    vCenter); without a plan, every VM as one wave `all`."""
    from migrate.cli.size_cmd import read_plan_waves
    from migrate.inventory import load_inventory
    from planners.sizing import VmSize

    if inventory_path is None:
        raise InputError.single("command line", "--inventory", "needed to know the waves' VM sizes")
    inventory = load_inventory(inventory_path)
    by_id = inventory.vm_by_id()
    waves = read_plan_waves(plan_path, inventory, on_cluster=True) if plan_path \
        else [("all", [vm.id for vm in inventory.vms])]

    def size(vm_id: str) -> VmSize:
        found = VmSize.from_vm(by_id[vm_id])
        return VmSize(found.id, 0, 0, found.storage_gb, found.name) if by_id[vm_id].template else found

    return [(wave_id, [size(i) for i in ids]) for wave_id, ids in waves]


def _inputs(func: F) -> F:
    func = click.option("--plan", "plan_path", type=_path, help="plan.yaml (waves[].id, waves[].vms).")(func)
    return click.option("--inventory", "inventory_path", type=_path, help="inventory.json with the VMs' sizes.")(func)


@click.group()
def capacity() -> None:
    """Bare-metal capacity: plan, add or release cloud hosts for the waves of a plan.

    `plan` reads the cloud cluster (hosts, VMs already placed) and says how many hosts each wave
    needs; `apply` allocates them (EC2 dedicated hosts or EVS hosts, tagged with the plan and wave)
    and adds them to the cluster; `release` takes the plan's hosts out of the cluster and gives them
    back. apply and release are idempotent: run them again after any failure. Exit 2 on bad input
    (unknown host type, malformed plan), 1 when a provider or vCenter call fails.
    """


@capacity.command("plan")
@_inputs
@_settings_options
@json_option
@command_errors
def plan_cmd(inventory_path: Path | None, plan_path: Path | None, config_path: Path, as_json: bool,
             **options: Any) -> None:
    """Hosts each wave needs added to the cloud cluster (reads only)."""
    from migrate.capacity import open_capacity
    from migrate.engine.capacity_plan import plan_capacity

    waves = _waves(inventory_path, plan_path)
    site = _site(config_path)
    settings, provisioner = _settings(options, site, config_path)
    with contextlib.closing(open_capacity(site, provisioner)) as ports:
        report = plan_capacity(ports.cluster, waves, settings, _host_type(ports, settings))
    Reporter(as_json).result(report.to_dict(), _render_plan)


@capacity.command("apply")
@_inputs
@_settings_options
@click.option("--plan-tag", default=None, help="Tag the hosts carry [default: plan-<digest of the plan's waves>].")
@click.option("--dry-run", is_flag=True, help="Say what would be allocated and added; change nothing.")
@json_option
@command_errors
def apply_cmd(inventory_path: Path | None, plan_path: Path | None, config_path: Path, plan_tag: str | None,
              dry_run: bool, as_json: bool, **options: Any) -> None:
    """Allocate the hosts the waves need and add them to the cloud cluster (idempotent)."""
    from migrate.capacity import open_capacity
    from migrate.engine.capacity import apply_capacity
    from migrate.engine.capacity_plan import plan_tag_for

    waves = _waves(inventory_path, plan_path)
    site = _site(config_path)
    settings, provisioner = _settings(options, site, config_path)
    tag = plan_tag or plan_tag_for(waves)
    with contextlib.closing(open_capacity(site, provisioner)) as ports:
        results = apply_capacity(ports, waves, plan_tag=tag, settings=settings, host=_host_type(ports, settings),
                                 dry_run=dry_run)
    data = {"plan_tag": tag, "dry_run": dry_run, "host_type": settings.host_type,
            "provisioner": provisioner.driver, "waves": [r.to_dict() for r in results],
            "allocated": sum(r.newly_allocated for r in results), "added": sum(len(r.added) for r in results)}
    Reporter(as_json).result(data, _render_apply)


@capacity.command("release")
@_inputs
@_settings_options
@click.option("--plan-tag", default=None, help="Release the hosts carrying this plan tag.")
@click.option("--wave", "wave_id", default=None, help="Only this wave's hosts.")
@click.option("--dry-run", is_flag=True, help="List the hosts that would be released; change nothing.")
@json_option
@command_errors
def release_cmd(inventory_path: Path | None, plan_path: Path | None, config_path: Path, plan_tag: str | None,
                wave_id: str | None, dry_run: bool, as_json: bool, **options: Any) -> None:
    """Take the plan's hosts out of the cloud cluster and release them at the provider."""
    from migrate.capacity import open_capacity
    from migrate.engine.capacity import release_capacity
    from migrate.engine.capacity_plan import plan_tag_for

    if plan_tag is None:
        if inventory_path is None:
            raise InputError.single("command line", "--plan-tag",
                                    "give --plan-tag, or the --inventory (and --plan) `apply` was given")
        plan_tag = plan_tag_for(_waves(inventory_path, plan_path))
    site = _site(config_path)
    settings, provisioner = _settings(options, site, config_path)
    with contextlib.closing(open_capacity(site, provisioner)) as ports:
        result = release_capacity(ports, plan_tag, wave_id=wave_id, timeout=settings.connect_timeout_s,
                                  dry_run=dry_run)
    Reporter(as_json).result(result.to_dict(), _render_release)


def _render_plan(data: dict[str, Any]) -> str:
    usable = sum(1 for h in data["hosts"] if h["usable"])
    lines = [f"cluster {data['cluster']}: {len(data['hosts'])} hosts ({usable} usable), placed "
             f"{data['placed']['vms']} VMs / {data['placed']['vcpus']} vCPU; new hosts {data['host_type']}",
             f"{'wave':<12} {'VMs':>5} {'add':>4} {'cluster':>7}  binding"]
    lines += [f"{w['wave_id'][:12]:<12} {w['wave']['vms']:>5} {w['hosts_to_add']:>4} {w['hosts_after']:>7}  "
              f"{w['binding']}" for w in data["waves"]]
    if data["waves"]:
        lines += ["last wave:"] + [f"  {line}" for line in data["waves"][-1]["explanation"]]
    lines.append(f"hosts to add: {data['hosts_to_add']}")
    return "\n".join(lines)


def _render_apply(data: dict[str, Any]) -> str:
    verb = "would allocate" if data["dry_run"] else "allocated"
    lines = [f"plan tag {data['plan_tag']} ({data['provisioner']}, {data['host_type']})"]
    for wave in data["waves"]:
        added = ", ".join(wave["added"]) or "none"
        lines.append(f"wave {wave['wave_id']}: needs {wave['hosts_to_add']}, {verb} {wave['newly_allocated']}, "
                     f"holds {len(wave['allocated'])}, added now: {added}")
    lines.append(f"total: {verb} {data['allocated']}, added {data['added']}")
    return "\n".join(lines)


def _render_release(data: dict[str, Any]) -> str:
    verb = "would release" if data["dry_run"] else "released"
    names = ", ".join(h["id"] for h in data["found"]) or "none"
    count = len(data["found"]) if data["dry_run"] else len(data["released"])
    return (f"plan tag {data['plan_tag']}: found {len(data['found'])} host(s) ({names}); removed from cluster "
            f"{len(data['removed_from_cluster'])}; {verb} {count}")
