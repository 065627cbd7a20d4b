"""Helpers shared by the folder-based writers (YOLO, VOC, image folders, IDX): loss accounting, output file
names, and placing image files (symlink, hardlink, copy, or PNG for IDX members)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core import boxes as B
from maslow.core.dataset import Dataset
from maslow.errors import FormatError
from maslow.io._coco_obb import BBOX_COLUMN as OBB_BBOX_COLUMN
from maslow.io._coco_obb import COLUMN as OBB_COLUMN
from maslow.io.images import idx_member, image_info, image_path, load_path

LINK_MODES = ("symlink", "hardlink", "copy")


def count_lost(ds: Dataset, *, keep: Iterable[str] = (), rows: np.ndarray | None = None) -> Counter[str]:
    """Per column, how many values the target format can't express.

    Args:
        keep: columns the writer does express: ``box``, ``score``, ``mask``, ``polygon``, ``keypoints``,
            ``iscrowd``, ``annotator``, ``source``, ``attributes`` or ``attributes:<name>``, ``extra``,
            ``images.extra``.
        rows: (n,) bool, the annotations actually written (default all).
    """
    keep = set(keep)
    a = ds.annotations
    sel = np.ones(len(a), bool) if rows is None else np.asarray(rows, bool)
    out: Counter[str] = Counter()

    def put(name: str, flags: Any) -> None:
        n = int(np.count_nonzero(flags & sel))
        if n and name not in keep:
            out[name] += n

    assert a.box is not None and a.iscrowd is not None and a.source is not None
    put("box", a.has_box)
    if a.score is not None:
        put("score", ~np.isnan(a.score))
    if a.polygon is not None:
        put("polygon", ~a.polygon.null)
    for name in ("mask", "annotator"):
        col = getattr(a, name)
        if col is not None:
            put(name, np.array([v is not None and v != "" for v in col.tolist()], bool))
    if a.keypoints is not None:
        put("keypoints", ~np.isnan(a.keypoints).all(axis=(1, 2)) if a.keypoints.shape[1] else np.zeros(len(a), bool))
    put("iscrowd", a.iscrowd)
    put("source", a.source != "human")
    for k, col in a.attributes.items():
        if "attributes" not in keep and f"attributes:{k}" not in keep:
            n = sum(v is not None for v, s in zip(col.tolist(), sel.tolist(), strict=True) if s)
            if n:
                out["attributes"] += n
    if "extra" not in keep:
        for k, col in a.extra.items():
            if k in (B.COCO_BBOX, OBB_COLUMN, OBB_BBOX_COLUMN):  # the box or oriented box as read: it goes wherever
                continue  # the box or the 4-point polygon goes
            n = sum(_present(v) for v, s in zip(col.tolist(), sel.tolist(), strict=True) if s)
            if n:
                out["annotations.extra"] += n
    if "images.extra" not in keep:
        for col in ds.images.extra.values():
            n = sum(_present(v) for v in col.tolist())
            if n:
                out["images.extra"] += n
    return out


def label_notes(ds: Dataset, rows: np.ndarray | None = None, *, keeps_source: bool = False) -> list[str]:
    """Notes for a writer whose labels are all alike (YOLO, VOC, ...): the rows ``rows`` (default all) that are
    not human labels (model predictions, pseudo-labels), and the images whose rows come from several annotators
    or from a model beside them, were written as labels like the rest. ``keeps_source``: the format marks a model's
    rows (CVAT's ``source="auto"``), so only the annotators are noted."""
    a = ds.annotations
    assert a.source is not None
    sel = np.ones(len(a), bool) if rows is None else np.asarray(rows, bool)
    notes = []
    machine = sel & (a.source != "human")
    if machine.any() and not keeps_source:
        kinds = Counter(a.source[machine].tolist())
        notes.append(f"{int(machine.sum())} annotations not made by a person (source: "
                     f"{', '.join(f'{n} {k}' for k, n in kinds.items())}; e.g. model predictions) were written as "
                     "labels like the human ones: the format can't mark them, only their source and score fields "
                     "are lost")
    sources = a.source[sel].tolist()
    people = a.annotator[sel].tolist() if a.annotator is not None else []
    if len(set(sources)) < 2 and len(set(people)) < 2:  # one maker for every row (the usual case): no image has two
        return notes
    per_image: dict[int, set[tuple[str, object]]] = {}
    for i, k in zip(a.image[sel].tolist(), zip(sources, people or [None] * len(sources), strict=True), strict=True):
        per_image.setdefault(i, set()).add(k)
    several = [i for i, ks in per_image.items() if len(ks) > 1]
    if several:
        n_rows = int(np.isin(a.image, several)[sel].sum())
        notes.append(f"{len(several)} images hold the annotations of several annotators or of a model beside them "
                     f"({n_rows} annotations, all written as labels): an object there may be labelled once per "
                     "annotator; select one annotator's rows (ds.select) to write one set of labels")
    return notes


def _present(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v)) and v != ""


