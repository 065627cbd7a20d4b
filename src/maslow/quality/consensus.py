"""Consensus scoring: rank the annotations most likely wrong by comparing them with out-of-fold predictions.

``find_label_issues(truth, pred)`` returns the same ranked ``QualityIssues`` table the rule checks return, with
five issue types, each with a score in [0, 1] (higher = more likely an error) and the model's suggestion
(``suggestion`` text, plus the ``box``, ``label`` and, for keypoints, ``keypoints`` columns):

- ``wrong_class``: a confident prediction of another class sits on the object (suggested class);
- ``missing``: an object the model sees that no annotation covers (``annotation`` -1; suggested box and class);
- ``extra``: an annotation where the model sees nothing, of any class;
- ``low_iou``: a prediction of the same class overlaps the annotation worse than the class's typical match
  (suggested box);
- ``ambiguous``: the model supports both the annotated class and another one.

How the scores are built (objects: detection boxes, or instance masks with ``iou_type="segm"``):

- Every prediction's confidence becomes ``q``, the **precision of its class's predictions at its score's rank**,
  learnt from the data: a prediction is a hit when it overlaps an annotation of its class (IoU >= tau); the
  class's hits are fitted against the score ranks by isotonic regression (shrunk toward the class's hit rate by
  3 pseudo-counts; each scored prediction left out of its own block, so a prediction no annotation matches does
  not lower its own ``q``), read at each prediction's rank. Only ranks enter, so a monotone squeeze of the
  confidences (a badly calibrated detector) leaves every ``q`` and every score unchanged, and no confidence
  threshold exists: what counts as confident is learnt per class.
- Each prediction votes only for the truth object it overlaps most (class-agnostic IoU). With ``tau`` the
  match IoU (``match_iou``, default 0.5): ``same`` = the best ``q`` of same-class votes with IoU >= tau,
  ``other`` = the best ``q`` of other-class votes with IoU >= tau (its class is the suggestion);
  ``wrong_class = other * (1 - same)``, ``ambiguous = min(same, other)``.
- An annotation's *match* is the same-class vote overlapping it most, when IoU >= 0.1 (below, the two are
  unrelated): the box a ``low_iou`` finding moves it to. It is that annotation's, never a ``missing`` object: a
  prediction is one finding at most (accepting a ``low_iou`` and a ``missing`` of one prediction labelled it twice).
- ``extra = recall * (1 - e)``, ``e = max(q * min(1, IoU / tau))`` over the votes of any class (a prediction that
  is another annotation's object explains nothing here; the annotation's match, and a same-class prediction paired
  with it both ways, each the other's best overlap, count as IoU >= tau: a loose box is ``low_iou``, not ``extra``), and
  ``recall`` the model's expected recall, the mean of ``e`` over the scored annotations (of ``reference``): the
  share of the labelled objects the model sees, each counted by the ``q`` of its sighting. An annotation no
  prediction touches scores ``recall``, not 1: the model's silence is evidence only as far as it sees what is
  labelled (a model that misses real objects makes them look like boxes on nothing). A confirmed object's
  ``extra`` is ``recall * (1 - q)``: ``find_label_issues`` reports it from 0.5 up only.
- ``low_iou = q * clip((typical_c - IoU) / typical_c, 0, 1)`` for the annotation's match (none: 0), where
  ``typical_c`` is the median IoU of the class's good matches (the detector's own localisation quality, learnt
  from the data); the suggested box is that prediction's.
- ``missing = q * (1 - e)`` for each prediction, ``e`` how well the annotations explain it: 1 when it and an
  annotation are each other's best overlap (IoU >= 0.1), or it is an annotation's match (their disagreement is that
  annotation's ``low_iou`` or ``wrong_class``),
  else ``min(1, IoU_max / tau) ** 2``. Of overlapping candidates (IoU >= tau) only the best is kept
  (class-agnostic NMS).

Comparable across types: each score is a product of factors in [0, 1] with the same meaning everywhere: the
model's precision at that confidence (``q``) and the geometric evidence (1 = outright), so a 0.9 ``missing``
and a 0.9 ``wrong_class`` both say "predictions this confident are right 90% of the time, and this one
contradicts the label outright" (an ``extra`` with no prediction near: "the model sees that share of the
labelled objects, and nothing here"), and one ranked table is meaningful.

Batches: an image's scores depend only on its own annotations and predictions, and on documented statistics of
the set: per class the calibration curve ``q`` and ``typical_c``, and the model's ``recall``, fitted on
``reference`` (the whole ``(truth, pred)``, by default the data scored; classification: the calibrations;
semantic class masks: the usual confusion and the void classes). Scoring parts of a dataset with
``reference=(whole_truth, whole_pred)`` gives the rows of the whole run exactly. Per-pixel probabilities refuse a
``reference`` (a ``(truth, pred)`` pair holds none).

Classification (``annotations.extra["probs"]``, an (n_images, K) matrix, or scored tag annotations), single label
``y``: two per-class calibrations of the probabilities' ranks against the labels (so a monotone squeeze changes
nothing). ``q_j``, isotonic regression of "labelled j" on the rank of ``p_j`` (each image left out of its block): the
share of images the model scores like this for ``j`` that carry ``j``; ``alt`` is the other class of highest ``q``,
``share = q[alt] / (q[y] + q[alt])``. ``c``, a logistic fit of "labelled j" on the logit of the rank (one intercept
per class, as confident learning's per-class thresholds, one slope): a smooth calibrated confidence in the label.
The score is ``(1 - c) * share``: ``wrong_class`` when ``share >= 1 - ambiguous_share`` (0.75 by default: the model
backs ``alt`` 3:1 over the label), ``ambiguous`` when ``ambiguous_share <= share < 1 - ambiguous_share``, no
finding below; one scale, so a flip the model is sure of ranks above an image it is torn on, and a calibrated model
yields findings around its disagreements only. Multi-label tags and boolean attribute values get
``extra``/``missing`` (a set tag the model denies, an unset one it sees) and ``wrong_class`` (attributes), scored
``1 - c`` and ``c`` with ``c`` a logistic fit of the tag on the logit of its probability's rank, one per tag.
Semantic segmentation: per image and class region, the share of the pixels the model labels as another class that
its usual confusion of the two classes (counted over the other images) does not explain; the label maps are read
one image at a time, keeping its pixel counts per class pair. Given the model's per-pixel
probabilities (``pixel_probs``), per connected region the model contradicts: the mean of its probability that the
label is wrong, less what its usual confusion at that confidence explains (``maslow.quality._consensus_sem``). A void
class (crowd-only, or ``ignore_index``) is not scored, and pixels the model gives it are neither errors nor evidence.

Keypoints (``iou_type="keypoints"``; ``auto`` for a keypoints truth and predictions that all carry keypoints): the
same formulas with COCO's OKS (pycocotools' ``computeOks``: per-keypoint sigmas, ``kpt_sigmas``, COCO's 17 person
sigmas by default for 17 keypoints; the truth object's area; its labelled keypoints) in place of IoU. Truth objects
without a labelled keypoint are not scored, as pycocotools ignores them. ``low_iou`` then says: the object is
there, but its keypoints disagree with the model's; the suggestion names the keypoints off most (per-keypoint
similarity below 0.5) with the model's positions, and a pair each at the other's place as swapped
(``maslow.quality._consensus_kp``). The ``keypoints`` column holds the model's keypoints, the fix: those of the
prediction behind a ``low_iou`` row (``ObjectScores.suggested_pred``), and of the prediction a ``missing`` row adds.

Oriented boxes (``iou_type="obb"``; ``auto`` for an oriented truth, ``maslow.quality.oriented``, whose predictions
are all 4-point polygons): the same formulas with the IoU of the oriented boxes (``maslow.metrics._obb``, as
``coco_map(..., iou_type="obb")``), not of their extents, which overlap for thin turned objects side by side and hide
a wrong angle. The ``polygon`` column holds the model's oriented box (its 4 corners; the ``box`` column their extent)
of a ``low_iou`` and a ``missing`` row, the fix ``maslow review apply`` makes (``maslow.quality._consensus_obb``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError
from maslow.io.pixel_probs import read_pixel_probs  # an alias of maslow.io.read_pixel_probs (it first lived here)
from maslow.quality import _consensus_kp as KP
from maslow.quality import _consensus_obb as OBB
from maslow.quality import _consensus_sem as SEM
from maslow.quality._consensus_cls import attribute_issues, label_evidence, tag_evidence
from maslow.quality._consensus_det import (
    Masks,
    ObjectEvidence,
    Overlaps,
    calibrate,
    expected_recall,
    object_evidence,
    prepare_objects,
    true_positives,
    typical_iou,
)
from maslow.quality._consensus_summary import ISSUE_TYPES, ConsensusSummary, estimate_error_rates, summarize
from maslow.quality.issues import QualityIssues
from maslow.quality.oriented import is_oriented

__all__ = ["ISSUE_TYPES", "ConsensusSummary", "estimate_error_rates", "find_label_issues", "object_scores",
           "read_pixel_probs", "resolve_iou_type", "summarize"]

_SEVERITY = {"wrong_class": "warning", "missing": "warning", "extra": "warning", "low_iou": "info",
             "ambiguous": "info"}
PROBS = "probs"


def _remap(truth: Dataset, pred: Dataset, side: str = "pred") -> IntArray:
    """Pred class index -> truth class index, by name."""
    names = truth.schema.names
    pos = {n: i for i, n in enumerate(names)}
    unknown = [n for n in pred.schema.names if n not in pos]
    used = set(np.unique(pred.annotations.label).tolist())
    bad = [n for i, n in enumerate(pred.schema.names) if n in unknown and i in used]
    if bad:
        raise InvalidDatasetError(f"{side}.schema: class {bad[0]!r} is not a truth class ({', '.join(names)})")
    return np.asarray([pos.get(n, -1) for n in pred.schema.names], np.int64)


def _check_images(truth: Dataset, pred: Dataset, side: str = "pred") -> None:
    if pred.n_images != truth.n_images or not np.array_equal(pred.images.path, truth.images.path):
        raise InvalidDatasetError(
            f"{side}.images: must be the truth's images table ({truth.n_images} images, same paths), got "
            f"{pred.n_images} images; read predictions with like=truth")


def _xyxy_text(b: FloatArray) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in b.tolist()) + "]"


def resolve_iou_type(truth: Dataset, pred: Dataset, iou_type: str = "auto") -> str:
    """What objects are compared by: ``iou_type``, or for ``"auto"``: ``keypoints`` for a keypoints truth whose
    predictions all carry keypoints, ``obb`` for an oriented truth (``maslow.quality.oriented.is_oriented``: primary
    task detection, every polygon one ring of 4 points) whose predictions are all such polygons, ``segm`` for an
    instance-segmentation truth whose predictions all have masks (an RLE or polygons), else ``bbox``."""
    if iou_type != "auto":
        if iou_type not in ("bbox", "segm", "keypoints", "obb"):
            raise InvalidDatasetError(f"iou_type must be 'auto', 'bbox', 'segm' or 'keypoints' (or 'obb', oriented "
                                      f"boxes), got {iou_type!r}")
        return iou_type
    if truth.schema.task == Task.KEYPOINTS and truth.annotations.keypoints is not None and \
            KP.carries_keypoints(pred):
        return "keypoints"
    if is_oriented(truth) and OBB.is_oriented_pred(pred):
        return "obb"
    pa = pred.annotations  # a mask is an RLE or polygons (COCO's segmentation either way; segm reads both)
    shaped = np.zeros(len(pa), bool) if pa.polygon is None else ~pa.polygon.null
    if pa.mask is not None:
        shaped |= np.asarray([m is not None for m in pa.mask.tolist()], bool)
    return "segm" if truth.schema.task == Task.INSTANCE_SEGMENTATION and len(pa) and shaped.all() else "bbox"


@dataclass(frozen=True)
class ObjectScores:
    """Raw per-type scores of every truth object and every prediction (objects only; see the module docstring).

    Attributes:
        annotation: type -> (n_truth,) score of each truth row (0 for rows not scored: crowd, no geometry).
        suggested_label: (n_truth,) the class suggested for ``wrong_class`` (truth schema row), -1.
        suggested_box: (n_truth, 4) xyxy box suggested for ``low_iou``, NaN.
        missing: (n_pred,) ``missing`` score of each prediction (0 when explained or suppressed).
        pred_label: (n_pred,) prediction class as a truth schema row. pred_box: (n_pred, 4) xyxy.
        q: (n_pred,) calibrated confidence of each prediction (per-class precision at its score's rank).
        match_iou: (K,) the typical IoU (keypoints: OKS) of a good match per class (``typical_c``).
        suggested_pred: (n_truth,) the prediction behind ``low_iou`` (keypoints: its keypoints are the fix), -1.
        confirmed: (n_truth,) a prediction of the annotation's class is paired with it both ways (each the other's
            best overlap): the model sees the object, and its ``extra`` score is only ``recall * (1 - q)`` of that
            prediction.
        iou_type: ``bbox``, ``segm``, ``keypoints`` or ``obb`` (what IoU means above).
        explained: (n_truth,) how well the model sees each object: the best ``q * min(1, IoU / tau)`` of the
            predictions it owns (a confirming one counts in full: ``q``); 0 where it sees nothing
            (``extra = recall * (1 - explained)``).
        recall: the model's expected recall, the mean of ``explained`` over the scored objects of ``reference``
            (the strength of "the model sees nothing here"; 1 without scored objects).
        pred_corners: ``obb``: (n_pred, 4, 2) each prediction's oriented box (the ``polygon`` suggested for a
            ``low_iou`` row, by ``suggested_pred``, and a ``missing`` one); None otherwise.
    """

    annotation: dict[str, FloatArray]
    suggested_label: IntArray
    suggested_box: FloatArray
    missing: FloatArray
    pred_label: IntArray
    pred_box: FloatArray
    q: FloatArray
    match_iou: FloatArray
    suggested_pred: IntArray
    iou_type: str
    confirmed: BoolArray
    explained: FloatArray
    recall: float
    pred_corners: FloatArray | None = None


def object_scores(truth: Dataset, pred: Dataset, *, iou_type: str = "auto", match_iou: float | None = None,
                  reference: tuple[Dataset, Dataset] | None = None,
                  kpt_sigmas: Sequence[float] | FloatArray | None = None) -> ObjectScores:
    """Per-type scores of every truth object and prediction (the raw material of ``find_label_issues``).

    Args:
        truth: ground-truth objects (boxes, masks/polygons for ``iou_type="segm"``, oriented boxes for ``"obb"``).
        pred: scored predictions on the same images table (``read_coco_predictions(..., like=truth)``).
        iou_type: ``"bbox"``, ``"segm"`` (pycocotools mask IoU), ``"keypoints"`` (OKS, as pycocotools), ``"obb"``
            (oriented boxes, as ``coco_map``) or ``"auto"`` (see ``resolve_iou_type``).
        match_iou: IoU at which a prediction is on the object, and the typical IoU of a good match; None: 0.5
            for the first, the per-class median of the data for the second.
        reference: ``(truth, pred)`` of the whole set whose per-class statistics (calibration, typical match
            IoU) are used (default: ``(truth, pred)``); pass the whole set when scoring a part of it.
        kpt_sigmas: keypoints: OKS sigmas, one per keypoint (default: COCO's 17 person sigmas, for 17 keypoints).

    Returns:
        ObjectScores.

    Raises:
        InvalidDatasetError: other images, unknown classes, or predictions without the geometry needed.
    """
    _check_images(truth, pred)
    kind = resolve_iou_type(truth, pred, iou_type)
    k = len(truth.schema.classes)
    tau = 0.5 if match_iou is None else match_iou
    sigmas = KP.sigmas_for(truth, kpt_sigmas) if kind == "keypoints" else None
    ov, plab, pbox, score, p_rles, p_corners = _prepare(truth, pred, kind, sigmas)
    if reference is None:
        r_ov, r_lab, r_score, r_truth = ov, plab, score, truth
    else:
        r_truth, r_pred = reference
        _check_images(r_truth, r_pred, "reference pred")
        r_ov, r_lab, _, r_score, _, _ = _prepare(r_truth, r_pred, kind, sigmas)
        if r_truth.schema.names != truth.schema.names:
            raise InvalidDatasetError("reference truth: must have the truth's classes, in the same order")
    typical = typical_iou(r_ov, r_truth, r_lab, len(r_lab), k, match_iou)
    r_tp = true_positives(r_ov, r_truth, r_lab, tau)
    cal = calibrate(r_score, r_lab, r_tp, k, typical)
    q = cal.q(score, plab, true_positives(ov, truth, plab, tau))
    # the model's expected recall, a statistic of the reference like the calibration (None: the data's own)
    recall = None if reference is None else expected_recall(r_ov, r_truth, r_lab, cal.q(r_score, r_lab, r_tp), tau)
    sim = KP.pred_similarity(pred, sigmas) if sigmas is not None else \
        OBB.pred_similarity(pred) if kind == "obb" else None
    ev: ObjectEvidence = object_evidence(truth, ov, plab, pbox, pred.annotations.image, q, typical, tau, p_rles, sim,
                                         recall)
    return ObjectScores(
        annotation={"wrong_class": ev.wrong_class, "extra": ev.extra, "low_iou": ev.low_iou,
                    "ambiguous": ev.ambiguous},
        suggested_label=ev.wrong_class_label, suggested_box=ev.low_iou_box, missing=ev.missing,
        pred_label=plab, pred_box=pbox, q=q, match_iou=ev.match_iou, suggested_pred=ev.low_iou_pred, iou_type=kind,
        confirmed=ev.confirmed, explained=ev.explained, recall=ev.recall, pred_corners=p_corners)


def _prepare(truth: Dataset, pred: Dataset, kind: str, sigmas: FloatArray | None
             ) -> tuple[Overlaps, IntArray, FloatArray, FloatArray, Masks | None, FloatArray | None]:
    pa = pred.annotations
    remap = _remap(truth, pred)
    plab = remap[pa.label] if len(pa) else np.zeros(0, np.int64)
    # predictions without a confidence tie above every scored one (q: the hit rate of that tie)
    score = np.full(len(pa), np.inf) if pa.score is None else np.nan_to_num(
        np.asarray(pa.score, np.float64), nan=np.inf, posinf=np.inf)
    if kind == "keypoints":
        assert sigmas is not None
        return KP.keypoint_overlaps(truth, pred, sigmas), plab, KP.pred_boxes(pred), score, None, None
    if kind == "obb":
        pbox, ov, corners = OBB.obb_objects(truth, pred)
        return ov, plab, pbox, score, None, corners
    pbox, ov, p_rles = prepare_objects(truth, pred, kind)
    return ov, plab, pbox, score, p_rles, None


def _pick(scores: dict[str, FloatArray], one_per_annotation: bool, min_score: float) -> dict[str, np.ndarray]:
    """Rows of each type to report: score >= min_score (> 0), and only each row's best type when asked."""
    names = list(scores)
    mat = np.stack([scores[t] for t in names]) if names else np.zeros((0, 0))
    keep = (mat >= min_score) & (mat > 0)
    if one_per_annotation and len(names):
        best = np.argmax(mat, axis=0)
        keep &= np.arange(len(names))[:, None] == best[None, :]
    return {t: np.flatnonzero(keep[j]) for j, t in enumerate(names)}


def _objects(truth: Dataset, pred: Dataset, *, iou_type: str, match_iou: float | None,
             reference: tuple[Dataset, Dataset] | None, min_score: float, one_per_annotation: bool,
             kpt_sigmas: Sequence[float] | FloatArray | None) -> QualityIssues:
    s = object_scores(truth, pred, iou_type=iou_type, match_iou=match_iou, reference=reference,
                      kpt_sigmas=kpt_sigmas)
    kp = s.iou_type == "keypoints"
    ta = truth.annotations
    names = truth.schema.names
    # an object the model sees as labelled is not reported extra below 0.5: recall * (1 - q) there is the model's
    # own error rate at that score (weighed by its recall), the same for every such object (it listed them all,
    # "the model sees no object") and it hid a weaker low_iou of the same annotation
    scores = dict(s.annotation)
    weak = s.confirmed & (scores["extra"] < 0.5)
    scores["extra"] = np.where(weak, 0.0, scores["extra"])
    rows = _pick(scores, one_per_annotation, min_score)
    parts = []
    r = rows["wrong_class"]
    sug = s.suggested_label[r]
    parts.append(QualityIssues.block(
        "wrong_class", _SEVERITY["wrong_class"], image=ta.image[r], annotation=r, score=s.annotation["wrong_class"][r],
        reason=[f"labelled {names[a]!r}; the model sees a {names[b]!r} here" for a, b in
                zip(ta.label[r].tolist(), sug.tolist(), strict=True)],
        suggestion=[f"relabel as {names[b]!r}" for b in sug.tolist()], label=sug))
    r = rows["ambiguous"]
    sug = s.suggested_label[r]
    parts.append(QualityIssues.block(
        "ambiguous", _SEVERITY["ambiguous"], image=ta.image[r], annotation=r, score=s.annotation["ambiguous"][r],
        reason=[f"the model sees both {names[a]!r} and {names[b]!r} here" for a, b in
                zip(ta.label[r].tolist(), sug.tolist(), strict=True)],
        suggestion=[f"check the class ({names[a]!r} or {names[b]!r})" for a, b in
                    zip(ta.label[r].tolist(), sug.tolist(), strict=True)], label=sug))
    r = rows["extra"]
    parts.append(QualityIssues.block(
        "extra", _SEVERITY["extra"], image=ta.image[r], annotation=r, score=s.annotation["extra"][r],
        reason=[f"{names[a]!r}: " + (f"the model sees no object of any class here (it sees {100 * s.recall:.0f}% "
                                     "of the labelled objects)" if e <= 0.0 else
                                     f"the model sees it only with a {names[a]!r} prediction right {100 * e:.0f}"
                                     "% of the time at its score" if c else "the model's predictions here are of "
                                     "another class, or overlap it only in part")
                for a, e, c in zip(ta.label[r].tolist(), s.explained[r].tolist(), s.confirmed[r].tolist(),
                                   strict=True)],
        suggestion="remove the annotation if there is no object"))
    r = rows["low_iou"]
    m = np.flatnonzero((s.missing >= min_score) & (s.missing > 0))
    if kp:  # the fix is the model's keypoints, not a box
        sig = KP.sigmas_for(truth, kpt_sigmas)
        parts.append(KP.low_oks_block(truth, pred, r, s.suggested_pred[r], s.annotation["low_iou"][r], s.match_iou,
                                      sig, _SEVERITY["low_iou"]))
        parts.append(KP.missing_block(truth, pred, m, s.pred_label[m], s.pred_box[m], s.missing[m],
                                      _SEVERITY["missing"]))
        return QualityIssues.build(parts)
    assert ta.box is not None
    pc = s.pred_corners  # oriented boxes: the model's corners are the fix, the box their extent
    low_poly = None if pc is None else pc[s.suggested_pred[r]]
    what = "box" if pc is None else "oriented box"
    parts.append(QualityIssues.block(
        "low_iou", _SEVERITY["low_iou"], image=ta.image[r], annotation=r, score=s.annotation["low_iou"][r],
        reason=[f"{names[a]!r}: the model's {names[a]!r} {what} overlaps it poorly" for a in ta.label[r].tolist()],
        suggestion=[f"move the box to xyxy {_xyxy_text(b)}" for b in s.suggested_box[r]] if low_poly is None else
        [f"move the oriented box to corners {OBB.corners_text(c)}" for c in low_poly],
        box=s.suggested_box[r], label=ta.label[r], polygon=low_poly))
    pa = pred.annotations
    parts.append(QualityIssues.block(
        "missing", _SEVERITY["missing"], image=pa.image[m], annotation=-1, score=s.missing[m],
        reason=[f"the model sees a {names[c]!r} no annotation covers" for c in s.pred_label[m].tolist()],
        suggestion=[f"add a {names[c]!r} box at xyxy {_xyxy_text(b)}" for c, b in
                    zip(s.pred_label[m].tolist(), s.pred_box[m], strict=True)] if pc is None else
        [f"add a {names[c]!r} oriented box at corners {OBB.corners_text(q)}" for c, q in
         zip(s.pred_label[m].tolist(), pc[m], strict=True)],
        box=s.pred_box[m], label=s.pred_label[m], polygon=None if pc is None else pc[m]))
    return QualityIssues.build(parts)


def _prob_matrix(truth: Dataset, pred: Dataset) -> FloatArray:
    """(n_images, K_truth) probabilities: ``extra["probs"]`` of each image's row, else scored tag annotations."""
    pa = pred.annotations
    k = len(truth.schema.classes)
    remap = _remap(truth, pred)
    out = np.zeros((truth.n_images, k))
    probs = pa.extra.get(PROBS)
    if probs is not None:
        mat = np.asarray(np.stack(list(probs)) if probs.dtype == object else probs, dtype=np.float64)
        if mat.ndim != 2 or mat.shape[1] != len(pred.schema.classes):
            raise InvalidDatasetError(f"pred.annotations.extra[{PROBS!r}]: must be (n, {len(pred.schema.classes)}) "
                                      f"floats (one column per pred class), got shape {mat.shape}")
        nan = np.flatnonzero(np.isnan(mat).any(axis=1))
        if nan.size:
            raise InvalidDatasetError(f"pred.annotations.extra[{PROBS!r}] row {nan[0]}: must be numbers, got nan "
                                      f"({nan.size} rows)")
        seen = np.zeros(truth.n_images, bool)
        seen[pa.image] = True
        blind = np.flatnonzero(~seen[truth.annotations.image])
        if blind.size:  # zeros would read as "the model says another class"
            i = int(truth.annotations.image[blind[0]])
            raise InvalidDatasetError(
                f"pred.annotations.extra[{PROBS!r}]: image {i} ({truth.images.path[i]}) is labelled but has no "
                f"probabilities ({len(np.unique(truth.annotations.image[blind]))} images); predict every image")
        cols = np.flatnonzero(remap >= 0)
        out[pa.image[:, None], remap[cols][None, :]] = mat[:, cols]
        return out
    score = np.ones(len(pa)) if pa.score is None else np.nan_to_num(np.asarray(pa.score, np.float64), nan=1.0)
    np.maximum.at(out, (pa.image, remap[pa.label]), score)
    return out


def _take(m: FloatArray, rows: IntArray) -> FloatArray:
    """``m[rows]`` for sorted unique rows; ``m`` itself (no copy) when they are all of them, the usual case."""
    return m if len(rows) == len(m) else m[rows]


def _single(ds: Dataset) -> tuple[IntArray, IntArray]:
    """Labelled images and their label (one label per image)."""
    ta = ds.annotations
    has = np.zeros(ds.n_images, bool)
    has[ta.image] = True
    y = np.full(ds.n_images, -1, np.int64)
    y[ta.image] = ta.label
    img = np.flatnonzero(has)
    return img, y[img]


def _labels(truth: Dataset, pred: Dataset, *, reference: tuple[Dataset, Dataset] | None, min_score: float,
            one_per_annotation: bool, ambiguous_share: float) -> QualityIssues:
    ta = truth.annotations
    names = truth.schema.names
    probs = _prob_matrix(truth, pred)
    r_truth, r_pred = (truth, pred) if reference is None else reference
    if r_truth.schema.names != names:
        raise InvalidDatasetError("reference truth: must have the truth's classes, in the same order")
    ref = probs if reference is None else _prob_matrix(r_truth, r_pred)
    multi = truth.schema.task == Task.MULTILABEL or np.any(np.bincount(ta.image, minlength=truth.n_images) > 1)
    if not multi:
        img, yi = _single(truth)
        r_img, r_yi = _single(r_truth)
        y = np.full(truth.n_images, -1, np.int64)
        y[img] = yi
        ev = label_evidence(_take(probs, img), yi, _take(ref, r_img), r_yi, ambiguous_share=ambiguous_share)
        row_of = np.full(truth.n_images, -1, np.int64)
        row_of[ta.image] = np.arange(len(ta))
        # the two types are exclusive (bands of one score), so one_per_annotation changes nothing here
        rows = _pick({"wrong_class": ev.wrong, "ambiguous": ev.ambiguous}, one_per_annotation, min_score)
        parts = []
        for t, sc in (("wrong_class", ev.wrong), ("ambiguous", ev.ambiguous)):
            r = rows[t]
            lab, sug = y[img[r]], ev.suggested[r]
            verb = "the model says" if t == "wrong_class" else "the model hesitates with"
            parts.append(QualityIssues.block(
                t, _SEVERITY[t], image=img[r], annotation=row_of[img[r]], score=sc[r],
                reason=[f"labelled {names[a]!r}; {verb} {names[b]!r} ({100 * v:.0f}% of its support for the two)"
                        for a, b, v in zip(lab.tolist(), sug.tolist(), ev.share[r].tolist(), strict=True)],
                suggestion=[f"relabel as {names[b]!r}" if t == "wrong_class" else f"check: {names[a]!r} or "
                            f"{names[b]!r}" for a, b in zip(lab.tolist(), sug.tolist(), strict=True)], label=sug))
        return QualityIssues.build(parts)
    tags = np.zeros_like(probs, dtype=bool)
    tags[ta.image, ta.label] = True
    row_of = np.full(probs.shape, -1, np.int64)
    row_of[ta.image, ta.label] = np.arange(len(ta))
    ref_tags = np.zeros_like(ref, dtype=bool)
    ref_tags[r_truth.annotations.image, r_truth.annotations.label] = True
    tev = tag_evidence(probs, tags, ref, ref_tags)
    i, j = np.nonzero(tev.present_wrong >= max(min_score, 1e-12))
    parts = [QualityIssues.block(
        "extra", _SEVERITY["extra"], image=i, annotation=row_of[i, j], score=tev.present_wrong[i, j],
        reason=[f"tagged {names[c]!r}; the model does not see it" for c in j.tolist()],
        suggestion=[f"remove the tag {names[c]!r}" for c in j.tolist()])]
    i, j = np.nonzero(tev.absent_wrong >= max(min_score, 1e-12))
    parts.append(QualityIssues.block(
        "missing", _SEVERITY["missing"], image=i, annotation=-1, score=tev.absent_wrong[i, j],
        reason=[f"not tagged {names[c]!r}; the model sees it" for c in j.tolist()],
        suggestion=[f"add the tag {names[c]!r}" for c in j.tolist()], label=j))
    return QualityIssues.build(parts)


def _semantic(truth: Dataset, pred: Dataset, min_score: float, void: BoolArray,
              reference: tuple[Dataset, Dataset] | None) -> QualityIssues:
    ref = None
    if reference is not None:
        r_truth, r_pred = reference
        if r_truth.schema.names != truth.schema.names:
            raise InvalidDatasetError("reference truth: must have the truth's classes, in the same order")
        _check_images(r_truth, r_pred, "reference pred")
        ref = (r_truth, r_pred, _remap(truth, r_pred, "reference pred"))
    ev = SEM.mask_regions(truth, pred, _remap(truth, pred), void=void, reference=ref)
    names = truth.schema.names
    keep = ev.score >= max(min_score, 1e-12)
    parts = []
    for t in ("wrong_class", "extra", "missing"):
        sel = np.flatnonzero(keep & (np.asarray(ev.type, object) == t))
        lab, sug = ev.label[sel], ev.suggested[sel]
        d, e = ev.pixels[sel].tolist(), ev.expected[sel].tolist()
        if t == "missing":
            reason = [f"the model labels {n} pixels {names[c]!r} (its usual confusion explains about {x:.0f}); the "
                      f"truth has no {names[c]!r} here" for c, n, x in zip(lab.tolist(), d, e, strict=True)]
            suggestion = [f"label the {names[c]!r} region at xyxy {_xyxy_text(b)}" for c, b in
                          zip(lab.tolist(), ev.box[sel], strict=True)]
        else:
            reason = [f"{n} of the {size} {names[c]!r} pixels are {names[g]!r} for the model (its usual confusion "
                      f"explains about {x:.0f})" for c, g, n, x, size in
                      zip(lab.tolist(), sug.tolist(), d, e, ev.size[sel].tolist(), strict=True)]
            suggestion = [f"relabel the region xyxy {_xyxy_text(b)} as {names[g]!r}" for g, b in
                          zip(sug.tolist(), ev.box[sel], strict=True)]
        parts.append(QualityIssues.block(t, _SEVERITY[t], image=ev.image[sel], annotation=ev.annotation[sel],
                                         score=ev.score[sel], reason=reason, suggestion=suggestion,
                                         box=ev.box[sel], label=sug))
    return QualityIssues.build(parts)


def find_label_issues(truth: Dataset, pred: Dataset, *, iou_type: str = "auto", match_iou: float | None = None,
                      reference: tuple[Dataset, Dataset] | None = None, min_score: float = 0.05,
                      one_per_annotation: bool = True,
                      attributes: list[str] | None = None, ambiguous_share: float = 0.25,
                      kpt_sigmas: Sequence[float] | FloatArray | None = None,
                      pixel_probs: Sequence[np.ndarray] | np.ndarray | None = None,
                      ignore_index: int | None = None) -> QualityIssues:
    """Rank the annotations most likely wrong, with the model's suggested fix (see the module docstring).

    Args:
        truth: the ground truth.
        pred: out-of-fold predictions on the same images table: scored objects (detection, instance
            segmentation), ``extra["probs"]`` or scored tags (classification, multi-label), class masks
            (semantic segmentation).
        iou_type: objects: ``"bbox"``, ``"segm"``, ``"keypoints"`` (OKS) or ``"auto"`` (``resolve_iou_type``).
        match_iou: objects: IoU at which a prediction is on an object (None: 0.5, and the per-class typical
            match IoU learnt from the data).
        reference: ``(truth, pred)`` whose per-class statistics (calibration, ranks, typical IoU; semantic class
            masks: the model's usual confusion and the void classes, each scored image matched to the reference's
            by path and left out) are used (default: the data scored); pass the whole set when scoring a part of
            it, to get exactly the rows of the whole run. Not with ``pixel_probs`` (InvalidDatasetError).
        min_score: leave out findings scored below this, in [0, 1] (an argument, not a confidence gate: scores are
            calibrated).
        one_per_annotation: report each annotation once, under its highest-scored type.
        attributes: also score these attribute values (pred rows paired with truth rows; numeric probabilities).
        ambiguous_share: single-label classification: an image is ``ambiguous`` when the best other class holds
            between this share and 1 minus it of the calibrated support for it and the label, ``wrong_class``
            above (in (0, 0.5]; the default 0.25 means odds of 3:1).
        kpt_sigmas: keypoints: OKS sigmas, one per keypoint (None: COCO's 17 person sigmas, for 17 keypoints only).
        pixel_probs: semantic segmentation: the model's per-pixel probabilities, one (K, H, W) or (H, W, K) array
            per image row (a list, an (N, K, H, W) array, or ``read_pixel_probs(folder, like=truth)``, which reads
            one file at a time; ``maslow.io.read_pixel_probs``, of which ``maslow.quality.consensus.read_pixel_probs``
            is an alias), scored instead of ``pred``'s class masks (``pred``: only its images table is used); see
            ``maslow.quality._consensus_sem``.
        ignore_index: semantic segmentation: label-map value (``ClassDef.id``) of a void class, besides the
            crowd-only classes: its truth pixels are not scored, and pixels the model gives it are neither errors
            nor evidence.

    Returns:
        QualityIssues ranked by score, with ``box`` (suggested xyxy), ``label`` (suggested class), ``keypoints``
        (the model's keypoints of keypoint findings) and ``polygon`` (the model's oriented box, ``iou_type="obb"``)
        columns.

    Raises:
        InvalidDatasetError: predictions on other images, of unknown classes, or without what the task needs;
            ``reference`` with ``pixel_probs``; ``min_score`` not in [0, 1].
        FormatError: a probability file of ``read_pixel_probs`` of the wrong shape, class count or values.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(8, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.full(truth.n_annotations, .9)))
        >>> len(find_label_issues(truth, pred, iou_type="bbox"))
        0
    """
    _check_images(truth, pred)
    if not 0 <= min_score <= 1:  # NaN too: no score is >= NaN, so every finding went, silently
        raise InvalidDatasetError(f"min_score must be a number in [0, 1], got {min_score}")
    task = truth.schema.task
    if attributes:
        return QualityIssues.build([attribute_issues(truth, pred, list(attributes), min_score)])
    if (pixel_probs is not None or ignore_index is not None) and task != Task.SEMANTIC_SEGMENTATION:
        raise InvalidDatasetError(f"pixel_probs and ignore_index apply to semantic segmentation, got a {task.value} "
                                  "truth")
    if task == Task.SEMANTIC_SEGMENTATION:
        if pixel_probs is not None:
            if reference is not None:  # (truth, pred) holds no probabilities to learn the usual confusion from
                raise InvalidDatasetError(
                    "reference: must be None with pixel_probs (a (truth, pred) pair holds no per-pixel "
                    "probabilities), got a reference; score the whole set in one call (one image is read at a "
                    "time) and keep the rows of the images wanted")
            void = SEM.void_classes(truth, ignore_index)
            return SEM.prob_issues(truth, pixel_probs, void=void, min_score=min_score,
                                   one_per_annotation=one_per_annotation, severity=_SEVERITY)
        # void classes are a statistic of the set: the reference's crowd-only classes, as in the whole run
        void = SEM.void_classes(truth if reference is None else reference[0], ignore_index)
        return _semantic(truth, pred, min_score, void, reference)
    if task in (Task.CLASSIFICATION, Task.MULTILABEL):
        if not 0 < ambiguous_share <= 0.5:
            raise InvalidDatasetError(f"ambiguous_share must be in (0, 0.5], got {ambiguous_share}")
        return _labels(truth, pred, reference=reference, min_score=min_score, one_per_annotation=one_per_annotation,
                       ambiguous_share=ambiguous_share)
    return _objects(truth, pred, iou_type=iou_type, match_iou=match_iou, reference=reference, min_score=min_score,
                    one_per_annotation=one_per_annotation, kpt_sigmas=kpt_sigmas)
