"""Quality commands: check (rule checks, annotator agreement, bias) with a table, JSON or an HTML report."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from maslow.cli._gate import FailOnOpt, gate
from maslow.cli.render import console, err_console, fold_columns, lit, load_dataset, print_json, progress_bar, table
from maslow.core.schema import LabelSchema

if TYPE_CHECKING:
    from maslow.quality import CheckConfig


def _read_schema(path: Path) -> LabelSchema:
    from maslow.ontology.schema_file import load_schema

    return load_schema(path)


def _read_config(path: Path) -> CheckConfig:
    """``--config``: ``CheckConfig.from_yaml``, but an empty file (or one of comments only) is refused as
    ``--schema`` refuses one: likely a config saved empty or cut short, which ran every default without a word."""
    from maslow.core.yamlfile import read_yaml
    from maslow.errors import FormatError
    from maslow.quality import CheckConfig

    data = read_yaml(path, what="check config")
    if data is None:
        raise FormatError("--config must be a mapping of CheckConfig fields, got an empty document (leave out "
                          "--config for the defaults)", path=path)
    return CheckConfig.from_dict(data, path=path)


def check_command(
    dataset: Annotated[str | None, typer.Argument(help="File or folder with --from; else a workspace version or dataset.")] = None,
    fmt: Annotated[str | None, typer.Option("--from", "-f", help="Format of DATASET (see `maslow formats`).")] = None,
    schema_path: Annotated[Path | None, typer.Option("--schema", help="Schema YAML to check attributes against.")] = None,
    config_path: Annotated[Path | None, typer.Option("--config", help="YAML mapping of CheckConfig fields: "
                                                     "thresholds, families, attribute rules.")] = None,
    images_root: Annotated[Path | None, typer.Option("--images-root", help="Folder the image paths are relative to.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    top: Annotated[int, typer.Option("--top", "-n", min=0, help="How many issues to list (and --json lists).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")] = False,
    outliers: Annotated[bool, typer.Option("--outliers", help="Also embed every box crop and flag objects far "
                                           "from their class or among another class (reads the images).")] = False,
    oriented: Annotated[bool | None, typer.Option("--oriented/--not-oriented", help="Check 4-point polygons as "
                                                  "oriented boxes (corner order, rectangle, size), or not; default: "
                                                  "when the dataset reads as oriented (YOLO OBB, DOTA, COCO obb).")]
    = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Rule checks without a model: geometry, duplicates, consistency, annotator agreement, bias, crop outliers."""
    from maslow import quality

    config = _read_config(config_path) if config_path is not None else quality.CheckConfig()
    if oriented is not None:  # the flag over the config file's `oriented`
        config = dataclasses.replace(config, oriented=oriented)
    ds = load_dataset(dataset, fmt, images_root=images_root)
    schema = _read_schema(schema_path) if schema_path is not None else None
    with progress_bar("checking", enabled=not as_json) as progress:
        issues = quality.check(ds, schema=schema, config=config, progress=progress)
    if outliers:
        with progress_bar("embedding crops, then ranking them", enabled=not as_json) as progress:
            issues = quality.QualityIssues.build([issues, quality.crop_outliers(ds, progress=progress)])
    # the figures behind the agreement findings (kappa, alpha, per annotator); null without shared images
    agreement = (quality.annotator_agreement(ds, config=config) if ds.annotations.annotator is not None
                 and "agreement" in config.families else None)
    report_top = max(top, 100)
    if html is not None:
        quality.write_html(issues, ds, html, top=report_top, agreement=agreement,
                           title=f"maslow check: {dataset if dataset is not None else 'the workspace dataset'}")
    missing = _missing_images(issues, ds, html=html is not None, outliers=outliers, top=report_top)
    if as_json:
        d = issues.to_dict(limit=top, names=ds.schema.names)
        d["issues"] = [_named(r, ds) for r in d["issues"]]  # the table's image and class, not only row numbers
        print_json({**d, "agreement": None if agreement is None else agreement.to_dict(),
                    "html": None if html is None else str(html),  # keys as qa's
                    "missing_images": None if missing is None else missing.to_dict()})
        gate(issues.severity.tolist(), fail_on, what="quality issue")
        return
    if missing is not None and missing.n_missing:
        what = [*(["--outliers skipped their objects"] if outliers else []),
                *(["the HTML report shows \"(no image)\" for their crops"] if html is not None else [])]
        scope = "" if outliers else " of the report's issues"
        err_console.print(f"warning: {missing.n_missing} of {missing.n_checked} images{scope} not found (first tried: "
                          f"{missing.first}): {' and '.join(what)}; pass --images-root FOLDER (the folder the image "
                          "paths are relative to)", markup=False, highlight=False, soft_wrap=True)
    if agreement is not None:
        ag = agreement.to_dict()
        console.print(f"Annotator agreement over {ag['n_objects']} objects of {ag['n_shared_images']} shared images: "
                      f"Krippendorff's alpha {ag['krippendorff_alpha']:.3f}, Fleiss' kappa {ag['fleiss_kappa']:.3f}")
        console.print(table("Per annotator (against the majority)", ["annotator", "precision", "recall"],
                            [(n, v["precision"], v["recall"]) for n, v in ag["per_annotator"].items()]))
    if not len(issues):
        console.print(f"[green]No quality issues found[/green] in {lit(repr(ds))}.")
    else:
        sev = issues.severity_of()
        console.print(table(f"Quality issues ({len(issues)})", ["type", "severity", "count"],
                            [(t, sev[t], c) for t, c in issues.counts().items()]))
        names = ds.schema.names
        rows = []
        for r in issues.top(top).rows(names=names):
            ann = r["annotation"]
            where = "(dataset)" if r["image"] < 0 else str(ds.images.path[r["image"]])
            rows.append((f"{r['score']:.2f}", r["severity"], r["type"], where,
                         "" if ann < 0 else f"{ann} {names[ds.annotations.label[ann]]}", r["reason"]))
        console.print(fold_columns(table(f"Top {len(rows)} issues", ["score", "severity", "type", "image", "annotation",
                                                                  "reason"], rows, justify_numbers=False),
                                   "type", "image"))
    if html is not None:
        console.print(f"Report written to {lit(html)}")
    gate(issues.severity.tolist(), fail_on, what="quality issue")


def _missing_images(issues: Any, ds: Any, *, html: bool, outliers: bool, top: int) -> Any:
    """The image files check reads that are not found (``maslow.quality.report.MissingImages``): with --outliers
    those of every image with an annotation (their objects are skipped), else with --html those of the report's
    crops; None when check reads no image (neither option, or a dataset without an images folder)."""
    from maslow.core.types import distinct
    from maslow.quality.report import missing_crop_images, missing_images

    if outliers and ds.root is not None:
        return missing_images(ds, distinct(ds.annotations.image))
    return missing_crop_images(issues, ds, top=top) if html else None


def _named(row: dict[str, Any], ds: Any) -> dict[str, Any]:
    """A ``QualityIssues`` row with ``file_name`` (the image's path) and ``class`` (the annotation's class), as the
    table shows them and as ``maslow qa`` writes them; null for dataset-wide findings."""
    img, ann = int(row["image"]), int(row["annotation"])
    names = ds.schema.names
    return {**row, "file_name": str(ds.images.path[img]) if img >= 0 else None,
            "class": names[int(ds.annotations.label[ann])] if ann >= 0 else None}


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)
