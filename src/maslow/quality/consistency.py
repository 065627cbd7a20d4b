"""Consistency across a dataset: classes missing where nearly every image has them, counts per image far outside
a class's usual range, and attribute values that break the schema or contradict each other.

Glossary: *presence* of a class is the fraction of images with at least one of it; a *count z* is the robust z
of an image's count of a class, ``(count - median) / max(1.4826 MAD, sqrt(median), 1)`` (the floor is a
Poisson-like spread, so classes whose count is nearly always the same are not flagged for one extra object).
Attribute values are compared as strings, with bools normalised (``True``, ``"true"``, ``"1"`` -> ``True``); None
and NaN are unset. ``number`` attributes are checked on the value as given (``0`` and ``1`` are numbers, not
bools).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.types import is_unset
from maslow.quality.config import CheckConfig
from maslow.quality.issues import QualityIssues

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _norm(v: Any) -> Any:
    """A comparable attribute value: None when unset (None or NaN), bools for bool-like values, else the string."""
    if is_unset(v):
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    return str(v)


def class_counts(ds: Dataset) -> np.ndarray:
    """(m, k) float64: count of each class in each image (crowd regions excluded); with several annotators on
    an image, the mean count per annotator."""
    a = ds.annotations
    assert a.iscrowd is not None
    k = len(ds.schema.classes)
    keep = ~a.iscrowd
    flat = a.image[keep] * k + a.label[keep]
    counts = np.bincount(flat, minlength=ds.n_images * k).reshape(ds.n_images, k).astype(np.float64)
    if a.annotator is not None and len(a):
        _, who = np.unique(a.annotator.astype(str), return_inverse=True)
        pairs = np.unique(a.image * (int(who.max()) + 1) + who)
        raters = np.bincount(pairs // (int(who.max()) + 1), minlength=ds.n_images)
        counts /= np.maximum(raters, 1)[:, None]
    return counts


def check_presence_and_counts(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """``missing_common_class`` and ``count_outlier`` (image-level rows)."""
    m = ds.n_images
    if m < config.min_images or len(ds.annotations) == 0:
        return []
    counts = class_counts(ds)
    names = ds.schema.names
    out: list[QualityIssues] = []
    present = counts > 0
    frac = present.mean(axis=0)
    for c in np.flatnonzero(frac >= config.presence_fraction).tolist():
        miss = np.flatnonzero(~present[:, c])
        if len(miss):
            out.append(QualityIssues.block(
                "missing_common_class", "warning", image=miss,
                score=0.5 + 0.4 * float(frac[c] - config.presence_fraction) / max(1 - config.presence_fraction, 1e-9),
                reason=f"no {names[c]}, although {100 * frac[c]:.1f}% of images have one",
                suggestion=f"check whether the {names[c]} objects of this image were left unlabelled"))
    for c in range(len(names)):
        col = counts[:, c].astype(np.float64)
        if int((col > 0).sum()) < config.min_class_count and col.sum() < config.min_class_count:
            continue
        med = float(np.median(col))
        mad = float(np.median(np.abs(col - med))) * 1.4826
        scale = max(mad, float(np.sqrt(med)), 1.0)
        z = (col - med) / scale
        hit = np.flatnonzero(np.abs(z) > config.count_z)
        if len(hit):
            zz = z[hit]
            out.append(QualityIssues.block(
                "count_outlier", "warning", image=hit, score=1 - config.count_z / (2 * np.abs(zz)),
                reason=[f"{col[i]:g} {names[c]} objects where images usually have {med:g} (robust z {v:+.1f})"
                        for i, v in zip(hit, zz, strict=True)],
                suggestion="check for objects labelled twice or left unlabelled"))
    return out


def check_attributes(ds: Dataset, config: CheckConfig = CheckConfig(), *, schema: LabelSchema | None = None) -> list[QualityIssues]:
    """Values outside the schema (``attribute_invalid``), missing required ones (``attribute_missing``) and
    combinations the config forbids (``attribute_conflict``)."""
    schema = schema or ds.schema
    a = ds.annotations
    assert a.iscrowd is not None
    names = ds.schema.names
    out: list[QualityIssues] = []
    norm = {k: np.asarray([_norm(v) for v in col.tolist()], dtype=object) for k, col in a.attributes.items()}
    for d in schema.attributes:
        col = norm.get(d.name)
        applies = np.ones(len(a), bool) if not d.classes else np.isin(np.asarray(names, object)[a.label], d.classes)
        if col is None:
            col = np.full(len(a), None, dtype=object)
        unset = np.asarray([v is None for v in col.tolist()], bool)
        raw = a.attributes[d.name].tolist() if d.name in a.attributes else [None] * len(a)
        if d.required:
            miss = np.flatnonzero(applies & unset & ~a.iscrowd)
            if len(miss):
                out.append(QualityIssues.block(
                    "attribute_missing", "warning", image=a.image[miss], annotation=miss, score=0.5,
                    reason=f"required attribute {d.name!r} is not set", suggestion=f"set {d.name!r}"))
        if d.type == "bool":
            bad = np.asarray([v is not None and not isinstance(v, bool) for v in col.tolist()], bool)
        elif d.type == "enum" and d.values:
            allowed = {str(v) for v in d.values}
            bad = np.asarray([not u and str(v) not in allowed for v, u in zip(raw, unset.tolist(), strict=True)], bool)
        elif d.type == "number":  # the value as given: _norm reads 0 and 1 as bools
            bad = np.asarray([not u and not _is_number(v) for v, u in zip(raw, unset.tolist(), strict=True)], bool)
        else:
            bad = np.zeros(len(a), bool)
        r = np.flatnonzero(bad)
        if len(r):
            raw_col = a.attributes[d.name]
            out.append(QualityIssues.block(
                "attribute_invalid", "error", image=a.image[r], annotation=r, score=0.9,
                reason=[f"attribute {d.name!r} ({d.type}) has value {raw_col[i]!r}"
                        + (f"; allowed: {', '.join(d.values)}" if d.values else "") for i in r],
                suggestion=f"set {d.name!r} to an allowed value"))
    rules = [((x, True), (y, True)) for x, y in config.exclusive_attributes] + [tuple(c) for c in config.forbidden_combinations]
    for rule in rules:
        hit = np.ones(len(a), bool)
        for attr, value in rule:
            col = norm.get(attr)
            if col is None:
                hit[:] = False
                break
            want = _norm(value)
            hit &= np.asarray([v == want and v is not None for v in col.tolist()], bool)
        r = np.flatnonzero(hit)
        if len(r):
            desc = " and ".join(f"{k}={v!r}" for k, v in rule)
            out.append(QualityIssues.block(
                "attribute_conflict", "error", image=a.image[r], annotation=r, score=0.85,
                reason=f"attributes contradict each other: {desc}",
                suggestion="keep the value the guidelines call for and clear the other"))
    return out


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def check_consistency(ds: Dataset, config: CheckConfig = CheckConfig(), *, schema: LabelSchema | None = None) -> QualityIssues:
    """Every consistency check, ranked."""
    return QualityIssues.build([*check_presence_and_counts(ds, config), *check_attributes(ds, config, schema=schema)])
