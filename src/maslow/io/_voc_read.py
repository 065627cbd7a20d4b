"""Reading VOC annotation files: the XML parsed by the C parser where defusedxml has nothing to refuse, and the
objects read gathered as columns.

Private to ``maslow.io.voc``; see its module docstring for the conventions.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET  # the C parser, for files defusedxml has nothing to refuse in
from array import array
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

    def add(self, i: int, cls: str, box: list[float] | None, at: dict[str, Any], xml: str, k: int) -> None:
        """Object ``k`` of file ``xml`` (image row ``i``) with attributes ``at``."""
        if self.known is not None and cls not in self.known:
            self.unknown.append((i, cls, xml, k))
            return
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
