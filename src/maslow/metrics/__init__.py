"""Metrics (level 5): exact COCO evaluation, semantic segmentation, classification and multi-label metrics,
operating points, slices and plots.

``coco_map(truth, pred)`` gives pycocotools' numbers bit for bit as a ``MapResult``; ``coco_matches`` gives the
per-object ``MatchTable`` (partner, IoU and TP/FP/FN status of every truth object and prediction).
``semantic_scores``/``ConfusionMatrix``, ``classification_scores`` and ``multilabel_scores`` equal
scikit-learn where it has the metric; ``operating_point`` picks per-class score thresholds from FP:FN costs or
targets; ``slice_metrics`` gives any metric per metadata value with bootstrap intervals.
"""

from maslow.metrics._iou import COCO_KEYPOINT_SIGMAS
from maslow.metrics._result import MapResult, MatchTable
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
    precision_score,
    recall_score,
    top_k_accuracy_score,
)
from maslow.metrics.coco import coco_map, coco_matches
from maslow.metrics.multilabel import (
    MultilabelResult,
    hamming_loss,
    hamming_score,
    multilabel_scores,
    multilabel_scores_from_indicators,
    subset_accuracy_score,
)
from maslow.metrics.operating import DetectionConfusion, OperatingPoints, detection_confusion_matrix, operating_point
from maslow.metrics.plots import plot_ap_per_class, plot_confusion_matrix, plot_pr_curves, plot_slices
from maslow.metrics.segmentation import ConfusionMatrix, SegmentationResult, scores_from_confusion, semantic_scores
from maslow.metrics.slices import SliceResult, slice_metrics

__all__ = [
    "COCO_KEYPOINT_SIGMAS",
    "PROBS_COLUMN",
    "ClassificationResult",
    "ConfusionMatrix",
    "DetectionConfusion",
    "MapResult",
    "MatchTable",
    "MultilabelResult",
    "OperatingPoints",
    "SegmentationResult",
    "SliceResult",
    "accuracy_score",
    "balanced_accuracy_score",
    "classification_scores",
    "classification_scores_from_labels",
    "coco_map",
    "coco_matches",
    "confusion_matrix",
    "detection_confusion_matrix",
    "f1_score",
    "fbeta_score",
    "hamming_loss",
    "hamming_score",
    "multilabel_scores",
    "multilabel_scores_from_indicators",
    "operating_point",
    "plot_ap_per_class",
    "plot_confusion_matrix",
    "plot_pr_curves",
    "plot_slices",
    "precision_score",
    "recall_score",
    "scores_from_confusion",
    "semantic_scores",
    "slice_metrics",
    "subset_accuracy_score",
    "top_k_accuracy_score",
]
