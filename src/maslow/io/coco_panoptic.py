"""COCO panoptic segmentation: a JSON file plus a folder of PNGs whose pixel colours are segment ids.

Glossary of the format (panopticapi's, converted here, nowhere else):

- *JSON*: like COCO instances, ``images`` and ``categories`` (each with ``isthing``: 1 for a thing, a countable
  object; 0 for stuff, an amorphous region; and ``color``: ``[r, g, b]``), but ``annotations`` holds one record
  per image: ``{"segments_info": [...], "file_name": "<png>", "image_id": ...}``.
- *segments_info*: one object per segment, ``{"id", "category_id", "iscrowd", "bbox", "area"}``: ``bbox`` is
  ``[x, y, width, height]`` of the segment's pixels (inclusive: ``width = x_max - x + 1``), ``area`` its pixel
  count. Prediction files often hold only ``id`` and ``category_id``.
- *PNG*: ``file_name`` inside the PNG folder (default: the JSON's path without ``.json``, as panopticapi assumes:
  ``panoptic_val2017.json`` + ``panoptic_val2017/``); each pixel's segment id is ``R + 256 G + 256^2 B``; 0 is
  VOID (unlabelled: no segment).

Mapping to maslow (one annotation row per segment; ``maslow.metrics.panoptic_quality`` reads it):

- schema: tasks ``instance_segmentation`` and ``semantic_segmentation`` (a panoptic dataset is both); a category
  is a ``ClassDef`` with ``id`` its category id, ``kind`` ``"object"`` for things (``isthing`` 1) and
  ``"semantic"`` for stuff (0), ``color`` ``#rrggbb``; its other keys go to ``info["coco_categories"]`` (as
  ``read_coco`` keeps them; ``"supercategory": None`` where the category has no such key, so it is written back
  without one), the top-level keys other than the three tables to ``info["coco"]``.
- images: as ``read_coco`` reads them (``images.extra["coco_id"]``, other keys as ``extra`` columns); the PNG's
  name in ``images.extra["panoptic_file_name"]`` (None for an image without a record), other record keys in
  ``images.extra["panoptic_<key>"]``. A file without ``images`` (some prediction files) gets one image per record,
  named by its PNG, sized by it.
- segments: ``mask`` (COCO RLE of its pixels, as ``pycocotools.mask.encode`` gives), ``box`` (the file's ``bbox``
  as xyxy, else the box of its pixels), ``iscrowd``, ``extra["area"]`` (the file's area, else the pixel count),
  ``extra["panoptic_id"]`` (the segment id) and the other keys as ``extra`` columns (``isthing`` in detectron2's
  predictions, ``score``). Rows follow the images, and ``segments_info`` order within an image.

Findings (``Collector``; file, record and field named): a PNG missing or unreadable (its segments kept without a
mask), a segment listed but absent from its PNG (an empty mask), a PNG colour not listed (its pixels read as VOID),
``area`` or ``bbox`` disagreeing with the pixels (the file's kept), a segment id listed twice in one image or an
image with two records (the later claim not imported), an unknown category or image, a PNG whose size differs from
its image, an image without a record.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import _coco_panoptic_png as png
from maslow.io._coco_columns import to_column
from maslow.io._coco_panoptic_write import write, write_coco_panoptic
from maslow.io._coco_write import DEFAULT_HEAD, category_ids, image_ids
from maslow.io._common import Collector, load_json, safe_relpath
from maslow.io.coco import _images as coco_images
from maslow.io.coco import id_text
from maslow.io.registry import warn_issues

__all__ = ["PNG_NAME", "SEGMENT_ID", "TASKS", "parse", "read_coco_panoptic", "write", "write_coco_panoptic"]

#: the tasks of a panoptic schema
TASKS = (Task.INSTANCE_SEGMENTATION, Task.SEMANTIC_SEGMENTATION)
#: annotations.extra column of the segment ids
SEGMENT_ID = "panoptic_id"
#: images.extra column of the PNG names
PNG_NAME = "panoptic_file_name"
_TABLES = ("images", "annotations", "categories")
_CATEGORY_KEYS = frozenset({"id", "name", "supercategory", "isthing", "color"})
_SEGMENT_KEYS = frozenset({"id", "category_id", "iscrowd", "bbox", "area"})
_RECORD_KEYS = frozenset({"image_id", "file_name", "segments_info"})
_ABSENT = object()


def parse(src: Path, *, images_root: Path | None = None, strict: bool = False, png_folder: Path | str | None = None,
          like: Dataset | None = None) -> tuple[Dataset, Report]:
    """Read a COCO panoptic JSON file and its PNGs, and report what is wrong in them (module docstring).

    Args:
        src: the JSON file.
        images_root: base folder of the images' ``file_name`` (default: as ``read_coco`` finds it).
        strict: raise FormatError at the first error or warning instead of reporting it.
        png_folder: the folder of the PNGs (default: ``src`` without ``.json``).
        like: read predictions onto this truth: its images (records matched by ``image_id`` to
            ``images.extra["coco_id"]``), classes (``category_id`` to ``ClassDef.id``) and root; the file's own
            ``images`` and ``categories`` are not read.

    Returns:
        The Dataset and the Report of findings.

    Raises:
        FormatError: the JSON is not COCO panoptic (wrong types of records or fields, named by record and field),
            or the PNG folder does not exist.
    """
    src = Path(src)
    col = Collector(strict=strict)
    top = load_json(src)
    if not isinstance(top, dict):
        raise FormatError(f"must be a COCO panoptic object with images/annotations/categories, got a JSON "
                          f"{type(top).__name__}", path=src)
    folder = Path(png_folder) if png_folder is not None else src.with_suffix("")
    if not folder.is_dir():
        raise FormatError(f"the folder of PNGs must exist, got {folder} (default: the JSON's path without .json); "
                          "pass png_folder", path=src)
    records = _records(top, src)
    info: dict[str, Any] = {}
    root: Path | None
    if like is None:
        if "images" in top:
            images, root = coco_images(top, src, None if images_root is None else Path(images_root), col)
        else:
            images, root = _record_images(records, src), folder
        classes, own = _categories(top, src, col)
        schema = LabelSchema(classes=tuple(classes), tasks=TASKS)
        ids = images.extra["coco_id"]
        kept = {k: v for k, v in top.items() if k not in _TABLES and v != DEFAULT_HEAD.get(k, ...)}
        info = {**({"coco": kept} if kept else {}), **({"coco_categories": own} if own else {})}
    else:
        images, root, schema, ids = like.images, like.root, like.schema, image_ids(like)
    reader = _Reader(src, folder, images, schema, col)
    reader.assign(records, ids)
    ann, read_images = reader.read()
    if like is None:  # the PNG names and the sizes read from the PNGs; the truth's images stay as they are
        images = read_images
    return Dataset(schema=schema, images=images, annotations=ann, root=root, info=info), col.report()


def read_coco_panoptic(src: str | Path, **options: Any) -> Dataset:
    """Read a COCO panoptic JSON file and its folder of PNGs (see ``parse``; a MaslowWarning summarises the
    findings).

    Example:
        >>> from maslow.io import read_coco_panoptic  # doctest: +SKIP
        >>> ds = read_coco_panoptic("annotations/panoptic_val2017.json")  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), **options), source=src)


