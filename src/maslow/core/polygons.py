"""The polygon column: a ragged array of polygons, stored flat.

Glossary:
    ring: one closed outline, a flat float64 array ``x0, y0, x1, y1, ...`` in absolute pixels (COCO's polygon).
    row: the polygon of one annotation, a list of rings (an object in several parts has several rings), or None
        where the annotation has no polygon. ``[]`` (no ring) and None are different rows.
    layout: every ring's values one after the other in ``xy``; ring ``k`` is ``xy[ring_offsets[k]:ring_offsets
        [k + 1]]``, and row ``r`` holds rings ``row_offsets[r]`` to ``row_offsets[r + 1] - 1``. Like Arrow's
        ``list<list<double>>``: a million polygons are three arrays, not two million Python objects, so a load
        makes no object per annotation and a row is built only when it is asked for.

``Polygons`` behaves like the (n,) object column it replaces: ``len``, iteration, ``col[r]`` (a list of read-only
ring arrays, or None), ``col[index_array]`` / ``col[bool_mask]`` / ``col[slice]`` (a ``Polygons``) and
``tolist()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from maslow.core.types import BoolArray, FloatArray, IntArray, frozen
from maslow.errors import InvalidDatasetError

Row = list[FloatArray] | None


def _ranges(starts: IntArray, lengths: IntArray) -> IntArray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])``, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    step = np.ones(total, np.int64)
    ends = np.cumsum(lengths)
    step[0] = starts[0]
    step[ends[:-1]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    out: IntArray = np.cumsum(step)
    return out


class Polygons:
    """(n,) polygons, ragged and flat (see the module docstring). Immutable: operations return new columns."""

    __slots__ = ("null", "ring_offsets", "row_offsets", "xy")

    xy: FloatArray
    ring_offsets: IntArray
    row_offsets: IntArray
    null: BoolArray

    def __init__(self, xy: Any, ring_offsets: Any, row_offsets: Any, null: Any = None) -> None:
        """Wrap flat arrays (checked, not copied when already float64 / int64 / bool).

        Raises:
            InvalidDatasetError: offsets that do not start at 0, decrease, or overrun.
        """
        xy_ = np.asarray(xy, np.float64).reshape(-1)
        ring = np.asarray(ring_offsets, np.int64).reshape(-1)
        row = np.asarray(row_offsets, np.int64).reshape(-1)
        n = len(row) - 1
        if n < 0 or len(ring) < 1:
            raise InvalidDatasetError("annotations.polygon: offsets must hold at least one value (0)")
        for name, off, end in (("ring_offsets", ring, len(xy_)), ("row_offsets", row, len(ring) - 1)):
            if off[0] != 0 or off[-1] != end or (len(off) > 1 and bool(np.any(np.diff(off) < 0))):
                raise InvalidDatasetError(
                    f"annotations.polygon: {name} must rise from 0 to {end}, got {off[0]}..{off[-1]}")
        nul = np.zeros(n, bool) if null is None else np.asarray(null, bool).reshape(-1)
        if len(nul) != n:
            raise InvalidDatasetError(f"annotations.polygon: null must have {n} values, got {len(nul)}")
        if n and bool(np.any(nul & (row[1:] > row[:-1]))):
            r = int(np.flatnonzero(nul & (row[1:] > row[:-1]))[0])
            raise InvalidDatasetError(f"annotations.polygon row {r}: a None row can't hold rings")
        set_ = object.__setattr__
        set_(self, "xy", frozen(xy_))
        set_(self, "ring_offsets", frozen(ring))
        set_(self, "row_offsets", frozen(row))
        set_(self, "null", frozen(nul))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Polygons is immutable")

    def __reduce__(self) -> tuple[type[Polygons], tuple[Any, ...]]:  # pickle and copy (worker processes)
        return Polygons, (self.xy, self.ring_offsets, self.row_offsets, self.null)

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: Iterable[Any]) -> Polygons:
        """From rows as readers make them: None, or a sequence of rings (each a flat sequence of numbers).

        Raises:
            InvalidDatasetError: a row that is not None or a list of flat numeric rings (names the row).
        """
        if isinstance(rows, Polygons):
            return rows
        rings: list[FloatArray] = []
        counts: list[int] = []
        null: list[bool] = []
        for r, row in enumerate(rows):
            if row is None:
                counts.append(0)
                null.append(True)
                continue
            if isinstance(row, str | bytes | dict) or not hasattr(row, "__len__"):
                raise InvalidDatasetError(f"annotations.polygon row {r}: must be None or a list of rings, "
                                          f"got {type(row).__name__}")
            try:
                parts = [np.asarray(ring, np.float64).reshape(-1) for ring in row]
            except (TypeError, ValueError) as e:
                raise InvalidDatasetError(f"annotations.polygon row {r}: rings must be flat numbers ({e})") from None
            rings.extend(parts)
            counts.append(len(parts))
            null.append(False)
        lengths = np.fromiter((len(x) for x in rings), np.int64, count=len(rings))
        xy = np.concatenate(rings) if rings else np.zeros(0)
        return cls(xy, offsets(lengths), offsets(np.asarray(counts, np.int64)), np.asarray(null, bool))

    @classmethod
    def none(cls, n: int) -> Polygons:
        """``n`` rows without a polygon."""
        return cls(np.zeros(0), np.zeros(1, np.int64), np.zeros(n + 1, np.int64), np.ones(n, bool))

    @classmethod
    def concat(cls, parts: Sequence[Polygons]) -> Polygons:
        """The rows of ``parts``, one after the other."""
        if len(parts) == 1:
            return parts[0]
        xy = np.concatenate([p.xy for p in parts]) if parts else np.zeros(0)
        ring = offsets(np.concatenate([np.diff(p.ring_offsets) for p in parts]) if parts else np.zeros(0, np.int64))
        row = offsets(np.concatenate([np.diff(p.row_offsets) for p in parts]) if parts else np.zeros(0, np.int64))
        null = np.concatenate([p.null for p in parts]) if parts else np.zeros(0, bool)
        return cls(xy, ring, row, null)

    # -- reading ----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.null)

    @property
    def n_rings(self) -> IntArray:
        """(n,) rings per row (0 for None and for ``[]``)."""
        out: IntArray = np.diff(self.row_offsets)
        return out

    @property
    def present(self) -> BoolArray:
        """(n,) True where the row has at least one ring."""
        out: BoolArray = self.n_rings > 0
        return out

    def n_vertices(self) -> IntArray:
        """(n,) vertices per row (``sum(len(ring) // 2)``; 0 without a polygon)."""
        per_ring = np.diff(self.ring_offsets) // 2
        if not len(per_ring):
            return np.zeros(len(self), np.int64)
        sums = np.concatenate([[0], np.cumsum(per_ring)])
        out: IntArray = sums[self.row_offsets[1:]] - sums[self.row_offsets[:-1]]
        return out

    def row(self, r: int) -> Row:
        """Row ``r``: None, or a list of read-only ring views."""
        if self.null[r]:
            return None
        ro, xy = self.ring_offsets, self.xy
        return [xy[ro[k]:ro[k + 1]] for k in range(int(self.row_offsets[r]), int(self.row_offsets[r + 1]))]

    @overload
    def __getitem__(self, key: int | np.integer[Any]) -> Row: ...
    @overload
    def __getitem__(self, key: slice | np.ndarray | list[int]) -> Polygons: ...
    def __getitem__(self, key: Any) -> Row | Polygons:
        if isinstance(key, int | np.integer):
            n = len(self)
            r = int(key) + n if key < 0 else int(key)
            if not 0 <= r < n:
                raise IndexError(f"polygon row {key} out of range for {n} rows")
            return self.row(r)
        if isinstance(key, slice):
            return self.take(np.arange(len(self))[key])
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean index must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        return self.take(idx.astype(np.int64, copy=False))

    def __iter__(self) -> Iterator[Row]:
        return iter(self.tolist())

    def tolist(self) -> list[Row]:
        """Every row: None or a list of read-only ring views (one Python object per ring: use the flat arrays
        where a column is large)."""
        rings = np.split(self.xy, self.ring_offsets[1:-1]) if len(self.ring_offsets) > 1 else []
        bounds = self.row_offsets.tolist()
        return [None if nul else rings[bounds[r]:bounds[r + 1]] for r, nul in enumerate(self.null.tolist())]

    def take(self, idx: IntArray) -> Polygons:
        """Rows ``idx`` (an int index array), in that order."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"polygon rows out of range for {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        if len(idx) == n and bool(np.all(idx == np.arange(n))):
            return self
        counts = self.n_rings[idx]
        rings = _ranges(self.row_offsets[:-1][idx], counts)
        lengths = np.diff(self.ring_offsets)[rings]
        xy = self.xy[_ranges(self.ring_offsets[:-1][rings], lengths)]
        return Polygons(xy, offsets(lengths), offsets(counts), self.null[idx])

    def with_none(self, rows: BoolArray) -> Polygons:
        """A copy where ``rows`` (an (n,) bool mask) have no polygon."""
        rows = np.asarray(rows, bool)
        if not rows.any():
            return self
        keep = ~rows
        counts = np.where(keep, self.n_rings, 0)
        ring_keep = np.repeat(keep, self.n_rings)
        lengths = np.diff(self.ring_offsets)
        xy = self.xy[np.repeat(ring_keep, lengths)]
        return Polygons(xy, offsets(lengths[ring_keep]), offsets(counts), self.null | rows)

    def equals(self, other: Polygons) -> bool:
        """Same rows, value for value."""
        return bool(len(self) == len(other) and np.array_equal(self.null, other.null)
                    and np.array_equal(self.row_offsets, other.row_offsets)
                    and np.array_equal(self.ring_offsets, other.ring_offsets) and np.array_equal(self.xy, other.xy))

    def __repr__(self) -> str:
        return f"Polygons({len(self)} rows, {len(self.ring_offsets) - 1} rings, {len(self.xy) // 2} vertices)"


def offsets(lengths: IntArray) -> IntArray:
    """``[0, l0, l0 + l1, ...]``: where each of the pieces of ``lengths`` starts, and the end."""
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out
