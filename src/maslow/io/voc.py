"""Pascal VOC XML: one annotation file per image.

Glossary:

- *file*: ``<annotation>`` with ``<folder>``, ``<filename>``, ``<size>`` (``<width>``, ``<height>``,
  ``<depth>``) and one ``<object>`` per box.
- *object*: ``<name>`` (the class), ``<bndbox>`` (``<xmin>``, ``<ymin>``, ``<xmax>``, ``<ymax>``) and the flags
  ``<difficult>``, ``<truncated>``, ``<occluded>`` (0/1) and ``<pose>`` (text). Every other simple child tag,
  and CVAT's ``<attributes><attribute><name>..</name><value>..</value></attribute></attributes>``, becomes an
  attribute; its value is kept as text.
- *pixel convention*: VOC coordinates are 1-based and inclusive: the first pixel column is ``xmin = 1`` and a
  box reaching the right edge has ``xmax = width``. maslow boxes are continuous (pixel i spans [i, i + 1)), so
  ``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax`` (the torchvision and detectron2 convention); writing
  does the inverse. A 0 in xmin or ymin is impossible in this convention and betrays a 0-based file.
- *origin*: datumaro, so CVAT's "PASCAL VOC 1.1" export, writes its own continuous 0-based box corners as they
  are (``xmin = x``, ``xmax = x + w``; its reader reads them back the same way): a box drawn in CVAT reads one
  pixel too far left/up as 1-based VOC. Nothing in such a file tells the two apart (datumaro copies a real VOC
  file's 1-based numbers through unchanged too, and its ``<source>`` "Unknown" block marks only the writer),
  so the convention is an explicit option: ``origin=1`` (VOC, default) or ``origin=0`` (``x1 = xmin, x2 = xmax``).
- *difficult*: VOC's evaluation skips difficult objects; maslow keeps them (attribute ``difficult=True``).
- *layout*: a VOC root with ``Annotations/*.xml``, ``ImageSets/Main/<split>.txt`` (image ids, one a line;
  ``trainval`` is ignored when ``train`` or ``val`` exist; per-class files such as ``cat_train.txt`` are
  ignored; ``default.txt`` is datumaro's and CVAT's list of the images without a subset: no split) and the
  images in ``JPEGImages/`` (or an ``images/`` folder inside or beside the root); or a
  plain folder of xml files, with the images beside them.
- *custom attributes*: datumaro (so CVAT) reads and writes them only as ``<attributes><attribute><name>..</name>
  <value>..</value></attribute></attributes>``; maslow writes them so, bools as ``true``/``false`` (what CVAT's
  checkbox import takes), and reads them back as text.
- *labelmap.txt* (CVAT's ``label:color_rgb:parts:actions`` lines): when present it gives the class order
  (a leading ``background`` entry is skipped); without it classes are sorted by name. maslow writes one, so
  a round trip keeps the class order and classes without objects.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET  # writing only; parsing goes through defusedxml
from pathlib import Path, PurePosixPath
from typing import Any

import defusedxml.ElementTree as DET
import numpy as np
from defusedxml import DefusedXmlException

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array, str_array
from maslow.errors import FormatError
from maslow.io._common import Collector, ExportReport, safe_relpath
from maslow.io._export import count_lost, fmt_num, known_sizes, output_names, place_image
from maslow.io.images import IMAGE_SUFFIXES, image_info, image_path
from maslow.io.registry import warn_issues

#: Object flags VOC defines as 0/1.
BOOL_TAGS = ("difficult", "truncated", "occluded")
_COORDS = ("xmin", "ymin", "xmax", "ymax")
_RESERVED = {"name", "bndbox", "attributes", "part", "actions", "point", "polygon", "segm"}
_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_SPLIT_ORDER = ("train", "val", "test")
#: datumaro's DEFAULT_SUBSET_NAME: the ImageSets list of images without a subset (CVAT exports it so).
_DEFAULT_SUBSET = "default"
#: Characters XML text can't hold as they are (control characters are malformed, a carriage return reads as \n).
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")


def _layout(src: Path, images_root: Path | None) -> tuple[list[Path], Path, Path]:
    """(xml files, VOC root, image root)."""
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
        return files, voc_root, Path(images_root)
    for cand in (voc_root / "JPEGImages", voc_root / "images", voc_root.parent / "JPEGImages",
                 voc_root.parent / "images"):
        if cand.is_dir():
            return files, voc_root, cand
    return files, voc_root, ann


def _splits(voc_root: Path, col: Collector, stems: set[str]) -> tuple[dict[str, str], list[tuple[str, Path, int]]]:
    """Image id -> split from ImageSets/Main, and the (id, file, line) entries read.

    An id is the line's first word, or the whole line where that names an xml file (ids with spaces).
    """
    main = voc_root / "ImageSets" / "Main"
    files = {p.stem: p for p in main.glob("*.txt") if "_" not in p.stem} if main.is_dir() else {}
    if "trainval" in files and ("train" in files or "val" in files):
        del files["trainval"]
    names = [s for s in _SPLIT_ORDER if s in files] + sorted(s for s in files if s not in _SPLIT_ORDER)
    split_of: dict[str, str] = {}
    listed: list[tuple[str, Path, int]] = []
    for s in names:
        for n, line in enumerate(files[s].read_text(encoding="utf-8-sig").splitlines(), 1):
            toks = line.split()
            if not toks:
                continue
            if line.strip() in stems:
                toks = [line.strip()]
            s_name = "" if s == _DEFAULT_SUBSET else s
            if toks[0] in split_of and split_of[toks[0]] != s_name:
                col.add("duplicate_image", f"image id {toks[0]!r} is in split {split_of[toks[0]]!r} and in {s!r}; "
                        f"kept in {split_of[toks[0]]!r}", file=files[s], record=f"line {n}")
                continue
            split_of[toks[0]] = s_name
            listed.append((toks[0], files[s], n))
    return split_of, listed


def _labelmap(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    names = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            fields = line.rsplit(":", 3)  # the name may hold colons; colour, parts and actions don't
            if len(fields) != 4 or not fields[0].strip():
                raise FormatError(f"line must be 'label:color_rgb:parts:actions', got {line!r}", path=path,
                                  record=f"line {n}")
            names.append(fields[0].strip())
    if names and names[0] == "background":
        names = names[1:]
    return names


def _load_xml(path: Path) -> Any:
    try:
        root = DET.parse(path).getroot()
    except DET.ParseError as e:
        line, column = getattr(e, "position", (0, 0))
        raise FormatError(f"malformed XML at line {line} column {column}: {e}", path=path) from None
    except DefusedXmlException as e:
        raise FormatError(f"refused unsafe XML ({type(e).__name__}): {e}", path=path) from None
    if root.tag != "annotation":
        raise FormatError(f"root element must be <annotation>, got <{root.tag}>", path=path)
    return root


def _text(el: Any, tag: str) -> str | None:
    child = el.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _flag(value: str) -> bool | str:
    v = value.strip().lower()
    return True if v in ("1", "true", "yes") else False if v in ("0", "false", "no") else value


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    classes: list[str] | None = None,
    origin: int = 1,
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
    split_of, listed = _splits(voc_root, col, {f.stem for f in files})
    known = classes if classes is not None else _labelmap(voc_root / "labelmap.txt")
    paths: list[str] = []
    widths: list[int] = []
    heights: list[int] = []
    splits: list[str] = []
    objs: list[tuple[int, str, list[float] | None, dict[str, Any], Path, str]] = []
    nested: set[str] = set()
    for i, xml in enumerate(files):
        root = _load_xml(xml)
        name = _text(root, "filename") or ""
        if not name:
            name = next((xml.stem + s for s in IMAGE_SUFFIXES if (img_root / (xml.stem + s)).exists()),
                        xml.stem + ".jpg")
            col.add("voc_missing_filename", f"<filename> is empty; using {name!r}", file=xml, field="filename",
                    image=i)
        rel = safe_relpath(name, root=img_root, file=xml, field="filename")
        if PurePosixPath(rel).stem != xml.stem:
            col.add("voc_filename_mismatch", f"<filename> {name!r} must match the xml file name {xml.name!r}",
                    file=xml, field="filename", image=i)
        w, h = _size(root, xml, img_root / rel, i, col)
        paths.append(rel)
        widths.append(w)
        heights.append(h)
        splits.append(split_of.get(xml.stem, ""))
        n_zero = 0
        for k, obj in enumerate(root.findall("object")):
            rec = f"object[{k}]"
            cls = _text(obj, "name")
            if not cls:
                col.add("voc_missing_name", "object must have a <name>; not imported", severity="error", file=xml,
                        record=rec, field="name", image=i)
                continue
            ok, box = _bndbox(obj, xml, rec, i, col, origin)
            if not ok:
                continue
            if origin == 1 and box is not None and (box[0] == 0 or box[1] == 0):
                n_zero += 1
            objs.append((i, cls, box, _attributes(obj, nested), xml, rec))
        if n_zero:
            col.add("voc_zero_based", f"{n_zero} boxes have xmin or ymin = 0: VOC pixels are 1-based, so this file "
                    "looks 0-based (its boxes are read one pixel too far left/up). CVAT's VOC export writes 0-based "
                    "corners: read it with origin=0 (--read-option origin=0)", file=xml, field="bndbox", image=i)
    for tag in sorted(nested):
        col.add("voc_nested_tag", f"object tag <{tag}> has child elements and is not imported", severity="info")
    stems = {f.stem for f in files}
    for ident, file, n in listed:
        if ident not in stems:
            col.add("voc_missing_xml", f"image id {ident!r} is listed but Annotations/{ident}.xml is missing; not "
                    "imported", severity="error", file=file, record=f"line {n}")
    ds = _build(objs, known, paths, widths, heights, splits, img_root, col, origin)
    return ds, col.report()


def _check_origin(origin: Any, src: Path) -> int:
    if isinstance(origin, bool) or origin not in (0, 1):
        raise FormatError(f"origin must be 0 (0-based corners, as CVAT's VOC export writes them) or 1 (VOC's "
                          f"1-based pixels), got {origin!r}", path=src, field="origin")
    return int(origin)


def _size(root: Any, xml: Path, image: Path, i: int, col: Collector) -> tuple[int, int]:
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
        info = image_info(image)
    except FormatError:
        col.add("voc_zero_size", f"{what} and the image can't be read; size unknown", file=xml, field=field,
                image=i)
        return 0, 0
    col.add("voc_zero_size", f"{what}; read {info.width}x{info.height} from the image", file=xml, field=field,
            image=i)
    return info.width, info.height


def _bndbox(obj: Any, xml: Path, rec: str, i: int, col: Collector,
            origin: int) -> tuple[bool, list[float] | None]:
    """(importable, [xmin, ymin, xmax, ymax] as written or None without a bndbox)."""
    bb = obj.find("bndbox")
    if bb is None:
        col.add("voc_missing_bndbox", "object has no <bndbox>; imported without a box", file=xml, record=rec,
                field="bndbox", image=i)
        return True, None
    vals = []
    for tag in _COORDS:
        t = _text(bb, tag)
        try:
            v = float(t) if t is not None else math.nan
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            col.add("voc_bad_value", f"<bndbox><{tag}> must be a number, got {t!r}; imported without a box",
                    severity="error", file=xml, record=rec, field=tag, image=i)
            return True, None
        vals.append(v)
    for lo, hi in ((0, 2), (1, 3)):
        low = vals[lo] - origin  # x1: xmax = xmin - 1 (1-based) or xmax = xmin (0-based) is an empty box
        if vals[hi] >= low or math.isclose(vals[hi], low, rel_tol=0, abs_tol=1e-9):
            vals[hi] = max(vals[hi], low)
            continue
        need = f"{_TAGS[lo]} - 1" if origin else _TAGS[lo]
        col.add("voc_inverted_box", f"bndbox must have {_TAGS[hi]} >= {need}, got <{_TAGS[lo]}> {fmt_num(vals[lo])} "
                f"and <{_TAGS[hi]}> {fmt_num(vals[hi])}; kept with the two swapped",
                severity="error", file=xml, record=rec, field=_TAGS[hi], image=i)
        vals[lo], vals[hi] = vals[hi] + origin, low
    return True, vals


_TAGS = ("xmin", "ymin", "xmax", "ymax")


def _attributes(obj: Any, nested: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in obj:
        tag = child.tag
        if tag in ("name", "bndbox"):
            continue
        if tag == "attributes":
            for a in child.findall("attribute"):
                key, value = _text(a, "name"), a.find("value")
                if key:
                    out[key] = None if value is None else (value.text or "").strip()
            continue
        if len(child):
            nested.add(tag)
            continue
        text = (child.text or "").strip()
        out[tag] = _flag(text) if tag in BOOL_TAGS else text
    return out


def _build(objs: list[tuple[int, str, list[float] | None, dict[str, Any], Path, str]], known: list[str] | None,
           paths: list[str], widths: list[int], heights: list[int], splits: list[str],
           root: Path, col: Collector, origin: int) -> Dataset:
    names = list(known) if known is not None else sorted({o[1] for o in objs})
    index = {n: k for k, n in enumerate(names)}
    img: list[int] = []
    lab: list[int] = []
    box: list[list[float]] = []
    attrs: dict[str, list[Any]] = {}
    for i, cls, b, at, xml, rec in objs:
        if cls not in index:
            col.add("voc_unknown_class", f"class {cls!r} is not in the class list ({', '.join(names[:10])}); "
                    "object not imported", severity="error", file=xml, record=rec, field="name", image=i)
            continue
        row = len(img)
        img.append(i)
        lab.append(index[cls])
        box.append([b[0] - origin, b[1] - origin, b[2], b[3]] if b is not None else [math.nan] * 4)
        for k in at:
            if k not in attrs:  # not setdefault: its [None] * row would be built for every object
                attrs[k] = [None] * row
        for k, col_ in attrs.items():
            col_.append(at.get(k))
    n = len(img)
    ann = Annotations(image=np.asarray(img, np.int64), label=np.asarray(lab, np.int64),
                      box=np.asarray(box, np.float64).reshape(n, 4),
                      attributes={k: obj_array(v) for k, v in attrs.items()})
    adefs = tuple(AttributeDef(k, type="bool" if all(isinstance(x, bool) for x in v if x is not None) and
                               any(x is not None for x in v) else "text") for k, v in attrs.items())
    schema = LabelSchema(classes=tuple(ClassDef(nm) for nm in names), tasks=(Task.DETECTION,), attributes=adefs)
    images = Images(path=str_array(paths), width=np.asarray(widths, np.int64), height=np.asarray(heights, np.int64),
                    split=str_array(splits))
    return Dataset(schema=schema, images=images, annotations=ann, root=root)


def read_voc(src: str | Path, **options: Any) -> Dataset:
    """Read Pascal VOC XML (see ``parse``); a MaslowWarning summarises any import issues.

    Example:
        >>> ds = read_voc("VOCdevkit/VOC2012")  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), **options), source=src)


