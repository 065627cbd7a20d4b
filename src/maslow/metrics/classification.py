"""Single-label classification scores: accuracy, balanced accuracy, precision, recall, F-beta, top-k accuracy.

Glossary:

- *labels*: ``y_true``, ``y_pred`` are (n,) integer class ids ``0..K-1``; ``y_score`` is (n, K) per-class scores
  (probabilities or logits), used only for top-k accuracy.
- *confusion matrix* ``C`` (K, K): ``C[i, j]`` counts samples of true class i predicted as j (rows truth, as
  scikit-learn). ``support`` = row sums, ``tp`` = diagonal, predicted count = column sums.
- *per class*: precision ``tp / predicted``, recall ``tp / support``, F-beta
  ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)`` (``b = inf``: recall, ``b = 0``: precision).
- *zero division*: a ratio whose denominator is 0 is ``nan`` (undefined), never 0 or 1. This is scikit-learn's
  ``zero_division=np.nan``, and the averages follow it: ``macro`` is the mean of the defined per-class values
  (so a class absent from both truth and prediction never counts, exactly as scikit-learn's default
  ``labels=None``, which only sees the labels present), ``weighted`` the support-weighted mean of the defined
  values (scikit-learn's ``_nanaverage``: when every remaining weight is 0, the plain mean), ``micro`` pools
  the counts (= accuracy when every sample has a prediction). Everything is ``nan`` with no sample.
- *balanced accuracy*: mean recall over the classes present in the truth (scikit-learn's
  ``balanced_accuracy_score``).
- *top-k accuracy*: the true class is among the k highest scores. Ties are broken as scikit-learn's
  ``top_k_accuracy_score`` does (a stable sort, reversed: among equal scores the higher class id ranks first);
  ``k >= K`` gives 1.

Datasets: a classification Dataset has one annotation (no geometry) per image; ``annotations.label`` is the class.
A predictions Dataset carries its class in ``annotations.label`` and, optionally, per-class probabilities in
``annotations.extra["probs"]``: an (n, K_pred) float array, column j the score of ``pred.schema.names[j]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.types import FloatArray, IntArray
from maslow.errors import InvalidDatasetError, SchemaError

#: the ``annotations.extra`` column of per-class prediction scores, (n, K_pred) float
PROBS_COLUMN = "probs"
AVERAGES = ("micro", "macro", "weighted")


# -- helpers shared by the metrics modules ----------------------------------------------------------------------


def _divide(num: Any, den: Any) -> FloatArray:
    """num / den elementwise as float64, nan where den == 0."""
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _nanmean(a: FloatArray) -> float:
    """``np.nanmean`` (nan, without a warning, when every value is nan): the sum over every value, nan read as 0,
    divided by the count, so the result is bit for bit scikit-learn's and mmseg's (the mean of the defined values
    alone can round differently)."""
    return float(np.nanmean(a)) if (~np.isnan(a)).any() else math.nan


def _nanaverage(a: FloatArray, weights: FloatArray | None) -> float:
    """scikit-learn's ``_nanaverage``: the weighted mean of the defined values (plain mean if weights sum to 0)."""
    ok = ~np.isnan(a)
    if not ok.any():
        return math.nan
    if weights is None:
        return _nanmean(a)
    w = np.asarray(weights, np.float64)[ok]
    if w.sum() == 0:
        return float(np.mean(a[ok]))
    return float(np.average(a[ok], weights=w))


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _check_same_images(truth: Dataset, pred: Dataset, where: str) -> None:
    if pred.n_images != truth.n_images:
        raise InvalidDatasetError(
            f"{where}: pred.images must be the images table of truth ({truth.n_images} rows), got "
            f"{pred.n_images} rows. Build predictions with like=truth or truth.replace(annotations=...)")
    if pred.images is not truth.images and not np.array_equal(pred.images.path, truth.images.path):
        i = int(np.flatnonzero(pred.images.path != truth.images.path)[0])
        raise InvalidDatasetError(
            f"{where}: pred.images.path row {i} must equal truth's ({truth.images.path[i]!r}), got "
            f"{pred.images.path[i]!r}")


