"""Out-of-fold predictions: no image is predicted by a model that saw it; groups and duplicates share a fold."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import MaslowError
from maslow.metrics import PROBS_COLUMN
from maslow.models import ADAPTERS, TrainConfig, TrainHistory
from maslow.models.crossval import (
    FOLD_COLUMN,
    crossval_scores,
    duplicate_groups,
    fold_assignments,
    out_of_fold,
)
from maslow.models.evaluate import evaluate
from maslow.sample import shapes
from tests.models.tiny_data import colour_squares


class MemoModel:
    """A test double at the process edge: remembers the images it trained on and says, per image, if it saw it.

    Predicts one box per image (detection-shaped output), ``extra["seen"]`` = the image was in its training set.
    """

    trained_on: ClassVar[list[set[str]]] = []  # one entry per fit, across instances

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.schema = None
        self.history = TrainHistory()
        self.seen: set[str] = set()

    def fit(self, train: Dataset, *, val: Dataset | None = None, on_epoch: Any = None) -> MemoModel:
        self.schema = train.schema  # type: ignore[assignment]
        self.seen = set(train.images.path.tolist())
        MemoModel.trained_on.append(self.seen)
        return self

    def predict(self, images: Dataset | Sequence[str | Path], *, batch_size: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> Dataset:
        assert isinstance(images, Dataset) and self.schema is not None
        m = images.n_images
        seen = np.asarray([p in self.seen for p in images.images.path.tolist()])
        ann = Annotations(image=np.arange(m), label=np.zeros(m, np.int64), box=np.tile([1.0, 1, 5, 5], (m, 1)),
                          score=np.full(m, 0.5), source=obj_array(["model"] * m), extra={"seen": seen})
        return Dataset(self.schema, images.images, ann, root=images.root)


@pytest.fixture
def memo(monkeypatch: pytest.MonkeyPatch) -> TrainConfig:
    monkeypatch.setitem(ADAPTERS, "memo", f"{__name__}:MemoModel")
    MemoModel.trained_on = []
    return TrainConfig(data="unused", model="memo")


def test_fold_assignments_is_pure_grouped_and_stratified() -> None:
    ds = shapes(40, seed=3)  # sequences of 4 frames
    f = fold_assignments(ds, 5, 0)
    assert f.dtype == np.int64 and f.shape == (40,) and sorted(set(f.tolist())) == [0, 1, 2, 3, 4]
    assert np.array_equal(f, fold_assignments(ds, 5, 0))  # same seed, same folds
    assert not np.array_equal(f, fold_assignments(ds, 5, 1))
    seq = ds.images.extra["sequence"]
    for s in set(seq.tolist()):
        assert len(set(f[seq == s].tolist())) == 1  # a sequence never straddles folds
    # explicit groups override the sequence column
    g = np.asarray([i % 10 for i in range(40)], dtype=object)
    fg = fold_assignments(ds, 5, 0, g)
    for v in range(10):
        assert len(set(fg[g == v].tolist())) == 1
    # stratified: with singleton units each class spreads evenly over the folds
    flat = np.arange(60) % 3
    one = Dataset(ds.schema, Images(path=obj_array([f"{i}.png" for i in range(60)]), width=np.ones(60, np.int64),
                                    height=np.ones(60, np.int64)), Annotations(image=np.arange(60), label=flat))
    fo = fold_assignments(one, 5, 0)
    per = np.zeros((5, 3), int)
    np.add.at(per, (fo, flat), 1)
    assert per.min() == per.max() == 4


@pytest.mark.parametrize(("folds", "groups", "match"), [
    pytest.param(1, None, "folds must be an integer >= 2", id="one-fold"),
    pytest.param(11, None, r"number of independent groups of images \(10\)", id="more-folds-than-sequences"),
    pytest.param(3, np.zeros(5, object), r"one value per image \(40\)", id="groups-length"),
])
def test_fold_assignment_errors(folds: int, groups: np.ndarray | None, match: str) -> None:
    with pytest.raises(MaslowError, match=match):
        fold_assignments(shapes(40, seed=3), folds, 0, groups)


def test_out_of_fold_never_predicts_a_seen_image_detection(memo: TrainConfig) -> None:
    ds = shapes(30, seed=4)
    oof = out_of_fold(ds, memo, folds=3, seed=2)
    fold = oof.images.extra[FOLD_COLUMN]
    assert np.array_equal(fold, fold_assignments(ds, 3, 2))
    assert np.array_equal(oof.images.path, ds.images.path) and oof.root == ds.root
    assert np.array_equal(oof.annotations.image, np.arange(30))  # every image predicted exactly once
    assert not oof.annotations.extra["seen"].any()  # by construction: no model saw the image it predicted
    assert len(MemoModel.trained_on) == 3
    for f, seen in enumerate(MemoModel.trained_on):  # fold f's model trained on every other fold, all of them
        assert seen == set(ds.images.path[fold != f].tolist())
    assert (oof.annotations.source == "model").all() and oof.annotations.has_box.all()


class MemoDetector(MemoModel):
    """MemoModel with a detector's ``task``, as the torchvision detectors have."""

    task = Task.DETECTION


