"""DOTA oriented boxes (ground truth): one ``labelTxt/<image stem>.txt`` per image, four corners per object.

Glossary:

- *layout*: a DOTA root holds ``images/`` (the image files, PNG in DOTA itself) and ``labelTxt/`` (one label file
  per image, named by the image's stem). DOTA ships its splits as ``train/``, ``val/`` (each a root of its own);
  a folder whose subfolders hold ``labelTxt/`` is read with the subfolder names as splits. ``src`` may also be a
  ``labelTxt`` folder (the images in ``images/`` beside it) or one label file.
- *object line*: ``x1 y1 x2 y2 x3 y3 x4 y4 category difficult``: the four corners of the oriented box in absolute
  pixels (floats; DOTA 1.0 prints integers, 1.5 and 2.0 ``.0``), in order, clockwise from the first in DOTA's
  own files; ``category`` is one word (``small-vehicle``); ``difficult`` is 0 or 1 (DOTA's evaluation ignores
  difficult objects). DOTA_devkit reads a line without ``difficult`` as 0.
- *header lines*: ``imagesource:GoogleEarth`` and ``gsd:0.146343590398`` (the ground sample distance, metres per
  pixel, or ``null``) open DOTA 1.0 files; 1.5 and 2.0 files may lack them.
- *oriented box*: maslow holds one as a ``polygon`` of one ring of the 4 corners as written, with their
  axis-aligned extent as ``box`` (``core.obb``), as the YOLO OBB reader does.
- *kept*: ``difficult`` is the bool attribute ``difficult`` (as VOC's reader keeps it; None for a line without
  it, an int where a file holds other levels than 0/1); the header lines are ``images.extra["dota_imagesource"]``
  and ``["dota_gsd"]`` (their text, None where a file has none); ``info["dota"]["decimals"]``: the most decimals
  a coordinate was printed with (up to 6; files printed with more are written back as the shortest exact text),
  so a round trip prints the values as they were. The writer adds
  ``classes.txt`` (the class names in order, one a line) beside ``labelTxt/``, which the reader takes as the
  class order; DOTA tools ignore it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array, str_array
from maslow.errors import FormatError
from maslow.io._class_losses import lose_class_fields
from maslow.io._coco_stream import no_gc
from maslow.io._common import Collector, ExportReport, read_bytes
from maslow.io._dota_lines import (
    COORDS,
    KEPT_DECIMALS,
    bulk_numbers,
    check_decimals,
    fmt_rows,
    index_images,
    line_name,
    most_decimals,
    numbers,
    quads,
)
from maslow.io._export import Tally, count_lost, label_notes, output_names, place_image
from maslow.io.images import image_info, image_path
from maslow.io.registry import Progress, Ticks, warn_issues

#: header keys -> the ``images.extra`` column that keeps them
HEADERS = {"imagesource": "dota_imagesource", "gsd": "dota_gsd"}
CLASSES_FILE = "classes.txt"
_FLAGS = {"0": False, "1": True, "false": False, "true": True}
_LEVEL = object()  # a difficult that is not 0/1


@dataclass
class _Group:
    """Label files of one split, and where its images are."""

    split: str
    labels: Path | None  # the label folder (None: one label file given)
    images: Path  # where the images are looked for
    files: list[Path] = field(default_factory=list)


@dataclass
class _Rows:
    """The images and objects read, as columns."""

    known: set[str] | None = None  # the classes given: objects of others are not imported
    paths: list[str] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    heads: list[dict[str, str]] = field(default_factory=list)  # each label file's header values

    image: list[int] = field(default_factory=list)
    cls: list[int] = field(default_factory=list)  # index into classes
    xy: list[np.ndarray] = field(default_factory=list)  # (k, 8) per file
    difficult: list[Any] = field(default_factory=list)
    classes: dict[str, int] = field(default_factory=dict)  # name -> index, in order of first use
    unknown: list[tuple[int, str, Path, int]] = field(default_factory=list)  # image, class, file, line
    decimals: int = 0


def _layout(src: Path) -> tuple[list[_Group], Path]:
    """The label groups and the DOTA root (which the image paths are relative to without ``images_root``)."""
    if not src.exists():
        raise FormatError("not found: must be a DOTA root (images/ and labelTxt/), a labelTxt folder or a label file",
                          path=src)
    if src.is_file():
        root = src.parent.parent if src.parent.name == "labelTxt" else src.parent
        images = root / "images" if (root / "images").is_dir() else src.parent
        return [_Group("", None, images, [src])], root
    groups = []
    if (src / "labelTxt").is_dir():
        groups.append(_Group("", src / "labelTxt", src / "images"))
    for sub in sorted(p for p in src.iterdir() if p.is_dir() and (p / "labelTxt").is_dir()):
        groups.append(_Group(sub.name, sub / "labelTxt", sub / "images"))
    root = src
    if not groups:
        if not any(p.suffix == ".txt" and p.name != CLASSES_FILE for p in src.iterdir()):
            raise FormatError("must hold labelTxt/ (DOTA label files, one per image), split folders holding one, or "
                              "the label files themselves", path=src)
        root = src.parent if src.name == "labelTxt" else src
        images = src.parent / "images" if (src.parent / "images").is_dir() else src
        groups.append(_Group("", src, images))
    for g in groups:
        if g.labels is not None:
            g.files = sorted(p for p in g.labels.iterdir() if p.suffix == ".txt" and p.name != CLASSES_FILE)
    return groups, root


def _read_file(path: Path, i: int, rows: _Rows, col: Collector) -> dict[str, str]:
    """Append the objects of label file ``path`` (image row ``i``) to ``rows``; returns its header values."""
    known = rows.known
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FormatError(f"label file must be UTF-8 text: {e}", path=path) from None
    toks = [line.split() for line in text.splitlines()]
    head: dict[str, str] = {}
    for j in [j for j, t in enumerate(toks) if t and len(t) != 9 and len(t) != 10]:  # headers (or bad lines)
        n, line = j + 1, " ".join(toks[j])
        key, colon, value = line.partition(":")
        key = key.strip()
        if colon and len(toks[j]) < 9 and key.lower() in HEADERS:
            head[key.lower()] = value.strip()
        elif colon and len(toks[j]) < 9 and " " not in key:
            col.add("dota_unknown_header", f"header line {key!r} is not one of DOTA's ({', '.join(HEADERS)}); "
                    "not kept", file=path, record=f"line {n}", field=key, image=i)
        else:
            raise FormatError(f"line must have 9 or 10 fields (x1 y1 x2 y2 x3 y3 x4 y4 category difficult), got "
                              f"{len(toks[j])}", path=path, record=f"line {n}")
    lines = [j + 1 for j, t in enumerate(toks) if len(t) == 9 or len(t) == 10]
    if not lines:
        return head
    body = [toks[n - 1] for n in lines]
    coords = [t[:8] for t in body]
    vals = bulk_numbers(coords, 8)
    if vals is None:  # name the first value that is not a number
        vals = np.array([numbers(t, COORDS, path, n) for t, n in zip(coords, lines, strict=True)])
    rows.decimals = max(rows.decimals, most_decimals([v for t in coords for v in t]))
    names = [t[8] for t in body]
    keep = list(range(len(body)))
    if known is not None and not known.issuperset(names):
        keep = [j for j, nm in enumerate(names) if nm in known]
        rows.unknown += [(i, nm, path, n) for nm, n in zip(names, lines, strict=True) if nm not in known]
    seen = rows.classes
    rows.cls += [seen.setdefault(names[j], len(seen)) for j in keep]
    flags = [_FLAGS.get(body[j][9], _LEVEL) if len(body[j]) == 10 else None for j in keep]
    if _LEVEL in flags:  # another level than 0/1 (or a word): read one by one
        flags = [_difficult(body[j][9], path, lines[j]) if len(body[j]) == 10 else None for j in keep]
    rows.difficult += flags
    rows.image += [i] * len(keep)
    rows.xy.append(vals if len(keep) == len(body) else vals[keep])
    return head


def _difficult(tok: str, path: Path, n: int) -> bool | int:
    flag = _FLAGS.get(tok.lower())
    if flag is not None:
        return flag
    try:
        level = int(tok)
    except ValueError:
        raise FormatError(f"difficult must be 0 or 1 (an integer level), got {tok!r}", path=path, record=f"line {n}",
                          field="difficult") from None
    return level


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    classes: list[str] | None = None,
) -> tuple[Dataset, Report]:
    """Read DOTA ground truth (see the module glossary).

    Args:
        src: a DOTA root (``images/`` and ``labelTxt/``), a folder of split roots (``train/labelTxt``, ...), a
            ``labelTxt`` folder or one label file.
        images_root: folder of the image files when they are not in the layout; images are found under it by
            stem (in subfolders too). It becomes the Dataset's root.
        strict: raise FormatError at the first error or warning instead of reporting it.
        classes: the class names in order; objects of other classes are reported and not imported (default: the
            writer's classes.txt when present, then the names in the files in order of first use).

    Returns:
        The Dataset (tasks detection and instance segmentation: each object a 4-point polygon with its extent as
        box; sizes from the image files, 0 where an image is missing) and the import Report.

    Raises:
        FormatError: a line that is not 9 or 10 fields (or a header), a coordinate that is not a finite number, a
            ``difficult`` that is not an integer (each names the file, line and field); no label files.
    """
    src = Path(src)
    col = Collector(strict=strict)
    groups, root = _layout(src)
    listed = _classes_file(root) if classes is None else list(dict.fromkeys(classes))
    rows = _Rows(classes={c: k for k, c in enumerate(listed or [])}, known=None if classes is None else set(classes))
    with no_gc():  # millions of small lists of tokens, none in a cycle
        if images_root is None:
            for g in groups:
                _read_group(g, index_images(g.images, recursive=False, col=col), g.images, _relative(g.images, root),
                            rows, col)
        else:  # every image found under images_root by stem; those no label file names come last, without a split
            found = index_images(Path(images_root), recursive=True, col=col)
            for g in groups:
                _read_group(g, found, Path(images_root), "", rows, col, unlabelled=False)
            if groups[0].labels is not None:
                labelled = {p.stem for g in groups for p in g.files}
                rest = _Group("", groups[0].labels, Path(images_root))
                _read_group(rest, {s: p for s, p in found.items() if s not in labelled}, Path(images_root), "",
                            rows, col)
    for sub in ([] if src.is_file() else _unlabelled(src)):
        col.add("dota_no_labels", f"split folder {sub.name!r} has images/ and no labelTxt/; not read (DOTA's test "
                "split has no labels)", severity="info", file=sub)
    ds = _build(rows, Path(images_root) if images_root is not None else root, col)
    return ds, col.report()


def _read_group(g: _Group, found: dict[str, str], folder: Path, prefix: str, rows: _Rows, col: Collector, *,
                unlabelled: bool = True) -> None:
    """Read the label files of ``g`` and find their images: ``found`` maps stems to image files in ``folder``, whose
    paths in the Dataset start with ``prefix``; ``unlabelled``: the images found without a label file come too."""
    labels = {p.stem: p for p in g.files}
    without = [s for s in found if s not in labels] if unlabelled and g.labels is not None else []
    for s in sorted([*labels, *without]):
        i = len(rows.paths)
        name = found.get(s)
        rel = prefix + (name if name is not None else f"{s}.png")
        w = h = 0
        if name is not None:
            try:
                info = image_info(folder / name)
                w, h = info.width, info.height
            except FormatError as err:
                col.add("unreadable_image", str(err), severity="error", file=rel, image=i)
        else:
            col.add("missing_image", f"label file has no image: looked for {s}.* in {folder}", file=labels[s], image=i)
        rows.paths.append(rel)
        rows.widths.append(w)
        rows.heights.append(h)
        rows.splits.append(g.split)
        if s in labels:
            rows.heads.append(_read_file(labels[s], i, rows, col))
        else:
            rows.heads.append({})
            col.add("dota_missing_label", f"image has no label file {s}.txt in {g.labels}; read without objects",
                    file=rel, image=i)


def _relative(folder: Path, root: Path) -> str:
    """``folder`` relative to ``root`` as a path prefix (``"images/"``), or "" for the root itself."""
    try:
        rel = folder.relative_to(root).as_posix()
    except ValueError:
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
    return "" if rel == "." else rel + "/"


def _classes_file(root: Path) -> list[str] | None:
    path = root / CLASSES_FILE
    if not path.is_file():
        return None
    names = [x.strip() for x in path.read_text(encoding="utf-8-sig").splitlines() if x.strip()]
    return list(dict.fromkeys(names))


def _unlabelled(src: Path) -> list[Path]:
    return sorted(p for p in src.iterdir() if p.is_dir() and (p / "images").is_dir() and not (p / "labelTxt").is_dir())


def _build(rows: _Rows, root: Path, col: Collector) -> Dataset:
    names = list(rows.classes)
    for i, cls, path, n in rows.unknown:
        col.add("dota_unknown_class", f"category must be one of the classes given ({', '.join(names[:10])}), got "
                f"{cls!r}; object not imported", severity="error", file=path, record=f"line {n}", field="category",
                image=i)
    xy = np.concatenate(rows.xy) if rows.xy else np.zeros((0, 8))
    n = len(xy)
    quad = xy.reshape(n, 4, 2)
    box = np.concatenate([quad.min(axis=1), quad.max(axis=1)], axis=1)
    polygon = Polygons(xy.reshape(-1), np.arange(0, 8 * n + 1, 8), np.arange(n + 1), np.zeros(n, bool))
    attributes: dict[str, np.ndarray] = {}
    adefs: tuple[AttributeDef, ...] = ()
    if n:
        values = obj_array(rows.difficult)
        levels = {type(v) for v in rows.difficult} - {type(None)}
        attributes["difficult"] = values
        adefs = (AttributeDef("difficult", type="number" if int in levels else "bool"),)
        if int in levels:  # levels beyond 0/1: every value as an int, one type per column
            attributes["difficult"] = obj_array([None if v is None else int(v) for v in rows.difficult])
    ann = Annotations(image=np.asarray(rows.image, np.int64), label=np.asarray(rows.cls, np.int64), box=box,
                      polygon=polygon, attributes=attributes)
    schema = LabelSchema(classes=tuple(ClassDef(c) for c in names),
                         tasks=(Task.DETECTION, Task.INSTANCE_SEGMENTATION), attributes=adefs)
    extra: dict[str, np.ndarray] = {}
    for key, column in HEADERS.items():
        if any(key in h for h in rows.heads):
            extra[column] = obj_array([h.get(key) for h in rows.heads])
    images = Images(path=str_array(rows.paths), width=np.asarray(rows.widths, np.int64),
                    height=np.asarray(rows.heights, np.int64), split=str_array(rows.splits), extra=extra)
    info = {"dota": {"decimals": rows.decimals}} if 0 < rows.decimals <= KEPT_DECIMALS else {}
    return Dataset(schema=schema, images=images, annotations=ann, root=root, info=info)


def read_dota(src: str | Path, **options: Any) -> Dataset:
    """Read DOTA ground truth (see ``parse``); a MaslowWarning summarises any import issues.

    Example:
        >>> ds = read_dota("DOTA/train")  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), **options), source=src)


