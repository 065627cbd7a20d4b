"""COCO instances and person-keypoints JSON: read and write.

Glossary of COCO's conventions (converted here, nowhere else):

- ``bbox``: ``[x, y, width, height]`` in absolute pixels, x/y the top-left corner (maslow: xyxy).
- ``segmentation``: either polygons, a list of flat ``[x0, y0, x1, y1, ...]`` lists (one object may have
  several parts), or an RLE ``{"size": [h, w], "counts": ...}`` whose counts are a compressed string or, for
  crowd regions (``iscrowd: 1``), an uncompressed list of column-major run lengths.
- ``area``: the object's pixel area as the file states it (COCO evaluation uses it for the small/medium/large
  ranges, so it is kept in ``annotations.extra["area"]`` rather than recomputed).
- ``keypoints``: flat ``[x1, y1, v1, ...]``, 3*K numbers, ``v`` 0 (not labelled), 1 (labelled, hidden),
  2 (visible); ``num_keypoints`` counts ``v > 0`` (recomputed on write).
- ``categories[].skeleton``: 1-based keypoint index pairs (maslow: 0-based).
- ``obb``: ``[cx, cy, w, h, angle]`` (radians), hotcoco's oriented box; Ultralytics' ``rbox``/``poly`` too: read as a
  4-point ``polygon``, written back as ``obb`` (see ``_coco_obb``).
- ids: images, annotations and categories carry integer ids; annotations point at them with ``image_id`` and
  ``category_id``. maslow keeps them in ``images.extra["coco_id"]``, ``annotations.extra["coco_id"]`` and
  ``ClassDef.id``, so a written file keeps the ids of the file read. Image ids may also be strings (file stems,
  as some labelling tools write them; pycocotools takes any id): all of a file's image ids, never a mix, and the
  ``coco_id`` column is then an object column of those strings.

Read: polygons go to ``annotations.polygon`` and RLE segmentations (compressed or not) to
``annotations.mask``; polygons are not rasterised. ``attributes`` (CVAT's COCO export) become attribute
columns; ``score``, ``annotator`` and ``source`` keys are read when present; other annotation and image keys
go to ``extra`` columns. An image key ``split`` fills ``images.split``. Where maslow's C kernels are built, the
``annotations`` array is parsed by ``maslow._native.records`` (see ``_coco_native``) when its records are plain;
anything unusual is read by the Python path, with the same results and findings.

Image folder (``Dataset.root``): ``images_root`` when given; otherwise the first of the JSON's folder,
``<json folder>/images``, ``<json folder>/../images`` and ``<json folder>/../<split>`` (``val2017`` for
``instances_val2017.json``) that holds one of the first three ``file_name``\\ s; the JSON's folder when none does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core import boxes as B
from maslow.core.boxes import to_xywh
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import SOURCES, Annotations, Images
from maslow.core.types import FloatArray, IntArray, ObjArray
from maslow.errors import FormatError
from maslow.io._coco_columns import AnnColumns, int_field, obj_column, to_column, values
from maslow.io._coco_native import read_coco_native
from maslow.io._coco_obb import COLUMN as OBB_COLUMN
from maslow.io._coco_obb import column as obb_column
from maslow.io._coco_obb import fill_extent, read_oriented, with_corners
from maslow.io._coco_stream import duplicate_top_keys, no_gc, stream_coco
from maslow.io._coco_write import DEFAULT_HEAD, category_ids, image_ids, write, write_coco
from maslow.io._common import Collector, load_json, safe_relpath, unique_names
from maslow.io.images import image_info
from maslow.io.registry import warn_issues

#: A relative POSIX path that ``safe_relpath`` returns unchanged (no empty, "." or ".." parts, no drive).
__all__ = ["category_ids", "image_ids", "parse", "read_coco", "to_xywh", "write", "write_coco"]

_TABLES = ("images", "annotations", "categories")  # the top-level keys read into tables; the others go to ds.info
_SIMPLE_PATH = re.compile(r"[^./\\\x00:\s][^/\\\x00:]*(?:/[^./\\\x00:][^/\\\x00:]*)*(?<!\s)")



# -- reading -----------------------------------------------------------------------------------------
def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    chunk_bytes: int = 8 << 20,
    **options: Any,
) -> tuple[Dataset, Report]:
    """Read a COCO instances or keypoints file and report the technical problems found in it.

    Args:
        src: the JSON file.
        images_root: base folder of ``file_name`` (default: see the module docstring).
        strict: raise FormatError at the first error or warning instead of reporting it.
        chunk_bytes: size (bytes, >= 1) of the pieces the ``annotations`` array is parsed in (memory vs speed).

    Returns:
        The Dataset (annotations that can't be represented are left out, each with an ``error`` issue) and
        the Report of findings.

    Raises:
        FormatError: the file is not COCO JSON (malformed, wrong types in ``images`` or ``categories``, an
            image path escaping the root); ``chunk_bytes`` is not an integer >= 1.
    """
    if options:
        raise TypeError(f"coco.parse: unknown options {sorted(options)}")
    src = Path(src)
    if type(chunk_bytes) is not int or chunk_bytes < 1:
        raise FormatError(f"chunk_bytes must be an integer >= 1, got {chunk_bytes!r}", path=src, field="chunk_bytes")
    col = Collector(strict=strict)
    with no_gc():
        native = read_coco_native(src)  # the C parser, where built and the records are plain
        top: dict[str, Any] | None = None
        if native is not None:
            top, acc = native
        else:
            acc = AnnColumns()
            top = stream_coco(src, lambda items, first: _add(acc, items, first, src), chunk_bytes=chunk_bytes)
        if top is None:
            acc = AnnColumns()
            top = load_json(src)
            if not isinstance(top, dict):
                raise FormatError(f"must be a COCO object with images/annotations/categories, got a JSON "
                                  f"{type(top).__name__}", path=src)
            anns = top.pop("annotations", [])
            if not isinstance(anns, list):
                raise FormatError(f"must be a list, got {type(anns).__name__}", path=src, field="annotations")
            for s in range(0, len(anns), 20_000):
                _add(acc, anns[s:s + 20_000], s, src)
            del anns
        repeated = duplicate_top_keys(src)
        if repeated:
            (key, count), more = repeated[0], "".join(f", {k!r} {c} times" for k, c in repeated[1:])
            raise FormatError(f"the top-level key {key!r} appears {count} times{more}; JSON readers (pycocotools "
                              "too) keep only the last, so the others would be lost silently: merge them into one",
                              path=src, field=key)
        images, root = _images(top, src, images_root, col)
        classes, cat_ids, cat_own = _categories(top, src, col)
        ds = _assemble(acc, images, classes, cat_ids, root, src, col)
    # info, licenses, ...: given back by write_coco; not the placeholders it writes without them
    kept = {k: v for k, v in top.items() if k not in _TABLES and v != DEFAULT_HEAD.get(k, ...)}
    info: dict[str, Any] = {"coco": kept} if kept else {}
    if cat_own:  # LVIS's frequency, synset, image_count...: written back with their category
        info["coco_categories"] = cat_own
    return (ds.replace(info=info) if info else ds), col.report()


def read_coco(src: str | Path, **options: Any) -> Dataset:
    """Read a COCO instances or keypoints JSON file (a MaslowWarning summarises any issues found).

    Example:
        >>> from maslow.io import read_coco  # doctest: +SKIP
        >>> ds = read_coco("annotations/instances_val2017.json")  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), **options), source=src)


