"""Preparation of a COCO evaluation: evaluation order of classes and images, groups, areas, geometry.

Everything here reproduces how pycocotools 2.0.11 orders and reads its input, so that the matching and the
accumulation downstream see the same sequences:

- classes (the K axis) are sorted by their COCO category id (``ClassDef.id``) when every class has one, else
  they keep the schema order; images are sorted by ``images.extra["coco_id"]`` when present (string ids as
  strings: ``"10"`` before ``"9"``, as ``sorted`` orders them), else row order;
- a *group* is one (image, class) pair (one image when ``use_cats`` is False); truth objects of a group keep
  their row order (the file order), grouped by class first when ``use_cats`` is False;
- predictions of a group are sorted by score, highest first, ties in row order (a stable sort, as
  pycocotools' ``argsort(-score, kind="mergesort")``), and only the first ``max(max_dets)`` are evaluated.

Boxes: COCO boxes are ``[x, y, w, h]``; maslow stores xyxy. pycocotools computes box IoU and box area from
``w`` and ``h`` as read, and ``x2 = x + w`` (rounded) does not always give back ``w`` exactly, so the COCO
readers keep the boxes they read in ``annotations.extra["coco_bbox"]`` (``(n, 4)`` xywh) where that happens
(``maslow.core.boxes.as_read_xywh``). A row of it is used only when it is consistent with the xyxy box
(``x1 == x``, ``y1 == y``, ``x + w == x2``, ``y + h == y2``); otherwise (no such column, or a box edited since)
``w = x2 - x1`` and ``h = y2 - y1``.
"""

from __future__ import annotations

from typing import NamedTuple, NoReturn

import numpy as np

from maslow._native import empty, load
from maslow.core import boxes as B
from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError

COCO_BBOX_COLUMN = B.COCO_BBOX
AREA_COLUMN = "area"


class Side(NamedTuple):
    """The evaluated rows of one dataset, sorted by group (truth: file order; predictions: score order)."""

    row: IntArray  # (n,) annotation row in the dataset
    group: IntArray  # (n,) image position * n_groups_per_image + class position
    k: IntArray  # (n,) class position on the K axis (0 when use_cats is False); int32 from the kernel
    area: FloatArray  # (n,) area used for the area ranges


class Groups(NamedTuple):
    """Truth and prediction rows with their groups; predictions truncated to the largest maxDets."""

    truth: Side
    pred: Side
    rank: IntArray  # (n_pred,) position of each prediction inside its group (score order); int32 from the kernel
    acc_order: IntArray  # (n_pred,) by (class, -score, image, rank): the accumulation order; int32 from the kernel
    score: FloatArray  # (n_pred,)
    crowd: BoolArray  # (n_truth,)
    ignore: BoolArray  # (n_truth,) crowd, or (keypoints) no labelled keypoint
    id_zero: BoolArray  # (n_truth,) COCO annotation id 0: pycocotools records its matches as "no match"
    class_labels: IntArray  # (K,) truth schema label of each K position (or [-1] when use_cats is False)


def class_order(ds: Dataset) -> IntArray:
    """Schema labels in evaluation order: sorted by COCO category id when every class has one."""
    ids = [c.id for c in ds.schema.classes]
    if ids and all(i is not None for i in ids):
        return np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    return np.arange(len(ids), dtype=np.int64)


def image_positions(ds: Dataset) -> IntArray:
    """(m,) position of each image in evaluation order (sorted ``coco_id`` when present, else row order)."""
    m = ds.n_images
    ids = ds.images.extra.get("coco_id")
    if ids is None:
        return np.arange(m, dtype=np.int64)
    arr = np.asarray(ids)
    vals = arr.tolist() if arr.dtype == object else []
    if vals and all(type(v) is str for v in vals):  # string ids: as strings ("10" before "9"), as pycocotools'
        order = np.asarray(sorted(range(m), key=vals.__getitem__), np.int64)  # sorted(imgIds) orders them
    else:
        if arr.dtype == object:
            try:
                arr = arr.astype(np.int64)
            except (TypeError, ValueError):
                arr = arr.astype(str)
        order = np.argsort(arr, kind="stable")
    pos = np.empty(m, np.int64)
    pos[order] = np.arange(m, dtype=np.int64)
    return pos


