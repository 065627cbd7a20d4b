"""``train(cfg)``: the one library entry point that trains, saves, evaluates and tracks a model.

Splits: the images whose ``images.split`` is ``cfg.train_split`` train the model (all images that are not in
the validation or test split when no image has the default split ``train``, with a MaslowWarning when those
carry two or more other split names; another name must be a split of the data); ``cfg.val_split`` images
validate it (early stopping, final metrics); without them, ``cfg.val_fraction`` of the training images is held
out (``hold_out``: seeded, stratified by class, whole sequences); images of a ``test`` split are evaluated once at
the end, never used for training or stopping. ``train_split``, ``val_split`` and ``test`` must be three different
splits.

Output: the model folder ``out`` appears whole when the run ends (written to a temporary folder, then renamed),
replacing what was there; until then nothing in it changes. The torch adapters write a checkpoint (``last.pt``)
after each epoch into a work folder beside it, ``<out>.partial`` (``checkpoint.partial_folder``): a run that is
interrupted or fails leaves the previous model folder as it was, and its own progress there. The saved model folder
keeps the last checkpoint; the work folder is removed once it is in place. ``check_out`` refuses (for ``maslow
train`` without ``--overwrite``) an ``out`` holding a model or beside an interrupted run's checkpoint; ``maslow
train`` also refuses, as ``export`` does, any other folder that is not empty, and even with ``--overwrite`` the data
read, a workspace and the current folder (``maslow.cli._destination.check_folder``).

Resume: ``train(cfg, resume=folder)`` continues the run of ``folder`` from its checkpoint (the interrupted run's in
``<folder>.partial`` when there is one, else the finished run's in ``folder``; ``maslow.models.checkpoint``).

Before anything trains: validation images must carry at least one label (else there is nothing to stop early on),
every image file must exist (for adapters that read them, ``reads_images``), and classes the model is judged on but
cannot learn (none in the training images; a classifier with one class) are said with a MaslowWarning.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.errors import MaslowError, MaslowWarning, ModelError
from maslow.models.base import (
    MODEL_JSON,
    EpochResult,
    Model,
    TrainConfig,
    TrainHistory,
    build_model,
    load_data,
    load_model,
    read_model_json,
    reads_images,
    require_image_files,
)
from maslow.models.checkpoint import Checkpoint
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
        resumed_from: for a resumed run, the epochs its checkpoint had done (training went on from there); None
            for a new run.
        already_finished: for a resumed run that had nothing left to train, why (``trained 5 of 5 epochs``):
            nothing was trained, saved or tracked, ``model`` is the saved one and there are no metrics.

    ``to_dict``'s ``epochs`` is the number of epochs trained (``len(history.epochs)``: fewer than the config's
    ``epochs_configured`` when the run stopped early, one for an adapter that fits in one pass), as ``maslow
    train`` prints it. ``best_epoch`` counts epochs from 1, as ``maslow train`` prints it; ``history`` (as ``model.json`` and the
    checkpoint store it, and MLflow's ``step`` and ``best_epoch``) indexes them from 0.
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
    resumed_from: int | None = None
    already_finished: str | None = None

    @property
    def history(self) -> TrainHistory:
        return self.model.history

    @property
    def weights(self) -> str:
        """What the model started from (pretrained weights or from scratch)."""
        return self.model.history.weights

    @property
    def best_epoch(self) -> int | None:
        """The best epoch, counted from 1 (``history.best_epoch + 1``); None without validation."""
        return self.history.best_epoch + 1 if self.history.best_epoch >= 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "adapter": self.model.config.model, "weights": self.weights,
                "metric": self.metric, "metrics": dict(self.metrics), "test_metrics": dict(self.test_metrics),
                "run_id": self.run_id, "tracking_uri": self.tracking_uri, "n_train": self.n_train,
                "n_val": self.n_val, "n_test": self.n_test, "tracking_off": self.tracking_off,
                "epochs": len(self.history.epochs), "epochs_configured": self.model.config.epochs,
                "stopped_early": self.history.stopped_early, "resumed_from": self.resumed_from,
                "already_finished": self.already_finished, "best_epoch": self.best_epoch,
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
    if not ds.n_images:
        raise MaslowError(f"train: no image to train on: the dataset {cfg.data} has no images (config field 'data')")
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


def check_epochs(cfg: TrainConfig, model: Any, *, resuming: bool = False) -> None:
    """Refuse (MaslowError) ``epochs: 0`` for an adapter that trains in epochs (a torch one) when not resuming: no
    epoch would run, and an untrained model (a random head) was saved and logged as trained. An adapter that fits in
    one pass (embed-logreg) ignores ``epochs``."""
    if cfg.epochs == 0 and not resuming and "resume" in inspect.signature(model.fit).parameters:
        raise MaslowError(f"config field 'epochs' must be >= 1 to train model {cfg.model!r}, got 0: no epoch would "
                          "run and the model saved would be untrained (its head random)")


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


def hold_out(ds: Dataset, fraction: float, *, seed: int = 0, groups: np.ndarray | None = None) -> np.ndarray:
    """(m,) True for the images of ``ds`` held out for validation: ``fraction`` of them, stratified by class.

    The one holdout of ``train`` (``val_fraction``) and of the adapters' own ``fit`` (``EmbeddingClassifier``):
    ``maslow.core.split.assign_splits`` deals the images, rarest class first (an image's rarest class, by object
    count, decides where it goes: iterative stratification, as ``Dataset.split`` and cross-validation deal them),
    seeded by ``seed``. Without ``groups`` exactly ``round(fraction * m)`` images are held out (at least 1, at most
    m - 1); with ``groups`` (the ``sequence`` column) whole groups, as near that count as their sizes allow, so
    the frames of one clip never straddle training and validation (one group only: images, with a MaslowWarning).
    Crowd regions do not count. A class found in one image (group) only keeps it in training (validating on a
    class the model never saw tells nothing; fewer images may be held out then), and no class is left with
    validation images but no training image; when every image holds such a class, nothing is held out (a
    MaslowWarning says so).

    Args:
        ds: the images to split (their annotations give the classes).
        fraction: the share to hold out, in (0, 1).
        seed: the seed of the deal.
        groups: (m,) a group per image (None or NaN: alone), or None.

    Returns:
        (m,) bool, True = held out.

    Example:
        >>> from maslow import Annotations, Dataset, Images, LabelSchema
        >>> ds = Dataset(LabelSchema.from_names(["a", "b"], task="classification"),
        ...              Images(path=[f"{i}.png" for i in range(8)], width=[8] * 8, height=[8] * 8),
        ...              Annotations(image=np.arange(8), label=[0] * 6 + [1] * 2))
        >>> held = hold_out(ds, 0.5, seed=0)
        >>> int(held.sum()), int(held[6:].sum())  # 4 of 8 images, 1 of the 2 of class b
        (4, 1)
    """
    from maslow.core.split import _units, assign_splits

    m = ds.n_images
    held = np.zeros(m, bool)
    if m < 2 or fraction <= 0:
        return held
    n_val = min(max(1, round(fraction * m)), m - 1)
    unit = np.arange(m) if groups is None else _units(np.asarray(groups, dtype=object))
    if int(unit.max()) == 0:  # one sequence: no holdout keeps it whole
        warnings.warn(f"val_fraction: the {m} training images are one sequence, so frames of it are held out: "
                      "validation sees the clip it trains on (add a val split or more sequences)", MaslowWarning,
                      stacklevel=3)
        unit = np.arange(m)
    n_units = int(unit.max()) + 1
    a = ds.annotations
    solid = ~a.iscrowd if a.iscrowd is not None else np.ones(len(a), bool)  # always set once built
    present = np.zeros((n_units, len(ds.schema.classes)), bool)
    present[unit[a.image[solid]], a.label[solid]] = True
    alone = present[:, present.sum(0) == 1].any(1)  # units holding a class no other unit has: they train
    candidates = np.flatnonzero(~alone)
    if candidates.size == 0:
        warnings.warn(f"val_fraction: each of the {m} training images holds a class no other image has, so none is "
                      "held out and the model is not validated (add images or a val split)", MaslowWarning,
                      stacklevel=3)
        return held
    size = np.bincount(unit, minlength=n_units)
    pool = np.isin(unit, candidates)
    rows = np.flatnonzero(pool)
    want = min(n_val, rows.size - (0 if alone.any() else 1))  # something must be left to train on
    part = ds.select_images(rows)
    part = part.select(~part.annotations.iscrowd) if part.annotations.iscrowd is not None else part
    f = want / rows.size
    names = assign_splits(part, {"train": 1 - f, "val": f}, rng=seed, groups=unit[rows])
    held[rows[np.asarray(names) == "val"]] = True
    order = np.random.default_rng(seed).permutation(candidates)  # seeded tie-breaks below
    val_units = np.zeros(n_units, bool)
    val_units[unit[held]] = True
    if not val_units.any():  # every candidate group was too big for the share: the one nearest it
        val_units[order[np.argmin(np.abs(size[order] - n_val))]] = True
    # a class with validation images but no training image (an extreme fraction): its smallest group trains
    for c in np.flatnonzero(present[val_units].any(0) & ~present[~val_units].any(0)):
        holding = order[val_units[order] & present[order, c]]
        if not present[~val_units, c].any() and val_units.sum() > 1:  # (an earlier move may have mended it)
            val_units[holding[np.argmin(size[holding])]] = False
    if val_units.all():  # nothing left to train on (large groups, a large fraction): the smallest group trains
        val_units[order[np.argmin(size[order])]] = False
    return val_units[unit]


def _hold_out(ds: Dataset, rows: np.ndarray, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(val, train) rows: ``cfg.val_fraction`` of ``rows`` held out by ``hold_out`` (seeded by ``cfg.seed``,
    stratified by class, whole sequences of ``images.extra["sequence"]`` at a time)."""
    part = ds.select_images(rows)
    held = hold_out(part, cfg.val_fraction, seed=cfg.seed, groups=part.images.extra.get("sequence"))
    return rows[held], rows[~held]


