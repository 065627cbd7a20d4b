"""YOLO txt labels: detect, segment and pose, in the Ultralytics and the darknet layouts; classify folders.

Glossary:

- *label file*: one ``.txt`` per image, one object per line, values separated by spaces, class id first.
  An image without a label file (or with an empty one) is a background image: it has no objects.
- *normalised*: every coordinate is divided by the image width (x) or height (y), so it lies in [0, 1].
- *detect* line: ``cls cx cy w h``: the box centre and size.
- *segment* line: ``cls x1 y1 x2 y2 ...``: one polygon of at least 3 points; its box is the points' extent.
- *pose* line: ``cls cx cy w h px1 py1 pv1 ...`` with ``kpt_shape: [K, 3]`` in data.yaml (or ``px py`` pairs
  with ``[K, 2]``); ``pv`` is COCO visibility: 0 not labelled, 1 labelled but hidden, 2 visible.
- *Ultralytics layout*: ``data.yaml`` (``path``, ``train``/``val``/``test`` as folders or txt lists of images,
  ``names`` as a list or ``{id: name}``, ``kpt_shape``, ``flip_idx``), images under ``images/<split>/`` and
  labels under ``labels/<split>/``: the label path is the image path with its last ``images`` folder
  replaced by ``labels`` and the suffix by ``.txt``.
- *darknet layout* (CVAT's "YOLO 1.1"): ``obj.data`` (``classes``, ``train``, ``valid``, ``names``),
  ``obj.names``, ``train.txt`` listing images as ``data/obj_train_data/x.jpg``, labels beside the images.
  Paths there start with darknet's ``data/`` working folder; leading folders that don't exist are dropped.
- *clipping*: Ultralytics drops a label file holding a value outside [0, 1] (1 % tolerance; a box centre
  outside the image, a keypoint beyond it) as corrupt, with its image; the writer clips coordinates to [0, 1]
  and counts the annotations it moved (``lost["clipped"]``).
- *precision*: labels are written with 6 decimals, so a round trip is exact to about 1e-6 × image size
  (pixels).
- *task*: Ultralytics trains one task per dataset: ``detect``, ``segment``, ``pose`` (label files) or
  ``classify`` (``<split>/<class>/<image>`` folders, no label files). It drops every segment of a dataset whose
  box and segment counts differ. The writer's default task is what the data holds (``task_for``).

Splits come from the data.yaml keys (``train``, ``val``, ``test``, and other keys naming image folders), the
obj.data keys (``valid`` -> ``val``) or, without a config file, the folder names under ``images/``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core import masks as M
from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.polygons import Polygons
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.errors import FormatError
from maslow.io._common import Collector, ExportReport
from maslow.io._export import count_lost, fmt_num, known_sizes, output_names, place_image
from maslow.io._yolo_layout import Layout, class_names, find_layout, is_classify, write_yaml
from maslow.io._yolo_layout import entries as find_entries
from maslow.io.images import IMAGE_SUFFIXES, image_info, image_path
from maslow.io.registry import warn_issues

TASKS = ("detect", "segment", "pose", "classify")
_Row = tuple[int, int, str, list[float], Path, int]  # image, class id, kind, values, label file, line


# -- parse -------------------------------------------------------------------------------------------
def _locate(rel: str, lay: Layout, images_root: Path | None, guessed: bool) -> tuple[str, Path | None]:
    """(path relative to the dataset root, existing file or None)."""
    root = images_root if images_root is not None else lay.root
    stems = [rel] if not guessed else [str(PurePosixPath(rel).with_suffix(s)) for s in IMAGE_SUFFIXES]
    for r in stems:
        cands = [r] if images_root is None else [r, PurePosixPath(r).name]
        for c in cands:
            if (root / c).is_file():
                return c, root / c
    return rel, None


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    names: list[str] | dict[int, str] | None = None,
    kpt_shape: tuple[int, int] | None = None,
    image_size: tuple[int, int] | None = None,
) -> tuple[Dataset, Report]:
    """Read a YOLO dataset: ``src`` is a data.yaml, an obj.data or a dataset folder (a classify folder,
    ``train/<class>/<image>`` without label files, is read as ``imagefolder`` reads it).

    Args:
        images_root: folder of the image files when they are not in the layout; an image is looked for at
            ``images_root/<path>`` then ``images_root/<file name>``. It becomes the Dataset's root.
        strict: raise FormatError at the first error or warning instead of reporting it.
        names: class names (a list, or ``{id: name}``) when the layout has none or to override them.
        kpt_shape: ``(K, 2 or 3)`` for pose labels without a data.yaml.
        image_size: ``(width, height)`` used for images whose file is missing (to place their labels).

    Returns:
        The Dataset (``root`` = ``images_root`` or the layout root) and the import Report.

    Raises:
        FormatError: the config file or a label file can't be parsed, or a path escapes the root.
    """
    src = Path(src)
    images_root = None if images_root is None else Path(images_root)  # a str from the Python API, too
    if is_classify(src):
        from maslow.io import imagefolder  # loads on first use: only classification needs it

        return imagefolder.parse(src, images_root=images_root, strict=strict)
    col = Collector(strict=strict)
    lay = find_layout(src, col)
    if names is not None:
        lay.names = class_names(names, src)
    if kpt_shape is not None:
        lay.kpt_shape = (int(kpt_shape[0]), int(kpt_shape[1]))
    root = images_root if images_root is not None else lay.root
    entries = find_entries(lay, col)
    paths: list[str] = []
    widths: list[int] = []
    heights: list[int] = []
    rows: list[_Row] = []
    for e in entries:
        i = len(paths)
        path, found = _locate(e.rel, lay, images_root, e.guessed)
        w = h = 0
        if found is not None:
            try:
                info = image_info(found)
                w, h = info.width, info.height
            except FormatError as err:
                col.add("unreadable_image", str(err), severity="error", file=path, image=i)
        elif e.label is not None:
            known = f"; labels placed with image_size={image_size}" if image_size else ""
            col.add("missing_image", f"label file has no image: looked for {root / path}{known}", severity="error",
                    file=e.label, image=i)
        if found is None and image_size is not None:
            w, h = int(image_size[0]), int(image_size[1])
        paths.append(path)
        widths.append(w)
        heights.append(h)
        if e.label is not None:
            rows.extend(_read_label(e.label, i, lay.kpt_shape, col))
    ds = _build(rows, lay, paths, widths, heights, [e.split for e in entries], root, col)
    return ds, col.report()


_INT = re.compile(r"[+-]?\d+")
_INTEGRAL_FLOAT = re.compile(r"[+-]?\d+\.0*")


def _read_label(path: Path, image: int, kpt_shape: tuple[int, int] | None, col: Collector) -> list[_Row]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise FormatError(f"label file must be UTF-8 text: {e}", path=path) from None
    pose_cols = None if kpt_shape is None else 5 + kpt_shape[0] * kpt_shape[1]
    out: list[_Row] = []
    n_float_cls = 0
    coords: list[float] = []
    coord_lines: list[int] = []  # the line of each value in coords
    kinds: dict[str, list[int]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        toks = line.split()
        if not toks:
            continue

        def error(type_: str, message: str, field: str | None = None, n: int = n) -> None:
            col.add(type_, message, severity="error", file=path, record=f"line {n}", field=field, image=image)

        if not _INT.fullmatch(toks[0]):
            if not _INTEGRAL_FLOAT.fullmatch(toks[0]):
                error("yolo_bad_value", f"class id must be an integer, got {toks[0]!r}", "class")
                continue
            n_float_cls += 1
        try:
            vals = [float(t) for t in toks[1:]]
        except ValueError:
            vals = [math.nan]
        if not all(math.isfinite(v) for v in vals):
            error("yolo_bad_value", f"coordinates must be finite numbers, got {' '.join(toks[1:])!r}")
            continue
        nc = len(toks)
        if pose_cols is not None:
            kind = "pose" if nc == pose_cols else ""
            expected = f"{pose_cols} (cls cx cy w h + kpt_shape keypoint values)"
        else:
            kind = "detect" if nc == 5 else "segment" if nc >= 7 and nc % 2 == 1 else ""
            expected = "5 (cls cx cy w h) or an odd number >= 7 (cls x1 y1 x2 y2 x3 y3 ...)"
        if not kind:
            hint = "; it looks like a prediction file with a confidence column" if nc == 6 else ""
            error("yolo_bad_columns", f"line must have {expected} values, got {nc}{hint}")
            continue
        kinds.setdefault(kind, []).append(n)
        start = len(coords)
        if kind == "pose" and kpt_shape is not None:
            coords.extend(vals[:4] + np.asarray(vals[4:]).reshape(kpt_shape)[:, :2].ravel().tolist())
        else:
            coords.extend(vals)
        coord_lines.extend([n] * (len(coords) - start))
        out.append((image, int(float(toks[0])), kind, vals, path, n))
    if n_float_cls:
        col.add("yolo_float_class", f"{n_float_cls} class ids are written as floats (e.g. '0.0'); they must be "
                "integers", file=path, field="class", image=image)
    if len(kinds) > 1:
        minority = min(kinds, key=lambda k: len(kinds[k]))
        col.add("yolo_mixed_task", f"file mixes {', '.join(f'{len(v)} {k}' for k, v in kinds.items())} lines; a "
                "label file must hold one kind", file=path, record=f"line {kinds[minority][0]}", image=image)
    c = np.asarray(coords)
    outside = (c < 0) | (c > 1)
    if outside.any():
        pixels = np.count_nonzero(c > 1) > c.size / 2
        hint = "; most are > 1: they look like absolute pixels, divide them by the image size" if pixels else ""
        first = int(np.flatnonzero(outside)[0])
        col.add("yolo_not_normalized", f"coordinates must lie in [0, 1], got {np.count_nonzero(outside)} of {c.size} "
                f"outside (e.g. {c[first]:g}){hint}", severity="error" if pixels else "warning", file=path,
                record=f"line {coord_lines[first]}", image=image)
    return out


def _build(rows: list[_Row], lay: Layout, paths: list[str],
           widths: list[int], heights: list[int], splits: list[str], root: Path, col: Collector) -> Dataset:
    names = lay.names
    if names is None:
        ids = sorted({r[1] for r in rows})
        names = {i: str(i) for i in ids}
        if ids:
            col.add("yolo_no_class_names", f"no class names found (data.yaml names, obj.names, classes.txt); "
                    f"using the ids {ids[:10]} as names", severity="info", file=lay.config)
    order = sorted(names)
    index = {cid: k for k, cid in enumerate(order)}
    kinds = {r[2] for r in rows}
    pose = lay.kpt_shape is not None
    K = lay.kpt_shape[0] if lay.kpt_shape else 0
    img, lab, box, kps = [], [], [], []
    poly: list[list[np.ndarray] | None] = []
    for image, cid, kind, vals, file, n in rows:
        rec = f"line {n}"
        if cid not in index:
            col.add("yolo_unknown_class", f"class id must be one of {order[:10]}{'...' if len(order) > 10 else ''}, "
                    f"got {cid}; annotation not imported", severity="error", file=file, record=rec, field="class",
                    image=image)
            continue
        w, h = widths[image], heights[image]
        if not (w and h):
            col.add("unplaced_annotation", "the image size is unknown (missing image), so the normalised "
                    "coordinates can't be placed; annotation not imported", severity="error", file=file,
                    record=rec, image=image)
            continue
        scale = np.array([w, h], np.float64)
        v = np.asarray(vals, np.float64)
        kp = np.full((K, 3), np.nan)
        if kind == "segment":
            pts = v.reshape(-1, 2) * scale
            b = [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]
            poly.append([pts.ravel()])
        else:
            cx, cy, bw, bh = v[0] * w, v[1] * h, abs(v[2]) * w, abs(v[3]) * h
            b = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
            poly.append(None)
            if kind == "pose" and lay.kpt_shape is not None:
                d = lay.kpt_shape[1]
                raw = v[4:].reshape(K, d)
                kp[:, :2] = raw[:, :2] * scale
                kp[:, 2] = raw[:, 2] if d == 3 else np.where((raw[:, 0] != 0) | (raw[:, 1] != 0), 2.0, 0.0)
                if not kp.any():
                    kp[:] = np.nan  # every keypoint "0 0 0": the object has no keypoints
        img.append(image)
        lab.append(index[cid])
        box.append(b)
        kps.append(kp)
    n = len(img)
    ann = Annotations(
        image=np.asarray(img, np.int64), label=np.asarray(lab, np.int64),
        box=np.asarray(box, np.float64).reshape(n, 4),
        polygon=Polygons.from_rows(poly) if "segment" in kinds else None,
        keypoints=np.asarray(kps, np.float64).reshape(n, K, 3) if pose else None,
    )
    task = Task.KEYPOINTS if pose else Task.INSTANCE_SEGMENTATION if "segment" in kinds else Task.DETECTION
    tasks = (task,) if task is Task.DETECTION else (task, Task.DETECTION)
    classes = tuple(ClassDef(name=names[cid], id=cid, keypoints=tuple(lay.kpt_names.get(cid, ()))) for cid in order)
    images = Images(path=str_array(paths), width=np.asarray(widths, np.int64), height=np.asarray(heights, np.int64),
                    split=str_array(splits))
    return Dataset(schema=LabelSchema(classes=classes, tasks=tasks), images=images, annotations=ann, root=root)


def read_yolo(src: str | Path, **options: Any) -> Dataset:
    """Read a YOLO dataset (see ``parse``); a MaslowWarning summarises any import issues.

    Example:
        >>> ds = read_yolo("datasets/coco8/data.yaml")  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), **options), source=src)


