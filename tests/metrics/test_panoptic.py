"""``panoptic_quality``: panopticapi's PQ/SQ/RQ on hand-computed cases (the strict 0.5 threshold, VOID left out of
unions, crowd regions, predictions mostly on VOID, things and stuff, absent classes), a rule-by-rule reference on
generated id maps, the two ways of counting overlaps, errors, the result object, the CLI module, and hotcoco's
``PanopticEval`` on generated COCO panoptic files (skipped without hotcoco)."""

from __future__ import annotations

import contextlib
import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.cli._located import located as _located
from maslow.cli._metrics_panoptic import eval_panoptic, read_panoptic_pred, wants_panoptic
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError, InvalidDatasetError, MaslowError, SchemaError
from maslow.io.coco_panoptic import TASKS, read_coco_panoptic, write_coco_panoptic
from maslow.metrics._panoptic_pairs import overlaps
from maslow.metrics.panoptic import PanopticResult, is_panoptic, panoptic_quality

CLASSES = ("car", "person", "road", "sky")  # things, then stuff
SCHEMA = LabelSchema(classes=(ClassDef("car", id=1), ClassDef("person", id=2), ClassDef("road", kind="semantic", id=3),
                              ClassDef("sky", kind="semantic", id=4)), tasks=TASKS)
Seg = tuple[int, str, bool]  # segment id in the map, class, iscrowd


def dataset(maps: Sequence[np.ndarray], segs: Sequence[Sequence[Seg]], *, areas: dict[int, float] | None = None,
            schema: LabelSchema = SCHEMA) -> Dataset:
    """One annotation per listed segment, its mask the pixels of its id in the image's id map."""
    h, w = maps[0].shape
    rows: dict[str, list[Any]] = defaultdict(list)
    for i, (m, ss) in enumerate(zip(maps, segs, strict=True)):
        for sid, cls, crowd in ss:
            rows["image"].append(i)
            rows["label"].append(schema.index(cls))
            rows["mask"].append(M.encode(m == sid))
            rows["iscrowd"].append(crowd)
            rows["area"].append(float((areas or {}).get(sid, np.count_nonzero(m == sid))))
            rows["id"].append(sid)
    n = len(maps)
    ann = Annotations(image=np.asarray(rows["image"], np.int64), label=np.asarray(rows["label"], np.int64),
                      mask=obj_array(rows["mask"]), iscrowd=np.asarray(rows["iscrowd"], bool),
                      extra={"area": np.asarray(rows["area"]), "panoptic_id": np.asarray(rows["id"], np.int64)})
    images = Images(path=obj_array([f"{i}.jpg" for i in range(n)]), width=np.full(n, w), height=np.full(n, h))
    return Dataset(schema=schema, images=images, annotations=ann)


def pair(gt: np.ndarray, g: Sequence[Seg], pr: np.ndarray, p: Sequence[Seg], **kw: Any) -> tuple[Dataset, Dataset]:
    truth = dataset([gt], [g], **kw)
    pred = dataset([pr], [p]).replace(images=truth.images)
    return truth, pred


def row(r: PanopticResult, cls: str) -> tuple[int, int, int, float]:
    k = CLASSES.index(cls)
    return int(r.tp_per_class[k]), int(r.fp_per_class[k]), int(r.fn_per_class[k]), float(r.iou_per_class[k])


def strip(shape: tuple[int, int] = (4, 10)) -> np.ndarray:
    return np.zeros(shape, np.int64)


# -- hand-computed cases ---------------------------------------------------------------------------------------

def test_a_perfect_prediction_scores_one_for_things_and_stuff() -> None:
    gt = strip()
    gt[:2] = 7
    gt[2:, :5] = 8
    gt[2:, 5:] = 9
    truth, pred = pair(gt, [(7, "sky", False), (8, "car", False), (9, "car", False)],
                       gt * 3, [(21, "sky", False), (24, "car", False), (27, "car", False)])
    r = panoptic_quality(truth, pred)
    assert (r.pq, r.sq, r.rq, r.n_classes) == (1.0, 1.0, 1.0, 2)
    assert (r.pq_things, r.n_things, r.pq_stuff, r.n_stuff) == (1.0, 1, 1.0, 1)
    assert row(r, "car") == (2, 0, 0, 2.0)
    assert r.truth_match.tolist() == [0, 1, 2] and r.pred_match.tolist() == [0, 1, 2]