def _add(acc: AnnColumns, items: list[Any], first: int, src: Path) -> None:
    if set(map(type, items)) - {dict}:
        j = next(j for j, a in enumerate(items) if type(a) is not dict)
        raise FormatError(f"must be an object, got {type(items[j]).__name__}", path=src,
                          record=f"annotations[{first + j}]")
    acc.add(items, first)
    if "id" in items[0] or any("id" in a for a in items):  # an id present but not read: said why, per record
        ids = values(items, "id")
        for j in np.flatnonzero(~int_field(ids)[1]).tolist():
            if ids[j] is not None:  # absent or null: coco_missing_id, counted once
                acc.bad(first + j, "coco_bad_id", "id", _bad_id(ids[j]), severity="warning")


_ID_RANGE = "an integer in the int64 range (-2**63 to 2**63 - 1)"
_OUT = ", an integer out of that range"


def _integral(v: Any) -> bool:
    """An integer (JSON readers give one beyond 64 bits as a float), whatever its size."""
    return type(v) is int or (type(v) is float and v.is_integer())


def _id_error(v: Any, *, strings: bool = False) -> str:
    """Why an image or category id is refused: an integer beyond int64 (said so), else not an integer."""
    far = _integral(v) and not -(2**63) <= v < 2**63
    return (f"id must be {_ID_RANGE if far else 'an integer'}{' or a string' if strings else ''}, got {v!r}"
            f"{_OUT if far else ''}")


