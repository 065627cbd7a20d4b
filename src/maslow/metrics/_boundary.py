"""Boundary IoU of instance masks (Cheng, Girshick, Dollar, Berg, Kirillov, "Boundary IoU: Improving Object-Centric
Image Segmentation Evaluation", CVPR 2021), as the official boundary-iou-api computes it for COCO
(``boundary_iou/utils/boundary_utils.py`` ``mask_to_boundary``, ``boundary_iou/coco_instance_api/cocoeval.py``
``computeBoundaryIoU``).

Glossary:

- *dilation* ``d`` of a mask of ``h`` x ``w`` pixels (its RLE ``size``; a polygon's image):
  ``max(1, round(ratio * sqrt(h**2 + w**2)))``, ``round`` half to even (Python's), ``ratio`` the
  ``boundary_dilation`` option (the paper's 0.02: 16 pixels on a 640 x 480 image).
- *boundary* of a mask G: G minus its erosion by a (2d + 1)-pixel square, pixels outside the image counting as
  background. The API pads the mask with one zero pixel (``cv2.copyMakeBorder``) and erodes it ``d`` times by a
  3 x 3 square (``cv2.erode``); that is the same set (the ring of zeros is as near to every pixel as anything
  outside the image). Here the erosion is separable: each column's runs lose d pixels at both ends, then a
  minimum over 2d + 1 columns, zeros beyond, over the mask's bounding box alone (outside it the mask, so its
  erosion, is empty); a box less than 2d + 1 pixels high or wide has an empty erosion: the boundary is the mask.
- *IoU* of a (prediction, truth) pair: ``min(mask IoU, boundary IoU)``; with a crowd truth region the mask IoU
  alone (intersection over the prediction's area), as the API's ``ious[:, iscrowd == 0] = np.minimum(...)``.
  Both are pycocotools' ``mask.iou`` numbers (the compiled kernel's where built, ``_segm``).
- *counts*: pycocotools' run lengths of a mask, column-major, background first (``_segm.Runs``).

faster-coco-eval (``COCOeval_faster(iouType="boundary")``) erodes in its own C++ (``RLE::erode_3x3``, not OpenCV):
the same numbers except where its dilation rounds a tie down (``std::round(x - 1e-10)``: 3 for 3.5, on a 105 x 140
image) and on images at most about 2d pixels high, where its column-major neighbour test wraps (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.masks import coco_mask
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError
from maslow.metrics._iou import segm_iou_pairs, segm_pred_blocks
from maslow.metrics._prepare import Groups
from maslow.metrics._segm import Runs
from maslow.metrics._segm import iou_pairs as run_iou_pairs

DEFAULT_DILATION = 0.02


def check_ratio(ratio: float, where: str = "coco_map") -> float:
    """``ratio`` as a float, refused unless it is a finite number >= 0."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)) \
            or not np.isfinite(ratio) or ratio < 0:
        raise ValueError(f"{where}: boundary_dilation must be a finite number >= 0 (a fraction of the image "
                         f"diagonal, 0.02 in the paper), got {ratio!r}")
    return float(ratio)


def dilations(h: IntArray, w: IntArray, ratio: float) -> IntArray:
    """(n,) dilation in pixels of masks of ``h`` x ``w`` pixels (glossary)."""
    h64, w64 = np.asarray(h, np.int64), np.asarray(w, np.int64)
    d = np.rint(ratio * np.sqrt((h64 * h64 + w64 * w64).astype(np.float64)))  # rint: half to even, as round()
    return np.maximum(d, 1).astype(np.int64)


def _counts(starts: IntArray, ends: IntArray, total: int) -> np.ndarray:
    """Counts (uint32) of the sorted foreground intervals ``[starts[i], ends[i])`` of ``total`` pixels, touching
    intervals merged (as pycocotools' ``encode`` writes them)."""
    if len(starts) > 1:
        touch = starts[1:] == ends[:-1]
        if touch.any():
            keep_s = np.r_[True, ~touch]
            keep_e = np.r_[~touch, True]
            starts, ends = starts[keep_s], ends[keep_e]
    last = len(starts) and int(ends[-1]) == total  # a mask that ends on the last pixel: no empty run after it
    edges = np.empty(2 * len(starts) + 2 - last, np.int64)
    edges[0], edges[-1] = 0, total
    edges[1:2 * len(starts) + 1:2], edges[2:2 * len(starts) + 1:2] = starts, ends
    return np.diff(edges).astype(np.uint32)


