"""COCO annotation records (JSON dicts) to numpy columns, a chunk at a time, with per-record findings.

Shared by ``coco`` (instances files) and ``coco_results`` (prediction lists). Fast paths convert a whole chunk
with numpy; a chunk that fails them (a missing field, a wrong type) is redone record by record so each bad
record gets its own finding. Boxes stay COCO ``xywh`` here; the callers convert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any, cast

import numpy as np

from maslow.core import masks as M
from maslow.core.polygons import Polygons, offsets
from maslow.core.types import BoolArray, FloatArray, IntArray, ObjArray
from maslow.io import _coco_rle_check
from maslow.io._coco_obb import with_key as oriented_records

#: Annotation keys with a column of their own; any other key goes to ``annotations.extra``.
KNOWN_KEYS = frozenset({"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd", "keypoints",
                        "num_keypoints", "score", "attributes", "annotator", "source"})


@dataclass
class Finding:
    """A problem with one record, reported once rows are known."""

    record: int
    type: str
    severity: str
    field: str
    message: str


def _is_num(v: Any) -> bool:
    return type(v) is float or type(v) is int


def _as_int(v: Any) -> int | None:
    if type(v) is int:
        return v if -(2**63) <= v < 2**63 else None
    if type(v) is float and v.is_integer() and -(2.0**63) < v < 2.0**63:  # orjson: 2**70, -2**63 - 1 as floats
        return int(v)
    return None


_NUMBERS: frozenset[type] = frozenset({int, float})
_NUMBERS_OR_NONE: frozenset[type] = frozenset({int, float, type(None)})


def _only(vals: Any, types: frozenset[type]) -> bool:
    """Every value is of one of ``types`` (numpy would turn a ``True`` or a ``"0.5"`` into a number silently)."""
    return set(map(type, vals)) <= types


def int_field(vals: list[Any]) -> tuple[IntArray, BoolArray]:
    """(n,) int64 (-1 where invalid) and (n,) valid flags; integral floats count as ints (bools and strings not)."""
    n = len(vals)
    try:
        arr = np.array(vals) if _only(vals, _NUMBERS) else np.zeros(0)
    except (ValueError, OverflowError):
        arr = np.zeros(0)
    if arr.shape == (n,) and arr.dtype.kind == "i":
        return arr.astype(np.int64, copy=False), np.ones(n, bool)
    conv = [_as_int(v) for v in vals]
    ok = np.fromiter((c is not None for c in conv), bool, n)
    return np.fromiter((-1 if c is None else c for c in conv), np.int64, n), ok


def float_field(vals: list[Any]) -> tuple[FloatArray, BoolArray]:
    """(n,) float64, NaN where absent, and (n,) flags: False where a value is present but not a number."""
    n = len(vals)
    try:
        if _only(vals, _NUMBERS_OR_NONE):
            arr = np.array(vals, dtype=np.float64)
            if arr.shape == (n,):
                return arr, np.ones(n, bool)
    except (TypeError, ValueError):
        pass
    ok = np.fromiter((v is None or _is_num(v) for v in vals), bool, n)
    return np.fromiter((float(v) if _is_num(v) else np.nan for v in vals), np.float64, n), ok


def box_field(vals: list[Any]) -> tuple[FloatArray, BoolArray]:
    """(n, 4) xywh (NaN rows where invalid) and (n,) flags: True where a 4-number list was given."""
    n = len(vals)
    try:
        if set(map(len, vals)) <= {4} and _only(vals, frozenset({list})) and _only(chain.from_iterable(vals), _NUMBERS):
            return np.fromiter(chain.from_iterable(vals), np.float64, 4 * n).reshape(n, 4), np.ones(n, bool)
    except (TypeError, ValueError):
        pass
    ok = np.fromiter((type(v) is list and len(v) == 4 and all(map(_is_num, v)) for v in vals), bool, n)
    out = np.full((n, 4), np.nan)
    rows = np.flatnonzero(ok)
    if rows.size:
        out[rows] = np.array([vals[j] for j in rows.tolist()], dtype=np.float64)
    return out, ok


def values(items: list[dict[str, Any]], key: str) -> list[Any]:
    """``item.get(key)`` for every item (fast when every item has the key)."""
    try:
        return list(map(itemgetter(key), items))
    except KeyError:
        return [a.get(key) for a in items]


def obj_column(values: list[Any]) -> ObjArray:
    """An (n,) object array holding each value as it is (lists stay lists)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _run_lengths(counts: list[Any]) -> bool:
    arr = np.array(counts)
    return arr.ndim == 1 and arr.dtype.kind == "i" and bool((arr >= 0).all())