def _bad_id(v: Any) -> str:
    """Why an annotation ``id`` that is present is not read: out of the int64 range (the ids maslow keeps and COCO
    tools use), or not an integer (a new id is assigned on write either way)."""
    if _integral(v):
        return f"id must be {_ID_RANGE}, got {v!r}, out of that range (a new id is assigned on write)"
    text = repr(v)
    return f"id must be an integer, got {text if len(text) <= 60 else text[:57] + '...'} (a new id is assigned on write)"


def _list(top: dict[str, Any], key: str, src: Path) -> list[dict[str, Any]]:
    vals = top.get(key, [])
    if not isinstance(vals, list):
        raise FormatError(f"must be a list, got {type(vals).__name__}", path=src, field=key)
    for i, v in enumerate(vals):
        if type(v) is not dict:
            raise FormatError(f"must be an object, got {type(v).__name__}", path=src, record=f"{key}[{i}]")
    return vals


def _images(top: dict[str, Any], src: Path, images_root: Path | None, col: Collector) -> tuple[Images, Path]:
    imgs = _list(top, "images", src)
    m = len(imgs)
    raw_ids = [im.get("id") for im in imgs]
    int_ids, ok = int_field(raw_ids)
    ids: np.ndarray = int_ids if ok.all() else _string_ids(raw_ids, ok, src)
    if ids.dtype != object:
        negative_ids(ids, ok, "images", src, col)
    raw_names = [im.get("file_name") for im in imgs]
    for i, n in enumerate(raw_names):
        if type(n) is not str:
            raise FormatError(f"file_name must be a string, got {n!r}", path=src,
                              record=f"images[{i}] (id={id_text(ids[i])})", field="file_name")
    names: list[str] = raw_names  # type: ignore[assignment]  # checked above
    root = Path(images_root) if images_root is not None else _guess_root(src, names)
    simple = _SIMPLE_PATH.fullmatch
    paths: list[str] = [n if simple(n) else
             safe_relpath(n, root=root, file=src, record=f"images[{i}] (id={id_text(ids[i])})", field="file_name")
             for i, n in enumerate(names)]
    size = {}
    for key in ("width", "height"):
        vals, ok = int_field([0 if im.get(key) is None else im.get(key) for im in imgs])
        bad = np.flatnonzero(~ok | (vals < 0))
        if bad.size:
            i = int(bad[0])
            raise FormatError(f"{key} must be an integer >= 0, got {imgs[i].get(key)!r} ({bad.size} images)",
                              path=src, record=f"images[{i}] (id={id_text(ids[i])})", field=key)
        size[key] = vals
    for i in np.flatnonzero((size["width"] == 0) | (size["height"] == 0)).tolist():
        try:
            info = image_info(root / paths[i])
        except FormatError as e:  # missing or unreadable: the import checks report the file
            # an explicit 0 says "unknown" (maslow writes it so); a null or absent size is said to be left unknown
            unset = next((k for k in ("width", "height") if imgs[i].get(k) is None), None)
            if unset is not None:
                col.add("coco_unknown_size", f"{unset} must be an integer > 0 when the image file can't be read, "
                        f"got {imgs[i].get(unset)!r} ({e}); size unknown (0)", file=src,
                        record=f"images[{i}] (id={id_text(ids[i])})", field=unset, image=i)
            continue
        size["width"][i], size["height"][i] = info.width, info.height
    split = [im.get("split", "") for im in imgs]
    keys: set[str] = set().union(*imgs) if imgs else set()
    skip = {"id", "file_name", "width", "height"}
    if all(type(s) is str for s in split):
        skip.add("split")
    else:
        split = [""] * m
    extra: dict[str, np.ndarray] = {"coco_id": ids}
    for k in sorted(keys - skip):
        extra[k] = to_column([im.get(k) for im in imgs])
    return Images(path=obj_column(paths), width=size["width"], height=size["height"], split=obj_column(split),
                  extra=extra), root


