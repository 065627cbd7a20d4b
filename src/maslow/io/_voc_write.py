"""The text of VOC annotation files, built as strings: the bytes ``xml.etree.ElementTree`` writes for the same
tree after ``ET.indent(root, space="\\t")`` (tab indents, ``<tag />`` for empty text, ``&``, ``<`` and ``>``
escaped, characters UTF-8 can't hold as character references), without an element object per tag.

Private to ``maslow.io.voc``; see its module docstring for the conventions.
"""

from __future__ import annotations

import math
import re
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from maslow.core.dataset import Dataset
from maslow.io._export import Tally

#: Object flags VOC defines as 0/1.
BOOL_TAGS = ("difficult", "truncated", "occluded")
_COORDS = ("xmin", "ymin", "xmax", "ymax")
#: Characters XML text can't hold as they are (control characters are malformed, a carriage return reads as \n).
NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")


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


def value_text(v: Any) -> str | None:
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, str):
        return v
    if isinstance(v, int | float | np.integer | np.floating) and math.isfinite(float(v)):
        return num(float(v))
    return None


def file_text(name: str, folder: str, width: int, height: int, depth: str, objects: list[str]) -> bytes:
    """One annotation file: ``objects`` as ``object_text`` makes them."""
    head = (f"<annotation>{leaf('folder', folder, 1)}{leaf('filename', name, 1)}\n\t<size>"
            f"{leaf('width', str(width), 2)}{leaf('height', str(height), 2)}{leaf('depth', depth, 2)}\n\t</size>"
            f"{leaf('segmented', '0', 1)}")
    return (head + "".join(objects) + "\n</annotation>").encode("utf-8", "xmlcharrefreplace")


def object_texts(ds: Dataset, rows: np.ndarray, lost: Tally, integer: bool, origin: int) -> list[str]:
    """The ``<object>`` of each annotation in ``rows`` (which have boxes); counts in ``lost`` (at ``(image, 0,
    row, rank)``) the attribute values VOC can't hold and the boxes that ``integer`` rounding moves."""
    a = ds.annotations
    assert a.box is not None
    names = [leaf("name", c.name, 2) for c in ds.schema.classes]
    head = [names[k] for k in a.label[rows].tolist()]
    tags: list[list[str]] = [[] for _ in range(len(rows))]  # VOC's own tags, then the <attributes> block
    custom: list[list[str]] = [[] for _ in range(len(rows))]
    n_lost, first = 0, len(rows)
    for k, col in a.attributes.items():
        as_tag = k in BOOL_TAGS or k == "pose"
        key_ok = as_tag or exact_text(k)
        done: dict[tuple[type, Any], tuple[str | None, int]] = {}
        for j, v in enumerate(col[rows].tolist()):
            if v is None:
                continue
            try:
                piece, bad = done[v.__class__, v]
            except (KeyError, TypeError):
                piece, bad = _piece(k, v, as_tag, key_ok)
                try:
                    done[v.__class__, v] = piece, bad
                except TypeError:
                    pass  # an unhashable value: converted each time
            if bad:
                n_lost += 1
                first = min(first, j)
            if piece is not None:
                (tags if as_tag else custom)[j].append(piece)
    if n_lost:
        lost.add("attributes", n_lost, (int(a.image[rows[first]]), 0, int(rows[first]), 0))
    x1, y1, x2, y2 = a.box[rows].T
    vals = np.column_stack([x1 + origin, y1 + origin, x2, y2])
    if integer:
        rounded = np.round(vals)
        moved = np.flatnonzero((rounded != vals).any(axis=1))
        if moved.size:
            j = int(moved[0])
            lost.add("box_precision", int(moved.size), (int(a.image[rows[j]]), 0, int(rows[j]), 1))
        vals = rounded
    out = []
    for h, t, c, box in zip(head, tags, custom, vals.tolist(), strict=True):
        block = f"\n\t\t<attributes>{''.join(c)}\n\t\t</attributes>" if c else ""
        coords = "".join(f"\n\t\t\t<{tag}>{num(v)}</{tag}>" for tag, v in zip(_COORDS, box, strict=True))
        out.append(f"\n\t<object>{h}{''.join(t)}{block}\n\t\t<bndbox>{coords}\n\t\t</bndbox>\n\t</object>")
    return out


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
