"""Duplicates and overlaps: two boxes on one object, of the same class (a double label) or of different classes
(a class conflict).

Candidate pairs come from one vectorised sweep over all images at once: rows are sorted by (image, x1), and a
box j can reach IoU >= t with an earlier box i only if ``x1_j <= x2_i - t * w_i`` (their horizontal overlap must be
at least ``t`` times i's width). ``np.searchsorted`` on a composite (image, x1) key gives each row's candidate
range, so the cost is O(n log n + candidates) whatever the number of boxes per image: an image with thousands of
boxes costs no more than its neighbours along x. Crowd regions and rows without a box take no part, and when
``annotations.annotator`` is set only boxes of the same annotator are compared (two annotators' boxes on one
object are what the agreement family measures; rows without one, None or NaN, are compared with each other).
"""

from __future__ import annotations

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray, is_unset
from maslow.quality.config import CheckConfig
from maslow.quality.issues import QualityIssues


def overlapping_pairs(ds: Dataset, *, min_iou: float, chunk: int = 4_000_000) -> tuple[IntArray, IntArray, FloatArray]:
    """All pairs of boxes in the same image with IoU >= ``min_iou`` (> 0).

    Args:
        ds: the dataset; crowd rows and rows without a box are skipped.
        min_iou: the IoU threshold, in (0, 1].
        chunk: candidate pairs evaluated per batch (bounds memory).

    Returns:
        ``(i, j, iou)``: annotation rows with ``i < j`` and their IoU, sorted by (i, j).
    """
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None
    b = a.box
    ok = a.has_box & ~a.iscrowd
    rows = np.flatnonzero(ok)
    p, q, v = sweep_pairs(a.image[rows], b[rows], min_iou=min_iou, chunk=chunk)
    i, j = rows[p], rows[q]
    srt = np.lexsort((j, i))
    return i[srt], j[srt], v[srt]


def sweep_pairs(image: IntArray, box: FloatArray, *, min_iou: float, chunk: int = 4_000_000
                ) -> tuple[IntArray, IntArray, FloatArray]:
    """Pairs ``(p, q, iou)`` of rows (``p < q``) with equal ``image`` and box IoU >= ``min_iou``; rows with
    zero-area boxes never pair."""
    good = (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])
    rows = np.flatnonzero(good)
    if len(rows) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    img = image[rows]
    bx = box[rows]
    x1 = bx[:, 0]
    lo = float(x1.min())
    span = float(bx[:, 2].max() - lo) + 1.0
    key = img.astype(np.float64) * span + (x1 - lo)
    order = np.lexsort((x1, img))
    key_s = key[order]
    w = bx[order, 2] - bx[order, 0]
    limit = img[order].astype(np.float64) * span + (bx[order, 2] - min_iou * w - lo)
    # a little slack: ``x2 - t * w`` may round below ``x1`` (t = 1, identical boxes); extra candidates are
    # dropped by the IoU test below, and a reach into the next image by the image test
    limit += 1e-9 * (np.abs(limit) + 1.0)
    hi = np.searchsorted(key_s, limit, side="right")
    start = np.arange(len(order)) + 1
    count = np.maximum(hi - start, 0)
    out_i: list[IntArray] = []
    out_j: list[IntArray] = []
    out_v: list[FloatArray] = []
    cum = np.cumsum(count)
    begin = 0
    while begin < len(order):
        base = int(cum[begin - 1]) if begin else 0
        end = int(np.searchsorted(cum, base + chunk, side="right"))
        end = max(end, begin + 1)
        cnt = count[begin:end]
        total = int(cnt.sum())
        if total:
            pi = np.repeat(np.arange(begin, end), cnt)
            offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            pj = start[pi] + offs
            bi, bj = bx[order[pi]], bx[order[pj]]
            iw = np.clip(np.minimum(bi[:, 2], bj[:, 2]) - np.maximum(bi[:, 0], bj[:, 0]), 0, None)
            ih = np.clip(np.minimum(bi[:, 3], bj[:, 3]) - np.maximum(bi[:, 1], bj[:, 1]), 0, None)
            inter = iw * ih
            union = (bi[:, 2] - bi[:, 0]) * (bi[:, 3] - bi[:, 1]) + (bj[:, 2] - bj[:, 0]) * (bj[:, 3] - bj[:, 1]) - inter
            iou = inter / union
            keep = (iou >= min_iou) & (img[order[pi]] == img[order[pj]])
            ri, rj = rows[order[pi[keep]]], rows[order[pj[keep]]]
            out_i.append(np.minimum(ri, rj))
            out_j.append(np.maximum(ri, rj))
            out_v.append(iou[keep])
        begin = end
    i = np.concatenate(out_i) if out_i else np.zeros(0, np.int64)
    j = np.concatenate(out_j) if out_j else np.zeros(0, np.int64)
    v = np.concatenate(out_v) if out_v else np.zeros(0)
    return i, j, v


