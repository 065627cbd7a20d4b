"""CVAT XML: the document read as a stream of the root's children (see ``maslow.io.cvat`` for the format).

``top_elements`` parses with defusedxml's ``iterparse`` (entities and external references refused, as when the
file was parsed whole) and hands out each child of ``<annotations>`` (``<meta>``, one ``<image>``, one
``<track>``) once it is complete, with the line it starts on; the child is cleared when the caller asks for the
next one, so the tree never holds more than one image or track. Errors keep the precedence of a whole-document
parse: malformed or refused XML anywhere in the file, then a root that is not ``<annotations>``, then whatever the
caller raised for a record (the rest of the file is parsed to find out). Malformed XML names the child of the root
it is in (or the last one before it): ``image id=3 name='a.jpg' (from line 40)``.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from xml.etree import ElementTree as ET

from defusedxml import ElementTree as SafeET

from maslow.errors import FormatError
from maslow.io._common import kind_hint


def record_of(tag: str, attrs: dict[str, str], line: int) -> str:
    """How an error names a child of the root: as the readers name an image or a track, with its first line."""
    if tag == "image":
        return f"image id={attrs.get('id')} name={attrs.get('name')!r} (from line {line})"
    if tag == "track":
        return f"track id={attrs.get('id')} label={attrs.get('label')!r} (from line {line})"
    return f"<{tag}> (from line {line})"


class _Target:
    """A TreeBuilder that notes, as expat reads them, where the root's children start (``starts``: one
    ``(line, tag, attrs)`` per child, in order) and which is open."""

    def __init__(self) -> None:
        self.builder = ET.TreeBuilder()
        self.expat: Any = None
        self.depth = 0
        self.starts: deque[tuple[int, str, dict[str, str]]] = deque()
        self.open: tuple[int, str, dict[str, str]] | None = None  # the child of the root being read
        self.last: tuple[int, str, dict[str, str]] | None = None  # the last child of the root started

    def start(self, tag: str, attrs: dict[str, str]) -> Any:
        self.depth += 1
        if self.depth == 2:
            self.open = self.last = (self.expat.CurrentLineNumber, tag, dict(attrs))
            self.starts.append(self.open)
        return self.builder.start(tag, attrs)

    def end(self, tag: str) -> Any:
        if self.depth == 2:
            self.open = None
        self.depth -= 1
        return self.builder.end(tag)

    def data(self, text: str) -> None:
        self.builder.data(text)

    def close(self) -> Any:
        return self.builder.close()

    def where(self) -> str | None:
        if self.open is not None:
            return record_of(self.open[1], self.open[2], self.open[0])
        if self.last is not None:
            return "after " + record_of(self.last[1], self.last[2], self.last[0])
        return None


def _xml_error(e: Exception, src: Path, where: str | None) -> FormatError:
    if isinstance(e, ET.ParseError):
        line, col = e.position
        return FormatError(f"malformed XML at line {line} column {col}: {e}{kind_hint(src, expected='xml')}",
                           path=src, record=where)
    return FormatError(f"refused XML: {type(e).__name__}: {e}", path=src, record=where)  # defusedxml: entities, ...


class _Counted:
    """A binary file that tells ``on_read`` how many bytes were read so far."""

    def __init__(self, f: BinaryIO, on_read: Callable[[int], None]) -> None:
        self.f, self.on_read, self.done = f, on_read, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.done += len(data)
        self.on_read(self.done)
        return data


def _children(src: Path, on_read: Callable[[int], None] | None) -> Generator[tuple[Any, int], None, None]:
    try:
        f = open(src, "rb")
    except FileNotFoundError:
        raise FormatError("file not found", path=src) from None
    except IsADirectoryError:
        raise FormatError("must be an XML file, got a directory", path=src) from None
    with f:
        target = _Target()
        parser = SafeET.DefusedXMLParser(target=target)
        target.expat = parser.parser
        events = SafeET.iterparse(f if on_read is None else _Counted(f, on_read), events=("start", "end"),
                                  parser=parser)
        depth, root, wrong_root = 0, None, None
        while True:
            try:
                ev, el = next(events)
            except StopIteration:
                break
            except (ET.ParseError, ValueError) as e:  # defusedxml refuses with ValueErrors
                raise _xml_error(e, src, target.where()) from None
            if ev == "start":
                depth += 1
                if depth == 1:
                    root = el
                    wrong_root = el.tag if el.tag != "annotations" else None
                continue
            depth -= 1
            if depth == 1 and root is not None:
                line = target.starts.popleft()[0]
                if wrong_root is None:
                    yield el, line
                root.clear()  # done with this child: the tree holds one child of the root at a time
    if wrong_root is not None:
        raise FormatError(f"root element must be <annotations>, got <{wrong_root}>", path=src, record="root")


@contextlib.contextmanager
def top_elements(src: Path, *, on_read: Callable[[int], None] | None = None
                 ) -> Iterator[Iterator[tuple[Any, int]]]:
    """The children of the root ``<annotations>``, each complete, in document order, with the line each starts
    on; ``on_read(n)`` is told the bytes read so far as the file is read.

    Raises:
        FormatError: the file is missing, malformed or refused XML, or its root is not ``<annotations>``; these
            take precedence over an error the caller raises while reading a child.
    """
    children = _children(src, on_read)
    try:
        yield children
    except Exception:
        for _ in children:  # malformed XML further on is the error to report, as from a whole-document parse
            pass
        raise
    finally:
        children.close()
