"""Streaming parse of a JSON file whose top level is an array (a Label Studio task list), a batch of elements at
a time, so that the whole document never exists as Python objects (100,000 tasks: 1.4 GB of JSON, about 3 GB as
dicts and lists).

The file is read in blocks. A structural scan of the bytes from an element's start finds the commas between
top-level elements: a quote opens or closes a string unless an odd run of backslashes precedes it, and brackets
outside strings give the nesting depth; a comma at depth 0 ends an element, a ``]`` at depth -1 ends the array.
Cuts fall only on ASCII bytes outside strings, never inside a UTF-8 sequence. The elements up to the last such
comma within about ``chunk_bytes`` are parsed as one JSON array by ``_common.json_loads``, as ``load_json``
parses a whole file (orjson, else the json module, which also takes NaN literals and integers beyond 64 bits;
unpaired surrogate escapes refused). Malformed JSON gets the parser's message, with the line and column in the
file and the element (task) it is in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np

from maslow.errors import FormatError
from maslow.io._common import json_loads, load_json

_WS = re.compile(rb"[ \t\n\r]*")
_BOM = b"\xef\xbb\xbf"


def iter_batches(path: Path, *, chunk_bytes: int = 1 << 18, on_read: Callable[[int], None] | None = None
                 ) -> Iterator[tuple[int, list[Any]]]:
    """``(index of the first element, elements)`` for batches of about ``chunk_bytes`` of a top-level JSON array;
    ``on_read(n)`` is told the bytes read so far as the file is read.

    Raises:
        FormatError: the file is missing or unreadable, is not a JSON array (``must be a JSON list of tasks``) or
            is malformed (names the line, the column and the task).
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FormatError("file not found", path=path) from None
    except IsADirectoryError:
        raise FormatError("must be a file, got a directory", path=path) from None
    except OSError as e:
        raise FormatError(f"unreadable file: {e.strerror or e}", path=path) from None
    with f:
        try:
            yield from _Stream(path, f, max(1, chunk_bytes), on_read).batches()
        except OSError as e:
            raise FormatError(f"unreadable file: {e.strerror or e}", path=path) from None


def _boundaries(a: np.ndarray) -> tuple[np.ndarray, int]:
    """For bytes ``a`` that start at an element of an array (outside any string, depth 0): the offsets of the
    commas that end elements, and the offset of the array's closing ``]`` (-1 when not in ``a``)."""
    q = np.flatnonzero(a == 0x22)
    b = np.flatnonzero(a == 0x5C)
    if b.size and q.size:
        after = q[q > 0]
        after = after[a[after - 1] == 0x5C]  # quotes right after a backslash: escaped when the run is odd
        if after.size:
            run_start = np.zeros(b.size, np.int64)
            breaks = np.flatnonzero(np.diff(b) != 1) + 1
            run_start[breaks] = breaks
            np.maximum.accumulate(run_start, out=run_start)
            j = np.searchsorted(b, after - 1)
            q = np.setdiff1d(q, after[(j - run_start[j]) % 2 == 0], assume_unique=True)
    o = a | 0x20  # '[' -> '{', ']' -> '}'
    s = np.flatnonzero((o == 0x7B) | (o == 0x7D) | (a == 0x2C))
    s = s[(np.searchsorted(q, s, side="right") & 1) == 0]  # outside strings: an even number of quotes before
    kind = o[s]
    depth = np.cumsum((kind == 0x7B).astype(np.int64) - (kind == 0x7D), dtype=np.int64)
    closed = np.flatnonzero(depth < 0)
    end = int(s[closed[0]]) if closed.size else -1
    commas = s[(depth == 0) & (a[s] == 0x2C)]
    return (commas[commas < end] if end >= 0 else commas), end


