"""``voc_map`` against a plain loop implementation of the classic algorithm (written here, independent of the
vectorised code) on random boxes (both pixel conventions), masks and oriented boxes, with the compiled kernels and
the numpy paths; against ``coco_map``/``coco_matches`` where the two protocols must agree; against detectron2's and
mmdetection's code where installed; and on VOC files, whose 1-based numbers the devkit measures with ``+ 1``."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.core.types import obj_array
from maslow.io import read_voc
from maslow.metrics import coco_map, coco_matches
from maslow.metrics.voc import VocResult, voc_map
from maslow.sample import oriented, oriented_predictions
from tests.metrics.cocodata import datasets, random_segm_case
from tests.metrics.test_voc import Box, make, status

# -- a reference: the classic algorithm as a plain loop ----------------------------------------------------------

def reference(truth: Dataset, pred: Dataset, iou: Callable[[int, int], float], *, thr: float = 0.5,
              strict: bool = False, metric: str = "voc2010", difficult: Sequence[bool] | None = None
              ) -> tuple[list[float], list[str]]:
    """AP per class and the status of each prediction row; ``iou(pred_row, truth_row)``."""
    ta, pa = truth.annotations, pred.annotations
    hard = [bool(d) for d in difficult] if difficult is not None else [False] * len(ta)
    crowd = ta.iscrowd.tolist() if ta.iscrowd is not None else [False] * len(ta)
    aps, stat = [], ["skipped"] * len(pa)
    for c in range(len(truth.schema.names)):
        objects: dict[int, list[int]] = defaultdict(list)
        n_pos = 0
        for g in range(len(ta)):
            if ta.label[g] == c:
                objects[int(ta.image[g])].append(g)
                n_pos += not (hard[g] or crowd[g])
        dets = sorted((d for d in range(len(pa)) if pa.label[d] == c), key=lambda d: -pa.score[d])  # stable
        taken: set[int] = set()
        tp, fp = [], []
        for d in dets:
            best, j = -math.inf, -1
            for g in objects[int(pa.image[d])]:
                ov = iou(d, g)
                if ov > best:
                    best, j = ov, g
            if best > 0 and (best > thr if strict else best >= thr):
                if hard[j] or crowd[j]:
                    stat[d] = "ignored"
                elif j not in taken:
                    taken.add(j)
                    stat[d] = "tp"
                else:
                    stat[d] = "fp"
            else:
                stat[d] = "fp"
            tp.append(int(stat[d] == "tp"))
            fp.append(int(stat[d] == "fp"))
        if n_pos == 0:
            aps.append(math.nan)
            continue
        rec, prec, ctp, cfp = [], [], 0, 0
        for a, b in zip(tp, fp, strict=True):
            ctp, cfp = ctp + a, cfp + b
            rec.append(ctp / n_pos)
            prec.append(ctp / max(ctp + cfp, np.finfo(float).eps))
        if metric == "voc2007":
            ap = 0.0
            for t in [i * 0.1 for i in range(11)]:
                ap += max((p for r, p in zip(rec, prec, strict=True) if r >= t), default=0.0) / 11
        else:
            mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
            for i in range(len(mpre) - 2, -1, -1):
                mpre[i] = max(mpre[i], mpre[i + 1])
            ap = sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])
        aps.append(ap)
    return aps, stat


def box_iou(a: Box, b: Box, plus: float = 0.0) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0]) + plus
    ih = min(a[3], b[3]) - max(a[1], b[1]) + plus
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0] + plus) * (a[3] - a[1] + plus) + (b[2] - b[0] + plus) * (b[3] - b[1] + plus) - inter)


def random_boxes(seed: int, *, n_images: int = 12, n_cls: int = 3, separated: bool = False, crowd: float = 0.1
                 ) -> tuple[Dataset, Dataset]:
    """Unrounded boxes (no IoU exactly on a threshold), near-duplicate objects, duplicate detections, score ties.
    ``separated``: objects of a class in disjoint cells of their image, so no detection reaches 0.5 with two."""
    rng = np.random.default_rng(seed)
    truth, pred = [], []
    for i in range(n_images):
        cells = rng.permutation(16)
        objs: list[tuple[int, list[float]]] = []
        for j in range(int(rng.integers(0, 7))):
            c = int(rng.integers(n_cls))
            if separated:
                x0, y0 = 50.0 * (cells[j] % 4), 50.0 * (cells[j] // 4)
                w, h = rng.uniform(10, 45, 2)
                x, y = x0 + rng.uniform(0, 50 - w), y0 + rng.uniform(0, 50 - h)
            elif objs and rng.random() < 0.3:  # a near-duplicate of an earlier object
                x, y, w, h = np.asarray(objs[-1][1]) + rng.normal(0, 2, 4)
                w, h = abs(w) + 3, abs(h) + 3
            else:
                w, h = rng.uniform(5, 80, 2)
                x, y = rng.uniform(0, 120, 2)
            objs.append((c, [x, y, w, h]))
            truth.append((i, c, [x, y, x + w, y + h]))
        for _ in range(int(rng.integers(0, 10))):
            if objs and rng.random() < 0.75:
                c, (x, y, w, h) = objs[int(rng.integers(len(objs)))]
                x, y = x + rng.normal(0, 0.08 * w), y + rng.normal(0, 0.08 * h)
                w, h = w * np.exp(rng.normal(0, 0.12)), h * np.exp(rng.normal(0, 0.12))
                c = int(rng.integers(n_cls)) if rng.random() < 0.1 else c
            else:
                c, (w, h), (x, y) = int(rng.integers(n_cls)), rng.uniform(5, 80, 2), rng.uniform(0, 150, 2)
            pred.append((i, c, [x, y, x + w, y + h], float(np.round(rng.random(), 1))))
    names = tuple("abcdefgh"[:n_cls])
    flags = rng.random(len(truth)) < crowd
    return make(truth, pred, classes=names, n_images=n_images, crowd=flags if not separated else None)


def with_difficult(truth: Dataset, seed: int, rate: float = 0.2) -> tuple[Dataset, list[bool]]:
    flags = (np.random.default_rng(seed).random(truth.n_annotations) < rate).tolist()
    return truth.replace(annotations=truth.annotations.with_columns(attributes={"difficult": obj_array(flags)})), flags


def assert_same(r: VocResult, ref: tuple[list[float], list[str]]) -> None:
    aps, stat = ref
    assert status(r) == stat
    np.testing.assert_allclose(r.ap_per_class, aps, rtol=0, atol=1e-12)


@pytest.fixture(params=["kernel", "numpy"])
def native(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the compiled kernels where built, and with the numpy paths (``MASLOW_NATIVE=0``)."""
    if request.param == "numpy":
        monkeypatch.setenv("MASLOW_NATIVE", "0")
    return str(request.param)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("metric", "strict", "thr"), [("voc2010", False, 0.5), ("voc2007", True, 0.5),
                                                        ("voc2010", True, 0.3), ("voc2007", False, 0.7)])
