"""``maslow compare``: are we better off with model B? Two prediction files on one truth: each COCO stat for A and
B, the delta with its paired bootstrap interval (flagged where it excludes 0), per-class AP deltas, and the
calibration of each model's scores; plots and an HTML report on request. A classification, multi-label or semantic
segmentation truth compares accuracy, F1, Hamming score or mIoU instead (``compare_labels``)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from maslow import io
from maslow.cli._eval_inputs import (
    LABEL_TASKS,
    align,
    check_label_classes,
    check_label_shapes,
    read_pred,
    read_truth,
    truth_rows,
    unpredicted_images,
)
from maslow.cli._eval_inputs import render_issues as _render_issues
from maslow.cli._located import located as _located
from maslow.cli.metrics import IouType, _boundary_options
from maslow.cli.render import (
    console,
    json_text,
    kpt_sigmas_option,
    lit,
    print_json,
    progress_bar,
    refuse_import_error,
    results_or_folder,
    table,
)
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import Task
from maslow.errors import FormatError, MaslowError
from maslow.metrics._compare_labels import CLASS_METRICS
from maslow.metrics._compare_report import confidence_level, mcnemar_sentence
from maslow.metrics.calibration import Calibration, detection_calibration
from maslow.metrics.classification import classification_scores
from maslow.metrics.coco import coco_map
from maslow.metrics.compare import Comparison, LabelComparison, class_rows, compare_labels, compare_models, delta_order

_LABELS = ("A", "B")
_PLOTS = ("ap_delta_per_class.png", "reliability.png")


def _read_model(src: Path, fmt: str, truth: Dataset) -> tuple[Dataset, Report, list[str]]:
    """One model's predictions on truth's images; any prediction that can't be evaluated (an image or class the
    truth lacks, a malformed record) is refused, naming the file, record and field: a comparison of what is left
    of two files would compare different things."""
    pred, report, notes = read_pred(src, fmt, truth, 0)
    errors = [i for i in report.issues if i.severity == "error"]
    if errors:
        refuse_import_error(errors, src, tail=". Both models must be evaluated on the same images and classes; fix "
                            "the file or read it against its own truth")
    lost = [n for n in notes if "the truth lacks" in n]
    if lost:
        raise FormatError(f"{lost[0]}; both models must be evaluated on the same images", path=src)
    return pred, report, notes


def _calibrate(truth: Dataset, pred: Dataset, kind: str, iou_threshold: float, bins: int,
               sigmas: list[float] | None, ratio: float) -> tuple[Calibration | None, str | None]:
    """The calibration of one model's scores, or None and why (scores that are not confidences in [0, 1]; the
    evaluation is still checked, so a bad file fails here, named)."""
    s = pred.annotations.score
    if s is not None and len(s) and not ((s >= 0) & (s <= 1)).all():
        coco_map(truth, pred, iou_type=kind, kpt_sigmas=sigmas, boundary_dilation=ratio)  # the comparison's checks
        return None, (f"scores outside [0, 1] (from {float(np.nanmin(s)):g} to {float(np.nanmax(s)):g}): not "
                      "confidences, so no calibration")
    return detection_calibration(truth, pred, iou_type=kind, iou_threshold=iou_threshold, n_bins=bins,
                                 kpt_sigmas=sigmas, boundary_dilation=ratio), None


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
    ci = f"{confidence_level(c.confidence)} paired bootstrap, {c.n_bootstrap} replicates" if c.n_bootstrap else "no bootstrap"
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


def compare(
    gt: Annotated[str, typer.Option("--gt", help="Ground truth file or folder, or a workspace version or dataset "
                                    "(without --from).")],
    pred: Annotated[list[Path], typer.Option("--pred", exists=True, help="Predictions of model A, then (given "
                                             "again) of model B: two files or folders, with scores.")],
    gt_format: Annotated[str | None, typer.Option("--from", "-f", help="Format of --gt (see `maslow formats`; "
                                                  "default coco).")] = None,
    pred_format: Annotated[str, typer.Option("--pred-format", help="Format of both --pred.")] = "coco-results",
    iou_type: Annotated[IouType, typer.Option("--iou-type", help="What is matched: boxes, masks (segm), masks by "
                                              "Boundary IoU (boundary), oriented boxes (obb) or keypoints.")] = IouType.bbox,
    boundary_dilation: Annotated[float | None, typer.Option("--boundary-dilation", help="--iou-type boundary: the "
                                                            "boundary's width as a fraction of the image diagonal "
                                                            "(default 0.02, the paper's).")] = None,
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
                                                   "separated, as pycocotools holds them (COCO's are 0.026 to 0.107: "
                                                   "the paper's values / 10; keypoints; default COCO's 17).")] = None,
    ignore_index: Annotated[int | None, typer.Option("--ignore-index", help="Semantic segmentation: label-map "
                                                     "value of a truth class to ignore (a void class).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", metavar="OUT", help="Write the result as JSON to the "
                                                  "file OUT, or to stdout with '-' (then no tables).")] = None,
    plot_dir: Annotated[Path | None, typer.Option("--plot", help="Write PNG plots into this folder (AP delta per "
                                                  "class, reliability of the scores; F1, recall or IoU delta per "
                                                  "class).")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report.")] = None,
) -> None:
    """Compare two models' predictions on one truth: each stat for A and B, B - A with a paired bootstrap interval
    over images (flagged where it excludes 0), per-class AP deltas and score calibration (detection, instance
    masks, keypoints); accuracy, F1 and McNemar's test (classification), Hamming score (multi-label) or mIoU
    (semantic) by the truth's task."""
    kind = iou_type.value
    sigmas = kpt_sigmas_option(kpt_sigmas, "compare")
    dilation = _boundary_options(kind, boundary_dilation, "compare")
    ratio = 0.02 if dilation is None else dilation  # only --iou-type boundary reads it
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
    truth, gt_report, gt_fmt = read_truth(gt, gt_format, images_root, "--from")
    task = truth.schema.task
    if task in LABEL_TASKS:
        for flag, on in (("--iou-type", kind != "bbox"), ("--iou-threshold", iou_threshold != 0.5),
                         ("--bins", bins != 10), ("--kpt-sigmas", sigmas is not None),
                         ("--ignore-index", ignore_index is not None and task != Task.SEMANTIC_SEGMENTATION)):
            if on:
                where = "semantic segmentation" if flag == "--ignore-index" else "detection, instance masks and keypoints"
                raise MaslowError(f"compare: {flag} applies to {where}, got a {task.value} truth")
        _compare_labels(truth, gt, gt_report, gt_fmt, pred, pred_format, bootstrap=bootstrap, seed=seed,
                        confidence=confidence, ignore_index=ignore_index, json_out=json_out, plot_dir=plot_dir,
                        html=html, to_stdout=to_stdout)
        return
    if ignore_index is not None:
        raise MaslowError(f"compare: --ignore-index applies to semantic segmentation, got a {task.value} truth")
    models = [_read_model(src, pred_format, truth) for src in pred]
    cals: list[Calibration | None] = []
    notes: list[list[str]] = []
    for src, (ds, report, n) in zip(pred, models, strict=True):
        with _located({"truth": (gt, gt_report), "pred": (src, report)}):
            cal, why = _calibrate(truth, ds, kind, iou_threshold, bins, sigmas, ratio)
        cals.append(cal)
        notes.append(n + ([] if why is None else [why]))
    with progress_bar("bootstrap replicates", enabled=bootstrap > 0) as update:
        c = compare_models(truth, models[0][0], models[1][0], iou_type=kind, n_bootstrap=bootstrap, seed=seed,
                           confidence=confidence, kpt_sigmas=sigmas, progress=update, boundary_dilation=ratio)
    sources = {"truth": gt, "A": str(pred[0]), "B": str(pred[1])}
    written = _write(c, cals, sources, json_out, plot_dir, html, {
        "gt": gt, "gt_format": gt_fmt, "pred_a": str(pred[0]), "pred_b": str(pred[1]), "pred_format": pred_format,
        "iou_type": kind, **({} if dilation is None else {"boundary_dilation": dilation}),
        "n_images": truth.n_images, "n_truth": truth.n_annotations,
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
    _render(c, cals, c.n_truth_per_class, sources)


def _write(c: Comparison, cals: list[Calibration | None], sources: dict[str, str], json_out: Path | None,
           plot_dir: Path | None, html: Path | None, head: dict[str, Any], *, to_stdout: bool,
           render: Any) -> dict[str, Path]:
    """The COCO comparison's outputs (``_write_all``): the AP delta plot, the reliability diagram of the models
    whose scores are confidences, the HTML report with their calibration, the JSON."""
    from maslow.metrics.calibration import plot_reliability
    from maslow.metrics.compare import plot_ap_deltas

    have = {n: k for n, k in zip(_LABELS, cals, strict=True) if k is not None}
    draw: dict[str, tuple[Path, Callable[[Path], Any]]] = {}
    if plot_dir is not None:
        draw["ap_delta_per_class"] = (plot_dir / _PLOTS[0], lambda p: plot_ap_deltas(c, p, labels=_LABELS))
        if have:
            draw["reliability"] = (plot_dir / _PLOTS[1],
                                   lambda p: plot_reliability(list(have.values()), p, labels=list(have)))
    doc = {**head, "comparison": c.to_dict(),
           "calibration": {n.lower(): (None if k is None else k.to_dict()) for n, k in zip(_LABELS, cals, strict=True)}}
    return _write_all(c, doc, draw, sources, json_out, html, calibrations=have, to_stdout=to_stdout, render=render)


def _write_all(c: Comparison | LabelComparison, doc: dict[str, Any], draw: dict[str, tuple[Path, Callable[[Path], Any]]],
               sources: dict[str, str], json_out: Path | None, html: Path | None, *,
               calibrations: dict[str, Calibration], to_stdout: bool, render: Any) -> dict[str, Path]:
    """Every output drawn into a temporary file beside its target, all renamed on leaving (a failure leaves none
    half-written); the tables printed in between; the JSON on stdout last with ``to_stdout``."""
    from maslow.metrics.compare import write_comparison_html

    plots = {k: dest for k, (dest, _) in draw.items()}
    written = {**{f"plot {k}": v for k, v in plots.items()}, **({"html": html} if html is not None else {}),
               **({"json": json_out} if json_out is not None else {})}
    doc = {**doc, "plots": {k: str(v) for k, v in plots.items()}, "html": None if html is None else str(html)}
    with contextlib.ExitStack() as stack:
        json_tmp = None if json_out is None else stack.enter_context(atomic_path(json_out))
        for dest, fn in draw.values():
            fn(stack.enter_context(atomic_path(dest)))
        if html is not None:
            given = doc.get("notes") or {}  # what stderr says of each model's input (a calibration skipped...)
            write_comparison_html(c, stack.enter_context(atomic_path(html)), calibrations=calibrations,
                                  labels=_LABELS, sources=sources,
                                  notes={name: given.get(name.lower(), []) for name in _LABELS})
        if not to_stdout:
            render()
        if json_tmp is not None:
            json_tmp.write_text(json_text(doc) + "\n", encoding="utf-8")
    if to_stdout:  # after the files are in place, so a script that reads them finds them
        print_json(doc)
    return written


def _compare_labels(truth: Dataset, gt: str, gt_report: Report, gt_fmt: str, pred: list[Path], pred_format: str, *,
                    bootstrap: int, seed: int, confidence: float, ignore_index: int | None, json_out: Path | None,
                    plot_dir: Path | None, html: Path | None, to_stdout: bool) -> None:
    """A classification, multi-label or semantic truth: both files read and checked, ``compare_labels``, the
    outputs."""
    if plot_dir is not None:
        in_the_way = [plot_dir / n for n in _label_plot_names(truth) if (plot_dir / n).is_dir()]
        if in_the_way:
            raise MaslowError(f"compare: --plot: {in_the_way[0]} is a folder; a plot is written to that name")
    models = [_read_label_model(src, pred_format, truth) for src in pred]
    if truth.schema.task == Task.CLASSIFICATION:  # its checks (a nan in probs) named with the file: compare_labels
        for src, (ds, report, _) in zip(pred, models, strict=True):  # names the model (pred_a), not the file
            with _located({"truth": (gt, gt_report), "pred": (src, report)}):
                classification_scores(truth, ds)
    located = _located({"truth": (gt, gt_report), "pred_a": (pred[0], models[0][1]), "pred_b": (pred[1], models[1][1])})
    with located, progress_bar("bootstrap replicates", enabled=bootstrap > 0) as update:
        c = compare_labels(truth, models[0][0], models[1][0], n_bootstrap=bootstrap, seed=seed, confidence=confidence,
                           ignore_index=ignore_index, progress=update)
    sources = {"truth": gt, "A": str(pred[0]), "B": str(pred[1])}
    head = {"gt": gt, "gt_format": gt_fmt, "pred_a": str(pred[0]), "pred_b": str(pred[1]), "pred_format": pred_format,
            "task": c.task, "n_images": truth.n_images, "n_truth": truth.n_annotations,
            "n_pred": {"a": models[0][0].n_annotations, "b": models[1][0].n_annotations}, "seed": seed,
            "import_issues": {"gt": gt_report.to_dict(), "a": models[0][1].to_dict(), "b": models[1][1].to_dict()},
            "notes": {"a": models[0][2], "b": models[1][2]}}
    written = _write_all(c, {**head, "comparison": c.to_dict()}, _label_drawers(c, plot_dir), sources, json_out,
                         html, calibrations={}, to_stdout=to_stdout,
                         render=lambda: _report_labels(c, sources, gt_report, models))
    if to_stdout:
        return
    for what, dest in written.items():
        console.print(f"Wrote {what}: {lit(dest)}", highlight=False)


# -- classification, multi-label and semantic segmentation ------------------------------------------------------


_TITLE = {"f1": "F1", "recall": "Recall", "iou": "IoU"}


def _label_plot_names(truth: Dataset) -> list[str]:
    """The files ``--plot`` writes for this truth: one per-class delta plot per compared per-class score."""
    return [f"{m}_delta_per_class.png" for m in CLASS_METRICS[truth.schema.task]]


def _read_label_model(src: Path, fmt: str, truth: Dataset) -> tuple[Dataset, Report, list[str]]:
    """One model's predictions moved onto truth's images (matched by path, else by a unique file name), refused
    (naming the file, record and field) where they would not compare like with like: a read error, a prediction on
    an image or of a class the truth lacks, a truth image without one, a classification image without exactly one
    class, a label map of another size than its image."""
    task = truth.schema.task
    spec = io.get_format(results_or_folder(src, fmt), where="--pred-format")
    if spec.name == "coco-results":
        raise FormatError(f"predictions for a {task.value} truth can't be COCO results (detections); name their "
                          "format with --pred-format (parquet, masks, imagefolder, ...; see `maslow formats`)", path=src)
    # label maps are paired with the truth's images (found under its root by path or stem, else matched by path or
    # file name below) and their size is checked against them below, naming the field
    root = truth.root if spec.name == "masks" else None
    imp = io.import_dataset(src, spec.name, check_files=False, images_root=root)
    errors = [i for i in imp.report.issues if i.severity == "error" and i.type not in ("missing_image", "size_mismatch")]
    if errors:
        refuse_import_error(errors, src, tail=". Both models must be evaluated on the same images and classes; fix "
                            "the file")
    pred = imp.dataset
    _check_labels(truth, pred, src, spec.name)
    aligned, notes = align(truth, pred, src, scored=False)
    return aligned, imp.report, notes


def _check_labels(truth: Dataset, pred: Dataset, src: Path, fmt: str) -> None:
    a = pred.annotations
    rows = truth_rows(truth, pred)
    lost = np.flatnonzero(rows[a.image] < 0) if len(a) else np.zeros(0, np.int64)
    if lost.size:
        r = int(lost[0])
        raise FormatError(f"the image is not one of the truth's images ({lost.size} predictions on images the truth "
                          "lacks); both models must be evaluated on the same images", path=src,
                          record=f"annotations row {r} (image {pred.images.path[a.image[r]]!r})", field="image")
    n_missing, first = unpredicted_images(truth, pred)  # as maslow eval counts them (a note there)
    if n_missing:
        raise FormatError(f"the truth image has no prediction ({n_missing} of {truth.n_images} truth images lack "
                          "one); both models must be evaluated on every image", path=src, record=f"image {first!r}",
                          field="image")
    check_label_classes(truth, pred, src, fmt, refuse_any=True)
    check_label_shapes(truth, pred, src, rows)


def _p(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.3f}"


def _render_labels(c: LabelComparison, sources: dict[str, str]) -> None:
    """The tables: the scores (B better in green, worse in red), McNemar's test, each per-class score."""
    for name in _LABELS:
        console.print(f"{name}: {lit(sources[name])}", highlight=False)
    ci = f"{confidence_level(c.confidence)} paired bootstrap, {c.n_bootstrap} replicates" if c.n_bootstrap else "no bootstrap"
    better, worse = c.better, c.worse
    rows: list[tuple[Any, ...]] = [
        (n if c.higher_better[i] else f"{n} (lower is better)", _f(c.stats_a[i]), _f(c.stats_b[i]),
         _f(c.delta[i], True), _interval(c.lower[i], c.upper[i]), _p(c.p_not_better[i]),
         "B better" if better[i] else "B worse" if worse[i] else "") for i, n in enumerate(c.stat_names)]
    console.print(_delta_table(f"{c.task}: B vs A on {c.n_images} images ({ci}; delta = B - A)",
                               ["stat", "A", "B", "delta", "interval", "p(B<=A)", ""], rows))
    sentence = mcnemar_sentence(c, _LABELS)
    if sentence is not None:
        console.print(sentence, highlight=False, markup=False)
    unit = "pixels" if c.task == Task.SEMANTIC_SEGMENTATION.value else "truth"
    for j, m in enumerate(c.class_metrics):
        lo, hi = c.lower_per_class[j], c.upper_per_class[j]
        rows = [(c.class_names[k], str(int(c.support_per_class[k])), _f(c.a_per_class[j, k]),
                 _f(c.b_per_class[j, k]), _f(c.delta_per_class[j, k], True), _interval(lo[k], hi[k]),
                 _p(c.p_not_better_per_class[j, k]), "B better" if lo[k] > 0 else "B worse" if hi[k] < 0 else "")
                for k in delta_order(c.delta_per_class[j]).tolist()]
        console.print(_delta_table(f"{_TITLE.get(m, m)} per class, largest loss first",
                                   ["class", unit, "A", "B", "delta", "interval", "p(B<=A)", ""], rows))


def _report_labels(c: LabelComparison, sources: dict[str, str], gt_report: Report,
                   models: list[tuple[Dataset, Report, list[str]]]) -> None:
    _render_issues(sources["truth"], gt_report, [])
    for name, (_, rep, notes) in zip(_LABELS, models, strict=True):
        _render_issues(f"{name} {sources[name]}", rep, notes)
    _render_labels(c, sources)


def _label_drawers(c: LabelComparison, plot_dir: Path | None) -> dict[str, tuple[Path, Callable[[Path], Any]]]:
    """key -> (file, draw into a path) of the ``--plot`` files."""
    if plot_dir is None:
        return {}
    from maslow.metrics.compare import plot_class_deltas

    def draw(metric: str) -> Callable[[Path], Any]:
        return lambda p: plot_class_deltas(c, p, metric=metric, labels=_LABELS)

    return {f"{m}_delta_per_class": (plot_dir / f"{m}_delta_per_class.png", draw(m)) for m in c.class_metrics}


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
