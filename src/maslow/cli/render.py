"""Rendering for the CLI: rich tables for people, JSON for scripts, progress bars for long work."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)
# notes and messages on a stderr that is a log or a pipe: one line each (rich wrapped them at 80 columns there, so a
# grep of the log for a note's text missed it); a terminal still wraps them to its width
err_console.soft_wrap = not err_console.is_terminal


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if math.isnan(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, bytes):
        return o.decode("ascii", "replace")
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _nan_to_none(o: Any) -> Any:
    """``o`` as plain JSON values: ``to_dict()`` results, numpy scalars and arrays converted all the way down, and
    every NaN or infinity (which JSON cannot hold) as null."""
    if isinstance(o, float | np.floating):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k.item() if isinstance(k, np.generic) else k: _nan_to_none(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_nan_to_none(v) for v in o]
    if isinstance(o, np.ndarray):
        return _nan_to_none(o.tolist())
    if isinstance(o, np.generic):
        return _nan_to_none(o.item())
    if isinstance(o, bytes) or hasattr(o, "to_dict"):
        return _nan_to_none(_jsonable(o))
    return o


def json_bytes(obj: Any) -> bytes:
    """The JSON document of ``obj``, UTF-8, indented by 2 (NaN and infinities become null; strict: never ``NaN``
    or ``Infinity``).

    orjson writes it (it writes NaN as null itself; the json module, pure Python when indenting, took 8 of the 11 s
    of a 100,000-issue ``maslow qa``); what orjson refuses (numpy dict keys, integers beyond 64 bits) goes the
    json module's way.
    """
    import orjson

    try:
        return _orjson_bytes(obj)
    except orjson.JSONEncodeError:
        return _json_module_bytes(obj)


def _orjson_bytes(obj: Any) -> bytes:
    import orjson

    # dataclasses pass through to _jsonable, to be written as their to_dict(), not field by field
    return orjson.dumps(obj, default=_jsonable, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
                        | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS)


def _json_module_bytes(obj: Any) -> bytes:
    return json.dumps(_nan_to_none(obj), default=_jsonable, indent=2, ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def write_json_list(f: BinaryIO, chunks: Callable[[], Iterable[Sequence[Any]]]) -> None:
    """Write to the binary file ``f`` the bytes of ``json_bytes(items)``, ``items`` being every item of
    ``chunks()`` in order, encoding one chunk at a time: a long list (900,000 ISSUES.json records) is never held
    whole, as objects or as bytes.

    ``chunks`` is a function, called again should orjson refuse an item: ``f`` is then rewritten from where it
    started by the json module, as ``json_bytes`` falls back for the whole document.
    """
    import orjson

    start = f.tell()
    try:
        _write_json_list(f, chunks(), _orjson_bytes)
    except orjson.JSONEncodeError:
        f.seek(start)
        f.truncate()
        _write_json_list(f, chunks(), _json_module_bytes)


def _write_json_list(f: BinaryIO, chunks: Iterable[Sequence[Any]], encode: Callable[[Any], bytes]) -> None:
    # an indented list is "[\n" + its items (each indented as at depth 1, whatever the list) joined by ",\n" +
    # "\n]"; an empty one is "[]"
    first = True
    for chunk in chunks:
        if not len(chunk):
            continue
        body = encode(list(chunk))
        f.write(b"[\n" if first else b",\n")
        f.write(memoryview(body)[2:-2])
        first = False
    f.write(b"[]" if first else b"\n]")


def json_text(obj: Any) -> str:
    """``json_bytes`` as text."""
    return json_bytes(obj).decode("utf-8")


def print_json(obj: Any) -> None:
    """JSON on stdout (NaN and infinities become null), nothing else."""
    console.file.write(json_text(obj) + "\n")


def lit(value: Any) -> str:
    """``value`` as text that rich prints as written inside a markup string (a path, a class or split name)."""
    return escape(str(value))


def table(title: str | Text, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
          justify_numbers: bool = True) -> Table:
    """A rich table; the title, headers and cells are printed as written (a ``Text`` title carries its style)."""
    # titles and headers quote data (a dataset name, a split, a path): escaped so rich does not read them as markup
    t = Table(title=title if isinstance(title, Text) else escape(title), title_justify="left", header_style="bold")
    for j, c in enumerate(columns):
        numeric = justify_numbers and rows and all(isinstance(r[j], int | float) for r in rows)
        # the first column names the row (a class, a version id): never cut it
        t.add_column(escape(str(c)), justify="right" if numeric else "left", no_wrap=j == 0)
    for r in rows:  # cells quote data ("[x, y, w, h]"): escaped so rich does not read them as markup
        t.add_row(*[f"{v:.3g}" if isinstance(v, float) else escape(str(v)) for v in r])
    return t


def fold_columns(t: Any, *headers: str) -> Any:
    """Let the named columns of a rich table fold long values over several lines instead of cutting them with
    an ellipsis: image paths and messages stay whole in an 80-column terminal."""
    for c in t.columns:
        if str(c.header) in headers:
            c.overflow = "fold"
    return t


def spinner(text: str, *, enabled: bool = True) -> Any:
    """A spinner on stderr while work of a few seconds runs (shown only on a terminal; none when disabled)."""
    if not enabled:
        return contextlib.nullcontext()
    return err_console.status(lit(text), spinner="line")


@contextlib.contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a rich bar on stderr (silent when disabled, and when stderr is
    not a terminal: a log or a pipe got an empty line per bar, and a bar is nothing to read there)."""
    if not enabled or not err_console.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn  # 8 ms

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def step_bars(*, enabled: bool = True) -> Iterator[tuple[Callable[[str], None], Callable[[int, int], None]]]:
    """``(step, progress)`` callbacks for an analysis made of steps (``select``'s ``step`` and ``progress``):
    ``step(name)`` closes the bar of the step before and opens one named ``name`` (``render.progress_bar``: "0/?"
    until the step gives its total); ``progress(done, total)`` moves the current bar. Silent when disabled."""
    bars = contextlib.ExitStack()
    current: list[Callable[[int, int], None]] = [lambda done, total: None]

    def step(name: str) -> None:
        bars.close()
        current[0] = bars.enter_context(progress_bar(name, enabled=enabled))

    def progress(done: int, total: int) -> None:
        current[0](done, total)

    with bars:
        yield step, progress


