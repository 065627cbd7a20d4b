"""The text of VOC annotation files, built as strings: the bytes ``xml.etree.ElementTree`` writes for the same
tree after ``ET.indent(root, space="\\t")`` (tab indents, ``<tag />`` for empty text, ``&``, ``<`` and ``>``
escaped, characters UTF-8 can't hold as character references), without an element object per tag.

Private to ``maslow.io.voc``; see its module docstring for the conventions.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from maslow.core.dataset import Dataset
from maslow.errors import FormatError
from maslow.io._common import ExportReport
from maslow.io._export import Tally
from maslow.io._voc_read import EXACT

#: Object flags VOC defines as 0/1.
BOOL_TAGS = ("difficult", "truncated", "occluded")
_COORDS = ("xmin", "ymin", "xmax", "ymax")
#: Characters XML text can't hold as they are (control characters are malformed, a carriage return reads as \n).
NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")


def check_ids(ids: list[str], paths: list[str], dst: Any) -> None:
    """Refuse an image whose VOC id (its file's stem) can't be one line of ``ImageSets/Main/<split>.txt``: a line
    break (any character ``str.splitlines`` splits on) cuts it in two, and the reader would look for two files.

    Raises:
        FormatError: naming the first such image (its row and path), before anything is written.
    """
    bad = [i for i, x in enumerate(ids) if len(x.splitlines()) != 1 or x.splitlines()[0] != x]
    if bad:
        i = bad[0]
        more = f" ({len(bad)} images in all)" if len(bad) > 1 else ""
        raise FormatError(f"the image's VOC id {ids[i]!r} holds a line break, which ImageSets/Main lists (one id a "
                          f"line) can't hold{more}; rename the file, nothing was written", path=dst,
                          record=f"images[{i}] ({paths[i]!r})", field="path")


def check_paths(paths: list[str], dst: Any) -> None:
    """Refuse an image path XML can't hold (``NOT_XML``: a control character, a lone surrogate): ``<filename>``
    would make the file malformed, and a file name can't hold a NUL.

    Raises:
        FormatError: naming the first such image (its row and path), before anything is written.
    """
    if NOT_XML.search("".join(paths)):  # one scan of them all; then find the first
        i, bad = next((i, m.group()) for i, p in enumerate(paths) if (m := NOT_XML.search(p)))
        raise FormatError(f"the image path holds {bad!r}, a character XML can't "
                          "hold; rename the file, nothing was written", path=dst, record=f"images[{i}] ({paths[i]!r})",
                          field="path")


def class_texts(names: list[str] | tuple[str, ...]) -> list[str]:
    """The name each class is written as, in labelmap.txt and ``<name>``: itself when it reads back as itself,
    else (the caller counts it in ``lost["class_names"]``) with control characters and line breaks made spaces,
    spaces around it and a leading ``#`` (a comment line in labelmap.txt) removed, or ``class_<k>`` when that
    leaves nothing or another class's name. Names stay unique, so every object keeps its class."""
    used = {n for n in names if _class_ok(n)}
    out = []
    for k, name in enumerate(names):
        if _class_ok(name):
            out.append(name)
            continue
        clean = re.sub(r"^[#\s]+", "", " ".join(NOT_XML.sub(" ", name).split()))
        n = 1
        while not clean or clean in used or not _class_ok(clean):
            clean, n = f"class_{k}" + (f"_{n}" if n > 1 else ""), n + 1
        used.add(clean)
        out.append(clean)
    return out


def _class_ok(name: str) -> bool:
    """Whether a class name reads back as itself from labelmap.txt (one line, not a comment) and ``<name>``."""
    return bool(name) and exact_text(name) and not name.startswith("#") and name.splitlines() == [name]


def leaf(tag: str, text: str, depth: int) -> str:
    """``<tag>text</tag>`` on a new line indented ``depth`` tabs."""
    pad = "\n" + "\t" * depth
    return f"{pad}<{tag}>{escape(text)}</{tag}>" if text else f"{pad}<{tag} />"


def exact_text(s: str) -> bool:
    """Whether XML text ``s`` reads back as itself (the reader strips text; XML has no control characters)."""
    return s == s.strip() and not NOT_XML.search(s)


def num(v: float) -> str:
    """``fmt_num(v)``: integers without a decimal point, others shortest."""
    return str(int(v)) if v.is_integer() else repr(v)


def corner_text(v: float, origin: int) -> str:
    """The text of ``v + origin`` (an x1 or y1 written as xmin or ymin): ``num(v + origin)``, or for a fraction
    and origin 1 the decimal sum of ``repr(v)`` and 1, which the reader (``_voc_read.corner``) takes back to
    ``v`` to the bit (``repr(v + 1)`` can't always: ``v + 1`` rounds away the last bit of ``v`` below 1 or 2)."""
    if origin == 0 or v.is_integer():
        return num(v + origin)
    return format(EXACT.add(Decimal(repr(v)), origin), "f")




def value_text(v: Any) -> str | None:
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, str):
        return v
    if isinstance(v, int | float | np.integer | np.floating) and math.isfinite(float(v)):
        return num(float(v))
    return None