# -- write -------------------------------------------------------------------------------------------
def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def _value_text(v: Any) -> str | None:
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, str):
        return v
    if isinstance(v, int | float | np.integer | np.floating) and math.isfinite(float(v)):
        return fmt_num(float(v))
    return None


def write(
    ds: Dataset,
    dst: Path,
    *,
    images: bool = True,
    copy_images: bool = False,
    integer_coordinates: bool = False,
    origin: int = 1,
) -> ExportReport:
    """Write ``ds`` as a VOC root: ``Annotations/``, ``ImageSets/Main/<split>.txt``, ``JPEGImages/``, labelmap.txt.

    Boxes are written 1-based (``xmin = x1 + 1``, ``xmax = x2``), or 0-based with ``origin=0`` (``xmin = x1``). Attributes ``difficult``, ``truncated``,
    ``occluded`` (0/1) and ``pose`` are VOC tags; every other attribute with a str, number or bool value is
    written as a child tag of ``<object>`` (read back as text); other values are counted lost.

    Args:
        images: put the images under ``JPEGImages/`` (symlinks by default; ``<filename>`` is the name there);
            when False no images are written and ``<filename>`` is the path relative to ``ds.root``.
        copy_images: copy the image files instead of symlinking them.
        integer_coordinates: round coordinates to whole pixels (some readers expect integers); boxes that
            move are counted in ``lost["box_precision"]``.
        origin: 1 for VOC's 1-based pixels; 0 writes maslow's corners as they are, the way CVAT's VOC import
            (datumaro) reads them, so boxes land on the same pixels in CVAT.

    Returns:
        ExportReport; ``lost`` counts masks, polygons, keypoints, scores, crowd flags, annotations without a box.

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
    splits = ds.images.split.tolist() if ds.images.split is not None else [""] * ds.n_images
    slices = ds.image_slices()
    written = np.zeros(len(a), bool)
    with atomic_dir(dst) as tmp:
        (tmp / "Annotations").mkdir()
        for i in range(ds.n_images):
            name = names[i] if images else str(ds.images.path[i])
            root = ET.Element("annotation")
            _sub(root, "folder", "JPEGImages" if images else "")
            _sub(root, "filename", name)
            size = _sub(root, "size")
            _sub(size, "width", str(int(w_all[i])))
            _sub(size, "height", str(int(h_all[i])))
            _sub(size, "depth", "1" if "#" in str(ds.images.path[i]) else "3")  # IDX members are grey
            _sub(root, "segmented", "0")
            for r in range(slices[i], slices[i + 1]):
                if a.has_box[r]:
                    _object(ds, r, root, rep, integer_coordinates, origin)
                    written[r] = True
            ET.indent(root, space="\t")
            xml = tmp / "Annotations" / f"{PurePosixPath(names[i]).stem}.xml"
            ET.ElementTree(root).write(xml, encoding="utf-8", xml_declaration=False)
            if images and not place_image(image_path(ds, i), tmp / "JPEGImages" / names[i],
                                          "copy" if copy_images else "symlink"):
                rep.lost["image_files"] += 1
        main = tmp / "ImageSets" / "Main"  # datumaro finds a VOC dataset by these lists: every image is in one
        main.mkdir(parents=True)
        for s in dict.fromkeys(str(x) or _DEFAULT_SUBSET for x in splits):
            ids = [PurePosixPath(names[i]).stem for i in range(ds.n_images) if (str(splits[i]) or _DEFAULT_SUBSET) == s]
            (main / f"{s}.txt").write_text("".join(x + "\n" for x in ids), encoding="utf-8")
        lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
        for c in ds.schema.classes:
            rgb = ",".join(str(int(c.color[k:k + 2], 16)) for k in (1, 3, 5)) if len(c.color) == 7 else ""
            lines.append(f"{c.name}:{rgb}::")
        (tmp / "labelmap.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rep.lost.update(count_lost(ds, keep={"box", "attributes"}, rows=written))
    n_default = sum(str(x) == _DEFAULT_SUBSET for x in splits)
    if n_default:  # default.txt lists the images without a split
        rep.lost["split"] += n_default
        rep.notes.append(f"{n_default} images of the split 'default' are read back without a split (datumaro's "
                         "default subset)")
    colon = [c.name for c in ds.schema.classes if ":" in c.name]
    if colon:
        rep.notes.append(f"labelmap.txt: CVAT and datumaro split its lines on every ':' and refuse class names "
                         f"holding one: {colon[:5]}")
    bad = [c.name for c in ds.schema.classes if not _exact_text(c.name) or c.name.startswith("#")]
    if bad:  # labelmap.txt and <name> can't hold them (a leading '#' makes a comment line)
        rep.lost["class_names"] += len(bad)
        rep.notes.append(f"class names that VOC can't hold as they are: {bad[:5]}")
    if (~written).any():
        rep.lost["annotations"] += int((~written).sum())
        rep.notes.append(f"{int((~written).sum())} annotations without a box were not written")
    rep.n_images = ds.n_images
    rep.n_annotations = int(written.sum())
    return rep


def _exact_text(s: str) -> bool:
    """Whether XML text ``s`` reads back as itself (the reader strips text; XML has no control characters)."""
    return s == s.strip() and not _NOT_XML.search(s)


def _object(ds: Dataset, r: int, parent: ET.Element, rep: ExportReport, integer: bool, origin: int) -> None:
    a = ds.annotations
    assert a.box is not None
    obj = _sub(parent, "object")
    _sub(obj, "name", ds.schema.classes[int(a.label[r])].name)
    custom: list[tuple[str, str]] = []
    for k, col in a.attributes.items():
        v = col[r]
        if v is None:
            continue
        as_tag = k in BOOL_TAGS or k == "pose"
        text = ("true" if v else "false") if isinstance(v, bool | np.bool_) and not as_tag else _value_text(v)
        if text is None or (as_tag and (not _TAG.fullmatch(k) or k in _RESERVED or k.lower().startswith("xml"))) \
                or (not as_tag and not _exact_text(k)):
            rep.lost["attributes"] += 1
            continue
        if not _exact_text(text):  # surrounding spaces (stripped on reading), control characters
            rep.lost["attributes"] += 1
            if _NOT_XML.search(text):
                continue
        if as_tag:
            _sub(obj, k, text)
        else:
            custom.append((k, text))
    if custom:  # datumaro's (and so CVAT's) form: it reads no other
        block = _sub(obj, "attributes")
        for k, text in custom:
            at = _sub(block, "attribute")
            _sub(at, "name", k)
            _sub(at, "value", text)
    x1, y1, x2, y2 = (float(v) for v in a.box[r])
    vals = [x1 + origin, y1 + origin, x2, y2]
    if integer:
        rounded = [float(round(v)) for v in vals]
        if rounded != vals:
            rep.lost["box_precision"] += 1
        vals = rounded
    bb = _sub(obj, "bndbox")
    for tag, v in zip(_COORDS, vals, strict=True):
        _sub(bb, tag, fmt_num(v))


write_voc = write