def _require_task(ds: Dataset, side: str, where: str, *tasks: Task) -> None:
    if not any(t in ds.schema.tasks for t in tasks):
        raise SchemaError(f"{where}: {side} task must be {' or '.join(t.value for t in tasks)}, got "
                          f"{', '.join(t.value for t in ds.schema.tasks)}")


def _labels(y: Any, name: str) -> IntArray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name}: must be a 1-D array of class ids, got shape {a.shape}")
    if a.size == 0:
        return np.zeros(0, np.int64)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name}: must hold integer class ids, got dtype {a.dtype}")
    if a.min() < 0:
        raise ValueError(f"{name}: class ids must be >= 0, got {a.min()} at row {int(np.argmin(a))}")
    return a.astype(np.int64)


def _pair(y_true: Any, y_pred: Any, n_classes: int | None) -> tuple[IntArray, IntArray, int]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_pred: length must equal y_true's ({len(t)}), got {len(p)}")
    top = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    k = top if n_classes is None else int(n_classes)
    if top > k:
        raise ValueError(f"y_true/y_pred: class ids must be < n_classes ({k}), got {top - 1}")
    return t, p, k


# -- array level ------------------------------------------------------------------------------------------------


def confusion_matrix(y_true: Any, y_pred: Any, *, n_classes: int | None = None) -> IntArray:
    """(K, K) int64 counts, rows truth, columns prediction; K = n_classes or the largest id + 1.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 1, 0]).tolist()
        [[1, 0], [1, 1]]
    """
    t, p, k = _pair(y_true, y_pred, n_classes)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def accuracy_score(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples predicted right; nan with no sample.

    Example:
        >>> accuracy_score([0, 1, 2, 2], [0, 2, 2, 2])
        0.75
    """
    t, p, _ = _pair(y_true, y_pred, None)
    return float(np.mean(t == p)) if len(t) else math.nan


def balanced_accuracy_score(y_true: Any, y_pred: Any) -> float:
    """Mean recall over the classes present in ``y_true``; nan with no sample.

    Example:
        >>> balanced_accuracy_score([0, 0, 0, 1], [0, 0, 1, 1])
        0.8333333333333333
    """
    return _from_confusion(confusion_matrix(y_true, y_pred), beta=1.0).balanced_accuracy


def _check_average(average: str) -> None:
    if average not in AVERAGES:
        raise ValueError(f"average: must be one of {', '.join(AVERAGES)}, got {average!r}")


def precision_score(y_true: Any, y_pred: Any, *, average: str = "macro", n_classes: int | None = None) -> float:
    """Precision averaged over classes (``micro``, ``macro`` or ``weighted``; see the module docstring).

    Example:
        >>> round(precision_score([0, 1, 2, 2], [0, 2, 2, 2], average="macro"), 6)
        0.833333
    """
    _check_average(average)
    r = _from_confusion(confusion_matrix(y_true, y_pred, n_classes=n_classes), beta=1.0)
    return float(getattr(r, f"precision_{average}"))


def recall_score(y_true: Any, y_pred: Any, *, average: str = "macro", n_classes: int | None = None) -> float:
    """Recall averaged over classes (``micro``, ``macro`` or ``weighted``).

    Example:
        >>> recall_score([0, 1, 2, 2], [0, 2, 2, 2], average="macro")
        0.6666666666666666
    """
    _check_average(average)
    r = _from_confusion(confusion_matrix(y_true, y_pred, n_classes=n_classes), beta=1.0)
    return float(getattr(r, f"recall_{average}"))


def fbeta_score(y_true: Any, y_pred: Any, *, beta: float = 1.0, average: str = "macro",
                n_classes: int | None = None) -> float:
    """F-beta averaged over classes (``micro``, ``macro`` or ``weighted``).

    Example:
        >>> round(fbeta_score([0, 1, 2, 2], [0, 2, 2, 2], beta=2.0, average="weighted"), 6)
        0.704545
    """
    _check_average(average)
    r = _from_confusion(confusion_matrix(y_true, y_pred, n_classes=n_classes), beta=beta)
    return float(getattr(r, f"fbeta_{average}"))


def f1_score(y_true: Any, y_pred: Any, *, average: str = "macro", n_classes: int | None = None) -> float:
    """F1 averaged over classes: ``fbeta_score`` with ``beta=1``.

    Example:
        >>> round(f1_score([0, 1, 2, 2], [0, 2, 2, 2]), 6)
        0.6
    """
    return fbeta_score(y_true, y_pred, beta=1.0, average=average, n_classes=n_classes)


def top_k_accuracy_score(y_true: Any, y_score: Any, *, k: int = 5) -> float:
    """Fraction of samples whose true class is among the k highest of ``y_score`` (n, K); nan with no sample.

    Example:
        >>> top_k_accuracy_score([0, 1, 2], [[.5, .3, .2], [.6, .3, .1], [.1, .2, .7]], k=2)
        1.0
    """
    t = _labels(y_true, "y_true")
    s = _scores(y_score, len(t))
    return _top_k(t, s, (int(k),))[int(k)]


def _scores(y_score: Any, n: int) -> FloatArray:
    s = np.asarray(y_score, np.float64)
    if s.ndim != 2 or s.shape[0] != n:
        raise ValueError(f"y_score: shape must be ({n}, K), got {s.shape}")
    if np.isnan(s).any():
        r = int(np.flatnonzero(np.isnan(s).any(axis=1))[0])
        raise ValueError(f"y_score row {r}: scores must be numbers, got nan")
    return s


def _top_k(t: IntArray, s: FloatArray, ks: Sequence[int], *,
           unscored: np.ndarray | None = None) -> dict[int, float]:
    """Top-k accuracy for each k; ``unscored`` (K,) bool marks classes with no score column, which rank below
    every scored class (among themselves by the same tie rule), whatever the scores (-inf included)."""
    n, n_cls = s.shape
    if len(t) and t.max() >= n_cls:
        raise ValueError(f"y_true: class ids must be < {n_cls} (columns of y_score), got {t.max()}")
    for k in ks:
        if k < 1:
            raise ValueError(f"k: must be >= 1, got {k}")
    if not n:
        return {k: math.nan for k in ks}
    own = s[np.arange(n), t][:, None]
    # rank of the true class in scikit-learn's order: higher score first, ties -> higher class id first
    tie = (s == own) & (np.arange(n_cls)[None, :] > t[:, None])
    if unscored is not None and unscored.any():
        tie &= ~unscored  # an unscored class never ranks above a scored one, even one scored -inf
    rank = (s > own).sum(axis=1) + tie.sum(axis=1)
    if unscored is not None and unscored.any():
        low = unscored[t]
        above = np.cumsum(unscored[::-1])[::-1] - unscored  # unscored classes with a higher id
        rank[low] = np.count_nonzero(~unscored) + above[t[low]]
    return {k: float(np.mean(rank < k)) for k in ks}


# -- result -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ClassificationResult:
    """Single-label classification scores (definitions in the module docstring).

    Attributes:
        class_names: (K,) names, the order of every per-class array and of the confusion matrix.
        confusion_matrix: (K, K) int64, rows truth, columns prediction.
        support_per_class: (K,) int64 true samples of each class.
        precision_per_class, recall_per_class, fbeta_per_class: (K,) float64, nan where undefined.
        beta: the F-beta weight.
        accuracy, balanced_accuracy: floats.
        precision_micro, precision_macro, precision_weighted, recall_micro, recall_macro, recall_weighted,
        fbeta_micro, fbeta_macro, fbeta_weighted: the averages.
        top_k_accuracy: k -> top-k accuracy (nan for every k when no scores were given).
        n_samples: samples evaluated.
    """

    class_names: tuple[str, ...]
    confusion_matrix: IntArray
    support_per_class: IntArray
    precision_per_class: FloatArray
    recall_per_class: FloatArray
    fbeta_per_class: FloatArray
    beta: float
    accuracy: float
    balanced_accuracy: float
    precision_micro: float
    precision_macro: float
    precision_weighted: float
    recall_micro: float
    recall_macro: float
    recall_weighted: float
    fbeta_micro: float
    fbeta_macro: float
    fbeta_weighted: float
    top_k_accuracy: Mapping[int, float]
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None)."""
        out: dict[str, Any] = {"n_samples": self.n_samples, "beta": self.beta}
        for name in ("accuracy", "balanced_accuracy"):
            out[name] = _json_float(getattr(self, name))
        for m in ("precision", "recall", "fbeta"):
            for avg in AVERAGES:
                out[f"{m}_{avg}"] = _json_float(getattr(self, f"{m}_{avg}"))
        out["top_k_accuracy"] = {str(k): _json_float(v) for k, v in self.top_k_accuracy.items()}
        out["class_names"] = list(self.class_names)
        out["per_class"] = {m: [_json_float(v) for v in getattr(self, f"{m}_per_class").tolist()]
                            for m in ("precision", "recall", "fbeta")}
        out["support_per_class"] = self.support_per_class.tolist()
        out["confusion_matrix"] = self.confusion_matrix.tolist()
        return out

    def to_pandas(self) -> Any:
        """Per-class table: precision, recall, F-beta and support."""
        import pandas as pd

        return pd.DataFrame({"class": list(self.class_names), "precision": self.precision_per_class,
                             "recall": self.recall_per_class, "fbeta": self.fbeta_per_class,
                             "support": self.support_per_class})


def _from_confusion(cm: IntArray, *, beta: float, class_names: Sequence[str] | None = None,
                    top_k: Mapping[int, float] | None = None) -> ClassificationResult:
    if beta < 0 or math.isnan(beta):
        raise ValueError(f"beta: must be >= 0, got {beta}")
    k = cm.shape[0]
    tp = np.diagonal(cm).astype(np.float64)
    true_sum = cm.sum(axis=1)
    pred_sum = cm.sum(axis=0)
    n = int(cm.sum())

    def prf(tp_: FloatArray, ts: Any, ps: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        p, r = _divide(tp_, ps), _divide(tp_, ts)
        if math.isinf(beta):
            f = r.copy()
        elif beta == 0:
            f = p.copy()
        else:
            b2 = beta**2
            f = _divide((1 + b2) * tp_, b2 * np.asarray(ts, np.float64) + np.asarray(ps, np.float64))
        return p, r, f

    p, r, f = prf(tp, true_sum, pred_sum)
    pm, rm, fm = (float(v[0]) for v in prf(np.array([tp.sum()]), np.array([true_sum.sum()]),
                                           np.array([pred_sum.sum()])))
    w = true_sum.astype(np.float64)
    present = true_sum > 0
    for a in (cm, true_sum, p, r, f):
        a.flags.writeable = False
    return ClassificationResult(
        class_names=tuple(str(i) for i in range(k)) if class_names is None else tuple(class_names),
        confusion_matrix=cm, support_per_class=true_sum, precision_per_class=p, recall_per_class=r,
        fbeta_per_class=f, beta=float(beta), accuracy=float(tp.sum() / n) if n else math.nan,
        balanced_accuracy=float(np.mean(r[present])) if present.any() else math.nan,
        precision_micro=pm, precision_macro=_nanaverage(p, None), precision_weighted=_nanaverage(p, w),
        recall_micro=rm, recall_macro=_nanaverage(r, None), recall_weighted=_nanaverage(r, w),
        fbeta_micro=fm, fbeta_macro=_nanaverage(f, None), fbeta_weighted=_nanaverage(f, w),
        top_k_accuracy=dict(top_k or {}), n_samples=n,
    )


def classification_scores_from_labels(y_true: Any, y_pred: Any, *, y_score: Any = None, n_classes: int | None = None,
                                      beta: float = 1.0, k: Sequence[int] = (1, 5),
                                      class_names: Sequence[str] | None = None) -> ClassificationResult:
    """Every classification score of label arrays (the array form of ``classification_scores``).

    Args:
        y_true, y_pred: (n,) class ids.
        y_score: optional (n, K) per-class scores for top-k accuracy (nan for every k without them).
        n_classes: K; default the largest id + 1 (or ``y_score``'s width).
        beta: F-beta weight.
        k: the top-k values reported.
        class_names: K names for the result.

    Example:
        >>> r = classification_scores_from_labels([0, 1, 2, 2], [0, 2, 2, 2])
        >>> r.accuracy, r.recall_per_class.tolist()
        (0.75, [1.0, 0.0, 1.0])
    """
    t = _labels(y_true, "y_true")
    s = None if y_score is None else _scores(y_score, len(t))
    if n_classes is None and s is not None:
        n_classes = s.shape[1]
    cm = confusion_matrix(t, y_pred, n_classes=n_classes)
    if class_names is not None and len(class_names) != cm.shape[0]:
        raise ValueError(f"class_names: must name {cm.shape[0]} classes, got {len(class_names)}")
    ks = tuple(int(v) for v in k)
    top = _top_k(t, s, ks) if s is not None else {v: math.nan for v in ks}
    return _from_confusion(cm, beta=beta, class_names=class_names, top_k=top)


# -- Dataset level ----------------------------------------------------------------------------------------------


def _one_label_per_image(ds: Dataset, side: str) -> IntArray:
    count = np.bincount(ds.annotations.image, minlength=ds.n_images)
    bad = np.flatnonzero(count != 1)
    if bad.size:
        raise InvalidDatasetError(f"classification_scores: {side} image {bad[0]} must have exactly one label, got "
                                  f"{count[bad[0]]} ({bad.size} images)")
    return ds.annotations.label


def classification_scores(truth: Dataset, pred: Dataset, *, beta: float = 1.0,
                          k: Sequence[int] = (1, 5)) -> ClassificationResult:
    """Classification scores of predicted labels against truth labels, one label per image.

    Classes are matched by name; the class axis is the truth schema's classes, then the prediction-only ones.
    Top-k accuracy reads ``pred.annotations.extra["probs"]`` ((n, K_pred) floats, column j for
    ``pred.schema.names[j]``); a truth class the prediction schema lacks ranks below every predicted class.

    Args:
        truth: classification dataset (task ``classification``), exactly one annotation per image.
        pred: predictions on the same images table, exactly one annotation per image.
        beta: F-beta weight.
        k: the top-k values reported.

    Returns:
        ClassificationResult.

    Raises:
        SchemaError: a dataset's task is not classification.
        InvalidDatasetError: other images, an image with no label or several, a malformed ``probs`` column.

    Example:
        >>> from maslow.core.schema import LabelSchema
        >>> from maslow.core.tables import Annotations, Images
        >>> images = Images(path=np.array(["a", "b", "c"], object), width=[1, 1, 1], height=[1, 1, 1])
        >>> schema = LabelSchema.from_names(["cat", "dog"], task="classification")
        >>> truth = Dataset(schema, images, Annotations(image=[0, 1, 2], label=[0, 1, 1]))
        >>> pred = truth.replace(annotations=Annotations(image=[0, 1, 2], label=[0, 0, 1]))
        >>> classification_scores(truth, pred).accuracy
        0.6666666666666666
    """
    for side, ds in (("truth", truth), ("pred", pred)):
        _require_task(ds, side, "classification_scores", Task.CLASSIFICATION)
    _check_same_images(truth, pred, "classification_scores")
    t = _one_label_per_image(truth, "truth")
    p_raw = _one_label_per_image(pred, "pred")
    names = list(truth.schema.names)
    names += [n for n in pred.schema.names if n not in truth.schema]
    pos = {n: i for i, n in enumerate(names)}
    remap = np.asarray([pos[n] for n in pred.schema.names], np.int64)
    p = remap[p_raw] if len(p_raw) else p_raw
    ks = tuple(int(v) for v in k)
    probs = pred.annotations.extra.get(PROBS_COLUMN)
    top: dict[int, float] = {v: math.nan for v in ks}
    if probs is not None:
        try:
            # an object column of per-row lists (JSON-like readers) is read as operating_point reads it
            raw = np.asarray(probs.tolist() if probs.dtype == object else probs, np.float64)
        except (TypeError, ValueError):
            raise InvalidDatasetError(f"pred.annotations.extra[{PROBS_COLUMN!r}]: must be an (n, K) float array, "
                                      f"got dtype {np.asarray(probs).dtype}") from None
        if raw.ndim != 2 or raw.shape[1] != len(pred.schema.names):
            raise InvalidDatasetError(f"pred.annotations.extra[{PROBS_COLUMN!r}]: shape must be "
                                      f"({pred.n_annotations}, {len(pred.schema.names)}), got {raw.shape}")
        score = np.full((len(raw), len(names)), -np.inf)
        score[:, remap] = raw
        unscored = np.ones(len(names), bool)
        unscored[remap] = False
        top = _top_k(t, _scores(score, len(t)), ks, unscored=unscored)
    cm = confusion_matrix(t, p, n_classes=len(names))
    return _from_confusion(cm, beta=beta, class_names=names, top_k=top)
