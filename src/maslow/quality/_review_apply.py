"""The edits of accepted findings applied to a truth (``maslow.quality.review.apply_decisions``): one pass over the
annotation table that relabels, moves boxes, corners and keypoints, removes rows and appends the added objects."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.obb import ROTATION_COLUMNS, xywhr_from_corners
from maslow.core.polygons import Polygons
from maslow.core.tables import Annotations
from maslow.io._coco_obb import COLUMN as OBB_COLUMN


@dataclass(frozen=True)
class Change:
    """One entry of the change log.

    Attributes:
        key: the finding's ``rank``. type: its type.
        outcome: one of ``OUTCOMES``.
        action: ``relabel``, ``remove``, ``add``, ``move_box``, ``move_polygon`` (an oriented box's corners),
            ``move_keypoints``, ``confirm`` or ``none``.
        annotation_row: the annotation's row in the truth given (None: an added object, an image-level finding).
        new_row: its row in the corrected dataset (None: removed, or nothing changed).
        detail: what was done, or why nothing was.
    """

    key: int
    type: str
    outcome: str
    action: str
    annotation_row: int | None
    new_row: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "outcome": self.outcome, "action": self.action,
                "annotation_row": self.annotation_row, "new_row": self.new_row, "detail": self.detail}


@dataclass(frozen=True, eq=False)
class _Edit:
    key: int
    type: str
    action: str
    row: int  # annotation row, -1 for an added object
    image: int
    value: Any  # label (int), box (4,), corners (V, 2), keypoints (K, 3), None for remove
    detail: str
    drop: int = -1  # a second annotation row the edit removes (class_conflict)
    keep: int = -1  # an annotation row the edit needs kept (the other box of a removed duplicate)
    origin: bytes | None = None  # the object an add or move makes (its image and suggested geometry), None: none


def clip_to_image(truth: Dataset, edits: list[_Edit]) -> list[_Edit]:
    """``edits`` with the box each ``add`` or ``move_box`` writes clipped to its image, when the image's size is known
    (the model's box of a ``missing`` or ``low_iou`` finding may reach a little past the border): the detail says so
    and gives the box written. Left as suggested, with the detail saying why: a box that lies wholly outside the
    image (clipping would leave nothing of it), and an oriented box's corners (clipping them one by one would make
    another shape; its box stays their extent). Keypoints are left as they are."""
    width, height = truth.images.width, truth.images.height
    out = []
    for e in edits:
        box = e.value if e.action == "move_box" else e.value[1] if e.action == "add" else None
        corners = e.value[3] if e.action == "add" else e.value if e.action == "move_polygon" else None
        w, h = (float(width[e.image]), float(height[e.image])) if e.image >= 0 else (0.0, 0.0)
        if w <= 0 or h <= 0 or (box is None and corners is None):
            out.append(e)
            continue
        size = f"the {w:g} x {h:g} image"
        if corners is not None:
            c = np.asarray(corners, np.float64)
            inside = bool(((c[:, 0] >= 0) & (c[:, 0] <= w) & (c[:, 1] >= 0) & (c[:, 1] <= h)).all())
            out.append(e if inside else replace(e, detail=f"{e.detail} (corners reach outside {size}: kept as "
                                                          "suggested)"))
            continue
        b = np.asarray(box, np.float64)
        if not np.isfinite(b).all():
            out.append(e)
            continue
        clipped = np.clip(b, 0.0, [w, h, w, h])
        if np.array_equal(clipped, b):
            out.append(e)
        elif clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            out.append(replace(e, detail=f"{e.detail} (wholly outside {size}: not clipped)"))
        else:
            value = clipped if e.action == "move_box" else (e.value[0], clipped, *e.value[2:])
            text = "[" + ", ".join(f"{float(x):.1f}" for x in clipped) + "]"
            out.append(replace(e, value=value, detail=f"{e.detail} (clipped to {size}: xyxy {text})"))
    return out


def _apply(truth: Dataset, edits: list[_Edit]) -> tuple[Dataset, dict[int, int | None]]:
    """``truth`` with ``edits`` applied, and each edit's row in the result (None: removed)."""
    a = truth.annotations
    n = len(a)
    label = a.label.copy()
    box = a.box.copy() if a.box is not None else np.full((n, 4), np.nan)
    adds = [e for e in edits if e.action == "add"]
    width = max([0 if a.keypoints is None else a.keypoints.shape[1]]
                + [len(e.value[2]) for e in adds if e.value[2] is not None])
    kp = None if not width else _pad(a.keypoints, n, width)
    keep = np.ones(n, bool)
    new_area = np.zeros(n, bool)
    corners: dict[int, np.ndarray] = {}
    for e in edits:
        if e.action in ("relabel", "confirm"):
            label[e.row] = e.value
        elif e.action == "move_box":
            box[e.row] = e.value
            new_area[e.row] = True
        elif e.action == "move_polygon":
            corners[e.row] = e.value
            box[e.row] = np.r_[e.value.min(axis=0), e.value.max(axis=0)]
            new_area[e.row] = True
        elif e.action == "move_keypoints":
            assert kp is not None
            kp[e.row, : len(e.value)] = e.value
        elif e.action == "remove":
            keep[e.row] = False
        if e.drop >= 0:
            keep[e.drop] = False
    extra = dict(a.extra)
    if new_area.any() and "area" in extra:  # the file's area was the old box's: recomputed from the new one
        col = np.array(extra["area"], dtype=np.float64 if extra["area"].dtype.kind in "fiu" else object)
        col[new_area] = np.nan if col.dtype.kind == "f" else None
        extra["area"] = col
    polygon = a.polygon if not corners else _with_corners(a, corners, extra)
    edited = a.with_columns(label=label, box=box, keypoints=kp if kp is not None else a.keypoints, extra=extra,
                            polygon=polygon)
    kept_rows = np.flatnonzero(keep)
    out = edited.take(kept_rows)
    # sorted by image (stable, as sort_rows sorts): an added object follows its image's annotations
    order = np.argsort(np.r_[out.image, [e.image for e in adds]].astype(np.int64), kind="stable")
    if adds:
        out = _append(out, adds, width, _first_new_id(a.extra.get("coco_id")))
    position = np.empty(len(order), np.int64)
    position[order] = np.arange(len(order))
    row_after = np.full(n, -1, np.int64)
    row_after[kept_rows] = position[: len(kept_rows)]
    added_at = {id(e): len(kept_rows) + i for i, e in enumerate(adds)}
    new_rows: dict[int, int | None] = {}
    for e in edits:
        if e.action == "add":
            new_rows[id(e)] = int(position[added_at[id(e)]])
        else:
            new_rows[id(e)] = None if e.action == "remove" else int(row_after[e.row])
    return truth.replace(annotations=out), new_rows


def _with_corners(a: Annotations, corners: dict[int, np.ndarray], extra: dict[str, np.ndarray]) -> Polygons:
    """The polygon column with rows ``corners`` (row -> (4, 2)) set to one ring of those corners; their rotation
    columns (``core.obb.ROTATION_COLUMNS``, in ``extra``, changed there) cleared: the polygon is the box now."""
    rows = np.fromiter(corners, np.int64, count=len(corners))
    ring = np.stack([corners[r] for r in rows.tolist()]).reshape(len(rows), 8)
    poly = a.polygon
    for name, _ in ROTATION_COLUMNS:
        if name in extra:
            col = np.array(extra[name])
            col[rows] = np.nan if col.dtype.kind == "f" else (0 if col.dtype.kind in "iu" else None)
            extra[name] = col
    if poly is not None and bool((poly.n_rings[rows] == 1).all()):
        start = poly.ring_offsets[poly.row_offsets[rows]]
        if bool((poly.ring_offsets[poly.row_offsets[rows] + 1] - start == 8).all()):  # 4 corners in place of 4
            xy = poly.xy.copy()
            xy[start[:, None] + np.arange(8)] = ring
            return Polygons(xy, poly.ring_offsets, poly.row_offsets, poly.null)
    out: list[Any] = poly.tolist() if poly is not None else [None] * len(a)
    for r, values in zip(rows.tolist(), ring, strict=True):
        out[r] = [values]
    return Polygons.from_rows(out)


def _first_new_id(col: np.ndarray | None) -> int | None:
    """The id of the first added object: 1 + the largest integer id of the truth's ``coco_id`` column, removed rows
    included (so a removed object's id never names an added one); None: the truth has no integer ids."""
    if col is None or not len(col):
        return None
    if col.dtype.kind in "iu":
        return int(col.max()) + 1
    vals = col.tolist()
    ids = [int(v) for v in vals if (isinstance(v, int | np.integer) and not isinstance(v, bool))
           or (isinstance(v, float | np.floating) and np.isfinite(v) and v == round(v))]
    return max(ids) + 1 if ids else None


def _append(a: Annotations, adds: list[_Edit], width: int, first_id: int | None = None) -> Annotations:
    """``a`` with one row per ``add`` edit: its image, class, box (NaN: a tag) and keypoints, ``source="human"``,
    its ``coco_id`` ``first_id``, ``first_id + 1``, ... (None: the writer's new ids); every other column filled with
    its "no value" (NaN, -1, None, False)."""
    n, m = len(a), len(adds)
    box = np.asarray([np.full(4, np.nan) if e.value[1] is None else e.value[1] for e in adds], np.float64)
    cols: dict[str, Any] = {
        "image": np.r_[a.image, [e.image for e in adds]],
        "label": np.r_[a.label, [e.value[0] for e in adds]],
        "box": np.concatenate([a.box if a.box is not None else np.full((n, 4), np.nan), box]),
        "score": None if a.score is None else np.r_[a.score, np.full(m, np.nan)],
        "mask": None if a.mask is None else np.concatenate([a.mask, np.full(m, None, object)]),
        "polygon": _added_polygons(a, adds),
        "iscrowd": np.r_[a.iscrowd if a.iscrowd is not None else np.zeros(n, bool), np.zeros(m, bool)],
        "attributes": {k: np.concatenate([v, np.full(m, None, object)]) for k, v in a.attributes.items()},
        "annotator": None if a.annotator is None else np.concatenate([a.annotator, np.full(m, None, object)]),
        "source": np.concatenate([np.asarray(a.source, object), np.full(m, "human", object)]),
        "extra": {k: np.concatenate([v, _filler(v, m)]) for k, v in a.extra.items()},
    }
    if OBB_COLUMN in a.extra:
        cols["extra"][OBB_COLUMN] = _with_obb(cols["extra"][OBB_COLUMN], n, adds)
    if first_id is not None and "coco_id" in a.extra:
        col = a.extra["coco_id"]
        ids = np.arange(first_id, first_id + m, dtype=np.int64)
        new = ids.astype(col.dtype) if col.dtype.kind in "iuf" else np.fromiter(ids.tolist(), object, m)
        cols["extra"]["coco_id"] = np.concatenate([col, new])
    if width:
        added = np.zeros((m, width, 3))
        for i, e in enumerate(adds):
            added[i] = _human_points(e.value[2], width)
        cols["keypoints"] = np.concatenate([_pad(a.keypoints, n, width), added])
    return Annotations.sort_rows(**cols)


def _with_obb(col: np.ndarray, n: int, adds: list[_Edit]) -> np.ndarray:
    """The ``coco_obb`` column (``maslow.io._coco_obb.COLUMN``, ``[cx, cy, w, h, angle]`` of the rows read as
    oriented boxes) with the rows of the added oriented boxes (4 suggested corners) set: the COCO writers write
    ``obb`` only for rows whose column is set, so an added one is written as its neighbours are, not as a polygon
    (which would make the file instance segmentation)."""
    rows = [i for i, e in enumerate(adds) if e.value[3] is not None and len(e.value[3]) == 4]
    if not rows or col.ndim != 2 or col.shape[1] != 5 or col.dtype.kind != "f":
        return col
    out = col.copy()
    out[n + np.asarray(rows)] = xywhr_from_corners(np.stack([np.asarray(adds[i].value[3], np.float64) for i in rows]))
    return out


def _added_polygons(a: Annotations, adds: list[_Edit]) -> Polygons | None:
    """The polygon column with a row per added object: its suggested outline (an oriented box's corners), or
    none; None when neither the table nor an added object has one."""
    rings = [e.value[3] for e in adds]
    if a.polygon is None and all(r is None for r in rings):
        return None
    old = a.polygon if a.polygon is not None else Polygons.none(len(a))
    return Polygons.concat([old, Polygons.from_rows([None if r is None else [np.ravel(r)] for r in rings])])


def _human_points(points: np.ndarray | None, width: int) -> np.ndarray:
    """(width, 3) keypoints of an added object: the model's x, y with v = 2 where it gave a position with v > 0 (or
    no v), else (0, 0, 0), COCO's "not labelled"; all (0, 0, 0) without points."""
    out = np.zeros((width, 3))
    if points is None:
        return out
    k = min(width, len(points))
    p = points[:k]
    with np.errstate(invalid="ignore"):
        on = np.isfinite(p[:, :2]).all(axis=1) & (np.isnan(p[:, 2]) | (p[:, 2] > 0))
    out[:k][on, :2] = p[on, :2]
    out[:k][on, 2] = 2.0
    return out


def _pad(kp: np.ndarray | None, n: int, width: int) -> np.ndarray:
    """A writable (n, width, 3) copy of ``kp``, NaN where it has no value (rows without keypoints, extra points)."""
    out = np.full((n, width, 3), np.nan)
    if kp is not None:
        out[:, : kp.shape[1]] = kp
    return out


def _filler(col: np.ndarray, m: int) -> np.ndarray:
    """``m`` "no value" entries for an extra column like ``col``: NaN, -1 (integer ids: a writer gives new ones),
    False, None."""
    shape = (m, *col.shape[1:])
    if col.dtype.kind == "f":
        return np.full(shape, np.nan, col.dtype)
    if col.dtype.kind in "iu":
        return np.full(shape, -1, np.int64)
    if col.dtype.kind == "b":
        return np.zeros(shape, bool)
    return np.full(shape, None, object)
