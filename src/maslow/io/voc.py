"""Pascal VOC XML: one annotation file per image.

Glossary:

- *file*: ``<annotation>`` with ``<folder>``, ``<filename>``, ``<size>`` (``<width>``, ``<height>``,
  ``<depth>``) and one ``<object>`` per box.
- *object*: ``<name>`` (the class), ``<bndbox>`` (``<xmin>``, ``<ymin>``, ``<xmax>``, ``<ymax>``) and the flags
  ``<difficult>``, ``<truncated>``, ``<occluded>`` (0/1) and ``<pose>`` (text). Every other simple child tag,
  and CVAT's ``<attributes><attribute><name>..</name><value>..</value></attribute></attributes>``, becomes an
  attribute; its value is kept as text.
- *parts* (VOC2012 person layout): ``<part><name>head</name><bndbox>..</bndbox></part>`` children of an object,
  kept with the object in ``annotations.extra["voc_parts"]``: a list of ``{"name": str, "box": [x1, y1, x2, y2]}``
  in maslow's pixels (converted as the object's box is), None for an object without parts. They are not
  annotations of their own: the classes stay VOC's, and detection statistics and metrics see the objects only.
- *actions* (VOC2012 action classification): ``<actions><jumping>1</jumping>...</actions>``; each becomes a bool
  attribute named after the action, and ``info["voc"]["actions"]`` lists each class's actions, so they are
  written back in ``<actions>`` (as datumaro, so CVAT, reads them).
- *file metadata*: ``<path>`` (text), ``<source>`` and ``<owner>`` (their children, as ``{tag: text}``) and
  ``<segmented>`` (0/1) are kept in ``images.extra["voc_path"]``, ``["voc_source"]``, ``["voc_owner"]`` and
  ``["voc_segmented"]`` (present when a file has them, or for ``<segmented>`` when one says 1) and written back;
  ``<folder>`` and ``<depth>`` are not kept.
- *pixel convention*: VOC coordinates are 1-based and inclusive: the first pixel column is ``xmin = 1`` and a
  box reaching the right edge has ``xmax = width``. maslow boxes are continuous (pixel i spans [i, i + 1)), so
  ``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax`` (the torchvision and detectron2 convention); writing
  does the inverse (a fractional ``xmin`` is the decimal sum of ``repr(x1)`` and 1, and reading subtracts the 1 in
  decimal, so sub-pixel boxes come back to the bit). A 0 in xmin or ymin is impossible in this convention and
  betrays a 0-based file. An inverted pair (``xmax < xmin - 1``) is reported and read as the box written the right
  way round (the two VOC values swapped, then converted).
- *origin*: datumaro, so CVAT's "PASCAL VOC 1.1" export, writes its own continuous 0-based box corners as they
  are (``xmin = x``, ``xmax = x + w``; its reader reads them back the same way): a box drawn in CVAT reads one
  pixel too far left/up as 1-based VOC. Nothing in such a file tells the two apart (datumaro copies a real VOC
  file's 1-based numbers through unchanged too, and its ``<source>`` "Unknown" block marks only the writer),
  so the convention is an explicit option: ``origin=1`` (VOC, default) or ``origin=0`` (``x1 = xmin, x2 = xmax``).
- *difficult*: VOC's evaluation skips difficult objects; maslow keeps them (attribute ``difficult=True``).
- *layout*: a VOC root with ``Annotations/*.xml``, ``ImageSets/Main/<split>.txt`` (image ids, one a line;
  ``trainval`` is not a split when ``train`` or ``val`` exist (``info["voc"]["trainval"]`` when it lists their
  images, and written again; reported otherwise); per-class files such as ``cat_train.txt`` are
  ignored; ``default.txt`` is datumaro's and CVAT's list of the images without a subset: no split) and the
  images in ``JPEGImages/`` (or an ``images/`` folder inside or beside the root); or a
  plain folder of xml files, with the images beside them.
- *custom attributes*: datumaro (so CVAT) reads and writes them only as ``<attributes><attribute><name>..</name>
  <value>..</value></attribute></attributes>``; maslow writes them so, bools as ``true``/``false`` (what CVAT's
  checkbox import takes), and reads them back as text.
- *labelmap.txt* (CVAT's ``label:color_rgb:parts:actions`` lines): when present it gives the class order
  (a leading ``background`` entry is skipped), the class colours (``ClassDef.color``) and each class's parts and
  actions (``info["voc"]``: ``{"parts": {class: [name, ...]}, "actions": {class: [name, ...]}}``); without it
  classes are sorted by name. maslow writes one, so a round trip keeps the class order, colours, parts and actions
  and classes without objects.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.errors import FormatError
from maslow.io._class_losses import lose_class_fields
from maslow.io._common import Collector, ExportReport, safe_relpath
from maslow.io._export import Tally, count_lost, fmt_num, known_sizes, label_notes, output_names, place_image
from maslow.io._voc_read import (
    FLAGS,
    Objects,
    corner,
    file_fields,
    list_ids,
    load_xml,
    object_fields,
    well_formed_box,
)
from maslow.io._voc_write import (
    BOOL_TAGS,
    FILE_EXTRA,
    check_ids,
    check_paths,
    class_texts,
    file_blocks,
    file_text,
    kept_names,
    object_texts,
    rgb_text,
    segmented_texts,
    trainval_kept,
)
from maslow.io.images import IMAGE_SUFFIXES, image_info, image_path
from maslow.io.registry import Progress, Ticks, warn_issues

_COORDS = ("xmin", "ymin", "xmax", "ymax")
_SPLIT_ORDER = ("train", "val", "test")
#: datumaro's DEFAULT_SUBSET_NAME: the ImageSets list of images without a subset (CVAT exports it so).
_DEFAULT_SUBSET = "default"


def _layout(src: Path, images_root: Path | None) -> tuple[list[str], Path, Path]:
    """(xml files, VOC root, image root); the files as str, not Path: no objects for the garbage collector to
    walk."""
    if not src.exists():
        raise FormatError("not found: must be a VOC root, an Annotations folder or an xml file", path=src)
    if src.is_file():
        files, ann = [src], src.parent
    else:
        ann = src / "Annotations" if (src / "Annotations").is_dir() else src
        files = sorted(ann.glob("*.xml"))
        if not files:
            raise FormatError("must hold .xml annotation files (or an Annotations/ folder of them)", path=ann)
    voc_root = ann.parent if ann.name == "Annotations" else ann
    if images_root is not None:
        return [str(f) for f in files], voc_root, Path(images_root)
    for cand in (voc_root / "JPEGImages", voc_root / "images", voc_root.parent / "JPEGImages",
                 voc_root.parent / "images"):
        if cand.is_dir():
            return [str(f) for f in files], voc_root, cand
    return [str(f) for f in files], voc_root, ann


def _splits(voc_root: Path, col: Collector, stems: set[str]
            ) -> tuple[dict[str, str], list[tuple[str, str, int]], bool]:
    """Image id -> split from ImageSets/Main, the (id, file, line) entries read, and whether a trainval.txt beside
    train.txt or val.txt lists their images (kept as ``info["voc"]["trainval"]``; any other is reported).

    An id is the line's first word, or the whole line where that names an xml file (ids with spaces).
    """
    main = voc_root / "ImageSets" / "Main"
    files = {p.stem: p for p in main.glob("*.txt") if "_" not in p.stem} if main.is_dir() else {}
    union = files.pop("trainval") if "trainval" in files and ("train" in files or "val" in files) else None
    names = [s for s in _SPLIT_ORDER if s in files] + sorted(s for s in files if s not in _SPLIT_ORDER)
    split_of: dict[str, str] = {}
    listed: list[tuple[str, str, int]] = []  # str, not Path: no object for the garbage collector to walk
    for s in names:
        for n, line in enumerate(files[s].read_text(encoding="utf-8-sig").splitlines(), 1):
            if not line.split():
                continue
            ident = list_ids([line], stems)[0]
            s_name = "" if s == _DEFAULT_SUBSET else s
            if ident in split_of and split_of[ident] != s_name:
                col.add("duplicate_image", f"image id {ident!r} is in split {split_of[ident]!r} and in {s!r}; "
                        f"kept in {split_of[ident]!r}", file=files[s], record=f"line {n}")
                continue
            split_of[ident] = s_name
            listed.append((ident, str(files[s]), n))
    if union is None:
        return split_of, listed, False
    got = set(list_ids(union.read_text(encoding="utf-8-sig").splitlines(), stems))
    want = {k for k, v in split_of.items() if v in ("train", "val")}
    if got != want:
        col.add("voc_trainval", f"trainval.txt must list the images of train.txt and val.txt, got {len(got - want)} "
                f"others and {len(want - got)} missing; not read (the splits come from train.txt and val.txt)",
                file=union)
    return split_of, listed, got == want


@dataclass
class _LabelMap:
    """labelmap.txt: the class names in order, and per class its colour (``#rrggbb``), parts and actions."""

    names: list[str]
    colors: dict[str, str] = field(default_factory=dict)
    parts: dict[str, list[str]] = field(default_factory=dict)
    actions: dict[str, list[str]] = field(default_factory=dict)


def _labelmap(path: Path, col: Collector) -> _LabelMap | None:
    if not path.is_file():
        return None
    out = _LabelMap([])
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            fields = line.rsplit(":", 3)  # the name may hold colons; colour, parts and actions don't
            if len(fields) != 4 or not fields[0].strip():
                raise FormatError(f"line must be 'label:color_rgb:parts:actions', got {line!r}", path=path,
                                  record=f"line {n}")
            name, rgb, parts, actions = (f.strip() for f in fields)
            out.names.append(name)
            color = _color(rgb)
            if color is None:
                col.add("voc_labelmap_color", f"color_rgb of {name!r} must be three numbers 0-255 ('r,g,b'), got "
                        f"{rgb!r}; class read without a colour", file=path, record=f"line {n}", field="color_rgb")
            elif color:
                out.colors.setdefault(name, color)
            for what, text in ((out.parts, parts), (out.actions, actions)):
                names = [x.strip() for x in text.split(",") if x.strip()]
                if names:
                    what.setdefault(name, names)
    if out.names and out.names[0] == "background":
        out.names = out.names[1:]
    return out


def _color(rgb: str) -> str | None:
    """``#rrggbb`` of labelmap.txt's ``r,g,b`` ('' for none, None when malformed)."""
    if not rgb:
        return ""
    vals = rgb.split(",")
    if len(vals) != 3 or not all(v.strip().isdigit() and int(v) <= 255 for v in vals):
        return None
    return "#" + "".join(f"{int(v):02x}" for v in vals)


def _text(el: Any, tag: str) -> str | None:
    child = el.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    classes: list[str] | None = None,
    origin: int = 1,
    progress: Progress | None = None,
) -> tuple[Dataset, Report]:
    """Read Pascal VOC XML files.

    Args:
        src: a VOC root (with ``Annotations/``), an ``Annotations`` folder, a folder of xml files or one file.
        images_root: folder the ``<filename>`` values are relative to (default: ``JPEGImages/`` or
            ``images/`` inside or beside the VOC root, else the xml folder). It becomes the Dataset's root.
        strict: raise FormatError at the first error or warning instead of reporting it.
        classes: the class names in order; objects of other classes are reported and not imported
            (default: labelmap.txt, else every name found, sorted).
        origin: the pixel convention of ``<bndbox>``: 1 for VOC's 1-based pixels (``x1 = xmin - 1``), 0 for
            files that hold 0-based continuous corners (``x1 = xmin``), as CVAT's "PASCAL VOC 1.1" export (via
            datumaro) writes boxes drawn in CVAT. ``xmax``/``ymax`` are read as they are either way.
        progress: called as ``progress(done, total)`` over the xml files read (``registry.Ticks``: the files are
            listed first, so ``total`` is known from the first call).

    Returns:
        The Dataset (task detection, boxes in maslow's xyxy pixels) and the import Report.

    Raises:
        FormatError: an xml file is malformed, unsafe (entities), not a VOC ``<annotation>``, a file name
            escapes the image root, or ``origin`` is not 0 or 1.
    """
    src = Path(src)
    origin = _check_origin(origin, src)
    col = Collector(strict=strict)
    files, voc_root, img_root = _layout(src, images_root)
    file_stems = [_stem(os.path.basename(f)) for f in files]
    split_of, listed, trainval = _splits(voc_root, col, set(file_stems))
    labelmap = _labelmap(voc_root / "labelmap.txt", col) if classes is None else None
    known = classes if classes is not None else None if labelmap is None else labelmap.names
    paths: list[str] = []
    kept: list[dict[str, Any]] = []  # each file's <source>, <owner> and <segmented>
    widths: list[int] = []
    heights: list[int] = []
    splits: list[str] = []
    objs = Objects(None if known is None else set(known))
    nested: set[str] = set()
    tick = Ticks(progress, len(files))
    for i, xml in enumerate(files):
        tick(i)
        root = load_xml(xml)
        name = _text(root, "filename") or ""
        stem = file_stems[i]
        if not name:
            name = next((stem + s for s in IMAGE_SUFFIXES if (img_root / (stem + s)).exists()), stem + ".jpg")
            col.add("voc_missing_filename", f"<filename> is empty; using {name!r}", file=xml, field="filename",
                    image=i)
        rel = safe_relpath(name, root=img_root, file=xml, field="filename")
        if _stem(rel) != stem:
            col.add("voc_filename_mismatch", f"<filename> {name!r} must match the xml file name {os.path.basename(xml)!r}",
                    file=xml, field="filename", image=i)
        w, h = _size(root, xml, img_root, rel, i, col)
        paths.append(rel)
        widths.append(w)
        heights.append(h)
        splits.append(split_of.get(stem, ""))
        kept.append(file_fields(root))
        n_zero = 0
        for k, obj in enumerate(root.findall("object")):
            cls = (obj.findtext("name") or "").strip()
            if not cls:
                col.add("voc_missing_name", "object must have a <name>; not imported", severity="error", file=xml,
                        record=f"object[{k}]", field="name", image=i)
                continue
            box = well_formed_box(obj, origin)
            if box is None:
                box = _bndbox(obj, xml, f"object[{k}]", i, col, origin)
            if origin == 1 and box is not None and (box[0] == -1 or box[1] == -1):  # xmin or ymin 0
                n_zero += 1
            bad_parts: list[int] = []
            at, actions, parts = object_fields(obj, origin, nested, BOOL_TAGS, bad_parts)
            for j in bad_parts:
                col.add("voc_nested_tag", "<part> must have a <name> and a <bndbox> of four numbers (not inverted); "
                        "not imported", file=xml, record=f"object[{k}] part[{j}]", field="part", image=i)
            objs.add(i, cls, box, at, xml, k, parts, actions)
        if n_zero:
            col.add("voc_zero_based", f"{n_zero} boxes have xmin or ymin = 0: VOC pixels are 1-based, so this file "
                    "looks 0-based (its boxes are read one pixel too far left/up). CVAT's VOC export writes 0-based "
                    "corners: read it with origin=0 (--read-option origin=0)", file=xml, field="bndbox", image=i)
    tick.end()
    for tag in sorted(nested):
        col.add("voc_nested_tag", f"object tag <{tag}> has child elements and is not imported", severity="info")
    stems = set(file_stems)
    for ident, file, n in listed:
        if ident not in stems:
            col.add("voc_missing_xml", f"image id {ident!r} is listed but Annotations/{ident}.xml is missing; not "
                    "imported", severity="error", file=file, record=f"line {n}")
    ds = _build(objs, known, paths, widths, heights, splits, img_root, col)
    return _with_kept(ds, objs, labelmap, kept, col, trainval), col.report()


