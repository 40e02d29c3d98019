"""`--help` that lists the installed migration methods from their `Method` objects (read when help is shown)."""

from __future__ import annotations

import click

__all__ = ["MethodsHelpCommand"]


class MethodsHelpCommand(click.Command):
    """A command whose help ends with every installed method (plan.yaml `waves[].method`) and what it does."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from migrate.engine.methods import registry

        super().format_help_text(ctx, formatter)
        rows = [(m.name, m.description) for m in sorted(registry().values(), key=lambda m: m.name)]
        with formatter.section("Methods (plan.yaml waves[].method; `migrate plugins` lists their phases)"):
            formatter.write_dl(rows)
