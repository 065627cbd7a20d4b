"""Helpers of the metrics modules: safe division and nan-aware means as scikit-learn computes them, the checks
of label arrays and Dataset pairs, and scikit-learn's options (``zero_division``, ``sample_weight``, ``labels``)
with the counts and the precision/recall/F-beta they give."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.types import FloatArray, IntArray
from maslow.errors import InvalidDatasetError, SchemaError


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


# -- scikit-learn's options: zero_division, sample_weight, labels, average=None/"binary", pos_label ---------------


def _check_zero_division(zero_division: Any) -> float:
    ok = isinstance(zero_division, int | float | np.integer | np.floating) and not isinstance(zero_division, bool)
    z = float(zero_division) if ok else 0.0
    if not ok or not (math.isnan(z) or z in (0.0, 1.0)):
        hint = (" (scikit-learn's default 'warn' is 0.0 plus a warning: pass zero_division=0.0)"
                if isinstance(zero_division, str) and zero_division == "warn" else "")
        raise ValueError(f"zero_division: must be 0.0, 1.0 or nan, got {zero_division!r}{hint}")
    return z


def _sample_weight(sample_weight: Any, n: int) -> FloatArray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.shape != (n,):
        raise ValueError(f"sample_weight: shape must be ({n},), one weight per sample, got {w.shape}")
    if w.size and w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight: must hold numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        i = int(np.flatnonzero(~np.isfinite(w))[0])
        raise ValueError(f"sample_weight row {i}: must be a finite number, got {w[i]}")
    return w


def _class_ids(labels: Any, n_classes: int | None, *, increasing: bool = False) -> IntArray:
    a = np.asarray(labels)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"labels: must be a non-empty 1-D array of class ids, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"labels: must hold integer class ids, got dtype {a.dtype}")
    if a.min() < 0 or (n_classes is not None and a.max() >= n_classes):
        bad = a.min() if a.min() < 0 else a.max()
        raise ValueError(f"labels: class ids must be >= 0{'' if n_classes is None else f' and < n_classes ({n_classes})'}"
                         f", got {bad}")
    if len(np.unique(a)) != len(a):
        raise ValueError(f"labels: must not repeat a class, got {a.tolist()}")
    if increasing and (np.diff(a) < 0).any():
        raise ValueError(f"labels: must be increasing (column j of y_score scores class labels[j]), got {a.tolist()}")
    return a.astype(np.int64)


def _counts(t: IntArray, p: IntArray, k: int, w: FloatArray | None) -> tuple[np.ndarray, ...]:
    """(K,) true positives, true and predicted totals (integer counts, or ``sample_weight`` sums in sample order as
    scikit-learn's ``np.bincount``), and (K,) bool: the class occurs in y_true or y_pred."""
    if w is None:  # one bincount of the confusion matrix is faster than three
        cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
        tp, ts, ps = np.diagonal(cm).copy(), cm.sum(axis=1), cm.sum(axis=0)
        return tp, ts, ps, (ts + ps) > 0
    hit = t == p
    tp = np.bincount(t[hit], weights=w[hit], minlength=k)
    ts, ps = np.bincount(t, weights=w, minlength=k), np.bincount(p, weights=w, minlength=k)
    seen = np.zeros(k, bool)
    seen[t] = seen[p] = True
    # scikit-learn rebuilds the totals from its confusion matrices, tp + (total - tp): the same rounding
    return tp, tp + (ts - tp), tp + (ps - tp), seen


def _prf(tp: Any, ts: Any, ps: Any, beta: float, zero_division: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-class precision, recall, F-beta with scikit-learn's float operations; 0/0 is ``zero_division``."""
    if beta < 0 or math.isnan(beta):
        raise ValueError(f"beta: must be >= 0, got {beta}")
    p, r = _divide(tp, ps), _divide(tp, ts)
    if math.isinf(beta):
        f = r.copy()
    elif beta == 0:
        f = p.copy()
    else:
        b2 = beta**2
        f = _divide((1 + b2) * np.asarray(tp, np.float64), b2 * np.asarray(ts, np.float64) + np.asarray(ps, np.float64))
    if not math.isnan(zero_division):
        for a in (p, r, f):
            a[np.isnan(a)] = zero_division
    return p, r, f
