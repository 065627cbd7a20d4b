"""Keypoint names and the points they label: a change of a class's keypoint names moves the points by name.

Annotations hold keypoints by position (``keypoints[:, K, :]``), and the class's ``keypoints`` name the positions.
So a schema that reorders, inserts or removes keypoint names must move each annotation's points with them, or every
point would keep its coordinates under another name. ``relabel_keypoints`` does that for one class:

- a name in both lists: its point moves to the name's new position (a reorder permutes the columns);
- a new name: an unlabelled point, ``(0, 0, 0)`` as the readers give a COCO ``v = 0`` point, on the rows that have
  keypoints (rows without keypoints stay all NaN);
- a name removed: its point is dropped (NaN); a row whose dropped point held anything (not NaN, not ``(0, 0, 0)``)
  counts as lost;
- a class that named no keypoints before: its points had no names to match, so they keep their positions and the
  new names label them in order;
- points past the old names (unnamed: ``validate`` reports them) keep their positions, unless a new name takes that
  position (then they are lost).

A renamed keypoint is not a removed plus an added one: ``RenameKeypoints`` says so (the points stay where they are).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray
from maslow.errors import MigrationError
from maslow.ontology._step import Step, StepResult, need_class


def held(points: FloatArray) -> BoolArray:
    """(..., K) whether each point holds anything: not all NaN and not ``(0, 0, 0)`` (an unlabelled COCO point)."""
    empty = np.isnan(points).all(-1) | (np.nan_to_num(points) == 0).all(-1)
    out: BoolArray = ~empty
    return out


def remap_skeleton(skeleton: Sequence[tuple[int, int]], old: Sequence[str], new: Sequence[str]
                   ) -> tuple[tuple[int, int], ...]:
    """The edges of ``skeleton`` (indexes into ``old``) as indexes into ``new``, by name; an edge to a removed
    name is dropped."""
    at = {n: i for i, n in enumerate(new)}
    return tuple((at[old[a]], at[old[b]]) for a, b in skeleton if old[a] in at and old[b] in at)


def relabel_keypoints(ds: Dataset, class_index: int, new: Sequence[str]) -> tuple[Dataset, int, int]:
    """``ds`` with the points of class ``class_index`` moved from its current keypoint names to ``new`` by name
    (the schema is not changed); (dataset, rows whose keypoints changed, rows that lost a point)."""
    old = ds.schema.classes[class_index].keypoints
    ann = ds.annotations
    if not old or tuple(old) == tuple(new) or ann.keypoints is None:
        return ds, 0, 0
    kp = ann.keypoints
    n, width = kp.shape[0], kp.shape[1]
    k_old, k_new = len(old), len(new)
    rows = np.flatnonzero((ann.label == class_index) & ~np.isnan(kp[:, :, 0]).all(1))
    if not len(rows):
        return ds, 0, 0
    out_width = max(width, k_new)  # a point the array has no column for is unlabelled (NaN)
    sub = np.full((len(rows), max(out_width, k_old), 3), np.nan)
    sub[:, :width] = kp[rows]
    moved = sub[:, :out_width].copy()
    pos = {name: i for i, name in enumerate(old)}
    for j in range(out_width):
        if j < k_new:
            s = pos.get(new[j], -1)
            moved[:, j] = sub[:, s] if s >= 0 else (0.0, 0.0, 0.0)
        elif j < k_old:
            moved[:, j] = np.nan  # a named position past the new names
    kept = set(new)
    gone = np.array([(j < k_old and old[j] not in kept) or k_old <= j < k_new for j in range(sub.shape[1])], bool)
    lost = (held(sub) & gone[None, :]).any(1)  # a dropped name's point, or an unnamed one a new name takes
    before = sub[:, :out_width]
    changed = ~((moved == before) | (np.isnan(moved) & np.isnan(before))).all(axis=(1, 2))
    out = np.full((n, out_width, 3), np.nan)
    out[:, :width] = kp
    out[rows] = moved
    return ds.replace(annotations=ann.with_columns(keypoints=out)), int(changed.sum()), int(lost.sum())


@dataclass(frozen=True)
class RenameKeypoints(Step):
    """Rename keypoints of a class (``names``: old name -> new name); the points keep their positions and the
    skeleton its edges (touched: the class's annotations with keypoints)."""

    class_: str
    names: Mapping[str, str] = field(default_factory=dict)
    op: ClassVar[str] = "rename_keypoints"

    def apply(self, ds: Dataset) -> StepResult:
        where = self.describe()
        i = need_class(ds, self.class_, where)
        c = ds.schema.classes[i]
        unknown = [k for k in self.names if k not in c.keypoints]
        if unknown:
            raise MigrationError(f"{where}: keypoint {unknown[0]!r} must be a keypoint of class {c.name!r}; its "
                                 f"keypoints: {list(c.keypoints)}")
        names = tuple(self.names.get(k, k) for k in c.keypoints)
        again = next((k for j, k in enumerate(names) if k in names[:j]), None)
        if again is not None or any(not isinstance(k, str) or not k for k in names):
            raise MigrationError(f"{where}: the new keypoint names must be non-empty and unique, got "
                                 f"{list(names)}")
        classes = list(ds.schema.classes)
        classes[i] = replace(c, keypoints=names)
        ann = ds.annotations
        has = np.zeros(len(ann), bool) if ann.keypoints is None else ~np.isnan(ann.keypoints[:, :, 0]).all(1)
        touched = int(((ann.label == i) & has).sum()) if names != c.keypoints else 0
        return StepResult(ds.replace(schema=replace(ds.schema, classes=tuple(classes))), touched)