def _saved(folder: Path, ckpt: Checkpoint) -> bool:
    """Whether ``folder`` holds the model of ``ckpt``'s run (not one an earlier run saved there): same epochs."""
    if not (folder / MODEL_JSON).is_file():
        return False
    try:
        history: TrainHistory = read_model_json(folder)["history"]
    except ModelError:
        return False
    return repr([(e.epoch, e.loss) for e in history.epochs]) == repr([(e.epoch, e.loss) for e in ckpt.history.epochs])


def _seed_work(src: Path, work: Path) -> None:
    """Put the checkpoint a run resumes from (``<run>/last.pt``, the finished run's) into its work folder, as the
    file the run goes on from (a hard link where the file system allows: each epoch replaces it, never writes it)."""
    from maslow.models.checkpoint import CHECKPOINT_FILE

    work.mkdir(parents=True, exist_ok=True)
    dst = work / CHECKPOINT_FILE
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def check_out(folder: str | Path, *, overwrite: bool = False, where: str = "--out") -> None:
    """Refuse, without ``overwrite``, to train a new run into ``folder`` when that would replace a run's work: the
    checkpoint of an interrupted run in the work folder ``<folder>.partial`` (training anew overwrites it), or a
    model another run saved in ``folder`` (training replaces it when it ends). The rest (a file, any other folder
    that is not empty, the data read, a workspace, the current folder) is ``maslow.cli._destination.check_folder``'s,
    which ``maslow train`` calls after this.

    Args:
        folder: the model folder (``--out``, or the config's ``out``).
        overwrite: allow replacing a model and an interrupted run's checkpoint (``maslow train --overwrite``).
        where: the setting that gave ``folder``, for messages.

    Raises:
        MaslowError: naming ``folder``, what it holds and the way out (``--overwrite``, ``--resume``, another folder).
    """
    from maslow.models.checkpoint import CHECKPOINT_FILE, partial_folder

    folder = Path(folder)
    if overwrite:
        return
    work = partial_folder(folder)
    if (work / CHECKPOINT_FILE).is_file():
        raise MaslowError(f"{where} {folder}: must not have the checkpoint of an interrupted run beside it, got "
                          f"{work / CHECKPOINT_FILE}; a new run would overwrite it. Pass --resume {folder} to "
                          "continue that run, --overwrite to start anew, or give another folder")
    if not (folder / MODEL_JSON).is_file():
        return
    try:
        doc = read_model_json(folder)
        n = len(doc["history"].epochs)
        what = f"a model ({doc['adapter']}, {n} epoch{'' if n == 1 else 's'} trained)"
    except ModelError:
        what = "a model folder"
    resumable = (folder / CHECKPOINT_FILE).is_file()
    raise MaslowError(f"{where} {folder}: holds {what}; training would replace it when it ends. Pass --overwrite to "
                      f"replace it{f', --resume {folder} to train it on' if resumable else ''}, or give a new folder")


