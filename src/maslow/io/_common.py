"""Shared plumbing of the format modules: safe paths, atomic writes, issue collection, export reports."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from maslow.core.atomic import atomic_dir as atomic_dir  # re-exported for format modules
from maslow.core.atomic import atomic_path as atomic_path
from maslow.core.issues import Issue, Report
from maslow.errors import FormatError


class Collector:
    """Collects the issues a reader finds; in strict mode the first error raises FormatError."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.issues: list[Issue] = []

    def add(
        self,
        type_: str,
        message: str,
        *,
        severity: str = "warning",
        file: str | Path | None = None,
        record: str | None = None,
        field: str | None = None,
        image: int | None = None,
        annotation: int | None = None,
    ) -> None:
        issue = Issue(
            type=type_, severity=severity, message=message, file=None if file is None else str(file),
            record=record, field=field, image=image, annotation=annotation,
        )
        if self.strict and severity in ("error", "warning"):
            raise FormatError(f"{message} [{type_}; strict mode]", path=file, record=record, field=field)
        self.issues.append(issue)

    def report(self) -> Report:
        return Report(tuple(self.issues))


def safe_relpath(name: str, *, root: Path | None, file: str | Path | None = None, record: str | None = None,
                 field: str | None = None) -> str:
    """Normalise an image path from an annotation file to a POSIX path relative to the dataset root.

    Absolute paths inside ``root`` are made relative; anything that would escape the root (``..``, an
    absolute path elsewhere, a drive letter) raises FormatError.
    """
    raw = str(name).strip()
    if not raw:
        raise FormatError("image path must be non-empty", path=file, record=record, field=field)
    if "\x00" in raw:
        raise FormatError("image path must not contain NUL bytes", path=file, record=record, field=field)
    p = raw.replace("\\", "/")
    if PureWindowsPath(raw).drive or p.startswith("/"):
        # A drive path ("C:/x") is not absolute on POSIX: resolving it would land inside the working directory.
        if root is not None and Path(p).is_absolute():
            with contextlib.suppress(ValueError):
                rel = Path(p).resolve().relative_to(Path(root).resolve()).as_posix()
                if rel != ".":
                    return rel
        raise FormatError(
            f"image path must be relative to the dataset root, got absolute {raw!r}",
            path=file, record=record, field=field,
        )
    parts: list[str] = []
    for part in PurePosixPath(p).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise FormatError(
                    f"image path must stay inside the dataset root, got {raw!r}",
                    path=file, record=record, field=field,
                )
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise FormatError(f"image path must name a file, got {raw!r}", path=file, record=record, field=field)
    return "/".join(parts)


def json_loads(data: bytes | bytearray) -> Any:
    """Parse JSON bytes with orjson (several times faster) when installed, else the standard library.

    Anything orjson refuses (NaN literals, very deep nesting, bad input) is parsed again by ``json``, so the
    accepted language and the error messages are the standard library's; except an unpaired surrogate escape
    (``"\\ud800"``), which ``json`` would accept as text that no UTF-8 writer can write: refused here, at its
    position, so that no export fails on it later.
    """
    import json  # json and orjson load on first use

    try:  # an optional speed-up
        import orjson
    except ImportError:  # pragma: no cover - exercised where orjson is absent
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if e.msg.endswith("surrogate in string"):  # "no low", "invalid high", "invalid low"
            raise json.JSONDecodeError(f"{e.msg} (text must be valid Unicode: a \\ud800-\\udfff escape must "
                                       "be one of a high-low surrogate pair)", e.doc, e.pos) from None
        return json.loads(data)


def load_json(path: str | Path) -> Any:
    """Parse a JSON file; errors name the file, line and column."""
    import json

    path = Path(path)
    try:
        with open(path, "rb") as f:
            return json_loads(f.read())
    except FileNotFoundError:
        raise FormatError("file not found", path=path) from None
    except IsADirectoryError:
        raise FormatError("must be a file, got a directory", path=path) from None
    except json.JSONDecodeError as e:
        raise FormatError(f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
                          f"{kind_hint(path, expected='json')}", path=path) from None
    except UnicodeDecodeError as e:
        raise FormatError(f"must be UTF-8 text: {e}", path=path) from None
    except RecursionError:
        raise FormatError("malformed JSON: nested too deeply to parse", path=path) from None
    except OSError as e:
        raise FormatError(f"unreadable file: {e.strerror or e}", path=path) from None


