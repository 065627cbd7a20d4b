"""Geometry checks: boxes, polygons, masks, object sizes per class and keypoints.

Glossary: a box is xyxy in absolute pixels (pixel i spans [i, i + 1)); *zero-area* means width or height is 0;
*degenerate* means a side under ``CheckConfig.min_side`` pixels (VOC's ``xmin == xmax`` becomes a 1-pixel box);
a *robust z* is ``(x - median) / (1.4826 * MAD)`` over one class; a polygon *part* is one flat ``x0, y0, ...``
array; self-intersection is a proper crossing of two non-adjacent edges of one part (touching and collinear
overlaps are not reported).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.quality.config import CheckConfig
from maslow.quality.issues import QualityIssues


def _fmt_box(b: FloatArray) -> list[str]:
    return [f"[{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]" for x1, y1, x2, y2 in b.tolist()]


def robust_z(x: FloatArray, *, min_scale: float = 0.0) -> FloatArray:
    """(n,) robust z-scores ``(x - median) / max(scale, min_scale)``; 0 where the scale is 0 or x is NaN.

    ``scale`` is 1.4826 MAD; when more than half the values are equal (MAD 0) it is 1.2533 times the mean absolute
    deviation from the median (Iglewicz and Hoaglin's fallback), so a value far from a crowd of duplicates still
    stands out.
    """
    x = np.asarray(x, np.float64)
    ok = ~np.isnan(x)
    out = np.zeros(len(x))
    if ok.sum() < 2:
        return out
    med = float(np.median(x[ok]))
    dev = np.abs(x[ok] - med)
    scale = float(np.median(dev)) * 1.4826
    if scale == 0:
        scale = float(dev.mean()) * 1.2533
    scale = max(scale, min_scale)
    if scale > 0:
        out[ok] = (x[ok] - med) / scale
    return out


def check_boxes(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """Zero-area, degenerate and out-of-bounds boxes (crowd regions included)."""
    a = ds.annotations
    assert a.box is not None
    has = a.has_box
    rows = np.flatnonzero(has)
    b = a.box[rows]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    out: list[QualityIssues] = []
    zero = (w <= 0) | (h <= 0)
    if zero.any():
        r = rows[zero]
        out.append(QualityIssues.block(
            "zero_area_box", "error", image=a.image[r], annotation=r, score=1.0,
            reason=[f"box {s} has zero area (width {ww:g}, height {hh:g})"
                    for s, ww, hh in zip(_fmt_box(b[zero]), w[zero], h[zero], strict=True)],
            suggestion="remove the annotation (or redraw the box in the annotation tool)"))
    degen = ~zero & (np.minimum(w, h) < config.min_side)
    if degen.any():
        r = rows[degen]
        side = np.minimum(w, h)[degen]
        out.append(QualityIssues.block(
            "degenerate_box", "error", image=a.image[r], annotation=r, score=1.0 - 0.05 * side / config.min_side,
            reason=[f"box {s} is {ww:g} x {hh:g} px: a side under {config.min_side:g} px is a click, not an object"
                    for s, ww, hh in zip(_fmt_box(b[degen]), w[degen], h[degen], strict=True)],
            suggestion="delete the annotation or redraw the box"))
    iw = ds.images.width[a.image[rows]].astype(np.float64)
    ih = ds.images.height[a.image[rows]].astype(np.float64)
    known = (iw > 0) & (ih > 0)
    tol = config.bounds_tolerance
    oob = known & ((b[:, 0] < -tol) | (b[:, 1] < -tol) | (b[:, 2] > iw + tol) | (b[:, 3] > ih + tol))
    if oob.any():
        r = rows[oob]
        bb = b[oob]
        cw = np.clip(np.minimum(bb[:, 2], iw[oob]) - np.maximum(bb[:, 0], 0), 0, None)
        ch = np.clip(np.minimum(bb[:, 3], ih[oob]) - np.maximum(bb[:, 1], 0), 0, None)
        area = np.maximum(w[oob] * h[oob], 1e-12)
        outside = np.clip(1 - cw * ch / area, 0, 1)
        reason = np.asarray([f"box {s} extends past the {int(ww)} x {int(hh)} image ({100 * f:.0f}% of it outside)"
                             for s, ww, hh, f in zip(_fmt_box(bb), iw[oob], ih[oob], outside, strict=True)], object)
        # the fix review applies: the box clipped to the image, where that leaves a box of at least min_side px
        # (wholly outside, or a sliver inside: a wrong size or coordinate convention, not a mechanical fix)
        clip = np.stack([np.clip(bb[:, 0], 0, iw[oob]), np.clip(bb[:, 1], 0, ih[oob]),
                         np.clip(bb[:, 2], 0, iw[oob]), np.clip(bb[:, 3], 0, ih[oob])], axis=1)
        fits = np.minimum(clip[:, 2] - clip[:, 0], clip[:, 3] - clip[:, 1]) >= max(config.min_side, 1e-9)
        clip[~fits] = np.nan
        text = np.asarray([f"clip the box to the image: xyxy {s}" if ok else "check the image size and coordinate "
                           "convention (clipped to the image, too little of the box is left)"
                           for s, ok in zip(_fmt_box(clip), fits.tolist(), strict=True)], object)
        gone = outside >= 1  # wholly outside: an error; partly outside: a warning (row by row)
        for sel, severity in ((gone, "error"), (~gone, "warning")):
            if sel.any():
                out.append(QualityIssues.block(
                    "box_out_of_bounds", severity, image=a.image[r[sel]], annotation=r[sel],
                    score=0.6 + 0.4 * outside[sel], reason=list(reason[sel]), suggestion=list(text[sel]),
                    box=clip[sel]))
    return out


def _segments_cross(pts: FloatArray) -> BoolArray:
    """(p,) True where a closed polygon part, given as (p, v, 2) vertices, has two properly crossing edges."""
    p, v, _ = pts.shape
    a = pts
    b = np.roll(pts, -1, axis=1)
    i, j = np.triu_indices(v, k=2)
    keep = ~((i == 0) & (j == v - 1))  # the first and last edges share vertex 0
    i, j = i[keep], j[keep]
    if not len(i):
        return np.zeros(p, bool)

    def orient(o: FloatArray, s: FloatArray, t: FloatArray) -> FloatArray:
        return np.sign((s[..., 0] - o[..., 0]) * (t[..., 1] - o[..., 1]) - (s[..., 1] - o[..., 1]) * (t[..., 0] - o[..., 0]))

    a1, b1, a2, b2 = a[:, i], b[:, i], a[:, j], b[:, j]
    cross = (orient(a1, b1, a2) * orient(a1, b1, b2) < 0) & (orient(a2, b2, a1) * orient(a2, b2, b1) < 0)
    return np.asarray(cross.any(axis=1), dtype=bool)


def check_polygons(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """Polygon parts with fewer than 3 vertices, and self-intersecting parts.

    Parts are grouped by vertex count and tested together: each group is one (parts, v, v) array operation, so
    the cost is O(v^2) per part; parts with more than ``config.max_polygon_vertices`` vertices are skipped.
    """
    a = ds.annotations
    if a.polygon is None:
        return []
    few: list[int] = []
    few_n: list[int] = []
    groups: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
    for r, parts in enumerate(a.polygon.tolist()):
        if parts is None:
            continue
        for part in parts:
            flat = np.asarray(part, np.float64).ravel()
            nv = len(flat) // 2
            if nv < 3:
                few.append(r)
                few_n.append(nv)
            elif nv <= config.max_polygon_vertices:
                groups[nv].append((r, flat))
    out: list[QualityIssues] = []
    if few:
        fr = np.asarray(few, np.int64)
        out.append(QualityIssues.block(
            "polygon_too_few_vertices", "error", image=a.image[fr], annotation=fr, score=1.0,
            reason=[f"a polygon part has {n} vertices; a region needs at least 3" for n in few_n],
            suggestion="delete the part or redraw the polygon"))
    bad: list[int] = []
    for nv, items in sorted(groups.items()):
        rows = np.asarray([r for r, _ in items], np.int64)
        pts = np.stack([f[: 2 * nv].reshape(nv, 2) for _, f in items])
        crossed = _segments_cross(pts)
        bad.extend(rows[crossed].tolist())
    if bad:
        br = np.unique(np.asarray(bad, np.int64))
        out.append(QualityIssues.block(
            "polygon_self_intersection", "warning", image=a.image[br], annotation=br, score=0.8,
            reason="two edges of the polygon cross each other (a bow-tie or a vertex out of order)",
            suggestion="reorder or move the vertices so the outline does not cross itself"))
    return out


def check_masks(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """Empty masks, and masks whose bounding box disagrees with the annotation's box."""
    a = ds.annotations
    if a.mask is None:
        return []
    assert a.box is not None
    rows = np.flatnonzero(np.asarray([m is not None for m in a.mask.tolist()], bool))
    if not len(rows):
        return []
    rles = a.mask[rows].tolist()
    area = M.area(rles)
    mbox = M.to_box(rles)
    out: list[QualityIssues] = []
    empty = area <= 0
    if empty.any():
        r = rows[empty]
        out.append(QualityIssues.block(
            "empty_mask", "error", image=a.image[r], annotation=r, score=1.0,
            reason="the mask covers no pixel", suggestion="delete the annotation or redraw the mask"))
    b = a.box[rows]
    cmp = ~empty & ~np.isnan(b[:, 0])
    if cmp.any():
        bb, mb = b[cmp], mbox[cmp]
        lt = np.maximum(bb[:, :2], mb[:, :2])
        rb = np.minimum(bb[:, 2:], mb[:, 2:])
        wh = np.clip(rb - lt, 0, None)
        inter = wh[:, 0] * wh[:, 1]
        union = (bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1]) + (mb[:, 2] - mb[:, 0]) * (mb[:, 3] - mb[:, 1]) - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        low = iou < config.mask_box_iou
        if low.any():
            r = rows[cmp][low]
            out.append(QualityIssues.block(
                "mask_box_mismatch", "warning", image=a.image[r], annotation=r, score=0.5 + 0.5 * (1 - iou[low]),
                reason=[f"the mask's bounding box {m} has IoU {v:.2f} with the box {s}"
                        for m, v, s in zip(_fmt_box(mb[low]), iou[low], _fmt_box(bb[low]), strict=True)],
                suggestion="redraw the box or the mask so they outline the same object"))
    return out


