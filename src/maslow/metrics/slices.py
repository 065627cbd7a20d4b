"""Metrics per slice of a dataset (site, camera, time of day, split) with bootstrap confidence intervals, and a
test of whether a slice scores differently from random images.

Glossary:

- *slice*: the images sharing one value of an image column: ``images.extra[by]``, or ``split``, ``width``,
  ``height`` (missing values, None or NaN, form one slice, ``None``). Values of different types are different
  slices, even where Python calls them equal (``True``, ``1`` and ``1.0``; a numpy scalar counts as the Python
  type it holds). A slice holds its images' truth objects and predictions.
- *bootstrap*: ``n_boot`` times, draw a slice's images with replacement (as many as it has) and compute the
  metric on the drawn images (a drawn image counts as often as it is drawn); the confidence interval is the
  percentile interval of those values (nan values, e.g. a draw without truth objects, are left out).
  Drawn indexes are sorted before use, so copies of an image sit together as if the image were listed twice.
- *random subsets* (the null): ``n_boot`` times, draw as many images as the slice has from the whole dataset,
  without replacement, and compute the metric on them: what a slice of that size scores when it is no different
  from the rest (a permutation test of the slice's label). Its central ``ci`` interval is ``null_lower`` -
  ``null_upper``.
- *significant*: a slice is ``below`` when its value is under ``null_lower`` (``above``: over ``null_upper``), so
  a weak slice stands out; a slice drawn at random is flagged with probability ``(1 - ci) / 2`` each way (2.5%
  at ``ci=0.95``), so with many slices expect a few by chance. The slice is compared with subsets of its own
  size, not with ``overall`` or its bootstrap interval: mAP on fewer images is biased (upward for COCO's AP,
  whose interpolated precision envelope gains on a small sample), and a percentile bootstrap adds a bias of its
  own (a draw holds about 63% distinct images), so comparing a slice's interval with the whole dataset's value
  flagged about 40% of random 200-image slices "above" and none "below".
- *default metric*: COCO mAP@[.5:.95] (``coco_map(...).map_50_95``). It is computed from one match table of the
  whole dataset: COCO matches each image on its own, so a draw changes only the accumulation, which is redone
  with each image's predictions repeated as often as the image is drawn. The values are those ``coco_map``
  gives on ``truth.select_images(idx)`` (bit for bit), at a fraction of the cost, so ``n_boot=1000`` stays
  fast. A custom metric is called on each draw (``2 * n_boot`` per slice: the bootstrap, then the random subsets).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray, Rng, as_generator
from maslow.errors import InvalidDatasetError
from maslow.metrics._prepare import image_positions
from maslow.metrics._result import MatchTable
from maslow.metrics.coco import coco_matches

Metric = Callable[[Dataset, Dataset], float]
_EPS = np.spacing(1)


@dataclass(frozen=True, eq=False)
class SliceResult:
    """A metric per slice with bootstrap confidence intervals and the random-subset test (see the module
    docstring).

    Attributes:
        by: the image column sliced on.
        metric: the metric's name (``"map_50_95"`` for the default).
        values: (S,) the column values, sorted (``None`` for missing).
        n_images: (S,) images per slice.
        value: (S,) the metric on each slice.
        lower, upper: (S,) bootstrap confidence interval bounds of the slice's value (nan when no draw gave a
            value).
        null_lower, null_upper: (S,) the central ``ci`` interval of the metric on random image subsets of the
            slice's size (nan when no draw gave a value): the range of a slice that is no different.
        below, above: (S,) the slice's value lies below ``null_lower`` / above ``null_upper``.
        samples: (S, n_boot) the bootstrap values.
        null_samples: (S, n_boot) the values on random subsets of the slice's size.
        overall: the metric on the whole dataset.
        n_boot, ci: the options used.
    """

    by: str
    metric: str
    values: tuple[Any, ...]
    n_images: IntArray
    value: FloatArray
    lower: FloatArray
    upper: FloatArray
    null_lower: FloatArray
    null_upper: FloatArray
    below: BoolArray
    above: BoolArray
    samples: FloatArray
    null_samples: FloatArray
    overall: float
    n_boot: int
    ci: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None); the bootstrap and random-subset samples are left out."""
        def f(x: float) -> float | None:
            return None if math.isnan(x) else float(x)
        slices = [
            {"value": v, "n_images": int(self.n_images[s]), "metric": f(float(self.value[s])),
             "lower": f(float(self.lower[s])), "upper": f(float(self.upper[s])),
             "null_lower": f(float(self.null_lower[s])), "null_upper": f(float(self.null_upper[s])),
             "below": bool(self.below[s]), "above": bool(self.above[s])}
            for s, v in enumerate(self.values)
        ]
        return {"by": self.by, "metric": self.metric, "overall": f(self.overall), "n_boot": self.n_boot,
                "ci": self.ci, "slices": slices}

    def to_pandas(self) -> Any:
        """One row per slice: value, n_images, metric, lower, upper, null_lower, null_upper, below, above."""
        import pandas as pd

        return pd.DataFrame({self.by: list(self.values), "n_images": self.n_images, self.metric: self.value,
                             "lower": self.lower, "upper": self.upper, "null_lower": self.null_lower,
                             "null_upper": self.null_upper, "below": self.below, "above": self.above})


