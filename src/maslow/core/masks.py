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
