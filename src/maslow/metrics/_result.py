"""Result objects of the COCO evaluation and pycocotools' ``summarize``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from maslow.core.types import FloatArray, IntArray

#: (field, ap?, iou threshold, area name, maxDets: an int, or "0"/"1"/"2" for max_dets[i]) in pycocotools' order
_DET_STATS: tuple[tuple[str, bool, float | None, str, int | str], ...] = (
    ("map_50_95", True, None, "all", 100),
    ("map_50", True, 0.5, "all", "2"),
    ("map_75", True, 0.75, "all", "2"),
    ("map_small", True, None, "small", "2"),
    ("map_medium", True, None, "medium", "2"),
    ("map_large", True, None, "large", "2"),
    ("mar_1", False, None, "all", "0"),
    ("mar_10", False, None, "all", "1"),
    ("mar_100", False, None, "all", "2"),
    ("mar_small", False, None, "small", "2"),
    ("mar_medium", False, None, "medium", "2"),
    ("mar_large", False, None, "large", "2"),
)
_KP_STATS: tuple[tuple[str, bool, float | None, str, int | str], ...] = (
    ("map_50_95", True, None, "all", 20),
    ("map_50", True, 0.5, "all", 20),
    ("map_75", True, 0.75, "all", 20),
    ("map_medium", True, None, "medium", 20),
    ("map_large", True, None, "large", 20),
    ("mar_20", False, None, "all", 20),
    ("mar_50", False, 0.5, "all", 20),
    ("mar_75", False, 0.75, "all", 20),
    ("mar_medium", False, None, "medium", 20),
    ("mar_large", False, None, "large", 20),
)
STAT_FIELDS = ("map_50_95", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10",
               "mar_100", "mar_small", "mar_medium", "mar_large", "mar_20", "mar_50", "mar_75")


@dataclass(frozen=True, eq=False)
class MapResult:
    """COCO evaluation result: pycocotools' summary stats as named fields, and its full arrays.

    The named fields are ``nan`` where pycocotools prints -1 (nothing to average) or would fail (a maxDets
    ladder shorter than 3). Detection (bbox/segm) fields: ``map_50_95`` (AP, maxDets 100), ``map_50``,
    ``map_75``, ``map_small``, ``map_medium``, ``map_large`` (at ``max_dets[2]``), ``mar_1``, ``mar_10``,
    ``mar_100`` (AR at ``max_dets[0]``, ``[1]``, ``[2]``: the names are pycocotools' default ladder, so with
    ``max_dets=(1, 5, 50)`` ``mar_10`` is AR at 5; ``stat_max_dets`` says which maxDets each stat reads and
    ``ar_by_max_dets[50]`` names it by value), ``mar_small``, ``mar_medium``, ``mar_large``.
    Keypoints (all at maxDets 20): ``map_50_95``, ``map_50``, ``map_75``, ``map_medium``, ``map_large``,
    ``mar_20`` (AR), ``mar_50``, ``mar_75`` (AR at IoU 0.5 and 0.75), ``mar_medium``, ``mar_large``. Fields of the
    other kind are nan.

    Attributes:
        stats: (12,) or (10,) pycocotools' ``COCOeval.stats`` (-1 kept), in ``stat_names`` order.
        stat_max_dets: the maxDets each stat of ``stat_names`` reads (what pycocotools' summary prints as
            ``maxDets=``), None where the ladder has no such position (the stat is nan).
        ar_by_max_dets: maxDets -> AR (area "all", mean over IoU thresholds and classes; nan where pycocotools
            prints -1), one entry per value of the ladder: ``ar_by_max_dets[100]`` is ``mar_100`` under the
            default ladder.
        precision: (T, R, K, A, M) pycocotools' ``eval["precision"]``, -1 for classes without truth.
        recall: (T, K, A, M) ``eval["recall"]``.
        scores: (T, R, K, A, M) ``eval["scores"]``.
        ap_per_class: (K, T) AP of each class at each IoU threshold (area "all", else the first range; maxDets
            100, else the largest); nan for a class without truth objects.
        ar_per_class: (K, T) recall of each class at each IoU threshold (``recall[t, k]`` at area "all", else the
            first range, and the largest maxDets); nan for a class without truth objects. Its row mean is
            torchmetrics' ``mar_{max_dets[-1]}_per_class`` (pycocotools' AR of that one class).
        class_names, class_labels: (K,) name and schema label of each row of the K axis (sorted by COCO
            category id); ``("all",)``/``(-1,)`` when ``use_cats`` is False.
        boundary_dilation: ``iou_type="boundary"``: the boundary's width as a fraction of the image diagonal
            (None for the other types).
    """

    iou_type: str
    map_50_95: float
    map_50: float
    map_75: float
    map_small: float
    map_medium: float
    map_large: float
    mar_1: float
    mar_10: float
    mar_100: float
    mar_small: float
    mar_medium: float
    mar_large: float
    mar_20: float
    mar_50: float
    mar_75: float
    stats: FloatArray
    stat_names: tuple[str, ...]
    stat_max_dets: tuple[int | None, ...]
    ar_by_max_dets: Mapping[int, float]
    precision: FloatArray
    recall: FloatArray
    scores: FloatArray
    ap_per_class: FloatArray
    ar_per_class: FloatArray
    iou_thresholds: FloatArray
    recall_thresholds: FloatArray
    max_dets: tuple[int, ...]
    area_names: tuple[str, ...]
    area_ranges: FloatArray
    class_names: tuple[str, ...]
    class_labels: IntArray
    boundary_dilation: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan, and an unbounded area range's ``inf``, -> None): stats with the maxDets each
        reads, AR by maxDets (keyed by the maxDets as a string), options, per-class AP and AR (the full arrays
        are left out)."""
        def f(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None
        return {
            "iou_type": self.iou_type,
            **({} if self.boundary_dilation is None else {"boundary_dilation": self.boundary_dilation}),
            "stats": {name: f(getattr(self, name)) for name in self.stat_names},
            "stat_max_dets": dict(zip(self.stat_names, self.stat_max_dets, strict=True)),
            "ar_by_max_dets": {str(m): f(v) for m, v in self.ar_by_max_dets.items()},
            "iou_thresholds": self.iou_thresholds.tolist(),
            "max_dets": list(self.max_dets),
            "area_ranges": {n: [f(v) for v in self.area_ranges[i].tolist()] for i, n in enumerate(self.area_names)},
            "class_names": list(self.class_names),
            "ap_per_class": [[f(v) for v in row] for row in self.ap_per_class.tolist()],
            "ar_per_class": [[f(v) for v in row] for row in self.ar_per_class.tolist()],
        }

    def to_pandas(self) -> Any:
        """Per-class table: one row per class; ``ap`` (mean over thresholds) and one column per threshold
        (``ap_0.50``; with more decimals where two thresholds round to the same two; a threshold given twice
        gets ``#2`` on its second column), then ``ar`` and the ``ar_0.50``-style columns the same way."""
        import pandas as pd

        return pd.DataFrame({"class": list(self.class_names),
                             **per_class_columns(self.iou_thresholds, self.ap_per_class, self.ar_per_class)})


def per_class_columns(iou_thresholds: FloatArray, ap_per_class: FloatArray, ar_per_class: FloatArray
                      ) -> dict[str, FloatArray]:
    """The per-class table's columns: ``ap`` (mean over thresholds; nan for a class without truth), one
    ``ap_0.50``-style column per threshold (``_threshold_names``), then ``ar`` and its columns the same way."""
    names = _threshold_names(iou_thresholds.tolist())
    cols: dict[str, FloatArray] = {}
    for kind, per_class in (("ap", ap_per_class), ("ar", ar_per_class)):
        valid = ~np.isnan(per_class).all(axis=1)
        mean = np.full(len(per_class), np.nan)
        mean[valid] = per_class[valid].mean(axis=1)
        cols[kind] = mean
        for t, name in enumerate(names):
            cols[f"{kind}_{name}"] = per_class[:, t]
    return cols


def _threshold_names(thr: list[float]) -> list[str]:
    """Column suffixes of the IoU thresholds: the fewest decimals (at least 2) that keep distinct thresholds
    apart (``repr`` where none does), and ``#2``, ``#3`` on a repeated threshold's later columns."""
    digits = next((d for d in range(2, 17) if len({f"{t:.{d}f}" for t in thr}) == len(set(thr))), None)
    names: list[str] = []
    seen: dict[str, int] = {}
    for t in thr:
        name = repr(t) if digits is None else f"{t:.{digits}f}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return names


class MatchStatus:
    """The per-object status codes every result with per-object outcomes shares (``MatchTable``, ``VocResult``,
    ``OidResult``, ``PanopticResult``): int8 codes, their names in ``STATUS``."""

    IGNORED: ClassVar[int] = 0
    TP: ClassVar[int] = 1
    FP: ClassVar[int] = 2
    FN: ClassVar[int] = 3
    SKIPPED: ClassVar[int] = 4
    STATUS: ClassVar[tuple[str, ...]] = ("ignored", "tp", "fp", "fn", "skipped")

    def status_names(self, status: np.ndarray) -> np.ndarray:
        """The names (``"tp"``, ...) of an array of status codes (object array of str)."""
        names: np.ndarray = np.asarray(self.STATUS, dtype=object)[status]
        return names


@dataclass(frozen=True, eq=False)
class MatchTable(MatchStatus):
    """Per-object outcome of a COCO evaluation, as columns aligned with the datasets' annotation rows.

    Statuses (int8 codes, names in ``STATUS``): ``TP`` matched; ``FP`` unmatched prediction (or, as in
    pycocotools, one matched to a truth object whose COCO id is 0); ``FN`` unmatched truth object;
    ``IGNORED`` crowd or out-of-range truth objects, predictions matched to them, and unmatched predictions
    outside the area range; ``SKIPPED`` predictions not evaluated (class unknown to truth, or past the largest
    maxDets in their image and class).

    Attributes:
        iou_thresholds: (T,)
        area_range, max_dets: the area range and maxDets the statuses are taken at.
        pred_match: (n_pred, T) truth row matched to each prediction, -1 if none.
        pred_iou: (n_pred, T) IoU (OKS) with that truth object, nan if none.
        pred_status: (n_pred, T) int8 status.
        truth_match: (n_truth, T) prediction row matched to each truth object (the last one for a crowd
            region), -1 if none.
        truth_iou: (n_truth, T) IoU with that prediction, nan if none.
        truth_status: (n_truth, T) int8 status.
        result: the MapResult of the same evaluation.
    """

    iou_thresholds: FloatArray
    area_range: str
    max_dets: int
    pred_match: IntArray
    pred_iou: FloatArray
    pred_status: np.ndarray
    truth_match: IntArray
    truth_iou: FloatArray
    truth_status: np.ndarray
    result: MapResult


def _summarize(precision: FloatArray, recall: FloatArray, iou_thresholds: FloatArray, area_names: tuple[str, ...],
               max_dets: tuple[int, ...], ap: bool, iou_thr: float | None, area: str, dets: int) -> float:
    """pycocotools' ``_summarize``, the same numpy operations (so the same float64)."""
    aind = [i for i, name in enumerate(area_names) if name == area]
    mind = [i for i, m in enumerate(max_dets) if m == dets]
    if ap:
        s = precision
        if iou_thr is not None:
            s = s[np.where(iou_thr == iou_thresholds)[0]]
        s = s[:, :, :, aind, mind]
    else:
        s = recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == iou_thresholds)[0]]
        s = s[:, :, aind, mind]
    if len(s[s > -1]) == 0:
        return -1.0
    return float(np.mean(s[s > -1]))


