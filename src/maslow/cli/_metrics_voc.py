"""``maslow eval --protocol voc``: the Pascal VOC evaluation (``maslow.metrics.voc_map``), its table and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maslow.cli._eval_inputs import LABEL_TASKS
from maslow.cli._protocol_output import emit
from maslow.cli.metrics import _f
from maslow.cli.render import console, table
from maslow.core.dataset import Dataset
from maslow.errors import MaslowError
from maslow.metrics.voc import VOC_IOU_TYPES, VocResult, voc_map

VOC_METRIC_OPTIONS = {"2010": "voc2010", "2007": "voc2007"}


def voc_options(protocol: str, kind: str, *, voc_metric: str | None, voc_strict: bool, pixel_inclusive: bool,
                coco_only: list[str]) -> str:
    """The ``metric`` of ``voc_map`` for ``--voc-metric`` (``"voc2010"`` by default), after refusing what doesn't go
    with the protocol: the VOC options without ``--protocol voc``; with it, an ``--iou-type`` VOC doesn't evaluate,
    ``--pixel-inclusive`` on anything but boxes, or one of ``coco_only`` (the names of the COCO-only options given).
    """
    voc_given = [name for name, given in (("--voc-metric", voc_metric is not None), ("--voc-strict", voc_strict),
                                          ("--pixel-inclusive", pixel_inclusive)) if given]
    if protocol != "voc":
        if voc_given:
            raise MaslowError(f"eval: {voc_given[0]} goes with --protocol voc, not {protocol}")
        return VOC_METRIC_OPTIONS["2010"]
    if kind not in VOC_IOU_TYPES:
        raise MaslowError(f"eval: --protocol voc evaluates --iou-type {', '.join(VOC_IOU_TYPES)}, got {kind}")
    if coco_only:
        raise MaslowError(f"eval: {coco_only[0]} goes with --protocol coco, not voc")
    if pixel_inclusive and kind != "bbox":
        raise MaslowError(f"eval: --pixel-inclusive applies to --iou-type bbox (boxes), got {kind}")
    metric = VOC_METRIC_OPTIONS.get("2010" if voc_metric is None else voc_metric.strip().lower().removeprefix("voc"))
    if metric is None:
        raise MaslowError(f"eval: --voc-metric must be 2007 (11-point AP) or 2010 (all-point AP), got {voc_metric!r}")
    return metric


def eval_voc(truth: Dataset, preds: Dataset, *, kind: str, metric: str, iou_threshold: float, strict_iou: bool,
             pixel_inclusive: bool, located: Any, json_out: Path | None, to_stdout: bool,
             sources: dict[str, tuple[str, str, Any]], notes: list[str]) -> None:
    """Evaluate, print the table (or the JSON on stdout) and write ``--json`` atomically. ``sources``: ``gt`` and
    ``pred`` -> (path, format, import report); ``located``: the context naming the file of an input error."""
    if truth.schema.task in LABEL_TASKS:
        raise MaslowError(f"eval: --protocol voc evaluates detection, instance masks or oriented boxes, got a "
                          f"{truth.schema.task.value} truth")
    if pixel_inclusive and sources["gt"][1] == "voc":
        notes.append("--pixel-inclusive on Pascal VOC files adds the devkit's + 1 a second time: maslow's VOC reader "
                     "already reads xmin..xmax as the corners xmin - 1 and xmax, so the default reproduces the devkit "
                     "on them; --pixel-inclusive is for boxes that hold inclusive pixel indices as they are")
    with located:
        r = voc_map(truth, preds, iou_type=kind, iou_threshold=iou_threshold, metric=metric,
                    pixel_inclusive=pixel_inclusive, strict_iou=strict_iou)
    emit("voc", r.to_dict(), lambda: render_voc(r), truth=truth, preds=preds, kind=kind, sources=sources, notes=notes,
         json_out=json_out, to_stdout=to_stdout)


def render_voc(r: VocResult) -> None:
    """The per-class table and the mAP line."""
    how = "11-point" if r.metric == "voc2007" else "all-point"
    rule = ">" if r.strict_iou else ">="
    rows = [(name, _f(float(r.ap_per_class[k])), int(r.n_pos_per_class[k]), int(r.n_ignored_truth_per_class[k]),
             int(r.n_pred_per_class[k]), int(r.n_tp_per_class[k]), int(r.n_fp_per_class[k]),
             int(r.n_ignored_pred_per_class[k])) for k, name in enumerate(r.class_names)]
    title = (f"Pascal VOC {r.iou_type} evaluation ({r.metric}: {how} AP at IoU {rule} {r.iou_threshold:g}"
             f"{'; inclusive pixel boxes' if r.pixel_inclusive else ''})")
    console.print(table(title, ["class", "AP", "objects", "ignored", "detections", "TP", "FP", "on ignored"], rows))
    d = r.to_dict()
    console.print(f"mAP {_f(r.map)} over {d['n_classes_evaluated']} of {len(r.class_names)} classes (those with "
                  f"objects that count); {d['n_ignored_truth']} difficult or crowd objects ignored, "
                  f"{d['n_ignored_pred']} detections on them ignored; {r.n_skipped} predictions of classes the truth "
                  "lacks not evaluated", markup=False, highlight=False)
