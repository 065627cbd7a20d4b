"""coco_map options that pycocotools cannot take are refused with a message naming the option.

A maxDets of 1.7 makes pycocotools fail (``dtScores[0:maxDet]`` with a float); maslow used to truncate it to 1
silently. An area range of three numbers used to end in numpy's "inhomogeneous shape" error. One maxDets value
may be given as a number, as one IoU threshold may.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maslow.metrics import coco_map
from tests.metrics.cocodata import check, datasets, random_case


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"max_dets": [1.7, 10, 100]}, r"max_dets must be positive integers, got \[1.7, 10, 100\]",
                     id="max-dets-fraction"),
        pytest.param({"max_dets": ["5"]}, "max_dets must be positive integers", id="max-dets-string"),
        pytest.param({"area_ranges": {"all": (0, 1e10), "a": (0, 1, 2)}}, r"area_ranges\['a'\] must be \(lo, hi\)",
                     id="area-three-numbers"),
        pytest.param({"area_ranges": {"a": (5,)}}, r"area_ranges\['a'\] must be \(lo, hi\)", id="area-one-number"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, Any], message: str) -> None:
    truth, pred = datasets(*random_case(0))
    with pytest.raises(ValueError, match=message):
        coco_map(truth, pred, **options)


def test_one_max_dets_value_may_be_a_scalar_as_iou_thresholds() -> None:
    gt, res = random_case(1, max_dt=30)
    result, _ = check(gt, res, max_dets=[100], iou_thresholds=[0.5])
    other = coco_map(*datasets(gt, res), max_dets=100, iou_thresholds=0.5)  # was: TypeError, int not iterable
    assert other.max_dets == (100,)
    np.testing.assert_array_equal(other.precision, result.precision)
    np.testing.assert_array_equal(other.recall, result.recall)
