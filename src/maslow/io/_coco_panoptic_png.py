"""The PNGs of the COCO panoptic format (``maslow.io.coco_panoptic``): segment-id maps to COCO RLE masks and back.

A panoptic PNG holds one segment id per pixel, ``id = R + 256 G + 256^2 B`` (panopticapi's ``rgb2id``); 0 is VOID
(no segment). Reading turns an id map into the run lengths of every segment at once (one pass over the
column-major pixels: the runs of equal ids, grouped by id), and those into pycocotools' compressed RLE (the same
strings as ``pycocotools.mask.encode`` of each segment's pixels), with each segment's pixel area and box.

Two ways to the same segments: with the compiled kernel ``maslow._native.png``, the PNGs these files are (8 bits a
sample, RGB, RGBA or palette, not interlaced, only chunks that Pillow reads without effect on the pixels) are
parsed here and decoded, turned into ids and segments in C (``_parse``); any other file, or one with anything amiss
(a bad chunk CRC or length, a zlib stream that is not exactly the image's rows, a palette index past the palette),
is read by Pillow and numpy as without the kernel, so it gives the same pixels, or the same error, as always.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow._native import load
from maslow.core import masks as M
from maslow.core.types import FloatArray, IntArray
from maslow.errors import FormatError
from maslow.io.images import MAX_PIXELS

#: the largest segment id three 8-bit channels hold
MAX_ID = (1 << 24) - 1
#: modes whose pixels are colours (RGBA: alpha ignored, as panopticapi's rgb2id reads the first three channels;
#: P: the palette's colours)
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P")
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: colour type -> samples a pixel, of the PNGs decoded by the kernel (8 bits a sample)
_CHANNELS = {2: 3, 3: 1, 6: 4}
#: chunks before the image data that Pillow reads into ``info`` only, and the shortest it reads without an error
_INFO_CHUNKS = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9, b"tRNS": 0}
#: chunks Pillow has a reader for (any other one it skips)
_PILLOW_CHUNKS = frozenset({b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"pHYs", b"tEXt",
                            b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"acTL", b"fcTL", b"fdAT"})


@dataclass(frozen=True)
class Segments:
    """The segments of one id map, by id (ascending, VOID left out).

    Attributes:
        ids: (k,) int64 segment ids.
        counts: k pycocotools counts strings (``frPyObjects`` of the run lengths, background first, column-major);
            empty where ``segments`` was asked for none.
        area: (k,) int64 pixel counts.
        box: (k, 4) float64 xyxy around each segment's pixels (pixel i spans [i, i + 1)).
    """

    ids: IntArray
    counts: list[bytes]
    area: IntArray
    box: FloatArray

    def index(self) -> dict[int, int]:
        """Segment id -> position."""
        return {v: i for i, v in enumerate(self.ids.tolist())}

    def rle(self, k: int, h: int, w: int) -> dict[str, Any]:
        """Segment ``k``'s mask as a COCO RLE dict (as ``pycocotools.mask.encode`` gives)."""
        return {"size": [h, w], "counts": self.counts[k]}


def read_segments(path: Path, *, max_pixels: int = MAX_PIXELS) -> tuple[Segments, int, int]:
    """The segments of a panoptic PNG, and its h, w (the kernel's path where it applies; module docstring).

    Raises:
        FormatError: as ``read_ids``.
    """
    kernel = load("png")
    if kernel is not None:
        try:
            data = path.read_bytes()
        except OSError:
            data = b""  # Pillow reports it
        png = _parse(data, max_pixels)
        if png is not None:
            out = kernel.panoptic(*png)
            if out is not None:
                ids, counts, area, box = out
                return Segments(np.frombuffer(ids, np.int64), counts, np.frombuffer(area, np.int64),
                                np.frombuffer(box, np.float64).reshape(-1, 4)), png[1], png[2]
    flat, h, w = read_ids(path, max_pixels=max_pixels)
    return segments(flat, h), h, w