def boundary_counts(counts: np.ndarray, h: int, w: int, d: int) -> np.ndarray:
    """Counts of the boundary (glossary) of the ``h`` x ``w`` mask whose counts are ``counts``, at dilation ``d``.
    The counts must cover ``h * w`` pixels."""
    pos = np.cumsum(counts, dtype=np.int64)
    n_fg = len(counts) // 2
    a, b = pos[0:2 * n_fg:2], pos[1:2 * n_fg:2]  # foreground runs [a, b), column-major pixel index
    nz = b > a
    if not nz.all():
        a, b = a[nz], b[nz]
    total = h * w
    if not len(a):
        return _counts(a, b, total)
    ca, cb = a // h, (b - 1) // h
    c0, c1 = int(ca[0]), int(cb[-1])
    if (ca != cb).any():  # a run crosses a column: every row is in the box
        y0, y1 = 0, h - 1
    else:
        y0, y1 = int((a - ca * h).min()), int((b - 1 - cb * h).max())
    rows, cols = y1 - y0 + 1, c1 - c0 + 1
    if rows <= 2 * d or cols <= 2 * d:  # no pixel has d pixels of mask on every side: the boundary is the mask
        return _counts(a, b, total)
    # the runs cut at column ends, then written into the box, one image column per line, a zero pixel after each
    # (so that no run of the box crosses from one column into the next)
    if (ca != cb).any():
        span = cb - ca + 1
        run = np.repeat(np.arange(len(a)), span)
        col = ca[run] + np.arange(len(run)) - np.repeat(np.cumsum(span) - span, span)
        top = col * h
        ps, pe = np.maximum(a[run], top) - top, np.minimum(b[run], top + h) - top
    else:
        col, ps, pe = ca, a - ca * h, b - ca * h
    line = rows + 1
    fs = (col - c0) * line + ps - y0
    fe = fs + (pe - ps)
    # the erosion by the square, separably: each column's runs lose d pixels at both ends (the pixels above and
    # below a run are background, or outside the image), then the minimum over 2d + 1 columns (zeros beyond the box)
    vs, ve = fs + d, fe - d
    kept = ve > vs
    if not kept.any():
        return _counts(a, b, total)
    pad = d * line
    vertical = _paint(vs[kept] + pad, ve[kept] + pad, (cols + 2 * d) * line).reshape(cols + 2 * d, line)
    eroded = _window_min(vertical, 2 * d + 1)
    box = _paint(fs, fe, cols * line).reshape(cols, line)
    np.subtract(box, eroded, out=box)  # the eroded mask is inside the mask
    edges = np.flatnonzero(np.diff(box.reshape(-1), prepend=np.uint8(0), append=np.uint8(0)))
    s, e = edges[0::2], edges[1::2]
    c = s // line
    start = (c0 + c) * h + y0 + (s - c * line)
    return _counts(start, start + (e - s), total)


def _window_min(a: np.ndarray, k: int) -> np.ndarray:
    """``out[i] = a[i:i + k].min(axis=0)`` for i in ``range(len(a) - k + 1)``: windows of 2, 4, 8, ... lines,
    then two overlapping ones (each step a whole-array ``np.minimum``)."""
    n, p, w = len(a), 1, a
    while 2 * p <= k:
        w = np.minimum(w[:-p], w[p:])  # w[i]: the minimum of a[i:i + 2p]
        p *= 2
    out: np.ndarray = w if p == k else np.minimum(w[:n - k + 1], w[k - p:])
    return out


def _paint(starts: IntArray, ends: IntArray, n: int) -> np.ndarray:
    """(n,) uint8: 1 in the sorted, disjoint intervals ``[starts[i], ends[i])``, else 0."""
    edges = np.empty(2 * len(starts) + 2, np.int64)
    edges[0], edges[-1] = 0, n
    edges[1:-1:2], edges[2:-1:2] = starts, ends
    return np.repeat((np.arange(len(edges) - 1) % 2).astype(np.uint8), np.diff(edges))


def mask_counts(mask: np.ndarray) -> np.ndarray:
    """Counts of an (h, w) mask (as pycocotools' ``encode``)."""
    flat = np.asarray(mask, bool).ravel(order="F")
    edges = np.flatnonzero(np.diff(flat.view(np.uint8), prepend=np.uint8(0), append=np.uint8(0)))
    return _counts(edges[0::2], edges[1::2], flat.size)


