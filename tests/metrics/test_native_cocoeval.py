"""The compiled COCO kernel (``maslow._native.cocoeval``) against its numpy twin (``MASLOW_NATIVE=0``) and against
pycocotools 2.0.11: every precision/recall/scores cell, every stat, the match table and the raw matches equal.

Skipped when the kernel was not built (no C compiler at install time)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maslow import _native
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.errors import InvalidDatasetError
from maslow.metrics import coco_map, coco_matches
from maslow.metrics._match import Matches, match
from tests.metrics.cocodata import check, datasets, random_case, random_keypoint_case, random_segm_case

pytestmark = pytest.mark.skipif(_native.load("cocoeval") is None, reason="cocoeval kernel not built")

OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "max-dets": {"max_dets": (1, 3, 5)},
    "max-dets-repeated": {"max_dets": (2, 2, 7, 100)},
    "class-agnostic": {"use_cats": False},
    "area-ranges": {"area_ranges": {"all": (0, 1e10), "small": (0, 400), "band": (100, 900), "large": (400, 1e10)}},
    "area-no-all": {"area_ranges": {"small": (0, 400), "large": (400, 1e10)}},
    "iou-thresholds": {"iou_thresholds": [0.75, 0.0, 0.5, 0.1, 1.0]},
    "recall-thresholds": {"recall_thresholds": [0.3, 0.0, 0.3, 1.0, 0.05, 0.9]},
    "many-thresholds": {"iou_thresholds": np.linspace(0.0, 1.0, 70)},  # past the kernel's 64: numpy accumulate
}
CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "crowds": {"crowd_rate": 0.5},
    "ties": {"tie_rate": 1.0},
    "empties": {"empty_rate": 0.5},
    "dense": {"n_images": 4, "max_gt": 20, "max_dt": 40, "n_cats": 2},
}


def _both(monkeypatch: pytest.MonkeyPatch, truth: Dataset, pred: Dataset, **opts: Any) -> None:
    """coco_map and coco_matches with the kernel and with the numpy twin: identical arrays and tables."""
    monkeypatch.delenv("MASLOW_NATIVE", raising=False)
    assert _native.load("cocoeval") is not None
    fast = coco_matches(truth, pred, **opts)
    fast_map = coco_map(truth, pred, **opts)
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    assert _native.load("cocoeval") is None
    ref = coco_matches(truth, pred, **opts)
    monkeypatch.delenv("MASLOW_NATIVE")
    for res in (fast.result, fast_map):
        for name in ("precision", "recall", "scores", "stats"):
            np.testing.assert_array_equal(getattr(res, name), getattr(ref.result, name), err_msg=name)
    for name in ("pred_match", "pred_iou", "pred_status", "truth_match", "truth_iou", "truth_status"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("option", list(OPTIONS))
def test_bbox_kernel_equals_numpy(monkeypatch: pytest.MonkeyPatch, case: str, option: str) -> None:
    for seed in range(4):
        kw = dict(CASES[case])
        if option.startswith("max-dets"):
            kw.setdefault("max_dt", 8)
        truth, pred = datasets(*random_case(seed, **kw))
        _both(monkeypatch, truth, pred, **OPTIONS[option])


@pytest.mark.parametrize("seed", range(4))
def test_segm_and_keypoints_kernel_equals_numpy(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    _both(monkeypatch, *datasets(*random_segm_case(seed)), iou_type="segm")
    _both(monkeypatch, *datasets(*random_segm_case(seed, bbox_in_results=True)), iou_type="segm", pred_area="box")
    _both(monkeypatch, *datasets(*random_keypoint_case(seed)), iou_type="keypoints")
    _both(monkeypatch, *datasets(*random_keypoint_case(seed)), iou_type="keypoints", max_dets=(1, 5),
          area_ranges={"all": (0, 1e10)})


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_equals_pycocotools(case: str) -> None:
    for seed in range(10, 14):
        result, ev = check(*random_case(seed, **CASES[case]))  # asserts every cell and stat equal
        assert result.precision.shape == ev.eval["precision"].shape
    check(*random_case(3, **CASES[case]), use_cats=False)
    check(*random_case(5, **CASES[case]), max_dets=(1, 2, 4), iou_thresholds=[0.3, 0.5, 0.9])


def test_missing_box_error_names_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    truth, pred = datasets(*random_case(1, empty_rate=0.0))
    assert pred.annotations.box is not None
    box = pred.annotations.box.copy()
    box[[3, 5], :] = np.nan
    pred = pred.replace(annotations=pred.annotations.with_columns(box=box))
    messages = []
    for env in ("1", "0"):
        monkeypatch.setenv("MASLOW_NATIVE", env)
        pattern = r"pred.annotations.box row \d+: must be a box .* \(2 rows\)"
        with pytest.raises(InvalidDatasetError, match=pattern) as err:
            coco_map(truth, pred)
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_predictions_of_unknown_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    # predictions with a schema of their own: one class the truth lacks (dropped), the rest in another order
    truth, pred = datasets(*random_case(2, n_cats=3))
    names = truth.schema.names
    schema = LabelSchema(classes=(ClassDef(name="ghost"), *(ClassDef(name=n) for n in reversed(names))))
    label = np.asarray(pred.annotations.label)
    new = np.where(np.arange(len(label)) % 5 == 0, 0, len(names) - label)  # every fifth prediction: "ghost"
    pred = pred.replace(schema=schema, annotations=pred.annotations.with_columns(label=new))
    _both(monkeypatch, truth, pred)
    _both(monkeypatch, truth, pred, use_cats=False)
    assert coco_map(truth, pred).precision.shape[2] == len(names)


def test_kernel_on_empty_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    gt, res = random_case(0)
    truth, pred = datasets(gt, res)
    _both(monkeypatch, truth, pred.replace(annotations=pred.annotations.take(np.zeros(0, np.int64))))
    _both(monkeypatch, truth.replace(annotations=truth.annotations.take(np.zeros(0, np.int64))), pred)


# -- the matching itself: entries (as a set) and partners equal on synthetic pairs --------------------------

def _random_pairs(rng: np.random.Generator) -> dict[str, Any]:
    """Groups of 0-6 truth objects and 0-8 predictions, every (prediction, truth) pair of a group, tied IoUs."""
    t_start, p_idx, t_idx = 0, [], []
    n_pred = 0
    for _ in range(int(rng.integers(1, 30))):
        n_t, n_p = int(rng.integers(0, 7)), int(rng.integers(0, 9))
        for p in range(n_pred, n_pred + n_p):
            p_idx += [p] * n_t
            t_idx += list(range(t_start, t_start + n_t))
        t_start += n_t
        n_pred += n_p
    n_pairs = len(p_idx)
    iou = np.round(rng.random(n_pairs), 1)  # many ties
    n_a = int(rng.integers(1, 4))
    return {
        "iou": iou, "p_idx": np.asarray(p_idx, np.int64), "t_idx": np.asarray(t_idx, np.int64),
        "rank": np.arange(n_pred, dtype=np.int64), "thresholds": rng.choice([0.0, 0.3, 0.5, 0.7, 1.0], 4),
        "truth_ignored": rng.random((n_a, t_start)) < 0.3, "crowd": rng.random(t_start) < 0.25,
        "n_truth": t_start, "a_match": int(rng.integers(0, n_a)),
    }


def _entries(m: Matches) -> set[tuple[int, int, int, int]]:
    return set(zip(m.t.tolist(), m.a.tolist(), m.pred.tolist(), m.pair.tolist(), strict=True))


@pytest.mark.parametrize("seed", range(40))
def test_match_entries_equal_numpy(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    kw = _random_pairs(np.random.default_rng(seed))
    fast = match(**kw)
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    ref = match(**kw)
    assert _entries(fast) == _entries(ref)
    assert len(fast.t) == len(ref.t)
    np.testing.assert_array_equal(fast.truth_partner, ref.truth_partner)
    np.testing.assert_array_equal(fast.truth_pair, ref.truth_pair)


def test_match_crowd_last_wins_and_output_regrowth() -> None:
    # one crowd region, 40 predictions on it: every one matches it, the last is its partner; more entries
    # than the kernel's first guess (columns x (truth + 16)) so the output arrays are grown once
    n = 40
    m = match(np.full(n, 0.9), np.arange(n, dtype=np.int64), np.zeros(n, np.int64), np.arange(n, dtype=np.int64),
              np.array([0.5]), np.ones((1, 1), bool), np.ones(1, bool), 1, 0)
    assert sorted(m.pred.tolist()) == list(range(n))
    assert m.truth_partner.tolist() == [[n - 1]] and m.truth_pair.tolist() == [[n - 1]]


def test_kernel_rejects_bad_input() -> None:
    native = _native.load("cocoeval")
    assert native is not None
    z8, z = np.zeros(2, np.int64), np.zeros(2)
    part = np.full((1, 2), -1, np.int32)
    outs = [np.zeros(8, np.int16), np.zeros(8, np.int16), np.zeros(8, np.int32), np.zeros(8, np.int32)]
    ign, crowd, thr = np.zeros((1, 2), np.uint8), np.zeros(2, np.uint8), np.array([0.5])
    with pytest.raises(TypeError, match="iou must be a C-contiguous float64"):
        native.match(z8, z8, z8, thr, ign, crowd, 0, part, part.copy(), *outs)
    with pytest.raises(ValueError, match="p_idx must be sorted"):
        native.match(np.ones(2), np.array([1, 0]), z8, thr, ign, crowd, 0, part, part.copy(), *outs)
    with pytest.raises(ValueError, match="t_idx in range"):
        native.match(np.ones(2), z8, np.array([0, 5]), thr, ign, crowd, 0, part, part.copy(), *outs)
    with pytest.raises(ValueError, match="inconsistent array sizes"):
        native.match(z, z8[:1], z8, thr, ign, crowd, 0, part, part.copy(), *outs)
    with pytest.raises(TypeError, match="out_t must be a C-contiguous int16"):
        native.match(z, z8, z8, thr, ign, crowd, 0, part, part.copy(), *outs[2:], *outs[2:])


def test_match_table_kernel_rejects_bad_input() -> None:
    """Two predictions and one truth object, T = 2: a consistent call fills every cell; wrong sizes, a row out of
    range, a row evaluated twice or a pair out of range are refused."""
    native = _native.load("cocoeval")
    assert native is not None

    def call(rows: list[int], m_pair: list[int], n_pred: int = 2, t: int = 2) -> tuple[np.ndarray, ...]:
        outs = (np.empty((n_pred, 2), np.int64), np.empty((n_pred, 2)), np.empty((n_pred, 2), np.int8),
                np.empty((1, 2), np.int64), np.empty((1, 2)), np.empty((1, 2), np.int8))
        native.match_table(
            np.asarray(rows, np.int64), np.zeros(len(rows), bool), np.asarray([0], np.int16), np.asarray([0], np.int16),
            np.asarray([0], np.int32), np.asarray(m_pair, np.int32), np.zeros(1, np.int64), np.full(1, 0.75),
            np.zeros(1, np.int64), np.zeros(1, bool), np.zeros(1, bool), np.asarray([[0], [-1]], np.int32),
            np.asarray([[0], [-1]], np.int32), *outs, 0, t)
        return outs

    p_match, p_iou, p_status, t_match, t_iou, t_status = call([1, 0], [0])
    assert p_match.tolist() == [[-1, -1], [0, -1]] and p_iou[1, 0] == 0.75 and np.isnan(p_iou[[0, 1, 0], [0, 1, 1]]).all()
    assert p_status.tolist() == [[2, 2], [1, 2]]  # FP, FP / TP at the first threshold, FP
    assert t_match.tolist() == [[1, -1]] and t_iou[0, 0] == 0.75 and t_status.tolist() == [[1, 3]]  # TP, FN
    assert call([0], [0], n_pred=3)[2][1:].tolist() == [[4, 4], [4, 4]]  # rows not evaluated: skipped
    for rows, pair, t in (([0, 5], [0], 2), ([0, 0], [0], 2), ([0, 1], [3], 2), ([0, 1], [0], 3)):
        with pytest.raises(ValueError, match="match_table"):
            call(rows, pair, t=t)
    with pytest.raises(TypeError, match="21 arguments expected"):
        native.match_table(np.zeros(1, np.int64))
    with pytest.raises(OverflowError, match="integer argument out of range"):
        native.match_table(*[np.zeros(1)] * 19, 2**40, 2)


@pytest.mark.parametrize("seed", range(6))
def test_pairs_and_box_ious_equal_numpy(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    from maslow.metrics import _prepare as P
    from maslow.metrics._iou import box_iou_pairs, pairs_with_box_ious

    rng = np.random.default_rng(seed)
    truth, pred = datasets(*random_case(seed, crowd_rate=0.3, decimals=0, size=20))  # touching, zero overlaps
    groups = P.build_groups(truth, pred, use_cats=bool(seed % 2), max_det=100, iou_type="bbox")
    t_xywh = np.round(rng.uniform(0, 20, (len(groups.truth.row), 4)))
    p_xywh = np.round(rng.uniform(0, 20, (len(groups.pred.row), 4)))
    fused = pairs_with_box_ious(groups, p_xywh, t_xywh)
    assert fused is not None
    p_idx, t_idx = P.pairs(groups)
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    assert pairs_with_box_ious(groups, p_xywh, t_xywh) is None
    ref_p, ref_t = P.pairs(groups)
    ref_iou = box_iou_pairs(p_xywh[ref_p], t_xywh[ref_t], groups.crowd[ref_t])
    assert len(ref_p) > 0
    for got in (fused[0], p_idx):
        np.testing.assert_array_equal(got, ref_p)
    for got in (fused[1], t_idx):
        np.testing.assert_array_equal(got, ref_t)
    np.testing.assert_array_equal(fused[2], ref_iou)


@pytest.mark.parametrize("odd", [None, "truth", "pred"])
def test_pair_ious_equal_pycocotools_bbiou_with_and_without_odd_coordinates(odd: str | None) -> None:
    """The kernel's plain min/max (every coordinate finite) and its fmin/fmax path (a NaN or infinite coordinate
    anywhere) give pycocotools' own bbIou, bit for bit."""
    from pycocotools import mask as mask_utils

    from maslow.metrics import _prepare as P
    from maslow.metrics._iou import pairs_with_box_ious

    rng = np.random.default_rng(5)
    truth, pred = datasets(*random_case(4, crowd_rate=0.3, decimals=0, size=20))
    groups = P.build_groups(truth, pred, use_cats=False, max_det=100, iou_type="bbox")
    t_xywh = np.round(rng.uniform(0, 20, (len(groups.truth.row), 4)), 1)
    p_xywh = np.round(rng.uniform(0, 20, (len(groups.pred.row), 4)), 1)
    odd_values = [np.nan, np.inf, -np.inf]
    if odd is not None:
        side = t_xywh if odd == "truth" else p_xywh
        at = rng.choice(side.size, 12, replace=False)
        side.ravel()[at] = rng.choice(odd_values, 12)
    p_idx, t_idx, iou = pairs_with_box_ious(groups, p_xywh, t_xywh)
    crowd = groups.crowd.astype(np.uint8)
    with np.errstate(invalid="ignore"):
        ref = np.array([mask_utils.iou(p_xywh[i][None], t_xywh[g][None], [int(crowd[g])])[0, 0]
                        for i, g in zip(p_idx.tolist(), t_idx.tolist(), strict=True)])
    assert len(ref) > 100 and (ref > 0).sum() > 10
    np.testing.assert_array_equal(iou, ref)


