"""COCO annotation records through the C parser (``maslow._native.records``), when it is built.

The kernel turns a JSON array of annotation objects into columns without a Python object per record. It handles
the plain records only: anything the Python path (``AnnColumns.add``) would report, convert or keep in another
column (null, a wrong type, an odd polygon, non-ASCII RLE counts, annotator/source not a string, malformed
JSON) makes it bail out, and the caller reads the whole file with the Python path, which gives every finding and
message. String image ids (``"image_id": "img_0007"``) are such a type: a file with them makes the kernel bail out
at its first record (under a millisecond), so only such files pay for the Python path. ``attributes`` objects and
the values of keys without a column of their own (LVIS-style extras, ``ignore``, annotator, source: any JSON
values) are only located by the kernel and parsed here with orjson. Oriented boxes (``obb``, ``rbox``, ``poly``)
are parsed by the kernel into float64 columns where a value is a list of 5 or 8 numbers (``w``/``h`` >= 0) in a
record without a segmentation; any other value (null, a finding, one kept as read beside a segmentation) is
located as those keys' are, and joins the column of values as read here. Here the kernel's columns fill an
``AnnColumns`` exactly as ``add`` would have, so everything after is shared. One exception to the bail-out rule: a
counts string whose runs don't sum to h * w (NaN box from the kernel) is re-checked and reported by
``AnnColumns.add_columns`` on this path (``coco_bad_rle``), not by a second reading.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any

import numpy as np

from maslow._native import load
from maslow.core import masks as M
from maslow.core.polygons import Polygons, offsets
from maslow.core.types import ObjArray
from maslow.io._coco_columns import KNOWN_KEYS, AnnColumns, attribute_parts, obj_column
from maslow.io._coco_obb import LENGTHS as OBB_LENGTHS
from maslow.io._coco_stream import SENTINEL, find_annotations
from maslow.io._common import json_loads

__all__ = ["RELEASE_WINDOW", "Lookup", "lookup_of", "parse_records", "read_coco_native", "read_results_native"]

#: Per-record columns as ``AnnColumns.add`` makes them: name, dtype, width (0: one value), fill where absent.
_COLUMNS = (("id", np.int64, 0, -1), ("id_ok", np.bool_, 0, False), ("image_id", np.int64, 0, -1),
            ("image_id_ok", np.bool_, 0, False), ("category_id", np.int64, 0, -1),
            ("category_id_ok", np.bool_, 0, False), ("bbox", np.float64, 4, np.nan), ("bbox_ok", np.bool_, 0, False),
            ("area", np.float64, 0, np.nan), ("score", np.float64, 0, np.nan), ("iscrowd", np.bool_, 0, False))
_NAMED = ("annotator", "source")  # known keys the kernel leaves to _extras (strings or null, else a finding)
_RLE_FIELDS = 6  # per RLE: record, h, w, kind (0 counts string, 1 run lengths), start, stop


#: Bytes of a mapped file consumed between two give-backs of its pages (``release``; see ``parse_records``).
RELEASE_WINDOW = 4 << 20


def parse_records(data: Any, start: int, end: int, acc: AnnColumns, *, whole: bool = False,
                  lookup: Lookup | None = None, release: int = 0) -> int | None:
    """Fill the empty ``acc`` from the JSON array at ``data[start:end]`` (``start`` at or before its ``[``).

    ``lookup``: the truth's id maps and image sizes (results, see ``lookup_of``): the kernel then also gives each
    record's image and label rows and xyxy box (``AnnColumns.native_rows``/``native_boxes``) where nothing needs
    a closer look. ``release``: for an ``mmap`` of a file opened read-only only: the kernel gives back the pages it
    has consumed every ``release`` bytes, so the file adds that much to the resident set, not its size (they
    stay in the page cache; reading them again maps them again).

    Returns the offset just past the array's ``]``, or None when the kernel is not built, switched off
    (``MASLOW_NATIVE=0``) or bailed out, or (``whole``) something other than whitespace follows the array;
    ``acc`` is then left empty.
    """
    kernel = load("records")
    if kernel is None:
        return None
    cols = kernel.parse(data, start, end, acc.bbox_optional, lookup=lookup, release=release)
    if isinstance(cols, dict) and lookup is not None and cols["misses"]:  # the ids are needed: read them
        lookup, cols = None, kernel.parse(data, start, end, acc.bbox_optional, release=release)
    if not isinstance(cols, dict):
        return None
    stop: int = cols["end"]
    if whole and data[stop:end].strip(b" \t\n\r"):  # JSON's whitespace only
        return None
    if not _fill(acc, cols, kernel.KEYS, data, release):
        return None
    if lookup is not None and acc.n:  # every record's rows found
        acc.native_rows = (np.frombuffer(cols["image_row"], np.int64), np.frombuffer(cols["label_row"], np.int64))
        xyxy = np.frombuffer(cols["xyxy"], np.float64).reshape(-1, 4)
        if len(xyxy) == acc.n and cols["box_odd"] == 0:
            acc.native_boxes = (xyxy, cols["inexact"] > 0, (cols["looks_xyxy"], cols["sized"], cols["first_xyxy"]))
    return stop


#: The truth's id maps and image sizes for the kernel: per map (sorted distinct ids or None, rows, lowest id).
Lookup = tuple[Any, np.ndarray, int, Any, np.ndarray, int, np.ndarray, np.ndarray]


def _id_map(ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, int]:
    """The kernel's map of id -> row (the first row with that id, as ``coco._lookup``): a dense table where the
    ids are unique and span a small range, else the sorted distinct ids and their rows."""
    ids = np.asarray(ids, np.int64)
    if not len(ids):
        return None, np.zeros(0, np.int64), 0
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo < 8 * len(ids) + 4096:
        table = np.full(hi - lo + 1, -1, np.int64)
        table[ids - lo] = np.arange(len(ids), dtype=np.int64)
        if np.count_nonzero(table >= 0) == len(ids):  # unique ids (else the sorted map: it keeps the first row)
            return None, table, lo
    order = np.argsort(ids, kind="stable")
    keys = ids[order]
    first = np.concatenate([[True], keys[1:] != keys[:-1]])
    return np.ascontiguousarray(keys[first]), np.ascontiguousarray(order[first].astype(np.int64)), 0


def lookup_of(image_ids: np.ndarray, category_ids: np.ndarray, widths: np.ndarray, heights: np.ndarray) -> Lookup:
    """The ``lookup`` of ``parse_records``: the truth's image and category ids (rows in that order), image sizes."""
    return (*_id_map(image_ids), *_id_map(category_ids),
            np.ascontiguousarray(widths, np.float64), np.ascontiguousarray(heights, np.float64))


def read_results_native(data: Any, acc: AnnColumns, *, lookup: Lookup | None = None, release: int = 0) -> bool:
    """A results list (``data``: the whole file) into the empty ``acc``; False: use the Python path."""
    return parse_records(data, 0, len(data), acc, whole=True, lookup=lookup, release=release) is not None


def read_coco_native(src: Path, *, bbox_optional: bool = False) -> tuple[dict[str, Any], AnnColumns] | None:
    """Read an instances file: its ``annotations`` with the kernel, the rest (images, categories) with orjson.

    Returns the top-level object without ``annotations`` and the records, or None (kernel missing or bailed
    out, no top-level ``annotations`` array, unreadable file): the caller then reads the file with the Python path.
    ``bbox_optional``: see ``AnnColumns`` (True for results).
    """
    if load("records") is None:
        return None
    acc = AnnColumns(bbox_optional=bbox_optional)
    try:
        with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found = find_annotations(data)
            if found is None:
                return None
            key, bracket = found
            stop = parse_records(data, bracket, len(data), acc, release=RELEASE_WINDOW)
            if stop is None:
                return None
            text = data[:key] + b'"annotations":"' + SENTINEL.encode() + b'"' + data[stop:]
    except (OSError, ValueError):  # unreadable, a directory, an empty file (mmap refuses it), ...
        return None
    try:
        top = json_loads(text)
    except ValueError:
        return None
    if not isinstance(top, dict) or top.get("annotations") != SENTINEL:
        return None
    del top["annotations"]
    return top, acc


def _fill(acc: AnnColumns, cols: dict[str, Any], key_names: tuple[str, ...], data: Any, release: int) -> bool:
    """Put the kernel's columns into ``acc`` as ``AnnColumns.add`` would have; False where the Python path must
    decide (an uncompressed RLE whose runs don't sum to height * width: a finding; attributes or other keys' values
    orjson refuses; annotator/source not a string: a finding)."""
    n = int(cols["n"])
    if n == 0:
        return True

    def col(name: str, dtype: Any) -> np.ndarray:
        return np.frombuffer(cols[name], dtype)

    rle = col("rle", np.int64).reshape(-1, _RLE_FIELDS)
    rles = _rles(rle, cols)
    attrs = _attributes(np.frombuffer(cols["attrs"], np.int64).reshape(-1, 3), data, n, release=release > 0)
    keys = {k for b, k in enumerate(key_names) if int(cols["keys"]) >> b & 1}
    oriented = {k: col(k, np.float64).reshape(n, width) for k, width in OBB_LENGTHS.items() if k in keys}
    got = _extras(cols["others"], n, oriented)
    if rles is None or attrs is None or got is None:
        return False
    extra, oriented = got
    keys |= {k.removeprefix("\0") for k in extra}
    columns: dict[str, np.ndarray] = {}
    absent: dict[str, tuple[tuple[int, ...], Any, Any]] = {}
    rows = "misses" in cols  # the kernel mapped the ids to rows: no id columns (see parse_records)
    for name, dtype, width, fill in _COLUMNS:
        shape = (n, width) if width else (n,)
        if rows and name.removesuffix("_ok") in ("image_id", "category_id"):
            continue  # nothing to ask for: AnnColumns.column() raises KeyError
        if name.removesuffix("_ok") in keys:
            columns[name] = col(name, dtype).reshape(shape)
        else:  # no record has the key: the column add() makes, built only if asked for
            absent[name] = (shape, dtype, fill)
    if "segmentation" in keys:
        ring_count = col("ring_count", np.int64)
        polygons = Polygons(col("coords", np.float64), offsets(col("ring_len", np.int64)), offsets(ring_count),
                            ring_count == 0)
    else:
        polygons = None  # no record has one: AnnColumns.polygons() makes the empty column if asked
    kp, kp_box = [], None
    if "keypoints" in keys:
        kp_len = col("kp_len", np.int64)
        kp, kp_box = _keypoints(kp_len, col("kp", np.float64)), col("kp_box", np.float64).reshape(-1, 4)
        if len(kp_box) < n:  # NaN rows for the records without keypoints
            kp_box = _scatter_rows(kp_box, np.flatnonzero(kp_len > 0), n)
    acc.add_columns(n, keys, columns, absent, polygons, rle[:, 0], rles, kp, attrs, extra,
                    col("rle_box", np.float64).reshape(-1, 4), rle[:, 1:3], kp_box, oriented=oriented)
    return True


def _scatter_rows(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) with ``values`` at ``rows``, NaN elsewhere."""
    out = np.full((n, 4), np.nan)
    out[rows] = values
    return out


def _rles(rle: np.ndarray, cols: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The RLE dicts ``add`` makes (the kernel's, where counts were a string); run lengths compressed here
    (None: runs that don't sum to height * width, a finding of the Python path)."""
    out: list[dict[str, Any]] = cols["rle_objects"]
    if not len(rle) or not rle[:, 3].any():
        return out
    runs = np.frombuffer(cols["rle_runs"], np.int64)
    for i in np.flatnonzero(rle[:, 3]).tolist():
        _, h, w, _, start, stop = rle[i].tolist()
        counts = runs[start:stop]
        if int(counts.sum()) != h * w:  # the Python path reports it (and drops the mask)
            return None
        out[i] = M.compress({"size": [h, w], "counts": counts.tolist()})
    return out


def _attributes(spans: np.ndarray, data: Any, n: int, *, release: bool = False,
                chunk: int = 8192) -> dict[str, ObjArray] | None:
    """The attribute columns (name: (n,) object column, None where a record lacks it; names in order of
    appearance) from the ``attributes`` objects at ``spans`` (record, start, end), parsed as the Python path does
    (orjson); None where they don't parse. ``chunk`` objects at a time: a million attribute dicts alive at once
    were the read's peak. Equal strings of a column share one object, as long as a column has few distinct ones.
    ``release`` (``data`` a read-only ``mmap`` of a file): the pages read are given back after each chunk, as the
    kernel does (``parse_records``), so the file doesn't become resident a second time."""
    release = release and isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED")
    out: dict[str, ObjArray] = {}
    strings: dict[str, dict[str, str] | None] = {}
    for s in range(0, len(spans), chunk):
        part = spans[s:s + chunk]
        try:
            objects = json_loads(b"[" + b",".join([data[a:b] for _, a, b in part.tolist()]) + b"]")
        except ValueError:  # e.g. text that is not UTF-8: the Python path reports it
            return None
        for k, rows, vals in attribute_parts(objects, part[:, 0], strings):
            if k not in out:
                out[k] = np.full(n, None, object)
            out[k][rows] = vals
        del objects
        if release:  # whole pages only, from the first page boundary at or after the chunk's first object
            lo = -(-int(part[0, 1]) // mmap.PAGESIZE) * mmap.PAGESIZE
            hi = int(part[-1, 2]) // mmap.PAGESIZE * mmap.PAGESIZE
            if hi > lo:
                data.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    return out


def _extras(others: list[tuple[Any, Any, Any]], n: int, oriented: dict[str, np.ndarray],
            ) -> tuple[dict[str, list[Any]], dict[str, np.ndarray]] | None:
    """``AnnColumns._extra`` as full columns ({key: value per record, None where absent}) from the kernel's keys
    without a column (key's JSON string, records, values' JSON array); annotator and source as ``"\\0annotator"``/
    ``"\\0source"``. None (the Python path decides) where a value doesn't parse, annotator/source is not a string
    (a finding), or two spellings (escapes) give one key, maybe a known one.

    ``oriented``: the kernel's oriented boxes (key: (n, 5 or 8), NaN rows where absent). The values it left to this
    path (null, not 5 or 8 numbers, a negative size, beside a segmentation) are among the others; a key with both
    is one column here, the kernel's rows as lists of floats (read only as floats: every such record is an oriented
    box, see ``_coco_obb._parse``), and is left out of the oriented boxes returned beside the columns (``oriented``
    itself is not changed)."""
    out: dict[str, list[Any]] = {}
    left = dict(oriented)
    for name, records, text in others:
        try:
            key, vals = json_loads(bytes(name)), json_loads(bytes(text))
        except ValueError:  # e.g. text that is not UTF-8: the Python path reports it
            return None
        if key in out or key.startswith("\0") or (key in KNOWN_KEYS and key not in _NAMED):
            return None
        rows = np.frombuffer(records, np.int64)
        parsed = left.pop(key, None)
        taken = np.zeros(0, np.int64) if parsed is None else np.flatnonzero(~np.isnan(parsed[:, 0]))
        if len(rows) < n or len(taken):  # None where a record lacks the key
            col = np.full(n, None, object)
            col[rows] = obj_column(vals)
            if parsed is not None and len(taken):
                if np.isin(taken, rows).any():  # one record, two spellings of the key: the last counts
                    return None
                col[taken] = obj_column(parsed[taken].tolist())
            vals = col.tolist()
        out[key] = vals
    for k in out.keys() & set(_NAMED):
        if not all(v is None or type(v) is str for v in out[k]):
            return None
        out[f"\0{k}"] = out.pop(k)
    return out, left


def _keypoints(kp_len: np.ndarray, kp: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``AnnColumns._kp``: per distinct length, the records with that many values and their (rows, 3K) values."""
    starts = offsets(np.maximum(kp_len, 0))[:-1]
    out = []
    lengths = np.flatnonzero(np.bincount(np.maximum(kp_len, 0))) if len(kp_len) else kp_len
    for length in lengths[lengths > 0].tolist():  # the distinct lengths (not np.unique: it imports numpy.ma)
        rows = np.flatnonzero(kp_len == length)
        if len(rows) == len(kp_len):  # every record, one length (the usual case): a view, no gather
            return [(rows, kp[:len(rows) * length].reshape(len(rows), length))]
        out.append((rows, kp[starts[rows][:, None] + np.arange(length)]))
    return out