def summarize(*, iou_type: str, precision: FloatArray, recall: FloatArray, scores: FloatArray,
              iou_thresholds: FloatArray, recall_thresholds: FloatArray, max_dets: tuple[int, ...],
              area_names: tuple[str, ...], area_ranges: FloatArray, class_names: tuple[str, ...],
              class_labels: IntArray, boundary_dilation: float | None = None) -> MapResult:
    table = _KP_STATS if iou_type == "keypoints" else _DET_STATS
    values: dict[str, float] = dict.fromkeys(STAT_FIELDS, math.nan)
    stats = np.zeros(len(table))
    stat_max_dets: list[int | None] = []
    for i, (name, ap, thr, area, dets) in enumerate(table):
        if isinstance(dets, str):
            j = int(dets)
            if j >= len(max_dets):
                stats[i] = math.nan  # pycocotools raises IndexError here
                stat_max_dets.append(None)
                continue
            dets = max_dets[j]
        stat_max_dets.append(dets)
        v = _summarize(precision, recall, iou_thresholds, area_names, max_dets, ap, thr, area, dets)
        stats[i] = v
        values[name] = math.nan if v == -1 else v
    ar_by_max_dets = {}
    for dets in max_dets:
        v = _summarize(precision, recall, iou_thresholds, area_names, max_dets, False, None, "all", dets)
        ar_by_max_dets[dets] = math.nan if v == -1 else v
    a = area_names.index("all") if "all" in area_names else 0
    m = max_dets.index(100) if 100 in max_dets else len(max_dets) - 1
    pk = np.ascontiguousarray(precision[:, :, :, a, m].transpose(2, 0, 1))  # (K, T, R)
    valid = (pk > -1).all(axis=2)
    ap_per_class = np.full(pk.shape[:2], np.nan)
    if pk.size:
        ap_per_class[valid] = np.mean(pk, axis=2)[valid]
    # (K, T), each row contiguous: its np.mean is pycocotools' _summarize of that one class, bit for bit
    ar_per_class = np.array(recall[:, :, a, len(max_dets) - 1].T, dtype=np.float64, order="C")  # a copy
    ar_per_class[ar_per_class == -1] = np.nan
    for arr in (precision, recall, scores, ap_per_class, ar_per_class, stats):
        arr.flags.writeable = False
    return MapResult(
        iou_type=iou_type, **values, stats=stats, stat_names=tuple(t[0] for t in table),
        stat_max_dets=tuple(stat_max_dets), ar_by_max_dets=MappingProxyType(ar_by_max_dets), precision=precision,
        recall=recall, scores=scores, ap_per_class=ap_per_class, ar_per_class=ar_per_class,
        iou_thresholds=iou_thresholds, recall_thresholds=recall_thresholds, max_dets=max_dets,
        area_names=area_names, area_ranges=area_ranges, class_names=class_names, class_labels=class_labels,
        boundary_dilation=boundary_dilation if iou_type == "boundary" else None,
    )
