"""CVAT for video: which track rows must be written as keyframes for CVAT's import to give them back.

CVAT's import keeps only the keyframes of a track (``load_anno`` in ``cvat/apps/dataset_manager/formats/cvat.py``)
and rebuilds every other frame from the keyframes around it (``TrackManager.get_interpolated_shapes`` in
``cvat/apps/dataset_manager/annotation.py``). What a frame between keyframes ``a`` and ``b`` gets there, with
``t = (frame - a.frame) / (b.frame - a.frame)``:

- box, ellipse, cuboid and skeleton points: each coordinate ``a + (b - a) * t`` (an ellipse's ``rx``/``ry`` too:
  CVAT interpolates the corner ``cx + rx, cy - ry``); the rotation ``a + d * t`` (mod 360), with ``d`` the
  signed difference ``b - a`` folded into [-180, 180) (CVAT's ``find_angle_diff``, which turns -180 into 1);
- ``<points>``: the same when both keyframes hold one point, else ``a``'s points unchanged;
- polygon and polyline: ``a``'s and ``b``'s vertices matched by their relative position along the outline (a
  polygon closed by repeating its first vertex), each matched pair interpolated as above, then runs of points
  closer than half the mean edge length of the matched stretch merged (CVAT's ``polyshape_interpolation``);
- ``occluded``, ``z_order``, the attributes and a skeleton point's ``outside``/``occluded``: ``a``'s.

A row read as an interpolated frame (``extra["cvat_keyframe"]`` False) is written ``keyframe="0"`` only while it is
what CVAT rebuilds there from the keyframes written around it; otherwise (its box, points, flags or attributes were
edited since, or a keyframe next to it was) it is written as a keyframe. Coordinates are compared to within
``TOLERANCE`` px (degrees for a rotation): CVAT writes two decimals, and rounding the keyframes and the frame
between them moves the rebuilt value by up to 0.01.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: How far (px, or degrees) a coordinate may be from CVAT's interpolation and still be left to CVAT.
TOLERANCE = 0.0101
_LINEAR = ("box", "ellipse", "cuboid", "skeleton")


@dataclass(frozen=True)
class TrackRow:
    """One track row as it is written: its shape, its coordinates (flat), its rotation, and what CVAT copies
    from the keyframe before an interpolated frame (occluded, z_order, attributes, skeleton point flags)."""

    kind: str
    xy: np.ndarray
    rotation: float
    copied: tuple[object, ...]


def keyframes(frames: Sequence[int], rows: Sequence[TrackRow], keys: Sequence[bool]) -> list[bool]:
    """``keys`` with every row promoted that CVAT would not rebuild from the keyframes around it.

    ``frames``: the ascending frame numbers of one run of a track; ``keys``: the rows that are keyframes anyway
    (the first and the last must be). A promoted row changes what the rows beside it are compared with, so those
    are checked again until nothing changes.
    """
    out = list(keys)
    todo = list(itertools.pairwise(k for k, v in enumerate(out) if v))
    while todo:
        a, b = todo.pop()
        span = frames[b] - frames[a]
        bad = [j for j in range(a + 1, b)
               if not rebuilt(rows[a], rows[b], rows[j], (frames[j] - frames[a]) / span)]
        for j in bad:
            out[j] = True
        if bad:
            todo.extend(itertools.pairwise([a, *bad, b]))
    return out


def rebuilt(a: TrackRow, b: TrackRow, row: TrackRow, t: float) -> bool:
    """Whether CVAT's interpolation between keyframes ``a`` and ``b`` at ``t`` gives ``row`` back."""
    if not (a.kind == b.kind == row.kind) or row.copied != a.copied:
        return False
    if a.kind in _LINEAR or (a.kind == "points" and a.xy.size == b.xy.size == 2):
        want: np.ndarray | None = a.xy + (b.xy - a.xy) * t if a.xy.shape == b.xy.shape else None
    elif a.kind == "points":
        want = a.xy
    elif a.kind in ("polygon", "polyline"):
        want = polyshape(a.xy, b.xy, t, closed=a.kind == "polygon")
    else:
        return False
    if want is None or want.shape != row.xy.shape or not bool(np.all(np.abs(want - row.xy) <= TOLERANCE)):
        return False
    turn = (a.rotation + _angle_diff(b.rotation, a.rotation) * t + 360) % 360
    return abs((row.rotation - turn + 180) % 360 - 180) <= TOLERANCE


