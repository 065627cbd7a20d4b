"""``maslow eval``'s COCO parameters: ``--iou-thresholds``, ``--max-dets``, ``--area-range`` and
``--class-agnostic``, parsed into ``coco_map``'s keyword arguments (pycocotools' ``Params``: ``iouThrs``,
``maxDets``, ``areaRng``/``areaRngLbl``, ``useCats``), and the rows of the area ranges pycocotools' summary does not
print."""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any

import numpy as np
import typer

from maslow.errors import MaslowError
from maslow.metrics import MapResult
from maslow.metrics.coco import DEFAULT_AREA_RANGES, KEYPOINT_AREA_RANGES

#: The flags, as the refusals name them.
FLAGS = "--iou-thresholds/--max-dets/--area-range/--class-agnostic"

IouThresholds = Annotated[str | None, typer.Option(
    "--iou-thresholds", metavar="THRESHOLDS", help="COCO protocol: the IoU (OKS) thresholds AP and AR "
    "average over, comma separated (0.5,0.75) or a range with its ends (0.5:0.95:0.05, pycocotools' default).")]
MaxDets = Annotated[str | None, typer.Option(
    "--max-dets", metavar="N,...", help="COCO protocol: the maxDets ladder, increasing (default 1,10,100; 20 for "
    "keypoints). As pycocotools: map_50_95 reads maxDets 100 whatever the ladder (- without 100), map_50, map_75 "
    "and the area stats its third value, mar_1/mar_10/mar_100 its first three; keypoints read 20 for every stat. "
    "The per-class table reads 100, else the ladder's largest value.")]
AreaRanges = Annotated[list[str] | None, typer.Option(
    "--area-range", metavar="NAME=LO:HI", help="COCO protocol: an object area range in square pixels (ends "
    "included; HI may be inf), added to COCO's all/small/medium/large or replacing the one of that name; "
    "repeatable.")]
ClassAgnostic = Annotated[bool, typer.Option(
    "--class-agnostic", help="COCO protocol: pool all classes (pycocotools' useCats=0): a prediction may match "
    "an object of any class (bbox, segm, boundary, obb).")]


def given(iou_thresholds: str | None, max_dets: str | None, area_ranges: list[str] | None,
          class_agnostic: bool) -> bool:
    """Whether any of the flags was given."""
    return iou_thresholds is not None or max_dets is not None or bool(area_ranges) or class_agnostic


def coco_params(kind: str, iou_thresholds: str | None, max_dets: str | None, area_ranges: list[str] | None,
                class_agnostic: bool) -> dict[str, Any]:
    """``coco_map``'s keyword arguments for the flags given (an empty dict: pycocotools' defaults).

    Raises:
        MaslowError: a value that can't be parsed or is out of range, or ``--class-agnostic`` with keypoints.
    """
    out: dict[str, Any] = {}
    if iou_thresholds is not None:
        out["iou_thresholds"] = _thresholds(iou_thresholds)
    if max_dets is not None:
        out["max_dets"] = _max_dets(max_dets)
    if area_ranges:
        ranges = dict(KEYPOINT_AREA_RANGES if kind == "keypoints" else DEFAULT_AREA_RANGES)
        for text in area_ranges:
            name, lo_hi = _area_range(text)
            ranges[name] = lo_hi
        out["area_ranges"] = ranges
    if class_agnostic:
        if kind == "keypoints":
            raise MaslowError("eval: --class-agnostic applies to --iou-type bbox, segm, boundary and obb, got "
                              "keypoints (OKS is defined per class: pycocotools matches nothing across classes)")
        out["use_cats"] = False
    return out


