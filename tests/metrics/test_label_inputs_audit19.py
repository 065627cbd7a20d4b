"""Audit 19's library findings: a nan in ``probs`` is an InvalidDatasetError naming its row and image (not a plain
ValueError about ``y_score``); ``operating_point`` refuses infinite scores (a threshold of ``inf`` means "keep
nothing"); ``slice_metrics`` keeps values of different types apart (``True``, ``1``, ``1.0``)."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.errors import InvalidDatasetError
from maslow.metrics import classification_scores, operating_point, slice_metrics
from maslow.metrics.compare import compare_labels
from maslow.metrics.slices import _groups
from maslow.sample import shapes


def _truth(n: int = 4) -> Dataset:
    images = Images(path=np.array([f"{i}.jpg" for i in range(n)], object), width=[8] * n, height=[8] * n)
    return Dataset(LabelSchema.from_names(["a", "b", "c"], task="classification"), images,
                   Annotations(image=np.arange(n), label=[0, 1, 1, 1][:n]))


def _pred(truth: Dataset, probs: list[list[float]]) -> Dataset:
    p = np.asarray(probs, float)
    return truth.replace(annotations=Annotations(image=np.arange(len(p)), label=np.nan_to_num(p).argmax(1),
                                                 extra={"probs": p}))


GOOD = [[.7, .2, .1], [.1, .9, 0], [.2, .8, 0], [.3, .7, 0]]


def test_nan_probability_is_an_invalid_dataset_error_naming_row_and_image() -> None:
    truth = _truth()
    pred = _pred(truth, [GOOD[0], [.1, np.nan, 0], GOOD[2], [np.nan, np.nan, 1]])
    with pytest.raises(InvalidDatasetError, match=r"pred\.annotations\.extra\['probs'\] row 1 \(image '1\.jpg'\): "
                                                  r"must be numbers, got nan \(2 rows\)"):
        classification_scores(truth, pred)
    with pytest.raises(InvalidDatasetError, match=r"extra\['probs'\] row 1"):  # compare_labels reaches it too
        compare_labels(truth, _pred(truth, GOOD), pred, n_bootstrap=0)
    assert classification_scores(truth, _pred(truth, GOOD)).top_k_accuracy[1] == 1.0  # numbers still score


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_operating_point_refuses_an_infinite_probability(bad: float) -> None:
    truth = _truth()
    probs = [list(r) for r in GOOD]
    probs[2][0] = bad
    with pytest.raises(InvalidDatasetError, match=r"extra\['probs'\] row 2 \(image '2\.jpg'\): must be finite "
                                                  rf"numbers, got {bad} \(1 rows\)"):
        operating_point(truth, _pred(truth, probs), cost_fp=1, cost_fn=1)


def test_operating_point_inf_threshold_keeps_nothing() -> None:
    """With finite scores, a class whose threshold is inf keeps nothing (no TP, no FP): what to_dict's None says."""
    truth = _truth()
    op = operating_point(truth, _pred(truth, GOOD), cost_fp=100, cost_fn=1)
    for k in np.flatnonzero(np.isinf(op.threshold)):
        assert op.tp[k] == 0 and op.fp[k] == 0
        assert op.to_dict()["classes"][k]["threshold"] is None
    assert np.isinf(op.threshold).any()  # class a: one truth image, FP cost 100 on the rest -> keep nothing


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_detection_operating_point_refuses_an_infinite_score(bad: float) -> None:
    truth = shapes(4, seed=0)
    score = np.full(truth.n_annotations, .5)
    score[1] = bad
    pred = truth.replace(annotations=truth.annotations.with_columns(score=score))
    with pytest.raises(InvalidDatasetError, match=rf"pred\.annotations\.score row 1 .*must be a finite number.*got "
                                                  rf"{bad} \(1 rows\)"):
        operating_point(truth, pred, cost_fn=1)
    score[1] = .5
    op = operating_point(truth, truth.replace(annotations=truth.annotations.with_columns(score=score)), cost_fn=1)
    assert op.overall_fn == 0 and np.isfinite(op.threshold).all()


def test_groups_keep_values_of_other_types_apart() -> None:
    col = np.array([1, 1.0, True, "1", None, float("nan"), np.int64(1), np.float64(1.0), False, 0], object)
    values, of = _groups(col)
    assert len(values) == 7
    kinds = {(type(v).__name__, v) for v in values}
    assert kinds == {("int", 1), ("float", 1.0), ("bool", True), ("str", "1"), ("NoneType", None), ("bool", False),
                     ("int", 0)}
    slot = {(type(v).__name__, v): i for i, v in enumerate(values)}
    # numpy scalars join the slice of the Python value they hold; None and nan are one slice
    assert of.tolist() == [slot[("int", 1)], slot[("float", 1.0)], slot[("bool", True)], slot[("str", "1")],
                           slot[("NoneType", None)], slot[("NoneType", None)], slot[("int", 1)],
                           slot[("float", 1.0)], slot[("bool", False)], slot[("int", 0)]]
    assert values[-1] is None  # missing values last, as before


def test_slice_metrics_bool_and_int_flags_are_two_slices() -> None:
    import dataclasses

    truth = shapes(8, seed=1)
    flags = np.array([True, 1, True, 1, True, 1, True, 1], object)
    truth = truth.replace(images=dataclasses.replace(truth.images, extra={**truth.images.extra, "flag": flags}))
    pred = truth.replace(annotations=truth.annotations.with_columns(score=np.full(truth.n_annotations, .9)))
    r = slice_metrics(truth, pred, by="flag", n_boot=0, rng=0, metric=lambda t, p: float(t.n_images))
    assert len(r.values) == 2 and sorted(type(v).__name__ for v in r.values) == ["bool", "int"]
    assert r.n_images.tolist() == [4, 4]
    assert r.overall == 8.0 and r.value.tolist() == [4.0, 4.0]
