"""`migrate assess`: readiness of every VM for every method, from inventory facts (the readiness rule catalog)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.core.errors import InputError, Problem

if TYPE_CHECKING:
    from migrate.core.config import SiteConfig
    from migrate.core.models.inventory import Inventory

__all__ = ["assess", "render_assessment"]

_SHOWN = {"ready": "ready", "ready_with_warnings": "warnings", "not_ready": "NOT READY"}


def _findings(vm: dict[str, Any], methods: list[str]) -> list[str]:
    """Each distinct finding once, with the methods it concerns."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for method in methods:
        for f in vm["methods"][method]["findings"]:
            seen.setdefault((f["status"], f["rule"], f["message"]), []).append(method)
    return [f"    {status} {rule} [{'all' if len(on) == len(methods) else ', '.join(on)}]: {message}"
            for (status, rule, message), on in seen.items()]


def render_assessment(data: dict[str, Any]) -> str:
    """A table of verdicts (VM x method) with each VM's findings under it, then the counts."""
    methods: list[str] = data["methods"]
    width = max([len("VM"), *(len(vm["name"]) for vm in data["vms"])]) + 2
    cells = [max(len(m), 9) + 2 for m in methods]
    lines = ["VM".ljust(width) + "".join(m.ljust(c) for m, c in zip(methods, cells, strict=True))]
    for vm in data["vms"]:
        row = "".join(_SHOWN[vm["methods"][m]["verdict"]].ljust(c) for m, c in zip(methods, cells, strict=True))
        planned = f"  (planned: {vm['planned_method']})" if vm.get("planned_method") else ""
        lines.append(vm["name"].ljust(width) + row.rstrip() + planned)
        lines += _findings(vm, methods)
    for method in methods:
        counts = data["summary"][method]
        lines.append(f"{method}: {counts['ready']} ready, {counts['ready_with_warnings']} with warnings, "
                     f"{counts['not_ready']} not ready")
    lines += [f"not assessed: {rule}: {why}" for rule, why in data["not_assessed"].items()]
    return "\n".join(lines)


def _planned(path: Path, inventory: Inventory) -> dict[str, str]:
    """VM id -> the method of its wave in plan.yaml (VMs named by id or name)."""
    from planners.plan_io import load_plan

    plan = load_plan(path)
    ids = {vm.name: vm.id for vm in inventory.vms} | {vm.id: vm.id for vm in inventory.vms}
    problems = [Problem(str(path), f"waves[{w}].vms[{i}]", f"VM {ref!r} is not in the inventory")
                for w, wave in enumerate(plan.waves) for i, ref in enumerate(wave.vms) if ref not in ids]
    if problems:
        raise InputError(problems)
    return {ids[ref]: wave.method for wave in plan.waves for ref in wave.vms}


def _site_facts(site: SiteConfig) -> tuple[str | None, list[str] | None]:
    """The target cluster and the port groups whose private IP re-platform keeps (None: no replatformer)."""
    cluster = site.target.placement().cluster if site.target is not None else None
    networks = getattr(site.replatformer, "networks", None)
    if site.replatformer is None or not isinstance(networks, dict):
        return cluster, None
    return cluster, [name for name, mapping in networks.items() if getattr(mapping, "keep_private_ip", False)]


@click.command()
@click.option("--inventory", "inventory_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="inventory.json of the source estate.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="site.yaml: the target cluster and the replatformer's kept private IPs.")
@click.option("--target-inventory", "target_path", type=click.Path(dir_okay=False, path_type=Path),
              help="inventory.json of the target vCenter (its hosts' versions and EVC modes).")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False, path_type=Path),
              help="plan.yaml: assess its VMs only and mark each one's planned method.")
@click.option("--method", "methods", multiple=True, help="Assess these methods only (default: every built-in).")
@json_option
@command_errors
def assess(inventory_path: Path, config_path: Path | None, target_path: Path | None, plan_path: Path | None,
           methods: tuple[str, ...], as_json: bool) -> None:
    """Readiness of every VM for every method: ready, ready with warnings, or not ready, with rule ids and reasons.

    Rules read inventory facts only (the same catalog the run's prechecks use); `migrate assess --json` follows
    `migrate schema assess`. Rules whose input is missing as a whole are listed as not assessed.
    """
    from migrate.config import load_site_config
    from migrate.engine.readiness import METHODS
    from migrate.engine.readiness_assess import assess as run_assess
    from migrate.engine.readiness_context import Context, target_cluster
    from migrate.inventory import load_inventory

    problems: list[Problem] = []
    unknown = [m for m in methods if m not in METHODS]
    problems += [Problem("--method", "method", f"unknown method {m!r}; one of {', '.join(METHODS)}") for m in unknown]
    loaded: dict[str, Any] = {}
    loaders: dict[str, tuple[Path | None, Callable[[Path], Any]]] = {
        "inventory": (inventory_path, load_inventory), "target": (target_path, load_inventory),
        "site": (config_path, load_site_config)}
    for key, (path, load) in loaders.items():
        if path is not None:
            try:
                loaded[key] = load(path)
            except InputError as exc:
                problems.extend(exc.problems)
    planned = None
    if plan_path is not None and "inventory" in loaded:
        try:
            planned = _planned(plan_path, loaded["inventory"])
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    cluster, kept = _site_facts(loaded["site"]) if "site" in loaded else (None, None)
    target = target_cluster(loaded["target"], cluster) if "target" in loaded else None
    context = Context.of(loaded["inventory"], target, kept)
    result = run_assess(context, methods=methods or METHODS, planned=planned, inventory_file=str(inventory_path),
                        target_file=str(target_path) if target_path else None,
                        config_file=str(config_path) if config_path else None,
                        plan_file=str(plan_path) if plan_path else None)
    Reporter(as_json).result(result.model_dump(mode="json"), render_assessment)
