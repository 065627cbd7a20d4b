"""``diff_datasets`` when the two versions hold different optional columns: a column one version lacks compares
as a column of unset values (audit: deleting the only RLE annotation of a COCO file made all 77 annotations
"changed", 76 added and 77 removed, because the reader then drops the mask column). Also the per-value hashing of
attributes and sources (grouped by value, not a Python loop per row) against a brute-force reference."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.core.types import is_unset
from maslow.sample import shapes
from maslow.store.diff import diff_datasets

_FIELDS = ("image", "label", "box", "score", "mask", "polygon", "keypoints", "iscrowd", "attributes", "annotator",
           "source", "extra")


def _with(ds: Dataset, **columns: Any) -> Dataset:
    a = ds.annotations
    return ds.replace(annotations=Annotations(**{**{f: getattr(a, f) for f in _FIELDS}, **columns}))


def _counts(d: Any) -> tuple[int, int, int]:
    return d.n_added, d.n_removed, len(d.images_changed)


@pytest.fixture
def ds() -> Dataset:
    return shapes(10, seed=0)


def _unset_columns(n: int, k: int) -> dict[str, Any]:
    """Each optional column filled with its "unset" value."""
    return {"score": np.full(n, np.nan), "annotator": np.array([""] * n, object),
            "mask": np.full(n, None, object), "polygon": [None] * n, "keypoints": np.full((n, k, 3), np.nan)}


@pytest.mark.parametrize("column", ["score", "annotator", "mask", "polygon", "keypoints"])
def test_a_missing_column_equals_a_column_of_unset_values(ds: Dataset, column: str) -> None:
    n = ds.n_annotations
    bare = _with(ds, **{column: None})
    filled = _with(ds, **{column: _unset_columns(n, 3)[column]})
    for old, new in ((bare, filled), (filled, bare)):
        d = diff_datasets(old, new)
        assert d.unchanged and _counts(d) == (0, 0, 0), column  # used to be n added, n removed


@pytest.mark.parametrize("column", ["score", "annotator", "mask", "polygon", "keypoints"])
def test_removing_the_only_annotation_with_a_column_changes_one_image(ds: Dataset, column: str) -> None:
    """As a COCO reader drops the mask column when no RLE is left: the last masked (scored, keypointed, ...)
    annotation removed is one removal, not every annotation changed."""
    n = ds.n_annotations
    values = _unset_columns(n, 3)[column]
    first = {"score": 0.5, "annotator": "ann", "mask": {"size": [4, 4], "counts": b"04"},
             "polygon": [np.array([0.0, 0, 4, 0, 4, 4])], "keypoints": np.ones((3, 3))}[column]
    if isinstance(values, list):
        values[0] = first
    else:
        values = values.copy()
        values[0] = first
    old = _with(ds, **{column: values})
    keep = np.arange(1, n)
    new = _with(ds.select(keep), **{column: None})
    d = diff_datasets(old, new)
    assert _counts(d) == (0, 1, 1), column  # used to be (n - 1, n, every image)
    assert d.images_changed.tolist() == [str(ds.images.path[ds.annotations.image[0]])]
    back = diff_datasets(new, old)
    assert _counts(back) == (1, 0, 1)


def test_a_real_value_still_differs_from_a_missing_column(ds: Dataset) -> None:
    n = ds.n_annotations
    scores = np.full(n, np.nan)
    scores[[2, 5]] = 0.9
    d = diff_datasets(_with(ds, score=None), _with(ds, score=scores))
    assert _counts(d)[:2] == (2, 2)
    kp = np.full((n, 2, 3), np.nan)
    kp[3, 0] = (1.0, 2.0, 2.0)  # one keypoint set: not an unset row
    assert _counts(diff_datasets(_with(ds, keypoints=None), _with(ds, keypoints=kp)))[:2] == (1, 1)
    ann = np.array([""] * n, object)
    ann[4] = "bob"
    assert _counts(diff_datasets(_with(ds, annotator=None), _with(ds, annotator=ann)))[:2] == (1, 1)


def _reference(old: Dataset, new: Dataset, name: str) -> tuple[int, int]:
    """Brute force: annotations as (image path, class, box, attribute value with its type) multisets."""
    def keys(x: Dataset) -> Counter[Any]:
        a = x.annotations
        assert a.box is not None and a.source is not None
        col = a.attributes.get(name, np.full(len(a), None, object))
        out: Counter[Any] = Counter()
        for r in range(len(a)):
            v = None if is_unset(col[r]) else (type(col[r]).__name__, str(col[r]))
            out[(str(x.images.path[a.image[r]]), int(a.label[r]), tuple(a.box[r].tolist()), v, a.source[r])] += 1
        return out
    k_old, k_new = keys(old), keys(new)
    return sum((k_new - k_old).values()), sum((k_old - k_new).values())


@pytest.mark.parametrize("seed", [0, 1])
def test_attribute_values_are_compared_with_their_type(seed: int) -> None:
    ds = shapes(30, seed=seed)
    n = ds.n_annotations
    rng = np.random.default_rng(seed)
    pool = [True, 1, 1.0, "1", None, float("nan"), False, 0, "x", 2]
    old_vals = np.empty(n, object)
    old_vals[:] = [pool[i] for i in rng.integers(0, len(pool), n)]
    new_vals = old_vals.copy()
    for r in rng.choice(n, n // 4, replace=False):
        new_vals[r] = pool[rng.integers(0, len(pool))]  # True -> 1 is a change; None -> NaN is not
    sources = np.array(["human"] * n, object)
    sources[rng.choice(n, 5, replace=False)] = "model"
    old = _with(ds, attributes={"v": old_vals}, source=sources)
    new = _with(ds, attributes={"v": new_vals})
    d = diff_datasets(old, new)
    assert (d.n_added, d.n_removed) == _reference(old, new, "v")
    assert d.n_added > 0


def test_unhashable_attribute_values_are_compared(ds: Dataset) -> None:
    n = ds.n_annotations
    vals = np.empty(n, object)
    vals[:] = [[1, 2]] * n
    other = vals.copy()
    other[1] = [1, 3]
    other[2] = {"k": 1}
    d = diff_datasets(_with(ds, attributes={"v": vals}), _with(ds, attributes={"v": other}))
    assert (d.n_added, d.n_removed) == (2, 2)
    assert diff_datasets(_with(ds, attributes={"v": vals}), _with(ds, attributes={"v": vals.copy()})).unchanged
