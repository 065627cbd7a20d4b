"""zero_division in maslow's multi-label scores: 0.0 and 1.0 fill every 0/0 ratio (per label, per sample, micro)
and count in the averages, bit for bit scikit-learn's precision_recall_fscore_support on seeded random indicator
matrices with empty rows and columns; nan (the default) is checked in test_multilabel.py."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.metrics import multilabel_scores, multilabel_scores_from_indicators


def same(a: object, b: object) -> bool:
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


@pytest.mark.parametrize("seed", range(8))
def test_zero_division_equals_sklearn_exactly(seed: int) -> None:
    rng = np.random.default_rng(800 + seed)
    for _ in range(4):
        n, n_lab = int(rng.integers(1, 40)), int(rng.integers(2, 7))  # sklearn: (n, 1) is binary
        y_true = rng.random((n, n_lab)) < rng.random()
        y_pred = rng.random((n, n_lab)) < rng.random()
        y_true[:, rng.integers(0, n_lab)] = False  # a label never present
        y_pred[rng.integers(0, n)] = False  # a sample with no predicted label
        for zd in (0.0, 1.0, math.nan):
            r = multilabel_scores_from_indicators(y_true, y_pred, zero_division=zd)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                per = skm.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=zd)
                for j, m in enumerate(("precision", "recall", "f1")):
                    assert same(getattr(r, f"{m}_per_class"), per[j]), (m, zd)
                    for avg in ("micro", "macro", "weighted", "samples"):
                        sk = skm.precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=zd)[j]
                        assert same(getattr(r, f"{m}_{avg}"), sk), (m, avg, zd)
            assert same(r.hamming_score, multilabel_scores_from_indicators(y_true, y_pred).hamming_score)
            assert same(r.zero_division, zd)
            assert r.to_dict()["zero_division"] == (None if math.isnan(zd) else zd)


def test_zero_division_fills_every_undefined_ratio_and_is_checked() -> None:
    y_true, y_pred = [[1, 0], [0, 0]], [[1, 0], [0, 0]]  # label 1 and sample 1: nothing true, nothing predicted
    for zd in (0.0, 1.0):
        r = multilabel_scores_from_indicators(y_true, y_pred, zero_division=zd)
        assert r.precision_per_class.tolist() == [1.0, zd] and r.precision_macro == (1.0 + zd) / 2
        assert r.f1_samples == (1.0 + zd) / 2
    r = multilabel_scores_from_indicators(y_true, y_pred)
    assert math.isnan(r.precision_per_class[1]) and r.precision_macro == 1.0 and r.f1_samples == 1.0
    empty = multilabel_scores_from_indicators(np.zeros((0, 2)), np.zeros((0, 2)), zero_division=0.0)
    assert math.isnan(empty.f1_micro) and math.isnan(empty.f1_macro)  # nothing to average: nan, whatever the fill
    with pytest.raises(ValueError, match=r"zero_division: must be 0.0, 1.0 or nan, got 'warn' \(scikit-learn's"):
        multilabel_scores_from_indicators(y_true, y_pred, zero_division="warn")  # type: ignore[arg-type]


def test_dataset_scores_pass_zero_division() -> None:
    images = Images(path=obj_array(["a", "b"]), width=[1, 1], height=[1, 1])
    schema = LabelSchema.from_names(["sky", "sea", "sand"], task="multilabel")
    truth = Dataset(schema, images, Annotations(image=[0, 0, 1], label=[0, 1, 0]))
    pred = truth.replace(annotations=Annotations(image=[0, 1], label=[0, 0]))
    y = np.array([[1, 1, 0], [1, 0, 0]]), np.array([[1, 0, 0], [1, 0, 0]])
    for zd in (0.0, 1.0):
        r = multilabel_scores(truth, pred, zero_division=zd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = skm.precision_recall_fscore_support(*y, average="macro", zero_division=zd)
        assert (r.precision_macro, r.recall_macro, r.f1_macro) == sk[:3] and r.zero_division == zd
    with pytest.raises(ValueError, match="zero_division"):
        multilabel_scores(truth, pred, zero_division=0.5)
