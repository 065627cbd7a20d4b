"""Open Images (V6/V7 and the 2019 challenge) object detection annotations: boxes CSV, class descriptions CSV and
image-level labels CSV.

Glossary:

- *boxes CSV* (``validation-annotations-bbox.csv``, ``challenge-2019-validation-detection-bbox.csv``): a header
  line, then one box a row: ``ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,
  IsGroupOf,IsDepiction,IsInside``. Columns are found by name (any order, any case); only ``ImageID``,
  ``LabelName`` and the four coordinates are required (the challenge files have ``ImageID,LabelName,XMin,XMax,YMin,
  YMax,IsGroupOf``); other columns (V7's ``XClick1X`` ... ``XClick4Y``) are kept as text.
- *fractions*: ``XMin``/``XMax`` are divided by the image width, ``YMin``/``YMax`` by its height, so they lie in
  [0, 1]; note the order ``XMin,XMax,YMin,YMax``. maslow holds boxes as xyxy pixels: ``XMin * width`` etc.
- *flags*: ``IsOccluded``, ``IsTruncated``, ``IsGroupOf``, ``IsDepiction``, ``IsInside``: 1 yes, 0 no, -1 unknown.
  ``IsGroupOf`` is ``iscrowd`` (a box around a group of objects, which the Open Images metric matches by IoA); the
  others are the bool attributes ``occluded``, ``truncated``, ``depiction``, ``inside`` (None for -1).
- *MID*: a class's machine id (``/m/0cmf2``); the *class descriptions CSV* (``oidv6-class-descriptions-boxable.csv``,
  ``challenge-2019-classes-description-500.csv``) maps MIDs to display names (``MID,DisplayName``, with or without
  a header line).
- *image-level labels CSV* (``...-human-imagelabels-boxable.csv``): ``ImageID,Source,LabelName,Confidence``, where
  Confidence 1 says the class is in the image (verified present) and 0 that it is not (verified absent).
- *Source*: who drew the box (``xclick``, ``activemil``) or verified the label (``verification``,
  ``crowdsource-verification``, ``machine``).
- *images list CSV* (``image_ids_and_rotation.csv``, ``validation-images-with-rotation.csv``, maslow's
  ``image-ids.csv``): one image a row, ``ImageID`` and optionally ``Subset`` (``train``, ``validation``, ...); it
  names the images without boxes or labels, and the split of each (other columns are not read).

In maslow (what the readers and writers keep, so that read -> write -> read gives the same Dataset):

- one image per ImageID (with an images list: its order, then any other the CSVs name; without: the boxes CSV's
  in order of first appearance, then those only the labels CSV names, sorted when both files are sorted by
  ImageID), with the images list's ``Subset`` as ``images.split``, at ``<ImageID>.<suffix>`` in the images
  folder, its size from the file's header. Without an image file an image is 1 x 1 and its boxes stay fractions (as hotcoco's ``COCO.from_oid``
  does: IoU and IoA, hence Open Images AP, are unchanged; areas are not pixels): such images are marked in
  ``images.extra["openimages_unsized"]`` and the writer prints the same numbers back;
- classes: the class descriptions' order (every class listed, with or without boxes), else the MIDs in order of
  first appearance; ``ClassDef.name`` is the display name (the MID without descriptions), ``ClassDef.id`` 1..N;
  ``info["openimages"]["mids"]`` maps each display name to its MID (names that are MIDs are left out) so that the
  writer gives the MIDs back; display names that repeat become ``Name (MID)`` (``display_names`` keeps the text);
- ``images.extra["pos_category_ids"]``/``["neg_category_ids"]``: per image, the ``ClassDef.id`` of the classes
  verified present / absent (lists; only with a labels CSV), ``["openimages_label_source"]`` their Sources
  (present ones first);
- ``annotations.source``: ``xclick``, ``activemil``, ``verification`` -> human, ``machine`` -> model;
  ``annotations.extra["openimages_source"]`` keeps the text; ``["openimages_confidence"]`` the Confidence where
  some is not 1; ``["openimages_group_unknown"]`` IsGroupOf -1; ``["openimages:<column>"]`` other columns as text;
- ``info["openimages"]``: the boxes CSV's ``columns``, how its numbers were printed (``decimals``, ``int_dot0``),
  ``crlf``, ``descriptions_header``, ``labels_columns``.

The writer writes a folder: ``annotations-bbox.csv``, ``class-descriptions-boxable.csv``,
``annotations-human-imagelabels-boxable.csv`` (with image-level labels), ``image-ids.csv`` (``ImageID,Subset``,
where the other files would not give back every image, in order, with its split) and
``images/<ImageID>.<suffix>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import IntArray, obj_array, str_array
from maslow.errors import FormatError
from maslow.io._common import Collector, ExportReport
from maslow.io._openimages_csv import (
    COORDS,
    Table,
    codes,
    coordinates,
    first_row,
    flags,
    floats,
    image_sizes,
    index_images,
    lookup,
    pixel_boxes,
    read_descriptions,
    read_table,
    table_number_style,
)
from maslow.io.registry import Progress, Ticks, warn_issues

__all__ = ["BOX_COLUMNS", "parse", "read_class_descriptions", "read_openimages", "write", "write_openimages"]

BOX_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
               "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")
REQUIRED = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
LABEL_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence")
#: flag column -> bool attribute
FLAGS = {"IsOccluded": "occluded", "IsTruncated": "truncated", "IsDepiction": "depiction", "IsInside": "inside"}
#: Source text -> annotations.source (others: human, reported)
SOURCES = {"xclick": "human", "activemil": "human", "verification": "human", "crowdsource-verification": "human",
           "human": "human", "machine": "model", "model": "model", "pseudo": "pseudo", "synthetic": "synthetic"}
#: annotations.source -> the Source written where the text read is not kept
SOURCE_TEXT = {"human": "xclick", "model": "machine", "pseudo": "pseudo", "synthetic": "synthetic"}
BOXES_FILE = "annotations-bbox.csv"
DESCRIPTIONS_FILE = "class-descriptions-boxable.csv"
LABELS_FILE = "annotations-human-imagelabels-boxable.csv"
IMAGE_LIST_FILE = "image-ids.csv"
COLUMN_PREFIX = "openimages:"  # annotations.extra columns that keep the boxes CSV's other columns


@dataclass
class _Files:
    boxes: Path
    descriptions: Path | None
    labels: Path | None
    image_list: Path | None
    images: Path | None  # the folder the image files are in
    index: dict[str, str] | None = None  # index_images(images) where the search found it, else None
    unread_lists: tuple[str, ...] = ()  # images list CSVs in the folder that are not read (another split)


def _pick(folder: Path, names: list[str], what: str, words: tuple[str, ...], prefer: tuple[str, ...]) -> Path | None:
    found = [n for n in names if all(w in n.lower() for w in words)]
    if len(found) > 1:
        found = [n for n in found if any(p in n.lower() for p in prefer)] or found
    if len(found) > 1:
        raise FormatError(f"folder must hold one {what}, got {len(found)} ({', '.join(found)}): pass the file",
                          path=folder)
    return folder / found[0] if found else None


_SPLITS = ("train", "validation", "test")


def _split_word(name: str) -> str | None:
    """The Open Images split a file name says (``validation-images-with-rotation.csv``,
    ``challenge-2019-validation-detection-bbox.csv``: ``validation``), None when it says none."""
    words = re.split(r"[-_.]", name.lower())
    return next((s for s in _SPLITS if s in words), None)


def _image_lists(folder: Path, names: list[str], boxes: str) -> tuple[Path | None, list[str]]:
    """The images list CSV to read among ``names``, and the images lists not read. Read: maslow's
    ``image-ids.csv``, or an official list of the boxes CSV's split (``validation-images-with-rotation.csv`` beside
    ``validation-annotations-bbox.csv``); a list of another split, or of every split
    (``image_ids_and_rotation.csv``), would add images without their boxes: only through ``image_list=``."""
    found = [n for n in names if ("images" in n.lower() or "image_ids" in n.lower() or "image-ids" in n.lower())
             and "bbox" not in n.lower() and "imagelabels" not in n.lower()]
    split = _split_word(boxes)
    read = [n for n in found if n.lower() == IMAGE_LIST_FILE or (split is not None and _split_word(n) == split)]
    if len(read) > 1:
        raise FormatError(f"folder must hold one images list CSV, got {len(read)} ({', '.join(read)}): pass the "
                          "file (image_list=)", path=folder)
    return (folder / read[0] if read else None), [n for n in found if n not in read]


def _layout(src: Path, images_root: Path | None, descriptions: str | Path | None, labels: str | Path | None,
            image_list: str | Path | None = None) -> _Files:
    if not src.exists():
        raise FormatError("not found: must be an Open Images boxes CSV or a folder holding one (*bbox*.csv)",
                          path=src)
    folder = src if src.is_dir() else src.parent
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".csv") if src.is_dir() else []
    boxes = src
    unread: list[str] = []
    if src.is_dir():
        found = _pick(src, names, "boxes CSV (*bbox*.csv)", ("bbox",), ("detection",))
        if found is None:
            raise FormatError("folder must hold an Open Images boxes CSV (a name with 'bbox', e.g. "
                              "validation-annotations-bbox.csv), got none", path=src)
        boxes = found
        descriptions = descriptions or _pick(src, names, "class descriptions CSV", ("class", "descri"),
                                             ("boxable", "500"))
        labels = labels or _pick(src, names, "image-level labels CSV", ("imagelabels",), ("human",))
        if image_list is None:
            image_list, unread = _image_lists(src, names, boxes.name)
    index = None
    if images_root is None:
        for cand in (folder / "images", folder / "data", folder):
            index = index_images(cand)
            if index:
                images_root = cand
                break
    return _Files(boxes, None if descriptions is None else Path(descriptions), None if labels is None else Path(labels),
                  None if image_list is None else Path(image_list), None if images_root is None else Path(images_root),
                  index, tuple(unread))


def read_class_descriptions(path: str | Path) -> dict[str, str]:
    """The class descriptions CSV (``MID,DisplayName``, with or without a header line) as MID -> display name, in
    file order.

    Raises:
        FormatError: a missing or non-UTF-8 file, a row without two fields, an empty or repeated MID.

    Example:
        >>> read_class_descriptions("oidv6-class-descriptions-boxable.csv")["/m/0cmf2"]  # doctest: +SKIP
        'Airplane'
    """
    return read_descriptions(Path(path))[0]


def _class_names(mids: list[str], desc: dict[str, str] | None, col: Collector, path: Path | None
                 ) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """The class names, name -> MID (where they differ) and name -> display text (for the renamed repeats)."""
    if desc is None:
        return list(mids), {}, {}
    shown = [desc[m] for m in mids]
    count: dict[str, int] = {}
    for s in shown:
        count[s] = count.get(s, 0) + 1
    names = [s if count[s] == 1 and s.strip() else f"{s} ({m})".strip() for s, m in zip(shown, mids, strict=True)]
    renamed = {n: s for n, s in zip(names, shown, strict=True) if n != s}
    if renamed:
        col.add("openimages_repeated_name", f"{len(renamed)} classes share a display name with another: named "
                f"'Name (MID)' (first: {next(iter(renamed))!r})", severity="info", file=path)
    return names, {n: m for n, m in zip(names, mids, strict=True) if n != m}, renamed


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    class_descriptions: str | Path | None = None,
    image_labels: str | Path | None = None,
    image_list: str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[Dataset, Report]:
    """Read Open Images boxes (see the module glossary).

    Args:
        src: the boxes CSV, or a folder holding one (a ``.csv`` whose name has ``bbox``) and, found by name, the
            class descriptions (``class`` and ``descri``) and image-level labels (``imagelabels``) CSVs.
        images_root: the folder of the image files (``<ImageID>.jpg``); default ``images/`` or ``data/`` beside the
            CSV, or the CSV's folder, when one holds images.
        strict: raise FormatError at the first error or warning instead of reporting it.
        class_descriptions: the class descriptions CSV: display names as class names, and every box's LabelName
            must be one of its MIDs (others are reported and not imported).
        image_labels: the image-level labels CSV (``pos_category_ids``/``neg_category_ids``).
        image_list: the images list CSV (``ImageID`` and optionally ``Subset``): every image, in order, with its
            split; default, in a folder, maslow's ``image-ids.csv`` or an official list of the boxes CSV's split
            (``validation-images-with-rotation.csv`` beside ``validation-annotations-bbox.csv``); other lists
            (another split, ``image_ids_and_rotation.csv``) are read only when named here (an info finding names
            them). Images only the list names are imported without annotations (an info finding counts them).
        progress: called as ``progress(done, total)`` over the rows read, then the image headers.

    Returns:
        The Dataset (task detection; root: the images folder, else the CSV's) and the import Report.

    Raises:
        FormatError: a missing required column, a row with another number of fields, a coordinate or Confidence
            that is not a finite number, a flag that is not 1, 0 or -1, an ImageID that is empty or holds a / (each
            names the file, the line and the field); a file option that is not a path.
    """
    src = Path(src)
    for option, given in (("class_descriptions", class_descriptions), ("image_labels", image_labels),
                          ("image_list", image_list)):
        if given is not None and not isinstance(given, str | Path):
            raise FormatError(f"{option} must be the path of a CSV file, got {given!r}", path=src, field=option)
    col = Collector(strict=strict)
    files = _layout(src, None if images_root is None else Path(images_root), class_descriptions, image_labels,
                    image_list)
    desc, desc_header = read_descriptions(files.descriptions) if files.descriptions is not None else (None, None)
    t = read_table(files.boxes, what="boxes CSV")
    t.require(REQUIRED, "boxes CSV")
    lt = read_table(files.labels, what="image-level labels CSV") if files.labels is not None else None
    if lt is not None:
        lt.require(("ImageID", "LabelName", "Confidence"), "image-level labels CSV")
    it = read_table(files.image_list, what="images list CSV") if files.image_list is not None else None
    if it is not None:
        it.require(("ImageID",), "images list CSV")
    n_rows = len(t) + (len(lt) if lt is not None else 0)
    image_code, box_ids = t.codes("ImageID")
    label_code, box_mids = t.codes("LabelName")
    box_mids = [m.strip() for m in box_mids]  # as the class descriptions' MIDs (real MIDs have no spaces)
    lt_images = lt.codes("ImageID") if lt is not None else (np.zeros(0, np.int64), [])
    lt_labels = lt.codes("LabelName") if lt is not None else (np.zeros(0, np.int64), [])
    lt_labels = (lt_labels[0], [m.strip() for m in lt_labels[1]])
    label_image_ids = lt_images[1]
    listed_ids = it.codes("ImageID")[1] if it is not None else []
    for tab, named in ((t, box_ids), (lt, label_image_ids), (it, listed_ids)):
        bad = next((x for x in named if not x or "/" in x or "\\" in x or x in (".", "..")), None)
        if tab is not None and bad is not None:
            raise FormatError(f"ImageID must be a file name without its suffix (non-empty, no / or \\), got {bad!r}",
                              path=tab.path, record=first_row(tab.col("ImageID") == bad, tab, "ImageID")[0],
                              field=tab.name("ImageID"))
    mids = list(desc) if desc is not None else list(dict.fromkeys([*box_mids, *lt_labels[1]]))
    row_of_mid = {m: k for k, m in enumerate(mids)}
    label = lookup(label_code, box_mids, row_of_mid)
    ids = list(dict.fromkeys([*listed_ids, *box_ids, *label_image_ids]))
    if it is None and lt is not None and box_ids == sorted(box_ids) and label_image_ids == sorted(label_image_ids):
        ids = sorted(ids)
    splits = _subsets(it, ids, col)
    _list_findings(files, it, listed_ids, {*box_ids, *label_image_ids}, col)
    row_of_id = {x: i for i, x in enumerate(ids)}
    image = lookup(image_code, box_ids, row_of_id)
    tick = Ticks(progress, n_rows + len(ids))
    tick(len(t))
    v = coordinates(t, col)
    names, mid_of, renamed = _class_names(mids, desc, col, files.descriptions)
    keep = label >= 0
    if not keep.all():
        record, field = first_row(~keep, t, "LabelName")
        unknown = list(dict.fromkeys(t.col("LabelName")[~keep].tolist()))
        col.add("openimages_unknown_class", f"LabelName must be a MID of the class descriptions, got {unknown[0]!r} "
                f"({int((~keep).sum())} boxes of {len(unknown)} MIDs); not imported", severity="error",
                file=t.path, record=record, field=field)
    pos = neg = label_source = None
    if lt is not None:
        pos, neg, label_source = _image_labels(lt, lt_images, lt_labels, row_of_id, row_of_mid, col)
        tick(n_rows)
    paths, w, h, unsized = image_sizes(ids, files.images, col, tick, n_rows, found=files.index)
    if files.images is None and ids:
        col.add("openimages_no_image_size", f"no images folder: {len(ids)} images read as 1 x 1, their boxes as "
                "fractions (IoU and IoA are unchanged; areas are not pixels). Name the images folder (images=) for pixel boxes",
                severity="info", file=files.boxes)
    tick.end()
    ann = _annotations(t, v, image[keep], label[keep], keep, w, h, col)
    image_extra: dict[str, Any] = {}
    if unsized.any():
        image_extra["openimages_unsized"] = unsized
    if pos is not None and neg is not None:
        image_extra["pos_category_ids"], image_extra["neg_category_ids"] = obj_array(pos), obj_array(neg)
        if label_source is not None:
            image_extra["openimages_label_source"] = obj_array(label_source)
    images = Images(path=str_array(paths), width=w, height=h, split=splits, extra=image_extra)
    present = [FLAGS[c] for c in FLAGS if t.has(c)]
    schema = LabelSchema(classes=tuple(ClassDef(n, id=k + 1) for k, n in enumerate(names)), tasks=(Task.DETECTION,),
                         attributes=tuple(AttributeDef(a, type="bool") for a in present))
    info: dict[str, Any] = {"columns": [h_.strip() for h_ in t.header]}
    info.update(table_number_style(t, COORDS))
    for key, value in (("mids", mid_of), ("display_names", renamed), ("crlf", t.crlf),
                       ("descriptions_header", desc_header),
                       ("labels_columns", None if lt is None else [h_.strip() for h_ in lt.header])):
        if value:
            info[key] = value
    root = files.images if files.images is not None else files.boxes.parent
    return Dataset(schema=schema, images=images, annotations=ann, root=root, info={"openimages": info}), col.report()


def _list_findings(files: _Files, it: Table | None, listed: list[str], named: set[str], col: Collector) -> None:
    """Info findings: the images lists in the folder that are not read; the images only the list read names (no
    box, no image-level label), which are imported without annotations."""
    if files.unread_lists:
        split = _split_word(files.boxes.name)
        col.add("openimages_image_list_not_read", f"{len(files.unread_lists)} images list CSVs not read "
                f"({', '.join(files.unread_lists)}): only image-ids.csv or a list of the boxes CSV's split "
                f"({split or 'none in its name'}) is read by itself; pass the file (image_list=) to read one",
                severity="info", file=files.boxes.parent)
    only = [x for x in listed if x not in named] if it is not None else []
    if it is not None and only:
        record, field = first_row(it.col("ImageID") == only[0], it, "ImageID")
        col.add("openimages_listed_only", f"{len(only)} images are named only by the images list (no box, no "
                f"image-level label; first: {only[0]!r}): imported without annotations", severity="info",
                file=it.path, record=record, field=field)


def _subsets(it: Table | None, ids: list[str], col: Collector) -> np.ndarray | None:
    """Each image's split: the images list's ``Subset`` (the first row of an ImageID listed twice), "" for images
    it doesn't list; None without a Subset column."""
    if it is None or not it.has("Subset"):
        return None
    image_id, subset = it.col("ImageID").tolist(), it.col("Subset").tolist()
    of: dict[str, str] = {}
    for r, (x, s) in enumerate(zip(image_id, subset, strict=True)):
        if of.setdefault(x, s) != s:
            col.add("duplicate_image", f"ImageID {x!r} is listed in Subset {of[x]!r} and in {s!r}; kept in "
                    f"{of[x]!r}", file=it.path, record=f"line {it.line(r)}", field=it.name("Subset"))
    return str_array([of.get(x, "") for x in ids])


def _annotations(t: Table, v: np.ndarray, image: np.ndarray, label: np.ndarray, keep: np.ndarray, w: np.ndarray,
                 h: np.ndarray, col: Collector) -> Annotations:
    box = pixel_boxes(v[keep], image, w, h)
    attributes = {FLAGS[c]: flags(t, c)[keep] for c in FLAGS if t.has(c)}
    extra: dict[str, np.ndarray] = {}
    iscrowd = np.zeros(len(image), bool)
    if t.has("IsGroupOf"):
        group = flags(t, "IsGroupOf")[keep]
        iscrowd = group == True  # noqa: E712 - an object array of True/False/None
        if (group == None).any():  # noqa: E711
            extra["openimages_group_unknown"] = np.asarray(group == None)  # noqa: E711
    source: Any = None
    if t.has("Source"):
        code, texts = t.codes("Source") if keep.all() else codes(t.col("Source")[keep])
        other = [s for s in texts if s not in SOURCES]
        if other:
            unknown = np.zeros(len(keep), bool)
            unknown[np.flatnonzero(keep)[np.isin(code, [k for k, s in enumerate(texts) if s not in SOURCES])]] = True
            record, field = first_row(unknown, t, "Source")
            col.add("openimages_unknown_source", f"Source must be one of {', '.join(SOURCES)} to say who made a box; "
                    f"{other[:5]} read as human (the text is kept)", severity="info", file=t.path, record=record,
                    field=field)
        source = np.array([SOURCES.get(s, "human") for s in texts], object)[code] if len(code) else None
        extra["openimages_source"] = np.array(texts, object)[code] if len(code) else str_array([])
    if t.has("Confidence") and not t.all_equal("Confidence", "1"):
        conf = floats(t, "Confidence")[keep]
        if (conf != 1).any():
            extra["openimages_confidence"] = conf
    known = {c.lower() for c in BOX_COLUMNS}
    for name in t.header:
        if name.strip().lower() not in known:
            extra[COLUMN_PREFIX + name.strip()] = t.col(name.strip())[keep]
    return Annotations.sort_rows(image=image, label=label, box=box, iscrowd=iscrowd, attributes=attributes,
                                 source=source, extra=extra)


def _image_labels(lt: Table, image_codes: tuple[IntArray, list[str]], mid_codes: tuple[IntArray, list[str]],
                  row_of_id: dict[str, int], row_of_mid: dict[str, int], col: Collector
                  ) -> tuple[list[list[int]], list[list[int]], list[list[str]] | None]:
    """Per image: the ClassDef ids verified present, verified absent, and the Sources (present ones first), each list
    in file order (vectorised: Open Images' human labels file has millions of rows); ``image_codes``/``mid_codes``:
    ``lt.codes`` of ImageID and LabelName."""
    m = len(row_of_id)
    if m == 0:  # no image: no label either
        return [], [], [] if lt.has("Source") else None
    conf = floats(lt, "Confidence")
    image_code, image_ids = image_codes
    mid_code, mids = mid_codes
    image = lookup(image_code, image_ids, row_of_id)
    cls = lookup(mid_code, mids, row_of_mid)
    known = cls >= 0
    unknown = np.flatnonzero(~known)
    unverified = np.flatnonzero(known & (conf != 1) & (conf != 0))
    if len(unknown):
        r = int(unknown[0])
        col.add("openimages_unknown_class", f"LabelName must be a MID of the class descriptions, got "
                f"{lt.col('LabelName')[r]!r} ({len(unknown)} labels); not imported", severity="error", file=lt.path,
                record=f"line {lt.line(r)}", field=lt.name("LabelName"))
    if len(unverified):
        r = int(unverified[0])
        col.add("openimages_unverified_label", f"Confidence must be 1 (verified present) or 0 (verified absent), got "
                f"{conf[r]!r} ({len(unverified)} labels, e.g. machine-generated); not imported", file=lt.path,
                record=f"line {lt.line(r)}", field=lt.name("Confidence"))
    src_code, src_names = lt.codes("Source") if lt.has("Source") else (np.zeros(len(lt), np.int64), [""])

    def per_image(rows: IntArray) -> tuple[list[list[int]], list[list[str]]]:
        """The class ids and Sources of ``rows`` (file order) grouped by image: one list per image."""
        rows = rows[np.argsort(image[rows], kind="stable")]
        cuts = [0, *np.searchsorted(image[rows], np.arange(1, m)).tolist(), len(rows)]
        ids, srcs = (cls[rows] + 1).tolist(), np.asarray(src_names, dtype=object)[src_code[rows]].tolist()
        return [ids[a:b] for a, b in pairwise(cuts)], [srcs[a:b] for a, b in pairwise(cuts)]

    pos, pos_src = per_image(np.flatnonzero(known & (conf == 1)))
    neg, neg_src = per_image(np.flatnonzero(known & (conf == 0)))
    label_source = [p + q for p, q in zip(pos_src, neg_src, strict=True)] if lt.has("Source") else None
    return pos, neg, label_source


def read_openimages(
    path: str | Path,
    *,
    images: str | Path | None = None,
    class_descriptions: str | Path | None = None,
    image_labels: str | Path | None = None,
    image_list: str | Path | None = None,
    progress: Progress | None = None,
    strict: bool = False,
) -> Dataset:
    """Read Open Images boxes (see ``parse``; ``images`` is the images folder); a MaslowWarning summarises any
    import issues.

    Example:
        >>> ds = read_openimages("validation-annotations-bbox.csv", images="validation/",  # doctest: +SKIP
        ...                      class_descriptions="oidv6-class-descriptions-boxable.csv")
    """
    return warn_issues(*parse(Path(path), images_root=None if images is None else Path(images), strict=strict,
                              class_descriptions=class_descriptions, image_labels=image_labels,
                              image_list=image_list, progress=progress),
                       source=path)


def write(ds: Dataset, dst: Path, *, images: bool = True, copy_images: bool = False,
          progress: Progress | None = None) -> ExportReport:
    """Write ``ds`` as an Open Images folder: ``annotations-bbox.csv``, ``class-descriptions-boxable.csv``,
    ``annotations-human-imagelabels-boxable.csv`` (when ``images.extra`` has ``pos_category_ids`` or
    ``neg_category_ids``), ``image-ids.csv`` (``ImageID,Subset``: every image and its split, where the other files
    would not give every image back, in order, with its split) and ``images/<ImageID>.<suffix>``; atomically (a
    failure leaves ``dst`` as it was).

    Boxes become fractions of the image size, printed as the shortest text that reads back as the same pixels (or
    with the fixed decimals the file read had, ``info["openimages"]["decimals"]``); the columns are those read
    (``info["openimages"]["columns"]``), else the 13 of V6. LabelName is the class's MID
    (``info["openimages"]["mids"]``), else its name, without spaces around it (the reader strips the MIDs of
    every CSV) and unique (else ``class_<position>``); the class name stays the display name, so it reads back as
    it was. The class descriptions list every class in the schema's order. ImageID is the image file's stem. Flags come from ``iscrowd`` and the bool attributes (-1 where None or
    absent); Source and Confidence from what the reader kept, else ``annotations.source`` and 1.

    Args:
        images: put the images under ``images/`` (symlinks; ``copy_images=True`` copies them). Images read without
            a file (``openimages_unsized``) are skipped.
        progress: called as ``progress(done, total)`` over the images (``registry.Ticks``).

    Returns:
        ExportReport; ``lost`` counts what Open Images can't hold: annotations without a box or on an image of
        unknown size (``annotations``), scores, masks, polygons, keypoints, other attributes, other ``extra``
        columns, class ids other than 1..N (``class_id``), supercategories, image-level labels of unknown class
        ids, missing image files.

    Raises:
        FormatError: ``dst`` can't be written.

    Example:
        >>> from maslow.sample import shapes
        >>> import tempfile, pathlib
        >>> rep = write(shapes(3, seed=1), pathlib.Path(tempfile.mkdtemp()) / "oi", images=False)
        >>> rep.n_images
        3
    """
    from maslow.io._openimages_write import write as _write  # the writer loads on first use

    return _write(ds, Path(dst), images=images, copy_images=copy_images, progress=progress)


write_openimages = write
