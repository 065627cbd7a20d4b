"""Out-of-fold predictions: every image predicted by a model that did not train on it (k-fold cross-validation).

Glossary:
    fold: images are dealt into ``folds`` parts; the model of fold f trains on every other part and predicts
        part f. ``images.extra["fold"]`` of the result says which model predicted each image.
    group: images that must share a fold: frames of one sequence (the ``images.extra["sequence"]`` column, as
        ``Dataset.split`` uses) and, with ``dedupe=True``, duplicates (exact file copies and near copies by
        perceptual hash, ``maslow.diversity.duplicates``: numpy only, no embedder). A duplicate in another fold
        would let a model see the image it is asked about, and consensus scoring would trust a wrong label.
    stratified: units (groups) are dealt rarest class first so that every fold gets its share of each class
        (``maslow.core.split.assign_splits``, iterative stratification).
    adapter: any model of ``maslow.models.base.ADAPTERS`` (``TrainConfig.model``); each fold trains a fresh one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.tables import Images
from maslow.core.types import IntArray, obj_array
from maslow.errors import MaslowError
from maslow.models.base import (
    Model,
    TrainConfig,
    build_model,
    get_adapter,
    reads_images,
    require_image_files,
    seed_everything,
)

log = logging.getLogger(__name__)

FOLD_COLUMN = "fold"


def fold_assignments(ds: Dataset, folds: int = 5, seed: int = 0, groups: np.ndarray | None = None) -> IntArray:
    """(n_images,) int64 fold id (0..folds-1) per image: seeded, stratified by class, groups kept in one fold.

    Args:
        ds: the dataset (its annotations' labels stratify the folds).
        folds: number of folds, >= 2.
        seed: the same seed gives the same folds.
        groups: (n_images,) group value per image (equal values share a fold; None/NaN: a group of its own);
            None = ``images.extra["sequence"]`` when present, else every image on its own.

    Raises:
        MaslowError: fewer than 2 folds, more folds than groups, or a ``groups`` of the wrong length.

    Example:
        >>> from maslow.sample import shapes
        >>> f = fold_assignments(shapes(24), folds=3, seed=0)
        >>> sorted(set(f.tolist()))
        [0, 1, 2]
    """
    from maslow.core.split import _units, assign_splits

    m = ds.n_images
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise MaslowError(f"crossval: folds must be an integer >= 2, got {folds!r}")
    if groups is None:
        groups = ds.images.extra.get("sequence")
    if groups is not None:
        groups = np.asarray(groups, dtype=object)
        if groups.shape != (m,):
            raise MaslowError(f"crossval: groups must have one value per image ({m}), got shape {groups.shape}")
    n_units = m if groups is None else (int(_units(groups).max()) + 1 if m else 0)
    if n_units < folds:
        raise MaslowError(f"crossval: folds must be <= the number of independent groups of images ({n_units}), "
                          f"got {folds}")
    names = assign_splits(ds, {str(f): 1.0 / folds for f in range(folds)}, rng=seed, groups=groups)
    fold = np.asarray([int(s) for s in names.tolist()], np.int64)
    return _fill_empty_folds(fold, np.arange(m) if groups is None else _units(groups), folds)


def _fill_empty_folds(fold: IntArray, unit: IntArray, folds: int) -> IntArray:
    """``fold`` with no fold empty: the stratified assignment can put two groups in one fold and none in another
    (5 groups, 5 folds: sizes 6/6/8/14/0), and crossval then ran fewer, larger folds than asked. While a fold is
    empty, the smallest group of the fold holding the most groups moves there (groups stay whole; ties: lowest
    fold, then lowest group). Needs at least ``folds`` groups (``fold_assignments`` checks)."""
    fold = fold.copy()
    while (empty := np.flatnonzero(np.bincount(fold, minlength=folds) == 0)).size:
        units_of = [np.unique(unit[fold == f]) for f in range(folds)]
        donor = max(range(folds), key=lambda f: (len(units_of[f]), -f))
        if len(units_of[donor]) < 2:
            break  # fewer groups than folds: cannot happen after fold_assignments' check
        sizes = [int((unit == u).sum()) for u in units_of[donor]]
        moved = units_of[donor][int(np.argmin(sizes))]
        fold[unit == moved] = int(empty[0])
    return fold


def duplicate_groups(ds: Dataset, groups: np.ndarray | None = None, *, threshold: int = 8,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(n_images,) group ids merging ``groups`` (default: the ``sequence`` column) with duplicate clusters.

    Duplicates are identical files and near-duplicates whose perceptual hashes (pHash with mirror and crop
    variants, ``maslow.diversity.duplicates.find_duplicates``) differ in at most ``threshold`` of 64 bits.
    """
    from maslow.diversity._graph import clusters_of
    from maslow.diversity.duplicates import find_duplicates

    m = ds.n_images
    rep = find_duplicates(ds, threshold=threshold, progress=progress)
    pairs = [rep.pairs.reshape(-1, 2)]
    if groups is None:
        groups = ds.images.extra.get("sequence")
    if groups is not None:
        from maslow.core.split import _units

        unit = _units(np.asarray(groups, dtype=object))
        order = np.argsort(unit, kind="stable")
        same = unit[order][1:] == unit[order][:-1]
        pairs.append(np.stack([order[:-1][same], order[1:][same]], axis=1))
    merged = np.arange(m, dtype=np.int64)
    for c in clusters_of(m, np.concatenate(pairs).astype(np.int64)):
        merged[c] = c.min()
    log.info("crossval: %d duplicate pairs in %d clusters kept in one fold each", len(rep.pairs), len(rep.clusters))
    return obj_array([f"g{g}" for g in merged.tolist()])


def out_of_fold(ds: Dataset, cfg: TrainConfig, *, folds: int = 5, seed: int = 0, groups: np.ndarray | None = None,
                progress: Callable[[int, int], None] | None = None, dedupe: bool = False,
                dedupe_threshold: int = 8, on_fold: Callable[[int, Model], None] | None = None) -> Dataset:
    """Predictions for every image of ``ds``, each made by a model (``cfg.model``) that did not train on it.

    Args:
        ds: the labelled dataset (every image is predicted; ``images.split`` is ignored).
        cfg: the training config; each fold trains ``build_model(cfg)`` from scratch with seed ``cfg.seed``.
        folds: number of folds (>= 2).
        seed: seeds the fold assignment.
        groups: (n_images,) values whose equal entries share a fold; default the ``sequence`` column.
        progress: ``progress(done, total)`` over the folds.
        dedupe: also keep duplicate images (exact copies, and near copies whose pHash differs in at most
            ``dedupe_threshold`` bits) in one fold (``duplicate_groups``).
        on_fold: ``on_fold(fold, model)`` after each fold's model has trained and predicted (its
            ``history.weights`` says what it started from; save it to keep it).

    Returns:
        A predictions Dataset: ``ds``'s images table plus ``images.extra["fold"]`` (the fold whose model
        predicted the image), the models' schema, the adapter's annotations (``source="model"``, ``score``;
        classification: ``annotations.extra["probs"]``).

    Raises:
        MaslowError: bad ``folds``/``groups`` (see ``fold_assignments``), or an adapter error. FormatError: an
            image file is missing (checked before the first fold trains, for adapters that read them).
    """
    fold = fold_assignments(ds, folds, seed, groups)  # bad folds/groups said before any image is read
    if reads_images(get_adapter(cfg.model)):  # a missing file would stop the run at the fold that reads it
        require_image_files(ds, what="images to cross-validate")
    if dedupe:
        groups = duplicate_groups(ds, groups, threshold=dedupe_threshold)
        fold = fold_assignments(ds, folds, seed, groups)
    preds: list[Dataset] = []
    order: list[IntArray] = []
    if progress is not None:
        progress(0, folds)
    for f in range(folds):
        test = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        if not len(test):
            log.warning("crossval: fold %d got no image", f)
            continue
        seed_everything(cfg.seed)
        log.info("crossval: fold %d/%d trains on %d images, predicts %d", f + 1, folds, len(train), len(test))
        model = build_model(cfg).fit(ds.select_images(train))
        pred = model.predict(ds.select_images(test))
        if pred.n_images != len(test):
            raise MaslowError(f"crossval: fold {f}: the model must predict {len(test)} images, got {pred.n_images}")
        if on_fold is not None:
            on_fold(f, model)
        preds.append(pred)
        order.append(test)
        if progress is not None:
            progress(f + 1, folds)
    merged = preds[0]
    for p in preds[1:]:
        merged = merged.concat(p)
    inverse = np.argsort(np.concatenate(order), kind="stable")
    out = merged.select_images(inverse)
    images = Images(path=ds.images.path, width=ds.images.width, height=ds.images.height, split=ds.images.split,
                    extra={**ds.images.extra, FOLD_COLUMN: fold})
    return Dataset(out.schema, images, out.annotations, root=ds.root)


@dataclass(frozen=True)
class CrossvalScores:
    """Metrics of out-of-fold predictions: over all images and per fold.

    Attributes:
        overall: ``{metric: value}`` over every image (``maslow.models.evaluate.evaluate``).
        per_fold: one ``{metric: value}`` per fold, in fold order.
        n_images: (folds,) images per fold.
    """

    overall: Mapping[str, float]
    per_fold: tuple[Mapping[str, float], ...]
    n_images: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"overall": dict(self.overall), "per_fold": [dict(d) for d in self.per_fold],
                "n_images": list(self.n_images)}

    def mean_std(self, metric: str) -> tuple[float, float]:
        """Mean and standard deviation of ``metric`` over the folds (nan when no fold has it)."""
        v = np.asarray([d[metric] for d in self.per_fold if metric in d], np.float64)
        return (float(v.mean()), float(v.std())) if v.size else (math.nan, math.nan)


