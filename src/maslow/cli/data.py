"""Data commands: sample, formats, init, import, log, diff, export, convert, stats."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from maslow import io
from maslow.cli._destination import (
    OverwriteOpt,
    check_destination,
    check_folder,
    check_images_kept,
    check_not_imported,
    empty_folder,
    read_paths,
)
from maslow.cli._gate import FailOnOpt, gate
from maslow.cli._options import parse_options
from maslow.cli.render import (
    console,
    format_name,
    lit,
    load_dataset,
    no_images,
    print_json,
    progress_bar,
    render_export,
    render_report,
    spinner,
    table,
)
from maslow.core.dataset import Dataset
from maslow.errors import MaslowError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
FromOpt = Annotated[str, typer.Option("--from", "-f", help="Input format (see `maslow formats`).")]
ImagesRootOpt = Annotated[
    Path | None, typer.Option("--images-root", help="Folder the image paths are relative to.")
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail (exit 2) on the first technical issue.")]
ReadOpt = Annotated[list[str] | None, typer.Option(
    "--read-option", help="KEY=VALUE passed to the reader (repeatable; VALUE in YAML: classes=\\[a,b], "
    "ignore_index=11, image_size=[640,480]); see docs/formats/.")]
WriteOpt = Annotated[list[str] | None, typer.Option(
    "--write-option", help="KEY=VALUE passed to the writer (repeatable; VALUE in YAML: task=segment, "
    "copy_images=true); see docs/formats/.")]

#: Names that say what a file or folder holds, not which dataset it is: ``import`` names the dataset after the
#: nearest folder above them (``bccd/annotations`` -> ``bccd``), so two datasets never share one history by accident.
_GENERIC_NAMES = frozenset({
    "annotations", "annotation", "anns", "labels", "label", "gt", "gts", "ground_truth", "groundtruth", "images",
    "data", "dataset", "default", "obj", "instances", "instances_default", "result", "results", "export", "masks",
    "train", "val", "valid", "validation", "test", "jpegimages", "segmentationclass", "label_maps", "labelmaps",
})


def _default_name(src: Path) -> str:
    """The dataset name ``import`` gives ``src`` without ``--name``: its stem, or the nearest folder above it when
    the stem is a generic name (``annotations``, ``labels``, ``data``, ...)."""
    p = src.resolve()
    name = p.stem if p.suffix and not p.is_dir() else p.name
    for parent in p.parents:
        if name.lower() not in _GENERIC_NAMES:
            break
        name = parent.name or name
    return _clean_name(name)


def _clean_name(name: str) -> str:
    """``name`` as a dataset name: other characters than letters, digits, '-', '_' and '.' become '-'."""
    return _cleaned(name) or "dataset"


def _cleaned(name: str) -> str:
    """``_clean_name`` without its fallback: empty when ``name`` has no letter, digit or '_' to keep."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-")


def _given_name(name: str) -> str:
    """The dataset name of ``import --name NAME``: NAME cleaned as a name derived from the source is, with a note
    when that changed it (``'my set'`` became ``my-set`` without a word, and ``maslow log 'my set'`` then failed);
    a NAME with nothing to keep (``'@@'``) is refused: every such name became the same dataset ``dataset``."""
    from maslow.cli.render import err_console

    dataset = _cleaned(name)
    if not dataset:
        raise MaslowError(f"import: --name {name!r}: a dataset name must use letters, digits, '-', '_' or '.' "
                          "(and hold a letter, digit or '_')")
    if dataset != name:
        err_console.print(f"note: --name {name!r}: a dataset name uses letters, digits, '-', '_' and '.'; "
                          f"imported as {dataset!r}", markup=False, highlight=False, soft_wrap=True)
    return dataset


