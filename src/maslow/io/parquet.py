"""maslow's own file format: a folder with two Parquet tables and a JSON header, fast and lossless.

Layout of ``DST/``:

- ``dataset.json``: format name and version, the label schema (``LabelSchema.to_dict``), ``root`` (a relative
  root is stored relative to the folder itself, marked ``"root_base": "folder"``, so that the folder is read
  alike from any working folder and keeps finding its images when moved with them), the row
  counts, for each table the ordered list of its columns with the field each one holds and its *kind*, and
  ``info`` (``Dataset.info``, when not empty).
- ``images.parquet``: one row per image: ``path``, ``width``, ``height``, ``split``, ``extra:<name>``.
- ``annotations.parquet``: one row per annotation: ``image``, ``label``, ``box``, ``score``, ``mask.size``,
  ``mask.counts``, ``polygon``, ``keypoints``, ``iscrowd``, ``annotator``, ``source``, ``attr:<name>``,
  ``extra:<name>`` (absent optional columns are not stored).

Column kinds (glossary):

- ``numpy``: a numeric, bool, string (``U``/``S``) or datetime numpy column, stored natively; trailing
  dimensions (box (n, 4), keypoints (n, K, 3)) as a fixed-size list; the exact dtype and shape are in the
  header. NaN stays NaN.
- ``str``, ``bool``, ``int``, ``float``, ``bytes``: an object column whose values are all of that Python type
  or None (stored as nulls). ``json``: an object column of any other JSON values (lists, dicts, mixed
  types), one JSON text per row; tuples come back as lists and numpy scalars as Python scalars. ``null``:
  all None. Other objects can't be stored and raise FormatError.
- ``mask``: COCO RLE as ``mask.size`` (h, w) and ``mask.counts`` (compressed bytes), null where no mask.
- ``ragged`` (polygons): flat, like ``Polygons`` in memory, so a load makes no Python object per polygon and
  Parquet decodes plain numeric columns instead of nested lists (3-5x faster): ``polygon.rings`` in
  ``annotations.parquet`` (int32 rings per row, -1 where the row has no polygon), ``polygon_rings.parquet``
  (``length``: values per ring) and ``polygon_xy.parquet`` (``xy``: every ring's x, y values in order).
- ``polygon``: ``list<list<float64>>``, null where no polygon (what maslow wrote before ``ragged``; still read).

Files are written deterministically (same dataset, same pyarrow: same bytes), so a version can be
identified by a content hash.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from maslow.core import masks as M
from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.polygons import Polygons, offsets
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.errors import FormatError, InvalidDatasetError
from maslow.io._coco_columns import obj_column
from maslow.io._coco_stream import no_gc
from maslow.io._common import ExportReport
from maslow.io._parquet_header import OBJ_KINDS, check_columns, check_header, check_spec
from maslow.io.registry import Progress, Ticks, warn_issues

__all__ = ["parse", "read_parquet", "write", "write_parquet"]

FORMAT = "maslow-parquet"
VERSION = 1
_HEADER = "dataset.json"
_RINGS, _XY = "polygon_rings.parquet", "polygon_xy.parquet"
#: pyarrow's cap on the rows of a row group (``ParquetWriter.write_table``: a larger row_group_size is cut to it)
_MAX_GROUP = 64 * 1024 * 1024
COMPRESSIONS = ("zstd", "snappy", "gzip", "brotli", "lz4", "lz4_raw", "none")  # pyarrow's codecs (any case)
_ARROW = {"str": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "bytes": pa.binary()}


# -- writing -----------------------------------------------------------------------------------------
def write(ds: Dataset, dst: Path, *, compression: str = "zstd", row_group_size: int = 1 << 17,
          root_base: str = "folder", progress: Progress | None = None) -> ExportReport:
    """Write ``ds`` to the folder ``dst`` (replaced atomically), every column losslessly.

    Args:
        ds: the dataset.
        dst: the output folder (``dataset.json``, ``images.parquet``, ``annotations.parquet``).
        compression: Parquet compression codec, one of ``COMPRESSIONS`` (``zstd``, ``none``, ...).
        row_group_size: rows per Parquet row group, >= 1 (row groups are decoded in parallel).
        root_base: ``"folder"``: a relative ``ds.root`` (relative to the current folder) is stored relative to
            ``dst``; ``"as-is"``: stored as it is (a workspace snapshot, whose roots are relative to the workspace).
        progress: called as ``progress(done, total)`` over the Parquet row groups written (of the images, the
            annotations and the polygons' tables; ``registry.Ticks``). The files are the same with or without it.

    Returns:
        ExportReport (nothing is ever lost).

    Raises:
        FormatError: an object column holds values that are neither JSON nor bytes (e.g. numpy arrays); an option
            out of its range (``compression``, ``row_group_size``, ``root_base``).

    Example:
        >>> import tempfile, maslow.sample
        >>> from maslow.io.parquet import read_parquet, write_parquet
        >>> ds = maslow.sample.shapes(4)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = write_parquet(ds, f"{tmp}/shapes")
        ...     read_parquet(f"{tmp}/shapes").n_annotations == ds.n_annotations
        True
    """
    dst = Path(dst)
    if root_base not in ("folder", "as-is"):
        raise FormatError(f"root_base must be 'folder' or 'as-is', got {root_base!r}", path=dst, field="root_base")
    if not isinstance(compression, str) or compression.lower() not in COMPRESSIONS:
        raise FormatError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}", path=dst,
                          field="compression")
    root: dict[str, Any] = {"root": None if ds.root is None else str(ds.root)}
    if ds.root is not None and not ds.root.is_absolute() and root_base == "folder":
        root = {"root": os.path.relpath(ds.root.absolute(), dst.absolute()), "root_base": "folder"}
    if isinstance(row_group_size, bool) or not isinstance(row_group_size, int | np.integer) or row_group_size < 1:
        raise FormatError(f"row_group_size must be an integer >= 1, got {row_group_size!r}", path=dst,
                          field="row_group_size")
    poly, group = ds.annotations.polygon, min(int(row_group_size), _MAX_GROUP)
    parts = [("images", ds.n_images, group), ("annotations", ds.n_annotations, group)]
    if poly is not None:
        parts += [(_RINGS[:-8], len(poly.ring_offsets) - 1, 1 << 20), (_XY[:-8], len(poly.xy), 1 << 20)]
    tick = Ticks(progress, sum(max(1, -(-n // g)) for _, n, g in parts))  # an empty table: one empty row group
    with no_gc():
        img_cols, img_spec = _images_columns(ds.images)
        ann_cols, ann_spec = _annotation_columns(ds.annotations)
        header = {
            "format": FORMAT, "version": VERSION, **root,
            "n_images": ds.n_images, "n_annotations": ds.n_annotations, "schema": ds.schema.to_dict(),
            "images": img_spec, "annotations": ann_spec, **({"info": dict(ds.info)} if ds.info else {}),
        }
        try:
            text = (json.dumps(header, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        except UnicodeEncodeError as e:
            raise FormatError(f"the schema and root must be text that UTF-8 can encode: {e}", path=dst) from None
        except (TypeError, ValueError) as e:  # the schema and specs are JSON by construction: info is not
            raise FormatError(f"must hold JSON values only: {e}", path=dst, field="info") from None
        columns = [img_cols, ann_cols]
        if poly is not None:
            columns += [{"length": pa.array(np.diff(poly.ring_offsets))}, {"xy": pa.array(poly.xy)}]
        with atomic_dir(dst) as tmp:
            (tmp / _HEADER).write_bytes(text)
            done = 0
            for (name, n, g), cols in zip(parts, columns, strict=True):
                table = pa.table(cols) if cols else pa.table({"_": pa.nulls(n)})
                done = _write_table(table, tmp / f"{name}.parquet", g, compression, tick, done)
    tick.end()
    return ExportReport(path=str(dst), format="parquet", n_images=ds.n_images, n_annotations=ds.n_annotations)


write_parquet = write


def _write_table(table: pa.Table, path: Path, group: int, compression: str, tick: Ticks, done: int) -> int:
    """``pq.write_table(table, path, row_group_size=group, ...)``, the same bytes, written a row group at a time
    (cut as pyarrow's ``FileWriter::WriteTable`` cuts them; an empty table: one empty row group), ticking ``done``
    and the row groups written so far; returns that count."""
    # page checksums: a damaged page raises on reading instead of decoding to other values
    with pq.ParquetWriter(path, table.schema, compression=compression, write_statistics=False,
                          write_page_checksum=True) as writer:
        for start in range(0, max(table.num_rows, 1), group):
            writer.write_table(table.slice(start, group), row_group_size=group)
            done += 1
            tick(done)
    return done


def _images_columns(im: Images) -> tuple[dict[str, pa.Array], list[dict[str, Any]]]:
    cols: dict[str, pa.Array] = {}
    spec: list[dict[str, Any]] = []
    for name in ("path", "width", "height", "split"):
        _put(cols, spec, name, name, getattr(im, name))
    for k, v in im.extra.items():
        _put(cols, spec, f"extra:{k}", "extra", v, key=k)
    return cols, spec


def _annotation_columns(a: Annotations) -> tuple[dict[str, pa.Array], list[dict[str, Any]]]:
    cols: dict[str, pa.Array] = {}
    spec: list[dict[str, Any]] = []
    for f in fields(a):
        value = getattr(a, f.name)
        if value is None:
            continue
        if f.name == "mask":
            size, counts = _mask_arrays(value)
            cols["mask.size"], cols["mask.counts"] = size, counts
            spec.append({"field": "mask", "kind": "mask", "column": "mask"})
        elif f.name == "polygon":
            cols["polygon.rings"] = pa.array(np.where(value.null, -1, value.n_rings).astype(np.int32))
            spec.append({"field": "polygon", "kind": "ragged", "column": "polygon.rings"})
        elif f.name in ("attributes", "extra"):
            prefix = "attr" if f.name == "attributes" else "extra"
            for k, v in value.items():
                _put(cols, spec, f"{prefix}:{k}", f.name, v, key=k)
        else:
            _put(cols, spec, f.name, f.name, value)
    return cols, spec


def _put(cols: dict[str, pa.Array], spec: list[dict[str, Any]], column: str, field: str, arr: np.ndarray,
         key: str | None = None) -> None:
    entry: dict[str, Any] = {"field": field, "column": column}
    if key is not None:
        entry["key"] = key
    if arr.dtype == object:
        kind, data = _object_array(arr, column)
        entry["kind"] = kind
    else:
        entry.update(kind="numpy", dtype=arr.dtype.str, shape=list(arr.shape[1:]))
        data = _numpy_array(arr, column)
    spec.append(entry)
    if data is not None:
        cols[column] = data


def _numpy_array(arr: np.ndarray, column: str) -> pa.Array | None:
    width = int(np.prod(arr.shape[1:], dtype=np.int64)) if arr.ndim > 1 else 1
    if width == 0:
        return None
    flat = np.ascontiguousarray(arr).reshape(-1)
    try:
        # fixed-width strings as Python values: pyarrow would cut each numpy value at its first NUL
        values = pa.array(flat.tolist(), type=pa.binary() if arr.dtype.kind == "S" else pa.string()) \
            if arr.dtype.kind in "SU" else pa.array(flat)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise FormatError(f"column {column!r} of dtype {arr.dtype} can't be stored in Parquet: {e}") from None
    return values if arr.ndim == 1 else pa.FixedSizeListArray.from_arrays(values, width)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _object_array(arr: np.ndarray, column: str) -> tuple[str, pa.Array]:
    if arr.ndim != 1:
        raise FormatError(f"column {column!r} of Python objects must be 1-D, got shape {arr.shape}; store the "
                          "values as lists (a 1-D object column) or as a numeric column")
    vals = [_plain(v) for v in arr.tolist()]
    types = set(map(type, vals)) - {type(None)}
    try:
        if not types:
            return "null", pa.nulls(len(vals))
        if len(types) == 1:
            kind = OBJ_KINDS.get(next(iter(types)))
            if kind is not None and not (kind == "int" and any(v is not None and not -(2**63) <= v < 2**63
                                                               for v in vals)):
                return kind, pa.array(vals, type=_ARROW[kind])
        text = [None if v is None else _json_text(v) for v in vals]
        return "json", pa.array(text, type=pa.string())
    except (TypeError, ValueError) as e:  # UnicodeEncodeError (a lone surrogate) is a ValueError
        raise FormatError(f"column {column!r} holds values that are not JSON ({e}); convert them to JSON values "
                          "(lists, dicts with str keys, numbers, strings) or to a numeric column") from None


def _json_text(v: Any) -> str:
    """``v`` as JSON text; dict keys must be str (json.dumps would turn 1, True or None keys into text)."""
    text = json.dumps(v, ensure_ascii=False)  # first: refuses cycles and values that are not JSON
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            key = next((k for k in x if not isinstance(k, str)), "")
            if not isinstance(key, str):
                raise TypeError(f"dict keys must be str, got {key!r}")
            stack.extend(x.values())
        elif isinstance(x, list | tuple):
            stack.extend(x)
    return text


def _mask_arrays(col: np.ndarray) -> tuple[pa.Array, pa.Array]:
    n = len(col)
    size = np.zeros((n, 2), np.int64)
    counts: list[bytes | None] = [None] * n
    for r, rle in enumerate(col.tolist()):
        if rle is None:
            continue
        c = M.compress(rle)
        size[r] = c["size"]
        counts[r] = c["counts"]
    # size is never null ([0, 0] under a null mask; counts carries the nullness): pyarrow 25 can't read back a
    # fixed-size list column with nulls from Parquet
    size_arr = pa.FixedSizeListArray.from_arrays(pa.array(size.reshape(-1)), 2)
    return size_arr, pa.array(counts, type=pa.binary())


# -- reading -----------------------------------------------------------------------------------------
def parse(src: Path, *, images_root: Path | None = None, strict: bool = False) -> tuple[Dataset, Report]:
    """Read a folder written by ``write_parquet``.

    Args:
        src: the folder.
        images_root: overrides the stored ``root``.
        strict: accepted for the common reader signature (the format has nothing to report).

    Raises:
        FormatError: a file is missing or corrupt, or the folder is not maslow Parquet.
    """
    src = Path(src)
    head_path = src / _HEADER
    try:
        header = json.loads(head_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"must be a maslow Parquet folder with {_HEADER}, which is missing", path=src) from None
    except (OSError, ValueError) as e:
        raise FormatError(f"unreadable header: {e}", path=head_path) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FormatError(f"format must be {FORMAT!r}", path=head_path, field="format")
    if header.get("version") != VERSION:
        raise FormatError(f"version must be {VERSION}, got {header.get('version')!r} (written by another maslow)",
                          path=head_path, field="version")
    check_header(header, head_path)
    try:
        schema = LabelSchema.from_dict(header["schema"])
        n_img, n_ann = int(header["n_images"]), int(header["n_annotations"])
        img_spec, ann_spec = list(header["images"]), list(header["annotations"])
        info = header.get("info", {})
        if not isinstance(info, dict):
            raise TypeError(f"info must be an object, got {type(info).__name__}")
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"malformed header ({type(e).__name__}: {e})", path=head_path) from None
    check_spec(img_spec, Images, "images", head_path)
    check_spec(ann_spec, Annotations, "annotations", head_path)
    with no_gc(), ThreadPoolExecutor(1) as pool:
        ragged = any(e.get("kind") == "ragged" for e in ann_spec)
        flat = pool.submit(lambda: (_flat(src / _RINGS, "length", np.int64), _flat(src / _XY, "xy", np.float64))) \
            if ragged else None  # read while the tables decode
        images = _build(Images, _load(src / "images.parquet", img_spec, n_img), src / "images.parquet")
        cols = _load(src / "annotations.parquet", ann_spec, n_ann)
        if flat is not None:
            cols["polygon"] = _polygons(cols["polygon"], *flat.result(), src)
        annotations = _build(Annotations, cols, src / "annotations.parquet")
    root = Path(images_root) if images_root is not None else (None if header.get("root") is None
                                                               else Path(header["root"]))
    if images_root is None and root is not None and header.get("root_base") == "folder":
        # stored relative to the folder (see the module docstring); given back relative to the current folder, as
        # it was written when neither moved
        root = Path(os.path.relpath(os.path.normpath(os.path.join(os.path.abspath(src), root))))
    try:
        return Dataset(schema=schema, images=images, annotations=annotations, root=root, info=info), Report(())
    except InvalidDatasetError as err:
        raise FormatError(f"tables disagree with the schema: {err}", path=src) from None


def _build(table: Any, cols: dict[str, Any], path: Path) -> Any:
    try:
        return table(**cols)
    except InvalidDatasetError as err:
        raise FormatError(f"columns are not a valid table: {err}", path=path) from None


def read_parquet(src: str | Path, **options: Any) -> Dataset:
    """Read a maslow Parquet folder (see ``write_parquet``)."""
    return warn_issues(*parse(Path(src), **options), source=src)


def _load(path: Path, spec: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Read one table and decode its columns: Arrow reads row group i + 1 (without the GIL) while Python
    decodes row group i, so the two overlap. Each row group is copied into its slice of the output columns
    (allocated once, at the first row group): no concatenation, so no second copy of the table in memory."""
    cols: list[np.ndarray | None] = [None] * len(spec)
    rows = 0

    def put(table: pa.Table) -> None:
        nonlocal rows
        values = _decode(table, spec, path)
        k = int(table.num_rows)
        if rows + k > n:
            raise FormatError(f"must have {n} rows (dataset.json), got more", path=path)
        for j, v in enumerate(values):
            if cols[j] is None:
                cols[j] = v if k == n else np.empty((n, *v.shape[1:]), v.dtype)
            if k != n:
                cols[j][rows:rows + k] = v  # type: ignore[index]
        rows += k

    f = None
    try:
        # not read_table: no dataset API; strings come as Arrow dictionaries (Parquet stores them so): no re-hashing
        f = _open(path, [e["column"] for e in spec if e["kind"] in ("str", "bytes")])
        check_columns(f.schema_arrow, spec, path)  # before decoding: a column dropped or converted is refused
        groups = f.num_row_groups
        if groups <= 1:
            put(f.read())
        else:
            with ThreadPoolExecutor(1) as pool:
                ahead = pool.submit(f.read_row_group, 0)
                for i in range(groups):
                    table = ahead.result()
                    if i + 1 < groups:  # read one row group ahead, no more: bounded memory
                        ahead = pool.submit(f.read_row_group, i + 1)
                    put(table)
                    del table
    except FormatError:
        raise
    except FileNotFoundError:
        raise FormatError("file not found", path=path) from None
    except (pa.ArrowException, OSError, KeyError, IndexError, ValueError) as err:
        hint = ""
        if "Expected all lists to be of size=2" in str(err):
            hint = (" (a folder written before maslow stored mask sizes without nulls; pyarrow >= 25 can't read "
                    "those, apache/arrow#35692: read it with pyarrow < 25 and write it again)")
        raise FormatError(f"unreadable Parquet: {type(err).__name__}: {err}{hint}", path=path,
                          field=_culprit(f)) from None
    if rows != n:
        raise FormatError(f"must have {n} rows (dataset.json), got {rows}", path=path)
    out: dict[str, Any] = {}
    for entry, col in zip(spec, cols, strict=True):
        value = _empty(entry, n) if col is None else col
        if entry["field"] in ("attributes", "extra"):
            out.setdefault(entry["field"], {})[entry["key"]] = value
        else:
            out[entry["field"]] = value
    return out


def _open(path: Path, read_dictionary: list[str] | None = None) -> pq.ParquetFile:
    """``path`` opened with page checksums verified; a column the header names but the file lacks is refused."""
    f = pq.ParquetFile(path, page_checksum_verification=True)
    have = set(f.schema_arrow.names)
    missing = [c for c in read_dictionary or () if c not in have]
    if missing:
        raise FormatError("column is missing (dataset.json names it)", path=path, field=missing[0])
    return pq.ParquetFile(path, read_dictionary=read_dictionary, page_checksum_verification=True) \
        if read_dictionary else f


def _culprit(f: pq.ParquetFile | None) -> str | None:
    """The first column of ``f`` that can't be read (the error path only: one column at a time)."""
    if f is None:
        return None
    try:
        names = f.schema_arrow.names
        groups = f.num_row_groups
    except Exception:  # noqa: BLE001 - a damaged footer: no column to name
        return None
    for name in names:
        try:
            for i in range(groups):
                f.read_row_group(i, columns=[name])
        except Exception:  # noqa: BLE001 - any failure names the column
            return str(name)
    return None


def _empty(e: dict[str, Any], n: int) -> np.ndarray:
    if e["kind"] == "numpy":
        return np.zeros((n, *e["shape"]), np.dtype(e["dtype"]))
    return np.full(n, None, object)


def _decode(table: pa.Table, spec: list[dict[str, Any]], path: Path) -> list[np.ndarray]:
    """The decoded columns of ``table`` (a row group), in ``spec`` order."""
    table = table.combine_chunks() if any(c.num_chunks > 1 for c in table.columns) else table
    n = int(table.num_rows)
    out = []
    for e in spec:
        try:
            kind, column = e["kind"], e["column"]
            if n == 0:
                value = _empty(e, 0) if kind != "ragged" else np.zeros(0, np.int32)
            elif kind == "numpy":
                value = _numpy_column(table, column, np.dtype(e["dtype"]), tuple(e["shape"]), n)
            elif kind == "mask":
                value = _mask_column(_col(table, "mask.size"), _col(table, "mask.counts"))
            elif kind == "polygon":
                value = _polygon_column(_col(table, column))
            elif kind == "ragged":
                value = _numpy_column(table, column, np.dtype(np.int32), (), n)
            else:
                value = _object_column(_col(table, column), kind)
        except (KeyError, TypeError, ValueError, pa.ArrowException) as err:
            raise FormatError(f"column {e.get('column')!r} can't be decoded ({type(err).__name__}: {err})",
                              path=path) from None
        out.append(value)
    return out


def _col(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).chunk(0)


def _numpy_column(table: pa.Table, column: str, dtype: np.dtype[Any], shape: tuple[int, ...], n: int) -> np.ndarray:
    if shape and int(np.prod(shape)) == 0:
        return np.zeros((n, *shape), dtype)
    arr = _col(table, column)
    values = (arr.flatten() if shape else arr).to_numpy(zero_copy_only=False)
    if dtype.kind in "US":
        values = values.astype(dtype)
    return np.asarray(values, dtype=dtype).reshape((n, *shape))


def _object_column(arr: pa.Array, kind: str) -> np.ndarray:
    if kind == "null":
        return np.full(len(arr), None, object)
    want = pa.string() if kind == "json" else _ARROW.get(kind)
    got = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if want is not None and got != want:
        raise ValueError(f"a {kind!r} column must be stored as {want}, got {got}")
    if kind in ("str", "bytes"):
        enc = arr if pa.types.is_dictionary(arr.type) else arr.dictionary_encode()
        uniq = obj_column([*enc.dictionary.to_pylist(), None])
        indices = enc.indices.fill_null(len(enc.dictionary)) if enc.indices.null_count else enc.indices
        out: np.ndarray = uniq[np.asarray(indices.to_numpy(zero_copy_only=False), np.int64)]
        return out
    vals = arr.to_pylist()
    if kind == "json":
        vals = [None if v is None else json.loads(v) for v in vals]
    elif kind not in ("bool", "int", "float"):
        raise ValueError(f"unknown column kind {kind!r}")
    return obj_column(vals)


def _mask_column(size: pa.Array, counts: pa.Array) -> np.ndarray:
    out = np.full(len(counts), None, object)
    rows = np.flatnonzero(~counts.is_null().to_numpy(zero_copy_only=False))
    if rows.size:
        child = size.values.fill_null(0) if size.values.null_count else size.values  # nulls under null masks
        hw = np.asarray(child.to_numpy(zero_copy_only=False), np.int64).reshape(-1, 2)[rows].tolist()
        cnt = counts.to_numpy(zero_copy_only=False)[rows].tolist()
        for r, (h, w), c in zip(rows.tolist(), hw, cnt, strict=True):
            out[r] = {"size": [h, w], "counts": c}
    return out


def _flat(path: Path, column: str, dtype: type[np.generic]) -> np.ndarray:
    """One plain numeric column of a side file, as one numpy array (row groups copied into it one by one)."""
    try:
        f = _open(path)
        if column not in f.schema_arrow.names:
            raise FormatError("column is missing", path=path, field=column)
        out = np.empty(f.metadata.num_rows, dtype)
        at = 0
        for i in range(f.num_row_groups):
            chunk = f.read_row_group(i, columns=[column]).column(0).combine_chunks()
            if at + len(chunk) > len(out):
                raise FormatError("row groups must hold the rows of the footer, got more", path=path, field=column)
            if chunk.null_count:
                raise FormatError("must have no nulls", path=path, field=column)
            out[at:at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
            at += len(chunk)
    except FormatError:
        raise
    except FileNotFoundError:
        raise FormatError("file not found (the polygons of dataset.json)", path=path) from None
    except (pa.ArrowException, OSError, KeyError, IndexError, ValueError) as err:
        raise FormatError(f"unreadable Parquet: {type(err).__name__}: {err}", path=path, field=column) from None
    return out


def _polygons(rings: np.ndarray, lengths: np.ndarray, xy: np.ndarray, src: Path) -> Polygons:
    null = rings < 0
    counts = np.where(null, 0, rings).astype(np.int64)
    try:
        return Polygons(xy, offsets(lengths), offsets(counts), null)
    except InvalidDatasetError as err:
        raise FormatError(f"polygon files disagree: {err} ({len(lengths)} rings, {len(xy)} values)",
                          path=src / _RINGS) from None




def _polygon_column(arr: pa.Array) -> np.ndarray:
    """Polygons as lists of ring arrays; Arrow makes the ring arrays (zero-copy views, in C: the hot loop of a
    load), Python only the lists around them."""
    n = len(arr)
    rings = arr.values.to_numpy(zero_copy_only=False).tolist()
    null = arr.is_null().to_numpy(zero_copy_only=False)
    outer = arr.offsets.to_numpy().astype(np.int64)
    if n and not null.any() and bool(np.all(np.diff(outer) == 1)):  # one ring each: the common case
        return obj_column([[r] for r in rings[outer[0]:outer[-1]]])
    out: list[Any] = [None] * n
    lo, hi = outer[:-1].tolist(), outer[1:].tolist()
    for i in np.flatnonzero(~null).tolist():
        out[i] = rings[lo[i]:hi[i]]
    return obj_column(out)
