"""Boundary masks of Boundary IoU (``maslow.metrics._boundary``) against straightforward references: the mask minus
its erosion by d passes of a 3 x 3 minimum filter with zero padding (numpy loop), the paper's dilation
``max(1, round(ratio * diagonal))`` with Python's rounding, and (where OpenCV is installed) the boundary-iou-api's
``mask_to_boundary`` itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from maslow.errors import InvalidDatasetError
from maslow.metrics._boundary import (
    batch_boundaries,
    boundary_counts,
    boundary_mask,
    dilations,
    mask_counts,
    string_counts,
)


def reference_boundary(mask: np.ndarray, ratio: float) -> np.ndarray:
    """The paper's definition, by hand: d = max(1, round(ratio * diagonal)), then ``reference_ring``."""
    h, w = mask.shape
    return reference_ring(mask, max(1, round(ratio * math.sqrt(h * h + w * w))))


def reference_ring(mask: np.ndarray, d: int) -> np.ndarray:
    """The mask eroded d times by a 3 x 3 square (a pixel stays when its 3 x 3 neighbourhood, zeros outside the
    image, is all mask); the mask minus that."""
    h, w = mask.shape
    m = mask.astype(bool)
    for _ in range(d):
        p = np.pad(m, 1)
        m = np.ones_like(m)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                m &= p[dy:dy + h, dx:dx + w]
    return mask.astype(bool) & ~m


def random_mask(rng: np.random.Generator, kind: int) -> np.ndarray:
    h, w = int(rng.integers(1, 90)), int(rng.integers(1, 90))
    if kind == 0:  # salt and pepper: many runs and holes
        return rng.random((h, w)) < rng.uniform(0.4, 0.999)
    if kind == 1:  # a rectangle, often touching the border
        m = np.zeros((h, w), bool)
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        m[y:y + int(rng.integers(1, h + 1)), x:x + int(rng.integers(1, w + 1))] = True
        return m
    if kind == 2:  # blobs: smooth edges, several parts
        yy, xx = np.mgrid[:h, :w]
        m = np.zeros((h, w), bool)
        for _ in range(int(rng.integers(1, 4))):
            cy, cx, r = rng.uniform(-5, h + 5), rng.uniform(-5, w + 5), rng.uniform(1, 40)
            m |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        return m
    return np.ones((h, w), bool) if kind == 3 else np.zeros((h, w), bool)


