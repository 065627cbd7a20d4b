"""Single-label classification scores: accuracy, balanced accuracy, precision, recall, F-beta, top-k accuracy.

Glossary:

- *labels*: ``y_true``, ``y_pred`` are (n,) integer class ids ``0..K-1``; ``y_score`` is (n, K) per-class scores
  (probabilities or logits), used only for top-k accuracy.
- *confusion matrix* ``C`` (K, K): ``C[i, j]`` counts samples of true class i predicted as j (rows truth, as
  scikit-learn). ``support`` = row sums, ``tp`` = diagonal, predicted count = column sums.
- *per class*: precision ``tp / predicted``, recall ``tp / support``, F-beta
  ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)`` (``b = inf``: recall, ``b = 0``: precision).
- *zero division*: a ratio whose denominator is 0 is ``nan`` (undefined) by default, scikit-learn's
  ``zero_division=np.nan``, and the averages follow it: ``macro`` is the mean of the defined per-class values,
  ``weighted`` the support-weighted mean of the defined values (scikit-learn's ``_nanaverage``: when every
  remaining weight is 0, the plain mean), ``micro`` pools the counts (= accuracy when every sample has a
  prediction). ``zero_division=0.0`` (scikit-learn's default ``"warn"``, without the warning) or ``1.0`` gives 0/0
  that value, and it then counts in the averages. Without ``labels=``, the averages cover the classes present in
  truth or prediction (scikit-learn's ``labels=None``), so a class absent from both never counts. Everything is
  ``nan`` with no sample.
- *options* as scikit-learn's (``precision_recall_fscore_support``): ``labels``, ``average=None`` (per class) or
  ``"binary"`` with ``pos_label``, ``sample_weight``; the defaults stay maslow's (``average="macro"``, top-k ``k=5``).
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
from maslow.errors import InvalidDatasetError
from maslow.metrics._shared import (
    _check_same_images,
    _check_zero_division,
    _class_ids,
    _counts,
    _divide,
    _json_float,
    _labels,
    _nanaverage,
    _pair,
    _prf,
    _require_task,
    _sample_weight,
)

#: the ``annotations.extra`` column of per-class prediction scores, (n, K_pred) float
PROBS_COLUMN = "probs"
AVERAGES = ("micro", "macro", "weighted")


# -- array level ------------------------------------------------------------------------------------------------


def confusion_matrix(y_true: Any, y_pred: Any, *, n_classes: int | None = None, labels: Any = None,
                     sample_weight: Any = None) -> np.ndarray:
    """(K, K) counts, rows truth, columns prediction; K = n_classes or the largest id + 1.

    ``labels`` (L class ids): an (L, L) matrix in that order, samples of other classes left out (scikit-learn's
    ``labels=``). ``sample_weight`` (n,): float64 sums of the weights instead of int64 counts.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 1, 0]).tolist()
        [[1, 0], [1, 1]]
    """
    t, p, k = _pair(y_true, y_pred, n_classes)
    w = _sample_weight(sample_weight, len(t))
    if labels is not None:
        sel = _class_ids(labels, n_classes)
        pos = np.full(max(k, int(sel.max()) + 1), -1, np.int64)
        pos[sel] = np.arange(len(sel))
        t, p, k = pos[t], pos[p], len(sel)
        keep = (t >= 0) & (p >= 0)
        if not keep.all():
            t, p, w = t[keep], p[keep], None if w is None else w[keep]
    return np.bincount(t * k + p, weights=w, minlength=k * k).reshape(k, k)


def accuracy_score(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
    """Fraction of samples predicted right (``sample_weight``: the weighted fraction); nan with no sample.

    Example:
        >>> accuracy_score([0, 1, 2, 2], [0, 2, 2, 2])
        0.75
    """
    t, p, _ = _pair(y_true, y_pred, None)
    w = _sample_weight(sample_weight, len(t))
    return float(np.average(t == p, weights=w)) if len(t) else math.nan


def balanced_accuracy_score(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
    """Mean recall over the classes present in ``y_true`` (weighted recall with ``sample_weight``); nan with no
    sample.

    Example:
        >>> balanced_accuracy_score([0, 0, 0, 1], [0, 0, 1, 1])
        0.8333333333333333
    """
    if sample_weight is None:
        return _from_confusion(confusion_matrix(y_true, y_pred), beta=1.0).balanced_accuracy
    t, p, k = _pair(y_true, y_pred, None)
    present = np.flatnonzero(np.bincount(t, minlength=k) + np.bincount(p, minlength=k))
    # scikit-learn's order of float operations: a confusion matrix over the present classes, then its row sums
    cm = confusion_matrix(t, p, labels=present, sample_weight=sample_weight) if len(t) else np.zeros((0, 0))
    recall = _divide(np.diagonal(cm), cm.sum(axis=1))
    recall = recall[~np.isnan(recall)]
    return float(np.mean(recall)) if recall.size else math.nan


def precision_recall_fscore_support(
        y_true: Any, y_pred: Any, *, beta: float = 1.0, average: str | None = "macro", labels: Any = None,
        pos_label: int | None = None, zero_division: float = math.nan, sample_weight: Any = None,
        n_classes: int | None = None) -> tuple[Any, Any, Any, Any]:
    """Precision, recall, F-beta and support, as scikit-learn's function of that name (options in docs/metrics.md).

    Args:
        y_true, y_pred: (n,) class ids.
        beta: F-beta weight.
        average: ``"macro"`` (default; scikit-learn's is ``"binary"``), ``"micro"``, ``"weighted"``: floats and
            support None. ``None``: (L,) arrays, one value per class of ``labels`` (default ``0..K-1``) and the
            support. ``"binary"``: the scores of class ``pos_label`` (default 1) when y_true and y_pred hold at
            most two classes.
        labels: class ids to score, in this order (absent classes allowed); default: every class present in y_true
            or y_pred (the per-class arrays of ``average=None`` then cover ``0..K-1``).
        pos_label: the positive class of ``average="binary"`` (refused with any other average).
        zero_division: the value of a 0/0 ratio: nan (default; left out of the averages), 0.0 or 1.0.
        sample_weight: (n,) weights: every count becomes a sum of weights.
        n_classes: K (default the largest id + 1).

    Example:
        >>> precision_recall_fscore_support([0, 1, 1, 0], [0, 1, 0, 0], average="binary")
        (1.0, 0.5, 0.6666666666666666, None)
    """
    choices = (*AVERAGES, None, "binary")
    if average not in choices:
        raise ValueError(f"average: must be one of {', '.join(map(repr, choices))}, got {average!r}")
    zd = _check_zero_division(zero_division)
    t, p, k = _pair(y_true, y_pred, n_classes)
    w = _sample_weight(sample_weight, len(t))
    sel: IntArray | None = None
    if average == "binary":
        if labels is not None:
            raise ValueError(f"labels: must be None with average='binary' (pos_label is the class scored), got "
                             f"{labels!r}")
        pos = 1 if pos_label is None else pos_label
        if isinstance(pos, bool) or not isinstance(pos, int | np.integer) or pos < 0:
            raise ValueError(f"pos_label: must be a class id (an integer >= 0), got {pos_label!r}")
        present = np.flatnonzero(np.bincount(np.concatenate([t, p]), minlength=k))
        if len(present) > 2:
            raise ValueError(f"average: 'binary' needs at most two classes in y_true and y_pred, got {len(present)} "
                             f"({', '.join(map(str, present[:5]))}{', ...' if len(present) > 5 else ''}); pass "
                             f"average='macro', 'micro', 'weighted' or None")
        if len(present) == 2 and pos not in present:
            raise ValueError(f"pos_label: must be one of the two classes present ({present[0]}, {present[1]}), got "
                             f"{pos}")
        sel = np.array([pos], np.int64)
    elif pos_label is not None:
        raise ValueError(f"pos_label: only used with average='binary', got average={average!r} (maslow's default "
                         f"average is 'macro', scikit-learn's is 'binary': pass average='binary')")
    elif labels is not None:
        sel = _class_ids(labels, n_classes)
    top = k if sel is None else max(k, int(sel.max()) + 1)
    tp, ts, ps, seen = _counts(t, p, top, w)
    if average is None:
        idx = np.arange(top) if sel is None else sel
        if not len(t):
            nan = np.full(len(idx), math.nan)
            return nan, nan.copy(), nan.copy(), ts[idx]
        return (*_prf(tp[idx], ts[idx], ps[idx], beta, zd), ts[idx])
    if not len(t):
        _prf(tp, ts, ps, beta, zd)  # checks beta
        return math.nan, math.nan, math.nan, None
    if sel is None:  # scikit-learn's labels=None: the classes present (all of 0..K-1 for a nan macro, the same value)
        sel = np.arange(top) if average == "macro" and math.isnan(zd) else np.flatnonzero(seen)
    tp, ts, ps = tp[sel], ts[sel], ps[sel]
    if average == "micro":
        tp, ts, ps = (np.reshape(a.sum(), (1,)) for a in (tp, ts, ps))
    weights = ts if average == "weighted" else None
    pr, rc, f = _prf(tp, ts, ps, beta, zd)
    return _nanaverage(pr, weights), _nanaverage(rc, weights), _nanaverage(f, weights), None


def precision_score(y_true: Any, y_pred: Any, *, average: str | None = "macro", labels: Any = None,
                    pos_label: int | None = None, zero_division: float = math.nan, sample_weight: Any = None,
                    n_classes: int | None = None) -> Any:
    """Precision averaged over classes (a float), or per class (``average=None``: an array).

    Options as ``precision_recall_fscore_support`` (scikit-learn's, with maslow's defaults).

    Example:
        >>> round(precision_score([0, 1, 2, 2], [0, 2, 2, 2], average="macro"), 6)
        0.833333
    """
    return precision_recall_fscore_support(
        y_true, y_pred, average=average, labels=labels, pos_label=pos_label, zero_division=zero_division,
        sample_weight=sample_weight, n_classes=n_classes)[0]


def recall_score(y_true: Any, y_pred: Any, *, average: str | None = "macro", labels: Any = None,
                 pos_label: int | None = None, zero_division: float = math.nan, sample_weight: Any = None,
                 n_classes: int | None = None) -> Any:
    """Recall averaged over classes (a float), or per class (``average=None``: an array).

    Options as ``precision_recall_fscore_support`` (scikit-learn's, with maslow's defaults).

    Example:
        >>> recall_score([0, 1, 2, 2], [0, 2, 2, 2], average="macro")
        0.6666666666666666
    """
    return precision_recall_fscore_support(
        y_true, y_pred, average=average, labels=labels, pos_label=pos_label, zero_division=zero_division,
        sample_weight=sample_weight, n_classes=n_classes)[1]


def fbeta_score(y_true: Any, y_pred: Any, *, beta: float = 1.0, average: str | None = "macro", labels: Any = None,
                pos_label: int | None = None, zero_division: float = math.nan, sample_weight: Any = None,
                n_classes: int | None = None) -> Any:
    """F-beta averaged over classes (a float), or per class (``average=None``: an array).

    Options as ``precision_recall_fscore_support`` (scikit-learn's, with maslow's defaults).

    Example:
        >>> round(fbeta_score([0, 1, 2, 2], [0, 2, 2, 2], beta=2.0, average="weighted"), 6)
        0.704545
    """
    return precision_recall_fscore_support(
        y_true, y_pred, beta=beta, average=average, labels=labels, pos_label=pos_label, zero_division=zero_division,
        sample_weight=sample_weight, n_classes=n_classes)[2]


def f1_score(y_true: Any, y_pred: Any, *, average: str | None = "macro", labels: Any = None,
             pos_label: int | None = None, zero_division: float = math.nan, sample_weight: Any = None,
             n_classes: int | None = None) -> Any:
    """F1 averaged over classes: ``fbeta_score`` with ``beta=1``.

    Example:
        >>> round(f1_score([0, 1, 2, 2], [0, 2, 2, 2]), 6)
        0.6
    """
    return fbeta_score(y_true, y_pred, beta=1.0, average=average, labels=labels, pos_label=pos_label,
                       zero_division=zero_division, sample_weight=sample_weight, n_classes=n_classes)


def top_k_accuracy_score(y_true: Any, y_score: Any, *, k: int = 5, labels: Any = None,
                         sample_weight: Any = None) -> float:
    """Fraction of samples whose true class is among the k highest of ``y_score`` (n, K); nan with no sample.

    ``labels``: the increasing class ids of y_score's columns (scikit-learn's ``labels=``; default ``0..K-1``);
    ``sample_weight``: the weighted fraction. The default k is 5 (scikit-learn's is 2).

    Example:
        >>> top_k_accuracy_score([0, 1, 2], [[.5, .3, .2], [.6, .3, .1], [.1, .2, .7]], k=2)
        1.0
    """
    t = _labels(y_true, "y_true")
    s = _scores(y_score, len(t))
    w = _sample_weight(sample_weight, len(t))
    if labels is not None:
        cols = _class_ids(labels, None, increasing=True)
        if len(cols) != s.shape[1]:
            raise ValueError(f"labels: must name the {s.shape[1]} columns of y_score, got {len(cols)} classes")
        at = np.minimum(np.searchsorted(cols, t), len(cols) - 1)
        if len(t) and (cols[at] != t).any():
            i = int(np.flatnonzero(cols[at] != t)[0])
            raise ValueError(f"y_true row {i}: class {t[i]} is not in labels {cols.tolist()}")
        t = at
    return _top_k(t, s, (int(k),), weights=w)[int(k)]


def _scores(y_score: Any, n: int) -> FloatArray:
    s = np.asarray(y_score, np.float64)
    if s.ndim != 2 or s.shape[0] != n:
        raise ValueError(f"y_score: shape must be ({n}, K), got {s.shape}")
    if np.isnan(s).any():
        r = int(np.flatnonzero(np.isnan(s).any(axis=1))[0])
        raise ValueError(f"y_score row {r}: scores must be numbers, got nan")
    return s


def _top_k(t: IntArray, s: FloatArray, ks: Sequence[int], *, unscored: np.ndarray | None = None,
           weights: FloatArray | None = None) -> dict[int, float]:
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
    return {k: float(np.average(rank < k, weights=weights)) for k in ks}


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
        zero_division: the value given to a 0/0 ratio (nan: undefined, left out of the averages; 0.0 or 1.0).
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
    zero_division: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None)."""
        out: dict[str, Any] = {"n_samples": self.n_samples, "beta": self.beta,
                               "zero_division": _json_float(self.zero_division)}
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
                    top_k: Mapping[int, float] | None = None, zero_division: float = math.nan) -> ClassificationResult:
    zd = _check_zero_division(zero_division)
    k = cm.shape[0]
    tp = np.diagonal(cm).copy()
    true_sum = cm.sum(axis=1)
    pred_sum = cm.sum(axis=0)
    n = int(cm.sum())
    p, r, f = _prf(tp, true_sum, pred_sum, beta, zd)
    pm, rm, fm = (float(v[0]) if n else math.nan for v in _prf(
        np.array([tp.sum()]), np.array([true_sum.sum()]), np.array([pred_sum.sum()]), beta, zd))
    w = true_sum.astype(np.float64)
    present = true_sum > 0
    # averages over the classes present in truth or prediction (scikit-learn's labels=None); with nan for 0/0 the
    # others are nan anyway, and a macro over all K stays bit for bit scikit-learn's labels=range(K)
    seen = (present | (pred_sum > 0)) if n else np.zeros(k, bool)
    mac = slice(None) if math.isnan(zd) else seen
    for a in (cm, true_sum, p, r, f):
        a.flags.writeable = False
    return ClassificationResult(
        class_names=tuple(str(i) for i in range(k)) if class_names is None else tuple(class_names),
        confusion_matrix=cm, support_per_class=true_sum, precision_per_class=p, recall_per_class=r,
        fbeta_per_class=f, beta=float(beta), accuracy=float(tp.sum() / n) if n else math.nan,
        balanced_accuracy=float(np.mean(r[present])) if present.any() else math.nan,
        precision_micro=pm, precision_macro=_nanaverage(p[mac], None), precision_weighted=_nanaverage(p[seen], w[seen]),
        recall_micro=rm, recall_macro=_nanaverage(r[mac], None), recall_weighted=_nanaverage(r[seen], w[seen]),
        fbeta_micro=fm, fbeta_macro=_nanaverage(f[mac], None), fbeta_weighted=_nanaverage(f[seen], w[seen]),
        top_k_accuracy=dict(top_k or {}), n_samples=n, zero_division=zd,
    )