def _number(text: str, flag: str, whole: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise MaslowError(f"eval: {flag} values must be numbers, got {text.strip()!r} in {whole!r}") from None
    if math.isnan(v):
        raise MaslowError(f"eval: {flag} values must be numbers, got {text.strip()!r} in {whole!r}")
    return v


def _thresholds(text: str) -> list[float]:
    flag = "--iou-thresholds"
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise MaslowError(f"eval: {flag} must be T1,T2,... or START:STOP:STEP, got {text!r}")
        start, stop, step = (_number(p, flag, text) for p in parts)
        if not step > 0 or stop < start:
            raise MaslowError(f"eval: {flag} START:STOP:STEP must have STEP > 0 and STOP >= START, got {text!r}")
        n = (stop - start) / step
        if abs(n - round(n)) > 1e-6:
            raise MaslowError(f"eval: {flag} STOP - START must be a whole number of STEPs (both ends are "
                              f"thresholds), got {text!r}")
        # built as pycocotools builds its default (0.5:0.95:0.05 gives its thresholds, bit for bit)
        values: list[float] = np.linspace(start, stop, int(np.round((stop - start) / step)) + 1,
                                          endpoint=True).tolist()
    else:
        values = [_number(p, flag, text) for p in text.split(",")]
    bad = [v for v in values if not 0 <= v <= 1]
    if bad:
        raise MaslowError(f"eval: {flag} values must lie in [0, 1], got {bad[0]:g} in {text!r}")
    return values


def _max_dets(text: str) -> list[int]:
    out = []
    for p in text.split(","):
        try:
            v = int(p)
        except ValueError:
            raise MaslowError(f"eval: --max-dets values must be whole numbers, got {p.strip()!r} in {text!r}") from None
        if v < 1:
            raise MaslowError(f"eval: --max-dets values must be at least 1, got {v} in {text!r}")
        out.append(v)
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise MaslowError(f"eval: --max-dets must be increasing (a ladder, as pycocotools' maxDets), got {text!r}")
    return out


def _area_range(text: str) -> tuple[str, tuple[float, float]]:
    flag = "--area-range"
    name, sep, rest = text.partition("=")
    lo_s, sep2, hi_s = rest.partition(":")
    if not sep or not sep2 or not name.strip():
        raise MaslowError(f"eval: {flag} must be NAME=LO:HI (square pixels, e.g. tiny=0:256), got {text!r}")
    lo, hi = _number(lo_s, flag, text), _number(hi_s, flag, text)
    if not (0 <= lo <= hi) or math.isinf(lo):
        raise MaslowError(f"eval: {flag} must have 0 <= LO <= HI, got {text!r}")
    return name.strip(), (lo, hi)


#: The area ranges pycocotools' summary has stats for.
_SUMMARY_AREAS = ("all", "small", "medium", "large")


def area_stats(r: MapResult) -> dict[str, dict[str, Any]]:
    """AP and AR (mean over IoU thresholds and classes, as pycocotools' ``_summarize``) of each area range its
    summary has no stat for (``--area-range tiny=0:256``), at the maxDets the summary's area stats read (its
    third value; the largest for a shorter ladder)."""
    dets = dict(zip(r.stat_names, r.stat_max_dets, strict=True)).get("map_medium") or r.max_dets[-1]
    m = r.max_dets.index(dets)
    out = {}
    for a, name in enumerate(r.area_names):
        if name in _SUMMARY_AREAS:
            continue
        p, rec = r.precision[:, :, :, a, m], r.recall[:, :, a, m]
        out[name] = {"ap": float(np.mean(p[p > -1])) if (p > -1).any() else math.nan,
                     "ar": float(np.mean(rec[rec > -1])) if (rec > -1).any() else math.nan, "max_dets": dets}
    return out


def area_rows(r: MapResult, fmt: Any) -> list[tuple[str, ...]]:
    """The stat table's rows of ``area_stats``."""
    thr = r.iou_thresholds
    all_t = f"{thr.min():.2f}:{thr.max():.2f}"
    return [row for name, s in area_stats(r).items() for row in (
        (f"map_{name}", "AP", all_t, name, str(s["max_dets"]), fmt(s["ap"])),
        (f"mar_{name}", "AR", all_t, name, str(s["max_dets"]), fmt(s["ar"])))]
