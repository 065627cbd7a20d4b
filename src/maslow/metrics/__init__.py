"""Metrics (level 5): exact COCO evaluation, semantic segmentation, classification and multi-label metrics,
operating points, slices and plots.

``coco_map(truth, pred)`` gives pycocotools' numbers bit for bit as a ``MapResult`` (``lvis_map``: lvis-api's
federated LVIS numbers, bit for bit; ``voc_map``: the Pascal VOC and DOTA protocol; ``oid_map``: the Open Images
Challenge protocol (group-of boxes, verified image-level labels, a class hierarchy); ``panoptic_quality``: PQ/SQ/RQ of
panoptic segments, panopticapi's rules); ``coco_matches`` gives the
per-object ``MatchTable`` (partner, IoU and TP/FP/FN status of every truth object and prediction).
``semantic_scores``/``ConfusionMatrix``, ``classification_scores`` and ``multilabel_scores`` equal
scikit-learn where it has the metric; ``operating_point`` picks per-class score thresholds from FP:FN costs or
targets; ``slice_metrics`` gives any metric per metadata value with bootstrap intervals.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maslow.metrics._iou import COCO_KEYPOINT_SIGMAS
    from maslow.metrics._result import MapResult, MatchTable
    from maslow.metrics.calibration import Calibration, detection_calibration, plot_reliability
    from maslow.metrics.classification import (
        PROBS_COLUMN,
        ClassificationResult,
        accuracy_score,
        balanced_accuracy_score,
        classification_scores,
        classification_scores_from_labels,
        confusion_matrix,
        f1_score,
        fbeta_score,
        precision_recall_fscore_support,
        precision_score,
        recall_score,
        top_k_accuracy_score,
    )
    from maslow.metrics.coco import coco_map, coco_matches
    from maslow.metrics.compare import (
        Comparison,
        LabelComparison,
        compare_labels,
        compare_models,
        mcnemar_exact,
        plot_ap_deltas,
        plot_class_deltas,
        write_comparison_html,
    )
    from maslow.metrics.lvis import LvisResult, lvis_map
    from maslow.metrics.multilabel import (
        MultilabelResult,
        hamming_loss,
        hamming_score,
        multilabel_scores,
        multilabel_scores_from_indicators,
        subset_accuracy_score,
    )
    from maslow.metrics.openimages import OidResult, oid_map, read_hierarchy
    from maslow.metrics.operating import (
        DetectionConfusion,
        OperatingPoints,
        detection_confusion_matrix,
        operating_point,
    )
    from maslow.metrics.panoptic import PanopticResult, is_panoptic, panoptic_quality
    from maslow.metrics.plots import (
        plot_ap_per_class,
        plot_confusion_matrix,
        plot_pr_curves,
        plot_slices,
        plot_tide_errors,
    )
    from maslow.metrics.segmentation import ConfusionMatrix, SegmentationResult, scores_from_confusion, semantic_scores
    from maslow.metrics.slices import SliceResult, slice_metrics
    from maslow.metrics.tide import TideResult, tide_errors
    from maslow.metrics.voc import VocResult, voc_map

# Submodules load on first use: `from maslow.metrics import coco_map` imports only the COCO evaluation
# (not plots, classification, slices, ...), which keeps a command-line evaluation's start-up short.
_LAZY = {
    "COCO_KEYPOINT_SIGMAS": "maslow.metrics._iou",
    "MapResult": "maslow.metrics._result",
    "MatchTable": "maslow.metrics._result",
    "PROBS_COLUMN": "maslow.metrics.classification",
    "ClassificationResult": "maslow.metrics.classification",
    "accuracy_score": "maslow.metrics.classification",
    "balanced_accuracy_score": "maslow.metrics.classification",
    "classification_scores": "maslow.metrics.classification",
    "classification_scores_from_labels": "maslow.metrics.classification",
    "confusion_matrix": "maslow.metrics.classification",
    "f1_score": "maslow.metrics.classification",
    "fbeta_score": "maslow.metrics.classification",
    "precision_recall_fscore_support": "maslow.metrics.classification",
    "precision_score": "maslow.metrics.classification",
    "recall_score": "maslow.metrics.classification",
    "top_k_accuracy_score": "maslow.metrics.classification",
    "Calibration": "maslow.metrics.calibration",
    "detection_calibration": "maslow.metrics.calibration",
    "plot_reliability": "maslow.metrics.calibration",
    "coco_map": "maslow.metrics.coco",
    "Comparison": "maslow.metrics.compare",
    "compare_models": "maslow.metrics.compare",
    "LabelComparison": "maslow.metrics.compare",
    "compare_labels": "maslow.metrics.compare",
    "mcnemar_exact": "maslow.metrics.compare",
    "plot_class_deltas": "maslow.metrics.compare",
    "plot_ap_deltas": "maslow.metrics.compare",
    "write_comparison_html": "maslow.metrics.compare",
    "coco_matches": "maslow.metrics.coco",
    "LvisResult": "maslow.metrics.lvis",
    "lvis_map": "maslow.metrics.lvis",
    "MultilabelResult": "maslow.metrics.multilabel",
    "hamming_loss": "maslow.metrics.multilabel",
    "hamming_score": "maslow.metrics.multilabel",
    "multilabel_scores": "maslow.metrics.multilabel",
    "multilabel_scores_from_indicators": "maslow.metrics.multilabel",
    "subset_accuracy_score": "maslow.metrics.multilabel",
    "DetectionConfusion": "maslow.metrics.operating",
    "OperatingPoints": "maslow.metrics.operating",
    "detection_confusion_matrix": "maslow.metrics.operating",
    "operating_point": "maslow.metrics.operating",
    "plot_ap_per_class": "maslow.metrics.plots",
    "plot_confusion_matrix": "maslow.metrics.plots",
    "plot_pr_curves": "maslow.metrics.plots",
    "plot_slices": "maslow.metrics.plots",
    "plot_tide_errors": "maslow.metrics.plots",
    "ConfusionMatrix": "maslow.metrics.segmentation",
    "SegmentationResult": "maslow.metrics.segmentation",
    "scores_from_confusion": "maslow.metrics.segmentation",
    "semantic_scores": "maslow.metrics.segmentation",
    "SliceResult": "maslow.metrics.slices",
    "slice_metrics": "maslow.metrics.slices",
    "TideResult": "maslow.metrics.tide",
    "tide_errors": "maslow.metrics.tide",
    "PanopticResult": "maslow.metrics.panoptic",
    "is_panoptic": "maslow.metrics.panoptic",
    "panoptic_quality": "maslow.metrics.panoptic",
    "VocResult": "maslow.metrics.voc",
    "OidResult": "maslow.metrics.openimages",
    "oid_map": "maslow.metrics.openimages",
    "read_hierarchy": "maslow.metrics.openimages",
    "voc_map": "maslow.metrics.voc",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'maslow.metrics' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "COCO_KEYPOINT_SIGMAS",
    "PROBS_COLUMN",
    "Calibration",
    "ClassificationResult",
    "Comparison",
    "ConfusionMatrix",
    "DetectionConfusion",
    "LabelComparison",
    "LvisResult",
    "MapResult",
    "MatchTable",
    "MultilabelResult",
    "OidResult",
    "OperatingPoints",
    "PanopticResult",
    "SegmentationResult",
    "SliceResult",
    "TideResult",
    "VocResult",
    "accuracy_score",
    "balanced_accuracy_score",
    "classification_scores",
    "classification_scores_from_labels",
    "coco_map",
    "coco_matches",
    "compare_labels",
    "compare_models",
    "confusion_matrix",
    "detection_calibration",
    "detection_confusion_matrix",
    "f1_score",
    "fbeta_score",
    "hamming_loss",
    "hamming_score",
    "is_panoptic",
    "lvis_map",
    "mcnemar_exact",
    "multilabel_scores",
    "multilabel_scores_from_indicators",
    "oid_map",
    "operating_point",
    "panoptic_quality",
    "plot_ap_deltas",
    "plot_ap_per_class",
    "plot_class_deltas",
    "plot_confusion_matrix",
    "plot_pr_curves",
    "plot_reliability",
    "plot_slices",
    "plot_tide_errors",
    "precision_recall_fscore_support",
    "precision_score",
    "read_hierarchy",
    "recall_score",
    "scores_from_confusion",
    "semantic_scores",
    "slice_metrics",
    "subset_accuracy_score",
    "tide_errors",
    "top_k_accuracy_score",
    "voc_map",
    "write_comparison_html",
]
