"""Box conversions and geometry, RLE masks: checked against pycocotools and against each other."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pycocotools import mask as coco_mask

from maslow.core import boxes as B
from maslow.core import masks as M

coords = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
sizes = st.floats(0, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def xyxy_boxes(draw: st.DrawFn, max_n: int = 20) -> np.ndarray:
    n = draw(st.integers(0, max_n))
    xy = np.asarray(draw(st.lists(st.tuples(coords, coords), min_size=n, max_size=n)), float).reshape(n, 2)
    wh = np.asarray(draw(st.lists(st.tuples(sizes, sizes), min_size=n, max_size=n)), float).reshape(n, 2)
    return np.concatenate([xy, xy + wh], 1)


# -- boxes ------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(xyxy_boxes())
def test_conversions_invert_each_other(b: np.ndarray) -> None:
    np.testing.assert_allclose(B.xywh_to_xyxy(B.xyxy_to_xywh(b)), b, atol=1e-8)
    np.testing.assert_allclose(B.cxcywh_to_xyxy(B.xyxy_to_cxcywh(b)), b, atol=1e-8)
    xywh = B.xyxy_to_xywh(b)
    np.testing.assert_allclose(B.xyxy_to_xywh(B.xywh_to_xyxy(xywh)), xywh, atol=1e-8)
    np.testing.assert_allclose(B.area(b), xywh[:, 2] * xywh[:, 3], rtol=1e-12, atol=1e-6)


def test_conversions_by_hand() -> None:
    xyxy = np.array([[10.0, 20.0, 40.0, 60.0]])
    np.testing.assert_array_equal(B.xyxy_to_xywh(xyxy), [[10, 20, 30, 40]])
    np.testing.assert_array_equal(B.xyxy_to_cxcywh(xyxy), [[25, 40, 30, 40]])
    np.testing.assert_array_equal(B.xywh_to_xyxy([10, 20, 30, 40]), xyxy)  # a single box as a flat list
    np.testing.assert_array_equal(B.cxcywh_to_xyxy([[25, 40, 30, 40]]), xyxy)
    assert B.xywh_to_xyxy(np.zeros((0, 4))).shape == (0, 4)
    assert B.xywh_to_xyxy([[1, 2, 3, 4]]).dtype == np.float64


def test_conversions_do_not_mutate_their_input() -> None:
    b = np.array([[1.0, 2.0, 3.0, 4.0]])
    before = b.copy()
    for f in (B.xywh_to_xyxy, B.xyxy_to_xywh, B.cxcywh_to_xyxy, B.xyxy_to_cxcywh, B.area):
        f(b)
    B.clip(b, 2, 2)
    np.testing.assert_array_equal(b, before)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_iou_equals_pycocotools_on_random_boxes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 12)), int(rng.integers(1, 12))

    def rand(k: int) -> np.ndarray:
        xy = rng.uniform(0, 100, (k, 2))
        wh = rng.uniform(0, 60, (k, 2))
        wh[rng.random(k) < 0.1] = 0.0  # some degenerate boxes
        return np.concatenate([xy, xy + wh], 1)

    a, b = rand(n), rand(m)
    ours = B.iou(a, b)
    ref = np.asarray(coco_mask.iou(B.xyxy_to_xywh(a), B.xyxy_to_xywh(b), [0] * m), float).reshape(n, m)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert ours.shape == (n, m) and np.all((ours >= 0) & (ours <= 1))


def test_iou_by_hand() -> None:
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 5.0, 15.0, 15.0], [0, 0, 10, 10], [20, 20, 30, 30], [10, 0, 20, 10], [3, 3, 3, 3]])
    np.testing.assert_allclose(B.iou(a, b), [[25 / 175, 1.0, 0.0, 0.0, 0.0]])
    assert B.iou(np.zeros((0, 4)), b).shape == (0, 5)
    assert B.iou([[2, 2, 2, 2]], [[2, 2, 2, 2]])[0, 0] == 0.0  # empty union: 0, not NaN


def test_area_and_nan_rows() -> None:
    b = np.array([[0, 0, 4, 5], [1, 1, 1, 9], [np.nan] * 4], float)
    a = B.area(b)
    assert a[:2].tolist() == [20.0, 0.0] and np.isnan(a[2])


def test_clip_to_image_sizes() -> None:
    b = np.array([[-5, -5, 50, 50], [10, 10, 20, 20], [200, 5, 300, 10], [np.nan] * 4], float)
    out = B.clip(b, np.array([40, 40, 100, 100]), np.array([30, 30, 100, 100]))
    np.testing.assert_array_equal(out[:3], [[0, 0, 40, 30], [10, 10, 20, 20], [100, 5, 100, 10]])
    assert np.isnan(out[3]).all()
    np.testing.assert_array_equal(B.clip(b[:2], 15, 15), [[0, 0, 15, 15], [10, 10, 15, 15]])  # scalar sizes


def test_size_bucket_edges_as_documented() -> None:
    # small < 32^2 <= medium < 96^2 <= large
    a = np.array([0.0, 32**2 - 1e-9, 32**2, 96**2 - 1e-9, 96**2, 1e9, np.nan])
    assert B.size_bucket(a).tolist() == ["small", "small", "medium", "medium", "large", "large", ""]
    assert B.size_bucket(B.area([[0, 0, 32, 32], [0, 0, 96, 96], [0, 0, 31, 33]])).tolist() == [
        "medium", "large", "small"]


# -- masks ------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_encode_decode_round_trip(binary: np.ndarray) -> None:
    rle = M.encode(binary)
    assert rle["size"] == list(binary.shape) and isinstance(rle["counts"], bytes)
    out = M.decode(rle)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, binary)
    # the uncompressed form decodes to the same mask and compresses back to the same bytes
    un = M.uncompressed(rle)
    assert sum(un["counts"]) == binary.size
    np.testing.assert_array_equal(M.decode(un), binary)
    assert M.compress(un)["counts"] == rle["counts"]
    # area and box agree with pycocotools
    assert M.area([rle])[0] == float(coco_mask.area(rle)) == binary.sum()
    bb = coco_mask.toBbox(rle)
    np.testing.assert_array_equal(M.to_box([rle])[0], [bb[0], bb[1], bb[0] + bb[2], bb[1] + bb[3]])


@pytest.mark.parametrize("first", [0, 1], ids=["starts-with-0", "starts-with-1"])
def test_uncompressed_round_trip_for_either_first_pixel(first: int) -> None:
    binary = np.zeros((4, 5), bool)
    binary[1:3, 1:4] = True
    binary[0, 0] = bool(first)
    un = M.uncompressed(M.encode(binary))
    # COCO counts start with a run of zeros, of length 0 when the first pixel (column-major) is set
    assert (un["counts"][0] == 0) == bool(first)
    assert un["size"] == [4, 5] and all(isinstance(c, int) for c in un["counts"])
    np.testing.assert_array_equal(M.decode(un), binary)
    full = np.ones((3, 2), bool)
    assert M.uncompressed(M.encode(full))["counts"] == [0, 6]
    assert M.uncompressed(M.encode(~full))["counts"] == [6]


def test_compress_accepts_bytes_str_list_and_array_counts() -> None:
    binary = np.zeros((6, 7), bool)
    binary[2:5, 1:6] = True
    rle = M.encode(binary)
    as_str = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    as_list = M.uncompressed(rle)
    as_array = {"size": as_list["size"], "counts": np.asarray(as_list["counts"])}
    for form in (rle, as_str, as_list, as_array, json.loads(json.dumps(M.to_json(rle)))):
        c = M.compress(form)
        assert isinstance(c["counts"], bytes) and c["counts"] == rle["counts"] and c["size"] == [6, 7]
        np.testing.assert_array_equal(M.decode(form), binary)
    assert M.to_json(rle) == {"size": [6, 7], "counts": rle["counts"].decode("ascii")}
    assert M.to_json(as_list)["counts"] == as_list["counts"]


def test_compress_does_not_mutate_the_input() -> None:
    rle = {"size": [2, 2], "counts": [1, 2, 1]}
    M.compress(rle)
    M.decode(rle)
    assert rle == {"size": [2, 2], "counts": [1, 2, 1]}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_from_polygons_equals_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(5, 60)), int(rng.integers(5, 60))
    polys = [rng.uniform(-5, max(h, w) + 5, 2 * int(rng.integers(3, 9))) for _ in range(int(rng.integers(1, 4)))]
    ours = M.from_polygons(polys, h, w)
    ref = coco_mask.merge(coco_mask.frPyObjects([p.tolist() for p in polys], h, w))
    assert ours["size"] == [h, w] and ours["counts"] == ref["counts"]  # the same RLE, byte for byte
    assert M.area([ours])[0] == float(coco_mask.area(ref))


def test_from_polygons_ignores_degenerate_rings_and_handles_none() -> None:
    square = [2.0, 2.0, 8.0, 2.0, 8.0, 8.0, 2.0, 8.0]
    with_line = M.from_polygons([square, [1.0, 1.0, 3.0, 3.0]], 10, 10)
    alone = M.from_polygons([square], 10, 10)
    np.testing.assert_array_equal(M.decode(with_line), M.decode(alone))
    empty = M.from_polygons([], 10, 12)
    assert empty["size"] == [10, 12] and not M.decode(empty).any()


@pytest.mark.parametrize(
    "poly",
    [
        pytest.param([10, 10, 50, 10, 50, 40, 10, 40], id="rectangle"),
        pytest.param([30, 5, 5, 55, 55, 55], id="triangle"),
        pytest.param((30 + 20 * np.stack([np.cos(np.linspace(0, 2 * np.pi, 40, endpoint=False)),
                                          np.sin(np.linspace(0, 2 * np.pi, 40, endpoint=False))], 1)).ravel().tolist(),
                     id="circle"),
    ],
)
def test_polygon_area_is_close_to_the_rasterised_area(poly: list[float]) -> None:
    exact = M.polygon_area(poly)
    raster = M.area([M.from_polygons([poly], 64, 64)])[0]
    perimeter = float(np.sum(np.hypot(*np.diff(np.reshape(poly + poly[:2], (-1, 2)), axis=0).T)))
    assert abs(raster - exact) <= 0.5 * perimeter + 1, (exact, raster)


def test_polygon_area_and_box_by_hand() -> None:
    assert M.polygon_area([0, 0, 4, 0, 4, 3, 0, 3]) == 12.0
    assert M.polygon_area([0, 0, 0, 3, 4, 3, 4, 0]) == 12.0  # orientation does not matter
    np.testing.assert_array_equal(M.polygon_box([[1, 5, 3, 2, 2, 9], np.array([0.5, 6, 1, 6, 1, 7])]),
                                  [0.5, 2, 3, 9])
    assert np.isnan(M.polygon_box([])).all()


def test_area_and_to_box_of_many_masks_and_of_none() -> None:
    a = np.zeros((10, 10), bool)
    a[1:4, 2:7] = True
    b = np.zeros((10, 10), bool)
    b[9, 9] = True
    rles = [M.encode(a), M.uncompressed(M.encode(b)), M.encode(np.zeros((10, 10), bool))]
    np.testing.assert_array_equal(M.area(rles), [15, 1, 0])
    np.testing.assert_array_equal(M.to_box(rles), [[2, 1, 7, 4], [9, 9, 10, 10], [0, 0, 0, 0]])
    assert M.area([]).shape == (0,) and M.to_box([]).shape == (0, 4)


def test_area_of_more_than_255_masks() -> None:
    """pycocotools' area() overflows a uint8 count past 255 masks under numpy 2; maslow's must not."""
    rles = [M.encode(np.ones((4, 4 + i % 3), bool)) for i in range(600)]
    np.testing.assert_array_equal(M.area(rles), [16.0 + 4 * (i % 3) for i in range(600)])


@pytest.mark.parametrize("counts", [[1, 0], [9, 0], [3, 0, 6], [0, 0, 9], [4, 0, 5, 0]])
def test_to_box_of_an_empty_mask_with_zero_length_runs_is_zero(counts: list[int]) -> None:
    """pycocotools' toBbox gives [w, h, 2^32 + 1 - w, 2^32 + 1 - h] (xywh) for these; the canonical empty mask gets
    zeros, so these must too."""
    h, w = (1, 1) if counts == [1, 0] else (3, 3)
    rle = {"size": [h, w], "counts": counts}
    assert not M.decode(rle).any()
    np.testing.assert_array_equal(M.to_box([rle, M.compress(rle), M.encode(np.ones((h, w), bool))]),
                                  [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, w, h]])


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_to_box_and_area_equal_numpy_on_counts_with_zero_runs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    cuts = np.sort(rng.integers(0, h * w + 1, int(rng.integers(0, 5))))
    counts = np.diff(np.concatenate([[0], cuts, [h * w]])).tolist()
    for _ in range(int(rng.integers(0, 3))):
        counts.insert(int(rng.integers(0, len(counts) + 1)), 0)
    rle = {"size": [h, w], "counts": counts}
    m = M.decode(rle)
    ys, xs = np.nonzero(m)
    box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0]
    np.testing.assert_array_equal(M.to_box([rle]), [box])
    assert M.area([rle])[0] == m.sum()
