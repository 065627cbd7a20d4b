"""Metrics commands: eval (COCO summary, per-class AP, operating points, slices, TIDE errors, plots; Boundary IoU
of instance masks; classification, multi-label and semantic scores by the truth's task)."""

from __future__ import annotations

import contextlib
import enum
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from maslow.cli import _coco_params as cp
from maslow.cli._eval_inputs import LABEL_TASKS, read_pred, read_truth, render_issues
from maslow.cli._flags import flags_named
from maslow.cli._located import located as _located
from maslow.cli.render import (
    console,
    either,
    err_console,
    json_text,
    kpt_sigmas_option,
    lit,
    print_json,
    progress_bar,
    table,
)
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.errors import MaslowError
from maslow.metrics import MapResult, coco_map
from maslow.metrics.operating import OperatingPoints, detection_confusion_matrix, operating_point
from maslow.metrics.slices import SliceResult, slice_metrics
from maslow.metrics.tide import TideResult, tide_errors


class IouType(enum.StrEnum):
    bbox = "bbox"
    segm = "segm"
    boundary = "boundary"
    obb = "obb"
    keypoints = "keypoints"


# -- rendering ----------------------------------------------------------------------------------------------
_render_issues = render_issues  # the notes and import issues of one file, on stderr (as _protocol_output imports it)


def _f(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.3f}"


def _stat_rows(r: MapResult) -> list[tuple[str, ...]]:
    thr = r.iou_thresholds
    all_t = f"{thr.min():.2f}:{thr.max():.2f}"
    dets = dict(zip(r.stat_names, r.stat_max_dets, strict=True))  # the maxDets each stat reads, as pycocotools
    if r.iou_type == "keypoints":
        spec = [("map_50_95", "AP", all_t, "all"), ("map_50", "AP", "0.50", "all"), ("map_75", "AP", "0.75", "all"),
                ("map_medium", "AP", all_t, "medium"), ("map_large", "AP", all_t, "large"),
                ("mar_20", "AR", all_t, "all"), ("mar_50", "AR", "0.50", "all"), ("mar_75", "AR", "0.75", "all"),
                ("mar_medium", "AR", all_t, "medium"), ("mar_large", "AR", all_t, "large")]
    else:
        spec = [("map_50_95", "AP", all_t, "all"), ("map_50", "AP", "0.50", "all"), ("map_75", "AP", "0.75", "all"),
                ("map_small", "AP", all_t, "small"), ("map_medium", "AP", all_t, "medium"),
                ("map_large", "AP", all_t, "large"), ("mar_1", "AR", all_t, "all"), ("mar_10", "AR", all_t, "all"),
                ("mar_100", "AR", all_t, "all"), ("mar_small", "AR", all_t, "small"),
                ("mar_medium", "AR", all_t, "medium"), ("mar_large", "AR", all_t, "large")]
    return [(n, k, t, a, "-" if dets[n] is None else str(dets[n]), _f(getattr(r, n))) for n, k, t, a in spec]


def _per_class(r: MapResult, truth: Dataset) -> list[dict[str, Any]]:
    a = truth.annotations
    assert a.iscrowd is not None
    counted = ~a.iscrowd
    if r.iou_type == "keypoints" and a.keypoints is not None:  # an object without a labelled keypoint is ignored
        counted &= (np.nan_to_num(a.keypoints[:, :, 2]) > 0).any(axis=1)
    counts = np.bincount(a.label[counted], minlength=len(truth.schema.names))
    cols = {f"ap_{round(t * 100)}": i for i, t in enumerate(r.iou_thresholds.tolist())
            if np.isclose(t, 0.5) or np.isclose(t, 0.75)}
    out = []
    for k, name in enumerate(r.class_names):
        row: dict[str, Any] = {"class": name, "n_truth": int(counts[r.class_labels[k]]) if r.class_labels[k] >= 0
                               else int(counts.sum()), "ap": float(np.mean(r.ap_per_class[k]))}
        row.update({c: float(r.ap_per_class[k, i]) for c, i in cols.items()})
        row["ar"] = float(np.mean(r.ar_per_class[k]))  # at the largest maxDets (torchmetrics' mar_100_per_class)
        out.append(row)
    return out


