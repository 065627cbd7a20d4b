"""One call from (truth, predictions) to the flat ``{metric: value}`` dict that training, tuning and tracking use."""

from __future__ import annotations

import math

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.errors import SchemaError

#: the metrics ``evaluate`` gives for each task (a config's ``metric`` must be one of its task's)
METRICS: dict[Task, tuple[str, ...]] = {
    Task.DETECTION: ("map_50_95", "map_50", "map_75", "mar_100"),
    Task.INSTANCE_SEGMENTATION: ("map_50_95", "map_50", "map_75", "mar_100"),
    Task.KEYPOINTS: ("map_50_95", "map_50", "map_75", "mar_20"),
    Task.SEMANTIC_SEGMENTATION: ("miou", "mean_dice", "pixel_accuracy"),
    Task.CLASSIFICATION: ("accuracy", "balanced_accuracy", "f1_macro"),
    Task.MULTILABEL: ("f1_micro", "f1_macro", "hamming_score", "subset_accuracy"),
}


def task_of(ds: Dataset) -> Task:
    """The dataset's main task (the first of its schema's tasks)."""
    return Task(ds.schema.tasks[0])


def evaluate(truth: Dataset, pred: Dataset, *, task: Task | str | None = None) -> dict[str, float]:
    """The task's headline metrics of ``pred`` against ``truth`` (same images), scalar values only.

    detection / keypoints: ``map_50_95``, ``map_50``, ``map_75``, ``mar_100`` (COCO, bit-identical to pycocotools);
    instance segmentation: the same on masks; semantic segmentation: ``miou``, ``mean_dice``, ``pixel_accuracy``;
    classification: ``accuracy``, ``balanced_accuracy``, ``f1_macro`` over the images that have a truth label (an
    unlabelled image has nothing to score: left out, as training leaves it out); multi-label: ``f1_micro``, ``f1_macro``,
    ``hamming_score``, ``subset_accuracy``. Metrics with nothing to average are left out (no NaN in the dict).

    Raises:
        SchemaError: ``task`` is not a task name, or ``pred``'s class names differ from ``truth``'s.
    """
    from maslow import metrics

    if task is not None and task not in {t.value for t in Task}:  # a Task equals its value
        raise SchemaError(f"evaluate: task must be one of {', '.join(t.value for t in Task)}, got {task!r}")
    if truth.schema.names != pred.schema.names:  # label ids are positions in the names: others would mismatch
        raise SchemaError(f"evaluate: pred classes must be truth's {list(truth.schema.names)} in that order, got "
                          f"{list(pred.schema.names)}")
    task = Task(task) if task is not None else task_of(truth)
    out: dict[str, float]
    if task in (Task.DETECTION, Task.INSTANCE_SEGMENTATION, Task.KEYPOINTS):
        iou_type = {Task.DETECTION: "bbox", Task.INSTANCE_SEGMENTATION: "segm", Task.KEYPOINTS: "keypoints"}[task]
        r = metrics.coco_map(truth, pred, iou_type=iou_type)
        out = {n: float(getattr(r, n)) for n in METRICS[task]}
    elif task == Task.SEMANTIC_SEGMENTATION:
        s = metrics.semantic_scores(truth, pred)
        out = {n: getattr(s, n) for n in METRICS[task]}
    elif task == Task.CLASSIFICATION:
        labelled = np.bincount(truth.annotations.image, minlength=truth.n_images) > 0
        if not labelled.all() and truth.n_images == pred.n_images:  # else classification_scores names the mismatch
            truth, pred = truth.select_images(labelled), pred.select_images(labelled)
        c = metrics.classification_scores(truth, pred)
        out = {"accuracy": c.accuracy, "balanced_accuracy": c.balanced_accuracy, "f1_macro": c.fbeta_macro}
    else:
        m = metrics.multilabel_scores(truth, pred)
        out = {n: getattr(m, n) for n in METRICS[task]}
    return {k: float(v) for k, v in out.items() if not math.isnan(float(v))}
