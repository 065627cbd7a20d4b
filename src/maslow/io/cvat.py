"""CVAT for images 1.1 and CVAT for video 1.1 XML: read and write.

Glossary of the format (as CVAT 2.x dumps it):

- The file is ``annotations.xml``: ``<annotations>``, ``<version>1.1</version>``, a ``<meta>`` holding a
  ``<task>``, ``<project>`` or ``<job>`` with ``<labels>``, then one ``<image id name [subset task_id] width
  height>`` per image (CVAT for images) or one ``<track>`` per track (CVAT for video). ``name`` is the image path;
  ``subset`` (project exports) becomes ``images.split``, ``task_id`` (project exports) ``images.extra
  ["cvat_task_id"]``. Segments (``<segments>``) are CVAT jobs, not splits, and are ignored.
- Shapes are children of ``<image>``: ``<box xtl ytl xbr ybr [rotation]>`` (absolute pixel corners, the same xyxy
  convention as maslow), ``<polygon points="x,y;x,y;...">``, ``<polyline>`` and ``<points>`` (same point list),
  ``<mask rle left top width height>``, ``<ellipse cx cy rx ry [rotation]>``, ``<cuboid xtl1 ytl1 xbl1 ybl1 xtr1
  ytr1 xbr1 ybr1 xtl2 ... ybr2>`` (front face 1, back face 2), ``<skeleton>`` (one ``<points label outside
  occluded points="x,y">`` child per point, labelled by the skeleton's sublabels) and ``<tag>`` (an image-level
  label, no geometry). ``rotation`` is in degrees, clockwise on screen: ``x' = cx + cos*dx - sin*dy``,
  ``y' = cy + sin*dx + cos*dy``.
- Mask RLE (CVAT 2.x): ``rle`` is a comma-separated list of run lengths that alternate background/foreground,
  starting with background, over the ``width`` x ``height`` crop at ``(left, top)``, read row by row
  (C order). It is decoded here into a full-image COCO RLE.
- Every shape has ``label``, ``occluded`` (0/1), ``z_order``, ``source`` (``manual``, ``semi-auto``, ``auto``,
  ``file``...) and optionally ``group_id``; ``<attribute name="...">value</attribute>`` children hold attributes.
- Tracks (CVAT for video): ``<track id label source [group_id]>`` whose children are the shapes above with
  ``frame keyframe outside`` instead of ``label``; a ``<skeleton>`` child's points carry ``keyframe`` too. CVAT's
  export writes every frame of a track (``keyframe="0"`` where it interpolated) and leaves out the interpolated
  frames after an ``outside`` keyframe; the file has no ``<image>``: frames are numbers, and CVAT names a video's
  frames ``frame_{:06d}.PNG``; ``<meta><task>`` gives ``start_frame``, ``stop_frame``, ``frame_filter``
  (``step=N``) and ``original_size``.
- Label specs: ``<label><name><color><type><attributes><attribute><name><input_type><default_value><values>``;
  ``values`` is newline-separated; ``input_type`` checkbox -> bool, select/radio -> enum, number -> number
  (values ``min\\nmax\\nstep``, kept as ``AttributeDef.values``), text -> text. A ``<label>`` with a ``<parent>``
  is a point of that skeleton label: its name is one of the skeleton class's keypoint names, not a class. A
  skeleton label's ``<svg>`` holds CVAT's drawing of it as escaped SVG markup: ``<circle data-node-id
  data-label-name>`` per point, ``<line data-node-from data-node-to>`` per edge; the edges are the class's
  ``skeleton`` (see ``maslow.io._cvat_skeleton``).

Mapping to maslow: ``occluded`` -> the bool attribute ``occluded``; ``source`` manual/semi-auto/file -> ``human``,
auto -> ``model`` (the CVAT value is kept in ``annotations.extra["cvat_source"]``); ``group_id``, ``z_order`` and a
box ``rotation`` are kept in ``annotations.extra`` (``cvat_group_id``, ``cvat_z_order``, ``cvat_rotation``; maslow
boxes are axis-aligned, so a rotated box is reported). Polygons, polylines and masks also get their bounding box
in ``box``; polylines are stored as polygons with ``extra["cvat_shape"] == "polyline"``. A ``<points>`` shape is
one keypoint set (K = its number of points, v = 2, or v = 1 when the shape is occluded); a ``<points>`` shape that
shares label and ``group_id`` with exactly one other shape of the image becomes that shape's keypoints. Polygons
that share label and ``group_id`` are the parts of one object: they become one annotation with several polygons
(and a multi-part polygon is written that way). ``extra["cvat_shape"]`` also marks what maslow holds in its own
columns and writes back: an ellipse (its outline as a 64-point polygon, its exact bounding box, the angle in
``cvat_rotation``), a cuboid (its 8 corners as keypoints in CVAT's order, their bounding box) and a skeleton
(keypoints in the class's point order, v = 0 outside, 1 occluded, 2 visible; no box). Each visible frame of a
track is one annotation of the image with that frame number, with ``extra["cvat_track_id"]`` (-1 for shapes
not from a track) and ``extra["cvat_keyframe"]``.

What ``<meta>`` says that the schema has no place for is kept in ``Dataset.info["cvat"]`` (JSON), for the writer
to give back while it still fits the schema: ``{"task": {"name", "mode"}, "source": <the video's name>, "labels":
{class: {"type": "polyline" | "ellipse" | "cuboid" | ..., "mutable": [attribute, ...], "svg": <the skeleton's
drawing>, "point_colors": {point: colour}}}}``, each key only where the file has it. ``<mutable>True</mutable>``
marks an attribute whose value may change from frame to frame of a track; the writer also declares mutable an
attribute whose value changes within a track (CVAT keeps only the first frame's value of one that is not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import AttributeDef, ClassDef
from maslow.core.tables import Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io._common import Collector, safe_relpath
from maslow.io._cvat_read import SHAPES, Reader, merge_parts, merge_points, unpad
from maslow.io._cvat_rows import Rows, build
from maslow.io._cvat_skeleton import read_edges
from maslow.io._cvat_stream import top_elements
from maslow.io._cvat_tracks import Frames, TrackIndex, check_tasks, read_frames, read_track
from maslow.io._cvat_write import LABEL_TYPE_IN, LABEL_TYPE_OUT, write
from maslow.io.images import image_info
from maslow.io.registry import Progress, warn_issues

_INPUT_TYPE = {"checkbox": "bool", "select": "enum", "radio": "enum", "number": "number", "text": "text"}


# -- reading ---------------------------------------------------------------------------------------------------
def _text(el: Any, tag: str) -> str:
    child = el.find(tag)
    return "" if child is None or child.text is None else child.text.strip()


def _read_meta(meta: Any, col: Collector, src: Path
               ) -> tuple[list[ClassDef], list[AttributeDef], dict[str, set[str]], dict[str, Any]]:
    """Classes (a skeleton's with its points and edges), attribute specs (merged by name), the attribute names
    each label declares, and what ``<meta>`` holds that the schema can't (``Dataset.info["cvat"]``, see the
    module docstring)."""
    classes: list[ClassDef] = []
    specs: dict[str, AttributeDef] = {}
    declared: dict[str, set[str]] = {}
    holder = None if meta is None else next((h for h in meta if h.find("labels") is not None), None)
    kept: dict[str, Any] = {}
    if holder is not None:
        kept["task"] = {k: _text(holder, k) for k in ("name", "mode") if _text(holder, k)}
    if meta is not None and _text(meta, "source"):  # the video a video task was made of
        kept["source"] = _text(meta, "source")
    labels = None if holder is None else holder.find("labels")
    if labels is None:
        return classes, [], declared, kept
    points_of: dict[str, list[str]] = {}
    svgs: dict[str, Any] = {}  # skeleton label -> its <svg>
    per_label: dict[str, dict[str, Any]] = {}
    for lab in labels.findall("label"):
        name = unpad(_text(lab, "name") and lab.find("name").text)  # shapes name it unstripped
        if _text(lab, "parent"):  # a point of a skeleton label: its keypoint name, not a class
            parent = unpad(lab.find("parent").text)
            points_of.setdefault(parent, []).append(name)
            if _text(lab, "color"):
                per_label.setdefault(parent, {}).setdefault("point_colors", {}).setdefault(name, _text(lab, "color"))
            continue
        if not name or name in declared:
            continue
        raw_type = _text(lab, "type")
        ltype = LABEL_TYPE_IN.get(raw_type)
        if raw_type not in ("", "any", "skeleton") and LABEL_TYPE_OUT.get(ltype or "") != raw_type:
            per_label.setdefault(name, {})["type"] = raw_type  # polyline, ellipse, cuboid: no label type of maslow's
        classes.append(ClassDef(name=name, color=_text(lab, "color"), label_types=(ltype,) if ltype else ()))
        declared[name] = set()
        if lab.find("svg") is not None:
            svgs[name] = lab.find("svg")
            if not len(svgs[name]) and (svgs[name].text or "").strip():  # CVAT's drawing, as it exports it
                per_label.setdefault(name, {})["svg"] = svgs[name].text
        for a in lab.findall("attributes/attribute"):
            aname = _text(a, "name")
            if not aname:
                continue
            declared[name].add(aname)
            if _text(a, "mutable").lower() == "true":  # its value may change from frame to frame of a track
                mutable = per_label.setdefault(name, {}).setdefault("mutable", [])
                if aname not in mutable:
                    mutable.append(aname)
            atype = _INPUT_TYPE.get(_text(a, "input_type"), "text")
            vals = tuple(v.strip() for v in _text(a, "values").split("\n") if v.strip())
            vals = vals if atype in ("enum", "number") else ()
            if atype == "enum" and len(set(vals)) < len(vals):  # an allowed value listed twice: once is enough
                again = next(v for j, v in enumerate(vals) if v in vals[:j])
                vals = tuple(dict.fromkeys(vals))
                col.add("cvat_repeated_value", f"<values> of attribute {aname!r} must list each value once, got "
                        f"{again!r} again; read as {list(vals)}", file=src, record=f"label {name!r}",
                        field=aname)
            raw_default = _text(a, "default_value")
            default: Any = (raw_default.lower() == "true") if atype == "bool" else (raw_default or None)
            old = specs.get(aname)
            if old is None:
                specs[aname] = AttributeDef(aname, type=atype, values=vals, classes=(name,), default=default)
            else:
                merged = old.values + tuple(v for v in vals if v not in old.values)
                specs[aname] = AttributeDef(aname, type=old.type, values=merged, classes=(*old.classes, name),
                                            default=old.default)
    for k, c in enumerate(classes):  # a skeleton label: its points, and its edges from the <svg>
        points = points_of.get(c.name, [])
        if len(set(points)) < len(points):  # shapes name their points: a repeated name is the same point
            again = next(p for j, p in enumerate(points) if p in points[:j])
            points = points_of[c.name] = list(dict.fromkeys(points))
            col.add("cvat_repeated_point", f"skeleton label {c.name!r} must name each point once, got {again!r} "
                    f"again; read as {points}", file=src, record=f"label {c.name!r}", field="points")
        if c.name in svgs:
            classes[k] = replace(c, keypoints=tuple(points), skeleton=read_edges(svgs[c.name], c.name, points, col, src))
        elif points:
            classes[k] = replace(c, keypoints=tuple(points))
    n_classes = len(classes)
    out = [AttributeDef(a.name, a.type, a.values, classes=() if len(a.classes) == n_classes else a.classes,
                        default=a.default) for a in specs.values()]
    if per_label:
        kept["labels"] = per_label
    return classes, out, declared, kept


def parse(src: Path, *, images_root: Path | None = None, strict: bool = False,
          progress: Progress | None = None) -> tuple[Dataset, Report]:
    """Read a CVAT for images 1.1 or CVAT for video 1.1 XML file.

    The file is streamed: one ``<image>`` or ``<track>`` is in memory at a time (read again for the tracks, and
    for the images when ``<meta>`` comes after them).

    Args:
        src: the ``annotations.xml`` file.
        images_root: base folder of the images; default ``src.parent / "images"`` when it exists (CVAT's
            dataset export layout), else ``src.parent``.
        strict: raise FormatError on the first error or warning instead of reporting it.
        progress: called as ``progress(done, total)`` over the bytes read: ``total`` is the file's size times the
            times it is read (twice for a file with tracks, known once the first reading ends).

    Returns:
        The Dataset and the Report of import findings (unknown labels, attribute values outside the declared
        values, degenerate polygons, swapped box corners, rotated boxes, duplicate image ids/names, what a
        skeleton or track could not hold, elements under ``<annotations>`` that are not CVAT's, ...).

    Raises:
        FormatError: malformed XML (names the image or track it is in), a missing or non-numeric coordinate
            (names the image or track and the attribute).
    """
    src = Path(src)
    root = Path(images_root) if images_root is not None else (
        src.parent / "images" if (src.parent / "images").is_dir() else src.parent)
    doc = _Document(src, Collector(strict=strict), root)
    read = _Bytes(progress, src)
    with top_elements(src, on_read=read.on_read) as elements:
        for el, line in elements:
            doc.first_pass(el, line)
            read.expect(1 + doc.late + bool(doc.tracks.n))  # a second reading: known at the first track
    if doc.reader is None:  # no <meta>
        doc.meta(None)
    if doc.late:  # an <image> came before <meta>: read the images now that the labels are known
        with top_elements(src, on_read=read.again()) as elements:
            for el, _ in elements:
                if el.tag == "image":
                    doc.image(el)
    if doc.tracks.n:
        doc.track_frames()
        with top_elements(src, on_read=read.again()) as elements:
            for el, _ in elements:
                if el.tag == "track":
                    doc.track(el)
    read.end()
    return doc.dataset()


class _Bytes:
    """``progress(done, total)`` over the bytes read: ``total`` is the file's size times the readings it takes,
    raised when another reading turns out to be needed; ``done`` only grows. About 100 calls per reading."""

    def __init__(self, progress: Progress | None, src: Path) -> None:
        self.progress = progress
        self.size = src.stat().st_size if progress is not None and src.is_file() else 0
        self.base, self.total, self.due, self.done = 0, self.size, 0, 0
        self.step = max(self.size // 100, 1)
        self._call(0)

    def _call(self, done: int) -> None:
        if self.progress is not None:
            self.done = done
            self.progress(done, self.total)
            self.due = done + self.step

    def on_read(self, n: int) -> None:
        done = self.base + min(n, self.size)
        if done >= self.due and self.progress is not None:
            self._call(done)

    def expect(self, readings: int) -> None:
        if readings * self.size > self.total:
            self.total = readings * self.size
            self._call(self.done)

    def again(self) -> Callable[[int], None]:
        """The ``on_read`` of the next reading."""
        self.base += self.size
        return self.on_read

    def end(self) -> None:
        if self.done != self.total:
            self._call(self.total)


class _ImageRows:
    """The image table as it is read: one row per <image>, then per track frame without one."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.widths: list[int] = []
        self.heights: list[int] = []
        self.splits: list[str] = []
        self.ids: list[int] = []
        self.task_ids: list[int] = []  # a project export's task of each image (-1: not given)
        self.index: dict[int, int] = {}  # image id (CVAT's frame number) -> its first row
        self.by_path: dict[str, int] = {}  # path -> its first row

    def add(self, img_id: int, path: str, w: int, h: int, split: str, task_id: int = -1) -> None:
        self.task_ids.append(task_id)
        self.index.setdefault(img_id, len(self.ids))
        self.by_path.setdefault(path, len(self.ids))
        self.ids.append(img_id)
        self.paths.append(path)
        self.widths.append(w)
        self.heights.append(h)
        self.splits.append(split)


class _Document:
    """What is known of the file as it streams by: <meta>, the image table, the annotation rows."""

    def __init__(self, src: Path, col: Collector, root: Path) -> None:
        self.src, self.col, self.root = src, col, root
        self.reader: Reader | None = None
        self.classes: list[ClassDef] = []
        self.specs: dict[str, AttributeDef] = {}
        self.kept: dict[str, Any] = {}  # Dataset.info["cvat"]
        self.frames = Frames(None, 1, None)
        self.late = False  # an <image> came before <meta>
        self.im = _ImageRows()
        self.rows = Rows(())
        self.tracks = TrackIndex()
        self.n_images = 0  # <image> elements read
        self.n_tracks = 0  # <track> elements read
        self.known = self.frames
        self.size_of: dict[int, tuple[int, int]] = {}
        self.seen: dict[int, int] = {}

    def first_pass(self, el: Any, line: int) -> None:
        if el.tag == "meta" and self.reader is None:
            self.meta(el)
        elif el.tag == "image":
            self.late = self.late or self.reader is None
            if not self.late:
                self.image(el)
        elif el.tag == "track":
            self.tracks.note(el)
        elif el.tag != "version":  # CVAT writes nothing else under <annotations>
            self.stray(el, line)

    def stray(self, el: Any, line: int) -> None:
        """Report a child of <annotations> that is not CVAT's: a shape outside any <image> or <track>, a second
        <meta>, anything else."""
        record = f"<{el.tag}> at line {line}"
        if el.tag in SHAPES:
            frame = f" (frame {el.get('frame')})" if el.get("frame") is not None else ""
            self.col.add("unsupported_shape", f"<{el.tag}>{frame} directly under <annotations> is in no <image> or "
                         "<track>; it was not imported", severity="error", file=self.src, record=record)
        elif el.tag == "meta":
            self.col.add("unknown_element", "a second <meta>: only the first is read", file=self.src, record=record)
        else:
            self.col.add("unknown_element", f"<{el.tag}> under <annotations> is not a CVAT element; it was not "
                         "imported", file=self.src, record=record)

    def meta(self, meta: Any) -> None:
        self.classes, attr_list, declared, self.kept = _read_meta(meta, self.col, self.src)
        self.specs = {a.name: a for a in attr_list}
        self.reader = Reader(self.src, self.col, self.specs, declared,
                             {c.name: list(c.keypoints) for c in self.classes if c.keypoints})
        self.frames = read_frames(meta)
        self.rows = Rows(c.name for c in self.classes)

    def image(self, el: Any) -> None:
        assert self.reader is not None
        reader, col, src, root, im = self.reader, self.col, self.src, self.root, self.im
        i, self.n_images = self.n_images, self.n_images + 1
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
        if img_id in im.index:
            col.add("duplicate_id", f"image id {img_id} repeats image #{im.index[img_id]}", severity="error",
                    file=src, record=record, field="id", image=i)
        if path in im.by_path:
            col.add("duplicate_image", f"image name {path!r} repeats image #{im.by_path[path]}",
                    severity="error", file=src, record=record, field="name", image=i)
        if el.get("width") is not None and el.get("height") is not None:
            w, h = (reader.size(el, k, record) for k in ("width", "height"))
        else:
            w, h = _size_on_disk(root / path)
        raw_task = el.get("task_id")
        if raw_task is not None and not raw_task.strip().isdigit():
            raise FormatError(f"<image> task_id must be an integer >= 0, got {raw_task!r}", path=src, record=record,
                              field="task_id")
        im.add(img_id, path, w, h, el.get("subset", ""), -1 if raw_task is None else int(raw_task))
        shapes = []
        for k, child in enumerate(c for c in el if c.tag != "attribute"):
            if child.tag not in SHAPES:
                col.add("unsupported_shape", f"<{child.tag}> is not supported; it was not imported",
                        severity="error", file=src, record=f"{record} <{child.tag}> #{k}", image=i)
                continue
            s = reader.shape(child, f"{record} <{child.tag}> #{k}", h, w)
            if s is not None:
                shapes.append(s)
        for s in merge_points(merge_parts(shapes)):
            self.rows.add(len(im.ids) - 1, s)

    def track_frames(self) -> None:
        """Frames the tracks name without an <image> become images named as CVAT names video frames, and so do
        every frame <meta> declares when the file has no <image> at all."""
        im, frames = self.im, self.frames
        wanted = self.tracks.images(frames.frames)
        if not im.ids and frames.frames is not None:
            wanted |= set(frames.frames)
        for frame in sorted(wanted - set(im.index)):
            path = f"frame_{frame:06d}.PNG"
            w, h = frames.size if frames.size else _size_on_disk(self.root / path)
            im.add(frame, path, w, h, self.tracks.subset.get(frame, ""))
        self.size_of = {f: (im.heights[i], im.widths[i]) for f, i in im.index.items()}
        self.known = Frames(tuple(sorted(im.index)), frames.step, frames.size)  # the file's frames, gaps among them
        check_tasks(self.tracks.task_ids, self.col, self.src)

    def track(self, el: Any) -> None:
        assert self.reader is not None
        t, self.n_tracks = self.n_tracks, self.n_tracks + 1
        for tf in read_track(t, el, self.reader, self.col, self.src, self.known, self.size_of, self.seen):
            if tf.shape is not None:
                self.rows.add(self.im.index[tf.frame], tf.shape)

    def dataset(self) -> tuple[Dataset, Report]:
        assert self.reader is not None
        im = self.im
        images = Images(path=obj_array(im.paths), width=np.asarray(im.widths, np.int64),
                        height=np.asarray(im.heights, np.int64), split=obj_array(im.splits),
                        extra={"cvat_id": np.asarray(im.ids, np.int64),
                               **({"cvat_task_id": np.asarray(im.task_ids, np.int64)} if any(
                                   t >= 0 for t in im.task_ids) else {})})
        ds, report = build(self.src, self.rows, self.classes, self.specs, self.col, self.root, self.reader.kp_names,
                           images)
        kept = {k: v for k, v in self.kept.items() if v}
        return (ds.replace(info={**ds.info, "cvat": kept}) if kept else ds), report


def _size_on_disk(path: Path) -> tuple[int, int]:
    try:
        info = image_info(path)
    except FormatError:
        return 0, 0
    return info.width, info.height


def read_cvat(src: str | Path, **options: Any) -> Dataset:
    """Read a CVAT for images or CVAT for video 1.1 XML file (see ``parse``); a MaslowWarning summarises import
    findings."""
    return warn_issues(*parse(Path(src), **options), source=src)



write_cvat = write

__all__ = ["parse", "read_cvat", "write", "write_cvat"]
