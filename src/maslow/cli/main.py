"""The ``maslow`` command. Errors are mapped here, once: MaslowError -> message on stderr, exit code 2."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer._click.core import Context
from typer.core import TyperGroup

from maslow.errors import MaslowError


class _Group(TyperGroup):
    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except MaslowError as e:
            from maslow.cli.render import err_console

            err_console.print(f"[bold red]error:[/bold red] {e}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    def list_commands(self, ctx: Context) -> list[str]:  # keep the order they were added in
        return list(self.commands)


app = typer.Typer(
    cls=_Group,
    name="maslow",
    help="maslow: the hierarchy of needs of computer-vision ML, from diverse data to the data flywheel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from maslow.cli import data as _data  # noqa: E402  (registers the commands)

_data.register(app)
from maslow.cli import metrics as _metrics  # noqa: E402

_metrics.register(app)


def main() -> None:
    """Entry point of the ``maslow`` script."""
    sys.exit(app())