def _string_ids(raw: list[Any], ok: np.ndarray, src: Path) -> ObjArray:
    """The image ids of a file whose ids are strings, as an object column; FormatError naming the first image whose
    id is neither an integer nor a string, or whose id's kind (integer or string) is not that of ``images[0]``."""
    is_str = np.fromiter((type(v) is str for v in raw), bool, len(raw))
    if is_str.all():
        return obj_column(raw)
    i = int(np.flatnonzero(~is_str if is_str[0] else ~ok)[0])
    if not (ok[i] or is_str[i]):
        raise FormatError(_id_error(raw[i], strings=True), path=src, record=f"images[{i}]", field="id")
    kind = "a string" if is_str[0] else "an integer"
    raise FormatError(f"id must be {kind} like images[0]'s ({raw[0]!r}; a file's image ids are all integers or all "
                      f"strings), got {raw[i]!r}", path=src, record=f"images[{i}]", field="id")


def negative_ids(ids: IntArray, ok: np.ndarray, table: str, src: Path, col: Collector) -> None:
    """One ``coco_negative_id`` warning for the negative ids of ``table`` (read, kept in ``coco_id``, but written
    anew: -1 marks a missing id in maslow's integer columns, so the writers keep ids >= 0 only)."""
    neg = (ids < 0) & ok
    if not neg.any():
        return
    i, k = int(np.flatnonzero(neg)[0]), int(neg.sum())
    col.add("coco_negative_id", f"id must be >= 0 for a written COCO file to keep it, got {ids[i]} ({k} {table}; "
            "-1 marks a missing id in maslow): written files give them new ids, so results naming these ids match "
            "only this file", severity="warning", file=src,
            record=f"{table}[{i}] (id={ids[i]})", field="id", image=i if table == "images" else None)


def id_text(v: Any) -> str:
    """An image id as messages show it: a string quoted, an integer as it is."""
    return repr(v) if isinstance(v, str) else str(v)


def _guess_root(src: Path, names: list[str]) -> Path:
    folder = src.parent
    candidates = [folder, folder / "images", folder.parent / "images"]
    if "_" in src.stem:
        candidates.append(folder.parent / src.stem.rsplit("_", 1)[-1])
    probe = [n for n in names[:3] if not Path(n).is_absolute()]
    for c in candidates:
        if any((c / n).is_file() for n in probe):
            return c
    return folder


#: the category keys the schema holds (ClassDef); the others (LVIS's frequency, synset, ...) go to info
_CATEGORY_KEYS = frozenset({"id", "name", "supercategory", "keypoints", "skeleton", "color"})


