"""Writing the COCO panoptic format (``maslow.io.coco_panoptic.write``); see ``maslow.io.coco_panoptic`` for the
conventions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core import boxes as B
from maslow.core import masks as M
from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.errors import FormatError
from maslow.io import _coco_panoptic_png as png
from maslow.io._coco_obb import BBOX_COLUMN as OBB_BBOX_COLUMN
from maslow.io._coco_obb import COLUMN as OBB_COLUMN
from maslow.io._coco_write import _MISSING, _json, category_ids, image_ids, without_supercategory
from maslow.io._common import ExportReport, dump_json, safe_relpath
from maslow.io._export import count_lost
from maslow.io.registry import Progress, Ticks

_SEGMENT_ID, _PNG_NAME = "panoptic_id", "panoptic_file_name"  # coco_panoptic.SEGMENT_ID, PNG_NAME
#: annotation extra columns the segments' own keys hold, or that describe another format's geometry
_NOT_KEYS = frozenset({"area", _SEGMENT_ID, B.COCO_BBOX, OBB_COLUMN, OBB_BBOX_COLUMN})
_SEGMENT_KEYS = frozenset({"id", "category_id", "iscrowd", "bbox", "area"})
_IMAGE_KEYS = frozenset({"id", "file_name", "width", "height"})
_RECORD_KEYS = frozenset({"image_id", "file_name", "segments_info"})


def write(ds: Dataset, dst: Path, *, png_folder: Path | str | None = None,
          progress: Progress | None = None) -> ExportReport:
    """Write ``ds`` as a COCO panoptic JSON file and its folder of PNGs, both atomically.

    Each image's annotations become its segments, painted in row order into its PNG (a later segment wins where
    masks overlap; polygons are rasterised as pycocotools does). Ids are kept where the reader kept them
    (``images.extra["coco_id"]``, ``ClassDef.id``, ``annotations.extra["panoptic_id"]`` where unique in its image
    and in 1..2^24 - 1; new ones otherwise), as are the PNG names (``images.extra["panoptic_file_name"]``, else the
    image's path with ``.png``). A segment as read (its ``panoptic_id`` kept) keeps the file's ``bbox`` (its box)
    and ``area`` (``extra["area"]``), so a damaged file is written back as it was; any other annotation gets the
    box and pixel count of what is painted for it (one painted over entirely is not written: ``lost["hidden"]``).
    ``isthing`` is 1 for ``object`` classes and 0 for ``semantic`` ones; other extra columns become keys of the
    segment; ``info["coco"]`` and ``info["coco_categories"]`` are written back.

    Args:
        ds: the dataset.
        dst: the JSON file to write.
        png_folder: the folder of the PNGs (default: ``dst`` without ``.json``), replaced as a whole.
        progress: called as ``progress(done, total)`` over the images (``registry.Ticks``).

    Returns:
        ExportReport; ``lost`` counts annotations without a mask or polygon (``box``, ``tags``), masks of another
        size than their image (``size_mismatch``), pixels painted over (``overlap_pixels``), images of unknown size
        without masks (``unknown_size``, no PNG written) and what panoptic files can't hold (scores, keypoints,
        attributes, annotators, sources).
    """
    dst = Path(dst)
    folder = Path(png_folder) if png_folder is not None else dst.with_suffix("")
    if folder.resolve() == dst.resolve():
        raise FormatError("the PNG folder must differ from the JSON file: give the JSON file a name ending in "
                          "'.json' (its PNGs then go to the folder of the same name without it), or pass png_folder",
                          path=dst)
    rep = ExportReport(path=str(dst), format="coco-panoptic", n_images=ds.n_images)
    lost = count_lost(ds, keep=("box", "mask", "polygon", "iscrowd", "extra", "images.extra"))
    img_ids = image_ids(ds)
    cat_ids = category_ids(ds.schema).tolist()
    names = _png_names(ds)
    a = ds.annotations
    assert a.iscrowd is not None and a.box is not None
    extra_cols = [(k, v) for k, v in a.extra.items() if k not in _NOT_KEYS]
    areas = a.extra.get("area")
    seg_ids = a.extra.get(_SEGMENT_ID)
    slices = ds.image_slices()
    records: list[dict[str, Any]] = []
    tick = Ticks(progress, ds.n_images)
    with atomic_dir(folder) as tmp:
        for i in range(ds.n_images):
            tick(i)
            rows = range(int(slices[i]), int(slices[i + 1]))
            h, w = int(ds.images.height[i]), int(ds.images.width[i])
            if (h, w) == (0, 0):
                sizes = [a.mask[r]["size"] for r in rows if a.mask is not None and a.mask[r] is not None]
                if not sizes:
                    lost["unknown_size"] += 1
                    continue
                h, w = (int(v) for v in sizes[0])
            painted = [(r, rle) for r in rows if (rle := _rle(ds, r, h, w, lost)) is not None]
            given = [None if seg_ids is None else _plain(seg_ids[r]) for r, _ in painted]
            sids = _segment_ids(given)
            ids_map, over = png.paint([rle for _, rle in painted], sids, h, w)
            lost["overlap_pixels"] += over
            png.write_png(ids_map, tmp / names[i])
            drawn = png.segments(ids_map.T.reshape(-1), h, counts=False)
            at = drawn.index()
            info = []
            for (r, _), sid, g in zip(painted, sids, given, strict=True):
                k = at.get(sid)
                if g == sid:  # a segment as read: the file's bbox and area, where it has them
                    box = a.box[r] if k is None or np.isfinite(a.box[r]).all() else drawn.box[k]
                    area = _area(areas, r, 0 if k is None else int(drawn.area[k]))
                elif k is None:  # painted over entirely by later rows
                    lost["hidden"] += 1
                    continue
                else:  # the pixels written for it
                    box, area = drawn.box[k], int(drawn.area[k])
                seg: dict[str, Any] = {"id": sid, "category_id": cat_ids[a.label[r]], "iscrowd": int(a.iscrowd[r]),
                                       "bbox": _bbox(box), "area": area}
                _put(seg, [(k, v[r]) for k, v in extra_cols], _SEGMENT_KEYS, rep, "annotations.extra")
                info.append(seg)
            rep.n_annotations += len(info)
            rec: dict[str, Any] = {"segments_info": info, "file_name": names[i], "image_id": _plain(img_ids[i])}
            _put(rec, [(k[len("panoptic_"):], v[i]) for k, v in ds.images.extra.items()
                       if k.startswith("panoptic_") and k != _PNG_NAME], _RECORD_KEYS, rep, "images.extra")
            records.append(rec)
        doc = {**_head(ds, rep), "images": _images(ds, img_ids, rep), "annotations": records,
               "categories": _categories(ds, cat_ids)}
        dump_json(doc, dst)
    tick.end()
    rep.lost.update({k: v for k, v in lost.items() if v})
    if a.polygon is not None and not bool(a.polygon.null.all()):
        rep.notes.append("polygons written as their pixels (rasterised as pycocotools does): read back as masks")
    if lost["overlap_pixels"]:
        rep.notes.append(f"{lost['overlap_pixels']} pixels covered by several annotations: the later one won")
    return rep


write_coco_panoptic = write


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _rle(ds: Dataset, r: int, h: int, w: int, lost: Counter[str]) -> dict[str, Any] | None:
    """The mask of annotation ``r`` as a compressed RLE of the image's size (a polygon rasterised), or None (what
    it lacks counted in ``lost``)."""
    a = ds.annotations
    assert a.box is not None
    if a.mask is not None and a.mask[r] is not None:
        rle = M.compress(a.mask[r])
        if [int(v) for v in rle["size"]] != [h, w]:
            lost["size_mismatch"] += 1
            return None
        return rle
    rings = a.polygon[r] if a.polygon is not None else None
    if rings:
        return M.from_polygons(rings, h, w)
    lost["box" if not np.isnan(a.box[r, 0]) else "tags"] += 1
    return None


def _segment_ids(given: list[Any]) -> list[int]:
    """The ids of one image's segments: the given ones where valid (an int in 1..2^24 - 1) and not taken by an
    earlier segment, new ones (the smallest free) for the rest."""
    out: list[int] = []
    taken: set[int] = set()
    for v in given:
        good = isinstance(v, int | np.integer) and not isinstance(v, bool) and 1 <= int(v) <= png.MAX_ID
        out.append(int(v) if good and int(v) not in taken else 0)
        taken.add(out[-1])
    nxt = 1
    for k, v in enumerate(out):
        if v == 0:
            while nxt in taken:
                nxt += 1
            taken.add(nxt)
            out[k] = nxt
    return out


def _bbox(xyxy: np.ndarray) -> list[Any]:
    """xywh of a box (zeros for none); whole numbers as ints."""
    box = np.asarray(xyxy, np.float64) if np.isfinite(xyxy).all() else np.zeros(4)
    xywh = B.to_xywh(box[None])[0].tolist()
    return [int(v) if float(v).is_integer() else v for v in xywh]


def _area(areas: np.ndarray | None, r: int, pixels: int) -> Any:
    """The annotation's ``extra["area"]`` where it is a number, else ``pixels``."""
    v = None if areas is None else _plain(areas[r])
    if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v):
        return v
    return pixels