def _angle_diff(right: float, left: float) -> float:
    d = ((right - left + 180) % 360) - 180
    return d if abs(d) < 180 else 1.0  # CVAT's find_angle_diff: only -180 gets here, and it gives 1


def _arc(p: np.ndarray) -> np.ndarray | None:
    """Each vertex's distance along the line, as a fraction of its length; None for a line of length 0."""
    d = np.sqrt(np.diff(p[:, 0]) ** 2 + np.diff(p[:, 1]) ** 2)
    acc = np.concatenate([[0.0], np.cumsum(d)])
    return None if not acc[-1] > 0 else acc / acc[-1]


def _length(p: np.ndarray) -> float:
    return float(np.cumsum(np.sqrt(np.diff(p[:, 0]) ** 2 + np.diff(p[:, 1]) ** 2))[-1]) if len(p) > 1 else 0.0


def polyshape(a: np.ndarray, b: np.ndarray, t: float, *, closed: bool) -> np.ndarray | None:
    """CVAT's polygon/polyline interpolation at ``t`` (flat coordinates); None where it is undefined."""
    left, right = a.reshape(-1, 2), b.reshape(-1, 2)
    if not len(left) or not len(right):
        return None
    if closed:
        left, right = np.vstack([left, left[:1]]), np.vstack([right, right[:1]])
    lo, ro = _arc(left), _arc(right)
    if lo is None or ro is None:
        return None
    match = [[int(np.argmin(np.abs(ro - v)))] for v in lo]  # each left vertex: its nearest right vertex
    used = {m[0] for m in match}
    for j in range(len(right)):  # a right vertex no left one took: to its nearest left vertex
        if j not in used:
            match[int(np.argmin(np.abs(lo - ro[j])))].append(j)
    match = [sorted(m) for m in match]
    pts = np.asarray([left[i] + (right[j] - left[i]) * t for i, m in enumerate(match) for j in m])
    first = np.cumsum([0] + [len(m) for m in match])  # left vertex i's points: pts[first[i]:first[i + 1]]
    out: list[np.ndarray] = []

    def merge(base: float, n: int, s: int, e: int) -> None:
        threshold = base / (2 * n)
        kept, last = [pts[s]], s
        for k in range(s + 1, e):
            if math.sqrt(float((pts[last][0] - pts[k][0]) ** 2 + (pts[last][1] - pts[k][1]) ** 2)) >= threshold:
                kept.append(pts[k])
                last = k
        kept.append(pts[e])
        if len(kept) == 2 and math.sqrt(float((pts[s][0] - pts[e][0]) ** 2 + (pts[s][1] - pts[e][1]) ** 2)) \
                < threshold:
            kept = [(kept[0] + kept[1]) / 2]
        out.extend(kept)

    def left_run(s: int, e: int) -> None:  # left vertices s..e that share one right vertex
        if first[s] == first[e]:
            out.append(pts[first[s]])
        else:
            merge(_length(left[s:e + 1]), e - s + 1, int(first[s]), int(first[e]))

    opened: int | None = None
    for i, m in enumerate(match):
        if len(m) == 1:
            if opened is None:
                opened = i
            elif m[0] != match[opened][0]:
                left_run(opened, i - 1)
                opened = i
        else:
            if opened is not None:
                left_run(opened, i - 1)
                opened = None
            merge(_length(right[m[0]:m[-1] + 1]), m[-1] - m[0] + 1, int(first[i]), int(first[i + 1] - 1))
    if opened is not None:
        left_run(opened, len(left) - 1)
    flat = np.asarray(out).reshape(-1)
    return flat[:-2] if closed else flat
