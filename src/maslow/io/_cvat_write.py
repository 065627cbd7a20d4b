"""CVAT for images 1.1 XML: the writer (see ``maslow.io.cvat`` for the format's glossary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from maslow.core import masks as M
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef
from maslow.io._common import ExportReport

_SOURCE_IN = {"manual": "human", "semi-auto": "human", "file": "human", "consensus": "human", "auto": "model"}
_SOURCE_OUT = {"human": "manual", "model": "auto", "pseudo": "auto", "synthetic": "auto"}
_LABEL_TYPE_OUT = {"box": "rectangle", "polygon": "polygon", "keypoints": "points", "mask": "mask", "tag": "tag"}
_KNOWN_EXTRA = ("cvat_shape", "cvat_group_id", "cvat_z_order", "cvat_source", "cvat_rotation")

def _lose(report: ExportReport, key: str, n: int | bool) -> None:
    if n:
        report.lost[key] += int(n)


def _fmt(v: float) -> str:
    """CVAT's two decimals when exact, else the shortest repr (lossless)."""
    v = float(v)
    return f"{v:.2f}" if round(v, 2) == v else repr(v)


def _value(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _encode_mask(rle: dict[str, Any]) -> dict[str, str]:
    binary = M.decode(rle)
    ys, xs = np.nonzero(binary)
    if not len(ys):
        return {"rle": "1", "left": "0", "top": "0", "width": "1", "height": "1"}
    t, b, lft, r = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    flat = binary[t:b + 1, lft:r + 1].ravel().astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"rle": ", ".join(map(str, runs)), "left": str(lft), "top": str(t), "width": str(r - lft + 1),
            "height": str(b - t + 1)}


def _meta(ds: Dataset, attr_cols: list[str], report: ExportReport) -> ET.Element:
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = "maslow export"
    ET.SubElement(task, "size").text = str(ds.n_images)
    ET.SubElement(task, "mode").text = "annotation"
    splits = [s for s in dict.fromkeys(ds.images.split.tolist()) if s] if ds.images.split is not None else []
    if splits:
        ET.SubElement(task, "subsets").text = "\n".join(splits)
    labels = ET.SubElement(task, "labels")
    specs = {a.name: a for a in ds.schema.attributes}
    for c in ds.schema.classes:
        lab = ET.SubElement(labels, "label")
        ET.SubElement(lab, "name").text = c.name
        ET.SubElement(lab, "color").text = c.color
        types = {_LABEL_TYPE_OUT[t] for t in c.label_types}
        ET.SubElement(lab, "type").text = types.pop() if len(types) == 1 else "any"
        _lose(report, "class_keypoints", bool(c.keypoints or c.skeleton))
        _lose(report, "class_id", c.id is not None)
        _lose(report, "supercategory", bool(c.supercategory))
        attrs = ET.SubElement(lab, "attributes")
        for name in attr_cols:
            a = specs.get(name, AttributeDef(name))
            if a.classes and c.name not in a.classes:
                continue
            el = ET.SubElement(attrs, "attribute")
            ET.SubElement(el, "name").text = name
            ET.SubElement(el, "mutable").text = "False"
            itype = {"bool": "checkbox", "enum": "select", "number": "number", "text": "text"}[a.type]
            ET.SubElement(el, "input_type").text = itype
            vals = ("false",) if a.type == "bool" else a.values
            default = _value(a.default) if a.default is not None else (vals[0] if vals else "")
            ET.SubElement(el, "default_value").text = default
            ET.SubElement(el, "values").text = "\n".join(vals)
    return meta


def write(ds: Dataset, dst: Path) -> ExportReport:
    """Write ``ds`` as a CVAT for images 1.1 XML file.

    One shape per annotation: a polygon (or polyline), else a mask (CVAT RLE), else a box, else keypoints
    (``<points>``), else a ``<tag>``; keypoints of an object are written as an extra ``<points>`` shape in the
    object's group. Not expressible in CVAT, and counted in ``ExportReport.lost``: ``score``, ``iscrowd``,
    ``annotator``, masks or boxes beside a polygon that differ from it (``mask``, ``box``), keypoint visibility
    other than all-2 or all-1 per object (``keypoint_visibility``), keypoint names/skeleton, class ids,
    supercategories and ``extra`` columns that are not CVAT's own.

    Args:
        ds: the dataset.
        dst: the XML file to write (atomically).

    Returns:
        What was written and what was lost.
    """
    dst = Path(dst)
    report = ExportReport(path=str(dst), format="cvat", n_images=ds.n_images)
    a = ds.annotations
    attr_cols = [k for k in a.attributes if k != "occluded"]
    top = ET.Element("annotations")
    ET.SubElement(top, "version").text = "1.1"
    top.append(_meta(ds, attr_cols, report))
    ids = ds.images.extra.get("cvat_id")
    if ids is None or len(np.unique(ids)) != ds.n_images or np.asarray(ids).dtype.kind not in "iu":
        ids = np.arange(ds.n_images)
    for k, col in ds.images.extra.items():
        if k != "cvat_id":
            _lose(report, f"images.extra.{k}", int(sum(v is not None for v in col.tolist())))
    for k, col in a.extra.items():
        if k not in _KNOWN_EXTRA:
            _lose(report, f"extra.{k}", int(sum(v is not None for v in col.tolist())))
    used_groups = {int(g) for g in a.extra.get("cvat_group_id", np.zeros(0, np.int64)).tolist()}
    next_group = max(used_groups, default=0) + 1
    slices = ds.image_slices()
    names = ds.schema.names
    for i in range(ds.n_images):
        img = ET.SubElement(top, "image", {"id": str(int(ids[i])), "name": str(ds.images.path[i])})
        split = "" if ds.images.split is None else str(ds.images.split[i])
        if split:
            img.set("subset", split)
        img.set("width", str(int(ds.images.width[i])))
        img.set("height", str(int(ds.images.height[i])))
        for r in range(slices[i], slices[i + 1]):
            next_group = _write_row(ds, r, img, names, attr_cols, report, next_group)
    tree = ET.ElementTree(top)
    ET.indent(tree, "  ")
    with atomic_path(dst) as tmp:
        tree.write(tmp, encoding="utf-8", xml_declaration=True)
    return report