def test_iou_just_above_one_half_matches_and_exactly_one_half_does_not() -> None:
    gt = strip()
    gt[0] = 5  # 10 pixels
    above = strip()
    above[0, :6] = 9  # IoU 6 / 10
    r = panoptic_quality(*pair(gt, [(5, "car", False)], above, [(9, "car", False)]))
    assert row(r, "car") == (1, 0, 0, 0.6)
    assert (r.pq, r.sq, r.rq) == (0.6, 0.6, 1.0)
    assert r.match_iou.tolist() == [0.6]
    half = strip()
    half[0, :5] = 9  # IoU 5 / 10: the rule is IoU > 0.5
    r = panoptic_quality(*pair(gt, [(5, "car", False)], half, [(9, "car", False)]))
    assert row(r, "car") == (0, 1, 1, 0.0)
    assert (r.pq, r.sq, r.rq) == (0.0, 0.0, 0.0)  # SQ of a class without TP: 0, as panopticapi
    assert r.status_names(r.pred_status).tolist() == ["fp"] and r.status_names(r.truth_status).tolist() == ["fn"]


def test_void_pixels_are_left_out_of_the_union() -> None:
    gt = strip()
    gt[0, :4] = 5  # 4 pixels, the rest of the image is VOID
    pr = strip()
    pr[0, :] = 9  # 10 pixels: 4 on the segment, 6 on VOID
    r = panoptic_quality(*pair(gt, [(5, "car", False)], pr, [(9, "car", False)]))
    assert row(r, "car") == (1, 0, 0, 1.0)  # 4 / (10 + 4 - 4 - 6); a plain IoU would be 0.4
    gt[0, 4:] = 6  # the same pixels now belong to a sky segment: no longer VOID
    r = panoptic_quality(*pair(gt, [(5, "car", False), (6, "sky", False)], pr, [(9, "car", False)]))
    assert row(r, "car") == (0, 1, 1, 0.0) and row(r, "sky") == (0, 0, 1, 0.0)


def test_an_unmatched_prediction_mostly_on_void_is_ignored_half_is_a_false_positive() -> None:
    gt = strip()
    gt[1:] = 5
    mostly = strip()
    mostly[0, :3] = 9
    mostly[1, 0] = 9  # 4 pixels, 3 on VOID
    r = panoptic_quality(*pair(gt, [(5, "road", False)], mostly, [(9, "car", False)]))
    assert row(r, "car") == (0, 0, 0, 0.0) and r.status_names(r.pred_status).tolist() == ["ignored"]
    assert math.isnan(r.pq_per_class[0]) and r.n_things == 0
    half = strip()
    half[0, :2] = 9
    half[1, :2] = 9  # 2 of 4 on VOID: not more than half
    r = panoptic_quality(*pair(gt, [(5, "road", False)], half, [(9, "car", False)]))
    assert row(r, "car") == (0, 1, 0, 0.0) and r.status_names(r.pred_status).tolist() == ["fp"]


def test_crowd_regions_are_never_missed_and_excuse_predictions_of_their_class_only() -> None:
    gt = strip()
    gt[:2] = 5  # a crowd of cars
    gt[2:] = 6
    on_crowd = strip()
    on_crowd[0, :4] = 9  # a car on the crowd of cars: ignored
    on_crowd[1, :4] = 10  # a person there: a false positive
    r = panoptic_quality(*pair(gt, [(5, "car", True), (6, "road", False)], on_crowd,
                               [(9, "car", False), (10, "person", False)]))
    assert row(r, "car") == (0, 0, 0, 0.0) and row(r, "person") == (0, 1, 0, 0.0) and row(r, "road") == (0, 0, 1, 0.0)
    assert r.status_names(r.truth_status).tolist() == ["ignored", "fn"]
    assert r.status_names(r.pred_status).tolist() == ["ignored", "fp"]


