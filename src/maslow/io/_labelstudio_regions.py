"""The Label Studio reader's parsing of result values (see labelstudio.py for the format and the mapping): a
region's geometry, in percent of ``original_width``/``original_height``, into a row's pixels per region type
(``rectanglelabels``, ``polygonlabels``, ``ellipselabels``, ``keypointlabels``, ``brushlabels`` and their unlabelled
tools), a per-region attribute's value (``choices``, ``textarea``, ``number``, ``rating``, ``datetime``) into the
row's attributes, a result's labels, and the labels of a generic ``<Labels>`` moved onto the geometry result they
share an id with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core import masks as M
from maslow.core.schema import AttributeDef
from maslow.errors import FormatError
from maslow.io._common import Collector
from maslow.io._cvat_read import ellipse_box, ellipse_polygon
from maslow.io._labelstudio_columns import Row
from maslow.io._labelstudio_export import brush_decode
from maslow.io._labelstudio_keep import leftover

#: region result type -> the kind of row it gives
REGION = {"rectanglelabels": "box", "rectangle": "box", "polygonlabels": "polygon", "polygon": "polygon",
          "keypointlabels": "keypoint", "keypoint": "keypoint", "brushlabels": "brush", "brush": "brush",
          "ellipselabels": "ellipse", "ellipse": "ellipse"}
#: result types that are attributes of the region sharing their id
ATTR_TYPES = ("choices", "textarea", "number", "rating", "datetime")
_GEOMETRY_TOOLS = ("rectangle", "polygon", "keypoint", "brush", "ellipse")  # the unlabelled tools of REGION
_ATTR_KEY = {"choices": "choices", "textarea": "text", "number": "number", "rating": "rating", "datetime": "datetime"}
#: Pixel coordinates computed from percentages are rounded to this many decimals: percent -> pixel conversion
#: leaves float noise (x / w * 100 * w / 100 != x) that would move a rasterised boundary pixel.
_PX_DECIMALS = 9


@dataclass(frozen=True)
class Place:
    """Where a result is, for its findings and errors."""

    src: Path
    col: Collector
    rec: str
    image: int


def positive(v: Any) -> bool:
    """A usable image side: a number (not a bool) > 0."""
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0


def _px(values: list[float]) -> list[float]:
    return [round(v, _PX_DECIMALS) for v in values]


def _num(value: dict[str, Any], key: str, at: Place) -> float:
    v = value.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise FormatError(f"value.{key} must be a finite number, got {v!r}", path=at.src, record=at.rec,
                          field=f"value.{key}")
    return float(v)


def _percent(vals: list[float], key: str, at: Place) -> None:
    bad = [v for v in vals if v < -1e-3 or v > 100 + 1e-3]
    if bad:
        at.col.add("labelstudio_not_percent", f"value.{key} must be in percent (0..100), got {bad[0]}; "
                   "pixels where percent was expected?", severity="error", file=at.src, record=at.rec,
                   field=f"value.{key}")


def labels_of(res: dict[str, Any], rtype: str, src: Path, rec: str) -> list[str]:
    """The labels of a result (``value[rtype]``, else ``value["labels"]``); [] when it has none."""
    value = res["value"]
    labels = value.get(rtype, value.get("labels"))
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise FormatError(f"value.{rtype} must be a list of strings, got {labels!r}", path=src, record=rec,
                          field=f"value.{rtype}")
    return labels


def read_geometry(row: Row, kind: str, value: dict[str, Any], w: float, h: float, canvas: tuple[Any, Any],
                  at: Place) -> bool:
    """Set ``row``'s geometry in pixels from a region's ``value`` in percent of ``w`` x ``h`` (``canvas``: the size
    of a brush's RLE); False when the region can't be imported (reported)."""
    sx, sy = float(w) / 100.0, float(h) / 100.0
    if kind == "box":
        x, y, bw, bh = (_num(value, k, at) for k in ("x", "y", "width", "height"))
        _percent([x, y, x + bw, y + bh], "x", at)
        if bw < 0 or bh < 0:
            at.col.add("invalid_box", f"width and height must be >= 0, got {bw}, {bh}; corners swapped",
                       severity="error", file=at.src, record=at.rec, field="value.width", image=at.image)
        xs, ys = sorted([x, x + bw]), sorted([y, y + bh])
        row.box = _px([xs[0] * sx, ys[0] * sy, xs[1] * sx, ys[1] * sy])
        rot = value.get("rotation", 0) or 0
        if rot:
            row.extra["ls_rotation"] = float(rot)
            at.col.add("rotated_box", f"rotation {rot}; maslow boxes are axis-aligned, the unrotated box "
                       "was imported (rotation kept in extra['ls_rotation'])", file=at.src, record=at.rec,
                       field="value.rotation", image=at.image)
    elif kind == "polygon":
        pts = value.get("points")
        try:
            xy = np.asarray(pts, np.float64).reshape(-1, 2)
            ok = pts is not None and bool(np.isfinite(xy).all()) and xy.size == 2 * len(pts)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise FormatError("value.points must be a list of [x, y] percent pairs", path=at.src,
                              record=at.rec, field="value.points")
        _percent(xy.ravel().tolist(), "points", at)
        if len(xy) < 3:
            at.col.add("degenerate_polygon", f"polygon must have at least 3 points, got {len(xy)}",
                       severity="error", file=at.src, record=at.rec, field="value.points", image=at.image)
        flat = np.round((xy * [sx, sy]).ravel(), _PX_DECIMALS)
        row.polygon = [flat]
        row.box = M.polygon_box([flat.tolist()]).tolist()
    elif kind == "ellipse":  # x, y: the centre; radii in percent of the width and the height
        cx, cy, rx, ry = (_num(value, k, at) for k in ("x", "y", "radiusX", "radiusY"))
        _percent([cx, cy], "x", at)
        rot = float(value.get("rotation", 0) or 0)
        ex, ey, erx, ery = _px([cx * sx, cy * sy, abs(rx) * sx, abs(ry) * sy])
        row.polygon = [np.round(ellipse_polygon(ex, ey, erx, ery, rot), _PX_DECIMALS)]
        row.box = _px(ellipse_box(ex, ey, erx, ery, rot))
        row.extra["ls_shape"] = "ellipse"
        if rot:
            row.extra["ls_rotation"] = rot
    elif kind == "keypoint":
        x, y = _num(value, "x", at), _num(value, "y", at)
        _percent([x, y], "x", at)
        kx, ky = _px([x * sx, y * sy])
        row.kps, row.standalone_kp = [(row.label, kx, ky)], True
    else:
        cw, ch = (int(v) for v in canvas)
        binary = brush_decode(value.get("rle", []), ch, cw) if value.get("format", "rle") == "rle" \
            and isinstance(value.get("rle"), list) else None
        if binary is None:
            at.col.add("unsupported_brush", f"brush must be Label Studio RLE of {cw}x{ch}x4 values; "
                       "the region was not imported", severity="error", file=at.src, record=at.rec,
                       field="value.rle", image=at.image)
            return False
        if (cw, ch) != (int(w), int(h)):  # nearest pixel of the brush's canvas
            binary = binary[(np.arange(int(h)) * ch) // int(h)][:, (np.arange(int(w)) * cw) // int(w)]
        row.mask = M.encode(binary)
        row.box = M.to_box([row.mask])[0].tolist()
    return True


def read_attribute(row: Row, res: dict[str, Any], rtype: str, attributes: dict[str, AttributeDef],
                   at: Place) -> None:
    """Set the attribute of a per-region result (named by its ``from_name``) on its region's ``row``; an attribute
    the config does not declare is added to ``attributes``."""
    name, value = str(res.get("from_name", rtype)), res["value"]
    spec = attributes.get(name)
    v = value.get(_ATTR_KEY[rtype])
    if isinstance(v, list):
        v = v[0] if len(v) == 1 else ",".join(map(str, v))
    if spec is None:
        spec = AttributeDef(name, type="number" if rtype in ("number", "rating") else "text")
        attributes[name] = spec
    left = leftover(res, rtype, rtype, scored=False)
    if left:
        row.extra["ls_result"] = {**(row.extra.get("ls_result") or {})}
        row.extra["ls_result"].setdefault("attributes", {})[name] = left
    if spec.type == "bool" and v in ("true", "false"):
        v = v == "true"
    elif spec.type == "enum" and spec.values and v not in spec.values:
        at.col.add("attribute_value", f"attribute {name!r} must be one of {list(spec.values)}, got {v!r}",
                   severity="error", file=at.src, record=at.rec, field=name, image=row.image)
    row.attrs[name] = v


def merge_split_labels(results: list[Any]) -> list[Any]:
    """Results of a generic ``<Labels>`` beside a geometry tool (``<Rectangle>``, ``<Polygon>``...): Label Studio
    writes a ``labels`` result sharing the id of the geometry result; its labels go to the geometry result."""
    def rtype(r: Any) -> str:
        return str(r.get("type", "")).lower() if isinstance(r, dict) and isinstance(r.get("value"), dict) else ""

    def rid(r: Any) -> Any:
        return r.get("id") if isinstance(r.get("id"), str | int) else None

    labels = {rid(r): r["value"].get("labels") for r in results if rtype(r) == "labels" and rid(r) is not None}
    if not labels:
        return results
    paired = {rid(r) for r in results if rtype(r) in _GEOMETRY_TOOLS and rid(r) in labels}
    out = []
    for r in results:
        if rtype(r) == "labels" and rid(r) in paired:
            continue
        if rtype(r) in _GEOMETRY_TOOLS and rid(r) in paired and "labels" not in r["value"]:
            r = {**r, "value": {**r["value"], "labels": labels[rid(r)]}}
        out.append(r)
    return out