# -- write -------------------------------------------------------------------------------------------
def task_for(ds: Dataset) -> tuple[str, str]:
    """The task ``write`` uses without ``task=``, and why: what the annotations hold.

    ``segment`` when every annotation with a geometry has a polygon or a mask, unless each is of a class with
    keypoints (keypoint names, or keypoints on some annotation): then ``pose``; ``pose`` too when some annotation
    has keypoints and not every one a polygon or mask; ``detect`` for boxes, also when only some annotations have
    a polygon or mask (Ultralytics drops every segment of a dataset whose box and segment counts differ); and
    ``classify`` for image-level labels without any geometry. A dataset without annotations follows its schema.

    Example:
        >>> from maslow.sample import shapes
        >>> task_for(shapes(2))[0]
        'segment'
    """
    a = ds.annotations
    shape = _usable_polygons(a) | (np.array([m is not None for m in a.mask.tolist()], bool) if a.mask is not None
                                   else np.zeros(len(a), bool))
    kp = (~np.isnan(a.keypoints).all(axis=(1, 2)) if a.keypoints is not None and a.keypoints.shape[1]
          else np.zeros(len(a), bool))
    geo = a.has_box | shape | kp
    tasks = list(ds.schema.tasks)
    if not geo.any():
        if len(a) or tasks[0] in (Task.CLASSIFICATION, Task.MULTILABEL):
            return "classify", "image-level labels without boxes"
        by_schema = {Task.INSTANCE_SEGMENTATION: "segment", Task.SEMANTIC_SEGMENTATION: "segment",
                     Task.KEYPOINTS: "pose" if a.keypoints is not None and a.keypoints.shape[1] else "detect"}
        return by_schema.get(tasks[0], "detect"), f"no annotations; the schema's task is {tasks[0].value}"
    n_geo, n_shape, n_kp = int(geo.sum()), int(shape[geo].sum()), int(kp.sum())
    segment = f"every annotation has a polygon or mask ({n_shape})"
    if n_kp and n_shape == n_geo:
        kp_class = np.zeros(len(ds.schema.classes), bool)
        kp_class[[i for i, c in enumerate(ds.schema.classes) if c.keypoints]] = True
        kp_class[a.label[kp]] = True
        if kp_class[a.label[geo]].all():
            return "pose", f"{n_kp} annotations have keypoints, and every annotation is of a class with keypoints"
        return "segment", f"{segment}; keypoints belong to only some of the classes"
    if n_kp:
        return "pose", f"{n_kp} annotations have keypoints"
    if n_shape == n_geo:
        return "segment", segment
    if n_shape:
        return "detect", (f"only {n_shape} of {n_geo} annotations have a polygon or mask; Ultralytics drops every "
                          "segment of a dataset whose box and segment counts differ, so boxes were written "
                          "(task='segment' writes the others as their box rectangles)")
    return "detect", "boxes"