def crossval_scores(truth: Dataset, oof: Dataset, *, task: Task | str | None = None) -> CrossvalScores:
    """Overall and per-fold metrics of out-of-fold predictions ``oof`` (from ``out_of_fold(truth, ...)``).

    ``task`` selects the metrics (``maslow.models.evaluate.evaluate``); pass the model's own task (an adapter's
    ``task``, as ``train`` does): a detector's boxes on a dataset whose main task is keypoints (the shapes
    sample) are scored as detection. Default: the truth's main task.

    Raises:
        MaslowError: ``oof`` has no ``images.extra["fold"]`` column, or is not on ``truth``'s images (same paths,
            same order).
    """
    from maslow.models.evaluate import evaluate

    fold = oof.images.extra.get(FOLD_COLUMN)
    if fold is None:
        raise MaslowError(f"crossval_scores: predictions must have images.extra[{FOLD_COLUMN!r}] (from out_of_fold)")
    fold = np.asarray(fold, np.int64)
    same = oof.n_images == truth.n_images and np.array_equal(oof.images.path, truth.images.path)
    if not same:  # scored against other images, every metric would be silently wrong
        n = min(oof.n_images, truth.n_images)
        diff = np.flatnonzero(oof.images.path[:n] != truth.images.path[:n])
        where = f"image {diff[0]} is {oof.images.path[diff[0]]!r}, not {truth.images.path[diff[0]]!r}" if diff.size \
            else f"{oof.n_images} images"
        raise MaslowError(f"crossval_scores: predictions must be on truth's {truth.n_images} images in truth's order "
                          f"(out_of_fold(truth, ...)), got {where}")
    pred = oof.replace(images=truth.images)
    per_fold = []
    sizes = []
    for f in range(int(fold.max()) + 1 if len(fold) else 0):
        rows = np.flatnonzero(fold == f)
        sizes.append(len(rows))
        per_fold.append(evaluate(truth.select_images(rows), pred.select_images(rows), task=task))
    return CrossvalScores(evaluate(truth, pred, task=task), tuple(per_fold), tuple(sizes))
