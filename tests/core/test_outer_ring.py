"""``masks.outer_ring`` (a mask's outer boundary as a polygon, as YOLO segment labels need) against brute force:
scipy's 4-connected parts with their holes filled (background 8-connected, the dual of 4-connected parts), and
matplotlib's point-in-polygon test at every pixel centre."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from scipy import ndimage

from maslow.core import masks as M


def _inside(ring: np.ndarray, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    centres = np.column_stack([xx.ravel() + 0.5, yy.ravel() + 0.5])
    pts = ring.reshape(-1, 2)
    # closed=True takes the last vertex as the closing one (its coordinates unused): repeat the first
    return MplPath(np.vstack([pts, pts[:1]]), closed=True).contains_points(centres).reshape(h, w)


def _filled_parts(m: np.ndarray) -> list[np.ndarray]:
    parts, n = ndimage.label(m)  # 4-connected (the default cross)
    return [ndimage.binary_fill_holes(parts == k, structure=np.ones((3, 3), bool)) for k in range(1, n + 1)]


@pytest.mark.parametrize("seed", range(60))
def test_ring_encloses_the_largest_part_with_its_holes_filled(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 14, 2))
    m = rng.random((h, w)) < rng.uniform(0.2, 0.8)
    ring, wrong, area = M.outer_ring(M.encode(m))
    assert area == int(m.sum())
    if not m.any():
        assert ring is None and wrong == 0
        return
    assert ring is not None and ring.size % 2 == 0 and ring.size >= 8
    assert np.all(ring == np.round(ring))  # along pixel edges
    inside = _inside(ring, h, w)
    parts = _filled_parts(m)
    biggest = max(int(p.sum()) for p in parts)
    assert any(np.array_equal(inside, p) for p in parts if int(p.sum()) == biggest)
    assert wrong == int(np.count_nonzero(inside ^ m))
    assert abs(M.polygon_area(ring)) == biggest  # vertices only at corners: the shoelace area is the pixel count


def test_one_part_without_holes_is_exact() -> None:
    m = np.zeros((9, 11), bool)
    m[2:7, 3:9] = True
    m[4, 1:3] = True  # an arm
    m[6, 8] = False  # a notch
    ring, wrong, area = M.outer_ring(M.encode(m))
    assert ring is not None and wrong == 0 and area == m.sum()
    assert np.array_equal(_inside(ring, 9, 11), m)
    assert ring.size // 2 == 10  # one vertex per corner, none on straight runs
