"""The fast path of the Open Images CSV readers: the file parsed by pyarrow's CSV reader into string and dictionary
columns, and the column operations the readers need (categorical codes, numbers, flags, how numbers are printed)
done on those columns without a Python object per row.

Every function here gives what the exact path in ``_openimages_csv`` gives, or None (or a table of None) where it
can't be sure, and the caller then takes the exact path, which also words the errors (file, line, field):

- the table: only files without a quote character, blank lines or a lone ``\\r`` (where Python's csv module and
  pyarrow's reader could split differently or the line numbers shift), with as many fields on every row as in the
  header, and UTF-8; the header line is split as the exact path splits it;
- numbers: pyarrow's parser (fast_float: the correctly rounded double, as Python's ``float()``) accepts a subset of
  what ``float()`` accepts (not surrounding spaces, ``1_0`` or non-ASCII digits) and nothing that it refuses
  (``tests/io/test_openimages_fast.py`` checks both); a column with a value it refuses, or that is not finite, is
  read again by the exact path;
- categorical codes: in order of first appearance (checked; else re-ordered);
- Kaggle PredictionStrings: split on spaces where the file is ASCII without other whitespace than spaces and line
  ends (where ``str.split()`` splits there too).

Private to ``maslow.io._openimages_csv``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from maslow.core.types import FloatArray, IntArray, ObjArray

#: columns read as dictionaries (few distinct values, or values that repeat: ids, MIDs, sources, flags)
DICT_COLUMNS = frozenset({"imageid", "labelname", "source", "confidence", "isoccluded", "istruncated", "isgroupof",
                          "isdepiction", "isinside"})
_DICT = pa.dictionary(pa.int32(), pa.string())
#: bytes that ``str.split()`` takes as whitespace, besides the space and the line ends
_OTHER_SPACE = b"\t\x0b\x0c\x1c\x1d\x1e\x1f"
_NUMPY = {pa.int8(): np.int8, pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


# pyarrow's conversions from and to Python and numpy values (pa.array, pa.scalar, Array.to_numpy) import pandas
# where it is installed (~0.6 CPU-s): arrays are made from and read into numpy through their buffers instead.
def numpy_of(arr: Any) -> np.ndarray:
    """(n,) a numeric pyarrow array without nulls as a read-only numpy view."""
    if arr.null_count:
        raise ValueError("nulls")  # never in what this module reads: its strings are never null
    dtype = np.dtype(_NUMPY[arr.type])
    return np.frombuffer(arr.buffers()[1], dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def arrow_of(values: np.ndarray) -> Any:
    """A pyarrow array over a numeric numpy array (no copy where it is contiguous)."""
    v = np.ascontiguousarray(values)
    typ = next(t for t, d in _NUMPY.items() if np.dtype(d) == v.dtype)
    return pa.Array.from_buffers(typ, len(v), [None, pa.py_buffer(v)])


def strings_of(texts: list[str]) -> Any:
    """A pyarrow string array of ``texts`` (ASCII: None otherwise)."""
    joined = "".join(texts)
    if not joined.isascii():
        return None
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)), out=offsets[1:])
    typ, width = (pa.string(), np.int32) if offsets[-1] < 2**31 else (pa.large_string(), np.int64)
    return pa.Array.from_buffers(typ, len(texts), [None, pa.py_buffer(offsets.astype(width)),
                                                   pa.py_buffer(joined.encode("ascii"))])


def header_of(data: bytes) -> tuple[str, Any] | None:
    """The header line (as the exact path decodes it: UTF-8, BOM dropped, the line end's ``\\r`` too) and the body
    (a pyarrow buffer over ``data``, trailing line ends dropped); None where the file is not for the fast path (a
    quote, a lone CR, no body or a blank line after the header, not UTF-8; ``read_columns`` finds other blank
    lines)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if b'"' in data:
        return None
    nl = data.find(b"\n", start)
    end = len(data)
    while end > nl + 1 and data[end - 1] in (10, 13):
        end -= 1
    if nl < 0 or end <= nl + 1 or data[nl + 1] in (10, 13):
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    if not data.isascii():
        try:
            data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    head = data[start:nl].rstrip(b"\r").decode("utf-8")
    if not head.strip():
        return None
    return head, pa.py_buffer(data).slice(nl + 1, end - nl - 1)


def read_columns(header: list[str], body: Any) -> list[pa.Array] | None:
    """The body's columns (one array each: dictionaries for ``DICT_COLUMNS``, else strings), or None where pyarrow
    refuses the file (a row with another number of fields) or it may have blank lines (the exact path skips those,
    and counts them in the line numbers)."""
    names = [f"c{j}" for j in range(len(header))]
    types = {n: _DICT if h.strip().lower() in DICT_COLUMNS else pa.string() for n, h in zip(names, header, strict=True)}
    try:
        table = pcsv.read_csv(
            body,
            read_options=pcsv.ReadOptions(column_names=names, block_size=1 << 22),
            parse_options=pcsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                                quoted_strings_can_be_null=False))
        columns = [table.column(j).combine_chunks() for j in range(len(names))]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowCapacityError):
        return None
    first = columns[0].dictionary if isinstance(columns[0], pa.DictionaryArray) else columns[0]
    if len(first) and pc.min_max(pc.binary_length(first)).as_py()["min"] == 0:
        return None  # an empty first field: maybe a blank line (a row of empty fields)
    return columns


def plain_spaces(data: bytes) -> bool:
    """Whether ``data`` is ASCII with no whitespace but spaces and line ends (``str.split()`` then splits on runs of
    spaces only)."""
    return data.isascii() and not any(b in data for b in _OTHER_SPACE)