def test_a_crowd_region_is_never_matched_even_by_its_exact_pixels() -> None:
    gt = strip()
    gt[:2] = 5
    r = panoptic_quality(*pair(gt, [(5, "car", True)], gt, [(5, "car", False)]))
    assert row(r, "car") == (0, 0, 0, 0.0) and r.status_names(r.pred_status).tolist() == ["ignored"]


def test_only_the_last_crowd_region_of_a_class_excuses_predictions() -> None:
    """panopticapi keeps one crowd segment per class and image (a dict, the last one listed); hotcoco too."""
    gt = strip()
    gt[0] = 5
    gt[1] = 6
    gt[2:] = 7
    segs: list[Seg] = [(5, "car", True), (6, "car", True), (7, "road", False)]
    on_first, on_last = strip(), strip()
    on_first[0] = 9
    on_last[1] = 9
    assert row(panoptic_quality(*pair(gt, segs, on_first, [(9, "car", False)])), "car") == (0, 1, 0, 0.0)
    assert row(panoptic_quality(*pair(gt, segs, on_last, [(9, "car", False)])), "car") == (0, 0, 0, 0.0)


def test_things_stuff_and_a_class_absent_from_both() -> None:
    gt = strip()
    gt[:, :5] = 5
    gt[:, 5:] = 6
    pr = strip()
    pr[:, :5] = 9
    pr[:, 5:8] = 10  # road: IoU 12 / 20
    r = panoptic_quality(*pair(gt, [(5, "car", False), (6, "road", False)], pr,
                               [(9, "car", False), (10, "road", False)]))
    assert (r.pq_things, r.pq_stuff, r.n_things, r.n_stuff) == (1.0, 0.6, 1, 1)
    assert r.pq == (1.0 + 0.6) / 2 and r.n_classes == 2
    k = [CLASSES.index(c) for c in ("person", "sky")]  # in neither: nan, not 0, and left out of every mean
    assert np.isnan(r.pq_per_class[k]).all() and np.isnan(r.sq_per_class[k]).all()
    assert r.is_thing.tolist() == [True, True, False, False]


def test_mean_pq_is_the_mean_of_class_pqs_not_the_product_of_means() -> None:
    gt = strip()
    gt[0] = 5
    gt[1] = 6
    pr = strip()
    pr[0, :6] = 9  # car: TP at IoU 0.6
    pr[1, :2] = 10  # person: FP + FN
    r = panoptic_quality(*pair(gt, [(5, "car", False), (6, "person", False)], pr,
                               [(9, "car", False), (10, "person", False)]))
    assert r.pq == pytest.approx(0.3) and r.sq == pytest.approx(0.3) and r.rq == pytest.approx(0.5)
    assert r.pq != pytest.approx(r.sq * r.rq)
    assert np.allclose(r.pq_per_class[:2], r.sq_per_class[:2] * r.rq_per_class[:2])


def test_truth_area_from_the_file_or_the_pixels() -> None:
    gt = strip()
    gt[0] = 5
    pr = strip()
    pr[0, :6] = 9
    truth, pred = pair(gt, [(5, "car", False)], pr, [(9, "car", False)], areas={5: 20.0})
    assert row(panoptic_quality(truth, pred), "car") == (0, 1, 1, 0.0)  # 6 / (6 + 20 - 6): panopticapi's rule
    assert row(panoptic_quality(truth, pred, truth_area="pixels"), "car") == (1, 0, 0, 0.6)