def _column(ds: Dataset, by: str) -> np.ndarray:
    im = ds.images
    if by in im.extra:
        col = im.extra[by]
    elif by in ("split", "width", "height"):
        col = getattr(im, by)
    else:
        known = ", ".join(["split", "width", "height", *sorted(im.extra)])
        raise InvalidDatasetError(f"slice_metrics: by must be an image column ({known}), got {by!r}")
    if col.ndim != 1:
        raise InvalidDatasetError(f"images.extra[{by!r}]: must be one value per image, got shape {col.shape}")
    return col


def _norm(v: Any) -> Any:
    if isinstance(v, np.generic):  # an object column's numpy scalar: the Python value it holds
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _groups(col: np.ndarray) -> tuple[tuple[Any, ...], IntArray]:
    """Sorted distinct values and the slice index of each image. Values are told apart by type too: ``True``,
    ``1`` and ``1.0`` are equal in Python (one dict key), but three slices here."""
    vals = [_norm(v) for v in col.tolist()]
    keys = [(type(v).__name__, v) for v in vals]
    uniq = list(dict.fromkeys(keys))
    try:
        ordered = sorted(uniq, key=lambda k: (k[1] is None, k[1] if k[1] is not None else 0, k[0]))
    except TypeError:
        ordered = sorted(uniq, key=lambda k: (k[1] is None, str(k[1]), k[0]))
    pos = {k: i for i, k in enumerate(ordered)}
    return tuple(k[1] for k in ordered), np.asarray([pos[k] for k in keys], dtype=np.int64)


