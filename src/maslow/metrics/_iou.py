"""Overlaps between predictions and truth objects of the same group, and the areas used for area ranges.

- ``bbox``: pycocotools' C ``bbIou`` on ``[x, y, w, h]`` boxes, vectorised with the same operations in the
  same order (``min(w_d + x_d, w_g + x_g) - max(x_d, x_g)``, ``u = d_area + g_area - i``; crowd: ``u = d_area``),
  so every value is the same float64.
- ``segm``: pycocotools' own ``mask.iou`` on RLEs; polygons are rasterised with ``frPyObjects`` + ``merge``
  exactly as ``COCO.annToRLE`` does (5x supersampling, union of parts, its own quirks included). Where the
  compiled kernel is built, ``segm_masks`` gives ``_segm.Runs`` instead, whose areas and IoUs are the same
  numbers computed in C.
- ``keypoints``: OKS as ``COCOeval.computeOks``: ``e = (dx**2 + dy**2) / (2 sigma)**2 / (area + eps) / 2``
  over the labelled keypoints (or, with none labelled, distances to a box twice the truth box), then
  ``sum(exp(-e)) / len(e)``, summed in numpy's pairwise order so the float64 values match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from maslow._native import empty, load
from maslow.core.dataset import Dataset
from maslow.core.masks import coco_mask
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError, KeypointSigmasError
from maslow.metrics._prepare import AREA_COLUMN, COCO_BBOX_COLUMN, Groups, _float_column, coco_xywh
from maslow.metrics._segm import Runs, side_runs
from maslow.metrics._segm import areas as run_areas
from maslow.metrics._segm import iou_pairs as run_iou_pairs

#: COCO's 17 person keypoint sigmas, computed as pycocotools does (the literals divided by 10.0).
COCO_KEYPOINT_SIGMAS: FloatArray = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0
COCO_KEYPOINT_SIGMAS.flags.writeable = False


# -- geometry -------------------------------------------------------------------------------------------

def rles(ds: Dataset, rows: IntArray, side: str) -> list[dict[str, Any]]:
    """COCO RLEs of ``rows``: polygons rasterised as ``COCO.annToRLE`` does, else the stored mask."""
    a = ds.annotations
    out: list[dict[str, Any]] = []
    polys = a.polygon
    masks = a.mask
    h_all, w_all = ds.images.height, ds.images.width
    mask_rows = [None] * len(rows) if masks is None else masks[rows].tolist()
    api = coco_mask()
    for r, m in zip(rows.tolist(), mask_rows, strict=True):
        poly = None if polys is None else polys[r]
        if poly is not None:
            h, w = int(h_all[a.image[r]]), int(w_all[a.image[r]])
            segm = [np.asarray(p, dtype=np.float64).tolist() for p in poly]
            if segm and len(segm[0]) == 4:
                raise InvalidDatasetError(
                    f"{side}.annotations.polygon row {r}: the first polygon must have 3 or more points, got 2 "
                    "(pycocotools reads it as a box and fails)"
                )
            if not segm:
                out.append(api.encode(np.zeros((h, w, 1), np.uint8, order="F"))[0])
            else:
                out.append(api.merge(api.frPyObjects(segm, h, w)))
            continue
        if m is None:
            raise InvalidDatasetError(
                f"{side}.annotations row {r}: iou_type 'segm' needs a polygon or a mask, got neither"
            )
        size = m["size"]
        if type(m["counts"]) is bytes and type(size) is list and len(size) == 2 and type(size[0]) is type(size[1]) is int:
            out.append(m)  # already what pycocotools reads (it doesn't modify it)
        else:
            out.append(_rle(m))
    return out


def segm_masks(ds: Dataset, rows: IntArray, side: str) -> Runs | list[dict[str, Any]]:
    """The masks of ``rows`` for ``segm``: ``Runs`` by the compiled kernel where built, else ``rles``."""
    runs = side_runs(ds, rows, side, rles)
    return rles(ds, rows, side) if runs is None else runs


PRED_BLOCK = 4096  # predictions whose run lengths segm_pred_blocks holds at a time
OKS_BLOCK = 8192  # keypoint pairs whose OKS terms oks_pairs holds at a time


def segm_pred_blocks(pred: Dataset, rows: IntArray, t_masks: Runs, crowd: BoolArray, p_idx: IntArray,
                     t_idx: IntArray, *, areas: bool,
                     refine: Callable[[Runs, slice, IntArray, IntArray, FloatArray], FloatArray] | None = None
                     ) -> tuple[FloatArray | None, FloatArray]:
    """The predictions' mask areas (when ``areas``) and the IoU of every pair, the predictions' run lengths made
    ``PRED_BLOCK`` predictions at a time: they are the largest arrays of a segm evaluation (39 MB for 50k
    predictions), and a block's pairs are contiguous (prediction-major). The first prediction whose mask is an error
    is the one named, as when all are made at once (a pair whose runs can't be walked is named with its block).
    ``refine(runs, pairs, p_block, t, mask_iou)``: the IoU of a block's pairs (``pairs``, a slice of ``p_idx``;
    ``p_block``: their predictions' positions in ``runs``) from their mask IoU (boundary IoU), else the mask IoU."""
    area = np.empty(len(rows)) if areas else None
    iou = np.empty(len(p_idx))
    starts = range(0, len(rows), PRED_BLOCK)
    cuts = np.searchsorted(p_idx, [*starts, len(rows)])
    for b, lo in enumerate(starts):
        runs = side_runs(pred, rows[lo:lo + PRED_BLOCK], "pred", rles)
        assert runs is not None, "the truth's masks were Runs: the kernel is built"
        if area is not None:
            area[lo:lo + PRED_BLOCK] = run_areas(runs)
        s, e = int(cuts[b]), int(cuts[b + 1])
        bp, bt = p_idx[s:e] - lo, t_idx[s:e]
        out = run_iou_pairs(runs, t_masks, crowd, bp, bt)
        iou[s:e] = out if refine is None else refine(runs, slice(s, e), bp, bt, out)
    return area, iou


def _rle(m: dict[str, Any]) -> dict[str, Any]:
    counts = m["counts"]
    h, w = (int(v) for v in m["size"])
    if isinstance(counts, list | np.ndarray):
        return coco_mask().frPyObjects({"size": [h, w], "counts": list(map(int, counts))}, h, w)  # type: ignore[no-any-return]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [h, w], "counts": counts}


def mask_areas(masks: list[dict[str, Any]]) -> FloatArray:
    """Pixel counts of RLEs, in chunks of 255 (pycocotools' ``area`` sizes a uint8 array by the count)."""
    out = np.zeros(len(masks))
    for i in range(0, len(masks), 255):
        out[i:i + 255] = coco_mask().area(masks[i:i + 255])
    return out


def box_areas(xywh: FloatArray) -> FloatArray:
    """``w * h`` as pycocotools computes box areas."""
    return xywh[:, 2] * xywh[:, 3]


def keypoint_extent_areas(kp: FloatArray) -> FloatArray:
    """Area of the box around all keypoints of each prediction, as ``COCO.loadRes`` computes it."""
    native = load("cocoeval")
    if native is not None and kp.ndim == 3 and kp.shape[1] and kp.shape[2] == 3:
        area = np.empty(len(kp))
        native.keypoint_extents(np.ascontiguousarray(kp, np.float64), area)
        return area
    x, y = kp[:, :, 0], kp[:, :, 1]
    out: FloatArray = (np.max(x, axis=1) - np.min(x, axis=1)) * (np.max(y, axis=1) - np.min(y, axis=1))
    return out


def boxes(ds: Dataset, rows: IntArray, side: str) -> FloatArray:
    """(len(rows), 4) ``[x, y, w, h]`` boxes as pycocotools reads them; every row must have a box."""
    box = ds.annotations.box
    assert box is not None
    native = load("cocoeval")
    xywh = empty((len(rows), 4), np.float64)
    if native is None:
        bad = np.flatnonzero(np.isnan(box[rows, 0]))
        n_bad, first = bad.size, int(bad[0]) if bad.size else -1
    else:  # the same in one pass, without gathered copies
        raw = _float_column(ds.annotations, COCO_BBOX_COLUMN, 4)
        n_bad, first = native.xywh_rows(np.ascontiguousarray(box, np.float64),
                                        None if raw is None else np.ascontiguousarray(raw, np.float64),
                                        np.ascontiguousarray(rows, np.int64), xywh)
    if n_bad:
        raise InvalidDatasetError(
            f"{side}.annotations.box row {rows[first]}: must be a box for this evaluation, got none ({n_bad} rows)"
        )
    return coco_xywh(ds.annotations, rows) if native is None else xywh


def pred_box_rows(ds: Dataset, rows: IntArray, side: str
                  ) -> tuple[FloatArray, tuple[FloatArray, FloatArray | None, IntArray]] | None:
    """``(box_areas(boxes(ds, rows, side)), (box, raw, rows))`` by the compiled kernel, without the (n, 4) xywh
    copy: the areas, and what ``pairs_with_box_ious`` reads each box from. None without the kernel."""
    native = load("cocoeval")
    box = ds.annotations.box
    if native is None or box is None:
        return None
    raw = _float_column(ds.annotations, COCO_BBOX_COLUMN, 4)
    src = (np.ascontiguousarray(box, np.float64), None if raw is None else np.ascontiguousarray(raw, np.float64),
           np.ascontiguousarray(rows, np.int64))
    areas = empty(len(rows), np.float64)
    n_bad, first = native.xywh_rows(*src, areas)
    if n_bad:
        raise InvalidDatasetError(
            f"{side}.annotations.box row {rows[first]}: must be a box for this evaluation, got none ({n_bad} rows)"
        )
    return areas, src


def truth_areas(truth: Dataset, rows: IntArray, masks: Runs | list[dict[str, Any]] | None,
                xywh: FloatArray | None) -> FloatArray:
    """The COCO ``area`` field when present (pycocotools compares it to the area ranges), else a fallback:
    mask pixel count (segm) or box ``w * h`` (bbox, keypoints)."""
    given = _float_column(truth.annotations, AREA_COLUMN)
    out = np.full(len(rows), np.nan) if given is None else given[rows].copy()
    missing = np.isnan(out)
    if missing.any():
        idx = np.flatnonzero(missing)
        if isinstance(masks, Runs):
            out[idx] = run_areas(masks)[idx]
        elif masks is not None:
            out[idx] = mask_areas([masks[i] for i in idx.tolist()])
        else:
            out[idx] = box_areas(xywh[idx] if xywh is not None else boxes(truth, rows[idx], "truth"))
    return out


def pred_areas(pred: Dataset, rows: IntArray, iou_type: str, masks: Runs | list[dict[str, Any]] | None,
               xywh: FloatArray | None) -> FloatArray:
    """Areas of the evaluated predictions: of the box when ``xywh`` is given, else of the mask or keypoints."""
    if xywh is not None:
        return box_areas(xywh)
    if iou_type == "segm":
        assert masks is not None
        return run_areas(masks) if isinstance(masks, Runs) else mask_areas(masks)
    kp = _keypoints(pred, "pred")  # the whole column: its extents, then the evaluated rows' (no (n, K, 3) copy)
    return keypoint_extent_areas(kp)[rows] if len(rows) >= len(kp) // 2 else keypoint_extent_areas(kp[rows])


def _keypoints(ds: Dataset, side: str) -> FloatArray:
    """The (N, K, 3) keypoints of every row of ``ds`` (not gathered)."""
    kp = ds.annotations.keypoints
    if kp is None and not len(ds.annotations):  # no rows (a model that found nothing): nothing to evaluate
        return np.zeros((0, 1, 3))  # any K: no pair is computed
    if kp is None:
        raise InvalidDatasetError(f"{side}.annotations.keypoints: iou_type 'keypoints' needs keypoints, got none")
    return kp


def check_pred_keypoints(pred: Dataset, rows: IntArray) -> None:
    """Raise when an evaluated prediction (``rows``) has a keypoint x or y that is not a number (once per
    evaluation, before its areas and OKS)."""
    kp = _keypoints(pred, "pred")
    if np.isnan(kp).any():  # one contiguous pass (the strided x, y test costs 4x): rarely true
        bad = np.flatnonzero(np.isnan(kp[rows, :, :2]).any(axis=(1, 2)))
        if bad.size:
            raise InvalidDatasetError(
                f"pred.annotations.keypoints row {rows[bad[0]]}: must be numbers, got nan ({bad.size} rows)"
            )


# -- overlaps -------------------------------------------------------------------------------------------

def box_iou_pairs(d: FloatArray, g: FloatArray, crowd: BoolArray) -> FloatArray:
    """IoU of aligned xywh box pairs, bit-equal to pycocotools' ``bbIou``."""
    dx, dy, dw, dh = d[:, 0], d[:, 1], d[:, 2], d[:, 3]
    gx, gy, gw, gh = g[:, 0], g[:, 1], g[:, 2], g[:, 3]
    da = dw * dh
    ga = gw * gh
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    i = w * h
    u = np.where(crowd, da, (da + ga) - i)
    ok = (w > 0) & (h > 0)
    out = np.zeros(len(d))
    np.divide(i, u, out=out, where=ok)
    return out


def pairs_with_box_ious(groups: Groups, p_xywh: FloatArray | tuple[FloatArray, FloatArray | None, IntArray],
                        t_xywh: FloatArray, min_iou: float = -np.inf) -> tuple[IntArray, IntArray, FloatArray] | None:
    """``(p_idx, t_idx, iou)``: ``_prepare.pairs`` and their ``box_iou_pairs`` in one pass of the compiled kernel
    (no gathered copies of the boxes); None without the kernel. ``p_xywh`` may be ``pred_box_rows``' source.
    Only the pairs with ``iou >= min_iou`` (or NaN) are returned, in the same order."""
    native = load("cocoeval")
    if native is None:
        return None
    tg, pg = groups.truth.group, groups.pred.group
    n_groups = int(max(tg.max(initial=-1), pg.max(initial=-1))) + 1
    b_p, b_t, b_i = native.pairs(
        np.ascontiguousarray(tg, np.int64), np.ascontiguousarray(pg, np.int64), n_groups,
        p_xywh if isinstance(p_xywh, tuple) else np.ascontiguousarray(p_xywh, np.float64),
        np.ascontiguousarray(t_xywh, np.float64),
        np.ascontiguousarray(groups.crowd, bool).view(np.uint8), float(min_iou),
    )
    return np.frombuffer(b_p, np.int64), np.frombuffer(b_t, np.int64), np.frombuffer(b_i, np.float64)


def segm_iou_pairs(d_rles: list[dict[str, Any]], g_rles: list[dict[str, Any]], d_image: IntArray,
                   g_image: IntArray, crowd: BoolArray, p_idx: IntArray, t_idx: IntArray) -> FloatArray:
    """Mask IoU of the pairs with pycocotools' ``mask.iou``: one call per image (all its predictions against all its
    truth objects; the IoU of a pair doesn't depend on the others), then the pairs read from those matrices.
    ``d_image``/``g_image`` are non-decreasing (both sides are sorted by group, image first)."""
    out = np.empty(len(p_idx))
    if not len(p_idx):
        return out
    n_img = int(max(d_image.max(initial=-1), g_image.max(initial=-1))) + 1
    d_bounds = np.searchsorted(d_image, np.arange(n_img + 1))
    g_bounds = np.searchsorted(g_image, np.arange(n_img + 1))
    nd, ng = np.diff(d_bounds), np.diff(g_bounds)
    size = nd * ng
    offset = np.cumsum(size) - size
    buf = np.empty(int(size.sum()))
    crowd_u8 = crowd.astype(np.uint8)
    for i in np.flatnonzero(size).tolist():
        d0, d1, g0, g1 = int(d_bounds[i]), int(d_bounds[i + 1]), int(g_bounds[i]), int(g_bounds[i + 1])
        ious = coco_mask().iou(d_rles[d0:d1], g_rles[g0:g1], crowd_u8[g0:g1].tolist())
        buf[int(offset[i]):int(offset[i]) + int(size[i])] = np.asarray(ious, dtype=np.float64).ravel()
    img = d_image[p_idx]
    out[:] = buf[offset[img] + (p_idx - d_bounds[img]) * ng[img] + (t_idx - g_bounds[img])]
    return out


def oks_pairs(d_kp: FloatArray, g_kp: FloatArray, g_xywh: FloatArray, g_area: FloatArray, sigmas: FloatArray,
              p_idx: IntArray, t_idx: IntArray, min_oks: float = -np.inf, d_rows: IntArray | None = None,
              g_rows: IntArray | None = None) -> tuple[IntArray, FloatArray]:
    """OKS of the pairs, bit-equal to ``COCOeval.computeOks`` (same operations, numpy's summation order), as
    (kept, oks): the indices of the pairs kept and their OKS. The compiled kernel leaves out pairs whose OKS is
    surely below ``min_oks`` (they never match: their exponentials are not computed); the numpy path keeps all.
    ``d_rows``/``g_rows``: the row of ``d_kp``/``g_kp`` of each prediction/truth object that ``p_idx``/``t_idx``
    count (default: row i is object i), so that whole keypoint columns are read in place."""
    n_pairs = len(p_idx)
    out = np.empty(n_pairs)
    if not n_pairs:
        return np.arange(0), out
    var = (sigmas * 2) ** 2
    native = load("cocoeval")
    if native is not None and len(sigmas):  # the terms and sums in C, numpy's exp between them (as pycocotools)
        # OKS_BLOCK pairs at a time, through buffers reused from block to block (fresh memory costs a page fault
        # per 4 KiB written: as much as the terms themselves)
        block = min(n_pairs, OKS_BLOCK)
        e = np.empty(block * len(sigmas))
        zero = np.empty((block, len(sigmas)), np.uint8)  # terms whose exp is 0: not stored in e (numpy's slow lanes)
        n_used = np.empty(n_pairs, np.int64)
        c = np.ascontiguousarray
        args = (c(d_kp, np.float64), c(np.arange(len(d_kp)) if d_rows is None else d_rows, np.int64),
                c(g_kp, np.float64), c(np.arange(len(g_kp)) if g_rows is None else g_rows, np.int64),
                c(g_xywh, np.float64), c(g_area, np.float64), c(var, np.float64))
        p_idx, t_idx = c(p_idx, np.int64), c(t_idx, np.int64)
        for lo in range(0, n_pairs, block):
            hi = min(lo + block, n_pairs)
            nu, zb = n_used[lo:hi], zero[:hi - lo]
            m = native.oks_terms(*args, p_idx[lo:hi], t_idx[lo:hi], float(min_oks), e[:(hi - lo) * len(sigmas)],
                                 nu, zb)
            ex = e[:m]
            with np.errstate(invalid="ignore", over="ignore", under="ignore"):
                np.exp(np.negative(ex, out=ex), out=ex)
            native.oks_sums(ex, nu, zb, out[lo:hi])
        kept = np.flatnonzero(n_used)
        return (kept, out[kept]) if len(kept) < n_pairs else (kept, out)
    d_kp = d_kp if d_rows is None else d_kp[d_rows]
    g_kp = g_kp if g_rows is None else g_kp[g_rows]
    vg = g_kp[:, :, 2] > 0
    k1 = vg.sum(axis=1)
    bb = g_xywh
    x0 = bb[:, 0] - bb[:, 2]
    x1 = bb[:, 0] + bb[:, 2] * 2
    y0 = bb[:, 1] - bb[:, 3]
    y1 = bb[:, 1] + bb[:, 3] * 2
    xd, yd = d_kp[p_idx, :, 0], d_kp[p_idx, :, 1]
    pk1 = k1[t_idx]
    vis = pk1 > 0
    dx = np.empty_like(xd)
    dy = np.empty_like(yd)
    with np.errstate(invalid="ignore"):
        dx[vis] = xd[vis] - g_kp[t_idx[vis], :, 0]
        dy[vis] = yd[vis] - g_kp[t_idx[vis], :, 1]
        nv = ~vis
        tn = t_idx[nv]
        z = 0.0
        dx[nv] = np.maximum(z, x0[tn, None] - xd[nv]) + np.maximum(z, xd[nv] - x1[tn, None])
        dy[nv] = np.maximum(z, y0[tn, None] - yd[nv]) + np.maximum(z, yd[nv] - y1[tn, None])
        e = (dx**2 + dy**2) / var / (g_area[t_idx, None] + np.spacing(1)) / 2
        ex = np.exp(-e)
    for n_vis in np.flatnonzero(np.bincount(pk1)).tolist():  # np.unique would import numpy.ma (10 ms)
        sel = np.flatnonzero(pk1 == n_vis)
        if n_vis == 0:
            vals = ex[sel]
        else:
            cols = np.argsort(~vg[t_idx[sel]], axis=1, kind="stable")[:, :n_vis]
            vals = np.take_along_axis(ex[sel], cols, axis=1)
        out[sel] = pairwise_sum_rows(vals) / vals.shape[1]
    return np.arange(n_pairs), out


def pairwise_sum_rows(a: FloatArray) -> FloatArray:
    """Row sums in the order of numpy's 1-D ``np.sum`` (pairwise, 8 accumulators, blocks of 128)."""
    n = a.shape[1]
    if n < 8:
        res = np.zeros(a.shape[0])
        for j in range(n):
            res = res + a[:, j]
        return res
    if n <= 128:
        r = a[:, :8].copy()
        i = 8
        while i < n - (n % 8):
            r += a[:, i:i + 8]
            i += 8
        res = ((r[:, 0] + r[:, 1]) + (r[:, 2] + r[:, 3])) + ((r[:, 4] + r[:, 5]) + (r[:, 6] + r[:, 7]))
        while i < n:
            res = res + a[:, i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return pairwise_sum_rows(a[:, :n2]) + pairwise_sum_rows(a[:, n2:])


def pair_ious(truth: Dataset, pred: Dataset, groups: Groups, p_idx: IntArray, t_idx: IntArray, iou_type: str,
              sigmas: FloatArray | None, t_masks: Runs | list[dict[str, Any]] | None,
              p_masks: Runs | list[dict[str, Any]] | None, t_xywh: FloatArray | None,
              p_xywh: FloatArray | None, min_iou: float = -np.inf) -> tuple[IntArray, IntArray, FloatArray]:
    """IoU (or OKS) of the (prediction, truth) pairs, as (p_idx, t_idx, iou): every pair, save (keypoints, compiled
    kernel) those whose OKS is surely below ``min_iou``."""
    crowd = groups.crowd
    if iou_type == "bbox":
        assert t_xywh is not None and p_xywh is not None
        return p_idx, t_idx, box_iou_pairs(p_xywh[p_idx], t_xywh[t_idx], crowd[t_idx])
    if iou_type == "segm":
        assert t_masks is not None and p_masks is not None
        if isinstance(p_masks, Runs) and isinstance(t_masks, Runs):
            return p_idx, t_idx, run_iou_pairs(p_masks, t_masks, crowd, p_idx, t_idx)
        assert isinstance(p_masks, list) and isinstance(t_masks, list)
        kg = len(groups.class_labels)  # groups are image * kg + class (kg = 1 when classes are pooled)
        return p_idx, t_idx, segm_iou_pairs(p_masks, t_masks, groups.pred.group // kg, groups.truth.group // kg,
                                            crowd, p_idx, t_idx)
    assert sigmas is not None and t_xywh is not None
    g_kp = _keypoints(truth, "truth")  # whole columns, read through the rows (no copies)
    d_kp = _keypoints(pred, "pred")
    got = {side: kp.shape[1] for side, kp in (("truth", g_kp), ("pred", d_kp)) if len(kp)}  # an empty side: any K
    if any(k != len(sigmas) for k in got.values()):
        raise KeypointSigmasError(
            f"annotations.keypoints: must have {len(sigmas)} keypoints (one per sigma), got "
            f"{', '.join(f'{side} {k}' for side, k in got.items())}. Pass kpt_sigmas"
        )
    kept, oks = oks_pairs(d_kp, g_kp, t_xywh, groups.truth.area, sigmas, p_idx, t_idx, min_iou, groups.pred.row,
                          groups.truth.row)
    return (p_idx, t_idx, oks) if len(kept) == len(p_idx) else (p_idx[kept], t_idx[kept], oks)