@pytest.mark.parametrize("inclusive", [False, True], ids=["continuous", "inclusive"])
def test_boxes_against_the_loop(native: str, seed: int, metric: str, strict: bool, thr: float,
                                inclusive: bool) -> None:
    truth, pred = random_boxes(seed)
    truth, flags = with_difficult(truth, seed)
    tb, pb = truth.annotations.box, pred.annotations.box
    ref = reference(truth, pred, lambda d, g: box_iou(pb[d], tb[g], 1.0 if inclusive else 0.0), thr=thr,
                    strict=strict, metric=metric, difficult=flags)
    r = voc_map(truth, pred, metric=metric, strict_iou=strict, iou_threshold=thr, pixel_inclusive=inclusive)
    assert_same(r, ref)
    valid = [a for a in ref[0] if not math.isnan(a)]
    assert r.map == pytest.approx(float(np.mean(valid)) if valid else math.nan, abs=1e-12, nan_ok=True)


def _rle(row: int, ds: Dataset) -> dict[str, Any]:
    a = ds.annotations
    h, w = int(ds.images.height[a.image[row]]), int(ds.images.width[a.image[row]])
    poly = None if a.polygon is None else a.polygon[row]
    if poly:
        return mask_utils.merge(mask_utils.frPyObjects([np.asarray(p, float).tolist() for p in poly], h, w))
    assert a.mask is not None
    return dict(a.mask[row])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("metric", ["voc2010", "voc2007"])