def slice_metrics(
    truth: Dataset,
    pred: Dataset,
    *,
    by: str,
    metric: Metric | None = None,
    n_boot: int = 200,
    ci: float = 0.95,
    rng: Rng = None,
    iou_type: str = "bbox",
    kpt_sigmas: Sequence[float] | FloatArray | None = None,
    boundary_dilation: float = 0.02,
    progress: Callable[[int, int], None] | None = None,
) -> SliceResult:
    """A metric per value of an image column, with bootstrap confidence intervals, flagging the slices that score
    below or above what random images of the same number score.

    Args:
        truth: ground truth.
        pred: predictions on the same images table.
        by: an ``images.extra`` column (site, camera, time of day, ...), or ``"split"``, ``"width"``,
            ``"height"``.
        metric: ``(truth, pred) -> float`` on a subset of images; default COCO mAP@[.5:.95] of ``iou_type``
            (computed exactly without re-matching, see the module docstring).
        n_boot: bootstrap draws per slice, and as many random subsets of its size (0: no intervals and no
            flags). 200 gives the 2.5% and 97.5% percentiles from 5 draws each; raise it for steadier bounds
            (the default metric costs little per draw, a custom metric one call per draw).
        ci: confidence level of the intervals, in (0, 1); a slice no different from the rest is flagged with
            probability ``(1 - ci) / 2`` each way.
        rng: seed or generator for the draws (first every slice's bootstrap, then every slice's random subsets).
        iou_type: ``"bbox"``, ``"segm"``, ``"boundary"`` (Boundary IoU of the masks), ``"obb"`` (oriented boxes)
            or ``"keypoints"`` for the default metric.
        kpt_sigmas: OKS sigmas for the default metric with keypoints (default COCO's 17).
        boundary_dilation: the default metric with ``iou_type="boundary"``: the boundary's width as a fraction of
            the image diagonal (``coco_map``'s).
        progress: called as ``progress(done, total)`` after each slice's values, its bootstrap and its random
            subsets (``2 * len(values)`` steps).

    Returns:
        SliceResult with the value, intervals and significance of each slice, and the overall value.

    Raises:
        InvalidDatasetError: ``by`` is not an image column (the message lists them), or as ``coco_map``.
        ValueError: ``n_boot`` or ``ci`` out of range.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(16, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> res = slice_metrics(truth, pred, by="split", n_boot=20, rng=0)
        >>> res.values, res.value.tolist(), res.overall
        (('train', 'val'), [1.0, 1.0], 1.0)
    """
    if int(n_boot) < 0:
        raise ValueError(f"slice_metrics: n_boot must be >= 0, got {n_boot!r}")
    if not (0 < ci < 1):
        raise ValueError(f"slice_metrics: ci must be in (0, 1), got {ci!r}")
    gen = as_generator(rng)
    values, of_image = _groups(_column(truth, by))
    m = truth.n_images
    if metric is None:
        fast = _MapAccumulator(truth, pred, iou_type, kpt_sigmas, boundary_dilation)
        name = "map_50_95"

        def on(idx: IntArray) -> float:
            return fast.map(idx)
    else:
        name = getattr(metric, "__name__", type(metric).__name__)
        user = metric

        def on(idx: IntArray) -> float:
            return float(user(truth.select_images(idx), pred.select_images(idx)))

    overall = on(np.arange(m, dtype=np.int64))
    n_s = len(values)
    value = np.full(n_s, np.nan)
    samples = np.full((n_s, int(n_boot)), np.nan)
    n_images = np.bincount(of_image, minlength=n_s).astype(np.int64)
    step = progress or (lambda done, total: None)
    step(0, 2 * n_s)
    for s in range(n_s):
        members = np.flatnonzero(of_image == s)
        value[s] = on(members)
        for b in range(int(n_boot)):
            samples[s, b] = on(np.sort(members[gen.integers(0, len(members), len(members))]))
        step(s + 1, 2 * n_s)
    # the null: random subsets of each slice's size from the whole dataset (the slice's label permuted)
    null_samples = np.full((n_s, int(n_boot)), np.nan)
    for s in range(n_s):
        for b in range(int(n_boot)):
            null_samples[s, b] = on(np.sort(gen.choice(m, int(n_images[s]), replace=False)))
        step(n_s + s + 1, 2 * n_s)
    alpha = (1 - ci) / 2
    lower, upper = _percentiles(samples, alpha)
    null_lower, null_upper = _percentiles(null_samples, alpha)
    with np.errstate(invalid="ignore"):
        below = value < null_lower
        above = value > null_upper
    for arr in (n_images, value, lower, upper, null_lower, null_upper, below, above, samples, null_samples):
        arr.flags.writeable = False
    return SliceResult(by=by, metric=name, values=values, n_images=n_images, value=value, lower=lower, upper=upper,
                       null_lower=null_lower, null_upper=null_upper, below=below, above=above, samples=samples,
                       null_samples=null_samples, overall=overall, n_boot=int(n_boot), ci=float(ci))