def render_report(report: Any, *, limit: int = 20, to: Console | None = None) -> None:
    """Issue counts and the first issues of a Report, on stdout (or the console ``to``: stderr for the import
    issues a command prints beside its own output)."""
    out = console if to is None else to
    if not len(report):
        out.print("[green]No technical issues found.[/green]")
        return
    counts = report.counts()
    sev: dict[str, str] = {}
    for i in report.issues:
        sev.setdefault(i.type, i.severity)
    out.print(table(f"Issues ({len(report)})", ["type", "severity", "count"],
                    [(k, sev[k], v) for k, v in counts.items()]))
    rows = [(i.severity, i.type, i.where(), i.message) for i in report.issues[:limit]]
    # a long type or file name is folded, not cut: "label_type_not_allo…" at 80 columns named no type
    out.print(fold_columns(table(f"First {len(rows)} issues", ["severity", "type", "where", "message"], rows),
                           "type", "where"))


def render_export(rep: Any) -> None:
    """What an export wrote, what it could not express, and its notes (paths and notes printed as they are)."""
    d = rep.to_dict()
    console.print(f"Wrote {d['n_images']} images, {d['n_annotations']} annotations as {escape(str(d['format']))} "
                  f"to {escape(str(d['path']))}")
    if not d["lossless"]:  # a field's values or whole records, as each writer counts them: its notes say which
        console.print(table("Not kept by this format", ["what", "count"], sorted(d["lost"].items())))
    for note in d["notes"]:
        console.print(f"[dim]note: {escape(str(note))}[/dim]")