def _write_row(ds: Dataset, r: int, img: ET.Element, names: tuple[str, ...], attr_cols: list[str],
               report: ExportReport, next_group: int) -> int:
    a = ds.annotations
    assert a.box is not None and a.source is not None and a.iscrowd is not None
    ex = {k: v[r] for k, v in a.extra.items()}
    source = str(a.source[r])
    cvat_source = str(ex.get("cvat_source") or "")
    common = {"label": names[a.label[r]],
              "source": cvat_source if _SOURCE_IN.get(cvat_source) == source else _SOURCE_OUT[source]}
    occ = a.attributes.get("occluded")
    occluded = "1" if occ is not None and bool(occ[r]) else "0"
    group = int(ex.get("cvat_group_id") or 0)
    z = str(int(ex.get("cvat_z_order") or 0))
    _lose(report, "score", a.score is not None and bool(np.isfinite(a.score[r])))
    _lose(report, "iscrowd", bool(a.iscrowd[r]))
    _lose(report, "annotator", a.annotator is not None and a.annotator[r] is not None)
    box = a.box[r]
    polys = [np.asarray(p, np.float64) for p in (a.polygon[r] or [])] if a.polygon is not None else []
    mask = a.mask[r] if a.mask is not None else None
    kp = a.keypoints[r] if a.keypoints is not None else None
    labelled = kp is not None and bool(np.any(np.nan_to_num(kp[:, 2]) > 0))
    shapes: list[tuple[str, dict[str, str]]] = []
    if polys:
        kind = "polyline" if ex.get("cvat_shape") == "polyline" else "polygon"
        for p in polys:
            shapes.append((kind, {"points": ";".join(f"{_fmt(x)},{_fmt(y)}" for x, y in p.reshape(-1, 2))}))
        if len(polys) > 1:  # the parts of one object share a group_id (read back as one annotation)
            group = group or next_group
        h, w = int(ds.images.height[a.image[r]]), int(ds.images.width[a.image[r]])
        _lose(report, "mask", mask is not None and M.compress(mask)["counts"] != M.from_polygons(
            [p.tolist() for p in polys], h, w)["counts"])
        _lose(report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, M.polygon_box([p.tolist() for p in polys]))))
    elif mask is not None:
        shapes.append(("mask", _encode_mask(mask)))
        _lose(report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, M.to_box([mask])[0])))
    elif not np.isnan(box[0]):
        attrs = {c: _fmt(v) for c, v in zip(("xtl", "ytl", "xbr", "ybr"), box, strict=True)}
        rot = float(ex.get("cvat_rotation") or 0.0)
        if rot:
            attrs["rotation"] = _fmt(rot)
        shapes.append(("box", attrs))
    if labelled and kp is not None:
        kp = kp[: int(np.flatnonzero(np.nan_to_num(kp[:, 2]) > 0)[-1]) + 1]  # trailing v=0 points come back
        vis = np.nan_to_num(kp[:, 2])
        if not (np.all(vis == 2) or np.all(vis == 1)):
            _lose(report, "keypoint_visibility", 1)
        pts = ";".join(f"{_fmt(x)},{_fmt(y)}" for x, y in np.nan_to_num(kp[:, :2]))
        if shapes:
            group = group or next_group
        shapes.append(("points", {"points": pts, "occluded": "1" if np.all(vis == 1) else "0"}))
    if not shapes:
        shapes.append(("tag", {}))
    for kind, geo in shapes:
        attrs = dict(common)
        if kind != "tag":
            attrs["occluded"] = occluded
        attrs.update(geo)
        if kind != "tag":
            attrs["z_order"] = z
        if group:
            attrs["group_id"] = str(group)
        el = ET.SubElement(img, kind, attrs)
        for name in attr_cols:
            v = a.attributes[name][r]
            if v is not None:
                ET.SubElement(el, "attribute", {"name": name}).text = _value(v)
    report.n_annotations += 1
    return max(next_group, group + 1)


