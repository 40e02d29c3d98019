"""`migrate schema NAME`: print the JSON Schema of a file format (site: with the installed drivers)."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["schema"]


class _SchemaName(click.Choice[str]):
    """The names of migrate.schemas.SCHEMAS, read when first asked for (help, parsing, completion): importing
    migrate.schemas loads every file format's model, which `migrate --help` and the other commands do without."""

    def __init__(self) -> None:   # no choices yet: `choices` is looked up on first use
        self.case_sensitive = True

    def __getattr__(self, name: str) -> Any:
        if name != "choices":
            raise AttributeError(name)
        from migrate.schemas import SCHEMAS

        self.choices = tuple(sorted(SCHEMAS))
        return self.choices


@click.command()
@click.argument("name", type=_SchemaName())
def schema(name: str) -> None:
    """Print the JSON Schema of a file format (e.g. `site` for site.yaml, with the installed drivers' settings)."""
    from migrate.schemas import generate_schema, schema_text

    click.echo(generate_schema(name) if name == "site" else schema_text(name), nl=False)
