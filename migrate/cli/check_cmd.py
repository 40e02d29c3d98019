"""`migrate check`: validate site.yaml and prove every endpoint answers with the given credentials."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from migrate.cli.output import Reporter, command_errors, json_option

if TYPE_CHECKING:
    from migrate.core.errors import AdapterError

__all__ = ["check", "config_option"]

config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                             default=Path("site.yaml"), show_default=True, help="Site configuration file.")


@click.command()
@config_option
@json_option
@command_errors
def check(config_path: Path, as_json: bool) -> None:
    """Check site.yaml and log in to every role's provider (each source, target, replatformer, and the host
    provisioner when runs grow the target cluster), read-only."""
    from migrate.capacity import grows_cluster, provisioner_settings
    from migrate.config import ROLE_SECTIONS, load_site_config
    from migrate.core.drivers import Role, get_driver
    from migrate.core.errors import AdapterError

    config = load_site_config(config_path)
    results: dict[str, Any] = {}
    failures: list[AdapterError] = []
    sections = [(f"source {name}", Role.SOURCE, section) for name, section in config.source_sections.items()] \
        if config.sources else [("source", Role.SOURCE, config.source)]
    sections += [(role, kind, getattr(config, role)) for role, kind in ROLE_SECTIONS.items() if role != "source"]
    if grows_cluster(config):   # where new hosts come from, when runs grow the target cluster
        sections.append(("provisioner", Role.HOST_PROVISIONER, provisioner_settings(config)))
    for role, kind, settings in sections:
        if settings is None:
            continue
        driver = get_driver(settings.driver, kind)
        if driver.check is None:
            results[role] = {"ok": True, "driver": driver.name, "summary": "the driver has no check"}
            continue
        try:
            results[role] = {"ok": True, "driver": driver.name, **driver.check(settings)}
        except AdapterError as exc:
            failures.append(exc)
            results[role] = {"ok": False, **exc.to_dict()}

    def human(data: dict[str, Any]) -> str:
        lines = []
        for role, item in data.items():
            shown = item.get("summary", "ok") if item["ok"] else item["message"]
            lines.append(f"{role:16} {'ok    ' if item['ok'] else 'FAILED'}  {shown}")
        return "\n".join(lines)

    Reporter(as_json).result(results, human)
    if failures:
        raise SystemExit(1)
