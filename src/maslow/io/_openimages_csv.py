"""What the Open Images readers and writers share: a CSV table read column-wise (one split of the whole text, no
Python object per row where the file allows), numbers and flags with errors naming the file, line and field,
categorical codes, the images looked up by ImageID, and coordinates printed so that they read back exactly.

Private to ``maslow.io.openimages`` and ``maslow.io.openimages_results``; see ``openimages`` for the conventions.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maslow.core.types import FloatArray, IntArray, ObjArray
from maslow.errors import FormatError
from maslow.io._common import Collector, read_bytes
from maslow.io.images import IMAGE_SUFFIXES, image_info
from maslow.io.registry import Ticks

#: the flags' texts: 1 yes, 0 no, -1 unknown
FLAG_TEXT = {True: "1", False: "0", None: "-1"}
_INT_TAIL = re.compile(r"\.0(?=,|$)")
_INTS = frozenset({"0", "1", "0.0", "1.0"})
COORDS = ("XMin", "XMax", "YMin", "YMax")


@dataclass
class Table:
    """A CSV file read as text columns: ``rows[r, j]`` is the text of row r (0-based, after the header) in column j."""

    path: Path
    header: list[str]
    rows: ObjArray  # (n, k) str
    lines: list[int] | None = None  # each row's line in the file (1-based) when it is not r + 2
    crlf: bool = False
    index: dict[str, int] = field(default_factory=dict)  # lower-cased column name -> j

    def __post_init__(self) -> None:
        for j, h in enumerate(self.header):
            key = h.strip().lower()
            if key in self.index:
                raise FormatError(f"column names must be unique, {h!r} repeats column {self.index[key] + 1}",
                                  path=self.path, record="line 1 (header)", field=h)
            self.index[key] = j

    def __len__(self) -> int:
        return len(self.rows)

    def has(self, name: str) -> bool:
        return name.lower() in self.index

    def name(self, name: str) -> str:
        """The column's name as the header spells it."""
        return self.header[self.index[name.lower()]].strip()

    def col(self, name: str) -> ObjArray:
        return self.rows[:, self.index[name.lower()]]

    def line(self, r: int) -> int:
        return self.lines[r] if self.lines is not None else r + 2

    def require(self, names: Sequence[str], what: str) -> None:
        for name in names:
            if not self.has(name):
                raise FormatError(f"{what} must have a column {name!r} (columns: {', '.join(names)}), got the "
                                  f"columns {', '.join(self.header)}", path=self.path, record="line 1 (header)",
                                  field=name)


def read_table(path: Path, *, what: str) -> Table:
    """Read a CSV file with a header line (UTF-8, optional BOM, ``\\n`` or ``\\r\\n``).

    Raises:
        FormatError: the file is missing or not UTF-8, has no header, or a row has another number of fields than
            the header (names the line).
    """
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except FileNotFoundError:
        raise FormatError(f"{what} not found", path=path) from None
    except IsADirectoryError:
        raise FormatError(f"{what} must be a file, got a folder", path=path) from None
    except UnicodeDecodeError as e:
        raise FormatError(f"{what} must be UTF-8 text: {e}", path=path) from None
    crlf = "\r\n" in text
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    head, _, body = text.partition("\n")
    if not head.strip():
        raise FormatError(f"{what} must start with a header line (the column names), got an empty line", path=path,
                          record="line 1")
    header = next(csv.reader([head])) if '"' in head else head.split(",")
    k = len(header)
    body = body.rstrip("\n")
    if not body:
        return Table(path, header, np.empty((0, k), object), crlf=crlf)
    if '"' in body or "\n\n" in body:  # quoted fields or blank lines: the csv module, row by row
        return _slow_table(path, header, body, what, crlf)
    fields = body.replace("\n", ",").split(",")
    n = body.count("\n") + 1
    if len(fields) != n * k:
        for r, line in enumerate(body.split("\n")):
            if line.count(",") != k - 1:
                raise FormatError(f"row must have {k} fields (as the header), got {line.count(',') + 1}", path=path,
                                  record=f"line {r + 2}")
    rows = np.array(fields, dtype=object).reshape(n, k)
    return Table(path, header, rows, crlf=crlf)