def _categories(top: dict[str, Any], src: Path, col: Collector
                ) -> tuple[list[ClassDef], IntArray, dict[str, dict[str, Any]]]:
    """The classes, their COCO ids, and each category's other keys by id (as a string: ``Dataset.info`` is JSON)."""
    cats = _list(top, "categories", src)
    classes: list[ClassDef] = []
    own: dict[str, dict[str, Any]] = {}
    seen_id: dict[int, int] = {}
    seen_name: set[str] = set()
    for i, c in enumerate(cats):
        rec = f"categories[{i}]"
        cid = c.get("id")
        if type(cid) is not int or not -(2**63) <= cid < 2**63:
            raise FormatError(_id_error(cid), path=src, record=rec, field="id")
        name = c.get("name")
        if type(name) is not str or not name:
            raise FormatError(f"name must be a non-empty string, got {name!r}", path=src, record=f"{rec} (id={cid})",
                              field="name")
        rec = f"{rec} (id={cid})"
        if cid in seen_id:
            col.add("coco_duplicate_category_id", f"category id must be unique, it repeats categories[{seen_id[cid]}]; "
                    "this category is ignored", severity="error", file=src, record=rec, field="id")
            continue
        seen_id[cid] = i
        if name in seen_name:
            col.add("coco_duplicate_category_name", f"category name must be unique, got {name!r} again; read as "
                    f"'{name} ({cid})'", severity="error", file=src, record=rec, field="name")
            name = f"{name} ({cid})"
        seen_name.add(name)
        kps = c.get("keypoints") or []
        if not (type(kps) is list and all(type(k) is str for k in kps)):
            col.add("coco_bad_keypoint_names", f"keypoints must be a list of names, got {kps!r}; ignored",
                    severity="error", file=src, record=rec, field="keypoints")
            kps = []
        repeated = [k for j, k in enumerate(kps) if k in kps[:j]]
        if repeated:  # the points are positional: renamed, none lost
            kps = unique_names(kps)
            col.add("coco_duplicate_keypoint_name", f"keypoint names must be unique, got {repeated[0]!r} again; "
                    f"read as {kps}", severity="warning", file=src, record=rec, field="keypoints")
        skel = c.get("skeleton") or []
        pairs: list[tuple[int, int]] = []
        if type(skel) is list and all(type(p) is list and len(p) == 2 and all(type(v) is int for v in p)
                                      for p in skel):
            pairs = [(p[0] - 1, p[1] - 1) for p in skel]
        if len(pairs) != len(skel) or any(not (0 <= a < len(kps) and 0 <= b < len(kps)) for a, b in pairs):
            col.add("coco_bad_skeleton", f"skeleton must be pairs of 1-based keypoint indexes (1..{len(kps)}), got "
                    f"{skel!r}; ignored", severity="error", file=src, record=rec, field="skeleton")
            pairs = []
        sup, color = c.get("supercategory"), c.get("color")
        classes.append(ClassDef(name=name, supercategory=sup if type(sup) is str else "", keypoints=tuple(kps),
                                skeleton=tuple(pairs), color=color if type(color) is str else "", id=cid))
        rest = {k: v for k, v in c.items() if k not in _CATEGORY_KEYS}
        if rest:
            own[str(cid)] = rest
    return classes, np.asarray([c.id for c in classes], np.int64), own


def _lookup(keys: IntArray, query: IntArray) -> IntArray:
    """Row of each query id in ``keys`` (first occurrence), -1 where absent."""
    if not len(keys):
        return np.full(len(query), -1, np.int64)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    first = np.concatenate([[True], sk[1:] != sk[:-1]])
    sk, rows = sk[first], order[first]
    pos = np.minimum(np.searchsorted(sk, query), len(sk) - 1)
    return np.where(sk[pos] == query, rows[pos], -1).astype(np.int64)


def _duplicates(ids: IntArray, valid: np.ndarray) -> IntArray:
    """Positions whose (valid) id already appeared earlier."""
    pos = np.flatnonzero(valid)
    if not pos.size:
        return pos
    order = np.argsort(ids[pos], kind="stable")
    s = ids[pos][order]
    rep = np.concatenate([[False], s[1:] == s[:-1]])
    return np.sort(pos[order][rep])


