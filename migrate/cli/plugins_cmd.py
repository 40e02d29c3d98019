"""`migrate plugins`: the installed migration methods and provider drivers (entry points), built-in or not."""

from __future__ import annotations

from typing import Any

import click

from migrate.cli.output import Reporter, command_errors, json_option

__all__ = ["plugins"]


def _packages(group: str) -> dict[str, str]:
    """Entry point name -> the distribution that declares it (name version)."""
    from importlib.metadata import entry_points

    found: dict[str, str] = {}
    for point in entry_points(group=group):
        dist = point.dist
        found.setdefault(point.name, f"{dist.name} {dist.version}" if dist is not None else "?")
    return found


def plugin_listing() -> dict[str, Any]:
    """Every installed method (phases, roles, rollback) and driver (roles, settings fields), by name."""
    from migrate.core.drivers import ENTRY_POINT_GROUP as DRIVERS_GROUP
    from migrate.core.drivers import driver_registry
    from migrate.engine.methods import ENTRY_POINT_GROUP as METHODS_GROUP
    from migrate.engine.methods import registry

    method_packages, driver_packages = _packages(METHODS_GROUP), _packages(DRIVERS_GROUP)
    methods = [{"name": m.name, "description": m.description, "package": method_packages.get(m.name, "?"),
                "roles": sorted(m.roles), "phases": [p.name for p in m.phases],
                "rollback": [r.name for r in m.rollback], "grows_cluster": m.grows_cluster,
                "playbook": m.playbook_name}
               for m in sorted(registry().values(), key=lambda m: m.name)]
    drivers = [{"name": d.name, "description": d.description, "package": driver_packages.get(d.name, "?"),
                "roles": sorted(d.roles), "settings": sorted(n for n in d.settings.model_fields if n != "driver"),
                "check": d.check is not None}
               for d in sorted(driver_registry().values(), key=lambda d: d.name)]
    return {"methods": methods, "drivers": drivers}


def _human(data: dict[str, Any]) -> str:
    lines = ["methods (plan.yaml waves[].method):"]
    for m in data["methods"]:
        lines.append(f"  {m['name']:12} {m['description']}")
        lines.append(f"  {'':12} roles: {', '.join(m['roles']) or '-'}; phases: {' > '.join(m['phases'])}; "
                     f"from {m['package']}")
    lines.append("drivers (site.yaml <role>.driver):")
    for d in data["drivers"]:
        lines.append(f"  {d['name']:12} {d['description']}")
        lines.append(f"  {'':12} roles: {', '.join(d['roles'])}; from {d['package']}")
    return "\n".join(lines)


@click.command()
@json_option
@command_errors
def plugins(as_json: bool) -> None:
    """List the installed migration methods and provider drivers, with the package each comes from.

    Both are found through entry points (`migrate.methods`, `migrate.drivers`): a package that declares
    one adds a method or a target without a change to this tool. `migrate schema site` shows every
    driver's site.yaml settings.
    """
    Reporter(as_json).result(plugin_listing(), _human)
