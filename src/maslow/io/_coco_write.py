"""Writing COCO instances JSON (``maslow.io.coco.write``); see ``maslow.io.coco`` for the conventions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from maslow.core import boxes as B
from maslow.core import masks as M
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.schema import ClassDef
from maslow.core.types import FloatArray, IntArray
from maslow.errors import FormatError
from maslow.io._coco_ids import _ids, _image_ids, _new_ids_note
from maslow.io._coco_ids import category_ids as category_ids
from maslow.io._coco_ids import image_ids as image_ids
from maslow.io._coco_obb import BBOX_COLUMN as OBB_BBOX_COLUMN
from maslow.io._coco_obb import COLUMN as OBB_COLUMN
from maslow.io._coco_obb import for_write as oriented_for_write
from maslow.io._coco_obb import written_note
from maslow.io._coco_stream import no_gc
from maslow.io._common import ExportReport
from maslow.io.registry import Progress, Ticks

_ANN_KEYS = frozenset({"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd", "keypoints",
                       "num_keypoints", "score", "attributes", "annotator", "source"})
_OBB_KEYS = _ANN_KEYS | {"obb"}  # an annotation written as obb: an extra "obb" can't be written too
_IMG_KEYS = frozenset({"id", "file_name", "width", "height", "split"})
_MISSING = object()
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})  # values JSON holds as they are
#: the top-level keys written when ``ds.info`` has none (a reader keeps nothing of these: they say nothing)
DEFAULT_HEAD: dict[str, Any] = {"info": {"description": "written by maslow"}, "licenses": []}
_LINE = 20_000  # annotation records per line of a compact file (the layout of the files written so far)


def write(ds: Dataset, dst: Path, *, indent: int | None = None, chunk_rows: int = 4096, obb: bool = False,
          progress: Progress | None = None) -> ExportReport:
    """Write ``ds`` as one COCO instances (or person-keypoints) JSON file, atomically.

    Ids are those of ``images.extra["coco_id"]``, ``annotations.extra["coco_id"]`` and ``ClassDef.id`` where
    present and unique (image and annotation ids >= 0: -1 marks a missing one; new ids otherwise; string image ids
    stay strings; see ``_coco_ids``). Every annotation of a class with K keypoint names gets 3 K ``keypoints``
    (zeros where it has none) and ``num_keypoints``, as pycocotools' keypoint evaluation needs. Polygons are written
    as polygons and masks as RLE (uncompressed counts for crowd regions, as COCO does); ``area`` is
    ``annotations.extra["area"]`` where present, else the mask or polygon area, else the box area; ``score`` is
    written where finite (predictions). Attributes go to each annotation's ``attributes`` object, other extra
    columns to keys of their own. Oriented boxes (a polygon of one 4-point ring, read from an ``obb`` record or, with
    ``obb=True``, any) are written as hotcoco's ``obb: [cx, cy, w, h, angle]`` instead of a ``segmentation``, their
    ``area`` the file's or ``w * h`` (see ``_coco_obb``). An annotation without a box gets the box of its polygon or
    mask, else of its labelled keypoints (``v > 0``; a skeleton read from CVAT or Label Studio).

    Args:
        ds: the dataset.
        dst: the JSON file to write.
        indent: pretty-print with this indent (default: compact).
        chunk_rows: images or annotations turned into JSON records at a time, written to the file as they are
            made (memory vs speed; the bytes written don't depend on it).
        obb: write every annotation whose polygon is one ring of 4 points (and that has no mask) as ``obb``, e.g.
            a dataset read from YOLO OBB labels (default: those read from ``obb``/``rbox``/``poly`` records only).
        progress: called as ``progress(done, total)`` over the records written, images then annotations
            (``total = n_images + n_annotations``; see ``registry.Ticks``).

    Returns:
        ExportReport; ``lost`` counts annotations without any geometry or keypoints (``tags``), masks that differ
        from the polygon written for the same annotation (``mask``), annotations whose keypoints are not all
        written (``keypoints``: of classes without keypoint names, beyond the class's K, partly NaN, or on an
        annotation not written for want of a box; each annotation once) and values that are not JSON
        (``annotations.extra``, ``images.extra``, ``attributes``, ``info``: the top-level keys of
        ``ds.info["coco"]``, written before ``images``).
    """
    dst = Path(dst)
    if type(chunk_rows) is not int or chunk_rows < 1:
        raise FormatError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}", path=dst, field="chunk_rows")
    if indent is not None and (type(indent) is not int or indent < 0):  # json.dumps would take a text as the indent
        raise FormatError(f"indent must be an integer >= 0 or None, got {indent!r}", path=dst, field="indent")
    if not isinstance(obb, bool | np.bool_):
        raise FormatError(f"obb must be True or False, got {obb!r}", path=dst, field="obb")
    rep = ExportReport(path=str(dst), format="coco", n_images=ds.n_images)
    img_ids, note = _image_ids(ds.images.extra.get("coco_id"), ds.n_images)
    if note:
        rep.notes.append(note)
    cat_ids = category_ids(ds.schema)
    cats = _category_records(ds, cat_ids, rep)
    sep = (",", ": ") if indent else (",", ":")
    import json  # here: reading COCO doesn't need it (1.4 ms to import)

    pretty = indent is not None
    cut = 2 if pretty else 1  # a list's items in dumps' text: pretty "[\n" + items + "\n]", compact "[" + items + "]"

    def dumps(v: Any) -> str:
        return json.dumps(v, indent=indent, separators=sep, ensure_ascii=False)  # dumps: C encoder

    tick = Ticks(progress, ds.n_images + ds.n_annotations)
    with no_gc(), atomic_path(dst) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(_head(ds, rep, dumps) + '"images": ')
            _write_list(f, _image_records(ds, img_ids, rep, chunk_rows), dumps, pretty=pretty, tick=tick)
            f.write(',\n"annotations": [')
            written = 0  # compact: a line of _LINE records (the layout of the files written so far)
            for chunk in _annotation_records(ds, img_ids, cat_ids, rep, chunk_rows, obb):  # none crosses a line's end
                if chunk:
                    f.write(("\n" if not written else ",\n" if pretty or written % _LINE == 0 else ",")
                            + dumps(chunk)[cut:-cut])
                    written += len(chunk)
                    tick(ds.n_images + written)  # tags are not written: the last call comes from end()
            f.write('\n],\n"categories": ')
            f.write(dumps(cats))
            f.write("}\n")
    tick.end()
    return rep


def _write_list(f: TextIO, chunks: Iterable[list[Any]], dumps: Callable[[Any], str], *, pretty: bool,
                tick: Ticks) -> None:
    """Write the lists of ``chunks`` as one JSON array, exactly as ``dumps`` of their concatenation would."""
    sep, cut = (",\n", 2) if pretty else (",", 1)  # pretty: "[\n" + items (",\n" apart) + "\n]"
    first, done = True, 0
    for chunk in chunks:
        if chunk:
            f.write(("[" + sep[1:] if first else sep) + dumps(chunk)[cut:-cut])
            first = False
            done += len(chunk)
            tick(done)
    f.write("[]" if first else sep[1:] + "]")


write_coco = write


def _head(ds: Dataset, rep: ExportReport, dumps: Callable[[Any], str]) -> str:
    """The top-level keys before ``images``: those a COCO reader kept in ``ds.info["coco"]`` (``info``,
    ``licenses``, ...; a value JSON can't hold is counted lost), else an ``info`` naming maslow and no licenses."""
    kept = ds.info.get("coco")
    if kept is not None and not isinstance(kept, dict):
        rep.notes.append(f"info['coco'] must be an object of top-level COCO keys, got {type(kept).__name__}: "
                         "not written")
        kept = None
    head: dict[str, Any] = dict(DEFAULT_HEAD)
    for k, v in (kept or {}).items():
        if k in ("images", "annotations", "categories"):
            rep.notes.append(f"info['coco'][{k!r}] not written: the dataset's own {k} are")
        elif (v := _json(v)) is _MISSING:
            _lose(rep, "info", 1)
        else:
            head[k] = v
    return "{" + ", ".join(f"{dumps(k)}: {dumps(v)}" for k, v in head.items()) + ",\n"  # one line, then images


def _lose(rep: ExportReport, what: str, n: int) -> None:
    if n:
        rep.lost[what] += n


def _json(v: Any) -> Any:
    """A JSON-safe copy of ``v``, or _MISSING for None/NaN and values JSON can't hold."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return _MISSING
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, str | int | float | bool):
        return v
    if isinstance(v, list | dict):
        import json

        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError):
            return _MISSING
        return v
    return _MISSING


def _plain(vals: list[Any]) -> bool:
    """Every value is written as it is (``_json`` would return it unchanged) or is None."""
    return set(map(type, vals)) <= _PLAIN


def _block(cols: Iterable[tuple[str, np.ndarray]], s: int, e: int) -> list[tuple[str, list[Any], bool]]:
    """Rows ``s .. e - 1`` of each column as values, and whether they are all ``_plain``."""
    out = []
    for k, col in cols:
        vals = col[s:e].tolist()
        out.append((k, vals, _plain(vals)))
    return out


def _put_extras(rec: dict[str, Any], cols: list[tuple[str, list[Any], bool]], r: int, reserved: frozenset[str],
                rep: ExportReport, table: str) -> None:
    for k, vals, plain in cols:
        v = vals[r]
        if v is None:
            continue
        if plain and k not in reserved:
            rec[k] = v
            continue
        j = _json(v)
        if j is _MISSING or k in reserved:
            if not (isinstance(v, float) and np.isnan(v)):
                rep.lost[f"{table}.extra"] += 1
            continue
        rec[k] = j


def _image_records(ds: Dataset, ids: IntArray, rep: ExportReport, rows: int) -> Iterator[list[dict[str, Any]]]:
    """The image records, ``rows`` at a time."""
    im = ds.images
    extra = [(k, v) for k, v in im.extra.items() if k != "coco_id"]
    for s in range(0, len(im), rows):
        e = min(s + rows, len(im))
        cols = _block(extra, s, e)
        split = im.split[s:e].tolist() if im.split is not None else [""] * (e - s)
        out = []
        for i, (iid, path, w, h) in enumerate(zip(ids[s:e].tolist(), im.path[s:e].tolist(), im.width[s:e].tolist(),
                                                  im.height[s:e].tolist(), strict=True)):
            rec: dict[str, Any] = {"id": iid, "file_name": path, "width": w, "height": h}
            if split[i]:
                rec["split"] = split[i]
            _put_extras(rec, cols, i, _IMG_KEYS, rep, "images")
            out.append(rec)
        yield out


def _category_records(ds: Dataset, ids: IntArray, rep: ExportReport) -> list[dict[str, Any]]:
    out = []
    own = ds.info.get("coco_categories")  # a category's other keys (LVIS's frequency...), by COCO id
    own = own if isinstance(own, dict) else {}
    for c, cid in zip(ds.schema.classes, ids.tolist(), strict=True):
        extra = own.get(str(cid)) if c.id == cid else None  # the same category, not a renumbered class
        extra = dict(extra) if isinstance(extra, dict) else {}
        rec: dict[str, Any] = {"id": cid, "name": c.name}
        if not without_supercategory(c, extra):
            rec["supercategory"] = c.supercategory
        if c.keypoints:
            rec["keypoints"] = list(c.keypoints)
            rec["skeleton"] = [[a + 1, b + 1] for a, b in c.skeleton]
        if c.color:
            rec["color"] = c.color
        rec.update({k: v for k, v in extra.items() if k not in rec})
        out.append(rec)
    if any(c.kind != "object" or c.label_types for c in ds.schema.classes) or ds.schema.attributes or \
            ds.schema.guidelines:
        rep.notes.append("class kinds and label types, attribute definitions and guidelines are not stored in COCO")
    return out


def without_supercategory(c: ClassDef, kept: dict[str, Any]) -> bool:
    """Whether class ``c``'s category is written without ``supercategory``: it has none and its category was read
    without the key (``kept``: its ``info["coco_categories"]`` entry, copied; the marker ``"supercategory": None``
    is taken out of it)."""
    absent = "supercategory" in kept and kept["supercategory"] is None
    if absent:
        del kept["supercategory"]
    return absent and not c.supercategory


def _geometry_boxes(ds: Dataset, kp: tuple[np.ndarray, IntArray, np.ndarray] | None) -> tuple[FloatArray, int, int]:
    """xyxy boxes, filled where an annotation has no box from its polygon or mask, else from the extent of its
    labelled keypoints (``v > 0`` among those written, ``kp`` as ``_keypoint_values`` gives it: the points
    ``num_keypoints`` counts; one point gives a box of size 0, as CVAT's and Datumaro's COCO keypoint exports do);
    ``annotations.box`` itself, no copy, where every annotation has one. And how many were filled each way."""
    a = ds.annotations
    assert a.box is not None
    missing = np.flatnonzero(~a.has_box)
    if not missing.size:
        return a.box, 0, 0
    box = a.box.copy()
    n_geometry = 0
    for r in missing.tolist():
        poly = a.polygon[r] if a.polygon is not None else None
        mask = a.mask[r] if a.mask is not None else None
        if poly:
            box[r] = M.polygon_box(poly)
        elif mask is not None:
            box[r] = M.to_box([mask])[0]
        else:
            continue
        n_geometry += 1
    n_points = 0
    if kp is not None:
        vals, k_cls, written = kp
        rows = missing[~np.isfinite(box[missing, 0]) & written[missing]]
        pts = vals[rows].astype(np.float64)
        labelled = (pts[:, :, 2] > 0) & (np.arange(pts.shape[1])[None, :] < k_cls[rows, None])
        rows, pts, labelled = rows[labelled.any(1)], pts[labelled.any(1)], labelled[labelled.any(1)]
        if rows.size:
            x = np.where(labelled, pts[:, :, 0], np.nan)
            y = np.where(labelled, pts[:, :, 1], np.nan)
            box[rows] = np.stack([np.nanmin(x, 1), np.nanmin(y, 1), np.nanmax(x, 1), np.nanmax(y, 1)], axis=1)
            n_points = int(rows.size)
    return box, n_geometry, n_points


def _areas(ds: Dataset, box: FloatArray, oriented: tuple[np.ndarray, FloatArray] | None = None) -> FloatArray:
    """The file's area where kept, else ``w * h`` of an oriented box written as ``obb`` (``oriented``: which, and
    their ``xywhr``; what hotcoco takes without area), the mask area, the rasterised polygon area, or the box area."""
    a = ds.annotations
    given = a.extra.get("area")
    area = np.full(len(a), np.nan)
    if given is not None:
        area = np.asarray([v if isinstance(v, int | float | np.number) else np.nan for v in given.tolist()],
                          np.float64) if given.dtype == object else given.astype(np.float64)
    if oriented is not None:
        fill = oriented[0] & ~np.isfinite(area)
        area[fill] = oriented[1][fill, 2] * oriented[1][fill, 3]
    for r in np.flatnonzero(~np.isfinite(area)).tolist():
        poly = a.polygon[r] if a.polygon is not None else None
        mask = a.mask[r] if a.mask is not None else None
        i = int(a.image[r])
        h, w = int(ds.images.height[i]), int(ds.images.width[i])
        if mask is not None:
            area[r] = M.area([mask])[0]
        elif poly and h > 0 and w > 0:
            area[r] = M.area([M.from_polygons(poly, h, w)])[0]
        elif poly:
            area[r] = sum(M.polygon_area(p) for p in poly)
        else:
            area[r] = (box[r, 2] - box[r, 0]) * (box[r, 3] - box[r, 1])
    return area


def _segmentation(poly: Any, mask: Any, crowd: bool, rep: ExportReport) -> Any:
    """The COCO segmentation of one annotation (or _MISSING); counts a mask or polygon it can't also hold."""
    if mask is not None and (crowd or not poly):
        if poly and not _same(poly, mask):
            rep.lost["polygon"] += 1
        return M.uncompressed(mask) if crowd else M.to_json(M.compress(mask))
    if poly:
        if mask is not None and not _same(poly, mask):
            rep.lost["mask"] += 1
        return [np.asarray(p, np.float64).tolist() for p in poly]
    return _MISSING


def _same(poly: Any, mask: dict[str, Any]) -> bool:
    h, w = (int(v) for v in mask["size"])
    return bool(M.from_polygons(poly, h, w)["counts"] == M.compress(mask)["counts"])


def _polygon_rows(p: Polygons | None, s: int, e: int) -> list[Any]:
    """Rows ``s .. e - 1`` as ``Polygons.tolist`` gives them (None, or a list of ring views), read from the flat
    arrays (``p[s:e]`` takes a pass over the whole column: once a block, that grows with n squared)."""
    if p is None:
        return [None] * (e - s)
    bounds = p.row_offsets[s:e + 1]
    r0, r1 = int(bounds[0]), int(bounds[-1])
    rings: list[np.ndarray] = []
    if r1 > r0:
        at = p.ring_offsets[r0:r1 + 1]
        rings = np.split(p.xy[at[0]:at[-1]], at[1:-1] - at[0])
    b = (bounds - r0).tolist()
    return [None if nul else rings[b[j]:b[j + 1]] for j, nul in enumerate(p.null[s:e].tolist())]


def _keypoint_values(ds: Dataset) -> tuple[tuple[np.ndarray, IntArray, np.ndarray] | None, np.ndarray]:
    """The keypoint values to write (n, K', 3) (ints where all are whole), K per annotation (every annotation of a
    class with K keypoint names gets 3 K values: ``0, 0, 0`` for points it has none of, as COCO's person_keypoints
    files do, and pycocotools' keypoint evaluation needs ``keypoints`` and ``num_keypoints`` on every record of the
    class), and (n,) bool: the annotations with keypoint values of their own (None when no class has keypoint names
    and the dataset no keypoints); and (n,) the annotations whose keypoints can't all be written (points of a class
    without keypoint names or beyond the class's K, or partly NaN)."""
    a = ds.annotations
    n = len(a)
    k_of = np.asarray([len(c.keypoints) for c in ds.schema.classes], np.int64)
    if a.keypoints is None or a.keypoints.shape[1] == 0:
        none = np.zeros(n, bool)
        return ((np.zeros((n, int(k_of.max()), 3), np.int64), k_of[a.label], none) if k_of.any() else None), none
    k_cls = k_of[a.label]
    width = int(k_cls.max(initial=0))
    kp = a.keypoints
    empty = np.isnan(kp).all(axis=(1, 2)) | (np.nan_to_num(kp) == 0).all(axis=(1, 2))
    cols = np.arange(kp.shape[1])[None, :]
    beyond = (cols >= k_cls[:, None]) & ~(np.isnan(kp).all(2) | (np.nan_to_num(kp) == 0).all(2))
    inside = cols < k_cls[:, None]
    own = ~np.isnan(kp).all(axis=(1, 2)) & (k_cls > 0)
    partial = own & (np.isnan(kp).any(2) & inside).any(1)
    vals = np.nan_to_num(kp)
    if np.all(vals == np.round(vals)):
        vals = vals.astype(np.int64)
    if vals.shape[1] < width:  # points the array has no column for are unlabelled: (0, 0, 0), 3 K values a record
        vals = np.concatenate([vals, np.zeros((n, width - vals.shape[1], 3), vals.dtype)], axis=1)
    return (vals, k_cls, own), (beyond.any(1) & ~empty) | partial


def _keypoint_lists(kp: tuple[np.ndarray, IntArray, np.ndarray] | None, s: int, e: int) -> list[Any]:
    """Per annotation ``s .. e - 1`` the flat keypoints list to write (``[0] * 3 K`` where it has none), or None
    (a class without keypoint names)."""
    if kp is None:
        return [None] * (e - s)
    vals, k_cls, own = kp
    out: list[Any] = [None] * (e - s)
    for r in (np.flatnonzero(k_cls[s:e] > 0) + s).tolist():
        out[r - s] = vals[r, : k_cls[r]].ravel().tolist() if own[r] else [0] * (3 * int(k_cls[r]))
    return out


def _annotation_records(ds: Dataset, img_ids: IntArray, cat_ids: IntArray, rep: ExportReport,
                        rows: int, obb: bool = False) -> Iterator[list[dict[str, Any]]]:
    """The annotation records of ``rows`` annotations at a time (whole columns stay numpy arrays, only a block's
    values become Python objects), a list cut where the written records reach a multiple of ``_LINE``."""
    a = ds.annotations
    n = len(a)
    assert a.iscrowd is not None and a.source is not None
    kp, kp_lost = _keypoint_values(ds)
    box, from_geometry, from_points = _geometry_boxes(ds, kp)
    rep.notes.extend(f"{k} boxes computed from {what}" for k, what in (
        (from_geometry, "their polygons or masks"), (from_points, "the extent of their labelled keypoints (v > 0)")) if k)
    if n_line := int(np.sum(np.asarray(a.extra.get("cvat_shape", []), object) == "polyline")):
        rep.notes.append(f"{n_line} polylines written as polygons: COCO has no open lines (its tools fill them as "
                         "regions, and pycocotools reads one of 2 points as a box)")
    tag = ~np.isfinite(box[:, 0])
    n_tag = int(tag.sum())
    # each annotation counted once: keypoints not written (the annotation has no geometry and no labelled keypoint,
    # or keypoints the file can't all hold), or a tag (no geometry, no keypoints)
    named = kp[2] if kp is not None else np.zeros(n, bool)  # keypoints of a class with keypoint names
    unplaced = tag & (kp_lost | named)
    _lose(rep, "keypoints", int((unplaced | kp_lost).sum()))
    _lose(rep, "tags", int((tag & ~unplaced).sum()))
    if unplaced.any():
        why = [f"{k} {what}" for k, what in ((int((unplaced & named).sum()), "without a labelled keypoint (v > 0) to "
                                              "make a box from"),
                                             (int((unplaced & ~named).sum()), "of classes without keypoint names")) if k]
        rep.notes.append(f"{int(unplaced.sum())} annotations with keypoints but no box, polygon or mask not written "
                         f"(counted in keypoints): {', '.join(why)}")
    box0 = np.where(tag[:, None], 0.0, box) if n_tag else box  # tags: written nowhere, their 0 box computes
    xywh_arr: FloatArray | None = None
    if B.COCO_BBOX in a.extra:  # boxes as read, where not edited since: the file gets them back to the bit
        exact, ok = B.as_read_xywh(box, np.asarray(a.extra[B.COCO_BBOX], np.float64))
        if ok.all():
            xywh_arr = exact
        else:
            xywh_arr = B.to_xywh(box0)
            xywh_arr[ok] = exact[ok]
        del exact, ok
    if xywh_arr is None:
        xywh_arr = B.to_xywh(box0)
    is_obb, obb_arr, bent = oriented_for_write(ds, force=obb)
    n_bent = int(bent.sum())
    _lose(rep, "polygon", n_bent)
    n_obb = int(is_obb.sum())
    if (note := written_note(n_obb, n_bent)) is not None:
        rep.notes.append(note)
    area_arr = _areas(ds, box0, (is_obb, obb_arr) if is_obb.any() else None)
    del box, box0
    ann_ids, renumbered, n_new = _ids(a.extra.get("coco_id"), n)
    if renumbered:
        rep.notes.append("annotation coco_id values repeat: annotations renumbered 1..N")
    elif (note := _new_ids_note(n_new, "annotations", ann_ids, a.extra.get("coco_id"))) is not None:
        rep.notes.append(note)
    image_ids_ = img_ids[a.image]
    category_ids_ = cat_ids[a.label]
    extra_cols = [(k, v) for k, v in a.extra.items()
                  if k not in ("coco_id", "area", B.COCO_BBOX, OBB_COLUMN, OBB_BBOX_COLUMN)]
    out: list[dict[str, Any]] = []
    written = 0
    for s in range(0, n, rows):
        e = min(s + rows, n)
        keep = np.flatnonzero(~tag[s:e]).tolist()
        xywh = xywh_arr[s:e].tolist()
        area = area_arr[s:e].tolist()
        ann_id, image_id, category_id = ann_ids[s:e].tolist(), image_ids_[s:e].tolist(), category_ids_[s:e].tolist()
        crowd = a.iscrowd[s:e].tolist()
        polygon = [None] * (e - s) if n_obb and is_obb[s:e].all() else _polygon_rows(a.polygon, s, e)  # obb: none
        mask = a.mask[s:e].tolist() if a.mask is not None else [None] * (e - s)
        kps = _keypoint_lists(kp, s, e)
        score = a.score[s:e].tolist() if a.score is not None else None
        attrs = _block(a.attributes.items(), s, e)
        annotator = a.annotator[s:e].tolist() if a.annotator is not None else None
        source = a.source[s:e].tolist()
        extras = _block(extra_cols, s, e)
        oriented = is_obb[s:e].tolist() if n_obb else [False] * (e - s)
        for r in keep:
            rec: dict[str, Any] = {"id": ann_id[r], "image_id": image_id[r], "category_id": category_id[r],
                                   "bbox": xywh[r], "area": area[r], "iscrowd": int(crowd[r])}
            if oriented[r]:
                rec["obb"] = obb_arr[s + r].tolist()
            elif (seg := _segmentation(polygon[r], mask[r], crowd[r], rep)) is not _MISSING:
                rec["segmentation"] = seg
            if kps[r] is not None:
                rec["keypoints"] = kps[r]
                rec["num_keypoints"] = sum(v > 0 for v in kps[r][2::3])
            if score is not None and np.isfinite(score[r]):
                rec["score"] = score[r]
            if attrs:
                d = {}
                for k, vals, plain in attrs:
                    v = vals[r]
                    if v is None:
                        continue
                    if plain:
                        d[k] = v
                        continue
                    j = _json(v)
                    if j is _MISSING:
                        rep.lost["attributes"] += 1
                    else:
                        d[k] = j
                if d:
                    rec["attributes"] = d
            if annotator is not None and annotator[r]:
                rec["annotator"] = annotator[r]
            if source[r] != "human":
                rec["source"] = source[r]
            _put_extras(rec, extras, r, _OBB_KEYS if oriented[r] else _ANN_KEYS, rep, "annotations")
            out.append(rec)
            written += 1
            if written % _LINE == 0:
                yield out
                out = []
        yield out
        out = []
    rep.n_annotations = n - n_tag
