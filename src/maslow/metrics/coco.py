"""COCO evaluation (box, mask, Boundary IoU, oriented-box and keypoint mAP/mAR), bit-identical to pycocotools 2.0.11
(Boundary IoU: to the boundary-iou-api; oriented boxes: to hotcoco's ``"obb"``), with per-object matches.

Glossary (pycocotools' terms, as used here):

- *T, R, K, A, M*: IoU thresholds, recall thresholds, classes, area ranges, maxDets values; the raw arrays
  ``precision`` (T, R, K, A, M), ``recall`` (T, K, A, M) and ``scores`` (T, R, K, A, M) are pycocotools'
  ``COCOeval.eval`` arrays cell for cell, ``-1`` included (a class with no non-ignored truth object in an area
  range). The named fields use ``nan`` where pycocotools prints ``-1``.
- *K axis*: classes sorted by COCO category id (``ClassDef.id``) when every class has one, else schema order;
  ``class_names[k]`` and ``class_labels[k]`` (the schema label) name row k. Predictions are matched to truth
  classes by name; predictions of classes absent from ``truth.schema`` are not evaluated (as pycocotools
  drops category ids absent from the ground truth).
- *images*: ``pred`` must share ``truth``'s images table. Image order (which breaks score ties between
  images) is ``images.extra["coco_id"]`` sorted, else row order; within an image, row order is file order.
- *crowd*: ``annotations.iscrowd`` truth objects are ignored; a prediction matched to one is neither a TP nor
  an FP; IoU with a crowd region is intersection over the prediction's area. A COCO ``ignore`` flag is not
  used (pycocotools overwrites it with ``iscrowd``).
- *truth area* (for area ranges): the COCO ``area`` field, kept by the reader in
  ``annotations.extra["area"]``; where absent, the mask pixel count (segm) or box ``w * h`` (bbox, keypoints).
- *prediction area*: ``pred_area="geometry"`` (default) uses the area of the geometry evaluated: box ``w * h``
  (bbox), mask pixel count (segm), keypoint extent (keypoints), which is what pycocotools' ``loadRes`` computes
  for a results file that carries only that geometry. ``pred_area="box"`` uses box ``w * h``: what ``loadRes``
  does whenever the first result carries a ``bbox`` (segm results written by Detectron2 do), so use it to
  reproduce pycocotools on such a file.
- *boundary*: Boundary IoU (Cheng et al., CVPR 2021) as the official boundary-iou-api's COCOeval: segm's masks,
  areas and matching, the IoU of a pair ``min(mask IoU, IoU of the two boundaries)`` (a boundary: the mask minus
  its erosion by ``boundary_dilation`` times the image diagonal), a crowd region's the mask IoU alone
  (``metrics._boundary``).
- *obb*: oriented (rotated) boxes, matched by the IoU of the quadrilaterals (``metrics._obb``): an annotation's
  4-point polygon, else its box turned by CVAT's or Label Studio's rotation, else its box; truth areas as bbox
  (the ``area`` field, else the quadrilateral's), a prediction's its quadrilateral's. hotcoco's ``obb``
  evaluation's arrays cell for cell (pycocotools has none).
- *keypoints*: truth objects with no labelled keypoint (``num_keypoints == 0``; ``extra["num_keypoints"]``
  when the reader kept it, else the count of ``v > 0``) are ignored; OKS uses ``kpt_sigmas`` (COCO's 17 by
  default) and the truth ``area``.
- *summary*: pycocotools' 12 stats (10 for keypoints) exactly; AP always reads maxDets = 100 (20 for
  keypoints), so a ladder without it gives ``nan``; the other stats read ``max_dets[0..2]`` (sorted), so
  ``mar_1``/``mar_10``/``mar_100`` are AR at the first, second and third maxDets value (``stat_max_dets`` says
  which; ``ar_by_max_dets`` holds AR keyed by the maxDets itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from maslow._native import empty, load
from maslow.core.dataset import Dataset
from maslow.core.obb import quad_areas
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.metrics import _boundary, _obb
from maslow.metrics import _prepare as P
from maslow.metrics._accumulate import accumulate
from maslow.metrics._iou import (
    COCO_KEYPOINT_SIGMAS,
    box_areas,
    boxes,
    check_pred_keypoints,
    pair_ious,
    pairs_with_box_ious,
    pred_areas,
    pred_box_rows,
    segm_masks,
    segm_pred_blocks,
    truth_areas,
)
from maslow.metrics._match import Matches, match
from maslow.metrics._result import MapResult, MatchTable, summarize
from maslow.metrics._segm import Runs

IOU_TYPES = ("bbox", "segm", "keypoints", "boundary", "obb")
DEFAULT_AREA_RANGES: Mapping[str, tuple[float, float]] = {
    "all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2),
}
KEYPOINT_AREA_RANGES: Mapping[str, tuple[float, float]] = {
    "all": (0.0, 1e5**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2),
}


class _Params(NamedTuple):
    iou_type: str
    iou_thresholds: FloatArray
    recall_thresholds: FloatArray
    max_dets: tuple[int, ...]
    area_names: tuple[str, ...]
    area_ranges: FloatArray
    use_cats: bool
    kpt_sigmas: FloatArray | None
    pred_area: str
    boundary_dilation: float = _boundary.DEFAULT_DILATION  # iou_type "boundary": fraction of the image diagonal


def _params(iou_type: str, iou_thresholds: Sequence[float] | FloatArray | None,
            recall_thresholds: Sequence[float] | FloatArray | None, max_dets: Sequence[int] | int | None,
            area_ranges: Mapping[str, tuple[float, float]] | None, use_cats: bool,
            kpt_sigmas: Sequence[float] | FloatArray | None, pred_area: str,
            boundary_dilation: float = _boundary.DEFAULT_DILATION) -> _Params:
    if iou_type not in IOU_TYPES:
        raise ValueError(f"coco_map: iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
    dilation = _boundary.check_ratio(boundary_dilation)
    if pred_area not in ("geometry", "box"):
        raise ValueError(f"coco_map: pred_area must be 'geometry' or 'box', got {pred_area!r}")
    # the default grids are built as pycocotools builds them (float64 linspace: 0.9 is 0.8999999999999999)
    iou = (np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
           if iou_thresholds is None else np.asarray(iou_thresholds, dtype=np.float64).reshape(-1))
    rec = (np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
           if recall_thresholds is None else np.asarray(recall_thresholds, dtype=np.float64).reshape(-1))
    for name, arr in (("iou_thresholds", iou), ("recall_thresholds", rec)):
        if not len(arr) or not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"coco_map: {name} must be a non-empty list of numbers in [0, 1], got {arr.tolist()}")
    dets = (20,) if max_dets is None and iou_type == "keypoints" else (1, 10, 100) if max_dets is None else max_dets
    dets_a = np.atleast_1d(np.asarray(dets, dtype=object)).reshape(-1)
    ints = [isinstance(d, (int, np.integer)) or (isinstance(d, (float, np.floating)) and float(d).is_integer())
            for d in dets_a.tolist()]
    if not len(dets_a) or not all(ints) or min(int(d) for d in dets_a.tolist()) < 1:
        raise ValueError(f"coco_map: max_dets must be positive integers, got {dets_a.tolist()}")
    dets_t = tuple(sorted(int(d) for d in dets_a.tolist()))
    ranges = dict(area_ranges) if area_ranges is not None else dict(
        KEYPOINT_AREA_RANGES if iou_type == "keypoints" else DEFAULT_AREA_RANGES)
    if not ranges:
        raise ValueError("coco_map: area_ranges must name at least one range, got {}")
    for name, v in ranges.items():
        if np.shape(v) != (2,):
            raise ValueError(f"coco_map: area_ranges[{name!r}] must be (lo, hi), got {v!r}")
    rng = np.asarray([tuple(map(float, v)) for v in ranges.values()], dtype=np.float64).reshape(-1, 2)
    if iou_type == "keypoints" and not use_cats:
        raise ValueError("coco_map: use_cats must be True for iou_type 'keypoints', got False (pycocotools computes "
                         "no OKS in class-agnostic mode, so nothing would match)")
    sig = None
    if iou_type == "keypoints":
        sig = COCO_KEYPOINT_SIGMAS if kpt_sigmas is None else np.asarray(kpt_sigmas, dtype=np.float64).reshape(-1)
    return _Params(iou_type, iou, rec, dets_t, tuple(ranges), rng, bool(use_cats), sig, pred_area, dilation)


class _Evaluation(NamedTuple):
    params: _Params
    groups: P.Groups
    p_idx: IntArray
    t_idx: IntArray
    iou: FloatArray
    matches: Matches
    truth_ignored: np.ndarray
    pred_out: np.ndarray
    precision: FloatArray
    recall: FloatArray
    scores: FloatArray


def _pair_ious(truth: Dataset, pred: Dataset, groups: P.Groups, p: _Params
               ) -> tuple[P.Groups, IntArray, IntArray, FloatArray]:
    """The candidate (prediction, truth) pairs of ``groups`` and their IoU (OKS, boundary IoU), pairs surely below
    every threshold left out, and ``groups`` with the objects' areas; the geometry is freed on return (a lower
    peak for what follows). Shared by the COCO and LVIS evaluations."""
    if p.iou_type == "obb":
        return _obb_pair_ious(truth, pred, groups, p)
    t_masks = p_masks = t_xywh = p_xywh = p_seg_area = None
    fused = None
    boundary = p.iou_type == "boundary"  # segm's masks, areas and mask IoUs, then min(mask IoU, boundary IoU)
    geometry = "segm" if boundary else p.iou_type
    if boundary:
        _boundary.check_geometry(truth, groups.truth.row, "truth")
        _boundary.check_geometry(pred, groups.pred.row, "pred")
    if geometry == "segm":
        t_masks = segm_masks(truth, groups.truth.row, "truth")
        if isinstance(t_masks, Runs):  # the kernel: the predictions' masks a block at a time, pairs and IoUs first
            p_idx, t_idx = P.pairs(groups)
            if boundary:
                p_seg_area, iou = _boundary.pred_blocks(pred, groups.pred.row, t_masks, groups.crowd, p_idx, t_idx,
                                                        areas=p.pred_area != "box", ratio=p.boundary_dilation)
            else:
                p_seg_area, iou = segm_pred_blocks(pred, groups.pred.row, t_masks, groups.crowd, p_idx, t_idx,
                                                   areas=p.pred_area != "box")
            fused = p_idx, t_idx, iou
        else:
            p_masks = segm_masks(pred, groups.pred.row, "pred")
    else:
        t_xywh = boxes(truth, groups.truth.row, "truth")
        if p.iou_type == "keypoints":
            check_pred_keypoints(pred, groups.pred.row)
    p_rows = None  # the compiled kernel reads the prediction boxes in place (no (n, 4) xywh copy)
    if p.iou_type == "bbox" or p.pred_area == "box":
        p_rows = pred_box_rows(pred, groups.pred.row, "pred")
        if p_rows is None:
            p_xywh = boxes(pred, groups.pred.row, "pred")
    groups = P.with_areas(
        groups,
        truth_areas(truth, groups.truth.row, t_masks, t_xywh),
        p_rows[0] if p_rows is not None else p_seg_area if p_seg_area is not None else
        pred_areas(pred, groups.pred.row, geometry, p_masks, p_xywh),
    )
    # the compiled kernels leave out the pairs surely below every threshold (they never match)
    min_iou = float(np.minimum(p.iou_thresholds, 1 - 1e-10).min()) if len(p.iou_thresholds) else -np.inf
    if p.iou_type == "bbox":
        assert t_xywh is not None
        p_src = p_rows[1] if p_rows is not None else p_xywh
        assert p_src is not None
        fused = pairs_with_box_ious(groups, p_src, t_xywh, min_iou)
    if fused is not None:
        p_idx, t_idx, iou = fused
    else:
        p_idx, t_idx = P.pairs(groups)
        p_idx, t_idx, iou = pair_ious(truth, pred, groups, p_idx, t_idx, geometry, p.kpt_sigmas, t_masks, p_masks,
                                      t_xywh, p_xywh, min_iou)
        if boundary:  # pycocotools' RLEs (the kernel's Runs went through _boundary.pred_blocks above)
            assert isinstance(t_masks, list) and isinstance(p_masks, list)
            iou = _boundary.pair_ious(t_masks, p_masks, groups, p_idx, t_idx, iou, p.boundary_dilation)
    return groups, p_idx, t_idx, iou


def _obb_pair_ious(truth: Dataset, pred: Dataset, groups: P.Groups, p: _Params
                   ) -> tuple[P.Groups, IntArray, IntArray, FloatArray]:
    """``_pair_ious`` of oriented boxes (``metrics._obb``); pairs below every threshold left out."""
    t_quads = _obb.corners(truth, groups.truth.row, "truth")
    p_quads = _obb.corners(pred, groups.pred.row, "pred")
    t_own, p_own = quad_areas(t_quads), quad_areas(p_quads)
    p_area = p_own if p.pred_area != "box" else box_areas(boxes(pred, groups.pred.row, "pred"))
    groups = P.with_areas(groups, _obb.truth_areas(truth, groups.truth.row, t_own), p_area)
    p_idx, t_idx = P.pairs(groups)
    iou = _obb.iou_pairs(p_quads, t_quads, p_own, t_own, p_idx, t_idx, groups.crowd)
    min_iou = float(np.minimum(p.iou_thresholds, 1 - 1e-10).min()) if len(p.iou_thresholds) else -np.inf
    keep = iou >= min_iou
    if not keep.all():
        p_idx, t_idx, iou = p_idx[keep], t_idx[keep], iou[keep]
    return groups, p_idx, t_idx, iou


def _evaluate(truth: Dataset, pred: Dataset, p: _Params, *, keep_pairs: bool = False) -> _Evaluation:
    """Match and accumulate. ``keep_pairs``: keep the pair arrays (the match table reads them); without it they
    are dropped before the accumulation, which lowers the peak memory by their size."""
    groups = P.build_groups(truth, pred, use_cats=p.use_cats, max_det=p.max_dets[-1], iou_type=p.iou_type)
    groups, p_idx, t_idx, iou = _pair_ious(truth, pred, groups, p)
    lo, hi = p.area_ranges[:, 0:1], p.area_ranges[:, 1:2]
    ta, pa = groups.truth.area[None, :], groups.pred.area[None, :]
    truth_ignored = groups.ignore[None, :] | (ta < lo) | (ta > hi)
    pred_out = (pa < lo) | (pa > hi)
    a_match = p.area_names.index("all") if "all" in p.area_names else 0
    matches = match(iou, p_idx, t_idx, groups.rank, p.iou_thresholds, truth_ignored, groups.crowd,
                    len(groups.truth.row), a_match)
    n_k = len(groups.class_labels)
    n_pos = np.zeros((n_k, len(p.area_names)), np.int64)
    for a in range(len(p.area_names)):
        n_pos[:, a] = np.bincount(groups.truth.k[~truth_ignored[a]], minlength=n_k)
    m_tp, m_ignored = _match_flags(matches, t_idx, truth_ignored, groups.id_zero)
    if not keep_pairs:
        p_idx = t_idx = np.zeros(0, np.int64)
        iou = np.zeros(0)
    precision, recall, scores = accumulate(
        k=groups.pred.k, rank=groups.rank, acc_order=groups.acc_order, score=groups.score, pred_out=pred_out,
        match_t=matches.t, match_a=matches.a, match_pred=matches.pred, match_tp=m_tp, match_ignored=m_ignored,
        n_pos=n_pos, n_thresholds=len(p.iou_thresholds), n_classes=n_k, recall_thresholds=p.recall_thresholds,
        max_dets=p.max_dets,
    )
    return _Evaluation(p, groups, p_idx, t_idx, iou, matches, truth_ignored, pred_out, precision, recall, scores)


def _match_flags(matches: Matches, t_idx: IntArray, truth_ignored: BoolArray, id_zero: BoolArray
                 ) -> tuple[BoolArray, BoolArray]:
    """(E,) true positive (truth object not ignored, COCO id not 0) and ignored flags of every match entry."""
    native = load("cocoeval")
    if native is None or len(t_idx) >= 2**31 - 1 or truth_ignored.shape[0] >= 2**15:
        g = t_idx[matches.pair]
        m_ignored = truth_ignored[matches.a, g]
        return ~id_zero[g] & ~m_ignored, m_ignored
    n_e = len(matches.pair)
    tp, ignored = np.empty(n_e, bool), np.empty(n_e, bool)
    native.match_flags(
        np.ascontiguousarray(matches.pair, np.int32), np.ascontiguousarray(matches.a, np.int16),
        np.ascontiguousarray(t_idx, np.int64), np.ascontiguousarray(truth_ignored, bool).view(np.uint8),
        np.ascontiguousarray(id_zero, bool).view(np.uint8), tp.view(np.uint8), ignored.view(np.uint8),
    )
    return tp, ignored


def _result(truth: Dataset, ev: _Evaluation) -> MapResult:
    p = ev.params
    labels = ev.groups.class_labels
    names = tuple(truth.schema.names[i] for i in labels.tolist()) if p.use_cats else ("all",)
    return summarize(
        iou_type=p.iou_type, precision=ev.precision, recall=ev.recall, scores=ev.scores,
        iou_thresholds=p.iou_thresholds, recall_thresholds=p.recall_thresholds, max_dets=p.max_dets,
        area_names=p.area_names, area_ranges=p.area_ranges, class_names=names, class_labels=labels,
        boundary_dilation=p.boundary_dilation,
    )


def coco_map(
    truth: Dataset,
    pred: Dataset,
    *,
    iou_type: str = "bbox",
    iou_thresholds: Sequence[float] | FloatArray | None = None,
    recall_thresholds: Sequence[float] | FloatArray | None = None,
    max_dets: Sequence[int] | int | None = None,
    area_ranges: Mapping[str, tuple[float, float]] | None = None,
    use_cats: bool = True,
    kpt_sigmas: Sequence[float] | FloatArray | None = None,
    pred_area: str = "geometry",
    boundary_dilation: float = 0.02,
) -> MapResult:
    """COCO mAP/mAR of predictions against truth, bit-identical to pycocotools 2.0.11 (see module docstring).

    Args:
        truth: ground truth; ``annotations.iscrowd`` marks crowd regions.
        pred: predictions on the same images table, with ``annotations.score``.
        iou_type: ``"bbox"``, ``"segm"`` (polygons or RLE masks), ``"keypoints"`` (OKS), ``"boundary"``
            (Boundary IoU of the masks: the boundary-iou-api's, see ``metrics._boundary``) or ``"obb"``
            (oriented boxes: 4-point polygons or turned boxes, see ``metrics._obb``).
        iou_thresholds: (T,) IoU thresholds; default ``np.linspace(.5, .95, 10)`` as pycocotools.
        recall_thresholds: (R,) recall thresholds; default ``np.linspace(0, 1, 101)``.
        max_dets: maxDets ladder, per image and class (sorted; one number: a ladder of one); default
            (1, 10, 100), (20,) for keypoints.
        area_ranges: name -> (lo, hi), closed on both ends; default COCO's all/small/medium/large
            (all/medium/large for keypoints).
        use_cats: False pools all classes (class-agnostic proposals evaluation).
        kpt_sigmas: (n_keypoints,) OKS sigmas; default COCO's 17 person sigmas.
        pred_area: ``"geometry"`` or ``"box"``: which prediction area the area ranges see (module docstring).
        boundary_dilation: ``iou_type="boundary"``: the boundary's width as a fraction of the image diagonal
            (rounded to whole pixels, at least 1).

    Returns:
        MapResult with the summary stats as named fields and pycocotools' full arrays.

    Raises:
        InvalidDatasetError: predictions without scores or on another images table, or geometry missing for
            ``iou_type``.
        ValueError: an option out of range.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(4, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> coco_map(truth, pred).map_50
        1.0
    """
    p = _params(iou_type, iou_thresholds, recall_thresholds, max_dets, area_ranges, use_cats, kpt_sigmas, pred_area,
                boundary_dilation)
    return _result(truth, _evaluate(truth, pred, p))


def coco_matches(
    truth: Dataset,
    pred: Dataset,
    *,
    iou_type: str = "bbox",
    iou_thresholds: Sequence[float] | FloatArray | None = None,
    recall_thresholds: Sequence[float] | FloatArray | None = None,
    max_dets: Sequence[int] | int | None = None,
    area_ranges: Mapping[str, tuple[float, float]] | None = None,
    use_cats: bool = True,
    kpt_sigmas: Sequence[float] | FloatArray | None = None,
    pred_area: str = "geometry",
    boundary_dilation: float = 0.02,
) -> MatchTable:
    """The per-object match table of a COCO evaluation (same options as ``coco_map``), with its result.

    For every truth object and every prediction, at each IoU threshold: its partner row in the other dataset
    (-1: none), the IoU (or OKS) with it, and its status (``MatchTable.STATUS``: tp, fp, fn, ignored,
    skipped), as pycocotools decides them at the area range ``"all"`` (else the first range) and the largest
    maxDets. ``MatchTable.result`` is the ``MapResult`` of the same evaluation.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(4, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> table = coco_matches(truth, pred)
        >>> bool((table.pred_status[:, 0] == table.TP).sum() == (~truth.annotations.iscrowd).sum())
        True
    """
    p = _params(iou_type, iou_thresholds, recall_thresholds, max_dets, area_ranges, use_cats, kpt_sigmas, pred_area,
                boundary_dilation)
    ev = _evaluate(truth, pred, p, keep_pairs=True)
    return _match_table(truth, pred, ev, _result(truth, ev))


def _match_table(truth: Dataset, pred: Dataset, ev: _Evaluation, result: MapResult) -> MatchTable:
    n_t = len(ev.params.iou_thresholds)
    a = ev.params.area_names.index("all") if "all" in ev.params.area_names else 0
    columns = _native_table(ev, a, n_t, pred.n_annotations, truth.n_annotations)
    if columns is None:
        columns = _numpy_table(ev, a, n_t, pred.n_annotations, truth.n_annotations)
    return MatchTable(iou_thresholds=ev.params.iou_thresholds, area_range=ev.params.area_names[a],
                      max_dets=ev.params.max_dets[-1], **columns, result=result)


def _native_table(ev: _Evaluation, a: int, n_t: int, n_pred: int, n_truth: int) -> dict[str, np.ndarray] | None:
    """``_numpy_table`` by the compiled kernel (each cell written once, row after row); None without it."""
    native = load("cocoeval")
    g, m = ev.groups, ev.matches
    if native is None or n_pred >= 2**31 - 1 or len(ev.p_idx) >= 2**31 - 1:
        return None
    cols = {"pred_match": empty((n_pred, n_t), np.int64), "pred_iou": empty((n_pred, n_t), np.float64),
            "pred_status": empty((n_pred, n_t), np.int8), "truth_match": np.empty((n_truth, n_t), np.int64),
            "truth_iou": np.empty((n_truth, n_t)), "truth_status": np.empty((n_truth, n_t), np.int8)}

    def c(x: np.ndarray, dtype: Any) -> np.ndarray:
        return np.ascontiguousarray(x, dtype)

    native.match_table(
        c(g.pred.row, np.int64), c(ev.pred_out[a], bool), c(m.t, np.int16), c(m.a, np.int16),
        c(m.pred, np.int32), c(m.pair, np.int32), c(ev.t_idx, np.int64), c(ev.iou, np.float64),
        c(g.truth.row, np.int64), c(ev.truth_ignored[a], bool), c(g.id_zero, bool),
        c(m.truth_partner, np.int32), c(m.truth_pair, np.int32), *cols.values(), a, n_t)
    return cols


def _numpy_table(ev: _Evaluation, a: int, n_t: int, n_pred: int, n_truth: int) -> dict[str, np.ndarray]:
    """The match table's columns at area range ``a`` (the reference for ``_native_table``)."""
    g, m = ev.groups, ev.matches
    pred_match = np.full((n_pred, n_t), -1, np.int64)
    pred_iou = np.full((n_pred, n_t), np.nan)
    pred_status = np.empty((n_pred, n_t), np.int8)  # filled below: SKIPPED, FP or IGNORED, then the matches
    truth_match = np.full((n_truth, n_t), -1, np.int64)
    truth_iou = np.full((n_truth, n_t), np.nan)
    truth_status = np.full((n_truth, n_t), MatchTable.FN, np.int8)

    # predictions: unmatched ones are FP, or ignored when outside the area range
    rows = g.pred.row
    out = ev.pred_out[a]
    first_status = np.full(n_pred, MatchTable.SKIPPED, np.int8)
    first_status[rows] = np.where(out, MatchTable.IGNORED, MatchTable.FP)
    pred_status[:] = first_status[:, None]
    at = m.a == a
    e_t, e_pred, e_pair = m.t[at], m.pred[at], m.pair[at]
    e_gt = ev.t_idx[e_pair]
    e_rows = rows[e_pred]
    e_ign = ev.truth_ignored[a, e_gt]
    e_id = ~g.id_zero[e_gt]
    pred_match[e_rows, e_t] = g.truth.row[e_gt]
    pred_iou[e_rows, e_t] = ev.iou[e_pair]
    pred_status[e_rows, e_t] = np.where(
        e_ign | (~e_id & out[e_pred]), MatchTable.IGNORED, np.where(e_id, MatchTable.TP, MatchTable.FP))

    # truth: matched -> TP, ignored (crowd, outside the range, no keypoints) -> ignored, else FN
    t_rows = g.truth.row
    tp_partner = m.truth_partner.T  # (n_truth_eval, T) prediction index
    matched = tp_partner >= 0
    if len(g.pred.row):  # else nothing was evaluated on the prediction side: every partner stays -1
        truth_match[t_rows] = np.where(matched, g.pred.row[np.where(matched, tp_partner, 0)], -1)
    ignored = ev.truth_ignored[a]
    truth_status[t_rows] = np.where(ignored[:, None], MatchTable.IGNORED,
                                    np.where(matched, MatchTable.TP, MatchTable.FN)).astype(np.int8)
    # IoU of each truth object with its partner (the pair of its last match)
    if len(ev.p_idx):
        truth_iou[t_rows] = np.where(matched, ev.iou[np.where(matched, m.truth_pair.T, 0)], np.nan)
    return {"pred_match": pred_match, "pred_iou": pred_iou, "pred_status": pred_status, "truth_match": truth_match,
            "truth_iou": truth_iou, "truth_status": truth_status}