def _records(top: dict[str, Any], src: Path) -> list[dict[str, Any]]:
    """The per-image records, their structure checked (FormatError names the record and field)."""
    recs = top.get("annotations", [])
    if not isinstance(recs, list):
        raise FormatError(f"must be a list, got {type(recs).__name__}", path=src, field="annotations")
    for j, r in enumerate(recs):
        where = f"annotations[{j}]"
        if type(r) is not dict:
            raise FormatError(f"must be an object, got {type(r).__name__}", path=src, record=where)
        iid = r.get("image_id")
        if type(iid) is not int and type(iid) is not str:
            raise FormatError(f"image_id must be an integer or a string, got {iid!r}", path=src, record=where,
                              field="image_id")
        where = f"annotations[{j}] (image_id={id_text(iid)})"
        if type(r.get("file_name")) is not str:
            raise FormatError(f"file_name must be the PNG's name, got {r.get('file_name')!r}", path=src,
                              record=where, field="file_name")
        segs = r.get("segments_info")
        if type(segs) is not list:
            raise FormatError(f"segments_info must be a list, got {type(segs).__name__}", path=src, record=where,
                              field="segments_info")
        for s, info in enumerate(segs):
            if type(info) is not dict:
                raise FormatError(f"must be an object, got {type(info).__name__}", path=src,
                                  record=f"{where} segments_info[{s}]")
            for key in ("id", "category_id"):
                v = info.get(key)
                if type(v) is not int:
                    raise FormatError(f"{key} must be an integer, got {v!r}", path=src,
                                      record=f"{where} segments_info[{s}]", field=key)
    return recs


