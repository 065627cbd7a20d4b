"""The PNGs of the COCO panoptic format (``maslow.io.coco_panoptic``): segment-id maps to COCO RLE masks and back.

A panoptic PNG holds one segment id per pixel, ``id = R + 256 G + 256^2 B`` (panopticapi's ``rgb2id``); 0 is VOID
(no segment). Reading turns an id map into the run lengths of every segment at once (one pass over the
column-major pixels: the runs of equal ids, grouped by id), and those into pycocotools' compressed RLE (the same
strings as ``pycocotools.mask.encode`` of each segment's pixels), with each segment's pixel area and box.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core import masks as M
from maslow.core.types import FloatArray, IntArray
from maslow.errors import FormatError
from maslow.io.images import MAX_PIXELS

#: the largest segment id three 8-bit channels hold
MAX_ID = (1 << 24) - 1
#: modes whose pixels are colours (RGBA: alpha ignored, as panopticapi's rgb2id reads the first three channels;
#: P: the palette's colours)
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P")


@dataclass(frozen=True)
class Segments:
    """The segments of one id map, by id (ascending, VOID left out).

    Attributes:
        ids: (k,) int64 segment ids.
        counts: k lists of pycocotools run lengths (background first, column-major).
        area: (k,) int64 pixel counts.
        box: (k, 4) float64 xyxy around each segment's pixels (pixel i spans [i, i + 1)).
    """

    ids: IntArray
    counts: list[list[int]]
    area: IntArray
    box: FloatArray

    def index(self) -> dict[int, int]:
        """Segment id -> position."""
        return {v: i for i, v in enumerate(self.ids.tolist())}


def read_ids(path: Path, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, int, int]:
    """The segment ids of a panoptic PNG as a column-major flat (h * w,) uint32 array, and h, w.

    Raises:
        FormatError: the file is missing, unreadable, too large, or not a colour image.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > max_pixels:
                raise FormatError(f"PNG must have at most {max_pixels} pixels, got {w}x{h}", path=path)
            if im.mode not in _COLOUR_MODES:
                raise FormatError(f"PNG must hold colours (segment id = R + 256 G + 256^2 B), got mode {im.mode!r}",
                                  path=path)
            im.load()
            rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except FileNotFoundError:
        raise FormatError("PNG file not found", path=path) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise FormatError(f"unreadable PNG: {e}", path=path) from None
    cols = rgb.transpose(1, 0, 2)  # (w, h, 3): a C-order pass over it is column-major in the image
    ids = cols[..., 2].astype(np.uint32, order="C")
    ids <<= 8
    ids |= cols[..., 1]
    ids <<= 8
    ids |= cols[..., 0]
    return ids.reshape(-1), h, w


def segments(flat: np.ndarray, h: int) -> Segments:
    """The segments of a column-major flat id map of ``h`` rows (``read_ids``)."""
    n = flat.size
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    start = np.concatenate(([0], change))
    end = np.concatenate((change, [n]))
    val = flat[start].astype(np.int64)
    keep = val != 0  # VOID
    order = np.flatnonzero(keep)[np.argsort(val[keep], kind="stable")]  # by id, each id's runs in pixel order
    val, start, end = val[order], start[order], end[order]
    if not val.size:
        return Segments(np.zeros(0, np.int64), [], np.zeros(0, np.int64), np.zeros((0, 4)))
    first = np.flatnonzero(np.concatenate(([True], val[1:] != val[:-1])))
    last = np.append(first[1:], val.size) - 1
    length = end - start
    prev_end = np.empty_like(end)
    prev_end[1:] = end[:-1]
    prev_end[first] = 0
    runs = np.empty(2 * val.size, np.int64)  # per run: the background before it, then its length
    runs[0::2] = start - prev_end
    runs[1::2] = length
    tail = (n - end[last]).tolist()
    bounds = [*(2 * first).tolist(), runs.size]
    counts = []
    for g, t in enumerate(tail):
        c = runs[bounds[g]:bounds[g + 1]].tolist()
        if t:
            c.append(t)
        counts.append(c)
    col0, col1 = start // h, (end - 1) // h
    one = col0 == col1  # a run over several columns covers rows 0 and h - 1
    y0 = np.where(one, start % h, 0)
    y1 = np.where(one, (end - 1) % h, h - 1)
    box = np.column_stack([col0[first], np.minimum.reduceat(y0, first), col1[last] + 1,
                           np.maximum.reduceat(y1, first) + 1]).astype(np.float64)
    return Segments(val[first], counts, np.add.reduceat(length, first), box)


def to_rles(counts: list[list[int]], h: int, w: int) -> list[dict[str, Any]]:
    """Compressed RLEs (bytes counts, as ``pycocotools.mask.encode`` gives) of run-length lists."""
    if not counts:
        return []
    out: list[dict[str, Any]] = M.coco_mask().frPyObjects([{"size": [h, w], "counts": c} for c in counts], h, w)
    return out


def empty_rle(h: int, w: int) -> dict[str, Any]:
    """The RLE of an h x w mask with no pixel."""
    return to_rles([[h * w]], h, w)[0]


def id_rgb(ids: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 colours of an (h, w) id map: ``R = id % 256``, ``G = id // 256 % 256``, ``B = id // 256^2``."""
    v = ids.astype(np.uint32)
    out = np.empty((*v.shape, 3), np.uint8)
    for c in range(3):
        out[..., c] = (v >> (8 * c)) & 255
    return out


def paint(rles: list[dict[str, Any]], seg_ids: list[int], h: int, w: int) -> tuple[np.ndarray, int]:
    """The (h, w) id map of masks painted in order (a later one wins where they overlap) and the number of pixels
    painted over."""
    out = np.zeros((h, w), np.uint32, order="F")  # the layout pycocotools decodes into
    for rle, sid in zip(rles, seg_ids, strict=True):
        np.copyto(out, sid, where=M.decode(rle))
    over = int(M.area(rles).sum()) - int(np.count_nonzero(out))  # segment ids are >= 1
    return np.ascontiguousarray(out), over


def write_png(ids: np.ndarray, path: Path) -> None:
    """Save an (h, w) id map as an RGB PNG."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(id_rgb(ids)).save(path, format="PNG")
