"""The pixel overlaps of a panoptic evaluation (``maslow.metrics.panoptic``): for every image, the intersection of
every (truth segment, predicted segment) pair and of every predicted segment with VOID, exact integer counts.

panopticapi counts them with one ``np.unique`` over ``gt_id * 256^3 + pred_id`` of the two id maps. Here, two ways
with the same counts (the first in C where ``maslow._native.png`` is built too: ``pairs`` sorts the events by
position, radix, and sweeps them once; it hands any chunk with masks of a side that overlap back to numpy):

- *runs* (where the compiled kernel ``maslow._native.rle`` is built): each mask's run lengths (column-major,
  background first) are events on a line of pixels: ``+s`` where the pixels of segment ``s`` begin, ``-s`` where
  they end. The events of a few images, both sides, are merged by one stable sort (each mask's events are sorted
  already, so the merge is nearly linear); the running sum of one side's changes is the segment in force on it
  (its segments don't overlap), and each stretch between two events adds its length to its (truth, pred) pair in
  one ``np.bincount``. No pixel is touched: a 640 x 480 image of 20 segments a side is some 16,000 events, not
  307,200 pixels.
- *label maps* (no kernel, or masks the kernel leaves to pycocotools): each side's masks decoded and painted into
  an image of segment numbers, then one ``np.bincount`` of ``truth * (n_pred + 1) + pred`` over the pixels.

Both refuse masks of one image and side that overlap (a panoptic segmentation gives each pixel one segment), a
missing mask, and a mask of another size than its image, naming the side, row and image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow._native import load
from maslow.core.dataset import Dataset
from maslow.core.masks import area, decode
from maslow.core.types import IntArray
from maslow.errors import InvalidDatasetError
from maslow.metrics._iou import rles

#: pixels of the images whose events are merged at a time (their arrays stay in the cache)
CHUNK_PIXELS = 1 << 20


@dataclass(frozen=True)
class Overlaps:
    """Intersections (only the non-zero ones) and areas.

    Attributes:
        truth_row: (q,) truth annotation row of each pair; -1 for VOID (pixels of no truth segment).
        pred_row: (q,) prediction row.
        pixels: (q,) int64 pixels the two share.
        truth_pixels: (n_truth,) int64 pixel count of each truth mask.
        pred_pixels: (n_pred,) int64 pixel count of each predicted mask.
    """

    truth_row: IntArray
    pred_row: IntArray
    pixels: IntArray
    truth_pixels: IntArray
    pred_pixels: IntArray


def overlaps(truth: Dataset, pred: Dataset, *, native: bool = True,
             progress: Callable[[int, int], None] | None = None) -> Overlaps:
    """The overlaps of ``truth`` and ``pred`` (same images table), a few images at a time (one image's masks
    decoded at a time on the label-map path). ``native=False``: the label-map path everywhere."""
    kernel = load("rle") if native else None
    pairs = load("png") if native else None
    ts, ps = truth.image_slices(), pred.image_slices()
    m = truth.n_images
    parts: list[tuple[IntArray, IntArray, IntArray]] = []
    t_px = np.zeros(truth.n_annotations, np.int64)
    p_px = np.zeros(pred.n_annotations, np.int64)
    i = 0
    while i < m:
        j, pixels = i, 0  # images i..j-1: at most CHUNK_PIXELS (one image at least)
        while j < m and (j == i or pixels + _pixels(truth, j) <= CHUNK_PIXELS):
            pixels += _pixels(truth, j)
            j += 1
        t_rows, p_rows = np.arange(ts[i], ts[j]), np.arange(ps[i], ps[j])
        done = False
        if kernel is not None:
            sizes = truth.images.height[i:j].astype(np.int64) * truth.images.width[i:j]
            start = np.zeros(m, np.int64)  # each image's first pixel in the chunk
            start[i:j] = np.cumsum(sizes) - sizes
            t = _side_runs(kernel, pairs, truth, t_rows, "truth")
            p = _side_runs(kernel, pairs, pred, p_rows, "pred")
            done = t is not None and p is not None and (
                (pairs is not None and _chunk_pairs(pairs, t, p, start, t_rows, p_rows, parts, t_px, p_px))
                or _chunk_runs(t, p, start, truth, pred, i, j, t_rows, p_rows, parts, t_px, p_px))
        if not done:  # the label maps, image by image
            for k in range(i, j):
                _image_maps(truth, pred, k, np.arange(ts[k], ts[k + 1]), np.arange(ps[k], ps[k + 1]), parts, t_px,
                            p_px)
        if progress is not None:
            progress(j, m)
        i = j
    cat = [np.concatenate([p[c] for p in parts]) if parts else np.zeros(0, np.int64) for c in range(3)]
    return Overlaps(cat[0], cat[1], cat[2], t_px, p_px)


def _pixels(ds: Dataset, i: int) -> int:
    return int(ds.images.height[i]) * int(ds.images.width[i])


def masks_of(ds: Dataset, rows: IntArray, side: str) -> list[dict[str, Any]]:
    """The RLEs of ``rows`` (polygons rasterised as pycocotools does), each of its image's size."""
    a = ds.annotations
    for r in rows.tolist():
        if (a.mask is None or a.mask[r] is None) and (a.polygon is None or a.polygon[r] is None):
            raise InvalidDatasetError(f"{side}.annotations.mask row {r}: a panoptic segment must have a mask (or a "
                                      f"polygon), got none (image {int(a.image[r])})")
    out = rles(ds, rows, side)
    for r, rle in zip(rows.tolist(), out, strict=True):
        i = int(a.image[r])
        size = [int(v) for v in rle["size"]]
        if size != [int(ds.images.height[i]), int(ds.images.width[i])]:
            raise InvalidDatasetError(f"{side}.annotations.mask row {r}: size must be its image's "
                                      f"[{int(ds.images.height[i])}, {int(ds.images.width[i])}] (height, width), got "
                                      f"{size} (image {i})")
    return out