def _stem(rel: str) -> str:
    """``PurePosixPath(rel).stem`` of a normalised path (as ``safe_relpath`` makes them)."""
    name = rel.rpartition("/")[2]
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def _check_origin(origin: Any, src: Path) -> int:
    if isinstance(origin, bool) or origin not in (0, 1):
        raise FormatError(f"origin must be 0 (0-based corners, as CVAT's VOC export writes them) or 1 (VOC's "
                          f"1-based pixels), got {origin!r}", path=src, field="origin")
    return int(origin)


def _size(root: Any, xml: str, img_root: Path, rel: str, i: int, col: Collector) -> tuple[int, int]:
    size = root.find("size")
    vals = []
    for tag in ("width", "height"):
        t = _text(size, tag) if size is not None else None
        try:
            vals.append(int(float(t)) if t else 0)
        except ValueError:
            col.add("voc_bad_value", f"<size><{tag}> must be a number, got {t!r}", file=xml, field=tag, image=i)
            vals.append(0)
    w, h = vals
    if w > 0 and h > 0:
        return w, h
    field, what = "size", "<size> is missing or 0"
    for tag, v in zip(("width", "height"), vals, strict=True):
        if v < 0:
            field, what = tag, f"<size><{tag}> must be > 0, got {v} (negative)"
            break
    try:
        info = image_info(img_root / rel)
    except FormatError:
        col.add("voc_zero_size", f"{what} and the image can't be read; size unknown", file=xml, field=field,
                image=i)
        return 0, 0
    col.add("voc_zero_size", f"{what}; read {info.width}x{info.height} from the image", file=xml, field=field,
            image=i)
    return info.width, info.height


