"""Two classifiers, taggers or semantic segmenters on one truth: their scores, the differences and paired bootstrap
intervals over images, and McNemar's exact test (``compare_labels``; ``compare_models`` does detection, masks and
keypoints).

Glossary (as ``maslow.metrics.compare``):

- *delta*: model B's value minus model A's. Every compared score is higher-better except ``hamming_loss``
  (``higher_better`` says which): a positive delta favours B, except for ``hamming_loss``.
- *paired bootstrap*: ``n_bootstrap`` times, draw ``n_images`` images with replacement (an image drawn twice counts
  twice) and score **both** models on that same draw; the interval is the percentile interval of the replicate
  deltas. The draws are ``compare_models``' (the same seed draws the same images).
- *replicate values*: exactly what the metric functions (``classification_scores``, ``multilabel_scores``,
  ``semantic_scores``) give on the resampled datasets (``truth.select_images(idx)``, ``pred.select_images(idx)``,
  ``idx`` sorted), bit for bit, computed from per-image counts summed with the draw's weights
  (``maslow.metrics._label_resample``; the semantic classes evaluated are the whole truth's).
- *p_not_better*: the fraction of replicates where B is not better (delta <= 0; for ``hamming_loss`` delta >= 0),
  among those where the score is defined for both.
- *significant*: the interval excludes 0.
- *McNemar's exact test* (classification accuracy; multi-label subset accuracy, the exact tag set): of the images
  exactly one model gets right, ``a_only`` are A's and ``b_only`` B's; the two-sided p-value is scipy's
  ``binomtest(b_only, a_only + b_only, 0.5)`` (1.0 when no image is discordant). It tests the same question as the
  bootstrap interval of that score without resampling: a second opinion, small when one model is right on many
  more images than the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.types import BoolArray, FloatArray, IntArray, Rng, as_generator
from maslow.errors import InvalidDatasetError, SchemaError
from maslow.metrics._label_resample import (
    CLASSIFICATION_STATS,
    MULTILABEL_STATS,
    SEMANTIC_STATS,
    ClassificationModel,
    MultilabelModel,
    SemanticModels,
)
from maslow.metrics._resample import draws, quantiles
from maslow.metrics._shared import _json_float
from maslow.metrics.classification import PROBS_COLUMN

Progress = Callable[[int, int], None]
#: per task: the per-class scores compared, in the order of ``LabelComparison.class_metrics``
CLASS_METRICS = {Task.CLASSIFICATION: ("f1", "recall"), Task.MULTILABEL: ("f1",),
                 Task.SEMANTIC_SEGMENTATION: ("iou",)}
_LOWER_BETTER = frozenset({"hamming_loss"})


@dataclass(frozen=True, eq=False)
class LabelComparison:
    """Two models on the same classification, multi-label or semantic truth (module docstring).

    Attributes:
        task: ``"classification"``, ``"multilabel"`` or ``"semantic_segmentation"``.
        stat_names: (S,) the compared scores: classification ``accuracy``, ``balanced_accuracy``, ``f1_macro``,
            ``f1_weighted``, ``precision_macro``, ``recall_macro`` and ``top_<k>_accuracy`` (for each ``k`` below
            the number of classes, when a model has probabilities); multi-label ``hamming_score``,
            ``hamming_loss``, ``subset_accuracy``, ``f1_micro``, ``f1_macro``; semantic ``miou``,
            ``pixel_accuracy``, ``mean_accuracy``, ``mean_dice``, ``fw_iou``.
        higher_better: (S,) bool, False for ``hamming_loss``.
        stats_a, stats_b, delta, lower, upper, p_not_better, significant: (S,) as ``Comparison``'s.
        better, worse: (S,) bool, the interval says B is better / worse (above or below 0, read the other way round
            for ``hamming_loss``).
        class_names: (K,) the classes: the truth's, then those only a model predicts (semantic: the evaluated
            truth classes).
        class_metrics: (M,) the per-class scores: ``("f1", "recall")``, ``("f1",)`` or ``("iou",)``.
        support_per_class: (K,) int64 truth images (classification, multi-label) or pixels (semantic) per class.
        a_per_class, b_per_class, delta_per_class, lower_per_class, upper_per_class, p_not_better_per_class,
            significant_per_class: (M, K) the same per class (nan where a model's score is undefined, e.g. a
            class neither in the truth nor in its predictions).
        samples: (n_bootstrap, S) the replicate deltas; samples_per_class: (n_bootstrap, M, K).
        mcnemar_stat: the score McNemar's test is about (``"accuracy"``, ``"subset_accuracy"``), None for
            semantic segmentation.
        mcnemar_a_only, mcnemar_b_only: images only A / only B gets right (0 without a test).
        mcnemar_p: the two-sided exact p-value (nan without a test).
        result_a, result_b: each model's ``ClassificationResult``, ``MultilabelResult`` or ``SegmentationResult``.
        n_images, n_bootstrap, confidence: the images resampled and the options used.
    """

    task: str
    stat_names: tuple[str, ...]
    higher_better: BoolArray
    stats_a: FloatArray
    stats_b: FloatArray
    delta: FloatArray
    lower: FloatArray
    upper: FloatArray
    p_not_better: FloatArray
    significant: BoolArray
    better: BoolArray
    worse: BoolArray
    class_names: tuple[str, ...]
    class_metrics: tuple[str, ...]
    support_per_class: IntArray
    a_per_class: FloatArray
    b_per_class: FloatArray
    delta_per_class: FloatArray
    lower_per_class: FloatArray
    upper_per_class: FloatArray
    p_not_better_per_class: FloatArray
    significant_per_class: BoolArray
    samples: FloatArray
    samples_per_class: FloatArray
    mcnemar_stat: str | None
    mcnemar_a_only: int
    mcnemar_b_only: int
    mcnemar_p: float
    result_a: Any
    result_b: Any
    n_images: int
    n_bootstrap: int
    confidence: float

    def _stat_rows(self) -> list[dict[str, Any]]:
        return [{"name": n, "higher_better": bool(self.higher_better[i]), "a": _json_float(self.stats_a[i]),
                 "b": _json_float(self.stats_b[i]), "delta": _json_float(self.delta[i]),
                 "lower": _json_float(self.lower[i]), "upper": _json_float(self.upper[i]),
                 "p_not_better": _json_float(self.p_not_better[i]), "significant": bool(self.significant[i]),
                 "better": bool(self.better[i]), "worse": bool(self.worse[i])}
                for i, n in enumerate(self.stat_names)]

    def _class_rows(self) -> list[dict[str, Any]]:
        return [{"metric": m, "name": n, "support": int(self.support_per_class[k]),
                 "a": _json_float(self.a_per_class[j, k]), "b": _json_float(self.b_per_class[j, k]),
                 "delta": _json_float(self.delta_per_class[j, k]), "lower": _json_float(self.lower_per_class[j, k]),
                 "upper": _json_float(self.upper_per_class[j, k]),
                 "p_not_better": _json_float(self.p_not_better_per_class[j, k]),
                 "significant": bool(self.significant_per_class[j, k])}
                for j, m in enumerate(self.class_metrics) for k, n in enumerate(self.class_names)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None): one row per score (name, higher_better, a, b, delta, lower, upper,
        p_not_better, significant, better, worse), one per class and per-class score (metric, name, support, ...), and McNemar's
        test (None for semantic segmentation); the replicate samples and the full results are left out."""
        mc = None if self.mcnemar_stat is None else {
            "stat": self.mcnemar_stat, "a_only": self.mcnemar_a_only, "b_only": self.mcnemar_b_only,
            "p_value": _json_float(self.mcnemar_p)}
        return {"task": self.task, "n_images": self.n_images, "n_bootstrap": self.n_bootstrap,
                "confidence": self.confidence, "stats": self._stat_rows(), "per_class": self._class_rows(),
                "mcnemar": mc}

    def to_pandas(self) -> Any:
        """One row per score, then per class and per-class score: kind ("stat" or the per-class score's name),
        name, support (classes), a, b, delta, lower, upper, p_not_better, significant (nan where undefined)."""
        import pandas as pd

        rows = [{"kind": "stat", **r} for r in self._stat_rows()]
        rows += [{"kind": r.pop("metric"), **r} for r in self._class_rows()]
        df = pd.DataFrame(rows, columns=["kind", "name", "support", "a", "b", "delta", "lower", "upper",
                                         "p_not_better", "significant"])
        for c in ("support", "a", "b", "delta", "lower", "upper", "p_not_better"):
            df[c] = df[c].astype(float)
        return df