def _assemble(acc: AnnColumns, images: Images, classes: list[ClassDef], cat_ids: IntArray, root: Path, src: Path,
              col: Collector) -> Dataset:
    n = acc.n
    img_ids = images.extra["coco_id"]
    strings = img_ids.dtype == object  # string ids (see _string_ids)
    first_row: dict[Any, int] = {}
    if strings:
        for i, v in enumerate(img_ids.tolist()):
            first_row.setdefault(v, i)
        again = np.ones(len(images), bool)
        again[list(first_row.values())] = False
        repeated = np.flatnonzero(again)
    else:
        repeated = _duplicates(img_ids, np.ones(len(images), bool))
    for i in repeated.tolist():
        t = id_text(img_ids[i])
        col.add("coco_duplicate_image_id", f"image id must be unique, got {t} again; its annotations go to the "
                "first image with that id", severity="error", file=src, record=f"images[{i}] (id={t})",
                field="id", image=i)
    if n == 0:
        schema = LabelSchema(classes=tuple(classes), tasks=_tasks(classes, False))
        return Dataset(schema=schema, images=images, annotations=Annotations.empty(), root=root)
    ann_id, id_ok = acc.column("id"), acc.column("id_ok")
    image_id, image_ok = acc.column("image_id"), acc.column("image_id_ok")
    cat_id, cat_ok = acc.column("category_id"), acc.column("category_id_ok")
    image = acc.string_image_rows(first_row) if strings else np.where(image_ok, _lookup(img_ids, image_id), -1)
    label = np.where(cat_ok, _lookup(cat_ids, cat_id), -1)
    for name, ok, ids, row, table in (("image_id", image_ok, image_id, image, "images"),
                                      ("category_id", cat_ok, cat_id, label, "categories")):
        for r in np.flatnonzero(row < 0).tolist():
            text = acc.image_id_text(r) if table == "images" else None
            got = ids[r] if ok[r] else text or f"a missing or non-{'string' if strings else 'integer'} value"
            acc.bad(r, "coco_unknown_image" if table == "images" else "coco_unknown_category", name,
                    f"{name} must be the id of one of the file's {table}, got {got}; annotation not imported")
    for r in _duplicates(ann_id, id_ok).tolist():
        acc.bad(r, "coco_duplicate_annotation_id", "id", f"annotation id must be unique, got {ann_id[r]} again")
    keep = (image >= 0) & (label >= 0)
    box = _boxes(acc, images, image, keep, src, col)
    mask, rle_hw = acc.masks()
    if mask is not None:
        h, w = np.append(images.height, 0)[image], np.append(images.width, 0)[image]  # -1: no image, size 0
        has = rle_hw[:, 0] >= 0
        for r in np.flatnonzero(keep & has & ((rle_hw[:, 0] != h) | (rle_hw[:, 1] != w))).tolist():
            acc.bad(r, "coco_rle_size_mismatch", "segmentation", f"RLE size must be the image size [{h[r]}, {w[r]}] "
                    f"(height, width), got {rle_hw[r].tolist()}")
    kp, k_of = acc.keypoints()
    if kp is not None:
        k_cls = np.asarray([len(c.keypoints) for c in classes] + [0], np.int64)[label]
        wrong = keep & (k_of > 0) & (k_of != k_cls)
        for r in np.flatnonzero(wrong).tolist():
            acc.bad(r, "coco_bad_keypoints", "keypoints", f"keypoints must hold 3*K = {3 * k_cls[r]} numbers for "
                    f"the category's {k_cls[r]} keypoints, got {3 * k_of[r]}; keypoints not imported")
        kp[wrong] = np.nan
    extras = acc.extras()
    polygon = acc.polygons()
    shaped = ~polygon.null | (rle_hw[:, 0] >= 0)  # a segmentation: its shape, whatever obb it has besides
    found = read_oriented(extras, shaped, src, lambda r: _record(r, ann_id, id_ok), col)
    area = acc.column("area")
    missing_area = keep & np.isnan(area)
    if found is not None:  # hotcoco takes w * h for an obb without area
        missing_area[found.rows] = False
    if missing_area.any():
        first = int(np.flatnonzero(missing_area)[0])
        col.add("coco_missing_area", f"area must be given for every annotation (COCO evaluation uses it), "
                f"{int(missing_area.sum())} annotations have none", severity="warning", file=src,
                record=_record(first, ann_id, id_ok), field="area")
    negative_ids(ann_id, id_ok, "annotations", src, col)
    missing_id = ~id_ok  # absent or null; an id present but not read is a coco_bad_id of its own
    missing_id[[f.record for f in acc.findings if f.type == "coco_bad_id"]] = False
    if missing_id.any():
        first = int(np.flatnonzero(missing_id)[0])
        col.add("coco_missing_id", f"id must be an integer for every annotation, {int(missing_id.sum())} annotations "
                "have none (new ids are assigned on write)", severity="warning", file=src,
                record=_record(first, ann_id, id_ok), field="id")
    annotator = extras.pop("\0annotator", None)
    source = extras.pop("\0source", None)
    if source is not None:
        source = source.astype(object)
        bad_src = np.flatnonzero([s is not None and s not in SOURCES for s in source.tolist()])
        for r in bad_src.tolist():
            acc.bad(r, "coco_bad_source", "source", f"source must be one of {SOURCES}, got {source[r]!r}; read as "
                    "'human'", severity="warning")
        source = obj_column([s if s in SOURCES else "human" for s in source.tolist()])
    box_read = box
    if found is not None:
        box, polygon = fill_extent(box, found), with_corners(polygon, found.rows, found.corners)
        extras[OBB_COLUMN] = obb_column(n, found)
    has_poly = bool((~polygon.null).any())
    score = acc.column("score") if "score" in acc.keys else None
    attrs = acc.attributes()
    sel = np.flatnonzero(keep)
    every = len(sel) == n  # the usual case: the columns as they are, no copies

    def kept(a: Any) -> Any:
        return a if every or a is None else a[sel]

    read_xywh = kept(acc.column("bbox"))  # kept (extra) only where x2 - x1 would not give w back exactly
    keep_xywh = inexact_xywh(read_xywh, kept(box_read))  # (not the extents of oriented boxes without a bbox)
    box = kept(box)
    ann = Annotations.sort_rows(
        image=kept(image), label=kept(label), box=box, score=kept(score), mask=kept(mask),
        polygon=kept(polygon) if has_poly else None, keypoints=kept(kp), iscrowd=kept(acc.column("iscrowd")),
        attributes={k: kept(v) for k, v in attrs.items()},
        annotator=None if annotator is None else kept(annotator.astype(object)), source=kept(source),
        extra={"coco_id": kept(ann_id), "area": kept(area), **{k: kept(v) for k, v in extras.items()},
               **({B.COCO_BBOX: read_xywh} if keep_xywh else {})},
    )
    _emit(acc, ann_id, id_ok, image, sel, src, col)
    attr_defs = tuple(AttributeDef(k, type=_attr_type(v)) for k, v in attrs.items())
    tasks = _tasks(classes, has_poly or mask is not None, keypoints=kp is not None,
                   oriented=found is not None and not shaped.any())
    schema = LabelSchema(classes=tuple(classes), tasks=tasks, attributes=attr_defs)
    return Dataset(schema=schema, images=images, annotations=ann, root=root)