def test_void_label_turns_a_class_into_void() -> None:
    gt = strip()
    gt[0, :4] = 5
    gt[0, 4:] = 6  # "sky" here stands for an unlabelled class
    gt[1:] = 7
    pr = strip()
    pr[0] = 9
    pr[1:] = 10
    truth, pred = pair(gt, [(5, "car", False), (6, "sky", False), (7, "road", False)], pr,
                       [(9, "car", False), (10, "sky", False)])
    r = panoptic_quality(truth, pred, void_label="sky")
    assert row(r, "car") == (1, 0, 0, 1.0) and row(r, "road") == (0, 0, 1, 0.0)
    assert r.void_label == "sky" and math.isnan(r.pq_per_class[3]) and r.n_stuff == 1
    assert r.status_names(r.pred_status).tolist() == ["tp", "skipped"]
    assert panoptic_quality(truth, pred, void_label=3).void_label == "sky"
    with pytest.raises(SchemaError, match="void_label must be a truth class, got 'grass'"):
        panoptic_quality(truth, pred, void_label="grass")
    with pytest.raises(ValueError, match="truth_area must be"):
        panoptic_quality(truth, pred, truth_area="json")


def test_predictions_of_unknown_classes_and_empty_ones_are_skipped() -> None:
    gt = strip()
    gt[0] = 5
    pr = strip()
    pr[0] = 9
    truth = dataset([gt], [[(5, "car", False)]])
    other = LabelSchema(classes=(ClassDef("truck"), ClassDef("car")))
    pred = dataset([pr], [[(9, "truck", False), (11, "car", False)]], schema=other).replace(images=truth.images)
    r = panoptic_quality(truth, pred)
    assert r.status_names(r.pred_status).tolist() == ["skipped", "skipped"]  # a class the truth lacks; no pixel
    assert row(r, "car") == (0, 0, 1, 0.0)


def test_an_image_without_predictions_and_one_without_truth() -> None:
    gt, pr = strip(), strip()
    gt[0] = 5
    pr[1] = 9
    road = strip() + 6
    truth = dataset([gt, road, strip()], [[(5, "car", False)], [(6, "road", False)], []])
    pred = dataset([strip(), pr, pr], [[], [(9, "person", False)], [(9, "person", False)]]).replace(
        images=truth.images)
    r = panoptic_quality(truth, pred)
    assert row(r, "car") == (0, 0, 1, 0.0) and row(r, "road") == (0, 0, 1, 0.0)
    assert row(r, "person") == (0, 1, 0, 0.0)  # on the road: a FP; in the image without truth: all VOID, ignored
    assert r.status_names(r.pred_status).tolist() == ["fp", "ignored"]
    empty = panoptic_quality(truth.replace(annotations=truth.annotations.take(np.zeros(0, np.int64))),
                             pred.replace(annotations=pred.annotations.take(np.zeros(0, np.int64))))
    assert math.isnan(empty.pq) and empty.n_classes == 0 and empty.to_dict()["all"]["pq"] is None


# -- errors --------------------------------------------------------------------------------------------------

def test_overlapping_segments_are_refused_naming_side_row_and_image() -> None:
    gt = strip()
    gt[0] = 5
    truth = dataset([gt], [[(5, "car", False)]])
    both = M.encode(gt == 5)
    bad = Annotations(image=np.zeros(2, np.int64), label=np.zeros(2, np.int64), mask=obj_array([both, both]))
    pred = truth.replace(annotations=bad)
    for native in (True, False):
        with pytest.raises(InvalidDatasetError, match=r"pred.annotations.mask row 1: the segments of image 0 must "
                                                      r"not overlap .* 10 pixels shared with row 0"):
            overlaps(truth, pred, native=native)


def test_missing_and_wrong_sized_masks_and_other_images_are_refused() -> None:
    gt = strip()
    gt[0] = 5
    truth = dataset([gt], [[(5, "car", False)]])
    none = truth.replace(annotations=truth.annotations.with_columns(mask=obj_array([None])))
    with pytest.raises(InvalidDatasetError, match=r"pred.annotations.mask row 0: a panoptic segment must have a "
                                                  r"mask"):
        panoptic_quality(truth, none)
    small = truth.replace(annotations=truth.annotations.with_columns(mask=obj_array([M.encode(gt[:2] == 5)])))
    with pytest.raises(InvalidDatasetError, match=r"truth.annotations.mask row 0: size must be its image's \[4, 10\]"):
        panoptic_quality(small, truth)
    other = truth.replace(images=Images(path=obj_array(["x.jpg"]), width=np.array([10]), height=np.array([4])))
    with pytest.raises(InvalidDatasetError, match=r"pred\.images\.path row 0 must equal truth's"):
        panoptic_quality(truth, other)