def _bndbox(obj: Any, xml: str, rec: str, i: int, col: Collector, origin: int) -> list[float] | None:
    """[x1, y1, x2, y2] in maslow's pixels (an inverted pair of VOC values swapped first, so the box is the one
    written the right way round), or None without a usable bndbox; reports what is wrong."""
    bb = obj.find("bndbox")
    if bb is None:
        col.add("voc_missing_bndbox", "object has no <bndbox>; imported without a box", file=xml, record=rec,
                field="bndbox", image=i)
        return None
    vals, texts = [], []
    for tag in _COORDS:
        t = _text(bb, tag)
        try:
            v = float(t) if t is not None else math.nan
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            col.add("voc_bad_value", f"<bndbox><{tag}> must be a number, got {t!r}; imported without a box",
                    severity="error", file=xml, record=rec, field=tag, image=i)
            return None
        vals.append(v)
        texts.append(t or "")
    for lo, hi in ((0, 2), (1, 3)):
        low = vals[lo] - origin  # x1: xmax = xmin - 1 (1-based) or xmax = xmin (0-based) is an empty box
        if vals[hi] >= low or math.isclose(vals[hi], low, rel_tol=0, abs_tol=1e-9):
            continue
        need = f"{_TAGS[lo]} - 1" if origin else _TAGS[lo]
        col.add("voc_inverted_box", f"bndbox must have {_TAGS[hi]} >= {need}, got <{_TAGS[lo]}> {fmt_num(vals[lo])} "
                f"and <{_TAGS[hi]}> {fmt_num(vals[hi])}; imported with the two swapped",
                severity="error", file=xml, record=rec, field=_TAGS[hi], image=i)
        vals[lo], vals[hi], texts[lo], texts[hi] = vals[hi], vals[lo], texts[hi], texts[lo]
    x1, y1 = corner(vals[0], texts[0], origin), corner(vals[1], texts[1], origin)
    return [x1, y1, max(vals[2], x1), max(vals[3], y1)]


