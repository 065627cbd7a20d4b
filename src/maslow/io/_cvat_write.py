"""CVAT 1.1 XML, images and video tracks: the writer (see ``maslow.io.cvat`` for the format's glossary)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from maslow.core import masks as M
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef
from maslow.errors import FormatError
from maslow.io._common import ExportReport, move_rotation_pivot
from maslow.io._cvat_interp import TrackRow, keyframes
from maslow.io._cvat_read import CUBOID_ATTRS, ellipse_box, ellipse_params
from maslow.io._cvat_skeleton import svg_matches, svg_text
from maslow.io.registry import Progress, Ticks

_SOURCE_IN = {"manual": "human", "semi-auto": "human", "file": "human", "consensus": "human", "auto": "model"}
_SOURCE_OUT = {"human": "manual", "model": "auto", "pseudo": "auto", "synthetic": "auto"}
#: a label's <type> -> the label type of maslow's it becomes (ellipse and cuboid labels get none), and back
LABEL_TYPE_IN = {"rectangle": "box", "polygon": "polygon", "polyline": "polygon", "points": "keypoints",
                 "mask": "mask", "tag": "tag", "skeleton": "keypoints"}
LABEL_TYPE_OUT = {"box": "rectangle", "polygon": "polygon", "keypoints": "points", "mask": "mask", "tag": "tag"}
_KNOWN_EXTRA = ("cvat_shape", "cvat_group_id", "cvat_z_order", "cvat_source", "cvat_rotation", "cvat_track_id",
                "cvat_keyframe", "ls_rotation", "ls_shape")  # ls_*: counted per row where it can't be written

_TRACKABLE = ("box", "polygon", "polyline", "points", "ellipse", "cuboid", "skeleton")
#: Characters an XML 1.0 document can't hold, even as a character reference: control characters other than tab,
#: line feed and carriage return, lone surrogates, U+FFFE and U+FFFF. A file holding one is malformed.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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
    if isinstance(v, float | np.floating) and float(v).is_integer() and abs(float(v)) < 2**53:
        return str(int(v))  # read back as that integer; larger floats keep their exponent (read back as floats)
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


@dataclass
class _Kept:
    """What a CVAT reader kept of ``<meta>`` in ``Dataset.info["cvat"]`` (see ``maslow.io.cvat``), as far as it is
    well-formed, and the attributes whose values change within a track."""

    task: dict[str, str] = field(default_factory=dict)  # name, mode
    source: str = ""  # <meta><source>: the video of a video task
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # class -> type, mutable, svg, point_colors
    varying: set[tuple[str, str]] = field(default_factory=set)  # (class, attribute)

    def label(self, name: str, key: str, kind: type) -> Any:
        v = self.labels.get(name, {}).get(key)
        return v if isinstance(v, kind) and not (isinstance(v, str) and NOT_XML.search(v)) else None

    def mutable(self, label: str, attr: str) -> bool:
        declared = self.label(label, "mutable", list) or []
        return attr in declared or (label, attr) in self.varying


def _kept(ds: Dataset, attr_cols: list[str], report: ExportReport) -> _Kept:
    raw = ds.info.get("cvat")
    out = _Kept(varying=_varying(ds, attr_cols))
    if raw is None:
        return out
    if not isinstance(raw, dict):
        report.notes.append(f"info['cvat'] must be an object (task, labels), got {type(raw).__name__}: not used")
        return out
    task, labels = raw.get("task"), raw.get("labels")
    if isinstance(task, dict):
        out.task = {k: v for k, v in task.items() if isinstance(v, str) and v and not NOT_XML.search(v)}
    if isinstance(labels, dict):
        out.labels = {k: v for k, v in labels.items() if isinstance(v, dict)}
    if isinstance(raw.get("source"), str) and not NOT_XML.search(raw["source"]):
        out.source = raw["source"]
    return out


def _varying(ds: Dataset, attr_cols: list[str]) -> set[tuple[str, str]]:
    """(class, attribute) pairs whose value changes between frames of one track: CVAT keeps only the first frame's
    value of an attribute that is not mutable."""
    a = ds.annotations
    tid_col = a.extra.get("cvat_track_id")
    if tid_col is None:
        return set()
    tids = [-1 if v is None else int(v) for v in tid_col.tolist()]
    rows = [r for r, t in enumerate(tids) if t >= 0]
    out: set[tuple[str, str]] = set()
    for name in attr_cols:
        col = a.attributes[name]
        first: dict[tuple[int, int], Any] = {}
        for r in rows:
            key = (tids[r], int(a.label[r]))
            v = _value(col[r]) if col[r] is not None else None
            if first.setdefault(key, v) != v:
                out.add((ds.schema.names[key[1]], name))
    return out


def _meta(ds: Dataset, attr_cols: list[str], report: ExportReport, skeletons: set[int], kept: _Kept,
          tracks: bool) -> ET.Element:
    """<meta><task>: the labels with their attribute specs; a class written as skeletons is a CVAT skeleton label
    (its points and edges drawn in ``<svg>``) followed by one ``points`` label per keypoint name, with the class as
    ``<parent>``. The task's name and mode, label types maslow has none of (polyline, ellipse, cuboid), mutable
    attributes, skeleton drawings and point colours come from ``kept`` where they still fit the schema."""
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = kept.task.get("name", "maslow export")
    ET.SubElement(task, "size").text = str(ds.n_images)
    ET.SubElement(task, "mode").text = kept.task.get("mode", "interpolation" if tracks else "annotation")
    splits = [s for s in dict.fromkeys(ds.images.split.tolist()) if s] if ds.images.split is not None else []
    if splits:
        ET.SubElement(task, "subsets").text = "\n".join(splits)
    labels = ET.SubElement(task, "labels")
    specs = {a.name: a for a in ds.schema.attributes}
    for k, c in enumerate(ds.schema.classes):
        lab = ET.SubElement(labels, "label")
        ET.SubElement(lab, "name").text = c.name
        ET.SubElement(lab, "color").text = c.color
        types = {LABEL_TYPE_OUT[t] for t in c.label_types}
        own = kept.label(c.name, "type", str)  # a CVAT type maslow has no label type for, while the class fits it
        own = own if own and set(c.label_types) == ({LABEL_TYPE_IN[own]} if own in LABEL_TYPE_IN else set()) else None
        ET.SubElement(lab, "type").text = ("skeleton" if k in skeletons else own if own else types.pop()
                                           if len(types) == 1 else "any")
        _lose(report, "class_keypoints", bool((c.skeleton or c.keypoints) and k not in skeletons))
        _lose(report, "class_id", c.id is not None)
        _lose(report, "supercategory", bool(c.supercategory))
        attrs = ET.SubElement(lab, "attributes")
        for name in attr_cols:
            a = specs.get(name, AttributeDef(name))
            if a.classes and c.name not in a.classes:
                continue
            el = ET.SubElement(attrs, "attribute")
            ET.SubElement(el, "name").text = name
            ET.SubElement(el, "mutable").text = "True" if kept.mutable(c.name, name) else "False"
            itype = {"bool": "checkbox", "enum": "select", "number": "number", "text": "text"}[a.type]
            ET.SubElement(el, "input_type").text = itype
            vals = ("false",) if a.type == "bool" else a.values
            default = _value(a.default) if a.default is not None else (vals[0] if vals else "")
            ET.SubElement(el, "default_value").text = default
            ET.SubElement(el, "values").text = "\n".join(vals)
        if k in skeletons:
            drawn = kept.label(c.name, "svg", str)
            ET.SubElement(lab, "svg").text = (drawn if drawn and svg_matches(drawn, c.keypoints, c.skeleton)
                                              else svg_text(c.keypoints, c.skeleton))
        colors = kept.label(c.name, "point_colors", dict) or {}
        for name in c.keypoints if k in skeletons else ():
            point = ET.SubElement(labels, "label")
            color = colors.get(name)
            color = color if isinstance(color, str) and not NOT_XML.search(color) else ""
            for tag, text in (("name", name), ("color", color), ("type", "points"),
                              ("attributes", None), ("parent", c.name)):
                ET.SubElement(point, tag).text = text
    if kept.source:
        ET.SubElement(meta, "source").text = kept.source
    return meta


def write(ds: Dataset, dst: Path, *, progress: Progress | None = None) -> ExportReport:
    """Write ``ds`` as a CVAT 1.1 XML file: CVAT for images, plus CVAT for video ``<track>`` elements for rows
    that carry ``extra["cvat_track_id"]``.

    One shape per annotation: a polygon (or polyline), else a mask (CVAT RLE), else a box, else keypoints
    (``<points>``), else a ``<tag>``; keypoints of an object are written as an extra ``<points>`` shape in the
    object's group. Rows read from an ``<ellipse>``, ``<cuboid>`` or ``<skeleton>`` (``extra["cvat_shape"]``) are
    written as one again. Not expressible in CVAT, and counted in ``ExportReport.lost``: ``score``, ``iscrowd``,
    ``annotator``, masks or boxes beside a polygon that differ from it (``mask``, ``box``), keypoint visibility
    other than all-2 or all-1 per object (``keypoint_visibility``), keypoint names/skeletons of classes not
    written as CVAT skeleton labels, class ids,
    supercategories, attribute values holding characters XML can't hold (``attributes``), ``extra`` columns that are not CVAT's own, an ellipse/cuboid/skeleton whose geometry no
    longer is one (``cvat_shape``: written as its polygon, box or points) and track rows CVAT can't hold in a
    track (``cvat_track_id``: a mask, a tag, several shapes, a second shape of the track in one image). A track
    row read as an interpolated frame is written ``keyframe="0"`` only while CVAT's import rebuilds it from the
    keyframes around it (``_cvat_interp``); edited ones are written as keyframes (a note counts them).
    ``images.extra["cvat_task_id"]`` is written as each ``<image>``'s ``task_id``, and ``ds.info["cvat"]`` gives
    back the task's name and mode, the video's name, mutable attributes, label types maslow has none of (polyline,
    ellipse, cuboid), skeleton drawings and point colours, each while it still fits the schema.

    Args:
        ds: the dataset.
        dst: the XML file to write (atomically).
        progress: called as ``progress(done, total)`` over the images written (``registry.Ticks``).

    Returns:
        What was written and what was lost.

    Raises:
        FormatError: a class, keypoint or attribute name, attribute value list, image path or split holds a
            character XML can't hold (``check_text``); nothing is written.
    """
    dst = Path(dst)
    report = ExportReport(path=str(dst), format="cvat", n_images=ds.n_images)
    a = ds.annotations
    attr_cols = [k for k in a.attributes if k != "occluded"]
    check_text(ds, attr_cols, dst)
    ids = ds.images.extra.get("cvat_id")
    if ids is None or len(np.unique(ids)) != ds.n_images or np.asarray(ids).dtype.kind not in "iu":
        ids = np.arange(ds.n_images)
    task_ids = ds.images.extra.get("cvat_task_id")
    if task_ids is not None and np.asarray(task_ids).dtype.kind not in "iu":
        task_ids = None  # not a project export's task ids: counted lost below
    for k, col in ds.images.extra.items():
        if k != "cvat_id" and (k != "cvat_task_id" or task_ids is None):
            _lose(report, f"images.extra.{k}", int(sum(v is not None for v in col.tolist())))
    for k, col in a.extra.items():
        if k not in _KNOWN_EXTRA:
            _lose(report, f"extra.{k}", int(sum(v is not None for v in col.tolist())))
    used_groups = {int(g) for g in a.extra.get("cvat_group_id", np.zeros(0, np.int64)).tolist()}
    next_group = max(used_groups, default=0) + 1
    later = ExportReport(path=str(dst), format="cvat")  # what <meta> and the tracks lose, counted after the rows
    tid_col = a.extra.get("cvat_track_id")
    has_tracks = tid_col is not None and any(v is not None and int(v) >= 0 for v in tid_col.tolist())
    meta = _meta(ds, attr_cols, later, _skeleton_labels(ds), _kept(ds, attr_cols, report), has_tracks)
    tracks: dict[tuple[int, str], list[int]] = {}  # (track id, label) -> its rows, one per image
    track_images: dict[tuple[int, str], set[int]] = {}
    group_at: dict[int, int] = {}  # a track row -> the next free group id when it was written (to write it again)
    slices = ds.image_slices()
    tick = Ticks(progress, ds.n_images)
    with atomic_path(dst) as tmp, open(tmp, "w", encoding="utf-8", errors="xmlcharrefreplace") as f:
        f.write("<?xml version='1.0' encoding='utf-8'?>\n<annotations>")
        version = ET.Element("version")
        version.text = "1.1"
        _put(f, version, dst)
        _put(f, meta, dst)
        for i in range(ds.n_images):
            img = ET.Element("image", {"id": str(int(ids[i])), "name": str(ds.images.path[i])})
            split = "" if ds.images.split is None else str(ds.images.split[i])
            if split:
                img.set("subset", split)
            if task_ids is not None and int(task_ids[i]) >= 0:
                img.set("task_id", str(int(task_ids[i])))
            img.set("width", str(int(ds.images.width[i])))
            img.set("height", str(int(ds.images.height[i])))
            for r in range(slices[i], slices[i + 1]):
                row, after = _row(ds, r, attr_cols, report, next_group)
                tid = -1 if tid_col is None or tid_col[r] is None else int(tid_col[r])
                if tid >= 0:  # CVAT tracks hold one shape per frame, of a kind a track can hold
                    key = (tid, row.label)
                    ok = len(row.els) == 1 and row.els[0].kind in _TRACKABLE and i not in track_images.get(key, ())
                    _lose(later, "cvat_track_id", not ok)
                    if ok:
                        tracks.setdefault(key, []).append(r)
                        track_images.setdefault(key, set()).add(i)
                        group_at[r] = next_group
                next_group = after
                for el in row.els if r not in group_at else ():
                    _emit(img, el, row)
            _put(f, img, dst)
            tick(i + 1)
        del track_images
        scratch = ExportReport(path=str(dst), format="cvat")  # a track row's losses were counted above

        def row_of(r: int) -> _Row:
            return _row(ds, r, attr_cols, scratch, group_at[r])[0]

        promoted = [0]
        for node in _track_elements(ds, tracks, np.asarray(ids, np.int64), row_of, promoted):
            _put(f, node, dst)
        f.write("\n</annotations>")
    tick.end()
    if promoted[0]:
        report.notes.append(f"{promoted[0]} track rows read as interpolated frames (keyframe 0) are not what CVAT "
                            "interpolates there from the keyframes around them (edited since): written as "
                            "keyframes, so CVAT's import keeps them")
    for k, n in later.lost.items():
        report.lost[k] += n
    if report.lost.get("attributes"):
        report.notes.append(f"{report.lost['attributes']} attribute values hold characters XML can't hold (control "
                            "characters, lone surrogates): not written")
    report.n_annotations = len(a)
    return report


def _put(f: Any, el: ET.Element, dst: Path) -> None:
    """Write ``el`` as a child of the root, indented as ``ET.indent`` indents the whole document. A carriage return
    in text is written ``&#13;`` (XML reads a raw one as a line feed; ElementTree escapes only those in attributes).

    Raises:
        FormatError: ``el`` holds a character XML can't hold (``check_text`` refuses those it knows of first);
            the temporary file is removed, so nothing is written.
    """
    ET.indent(el, "  ", level=1)
    text = ET.tostring(el, encoding="unicode")
    bad = NOT_XML.search(text)
    if bad:
        where = " ".join(f"{k}={el.get(k)!r}" for k in ("id", "name", "label") if el.get(k) is not None)
        raise FormatError(f"holds {bad.group()!r}, a character XML can't hold; nothing was written", path=dst,
                          record=f"<{el.tag}{' ' + where if where else ''}>")
    f.write("\n  ")
    f.write(text.replace("\r", "&#13;"))


def check_text(ds: Dataset, attr_cols: list[str], dst: Path) -> None:
    """Refuse names and paths XML can't hold (``NOT_XML``: control characters, lone surrogates), which CVAT has
    no other place for, before anything is written (an attribute value is left out and counted instead).

    Raises:
        FormatError: naming the first such class, keypoint, attribute, image path or split.
    """
    def refuse(text: str, record: str, fld: str) -> None:
        bad = NOT_XML.search(text)
        if bad:
            raise FormatError(f"{text!r} holds {bad.group()!r}, a character XML can't hold; rename it, nothing was "
                              "written", path=dst, record=record, field=fld)

    for k, c in enumerate(ds.schema.classes):
        refuse(c.name, f"schema.classes[{k}]", "name")
        for name in c.keypoints:
            refuse(name, f"schema.classes[{k}] ({c.name!r})", "keypoints")
    for name in attr_cols:
        refuse(name, f"attribute {name!r}", "name")
    for k, spec in enumerate(ds.schema.attributes):
        for v in (*spec.values, *((spec.default,) if isinstance(spec.default, str) else ())):
            refuse(v, f"schema.attributes[{k}] ({spec.name!r})", "values")
    for col, fld in ((ds.images.path, "path"), (ds.images.split, "split")):
        texts = [str(v) for v in col.tolist()] if col is not None else []
        if NOT_XML.search("".join(texts)):  # one scan of them all; then find the first
            i = next(i for i, v in enumerate(texts) if NOT_XML.search(v))
            refuse(texts[i], f"images[{i}] ({str(ds.images.path[i])!r})", fld)


def _skeleton_labels(ds: Dataset) -> set[int]:
    """The classes of the rows written as a ``<skeleton>`` (``_row``'s test): CVAT skeleton labels in <meta>."""
    a = ds.annotations
    shape = a.extra.get("cvat_shape")
    if shape is None or a.keypoints is None:
        return set()
    out = set()
    for r in (r for r, v in enumerate(shape.tolist()) if str(v or "") == "skeleton"):
        kp, k = a.keypoints[r], int(a.label[r])
        if not np.isnan(kp[:, 2]).all() and _fits_skeleton(ds.schema.classes[k].keypoints, kp):
            out.add(k)
    return out


@dataclass
class _El:
    """One XML shape element: its tag, geometry attributes and, for a skeleton, its points' attributes."""

    kind: str
    geo: dict[str, str]
    children: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _Row:
    """The elements one annotation row is written as, and what they share."""

    els: list[_El]
    label: str
    source: str
    occluded: str
    z: str
    group: int
    attrs: list[tuple[str, str]]


def _row(ds: Dataset, r: int, attr_cols: list[str], report: ExportReport, next_group: int) -> tuple[_Row, int]:
    a = ds.annotations
    assert a.box is not None and a.source is not None and a.iscrowd is not None
    ex = {k: v[r] for k, v in a.extra.items()}
    source = str(a.source[r])
    cvat_source = str(ex.get("cvat_source") or "")
    occ = a.attributes.get("occluded")
    group = int(ex.get("cvat_group_id") or 0)
    _lose(report, "score", a.score is not None and bool(np.isfinite(a.score[r])))
    _lose(report, "iscrowd", bool(a.iscrowd[r]))
    _lose(report, "annotator", a.annotator is not None and a.annotator[r] is not None)
    box = a.box[r]
    polys = [np.asarray(p, np.float64) for p in (a.polygon[r] or [])] if a.polygon is not None else []
    mask = a.mask[r] if a.mask is not None else None
    kp = a.keypoints[r] if a.keypoints is not None else None
    labelled = kp is not None and bool(np.any(np.nan_to_num(kp[:, 2]) > 0))
    h, w = int(ds.images.height[a.image[r]]), int(ds.images.width[a.image[r]])
    rot = float(ex.get("cvat_rotation") or 0.0)
    ls_rot = float(ex.get("ls_rotation") or 0.0)
    kind = str(ex.get("cvat_shape") or "")
    els: list[_El] = []
    special = None
    ls_ellipse = not kind and ex.get("ls_shape") == "ellipse"  # Label Studio's, turned about its centre as CVAT's
    if kind == "ellipse" or ls_ellipse:
        special = _ellipse(polys, box, mask, ls_rot if ls_ellipse else rot, h, w, report)
        if ls_ellipse and special is not None:
            ls_rot = 0.0  # written as the ellipse's rotation
    elif kind == "cuboid" and labelled and kp is not None:
        special = _cuboid(kp, box, polys, mask, report)
    elif kind == "skeleton" and kp is not None and not np.isnan(kp[:, 2]).all():  # v = 0 points are outside
        special = _skeleton(ds.schema.classes[int(a.label[r])].keypoints, kp, box, polys, mask, report)
    _lose(report, "cvat_shape", kind in ("ellipse", "cuboid", "skeleton") and special is None)
    _lose(report, "extra.ls_shape", bool(ex.get("ls_shape")) and not (ls_ellipse and special is not None))
    if special is not None:
        els.append(special)
    elif polys:
        shape = "polyline" if kind == "polyline" else "polygon"
        els.extend(_El(shape, {"points": _pts(p)}) for p in polys)
        if len(polys) > 1:  # the parts of one object share a group_id (read back as one annotation)
            group = group or next_group
        _lose(report, "mask", mask is not None and M.compress(mask)["counts"] != M.from_polygons(
            [p.tolist() for p in polys], h, w)["counts"])
        _lose(report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, M.polygon_box([p.tolist() for p in polys]))))
    elif mask is not None:
        els.append(_El("mask", _encode_mask(mask)))
        _lose(report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, M.to_box([mask])[0])))
    elif not np.isnan(box[0]):
        if not rot and ls_rot:  # Label Studio's rectangle turns about its top-left corner, CVAT's about its centre
            box, rot, ls_rot = np.asarray(move_rotation_pivot(box, ls_rot, to_center=True)), ls_rot, 0.0
        geo = {c: _fmt(v) for c, v in zip(("xtl", "ytl", "xbr", "ybr"), box, strict=True)}
        if rot:
            geo["rotation"] = _fmt(rot)
        els.append(_El("box", geo))
    if ls_rot:  # a rotation not written (the row is no box, or has CVAT's own)
        _lose(report, "extra.ls_rotation", 1)
    if labelled and kp is not None and (special is None or special.kind == "ellipse"):
        kp = kp[: int(np.flatnonzero(np.nan_to_num(kp[:, 2]) > 0)[-1]) + 1]  # trailing v=0 points come back
        vis = np.nan_to_num(kp[:, 2])
        if not (np.all(vis == 2) or np.all(vis == 1)):
            _lose(report, "keypoint_visibility", 1)
        if els:
            group = group or next_group
        els.append(_El("points", {"points": _pts(np.nan_to_num(kp[:, :2])),
                                  "occluded": "1" if np.all(vis == 1) else "0"}))
    if not els:
        els.append(_El("tag", {}))
    attrs = [(name, _value(v)) for name in attr_cols if (v := a.attributes[name][r]) is not None]
    n_attrs = len(attrs)
    attrs = [(name, text) for name, text in attrs if not NOT_XML.search(text)]
    _lose(report, "attributes", n_attrs - len(attrs))  # a control character: the file would be malformed
    row = _Row(els, ds.schema.names[a.label[r]],
               cvat_source if _SOURCE_IN.get(cvat_source) == source else _SOURCE_OUT[source],
               "1" if occ is not None and bool(occ[r]) else "0", str(int(ex.get("cvat_z_order") or 0)), group, attrs)
    return row, max(next_group, group + 1)


