"""Classification as an image folder: one sub-folder per class (torchvision's ``ImageFolder`` layout).

Glossary:

- *layout*: ``root/<class>/<image>``; or ``root/<split>/<class>/<image>`` when every top-level folder is a
  split name (``train``, ``val``, ``valid``, ``validation``, ``test``; ``valid``/``validation`` read as ``val``).
- *class*: the name of the folder right under the root (or the split folder); images deeper inside it
  belong to it too, as torchvision reads them. Classes are sorted by name, as torchvision sorts them; an
  empty class folder still defines a class.
- *annotation*: each image gets one annotation: its class, no box (NaN). The task is classification.
- Images directly in the root (or a split folder) have no class: they are kept without an annotation and
  reported. Hidden files are skipped; other non-image files are counted in one ``info`` finding.
- Linked folders and files are followed; each real folder is read once per class (a link to a parent would
  loop). A folder that can't be listed is an ``unreadable_folder`` error, a link whose target is missing (without
  an image suffix) a ``broken_link`` warning; a missing image behind a link is an ``unreadable_image``.
- Writing: an image needs exactly one class. Images with no label, or with several different labels
  (multi-label can't be expressed by folders), are not written and are counted in ``ExportReport.lost``; so
  are the classes' ids and supercategories (a folder holds a name only). Classes are read back sorted by name,
  so a schema in another order gets other label indexes back (a note says so).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.errors import FormatError
from maslow.io._class_losses import lose_class_fields
from maslow.io._common import Collector, ExportReport
from maslow.io._export import LINK_MODES, count_lost, output_names, place_image
from maslow.io.images import IMAGE_SUFFIXES, image_info, image_path, list_images
from maslow.io.registry import Progress, Ticks, warn_issues

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def parse(src: Path, *, images_root: Path | None = None, strict: bool = False) -> tuple[Dataset, Report]:
    """Read a classification image folder.

    Args:
        src: the root folder.
        images_root: ignored unless given, in which case it must be ``src`` (the images are the layout).
        strict: raise FormatError at the first error or warning instead of reporting it.

    Returns:
        The Dataset (task classification, one box-less annotation per image, root ``src``) and the Report.

    Raises:
        FormatError: ``src`` is not a folder.
    """
    src = Path(src)
    col = Collector(strict=strict)
    if not src.is_dir():
        raise FormatError("must be a folder of class folders", path=src)
    if images_root is not None and Path(images_root).resolve() != src.resolve():
        raise FormatError(f"images_root must be the folder itself for an image folder, got {images_root}", path=src)
    top = sorted(d for d in src.iterdir() if d.is_dir() and not d.name.startswith("."))
    by_split = bool(top) and all(d.name.lower() in SPLIT_FOLDERS for d in top)
    groups = [(SPLIT_FOLDERS[d.name.lower()], d) for d in top] if by_split else [("", src)]
    names = sorted({c.name for _, g in groups for c in g.iterdir() if c.is_dir() and not c.name.startswith(".")})
    index = {n: k for k, n in enumerate(names)}
    paths: list[str] = []
    widths: list[int] = []
    heights: list[int] = []
    splits: list[str] = []
    img: list[int] = []
    lab: list[int] = []
    n_other = 0
    for split, group in groups:
        loose = [p for p in sorted(group.iterdir()) if p.is_file() and not p.name.startswith(".")]
        for p in loose:
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                n_other += 1
                continue
            col.add("imagefolder_no_class", "image is not inside a class folder; kept without a label",
                    file=p.relative_to(src).as_posix(), image=len(paths))
            _add(p, src, split, paths, widths, heights, splits, col)
        for cls in sorted(c for c in group.iterdir() if c.is_dir() and not c.name.startswith(".")):
            # linked folders followed, each real folder once per class (a link to a parent would loop); hidden
            # entries skipped
            try:
                found = list_images(cls, hidden=False)
            except FormatError as e:
                col.add("unreadable_folder", f"class folder can't be listed, its images were not read: {e}",
                        severity="error", file=cls.relative_to(src).as_posix())
                continue
            n_other += found.n_other
            for folder, why in found.unlisted:
                col.add("unreadable_folder", f"folder can't be listed, its images were not read: {why}",
                        severity="error", file=folder.relative_to(src).as_posix())
            for link in found.broken_links:
                col.add("broken_link", "link whose target is missing, skipped", file=link.relative_to(src).as_posix())
            for p in found.images:
                img.append(len(paths))
                lab.append(index[cls.name])
                _add(p, src, split, paths, widths, heights, splits, col)
    if n_other:
        col.add("imagefolder_not_image", f"{n_other} files without an image suffix ({', '.join(IMAGE_SUFFIXES)}) "
                "were skipped", severity="info", file=str(src))
    ann = Annotations(image=np.asarray(img, np.int64), label=np.asarray(lab, np.int64))
    images = Images(path=str_array(paths), width=np.asarray(widths, np.int64), height=np.asarray(heights, np.int64),
                    split=str_array(splits))
    schema = LabelSchema(classes=tuple(ClassDef(n, label_types=("tag",)) for n in names),
                         tasks=(Task.CLASSIFICATION,))
    return Dataset(schema=schema, images=images, annotations=ann, root=src), col.report()


def _add(p: Path, src: Path, split: str, paths: list[str], widths: list[int], heights: list[int],
         splits: list[str], col: Collector) -> None:
    rel = Path(os.path.relpath(p, src)).as_posix()
    w = h = 0
    try:
        info = image_info(p)
        w, h = info.width, info.height
    except FormatError as e:
        col.add("unreadable_image", str(e), severity="error", file=rel, image=len(paths))
    paths.append(rel)
    widths.append(w)
    heights.append(h)
    splits.append(split)


def read_imagefolder(src: str | Path, **options: Any) -> Dataset:
    """Read a classification image folder (see ``parse``); a MaslowWarning summarises any import issues.

    Example:
        >>> ds = read_imagefolder("flowers/")  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), **options), source=src)