def either(new: Any, old: Any, flags: tuple[str, str]) -> tuple[Any, str]:
    """The value of an option that has a hidden old spelling kept for existing scripts (``--from`` and
    ``--gt-format``), and the flag that gave it (to name in messages): the new one unless only the old one was
    given. Both given with different values is refused."""
    from maslow.errors import MaslowError

    if old is None:
        return new, flags[0]
    if new is not None and new != old:
        raise MaslowError(f"{flags[0]} and {flags[1]} (its old spelling) must agree, got {new!r} and {old!r}: "
                          f"give {flags[0]} only")
    return old, flags[1]


def format_name(name: str, flag: str) -> str:
    """The canonical name of format ``name`` given to ``flag``; checked before any work, so a misspelt ``--to``
    fails before a dataset is read or a model trained, with the flag named."""
    from maslow.io.registry import get_format

    return get_format(name, where=flag).name


def load_dataset(src: str | Path | None, fmt: str | None, *, images_root: Path | None = None,
                 folders: bool = False, flag: str = "--from") -> Any:
    """The Dataset a command works on: ``src`` read as ``fmt``; else (no ``--from``) a plain image folder when
    ``folders``; else a workspace version or dataset, resolved as ``workspace_version`` does (the only dataset's
    head when ``src`` is None). ``flag`` is the option that gave ``fmt``, named in errors."""
    from pathlib import Path as _Path

    from maslow.errors import FormatError, MaslowError

    if fmt is not None:
        if src is None:
            raise MaslowError(f"DATASET (a file or folder) is required with {flag} FORMAT")
        from maslow.io.registry import get_format, issues_summary

        ds, report = get_format(fmt, where=flag).parse(_Path(src), images_root=images_root)
        if len(report):  # what was not imported, or looks odd in the file, is said before the command's output
            err_console.print(f"warning: {issues_summary(report, source=src)}. `maslow import` or "
                              "`maslow convert` lists them all", markup=False, highlight=False)
        return ds
    if folders and src is not None and _Path(src).is_dir():
        from maslow.diversity.select import folder_dataset

        return folder_dataset(src)
    if src is None:
        from maslow.store import Workspace

        return Workspace.find().load(None)
    found = _workspace_dataset(str(src), str(src))
    if found is not None:
        return found[0]
    if not _Path(src).exists():
        raise FormatError("file or folder not found", path=src)  # a path: no workspace ref has a separator
    raise MaslowError(f"{src}: a file or folder is read with {flag} FORMAT (see `maslow formats`); without it "
                      "DATASET names a workspace version or dataset")


def workspace_version(ref: str, flag: str) -> tuple[Any, str] | None:
    """The dataset of the workspace version or dataset (its head) that ``ref`` names, with the format it was
    imported from; None when ``ref`` looks like a path (a separator or an annotation file's suffix) or is a file or
    folder that names nothing in the workspace. A name that is both (a sample folder ``shapes`` beside a workspace
    dataset ``shapes``) is the workspace's: the folder is read with ``--from``. ``flag`` names the option in errors.
    ``load_dataset`` resolves its DATASET by the same rules.

    Raises:
        MaslowError: ``ref`` is neither a file or folder nor a workspace version or dataset.
        FormatError: the workspace's files for ``ref`` are damaged.
    """
    return _workspace_dataset(ref, f"{flag} {ref!r}")


def _workspace_dataset(ref: str, where: str) -> tuple[Any, str] | None:
    """``workspace_version``, ``where`` opening its error message."""
    from pathlib import Path as _Path

    from maslow.errors import FormatError, MaslowError
    from maslow.store import Workspace

    if any(c in ref for c in "/\\") or _Path(ref).suffix.lower() in (".json", ".xml", ".yaml", ".yml"):
        return None
    try:
        ws = Workspace.find()
        version = ws.version(ref)
    except FormatError:  # a damaged ref or version record: said as it is, not as "no such dataset"
        raise
    except MaslowError as e:
        if _Path(ref).exists():
            return None
        raise MaslowError(f"{where}: no such file or folder, nor a workspace version or dataset ({e})") from None
    return ws.load(version.id), version.format or ""