@pytest.mark.parametrize("min_iou", [0.0, 0.25, 0.5, 1.0, 2.0])
def test_pairs_below_min_iou_are_left_out_in_order(min_iou: float) -> None:
    from maslow.metrics import _prepare as P
    from maslow.metrics._iou import pairs_with_box_ious

    rng = np.random.default_rng(7)
    truth, pred = datasets(*random_case(3, crowd_rate=0.3, decimals=0, size=20))
    groups = P.build_groups(truth, pred, use_cats=False, max_det=100, iou_type="bbox")
    t_xywh = np.round(rng.uniform(0, 20, (len(groups.truth.row), 4)))
    p_xywh = np.round(rng.uniform(0, 20, (len(groups.pred.row), 4)))
    p_xywh[0] = np.nan  # a NaN box: its IoUs are 0 (pycocotools' w > 0 test fails), filtered like any other
    every = pairs_with_box_ious(groups, p_xywh, t_xywh)
    kept = pairs_with_box_ious(groups, p_xywh, t_xywh, min_iou)
    assert every is not None and kept is not None
    keep = ~(every[2] < min_iou)
    if 0 < min_iou <= 0.5:  # the case at hand: some pairs go, some stay
        assert keep.any() and not keep.all()
    for got, ref in zip(kept, every, strict=True):
        np.testing.assert_array_equal(got, ref[keep])


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints"])
def test_coco_map_keeps_its_numbers_when_pairs_are_filtered(monkeypatch: pytest.MonkeyPatch, iou_type: str) -> None:
    """The kernel path drops pairs (surely) below the lowest threshold; the numpy path keeps them all: same
    arrays, same match table."""
    from maslow.metrics import coco_map, coco_matches

    case = random_case(11, crowd_rate=0.2) if iou_type == "bbox" else random_keypoint_case(11)
    truth, pred = datasets(*case)
    thresholds = [0.3, 0.55, 0.9]
    native = coco_map(truth, pred, iou_thresholds=thresholds, iou_type=iou_type)
    table = coco_matches(truth, pred, iou_thresholds=thresholds, iou_type=iou_type)
    assert (table.pred_status == table.TP).any() and (table.pred_status == table.FP).any()
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    ref = coco_map(truth, pred, iou_thresholds=thresholds, iou_type=iou_type)
    ref_table = coco_matches(truth, pred, iou_thresholds=thresholds, iou_type=iou_type)
    np.testing.assert_array_equal(native.precision, ref.precision)
    np.testing.assert_array_equal(native.recall, ref.recall)
    np.testing.assert_array_equal(native.scores, ref.scores)
    for name in ("pred_match", "pred_iou", "pred_status", "truth_match", "truth_iou", "truth_status"):
        np.testing.assert_array_equal(getattr(table, name), getattr(ref_table, name), err_msg=name)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 500])
