"""Pascal VOC detection evaluation: AP at one IoU threshold, difficult objects ignored, VOC2007's 11-point or
VOC2010+'s all-point AP, for boxes, instance masks and oriented boxes (DOTA's evaluation is this with polygons).

The protocol, per class (the official devkit's ``VOCevaldet.m``; py-faster-rcnn's ``voc_eval.py``, detectron2's
``PascalVOCDetectionEvaluator``, mmdetection's ``eval_map`` and DOTA_devkit's ``dota_evaluation_task1.py`` are
ports of it): the detections of the class, over all images, are taken by score; each is given the truth object of
its image and class with the largest IoU; if that IoU reaches the threshold, the detection is ignored when the
object is difficult, a true positive when the object is not yet taken (it is then taken), else a false positive
(a duplicate); below the threshold it is a false positive. Recall is ``tp / n_pos`` (``n_pos``: the objects that
are not difficult), precision ``tp / max(tp + fp, eps)``.

Unlike COCO, a detection is judged against its best object even when that one is taken (COCO looks for the best
*free* object), there is one IoU threshold, no per-image cap and no area ranges, and AP is not sampled at 101
recall points. Conventions decided here (the ports differ; each choice is an option where they do):

- *pixel convention*: maslow boxes are continuous corners (pixel i spans [i, i + 1)) and ``read_voc`` turns VOC's
  1-based inclusive ``xmin..xmax`` into ``x1 = xmin - 1``, ``x2 = xmax``. So the plain IoU of maslow boxes
  (``w = x2 - x1``) *is* the devkit's ``+ 1`` IoU on the file's numbers: ``pixel_inclusive=False`` (default)
  reproduces VOC on VOC data. ``pixel_inclusive=True`` measures ``w = x2 - x1 + 1`` on boxes that hold inclusive
  pixel indices as they are (DOTA_devkit's horizontal-box ``dota_evaluation_task2.py`` on DOTA's corners,
  mmdetection's ``use_legacy_coordinate``); boxes only (masks are pixel sets, DOTA's polygon IoU has no ``+ 1``).
- *IoU*: maslow's own: the box IoU of pycocotools (``metrics._iou``), mask IoU of RLEs (polygons rasterised as
  pycocotools does), the quadrilateral IoU of ``metrics._obb``. A crowd region is measured by plain IoU too.
- *threshold*: a match needs ``IoU >= iou_threshold`` (the devkit, mmdetection); ``strict_iou=True``:
  ``IoU > iou_threshold`` (py-faster-rcnn, detectron2, DOTA_devkit). It matters when an IoU equals the threshold,
  which integer VOC boxes make common (an IoU of exactly 0.5). A detection that overlaps nothing never matches,
  even at threshold 0.
- *best object*: the largest IoU among all the objects of the image and class, taken, difficult or not; the first
  in row (file) order on ties, as ``np.argmax`` and the devkit's ``ov > ovmax`` loop.
- *difficult*: ``truth.annotations.attributes[difficult]`` (``"difficult"``, as the VOC and DOTA readers write it;
  a bool, an integer level, where any but 0 is difficult as DOTA_devkit reads them, its text, or
  ``"true"``/``"false"``): such objects are not counted in ``n_pos`` and every detection whose best object one is,
  is ignored (neither TP nor FP; any number of them). No such attribute (or ``difficult=None``): none.
- *crowd*: ``annotations.iscrowd`` objects (VOC has none) are ignored like difficult ones, as mmdetection's
  ``eval_map`` treats the ignored boxes its COCO dataset makes of them.
- *score ties*: the detections of a class are sorted by score, ties by image, then in file (row) order within an
  image: a stable sort, like the devkit's (MATLAB's ``sort`` is stable), and the order of maslow's COCO evaluation
  (images by ``images.extra["coco_id"]`` when the truth has it, else by row). The Python ports call
  ``np.argsort``'s default quicksort, whose order of equal scores is arbitrary, so their numbers can move with ties.
- *curves*: one point per evaluated detection, in that order, ignored ones included (they repeat the point before,
  or give precision 0 before any decision, as in py-faster-rcnn).
- *AP*: ``metric="voc2010"`` (VOC2010 and later): the area under the precision envelope over every recall step;
  ``"voc2007"``: the mean over the 11 recall points ``np.arange(0., 1.1, 0.1)`` of the highest precision at a recall
  at least that point (0 where none) — as the Python ports build them, so the points 0.3, 0.6 and 0.7 are the
  doubles just above and a recall of exactly 3/10 does not reach 0.3. Both computed with py-faster-rcnn's
  ``voc_ap``'s float64 operations.
- *classes*: the truth's classes, in schema order; predictions are matched to them by class name, and those of
  other classes are not evaluated (status ``skipped``). A class with no object that counts (``n_pos == 0``) has AP
  nan and is left out of the mean (py-faster-rcnn divides by zero there); one with objects but no detection, AP 0.
  ``map`` is the mean over the classes with a number (nan when none has).
- *images*: ``pred`` shares ``truth``'s images table (read predictions with ``like=truth``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.metrics import _prepare as P
from maslow.metrics import _voc_eval as V
from maslow.metrics._result import MatchStatus
from maslow.metrics.coco import _pair_ious, _params

__all__ = ["VOC_IOU_TYPES", "VOC_METRICS", "VocResult", "voc_map"]

VOC_IOU_TYPES = ("bbox", "segm", "obb")
VOC_METRICS = ("voc2010", "voc2007")


@dataclass(frozen=True, eq=False)
class VocResult(MatchStatus):
    """Pascal VOC evaluation result: mAP, each class's AP, counts and precision/recall curve, and each object's
    and detection's decision.

    Attributes:
        map: mean AP over the classes with ``n_pos > 0`` (nan when none).
        class_names: (K,) the truth's classes, in schema order (the per-class arrays follow it).
        ap_per_class: (K,) AP of each class; nan where ``n_pos_per_class`` is 0.
        n_pos_per_class: (K,) objects that count (neither difficult nor crowd): recall's denominator.
        n_ignored_truth_per_class: (K,) difficult or crowd objects.
        n_pred_per_class: (K,) detections evaluated; ``n_tp_per_class``, ``n_fp_per_class`` (duplicates
            included) and ``n_ignored_pred_per_class`` (on a difficult or crowd object) split them.
        precision, recall, scores: (K,) tuples of each class's curve, one point per detection in evaluation
            order (``n_pred_per_class[k]`` points): cumulative ``tp / max(tp + fp, eps)``, ``tp / n_pos`` (nan
            when ``n_pos`` is 0) and the detection's score.
        pred_status: (n_pred,) int8 status of each prediction row (``STATUS``: tp, fp, ignored, or skipped for a
            class the truth lacks); ``pred_match``: the truth row of its best object when the IoU reaches the
            threshold (duplicates and ignored detections too; -1: none), ``pred_iou``: that IoU (nan: none).
        truth_status: (n_truth,) int8: tp (found), fn (missed) or ignored (difficult, crowd); ``truth_match``: the
            prediction row of its true positive (-1: none).
        n_skipped: predictions of classes absent from the truth (not evaluated).
    """

    iou_type: str
    metric: str
    iou_threshold: float
    strict_iou: bool
    pixel_inclusive: bool
    difficult: str | None
    map: float
    class_names: tuple[str, ...]
    ap_per_class: FloatArray
    n_pos_per_class: IntArray
    n_ignored_truth_per_class: IntArray
    n_pred_per_class: IntArray
    n_tp_per_class: IntArray
    n_fp_per_class: IntArray
    n_ignored_pred_per_class: IntArray
    precision: tuple[FloatArray, ...]
    recall: tuple[FloatArray, ...]
    scores: tuple[FloatArray, ...]
    pred_status: np.ndarray
    pred_match: IntArray
    pred_iou: FloatArray
    truth_status: np.ndarray
    truth_match: IntArray
    n_skipped: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None): options, mAP, totals and one entry per class (no curves)."""
        def f(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None
        per_class = [
            {"class": name, "ap": f(float(self.ap_per_class[k])), "n_pos": int(self.n_pos_per_class[k]),
             "n_ignored_truth": int(self.n_ignored_truth_per_class[k]), "n_pred": int(self.n_pred_per_class[k]),
             "n_tp": int(self.n_tp_per_class[k]), "n_fp": int(self.n_fp_per_class[k]),
             "n_ignored_pred": int(self.n_ignored_pred_per_class[k])}
            for k, name in enumerate(self.class_names)]
        return {
            "protocol": "voc", "iou_type": self.iou_type, "metric": self.metric, "iou_threshold": self.iou_threshold,
            "strict_iou": self.strict_iou, "pixel_inclusive": self.pixel_inclusive, "difficult": self.difficult,
            "map": f(self.map),
            "n_classes_evaluated": int(np.count_nonzero(self.n_pos_per_class)),
            "n_pos": int(self.n_pos_per_class.sum()), "n_ignored_truth": int(self.n_ignored_truth_per_class.sum()),
            "n_pred": int(self.n_pred_per_class.sum()), "n_tp": int(self.n_tp_per_class.sum()),
            "n_fp": int(self.n_fp_per_class.sum()), "n_ignored_pred": int(self.n_ignored_pred_per_class.sum()),
            "n_skipped": self.n_skipped, "per_class": per_class,
        }

    def to_pandas(self) -> Any:
        """Per-class table: ``class``, ``ap``, ``n_pos``, ``n_ignored_truth``, ``n_pred``, ``n_tp``, ``n_fp``,
        ``n_ignored_pred``."""
        import pandas as pd

        return pd.DataFrame({"class": list(self.class_names), "ap": self.ap_per_class,
                             "n_pos": self.n_pos_per_class, "n_ignored_truth": self.n_ignored_truth_per_class,
                             "n_pred": self.n_pred_per_class, "n_tp": self.n_tp_per_class,
                             "n_fp": self.n_fp_per_class, "n_ignored_pred": self.n_ignored_pred_per_class})


def _check_options(iou_type: str, iou_threshold: float, metric: str, difficult: str | None,
                   pixel_inclusive: bool) -> float:
    if iou_type not in VOC_IOU_TYPES:
        raise ValueError(f"voc_map: iou_type must be one of {', '.join(VOC_IOU_TYPES)}, got {iou_type!r}")
    if metric not in VOC_METRICS:
        raise ValueError(f"voc_map: metric must be 'voc2010' or 'voc2007', got {metric!r}")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"voc_map: iou_threshold must be a number in [0, 1], got {iou_threshold!r}")
    if difficult is not None and not isinstance(difficult, str):
        raise ValueError(f"voc_map: difficult must be an attribute name or None, got {difficult!r}")
    if pixel_inclusive and iou_type != "bbox":
        raise ValueError(f"voc_map: pixel_inclusive applies to iou_type 'bbox' (boxes), got {iou_type!r}")
    return float(iou_threshold)


