"""Diversity commands (`maslow diversity ...`): balance, duplicates, coverage, issues."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.text import Text

from maslow.cli._flags import flags_named
from maslow.cli.render import (
    console,
    either,
    lit,
    load_dataset,
    no_images,
    print_json,
    progress_bar,
    step_bars,
    table,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
DatasetArg = Annotated[
    str | None,
    typer.Argument(help="File or folder (with --from), or a workspace version / dataset (default: the head)."),
]
FromOpt = Annotated[str | None, typer.Option("--from", "-f", help="Format of DATASET; omit to load a workspace version.")]
ImagesRootOpt = Annotated[Path | None, typer.Option("--images-root", help="Folder the image paths are relative to.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write PNG plots into this folder.")]
#: duplicates and coverage need no labels: a plain image folder is read as select, embed and outliers read it
ImagesArg = Annotated[str | None, typer.Argument(
    help="An image folder (no --from needed), a file/folder with --from, or a workspace version / dataset "
    "(default: the head).")]

diversity_app = typer.Typer(help="Level 1, diverse data: class balance, duplicates, coverage, odd images.",
                            no_args_is_help=True)


@diversity_app.command("balance")
def balance_cmd(
    dataset: DatasetArg = None,
    fmt: FromOpt = None,
    images_root: ImagesRootOpt = None,
    split: Annotated[str | None, typer.Option("--split", help="Compute remedies on this split (e.g. train).")] = None,
    beta: Annotated[float, typer.Option(help="Effective-number beta.")] = 0.999,
    rare_share: Annotated[float | None, typer.Option(help="Rare below this share (default 0.5 / classes).")] = None,
    target_share: Annotated[float | None, typer.Option(help="Share `needed` aims at (default rare-share).")] = None,
    repeat_threshold: Annotated[float, typer.Option(help="LVIS repeat-factor threshold t.")] = 0.001,
    weight: Annotated[str, typer.Option(
        "--weight", help="Class weight shown: auto (median-frequency for semantic classes, effective-number for "
        "object classes), inverse, effective or median-frequency; --json has all.")] = "auto",
    include_ignored: Annotated[bool, typer.Option(
        "--include-ignored", help="Count ignored pixels (ignore classes of label maps, crowd regions of semantic "
        "classes, uncovered pixels) like any class.")] = False,
    plot: PlotOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts (pixels for semantic classes) per class, imbalance, rare classes, and the remedies."""
    from maslow.diversity.balance import balance, plot_balance
    from maslow.errors import MaslowError

    keys = {"inverse": "weight_inverse", "effective": "weight_effective", "median-frequency": "weight_median_frequency"}
    if weight != "auto" and weight not in keys:
        raise MaslowError(f"--weight: must be one of auto, {', '.join(keys)}, got {weight!r}")
    ds = load_dataset(dataset, fmt, images_root=images_root)
    if not ds.n_images:  # a note on stderr and exit 0, as every level-1 command (it printed a table of zeros)
        no_images(dataset, fmt)
        if not as_json:
            return
    with flags_named({f"balance: {p}": f"diversity balance: --{p.replace('_', '-')}"
                      for p in ("beta", "rare_share", "target_share", "repeat_threshold", "split")}):
        r = balance(ds, split=split, beta=beta, rare_share=rare_share, target_share=target_share,
                    repeat_threshold=repeat_threshold, include_ignored=include_ignored)
    written = plot_balance(r, plot) if plot is not None and ds.n_images else []
    if as_json:
        print_json({**r.to_dict(), "plots": [str(p) for p in written]})
        return
    d = r.to_dict()
    measures = list(d["imbalance_ratios"])  # "annotations" (object classes) and/or "pixels" (semantic classes)
    mixed = len(measures) > 1
    rows = []
    for c in d["classes"]:
        px = c["measure"] == "pixels"
        key = keys[weight] if weight != "auto" else "weight_median_frequency" if px else "weight_effective"
        amount = (f"{c['in_split_pixels']} px" if mixed else c["in_split_pixels"]) if px else c["in_split"]
        rows.append((c["name"] + (" (ignored)" if c["ignored"] else ""), amount, "-" if c["share"] is None else f"{c['share']:.1%}", "yes" if c["rare"] else "",
                     "-" if c[key] is None else round(c[key], 3), round(c["repeat_factor"], 3), c["needed"]))
    # the columns that fit an 80-column terminal; per-split counts, images, effective numbers and the other
    # weights are in --json
    console.print(table(f"Class balance (remedies on {r.split or 'all images'})",
                        ["class", "amount" if mixed else measures[0] if measures else "annotations", "share", "rare",
                         "weight", "repeat", "needed"], rows))
    names = {"weight_inverse": "inverse frequency", "weight_effective": f"effective number (beta {r.beta:g})",
             "weight_median_frequency": "median frequency"}
    legend = [names[keys[weight]]] if weight != "auto" else (
        [f"{names['weight_effective']} for object classes"] * ("annotations" in measures)
        + [f"{names['weight_median_frequency']} for semantic classes"] * ("pixels" in measures))
    console.print(f"weight: {', '.join(legend) or '-'}" + ("; shares, needed and imbalance of semantic classes in "
                                                          "pixels" if "pixels" in measures else ""))
    ratios = "; ".join(("-" if v is None else f"{v:.2f}") + (f" ({m})" if mixed else "")
                       for m, v in d["imbalance_ratios"].items()) or "-"
    thresholds = ", ".join(f"{v:.1%} of {m}" for m, v in d["rare_shares"].items()) or "-"
    targets = ", ".join(f"{v:.1%}" + (f" of {m}" if mixed else "") for m, v in d["target_shares"].items()) or "-"
    needed = ", ".join(f"{c['name']} +{c['needed']}" + (" px" if c["measure"] == "pixels" else "")
                       for c in d["classes"] if c["needed"])
    console.print(f"Imbalance ratio (max/min{'' if mixed or not measures else ' ' + measures[0]}): {ratios}; "
                  f"rare (< {thresholds}): {lit(', '.join(r.rare_classes) or 'none')}; to reach {targets}: "
                  + lit(needed or "nothing"))
    if d["ignored_classes"]:
        console.print(f"ignored (not weighed, weight 0; --include-ignored counts them): "
                      f"{lit(', '.join(d['ignored_classes']))}")
    console.print(f"Repeat-factor sampling (t={r.repeat_threshold:g}): {d['n_repeated_images']} of "
                  f"{d['n_images']} images repeated, epoch of {d['epoch_size']:.1f} images")
    for p in written:
        console.print(f"wrote {lit(p)}")


