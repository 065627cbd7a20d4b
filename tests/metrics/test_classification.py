"""maslow.metrics classification scores against scikit-learn (zero_division=np.nan) on seeded random labels,
zero-division cases, top-k with ties, the Dataset entry point, and MNIST labels when ../shared/data is present."""

from __future__ import annotations

import doctest
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

import maslow.metrics.classification
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError, SchemaError
from maslow.metrics import (
    ClassificationResult,
    accuracy_score,
    balanced_accuracy_score,
    classification_scores,
    classification_scores_from_labels,
    confusion_matrix,
    f1_score,
    fbeta_score,
    precision_score,
    recall_score,
    top_k_accuracy_score,
)
from tests.conftest import shared_path

AVERAGES = ("micro", "macro", "weighted")


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12


def check_against_sklearn(t: np.ndarray, p: np.ndarray, beta: float) -> None:
    r = classification_scores_from_labels(t, p, beta=beta)
    k = r.confusion_matrix.shape[0]
    labels = np.arange(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes absent from y_true
        for avg in AVERAGES:
            sk = skm.precision_recall_fscore_support(t, p, beta=beta, average=avg, zero_division=np.nan)
            # labels=None (sklearn's default: only the labels present) gives the same averages
            sk_all = skm.precision_recall_fscore_support(t, p, beta=beta, average=avg, labels=labels,
                                                        zero_division=np.nan)
            for j, m in enumerate(("precision", "recall", "fbeta")):
                mine = getattr(r, f"{m}_{avg}")
                assert close(mine, float(sk[j])), (m, avg, mine, sk[j])
                assert close(mine, float(sk_all[j])), (m, avg, "labels=all")
        per = skm.precision_recall_fscore_support(t, p, beta=beta, average=None, labels=labels, zero_division=np.nan)
        np.testing.assert_allclose(r.precision_per_class, per[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.recall_per_class, per[1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.fbeta_per_class, per[2], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(r.support_per_class, per[3])
        np.testing.assert_array_equal(r.confusion_matrix, skm.confusion_matrix(t, p, labels=labels))
        if len(t):
            assert close(r.accuracy, skm.accuracy_score(t, p))
            assert close(r.balanced_accuracy, skm.balanced_accuracy_score(t, p))


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.0, math.inf])
@pytest.mark.parametrize("seed", range(8))
def test_random_labels_equal_sklearn(seed: int, beta: float) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    n = int(rng.integers(1, 60))
    t = rng.integers(0, k, n)
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, n))
    check_against_sklearn(t, p, beta)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=40),
       st.sampled_from([1.0, 0.5, 3.0]))
def test_hypothesis_labels_equal_sklearn(pairs: list[tuple[int, int]], beta: float) -> None:
    t = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    check_against_sklearn(t, p, beta)


ZERO_DIVISION = {
    "class-never-predicted": ([0, 0, 1, 1, 2], [0, 0, 1, 1, 1]),
    "class-never-present": ([0, 0, 1, 1], [0, 2, 1, 1]),
    "all-wrong": ([0, 0, 1], [1, 1, 0]),
    "one-class": ([3, 3, 3], [3, 3, 3]),
    "gap-in-ids": ([0, 4, 4, 0], [0, 4, 0, 0]),
    "truth-one-pred-other": ([0, 0], [1, 1]),  # weighted: every defined value has weight 0
}


@pytest.mark.parametrize("case", list(ZERO_DIVISION), ids=list(ZERO_DIVISION))
def test_zero_division_cases_equal_sklearn(case: str) -> None:
    t, p = (np.array(v) for v in ZERO_DIVISION[case])
    for beta in (1.0, 2.0):
        check_against_sklearn(t, p, beta)
    r = classification_scores_from_labels(t, p)
    assert np.isnan(r.precision_per_class[r.confusion_matrix.sum(0) == 0]).all()


