"""The ``maslow`` command. Errors are mapped here, once: MaslowError -> message on stderr, exit code 2."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # typer's vendored click (0.26+); only for the annotations, nothing private at run time
    from typer._click.core import Context

from maslow.errors import MaslowError


class _Group(TyperGroup):
    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except MaslowError as e:
            from rich.markup import escape

            from maslow.cli.render import err_console

            # messages quote data ("[x, y, w, h]"): escape them so rich does not read them as markup
            err_console.print(f"[bold red]error:[/bold red] {escape(str(e))}", highlight=False, soft_wrap=True)
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

# each command group registers itself; modules are parse -> call -> render
from maslow.cli import data as _data  # noqa: E402
from maslow.cli import diversity as _diversity  # noqa: E402
from maslow.cli import metrics as _metrics  # noqa: E402
from maslow.cli import models as _models  # noqa: E402
from maslow.cli import qa as _qa  # noqa: E402
from maslow.cli import quality as _quality  # noqa: E402
from maslow.cli import schema as _schema  # noqa: E402
from maslow.cli import select as _select  # noqa: E402
from maslow.cli import train as _train  # noqa: E402

for _group in (_data, _diversity, _select, _schema, _quality, _qa, _metrics, _models, _train):
    _group.register(app)


def main() -> None:
    """Entry point of the ``maslow`` script."""
    sys.exit(app())

