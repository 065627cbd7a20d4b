"""Oriented-box evaluation (``iou_type="obb"``): the IoU of rotated rectangles against closed forms and an
independent rasterised area, the compiled kernel against its numpy twin bit for bit, the corner sources (polygon,
turned box, box) and the errors. hotcoco's evaluation: ``test_obb_hotcoco.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maslow._native import load
from maslow.core.dataset import Dataset
from maslow.core.obb import corners_from_xywhr, oriented_corners, quad_areas, xywhr_from_corners
from maslow.core.polygons import Polygons
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.metrics import _obb as O
from maslow.metrics import coco_map, coco_matches
from maslow.metrics.operating import detection_confusion_matrix
from maslow.metrics.tide import tide_errors
from maslow.sample import oriented, oriented_predictions


def _iou(a: list[float], b: list[float], crowd: bool = False) -> float:
    """IoU of two xywhr boxes through ``metrics._obb`` (prediction a, truth b)."""
    qa, qb = corners_from_xywhr([a]), corners_from_xywhr([b])
    return float(O.iou_pairs(qa, qb, quad_areas(qa), quad_areas(qb), np.zeros(1, np.int64), np.zeros(1, np.int64),
                             np.array([crowd]))[0])


def _dataset(quads: np.ndarray, image: list[int], label: list[int] | None = None, score: list[float] | None = None,
             n_images: int = 1) -> Dataset:
    q = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    schema = LabelSchema(classes=(ClassDef("a", id=1), ClassDef("b", id=2)))
    ann = Annotations(image=np.asarray(image, np.int64), label=np.asarray(label or [0] * len(q), np.int64),
                      box=np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1),
                      polygon=Polygons.from_rows([[p.ravel()] for p in q]),
                      score=None if score is None else np.asarray(score, np.float64))
    images = Images(path=obj_array([f"{i}.png" for i in range(n_images)]), width=np.full(n_images, 200),
                    height=np.full(n_images, 200))
    return Dataset(schema=schema, images=images, annotations=ann)


def test_square_and_itself_turned_45_degrees_meet_in_a_regular_octagon() -> None:
    # a unit square and its copy turned 45 degrees about the centre: a regular octagon of inradius 1/2 in common
    octagon = 8 * 0.25 * math.tan(math.pi / 8)
    got = _iou([10, 10, 1, 1, 0.0], [10, 10, 1, 1, math.pi / 4])
    assert got == pytest.approx(octagon / (2 - octagon), rel=1e-12)


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2, math.pi / 2, math.pi])
def test_a_box_against_itself_and_against_a_shifted_copy(angle: float) -> None:
    assert _iou([50, 40, 30, 10, angle], [50, 40, 30, 10, angle]) == pytest.approx(1.0, abs=1e-12)
    # shifted by half its width along its own axis: the overlap is half of each box, IoU 1/3
    dx, dy = 15 * math.cos(angle), 15 * math.sin(angle)
    assert _iou([50 + dx, 40 + dy, 30, 10, angle], [50, 40, 30, 10, angle]) == pytest.approx(1 / 3, rel=1e-12)
    # far apart: 0
    assert _iou([150, 140, 30, 10, angle], [50, 40, 30, 10, angle]) == 0.0


def test_contained_box_and_crowd_region() -> None:
    # a 10x4 box inside a 40x40 one, both turned: IoU is the area ratio; against a crowd region it is 1
    small, big = [20, 20, 10, 4, 0.7], [20, 20, 40, 40, 0.2]
    assert _iou(small, big) == pytest.approx(40 / 1600, rel=1e-12)
    assert _iou(small, big, crowd=True) == pytest.approx(1.0, rel=1e-12)
    # the prediction's area alone is the union for a crowd region: half the prediction outside gives 1/2
    assert _iou([40, 20, 20, 4, 0.0], [20, 20, 40, 40, 0.0], crowd=True) == pytest.approx(0.5, rel=1e-12)


def test_iou_equals_a_rasterised_intersection() -> None:
    # an independent measure: count the points of a fine grid inside both rectangles
    rng = np.random.default_rng(3)
    step = 0.05
    g = np.arange(0, 60, step) + step / 2
    gx, gy = np.meshgrid(g, g)
    pts = np.stack([gx.ravel(), gy.ravel()], 1)

    def inside(b: np.ndarray) -> np.ndarray:
        cx, cy, w, h, r = b
        d = pts - [cx, cy]
        u = d @ [math.cos(r), math.sin(r)]
        v = d @ [-math.sin(r), math.cos(r)]
        return (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)

    for _ in range(6):
        a = np.array([*rng.uniform(20, 40, 2), *rng.uniform(5, 25, 2), rng.uniform(-3, 3)])
        b = a + np.array([*rng.normal(0, 4, 2), *rng.normal(0, 3, 2), rng.normal(0, 0.5)])
        ia, ib = inside(a), inside(b)
        raster = (ia & ib).sum() / (ia | ib).sum()
        assert _iou(a.tolist(), b.tolist()) == pytest.approx(raster, abs=4e-3)


def test_corner_order_clockwise_or_not_gives_the_same_iou() -> None:
    q = corners_from_xywhr([[30, 30, 20, 8, 0.4], [33, 31, 18, 9, 0.5]])
    ccw = O.corners(_dataset(q, [0, 0]), np.arange(2), "truth")
    cw = O.corners(_dataset(q[:, ::-1], [0, 0]), np.arange(2), "truth")
    args = (np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(2, bool))
    a = O.iou_pairs(ccw, ccw, quad_areas(ccw), quad_areas(ccw), *args)
    b = O.iou_pairs(cw, cw, quad_areas(cw), quad_areas(cw), *args)
    assert a[0] > 0.5 and a[0] == pytest.approx(b[0], rel=1e-14)


def _random_pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.column_stack([rng.uniform(0, 50, (n, 2)), rng.uniform(0.5, 20, (n, 2)), rng.uniform(-4, 4, n)])
    p = t + np.column_stack([rng.normal(0, 4, (n, 2)), rng.normal(0, 3, (n, 2)), rng.normal(0, 0.6, n)])
    p[:, 2:4] = np.abs(p[:, 2:4])
    # degenerate cases: identical boxes, shared edges, zero-size boxes, axis-aligned copies
    p[:20] = t[:20]
    p[20:30, 0] = t[20:30, 0] + t[20:30, 2]
    p[20:30, 1:] = t[20:30, 1:]
    p[20:30, 4] = 0.0
    t[20:30, 4] = 0.0
    p[30:35, 2] = 0.0
    tq, pq = corners_from_xywhr(t), corners_from_xywhr(p)
    idx = np.arange(n, dtype=np.int64)
    crowd = rng.random(n) < 0.1
    return pq, tq, idx, idx.copy(), crowd


@pytest.mark.skipif(load("cocoeval") is None, reason="the compiled kernels are not built")
def test_kernel_equals_numpy_twin_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    pq, tq, pi, ti, crowd = _random_pairs(3000, 7)
    pq = O.corners(_dataset(pq, [0] * len(pq)), np.arange(len(pq)), "pred")
    tq = O.corners(_dataset(tq, [0] * len(tq)), np.arange(len(tq)), "truth")
    # all pairs of the first 60 boxes too: most far apart
    gp, gt = np.meshgrid(np.arange(60), np.arange(60))
    pi = np.concatenate([pi, gp.ravel()])
    ti = np.concatenate([ti, gt.ravel()])
    pa, ta = quad_areas(pq), quad_areas(tq)
    native = O.iou_pairs(pq, tq, pa, ta, pi, ti, crowd)
    twin = O._numpy_iou_pairs(pq, tq, pa, ta, pi, ti, crowd)
    assert np.array_equal(native, twin)
    assert (native[:20] > 1 - 1e-12).all() and (native[20:30] < 1e-12).all() and (native[30:35] == 0).all()
    assert (native >= 0).all() and (native <= 1 + 1e-12).all()
    assert 0.1 < float((native > 0).mean()) < 0.9  # the case holds overlaps and misses


def test_numpy_twin_evaluates_like_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    truth = oriented(30, seed=4)
    pred = oriented_predictions(truth, seed=4)
    a = coco_map(truth, pred, iou_type="obb")
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    b = coco_map(truth, pred, iou_type="obb")
    assert np.array_equal(a.precision, b.precision) and np.array_equal(a.stats, b.stats, equal_nan=True)
    assert 0.2 < a.map_50_95 < 0.9


def test_oriented_corners_from_polygon_turned_box_and_box() -> None:
    q = corners_from_xywhr([[40, 30, 20, 10, 0.5]])
    box = np.array([[10.0, 10.0, 30.0, 20.0], [50.0, 50.0, 70.0, 60.0], [1.0, 2.0, 3.0, 4.0]])
    ann = Annotations(image=np.zeros(3, np.int64), label=np.zeros(3, np.int64), box=box,
                      polygon=Polygons.from_rows([[q[0].ravel()], None, None]),
                      extra={"cvat_rotation": np.array([0.0, 90.0, 0.0])})
    got = oriented_corners(ann, np.arange(3))
    assert np.array_equal(got[0], q[0])  # the polygon as it is
    # turned 90 degrees about its centre (60, 55): 20 x 10 becomes 10 x 20
    assert np.allclose(np.sort(got[1][:, 0]), [55, 55, 65, 65]) and np.allclose(np.sort(got[1][:, 1]), [45, 45, 65, 65])
    assert np.array_equal(got[2], [[1, 2], [3, 2], [3, 4], [1, 4]])  # the box's corners
    # the Label Studio rotation turns about the top-left corner
    ls = Annotations(image=np.zeros(1, np.int64), label=np.zeros(1, np.int64), box=box[:1],
                     extra={"ls_rotation": np.array([90.0])})
    assert np.allclose(np.sort(oriented_corners(ls, np.arange(1))[0], axis=0), [[0, 10], [0, 10], [10, 30], [10, 30]])


def test_xywhr_round_trip() -> None:
    rng = np.random.default_rng(0)
    b = np.column_stack([rng.uniform(0, 100, (50, 2)), rng.uniform(1, 30, (50, 2)), rng.uniform(-3, 3, 50)])
    b[:5, 2] = 0.0  # no width: the angle comes from the other side
    back = xywhr_from_corners(corners_from_xywhr(b))
    assert np.allclose(back[:, :4], b[:, :4], atol=1e-9)
    assert np.allclose(np.cos(back[:, 4] - b[:, 4]), 1.0, atol=1e-12)


def test_axis_aligned_boxes_evaluate_as_bbox() -> None:
    # with unturned boxes the oriented IoU is the box IoU: the same stats as bbox
    truth = oriented(40, seed=1)
    pred = oriented_predictions(truth, seed=1)
    for ds in (truth, pred):
        object.__setattr__(ds.annotations, "polygon", None)
    a, b = coco_map(truth, pred, iou_type="obb"), coco_map(truth, pred, iou_type="bbox")
    assert np.allclose(a.stats, b.stats, equal_nan=True, atol=1e-12)
    assert a.map_50_95 > 0.1


def test_turned_boxes_score_lower_by_box_iou_than_by_oriented_iou() -> None:
    # thin turned objects: their axis-aligned extents overlap badly-placed neighbours, the oriented IoU does not
    truth = oriented(40, seed=2)
    pred = oriented_predictions(truth, seed=2, jitter=0.02, angle_jitter=0.02)
    obb = coco_matches(truth, pred, iou_type="obb", iou_thresholds=[0.5])
    assert obb.result.map_50 > 0.75
    tp = obb.pred_status[:, 0] == obb.TP
    assert tp.sum() > 0.8 * (obb.truth_status[:, 0] != obb.IGNORED).sum()


def test_downstream_metrics_take_obb() -> None:
    truth = oriented(20, seed=5)
    pred = oriented_predictions(truth, seed=5)
    cm = detection_confusion_matrix(truth, pred, iou_type="obb", iou_threshold=0.5, score_threshold=0.0)
    table = coco_matches(truth, pred, iou_type="obb", iou_thresholds=[0.5], max_dets=[100])
    # the confusion matrix's diagonal counts the class-aware true positives and more (class-agnostic matching)
    assert cm.matrix[:3, :3].trace() >= int((table.pred_status[:, 0] == table.TP).sum()) * 0.9
    t = tide_errors(truth, pred, iou_type="obb")
    assert 0 < t.ap_base <= 1 and t.counts["Cls"] > 0 and t.counts["Loc"] > 0


def test_bad_geometry_is_refused_with_the_row() -> None:
    good = corners_from_xywhr([[30, 30, 20, 8, 0.4]])[0]
    five = Annotations(image=np.zeros(1, np.int64), label=np.zeros(1, np.int64), box=np.array([[0.0, 0, 10, 10]]),
                       polygon=Polygons.from_rows([[np.arange(10, dtype=float)]]))
    with pytest.raises(InvalidDatasetError, match=r"pred\.polygon row 0: .*4 corners, got 5 points"):
        oriented_corners(five, np.arange(1), "pred")
    crossed = good[[0, 2, 1, 3]]  # corners out of order: a bow tie
    ds = _dataset(np.stack([good, crossed]), [0, 0], score=[0.5, 0.4])
    with pytest.raises(InvalidDatasetError, match=r"pred\.annotations\.polygon row 1: .*convex"):
        coco_map(_dataset(good[None], [0]), ds, iou_type="obb")
    nan = good.copy()
    nan[0, 0] = np.nan
    truth = _dataset(good[None], [0])
    truth = truth.replace(annotations=truth.annotations.with_columns(polygon=Polygons.from_rows([[nan.ravel()]])))
    with pytest.raises(InvalidDatasetError, match=r"truth\.annotations row 0: .*numbers"):
        coco_map(truth, _dataset(good[None], [0], score=[0.9]), iou_type="obb")
    no_geometry = Annotations(image=np.zeros(1, np.int64), label=np.zeros(1, np.int64))
    with pytest.raises(InvalidDatasetError, match=r"box row 0: .*got neither"):
        oriented_corners(no_geometry, np.arange(1))


def test_comparison_calibration_slices_and_operating_points_match_by_oriented_iou() -> None:
    from maslow.metrics.calibration import detection_calibration
    from maslow.metrics.compare import compare_models
    from maslow.metrics.operating import operating_point
    from maslow.metrics.slices import slice_metrics

    truth = oriented(24, seed=6)
    truth = truth.replace(images=Images(path=truth.images.path, width=truth.images.width, height=truth.images.height,
                                        split=obj_array(["a", "b"] * 12)))
    good = oriented_predictions(truth, seed=6, angle_jitter=0.03)
    bad = oriented_predictions(truth, seed=6, angle_jitter=0.5)  # the same objects, turned wrong
    c = compare_models(truth, good, bad, iou_type="obb", n_bootstrap=50, seed=0)
    i = list(c.stat_names).index("map_50_95")
    assert c.stats_a[i] == pytest.approx(coco_map(truth, good, iou_type="obb").map_50_95, abs=1e-12)
    assert c.delta[i] < -0.1 and c.upper[i] < 0  # boxes turned wrong: a worse model, and the interval says so
    cal = detection_calibration(truth, good, iou_type="obb", iou_threshold=0.5)
    table = coco_matches(truth, good, iou_type="obb", iou_thresholds=[0.5], max_dets=[100])
    assert round(float(np.nansum(cal.accuracy * cal.count))) == int((table.pred_status[:, 0] == table.TP).sum())
    s = slice_metrics(truth, good, by="split", n_boot=20, iou_type="obb")
    whole = [coco_map(truth.select_images(truth.images.split == v), good.select_images(good.images.split == v),
                      iou_type="obb").map_50_95 for v in ("a", "b")]
    assert np.allclose(s.value, whole, atol=1e-12)
    op = operating_point(truth, good, iou_type="obb", cost_fp=1, cost_fn=5, iou_threshold=0.5)
    n_tp = np.bincount(good.annotations.label[table.pred_status[:, 0] == table.TP], minlength=3)
    assert op.iou_type == "obb" and (op.tp <= n_tp).all() and op.tp.sum() > 0
