"""Operating points of a detector: per-class score thresholds, and the errors a thresholded detector makes.

"Are we better off with false positives or false negatives?" A detector is deployed with a score threshold
per class; this module chooses it from the per-object matches of a COCO evaluation and says what it gives.

Glossary:

- *kept*: the predictions of a class whose score is ``>= threshold``. A threshold of ``inf`` keeps none.
- *TP / FP / FN*: counted from ``coco_matches`` at one IoU threshold, area range "all", one maxDets (100):
  crowd regions and the predictions matched to them are ignored, predictions past maxDets in their image and
  class (or of a class the truth lacks) are not evaluated, exactly as pycocotools decides them; a match to a
  truth object whose COCO id is 0 is a TP (pycocotools records it as none, an FP and an FN). Raising the
  threshold only removes the lowest-scored predictions of a class, which pycocotools matches last, so the
  matches of the kept ones never change: TP(threshold) and FP(threshold) are counts over one match table, and
  every threshold is evaluated exactly (``FN = n_truth - TP``).
- *classification* (the truth schema's task is ``classification``): one-vs-rest per class. Each image is a
  candidate for every class, scored by its predicted probability (``pred.annotations.extra["probs"]``, (n, K_pred),
  column j for ``pred.schema.names[j]``, one prediction per image, as ``classification_scores`` reads it); an image
  of class c at or above c's threshold is a TP, another image an FP, an image of class c below it an FN.
- *cost*: ``cost_fp * FP + cost_fn * FN``; with ``cost_fn = 5`` a missed object costs five false alarms.
- *F-beta*: ``(1 + b²) TP / ((1 + b²) TP + b² FN + FP)``; nan when the class has neither truth nor kept
  predictions. Precision is nan when nothing is kept, recall is nan without truth objects.
- *detection confusion matrix*: rows are the truth classes plus "background" (last row: predictions that
  matched no truth object, i.e. false positives), columns the predicted classes plus "background" (last
  column: truth objects no prediction matched, i.e. misses). Predictions are matched to truth objects
  regardless of class (pycocotools' greedy matching with ``use_cats=False``), so a box found with the wrong
  class lands off the diagonal instead of counting as one FP and one FN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, Task
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.metrics._result import MatchTable
from maslow.metrics.coco import coco_matches

_ALL = {"all": (0.0, 1e5**2)}


def _nan_none(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else float(x)


@dataclass(frozen=True, eq=False)
class OperatingPoints:
    """Per-class score thresholds and what they give (see the module docstring).

    Attributes:
        mode: ``"cost"`` (minimum ``cost_fp * FP + cost_fn * FN``), ``"precision"`` (lowest threshold with
            precision ``>= target``) or ``"recall"`` (highest threshold with recall ``>= target``).
        target: the target precision or recall; nan in cost mode.
        cost_fp, cost_fn, beta, iou_threshold, iou_type, max_dets: the options used.
        class_names, class_labels: (K,) name and truth schema label of each class (``MapResult`` order).
        threshold: (K,) float64 score threshold (keep ``score >= threshold``); ``inf`` keeps nothing.
        met: (K,) bool, the threshold meets the target (always True in cost mode).
        n_truth: (K,) truth objects not ignored; n_pred: (K,) predictions evaluated.
        tp, fp, fn: (K,) int64 counts at the threshold.
        precision, recall, fbeta, cost: (K,) float64 at the threshold.
        overall_tp, overall_fp, overall_fn, overall_precision, overall_recall, overall_fbeta, overall_cost:
            the sums over classes, each at its own threshold (micro averages).
    """

    mode: str
    target: float
    cost_fp: float
    cost_fn: float
    beta: float
    iou_threshold: float
    iou_type: str
    max_dets: int
    class_names: tuple[str, ...]
    class_labels: IntArray
    threshold: FloatArray
    met: BoolArray
    n_truth: IntArray
    n_pred: IntArray
    tp: IntArray
    fp: IntArray
    fn: IntArray
    precision: FloatArray
    recall: FloatArray
    fbeta: FloatArray
    cost: FloatArray
    overall_tp: int
    overall_fp: int
    overall_fn: int
    overall_precision: float
    overall_recall: float
    overall_fbeta: float
    overall_cost: float

    def thresholds(self) -> dict[str, float]:
        """Class name -> score threshold (``inf``: keep none of that class)."""
        return dict(zip(self.class_names, self.threshold.tolist(), strict=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; a threshold of ``inf`` (keep nothing) and undefined values are ``None``."""
        classes = []
        for k, name in enumerate(self.class_names):
            classes.append({
                "name": name, "threshold": _nan_none(float(self.threshold[k])), "met": bool(self.met[k]),
                "n_truth": int(self.n_truth[k]), "n_pred": int(self.n_pred[k]), "tp": int(self.tp[k]),
                "fp": int(self.fp[k]), "fn": int(self.fn[k]), "precision": _nan_none(float(self.precision[k])),
                "recall": _nan_none(float(self.recall[k])), "fbeta": _nan_none(float(self.fbeta[k])),
                "cost": float(self.cost[k]),
            })
        return {
            "mode": self.mode, "target": _nan_none(self.target), "cost_fp": self.cost_fp, "cost_fn": self.cost_fn,
            "beta": self.beta, "iou_threshold": self.iou_threshold, "iou_type": self.iou_type,
            "max_dets": self.max_dets, "classes": classes,
            "overall": {
                "tp": self.overall_tp, "fp": self.overall_fp, "fn": self.overall_fn,
                "precision": _nan_none(self.overall_precision), "recall": _nan_none(self.overall_recall),
                "fbeta": _nan_none(self.overall_fbeta), "cost": self.overall_cost,
            },
        }

    def to_pandas(self) -> Any:
        """One row per class: threshold, met, n_truth, n_pred, tp, fp, fn, precision, recall, fbeta, cost."""
        import pandas as pd

        cols = ("threshold", "met", "n_truth", "n_pred", "tp", "fp", "fn", "precision", "recall", "fbeta", "cost")
        return pd.DataFrame({"class": list(self.class_names), **{c: getattr(self, c) for c in cols}})


