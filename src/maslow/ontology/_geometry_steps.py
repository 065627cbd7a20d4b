"""Migration steps that change geometry: ``SetLabelTypes`` (box-only targets) and ``BoxesFromMasks``.

``SetLabelTypes`` sets a class's label types as asked and clears the geometry they omit; ``BoxesFromMasks`` adds
``box`` to the label types of the classes it gives boxes, so data valid under the old schema stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.core.types import BoolArray, FloatArray
from maslow.ontology._geometry import cleared, keypoint_present, label_type_columns, present
from maslow.ontology._step import Step, StepResult, need_class


def _boxes_from_geometry(ann: Annotations, box: FloatArray, target: BoolArray) -> BoolArray:
    """Set ``box[r]`` for the ``target`` rows from the mask (pycocotools' toBbox) or else the polygon (vertex
    extent); returns the rows set."""
    n = len(ann)
    done = np.zeros(n, bool)
    if ann.mask is not None:
        rows = np.flatnonzero(target & present(ann.mask, n))
        if rows.size:
            box[rows] = M.to_box(list(ann.mask[rows]))
            done[rows] = True
    if ann.polygon is not None:
        for r in np.flatnonzero(target & ~done & ann.polygon.present).tolist():
            b = M.polygon_box(ann.polygon[r] or [])
            if np.isfinite(b).all():  # a polygon without a ring has no extent: no box made (a box kept)
                box[r] = b
                done[r] = True
    return done


@dataclass(frozen=True)
class SetLabelTypes(Step):
    """Set a class's allowed label types; geometry of other types is cleared (lossy when any is).

    When ``box`` is allowed, a row of an ``object`` class that would be left with no geometry gets the box of the
    mask or polygon cleared from it (as ``BoxesFromMasks``), so a box-only target keeps every object's extent. A
    ``semantic`` class gets no box (a box without a region, mask or allowed polygon, is the wrong kind).
    """

    class_: str
    label_types: tuple[str, ...]
    op: ClassVar[str] = "set_label_types"

    def apply(self, ds: Dataset) -> StepResult:
        i = need_class(ds, self.class_, self.describe())
        classes = list(ds.schema.classes)
        classes[i] = replace(classes[i], label_types=tuple(self.label_types))
        ann = ds.annotations
        rows = ann.label == i
        allowed = set(self.label_types) or {"box", "mask", "polygon", "keypoints", "tag"}
        changes: dict[str, Any] = {}
        lost = np.zeros(len(ann), bool)
        geo = label_type_columns(ann)
        if "box" in allowed and ann.box is not None and classes[i].kind == "object":
            kept = np.zeros(len(ann), bool)
            for t in ("mask", "polygon", "keypoints"):
                kept |= geo[t] & (t in allowed)
            boxless = rows & ~ann.has_box & ~kept & (geo["mask"] | geo["polygon"])
            if boxless.any():
                box = ann.box.copy()
                _boxes_from_geometry(ann, box, boxless)
                changes["box"] = box
        if "box" not in allowed and ann.box is not None:
            hit = rows & ann.has_box
            box = ann.box.copy()
            box[hit] = np.nan
            changes["box"], lost = box, lost | hit
        for name in ("mask", "polygon"):
            col = getattr(ann, name)
            if name not in allowed and col is not None:
                hit = rows & present(col, len(ann))
                changes[name], lost = cleared(col, hit), lost | hit
        if "keypoints" not in allowed and ann.keypoints is not None:
            hit = rows & keypoint_present(ann)
            kp = ann.keypoints.copy()
            kp[hit] = np.nan
            changes["keypoints"], lost = kp, lost | hit
        n = int(lost.sum())
        return StepResult(ds.replace(schema=replace(ds.schema, classes=tuple(classes)),
                                     annotations=ann.with_columns(**changes)), n, n)


@dataclass(frozen=True)
class BoxesFromMasks(Step):
    """Derive boxes from masks (pycocotools' toBbox) or polygons (vertex extent) where a row has no box.

    ``classes`` limits it (empty: all); ``overwrite`` recomputes existing boxes too (lossy where one changes);
    ``keep_geometry=False`` clears the masks and polygons afterwards (a box-only target: lossy) of the rows that have
    a box then (a polygon without rings has no extent: its row keeps it, and no box). ``box`` is added
    to the label types of each object class it applies to whose label types name a mask or a polygon. Semantic
    classes are left alone (a region with a box and no mask is the wrong kind), as by ``SetLabelTypes``.
    """

    classes: tuple[str, ...] = ()
    overwrite: bool = False
    keep_geometry: bool = True
    op: ClassVar[str] = "boxes_from_masks"

    def apply(self, ds: Dataset) -> StepResult:
        ann = ds.annotations
        n = len(ann)
        named = {need_class(ds, c, self.describe()) for c in self.classes}
        on = [i for i, c in enumerate(ds.schema.classes) if c.kind == "object" and (not named or i in named)]
        sel = np.isin(ann.label, on)
        box = ann.box.copy() if ann.box is not None else np.full((n, 4), np.nan)
        had = ann.has_box
        target = sel & (np.ones(n, bool) if self.overwrite else ~had)
        done = _boxes_from_geometry(ann, box, target)
        changes: dict[str, Any] = {"box": box}
        # rows that lose a box (replaced by another), a mask, a polygon or several: each counted once
        lost = done & had & (box != ann.box).any(axis=1)
        if not self.keep_geometry:  # cleared where the row has a box now (an empty polygon stays: no extent)
            boxed = np.isfinite(box).all(axis=1)
            for name in ("mask", "polygon"):
                col = getattr(ann, name)
                if col is not None:
                    hit = sel & present(col, n) & boxed
                    lost |= hit
                    new = cleared(col, hit)
                    changes[name] = None if not present(new, n).any() else new
        classes = [replace(c, label_types=(*c.label_types, "box")) if i in on and c.label_types
                   and "box" not in c.label_types and {"mask", "polygon"} & set(c.label_types) else c
                   for i, c in enumerate(ds.schema.classes)]
        return StepResult(ds.replace(schema=replace(ds.schema, classes=tuple(classes)),
                                     annotations=ann.with_columns(**changes)), int(done.sum()), int(lost.sum()))
