"""The compiled mask kernel (``maslow._native.rle``) against pycocotools 2.0.11 directly: polygon runs (exact
counts), counts strings and lists, areas and pair IoUs bit for bit; and ``coco_map(iou_type="segm")`` with the
kernel against ``MASLOW_NATIVE=0`` (the pycocotools path) and pycocotools itself.

Skipped when the kernel was not built (no C compiler at install time)."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as M

from maslow.errors import InvalidDatasetError
from maslow.metrics import coco_map, coco_matches
from maslow.metrics._iou import rles, segm_masks
from maslow.metrics._segm import Runs, areas, iou_pairs
from tests.metrics.cocodata import check, datasets, decode, random_segm_case

rle: Any
try:  # imported directly: MASLOW_NATIVE=0 in the environment doesn't hide it from these tests
    rle = importlib.import_module("maslow._native.rle")
except ImportError:  # pragma: no cover - no C compiler at install
    rle = None
pytestmark = pytest.mark.skipif(rle is None, reason="rle kernel not built")

I64 = np.int64


# -- helpers ---------------------------------------------------------------------------------------------

def poly_runs(objs: list[list[np.ndarray]], hw: list[tuple[int, int]]) -> tuple[list[np.ndarray], np.ndarray]:
    """The kernel's runs of objects (lists of rings) on images of sizes hw, and their status."""
    rings = [np.asarray(r, np.float64) for o in objs for r in o]
    xy = np.concatenate(rings) if rings else np.zeros(0)
    ring_off = np.r_[0, np.cumsum([len(r) for r in rings])].astype(I64)
    row_off = np.r_[0, np.cumsum([len(o) for o in objs])].astype(I64)
    h, w = (np.asarray([s[i] for s in hw], I64) for i in (0, 1))
    runs, off, st = rle.poly_runs(xy, ring_off, row_off, np.arange(len(objs), dtype=I64), h, w)
    r, o = np.frombuffer(runs, np.uint32), np.frombuffer(off, I64)
    return [r[o[i]:o[i + 1]] for i in range(len(objs))], np.frombuffer(st, np.uint8)


def dict_runs(masks: list[Any]) -> tuple[list[np.ndarray], np.ndarray]:
    runs, off, _h, _w, st = rle.dict_runs(masks)
    r, o = np.frombuffer(runs, np.uint32), np.frombuffer(off, I64)
    return [r[o[i]:o[i + 1]] for i in range(len(masks))], np.frombuffer(st, np.uint8)


def pack(runs: list[np.ndarray], hw: list[tuple[int, int]]) -> tuple[np.ndarray, ...]:
    """(runs, start, end, h, w) of objects, as rle.iou and rle.areas read them."""
    lens = np.asarray([len(r) for r in runs], I64)
    end = np.cumsum(lens).astype(I64)
    flat = np.concatenate(runs).astype(np.uint32) if runs else np.zeros(0, np.uint32)
    return flat, end - lens, end, np.asarray([s[0] for s in hw], I64), np.asarray([s[1] for s in hw], I64)


def coco_rle(runs: np.ndarray, h: int, w: int) -> dict[str, Any]:
    """pycocotools' compressed RLE of runs (frUncompressedRLE): equal strings <=> equal runs."""
    return M.frPyObjects({"size": [h, w], "counts": runs.tolist()}, h, w)  # type: ignore[no-any-return]


def reference(rings: list[np.ndarray], h: int, w: int) -> dict[str, Any]:
    """``COCO.annToRLE`` of a polygon."""
    return M.merge(M.frPyObjects([np.asarray(r, np.float64).tolist() for r in rings], h, w))  # type: ignore[no-any-return]


