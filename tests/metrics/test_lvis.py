"""``lvis_map``: each federated rule of LVIS on a two-image case whose AP can be worked out by hand, the protocol
against ``coco_map`` (pycocotools' numbers) where the two coincide, options, errors and the result object.

The bit-for-bit comparison with lvis-api itself is in ``test_lvis_reference.py`` (run where lvis-api is installed);
``make_case`` (generated LVIS-like files) serves both.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import maslow.metrics.lvis
from maslow.core.dataset import Dataset
from maslow.errors import InvalidDatasetError
from maslow.io import coco, coco_results
from maslow.metrics import coco_map
from maslow.metrics.lvis import lvis_map

EPS = np.spacing(1)


def make_case(seed: int, *, n_images: int = 24, n_cats: int = 12, dets: tuple[int, int] = (5, 40),
              segm: bool = False, crowd: float = 0.0, ignore: float = 0.0, id_zero: bool = False,
              score_decimals: int = 1, freqs: tuple[str, ...] = ("r", "c", "f"), p_nel: float = 0.3,
              all_negative: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An LVIS-like truth dict and results list (small; few score values, so ties are many). ``all_negative``:
    every class absent from an image is in its ``neg_category_ids`` (every prediction is evaluated)."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    cats = [{"id": 3 * c + 2, "name": f"c{c}", "frequency": freqs[c % len(freqs)], "synset": f"s{c}"}
            for c in range(n_cats)]
    cats = [cats[i] for i in rng.permutation(n_cats)]  # not in id order
    cat_ids = np.asarray([c["id"] for c in cats])
    images, anns, results = [], [], []
    for i in range(n_images):
        w, h = int(rng.integers(40, 400)), int(rng.integers(40, 400))
        img_id = int(rng.integers(1, 10_000)) * 100 + i
        pos = rng.choice(cat_ids[:-1], int(rng.integers(0, 4)), replace=False)  # the last class: never in truth
        n_each = rng.integers(1, 4, len(pos))
        cls = np.repeat(pos, n_each)
        others = np.setdiff1d(cat_ids, pos)
        neg = others if all_negative else rng.choice(others, int(rng.integers(0, len(others) // 2 + 1)), replace=False)
        nel = pos[rng.random(len(pos)) < p_nel]
        images.append({"id": img_id, "width": w, "height": h, "file_name": f"{img_id}.jpg",
                       "neg_category_ids": [int(c) for c in neg], "not_exhaustive_category_ids": [int(c) for c in nel]})
        objs = []
        for c in cls.tolist():
            bw, bh = rng.uniform(3, w / 2), rng.uniform(3, h / 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            bb = [round(float(v), 1) for v in (x, y, bw, bh)]
            a: dict[str, Any] = {"id": len(anns) + 1, "image_id": img_id, "category_id": int(c), "bbox": bb,
                                 "area": round(bb[2] * bb[3] * float(rng.uniform(0.5, 1.0)), 1)}
            if segm:
                poly = [bb[0], bb[1], bb[0] + bb[2], bb[1], bb[0] + bb[2] / 2, bb[1] + bb[3]]
                a["segmentation"] = [[round(v, 1) for v in poly]]
                a["area"] = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w))))
            if crowd and rng.random() < crowd:
                a["iscrowd"] = 1
            if ignore and rng.random() < ignore:
                a["ignore"] = 1
            anns.append(a)
            objs.append((bb, c))
        for _ in range(int(rng.integers(*dets))):
            if objs and rng.random() < 0.6:
                bb, c = objs[int(rng.integers(len(objs)))]
                j = rng.normal(0, 0.15, 4)
                box = [bb[0] + j[0] * bb[2], bb[1] + j[1] * bb[3], bb[2] * np.exp(j[2]), bb[3] * np.exp(j[3])]
                if rng.random() < 0.2:
                    c = rng.choice(cat_ids)
            else:
                bw, bh = rng.uniform(3, w / 2), rng.uniform(3, h / 2)
                box = [rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh]
                c = rng.choice(cat_ids)
            box = [round(float(v), 1) for v in box]
            r: dict[str, Any] = {"image_id": img_id, "category_id": int(c),
                                 "score": round(float(rng.random()), score_decimals)}
            if segm:
                rle = mask_utils.frPyObjects([[box[0], box[1], box[0] + box[2], box[1], box[0] + box[2] / 2,
                                               box[1] + box[3]]], h, w)[0]
                r["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
            else:
                r["bbox"] = box
            results.append(r)
    if id_zero and anns:
        anns[0]["id"] = 0
    order = rng.permutation(len(results))  # results not grouped by image: file order still breaks score ties
    return {"images": images, "annotations": anns, "categories": cats}, [results[i] for i in order]


def read(tmp_path: Path, gt: dict[str, Any], results: list[dict[str, Any]]) -> tuple[Dataset, Dataset]:
    """Truth and predictions as a user gets them: the files written, then read by maslow's COCO readers."""
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(results))
    truth, _ = coco.parse(gt_path)
    pred, _ = coco_results.parse(dt_path, like=truth)
    return truth, pred


