"""Streaming parse of large COCO JSON files: the ``annotations`` array is parsed in chunks of a few MB.

``json.load`` on a 1M-annotation file holds every annotation as Python dicts and lists at once (about 2 GB for
1M polygon annotations) and spends most of its time in the cyclic garbage collector. Here the file is read in
blocks; the ``annotations`` array is cut at element boundaries (``}`` followed by ``, {`` or ``]``), each piece
is parsed with the C JSON parser and handed to a callback that turns it into numpy columns, then freed. The
rest of the file (``images``, ``categories``, ...) is parsed once with the annotations replaced by a
sentinel. Cutting is sound: a piece parses as a JSON array only if it ends on an element boundary (parsing is
deterministic and a cut inside a string or a nested value leaves it unbalanced); a failed trial moves to the
next candidate. Anything unusual (no top-level ``annotations`` array, malformed JSON, odd nesting) makes
``stream_coco`` return None, and the caller falls back to ``json.load`` of the whole file, which also gives
the precise error message for malformed files.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from maslow.io._common import json_loads

_ANN_KEY = re.compile(rb'"annotations"\s*:\s*\[')
_BOUNDARY = re.compile(rb"\}\s*(?:,\s*(?=\{)|(?=\]))")
_END = re.compile(rb"\}(?=\s*\])")
_WS = re.compile(rb"\s*")
SENTINEL = _SENTINEL = "<maslow:annotations streamed>"
_BLOCK = 4 << 20
_MAX_FAILED_CUTS = 16

ChunkCallback = Callable[[list[Any], int], None]


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (JSON parsing builds millions of acyclic containers)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def find_annotations(data: Any) -> tuple[int, int] | None:
    """Where ``"annotations": [`` starts in ``data`` (bytes or mmap), and where its ``[`` is; None: nowhere."""
    m = _ANN_KEY.search(data)
    return None if m is None else (m.start(), m.end() - 1)


def duplicate_top_keys(path: Path) -> list[tuple[str, int]]:
    """The top-level keys that a COCO file holds more than once, with their counts (a JSON reader keeps the last
    value only, so a second ``"annotations": []`` would empty the dataset silently); [] when none, or when the file
    can't be read or parsed (the reader reports that). Only a file with ``"annotations"`` twice in its bytes is
    parsed for this (with the standard library: any key is then checked); the others cost one search."""
    import mmap

    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            first = data.find(b'"annotations"')
            if first < 0 or data.find(b'"annotations"', first + 13) < 0:
                return []
            raw = data[:]
    except (OSError, ValueError):  # unreadable, a folder, an empty file (mmap refuses it)
        return []
    import json
    from collections import Counter

    last: list[list[tuple[str, int]]] = [[]]  # the repeats of the object the hook made last

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        last[0] = [(k, n) for k, n in Counter(k for k, _ in pairs).items() if n > 1] if len(obj) < len(pairs) else []
        return obj

    try:  # the outermost object closes last: the hook's last call is the top level's (a dropped inner object's id
        top = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=pairs_hook)  # could be reused by another)
    except (ValueError, RecursionError):
        return []
    return last[0] if isinstance(top, dict) else []


class _Fallback(Exception):
    """The streaming path can't handle this file; parse it whole."""


def stream_coco(path: Path, on_chunk: ChunkCallback, *, chunk_bytes: int = 8 << 20) -> dict[str, Any] | None:
    """Parse a COCO file, passing ``annotations`` to ``on_chunk(items, first_index)`` a chunk at a time.

    Returns the top-level object without its ``annotations`` key, or None when the file must be parsed whole
    (``on_chunk`` may then have been called for some chunks: the caller discards what it built).
    """
    try:
        with open(path, "rb") as f:
            return _stream(f, on_chunk, chunk_bytes)
    except (_Fallback, OSError):
        return None  # a missing or unreadable file gets its error from the whole-file reader


def _stream(f: Any, on_chunk: ChunkCallback, chunk_bytes: int) -> dict[str, Any]:
    head = b""
    while True:
        block = f.read(_BLOCK)
        start = max(0, len(head) - 64)
        head += block
        m = _ANN_KEY.search(head, start)
        if m is not None:
            break
        if not block:
            raise _Fallback
    prefix = head[: m.start()]
    buf = head[m.end():]
    del head
    eof = False

    def fill(need: int) -> None:
        nonlocal buf, eof
        parts = [buf]
        size = len(buf)
        while size < need and not eof:
            block = f.read(max(_BLOCK, need - size))
            if not block:
                eof = True
            parts.append(block)
            size += len(block)
        if len(parts) > 1:
            buf = b"".join(parts)

    index = 0
    while True:
        fill(chunk_bytes + _BLOCK)
        i = _WS.match(buf).end()  # type: ignore[union-attr]
        if i == len(buf):
            raise _Fallback  # truncated file
        if buf[i:i + 1] == b"]":
            rest = buf[i + 1:]
            break
        near_end = eof and len(buf) - i <= chunk_bytes
        pattern, search_from = (_END, i) if near_end else (_BOUNDARY, i + chunk_bytes)
        failed = 0
        while True:
            cut = pattern.search(buf, search_from)
            if cut is None:
                if not eof:
                    fill(len(buf) + chunk_bytes)
                elif pattern is _BOUNDARY:
                    pattern, search_from = _END, i
                else:
                    raise _Fallback
                continue
            end = cut.start() + 1
            try:
                piece = bytearray(b"[")
                piece += memoryview(buf)[i:end]
                piece += b"]"
                items = json_loads(piece)
                del piece
            except ValueError:
                failed += 1
                if failed > _MAX_FAILED_CUTS:
                    raise _Fallback from None
                search_from = end
                continue
            break
        on_chunk(items, index)
        index += len(items)
        del items
        buf = buf[cut.end():]
    rest += f.read()
    try:
        top = json_loads(prefix + b'"annotations":"' + _SENTINEL.encode() + b'"' + rest)
    except ValueError:
        raise _Fallback from None
    if not isinstance(top, dict) or top.get("annotations") != _SENTINEL:
        raise _Fallback
    del top["annotations"]
    return top


def stream_list(data: Any, on_chunk: ChunkCallback, *, chunk_bytes: int = 1 << 20) -> bool:
    """Parse a top-level JSON array of objects (a COCO results list) a chunk of about ``chunk_bytes`` at a time.

    Small chunks keep few Python objects alive at once, so the allocator reuses its memory instead of mapping
    (and faulting in) hundreds of MB: that halves the cost of reading a large results file. Returns False when
    the data must be parsed whole (not an array of objects, malformed, orjson missing); ``on_chunk`` may then
    have been called for some chunks, and the caller discards what it built. ``data``: bytes or a read-only
    buffer such as an ``mmap`` of the file (no copy of the file in memory).
    """
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency
        return False
    i = _WS.match(data).end()  # type: ignore[union-attr]
    if data[i:i + 1] != b"[":
        return False
    end_all = len(data)
    while end_all and data[end_all - 1:end_all] in (b" ", b"\n", b"\r", b"\t"):
        end_all -= 1
    if end_all < i + 2 or data[end_all - 1:end_all] != b"]":
        return False
    with memoryview(data) as view:  # released on the way out (an mmap can't close while a view exists)
        return _stream_list(data, view, i + 1, end_all, on_chunk, chunk_bytes, orjson.loads, orjson.JSONDecodeError)


def _stream_list(data: Any, view: memoryview, i: int, end_all: int, on_chunk: ChunkCallback, chunk_bytes: int,
                 loads: Callable[[Any], Any], error: type[Exception]) -> bool:
    index = 0
    while True:
        i = _WS.match(data, i).end()  # type: ignore[union-attr]
        if i >= end_all - 1:
            return i == end_all - 1  # the closing bracket: done
        if data[i:i + 1] != b"{":
            return False
        near_end = end_all - i <= chunk_bytes
        pattern, search_from = (_END, i) if near_end else (_BOUNDARY, i + chunk_bytes)
        failed = 0
        while True:
            cut = pattern.search(data, search_from, end_all)
            if cut is None:
                if pattern is _BOUNDARY:
                    pattern, search_from = _END, i
                    continue
                return False
            end = cut.start() + 1
            piece = bytearray(b"[")
            piece += view[i:end]
            piece += b"]"
            try:
                items = loads(piece)
            except error:
                failed += 1
                if failed > _MAX_FAILED_CUTS:
                    return False
                search_from = end
                continue
            break
        del piece
        on_chunk(items, index)
        index += len(items)
        del items
        i = cut.end()
