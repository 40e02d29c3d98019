"""`migrate check`: validate site.yaml and prove every endpoint answers with the given credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.config import load_site_config
from migrate.errors import AdapterError

__all__ = ["check", "config_option"]

config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                             default=Path("site.yaml"), show_default=True, help="Site configuration file.")


@click.command()
@config_option
@json_option
@command_errors
def check(config_path: Path, as_json: bool) -> None:
    """Check site.yaml and log in to the source and target vCenters and AWS (read-only)."""
    from adapters.aws import check_aws
    from adapters.vcenter.check import check_vcenter

    config = load_site_config(config_path)
    results: dict[str, Any] = {}
    failures: list[AdapterError] = []
    roles: list[tuple[str, Any]] = [("source", lambda: check_vcenter(config.source))]
    if config.target:
        target = config.target
        roles.append(("target", lambda: check_vcenter(target)))
    if config.aws:
        aws = config.aws
        roles.append(("aws", lambda: check_aws(aws)))
    for role, probe in roles:
        try:
            results[role] = {"ok": True, **probe()}
        except AdapterError as exc:
            failures.append(exc)
            results[role] = {"ok": False, **exc.to_dict()}

    def human(data: dict[str, Any]) -> str:
        lines = []
        for role, item in data.items():
            if not item["ok"]:
                lines.append(f"{role:7} FAILED  {item['message']}")
            elif role == "aws":
                lines.append(f"{role:7} ok      region {item['region']}, account {item['account']}, "
                             f"{len(item['availability_zones'])} zones")
            else:
                lines.append(f"{role:7} ok      {item['endpoint']}  {item['product']} (API {item['api_version']}, "
                             f"instance {item['instance_uuid']})")
        return "\n".join(lines)

    Reporter(as_json).result(results, human)
    if failures:
        raise SystemExit(1)
