"""``maslow compare``: are we better off with model B? Two prediction files on one truth: each COCO stat for A and
B, the delta with its paired bootstrap interval (flagged where it excludes 0), per-class AP deltas, and the
calibration of each model's scores; plots and an HTML report on request."""

from __future__ import annotations

import contextlib
import enum
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from maslow.cli.metrics import _LABEL_TASKS, _located, _read_pred, _read_truth, _render_issues
from maslow.cli.render import (
    console,
    json_text,
    kpt_sigmas_option,
    lit,
    print_json,
    progress_bar,
    refuse_import_error,
    table,
)
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.errors import FormatError, MaslowError
from maslow.metrics.calibration import Calibration, detection_calibration
from maslow.metrics.coco import coco_map
from maslow.metrics.compare import Comparison, class_rows, compare_models

_LABELS = ("A", "B")
_PLOTS = ("ap_delta_per_class.png", "reliability.png")


class IouType(enum.StrEnum):
    bbox = "bbox"
    segm = "segm"
    keypoints = "keypoints"


def _read_model(src: Path, fmt: str, truth: Dataset) -> tuple[Dataset, Report, list[str]]:
    """One model's predictions on truth's images; any prediction that can't be evaluated (an image or class the
    truth lacks, a malformed record) is refused, naming the file, record and field: a comparison of what is left
    of two files would compare different things."""
    pred, report, notes = _read_pred(src, fmt, truth, 0)
    errors = [i for i in report.issues if i.severity == "error"]
    if errors:
        refuse_import_error(errors, src, tail=". Both models must be evaluated on the same images and classes; fix "
                            "the file or read it against its own truth")
    lost = [n for n in notes if "the truth lacks" in n]
    if lost:
        raise FormatError(f"{lost[0]}; both models must be evaluated on the same images", path=src)
    return pred, report, notes


def _calibrate(truth: Dataset, pred: Dataset, kind: str, iou_threshold: float, bins: int,
               sigmas: list[float] | None) -> tuple[Calibration | None, str | None]:
    """The calibration of one model's scores, or None and why (scores that are not confidences in [0, 1]; the
    evaluation is still checked, so a bad file fails here, named)."""
    s = pred.annotations.score
    if s is not None and len(s) and not ((s >= 0) & (s <= 1)).all():
        coco_map(truth, pred, iou_type=kind, kpt_sigmas=sigmas)  # the same checks as the comparison's
        return None, (f"scores outside [0, 1] (from {float(np.nanmin(s)):g} to {float(np.nanmax(s)):g}): not "
                      "confidences, so no calibration")
    return detection_calibration(truth, pred, iou_type=kind, iou_threshold=iou_threshold, n_bins=bins,
                                 kpt_sigmas=sigmas), None


def _f(v: float, signed: bool = False) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def _flag(lo: float, hi: float) -> str:
    return "B better" if lo > 0 else "B worse" if hi < 0 else ""


