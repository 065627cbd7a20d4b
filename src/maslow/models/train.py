"""``train(cfg)``: the one library entry point that trains, saves, evaluates and tracks a model.

Splits: the images whose ``images.split`` is ``cfg.train_split`` train the model (all images that are not in
the validation or test split when no image has the default split ``train``, with a MaslowWarning when those
carry two or more other split names; another name must be a split of the data); ``cfg.val_split`` images
validate it (early stopping, final metrics); without them, ``cfg.val_fraction`` of the training images is held
out (seeded, whole sequences); images of a ``test`` split are evaluated once at the end, never used for training or
stopping. ``train_split``, ``val_split`` and ``test`` must be three different splits.

Before anything trains: validation images must carry at least one label (else there is nothing to stop early on),
every image file must exist (for adapters that read them, ``reads_images``), and classes the model is judged on but
cannot learn (none in the training images; a classifier with one class) are said with a MaslowWarning.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.errors import MaslowError, MaslowWarning
from maslow.models.base import (
    EpochResult,
    Model,
    TrainConfig,
    TrainHistory,
    build_model,
    load_data,
    reads_images,
    require_image_files,
)
from maslow.models.evaluate import evaluate, task_of

log = logging.getLogger(__name__)

TEST_SPLIT = "test"


@dataclass(frozen=True)
class TrainResult:
    """A trained model and what is known about it.

    Attributes:
        model: the trained model (best epoch when validated).
        path: the saved model folder.
        metric: the key metric's name; ``metrics[metric]`` is the value tuning optimises.
        metrics: final validation metrics of the saved model (empty without validation).
        test_metrics: metrics on the ``test`` split (empty without one).
        run_id: the MLflow run id (None when tracking is off); ``tracking_uri`` where it is stored.
        n_train, n_val, n_test: images in each part.
        tracking_off: why the run is not tracked (``config tracking: off``, or mlflow is not installed, naming
            the extra); None when it is.
    """

    model: Model
    path: Path
    metric: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    test_metrics: Mapping[str, float] = field(default_factory=dict)
    run_id: str | None = None
    tracking_uri: str | None = None
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    tracking_off: str | None = None

    @property
    def history(self) -> TrainHistory:
        return self.model.history

    @property
    def weights(self) -> str:
        """What the model started from (pretrained weights or from scratch)."""
        return self.model.history.weights

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "adapter": self.model.config.model, "weights": self.weights,
                "metric": self.metric, "metrics": dict(self.metrics), "test_metrics": dict(self.test_metrics),
                "run_id": self.run_id, "tracking_uri": self.tracking_uri, "n_train": self.n_train,
                "n_val": self.n_val, "n_test": self.n_test, "tracking_off": self.tracking_off,
                "history": self.history.to_dict()}


def split_for_training(ds: Dataset, cfg: TrainConfig) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """(train, val, test) parts of ``ds`` as the module docstring says; val/test are None when empty.

    Raises:
        MaslowError: no image left to train on, no image has a ``cfg.train_split`` other than the default,
            validation images without a single label (nothing to score), or the config names one split twice
            (``train_split == val_split``, or either is ``test``): the parts would overlap, and a model would train
            or stop early on the images it is judged on.
    """
    for name in ("train_split", "val_split"):
        if getattr(cfg, name) == TEST_SPLIT:
            raise MaslowError(f"config field {name!r} must name a split other than {TEST_SPLIT!r}, got "
                              f"{TEST_SPLIT!r}: the {TEST_SPLIT!r} images are only evaluated at the end, never used "
                              "for training or early stopping")
    if cfg.train_split == cfg.val_split:
        raise MaslowError(f"config fields 'train_split' and 'val_split' must name different splits, both are "
                          f"{cfg.train_split!r}: the model would be validated on the images it trains on")
    split = ds.images.split if ds.images.split is not None else np.full(ds.n_images, "", dtype=object)
    split = np.asarray(split).astype(str)
    is_val, is_test = split == cfg.val_split, split == TEST_SPLIT
    is_train = split == cfg.train_split
    if not is_train.any():
        if cfg.train_split != TrainConfig.train_split:  # a split the config names must exist
            named = sorted(set(split.tolist()) - {""})
            raise MaslowError(f"config field 'train_split' must be a split of the data, got {cfg.train_split!r}; "
                              f"the splits are {', '.join(map(repr, named)) or 'none (no image has a split)'}")
        is_train = ~is_val & ~is_test
        others = sorted(set(split[is_train].tolist()) - {""})
        if len(others) > 1:  # a split scheme under other names (training/validation): say what trains
            warnings.warn(f"train: no image has split {cfg.train_split!r}, so the images of splits "
                          f"{', '.join(map(repr, others))} all train the model; set the config fields train_split "
                          "and val_split to the data's split names", MaslowWarning, stacklevel=2)
    train_rows, val_rows = np.flatnonzero(is_train), np.flatnonzero(is_val)
    if not val_rows.size and cfg.val_fraction > 0 and train_rows.size > 1:
        val_rows, train_rows = _hold_out(ds, train_rows, cfg)
    if not train_rows.size:
        raise MaslowError(f"train: no image to train on: no image has split {cfg.train_split!r} and every image is "
                          f"in {cfg.val_split!r} or {TEST_SPLIT!r} (config fields train_split / val_split)")
    if val_rows.size and not np.isin(ds.annotations.image, val_rows).any():
        # nothing to score: early stopping (and tuning) failed only after the first epoch had trained
        where = f"of split {cfg.val_split!r}" if is_val.any() else "held out by val_fraction"
        raise MaslowError(f"train: the {val_rows.size} validation images {where} must have labels to score the "
                          f"model on, got none; label them, or set config field val_split to another split")
    test_rows = np.flatnonzero(is_test)
    val = ds.select_images(val_rows) if val_rows.size else None
    test = ds.select_images(test_rows) if test_rows.size else None
    return ds.select_images(train_rows), val, test


def warn_unlearnable_classes(train: Dataset, val: Dataset | None, test: Dataset | None, task: Task) -> None:
    """A MaslowWarning when the model is judged on classes it cannot learn: classes with annotations in ``val`` or
    ``test`` but none in ``train`` (crowd regions aside), and a classifier whose training images hold one class
    only (every prediction would be that class)."""
    k = len(train.schema.names)

    def counts(ds: Dataset | None) -> np.ndarray:
        if ds is None:
            return np.zeros(k, np.int64)
        a = ds.annotations
        crowd = a.iscrowd if a.iscrowd is not None else np.zeros(len(a), bool)  # always set once built
        return np.bincount(a.label[~crowd], minlength=k)

    seen, judged = counts(train), counts(val) + counts(test)
    unseen = np.flatnonzero((seen == 0) & (judged > 0))
    if unseen.size:
        listed = ", ".join(f"{train.schema.names[j]!r} ({judged[j]} annotation{'' if judged[j] == 1 else 's'})"
                           for j in unseen[:5])
        one = unseen.size == 1
        warnings.warn(f"train: {unseen.size} {'class has' if one else 'classes have'} annotations in the "
                      f"validation/test images but none in the training images, so the model cannot learn "
                      f"{'it' if one else 'them'}: {listed}{' ...' if unseen.size > 5 else ''}; move "
                      "some of those images into the training split", MaslowWarning, stacklevel=3)
    if task == Task.CLASSIFICATION and np.count_nonzero(seen) == 1:
        only = train.schema.names[int(np.flatnonzero(seen)[0])]
        warnings.warn(f"train: every labelled training image is of class {only!r}, so the classifier can only "
                      f"predict {only!r}", MaslowWarning, stacklevel=3)


def _hold_out(ds: Dataset, rows: np.ndarray, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(val, train) rows: ``cfg.val_fraction`` of ``rows`` held out, seeded, whole sequences at a time (frames of
    one ``images.extra["sequence"]`` never straddle train and val, as in ``Dataset.split`` and cross-validation).
    Without sequences exactly ``round(val_fraction * n)`` images (at least 1, at most n - 1); with them the whole
    sequences whose total is nearest that, leaving at least one sequence to train (one sequence only: images, with
    a warning)."""
    from maslow.core.split import _units

    n = rows.size
    n_val = min(max(1, round(cfg.val_fraction * n)), n - 1)
    seq = ds.images.extra.get("sequence")
    unit = np.arange(n) if seq is None else _units(np.asarray(seq, dtype=object)[rows])
    if int(unit.max()) == 0:  # one sequence: no holdout keeps it whole
        warnings.warn(f"train: the {n} training images are one sequence, so val_fraction holds out frames of it: "
                      "validation sees the clip it trains on (add a val split or more sequences)", MaslowWarning,
                      stacklevel=3)
        unit = np.arange(n)
    n_units = int(unit.max()) + 1
    order = np.random.default_rng(cfg.seed).permutation(n_units)
    total = np.cumsum(np.bincount(unit, minlength=n_units)[order])[:-1]  # images held out by the first k+1 units
    k = int(np.argmin(np.abs(total - n_val))) + 1
    held = np.isin(unit, order[:k])
    return rows[held], rows[~held]