@diversity_app.command("duplicates")
def duplicates_cmd(
    dataset: ImagesArg = None,
    fmt: FromOpt = None,
    images_root: ImagesRootOpt = None,
    threshold: Annotated[int, typer.Option(help="Hamming distance (bits of 64) for near duplicates.")] = 8,
    exact_only: Annotated[bool, typer.Option("--exact-only", help="Compare file bytes only (no decoding).")] = False,
    min_side: Annotated[int, typer.Option(
        "--min-side", min=0, help="Near duplicates only for images at least this many pixels a side (0: all).")] = 32,
    features: Annotated[Path | None, typer.Option(
        "--features", help=".npy (m, d) embeddings aligned with the images: adds semantic duplicates.")] = None,
    cosine: Annotated[float, typer.Option(min=-1, max=1, help="Cosine similarity for semantic duplicates.")] = 0.95,
    top: Annotated[int | None, typer.Option("--top", min=0, help="Clusters shown (default 20; --json lists "
                                            "all).")] = None,
    paths: Annotated[int, typer.Option("--paths", min=1, help="Paths shown per cluster (--json lists all).")] = 5,
    plot: PlotOpt = None,
    as_json: JsonOpt = False,
    limit_old: Annotated[int | None, typer.Option("--limit", min=0, hidden=True)] = None,  # before --top
) -> None:
    """Exact and near-duplicate images (re-encodes, resizes, crops, mirrors), clusters, and split leakage."""
    from maslow.diversity.duplicates import find_duplicates, plot_duplicates

    shown, _ = either(top, limit_old, ("--top", "--limit"))
    limit: int = 20 if shown is None else shown
    ds = load_dataset(dataset, fmt, images_root=images_root, folders=True)
    if not ds.n_images:  # a note on stderr and exit 0, as every level-1 command ("0 duplicate pairs" said nothing)
        no_images(dataset, fmt)
        if not as_json:
            return
    from maslow.errors import FormatError

    feats = None if features is None else _read_features(features)
    if feats is not None and len(feats) != ds.n_images:  # named here: the library has no file to name
        raise FormatError(f"features must have one row per image ({ds.n_images}), got {len(feats)}", path=features)
    # a bar per step (hashing images, searching near duplicates, comparing features, clustering): one "hashing
    # images" bar sat at N/N while the search and the clustering ran
    with step_bars(enabled=not as_json) as (step, progress), flags_named(
            {"find_duplicates: threshold": "diversity duplicates: --threshold"}):
        r = find_duplicates(ds, threshold=threshold, near=not exact_only, min_side=min_side, features=feats,
                            cosine=cosine, progress=progress, step=step)
    written = plot_duplicates(r, ds, plot) if plot is not None else []
    if as_json:  # n_images: as the other level-1 commands' documents
        print_json({"n_images": ds.n_images, **r.to_dict(), "plots": [str(p) for p in written]})
        return
    n_cross = int(np.count_nonzero(r.cross_split))

    def some(rows: tuple[int, ...]) -> str:
        shown = ", ".join(r.paths[i] for i in rows[:paths])
        return shown + (f", ... {len(rows) - paths} more" if len(rows) > paths else "")

    console.print(f"{len(r.pairs)} duplicate pairs; {len(r.clusters)} clusters of a kept image and its duplicates: "
                  f"{len(r.to_drop)} images could be dropped (each is a duplicate of its cluster's kept copy)")
    if len(r.small):
        console.print(f"[yellow]{len(r.small)} images smaller than {r.min_side} pixels a side were not hashed: "
                      "exact duplicates only for them (perceptual hashes of tiny images collide; --features adds "
                      "semantic duplicates, --min-side 0 hashes them anyway)[/yellow]")
    rows = [(len(c.images), c.kind, ", ".join(c.splits) or "-", r.paths[c.keep], some(c.drop))
            for c in r.clusters[:limit]]
    if rows:
        console.print(table(f"Clusters (first {len(rows)} of {len(r.clusters)})",
                            ["size", "kind", "splits", "keep", "drop"], rows))
    leaks = r.leaks
    if leaks:
        leak_rows = [(", ".join(c.splits), c.kind, some(c.images)) for c in leaks[:limit]]
        console.print(table(Text(f"Leakage across splits: {len(leaks)} clusters", style="bold red"),
                            ["splits", "kind", "images"], leak_rows))
    if n_cross:
        console.print(f"[bold red]{n_cross} duplicate pairs cross splits[/bold red] "
                      "(each pair in --json has cross_split)")
    else:
        console.print("[green]No duplicate crosses a split.[/green]")
    if r.unreadable:
        console.print(f"[yellow]{len(r.unreadable)} images could not be read (first: {lit(r.unreadable[0][1])})[/yellow]")
    for p in written:
        console.print(f"wrote {lit(p)}")
    if plot is not None and not written:  # it was silent: the user looked for a plot that was never written
        console.print(f"no duplicate clusters: no plots written to {lit(plot)}")