_TAGS = ("xmin", "ymin", "xmax", "ymax")


def _build(objs: Objects, known: list[str] | None, paths: list[str], widths: list[int], heights: list[int],
           splits: list[str], root: Path, col: Collector) -> Dataset:
    names = list(known) if known is not None else sorted(objs.classes)
    index = {n: k for k, n in enumerate(names)}
    for i, cls, xml, k in objs.unknown:
        col.add("voc_unknown_class", f"class {cls!r} is not in the class list ({', '.join(names[:10])}); "
                "object not imported", severity="error", file=xml, record=f"object[{k}]", field="name", image=i)
    n = len(objs.image)
    box = np.array(objs.box, np.float64).reshape(n, 4)  # maslow's pixels already (see well_formed_box)
    lut = np.array([index[c] for c in objs.classes], np.int64)
    columns = objs.columns()
    ann = Annotations(image=np.array(objs.image, np.int64), label=lut[np.array(objs.cls, np.int64)], box=box,
                      attributes=columns)
    adefs = tuple(AttributeDef(k, type="bool" if set(map(type, v)) - {type(None)} == {bool} else "text")
                  for k, v in columns.items())
    schema = LabelSchema(classes=tuple(ClassDef(nm) for nm in names), tasks=(Task.DETECTION,), attributes=adefs)
    images = Images(path=str_array(paths), width=np.asarray(widths, np.int64), height=np.asarray(heights, np.int64),
                    split=str_array(splits))
    return Dataset(schema=schema, images=images, annotations=ann, root=root)


