"""Draft a label schema from the annotations a dataset already has.

For each class: the label types in use (``label_types``), its keypoint count (keypoint names and skeleton are kept
from the dataset's schema; points past its names are named ``kp<i>``), and whether it is ``semantic`` (kept from the
dataset's schema). For each attribute column: its type (bool when every value is a bool, number when every
value is a number, enum when the values are strings with at most ``max_enum_values`` distinct values, else
text), its value set (enum), ``required`` when every annotation of the classes it appears on has a value, and
those classes (empty when it appears on every class). The draft is a starting point to edit, not a verdict.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Real

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef, LabelSchema
from maslow.ontology._geometry import LABEL_TYPES, attribute_present, keypoint_present, label_type_columns


def _attr_type(values: list[object], max_enum_values: int) -> tuple[str, tuple[str, ...]]:
    if all(isinstance(v, bool | np.bool_) for v in values):
        return "bool", ()
    if all(isinstance(v, Real) and not isinstance(v, bool | np.bool_) for v in values):
        return "number", ()
    distinct = sorted({str(v) for v in values})
    if all(isinstance(v, str) for v in values) and len(distinct) <= max_enum_values:
        return "enum", tuple(distinct)
    return "text", ()


def infer_schema(ds: Dataset, *, max_enum_values: int = 20, keep_unused_classes: bool = True) -> LabelSchema:
    """A draft schema describing how ``ds`` is annotated.

    Args:
        ds: the dataset.
        max_enum_values: a string attribute with at most this many distinct values becomes an enum.
        keep_unused_classes: keep classes without annotations (with no label types).

    Returns:
        A LabelSchema with the dataset's tasks, classes (label types in use, keypoints) and attributes.

    Example:
        >>> from maslow.sample import shapes
        >>> s = infer_schema(shapes(12, seed=0))
        >>> s.classes[0].label_types, s.attribute("colour").type
        (('box', 'mask', 'polygon'), 'enum')
    """
    ann = ds.annotations
    k = len(ds.schema.classes)
    geo = label_type_columns(ann)
    used = np.stack([np.bincount(ann.label[geo[t]], minlength=k) > 0 for t in LABEL_TYPES], 1) if len(ann) \
        else np.zeros((k, len(LABEL_TYPES)), bool)
    n_per_class = np.bincount(ann.label, minlength=k)
    has_kp = keypoint_present(ann)
    classes = []
    for j, c in enumerate(ds.schema.classes):
        if not keep_unused_classes and n_per_class[j] == 0:
            continue
        types = tuple(t for i, t in enumerate(LABEL_TYPES) if used[j, i])
        kps, skel = c.keypoints, c.skeleton
        rows = np.flatnonzero((ann.label == j) & has_kp)
        if rows.size and ann.keypoints is not None:
            filled = ~np.isnan(ann.keypoints[rows, :, 0])
            n_kp = int(np.flatnonzero(filled.any(0)).max()) + 1
            if len(kps) < n_kp:  # names for the points the schema does not name; named ones are kept
                kps = (*kps, *(f"kp{i}" for i in range(len(kps), n_kp)))
        classes.append(replace(c, label_types=types, keypoints=kps, skeleton=skel))
    kept = {c.name for c in classes}
    attrs = []
    for name, col in ann.attributes.items():
        present = attribute_present(col)
        if not present.any():
            continue
        values = col[present].tolist()
        type_, enum_values = _attr_type(values, max_enum_values)
        on = np.unique(ann.label[present])
        on_names = tuple(ds.schema.names[i] for i in on if ds.schema.names[i] in kept)
        rows_of_classes = np.isin(ann.label, on)
        required = bool(present[rows_of_classes].all())
        all_classes = set(on_names) >= {ds.schema.names[i] for i in np.flatnonzero(n_per_class)}
        attrs.append(AttributeDef(name=name, type=type_, values=enum_values, required=required,
                                  classes=() if all_classes else on_names))
    return LabelSchema(classes=tuple(classes), tasks=ds.schema.tasks, attributes=tuple(attrs),
                       guidelines=ds.schema.guidelines, version=ds.schema.version)