def _put(rec: dict[str, Any], items: list[tuple[str, Any]], reserved: frozenset[str], rep: ExportReport,
         what: str) -> None:
    """Add the JSON values of ``items`` to ``rec`` (None and NaN: absent); reserved keys and values JSON can't hold
    are counted lost."""
    for k, v in items:
        j = _json(v)
        if j is _MISSING:
            if not (v is None or (isinstance(v, float) and np.isnan(v))):
                rep.lost[what] += 1
        elif k in reserved:
            rep.lost[what] += 1
        else:
            rec[k] = j


def _png_names(ds: Dataset) -> list[str]:
    """Each image's PNG name: the one read (``images.extra["panoptic_file_name"]``) where it is a safe relative path
    not taken by an earlier image, else the image path with ``.png`` (made unique by ``__2``, ``__3``, ...)."""
    col = ds.images.extra.get(_PNG_NAME)
    out: list[str] = []
    used: set[str] = set()
    for i, path in enumerate(ds.images.path.tolist()):
        name = col[i] if col is not None else None
        if isinstance(name, str):
            try:
                name = safe_relpath(name, root=None)
            except FormatError:  # a stored name that would escape the folder: a new one
                name = None
        if not isinstance(name, str) or not name.lower().endswith(".png") or name in used:
            base = PurePosixPath(str(path)).with_suffix("")
            name, k = f"{base}.png", 1
            while name in used:
                k += 1
                name = f"{base}__{k}.png"
        used.add(name)
        out.append(name)
    return out