def _pts(xy: np.ndarray) -> str:
    return ";".join(f"{_fmt(x)},{_fmt(y)}" for x, y in np.asarray(xy, np.float64).reshape(-1, 2))


def _ellipse(polys: list[np.ndarray], box: np.ndarray, mask: Any, rot: float, h: int, w: int,
             report: ExportReport) -> _El | None:
    """An <ellipse> from the polygon the reader made of one, or None when the polygon was edited since."""
    params = ellipse_params(polys[0], rot) if len(polys) == 1 else None
    if params is None:
        return None
    geo = {k: _fmt(v) for k, v in zip(("cx", "cy", "rx", "ry"), params, strict=True)}
    if rot:
        geo["rotation"] = _fmt(rot)
    _lose(report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, ellipse_box(*params, rot))))
    _lose(report, "mask", mask is not None and M.compress(mask)["counts"] != M.from_polygons(
        [polys[0].tolist()], h, w)["counts"])
    return _El("ellipse", geo)


def _cuboid(kp: np.ndarray, box: np.ndarray, polys: list[np.ndarray], mask: Any, report: ExportReport) -> _El | None:
    """A <cuboid> from 8 labelled keypoints (its corners, in CVAT's order) and nothing labelled after them."""
    vis = np.nan_to_num(kp[:, 2])
    if len(kp) < 8 or not np.all(vis[:8] > 0) or np.any(vis[8:] > 0):
        return None
    xy = kp[:8, :2]
    _lose(report, "keypoint_visibility", not np.all(vis[:8] == 2))
    _lose(report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, [*xy.min(0), *xy.max(0)])))
    _lose(report, "polygon", bool(polys))
    _lose(report, "mask", mask is not None)
    return _El("cuboid", {k: _fmt(v) for k, v in zip(CUBOID_ATTRS, xy.reshape(-1), strict=True)})


