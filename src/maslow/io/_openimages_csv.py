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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.types import FloatArray, IntArray, ObjArray
from maslow.errors import FormatError
from maslow.io._common import Collector, read_bytes
from maslow.io.images import IMAGE_SUFFIXES, image_info
from maslow.io.registry import Ticks

_INTS = frozenset({"0", "1", "0.0", "1.0"})
COORDS = ("XMin", "XMax", "YMin", "YMax")


@dataclass
class Table:
    """A CSV file read as text columns: ``rows[r, j]`` is the text of row r (0-based, after the header) in column j;
    or, read by pyarrow (``_openimages_arrow``), ``arrow[j]`` is column j (``rows`` None: ``col`` builds the object
    columns asked for)."""

    path: Path
    header: list[str]
    rows: ObjArray | None  # (n, k) str
    lines: Sequence[int] | np.ndarray | None = None  # each row's line in the file (1-based) when it is not r + 2
    crlf: bool = False
    arrow: list[Any] | None = None  # (k,) pyarrow arrays of n values
    plain_spaces: bool = False  # the file is ASCII without other whitespace than spaces and line ends
    index: dict[str, int] = field(default_factory=dict)  # lower-cased column name -> j
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # j -> object column; ("float", j) -> parsed

    def __post_init__(self) -> None:
        for j, h in enumerate(self.header):
            key = h.strip().lower()
            if key in self.index:
                raise FormatError(f"column names must be unique, {h!r} repeats column {self.index[key] + 1}",
                                  path=self.path, record="line 1 (header)", field=h)
            self.index[key] = j

    def __len__(self) -> int:
        if self.rows is not None:
            return len(self.rows)
        assert self.arrow is not None
        return len(self.arrow[0])

    def has(self, name: str) -> bool:
        return name.lower() in self.index

    def name(self, name: str) -> str:
        """The column's name as the header spells it."""
        return self.header[self.index[name.lower()]].strip()

    def col(self, name: str) -> ObjArray:
        j = self.index[name.lower()]
        if self.rows is not None:
            return self.rows[:, j]
        if j not in self.cache:
            from maslow.io import _openimages_arrow as fast

            assert self.arrow is not None
            self.cache[j] = fast.to_objects(self.arrow[j])
        out: ObjArray = self.cache[j]
        return out

    def column(self, name: str) -> Any:
        """Column ``name`` as a pyarrow array, or None (a table read by the exact path)."""
        return None if self.arrow is None else self.arrow[self.index[name.lower()]]

    def codes(self, name: str) -> tuple[IntArray, list[str]]:
        """``codes`` of column ``name``."""
        arr = self.column(name)
        if arr is None:
            return codes(self.col(name))
        from maslow.io import _openimages_arrow as fast

        return fast.codes(arr)

    def all_equal(self, name: str, text: str) -> bool:
        """Whether every value of column ``name`` is ``text``."""
        arr = self.column(name)
        if arr is None:
            return bool((self.col(name) == text).all())
        from maslow.io import _openimages_arrow as fast

        return fast.all_equal(arr, text)

    def line(self, r: int) -> int:
        return int(self.lines[r]) if self.lines is not None else r + 2

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
        data = Path(path).read_bytes()  # one read into one buffer (read_bytes joins its reads: a copy)
    except FileNotFoundError:
        raise FormatError(f"{what} not found", path=path) from None
    except IsADirectoryError:
        raise FormatError(f"{what} must be a file, got a folder", path=path) from None
    fast = _fast_table(path, data)
    if fast is not None:
        return fast
    try:
        text = data.decode("utf-8-sig")
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


def _fast_table(path: Path, data: bytes) -> Table | None:
    """The table read by pyarrow, or None where the exact path must read it (see ``_openimages_arrow``)."""
    from maslow.io import _openimages_arrow as fast

    found = fast.header_of(data)
    if found is None:
        return None
    head, body = found
    header = head.split(",")
    if len(header) < 2:
        return None
    columns = fast.read_columns(header, body)
    if columns is None:
        return None
    plain = any(h.strip().lower() == "predictionstring" for h in header) and fast.plain_spaces(data)
    return Table(path, header, None, crlf=b"\r" in data and b"\r\n" in data, arrow=columns, plain_spaces=plain)


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


def coordinates(t: Table, col: Collector, *, swap: bool = True) -> np.ndarray:
    """(n, 4) XMin, XMax, YMin, YMax; values outside [0, 1] are reported (kept as is). ``swap`` (the truth): inverted
    pairs are reported and read swapped; else (detections) they are left for ``ordered`` to report."""
    v = np.stack([floats(t, c) for c in COORDS], axis=1)
    out = (v < 0) | (v > 1)
    if out.any():
        rows, cols = np.nonzero(out)
        record, field = first_row(out[:, cols[0]], t, COORDS[cols[0]])
        col.add("openimages_out_of_range", f"{field} must be a fraction of the image size in [0, 1], got "
                f"{v[rows[0], cols[0]]!r} ({int(out.any(1).sum())} boxes); kept as is", severity="error",
                file=t.path, record=record, field=field)
    if not swap:
        return v
    for lo, hi in ((0, 1), (2, 3)):
        bad = v[:, lo] > v[:, hi]
        if bad.any():
            record, field = first_row(bad, t, COORDS[lo])
            col.add("openimages_inverted_box", f"{COORDS[lo]} must be <= {COORDS[hi]}, {int(bad.sum())} boxes are not; "
                    "read with the two swapped", severity="error", file=t.path, record=record, field=field)
            v[bad, lo], v[bad, hi] = v[bad, hi], v[bad, lo].copy()
    return v