def mcnemar_exact(correct_a: Any, correct_b: Any) -> tuple[int, int, float]:
    """McNemar's exact test of two models' per-sample correctness: (a_only, b_only, two-sided p-value).

    Example:
        >>> mcnemar_exact([1, 1, 1, 0, 1], [0, 0, 0, 0, 1])
        (3, 0, 0.25)
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    a_only, b_only = int(np.count_nonzero(a & ~b)), int(np.count_nonzero(~a & b))
    if not a_only + b_only:
        return a_only, b_only, 1.0
    from scipy.stats import binomtest

    return a_only, b_only, float(binomtest(b_only, a_only + b_only, 0.5).pvalue)


def _check_pair(truth: Dataset, pred: Dataset, side: str) -> None:
    if pred.n_images != truth.n_images or (
            pred.images is not truth.images and not np.array_equal(pred.images.path, truth.images.path)):
        raise InvalidDatasetError(
            f"compare_labels: {side}.images must be the images table of truth ({truth.n_images} rows), got "
            f"{pred.n_images} rows{'' if pred.n_images != truth.n_images else ' with other paths'}. Build the "
            "predictions on truth's images (truth.replace(annotations=...), or read them with like=truth)")


def _on(axis: Sequence[str], names: Sequence[str], per: FloatArray) -> FloatArray:
    """(M, len(axis)) the per-class values of a model's own class axis ``names`` placed on ``axis`` (nan where
    the model has no such class)."""
    out = np.full((per.shape[0], len(axis)), np.nan)
    pos = {n: i for i, n in enumerate(axis)}
    out[:, [pos[n] for n in names]] = per
    return out


def compare_labels(
    truth: Dataset,
    pred_a: Dataset,
    pred_b: Dataset,
    *,
    n_bootstrap: int = 1000,
    seed: Rng = 0,
    confidence: float = 0.95,
    k: Sequence[int] | None = None,
    threshold: float | None = None,
    ignore_index: int | None = None,
    progress: Progress | None = None,
) -> LabelComparison:
    """Compare model B with model A on a classification, multi-label or semantic segmentation truth (its task
    picks the scores): both models' scores, deltas, paired bootstrap intervals and McNemar's exact test.

    Args:
        truth: ground truth; classification: one label per image; multi-label: tags; semantic: masks.
        pred_a: model A's predictions (the baseline), on truth's images table.
        pred_b: model B's predictions, likewise.
        n_bootstrap: paired bootstrap replicates (0: no intervals).
        seed: seed or generator of the draws (``compare_models``' draws).
        confidence: level of the intervals, in (0, 1).
        k: classification only: the top-k accuracies (default ``(1, 5)``; reported for k below the number of
            truth classes when a model has probabilities, ``annotations.extra["probs"]``).
        threshold: multi-label only: a predicted tag counts when its score is ``>=`` it (default 0.5).
        ignore_index: semantic only: label-map value of a truth class to ignore, as ``semantic_scores``.
        progress: called as ``progress(done, n_bootstrap)`` after each replicate.

    Returns:
        LabelComparison.

    Raises:
        SchemaError: a truth of another task, a prediction of the wrong task, an ``ignore_index`` with no class.
        InvalidDatasetError: a prediction on other images, a classification image without exactly one label, or
            as the metric functions.
        ValueError: an option out of range or given for another task.

    Example:
        >>> from maslow.core.schema import LabelSchema
        >>> from maslow.core.tables import Annotations, Images
        >>> images = Images(path=np.array([f"{i}.jpg" for i in range(6)], object), width=[8] * 6, height=[8] * 6)
        >>> truth = Dataset(LabelSchema.from_names(["cat", "dog"], task="classification"), images,
        ...                 Annotations(image=np.arange(6), label=[0, 0, 0, 1, 1, 1]))
        >>> a = truth.replace(annotations=Annotations(image=np.arange(6), label=[0, 1, 1, 1, 0, 1]))
        >>> c = compare_labels(truth, a, truth, n_bootstrap=50)
        >>> float(c.stats_a[0]), float(c.delta[0]), c.mcnemar_a_only, c.mcnemar_b_only, c.mcnemar_p
        (0.5, 0.5, 0, 3, 0.25)
    """
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 0:
        raise ValueError(f"compare_labels: n_bootstrap must be an integer >= 0, got {n_bootstrap!r}")
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise ValueError(f"compare_labels: confidence must be in (0, 1) (a fraction such as 0.95), got {confidence!r}")
    task = truth.schema.task
    if task not in CLASS_METRICS:
        raise SchemaError(f"compare_labels: truth task must be classification, multilabel or semantic_segmentation, "
                          f"got {task.value} (compare detections, instance masks and keypoints with compare_models)")
    for name, given, applies in (("k", k, Task.CLASSIFICATION), ("threshold", threshold, Task.MULTILABEL),
                                 ("ignore_index", ignore_index, Task.SEMANTIC_SEGMENTATION)):
        if given is not None and task != applies:
            raise ValueError(f"compare_labels: {name} applies to a {applies.value} truth, got a {task.value} truth")
    _check_pair(truth, pred_a, "pred_a")
    _check_pair(truth, pred_b, "pred_b")
    n = truth.n_images
    mc_stat: str | None = None
    correct: tuple[BoolArray, BoolArray] | None = None
    results: list[Any]
    score: Callable[[int, IntArray], tuple[FloatArray, FloatArray]]
    if task == Task.CLASSIFICATION:
        ks = tuple(int(v) for v in ((1, 5) if k is None else k))
        cls = (ClassificationModel(truth, pred_a, ks, "pred_a"), ClassificationModel(truth, pred_b, ks, "pred_b"))
        has_probs = any(PROBS_COLUMN in p.annotations.extra for p in (pred_a, pred_b))
        shown = [v for v in ks if has_probs and v < len(truth.schema.classes)]
        stat_names = (*CLASSIFICATION_STATS, *(f"top_{v}_accuracy" for v in shown))
        names_of = [m.names for m in cls]
        results = [m.result for m in cls]
        full = [ClassificationModel.values(r, shown) for r in results]

        def score(m: int, w: IntArray) -> tuple[FloatArray, FloatArray]:
            return ClassificationModel.values(cls[m].evaluate(w), shown)

        support_of = [r.support_per_class for r in results]
        mc_stat, correct = "accuracy", (cls[0].correct, cls[1].correct)
    elif task == Task.MULTILABEL:
        thr = 0.5 if threshold is None else float(threshold)
        tag = (MultilabelModel(truth, pred_a, thr, "pred_a"), MultilabelModel(truth, pred_b, thr, "pred_b"))
        stat_names = MULTILABEL_STATS
        names_of = [m.names for m in tag]
        results = [m.result for m in tag]
        full = [MultilabelModel.values_of(r) for r in results]

        def score(m: int, w: IntArray) -> tuple[FloatArray, FloatArray]:
            return tag[m].values(w)

        support_of = [r.support_per_class for r in results]
        mc_stat, correct = "subset_accuracy", (tag[0].correct, tag[1].correct)
    else:
        seg = SemanticModels(truth, (pred_a, pred_b), ("pred_a", "pred_b"), ignore_index)
        stat_names = SEMANTIC_STATS
        names_of = [seg.names, seg.names]
        results = list(seg.results)
        full = [SemanticModels.values(r) for r in results]

        def score(m: int, w: IntArray) -> tuple[FloatArray, FloatArray]:
            return SemanticModels.values(seg.evaluate(m, w))

        support_of = [r.confusion_matrix.sum(axis=1) + r.n_unpredicted_per_class for r in results]
    axis = list(names_of[0]) + [c for c in names_of[1] if c not in names_of[0]]
    support = np.zeros(len(axis), np.int64)
    support[:len(support_of[0])] = support_of[0]
    higher = np.asarray([s not in _LOWER_BETTER for s in stat_names], bool)
    stats_a, stats_b = (np.asarray(f[0], np.float64) for f in full)
    per_a, per_b = (_on(axis, names_of[m], full[m][1]) for m in (0, 1))
    n_b = int(n_bootstrap)
    n_metrics = per_a.shape[0]
    samples = np.full((n_b, len(stat_names)), np.nan)
    samples_k = np.full((n_b, n_metrics, len(axis)), np.nan)
    if progress is not None:
        progress(0, n_b)
    if n:
        for b, w in enumerate(draws(n, n_b, as_generator(seed))):  # both models on the same draw
            (sa, ka), (sb, kb) = score(0, w), score(1, w)
            samples[b] = sb - sa
            samples_k[b] = _on(axis, names_of[1], kb) - _on(axis, names_of[0], ka)
            if progress is not None:
                progress(b + 1, n_b)
    conf = float(confidence)
    lower, upper, p_le = quantiles(samples, conf)
    p_ge = quantiles(-samples, conf)[2] if (~higher).any() else p_le
    flat = samples_k.reshape(n_b, n_metrics * len(axis))
    lower_k, upper_k, p_k = (a.reshape(n_metrics, len(axis)) for a in quantiles(flat, conf))
    a_only, b_only, p_mc = (0, 0, math.nan) if correct is None else mcnemar_exact(*correct)
    with np.errstate(invalid="ignore"):
        above, below = lower > 0, upper < 0
    out: dict[str, Any] = {
        "delta": stats_b - stats_a, "lower": lower, "upper": upper, "p_not_better": np.where(higher, p_le, p_ge),
        "significant": above | below, "better": np.where(higher, above, below), "worse": np.where(higher, below, above), "delta_per_class": per_b - per_a, "lower_per_class": lower_k,
        "upper_per_class": upper_k, "p_not_better_per_class": p_k,
        "significant_per_class": _excludes_zero(lower_k, upper_k)}
    for arr in (higher, stats_a, stats_b, support, per_a, per_b, samples, samples_k, *out.values()):
        arr.flags.writeable = False
    return LabelComparison(
        task=task.value, stat_names=tuple(stat_names), higher_better=higher, stats_a=stats_a, stats_b=stats_b,
        class_names=tuple(axis), class_metrics=CLASS_METRICS[task], support_per_class=support, a_per_class=per_a,
        b_per_class=per_b, samples=samples, samples_per_class=samples_k, mcnemar_stat=mc_stat,
        mcnemar_a_only=a_only, mcnemar_b_only=b_only, mcnemar_p=p_mc, result_a=results[0], result_b=results[1],
        n_images=n, n_bootstrap=n_b, confidence=conf, **out)



def _excludes_zero(lower: FloatArray, upper: FloatArray) -> BoolArray:
    with np.errstate(invalid="ignore"):
        out: BoolArray = (lower > 0) | (upper < 0)
    return out
