"""CVAT XML: the document read as a stream of the root's children (see ``maslow.io.cvat`` for the format).

``top_elements`` parses with defusedxml's ``iterparse`` (entities and external references refused, as when the
file was parsed whole) and hands out each child of ``<annotations>`` (``<meta>``, one ``<image>``, one
``<track>``) once it is complete; the child is cleared when the caller asks for the next one, so the tree never
holds more than one image or track. Errors keep the precedence of a whole-document parse: malformed or refused
XML anywhere in the file, then a root that is not ``<annotations>``, then whatever the caller raised for a
record (the rest of the file is parsed to find out).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from defusedxml import ElementTree as SafeET

from maslow.errors import FormatError
from maslow.io._common import kind_hint


def _xml_error(e: Exception, src: Path) -> FormatError:
    if isinstance(e, ET.ParseError):
        line, col = e.position
        return FormatError(f"malformed XML at line {line} column {col}: {e}{kind_hint(src, expected='xml')}",
                           path=src)
    return FormatError(f"refused XML: {type(e).__name__}: {e}", path=src)  # defusedxml: entities, DTDs, ...


def _children(src: Path) -> Generator[Any, None, None]:
    try:
        events = SafeET.iterparse(str(src), events=("start", "end"))
    except FileNotFoundError:
        raise FormatError("file not found", path=src) from None
    except IsADirectoryError:
        raise FormatError("must be an XML file, got a directory", path=src) from None
    depth, root, wrong_root = 0, None, None
    while True:
        try:
            ev, el = next(events)
        except StopIteration:
            break
        except (ET.ParseError, ValueError) as e:  # defusedxml refuses with ValueErrors
            raise _xml_error(e, src) from None
        if ev == "start":
            depth += 1
            if depth == 1:
                root = el
                wrong_root = el.tag if el.tag != "annotations" else None
            continue
        depth -= 1
        if depth == 1 and root is not None:
            if wrong_root is None:
                yield el
            root.clear()  # done with this child: the tree holds one child of the root at a time
    if wrong_root is not None:
        raise FormatError(f"root element must be <annotations>, got <{wrong_root}>", path=src, record="root")


@contextlib.contextmanager
def top_elements(src: Path) -> Iterator[Iterator[Any]]:
    """The children of the root ``<annotations>``, each complete, in document order.

    Raises:
        FormatError: the file is missing, malformed or refused XML, or its root is not ``<annotations>``; these
            take precedence over an error the caller raises while reading a child.
    """
    children = _children(src)
    try:
        yield children
    except Exception:
        for _ in children:  # malformed XML further on is the error to report, as from a whole-document parse
            pass
        raise
    finally:
        children.close()