def _with_kept(ds: Dataset, objs: Objects, labelmap: _LabelMap | None, kept: list[dict[str, Any]],
               col: Collector, trainval: bool) -> Dataset:
    """``ds`` with what VOC holds beside boxes and flags: class colours (labelmap.txt), each object's parts
    (``annotations.extra["voc_parts"]``), each file's ``<path>``, ``<source>``, ``<owner>`` and ``<segmented>``
    (``images.extra["voc_path"]``, ``["voc_source"]``, ``["voc_owner"]``, ``["voc_segmented"]``), each class's
    parts and actions (``info["voc"]``, as labelmap.txt lists them) and a trainval.txt of train and val
    (``info["voc"]["trainval"]``)."""
    names = ds.schema.names
    colors = {} if labelmap is None else labelmap.colors
    schema = ds.schema.with_classes(ClassDef(c.name, color=colors.get(c.name, "")) for c in ds.schema.classes)
    info: dict[str, Any] = {"trainval": True} if trainval else {}
    for key, seen, listed in (("parts", objs.parts_of, labelmap and labelmap.parts),
                              ("actions", objs.actions_of, labelmap and labelmap.actions)):
        per = {c: list(dict.fromkeys([*(listed or {}).get(c, []), *seen.get(c, {})])) for c in names}
        per = {c: v for c, v in per.items() if v}
        if per:
            info[key] = per
    ann = ds.annotations
    if objs.parts:
        col_parts = np.full(len(ann), None, object)
        for r, parts in objs.parts.items():
            col_parts[r] = parts
        ann = ann.with_columns(extra={**ann.extra, "voc_parts": col_parts})
    extra: dict[str, np.ndarray] = {}
    for tag in ("path", "source", "owner"):
        if any(tag in k for k in kept):
            values = np.full(len(kept), None, object)
            values[:] = [k.get(tag) for k in kept]
            extra[f"voc_{tag}"] = values
    seg = [k.get("segmented", "0") for k in kept]
    if any(v != "0" for v in seg):
        flags = [FLAGS.get(v.lower()) for v in seg]
        bad = [j for j, f in enumerate(flags) if f is None]
        if bad:
            col.add("voc_bad_value", f"<segmented> must be 0 or 1, got {seg[bad[0]]!r} ({len(bad)} files); read as 0",
                    field="segmented", image=bad[0])
        extra["voc_segmented"] = np.asarray([bool(f) for f in flags], np.int64)
    images = replace(ds.images, extra={**ds.images.extra, **extra}) if extra else ds.images
    return ds.replace(schema=schema, images=images, annotations=ann,
                      info={**ds.info, "voc": info} if info else ds.info)


