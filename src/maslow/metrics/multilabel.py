"""Multi-label scores (tagging, attribute prediction): Hamming score and loss, subset accuracy, P/R/F1.

Glossary:

- *indicator matrices*: ``y_true``, ``y_pred`` are (n, L) arrays of 0/1 (or bool): sample i has label j.
- *Hamming score* (example-based accuracy, Godbole & Sarawagi 2004): the mean over samples of
  ``|T ∩ P| / |T ∪ P|``. A sample with no true and no predicted label scores **1** (the empty set was predicted
  exactly): scikit-learn's ``jaccard_score(average="samples", zero_division=1.0)``.
- *Hamming loss*: the fraction of (sample, label) cells predicted wrong (scikit-learn's ``hamming_loss``).
- *subset accuracy*: the fraction of samples whose label set is predicted exactly.
- *precision, recall, F1*: per label from the columns; ``micro`` pools all cells, ``macro`` is the mean of the
  defined per-label values, ``weighted`` their support-weighted mean, ``samples`` the mean of the per-sample
  values. A 0/0 ratio is ``nan`` and left out of the averages: scikit-learn's ``zero_division=np.nan``
  (``precision_recall_fscore_support``), so a sample with no predicted label has no precision. With
  ``zero_division=0.0`` or ``1.0`` a 0/0 ratio takes that value and counts in the averages (scikit-learn's
  ``"warn"`` default is 0.0).
- Every score is ``nan`` when there is nothing to average (no sample, or no label).

Datasets (``multilabel_scores``):

- *tags* (default): each image is a sample; each annotation of an image is one of its labels (task
  ``multilabel`` or ``classification``). Labels are the truth schema's classes, then the prediction-only ones
  (matched by name). A predicted tag counts when its ``annotations.score`` is ``>= threshold`` or absent (nan).
- *attributes* (``attributes=[...]``): each annotation row is a sample (truth and pred rows paired by position,
  on the same images); each named attribute is a label. A value counts as set when it is ``True``, a number
  ``>= threshold`` (a predicted probability or logit; a truth number counts when ``>= 0.5``, so 0/1 truth values
  mean what they say whatever the threshold), or a string ``"true"``/``"yes"``/``"1"``;
  ``None`` (unset), ``False``, smaller numbers and ``"false"``/``"no"``/``"0"``/``""`` count as not set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    _json_float,
    _nanaverage,
    _prf,
    _require_task,
)

AVERAGES = ("micro", "macro", "weighted", "samples")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0", ""})


def _indicators(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        a = np.asarray(y)
        if a.ndim != 2:
            raise ValueError(f"{name}: must be an (n, L) indicator matrix, got shape {a.shape}")
        if a.size and a.dtype != bool:
            if a.dtype.kind not in "iuf" or not np.isin(a, (0, 1)).all():
                bad = np.argwhere(~np.isin(a, (0, 1)))[0] if a.dtype.kind in "iuf" else None
                got = f"{a[tuple(bad)]} at {tuple(int(v) for v in bad)}" if bad is not None else f"dtype {a.dtype}"
                raise ValueError(f"{name}: values must be 0 or 1, got {got}")
        out.append(a.astype(bool))
    if out[0].shape != out[1].shape:
        raise ValueError(f"y_pred: shape must equal y_true's {out[0].shape}, got {out[1].shape}")
    return out[0], out[1]


def hamming_score(y_true: Any, y_pred: Any) -> float:
    """Mean of ``|T ∩ P| / |T ∪ P|`` over samples; an empty-empty sample scores 1; nan with no sample or no label.

    Example:
        >>> hamming_score([[1, 1, 0], [0, 0, 0]], [[1, 0, 1], [0, 0, 0]])
        0.6666666666666666
    """
    t, p = _indicators(y_true, y_pred)
    if not t.size:  # no sample, or no label
        return math.nan
    union = (t | p).sum(axis=1)
    inter = (t & p).sum(axis=1)
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


def hamming_loss(y_true: Any, y_pred: Any) -> float:
    """Fraction of (sample, label) cells predicted wrong; nan when there is no cell.

    Example:
        >>> hamming_loss([[1, 1, 0], [0, 0, 0]], [[1, 0, 1], [0, 0, 0]])
        0.3333333333333333
    """
    t, p = _indicators(y_true, y_pred)
    return float(np.count_nonzero(t != p) / t.size) if t.size else math.nan


def subset_accuracy_score(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples whose whole label set is predicted exactly; nan with no sample or no label.

    Example:
        >>> subset_accuracy_score([[1, 1, 0], [0, 0, 0]], [[1, 0, 1], [0, 0, 0]])
        0.5
    """
    t, p = _indicators(y_true, y_pred)
    return float(np.mean((t == p).all(axis=1))) if t.size else math.nan


