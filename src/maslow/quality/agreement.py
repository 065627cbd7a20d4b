"""Annotator agreement, when several annotators (``annotations.annotator``) labelled the same images.

Glossary:

- an image is *shared* when at least two annotators have an annotation on it; an annotator *labelled* an image
  when they have at least one annotation on it (an annotator who found nothing leaves no trace); annotations
  without an annotator (None or NaN) belong to nobody and take no part;
- an *object* (a unit, in reliability terms) is a group of annotations of one shared image, at most one per
  annotator, matched across annotators, class-agnostically. Candidate pairs (two annotators, one image, IoU >=
  ``CheckConfig.agreement_iou``) come from the overlap sweep of ``maslow.quality.overlaps``; a pair whose boxes
  have no other candidate from each other's annotator is matched directly, the rest by a maximum-IoU assignment
  per image and pair of annotators (Hungarian, ``scipy.optimize.linear_sum_assignment``); matches are joined transitively (connected components). Rows without a box
  (tags): single-label, each annotator's tag of one image is the same object (one per image, class compared);
  multi-label (the schema lists the ``multilabel`` task, or some annotator gave two different tags to one image),
  each class tagged on an image by anyone is an object, and an annotator of the image who did not give that tag
  missed it, so identical answers agree whatever their order. A further row of one annotator in one object
  (the same tag repeated) is an object of its own;
- the *consensus* keeps an object when a strict majority of the image's annotators labelled it; its class is the
  strict majority of their classes (none on a tie);
- Cohen's kappa is per pair of annotators over the objects both labelled; Fleiss' kappa allows a varying number
  of raters per object (objects with at least two); Krippendorff's alpha is the nominal alpha with missing values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.types import BoolArray, FloatArray, IntArray, is_unset
from maslow.quality.config import CheckConfig
from maslow.quality.consistency import _norm, annotator_ids
from maslow.quality.issues import QualityIssues
from maslow.quality.overlaps import sweep_pairs


def cohen_kappa(a: Any, b: Any) -> float:
    """Cohen's kappa of two raters' nominal labels (equal-length sequences); NaN when chance agreement is 1."""
    x, y = np.asarray(a), np.asarray(b)
    if len(x) != len(y):
        raise ValueError(f"cohen_kappa: both raters must label the same units, got {len(x)} and {len(y)}")
    if not len(x):
        return float("nan")
    if x.dtype.kind in "iub" and y.dtype.kind in "iub":
        _, inv = np.unique(np.concatenate([x, y]), return_inverse=True)
    else:
        cats: dict[Any, int] = {}
        inv = np.asarray([cats.setdefault(v, len(cats)) for v in [*x.tolist(), *y.tolist()]])
    xi, yi = inv[: len(x)], inv[len(x):]
    k = int(inv.max()) + 1
    cm = np.bincount(xi * k + yi, minlength=k * k).reshape(k, k).astype(np.float64)
    n = cm.sum()
    po = np.trace(cm) / n
    pe = float((cm.sum(0) * cm.sum(1)).sum() / n**2)
    return float("nan") if pe >= 1 else float((po - pe) / (1 - pe))


def fleiss_kappa(counts: Any) -> float:
    """Fleiss' kappa from a (units, categories) count matrix; units may have different numbers of raters
    (those with fewer than two are skipped). NaN when undefined."""
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 2:
        raise ValueError(f"fleiss_kappa: counts must be (units, categories), got shape {n.shape}")
    r = n.sum(axis=1)
    n = n[r >= 2]
    r = r[r >= 2]
    if not len(n):
        return float("nan")
    p_i = ((n**2).sum(axis=1) - r) / (r * (r - 1))
    p_j = n.sum(axis=0) / r.sum()
    pe = float((p_j**2).sum())
    return float("nan") if pe >= 1 else float((p_i.mean() - pe) / (1 - pe))


def krippendorff_alpha(data: Any) -> float:
    """Nominal Krippendorff's alpha of a (raters, units) reliability matrix; None or NaN = missing.

    Values are compared for equality (any hashable). NaN when fewer than two pairable values or no variation.
    """
    arr = np.asarray(data, dtype=object)
    if arr.ndim != 2:
        raise ValueError(f"krippendorff_alpha: data must be (raters, units), got shape {arr.shape}")
    cats: dict[Any, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for (_, u), v in np.ndenumerate(arr):
        if is_unset(v):
            continue
        rows.append(u)
        cols.append(cats.setdefault(v, len(cats)))
    if not rows:
        return float("nan")
    n_units, k = arr.shape[1], len(cats)
    counts = np.zeros((n_units, k))
    np.add.at(counts, (np.asarray(rows), np.asarray(cols)), 1)
    return _alpha_from_counts(counts)


def _alpha_from_counts(counts: FloatArray) -> float:
    m = counts.sum(axis=1)
    keep = m >= 2
    c, m = counts[keep], m[keep]
    if not len(c):
        return float("nan")
    w = c / (m - 1)[:, None]
    o = c.T @ w - np.diag(w.sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d_o = o.sum() - np.trace(o)
    d_e = (n_c.sum() ** 2 - (n_c**2).sum()) / (n - 1)
    return float("nan") if d_e <= 0 else float(1 - d_o / d_e)


def _assign(score: FloatArray) -> tuple[IntArray, IntArray]:
    """The pairing of rows and columns with the largest total score (Hungarian method, scipy)."""
    from scipy.optimize import linear_sum_assignment

    r, c = linear_sum_assignment(score, maximize=True)
    return np.asarray(r, np.int64), np.asarray(c, np.int64)


@dataclass(frozen=True, eq=False)
class AgreementResult:
    """Agreement between annotators on their shared images.

    Attributes:
        annotators: (r,) names, sorted.
        unit_image: (u,) image row of each matched object. unit_rows: (u, r) annotation row per annotator, -1 if absent.
        unit_label: (u,) consensus class, -1 when no strict majority. unit_consensus: (u,) labelled by a majority.
        unit_iou: (u,) mean IoU over the object's pairs of boxes (NaN with fewer than two boxes).
        cohen_kappa: (r, r) class kappa per pair of annotators (NaN where they share no object).
        fleiss_kappa, krippendorff_alpha: class agreement over all objects.
        attributes: attribute name -> {"fleiss_kappa", "krippendorff_alpha", "n_objects"}.
        precision, recall: (r,) each annotator against the consensus.
        image_disagreement: (m,) fraction of an image's objects not labelled alike by all its annotators
            (NaN for images that are not shared).
        class_disagreement: (k,) the same per consensus class (NaN where no object).
    """

    annotators: tuple[str, ...]
    unit_image: IntArray
    unit_rows: IntArray
    unit_label: IntArray
    unit_consensus: BoolArray
    unit_iou: FloatArray
    cohen_kappa: FloatArray
    fleiss_kappa: float
    krippendorff_alpha: float
    precision: FloatArray
    recall: FloatArray
    image_disagreement: FloatArray
    class_disagreement: FloatArray
    class_names: tuple[str, ...]
    attributes: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def n_shared_images(self) -> int:
        return int((~np.isnan(self.image_disagreement)).sum())

    def ambiguous_images(self, n: int = 10) -> IntArray:
        """Rows of up to ``n`` shared images where the annotators disagree on some object, most disputed first
        (ties in row order); an image they labelled alike is not listed."""
        d = np.nan_to_num(self.image_disagreement, nan=0.0)
        order = np.argsort(-d, kind="stable")
        return order[: min(n, int((d > 0).sum()))]

    def ambiguous_classes(self) -> list[tuple[str, float]]:
        """(class, disagreement) for classes with objects, most disputed first."""
        order = np.argsort(-np.nan_to_num(self.class_disagreement, nan=-1.0), kind="stable")
        return [(self.class_names[c], float(self.class_disagreement[c])) for c in order
                if not np.isnan(self.class_disagreement[c])]

    def to_dict(self) -> dict[str, Any]:
        finite = self.unit_iou[~np.isnan(self.unit_iou)]
        return {
            "annotators": list(self.annotators),
            "n_shared_images": self.n_shared_images,
            "n_objects": len(self.unit_image),
            "fleiss_kappa": self.fleiss_kappa,
            "krippendorff_alpha": self.krippendorff_alpha,
            "cohen_kappa": {f"{a}|{b}": float(self.cohen_kappa[i, j]) for i, a in enumerate(self.annotators)
                            for j, b in enumerate(self.annotators) if i < j},
            "iou": {"mean": float(finite.mean()) if len(finite) else float("nan"),
                    "median": float(np.median(finite)) if len(finite) else float("nan"),
                    "p10": float(np.percentile(finite, 10)) if len(finite) else float("nan")},
            "per_annotator": {a: {"precision": float(self.precision[i]), "recall": float(self.recall[i])}
                              for i, a in enumerate(self.annotators)},
            "attributes": self.attributes,
            "ambiguous_classes": dict(self.ambiguous_classes()),
            "ambiguous_images": [int(i) for i in self.ambiguous_images()],
        }


def _components(n: int, p: IntArray, q: IntArray) -> IntArray:
    """(n,) component id (the smallest member) of each node of the graph with edges p-q."""
    comp = np.arange(n)
    while True:
        old = comp.copy()
        np.minimum.at(comp, p, comp[q])
        np.minimum.at(comp, q, comp[p])
        comp = comp[comp]
        if np.array_equal(comp, old):
            return comp


def _match(ds: Dataset, who: IntArray, rows: IntArray, threshold: float) -> tuple[IntArray, IntArray]:
    """One-to-one matches (row, row) between annotators' boxes of the same image with IoU >= threshold.

    Pairs come from the overlap sweep; a pair whose two boxes have no other candidate from each other's
    annotator is matched directly, the rest go through a maximum-IoU assignment per image and pair of annotators.
    """
    a = ds.annotations
    assert a.box is not None
    p, q, v = sweep_pairs(a.image[rows], a.box[rows], min_iou=threshold)
    p, q = rows[p], rows[q]
    cross = who[p] != who[q]
    p, q, v = p[cross], q[cross], v[cross]
    if not len(p):
        return p, q
    r = int(who.max()) + 1
    # candidates of each row towards each other annotator
    key_p = p * r + who[q]
    key_q = q * r + who[p]
    keys, counts = np.unique(np.concatenate([key_p, key_q]), return_counts=True)
    n_p = counts[np.searchsorted(keys, key_p)]
    n_q = counts[np.searchsorted(keys, key_q)]
    simple = (n_p == 1) & (n_q == 1)
    mp, mq = [p[simple]], [q[simple]]
    hard = np.flatnonzero(~simple)
    if len(hard):
        lo = np.minimum(who[p[hard]], who[q[hard]])
        hi = np.maximum(who[p[hard]], who[q[hard]])
        group = (a.image[p[hard]] * r + lo) * r + hi
        order = np.argsort(group, kind="stable")
        bounds = np.flatnonzero(np.diff(group[order])) + 1
        for g in np.split(order, bounds):
            e = hard[g]
            left = np.where(who[p[e]] < who[q[e]], p[e], q[e])
            right = np.where(who[p[e]] < who[q[e]], q[e], p[e])
            ul, il = np.unique(left, return_inverse=True)
            ur, ir = np.unique(right, return_inverse=True)
            m = np.zeros((len(ul), len(ur)))
            m[il, ir] = v[e]
            ri, ci = _assign(m)
            ok = m[ri, ci] >= threshold
            mp.append(ul[ri[ok]])
            mq.append(ur[ci[ok]])
    return np.concatenate(mp), np.concatenate(mq)


def _multilabel(ds: Dataset, who: IntArray) -> bool:
    """Tags (rows without a box) are multi-label when the schema lists the multilabel task or some annotator gave
    two different tags to one image; otherwise each annotator gives one class per image."""
    if Task.MULTILABEL in ds.schema.tasks:
        return True
    a = ds.annotations
    tag = np.flatnonzero(~a.has_box & (who >= 0))
    k = len(ds.schema.classes)
    trip = np.unique((a.image[tag] * (int(who.max(initial=0)) + 1) + who[tag]) * k + a.label[tag])
    return bool(len(np.unique(trip // k)) < len(trip))


def _units(ds: Dataset, who: IntArray, r: int, threshold: float) -> tuple[IntArray, IntArray]:
    """Matched objects of the shared images: (u,) image row and (u, r) annotation row per annotator (-1)."""
    a = ds.annotations
    rated = who >= 0
    labelled = np.zeros((ds.n_images, r), bool)
    labelled[a.image[rated], who[rated]] = True
    shared = labelled.sum(axis=1) >= 2
    in_shared = shared[a.image] & rated
    boxed = np.flatnonzero(in_shared & a.has_box)
    mp, mq = _match(ds, who, boxed, threshold)
    pos = np.full(len(a), -1, np.int64)
    pos[boxed] = np.arange(len(boxed))
    comp = _components(len(boxed), pos[mp], pos[mq])
    # one slot per (component, annotator): the first row; further rows of that annotator become their own objects
    order = np.lexsort((boxed, who[boxed], comp))
    c_s, w_s, r_s = comp[order], who[boxed][order], boxed[order]
    first = np.ones(len(order), bool)
    first[1:] = (c_s[1:] != c_s[:-1]) | (w_s[1:] != w_s[:-1])
    unit_key = np.where(first, c_s, len(boxed) + np.arange(len(order)))
    tags = np.flatnonzero(in_shared & ~a.has_box)
    k = len(ds.schema.classes)
    group = a.image[tags] * k + a.label[tags] if _multilabel(ds, who) else a.image[tags]
    t_order = np.lexsort((tags, who[tags], group))
    t_rows, g = tags[t_order], group[t_order]
    t_first = np.ones(len(t_rows), bool)
    t_first[1:] = (g[1:] != g[:-1]) | (who[t_rows][1:] != who[t_rows][:-1])
    base = 2 * len(a)  # above every box key
    t_key = np.where(t_first, base + g, base + ds.n_images * k + np.arange(len(t_rows)))
    all_key = np.concatenate([unit_key, t_key])
    all_rows = np.concatenate([r_s, t_rows])
    ukeys, inv = np.unique(all_key, return_inverse=True)
    U = np.full((len(ukeys), r), -1, np.int64)
    U[inv, who[all_rows]] = all_rows
    rep = np.where(U >= 0, U, np.iinfo(np.int64).max).min(axis=1)
    srt = np.lexsort((rep, a.image[rep]))
    U = U[srt]
    return a.image[rep[srt]], U


def annotator_agreement(ds: Dataset, *, config: CheckConfig = CheckConfig()) -> AgreementResult | None:
    """Agreement between annotators on shared images; None without an annotator column or shared images.

    Args:
        ds: annotations with ``annotator`` set.
        config: ``agreement_iou`` is the matching threshold.

    Returns:
        An ``AgreementResult``, or None when fewer than two annotators share an image.
    """
    a = ds.annotations
    if a.annotator is None or len(a) == 0:
        return None
    names, who = annotator_ids(a.annotator)
    if len(names) < 2:
        return None
    r = len(names)
    rated = who >= 0
    img, U = _units(ds, who, r, config.agreement_iou)
    if not len(img):
        return None
    has = U >= 0
    lab = np.where(has, a.label[np.where(has, U, 0)], -1)
    k = len(ds.schema.classes)
    # annotators of each image
    labelled = np.zeros((ds.n_images, r), bool)
    labelled[a.image[rated], who[rated]] = True
    n_img_raters = labelled[img].sum(axis=1)
    n_rated = has.sum(axis=1)
    consensus = n_rated * 2 > n_img_raters
    counts = np.zeros((len(U), k))
    np.add.at(counts, (np.repeat(np.arange(len(U)), r)[has.ravel()], lab.ravel()[has.ravel()]), 1)
    top = counts.argmax(axis=1)
    top_n = counts.max(axis=1)
    label = np.where(consensus & (top_n * 2 > n_rated), top, -1)
    # pairwise IoU spread
    assert a.box is not None
    iou_sum = np.zeros(len(U))
    iou_n = np.zeros(len(U))
    for j in range(r):
        for m_ in range(j + 1, r):
            both = np.flatnonzero(has[:, j] & has[:, m_])
            bj, bm = a.box[U[both, j]], a.box[U[both, m_]]
            iw = np.clip(np.minimum(bj[:, 2], bm[:, 2]) - np.maximum(bj[:, 0], bm[:, 0]), 0, None)
            ih = np.clip(np.minimum(bj[:, 3], bm[:, 3]) - np.maximum(bj[:, 1], bm[:, 1]), 0, None)
            inter = iw * ih
            union = (bj[:, 2] - bj[:, 0]) * (bj[:, 3] - bj[:, 1]) + (bm[:, 2] - bm[:, 0]) * (bm[:, 3] - bm[:, 1]) - inter
            with np.errstate(invalid="ignore", divide="ignore"):
                v = np.where(union > 0, inter / union, 0.0)
            v[np.isnan(union)] = np.nan
            np.add.at(iou_sum, both, v)
            np.add.at(iou_n, both, 1)
    with np.errstate(invalid="ignore"):
        unit_iou = np.where(iou_n > 0, iou_sum / np.maximum(iou_n, 1), np.nan)
    kappa = np.full((r, r), np.nan)
    for i in range(r):
        for j in range(i, r):
            pair = has[:, i] & has[:, j]
            if pair.any():
                kappa[i, j] = kappa[j, i] = cohen_kappa(lab[pair, i], lab[pair, j])
    fk = fleiss_kappa(counts)
    ka = _alpha_from_counts(counts)
    attrs: dict[str, dict[str, float]] = {}
    for name, values in a.attributes.items():
        uu, jj = np.nonzero(has)
        cats: dict[Any, int] = {}
        codes = np.fromiter((-1 if (v := _norm(x)) is None else cats.setdefault(v, len(cats))
                             for x in np.asarray(values, dtype=object)[U[uu, jj]].tolist()),
                            dtype=np.int64, count=len(uu))
        if cats:
            ac = np.zeros((len(U), len(cats)))
            ok = codes >= 0
            np.add.at(ac, (uu[ok], codes[ok]), 1)
            attrs[name] = {"fleiss_kappa": fleiss_kappa(ac), "krippendorff_alpha": _alpha_from_counts(ac),
                           "n_objects": int((ac.sum(1) >= 2).sum())}
    # precision / recall against the consensus
    good = has & (lab == label[:, None]) & (label[:, None] >= 0)
    shared = labelled.sum(axis=1) >= 2
    own = np.bincount(who[shared[a.image] & rated], minlength=r)
    tp = good.sum(axis=0)
    cons_units = label >= 0
    reach = (labelled[img][cons_units]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(own > 0, tp / np.maximum(own, 1), np.nan)
        recall = np.where(reach > 0, tp / np.maximum(reach, 1), np.nan)
    unanimous = (n_rated == n_img_raters) & (top_n == n_rated)
    dis = (~unanimous).astype(np.float64)
    per_img_n = np.bincount(img, minlength=ds.n_images)
    per_img_d = np.bincount(img, weights=dis, minlength=ds.n_images)
    img_dis = np.where(per_img_n > 0, per_img_d / np.maximum(per_img_n, 1), np.nan)
    cls = np.where(label >= 0, label, top)
    cls_n = np.bincount(cls, minlength=k)
    cls_d = np.bincount(cls, weights=dis, minlength=k)
    cls_dis = np.where(cls_n > 0, cls_d / np.maximum(cls_n, 1), np.nan)
    return AgreementResult(
        annotators=names, unit_image=img, unit_rows=U, unit_label=label, unit_consensus=consensus,
        unit_iou=unit_iou, cohen_kappa=kappa, fleiss_kappa=fk, krippendorff_alpha=ka, precision=precision,
        recall=recall, image_disagreement=img_dis, class_disagreement=cls_dis, class_names=ds.schema.names,
        attributes=attrs)


def agreement_issues(ds: Dataset, result: AgreementResult) -> QualityIssues:
    """Rows for the review queue: class disagreements, objects not every annotator saw, weak annotators."""
    a = ds.annotations
    names = ds.schema.names
    U, lab = result.unit_rows, result.unit_label
    has = U >= 0
    labels = np.where(has, a.label[np.where(has, U, 0)], -1)
    parts: list[QualityIssues] = []
    wrong = has & (lab[:, None] >= 0) & (labels != lab[:, None])
    uu, rr = np.nonzero(wrong)
    if len(uu):
        agree = (labels == lab[:, None]) & has
        first_ok = np.argmax(agree, axis=1)
        n_rated = has.sum(axis=1)
        frac = agree.sum(axis=1) / np.maximum(n_rated, 1)
        parts.append(QualityIssues.block(
            "annotator_class_disagreement", "warning", image=result.unit_image[uu], annotation=U[uu, rr],
            other=U[uu, first_ok[uu]], score=0.5 + 0.5 * frac[uu],
            reason=[f"{result.annotators[j]} labelled {names[labels[u, j]]}; the majority ({int(agree[u].sum())} of "
                    f"{int(n_rated[u])}) labelled {names[lab[u]]}" for u, j in zip(uu, rr, strict=True)],
            suggestion="check the class; add an example of this case to the guidelines"))
    n_rated = has.sum(axis=1)
    split = (lab < 0) & (n_rated >= 2) & (labels.max(axis=1) != np.where(has, labels, labels.max() + 1).min(axis=1))
    su = np.flatnonzero(split)
    if len(su):
        first = np.argmax(has[su], axis=1)
        odd = np.argmax(has[su] & (labels[su] != labels[su, first][:, None]), axis=1)
        parts.append(QualityIssues.block(
            "annotator_class_disagreement", "warning", image=result.unit_image[su], annotation=U[su, first],
            other=U[su, odd], score=0.5,
            reason=["no majority class: " + ", ".join(f"{result.annotators[j]} {names[labels[u, j]]}"
                                                      for j in np.flatnonzero(has[u])) for u in su],
            suggestion="decide the class; add an example of this case to the guidelines"))
    labelled = np.zeros((len(result.image_disagreement), len(result.annotators)), bool)
    if a.annotator is not None:
        found, who = annotator_ids(a.annotator)
        col = np.asarray([result.annotators.index(n) for n in found], np.int64)
        rated = who >= 0
        labelled[a.image[rated], col[who[rated]]] = True
    missing = labelled[result.unit_image] & ~has
    part = np.flatnonzero(missing.any(axis=1))
    if len(part):
        n_img = labelled[result.unit_image[part]].sum(axis=1)
        n_r = has[part].sum(axis=1)
        frac = n_r / n_img
        rep = U[part, np.argmax(has[part], axis=1)]
        parts.append(QualityIssues.block(
            "annotator_missed_object", "warning", image=result.unit_image[part], annotation=rep,
            score=0.4 + 0.5 * np.abs(2 * frac - 1),
            reason=[f"labelled by {', '.join(result.annotators[j] for j in np.flatnonzero(has[u]))} but not by "
                    f"{', '.join(result.annotators[j] for j in np.flatnonzero(missing[u]))}"
                    for u in part],
            suggestion="decide whether this is an object; label it or delete it for everyone"))
    for j, name in enumerate(result.annotators):
        p, r = result.precision[j], result.recall[j]
        worst = np.nanmin([p, r]) if not (np.isnan(p) and np.isnan(r)) else np.nan
        if not np.isnan(worst) and worst < 0.8:
            parts.append(QualityIssues.block(
                "annotator_low_agreement", "warning", image=-1, score=1 - worst,
                reason=f"annotator {name}: precision {p:.2f}, recall {r:.2f} against the majority",
                suggestion="review this annotator's work and walk them through the guidelines"))
    amb = np.flatnonzero(np.nan_to_num(result.image_disagreement, nan=0.0) >= 0.5)
    if len(amb):
        parts.append(QualityIssues.block(
            "ambiguous_image", "info", image=amb, score=0.5 * result.image_disagreement[amb],
            reason=[f"annotators disagree on {100 * result.image_disagreement[i]:.0f}% of the objects" for i in amb],
            suggestion="use this image as a worked example in the guidelines"))
    return QualityIssues.build(parts)


def check_agreement(ds: Dataset, config: CheckConfig = CheckConfig()) -> QualityIssues:
    """Agreement issues; empty when the dataset has no shared images."""
    res = annotator_agreement(ds, config=config)
    return QualityIssues.empty() if res is None else agreement_issues(ds, res)


__all__ = ["AgreementResult", "agreement_issues", "annotator_agreement", "check_agreement", "cohen_kappa",
           "fleiss_kappa", "krippendorff_alpha"]