def _boxes(acc: AnnColumns, images: Images, image: IntArray, keep: np.ndarray, src: Path,
           col: Collector) -> FloatArray:
    """The boxes as xyxy (NaN rows where invalid, each reported), and the check for boxes written as xyxy."""
    xywh = acc.column("bbox")
    n = len(xywh)
    if bool(np.isfinite(xywh).all()):  # the usual case, in one pass: every record has a finite box
        finite = np.ones(n, bool)
    else:
        finite = np.isfinite(xywh).all(1)
        for r in np.flatnonzero(acc.column("bbox_ok") & ~finite).tolist():
            acc.bad(r, "coco_bad_bbox", "bbox", f"bbox must be finite numbers, got {xywh[r].tolist()}")
    with np.errstate(invalid="ignore"):
        some_neg = n and not (xywh[:, 2].min() >= 0 and xywh[:, 3].min() >= 0)  # a NaN min: look too
        neg = finite & ((xywh[:, 2] < 0) | (xywh[:, 3] < 0)) if some_neg else np.zeros(n, bool)
    for r in np.flatnonzero(neg).tolist():
        acc.bad(r, "coco_negative_box_size", "bbox", f"bbox width and height must be >= 0, got {xywh[r].tolist()}; "
                "box not imported")
    valid = finite & ~neg
    if not valid.all():
        xywh = np.where(valid[:, None], xywh, np.nan)
    out = xywh.copy()  # xywh -> xyxy: the sums of boxes.xywh_to_xyxy, in place
    with np.errstate(over="ignore"):
        np.add(out[:, 0], out[:, 2], out=out[:, 2])
        np.add(out[:, 1], out[:, 3], out=out[:, 3])
    row = image  # -1 (no image) reads the size 0 appended to the tables: unknown
    w_tab, h_tab = np.append(images.width, 0).astype(np.float64), np.append(images.height, 0).astype(np.float64)
    with np.errstate(invalid="ignore"):  # ends beyond the image (NaN rows compare False), then the other tests
        cand = np.flatnonzero((out[:, 2] > (w_tab + 1)[row]) | (out[:, 3] > (h_tab + 1)[row]))
        c_w, c_h, c = w_tab[row[cand]], h_tab[row[cand]], xywh[cand]
        like = cand[keep[cand] & (c_w > 0) & (c_h > 0) & (c[:, 2] <= c_w) & (c[:, 3] <= c_h) & (c[:, 2] > c[:, 0])
                    & (c[:, 3] > c[:, 1])]
    if len(like) >= 2:
        n_known = int((keep & valid & (w_tab[row] > 0) & (h_tab[row] > 0)).sum())
        looks_xyxy(acc, images, image, len(like), n_known, int(like[0]), src, col)
    if bool(np.isinf(out).any()):  # x + width beyond the largest float
        for r in np.flatnonzero(np.isinf(out).any(1)).tolist():
            acc.bad(r, "coco_bad_bbox", "bbox", f"bbox must be finite numbers, got {xywh[r].tolist()} (x + width or "
                    "y + height overflows)")
            out[r] = np.nan
    return out


