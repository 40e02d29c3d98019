"""`migrate schema NAME`: print the JSON Schema of a file format (site: with the installed drivers)."""

from __future__ import annotations

import click

from migrate.schemas import SCHEMAS, generate_schema, schema_text

__all__ = ["schema"]


@click.command()
@click.argument("name", type=click.Choice(sorted(SCHEMAS)))
def schema(name: str) -> None:
    """Print the JSON Schema of a file format (e.g. `site` for site.yaml, with the installed drivers' settings)."""
    click.echo(generate_schema(name) if name == "site" else schema_text(name), nl=False)