def _fits_skeleton(names: tuple[str, ...], kp: np.ndarray) -> bool:
    """Whether keypoints ``kp`` are a skeleton of the points ``names``: one per name, nothing labelled after them."""
    return bool(names) and len(kp) >= len(names) and not np.any(np.nan_to_num(kp[len(names):, 2]) > 0)


def _skeleton(names: tuple[str, ...], kp: np.ndarray, box: np.ndarray, polys: list[np.ndarray], mask: Any,
              report: ExportReport) -> _El | None:
    """A <skeleton> with one <points> per keypoint name of the class (v = 0 outside, 1 occluded)."""
    if not _fits_skeleton(names, kp):
        return None
    vis = np.nan_to_num(kp[:, 2])
    children = [{"label": n, "outside": "1" if v == 0 else "0", "occluded": "1" if v == 1 else "0",
                 "points": _pts(np.nan_to_num(kp[k, :2]))} for k, (n, v) in enumerate(zip(names, vis, strict=False))]
    _lose(report, "box", not np.isnan(box[0]))
    _lose(report, "polygon", bool(polys))
    _lose(report, "mask", mask is not None)
    return _El("skeleton", {}, children)


def _emit(parent: ET.Element, el: _El, row: _Row, *, frame: int | None = None, keyframe: str = "1",
          outside: str = "0") -> None:
    """Write ``el`` under an <image> (``frame`` None) or a <track> (the attribute order CVAT writes)."""
    if frame is None:
        attrs = {"label": row.label, "source": row.source}
        if el.kind not in ("tag", "skeleton"):
            attrs["occluded"] = row.occluded
    else:
        attrs = {"frame": str(frame), "keyframe": keyframe}
        if el.kind != "skeleton":
            attrs.update(outside=outside, occluded=row.occluded)
    attrs.update(el.geo)
    if el.kind != "tag":
        attrs["z_order"] = row.z
    if row.group and frame is None:
        attrs["group_id"] = str(row.group)
    node = ET.SubElement(parent, el.kind, attrs)
    for child in el.children:
        c = {"label": child["label"], **({"source": row.source} if frame is None else {"keyframe": keyframe})}
        c.update(outside="1" if outside == "1" else child["outside"], occluded=child["occluded"],
                 points=child["points"])
        ET.SubElement(node, "points", c)
    for name, text in row.attrs:
        ET.SubElement(node, "attribute", {"name": name}).text = text