def file_text(name: str, folder: str, width: int, height: int, depth: str, objects: list[str], *,
              blocks: str = "", segmented: str = "0") -> bytes:
    """One annotation file: ``objects`` as ``object_text`` makes them, ``blocks`` (``<source>`` and ``<owner>``,
    as ``block_text`` makes them) after ``<filename>``."""
    head = (f"<annotation>{leaf('folder', folder, 1)}{leaf('filename', name, 1)}{blocks}\n\t<size>"
            f"{leaf('width', str(width), 2)}{leaf('height', str(height), 2)}{leaf('depth', depth, 2)}\n\t</size>"
            f"{leaf('segmented', segmented, 1)}")
    return (head + "".join(objects) + "\n</annotation>").encode("utf-8", "xmlcharrefreplace")


#: an XML element name maslow writes as a tag (the names a VOC file's own tags have)
XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def block_text(tag: str, value: Any) -> tuple[str, bool]:
    """``<tag>`` with one child per item of the mapping ``value`` (``<source>``, ``<owner>``), and whether some of
    it could not be written as it is (not a mapping of names to text)."""
    if not isinstance(value, dict):
        return "", value is not None
    ok = [(k, v) for k, v in value.items() if isinstance(k, str) and XML_NAME.fullmatch(k)
          and isinstance(v, str) and exact_text(v)]
    body = "".join(leaf(k, v, 2) for k, v in ok)
    return f"\n\t<{tag}>{body}\n\t</{tag}>", len(ok) != len(value)


def object_texts(ds: Dataset, rows: np.ndarray, lost: Tally, integer: bool, origin: int,
                 actions: dict[str, list[str]] | None = None) -> list[str]:
    """The ``<object>`` of each annotation in ``rows`` (which have boxes), with its ``<part>`` elements
    (``extra["voc_parts"]``) and ``<actions>`` (the attributes ``actions`` names for its class); counts in ``lost``
    (at ``(image, 0, row, rank)``) the attribute values and parts VOC can't hold and the boxes that ``integer``
    rounding moves."""
    a = ds.annotations
    assert a.box is not None
    names = [leaf("name", n, 2) for n in class_texts(ds.schema.names)]
    labels = a.label[rows]
    head = [names[k] for k in labels.tolist()]
    tags: list[list[str]] = [[] for _ in range(len(rows))]  # VOC's own tags, then the <attributes> block
    custom: list[list[str]] = [[] for _ in range(len(rows))]
    acts: list[list[str]] = [[] for _ in range(len(rows))]
    n_lost, first = 0, len(rows)
    for k, col in a.attributes.items():
        as_tag = k in BOOL_TAGS or k == "pose"
        key_ok = as_tag or exact_text(k)
        is_action = np.zeros(len(ds.schema.classes), bool)  # by label: attribute k is an action of the class
        if actions and XML_NAME.fullmatch(k) and not as_tag:
            is_action[[c for c, cls in enumerate(ds.schema.names) if k in actions.get(cls, ())]] = True
        action_rows = is_action[labels].tolist()
        done: dict[tuple[type, Any, bool], tuple[str | None, int]] = {}
        for j, v in enumerate(col[rows].tolist()):
            if v is None:
                continue
            act = action_rows[j]
            try:
                piece, bad = done[v.__class__, v, act]
            except (KeyError, TypeError):
                piece, bad = _action(k, v) if act else _piece(k, v, as_tag, key_ok)
                try:
                    done[v.__class__, v, act] = piece, bad
                except TypeError:
                    pass  # an unhashable value: converted each time
            if bad:
                n_lost += 1
                first = min(first, j)
            if piece is not None:
                (acts if act else tags if as_tag else custom)[j].append(piece)
    if n_lost:
        lost.add("attributes", n_lost, (int(a.image[rows[first]]), 0, int(rows[first]), 0))
    parts = _parts(ds, rows, lost, integer, origin)
    x1, y1, x2, y2 = a.box[rows].T
    vals = np.column_stack([x1 + origin, y1 + origin, x2, y2])
    if integer:
        rounded = np.round(vals)
        moved = np.flatnonzero((rounded != vals).any(axis=1))
        if moved.size:
            j = int(moved[0])
            lost.add("box_precision", int(moved.size), (int(a.image[rows[j]]), 0, int(rows[j]), 1))
        vals, shift = rounded, 0
    else:  # x1, y1 as they are: corner_text adds origin exactly
        vals, shift = a.box[rows], origin
    out = []
    for h, t, c, box, p, ac in zip(head, tags, custom, vals.tolist(), parts, acts, strict=True):
        block = f"\n\t\t<attributes>{''.join(c)}\n\t\t</attributes>" if c else ""
        texts = (corner_text(box[0], shift), corner_text(box[1], shift), num(box[2]), num(box[3]))
        coords = "".join(f"\n\t\t\t<{tag}>{v}</{tag}>" for tag, v in zip(_COORDS, texts, strict=True))
        after = p + (f"\n\t\t<actions>{''.join(ac)}\n\t\t</actions>" if ac else "")
        out.append(f"\n\t<object>{h}{''.join(t)}{block}\n\t\t<bndbox>{coords}\n\t\t</bndbox>{after}\n\t</object>")
    return out


