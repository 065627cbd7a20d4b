"""The consensus object scoring as it was before the overlap sweep (a frozen copy, test_consensus_dense's reference).

Consensus scoring of objects (boxes or masks) against out-of-fold predictions, vectorised over all pairs.

Every (prediction, truth) pair of an image is formed at once (numpy over image groups, no loop per box), its IoU
computed (box IoU, or pycocotools' mask IoU per image for ``iou_type="segm"``), and per-truth and per-prediction
reductions give the evidence behind each issue type. Confidences enter only through ``q``: the per-class
percentile of a prediction's score among the reference predictions of its class, so a monotone squeeze of the
confidences changes nothing and no confidence gate is hard-coded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray, distinct
from maslow.errors import InvalidDatasetError
from maslow.metrics._segm import Runs, iou_pairs

#: an instance-mask side: run lengths by the compiled kernel (``metrics._iou.segm_masks``), else pycocotools RLEs
Masks = Runs | list[dict[str, Any]]
#: the similarity of prediction pairs ``(a, b)`` (keypoints: the OKS of ``a`` with ``b`` as the object)
PairSimilarity = Callable[[IntArray, IntArray], FloatArray]

#: pairs scored per chunk: bounds the IoU intermediates (a few MB each); 4M pairs made 50 MB arrays and set qa's peak
_CHUNK_PAIRS = 1 << 18
#: the least IoU that pairs a prediction with an annotation both ways (below it they are unrelated)
_MIN_LINK = 0.1
#: pseudo-counts pulling a calibration block toward its class's hit rate
_PRIOR = 3.0


@dataclass(frozen=True)
class ObjectEvidence:
    """Per-truth and per-prediction evidence (all arrays aligned with the dataset rows)."""

    wrong_class: FloatArray  # (n_truth,)
    wrong_class_label: IntArray  # (n_truth,) suggested class, -1
    ambiguous: FloatArray  # (n_truth,)
    extra: FloatArray  # (n_truth,) ``recall * (1 - explained)``
    explained: FloatArray  # (n_truth,) the best ``q * support`` of the predictions it owns (0: the model sees nothing)
    recall: float  # the model's expected recall: the mean of ``explained`` over the (reference's) scored objects
    low_iou: FloatArray  # (n_truth,)
    low_iou_box: FloatArray  # (n_truth, 4) suggested box, NaN
    low_iou_pred: IntArray  # (n_truth,) the prediction behind ``low_iou`` (the suggestion), -1
    best_iou: FloatArray  # (n_truth,) IoU of the best same-class prediction
    scored: BoolArray  # (n_truth,) rows that were scored (a box/mask, not crowd)
    confirmed: BoolArray  # (n_truth,) a same-class prediction is paired with it both ways (the model sees it)
    missing: FloatArray  # (n_pred,) 0 where explained or suppressed
    pred_max_iou: FloatArray  # (n_pred,) best IoU with any truth
    q: FloatArray  # (n_pred,) per-class percentile of each prediction's score
    match_iou: FloatArray  # (n_classes,) typical IoU of a good same-class match (median over owned pairs)


def _pairs(t_img: IntArray, p_img: IntArray, n_images: int) -> tuple[IntArray, IntArray]:
    """All (pred, truth) pairs on the same image, pred-major (each image's block is the d x g matrix ravelled)."""
    ts = np.searchsorted(t_img, np.arange(n_images + 1))
    nt = np.diff(ts)
    cnt = nt[p_img]
    total = int(cnt.sum())
    p_idx = np.repeat(np.arange(len(p_img), dtype=np.int64), cnt)
    start = np.cumsum(cnt) - cnt
    t_idx = ts[p_img][p_idx] + (np.arange(total, dtype=np.int64) - start[p_idx])
    return p_idx, t_idx


def _box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    out = np.zeros(len(a))
    np.divide(inter, union, out=out, where=union > 0)
    return out


def _mask_iou(p_rles: list[dict[str, Any]], t_rles: list[dict[str, Any]], p_img: IntArray, t_img: IntArray,
              n_images: int) -> FloatArray:
    """pycocotools' mask IoU of every pair, in ``_pairs`` order (one ``mask.iou`` call per image)."""
    from pycocotools import mask as _mask

    ps = np.searchsorted(p_img, np.arange(n_images + 1))
    ts = np.searchsorted(t_img, np.arange(n_images + 1))
    parts = []
    for i in np.flatnonzero((np.diff(ps) > 0) & (np.diff(ts) > 0)).tolist():
        d, g = p_rles[ps[i]:ps[i + 1]], t_rles[ts[i]:ts[i + 1]]
        parts.append(np.asarray(_mask.iou(d, g, [0] * len(g)), dtype=np.float64).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0)


def _group_max(group: IntArray, value: FloatArray, n: int) -> tuple[FloatArray, IntArray]:
    """Max of ``value`` per group (0 for empty groups) and the position of the (first) max, -1 when empty."""
    best = np.zeros(n)
    arg = np.full(n, -1, np.int64)
    if not len(group):
        return best, arg
    order = np.lexsort((-np.arange(len(value)), value, group))  # last of each group = max, ties: first position
    g = group[order]
    last = np.flatnonzero(np.r_[g[1:] != g[:-1], True])
    best[g[last]] = value[order[last]]
    arg[g[last]] = order[last]
    return best, arg


@dataclass(frozen=True)
class Overlaps:
    """The overlapping (prediction, truth) pairs of every image, and what is needed around them."""

    p_idx: IntArray
    t_idx: IntArray
    iou: FloatArray
    scored: BoolArray  # (n_truth,)


def overlaps(truth: Dataset, pred_box: FloatArray, pred_img: IntArray, *, iou_type: str,
             t_rles: Masks | None = None, p_rles: Masks | None = None) -> Overlaps:
    """Every (prediction, truth) pair of an image with IoU > 0 (box IoU, or mask IoU as pycocotools computes it)."""
    ta = truth.annotations
    assert ta.box is not None and ta.iscrowd is not None
    n_t = len(ta)
    t_box = ta.box
    has = ~np.isnan(t_box[:, 0]) if iou_type == "bbox" else np.ones(n_t, bool)
    p_idx, t_idx = _pairs(ta.image, pred_img, truth.n_images)
    if iou_type == "segm":
        assert t_rles is not None and p_rles is not None
        if isinstance(p_rles, Runs) and isinstance(t_rles, Runs):  # the same numbers, pair by pair in C
            iou = iou_pairs(p_rles, t_rles, np.zeros(n_t, bool), p_idx, t_idx)
        else:
            assert isinstance(p_rles, list) and isinstance(t_rles, list)
            iou = _mask_iou(p_rles, t_rles, pred_img, ta.image, truth.n_images)
    else:
        iou = np.zeros(len(p_idx))
        for s in range(0, len(p_idx), _CHUNK_PAIRS):
            sl = slice(s, s + _CHUNK_PAIRS)
            iou[sl] = _box_iou(pred_box[p_idx[sl]], t_box[t_idx[sl]])
    iou[~has[t_idx]] = 0.0
    keep = iou > 0
    return Overlaps(p_idx=p_idx[keep], t_idx=t_idx[keep], iou=iou[keep], scored=has & ~ta.iscrowd)


def prepare_objects(truth: Dataset, pred: Dataset, kind: str) -> tuple[FloatArray, Overlaps, Masks | None]:
    """The predictions' xyxy boxes (of their masks where they have none, ``segm``), the overlaps with the truth
    (``bbox`` or ``segm``), and the predictions' masks (``segm``)."""
    pa = pred.annotations
    assert pa.box is not None
    pbox = np.asarray(pa.box, dtype=np.float64)
    t_rles = p_rles = None
    if kind == "bbox":
        bad = np.flatnonzero(np.isnan(pbox[:, 0]))
        if bad.size:
            raise InvalidDatasetError(f"pred.annotations.box row {bad[0]}: must be a box, got none ({bad.size} rows)")
    else:
        from maslow.metrics._iou import segm_masks

        t_rles = segm_masks(truth, np.arange(truth.n_annotations), "truth")
        p_rles = segm_masks(pred, np.arange(len(pa)), "pred")
        nobox = np.isnan(pbox[:, 0])
        if nobox.any():
            pbox = pbox.copy()
            for r in np.flatnonzero(nobox).tolist():
                x, y, w, h = _rle_bbox(p_rles.rle(r) if isinstance(p_rles, Runs) else p_rles[r])
                pbox[r] = [x, y, x + w, y + h]
    return pbox, overlaps(truth, pbox, pa.image, iou_type=kind, t_rles=t_rles, p_rles=p_rles), p_rles


def _rle_bbox(rle: dict[str, Any]) -> list[float]:
    from pycocotools import mask as _mask

    return [float(v) for v in _mask.toBbox(rle)]


def true_positives(ov: Overlaps, truth: Dataset, pred_label: IntArray, tau: float) -> BoolArray:
    """(n_pred,) the prediction overlaps a truth object of its class with IoU >= tau."""
    same = (pred_label[ov.p_idx] == truth.annotations.label[ov.t_idx]) & (ov.iou >= tau)
    tp = np.zeros(len(pred_label), bool)
    tp[ov.p_idx[same]] = True
    return tp


@dataclass(frozen=True)
class Calibration:
    """Per class: the reference scores (sorted) and the share of true positives along their ranks.

    ``q(score)`` is the precision of the class's predictions at that score's rank: isotonic regression of the
    hits on the ranks, shrunk toward the class's hit rate by ``_PRIOR`` pseudo-counts. It depends on the ranks
    only, so any monotone squeeze of the confidences leaves it unchanged. Given the scored predictions' own hits,
    each one is left out of its block (leave-one-out), so an unmatched prediction does not lower its own ``q``.
    """

    scores: tuple[FloatArray, ...]
    ends: tuple[IntArray, ...]  # per distinct reference score: how many reference scores are <= it
    mean: tuple[FloatArray, ...]  # isotonic fit per distinct score
    weight: tuple[FloatArray, ...]  # number of predictions in its isotonic block
    rate: FloatArray  # (K,) hit rate per class
    match_iou: FloatArray  # (K,) typical IoU of a good match per class

    def q(self, score: FloatArray, label: IntArray, hit: BoolArray | None = None) -> FloatArray:
        """Calibrated confidence of each prediction (NaN scores count as the class's best); ``hit``: whether each
        scored prediction is itself a hit of the reference (left out of its block)."""
        out = np.zeros(len(score))
        for c in range(len(self.scores)):
            rows = np.flatnonzero(label == c)
            ref = self.scores[c]
            if not len(rows) or not len(ref):
                continue
            s = score[rows]
            # the number of reference scores <= s: the fit of the distinct score at or below it (a step function)
            below = np.searchsorted(ref, s, side="right")
            below[np.isnan(s)] = len(ref)
            idx = np.clip(np.searchsorted(self.ends[c], below, side="right") - 1, 0, len(self.ends[c]) - 1)
            num = self.mean[c][idx] * self.weight[c][idx]
            den = self.weight[c][idx].copy()
            if hit is not None:
                num = num - hit[rows]
                den = den - 1.0
            out[rows] = np.clip((num + _PRIOR * self.rate[c]) / (den + _PRIOR), 0.0, 1.0)
        return out


def calibrate(score: FloatArray, label: IntArray, tp: BoolArray, n_classes: int,
              match_iou: FloatArray) -> Calibration:
    """Fit the per-class rank -> precision curves (see ``Calibration``); ties share their mean."""
    scores, ends, means, weights = [], [], [], []
    rate = np.zeros(n_classes)
    for c in range(n_classes):
        rows = np.flatnonzero((label == c) & ~np.isnan(score))
        order = np.argsort(score[rows], kind="stable")
        s, t = score[rows][order], tp[rows][order].astype(np.float64)
        n = len(s)
        scores.append(s)
        if not n:
            ends.append(np.zeros(1, np.int64))
            means.append(np.zeros(1))
            weights.append(np.ones(1))
            continue
        rate[c] = t.mean()
        # equal scores: one point (their mean), so the fit depends on the ranks only
        first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        counts = np.diff(np.r_[first, n])
        fit, weight = _isotonic_weighted(np.add.reduceat(t, first) / counts, counts)
        ends.append(first + counts)
        means.append(fit)
        weights.append(weight)
    return Calibration(scores=tuple(scores), ends=tuple(ends), mean=tuple(means), weight=tuple(weights),
                       rate=rate, match_iou=match_iou)


def _isotonic_weighted(y: FloatArray, w: IntArray) -> tuple[FloatArray, FloatArray]:
    """Weighted pool-adjacent-violators (non-decreasing): the fit and its block's weight, per element of ``y``."""
    means: list[float] = []
    sizes: list[int] = []
    counts: list[int] = []
    for v, n in zip(y.tolist(), w.tolist(), strict=True):
        m, k, c = v, n, 1
        while means and means[-1] >= m:
            pm, pk, pc = means.pop(), sizes.pop(), counts.pop()
            m = (pm * pk + m * k) / (pk + k)
            k += pk
            c += pc
        means.append(m)
        sizes.append(k)
        counts.append(c)
    reps = np.asarray(counts, np.int64)
    return np.repeat(np.asarray(means), reps), np.repeat(np.asarray(sizes, np.float64), reps)


def typical_iou(ov: Overlaps, truth: Dataset, pred_label: IntArray, n_pred: int, k: int,
                match_iou: float | None) -> FloatArray:
    """Per class: the median IoU of good matches (owned, same class, IoU >= 0.5), or ``match_iou``."""
    typical = np.full(k, 0.5 if match_iou is None else match_iou)
    if match_iou is not None:
        return typical
    p_best, _ = _group_max(ov.p_idx, ov.iou, n_pred)
    t_lab = truth.annotations.label
    good = (ov.iou >= p_best[ov.p_idx]) & (pred_label[ov.p_idx] == t_lab[ov.t_idx]) & (ov.iou >= 0.5)
    lab = t_lab[ov.t_idx[good]]
    for c in np.unique(lab).tolist():
        typical[c] = float(np.median(ov.iou[good][lab == c]))
    return typical


@dataclass(frozen=True)
class _Links:
    """How the overlapping pairs relate: each prediction's best overlap, the pairs it owns, the mutual pairs, and
    each truth object's match (the pair a ``low_iou`` finding is about)."""

    p_best: FloatArray  # (n_pred,) best IoU of each prediction with any truth object
    owned: BoolArray  # (pairs,) the prediction's best overlap (it votes only there), not a crowd object
    same: BoolArray  # (pairs,) prediction and truth object of one class
    mutual: BoolArray  # (pairs,) each the other's best overlap, IoU >= _MIN_LINK
    match: BoolArray  # (pairs,) the truth object's best-overlapping same-class prediction it owns, IoU >= _MIN_LINK
    match_pos: IntArray  # (n_truth,) the pair position of each truth object's match, -1


def _links(ov: Overlaps, truth: Dataset, pred_label: IntArray) -> _Links:
    ta = truth.annotations
    assert ta.iscrowd is not None
    p_idx, t_idx, iou = ov.p_idx, ov.t_idx, ov.iou
    # every prediction belongs to the truth object it overlaps most (class-agnostic): it votes only there
    p_best, _ = _group_max(p_idx, iou, len(pred_label))
    t_best, _ = _group_max(t_idx, iou, len(ta))
    owned = (iou >= p_best[p_idx]) & ~ta.iscrowd[t_idx]
    same = pred_label[p_idx] == ta.label[t_idx]
    # the match: of the same-class predictions an object owns, the one overlapping it most, when they are related
    # at all (IoU >= _MIN_LINK): the object's box as the model sees it, what a low_iou finding moves the box to.
    # It is that object's, never a missing one (else accepting both would label one object twice)
    sel = np.flatnonzero(owned & same)
    best, arg = _group_max(t_idx[sel], iou[sel], len(ta))
    hit = (arg >= 0) & (best >= _MIN_LINK)
    match_pos = np.full(len(ta), -1, np.int64)
    match_pos[hit] = sel[arg[hit]]
    match = np.zeros(len(iou), bool)
    match[match_pos[hit]] = True
    return _Links(p_best=p_best, owned=owned, same=same,
                  mutual=(iou >= t_best[t_idx]) & (iou >= p_best[p_idx]) & (iou >= _MIN_LINK), match=match,
                  match_pos=match_pos)


def _explained(ov: Overlaps, links: _Links, q: FloatArray, tau: float, n_t: int) -> FloatArray:
    """(n_truth,) the best ``q * support`` of the predictions each truth object owns (any class; support:
    ``min(1, IoU / tau)``, 1 for the object's match, ``_Links.match``, and a same-class mutual pair): the chance the
    model sees an object there."""
    support = np.where((links.mutual & links.same) | links.match, 1.0, np.minimum(1.0, ov.iou / tau))
    o = links.owned
    expl, _ = _group_max(ov.t_idx[o], q[ov.p_idx[o]] * support[o], n_t)
    return expl


def expected_recall(ov: Overlaps, truth: Dataset, pred_label: IntArray, q: FloatArray, tau: float) -> float:
    """The model's expected recall: the mean over the scored truth objects of how well its predictions explain
    each (``_explained``: a sighting by a prediction right 60% of the time counts 0.6, no sighting 0); 1 without
    scored objects (no ``extra`` to scale)."""
    return _mean_scored(_explained(ov, _links(ov, truth, pred_label), q, tau, truth.n_annotations), ov.scored)


def _mean_scored(expl: FloatArray, scored: BoolArray) -> float:
    return float(expl[scored].mean()) if scored.any() else 1.0


def object_evidence(truth: Dataset, ov: Overlaps, pred_label: IntArray, pred_box: FloatArray, pred_img: IntArray,
                    q: FloatArray, typical: FloatArray, tau: float,
                    p_rles: Masks | None = None, similarity: PairSimilarity | None = None,
                    recall: float | None = None) -> ObjectEvidence:
    """The evidence for every issue type (see ``maslow.quality.consensus`` for the formulas); ``similarity``: of
    prediction pairs, for the suppression of overlapping ``missing`` candidates (default: box or mask IoU);
    ``recall``: the reference's ``expected_recall`` (None: this data's)."""
    ta = truth.annotations
    n_t, n_p = len(ta), len(pred_label)
    scored = ov.scored
    t_lab = ta.label
    p_idx, t_idx, iou = ov.p_idx, ov.t_idx, ov.iou
    links = _links(ov, truth, pred_label)
    p_best, owned, same, mutual = links.p_best, links.owned, links.same, links.mutual
    on_object = owned & (iou >= tau)
    qp = q[p_idx]
    # wrong class / ambiguous: support of the truth's class and of the best other class on the object
    sel = on_object & same
    sup_same, _ = _group_max(t_idx[sel], qp[sel], n_t)
    sel = on_object & ~same
    sup_other, arg = _group_max(t_idx[sel], qp[sel], n_t)
    other_lab = np.where(arg >= 0, pred_label[p_idx[sel]][np.maximum(arg, 0)] if sel.any() else -1, -1)
    wrong = sup_other * (1.0 - sup_same)
    ambiguous = np.minimum(sup_same, sup_other)
    # extra: nothing the model sees is on the annotation (a prediction of any class it owns); a prediction that
    # is already another annotation's object explains nothing here
    # (a same-class prediction paired with it both ways, each the other's best overlap, says an object is there:
    # a loose box is a low-IoU issue, not an extra one). The model's silence weighs what its sightings weigh: it
    # sees an expected share ``recall`` of the labelled objects, so "nothing here" is evidence of that strength
    expl = _explained(ov, links, q, tau, n_t)
    rho = _mean_scored(expl, scored) if recall is None else recall
    extra = rho * (1.0 - expl)
    confirmed = np.zeros(n_t, bool)
    confirmed[t_idx[mutual & same]] = True
    # low IoU: the annotation's match (its best-overlapping same-class prediction it owns, IoU >= _MIN_LINK)
    # overlaps it worse than the class's typical match; below _MIN_LINK the two are unrelated: no low_iou, the
    # annotation may be extra and the prediction missing
    sel = owned & same
    best_iou, _ = _group_max(t_idx[sel], iou[sel], n_t)
    low = np.zeros(n_t)
    box = np.full((n_t, 4), np.nan)
    low_pred = np.full(n_t, -1, np.int64)
    hit = np.flatnonzero(links.match_pos >= 0)
    k = links.match_pos[hit]
    t_typ = typical[t_lab[hit]]
    low[hit] = qp[k] * np.clip((t_typ - iou[k]) / t_typ, 0.0, 1.0)
    low_pred[hit] = p_idx[k]
    box[hit] = pred_box[low_pred[hit]]
    # missing: a prediction no annotation explains, the best of each cluster of such predictions
    # a prediction is explained by the annotation it is paired with both ways (each the other's best overlap), and
    # by the one whose match it is: their disagreement is that annotation's issue (low IoU, wrong class), not a
    # missing object (a low_iou finding and a missing one of one prediction would add the object twice); else by
    # its overlaps
    expl_p, _ = _group_max(p_idx, np.where(mutual | links.match, 1.0, np.minimum(1.0, iou / tau) ** 2), n_p)
    miss = q * (1.0 - np.minimum(1.0, expl_p))
    miss = _suppress(miss, pred_box, pred_img, truth.n_images, tau, p_rles, similarity)
    for arr in (wrong, ambiguous, extra, low):
        arr[~scored] = 0.0
    other_lab[~scored] = -1
    expl[~scored] = 0.0
    return ObjectEvidence(wrong_class=wrong, wrong_class_label=other_lab.astype(np.int64), ambiguous=ambiguous,
                          extra=extra, explained=expl, recall=rho, low_iou=low, low_iou_box=box,
                          low_iou_pred=low_pred, best_iou=best_iou, scored=scored, confirmed=confirmed & scored,
                          missing=miss, pred_max_iou=p_best, q=q, match_iou=typical)


def _suppress(score: FloatArray, box: FloatArray, img: IntArray, n_images: int, tau: float,
              rles: Masks | None, similarity: PairSimilarity | None = None) -> FloatArray:
    """Class-agnostic NMS among candidate predictions: a candidate overlapping a better one (IoU >= tau) -> 0."""
    cand = np.flatnonzero(score > 0)
    if len(cand) < 2:
        return score
    p_idx, o_idx = _pairs(img[cand], img[cand], n_images)
    keep = p_idx != o_idx
    p_idx, o_idx = p_idx[keep], o_idx[keep]
    a, b = cand[p_idx], cand[o_idx]
    if similarity is not None:
        iou = similarity(a, b)
    elif rles is None:
        iou = _box_iou(box[a], box[b])
    elif isinstance(rles, Runs):
        iou = iou_pairs(rles, rles, np.zeros(len(score), bool), a, b)
    else:
        from pycocotools import mask as _mask

        iou = np.asarray([_mask.iou([rles[x]], [rles[y]], [0])[0][0] for x, y in zip(a.tolist(), b.tolist(),
                                                                                      strict=True)])
    beaten = (iou >= tau) & ((score[b] > score[a]) | ((score[b] == score[a]) & (b < a)))
    out = score.copy()
    out[distinct(a[beaten])] = 0.0
    return out
