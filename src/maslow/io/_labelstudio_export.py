"""Internals of the Label Studio format (see labelstudio.py): the brush RLE codec, the task/config builders and
the JSON-MIN reader's conversion of its records back to tasks."""

from __future__ import annotations

import itertools
import json
import math
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef
from maslow.core.tables import Annotations
from maslow.io._common import ExportReport, move_rotation_pivot
from maslow.io._cvat_read import ellipse_box, ellipse_params
from maslow.io._labelstudio_keep import controls, json_value, merge, misfit, task_data
from maslow.io._labelstudio_values import TAG, ValueWriter
from maslow.io.registry import Ticks

EXTRA = ("ls_result_id", "ls_from_name", "ls_to_name", "ls_annotation_id", "ls_model_version", "ls_rotation",
         "ls_shape", "ls_result")


# -- Label Studio's brush RLE (thi.ng rle-pack: 32-bit count, 5-bit word size, four 4-bit run-length sizes) ----
def brush_decode(rle: list[int], h: int, w: int) -> np.ndarray | None:
    """(h, w) bool mask (alpha > 0), or None when the RLE is malformed or not h*w*4 values."""
    try:
        bits = (np.unpackbits(np.asarray(rle, dtype=np.uint8)) + ord("0")).tobytes().decode("ascii")
    except (ValueError, OverflowError, TypeError):
        return None
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > len(bits):
            raise IndexError
        v = int(bits[pos:pos + n], 2)
        pos += n
        return v

    try:
        num = read(32)
        word = read(5) + 1
        sizes = [read(4) + 1 for _ in range(4)]
        if num != h * w * 4:
            return None
        out = np.zeros(num, np.uint32)
        i = 0
        while i < num:
            repeat = read(1)
            j = min(i + 1 + read(sizes[read(2)]), num)
            if repeat:
                out[i:j] = read(word)
                i = j
            else:
                while i < j:
                    out[i] = read(word)
                    i += 1
    except IndexError:
        return None
    return out.reshape(h, w, 4)[:, :, 3] > 0


def _brush_encode(binary: np.ndarray) -> list[int]:
    flat = np.repeat(np.asarray(binary, bool).ravel().astype(np.uint8) * 255, 4)
    parts = [f"{flat.size:032b}", f"{7:05b}", "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))]
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]]).astype(np.int64)
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        value, left = int(flat[start]), stop - start
        while left:
            n = min(left, 1 << 16)
            idx, bits = next((k, s) for k, s in enumerate((3, 4, 8, 16)) if n <= 1 << s)
            parts.append(f"1{idx:02b}{n - 1:0{bits}b}{value:08b}")
            left -= n
    s = "".join(parts)
    s += "0" * (-len(s) % 8)
    return np.packbits(np.frombuffer(s.encode(), np.uint8) - ord("0")).tolist()


# -- writing (tasks and config) ---------------------------------------------------------------------------------------------------
@dataclass
class _Controls:
    regions: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (control tag, name) -> labels
    choices: dict[str, list[str]] = field(default_factory=dict)
    attributes: dict[str, AttributeDef] = field(default_factory=dict)
    multiple: bool = False
    to_names: set[str] = field(default_factory=set)
    ratings: set[str] = field(default_factory=set)  # attributes written as <Rating>
    datetimes: set[str] = field(default_factory=set)  # attributes written as <DateTime>
    values: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # image-level value controls: type, choices
    multi_values: set[str] = field(default_factory=set)  # image-level choices controls with several choices
    kp_used: dict[str, list[str]] = field(default_factory=dict)  # class -> labels of its keypoints with a parent
    kp_parents: dict[str, list[str]] = field(default_factory=dict)  # keypoint control -> the classes they are of

    def use(self, tag: str, name: str, label: str) -> None:
        labels = self.regions.setdefault((tag, name), [])
        if label not in labels:
            labels.append(label)


def _lose(report: ExportReport, key: str, n: int | bool) -> None:
    if n:
        report.lost[key] += int(n)


def _has_geometry(a: Annotations, r: int) -> bool:
    assert a.box is not None
    return bool(not np.isnan(a.box[r, 0]) or (a.polygon is not None and a.polygon[r])
                or (a.mask is not None and a.mask[r] is not None)
                or (a.keypoints is not None and np.any(np.nan_to_num(a.keypoints[r, :, 2]) > 0)))