def boundary_mask(mask: np.ndarray, dilation_ratio: float = DEFAULT_DILATION) -> BoolArray:
    """(h, w) bool boundary (glossary) of an (h, w) mask: what ``mask_to_boundary(mask, dilation_ratio)`` of the
    boundary-iou-api gives, as booleans."""
    m = np.asarray(mask, bool)
    h, w = m.shape
    d = int(dilations(np.array([h]), np.array([w]), check_ratio(dilation_ratio, "boundary_mask"))[0])
    c = boundary_counts(mask_counts(m), h, w, d)
    out: BoolArray = np.repeat(np.arange(len(c)) % 2 == 1, c.astype(np.int64)).reshape(w, h).T
    return out


def _checked_counts(counts: np.ndarray, h: int, w: int, where: str) -> np.ndarray:
    got = int(counts.sum(dtype=np.int64))
    if got != h * w:
        raise InvalidDatasetError(f"{where}: the mask's run lengths must cover its {h} x {w} pixels for a boundary, "
                                  f"got {got} pixels")
    return counts


def boundary_runs(m: Runs, need: BoolArray, ratio: float) -> Runs:
    """The boundaries of the objects of ``m`` where ``need`` (the others get no runs: leave them out of pairs):
    ``batch_boundaries`` for the objects the kernel read, ``boundary_counts`` one by one for those left to
    pycocotools (their RLE strings parsed as pycocotools parses them)."""
    d = dilations(m.h, m.w, ratio)
    n = len(m.start)
    todo = np.flatnonzero(need)
    left = np.asarray([p in m.fallback for p in todo.tolist()], bool) if m.fallback else np.zeros(len(todo), bool)
    batch = todo[~left]
    runs, b_start, b_end = batch_boundaries(m.runs, m.start[batch], m.end[batch], m.h[batch], m.w[batch], d[batch],
                                            lambda i: f"{m.side}.annotations row {m.rows[batch[i]]}")
    start, end = np.zeros(n, np.int64), np.zeros(n, np.int64)
    start[batch], end[batch] = b_start, b_end
    if left.any():
        parts, at = [runs], len(runs)
        for p in todo[left].tolist():
            h, w = int(m.h[p]), int(m.w[p])
            c = _checked_counts(string_counts(m.fallback[p]["counts"]), h, w, f"{m.side}.annotations row {m.rows[p]}")
            b = boundary_counts(c, h, w, int(d[p]))
            parts.append(b)
            start[p], end[p] = at, at + len(b)
            at += len(b)
        runs = np.concatenate(parts)

    def rle(p: int) -> dict[str, Any]:
        return _rle(runs[start[p]:end[p]], int(m.h[p]), int(m.w[p]))

    return Runs(runs, start, end, m.h, m.w, {}, rle, m.rows, m.side)


#: pixels of the boxes ``batch_boundaries`` erodes at a time (each ``np.minimum`` step passes over them once)
BATCH_PIXELS = 1 << 22


def batch_boundaries(runs: np.ndarray, start: IntArray, end: IntArray, h: IntArray, w: IntArray, d: IntArray,
                     where: Callable[[int], str]) -> tuple[np.ndarray, IntArray, IntArray]:
    """``boundary_counts`` of many objects at once (object i: counts ``runs[start[i]:end[i]]`` of an ``h[i]`` x
    ``w[i]`` mask, dilation ``d[i]``; ``where(i)`` names it in errors), with no per-object Python: the boxes of the
    objects of one dilation and similar heights are laid side by side, zero columns between them, and eroded
    together (``_Boxes``). Returns the counts of all, concatenated, and each one's bounds in them."""
    n = len(start)
    if not n:
        return np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    h, w, d = (np.asarray(x, np.int64) for x in (h, w, d))
    total = h * w
    obj, a, b, sums = _foreground(runs, np.asarray(start, np.int64), np.asarray(end, np.int64))
    bad = np.flatnonzero(sums != total)
    if bad.size:
        k = int(bad[0])
        raise InvalidDatasetError(f"{where(k)}: the mask's run lengths must cover its {h[k]} x {w[k]} pixels for a "
                                  f"boundary, got {sums[k]} pixels ({bad.size} objects)")
    # the bounding box of each object with a foreground run (runs in order: its first starts it, its last ends it)
    first = np.flatnonzero(np.r_[True, obj[1:] != obj[:-1]]) if len(obj) else np.zeros(0, np.int64)
    has = obj[first]
    hr = h[obj]
    ca, cb = a // hr, (b - 1) // hr
    c0, c1 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    y0, y1 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    if len(first):
        c0[has], c1[has] = ca[first], cb[np.r_[first[1:], len(obj)] - 1]
        cross = np.logical_or.reduceat(ca != cb, first)  # a run across a column: every row is in the box
        y0[has] = np.where(cross, 0, np.minimum.reduceat(a - ca * hr, first))
        y1[has] = np.where(cross, h[has] - 1, np.maximum.reduceat(b - 1 - cb * hr, first))
    big = np.zeros(n, bool)
    big[has] = (y1[has] - y0[has] + 1 > 2 * d[has]) & (c1[has] - c0[has] + 1 > 2 * d[has])
    # objects whose box is at most 2d pixels high or wide: the erosion is empty, the boundary is the mask
    small = ~big[obj]
    parts = [(obj[small], a[small], b[small])]
    run = ~small
    if run.any():
        box = _Boxes(h, d, c0, y0, y1 - y0 + 1, c1 - c0 + 1)
        parts += box.erode(obj[run], a[run], b[run], ca[run], cb[run])
    o = np.concatenate([x[0] for x in parts])
    s = np.concatenate([x[1] for x in parts])
    e = np.concatenate([x[2] for x in parts])
    order = np.lexsort((s, o))
    return _segment_counts(o[order], s[order], e[order], total)


