"""Reading VOC annotation files: the XML parsed by the C parser where defusedxml has nothing to refuse, and the
objects read gathered as columns.

Private to ``maslow.io.voc``; see its module docstring for the conventions.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET  # the C parser, for files defusedxml has nothing to refuse in
from array import array
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import defusedxml.ElementTree as DET
import numpy as np
from defusedxml import DefusedXmlException

from maslow.core.polygons import offsets
from maslow.errors import FormatError
from maslow.io._common import kind_hint, read_bytes


class _Doctype(Exception):
    """The file has a document type declaration: it goes through defusedxml."""


class _NoDoctype(ET.TreeBuilder):
    def doctype(self, name: str, pubid: str, system: str) -> None:
        raise _Doctype


#: A UTF-8 file whose root element follows at most an XML declaration: it can't hold a DOCTYPE.
_PLAIN = re.compile(rb"(?:\xef\xbb\xbf)?(?:<\?xml\s+version\s*=\s*([\"'])[0-9.]+\1(?:\s+encoding\s*=\s*([\"'])"
                    rb"(?i:utf-?8|(?:us-)?ascii)\2)?(?:\s+standalone\s*=\s*([\"'])(?:yes|no)\3)?\s*\?>)?\s*"
                    rb"<annotation[\s/>]")


def load_xml(path: str) -> Any:
    """The root element of an annotation file. Entities are only declared in a DOCTYPE, so a file without one
    is parsed by the C parser (expat; fed in 64 KiB pieces, so a DOCTYPE stops it early); a file with one, or
    one that doesn't parse, is parsed by defusedxml, which refuses entities and reports the errors."""
    data = read_bytes(path)
    parser = ET.XMLParser() if _PLAIN.match(data) else ET.XMLParser(target=_NoDoctype())
    try:
        for k in range(0, len(data), 1 << 16):
            parser.feed(data[k:k + (1 << 16)])
        root = parser.close()
    except (_Doctype, ET.ParseError):
        root = _load_defused(path)
    if root.tag != "annotation":
        raise FormatError(f"root element must be <annotation>, got <{root.tag}>", path=path)
    return root


def _load_defused(path: str) -> Any:
    try:
        return DET.parse(path).getroot()
    except DET.ParseError as e:
        line, column = getattr(e, "position", (0, 0))
        raise FormatError(f"malformed XML at line {line} column {column}: {e}{kind_hint(path, expected='xml')}",
                          path=path) from None
    except DefusedXmlException as e:
        raise FormatError(f"refused unsafe XML ({type(e).__name__}): {e}", path=path) from None


_NAN4 = (math.nan,) * 4


class Objects:
    """The objects read, as columns (no Python object per annotation), and those of classes outside ``known``
    (reported when the dataset is built)."""

    def __init__(self, known: set[str] | None) -> None:
        self.known = known
        # arrays, not lists: no Python object per value (memory, and work for the garbage collector)
        self.image = array("q")
        self.cls = array("q")  # index into classes
        self.classes: dict[str, int] = {}  # class name -> index, in order of first use
        self.box = array("d")  # xmin, ymin, xmax, ymax as written (nan without a box), one object after another
        #: the attributes: each object's names (as the number of its sequence of names) and values (object arrays
        #: of up to 65536 values, and the values of the last ones)
        self.signatures: dict[tuple[str, ...], int] = {}  # sequence of names -> number, in order of first use
        self.keys = array("q")
        self.values: list[np.ndarray] = []
        self._values: list[Any] = []
        self.unknown: list[tuple[int, str, str, int]] = []  # image row, class, xml file, object index
        self.parts: dict[int, list[dict[str, Any]]] = {}  # object row -> its <part> elements (few objects have them)
        #: class -> the names of its actions and of its parts, in order of first use (labelmap.txt's last fields)
        self.actions_of: dict[str, dict[str, None]] = {}
        self.parts_of: dict[str, dict[str, None]] = {}

    def add(self, i: int, cls: str, box: list[float] | None, at: dict[str, Any], xml: str, k: int,
            parts: list[dict[str, Any]] | None = None, actions: list[str] | None = None) -> None:
        """Object ``k`` of file ``xml`` (image row ``i``) with attributes ``at`` (``actions``: the names of those
        that are actions) and ``parts``."""
        if self.known is not None and cls not in self.known:
            self.unknown.append((i, cls, xml, k))
            return
        if actions:
            self.actions_of.setdefault(cls, {}).update(dict.fromkeys(actions))
        if parts:
            self.parts[len(self.image)] = parts
            self.parts_of.setdefault(cls, {}).update(dict.fromkeys(p["name"] for p in parts))
        self.image.append(i)
        self.cls.append(self.classes.setdefault(cls, len(self.classes)))
        self.box.extend(_NAN4 if box is None else box)
        self.keys.append(self.signatures.setdefault(tuple(at), len(self.signatures)))
        self._values.extend(at.values())
        if len(self._values) >= 1 << 16:
            self._flush()

    def _flush(self) -> None:
        chunk = np.empty(len(self._values), object)
        chunk[:] = self._values  # str, bool or None: each stays as it is
        self.values.append(chunk)
        self._values = []

    def columns(self) -> dict[str, np.ndarray]:
        """Attribute name -> (n,) object array of each object's value (None where it has none), names in order
        of first use."""
        self._flush()
        n = len(self.keys)
        values = np.concatenate(self.values) if self.values else np.empty(0, object)
        code = np.array(self.keys, np.int64)
        length = np.array([len(keys) for keys in self.signatures], np.int64)
        start = offsets(length[code])[:-1]  # where each object's values begin
        order = np.argsort(code, kind="stable")
        bounds = np.searchsorted(code[order], np.arange(len(self.signatures) + 1))
        out: dict[str, np.ndarray] = {}
        # the sequences of names in order of first use, so each name's column is made where it is first used
        for k, keys in enumerate(self.signatures):
            rows = order[bounds[k]:bounds[k + 1]]
            for j, key in enumerate(keys):
                if key not in out:
                    out[key] = np.full(n, None, object)
                out[key][rows] = values[start[rows] + j]
        return out