def ordered(v: np.ndarray, t: Table, col: Collector) -> np.ndarray:
    """(n,) whether each detection's corners are in order (XMin <= XMax and YMin <= YMax, ``v`` as ``coordinates``
    gives it). The others are reported as one error (the count, the first one's line and field): the Open Images
    challenge evaluator drops them as invalid boxes (TF's ``_remove_invalid_boxes``), so they are not imported."""
    x_bad, y_bad = v[:, 0] > v[:, 1], v[:, 2] > v[:, 3]
    bad = x_bad | y_bad
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        lo, hi = ("XMin", "XMax") if x_bad[r] else ("YMin", "YMax")
        field = t.name(lo)
        col.add("openimages_inverted_box", f"{field} must be <= {t.name(hi)}, got {float(v[r, COORDS.index(lo)])!r} > "
                f"{float(v[r, COORDS.index(hi)])!r}; not imported: {int(bad.sum())} of {len(v)} detections have XMin > "
                "XMax or YMin > YMax (the challenge evaluator drops them as invalid boxes)", severity="error",
                file=t.path, record=f"line {t.line(r)}", field=field)
    ok: np.ndarray = ~bad
    return ok


def codes(col: ObjArray) -> tuple[IntArray, list[str]]:
    """(n,) the index of each value in the distinct values, and those values in order of first appearance."""
    seen: dict[str, int] = {}
    idx = [seen.setdefault(s, len(seen)) for s in col.tolist()]
    return np.asarray(idx, np.int64).reshape(len(col)), list(seen)


def lookup(code: IntArray, texts: list[str], mapping: dict[str, int]) -> IntArray:
    """(n,) ``mapping`` of each coded value (``code``, ``texts`` as ``codes`` gives them), -1 where it has none."""
    if not len(code):
        return code
    out: IntArray = np.array([mapping.get(x, -1) for x in texts], np.int64)[code]
    return out


def pixel_boxes(v: FloatArray, image: IntArray, w: IntArray, h: IntArray) -> FloatArray:
    """(n, 4) xyxy pixels of the fractions ``v`` (n, 4: XMin, XMax, YMin, YMax) on images ``image`` of sizes w, h."""
    ww, hh = w[image].astype(np.float64), h[image].astype(np.float64)
    return np.stack([v[:, 0] * ww, v[:, 2] * hh, v[:, 1] * ww, v[:, 3] * hh], axis=1)


def floats(t: Table, name: str) -> FloatArray:
    """Column ``name`` as float64.

    Raises:
        FormatError: a value that is not a finite number (names the line and the field).
    """
    arr = t.column(name)
    if arr is not None:
        from maslow.io import _openimages_arrow as fast

        parsed = fast.floats(arr)
        if parsed is not None:
            t.cache["float", t.index[name.lower()]] = True
            return parsed
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
    arr = t.column(name)
    if arr is not None:
        from maslow.io import _openimages_arrow as fast

        read = fast.flags(arr)
        if read is not None:
            return read
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


def table_number_style(t: Table, names: Sequence[str]) -> dict[str, object]:
    """``number_style`` of the values of columns ``names`` (all rows)."""
    arrays = [t.column(c) for c in names]
    if all(a is not None and ("float", t.index[c.lower()]) in t.cache for a, c in zip(arrays, names, strict=True)):
        from maslow.io import _openimages_arrow as fast

        return fast.number_style(arrays)  # values that pyarrow read as numbers: ASCII
    return number_style([s for c in names for s in t.col(c).tolist()])


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


class StemIndex(dict[str, str]):
    """Image file stem -> file name; ``others``: for each stem found more than once, all its file names, sorted (the
    first is the one taken)."""

    def __init__(self) -> None:
        super().__init__()
        self.others: dict[str, list[str]] = {}


def index_images(folder: Path | None) -> StemIndex:
    """Image file stem -> file name, for the image files directly in ``folder`` (one scan of the folder); a stem
    found twice keeps the first by sorted name (``image_sizes`` reports it when an ImageID uses it)."""
    out = StemIndex()
    if folder is None or not folder.is_dir():
        return out
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)
    for name in names:
        s = os.path.splitext(name)[0]
        if out.setdefault(s, name) is not name:
            out.others.setdefault(s, [out[s]]).append(name)
    return out


def image_sizes(ids: list[str], folder: Path | None, col: Collector, tick: Ticks, offset: int = 0, *,
                found: dict[str, str] | None = None) -> tuple[list[str], IntArray, IntArray, np.ndarray]:
    """For each ImageID: its path (the file found in ``folder``, else ``<ImageID>.jpg``), width, height (from the
    header; 1 x 1 where there is no image, boxes then stay fractions) and whether it had no size (1 x 1).
    ``tick(offset + i + 1)`` after each image. ``found``: ``index_images(folder)`` where the caller has it."""
    if found is None:
        found = index_images(folder)
    m = len(ids)
    w, h = np.ones(m, np.int64), np.ones(m, np.int64)
    unsized = np.ones(m, bool)
    if folder is None:  # no files to look up: every image 1 x 1 at <ImageID>.jpg
        for i in range(m):
            tick(offset + i + 1)
        return [f"{image_id}.jpg" for image_id in ids], w, h, unsized
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
                    file=folder / f"{image_id}.jpg", image=i)
        tick(offset + i + 1)
    others = getattr(found, "others", None)  # stems of several files: a loop only when there are some
    if others:
        for i, image_id in enumerate(ids):
            names = others.get(image_id)
            if names is not None:
                col.add("ambiguous_image", f"{len(names)} image files share the ImageID {image_id!r} as stem "
                        f"({', '.join(names)}): took {names[0]!r}, the first by sorted name; the others are not read",
                        file=folder / names[0], image=i)
    return paths, w, h, unsized