def _head(ds: Dataset, rep: ExportReport) -> dict[str, Any]:
    """The top-level keys a reader kept in ``ds.info["coco"]`` (``info``, ``licenses``, ...)."""
    kept = ds.info.get("coco")
    out: dict[str, Any] = {}
    if not isinstance(kept, dict):
        return out
    for k, v in kept.items():
        j = _json(v)
        if k in ("images", "annotations", "categories") or j is _MISSING:
            rep.lost["info"] += 1
        else:
            out[k] = j
    return out


def _images(ds: Dataset, ids: np.ndarray, rep: ExportReport) -> list[dict[str, Any]]:
    im = ds.images
    extra = [(k, v) for k, v in im.extra.items() if k != "coco_id" and not k.startswith("panoptic_")]
    out = []
    for i in range(len(im)):
        rec: dict[str, Any] = {"id": _plain(ids[i]), "file_name": str(im.path[i]), "width": int(im.width[i]),
                               "height": int(im.height[i])}
        _put(rec, [(k, v[i]) for k, v in extra], _IMAGE_KEYS, rep, "images.extra")
        out.append(rec)
    return out


def _categories(ds: Dataset, ids: list[int]) -> list[dict[str, Any]]:
    own = ds.info.get("coco_categories")
    own = own if isinstance(own, dict) else {}
    out = []
    for c, cid in zip(ds.schema.classes, ids, strict=True):
        extra = own.get(str(cid)) if c.id == cid else None  # the same category, not a renumbered class
        extra = dict(extra) if isinstance(extra, dict) else {}
        rec: dict[str, Any] = {"id": cid, "name": c.name}
        if not without_supercategory(c, extra):
            rec["supercategory"] = c.supercategory
        rec["isthing"] = int(c.kind == "object")
        if len(c.color) == 7 and c.color.startswith("#"):
            try:
                rec["color"] = [int(c.color[k:k + 2], 16) for k in (1, 3, 5)]
            except ValueError:
                rec["color"] = c.color
        elif c.color:
            rec["color"] = c.color
        rec.update(extra)  # a colour or isthing kept as read (not [r, g, b], not 0 or 1) included
        out.append(rec)
    return out