def output_names(paths: Sequence[str]) -> list[str]:
    """A file name per image path, unique by stem: the base name, or the whole relative path joined with ``__``
    where base names collide; an image listed again under the same path gets ``__2``, ``__3``, ... before its
    suffix (one label file per image record: a second record's labels overwrote the first's). IDX members
    (``t10k-images-idx3-ubyte.gz#17``) become ``t10k-images-idx3-ubyte_000017.png``."""
    base: list[str] = []
    for p in paths:
        path, member = idx_member(p)
        base.append(f"{path.name.split('.')[0]}_{member:06d}.png" if member is not None else PurePosixPath(p).name)
    stems = Counter(PurePosixPath(b).stem for b in base)
    out = []
    for p, b in zip(paths, base, strict=True):
        if stems[PurePosixPath(b).stem] > 1:
            flat = str(p).replace("/", "__").replace("#", "_")
            b = flat if "#" not in str(p) else flat + ".png"
        out.append(b)
    taken = {PurePosixPath(b).stem for b in out}
    seen: Counter[str] = Counter()
    for i, b in enumerate(out):
        stem = PurePosixPath(b).stem
        seen[stem] += 1
        if seen[stem] > 1:  # the same path again
            k = seen[stem]
            while f"{stem}__{k}" in taken:
                k += 1
            taken.add(f"{stem}__{k}")
            out[i] = f"{stem}__{k}{PurePosixPath(b).suffix}"
    return out


def place_image(src: Path, dst: Path, mode: str) -> bool:
    """Put the image ``src`` at ``dst``: ``symlink`` (absolute target), ``hardlink`` or ``copy``.

    IDX members are decoded and written as PNG whatever the mode. Returns False when ``src`` is missing.
    A hardlink that the file system refuses (another device) falls back to a copy.
    """
    if mode not in LINK_MODES:
        raise FormatError(f"image mode must be one of {LINK_MODES}, got {mode!r}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    base, member = idx_member(src)
    if member is not None:
        if not base.exists():
            return False
        from PIL import Image  # loads on first use: exporting annotations alone never needs it

        Image.fromarray(load_path(src)).save(dst, format="PNG")
        return True
    if not src.is_file():
        return False
    if mode == "symlink":
        os.symlink(src.resolve(), dst)
    elif mode == "hardlink":
        try:
            os.link(src, dst)
        except OSError:
            import shutil  # loads on first use (bz2, lzma and more come with it)

            shutil.copy2(src, dst)
    else:
        import shutil

        shutil.copy2(src, dst)
    return True


def known_sizes(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(m,) widths and heights, with unknown (0) sizes read from the image headers where the file exists."""
    w, h = ds.images.width.copy(), ds.images.height.copy()
    for i in np.flatnonzero((w == 0) | (h == 0)).tolist():
        try:
            info = image_info(image_path(ds, i))
        except FormatError:
            continue
        w[i], h[i] = info.width, info.height
    return w, h


def fmt_num(v: float, decimals: int | None = None) -> str:
    """A number as text: integers without a decimal point, others shortest (or rounded to ``decimals``)."""
    if decimals is not None:
        s = f"{v:.{decimals}f}"
        return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s
    if float(v).is_integer():
        return str(int(v))
    return repr(float(v))


class Tally:
    """Counts by key, and where each key was first counted, so that a ``Counter`` filled from them has the keys
    in the order a row-by-row loop would have inserted them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, tuple[int, ...]] = {}

    def add(self, key: str, n: int, where: tuple[int, ...]) -> None:
        if n:
            self.counts[key] += n
            if key not in self.first or where < self.first[key]:
                self.first[key] = where

    def into(self, out: Counter[str]) -> None:
        for key in sorted(self.first, key=self.first.__getitem__):
            out[key] += self.counts[key]
