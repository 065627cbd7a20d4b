"""The label lines of a YOLO export: every annotation's line in one vectorised pass (boxes, keypoints, box
rectangles, polygons), row by row only for masks traced into polygons.

Private to ``maslow.io.yolo``; see its module docstring for the conventions. Numbers are written as
``fmt_num(v, 6)`` writes them: ``%.6f``, with ``-0.000000`` written ``0.000000`` (``decimals``: another count).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.polygons import offsets
from maslow.core.tables import Annotations
from maslow.errors import InvalidDatasetError
from maslow.io._export import Tally

#: Where each kind of loss is counted within a row (the order a row-by-row writer meets them).
_RANK = {"mask": 0, "polygon_parts": 1, "box": 2, "clipped": 3}


class Traced:
    """Masks written as traced polygons: how many, and the pixels the polygons get wrong."""

    def __init__(self) -> None:
        self.n = self.n_off = self.wrong = self.area = 0

    def add(self, wrong: int, area: int) -> None:
        self.n += 1
        self.n_off += wrong > 0
        self.wrong += wrong
        self.area += area

    def note(self) -> str:
        off = (f"; {self.n_off} of them (other parts, holes) differ from their mask by {self.wrong} pixels "
               f"({100 * self.wrong / max(self.area, 1):.1f} % of the masks' area)") if self.n_off else ""
        return (f"{self.n} masks were traced into polygons (the outer boundary of the largest part, along pixel "
                f"edges; counted in lost['mask']){off}")


def usable_polygons(a: Annotations, start: int = 0, stop: int | None = None) -> np.ndarray:
    """(stop - start,) True where annotation ``start + k`` has a polygon ring of at least 3 points."""
    p = a.polygon
    stop = len(a) if stop is None else stop
    if p is None:
        return np.zeros(stop - start, bool)
    rows = p.row_offsets[start:stop + 1]  # the rings of these rows: rows[0] to rows[-1] - 1
    ok = np.concatenate([[0], np.cumsum(np.diff(p.ring_offsets[rows[0]:rows[-1] + 1]) >= 6)])
    return np.asarray(ok[rows[1:] - rows[0]] - ok[rows[:-1] - rows[0]] > 0)


def _zero(line: str, decimals: int = 6) -> str:
    """``-0.000000`` (a value that rounds to zero from below) written ``0.000000``, as ``fmt_num`` does."""
    neg = "-0." + "0" * decimals
    return " ".join(neg[1:] if t == neg else t for t in line.split(" ")) if neg in line else line


def fmt_line(label: int, values: Any, decimals: int = 6) -> str:
    """One label line: the class id, then the values with ``decimals`` decimals."""
    return _zero(" ".join([str(label), *map(f"{{:.{decimals}f}}".format, values)]), decimals)


def label_lines(ds: Dataset, task: str, w_all: np.ndarray, h_all: np.ndarray, lost: Tally, why: Tally,
                traced: Traced, start: int, stop: int, *, decimals: int = 6, kpt_dims: int = 3) -> list[str | None]:
    """The label line of annotations ``start`` to ``stop - 1`` (None: not written) for ``task`` (detect, segment
    or pose), on images of the sizes ``w_all``, ``h_all``; what YOLO can't hold is counted in ``lost`` and
    ``why`` (not written), each at ``(image, 0, row, rank)``. Values get ``decimals`` decimals; pose keypoints
    ``kpt_dims`` values each (2: ``x y``, a point not labelled written ``0 0``)."""
    a = ds.annotations
    assert a.box is not None
    out: list[str | None] = [None] * (stop - start)
    img = a.image[start:stop]
    W, H = np.asarray(w_all, np.float64)[img], np.asarray(h_all, np.float64)[img]
    sized = (W > 0) & (H > 0)
    shaped = rowwise = np.zeros(len(img), bool)
    if task == "segment":
        rings = usable_polygons(a, start, stop) & sized
        shaped = rings.copy()
        if a.mask is not None:
            shaped |= np.array([m is not None for m in a.mask[start:stop].tolist()], bool) & sized
        rowwise = shaped & ~_polygon_lines(a, np.flatnonzero(rings), start, W, H, img, lost, out, decimals)
    here = np.arange(start, stop)  # the rows' numbers
    _count(why, "on images of unknown size", ~sized, img, here)
    for k in np.flatnonzero(rowwise).tolist():  # masks (and rings of an odd length), row by row
        rl: Counter[str] = Counter()
        rw: Counter[str] = Counter()
        r, i = start + k, int(img[k])
        out[k] = _shape_line(a, r, float(W[k]), float(H[k]), rl, rw, traced, decimals)
        for key, v in rl.items():
            lost.add(key, v, (i, 0, r, _RANK[key]))
        for key, v in rw.items():
            why.add(key, v, (i, 0, r, 0))
    rest = sized & ~shaped
    _count(why, "without a box", rest & ~a.has_box[start:stop], img, here)
    local = np.flatnonzero(rest & a.has_box[start:stop])
    if not len(local):
        return out
    rows = local + start
    w, h = W[local, None], H[local, None]
    scale = np.column_stack([w, h, w, h])
    unit, moved = _clip(a.box[rows] / scale)
    x1, y1, x2, y2 = (unit * scale).T[:, :, None]
    if task == "segment":
        vals = np.column_stack([x1 / w, y1 / h, x2 / w, y1 / h, x2 / w, y2 / h, x1 / w, y2 / h])
        _count(why, "rectangle", np.ones(len(rows), bool), img[local], rows)
    else:
        vals = np.column_stack([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
        if task == "pose":
            assert a.keypoints is not None
            kp = np.nan_to_num(a.keypoints[rows])
            kxy, kp_moved = _clip(kp[:, :, :2] / np.stack([w, h], axis=2))
            moved |= kp_moved
            if kpt_dims == 2:  # no visibility column: a point not labelled is 0 0
                vals = np.column_stack([vals, np.where(kp[:, :, 2:] > 0, kxy, 0.0).reshape(len(rows), -1)])
            else:
                vals = np.column_stack([vals, np.concatenate([kxy, kp[:, :, 2:]], axis=2).reshape(len(rows), -1)])
    _count(lost, "clipped", moved, img[local], rows, _RANK["clipped"])
    cells = [f" %.{decimals}f"] * vals.shape[1]
    fmt = flags = "%d" + "".join(cells)
    whole = np.zeros(len(rows), bool)
    if task == "pose" and kpt_dims == 3:  # visibility flags as Ultralytics writes them (0, 1, 2) where whole
        whole = (vals[:, 6::3] == np.round(vals[:, 6::3])).all(axis=1)
        cells[6::3] = [" %d"] * len(cells[6::3])
        flags = "%d" + "".join(cells)
    text = [(flags if f else fmt) % t
            for f, t in zip(whole.tolist(), zip(a.label[rows].tolist(), *vals.T.tolist(), strict=True), strict=True)]
    for k, line in zip(local.tolist(), text, strict=True):
        out[k] = _zero(line, decimals)
    return out


def _count(t: Tally, key: str, flags: np.ndarray, image: np.ndarray, rows: np.ndarray, rank: int = 0,
           times: np.ndarray | None = None) -> None:
    """Count the True ``flags`` (of rows ``rows``, in order, on images ``image``) under ``key``, each once or
    ``times`` times."""
    hit = np.flatnonzero(flags)
    if hit.size:
        k = int(hit[0])
        t.add(key, int(hit.size if times is None else times[hit].sum()), (int(image[k]), 0, int(rows[k]), rank))


def _gather(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indexes ``starts[j]`` to ``starts[j] + lengths[j] - 1`` for every ``j``, one after the other."""
    return np.arange(int(lengths.sum())) + np.repeat(starts - offsets(lengths)[:-1], lengths)


