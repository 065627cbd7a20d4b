"""Data commands: sample, formats, init, import, log, export, convert, stats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from maslow import io
from maslow.cli.render import (
    console,
    lit,
    load_dataset,
    print_json,
    progress_bar,
    render_export,
    render_report,
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


def sample(
    dst: Annotated[Path, typer.Argument(help="Folder to write the sample into.")],
    n_images: Annotated[int, typer.Option("--n-images", "-n")] = 48,
    seed: Annotated[int, typer.Option()] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Generate the shapes sample dataset (PNG images + COCO JSON) to try maslow without downloads."""
    from maslow.sample import write_shapes

    ds = write_shapes(dst, n_images, seed=seed)
    rep = io.write(ds, dst / "annotations.json", "coco")
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
    from maslow.store import init_workspace

    ws = init_workspace(path, database=database)
    console.print(f"Workspace ready at {lit(ws.root)}")


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
    with progress_bar("checking images", enabled=not quiet) as progress:
        return io.import_dataset(src, fmt, images_root=images_root, strict=strict, check_files=check_files,
                                 decode=decode, progress=progress, **(options or {}))


def import_(
    src: Annotated[Path, typer.Argument(help="File or folder to import.")],
    fmt: FromOpt,
    name: Annotated[str | None, typer.Option("--name", help="Dataset name (default: the source's name).")] = None,
    images_root: ImagesRootOpt = None,
    message: Annotated[str, typer.Option("--message", "-m")] = "",
    strict: StrictOpt = False,
    check_files: Annotated[bool, typer.Option("--check-files/--no-check-files")] = True,
    deep: Annotated[bool, typer.Option("--deep", help="Decode every image (finds truncated files).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a dataset into the workspace as a new version, with its technical-check report."""
    from maslow.store import Workspace

    ws = Workspace.find()
    imp = _import(src, fmt, images_root, strict, check_files, deep, as_json)
    dataset = name or (src.stem if src.is_file() else src.name) or "dataset"
    dataset = "".join(c if c.isalnum() or c in "-_." else "-" for c in dataset).strip(".-") or "dataset"
    version = ws.commit(
        imp.dataset, dataset=dataset, message=message or f"import {src} ({imp.format})", report=imp.report,
        changes=[{"step": "import", "source": str(src), "format": imp.format,
                  "n_images": imp.dataset.n_images, "n_annotations": imp.dataset.n_annotations,
                  "n_issues": len(imp.report)}],
        source=str(src), format=imp.format,
    )
    if as_json:
        print_json({"version": version.to_dict(), "report": imp.report})
        return
    console.print(f"Imported {lit(repr(imp.dataset))}\nas [bold]{lit(dataset)}@{lit(version.id)}[/bold]"
                  + (f" (parent {lit(version.parent)})" if version.parent else ""))
    render_report(imp.report)


def log(
    dataset: Annotated[str | None, typer.Argument(help="Dataset name (default: the only one).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the versions of a dataset, newest first."""
    from maslow.store import Workspace

    versions = Workspace.find().log(dataset)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    rows = [(v.id, v.parent or "-", v.created, v.n_images, v.n_annotations, v.report.get("n_issues", 0), v.message)
            for v in versions]
    console.print(table(f"Versions of {versions[0].dataset}", ["version", "parent", "created", "images",
                                                                "annotations", "issues", "message"], rows))


def export(
    args: Annotated[list[str], typer.Argument(help="[VERSION] DST: version (default: head) and destination.")],
    fmt: Annotated[str | None, typer.Option("--to", "-t", help="Output format.")] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="ARGS are MODEL [DST]: export a trained model folder to "
                                                      "ONNX (DST default MODEL/model.onnx), checked with onnxruntime.")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a workspace version out in any format (or, with --onnx, a trained model as ONNX)."""
    from maslow.store import Workspace

    if onnx:
        from maslow.cli.train import export_onnx_command

        return export_onnx_command(args, as_json=as_json)
    if fmt is None:
        raise MaslowError("export: --to FORMAT is required (or --onnx to export a model)")
    if len(args) not in (1, 2):
        raise MaslowError(f"export: arguments must be [VERSION] DST, got {len(args)} arguments")
    ref, dst = (None, args[0]) if len(args) == 1 else (args[0], args[1])
    ds = Workspace.find().load(ref)
    rep = io.write(ds, Path(dst), fmt)
    print_json(rep) if as_json else render_export(rep)


def convert(
    src: Annotated[Path, typer.Argument(help="Input file or folder.")],
    dst: Annotated[Path, typer.Argument(help="Output file or folder.")],
    fmt_in: FromOpt,
    fmt_out: Annotated[str, typer.Option("--to", "-t", help="Output format.")],
    images_root: ImagesRootOpt = None,
    strict: StrictOpt = False,
    check_files: Annotated[bool, typer.Option("--check-files/--no-check-files")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Convert between formats (no workspace needed); reports import issues and what the target can't hold."""
    imp = _import(src, fmt_in, images_root, strict, check_files, False, as_json)
    rep = io.write(imp.dataset, dst, fmt_out)
    if as_json:
        print_json({"export": rep, "report": imp.report})
        return
    render_report(imp.report)
    render_export(rep)


def _stats_dataset(src: Path | None, fmt: str | None, version: str | None, images_root: Path | None) -> Dataset:
    if src is not None and fmt is None:
        raise MaslowError("stats: --from FORMAT is required with SRC")
    ds: Dataset = load_dataset(src, fmt, images_root=images_root) if src is not None else load_dataset(version, None)
    return ds


def stats(
    src: Annotated[Path | None, typer.Argument(help="File or folder (default: the workspace head).")] = None,
    fmt: Annotated[str | None, typer.Option("--from", "-f", help="Format of SRC.")] = None,
    version: Annotated[str | None, typer.Option("--version", "-v", help="Workspace version or dataset.")] = None,
    images_root: ImagesRootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Images and annotations per class and split, annotations per image, box sizes, label types."""
    from maslow.diversity import dataset_stats

    s = dataset_stats(_stats_dataset(src, fmt, version, images_root))
    if as_json:
        print_json(s)
        return
    d = s.to_dict()
    split_names = list(d["splits"])
    console.print(f"[bold]{d['n_images']}[/bold] images ({d['n_empty_images']} empty), "
                  f"[bold]{d['n_annotations']}[/bold] annotations; splits: "
                  + ", ".join(f"{lit(k)} {v}" for k, v in d["splits"].items()))
    rows = [(c["name"], c["images"], c["annotations"], *[c["per_split"][s_] for s_ in split_names],
             c["sizes"]["small"], c["sizes"]["medium"], c["sizes"]["large"]) for c in d["classes"]]
    console.print(table("Per class", ["class", "images", "annotations", *[f"in {s_}" for s_ in split_names],
                                      "small", "medium", "large"], rows))
    per = d["annotations_per_image"]
    console.print(table(f"Annotations per image (mean {per['mean']:.2f}, median {per['median']:g}, max {per['max']})",
                        ["annotations", "images"], list(per["histogram"].items())))
    console.print(table("Label types in use", ["type", "annotations"], list(d["label_types"].items())))
    for name, values in d["attributes"].items():
        console.print(table(f"Attribute {name}", ["value", "count"], list(values.items())))


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
    app.command("formats")(formats)
    app.command("init")(init)
    app.command("import")(import_)
    app.command("log")(log)
    app.command("export")(export)
    app.command("convert")(convert)
    app.command("stats")(stats)
