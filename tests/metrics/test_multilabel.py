"""maslow.metrics multi-label scores against scikit-learn on seeded random indicator matrices (hypothesis too),
edge cases (empty label sets, labels never predicted or never present, no sample), tags and attributes datasets."""

from __future__ import annotations

import doctest
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

import maslow.metrics.multilabel
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError, SchemaError
from maslow.metrics import (
    MultilabelResult,
    hamming_loss,
    hamming_score,
    multilabel_scores,
    multilabel_scores_from_indicators,
    subset_accuracy_score,
)


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12


def check_against_sklearn(t: np.ndarray, p: np.ndarray) -> None:
    r = multilabel_scores_from_indicators(t, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert close(r.hamming_loss, skm.hamming_loss(t, p))
        assert close(r.subset_accuracy, skm.accuracy_score(t, p))
        assert close(r.hamming_score, skm.jaccard_score(t, p, average="samples", zero_division=1.0))
        for avg in ("micro", "macro", "weighted", "samples"):
            sk = skm.precision_recall_fscore_support(t, p, average=avg, zero_division=np.nan)
            for j, m in enumerate(("precision", "recall", "f1")):
                assert close(getattr(r, f"{m}_{avg}"), float(sk[j])), (m, avg)
        per = skm.precision_recall_fscore_support(t, p, average=None, zero_division=np.nan)
    np.testing.assert_allclose(r.precision_per_class, per[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.recall_per_class, per[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.f1_per_class, per[2], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(r.support_per_class, per[3])


@pytest.mark.parametrize("seed", range(10))
def test_random_indicators_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 50)), int(rng.integers(2, 8))  # sklearn reads one column as binary
    t = (rng.random((n, k)) < rng.uniform(0.1, 0.6)).astype(int)
    flip = rng.random((n, k)) < 0.2
    p = np.where(flip, 1 - t, t)
    check_against_sklearn(t, p)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int8, st.tuples(st.integers(1, 12), st.integers(2, 5)), elements=st.integers(0, 1)),
       st.integers(0, 2**32 - 1))
def test_hypothesis_indicators_equal_sklearn(t: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.where(rng.random(t.shape) < 0.3, 1 - t, t).astype(np.int8)
    check_against_sklearn(t, p)


EDGES = {
    "empty-rows": ([[0, 0], [1, 0], [0, 0]], [[0, 0], [1, 1], [0, 1]]),
    "label-never-predicted": ([[1, 1], [1, 0]], [[1, 0], [1, 0]]),
    "label-never-present": ([[1, 0], [1, 0]], [[1, 1], [0, 1]]),
    "all-empty": ([[0, 0, 0]], [[0, 0, 0]]),
    "perfect": ([[1, 0, 1], [0, 1, 0]], [[1, 0, 1], [0, 1, 0]]),
}


@pytest.mark.parametrize("case", list(EDGES), ids=list(EDGES))
def test_edge_cases_equal_sklearn(case: str) -> None:
    t, p = (np.array(v) for v in EDGES[case])
    check_against_sklearn(t, p)


def test_definitions() -> None:
    assert hamming_score([[0, 0]], [[0, 0]]) == 1.0  # empty-empty: the empty set is predicted exactly
    assert hamming_score([[1, 0], [0, 0]], [[0, 0], [0, 1]]) == 0.0
    assert hamming_loss([[1, 0]], [[1, 1]]) == 0.5 and subset_accuracy_score([[1, 0]], [[1, 1]]) == 0.0
    r = multilabel_scores_from_indicators([[0, 0]], [[0, 0]])
    assert math.isnan(r.precision_samples) and math.isnan(r.f1_macro) and r.hamming_score == 1.0
    none = multilabel_scores_from_indicators(np.zeros((0, 3)), np.zeros((0, 3)))
    assert none.n_samples == 0 and math.isnan(none.hamming_score) and math.isnan(none.hamming_loss)
    assert math.isnan(hamming_loss(np.zeros((2, 0)), np.zeros((2, 0))))
    with pytest.raises(ValueError, match=r"values must be 0 or 1, got 2 at \(0, 1\)"):
        hamming_loss([[0, 2]], [[0, 1]])
    with pytest.raises(ValueError, match="indicator matrix"):
        hamming_loss([0, 1], [0, 1])
    with pytest.raises(ValueError, match="shape must equal"):
        hamming_loss([[0, 1]], [[0, 1, 1]])


def test_result_is_frozen_and_serialisable() -> None:
    r = multilabel_scores_from_indicators([[1, 0], [0, 0]], [[1, 1], [0, 0]], class_names=["a", "b"])
    assert isinstance(r, MultilabelResult)
    with pytest.raises(AttributeError):
        r.hamming_score = 0.0  # type: ignore[misc]
    d = r.to_dict()
    assert d["per_class"]["recall"] == [1.0, None] and d["threshold"] is None
    assert r.to_pandas()["support"].tolist() == [1, 0]


def test_doctests() -> None:
    failures, tried = doctest.testmod(maslow.metrics.multilabel)
    assert tried > 0 and failures == 0


# -- Dataset level ----------------------------------------------------------------------------------------------


def tags(rows: list[tuple[int, str]], names: list[str], n_images: int, *, scores: list[float] | None = None,
         task: str = "multilabel") -> Dataset:
    images = Images(path=obj_array([f"{i}.jpg" for i in range(n_images)]), width=[4] * n_images,
                    height=[4] * n_images)
    schema = LabelSchema.from_names(names, task=task)
    ann = Annotations.sort_rows(image=np.array([r[0] for r in rows], np.int64),
                                label=np.array([schema.index(r[1]) for r in rows], np.int64),
                                score=None if scores is None else np.array(scores))
    return Dataset(schema, images, ann)


def test_tags_dataset_with_threshold() -> None:
    names = ["sky", "sea", "sand"]
    truth = tags([(0, "sky"), (0, "sea"), (1, "sand"), (3, "sea")], names, 4)  # image 2: no tag
    pred = tags([(0, "sky"), (0, "sand"), (1, "sand"), (2, "boat"), (3, "sea")], ["sand", "sky", "sea", "boat"], 4,
                scores=[0.9, 0.4, 0.7, 0.8, np.nan])
    pred = pred.replace(images=truth.images)
    r = multilabel_scores(truth, pred, threshold=0.5)
    assert r.class_names == ("sky", "sea", "sand", "boat")
    t = np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    p = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0]])  # sand@0.4 below, sea has no score
    expected = multilabel_scores_from_indicators(t, p)
    for name in ("hamming_score", "hamming_loss", "subset_accuracy", "f1_micro", "f1_macro", "recall_samples"):
        assert close(getattr(r, name), getattr(expected, name)), name
    assert r.threshold == 0.5 and r.n_samples == 4
    low = multilabel_scores(truth, pred, threshold=0.3)
    assert low.hamming_loss > r.hamming_loss  # sand@0.4 on image 0 is now a false positive