def voc_map(
    truth: Dataset,
    pred: Dataset,
    *,
    iou_type: str = "bbox",
    iou_threshold: float = 0.5,
    metric: str = "voc2010",
    difficult: str | None = "difficult",
    pixel_inclusive: bool = False,
    strict_iou: bool = False,
) -> VocResult:
    """Pascal VOC mAP of predictions against truth (the rules and conventions: module docstring).

    Args:
        truth: ground truth; ``attributes[difficult]`` marks difficult objects, ``annotations.iscrowd`` crowd
            regions (both ignored).
        pred: predictions on the same images table, with ``annotations.score``.
        iou_type: ``"bbox"``, ``"segm"`` (polygons or RLE masks) or ``"obb"`` (oriented boxes: 4-point polygons
            or turned boxes, as ``coco_map``'s; DOTA's task 1).
        iou_threshold: the IoU a match needs, in [0, 1] (VOC: 0.5).
        metric: ``"voc2010"`` (all-point AP, VOC2010 and later) or ``"voc2007"`` (11-point AP; DOTA_devkit's).
        difficult: the bool attribute that marks difficult objects; None: no object is difficult.
        pixel_inclusive: measure boxes as inclusive pixel indices (``w = x2 - x1 + 1``); bbox only. Leave False
            for boxes read by maslow's readers (``read_voc`` already made VOC's pixels continuous).
        strict_iou: a match needs ``IoU > iou_threshold`` (py-faster-rcnn, detectron2, DOTA_devkit) instead of
            ``>=`` (the VOC devkit, mmdetection).

    Returns:
        VocResult with mAP, per-class AP, counts and curves, and the decision on every object and prediction.

    Raises:
        InvalidDatasetError: predictions without scores or on another images table, geometry missing for
            ``iou_type``, or a difficult flag that is not a bool.
        ValueError: an option out of range.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(4, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> voc_map(truth, pred).map
        1.0
    """
    thr = _check_options(iou_type, iou_threshold, metric, difficult, pixel_inclusive)
    n_k = len(truth.schema.names)
    groups = P.build_groups(truth, pred, use_cats=True, max_det=max(1, pred.n_annotations), iou_type=iou_type)
    t_rows = groups.truth.row
    ignored_rows = V.difficult_flags(truth, difficult)
    if truth.annotations.iscrowd is not None:
        ignored_rows = ignored_rows | truth.annotations.iscrowd
    plain = groups._replace(crowd=np.zeros(len(t_rows), bool))  # crowd regions by plain IoU, like any object
    min_iou = min(thr, 1 - 1e-10)  # the compiled kernels may leave out the pairs below it
    if pixel_inclusive:
        p_idx, t_idx, iou = V.inclusive_box_pairs(truth, pred, plain, min_iou)
    else:
        p = _params(iou_type, [min_iou], None, (max(1, pred.n_annotations),), None, True, None, "geometry")
        _, p_idx, t_idx, iou = _pair_ious(truth, pred, plain, p)
    n_eval = len(groups.pred.row)
    partner, partner_iou = V.best_truth(p_idx, t_idx, iou, n_eval, len(t_rows), thr, strict_iou)
    dec = V.decide(partner, groups.acc_order, ignored_rows[t_rows])

    t_label = truth.annotations.label
    n_pos = np.bincount(t_label[~ignored_rows], minlength=n_k).astype(np.int64)
    labels = groups.class_labels  # (K,) the schema label of each class position
    k_of = np.asarray(groups.pred.k, np.int64)
    cv = V.curves(dec, k_of, groups.score, n_pos[labels])
    ap = np.full(n_k, np.nan)
    b = cv.bounds.tolist()
    for k in np.flatnonzero(n_pos[labels]).tolist():
        ap[labels[k]] = V.average_precision(cv.recall[b[k]:b[k + 1]], cv.precision[b[k]:b[k + 1]], metric)
    valid = ap[~np.isnan(ap)]
    mean_ap = float(np.mean(valid)) if len(valid) else math.nan
    label = labels[k_of]
    position = np.empty(n_k, np.int64)  # each label's class position
    position[labels] = np.arange(n_k, dtype=np.int64)

    def per_class(flags: np.ndarray) -> IntArray:
        return np.bincount(label[flags], minlength=n_k).astype(np.int64)

    p_rows = groups.pred.row
    pred_status = np.full(pred.n_annotations, VocResult.SKIPPED, np.int8)
    pred_status[p_rows] = np.where(dec.tp, VocResult.TP, np.where(dec.fp, VocResult.FP, VocResult.IGNORED))
    matched = partner >= 0
    pred_match = np.full(pred.n_annotations, -1, np.int64)
    pred_match[p_rows[matched]] = t_rows[partner[matched]]
    pred_iou = np.full(pred.n_annotations, np.nan)
    pred_iou[p_rows] = partner_iou
    truth_status = np.where(ignored_rows, VocResult.IGNORED, VocResult.FN).astype(np.int8)
    truth_match = np.full(truth.n_annotations, -1, np.int64)
    hit = t_rows[partner[dec.tp]]
    truth_status[hit] = VocResult.TP
    truth_match[hit] = p_rows[dec.tp]

    arrays: list[np.ndarray] = [ap, n_pos, cv.precision, cv.recall, cv.scores, pred_status, pred_match, pred_iou,
                                truth_status, truth_match]
    counts = {name: per_class(flags) for name, flags in (("n_pred_per_class", np.ones(n_eval, bool)),
                                                        ("n_tp_per_class", dec.tp), ("n_fp_per_class", dec.fp),
                                                        ("n_ignored_pred_per_class", dec.ignored))}
    n_ignored_truth = np.bincount(t_label[ignored_rows], minlength=n_k).astype(np.int64)
    for arr in [*arrays, *counts.values(), n_ignored_truth]:
        arr.flags.writeable = False
    curve = [slice(b[k], b[k + 1]) for k in position.tolist()]
    return VocResult(
        iou_type=iou_type, metric=metric, iou_threshold=thr, strict_iou=bool(strict_iou),
        pixel_inclusive=bool(pixel_inclusive), difficult=difficult, map=mean_ap, class_names=truth.schema.names,
        ap_per_class=ap, n_pos_per_class=n_pos, n_ignored_truth_per_class=n_ignored_truth, **counts,
        precision=tuple(cv.precision[c] for c in curve), recall=tuple(cv.recall[c] for c in curve),
        scores=tuple(cv.scores[c] for c in curve),
        pred_status=pred_status, pred_match=pred_match, pred_iou=pred_iou, truth_status=truth_status,
        truth_match=truth_match, n_skipped=int(pred.n_annotations - n_eval),
    )
