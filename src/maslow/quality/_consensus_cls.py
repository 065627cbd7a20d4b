"""Consensus scoring of image labels (single- and multi-label) and attribute values.

Probabilities enter only through ranks, so a monotone squeeze of the probabilities changes nothing. Single labels
(see ``label_evidence``): two per-class calibrations of the probabilities' ranks, a step-wise one (isotonic) that
tells which other class the model backs and how much, and a smooth one (logistic) that says how unlikely the label
is; multi-label tags and attribute values get one smooth calibration per tag (``tag_confidence``: the share of images
scored like this that carry the tag), on which a set tag and an unset one, of a rare tag or a common one, rank alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError
from maslow.quality._consensus_det import _PRIOR, _isotonic_weighted
from maslow.quality.issues import QualityIssues


@dataclass(frozen=True)
class LabelEvidence:
    """Per-sample evidence for single-label classification (see ``label_evidence``)."""

    support: FloatArray  # (n, K) calibrated support ``q`` of every class (``class_support``)
    suggested: IntArray  # (n,) the other class of highest support, -1 when there is none (one class)
    share: FloatArray  # (n,) its share of the support for it and the label, in [0, 1]
    confidence: FloatArray  # (n,) smooth calibrated confidence in the label (``label_confidence``)
    wrong: FloatArray  # (n,) ``(1 - confidence) * share`` where share >= 1 - ambiguous_share, else 0
    ambiguous: FloatArray  # (n,) the same where ambiguous_share <= share < 1 - ambiguous_share, else 0


def class_support(probs: FloatArray, y: IntArray, ref_probs: FloatArray, ref_y: IntArray) -> FloatArray:
    """(n, K) calibrated support: per class ``j``, the share of reference images labelled ``j`` at ``probs[:, j]``'s rank.

    Per column, the reference images' "labelled j" indicators are fitted against the ranks of their ``p_j`` by
    isotonic regression (equal probabilities share their mean, so only ranks enter), shrunk toward the share of
    images labelled ``j`` by ``_PRIOR`` pseudo-counts, and read at each scored probability (a value between two
    reference ones takes the fit at or below it). The scored images are the reference's (or part of it): each
    is left out of its own block (leave-one-out), so a wrong label does not vouch for itself.
    """
    n, k = probs.shape
    out = np.zeros((n, k))
    m = len(ref_y)
    if not m:
        return out
    for j in range(k):
        col = np.asarray(ref_probs[:, j], np.float64)
        order = np.argsort(col, kind="stable")
        s, t = col[order], (ref_y[order] == j).astype(np.float64)
        first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # equal probabilities: one point, their mean
        counts = np.diff(np.r_[first, m])
        mean = np.add.reduceat(t, first) / counts
        # equal neighbours always share a block, so runs of equal means are pooled before PAV (exact, and it
        # leaves about two points per image labelled j: the loop is O(n) over all classes, not O(n K))
        run = np.flatnonzero(np.r_[True, mean[1:] != mean[:-1]])
        run_w = np.add.reduceat(counts, run)
        fit, weight = _isotonic_weighted(np.add.reduceat(mean * counts, run) / run_w, run_w)
        reps = np.diff(np.r_[run, len(mean)])
        fit, weight = np.repeat(fit, reps), np.repeat(weight, reps)
        idx = np.clip(np.searchsorted(s[first], probs[:, j], side="right") - 1, 0, len(first) - 1)
        own = (y == j).astype(np.float64)
        num = fit[idx] * weight[idx] - own
        den = weight[idx] - 1.0
        out[:, j] = np.clip((num + _PRIOR * t.mean()) / (den + _PRIOR), 0.0, 1.0)
    return out


def _logit(r: FloatArray, m: int) -> FloatArray:
    """logit of shares kept half a rank inside (0, 1), computed in place (``r`` is a temporary)."""
    np.clip(r, 0.5 / m, 1.0 - 0.5 / m, out=r)
    minus = np.log1p(-r)
    np.log(r, out=r)
    r -= minus
    return r


def _mid_ranks(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mid-rank of every value among all of them, ``(below + ties / 2) / size`` (one sort), and the sorted values."""
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")
    s = flat[order]
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    counts = np.diff(np.r_[first, len(s)])
    mid = (first + counts / 2.0) / max(len(s), 1)
    del first
    r = np.empty(len(s))
    r[order] = np.repeat(mid, counts)
    return r.reshape(values.shape), s


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


#: (image, class) pairs per block of the logistic fit: bounds its temporaries (a few MB each)
_CHUNK = 1 << 18


