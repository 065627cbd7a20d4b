"""classification_scores reads per-class scores given as an object column of per-row lists, as operating_point does.

JSON-like readers give ``annotations.extra["probs"]`` as an object array whose rows are lists; ``operating_point``
read that, ``classification_scores`` refused it ("got dtype object"), so the same predictions gave operating
points but no top-k accuracy.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.metrics import classification_scores, operating_point, top_k_accuracy_score


def test_probs_as_an_object_column_of_lists_is_read_as_operating_point_reads_it() -> None:
    rng = np.random.default_rng(0)
    n = 30
    images = Images(path=np.array([f"{i}.jpg" for i in range(n)], object), width=[8] * n, height=[8] * n)
    truth = Dataset(LabelSchema.from_names(["a", "b", "c", "d"], task="classification"), images,
                    Annotations(image=np.arange(n), label=rng.integers(0, 4, n)))
    probs = np.round(rng.random((n, 4)), 1)  # ties, rows not summing to 1
    rows = np.empty(n, object)
    for i in range(n):
        rows[i] = probs[i].tolist()
    pred = truth.replace(annotations=Annotations(image=np.arange(n), label=probs.argmax(1), extra={"probs": rows}))
    r = classification_scores(truth, pred, k=(1, 2, 3))  # was: InvalidDatasetError, "got dtype object"
    for k in (1, 2, 3):
        assert r.top_k_accuracy[k] == top_k_accuracy_score(truth.annotations.label, probs, k=k)
        assert r.top_k_accuracy[k] == skm.top_k_accuracy_score(truth.annotations.label, probs, k=k, labels=range(4))
    assert operating_point(truth, pred).thresholds() == operating_point(
        truth, pred.replace(annotations=pred.annotations.with_columns(extra={"probs": probs}))).thresholds()