def _action(k: str, v: Any) -> tuple[str | None, bool]:
    """``<k>1</k>`` inside ``<actions>`` (bools as 1/0, as VOC writes them)."""
    text = value_text(v)
    if text is None:
        return None, True
    return leaf(k, text, 3), not exact_text(text)


def _parts(ds: Dataset, rows: np.ndarray, lost: Tally, integer: bool, origin: int) -> list[str]:
    """The ``<part>`` elements of each row (``extra["voc_parts"]``: ``{"name", "box"}`` in maslow's pixels), as
    text; parts that are not such are counted lost (``voc_parts``), and parts that rounding moves too."""
    col = ds.annotations.extra.get("voc_parts")
    out = [""] * len(rows)
    if col is None:
        return out
    n_bad = n_moved = 0
    where: dict[str, tuple[int, ...]] = {}
    for j, value in enumerate(col[rows].tolist()):
        if value is None:
            continue
        pieces = []
        for part in value if isinstance(value, list | tuple) else [value]:
            box = _part_box(part)
            if box is None:
                n_bad += 1
                where.setdefault("voc_parts", (int(ds.annotations.image[rows[j]]), 0, int(rows[j]), 2))
                continue
            coords = [box[0] + origin, box[1] + origin, box[2], box[3]]
            texts = [corner_text(box[0], origin), corner_text(box[1], origin), num(box[2]), num(box[3])]
            if integer and any(round(v) != v for v in coords):
                n_moved += 1
                where.setdefault("box_precision", (int(ds.annotations.image[rows[j]]), 0, int(rows[j]), 1))
                texts = [num(float(round(v))) for v in coords]
            inner = "".join(f"\n\t\t\t\t<{tag}>{v}</{tag}>" for tag, v in zip(_COORDS, texts, strict=True))
            pieces.append(f"\n\t\t<part>{leaf('name', part['name'], 3)}\n\t\t\t<bndbox>{inner}\n\t\t\t</bndbox>"
                          "\n\t\t</part>")
        out[j] = "".join(pieces)
    lost.add("voc_parts", n_bad, where.get("voc_parts", ()))
    lost.add("box_precision", n_moved, where.get("box_precision", ()))
    return out


def _part_box(part: Any) -> list[float] | None:
    """The box of a part ``{"name": text, "box": [x1, y1, x2, y2]}``, or None when it is not one VOC can hold."""
    if not isinstance(part, dict) or not isinstance(part.get("name"), str) or not exact_text(part["name"]) \
            or not part["name"]:
        return None
    box = part.get("box")
    if not isinstance(box, list | tuple | np.ndarray):
        return None
    try:
        vals = [float(v) for v in box]
    except (TypeError, ValueError):
        return None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals) or vals[2] < vals[0] or vals[3] < vals[1]:
        return None
    return vals


def _piece(k: str, v: Any, as_tag: bool, key_ok: bool) -> tuple[str | None, bool]:
    """The XML of attribute ``k`` = ``v`` (None: not written), and whether VOC can't hold the value as it is."""
    text = ("true" if v else "false") if isinstance(v, bool | np.bool_) and not as_tag else value_text(v)
    if text is None or not key_ok:
        return None, True
    if not exact_text(text):  # surrounding spaces (stripped on reading), control characters
        return (None if NOT_XML.search(text) else _element(k, text, as_tag)), True
    return _element(k, text, as_tag), False