def _pct(v: float, size: int) -> float:
    """Pixels as percent of ``size``, rounded to 10 decimals where that moves them by at most 1e-10 pixels: the
    reader's pixels (rounded to 9 decimals) come back, and 25 stays 25 instead of 24.999999999999996."""
    p = float(v) / size * 100.0
    q = round(p, 10)
    return q if abs(q - p) * size <= 1e-8 else p


class _Writer:
    def __init__(self, ds: Dataset, report: ExportReport) -> None:
        self.ds, self.report, self.ctl = ds, report, _Controls()
        self.specs = {a.name: a for a in ds.schema.attributes}
        held = ds.info.get("labelstudio")
        self.held: dict[str, Any] = held if isinstance(held, dict) else {}
        self.image_key = str(self.held.get("image_key") or "image")
        try:  # the control tags of the labeling config read: result types of attributes, keypoint control
            tags = {k: t for k, (t, _) in controls(self.held["label_config"])[0].items()} \
                if isinstance(self.held.get("label_config"), str) else {}
        except (ET.ParseError, ValueError):
            tags = {}
        self.tags = tags
        kp = [k for k, t in tags.items() if t == "keypointlabels"]
        self.kp_name = kp[0] if len(kp) == 1 else "keypoint"
        self.values = ValueWriter(ds, report.lost, self.ctl.values, self.ctl.multi_values, self.ctl.to_names)
        self.unsized: str | None = None  # the first image whose size the file can't hold, for the note

    def region(self, r: int, rid: str, w: int, h: int, to: str) -> list[dict[str, Any]]:
        a, name = self.ds.annotations, self.ds.schema.names[self.ds.annotations.label[r]]
        assert a.box is not None
        ex = {k: v[r] for k, v in a.extra.items()}
        polys = [np.asarray(p, np.float64) for p in (a.polygon[r] or [])] if a.polygon is not None else []
        mask = a.mask[r] if a.mask is not None else None
        box = a.box[r]
        base = {"id": rid, "to_name": to, "original_width": w, "original_height": h, "image_rotation": 0}
        fn = str(ex.get("ls_from_name") or "")
        rot, cvat_rot = float(ex.get("ls_rotation") or 0.0), ex.get("cvat_rotation")
        if cvat_rot:
            if not rot and not polys and mask is None and not np.isnan(box[0]):
                # CVAT's rotated box turns about its centre, Label Studio's rectangle about its top-left corner
                box, rot = np.asarray(move_rotation_pivot(box, float(cvat_rot), to_center=False)), float(cvat_rot)
            else:
                _lose(self.report, "extra.cvat_rotation", 1)
        ellipse = ellipse_params(polys[0], rot) if len(polys) == 1 and ex.get("ls_shape") == "ellipse" else None
        if ellipse is not None:
            cx, cy, rx, ry = ellipse
            _lose(self.report, "mask", mask is not None and M.compress(mask)["counts"] != M.from_polygons(
                [p.tolist() for p in polys], h, w)["counts"])
            _lose(self.report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, ellipse_box(*ellipse, rot))))
            value: dict[str, Any]
            tag, rtype, value = "EllipseLabels", "ellipselabels", {
                "x": _pct(cx, w), "y": _pct(cy, h), "radiusX": _pct(rx, w), "radiusY": _pct(ry, h), "rotation": rot}
        elif polys:
            xy = polys[0].reshape(-1, 2)
            _lose(self.report, "polygon_parts", len(polys) > 1)
            _lose(self.report, "mask", mask is not None and M.compress(mask)["counts"] != M.from_polygons(
                [p.tolist() for p in polys], h, w)["counts"])
            _lose(self.report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, M.polygon_box(
                [p.tolist() for p in polys]))))
            tag, rtype, value = "PolygonLabels", "polygonlabels", {
                "points": [[_pct(x, w), _pct(y, h)] for x, y in xy], "closed": True}
        elif mask is not None and [int(x) for x in mask["size"]] != [h, w]:
            _lose(self.report, "mask_size", 1)
            return []
        elif mask is not None:
            _lose(self.report, "box", bool(not np.isnan(box[0]) and not np.allclose(box, M.to_box([mask])[0])))
            tag, rtype, value = "BrushLabels", "brushlabels", {"format": "rle", "rle": _brush_encode(M.decode(mask))}
        elif not np.isnan(box[0]):
            tag, rtype = "RectangleLabels", "rectanglelabels"
            value = {"x": _pct(box[0], w), "y": _pct(box[1], h), "width": _pct(box[2] - box[0], w),
                     "height": _pct(box[3] - box[1], h), "rotation": rot}
        else:
            return []
        if not fn or any(n == fn and t != tag for t, n in self.ctl.regions):
            fn = {"PolygonLabels": "polygon", "BrushLabels": "brush", "RectangleLabels": "label",
                  "EllipseLabels": "ellipse"}[tag]
        self.ctl.use(tag, fn, name)
        value[rtype] = [name]
        return [merge({**base, "type": rtype, "from_name": fn, "value": value}, ex.get("ls_result"))]

    def keypoints(self, r: int, rid: str, w: int, h: int, to: str, parent: bool) -> list[dict[str, Any]]:
        a, ds = self.ds.annotations, self.ds
        if a.keypoints is None:
            return []
        kp, cls = a.keypoints[r], ds.schema.classes[a.label[r]]
        vis = np.nan_to_num(kp[:, 2])
        if not np.any(vis > 0):
            return []
        _lose(self.report, "keypoint_visibility", int(np.sum(vis == 1)))
        if not parent:
            _lose(self.report, "keypoint_grouping", int(np.sum(vis > 0)) > 1)
        held = a.extra["ls_result"][r] if "ls_result" in a.extra else None
        kept: dict[str, Any] = held if isinstance(held, dict) else {}
        points: dict[str, Any] = kept["keypoints"] if parent and isinstance(kept.get("keypoints"), dict) else {}
        fn = str(a.extra["ls_from_name"][r] or "") if "ls_from_name" in a.extra and not parent else ""
        out = []
        for j in np.flatnonzero(vis > 0).tolist():
            label = (cls.keypoints[j] if len(cls.keypoints) > j else f"{cls.name}_{j}") if parent else cls.name
            own: dict[str, Any] = points[label] if isinstance(points.get(label), dict) else kept if not parent else {}
            name = str(own.get("from_name") or fn or self.kp_name) if parent else fn or self.kp_name
            self.ctl.use("KeyPointLabels", name, label)
            if parent:  # what the labeling config and the keypoint names lost are made from
                for got, value in ((self.ctl.kp_used.setdefault(cls.name, []), label),
                                   (self.ctl.kp_parents.setdefault(name, []), cls.name)):
                    if value not in got:
                        got.append(value)
            res = {"id": str(own["id"]) if parent and own.get("id") else f"{rid}_k{j}" if parent or j else rid,
                   "type": "keypointlabels", "from_name": name, "to_name": to, "original_width": w,
                   "original_height": h, "image_rotation": 0,
                   "value": {"x": _pct(kp[j, 0], w), "y": _pct(kp[j, 1], h), "width": 0.5,
                             "keypointlabels": [label]}}
            if parent:
                res["parentID"] = rid
            out.append(merge(res, own))
        return out

    def attributes(self, r: int, rid: str, to: str, region: bool) -> list[dict[str, Any]]:
        out = []
        for name, col in self.ds.annotations.attributes.items():
            v = col[r]
            if v is None:
                continue
            if not region:
                _lose(self.report, "attributes", 1)
                continue
            spec = self.specs.get(name)  # built only when the schema has none (validated: 3 of 27 s at 30k images)
            if spec is None:
                spec = AttributeDef(name, type="bool" if isinstance(v, bool | np.bool_) else
                                    "number" if isinstance(v, int | float) else "text")
            self.ctl.attributes.setdefault(name, spec)
            value: dict[str, Any]
            num, _ = json_value(v)
            if spec.type in ("bool", "enum"):
                rtype, value = "choices", {"choices": [("true" if v else "false") if spec.type == "bool" else str(v)]}
            elif spec.type == "number" and self.tags.get(name) == "rating":
                self.ctl.ratings.add(name)
                rtype, value = "rating", {"rating": num if isinstance(num, int) else float(v)}
            elif spec.type == "number":
                rtype, value = "number", {"number": num if isinstance(num, int) else float(v)}
            elif self.tags.get(name) == "datetime":
                self.ctl.datetimes.add(name)
                rtype, value = "datetime", {"datetime": str(v)}
            else:
                rtype, value = "textarea", {"text": [str(v)]}
            res = {"id": rid, "type": rtype, "from_name": name, "to_name": to, "value": value}
            kept = self.ds.annotations.extra["ls_result"][r] if "ls_result" in self.ds.annotations.extra else None
            kept = kept.get("attributes") if isinstance(kept, dict) else None
            out.append(merge(res, kept.get(name) if isinstance(kept, dict) else None))
        return out

    def task(self, i: int, url_prefix: str) -> dict[str, Any]:
        ds, a = self.ds, self.ds.annotations
        assert a.source is not None and a.iscrowd is not None
        w, h = int(ds.images.width[i]), int(ds.images.height[i])
        s = ds.image_slices()[i:i + 2]
        groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
        meta: dict[tuple[str, Any], dict[str, Any]] = {}
        tags: dict[tuple[tuple[str, Any], str, str], list[str]] = {}
        used: set[str] = set()
        tag_ids: dict[tuple[tuple[str, Any], str, str], tuple[str, Any]] = {}
        col = ds.images.extra.get("ls_annotations")
        heads = col[i] if col is not None and isinstance(col[i], dict) else {}
        held = {kind: {h.get("id") for h in heads.get(kind + "s") or [] if isinstance(h, dict)}
                for kind in ("annotation", "prediction")}
        for r in range(s[0], s[1]):
            ex = {k: v[r] for k, v in a.extra.items()}
            src = str(a.source[r])
            pred = src in ("model", "pseudo")
            aid, kind = json_value(ex.get("ls_annotation_id"))[0], "prediction" if pred else "annotation"
            key = (kind + "#", aid) if isinstance(aid, int | str) and aid in held[kind] else (
                ("prediction", ex.get("ls_model_version")) if pred else (
                    "annotation", None if a.annotator is None else a.annotator[r]))
            meta.setdefault(key, {"ids": set(), "scores": []})["ids"].add(ex.get("ls_annotation_id"))
            score = float(a.score[r]) if a.score is not None else math.nan
            _lose(self.report, "score", not pred and math.isfinite(score))
            _lose(self.report, "source", src in ("pseudo", "synthetic"))
            _lose(self.report, "iscrowd", bool(a.iscrowd[r]))
            _lose(self.report, "annotator", pred and a.annotator is not None and a.annotator[r] is not None)
            rid = str(ex.get("ls_result_id") or "")
            rid = rid if rid and rid not in used else f"m{r}"
            used.add(rid)
            to = str(ex.get("ls_to_name") or "image")
            self.ctl.to_names.add(to)
            self.report.n_annotations += 1
            if w <= 0 or h <= 0:
                if _has_geometry(a, r):
                    _lose(self.report, "unknown_size", 1)
                    continue
            results = self.region(r, rid, w, h, to)
            results += self.keypoints(r, rid, w, h, to, parent=bool(results))
            if not results:
                fn = str(ex.get("ls_from_name") or "choice")
                tags.setdefault((key, fn, to), []).append(ds.schema.names[a.label[r]])
                tag_ids.setdefault((key, fn, to), (rid, ex.get("ls_result")))
                _lose(self.report, "attributes", sum(c[r] is not None for c in a.attributes.values()))
            else:
                results += self.attributes(r, results[0]["id"], to, region=True)
            if pred and math.isfinite(score):
                inherited = isinstance(ex.get("ls_result"), dict) and ex["ls_result"].get("_score") == "prediction"
                for res in results if not inherited else ():
                    res["score"] = score
                meta[key]["scores"].append(score)
            groups.setdefault(key, []).extend(results)
        for (key, fn, to), labels in tags.items():
            self.ctl.multiple |= len(labels) > 1
            known = self.ctl.choices.setdefault(fn, [])
            known.extend(x for x in labels if x not in known)
            rid, kept = tag_ids[(key, fn, to)]
            groups.setdefault(key, []).append(merge({"id": rid, "type": "choices", "from_name": fn, "to_name": to,
                                                     "value": {"choices": labels}}, kept))
        data = task_data(ds, i, self.image_key, self._url(i, url_prefix), self.report.lost, self.values.columns)
        task: dict[str, Any] = {"data": data, "annotations": [], "predictions": []}
        tid = ds.images.extra.get("ls_task_id")
        if tid is not None and int(tid[i]) >= 0:
            task["id"] = int(tid[i])
        for kind in ("annotation", "prediction"):  # as read, in order: their keys and the results rows don't hold
            for h in heads.get(kind + "s") or []:
                if isinstance(h, dict):
                    rows = groups.pop((kind + "#", h.get("id")), [])
                    kept = [self.values.fill(x, i) for x in h.get("result") or []]  # image-level values: columns
                    out = {**h, "result": rows + [x for x in kept if x is not None]}
                    if isinstance(out.get("completed_by"), str):  # JSON-MIN's annotator: what the import takes
                        by = out["completed_by"]
                        out["completed_by"] = int(by) if by.isdigit() else {"email": by}
                    task[kind + "s"].append(out)
        rest = ds.images.extra.get("ls_task")
        if rest is not None and isinstance(rest[i], dict):
            task.update({k: v for k, v in rest[i].items() if k not in task})
        for key, results in groups.items():
            ids = meta[key]["ids"]
            gid = next(iter(ids)) if len(ids) == 1 else None
            if key[0] == "prediction":
                pred_d: dict[str, Any] = {"model_version": key[1] or "maslow", "result": results}
                if meta[key]["scores"]:
                    pred_d["score"] = float(np.mean(meta[key]["scores"]))
                if gid is not None:
                    pred_d["id"] = gid
                task["predictions"].append(pred_d)
            else:
                by = key[1]
                ann: dict[str, Any] = {"result": results, "was_cancelled": False, "ground_truth": False}
                if gid is not None:
                    ann["id"] = gid
                if by is not None:  # Label Studio's import takes a member id or {"email": ...}, never a bare string
                    ann["completed_by"] = int(by) if str(by).isdigit() else {"email": str(by)}
                task["annotations"].append(ann)
        new = self.values.missing(i)  # values set in maslow, or of annotations read without an id
        if new:
            into = next((x for x in task["annotations"] if not x.get("was_cancelled")), None)
            if into is None:
                task["annotations"].append({"result": new, "was_cancelled": False, "ground_truth": False})
            else:
                into["result"] = list(into["result"]) + new
        self._size_kept(i, task)
        return task

    def _size_kept(self, i: int, task: dict[str, Any]) -> None:
        """Label Studio keeps an image's size on its regions' results only (``original_width``/``original_height``):
        the size of an image without one (no region; tags and values carry none) is read back from the image file.
        Counted lost (``image_size``) where there is no such file under the dataset's root to read it from."""
        ds = self.ds
        if min(int(ds.images.width[i]), int(ds.images.height[i])) <= 0 or any(
                isinstance(r, dict) and "original_width" in r for kind in ("annotations", "predictions")
                for g in task[kind] if isinstance(g, dict) for r in g.get("result") or []):
            return
        if ds.root is not None and (Path(ds.root) / str(ds.images.path[i])).is_file():
            return
        _lose(self.report, "image_size", 1)
        if self.unsized is None:
            self.unsized = f"{ds.images.path[i]} {int(ds.images.width[i])}x{int(ds.images.height[i])}"

    def _url(self, i: int, url_prefix: str) -> str:
        urls = self.ds.images.extra.get("ls_url")
        if urls is not None and urls[i]:
            return str(urls[i])
        return url_prefix + urllib.parse.quote(str(self.ds.images.path[i]), safe="/")