def sample(
    dst: Annotated[Path, typer.Argument(help="Folder to write the sample into.")],
    n_images: Annotated[int, typer.Option("--n-images", "-n", min=0)] = 48,  # min: named as the flag, not "shapes: n_images"
    seed: Annotated[int, typer.Option()] = 0,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate the shapes sample dataset (PNG images + COCO JSON) to try maslow without downloads."""
    from maslow.core.atomic import atomic_dir, walked
    from maslow.sample import write_shapes

    if empty_folder(dst):  # written into, as before (the current folder too)
        ds = write_shapes(dst, n_images, seed=seed)
        rep = io.write(ds, dst / "annotations.json", "coco")
    else:  # a new folder, or (--overwrite) one replaced: it appears whole
        check_folder(dst, overwrite=overwrite, sources=(), what="the sample")
        with walked([dst]), atomic_dir(dst) as tmp:  # looked through for a workspace once, by the check
            ds = write_shapes(tmp, n_images, seed=seed)
            rep = io.write(ds, tmp / "annotations.json", "coco")
        rep.path = str(dst / "annotations.json")
    if as_json:
        print_json(rep)
    else:
        console.print(f"Wrote {ds.n_images} images and {ds.n_annotations} annotations to {lit(dst)} "
                      f"(COCO: {lit(dst / 'annotations.json')})")


def formats(as_json: JsonOpt = False) -> None:
    """List the formats maslow reads and writes."""
    rows = [(f.name, "read/write" if f.can_write else "read", ", ".join(f.aliases), f.description)
            for f in io.FORMATS.values()]
    if as_json:
        print_json([dict(zip(("name", "modes", "aliases", "description"), r, strict=True)) for r in rows])
    else:
        console.print(table("Formats", ["name", "modes", "aliases", "description"], rows))


def init(
    path: Annotated[Path, typer.Argument(help="Workspace folder.")] = Path("."),
    database: Annotated[str | None, typer.Option(help="Database URL (default: SQLite in .maslow/).")] = None,
) -> None:
    """Create a workspace: maslow.yaml and .maslow/."""
    from maslow.cli.render import err_console
    from maslow.store import Workspace, init_workspace
    from maslow.store.workspace import CONFIG

    existed = (path / CONFIG).is_file()
    try:  # a workspace inside another one hides it from the commands run below it
        outer: Path | None = Workspace.find(path.resolve().parent).root if not existed else None
    except MaslowError:
        outer = None
    ws = init_workspace(path, database=database)
    if existed:
        console.print(f"Workspace already at {lit(ws.root)}: left as it is")
        if database is not None and ws.settings().get("database") != database:
            err_console.print(f"note: --database {database} was not applied: the workspace keeps "
                              f"{ws.settings().get('database')} (edit {ws.root / CONFIG} to change it)",
                              markup=False, highlight=False)
        return
    console.print(f"Workspace ready at {lit(ws.root)}")
    if outer is not None:
        err_console.print(f"note: this workspace is inside the workspace at {outer}; commands run in {ws.root} or "
                          "below use the new one", markup=False, highlight=False)


def _import(
    src: Path,
    fmt: str,
    images_root: Path | None,
    strict: bool,
    check_files: bool,
    decode: bool,
    quiet: bool,
    options: dict[str, Any] | None = None,
) -> io.Imported:
    # on stderr from the start: reading 1,500,000 annotations takes seconds before any image is checked (a bar
    # shown only for --check-files left a --no-check-files import silent); the count appears once images are checked
    with progress_bar(f"importing {lit(src.name)}" + (" (then checking images)" if check_files else ""),
                      enabled=not quiet) as progress:
        return io.import_dataset(src, fmt, images_root=images_root, strict=strict, check_files=check_files,
                                 decode=decode, progress=progress, **(options or {}))


#: Findings about image files (``io.check_images``, a reader's image search): an input with no annotation and
#: only these is an image list with files missing, not annotations refused.
_IMAGE_FILE_ISSUES = frozenset({"missing_image", "unreadable_image", "exif_rotated", "size_mismatch"})


def _about_images(issue_type: str) -> bool:
    """An issue about the images table (a file, a repeated image id or name, an image without a size), not about an
    annotation record: an input of images only may have these and still be written (its annotations were none)."""
    return issue_type in _IMAGE_FILE_ISSUES or "image" in issue_type


def _refuse_nothing_read(imp: io.Imported, src: Path, *, quiet: bool) -> None:
    """Exit 2 (a FormatError naming the first error's file, record and field) when the reader read no annotation and
    reported errors about the file's records: every annotation the input had was refused (77 YOLO lines of 5 values
    read with ``task=obb``), so the output would hold none. Annotations partly read are kept, with the report."""
    from maslow.errors import FormatError

    if imp.dataset.n_annotations:
        return
    errors = [i for i in imp.report if i.severity == "error" and not _about_images(i.type)]
    if not errors:
        return
    if not quiet:
        render_report(imp.report)
    first = errors[0]
    raise FormatError(f"{first.message} [{first.type}; {len(errors)} errors; no annotation could be read, so nothing "
                      "was written: fix the input or its --from/--read-option]", path=first.file or src,
                      record=first.record, field=first.field)


def import_(
    src: Annotated[Path, typer.Argument(help="File or folder to import.")],
    fmt: FromOpt,
    name: Annotated[str | None, typer.Option("--name", help="Dataset name (default: the source's name).")] = None,
    images_root: ImagesRootOpt = None,
    message: Annotated[str, typer.Option("--message", "-m", help="The version's message (default: \"import SRC "
                                                              "(FORMAT)\"), shown by `maslow log`.")] = "",
    strict: StrictOpt = False,
    check_files: Annotated[bool, typer.Option("--check-files/--no-check-files", help="Check that every image file "
                                              "exists, is readable and has the declared size (EXIF rotation "
                                              "included; headers only, --deep decodes); --no-check-files skips "
                                              "it.")] = True,
    deep: Annotated[bool, typer.Option("--deep", help="Decode every image (finds truncated files).")] = False,
    read_options: ReadOpt = None,
    fail_on: FailOnOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a dataset into the workspace as a new version, with its technical-check report."""
    from maslow.store import Workspace

    fmt = format_name(fmt, "--from")
    ws = Workspace.find()
    options = parse_options(read_options, io.get_format(fmt).parse, flag="--read-option", what=f"{fmt} reader")
    given = _given_name(name) if name else None  # before the data is read
    imp = _import(src, fmt, images_root, strict, check_files, deep, as_json, options)
    _refuse_nothing_read(imp, src, quiet=as_json)
    dataset = given or _default_name(src)
    # recorded relative to the workspace root (absolute when outside it): the same file imported from a subfolder
    # or from a moved copy of the workspace is the same source
    source = ws.relpath(src).as_posix()
    previous = ws.settings().get("datasets") or {}
    known = previous.get(dataset) if isinstance(previous, dict) else None
    if isinstance(known, dict) and known.get("source") and not _same_source(str(known["source"]), src, ws.root):
        from maslow.cli.render import err_console

        err_console.print(f"note: {dataset!r} was imported from {known['source']} ({known.get('format', '?')}); "
                          f"this import adds a version of it. Use --name for a dataset of its own.",
                          markup=False, highlight=False)
    with spinner(f"writing the version of {dataset}", enabled=not as_json):
        done = ws.commit_result(
            imp.dataset, dataset=dataset, message=message or f"import {source} ({imp.format})", report=imp.report,
            changes=[{"step": "import", "source": source, "format": imp.format,
                      "n_images": imp.dataset.n_images, "n_annotations": imp.dataset.n_annotations,
                      "n_issues": len(imp.report)}],
            source=source, format=imp.format,
        )
    # the same data as the head when the commit held the workspace lock: no new version (its record stays)
    version, unchanged = done.version, done.unchanged
    if as_json:
        print_json({"version": version.to_dict(), "unchanged": unchanged, "report": imp.report})
        gate((i.severity for i in imp.report), fail_on, what="technical issue")
        return
    if unchanged:
        console.print(f"Unchanged: {lit(repr(imp.dataset))}\nis the data of [bold]{lit(dataset)}@{lit(version.id)}"
                      "[/bold], its newest version; no version was added")
    else:
        console.print(f"Imported {lit(repr(imp.dataset))}\nas [bold]{lit(dataset)}@{lit(version.id)}[/bold]"
                      + (f" (parent {lit(version.parent)})" if version.parent else ""))
    render_report(imp.report)
    gate((i.severity for i in imp.report), fail_on, what="technical issue")


def _same_source(known: str, src: Path, root: Path) -> bool:
    """Whether ``src`` is the source recorded for a dataset (recorded as typed: relative to the folder the first
    import ran in, the workspace root or one below it)."""
    try:
        here = src.resolve()
        return any(p.resolve() == here for p in (Path(known), root / known))
    except OSError:
        return known == str(src)


def log(
    dataset: Annotated[str | None, typer.Argument(help="Dataset name (default: the only one).")] = None,
    with_issues: Annotated[bool, typer.Option("--issues", help="With --json: each version's whole technical-check "
                                              "report (every issue), not only its counts.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the versions of a dataset, newest first."""
    from maslow.store import Workspace

    ws = Workspace.find()
    versions = ws.log(dataset)
    if as_json:  # report: the counts, every issue with --issues (report.json), null for a version never checked
        print_json([v.to_dict() | {"report": (ws.report(v.id).to_dict() if with_issues else v.report) if v.checked
                                   else None} for v in versions])
        return
    # one entry per version, as `git log` prints commits: a table of seven columns cut the date, the source path
    # and the message to a few letters each in an 80-column terminal. Each version's parent is the next one listed
    # (the list follows the parents; --json has them)
    console.print(f"[bold]Versions of {lit(versions[0].dataset)}[/bold], newest first")
    for v, parent in zip(versions, [*versions[1:], None], strict=True):
        created = v.created[:16].replace("T", " ") + (" UTC" if v.created.endswith("+00:00") else "")
        issues = v.report.get("n_issues", 0)
        checked = f"{issues} {'issue' if issues == 1 else 'issues'}" if v.checked else "not checked"
        # what changed since the parent, in counts: two imports of one file read the same otherwise
        d_img, d_ann = ("", "") if parent is None else (_delta(v.n_images - parent.n_images),
                                                        _delta(v.n_annotations - parent.n_annotations))
        console.print(f"[bold yellow]{lit(v.id)}[/bold yellow]  {lit(created)}  {v.n_images} images{d_img}, "
                      f"{v.n_annotations} annotations{d_ann}, {checked}",
                      highlight=False)
        if v.message:
            console.print(f"    {lit(v.message)}", highlight=False, soft_wrap=True)  # a path stays whole


def _delta(n: int) -> str:
    return f" ({n:+d})" if n else ""


def diff(
    refs: Annotated[list[str] | None, typer.Argument(help="[OLD] [NEW]: versions or datasets (see `maslow log`); "
                                                          "one: that version against its parent; none: the head "
                                                          "against its parent.")] = None,
    top: Annotated[int, typer.Option("--top", "-n", min=0, help="How many paths to list per list (and --json "
                                                                "lists).")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """What changed between two versions: images added, removed and changed; annotations added and removed, per
    class and per image."""
    from maslow.store import Workspace
    from maslow.store.diff import diff_datasets

    refs = refs or []
    if len(refs) > 2:
        raise MaslowError(f"diff: arguments must be [OLD] [NEW], got {len(refs)} arguments")
    ws = Workspace.find()
    new = ws.version(refs[-1] if refs else None)
    if len(refs) == 2:
        old = ws.version(refs[0])
    elif new.parent is None:
        raise MaslowError(f"diff: version {new.dataset}@{new.id} is the first of {new.dataset!r} (no parent); "
                          "give two versions: maslow diff OLD NEW")
    else:
        old = ws.record(new.parent)  # by id: a deleted parent is said as missing, not as a malformed name
    from maslow.ontology import diff_schemas

    with spinner(f"comparing {old.id} with {new.id}", enabled=not as_json):
        a, b = ws.load(old.id), ws.load(new.id)
        d = diff_datasets(a, b)
    out = d.to_dict(limit=top)
    schema = diff_schemas(a.schema, b.schema) if d.schema_changed else None
    if as_json:
        brief = {v.id: v.to_dict() | {"report": {k: x for k, x in v.report.items() if k != "issues"}} for v in (old, new)}
        print_json({"old": brief[old.id], "new": brief[new.id], **out,  # the reports' counts, not every issue
                    "schema": None if schema is None else schema.to_dict()})
        return
    console.print(f"[bold]{lit(old.dataset)}@{lit(old.id)}[/bold] -> [bold]{lit(new.dataset)}@{lit(new.id)}[/bold]: "
                  f"{d.n_images[0]} -> {d.n_images[1]} images, {d.n_annotations[0]} -> {d.n_annotations[1]} "
                  "annotations", highlight=False)
    if schema is not None:
        from maslow.cli.schema import schema_diff_rows

        console.print(table(f"Schema v{schema.versions[0]} -> v{schema.versions[1]}", ["what", "change", "name"],
                            schema_diff_rows(schema)))
    from maslow.cli._diff_render import print_diff

    print_diff(d, out)


def export(
    args: Annotated[list[str], typer.Argument(help="[VERSION] DST: version (default: head) and destination.")],
    fmt: Annotated[str | None, typer.Option("--to", "-t", help="Output format.")] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="ARGS are MODEL [DST]: export a trained model folder to "
                                                      "ONNX (DST default MODEL/model.onnx), checked with onnxruntime.")]
    = False,
    write_options: WriteOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a workspace version out in any format (or, with --onnx, a trained model as ONNX)."""
    from maslow.core.atomic import walked
    from maslow.store import Workspace

    if onnx:
        from maslow.cli.train import export_onnx_command

        return export_onnx_command(args, as_json=as_json)
    if fmt is None:
        raise MaslowError("export: --to FORMAT is required (or --onnx to export a model)")
    if len(args) not in (1, 2):
        raise MaslowError(f"export: arguments must be [VERSION] DST, got {len(args)} arguments")
    ref, dst = (None, args[0]) if len(args) == 1 else (args[0], args[1])
    fmt = format_name(fmt, "--to")
    options = parse_options(write_options, io.get_format(fmt).write, flag="--write-option", what=f"{fmt} writer")
    imported = _imported_from()
    check_not_imported(Path(dst), imported)
    folders = check_destination(Path(dst), fmt, overwrite=overwrite, sources=[p for p, _ in imported],
                                options=options)
    with walked(folders):  # the check looked through them for a workspace: the writer doesn't again
        ds = Workspace.find().load(ref)
        check_images_kept(folders, ds, dst=dst)  # a file DST that is an image read: replaced by the export
        with _writing(fmt, dst, enabled=not as_json) as progress:
            rep = io.write(ds, Path(dst), fmt, progress=progress, **options)
    _note_images_left_behind(rep, ds, Path(dst), fmt)
    print_json(rep) if as_json else render_export(rep)


def _imported_from() -> list[tuple[Path, str]]:
    """The files the workspace's datasets were imported from, as their versions record them (relative to its root,
    or absolute), each with its dataset's name. None outside a workspace or with a damaged record: loading the
    version says why."""
    from maslow.store import Workspace

    found: list[tuple[Path, str]] = []
    with contextlib.suppress(MaslowError, OSError):
        ws = Workspace.find()
        for name in ws.datasets():
            found += [(ws.root / v.source, name) for v in ws.log(name) if v.source]
    return found


@contextlib.contextmanager
def _writing(fmt: str, dst: str | Path, *, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr while a writer that reports progress works (copying 100,000 images into class
    folders takes minutes), else a spinner; shown only on a terminal. Gives the callback for ``io.write``."""
    text = f"writing {fmt} to {dst}"
    if enabled and io.get_format(fmt).reports_progress:
        with progress_bar(lit(text)) as progress:
            yield progress
        return
    with spinner(text, enabled=enabled):
        yield None


#: Formats whose files name the images without holding or linking them.
_NO_IMAGES = {"coco": "file", "coco-results": "file", "cvat": "file", "labelstudio": "file", "masks": "folder"}


def _note_images_left_behind(rep: Any, ds: Dataset, dst: Path, fmt: str) -> None:
    """Add a note to ``rep`` when the export names image files that a reader will not find beside it: reading the
    export back then needs ``--images-root`` (a COCO file written to ``out/`` names ``a.jpg``, which is not in
    ``out/``)."""
    kind = _NO_IMAGES.get(io.get_format(fmt).name)
    if kind is None or ds.root is None or not ds.n_images:
        return
    root = Path(ds.root)
    probe = [str(p) for p in ds.images.path[:3].tolist() if not Path(str(p)).is_absolute()]
    probe = [p.split("#", 1)[0] for p in probe if (root / p.split("#", 1)[0]).is_file()]
    if not probe:  # the images are not on this machine either: nothing useful to say
        return
    # where the readers look: beside a file, in images/ next to it; label maps: images/ beside their folder (the
    # folder itself holds the label maps, which may share the images' names)
    places = [dst.parent, dst.parent / "images", dst.parent.parent / "images"] if kind == "file" else [
        dst.parent / "images"]
    if any((c / p).is_file() for c in places for p in probe):
        return
    rep.notes.append(f"image files were not copied: they stay under {root.resolve()}; to read this export back, "
                     f"pass --images-root {root.resolve()}")


def convert(
    src: Annotated[Path, typer.Argument(help="Input file or folder.")],
    dst: Annotated[Path, typer.Argument(help="Output file or folder.")],
    fmt_in: FromOpt,
    fmt_out: Annotated[str, typer.Option("--to", "-t", help="Output format.")],
    images_root: ImagesRootOpt = None,
    strict: StrictOpt = False,
    check_files: Annotated[bool, typer.Option("--check-files/--no-check-files", help="Also check that every "
                                              "image file exists, is readable and has the declared size (EXIF "
                                              "rotation included; headers only); off by default.")] = False,
    read_options: ReadOpt = None,
    write_options: WriteOpt = None,
    overwrite: OverwriteOpt = False,
    fail_on: FailOnOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert between formats (no workspace needed); reports import issues and what the target can't hold."""
    from maslow.core.atomic import walked

    fmt_in, fmt_out = format_name(fmt_in, "--from"), format_name(fmt_out, "--to")
    r_opts = parse_options(read_options, io.get_format(fmt_in).parse, flag="--read-option", what=f"{fmt_in} reader")
    w_opts = parse_options(write_options, io.get_format(fmt_out).write, flag="--write-option",
                            what=f"{fmt_out} writer")
    sources = read_paths(src, fmt_in, images_root=images_root, options=r_opts)
    folders = check_destination(dst, fmt_out, overwrite=overwrite, sources=sources, options=w_opts)
    with walked(folders):  # the check looked through them for a workspace: the writer doesn't again
        imp = _import(src, fmt_in, images_root, strict, check_files, False, as_json, r_opts)
        _refuse_nothing_read(imp, src, quiet=as_json)
        check_images_kept(folders, imp.dataset, dst=dst)
        with _writing(fmt_out, dst, enabled=not as_json) as progress:
            rep = io.write(imp.dataset, dst, fmt_out, progress=progress, **w_opts)
    _note_images_left_behind(rep, imp.dataset, dst, fmt_out)
    if as_json:
        print_json({"export": rep, "report": imp.report})
    else:
        render_report(imp.report)
        render_export(rep)
    gate((i.severity for i in imp.report), fail_on, what="technical issue")


def _stats_dataset(src: str | None, fmt: str | None, version: str | None, images_root: Path | None) -> Dataset:
    # SRC without --from names a workspace version or dataset, as DATASET does in check, select and diversity
    # (it was refused: `maslow stats shapes` failed where `maslow check shapes` worked); --version still works
    if src is not None and version is not None:
        raise MaslowError(f"stats: give SRC or --version, not both (got {src!r} and --version {version!r})")
    if fmt is not None and src is None:
        raise MaslowError("stats: SRC (a file or folder) is required with --from FORMAT")
    ds: Dataset = load_dataset(src if src is not None else version, fmt, images_root=images_root)
    return ds


def stats(
    src: Annotated[str | None, typer.Argument(help="File or folder with --from; else a workspace version or "
                                                   "dataset (default: the workspace head).")] = None,
    fmt: Annotated[str | None, typer.Option("--from", "-f", help="Format of SRC (see `maslow formats`).")] = None,
    version: Annotated[str | None, typer.Option("--version", "-v", help="Workspace version or dataset (as SRC "
                                                                        "without --from).")] = None,
    images_root: ImagesRootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Images and annotations per class and split, annotations per image, box sizes, label types."""
    from maslow.diversity import dataset_stats

    s = dataset_stats(_stats_dataset(src, fmt, version, images_root))
    if not s.n_images:  # the note every command that reads images gives, on stderr (--json stays parseable)
        no_images(src if src is not None else version, fmt)
    if as_json:
        print_json(s)
        return
    d = s.to_dict()
    if not d["n_images"]:  # it printed "splits: " and "mean nan" over tables of zeros
        names = [c["name"] for c in d["classes"]]
        shown = ", ".join(names[:30]) + (f", ... ({len(names) - 30} more)" if len(names) > 30 else "")
        console.print(f"0 annotations; {len(names)} class{'es' if len(names) != 1 else ''} in the schema"
                      + (f": {lit(shown)}" if names else ""))
        return
    split_names = list(d["splits"])
    console.print(f"[bold]{d['n_images']}[/bold] images ({d['n_empty_images']} empty), "
                  f"[bold]{d['n_annotations']}[/bold] annotations; splits: "
                  + (", ".join(f"{lit(k)} {v}" for k, v in d["splits"].items()) or "-"))
    # classes without annotations (62 of COCO's 80 in a small subset) are named below the table, not listed in it;
    # box size buckets only when there are boxes (classification and semantic masks have none)
    used = [c for c in d["classes"] if c["annotations"]] or d["classes"]
    unused = [c["name"] for c in d["classes"] if not c["annotations"]] if len(used) < len(d["classes"]) else []
    sizes = any(sum(c["sizes"].values()) for c in d["classes"])
    size_cols = ["small", "medium", "large"] if sizes else []
    # semantic classes (one annotation per class and image) are measured in pixels: their total and share
    pixels = any(c["semantic"] for c in d["classes"])
    pixel_cols = ["pixels", "pixel share"] if pixels else []
    counts = [(c["name"], c["images"], c["annotations"], *[c["per_split"][s_] for s_ in split_names]) for c in used]
    more = [(*[c["sizes"][k] for k in size_cols],
             *(["-" if c["pixels"] is None else c["pixels"],
                "-" if c["pixel_share"] is None else f"{c['pixel_share']:.1%}"] if pixels else [])) for c in used]
    count_cols = ["class", "images", "annotations", *[f"in {s_}" for s_ in split_names]]
    sizes_title = " (area as COCO: small < 32², medium < 96², large)" if sizes else ""
    one = table("Per class" + sizes_title, [*count_cols, *size_cols, *pixel_cols],
                [(*a, *b) for a, b in zip(counts, more, strict=True)])
    natural = console.measure(one, options=console.options.update_width(10_000)).maximum
    if natural <= console.width or not (size_cols or pixel_cols):
        console.print(one)
    else:  # three splits and the size buckets cut "annotations" and "medium" to "anno…" in 80 columns: two tables
        console.print(table("Per class", count_cols, counts))
        console.print(table(("Sizes" if sizes else "Pixels") + " per class" + sizes_title,
                            ["class", *size_cols, *pixel_cols], [(c[0], *m) for c, m in zip(counts, more, strict=True)]))
    if unused:
        shown = ", ".join(unused[:30]) + (f", ... ({len(unused) - 30} more)" if len(unused) > 30 else "")
        console.print(f"[yellow]{len(unused)} of {len(d['classes'])} classes have no annotation:[/yellow] {lit(shown)}")
    per = d["annotations_per_image"]
    mean = "-" if per["mean"] is None else f"{per['mean']:.2f}"
    median = "-" if per["median"] is None else f"{per['median']:g}"
    # the summary on a line of its own: as the title of this narrow table it wrapped over three lines
    console.print(f"Annotations per image: mean {mean}, median {median}, max {per['max']}")
    console.print(table("Annotations per image", ["annotations", "images"], list(per["histogram"].items())))
    console.print(table("Label types in use", ["type", "annotations"], list(d["label_types"].items())))
    for name, values in d["attributes"].items():
        console.print(table(f"Attribute {name}", ["value", "count"], list(values.items())))


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
    app.command("formats")(formats)
    app.command("init")(init)
    app.command("import")(import_)
    app.command("log")(log)
    app.command("diff")(diff)
    app.command("export")(export)
    app.command("convert")(convert)
    app.command("stats")(stats)