def _percentiles(samples: FloatArray, alpha: float) -> tuple[FloatArray, FloatArray]:
    """The ``alpha`` and ``1 - alpha`` quantiles of each row's non-nan values (nan for a row without any)."""
    lower, upper = np.full(len(samples), np.nan), np.full(len(samples), np.nan)
    for s, row in enumerate(samples):
        ok = row[~np.isnan(row)]
        if len(ok):
            lower[s], upper[s] = np.quantile(ok, [alpha, 1 - alpha])
    return lower, upper


class _MapAccumulator:
    """COCO mAP@[.5:.95] of any multiset of images, from one match table (pycocotools' accumulate)."""

    def __init__(self, truth: Dataset, pred: Dataset, iou_type: str,
                 kpt_sigmas: Sequence[float] | FloatArray | None, boundary_dilation: float) -> None:
        dets = 20 if iou_type == "keypoints" else 100  # the maxDets COCO's AP reads
        table = coco_matches(truth, pred, iou_type=iou_type, max_dets=[dets], area_ranges={"all": (0.0, 1e5**2)},
                              kpt_sigmas=kpt_sigmas, boundary_dilation=boundary_dilation)
        res = table.result
        self.recall_thresholds = res.recall_thresholds
        n_k = len(res.class_labels)
        self.n_k = n_k
        k_of_label = np.full(len(truth.schema.names), -1, np.int64)
        k_of_label[res.class_labels] = np.arange(n_k, dtype=np.int64)
        by_name = {truth.schema.names[int(lab)]: k for k, lab in enumerate(res.class_labels.tolist())}
        p_k_of = np.asarray([by_name.get(n, -1) for n in pred.schema.names], dtype=np.int64)
        # truth objects counted (not ignored), per image and class
        t_ok = table.truth_status[:, 0] != MatchTable.IGNORED
        t_k = k_of_label[truth.annotations.label] if truth.n_annotations else np.zeros(0, np.int64)
        self.n_pos = np.zeros((truth.n_images, n_k), np.int64)
        np.add.at(self.n_pos, (truth.annotations.image[t_ok], t_k[t_ok]), 1)
        # evaluated predictions in accumulation order: (class, -score, image position, row)
        status = table.pred_status
        ev = np.flatnonzero(status[:, 0] != MatchTable.SKIPPED) if pred.n_annotations else np.zeros(0, np.int64)
        score = pred.annotations.score
        assert score is not None
        p_k = p_k_of[pred.annotations.label[ev]]
        img = pred.annotations.image[ev]
        pos = image_positions(truth)[img]
        order = np.lexsort((ev, pos, -score[ev], p_k))
        ev, p_k, img, sc = ev[order], p_k[order], img[order], score[ev][order]
        self.tp = (status[ev] == MatchTable.TP).T  # (T, n)
        self.fp = (status[ev] == MatchTable.FP).T
        # blocks of equal (class, score, image): a repeated image repeats its block as a whole
        n = len(ev)
        new = np.r_[True, (p_k[1:] != p_k[:-1]) | (sc[1:] != sc[:-1]) | (img[1:] != img[:-1])] if n else np.zeros(0, bool)
        self.b_start = np.flatnonzero(new)
        self.b_len = np.diff(np.r_[self.b_start, n]).astype(np.int64)
        self.b_image = img[self.b_start]
        self.b_k = p_k[self.b_start]
        self.blocks_by_image = np.argsort(self.b_image, kind="stable")  # each image's blocks: a CSR index
        self.img_ptr = np.searchsorted(self.b_image[self.blocks_by_image], np.arange(truth.n_images + 1))

    def map(self, idx: IntArray) -> float:
        """mAP@[.5:.95] of the images ``idx`` (sorted; an image listed twice counts twice). The cost grows with
        the images drawn, not with the dataset."""
        new = np.r_[True, idx[1:] != idx[:-1]] if len(idx) else np.zeros(0, bool)
        image = idx[new]
        count = np.diff(np.r_[np.flatnonzero(new), len(idx)])
        # the drawn images' blocks, back in accumulation order, each repeated as often as its image is drawn
        lo, hi = self.img_ptr[image], self.img_ptr[image + 1]
        n_b = hi - lo
        at = np.repeat(lo - (np.cumsum(n_b) - n_b), n_b) + np.arange(int(n_b.sum()), dtype=np.int64)
        drawn = self.blocks_by_image[at]
        reps = np.repeat(count, n_b)
        order = np.argsort(drawn, kind="stable")
        drawn, reps = drawn[order], reps[order]
        c_start = np.repeat(self.b_start[drawn], reps)
        c_len = np.repeat(self.b_len[drawn], reps)
        c_k = np.repeat(self.b_k[drawn], reps)
        total = int(c_len.sum())
        first = np.cumsum(c_len) - c_len
        seq = np.repeat(c_start - first, c_len) + np.arange(total, dtype=np.int64)
        seq_k = np.repeat(c_k, c_len)
        n_pos = count @ self.n_pos[image]
        counted = np.flatnonzero(n_pos > 0)  # the classes averaged: those with truth objects
        if not len(counted):
            return math.nan
        rec_thr = self.recall_thresholds
        n_t, n_k = self.tp.shape[0], self.n_k
        bounds = np.searchsorted(seq_k, np.arange(n_k + 1), side="left")  # class k: seq[bounds[k]:bounds[k + 1]]
        # pycocotools per class: cumulative TP/FP over the class's rows, precision, its envelope (running max from
        # the end) and, per recall threshold, the envelope at the first row whose recall reaches it. All classes at
        # once: cumulative sums restart at each class's first row
        tp, fp = self.tp[:, seq], self.fp[:, seq]
        tp_c = np.cumsum(tp, axis=1)
        fp_c = np.cumsum(fp, axis=1)
        base = np.concatenate([np.zeros((n_t, 1), tp_c.dtype), tp_c], axis=1)[:, bounds[:-1]]
        fbase = np.concatenate([np.zeros((n_t, 1), fp_c.dtype), fp_c], axis=1)[:, bounds[:-1]]
        tp_sum = tp_c - base[:, seq_k]
        pr = tp_sum / (fp_c - fbase[:, seq_k] + tp_sum + _EPS)
        # the first row whose recall (tp / npig, a float division monotone in tp) reaches a threshold is that of the
        # need-th TP of the class, need being the fewest TPs whose recall reaches it (0 for threshold 0)
        npig = n_pos[counted].astype(float)[:, None]
        need = np.maximum(np.ceil(rec_thr[None, :] * npig).astype(np.int64) - 1, 0)  # at most one short
        for _ in range(2):
            need += need / npig < rec_thr[None, :]
        t_of, j_of = np.nonzero(tp)  # TPs by threshold, class, row
        first = np.searchsorted(t_of * n_k + seq_k[j_of], np.arange(n_t * n_k + 1))
        first_tk = first[:-1].reshape(n_t, n_k)[:, counted]  # (T, Kc)
        n_tp = (first[1:] - first[:-1]).reshape(n_t, n_k)[:, counted]
        start, end = bounds[:-1][counted], bounds[1:][counted]
        reach = (need[None] <= n_tp[:, :, None]) & (end > start)[None, :, None]  # (T, Kc, R)
        at = np.minimum(first_tk[:, :, None] + need[None] - 1, max(len(j_of) - 1, 0))
        row = np.broadcast_to(np.where(need[None] > 0, j_of[at] if len(j_of) else 0, start[None, :, None]), at.shape)
        # the envelope at row: the largest precision from row to the class's last row (one reduceat over all)
        t_idx, k_idx, r_idx = np.nonzero(reach)
        total = pr.shape[1]
        lo = t_idx * total + row[t_idx, k_idx, r_idx]
        hi = t_idx * total + end[k_idx]
        q = np.zeros(reach.shape)
        if len(lo):
            flat = np.r_[pr.ravel(), 0.0]  # a last cell, so that every bound is an index
            q[t_idx, k_idx, r_idx] = np.maximum.reduceat(flat, np.stack([lo, hi], axis=1).ravel())[::2]
        cells = q.transpose(0, 2, 1).ravel()  # pycocotools' order: threshold, recall, class
        return float(np.mean(cells)) if len(cells) else math.nan