def _polygon_lines(a: Annotations, local: np.ndarray, start: int, W: np.ndarray, H: np.ndarray, img: np.ndarray,
                   lost: Tally, out: list[str | None], decimals: int) -> np.ndarray:
    """The segment lines of rows ``start + local`` (each with a ring of at least 3 points, on an image of known
    size, ``W`` by ``H``), put in ``out`` all at once, as ``_shape_line`` makes them one by one: the largest ring
    (the first of the largest), the same losses. Returns where ``out`` was filled: not rows with a ring of an odd
    length (``_shape_line`` raises on them)."""
    done = np.zeros(len(out), bool)
    p = a.polygon
    if p is None or not len(local):
        return done
    ro = p.ring_offsets
    count = p.row_offsets[local + start + 1] - p.row_offsets[local + start]
    rings, owner = _gather(p.row_offsets[local + start], count), np.repeat(np.arange(len(local)), count)
    length = ro[rings + 1] - ro[rings]
    keep = length >= 6
    rings, owner, length = rings[keep], owner[keep], length[keep]
    even = np.bincount(owner[length % 2 == 1], minlength=len(local)) == 0
    if not even.all():  # left to the row-by-row path, which raises as before
        keep = even[owner]
        rings, owner, length, local = rings[keep], np.cumsum(even)[owner[keep]] - 1, length[keep], local[even]
        if not len(local):
            return done
    parts = np.bincount(owner, minlength=len(local))
    pick = offsets(parts)[:-1]  # each row's first usable ring (index into rings)
    if (parts > 1).any():
        _largest(p.xy, ro, rings, owner, length, parts, pick)
    best, n = rings[pick], length[pick]
    rows, image = local + start, img[local]
    _count(lost, "polygon_parts", parts > 1, image, rows, _RANK["polygon_parts"], parts - 1)
    xy = p.xy[_gather(ro[best], n)].reshape(-1, 2)
    first = offsets(n // 2)[:-1]  # each row's first point
    low, high = np.minimum.reduceat(xy, first), np.maximum.reduceat(xy, first)
    w, h = W[local], H[local]
    assert a.box is not None
    off = np.abs(np.concatenate([low, high], axis=1) - a.box[rows]).max(axis=1) > 1e-6 * np.maximum(w, h)
    _count(lost, "box", off & a.has_box[rows], image, rows, _RANK["box"])
    unit = xy / np.repeat(np.column_stack([w, h]), n // 2, axis=0)
    clipped = np.clip(unit, 0.0, 1.0)
    moved = np.maximum.reduceat(np.abs(clipped - unit).max(axis=1), first) > 1e-9
    _count(lost, "clipped", moved, image, rows, _RANK["clipped"])
    values, ends = clipped.ravel().tolist(), offsets(n).tolist()
    fmt = {m: "%d" + f" %.{decimals}f" * m for m in set(n.tolist())}  # one format per ring length
    for k, label, m, s, e in zip(local.tolist(), a.label[rows].tolist(), n.tolist(), ends[:-1], ends[1:], strict=True):
        out[k] = _zero(fmt[m] % (label, *values[s:e]), decimals)
    done[local] = True
    return done


def _largest(xy: np.ndarray, ro: np.ndarray, rings: np.ndarray, owner: np.ndarray, length: np.ndarray,
             parts: np.ndarray, pick: np.ndarray) -> None:
    """Set ``pick`` (index into ``rings``, the rings of row ``owner``) of the rows with several rings to their
    largest ring by ``M.polygon_area``, the first of equals, as ``max(parts, key=M.polygon_area)`` picks it.

    The shoelace sums of all rings at once differ from ``M.polygon_area``'s (``np.dot``: BLAS, its own order of
    additions), but either area is within ``(points + 1) * 2**-54 * S`` of the exact one (``S``: the sum of the
    terms' magnitudes), so within ``err`` (twice that, and more) of each other. A ring whose ``area + err`` is
    below another's ``area - err`` can't be picked; where more than one ring is left (ties, near ties, values
    not finite), ``M.polygon_area`` decides among them as ``max`` does."""
    many = parts > 1
    several = np.flatnonzero(np.repeat(many, parts))  # the rings of rows with several
    r, m, row = rings[several], length[several] // 2, owner[several]
    pts = xy[_gather(ro[r], 2 * m)].reshape(-1, 2)
    first = offsets(m)[:-1]
    nxt = np.arange(1, len(pts) + 1)
    nxt[first + m - 1] = first  # the next point, the last one's being the first
    x, y = pts[:, 0], pts[:, 1]
    with np.errstate(all="ignore"):  # inf, NaN: such rows are left to M.polygon_area (which warns as before)
        t1, t2 = x * y[nxt], y * x[nxt]
        area = 0.5 * np.abs(np.add.reduceat(t1 - t2, first))
        size = np.add.reduceat(np.abs(t1) + np.abs(t2), first)
        err = (m + 4) * 2.0**-52 * size + m * 1e-300  # (and the last term: underflow)
        low = area - err
    starts = offsets(parts[many])[:-1]
    bound = np.repeat(np.maximum.reduceat(low, starts), parts[many])
    shaky = np.repeat(np.add.reduceat(~(size < 1e300), starts) > 0, parts[many])  # a row with a value not finite
    left = shaky | ~(area + err < bound)
    n_left = np.bincount(row[left], minlength=len(parts))
    one = left & (n_left[row] == 1)
    pick[row[one]] = several[one]
    tied = np.flatnonzero(left & (n_left[row] > 1))  # by row, in order
    for group in np.split(several[tied], np.flatnonzero(np.diff(row[tied])) + 1) if len(tied) else ():
        pick[owner[group[0]]] = max(group.tolist(), key=lambda j: M.polygon_area(xy[ro[rings[j]]:ro[rings[j] + 1]]))


def _clip(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates clipped to [0, 1], and (per row) whether any moved: Ultralytics'
    ``verify_image_label`` takes a label file with a value outside [0, 1] (1 % tolerance) as corrupt and drops
    its image."""
    out = np.clip(xy, 0.0, 1.0)
    moved = np.abs(out - xy).reshape(len(xy), -1).max(axis=1, initial=0.0) > 1e-9
    return out, moved


def _shape_line(a: Annotations, r: int, w: float, h: float, lost: Counter[str], why: Counter[str],
                traced: Traced, decimals: int = 6) -> str | None:
    """The segment line of row ``r``, which has a polygon or a mask (on an image of known size)."""
    assert a.box is not None
    label = int(a.label[r])
    poly = a.polygon[r] if a.polygon is not None else None
    odd = next((len(p) for p in poly or () if len(p) % 2), None)
    if odd is not None:  # reshape(-1, 2) raised a bare numpy error (a ring built by hand, not read from a file)
        raise InvalidDatasetError(f"annotations.polygon row {r}: a ring must hold x, y pairs (an even number of "
                                  f"values), got {odd}")
    parts = [np.asarray(p, np.float64) for p in poly or () if len(p) >= 6]
    if not parts and a.mask is not None and a.mask[r] is not None:
        ring, wrong, px = M.outer_ring(a.mask[r])
        if ring is not None:
            parts = [ring]
            traced.add(wrong, px)
            lost["mask"] += 1  # it comes back as a polygon
    if parts:
        best = parts[0] if len(parts) == 1 else max(parts, key=M.polygon_area)
        if len(parts) > 1:
            lost["polygon_parts"] += len(parts) - 1
        xy = best.reshape(-1, 2)
        if a.has_box[r] and np.abs(np.concatenate([xy.min(axis=0), xy.max(axis=0)]) - a.box[r]).max() \
                > 1e-6 * max(w, h):
            lost["box"] += 1  # the box is re-derived from the polygon on reading
        pts, moved = _clip((xy / np.array([w, h]))[None])
        if moved[0]:
            lost["clipped"] += 1
        return fmt_line(label, pts.ravel().tolist(), decimals)
    if not a.has_box[r]:
        why["without a box"] += 1
        return None
    scale = np.array([w, h, w, h])
    unit, moved = _clip((a.box[r] / scale)[None])
    x1, y1, x2, y2 = (unit[0] * scale).tolist()
    if a.mask is not None and a.mask[r] is not None:
        lost["mask"] += 1  # an empty mask
    why["rectangle"] += 1
    if moved[0]:
        lost["clipped"] += 1
    return fmt_line(label, [x1 / w, y1 / h, x2 / w, y1 / h, x2 / w, y2 / h, x1 / w, y2 / h], decimals)
