"""Oriented boxes in COCO records: hotcoco's ``obb`` and Ultralytics' ``rbox``/``poly``. Private to ``coco`` and
``coco_results``.

Glossary (the keys, in the order they win when a record has several):

- ``poly``: ``[x1, y1, ..., x4, y4]``, the four corners in pixels, as Ultralytics' ``predictions.json`` (``yolo val
  task=obb save_json=True``) writes them: ``xywhr2xyxyxyxy`` of its ``rbox``, rounded to 3 decimals, corner order
  (+w/2, +h/2), (+w/2, -h/2), (-w/2, -h/2), (-w/2, +h/2).
- ``rbox``: ``[cx, cy, w, h, angle]`` beside ``poly`` in that file, rounded to 3 decimals.
- ``obb``: ``[cx, cy, w, h, angle]``, hotcoco's COCO extension (truth and results; ``COCOeval(gt, dt, "obb")``).

Both ``[cx, cy, w, h, angle]`` are ``maslow.core.obb``'s ``xywhr``: pixels, radians, corners ``corners_from_xywhr``.

Read: a record with one of these keys and no ``segmentation`` (none, ``[]``, or one dropped as malformed) is an
oriented box: ``polygon`` is one ring of its 4 corners (``poly`` where given, else those of ``rbox``/``obb``),
``box`` the file's ``bbox`` where given, else the corners' extent (no ``coco_bad_bbox`` for a missing ``bbox``), and
``annotations.extra["coco_obb"]`` ((n, 5) float64, NaN rows elsewhere) keeps the ``rbox``/``obb`` as read
(``poly`` alone: the ``xywhr`` of its corners): the writers' marker. A record with a ``segmentation`` keeps it as
its shape; its ``obb``/``rbox``/``poly`` stay in ``annotations.extra`` under their own names, written back as they
are (one ``coco_obb_with_segmentation`` info finding). Keys that give different boxes (beyond Ultralytics'
rounding: ``ROUNDING_PX`` + ``ROUNDING_REL`` x the half diagonal, corners compared in any order) are one
``coco_obb_disagree`` warning; the first key wins. A value that is not a list of 8 (``poly``) or 5 finite numbers,
or a negative ``w``/``h``, raises FormatError (a zero size is read: a degenerate box is data, for ``quality``).

Write: an annotation whose polygon is one ring of 4 points (and that has no mask) is written as ``obb`` (no
``segmentation``) where its ``coco_obb`` row is set, or for every such annotation with ``obb=True``. The value is the
``coco_obb`` row where its corners are the polygon's to the bit (not edited since: the file's numbers back), else the
``xywhr_from_corners`` of the polygon; a polygon that is not a rectangle (a corner off by more than ``RECT_PX``)
gets its minimum-area enclosing rectangle, counted in ``lost["polygon"]``. Ultralytics' keys are read, not written.
A results record of an oriented box has a ``bbox`` only where the record read had one (``coco_obb_bbox``, kept by
the results reader where some had): hotcoco's ``loadRes``, like pycocotools', types the file by its first record:
when that one has a ``bbox``, every detection's area is its ``bbox``'s ``w * h`` (``coco_map(pred_area="box")``),
else its ``w * h`` (``pred_area="geometry"``, the default); the area decides which detections an area range ignores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.obb import corners_from_xywhr, xywhr_from_corners
from maslow.core.polygons import Polygons, offsets
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import FormatError
from maslow.io._common import Collector

#: The record keys of an oriented box, the first given winning; the numbers each holds, and what they are.
KEYS = ("poly", "rbox", "obb")
_SHAPE = {"poly": (8, "[x1, y1, x2, y2, x3, y3, x4, y4] (8 numbers)"),
          "rbox": (5, "[cx, cy, w, h, angle] (5 numbers, angle in radians)"),
          "obb": (5, "[cx, cy, w, h, angle] (5 numbers, angle in radians)")}
#: The numbers each key holds.
LENGTHS = {k: length for k, (length, _) in _SHAPE.items()}
#: ``annotations.extra`` column: per annotation read as an oriented box, its ``[cx, cy, w, h, angle]`` as read.
COLUMN = "coco_obb"
#: ``annotations.extra`` column of results: (n,) bool, the oriented boxes whose record had a ``bbox`` too.
BBOX_COLUMN = "coco_obb_bbox"
#: Two keys of one record give the same box when no corner is further than this from the other's (pixels), plus
#: ``ROUNDING_REL`` x the box's half diagonal: Ultralytics rounds ``poly`` and ``rbox`` (angle too) to 3 decimals.
ROUNDING_PX, ROUNDING_REL = 5e-3, 1e-3
#: A 4-point polygon is a rectangle when the rectangle of its ``xywhr_from_corners`` is no further off (pixels).
RECT_PX = 1e-2


def with_key(items: list[dict[str, Any]], keys: set[str]) -> BoolArray:
    """(n,) the records of ``items`` (whose keys are ``keys``) that carry an oriented box (a ``bbox`` is then
    optional)."""
    out = np.zeros(len(items), bool)
    for k in keys.intersection(KEYS):
        try:
            vals = list(map(itemgetter(k), items))
        except KeyError:
            vals = [d.get(k) for d in items]
        out |= np.fromiter((v is not None for v in vals), bool, len(items))
    return out


@dataclass(frozen=True)
class Oriented:
    """The records read as oriented boxes: their indexes (ascending), (k, 4, 2) corners and (k, 5) ``xywhr``."""

    rows: IntArray
    corners: FloatArray
    xywhr: FloatArray


def read_oriented(extras: dict[str, np.ndarray], shaped: BoolArray, src: Path, record: Callable[[int], str],
                  col: Collector) -> Oriented | None:
    """Take the oriented boxes out of ``extras`` (the unknown-key columns of every record, changed in place: what is
    read as a box leaves them; a key's column holds its values as read, or is (n, 5 or 8) float64 from the C kernel,
    see ``_parse``); ``shaped``: (n,) the records with a segmentation (their keys stay in ``extras``). ``record(r)``
    names record ``r`` in messages. None when no record has a key.

    Raises:
        FormatError: a malformed value (names the file, the first such record, the field and the count).
    """
    present = [k for k in KEYS if k in extras]
    if not present:
        return None
    given: dict[str, BoolArray] = {}
    values: dict[str, FloatArray] = {}
    for k in present:
        given[k], values[k] = _parse(extras[k], k, src, record)
    any_key = np.logical_or.reduce([given[k] for k in present])
    both = np.flatnonzero(any_key & shaped)
    if both.size:
        names = "/".join(k for k in present if given[k][both].any())
        col.add("coco_obb_with_segmentation", f"{both.size} annotations have both a segmentation and {names}: the "
                f"segmentation is their shape; {names} kept in annotations.extra and written back as read",
                severity="info", file=src, record=record(int(both[0])), field=names.split("/")[0])
    rows = np.flatnonzero(any_key & ~shaped)
    if not rows.size:
        return None
    every = rows.size == len(shaped)  # every record is an oriented box (the usual case): no gathers

    def at_rows(a: np.ndarray, take: BoolArray | None = None) -> np.ndarray:
        if take is None:
            return a if every else a[rows]
        return a if every and take.all() else a[rows[take]]

    corners = np.empty((len(rows), 4, 2))
    xywhr = np.full((len(rows), 5), np.nan)
    chosen = np.full(len(rows), -1)  # per row: the index in ``present`` of the key that gives its shape
    for i, k in enumerate(present):
        take = at_rows(given[k]) & (chosen < 0)
        if not take.any():
            continue
        chosen[take] = i
        v = at_rows(values[k], take)
        _put(corners, take, v.reshape(-1, 4, 2) if k == "poly" else corners_from_xywhr(v))
    for k in ("rbox", "obb"):  # the xywhr as read: rbox, else obb, else that of poly's corners
        if k in given:
            take = at_rows(given[k]) & np.isnan(xywhr[:, 0])
            _put(xywhr, take, at_rows(values[k], take))
    rest = np.isnan(xywhr[:, 0])
    if rest.any():
        xywhr[rest] = xywhr_of(corners[rest])
    _disagreements(present, given, values, rows, chosen, corners, src, record, col)
    for k in present:  # what was read as a box leaves extras; a column left empty goes
        left = _left(extras[k], rows)
        if left is None:
            del extras[k]
        else:
            extras[k] = left
    return Oriented(rows=rows, corners=corners, xywhr=xywhr)


def _put(out: np.ndarray, take: BoolArray, v: np.ndarray) -> None:
    """``out[take] = v``, a plain copy where ``take`` is every row."""
    if take.all():
        out[...] = v
    else:
        out[take] = v


def _left(column: np.ndarray, rows: IntArray) -> np.ndarray | None:
    """An extras column without the values read as boxes (at ``rows``): (n,) object, None where absent; None when
    no value is left."""
    if column.ndim == 1:
        left = column.astype(object)
        left[rows] = None
        return None if all(v is None for v in left.tolist()) else left
    given = ~np.isnan(column[:, 0])  # the kernel's (see _parse): none left, its records have no segmentation
    given[rows] = False
    if not given.any():
        return None
    out = np.full(len(column), None, object)
    for j in np.flatnonzero(given).tolist():
        out[j] = column[j].tolist()
    return out


def _parse(column: np.ndarray, key: str, src: Path, record: Callable[[int], str]) -> tuple[BoolArray, FloatArray]:
    """(n,) where ``key`` is given (not null) and (n, 5 or 8) its numbers (NaN rows elsewhere), checked.

    ``column``: the values as read, or (n, 5 or 8) float64 from the C kernel (``_coco_native``), NaN rows where
    absent: lists of as many finite numbers, ``w``/``h`` >= 0, in records without a segmentation (the kernel leaves
    any other value in a column of values as read, which this function reports or ``read_oriented`` keeps).
    """
    length, what = _SHAPE[key]
    if column.ndim == 2:
        return ~np.isnan(column[:, 0]), column
    vals = column.tolist()
    n = len(vals)
    given = np.fromiter((v is not None for v in vals), bool, n)
    out = np.full((n, length), np.nan)
    rows = np.flatnonzero(given)
    got = vals if rows.size == n else [vals[j] for j in rows.tolist()]

    def ok(v: Any) -> bool:
        return type(v) is list and len(v) == length and all(type(x) is int or type(x) is float for x in v)

    plain = (set(map(type, got)) <= {list} and set(map(len, got)) <= {length}
             and set(map(type, chain.from_iterable(got))) <= {int, float})
    bad = [] if plain else [j for j, v in zip(rows.tolist(), got, strict=True) if not ok(v)]
    if bad:
        raise FormatError(f"{key} must be {what}, got {_short(vals[bad[0]])} ({len(bad)} records)", path=src,
                          record=record(bad[0]), field=key)
    try:
        arr = np.fromiter(chain.from_iterable(got), np.float64, length * len(got)).reshape(-1, length)
    except OverflowError:  # an integer past the largest float
        arr = np.full((len(got), length), np.inf)
    wrong = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if wrong.size:
        j = int(rows[wrong[0]])
        raise FormatError(f"{key} must be finite numbers, got {_short(vals[j])} ({wrong.size} records)", path=src,
                          record=record(j), field=key)
    if length == 5:
        wrong = np.flatnonzero((arr[:, 2] < 0) | (arr[:, 3] < 0))
        if wrong.size:
            j = int(rows[wrong[0]])
            raise FormatError(f"{key} width and height must be >= 0, got {_short(vals[j])} ({wrong.size} records)",
                              path=src, record=record(j), field=key)
    out[rows] = arr
    return given, out


def _short(v: Any, limit: int = 80) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _disagreements(present: list[str], given: dict[str, BoolArray], values: dict[str, FloatArray], rows: IntArray,
                   chosen: IntArray, corners: FloatArray, src: Path, record: Callable[[int], str],
                   col: Collector) -> None:
    """One ``coco_obb_disagree`` per key that gives another box than the key read, where both are given."""
    for i, k in enumerate(present):
        other = given[k][rows] & (chosen != i)
        if not other.any():
            continue
        v = values[k][rows[other]]
        theirs = v.reshape(-1, 4, 2) if k == "poly" else corners_from_xywhr(v)
        ours = corners[other]
        d = np.linalg.norm(ours[:, :, None, :] - theirs[:, None, :, :], axis=-1)  # (m, 4, 4), any corner order
        off = np.maximum(d.min(axis=2).max(axis=1), d.min(axis=1).max(axis=1))
        half = np.linalg.norm(ours - ours.mean(axis=1, keepdims=True), axis=-1).max(axis=1)
        bad = np.flatnonzero(off > ROUNDING_PX + ROUNDING_REL * half)
        if bad.size:
            j = int(bad[0])
            r = int(rows[other][j])
            won = present[int(chosen[other][j])]
            col.add("coco_obb_disagree", f"{k} must give the box {won} gives, {bad.size} records differ by more than "
                    f"rounding (first: a corner {off[j]:.3g} px off); {won} is read", severity="warning", file=src,
                    record=record(r), field=k)


def xywhr_of(corners: FloatArray) -> FloatArray:
    """``xywhr_from_corners``, with the angle of a box of zero width taken from its other side."""
    out = xywhr_from_corners(corners)
    flat = (out[:, 2] == 0) & (out[:, 3] > 0)
    if flat.any():
        side = corners[flat, 3] - corners[flat, 0]  # along v = (-sin r, cos r): r = its angle - pi/2
        r = np.arctan2(side[:, 1], side[:, 0]) - math.pi / 2
        out[flat, 4] = np.where(r <= -math.pi, r + 2 * math.pi, r)
    return out


def with_corners(polygon: Polygons, rows: IntArray, corners: FloatArray) -> Polygons:
    """``polygon`` with one ring of 4 ``corners`` at ``rows`` (rows without a polygon)."""
    n = len(polygon)
    if not len(polygon.xy):  # no other polygon (the usual case): built flat
        counts = np.zeros(n, np.int64)
        counts[rows] = 1
        return Polygons(corners.reshape(-1), np.arange(len(rows) + 1, dtype=np.int64) * 8, offsets(counts),
                        counts == 0)
    out: list[Any] = polygon.tolist()
    for r, c in zip(rows.tolist(), corners, strict=True):
        out[r] = [c.reshape(-1)]
    return Polygons.from_rows(out)


def fill_extent(box: FloatArray, found: Oriented) -> FloatArray:
    """``box`` (a copy where changed) with the corners' extent at the oriented rows without a box."""
    every = len(found.rows) == len(box)  # rows ascending: every row
    nan = np.isnan(box if every else box[found.rows])
    missing = nan[:, 0] | nan[:, 1] | nan[:, 2] | nan[:, 3]
    if not missing.any():
        return box
    out = box.copy()
    c = found.corners if missing.all() else found.corners[missing]
    # min/max over the 4 corners as elementwise pairs (what .min(1)/.max(1) give, zeros' signs and NaN too: 2x faster)
    lo = np.minimum(np.minimum(c[:, 0], c[:, 1]), np.minimum(c[:, 2], c[:, 3]))
    hi = np.maximum(np.maximum(c[:, 0], c[:, 1]), np.maximum(c[:, 2], c[:, 3]))
    extent = np.concatenate([lo, hi], axis=1)
    if every and missing.all():
        out[...] = extent
    else:
        out[found.rows[missing]] = extent
    return out