def _usable_polygons(a: Annotations) -> np.ndarray:
    """(n,) True where the annotation has a polygon ring of at least 3 points."""
    p = a.polygon
    if p is None:
        return np.zeros(len(a), bool)
    ok = np.concatenate([[0], np.cumsum(np.diff(p.ring_offsets) >= 6)])
    return np.asarray(ok[p.row_offsets[1:]] - ok[p.row_offsets[:-1]] > 0)


def write(
    ds: Dataset,
    dst: Path,
    *,
    task: str | None = None,
    images: bool = True,
    copy_images: bool = False,
    flip_idx: list[int] | None = None,
) -> ExportReport:
    """Write ``ds`` as an Ultralytics dataset: ``data.yaml``, ``images/<split>/`` and ``labels/<split>/``.

    Images without a split go to ``train``. Every image gets a label file (empty for background images).
    Class ids are the positions in ``ds.schema.classes`` (Ultralytics needs 0..k-1).

    Args:
        task: ``"detect"`` (boxes), ``"segment"`` (polygons; a mask is traced into the polygon of its largest
            part, an annotation with neither is written as its box rectangle), ``"pose"`` (boxes and keypoints;
            ``kpt_shape: [K, 3]``) or ``"classify"`` (class folders ``<split>/<class>/<image>``, no labels);
            by default what the data holds (``task_for``), named in ``notes``.
        images: put the image files under ``images/<split>/`` (symlinks to the originals by default); when
            False only labels and data.yaml are written.
        copy_images: copy the image files instead of symlinking them.
        flip_idx: pose only: the keypoint permutation for horizontal flips; by default derived from
            ``left``/``right`` keypoint names, and omitted when no names pair up that way.

    Returns:
        ExportReport; ``lost`` counts what YOLO can't express (masks, attributes, crowd flags, scores, ...).

    Raises:
        FormatError: an unknown ``task``, ``pose`` without keypoints, or ``classify`` with ``images=False``.

    Example:
        >>> from maslow.sample import shapes
        >>> import tempfile, pathlib
        >>> rep = write(shapes(4), pathlib.Path(tempfile.mkdtemp()) / "yolo", images=False)
        >>> rep.n_images, rep.lost["attributes"] > 0, rep.notes[0].split(":")[0]
        (4, True, "task 'segment'")
    """
    if task is not None and task not in TASKS:
        raise FormatError(f"task must be one of {TASKS}, got {task!r}")
    reason = ""
    if task is None:
        task, why_task = task_for(ds)
        reason = f"task {task!r}: {why_task}"
    dst = Path(dst)
    a = ds.annotations
    K = 0 if a.keypoints is None else a.keypoints.shape[1]
    if task == "pose" and not K:
        raise FormatError("task 'pose' needs keypoints, got a dataset without them (Ultralytics refuses "
                          "kpt_shape [0, 3]); use task='detect'", path=dst)
    if task == "classify":
        return _write_classify(ds, dst, images=images, copy_images=copy_images, reason=reason)
    rep = ExportReport(path=str(dst), format="yolo")
    if reason:
        rep.notes.append(reason)
    w_all, h_all = known_sizes(ds)
    given = ds.images.split.tolist() if ds.images.split is not None else [""] * ds.n_images
    split_of = [str(s) or "train" for s in given]  # str: numpy str_ values can't go into the yaml
    if "" in given:
        rep.notes.append(f"{given.count('')} images without a split were written to 'train'")
    names_out: dict[int, str] = {}
    for s in dict.fromkeys(split_of):
        members = [i for i, x in enumerate(split_of) if x == s]
        for i, nm in zip(members, output_names([str(ds.images.path[i]) for i in members]), strict=True):
            names_out[i] = nm
    written = np.zeros(len(a), bool)
    why: Counter[str] = Counter()
    traced = _Traced()
    slices = ds.image_slices()
    with atomic_dir(dst) as tmp:
        for i in range(ds.n_images):
            s, name = split_of[i], names_out[i]
            w, h = float(w_all[i]), float(h_all[i])
            lines = []
            for r in range(slices[i], slices[i + 1]):
                line = _line(ds, r, task, w, h, K, rep, why, traced)
                if line is not None:
                    lines.append(line)
                    written[r] = True
            lab = tmp / "labels" / s / PurePosixPath(name).with_suffix(".txt").as_posix()
            lab.parent.mkdir(parents=True, exist_ok=True)
            lab.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
            if images and not place_image(image_path(ds, i), tmp / "images" / s / name,
                                          "copy" if copy_images else "symlink"):
                rep.lost["image_files"] += 1
        kpt_names = {i: [str(k) for k in c.keypoints] for i, c in enumerate(ds.schema.classes)
                     if K and len(c.keypoints) == K}
        write_yaml(tmp / "data.yaml", list(dict.fromkeys(split_of)), [str(c.name) for c in ds.schema.classes],
                   K if task == "pose" else None, kpt_names, flip_idx, rep.notes)
    keep = {"box"} | ({"polygon", "mask"} if task == "segment" else set()) | ({"keypoints"} if task == "pose" else set())
    rep.lost.update(count_lost(ds, keep=keep, rows=written))
    if traced.n:
        rep.notes.append(traced.note())
    rect = why.pop("rectangle", 0)
    if rect:
        rep.notes.append(f"{rect} annotations without a polygon or mask were written as their box rectangle")
    if why:
        rep.lost["annotations"] += sum(why.values())
        rep.notes.append("annotations not written: " + ", ".join(f"{v} {k}" for k, v in why.items()))
    if rep.lost.get("image_files"):
        rep.notes.append(f"{rep.lost['image_files']} image files were missing and not placed under images/")
    rep.n_images = ds.n_images
    rep.n_annotations = int(written.sum())
    return rep


