"""LVIS matching and accumulation on the COCO machinery, and lvis-api 0.5.3's ``summarize``.

lvis-api's ``evaluate_img`` and ``accumulate`` are pycocotools' with three changes, each mapped onto the COCO
code here: no crowd regions (``Groups.crowd`` all False: plain IoU, every object matched at most once), the
``ignore`` key in place of ``iscrowd`` (``Groups.ignore``), and an unmatched prediction of a class not
exhaustively annotated in its image ignored like one outside the area range (``pred_out`` set in every range).
Without a maxDets axis: one value, the per-image cap, which no (image, class) group exceeds once it is applied.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray
from maslow.metrics import _prepare as P
from maslow.metrics._accumulate import accumulate
from maslow.metrics._lvis_prepare import truth_ignore
from maslow.metrics._match import match
from maslow.metrics.coco import _match_flags, _pair_ious, _Params

#: (field, lvis-api key, ap?, iou threshold, area name, frequency group) in lvis-api's order
STATS: tuple[tuple[str, str, bool, float | None, str, str | None], ...] = (
    ("ap", "AP", True, None, "all", None),
    ("ap_50", "AP50", True, 0.5, "all", None),
    ("ap_75", "AP75", True, 0.75, "all", None),
    ("ap_small", "APs", True, None, "small", None),
    ("ap_medium", "APm", True, None, "medium", None),
    ("ap_large", "APl", True, None, "large", None),
    ("ap_rare", "APr", True, None, "all", "r"),
    ("ap_common", "APc", True, None, "all", "c"),
    ("ap_frequent", "APf", True, None, "all", "f"),
    ("ar_300", "AR@300", False, None, "all", None),
    ("ar_small", "ARs@300", False, None, "small", None),
    ("ar_medium", "ARm@300", False, None, "medium", None),
    ("ar_large", "ARl@300", False, None, "large", None),
)


class Accumulated(NamedTuple):
    precision: FloatArray  # (T, R, K, A)
    recall: FloatArray  # (T, K, A)
    scores: FloatArray  # (T, R, K, A)
    class_labels: np.ndarray  # (K,) schema label of each K position (sorted by category id)


def evaluate(truth: Dataset, pred: Dataset, p: _Params, not_exhaustive: BoolArray) -> Accumulated:
    """Match and accumulate ``pred`` (the evaluated rows only; ``not_exhaustive`` flags each) as lvis-api does."""
    groups = P.build_groups(truth, pred, use_cats=True, max_det=p.max_dets[-1], iou_type=p.iou_type)
    n_t = len(groups.truth.row)
    groups = groups._replace(crowd=np.zeros(n_t, bool), ignore=truth_ignore(truth, groups.truth.row))
    groups, p_idx, t_idx, iou = _pair_ious(truth, pred, groups, p)  # COCO's geometry and pairs
    lo, hi = p.area_ranges[:, 0:1], p.area_ranges[:, 1:2]
    ta, pa = groups.truth.area[None, :], groups.pred.area[None, :]
    truth_ignored = groups.ignore[None, :] | (ta < lo) | (ta > hi)
    pred_out = (pa < lo) | (pa > hi) | np.asarray(not_exhaustive, bool)[groups.pred.row][None, :]
    matches = match(iou, p_idx, t_idx, groups.rank, p.iou_thresholds, truth_ignored, groups.crowd, n_t, 0)
    n_k = len(groups.class_labels)
    n_pos = np.zeros((n_k, len(p.area_names)), np.int64)
    for a in range(len(p.area_names)):
        n_pos[:, a] = np.bincount(groups.truth.k[~truth_ignored[a]], minlength=n_k)
    m_tp, m_ignored = _match_flags(matches, t_idx, truth_ignored, groups.id_zero)
    del p_idx, t_idx, iou
    precision, recall, scores = accumulate(
        k=groups.pred.k, rank=groups.rank, acc_order=groups.acc_order, score=groups.score, pred_out=pred_out,
        match_t=matches.t, match_a=matches.a, match_pred=matches.pred, match_tp=m_tp, match_ignored=m_ignored,
        n_pos=n_pos, n_thresholds=len(p.iou_thresholds), n_classes=n_k, recall_thresholds=p.recall_thresholds,
        max_dets=p.max_dets,
    )
    return Accumulated(np.ascontiguousarray(precision[..., 0]), np.ascontiguousarray(recall[..., 0]),
                       np.ascontiguousarray(scores[..., 0]), groups.class_labels)


def summarize_one(precision: FloatArray, recall: FloatArray, iou_thresholds: FloatArray, area_names: tuple[str, ...],
                  freq_groups: dict[str, list[int]], ap: bool, iou_thr: float | None, area: str,
                  group: str | None) -> float:
    """lvis-api's ``LVISEval._summarize``, the same numpy operations (so the same float64); -1: nothing to average."""
    aidx = [i for i, name in enumerate(area_names) if name == area]
    if not aidx:
        return -1.0
    s = precision if ap else recall
    if iou_thr is not None:
        s = s[np.where(iou_thr == iou_thresholds)[0]]
    if not ap:
        s = s[:, :, aidx]
    elif group is not None:
        s = s[:, :, freq_groups[group], aidx]
    else:
        s = s[:, :, :, aidx]
    if len(s[s > -1]) == 0:
        return -1.0
    return float(np.mean(s[s > -1]))