def _delta_table(title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> Any:
    """A table whose rows are green where B is better and red where it is worse (the last cell says which)."""
    from rich.markup import escape

    t = table(title, columns, [])
    for r in rows:
        t.add_row(*[escape(str(v)) for v in r], style={"B better": "green", "B worse": "red"}.get(r[-1]))
    return t


def _interval(lo: float, hi: float) -> str:
    return "-" if math.isnan(lo) else f"{lo:+.3f} to {hi:+.3f}"


def _render(c: Comparison, cals: list[Calibration | None], n_truth: np.ndarray, sources: dict[str, str]) -> None:
    for name in ("A", "B"):
        console.print(f"{name}: {lit(sources[name])}", highlight=False)
    ci = f"{c.confidence:.0%} paired bootstrap, {c.n_bootstrap} replicates" if c.n_bootstrap else "no bootstrap"
    rows: list[tuple[Any, ...]] = [(n, _f(c.stats_a[i]), _f(c.stats_b[i]), _f(c.delta[i], True), _interval(c.lower[i], c.upper[i]),
             "-" if math.isnan(c.p_not_better[i]) else f"{c.p_not_better[i]:.3f}", _flag(c.lower[i], c.upper[i]))
            for i, n in enumerate(c.stat_names)]
    console.print(_delta_table(f"COCO {c.iou_type}: B vs A on {c.n_images} images ({ci}; delta = B - A)",
                               ["stat", "A", "B", "delta", "interval", "p(B<=A)", ""], rows))
    order = class_rows(c).tolist()
    rows = [(c.class_names[k], str(int(n_truth[k])), _f(c.ap_a_per_class[k]), _f(c.ap_b_per_class[k]),
             _f(c.delta_per_class[k], True), _interval(c.lower_per_class[k], c.upper_per_class[k]),
             "-" if math.isnan(c.p_not_better_per_class[k]) else f"{c.p_not_better_per_class[k]:.3f}",
             _flag(c.lower_per_class[k], c.upper_per_class[k])) for k in order]
    console.print(_delta_table("AP@[.5:.95] per class, largest loss first",
                               ["class", "truth", "A", "B", "delta", "interval", "p(B<=A)", ""], rows))
    if any(k is not None for k in cals):
        k0 = next(k for k in cals if k is not None)
        rows = [(name, "-", "-", "-") if k is None else (name, str(k.n_predictions), _f(k.ece), _f(k.mce))
                for name, k in zip(_LABELS, cals, strict=True)]
        console.print(table(f"Calibration of the scores (correct: TP at IoU {k0.iou_threshold:g}; {k0.n_bins} bins; "
                            "lower is better)", ["model", "predictions", "ECE", "MCE"], rows))


def _n_truth(c: Comparison, truth: Dataset) -> np.ndarray:
    a = truth.annotations
    counted = ~a.iscrowd if a.iscrowd is not None else np.ones(len(a), bool)
    counts = np.bincount(a.label[counted], minlength=len(truth.schema.names))
    return np.asarray([int(counts[lab]) if lab >= 0 else int(counts.sum())
                       for lab in c.result_a.class_labels.tolist()], np.int64)


def compare(
    gt: Annotated[str, typer.Option("--gt", help="Ground truth file or folder, or a workspace version or dataset "
                                    "(without --from).")],
    pred: Annotated[list[Path], typer.Option("--pred", exists=True, help="Predictions of model A, then (given "
                                             "again) of model B: two files or folders, with scores.")],
    gt_format: Annotated[str | None, typer.Option("--from", "-f", help="Format of --gt (see `maslow formats`; "
                                                  "default coco).")] = None,
    pred_format: Annotated[str, typer.Option("--pred-format", help="Format of both --pred.")] = "coco-results",
    iou_type: Annotated[IouType, typer.Option("--iou-type", help="What is matched.")] = IouType.bbox,
    images_root: Annotated[Path | None, typer.Option("--images-root", help="Image folder of --gt.")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Paired bootstrap replicates over images "
                                           "(0: no intervals).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap draws.")] = 0,
    confidence: Annotated[float, typer.Option("--confidence", min=0, max=1, help="Level of the intervals, in "
                                              "(0, 1).")] = 0.95,
    iou_threshold: Annotated[float, typer.Option("--iou-threshold", min=0, max=1, help="Calibration: the IoU of a "
                                                 "correct prediction.")] = 0.5,
    bins: Annotated[int, typer.Option("--bins", min=1, help="Calibration: score bins.")] = 10,
    kpt_sigmas: Annotated[str | None, typer.Option("--kpt-sigmas", help="OKS sigmas, one per keypoint, comma "
                                                   "separated (keypoints; default COCO's 17).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", metavar="OUT", help="Write the result as JSON to the "
                                                  "file OUT, or to stdout with '-' (then no tables).")] = None,
    plot_dir: Annotated[Path | None, typer.Option("--plot", help="Write PNG plots into this folder (AP delta per "
                                                  "class, reliability of the scores).")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report.")] = None,
) -> None:
    """Compare two models' predictions on one truth: each stat for A and B, B - A with a paired bootstrap interval
    over images (flagged where it excludes 0), per-class AP deltas and score calibration (detection, instance
    masks, keypoints)."""
    kind = iou_type.value
    sigmas = kpt_sigmas_option(kpt_sigmas, "compare")
    if len(pred) != 2:
        raise MaslowError(f"compare: give --pred twice (model A, then model B), got {len(pred)}")
    if not 0 < confidence < 1:
        raise MaslowError(f"compare: --confidence must be in (0, 1), e.g. 0.95, got {confidence:g}")
    to_stdout = json_out is not None and str(json_out) == "-"
    if to_stdout:
        json_out = None
    for flag, out in (("--json", json_out), ("--html", html)):
        if out is not None and out.is_dir():
            raise MaslowError(f"compare: {flag} {out} is a folder; give the file to write")
    if plot_dir is not None:
        if plot_dir.exists() and not plot_dir.is_dir():
            raise MaslowError(f"compare: --plot {plot_dir} is a file; give the folder to write the plots into")
        in_the_way = [plot_dir / n for n in _PLOTS if (plot_dir / n).is_dir()]
        if in_the_way:
            raise MaslowError(f"compare: --plot: {in_the_way[0]} is a folder; a plot is written to that name")
    truth, gt_report, gt_fmt = _read_truth(gt, gt_format, images_root, "--from")
    if truth.schema.task in _LABEL_TASKS:
        raise MaslowError(f"compare: the truth must be detection, instance masks or keypoints (COCO evaluation), "
                          f"got a {truth.schema.task.value} truth")
    models = [_read_model(src, pred_format, truth) for src in pred]
    cals: list[Calibration | None] = []
    notes: list[list[str]] = []
    for src, (ds, report, n) in zip(pred, models, strict=True):
        with _located({"truth": (gt, gt_report), "pred": (src, report)}):
            cal, why = _calibrate(truth, ds, kind, iou_threshold, bins, sigmas)
        cals.append(cal)
        notes.append(n + ([] if why is None else [why]))
    with progress_bar("bootstrap replicates", enabled=bootstrap > 0) as update:
        c = compare_models(truth, models[0][0], models[1][0], iou_type=kind, n_bootstrap=bootstrap, seed=seed,
                           confidence=confidence, kpt_sigmas=sigmas, progress=update)
    sources = {"truth": gt, "A": str(pred[0]), "B": str(pred[1])}
    written = _write(c, cals, sources, json_out, plot_dir, html, {
        "gt": gt, "gt_format": gt_fmt, "pred_a": str(pred[0]), "pred_b": str(pred[1]), "pred_format": pred_format,
        "iou_type": kind, "n_images": truth.n_images, "n_truth": truth.n_annotations,
        "n_pred": {"a": models[0][0].n_annotations, "b": models[1][0].n_annotations}, "seed": seed,
        "import_issues": {"gt": gt_report.to_dict(), "a": models[0][1].to_dict(), "b": models[1][1].to_dict()},
        "notes": {"a": notes[0], "b": notes[1]}}, to_stdout=to_stdout,
        render=lambda: _report(c, cals, truth, sources, gt_report, models, notes))
    if to_stdout:
        return
    for what, dest in written.items():
        console.print(f"Wrote {what}: {lit(dest)}", highlight=False)


def _report(c: Comparison, cals: list[Calibration | None], truth: Dataset, sources: dict[str, str],
            gt_report: Report, models: list[tuple[Dataset, Report, list[str]]], notes: list[list[str]]) -> None:
    _render_issues(sources["truth"], gt_report, [])
    for name, (_, report, _n), n in zip(_LABELS, models, notes, strict=True):
        _render_issues(f"{name} {sources[name]}", report, n)
    _render(c, cals, _n_truth(c, truth), sources)


def _write(c: Comparison, cals: list[Calibration | None], sources: dict[str, str], json_out: Path | None,
           plot_dir: Path | None, html: Path | None, head: dict[str, Any], *, to_stdout: bool,
           render: Any) -> dict[str, Path]:
    """Every output drawn into a temporary file beside its target, all renamed on leaving (a failure leaves none
    half-written); the tables printed in between; the JSON on stdout last with ``to_stdout``."""
    from maslow.metrics.calibration import plot_reliability
    from maslow.metrics.compare import plot_ap_deltas, write_comparison_html

    have = {n: k for n, k in zip(_LABELS, cals, strict=True) if k is not None}
    plots: dict[str, Path] = {}
    if plot_dir is not None:
        plots["ap_delta_per_class"] = plot_dir / _PLOTS[0]
        if have:
            plots["reliability"] = plot_dir / _PLOTS[1]
    written = {**{f"plot {k}": v for k, v in plots.items()}, **({"html": html} if html is not None else {}),
               **({"json": json_out} if json_out is not None else {})}
    doc = {**head, "comparison": c.to_dict(),
           "calibration": {n.lower(): (None if k is None else k.to_dict()) for n, k in zip(_LABELS, cals, strict=True)},
           "plots": {k: str(v) for k, v in plots.items()}, "html": None if html is None else str(html)}
    with contextlib.ExitStack() as stack:
        json_tmp = None if json_out is None else stack.enter_context(atomic_path(json_out))
        if "ap_delta_per_class" in plots:
            plot_ap_deltas(c, stack.enter_context(atomic_path(plots["ap_delta_per_class"])), labels=_LABELS)
        if "reliability" in plots:
            plot_reliability(list(have.values()), stack.enter_context(atomic_path(plots["reliability"])),
                             labels=list(have))
        if html is not None:
            write_comparison_html(c, stack.enter_context(atomic_path(html)), calibrations=have, labels=_LABELS,
                                  sources=sources)
        if not to_stdout:
            render()
        if json_tmp is not None:
            json_tmp.write_text(json_text(doc) + "\n", encoding="utf-8")
    if to_stdout:  # after the files are in place, so a script that reads them finds them
        print_json(doc)
    return written


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