def write(ds: Dataset, dst: Path, *, link: str = "copy", splits: bool | None = None,
          progress: Progress | None = None) -> ExportReport:
    """Write ``ds`` as class folders: ``dst/<class>/<image>`` or ``dst/<split>/<class>/<image>``.

    Args:
        link: ``"copy"`` (default), ``"hardlink"`` or ``"symlink"`` the image files. IDX members (MNIST) are
            decoded and written as PNG.
        splits: write split folders; by default when any image has a split (images without one go to
            ``train``).
        progress: called as ``progress(done, total)`` over the images placed (those with one class; see
            ``registry.Ticks``).

    Returns:
        ExportReport: ``lost["images_without_label"]``, ``lost["images_with_several_labels"]`` (those images
        are not written), ``lost["duplicate_labels"]`` (extra annotations of an image's one class), and boxes,
        masks, attributes, ... of the written annotations; ``lost["class_id"]`` and ``lost["supercategory"]``
        (a folder holds a class name only). A note says when the classes are not sorted by name: reading sorts
        them, so label indexes change.

    Raises:
        FormatError: an unknown ``link`` mode, or a class name that can't be a folder name.

    Example:
        >>> from maslow.sample import write_shapes
        >>> import tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> rep = write(write_shapes(tmp / "shapes", 8), tmp / "folder")
        >>> rep.lost["images_with_several_labels"] + rep.lost["images_without_label"] + rep.n_images
        8
    """
    return _write(ds, dst, link=link, splits=splits, progress=progress)