def classification_scores_from_labels(y_true: Any, y_pred: Any, *, y_score: Any = None, n_classes: int | None = None,
                                      beta: float = 1.0, k: Sequence[int] = (1, 5),
                                      class_names: Sequence[str] | None = None,
                                      zero_division: float = math.nan) -> ClassificationResult:
    """Every classification score of label arrays (the array form of ``classification_scores``).

    Args:
        y_true, y_pred: (n,) class ids.
        y_score: optional (n, K) per-class scores for top-k accuracy (nan for every k without them).
        n_classes: K; default the largest id + 1 (or ``y_score``'s width).
        beta: F-beta weight.
        k: the top-k values reported.
        class_names: K names for the result.
        zero_division: the value of a 0/0 precision, recall or F-beta: nan (default), 0.0 or 1.0.

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
    return _from_confusion(cm, beta=beta, class_names=class_names, top_k=top, zero_division=zero_division)


# -- Dataset level ----------------------------------------------------------------------------------------------


def _one_label_per_image(ds: Dataset, side: str) -> IntArray:
    count = np.bincount(ds.annotations.image, minlength=ds.n_images)
    bad = np.flatnonzero(count != 1)
    if bad.size:
        raise InvalidDatasetError(f"classification_scores: {side} image {bad[0]} must have exactly one label, got "
                                  f"{count[bad[0]]} ({bad.size} images)")
    return ds.annotations.label


def classification_scores(truth: Dataset, pred: Dataset, *, beta: float = 1.0, k: Sequence[int] = (1, 5),
                          zero_division: float = math.nan) -> ClassificationResult:
    """Classification scores of predicted labels against truth labels, one label per image.

    Classes are matched by name; the class axis is the truth schema's classes, then the prediction-only ones.
    Top-k accuracy reads ``pred.annotations.extra["probs"]`` ((n, K_pred) floats, column j for
    ``pred.schema.names[j]``); a truth class the prediction schema lacks ranks below every predicted class.

    Args:
        truth: classification dataset (task ``classification``), exactly one annotation per image.
        pred: predictions on the same images table, exactly one annotation per image.
        beta: F-beta weight.
        k: the top-k values reported.
        zero_division: the value of a 0/0 precision, recall or F-beta: nan (default), 0.0 or 1.0.

    Returns:
        ClassificationResult.

    Raises:
        SchemaError: a dataset's task is not classification.
        InvalidDatasetError: other images, an image with no label or several, a malformed ``probs`` column (not
            an (n, K_pred) array of numbers: a nan is refused, naming its row and image).

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
        nan = np.flatnonzero(np.isnan(raw).any(axis=1))
        if nan.size:  # named as operating_point names it (the CLI adds the file), not y_score's plain ValueError
            r = int(nan[0])
            raise InvalidDatasetError(f"pred.annotations.extra[{PROBS_COLUMN!r}] row {r} (image "
                                      f"{pred.images.path[pred.annotations.image[r]]!r}): must be numbers, got nan "
                                      f"({nan.size} rows)")
        score = np.full((len(raw), len(names)), -np.inf)
        score[:, remap] = raw
        unscored = np.ones(len(names), bool)
        unscored[remap] = False
        top = _top_k(t, _scores(score, len(t)), ks, unscored=unscored)
    cm = confusion_matrix(t, p, n_classes=len(names))
    return _from_confusion(cm, beta=beta, class_names=names, top_k=top, zero_division=zero_division)