# -- runs: the compiled kernel reads the masks, numpy merges their events --------------------------------------

@dataclass(frozen=True)
class _Runs:
    """One side's masks of a chunk, as ``maslow._native.rle``'s ``dict_runs`` reads them."""

    runs: np.ndarray  # uint32 run lengths of every mask (background first), back to back
    off: np.ndarray  # (n + 1,) int64: mask k's runs are runs[off[k]:off[k + 1]]
    img: IntArray  # (n,) image of each mask
    pixels: IntArray  # (n,) int64 pixels of each mask's image
    fg: IntArray | None  # (n,) int64 foreground pixels of each mask (``maslow._native.png``'s sums); None without


def _side_runs(kernel: Any, pairs: Any, ds: Dataset, rows: IntArray, side: str) -> _Runs | None:
    """The runs of ``rows``' masks, checked; None where the label maps must do (a polygon, a missing mask, a form
    the kernel leaves to pycocotools: they raise or read it there).

    Raises:
        InvalidDatasetError: a mask of another size than its image, or runs that don't cover its pixels.
    """
    a = ds.annotations
    if not len(rows):
        empty = np.zeros(0, np.int64)
        return _Runs(np.zeros(0, np.uint32), np.zeros(1, np.int64), empty, empty, empty)
    if a.mask is None or (a.polygon is not None and not bool(a.polygon.null[rows].all())):
        return None
    raw, off_b, h_b, w_b, status = kernel.dict_runs(a.mask[rows].tolist())
    if np.frombuffer(status, np.uint8).any():
        return None
    img = a.image[rows]
    height, width = ds.images.height[img], ds.images.width[img]
    bad = np.flatnonzero((np.frombuffer(h_b, np.int64) != height) | (np.frombuffer(w_b, np.int64) != width))
    if bad.size:
        masks_of(ds, rows[bad[:1]], side)  # raises, naming the row
    runs, off = np.frombuffer(raw, np.uint32), np.frombuffer(off_b, np.int64)
    fg = None
    if pairs is not None:
        total, fg = (np.frombuffer(b, np.int64) for b in pairs.sums(raw, off_b))
    else:
        ends = np.concatenate((np.zeros(1, np.int64), np.cumsum(runs, dtype=np.int64)))
        total = ends[off[1:]] - ends[off[:-1]]
    pixels = height.astype(np.int64) * width
    bad = np.flatnonzero(total != pixels)
    if bad.size:
        raise InvalidDatasetError(f"{side}.annotations.mask row {int(rows[bad[0]])}: its run lengths must cover the "
                                  f"image's {int(pixels[bad[0]])} pixels, got {int(total[bad[0]])} (image "
                                  f"{int(img[bad[0]])})")
    return _Runs(runs, off, img, pixels, fg)