def _float_column(ann: Annotations, name: str, width: int | None = None) -> FloatArray | None:
    col = ann.extra.get(name)
    if col is None:
        return None
    n = len(ann)
    if col.dtype != object:
        out = np.asarray(col, dtype=np.float64)
    else:
        shape = (n,) if width is None else (n, width)
        out = np.full(shape, np.nan)
        for i, v in enumerate(col.tolist()):
            if v is not None:
                out[i] = v
    if out.shape != ((n,) if width is None else (n, width)):
        raise InvalidDatasetError(f"annotations.extra[{name!r}]: shape must be ({n}{'' if width is None else f', {width}'}),"
                                  f" got {out.shape}")
    return out


def coco_xywh(ann: Annotations, rows: IntArray) -> FloatArray:
    """(len(rows), 4) boxes as pycocotools reads them: ``[x, y, w, h]`` (see the module docstring)."""
    assert ann.box is not None
    box = np.take(ann.box, rows, axis=0)  # take: much faster than fancy indexing for (n, 4) rows
    raw_all = _float_column(ann, COCO_BBOX_COLUMN, 4)
    return B.as_read_xywh(box, None if raw_all is None else np.take(raw_all, rows, axis=0))[0]


def _need(cond: BoolArray, rows: IntArray, where: str, what: str) -> None:
    bad = np.flatnonzero(~cond)
    if bad.size:
        raise InvalidDatasetError(f"{where} row {rows[bad[0]]}: {what} ({bad.size} rows)")