@pytest.mark.parametrize("seed", range(6))
def test_boundary_equals_the_reference_erosion(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(150):
        m = random_mask(rng, i % 5)
        ratio = float(rng.choice([0.0, 0.005, 0.02, 0.05, 0.1, 0.3, 2.0]))
        got = boundary_mask(m, ratio)
        assert got.dtype == bool and got.shape == m.shape
        np.testing.assert_array_equal(got, reference_boundary(m, ratio), err_msg=f"mask {i}, ratio {ratio}")


def test_thick_mask_keeps_an_inner_core() -> None:
    # a 30 x 30 square in a 100 x 100 image: d = round(0.02 * 141.4) = 3, so the boundary is a ring 3 pixels wide
    m = np.zeros((100, 100), bool)
    m[10:40, 20:50] = True
    b = boundary_mask(m)
    core = np.zeros_like(m)
    core[13:37, 23:47] = True
    np.testing.assert_array_equal(b, m & ~core)
    assert int(b.sum()) == 30 * 30 - 24 * 24


def test_pixels_outside_the_image_count_as_background() -> None:
    m = np.ones((50, 60), bool)  # the whole image: its boundary is the frame d pixels wide, not nothing
    b = boundary_mask(m, 0.05)  # d = round(0.05 * 78.1) = 4
    inner = np.zeros_like(m)
    inner[4:46, 4:56] = True
    np.testing.assert_array_equal(b, ~inner)


@pytest.mark.parametrize(("h", "w", "ratio", "d"), [
    (480, 640, 0.02, 16), (105, 140, 0.02, 4), (225, 300, 0.02, 8),  # ties 3.5 and 7.5: half to even, as round()
    (75, 100, 0.02, 2), (375, 500, 0.02, 12), (15, 20, 0.02, 1), (10, 10, 0.0, 1), (1, 1, 100.0, 141),
])
def test_dilation_rounds_as_the_api(h: int, w: int, ratio: float, d: int) -> None:
    assert int(dilations(np.array([h]), np.array([w]), ratio)[0]) == d
    assert d == max(1, int(round(ratio * np.sqrt(h ** 2 + w ** 2))))  # noqa: RUF046 (round of a numpy float)


def test_counts_are_pycocotools_encoding() -> None:
    rng = np.random.default_rng(3)
    for i in range(100):
        m = random_mask(rng, i % 5)
        h, w = m.shape
        counts = mask_counts(m)
        assert counts.dtype == np.uint32 and int(counts.sum()) == h * w
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert mask_utils.frPyObjects({"size": [h, w], "counts": counts.tolist()}, h, w)["counts"] == rle["counts"]
        d = int(rng.integers(1, 6))
        b = boundary_counts(counts, h, w, d)  # the same encoding as pycocotools' of the reference boundary
        ref = mask_utils.encode(np.asfortranarray(reference_ring(m, d).astype(np.uint8)))
        assert mask_utils.frPyObjects({"size": [h, w], "counts": b.tolist()}, h, w)["counts"] == ref["counts"]


def test_counts_strings_parse_as_pycocotools() -> None:
    rng = np.random.default_rng(5)
    for i in range(200):
        m = random_mask(rng, i % 5)
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        np.testing.assert_array_equal(string_counts(rle["counts"]), mask_counts(m))
    big = mask_utils.frPyObjects({"size": [3000, 4000], "counts": [5, 11_000_000, 995]}, 3000, 4000)
    assert string_counts(big["counts"]).tolist() == [5, 11_000_000, 995]


@pytest.mark.parametrize("seed", range(4))
def test_batched_boundaries_equal_one_by_one(seed: int) -> None:
    """``batch_boundaries`` (boxes of many objects eroded side by side) gives each object's ``boundary_counts``,
    whatever the order the objects' runs are stored in and whatever their dilations."""
    rng = np.random.default_rng(seed)
    masks = [random_mask(rng, i % 5) for i in range(120)]
    counts = [mask_counts(m) for m in masks]
    d = rng.integers(1, 7, len(masks))
    stored = rng.permutation(len(masks))  # runs stored in another order than the objects are listed
    lengths = np.asarray([len(counts[i]) for i in stored])
    start = np.empty(len(masks), np.int64)
    start[stored] = np.cumsum(lengths) - lengths
    end = start + np.asarray([len(c) for c in counts])
    h, w = np.asarray([m.shape[0] for m in masks]), np.asarray([m.shape[1] for m in masks])
    runs, b_start, b_end = batch_boundaries(np.concatenate([counts[i] for i in stored]), start, end, h, w, d,
                                            lambda i: f"object {i}")
    for i in range(len(masks)):
        np.testing.assert_array_equal(runs[b_start[i]:b_end[i]], boundary_counts(counts[i], int(h[i]), int(w[i]),
                                                                                 int(d[i])), err_msg=f"object {i}")


def test_batched_runs_must_cover_the_mask() -> None:
    counts = [mask_counts(np.ones((4, 5), bool)), np.asarray([5, 3], np.uint32)]  # the second covers 8 of 20 pixels
    with pytest.raises(InvalidDatasetError, match=r"object 1: the mask's run lengths must cover its 4 x 5 pixels "
                                                  r"for a boundary, got 8 pixels"):
        batch_boundaries(np.concatenate(counts), np.asarray([0, 2]), np.asarray([2, 4]), np.asarray([4, 4]),
                         np.asarray([5, 5]), np.asarray([1, 1]), lambda i: f"object {i}")


def test_opencv_mask_to_boundary() -> None:
    """The boundary-iou-api's ``mask_to_boundary`` (boundary_utils.py), where OpenCV is installed."""
    cv2 = pytest.importorskip("cv2")

    def mask_to_boundary(mask: np.ndarray, dilation_ratio: float) -> np.ndarray:
        h, w = mask.shape
        dilation = max(1, int(round(dilation_ratio * np.sqrt(h ** 2 + w ** 2))))  # noqa: RUF046 (a numpy float)
        new_mask = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        eroded = cv2.erode(new_mask, np.ones((3, 3), dtype=np.uint8), iterations=dilation)[1:h + 1, 1:w + 1]
        return mask - eroded  # type: ignore[no-any-return]

    rng = np.random.default_rng(11)
    for i in range(600):
        m = random_mask(rng, i % 5)
        ratio = float(rng.choice([0.0, 0.02, 0.05, 0.1, 0.5]))
        ref = mask_to_boundary(m.astype(np.uint8), ratio).astype(bool)
        np.testing.assert_array_equal(boundary_mask(m, ratio), ref, err_msg=f"mask {i}, ratio {ratio}")


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf"), "0.02", True])
def test_bad_ratio_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="boundary_dilation must be a finite number >= 0"):
        boundary_mask(np.ones((4, 4), bool), bad)  # type: ignore[arg-type]