def config_xml(ds: Dataset, ctl: _Controls, image_key: str = "image") -> str:
    view = ET.Element("View")
    for to in sorted(ctl.to_names or {"image"}):
        ET.SubElement(view, "Image", {"name": to, "value": f"${image_key}"})
    to = sorted(ctl.to_names or {"image"})[0]
    regions, choices = dict(ctl.regions), {k: list(v) for k, v in ctl.choices.items()}
    placed = {x for (t, _), labels in regions.items() if t != "KeyPointLabels" for x in labels}
    placed |= {x for labels in choices.values() for x in labels} | set(regions.get(("KeyPointLabels", "keypoint"), []))
    missing = [c for c in ds.schema.classes if c.name not in placed]
    tag_only = [c.name for c in missing if c.label_types == ("tag",)]
    if tag_only:
        choices.setdefault(next(iter(choices), "choice"), []).extend(tag_only)
    others = [c.name for c in missing if c.name not in tag_only]
    if others or not (regions or choices):
        regions.setdefault(next((k for k in regions if k[0] != "KeyPointLabels"), ("RectangleLabels", "label")), [])
    colors = {c.name: c.color for c in ds.schema.classes}
    # keypoint labels in schema order, every name of the classes whose keypoints a control holds (the reader takes
    # a class's names in this order, and the unplaced ones where one class has keypoints): then class names
    rank = {n: i for i, n in enumerate(dict.fromkeys([k for c in ds.schema.classes for k in c.keypoints]
                                                     + list(ds.schema.names)))}
    kps = {c.name: c.keypoints for c in ds.schema.classes}
    for (tag, name), labels in regions.items():
        if tag == "KeyPointLabels":
            labels = list(dict.fromkeys(labels + [k for c in ctl.kp_parents.get(name, []) for k in kps[c]]))
            labels.sort(key=lambda n: rank.get(n, len(rank)))
        else:
            labels = [c.name for c in ds.schema.classes if c.name in labels or c.name in others]
            others = []
        el = ET.SubElement(view, tag, {"name": name, "toName": to})
        for lab in labels:
            ET.SubElement(el, "Label", {"value": lab, **({"background": colors[lab]} if colors.get(lab) else {})})
    for name, labels in choices.items():
        el = ET.SubElement(view, "Choices", {"name": name, "toName": to,
                                            "choice": "multiple" if ctl.multiple else "single"})
        for lab in [c.name for c in ds.schema.classes if c.name in labels]:
            ET.SubElement(el, "Choice", {"value": lab})
    for name, spec in ctl.attributes.items():
        attrs = {"name": name, "toName": to, "perRegion": "true"}
        if spec.type in ("bool", "enum"):
            el = ET.SubElement(view, "Choices", attrs)
            for v in ("true", "false") if spec.type == "bool" else spec.values:
                ET.SubElement(el, "Choice", {"value": v})
        else:
            tag = "Rating" if name in ctl.ratings else "Number" if spec.type == "number" else \
                "DateTime" if name in ctl.datetimes else "TextArea"
            ET.SubElement(view, tag, attrs)
    for name, (rtype, labels) in ctl.values.items():  # image-level values
        el = ET.SubElement(view, TAG[rtype], {"name": name, "toName": to, **(
            {"choice": "multiple" if name in ctl.multi_values else "single"} if rtype == "choices" else {})})
        for lab in labels:
            ET.SubElement(el, "Choice", {"value": lab})
    ET.indent(view, "  ")
    return ET.tostring(view, encoding="unicode") + "\n"