def _fbeta(tp: Any, fp: Any, fn: Any, beta: float) -> Any:
    b2 = beta * beta
    num = (1 + b2) * np.asarray(tp, np.float64)
    den = num + b2 * np.asarray(fn, np.float64) + np.asarray(fp, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _ratio(a: Any, b: Any) -> Any:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _check(name: str, value: float | None, lo: float, hi: float, *, lo_open: bool = False) -> None:
    if value is None:
        return
    ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bound = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
        raise ValueError(f"operating_point: {name} must be in {bound}, got {value!r}")


def _class_positions(truth: Dataset, pred: Dataset, class_labels: IntArray) -> tuple[IntArray, IntArray]:
    """K position of each truth row and each prediction row (-1: a class the truth lacks)."""
    k_of_truth_label = np.full(len(truth.schema.names), -1, np.int64)
    k_of_truth_label[class_labels] = np.arange(len(class_labels), dtype=np.int64)
    by_name = {truth.schema.names[int(lab)]: k for k, lab in enumerate(class_labels.tolist())}
    k_of_pred_label = np.asarray([by_name.get(n, -1) for n in pred.schema.names], dtype=np.int64)
    t_k = k_of_truth_label[truth.annotations.label] if truth.n_annotations else np.zeros(0, np.int64)
    p_k = k_of_pred_label[pred.annotations.label] if pred.n_annotations else np.zeros(0, np.int64)
    return t_k, p_k


def _curve(score: FloatArray, tp: BoolArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Every distinct threshold, highest first, with ``inf`` (keep nothing) first; cumulative TP and FP."""
    order = np.argsort(-score, kind="stable")
    s, t = score[order], tp[order]
    ctp = np.cumsum(t, dtype=np.int64)
    cfp = np.arange(1, len(s) + 1, dtype=np.int64) - ctp
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True]) if len(s) else np.zeros(0, np.int64)
    return np.r_[np.inf, s[last]], np.r_[0, ctp[last]], np.r_[0, cfp[last]]


def operating_point(
    truth: Dataset,
    pred: Dataset,
    *,
    cost_fp: float = 1.0,
    cost_fn: float = 1.0,
    target_precision: float | None = None,
    target_recall: float | None = None,
    iou_threshold: float = 0.5,
    beta: float = 1.0,
    iou_type: str = "bbox",
    max_dets: int = 100,
    kpt_sigmas: Sequence[float] | FloatArray | None = None,
    boundary_dilation: float = 0.02,
) -> OperatingPoints:
    """Per-class score thresholds minimising a cost, or meeting a target precision or recall.

    Args:
        truth: ground truth (crowd regions are ignored, as COCO does).
        pred: scored predictions on the same images table.
        cost_fp, cost_fn: cost of one false positive and of one miss (``>= 0``).
        target_precision: if given, each class takes the lowest threshold whose precision is ``>=`` it (the
            most recall the target allows); where none reaches it, the class keeps nothing (``met`` False).
        target_recall: if given, each class takes the highest threshold whose recall is ``>=`` it (the fewest
            predictions that reach it); where none does, the class keeps all its predictions (``met`` False).
            A class without truth objects keeps nothing.
        iou_threshold: IoU (OKS for keypoints) a match needs.
        beta: the F-beta weight of recall.
        iou_type: ``"bbox"``, ``"segm"``, ``"boundary"`` (Boundary IoU of the masks), ``"obb"`` (oriented boxes) or
            ``"keypoints"`` (ignored for classification).
        max_dets: predictions evaluated per image and class (highest scores first), as COCO's maxDets.
        kpt_sigmas: OKS sigmas, one per keypoint (keypoints only; default COCO's 17).
        boundary_dilation: ``iou_type="boundary"``: the boundary's width as a fraction of the image diagonal
            (``coco_map``'s).

    The thresholds tried are ``inf`` and the scores of the evaluated predictions (a value between two of them keeps
    the same predictions). In cost mode, ties between thresholds of equal cost go to the highest threshold (fewest
    predictions).
    When ``truth.schema.task`` is classification, the thresholds apply to per-class probabilities, one-vs-rest
    (module docstring); ``iou_type`` is then ``"classification"`` and ``iou_threshold`` nan in the result.

    Returns:
        OperatingPoints, per class (``MapResult``'s class order) and overall.

    Raises:
        ValueError: an option out of range, or both targets given.
        InvalidDatasetError: as ``coco_map`` (predictions without scores, another images table, ...); for
            classification, predictions without a ``probs`` column or not one per image; an infinite score or
            probability (no threshold keeps it apart from ``inf``, "keep nothing").

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(8, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.full(truth.n_annotations, .9)))
        >>> op = operating_point(truth, pred, cost_fn=5)
        >>> op.overall_fn, op.overall_fp, op.thresholds()["circle"]
        (0, 0, 0.9)
    """
    if target_precision is not None and target_recall is not None:
        raise ValueError("operating_point: give target_precision or target_recall, not both")
    for name, v in (("cost_fp", cost_fp), ("cost_fn", cost_fn)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"operating_point: {name} must be a finite number >= 0, got {v!r}")
    _check("target_precision", target_precision, 0.0, 1.0, lo_open=True)
    _check("target_recall", target_recall, 0.0, 1.0, lo_open=True)
    _check("iou_threshold", iou_threshold, 0.0, 1.0)
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"operating_point: beta must be a finite number > 0, got {beta!r}")
    if int(max_dets) < 1:
        raise ValueError(f"operating_point: max_dets must be >= 1, got {max_dets!r}")
    mode = "precision" if target_precision is not None else "recall" if target_recall is not None else "cost"
    target = target_precision if target_precision is not None else target_recall
    candidates: list[tuple[FloatArray, BoolArray]] = []  # per class: (scores, is a TP) of its candidates
    if truth.schema.task is Task.CLASSIFICATION:
        names, labels, n_truth = _classification_candidates(truth, pred, candidates)
        iou_type, iou_threshold = "classification", math.nan
    else:
        table = coco_matches(truth, pred, iou_type=iou_type, iou_thresholds=[iou_threshold],
                              max_dets=[int(max_dets)], area_ranges=_ALL, kpt_sigmas=kpt_sigmas,
                              boundary_dilation=boundary_dilation)
        names, labels = table.result.class_names, table.result.class_labels
        t_k, p_k = _class_positions(truth, pred, labels)
        t_status, p_status = table.truth_status[:, 0], table.pred_status[:, 0]
        n_truth = np.bincount(t_k[t_status != MatchTable.IGNORED], minlength=len(labels)).astype(np.int64)
        evaluated = (p_status == MatchTable.TP) | (p_status == MatchTable.FP)
        # a match to a truth object whose COCO id is 0 is a TP here (pycocotools records it as none: FP + FN)
        hit = (p_status == MatchTable.TP) | ((p_status == MatchTable.FP) & (table.pred_match[:, 0] >= 0))
        score = pred.annotations.score
        assert score is not None  # coco_matches refuses predictions without scores
        _check_finite(score, pred)
        for k in range(len(labels)):
            rows = np.flatnonzero(evaluated & (p_k == k))
            candidates.append((score[rows], hit[rows]))
    n_k = len(labels)
    out_thr = np.full(n_k, np.inf)
    out_met = np.ones(n_k, bool)
    tp = np.zeros(n_k, np.int64)
    fp = np.zeros(n_k, np.int64)
    n_pred = np.zeros(n_k, np.int64)
    for k, (cand_score, cand_tp) in enumerate(candidates):
        n_pred[k] = len(cand_score)
        thr, ctp, cfp = _curve(cand_score, cand_tp)
        j = _choose(mode, target, thr, ctp, cfp, int(n_truth[k]), cost_fp, cost_fn)
        out_thr[k], tp[k], fp[k] = thr[j], ctp[j], cfp[j]
        if mode == "precision":
            out_met[k] = j > 0 and ctp[j] / (ctp[j] + cfp[j]) >= target
        elif mode == "recall":
            out_met[k] = n_truth[k] > 0 and ctp[j] / n_truth[k] >= target
    fn = n_truth - tp
    cost = cost_fp * fp + cost_fn * fn.astype(np.float64)
    s_tp, s_fp, s_fn = int(tp.sum()), int(fp.sum()), int(fn.sum())
    arrays = {"threshold": out_thr, "met": out_met, "n_truth": n_truth, "n_pred": n_pred, "tp": tp, "fp": fp,
              "fn": fn, "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, n_truth),
              "fbeta": _fbeta(tp, fp, fn, beta), "cost": cost}
    for arr in arrays.values():
        arr.flags.writeable = False
    return OperatingPoints(
        mode=mode, target=math.nan if target is None else float(target), cost_fp=float(cost_fp),
        cost_fn=float(cost_fn), beta=float(beta), iou_threshold=float(iou_threshold), iou_type=iou_type,
        max_dets=int(max_dets), class_names=tuple(names), class_labels=labels, **arrays,
        overall_tp=s_tp, overall_fp=s_fp, overall_fn=s_fn, overall_precision=float(_ratio(s_tp, s_tp + s_fp)),
        overall_recall=float(_ratio(s_tp, s_tp + s_fn)), overall_fbeta=float(_fbeta(s_tp, s_fp, s_fn, beta)),
        overall_cost=float(cost.sum()),
    )


def _check_finite(score: FloatArray, pred: Dataset) -> None:
    """Refuse an infinite score: no threshold keeps a score of ``inf`` apart from "keep nothing" (``inf``), and
    ``-inf`` would be a threshold ``to_dict`` can't tell from it (both ``None``)."""
    from maslow.errors import InvalidDatasetError

    bad = np.flatnonzero(np.isinf(score))
    if bad.size:
        r = int(bad[0])
        raise InvalidDatasetError(f"pred.annotations.score row {r} (image "
                                  f"{pred.images.path[pred.annotations.image[r]]!r}): must be a finite number to "
                                  f"choose a threshold on, got {score[r]} ({bad.size} rows)")


def _classification_candidates(truth: Dataset, pred: Dataset, out: list[tuple[FloatArray, BoolArray]]
                                ) -> tuple[tuple[str, ...], IntArray, IntArray]:
    """One-vs-rest candidates of each truth class (appended to ``out``): every image, scored by its probability."""
    from maslow.errors import InvalidDatasetError
    from maslow.metrics.classification import PROBS_COLUMN

    where = "operating_point"
    if pred.n_images != truth.n_images or not np.array_equal(pred.images.path, truth.images.path):
        raise InvalidDatasetError(f"{where}: pred.images must be truth's images table ({truth.n_images} rows)")
    for side, ds in (("truth", truth), ("pred", pred)):
        count = np.bincount(ds.annotations.image, minlength=ds.n_images)
        bad = np.flatnonzero(count != 1)
        if bad.size:
            raise InvalidDatasetError(f"{where}: {side} image {bad[0]} must have exactly one label, got "
                                      f"{count[bad[0]]} ({bad.size} images)")
    probs = pred.annotations.extra.get(PROBS_COLUMN)
    raw = None if probs is None else np.asarray(probs.tolist() if probs.dtype == object else probs, np.float64)
    if raw is None or raw.ndim != 2 or raw.shape != (pred.n_annotations, len(pred.schema.names)):
        got = "no such column" if raw is None else f"shape {raw.shape}"
        raise InvalidDatasetError(f"pred.annotations.extra[{PROBS_COLUMN!r}]: per-class probabilities must be an "
                                  f"({pred.n_annotations}, {len(pred.schema.names)}) array, got {got}")
    bad = np.flatnonzero(~np.isfinite(raw).all(axis=1))
    if bad.size:  # an infinite score has no threshold that keeps it apart from "keep nothing" (inf)
        r = int(bad[0])
        got = raw[r][~np.isfinite(raw[r])][0]
        raise InvalidDatasetError(f"pred.annotations.extra[{PROBS_COLUMN!r}] row {r} (image "
                                  f"{pred.images.path[pred.annotations.image[r]]!r}): must be finite numbers, got "
                                  f"{got} ({bad.size} rows)")
    probs_of_image = raw[np.argsort(pred.annotations.image, kind="stable")]
    truth_label = truth.annotations.label[np.argsort(truth.annotations.image, kind="stable")]
    col = {n: j for j, n in enumerate(pred.schema.names)}
    names = truth.schema.names
    for c, name in enumerate(names):
        j = col.get(name)
        if j is None:
            out.append((np.zeros(0), np.zeros(0, bool)))
        else:
            out.append((probs_of_image[:, j], truth_label == c))
    n_truth = np.bincount(truth_label, minlength=len(names)).astype(np.int64)
    return names, np.arange(len(names), dtype=np.int64), n_truth


def _choose(mode: str, target: float | None, thr: FloatArray, ctp: IntArray, cfp: IntArray, n_truth: int,
            cost_fp: float, cost_fn: float) -> int:
    """Index into the curve (0: keep nothing) of the chosen threshold."""
    if mode == "cost":
        cost = cost_fp * cfp + cost_fn * (n_truth - ctp).astype(np.float64)
        return int(np.argmin(cost))  # the first minimum: the highest threshold
    assert target is not None
    if mode == "precision":
        # compared as reported: the float64 quotient tp / (tp + fp)
        ok = np.flatnonzero(ctp[1:] / (ctp[1:] + cfp[1:]) >= target) + 1
        return int(ok[-1]) if len(ok) else 0
    if n_truth == 0:
        return 0
    ok = np.flatnonzero(ctp / n_truth >= target)
    return int(ok[0]) if len(ok) else len(thr) - 1


# -- detection confusion matrix -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DetectionConfusion:
    """Detection confusion matrix (see the module docstring).

    Attributes:
        class_names: (K,) the truth classes in schema order, then classes only the predictions have.
        matrix: (K + 1, K + 1) int64; ``matrix[i, j]`` counts truth objects of class i matched to a prediction
            of class j; row K (background) counts unmatched predictions, column K (background) missed truth
            objects; ``matrix[K, K]`` is 0.
        iou_threshold, score_threshold, iou_type: the options used.
    """

    class_names: tuple[str, ...]
    matrix: IntArray
    iou_threshold: float
    score_threshold: float
    iou_type: str

    @property
    def labels(self) -> tuple[str, ...]:
        """Row and column names: the classes, then ``"background"``."""
        return (*self.class_names, "background")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``labels``, ``matrix`` (rows truth, columns predicted) and the options."""
        return {"labels": list(self.labels), "matrix": self.matrix.tolist(), "iou_threshold": self.iou_threshold,
                "score_threshold": self.score_threshold, "iou_type": self.iou_type}

    def to_pandas(self) -> Any:
        """The matrix as a DataFrame: index truth, columns predicted."""
        import pandas as pd

        labels = list(self.labels)
        return pd.DataFrame(self.matrix, index=pd.Index(labels, name="truth"),
                            columns=pd.Index(labels, name="predicted"))


def detection_confusion_matrix(
    truth: Dataset,
    pred: Dataset,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    iou_type: str = "bbox",
    max_dets: int | None = None,
    boundary_dilation: float = 0.02,
) -> DetectionConfusion:
    """Which class each truth object was detected as, from class-agnostic matching (module docstring).

    Args:
        truth: ground truth; crowd regions and the predictions matched to them are left out.
        pred: scored predictions on the same images table.
        iou_threshold: IoU a match needs.
        score_threshold: only predictions with ``score >= score_threshold`` take part.
        iou_type: ``"bbox"``, ``"segm"``, ``"boundary"`` (Boundary IoU of the masks) or ``"obb"`` (oriented boxes).
        max_dets: predictions per image, highest scores first; None: all.
        boundary_dilation: ``iou_type="boundary"``: the boundary's width as a fraction of the image diagonal
            (``coco_map``'s).

    Returns:
        DetectionConfusion with the (K + 1, K + 1) matrix, rows truth, columns predicted.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(8, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> cm = detection_confusion_matrix(truth, pred)
        >>> int(cm.matrix.trace()) == int((~truth.annotations.iscrowd).sum()), int(cm.matrix[-1].sum())
        (True, 0)
    """
    if iou_type not in ("bbox", "segm", "boundary", "obb"):
        raise ValueError(f"detection_confusion_matrix: iou_type must be 'bbox', 'segm', 'boundary' or 'obb' "
                         f"(class-agnostic matching needs an IoU; OKS is defined per class), got {iou_type!r}")
    _check("iou_threshold", iou_threshold, 0.0, 1.0)
    if not math.isfinite(score_threshold):
        raise ValueError(f"detection_confusion_matrix: score_threshold must be a number, got {score_threshold!r}")
    if pred.annotations.score is None:
        from maslow.errors import InvalidDatasetError

        raise InvalidDatasetError("pred.annotations.score: predictions must carry scores, got no score column")
    with np.errstate(invalid="ignore"):
        kept = pred.select(pred.annotations.score >= score_threshold)
    truth_m, pred_m, names = _shared_schema(truth, kept)
    per_image = np.bincount(kept.annotations.image, minlength=1).max(initial=1) if kept.n_annotations else 1
    dets = int(per_image) if max_dets is None else int(max_dets)
    table = coco_matches(truth_m, pred_m, iou_type=iou_type, iou_thresholds=[iou_threshold],
                          max_dets=[max(dets, 1)], area_ranges=_ALL, use_cats=False,
                          boundary_dilation=boundary_dilation)
    n = len(names)
    matrix = np.zeros((n + 1, n + 1), np.int64)
    t_lab, p_lab = truth_m.annotations.label, pred_m.annotations.label
    p_status, p_match = table.pred_status[:, 0], table.pred_match[:, 0]
    t_status = table.truth_status[:, 0]
    # a match to a truth object whose COCO id is 0 is still a match here (pycocotools records it as none)
    matched = (p_match >= 0) & (p_status != MatchTable.IGNORED) & (p_status != MatchTable.SKIPPED)
    np.add.at(matrix, (t_lab[p_match[matched]], p_lab[matched]), 1)
    unmatched = (p_status == MatchTable.FP) & ~matched
    np.add.at(matrix, (np.full(int(unmatched.sum()), n), p_lab[unmatched]), 1)
    missed = t_status == MatchTable.FN
    np.add.at(matrix, (t_lab[missed], np.full(int(missed.sum()), n)), 1)
    matrix.flags.writeable = False
    return DetectionConfusion(class_names=names, matrix=matrix, iou_threshold=float(iou_threshold),
                              score_threshold=float(score_threshold), iou_type=iou_type)


def _shared_schema(truth: Dataset, pred: Dataset) -> tuple[Dataset, Dataset, tuple[str, ...]]:
    """Truth and predictions over one schema: truth's classes, then the classes only the predictions have."""
    names = list(truth.schema.names)
    extra = [n for n in dict.fromkeys(pred.schema.names) if n not in truth.schema]
    if not extra and pred.schema.names == truth.schema.names:
        return truth, pred, tuple(names)
    ids = [c.id for c in truth.schema.classes]
    next_id = max((i for i in ids if i is not None), default=0) + 1
    all_ids = all(i is not None for i in ids)
    added: Sequence[ClassDef] = [ClassDef(name=n, id=next_id + j if all_ids else None) for j, n in enumerate(extra)]
    schema = truth.schema.with_classes((*truth.schema.classes, *added))
    names += extra
    pos = {n: i for i, n in enumerate(names)}
    remap = np.asarray([pos[n] for n in pred.schema.names], dtype=np.int64)
    label = remap[pred.annotations.label] if pred.n_annotations else pred.annotations.label
    pred_m = pred.replace(schema=schema, annotations=pred.annotations.with_columns(label=label))
    return truth.replace(schema=schema), pred_m, tuple(names)
