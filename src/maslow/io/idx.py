"""IDX files (MNIST and its relatives): an images file and a labels file, optionally gzipped.

Glossary:

- *IDX*: a big-endian binary array: two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
  ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions, one uint32 per dimension,
  then the values in C order. Images are ``(n, height, width)`` (``idx3``), labels ``(n,)`` (``idx1``).
- *member*: image ``i`` of an images file is the path ``<file>#<i>``, e.g.
  ``images/t10k-images-idx3-ubyte.gz#17``; ``maslow.io.images`` loads it like any image file.
- *pairing*: the labels file of ``X-images-idx3-ubyte[.gz]`` is ``X-labels-idx1-ubyte[.gz]`` in the same
  folder, a sibling folder (e.g. ``annotations/``) or anywhere under the folder read.
- *split*: from the file name prefix: ``t10k`` (MNIST's test set) -> ``test``, ``train`` -> ``train``; any
  other prefix is the split's name; no prefix, no split.
- *classes*: IDX stores label indexes only; names default to ``"0"``, ``"1"``, ... (pass ``names=`` for e.g.
  Fashion-MNIST). Writing keeps the label index (the class's position in the schema) only: names other than
  the index, class ids, supercategories and classes past the highest label written are counted as lost.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.errors import FormatError
from maslow.io._class_losses import lose_class_fields
from maslow.io._common import Collector, ExportReport, safe_relpath
from maslow.io._export import count_lost
from maslow.io._walk import Skipped, files_under
from maslow.io.images import image_path, load_path
from maslow.io.images import read_idx as _read_array
from maslow.io.registry import Progress, Ticks, warn_issues

_IMAGES = re.compile(r"idx3[-_.]ubyte(\.gz)?$")
_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
          np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def _split(name: str) -> str:
    prefix = name.split("images")[0].rstrip("-_.") if "images" in name else ""
    return {"t10k": "test"}.get(prefix, prefix)


def _labels_for(images: Path, folder: Path, skipped: Skipped) -> Path | None:
    base = images.name[:-3] if images.name.endswith(".gz") else images.name
    want = base.replace("images", "labels").replace("idx3", "idx1")
    if want == base:
        return None
    cands = (want, want + ".gz")
    dirs = [images.parent, *sorted(d for d in images.parent.parent.iterdir() if d.is_dir())]
    for d in dirs:
        for c in cands:
            if (d / c).is_file():
                return d / c
    found = files_under(str(folder), lambda name: name in cands, skipped=skipped)  # sorted; linked folders followed
    return folder.joinpath(*found[0]) if found else None


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    labels: Path | None = None,
    names: list[str] | None = None,
) -> tuple[Dataset, Report]:
    """Read IDX images (and their labels) as a classification Dataset.

    Args:
        src: a folder (every ``*idx3-ubyte[.gz]`` file under it is read, with its labels file) or one images
            file.
        images_root: the Dataset root the member paths are relative to (default: ``src``, or the images
            file's folder).
        strict: raise FormatError at the first error or warning instead of reporting it.
        labels: the labels file, when ``src`` is one images file whose labels can't be found by name.
        names: class names, in label order (default ``"0"``, ``"1"``, ...).

    Returns:
        The Dataset (one box-less annotation per image; sizes from the header) and the import Report.

    Raises:
        FormatError: a file is not valid IDX, images are not ``(n, h, w)``, labels are not ``(n,)`` integers.
    """
    src = Path(src)
    col = Collector(strict=strict)
    if not src.exists():
        raise FormatError("not found: must be a folder of IDX files or an idx3 images file", path=src)
    folder = src if src.is_dir() else src.parent
    # sorted; linked folders followed, each real folder once; folders that can't be listed, broken links: reported
    skipped = Skipped()
    files = [src.joinpath(*parts) for parts in files_under(str(src), lambda name: _IMAGES.search(name) is not None,
                                                           skipped=skipped)] if src.is_dir() else [src]
    if not files:
        raise FormatError(f"must hold an IDX images file (*idx3-ubyte or *idx3-ubyte.gz){skipped.hint()}", path=src)
    root = Path(images_root) if images_root is not None else folder
    paths: list[str] = []
    widths: list[int] = []
    heights: list[int] = []
    splits: list[str] = []
    image_rows: list[np.ndarray] = []
    label_rows: list[np.ndarray] = []
    for f in files:
        arr = _read_array(f)
        if arr.ndim != 3:
            raise FormatError(f"images must be a 3-D (n, height, width) array, got shape {arr.shape}", path=f,
                              record="header")
        n, h, w = arr.shape
        # its path below root as reached, through linked folders; resolved (links followed) where it is not below
        rel = os.path.relpath(os.path.abspath(f), os.path.abspath(root))
        rel = safe_relpath(str(f.resolve()) if rel.split(os.sep, 1)[0] == ".." else rel, root=root, file=f)
        lab_file = Path(labels) if labels is not None and len(files) == 1 else _labels_for(f, folder, skipped)
        if lab_file is None:
            col.add("idx_no_labels", "no labels file found; images imported without labels", file=f)
        else:
            y = _read_array(lab_file)
            if y.ndim != 1 or len(y) != n or y.dtype.kind not in "iu":
                raise FormatError(f"labels must be ({n},) integers to match {f.name}, got {y.dtype} {y.shape}",
                                  path=lab_file, record="header")
            if len(y) and y.min() < 0:
                raise FormatError(f"labels must be >= 0, got {int(y.min())}", path=lab_file)
            image_rows.append(np.arange(n, dtype=np.int64) + len(paths))
            label_rows.append(y.astype(np.int64))
        paths.extend(f"{rel}#{i}" for i in range(n))
        widths.extend([w] * n)
        heights.extend([h] * n)
        splits.extend([_split(f.name)] * n)
    skipped.report(col)
    image = np.concatenate(image_rows) if image_rows else np.zeros(0, np.int64)
    label = np.concatenate(label_rows) if label_rows else np.zeros(0, np.int64)
    top = int(label.max()) if len(label) else -1
    if names is not None and top >= len(names):
        raise FormatError(f"names must cover every label, got {len(names)} names and label {top}", path=src)
    class_names = list(names) if names is not None else [str(i) for i in range(max(10, top + 1))]
    schema = LabelSchema(classes=tuple(ClassDef(c, label_types=("tag",)) for c in class_names),
                         tasks=(Task.CLASSIFICATION,))
    images = Images(path=str_array(paths), width=np.asarray(widths, np.int64), height=np.asarray(heights, np.int64),
                    split=str_array(splits))
    return Dataset(schema=schema, images=images, annotations=Annotations(image=image, label=label), root=root), \
        col.report()


def read_idx(src: str | Path, **options: Any) -> Dataset:
    """Read IDX images and labels (see ``parse``); a MaslowWarning summarises any import issues.

    Example:
        >>> ds = read_idx("mnist/")  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), **options), source=src)