def config_for(ds: Dataset, ctl: _Controls, notes: list[str]) -> str:
    """The labeling config to write: the one read (``info["labelstudio"]["label_config"]``) while it declares
    every control, label and object written, else one made from the controls used (with a note why)."""
    held = ds.info.get("labelstudio")
    held = held if isinstance(held, dict) else {}
    made = config_xml(ds, ctl, str(held.get("image_key") or "image"))
    text = held.get("label_config")
    if not isinstance(text, str):
        return made
    why = misfit(text, ctl.regions, ctl.choices, ctl.attributes, ctl.to_names or {"image"}, ctl.values)
    if why is None:
        return text
    notes.append(f"the labeling config read with the data was not written back: {why}; a new one was made")
    return made


def export(ds: Dataset, url_prefix: str, dst: str) -> tuple[Iterator[dict[str, Any]], _Controls, ExportReport]:
    """The tasks of ``ds``, one per image, made as they are taken; the controls they use and the report are
    complete once the tasks are exhausted."""
    report = ExportReport(path=dst, format="labelstudio", n_images=ds.n_images)
    wr = _Writer(ds, report)

    def tasks() -> Iterator[dict[str, Any]]:
        for i in range(ds.n_images):
            yield wr.task(i, url_prefix)
        for c in ds.schema.classes:
            _lose(report, "class_skeleton", bool(c.skeleton))
            _lose(report, "class_id", c.id is not None)
            _lose(report, "supercategory", bool(c.supercategory))
        for k, col in ds.annotations.extra.items():
            if k not in EXTRA and k != "cvat_rotation":  # cvat_rotation: counted per row where it can't be written
                _lose(report, f"extra.{k}", int(sum(v is not None for v in col.tolist())))
        if ds.images.split is not None:
            _lose(report, "split", int(sum(bool(x) for x in ds.images.split.tolist())))
        if report.lost.get("image_size"):
            report.notes.append(f"image sizes not written: {report.lost['image_size']} images have no region, and "
                                "Label Studio keeps a size only on region results (original_width/original_height); "
                                f"their files are not under the dataset's root to read it back from (first: "
                                f"{wr.unsized}): read back as 0 x 0 (unknown) unless images_root finds them")

    return tasks(), wr.ctl, report