def _record_images(records: list[dict[str, Any]], src: Path) -> Images:
    """One image per record (a file without ``images``): named by its PNG, its size read from it later."""
    ids = [r["image_id"] for r in records]
    kinds = {type(v) for v in ids}
    if len(kinds) > 1:
        raise FormatError("image_id must be all integers or all strings", path=src, field="annotations")
    names = [safe_relpath(r["file_name"], root=None, file=src, record=f"annotations[{j}]", field="file_name")
             for j, r in enumerate(records)]
    m = len(records)
    return Images(path=obj_array(names), width=np.zeros(m, np.int64), height=np.zeros(m, np.int64),
                  extra={"coco_id": np.asarray(ids, np.int64) if kinds == {int} else obj_array(ids)})


def _categories(top: dict[str, Any], src: Path, col: Collector) -> tuple[list[ClassDef], dict[str, dict[str, Any]]]:
    """The classes (things ``object``, stuff ``semantic``) and each category's other keys by id."""
    cats = top.get("categories", [])
    if not isinstance(cats, list):
        raise FormatError(f"must be a list, got {type(cats).__name__}", path=src, field="categories")
    classes: list[ClassDef] = []
    own: dict[str, dict[str, Any]] = {}
    seen_id: dict[int, int] = {}
    names: set[str] = set()
    for i, c in enumerate(cats):
        rec = f"categories[{i}]"
        if type(c) is not dict:
            raise FormatError(f"must be an object, got {type(c).__name__}", path=src, record=rec)
        cid, name = c.get("id"), c.get("name")
        if type(cid) is not int:
            raise FormatError(f"id must be an integer, got {cid!r}", path=src, record=rec, field="id")
        rec = f"{rec} (id={cid})"
        if type(name) is not str or not name:
            raise FormatError(f"name must be a non-empty string, got {name!r}", path=src, record=rec, field="name")
        if cid in seen_id:
            col.add("panoptic_duplicate_category_id", f"category id must be unique, it repeats categories"
                    f"[{seen_id[cid]}]; this category is ignored", severity="error", file=src, record=rec, field="id")
            continue
        seen_id[cid] = i
        if name in names:
            col.add("panoptic_duplicate_category_name", f"category name must be unique, got {name!r} again; read as "
                    f"'{name} ({cid})'", severity="error", file=src, record=rec, field="name")
            name = f"{name} ({cid})"
        names.add(name)
        thing = c.get("isthing")
        if thing not in (0, 1) or type(thing) is bool:
            col.add("panoptic_bad_isthing", f"isthing must be 1 (a thing) or 0 (stuff), got {thing!r}; read as a "
                    "thing", severity="warning", file=src, record=rec, field="isthing")
            thing = 1
        rest = {k: v for k, v in c.items() if k not in _CATEGORY_KEYS}
        color = _hex(c.get("color"))
        if color is None and "color" in c:  # not [r, g, b]: kept as it is
            rest["color"] = c["color"]
        if "isthing" in c and c["isthing"] is not thing:  # not 0 or 1: written back as read
            rest["isthing"] = c["isthing"]
        if "supercategory" not in c:  # written back without one (a class's supercategory is "" either way)
            rest["supercategory"] = None
        sup = c.get("supercategory")
        classes.append(ClassDef(name=name, kind="object" if thing == 1 else "semantic", supercategory=sup if
                                type(sup) is str else "", color=color or "", id=cid))
        if rest:
            own[str(cid)] = rest
    return classes, own