def _foreground(runs: np.ndarray, start: IntArray, end: IntArray) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The foreground runs ``[a, b)`` (column-major pixel index) of every object, object by object, and the pixel
    count each object's runs cover."""
    n = len(start)
    length = end - start
    first = np.cumsum(length) - length
    obj = np.repeat(np.arange(n), length)
    j = np.arange(len(obj)) - first[obj]  # run index inside its object
    r = runs[start[obj] + j].astype(np.int64)
    cum = np.cumsum(r)
    base = np.zeros(n, np.int64)
    has = length > 0
    base[has] = (cum - r)[first[has]]
    stop = cum - base[obj]
    sums = np.zeros(n, np.int64)
    sums[has] = stop[first[has] + length[has] - 1]
    fg = (j % 2 == 1) & (r > 0)
    return obj[fg], (stop - r)[fg], stop[fg], sums


class _Boxes:
    """The boxes (``c0``, ``y0``, ``rows`` x ``cols``) of objects of ``h``-pixel-high masks at dilations ``d``."""

    def __init__(self, h: IntArray, d: IntArray, c0: IntArray, y0: IntArray, rows: IntArray, cols: IntArray) -> None:
        self.h, self.d, self.c0, self.y0, self.rows, self.cols = h, d, c0, y0, rows, cols

    def erode(self, obj: IntArray, a: IntArray, b: IntArray, ca: IntArray, cb: IntArray
              ) -> list[tuple[IntArray, IntArray, IntArray]]:
        """The boundary runs (object, start, end) of the objects of the foreground runs given (all of each)."""
        # each run cut at column ends: (object, column in the box, first row, end row) pieces, in order
        span = cb - ca + 1
        piece = np.repeat(np.arange(len(a)), span)
        col = ca[piece] + np.arange(len(piece)) - np.repeat(np.cumsum(span) - span, span)
        po = obj[piece]
        top = col * self.h[po]
        ps, pe = np.maximum(a[piece], top) - top, np.minimum(b[piece], top + self.h[po]) - top
        objs = np.flatnonzero(np.bincount(po, minlength=len(self.h)))
        bounds = np.searchsorted(po, np.append(objs, len(self.h)))  # pieces of objs[i]: bounds[i]:bounds[i + 1]
        out = []
        # chunks of one dilation and similar heights (each chunk's lines as long as its highest box)
        order: IntArray = np.lexsort((self.rows[objs], self.d[objs]))
        ds, lines = self.d[objs[order]].tolist(), (self.rows[objs[order]] + 1).tolist()
        sizes = ((self.cols[objs[order]] + self.d[objs[order]]) * (self.rows[objs[order]] + 1)).tolist()
        i = 0
        while i < len(order):
            d, line0 = ds[i], lines[i]
            j, pixels = i, 0
            while j < len(order) and ds[j] == d and (j == i or (lines[j] <= line0 + line0 // 4 + 8
                                                              and pixels + sizes[j] <= BATCH_PIXELS)):
                pixels += sizes[j]
                j += 1
            chunk = order[i:j]
            n_pieces = bounds[chunk + 1] - bounds[chunk]
            sel = np.repeat(bounds[chunk] - (np.cumsum(n_pieces) - n_pieces), n_pieces) + np.arange(n_pieces.sum())
            out.append(self._chunk(objs[chunk], d, po[sel], col[sel], ps[sel], pe[sel]))
            i = j
        return out

    def _chunk(self, objs: IntArray, d: int, po: IntArray, col: IntArray, ps: IntArray, pe: IntArray
               ) -> tuple[IntArray, IntArray, IntArray]:
        """Erode the boxes of ``objs`` (one dilation ``d``) side by side, ``d`` zero columns before, between and after
        them (as far as a window reaches), in lines of the highest box's rows plus a zero pixel (so that no run
        crosses from a column into the next)."""
        line = int(self.rows[objs].max()) + 1
        width = self.cols[objs] + d
        off = np.zeros(len(self.h), np.int64)  # each box's first column, less d
        off[objs] = np.cumsum(width) - width
        n_cols = int(width.sum()) + d
        at = (off[po] + d + col - self.c0[po]) * line + ps - self.y0[po]
        mask = _paint(at, at + (pe - ps), n_cols * line).reshape(n_cols, line)
        vs, ve = at + d, at + (pe - ps) - d  # each column's runs less d pixels at both ends
        kept = ve > vs
        vertical = _paint(vs[kept], ve[kept], n_cols * line).reshape(n_cols, line)
        core = mask[d:n_cols - d]  # core column q: column q + d, the middle of the window that starts at q
        np.subtract(core, _window_min(vertical, 2 * d + 1), out=core)  # the eroded mask is inside the mask
        flat = core.reshape(-1)  # it ends with a zero pixel (each line does)
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        if flat[0]:
            edges = np.r_[0, edges]
        s, e = edges[0::2], edges[1::2]
        q = s // line  # a column of core: object region + d
        o = objs[np.searchsorted(off[objs], q, side="right") - 1]
        first = (self.c0[o] + q - off[o]) * self.h[o] + self.y0[o] + (s - q * line)
        return o, first, first + (e - s)