def _render_map(r: MapResult, per_class: list[dict[str, Any]], dilation: float | None = None) -> None:
    how = "" if dilation is None else f" (Boundary IoU, dilation {dilation:g} of the image diagonal)"
    console.print(table(f"COCO {r.iou_type} evaluation{how}", ["stat", "", "IoU", "area", "maxDets", "value"],
                        _stat_rows(r) + cp.area_rows(r, _f)))
    extra = [c for c in ("ap_50", "ap_75") if per_class and c in per_class[0]]
    rows = [(c["class"], c["n_truth"], _f(c["ap"]), *[_f(c[x]) for x in extra], _f(c["ar"])) for c in per_class]
    console.print(table("AP and AR per class", ["class", "truth", "AP", *[x.upper().replace("_", "") for x in extra],
                                                f"AR{r.max_dets[-1]}"], rows))


def _render_ops(op: OperatingPoints) -> None:
    what = {"cost": f"minimum cost {op.cost_fp:g} x FP + {op.cost_fn:g} x FN",
            "precision": f"lowest threshold with precision >= {op.target:g}",
            "recall": f"highest threshold with recall >= {op.target:g}"}[op.mode]
    fb = f"F{op.beta:g}"
    rows = []
    for k, name in enumerate(op.class_names):
        thr = float(op.threshold[k])
        rows.append((name, "keep none" if math.isinf(thr) else f">= {thr:.4g}",
                     *([] if op.mode == "cost" else ["yes" if op.met[k] else "NO"]),
                     int(op.tp[k]), int(op.fp[k]), int(op.fn[k]), _f(float(op.precision[k])),
                     _f(float(op.recall[k])), _f(float(op.fbeta[k])), f"{float(op.cost[k]):g}"))
    rows.append(("overall", "", *([] if op.mode == "cost" else [""]), op.overall_tp, op.overall_fp, op.overall_fn,
                 _f(op.overall_precision), _f(op.overall_recall), _f(op.overall_fbeta), f"{op.overall_cost:g}"))
    cols = ["class", "score", *([] if op.mode == "cost" else ["met"]), "TP", "FP", "FN", "precision", "recall",
            fb, "cost"]
    at = "one-vs-rest on the class probabilities" if op.iou_type == "classification" else f"at IoU {op.iou_threshold:g}"
    console.print(table(f"Operating points {at} ({what})", cols, rows, justify_numbers=False))


def _render_slices(s: SliceResult) -> None:
    rows = [(str(v), int(s.n_images[i]), _f(float(s.value[i])),
             f"{_f(float(s.lower[i]))} - {_f(float(s.upper[i]))}",
             f"{_f(float(s.null_lower[i]))} - {_f(float(s.null_upper[i]))}",
             "BELOW" if s.below[i] else "above" if s.above[i] else "")
            for i, v in enumerate(s.values)]
    console.print(table(f"{s.metric} per {s.by} (overall {_f(s.overall)}; {s.ci:.0%} intervals from {s.n_boot} draws: "
                        "interval resamples the slice, random draws as many images from the whole dataset; a slice "
                        "outside random is flagged)", [s.by, "images", s.metric, "interval", "random", "vs overall"],
                        rows))


#: what each TIDE error type is, for the table
_TIDE_MEANING = {"Cls": "right place, wrong class", "Loc": "right class, IoU in [bg, pos]",
                 "Both": "wrong class, poor box", "Dupe": "object already found", "Bkg": "nothing there",
                 "Miss": "object never found", "FP": "oracle: false positives ranked last (precision 1)",
                 "FN": "oracle: missed objects not counted (recall 1)"}


def _render_tide(t: TideResult) -> None:
    rows = [(name, _f(t.delta_ap[name]), str(t.counts[name]) if name in t.counts else "", _TIDE_MEANING[name])
            for name in t.DELTA_TYPES]
    console.print(table(f"TIDE errors ({t.iou_type}; tidecv's AP{round(t.pos_thr * 100)} {_f(t.ap_base)}; "
                        f"background IoU <= {t.bg_thr:g})", ["type", "dAP", "count", "meaning"], rows,
                        justify_numbers=False))


def _render_calibration(cal: Any) -> None:
    rows = [(f"{cal.bin_lower[b]:.2f}-{cal.bin_upper[b]:.2f}", str(int(cal.count[b])), _f(float(cal.confidence[b])),
             _f(float(cal.accuracy[b]))) for b in range(cal.n_bins)]
    console.print(table(f"Calibration at IoU {cal.iou_threshold:g}: ECE {_f(cal.ece)}, MCE {_f(cal.mce)} "
                        f"({cal.n_predictions} predictions)", ["score", "predictions", "mean score", "fraction TP"],
                        rows))


