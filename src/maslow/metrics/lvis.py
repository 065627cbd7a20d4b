"""LVIS (federated) evaluation: box and mask AP/AR, bit-identical to lvis-api 0.5.3's ``LVISEval``.

LVIS annotates each image for a few of its 1,203 classes only, so a prediction can be judged only where the
image says what is there. The rules (lvis-api's, reproduced exactly; details in ``_lvis_prepare``):

- *per-image cap*: ``max_dets`` (300) predictions per image over all classes, the best by score
  (``LVISResults(max_dets=300)``); no cap per class.
- *verified classes*: a prediction counts only if its class is in the image's truth (a positive label) or in
  ``images.extra["neg_category_ids"]`` (verified absent); the others are not evaluated.
- *not exhaustive*: an unmatched prediction of a class in ``images.extra["not_exhaustive_category_ids"]`` is
  ignored, not a false positive (a matched one is a true positive as usual).
- *truth*: ``iscrowd`` is not used (lvis-api has no crowd regions: every object is matched by plain IoU, at
  most once); a truthy COCO ``ignore`` key (``annotations.extra["ignore"]``) ignores an object.
- *groups*: APr/APc/APf average the classes of each frequency (rare, common, frequent: ``frequency=`` or the
  categories' ``frequency`` key kept in ``truth.info["coco_categories"]``).

Everything else is the COCO protocol as ``coco_map`` computes it (the same matching and accumulation code): 10
IoU thresholds, 101 recall points, area ranges all/small/medium/large on the truth's COCO ``area`` and the
prediction's geometry (``pred_area``), classes on the K axis sorted by category id, images by ``coco_id``,
score ties by image then file order. Glossary of the arrays: ``precision`` (T, R, K, A) and ``recall`` (T, K, A)
are lvis-api's ``LVISEval.eval`` arrays cell for cell (-1: a class with no truth object left in the range);
``scores`` (T, R, K, A) is the score at each recall point (pycocotools' ``scores``, which lvis-api lacks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.metrics._lvis_eval import STATS, evaluate, summarize_one
from maslow.metrics._lvis_prepare import FREQUENCIES, class_frequency, federate
from maslow.metrics._result import per_class_columns
from maslow.metrics.coco import _params

__all__ = ["LvisResult", "lvis_map"]


@dataclass(frozen=True, eq=False)
class LvisResult:
    """LVIS evaluation result: lvis-api's 13 summary values as named fields, and its full arrays.

    The named fields are ``nan`` where lvis-api gives -1 (nothing to average): ``ap`` (AP at IoU .50:.95),
    ``ap_50``, ``ap_75``, ``ap_small``, ``ap_medium``, ``ap_large``, ``ap_rare``, ``ap_common``,
    ``ap_frequent`` (APr/APc/APf), ``ar_300`` (AR at the per-image cap, ``AR@300`` under the default
    ``max_dets``), ``ar_small``, ``ar_medium``, ``ar_large``.

    Attributes:
        stats: (13,) lvis-api's ``LVISEval.results`` values (-1 kept), in ``stat_names`` order; ``lvis_keys``
            are lvis-api's names for them (``"AP"``, ..., ``"AR@300"``, ``"ARs@300"``, ...; lvis-api names AR
            ``@300`` whatever the cap, as its ``Params.max_dets`` is not ``LVISResults``' ``max_dets``).
        precision: (T, R, K, A) lvis-api's ``eval["precision"]``, -1 for classes without truth.
        recall: (T, K, A) ``eval["recall"]``.
        scores: (T, R, K, A) the score at each recall point (0 where unreached, -1 without truth).
        ap_per_class: (K, T) AP of each class at each IoU threshold (area "all"); nan without truth objects.
        ar_per_class: (K, T) recall of each class at each IoU threshold (area "all"); nan likewise.
        frequency: (K,) ``"r"``, ``"c"`` or ``"f"`` of each row of the K axis.
        class_names, class_labels: (K,) name and truth schema label of each row (sorted by category id).
        max_dets: the per-image cap (None: none).
        n_evaluated: predictions evaluated; ``n_capped``: left out by the per-image cap; ``n_unverified``: left
            out because their class is neither a positive nor a negative label of their image.
    """

    iou_type: str
    ap: float
    ap_50: float
    ap_75: float
    ap_small: float
    ap_medium: float
    ap_large: float
    ap_rare: float
    ap_common: float
    ap_frequent: float
    ar_300: float
    ar_small: float
    ar_medium: float
    ar_large: float
    stats: FloatArray
    stat_names: tuple[str, ...]
    lvis_keys: tuple[str, ...]
    precision: FloatArray
    recall: FloatArray
    scores: FloatArray
    ap_per_class: FloatArray
    ar_per_class: FloatArray
    frequency: tuple[str, ...]
    iou_thresholds: FloatArray
    recall_thresholds: FloatArray
    max_dets: int | None
    area_names: tuple[str, ...]
    area_ranges: FloatArray
    class_names: tuple[str, ...]
    class_labels: IntArray
    n_evaluated: int
    n_capped: int
    n_unverified: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan and an unbounded area range's ``inf`` -> None): the stats by field name and by
        lvis-api key, options, counts, per-class AP and AR with each class's frequency (no full arrays)."""
        def f(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None
        return {
            "iou_type": self.iou_type,
            "stats": {name: f(getattr(self, name)) for name in self.stat_names},
            "lvis_stats": {key: float(v) for key, v in zip(self.lvis_keys, self.stats.tolist(), strict=True)},
            "max_dets": self.max_dets,
            "iou_thresholds": self.iou_thresholds.tolist(),
            "area_ranges": {n: [f(v) for v in self.area_ranges[i].tolist()] for i, n in enumerate(self.area_names)},
            "n_evaluated": self.n_evaluated,
            "n_capped": self.n_capped,
            "n_unverified": self.n_unverified,
            "class_names": list(self.class_names),
            "frequency": list(self.frequency),
            "ap_per_class": [[f(v) for v in row] for row in self.ap_per_class.tolist()],
            "ar_per_class": [[f(v) for v in row] for row in self.ar_per_class.tolist()],
        }

    def to_pandas(self) -> Any:
        """Per-class table: ``class``, ``frequency``, ``ap`` (mean over thresholds), one ``ap_0.50``-style column
        per threshold, then ``ar`` and the ``ar_0.50``-style columns."""
        import pandas as pd

        return pd.DataFrame({"class": list(self.class_names), "frequency": list(self.frequency),
                             **per_class_columns(self.iou_thresholds, self.ap_per_class, self.ar_per_class)})


def lvis_map(
    truth: Dataset,
    pred: Dataset,
    *,
    iou_type: str = "bbox",
    max_dets: int | None = 300,
    frequency: Mapping[str, str] | None = None,
    iou_thresholds: Sequence[float] | FloatArray | None = None,
    recall_thresholds: Sequence[float] | FloatArray | None = None,
    area_ranges: Mapping[str, tuple[float, float]] | None = None,
    pred_area: str = "geometry",
) -> LvisResult:
    """LVIS AP/AR of predictions against federated truth, bit-identical to lvis-api 0.5.3 (module docstring).

    Args:
        truth: LVIS ground truth (``read_coco`` of an LVIS file): classes with their COCO category ids, and the
            image columns ``neg_category_ids`` and ``not_exhaustive_category_ids`` (lists of category ids).
        pred: predictions on the same images table, with ``annotations.score``.
        iou_type: ``"bbox"`` or ``"segm"``.
        max_dets: per-image cap over all classes (lvis-api's ``LVISResults(max_dets=...)``); None: no cap.
        frequency: class name -> ``"r"``, ``"c"`` or ``"f"`` for every class; default: the categories'
            ``frequency`` kept in ``truth.info["coco_categories"]``.
        iou_thresholds: (T,) IoU thresholds; default ``np.linspace(.5, .95, 10)``.
        recall_thresholds: (R,) recall points; default ``np.linspace(0, 1, 101)``.
        area_ranges: name -> (lo, hi), closed; default all/small/medium/large (a stat whose range is missing is
            nan).
        pred_area: ``"geometry"`` (box ``w * h``, mask pixel count) or ``"box"`` (box ``w * h`` for masks too:
            what lvis-api does when the results carry a ``bbox``, as Detectron2's segm results do).

    Returns:
        LvisResult with lvis-api's summary values as named fields and its full arrays.

    Raises:
        InvalidDatasetError: an image column or a class frequency missing or malformed, predictions without
            scores or on another images table, or geometry missing for ``iou_type``.
        ValueError: an option out of range.

    Example:
        >>> import dataclasses
        >>> from maslow.sample import shapes
        >>> truth = shapes(4, seed=0)
        >>> none = np.empty(truth.n_images, dtype=object)
        >>> none[:] = [[] for _ in range(truth.n_images)]
        >>> extra = {**truth.images.extra, "neg_category_ids": none, "not_exhaustive_category_ids": none}
        >>> truth = truth.replace(images=dataclasses.replace(truth.images, extra=extra))
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> lvis_map(truth, pred, frequency=dict.fromkeys(truth.schema.names, "f")).ap_50
        1.0
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"lvis_map: iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    if max_dets is not None and (not isinstance(max_dets, (int, np.integer)) or isinstance(max_dets, bool)
                                 or max_dets < 1):
        raise ValueError(f"lvis_map: max_dets must be a positive integer or None, got {max_dets!r}")
    group_cap = int(max_dets) if max_dets is not None else max(1, pred.n_annotations)
    try:
        p = _params(iou_type, iou_thresholds, recall_thresholds, (group_cap,), area_ranges, True, None, pred_area)
    except ValueError as e:  # the options are coco_map's: name this function in the message
        raise ValueError(str(e).replace("coco_map:", "lvis_map:", 1)) from None
    freq_of_label = class_frequency(truth, frequency)
    fed = federate(truth, pred, None if max_dets is None else int(max_dets))
    evaluated = pred if len(fed.evaluated) == pred.n_annotations else pred.select(fed.evaluated)
    acc = evaluate(truth, evaluated, p, fed.not_exhaustive)
    labels = acc.class_labels
    freq = tuple(freq_of_label[i] for i in labels.tolist())
    groups = {g: [k for k, v in enumerate(freq) if v == g] for g in FREQUENCIES}
    stats = np.asarray([summarize_one(acc.precision, acc.recall, p.iou_thresholds, p.area_names, groups, ap, thr,
                                      area, group) for _, _, ap, thr, area, group in STATS])
    a = p.area_names.index("all") if "all" in p.area_names else 0
    pk = np.ascontiguousarray(acc.precision[:, :, :, a].transpose(2, 0, 1))  # (K, T, R): rows summed as lvis-api
    ap_per_class = np.full(pk.shape[:2], np.nan)
    valid = (pk > -1).all(axis=2)
    if pk.size:
        ap_per_class[valid] = np.mean(pk, axis=2)[valid]
    ar_per_class = np.array(acc.recall[:, :, a].T, dtype=np.float64, order="C")
    ar_per_class[ar_per_class == -1] = np.nan
    for arr in (acc.precision, acc.recall, acc.scores, ap_per_class, ar_per_class, stats):
        arr.flags.writeable = False
    values = {name: (math.nan if v == -1 else float(v)) for (name, *_), v in zip(STATS, stats.tolist(), strict=True)}
    return LvisResult(
        iou_type=iou_type, **values, stats=stats, stat_names=tuple(s[0] for s in STATS),
        lvis_keys=tuple(key for _, key, *_ in STATS),
        precision=acc.precision, recall=acc.recall, scores=acc.scores, ap_per_class=ap_per_class,
        ar_per_class=ar_per_class, frequency=freq, iou_thresholds=p.iou_thresholds,
        recall_thresholds=p.recall_thresholds, max_dets=None if max_dets is None else int(max_dets),
        area_names=p.area_names, area_ranges=p.area_ranges,
        class_names=tuple(truth.schema.names[i] for i in labels.tolist()), class_labels=labels,
        n_evaluated=len(fed.evaluated), n_capped=fed.n_capped, n_unverified=fed.n_unverified,
    )