def test_attributes_dataset() -> None:
    images = Images(path=obj_array(["a.jpg", "b.jpg"]), width=[9, 9], height=[9, 9])
    schema = LabelSchema.from_names(["car"])
    box = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [0, 0, 5, 5]], float)
    truth = Dataset(schema, images, Annotations(image=[0, 0, 1], label=[0, 0, 0], box=box, attributes={
        "occluded": obj_array([True, False, None]), "truncated": obj_array(["yes", "no", "true"])}))
    pred = truth.replace(annotations=truth.annotations.with_columns(attributes={
        "occluded": obj_array([0.8, 0.6, 0.1]), "truncated": obj_array([1, 0, False])}))
    r = multilabel_scores(truth, pred, attributes=["occluded", "truncated"])
    expected = multilabel_scores_from_indicators([[1, 1], [0, 0], [0, 1]], [[1, 1], [1, 0], [0, 0]])
    assert r.class_names == ("occluded", "truncated") and r.n_samples == 3
    for name in ("hamming_score", "hamming_loss", "f1_macro", "precision_samples"):
        assert close(getattr(r, name), getattr(expected, name)), name
    only_occluded = pred.replace(annotations=pred.annotations.with_columns(
        attributes={"occluded": pred.annotations.attributes["occluded"]}))
    with pytest.raises(InvalidDatasetError, match=r"pred.annotations.attributes must have 'truncated'"):
        multilabel_scores(truth, only_occluded, attributes=["truncated"])
    odd = truth.replace(annotations=truth.annotations.with_columns(attributes={
        "occluded": obj_array(["maybe", None, None])}))
    with pytest.raises(InvalidDatasetError, match=r"attributes\['occluded'\] row 0: must be a bool"):
        multilabel_scores(odd, odd, attributes=["occluded"])
    short = truth.select([0, 1])
    with pytest.raises(InvalidDatasetError, match="must pair with truth's"):
        multilabel_scores(truth, short, attributes=["occluded"])


def test_dataset_errors_and_empty() -> None:
    truth = tags([(0, "a")], ["a", "b"], 2)
    with pytest.raises(SchemaError, match="truth task must be multilabel or classification, got detection"):
        multilabel_scores(tags([(0, "a")], ["a"], 2, task="detection"), truth)
    with pytest.raises(InvalidDatasetError, match="images table of truth"):
        multilabel_scores(truth, tags([(0, "a")], ["a", "b"], 3))
    empty = tags([], ["a", "b"], 0)
    r = multilabel_scores(empty, empty)
    assert r.n_samples == 0 and math.isnan(r.hamming_score)


# -- exact comparison with scikit-learn (the same float operations: equal bit for bit) -------------------------


