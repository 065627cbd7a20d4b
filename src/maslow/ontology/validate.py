"""Validation of a Dataset against a label schema: every annotation, every rule, each violation located.

Rules (the ``Issue.type`` of each violation):

- ``unknown_class``: the annotation's class is not in the schema.
- ``label_type_not_allowed``: the annotation carries a geometry (box, mask, polygon, keypoints; ``tag`` = none)
  that the class's ``label_types`` does not list.
- ``wrong_kind``: a ``semantic`` class annotated as instances (more than one annotation per image, or with a
  box or keypoints but no region: no mask, and no polygon the class's ``label_types`` allow; a box beside a region,
  as COCO writes one with every polygon, is the region's extent).
- ``unknown_attribute``: a value in an attribute column the schema does not define.
- ``missing_required_attribute``: a required attribute without a value on a class it applies to (crowd regions
  are exempt, as in ``maslow check``'s ``attribute_missing``).
- ``value_not_allowed``: a value outside an enum's values, or not of the attribute's type (bool, number, text), by
  ``maslow.core.schema.attribute_value_ok`` (the rule ``maslow check`` uses too: text that reads as the type, such
  as ``"yes"`` for a bool or ``"3.5"`` for a number, fits, as XML formats can only write text). None and NaN are
  unset.
- ``attribute_not_for_class``: a value of an attribute on a class it does not apply to.
- ``keypoints_mismatch``: keypoints on a class without keypoint names, coordinates past the class's keypoint
  count, visibility outside {0, 1, 2}, or a class with keypoint names whose ``keypoints`` annotation is missing.

Each rule is checked with vectorised code over all rows; each violation becomes one ``Issue`` with its place
(``maslow.io.checks.annotation_place``: the annotation file and the annotation's id when ``source`` names the file,
else the image path and the dataset row) and the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.issues import Issue, Report
from maslow.core.schema import LabelSchema, attribute_value_ok
from maslow.core.types import BoolArray, IntArray
from maslow.io.checks import annotation_place
from maslow.ontology._geometry import LABEL_TYPES, attribute_present, keypoint_present, label_type_columns

_Emit = Callable[..., None]  # (rule, rows, message, field, severity)

RULES = ("unknown_class", "label_type_not_allowed", "wrong_kind", "unknown_attribute",
         "missing_required_attribute", "value_not_allowed", "attribute_not_for_class", "keypoints_mismatch")


def class_map(ds: Dataset, schema: LabelSchema) -> IntArray:
    """(k,) for each class of ``ds.schema``, its index in ``schema`` or -1 when absent (matched by name)."""
    return np.array([schema.index(n) if n in schema else -1 for n in ds.schema.names], np.int64)


def validate(ds: Dataset, schema: LabelSchema, *, rules: Iterable[str] = RULES,
             source: str | Path | None = None) -> Report:
    """Check every annotation of ``ds`` against ``schema``.

    Args:
        ds: the dataset; its classes are matched to the schema's by name.
        schema: the schema to hold it to (e.g. ``load_schema("schema.yaml")``).
        rules: the rules to run (default: all of ``RULES``).
        source: the one annotation file ``ds`` was read from (COCO, CVAT, Label Studio): issues name it and the
            annotation's id where the reader kept one; None names each image's file and the dataset row.

    Returns:
        A Report with one Issue per violation (``Report.counts()`` gives the count per rule), ordered by rule
        then annotation row.

    Example:
        >>> from maslow.sample import shapes
        >>> validate(shapes(8, seed=0), shapes(8, seed=0).schema).counts()
        {}
    """
    rules = set(rules)
    bad = rules - set(RULES)
    if bad:
        from maslow.errors import SchemaError

        raise SchemaError(f"validate: rules must be among {', '.join(RULES)}, got {sorted(bad)}")
    names = ds.schema.names
    ann = ds.annotations
    out: list[Issue] = []

    def add(type_: str, rows: IntArray, msg: str, field: str, severity: str = "error") -> None:
        for r in rows.tolist():
            out.append(Issue(type=type_, severity=severity, message=msg.format(cls=names[ann.label[r]], row=r),
                             field=field, **annotation_place(ds, r, source=source)))

    _check(ds, schema, rules, add)
    order = {r: i for i, r in enumerate(RULES)}
    out.sort(key=lambda i: (order[i.type], i.annotation if i.annotation is not None else -1))
    return Report(tuple(out))


def count_violations(ds: Dataset, schema: LabelSchema) -> tuple[dict[str, int], int]:
    """What ``validate(ds, schema)`` finds, counted without making an Issue per violation: (violations per rule,
    most frequent first, as ``Report.counts()``; the number of annotations with any)."""
    counts: dict[str, int] = {}
    rows: list[IntArray] = []

    def add(type_: str, r: IntArray, msg: str, field: str, severity: str = "error") -> None:
        if len(r):
            counts[type_] = counts.get(type_, 0) + len(r)
            rows.append(r)

    _check(ds, schema, set(RULES), add)
    n = len(np.unique(np.concatenate(rows))) if rows else 0
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], RULES.index(kv[0])))), n


def _check(ds: Dataset, schema: LabelSchema, rules: set[str], add: _Emit) -> None:
    """Run ``rules``; ``add(rule, rows, message, field, severity)`` gets each violation's rows."""
    ann = ds.annotations
    n = len(ann)
    cmap = class_map(ds, schema)
    target = cmap[ann.label] if n else np.zeros(0, np.int64)
    known = target >= 0
    # per-class tables below get one padding row (index k) that rows of unknown classes look up, so a schema
    # without classes works too; every use is masked with `known`
    safe = np.where(known, target, len(schema.classes))
    names = ds.schema.names
    if "unknown_class" in rules:
        add("unknown_class", np.flatnonzero(~known),
            "class {cls!r} is not in the schema; add it or migrate the annotation", "label")
    geo = label_type_columns(ann)
    # per schema class: allowed label types as a (k_schema, 5) table, then one lookup per row
    allowed = np.array([[not c.label_types or t in c.label_types for t in LABEL_TYPES] for c in schema.classes]
                       + [[True] * len(LABEL_TYPES)], bool)
    if "label_type_not_allowed" in rules and n:
        for j, t in enumerate(LABEL_TYPES):
            rows = np.flatnonzero(known & geo[t] & ~allowed[safe, j])
            add("label_type_not_allowed", rows,
                f"class {{cls!r}} must not carry a {t} (schema label_types omit it)", t if t != "tag" else "label")
    if "wrong_kind" in rules and n:
        semantic = np.array([c.kind == "semantic" for c in schema.classes] + [False], bool)
        sem = known & semantic[safe]
        if sem.any():
            key = ann.image.astype(np.int64) * (len(names) + 1) + ann.label
            _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
            rows = np.flatnonzero(sem & (cnt[inv] > 1))
            add("wrong_kind", rows, "class {cls!r} is semantic: one region per image, got several in this image",
                "label")
            # a region is a mask, or a polygon the class's label_types allow (COCO writes a box beside every
            # polygon: that box is the region's extent, not an instance)
            region = geo["mask"] | (geo["polygon"] & allowed[safe, LABEL_TYPES.index("polygon")])
            rows = np.flatnonzero(sem & ~region & (geo["box"] | geo["keypoints"]))
            add("wrong_kind", rows, "class {cls!r} is semantic: it must be a region (a mask, or a polygon its "
                "label_types allow), got a box or keypoints without one", "mask")
    _attribute_issues(ds, schema, target, known, rules, add)
    if "keypoints_mismatch" in rules and n:
        k_of = np.array([len(c.keypoints) for c in schema.classes] + [0], np.int64)[safe]
        has = keypoint_present(ann)
        rows = np.flatnonzero(known & has & (k_of == 0))
        add("keypoints_mismatch", rows, "class {cls!r} has no keypoint names in the schema, got keypoints",
            "keypoints")
        if ann.keypoints is not None and ann.keypoints.shape[1]:
            kp = ann.keypoints
            col = np.arange(kp.shape[1])[None, :]
            beyond = (~np.isnan(kp[:, :, 0]) & (col >= k_of[:, None])).any(1)
            rows = np.flatnonzero(known & has & (k_of > 0) & beyond)
            add("keypoints_mismatch", rows, "class {cls!r}: keypoints past the schema's keypoint count", "keypoints")
            # a keypoints array narrower than a class's names is not a violation: the points it has no column
            # for are unlabelled, as NaN columns would be (datasets are padded with NaN when joined)
            v = kp[:, :, 2]
            with np.errstate(invalid="ignore"):
                badv = (~np.isnan(v) & ~np.isin(v, (0.0, 1.0, 2.0))).any(1)
            # a visibility outside 0/1/2 is wrong whatever the class, known or not (as a value_not_allowed)
            add("keypoints_mismatch", np.flatnonzero(badv), "class {cls!r}: visibility must be 0, 1 or 2",
                "keypoints")
        need = np.array([bool(c.keypoints) and "keypoints" in c.label_types and set(c.label_types) == {"keypoints"}
                         for c in schema.classes] + [False], bool)
        rows = np.flatnonzero(known & need[safe] & ~has)
        add("keypoints_mismatch", rows, "class {cls!r} is labelled by keypoints only, got none", "keypoints")