def freq(gt: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["frequency"] for c in gt["categories"]}


# -- the rules on hand-checkable cases ---------------------------------------------------------------------
# Two classes, A (id 1, rare) and B (id 2, frequent); images 100 x 100; boxes [x, y, w, h].
CATS = [{"id": 1, "name": "A", "frequency": "r"}, {"id": 2, "name": "B", "frequency": "f"}]
FREQ = {"A": "r", "B": "f"}


def lvis_gt(images: list[tuple[int, list[int], list[int]]], anns: list[dict[str, Any]]) -> dict[str, Any]:
    """images: (id, neg_category_ids, not_exhaustive_category_ids); anns: image_id, category_id, bbox (+ keys)."""
    return {
        "images": [{"id": i, "width": 100, "height": 100, "file_name": f"{i}.jpg", "neg_category_ids": neg,
                    "not_exhaustive_category_ids": nel} for i, neg, nel in images],
        "annotations": [{"id": j + 1, "area": a["bbox"][2] * a["bbox"][3], **a} for j, a in enumerate(anns)],
        "categories": CATS,
    }


def det(image_id: int, category_id: int, bbox: list[float], score: float) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def ap_of(r: Any, name: str) -> float:
    """AP of one class (area all): the mean of its precision over thresholds and recall points."""
    k = r.class_names.index(name)
    return float(np.mean(r.precision[:, :, k, 0]))


@pytest.mark.parametrize("negative", [True, False], ids=["B-verified-absent", "B-unverified"])
def test_a_class_neither_positive_nor_negative_is_not_evaluated(tmp_path: Path, negative: bool) -> None:
    # image 1 holds an A; image 2 a B. A false B on image 1 (score .9) ranks above the true B (.5).
    gt = lvis_gt([(1, [2] if negative else [], []), (2, [], [])],
                 [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
                  {"image_id": 2, "category_id": 2, "bbox": [50, 50, 20, 20]}])
    truth, pred = read(tmp_path, gt, [det(1, 1, [10, 10, 20, 20], 0.7), det(1, 2, [60, 60, 10, 10], 0.9),
                                      det(2, 2, [50, 50, 20, 20], 0.5)])
    r = lvis_map(truth, pred, frequency=FREQ)
    assert ap_of(r, "A") == pytest.approx(1.0)
    if negative:  # B is known absent from image 1: the false B is an FP ranked first, precision 1/2 throughout
        assert ap_of(r, "B") == pytest.approx(0.5)
        assert r.ap == pytest.approx(0.75) and r.n_unverified == 0 and r.n_evaluated == 3
    else:  # nobody checked image 1 for B: the prediction is not judged
        assert ap_of(r, "B") == pytest.approx(1.0)
        assert r.ap == pytest.approx(1.0) and r.n_unverified == 1 and r.n_evaluated == 2
    # the frequency groups: A is rare, B frequent, no class common
    assert r.ap_rare == pytest.approx(ap_of(r, "A")) and r.ap_frequent == pytest.approx(ap_of(r, "B"))
    assert math.isnan(r.ap_common) and r.frequency == ("r", "f")