def _track_row(row: _Row) -> TrackRow:
    """What CVAT's interpolation works on and copies, of a track row as written (see ``_cvat_interp``)."""
    el = row.els[0]
    if el.kind in ("polygon", "polyline", "points"):
        xy = [float(c) for pair in el.geo["points"].split(";") for c in pair.split(",")]
    elif el.kind == "skeleton":
        xy = [float(c) for child in el.children for c in child["points"].split(",")]
    else:
        xy = [float(v) for k, v in el.geo.items() if k != "rotation"]
    flags = tuple((c["outside"], c["occluded"]) for c in el.children)
    return TrackRow(el.kind, np.asarray(xy, np.float64), float(el.geo.get("rotation", 0.0)),
                    (el.geo.get("occluded", row.occluded), row.z, tuple(row.attrs), flags))


def _track_elements(ds: Dataset, tracks: dict[tuple[int, str], list[int]], ids: np.ndarray,
                    row_of: Callable[[int], _Row], promoted: list[int]) -> Iterator[ET.Element]:
    """One <track> per (track id, label): a shape per frame, the first and last of each run of consecutive frames
    as keyframes, an outside keyframe where a run ends, and the rows read as interpolated frames left to CVAT's
    interpolation while it gives them back (``_cvat_interp.keyframes``; ``promoted[0]`` counts the others)."""
    order = np.argsort(ids, kind="stable")
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    kf_col = ds.annotations.extra.get("cvat_keyframe")
    taken: set[int] = set()
    fresh = max((t for t, _ in tracks), default=-1) + 1
    for (tid, label), rs in tracks.items():
        if tid in taken:  # the same id with another label: CVAT tracks have one label
            tid, fresh = fresh, fresh + 1
        taken.add(tid)
        rows = {r: row_of(r) for r in rs}
        first = rows[rs[0]]
        attrs = {"id": str(tid), "label": label, "source": first.source}
        if first.group:
            attrs["group_id"] = str(first.group)
        node = ET.Element("track", attrs)
        rs = sorted(rs, key=lambda r: rank[ds.annotations.image[r]])
        pos = [int(rank[ds.annotations.image[r]]) for r in rs]
        frames = [int(ids[ds.annotations.image[r]]) for r in rs]
        ends = [j == len(rs) - 1 or pos[j + 1] != pos[j] + 1 for j in range(len(rs))]
        read = [j == 0 or pos[j - 1] != pos[j] - 1 or ends[j] or kf_col is None or kf_col[r] is None
                or bool(kf_col[r]) for j, r in enumerate(rs)]
        keys = read if all(read) else keyframes(frames, [_track_row(rows[r]) for r in rs], read)
        promoted[0] += sum(keys) - sum(read)
        for j, r in enumerate(rs):
            _emit(node, rows[r].els[0], rows[r], frame=frames[j], keyframe=str(int(keys[j])))
            if ends[j] and pos[j] + 1 < len(ids):
                _emit(node, rows[r].els[0], rows[r], frame=int(ids[order[pos[j] + 1]]), outside="1")
        yield node
