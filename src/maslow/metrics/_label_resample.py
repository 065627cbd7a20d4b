"""Classification, multi-label and semantic scores of one model on any multiset of the images, from sufficient
statistics computed once (the bootstrap of ``compare_labels``).

Every score here is a function of counts that add up over images, plus (multi-label Hamming score) a mean of
per-image values. Each model keeps, per image, what it adds:

- *classification*: the (truth, prediction) pair as one code ``t * K + p``; a replicate's confusion matrix is
  ``bincount(codes, weights=w)`` (image i counted ``w[i]`` times), and likewise its top-k hits;
- *multi-label*: the per-tag indicators (truth, prediction, both) and per-image counts (wrong cells, exact set);
  the Hamming score averages the per-image values repeated ``w[i]`` times, in image order (the order of the
  resampled dataset's rows, so numpy sums the same numbers in the same order);
- *semantic*: the (K, K + 1) pixel counts of each image (column K: truth pixels the prediction leaves without a
  class) and its ignored pixels.

Per-image counts are kept as their nonzero entries (``_Counts``) and a replicate sums them with one weighted
``bincount``: linear in the entries, without BLAS (whose threads slow a small product down on a busy machine).

The counts are exact (integers far below 2**53 in float64, rounded), and the scores are computed from them by the
metric modules' own functions (``_from_confusion``, ``_prf``, ``_nanaverage``, ``scores_from_confusion``), so a
replicate equals the metric function applied to the resampled dataset (``truth.select_images(idx)``,
``pred.select_images(idx)``, ``idx`` sorted) bit for bit. One exception, by definition: the semantic classes
evaluated are the whole truth's (an ignore class stays ignored in a replicate that holds none of its pixels, where
``semantic_scores`` of that resample alone would evaluate it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.masks import paint_label_map
from maslow.core.schema import Task
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError, SchemaError
from maslow.metrics._shared import _check_same_images, _nanaverage, _prf, _require_task
from maslow.metrics.classification import PROBS_COLUMN, _from_confusion, classification_scores
from maslow.metrics.multilabel import multilabel_scores
from maslow.metrics.segmentation import (
    ConfusionMatrix,
    SegmentationResult,
    evaluated_classes,
    pred_codes,
    scores_from_confusion,
)

CLASSIFICATION_STATS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "precision_macro",
                        "recall_macro")
MULTILABEL_STATS = ("hamming_score", "hamming_loss", "subset_accuracy", "f1_micro", "f1_macro")
SEMANTIC_STATS = ("miou", "pixel_accuracy", "mean_accuracy", "mean_dice", "fw_iou")


class _Counts:
    """Per-image non-negative integer counts, (n, M), kept as their nonzero entries; ``of(w)`` is the (M,) sum with
    image i counted ``w[i]`` times, exact (integers far below 2**53 in float64, rounded)."""

    def __init__(self, rows: IntArray, cols: IntArray, values: Any, width: int) -> None:
        self._rows, self._cols, self._width = rows, cols, width
        self._values = np.asarray(values, np.float64)

    @classmethod
    def dense(cls, x: np.ndarray) -> _Counts:
        r, c = np.nonzero(x)
        return cls(r, c, x[r, c], x.shape[1])

    def of(self, w: IntArray) -> IntArray:
        s = np.bincount(self._cols, weights=w[self._rows] * self._values, minlength=self._width)
        out: IntArray = np.rint(s).astype(np.int64)
        return out


def _axis(truth: Dataset, pred: Dataset) -> tuple[list[str], IntArray]:
    """The class axis of a metric function (truth classes, then the prediction-only ones, by name) and the
    position of each prediction class on it."""
    names = list(truth.schema.names)
    names += [n for n in pred.schema.names if n not in truth.schema]
    pos = {n: i for i, n in enumerate(names)}
    return names, np.asarray([pos[n] for n in pred.schema.names], np.int64)


class ClassificationModel:
    """One classifier's (truth, prediction) pairs and top-k hits, scored for any image weights.

    Attributes:
        result: ``classification_scores(truth, pred, k=ks)``.
        names: the model's class axis (``result.class_names``).
        correct: (n,) bool, the prediction is the truth class.
    """

    def __init__(self, truth: Dataset, pred: Dataset, ks: tuple[int, ...], side: str) -> None:
        _require_task(pred, side, "compare_labels", Task.CLASSIFICATION)
        for name, ds in (("truth", truth), (side, pred)):
            count = np.bincount(ds.annotations.image, minlength=ds.n_images)
            bad = np.flatnonzero(count != 1)
            if bad.size:
                raise InvalidDatasetError(f"compare_labels: {name} image {bad[0]} ({ds.images.path[bad[0]]!r}) must "
                                          f"have exactly one label, got {count[bad[0]]} ({bad.size} images)")
        self.result = classification_scores(truth, pred, k=ks)
        names, remap = _axis(truth, pred)
        self.names = tuple(names)
        self._k = len(names)
        t = truth.annotations.label.astype(np.int64)  # one row per image, in image order
        p = remap[pred.annotations.label] if len(pred.annotations) else t[:0]
        self.correct: BoolArray = t == p
        self._codes = t * self._k + p
        self._n = truth.n_images
        self._ks = ks
        probs = pred.annotations.extra.get(PROBS_COLUMN)
        self._hits: _Counts | None = None
        if probs is not None and self._n:  # checked by classification_scores above
            raw = np.asarray(probs.tolist() if probs.dtype == object else probs, np.float64)
            score = np.full((len(raw), self._k), -np.inf)
            score[:, remap] = raw
            unscored = np.ones(self._k, bool)
            unscored[remap] = False
            rank = _ranks(t, score, unscored)
            self._hits = _Counts.dense(np.stack([rank < k for k in ks], axis=1))

    def evaluate(self, w: IntArray) -> Any:
        """The ``ClassificationResult`` with image i counted ``w[i]`` times."""
        wf = w.astype(np.float64)
        cm = np.rint(np.bincount(self._codes, weights=wf, minlength=self._k * self._k)).astype(np.int64)
        n = int(w.sum())
        if self._hits is None or not n:
            top = {k: math.nan for k in self._ks}
        else:
            hits = self._hits.of(w)
            top = {k: float(int(h) / n) for k, h in zip(self._ks, hits.tolist(), strict=True)}
        return _from_confusion(cm.reshape(self._k, self._k), beta=1.0, class_names=self.names, top_k=top)

    @staticmethod
    def values(r: Any, ks: Sequence[int]) -> tuple[FloatArray, FloatArray]:
        """(S,) the compared stats and (2, K) the F1 and recall per class of a ``ClassificationResult``."""
        stats = [r.accuracy, r.balanced_accuracy, r.fbeta_macro, r.fbeta_weighted, r.precision_macro,
                 r.recall_macro, *(r.top_k_accuracy[k] for k in ks)]
        return np.asarray(stats, np.float64), np.stack([r.fbeta_per_class, r.recall_per_class])


def _ranks(t: IntArray, s: FloatArray, unscored: BoolArray) -> IntArray:
    """The rank of the true class among the scores, as ``classification._top_k`` ranks it (higher score first;
    ties: the higher class id first; unscored classes below every scored one)."""
    n, n_cls = s.shape
    own = s[np.arange(n), t][:, None]
    tie = (s == own) & (np.arange(n_cls)[None, :] > t[:, None])
    if unscored.any():
        tie &= ~unscored
    rank: IntArray = (s > own).sum(axis=1) + tie.sum(axis=1)
    if unscored.any():
        low = unscored[t]
        above: IntArray = np.cumsum(unscored[::-1])[::-1] - unscored
        rank[low] = np.count_nonzero(~unscored) + above[t[low]]
    return rank


class MultilabelModel:
    """One tagger's per-image indicator rows, scored for any image weights.

    Attributes:
        result: ``multilabel_scores(truth, pred, threshold=threshold)``.
        names: the model's label axis.
        correct: (n,) bool, the image's whole tag set is predicted exactly.
    """

    def __init__(self, truth: Dataset, pred: Dataset, threshold: float, side: str) -> None:
        _require_task(pred, side, "compare_labels", Task.MULTILABEL, Task.CLASSIFICATION)
        self.result = multilabel_scores(truth, pred, threshold=threshold)
        names, remap = _axis(truth, pred)
        self.names = tuple(names)
        y_true = np.zeros((truth.n_images, len(names)), bool)  # as multilabel_scores builds them
        y_pred = np.zeros_like(y_true)
        ta, pa = truth.annotations, pred.annotations
        y_true[ta.image, ta.label] = True
        keep = np.ones(len(pa), bool)
        if pa.score is not None:
            with np.errstate(invalid="ignore"):
                keep = np.isnan(pa.score) | (pa.score >= threshold)
        y_pred[pa.image[keep], remap[pa.label[keep]]] = True
        inter = y_true & y_pred
        union = (y_true | y_pred).sum(axis=1)
        n_inter = inter.sum(axis=1)
        self._hamming = np.where(union > 0, n_inter / np.maximum(union, 1), 1.0)  # hamming_score's per-image values
        self.correct: BoolArray = (y_true == y_pred).all(axis=1)
        wrong = (y_true != y_pred).sum(axis=1)
        self._x = _Counts.dense(np.column_stack([inter, y_true, y_pred, wrong, self.correct]).astype(np.int64))
        self._l = len(names)
        self._cells = y_true.size

    def values(self, w: IntArray) -> tuple[FloatArray, FloatArray]:
        """(S,) the compared stats and (1, L) the F1 per tag with image i counted ``w[i]`` times."""
        n_lab = self._l
        n = int(w.sum())
        if not n or not n_lab:
            return np.full(len(MULTILABEL_STATS), np.nan), np.full((1, n_lab), np.nan)
        c = self._x.of(w)
        tp, ts, ps = c[:n_lab], c[n_lab:2 * n_lab], c[2 * n_lab:3 * n_lab]
        wrong, exact = int(c[3 * n_lab]), int(c[3 * n_lab + 1])
        _, _, f1 = _prf(tp, ts, ps, 1.0, math.nan)
        micro = _prf([tp.sum()], [ts.sum()], [ps.sum()], 1.0, math.nan)[2]
        cells = n * n_lab
        stats = [float(np.mean(np.repeat(self._hamming, w))), float(wrong / cells), float(exact / n),
                 float(micro[0]), _nanaverage(f1, None)]
        return np.asarray(stats, np.float64), f1[None, :]

    @staticmethod
    def values_of(r: Any) -> tuple[FloatArray, FloatArray]:
        """The same from a ``MultilabelResult``."""
        stats = [r.hamming_score, r.hamming_loss, r.subset_accuracy, r.f1_micro, r.f1_macro]
        return np.asarray(stats, np.float64), r.f1_per_class[None, :]


class SemanticModels:
    """Two segmenters' per-image pixel counts against one truth (each truth map painted once), scored for any
    image weights: ``semantic_scores``' classes, ignore rules and checks.

    Attributes:
        names: the evaluated classes.
        results: both models' ``SegmentationResult`` on the whole dataset.
    """

    def __init__(self, truth: Dataset, preds: Sequence[Dataset], sides: Sequence[str],
                 ignore_index: int | None) -> None:
        for name, ds in (("truth", truth), *zip(sides, preds, strict=True)):
            if Task.SEMANTIC_SEGMENTATION not in ds.schema.tasks:
                raise SchemaError(f"compare_labels: {name} task must be semantic_segmentation, got "
                                  f"{', '.join(t.value for t in ds.schema.tasks)}")
        for pred in preds:
            _check_same_images(truth, pred, "compare_labels")
        self.names, t_code = evaluated_classes(truth, ignore_index, "compare_labels")
        k = len(self.names)
        p_codes = [pred_codes(self.names, p) for p in preds]
        self._k = k
        self._n = truth.n_images
        width = k * (k + 1) + 1  # the (K, K + 1) counts, then the ignored pixels
        rows: list[list[IntArray]] = [[] for _ in preds]
        vals: list[list[IntArray]] = [[] for _ in preds]
        ts = truth.image_slices()
        slices = [p.image_slices() for p in preds]
        for i in range(truth.n_images):
            h, w = int(truth.images.height[i]), int(truth.images.width[i])
            tmap = paint_label_map(truth.annotations, range(ts[i], ts[i + 1]), t_code, h, w, 255, "truth", i, crowd=True)
            for m, (pred, side) in enumerate(zip(preds, sides, strict=True)):
                s = slices[m]
                pmap = paint_label_map(pred.annotations, range(s[i], s[i + 1]), p_codes[m], h, w, k, side, i, crowd=False)
                acc = ConfusionMatrix(k, ignore_index=255)
                acc._add(tmap, pmap, strict=False)
                counts, n_ign = acc._merged()
                flat = np.append(counts.reshape(-1), n_ign)
                nz = np.flatnonzero(flat)
                rows[m].append(nz)
                vals[m].append(flat[nz])
        self._x = []
        for m in range(len(preds)):
            lengths = [len(r) for r in rows[m]]
            col = np.concatenate(rows[m]) if rows[m] else np.zeros(0, np.int64)
            data = np.concatenate(vals[m]) if vals[m] else np.zeros(0, np.int64)
            self._x.append(_Counts(np.repeat(np.arange(self._n), lengths), col, data, width))
        ones = np.ones(self._n, np.int64)
        self.results: tuple[SegmentationResult, ...] = tuple(self.evaluate(m, ones) for m in range(len(preds)))

    def evaluate(self, m: int, w: IntArray) -> SegmentationResult:
        """Model ``m``'s ``SegmentationResult`` with image i counted ``w[i]`` times."""
        k = self._k
        c = self._x[m].of(w)
        counts = c[:-1].reshape(k, k + 1)
        return scores_from_confusion(counts[:, :k].copy(), class_names=self.names, n_unpredicted=counts[:, k].copy(),
                                     n_ignored=int(c[-1]), n_images=int(w.sum()))

    @staticmethod
    def values(r: SegmentationResult) -> tuple[FloatArray, FloatArray]:
        """(S,) the compared stats and (1, K) the IoU per class of a ``SegmentationResult``."""
        stats = [r.miou, r.pixel_accuracy, r.mean_accuracy, r.mean_dice, r.fw_iou]
        return np.asarray(stats, np.float64), r.iou_per_class[None, :]
