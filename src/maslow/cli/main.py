"""The ``maslow`` command. Errors are mapped here, once: MaslowError -> message on stderr, exit code 2."""

from __future__ import annotations

import sys
import warnings
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
            _fail(str(e))
        except UnicodeEncodeError as e:  # a name read from the file system with bytes that are not UTF-8
            _fail(unencodable(e))

    def list_commands(self, ctx: Context) -> list[str]:  # keep the order they were added in
        return list(self.commands)


#: The modules that register commands, in the order ``maslow --help`` lists them.
_MODULES = ("data", "diversity", "select", "schema", "quality", "qa", "review", "metrics", "compare", "models",
            "train")
#: Which module registers each command (tests/cli/test_cli.py checks it against the registrations): ``main``
#: builds only the one a command line names. Building every command's parameters costs a CLI call 30-40 ms.
_COMMANDS = {
    "sample": "data", "formats": "data", "init": "data", "import": "data", "log": "data", "diff": "data", "export": "data",
    "convert": "data", "stats": "data", "diversity": "diversity", "select": "select", "embed": "select",
    "outliers": "select", "schema": "schema", "check": "quality", "qa": "qa", "review": "review", "eval": "metrics",
    "compare": "compare", "predict": "models", "crossval": "models", "train": "train", "tune": "train",
    "runs": "train",
}
_HELP = "maslow: the hierarchy of needs of computer-vision ML, from diverse data to the data flywheel."


def build(modules: tuple[str, ...] = _MODULES) -> typer.Typer:
    """The ``maslow`` app with the commands of ``modules`` (each module registers its own)."""
    import importlib

    app = typer.Typer(cls=_Group, name="maslow", help=_HELP, no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False)
    if len(modules) < len(_MODULES):  # a group, not the command itself, even with one command (typer's rule)
        app.callback()(_root)
    for name in modules:
        importlib.import_module(f"maslow.cli.{name}").register(app)
    return app


def _fail(message: str) -> None:
    from rich.markup import escape

    from maslow.cli.render import err_console

    # messages quote data ("[x, y, w, h]"): escape them so rich does not read them as markup
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


def unencodable(e: UnicodeEncodeError) -> str:
    """What a writer could not encode: a file or folder name whose bytes are not UTF-8 (Python holds such bytes
    as lone surrogates, ``b"\\xff"`` as ``"\\udcff"``), quoted with the text around it, and what to do."""
    text = e.object if isinstance(e.object, str) else ""
    line_start = text.rfind("\n", 0, e.start) + 1
    line_end = text.find("\n", e.end)
    around = text[max(line_start, e.start - 60):min(line_end if line_end >= 0 else len(text), e.end + 60)]
    try:
        raw = f" (bytes {text[e.start:e.end].encode('utf-8', 'surrogateescape')!r})"
    except UnicodeEncodeError:  # a surrogate that no byte stands for
        raw = ""
    return (f"text that UTF-8 cannot encode, {text[e.start:e.end]!a}{raw} in "
            f"{around!a}: a file or folder name with bytes that are not UTF-8, or a lone surrogate; rename it "
            "(every format is written as UTF-8); nothing was written")


def _root() -> None:
    """The group's callback (nothing to do; the app's help is ``_HELP``)."""


def __getattr__(name: str) -> Any:  # ``app``: every command (tests, --help), built on first use
    if name == "app":
        globals()["app"] = built = build()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """A MaslowWarning (what a reader or writer tells the user: temp folders removed, issues summarised) as a
    ``note:`` line on stderr, as the commands print their notes; other warnings in Python's form."""
    from maslow.errors import MaslowWarning

    text = f"note: {message}\n" if issubclass(category, MaslowWarning) else warnings.formatwarning(
        message, category, filename, lineno, line)
    (sys.stderr if file is None else file).write(text)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM (``kill``, a job scheduler, a container stopping) as Ctrl-C is: an exception in the main thread, so
    the temp files and folders of the writes under way are removed on the way out (without it the process ended at
    once and left them for the next write into the same folder to clean); exit code 128 + 15, the shell's."""
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point of the ``maslow`` script: only the named command's module is built (all for help or an
    unknown name, so that click lists them)."""
    import signal

    warnings.showwarning = _show_warning
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # not one a parent process chose to ignore
        signal.signal(signal.SIGTERM, _terminated)
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    module = _COMMANDS.get(first)
    sys.exit(build((module,) if module else _MODULES)())
