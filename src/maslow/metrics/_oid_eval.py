"""The Open Images protocol's steps, vectorised (``openimages.oid_map`` assembles them; its docstring has the rules):
hierarchy expansion of truth, image-level labels and (optionally) detections, the verified-class filter, the two
matching stages of TensorFlow's ``per_image_evaluation.py`` and the AP of each class.

Every row is an *entry*: a (source row, class) pair. A truth box of class ``c`` is one entry of ``c`` and one of each
ancestor of ``c``; a detection is one entry (several with ``expand_pred``). Entries are grouped by (image, class),
so the per-image, per-class loop of the reference becomes one pass over all pairs of a group. As in ``voc_map``, a
detection's best object does not depend on what earlier detections took (the reference takes the ``argmax`` over
all non-group-of objects, taken or not), so stage 1 needs no walk over detections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError
from maslow.metrics import _voc_eval as V
from maslow.metrics._lvis_prepare import category_pairs

GROUP_OF_COLUMN = "is_group_of"
POS_COLUMN = "pos_category_ids"
NEG_COLUMN = "neg_category_ids"
#: TF's ``nms_max_output_boxes``: detections kept per image and class (the best by score)
MAX_PER_IMAGE_CLASS = 10_000


class Tree(NamedTuple):
    """Ancestors and descendants of each class as CSR arrays: class ``c``'s are ``idx[ptr[c]:ptr[c + 1]]``."""

    anc_ptr: IntArray
    anc_idx: IntArray
    desc_ptr: IntArray
    desc_idx: IntArray


def tree(hierarchy: Mapping[int, Sequence[int]] | None, n_cls: int) -> Tree:
    """The CSR form of ``hierarchy`` (class index -> its ancestors, all of them), checked."""
    anc: list[list[int]] = [[] for _ in range(n_cls)]
    if hierarchy is not None:
        if not isinstance(hierarchy, Mapping):
            raise ValueError(f"oid_map: hierarchy must map class indexes to their ancestors (read_hierarchy), "
                             f"got {type(hierarchy).__name__}")
        for c, parents in hierarchy.items():
            ok = isinstance(c, (int, np.integer)) and 0 <= int(c) < n_cls
            if not ok or isinstance(parents, (str, bytes)) or not isinstance(parents, Sequence):
                raise ValueError(f"oid_map: hierarchy[{c!r}]: must be a class index in [0, {n_cls}) mapped to a "
                                 f"sequence of class indexes, got {parents!r}")
            for a in parents:
                if not isinstance(a, (int, np.integer)) or not 0 <= int(a) < n_cls or int(a) == int(c):
                    raise ValueError(f"oid_map: hierarchy[{c!r}]: ancestors must be other class indexes in "
                                     f"[0, {n_cls}), got {a!r}")
            anc[int(c)] = sorted({int(a) for a in parents})
    desc: list[list[int]] = [[] for _ in range(n_cls)]
    for c, parents in enumerate(anc):
        for a in parents:
            desc[a].append(c)

    def csr(lists: list[list[int]]) -> tuple[IntArray, IntArray]:
        ptr = np.zeros(n_cls + 1, np.int64)
        ptr[1:] = np.cumsum([len(v) for v in lists])
        idx = np.fromiter((x for v in lists for x in v), np.int64, int(ptr[-1]))
        return ptr, idx

    return Tree(*csr(anc), *csr(desc))


