"""Geometry checks: boxes, polygons, masks, object sizes per class and keypoints.

Glossary: a box is xyxy in absolute pixels (pixel i spans [i, i + 1)); *zero-area* means width or height is 0;
*degenerate* means a side under ``CheckConfig.min_side`` pixels (VOC's ``xmin == xmax`` becomes a 1-pixel box);
a *robust z* is ``(x - median) / (1.4826 * MAD)`` over one class; a polygon *part* is one flat ``x0, y0, ...``
array; self-intersection is a proper crossing of two non-adjacent edges of one part (touching and collinear
overlaps are not reported).
"""

from __future__ import annotations

import numpy as np

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.types import BoolArray, FloatArray, IntArray, distinct
from maslow.quality import oriented as O
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
    """Zero-area, degenerate, tiny (``min_area``) and out-of-bounds boxes (crowd regions included)."""
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
    tiny = ~zero & ~degen & (w * h < config.min_area)
    if tiny.any():
        r = rows[tiny]
        out.append(QualityIssues.block(
            "tiny_box", "warning", image=a.image[r], annotation=r,
            score=0.5 + 0.3 * (1 - w[tiny] * h[tiny] / config.min_area),
            reason=[f"box {s} is {ww:g} x {hh:g} = {ww * hh:g} px², under min_area {config.min_area:g} px²"
                    for s, ww, hh in zip(_fmt_box(b[tiny]), w[tiny], h[tiny], strict=True)],
            suggestion="check whether the object is real and large enough to label; drop it or mark it ignored"))
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


def _segments_cross(pts: FloatArray, *, budget: int = 1 << 20) -> BoolArray:
    """(p,) True where a closed polygon part, given as (p, v, 2) vertices, has two properly crossing edges.

    ``S[i, j]`` is the side of edge i's line that vertex j lies on (the sign of the orientation of ``a_i, b_i,
    a_j``, computed as ``(b_i - a_i) x (a_j - a_i)``); edge i separates edge j's ends where ``S[i, j] * S[i, j + 1]
    < 0``, and two edges cross properly where each separates the other's ends. Edges sharing a vertex get an
    orientation of exactly 0 there, so they never count, and touching or collinear edges are not reported. The
    parts run ``budget`` (part, vertex, vertex) entries at a time, so memory stays bounded whatever the number of
    parts of one vertex count (all at once: 770 MB for 400 parts of 200 vertices, growing with
    their number; now a few tens of MB)."""
    p, v, _ = pts.shape
    out = np.zeros(p, bool)
    if v < 4 or not p:  # a triangle's edges all share vertices
        return out
    step = max(1, budget // (v * v))
    for s in range(0, p, step):
        a = pts[s: s + step]
        d = np.roll(a, -1, axis=1) - a  # edge i: from a_i, direction d_i
        ex = a[:, None, :, 0] - a[:, :, None, 0]  # (q, i, j): a_j - a_i
        ey = a[:, None, :, 1] - a[:, :, None, 1]
        side = np.sign(d[:, :, None, 0] * ey - d[:, :, None, 1] * ex)
        sep = side * np.roll(side, -1, axis=2) < 0  # (q, i, j): edge i's line separates edge j's ends
        out[s: s + step] = (sep & sep.transpose(0, 2, 1)).any(axis=(1, 2))
    return out


def _ring_layout(poly: Polygons) -> tuple[IntArray, IntArray, IntArray]:
    """Per ring of ``poly``: its row, its first value's index in ``poly.xy`` and its number of vertices."""
    ro = poly.ring_offsets
    ring_row = np.repeat(np.arange(len(poly)), poly.n_rings)
    return ring_row, ro[:-1], np.diff(ro) // 2


def _ring_area_and_box(poly: Polygons, start: IntArray, nv: IntArray, *, chunk: int = 1 << 20
                       ) -> tuple[FloatArray, FloatArray]:
    """(r,) shoelace area and (r, 4) xyxy box of each ring (rings with no vertex: area 0, box NaN), vectorised
    over the flat vertices, rings of about ``chunk`` vertices at a time (bounded memory).

    Coordinates are taken relative to each ring's first vertex (so the cross terms of a ring far from the origin
    lose no precision); the first vertex is then (0, 0), so the term that closes a ring is 0 and one shifted
    product over all rings sums each ring apart."""
    r = len(start)
    area = np.zeros(r)
    box = np.full((r, 4), np.nan)
    todo = np.flatnonzero(nv > 0)
    ends = np.cumsum(nv[todo])
    lo = 0
    while lo < len(todo):
        hi = max(int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + chunk, side="right")), lo + 1)
        rings = todo[lo:hi]
        s, n = start[rings], nv[rings]
        vidx = _vertex_index(s, n)  # every vertex's x index, ring by ring
        x, y = poly.xy[vidx], poly.xy[vidx + 1]
        first = np.concatenate([[0], np.cumsum(n)[:-1]])  # each ring's first vertex in x, y
        box[rings] = np.stack([np.minimum.reduceat(x, first), np.minimum.reduceat(y, first),
                               np.maximum.reduceat(x, first), np.maximum.reduceat(y, first)], axis=1)
        x -= np.repeat(x[first], n)
        y -= np.repeat(y[first], n)
        cross = np.append(x[:-1] * y[1:] - x[1:] * y[:-1], 0.0)
        area[rings] = 0.5 * np.abs(np.add.reduceat(cross, first))
        lo = hi
    return area, box


