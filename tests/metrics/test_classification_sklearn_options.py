"""scikit-learn's options in maslow's classification scores: zero_division, labels, average=None and "binary" with
pos_label, sample_weight, top_k_accuracy_score(labels=); every value bit for bit scikit-learn's on seeded random
cases, and every bad option refused with an error naming it."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.metrics import (
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
from maslow.metrics.classification import precision_recall_fscore_support

ZERO_DIVISION = (math.nan, 0.0, 1.0)
BETAS = (1.0, 0.5, 2.0, 0.0, math.inf)


def same(a: object, b: object) -> bool:
    """Equal bit for bit, nan equal to nan (shapes too)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


def sk_prfs(*args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about absent classes and ignored pos_label
        return skm.precision_recall_fscore_support(*args, **kwargs)


def random_case(rng: np.random.Generator, mode: int) -> tuple[np.ndarray, np.ndarray]:
    k = int(rng.integers(1, 12))
    n = int(rng.integers(1, 80))
    t = rng.integers(0, k, n)
    if mode == 0:
        p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, n))  # mostly right
    elif mode == 1:
        p = rng.integers(0, k, n)  # noise
    elif mode == 2:
        p = (t + 1) % max(k, 2)  # all wrong: precision and recall 0/0 cells
    elif mode == 3:
        t, p = t * 3, np.where(rng.random(n) < 0.5, t * 3, t * 3 + 1)  # gaps: ids nobody uses
    elif mode == 4:
        t, p = rng.integers(0, 2, n) * 5 + 2, rng.integers(0, 2, n) * 5 + 2  # two classes, 2 and 7
    else:
        t, p = np.full(n, 4), np.where(rng.random(n) < 0.5, 4, 1)  # pred-only class
    return t, p


def random_weights(rng: np.random.Generator, n: int) -> np.ndarray | None:
    kind = int(rng.integers(0, 4))
    return [None, rng.random(n) * 3, rng.integers(0, 4, n).astype(float), rng.exponential(1.0, n) * 1e-3][kind]


