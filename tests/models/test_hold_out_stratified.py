"""The validation holdout (``val_fraction``) is stratified by class: every class keeps its share in training and
validation (as scikit-learn's stratified split deals them), detection images go by their rarest class, a class of
one image always trains, and the same seed gives the same holdout. It used to be a plain random draw of images."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import MaslowWarning
from maslow.models.base import TrainConfig
from maslow.models.train import hold_out, split_for_training

SEEDS = range(12)


def _classification(labels: list[int], names: tuple[str, ...]) -> Dataset:
    m = len(labels)
    images = Images(path=obj_array([f"{i}.png" for i in range(m)]), width=np.full(m, 8), height=np.full(m, 8))
    return Dataset(LabelSchema.from_names(list(names), task="classification"), images,
                   Annotations(image=np.arange(m), label=np.asarray(labels)))


def _detection(objects: list[list[int]], names: tuple[str, ...]) -> Dataset:
    """One image per entry of ``objects``, holding a box of each listed class."""
    m = len(objects)
    images = Images(path=obj_array([f"{i}.png" for i in range(m)]), width=np.full(m, 64), height=np.full(m, 64))
    img = np.repeat(np.arange(m), [len(o) for o in objects])
    lab = np.asarray([c for o in objects for c in o], np.int64)
    box = np.tile([4.0, 4.0, 20.0, 20.0], (len(lab), 1))
    return Dataset(LabelSchema.from_names(list(names)), images, Annotations(image=img, label=lab, box=box))


def test_every_class_keeps_its_share_as_sklearn_deals_it() -> None:
    """A plain random draw of 10 of 40 images put 0 to 4 of the 4 'rare' images in validation, depending on the
    seed; a stratified one holds out a class's share within one image, as StratifiedShuffleSplit does."""
    model_selection = pytest.importorskip("sklearn.model_selection")
    labels = [0] * 24 + [1] * 12 + [2] * 4
    ds = _classification(labels, ("common", "medium", "rare"))
    y = np.asarray(labels)
    for seed in SEEDS:
        held = hold_out(ds, 0.25, seed=seed)
        assert held.sum() == 10  # exactly round(0.25 * 40)
        ours = np.bincount(y[held], minlength=3)
        _, sk_val = model_selection.train_test_split(y, test_size=10, stratify=y, random_state=seed)
        theirs = np.bincount(sk_val, minlength=3)
        assert np.all(np.abs(ours - 0.25 * np.bincount(y)) < 1), (seed, ours)
        assert np.all(np.abs(ours - theirs) <= 1), (seed, ours, theirs)
        assert ours[2] == 1  # the rare class: one image in validation, three to learn from


def test_same_seed_same_holdout_and_seeds_differ() -> None:
    ds = _classification([0] * 24 + [1] * 12 + [2] * 4, ("common", "medium", "rare"))
    runs = [hold_out(ds, 0.25, seed=s) for s in SEEDS]
    assert all(np.array_equal(hold_out(ds, 0.25, seed=s), r) for s, r in zip(SEEDS, runs, strict=True))
    assert len({r.tobytes() for r in runs}) > 1


def test_detection_images_go_by_their_rarest_class() -> None:
    """Every image has cars; four also a bike, one a train. The bike images are dealt by their rarest class (one
    of four held out, as its share says); the one train image always trains (a random draw held it out 1 time in
    4, and the bikes anywhere from 0 to 4)."""
    objects = [[0, 0]] * 15 + [[0, 1]] * 4 + [[0, 0, 2]]
    ds = _detection(objects, ("car", "bike", "train"))
    bike, train_img = np.arange(15, 19), 19
    for seed in SEEDS:
        held = hold_out(ds, 0.25, seed=seed)
        assert held.sum() == 5
        assert held[bike].sum() == 1, (seed, np.flatnonzero(held))
        assert not held[train_img]


def test_a_class_of_one_image_trains_and_nothing_crashes() -> None:
    ds = _classification([0] * 9 + [1], ("many", "single"))
    for seed in SEEDS:
        held = hold_out(ds, 0.5, seed=seed)
        assert not held[9] and held.sum() == 5 and held[:9].sum() == 5
    cfg = TrainConfig(data="unused", val_fraction=0.5, seed=3)  # the same through train()'s split
    tr, val, _ = split_for_training(ds, cfg)
    assert val is not None and "9.png" in set(tr.images.path) and val.n_images == 5


def test_when_every_image_holds_a_class_of_its_own_nothing_is_held_out() -> None:
    ds = _classification([0, 1, 2], ("a", "b", "c"))
    with pytest.warns(MaslowWarning, match="no other image has"):
        held = hold_out(ds, 0.4, seed=0)
    assert not held.any()
    with pytest.warns(MaslowWarning, match="no other image has"):
        tr, val, _ = split_for_training(ds, TrainConfig(data="unused", val_fraction=0.4))
    assert val is None and tr.n_images == 3  # trains without validation, as without val_fraction


def test_no_class_is_left_with_validation_images_only() -> None:
    """An extreme fraction: the rounded quota would send both images of class 'pair' to validation."""
    ds = _classification([0] * 8 + [1, 1], ("many", "pair"))
    for seed in SEEDS:
        held = hold_out(ds, 0.9, seed=seed)
        assert not held[8:].all() and held.any() and not held.all()


def test_crowd_regions_do_not_decide() -> None:
    """A class seen only as a crowd region in one image is no class of one image: that image may validate."""
    objects = [[0]] * 8
    ds = _detection(objects, ("car", "crowd"))
    a = ds.annotations
    crowded = Annotations(image=np.r_[0, a.image], label=np.r_[1, a.label], box=np.vstack([a.box[:1], a.box]),
                          iscrowd=np.r_[True, np.zeros(len(a), bool)])
    ds = ds.replace(annotations=crowded)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        held = [hold_out(ds, 0.5, seed=s)[0] for s in SEEDS]
    assert any(held)  # image 0 is held out for some seeds (it would always train if its crowd class counted)