def _slow_table(path: Path, header: list[str], body: str, what: str, crlf: bool) -> Table:
    k = len(header)
    out: list[list[str]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(body, newline=""))
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != k:
                raise FormatError(f"row must have {k} fields (as the header), got {len(row)}", path=path,
                                  record=f"line {reader.line_num + 1}")
            out.append(row)
            lines.append(reader.line_num + 1)
    except csv.Error as e:
        raise FormatError(f"{what} is malformed CSV: {e}", path=path, record=f"line {reader.line_num + 1}") from None
    rows = np.empty((len(out), k), object)
    if out:
        rows[:] = out
    return Table(path, header, rows, lines=lines, crlf=crlf)


def read_descriptions(path: Path) -> tuple[dict[str, str], list[str] | None]:
    """MID -> display name in file order, and the header line's fields (None without one)."""
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except FileNotFoundError:
        raise FormatError("class descriptions CSV not found", path=path) from None
    except UnicodeDecodeError as e:
        raise FormatError(f"class descriptions CSV must be UTF-8 text: {e}", path=path) from None
    rows = [(n + 1, r) for n, r in enumerate(csv.reader(io.StringIO(text, newline=""))) if r]
    header = None
    if rows and rows[0][1][0].strip().lower() in ("labelname", "mid", "label_name", "labelid"):
        header = rows.pop(0)[1]
    out: dict[str, str] = {}
    for n, r in rows:
        if len(r) != 2:
            raise FormatError(f"row must have 2 fields (MID,DisplayName), got {len(r)}", path=path, record=f"line {n}")
        mid = r[0].strip()
        if not mid:
            raise FormatError("MID must be non-empty", path=path, record=f"line {n}", field="MID")
        if mid in out:
            raise FormatError(f"MID must be unique, {mid!r} repeats", path=path, record=f"line {n}", field="MID")
        out[mid] = r[1]
    return out, header


def first_row(mask: np.ndarray, t: Table, field: str) -> tuple[str, str]:
    """The line of the first row where ``mask`` is set, and the column's name as the header spells it."""
    r = int(np.flatnonzero(mask)[0])
    return f"line {t.line(r)}", t.name(field)


def coordinates(t: Table, col: Collector) -> np.ndarray:
    """(n, 4) XMin, XMax, YMin, YMax; values outside [0, 1] and inverted pairs are reported (the pairs swapped)."""
    v = np.stack([floats(t, c) for c in COORDS], axis=1)
    out = (v < 0) | (v > 1)
    if out.any():
        rows, cols = np.nonzero(out)
        record, field = first_row(out[:, cols[0]], t, COORDS[cols[0]])
        col.add("openimages_out_of_range", f"{field} must be a fraction of the image size in [0, 1], got "
                f"{v[rows[0], cols[0]]!r} ({int(out.any(1).sum())} boxes); kept as is", severity="error",
                file=t.path, record=record, field=field)
    for lo, hi in ((0, 1), (2, 3)):
        bad = v[:, lo] > v[:, hi]
        if bad.any():
            record, field = first_row(bad, t, COORDS[lo])
            col.add("openimages_inverted_box", f"{COORDS[lo]} must be <= {COORDS[hi]}, {int(bad.sum())} boxes are not; "
                    "read with the two swapped", severity="error", file=t.path, record=record, field=field)
            v[bad, lo], v[bad, hi] = v[bad, hi], v[bad, lo].copy()
    return v


def codes(col: ObjArray) -> tuple[IntArray, list[str]]:
    """(n,) the index of each value in the distinct values, and those values in order of first appearance."""
    seen: dict[str, int] = {}
    idx = [seen.setdefault(s, len(seen)) for s in col.tolist()]
    return np.asarray(idx, np.int64).reshape(len(col)), list(seen)