def _events(s: _Runs, start: IntArray, rows: IntArray, px: IntArray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (counted from the chunk's first image) and changes (``+s`` where segment ``s`` begins,
    ``-s`` where it ends; ``s``: row in ``rows`` + 1) of the events of ``rows``' masks, each mask's in order (int32,
    int64 where the chunk's sums need it); pixel counts into ``px``."""
    n = len(rows)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    runs, off = s.runs, s.off
    cnt = np.diff(off)
    wide = int(s.pixels.sum()) + int(start[s.img].max()) >= 1 << 31  # 32 bits hold the chunk's sums
    dt = np.int64 if wide else np.int32
    cs = np.cumsum(runs, dtype=dt)
    ends = np.concatenate((np.zeros(1, dt), cs))
    pos = cs + np.repeat((start[s.img] - ends[off[:-1]]).astype(dt), cnt)
    # run k of a mask ends where its pixels (k even: a background run ends) begin, or (k odd) end
    fg = (np.arange(runs.size, dtype=np.int32) & 1).astype(np.int8)
    fg ^= np.repeat((off[:-1] & 1).astype(np.int8), cnt)
    seg = np.repeat(np.arange(1, n + 1, dtype=np.int32), cnt)
    px[rows] = np.bincount(seg, runs * fg, minlength=n + 1)[1:].astype(np.int64)
    change = seg * (1 - 2 * fg).astype(np.int32)
    last = off[1:] - 1
    change[last[fg[last] == 0]] = 0  # a background run that ends at the image's end: nothing begins there
    return pos, change


def _chunk_pairs(pairs: Any, t: _Runs, p: _Runs, start: IntArray, t_rows: IntArray, p_rows: IntArray,
                 parts: list[tuple[IntArray, IntArray, IntArray]], t_px: IntArray, p_px: IntArray) -> bool:
    """The overlaps of a chunk by the compiled sweep over both sides' runs (``maslow._native.png``'s ``pairs``: the
    events sorted by position, each stretch between two added to its pair); False where two masks of a side
    overlap (the numpy events then name them)."""
    out = pairs.pairs(t.runs, t.off, np.ascontiguousarray(start[t.img]), p.runs, p.off,
                      np.ascontiguousarray(start[p.img]))
    if out is None:
        return False
    assert t.fg is not None and p.fg is not None  # read with ``pairs``: set
    n_t, n_p = len(t_rows), len(p_rows)
    t_px[t_rows], p_px[p_rows] = t.fg, p.fg
    _collect(np.frombuffer(out, np.int64).reshape(n_t + 1, n_p + 1)[:, 1:].reshape(-1), n_t, n_p, t_rows, p_rows,
             parts)
    return True


def _chunk_runs(t: _Runs, p: _Runs, start: IntArray, truth: Dataset, pred: Dataset, i: int, j: int,
                t_rows: IntArray, p_rows: IntArray, parts: list[tuple[IntArray, IntArray, IntArray]], t_px: IntArray,
                p_px: IntArray) -> bool:
    """The overlaps of images ``i..j-1`` from the masks' runs; False where the label maps must do."""
    t_ev = _events(t, start, t_rows, t_px)
    p_ev = _events(p, start, p_rows, p_px)
    pos = np.concatenate((t_ev[0], p_ev[0]))
    order = np.argsort(pos, kind="stable")  # each mask's events are in order: a merge of sorted runs
    change = np.concatenate((t_ev[1], p_ev[1]))[order]
    is_t = order < len(t_ev[0])
    # the segment in force on each side from each event to the next: the sum of the changes so far (one side's
    # segments don't overlap: where they do, the sum is no segment, caught below by the pixels it leaves out)
    n_t, n_p = len(t_rows), len(p_rows)
    dt = change.dtype if (n_t + 2) * (n_p + 2) < 1 << 31 else np.int64
    seg_t = np.minimum(np.cumsum(np.where(is_t, change, 0), dtype=dt)[:-1], n_t + 1)  # n_t + 1: a pixel claimed
    seg_p = np.minimum(np.cumsum(np.where(is_t, 0, change), dtype=dt)[:-1], n_p + 1)  # twice
    seg_t *= n_p + 2
    seg_t += seg_p
    table = np.bincount(seg_t, np.diff(pos[order]), minlength=(n_t + 2) * (n_p + 2)).reshape(n_t + 2, n_p + 2)
    table = np.rint(table).astype(np.int64)  # float64 sums of integers far below 2**53: exact
    for side, covered, rows, px in (("truth", table[1:].sum(), t_rows, t_px), ("pred", table[:, 1:].sum(), p_rows,
                                                                              p_px)):
        if int(covered) != int(px[rows].sum()):  # a pixel claimed twice: name the masks
            ds = truth if side == "truth" else pred
            sl = ds.image_slices()
            for k in range(i, j):
                _paint(ds, np.arange(sl[k], sl[k + 1]), side, k)
            return False  # the runs and the decoded masks disagree (no overlap there): count from the label maps
    _collect(table[:n_t + 1, 1:n_p + 1].reshape(-1), n_t, n_p, t_rows, p_rows, parts)
    return True


def _collect(table: IntArray, n_t: int, n_p: int, t_rows: IntArray, p_rows: IntArray,
             parts: list[tuple[IntArray, IntArray, IntArray]]) -> None:
    """The non-zero cells of a (n_t + 1, n_p) table (row 0: VOID) as (truth row or -1, pred row, pixels)."""
    if not n_p:
        return
    nz = np.flatnonzero(table)
    t, p = nz // n_p, nz % n_p
    parts.append((np.where(t > 0, np.append(-1, t_rows)[t], -1), p_rows[p], table[nz]))


# -- label maps ------------------------------------------------------------------------------------------------

def _paint(ds: Dataset, rows: IntArray, side: str, image: int) -> tuple[np.ndarray, IntArray]:
    """(h, w) int64 segment numbers (row in ``rows`` + 1; 0: none), column-major, and each mask's pixel count.

    Raises:
        InvalidDatasetError: a missing mask, one of another size, or two that overlap (naming both rows).
    """
    h, w = int(ds.images.height[image]), int(ds.images.width[image])
    out = np.zeros((h, w), np.int64, order="F")
    masks = masks_of(ds, rows, side)
    px = area(masks).astype(np.int64)
    for k, rle in enumerate(masks):
        np.copyto(out, k + 1, where=decode(rle))
    if int(px.sum()) != int(np.count_nonzero(out)):  # a pixel claimed twice: name the first two masks that do
        out[:] = 0
        for k, rle in enumerate(masks):
            m = decode(rle)
            prior = out[m]
            if prior.any():
                first = int(prior[prior > 0][0])
                raise InvalidDatasetError(
                    f"{side}.annotations.mask row {int(rows[k])}: the segments of image {image} must not overlap "
                    f"(each pixel is one segment's), got {int(np.count_nonzero(prior))} pixels shared with row "
                    f"{int(rows[first - 1])}")
            out[m] = k + 1
    return out, px


def _image_maps(truth: Dataset, pred: Dataset, i: int, t_rows: IntArray, p_rows: IntArray,
                parts: list[tuple[IntArray, IntArray, IntArray]], t_px: IntArray, p_px: IntArray) -> None:
    """The overlaps of image ``i`` by one bincount over its two label maps."""
    t_map, t_px[t_rows] = _paint(truth, t_rows, "truth", i)
    p_map, p_px[p_rows] = _paint(pred, p_rows, "pred", i)
    n_p = len(p_rows)
    if not n_p:
        return
    key = t_map.reshape(-1, order="F") * (n_p + 1) + p_map.reshape(-1, order="F")
    table = np.bincount(key, minlength=(len(t_rows) + 1) * (n_p + 1)).reshape(-1, n_p + 1)[:, 1:]
    _collect(table.reshape(-1), len(t_rows), n_p, t_rows, p_rows, parts)
