"""Confidence calibration of detection scores: does a score of 0.8 mean right 8 times in 10?

Glossary:

- *correct*: a prediction that is a true positive in COCO's matching at ``iou_threshold`` (``coco_matches``:
  area range "all", the largest maxDets); a false positive is wrong. Predictions the matching ignores (matched to a
  crowd region, unmatched and outside the area range) or skips (past maxDets in their image and class, or of a
  class the truth lacks) are left out, as hotcoco's ``COCOeval.calibration`` leaves them out.
- *bins*: ``n_bins`` equal-width bins of [0, 1]; a score ``s`` goes to bin ``min(floor(s * n_bins), n_bins - 1)``
  in floating point, as hotcoco bins (so a bin holds its lower edge, the last one both edges, up to rounding: with
  100 bins ``0.29 * 100`` is ``28.999999999999996``, and a score of exactly 0.29 falls in the bin below).
  Scores must be confidences in [0, 1].
- *confidence*, *accuracy* of a bin: the mean score and the fraction correct of its predictions.
- *ECE* (expected calibration error): ``sum_b count_b / n * |accuracy_b - confidence_b|``, the gap weighted by
  how many predictions each bin holds; *MCE* (maximum calibration error): the largest gap of a non-empty bin.
  Both are lower-better, in [0, 1], and nan without predictions (hotcoco gives 0.0 there).
- *per class*: the same over the predictions of each class.

A detector's precision depends on how many objects there are to find, so a calibrated score here means "the
fraction of predictions at this score that match an object", the reading hotcoco's ``calibration`` and
reliability diagrams of detectors use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow._plot import figure
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.errors import InvalidDatasetError
from maslow.metrics._result import MatchTable
from maslow.metrics.coco import coco_matches


@dataclass(frozen=True, eq=False)
class Calibration:
    """Reliability bins and calibration errors of detection scores (see the module docstring).

    Attributes:
        iou_type: ``"bbox"``, ``"segm"``, ``"boundary"``, ``"obb"`` or ``"keypoints"``.
        iou_threshold: the IoU (OKS) a correct prediction reaches.
        bin_lower, bin_upper: (n_bins,) edges of each bin.
        confidence: (n_bins,) mean score of each bin (nan: empty bin).
        accuracy: (n_bins,) fraction of correct predictions of each bin (nan: empty bin).
        count: (n_bins,) predictions in each bin.
        ece, mce: expected and maximum calibration error (nan without predictions).
        n_predictions: predictions binned (true and false positives).
        class_names: (K,) the classes (the K axis of ``coco_map``).
        ece_per_class, mce_per_class: (K,) the same per class (nan: no prediction of the class).
        n_per_class: (K,) predictions binned per class.
    """

    iou_type: str
    iou_threshold: float
    bin_lower: FloatArray
    bin_upper: FloatArray
    confidence: FloatArray
    accuracy: FloatArray
    count: IntArray
    ece: float
    mce: float
    n_predictions: int
    class_names: tuple[str, ...]
    ece_per_class: FloatArray
    mce_per_class: FloatArray
    n_per_class: IntArray

    @property
    def n_bins(self) -> int:
        return len(self.count)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None): the errors, the bins and the per-class errors."""
        def f(x: Any) -> float | None:
            v = float(x)
            return v if math.isfinite(v) else None
        bins = [{"lower": float(self.bin_lower[b]), "upper": float(self.bin_upper[b]),
                 "confidence": f(self.confidence[b]), "accuracy": f(self.accuracy[b]), "count": int(self.count[b])}
                for b in range(self.n_bins)]
        per_class = [{"class": n, "ece": f(self.ece_per_class[k]), "mce": f(self.mce_per_class[k]),
                      "n_predictions": int(self.n_per_class[k])} for k, n in enumerate(self.class_names)]
        return {"iou_type": self.iou_type, "iou_threshold": self.iou_threshold, "n_bins": self.n_bins,
                "ece": f(self.ece), "mce": f(self.mce), "n_predictions": self.n_predictions, "bins": bins,
                "per_class": per_class}

    def to_pandas(self) -> Any:
        """One row per bin: lower, upper, confidence, accuracy, count, gap (``|accuracy - confidence|``)."""
        import pandas as pd

        return pd.DataFrame({"lower": self.bin_lower, "upper": self.bin_upper, "confidence": self.confidence,
                             "accuracy": self.accuracy, "count": self.count,
                             "gap": np.abs(self.accuracy - self.confidence)})


def _bins(score: FloatArray, correct: np.ndarray, n_bins: int) -> tuple[FloatArray, FloatArray, IntArray, float,
                                                                        float]:
    """(confidence, accuracy, count) per bin, ECE and MCE of scores in [0, 1]."""
    idx = np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    s_sum = np.bincount(idx, weights=score, minlength=n_bins)
    c_sum = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins)
    conf, acc = np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    has = count > 0
    conf[has], acc[has] = s_sum[has] / count[has], c_sum[has] / count[has]
    if not has.any():
        return conf, acc, count, math.nan, math.nan
    gap = np.abs(acc[has] - conf[has])
    return conf, acc, count, float(np.sum(count[has] / count.sum() * gap)), float(gap.max())


