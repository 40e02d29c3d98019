"""`migrate schema NAME`: print a shipped JSON Schema."""

from __future__ import annotations

import click

from migrate.schemas import SCHEMAS, schema_text

__all__ = ["schema"]


@click.command()
@click.argument("name", type=click.Choice(sorted(SCHEMAS)))
def schema(name: str) -> None:
    """Print the JSON Schema of a file format (e.g. `site` for site.yaml)."""
    click.echo(schema_text(name), nl=False)