def dump_json(obj: Any, path: str | Path, *, indent: bool = False) -> None:
    """Write JSON atomically (temp file, then rename), UTF-8, indented by 2 with ``indent``; NaN and infinities
    are written as null (JSON has no NaN).

    orjson writes it (json.dump is pure Python: 26 s for a 10,000-image Label Studio export, orjson about 0.5 s);
    the json module takes what orjson refuses (integers beyond 64 bits).
    """
    import orjson

    opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        data = orjson.dumps(obj, option=opts)
    except orjson.JSONEncodeError:
        import json

        data = json.dumps(obj, indent=2 if indent else None, separators=None if indent else (",", ":"),
                          ensure_ascii=False).encode("utf-8")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@dataclass
class ExportReport:
    """What a writer wrote and what the target format could not express.

    Attributes:
        path: where the output went.
        format: the format name.
        n_images, n_annotations: rows written.
        lost: what was not written, e.g. ``{"attributes": 120, "mask": 40}`` (annotations or values per field).
        notes: other remarks (e.g. masks written as polygons).
    """

    path: str
    format: str
    n_images: int = 0
    n_annotations: int = 0
    lost: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def lossless(self) -> bool:
        return not any(self.lost.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "n_images": self.n_images,
            "n_annotations": self.n_annotations,
            "lossless": self.lossless,
            "lost": dict(self.lost),
            "notes": list(self.notes),
        }


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a file, as ``open(path, "rb").read()`` gives them, with fewer calls.

    Raises:
        FileNotFoundError: no such file (as ``open`` raises it: callers word it for their kind of file).
        FormatError: a directory where the file should be, or a file that can't be read (naming the path).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.read(fd, 1 << 16)
            if len(data) == 1 << 16:
                parts = [data]
                while more := os.read(fd, 1 << 20):
                    parts.append(more)
                data = b"".join(parts)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise
    except IsADirectoryError:  # os.open opens a folder; os.read refuses it
        raise FormatError("must be a file, got a directory", path=path) from None
    except OSError as e:
        raise FormatError(f"unreadable file: {e.strerror or e}", path=path) from None
    return data


def kind_hint(path: str | Path, *, expected: str) -> str:
    """A hint to add to a parse error when the file is the other kind of text than ``expected`` ("json" or
    "xml"), judged by its first character (a COCO file read with ``--from voc``); else ""."""
    try:
        with open(path, "rb") as f:
            head = f.read(256).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return ""
    if expected == "xml" and head[:1] in (b"{", b"["):
        return "; the file starts like JSON: read it with --from coco, coco-results or labelstudio (`maslow formats`)"
    if expected == "json" and head[:1] == b"<":
        return "; the file starts like XML: read it with --from voc or cvat (`maslow formats`)"
    return ""


def unique_names(names: list[str]) -> list[str]:
    """``names`` with each repeat renamed ``'name (j)'`` (``j``: its 1-based position, as COCO skeletons count),
    for lists whose entries are positional (keypoint names): nothing is lost, and a schema accepts them."""
    out: list[str] = []
    for j, k in enumerate(names):
        new, n = k, j + 1
        while new in out or (new != k and new in names):
            new, n = f"{k} ({n})", n + len(names)
        out.append(new)
    return out


def move_rotation_pivot(box: Any, degrees: float, *, to_center: bool) -> list[float]:
    """A rotated rectangle given as its unrotated ``[x1, y1, x2, y2]`` and a clockwise angle, moved between the two
    conventions of the annotation tools: Label Studio rotates about the top-left corner ``(x1, y1)``, CVAT about
    the centre. Returns the unrotated box that, turned by the same angle about the other pivot, covers the same
    pixels (``to_center=True``: Label Studio's box as CVAT's; ``False``: back)."""
    import math

    x1, y1, x2, y2 = (float(v) for v in box)
    hw, hh = (x2 - x1) / 2, (y2 - y1) / 2
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    dx, dy = c * hw - s * hh - hw, s * hw + c * hh - hh  # where the centre goes when turned about the corner
    if not to_center:
        dx, dy = -dx, -dy
    return [x1 + dx, y1 + dy, x2 + dx, y2 + dy]