def column(n: int, found: Oriented) -> FloatArray:
    """The (n, 5) ``coco_obb`` column of ``found``."""
    out = np.full((n, 5), np.nan)
    out[found.rows] = found.xywhr
    return out


# -- writing ---------------------------------------------------------------------------------------------------
def for_write(ds: Dataset, *, force: bool) -> tuple[BoolArray, FloatArray, BoolArray]:
    """(n,) the annotations written as ``obb`` (see the module docstring; ``force``: every 4-point polygon), (n, 5)
    their ``[cx, cy, w, h, angle]`` (NaN elsewhere), and (n,) those of them whose polygon is not a rectangle."""
    a = ds.annotations
    n = len(a)
    sel, out, bent_rows = np.zeros(n, bool), np.full((n, 5), np.nan), np.zeros(n, bool)
    p = a.polygon
    kept = _kept_column(a.extra.get(COLUMN), n)
    if p is None or not n or (kept is None and not force):
        return sel, out, bent_rows
    cand = np.ones(n, bool) if force else np.isfinite(kept).all(axis=1) if kept is not None else sel
    one = p.n_rings == 1
    first = p.row_offsets[:-1]
    ring_len = np.zeros(n, np.int64)
    ring_len[one] = p.ring_offsets[first[one] + 1] - p.ring_offsets[first[one]]
    sel = cand & one & (ring_len == 8)
    if a.mask is not None:
        sel &= np.fromiter((m is None for m in a.mask.tolist()), bool, n)
    idx = np.flatnonzero(sel)
    if not idx.size:
        return sel, out, bent_rows
    corners = p.xy[p.ring_offsets[first[idx]][:, None] + np.arange(8)].reshape(-1, 4, 2)
    val = xywhr_of(corners)
    exact = np.zeros(len(idx), bool)
    if kept is not None:
        k = kept[idx]
        with np.errstate(invalid="ignore"):
            exact = (corners_from_xywhr(k) == corners).all(axis=(1, 2))  # NaN rows: False
        val[exact] = k[exact]
    rest = np.flatnonzero(~exact)
    bent = rest[np.abs(corners_from_xywhr(val[rest]) - corners[rest]).max(axis=(1, 2)) > RECT_PX] if rest.size \
        else rest
    if bent.size:
        from maslow.io._yolo_obb import min_area_rect  # here: reading COCO doesn't need it

        for j in bent.tolist():
            val[j] = xywhr_of(min_area_rect(corners[j])[None])[0]
    out[idx] = val
    bent_rows[idx[bent]] = True
    return sel, out, bent_rows


def _kept_column(col: np.ndarray | None, n: int) -> FloatArray | None:
    """The ``coco_obb`` column as (n, 5) float64, None where absent or not that (a column made elsewhere)."""
    if col is None:
        return None
    try:
        arr = np.asarray(col, np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n, 5) else None


def written_note(n_obb: int, n_bent: int) -> str | None:
    """The writers' note on the oriented boxes written."""
    if not n_obb:
        return None
    bent = f"; {n_bent} 4-point polygons that are not rectangles written as their smallest enclosing rectangle " \
        "(lost['polygon'])" if n_bent else ""
    return f"{n_obb} oriented boxes written as obb [cx, cy, w, h, angle] (hotcoco's key), without segmentation{bent}"
