"""Writing COCO instances JSON (``maslow.io.coco.write``); see ``maslow.io.coco`` for the conventions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core import boxes as B
from maslow.core import masks as M
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.types import FloatArray, IntArray
from maslow.io._coco_stream import no_gc
from maslow.io._common import ExportReport

_ANN_KEYS = frozenset({"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd", "keypoints",
                       "num_keypoints", "score", "attributes", "annotator", "source"})
_IMG_KEYS = frozenset({"id", "file_name", "width", "height", "split"})
_MISSING = object()


def write(ds: Dataset, dst: Path, *, indent: int | None = None) -> ExportReport:
    """Write ``ds`` as one COCO instances (or person-keypoints) JSON file, atomically.

    Ids are those of ``images.extra["coco_id"]``, ``annotations.extra["coco_id"]`` and ``ClassDef.id`` where
    present and unique (new ids otherwise). Polygons are written as polygons and masks as RLE (uncompressed
    counts for crowd regions, as COCO does); ``area`` is ``annotations.extra["area"]`` where present, else the
    mask or polygon area, else the box area; ``score`` is written where finite (predictions). Attributes go to
    each annotation's ``attributes`` object, other extra columns to keys of their own.

    Args:
        ds: the dataset.
        dst: the JSON file to write.
        indent: pretty-print with this indent (default: compact).

    Returns:
        ExportReport; ``lost`` counts annotations without any geometry (``tags``), masks that differ from the
        polygon written for the same annotation (``mask``), keypoints of classes without keypoint names
        (``keypoints``) and values that are not JSON (``annotations.extra``, ``images.extra``, ``attributes``).
    """
    dst = Path(dst)
    rep = ExportReport(path=str(dst), format="coco", n_images=ds.n_images)
    img_ids, renumbered = _ids(ds.images.extra.get("coco_id"), ds.n_images)
    if renumbered:
        rep.notes.append("image coco_id values repeat: images renumbered 1..N")
    cat_ids = category_ids(ds.schema)
    images = _image_records(ds, img_ids, rep)
    cats = _category_records(ds, cat_ids, rep)
    sep = (",", ": ") if indent else (",", ":")
    import json  # here: reading COCO doesn't need it (1.4 ms to import)

    with no_gc(), atomic_path(dst) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write('{"info": {"description": "written by maslow"}, "licenses": [],\n"images": ')
            f.write(json.dumps(images, indent=indent, separators=sep, ensure_ascii=False))  # dumps: C encoder
            f.write(',\n"annotations": [')
            first = True
            for chunk in _annotation_records(ds, img_ids, cat_ids, rep):
                if chunk:
                    text = json.dumps(chunk, indent=indent, separators=sep, ensure_ascii=False)
                    f.write(("" if first else ",") + "\n" + text[1:-1].strip("\n"))
                    first = False
            f.write('\n],\n"categories": ')
            f.write(json.dumps(cats, indent=indent, separators=sep, ensure_ascii=False))
            f.write("}\n")
    return rep


write_coco = write


def image_ids(ds: Dataset) -> IntArray:
    """(m,) the COCO id of each image: ``images.extra["coco_id"]`` where present and unique, else new ids."""
    return _ids(ds.images.extra.get("coco_id"), ds.n_images)[0]


def category_ids(schema: LabelSchema) -> IntArray:
    """(k,) the COCO category id of each class: ``ClassDef.id`` where set and unique, else new ids."""
    raw = np.asarray([-1 if c.id is None else c.id for c in schema.classes], np.int64)
    return _ids(raw, len(raw))[0]


def _ids(col: np.ndarray | None, n: int) -> tuple[IntArray, bool]:
    """Ids from a column (new ones from max + 1 where missing); renumbered 1..n when the given ones repeat."""
    if col is None:
        return np.arange(1, n + 1, dtype=np.int64), False
    if col.dtype.kind in "iu":
        arr = col.astype(np.int64)
    elif col.dtype.kind == "f":
        arr = np.where(np.isfinite(col) & (col == np.round(col)), col, -1).astype(np.int64)
    else:
        arr = np.asarray([int(v) if isinstance(v, int | np.integer) and not isinstance(v, bool) else -1
                          for v in col.tolist()], np.int64)
    have = arr >= 0
    given = np.sort(arr[have])  # (not np.unique: that imports numpy.ma, a sixth of a fast read's time)
    if given.size > 1 and bool((given[1:] == given[:-1]).any()):
        return np.arange(1, n + 1, dtype=np.int64), True
    start = int(arr[have].max()) + 1 if have.any() else 1
    arr[~have] = start + np.arange(int((~have).sum()))
    return arr, False


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


def _put_extras(rec: dict[str, Any], cols: list[tuple[str, list[Any]]], r: int, reserved: frozenset[str],
                rep: ExportReport, table: str) -> None:
    for k, vals in cols:
        v = vals[r]
        if v is None:
            continue
        j = _json(v)
        if j is _MISSING or k in reserved:
            if not (isinstance(v, float) and np.isnan(v)):
                rep.lost[f"{table}.extra"] += 1
            continue
        rec[k] = j


def _image_records(ds: Dataset, ids: IntArray, rep: ExportReport) -> list[dict[str, Any]]:
    im = ds.images
    cols = [(k, v.tolist()) for k, v in im.extra.items() if k != "coco_id"]
    split = im.split.tolist() if im.split is not None else [""] * len(im)
    out = []
    for i, (iid, path, w, h) in enumerate(zip(ids.tolist(), im.path.tolist(), im.width.tolist(), im.height.tolist(),
                                              strict=True)):
        rec: dict[str, Any] = {"id": iid, "file_name": path, "width": w, "height": h}
        if split[i]:
            rec["split"] = split[i]
        _put_extras(rec, cols, i, _IMG_KEYS, rep, "images")
        out.append(rec)
    return out


def _category_records(ds: Dataset, ids: IntArray, rep: ExportReport) -> list[dict[str, Any]]:
    out = []
    for c, cid in zip(ds.schema.classes, ids.tolist(), strict=True):
        rec: dict[str, Any] = {"id": cid, "name": c.name, "supercategory": c.supercategory}
        if c.keypoints:
            rec["keypoints"] = list(c.keypoints)
            rec["skeleton"] = [[a + 1, b + 1] for a, b in c.skeleton]
        if c.color:
            rec["color"] = c.color
        out.append(rec)
    if any(c.kind != "object" or c.label_types for c in ds.schema.classes) or ds.schema.attributes or \
            ds.schema.guidelines:
        rep.notes.append("class kinds and label types, attribute definitions and guidelines are not stored in COCO")
    return out


def _geometry_boxes(ds: Dataset) -> FloatArray:
    """xyxy boxes, filled from the polygon or mask where an annotation has no box."""
    a = ds.annotations
    assert a.box is not None
    box = a.box.copy()
    for r in np.flatnonzero(~a.has_box).tolist():
        poly = a.polygon[r] if a.polygon is not None else None
        mask = a.mask[r] if a.mask is not None else None
        if poly:
            box[r] = M.polygon_box(poly)
        elif mask is not None:
            box[r] = M.to_box([mask])[0]
    return box


def _areas(ds: Dataset, box: FloatArray) -> FloatArray:
    """The file's area where kept, else the mask area, the rasterised polygon area, or the box area."""
    a = ds.annotations
    given = a.extra.get("area")
    area = np.full(len(a), np.nan)
    if given is not None:
        area = np.asarray([v if isinstance(v, int | float | np.number) else np.nan for v in given.tolist()],
                          np.float64) if given.dtype == object else given.astype(np.float64)
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


