"""The checks of a maslow Parquet folder's header (``dataset.json``) against itself and against the Parquet files'
schemas (``maslow.io.parquet``): a header is not trusted as it is. A column entry removed from the header dropped
that column without a word, a ``dtype`` changed converted the values (boxes cut to integers), and a non-string
``root`` crashed every reader; each is refused, naming the file and the column."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from maslow.errors import FormatError

OBJ_KINDS = {str: "str", bool: "bool", int: "int", float: "float", bytes: "bytes"}
KINDS = frozenset({"numpy", "mask", "ragged", "polygon", "null", "json", *OBJ_KINDS.values()})


def check_header(header: dict[str, Any], head: Path) -> None:
    """Refuse header values of the wrong type: ``root`` (a string or null), ``root_base`` (``"folder"`` when
    present), the row counts (integers >= 0) and the column lists (lists)."""
    root = header.get("root")
    if root is not None and not isinstance(root, str):
        raise FormatError(f"must be a path (a string) or null, got {type(root).__name__} {root!r:.40}", path=head,
                          field="root")
    if "root_base" in header and header["root_base"] != "folder":
        raise FormatError(f"must be 'folder' when present, got {header['root_base']!r:.40}", path=head,
                          field="root_base")
    for key in ("n_images", "n_annotations"):
        n = header.get(key)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise FormatError(f"must be a row count (an integer >= 0), got {n!r:.40}", path=head, field=key)
    for key in ("images", "annotations"):
        if not isinstance(header.get(key), list):
            raise FormatError(f"must be a list of column entries, got {type(header.get(key)).__name__}", path=head,
                              field=key)


def check_spec(spec: list[Any], table: type, name: str, head: Path) -> None:
    """Refuse a damaged column list in the header before any table is read (a repeated column or field too)."""
    allowed = {f.name for f in fields(table)}
    seen: dict[str, str] = {}
    for k, e in enumerate(spec):
        where = f"{name}[{k}]"
        if not isinstance(e, dict) or not isinstance(e.get("column"), str):
            raise FormatError(f"column entry must be an object with a 'column' name, got {e!r}", path=head,
                              record=where)
        if e.get("field") not in allowed or e.get("kind") not in KINDS:
            raise FormatError(f"column {e['column']!r} must have a field of {name} and a known kind, got field "
                              f"{e.get('field')!r}, kind {e.get('kind')!r}", path=head, record=where)
        if e["field"] in ("attributes", "extra") and not isinstance(e.get("key"), str):
            raise FormatError(f"column {e['column']!r} must have a 'key' name, got {e.get('key')!r}", path=head,
                              record=where)
        key = f"{e['field']} {e['key']!r}" if e["field"] in ("attributes", "extra") else repr(e["field"])
        for ident in (f"column {e['column']!r}", f"field {key}"):
            if ident in seen:
                raise FormatError(f"{ident} is listed twice, in {seen[ident]} and {where}; each column is listed "
                                  "once", path=head, record=where)
            seen[ident] = where
        if e["kind"] == "numpy":
            try:
                np.dtype(e["dtype"])
                if not isinstance(e["shape"], list) or not all(isinstance(d, int) and d >= 0 for d in e["shape"]):
                    raise ValueError(f"shape {e['shape']!r}")
            except (KeyError, TypeError, ValueError) as err:
                raise FormatError(f"column {e['column']!r} must have a numpy dtype and shape, got "
                                  f"{type(err).__name__}: {err}", path=head, record=where) from None


def _stored(e: dict[str, Any]) -> dict[str, pa.DataType | None]:
    """The Parquet columns a header entry stands for, each with the Arrow type a numpy column must have (None:
    checked when decoded)."""
    kind, column = e["kind"], e["column"]
    if kind == "mask":
        return {"mask.size": None, "mask.counts": None}
    if kind == "ragged":
        return {column: pa.int32()}
    if kind != "numpy":
        return {column: None}
    dtype, shape = np.dtype(e["dtype"]), tuple(e["shape"])
    width = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if width == 0:  # nothing stored (an (n, 0) column)
        return {}
    item = pa.string() if dtype.kind == "U" else pa.binary() if dtype.kind == "S" else pa.from_numpy_dtype(dtype)
    return {column: pa.list_(item, width) if shape else item}


def check_columns(schema: pa.Schema, spec: list[dict[str, Any]], path: Path) -> None:
    """Refuse a Parquet file whose columns are not those its header entries stand for: a column the header doesn't
    list (its entry removed: the column would be dropped), one it lists that the file lacks, and a numpy column
    stored as another type than the header's ``dtype`` and ``shape`` (the values would be converted)."""
    want: dict[str, pa.DataType | None] = {}
    for e in spec:
        want.update(_stored(e))
    have = {name: schema.field(name).type for name in schema.names}
    if not want:  # a table without columns is stored with one placeholder column
        want = {name: None for name in have if name == "_"}
    extra = [c for c in have if c not in want]
    if extra:
        raise FormatError("column is in the file but not in dataset.json's list of columns (its entry was removed?); "
                          "a column is never dropped unsaid", path=path, field=extra[0])
    missing = [c for c in want if c not in have]
    if missing:
        raise FormatError("column is missing (dataset.json names it)", path=path, field=missing[0])
    for column, kind in want.items():
        got = have[column]
        if pa.types.is_dictionary(got):
            got = got.value_type
        if kind is not None and not _same(got, kind):
            raise FormatError(f"column is stored as {got}, but dataset.json says {kind}; the values would be "
                              "converted", path=path, field=column)


def _same(got: pa.DataType, want: pa.DataType) -> bool:
    """Arrow types equal, a list's item name aside (``item`` or ``element``), and a time in any unit (Parquet stores
    a ``datetime64[s]`` as milliseconds; reading gives the header's unit back exactly)."""
    if pa.types.is_fixed_size_list(got) and pa.types.is_fixed_size_list(want):
        return bool(got.list_size == want.list_size and _same(got.value_type, want.value_type))
    for family in (pa.types.is_timestamp, pa.types.is_duration, pa.types.is_date, pa.types.is_time):
        if family(want):
            return bool(family(got))
    return bool(got == want)
