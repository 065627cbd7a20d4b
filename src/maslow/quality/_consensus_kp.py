"""Consensus scoring of keypoints (``iou_type="keypoints"``): OKS in place of IoU, the same formulas.

Glossary:

- OKS: COCO's object keypoint similarity of a prediction with a truth object, as pycocotools'
  ``COCOeval.computeOks`` computes it (maslow's ``metrics._iou.oks_pairs``, bit for bit): per keypoint
  ``exp(-d**2 / (2 sigma)**2 / (area + eps) / 2)``, averaged over the truth's labelled keypoints (``v > 0``), with
  the truth object's ``area`` (COCO's ``area`` field, else its box ``w * h``, as ``coco_map`` reads it).
- A truth object with no labelled keypoint (``num_keypoints`` 0) is not scored, as pycocotools ignores it; its OKS
  (distances to twice its box, as ``computeOks``) still explains a prediction on it (no ``missing`` there).
- Sigmas: one per keypoint (the keypoints column's width); COCO's 17 person sigmas by default when there are 17.
- Per-keypoint similarity (which keypoints are off): ``oks_pairs`` of one keypoint at a time; a keypoint is *off*
  below 0.5 (for a person's wrist, about 2.6 sigma-widths at the object's scale).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError, KeypointSigmasError
from maslow.metrics._iou import (
    COCO_KEYPOINT_SIGMAS,
    _keypoints,
    check_pred_keypoints,
    keypoint_extent_areas,
    oks_pairs,
    truth_areas,
)
from maslow.metrics._prepare import _float_column, coco_xywh
from maslow.quality._consensus_det import Overlaps, PairSimilarity, _pairs
from maslow.quality.issues import QualityIssues

#: per-keypoint similarity below which a keypoint is named as off
OFF = 0.5
#: keypoints named in a suggestion, the worst first
_NAMED = 4


def sigmas_for(truth: Dataset, kpt_sigmas: Sequence[float] | FloatArray | None) -> FloatArray:
    """The OKS sigmas: ``kpt_sigmas``, or COCO's 17 person sigmas when the truth's keypoints are 17.

    Raises:
        InvalidDatasetError: no keypoints, no default for their number, or sigmas that are not one positive number
            per keypoint.
    """
    k = _keypoints(truth, "truth").shape[1]
    if kpt_sigmas is None:
        if k == len(COCO_KEYPOINT_SIGMAS):
            return COCO_KEYPOINT_SIGMAS
        cls = [c for c in truth.schema.classes if c.keypoints]
        named = f" ({cls[0].name}: {', '.join(cls[0].keypoints)})" if cls else ""
        raise KeypointSigmasError(
            f"truth.annotations.keypoints: OKS needs one sigma per keypoint; COCO's person sigmas are for 17 "
            f"keypoints, got {k}{named}. Pass kpt_sigmas")
    sig = np.asarray(kpt_sigmas, np.float64).reshape(-1)
    if len(sig) != k or not np.all(np.isfinite(sig) & (sig > 0)):
        raise InvalidDatasetError(f"kpt_sigmas: must be {k} positive numbers (one per keypoint of the truth), got "
                                  f"{sig.tolist()}")
    return sig


def carries_keypoints(ds: Dataset) -> bool:
    """Every row has keypoints whose x and y are numbers (and there is a row)."""
    kp = ds.annotations.keypoints
    return kp is not None and len(kp) > 0 and kp.shape[1] > 0 and not bool(np.isnan(kp[:, :, :2]).any())


def extent_boxes(ds: Dataset) -> int:
    """Rows whose box is exactly the extent of their keypoints: a results file without boxes (``loadRes`` and
    maslow's reader make them so), compared as boxes unless ``iou_type="keypoints"``."""
    a = ds.annotations
    kp, box = a.keypoints, a.box
    if kp is None or box is None or not len(a) or not kp.shape[1]:
        return 0
    has = ~np.isnan(kp[:, :, 0]).all(axis=1) & ~np.isnan(kp[:, :, 1]).all(axis=1)
    if not has.any():
        return 0
    k = kp[has]
    ext = np.stack([np.nanmin(k[:, :, 0], 1), np.nanmin(k[:, :, 1], 1), np.nanmax(k[:, :, 0], 1),
                    np.nanmax(k[:, :, 1], 1)], 1)
    return int((box[has] == ext).all(axis=1).sum())


def _labelled(truth: Dataset) -> BoolArray:
    """(n,) the truth object has a labelled keypoint (``num_keypoints`` when the reader kept it, else ``v > 0``),
    as ``coco_map`` decides which objects to ignore."""
    ta = truth.annotations
    kp = _keypoints(truth, "truth")
    with np.errstate(invalid="ignore"):
        n_kp = np.sum(kp[:, :, 2] > 0, axis=1).astype(np.float64) if len(kp) else np.zeros(len(ta))
    given = _float_column(ta, "num_keypoints")
    if given is not None:
        n_kp = np.where(np.isnan(given), n_kp, given)
    out: BoolArray = n_kp > 0
    return out


def truth_geometry(truth: Dataset) -> tuple[FloatArray, FloatArray]:
    """(n, 4) xywh boxes (NaN rows: none) and (n,) areas of every truth row, as ``coco_map`` reads them."""
    ta = truth.annotations
    rows = np.arange(len(ta))
    xywh = coco_xywh(ta, rows) if ta.box is not None else np.full((len(ta), 4), np.nan)
    area = truth_areas(truth, rows, None, xywh)
    return xywh, area


def keypoint_overlaps(truth: Dataset, pred: Dataset, sigmas: FloatArray) -> Overlaps:
    """Every (prediction, truth) pair of an image with OKS > 0 (``iou`` holds the OKS), any classes; the scored
    truth objects are those with a labelled keypoint, not crowd."""
    ta, pa = truth.annotations, pred.annotations
    g_kp, d_kp = _keypoints(truth, "truth"), _keypoints(pred, "pred")
    for side, kp in (("truth", g_kp), ("pred", d_kp)):
        if len(kp) and kp.shape[1] != len(sigmas):
            raise KeypointSigmasError(f"{side}.annotations.keypoints: must have {len(sigmas)} keypoints (one per "
                                      f"sigma), got {kp.shape[1]}. Pass kpt_sigmas")
    check_pred_keypoints(pred, np.arange(len(pa)))
    xywh, area = truth_geometry(truth)
    assert ta.iscrowd is not None
    scored = _labelled(truth) & ~ta.iscrowd
    bad = np.flatnonzero(scored & ~np.isfinite(area))
    if bad.size:
        raise InvalidDatasetError(f"truth.annotations row {bad[0]}: OKS needs the object's area (extra['area'] or "
                                  f"a box), got neither ({bad.size} rows)")
    p_idx, t_idx = _pairs(ta.image, pa.image, truth.n_images)
    kept, oks = oks_pairs(d_kp, g_kp, xywh, area, sigmas, p_idx, t_idx)
    if len(kept) < len(p_idx):
        p_idx, t_idx = p_idx[kept], t_idx[kept]
    oks = np.nan_to_num(oks, nan=0.0)  # an object with neither a labelled keypoint nor a box: unrelated
    keep = oks > 0
    return Overlaps(p_idx=p_idx[keep], t_idx=t_idx[keep], iou=oks[keep], scored=scored)


def pred_boxes(pred: Dataset) -> FloatArray:
    """(n, 4) xyxy box of each prediction; the keypoints' extent where it has none."""
    pa = pred.annotations
    kp = _keypoints(pred, "pred")
    box = np.full((len(pa), 4), np.nan) if pa.box is None else np.array(pa.box, np.float64)
    none = np.isnan(box[:, 0])
    if none.any():
        k = kp[none]
        box[none] = np.stack([k[:, :, 0].min(1), k[:, :, 1].min(1), k[:, :, 0].max(1), k[:, :, 1].max(1)], 1)
    return box


def pred_similarity(pred: Dataset, sigmas: FloatArray) -> PairSimilarity:
    """OKS of prediction ``a`` with prediction ``b`` as the object (all its keypoints labelled, its area the
    keypoints' extent, as ``loadRes`` computes a keypoint result's area)."""
    kp = _keypoints(pred, "pred")
    box = pred_boxes(pred)

    def similarity(a: IntArray, b: IntArray) -> FloatArray:
        g = np.array(kp[b])
        g[:, :, 2] = 2.0
        bb = box[b]
        xywh = np.c_[bb[:, :2], bb[:, 2:] - bb[:, :2]]
        idx = np.arange(len(b))
        kept, oks = oks_pairs(kp, g, xywh, keypoint_extent_areas(g), sigmas, a, idx)
        out = np.zeros(len(a))
        out[kept] = oks
        return np.nan_to_num(out, nan=0.0)

    return similarity


def _per_keypoint(d: FloatArray, g: FloatArray, xywh: FloatArray, area: FloatArray, sigmas: FloatArray,
                  cross: tuple[int, int] | None = None) -> FloatArray:
    """(n, K) similarity of each keypoint of aligned pairs (``d``, ``g``: (n, K, 3)), NaN where the truth has no
    labelled keypoint; ``cross=(i, j)``: (n,) of the truth's keypoint ``i`` with the prediction's ``j``."""
    idx = np.arange(len(d))
    cols = [(j, j) for j in range(d.shape[1])] if cross is None else [cross]
    out = np.full((len(d), len(cols)), np.nan)
    for c, (i, j) in enumerate(cols):
        kept, v = oks_pairs(np.ascontiguousarray(d[:, j:j + 1]), np.ascontiguousarray(g[:, i:i + 1]), xywh, area,
                            sigmas[i:i + 1], idx, idx)
        out[kept, c] = v
    with np.errstate(invalid="ignore"):
        labelled = g[:, [i for i, _ in cols], 2] > 0
    out[~labelled] = np.nan
    return out[:, 0] if cross is not None else out


def _names(truth: Dataset, label: int, k: int) -> list[str]:
    kp = truth.schema.classes[label].keypoints
    return list(kp) if len(kp) == k else [f"keypoint {j}" for j in range(k)]


def _xy(p: FloatArray) -> str:
    return f"({p[0]:.1f}, {p[1]:.1f})"


def _disagreement(names: list[str], ks: FloatArray, dist: FloatArray, model: FloatArray,
                  swapped: set[tuple[int, int]]) -> tuple[int, str]:
    """How many keypoints are off, and the suggestion naming the worst (a swapped pair as one item)."""
    lab = np.flatnonzero(~np.isnan(ks))
    order = lab[np.argsort(ks[lab], kind="stable")]
    off = [int(j) for j in order if ks[j] < OFF] or [int(j) for j in order[:1]]
    items: list[str] = []
    done: set[int] = set()
    for j in off:
        if j in done:
            continue
        pair = next(((a, b) for a, b in swapped if j in (a, b)), None)
        if pair is not None:
            done.update(pair)
            items.append(f"{names[pair[0]]} and {names[pair[1]]} look swapped")
        else:
            done.add(j)
            items.append(f"{names[j]} {dist[j]:.0f} px from the model's {_xy(model[j])}")
    more = len(items) - _NAMED
    text = "; ".join(items[:_NAMED]) + (f"; {more} more" if more > 0 else "")
    n_off = int(np.sum(ks[lab] < OFF))
    return n_off, f"{'use' if n_off else 'check'} the model's keypoints: {text}"


def low_oks_block(truth: Dataset, pred: Dataset, rows: IntArray, pred_rows: IntArray, score: FloatArray,
                  typical: FloatArray, sigmas: FloatArray, severity: str) -> QualityIssues:
    """``low_iou`` findings of keypoints: the object is there, its keypoints disagree with the model's (those off
    most named, with the model's positions; a pair each at the other's place named as swapped); the ``keypoints``
    column holds the model's keypoints (prediction ``pred_rows``), the fix."""
    ta = truth.annotations
    g_all, d_all = _keypoints(truth, "truth"), _keypoints(pred, "pred")
    xywh_all, area_all = truth_geometry(truth)
    g, d = g_all[rows], d_all[pred_rows]
    xywh, area = xywh_all[rows], area_all[rows]
    idx = np.arange(len(rows))
    kept, oks = oks_pairs(d, g, xywh, area, sigmas, idx, idx)
    pair_oks = np.full(len(rows), np.nan)
    pair_oks[kept] = oks
    ks = _per_keypoint(d, g, xywh, area, sigmas)
    dist = np.hypot(d[:, :, 0] - g[:, :, 0], d[:, :, 1] - g[:, :, 1])
    with np.errstate(invalid="ignore"):
        off = ks < OFF
    swapped: list[set[tuple[int, int]]] = [set() for _ in rows]
    k = len(sigmas)
    for i in range(k):
        for j in range(i + 1, k):
            both = np.flatnonzero(off[:, i] & off[:, j])
            if not both.size:
                continue
            a = _per_keypoint(d[both], g[both], xywh[both], area[both], sigmas, cross=(i, j))
            b = _per_keypoint(d[both], g[both], xywh[both], area[both], sigmas, cross=(j, i))
            for r in both[(a >= OFF) & (b >= OFF)].tolist():
                swapped[r].add((i, j))
    reason, suggestion = [], []
    for n, lab in enumerate(ta.label[rows].tolist()):
        names = _names(truth, lab, k)
        n_off, text = _disagreement(names, ks[n], dist[n], d[n], swapped[n])
        n_lab = int(np.sum(~np.isnan(ks[n])))
        what = f"{n_off} of {n_lab} keypoints disagree" if n_off else "the keypoints agree loosely"
        reason.append(f"{truth.schema.names[lab]!r}: {what} with the model's (OKS {pair_oks[n]:.2f}; typical "
                      f"{typical[lab]:.2f})")
        suggestion.append(text)
    fix = np.where((pred_rows >= 0)[:, None, None], d, np.nan)  # -1: no prediction behind the row
    return QualityIssues.block("low_iou", severity, image=ta.image[rows], annotation=rows, score=score,
                               reason=reason, suggestion=suggestion, label=ta.label[rows], keypoints=fix)


def missing_block(truth: Dataset, pred: Dataset, rows: IntArray, label: IntArray, box: FloatArray,
                  score: FloatArray, severity: str) -> QualityIssues:
    """``missing`` findings of keypoints: the model's object, its box and its keypoints (the ``box`` and
    ``keypoints`` columns, and the text)."""
    kp = _keypoints(pred, "pred")
    names = truth.schema.names
    k = kp.shape[1]
    text = []
    for r, c, b in zip(rows.tolist(), label.tolist(), box, strict=True):
        kn = _names(truth, c, k)
        pts = ", ".join(f"{kn[j]} {_xy(kp[r, j])}" for j in range(k))
        text.append(f"add a {names[c]!r} at xyxy [{', '.join(f'{v:.1f}' for v in b.tolist())}] with the model's "
                    f"keypoints: {pts}")
    return QualityIssues.block(
        "missing", severity, image=pred.annotations.image[rows], annotation=-1, score=score,
        reason=[f"the model sees a {names[c]!r} (keypoints) no annotation covers" for c in label.tolist()],
        suggestion=text, box=box, label=label, keypoints=kp[rows])
