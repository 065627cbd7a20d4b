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
- *obb* line (Ultralytics' oriented boxes): ``cls x1 y1 x2 y2 x3 y3 x4 y4``, the four corners of a rotated
  rectangle. The line is a 4-point segment line, so the task is said, not guessed: ``task: obb`` in data.yaml
  (which maslow writes) or ``task="obb"`` when reading. An oriented box is read as a 4-point polygon with its
  extent as ``box``; see ``_yolo_obb`` for what is written.
- *precision*: labels are written with 6 decimals, or with as many as the files read had (up to 15), so a round
  trip gives back the values as printed; 6 decimals are exact to about 1e-6 × image size (pixels).
- *kept*: what data.yaml says that maslow has no field for is kept in ``Dataset.info["yolo"]`` and written back:
  ``task`` (obb), ``flip_idx``, ``kpt_shape`` (``[K, 2]`` stays so), ``decimals`` and ``yaml`` (other keys:
  ``download``, ``channels``, Roboflow's ``roboflow`` block with the licence).
- *task*: Ultralytics trains one task per dataset: ``detect``, ``segment``, ``pose`` (label files) or
  ``classify`` (``<split>/<class>/<image>`` folders, no label files). It drops every segment of a dataset whose
  box and segment counts differ. The writer's default task is what the data holds (``task_for``).

Splits come from the data.yaml keys (``train``, ``val``, ``test``, and other keys naming image folders), the
obj.data keys (``valid`` -> ``val``) or, without a config file, the folder names under ``images/``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import Task
from maslow.errors import FormatError
from maslow.io._class_losses import lose_class_fields
from maslow.io._common import Collector, ExportReport
from maslow.io._export import Tally, count_lost, known_sizes, label_notes, output_names, place_image
from maslow.io._yolo_layout import Layout, Listing, below, class_names, find_layout, is_classify, write_yaml
from maslow.io._yolo_layout import entries as find_entries
from maslow.io._yolo_obb import obb_lines
from maslow.io._yolo_read import MAX_DECIMALS, Rows, build, read_label
from maslow.io._yolo_write import Traced, fmt_line, label_lines, usable_polygons
from maslow.io.images import IMAGE_SUFFIXES, image_info, image_path
from maslow.io.registry import Progress, Ticks, warn_issues

TASKS = ("detect", "segment", "pose", "obb", "classify")


# -- parse -------------------------------------------------------------------------------------------
def _locate(rel: str, root_s: str, by_name: bool, guessed: bool, listing: Listing) -> tuple[str, str | None]:
    """(path relative to the dataset root ``root_s``, the existing file (``str(root / path)``) or None);
    ``by_name``: look for the file name under the root too (``images_root``)."""
    if guessed:
        stem = str(PurePosixPath(rel).with_suffix(""))
        stems = [f"{stem}{s}" for s in IMAGE_SUFFIXES]
    else:
        stems = [rel]
    for r in stems:
        cands = [r, PurePosixPath(r).name] if by_name else [r]
        for c in cands:
            if listing.is_file(os.path.join(root_s, c)):
                return c, below(root_s, c)
    return rel, None


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    names: list[str] | dict[int, str] | None = None,
    kpt_shape: tuple[int, int] | None = None,
    image_size: tuple[int, int] | None = None,
    task: str | None = None,
    scores: bool | None = None,
    progress: Progress | None = None,
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
        task: ``"obb"``: the label lines are Ultralytics oriented boxes (default: data.yaml's ``task``).
        scores: whether the lines end with a confidence (Ultralytics ``save_conf``): None, where their count says
            so and the value lies in [0, 1]; False, never (ground truth: such lines are ``yolo_bad_columns``);
            True, on every line.
        progress: called as ``progress(done, total)`` over the images and label files read (``registry.Ticks``:
            the layout is listed first, so the total is known).

    Returns:
        The Dataset (``root`` = ``images_root`` or the layout root; ``info["yolo"]``: what the layout says that
        the Dataset has no field for, see the module glossary) and the import Report.

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
    if task is not None and task != "obb":
        raise FormatError(f"task must be 'obb' (the one task label lines don't tell), got {task!r}", path=src)
    if scores is not None and not isinstance(scores, bool):
        raise FormatError(f"scores must be true, false or null, got {scores!r}", path=src, field="scores")
    if lay.task is not None and lay.task != "obb":
        col.add("yolo_task", f"task {lay.task!r} is not read (Ultralytics takes the task from the model); the "
                "label lines tell detect, segment and pose", severity="info", file=lay.config, field="task")
    obb = (task or lay.task) == "obb"
    if names is not None:
        lay.names = class_names(names, src)
    if kpt_shape is not None:
        lay.kpt_shape = (int(kpt_shape[0]), int(kpt_shape[1]))
    root = images_root if images_root is not None else lay.root
    listing = Listing()
    entries = find_entries(lay, col, listing)
    root_s = str(root)
    paths: list[str] = []
    widths: list[int] = []
    heights: list[int] = []
    rows = Rows()
    tick = Ticks(progress, len(entries))
    for e in entries:
        tick(len(paths))
        i = len(paths)
        path, found = _locate(e.rel, root_s, images_root is not None, e.guessed, listing)
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
            read_label(e.label, i, lay.kpt_shape, col, rows, obb=obb, scores=scores)
    tick.end()
    ds = build(rows, lay, paths, widths, heights, [e.split for e in entries], root, col, obb=obb)
    if not obb and lay.kpt_shape is None and _obb_like(rows):
        col.add("yolo_obb_like", f"every object is a 4-point polygon ({len(rows.lens)}): read as segments; if these "
                "are Ultralytics oriented boxes, read with task='obb' (--read-option task=obb)", severity="info",
                file=lay.config or root)
    kept = _kept(lay, rows, obb)
    return (ds.replace(info={**ds.info, "yolo": kept}) if kept else ds), col.report()


def _obb_like(rows: Rows) -> bool:
    """Whether every object line is a 4-point polygon, and some turned (four different x): oriented boxes?"""
    if not rows.lens or set(rows.lens) != {8}:
        return False
    xs = np.sort(np.asarray(rows.vals, np.float64).reshape(-1, 4, 2)[:, :, 0], axis=1)
    return bool(np.any(np.all(np.diff(xs, axis=1) > 1e-9, axis=1)))


def _kept(lay: Layout, rows: Rows, obb: bool) -> dict[str, Any]:
    """``Dataset.info["yolo"]``: what the layout says that the Dataset has no field for (JSON values only)."""
    kept: dict[str, Any] = {}
    if obb:
        kept["task"] = "obb"
    if lay.flip_idx is not None:
        kept["flip_idx"] = lay.flip_idx
    if lay.kpt_shape is not None and lay.kpt_shape[1] == 2:
        kept["kpt_shape"] = list(lay.kpt_shape)
    if rows.decimals > 6:
        kept["decimals"] = rows.decimals
    if lay.kept:
        kept["yaml"] = json.loads(json.dumps(lay.kept, default=str))  # YAML dates and such as text
    return kept


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
    ``obb`` for a dataset read as oriented boxes (``info["yolo"]["task"]``), when it still has boxes.

    Example:
        >>> from maslow.sample import shapes
        >>> task_for(shapes(2))[0]
        'segment'
    """
    a = ds.annotations
    held = ds.info.get("yolo")
    if isinstance(held, dict) and held.get("task") == "obb" and (not len(a) or a.has_box.any()):
        return "obb", "the dataset was read as Ultralytics oriented boxes (info['yolo']['task'])"
    shape = usable_polygons(a) | (np.array([m is not None for m in a.mask.tolist()], bool) if a.mask is not None
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


def write(
    ds: Dataset,
    dst: Path,
    *,
    task: str | None = None,
    images: bool = True,
    copy_images: bool = False,
    flip_idx: list[int] | None = None,
    decimals: int | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Write ``ds`` as an Ultralytics dataset: ``data.yaml``, ``images/<split>/`` and ``labels/<split>/``.

    Images without a split go to ``train``. Every image gets a label file (empty for background images).
    Class ids are the positions in ``ds.schema.classes`` (Ultralytics needs 0..k-1).

    Args:
        task: ``"detect"`` (boxes), ``"segment"`` (polygons; a mask is traced into the polygon of its largest
            part, an annotation with neither is written as its box rectangle), ``"pose"`` (boxes and keypoints;
            ``kpt_shape: [K, 3]``), ``"obb"`` (Ultralytics oriented boxes: four corners; see ``_yolo_obb``) or
            ``"classify"`` (class folders ``<split>/<class>/<image>``, no labels); by default what the data holds
            (``task_for``), named in ``notes``.
        images: put the image files under ``images/<split>/`` (symlinks to the originals by default); when
            False only labels and data.yaml are written.
        copy_images: copy the image files instead of symlinking them.
        flip_idx: pose only: the keypoint permutation for horizontal flips; by default the one read
            (``info["yolo"]["flip_idx"]``), else derived from ``left``/``right`` keypoint names, and omitted when
            no names pair up that way.
        decimals: decimals of the normalised values; by default 6, or as many as the files read had
            (``info["yolo"]["decimals"]``).
        progress: called as ``progress(done, total)`` over the images written (``registry.Ticks``).

    Returns:
        ExportReport; ``lost`` counts what YOLO can't express (masks, attributes, crowd flags, scores, class ids
        other than 0..k-1, supercategories, ...).

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
        return _write_classify(ds, dst, images=images, copy_images=copy_images, reason=reason, progress=progress)
    raw = ds.info.get("yolo")
    held: dict[str, Any] = raw if isinstance(raw, dict) else {}  # what a YOLO reader kept (see _kept)
    if decimals is None:
        decimals = held["decimals"] if isinstance(held.get("decimals"), int) else 6
    if isinstance(decimals, bool) or not isinstance(decimals, int | np.integer) or not 0 <= decimals <= MAX_DECIMALS:
        raise FormatError(f"decimals must be an integer 0..{MAX_DECIMALS}, got {decimals!r}", path=dst,
                          field="decimals")
    digits = int(decimals)
    shape = held.get("kpt_shape")
    kpt_dims = 2 if task == "pose" and isinstance(shape, list) and shape == [K, 2] and a.keypoints is not None \
        and not np.any(a.keypoints[:, :, 2] == 1) else 3  # [K, 2] as read, while no point is labelled hidden
    flip = held.get("flip_idx")
    if flip_idx is None and task == "pose" and isinstance(flip, list) and all(type(v) is int for v in flip) \
            and sorted(flip) == list(range(K)):
        flip_idx = [int(v) for v in held["flip_idx"]]
    rep = ExportReport(path=str(dst), format="yolo")
    if reason:
        rep.notes.append(reason)
    k = len(ds.schema.classes)
    lose_class_fields(ds, rep, fmt="YOLO", back=range(k), how=f"0..{k - 1}, as Ultralytics needs them")
    if task != "obb":
        _note_rotated(ds, rep)
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
    lost, why, traced = Tally(), Tally(), Traced()
    written = np.zeros(len(a), bool)
    slices = ds.image_slices().tolist()
    made: set[str] = set()
    tick = Ticks(progress, ds.n_images)
    with atomic_dir(dst) as tmp:
        image_dirs = {s: tmp / "images" / s for s in set(split_of)}
        for i0 in range(0, ds.n_images, 4096):  # the lines of 4096 images at a time: memory stays flat
            i1 = min(i0 + 4096, ds.n_images)
            r0 = slices[i0]
            if task == "obb":
                lines = obb_lines(ds, w_all, h_all, lost, why, r0, slices[i1],
                                  lambda label, vals: fmt_line(label, vals, digits))
            else:
                lines = label_lines(ds, task, w_all, h_all, lost, why, traced, r0, slices[i1], decimals=digits,
                                    kpt_dims=kpt_dims)
            written[r0:slices[i1]] = [x is not None for x in lines]
            for i in range(i0, i1):
                s, name = split_of[i], names_out[i]
                lab = os.path.join(tmp, "labels", s, PurePosixPath(name).with_suffix(".txt").as_posix())
                folder = os.path.dirname(lab)
                if folder not in made:
                    os.makedirs(folder, exist_ok=True)
                    made.add(folder)
                with open(lab, "wb") as f:
                    own = lines[slices[i] - r0:slices[i + 1] - r0]
                    f.write("".join([x + "\n" for x in own if x is not None]).encode())
                if images and not place_image(image_path(ds, i), image_dirs[s] / name,
                                              "copy" if copy_images else "symlink"):
                    lost.add("image_files", 1, (i, 1))
                tick(i + 1)
        kpt_names = {i: [str(k) for k in c.keypoints] for i, c in enumerate(ds.schema.classes)
                     if K and len(c.keypoints) == K}
        write_yaml(tmp / "data.yaml", list(dict.fromkeys(split_of)), [str(c.name) for c in ds.schema.classes],
                   K if task == "pose" else None, kpt_names, flip_idx, rep.notes, kpt_dims=kpt_dims, task=task,
                   kept=held.get("yaml") if isinstance(held.get("yaml"), dict) else None)
    tick.end()
    lost.into(rep.lost)
    keep = {"box"} | ({"polygon", "mask"} if task in ("segment", "obb") else set()) | (
        {"keypoints"} if task == "pose" else set())
    rep.lost.update(count_lost(ds, keep=keep, rows=written))
    rep.notes.extend(label_notes(ds, written))
    if traced.n:
        rep.notes.append(traced.note())
    why_not = Counter[str]()
    why.into(why_not)
    rect = why_not.pop("rectangle", 0)
    if rect:
        rep.notes.append(f"{rect} annotations without a polygon or mask were written as their box rectangle")
    if why_not:
        rep.lost["annotations"] += sum(why_not.values())
        rep.notes.append("annotations not written: " + ", ".join(f"{v} {k}" for k, v in why_not.items()))
    if rep.lost.get("image_files"):
        rep.notes.append(f"{rep.lost['image_files']} image files were missing and not placed under images/")
    rep.n_images = ds.n_images
    rep.n_annotations = int(written.sum())
    return rep


def _note_rotated(ds: Dataset, rep: ExportReport) -> None:
    """Rotated boxes (Label Studio, CVAT) lose their angle in detect, pose and segment lines; OBB keeps it. (An
    ellipse's angle is in its polygon.)"""
    a = ds.annotations
    boxes = np.ones(len(a), bool) if a.polygon is None else np.asarray(a.polygon.null, bool)
    n = 0
    for key in ("ls_rotation", "cvat_rotation"):
        col = a.extra.get(key)
        if col is not None:
            vals = np.array([float(v) if isinstance(v, int | float | np.number) else 0.0 for v in col.tolist()])
            n += int(np.count_nonzero(np.nan_to_num(vals)[boxes]))
    if n:
        rep.notes.append(f"{n} rotated boxes were written without their angle (counted in lost['annotations.extra']); "
                         "task='obb' writes their corners")


def _write_classify(ds: Dataset, dst: Path, *, images: bool, copy_images: bool, reason: str,
                    progress: Progress | None = None) -> ExportReport:
    """Ultralytics' classify layout: ``<split>/<class>/<image>`` (torchvision's ImageFolder per split)."""
    if not images:
        raise FormatError("task 'classify' holds the labels in class folders of image files; images=False "
                          "can't hold them", path=dst)
    from maslow.io import imagefolder  # loads on first use: only classification needs it

    # class ids and supercategories are counted there (class folders: names, read back without ids)
    rep = imagefolder._write(ds, dst, link="copy" if copy_images else "symlink", splits=True, progress=progress,
                             fmt="YOLO classify")
    rep.format = "yolo"
    if reason:
        rep.notes.insert(0, reason)
    splits = {str(s) or "train" for s in (ds.images.split.tolist() if ds.images.split is not None else [""])}
    if not splits & {"val", "valid", "validation", "test"}:
        rep.notes.append("no 'val' or 'test' split: Ultralytics' classify needs one to validate (use ds.split())")
    return rep


write_yolo = write