def dump_tasks(tasks: Iterable[dict[str, Any]], dst: Path, *, batch: int = 64, tick: Ticks | None = None) -> None:
    """Write a task list to ``dst`` (the caller's temp: ``write`` puts it in place atomically, with its config) as
    ``dump_json(list(tasks), dst, indent=True)`` does, the same bytes, a batch of tasks at a time (the whole list
    is never built): each batch is dumped as an indented array and its elements are written between the file's
    brackets. ``tick`` is told the tasks written after each batch."""
    import orjson

    opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_INDENT_2
    with open(dst, "wb") as f:
        it, sep, done = iter(tasks), b"[\n", 0
        while chunk := list(itertools.islice(it, batch)):
            try:
                data = orjson.dumps(chunk, option=opts)
            except orjson.JSONEncodeError:  # integers beyond 64 bits: the json module, as dump_json
                data = json.dumps(chunk, indent=2, ensure_ascii=False).encode("utf-8")
            f.write(sep)
            f.write(memoryview(data)[2:-2])  # b"[\n" + elements + b"\n]"
            sep = b",\n"
            done += len(chunk)
            if tick is not None:
                tick(done)
        f.write(b"[]" if sep == b"[\n" else b"\n]")
    if tick is not None:
        tick.end()


# -- JSON-MIN (label_studio_sdk.converter: Converter.convert_to_json_min, utils.prettify_result) -----------------
#: Keys a JSON-MIN record adds beside the task data and the control names.
_MIN_META = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement", "history",
             "was_cancelled"}