def _write(ds: Dataset, dst: Path, *, link: str = "copy", splits: bool | None = None,
           progress: Progress | None = None, fmt: str = "an image folder") -> ExportReport:
    """``write``; ``fmt`` names the format in the notes (YOLO's classify writer writes this layout)."""
    if link not in LINK_MODES:
        raise FormatError(f"link must be one of {LINK_MODES}, got {link!r}")
    bad = [c.name for c in ds.schema.classes if c.name.startswith(".") or "/" in c.name or "\\" in c.name]
    if bad:  # a leading '.' (also '.' and '..') is a hidden folder, which reading skips
        raise FormatError(f"class names must be usable as folder names, got {bad[0]!r} (no '/', '\\' or leading "
                          "'.': reading skips hidden folders)")
    dst = Path(dst)
    rep = ExportReport(path=str(dst), format="imagefolder")
    a = ds.annotations
    given = ds.images.split.tolist() if ds.images.split is not None else [""] * ds.n_images
    use_splits = any(given) if splits is None else splits
    odd = sorted({s for s in given if s and s.lower() not in SPLIT_FOLDERS})
    if use_splits and odd:
        raise FormatError(f"split folders must be named {', '.join(SPLIT_FOLDERS)} to be read back as splits, "
                          f"got {odd[0]!r}; rename the splits or pass splits=False", path=dst)
    names = [c.name for c in ds.schema.classes]
    if not use_splits and names and all(n.lower() in SPLIT_FOLDERS for n in names):
        raise FormatError(f"class folders named only like splits ({', '.join(names)}) would be read back as split "
                          "folders; pass splits=True", path=dst)
    slices = ds.image_slices()
    chosen: dict[int, int] = {}
    first_rows = np.zeros(len(a), bool)
    for i in range(ds.n_images):
        labels = a.label[slices[i]:slices[i + 1]]
        distinct = np.unique(labels)
        if len(distinct) == 0:
            rep.lost["images_without_label"] += 1
        elif len(distinct) > 1:
            rep.lost["images_with_several_labels"] += 1
        else:
            chosen[i] = int(distinct[0])
            first_rows[slices[i]] = True
            if len(labels) > 1:
                rep.lost["duplicate_labels"] += len(labels) - 1
    if rep.lost["images_with_several_labels"]:
        rep.notes.append("a class folder holds one label per image: multi-label images were not written")
    folder = {i: (((given[i] or "train") + "/") if use_splits else "") + ds.schema.classes[c].name
              for i, c in chosen.items()}
    if use_splits and any(not given[i] for i in chosen):
        rep.notes.append("images without a split were written to 'train'")
    hidden: list[str] = []
    tick, done = Ticks(progress, len(chosen)), 0
    with atomic_dir(dst) as tmp:
        for c in ds.schema.classes:
            for s in (sorted({(given[i] or "train") for i in chosen}) or ["train"]) if use_splits else [""]:
                (tmp / s / c.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(set(folder.values())):
            members = [i for i in chosen if folder[i] == f]
            for i, name in zip(members, output_names([str(ds.images.path[i]) for i in members]), strict=True):
                if not place_image(image_path(ds, i), tmp / PurePosixPath(f) / name, link):
                    rep.lost["image_files"] += 1
                elif name.startswith(".") or PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
                    hidden.append(name)
                done += 1
                tick(done)
    tick.end()
    if hidden:  # written, but reading skips hidden files and files without an image suffix
        rep.lost["image_names"] += len(hidden)
        rep.notes.append(f"{len(hidden)} images were written under names that reading skips (hidden, or no image "
                         f"suffix): {hidden[:5]}")
    rep.lost.update(count_lost(ds, rows=first_rows))
    if rep.lost["image_files"]:
        rep.notes.append(f"{rep.lost['image_files']} image files were missing and not written")
    rep.n_images = len(chosen) - rep.lost["image_files"]
    rep.n_annotations = rep.n_images
    lose_class_fields(ds, rep, fmt=fmt, back=None)  # a class folder holds the name only
    _note_order(names, rep)
    return rep


def _note_order(names: list[str], rep: ExportReport) -> None:
    """A note when reading back (classes sorted by name, as torchvision sorts them) gives other label indexes."""
    back = {n: k for k, n in enumerate(sorted(names))}
    moved = [(n, k, back[n]) for k, n in enumerate(names) if back[n] != k]
    if moved:
        shown = ", ".join(f"{n!r} {old} -> {new}" for n, old, new in moved[:5])
        more = f" ({len(moved) - 5} more)" if len(moved) > 5 else ""
        rep.notes.append(f"classes are read back sorted by name (as torchvision's ImageFolder sorts them), not in "
                         f"this order: the label indexes of {len(moved)} classes change ({shown}{more})")


write_imagefolder = write