def _braces(s: str) -> str:
    return s.replace("{", "{{").replace("}", "}}")


def _attribute_issues(ds: Dataset, schema: LabelSchema, target: IntArray, known: BoolArray, rules: set[str],
                      emit: _Emit) -> None:
    ann = ds.annotations
    n = len(ann)
    defined = {a.name for a in schema.attributes}
    for name, col in ann.attributes.items():
        if name in defined or "unknown_attribute" not in rules:
            continue
        rows = np.flatnonzero(attribute_present(col))
        emit("unknown_attribute", rows, f"attribute {name!r} is not in the schema", f"attributes.{name}", "warning")
    safe_target = np.where(known, target, len(schema.classes))  # padding row for unknown classes
    for a in schema.attributes:
        acol = ann.attributes.get(a.name)
        present = attribute_present(acol) if acol is not None else np.zeros(n, bool)
        if a.classes:
            applies_k = np.array([c.name in a.classes for c in schema.classes] + [False], bool)
            applies = known & applies_k[safe_target]
        else:
            applies = known.copy()
        if "missing_required_attribute" in rules and a.required:
            crowd = ann.iscrowd if ann.iscrowd is not None else np.zeros(n, bool)
            emit("missing_required_attribute", np.flatnonzero(applies & ~present & ~crowd),
                 f"class {{cls!r}}: attribute {a.name!r} is required, got no value", f"attributes.{a.name}")
        if "attribute_not_for_class" in rules and a.classes:
            emit("attribute_not_for_class", np.flatnonzero(known & present & ~applies),
                 f"attribute {a.name!r} applies to {', '.join(a.classes)} only, got a value on {{cls!r}}",
                 f"attributes.{a.name}")
        if "value_not_allowed" in rules and acol is not None and present.any():
            col = acol
            rows = np.flatnonzero(present)
            # one check per distinct value, then broadcast (values repeat a lot)
            vals = col[rows]
            keys = np.array([f"{type(v).__name__}:{v!r}" for v in vals], dtype=object)
            _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
            ok_u = np.array([attribute_value_ok(a, vals[i]) for i in first], bool)
            bad_rows = rows[~ok_u[inv]]
            expected = (f"one of {', '.join(a.values)}" if a.type == "enum" or (a.type == "text" and a.values)
                        else {"bool": "true or false (or 1/0, yes/no)", "number": "a number", "text": "a string"}[a.type])
            for r in bad_rows.tolist():
                emit("value_not_allowed", np.array([r]),
                     f"attribute {a.name!r} must be {expected}, got {_braces(repr(col[r]))}", f"attributes.{a.name}")
