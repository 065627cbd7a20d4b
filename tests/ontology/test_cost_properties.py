"""estimate_cost against a row-by-row reading of its docstring, on random datasets, rates and strategies."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from maslow.core import Dataset
from maslow.ontology import CostRates, estimate_cost
from tests.ontology.randomdata import random_dataset, random_schema, records


def decode(rle: dict[str, Any]) -> np.ndarray:
    with warnings.catch_warnings():  # pycocotools 2.0.11's decode under numpy 2
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)  # type: ignore[no-any-return]


def rasterised(polygon: Any, h: int, w: int) -> np.ndarray:
    """(h, w) bool: the union of the rings, rasterised by pycocotools itself."""
    rings = [np.asarray(p, np.float64).tolist() for p in polygon if len(p) >= 6]
    if not rings:
        return np.zeros((h, w), bool)
    return decode(coco_mask.merge(coco_mask.frPyObjects(rings, h, w)))


def pixels(rle: dict[str, Any]) -> np.ndarray:
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, list | np.ndarray):
        rle = coco_mask.frPyObjects({"size": [h, w], "counts": list(counts)}, h, w)
    return decode(rle)


def derived(rec: dict[str, Any]) -> bool:
    """The row's mask is its own polygon rasterised (the same pixels): one drawing, held twice."""
    if rec["mask"] is None or rec["polygon"] is None:
        return False
    h, w = rec["mask"]["size"]
    return bool(np.array_equal(rasterised(rec["polygon"], h, w), pixels(rec["mask"])))


def brute_cost(ds: Dataset, rates: CostRates, label_types: Any) -> np.ndarray:
    """(k, 6) seconds: each annotation priced with the label types it carries (or the strategy's), polygons by
    vertex (``vertices_per_polygon`` without any), keypoints by labelled point (the class's names on a row without
    keypoints).
    A mask that is the row's polygon rasterised is not carried on top of the polygon."""
    out = np.zeros((len(ds.schema.classes), 6))
    for rec in records(ds):
        j = ds.schema.index(rec["class"])
        carried = {t for t in ("box", "mask", "polygon", "keypoints") if rec[t] is not None
                   and not (t == "mask" and derived(rec))} or {"tag"}
        if label_types is None:
            use = carried
        elif isinstance(label_types, dict):
            use = set(label_types.get(rec["class"], carried))
        else:
            use = set(label_types)
        n_vertices = sum(len(ring) // 2 for ring in rec["polygon"] or []) or rates.vertices_per_polygon
        kp = rec["keypoints"]  # a point is labelled with coordinates and a visibility not 0 (COCO's 0, 0, 0 is not)
        points = len(ds.schema.classes[j].keypoints) if kp is None else sum(
            1 for x, _, v in kp.tolist() if not np.isnan(x) and not v <= 0)
        out[j] += [rates.box * ("box" in use), rates.mask * ("mask" in use),
                   rates.polygon_vertex * n_vertices * ("polygon" in use), rates.keypoint * points * ("keypoints" in use),
                   rates.tag * ("tag" in use), rates.attribute_value * len(rec["attrs"])]
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_cost_is_the_sum_of_each_annotations_price(seed: int) -> None:
    rng = np.random.default_rng(seed)
    schema = random_schema(rng)
    ds = random_dataset(rng, schema)
    a = ds.annotations
    if a.mask is not None and a.polygon is not None and rng.random() < 0.5:
        # some rows hold their polygon rasterised as their mask (as maslow.sample.shapes does)
        masks = a.mask.copy()
        for r in range(len(a)):
            if masks[r] is not None and a.polygon[r] is not None and rng.random() < 0.7:
                h, w = masks[r]["size"]
                masks[r] = coco_mask.encode(np.asfortranarray(rasterised(a.polygon[r], h, w).astype(np.uint8)))
        ds = ds.replace(annotations=a.with_columns(mask=masks))
    rates = CostRates(*rng.uniform(0, 10, 7).tolist())
    strategy = [None, ["box"], ["polygon", "mask"], {n: ["keypoints", "tag"] for n in schema.names[:1]},
                ["tag"]][int(rng.integers(0, 5))]
    est = estimate_cost(ds, rates=rates, label_types=strategy)
    np.testing.assert_allclose(est.seconds, brute_cost(ds, rates, strategy), atol=1e-9)
    assert est.total_seconds == np.float64(est.seconds.sum())
    d = est.to_dict()
    assert d["total_hours"] == d["total_seconds"] / 3600 and list(d["per_class"]) == list(schema.names)
