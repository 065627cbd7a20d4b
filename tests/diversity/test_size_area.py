"""Size buckets of stats and coverage measure the annotation area COCO evaluation uses for APs/APm/APl (the
``area`` field, else the segment's pixels, else the box's w x h), not the box area: checked against the area
field of the COCO excerpt read with plain json, and against pycocotools' own polygon and mask areas."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from maslow import io
from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.core import masks as M
from maslow.core.schema import ClassDef
from maslow.core.types import obj_array
from maslow.diversity import coverage, dataset_stats
from maslow.diversity.stats import annotation_areas
from tests.conftest import shared_path

BUCKETS = ("small", "medium", "large")


def _bucket(area: float) -> str:
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


@pytest.mark.shared
def test_coco_excerpt_buckets_follow_the_area_field() -> None:
    path = shared_path("coco_instances_10", "annotations", "instances_val2017_subset.json")
    doc = json.loads(path.read_text())
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    every, not_crowd = Counter(), Counter()
    for a in doc["annotations"]:
        every[cats[a["category_id"]], _bucket(a["area"])] += 1
        if not a["iscrowd"]:
            not_crowd[cats[a["category_id"]], _bucket(a["area"])] += 1
    ds = io.read_coco(path)
    s = dataset_stats(ds)
    assert s.size_per_class.tolist() == [[every[n, b] for b in BUCKETS] for n in s.names]
    assert s.size_per_class[s.names.index("person")].tolist() == [25, 10, 6]  # the box area gave 20, 10, 11
    assert s.to_dict()["size_area"].startswith("annotation area")
    cov = coverage(ds, pixels=False)  # crowd regions left out
    assert {n: list(d.counts) for n, d in cov.per_class.items()} == {
        n: [not_crowd[n, b] for b in BUCKETS] for n in s.names}
    assert list(cov.objects["size"].counts) == [sum(not_crowd[n, b] for n in s.names) for b in BUCKETS]


def test_area_field_then_segment_then_box() -> None:
    h, w = 120, 160
    poly = [10.0, 10.0, 60.0, 12.0, 50.0, 70.0]  # ~1450 px: medium; its box (50 x 60) is 3000
    mask = np.zeros((h, w), bool)
    mask[5:35, 5:35] = True  # 900 px: small; its box is large in the row below
    rle = M.encode(mask)
    kinds = [ClassDef("thing"), ClassDef("stuff", kind="semantic")]
    box = np.array([[0, 0, 100, 100],    # area field 500: small, though its box is large
                    [0, 0, 100, 100],    # area field NaN, polygon: its pycocotools area
                    [0, 0, 120, 110],    # area field NaN, mask: its pixels
                    [0, 0, 31, 33],      # no field, no segment: w x h = 1023, small
                    [np.nan] * 4,        # a tag: no bucket
                    [np.nan] * 4], float)  # a semantic region: no bucket
    poly_col = obj_array([None, [poly], None, None, None, None])
    mask_col = obj_array([None, None, rle, None, None, rle])
    ds = Dataset(LabelSchema(classes=tuple(kinds)), Images(path=["a.jpg"], width=[w], height=[h]),
                 Annotations(image=[0] * 6, label=[0, 0, 0, 0, 0, 1], box=box, polygon=poly_col, mask=mask_col,
                             extra={"area": np.array([500.0, np.nan, np.nan, np.nan, np.nan, np.nan])}))
    poly_area = float(coco_mask.area(coco_mask.merge(coco_mask.frPyObjects([poly], h, w))))
    want = [500.0, poly_area, float(mask.sum()), 31.0 * 33.0]
    got = annotation_areas(ds)
    assert got[:4].tolist() == want and np.isnan(got[4])
    s = dataset_stats(ds)
    assert s.size_per_class.tolist() == [[Counter(_bucket(x) for x in want)[b] for b in BUCKETS], [0, 0, 0]]
    assert s.size_per_class[0].tolist() == [3, 1, 0]
    assert list(coverage(ds, pixels=False).objects["size"].counts) == [3, 1, 0]


def test_written_coco_keeps_the_buckets(tmp_path: Path) -> None:
    """The COCO writer fills ``area`` the same way, so stats agree before and after a round trip."""
    from maslow.sample import shapes

    ds = shapes(12, seed=1)
    io.write_coco(ds, tmp_path / "a.json")
    back = io.read_coco(tmp_path / "a.json")
    doc = json.loads((tmp_path / "a.json").read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    want = Counter((names[a["category_id"]], _bucket(a["area"])) for a in doc["annotations"])
    for d in (ds, back):
        s = dataset_stats(d)
        assert s.size_per_class.tolist() == [[want[n, b] for b in BUCKETS] for n in s.names]
