"""The knobs of ``maslow.quality.check``: one frozen ``CheckConfig``, every threshold documented, readable from a
YAML file (``CheckConfig.from_yaml``, ``maslow check --config``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from maslow.errors import FormatError

FAMILIES = ("geometry", "overlaps", "consistency", "agreement", "bias")

RULE_TYPES: dict[str, tuple[str, ...]] = {
    "geometry": ("zero_area_box", "degenerate_box", "tiny_box", "box_out_of_bounds", "polygon_too_few_vertices",
                 "polygon_zero_area", "polygon_self_intersection", "polygon_out_of_bounds", "polygon_box_mismatch",
                 "empty_mask", "mask_size_mismatch", "mask_box_mismatch", "size_outlier", "keypoint_outside_box",
                 "keypoint_outside_image", "keypoint_unlabelled_with_coordinates", "image_size_unknown",
                 "obb_degenerate", "obb_corner_order", "obb_not_rectangle"),
    "overlaps": ("duplicate_box", "class_conflict"),
    "consistency": ("missing_common_class", "count_outlier", "attribute_invalid", "attribute_missing",
                    "attribute_conflict", "class_not_in_schema", "attribute_unknown", "image_without_annotations",
                    "rule_never_applies"),
    "agreement": ("annotator_class_disagreement", "annotator_missed_object", "annotator_low_agreement",
                  "ambiguous_image"),
    "bias": ("label_bias", "annotator_label_bias"),
}
"""The finding types each family of ``check`` can report (``CheckConfig.ignore_types`` names them)."""
_ALL_TYPES = tuple(t for ts in RULE_TYPES.values() for t in ts)


@dataclass(frozen=True)
class CheckConfig:
    """Thresholds of the rule checks. Robust z-scores are ``(x - median) / (1.4826 * MAD)`` (1.2533 times the mean
    absolute deviation where the MAD is 0; see ``geometry.robust_z``).

    Attributes:
        families: which check families run (subset of ``FAMILIES``).
        min_side: a box whose width or height is below this many pixels (but > 0) is ``degenerate_box``;
            1-pixel boxes are what VOC files write for ``xmin == xmax`` (a zero-area box in VOC terms).
        min_area: a box (not degenerate) whose area in square pixels is below this is ``tiny_box``, a warning;
            0 (the default) turns the check off. COCO calls objects under 32² = 1024 px² small.
        bounds_tolerance: pixels a box may extend past the image before it is ``box_out_of_bounds``.
        mask_box_iou: a mask or polygon whose bounding box has IoU below this with the annotation's box is
            ``mask_box_mismatch`` or ``polygon_box_mismatch``.
        oriented: whether the 4-point single-ring polygons are oriented boxes, checked by the oriented-box rules
            (``obb_degenerate``, ``obb_corner_order``, ``obb_not_rectangle``; ``maslow.quality.oriented``): None
            (the default) when the dataset is oriented (primary task detection, every polygon 4 points: as YOLO
            OBB, DOTA and COCO ``obb`` files are read), True always, False never.
        obb_tolerance: pixels a corner of an oriented box may lie off its minimum-area rectangle before it is
            ``obb_not_rectangle``.
        max_polygon_vertices: self-intersection is tested only for polygon parts with at most this many vertices
            (the test is O(v^2) per part).
        size_z: robust z of log area or log aspect ratio, per class, above which an object is ``size_outlier``.
        min_log_scale: floor of the spread (1.4826 MAD) of log area and log aspect, so a class whose objects
            all have nearly one shape (squares, circles) does not flag a 2% deviation; 0.15 is a 16% change.
        min_class_count: classes with fewer boxes get no size or count statistics.
        keypoint_tolerance: pixels a labelled keypoint may lie outside its box.
        duplicate_iou: same-class boxes in one image with IoU >= this are ``duplicate_box`` (0.9: two people
            drawing the same object by hand rarely agree that closely, so such pairs are double labels).
        conflict_iou: boxes of different classes with IoU >= this are ``class_conflict``.
        presence_fraction: a class present in at least this fraction of images makes images without it
            ``missing_common_class``.
        min_images: datasets with fewer images get no consistency statistics.
        count_z: robust z of a class's count per image above which the image is ``count_outlier``.
        exclusive_attributes: pairs of bool attributes that must not both be true (e.g. ``("occluded", "truncated")``
            when the guidelines make them exclusive).
        forbidden_combinations: each entry a tuple of ``(attribute, value)`` pairs that must not all hold on one
            annotation, e.g. ``((("colour", "red"), ("occluded", True)),)``.
        agreement_iou: IoU at which boxes of two annotators are matched as the same object.
        bias_cramers_v: Cramér's V at or above which an association is ``label_bias`` (with ``bias_p``).
        bias_p: p-value below which an association may be flagged (at least 1/20,000, the smallest p the
            shuffle test over images can give).
        annotator_bias_v: Cramér's V of one annotator's class distribution against the rest of the team.
        max_categories: metadata columns with more distinct values are not tested for bias.
        bias_columns: ``images.extra`` columns, attributes (``attr:NAME``) or ``annotator`` to test; None = all.
        report_empty_images: report every image without any annotation as ``image_without_annotations`` (info);
            off by default, as background images (negatives) are normal (``maslow stats`` counts them).
        ignore_types: finding types to leave out of the result (names from ``RULE_TYPES``), e.g.
            ``("image_without_annotations",)`` for a dataset with deliberate background images, or
            ``("keypoint_unlabelled_with_coordinates",)`` for CVAT skeletons, whose outside points keep coordinates.

    Every field's type and range is checked when the config is made (``ValueError`` naming the field); lists are
    kept as tuples. ``from_yaml``/``from_dict`` read one from a file (``maslow check --config``).
    """

    families: tuple[str, ...] = FAMILIES
    min_side: float = 2.0
    min_area: float = 0.0
    bounds_tolerance: float = 1.0
    mask_box_iou: float = 0.5
    oriented: bool | None = None
    obb_tolerance: float = 1.0
    max_polygon_vertices: int = 512
    size_z: float = 5.0
    min_log_scale: float = 0.15
    min_class_count: int = 20
    keypoint_tolerance: float = 1.0
    duplicate_iou: float = 0.9
    conflict_iou: float = 0.9
    presence_fraction: float = 0.95
    min_images: int = 20
    count_z: float = 5.0
    exclusive_attributes: tuple[tuple[str, str], ...] = ()
    forbidden_combinations: tuple[tuple[tuple[str, Any], ...], ...] = ()
    agreement_iou: float = 0.5
    bias_cramers_v: float = 0.3
    bias_p: float = 0.001
    annotator_bias_v: float = 0.2
    max_categories: int = 50
    bias_columns: tuple[str, ...] | None = None
    report_empty_images: bool = False
    ignore_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            values = _checked({f.name: getattr(self, f.name) for f in fields(self)})
        except _Bad as e:
            raise ValueError(f"CheckConfig.{e.where}: {e.msg}") from None
        for name, v in values.items():
            object.__setattr__(self, name, v)

    @classmethod
    def from_dict(cls, d: Any, *, path: str | Path | None = None) -> CheckConfig:
        """A config from a mapping of field names to values (YAML/JSON lists are read as tuples); fields left
        out keep their defaults.

        Raises:
            FormatError: ``d`` is not a mapping, a key is not a field, or a value has the wrong type or range
                (names ``path`` when given, and the key path of the bad value, e.g. ``forbidden_combinations[0]``).

        Example:
            >>> CheckConfig.from_dict({"families": ["consistency"], "exclusive_attributes": [["a", "b"]]}).families
            ('consistency',)
        """
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise FormatError(f"must be a mapping of CheckConfig fields, got {type(d).__name__}", path=path)
        known = [f.name for f in fields(cls)]
        for k in d:
            if k not in known:
                raise FormatError(f"unknown key; expected one of {', '.join(known)}", path=path, record=str(k))
        try:
            values = _checked(dict(d))
        except _Bad as e:
            raise FormatError(e.msg, path=path, record=e.where) from None
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> CheckConfig:
        """The config in a YAML file: a mapping of ``CheckConfig`` fields (an empty file keeps every default).

        Raises:
            FormatError: the file is unreadable or malformed, or a key or value is wrong (names the file and the
                key path).
        """
        from maslow.core.yamlfile import read_yaml

        return cls.from_dict(read_yaml(path, what="check config"), path=Path(path))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (tuples as lists), the inverse of ``from_dict``."""
        return {f.name: _lists(getattr(self, f.name)) for f in fields(self)}