def test_masks_against_the_loop(native: str, seed: int, metric: str) -> None:
    truth, pred = datasets(*random_segm_case(seed, n_images=10))
    truth, flags = with_difficult(truth, seed)
    t_rles = [_rle(g, truth) for g in range(truth.n_annotations)]
    p_rles = [_rle(d, pred) for d in range(pred.n_annotations)]
    ref = reference(truth, pred, lambda d, g: float(mask_utils.iou([p_rles[d]], [t_rles[g]], [0])[0][0]),
                    metric=metric, difficult=flags)
    assert_same(voc_map(truth, pred, iou_type="segm", metric=metric), ref)


def _ccw(q: np.ndarray) -> list[tuple[float, float]]:
    pts = [(float(x), float(y)) for x, y in q.reshape(-1, 2)]
    area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(pts, pts[1:] + pts[:1], strict=True))
    return pts if area2 >= 0 else pts[::-1]


def quad_iou(p: list[tuple[float, float]], q: list[tuple[float, float]]) -> float:
    """Sutherland-Hodgman: ``p`` clipped by each edge of ``q`` (both counter-clockwise), then shoelace."""
    def area(poly: list[tuple[float, float]]) -> float:
        return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(poly, poly[1:] + poly[:1], strict=True))) / 2

    out = p
    for a, b in zip(q, q[1:] + q[:1], strict=True):
        def side(v: tuple[float, float]) -> float:
            return (b[0] - a[0]) * (v[1] - a[1]) - (b[1] - a[1]) * (v[0] - a[0])  # noqa: B023
        src, out = out, []
        for k, cur in enumerate(src):
            prev = src[k - 1]
            sc, sp = side(cur), side(prev)
            if (sc >= 0) != (sp >= 0):
                t = sp / (sp - sc)
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if sc >= 0:
                out.append(cur)
        if not out:
            return 0.0
    inter = area(out)
    return inter / (area(p) + area(q) - inter) if inter > 0 else 0.0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("metric", ["voc2010", "voc2007"])