def _segment_counts(obj: IntArray, starts: IntArray, ends: IntArray, total: IntArray
                    ) -> tuple[np.ndarray, IntArray, IntArray]:
    """``_counts`` of every object at once: the foreground runs (sorted by object, then start) of ``len(total)``
    objects -> (counts of all, concatenated; each object's bounds in them)."""
    n = len(total)
    if len(obj) > 1:  # touching runs of an object merged (a run to the bottom of a column, one from the top of the
        touch = (obj[1:] == obj[:-1]) & (starts[1:] == ends[:-1])  # next, when the box is the image's height)
        if touch.any():
            obj, starts, ends = obj[np.r_[True, ~touch]], starts[np.r_[True, ~touch]], ends[np.r_[~touch, True]]
    m = np.bincount(obj, minlength=n)
    last = np.zeros(n, bool)  # ending on the last pixel: no empty run after it
    ends_at = np.cumsum(m) - 1
    has = m > 0
    last[has] = ends[ends_at[has]] == total[has]
    n_edges = 2 * m + 2 - last
    seg = np.cumsum(n_edges) - n_edges
    edges = np.empty(int(n_edges.sum()), np.int64)
    edges[seg] = 0
    edges[seg + n_edges - 1] = total
    rank = np.arange(len(obj)) - np.repeat(np.cumsum(m) - m, m)
    edges[seg[obj] + 1 + 2 * rank] = starts
    edges[seg[obj] + 2 + 2 * rank] = ends
    keep = np.ones(len(edges) - 1, bool)
    keep[(seg + n_edges - 1)[:-1]] = False  # the step from one object's last edge to the next one's first
    counts = np.diff(edges)[keep].astype(np.uint32)
    start = seg - np.arange(n)
    return counts, start, start + n_edges - 1


def _rle(counts: np.ndarray, h: int, w: int) -> dict[str, Any]:
    return coco_mask().frPyObjects({"size": [h, w], "counts": counts.tolist()}, h, w)  # type: ignore[no-any-return]


def boundary_rles(masks: list[dict[str, Any]], need: BoolArray, ratio: float, side: str, rows: IntArray
                  ) -> list[dict[str, Any]]:
    """The boundaries of the pycocotools RLEs (``_iou.rles``) where ``need``, as RLEs; the others are left as given
    (their pairs are not read). ``rows``: the dataset row of each, for errors."""
    out = list(masks)
    for p in np.flatnonzero(need).tolist():
        h, w = (int(v) for v in masks[p]["size"])
        counts = _checked_counts(string_counts(masks[p]["counts"]), h, w, f"{side}.annotations row {rows[p]}")
        d = int(dilations(np.array([h]), np.array([w]), ratio)[0])
        out[p] = _rle(boundary_counts(counts, h, w, d), h, w)
    return out