def build_groups(
    truth: Dataset, pred: Dataset, *, use_cats: bool, max_det: int, iou_type: str
) -> Groups:
    """Group, order and truncate the rows of both datasets as pycocotools does (areas filled by the caller)."""
    if pred.n_images != truth.n_images:
        raise InvalidDatasetError(
            f"pred.images: must be the images table of truth ({truth.n_images} rows), got {pred.n_images} rows. "
            "Read predictions with like=truth"
        )
    if pred.images is not truth.images and not np.array_equal(pred.images.path, truth.images.path):
        i = int(np.flatnonzero(pred.images.path != truth.images.path)[0])
        raise InvalidDatasetError(
            f"pred.images.path row {i}: must equal truth's ({truth.images.path[i]!r}), got {pred.images.path[i]!r}"
        )
    order = class_order(truth)
    n_cls = len(order)
    k_of_label = np.empty(n_cls, np.int64)
    k_of_label[order] = np.arange(n_cls, dtype=np.int64)
    if pred.schema.names == truth.schema.names:
        pred_k_of_label = k_of_label
    else:
        known = {name: k_of_label[i] for i, name in enumerate(truth.schema.names)}
        pred_k_of_label = np.asarray([known.get(name, -1) for name in pred.schema.names], dtype=np.int64)
    img_pos = image_positions(truth)
    kg = n_cls if use_cats else 1
    ta, pa = truth.annotations, pred.annotations
    if pa.score is None:
        raise InvalidDatasetError("pred.annotations.score: predictions must carry scores, got no score column")

    t_rows = np.arange(len(ta), dtype=np.int64)
    t_k = k_of_label[ta.label] if len(ta) else np.zeros(0, np.int64)
    t_img = img_pos[ta.image]
    t_group = t_img * kg + (t_k if use_cats else 0)
    t_order = packed_order(t_group, t_k) if len(ta) else np.zeros(0, np.int64)
    if t_order is None:  # keys too wide to pack
        t_order = np.lexsort((t_rows, t_k, t_group))

    # the compiled kernel reads classes and images through the lookup tables (unknown classes left out)
    fused = _native_orders(pa.score, pa.image, pa.label, img_pos, pred_k_of_label, n_cls, max_det) if use_cats \
        else None
    if fused is None:
        p_k_all = pred_k_of_label[pa.label] if len(pa) else np.zeros(0, np.int64)
        every = not len(p_k_all) or int(p_k_all.min()) >= 0  # every prediction of a truth class: no selection
        known_rows = None if every else np.flatnonzero(p_k_all >= 0)
        p_score = pa.score if known_rows is None else pa.score[known_rows]
        nan = np.flatnonzero(np.isnan(p_score))
        if nan.size:
            _nan_score(int(nan[0] if known_rows is None else known_rows[nan[0]]), p_score)
        p_k = p_k_all if known_rows is None else p_k_all[known_rows]
        p_img = img_pos[pa.image if known_rows is None else pa.image[known_rows]]
        p_group = p_img * kg + (p_k if use_cats else 0)
        p_order, acc_order = _pred_orders(p_score, p_img, p_k, p_group, use_cats)
        sel, kept_group, rank, kept_k, kept_score, acc = _kept(p_order, acc_order, p_group, p_k, p_score, max_det)
        p_r = sel if known_rows is None else known_rows[sel]
    else:
        p_r, kept_group, rank, kept_k, kept_score, acc = fused

    t_r = t_rows[t_order]
    crowd = ta.iscrowd[t_r] if ta.iscrowd is not None else np.zeros(len(t_r), bool)
    ignore = crowd.copy()
    if iou_type == "keypoints":
        nk = _float_column(ta, "num_keypoints")
        if ta.keypoints is None:
            n_kp = np.zeros(len(t_r))
        else:
            with np.errstate(invalid="ignore"):
                n_kp = np.sum(ta.keypoints[t_r, :, 2] > 0, axis=1).astype(np.float64)
        if nk is not None:
            given = nk[t_r]
            n_kp = np.where(np.isnan(given), n_kp, given)
        ignore |= n_kp == 0
    coco_ids = ta.extra.get("coco_id")
    if coco_ids is not None and len(t_r):
        ids = np.asarray(coco_ids)[t_r]
        if ids.dtype.kind in "iu":
            id_zero = ids == 0
        else:
            id_zero = np.asarray([v is not None and not isinstance(v, str) and v == 0 for v in ids.tolist()], bool)
    else:
        id_zero = np.zeros(len(t_r), bool)
    empty = np.zeros(0)
    return Groups(
        truth=Side(row=t_r, group=t_group[t_order], k=t_k[t_order] if use_cats else np.zeros(len(t_r), np.int64),
                   area=empty),
        pred=Side(row=p_r, group=kept_group, k=kept_k if use_cats else np.zeros(len(p_r), np.int64), area=empty),
        rank=rank,
        acc_order=acc,
        score=kept_score,
        crowd=np.asarray(crowd, bool),
        ignore=ignore,
        id_zero=id_zero,
        class_labels=order if use_cats else np.full(1, -1, np.int64),
    )


def _nan_score(row: int, scores: FloatArray) -> NoReturn:
    raise InvalidDatasetError(
        f"pred.annotations.score row {row}: must be a number, got nan ({int(np.isnan(scores).sum())} rows)")