class _Stream:
    def __init__(self, path: Path, f: BinaryIO, chunk_bytes: int, on_read: Callable[[int], None] | None) -> None:
        self.path, self.f, self.chunk, self.on_read = path, f, chunk_bytes, on_read
        self.buf, self.i, self.base, self.eof = b"", 0, 0, False  # buf[0] is byte `base` of the file
        self.read = 0  # bytes read from the file

    def fill(self, need: int) -> None:
        """Read until ``buf`` holds ``need`` bytes from ``i`` on, or the file ends."""
        if len(self.buf) - self.i >= need or self.eof:
            return
        parts, size = [self.buf[self.i:]], len(self.buf) - self.i
        self.base += self.i
        self.i = 0
        while size < need:
            block = self.f.read(max(need - size, 1 << 16))
            if not block:
                self.eof = True
                break
            parts.append(block)
            size += len(block)
            self.read += len(block)
            if self.on_read is not None:
                self.on_read(self.read)
        self.buf = b"".join(parts)

    def skip_ws(self) -> None:
        while True:
            self.i = _WS.match(self.buf, self.i).end()  # type: ignore[union-attr]
            if self.i < len(self.buf) or self.eof:
                return
            self.fill(self.chunk)

    def batches(self) -> Iterator[tuple[int, list[Any]]]:
        self.fill(self.chunk)
        if self.buf.startswith(_BOM):  # the json module reads UTF-8 with a byte order mark, so did load_json
            self.i = len(_BOM)
        self.skip_ws()
        if self.buf[self.i:self.i + 1] != b"[":
            top = load_json(self.path)  # not an array: malformed, or a wrong type, said as before
            raise FormatError(f"must be a JSON list of tasks, got {type(top).__name__}", path=self.path,
                              record="root")
        self.i += 1
        self.skip_ws()
        index = 0
        if self.buf[self.i:self.i + 1] == b"]":
            self.i += 1
            self.check_end(index)
            return
        while True:
            want = self.chunk
            while True:
                self.fill(want)
                window = min(len(self.buf) - self.i, want)
                commas, end = _boundaries(np.frombuffer(self.buf, np.uint8, window, self.i))
                if end >= 0 or commas.size or (self.eof and window == len(self.buf) - self.i):
                    break
                want *= 2  # an element longer than the window
            cut = end if end >= 0 else int(commas[-1]) if commas.size else -1
            if cut <= 0 or (end >= 0 and self.buf[self.i + end] != 0x5D):  # the file ends inside an element,
                self.fail(index, commas)  # a ']' follows a ',', or a '}' closes the array
            with memoryview(self.buf) as view:
                items = self.parse(view[self.i:self.i + cut], index, commas)
            yield index, items
            index += len(items)
            del items
            self.i += cut + 1
            if end >= 0:
                self.check_end(index)
                return
            self.skip_ws()

    def parse(self, body: memoryview, index: int, commas: np.ndarray) -> list[Any]:
        try:
            return json_loads(b"".join((b"[", body, b"]")))  # type: ignore[no-any-return]
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self.fail(index, commas)

    def fail(self, index: int, commas: np.ndarray) -> NoReturn:
        """Raise the json module's error for the elements from ``i`` on (``index`` the first), naming the element."""
        prefix = b"[" if index == 0 else b"[0,"  # the parser's state at i: after the array's '[' or after a ','
        rest = self.buf[self.i:]
        record = f"task {index}"
        try:
            json_loads(prefix + rest)
        except json.JSONDecodeError as e:
            off = len(e.doc[:e.pos].encode("utf-8")) - len(prefix)
            record = f"task {index + int(np.searchsorted(commas, off))}"
            line, col = _line_col(self.path, self.base + self.i + off)
            raise FormatError(f"malformed JSON at line {line} column {col}: {e.msg}", path=self.path,
                              record=record) from None
        except UnicodeDecodeError as e:
            raise FormatError(f"must be UTF-8 text: {e}", path=self.path, record=record) from None
        except RecursionError:
            raise FormatError("malformed JSON: nested too deeply to parse", path=self.path, record=record) from None
        raise FormatError("malformed JSON", path=self.path, record=record)

    def check_end(self, index: int) -> None:
        """Only whitespace may follow the array."""
        self.skip_ws()
        if self.i < len(self.buf):
            line, col = _line_col(self.path, self.base + self.i)
            raise FormatError(f"malformed JSON at line {line} column {col}: Extra data", path=self.path,
                              record=f"after task {index - 1}" if index else "root")


def _line_col(path: Path, offset: int) -> tuple[int, int]:
    """The line and column (1-based; the column in characters, as the json module counts) of byte ``offset``."""
    line, col = 1, 1
    with open(path, "rb") as f:
        if f.read(len(_BOM)) == _BOM:  # not a character for the json module
            col -= 1
        f.seek(0)
        left = offset
        while left > 0:
            block = f.read(min(left, 1 << 20))
            if not block:
                break
            left -= len(block)
            if b"\n" in block:
                line += block.count(b"\n")
                block, col = block[block.rindex(b"\n") + 1:], 1
            col += int(np.count_nonzero((np.frombuffer(block, np.uint8) & 0xC0) != 0x80))  # UTF-8 lead bytes
    return line, col