def _keypoint_lists(ds: Dataset, rep: ExportReport) -> list[Any]:
    """Per annotation the flat keypoints list to write, or None."""
    a = ds.annotations
    n = len(a)
    if a.keypoints is None or a.keypoints.shape[1] == 0:
        return [None] * n
    kp = a.keypoints
    k_cls = np.asarray([len(c.keypoints) for c in ds.schema.classes], np.int64)[a.label]
    empty = np.isnan(kp).all(axis=(1, 2)) | (np.nan_to_num(kp) == 0).all(axis=(1, 2))
    cols = np.arange(kp.shape[1])[None, :]
    beyond = (cols >= k_cls[:, None]) & ~(np.isnan(kp).all(2) | (np.nan_to_num(kp) == 0).all(2))
    _lose(rep, "keypoints", int((beyond.any(1) & ~empty).sum()))
    inside = cols < k_cls[:, None]
    written = ~np.isnan(kp).all(axis=(1, 2)) & (k_cls > 0)
    partial = written & (np.isnan(kp).any(2) & inside).any(1)
    _lose(rep, "keypoints", int(partial.sum()))
    vals = np.nan_to_num(kp)
    if np.all(vals == np.round(vals)):
        vals = vals.astype(np.int64)
    width = int(k_cls.max(initial=0))
    if vals.shape[1] < width:  # points the array has no column for are unlabelled: (0, 0, 0), 3 K values a record
        vals = np.concatenate([vals, np.zeros((n, width - vals.shape[1], 3), vals.dtype)], axis=1)
    out: list[Any] = [None] * n
    for r in np.flatnonzero(written).tolist():
        out[r] = vals[r, : k_cls[r]].ravel().tolist()
    return out


