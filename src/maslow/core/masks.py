"""Masks as COCO run-length encoding, through pycocotools.

Glossary: an RLE is ``{"size": [height, width], "counts": bytes}`` (compressed, column-major, as pycocotools
writes it); an *uncompressed* RLE has ``counts`` as a list of ints; a polygon is a list of flat
``[x0, y0, x1, y1, ...]`` float arrays in pixel coordinates, unioned when rasterised.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from maslow.core.types import FloatArray
from maslow.errors import InvalidDatasetError


@functools.cache
def coco_mask() -> Any:
    """``pycocotools.mask``, imported on first use (box and keypoint work never loads it)."""
    from pycocotools import mask

    return mask


#: one flat polygon ring ``x0, y0, x1, y1, ...`` (a list or a float array)
Ring = Sequence[float] | FloatArray


def encode(binary: np.ndarray) -> dict[str, Any]:
    """RLE of an (h, w) boolean mask."""
    return coco_mask().encode(np.asfortranarray(np.asarray(binary, dtype=np.uint8)))  # type: ignore[no-any-return]


def decode(rle: dict[str, Any]) -> np.ndarray:
    """(h, w) bool mask of an RLE."""
    with warnings.catch_warnings():
        # pycocotools 2.0.11's decode calls np.array(copy=False) on an object whose __array__ predates numpy 2
        warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        out: np.ndarray = coco_mask().decode(compress(rle)).astype(bool)
    return out


def compress(rle: dict[str, Any]) -> dict[str, Any]:
    """Compressed RLE (bytes counts) from a compressed (bytes or str) or uncompressed (list) RLE."""
    counts = rle["counts"]
    h, w = (int(v) for v in rle["size"])
    if isinstance(counts, np.ndarray):
        counts = counts.tolist()
    if isinstance(counts, list):
        return coco_mask().frPyObjects({"size": [h, w], "counts": counts}, h, w)  # type: ignore[no-any-return]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [h, w], "counts": counts}


def to_json(rle: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe RLE (counts as str)."""
    c = rle["counts"]
    return {"size": [int(v) for v in rle["size"]], "counts": c.decode("ascii") if isinstance(c, bytes) else c}


def uncompressed(rle: dict[str, Any]) -> dict[str, Any]:
    """RLE with counts as a list of run lengths (the form COCO uses for iscrowd in files)."""
    m = decode(rle)
    flat = m.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0, *runs]
    return {"size": [int(v) for v in rle["size"]], "counts": runs}


def from_polygons(polygons: Sequence[Ring], height: int, width: int) -> dict[str, Any]:
    """One RLE, the union of the polygons, rasterised as pycocotools does."""
    polys = [list(map(float, p)) for p in polygons if len(p) >= 6]
    if not polys:
        return encode(np.zeros((height, width), bool))
    rles = coco_mask().frPyObjects(polys, height, width)
    return coco_mask().merge(rles)  # type: ignore[no-any-return]


def area(rles: Sequence[dict[str, Any]]) -> FloatArray:
    """(n,) pixel counts.

    pycocotools 2.0.11 sizes its count array by the number of masks with a uint8 under numpy 2, so it overflows
    past 255 masks: it is called in chunks of 255.
    """
    out = np.zeros(len(rles))
    for s in range(0, len(rles), 255):
        out[s:s + 255] = coco_mask().area([compress(r) for r in rles[s:s + 255]])
    return out


def to_box(rles: Sequence[dict[str, Any]]) -> FloatArray:
    """(n, 4) xyxy boxes around RLE masks (pycocotools' toBbox, converted from xywh); ``[0, 0, 0, 0]`` for an
    empty mask.

    toBbox reads an empty mask whose counts hold a zero-length foreground run (``[9, 0]`` for 3 x 3) as
    ``[w, h, 2^32 + 1 - w, 2^32 + 1 - h]`` (xywh, a uint32 wrap), not as the zeros of its canonical ``[9]``: such
    masks get the zeros.
    """
    if not len(rles):
        return np.zeros((0, 4))
    comp = [compress(r) for r in rles]
    b = np.asarray(coco_mask().toBbox(comp), dtype=np.float64).reshape(-1, 4)
    b[:, 2:] += b[:, :2]
    sizes = np.array([r["size"] for r in comp], np.float64).reshape(-1, 2)
    empty = (area(comp) == 0) & (sizes[:, 0] * sizes[:, 1] < 2.0**32)  # area is a uint32 sum
    b[empty] = 0.0
    return b


def polygon_area(poly: Ring) -> float:
    """Shoelace area of one flat polygon."""
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_box(polys: Sequence[Ring]) -> FloatArray:
    """(4,) xyxy box around the vertices of one or more polygons."""
    pts = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in polys]) if polys else np.zeros((0, 2))
    if not len(pts):
        return np.full(4, np.nan)
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])