def refuse_import_error(errors: Sequence[Any], src: str | Path, *, only_off_by_one: bool = False,
                        tail: str = "") -> None:
    """Raise the FormatError of a COCO results import's first error (``eval`` and ``qa``): ids off by one first,
    the image ids' before the category ids' (``--id-offset`` shifts both), its fix in the command's flags;
    ``only_off_by_one``: raise only for those (nothing otherwise)."""
    from maslow.errors import FormatError

    off = [i for i in errors if i.type == "ids_off_by_one"]
    i = min(off, key=lambda i: i.field != "image_id") if off else None if only_off_by_one else \
        (errors[0] if errors else None)
    if i is not None:
        raise FormatError(f"{offset_flags(i.message)} [{i.type}; {len(errors)} errors]{tail}", path=i.file or src,
                          record=i.record, field=i.field)


def refuse_offsets(command: str, fmt: str, id_offset: int, category_offset: int | None) -> None:
    """``--id-offset``/``--category-offset`` given for a format other than COCO results: refused."""
    from maslow.errors import MaslowError

    for flag, offset in (("--id-offset", id_offset), ("--category-offset", category_offset)):
        if offset:
            raise MaslowError(f"{command}: {flag} applies to --pred-format coco-results only, got --pred-format {fmt}")


def kpt_sigmas_error(err: Exception, path: str | Path, doing: str) -> Exception | None:
    """The library's KeypointSigmasError (keypoints that are not COCO's 17) as a FormatError naming ``path`` and
    the ``--kpt-sigmas`` option (``doing``: "evaluated", "scored"); None for any other error."""
    from maslow.errors import FormatError, KeypointSigmasError

    if not isinstance(err, KeypointSigmasError):
        return None
    return FormatError(f"can't be {doing}: {str(err).removesuffix('Pass kpt_sigmas')}Pass --kpt-sigmas, one sigma "
                       "per keypoint, comma separated", path=path)


def offset_flags(message: str) -> str:
    """An import message's fix for off-by-one ids (``Pass category_offset=1``) in the commands' own flags."""
    import re

    return re.sub(r"\b(id|category)_offset=(-?\d+)", r"--\1-offset \2", message)


def results_or_folder(pred: Path, fmt: str) -> str:
    """The format to read ``--pred`` with: a COCO results format (the default) given a folder that holds a
    ``dataset.json`` reads it as Parquet (``maslow crossval``/``predict`` write that by default); another folder
    is refused with the formats to name.

    Raises:
        FormatError: a folder given as a COCO results file.
    """
    from maslow.errors import FormatError

    if fmt.lower().replace("_", "-") not in ("coco-results", "coco-predictions") or not pred.is_dir():
        return fmt
    if (pred / "dataset.json").is_file():
        return "parquet"
    raise FormatError("--pred is a folder, not a COCO results file: name its format with --pred-format (see "
                      "`maslow formats`)", path=pred)


def kpt_sigmas_option(text: str | None, command: str) -> list[float] | None:
    """``--kpt-sigmas``: positive numbers separated by commas (None when not given).

    Raises:
        MaslowError: anything else, named with ``command``.
    """
    from maslow.errors import MaslowError

    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise MaslowError(f"{command}: --kpt-sigmas must be positive numbers separated by commas, got {text!r}")
    return values


def no_images(dataset: str | None, fmt: str | None) -> None:
    """The note for a dataset without images (a folder with no image files, a misspelt sub-folder): on stderr, so
    that --json stays parseable; the command goes on and reports nothing (exit 0, as for a dataset with nothing to
    report). Every command that reads images says it the same way (select, embed, outliers, diversity, stats ...)."""
    from maslow.io.images import IMAGE_SUFFIXES

    if dataset is not None and fmt is None and Path(dataset).is_dir():
        note = f"no images found in {dataset} (image files end in {', '.join(IMAGE_SUFFIXES)})"
    else:
        note = f"no images in {dataset if dataset is not None else 'the workspace head'}"
    err_console.print(note, markup=False, highlight=False)