def string_counts(s: bytes) -> np.ndarray:
    """The counts of a compressed RLE string, parsed as pycocotools' ``rleFrString`` parses it (its ``m > 2``
    delta rule and uint32 counts included)."""
    out: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more and p < n:
            c = s[p] - 48
            x |= (c & 0x1F) << 5 * k
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << 5 * k
        if len(out) > 2:
            x += out[-2]
        out.append(x & 0xFFFFFFFF)
    return np.asarray(out, np.uint32)


def _used(idx: IntArray, n: int) -> BoolArray:
    need = np.zeros(n, bool)
    need[idx] = True
    return need


def check_geometry(ds: Dataset, rows: IntArray, side: str) -> None:
    """Raise unless every row of ``rows`` has a polygon or a mask."""
    a = ds.annotations
    has = np.zeros(len(rows), bool)
    if a.polygon is not None:
        has |= ~a.polygon.null[rows]
    if a.mask is not None:
        has |= np.asarray([m is not None for m in a.mask[rows].tolist()], bool)
    bad = np.flatnonzero(~has)
    if bad.size:
        raise InvalidDatasetError(f"{side}.annotations row {rows[bad[0]]}: iou_type 'boundary' needs a polygon or "
                                  f"a mask, got neither ({bad.size} rows)")


def pred_blocks(pred: Dataset, rows: IntArray, t_masks: Runs, crowd: BoolArray, p_idx: IntArray, t_idx: IntArray,
                *, areas: bool, ratio: float) -> tuple[FloatArray | None, FloatArray]:
    """``_iou.segm_pred_blocks`` for boundary IoU: the predictions' mask areas (when ``areas``) and the IoU of
    every pair (glossary), the predictions' masks and boundaries made ``PRED_BLOCK`` predictions at a time."""
    plain = ~crowd[t_idx]  # the pairs whose boundary IoU is read
    t_bound = boundary_runs(t_masks, _used(t_idx[plain], len(t_masks.start)), ratio)
    no_crowd = np.zeros(len(t_masks.start), bool)

    def refine(runs: Runs, pairs: slice, bp: IntArray, bt: IntArray, out: FloatArray) -> FloatArray:
        sel = np.flatnonzero(plain[pairs])
        if sel.size:
            p_bound = boundary_runs(runs, _used(bp[sel], len(runs.start)), ratio)
            out[sel] = np.minimum(out[sel], run_iou_pairs(p_bound, t_bound, no_crowd, bp[sel], bt[sel]))
        return out

    return segm_pred_blocks(pred, rows, t_masks, crowd, p_idx, t_idx, areas=areas, refine=refine)


def pair_ious(t_masks: list[dict[str, Any]], p_masks: list[dict[str, Any]], groups: Groups, p_idx: IntArray,
              t_idx: IntArray, mask_iou: FloatArray, ratio: float) -> FloatArray:
    """The IoU of every pair (glossary) from its mask IoU ``mask_iou`` and both sides' pycocotools RLEs (without the
    compiled kernel: ``pred_blocks`` does it with)."""
    plain = np.flatnonzero(~groups.crowd[t_idx])
    out = mask_iou.copy()
    if not plain.size:
        return out
    pp, tt = p_idx[plain], t_idx[plain]
    kg = len(groups.class_labels)
    # pycocotools' iou per image reads every prediction against every truth object of it: all of both sides (in an
    # image with pairs) get a boundary; crowd regions keep their mask (those cells are not read)
    d_image, g_image = groups.pred.group // kg, groups.truth.group // kg
    imgs = _used(d_image[pp], int(max(d_image.max(initial=-1), g_image.max(initial=-1))) + 1)
    p_rles = boundary_rles(p_masks, imgs[d_image], ratio, "pred", groups.pred.row)
    t_rles = boundary_rles(t_masks, imgs[g_image] & ~groups.crowd, ratio, "truth", groups.truth.row)
    b_iou = segm_iou_pairs(p_rles, t_rles, d_image, g_image, np.zeros(len(t_rles), np.bool_), pp, tt)
    out[plain] = np.minimum(mask_iou[plain], b_iou)
    return out