def ring(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """One ring of a kind: convex, star (concave), tangle (self-intersecting), grid (coordinates on .5 and
    integers), outside (partly or wholly past the border), tiny (under a pixel), huge (far past the image),
    steep (long near-vertical edges), degenerate (repeated vertices, collinear, axis-parallel), fifths (vertices
    on the upsampled lattice)."""
    n = int(rng.integers(3, 14))
    cx, cy, r = rng.uniform(-0.2 * w, 1.2 * w), rng.uniform(-0.2 * h, 1.2 * h), rng.uniform(1, max(h, w))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = np.full(n, r)
    if kind == "star":
        rad = r * rng.uniform(0.2, 1.0, n)
    if kind == "tiny":
        rad = rng.uniform(0.01, 0.8, n)
    if kind == "huge":  # up to 20,000 pixels (the kernel's bound is 838,860)
        rad = min(r, 100) * rng.uniform(20, 200, n)
    pts = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)
    if kind == "tangle":
        pts = rng.uniform(-3, 1.1 * max(h, w), (n, 2))
    if kind == "outside":
        pts += rng.choice([-1, 1], 2) * rng.uniform(0.5, 2.0) * np.array([w, h])
    if kind == "grid":
        pts = np.round(pts * 2) / 2 + rng.choice([0.0, 0.5], pts.shape) * (rng.random() < 0.5)
    if kind == "fifths":  # vertices on the 5x upsampled lattice
        pts = np.round(pts * 5) / 5
    if kind == "steep":
        pts = np.stack([cx + rng.uniform(-2, 2, n), rng.uniform(-h, 2 * h, n)], 1)
    if kind == "degenerate":
        pts = np.repeat(np.round(pts), rng.integers(1, 3, n), axis=0)
        pts[: len(pts) // 2, 0] = pts[0, 0]  # a vertical run of vertices
    return pts.ravel()


KINDS = ("convex", "star", "tangle", "grid", "outside", "tiny", "huge", "steep", "degenerate", "fifths")
SIZES = ((1, 1), (1, 7), (9, 1), (7, 13), (31, 17), (64, 80), (240, 320), (480, 640))


def random_polygons(seed: int, n: int) -> tuple[list[list[np.ndarray]], list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    objs, hw = [], []
    for _ in range(n):
        h, w = SIZES[int(rng.integers(len(SIZES)))]
        kinds = rng.choice(KINDS, int(rng.integers(1, 5)))
        objs.append([ring(rng, str(k), h, w) for k in kinds])
        hw.append((h, w))
    return objs, hw


# -- polygons --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_polygon_runs_equal_pycocotools(seed: int) -> None:
    objs, hw = random_polygons(seed, 300)
    runs, status = poly_runs(objs, hw)
    assert (status == 0).all()
    for rings, r, (h, w) in zip(objs, runs, hw, strict=True):
        ref = reference(rings, h, w)
        assert coco_rle(r, h, w)["counts"] == ref["counts"]  # the same counts, run for run
        assert int(r[1::2].sum(dtype=np.uint32)) == int(M.area(ref))


def test_polygon_edges_on_pixel_boundaries() -> None:
    """Every vertex on a .5 / integer lattice of a small image: the cases where (x + .5) / 5 - .5 is whole."""
    rng = np.random.default_rng(7)
    objs, hw = [], []
    for _ in range(400):
        h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        objs.append([rng.integers(-4, 2 * max(h, w) + 4, 2 * int(rng.integers(3, 8))) / 2.0])
        hw.append((h, w))
    runs, status = poly_runs(objs, hw)
    assert (status == 0).all()
    for rings, r, (h, w) in zip(objs, runs, hw, strict=True):
        assert coco_rle(r, h, w)["counts"] == reference(rings, h, w)["counts"]
        np.testing.assert_array_equal(decode(coco_rle(r, h, w)), decode(reference(rings, h, w)))


#: steep edges (upsampled: from (x0, y0) by dx over dy rows) through lattice points where the line's estimate of
#: the step at which x enters a column is one off, either way, falling and rising (found by a search with
#: pycocotools' expressions); y0 puts that step on a row boundary, where one step off changes the mask
LATTICE_EDGES = ((920, 52, -65, 252), (2778, 54, -171, 248), (386, 53, 49, 70), (1095, 53, 203, 280),
                 (315, 53, -219, 330), (167, 53, -166, 180))


def test_steep_edges_through_lattice_points() -> None:
    objs = []
    for x0, y0, dx, dy in LATTICE_EDGES:
        tri = np.array([[x0, y0], [x0 + dx, y0 + dy], [max(x0, x0 + dx) + 30, y0 + dy // 2]], np.float64) / 5
        objs += [[tri.ravel()], [tri[::-1].ravel()]]  # upsampled: x0, y0, ... exactly (>= 0); both directions
    hw = [(100, 600)] * len(objs)
    runs, status = poly_runs(objs, hw)
    assert (status == 0).all()
    for rings, r, (h, w) in zip(objs, runs, hw, strict=True):
        assert coco_rle(r, h, w)["counts"] == reference(rings, h, w)["counts"]


def test_polygon_near_the_coordinate_limit() -> None:
    """Coordinates just inside the kernel's bound (|5x + .5| < 2^22) are rasterised, just past it left to
    pycocotools; both on a small image, so almost the whole outline lies outside."""
    lim = (2**22 - 1) / 5
    inside = [np.array([-lim + 1, 3.3, lim - 1, 7.1, 5.5, lim - 1])]
    past = [np.array([-lim - 1, 3.3, 20.0, 7.1, 5.5, 9.0])]
    runs, status = poly_runs([inside, past], [(17, 23), (17, 23)])
    assert status.tolist() == [0, 1]
    assert coco_rle(runs[0], 17, 23)["counts"] == reference(inside, 17, 23)["counts"]


def test_polygon_status() -> None:
    """2: a first ring of 4 values (pycocotools reads it as a box); 1: what pycocotools can't do reliably."""
    tri = np.array([1.0, 1.0, 6.0, 2.0, 3.0, 5.0])
    cases = {
        "no ring": ([], (5, 7), 0),
        "box first": ([np.array([1.0, 1, 4, 4]), tri], (9, 9), 2),
        "odd values": ([np.r_[tri, 2.0]], (9, 9), 1),
        "2-point ring later": ([tri, np.array([1.0, 1, 4, 4])], (9, 9), 1),
        "1 point": ([tri, np.array([1.0, 1])], (9, 9), 1),
        "nan": ([np.r_[tri[:5], np.nan]], (9, 9), 1),
        "inf": ([np.r_[tri[:5], np.inf]], (9, 9), 1),
        "huge": ([np.r_[tri[:5], 1e7]], (9, 9), 1),
        "h 0": ([tri], (0, 9), 1),
        "w 0": ([tri], (9, 0), 1),
        "h*w >= 2^29": ([tri], (2**15, 2**14), 1),
        "h*w < 2^29": ([tri], (2**15, 2**14 - 1), 0),
        "no ring, h*w >= 2^29": ([], (2**15, 2**14), 1),
    }
    runs, status = poly_runs([c[0] for c in cases.values()], [c[1] for c in cases.values()])
    assert dict(zip(cases, status.tolist(), strict=True)) == {k: c[2] for k, c in cases.items()}
    assert runs[0].tolist() == [35]  # an empty object: all background, as pycocotools' encode gives it
    assert all(len(r) == 0 for r, s in zip(runs, status, strict=True) if s)


# -- stored masks ----------------------------------------------------------------------------------------

def random_masks(seed: int, n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = SIZES[int(rng.integers(len(SIZES)))]
        m = np.zeros((h, w), np.uint8)
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        m[y0:y0 + int(rng.integers(1, h + 1)), x0:x0 + int(rng.integers(1, w + 1))] = 1
        m &= rng.random((h, w)) < rng.choice([0.3, 0.9, 1.0])
        out.append(M.encode(np.asfortranarray(m)))
    return out


def test_counts_strings_equal_pycocotools() -> None:
    masks = random_masks(1, 300)
    runs, status = dict_runs(masks)
    assert (status == 0).all()
    for m, r in zip(masks, runs, strict=True):
        assert coco_rle(r, *m["size"])["counts"] == m["counts"]
        assert int(r[1::2].sum(dtype=np.uint32)) == int(M.area(m))


def test_counts_lists_are_the_runs() -> None:
    rng = np.random.default_rng(2)
    lists = [rng.integers(0, 50, int(rng.integers(1, 30))).tolist() for _ in range(100)]
    masks = [{"size": [int(rng.integers(1, 40)), int(rng.integers(1, 40))], "counts": c} for c in lists]
    runs, status = dict_runs(masks)
    assert (status == 0).all()
    assert [r.tolist() for r in runs] == lists


def test_garbage_counts_strings_read_as_pycocotools() -> None:
    """Arbitrary strings of the counts alphabet: areas and IoUs as pycocotools computes them (where its walk
    ends: the kernel reports the pairs on which pycocotools loops forever)."""
    rng = np.random.default_rng(3)
    garbage = [{"size": [int(rng.integers(1, 30)), int(rng.integers(1, 30))],
                "counts": bytes(rng.integers(48, 112, int(rng.integers(0, 12))).astype(np.uint8))}
               for _ in range(400)]
    runs, status = dict_runs(garbage)
    ok = [i for i in range(len(garbage)) if status[i] == 0]
    assert len(ok) > 120
    for i in ok:
        assert int(runs[i][1::2].sum(dtype=np.uint32)) == int(M.area([garbage[i]])[0])
    packed = pack([runs[i] for i in ok], [(int(garbage[i]["size"][0]), int(garbage[i]["size"][1])) for i in ok])
    compared = 0
    for k in range(0, len(ok) - 1, 2):
        out = np.empty(1)
        crowd = np.array([k % 4 == 0], np.uint8)
        stuck = rle.iou(*packed, *packed, crowd.repeat(len(ok)), np.array([k], I64), np.array([k + 1], I64), out)
        if stuck < 0:
            ref = M.iou([garbage[ok[k]]], [garbage[ok[k + 1]]], [int(crowd[0])])
            assert out[0] == ref[0, 0] or (np.isnan(out[0]) and np.isnan(ref[0, 0]))
            compared += 1
    assert compared > 50


def test_counts_forms_and_status() -> None:
    """0: read; 1: left to pycocotools (its C is undefined there); 3: a form to normalise first."""
    ok = {"size": [4, 5], "counts": b"52=0"}
    cases: dict[str, tuple[Any, int]] = {
        "plain": (ok, 0),
        "nul at a run's end": ({"size": [4, 5], "counts": b"52\x00=0"}, 0),  # pycocotools reads a C string
        "nul inside a run": ({"size": [4, 5], "counts": b"5\x60\x00="}, 1),
        "ends inside a run": ({"size": [4, 5], "counts": b"5\x60"}, 1),
        "7-character run": ({"size": [4, 5], "counts": b"\x60\x60\x60\x60\x60\x60\x30"}, 1),
        "6-character run": ({"size": [4, 5], "counts": b"\x60\x60\x60\x60\x60\x30"}, 0),
        "empty string": ({"size": [4, 5], "counts": b""}, 0),
        "negative size": ({"size": [-4, 5], "counts": b"52"}, 1),
        "h 0 under a foreground run": ({"size": [0, 5], "counts": b"12"}, 1),
        "h 0, no foreground": ({"size": [0, 5], "counts": b"0"}, 0),
        "list": ({"size": [4, 5], "counts": [3, 2, 15]}, 0),
        "empty list": ({"size": [4, 5], "counts": []}, 1),
        "list delta past 2^29": ({"size": [2**15, 2**15], "counts": [2**29, 5]}, 1),
        "list with a negative": ({"size": [4, 5], "counts": [3, -2, 15]}, 3),
        "list of floats": ({"size": [4, 5], "counts": [3.0, 17.0]}, 3),
        "str counts": ({"size": [4, 5], "counts": "52=0"}, 3),
        "numpy size": ({"size": [np.int64(4), 5], "counts": b"52"}, 3),
        "tuple size": ({"size": (4, 5), "counts": b"52"}, 3),
        "no counts": ({"size": [4, 5]}, 3),
        "None": (None, 3),
        "not a dict": ([4, 5], 3),
    }
    runs, status = dict_runs([c[0] for c in cases.values()])
    assert dict(zip(cases, status.tolist(), strict=True)) == {k: c[1] for k, c in cases.items()}
    assert runs[1].tolist() == runs[0].tolist()[:2]
    six = sum(16 << 5 * k for k in range(5))  # five groups of 16 with the continuation bit, then 0
    assert runs[5].tolist() == [six]  # (pycocotools' rleToString writes such a run 1 byte past its buffer)
    assert all(len(r) == 0 for r, s in zip(runs, status, strict=True) if s)


# -- IoU -------------------------------------------------------------------------------------------------

def test_pair_ious_equal_pycocotools() -> None:
    """Polygons and stored masks on images of a few sizes (so some pairs mismatch), crowds, pairs whose boxes
    don't overlap, identical objects: every IoU bit-equal to mask.iou, -1 and 0 included."""
    objs, hw = random_polygons(11, 120)
    runs, status = poly_runs(objs, hw)
    assert (status == 0).all()
    stored = random_masks(12, 120)
    s_runs, _ = dict_runs(stored)
    pool_runs = runs + s_runs
    pool_hw = hw + [(int(m["size"][0]), int(m["size"][1])) for m in stored]
    pool_rle = [coco_rle(r, h, w) for r, (h, w) in zip(pool_runs, pool_hw, strict=True)]
    rng = np.random.default_rng(13)
    crowd = (rng.random(len(pool_rle)) < 0.3).astype(np.uint8)
    ref = M.iou(pool_rle, pool_rle, crowd.tolist())  # (m, n): [d, g]
    p, t = (g.ravel().astype(I64) for g in np.meshgrid(np.arange(len(pool_rle)), np.arange(len(pool_rle)),
                                                          indexing="ij"))
    out = np.empty(len(p))
    packed = pack(pool_runs, pool_hw)
    assert rle.iou(*packed, *packed, crowd, p, t, out) == -1
    np.testing.assert_array_equal(out, ref[p, t])
    assert (out == -1).any() and (out == 0).any() and ((out > 0) & (out < 1)).any() and (out == 1).any()
    a = np.empty(len(pool_runs))
    rle.areas(packed[0], packed[1], packed[2], a)
    np.testing.assert_array_equal(a, M.area(pool_rle).astype(np.float64))


def _runs(lists: list[list[int]], hw: list[tuple[int, int]], side: str) -> Runs:
    runs, start, end, h, w = pack([np.asarray(x, np.uint32) for x in lists], hw)
    return Runs(runs, start, end, h, w, {}, lambda p: {}, np.arange(len(lists)), side)


def test_pair_whose_walk_never_ends_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs summing to different totals under overlapping boxes: pycocotools' iou loops forever there."""
    monkeypatch.delenv("MASLOW_NATIVE", raising=False)  # iou_pairs asks for the kernel (Runs exist only with it)
    d, g = _runs([[0, 5, 10]], [(5, 5)], "pred"), _runs([[0, 5, 20]], [(5, 5)], "truth")
    out = np.empty(1)
    zero = np.zeros(1, I64)
    assert rle.iou(d.runs, d.start, d.end, d.h, d.w, g.runs, g.start, g.end, g.h, g.w, np.zeros(1, np.uint8),
                   zero, zero, out) == 0
    with pytest.raises(InvalidDatasetError, match=r"pred\.annotations row 0 and truth\.annotations row 0"):
        iou_pairs(d, g, np.zeros(1, bool), zero, zero)


def test_bad_input_raises() -> None:
    packed = pack([np.array([3, 2, 15], np.uint32), np.array([20], np.uint32)], [(4, 5), (4, 5)])
    crowd, one = np.zeros(2, np.uint8), np.zeros(1, I64)
    with pytest.raises(ValueError, match="out of range"):
        rle.iou(*packed, *packed, crowd, one, np.array([2], I64), np.empty(1))
    with pytest.raises(ValueError, match="out of range"):
        rle.iou(*packed, *packed, crowd, np.array([-1], I64), one, np.empty(1))
    with pytest.raises(ValueError, match="one value per object"):
        rle.iou(*packed, *packed, np.zeros(3, np.uint8), one, one, np.empty(1))
    with pytest.raises(ValueError, match="one value per object"):
        rle.iou(*packed, *packed, crowd, one, one, np.empty(2))
    bad_end = (packed[0], packed[1], packed[2] + 5, packed[3], packed[4])
    with pytest.raises(ValueError, match="len\\(runs\\)"):
        rle.iou(*bad_end, *packed, crowd, one, one, np.empty(1))
    with pytest.raises(ValueError, match="len\\(runs\\)"):
        rle.areas(packed[0], packed[2], packed[1], np.empty(2))
    with pytest.raises(ValueError, match="one value per object"):
        rle.areas(packed[0], packed[1], packed[2], np.empty(3))
    with pytest.raises(TypeError, match="uint32"):
        rle.areas(packed[0].astype(I64), packed[1], packed[2], np.empty(2))
    zero_h = pack([np.array([1, 2], np.uint32)], [(0, 5)])
    with pytest.raises(ValueError, match="h = 0"):
        rle.iou(*zero_h, *zero_h, np.zeros(1, np.uint8), one, one, np.empty(1))
    xy, off, rows, hw = np.arange(6.0), np.array([0, 6], I64), np.zeros(1, I64), np.array([5], I64)
    with pytest.raises(ValueError, match="out of range"):
        rle.poly_runs(xy, off, np.array([0, 1], I64), np.array([1], I64), hw, hw)
    with pytest.raises(ValueError, match="out of range"):
        rle.poly_runs(xy, np.array([0, 8], I64), np.array([0, 1], I64), rows, hw, hw)
    with pytest.raises(ValueError, match="out of range"):
        rle.poly_runs(xy, off, np.array([0, 2], I64), rows, hw, hw)
    with pytest.raises(ValueError, match=">= 0"):
        rle.poly_runs(xy, off, np.array([0, 1], I64), rows, -hw, hw)
    with pytest.raises(ValueError, match="one per row"):
        rle.poly_runs(xy, off, np.array([0, 1], I64), rows, np.array([5, 5], I64), hw)
    with pytest.raises(TypeError, match="sequence"):
        rle.dict_runs(5)


# -- through coco_map ------------------------------------------------------------------------------------

def _both(monkeypatch: pytest.MonkeyPatch, truth: Any, pred: Any, **opts: Any) -> None:
    """coco_map and coco_matches with the kernel and with MASLOW_NATIVE=0: identical arrays and tables."""
    monkeypatch.delenv("MASLOW_NATIVE", raising=False)
    assert isinstance(segm_masks(truth, np.arange(truth.n_annotations), "truth"), Runs)
    fast, fast_table = coco_map(truth, pred, iou_type="segm", **opts), coco_matches(truth, pred, iou_type="segm", **opts)
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    assert isinstance(segm_masks(truth, np.arange(truth.n_annotations), "truth"), list)
    ref, ref_table = coco_map(truth, pred, iou_type="segm", **opts), coco_matches(truth, pred, iou_type="segm", **opts)
    monkeypatch.delenv("MASLOW_NATIVE")
    for name in ("precision", "recall", "scores", "stats"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    for name in ("pred_match", "pred_iou", "pred_status", "truth_match", "truth_iou", "truth_status"):
        np.testing.assert_array_equal(getattr(fast_table, name), getattr(ref_table, name), err_msg=name)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("opts", [{}, {"use_cats": False}])
def test_coco_map_with_and_without_kernel(monkeypatch: pytest.MonkeyPatch, seed: int, opts: dict[str, Any]) -> None:
    truth, pred = datasets(*random_segm_case(seed))
    _both(monkeypatch, truth, pred, **opts)


def odd_case() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Rows the kernel leaves to pycocotools or normalises first, beside plain ones, on overlapping objects."""
    h, w = 40, 50
    images = [{"id": 1, "width": w, "height": h, "file_name": "a.png"}]
    tri = [5.0, 5.0, 30.0, 8.0, 12.0, 30.0]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [tri, [20.0, 20.0, 40.0, 25.0, 30.0]],
         "area": 300.0, "bbox": [5, 5, 35, 25], "iscrowd": 0},  # an odd ring
        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [tri, [20.0, 20.0, 40.0, 25.0]],
         "area": 280.0, "bbox": [5, 5, 35, 25], "iscrowd": 0},  # a 2-point second ring
        {"id": 3, "image_id": 1, "category_id": 1, "segmentation": [[6.0, 4.0, 8.5e5, 7.0, 14.0, 28.0]],
         "area": 250.0, "bbox": [5, 5, 45, 25], "iscrowd": 0},  # past the coordinate bound
        {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [[1.0, 1.0, 45.0, 2.0, 44.0, 38.0, 2.0, 37.0]],
         "area": 1500.0, "bbox": [1, 1, 44, 37], "iscrowd": 1},  # a crowd
        {"id": 5, "image_id": 1, "category_id": 1, "segmentation": [tri],
         "area": 200.0, "bbox": [5, 5, 25, 25], "iscrowd": 0},
    ]
    results = []
    for i, seg in enumerate([[tri], [[4.0, 6.0, 29.0, 9.0, 13.0, 31.0, 7.0]], [[20.0, 20.0, 40.0, 25.0, 30.0, 35.0]]]):
        m = M.merge(M.frPyObjects(seg, h, w))
        results.append({"image_id": 1, "category_id": 1, "score": 0.9 - 0.1 * i,
                        "segmentation": {"size": [h, w], "counts": m["counts"].decode()}})
    return {"images": images, "categories": [{"id": 1, "name": "a"}], "annotations": anns}, results


def test_rows_left_to_pycocotools(monkeypatch: pytest.MonkeyPatch) -> None:
    gt, results = odd_case()
    truth, pred = datasets(gt, results)
    monkeypatch.delenv("MASLOW_NATIVE", raising=False)
    t_masks = segm_masks(truth, np.arange(truth.n_annotations), "truth")
    assert isinstance(t_masks, Runs) and sorted(t_masks.fallback) == [0, 1, 2]
    _both(monkeypatch, truth, pred)
    check(gt, results, "segm")
    # str counts and counts lists in the mask column (normalised, then read by the kernel)
    assert pred.annotations.mask is not None
    masks = pred.annotations.mask.copy()
    masks[0] = {"size": masks[0]["size"], "counts": masks[0]["counts"].decode()}
    masks[1] = {"size": masks[1]["size"], "counts": dict_runs([masks[1]])[0][0].tolist()}
    pred2 = pred.replace(annotations=pred.annotations.with_columns(mask=masks))
    p_masks = segm_masks(pred2, np.arange(pred2.n_annotations), "pred")
    assert isinstance(p_masks, Runs) and not p_masks.fallback
    np.testing.assert_array_equal(areas(p_masks), M.area(rles(pred2, np.arange(3), "pred")).astype(np.float64))
    _both(monkeypatch, truth, pred2)


def test_first_ring_of_two_points_raises_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    gt, results = odd_case()
    gt["annotations"][4]["segmentation"] = [[1.0, 1.0, 4.0, 4.0], [5.0, 5.0, 30.0, 8.0, 12.0, 30.0]]
    truth, pred = datasets(gt, results)
    for env in ("1", "0"):
        monkeypatch.setenv("MASLOW_NATIVE", env)
        with pytest.raises(InvalidDatasetError, match="row 4: the first polygon must have 3 or more points"):
            coco_map(truth, pred, iou_type="segm")


def test_real_coco_polygons_equal_pycocotools(monkeypatch: pytest.MonkeyPatch) -> None:
    """COCO val2017 polygons (../shared/data/coco_instances_10): their runs equal pycocotools', and a segm
    evaluation of jittered copies (as RLE results, some with another class) equals pycocotools cell for cell."""
    import json

    from tests.conftest import shared_path

    gt = json.loads(shared_path("coco_instances_10", "annotations", "instances_val2017_subset.json").read_text())
    size = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    polys = [a for a in gt["annotations"] if isinstance(a["segmentation"], list)]
    objs = [[np.asarray(r, np.float64) for r in a["segmentation"]] for a in polys]
    hw = [size[a["image_id"]] for a in polys]
    runs, st = poly_runs(objs, hw)
    assert len(polys) > 50 and not st.any()
    for o, r, (h, w) in zip(objs, runs, hw, strict=True):
        assert coco_rle(r, h, w)["counts"] == reference(o, h, w)["counts"]
    rng = np.random.default_rng(0)
    cats = [c["id"] for c in gt["categories"]]
    results = []
    for a in polys:
        jittered = [np.asarray(r) + rng.normal(0, 2.0, len(r)) for r in a["segmentation"]]
        seg = reference(jittered, *size[a["image_id"]])  # results carry RLEs (loadRes reads no polygons)
        cat = a["category_id"] if rng.random() < 0.8 else int(rng.choice(cats))
        results.append({"image_id": a["image_id"], "category_id": cat, "score": round(float(rng.uniform(0.05, 1)), 3),
                        "segmentation": {"size": seg["size"], "counts": seg["counts"].decode("ascii")}})
    monkeypatch.delenv("MASLOW_NATIVE", raising=False)
    check(gt, results, iou_type="segm")
