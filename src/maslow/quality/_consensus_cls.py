"""Consensus scoring of image labels (single- and multi-label), attribute values and semantic masks.

Probabilities enter only through ranks, so a monotone squeeze of the probabilities changes nothing: single
labels use the rank of each probability among all the reference probabilities; multi-label tags and attribute
values use class-conditional ranks (how a score compares with the images that have the tag and those without).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maslow.core.types import BoolArray, FloatArray, IntArray


@dataclass(frozen=True)
class LabelEvidence:
    """Per-sample evidence for single-label classification."""

    wrong: FloatArray  # (n,) the label is wrong
    suggested: IntArray  # (n,) the class it fits best, -1
    ambiguous: FloatArray  # (n,) fits its own class and another one


def _rank_below(ref: FloatArray, x: FloatArray) -> FloatArray:
    """Share of ``ref`` strictly below each ``x`` (plus half the ties): a mid-rank ECDF."""
    if not len(ref):
        return np.full(len(x), 0.5)
    s = np.sort(ref)
    lo = np.searchsorted(s, x, side="left")
    hi = np.searchsorted(s, x, side="right")
    out: FloatArray = (lo + hi) / (2.0 * len(s))
    return out


def label_evidence(probs: FloatArray, y: IntArray, ref_probs: FloatArray) -> LabelEvidence:
    """Single-label evidence from an (n, K) probability matrix, ranked against ``ref_probs`` (all its entries).

    Every probability becomes ``R``, its rank among all the reference probabilities (one global ECDF, so any
    monotone squeeze of the probabilities leaves it unchanged). The label is wrong as far as the best other
    class outranks it: ``wrong = (1 + R[alt] - R[y]) / 2``; ambiguous when both rank high: ``min(R[y], R[alt])``.
    """
    n = probs.shape[0]
    flat = np.sort(np.asarray(ref_probs, np.float64).ravel())
    R = np.searchsorted(flat, probs, side="right") / max(len(flat), 1)
    rows = np.arange(n)
    own = R[rows, y]
    alt = R.copy()
    alt[rows, y] = -1.0
    best = np.argmax(alt, axis=1)
    r_alt = alt[rows, best]
    wrong = (1.0 + r_alt - own) / 2.0
    ambiguous = np.minimum(own, r_alt)
    return LabelEvidence(wrong=np.clip(wrong, 0, 1), suggested=best.astype(np.int64),
                         ambiguous=np.clip(ambiguous, 0, 1))


@dataclass(frozen=True)
class TagEvidence:
    """Per-(sample, tag) evidence for multi-label tags and boolean attributes."""

    present_wrong: FloatArray  # (n, L) the tag is set but the model disagrees (0 where not set)
    absent_wrong: FloatArray  # (n, L) the tag is not set but the model sees it (0 where set)
    ambiguous: FloatArray  # (n, L) the model is undecided (mid-ranked between both populations)


def tag_evidence(probs: FloatArray, truth: BoolArray, ref_probs: FloatArray, ref_truth: BoolArray) -> TagEvidence:
    """Per tag: a set tag is wrong as far as the images without it score higher; an unset tag is missing as far
    as the images with it score lower (class-conditional ranks, squeeze-invariant)."""
    n, L = probs.shape
    pw = np.zeros((n, L))
    aw = np.zeros((n, L))
    amb = np.zeros((n, L))
    for j in range(L):
        pos = ref_probs[ref_truth[:, j], j]
        neg = ref_probs[~ref_truth[:, j], j]
        above_neg = 1.0 - _rank_below(neg, probs[:, j])  # share of the negatives scored higher
        below_pos = _rank_below(pos, probs[:, j])  # share of the positives scored lower
        t = truth[:, j]
        pw[t, j] = above_neg[t] * (1.0 - below_pos[t])
        aw[~t, j] = below_pos[~t] * (1.0 - above_neg[~t])
        amb[:, j] = np.minimum(above_neg, below_pos)
    return TagEvidence(present_wrong=pw, absent_wrong=aw, ambiguous=amb)


@dataclass(frozen=True)
class RegionEvidence:
    """Semantic segmentation: one row per (image, class) region the truth or the model has."""

    image: IntArray
    label: IntArray  # truth class of the region (wrong/extra) or predicted class (missing)
    annotation: IntArray  # truth mask row, -1 for missing
    type: list[str]
    score: FloatArray
    suggested: IntArray
    box: FloatArray  # (n, 4) xyxy of the contradicted pixels
    pixels: IntArray


def _bbox(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def region_evidence(t_maps: list[np.ndarray], p_maps: list[np.ndarray], t_rows: list[dict[int, int]],
                    k: int, fill: int) -> RegionEvidence:
    """Regions of each image where the model contradicts the truth's class.

    ``t_maps``/``p_maps`` are per-image label maps (``fill`` = unlabelled); ``t_rows[i]`` maps a truth class to its
    mask row. Each truth region gets the share of its pixels the model labels otherwise (type ``wrong_class``,
    suggested: the class the model uses most there, or ``extra`` when the model labels none of them as a class
    present in the truth); each predicted class absent from the truth gets its pixel share (``missing``).
    """
    image: list[int] = []
    label: list[int] = []
    ann: list[int] = []
    typ: list[str] = []
    score: list[float] = []
    sug: list[int] = []
    box: list[list[float]] = []
    pix: list[int] = []
    for i, (tm, pm) in enumerate(zip(t_maps, p_maps, strict=True)):
        for c, row in t_rows[i].items():
            region = tm == c
            n = int(region.sum())
            if not n:
                continue
            other = region & (pm != c) & (pm != fill)
            bad = int(other.sum())
            if not bad:
                continue
            counts = np.bincount(pm[other].ravel(), minlength=k + 1)[:k]
            s = int(np.argmax(counts))
            whole = bad / n
            image.append(i)
            label.append(c)
            ann.append(row)
            typ.append("extra" if whole >= 0.999 and s not in t_rows[i] else "wrong_class")
            score.append(whole)
            sug.append(s)
            box.append(_bbox(other))
            pix.append(bad)
        for c in np.unique(pm[(pm != fill)]).tolist():
            if c in t_rows[i] or c >= k:
                continue
            region = pm == c
            image.append(i)
            label.append(int(c))
            ann.append(-1)
            typ.append("missing")
            score.append(float(region.sum()) / region.size)
            sug.append(int(c))
            box.append(_bbox(region))
            pix.append(int(region.sum()))
    return RegionEvidence(image=np.asarray(image, np.int64), label=np.asarray(label, np.int64),
                          annotation=np.asarray(ann, np.int64), type=typ, score=np.asarray(score, float),
                          suggested=np.asarray(sug, np.int64),
                          box=np.asarray(box, float).reshape(-1, 4), pixels=np.asarray(pix, np.int64))
