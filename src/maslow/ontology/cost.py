"""Annotation cost: how long labelling takes per label type, so a team can compare strategies before labelling.

Default rates (seconds; every one is a ``CostRates`` argument, set your own from a pilot):

- ``box`` 7.0 s per box: extreme clicking (Papadopoulos et al., "Extreme clicking for efficient object
  annotation", ICCV 2017, measured 7.0 s). The same paper measures 34.5 s for the classic draw-and-verify
  protocol (Su et al., 2012; ~25 s drawing plus quality checks): use ``CostRates(box=34.5)`` for drawn boxes.
- ``polygon_vertex`` 1.5 s per vertex: a planning figure in the 1-2 s per click range of polygon tools;
  ``vertices_per_polygon`` 12 is used when a strategy asks for polygons the data does not have.
- ``mask`` 79.2 s per instance mask: COCO's 22 worker-hours per 1,000 instance segmentations (Lin et al.,
  "Microsoft COCO", ECCV 2014).
- ``keypoint`` 2.4 s per labelled point (visibility not 0): one click, as for point supervision (Bearman et al., "What's the point", ECCV
  2016, 2.4 s per point).
- ``tag`` 1.0 s per image-level tag (Bearman et al. 2016: ~1 s per class for image-level labels).
- ``attribute_value`` 1.0 s per attribute value set (an assumption: one click in a side panel).

``estimate_cost(ds)`` prices the dataset as annotated (a mask that is the row's own polygon rasterised is the
polygon's work, not a second drawing); ``estimate_cost(ds, label_types=...)`` prices a
strategy (every annotation of a class labelled with the given label types). ``annotator_throughput`` measures
the real pace per annotator when annotations carry an ``annotator`` and a timestamp in ``annotations.extra``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, is_unset
from maslow.errors import SchemaError
from maslow.ontology._geometry import (
    attribute_present,
    derived_masks,
    keypoint_present,
    label_type_columns,
    polygon_vertices,
)

PARTS = ("box", "mask", "polygon", "keypoints", "tag", "attributes")


@dataclass(frozen=True)
class CostRates:
    """Seconds per unit of annotation work (sources in the module docstring)."""

    box: float = 7.0
    polygon_vertex: float = 1.5
    vertices_per_polygon: float = 12.0
    mask: float = 79.2
    keypoint: float = 2.4
    tag: float = 1.0
    attribute_value: float = 1.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostRates:
        known = set(asdict(cls()))
        bad = sorted(set(d) - known)
        if bad:
            raise SchemaError(f"cost rates: {bad[0]!r} must be one of {', '.join(sorted(known))}")
        for k, v in d.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < float("inf"):
                raise SchemaError(f"cost rates: {k} must be a number >= 0, got {v!r}")
        return cls(**{k: float(v) for k, v in d.items()})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class CostEstimate:
    """Estimated annotation time.

    Attributes:
        names: (k,) class names.
        seconds: (k, 6) float64 seconds per class and part (``PARTS``: box, mask, polygon, keypoints, tag,
            attributes).
        counts: (k, 6) units per class and part (boxes, masks, polygon vertices, keypoints, tags, values).
        strategy: a description of the label types priced (``"as annotated"`` or per class).
        rates: the rates used.
    """

    names: tuple[str, ...]
    seconds: FloatArray
    counts: FloatArray
    strategy: str
    rates: CostRates

    @property
    def total_seconds(self) -> float:
        return float(self.seconds.sum())

    @property
    def total_hours(self) -> float:
        return self.total_seconds / 3600.0

    @property
    def seconds_per_class(self) -> FloatArray:
        return self.seconds.sum(1)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy, "total_seconds": self.total_seconds, "total_hours": self.total_hours,
            "rates": self.rates.to_dict(),
            "per_part": dict(zip(PARTS, self.seconds.sum(0).tolist(), strict=True)),
            "per_class": {n: {"seconds": float(self.seconds[i].sum()),
                              "parts": dict(zip(PARTS, self.seconds[i].tolist(), strict=True)),
                              "counts": dict(zip(PARTS, self.counts[i].tolist(), strict=True))}
                          for i, n in enumerate(self.names)},
        }


LabelTypes = Sequence[str] | Mapping[str, Sequence[str]]


def estimate_cost(ds: Dataset, *, rates: CostRates | None = None, label_types: LabelTypes | None = None) -> CostEstimate:
    """Estimate the time to annotate ``ds``.

    Args:
        ds: the dataset (its annotations are the objects to label).
        rates: seconds per unit; default ``CostRates()``.
        label_types: None prices what each annotation carries (a mask that is exactly its own polygon
            rasterised counts as the polygon alone: one drawing, held twice). A list (e.g. ``["box"]``) prices every
            annotation with those label types; a mapping class name -> list does so per class (classes not
            named keep what they carry). Polygons the data lacks count ``rates.vertices_per_polygon``
            vertices. Keypoints count a row's labelled points (coordinates, visibility not 0: COCO's unlabelled
            ``(0, 0, 0)`` is no click), or the class's keypoint names on a row without keypoints.

    Returns:
        CostEstimate with seconds and counts per class and part.

    Example:
        >>> from maslow.sample import shapes
        >>> ds = shapes(12, seed=0)
        >>> estimate_cost(ds, label_types=["box"]).total_seconds < estimate_cost(ds, label_types=["mask"]).total_seconds
        True
    """
    rates = rates or CostRates()
    ann = ds.annotations
    k, n = len(ds.schema.classes), len(ann)
    geo = label_type_columns(ann)
    verts = polygon_vertices(ann).astype(np.float64)
    verts = np.where(verts > 0, verts, rates.vertices_per_polygon)
    n_kp_row = labelled_keypoints(ann.keypoints, n).astype(np.float64)
    n_kp_class = np.array([len(c.keypoints) for c in ds.schema.classes] or [0], np.float64)
    # rows without keypoints (a strategy that asks for them) count the class's keypoint names; a row that has
    # keypoints counts its labelled points, none when all are unlabelled
    n_kp_row = np.where(keypoint_present(ann), n_kp_row, n_kp_class[ann.label] if n else n_kp_row)
    n_attr = np.zeros(n)
    for col in ann.attributes.values():
        n_attr += attribute_present(col)
    # which parts each row is priced with: (n, 5) bool; a mask that is the row's polygon rasterised is not a
    # second drawing (the COCO writer keeps only the polygon), so "as annotated" prices the polygon alone
    geo["mask"] = geo["mask"] & ~derived_masks(ann)
    use = np.stack([geo[t] for t in PARTS[:5]], 1)
    desc = "as annotated"
    if label_types is not None:
        per_class = label_types if isinstance(label_types, Mapping) else {c: label_types for c in ds.schema.names}
        for name, types in per_class.items():
            bad = [t for t in types if t not in PARTS[:5]]
            if bad:
                raise SchemaError(f"estimate_cost: label type must be one of {', '.join(PARTS[:5])}, got {bad[0]!r}")
            rows = ann.label == ds.schema.index(name)
            use[rows] = np.array([t in types for t in PARTS[:5]], bool)
        desc = (", ".join(label_types) if not isinstance(label_types, Mapping)
                else "; ".join(f"{c}: {', '.join(t)}" for c, t in label_types.items()))
    units = np.stack([use[:, 0], use[:, 1], use[:, 2] * verts, use[:, 3] * n_kp_row, use[:, 4], n_attr], 1)
    price = np.array([rates.box, rates.mask, rates.polygon_vertex, rates.keypoint, rates.tag, rates.attribute_value])
    counts = np.zeros((k, len(PARTS)))
    if n:
        np.add.at(counts, ann.label, units.astype(np.float64))
    return CostEstimate(names=ds.schema.names, seconds=counts * price, counts=counts, strategy=desc, rates=rates)


def labelled_keypoints(kp: FloatArray | None, n: int) -> np.ndarray:
    """(n,) int64 labelled points per row: a point with coordinates whose visibility is not 0. COCO's ``v = 0``
    (read as ``(0, 0, 0)``) is an unlabelled point, not a click; a NaN point is none."""
    if kp is None or kp.shape[1] == 0:
        return np.zeros(n, np.int64)
    with np.errstate(invalid="ignore"):
        clicked = ~np.isnan(kp[:, :, 0]) & ~(kp[:, :, 2] <= 0)
    return clicked.sum(1).astype(np.int64)  # type: ignore[no-any-return]


def compare_strategies(ds: Dataset, strategies: Mapping[str, LabelTypes | None], *,
                       rates: CostRates | None = None) -> dict[str, CostEstimate]:
    """One CostEstimate per named strategy (None = as annotated), in the order given."""
    return {name: estimate_cost(ds, rates=rates, label_types=lt) for name, lt in strategies.items()}


@dataclass(frozen=True)
class AnnotatorThroughput:
    """Measured pace per annotator.

    Attributes:
        annotators: (a,) names.
        n_annotations: (a,) int64 annotations with a timestamp.
        active_seconds: (a,) float64 sum of the gaps between consecutive annotations, gaps over ``max_gap_s``
            (breaks) left out.
        per_hour: (a,) ``3600 / mean gap`` inside sessions: the annotations timed (each one after the first of
            its session, whose gap is its time) per active hour (NaN when no active time). A session's first
            annotation has no time measured, so it is not counted: two annotations 30 s apart give 120 per hour.
        median_gap_seconds: (a,) median gap between consecutive annotations (NaN with fewer than 2).
        n_without_time: annotations skipped (no annotator, None or NaN, or no parseable timestamp).
    """

    annotators: tuple[str, ...]
    n_annotations: np.ndarray
    active_seconds: FloatArray
    per_hour: FloatArray
    median_gap_seconds: FloatArray
    n_without_time: int

    def to_dict(self) -> dict[str, Any]:
        return {"n_without_time": self.n_without_time, "annotators": [
            {"annotator": a, "n_annotations": int(self.n_annotations[i]),
             "active_seconds": float(self.active_seconds[i]), "per_hour": float(self.per_hour[i]),
             "median_gap_seconds": float(self.median_gap_seconds[i])} for i, a in enumerate(self.annotators)]}


def _seconds(v: Any) -> float:
    if v is None or isinstance(v, bool):
        return float("nan")
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    if isinstance(v, _dt.datetime):
        d = v
    elif isinstance(v, str):
        try:
            d = _dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return float("nan")
    else:
        return float("nan")
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.UTC)
    return d.timestamp()


def annotator_throughput(ds: Dataset, *, time_field: str = "created", max_gap_s: float = 600.0) -> AnnotatorThroughput:
    """Annotations per hour for each annotator, from ``annotations.annotator`` and ``annotations.extra[time_field]``.

    An annotator's annotations, in time order, form sessions split at gaps longer than ``max_gap_s`` (breaks).
    Each annotation after the first of its session took the gap before it; ``per_hour`` is those annotations
    over the time of those gaps (``3600 / mean gap``), so a session's first annotation, which has no time
    measured, counts in ``n_annotations`` but not in the rate. Timestamps may be ISO 8601 strings, datetimes or
    epoch seconds. An annotation without an annotator (None, NaN or empty text: nobody's, as everywhere in
    maslow) or without a parseable timestamp is counted in ``n_without_time``. Returns an empty result (no
    annotators) when the dataset has no annotator column or no ``time_field``.

    Example:
        >>> from maslow.sample import shapes
        >>> from maslow.core.types import obj_array
        >>> ds = shapes(2, seed=0)
        >>> a = ds.annotations
        >>> times = obj_array([30.0 * i for i in range(len(a))])  # one annotation every 30 s
        >>> tp = annotator_throughput(ds.replace(annotations=a.with_columns(
        ...     annotator=obj_array(["ann"] * len(a)), extra={"created": times})))
        >>> float(tp.per_hour[0])
        120.0
    """
    ann = ds.annotations
    col = ann.extra.get(time_field)
    if ann.annotator is None or col is None:
        e = np.zeros(0)
        return AnnotatorThroughput((), np.zeros(0, np.int64), e, e, e, len(ann))
    t = np.array([_seconds(v) for v in col], np.float64)
    who = np.array(["" if is_unset(a) else str(a) for a in ann.annotator], dtype=object)
    ok = ~np.isnan(t) & (who != "")
    names = tuple(sorted(set(who[ok].tolist())))
    n, act, ph, med = [], [], [], []
    for a in names:
        ts = np.sort(t[ok & (who == a)])
        gaps = np.diff(ts)
        timed = gaps[gaps <= max_gap_s]  # each the time of the annotation that ends it
        active = float(timed.sum())
        n.append(len(ts))
        act.append(active)
        ph.append(len(timed) / (active / 3600.0) if active > 0 else float("nan"))
        med.append(float(np.median(gaps)) if len(gaps) else float("nan"))
    return AnnotatorThroughput(names, np.array(n, np.int64), np.array(act), np.array(ph), np.array(med),
                               int((~ok).sum()))