def to_objects(arr: pa.Array) -> ObjArray:
    """(n,) the column as an object array of str."""
    if isinstance(arr, pa.DictionaryArray):
        values = np.empty(len(arr.dictionary), object)
        values[:] = arr.dictionary.to_pylist()
        decoded: ObjArray = values[numpy_of(arr.indices)]
        return decoded
    out = np.empty(len(arr), object)
    out[:] = arr.to_pylist()
    return out


def codes(arr: pa.Array) -> tuple[IntArray, list[str]]:
    """(n,) each value's index in the distinct values, and those in order of first appearance."""
    if not isinstance(arr, pa.DictionaryArray):
        arr = pc.dictionary_encode(arr)
    idx = numpy_of(arr.indices).astype(np.int64)
    values: list[str] = arr.dictionary.to_pylist()
    if not len(idx):
        return idx, []
    top = np.maximum.accumulate(idx)
    if idx[0] == 0 and int(top[-1]) + 1 == len(values) and bool((idx[1:] <= top[:-1] + 1).all()):
        return idx, values  # every value's first appearance comes after the previous ones'
    used, first = np.unique(idx, return_index=True)
    order = used[np.argsort(first, kind="stable")]
    remap = np.full(len(values), -1, np.int64)
    remap[order] = np.arange(len(order))
    return remap[idx], [values[k] for k in order.tolist()]


def floats(arr: pa.Array) -> FloatArray | None:
    """(n,) the column as float64, as ``float()`` reads each value; None where a value is not a finite number that
    pyarrow reads (the exact path then decides)."""
    values = arr.dictionary if isinstance(arr, pa.DictionaryArray) else arr
    try:
        v = numpy_of(pc.cast(values, pa.float64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not np.isfinite(v).all():
        return None
    if isinstance(arr, pa.DictionaryArray):
        return np.asarray(v[numpy_of(arr.indices)], np.float64)
    return v.copy()


def flags(arr: pa.Array) -> ObjArray | None:
    """(n,) 0/1/-1 as an object array of False/True/None; None where another value is there."""
    if not isinstance(arr, pa.DictionaryArray):
        arr = pc.dictionary_encode(arr)
    of_text = {"1": True, "0": False, "-1": None}
    texts = arr.dictionary.to_pylist()
    idx = numpy_of(arr.indices)
    used = np.zeros(len(texts), bool)
    used[idx] = True
    if any(u and s not in of_text for s, u in zip(texts, used.tolist(), strict=True)):
        return None
    lookup = np.empty(len(texts), object)
    lookup[:] = [of_text.get(s) for s in texts]
    out: ObjArray = lookup[idx]
    return out


def all_equal(arr: pa.Array, text: str) -> bool:
    """Whether every value of the column is ``text``."""
    if isinstance(arr, pa.DictionaryArray):
        used = np.zeros(len(arr.dictionary), bool)
        used[numpy_of(arr.indices)] = True
        return all(s == text for s, u in zip(arr.dictionary.to_pylist(), used.tolist(), strict=True) if u)
    return pc.unique(arr).to_pylist() in ([], [text])


def number_style(arrays: list[Any]) -> dict[str, object]:
    """``_openimages_csv.number_style`` of the values of ``arrays`` (string columns that ``floats`` read: ASCII)."""
    if not sum(len(a) for a in arrays):
        return {}
    if any(pc.any(pc.match_substring(a, "e", ignore_case=True)).as_py() for a in arrays):
        return {}
    ends: set[int] = set()
    ints: set[str] = set()
    value_set = strings_of(["0", "1", "0.0", "1.0"])
    for a in arrays:
        if not len(a):
            continue
        dot = numpy_of(pc.find_substring(a, "."))
        end = np.where(dot >= 0, numpy_of(pc.binary_length(a)) - dot, 0)
        ends.update({int(end.min()), int(end.max())})
        ints.update(pc.unique(pc.filter(a, pc.is_in(a, value_set=value_set))).to_pylist())
    if len(ends) == 1 and next(iter(ends)) > 1:
        return {"decimals": next(iter(ends)) - 1}
    if ints and ints <= {"0.0", "1.0"}:
        return {"int_dot0": True}
    return {}


def kaggle_columns(ids: Any, strings: Any) -> tuple[list[Any], IntArray] | None:
    """The detections of a Kaggle submission's columns (its file ``plain_spaces``): the columns ImageID and the six
    ``KAGGLE_FIELDS``, and (n,) each detection's row in the submission; None where a PredictionString does not hold
    groups of 6 values (the exact path words the error)."""
    trimmed = pc.utf8_trim(strings, " ")
    parts = pc.ascii_split_whitespace(trimmed)
    empty = numpy_of(pc.binary_length(trimmed)) == 0  # split gives [""]: no values
    counts = np.where(empty, 0, numpy_of(pc.list_value_length(parts))).astype(np.int64)
    if (counts % 6).any():
        return None
    values = pc.list_flatten(parts)
    if empty.any():  # the "" of the empty rows (runs of spaces are one separator, the ends are trimmed)
        values = values.take(arrow_of(np.flatnonzero(numpy_of(pc.binary_length(values)) > 0)))
    rows = np.repeat(np.arange(len(counts)), counts // 6)
    cols: list[Any] = [ids.take(arrow_of(rows))]
    n = len(rows)
    for j in range(6):
        col = values.take(arrow_of(np.arange(j, 6 * n, 6)))
        cols.append(pc.dictionary_encode(col) if j == 0 else col)
    return cols, rows