def _terms(a: FloatArray, b: float, z: FloatArray, y: IntArray,
           grad: bool) -> tuple[float, FloatArray, float, FloatArray, FloatArray, float]:
    """Deviance of ``[y == j] ~ sigmoid(a_j + b z[:, j])`` and, with ``grad``, its gradient and Hessian blocks."""
    k = z.shape[1]
    loss, ga, gb, haa, hab, hbb = 0.0, np.zeros(k), 0.0, np.zeros(k), np.zeros(k), 0.0
    cls = np.arange(k)[None, :]
    step = max(1, _CHUNK // max(k, 1))
    for lo in range(0, len(z), step):
        zc, tc = z[lo:lo + step], y[lo:lo + step, None] == cls
        eta = a[None, :] + b * zc
        loss += float(np.logaddexp(0.0, np.where(tc, -eta, eta)).sum())
        if grad:
            mu = _sigmoid(eta)
            w = mu * (1.0 - mu)
            r = mu - tc
            wz = w * zc
            ga += r.sum(axis=0)
            gb += float((r * zc).sum())
            haa += w.sum(axis=0)
            hab += wz.sum(axis=0)
            hbb += float((wz * zc).sum())
    return loss, ga, gb, haa, hab, hbb


def _fit_logistic(z: FloatArray, y: IntArray, ridge: float, max_iter: int = 100) -> tuple[FloatArray, float]:
    """Maximum likelihood of ``[y == j] ~ sigmoid(a_j + b z[:, j])`` (K intercepts, one slope, ridge ``ridge``):
    Newton steps through the Schur complement of the slope, halved while the penalised deviance grows."""
    k = z.shape[1]
    rate = np.clip(np.bincount(y, minlength=k)[:k] / len(z), 0.5 / len(z), 1.0 - 0.5 / len(z))
    a, b = np.log(rate) - np.log1p(-rate), 0.0

    def penalised(a: FloatArray, b: float) -> float:
        return _terms(a, b, z, y, False)[0] + 0.5 * ridge * float(a @ a + b * b)

    cur = penalised(a, b)
    for _ in range(max_iter):
        _, ga, gb, haa, hab, hbb = _terms(a, b, z, y, True)
        ga, gb, haa, hbb = ga + ridge * a, gb + ridge * b, haa + ridge, hbb + ridge
        db = (gb - float((hab * ga / haa).sum())) / (hbb - float((hab * hab / haa).sum()))
        da = (ga - hab * db) / haa
        step = 1.0
        while step > 1e-6:
            na, nb = a - step * da, b - step * db
            new = penalised(na, nb)
            if new <= cur:
                break
            step /= 2
        else:
            break
        done = cur - new <= 1e-10 * max(abs(cur), 1.0)
        a, b, cur = na, nb, new
        if done:
            break
    return a, b


def label_confidence(probs: FloatArray, y: IntArray, ref_probs: FloatArray, ref_y: IntArray, *,
                     ridge: float = 1.0) -> FloatArray:
    """(n,) smooth calibrated confidence in each label: ``sigmoid(a[y] + b * logit(R))``.

    ``R`` is the mid-rank of the label's probability among all the reference probabilities (every entry of
    ``ref_probs``); ``a`` (one per class: where the class's probabilities start to carry its label, as confident
    learning's per-class thresholds) and ``b`` (shared) are fitted by maximum likelihood of "labelled j" over
    every (reference image, class j) pair. Smooth and increasing in the rank, so within a class the labels keep
    the order of their probabilities (no ties as a step-wise fit makes), and the intercepts make classes
    comparable.
    """
    n = len(probs)
    if not n or not len(ref_y):
        return np.zeros(n)
    ref = np.asarray(ref_probs, np.float64)
    r, flat = _mid_ranks(ref)
    m = len(flat)
    a, b = _fit_logistic(_logit(r, m), np.asarray(ref_y, np.int64), ridge)
    x = probs[np.arange(n), y]
    mid = (np.searchsorted(flat, x, side="left") + np.searchsorted(flat, x, side="right")) / (2.0 * m)
    return _sigmoid(a[y] + b * _logit(mid, m))


def label_evidence(probs: FloatArray, y: IntArray, ref_probs: FloatArray, ref_y: IntArray, *,
                   ambiguous_share: float = 0.25) -> LabelEvidence:
    """Single-label evidence from an (n, K) probability matrix, calibrated on ``(ref_probs, ref_y)``.

    ``q = class_support(...)``; ``alt`` is the other class of highest ``q`` (ties: the first), and
    ``share = q[alt] / (q[y] + q[alt])``: if the image is of the label's class or of ``alt``, the chance it is
    ``alt``. The score is ``(1 - c) * share``, with ``c = label_confidence(...)``: the label is unlikely, and
    ``alt`` is what the model backs instead. It counts as ``wrong`` when ``share >= 1 - ambiguous_share`` (the
    model backs ``alt`` over the label at 3:1 and more for the default 0.25), as ``ambiguous`` when
    ``ambiguous_share <= share < 1 - ambiguous_share`` (both plausible), and not at all below.
    """
    n, k = probs.shape
    q = class_support(probs, y, ref_probs, ref_y)
    if k < 2 or not n:
        z = np.zeros(n)
        return LabelEvidence(support=q, suggested=np.full(n, -1, np.int64), share=z, confidence=z, wrong=z,
                             ambiguous=z)
    own = q[np.arange(n), y]
    alt, q_alt = np.zeros(n, np.int64), np.full(n, -1.0)
    for j in range(k):  # the best other class, one column at a time (no (n, K) copy); ties: the first
        better = (q[:, j] > q_alt) & (y != j)
        alt[better], q_alt[better] = j, q[better, j]
    total = own + q_alt
    share = np.divide(q_alt, total, out=np.zeros(n), where=total > 0)
    conf = label_confidence(probs, y, ref_probs, ref_y)
    score = (1.0 - conf) * share
    wrong = np.where(share >= 1.0 - ambiguous_share, score, 0.0)
    ambiguous = np.where((share >= ambiguous_share) & (share < 1.0 - ambiguous_share), score, 0.0)
    return LabelEvidence(support=q, suggested=alt, share=share, confidence=conf, wrong=wrong,
                         ambiguous=ambiguous)


@dataclass(frozen=True)
class TagEvidence:
    """Per-(sample, tag) evidence for multi-label tags and boolean attributes."""

    present_wrong: FloatArray  # (n, L) the tag is set but the model disagrees (0 where not set)
    absent_wrong: FloatArray  # (n, L) the tag is not set but the model sees it (0 where set)


def tag_confidence(probs: FloatArray, ref_probs: FloatArray, ref_truth: BoolArray, *,
                   ridge: float = 1.0) -> FloatArray:
    """(n, L) calibrated confidence that each tag is set: per tag ``j``, ``sigmoid(a_j + b_j * logit(R))``.

    ``R`` is the mid-rank of ``probs[:, j]`` among the reference images' ``ref_probs[:, j]``; ``a_j`` and ``b_j``
    are fitted by maximum likelihood of "tagged j" over the reference images (ridge ``ridge``). Only ranks enter
    (a monotone squeeze of a tag's probabilities changes nothing), and the fit puts every tag, and both the set
    and the unset ones, on one scale: the share of images scored like this that carry the tag.
    """
    n, L = probs.shape
    out = np.zeros((n, L))
    m = len(ref_probs)
    if not m:
        return out
    for j in range(L):
        col = np.sort(np.asarray(ref_probs[:, j], np.float64))
        r, _ = _mid_ranks(np.asarray(ref_probs[:, j], np.float64))
        a, b = _fit_logistic(_logit(r, m)[:, None], np.where(ref_truth[:, j], 0, 1), ridge)
        mid = (np.searchsorted(col, probs[:, j], side="left") + np.searchsorted(col, probs[:, j], side="right"))
        out[:, j] = _sigmoid(a[0] + b * _logit(mid / (2.0 * m), m))
    return out


def tag_evidence(probs: FloatArray, truth: BoolArray, ref_probs: FloatArray, ref_truth: BoolArray) -> TagEvidence:
    """Per (image, tag): a set tag is wrong as far as the model's calibrated confidence in it is low (``1 - c``),
    an unset tag is missing as far as it is high (``c``), ``c = tag_confidence(...)``: so a rarely set tag and a
    common one, and a set tag and an unset one, rank on one scale (squeeze-invariant)."""
    c = tag_confidence(probs, ref_probs, ref_truth)
    return TagEvidence(present_wrong=np.where(truth, 1.0 - c, 0.0), absent_wrong=np.where(truth, 0.0, c))


def attribute_issues(truth: Dataset, pred: Dataset, attributes: list[str], min_score: float) -> QualityIssues:
    """``wrong_class`` findings of boolean attribute values the model contradicts (pred rows paired with truth
    rows; ``tag_evidence`` per attribute)."""
    from maslow.metrics.multilabel import _attribute_values

    ta, pa = truth.annotations, pred.annotations
    if len(ta) != len(pa) or not np.array_equal(ta.image, pa.image):
        raise InvalidDatasetError(f"pred.annotations: attribute scoring needs one prediction row per truth row "
                                  f"({len(ta)} rows, same images), got {len(pa)}")
    parts = []
    for name in attributes:
        for side, a in (("truth", ta), ("pred", pa)):
            if name not in a.attributes:
                raise InvalidDatasetError(f"{side}.annotations.attributes must have {name!r}, got {sorted(a.attributes)}")
        t = _attribute_values(ta.attributes[name], 0.5, f"truth.annotations.attributes[{name!r}]")
        raw = [np.nan if v is None else float(v) for v in pa.attributes[name].tolist()]
        p = np.asarray(raw, np.float64)
        known = ~np.isnan(p) & np.asarray([v is not None for v in ta.attributes[name].tolist()])
        rows = np.flatnonzero(known)
        ev = tag_evidence(p[rows, None], t[rows, None], p[rows, None], t[rows, None])
        wrong = np.maximum(ev.present_wrong[:, 0], ev.absent_wrong[:, 0])
        k = wrong >= max(min_score, 1e-12)
        r = rows[k]
        parts.append(QualityIssues.block(
            "wrong_class", "warning", image=ta.image[r], annotation=r, score=wrong[k],
            reason=[f"attribute {name!r} is {bool(v)}; the model says {pv:.2f}" for v, pv in
                    zip(t[r].tolist(), p[r].tolist(), strict=True)],
            suggestion=[f"set {name}={not bool(v)}" for v in t[r].tolist()]))
    return QualityIssues.build(parts)