@pytest.mark.parametrize("exhaustive", [True, False], ids=["exhaustive", "not-exhaustive"])
def test_unmatched_predictions_of_a_not_exhaustive_class_are_ignored(tmp_path: Path, exhaustive: bool) -> None:
    # image 1 holds an A and a B, B not exhaustively annotated there; image 2 holds a B
    gt = lvis_gt([(1, [], [] if exhaustive else [2]), (2, [], [])],
                 [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
                  {"image_id": 1, "category_id": 2, "bbox": [50, 50, 20, 20]},
                  {"image_id": 2, "category_id": 2, "bbox": [30, 30, 20, 20]}])
    truth, pred = read(tmp_path, gt, [det(1, 2, [70, 5, 10, 10], 0.9),  # matches nothing
                                      det(1, 2, [50, 50, 20, 20], 0.8), det(2, 2, [30, 30, 20, 20], 0.5),
                                      det(1, 1, [10, 10, 20, 20], 0.6)])
    r = lvis_map(truth, pred, frequency=FREQ)
    k = r.class_names.index("B")
    assert np.all(r.recall[:, k, 0] == 1.0)  # the matched B of image 1 stays a true positive either way
    # exhaustive: FP, TP, TP -> precision 2/3 at every recall point; not exhaustive: the FP is ignored
    assert ap_of(r, "B") == pytest.approx(2 / 3 if exhaustive else 1.0)


@pytest.mark.parametrize("max_dets", [2, 3])
def test_the_cap_is_per_image_and_counts_unjudged_predictions(tmp_path: Path, max_dets: int) -> None:
    gt = lvis_gt([(1, [], [])], [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}])
    # two B predictions (B: neither positive nor negative in image 1) outscore the true A
    truth, pred = read(tmp_path, gt, [det(1, 2, [60, 60, 10, 10], 0.9), det(1, 2, [60, 5, 10, 10], 0.8),
                                      det(1, 1, [10, 10, 20, 20], 0.1)])
    r = lvis_map(truth, pred, frequency=FREQ, max_dets=max_dets)
    assert ap_of(r, "A") == pytest.approx(1.0 if max_dets == 3 else 0.0)
    assert (r.n_capped, r.n_unverified, r.n_evaluated) == ((0, 2, 1) if max_dets == 3 else (1, 2, 0))
    assert r.ar_300 == pytest.approx(1.0 if max_dets == 3 else 0.0)


@pytest.mark.parametrize("true_first", [True, False])
def test_score_ties_at_the_cap_keep_the_earlier_prediction(tmp_path: Path, true_first: bool) -> None:
    gt = lvis_gt([(1, [], [])], [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}])
    hit, miss = det(1, 1, [10, 10, 20, 20], 0.5), det(1, 1, [70, 70, 10, 10], 0.5)
    truth, pred = read(tmp_path, gt, [hit, miss] if true_first else [miss, hit])
    r = lvis_map(truth, pred, frequency=FREQ, max_dets=1)
    assert r.ap == pytest.approx(1.0 if true_first else 0.0) and r.n_capped == 1