# -- a reference on generated id maps ----------------------------------------------------------------------------

def random_maps(rng: np.random.Generator, n: int, h: int = 20, w: int = 28
                ) -> tuple[list[np.ndarray], list[list[Seg]], list[np.ndarray], list[list[Seg]]]:
    """Truth and predicted id maps: two stuff bands, up to 4 things (some crowds, some with a VOID border);
    predictions shifted, resized, relabelled, dropped, invented; random segment ids up to 2^24 - 1."""
    out: tuple[list[Any], ...] = ([], [], [], [])
    for _ in range(n):
        ids = iter(rng.choice(np.arange(1, 1 << 24), 40, replace=False).tolist())
        maps, segs = [np.zeros((h, w), np.int64), np.zeros((h, w), np.int64)], [[], []]
        cut = int(rng.integers(3, h - 3))
        shift = int(rng.integers(-2, 3))
        for side, c in ((0, cut), (1, cut + shift)):
            for part, cls in ((slice(0, c), "sky"), (slice(c, h), rng.choice(["road", "sky"]))):
                sid = next(ids)
                maps[side][part] = sid
                segs[side].append((sid, str(cls), False))
        for _ in range(int(rng.integers(0, 5))):
            y, x = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
            hh, ww = int(rng.integers(2, 9)), int(rng.integers(2, 9))
            cls = str(rng.choice(["car", "person"]))
            sid = next(ids)
            if rng.random() < 0.4:
                maps[0][max(0, y - 1):y + hh + 1, max(0, x - 1):x + ww + 1] = 0  # a VOID border
            maps[0][y:y + hh, x:x + ww] = sid
            segs[0].append((sid, cls, bool(rng.random() < 0.15)))
            if rng.random() < 0.85:
                dy, dx, dh, dw = (int(v) for v in rng.integers(-2, 3, 4))
                pid = next(ids)
                maps[1][max(0, y + dy):max(0, y + dy + hh + dh), max(0, x + dx):max(0, x + dx + ww + dw)] = pid
                segs[1].append((pid, cls if rng.random() < 0.85 else "person", False))
        for _ in range(int(rng.integers(0, 3))):
            y, x = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
            pid = next(ids)
            maps[1][y:y + int(rng.integers(1, 6)), x:x + int(rng.integers(1, 6))] = pid
            segs[1].append((pid, str(rng.choice(CLASSES)), False))
        if rng.random() < 0.3:
            maps[1][:, : int(rng.integers(1, 6))] = 0
        for side in (0, 1):  # the segments drawn over (or out of the image) entirely are dropped
            present = set(np.unique(maps[side]).tolist())
            out[2 * side].append(maps[side])
            out[2 * side + 1].append([s for s in segs[side] if s[0] in present])
    return out  # type: ignore[return-value]