def test_array_functions() -> None:
    t, p = [0, 1, 2, 2, 1], [0, 2, 2, 2, 1]
    assert accuracy_score(t, p) == 0.8
    assert balanced_accuracy_score(t, p) == pytest.approx(skm.balanced_accuracy_score(t, p), abs=1e-12)
    for avg in AVERAGES:
        assert precision_score(t, p, average=avg) == pytest.approx(skm.precision_score(t, p, average=avg), abs=1e-12)
        assert recall_score(t, p, average=avg) == pytest.approx(skm.recall_score(t, p, average=avg), abs=1e-12)
        assert f1_score(t, p, average=avg) == pytest.approx(skm.f1_score(t, p, average=avg), abs=1e-12)
        assert fbeta_score(t, p, beta=0.5, average=avg) == pytest.approx(
            skm.fbeta_score(t, p, beta=0.5, average=avg), abs=1e-12)
    assert confusion_matrix(t, p, n_classes=4).shape == (4, 4)
    with pytest.raises(ValueError, match="average: must be one of"):
        precision_score(t, p, average="samples")
    with pytest.raises(ValueError, match="y_pred: length must equal"):
        accuracy_score([0, 1], [0])
    with pytest.raises(ValueError, match="class ids must be >= 0"):
        accuracy_score([0, -1], [0, 1])
    with pytest.raises(ValueError, match="integer class ids"):
        accuracy_score([0.5], [1.0])
    with pytest.raises(ValueError, match="n_classes"):
        confusion_matrix([0, 5], [0, 1], n_classes=3)
    with pytest.raises(ValueError, match="beta"):
        fbeta_score(t, p, beta=-1.0)
    empty = classification_scores_from_labels(np.zeros(0, int), np.zeros(0, int))
    assert empty.n_samples == 0 and math.isnan(empty.accuracy) and math.isnan(empty.fbeta_macro)
    assert math.isnan(accuracy_score([], []))


@pytest.mark.parametrize("seed", range(6))
def test_top_k_equals_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 80, int(rng.integers(3, 8))
    t = rng.integers(0, k, n)
    scores = rng.integers(0, 4, (n, k)).astype(float) if seed % 2 else rng.random((n, k))  # odd seeds: many ties
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when k >= n_classes
        for kk in (1, 2, 3, k):
            sk = skm.top_k_accuracy_score(t, scores, k=kk, labels=np.arange(k))
            assert top_k_accuracy_score(t, scores, k=kk) == pytest.approx(sk, abs=1e-12), kk
    r = classification_scores_from_labels(t, scores.argmax(1), y_score=scores, k=(1, 2))
    assert set(r.top_k_accuracy) == {1, 2}
    with pytest.raises(ValueError, match="y_score row 3: scores must be numbers"):
        bad = scores.copy()
        bad[3, 0] = np.nan
        top_k_accuracy_score(t, bad, k=1)


def test_result_is_frozen_and_serialisable() -> None:
    r = classification_scores_from_labels([0, 1, 1], [0, 1, 2], class_names=["a", "b", "c"])
    assert isinstance(r, ClassificationResult)
    with pytest.raises(AttributeError):
        r.accuracy = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        r.confusion_matrix[0, 0] = 5
    d = r.to_dict()
    assert d["per_class"]["recall"][2] is None and d["top_k_accuracy"] == {"1": None, "5": None}
    assert r.to_pandas()["support"].tolist() == [1, 2, 0]


def test_doctests() -> None:
    failures, tried = doctest.testmod(maslow.metrics.classification)
    assert tried > 0 and failures == 0


# -- Dataset level ----------------------------------------------------------------------------------------------


def make(labels: list[int], names: list[str], *, probs: np.ndarray | None = None, task: str = "classification",
         n_images: int | None = None) -> Dataset:
    m = len(labels) if n_images is None else n_images
    images = Images(path=obj_array([f"{i}.png" for i in range(m)]), width=[8] * m, height=[8] * m)
    extra = {} if probs is None else {"probs": probs}
    ann = Annotations(image=np.arange(len(labels)), label=labels, extra=extra)
    return Dataset(LabelSchema.from_names(names, task=task), images, ann)


def test_dataset_scores_match_names_and_probs() -> None:
    rng = np.random.default_rng(9)
    truth = make([0, 1, 2, 2, 1, 0], ["cat", "dog", "bird"])
    # the prediction schema orders classes differently and adds one the truth lacks
    pnames = ["bird", "cat", "fox", "dog"]
    probs = rng.random((6, 4))
    plabels = probs.argmax(1)
    pred = make(plabels.tolist(), pnames, probs=probs)
    pred = pred.replace(images=truth.images)
    r = classification_scores(truth, pred, k=(1, 2))
    assert r.class_names == ("cat", "dog", "bird", "fox")
    pos = {"cat": 0, "dog": 1, "bird": 2, "fox": 3}
    y_pred = np.array([pos[pnames[j]] for j in plabels])
    y_true = np.array([0, 1, 2, 2, 1, 0])
    check = classification_scores_from_labels(y_true, y_pred, n_classes=4)
    np.testing.assert_array_equal(r.confusion_matrix, check.confusion_matrix)
    assert r.fbeta_macro == check.fbeta_macro
    score = np.empty((6, 4))
    score[:, [pos[n] for n in pnames]] = probs
    assert r.top_k_accuracy[2] == pytest.approx(skm.top_k_accuracy_score(y_true, score, k=2, labels=np.arange(4)))
    assert r.top_k_accuracy[1] == r.accuracy  # argmax labels: top-1 is the accuracy