def check_overlaps(ds: Dataset, config: CheckConfig = CheckConfig()) -> QualityIssues:
    """``duplicate_box`` (same class, IoU >= duplicate_iou) and ``class_conflict`` (IoU >= conflict_iou).

    A pair's finding is on its later annotation row (``annotation``), the earlier one is ``other``: accepting a
    ``duplicate_box`` in review removes the later row (the copy: the earlier one keeps its id, which other files
    may refer to)."""
    a = ds.annotations
    i, j, v = overlapping_pairs(ds, min_iou=min(config.duplicate_iou, config.conflict_iou))
    if a.annotator is not None:  # boxes of two annotators on one object are agreement, not duplicates
        wi, wj = a.annotator[i], a.annotator[j]
        # rows without an annotator (None or NaN alike: NaN != NaN) are compared with each other
        unset = np.fromiter((is_unset(x) and is_unset(y) for x, y in zip(wi.tolist(), wj.tolist(), strict=True)),
                            dtype=bool, count=len(i))
        one = (wi == wj) | unset
        i, j, v = i[one], j[one], v[one]
    same = a.label[i] == a.label[j]
    names = ds.schema.names
    parts = []
    dup = same & (v >= config.duplicate_iou)
    if dup.any():
        di, dj, dv = i[dup], j[dup], v[dup]
        same_box = dv >= 0.999  # identical boxes: an error; near-identical: a warning (row by row)
        for sel, severity in ((same_box, "error"), (~same_box, "warning")):
            if sel.any():
                parts.append(QualityIssues.block(
                    "duplicate_box", severity, image=a.image[dj[sel]], annotation=dj[sel], other=di[sel],
                    score=0.7 + 0.3 * dv[sel],
                    reason=[f"two {names[c]} boxes on one object (IoU {x:.3f} with {p})"
                            for c, x, p in zip(a.label[dj[sel]], dv[sel], _named(ds, di[sel]), strict=True)],
                    suggestion=[f"remove this box, the later of the two ({p} stays)" for p in _named(ds, di[sel])]))
    con = ~same & (v >= config.conflict_iou)
    if con.any():
        ci, cj, cv = i[con], j[con], v[con]
        parts.append(QualityIssues.block(
            "class_conflict", "warning", image=a.image[cj], annotation=cj, other=ci, score=0.6 + 0.4 * cv,
            reason=[f"a {names[lj]} box and a {names[li]} box ({p}) on one object (IoU {x:.3f})"
                    for lj, li, x, p in zip(a.label[cj], a.label[ci], cv, _named(ds, ci), strict=True)],
            suggestion="keep one box with the right class: pick the class (the other box is removed)"))
    return QualityIssues.build(parts)


def _named(ds: Dataset, rows: np.ndarray) -> list[str]:
    """How a message names annotation ``rows``: by the dataset's annotation id (COCO's ``id``, ``extra["coco_id"]``;
    the ``annotation_id``/``other_id`` of ISSUES.json) where it has one, else by its row (``annotation row N``, as
    ``maslow review apply`` logs it)."""
    col = ds.annotations.extra.get("coco_id")
    out = []
    for r in rows.tolist():
        v = None if col is None else col[r]
        if isinstance(v, float | np.floating) and np.isfinite(v) and float(v).is_integer():
            v = int(v)
        ok = (isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) and int(v) >= 0) or \
            (isinstance(v, str) and v != "")
        out.append(f"annotation id {v}" if ok else f"annotation row {r}")
    return out