def expand(label: IntArray, ptr: IntArray, idx: IntArray) -> tuple[IntArray, IntArray]:
    """``(source, label)`` of the entries of rows with ``label``: each row once with its own class, then once per
    class of ``idx[ptr[label]:ptr[label + 1]]`` (its ancestors or descendants), source-major."""
    n = len(label)
    extra = ptr[label + 1] - ptr[label]
    counts = extra + 1
    src = np.repeat(np.arange(n, dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    offset = np.arange(len(src), dtype=np.int64) - np.repeat(first, counts)
    out = label[src].copy()
    more = offset > 0
    out[more] = idx[ptr[label[src[more]]] + offset[more] - 1]
    return src, out


def group_of_flags(truth: Dataset) -> BoolArray:
    """(n_truth,) group-of boxes: ``annotations.iscrowd``, or a truthy ``annotations.extra["is_group_of"]`` (a bool,
    0/1, its text, or None for no)."""
    a = truth.annotations
    out = np.zeros(len(a), bool) if a.iscrowd is None else np.asarray(a.iscrowd, bool).copy()
    col = a.extra.get(GROUP_OF_COLUMN)
    if col is None:
        return out
    if col.dtype == bool or col.dtype.kind in "iu":
        out |= np.asarray(col).astype(bool)
        return out
    vals = col.tolist()
    flags = [V._flag(v) for v in vals]
    bad = [i for i, f in enumerate(flags) if f is None]
    if bad:
        raise InvalidDatasetError(f"truth.annotations.extra[{GROUP_OF_COLUMN!r}] row {bad[0]}: must be a bool, 0/1 "
                                  f"or 'true'/'false', got {vals[bad[0]]!r} ({len(bad)} rows)")
    out |= np.asarray(flags, bool)
    return out


def has_image_labels(truth: Dataset) -> bool:
    return POS_COLUMN in truth.images.extra or NEG_COLUMN in truth.images.extra


def verified_keys(truth: Dataset, t_key: IntArray, tr: Tree) -> IntArray:
    """Sorted ``image * K + class`` keys of the classes verified on each image: those of its (expanded) truth boxes,
    its positive labels and their ancestors, its negative labels and their descendants (``t_key``: the keys of the
    expanded truth boxes)."""
    n_cls = len(truth.schema.names)
    parts = [t_key]
    for column, ptr, idx in ((POS_COLUMN, tr.anc_ptr, tr.anc_idx), (NEG_COLUMN, tr.desc_ptr, tr.desc_idx)):
        if column in truth.images.extra:
            img, lab = category_pairs(truth, column)
            src, lab = expand(lab, ptr, idx)
            parts.append(img[src] * n_cls + lab)
    return np.unique(np.concatenate(parts))


def iou_ioa(d: FloatArray, t: FloatArray) -> tuple[FloatArray, FloatArray]:
    """IoU and intersection over the detection's area of aligned xyxy box pairs, as TF's ``np_box_ops`` computes
    them (``inter / (area_d + area_t - inter)``, ``inter / area_d``); the detections have positive areas."""
    iw = np.maximum(np.minimum(d[:, 2], t[:, 2]) - np.maximum(d[:, 0], t[:, 0]), 0.0)
    ih = np.maximum(np.minimum(d[:, 3], t[:, 3]) - np.maximum(d[:, 1], t[:, 1]), 0.0)
    inter = ih * iw
    area_d = (d[:, 3] - d[:, 1]) * (d[:, 2] - d[:, 0])
    area_t = (t[:, 3] - t[:, 1]) * (t[:, 2] - t[:, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (area_d + area_t - inter)
    return np.nan_to_num(iou, nan=0.0), inter / area_d


def group_pairs(t_group: IntArray, p_group: IntArray) -> tuple[IntArray, IntArray]:
    """All (prediction, truth) index pairs that share a group; ``t_group`` sorted. Prediction-major, truth in
    its (sorted) order."""
    if not len(t_group) or not len(p_group):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    start = np.searchsorted(t_group, p_group, side="left")
    count = np.searchsorted(t_group, p_group, side="right") - start
    p_idx = np.repeat(np.arange(len(p_group), dtype=np.int64), count)
    first = np.cumsum(count) - count
    t_idx = np.repeat(start, count) + np.arange(len(p_idx), dtype=np.int64) - np.repeat(first, count)
    return p_idx, t_idx


class Matches(NamedTuple):
    """Each evaluated detection entry's decision (in evaluation order) and its partner."""

    tp: BoolArray
    fp: BoolArray
    ignored: BoolArray  # inside a group-of box, not the one true positive it gives
    partner: IntArray  # truth entry: the matched object, or the group-of box; -1: none


def match(t_box: FloatArray, t_group: IntArray, t_is_group: BoolArray, p_box: FloatArray, p_group: IntArray,
          p_score: FloatArray, threshold: float) -> Matches:
    """The two stages of TF's ``_compute_tp_fp_for_single_class`` over every group at once. Detections are in
    evaluation order (score, then image, then row), truth entries sorted by group then row.

    1. Each detection's best non-group-of object (largest IoU, the first on ties) at ``IoU >= threshold``: the
       first detection in order on an object is a TP, the later ones FP (duplicates).
    2. Each detection that is not a TP, with its best group-of box (largest IoA, the first on ties) at
       ``IoA >= threshold``: ignored, except the first one in order (the highest score) on each box, a TP when its
       score is above 0 (TF keeps ``max(score)`` of the box only when it is > 0).
    Everything else is an FP."""
    n_p, n_t = len(p_group), len(t_group)
    p_idx, t_idx = group_pairs(t_group, p_group)
    iou, ioa = iou_ioa(p_box[p_idx], t_box[t_idx])
    grp = t_is_group[t_idx]
    order = np.arange(n_p, dtype=np.int64)
    plain = ~grp
    partner, _ = V.best_truth(p_idx[plain], t_idx[plain], iou[plain], n_p, n_t, threshold, False)
    dec = V.decide(partner, order, np.zeros(n_t, bool))
    tp = dec.tp.copy()
    keep = grp & ~tp[p_idx]
    in_box, _ = V.best_truth(p_idx[keep], t_idx[keep], ioa[keep], n_p, n_t, threshold, False)
    ignored = in_box >= 0
    if ignored.any():
        d = np.flatnonzero(ignored)  # in evaluation order: the first of each box is its highest score
        box = in_box[d]
        _, first = np.unique(box, return_index=True)
        lead = d[first]
        credit = lead[p_score[lead] > 0]
        tp[credit] = True
        ignored[credit] = False
    partner = np.where(in_box >= 0, in_box, partner)  # absorbed by a box: the box (a stage-1 TP has none)
    return Matches(tp, ~tp & ~ignored, ignored, partner)


class Curves(NamedTuple):
    """Each class's precision/recall points (TP and FP entries only, evaluation order) and AP."""

    bounds: IntArray  # (K + 1,) class k's points are [bounds[k], bounds[k + 1])
    precision: FloatArray
    recall: FloatArray
    scores: FloatArray
    ap: FloatArray  # (K,) nan where n_pos is 0


def curves(label: IntArray, tp: BoolArray, fp: BoolArray, score: FloatArray, n_pos: IntArray) -> Curves:
    """TF's ``compute_precision_recall`` and ``compute_average_precision`` per class, the entries given in
    evaluation order (sorted by class): cumulative TP and FP counts, precision ``tp / (tp + fp)``, recall
    ``tp / n_pos``, and the area under the precision envelope over every step of recall (0 with no detection,
    nan with no object)."""
    n_k = len(n_pos)
    keep = tp | fp
    lab, t, s = label[keep], tp[keep], score[keep]
    bounds = np.searchsorted(lab, np.arange(n_k + 1))
    counts = np.diff(bounds)
    ctp = np.cumsum(t, dtype=np.int64)
    cnum = np.arange(1, len(t) + 1, dtype=np.int64)
    base_tp = np.repeat(np.r_[0, ctp][bounds[:-1]], counts)
    base_n = np.repeat(bounds[:-1], counts)
    tp_c = (ctp - base_tp).astype(np.float64)
    precision = tp_c / (cnum - base_n).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp_c / n_pos[lab].astype(np.float64)
    ap = np.full(n_k, np.nan)
    b = bounds.tolist()
    for k in np.flatnonzero(n_pos).tolist():
        ap[k] = V.average_precision(recall[b[k]:b[k + 1]], precision[b[k]:b[k + 1]], "voc2010")
    return Curves(bounds, precision, recall, s, ap)