def test_dataset_errors() -> None:
    truth = make([0, 1], ["a", "b"])
    with pytest.raises(InvalidDatasetError, match="pred image 2 must have exactly one label, got 0"):
        classification_scores(make([0, 1, 1], ["a", "b"]), make([0, 1], ["a", "b"], n_images=3))
    with pytest.raises(InvalidDatasetError, match="images table of truth"):
        classification_scores(truth, make([0, 1, 1], ["a", "b"]))
    with pytest.raises(SchemaError, match="truth task must be classification, got detection"):
        classification_scores(make([0, 1], ["a", "b"], task="detection"), truth)
    with pytest.raises(InvalidDatasetError, match=r"extra\['probs'\]: shape must be \(2, 2\)"):
        classification_scores(truth, make([0, 1], ["a", "b"], probs=np.ones((2, 3))))
    two = truth.replace(annotations=Annotations(image=[0, 0, 1], label=[0, 1, 1]))
    with pytest.raises(InvalidDatasetError, match="truth image 0 must have exactly one label, got 2"):
        classification_scores(two, truth)
    empty = make([], ["a"])
    r = classification_scores(empty, empty)
    assert r.n_samples == 0 and math.isnan(r.accuracy)


def test_mnist_with_corrupted_labels() -> None:
    from maslow.io import read_mnist

    folder = shared_path("mnist_test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = read_mnist(folder)
    assert truth.n_images == 10_000
    rng = np.random.default_rng(10)
    y = truth.annotations.label
    wrong = rng.random(len(y)) < 0.1
    noisy = y.copy()
    noisy[wrong] = (y[wrong] + rng.integers(1, 10, int(wrong.sum()))) % 10  # always another digit
    pred = truth.replace(annotations=truth.annotations.with_columns(label=noisy))
    r = classification_scores(truth, pred)
    assert r.accuracy == pytest.approx(1 - wrong.mean(), abs=1e-12)
    check_against_sklearn(y, noisy, 1.0)
    assert r.fbeta_macro == pytest.approx(skm.f1_score(y, noisy, average="macro"), abs=1e-12)
    assert r.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y, noisy), abs=1e-12)


# -- exact comparison with scikit-learn (labels=arange(K): the same class axis, so the same float operations) ----