def _write_json(obj: Any, path: Path) -> None:
    text = json_text(obj)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


# -- the command --------------------------------------------------------------------------------------------
def eval_(
    gt: Annotated[str, typer.Option("--gt", help="Ground truth file or folder, or a workspace version or dataset "
                                    "(without --from).")],
    pred: Annotated[Path, typer.Option("--pred", exists=True, help="Predictions file or folder (with scores).")],
    gt_format: Annotated[str | None, typer.Option("--from", "-f", help="Format of --gt (see `maslow formats`; "
                                                  "default coco).")] = None,
    pred_format: Annotated[str, typer.Option("--pred-format", help="Format of --pred: coco-results (default), "
                                             "dota-results (a folder of Task1_<class>.txt files), "
                                             "openimages-results (a CSV or a Kaggle submission) or any dataset "
                                             "format with scores (see `maslow formats`).")] = "coco-results",
    iou_type: Annotated[IouType, typer.Option("--iou-type", help="What is matched: boxes, masks (segm), masks by "
                                              "Boundary IoU (boundary), oriented boxes (obb: 4-point polygons or "
                                              "turned boxes) or keypoints.")] = IouType.bbox,
    boundary_dilation: Annotated[float | None, typer.Option("--boundary-dilation", help="--iou-type boundary: the "
                                                            "boundary's width as a fraction of the image diagonal "
                                                            "(default 0.02, the paper's).")] = None,
    images_root: Annotated[Path | None, typer.Option("--images-root", help="Image folder of --gt.")] = None,
    id_offset: Annotated[int, typer.Option("--id-offset", help="Added to the results' image and category ids "
                                           "(1 for 0-based ids against 1-based truth).")] = 0,
    category_offset: Annotated[int | None, typer.Option("--category-offset", help="Added to the results' category "
                                                        "ids (default: --id-offset).")] = None,
    pred_area: Annotated[str, typer.Option("--pred-area", help="Prediction area the small/medium/large ranges "
                                           "see: geometry (of what is evaluated) or box (pycocotools on segm "
                                           "results that also carry boxes).")] = "geometry",
    ignore_index: Annotated[int | None, typer.Option("--ignore-index", help="Semantic segmentation: label-map "
                                                     "value of a truth class to ignore (a void class).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", metavar="OUT", help="Write the full result as JSON to "
                                                  "the file OUT, or to stdout with '-' (then no tables).")] = None,
    plot_dir: Annotated[Path | None, typer.Option("--plot", help="Write PNG plots into this folder.")] = None,
    cost_fp: Annotated[float | None, typer.Option("--cost-fp", min=0, help="Cost of a false positive.")] = None,
    cost_fn: Annotated[float | None, typer.Option("--cost-fn", min=0, help="Cost of a missed object.")] = None,
    target_precision: Annotated[float | None, typer.Option("--target-precision", min=0, max=1,
                                                           help="Per-class threshold reaching this precision.")] = None,
    target_recall: Annotated[float | None, typer.Option("--target-recall", min=0, max=1,
                                                        help="Per-class threshold reaching this recall.")] = None,
    iou_threshold: Annotated[float, typer.Option("--iou-threshold", min=0, max=1,
                                                 help="IoU of a match for operating points, the confusion "
                                                      "matrix and --errors.")] = 0.5,
    score_threshold: Annotated[float, typer.Option("--score-threshold",
                                                   help="Predictions kept in the confusion matrix.")] = 0.5,
    slice_by: Annotated[str | None, typer.Option("--slice-by", help="Image column to slice on (split, or an "
                                                 "images.extra column).")] = None,
    kpt_sigmas: Annotated[str | None, typer.Option("--kpt-sigmas", help="OKS sigmas, one per keypoint, comma "
                                                   "separated, as pycocotools holds them (COCO's are 0.026 to 0.107: "
                                                   "the paper's values / 10; keypoints; default COCO's 17).")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="TIDE error analysis (bbox, segm): the AP lost to "
                                         "Cls/Loc/Both/Dupe/Bkg/Miss errors and the FP/FN oracles "
                                         "(tidecv's definitions, at --iou-threshold).")] = False,
    calibration: Annotated[bool, typer.Option("--calibration", help="Calibration of the scores (bbox, segm, "
                                              "boundary, keypoints): ECE, MCE and reliability bins (correct: a TP at "
                                              "--iou-threshold).")] = False,
    protocol: Annotated[str, typer.Option("--protocol", help="Detection protocol: coco; lvis (federated LVIS "
                                          "evaluation, lvis-api 0.5.3's numbers: at most 300 detections per image, "
                                          "only the classes each image labels or verifies absent); voc (Pascal "
                                          "VOC and DOTA: AP at --iou-threshold, difficult objects ignored); "
                                          "openimages (the Open Images Challenge: AP at --iou-threshold with "
                                          "group-of boxes, verified image-level labels and --hierarchy); or "
                                          "panoptic (Panoptic Quality PQ/SQ/RQ; the default for --pred-format "
                                          "coco-panoptic).")] = "coco",
    voc_metric: Annotated[str | None, typer.Option("--voc-metric", help="--protocol voc: 2010 (all-point AP, "
                                                   "VOC2010 and later; default) or 2007 (11-point AP, also "
                                                   "DOTA_devkit's).")] = None,
    voc_strict: Annotated[bool, typer.Option("--voc-strict", help="--protocol voc: a match needs IoU > "
                                             "--iou-threshold (py-faster-rcnn, detectron2, DOTA_devkit) instead of "
                                             ">= (the VOC devkit, mmdetection).")] = False,
    pixel_inclusive: Annotated[bool, typer.Option("--pixel-inclusive", help="--protocol voc: measure boxes as "
                                                  "inclusive pixel indices (w = x2 - x1 + 1); not for boxes read "
                                                  "from VOC XML, which are already continuous.")] = False,
    hierarchy: Annotated[Path | None, typer.Option("--hierarchy", exists=True, dir_okay=False, help="--protocol "
                                                   "openimages: the class hierarchy (Open Images' "
                                                   "bbox_labels_600_hierarchy.json or a {child: parent} JSON).")
                         ] = None,
    class_descriptions: Annotated[Path | None, typer.Option("--class-descriptions", exists=True, dir_okay=False,
                                                            help="--protocol openimages: Open Images' class "
                                                            "descriptions CSV (MID,DisplayName), when --hierarchy "
                                                            "names MIDs and the classes display names.")] = None,
    expand_pred: Annotated[bool, typer.Option("--expand-pred", help="--protocol openimages: also count each "
                                              "detection for its class's ancestors (not the challenge's rule).")
                           ] = False,
    iou_thresholds: cp.IouThresholds = None,
    max_dets: cp.MaxDets = None,
    area_range: cp.AreaRanges = None,
    class_agnostic: cp.ClassAgnostic = False,
    n_boot: Annotated[int, typer.Option("--n-boot", min=0, help="Draws per slice: bootstrap resamples, and as many "
                                                             "random subsets of its size (--slice-by).")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --slice-by draws.")] = 0,
    gt_format_old: Annotated[str | None, typer.Option("--gt-format", hidden=True)] = None,  # before --from
) -> None:
    """Evaluate predictions: COCO summary, per-class AP, operating points, slices, plots (detection, instance
    masks, keypoints); accuracy/F1 (classification), Hamming score (multi-label) or mIoU (semantic) by the truth's
    task."""
    kind = iou_type.value
    sigmas = kpt_sigmas_option(kpt_sigmas, "eval")
    fmt, gt_flag = either(gt_format, gt_format_old, ("--from", "--gt-format"))
    to_stdout = json_out is not None and str(json_out) == "-"  # --json -: the JSON on stdout, for scripts
    if to_stdout:
        json_out = None
    if json_out is not None and json_out.is_dir():  # before reading, plotting or printing anything
        raise MaslowError(f"eval: --json {json_out} is a folder; give the file to write the result to")
    if plot_dir is not None:
        if plot_dir.exists() and not plot_dir.is_dir():
            raise MaslowError(f"eval: --plot {plot_dir} is a file; give the folder to write the plots into")
        in_the_way = [plot_dir / n for n in _plot_names(kind, slice_by, errors, calibration) if (plot_dir / n).is_dir()]
        if in_the_way:
            raise MaslowError(f"eval: --plot: {in_the_way[0]} is a folder; a plot is written to that name, "
                              "remove it or give another --plot folder")
    if target_precision is not None and target_recall is not None:  # before reading anything
        raise MaslowError("eval: give --target-precision or --target-recall, not both")
    for name, target in (("--target-precision", target_precision), ("--target-recall", target_recall)):
        if target == 0:
            raise MaslowError(f"eval: {name} must be greater than 0 (at most 1), got 0")
    if pred_area not in ("geometry", "box"):
        raise MaslowError(f"eval: --pred-area must be geometry or box, got {pred_area!r}")
    if protocol not in ("coco", "lvis", "voc", "openimages", "panoptic"):
        raise MaslowError(f"eval: --protocol must be coco, lvis, voc, openimages or panoptic, got {protocol!r}")
    coco_only = [name for name, given in (
        ("--cost-fp/--cost-fn/--target-precision/--target-recall",
         any(v is not None for v in (cost_fp, cost_fn, target_precision, target_recall))),
        ("--slice-by", slice_by is not None), ("--errors", errors), ("--calibration", calibration),
        ("--plot", plot_dir is not None), ("--pred-area", protocol in ("voc", "openimages") and pred_area != "geometry"),
        (cp.FLAGS, cp.given(iou_thresholds, max_dets, area_range, class_agnostic))) if given]
    if protocol == "lvis":
        if kind not in ("bbox", "segm"):
            raise MaslowError(f"eval: --protocol lvis evaluates --iou-type bbox or segm, got {kind}")
        if coco_only:
            raise MaslowError(f"eval: {coco_only[0]} goes with --protocol coco, not lvis")
    from maslow.cli._metrics_voc import eval_voc, voc_options

    voc_metric_name = voc_options(protocol, kind, voc_metric=voc_metric, voc_strict=voc_strict,
                                  pixel_inclusive=pixel_inclusive, coco_only=coco_only)
    from maslow.cli._metrics_oid import eval_oid, oid_options

    oid_options(protocol, kind, hierarchy=hierarchy, class_descriptions=class_descriptions, expand_pred=expand_pred,
                coco_only=coco_only)
    if errors and kind in ("keypoints", "boundary"):  # TIDE's error types are defined for boxes and masks
        raise MaslowError(f"eval: --errors (TIDE) applies to --iou-type bbox, segm and obb, got {kind}")
    dilation = _boundary_options(kind, boundary_dilation)
    params = cp.coco_params(kind, iou_thresholds, max_dets, area_range, class_agnostic)  # coco_map's, checked first
    if errors and iou_threshold < 0.1:
        raise MaslowError(f"eval: --errors needs --iou-threshold at least TIDE's background IoU 0.1, got "
                          f"{iou_threshold:g}")
    truth, gt_report, gt_format = read_truth(gt, fmt, images_root, gt_flag)
    from maslow.cli._metrics_panoptic import eval_panoptic, wants_panoptic

    if wants_panoptic(protocol, pred_format):  # segments without scores: Panoptic Quality
        eval_panoptic(truth, pred, pred_format, located=_located, json_out=json_out, to_stdout=to_stdout,
                      gt_source=(str(gt), gt_format, gt_report), refused=[*coco_only, *[name for name, given in (
                          ("--pred-area", pred_area != "geometry"), ("--ignore-index", ignore_index is not None),
                          ("--kpt-sigmas", kpt_sigmas is not None), ("--boundary-dilation", boundary_dilation is not None),
                          ("--id-offset", id_offset != 0), ("--category-offset", category_offset is not None)) if given]])
        return
    _check_task_options(truth.schema.task, {
        "--cost-fp/--cost-fn/--target-precision/--target-recall":
            any(v is not None for v in (cost_fp, cost_fn, target_precision, target_recall)),
        "--slice-by": slice_by is not None, "--ignore-index": ignore_index is not None,
        "--pred-area": pred_area != "geometry", "--errors": errors,
        "--calibration": calibration, cp.FLAGS: bool(params)})
    preds, pred_report, notes = read_pred(pred, pred_format, truth, id_offset, category_offset)
    if not preds.n_annotations:
        notes.append("no predictions on any image, so every object counts as missed (a model trained too briefly "
                     "or with a high params.score_threshold predicts nothing)")
    located = _located({"truth": (gt, gt_report), "pred": (pred, pred_report)})
    sources = {"gt": (str(gt), gt_format, gt_report), "pred": (str(pred), pred_format, pred_report)}
    if protocol == "openimages":
        eval_oid(truth, preds, hierarchy=hierarchy, class_descriptions=class_descriptions, iou_threshold=iou_threshold,
                 expand_pred=expand_pred, located=located, json_out=json_out, to_stdout=to_stdout, sources=sources,
                 notes=notes)
        return
    if protocol == "voc":
        eval_voc(truth, preds, kind=kind, metric=voc_metric_name, iou_threshold=iou_threshold, strict_iou=voc_strict,
                 pixel_inclusive=pixel_inclusive, located=located, json_out=json_out, to_stdout=to_stdout,
                 sources=sources, notes=notes)
        return
    if protocol == "lvis":
        from maslow.cli._metrics_lvis import eval_lvis

        eval_lvis(truth, preds, kind=kind, pred_area=pred_area, located=located, json_out=json_out,
                  to_stdout=to_stdout, sources=sources, notes=notes)
        return
    if truth.schema.task in LABEL_TASKS:
        _render_issues(f"{gt}", gt_report, [])
        _render_issues(f"{pred}", pred_report, notes)
        if plot_dir is not None:  # said, not silently skipped
            err_console.print(f"note: --plot: no plots for {truth.schema.task.value} yet (detection, instance masks "
                              "and keypoints have them); none written", markup=False, highlight=False)
        with located:
            op = None
            if truth.schema.task == Task.CLASSIFICATION and \
                    any(v is not None for v in (cost_fp, cost_fn, target_precision, target_recall)):
                op = operating_point(truth, preds, cost_fp=1.0 if cost_fp is None else cost_fp,
                                     cost_fn=1.0 if cost_fn is None else cost_fn, target_precision=target_precision,
                                     target_recall=target_recall)
            _eval_labels(truth, preds, json_out, {"gt": str(gt), "pred": str(pred), "gt_format": gt_format,
                                                  "pred_format": pred_format, "notes": notes, "import_issues": {
                                                      "gt": gt_report.to_dict(), "pred": pred_report.to_dict()}},
                         to_stdout=to_stdout, op=op, ignore_index=ignore_index)
        return
    # compute everything first, so bad options fail before anything is printed
    with located:
        ratio = 0.02 if dilation is None else dilation  # only --iou-type boundary reads it
        result = coco_map(truth, preds, iou_type=kind, kpt_sigmas=sigmas, pred_area=pred_area,
                          boundary_dilation=ratio, **params)
        op = None
        if any(v is not None for v in (cost_fp, cost_fn, target_precision, target_recall)):
            op = operating_point(truth, preds, cost_fp=1.0 if cost_fp is None else cost_fp,
                                 cost_fn=1.0 if cost_fn is None else cost_fn, target_precision=target_precision,
                                 target_recall=target_recall, iou_threshold=iou_threshold, iou_type=kind,
                                 kpt_sigmas=sigmas, boundary_dilation=ratio)
        sl = None
        if slice_by is not None:
            with progress_bar(f"slices by {slice_by}", enabled=n_boot > 0) as update, \
                    flags_named({"slice_metrics: by": "eval: --slice-by"}):
                sl = slice_metrics(truth, preds, by=slice_by, n_boot=n_boot, rng=seed, iou_type=kind,
                                   kpt_sigmas=sigmas, boundary_dilation=ratio, progress=update)
            single = int((sl.n_images == 1).sum())
            if single * 2 > len(sl.values):  # a bootstrap of one image has no spread: the intervals say nothing
                notes.append(f"--slice-by {slice_by}: {single} of its {len(sl.values)} values hold a single image "
                             "(a column of about one value per image, such as an id, is no slice): their intervals "
                             "and flags say nothing")
        cm = None
        if kind != "keypoints":  # class-agnostic matching needs IoU; OKS is defined per class
            cm = detection_confusion_matrix(truth, preds, iou_threshold=iou_threshold,
                                            score_threshold=score_threshold, iou_type=kind, boundary_dilation=ratio)
        tide = tide_errors(truth, preds, iou_type=kind, pos_thr=iou_threshold) if errors else None
        cal = None
        if calibration:
            from maslow.metrics.calibration import detection_calibration

            cal = detection_calibration(truth, preds, iou_type=kind, iou_threshold=iou_threshold, kpt_sigmas=sigmas,
                                        boundary_dilation=ratio)
    drawers: dict[str, tuple[Path, Callable[[Path], Path]]] = {}  # key -> (file, draw into a path)
    if plot_dir is not None:
        from maslow.metrics import plots

        drawers["pr_curves"] = (plot_dir / "pr_curves.png", lambda p: plots.plot_pr_curves(result, p))
        drawers["ap_per_class"] = (plot_dir / "ap_per_class.png", lambda p: plots.plot_ap_per_class(result, p))
        if cm is not None:
            cm_ = cm
            drawers["confusion_matrix"] = (plot_dir / "confusion_matrix.png",
                                           lambda p: plots.plot_confusion_matrix(cm_, p))
        if sl is not None:
            sl_ = sl
            drawers["slices"] = (plot_dir / f"slices_{_safe(sl.by)}.png", lambda p: plots.plot_slices(sl_, p))
        if tide is not None:
            tide_ = tide
            drawers["tide_errors"] = (plot_dir / "tide_errors.png", lambda p: plots.plot_tide_errors(tide_, p))
        if cal is not None:
            from maslow.metrics.calibration import plot_reliability

            cal_ = cal
            drawers["reliability"] = (plot_dir / "reliability.png", lambda p: plot_reliability(cal_, p))
    written = {k: dest for k, (dest, _) in drawers.items()}
    # every output is drawn into a temporary file beside its target and all are renamed on leaving the block,
    # so a failure (a folder that can't be written, an unwritable --json) leaves no plot or JSON half-written
    per_class = _per_class(result, truth)
    doc = {
        "gt": str(gt), "pred": str(pred), "gt_format": gt_format, "pred_format": pred_format,
        "iou_type": kind, **({} if dilation is None else {"boundary_dilation": dilation}),
        "n_images": truth.n_images, "n_truth": truth.n_annotations,
        "n_pred": preds.n_annotations, "map": result.to_dict(), "per_class": per_class,
        **({"area_stats": cp.area_stats(result)} if "area_ranges" in params else {}),
        "operating_points": None if op is None else op.to_dict(),
        "slices": None if sl is None else sl.to_dict(),
        "confusion_matrix": None if cm is None else cm.to_dict(),
        "tide": None if tide is None else tide.to_dict(),
        "calibration": None if cal is None else cal.to_dict(),
        "plots": {k: str(v) for k, v in written.items()},
        "import_issues": {"gt": gt_report.to_dict(), "pred": pred_report.to_dict()}, "notes": notes,
    }
    with contextlib.ExitStack() as stack:
        json_tmp = None if json_out is None else stack.enter_context(atomic_path(json_out))  # fails first
        for dest, draw in drawers.values():
            draw(stack.enter_context(atomic_path(dest)))
        _render_issues(f"{gt}", gt_report, [])
        _render_issues(f"{pred}", pred_report, notes)
        if not to_stdout:
            _render_map(result, per_class, dilation)
            if op is not None:
                _render_ops(op)
            if sl is not None:
                _render_slices(sl)
            if tide is not None:
                _render_tide(tide)
            if cal is not None:
                _render_calibration(cal)
        if json_tmp is not None:
            json_tmp.write_text(json_text(doc) + "\n", encoding="utf-8")
    if to_stdout:  # after the plots are in place, so a script that reads them finds them
        print_json(doc)
        return
    if written:
        console.print(f"Wrote {len(written)} plots to {lit(plot_dir)}: " + lit(", ".join(p.name for p in written.values())))
    if json_out is not None:
        console.print(f"Wrote {lit(json_out)}")