def outer_ring(rle: dict[str, Any]) -> tuple[FloatArray | None, int, int]:
    """The outer boundary of a mask's largest 4-connected part as a flat ring along pixel edges (None for an empty
    mask), the pixels that ring's inside gets wrong (other parts, holes: 0 for one part without holes) and the
    mask's area."""
    m = decode(rle)
    h, w = m.shape
    if not m.any():
        return None, 0, 0
    p = np.pad(m, 1)
    core = p[1:-1, 1:-1]
    # each pixel side with background beyond it, as an edge (x0, y0) -> (x1, y1), clockwise in image coordinates
    sides = ((p[:-2, 1:-1], 0, 0, 1, 0), (p[1:-1, 2:], 1, 0, 1, 1), (p[2:, 1:-1], 1, 1, 0, 1),
             (p[1:-1, :-2], 0, 1, 0, 0))
    cols: list[list[np.ndarray]] = [[], [], [], [], [], []]
    for d, (beyond, x0, y0, x1, y1) in enumerate(sides):
        r, c = np.nonzero(core & ~beyond)
        for k, v in enumerate((c + x0, r + y0, c + x1, r + y1, r * w + c, np.full(r.size, d))):
            cols[k].append(v)
    xs, ys, xe, ye, pix, side = (np.concatenate(v) for v in cols)
    start = ys * (w + 1) + xs
    order = np.argsort(start, kind="stable")
    lo = np.searchsorted(start[order], ye * (w + 1) + xe)
    first, second = order[lo], order[np.minimum(lo + 1, order.size - 1)]
    # where two parts touch at a corner, two edges leave it: stay on the pixel the edge came along (4-connected)
    two = (lo + 1 < order.size) & (start[second] == start[first])
    nxt = np.where(two & (pix[first] != pix), second, first)
    loop = np.full(nxt.size, -1)
    n_loops = 0
    for e in range(nxt.size):
        while loop[e] < 0:
            loop[e] = n_loops
            e = nxt[e]
        n_loops += int(loop[e] == n_loops)
    area = np.bincount(loop, xs * ye - xe * ys, minlength=n_loops)  # 2 x signed area: holes are negative
    e0 = int(np.flatnonzero(loop == int(np.argmax(area)))[0])
    chain = [e0]
    while (e := int(nxt[chain[-1]])) != e0:
        chain.append(e)
    ch = np.asarray(chain)
    corner = ch[side[ch] != side[np.roll(ch, 1)]]
    ring = np.column_stack([xs[corner], ys[corner]]).astype(np.float64).ravel()
    vert = ch[side[ch] % 2 == 1]  # inside the ring: an odd number of its vertical edges to the left, per row
    flips = np.zeros((h, w + 1), np.int64)
    np.add.at(flips, (np.minimum(ys[vert], ye[vert]), xs[vert]), 1)
    inside = (np.cumsum(flips, axis=1)[:, :w] % 2).astype(bool)
    return ring, int(np.count_nonzero(inside ^ m)), int(m.sum())


def paint_label_map(ann: Any, rows: range, code: np.ndarray, h: int, w: int, fill: int, side: str, image: int,
                    *, crowd: bool) -> np.ndarray:
    """The (h, w) uint8 label map of one image's semantic masks: annotation rows ``rows`` of ``ann`` painted with
    ``code[label]`` (crowd rows with 255 when ``crowd``), ``fill`` where no mask is. The semantic metrics, the
    model comparison and the label-error finding all read label maps this way.

    Raises:
        InvalidDatasetError: a row without a mask, of another size than (h, w), or overlapping an earlier row
            (naming ``side``, the row and the image).
    """
    out = np.full((h, w), fill, np.uint8)
    covered = np.zeros((h, w), bool)
    for r in rows:
        rle = None if ann.mask is None else ann.mask[r]
        if rle is None:
            raise InvalidDatasetError(f"{side}.annotations.mask row {r}: must be an RLE mask, got None "
                                      f"(image {image})")
        size = [int(v) for v in rle["size"]]
        if size != [h, w]:
            raise InvalidDatasetError(f"{side}.annotations.mask row {r}: size must be the image's [{h}, {w}], "
                                      f"got {size} (image {image})")
        m = decode(rle)
        if (covered & m).any():
            raise InvalidDatasetError(f"{side}.annotations.mask row {r}: masks of image {image} must not overlap, "
                                      f"got {int((covered & m).sum())} pixels shared with an earlier row")
        covered |= m
        out[m] = 255 if crowd and ann.iscrowd[r] else code[ann.label[r]]
    return out