def train(cfg: TrainConfig, *, on_epoch: Callable[[EpochResult], None] | None = None,
          progress: Callable[[int, int], None] | None = None, dataset: Dataset | None = None,
          out: str | Path | None = None, run_name: str | None = None,
          on_batch: Callable[[int, int, float], None] | None = None) -> TrainResult:
    """Train the model ``cfg`` describes, save it to ``out`` (default ``cfg.out``), evaluate and track it.

    Args:
        cfg: the training config (``read_config``).
        on_epoch: called after each epoch (progress bars, tuning's pruning; may raise to stop the run).
        progress: ``progress(epochs_done, epochs)`` after each epoch.
        dataset: the data, when already loaded (else ``load_data(cfg)``).
        out: the model folder (default ``cfg.out``); written atomically.
        run_name: the MLflow run name.
        on_batch: ``on_batch(batch, batches_per_epoch, loss)`` after each batch, for adapters that train in
            batches (the torchvision detectors and segmenters).

    Returns:
        TrainResult with the model, its folder, validation/test metrics and the tracked run id.

    Raises:
        MaslowError: bad data or config (the message names the field); ModelError: the adapter failed.
    """
    from maslow.models.tracking import start_run

    ds = load_data(cfg) if dataset is None else dataset
    train_ds, val, test = split_for_training(ds, cfg)
    model = build_model(cfg)
    for part, what in ((train_ds, "training images"), (val, "validation images"), (test, "test images")):
        if part is not None and reads_images(model):
            require_image_files(part, what=what)
    task = getattr(model, "task", None) or task_of(ds)  # a detector on a dataset that also has keypoints: detection
    metric = cfg.key_metric(task)  # checked before anything trains
    warn_unlearnable_classes(train_ds, val, test, Task(task))
    folder = Path(out if out is not None else cfg.out)
    run = start_run(cfg, run_name=run_name or f"{cfg.model}-{folder.name}",
                    tags={"maslow.adapter": cfg.model, "maslow.task": task.value,
                          "maslow.model_path": str(folder.resolve())})
    log.info("training %s on %d images (%d val, %d test)%s", cfg.model, train_ds.n_images,
             0 if val is None else val.n_images, 0 if test is None else test.n_images,
             f"; MLflow run {run.run_id}" if run.active else "; tracking off")

    def epoch_done(e: EpochResult) -> None:
        run.log_epoch(e)
        if progress is not None:
            progress(e.epoch + 1, cfg.epochs)
        if on_epoch is not None:
            on_epoch(e)

    status = "FAILED"
    try:
        if on_batch is not None and "progress" in inspect.signature(model.fit).parameters:
            model.fit(train_ds, val=val, on_epoch=epoch_done, progress=on_batch)  # type: ignore[call-arg]
        else:
            model.fit(train_ds, val=val, on_epoch=epoch_done)
        run.set_tags({"maslow.weights": model.history.weights})
        model.save(folder)
        bs = cfg.batch_size
        val_metrics = {} if val is None else evaluate(val, model.predict(val, batch_size=bs), task=task)
        test_metrics = {} if test is None else evaluate(test, model.predict(test, batch_size=bs), task=task)
        run.log_metrics(val_metrics, prefix="final_val_")
        run.log_metrics(test_metrics, prefix="test_")
        run.log_metrics({"best_epoch": float(model.history.best_epoch)})
        run.log_folder(folder, "model")
        status = "FINISHED"
    except BaseException as e:
        status = "KILLED" if type(e).__name__ == "TrialPruned" or isinstance(e, KeyboardInterrupt) else "FAILED"
        raise
    finally:
        run.end(status)
    return TrainResult(model, folder, metric, val_metrics, test_metrics, run.run_id, run.uri, train_ds.n_images,
                       0 if val is None else val.n_images, 0 if test is None else test.n_images,
                       tracking_off=None if run.active else run.off)