def _per_class_z(values: FloatArray, label: IntArray, k: int, min_count: int, min_scale: float) -> FloatArray:
    z = np.zeros(len(values))
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(k + 1))
    for c in range(k):
        idx = order[bounds[c]: bounds[c + 1]]
        if len(idx) >= min_count:
            z[idx] = robust_z(values[idx], min_scale=min_scale)
    return z


def check_sizes(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """Objects implausibly tiny or huge, or implausibly elongated, for their class (robust per-class z)."""
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None
    b = a.box
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(a.has_box & ~a.iscrowd & (np.fmin(w, h) >= config.min_side))
    if not len(rows):
        return []
    k = len(ds.schema.classes)
    lab = a.label[rows]
    log_area = np.log(w[rows] * h[rows])
    log_aspect = np.log(w[rows] / h[rows])
    za = _per_class_z(log_area, lab, k, config.min_class_count, config.min_log_scale)
    zr = _per_class_z(log_aspect, lab, k, config.min_class_count, config.min_log_scale)
    names = ds.schema.names
    out: list[QualityIssues] = []
    for z, what in ((za, "area"), (zr, "aspect")):
        hit = np.abs(z) > config.size_z
        if not hit.any():
            continue
        r = rows[hit]
        zz = z[hit]
        if what == "area":
            words = ["tiny" if v < 0 else "huge" for v in zz]
            reason = [f"{wd} for a {names[c]}: {ww:.0f} x {hh:.0f} px (robust z of log area {v:+.1f})"
                      for wd, c, ww, hh, v in zip(words, a.label[r], w[r], h[r], zz, strict=True)]
        else:
            reason = [f"unusual shape for a {names[c]}: {ww:.0f} x {hh:.0f} px (robust z of log aspect {v:+.1f})"
                      for c, ww, hh, v in zip(a.label[r], w[r], h[r], zz, strict=True)]
        out.append(QualityIssues.block(
            "size_outlier", "warning", image=a.image[r], annotation=r,
            score=1 - config.size_z / (2 * np.abs(zz)),
            reason=reason, suggestion="check the class and the box; fix whichever is wrong"))
    return out


def check_keypoints(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """Labelled keypoints (v > 0) outside their annotation's box."""
    a = ds.annotations
    if a.keypoints is None or a.keypoints.shape[1] == 0:
        return []
    assert a.box is not None
    kp = a.keypoints
    b = a.box
    tol = config.keypoint_tolerance
    x, y, v = kp[..., 0], kp[..., 1], kp[..., 2]
    with np.errstate(invalid="ignore"):
        labelled = (v > 0) & ~np.isnan(x) & ~np.isnan(b[:, :1])
        outside = labelled & ((x < b[:, :1] - tol) | (x > b[:, 2:3] + tol) | (y < b[:, 1:2] - tol) | (y > b[:, 3:4] + tol))
    n_out = outside.sum(axis=1)
    n_lab = np.maximum(labelled.sum(axis=1), 1)
    r = np.flatnonzero(n_out > 0)
    if not len(r):
        return []
    return [QualityIssues.block(
        "keypoint_outside_box", "warning", image=a.image[r], annotation=r, score=0.6 + 0.4 * n_out[r] / n_lab[r],
        reason=[f"{n} of {m} labelled keypoints lie outside the box" for n, m in zip(n_out[r], n_lab[r], strict=True)],
        suggestion="move the keypoints onto the object or enlarge the box")]


def check_geometry(ds: Dataset, config: CheckConfig = CheckConfig()) -> QualityIssues:
    """Every geometry check, ranked."""
    return QualityIssues.build([*check_boxes(ds, config), *check_polygons(ds, config), *check_masks(ds, config),
                                *check_sizes(ds, config), *check_keypoints(ds, config)])