def train(cfg: TrainConfig, *, on_epoch: Callable[[EpochResult], None] | None = None,
          progress: Callable[[int, int], None] | None = None, dataset: Dataset | None = None,
          out: str | Path | None = None, run_name: str | None = None,
          on_batch: Callable[[int, int, float], None] | None = None,
          resume: str | Path | Checkpoint | None = None, checkpoint: bool = True) -> TrainResult:
    """Train the model ``cfg`` describes, save it to ``out`` (default ``cfg.out``), evaluate and track it.

    Args:
        cfg: the training config (``read_config``).
        on_epoch: called after each epoch (progress bars, tuning's pruning; may raise to stop the run).
        progress: ``progress(epochs_done, epochs)`` after each epoch.
        dataset: the data, when already loaded (else ``load_data(cfg)``).
        out: the model folder (default ``cfg.out``); written atomically when the run ends, replacing what was
            there (``check_out`` says what that is). The torch adapters' checkpoint ``last.pt`` is written after each
            epoch into ``<out>.partial`` (removed once the model folder, which keeps the checkpoint, is in place).
        run_name: the MLflow run name.
        on_batch: ``on_batch(batch, batches_per_epoch, loss)`` after each batch, for adapters that train in
            batches (the torchvision detectors and segmenters).
        resume: a run folder (or its ``read_checkpoint``) to continue from its last checkpoint instead of
            starting anew; the model is saved there (``out`` must be None or that folder). ``cfg`` must be the
            run's config but for the fields ``maslow.models.checkpoint`` lists (``epochs``: more epochs train on),
            and the data must give the same training and validation images. A run with nothing left to train
            (every epoch done, stopped early, CPU budget spent) whose folder holds its model is not trained,
            saved or tracked again: the result says why (``already_finished``) and has no metrics.
        checkpoint: write ``<out>.partial/last.pt`` after each epoch (adapters whose ``fit`` takes ``checkpoint``:
            the torch ones); tuning trials pass False.

    Returns:
        TrainResult with the model, its folder, validation/test metrics, the tracked run id, and for a resumed run
        the epochs done before (``resumed_from``).

    Raises:
        MaslowError: bad data or config (the message names the field); a resumed run whose checkpoint is missing or
            damaged (FormatError naming the file), or whose config, classes or data differ (naming the field).
            ModelError: the adapter failed.
    """
    from maslow.models.checkpoint import (
        CHECKPOINT_FILE,
        check_resume,
        data_print,
        partial_folder,
        read_checkpoint,
        run_folder,
    )
    from maslow.models.tracking import start_run

    model = build_model(cfg)
    fit_params = inspect.signature(model.fit).parameters
    check_epochs(cfg, model, resuming=resume is not None)
    ckpt: Checkpoint | None = None
    if resume is not None:
        if "resume" not in fit_params:
            raise MaslowError(f"train: model {cfg.model!r} writes no checkpoints (it fits in one pass), so there is "
                              "no run to resume; train it again without resume")
        ckpt = resume if isinstance(resume, Checkpoint) else read_checkpoint(resume)
        run_dir = run_folder(ckpt.path)  # (a checkpoint in the work folder <run>.partial: the run's folder)
        if out is not None and Path(out).resolve() != run_dir.resolve():
            raise MaslowError(f"train: out must be the resumed run's folder {str(run_dir)!r} (the model is saved "
                              f"there), got {str(out)!r}")
        out = run_dir
    ds = load_data(cfg) if dataset is None else dataset
    train_ds, val, test = split_for_training(ds, cfg)
    folder = Path(out if out is not None else cfg.out)
    task = getattr(model, "task", None) or task_of(ds)  # a detector on a dataset that also has keypoints: detection
    metric = cfg.key_metric(task)  # checked before anything trains
    if ckpt is not None:
        check_resume(ckpt, model.config, schema=train_ds.schema, data=data_print(train_ds, val))
        why = ckpt.finished(model.config)
        if why is not None and _saved(folder, ckpt):  # else it stopped before its model was saved: save it now
            log.info("%s: nothing to resume: %s", folder, why)
            if ckpt.path.parent.resolve() == partial_folder(folder).resolve():  # stopped after saving: done now
                shutil.rmtree(ckpt.path.parent, ignore_errors=True)
            return TrainResult(load_model(folder), folder, metric, n_train=train_ds.n_images,
                               n_val=0 if val is None else val.n_images, n_test=0 if test is None else test.n_images,
                               tracking_off="nothing was trained", resumed_from=ckpt.epochs_done,
                               already_finished=why)
    for part, what in ((train_ds, "training images"), (val, "validation images"), (test, "test images")):
        if part is not None and reads_images(model):
            require_image_files(part, what=what)
    warn_unlearnable_classes(train_ds, val, test, Task(task))
    tags = {"maslow.adapter": cfg.model, "maslow.task": task.value, "maslow.model_path": str(folder.resolve())}
    if ckpt is not None:
        tags["maslow.resumed_from_epoch"] = str(ckpt.epochs_done)
    run = start_run(cfg, run_name=run_name or f"{cfg.model}-{folder.name}", tags=tags)
    log.info("training %s on %d images (%d val, %d test)%s%s", cfg.model, train_ds.n_images,
             0 if val is None else val.n_images, 0 if test is None else test.n_images,
             "" if ckpt is None else f", resumed from epoch {ckpt.epochs_done} of {cfg.epochs}",
             f"; MLflow run {run.run_id}" if run.active else "; tracking off")
    for e in () if ckpt is None else ckpt.history.epochs:  # the run's whole curve in the new MLflow run
        run.log_epoch(e)

    def epoch_done(e: EpochResult) -> None:
        run.log_epoch(e)
        if progress is not None:
            progress(e.epoch + 1, cfg.epochs)
        if on_epoch is not None:
            on_epoch(e)

    kwargs: dict[str, Any] = {}
    if on_batch is not None and "progress" in fit_params:
        kwargs["progress"] = on_batch
    work = partial_folder(folder)  # the checkpoint goes here, never into a model folder that is already there
    if checkpoint and "checkpoint" in fit_params:
        kwargs["checkpoint"] = work / CHECKPOINT_FILE
    if ckpt is not None:
        kwargs["resume"] = ckpt
        if "checkpoint" in kwargs and ckpt.path.resolve() != kwargs["checkpoint"].resolve():
            _seed_work(ckpt.path, work)  # a run with no epoch left to train still saves its checkpoint
    status = "FAILED"
    try:
        model.fit(train_ds, val=val, on_epoch=epoch_done, **kwargs)
        run.set_tags({"maslow.weights": model.history.weights})
        model.save(folder)  # the model folder, with the checkpoint, appears whole: the work folder is done
        if work.is_dir() and not work.is_symlink():
            shutil.rmtree(work, ignore_errors=True)
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
                       tracking_off=None if run.active else run.off,
                       resumed_from=None if ckpt is None else ckpt.epochs_done)