def _element(k: str, text: str, as_tag: bool) -> str:
    if as_tag:
        return leaf(k, text, 2)
    return f"\n\t\t\t<attribute>{leaf('name', k, 4)}{leaf('value', text, 4)}\n\t\t\t</attribute>"


#: images.extra columns the writer puts in each file
FILE_EXTRA = ("voc_path", "voc_source", "voc_owner", "voc_segmented")
_LIST_NAME = re.compile(r"[^,:\s](?:[^,:]*[^,:\s])?")  # a name labelmap.txt can list (parts, actions)


def rgb_text(color: str) -> str | None:
    """labelmap.txt's ``r,g,b`` of ``#rrggbb`` ('' for no colour, None for one that is not ``#rrggbb``)."""
    if not color:
        return ""
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", color):
        return None
    return ",".join(str(int(color[k:k + 2], 16)) for k in (1, 3, 5))


def kept_names(ds: Dataset, rep: ExportReport) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per class, its actions (``info["voc"]["actions"]``: attributes written in ``<actions>``) and its parts
    (``info["voc"]["parts"]`` and the names the class's ``extra["voc_parts"]`` use): labelmap.txt's last fields."""
    kept = ds.info.get("voc")
    if kept is not None and not isinstance(kept, dict):
        rep.notes.append(f"info['voc'] must be an object (parts, actions), got {type(kept).__name__}: not used")
        kept = None
    out: list[dict[str, list[str]]] = []
    for key in ("actions", "parts"):
        raw = (kept or {}).get(key)
        per = {c: [n for n in v if isinstance(n, str)] for c, v in raw.items() if isinstance(v, list)} \
            if isinstance(raw, dict) else {}
        out.append(per)
    actions, parts = out
    col = ds.annotations.extra.get("voc_parts")
    if col is not None:
        for label, value in zip(ds.annotations.label.tolist(), col.tolist(), strict=True):
            for part in value if isinstance(value, list | tuple) else ():
                if isinstance(part, dict) and isinstance(part.get("name"), str):
                    names = parts.setdefault(ds.schema.names[label], [])
                    if part["name"] not in names:
                        names.append(part["name"])
    for per in (actions, parts):
        for c, names in per.items():
            bad = [n for n in names if not _LIST_NAME.fullmatch(n)]
            if bad:
                rep.notes.append(f"labelmap.txt can't list {bad[:3]} among the parts or actions of {c!r} (a comma or "
                                 "colon, or surrounding spaces): left out there")
                per[c] = [n for n in names if n not in bad]
    return actions, parts


def trainval_kept(ds: Dataset) -> bool:
    """Whether the VOC root read had a trainval.txt of the images of train.txt and val.txt (``info["voc"]``)."""
    kept = ds.info.get("voc")
    return isinstance(kept, dict) and kept.get("trainval") is True


def file_blocks(ds: Dataset, lost: Tally) -> list[str]:
    """Each image's ``<path>``, ``<source>`` and ``<owner>`` (``images.extra["voc_path"]``, ``["voc_source"]``,
    ``["voc_owner"]``) as text."""
    out = [""] * ds.n_images
    col = ds.images.extra.get("voc_path")
    for i, value in enumerate([] if col is None else col.tolist()):
        if isinstance(value, str) and exact_text(value):
            out[i] += leaf("path", value, 1)
        elif value is not None:
            lost.add("images.extra.voc_path", 1, (i, 2))
    for tag in ("source", "owner"):
        col = ds.images.extra.get(f"voc_{tag}")
        if col is None:
            continue
        for i, value in enumerate(col.tolist()):
            text, bad = block_text(tag, value)
            out[i] += text
            if bad:
                lost.add(f"images.extra.voc_{tag}", 1, (i, 2))
    return out



def segmented_texts(ds: Dataset, lost: Tally) -> list[str]:
    """Each image's ``<segmented>`` (``images.extra["voc_segmented"]``: 0 or 1; 0 where there is none)."""
    col = ds.images.extra.get("voc_segmented")
    if col is None:
        return ["0"] * ds.n_images
    out = []
    for i, v in enumerate(col.tolist()):
        text = "0" if v is None else value_text(v)
        if text not in ("0", "1"):
            lost.add("images.extra.voc_segmented", 1, (i, 2))
            text = "0"
        out.append(text)
    return out