def _plot_names(iou_type: str, slice_by: str | None, errors: bool, calibration: bool) -> list[str]:
    """The files ``--plot`` writes for a detection, mask or keypoint evaluation."""
    names = ["pr_curves.png", "ap_per_class.png"]
    if iou_type != "keypoints":
        names.append("confusion_matrix.png")
    if slice_by is not None:
        names.append(f"slices_{_safe(slice_by)}.png")
    if errors:
        names.append("tide_errors.png")
    if calibration:
        names.append("reliability.png")
    return names


def _boundary_options(kind: str, dilation: float | None, where: str = "eval") -> float | None:
    """``--boundary-dilation`` (0.02 by default) for ``--iou-type boundary``, None for the others; refuses it with
    another type."""
    if kind != "boundary":
        if dilation is not None:
            raise MaslowError(f"{where}: --boundary-dilation applies to --iou-type boundary, got {kind}")
        return None
    if dilation is not None and not (math.isfinite(dilation) and dilation >= 0):
        raise MaslowError(f"{where}: --boundary-dilation must be a number >= 0 (a fraction of the image diagonal), "
                          f"got {dilation:g}")
    return 0.02 if dilation is None else dilation


def _check_task_options(task: Task, given: dict[str, bool]) -> None:
    """Refuse the options the truth's task has no use for, which were silently ignored (a --target-precision on
    multi-label tags printed no operating points and exited 0)."""
    used = {Task.CLASSIFICATION: ("--cost-fp/--cost-fn/--target-precision/--target-recall",),
            Task.MULTILABEL: (), Task.SEMANTIC_SEGMENTATION: ("--ignore-index",)}.get(
        task, ("--cost-fp/--cost-fn/--target-precision/--target-recall", "--slice-by", "--pred-area", "--errors",
               "--calibration", cp.FLAGS))
    for flag, on in given.items():
        if on and flag not in used:
            where = "detection, instance masks and keypoints" if flag in ("--slice-by", "--pred-area",
                                                                          "--calibration", cp.FLAGS) else \
                "detection and instance masks" if flag == "--errors" else \
                "semantic segmentation" if flag == "--ignore-index" else "detection, masks, keypoints and classification"
            raise MaslowError(f"eval: {flag} applies to {where}, got a {task.value} truth")


