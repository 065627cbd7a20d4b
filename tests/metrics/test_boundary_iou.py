"""``coco_map``/``coco_matches`` with ``iou_type="boundary"`` (Boundary IoU, Cheng et al., CVPR 2021).

References: the boundary-iou-api's COCOeval is pycocotools' with ``computeBoundaryIoU`` (the IoU of a pair is
min(mask IoU, boundary IoU), a crowd region's the mask IoU alone); here that method is put on pycocotools 2.0.11's
COCOeval (what maslow's segm matches bit for bit) with boundaries from the by-hand erosion of
``test_boundary_mask`` (or OpenCV's, where installed); and faster-coco-eval's ``COCOeval_faster(iouType="boundary")``
where installed. Hand-computed IoUs of two squares, and properties that need neither."""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maslow.core.dataset import Dataset
from maslow.core.masks import decode
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.metrics import coco_map, coco_matches
from maslow.metrics._result import MatchTable
from tests.metrics.cocodata import assert_same, datasets, random_segm_case
from tests.metrics.test_boundary_mask import reference_boundary
from tests.metrics.test_rle_native import odd_case

Boundary = Callable[[np.ndarray, float], np.ndarray]


class BoundaryCOCOeval(COCOeval):  # type: ignore[misc]
    """pycocotools' COCOeval with the boundary-iou-api's ``computeBoundaryIoU`` (its cocoeval.py)."""

    def __init__(self, gt: COCO, dt: COCO, ratio: float, boundary: Boundary) -> None:
        super().__init__(gt, dt, "segm")
        self.ratio, self.boundary, self.cache = ratio, boundary, {}

    def _boundary(self, ann: dict[str, Any]) -> dict[str, Any]:
        key = (id(ann), ann["id"])
        if key not in self.cache:
            m = decode(ann["segmentation"]).astype(np.uint8)
            b = self.boundary(m, self.ratio).astype(np.uint8)
            self.cache[key] = mask_utils.encode(np.asfortranarray(b))
        return self.cache[key]  # type: ignore[no-any-return]

    def computeIoU(self, imgId: int, catId: int) -> Any:
        p = self.params
        if p.useCats:
            gt, dt = self._gts[imgId, catId], self._dts[imgId, catId]
        else:
            gt = [g for c in p.catIds for g in self._gts[imgId, c]]
            dt = [d for c in p.catIds for d in self._dts[imgId, c]]
        if len(gt) == 0 and len(dt) == 0:
            return []
        dt = [dt[i] for i in np.argsort([-d["score"] for d in dt], kind="mergesort")][:p.maxDets[-1]]
        iscrowd = [int(o["iscrowd"]) for o in gt]
        mask_ious = np.array(mask_utils.iou([d["segmentation"] for d in dt], [g["segmentation"] for g in gt],
                                            iscrowd))
        boundary_ious = np.array(mask_utils.iou([self._boundary(d) for d in dt], [self._boundary(g) for g in gt],
                                                iscrowd))
        ious = mask_ious
        crowd = np.array(iscrowd)
        if len(gt) and len(dt):
            ious[:, crowd == 0] = np.minimum(mask_ious[:, crowd == 0], boundary_ious[:, crowd == 0])
        return ious


def reference(gt: dict[str, Any], results: list[dict[str, Any]], ratio: float = 0.02,
              boundary: Boundary = reference_boundary, **params: Any) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ev = BoundaryCOCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), ratio, boundary)
        for k, v in params.items():
            setattr(ev.params, k, v)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.mark.parametrize("native", [True, False], ids=["kernel", "pycocotools"])
@pytest.mark.parametrize("seed", range(4))
def test_equals_the_api_on_pycocotools(monkeypatch: pytest.MonkeyPatch, seed: int, native: bool) -> None:
    if not native:
        monkeypatch.setenv("MASLOW_NATIVE", "0")
    gt, results = random_segm_case(seed, n_images=10, size=80)
    truth, pred = datasets(gt, results)
    assert_same(reference(gt, results), coco_map(truth, pred, iou_type="boundary"))


