"""CVAT XML: reading one shape element (see ``maslow.io.cvat`` for the format's glossary)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core import masks as M
from maslow.core.schema import AttributeDef
from maslow.errors import FormatError
from maslow.io._common import Collector

#: Vertices of the polygon an ``<ellipse>`` is stored as (area within 0.2% of the ellipse's).
ELLIPSE_VERTICES = 64
#: ``<cuboid>`` corner attributes, in CVAT's order: front face (1) then back face (2).
CUBOID_ATTRS = tuple(f"{a}{c}{k}" for k in "12" for c in ("tl", "bl", "tr", "br") for a in "xy")
_INTEGER = re.compile(r"[+-]?[0-9]+")
SHAPES = ("box", "polygon", "polyline", "points", "mask", "tag", "ellipse", "cuboid", "skeleton")


def ellipse_polygon(cx: float, cy: float, rx: float, ry: float, rotation: float) -> np.ndarray:
    """The ellipse's outline as a flat polygon, starting at the end of the ``rx`` axis; ``rotation`` is CVAT's
    (degrees, clockwise on screen: ``x' = cx + cos*dx - sin*dy, y' = cy + sin*dx + cos*dy``)."""
    t = np.arange(ELLIPSE_VERTICES) * (2 * math.pi / ELLIPSE_VERTICES)
    a = math.radians(rotation)
    dx, dy = rx * np.cos(t), ry * np.sin(t)
    xy = np.stack([cx + math.cos(a) * dx - math.sin(a) * dy, cy + math.sin(a) * dx + math.cos(a) * dy], 1)
    return xy.reshape(-1)


def ellipse_box(cx: float, cy: float, rx: float, ry: float, rotation: float) -> list[float]:
    """The exact axis-aligned bounding box of the (rotated) ellipse."""
    a = math.radians(rotation)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    hw, hh = (math.hypot(rx * c, ry * s), math.hypot(rx * s, ry * c)) if rotation else (rx, ry)
    return [cx - hw, cy - hh, cx + hw, cy + hh]


def ellipse_params(flat: np.ndarray, rotation: float) -> tuple[float, float, float, float] | None:
    """(cx, cy, rx, ry) of a polygon ``ellipse_polygon`` made, or None when the polygon is not one (edited)."""
    xy = np.asarray(flat, np.float64).reshape(-1, 2)
    if len(xy) != ELLIPSE_VERTICES:
        return None
    c = xy.mean(0)
    rx, ry = float(np.hypot(*(xy[0] - c))), float(np.hypot(*(xy[ELLIPSE_VERTICES // 4] - c)))
    cx, cy, rx, ry = (round(float(v), 9) for v in (c[0], c[1], rx, ry))  # the mean's float noise, not data
    again = ellipse_polygon(cx, cy, rx, ry, rotation)
    return (cx, cy, rx, ry) if np.allclose(again, flat, rtol=0, atol=1e-6 * max(1.0, rx, ry)) else None


@dataclass
class Shape:
    """One annotation row as read: geometry, attributes and the ``extra`` columns."""

    kind: str
    label: str
    box: list[float]
    record: str = ""
    polygon: list[np.ndarray] | None = None
    mask: dict[str, Any] | None = None
    keypoints: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Reader:
    """Reads shape elements; collects findings; knows each skeleton label's point names."""

    def __init__(self, src: Path, col: Collector, specs: dict[str, AttributeDef], declared: dict[str, set[str]],
                 points_of: dict[str, list[str]]) -> None:
        self.src, self.col, self.specs, self.declared = src, col, specs, declared
        self.kp_names = {k: list(v) for k, v in points_of.items()}  # a skeleton label -> its points, in order
        self.fixed = set(points_of)  # labels whose points <meta> declares (others: in order of appearance)

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

    def flag(self, el: Any, name: str, record: str) -> bool:
        """CVAT's 0/1 flag ``name`` of ``el`` (``occluded``, ``outside``; absent: 0). Any other value is reported
        and read as 0, as CVAT reads it (only "1" sets the flag)."""
        raw: str | None = el.get(name)
        if raw is None or raw in ("0", "1"):
            return raw == "1"
        self.col.add("attribute_value", f"<{el.tag}> {name} must be 0 or 1, got {raw!r}; read as 0 (not {name}), as "
                     "CVAT reads it", severity="error", file=self.src, record=record, field=name)
        return False

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

    def shape(self, el: Any, rec: str, h: int, w: int, *, label: str | None = None) -> Shape | None:
        """The shape ``el`` (``label`` given for a track's shapes, which carry none); None when not importable."""
        label = label if label is not None else el.get("label")
        if not label:
            raise FormatError(f"<{el.tag}> must have a label", path=self.src, record=rec, field="label")
        s = Shape(el.tag, label, [math.nan] * 4, record=rec)
        occluded = self.flag(el, "occluded", rec) if el.tag != "tag" else False
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
            v = 1.0 if occluded else 2.0
            s.keypoints = np.concatenate([xy, np.full((len(xy), 1), v)], 1)
        elif el.tag == "mask":
            s.mask = self.mask(el, rec, h, w)
            if s.mask is None:
                return None
            s.box = M.to_box([s.mask])[0].tolist()
        elif el.tag == "ellipse":
            self.ellipse(el, s, rec)
        elif el.tag == "cuboid":
            xy = np.asarray([self.num(el, c, rec) for c in CUBOID_ATTRS]).reshape(8, 2)
            s.keypoints = np.concatenate([xy, np.full((8, 1), 2.0)], 1)
            s.box = [*xy.min(0).tolist(), *xy.max(0).tolist()]
            s.extra["cvat_shape"] = "cuboid"
        elif el.tag == "skeleton":
            s.keypoints = self.skeleton(el, label, rec)
            s.extra["cvat_shape"] = "skeleton"
        if el.tag != "tag":
            s.attrs["occluded"] = occluded
            s.extra["cvat_z_order"] = int(self.num(el, "z_order", rec)) if el.get("z_order") else 0
        s.extra["cvat_group_id"] = int(self.num(el, "group_id", rec)) if el.get("group_id") else 0
        s.extra["cvat_source"] = el.get("source", "manual")
        for a in el.findall("attribute"):
            self.attribute(a, s, rec)
        return s

    def ellipse(self, el: Any, s: Shape, rec: str) -> None:
        cx, cy, rx, ry = (self.num(el, c, rec) for c in ("cx", "cy", "rx", "ry"))
        if rx < 0 or ry < 0:
            self.col.add("invalid_ellipse", f"<ellipse> radii must be >= 0, got rx={rx}, ry={ry}; imported with "
                         "their absolute values", severity="error", file=self.src, record=rec,
                         field="rx" if rx < 0 else "ry")
            rx, ry = abs(rx), abs(ry)
        rot = float(self.num(el, "rotation", rec)) if el.get("rotation") else 0.0
        s.polygon = [ellipse_polygon(cx, cy, rx, ry, rot)]
        s.box = ellipse_box(cx, cy, rx, ry, rot)
        s.extra["cvat_shape"] = "ellipse"
        if rot:
            s.extra["cvat_rotation"] = rot

    def skeleton(self, el: Any, label: str, rec: str) -> np.ndarray:
        """(K, 3) keypoints in the label's point order: v = 0 outside, 1 occluded, 2 visible; absent points 0."""
        names = self.kp_names.setdefault(label, [])
        got: dict[str, tuple[float, float, float]] = {}
        for j, child in enumerate(c for c in el if c.tag != "attribute"):
            crec = f"{rec} <{child.tag}> #{j}"
            name = child.get("label")
            if child.tag != "points" or not name:
                self.col.add("unsupported_shape", f"<skeleton> elements must be labelled <points>, got "
                             f"<{child.tag}>; it was not imported", severity="error", file=self.src, record=crec)
                continue
            if name not in names:
                if label in self.fixed:
                    self.col.add("unknown_keypoint", f"skeleton point {name!r} is not a point of {label!r} in <meta> "
                                 f"({', '.join(names)}); it was not imported", severity="error", file=self.src,
                                 record=crec, field="label")
                    continue
                names.append(name)
            xy = self.points(child, crec).reshape(-1, 2)
            if len(xy) != 1:
                self.col.add("skeleton_point", f"skeleton point {name!r} must hold one point, got {len(xy)}; the "
                             "first was imported", severity="error", file=self.src, record=crec, field="points")
            outside, occluded = self.flag(child, "outside", crec), self.flag(child, "occluded", crec)
            v = 0.0 if outside else 1.0 if occluded else 2.0
            got[name] = (float(xy[0, 0]), float(xy[0, 1]), v)
            dropped = [a.get("name") for a in child.findall("attribute")]
            if dropped:
                self.col.add("skeleton_point_attribute", f"attributes of skeleton point {name!r} ({dropped}) can't "
                             "be held per keypoint; not imported", severity="error", file=self.src, record=crec)
        kp = np.zeros((len(names), 3))
        for k, name in enumerate(names):
            kp[k] = got.get(name, (0.0, 0.0, 0.0))
        return kp

    def attribute(self, a: Any, s: Shape, rec: str) -> None:
        name, text = a.get("name"), (a.text or "").strip()
        if not name:
            raise FormatError("<attribute> must have a name", path=self.src, record=rec, field="attribute")
        spec = self.specs.get(name)
        if spec is None or (s.label in self.declared and name not in self.declared[s.label]):
            self.col.add("undeclared_attribute", f"attribute {name!r} is not declared for label {s.label!r} in "
                         "<meta>; imported as text", file=self.src, record=rec, field=name)
            if spec is None:
                self.specs[name] = spec = AttributeDef(name, type="text")
        value: Any = (a.text or "") if spec.type == "text" else text  # text as CVAT reads it: every space kept
        bad = False
        if spec.type == "bool":
            bad = text.lower() not in ("true", "false", "1", "0")
            value = text if bad else text.lower() in ("true", "1")
        elif spec.type == "number":
            try:  # an integer exactly (float would round those above 2**53), other numbers as floats
                value = int(text) if _INTEGER.fullmatch(text) else float(text)
            except ValueError:
                bad = True
        elif spec.type == "enum" and spec.values:
            bad = text not in spec.values
        if bad:
            self.col.add("attribute_value", f"attribute {name!r} ({spec.type}) must be one of "
                         f"{list(spec.values) if spec.values else spec.type}, got {text!r}; kept as text",
                         severity="error", file=self.src, record=rec, field=name)
        s.attrs[name] = value


def unpad(text: str) -> str:
    """A name's element text as written: surrounding spaces are kept (a class ``"pad "``), whitespace holding a
    line break (pretty-printing) is not. (Attribute values are read as they are, as CVAT reads them.)"""
    pad = text[: len(text) - len(text.lstrip())] + text[len(text.rstrip()):]
    return text.strip() if "\n" in pad or not text.strip() else text


def merge_parts(shapes: list[Shape]) -> list[Shape]:
    """Join <polygon> shapes sharing label and group_id into one multi-part polygon (one object, as written)."""
    out: list[Shape] = []
    first: dict[tuple[str, int], Shape] = {}
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


def merge_points(shapes: list[Shape]) -> list[Shape]:
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