def _annotation_records(ds: Dataset, img_ids: IntArray, cat_ids: IntArray, rep: ExportReport,
                        chunk: int = 20_000) -> Iterator[list[dict[str, Any]]]:
    a = ds.annotations
    n = len(a)
    assert a.iscrowd is not None and a.source is not None
    box = _geometry_boxes(ds)
    computed = int((~a.has_box & np.isfinite(box[:, 0])).sum())
    if computed:
        rep.notes.append(f"{computed} boxes computed from their polygons or masks")
    tag = ~np.isfinite(box[:, 0])
    _lose(rep, "tags", int(tag.sum()))
    xywh_arr = B.to_xywh(np.where(tag[:, None], 0.0, box))
    if B.COCO_BBOX in a.extra:  # boxes as read, where not edited since: the file gets them back to the bit
        exact, ok = B.as_read_xywh(box, np.asarray(a.extra[B.COCO_BBOX], np.float64))
        xywh_arr[ok] = exact[ok]
    xywh = xywh_arr.tolist()
    area = _areas(ds, np.where(tag[:, None], 0.0, box)).tolist()
    ann_ids = _ids(a.extra.get("coco_id"), n)[0].tolist()
    image_id = img_ids[a.image].tolist()
    category_id = cat_ids[a.label].tolist()
    crowd = a.iscrowd.tolist()
    polygon = a.polygon.tolist() if a.polygon is not None else [None] * n
    mask = a.mask.tolist() if a.mask is not None else [None] * n
    kps = _keypoint_lists(ds, rep)
    score = a.score.tolist() if a.score is not None else None
    attrs = [(k, v.tolist()) for k, v in a.attributes.items()]
    annotator = a.annotator.tolist() if a.annotator is not None else None
    source = a.source.tolist()
    extras = [(k, v.tolist()) for k, v in a.extra.items() if k not in ("coco_id", "area", B.COCO_BBOX)]
    out: list[dict[str, Any]] = []
    for r in range(n):
        if tag[r]:
            continue
        rec: dict[str, Any] = {"id": ann_ids[r], "image_id": image_id[r], "category_id": category_id[r],
                               "bbox": xywh[r], "area": area[r], "iscrowd": int(crowd[r])}
        seg = _segmentation(polygon[r], mask[r], crowd[r], rep)
        if seg is not _MISSING:
            rec["segmentation"] = seg
        if kps[r] is not None:
            rec["keypoints"] = kps[r]
            rec["num_keypoints"] = sum(v > 0 for v in kps[r][2::3])
        if score is not None and np.isfinite(score[r]):
            rec["score"] = score[r]
        if attrs:
            d = {}
            for k, vals in attrs:
                v = vals[r]
                if v is None:
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
        _put_extras(rec, extras, r, _ANN_KEYS, rep, "annotations")
        out.append(rec)
        if len(out) == chunk:
            yield out
            out = []
    rep.n_annotations = n - int(tag.sum())
    yield out