#: Result types JSON-MIN drops; a value dict still holds its label key (``rectanglelabels: [...]``).
_LABEL_KEYS = ("rectanglelabels", "polygonlabels", "keypointlabels", "brushlabels", "choices")


def is_json_min(tasks: list[Any], image_key: str) -> bool:
    """Whether a task list is a JSON-MIN export: records with the image URL at the top, no ``data``."""
    first = next((t for t in tasks if isinstance(t, dict)), None)
    return first is not None and "data" not in first and isinstance(first.get(image_key), str)


def json_min_tasks(records: list[Any], image_key: str, controls: dict[str, str],
                   per_region: set[str]) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """JSON-MIN records (one per annotation) as JSON tasks (one per task id), and the (record, key) pairs that
    can't be read back: per-region controls, whose link to their region JSON-MIN does not keep.

    ``controls`` maps control names of the labeling config to their tag (lower case); a value's type is that tag,
    else the label key it holds. Text values are single choices (``prettify_result``), read with the config only;
    with the config, the keys that name none of its controls are task data.
    """
    tasks: dict[Any, dict[str, Any]] = {}
    skipped: list[tuple[int, str]] = []
    for n, rec in enumerate(records):
        if not isinstance(rec, dict):
            continue
        url, tid = rec.get(image_key), rec.get("id")
        task = tasks.setdefault(tid if tid is not None else (n, url),
                                {"id": tid, "data": {image_key: url}, "annotations": []})
        results: list[dict[str, Any]] = []
        for key, value in rec.items():
            if key in _MIN_META or key == image_key:
                continue
            if key in per_region:
                skipped.append((n, key))
                continue
            ctype = controls.get(key)
            if ctype is None and controls and not any(isinstance(x, dict) and any(k in x for k in _LABEL_KEYS)
                                                      for x in (value if isinstance(value, list) else [value])):
                task["data"].setdefault(key, value)  # no control of the config: task data
                continue
            items = value if isinstance(value, list) else [value]
            for j, item in enumerate(items):
                if isinstance(item, str) and ctype in ("choices", "textarea"):
                    item = {"choices": [item]} if ctype == "choices" else {"text": [item]}
                if not isinstance(item, dict):
                    continue  # task data, or a text value of a control the config does not name
                rtype = ctype or next((k for k in _LABEL_KEYS if k in item), None)
                if rtype is None:
                    continue
                res = {"id": item.get("id") or f"{key}_{j}", "type": rtype, "from_name": key, "to_name": image_key,
                       "value": {k: v for k, v in item.items()
                                 if k not in ("original_width", "original_height", "id", "parentID")}}
                for k in ("original_width", "original_height", "parentID"):
                    if item.get(k) is not None:
                        res[k] = item[k]
                results.append(res)
        if results or rec.get("annotation_id") is not None:
            task["annotations"].append({"id": rec.get("annotation_id"), "completed_by": rec.get("annotator"),
                                        "result": results})
    return list(tasks.values()), skipped