class _Bad(ValueError):
    def __init__(self, where: str, msg: str) -> None:
        super().__init__(f"{where}: {msg}")
        self.where, self.msg = where, msg


def _lists(v: Any) -> Any:
    return [_lists(x) for x in v] if isinstance(v, tuple) else v


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _number(where: str, v: Any, lo: float, *, lo_open: bool = False, hi: float = math.inf,
            finite: bool = True) -> float:
    ok = isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
    x = float(v) if ok else math.nan
    if not ok or math.isnan(x) or (finite and math.isinf(x)) or x < lo or (lo_open and x == lo) or x > hi:
        rng = (f"in ({lo:g}, {hi:g}]" if lo_open else f"in [{lo:g}, {hi:g}]") if hi < math.inf else \
            f"{'>' if lo_open else '>='} {lo:g}"
        raise _Bad(where, f"must be a {'finite ' if finite else ''}number {rng}, got {v!r}")
    return x


def _int(where: str, v: Any, lo: int) -> int:
    if not _is_int(v) or v < lo:
        raise _Bad(where, f"must be an integer >= {lo}, got {v!r}")
    return int(v)


def _seq(where: str, v: Any, what: str) -> tuple[Any, ...]:
    if isinstance(v, str | bytes) or not isinstance(v, list | tuple):
        raise _Bad(where, f"must be a list of {what}, got {v!r}")
    return tuple(v)