# -- write -------------------------------------------------------------------------------------------
def write(
    ds: Dataset,
    dst: Path,
    *,
    images: bool = True,
    copy_images: bool = False,
    decimals: int | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Write ``ds`` as a DOTA root: ``labelTxt/<stem>.txt``, ``images/`` and ``classes.txt`` (images with a split
    under ``<split>/labelTxt`` and ``<split>/images``).

    Each annotation becomes four corners (``_dota_lines.quads``): a 4-point polygon as it is; another polygon, or a
    mask, as its minimum-area rectangle (``lost["polygon"]``/``lost["mask"]``); a turned box (CVAT, Label Studio)
    as its turned corners; a box as its corners. ``difficult`` is the attribute (1/0; a dataset without the
    attribute writes 0, an object whose value is None no field); the header lines are
    ``images.extra["dota_imagesource"]``/``["dota_gsd"]``. Every image gets a label file (empty without objects).

    Args:
        images: put the images under ``images/`` (symlinks by default; the label file is named by the image's
            stem there); when False only label files and classes.txt are written (read back with ``images_root``).
        copy_images: copy the image files instead of symlinking them.
        decimals: decimals of the coordinates; by default as many as the files read had
            (``info["dota"]["decimals"]``), else the shortest text that reads back as the same number.
        progress: called as ``progress(done, total)`` over the images written (``registry.Ticks``).

    Returns:
        ExportReport; ``lost`` counts what DOTA can't hold (masks and other polygons as rectangles, scores,
        attributes other than difficult, crowd flags, keypoints, class ids, supercategories, class names with white
        space).

    Raises:
        FormatError: ``decimals`` out of 0..15, a split that is not a folder name.

    Example:
        >>> from maslow.sample import oriented
        >>> import tempfile, pathlib
        >>> rep = write(oriented(3, seed=1), pathlib.Path(tempfile.mkdtemp()) / "dota", images=False)
        >>> rep.n_images, rep.lost["polygon"]
        (3, 0)
    """
    dst = Path(dst)
    held = ds.info.get("dota")
    if decimals is None and isinstance(held, dict) and isinstance(held.get("decimals"), int):
        decimals = held["decimals"]
    decimals = check_decimals(decimals, dst)
    rep = ExportReport(path=str(dst), format="dota")
    a = ds.annotations
    lost = Tally()
    corners, written = quads(ds, lost)
    _lost_box(ds, corners, written, rep)
    names = [line_name(c.name) for c in ds.schema.classes]
    difficult = _difficult_texts(ds, written, rep)
    heads = [ds.images.extra.get(c) for c in HEADERS.values()]
    splits = [str(s) for s in ds.images.split.tolist()] if ds.images.split is not None else [""] * ds.n_images
    bad = next((s for s in dict.fromkeys(splits) if s in (".", "..") or "/" in s or "\\" in s), None)
    if bad is not None:
        raise FormatError(f"images.split must be a folder name (a split is written as <split>/labelTxt), got {bad!r}",
                          path=dst, field="split")
    out_names: dict[int, str] = {}
    for s in dict.fromkeys(splits):
        members = [i for i, x in enumerate(splits) if x == s]
        for i, nm in zip(members, output_names([str(ds.images.path[i]) for i in members]), strict=True):
            out_names[i] = nm
    slices = ds.image_slices().tolist()
    labels = a.label.tolist()
    tick = Ticks(progress, ds.n_images)
    with atomic_dir(dst) as tmp:
        made: set[Path] = set()
        for i in range(ds.n_images):
            folder = tmp / splits[i] if splits[i] else tmp
            if folder not in made:
                (folder / "labelTxt").mkdir(parents=True)
                made.add(folder)
            text = [f"{key}:{v[i]}\n" for key, v in zip(HEADERS, heads, strict=True)
                    if v is not None and v[i] is not None]
            r0, r1 = slices[i], slices[i + 1]
            rows = np.arange(r0, r1)[written[r0:r1]].tolist()
            for r, coords in zip(rows, fmt_rows(corners[rows].reshape(-1, 8), decimals), strict=True):
                text.append(f"{coords} {names[labels[r]]}{difficult[r]}\n")
            name = out_names[i]
            with open(folder / "labelTxt" / f"{PurePosixPath(name).stem}.txt", "wb") as f:
                f.write("".join(text).encode())
            if images and not place_image(image_path(ds, i), folder / "images" / name,
                                          "copy" if copy_images else "symlink"):
                lost.add("image_files", 1, (i, 1))
            tick(i + 1)
        (tmp / CLASSES_FILE).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    tick.end()
    lost.into(rep.lost)
    own = {k: v for k, v in ds.images.extra.items() if k not in HEADERS.values()}
    rest = ds.replace(images=replace(ds.images, extra=own))
    rep.lost.update(count_lost(rest, keep={"box", "polygon", "mask", "attributes:difficult"}, rows=written))
    rep.notes.extend(label_notes(rest, written))
    changed = [c.name for c, n in zip(ds.schema.classes, names, strict=True) if c.name != n]
    if changed:
        rep.lost["class_names"] += len(changed)
        rep.notes.append(f"class names hold white space, which a DOTA line can't: written with '_' ({changed[:5]})")
    lose_class_fields(ds, rep, fmt="DOTA", back=None)
    if (~written).any():
        rep.lost["annotations"] += int((~written).sum())
        rep.notes.append(f"{int((~written).sum())} annotations without a box, polygon or mask were not written")
    if rep.lost.get("image_files"):
        rep.notes.append(f"{rep.lost['image_files']} image files were missing and not placed under images/")
    rep.n_images = ds.n_images
    rep.n_annotations = int(written.sum())
    return rep


def _lost_box(ds: Dataset, corners: np.ndarray, written: np.ndarray, rep: ExportReport) -> None:
    """Count the boxes that are not the extent of their corners (reading gives back the extent)."""
    box = ds.annotations.box
    assert box is not None
    rows = written & ds.annotations.has_box
    if rows.any():
        c = corners[rows]
        ext = np.concatenate([c.min(axis=1), c.max(axis=1)], axis=1)
        off = ~np.isclose(ext, box[rows], rtol=1e-12, atol=1e-9).all(axis=1)
        if off.any():
            rep.lost["box"] += int(off.sum())


def _difficult_texts(ds: Dataset, written: np.ndarray, rep: ExportReport) -> list[str]:
    """Each annotation's ``difficult`` field after a space ("" for none): the attribute as 0/1 (or its integer
    level); " 0" for every row of a dataset without the attribute."""
    col = ds.annotations.attributes.get("difficult")
    if col is None:
        return [" 0"] * len(ds.annotations)
    out = []
    bad = 0
    for v, w in zip(col.tolist(), written.tolist(), strict=True):
        if v is None:
            out.append("")
        elif isinstance(v, bool | np.bool_):
            out.append(" 1" if v else " 0")
        elif isinstance(v, int | np.integer) or (isinstance(v, float) and v.is_integer()):
            out.append(f" {int(v)}")
        elif isinstance(v, str) and v.strip().lower() in _FLAGS:
            out.append(" 1" if _FLAGS[v.strip().lower()] else " 0")
        else:
            out.append("")
            bad += w
    if bad:
        rep.lost["attributes"] += bad
        rep.notes.append(f"{bad} difficult values are not 0/1 or an integer; written without the field")
    return out


write_dota = write