_COORDS = ("xmin", "ymin", "xmax", "ymax")
#: text VOC's 0/1 flags (and an action's presence) are read from
FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def corner(value: float, text: str, origin: int) -> float:
    """``value - origin`` (``value``: ``float(text)``, an xmin or ymin), computed on the decimal ``text`` where
    the float subtraction could be off by an ulp: the writer writes ``x1 + 1`` as the decimal sum of ``repr(x1)``
    and 1, so ``x1`` comes back to the bit (``float(text) - 1`` would round twice)."""
    if origin == 0 or (value.is_integer() and _whole(text)):
        return value - origin
    try:
        return float(EXACT.subtract(Decimal(text), origin))
    except InvalidOperation:  # a text float() takes and Decimal doesn't
        return value - origin


def _whole(text: str) -> bool:
    """Whether the number ``text`` is a whole number as written (``48``, ``48.0``; not ``1.00000000000000001``,
    which float() rounds to 1)."""
    frac = text.partition(".")[2]
    return not frac.strip().strip("0") and "e" not in text and "E" not in text


#: enough digits for any sum of a float's shortest text and 1 (5e-324 has 324 decimals); the writer's too
EXACT = Context(prec=400)


def well_formed_box(el: Any, origin: int) -> list[float] | None:
    """``[x1, y1, x2, y2]`` in maslow's pixels (``x1 = xmin - origin``, ``x2 = xmax``) of the ``<bndbox>`` of
    ``el``, when it is four finite numbers that are not inverted; else None (nothing reported)."""
    bb = el.find("bndbox")
    try:
        texts = [bb.findtext(tag) for tag in _COORDS]
        x1, y1, x2, y2 = [float(t) for t in texts]
    except (AttributeError, TypeError, ValueError):
        return None
    if x2 >= x1 - origin and y2 >= y1 - origin and math.isfinite(x1 + y1 + x2 + y2):
        return [corner(x1, texts[0], origin), corner(y1, texts[1], origin), x2, y2]
    return None


def object_fields(obj: Any, origin: int, nested: set[str], bool_tags: tuple[str, ...], bad_parts: list[int]
                  ) -> tuple[dict[str, Any], list[str], list[dict[str, Any]] | None]:
    """An ``<object>``'s attributes (its simple child tags, ``<attributes>`` entries and ``<actions>`` flags), the
    names of its actions, and its ``<part>`` elements as ``{"name", "box"}`` (box in maslow's xyxy pixels), or
    None without parts. Tags with child elements that are none of these are added to ``nested``; the number of
    each part without a name or a well-formed box (not kept) to ``bad_parts``."""
    out: dict[str, Any] = {}
    actions: list[str] = []
    parts: list[dict[str, Any]] = []
    n_parts = 0
    for child in obj:
        tag = child.tag
        if tag == "name" or tag == "bndbox":
            continue
        if tag == "attributes":
            for a in child.findall("attribute"):
                key, value = a.findtext("name"), a.find("value")
                key = None if key is None else key.strip()
                if key:
                    out[key] = None if value is None else (value.text or "").strip()
            continue
        if tag == "part":
            name, box = (child.findtext("name") or "").strip(), well_formed_box(child, origin)
            if name and box is not None:
                parts.append({"name": name, "box": box})
            else:
                bad_parts.append(n_parts)
            n_parts += 1
            continue
        if tag == "actions":
            for act in child:
                if len(act):
                    nested.add(f"actions/{act.tag}")
                    continue
                text = (act.text or "").strip()
                flag = FLAGS.get(text.lower())
                out[act.tag] = text if flag is None else flag
                actions.append(act.tag)
            continue
        if len(child):
            nested.add(tag)
            continue
        text = (child.text or "").strip()
        if tag in bool_tags:
            flag = FLAGS.get(text.lower())
            out[tag] = text if flag is None else flag
        else:
            out[tag] = text
    return out, actions, parts or None


def list_ids(lines: list[str], stems: set[str]) -> list[str]:
    """The image ids an ImageSets list names, one per non-blank line: its first word, or the whole line where
    that names an xml file (ids with spaces)."""
    out = []
    for line in lines:
        toks = line.split()
        if toks:
            out.append(line if line in stems else line.strip() if line.strip() in stems else toks[0])
    return out


def file_fields(root: Any) -> dict[str, Any]:
    """An ``<annotation>``'s ``<path>`` (its text), ``<source>`` and ``<owner>`` (each as ``{child tag: text}``, in
    file order) and ``<segmented>`` (its text), where present."""
    out: dict[str, Any] = {}
    path = root.findtext("path")
    if path is not None:
        out["path"] = path.strip()
    for tag in ("source", "owner"):
        el = root.find(tag)
        if el is not None:
            out[tag] = {c.tag: (c.text or "").strip() for c in el if not len(c)}
    seg = root.findtext("segmented")
    if seg is not None:
        out["segmented"] = seg.strip()
    return out