def _name(where: str, v: Any, what: str = "an attribute name") -> str:
    if not isinstance(v, str) or not v:
        raise _Bad(where, f"must be a non-empty string ({what}), got {v!r}")
    return v


#: the smallest ``bias_p``: the permutation test over images runs at most 19,999 shuffles (``_bias_perm``)
MIN_BIAS_P = 1 / 20_000
_UNIT = ("duplicate_iou", "conflict_iou", "mask_box_iou", "agreement_iou", "presence_fraction", "bias_p")
_NON_NEGATIVE = ("min_side", "min_area", "bounds_tolerance", "min_log_scale", "keypoint_tolerance", "obb_tolerance")
_Z = ("size_z", "count_z")  # > 0; .inf turns the check off
_FRACTION = ("bias_cramers_v", "annotator_bias_v")
_COUNTS = {"max_polygon_vertices": 0, "min_class_count": 0, "min_images": 0, "max_categories": 2}


def _checked(d: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``d`` checked and normalised (lists as tuples, numbers as float or int); raises ``_Bad``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k == "families":
            fams = _seq(k, v, "family names")
            for i, f in enumerate(fams):
                if f not in FAMILIES:
                    raise _Bad(f"{k}[{i}]", f"must be one of {', '.join(FAMILIES)}, got {f!r}")
            out[k] = tuple(fams)
        elif k in _UNIT:
            out[k] = _number(k, v, 0.0, lo_open=True, hi=1.0)
            if k == "bias_p" and out[k] < MIN_BIAS_P:  # a test over images could never reach it
                raise _Bad(k, f"must be at least {MIN_BIAS_P:g} (1/20,000: the smallest p of the shuffle test over "
                              f"images, 19,999 shuffles at most), got {out[k]:g}")
        elif k in _NON_NEGATIVE:
            out[k] = _number(k, v, 0.0)
        elif k in _Z:
            out[k] = _number(k, v, 0.0, lo_open=True, finite=False)
        elif k in _FRACTION:
            out[k] = _number(k, v, 0.0, hi=1.0)
        elif k in _COUNTS:
            out[k] = _int(k, v, _COUNTS[k])
        elif k == "exclusive_attributes":
            pairs = []
            for i, p in enumerate(_seq(k, v, "pairs of bool attribute names")):
                pair = _seq(f"{k}[{i}]", p, "two attribute names")
                if len(pair) != 2:
                    raise _Bad(f"{k}[{i}]", f"must be a pair of attribute names, got {p!r}")
                pairs.append((_name(f"{k}[{i}][0]", pair[0]), _name(f"{k}[{i}][1]", pair[1])))
            out[k] = tuple(pairs)
        elif k == "forbidden_combinations":
            rules = []
            for i, r in enumerate(_seq(k, v, "combinations (lists of [attribute, value] pairs)")):
                rule = _seq(f"{k}[{i}]", r, "[attribute, value] pairs")
                if not rule:
                    raise _Bad(f"{k}[{i}]", "must hold at least one [attribute, value] pair, got []")
                combo: list[tuple[str, Any]] = []
                for j, p in enumerate(rule):
                    w = f"{k}[{i}][{j}]"
                    pair = _seq(w, p, "[attribute, value]")
                    if len(pair) != 2:
                        raise _Bad(w, f"must be an [attribute, value] pair, got {p!r}")
                    if not isinstance(pair[1], str | bool | int | float | np.generic) or pair[1] != pair[1]:
                        raise _Bad(f"{w}[1]", f"must be a string, number or boolean, got {pair[1]!r}")
                    combo.append((_name(f"{w}[0]", pair[0]), pair[1]))
                rules.append(tuple(combo))
            out[k] = tuple(rules)
        elif k == "oriented":
            if v is not None and not isinstance(v, bool | np.bool_):
                raise _Bad(k, f"must be true, false or null (auto), got {v!r}")
            out[k] = None if v is None else bool(v)
        elif k == "report_empty_images":
            if not isinstance(v, bool | np.bool_):
                raise _Bad(k, f"must be true or false, got {v!r}")
            out[k] = bool(v)
        elif k == "ignore_types":
            types = _seq(k, v, "finding types")
            for i, t in enumerate(types):
                if t not in _ALL_TYPES:
                    raise _Bad(f"{k}[{i}]", f"must be a finding type of maslow check ({', '.join(_ALL_TYPES)}), "
                                            f"got {t!r}")
            out[k] = tuple(types)
        elif k == "bias_columns":
            if v is None:
                out[k] = None
            else:
                what = "an images.extra column, attr:NAME or annotator"
                out[k] = tuple(_name(f"{k}[{i}]", c, what) for i, c in enumerate(_seq(k, v, "column names")))
        else:
            out[k] = v
    return out