def _hex(color: Any) -> str | None:
    """``#rrggbb`` of an ``[r, g, b]`` list of ints 0..255, else None."""
    if type(color) is list and len(color) == 3 and all(type(v) is int and 0 <= v <= 255 for v in color):
        return "#{:02x}{:02x}{:02x}".format(*color)
    return None


class _Reader:
    """The segments of every image, as annotation columns, and the findings on the way."""

    def __init__(self, src: Path, folder: Path, images: Images, schema: LabelSchema, col: Collector) -> None:
        self.src, self.folder, self.images, self.col = src, folder, images, col
        self.cat_row = {int(c): k for k, c in enumerate(category_ids(schema).tolist())}
        self.rec_of: list[tuple[int, dict[str, Any]] | None] = [None] * len(images)
        self.cols: dict[str, list[Any]] = {k: [] for k in ("image", "label", "box", "mask", "iscrowd", "area", "id")}
        self.extras: list[dict[str, Any] | None] = []
        self.width, self.height = images.width.copy(), images.height.copy()

    def assign(self, records: list[dict[str, Any]], ids: np.ndarray) -> None:
        """Each image's record (by ``image_id``); unknown images and second records are reported."""
        row_of: dict[Any, int] = {}
        for i, v in enumerate(ids.tolist()):
            row_of.setdefault(v, i)
        for j, r in enumerate(records):
            iid = r["image_id"]
            where = f"annotations[{j}] (image_id={id_text(iid)})"
            row = row_of.get(iid)
            if row is None:
                self.col.add("panoptic_unknown_image", f"image_id must be the id of one of the images, got "
                             f"{id_text(iid)}; its segments are not imported", severity="error", file=self.src,
                             record=where, field="image_id")
            elif (first := self.rec_of[row]) is not None:
                self.col.add("panoptic_duplicate_record", f"an image must have one record, annotations[{first[0]}] "
                             "is this image's already; this one is not imported", severity="error", file=self.src,
                             record=where, field="image_id", image=row)
            else:
                self.rec_of[row] = (j, r)

    def read(self) -> tuple[Annotations, Images]:
        names: list[str | None] = []
        more: dict[str, list[Any]] = {}
        for i, item in enumerate(self.rec_of):
            if item is None:
                self.col.add("panoptic_missing_record", "image has no record in annotations: no segments read for "
                             "it", severity="warning", file=self.src, record=f"images[{i}]", image=i)
                names.append(None)
                continue
            j, rec = item
            names.append(self._image(i, j, rec))
            for k in rec.keys() - _RECORD_KEYS:
                more.setdefault(k, [None] * len(self.rec_of))[i] = rec[k]
        c = self.cols
        n = len(c["image"])
        extra: dict[str, np.ndarray] = {"area": to_column(c["area"]), SEGMENT_ID: np.asarray(c["id"], np.int64)}
        keys = sorted({k for d in self.extras if d for k in d})
        for k in keys:
            extra[k] = to_column([None if d is None else d.get(k) for d in self.extras])
        ann = Annotations(image=np.asarray(c["image"], np.int64), label=np.asarray(c["label"], np.int64),
                          box=np.asarray(c["box"], np.float64).reshape(n, 4), mask=obj_array(c["mask"]),
                          iscrowd=np.asarray(c["iscrowd"], bool), extra=extra)
        img_extra = {**self.images.extra, PNG_NAME: obj_array(names),
                     **{f"panoptic_{k}": to_column(v) for k, v in more.items()}}
        images = replace(self.images, width=self.width, height=self.height, extra=img_extra)
        return ann, images

    def _image(self, i: int, j: int, rec: dict[str, Any]) -> str:
        """Read one record's PNG and segments; returns the PNG's name."""
        src, col = self.src, self.col
        where = f"annotations[{j}] (image_id={id_text(rec['image_id'])})"
        name = safe_relpath(rec["file_name"], root=self.folder, file=src, record=where, field="file_name")
        segs: png.Segments | None = None
        try:
            segs, h, w = png.read_segments(self.folder / name)
        except FormatError as e:
            kind = "panoptic_missing_png" if str(e).endswith("not found") else "panoptic_unreadable_png"
            col.add(kind, f"{e}; its segments are read without masks", severity="error", file=src, record=where,
                    field="file_name", image=i)
        if segs is not None:
            known = (int(self.width[i]), int(self.height[i]))
            if known == (0, 0):
                self.width[i], self.height[i] = w, h
            elif known != (w, h):
                col.add("panoptic_size_mismatch", f"PNG size must be the image's {known[0]}x{known[1]}, got {w}x{h}",
                        severity="error", file=src, record=where, field="file_name", image=i)
        index = segs.index() if segs is not None else {}
        boxes, areas = (segs.box.tolist(), segs.area.tolist()) if segs is not None else ([], [])
        seen: dict[int, int] = {}
        found: list[int] = []  # positions in segs of the segments read, in order (-1: not in the PNG)
        for s, info in enumerate(rec["segments_info"]):
            k = self._clean_segment(i, s, info, seen, index, boxes, areas)
            if k is None:  # something to report: the checks one by one
                at = f"{where} segments_info[{s}] (id={info['id']})"
                if not self._segment(i, s, info, at, seen, index, segs):
                    continue
                k = index.get(info["id"], -1)
            found.append(k)
        if segs is not None:
            listed = {info["id"] for info in rec["segments_info"]}  # those not imported are reported already
            for k in [k for k, v in enumerate(segs.ids.tolist()) if v not in listed]:
                col.add("panoptic_unlisted_segment", f"PNG holds segment id {int(segs.ids[k])} ({int(segs.area[k])} "
                        "pixels), which segments_info does not list; its pixels read as VOID", severity="error",
                        file=src, record=where, field="segments_info", image=i)
            empty = None
            masks = []
            for k in found:
                if k < 0:
                    empty = empty or png.empty_rle(h, w)
                masks.append(segs.rle(k, h, w) if k >= 0 else empty)
            self.cols["mask"][len(self.cols["mask"]) - len(found):] = masks
        return name

    def _clean_segment(self, i: int, s: int, info: dict[str, Any], seen: dict[int, int], index: dict[int, int],
                       boxes: list[list[float]], areas: list[int]) -> int | None:
        """Append the row of a segment with nothing to report (in its PNG, its category known, its id new, iscrowd
        0 or 1, bbox and area integers that agree with its pixels, or absent) and return its position in the PNG's
        segments, as ``_segment`` would; None for any other segment (``_segment`` reads it and reports)."""
        sid = info["id"]
        k = index.get(sid)
        label = self.cat_row.get(info["category_id"])
        crowd = info.get("iscrowd", 0)
        if k is None or label is None or sid in seen or type(crowd) is not int or not 0 <= crowd <= 1:
            return None
        box = boxes[k]
        b = info.get("bbox", _ABSENT)
        if b is not _ABSENT:
            if not (type(b) is list and len(b) == 4 and type(b[0]) is int and type(b[1]) is int and
                    type(b[2]) is int and type(b[3]) is int and b[2] >= 0 and b[3] >= 0):
                return None
            if [float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])] != box:
                return None
        area = info.get("area", _ABSENT)
        if area is _ABSENT:
            area = areas[k]
        elif type(area) is not int or area != areas[k]:
            return None
        seen[sid] = s
        self._append_row(i, label, box, crowd == 1, area, info)
        return k

    def _segment(self, i: int, s: int, info: dict[str, Any], at: str, seen: dict[int, int],
                 index: dict[int, int], segs: png.Segments | None) -> bool:
        """Append one segment's row (False: not imported, reported)."""
        src, col = self.src, self.col
        sid, cat = info["id"], info["category_id"]
        label = self.cat_row.get(cat)
        if label is None:
            col.add("panoptic_unknown_category", f"category_id must be the id of one of the categories, got {cat}; "
                    "segment not imported", severity="error", file=src, record=at, field="category_id", image=i)
            return False
        if sid in seen:
            col.add("panoptic_duplicate_segment", f"segment id must be unique in its image, it repeats segments_info"
                    f"[{seen[sid]}]: two segments claim the same pixels; this one is not imported", severity="error",
                    file=src, record=at, field="id", image=i)
            return False
        if not 1 <= sid <= png.MAX_ID:
            col.add("panoptic_bad_segment_id", f"segment id must be in 1..{png.MAX_ID} (0 is VOID), got {sid}; "
                    "segment not imported", severity="error", file=src, record=at, field="id", image=i)
            return False
        seen[sid] = s
        k = index.get(sid)
        if segs is not None and k is None:
            col.add("panoptic_segment_not_in_png", "segment is listed but its PNG has no pixel of its id; read with "
                    "an empty mask", severity="error", file=src, record=at, field="id", image=i)
        crowd = info.get("iscrowd", 0)
        if type(crowd) is bool or crowd not in (0, 1):
            col.add("panoptic_bad_iscrowd", f"iscrowd must be 0 or 1, got {crowd!r}; read as {int(bool(crowd))}",
                    severity="warning", file=src, record=at, field="iscrowd", image=i)
        px_box = segs.box[k].tolist() if segs is not None and k is not None else [math.nan] * 4
        box = self._box(info, px_box, at, i)
        area: Any = info.get("area")
        if "area" in info and not (type(area) in (int, float) and math.isfinite(area) and area >= 0):
            col.add("panoptic_bad_area", f"area must be a number >= 0, got {area!r}; the pixel count is read",
                    severity="error", file=src, record=at, field="area", image=i)
            area = None
        px_area = int(segs.area[k]) if segs is not None and k is not None else 0
        if area is None:
            area = px_area if segs is not None else math.nan
        elif k is not None and area != px_area:
            col.add("panoptic_area_mismatch", f"area must be the segment's pixel count {px_area}, got {area}; the "
                    "file's is kept", severity="warning", file=src, record=at, field="area", image=i)
        self._append_row(i, label, box, bool(crowd), area, info)
        return True

    def _append_row(self, i: int, label: int, box: list[float], crowd: bool, area: Any, info: dict[str, Any]) -> None:
        """Append a segment's row: its mask set once the image's RLEs are made, the keys of ``info`` maslow has no
        column for kept as its extras (None: none)."""
        c = self.cols
        c["image"].append(i)
        c["label"].append(label)
        c["box"].append(box)
        c["mask"].append(None)
        c["iscrowd"].append(crowd)
        c["area"].append(area)
        c["id"].append(info["id"])
        self.extras.append({key: v for key, v in info.items() if key not in _SEGMENT_KEYS}
                           if len(info) > len(info.keys() & _SEGMENT_KEYS) else None)

    def _box(self, info: dict[str, Any], px_box: list[float], at: str, i: int) -> list[float]:
        """The file's bbox as xyxy (the pixels' box where absent or malformed), its disagreement reported."""
        b = info.get("bbox")
        if "bbox" not in info:
            return px_box
        if not (type(b) is list and len(b) == 4 and all(type(v) in (int, float) and math.isfinite(v) for v in b)
                and b[2] >= 0 and b[3] >= 0):
            self.col.add("panoptic_bad_bbox", f"bbox must be [x, y, width, height] with width, height >= 0, got "
                         f"{b!r}; the pixels' box is read", severity="error", file=self.src, record=at, field="bbox",
                         image=i)
            return px_box
        box = [float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])]
        if not math.isnan(px_box[0]) and box != px_box:  # (a segment absent from its PNG: reported already)
            px = [px_box[0], px_box[1], px_box[2] - px_box[0], px_box[3] - px_box[1]]
            self.col.add("panoptic_bbox_mismatch", f"bbox must be the box of the segment's pixels {[int(v) for v in px]}"
                         f", got {b}; the file's is kept", severity="warning", file=self.src, record=at, field="bbox",
                         image=i)
        return box