def _native_orders(score: FloatArray, image: IntArray, label: IntArray, img_pos: IntArray, k_of_label: IntArray,
                   n_k: int, max_det: int) -> tuple[np.ndarray, ...] | None:
    """``_pred_orders`` then ``_kept`` (use_cats) by the compiled kernel: a radix sort of the scores and counting
    sorts by image, group and class, no comparison sort. Rows of a class the truth lacks (``k_of_label`` -1) are
    left out. Returns the kept rows, their group, rank, class and score, and the accumulation order; None without
    the kernel or past its int32 limits."""
    native = load("cocoeval")
    n, n_img = len(score), len(img_pos)
    if native is None or n >= 2**31 - 1 or n_k < 1 or n_img * n_k >= 2**31 - 1:
        return None
    # two allocations in huge pages (``empty``: fewer page faults): the rows, groups and scores (int64, float64),
    # and the ranks, classes and accumulation order (int32: positions < n < 2**31)
    wide, narrow = empty((3, n), np.int64), empty((3, n), np.int32)
    sel, group, kept_score = wide[0], wide[1], wide[2].view(np.float64)
    rank, kk, acc = narrow
    kept = native.pred_orders(
        np.ascontiguousarray(score, np.float64), np.ascontiguousarray(image, np.int64),
        np.ascontiguousarray(label, np.int64), np.ascontiguousarray(img_pos, np.int64),
        np.ascontiguousarray(k_of_label, np.int64), n_img, n_k, int(max_det), sel, group, rank, kk, kept_score, acc)
    if kept < 0:  # a NaN score: its row
        _nan_score(-1 - kept, score[np.asarray(k_of_label)[label] >= 0])
    return sel[:kept], group[:kept], rank[:kept], kk[:kept], kept_score[:kept], acc[:kept]


def _kept(p_order: IntArray, acc_order: IntArray, group: IntArray, k: IntArray, score: FloatArray, max_det: int
          ) -> tuple[IntArray, IntArray, IntArray, IntArray, FloatArray, IntArray]:
    """The predictions evaluated, in group order: the first ``max_det`` of each group. Returns their indices
    (into the arguments), group, rank in the group, class and score, and the accumulation order as positions
    among them."""
    n_p = len(p_order)
    native = load("cocoeval")
    if native is not None:
        out_i = [np.empty(n_p, np.int64) for _ in range(5)]
        out_score = np.empty(n_p)
        n = native.kept_predictions(
            np.ascontiguousarray(p_order, np.int64), np.ascontiguousarray(acc_order, np.int64),
            np.ascontiguousarray(group, np.int64), np.ascontiguousarray(k, np.int64),
            np.ascontiguousarray(score, np.float64), int(max_det), *out_i, out_score)
        sel, g, rank, kk, acc = (a[:n] for a in out_i)
        return sel, g, rank, kk, out_score[:n], acc
    p_group = group[p_order]
    first = np.flatnonzero(np.r_[True, p_group[1:] != p_group[:-1]]) if n_p else np.zeros(0, np.int64)
    starts = np.repeat(first, np.diff(np.r_[first, n_p]))
    rank = np.arange(n_p, dtype=np.int64) - starts
    keep = rank < max_det
    all_kept = bool(keep.all())
    sel = p_order if all_kept else p_order[keep]
    # the accumulation order, as positions in the kept, group-sorted prediction side
    side_pos = np.full(n_p, -1, np.int64)
    side_pos[sel] = np.arange(len(sel), dtype=np.int64)
    acc = side_pos[acc_order]
    if not all_kept:
        acc = acc[acc >= 0]
        p_group, rank = p_group[keep], rank[keep]
    return sel, p_group, rank, k[sel], score[sel], acc