def detection_calibration(
    truth: Dataset,
    pred: Dataset,
    *,
    iou_type: str = "bbox",
    iou_threshold: float = 0.5,
    n_bins: int = 10,
    kpt_sigmas: Sequence[float] | FloatArray | None = None,
    boundary_dilation: float = 0.02,
) -> Calibration:
    """Calibration of detection scores: how often a prediction at each score is a true positive.

    Args:
        truth: ground truth.
        pred: predictions on truth's images table, with scores in [0, 1].
        iou_type: ``"bbox"``, ``"segm"``, ``"boundary"`` (Boundary IoU of the masks), ``"obb"`` (oriented boxes) or
            ``"keypoints"``.
        iou_threshold: the IoU (OKS) that makes a prediction correct (COCO's matching at that threshold).
        n_bins: equal-width bins of [0, 1].
        kpt_sigmas: OKS sigmas for keypoints (default COCO's 17).
        boundary_dilation: ``iou_type="boundary"``: the boundary's width as a fraction of the image diagonal
            (``coco_map``'s).

    Returns:
        Calibration: per-bin confidence, accuracy and count; ECE and MCE overall and per class.

    Raises:
        InvalidDatasetError: a score outside [0, 1] (logits: apply a sigmoid or softmax first), or as
            ``coco_matches``.
        ValueError: ``n_bins`` < 1 or ``iou_threshold`` outside [0, 1].

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(8, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> cal = detection_calibration(truth, pred)
        >>> cal.ece, int(cal.count[-1]) == cal.n_predictions
        (0.0, True)
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"detection_calibration: n_bins must be an integer >= 1, got {n_bins!r}")
    if not (isinstance(iou_threshold, float | int) and 0 <= iou_threshold <= 1):
        raise ValueError(f"detection_calibration: iou_threshold must be in [0, 1], got {iou_threshold!r}")
    table = coco_matches(truth, pred, iou_type=iou_type, iou_thresholds=[float(iou_threshold)], kpt_sigmas=kpt_sigmas,
                         boundary_dilation=boundary_dilation)
    status = table.pred_status[:, 0]
    rows = np.flatnonzero((status == MatchTable.TP) | (status == MatchTable.FP))
    score = pred.annotations.score
    assert score is not None  # coco_matches refuses predictions without scores
    s = np.asarray(score, np.float64)[rows]
    bad = np.flatnonzero(~((s >= 0) & (s <= 1)))
    if bad.size:
        raise InvalidDatasetError(
            f"pred.annotations.score row {rows[bad[0]]}: must be a confidence in [0, 1] for calibration, got "
            f"{s[bad[0]]} ({bad.size} rows). Turn logits into probabilities (sigmoid or softmax) first")
    correct = status[rows] == MatchTable.TP
    res = table.result
    n_k = len(res.class_names)
    by_name = {truth.schema.names[int(lab)]: k for k, lab in enumerate(res.class_labels.tolist())}
    k_of = np.asarray([by_name.get(n, -1) for n in pred.schema.names], np.int64)
    k = k_of[pred.annotations.label[rows]] if len(rows) else np.zeros(0, np.int64)
    n = int(n_bins)
    conf, acc, count, ece, mce = _bins(s, correct, n)
    ece_k, mce_k = np.full(n_k, np.nan), np.full(n_k, np.nan)
    n_per = np.bincount(k[k >= 0], minlength=n_k).astype(np.int64)
    for j in np.flatnonzero(n_per).tolist():
        sel = k == j
        *_, ece_k[j], mce_k[j] = _bins(s[sel], correct[sel], n)
    edges = np.arange(n + 1) / n
    out = (edges[:-1].copy(), edges[1:].copy(), conf, acc, count, ece_k, mce_k, n_per)
    for arr in out:
        arr.flags.writeable = False
    return Calibration(iou_type=iou_type, iou_threshold=float(iou_threshold), bin_lower=out[0], bin_upper=out[1],
                       confidence=conf, accuracy=acc, count=count, ece=ece, mce=mce, n_predictions=len(rows),
                       class_names=res.class_names, ece_per_class=ece_k, mce_per_class=mce_k, n_per_class=n_per)


def plot_reliability(calibration: Calibration | Sequence[Calibration], path: str | Path, *,
                     labels: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Reliability diagram: accuracy against mean confidence per bin (the diagonal is perfect calibration), with
    the number of predictions per bin below.

    Args:
        calibration: a ``detection_calibration`` result, or several (models compared) drawn together.
        path: the PNG to write.
        labels: a name per calibration (default "A", "B", ...), shown in the legend with its ECE.
        title: figure title.

    Returns:
        ``path``. Empty bins have no point.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    cals = [calibration] if isinstance(calibration, Calibration) else list(calibration)
    names = list(labels) if labels is not None else [chr(ord("A") + i) for i in range(len(cals))]
    if len(names) != len(cals):
        raise ValueError(f"plot_reliability: labels must name each calibration ({len(cals)}), got {len(names)}")
    fig = figure(6.0, 6.4, dpi=110)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="perfectly calibrated")
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    for i, (c, name) in enumerate(zip(cals, names, strict=True)):
        colour = colours[i % len(colours)]
        has = c.count > 0
        ece = "n/a" if math.isnan(c.ece) else f"{c.ece:.3f}"
        top.plot(c.confidence[has], c.accuracy[has], "o-", color=colour, label=f"{name} (ECE {ece})")
        width = (c.bin_upper - c.bin_lower) / (len(cals) + 1)
        bottom.bar(c.bin_lower + width * (i + 0.5), c.count, width=width, color=colour, align="edge",
                   label=name)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_ylabel("fraction correct (true positives)")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("score (mean confidence of the bin)")
    bottom.set_ylabel("predictions")
    bottom.grid(axis="y", alpha=0.3)
    c0 = cals[0] if cals else None
    at = "" if c0 is None else f" ({c0.iou_type}, IoU {c0.iou_threshold:g})"
    top.set_title(title or f"Reliability of the scores{at}", fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