def _parse(data: bytes, max_pixels: int) -> tuple[Any, int, int, int, bytes | None] | None:
    """(zlib data, h, w, samples a pixel, palette) of a PNG the kernel decodes as Pillow does; None for any other
    (Pillow reads those): a bad signature, length or CRC; not 8-bit RGB, RGBA or palette; interlaced; larger than
    ``max_pixels`` or Pillow's limit; a chunk Pillow would read into something other than ``info`` or refuse;
    image data not in one run of IDAT chunks followed by IEND."""
    from PIL import Image

    if data[:8] != _SIGNATURE or len(data) < 33 or data[12:16] != b"IHDR" or data[8:12] != b"\0\0\0\r":
        return None
    w, h, depth, colour, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    channels = _CHANNELS.get(colour)
    bomb = Image.MAX_IMAGE_PIXELS
    if (channels is None or depth != 8 or compression or filtering or interlace or not 0 < w * h <= max_pixels
            or (bomb is not None and w * h > 2 * bomb)):
        return None
    view = memoryview(data)
    pos, n = 8, len(data)
    palette: bytes | None = None
    idat: list[memoryview] = []
    while True:
        if pos + 12 > n:
            return None
        (length,), cid = struct.unpack_from(">I", data, pos), data[pos + 4:pos + 8]
        end = pos + 12 + length
        if idat and cid != b"IDAT":
            break
        if end > n or zlib.crc32(view[pos + 4:end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return None
        if cid == b"IDAT":
            idat.append(view[pos + 8:end - 4])
        elif cid == b"PLTE" and palette is None:
            palette = data[pos + 8:end - 4]
        elif cid in _INFO_CHUNKS:  # (a palette's transparency: Pillow warns as it converts, so it reads those)
            if length < (6 if cid == b"tRNS" and colour == 2 else _INFO_CHUNKS[cid]) or (cid == b"tRNS" and colour == 3):
                return None
        elif (cid in _PILLOW_CHUNKS and pos > 8) or not cid.isalpha():
            return None
        pos = end
    if cid != b"IEND":
        return None
    if colour == 3:
        if palette is None or not 0 < len(palette) <= 768 or len(palette) % 3:
            return None
    else:
        palette = None
    return (idat[0] if len(idat) == 1 else b"".join(idat)), h, w, channels, palette


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


def segments(flat: np.ndarray, h: int, *, counts: bool = True) -> Segments:
    """The segments of a column-major flat id map of ``h`` rows (``read_ids``); ``counts=False``: without their
    counts strings (``Segments.counts`` empty; ``rle`` unusable), which cost a pass of pycocotools without the
    kernel."""
    kernel = load("png")
    if kernel is not None and flat.size and flat.dtype == np.uint32:
        ids, strings, area, box = kernel.segments(np.require(flat, np.uint32, ("C", "A")), h, flat.size // h)
        return Segments(np.frombuffer(ids, np.int64), strings if counts else [], np.frombuffer(area, np.int64),
                        np.frombuffer(box, np.float64).reshape(-1, 4))
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
    strings = _counts(start, end, first, last, n, h) if counts else []
    col0, col1 = start // h, (end - 1) // h
    one = col0 == col1  # a run over several columns covers rows 0 and h - 1
    y0 = np.where(one, start % h, 0)
    y1 = np.where(one, (end - 1) % h, h - 1)
    box = np.column_stack([col0[first], np.minimum.reduceat(y0, first), col1[last] + 1,
                           np.maximum.reduceat(y1, first) + 1]).astype(np.float64)
    return Segments(val[first], strings, np.add.reduceat(length, first), box)


def _counts(start: IntArray, end: IntArray, first: IntArray, last: IntArray, n: int, h: int) -> list[bytes]:
    """The counts strings of the segments whose runs (``start``, ``end``: pixels of a map of ``n``) are
    ``first[g]..last[g]``, each one's in pixel order."""
    prev_end = np.empty_like(end)
    prev_end[1:] = end[:-1]
    prev_end[first] = 0
    runs = np.empty(2 * start.size, np.int64)  # per run: the background before it, then its length
    runs[0::2] = start - prev_end
    runs[1::2] = end - start
    tail = (n - end[last]).tolist()
    bounds = [*(2 * first).tolist(), runs.size]
    counts = []
    for g, t in enumerate(tail):
        c = runs[bounds[g]:bounds[g + 1]].tolist()
        if t:
            c.append(t)
        counts.append(c)
    w = n // h
    return [rle["counts"] for rle in M.coco_mask().frPyObjects([{"size": [h, w], "counts": c} for c in counts], h, w)]


def empty_rle(h: int, w: int) -> dict[str, Any]:
    """The RLE of an h x w mask with no pixel."""
    out: dict[str, Any] = M.coco_mask().frPyObjects([{"size": [h, w], "counts": [h * w]}], h, w)[0]
    return out


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