def test_crossval_scores_of_a_detector_on_a_keypoints_dataset(memo: TrainConfig) -> None:
    """The shapes sample's main task is keypoints (read from COCO) or instance segmentation (in memory): a
    detector's out-of-fold boxes are scored with the task it is given (the model's, as ``train`` does) instead of
    being refused for lacking keypoints or masks."""
    ds = shapes(30, seed=4)
    assert ds.schema.tasks[0] != "detection"
    oof = out_of_fold(ds, memo, folds=3, seed=2)
    with pytest.raises(MaslowError):
        crossval_scores(ds, oof)  # the truth's own task, which boxes alone can't be scored for
    s = crossval_scores(ds, oof, task="detection")
    assert len(s.per_fold) == 3 and set(s.overall) >= {"map_50_95", "map_50"}
    assert s.overall == evaluate(ds, oof.replace(images=ds.images), task="detection")


def test_crossval_cli_scores_a_detector_with_its_own_task(memo: TrainConfig, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``maslow crossval`` with a detector config on the shapes sample (keypoints first) gives box mAP."""
    from maslow import io
    from maslow.sample import write_shapes
    from tests.helpers import run_cli

    monkeypatch.setitem(ADAPTERS, "memo-detector", f"{__name__}:MemoDetector")
    io.write(write_shapes(tmp_path / "shapes", 12, seed=1), tmp_path / "shapes" / "gt.json", "coco")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("data: shapes/gt.json\nformat: coco\nmodel: memo-detector\n")
    code, out = run_cli(["crossval", str(cfg), "--folds", "3", "--out", str(tmp_path / "oof.json"),
                         "--to", "coco-results", "--json"])
    assert code == 0, out
    assert set(json.loads(out)["scores"]["overall"]) >= {"map_50_95", "map_50"}


def test_out_of_fold_embed_logreg_learns(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    ds = colour_squares(tmp_path / "sq", 36, seed=2, frames_per_sequence=2)
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(tmp_path / "cache")})
    calls: list[tuple[int, int]] = []
    oof = out_of_fold(ds, cfg, folds=3, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (3, 3)
    probs = oof.annotations.extra[PROBS_COLUMN]
    assert probs.shape == (36, 3) and np.allclose(probs.sum(1), 1)
    scores = crossval_scores(ds, oof)
    assert scores.overall["accuracy"] > 0.6  # chance: 1/3
    assert scores.overall == evaluate(ds, oof.replace(images=ds.images))
    assert sum(scores.n_images) == 36 and len(scores.per_fold) == 3
    mean, std = scores.mean_std("accuracy")
    assert 0.5 < mean <= 1 and std >= 0
    seq, fold = ds.images.extra["sequence"], oof.images.extra[FOLD_COLUMN]
    for s in set(seq.tolist()):
        assert len(set(fold[seq == s].tolist())) == 1


def test_dedupe_keeps_copies_in_one_fold(tmp_path: Path, memo: TrainConfig) -> None:
    ds = colour_squares(tmp_path / "sq", 20, seed=5)
    # images 10..19 become byte copies of images 0..9 under other names
    for i in range(10):
        shutil.copy(tmp_path / "sq" / ds.images.path[i], tmp_path / "sq" / ds.images.path[10 + i])
    groups = duplicate_groups(ds)
    assert all(groups[i] == groups[10 + i] for i in range(10))
    assert len(set(groups.tolist())) == 10
    oof = out_of_fold(ds, memo, folds=5, dedupe=True)
    fold = oof.images.extra[FOLD_COLUMN]
    assert all(fold[i] == fold[10 + i] for i in range(10))
    assert not oof.annotations.extra["seen"].any()
    # without dedupe the copies are free to land in other folds (and here some do)
    loose = fold_assignments(ds, 5, 0)
    assert any(loose[i] != loose[10 + i] for i in range(10))


@pytest.mark.slow
@pytest.mark.shared
def test_mnist_subset_out_of_fold_beats_chance_by_far(tmp_path: Path) -> None:
    """1,000 real digits, light embedder, 5 folds: the accuracy the benchmark reports for the full set (~0.94)."""
    pytest.importorskip("sklearn")
    from maslow import io
    from tests.conftest import shared_path

    ds = io.read(shared_path("mnist_test"), "mnist")
    assert ds.n_images == 10_000
    sub = ds.select_images(np.sort(np.random.default_rng(0).permutation(ds.n_images)[:1000]))
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(tmp_path / "cache")})
    oof = out_of_fold(sub, cfg, folds=5)
    assert crossval_scores(sub, oof).overall["accuracy"] > 0.9


@pytest.mark.slow
def test_out_of_fold_with_a_torch_detector(tmp_path: Path) -> None:
    """Any adapter works: a tiny Faster R-CNN from scratch, one epoch per fold (plumbing only, not accuracy)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from maslow.core.schema import LabelSchema
    from maslow.sample import write_shapes

    ds = write_shapes(tmp_path / "shapes", 12, seed=1)
    ds = ds.replace(schema=LabelSchema(classes=ds.schema.classes, tasks=("detection",)))
    cfg = TrainConfig(data="unused", model="fasterrcnn", pretrained="no", epochs=1, image_size=64, batch_size=4,
                      device="cpu")
    oof = out_of_fold(ds, cfg, folds=3)
    assert np.array_equal(oof.images.extra[FOLD_COLUMN], fold_assignments(ds, 3, 0))
    assert np.array_equal(oof.images.path, ds.images.path)
    a = oof.annotations
    assert len(a) and (a.source == "model").all() and a.has_box.all() and not np.isnan(a.score).any()
    assert set(crossval_scores(ds, oof).overall) >= {"map_50_95", "map_50"}


class FirstClassModel(MemoModel):
    """A classification double: every image is predicted as class 0 (probability 1), one annotation per image."""

    def predict(self, images: Dataset | Sequence[str | Path], *, batch_size: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> Dataset:
        assert isinstance(images, Dataset) and self.schema is not None
        m, k = images.n_images, len(self.schema.names)
        probs = np.zeros((m, k))
        probs[:, 0] = 1.0
        ann = Annotations(image=np.arange(m), label=np.zeros(m, np.int64), score=np.ones(m),
                          source=obj_array(["model"] * m), extra={PROBS_COLUMN: probs})
        return Dataset(self.schema, images.images, ann, root=images.root)


def test_crossval_scores_leave_unlabelled_images_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A classification set with unlabelled images trained every fold, then failed scoring them ('must have
    exactly one label'), so ``maslow crossval`` wrote nothing; they are predicted and left out of the metrics."""
    sk = pytest.importorskip("sklearn.metrics")
    from maslow.core.schema import LabelSchema

    monkeypatch.setitem(ADAPTERS, "first-class", f"{__name__}:FirstClassModel")
    m = 30
    y = np.arange(m) % 3
    labelled = np.flatnonzero(np.arange(m) % 7 != 3)  # 4 images without a label
    ds = Dataset(LabelSchema.from_names(["a", "b", "c"], task="classification"),
                 Images(path=obj_array([f"{i}.png" for i in range(m)]), width=np.ones(m, np.int64),
                        height=np.ones(m, np.int64)), Annotations(image=labelled, label=y[labelled]))
    oof = out_of_fold(ds, TrainConfig(data="unused", model="first-class"), folds=3)
    assert np.array_equal(oof.annotations.image, np.arange(m))  # the unlabelled images are predicted too
    s = crossval_scores(ds, oof)
    pred = np.zeros(len(labelled), np.int64)
    assert s.overall["accuracy"] == pytest.approx(sk.accuracy_score(y[labelled], pred))
    assert s.overall["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y[labelled], pred))
    assert s.overall["f1_macro"] == pytest.approx(sk.f1_score(y[labelled], pred, average="macro", zero_division=0))
    assert len(s.per_fold) == 3 and sum(s.n_images) == m


def test_crossval_scores_refuse_predictions_on_other_images(memo: TrainConfig) -> None:
    """Predictions on the same number of images in another order were scored against the wrong truth."""
    ds = shapes(30, seed=4)
    oof = out_of_fold(ds, memo, folds=3, seed=2)
    turned = oof.select_images(np.arange(30)[::-1])
    with pytest.raises(MaslowError, match=r"must be on truth's 30 images in truth's order.*got image 0 is"):
        crossval_scores(ds, turned, task="detection")
    with pytest.raises(MaslowError, match=r"got 20 images"):
        crossval_scores(ds, oof.select_images(np.arange(20)), task="detection")
