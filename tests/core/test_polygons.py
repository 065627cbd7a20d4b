"""The flat polygon column behaves like the list-of-rings object column it replaces."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow.core.polygons import Polygons
from maslow.core.tables import Annotations
from maslow.errors import InvalidDatasetError

ring = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=9)
row = st.one_of(st.none(), st.lists(ring, min_size=0, max_size=3))
rows_st = st.lists(row, min_size=0, max_size=12)


def as_lists(rows: list[Any]) -> list[Any]:
    return [None if r is None else [np.asarray(x, float).tolist() for x in r] for r in rows]


@given(rows_st)
@settings(max_examples=150, deadline=None)
def test_rows_come_back_as_given(rows: list[Any]) -> None:
    p = Polygons.from_rows(rows)
    assert len(p) == len(rows)
    assert as_lists(p.tolist()) == as_lists(rows)
    assert as_lists(list(p)) == as_lists(rows)
    assert [as_lists([p[i]])[0] for i in range(len(rows))] == as_lists(rows)
    assert p.null.tolist() == [r is None for r in rows]
    assert p.present.tolist() == [r is not None and len(r) > 0 for r in rows]
    assert p.n_vertices().tolist() == [0 if r is None else sum(len(x) // 2 for x in r) for r in rows]


@given(rows_st, st.data())
@settings(max_examples=150, deadline=None)
def test_indexing_matches_list_indexing(rows: list[Any], data: st.DataObject) -> None:
    p = Polygons.from_rows(rows)
    n = len(rows)
    idx = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=15)) if n else []
    assert as_lists(p[np.asarray(idx, np.int64)].tolist()) == as_lists([rows[i] for i in idx])
    mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    assert as_lists(p[mask].tolist()) == as_lists([r for r, m in zip(rows, mask, strict=True) if m])
    assert as_lists(p[1:-1].tolist()) == as_lists(rows[1:-1])
    cleared = p.with_none(mask)
    assert as_lists(cleared.tolist()) == as_lists([None if m else r for r, m in zip(rows, mask, strict=True)])
    both = Polygons.concat([p, Polygons.none(2), p])
    assert as_lists(both.tolist()) == as_lists([*rows, None, None, *rows])
    assert both.take(np.arange(n)).equals(p)


def test_rows_are_read_only_views_of_one_buffer() -> None:
    p = Polygons.from_rows([[[0, 0, 1, 0, 1, 1]], None, [[2, 2, 3, 3, 4, 2], [5, 5, 6, 6, 7, 5]]])
    r = p[2]
    assert r is not None and len(r) == 2
    assert np.shares_memory(r[1], p.xy)
    with pytest.raises(ValueError):
        r[0][0] = 9.0
    with pytest.raises(AttributeError):
        p.xy = np.zeros(3)  # type: ignore[misc]
    assert p[-1] is not None and p[-2] is None
    with pytest.raises(IndexError):
        p[3]


def test_pickles_and_copies() -> None:
    p = Polygons.from_rows([None, [[1, 2, 3, 4, 5, 6]], []])
    for q in (pickle.loads(pickle.dumps(p)), copy.deepcopy(p), copy.copy(p)):
        assert q.equals(p) and q.tolist()[0] is None and q.tolist()[2] == []


def test_annotations_take_rows_or_the_flat_column() -> None:
    rows = [[[0, 0, 4, 0, 4, 4]], None]
    a = Annotations(image=np.array([0, 0]), label=np.array([0, 1]), polygon=rows)
    assert isinstance(a.polygon, Polygons) and a.polygon[1] is None
    b = Annotations(image=np.array([0, 0]), label=np.array([0, 1]), polygon=a.polygon)
    assert b.polygon is a.polygon
    assert a.take(np.array([1, 0])).polygon.tolist()[0] is None  # type: ignore[union-attr]
    with pytest.raises(InvalidDatasetError, match="polygon: length must be 2"):
        Annotations(image=np.array([0, 0]), label=np.array([0, 1]), polygon=rows[:1])
    with pytest.raises(InvalidDatasetError, match="polygon row 1: must be None or a list of rings"):
        Annotations(image=np.array([0, 0]), label=np.array([0, 1]), polygon=[None, "0 0 1 1"])
    with pytest.raises(InvalidDatasetError, match="polygon row 0: rings must be flat numbers"):
        Annotations(image=np.array([0]), label=np.array([0]), polygon=[[["a", "b"]]])


def test_inconsistent_offsets_are_refused() -> None:
    with pytest.raises(InvalidDatasetError, match="ring_offsets must rise from 0 to 4"):
        Polygons(np.zeros(4), [0, 6], [0, 1])
    with pytest.raises(InvalidDatasetError, match="row_offsets must rise"):
        Polygons(np.zeros(4), [0, 4], [0, 2])
    with pytest.raises(InvalidDatasetError, match="row 0: a None row can't hold rings"):
        Polygons(np.zeros(4), [0, 4], [0, 1], [True])
