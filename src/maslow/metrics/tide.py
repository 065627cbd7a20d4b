"""TIDE error decomposition of detections and instance masks (Bolya et al., "TIDE: A General Toolbox for
Identifying Object Detection Errors", ECCV 2020), with tidecv 1.0.1's definitions.

Each prediction that is not a true positive at IoU ``pos_thr`` gets one error type, and each missed truth object
is a Miss; fixing one type with TIDE's oracle gives the AP it costs (its dAP):

- **Cls**: right place, wrong class (IoU ``>= pos_thr`` with a truth object of another class);
- **Loc**: right class, IoU with the best truth object of its class in ``[bg_thr, pos_thr]``;
- **Both**: wrong class and poorly localised (what is left);
- **Dupe**: right class and place, but that truth object was already taken by a higher-scored prediction;
- **Bkg**: IoU ``<= bg_thr`` with every truth object (or an image without any);
- **Miss**: a truth object that no prediction matches and no Loc/Cls error would recover;
- the special oracles **FP** (every false positive scored below every true positive: perfect precision) and
  **FN** (every unmatched truth object dropped: perfect recall).

The rules are tidecv's (``tidecv/quantify.py``, ``errors/main_errors.py``, ``ap.py``), restated in
``maslow.metrics._tide``. Where they differ from a COCO evaluation:

- *matching* is per image: predictions sorted by score (ties in row order) and cut at ``max_dets`` over **all**
  classes of the image (COCO: per class); ties in IoU go to the truth object that comes first in the file (COCO:
  the last);
- *crowd* truth objects (``annotations.iscrowd``) are tidecv's ignore regions: never matched and not counted; an
  unmatched prediction whose intersection over its own area with a crowd region of its class is ``> pos_thr``
  (COCO: ``>=``, crowd regions matched like others) leaves the AP but still gets an error type, which is counted;
- *AP* is tidecv's: precision without COCO's epsilon, recall thresholds ``r / 100``; a class with predictions
  but no truth object counts as AP 0 in the mean (COCO leaves it out); predicted classes the truth's schema lacks
  are evaluated too (appended to ``class_names``); ties in score are broken by image order (rows of the images
  table, a COCO file's order as tidecv reads it) in the unfixed run and errors first in the fixed runs, so a fix
  can lower the AP: the main types' dAP is clamped at 0, as tidecv does, FP and FN are not. Values are fractions
  (tidecv prints them x 100). With no point and no truth object left in any class (a Miss fix on empty
  predictions) the mean is nan (tidecv divides by zero).

hotcoco 1.3's ``COCOeval.tide_errors`` follows the same definitions on COCO's own matching: where no truth object
overlaps another and there is no crowd region, no class predicted without truth and no COCO annotation id 0, its
numbers are these (``tests/metrics/test_tide_reference.py``). Elsewhere it differs: COCO's crowd rule, and
predictions in crowd regions are not classified; maxDets per image and class; the mean over classes with truth in
every run; other ties; and, where truth objects overlap, Cls, Loc and Miss dAP off by up to about 0.01.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.metrics import _tide as T
from maslow.metrics._shared import _check_same_images

IOU_TYPES = ("bbox", "segm", "obb")


@dataclass(frozen=True, eq=False)
class TideResult:
    """TIDE errors of one evaluation: dAP and counts per error type, per class, and per object.

    Codes (int8, names in ``CODES``): ``TP`` matched; ``CLS``, ``LOC``, ``BOTH``, ``DUPE``, ``BKG`` the error
    type of a prediction; ``MISS`` a missed truth object; ``COVERED`` an unmatched truth object a Loc or Cls
    error would recover (a false negative that is not a Miss); ``IGNORED`` a crowd truth object; ``SKIPPED`` a
    prediction not evaluated (past ``max_dets`` in its image).

    Attributes:
        iou_type, pos_thr, bg_thr, max_dets: the options.
        ap_base: tidecv's mAP at ``pos_thr`` (fraction; the mean over classes with a prediction or a truth object).
        delta_ap: ``"Cls"``, ``"Loc"``, ``"Both"``, ``"Dupe"``, ``"Bkg"``, ``"Miss"`` (clamped at 0), ``"FP"``,
            ``"FN"`` -> the mAP gained by fixing that type.
        counts: ``"Cls"`` ... ``"Miss"`` -> number of errors (those of ignored predictions included).
        class_names: (K,) the truth's schema names, then predicted classes it lacks.
        n_truth_per_class: (K,) non-crowd truth objects; ``n_pred_per_class``: (K,) evaluated predictions.
        ap_per_class: (K,) AP of each class (0 for a class with predictions and no truth; nan: neither).
        delta_ap_per_class: (K, 8) AP gained per class by each fix, in ``DELTA_TYPES`` order, not clamped (nan
            where the class counts in only one of the two means).
        counts_per_class: (K, 6) errors per class, in ``ERROR_TYPES`` order: of the prediction's class for the
            five prediction errors (a Cls error of a "dog" prediction on a cat counts under dog), of the truth's
            for Miss.
        pred_error: (n_pred,) code of each prediction row: TP, an error type or SKIPPED.
        pred_ignored: (n_pred,) the prediction lies in a crowd region of its class (not in the AP).
        pred_truth: (n_pred,) truth row each prediction refers to (-1: none): the one it matches (TP), the target
            of its fix (Loc: the best truth of its class; Cls: the best of another class), the matched truth it
            duplicates (Dupe), the truth it overlaps most (Both); Bkg and skipped: -1.
        pred_iou: (n_pred,) IoU with that truth object (nan: none).
        truth_error: (n_truth,) code of each truth row: TP, MISS, COVERED or IGNORED.
        truth_pred: (n_truth,) prediction row matched to each truth object (-1: none).
    """

    TP: ClassVar[int] = T.TP
    CLS: ClassVar[int] = T.CLS
    LOC: ClassVar[int] = T.LOC
    BOTH: ClassVar[int] = T.BOTH
    DUPE: ClassVar[int] = T.DUPE
    BKG: ClassVar[int] = T.BKG
    MISS: ClassVar[int] = T.MISS
    COVERED: ClassVar[int] = T.COVERED
    IGNORED: ClassVar[int] = T.IGNORED
    SKIPPED: ClassVar[int] = T.SKIPPED
    CODES: ClassVar[tuple[str, ...]] = ("TP", "Cls", "Loc", "Both", "Dupe", "Bkg", "Miss", "covered", "ignored",
                                        "skipped")
    ERROR_TYPES: ClassVar[tuple[str, ...]] = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
    DELTA_TYPES: ClassVar[tuple[str, ...]] = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss", "FP", "FN")

    iou_type: str
    pos_thr: float
    bg_thr: float
    max_dets: int
    ap_base: float
    delta_ap: Mapping[str, float]
    counts: Mapping[str, int]
    class_names: tuple[str, ...]
    n_truth_per_class: IntArray
    n_pred_per_class: IntArray
    ap_per_class: FloatArray
    delta_ap_per_class: FloatArray
    counts_per_class: IntArray
    pred_error: np.ndarray
    pred_ignored: BoolArray
    pred_truth: IntArray
    pred_iou: FloatArray
    truth_error: np.ndarray
    truth_pred: IntArray

    def error_names(self, codes: np.ndarray) -> np.ndarray:
        """The names of an array of codes (object array of str): ``result.error_names(result.pred_error)``."""
        names: np.ndarray = np.asarray(self.CODES, dtype=object)[np.asarray(codes, np.int64)]
        return names

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None): options, ``ap_base``, ``delta_ap``, ``counts`` and ``per_class`` (one
        entry per class with its ``n_truth``, ``n_pred``, ``ap``, ``delta_ap`` and ``counts``); the per-object
        columns are left out."""
        def f(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        per_class = [{"class": name, "n_truth": int(self.n_truth_per_class[k]),
                      "n_pred": int(self.n_pred_per_class[k]), "ap": f(float(self.ap_per_class[k])),
                      "delta_ap": {t: f(float(v)) for t, v in zip(self.DELTA_TYPES, self.delta_ap_per_class[k].tolist(),
                                                                   strict=True)},
                      "counts": {t: int(v) for t, v in zip(self.ERROR_TYPES, self.counts_per_class[k].tolist(),
                                                           strict=True)}}
                     for k, name in enumerate(self.class_names)]
        return {"iou_type": self.iou_type, "pos_thr": self.pos_thr, "bg_thr": self.bg_thr, "max_dets": self.max_dets,
                "ap_base": f(self.ap_base), "delta_ap": {t: f(v) for t, v in self.delta_ap.items()},
                "counts": dict(self.counts), "per_class": per_class}

    def to_pandas(self) -> Any:
        """Per-class table: ``class``, ``n_truth``, ``n_pred``, ``ap``, then ``dap_Cls`` ... ``dap_FN`` and
        ``n_Cls`` ... ``n_Miss``."""
        import pandas as pd

        cols: dict[str, Any] = {"class": list(self.class_names), "n_truth": self.n_truth_per_class,
                                "n_pred": self.n_pred_per_class, "ap": self.ap_per_class}
        cols.update({f"dap_{t}": self.delta_ap_per_class[:, i] for i, t in enumerate(self.DELTA_TYPES)})
        cols.update({f"n_{t}": self.counts_per_class[:, i] for i, t in enumerate(self.ERROR_TYPES)})
        return pd.DataFrame(cols)


def _mean(ap: FloatArray, counted: BoolArray) -> float:
    return float(np.mean(ap[counted])) if counted.any() else math.nan


def tide_errors(
    truth: Dataset,
    pred: Dataset,
    *,
    iou_type: str = "bbox",
    pos_thr: float = 0.5,
    bg_thr: float = 0.1,
    max_dets: int = 100,
) -> TideResult:
    """TIDE's error types and their dAP (tidecv 1.0.1's definitions; see the module docstring).

    Args:
        truth: ground truth; ``annotations.iscrowd`` marks crowd regions (tidecv's ignore regions).
        pred: predictions on the same images table, with ``annotations.score``.
        iou_type: ``"bbox"``, ``"segm"`` (polygons or RLE masks) or ``"obb"`` (oriented boxes, ``coco_map``'s).
        pos_thr: IoU of a true positive, in (0, 1].
        bg_thr: IoU at or below which a prediction is background, in (0, pos_thr].
        max_dets: predictions evaluated per image (all classes together; tidecv's ``Data.max_dets``).

    Returns:
        TideResult: dAP and counts per type, per class, and the error type of every prediction row.

    Raises:
        InvalidDatasetError: predictions without scores (or a nan score) or on another images table, or geometry
            missing for ``iou_type``.
        ValueError: an option out of range.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(4, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> r = tide_errors(truth, pred)
        >>> r.ap_base, r.counts["Miss"], r.delta_ap["Loc"]
        (1.0, 0, 0.0)
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"tide_errors: iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
    if not (isinstance(pos_thr, int | float | np.floating) and 0 < pos_thr <= 1):
        raise ValueError(f"tide_errors: pos_thr must be in (0, 1], got {pos_thr!r}")
    if not (isinstance(bg_thr, int | float | np.floating) and 0 < bg_thr <= pos_thr):
        raise ValueError(f"tide_errors: bg_thr must be in (0, pos_thr={pos_thr}], got {bg_thr!r} (at 0 tidecv's "
                         "argmax over an all-zero IoU row names an arbitrary truth object)")
    if isinstance(max_dets, bool) or not isinstance(max_dets, int | np.integer) or max_dets < 1:
        raise ValueError(f"tide_errors: max_dets must be a positive integer, got {max_dets!r}")
    _check_same_images(truth, pred, "tide_errors")
    pos_thr, bg_thr, max_dets = float(pos_thr), float(bg_thr), int(max_dets)
    names, pred_k_of_label = T.class_axis(truth, pred)
    n_k = len(names)
    s = T.sides(truth, pred, pred_k_of_label, max_dets)
    p_idx, t_idx, iou = T.overlaps(truth, pred, s, iou_type, bg_thr)
    o = T.decide(s, p_idx, t_idx, iou, truth.n_images, pos_thr, bg_thr)
    runs = T.runs(s, o, n_k)

    base_ap, base_in = runs["base"]
    ap_base = _mean(base_ap, base_in)
    ap_per_class = np.where(base_in, base_ap, np.nan)
    delta: dict[str, float] = {}
    per_class = np.full((n_k, len(TideResult.DELTA_TYPES)), np.nan)
    for i, name in enumerate(TideResult.DELTA_TYPES):
        ap, counted = runs[name]
        d = _mean(ap, counted) - ap_base
        delta[name] = d if name in ("FP", "FN") or math.isnan(d) else max(d, 0.0)
        both = counted & base_in
        per_class[both, i] = ap[both] - base_ap[both]

    # counts: prediction errors under the prediction's class, Miss under the truth's
    counts_pc = np.zeros((n_k, len(TideResult.ERROR_TYPES)), np.int64)
    for i, code in enumerate((T.CLS, T.LOC, T.BOTH, T.DUPE, T.BKG)):
        counts_pc[:, i] = np.bincount(s.p_k[o.err == code], minlength=n_k)
    counts_pc[:, 5] = np.bincount(s.t_k[o.truth_err == T.MISS], minlength=n_k)

    n_pred, n_truth = pred.n_annotations, truth.n_annotations
    pred_error = np.full(n_pred, T.SKIPPED, np.int8)
    pred_error[s.p_rows] = o.err
    pred_ignored = np.zeros(n_pred, bool)
    pred_ignored[s.p_rows] = o.ignored
    pred_truth = np.full(n_pred, -1, np.int64)
    pred_truth[s.p_rows] = np.where(o.target >= 0, s.t_rows[np.maximum(o.target, 0)], -1) if len(s.t_rows) else -1
    pred_iou = np.full(n_pred, np.nan)
    pred_iou[s.p_rows] = o.target_iou
    truth_error = np.empty(n_truth, np.int8)
    truth_error[s.t_rows] = o.truth_err
    truth_pred = np.full(n_truth, -1, np.int64)
    truth_pred[s.t_rows] = np.where(o.truth_pred >= 0, s.p_rows[np.maximum(o.truth_pred, 0)], -1) \
        if len(s.p_rows) else -1
    arrays = (ap_per_class, per_class, counts_pc, pred_error, pred_ignored, pred_truth, pred_iou, truth_error, truth_pred)
    for a in arrays:
        a.flags.writeable = False
    n_truth_pc = np.bincount(s.t_k[~s.crowd], minlength=n_k)
    n_pred_pc = np.bincount(s.p_k, minlength=n_k)
    n_truth_pc.flags.writeable = n_pred_pc.flags.writeable = False
    return TideResult(
        iou_type=iou_type, pos_thr=pos_thr, bg_thr=bg_thr, max_dets=max_dets, ap_base=ap_base,
        delta_ap=MappingProxyType(delta),
        counts=MappingProxyType({t: int(counts_pc[:, i].sum()) for i, t in enumerate(TideResult.ERROR_TYPES)}),
        class_names=names, n_truth_per_class=n_truth_pc, n_pred_per_class=n_pred_pc, ap_per_class=ap_per_class,
        delta_ap_per_class=per_class, counts_per_class=counts_pc, pred_error=pred_error, pred_ignored=pred_ignored,
        pred_truth=pred_truth, pred_iou=pred_iou, truth_error=truth_error, truth_pred=truth_pred,
    )
