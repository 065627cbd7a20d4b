"""``--fail-on SEVERITY``: a command that found issues still writes everything it writes, then exits with code 1
when any issue is at SEVERITY or worse (``error`` > ``warning`` > ``info``), so a CI step can stop on technical
import errors (``maslow import``, ``maslow convert``) or rule-check findings (``maslow check``) without parsing
``--json``. Exit code 2 stays what it is everywhere: the input could not be read or the flags are wrong."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

import typer

from maslow.core.issues import SEVERITIES


class FailOn(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"


FailOnOpt = Annotated[FailOn | None, typer.Option(
    "--fail-on", case_sensitive=False,
    help="Exit with code 1 (after writing every output) when an issue of this severity or worse was found: error, "
         "warning (errors too) or info (any issue). Default: exit 0 whatever was found.")]


def failing(severities: Iterable[str], fail_on: FailOn | str | None) -> int:
    """How many of ``severities`` are at ``fail_on`` or worse (0 when ``fail_on`` is None)."""
    if fail_on is None:
        return 0
    level = SEVERITIES.index(FailOn(fail_on).value)
    return sum(SEVERITIES.index(s) <= level for s in severities)


def gate(severities: Iterable[str], fail_on: FailOn | str | None, *, what: str) -> None:
    """Exit 1, saying why on stderr, when ``failing`` counts any issue (``what``: "technical issue", ...)."""
    from maslow.cli.render import err_console

    n = failing(severities, fail_on)
    if n:
        level = FailOn(fail_on).value  # type: ignore[arg-type]  # n > 0: fail_on is set
        err_console.print(f"failing (--fail-on {level}): {n} {what}{'' if n == 1 else 's'} at severity {level}"
                          + ("" if level == "error" else " or worse") + "; outputs were written",
                          markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
