"""Consistency across a dataset: classes missing where nearly every image has them, counts per image far outside
a class's usual range, and attribute values that break the schema or contradict each other.

Glossary: *presence* of a class is the fraction of images with at least one of it; a *count z* is the robust z
of an image's count of a class, ``(count - median) / max(1.4826 MAD, sqrt(median), 1)`` (the floor is a
Poisson-like spread, so classes whose count is nearly always the same are not flagged for one extra object).
Attribute values are compared as strings, with bools normalised (``True``, ``"true"``, ``"1"``, ``"yes"`` ->
``True``); None and NaN are unset. A value fits its attribute by ``maslow.core.schema.attribute_value_ok``, the rule
``maslow schema validate`` uses (text that reads as the type fits: ``"yes"`` for a bool, ``"3.5"`` for a number).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import BOOL_TEXT, LabelSchema, attribute_value_ok
from maslow.core.types import IntArray, distinct, is_unset
from maslow.quality.config import CheckConfig
from maslow.quality.issues import QualityIssues


def _norm(v: Any) -> Any:
    """A comparable attribute value: None when unset (None or NaN), bools for bool-like values (``BOOL_TEXT``),
    else the string."""
    if is_unset(v):
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    flag = BOOL_TEXT.get(str(v).strip().lower())
    return str(v) if flag is None else flag


def annotator_ids(annotator: np.ndarray) -> tuple[tuple[str, ...], IntArray]:
    """(names, who): the annotators' names (as str, sorted) and each row's index into them, -1 for a row without
    an annotator (None or NaN: nobody's, so it takes no part in agreement or in the count of annotators)."""
    values = np.asarray(annotator, dtype=object)
    unset = np.fromiter((is_unset(v) for v in values.tolist()), dtype=bool, count=len(values))
    who = np.full(len(values), -1, np.int64)
    if unset.all():
        return (), who
    found, inv = np.unique(values[~unset].astype(str), return_inverse=True)
    who[~unset] = inv
    return tuple(str(n) for n in found.tolist()), who


def class_counts(ds: Dataset) -> np.ndarray:
    """(m, k) float64: count of each class in each image (crowd regions excluded); with several annotators on
    an image, the mean count per annotator. Annotations without an annotator (None, NaN) are counted but name no
    annotator (``annotator_ids``): an image's count is divided by the number of named annotators on it (at
    least 1)."""
    a = ds.annotations
    assert a.iscrowd is not None
    k = len(ds.schema.classes)
    keep = ~a.iscrowd
    flat = a.image[keep] * k + a.label[keep]
    counts = np.bincount(flat, minlength=ds.n_images * k).reshape(ds.n_images, k).astype(np.float64)
    if a.annotator is not None and len(a):
        names, who = annotator_ids(a.annotator)
        rated = who >= 0
        pairs = distinct(a.image[rated] * len(names) + who[rated])
        raters = np.bincount(pairs // max(len(names), 1), minlength=ds.n_images)
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
        # the value as given (_norm reads 0 and 1 as bools), by the rule `maslow schema validate` uses
        bad = np.asarray([not u and not attribute_value_ok(d, v) for v, u in zip(raw, unset.tolist(), strict=True)],
                         bool)
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


def check_empty_images(ds: Dataset) -> list[QualityIssues]:
    """``image_without_annotations`` (info): images with no annotation at all (a background image, or one left
    unlabelled); ``check`` reports them with ``CheckConfig.report_empty_images``."""
    has = np.zeros(ds.n_images, bool)
    has[ds.annotations.image] = True
    rows = np.flatnonzero(~has)
    if not len(rows):
        return []
    return [QualityIssues.block(
        "image_without_annotations", "info", image=rows, score=0.2,
        reason="the image has no annotation",
        suggestion="label its objects, or keep it as a background image (a negative) if it has none")]


def check_schema_names(ds: Dataset, schema: LabelSchema) -> list[QualityIssues]:
    """Against a schema other than the dataset's own (``maslow check --schema``): ``class_not_in_schema`` (error),
    annotations of a class the schema does not name, and ``attribute_unknown`` (warning), values of an attribute it
    does not define (as ``maslow schema validate`` finds them)."""
    a = ds.annotations
    names = ds.schema.names
    out: list[QualityIssues] = []
    unknown = np.asarray([n not in schema for n in names], bool)
    if unknown.any() and len(a):
        r = np.flatnonzero(unknown[a.label])
        if len(r):
            out.append(QualityIssues.block(
                "class_not_in_schema", "error", image=a.image[r], annotation=r, score=0.95,
                reason=[f"class {names[c]!r} is not in the schema" for c in a.label[r].tolist()],
                suggestion="relabel the annotation with a class of the schema, or add the class to the schema "
                           "(maslow schema migrate renames and merges classes)"))
    defined = {d.name for d in schema.attributes}
    for name, col in a.attributes.items():
        if name in defined:
            continue
        r = np.flatnonzero(np.fromiter((not is_unset(v) for v in col.tolist()), bool, count=len(col)))
        if len(r):
            out.append(QualityIssues.block(
                "attribute_unknown", "warning", image=a.image[r], annotation=r, score=0.6,
                reason=[f"attribute {name!r} (value {col[i]!r}) is not in the schema" for i in r.tolist()],
                suggestion=f"rename {name!r} to an attribute of the schema (a typo?), or define it there"))
    return out


def check_rules_apply(ds: Dataset, config: CheckConfig, schema: LabelSchema) -> list[QualityIssues]:
    """``rule_never_applies`` (info, about the dataset): an attribute rule of the config naming an attribute that
    no annotation carries and the schema does not define: a typo, or a rule for another dataset; it can never
    fire."""
    known = set(ds.annotations.attributes) | {d.name for d in schema.attributes}
    rules: list[tuple[str, tuple[str, ...]]] = [(f"exclusive_attributes[{i}]", pair)
                                                for i, pair in enumerate(config.exclusive_attributes)]
    rules += [(f"forbidden_combinations[{i}]", tuple(k for k, _ in combo))
              for i, combo in enumerate(config.forbidden_combinations)]
    out: list[QualityIssues] = []
    for where, attrs in rules:
        missing = [k for k in attrs if k not in known]
        if missing:
            out.append(QualityIssues.block(
                "rule_never_applies", "info", image=-1, score=0.4,
                reason=f"{where} names {', '.join(map(repr, missing))}, an attribute no annotation carries and the "
                       f"schema does not define: the rule can never fire",
                suggestion="check the attribute's spelling in the rules file"))
    return out


def check_consistency(ds: Dataset, config: CheckConfig = CheckConfig(), *, schema: LabelSchema | None = None) -> QualityIssues:
    """Every consistency check, ranked. ``schema`` (default ``ds.schema``): the schema to check classes and
    attributes against; classes and attribute columns it does not name are findings only when it is given."""
    named = [] if schema is None or schema is ds.schema else check_schema_names(ds, schema)
    return QualityIssues.build([*check_presence_and_counts(ds, config), *check_attributes(ds, config, schema=schema),
                                *named, *(check_empty_images(ds) if config.report_empty_images else []),
                                *check_rules_apply(ds, config, schema or ds.schema)])
