"""What the DOTA ground-truth and results modules share: the numbers of a line (errors naming the file, line and
field), how numbers and names are printed, the corners written for each annotation, and image lookup by stem.

Private to ``maslow.io.dota`` and ``maslow.io.dota_results``; see ``dota`` for the conventions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.obb import ROTATION_COLUMNS, box_rotation
from maslow.core.types import BoolArray, FloatArray
from maslow.errors import FormatError
from maslow.io._common import Collector
from maslow.io._export import Tally
from maslow.io._walk import Skipped, files_under
from maslow.io._yolo_obb import written_corners
from maslow.io.images import is_image_name

COORDS = ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4")
#: The most decimals ``decimals=`` may ask for (float64 holds ~16 significant digits; more would print noise).
MAX_DECIMALS = 15
#: Files whose coordinates have at most this many decimals are written back with as many (``1054.0`` stays so);
#: beyond it a fixed number of decimals may no longer give every float back (16 significant digits), so the
#: writer prints the shortest exact text instead.
KEPT_DECIMALS = 6
_SPACE = re.compile(r"\s+")
_INT_TAIL = re.compile(r"\.0(?=[ \n]|$)")
_UNSAFE_FILE = re.compile(r"[\s/\\\x00]+")


def numbers(toks: Sequence[str], names: Sequence[str], path: str | Path, n: int) -> list[float]:
    """The values of ``toks`` (named ``names``) as floats.

    Raises:
        FormatError: a value that is not a finite number (names the file, line ``n`` and the field).
    """
    out = []
    for tok, name in zip(toks, names, strict=True):
        try:
            v = float(tok)
        except ValueError:
            raise FormatError(f"{name} must be a number, got {tok!r}", path=path, record=f"line {n}",
                              field=name) from None
        if not math.isfinite(v):
            raise FormatError(f"{name} must be a finite number, got {tok!r}", path=path, record=f"line {n}",
                              field=name)
        out.append(v)
    return out


def bulk_numbers(rows: list[list[str]], width: int) -> FloatArray | None:
    """(len(rows), width) the values of rows of ``width`` number tokens, converted in one pass; None when one is
    not a finite number (then ``numbers`` line by line names it)."""
    try:
        vals = list(map(float, [v for r in rows for v in r]))
    except ValueError:
        return None
    if not math.isfinite(sum(vals)):  # a nan or an inf (or values too large to be coordinates)
        return None
    return np.array(vals, np.float64).reshape(len(rows), width)


def most_decimals(tokens: Sequence[str]) -> int:
    """The most decimals among number tokens, counted up to ``KEPT_DECIMALS + 1`` (any more is the same to the
    writer: it prints such values as the shortest exact text); ``KEPT_DECIMALS + 1`` too for exponent notation."""
    text = " ".join(tokens)
    if "e" in text or "E" in text:
        return KEPT_DECIMALS + 1
    k = 0
    while k <= KEPT_DECIMALS and re.search(rf"\.[0-9]{{{k + 1}}}", text):  # a C scan per decimal, no list of matches
        k += 1
    return k


def check_decimals(decimals: Any, dst: Path) -> int | None:
    """``decimals`` as an int in 0..MAX_DECIMALS, or None.

    Raises:
        FormatError: anything else.
    """
    if decimals is None:
        return None
    if isinstance(decimals, bool) or not isinstance(decimals, int | np.integer) or not 0 <= decimals <= MAX_DECIMALS:
        raise FormatError(f"decimals must be an integer 0..{MAX_DECIMALS}, got {decimals!r}", path=dst)
    return int(decimals)


def fmt_rows(values: FloatArray, decimals: int | None) -> list[str]:
    """Each row of ``values`` as numbers separated by spaces (one format call per row): with ``decimals`` decimals,
    else the shortest text that reads back as the same float (integers without a decimal point)."""
    if not len(values):
        return []
    pattern = " ".join([f"%.{decimals}f" if decimals is not None else "%r"] * values.shape[1])
    text = "\n".join([pattern % tuple(r) for r in values.tolist()])
    if decimals is None:
        text = _INT_TAIL.sub("", text)  # 12.0 -> 12
    return text.split("\n")


def line_name(name: str) -> str:
    """A class name as a DOTA line can hold it: one field, so runs of white space become ``_``."""
    return _SPACE.sub("_", name.strip()) or "_"


def file_name(name: str) -> str:
    """A class name as a ``Task1_<name>.txt`` file name can hold it (no white space, no path separators)."""
    return _UNSAFE_FILE.sub("_", name.strip()) or "_"


def stem(path: str) -> str:
    """The file name of an image path without its suffix (how DOTA names images)."""
    return PurePosixPath(str(path)).stem


def index_images(folder: Path, *, recursive: bool, col: Collector | None = None,
                 used: Container[str] | None = None) -> dict[str, str]:
    """Image file stem -> its path relative to ``folder`` (POSIX), for the files with an image suffix (``recursive``:
    also below it, linked folders followed, each real folder once; the folders that can't be listed and the broken
    links are reported to ``col``, an ``unreadable_folder`` or ``broken_link`` warning each); a stem found twice
    keeps the first by sorted path, and is reported to ``col`` (an ``ambiguous_image`` warning naming the files)
    when ``used`` holds it (default: every stem, as the ground-truth reader reads every image found)."""
    if not folder.is_dir():
        return {}
    if recursive:
        skipped = Skipped()
        found = files_under(str(folder), is_image_name, skipped=skipped)
        if col is not None:
            skipped.report(col)
    else:
        found = sorted((p.name,) for p in folder.iterdir() if is_image_name(p.name) and p.is_file())
    out: dict[str, str] = {}
    twice: dict[str, list[str]] = {}
    for parts in found:
        path = "/".join(parts)
        s = PurePosixPath(parts[-1]).stem
        if out.setdefault(s, path) is not path:
            twice.setdefault(s, [out[s]]).append(path)
    if col is not None:
        for s, paths in twice.items():
            if used is None or s in used:
                col.add("ambiguous_image", f"{len(paths)} image files share the stem {s!r} ({', '.join(paths)}): "
                        f"took {paths[0]!r}, the first by sorted path; the others are not read", file=folder / paths[0])
    return out


def quads(ds: Dataset, lost: Tally) -> tuple[FloatArray, BoolArray]:
    """(n, 4, 2) the four corners written for each annotation and (n,) whether it has any: a polygon of one ring of
    4 points as it is; another polygon, or a mask, as its minimum-area rectangle; a turned box (CVAT, Label Studio)
    as its turned corners; a box as its corners (as the YOLO OBB writer does, ``_yolo_obb``). What a corner list
    can't hold is counted in ``lost`` at ``(image, 0, row, 0)``."""
    a = ds.annotations
    n = len(a)
    out = np.full((n, 4, 2), np.nan)
    done = np.zeros(n, bool)
    poly = a.polygon
    has_poly = np.zeros(n, bool)
    if poly is not None and n:
        first = poly.row_offsets[:-1]
        n_rings = np.diff(poly.row_offsets)
        has_poly = ~poly.null & (n_rings > 0)
        last = len(poly.ring_offsets) - 1
        ring_len = np.where(n_rings == 1, poly.ring_offsets[np.minimum(first + 1, last)]
                            - poly.ring_offsets[np.minimum(first, last)], 0)
        simple = has_poly & (n_rings == 1) & (ring_len == 8)
        start = poly.ring_offsets[first[simple]]
        out[simple] = poly.xy[start[:, None] + np.arange(8)].reshape(-1, 4, 2)
        done |= simple
    has_mask = np.zeros(n, bool) if a.mask is None else np.fromiter((m is not None for m in a.mask.tolist()), bool, n)
    plain = ~done & ~has_poly & ~has_mask & a.has_box
    if plain.any() and any(name in a.extra for name, _ in ROTATION_COLUMNS):
        for r in np.flatnonzero(plain).tolist():
            if box_rotation(a.extra, r) is not None:
                plain[r] = False
    assert a.box is not None
    x1, y1, x2, y2 = a.box[plain].T
    out[plain] = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                           np.stack([x1, y2], 1)], axis=1)
    done |= plain
    for r in np.flatnonzero(~done).tolist():  # other polygons, masks, turned boxes: row by row
        corners = written_corners(a, r, lost, (int(a.image[r]), 0, r, 0))
        if corners is not None:
            out[r] = corners
            done[r] = True
    return out, done