def reference(gt_maps: Sequence[np.ndarray], gt_segs: Sequence[Sequence[Seg]], pr_maps: Sequence[np.ndarray],
              pr_segs: Sequence[Sequence[Seg]]) -> dict[str, list[float]]:
    """PQ statistics by panopticapi's rules, spelled out image by image over a dict of (truth id, pred id)
    intersections counted by np.unique (VOID: id 0 of the truth map)."""
    stats: dict[str, list[float]] = {c: [0, 0, 0, 0.0] for c in CLASSES}  # tp, fp, fn, iou
    for gt, gs, pr, ps in zip(gt_maps, gt_segs, pr_maps, pr_segs, strict=True):
        g = {sid: {"cls": c, "crowd": cr, "area": int((gt == sid).sum())} for sid, c, cr in gs}
        p = {sid: {"cls": c, "area": int((pr == sid).sum())} for sid, c, _ in ps}
        keys, counts = np.unique(gt.astype(np.uint64) * (1 << 24) + pr.astype(np.uint64), return_counts=True)
        inter = {(int(k) >> 24, int(k) & ((1 << 24) - 1)): int(n) for k, n in zip(keys, counts, strict=True)}
        g_hit, p_hit = set(), set()
        for (gi, pi), n in inter.items():
            if gi not in g or pi not in p or g[gi]["crowd"] or g[gi]["cls"] != p[pi]["cls"]:
                continue
            iou = n / (p[pi]["area"] + g[gi]["area"] - n - inter.get((0, pi), 0))
            if iou > 0.5:
                stats[g[gi]["cls"]][0] += 1
                stats[g[gi]["cls"]][3] += iou
                g_hit.add(gi)
                p_hit.add(pi)
        crowd_of = {}
        for gi, info in g.items():
            if gi in g_hit:
                continue
            if info["crowd"]:
                crowd_of[info["cls"]] = gi
                continue
            stats[info["cls"]][2] += 1
        for pi, info in p.items():
            if pi in p_hit:
                continue
            on = inter.get((0, pi), 0) + (inter.get((crowd_of[info["cls"]], pi), 0) if info["cls"] in crowd_of else 0)
            if on / info["area"] > 0.5:
                continue
            stats[info["cls"]][1] += 1
    return stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_maps_give_the_reference_counts_on_both_paths(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    gm, gs, pm, ps = random_maps(np.random.default_rng(seed), 25)
    truth = dataset(gm, gs)
    pred = dataset(pm, ps).replace(images=truth.images)
    ref = reference(gm, gs, pm, ps)
    results = [panoptic_quality(truth, pred)]
    monkeypatch.setenv("MASLOW_NATIVE", "0")  # the label maps everywhere
    results.append(panoptic_quality(truth, pred))
    for r in results:
        for k, c in enumerate(CLASSES):
            tp, fp, fn, iou = ref[c]
            assert (int(r.tp_per_class[k]), int(r.fp_per_class[k]), int(r.fn_per_class[k])) == (tp, fp, fn), c
            assert float(r.iou_per_class[k]) == pytest.approx(iou, rel=1e-12, abs=1e-12)
    a, b = results
    assert np.array_equal(a.pred_status, b.pred_status) and np.array_equal(a.truth_match, b.truth_match)
    assert a.to_dict() == b.to_dict()


def test_the_two_overlap_counts_agree_cell_by_cell() -> None:
    gm, gs, pm, ps = random_maps(np.random.default_rng(7), 15)
    truth = dataset(gm, gs)
    pred = dataset(pm, ps).replace(images=truth.images)
    runs, maps = overlaps(truth, pred, native=True), overlaps(truth, pred, native=False)
    for o in (runs, maps):
        assert (o.pixels > 0).all()
    key = [np.lexsort((o.pred_row, o.truth_row)) for o in (runs, maps)]
    for name in ("truth_row", "pred_row", "pixels"):
        assert np.array_equal(getattr(runs, name)[key[0]], getattr(maps, name)[key[1]]), name
    assert np.array_equal(runs.pred_pixels, maps.pred_pixels) and np.array_equal(runs.truth_pixels, maps.truth_pixels)
    assert runs.pred_pixels.tolist() == [int(M.area([m])[0]) for m in pred.annotations.mask.tolist()]


def test_row_order_within_images_does_not_matter_and_inputs_are_untouched() -> None:
    gm, gs, pm, ps = random_maps(np.random.default_rng(8), 10)
    truth = dataset(gm, gs)
    pred = dataset(pm, ps).replace(images=truth.images)
    masks_before = [dict(m) for m in pred.annotations.mask]
    r = panoptic_quality(truth, pred)
    assert [dict(m) for m in pred.annotations.mask] == masks_before
    rng = np.random.default_rng(0)
    order = np.lexsort((rng.random(pred.n_annotations), pred.annotations.image))  # shuffled within each image
    shuffled = panoptic_quality(truth, pred.replace(annotations=pred.annotations.take(order)))
    for name in ("tp_per_class", "fp_per_class", "fn_per_class"):
        assert np.array_equal(getattr(r, name), getattr(shuffled, name)), name
    assert shuffled.pq == pytest.approx(r.pq, rel=1e-12) and shuffled.sq == pytest.approx(r.sq, rel=1e-12)
    assert np.array_equal(shuffled.pred_match[np.argsort(order)], r.pred_match)


def test_polygons_and_str_counts_are_read_like_masks() -> None:
    gt = strip((10, 10))
    gt[2:8, 2:8] = 5
    truth = dataset([gt], [[(5, "car", False)]])
    square = truth.annotations.with_columns(mask=obj_array([None]), polygon=[[np.array([2.0, 2, 8, 2, 8, 8, 2, 8])]])
    text = truth.annotations.with_columns(mask=obj_array([M.to_json(truth.annotations.mask[0])]))
    for ann in (square, text):
        r = panoptic_quality(truth, truth.replace(annotations=ann))
        assert row(r, "car")[:3] == (1, 0, 0)


# -- the result object -------------------------------------------------------------------------------------------

def test_result_to_dict_to_pandas_and_matches() -> None:
    gm, gs, pm, ps = random_maps(np.random.default_rng(3), 6)
    truth = dataset(gm, gs)
    r = panoptic_quality(truth, dataset(pm, ps).replace(images=truth.images))
    d = json.loads(json.dumps(r.to_dict()))
    assert d["protocol"] == "panoptic" and set(d["all"]) == {"pq", "sq", "rq", "n"}
    assert [c["class"] for c in d["per_class"]] == list(CLASSES)
    assert d["tp"] == len(r.match_iou) == int(r.tp_per_class.sum())
    df = r.to_pandas()
    assert list(df["class"]) == list(CLASSES) and df["tp"].sum() == d["tp"]
    m = r.matches_to_pandas()
    assert (m["iou"] > 0.5).all() and (r.truth_match[m["truth_row"]] == m["pred_row"]).all()
    assert not r.pq_per_class.flags.writeable


def test_is_panoptic_reads_the_schema() -> None:
    assert is_panoptic(SCHEMA)
    assert not is_panoptic(LabelSchema.from_names(["a"], task="semantic_segmentation"))


# -- the CLI module ----------------------------------------------------------------------------------------------

def write_files(tmp_path: Path, maps: Sequence[np.ndarray], segs: Sequence[Sequence[Seg]], name: str,
                like: Dataset | None = None) -> Path:
    ds = dataset(maps, segs)
    if like is not None:
        ds = ds.replace(images=like.images)
    dst = tmp_path / f"{name}.json"
    write_coco_panoptic(ds, dst)
    return dst


@contextlib.contextmanager
def no_op(_: Any) -> Iterator[None]:
    yield


def test_eval_panoptic_prints_and_writes_the_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gm, gs, pm, ps = random_maps(np.random.default_rng(4), 8)
    gt_path = write_files(tmp_path, gm, gs, "gt")
    truth = read_coco_panoptic(gt_path)
    pred_path = write_files(tmp_path, pm, ps, "pred", like=truth)
    out = tmp_path / "result.json"
    eval_panoptic(truth, pred_path, "coco-panoptic", located=_located, json_out=out, to_stdout=False,
                  gt_source=(str(gt_path), "coco-panoptic", Report()), refused=[])
    printed = capsys.readouterr().out
    assert "Panoptic Quality" in printed and "Things" in printed and "person" in printed
    doc = json.loads(out.read_text())
    ref = reference(gm, gs, pm, ps)
    assert [(c["tp"], c["fp"], c["fn"]) for c in doc["panoptic"]["per_class"]] == [tuple(ref[c][:3]) for c in CLASSES]
    assert doc["protocol"] == "panoptic" and doc["n_pred"] == sum(len(s) for s in ps)
    eval_panoptic(truth, pred_path, "coco-panoptic", located=_located, json_out=None, to_stdout=True,
                  gt_source=(str(gt_path), "coco-panoptic", Report()), refused=[])
    assert json.loads(capsys.readouterr().out)["panoptic"] == doc["panoptic"]


def test_eval_panoptic_refuses_options_and_names_the_file_of_bad_data(tmp_path: Path) -> None:
    gt = strip()
    gt[0] = 5
    gt_path = write_files(tmp_path, [gt], [[(5, "car", False)]], "gt")
    truth = read_coco_panoptic(gt_path)
    src = ("gt.json", "coco-panoptic", Report())
    with pytest.raises(MaslowError, match="eval: --slice-by does not apply to panoptic segmentation"):
        eval_panoptic(truth, gt_path, "coco-panoptic", located=_located, json_out=None, to_stdout=True,
                      gt_source=src, refused=["--slice-by"])
    bad = truth.replace(annotations=truth.annotations.with_columns(mask=obj_array([M.encode(gt[:2] == 5)])))
    with pytest.raises(FormatError, match=r"gt.json: can't be evaluated: truth.annotations.mask row 0: size"):
        eval_panoptic(bad, gt_path, "coco-panoptic", located=_located, json_out=None, to_stdout=True, gt_source=src,
                      refused=[])


def test_eval_computes_pq_for_panoptic_predictions_or_when_asked() -> None:
    assert wants_panoptic("coco", "coco-panoptic") and wants_panoptic("coco", "coco_panoptic")
    assert wants_panoptic("panoptic", "parquet")
    assert not wants_panoptic("coco", "coco-results") and not wants_panoptic("voc", "coco-panoptic")
    with pytest.raises(FormatError, match="--pred-format must be one of"):
        wants_panoptic("coco", "png")


def test_read_panoptic_pred_from_another_format_needs_no_scores(tmp_path: Path) -> None:
    from maslow.io import write_parquet

    gm, gs, pm, ps = random_maps(np.random.default_rng(5), 3)
    truth = dataset(gm, gs)
    pred = dataset(pm, ps).replace(images=truth.images)
    write_parquet(pred, tmp_path / "pred")
    got, report, notes = read_panoptic_pred(tmp_path / "pred", "parquet", truth)
    assert got.n_annotations == pred.n_annotations and not notes and not len(report)
    assert panoptic_quality(truth, got).to_dict() == panoptic_quality(truth, pred).to_dict()


# -- hotcoco --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [11, 12])
def test_same_numbers_as_hotcoco_on_generated_files(tmp_path: Path, seed: int) -> None:
    panoptic = pytest.importorskip("hotcoco.panoptic")
    gm, gs, pm, ps = random_maps(np.random.default_rng(seed), 30, h=30, w=40)
    gt_path = write_files(tmp_path, gm, gs, "gt")
    truth = read_coco_panoptic(gt_path)
    pred_path = write_files(tmp_path, pm, ps, "pred", like=truth)
    from maslow.io.coco_panoptic import parse

    pred, report = parse(pred_path, like=truth)
    assert not len(report)
    r = panoptic_quality(truth, pred)
    with contextlib.redirect_stdout(None):
        ev = panoptic.PanopticEval(str(gt_path), str(pred_path))
        ev.run()
    ref = ev.results()
    for name, ours in r.summary().items():
        theirs = ref[name.capitalize()]
        assert ours["n"] == theirs["n"], name
        for k in ("pq", "sq", "rq"):
            assert ours[k] == pytest.approx(theirs[k], rel=1e-12, abs=1e-15), (name, k)
    per = ref["per_class"]
    for k, c in enumerate(truth.schema.classes):
        assert (int(r.tp_per_class[k]), int(r.fp_per_class[k]), int(r.fn_per_class[k])) == \
            (per[c.id]["tp"], per[c.id]["fp"], per[c.id]["fn"])
        assert float(r.iou_per_class[k]) == pytest.approx(per[c.id]["iou"], rel=1e-12, abs=1e-15)