@pytest.mark.parametrize("seed", range(8))
def test_every_average_labels_zero_division_and_weight_equal_sklearn_exactly(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    for mode in range(6):
        t, p = random_case(rng, mode)
        top = int(max(t.max(), p.max())) + 1
        beta = float(rng.choice(BETAS))
        w = random_weights(rng, len(t))
        # an explicit class list: some present, some absent from both sides, shuffled
        chosen = rng.permutation(top + 3)[: int(rng.integers(1, top + 3))]
        for zd in ZERO_DIVISION:
            kw = {"beta": beta, "zero_division": zd, "sample_weight": w}
            # average=None: one value per class id 0..K-1 (sklearn with labels=range(K)), or per given label
            mine = precision_recall_fscore_support(t, p, average=None, **kw)
            sk = sk_prfs(t, p, average=None, labels=np.arange(top), **kw)
            assert all(same(a, b) for a, b in zip(mine, sk, strict=True)), (mode, zd, "per class")
            mine = precision_recall_fscore_support(t, p, average=None, labels=chosen, **kw)
            sk = sk_prfs(t, p, average=None, labels=chosen, **kw)
            assert all(same(a, b) for a, b in zip(mine, sk, strict=True)), (mode, zd, "per given label")
            for avg in ("micro", "macro", "weighted"):
                mine = precision_recall_fscore_support(t, p, average=avg, **kw)
                sk = sk_prfs(t, p, average=avg, **kw)  # labels=None: the classes present
                if avg == "macro" and math.isnan(zd):
                    # maslow's nan macro averages over 0..K-1 (bit for bit labels=range(K)): the same value, though
                    # numpy may sum the shorter array of labels=None in another order (1 ulp)
                    np.testing.assert_allclose(mine[:3], sk[:3], rtol=1e-12, atol=0)
                    sk = sk_prfs(t, p, average=avg, labels=np.arange(top), **kw)
                assert same(mine[:3], sk[:3]) and mine[3] is None, (mode, zd, avg, mine, sk)
                mine = precision_recall_fscore_support(t, p, average=avg, labels=chosen, **kw)
                sk = sk_prfs(t, p, average=avg, labels=chosen, **kw)
                assert same(mine[:3], sk[:3]), (mode, zd, avg, "labels", mine, sk)


@pytest.mark.parametrize("seed", range(4))
def test_score_functions_equal_sklearns(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    for mode in range(6):
        t, p = random_case(rng, mode)
        w = random_weights(rng, len(t))
        labels = rng.permutation(int(max(t.max(), p.max())) + 2)[:3]
        for zd in (0.0, 1.0):  # nan is checked above and in test_classification.py
            for avg in ("micro", "macro", "weighted", None):
                kw = {"average": avg, "zero_division": zd, "sample_weight": w, "labels": labels}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    assert same(precision_score(t, p, **kw), skm.precision_score(t, p, **kw))
                    assert same(recall_score(t, p, **kw), skm.recall_score(t, p, **kw))
                    assert same(f1_score(t, p, **kw), skm.f1_score(t, p, **kw))
                    assert same(fbeta_score(t, p, beta=0.5, **kw), skm.fbeta_score(t, p, beta=0.5, **kw))


BINARY_CASES = {
    "zero-one": ([0, 1, 1, 0, 1, 0], [0, 1, 0, 0, 1, 1]),
    "two-and-seven": ([2, 7, 7, 2, 7], [7, 7, 2, 2, 7]),
    "one-class-only": ([3, 3, 3], [3, 3, 3]),  # pos_label=1 absent: every count 0
    "never-predicted": ([0, 1, 1], [0, 0, 0]),
    "never-present": ([0, 0, 0], [0, 1, 0]),
}


@pytest.mark.parametrize("case", list(BINARY_CASES), ids=list(BINARY_CASES))
def test_binary_average_and_pos_label_equal_sklearn_exactly(case: str) -> None:
    t, p = (np.asarray(v) for v in BINARY_CASES[case])
    rng = np.random.default_rng(5)
    present = np.unique(np.concatenate([t, p]))
    for pos in ({1} | set(present.tolist())) if len(present) < 2 else set(present.tolist()):
        for zd in ZERO_DIVISION:
            for w in (None, rng.random(len(t))):
                for beta in BETAS:
                    kw = {"beta": beta, "zero_division": zd, "sample_weight": w}
                    mine = precision_recall_fscore_support(t, p, average="binary", pos_label=pos, **kw)
                    sk = sk_prfs(t, p, average="binary", pos_label=pos, **kw)
                    assert same(mine[:3], sk[:3]) and mine[3] is None, (pos, zd, beta, mine, sk)
    if set(present.tolist()) <= {0, 1}:  # pos_label defaults to 1, as scikit-learn's
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert same(f1_score(t, p, average="binary", zero_division=0.0), skm.f1_score(t, p, zero_division=0.0))


def test_binary_errors_say_what_to_pass() -> None:
    t, p = [0, 1, 2, 1], [0, 1, 1, 1]
    with pytest.raises(ValueError, match=r"average: 'binary' needs at most two classes in y_true and y_pred, got 3 "
                                         r"\(0, 1, 2\); pass average='macro'"):
        f1_score(t, p, average="binary")
    with pytest.raises(ValueError, match=r"pos_label: must be one of the two classes present \(2, 7\), got 1"):
        precision_score([2, 7], [7, 7], average="binary")
    # a call ported from scikit-learn, whose default average is "binary": the pos_label would be silently ignored
    with pytest.raises(ValueError, match=r"pos_label: only used with average='binary', got average='macro' "
                                         r"\(maslow's default average is 'macro', scikit-learn's is 'binary'"):
        recall_score([0, 1, 1], [0, 1, 0], pos_label=0)
    with pytest.raises(ValueError, match="labels: must be None with average='binary'"):
        f1_score([0, 1], [0, 1], average="binary", labels=[0, 1])
    with pytest.raises(ValueError, match="pos_label: must be a class id"):
        f1_score([0, 1], [0, 1], average="binary", pos_label="yes")  # type: ignore[arg-type]
    # maslow's default is still macro on a two-class problem (existing users), which differs from sklearn's binary
    assert f1_score([0, 1, 1], [0, 1, 0]) == skm.f1_score([0, 1, 1], [0, 1, 0], average="macro")


def test_option_errors_name_the_argument() -> None:
    t, p = [0, 1, 2], [0, 2, 2]
    with pytest.raises(ValueError, match=r"zero_division: must be 0.0, 1.0 or nan, got 'warn' \(scikit-learn's "
                                         r"default 'warn' is 0.0 plus a warning: pass zero_division=0.0\)"):
        precision_score(t, p, zero_division="warn")  # type: ignore[arg-type]
    for bad in (0.5, True, "nan", None):
        with pytest.raises(ValueError, match=r"zero_division: must be 0\.0, 1\.0 or nan"):
            recall_score(t, p, zero_division=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zero_division"):
        classification_scores_from_labels(t, p, zero_division=2.0)
    with pytest.raises(ValueError, match="average: must be one of 'micro', 'macro', 'weighted', None, 'binary', "
                                         "got 'samples'"):
        f1_score(t, p, average="samples")
    with pytest.raises(ValueError, match=r"sample_weight: shape must be \(3,\), one weight per sample, got \(2,\)"):
        f1_score(t, p, sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="sample_weight row 1: must be a finite number, got nan"):
        accuracy_score(t, p, sample_weight=[1.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="sample_weight: must hold numbers"):
        balanced_accuracy_score(t, p, sample_weight=["a", "b", "c"])
    for labels, msg in (([], "non-empty"), ([0.5], "integer class ids"), ([0, -1], "class ids must be >= 0"),
                        ([0, 1, 0], "must not repeat a class"), ([[0, 1]], "non-empty 1-D")):
        with pytest.raises(ValueError, match=f"labels: .*{msg}"):
            precision_score(t, p, labels=labels)
    with pytest.raises(ValueError, match=r"labels: class ids must be >= 0 and < n_classes \(4\), got 4"):
        recall_score(t, p, labels=[1, 4], n_classes=4)
    with pytest.raises(ValueError, match="labels: must not repeat"):
        confusion_matrix(t, p, labels=[2, 2])


@pytest.mark.parametrize("seed", range(6))
def test_sample_weight_accuracy_balanced_accuracy_confusion_matrix_equal_sklearn_exactly(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn: "y_pred contains classes not in y_true", "a single label"
        for mode in range(6):
            t, p = random_case(rng, mode)
            w = rng.random(len(t)) * 10
            assert same(accuracy_score(t, p, sample_weight=w), skm.accuracy_score(t, p, sample_weight=w))
            assert same(balanced_accuracy_score(t, p, sample_weight=w),
                        skm.balanced_accuracy_score(t, p, sample_weight=w)), mode
            assert same(balanced_accuracy_score(t, p, sample_weight=np.ones(len(t))), balanced_accuracy_score(t, p))
            top = int(max(t.max(), p.max())) + 1
            cm = confusion_matrix(t, p, sample_weight=w)
            assert cm.dtype == np.float64
            assert same(cm, skm.confusion_matrix(t, p, labels=np.arange(top), sample_weight=w))
            labels = rng.permutation(top + 2)[: int(rng.integers(1, top + 2))]
            if np.isin(labels, t).any():  # sklearn refuses labels none of which is in y_true
                for weight in (None, w):
                    mine = confusion_matrix(t, p, labels=labels, sample_weight=weight)
                    assert same(mine, skm.confusion_matrix(t, p, labels=labels, sample_weight=weight))
            assert confusion_matrix(t, p).dtype == np.int64


@pytest.mark.parametrize("seed", range(6))
def test_top_k_labels_and_sample_weight_equal_sklearn_exactly(seed: int) -> None:
    rng = np.random.default_rng(600 + seed)
    for mode in range(3):
        n_cols = int(rng.integers(3, 9))
        labels = np.sort(rng.choice(20, n_cols, replace=False))
        n = int(rng.integers(1, 60))
        t = rng.choice(labels, n)
        s = [rng.random((n, n_cols)), rng.integers(0, 3, (n, n_cols)).astype(float), np.zeros((n, n_cols))][mode]
        w = rng.random(n) * 5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns when k >= n_classes
            for k in range(1, n_cols + 1):
                for weight in (None, w):
                    sk = skm.top_k_accuracy_score(t, s, k=k, labels=labels, sample_weight=weight)
                    assert same(top_k_accuracy_score(t, s, k=k, labels=labels, sample_weight=weight), sk), (mode, k)
        # labels=0..K-1 is the default
        t0 = rng.integers(0, n_cols, n)
        assert top_k_accuracy_score(t0, s, k=2, labels=np.arange(n_cols)) == top_k_accuracy_score(t0, s, k=2)
    s = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"labels: must be increasing \(column j of y_score scores class labels"):
        top_k_accuracy_score([1, 2], s, k=1, labels=[2, 1, 0])
    with pytest.raises(ValueError, match="labels: must name the 3 columns of y_score, got 2 classes"):
        top_k_accuracy_score([1, 2], s, k=1, labels=[1, 2])
    with pytest.raises(ValueError, match=r"y_true row 1: class 5 is not in labels \[1, 2, 3\]"):
        top_k_accuracy_score([1, 5], s, k=1, labels=[1, 2, 3])
    with pytest.raises(ValueError, match=r"sample_weight: shape must be \(2,\)"):
        top_k_accuracy_score([1, 2], s, k=1, sample_weight=[1.0])


@pytest.mark.parametrize("seed", range(4))
def test_result_zero_division_equals_sklearn_exactly(seed: int) -> None:
    rng = np.random.default_rng(700 + seed)
    for mode in range(6):
        t, p = random_case(rng, mode)
        top = int(max(t.max(), p.max())) + 1
        for zd in (0.0, 1.0):
            for n_classes in (None, top + 2):  # extra classes absent from both sides change no average
                r = classification_scores_from_labels(t, p, beta=2.0, zero_division=zd, n_classes=n_classes)
                k = r.confusion_matrix.shape[0]
                per = sk_prfs(t, p, beta=2.0, average=None, labels=np.arange(k), zero_division=zd)
                for j, m in enumerate(("precision", "recall", "fbeta")):
                    assert same(getattr(r, f"{m}_per_class"), per[j]), (m, zd)
                    for avg in ("micro", "macro", "weighted"):
                        sk = sk_prfs(t, p, beta=2.0, average=avg, zero_division=zd)[j]
                        assert same(getattr(r, f"{m}_{avg}"), sk), (m, avg, zd)
                assert r.zero_division == zd and r.to_dict()["zero_division"] == zd
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # y_pred contains classes not in y_true
                    assert same(r.balanced_accuracy, skm.balanced_accuracy_score(t, p))
    empty = classification_scores_from_labels(np.zeros(0, int), np.zeros(0, int), zero_division=0.0)
    assert math.isnan(empty.fbeta_micro) and math.isnan(empty.fbeta_macro)  # no sample: nan, whatever the fill


def test_dataset_scores_take_zero_division() -> None:
    names = ["cat", "dog", "bird", "fish"]
    labels_t, labels_p = [0, 0, 1, 1, 2], [0, 1, 1, 1, 1]  # bird never predicted, fish in neither
    images = Images(path=obj_array([f"{i}.png" for i in range(5)]), width=[8] * 5, height=[8] * 5)
    schema = LabelSchema.from_names(names, task="classification")
    truth = Dataset(schema, images, Annotations(image=np.arange(5), label=labels_t))
    pred = truth.replace(annotations=Annotations(image=np.arange(5), label=labels_p))
    for zd in ZERO_DIVISION:
        r = classification_scores(truth, pred, zero_division=zd)
        ref = classification_scores_from_labels(labels_t, labels_p, n_classes=4, zero_division=zd)
        assert same(r.precision_per_class, ref.precision_per_class) and same(r.fbeta_macro, ref.fbeta_macro)
        assert same(r.precision_macro, sk_prfs(labels_t, labels_p, average="macro", zero_division=zd)[0])
    assert classification_scores(truth, pred, zero_division=0.0).precision_per_class[2] == 0.0
    assert classification_scores(truth, pred, zero_division=1.0).precision_per_class[2] == 1.0
    assert math.isnan(classification_scores(truth, pred).precision_per_class[2])