def _write_classify(ds: Dataset, dst: Path, *, images: bool, copy_images: bool, reason: str) -> ExportReport:
    """Ultralytics' classify layout: ``<split>/<class>/<image>`` (torchvision's ImageFolder per split)."""
    if not images:
        raise FormatError("task 'classify' holds the labels in class folders of image files; images=False "
                          "can't hold them", path=dst)
    from maslow.io import imagefolder  # loads on first use: only classification needs it

    rep = imagefolder.write(ds, dst, link="copy" if copy_images else "symlink", splits=True)
    rep.format = "yolo"
    if reason:
        rep.notes.insert(0, reason)
    splits = {str(s) or "train" for s in (ds.images.split.tolist() if ds.images.split is not None else [""])}
    if not splits & {"val", "valid", "validation", "test"}:
        rep.notes.append("no 'val' or 'test' split: Ultralytics' classify needs one to validate (use ds.split())")
    return rep


class _Traced:
    """Masks written as traced polygons: how many, and the pixels the polygons get wrong."""

    def __init__(self) -> None:
        self.n = self.n_off = self.wrong = self.area = 0

    def add(self, wrong: int, area: int) -> None:
        self.n += 1
        self.n_off += wrong > 0
        self.wrong += wrong
        self.area += area

    def note(self) -> str:
        off = (f"; {self.n_off} of them (other parts, holes) differ from their mask by {self.wrong} pixels "
               f"({100 * self.wrong / max(self.area, 1):.1f} % of the masks' area)") if self.n_off else ""
        return (f"{self.n} masks were traced into polygons (the outer boundary of the largest part, along pixel "
                f"edges; counted in lost['mask']){off}")