def read_voc(src: str | Path, **options: Any) -> Dataset:
    """Read Pascal VOC XML (see ``parse``); a MaslowWarning summarises any import issues.

    Example:
        >>> ds = read_voc("VOCdevkit/VOC2012")  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), **options), source=src)


# -- write -------------------------------------------------------------------------------------------
def write(
    ds: Dataset,
    dst: Path,
    *,
    images: bool = True,
    copy_images: bool = False,
    integer_coordinates: bool = False,
    origin: int = 1,
    progress: Progress | None = None,
) -> ExportReport:
    """Write ``ds`` as a VOC root: ``Annotations/``, ``ImageSets/Main/<split>.txt``, ``JPEGImages/``, labelmap.txt.

    Boxes are written 1-based (``xmin = x1 + 1``, ``xmax = x2``), or 0-based with ``origin=0`` (``xmin = x1``). Attributes ``difficult``, ``truncated``,
    ``occluded`` (0/1) and ``pose`` are VOC tags; the actions ``info["voc"]["actions"]`` names for a class go in
    ``<actions>``; every other attribute with a str, number or bool value is written in the ``<attributes>``
    block (read back as text); other values are counted lost. ``extra["voc_parts"]`` become ``<part>`` elements
    (parts VOC can't hold: ``lost["voc_parts"]``), ``images.extra["voc_path"]``, ``["voc_source"]``,
    ``["voc_owner"]`` and ``["voc_segmented"]`` each file's ``<path>``, ``<source>``, ``<owner>`` and
    ``<segmented>``; ``info["voc"]["trainval"]`` adds trainval.txt (train + val). Predictions and several
    annotators' rows are written as objects like the rest (a note says so).

    Args:
        images: put the images under ``JPEGImages/`` (symlinks by default; ``<filename>`` is the name there);
            when False no images are written and ``<filename>`` is the path relative to ``ds.root``.
        copy_images: copy the image files instead of symlinking them.
        integer_coordinates: round coordinates to whole pixels (some readers expect integers); boxes that
            move are counted in ``lost["box_precision"]``.
        origin: 1 for VOC's 1-based pixels; 0 writes maslow's corners as they are, the way CVAT's VOC import
            (datumaro) reads them, so boxes land on the same pixels in CVAT.
        progress: called as ``progress(done, total)`` over the images written (``registry.Ticks``).

    Returns:
        ExportReport; ``lost`` counts masks, polygons, keypoints, scores, crowd flags, annotations without a box,
        class ids (``class_id``: VOC names classes, ids don't come back) and supercategories.

    Example:
        >>> from maslow.sample import shapes
        >>> import tempfile, pathlib
        >>> rep = write(shapes(4), pathlib.Path(tempfile.mkdtemp()) / "voc", images=False)
        >>> rep.n_images, rep.lost["mask"] > 0
        (4, True)
    """
    dst = Path(dst)
    origin = _check_origin(origin, dst)
    rep = ExportReport(path=str(dst), format="voc")
    a = ds.annotations
    assert a.box is not None
    w_all, h_all = known_sizes(ds)
    names = output_names([str(p) for p in ds.images.path])
    check_ids([PurePosixPath(n).stem for n in names], [str(p) for p in ds.images.path], dst)
    check_paths([str(p) for p in ds.images.path], dst)
    splits = ds.images.split.tolist() if ds.images.split is not None else [""] * ds.n_images
    written = np.asarray(a.has_box, bool).copy()
    lost = Tally()
    boxed = np.flatnonzero(written)
    ends = np.searchsorted(boxed, ds.image_slices()).tolist()  # image i's objects: boxed[ends[i]:ends[i + 1]]
    paths = ds.images.path.tolist()
    actions, parts = kept_names(ds, rep)
    class_names = class_texts(ds.schema.names)
    blocks, segmented = file_blocks(ds, lost), segmented_texts(ds, lost)
    tick = Ticks(progress, ds.n_images)
    with atomic_dir(dst) as tmp:
        ann_dir = tmp / "Annotations"
        ann_dir.mkdir()
        img_dir = tmp / "JPEGImages"
        for i0 in range(0, ds.n_images, 4096):  # the objects of 4096 images at a time: memory stays flat
            i1 = min(i0 + 4096, ds.n_images)
            objects = object_texts(ds, boxed[ends[i0]:ends[i1]], lost, integer_coordinates, origin, actions)
            for i in range(i0, i1):
                name = names[i] if images else str(paths[i])
                text = file_text(name, "JPEGImages" if images else "", int(w_all[i]), int(h_all[i]),
                                 "1" if "#" in str(paths[i]) else "3",  # IDX members are grey
                                 objects[ends[i] - ends[i0]:ends[i + 1] - ends[i0]], blocks=blocks[i],
                                 segmented=segmented[i])
                with open(os.path.join(ann_dir, f"{PurePosixPath(names[i]).stem}.xml"), "wb") as f:
                    f.write(text)
                if images and not place_image(image_path(ds, i), img_dir / names[i],
                                              "copy" if copy_images else "symlink"):
                    lost.add("image_files", 1, (i, 1))
                tick(i + 1)
        main = tmp / "ImageSets" / "Main"  # datumaro finds a VOC dataset by these lists: every image is in one
        main.mkdir(parents=True)
        sets = {s: [i for i in range(ds.n_images) if (str(splits[i]) or _DEFAULT_SUBSET) == s]
                for s in dict.fromkeys(str(x) or _DEFAULT_SUBSET for x in splits)}
        if trainval_kept(ds) and "trainval" not in sets and ("train" in sets or "val" in sets):  # as read
            sets["trainval"] = [i for i in range(ds.n_images) if str(splits[i]) in ("train", "val")]
        for s, rows in sets.items():
            (main / f"{s}.txt").write_text("".join(PurePosixPath(names[i]).stem + "\n" for i in rows),
                                           encoding="utf-8")
        lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
        for c, cname in zip(ds.schema.classes, class_names, strict=True):
            rgb = rgb_text(c.color)
            if rgb is None:
                rep.lost["class_color"] += 1
                rgb = ""
            lines.append(f"{cname}:{rgb}:{','.join(parts.get(c.name, ()))}:{','.join(actions.get(c.name, ()))}")
        (tmp / "labelmap.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tick.end()
    lost.into(rep.lost)
    own = {k: v for k, v in ds.images.extra.items() if k not in FILE_EXTRA}
    rest = ds.replace(images=replace(ds.images, extra=own), annotations=a.with_columns(
        extra={k: v for k, v in a.extra.items() if k != "voc_parts"}))
    rep.lost.update(count_lost(rest, keep={"box", "attributes"}, rows=written))
    rep.notes.extend(label_notes(ds, written))  # predictions and several annotators' rows: all written as objects
    n_default = sum(str(x) == _DEFAULT_SUBSET for x in splits)
    if n_default:  # default.txt lists the images without a split
        rep.lost["split"] += n_default
        rep.notes.append(f"{n_default} images of the split 'default' are read back without a split (datumaro's "
                         "default subset)")
    lose_class_fields(ds, rep, fmt="VOC", back=None)
    colon = [c.name for c in ds.schema.classes if ":" in c.name]
    if colon:
        rep.notes.append(f"labelmap.txt: CVAT and datumaro split its lines on every ':' and refuse class names "
                         f"holding one: {colon[:5]}")
    bad = [(c.name, text) for c, text in zip(ds.schema.classes, class_names, strict=True) if c.name != text]
    if bad:  # labelmap.txt and <name> can't hold them (a leading '#' makes a comment line)
        rep.lost["class_names"] += len(bad)
        rep.notes.append(f"class names that VOC can't hold as they are (control characters, line breaks, spaces "
                         f"around them, a leading '#') were written changed: {bad[:5]}")
    if (~written).any():
        rep.lost["annotations"] += int((~written).sum())
        rep.notes.append(f"{int((~written).sum())} annotations without a box were not written")
    rep.n_images = ds.n_images
    rep.n_annotations = int(written.sum())
    return rep


write_voc = write