@pytest.mark.parametrize("native", [True, False], ids=["kernel", "pycocotools"])
def test_equals_the_api_class_agnostic_and_other_dilation(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    if not native:
        monkeypatch.setenv("MASLOW_NATIVE", "0")
    gt, results = random_segm_case(7, n_images=10, size=80)
    truth, pred = datasets(gt, results)
    ref = reference(gt, results, 0.06, useCats=0)
    assert_same(ref, coco_map(truth, pred, iou_type="boundary", boundary_dilation=0.06, use_cats=False))


def test_match_table_ious_are_the_api_ious() -> None:
    gt, results = random_segm_case(2, n_images=10, size=80)
    truth, pred = datasets(gt, results)
    table = coco_matches(truth, pred, iou_type="boundary", iou_thresholds=[0.1])
    assert_same(reference(gt, results, iouThrs=np.array([0.1])), table.result, stats=False)
    segm = coco_matches(truth, pred, iou_type="segm", iou_thresholds=[0.1])
    # every pair matched in both: its boundary IoU is at most its mask IoU, and small ragged polygons make most lower
    both = (table.pred_match[:, 0] >= 0) & (table.pred_match[:, 0] == segm.pred_match[:, 0])
    assert both.sum() >= 5
    assert np.all(table.pred_iou[both, 0] <= segm.pred_iou[both, 0])
    assert np.sum(table.pred_iou[both, 0] < segm.pred_iou[both, 0]) >= 3


def test_image_sizes_where_the_dilation_is_a_tie() -> None:
    """105 x 140 and 225 x 300 images: 0.02 x the diagonal is 3.5 and 7.5, rounded half to even (4, 8) as the
    API's Python round() does."""
    gt, results = random_segm_case(5, n_images=6, size=80)
    for i, im in enumerate(gt["images"]):
        im["height"], im["width"] = ((105, 140), (225, 300))[i % 2]
    truth, pred = datasets(gt, results)
    assert_same(reference(gt, results), coco_map(truth, pred, iou_type="boundary"))


@pytest.mark.parametrize("native", [True, False], ids=["kernel", "pycocotools"])
def test_rows_the_kernel_leaves_to_pycocotools(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """Odd polygons (an odd ring, a 2-point ring, a vertex past the kernel's coordinate bound) beside a crowd."""
    if not native:
        monkeypatch.setenv("MASLOW_NATIVE", "0")
    gt, results = odd_case()
    truth, pred = datasets(gt, results)
    assert_same(reference(gt, results), coco_map(truth, pred, iou_type="boundary"))
    assert_same(reference(gt, results, 0.2), coco_map(truth, pred, iou_type="boundary", boundary_dilation=0.2))


def test_equals_the_api_with_opencv() -> None:
    cv2 = pytest.importorskip("cv2")

    def mask_to_boundary(mask: np.ndarray, dilation_ratio: float) -> np.ndarray:  # boundary_utils.py
        h, w = mask.shape
        dilation = max(1, int(round(dilation_ratio * np.sqrt(h ** 2 + w ** 2))))  # noqa: RUF046 (a numpy float)
        new_mask = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        new_mask_erode = cv2.erode(new_mask, np.ones((3, 3), dtype=np.uint8), iterations=dilation)
        return mask - new_mask_erode[1:h + 1, 1:w + 1]  # type: ignore[no-any-return]

    for seed in range(3):
        gt, results = random_segm_case(seed, n_images=10, size=80)
        if seed == 2:  # a tie of the dilation (3.5 on a 105 x 140 image)
            for im in gt["images"]:
                im["height"], im["width"] = 105, 140
        truth, pred = datasets(gt, results)
        assert_same(reference(gt, results, boundary=mask_to_boundary), coco_map(truth, pred, iou_type="boundary"))


def test_equals_faster_coco_eval() -> None:
    """faster-coco-eval's boundary evaluation (its own C++ erosion): the same stats and recall; its precision
    array differs from pycocotools' in the last bit where pycocotools divides by tp + fp + eps (as for segm)."""
    fce = pytest.importorskip("faster_coco_eval")
    for seed in range(3):
        gt, results = random_segm_case(seed, n_images=12, size=80)
        truth, pred = datasets(gt, results)
        with contextlib.redirect_stdout(io.StringIO()):
            g = fce.COCO(copy.deepcopy(gt))
            ev = fce.COCOeval_faster(g, g.loadRes(copy.deepcopy(results)), "boundary", boundary_dilation_ratio=0.02)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        ours = coco_map(truth, pred, iou_type="boundary")
        np.testing.assert_array_equal(ours.stats, np.asarray(ev.stats))
        np.testing.assert_array_equal(ours.recall, ev.eval["recall"])
        np.testing.assert_allclose(ours.precision, ev.eval["precision"], rtol=0, atol=4 * np.finfo(float).eps)


# -- by hand ------------------------------------------------------------------------------------------------

def _squares(truth_box: tuple[int, int, int, int], pred_box: tuple[int, int, int, int], *, size: int = 100,
             crowd: bool = False) -> tuple[Dataset, Dataset]:
    """One truth and one prediction square (x0, y0, x1, y1: pixels x0..x1-1) as RLE masks on a size x size image."""

    def rle(box: tuple[int, int, int, int]) -> dict[str, Any]:
        m = np.zeros((size, size), np.uint8, order="F")
        m[box[1]:box[3], box[0]:box[2]] = 1
        return mask_utils.encode(m)  # type: ignore[no-any-return]

    schema = LabelSchema(classes=(ClassDef(name="a", id=1),))
    images = Images(path=np.asarray(["0.png"], object), width=np.asarray([size]), height=np.asarray([size]))

    def ds(box: tuple[int, int, int, int], **kw: Any) -> Dataset:
        return Dataset(schema=schema, images=images, annotations=Annotations(
            image=np.zeros(1, np.int64), label=np.zeros(1, np.int64), box=np.asarray([box], np.float64),
            mask=obj_array([rle(box)]), **kw))

    return ds(truth_box, iscrowd=np.asarray([crowd])), ds(pred_box, score=np.ones(1))


def test_two_squares_by_hand() -> None:
    # 100 x 100 image: d = round(0.02 * 141.4) = 3. Truth: x, y in 10..29; prediction: x in 12..31, y in 10..29.
    # mask IoU = 18 * 20 / (400 + 400 - 360) = 9 / 11.
    # boundaries: each square minus its inner 14 x 14 square (204 pixels). In the 6 rows of the rings' top and
    # bottom bands they share x 12..29 (18 pixels a row), in the 14 rows between, x = 12 and x = 29: 2 a row.
    # boundary IoU = (6 * 18 + 14 * 2) / (204 + 204 - 136) = 136 / 272 = 0.5, so the IoU is min(9/11, 0.5) = 0.5
    truth, pred = _squares((10, 10, 30, 30), (12, 10, 32, 30))
    table = coco_matches(truth, pred, iou_type="boundary", iou_thresholds=[0.5, 0.55])
    assert table.pred_iou[0, 0] == 0.5
    assert table.pred_status[0].tolist() == [MatchTable.TP, MatchTable.FP]
    segm = coco_matches(truth, pred, iou_type="segm", iou_thresholds=[0.5, 0.55])
    assert segm.pred_iou[0, 0] == 9 / 11 and segm.pred_status[0].tolist() == [MatchTable.TP, MatchTable.TP]
    # a dilation past half the square: the boundaries are the masks, the IoU the mask IoU
    wide = coco_matches(truth, pred, iou_type="boundary", iou_thresholds=[0.5], boundary_dilation=0.1)
    assert wide.pred_iou[0, 0] == 9 / 11


def test_a_crowd_region_keeps_the_mask_iou() -> None:
    # a 10 x 10 prediction inside a 40 x 40 crowd region: intersection over the prediction's area, 1.0 (the
    # boundaries share nothing); the prediction is matched to the region, so ignored: no FP
    truth, pred = _squares((10, 10, 50, 50), (25, 25, 35, 35), crowd=True)
    table = coco_matches(truth, pred, iou_type="boundary", iou_thresholds=[0.5, 0.95])
    assert table.pred_iou[0].tolist() == [1.0, 1.0]
    assert table.pred_status[0].tolist() == [MatchTable.IGNORED, MatchTable.IGNORED]


# -- properties ---------------------------------------------------------------------------------------------

def _blobs(noise: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Round blobs on 200 x 200 images, predicted with their edge pixels flipped at random (``noise`` pixels of
    jitter on the radius; 0: the truth itself)."""
    rng = np.random.default_rng(seed)
    size, n_img = 200, 6
    yy, xx = np.mgrid[:size, :size]
    schema = LabelSchema(classes=(ClassDef(name="a", id=1),))
    images = Images(path=np.asarray([f"{i}.png" for i in range(n_img)], object), width=np.full(n_img, size),
                    height=np.full(n_img, size))
    t_masks, p_masks, image = [], [], []
    for i in range(n_img):
        for _ in range(3):
            cy, cx, r = rng.uniform(40, 160), rng.uniform(40, 160), rng.uniform(20, 35)
            dist = np.hypot(yy - cy, xx - cx)
            t_masks.append(mask_utils.encode(np.asfortranarray((dist < r).astype(np.uint8))))
            ragged = dist < r + rng.normal(0, noise, dist.shape) if noise else dist < r
            p_masks.append(mask_utils.encode(np.asfortranarray(ragged.astype(np.uint8))))
            image.append(i)
    n = len(image)
    cols = {"image": np.asarray(image), "label": np.zeros(n, np.int64), "box": np.zeros((n, 4))}
    truth = Dataset(schema=schema, images=images, annotations=Annotations(**cols, mask=obj_array(t_masks)))
    pred = Dataset(schema=schema, images=images, annotations=Annotations(**cols, mask=obj_array(p_masks),
                                                                          score=rng.random(n)))
    return truth, pred


def test_perfect_predictions_score_one() -> None:
    truth, pred = _blobs(0.0)
    r = coco_map(truth, pred, iou_type="boundary")
    assert r.map_50_95 == 1.0 and r.mar_100 == 1.0


def test_a_large_dilation_gives_the_segm_evaluation() -> None:
    gt, results = random_segm_case(4, n_images=10, size=80)
    truth, pred = datasets(gt, results)
    wide, segm = coco_map(truth, pred, iou_type="boundary", boundary_dilation=1.0), coco_map(truth, pred,
                                                                                              iou_type="segm")
    for name in ("precision", "recall", "scores", "stats"):
        np.testing.assert_array_equal(getattr(wide, name), getattr(segm, name), err_msg=name)
    narrow = coco_map(truth, pred, iou_type="boundary")
    assert narrow.iou_type == "boundary" and narrow.map_50_95 < segm.map_50_95


def test_noisy_edges_lower_boundary_ap_more_than_mask_ap() -> None:
    """Ragged edges on the right blobs: mask AP barely notices, boundary AP drops (the paper's point)."""
    truth, pred = _blobs(2.5)
    segm, boundary = coco_map(truth, pred, iou_type="segm"), coco_map(truth, pred, iou_type="boundary")
    assert segm.map_50_95 > 0.6
    assert boundary.map_50_95 < segm.map_50_95 - 0.2


def test_boxes_only_are_refused() -> None:
    schema = LabelSchema(classes=(ClassDef(name="a", id=1),))
    images = Images(path=np.asarray(["0.png"], object), width=np.asarray([50]), height=np.asarray([50]))
    truth = Dataset(schema=schema, images=images, annotations=Annotations(
        image=np.zeros(2, np.int64), label=np.zeros(2, np.int64), box=np.asarray([[1, 1, 9, 9], [2, 2, 8, 8.0]])))
    pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(2)))
    with pytest.raises(InvalidDatasetError, match=r"truth.annotations row 0: iou_type 'boundary' needs a polygon or "
                                                  r"a mask, got neither \(2 rows\)"):
        coco_map(truth, pred, iou_type="boundary")


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_dilation_is_refused(bad: float) -> None:
    truth, pred = _squares((10, 10, 30, 30), (12, 10, 32, 30))
    with pytest.raises(ValueError, match="boundary_dilation must be a finite number >= 0"):
        coco_map(truth, pred, iou_type="boundary", boundary_dilation=bad)


def test_a_mask_whose_runs_miss_pixels_is_named() -> None:
    """Counts that cover 35 of 400 pixels: pycocotools' mask IoU walks them, but no boundary can be taken of them
    (the API's decode would read memory it never wrote)."""
    truth, pred = _squares((6, 6, 14, 14), (6, 6, 14, 14), size=20)
    bad = obj_array([{"size": [20, 20], "counts": [5, 30]}])
    pred = pred.replace(annotations=pred.annotations.with_columns(mask=bad))
    assert coco_map(truth, pred, iou_type="segm").map_50 == 0.0
    with pytest.raises(InvalidDatasetError, match=r"pred.annotations row 0: the mask's run lengths must cover its "
                                                  r"20 x 20 pixels for a boundary, got 35 pixels"):
        coco_map(truth, pred, iou_type="boundary")