def _eval_labels(truth: Dataset, preds: Dataset, json_out: Path | None, head: dict[str, Any], *,
                 to_stdout: bool = False, op: OperatingPoints | None = None, ignore_index: int | None = None) -> None:
    """Classification, multi-label or semantic scores (``maslow.metrics``), one summary and one per-class table;
    ``op``: classification operating points, printed after them."""
    from maslow import metrics

    task = truth.schema.task
    res: Any
    if task == Task.CLASSIFICATION:
        res = metrics.classification_scores(truth, preds)
        summary = {"accuracy": res.accuracy, "balanced_accuracy": res.balanced_accuracy,
                   # with probabilities only, and k below the number of classes (else trivially 1)
                   **{f"top_{k}_accuracy": v for k, v in res.top_k_accuracy.items()
                      if not math.isnan(v) and k < len(truth.schema.classes)},
                   **{f"{m}_{avg}": getattr(res, f"{m}_{avg}") for m in ("precision", "recall", "fbeta")
                      for avg in ("micro", "macro", "weighted")}}
        cols = {"support": res.support_per_class, "precision": res.precision_per_class,
                "recall": res.recall_per_class, f"F{res.beta:g}": res.fbeta_per_class}
    elif task == Task.MULTILABEL:
        res = metrics.multilabel_scores(truth, preds)
        summary = {n: getattr(res, n) for n in ("hamming_score", "hamming_loss", "subset_accuracy")}
        summary.update({f"{m}_{avg}": getattr(res, f"{m}_{avg}") for m in ("precision", "recall", "f1")
                        for avg in ("micro", "macro", "samples")})
        cols = {"support": res.support_per_class, "precision": res.precision_per_class,
                "recall": res.recall_per_class, "F1": res.f1_per_class}
    else:
        res = metrics.semantic_scores(truth, preds, ignore_index=ignore_index)
        summary = {n: getattr(res, n) for n in ("miou", "mean_dice", "pixel_accuracy", "mean_accuracy", "fw_iou")}
        cols = {"IoU": res.iou_per_class, "Dice": res.dice_per_class, "accuracy": res.accuracy_per_class,
                "precision": res.precision_per_class}
        if res.n_unpredicted_per_class.any():  # truth pixels without a predicted class: misses, shown
            cols["unpredicted"] = res.n_unpredicted_per_class
    doc = {**head, "task": task.value, "n_images": truth.n_images, "summary": summary, "result": res.to_dict(),
           "operating_points": None if op is None else op.to_dict()}
    if to_stdout:
        print_json(doc)
        return
    console.print(table(f"{task.value} evaluation ({truth.n_images} images)", ["metric", "value"],
                        [(k, _f(float(v))) for k, v in summary.items()]))
    rows = [(name, *(str(int(c[k])) if n in ("support", "unpredicted") else _f(float(c[k])) for n, c in cols.items()))
            for k, name in enumerate(res.class_names)]
    console.print(table("Per class", ["class", *cols], rows))
    if "unpredicted" in cols:
        console.print(f"{int(res.n_unpredicted_per_class.sum())} truth pixels have no predicted class (no prediction "
                      "map, or a class the truth does not evaluate): counted as missed", markup=False, highlight=False)
    if op is not None:
        _render_ops(op)
    if json_out is not None:
        _write_json(doc, json_out)
        console.print(f"Wrote {lit(json_out)}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-") or "column"


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