def test_prediction_orders_equal_numpy(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    from maslow.metrics import _prepare as P

    rng = np.random.default_rng(n)
    score = rng.choice([0.0, -0.0, 0.25, 0.5, 0.5000000000000001, 1.0, np.inf], n)  # ties, signed zeros
    img, k = rng.integers(0, 6, n), rng.integers(0, 3, n)
    for use_cats in (True, False):
        group = img * 3 + k if use_cats else img
        fast = P._pred_orders(score, img, k, group, use_cats)
        fast_packed = P.packed_order(k, img, group)
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        ref = P._pred_orders(score, img, k, group, use_cats)
        ref_packed = P.packed_order(k, img, group)
        monkeypatch.delenv("MASLOW_NATIVE")
        for a, b in zip(fast, ref, strict=True):
            np.testing.assert_array_equal(a, b)
        assert fast_packed is not None and ref_packed is not None
        np.testing.assert_array_equal(fast_packed, ref_packed)
        np.testing.assert_array_equal(fast_packed, np.lexsort((np.arange(n), group, img, k)))


@pytest.mark.parametrize("runs", [False, True])
@pytest.mark.parametrize("n", [0, 1, 7, 500, 3000, 6000])
def test_fused_prediction_orders_equal_numpy(monkeypatch: pytest.MonkeyPatch, n: int, runs: bool) -> None:
    """The kernel's pred_orders (radix and counting sorts) equals _pred_orders + _kept: ties, signed zeros,
    infinities, truncation at max_det, groups longer than 64 (its qsort path, from n = 3000) and classes of 2048
    predictions or more (its 11-bit radix sort, at n = 6000); rows of an image scattered, or together as in a
    results file (one run per image, images in any order: no sort by image)."""
    from maslow.metrics import _prepare as P

    rng = np.random.default_rng(n)
    score = rng.choice([0.0, -0.0, 0.25, 0.5, 0.5000000000000001, 1.0, np.inf, -np.inf, -2.5, 1e-300], n)
    n_img, n_k = (3, 2) if n >= 3000 else (6, 3)
    img, k = rng.integers(0, n_img, n), rng.integers(0, n_k, n)
    if runs:
        img = img[np.argsort(rng.permutation(n_img)[img], kind="stable")]
    group = img * n_k + k
    for max_det in (1, 2, 100, 10**6):
        ident_img, ident_k = np.arange(n_img), np.arange(n_k)
        fused = P._native_orders(score, img, k, ident_img, ident_k, n_k, max_det)
        assert fused is not None
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        assert P._native_orders(score, img, k, ident_img, ident_k, n_k, max_det) is None
        p_order, acc_order = P._pred_orders(score, img, k, group, True)
        ref = P._kept(p_order, acc_order, group, k, score, max_det)
        monkeypatch.delenv("MASLOW_NATIVE")
        for got, want in zip(fused, ref, strict=True):
            np.testing.assert_array_equal(got, want)
        assert len(fused[0]) == sum(min(c, max_det) for c in np.bincount(group, minlength=n_img * n_k).tolist())


@pytest.mark.parametrize("runs", [False, True])
def test_fused_prediction_orders_through_tables(monkeypatch: pytest.MonkeyPatch, runs: bool) -> None:
    """The kernel reads image positions and classes through the lookup tables (shuffled here), leaving out the
    rows of classes the truth lacks (-1), as build_groups' numpy path selects the known rows first."""
    from maslow.metrics import _prepare as P

    rng = np.random.default_rng(7)
    n, n_rows_img, n_labels = 2000, 40, 9
    score = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n)
    image, label = rng.integers(0, n_rows_img, n), rng.integers(0, n_labels, n)
    if runs:
        image = np.sort(image)
    img_pos = rng.permutation(n_rows_img)
    k_of_label = np.array([3, -1, 0, 5, 1, -1, 2, 4, 6])
    n_k = 7
    for max_det in (1, 3, 100):
        fused = P._native_orders(score, image, label, img_pos, k_of_label, n_k, max_det)
        assert fused is not None
        known = np.flatnonzero(k_of_label[label] >= 0)
        k, img = k_of_label[label[known]], img_pos[image[known]]
        group = img * n_k + k
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        p_order, acc_order = P._pred_orders(score[known], img, k, group, True)
        ref = list(P._kept(p_order, acc_order, group, k, score[known], max_det))
        monkeypatch.delenv("MASLOW_NATIVE")
        ref[0] = known[ref[0]]
        for got, want in zip(fused, ref, strict=True):
            np.testing.assert_array_equal(got, want)