def packed_order(*columns: IntArray) -> IntArray | None:
    """Row order by non-negative int columns (most significant first), ties by row: ``np.lexsort`` of
    ``(rows, *reversed(columns))`` as one sort of packed int64 keys; None when the keys don't fit in 63 bits."""
    n = len(columns[0]) if columns else 0
    if n == 0:
        return np.zeros(0, np.int64)
    native = load("cocoeval")
    if native is not None and len(columns) <= 4:  # one pass; the row in the low bits (a mask, not a modulo)
        spans, total, row_bits = [], 1, (n - 1).bit_length()
        for c in columns:
            lo, hi = int(c.min()), int(c.max())
            if lo < 0:
                return None
            spans.append(hi + 1)
            total *= hi + 1
        if total << row_bits >= 2**62:
            return None
        key = np.empty(n, np.int64)
        native.pack_keys(tuple(np.ascontiguousarray(c, np.int64) for c in columns), tuple(spans), row_bits, key)
        key.sort()
        key &= (1 << row_bits) - 1
        return key
    key = np.zeros(n, np.int64)
    span = 1
    for c in columns:
        lo, hi = int(c.min()), int(c.max())
        if lo < 0:
            return None
        span *= hi + 1
        if span * n >= 2**62:
            return None
        key *= hi + 1
        key += c
    key *= n
    key += np.arange(n, dtype=np.int64)
    key.sort()  # unique keys: the unstable (vectorised) sort gives the stable order
    return key % n


def _pred_orders(score: FloatArray, img: IntArray, k: IntArray, group: IntArray,
                 use_cats: bool) -> tuple[IntArray, IntArray]:
    """(group, -score, class, row) order and pycocotools' accumulation order (class, -score, image, row)."""
    n = len(score)
    o = np.argsort(-score)
    s_rank = np.empty(n, np.int64)
    native = load("cocoeval")
    if native is not None:
        native.dense_ranks(np.ascontiguousarray(score, np.float64), o, s_rank)
    else:
        s = score[o]
        s_rank[o] = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1 if n else np.zeros(0, np.int64)
    p_order = packed_order(group, s_rank) if use_cats else packed_order(group, s_rank, k)
    acc_order = packed_order(k, s_rank, img) if use_cats else packed_order(s_rank, img, k)
    if p_order is not None and acc_order is not None:
        return p_order, acc_order
    # keys too wide to pack: stable sorts, least significant first; by_score is (-score, image, class, row)
    base = np.argsort(small_ints(k), kind="stable")
    base = base[np.argsort(img[base], kind="stable")]
    by_score = base[np.argsort(-score[base], kind="stable")]
    p_order = by_score[np.argsort(group[by_score], kind="stable")]
    acc_order = by_score[np.argsort(small_ints(k[by_score]), kind="stable")] if use_cats else by_score
    return p_order, acc_order


def pairs(groups: Groups) -> tuple[IntArray, IntArray]:
    """All (prediction, truth) index pairs that share a group, prediction-major, truth in group order."""
    tg, pg = groups.truth.group, groups.pred.group
    n_groups = int(max(tg.max(initial=-1), pg.max(initial=-1))) + 1
    native = load("cocoeval")
    if native is not None:
        b_p, b_t, _ = native.pairs(np.ascontiguousarray(tg, np.int64), np.ascontiguousarray(pg, np.int64), n_groups,
                                   None, None, None)
        return np.frombuffer(b_p, np.int64), np.frombuffer(b_t, np.int64)
    t_count = np.bincount(tg, minlength=n_groups)
    t_start = np.cumsum(t_count) - t_count
    g_start, g_count = t_start[pg], t_count[pg]
    total = int(g_count.sum())
    p_idx = np.repeat(np.arange(len(pg), dtype=np.int64), g_count)
    first = np.cumsum(g_count) - g_count
    offset = np.arange(total, dtype=np.int64) - np.repeat(first, g_count)
    t_idx = np.repeat(g_start, g_count) + offset
    return p_idx, t_idx


def with_areas(groups: Groups, truth_area: FloatArray, pred_area: FloatArray) -> Groups:
    """``groups`` with the area columns set (aligned with the sorted truth and prediction rows)."""
    return groups._replace(truth=groups.truth._replace(area=truth_area), pred=groups.pred._replace(area=pred_area))


def small_ints(a: IntArray) -> np.ndarray:
    """``a`` as int16 when it fits (numpy's stable sort is then a radix sort)."""
    if not len(a) or (a.min() >= -(2**15) and a.max() < 2**15):
        return a.astype(np.int16)
    return a