def test_oriented_boxes_against_the_loop(native: str, seed: int, metric: str) -> None:
    truth = oriented(12, seed=seed)
    pred = oriented_predictions(truth, seed=seed, fp_per_image=2.0)
    truth, flags = with_difficult(truth, seed)
    assert truth.annotations.polygon is not None and pred.annotations.polygon is not None
    tq = [_ccw(truth.annotations.polygon[g][0]) for g in range(truth.n_annotations)]
    pq = [_ccw(pred.annotations.polygon[d][0]) for d in range(pred.n_annotations)]
    ref = reference(truth, pred, lambda d, g: quad_iou(pq[d], tq[g]), metric=metric, difficult=flags)
    assert_same(voc_map(truth, pred, iou_type="obb", metric=metric), ref)


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "obb"])
def test_kernel_and_numpy_paths_agree_bit_for_bit(monkeypatch: pytest.MonkeyPatch, iou_type: str) -> None:
    if iou_type == "segm":
        truth, pred = datasets(*random_segm_case(7, n_images=12))
    elif iou_type == "obb":
        truth = oriented(16, seed=3)
        pred = oriented_predictions(truth, seed=3)
    else:
        truth, pred = random_boxes(7, n_images=30)
    runs = []
    for env in ("1", "0"):
        monkeypatch.setenv("MASLOW_NATIVE", env)
        runs.append([voc_map(truth, pred, iou_type=iou_type, **o) for o in ({}, {"metric": "voc2007"})]
                    + ([voc_map(truth, pred, pixel_inclusive=True)] if iou_type == "bbox" else []))
    for a, b in zip(*runs, strict=True):
        for name in ("ap_per_class", "pred_status", "pred_match", "pred_iou", "truth_status", "truth_match"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        for k in range(len(a.class_names)):
            np.testing.assert_array_equal(a.precision[k], b.precision[k])


# -- where VOC and COCO must agree -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_decisions_agree_with_coco_matches_when_objects_are_apart(seed: int) -> None:
    # no difficult or crowd object, no detection reaching 0.5 with two objects, no cap, one area range: VOC's
    # "best object, even if taken" and COCO's "best free object" make the same decisions
    truth, pred = random_boxes(seed, n_images=20, separated=True)
    r = voc_map(truth, pred)
    table = coco_matches(truth, pred, iou_thresholds=[0.5], max_dets=[1000], area_ranges={"all": (0, 1e10)})
    np.testing.assert_array_equal(r.pred_status, table.pred_status[:, 0])
    matched = r.pred_match >= 0
    np.testing.assert_array_equal(r.pred_match[r.pred_status == r.TP], table.pred_match[r.pred_status == r.TP, 0])
    np.testing.assert_array_equal(r.truth_status, table.truth_status[:, 0])
    assert matched.sum() >= (r.pred_status == r.TP).sum() > 0


@pytest.mark.parametrize("seed", range(5))
def test_ap_agrees_with_coco_at_matching_recall_points(seed: int) -> None:
    # one class: VOC2010's area is COCO's mean precision at the recall points k / n_pos, VOC2007's at np.arange's
    # 11 points (the envelope at the first point reaching each), up to the order of the sums and COCO's
    # tp / (tp + fp + eps) against tp / max(tp + fp, eps)
    truth, pred = random_boxes(seed, n_images=25, n_cls=1, separated=True)
    n_pos = truth.n_annotations
    r10, r07 = voc_map(truth, pred), voc_map(truth, pred, metric="voc2007")
    kw: dict[str, Any] = {"iou_thresholds": [0.5], "max_dets": [1000], "area_ranges": {"all": (0, 1e10)}}
    c10 = coco_map(truth, pred, recall_thresholds=np.arange(1, n_pos + 1) / n_pos, **kw)
    c07 = coco_map(truth, pred, recall_thresholds=np.arange(0.0, 1.1, 0.1), **kw)
    assert r10.map == pytest.approx(c10.ap_per_class[0, 0], abs=1e-12)
    assert r07.map == pytest.approx(c07.ap_per_class[0, 0], abs=1e-12)
    assert 0 < r10.map < 1


# -- other implementations, where installed (torchmetrics' MeanAveragePrecision is COCO's protocol, not VOC's) ----

def test_detectron2_voc_ap_on_the_same_curves() -> None:
    pascal = pytest.importorskip("detectron2.evaluation.pascal_voc_evaluation")
    truth, pred = random_boxes(3, n_images=30)
    for metric in ("voc2010", "voc2007"):
        r = voc_map(truth, pred, metric=metric)
        for k in np.flatnonzero(r.n_pos_per_class).tolist():
            ap = pascal.voc_ap(np.array(r.recall[k]), np.array(r.precision[k]), metric == "voc2007")
            assert float(ap) == r.ap_per_class[k]


def test_mmdet_eval_map() -> None:
    pytest.importorskip("mmdet")
    try:
        from mmdet.evaluation.functional import eval_map  # mmdet 3
    except ImportError:
        from mmdet.core.evaluation import eval_map  # mmdet 2
    truth, pred = random_boxes(5, n_images=30, crowd=0.0)
    # distinct scores (mmdet's argsort is not stable), difficult objects as its ignored boxes
    pred = pred.replace(annotations=pred.annotations.with_columns(
        score=np.random.default_rng(1).random(pred.n_annotations)))
    truth, flag_list = with_difficult(truth, 5)
    flags = np.asarray(flag_list, bool)
    ta, pa = truth.annotations, pred.annotations
    assert ta.box is not None and pa.box is not None and pa.score is not None
    n_k = len(truth.schema.names)
    dets = [[np.concatenate([pa.box[(pa.image == i) & (pa.label == k)],
                             pa.score[(pa.image == i) & (pa.label == k), None]], axis=1).astype(np.float32)
             for k in range(n_k)] for i in range(truth.n_images)]
    anns = [{"bboxes": ta.box[(ta.image == i) & ~flags].astype(np.float32), "labels": ta.label[(ta.image == i) & ~flags],
             "bboxes_ignore": ta.box[(ta.image == i) & flags].astype(np.float32),
             "labels_ignore": ta.label[(ta.image == i) & flags]} for i in range(truth.n_images)]
    _, per_class = eval_map(dets, anns, iou_thr=0.5, nproc=1, logger="silent")
    r = voc_map(truth, pred)
    got = [float(c["ap"]) for c in per_class if c["num_gts"] > 0]
    np.testing.assert_allclose(got, r.ap_per_class[r.n_pos_per_class > 0], atol=1e-5)  # mmdet computes in float32


# -- VOC files: the +1 pixel convention on the file's numbers ---------------------------------------------------

VOC_OBJECTS = {"000001": [("dog", 48, 240, 195, 371, 0), ("person", 8, 12, 352, 498, 0), ("dog", 190, 240, 260, 380, 1)],
               "000002": [("dog", 1, 1, 100, 50, 0), ("dog", 101, 1, 150, 50, 0), ("person", 20, 20, 60, 49, 1)]}


def test_voc_files_read_by_maslow_give_the_devkit_plus_one_iou(tmp_path: Path) -> None:
    """read_voc makes VOC's 1-based inclusive pixels continuous (x1 = xmin - 1, x2 = xmax), so the default IoU of
    the boxes it reads is the devkit's (x2 - x1 + 1) IoU on the numbers in the files."""
    (tmp_path / "Annotations").mkdir()
    for name, objs in VOC_OBJECTS.items():
        body = "".join(f"<object><name>{c}</name><difficult>{d}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                       f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>" for c, x1, y1, x2, y2, d in objs)
        (tmp_path / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>500</width><height>500</height>"
            f"<depth>3</depth></size>{body}</annotation>", encoding="utf-8")
    truth = read_voc(tmp_path)
    rng = np.random.default_rng(0)
    a = truth.annotations
    assert a.box is not None
    # integer detections near each object (and a few strays), in maslow's continuous corners
    boxes = np.concatenate([a.box + rng.integers(-12, 13, a.box.shape), rng.integers(0, 300, (4, 4)).cumsum(1)])
    image = np.concatenate([a.image, [0, 0, 1, 1]])
    pred = truth.replace(annotations=Annotations.sort_rows(
        image=image, label=np.concatenate([a.label, [0, 1, 0, 1]]), box=boxes.astype(np.float64),
        score=np.round(rng.random(len(image)), 1)))
    # the reference on the file's numbers: truth as written, detections as detectron2 writes them (xmin + 1)
    rows: dict[tuple[int, str], list[list[int]]] = {}
    for img_row, name in enumerate(sorted(VOC_OBJECTS)):
        for c, x1, y1, x2, y2, _ in VOC_OBJECTS[name]:
            rows.setdefault((img_row, c), []).append([x1, y1, x2, y2])
    file_box = [rows[(int(a.image[g]), truth.schema.names[a.label[g]])].pop(0) for g in range(truth.n_annotations)]
    pb = pred.annotations.box
    det_box = [[pb[d][0] + 1, pb[d][1] + 1, pb[d][2], pb[d][3]] for d in range(pred.n_annotations)]
    flags = a.attributes["difficult"].tolist()
    for metric in ("voc2010", "voc2007"):
        ref = reference(truth, pred, lambda d, g: box_iou(det_box[d], file_box[g], 1.0), metric=metric,
                        difficult=flags)
        r = voc_map(truth, pred, metric=metric)
        assert_same(r, ref)
        assert set(status(r)) == {"tp", "fp", "ignored"}
