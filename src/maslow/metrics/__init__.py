"""Metrics: exact COCO evaluation (boxes, masks, keypoints) with per-object matches.

``coco_map(truth, pred)`` gives pycocotools' numbers bit for bit as a ``MapResult``; ``coco_matches`` gives the
per-object ``MatchTable`` (partner, IoU and TP/FP/FN status of every truth object and prediction).
"""

from maslow.metrics._iou import COCO_KEYPOINT_SIGMAS
from maslow.metrics._result import MapResult, MatchTable
from maslow.metrics.coco import coco_map, coco_matches

__all__ = ["COCO_KEYPOINT_SIGMAS", "MapResult", "MatchTable", "coco_map", "coco_matches"]