def looks_xyxy(acc: AnnColumns, images: Images, image: IntArray, n_like: int, n_known: int, r: int, src: Path,
               col: Collector) -> None:
    """Report ``n_like`` (>= 2; one box is left to check_boxes) of ``n_known`` boxes that end beyond their image
    while their width and height fit, the first at record ``r``: an error when 3 and 10% of them look so."""
    i = int(image[r])
    col.add("coco_bbox_looks_xyxy",
            f"bbox must be [x, y, width, height]: {n_like} of {n_known} boxes end beyond their image while their "
            f"width and height fit, as if written [x1, y1, x2, y2]; first: {acc.column('bbox')[r].tolist()} in a "
            f"{int(images.width[i])}x{int(images.height[i])} image. Convert the boxes to xywh",
            severity="error" if n_like >= max(3, 0.1 * n_known) else "warning", file=src,
            record=_record(r, acc.column("id"), acc.column("id_ok")) if "id" in acc.keys else f"annotations[{r}]",
            field="bbox", image=i)  # no id key: no id (the column would be made for nothing)


def inexact_xywh(xywh: FloatArray, box: FloatArray) -> bool:
    """``boxes.inexact_xywh``, answered from the first rows when they already say True (decimal boxes, the usual
    case): its test is row by row, so a True on some rows is the answer for all of them."""
    head = min(len(xywh), 1024)
    return B.inexact_xywh(xywh[:head], box[:head]) or B.inexact_xywh(xywh, box)


def _record(r: int, ids: IntArray, ok: np.ndarray) -> str:
    return f"annotations[{r}] (id={ids[r]})" if ok[r] else f"annotations[{r}]"


def _emit(acc: AnnColumns, ids: IntArray, ok: np.ndarray, image: IntArray, sel: IntArray, src: Path,
          col: Collector) -> None:
    """Report the per-record findings in file order, with image and annotation rows where kept."""
    if not acc.findings:
        return
    img_sel = image[sel]
    order = np.argsort(img_sel, kind="stable")
    row_of = np.full(acc.n, -1, np.int64)
    row_of[sel[order]] = np.arange(len(sel))
    for f in sorted(acc.findings, key=lambda f: f.record):
        row, img = int(row_of[f.record]), int(image[f.record])
        col.add(f.type, f.message, severity=f.severity, file=src, record=_record(f.record, ids, ok), field=f.field,
                image=img if img >= 0 else None, annotation=row if row >= 0 else None)


def _tasks(classes: list[ClassDef], segmentation: bool, *, keypoints: bool = False,
           oriented: bool = False) -> tuple[Task, ...]:
    """``oriented``: the polygons are all oriented boxes (detection first, then instance segmentation, as YOLO OBB)."""
    tasks = []
    if keypoints or any(c.keypoints for c in classes):
        tasks.append(Task.KEYPOINTS)
    if oriented:
        return (*tasks, Task.DETECTION, Task.INSTANCE_SEGMENTATION)
    if segmentation:
        tasks.append(Task.INSTANCE_SEGMENTATION)
    return (*tasks, Task.DETECTION)


def _attr_type(col: ObjArray) -> str:
    types = {type(v) for v in col.tolist() if v is not None}
    if types == {bool}:
        return "bool"
    if types and types <= {int, float}:
        return "number"
    return "text"