def same(a: object, b: object) -> bool:
    """Equal bit for bit, nan equal to nan (shapes too)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


def check_exact(t: np.ndarray, p: np.ndarray, beta: float, n_classes: int | None = None, *, full: bool = True) -> None:
    """Every score of maslow's result bit for bit against sklearn; ``full``: also zero_division 0/1 and the array
    functions (slower)."""
    r = classification_scores_from_labels(t, p, beta=beta, n_classes=n_classes)
    k = r.confusion_matrix.shape[0]
    labels = np.arange(k)
    if not len(t):  # sklearn refuses empty input; maslow: nan everywhere, an all-zero confusion matrix
        assert math.isnan(r.accuracy) and math.isnan(r.balanced_accuracy) and r.n_samples == 0
        assert all(math.isnan(getattr(r, f"{m}_{a}")) for m in ("precision", "recall", "fbeta") for a in AVERAGES)
        assert np.isnan(r.fbeta_per_class).all() and not r.confusion_matrix.any()
        assert math.isnan(accuracy_score(t, p)) and math.isnan(balanced_accuracy_score(t, p))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes absent from y_true or y_pred
        per = skm.precision_recall_fscore_support(t, p, beta=beta, average=None, labels=labels, zero_division=np.nan)
        for j, m in enumerate(("precision", "recall", "fbeta")):
            assert same(getattr(r, f"{m}_per_class"), per[j]), m
            # the nan cells are exactly sklearn's zero-division cells: zero_division=0 and 1 fill the same ones
            for fill in (0.0, 1.0) if full else ():
                sk_fill = skm.precision_recall_fscore_support(t, p, beta=beta, average=None, labels=labels,
                                                              zero_division=fill)[j]
                assert same(np.where(np.isnan(getattr(r, f"{m}_per_class")), fill, getattr(r, f"{m}_per_class")),
                            sk_fill), (m, fill)
        np.testing.assert_array_equal(r.support_per_class, per[3])
        for avg in AVERAGES:
            sk = skm.precision_recall_fscore_support(t, p, beta=beta, average=avg, labels=labels, zero_division=np.nan)
            inferred = skm.precision_recall_fscore_support(t, p, beta=beta, average=avg, zero_division=np.nan)
            for j, m in enumerate(("precision", "recall", "fbeta")):
                mine = getattr(r, f"{m}_{avg}")
                assert same(mine, sk[j]), (m, avg, mine, sk[j])
                # labels=None sees only the present labels: a shorter array, so np.nanmean may sum in another
                # order (1 ulp); the value is the same
                np.testing.assert_allclose(mine, inferred[j], rtol=1e-12, atol=0, err_msg=f"{m} {avg}")
        np.testing.assert_array_equal(r.confusion_matrix, skm.confusion_matrix(t, p, labels=labels))
        assert same(r.accuracy, skm.accuracy_score(t, p))
        assert same(r.balanced_accuracy, skm.balanced_accuracy_score(t, p))
        assert same(accuracy_score(t, p), r.accuracy) and same(balanced_accuracy_score(t, p), r.balanced_accuracy)
        for avg in AVERAGES if full else ():  # the array functions (beta=inf: sklearn's fbeta_score takes it too)
            assert same(fbeta_score(t, p, beta=beta, average=avg, n_classes=n_classes),
                        skm.fbeta_score(t, p, beta=beta, average=avg, labels=labels, zero_division=np.nan))
            assert same(precision_score(t, p, average=avg, n_classes=n_classes),
                        skm.precision_score(t, p, average=avg, labels=labels, zero_division=np.nan))
            assert same(recall_score(t, p, average=avg, n_classes=n_classes),
                        skm.recall_score(t, p, average=avg, labels=labels, zero_division=np.nan))
            assert same(f1_score(t, p, average=avg, n_classes=n_classes),
                        skm.f1_score(t, p, average=avg, labels=labels, zero_division=np.nan))


def random_pair(rng: np.random.Generator, mode: int) -> tuple[np.ndarray, np.ndarray]:
    k = int(rng.integers(1, 14))
    n = int(rng.integers(1, 60))
    t = rng.integers(0, k, n)
    if mode == 0:
        p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, n))  # mostly right
    elif mode == 1:
        p = rng.integers(0, k, n)  # noise
    elif mode == 2:
        p = t.copy()  # all correct
    elif mode == 3:
        p = (t + 1) % max(k, 2)  # all wrong
    else:
        t, p = t * 3, np.where(rng.random(n) < 0.5, t * 3, t * 3 + 1)  # gaps: ids never used by anyone
    return t, p


@pytest.mark.parametrize("seed", range(6))
def test_random_labels_equal_sklearn_exactly(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for mode in range(5):
        t, p = random_pair(rng, mode)
        top = int(max(t.max(), p.max())) + 1
        for beta in (1.0, 0.5, 2.0, 0.0, math.inf):
            check_exact(t, p, beta, full=beta == 1.0)
        check_exact(t, p, 2.0, n_classes=top + 3, full=False)  # explicit K: classes absent from both sides


EDGE_CASES = {
    "single-class-right": ([0, 0, 0], [0, 0, 0]),
    "single-class-high-id": ([5, 5], [5, 5]),
    "absent-from-truth": ([0, 0, 1, 1], [0, 2, 1, 2]),
    "absent-from-pred": ([0, 2, 1, 2], [0, 0, 1, 1]),
    "absent-from-both": ([0, 3, 3, 0], [3, 0, 3, 0]),
    "all-wrong-two": ([0, 1, 0, 1], [1, 0, 1, 0]),
    "one-sample": ([4], [2]),
    "empty": ([], []),
}


@pytest.mark.parametrize("case", list(EDGE_CASES), ids=list(EDGE_CASES))
def test_edge_cases_equal_sklearn_exactly(case: str) -> None:
    t, p = (np.asarray(v, np.int64) for v in EDGE_CASES[case])
    for beta in (1.0, 0.5, 2.0, 0.0, math.inf):
        check_exact(t, p, beta, full=beta in (1.0, math.inf))
        check_exact(t, p, beta, n_classes=7, full=False)


def test_macro_average_is_sklearns_nanmean_bit_for_bit() -> None:
    # regression: the macro average was np.mean over the defined values, 1 ulp off scikit-learn's np.nanmean
    t = np.array([6, 3, 3, 0, 0, 0, 2, 9, 7, 10, 6, 7, 11, 8, 7, 6, 6, 11, 3, 9, 8, 0, 4, 10, 6, 0, 9, 8, 10, 2, 1])
    p = np.array([6, 3, 3, 0, 0, 4, 9, 3, 7, 9, 10, 0, 0, 8, 7, 6, 1, 11, 3, 9, 9, 8, 4, 10, 6, 0, 9, 8, 2, 2, 1])
    labels = np.arange(12)
    sk = skm.recall_score(t, p, average="macro", labels=labels, zero_division=np.nan)
    assert recall_score(t, p, average="macro") == sk == 0.6848484848484849
    assert classification_scores_from_labels(t, p).recall_macro == sk


def test_explicit_n_classes_changes_no_average() -> None:
    t, p = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    inferred = classification_scores_from_labels(t, p)
    wide = classification_scores_from_labels(t, p, n_classes=6)
    assert wide.confusion_matrix.shape == (6, 6) and np.isnan(wide.fbeta_per_class[3:]).all()
    for m in ("precision", "recall", "fbeta"):
        for avg in AVERAGES:
            assert getattr(wide, f"{m}_{avg}") == getattr(inferred, f"{m}_{avg}"), (m, avg)


def order_preserving_finite(s: np.ndarray) -> np.ndarray:
    """Each score replaced by its rank among the distinct values: finite, the same order, the same ties (-0.0 and
    0.0 tie, as they compare equal); sklearn refuses inf."""
    return np.unique(s, return_inverse=True)[1].reshape(s.shape).astype(np.float64)


@pytest.mark.parametrize("seed", range(8))
def test_top_k_equals_sklearn_exactly(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    for mode in range(4):
        k_cls = int(rng.integers(3, 9))  # K = 2 is not comparable: sklearn wants 1-D scores for binary y_true
        n = int(rng.integers(1, 50))
        t = rng.integers(0, k_cls, n)
        s = [rng.random((n, k_cls)), rng.integers(0, 3, (n, k_cls)).astype(float), np.zeros((n, k_cls)),
             rng.choice([-np.inf, -1e300, -0.0, 0.0, 5e-324, 1.0, np.inf], (n, k_cls))][mode]
        ref = order_preserving_finite(s)  # sklearn refuses inf; maslow ranks it as a number
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns when k >= n_classes
            for k in range(1, k_cls + 2):
                sk = skm.top_k_accuracy_score(t, ref, k=k, labels=np.arange(k_cls))
                assert top_k_accuracy_score(t, s, k=k) == sk, (mode, k)
        assert top_k_accuracy_score(t, s, k=k_cls) == 1.0
    with pytest.raises(ValueError, match="k: must be >= 1"):
        top_k_accuracy_score([0], [[1.0, 2.0, 3.0]], k=0)
    with pytest.raises(ValueError, match="y_score row 1: scores must be numbers, got nan"):
        top_k_accuracy_score([0, 1], [[1.0, 2.0], [np.nan, 0.0]], k=1)
    assert math.isnan(top_k_accuracy_score(np.zeros(0, int), np.zeros((0, 3)), k=1))


def test_top_k_tie_rule_is_sklearns() -> None:
    # all scores equal: sklearn's reversed stable sort ranks the highest class id first
    s = np.zeros((3, 4))
    t = np.array([3, 2, 0])
    assert top_k_accuracy_score(t, s, k=1) == skm.top_k_accuracy_score(t, s, k=1, labels=np.arange(4)) == 1 / 3
    assert top_k_accuracy_score(t, s, k=2) == skm.top_k_accuracy_score(t, s, k=2, labels=np.arange(4)) == 2 / 3


def test_dataset_top_k_unscored_truth_class_ranks_last_even_below_minus_inf() -> None:
    # regression: a truth class missing from the prediction schema got score -inf and, tied with a predicted
    # class scored -inf (log 0) with a lower id, ranked above it
    truth = make([2, 0, 1, 1], ["a", "b", "c"])
    with np.errstate(divide="ignore"):
        logp = np.log(np.array([[1.0, 0.0]] * 4))  # pred schema: a, b; b scored -inf
    pred = make([0, 0, 0, 0], ["a", "b"], probs=logp).replace(images=truth.images)
    r = classification_scores(truth, pred, k=(1, 2, 3))
    # c (unscored) ranks 2, below a and b; a ranks 0; b (-inf) ranks 1, above c (before the fix: c 1, b 2 twice)
    assert r.top_k_accuracy == {1: 1 / 4, 2: 3 / 4, 3: 1.0}