def floats(t: Table, name: str) -> FloatArray:
    """Column ``name`` as float64.

    Raises:
        FormatError: a value that is not a finite number (names the line and the field).
    """
    col = t.col(name)
    try:
        v = col.astype(np.float64)
    except (ValueError, TypeError):
        v = None
    if v is not None and np.isfinite(v).all():
        return v
    field_ = t.name(name)
    for r, s in enumerate(col.tolist()):
        try:
            x = float(s)
        except ValueError:
            raise FormatError(f"{field_} must be a number, got {s!r}", path=t.path, record=f"line {t.line(r)}",
                              field=field_) from None
        if not math.isfinite(x):
            raise FormatError(f"{field_} must be a finite number, got {s!r}", path=t.path, record=f"line {t.line(r)}",
                              field=field_)
    raise AssertionError("unreachable")  # pragma: no cover


def flags(t: Table, name: str) -> ObjArray:
    """Column ``name`` of 0/1/-1 flags as an object array of True/False/None.

    Raises:
        FormatError: another value (names the line and the field).
    """
    col = t.col(name)
    yes, no = col == "1", col == "0"
    unknown = col == "-1"
    bad = np.flatnonzero(~(yes | no | unknown))
    if bad.size:
        r = int(bad[0])
        raise FormatError(f"{t.name(name)} must be 1, 0 or -1 (unknown), got {col[r]!r} ({bad.size} rows)",
                          path=t.path, record=f"line {t.line(r)}", field=t.name(name))
    out = np.full(len(col), None, object)
    out[yes] = True
    out[no] = False
    return out


def number_style(tokens: list[str]) -> dict[str, object]:
    """How the numbers ``tokens`` are printed, for the writer to print them so again: ``{"decimals": d}`` when
    every one has exactly d > 0 decimals (``0.012500``), ``{"int_dot0": True}`` when whole numbers end in ``.0``
    (Python's ``repr``); {} for the shortest text (``0.0125``, ``1``)."""
    if not tokens:
        return {}
    joined = ",".join(tokens)
    if "e" in joined or "E" in joined:
        return {}
    ends = {len(s) - s.find(".") if "." in s else 0 for s in tokens}  # decimals + 1, or 0 without a point
    if len(ends) == 1 and next(iter(ends)) > 1:
        return {"decimals": next(iter(ends)) - 1}
    ints = {s for s in tokens if s in _INTS}
    if ints and ints <= {"0.0", "1.0"}:
        return {"int_dot0": True}
    return {}


