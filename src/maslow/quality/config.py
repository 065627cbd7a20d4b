"""The knobs of ``maslow.quality.check``: one frozen ``CheckConfig``, every threshold documented."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAMILIES = ("geometry", "overlaps", "consistency", "agreement", "bias")


@dataclass(frozen=True)
class CheckConfig:
    """Thresholds of the rule checks. Robust z-scores are ``(x - median) / (1.4826 * MAD)`` (1.2533 times the mean
    absolute deviation where the MAD is 0; see ``geometry.robust_z``).

    Attributes:
        families: which check families run (subset of ``FAMILIES``).
        min_side: a box whose width or height is below this many pixels (but > 0) is ``degenerate_box``;
            1-pixel boxes are what VOC files write for ``xmin == xmax`` (a zero-area box in VOC terms).
        bounds_tolerance: pixels a box may extend past the image before it is ``box_out_of_bounds``.
        mask_box_iou: a mask whose bounding box has IoU below this with the annotation's box is ``mask_box_mismatch``.
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
        bias_p: chi-square p-value below which an association may be flagged.
        annotator_bias_v: Cramér's V of one annotator's class distribution against the rest of the team.
        max_categories: metadata columns with more distinct values are not tested for bias.
        bias_columns: ``images.extra`` columns, attributes (``attr:NAME``) or ``annotator`` to test; None = all.
    """

    families: tuple[str, ...] = FAMILIES
    min_side: float = 2.0
    bounds_tolerance: float = 1.0
    mask_box_iou: float = 0.5
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

    def __post_init__(self) -> None:
        bad = [f for f in self.families if f not in FAMILIES]
        if bad:
            raise ValueError(f"CheckConfig.families: each must be one of {FAMILIES}, got {bad[0]!r}")
        for name in ("duplicate_iou", "conflict_iou", "mask_box_iou", "agreement_iou", "presence_fraction"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"CheckConfig.{name}: must be in (0, 1], got {v}")