def _line(ds: Dataset, r: int, task: str, w: float, h: float, K: int, rep: ExportReport,
          why: Counter[str], traced: _Traced) -> str | None:
    a = ds.annotations
    assert a.box is not None
    if not (w > 0 and h > 0):
        why["on images of unknown size"] += 1
        return None
    label = str(int(a.label[r]))
    poly = a.polygon[r] if task == "segment" and a.polygon is not None else None
    parts = [np.asarray(p, np.float64) for p in poly or () if len(p) >= 6]
    if not parts and task == "segment" and a.mask is not None and a.mask[r] is not None:
        ring, wrong, px = M.outer_ring(a.mask[r])
        if ring is not None:
            parts = [ring]
            traced.add(wrong, px)
            rep.lost["mask"] += 1  # it comes back as a polygon
    if parts:
        best = parts[0] if len(parts) == 1 else max(parts, key=M.polygon_area)
        if len(parts) > 1:
            rep.lost["polygon_parts"] += len(parts) - 1
        xy = best.reshape(-1, 2)
        if a.has_box[r] and np.abs(np.concatenate([xy.min(axis=0), xy.max(axis=0)]) - a.box[r]).max() \
                > 1e-6 * max(w, h):
            rep.lost["box"] += 1  # the box is re-derived from the polygon on reading
        pts, moved = _clip(xy / np.array([w, h]))
        if moved:
            rep.lost["clipped"] += 1
        return " ".join([label, *(fmt_num(v, 6) for v in pts.ravel())])
    if not a.has_box[r]:
        why["without a box"] += 1
        return None
    scale = np.array([w, h, w, h])
    unit, moved = _clip(a.box[r] / scale)
    x1, y1, x2, y2 = (unit * scale).tolist()
    vals = [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
    if task == "segment":
        vals = [x1 / w, y1 / h, x2 / w, y1 / h, x2 / w, y2 / h, x1 / w, y2 / h]
        if a.mask is not None and a.mask[r] is not None:
            rep.lost["mask"] += 1  # an empty mask
        why["rectangle"] += 1
    elif task == "pose":
        kp = np.zeros((K, 3)) if a.keypoints is None or np.isnan(a.keypoints[r]).all() else a.keypoints[r]
        kp = np.nan_to_num(kp)
        kxy, kp_moved = _clip(kp[:, :2] / np.array([w, h]))
        moved |= kp_moved
        vals += np.column_stack([kxy, kp[:, 2]]).ravel().tolist()
    if moved:
        rep.lost["clipped"] += 1
    return " ".join([label, *(fmt_num(v, 6) for v in vals)])


def _clip(xy: np.ndarray) -> tuple[np.ndarray, bool]:
    """Normalised coordinates clipped to [0, 1], and whether any moved: Ultralytics' ``verify_image_label`` takes a
    label file with a value outside [0, 1] (1 % tolerance) as corrupt and drops its image."""
    out = np.clip(xy, 0.0, 1.0)
    return out, bool(np.abs(out - xy).max(initial=0.0) > 1e-9)


write_yolo = write
