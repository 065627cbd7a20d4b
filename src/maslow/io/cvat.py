"""CVAT for images 1.1 XML: read and write.

Glossary of the format (as CVAT 2.x dumps it):

- The file is ``annotations.xml``: ``<annotations>``, ``<version>1.1</version>``, a ``<meta>`` holding a
  ``<task>``, ``<project>`` or ``<job>`` with ``<labels>``, then one ``<image id name width height [subset]>``
  per image. ``name`` is the image path; ``subset`` (project exports) becomes ``images.split``. Segments
  (``<segments>``) are CVAT jobs, not splits, and are ignored.
- Shapes are children of ``<image>``: ``<box xtl ytl xbr ybr [rotation]>`` (absolute pixel corners, the same xyxy
  convention as maslow), ``<polygon points="x,y;x,y;...">``, ``<polyline>`` and ``<points>`` (same point list),
  ``<mask rle left top width height>`` and ``<tag>`` (an image-level label, no geometry).
- Mask RLE (CVAT 2.x): ``rle`` is a comma-separated list of run lengths that alternate background/foreground,
  starting with background, over the ``width`` x ``height`` crop at ``(left, top)``, read row by row
  (C order). It is decoded here into a full-image COCO RLE.
- Every shape has ``label``, ``occluded`` (0/1), ``z_order``, ``source`` (``manual``, ``semi-auto``, ``auto``,
  ``file``...) and optionally ``group_id``; ``<attribute name="...">value</attribute>`` children hold attributes.
- Label specs: ``<label><name><color><type><attributes><attribute><name><input_type><default_value><values>``;
  ``values`` is newline-separated; ``input_type`` checkbox -> bool, select/radio -> enum, number -> number
  (values ``min\\nmax\\nstep``, kept as ``AttributeDef.values``), text -> text. A ``<label>`` with a ``<parent>``
  is a point of that skeleton label: its name is one of the skeleton class's keypoint names, not a class.

Mapping to maslow: ``occluded`` -> the bool attribute ``occluded``; ``source`` manual/semi-auto/file -> ``human``,
auto -> ``model`` (the CVAT value is kept in ``annotations.extra["cvat_source"]``); ``group_id``, ``z_order`` and a
box ``rotation`` are kept in ``annotations.extra`` (``cvat_group_id``, ``cvat_z_order``, ``cvat_rotation``; maslow
boxes are axis-aligned, so a rotated box is reported). Polygons, polylines and masks also get their bounding box
in ``box``; polylines are stored as polygons with ``extra["cvat_shape"] == "polyline"``. A ``<points>`` shape is
one keypoint set (K = its number of points, v = 2, or v = 1 when the shape is occluded); a ``<points>`` shape that
shares label and ``group_id`` with exactly one other shape of the image becomes that shape's keypoints. Polygons
that share label and ``group_id`` are the parts of one object: they become one annotation with several polygons
(and a multi-part polygon is written that way).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
from defusedxml import ElementTree as SafeET

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io._common import Collector, safe_relpath
from maslow.io._cvat_write import _KNOWN_EXTRA, _SOURCE_IN, write
from maslow.io.images import image_info
from maslow.io.registry import warn_issues

_INPUT_TYPE = {"checkbox": "bool", "select": "enum", "radio": "enum", "number": "number", "text": "text"}
_LABEL_TYPE_IN = {"rectangle": "box", "polygon": "polygon", "polyline": "polygon", "points": "keypoints",
                  "mask": "mask", "tag": "tag"}
_SHAPES = ("box", "polygon", "polyline", "points", "mask", "tag")


# -- reading ---------------------------------------------------------------------------------------------------
def _load(src: Path) -> Any:
    try:
        return SafeET.parse(str(src)).getroot()
    except FileNotFoundError:
        raise FormatError("file not found", path=src) from None
    except IsADirectoryError:
        raise FormatError("must be an XML file, got a directory", path=src) from None
    except ET.ParseError as e:
        line, col = e.position
        raise FormatError(f"malformed XML at line {line} column {col}: {e}", path=src) from None
    except (ValueError, SafeET.ParseError) as e:  # defusedxml: entities, DTDs, external references
        raise FormatError(f"refused XML: {type(e).__name__}: {e}", path=src) from None


def _text(el: Any, tag: str) -> str:
    child = el.find(tag)
    return "" if child is None or child.text is None else child.text.strip()


def _unpad(text: str) -> str:
    """Element text as written: surrounding spaces are kept (a class ``"pad "``), whitespace holding a line break
    (pretty-printing) is not."""
    pad = text[: len(text) - len(text.lstrip())] + text[len(text.rstrip()):]
    return text.strip() if "\n" in pad or not text.strip() else text


def _read_meta(meta: Any) -> tuple[list[ClassDef], list[AttributeDef], dict[str, set[str]]]:
    """Classes, attribute specs (merged by name) and the attribute names each label declares."""
    classes: list[ClassDef] = []
    specs: dict[str, AttributeDef] = {}
    declared: dict[str, set[str]] = {}
    labels = None if meta is None else next(
        (lab for holder in meta for lab in holder.findall("labels")), None)
    if labels is None:
        return classes, [], declared
    points_of: dict[str, list[str]] = {}
    for lab in labels.findall("label"):
        name = _unpad(_text(lab, "name") and lab.find("name").text)  # shapes name it unstripped
        if _text(lab, "parent"):  # a point of a skeleton label: its keypoint name, not a class
            points_of.setdefault(_unpad(lab.find("parent").text), []).append(name)
            continue
        if not name or name in declared:
            continue
        ltype = _LABEL_TYPE_IN.get(_text(lab, "type"))
        classes.append(ClassDef(name=name, color=_text(lab, "color"), label_types=(ltype,) if ltype else ()))
        declared[name] = set()
        for a in lab.findall("attributes/attribute"):
            aname = _text(a, "name")
            if not aname:
                continue
            declared[name].add(aname)
            atype = _INPUT_TYPE.get(_text(a, "input_type"), "text")
            vals = tuple(v.strip() for v in _text(a, "values").split("\n") if v.strip())
            vals = vals if atype in ("enum", "number") else ()
            raw_default = _text(a, "default_value")
            default: Any = (raw_default.lower() == "true") if atype == "bool" else (raw_default or None)
            old = specs.get(aname)
            if old is None:
                specs[aname] = AttributeDef(aname, type=atype, values=vals, classes=(name,), default=default)
            else:
                merged = old.values + tuple(v for v in vals if v not in old.values)
                specs[aname] = AttributeDef(aname, type=old.type, values=merged, classes=(*old.classes, name),
                                            default=old.default)
    classes = [replace(c, keypoints=tuple(points_of[c.name])) if c.name in points_of else c for c in classes]
    n_classes = len(classes)
    out = [AttributeDef(a.name, a.type, a.values, classes=() if len(a.classes) == n_classes else a.classes,
                        default=a.default) for a in specs.values()]
    return classes, out, declared


@dataclass
class _Shape:
    kind: str
    label: str
    box: list[float]
    polygon: list[np.ndarray] | None = None
    mask: dict[str, Any] | None = None
    keypoints: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class _Reader:
    def __init__(self, src: Path, root: Path, col: Collector) -> None:
        self.src, self.root, self.col = src, root, col

    def num(self, el: Any, name: str, record: str) -> float:
        raw = el.get(name)
        if raw is None:
            raise FormatError(f"<{el.tag}> must have attribute {name!r}", path=self.src, record=record, field=name)
        try:
            v = float(raw)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            raise FormatError(f"<{el.tag}> {name} must be a finite number, got {raw!r}", path=self.src,
                              record=record, field=name)
        return v

    def size(self, el: Any, name: str, record: str) -> int:
        v = self.num(el, name, record)
        if v < 0 or not v.is_integer():
            raise FormatError(f"<{el.tag}> {name} must be an integer >= 0, got {el.get(name)!r}", path=self.src,
                              record=record, field=name)
        return int(v)

    def points(self, el: Any, record: str) -> np.ndarray:
        raw = el.get("points")
        if raw is None:
            raise FormatError(f"<{el.tag}> must have attribute 'points'", path=self.src, record=record,
                              field="points")
        try:
            pts = [tuple(float(c) for c in pair.split(",")) for pair in raw.strip().split(";") if pair.strip()]
            flat = np.asarray(pts, np.float64)
            ok = flat.ndim == 2 and flat.shape[1] == 2 and bool(np.isfinite(flat).all())
        except ValueError:
            ok = False
        if not ok:
            raise FormatError(f"<{el.tag}> points must be 'x,y;x,y;...' numbers, got {raw[:60]!r}",
                              path=self.src, record=record, field="points")
        return flat.reshape(-1)

    def mask(self, el: Any, record: str, h: int, w: int) -> dict[str, Any] | None:
        raw = el.get("rle", "")
        try:
            counts = np.asarray([int(c) for c in raw.replace(" ", "").split(",") if c], np.int64)
        except ValueError:
            raise FormatError(f"<mask> rle must be comma-separated integers, got {raw[:60]!r}", path=self.src,
                              record=record, field="rle") from None
        left, top = int(self.num(el, "left", record)), int(self.num(el, "top", record))
        mw, mh = int(self.num(el, "width", record)), int(self.num(el, "height", record))
        if counts.size == 0 or counts.min() < 0 or int(counts.sum()) != mw * mh or mw <= 0 or mh <= 0:
            self.col.add("malformed_mask", f"<mask> rle runs must sum to width*height = {mw}x{mh}, got "
                         f"{int(counts.sum())}; the mask was not imported", severity="error", file=self.src,
                         record=record, field="rle")
            return None
        if h <= 0 or w <= 0:
            self.col.add("unknown_size", "<mask> needs the image size to build a full-image mask; the mask was "
                         "not imported", severity="error", file=self.src, record=record, field="rle")
            return None
        crop = np.repeat(np.arange(counts.size) % 2 == 1, counts).reshape(mh, mw)
        full = np.zeros((h, w), bool)
        y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + mh, h), min(left + mw, w)
        if y1 > y0 and x1 > x0:
            full[y0:y1, x0:x1] = crop[y0 - top:y1 - top, x0 - left:x1 - left]
        if crop.sum() != full.sum():
            self.col.add("mask_out_of_bounds", f"<mask> extends past the {w}x{h} image; cropped to it",
                         file=self.src, record=record, field="left")
        return M.encode(full)

    def shape(self, el: Any, k: int, record: str, h: int, w: int,
              specs: dict[str, AttributeDef], declared: dict[str, set[str]]) -> _Shape | None:
        rec = f"{record} <{el.tag}> #{k}"
        label = el.get("label")
        if not label:
            raise FormatError(f"<{el.tag}> must have a label", path=self.src, record=rec, field="label")
        nan4 = [math.nan] * 4
        s = _Shape(el.tag, label, nan4)
        if el.tag == "box":
            x1, y1, x2, y2 = (self.num(el, c, rec) for c in ("xtl", "ytl", "xbr", "ybr"))
            if x2 < x1 or y2 < y1:
                self.col.add("invalid_box", f"<box> must have xbr >= xtl and ybr >= ytl, got "
                             f"{[x1, y1, x2, y2]}; stored with corners swapped", severity="error",
                             file=self.src, record=rec, field="xbr" if x2 < x1 else "ybr")
            s.box = [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
            rot = float(el.get("rotation", 0) or 0)
            if rot:
                s.extra["cvat_rotation"] = rot
                self.col.add("rotated_box", f"<box> has rotation {rot}; maslow boxes are axis-aligned, the "
                             "unrotated box was imported (rotation kept in extra['cvat_rotation'])",
                             file=self.src, record=rec, field="rotation")
        elif el.tag in ("polygon", "polyline"):
            flat = self.points(el, rec)
            need = 3 if el.tag == "polygon" else 2
            if flat.size < 2 * need:
                self.col.add("degenerate_polygon", f"<{el.tag}> must have at least {need} points, got "
                             f"{flat.size // 2}", severity="error", file=self.src, record=rec, field="points")
            s.polygon = [flat]
            s.box = M.polygon_box([flat.tolist()]).tolist()
            if el.tag == "polyline":
                s.extra["cvat_shape"] = "polyline"
        elif el.tag == "points":
            xy = self.points(el, rec).reshape(-1, 2)
            v = 1.0 if el.get("occluded") == "1" else 2.0
            s.keypoints = np.concatenate([xy, np.full((len(xy), 1), v)], 1)
        elif el.tag == "mask":
            s.mask = self.mask(el, rec, h, w)
            if s.mask is None:
                return None
            s.box = M.to_box([s.mask])[0].tolist()
        if el.tag != "tag":
            s.attrs["occluded"] = el.get("occluded", "0") == "1"
            s.extra["cvat_z_order"] = int(self.num(el, "z_order", rec)) if el.get("z_order") else 0
        s.extra["cvat_group_id"] = int(self.num(el, "group_id", rec)) if el.get("group_id") else 0
        s.extra["cvat_source"] = el.get("source", "manual")
        for a in el.findall("attribute"):
            self.attribute(a, s, rec, specs, declared)
        return s

    def attribute(self, a: Any, s: _Shape, rec: str, specs: dict[str, AttributeDef],
                  declared: dict[str, set[str]]) -> None:
        name, text = a.get("name"), (a.text or "").strip()
        if not name:
            raise FormatError("<attribute> must have a name", path=self.src, record=rec, field="attribute")
        spec = specs.get(name)
        if spec is None or (s.label in declared and name not in declared[s.label]):
            self.col.add("undeclared_attribute", f"attribute {name!r} is not declared for label {s.label!r} in "
                         "<meta>; imported as text", file=self.src, record=rec, field=name)
            if spec is None:
                specs[name] = spec = AttributeDef(name, type="text")
        value: Any = _unpad(a.text or "") if spec.type == "text" else text
        bad = False
        if spec.type == "bool":
            bad = text.lower() not in ("true", "false", "1", "0")
            value = text if bad else text.lower() in ("true", "1")
        elif spec.type == "number":
            try:
                value = float(text)
            except ValueError:
                bad = True
        elif spec.type == "enum" and spec.values:
            bad = text not in spec.values
        if bad:
            self.col.add("attribute_value", f"attribute {name!r} ({spec.type}) must be one of "
                         f"{list(spec.values) if spec.values else spec.type}, got {text!r}; kept as text",
                         severity="error", file=self.src, record=rec, field=name)
        s.attrs[name] = value


def _merge_parts(shapes: list[_Shape]) -> list[_Shape]:
    """Join <polygon> shapes sharing label and group_id into one multi-part polygon (one object, as written)."""
    out: list[_Shape] = []
    first: dict[tuple[str, int], _Shape] = {}
    for s in shapes:
        g = int(s.extra.get("cvat_group_id", 0) or 0)
        key = (s.label, g)
        if s.kind != "polygon" or not g or s.polygon is None:
            out.append(s)
        elif key in first:
            head = first[key]
            assert head.polygon is not None
            head.polygon = [*head.polygon, *s.polygon]
            head.box = [min(head.box[0], s.box[0]), min(head.box[1], s.box[1]),
                        max(head.box[2], s.box[2]), max(head.box[3], s.box[3])]
        else:
            first[key] = s
            out.append(s)
    return out


def _merge_points(shapes: list[_Shape]) -> list[_Shape]:
    """Attach a <points> shape to the one other shape sharing its label and group_id."""
    out = list(shapes)
    for p in shapes:
        g = p.extra.get("cvat_group_id", 0)
        if p.kind != "points" or not g:
            continue
        mates = [s for s in out if s is not p and s.kind not in ("points", "tag") and s.label == p.label
                 and s.extra.get("cvat_group_id") == g]
        if len(mates) == 1 and mates[0].keypoints is None:
            mates[0].keypoints = p.keypoints
            out.remove(p)
    return out


def parse(src: Path, *, images_root: Path | None = None, strict: bool = False) -> tuple[Dataset, Report]:
    """Read a CVAT for images 1.1 XML file.

    Args:
        src: the ``annotations.xml`` file.
        images_root: base folder of the images; default ``src.parent / "images"`` when it exists (CVAT's
            dataset export layout), else ``src.parent``.
        strict: raise FormatError on the first error or warning instead of reporting it.

    Returns:
        The Dataset and the Report of import findings (unknown labels, attribute values outside the declared
        values, degenerate polygons, swapped box corners, rotated boxes, duplicate image ids/names, ...).

    Raises:
        FormatError: malformed XML, a missing or non-numeric coordinate (names the image and the attribute).
    """
    src = Path(src)
    col = Collector(strict=strict)
    top = _load(src)
    if top.tag != "annotations":
        raise FormatError(f"root element must be <annotations>, got <{top.tag}>", path=src, record="root")
    root = Path(images_root) if images_root is not None else (
        src.parent / "images" if (src.parent / "images").is_dir() else src.parent)
    classes, attr_list, declared = _read_meta(top.find("meta"))
    specs = {a.name: a for a in attr_list}
    reader = _Reader(src, root, col)
    paths, widths, heights, splits, ids = [], [], [], [], []
    per_image: list[list[_Shape]] = []
    seen_id: dict[int, int] = {}
    seen_name: dict[str, int] = {}
    for t, track in enumerate(top.findall("track")):
        col.add("unsupported_shape", f"<track> (CVAT for video) is not supported; track {track.get('id')} with "
                f"{len(track)} shapes was not imported", severity="error", file=src, record=f"track #{t}")
    for i, el in enumerate(top.findall("image")):
        name, raw_id = el.get("name"), el.get("id", str(i))
        record = f"image id={raw_id} name={name!r}"
        if not name:
            raise FormatError("<image> must have a name", path=src, record=f"image #{i} (id={raw_id})", field="name")
        try:
            img_id = int(raw_id)
        except ValueError:
            raise FormatError(f"<image> id must be an integer, got {raw_id!r}", path=src, record=record,
                              field="id") from None
        path = safe_relpath(name, root=root, file=src, record=record, field="name")
        if img_id in seen_id:
            col.add("duplicate_id", f"image id {img_id} repeats image #{seen_id[img_id]}", severity="error",
                    file=src, record=record, field="id", image=i)
        if path in seen_name:
            col.add("duplicate_image", f"image name {path!r} repeats image #{seen_name[path]}", severity="error",
                    file=src, record=record, field="name", image=i)
        seen_id.setdefault(img_id, i)
        seen_name.setdefault(path, i)
        if el.get("width") is not None and el.get("height") is not None:
            w, h = (reader.size(el, k, record) for k in ("width", "height"))
        else:
            try:
                info = image_info(root / path)
                w, h = info.width, info.height
            except FormatError:
                w, h = 0, 0
        paths.append(path)
        widths.append(w)
        heights.append(h)
        splits.append(el.get("subset", ""))
        ids.append(img_id)
        shapes = []
        for k, child in enumerate(c for c in el if c.tag != "attribute"):
            if child.tag not in _SHAPES:
                col.add("unsupported_shape", f"<{child.tag}> is not supported; it was not imported",
                        severity="error", file=src, record=f"{record} <{child.tag}> #{k}", image=i)
                continue
            s = reader.shape(child, k, record, h, w, specs, declared)
            if s is not None:
                shapes.append(s)
        per_image.append(_merge_points(_merge_parts(shapes)))
    return _build(src, classes, specs, per_image, col, root,
                  Images(path=obj_array(paths), width=np.asarray(widths, np.int64),
                         height=np.asarray(heights, np.int64), split=obj_array(splits),
                         extra={"cvat_id": np.asarray(ids, np.int64)}))


def _build(src: Path, classes: list[ClassDef], specs: dict[str, AttributeDef], per_image: list[list[_Shape]],
           col: Collector, root: Path, images: Images) -> tuple[Dataset, Report]:
    names = {c.name: i for i, c in enumerate(classes)}
    rows = [(i, s) for i, shapes in enumerate(per_image) for s in shapes]
    for r, (i, s) in enumerate(rows):
        if s.label not in names:
            col.add("unknown_label", f"label {s.label!r} is not declared in <meta><labels>; added to the schema",
                    severity="error", file=src, record=f"image id={images.extra['cvat_id'][i]} <{s.kind}>",
                    field="label", image=i, annotation=r)
            names[s.label] = len(classes)
            classes.append(ClassDef(s.label))
    n = len(rows)
    k = max((s.keypoints.shape[0] for _, s in rows if s.keypoints is not None), default=0)
    kps = np.full((n, k, 3), np.nan)
    for r, (_, s) in enumerate(rows):
        if s.keypoints is not None:
            kps[r] = 0.0
            kps[r, : len(s.keypoints)] = s.keypoints
    attr_names = list(specs)
    if any(s.kind != "tag" for _, s in rows) and "occluded" not in specs:
        specs["occluded"] = AttributeDef("occluded", type="bool")
        attr_names.append("occluded")
    kinds = {s.kind for _, s in rows}
    tasks = [t for t, ks in ((Task.INSTANCE_SEGMENTATION, {"polygon", "polyline", "mask"}),
                             (Task.DETECTION, {"box", "polygon", "polyline", "mask"}), (Task.KEYPOINTS, {"points"}))
             if kinds & ks or (t is Task.KEYPOINTS and k)]
    if "tag" in kinds:
        n_tags = Counter(i for i, s in rows if s.kind == "tag")
        tasks.append(Task.MULTILABEL if max(n_tags.values()) > 1 else Task.CLASSIFICATION)
    extra_names = [e for e in _KNOWN_EXTRA if any(e in s.extra for _, s in rows)]
    defaults: dict[str, Any] = {"cvat_shape": "", "cvat_rotation": 0.0, "cvat_z_order": 0, "cvat_group_id": 0}
    ann = Annotations(
        image=np.asarray([i for i, _ in rows], np.int64),
        label=np.asarray([names[s.label] for _, s in rows], np.int64),
        box=np.asarray([s.box for _, s in rows], np.float64).reshape(n, 4),
        polygon=Polygons.from_rows([s.polygon for _, s in rows]) if any(s.polygon for _, s in rows) else None,
        mask=obj_array([s.mask for _, s in rows]) if any(s.mask is not None for _, s in rows) else None,
        keypoints=kps if k else None,
        attributes={a: obj_array([s.attrs.get(a) for _, s in rows]) for a in attr_names},
        source=obj_array([_SOURCE_IN.get(str(s.extra["cvat_source"]), "human") for _, s in rows]),
        extra={e: np.asarray([s.extra.get(e, defaults.get(e)) for _, s in rows],
                             dtype=np.float64 if e == "cvat_rotation" else (np.int64 if e in (
                                 "cvat_group_id", "cvat_z_order") else object)) for e in extra_names},
    )
    schema = LabelSchema(classes=tuple(classes), tasks=tuple(tasks) or (Task.DETECTION,),
                         attributes=tuple(specs[a] for a in attr_names))
    return Dataset(schema=schema, images=images, annotations=ann, root=root), col.report()


def read_cvat(src: str | Path, **options: Any) -> Dataset:
    """Read a CVAT for images 1.1 XML file (see ``parse``); a MaslowWarning summarises import findings."""
    return warn_issues(*parse(Path(src), **options), source=src)



write_cvat = write

__all__ = ["parse", "read_cvat", "write", "write_cvat"]