def _sized(rle: dict[str, Any]) -> bool:
    """The RLE object has a ``size`` of two integers >= 0."""
    size = rle.get("size")
    return type(size) is list and len(size) == 2 and all(type(v) is int and v >= 0 for v in size)


def _short(v: Any, limit: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


@dataclass
class AnnColumns:
    """Annotation records in file order, as columns (see ``add``)."""

    bbox_optional: bool = False  # results: a segmentation or keypoints may stand in for the box
    n: int = 0
    findings: list[Finding] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    _parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    _cols: dict[str, np.ndarray] = field(default_factory=dict)  # columns built by column()
    _absent: dict[str, tuple[tuple[int, ...], Any, Any]] = field(default_factory=dict)  # (shape, dtype, fill)
    _polys: list[Polygons] = field(default_factory=list)
    _rle_rows: list[int] | IntArray = field(default_factory=list)  # the records with an RLE, in order
    _rles: list[dict[str, Any]] = field(default_factory=list)
    _rle_boxes: FloatArray | None = None  # per RLE, pycocotools' toBbox (xywh; NaN: unknown), from the kernel
    _rle_sizes: IntArray | None = None  # per RLE, its size (h, w), from the kernel
    _kp: list[tuple[IntArray, FloatArray]] = field(default_factory=list)
    _kp_boxes: FloatArray | None = None  # per record, its keypoints' xyxy extent (NaN: none), from the kernel
    _attrs: dict[str, list[tuple[IntArray, ObjArray]]] = field(default_factory=dict)  # per name: (records, values)
    _attr_strings: dict[str, dict[str, str] | None] = field(default_factory=dict)  # see attribute_parts
    _attr_cols: dict[str, ObjArray] = field(default_factory=dict)  # attribute columns made elsewhere (the kernel's)
    _extra: dict[str, list[tuple[int, list[Any]]]] = field(default_factory=lambda: defaultdict(list))
    _oriented: dict[str, FloatArray] = field(default_factory=dict)  # the kernel's obb/rbox/poly (see add_columns)
    #: From the kernel, given the truth's ids (results): every record's image and label row (all found).
    native_rows: tuple[IntArray, IntArray] | None = None
    #: From the kernel with ``native_rows``: every record's xyxy box (all finite, w/h >= 0), whether some x2 - x1 or
    #: y2 - y1 differs from the width or height as read, and (n_like, n_known, first) of ``coco.looks_xyxy``.
    native_boxes: tuple[FloatArray, bool, tuple[int, int, int]] | None = None
    #: String ``image_id`` values (files whose images have string ids), in order of first appearance: their records
    #: hold -1 and False in the ``image_id`` and ``image_id_ok`` columns, and a code (a position here) in ``_str_image``.
    image_keys: dict[str, int] = field(default_factory=dict)
    _str_image: list[tuple[IntArray, IntArray]] = field(default_factory=list)  # per chunk: (records, codes)
    _key_list: list[str] = field(default_factory=list)  # image_keys' strings by code, made when asked for

    def bad(self, record: int, type_: str, field_: str, message: str, severity: str = "error") -> None:
        self.findings.append(Finding(record, type_, severity, field_, message))

    def add(self, items: list[Any], first: int) -> None:
        """Convert records ``first .. first + len(items) - 1``; ``items`` must all be dicts."""
        n = len(items)
        if not n:
            return
        if self._cols:
            raise RuntimeError("AnnColumns.add: records must all be added before columns are read")
        keys: set[str] = set().union(*items)
        self.keys |= keys
        part = self._parts
        for name in ("id", "image_id", "category_id"):
            if name == "image_id" and name in keys:
                vals, ok = self._image_ids(values(items, name), first)
            elif name in keys:
                vals, ok = int_field(values(items, name))
            else:  # e.g. results files carry no annotation ids: skip the per-record conversion of None
                vals, ok = np.full(n, -1, np.int64), np.zeros(n, bool)
            part[name].append(vals)
            part[f"{name}_ok"].append(ok)
        if "bbox" not in keys and self.bbox_optional:  # e.g. mask or keypoint results: no per-record pass
            part["bbox"].append(np.full((n, 4), np.nan))
            part["bbox_ok"].append(np.zeros(n, bool))
        else:
            raw = values(items, "bbox")
            box, ok = box_field(raw)
            part["bbox"].append(box)
            part["bbox_ok"].append(ok)
            bad = np.flatnonzero(~ok)
            stand_in = oriented_records(items, keys) if bad.size and not self.bbox_optional else None
            for j in bad.tolist():
                if raw[j] is None and (stand_in is None or stand_in[j]):  # results; or an obb stands in
                    continue
                self.bad(first + j, "coco_bad_bbox", "bbox",
                         f"bbox must be [x, y, width, height] (4 numbers), got {_short(raw[j])}")
        for name in ("area", "score"):  # every chunk gets both columns (NaN where absent): chunks stay aligned
            if name not in keys:
                part[name].append(np.full(n, np.nan))
                continue
            raw = values(items, name)
            vals_f, ok = float_field(raw)
            part[name].append(vals_f)
            for j in np.flatnonzero(~ok).tolist():
                self.bad(first + j, f"coco_bad_{name}", name, f"{name} must be a number, got {_short(raw[j])}")
        if "iscrowd" in keys:
            raw = [a.get("iscrowd", 0) for a in items]
            crowd = np.array(raw) if set(map(type, raw)) <= {int, bool} else None
            if crowd is None:
                crowd = np.array([bool(v) if type(v) in (int, bool) else False for v in raw])
                for j, v in enumerate(raw):
                    if type(v) not in (int, bool):
                        self.bad(first + j, "coco_bad_iscrowd", "iscrowd", f"iscrowd must be 0 or 1, got {_short(v)}")
            part["iscrowd"].append(crowd.astype(bool))
        else:
            part["iscrowd"].append(np.zeros(n, bool))
        self._polys.append(self._segmentation(values(items, "segmentation"), first)
                           if "segmentation" in keys else Polygons.none(n))
        if "keypoints" in keys:
            self._keypoints(values(items, "keypoints"), first)
        if "attributes" in keys:
            objects, records = [], []
            for j, d in enumerate(a.get("attributes") for a in items):
                if d is None:
                    continue
                if type(d) is not dict:
                    self.bad(first + j, "coco_bad_attributes", "attributes",
                             f"attributes must be an object of name: value, got {_short(d)}")
                    continue
                objects.append(d)
                records.append(first + j)
            for k, at, given in attribute_parts(objects, np.asarray(records, np.int64), self._attr_strings):
                self._attrs.setdefault(k, []).append((at, given))
        for k in keys - KNOWN_KEYS:
            self._extra[k].append((first, [a.get(k) for a in items]))
        for name in ("annotator", "source"):
            if name in keys:
                raw = [a.get(name) for a in items]
                for j, v in enumerate(raw):
                    if v is not None and type(v) is not str:
                        self.bad(first + j, f"coco_bad_{name}", name, f"{name} must be a string, got {_short(v)}",
                                 severity="warning")
                        raw[j] = None
                self._extra[f"\0{name}"].append((first, raw))
        self.n += n

    def _image_ids(self, raw: list[Any], first: int) -> tuple[IntArray, BoolArray]:
        """``int_field`` of the ``image_id`` values; string values are kept in ``image_keys`` and ``_str_image``."""
        vals, ok = int_field(raw)
        if ok.all():  # integer ids (the usual case)
            return vals, ok
        at = np.flatnonzero(~ok)
        at = at[np.fromiter((type(raw[j]) is str for j in at.tolist()), bool, len(at))]
        strs = [raw[j] for j in at.tolist()]
        if len(at):
            keys = self.image_keys
            codes = np.fromiter([keys.setdefault(v, len(keys)) for v in strs], np.int64, len(strs))
            self._str_image.append((at + first, codes))
        return vals, ok

    def string_image_ids(self) -> tuple[IntArray, IntArray, list[str]]:
        """The records whose ``image_id`` is a string (ascending), their codes, and the strings by code."""
        if not self._str_image:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), []
        if len(self._str_image) > 1:
            self._str_image = [(np.concatenate([r for r, _ in self._str_image]),
                                np.concatenate([c for _, c in self._str_image]))]
        if len(self._key_list) != len(self.image_keys):
            self._key_list = list(self.image_keys)
        rows, codes = self._str_image[0]
        return rows, codes, self._key_list

    def string_image_rows(self, rows_of: dict[Any, int]) -> IntArray:
        """(n,) the row ``rows_of`` gives each record's string ``image_id``; -1 where it gives none or the value is
        not a string."""
        out = np.full(self.n, -1, np.int64)
        at, codes, keys = self.string_image_ids()
        if len(at):
            out[at] = np.fromiter((rows_of.get(k, -1) for k in keys), np.int64, len(keys))[codes]
        return out

    def image_id_text(self, record: int) -> str | None:
        """The string ``image_id`` of ``record`` as a message shows it (quoted), None where it is not a string."""
        at, codes, keys = self.string_image_ids()
        j = int(np.searchsorted(at, record))
        return repr(keys[int(codes[j])]) if j < len(at) and at[j] == record else None

    def add_columns(self, n: int, keys: set[str], columns: dict[str, np.ndarray],
                    absent: dict[str, tuple[tuple[int, ...], Any, Any]], polygons: Polygons | None, rle_rows: IntArray,
                    rles: list[dict[str, Any]], keypoints: list[tuple[IntArray, FloatArray]],
                    attributes: dict[str, ObjArray], extra: dict[str, list[Any]],
                    rle_boxes: FloatArray | None = None, rle_sizes: IntArray | None = None,
                    kp_boxes: FloatArray | None = None, oriented: dict[str, FloatArray] | None = None) -> None:
        """Take ``n`` records parsed elsewhere (the C kernel, ``_coco_native``) as the columns ``add`` makes.

        ``absent``: columns of keys no record has, as (shape, dtype, fill), built only if asked for (``polygons``:
        None). ``attributes``: the columns ``attributes()`` returns. ``extra``: what ``add`` keeps in ``_extra``, as
        one full column (a value per record) per key. ``rle_boxes``: per RLE, what pycocotools' ``toBbox`` gives (NaN
        rows where not computed); ``rle_sizes``: per RLE, its (h, w); ``kp_boxes``: per record, the xyxy extent of
        its keypoints (NaN rows where none, inf rows where numpy must decide: ``keypoint_boxes``); ``oriented``: per
        oriented-box key (``_coco_obb.KEYS``), (n, 5 or 8) float64 values, NaN rows where absent, which ``extras``
        gives as they are (``_coco_obb.read_oriented`` takes them). Must be the only records added.
        """
        if self.n:
            raise RuntimeError("AnnColumns.add_columns: must be the only records")
        for name, col in columns.items():
            self._parts[name].append(col)
        self._absent.update(absent)
        if polygons is not None:
            self._polys.append(polygons)
        self._rle_rows, self._rles, self._kp, self._attr_cols = rle_rows, rles, keypoints, attributes
        self._extra.update({k: [(0, v)] for k, v in extra.items()})
        self._rle_boxes, self._rle_sizes, self._kp_boxes = rle_boxes, rle_sizes, kp_boxes
        if rle_boxes is not None and rle_sizes is not None:
            self._drop_bad_strings(rle_boxes, rle_sizes)
        self._oriented = dict(oriented or {})
        self.keys, self.n = keys, n

    def _drop_bad_strings(self, boxes: FloatArray, sizes: IntArray) -> None:
        """The kernel's RLEs whose counts strings are not masks (``_coco_rle_check``), reported and dropped as
        ``_rle`` does: only those the kernel left without a box (NaN: such strings, and run lengths, already
        checked) and empty strings (box 0) of a non-empty mask are looked at."""
        empty = (boxes[:, 2] == 0) & (sizes[:, 0] != 0) & (sizes[:, 1] != 0)
        look = np.flatnonzero(np.isnan(boxes[:, 0]) | empty).tolist()
        look = [i for i in look if not (empty[i] and self._rles[i]["counts"])]
        if not look:
            return
        wrong = _coco_rle_check.check([self._rles[i]["counts"] for i in look], [tuple(sizes[i].tolist()) for i in look])
        drop = [look[p] for p in wrong]
        for p, why in wrong.items():
            self.bad(int(self._rle_rows[look[p]]), "coco_bad_rle", "segmentation.counts", f"{why}; mask dropped")
        if drop:
            keep = np.ones(len(self._rles), bool)
            keep[drop] = False
            self._rle_rows = np.asarray(self._rle_rows)[keep]
            self._rles = [r for r, k in zip(self._rles, keep.tolist(), strict=True) if k]
            self._rle_boxes, self._rle_sizes = boxes[keep], sizes[keep]

    # -- segmentation ------------------------------------------------------------------------------
    def _segmentation(self, segs: list[Any], first: int) -> Polygons:
        """The polygons of ``segs`` built flat (no Python object per ring); RLEs go to ``_rle``."""
        n = len(segs)
        pidx = [j for j, s in enumerate(segs) if type(s) is list and s]
        strings = {j: s["counts"].encode("ascii", "replace") for j, s in enumerate(segs)
                   if type(s) is dict and type(s.get("counts")) is str and _sized(s)}  # compressed: checked at once
        wrong = _coco_rle_check.check(list(strings.values()), [tuple(segs[j]["size"]) for j in strings])
        at = list(strings)
        wrong = {at[i]: why for i, why in wrong.items()}
        for j, s in enumerate(segs):
            if type(s) is dict:
                encoded = strings.get(j)
                if encoded is None:
                    self._rle(s, first + j)
                elif j in wrong:
                    self.bad(first + j, "coco_bad_rle", "segmentation.counts", f"{wrong[j]}; mask dropped")
                else:
                    cast(list[int], self._rle_rows).append(first + j)
                    self._rles.append({"size": list(s["size"]), "counts": encoded})
            elif s is not None and type(s) is not list:
                self.bad(first + j, "coco_bad_segmentation", "segmentation",
                         f"segmentation must be a list of polygons or an RLE object, got {_short(s)}")
        if not pidx:
            return Polygons.none(n)
        rings = [r for j in pidx for r in segs[j]]
        try:
            lens = np.fromiter(map(len, rings), np.int64, len(rings))
            coords = np.fromiter(chain.from_iterable(rings), np.float64, int(lens.sum()))
        except (TypeError, ValueError):
            rows: list[Any] = [None] * n
            for j in pidx:
                rows[j] = self._polygon_slow(segs[j], first + j)
            return Polygons.from_rows(rows)
        nring = np.fromiter((len(segs[j]) for j in pidx), np.int64, len(pidx))
        odd = (lens % 2 == 1) | (lens == 0)
        if odd.any() or (lens < 6).any():
            owner = np.repeat(np.asarray(pidx), nring)
            for r in np.flatnonzero(odd | (lens < 6)).tolist():
                self._ring_finding(first + int(owner[r]), int(lens[r]))
        kept = nring
        if odd.any():  # dropped rings (reported above); a row left without a ring has no polygon
            keep = ~odd
            kept = np.add.reduceat(keep.astype(np.int64), np.concatenate([[0], np.cumsum(nring)[:-1]]))
            coords, lens = coords[np.repeat(keep, lens)], lens[keep]
        counts = np.zeros(n, np.int64)
        counts[pidx] = kept
        null = counts == 0
        return Polygons(coords, offsets(lens), offsets(counts), null)

    def _ring_finding(self, record: int, length: int) -> None:
        if length == 0:
            self.bad(record, "coco_bad_polygon", "segmentation", "polygon must not be empty; polygon dropped")
        elif length % 2 == 1:
            self.bad(record, "coco_bad_polygon", "segmentation",
                     f"polygon must have an even number of coordinates (x, y pairs), got {length}; polygon dropped")
        else:
            self.bad(record, "coco_degenerate_polygon", "segmentation",
                     f"polygon must have at least 3 points, got {length // 2}", severity="warning")

    def _polygon_slow(self, seg: list[Any], record: int) -> list[np.ndarray] | None:
        if all(map(_is_num, seg)):
            self.bad(record, "coco_flat_polygon", "segmentation",
                     "segmentation must be a list of polygons [[x0, y0, x1, y1, ...]], got one flat list; "
                     "read as one polygon", severity="warning")
            seg = [seg]
        kept = []
        for ring in seg:
            if type(ring) is not list or not all(map(_is_num, ring)):
                self.bad(record, "coco_bad_polygon", "segmentation",
                         f"polygon must be a flat list of numbers [x0, y0, x1, y1, ...], got {_short(ring)}; "
                         "polygon dropped")
                continue
            if len(ring) % 2 == 1 or len(ring) < 6:
                self._ring_finding(record, len(ring))
                if len(ring) % 2 == 1 or not ring:
                    continue
            kept.append(np.asarray(ring, dtype=np.float64))
        return kept or None

    def _rle(self, s: dict[str, Any], record: int) -> None:
        """Keep the RLE ``s`` of ``record`` (not a sized one with counts as a string: ``_segmentation`` checks those
        all at once, ``_coco_rle_check``)."""
        size, counts = s.get("size"), s.get("counts")
        if not _sized(s):
            self.bad(record, "coco_bad_rle", "segmentation",
                     f"RLE size must be [height, width], got {_short(size)}; mask dropped")
            return
        h, w = cast(list[int], size)
        if type(counts) is list and _run_lengths(counts):
            total = int(np.sum(counts, dtype=np.int64))
            if total != h * w:
                self.bad(record, "coco_bad_rle", "segmentation",
                         f"RLE counts must sum to height*width = {h * w}, got {total}; mask dropped")
                return
            rle: dict[str, Any] = M.compress({"size": [h, w], "counts": counts})
        else:
            self.bad(record, "coco_bad_rle", "segmentation",
                     f"RLE counts must be a string or a list of run lengths, got {_short(counts)}; mask dropped")
            return
        cast(list[int], self._rle_rows).append(record)  # an array only from add_columns (never mixed with add)
        self._rles.append(rle)

    # -- keypoints ---------------------------------------------------------------------------------
    def _keypoints(self, vals: list[Any], first: int) -> None:
        by_len: dict[int, list[int]] = defaultdict(list)
        for j, v in enumerate(vals):
            if v is None:
                continue
            if type(v) is not list or len(v) % 3:
                self.bad(first + j, "coco_bad_keypoints", "keypoints",
                         f"keypoints must be a flat list [x1, y1, v1, ...] of 3*K numbers, got {_short(v)}")
                continue
            by_len[len(v)].append(j)
        for length, rows in by_len.items():
            try:
                arr = np.array([vals[j] for j in rows], dtype=np.float64).reshape(len(rows), length)
                good = rows
            except (TypeError, ValueError):
                good = [j for j in rows if all(map(_is_num, vals[j]))]
                for j in sorted(set(rows) - set(good)):
                    self.bad(first + j, "coco_bad_keypoints", "keypoints",
                             f"keypoints must be numbers, got {_short(vals[j])}")
                arr = np.array([vals[j] for j in good], dtype=np.float64).reshape(len(good), length)
            self._kp.append((np.asarray(good, np.int64) + first, arr))

    # -- results -----------------------------------------------------------------------------------
    def column(self, name: str) -> np.ndarray:
        """Column ``name`` of every record (built once: its chunks are freed; don't ``add`` afterwards)."""
        col = self._cols.get(name)
        if col is None:
            parts = self._parts.get(name)
            if not parts:
                if name not in self._absent:
                    raise KeyError(name)
                shape, dtype, fill = self._absent.pop(name)  # a key no record has: made when first asked for
                parts = [np.full(shape, fill, dtype)]
            col = parts[0] if len(parts) == 1 else np.concatenate(parts)
            self._cols[name] = col
            self._parts.pop(name, None)
        return col

    def polygons(self) -> Polygons:
        """(N,) polygons of every record (None where a record has none)."""
        return Polygons.concat(self._polys) if self._polys else Polygons.none(self.n)

    def masks(self) -> tuple[ObjArray | None, IntArray]:
        """(N,) RLE dicts or None (None when no record has an RLE), and (N, 2) RLE sizes (-1 where none)."""
        if not self._rles:  # no RLE: a read-only view, no memory
            return None, np.broadcast_to(np.int64(-1), (self.n, 2))
        values = np.empty(len(self._rles), object)
        values[:] = self._rles  # one C loop (dicts are not sequences: one object each)
        if len(values) == self.n and self._rle_sizes is not None:  # an RLE in every record (one each, in order)
            return values, self._rle_sizes
        hw = np.full((self.n, 2), -1, np.int64)
        out = np.full(self.n, None, object)
        rows = np.asarray(self._rle_rows, np.int64)
        out[rows] = values
        hw[rows] = self._rle_sizes if self._rle_sizes is not None else [rle["size"] for rle in self._rles]
        return out, hw

    def mask_boxes(self) -> FloatArray | None:
        """(N, 4) boxes of the RLEs as pycocotools' ``toBbox`` gives them (``xywh``), NaN rows where unknown (no RLE,
        or not computed); None when nothing was computed (the Python path computes them from ``masks()``)."""
        if self._rle_boxes is None or not np.isfinite(self._rle_boxes[:, 0]).any():
            return None
        if len(self._rle_boxes) == self.n:  # an RLE in every record: the kernel's array, read-only
            return self._rle_boxes
        out = np.full((self.n, 4), np.nan)
        out[self._rle_rows] = self._rle_boxes
        return out

    def keypoint_boxes(self) -> FloatArray | None:
        """(N, 4) xyxy extents of the records' keypoints (``[min x, min y, max x, max y]``, labelled or not; NaN rows
        where a record has none) when the kernel read them, all finite; None otherwise, or where an extent is a 0
        that numpy may give as 0.0 or -0.0 (computed from ``keypoints()`` then)."""
        if self._kp_boxes is None or np.isinf(self._kp_boxes[:, 0]).any():
            return None
        return self._kp_boxes

    def keypoints(self) -> tuple[FloatArray | None, IntArray]:
        """(N, K, 3) with NaN rows where absent (None when no record has keypoints), and (N,) K per record."""
        k_of = np.zeros(self.n, np.int64)
        if not self._kp:
            return None, k_of
        width = max(a.shape[1] for _, a in self._kp) // 3
        if len(self._kp) == 1 and len(self._kp[0][0]) == self.n:  # every record, one K: no scatter copy
            k_of[:] = width
            return self._kp[0][1].reshape(self.n, width, 3), k_of
        out = np.full((self.n, width, 3), np.nan)
        for rows, arr in self._kp:
            k = arr.shape[1] // 3
            out[rows, :k] = arr.reshape(len(rows), k, 3)
            k_of[rows] = k
        return out, k_of

    def attributes(self) -> dict[str, ObjArray]:
        """(N,) object column per attribute name, None where a record lacks it (names in order of appearance)."""
        out = dict(self._attr_cols)
        for k, parts in self._attrs.items():
            col = np.full(self.n, None, object)
            for rows, vals in parts:
                col[rows] = vals
            out[k] = col
        return out

    def extras(self) -> dict[str, np.ndarray]:
        """Unknown keys (and ``\\0annotator``/``\\0source``), numeric where every record has a number; oriented boxes
        parsed by the kernel as (n, 5 or 8) float64 (see ``add_columns``)."""
        out: dict[str, np.ndarray] = {}
        for k, parts in self._extra.items():
            vals: list[Any] = [None] * self.n
            for first, chunk in parts:
                vals[first:first + len(chunk)] = chunk
            out[k] = to_column(vals)
        out.update(self._oriented)
        return out