def _read_features(path: Path) -> np.ndarray:
    """The ``--features`` array, refused (naming the file, and the row) unless a numeric (m, d) array of finite
    numbers: a NaN row never matched, without a word (``outliers`` and ``select`` refuse such rows too)."""
    from maslow.errors import FormatError

    try:
        f = np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError, EOFError) as e:  # EOFError: an empty file (click would print "Aborted.", exit 1)
        raise FormatError(f"features must be a .npy (m, d) array: {e}", path=path) from None
    if f.dtype.kind not in "biuf" or f.ndim != 2:
        raise FormatError(f"features must be a numeric (m, d) array, got {f.dtype} of shape {f.shape}", path=path)
    bad = np.flatnonzero(~np.isfinite(f).all(axis=1))
    if bad.size:
        raise FormatError(f"features must be finite, got NaN or inf ({bad.size} row{'s' if bad.size > 1 else ''})",
                          path=path, record=f"row {bad[0]}")
    return f


@diversity_app.command("coverage")
def coverage_cmd(
    dataset: ImagesArg = None,
    fmt: FromOpt = None,
    images_root: ImagesRootOpt = None,
    no_pixels: Annotated[bool, typer.Option("--no-pixels", help="Skip decoding (no brightness/contrast/sharpness).")]
    = False,
    rel_share: Annotated[float, typer.Option(help="Under-covered below this x the uniform share.")] = 0.25,
    grid: Annotated[int, typer.Option(help="Cells per side of the box-centre heatmap.")] = 4,
    plot: PlotOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Distributions of image, object and metadata properties, with the under-covered values named."""
    from maslow.diversity.coverage import coverage, plot_coverage

    ds = load_dataset(dataset, fmt, images_root=images_root, folders=True)
    if not ds.n_images:  # a note on stderr and exit 0, as every level-1 command (it printed tables of zeros)
        no_images(dataset, fmt)
        if not as_json:
            return
    with progress_bar("measuring images", enabled=not as_json and not no_pixels) as progress:
        with flags_named({"coverage: rel_share": "diversity coverage: --rel-share",
                          "coverage: grid": "diversity coverage: --grid"}):
            r = coverage(ds, pixels=not no_pixels, rel_share=rel_share, grid=grid, progress=progress)
    written = plot_coverage(r, plot) if plot is not None and ds.n_images else []
    if as_json:  # n_images: as the other level-1 commands' documents
        print_json({"n_images": ds.n_images, **r.to_dict(), "plots": [str(p) for p in written]})
        return
    d = r.to_dict()
    rows = [(k, *(("-" if v is None else round(v, 3)) for v in s.values())) for k, s in d["image_summary"].items()]
    console.print(table("Image properties", ["property", "mean", "p05", "median", "p95"], rows))
    for group, dists in (("objects", r.objects), ("metadata", r.metadata)):
        for name, dist in dists.items():
            if name == "position":
                continue
            console.print(table(f"{group}: {name}", ["value", "count"],
                                [(lab + (" (under)" if lab in dist.under else ""), n)
                                 for lab, n in zip(dist.labels, dist.counts, strict=True)]))
    under = r.under_covered()
    console.print(table(f"Under-covered values ({d['rule'].removeprefix('under-covered: ')})", ["group", "property", "value"], under) if under
                  else "[green]Nothing under-covered.[/green]")
    if r.unreadable:  # their pixel properties are NaN and left out of the histograms above: say so, as duplicates does
        console.print(f"[yellow]{len(r.unreadable)} images could not be read and are not in the image properties "
                      f"(first: {lit(r.unreadable[0][1])})[/yellow]")
    for p in written:
        console.print(f"wrote {lit(p)}")


@diversity_app.command("issues")
def issues_cmd(
    dataset: ImagesArg = None,
    fmt: FromOpt = None,
    images_root: ImagesRootOpt = None,
    dark: Annotated[float, typer.Option(help="Dark: the 99th percentile of grey (0-1) is below this.")] = 0.32,
    light: Annotated[float, typer.Option(help="Light: the 1st percentile of grey (0-1) is above this.")] = 0.68,
    min_range: Annotated[float, typer.Option(
        "--min-range", help="Low information: the 1st to 99th percentile of grey, measured on the picture reduced "
        "to at most 64 pixels a side (sensor noise averages out; --json's range, not p99 - p01), spans less than "
        "this (0-1).")]
    = 0.05,
    blur_share: Annotated[float, typer.Option(
        "--blur-share", help="Blurry: sharpness below this share of the dataset's median.")] = 0.1,
    aspect_factor: Annotated[float, typer.Option(
        "--aspect-factor", help="Odd aspect ratio: more elongated than this times the dataset's median.")] = 2.0,
    size_factor: Annotated[float, typer.Option(
        "--size-factor", help="Odd size: a side this many times smaller or larger than the dataset's median.")] = 3.0,
    grey_spread: Annotated[float, typer.Option(
        "--grey-spread", help="Grayscale: mean spread of R, G, B (0-255) at most this.")] = 2.0,
    paths: Annotated[int, typer.Option("--paths", min=1, help="Paths shown per issue (--json lists all).")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Odd images: dark, light, low information, blurry, odd aspect ratio, odd size, grayscale."""
    import math

    from maslow.diversity.issues import ISSUES, IssueRules, image_issues

    with flags_named({f"IssueRules.{p}": f"diversity issues: --{p.replace('_', '-')}" for p in (
            "dark", "light", "min_range", "blur_share", "aspect_factor", "size_factor", "grey_spread")}):
        rules = IssueRules(dark=dark, light=light, min_range=min_range, blur_share=blur_share,
                           aspect_factor=aspect_factor, size_factor=size_factor, grey_spread=grey_spread)
    ds = load_dataset(dataset, fmt, images_root=images_root, folders=True)
    if not ds.n_images:  # a note on stderr and exit 0, as every level-1 command
        no_images(dataset, fmt)
        if not as_json:
            return
    with progress_bar("measuring images", enabled=not as_json) as progress:
        r = image_issues(ds, rules=rules, progress=progress)
    if as_json:
        print_json(r.to_dict())
        return
    lim = r.limits
    rule = {
        "dark": f"99th percentile of grey < {lim['dark']:g}",
        "light": f"1st percentile of grey > {lim['light']:g}",
        "low_information": f"1st-99th percentile range at 64 px < {lim['low_information']:g}",
        "blurry": "too few images to compare" if math.isnan(lim["blurry"]) else
        f"sharpness < {lim['blurry']:.3g} ({rules.blur_share:g} x median)",
        "odd_aspect_ratio": f"elongation > {lim['odd_aspect_ratio']:.3g} ({rules.aspect_factor:g} x median)",
        "odd_size": f"side < {lim['odd_size_low']:.0f} or > {lim['odd_size_high']:.0f} px",
        "grayscale": "mostly grey dataset: not judged" if math.isnan(lim["grayscale"]) else
        f"colour spread <= {lim['grayscale']:g} of 255",
    }
    rows = []
    for t in ISSUES:
        flagged = r.rows(t).tolist()
        shown = ", ".join(r.paths[i] for i in flagged[:paths])
        rows.append((t, len(flagged), rule[t], shown + (f", ... {len(flagged) - paths} more" if len(flagged) > paths
                                                        else "")))
    console.print(f"{int(r.any.sum())} of {r.n_images} images have an issue")
    console.print(table("Odd images", ["issue", "images", "rule", "images (worst first)"], rows))
    if r.unreadable:
        console.print(f"[yellow]{len(r.unreadable)} images could not be read (first: {lit(r.unreadable[0][1])})[/yellow]")


def register(app: typer.Typer) -> None:
    app.add_typer(diversity_app, name="diversity")