def exact_fractions(box: FloatArray, scale: FloatArray) -> tuple[FloatArray, np.ndarray]:
    """(n,) values ``x`` with ``x * scale == box`` (how the readers turn a fraction into pixels), searched among
    the floats next to ``box / scale``, and (n,) whether one was found (else ``box / scale``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = box / scale
    ok = x * scale == box
    if ok.all():
        return x, ok
    for direction in (np.inf, -np.inf):
        cand = x.copy()
        for _ in range(3):
            cand = np.nextafter(cand, direction)
            hit = ~ok & (cand * scale == box)
            x[hit] = cand[hit]
            ok |= hit
    return x, ok


def fmt_fractions(box: FloatArray, scale: FloatArray, style: dict[str, object] | None = None
                  ) -> tuple[list[str], np.ndarray]:
    """The texts of the fractions of ``box`` (pixels) over ``scale`` (the image's width or height) that read back as
    the same pixels (``float(text) * scale == box``): the fewest decimals that do (so a value read as
    ``0.022673031`` is written so, whichever of the floats next to it the division gives), or the fixed
    ``style["decimals"]``; and (n,) whether the pixels come back exactly (else the nearest fraction)."""
    x, ok = exact_fractions(box, scale)
    style = style or {}
    if isinstance(style.get("decimals"), int):
        return fmt_numbers(x, style, scale=scale, box=box), ok
    n = len(x)
    best = np.full(n, -1, np.int64)
    for d in range(15):  # beyond 14 decimals np.round is not exact: the shortest repr then (best -1)
        todo = best < 0
        if not todo.any():
            break
        r = np.round(x[todo], d)
        hit = r * scale[todo] == box[todo]
        best[np.flatnonzero(todo)[hit]] = d
    texts: list[str] = [""] * n
    values = x.tolist()
    for d in np.unique(best).tolist():
        idx = np.flatnonzero(best == d).tolist()
        pattern = f"%.{d}f" if d >= 0 else "%r"
        for i in idx:
            texts[i] = pattern % values[i]
    back = np.asarray(texts, np.float64) if n else x
    wrong = ok & (back * scale != box)
    for i in np.flatnonzero(wrong).tolist():
        texts[i] = repr(values[i])
    if style.get("int_dot0"):
        texts = [t + ".0" if t in ("0", "1") else t for t in texts]
    return texts, ok


def fmt_numbers(values: FloatArray, style: dict[str, object] | None = None, *, scale: FloatArray | None = None,
                box: FloatArray | None = None) -> list[str]:
    """Each value as text: with the ``decimals`` of ``style`` when the value reads back the same (``scale`` and
    ``box``: when ``float(text) * scale == box``), else the shortest text that reads back as the same float;
    whole numbers without ``.0`` unless ``style["int_dot0"]``."""
    if not len(values):
        return []
    style = style or {}
    d = style.get("decimals")
    if isinstance(d, int):
        pattern = f"%.{d}f"
        fixed = [pattern % v for v in values.tolist()]
        back = np.asarray(fixed, np.float64)
        ok = back * scale == box if scale is not None and box is not None else back == values
        if ok.all():
            return fixed
        return [t if good else repr(v) for t, v, good in zip(fixed, values.tolist(), ok.tolist(), strict=True)]
    text = ",".join(map(repr, values.tolist()))
    if not style.get("int_dot0"):
        text = _INT_TAIL.sub("", text)
    return text.split(",")


def index_images(folder: Path | None) -> dict[str, str]:
    """Image file stem -> file name, for the image files directly in ``folder`` (one scan of the folder); a stem
    found twice keeps the first by sorted name."""
    if folder is None or not folder.is_dir():
        return {}
    out: dict[str, str] = {}
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)
    for name in names:
        out.setdefault(os.path.splitext(name)[0], name)
    return out


def image_sizes(ids: list[str], folder: Path | None, col: Collector, tick: Ticks, offset: int = 0,
                ) -> tuple[list[str], IntArray, IntArray, np.ndarray]:
    """For each ImageID: its path (the file found in ``folder``, else ``<ImageID>.jpg``), width, height (from the
    header; 1 x 1 where there is no image, boxes then stay fractions) and whether it had no size (1 x 1).
    ``tick(offset + i + 1)`` after each image."""
    found = index_images(folder)
    m = len(ids)
    w, h = np.ones(m, np.int64), np.ones(m, np.int64)
    unsized = np.ones(m, bool)
    paths = []
    for i, image_id in enumerate(ids):
        name = found.get(image_id)
        paths.append(name if name is not None else f"{image_id}.jpg")
        if name is not None:
            assert folder is not None
            try:
                info = image_info(folder / name)
            except FormatError as err:
                col.add("unreadable_image", f"{err}; read as 1 x 1 (boxes stay fractions)", severity="error",
                        file=folder / name, image=i)
            else:
                w[i], h[i], unsized[i] = info.width, info.height, False
        elif folder is not None:
            col.add("missing_image", f"no image file {image_id}.* in {folder}; read as 1 x 1 (boxes stay fractions)",
                    file=f"{image_id}.jpg", image=i)
        tick(offset + i + 1)
    return paths, w, h, unsized