#: Distinct strings of an attribute kept to share equal values (``attribute_parts``); past it, none are shared.
MAX_SHARED_STRINGS = 4096


def attribute_parts(objects: list[dict[str, Any]], records: IntArray,
                    strings: dict[str, dict[str, str] | None]) -> Iterator[tuple[str, IntArray, ObjArray]]:
    """Per attribute name in ``objects`` (the ``attributes`` objects of ``records``), in order of appearance: the
    records that have it and its values. ``strings`` (per name, updated here): the distinct strings seen so far,
    so that equal strings share one object (a million copies of "red" cost 50 MB), or None for a name with more
    than ``MAX_SHARED_STRINGS`` of them (free text: nothing to share)."""
    for k in dict.fromkeys(chain.from_iterable(objects)):
        try:
            rows, vals = records, list(map(itemgetter(k), objects))
        except KeyError:  # not every object has it
            have = np.fromiter((k in obj for obj in objects), bool, len(objects))
            rows, vals = records[have], [obj[k] for obj in objects if k in obj]
        seen = strings.setdefault(k, {})
        if seen is not None and set(map(type, vals)) == {str}:
            vals = list(map(seen.setdefault, vals, vals))
            if len(seen) > MAX_SHARED_STRINGS:
                strings[k] = None
        yield k, rows, obj_column(vals)


def to_column(vals: list[Any]) -> np.ndarray:
    """int64, float64 or bool array when every value is of that one type (no None), else an object array."""
    types = set(map(type, vals))
    if types == {int} and all(-(2**63) <= v < 2**63 for v in vals):
        return np.array(vals, dtype=np.int64)
    if types == {float}:
        return np.array(vals, dtype=np.float64)
    if types == {bool}:
        return np.array(vals, dtype=bool)
    return obj_column(vals)
