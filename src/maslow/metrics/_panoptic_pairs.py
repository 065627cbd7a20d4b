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
            done = (pairs is not None and _chunk_pairs(pairs, kernel, truth, pred, i, j, t_rows, p_rows, parts, t_px,
                                                        p_px)) or \
                _chunk_runs(kernel, truth, pred, i, j, t_rows, p_rows, parts, t_px, p_px)
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

def _events(kernel: Any, ds: Dataset, rows: IntArray, side: str, start: IntArray, px: IntArray,
            ) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixel positions (counted from the chunk's first image) and changes (``+s`` where segment ``s`` begins,
    ``-s`` where it ends; ``s``: row in ``rows`` + 1) of the events of ``rows``' masks, each mask's in order (int32,
    int64 where the chunk's sums need it); pixel counts into ``px``. None where the label maps must do (a polygon, a missing mask, a form the kernel leaves to
    pycocotools: they raise or read it there)."""
    a = ds.annotations
    n = len(rows)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
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
    runs = np.frombuffer(raw, np.uint32)
    off = np.frombuffer(off_b, np.int64)
    cnt = np.diff(off)
    wide = int((height * width).sum()) + int(start[img].max()) >= 1 << 31  # 32 bits hold the chunk's sums
    dt = np.int64 if wide else np.int32
    cs = np.cumsum(runs, dtype=dt)
    ends = np.concatenate((np.zeros(1, dt), cs))
    total = ends[off[1:]] - ends[off[:-1]]
    bad = np.flatnonzero(total != height * width)
    if bad.size:
        r = int(rows[bad[0]])
        raise InvalidDatasetError(f"{side}.annotations.mask row {r}: its run lengths must cover the image's "
                                  f"{int(height[bad[0]] * width[bad[0]])} pixels, got {int(total[bad[0]])} "
                                  f"(image {int(img[bad[0]])})")
    pos = cs + np.repeat((start[img] - ends[off[:-1]]).astype(dt), cnt)
    # run k of a mask ends where its pixels (k even: a background run ends) begin, or (k odd) end
    fg = (np.arange(runs.size, dtype=np.int32) & 1).astype(np.int8)
    fg ^= np.repeat((off[:-1] & 1).astype(np.int8), cnt)
    seg = np.repeat(np.arange(1, n + 1, dtype=np.int32), cnt)
    px[rows] = np.bincount(seg, runs * fg, minlength=n + 1)[1:].astype(np.int64)
    change = seg * (1 - 2 * fg).astype(np.int32)
    last = off[1:] - 1
    change[last[fg[last] == 0]] = 0  # a background run that ends at the image's end: nothing begins there
    return pos, change


def _side_runs(kernel: Any, pairs: Any, ds: Dataset, rows: IntArray, start: IntArray,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Runs, offsets, bases (its image's first pixel in the chunk) and pixel counts of ``rows``' masks; None
    for anything ``_events`` would raise on or leave to the label maps (it then does so)."""
    a = ds.annotations
    if a.mask is None or (a.polygon is not None and not bool(a.polygon.null[rows].all())):
        return None
    if not len(rows):
        return np.zeros(0, np.uint32), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    raw, off, h_b, w_b, status = kernel.dict_runs(a.mask[rows].tolist())
    img = a.image[rows]
    height, width = ds.images.height[img], ds.images.width[img]
    if np.frombuffer(status, np.uint8).any() or (np.frombuffer(h_b, np.int64) != height).any() or \
            (np.frombuffer(w_b, np.int64) != width).any():
        return None
    total, fg = (np.frombuffer(b, np.int64) for b in pairs.sums(raw, off))
    if (total != height * width).any():
        return None
    return np.frombuffer(raw, np.uint32), np.frombuffer(off, np.int64), np.ascontiguousarray(start[img]), fg


def _chunk_pairs(pairs: Any, kernel: Any, truth: Dataset, pred: Dataset, i: int, j: int, t_rows: IntArray,
                 p_rows: IntArray, parts: list[tuple[IntArray, IntArray, IntArray]], t_px: IntArray, p_px: IntArray,
                 ) -> bool:
    """The overlaps of images ``i..j-1`` by the compiled sweep over both sides' runs (``maslow._native.png``'s
    ``pairs``: the events sorted by position, each stretch between two added to its pair); False where the numpy
    events must look (a mask they refuse or leave to the label maps, or two masks of a side that overlap): they
    then raise or count as before."""
    sizes = truth.images.height[i:j].astype(np.int64) * truth.images.width[i:j]
    start = np.zeros(truth.n_images, np.int64)
    start[i:j] = np.cumsum(sizes) - sizes
    t = _side_runs(kernel, pairs, truth, t_rows, start)
    p = _side_runs(kernel, pairs, pred, p_rows, start) if t is not None else None
    if t is None or p is None:
        return False
    out = pairs.pairs(*t[:3], *p[:3])
    if out is None:
        return False
    n_t, n_p = len(t_rows), len(p_rows)
    t_px[t_rows], p_px[p_rows] = t[3], p[3]
    _collect(np.frombuffer(out, np.int64).reshape(n_t + 1, n_p + 1)[:, 1:].reshape(-1), n_t, n_p, t_rows, p_rows,
             parts)
    return True


def _chunk_runs(kernel: Any, truth: Dataset, pred: Dataset, i: int, j: int, t_rows: IntArray, p_rows: IntArray,
                parts: list[tuple[IntArray, IntArray, IntArray]], t_px: IntArray, p_px: IntArray) -> bool:
    """The overlaps of images ``i..j-1`` from the masks' runs; False where the label maps must do."""
    sizes = truth.images.height[i:j].astype(np.int64) * truth.images.width[i:j]
    start = np.zeros(truth.n_images, np.int64)
    start[i:j] = np.cumsum(sizes) - sizes
    t_ev = _events(kernel, truth, t_rows, "truth", start, t_px)
    p_ev = _events(kernel, pred, p_rows, "pred", start, p_px)
    if t_ev is None or p_ev is None:
        return False
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