def same(a: object, b: object) -> bool:
    """Equal bit for bit, nan equal to nan (shapes too)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


def check_exact(t: np.ndarray, p: np.ndarray) -> None:
    r = multilabel_scores_from_indicators(t, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert same(r.hamming_loss, skm.hamming_loss(t, p)) and same(hamming_loss(t, p), r.hamming_loss)
        assert same(r.subset_accuracy, skm.accuracy_score(t, p)) and same(subset_accuracy_score(t, p), r.subset_accuracy)
        jac = skm.jaccard_score(t, p, average="samples", zero_division=1.0)
        assert same(r.hamming_score, jac) and same(hamming_score(t, p), jac)
        for avg in ("micro", "macro", "weighted", "samples"):
            sk = skm.precision_recall_fscore_support(t, p, average=avg, zero_division=np.nan)
            for j, m in enumerate(("precision", "recall", "f1")):
                assert same(getattr(r, f"{m}_{avg}"), sk[j]), (m, avg, getattr(r, f"{m}_{avg}"), sk[j])
        per = skm.precision_recall_fscore_support(t, p, average=None, zero_division=np.nan)
        zero = skm.precision_recall_fscore_support(t, p, average=None, zero_division=0.0)
    for j, m in enumerate(("precision", "recall", "f1")):
        mine = getattr(r, f"{m}_per_class")
        assert same(mine, per[j]), m
        assert same(np.where(np.isnan(mine), 0.0, mine), zero[j]), m  # nan exactly at sklearn's 0/0 cells
    np.testing.assert_array_equal(r.support_per_class, per[3])


def random_indicators(rng: np.random.Generator, mode: int) -> tuple[np.ndarray, np.ndarray]:
    n, n_lab = int(rng.integers(1, 30)), int(rng.integers(2, 12))  # sklearn reads one column as binary
    dens = rng.uniform(0, 0.7)
    t = rng.random((n, n_lab)) < dens
    if mode == 0:
        p = np.where(rng.random((n, n_lab)) < 0.2, ~t, t)  # 20% of cells flipped
    elif mode == 1:
        p = rng.random((n, n_lab)) < dens  # noise
    elif mode == 2:
        p = t.copy()  # all correct
    elif mode == 3:
        p = ~t  # all wrong
    else:
        t[rng.random(n) < 0.5] = False  # many empty rows, nothing predicted
        p = np.zeros_like(t)
    return t, p


@pytest.mark.parametrize("seed", range(10))
def test_random_indicators_equal_sklearn_exactly(seed: int) -> None:
    # before the fix, macro and samples averages were 1 ulp off sklearn's np.nanmean on ~1 input in 30
    rng = np.random.default_rng(300 + seed)
    for mode in range(5):
        t, p = random_indicators(rng, mode)
        check_exact(t.astype(int), p.astype(int))
    r_bool = multilabel_scores_from_indicators(t, p)
    r_float = multilabel_scores_from_indicators(t.astype(float), p.astype(np.float32))
    assert r_bool.to_dict() == r_float.to_dict()  # bool, int and float 0/1 read the same


def test_macro_and_samples_averages_are_sklearns_nanmean_bit_for_bit() -> None:
    # regression: the averages were np.mean over the defined values, 1 ulp off sklearn's np.nanmean
    t = np.array([[1, 0, 1, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1, 0, 1], [0, 1, 0, 0, 1, 1, 0, 0]])
    p = np.array([[1, 0, 1, 1, 1, 0, 1, 0], [1, 0, 1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 1, 1, 1, 0]])
    sk = skm.precision_score(t, p, average="macro", zero_division=np.nan)
    assert multilabel_scores_from_indicators(t, p).precision_macro == sk == 0.8571428571428571  # was ...857
    t = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1], [0, 1, 0]])
    p = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 0], [1, 1, 1], [1, 1, 1], [1, 1, 0]])
    sk = skm.precision_score(t, p, average="samples", zero_division=np.nan)
    assert multilabel_scores_from_indicators(t, p).precision_samples == sk == 0.8809523809523808  # was ...81


def test_one_label_equals_sklearn_binary() -> None:
    rng = np.random.default_rng(5)
    t, p = rng.random((40, 1)) < 0.4, rng.random((40, 1)) < 0.4
    r = multilabel_scores_from_indicators(t, p)
    yt, yp = t.ravel(), p.ravel()
    assert same(r.hamming_loss, skm.hamming_loss(yt, yp))
    for m, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        sk = fn(yt, yp, zero_division=np.nan)  # average="binary": the one label
        assert same(getattr(r, f"{m}_per_class"), [sk])
        assert same(getattr(r, f"{m}_micro"), sk) and same(getattr(r, f"{m}_macro"), sk)
        assert same(getattr(r, f"{m}_weighted"), sk)


def test_no_label_is_nan() -> None:
    # regression: with samples but no label (L = 0) the Hamming score and subset accuracy were 1.0; the module
    # documents every score as nan when there is no label
    r = multilabel_scores_from_indicators(np.zeros((3, 0)), np.zeros((3, 0)))
    assert r.n_samples == 3
    for v in r.to_dict().values():
        assert v is None or not isinstance(v, float)
    assert math.isnan(hamming_score(np.zeros((3, 0)), np.zeros((3, 0))))
    assert math.isnan(subset_accuracy_score(np.zeros((3, 0)), np.zeros((3, 0))))
    assert hamming_score(np.zeros((3, 1)), np.zeros((3, 1))) == 1.0  # one label, never set: predicted exactly