def test_crowd_flags_are_not_used(tmp_path: Path) -> None:
    # an A marked iscrowd in image 1 (missed), a plain A in image 2 (found)
    gt = lvis_gt([(1, [], []), (2, [], [])],
                 [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "iscrowd": 1},
                  {"image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20]}])
    truth, pred = read(tmp_path, gt, [det(2, 1, [10, 10, 20, 20], 0.9)])
    r = lvis_map(truth, pred, frequency=FREQ)
    # the crowd is a missed A: precision 1 up to recall .5 (51 of the 101 recall points), then 0
    assert ap_of(r, "A") == pytest.approx(51 / 101) and np.all(r.recall[:, 0, 0] == 0.5)
    assert coco_map(truth, pred).map_50_95 == pytest.approx(1.0)  # COCO ignores it


def test_ignore_key_ignores_one_object_matched_once(tmp_path: Path) -> None:
    gt = lvis_gt([(1, [], []), (2, [], [])],
                 [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "ignore": 1},
                  {"image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20]}])
    # two predictions on the ignored A: the first is ignored with it, the second finds it taken (an FP: a plain
    # object matches once, where a COCO crowd region would take both); then the true A of image 2
    truth, pred = read(tmp_path, gt, [det(1, 1, [10, 10, 20, 20], 0.9), det(1, 1, [10, 10, 20, 20], 0.8),
                                      det(2, 1, [10, 10, 20, 20], 0.5)])
    r = lvis_map(truth, pred, frequency=FREQ)
    assert ap_of(r, "A") == pytest.approx(0.5) and np.all(r.recall[:, 0, 0] == 1.0)
    assert r.precision[0, 100, 0, 0] == 1 / (1 + 1 + EPS)  # one FP before the one true positive


# -- against coco_map where the protocols coincide ----------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_coco_map_when_every_prediction_is_judged(tmp_path: Path, seed: int) -> None:
    """Every absent class a verified negative, all classes exhaustive, no crowd and no image past the cap: LVIS's
    arrays are pycocotools' at maxDets 300 (coco_map equals pycocotools bit for bit)."""
    gt, results = make_case(seed, all_negative=True, p_nel=0.0, n_images=40, dets=(0, 60))
    truth, pred = read(tmp_path, gt, results)
    r = lvis_map(truth, pred, frequency=freq(gt))
    c = coco_map(truth, pred, max_dets=(300,))
    assert r.n_unverified == 0 and r.n_capped == 0 and r.n_evaluated == len(results)
    assert np.array_equal(r.precision, c.precision[..., 0]) and np.array_equal(r.recall, c.recall[..., 0])
    assert np.array_equal(r.scores, c.scores[..., 0])
    assert r.ar_300 == c.ar_by_max_dets[300]
    assert r.ap == float(np.mean(c.precision[..., 0, 0][c.precision[..., 0, 0] > -1]))
    assert np.array_equal(r.ap_per_class, c.ap_per_class, equal_nan=True)


@pytest.mark.parametrize(("seed", "max_dets", "segm"), [(2, 300, False), (3, 15, False), (4, 15, True)])
def test_equals_coco_map_on_the_predictions_lvis_keeps(tmp_path: Path, seed: int, max_dets: int, segm: bool) -> None:
    """The cap and the verified-class filter, applied to the results in plain Python as lvis-api's ``LVISResults``
    and ``_prepare`` do, then COCO evaluation: the same arrays as ``lvis_map`` on all the results."""
    gt, results = make_case(seed, p_nel=0.0, segm=segm, dets=(0, 40))
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in results:
        by_image[d["image_id"]].append(d)
    capped = [d for ds in by_image.values() for d in sorted(ds, key=lambda d: d["score"], reverse=True)[:max_dets]]
    verified = {im["id"]: set(im["neg_category_ids"]) for im in gt["images"]}
    for a in gt["annotations"]:
        verified[a["image_id"]].add(a["category_id"])
    kept = [d for d in capped if d["category_id"] in verified[d["image_id"]]]
    assert len(capped) < len(results) or max_dets == 300
    assert len(kept) < len(capped)
    truth, pred = read(tmp_path, gt, results)
    iou_type = "segm" if segm else "bbox"
    r = lvis_map(truth, pred, frequency=freq(gt), max_dets=max_dets, iou_type=iou_type)
    (tmp_path / "kept").mkdir()
    truth_k, pred_k = read(tmp_path / "kept", gt, kept)
    c = coco_map(truth_k, pred_k, max_dets=(max_dets,), iou_type=iou_type)
    assert r.n_evaluated == len(kept) and r.n_capped == len(results) - len(capped)
    assert np.array_equal(r.precision, c.precision[..., 0]) and np.array_equal(r.recall, c.recall[..., 0])


# -- options, errors, the result ------------------------------------------------------------------------------
def _case(tmp_path: Path) -> tuple[dict[str, Any], Dataset, Dataset]:
    gt, results = make_case(5, n_images=8)
    return (gt, *read(tmp_path, gt, results))


def test_frequency_from_the_category_keys_kept_in_info(tmp_path: Path) -> None:
    gt, truth, pred = _case(tmp_path)
    kept = {str(c["id"]): {"frequency": c["frequency"], "synset": c["synset"]} for c in gt["categories"]}
    a = lvis_map(truth.replace(info={**truth.info, "coco_categories": kept}), pred)
    b = lvis_map(truth, pred, frequency=freq(gt))
    assert a.stats.tolist() == b.stats.tolist() and a.frequency == b.frequency
    c = lvis_map(truth, pred)  # read_coco keeps the categories' own keys: the frequency comes with the file
    assert c.stats.tolist() == b.stats.tolist() and c.frequency == b.frequency
    with pytest.raises(InvalidDatasetError, match=r"info\['coco_categories'\].*frequency"):
        lvis_map(truth.replace(info={}), pred)


@pytest.mark.parametrize(("column", "value", "match"), [
    ("neg_category_ids", None, r"extra\['neg_category_ids'\]: LVIS evaluation needs"),
    ("not_exhaustive_category_ids", None, r"extra\['not_exhaustive_category_ids'\]: LVIS evaluation needs"),
    ("neg_category_ids", "x", r"extra\['neg_category_ids'\] row 3: must be a list of category ids, got 'x'"),
    ("neg_category_ids", [1.5], r"extra\['neg_category_ids'\] row 3: category ids must be 64-bit integers, got 1.5"),
    ("not_exhaustive_category_ids", [2**70], r"row 3: category ids must be 64-bit integers, got 11805916"),
])
def test_bad_image_columns_are_named(tmp_path: Path, column: str, value: Any, match: str) -> None:
    gt, truth, pred = _case(tmp_path)
    extra = dict(truth.images.extra)
    if value is None:
        del extra[column]
    else:
        col = extra[column].copy()
        col[3] = value
        extra[column] = col
    truth = truth.replace(images=dataclasses.replace(truth.images, extra=extra))
    with pytest.raises(InvalidDatasetError, match=match):
        lvis_map(truth, pred.replace(images=truth.images), frequency=freq(gt))


def test_bad_options_are_named(tmp_path: Path) -> None:
    gt, truth, pred = _case(tmp_path)
    f = freq(gt)
    with pytest.raises(ValueError, match="iou_type must be 'bbox' or 'segm', got 'keypoints'"):
        lvis_map(truth, pred, frequency=f, iou_type="keypoints")
    with pytest.raises(ValueError, match="max_dets must be a positive integer or None, got 0"):
        lvis_map(truth, pred, frequency=f, max_dets=0)
    with pytest.raises(ValueError, match=r"frequency\['nope'\]: must name a class"):
        lvis_map(truth, pred, frequency={**f, "nope": "r"})
    with pytest.raises(ValueError, match="class 'c0': frequency must be 'r', 'c' or 'f', got 'x'"):
        lvis_map(truth, pred, frequency={**f, "c0": "x"})
    with pytest.raises(ValueError, match="lvis_map: pred_area must be 'geometry' or 'box', got 'mask'"):
        lvis_map(truth, pred, frequency=f, pred_area="mask")
    no_score = pred.replace(annotations=pred.annotations.with_columns(score=None))
    with pytest.raises(InvalidDatasetError, match="score"):
        lvis_map(truth, no_score, frequency=f)


def test_result_is_frozen_json_safe_and_inputs_untouched(tmp_path: Path) -> None:
    gt, truth, pred = _case(tmp_path)
    before = pred.annotations.box.copy(), truth.images.extra["neg_category_ids"].copy()
    r = lvis_map(truth, pred, frequency=freq(gt))
    assert np.array_equal(pred.annotations.box, before[0])
    assert truth.images.extra["neg_category_ids"].tolist() == before[1].tolist()
    with pytest.raises(ValueError):
        r.precision[0, 0, 0, 0] = 2.0
    d = json.loads(json.dumps(r.to_dict()))
    assert d["stats"]["ap"] == r.ap and d["lvis_stats"]["AR@300"] == r.stats[9]
    assert list(d["lvis_stats"]) == list(r.lvis_keys) and d["frequency"] == list(r.frequency)
    assert r.precision.shape == (10, 101, len(gt["categories"]), 4) and r.recall.shape == (10, len(gt["categories"]), 4)
    ids = sorted(c["id"] for c in gt["categories"])
    names = {c["id"]: c["name"] for c in gt["categories"]}
    assert list(r.class_names) == [names[i] for i in ids]  # the K axis in category id order, as lvis-api
    table = r.to_pandas()
    assert list(table.columns[:4]) == ["class", "frequency", "ap", "ap_0.50"]
    has = ~np.isnan(r.ap_per_class).all(axis=1)
    assert np.allclose(table["ap"][has], r.ap_per_class[has].mean(axis=1)) and table["ap"][~has].isna().all()


def test_perfect_predictions_score_one_and_none_score_zero(tmp_path: Path) -> None:
    gt, truth, _ = _case(tmp_path)
    perfect = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
    r = lvis_map(truth, perfect, frequency=freq(gt))
    assert r.ap == pytest.approx(1.0) and r.ar_300 == pytest.approx(1.0)
    nothing = perfect.select(np.zeros(truth.n_annotations, bool))
    z = lvis_map(truth, nothing, frequency=freq(gt))
    assert z.ap == 0.0 and z.ar_300 == 0.0 and z.n_evaluated == 0


def test_doctests() -> None:
    failures, tried = doctest.testmod(maslow.metrics.lvis)
    assert tried and not failures
