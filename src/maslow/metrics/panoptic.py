"""Panoptic segmentation: Panoptic Quality (PQ), Segmentation Quality (SQ) and Recognition Quality (RQ), as
panopticapi's ``pq_compute`` defines them (Kirillov et al., "Panoptic Segmentation", CVPR 2019).

Both datasets hold one annotation per segment, a mask each, on the same images table (``read_coco_panoptic``
gives them so; predictions read with ``like=truth``). Things and stuff are the truth classes of ``kind``
``"object"`` and ``"semantic"``. The rules, per image:

- *VOID*: pixels no truth segment covers (panopticapi: id 0 in the truth PNG), and the segments of ``void_label``.
- *match*: a truth segment and a predicted one of the same class match when ``IoU > 0.5`` (strictly), where
  ``IoU = I / (A_pred + A_truth - I - V_pred)``: ``I`` their shared pixels, ``V_pred`` the prediction's pixels on
  VOID (left out of the union). Segments of one side don't overlap, so a match is one to one. Crowd truth
  segments (``iscrowd``) are never matched.
- *TP, FN, FP*: a match is a TP of its class and adds its IoU; an unmatched truth segment is a FN unless it is a
  crowd region; an unmatched prediction is a FP unless more than half of its pixels lie on VOID or on the crowd
  region of its class (the image's last crowd segment of that class in row order, as panopticapi keeps one per
  class: COCO has at most one), then it is ignored.
- *per class*: ``PQ = sum(IoU) / (TP + FP/2 + FN/2)``, ``SQ = sum(IoU) / TP`` (0 when ``TP`` is 0 and the class has
  FPs or FNs, as panopticapi), ``RQ = TP / (TP + FP/2 + FN/2)``; ``PQ = SQ * RQ``.
- *averages*: the mean over the classes with ``TP + FP + FN > 0`` (all, things, stuff), each a sum in class order
  divided by their number, as panopticapi. Note the mean PQ is not the mean SQ times the mean RQ.

Conventions decided here (panopticapi differs only on input it refuses or misreads):

- *areas*: a prediction's area is its pixel count; a truth segment's is the file's (``extra["area"]``, as
  panopticapi reads the JSON) unless ``truth_area="pixels"``. They agree in well-formed files
  (``read_coco_panoptic`` reports the ones that don't).
- *undefined is nan*: a class with no TP, FP or FN has PQ, SQ and RQ ``nan`` (panopticapi: 0.0; hotcoco: -1) and
  an average over no class is ``nan`` (panopticapi divides by zero).
- *predictions panopticapi refuses*: an empty one (listed, no pixel) and one of a class the truth lacks are not
  evaluated (status ``skipped``), nor are predictions of ``void_label``.
- *sums*: the IoUs of a class are summed image by image, each image's pairs in truth-row order (panopticapi: by
  segment id, split over processes), so ``sq``/``pq`` may differ from panopticapi's or hotcoco's in the last digit
  (about 1e-16 relative); TP, FP and FN are the same integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import SchemaError
from maslow.metrics._panoptic_pairs import overlaps
from maslow.metrics._prepare import _float_column
from maslow.metrics._result import MatchStatus
from maslow.metrics._shared import _check_same_images, _json_float

__all__ = ["PanopticResult", "is_panoptic", "panoptic_quality"]

TRUTH_AREAS = ("file", "pixels")


def is_panoptic(schema: LabelSchema) -> bool:
    """Whether a schema is a panoptic one: its tasks include instance and semantic segmentation (things and stuff;
    ``read_coco_panoptic`` makes such schemas)."""
    return Task.INSTANCE_SEGMENTATION in schema.tasks and Task.SEMANTIC_SEGMENTATION in schema.tasks


@dataclass(frozen=True, eq=False)
class PanopticResult(MatchStatus):
    """Panoptic Quality of predictions against truth (the rules: module docstring).

    Attributes:
        class_names: (K,) the truth's classes, in schema order (every per-class array follows it).
        is_thing: (K,) True for things (``kind="object"``), False for stuff (``"semantic"``).
        pq, sq, rq: means over the classes with TP + FP + FN > 0 (``n_classes`` of them); nan when none.
        pq_things, sq_things, rq_things, n_things; pq_stuff, sq_stuff, rq_stuff, n_stuff: the same over things and
            over stuff.
        pq_per_class, sq_per_class, rq_per_class: (K,) float64, nan where the class has no TP, FP or FN (and for
            ``void_label``).
        iou_per_class: (K,) float64 sum of the IoUs of the class's matches.
        tp_per_class, fp_per_class, fn_per_class: (K,) int64.
        match_truth, match_pred, match_iou: (m,) the matches: truth row, prediction row, IoU, image by image.
        truth_status: (n_truth,) int8 (``STATUS``): tp, fn, or ignored (a crowd region or ``void_label``);
            ``truth_match``/``truth_iou``: its matched prediction row (-1) and IoU (nan).
        pred_status: (n_pred,) int8: tp, fp, ignored (unmatched, mostly on VOID or a crowd region of its class) or
            skipped (not evaluated: empty, a class the truth lacks, or ``void_label``); ``pred_match``/``pred_iou``.
        void_label: the truth class read as VOID, or None.
        truth_area: ``"file"`` or ``"pixels"`` (see the module docstring).
        n_images: images evaluated.
    """

    class_names: tuple[str, ...]
    is_thing: BoolArray
    pq: float
    sq: float
    rq: float
    n_classes: int
    pq_things: float
    sq_things: float
    rq_things: float
    n_things: int
    pq_stuff: float
    sq_stuff: float
    rq_stuff: float
    n_stuff: int
    pq_per_class: FloatArray
    sq_per_class: FloatArray
    rq_per_class: FloatArray
    iou_per_class: FloatArray
    tp_per_class: IntArray
    fp_per_class: IntArray
    fn_per_class: IntArray
    match_truth: IntArray
    match_pred: IntArray
    match_iou: FloatArray
    truth_status: np.ndarray
    truth_match: IntArray
    truth_iou: FloatArray
    pred_status: np.ndarray
    pred_match: IntArray
    pred_iou: FloatArray
    void_label: str | None
    truth_area: str
    n_images: int

    def summary(self) -> dict[str, dict[str, Any]]:
        """``{"all" | "things" | "stuff": {"pq", "sq", "rq", "n"}}`` (panopticapi's table; nan -> None)."""
        return {name: {"pq": _json_float(getattr(self, f"pq{s}")), "sq": _json_float(getattr(self, f"sq{s}")),
                       "rq": _json_float(getattr(self, f"rq{s}")), "n": int(getattr(self, f"n_{n}"))}
                for name, s, n in (("all", "", "classes"), ("things", "_things", "things"),
                                   ("stuff", "_stuff", "stuff"))}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: options, the three averages, counts and one entry per class (no per-segment arrays)."""
        per_class = [
            {"class": name, "isthing": bool(self.is_thing[k]), "pq": _json_float(float(self.pq_per_class[k])),
             "sq": _json_float(float(self.sq_per_class[k])), "rq": _json_float(float(self.rq_per_class[k])),
             "iou": float(self.iou_per_class[k]), "tp": int(self.tp_per_class[k]), "fp": int(self.fp_per_class[k]),
             "fn": int(self.fn_per_class[k])}
            for k, name in enumerate(self.class_names)]
        return {
            "protocol": "panoptic", "void_label": self.void_label, "truth_area": self.truth_area,
            "n_images": self.n_images, **self.summary(),
            "tp": int(self.tp_per_class.sum()), "fp": int(self.fp_per_class.sum()), "fn": int(self.fn_per_class.sum()),
            "n_ignored_truth": int(np.count_nonzero(self.truth_status == self.IGNORED)),
            "n_ignored_pred": int(np.count_nonzero(self.pred_status == self.IGNORED)),
            "n_skipped_pred": int(np.count_nonzero(self.pred_status == self.SKIPPED)),
            "per_class": per_class,
        }

    def to_pandas(self) -> Any:
        """Per-class table: ``class``, ``isthing``, ``pq``, ``sq``, ``rq``, ``iou``, ``tp``, ``fp``, ``fn``."""
        import pandas as pd

        return pd.DataFrame({"class": list(self.class_names), "isthing": self.is_thing, "pq": self.pq_per_class,
                             "sq": self.sq_per_class, "rq": self.rq_per_class, "iou": self.iou_per_class,
                             "tp": self.tp_per_class, "fp": self.fp_per_class, "fn": self.fn_per_class})

    def matches_to_pandas(self) -> Any:
        """One row per match: ``truth_row``, ``pred_row``, ``iou``."""
        import pandas as pd

        return pd.DataFrame({"truth_row": self.match_truth, "pred_row": self.match_pred, "iou": self.match_iou})


def panoptic_quality(truth: Dataset, pred: Dataset, *, void_label: str | int | None = None,
                     truth_area: str = "file") -> PanopticResult:
    """PQ, SQ and RQ of predicted segments against truth segments, image by image (the rules and conventions:
    module docstring).

    Args:
        truth: ground truth segments, one mask (or polygon) each, non-overlapping within an image;
            ``annotations.iscrowd`` marks crowd regions, ``ClassDef.kind`` things and stuff.
        pred: predicted segments on the same images table (classes matched to the truth's by name; scores unused).
        void_label: a truth class (name or label) whose segments are VOID: not evaluated, their pixels left out
            of unions like unlabelled ones, predictions of it skipped.
        truth_area: ``"file"`` (``extra["area"]`` where set, else the pixel count; panopticapi's) or ``"pixels"``.

    Returns:
        PanopticResult.

    Raises:
        InvalidDatasetError: another images table, a segment without a mask, a mask of another size than its
            image, or two segments of one image and side that overlap (naming side, row and image).
        SchemaError: ``void_label`` is not a truth class.
        ValueError: ``truth_area`` is neither ``"file"`` nor ``"pixels"``.

    Example:
        >>> import numpy as np
        >>> from maslow.core import masks as M
        >>> from maslow.core.dataset import Dataset
        >>> from maslow.core.schema import ClassDef, LabelSchema
        >>> from maslow.core.tables import Annotations, Images
        >>> from maslow.core.types import obj_array
        >>> top = np.zeros((4, 4), bool); top[:2] = True
        >>> schema = LabelSchema((ClassDef("car"), ClassDef("road", kind="semantic")))
        >>> images = Images(path=obj_array(["a.png"]), width=np.array([4]), height=np.array([4]))
        >>> truth = Dataset(schema, images, Annotations(image=np.zeros(2, np.int64), label=np.array([0, 1]),
        ...                 mask=obj_array([M.encode(top), M.encode(~top)])))
        >>> r = panoptic_quality(truth, truth)
        >>> r.pq, r.pq_things, r.pq_stuff
        (1.0, 1.0, 1.0)
    """
    if truth_area not in TRUTH_AREAS:
        raise ValueError(f"panoptic_quality: truth_area must be 'file' or 'pixels', got {truth_area!r}")
    _check_same_images(truth, pred, "panoptic_quality")
    names = truth.schema.names
    k_all = len(names)
    void = _void_class(truth, void_label)
    is_thing = np.asarray([c.kind == "object" for c in truth.schema.classes], bool)
    ov = overlaps(truth, pred)
    ta, pa = truth.annotations, pred.annotations
    assert ta.iscrowd is not None
    t_label = ta.label
    index = {n: k for k, n in enumerate(names)}
    p_class = np.asarray([index.get(n, -1) for n in pred.schema.names], np.int64)
    p_label = p_class[pa.label] if len(pa) else np.zeros(0, np.int64)
    t_void = t_label == void if void is not None else np.zeros(len(ta), bool)
    p_eval = (p_label >= 0) & (ov.pred_pixels > 0) & ((p_label != void) if void is not None else True)
    a_truth = ov.truth_pixels.astype(np.float64)
    given = _float_column(ta, "area") if truth_area == "file" else None
    if given is not None:
        a_truth = np.where(np.isfinite(given), given, a_truth)
    a_pred = ov.pred_pixels.astype(np.float64)

    t, p, inter = ov.truth_row, ov.pred_row, ov.pixels
    on_void = t < 0
    on_void[~on_void] = t_void[t[~on_void]]
    void_px = np.bincount(p[on_void], inter[on_void], minlength=len(pa))
    pair = ~on_void
    tt, pp, ii = t[pair], p[pair], inter[pair].astype(np.float64)
    same = (t_label[tt] == p_label[pp]) & p_eval[pp]
    cand = same & ~ta.iscrowd[tt]
    union = a_pred[pp[cand]] + a_truth[tt[cand]] - ii[cand] - void_px[pp[cand]]
    with np.errstate(invalid="ignore", divide="ignore"):  # a file's area of 0: as panopticapi's numpy division
        iou = ii[cand] / union
    hit = iou > 0.5
    m_t, m_p, m_iou = tt[cand][hit], pp[cand][hit], iou[hit]

    truth_match = np.full(len(ta), -1, np.int64)
    truth_iou = np.full(len(ta), np.nan)
    pred_match = np.full(len(pa), -1, np.int64)
    pred_iou = np.full(len(pa), np.nan)
    truth_match[m_t], truth_iou[m_t] = m_p, m_iou
    pred_match[m_p], pred_iou[m_p] = m_t, m_iou
    truth_status = np.where(ta.iscrowd | t_void, PanopticResult.IGNORED, PanopticResult.FN).astype(np.int8)
    truth_status[m_t] = PanopticResult.TP
    crowd_px = _crowd_pixels(truth, tt[same], pp[same], inter[pair][same], len(pa))
    with np.errstate(invalid="ignore", divide="ignore"):
        ignored = (void_px + crowd_px) / a_pred > 0.5
    pred_status = np.where(p_eval, np.where(ignored, PanopticResult.IGNORED, PanopticResult.FP),
                           PanopticResult.SKIPPED).astype(np.int8)
    pred_status[m_p] = PanopticResult.TP

    tp = np.bincount(t_label[m_t], minlength=k_all).astype(np.int64)
    iou_sum = np.bincount(t_label[m_t], m_iou, minlength=k_all).astype(np.float64)
    fn = np.bincount(t_label[truth_status == PanopticResult.FN], minlength=k_all).astype(np.int64)
    fp = np.bincount(p_label[pred_status == PanopticResult.FP], minlength=k_all).astype(np.int64)
    counted = (tp + fp + fn) > 0
    if void is not None:
        counted[void] = False
    den = tp + 0.5 * fp + 0.5 * fn
    with np.errstate(invalid="ignore", divide="ignore"):
        pq_c = np.where(counted, iou_sum / den, np.nan)
        sq_c = np.where(counted, np.where(tp > 0, iou_sum / np.maximum(tp, 1), 0.0), np.nan)
        rq_c = np.where(counted, tp / den, np.nan)
    means = {}
    for suffix, sel in (("", counted), ("_things", counted & is_thing), ("_stuff", counted & ~is_thing)):
        ks = np.flatnonzero(sel).tolist()
        for name, arr in (("pq", pq_c), ("sq", sq_c), ("rq", rq_c)):
            means[name + suffix] = _mean([float(arr[k]) for k in ks])
    arrays = [is_thing, pq_c, sq_c, rq_c, iou_sum, tp, fp, fn, m_t, m_p, m_iou, truth_status, truth_match, truth_iou,
              pred_status, pred_match, pred_iou]
    for arr in arrays:
        arr.flags.writeable = False
    return PanopticResult(
        class_names=names, is_thing=is_thing, **means, n_classes=int(counted.sum()),
        n_things=int((counted & is_thing).sum()), n_stuff=int((counted & ~is_thing).sum()),
        pq_per_class=pq_c, sq_per_class=sq_c, rq_per_class=rq_c, iou_per_class=iou_sum, tp_per_class=tp,
        fp_per_class=fp, fn_per_class=fn, match_truth=m_t, match_pred=m_p, match_iou=m_iou,
        truth_status=truth_status, truth_match=truth_match, truth_iou=truth_iou, pred_status=pred_status,
        pred_match=pred_match, pred_iou=pred_iou, void_label=None if void is None else names[void],
        truth_area=truth_area, n_images=truth.n_images,
    )


def _void_class(truth: Dataset, void_label: str | int | None) -> int | None:
    if void_label is None:
        return None
    names = truth.schema.names
    if isinstance(void_label, str):
        if void_label not in truth.schema:
            raise SchemaError(f"panoptic_quality: void_label must be a truth class, got {void_label!r}; classes: "
                              f"{', '.join(names[:20])}")
        return truth.schema.index(void_label)
    if isinstance(void_label, bool) or not isinstance(void_label, int | np.integer) or \
            not 0 <= int(void_label) < len(names):
        raise SchemaError(f"panoptic_quality: void_label must be a class name or a label in 0..{len(names) - 1}, "
                          f"got {void_label!r}")
    return int(void_label)


def _crowd_pixels(truth: Dataset, t: IntArray, p: IntArray, inter: IntArray, n_pred: int) -> FloatArray:
    """Each prediction's pixels on the crowd region of its class (pairs of the same class given): the image's last
    crowd segment of that class in row order, the one panopticapi keeps."""
    a = truth.annotations
    assert a.iscrowd is not None
    crowd = np.flatnonzero(a.iscrowd)
    last = np.zeros(len(a), bool)
    if crowd.size:
        key = a.image[crowd] * (len(truth.schema.names) + 1) + a.label[crowd]
        order = np.lexsort((crowd, key))  # by image and class, then row
        k = key[order]
        last[crowd[order][np.append(k[1:] != k[:-1], True)]] = True
    on = last[t]
    return np.bincount(p[on], inter[on], minlength=n_pred).astype(np.float64)


def _mean(values: list[float]) -> float:
    """Sum in order, divided by the count (panopticapi's ``pq += pq_class`` loop); nan for none."""
    if not values:
        return math.nan
    total = 0.0
    for v in values:
        total += v
    return total / len(values)