read_mnist = read_idx


def _big_endian(dtype: np.dtype[Any]) -> np.dtype[Any]:
    dt = dtype.newbyteorder(">") if dtype.itemsize > 1 else dtype
    if dt not in _CODES:
        raise FormatError(f"IDX can store uint8, int8, int16, int32, float32 or float64, got {dtype}")
    return dt


def _header(dt: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, _CODES[dt], len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def _encode(arr: np.ndarray) -> bytes:
    dt = _big_endian(arr.dtype)
    return _header(dt, arr.shape) + np.ascontiguousarray(arr, dtype=dt).tobytes()


def _pixels(ds: Dataset, i: int, like: np.ndarray | None) -> np.ndarray:
    px = load_path(image_path(ds, i))
    where = f"images[{i}]"
    if px.ndim == 3 and px.shape[2] == 3 and (px == px[:, :, :1]).all():
        px = np.ascontiguousarray(px[:, :, 0])  # an RGB file holding grey pixels
    if px.ndim != 2:
        raise FormatError(f"IDX images must be greyscale (h, w), got shape {px.shape}", path=image_path(ds, i),
                          record=where)
    if like is not None and (px.shape != like.shape or px.dtype != like.dtype):
        raise FormatError(f"IDX images must all have the same size and type, got {px.shape} {px.dtype} after "
                          f"{like.shape} {like.dtype} (image 0)", path=image_path(ds, i), record=where)
    return px


def write(ds: Dataset, dst: Path, *, compress: bool = True, progress: Progress | None = None) -> ExportReport:
    """Write ``ds`` as IDX pairs, one per split: ``<prefix>-images-idx3-ubyte[.gz]`` and ``-labels-idx1-ubyte``.

    The prefix is the split name (``t10k`` for ``test``, as MNIST names it; none for images without a split).
    A dataset without annotations gets images files only.

    Args:
        compress: gzip the files (``.gz``).
        progress: called as ``progress(done, total)`` over the images written (``registry.Ticks``).

    Returns:
        ExportReport; ``lost["class_names"]`` (the names that are not their index: class k is read back as
        ``"k"``), ``lost["classes"]`` (classes past the highest label written and past 9: reading makes
        ``max(10, highest + 1)`` classes), ``lost["class_id"]``, ``lost["supercategory"]``, plus any boxes,
        attributes, ... (IDX holds pixels and one label per image).

    Raises:
        FormatError: an image that is not greyscale or differs in size or type from the first; an image
            with no label or several (when the dataset has labels).

    Example:
        >>> from maslow.io.idx import read_idx
        >>> ds = read_idx("mnist/")  # doctest: +SKIP
        >>> write(ds.select_images(range(50)), "mnist50/")  # doctest: +SKIP
    """
    dst = Path(dst)
    rep = ExportReport(path=str(dst), format="mnist")
    a = ds.annotations
    counts = np.bincount(a.image, minlength=ds.n_images) if ds.n_images else np.zeros(0, np.int64)
    labelled = len(a) > 0
    if labelled and (counts != 1).any():
        i = int(np.flatnonzero(counts != 1)[0])
        raise FormatError(f"IDX needs exactly one label per image, got {int(counts[i])} "
                          f"({int(np.count_nonzero(counts != 1))} images differ)", path=image_path(ds, i),
                          record=f"images[{i}]")
    if ds.n_images == 0:
        raise FormatError("IDX needs at least one image, got an empty dataset", path=dst)
    names = [c.name for c in ds.schema.classes]
    _lose_classes(ds, rep, names, top=int(a.label.max()) if labelled else -1)
    label_of = np.zeros(ds.n_images, np.int64)
    label_of[a.image] = a.label
    ldt = np.dtype("u1") if len(names) <= 256 else np.dtype(">i4")
    splits = ds.images.split.tolist() if ds.images.split is not None else [""] * ds.n_images
    tick = Ticks(progress, ds.n_images)
    first = _pixels(ds, 0, None)
    dt = _big_endian(first.dtype)
    suffix = ".gz" if compress else ""
    done = 0
    with atomic_dir(dst) as tmp:
        for s in dict.fromkeys(splits):
            rows = [i for i in range(ds.n_images) if splits[i] == s]
            prefix = {"test": "t10k-", "": ""}.get(s, f"{s}-")
            with _open(tmp / f"{prefix}images-idx3-ubyte{suffix}", compress) as f:  # an image at a time
                f.write(_header(dt, (len(rows), *first.shape)))
                for i in rows:
                    f.write(np.ascontiguousarray(first if i == 0 else _pixels(ds, i, first), dtype=dt).tobytes())
                    done += 1
                    tick(done)
            if labelled:
                with _open(tmp / f"{prefix}labels-idx1-ubyte{suffix}", compress) as f:
                    f.write(_encode(label_of[rows].astype(ldt)))
    tick.end()
    rep.lost.update(count_lost(ds))
    rep.n_images = ds.n_images
    rep.n_annotations = len(a)
    return rep


def _lose_classes(ds: Dataset, rep: ExportReport, names: list[str], *, top: int) -> None:
    """Count what IDX keeps none of: the names that differ from the label index (reading names class k ``"k"``),
    the classes past the highest label written (reading makes ``max(10, top + 1)`` classes), the ids and
    supercategories."""
    renamed = [(k, n) for k, n in enumerate(names) if n != str(k)]
    if renamed:
        rep.lost["class_names"] += len(renamed)
        shown = ", ".join(f"{n!r} -> '{k}'" for k, n in renamed[:5])
        more = f" ({len(renamed) - 5} more)" if len(renamed) > 5 else ""
        rep.notes.append(f"IDX stores label indexes 0..{len(names) - 1}, not names: {len(renamed)} classes are read "
                         f"back named by their index ({shown}{more}); read_idx(names=...) names them again")
    n_back = max(10, top + 1)
    if len(names) > n_back:
        rep.lost["classes"] += len(names) - n_back
        rep.notes.append(f"IDX does not store the number of classes: reading back makes max(10, highest label + 1) "
                         f"= {n_back}, so the last {len(names) - n_back} classes (no image has them; "
                         f"{names[n_back]!r} first) are not read back")
    elif len(names) < n_back:
        rep.notes.append(f"IDX does not store the number of classes: reading back makes {n_back} ('0'..'{n_back - 1}'),"
                         f" not {len(names)}; read_idx(names=...) gives the count")
    lose_class_fields(ds, rep, fmt="IDX", back=None)


@contextlib.contextmanager
def _open(path: Path, compress: bool) -> Iterator[BinaryIO]:
    """``path`` open for writing, gzipped (``mtime=0``: the same bytes each run) when ``compress``; deflate's output
    does not depend on how its input is cut into writes."""
    with open(path, "wb") as raw:
        if not compress:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            yield f  # type: ignore[misc]


write_idx = write
write_mnist = write