def test_fused_prediction_orders_reject_bad_input() -> None:
    native = _native.load("cocoeval")
    assert native is not None
    s, i = np.zeros(3), np.zeros(3, np.int64)
    outs = [np.zeros(3, np.int64), np.zeros(3, np.int64), np.zeros(3, np.int32), np.zeros(3, np.int32)]
    acc = np.zeros(3, np.int32)
    ident = np.arange(1)
    with pytest.raises(ValueError, match="image or class out of range"):  # image row past the table
        native.pred_orders(s, np.array([0, 1, 2]), i, ident, ident, 1, 1, 10, *outs, np.zeros(3), acc)
    with pytest.raises(ValueError, match="image or class out of range"):  # a table entry past n_img
        native.pred_orders(s, i, i, np.array([2]), ident, 1, 1, 10, *outs, np.zeros(3), acc)
    with pytest.raises(ValueError, match="inconsistent sizes"):
        native.pred_orders(s, i, i[:2], ident, ident, 1, 1, 10, *outs, np.zeros(3), acc)
    with pytest.raises(TypeError, match="kept_score must be a C-contiguous float64"):
        native.pred_orders(s, i, i, ident, ident, 1, 1, 10, *outs, np.zeros(3, np.int64), acc)
    nan_at_1 = np.array([0.5, np.nan, np.nan])
    assert native.pred_orders(nan_at_1, i, i, ident, ident, 1, 1, 10, *outs, np.zeros(3), acc) == -2
    skip_nan = np.array([-1])  # the NaN rows' class is unknown: left out, not an error
    assert native.pred_orders(nan_at_1, i, i, ident, skip_nan, 1, 1, 10, *outs, np.zeros(3), acc) == 0
    with pytest.raises(TypeError, match="acc must be a C-contiguous int32"):
        native.pred_orders(s, i, i, ident, ident, 1, 1, 10, *outs, np.zeros(3), np.zeros(3, np.int64))