def _vertex_index(start: IntArray, nv: IntArray) -> IntArray:
    """The index in ``xy`` of every vertex's x of rings starting at ``start`` with ``nv`` vertices, in order."""
    total = int(nv.sum())
    ring_of = np.repeat(np.arange(len(nv)), nv)
    within = np.arange(total) - np.repeat(np.cumsum(nv) - nv, nv)
    out: IntArray = start[ring_of] + 2 * within
    return out


def _row_boxes(ring_row: IntArray, ring_box: FloatArray, n: int) -> FloatArray:
    """(n, 4) xyxy box around each row's rings (NaN for a row without a vertex)."""
    out = np.full((n, 4), np.nan)
    ok = ~np.isnan(ring_box[:, 0])
    if ok.any():
        rr, rb = ring_row[ok], ring_box[ok]
        first = np.flatnonzero(np.r_[True, rr[1:] != rr[:-1]])
        rows = rr[first]
        out[rows, 0] = np.minimum.reduceat(rb[:, 0], first)
        out[rows, 1] = np.minimum.reduceat(rb[:, 1], first)
        out[rows, 2] = np.maximum.reduceat(rb[:, 2], first)
        out[rows, 3] = np.maximum.reduceat(rb[:, 3], first)
    return out


def check_polygons(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """Polygon parts with fewer than 3 vertices, parts enclosing no area (collinear or repeated vertices),
    self-intersecting parts, polygons past their image, and polygons whose outline disagrees with the box.

    Works on the flat vertex arrays (no object per polygon). Self-intersection groups parts by vertex count and
    tests each group as (parts, v, v) array operations a bounded number of parts at a time: O(v^2) per part;
    parts with more than ``config.max_polygon_vertices`` vertices are skipped.
    """
    a = ds.annotations
    if a.polygon is None or not len(a.polygon.xy):
        return []
    poly = a.polygon
    ring_row, start, nv = _ring_layout(poly)
    out: list[QualityIssues] = []
    few = np.flatnonzero(nv < 3)
    if len(few):
        fr = ring_row[few]
        out.append(QualityIssues.block(
            "polygon_too_few_vertices", "error", image=a.image[fr], annotation=fr, score=1.0,
            reason=[f"a polygon part has {n} vertices; a region needs at least 3" for n in nv[few].tolist()],
            suggestion="delete the part or redraw the polygon"))
    crossed = np.zeros(len(nv), bool)
    test = np.flatnonzero((nv >= 3) & (nv <= config.max_polygon_vertices))
    for v in np.unique(nv[test]).tolist():
        group = test[nv[test] == v]
        step = max(1, (1 << 20) // (v * v))
        for lo in range(0, len(group), step):  # the vertices gathered a bounded number of parts at a time
            rings = group[lo: lo + step]
            crossed[rings] = _segments_cross(poly.xy[start[rings, None] + np.arange(2 * v)].reshape(len(rings), v, 2))
    if crossed.any():
        br = distinct(ring_row[crossed])
        out.append(QualityIssues.block(
            "polygon_self_intersection", "warning", image=a.image[br], annotation=br, score=0.8,
            reason="two edges of the polygon cross each other (a bow-tie or a vertex out of order)",
            suggestion="reorder or move the vertices so the outline does not cross itself"))
    area, rbox = _ring_area_and_box(poly, start, nv)
    span = (rbox[:, 2] - rbox[:, 0]) * (rbox[:, 3] - rbox[:, 1])
    flat = np.flatnonzero((nv >= 3) & ~crossed & (area <= 1e-9 * np.fmax(span, 1.0)))  # a bow-tie's halves cancel
    if len(flat):
        fr = ring_row[flat]
        out.append(QualityIssues.block(
            "polygon_zero_area", "error", image=a.image[fr], annotation=fr, score=0.95,
            reason=[f"a polygon part of {n} vertices encloses no area (its vertices lie on one line or repeat)"
                    for n in nv[flat].tolist()],
            suggestion="delete the part or redraw the polygon"))
    pbox = _row_boxes(ring_row, rbox, len(a))
    out += _polygon_bounds(ds, pbox, config)
    out += _outline_vs_box(ds, pbox, "polygon", config)
    return out


def _polygon_bounds(ds: Dataset, pbox: FloatArray, config: CheckConfig) -> list[QualityIssues]:
    """``polygon_out_of_bounds``: a polygon's vertices past its image by more than ``bounds_tolerance`` (an error
    when the polygon lies wholly outside); images of unknown size are skipped."""
    a = ds.annotations
    rows = np.flatnonzero(~np.isnan(pbox[:, 0]))
    if not len(rows):
        return []
    b = pbox[rows]
    iw = ds.images.width[a.image[rows]].astype(np.float64)
    ih = ds.images.height[a.image[rows]].astype(np.float64)
    tol = config.bounds_tolerance
    hit = (iw > 0) & (ih > 0) & ((b[:, 0] < -tol) | (b[:, 1] < -tol) | (b[:, 2] > iw + tol) | (b[:, 3] > ih + tol))
    if not hit.any():
        return []
    r, b, iw, ih = rows[hit], b[hit], iw[hit], ih[hit]
    gone = (b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= iw) | (b[:, 1] >= ih)
    reason = np.asarray([f"polygon spanning {s} extends past the {int(w)} x {int(h)} image"
                         + (" (wholly outside it)" if g else "")
                         for s, w, h, g in zip(_fmt_box(b), iw, ih, gone.tolist(), strict=True)], object)
    out = []
    for sel, severity, score in ((gone, "error", 1.0), (~gone, "warning", 0.7)):
        if sel.any():
            out.append(QualityIssues.block(
                "polygon_out_of_bounds", severity, image=a.image[r[sel]], annotation=r[sel], score=score,
                reason=list(reason[sel]), suggestion="move the vertices onto the image, or check the image size"))
    return out


def _outline_vs_box(ds: Dataset, obox: FloatArray, what: str, config: CheckConfig) -> list[QualityIssues]:
    """``{what}_box_mismatch``: the bounding box of a polygon or mask (``obox``, (n, 4) xyxy, NaN rows: none) has
    IoU below ``config.mask_box_iou`` with the annotation's box."""
    a = ds.annotations
    assert a.box is not None
    rows = np.flatnonzero(~np.isnan(obox[:, 0]) & a.has_box)
    if not len(rows):
        return []
    bb, mb = a.box[rows], obox[rows]
    lt = np.maximum(bb[:, :2], mb[:, :2])
    rb = np.minimum(bb[:, 2:], mb[:, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = (bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1]) + (mb[:, 2] - mb[:, 0]) * (mb[:, 3] - mb[:, 1]) - inter
    same = np.all(bb == mb, axis=1)  # a zero-area box around a zero-area outline: the box is right (reported apart)
    iou = np.where(same, 1.0, np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0))
    low = iou < config.mask_box_iou
    if not low.any():
        return []
    r = rows[low]
    return [QualityIssues.block(
        f"{what}_box_mismatch", "warning", image=a.image[r], annotation=r, score=0.5 + 0.5 * (1 - iou[low]),
        reason=[f"the {what}'s bounding box {m} has IoU {v:.2f} with the box {s}"
                for m, v, s in zip(_fmt_box(mb[low]), iou[low], _fmt_box(bb[low]), strict=True)],
        suggestion=f"redraw the box or the {what} so they outline the same object")]


def check_masks(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """Empty masks, masks of another size than their image, and masks whose bounding box disagrees with the
    annotation's box."""
    a = ds.annotations
    if a.mask is None:
        return []
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
    size = np.asarray([[int(v) for v in m["size"]] for m in rles], np.int64).reshape(-1, 2)  # (h, w)
    ih, iw = ds.images.height[a.image[rows]], ds.images.width[a.image[rows]]
    wrong = (iw > 0) & (ih > 0) & ((size[:, 0] != ih) | (size[:, 1] != iw))
    if wrong.any():
        r = rows[wrong]
        out.append(QualityIssues.block(
            "mask_size_mismatch", "error", image=a.image[r], annotation=r, score=0.95,
            reason=[f"the mask is {w} x {h} px, its image {iw_} x {ih_}: it was drawn on another image or size"
                    for (h, w), iw_, ih_ in zip(size[wrong].tolist(), iw[wrong].tolist(), ih[wrong].tolist(),
                                                strict=True)],
            suggestion="re-export the mask at the image's size, or fix the image's width and height"))
    obox = np.full((len(a), 4), np.nan)
    obox[rows[~empty]] = mbox[~empty]
    return out + _outline_vs_box(ds, obox, "mask", config)


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
    """Labelled keypoints (v > 0) outside their annotation's box or their image, and keypoints marked not labelled
    (v = 0) that still carry coordinates (COCO writes a point that is not labelled as ``0, 0, 0``)."""
    a = ds.annotations
    if a.keypoints is None or a.keypoints.shape[1] == 0:
        return []
    assert a.box is not None
    kp = a.keypoints
    b = a.box
    tol = config.keypoint_tolerance
    x, y, v = kp[..., 0], kp[..., 1], kp[..., 2]
    out: list[QualityIssues] = []
    with np.errstate(invalid="ignore"):
        placed = (v > 0) & ~np.isnan(x) & ~np.isnan(y)
        labelled = placed & ~np.isnan(b[:, :1])
        outside = labelled & ((x < b[:, :1] - tol) | (x > b[:, 2:3] + tol) | (y < b[:, 1:2] - tol) | (y > b[:, 3:4] + tol))
        iw = ds.images.width[a.image].astype(np.float64)[:, None]
        ih = ds.images.height[a.image].astype(np.float64)[:, None]
        off = placed & (iw > 0) & (ih > 0) & ((x < -tol) | (y < -tol) | (x > iw + tol) | (y > ih + tol))
        ghost = (v == 0) & ~np.isnan(x) & ~np.isnan(y) & ((x != 0) | (y != 0))
    n_out = outside.sum(axis=1)
    n_lab = np.maximum(labelled.sum(axis=1), 1)
    r = np.flatnonzero(n_out > 0)
    if len(r):
        out.append(QualityIssues.block(
            "keypoint_outside_box", "warning", image=a.image[r], annotation=r, score=0.6 + 0.4 * n_out[r] / n_lab[r],
            reason=[f"{n} of {m} labelled keypoints lie outside the box" for n, m in zip(n_out[r], n_lab[r], strict=True)],
            suggestion="move the keypoints onto the object or enlarge the box"))
    names = _keypoint_names(ds)
    for kind, hit in (("keypoint_outside_image", off), ("keypoint_unlabelled_with_coordinates", ghost)):
        r = np.flatnonzero(hit.any(axis=1))
        if not len(r):
            continue
        which = [", ".join(_point_name(names, int(c), k) for k in np.flatnonzero(hit[i]).tolist())
                 for i, c in zip(r.tolist(), a.label[r].tolist(), strict=True)]
        if kind == "keypoint_outside_image":
            out.append(QualityIssues.block(
                kind, "warning", image=a.image[r], annotation=r, score=0.75,
                reason=[f"labelled keypoints past the {int(w)} x {int(h)} image: {k}"
                        for k, w, h in zip(which, iw[r, 0], ih[r, 0], strict=True)],
                suggestion="move the keypoints onto the image, or mark them not labelled (v = 0)"))
        else:
            out.append(QualityIssues.block(
                kind, "warning", image=a.image[r], annotation=r, score=0.55,
                reason=[f"keypoints marked not labelled (v = 0) have coordinates: {k}" for k in which],
                suggestion="set v to 1 (labelled, hidden) or 2 (visible) if the point was placed, else clear it"))
    return out


def _keypoint_names(ds: Dataset) -> list[tuple[str, ...]]:
    return [c.keypoints for c in ds.schema.classes]


def _point_name(names: list[tuple[str, ...]], cls: int, k: int) -> str:
    """Keypoint ``k`` of class ``cls`` by its name in the schema, else by its index."""
    own = names[cls] if 0 <= cls < len(names) else ()
    return own[k] if k < len(own) else f"#{k}"


def check_image_sizes(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """``image_size_unknown`` (info, about the dataset): images with annotations but no width or height, on which
    nothing could be checked against the image bounds."""
    a = ds.annotations
    unknown = (ds.images.width <= 0) | (ds.images.height <= 0)
    used = np.zeros(ds.n_images, bool)
    used[a.image] = True
    rows = np.flatnonzero(unknown & used)
    if not len(rows):
        return []
    first = str(ds.images.path[rows[0]])
    return [QualityIssues.block(
        "image_size_unknown", "info", image=-1, score=0.3,
        reason=f"{len(rows)} annotated images have no size (width or height 0; the first: {first}): their boxes, "
               "polygons, masks and keypoints were not checked against the image bounds",
        suggestion="fill the sizes from the files (maslow import checks the files and reads them) and check again")]


def check_geometry(ds: Dataset, config: CheckConfig = CheckConfig()) -> QualityIssues:
    """Every geometry check, ranked; the oriented-box rules too when ``config.oriented`` says so (None: when the
    dataset is oriented, ``maslow.quality.oriented``)."""
    obb = O.is_oriented(ds) if config.oriented is None else config.oriented
    issues = QualityIssues.build([*check_boxes(ds, config), *check_polygons(ds, config), *check_masks(ds, config),
                                  *check_sizes(ds, config), *check_keypoints(ds, config),
                                  *check_image_sizes(ds, config), *(O.check_oriented(ds, config) if obb else [])])
    return O.without_replaced(issues, ds) if obb else issues