@dataclass(frozen=True, eq=False)
class MultilabelResult:
    """Multi-label scores (definitions in the module docstring).

    Attributes:
        class_names: (L,) label names (schema classes for tags, attribute names for attributes).
        support_per_class: (L,) int64 samples with each label in the truth.
        precision_per_class, recall_per_class, f1_per_class: (L,) float64, nan where undefined.
        hamming_score, hamming_loss, subset_accuracy: floats.
        precision_micro, precision_macro, precision_weighted, precision_samples, recall_* and f1_* (same four
        averages): floats.
        n_samples: samples (images, or annotation rows for attributes).
        threshold: the score threshold applied to predictions (nan for indicator matrices).
        zero_division: the value given to a 0/0 ratio (nan: undefined, left out of the averages; 0.0 or 1.0).
    """

    class_names: tuple[str, ...]
    support_per_class: IntArray
    precision_per_class: FloatArray
    recall_per_class: FloatArray
    f1_per_class: FloatArray
    hamming_score: float
    hamming_loss: float
    subset_accuracy: float
    precision_micro: float
    precision_macro: float
    precision_weighted: float
    precision_samples: float
    recall_micro: float
    recall_macro: float
    recall_weighted: float
    recall_samples: float
    f1_micro: float
    f1_macro: float
    f1_weighted: float
    f1_samples: float
    n_samples: int
    threshold: float
    zero_division: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None)."""
        out: dict[str, Any] = {"n_samples": self.n_samples, "threshold": _json_float(self.threshold),
                               "zero_division": _json_float(self.zero_division)}
        for name in ("hamming_score", "hamming_loss", "subset_accuracy"):
            out[name] = _json_float(getattr(self, name))
        for m in ("precision", "recall", "f1"):
            for avg in AVERAGES:
                out[f"{m}_{avg}"] = _json_float(getattr(self, f"{m}_{avg}"))
        out["class_names"] = list(self.class_names)
        out["per_class"] = {m: [_json_float(v) for v in getattr(self, f"{m}_per_class").tolist()]
                            for m in ("precision", "recall", "f1")}
        out["support_per_class"] = self.support_per_class.tolist()
        return out

    def to_pandas(self) -> Any:
        """Per-label table: precision, recall, F1 and support."""
        import pandas as pd

        return pd.DataFrame({"class": list(self.class_names), "precision": self.precision_per_class,
                             "recall": self.recall_per_class, "f1": self.f1_per_class,
                             "support": self.support_per_class})


def multilabel_scores_from_indicators(y_true: Any, y_pred: Any, *, class_names: Sequence[str] | None = None,
                                      threshold: float = math.nan, zero_division: float = math.nan) -> MultilabelResult:
    """Every multi-label score of two (n, L) indicator matrices.

    Args:
        y_true, y_pred: (n, L) 0/1 or bool.
        class_names: L label names; default ``"0".."L-1"``.
        threshold: recorded in the result (the threshold that produced ``y_pred``, if any).
        zero_division: the value of a 0/0 precision, recall or F1 (per label, per sample or micro): nan (default,
            left out of the averages), 0.0 or 1.0 (counted in the averages, as scikit-learn does).

    Example:
        >>> r = multilabel_scores_from_indicators([[1, 1, 0], [0, 1, 0]], [[1, 0, 0], [0, 1, 1]])
        >>> r.hamming_score, r.f1_micro
        (0.5, 0.6666666666666666)
    """
    zd = _check_zero_division(zero_division)
    t, p = _indicators(y_true, y_pred)
    n, n_lab = t.shape
    fill = zd if t.size else math.nan  # nothing to average: every score nan, whatever zero_division
    names = tuple(str(i) for i in range(n_lab)) if class_names is None else tuple(class_names)
    if len(names) != n_lab:
        raise ValueError(f"class_names: must name {n_lab} labels, got {len(names)}")
    inter = t & p
    tp, ts, ps = inter.sum(axis=0), t.sum(axis=0), p.sum(axis=0)
    prec, rec, f1 = _prf(tp, ts, ps, 1.0, fill)  # F1: F-beta at beta 1, the same float operations
    micro = [float(v[0]) for v in _prf([tp.sum()], [ts.sum()], [ps.sum()], 1.0, fill)]
    s_prec, s_rec, s_f1 = _prf(inter.sum(axis=1), t.sum(axis=1), p.sum(axis=1), 1.0, fill)
    w = ts.astype(np.float64)
    ts = ts.astype(np.int64)
    for a in (ts, prec, rec, f1):
        a.flags.writeable = False
    return MultilabelResult(
        class_names=names, support_per_class=ts, precision_per_class=prec, recall_per_class=rec,
        f1_per_class=f1, hamming_score=hamming_score(t, p), hamming_loss=hamming_loss(t, p),
        subset_accuracy=subset_accuracy_score(t, p),
        precision_micro=micro[0], precision_macro=_nanaverage(prec, None), precision_weighted=_nanaverage(prec, w),
        precision_samples=_nanaverage(s_prec, None),
        recall_micro=micro[1], recall_macro=_nanaverage(rec, None), recall_weighted=_nanaverage(rec, w),
        recall_samples=_nanaverage(s_rec, None),
        f1_micro=micro[2], f1_macro=_nanaverage(f1, None), f1_weighted=_nanaverage(f1, w),
        f1_samples=_nanaverage(s_f1, None), n_samples=n, threshold=float(threshold), zero_division=zd,
    )


def _attribute_values(col: np.ndarray, threshold: float, where: str) -> np.ndarray:
    out = np.zeros(len(col), bool)
    for r, v in enumerate(col.tolist()):
        if v is None or v is False:
            continue
        if v is True:
            out[r] = True
        elif isinstance(v, int | float | np.integer | np.floating):
            if math.isnan(float(v)):
                raise InvalidDatasetError(f"{where} row {r}: must be a bool, a number or 'true'/'false', got nan")
            out[r] = float(v) >= threshold
        elif isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            out[r] = v.strip().lower() in _TRUE
        else:
            raise InvalidDatasetError(f"{where} row {r}: must be a bool, a number or 'true'/'false', got {v!r}")
    return out


def multilabel_scores(truth: Dataset, pred: Dataset, *, threshold: float = 0.5,
                      attributes: Sequence[str] | None = None, zero_division: float = math.nan) -> MultilabelResult:
    """Multi-label scores of predicted tags (or boolean attributes) against the truth (see the module docstring).

    Args:
        truth: tags (task ``multilabel`` or ``classification``), several annotations per image allowed, or any
            dataset whose annotations carry ``attributes``.
        pred: predictions on the same images table (and, for attributes, the same annotation rows).
        threshold: a predicted tag counts when its score is ``>= threshold`` (or it has none); a numeric
            predicted attribute value counts when ``>= threshold`` (a truth one when ``>= 0.5``).
        attributes: attribute names to score as labels, one sample per annotation row; None scores tags.
        zero_division: the value of a 0/0 precision, recall or F1: nan (default), 0.0 or 1.0.

    Returns:
        MultilabelResult.

    Raises:
        SchemaError: tags of a dataset whose task is neither multilabel nor classification.
        InvalidDatasetError: other images, unpaired annotation rows, a missing attribute or an unreadable value.

    Example:
        >>> from maslow.core.schema import LabelSchema
        >>> from maslow.core.tables import Annotations, Images
        >>> images = Images(path=np.array(["a", "b"], object), width=[1, 1], height=[1, 1])
        >>> schema = LabelSchema.from_names(["sky", "sea", "sand"], task="multilabel")
        >>> truth = Dataset(schema, images, Annotations(image=[0, 0, 1], label=[0, 1, 2]))
        >>> pred = truth.replace(annotations=Annotations(image=[0, 1, 1], label=[0, 2, 1], score=[.9, .8, .3]))
        >>> multilabel_scores(truth, pred).hamming_score
        0.75
    """
    _check_zero_division(zero_division)
    _check_same_images(truth, pred, "multilabel_scores")
    if attributes is not None:
        return _attribute_scores(truth, pred, list(attributes), threshold, zero_division)
    for side, ds in (("truth", truth), ("pred", pred)):
        _require_task(ds, side, "multilabel_scores", Task.MULTILABEL, Task.CLASSIFICATION)
    names = list(truth.schema.names)
    names += [n for n in pred.schema.names if n not in truth.schema]
    pos = {n: i for i, n in enumerate(names)}
    y_true = np.zeros((truth.n_images, len(names)), bool)
    y_pred = np.zeros_like(y_true)
    ta, pa = truth.annotations, pred.annotations
    y_true[ta.image, ta.label] = True
    remap = np.asarray([pos[n] for n in pred.schema.names], np.int64)
    keep = np.ones(len(pa), bool)
    if pa.score is not None:
        with np.errstate(invalid="ignore"):
            keep = np.isnan(pa.score) | (pa.score >= threshold)
    y_pred[pa.image[keep], remap[pa.label[keep]]] = True
    return multilabel_scores_from_indicators(y_true, y_pred, class_names=names, threshold=threshold,
                                             zero_division=zero_division)


def _attribute_scores(truth: Dataset, pred: Dataset, attributes: list[str], threshold: float,
                      zero_division: float) -> MultilabelResult:
    ta, pa = truth.annotations, pred.annotations
    if len(ta) != len(pa) or not np.array_equal(ta.image, pa.image):
        raise InvalidDatasetError(
            f"multilabel_scores: pred annotation rows must pair with truth's ({len(ta)} rows, same images), got "
            f"{len(pa)} rows" + ("" if len(ta) != len(pa) else
                                 f"; row {int(np.flatnonzero(ta.image != pa.image)[0])} is on another image"))
    cols = []
    for side, a in (("truth", ta), ("pred", pa)):
        mat = np.zeros((len(a), len(attributes)), bool)
        for j, name in enumerate(attributes):
            if name not in a.attributes:
                raise InvalidDatasetError(f"multilabel_scores: {side}.annotations.attributes must have {name!r}, "
                                          f"got {sorted(a.attributes)}")
            # the threshold is the predictions' (probabilities or logits); truth numbers are 0/1 labels
            mat[:, j] = _attribute_values(a.attributes[name], threshold if side == "pred" else 0.5,
                                          f"{side}.annotations.attributes[{name!r}]")
        cols.append(mat)
    return multilabel_scores_from_indicators(cols[0], cols[1], class_names=attributes, threshold=threshold,
                                             zero_division=zero_division)