@pytest.mark.parametrize("seed", range(4))
def test_pairs_read_prediction_boxes_in_place(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """pairs with the (box, raw, rows) source and xywh_rows' areas mode equal the xywh copy path (boxes as
    read kept where consistent, recomputed where edited)."""
    from maslow.core.boxes import COCO_BBOX
    from maslow.metrics import _prepare as P
    from maslow.metrics._iou import box_areas, boxes, pairs_with_box_ious, pred_box_rows

    truth, pred = datasets(*random_case(seed, crowd_rate=0.3, decimals=1, size=30))
    ann = pred.annotations
    assert ann.box is not None
    raw = np.column_stack([ann.box[:, :2], ann.box[:, 2:] - ann.box[:, :2]])  # w, h as "read": consistent
    raw[::3] = np.nan  # rows edited since: not consistent with the box, recomputed
    raw[1::3, 2] += 0.5
    raw[2::6, 2] = np.nextafter(raw[2::6, 2], np.inf)  # as read, and still x + w == x2 for some of them
    pred = pred.replace(annotations=ann.with_columns(extra={**ann.extra, COCO_BBOX: raw}))
    groups = P.build_groups(truth, pred, use_cats=bool(seed % 2), max_det=100, iou_type="bbox")
    t_xywh = boxes(truth, groups.truth.row, "truth")
    p_xywh = boxes(pred, groups.pred.row, "pred")
    got = pred_box_rows(pred, groups.pred.row, "pred")
    assert got is not None
    np.testing.assert_array_equal(got[0], box_areas(p_xywh))
    assert np.isin(p_xywh[:, 2], raw[:, 2]).any()  # some rows read as given
    in_place, copied = pairs_with_box_ious(groups, got[1], t_xywh), pairs_with_box_ious(groups, p_xywh, t_xywh)
    assert in_place is not None and copied is not None and len(copied[0]) > 0
    for a, b in zip(in_place, copied, strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    assert pred_box_rows(pred, groups.pred.row, "pred") is None
    np.testing.assert_array_equal(boxes(pred, groups.pred.row, "pred"), p_xywh)


@pytest.mark.parametrize("shape", [0, 5, (3, 1 << 17), (1 << 18, 4), 3_000_001])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float64, np.bool_])
def test_native_empty_is_numpy_empty_in_huge_pages(shape: Any, dtype: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow._native import HUGE_MIN, empty

    a = empty(shape, dtype)
    ref = np.empty(shape, dtype)
    assert a.shape == ref.shape and a.dtype == ref.dtype and a.flags.writeable and a.flags.c_contiguous
    a[...] = 1  # every byte writable, as np.empty's
    assert int(a.sum()) == a.size
    if _native.load("cocoeval") is not None and a.nbytes >= HUGE_MIN:
        assert a.ctypes.data % (2 << 20) == 0  # at a huge page boundary: every whole 2 MiB of it can be one page
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    b = empty(shape, dtype)
    assert b.shape == ref.shape and b.dtype == ref.dtype and b.flags.owndata  # numpy's own


def test_native_empty_rejects_a_negative_size() -> None:
    kernel = _native.load("cocoeval")
    if kernel is None:
        pytest.skip("cocoeval kernel not built")
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        kernel.empty(-1)
