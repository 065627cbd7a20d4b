"""multilabel_scores(attributes=...): the threshold applies to the predictions, not to the truth's 0/1 values.

With predicted logits (threshold 0), a truth value 0 used to count as set (``0 >= 0``), so every truth attribute
was set; with a threshold above 1, a truth value 1 counted as not set.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.metrics import multilabel_scores


@pytest.mark.parametrize("threshold", [0.0, -1.5, 0.5, 2.0])
def test_attribute_threshold_applies_to_predictions_only(threshold: float) -> None:
    rng = np.random.default_rng(0)
    n = 40
    images = Images(path=obj_array(["a.jpg"]), width=[99], height=[99])
    xy = rng.uniform(0, 50, (n, 2))
    truth_01 = rng.random((n, 2)) < 0.4
    logits = np.round(rng.normal(threshold, 2.0, (n, 2)), 1)  # predicted scores around the threshold
    truth = Dataset(LabelSchema.from_names(["car"]), images, Annotations(
        image=np.zeros(n, np.int64), label=np.zeros(n, np.int64), box=np.c_[xy, xy + 5],
        attributes={"occluded": obj_array(truth_01[:, 0].astype(int).tolist()),
                    "truncated": obj_array(truth_01[:, 1].astype(float).tolist())}))
    pred = truth.replace(annotations=truth.annotations.with_columns(attributes={
        "occluded": obj_array(logits[:, 0].tolist()), "truncated": obj_array(logits[:, 1].tolist())}))
    r = multilabel_scores(truth, pred, attributes=["occluded", "truncated"], threshold=threshold)
    y_pred = logits >= threshold
    np.testing.assert_array_equal(r.support_per_class, truth_01.sum(axis=0))  # was n, n at threshold 0
    assert r.hamming_loss == skm.hamming_loss(truth_01, y_pred)
    assert r.subset_accuracy == skm.accuracy_score(truth_01, y_pred)
