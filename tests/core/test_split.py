"""Dataset.split: seeded, fractions respected, class-stratified, sequence groups kept whole."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.errors import InvalidDatasetError
from maslow.sample import shapes


def imbalanced(m: int = 400, n_rare: int = 20, seed: int = 0, extra: dict[str, object] | None = None) -> Dataset:
    """m images with 1-4 'common' objects each; the rare class sits in n_rare images next to common objects."""
    rng = np.random.default_rng(seed)
    image: list[int] = []
    label: list[int] = []
    rare = set(rng.choice(m, n_rare, replace=False).tolist())
    for i in range(m):
        k = int(rng.integers(1, 5))
        image += [i] * k
        label += [0] * k
        if rng.random() < 0.3:
            image.append(i)
            label.append(1)  # 'medium'
        if i in rare:
            image.append(i)
            label.append(2)
    return Dataset(
        schema=LabelSchema.from_names(["common", "medium", "rare"]),
        images=Images(path=[f"{i}.jpg" for i in range(m)], width=np.full(m, 64), height=np.full(m, 64),
                      extra=extra or {}),
        annotations=Annotations(image=image, label=label),
    )


def class_share_error(ds: Dataset, fractions: dict[str, float]) -> float:
    """Largest |share of a class's annotations in a split - the split's fraction|, over classes and splits."""
    parts = ds.by_split()
    total = np.bincount(ds.annotations.label, minlength=len(ds.schema.classes))
    err = 0.0
    for name, frac in fractions.items():
        got = parts[name].annotations.label if name in parts else np.zeros(0, np.int64)
        share = np.bincount(got, minlength=len(total)) / np.maximum(total, 1)
        err = max(err, float(np.abs(share - frac)[total > 0].max()))
    return err


FR = {"train": 0.8, "val": 0.2}


def test_same_seed_same_split_and_different_seeds_differ() -> None:
    ds = imbalanced()
    a = ds.split(FR, rng=3).images.split
    b = ds.split(FR, rng=3).images.split
    c = ds.split(FR, rng=4).images.split
    np.testing.assert_array_equal(a, b)
    assert (a != c).sum() > 10  # type: ignore[operator]
    # a Generator is accepted and consumed like a seed
    g = ds.split(FR, rng=np.random.default_rng(3)).images.split
    np.testing.assert_array_equal(a, g)


@pytest.mark.parametrize("stratify", [True, False], ids=["stratified", "plain"])
@pytest.mark.parametrize(
    "fractions",
    [{"train": 0.8, "val": 0.2}, {"train": 0.7, "val": 0.2, "test": 0.1}, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}],
    ids=["80-20", "70-20-10", "thirds"],
)
def test_image_fractions_are_respected(fractions: dict[str, float], stratify: bool) -> None:
    ds = imbalanced(600)
    for seed in range(3):
        split = ds.split(fractions, rng=seed, stratify=stratify).images.split
        assert split is not None
        assert set(split.tolist()) == set(fractions)
        for name, frac in fractions.items():
            share = float(np.mean(split == name))
            # both fill image quotas first (to the image); a stratified split then picks, among splits with room,
            # the one that most lacks the image's rarest class
            assert share == pytest.approx(frac, abs=0.005), (name, seed)


def test_stratified_split_balances_every_class_better_than_a_plain_split() -> None:
    ds = imbalanced(400, n_rare=20)
    strat = [class_share_error(ds.split(FR, rng=s), FR) for s in range(8)]
    plain = [class_share_error(ds.split(FR, rng=s, stratify=False), FR) for s in range(8)]
    # 20 rare annotations: stratified puts 16 and 4 of them (exact), the plain split is off by chance
    assert max(strat) <= 0.03, strat
    assert np.mean(plain) > 2 * np.mean(strat) + 0.02, (plain, strat)
    for s in range(8):
        parts = ds.split(FR, rng=s).by_split()
        assert int((parts["val"].annotations.label == 2).sum()) == 4


def test_a_rare_class_that_only_appears_beside_common_objects_still_reaches_every_split() -> None:
    # every image holds 5 common objects; 10 of them also hold the rare class
    m = 100
    image = [i for i in range(m) for _ in range(5)] + list(range(10))
    label = [0] * (5 * m) + [1] * 10
    ds = Dataset(schema=LabelSchema.from_names(["common", "rare"]),
                 images=Images(path=[f"{i}.png" for i in range(m)], width=np.ones(m), height=np.ones(m)),
                 annotations=Annotations.sort_rows(image=image, label=label))
    for seed in range(5):
        parts = ds.split({"train": 0.7, "val": 0.3}, rng=seed).by_split()
        assert int((parts["val"].annotations.label == 1).sum()) == 3
        assert parts["val"].n_images == 30


def test_groups_never_straddle_splits(shapes_ds: Dataset) -> None:
    seq = np.repeat(np.arange(60), 5)  # 300 images in sequences of 5
    ds = imbalanced(300, extra={"sequence": seq})
    for seed in range(4):
        split = ds.split({"train": 0.6, "val": 0.2, "test": 0.2}, rng=seed).images.split
        assert split is not None
        for s in range(60):
            assert len(set(split[seq == s].tolist())) == 1
        assert float(np.mean(split == "train")) == pytest.approx(0.6, abs=0.05)
    # the sample dataset's sequences too
    sp = shapes_ds.split({"train": 0.5, "val": 0.5}, rng=0).images
    seq_s = sp.extra["sequence"]
    assert all(len(set(sp.split[seq_s == s].tolist())) == 1 for s in set(seq_s.tolist()))  # type: ignore[index]


def test_group_none_ignores_the_sequence_column() -> None:
    seq = np.zeros(200, np.int64)  # one sequence: kept together, it would land in one split
    ds = imbalanced(200, extra={"sequence": seq})
    together = ds.split(FR, rng=0).images.split
    assert together is not None and len(set(together.tolist())) == 1
    apart = ds.split(FR, rng=0, group=None).images.split
    assert apart is not None and float(np.mean(apart == "val")) == pytest.approx(0.2, abs=0.02)
    custom = ds.replace(images=Images(path=ds.images.path, width=ds.images.width, height=ds.images.height,
                                      extra={"site": np.arange(200) % 10})).split(FR, rng=0, group="site")
    site = custom.images.extra["site"]
    assert all(len(set(custom.images.split[site == s].tolist())) == 1 for s in range(10))  # type: ignore[index]


def test_images_without_a_group_value_are_placed_one_by_one() -> None:
    # e.g. after concat of a dataset with sequences and one without: None must not glue images together
    seq = np.empty(200, dtype=object)
    seq[:40] = [f"s{i // 4}" for i in range(40)]
    ds = imbalanced(200, extra={"sequence": seq})
    split = ds.split(FR, rng=1).images.split
    assert split is not None
    assert {"train", "val"} <= set(split[40:].tolist())
    assert float(np.mean(split == "val")) == pytest.approx(0.2, abs=0.03)
    fseq = np.where(np.arange(200) < 40, np.arange(200) // 4, np.nan)
    fsplit = imbalanced(200, extra={"sequence": fseq}).split(FR, rng=1).images.split
    assert fsplit is not None and {"train", "val"} <= set(fsplit[40:].tolist())


def test_zero_fraction_gets_nothing() -> None:
    ds = imbalanced(200)
    for stratify in (True, False):
        split = ds.split({"train": 0.5, "test": 0.0, "val": 0.5}, rng=0, stratify=stratify).images.split
        assert split is not None and "test" not in split.tolist()
        assert float(np.mean(split == "train")) == pytest.approx(0.5, abs=0.03)
    everything = ds.split({"train": 1.0, "val": 0.0}, rng=0).images.split
    assert everything is not None and set(everything.tolist()) == {"train"}


@pytest.mark.parametrize(
    "fractions",
    [
        pytest.param({"train": 0.8, "val": 0.3}, id="sum-above-1"),
        pytest.param({"train": 0.5, "val": 0.4}, id="sum-below-1"),
        pytest.param({"train": 1.2, "val": -0.2}, id="negative"),
        pytest.param({"train": float("nan"), "val": 0.5}, id="nan"),
        pytest.param({}, id="empty"),
    ],
)
def test_bad_fractions_raise(fractions: dict[str, float]) -> None:
    with pytest.raises(InvalidDatasetError, match="split: fractions must be >= 0 and sum to 1"):
        imbalanced(20).split(fractions, rng=0)


def test_default_fractions_and_by_split() -> None:
    ds = imbalanced(100).split(rng=0)
    parts = ds.by_split()
    assert set(parts) == {"train", "val"}
    assert parts["train"].n_images == pytest.approx(80, abs=3) and parts["val"].n_images == pytest.approx(20, abs=3)
    assert ds.split(rng=0, stratify=False).by_split()["val"].n_images == 20
    assert parts["train"].n_annotations + parts["val"].n_annotations == ds.n_annotations


def test_split_of_an_empty_dataset_and_of_images_without_annotations() -> None:
    empty = Dataset(schema=LabelSchema.from_names(["a"]), images=Images.empty(), annotations=Annotations.empty())
    out = empty.split(FR, rng=0)
    assert out.images.split is not None and len(out.images.split) == 0
    bare = Dataset(schema=LabelSchema.from_names(["a"]),
                   images=Images(path=[f"{i}" for i in range(50)], width=np.ones(50), height=np.ones(50)),
                   annotations=Annotations.empty())
    split = bare.split(FR, rng=0).images.split
    assert split is not None and int(np.sum(split == "val")) == 10


def test_sample_shapes_split_is_deterministic_and_sequence_aware() -> None:
    a, b = shapes(40, seed=5), shapes(40, seed=5)
    np.testing.assert_array_equal(a.images.split, b.images.split)  # type: ignore[arg-type]
    assert set(a.images.split.tolist()) == {"train", "val"}  # type: ignore[union-attr]


def one_object_classes(m: int = 20) -> Dataset:
    """m images, each holding the only object of its own class."""
    return Dataset(schema=LabelSchema.from_names([f"c{i}" for i in range(m)]),
                   images=Images(path=[f"{i}.png" for i in range(m)], width=np.ones(m), height=np.ones(m)),
                   annotations=Annotations.sort_rows(image=list(range(m)), label=list(range(m))))


@pytest.mark.parametrize("fractions", [FR, {"train": 0.7, "val": 0.2, "test": 0.1}], ids=["80-20", "70-20-10"])
def test_classes_of_one_object_still_fill_every_split(fractions: dict[str, float]) -> None:
    # each class lacks 0.8 of an object in train and 0.2 in val: fractional quotas sent all 20 images to train
    ds = one_object_classes(20)
    for seed in range(6):
        split = ds.split(fractions, rng=seed).images.split
        assert split is not None
        for name, frac in fractions.items():
            assert int(np.sum(split == name)) == round(20 * frac), (name, seed)


def test_class_quotas_are_whole_objects_that_add_up() -> None:
    from maslow.core.split import _class_quotas

    rng = np.random.default_rng(0)
    for _ in range(50):
        k = int(rng.integers(1, 30))
        total = rng.integers(0, 12, k) * (rng.random(k) < 0.8)
        frac = rng.dirichlet(np.ones(int(rng.integers(2, 6))))
        frac[1:][rng.random(len(frac) - 1) < 0.2] = 0.0
        frac = frac / frac.sum()
        q = _class_quotas(total, frac, rng)
        assert np.all(q >= 0) and np.all(q == np.round(q))
        np.testing.assert_array_equal(q.sum(0), total)  # every object of every class has a place
        assert np.all(q[frac == 0] == 0)  # a split with no share gets no quota
        assert np.all(np.abs(q - frac[:, None] * total[None, :]) < 2)  # each class near its share
        assert np.all(np.abs(q.sum(1) - frac * total.sum()) < 1 + 1e-9)  # rounding carried: splits near theirs


def test_a_rare_class_in_sequences_reaches_the_small_split() -> None:
    # 10 sequences of 4 frames; a rare class of 7 objects sits in 5 of them (2, 1, 1, 2, 1 objects): once train's
    # quota and val's lack the same, the split whose quota is least filled (val, with none) takes the sequence
    m = 40
    image = list(range(m))
    label = [0] * m
    for seq, n in zip((0, 2, 4, 6, 8), (2, 1, 1, 2, 1), strict=True):
        image += [4 * seq] * n
        label += [1] * n
    ds = Dataset(schema=LabelSchema.from_names(["common", "rare"]),
                 images=Images(path=[f"{i}.png" for i in range(m)], width=np.ones(m), height=np.ones(m),
                               extra={"sequence": np.arange(m) // 4}),
                 annotations=Annotations.sort_rows(image=image, label=label))
    for seed in range(12):
        parts = ds.split(FR, rng=seed).by_split()
        assert int((parts["val"].annotations.label == 1).sum()) >= 1, seed
        assert parts["val"].n_images in (8, 12), seed


def test_a_split_with_no_room_left_for_a_sequence_is_passed_over_on_ties() -> None:
    # 6 sequences of 4 frames, 0-4 objects of 3 classes per frame, 75/25: val wants 6 images, so it gets one or
    # two sequences; without the room rule, ties on a class's quota sent val a third sequence (12 of 24 images)
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = rng.integers(0, 5, 24)
        image = np.repeat(np.arange(24), n)
        label = rng.choice(3, int(n.sum()), p=[0.5, 0.35, 0.15])
        ds = Dataset(schema=LabelSchema.from_names(["a", "b", "c"]),
                     images=Images(path=[f"{i}.png" for i in range(24)], width=np.ones(24), height=np.ones(24),
                                   extra={"sequence": np.arange(24) // 4}),
                     annotations=Annotations.sort_rows(image=image, label=label))
        split = ds.split({"train": 0.75, "val": 0.25}, rng=seed).images.split
        assert split is not None and int(np.sum(split == "val")) in (4, 8), seed


def test_single_label_folds_hold_each_class_within_one_image_of_its_share_as_sklearn() -> None:
    # one object per image: every fold's count of every class is within 1 of count / folds, and the fold sizes
    # within 1 of m / folds, as scikit-learn's StratifiedKFold (quotas rounded per class, not beyond)
    from sklearn.model_selection import StratifiedKFold

    for seed in range(30):
        rng = np.random.default_rng(seed)
        m, k, folds = int(rng.integers(30, 120)), int(rng.integers(2, 6)), int(rng.integers(2, 6))
        y = rng.choice(k, m, p=rng.dirichlet(np.full(k, 2.0)))
        ds = Dataset(schema=LabelSchema.from_names([f"c{i}" for i in range(k)]),
                     images=Images(path=[f"{i}.png" for i in range(m)], width=np.ones(m), height=np.ones(m)),
                     annotations=Annotations(image=np.arange(m), label=y))
        fold = ds.split({str(f): 1 / folds for f in range(folds)}, rng=seed).images.split.astype(int)  # type: ignore[union-attr]
        got = np.zeros((folds, k))
        np.add.at(got, (fold, y), 1)
        ideal = np.bincount(y, minlength=k) / folds
        assert np.abs(got - ideal).max() < 1, seed
        assert np.abs(np.bincount(fold, minlength=folds) - m / folds).max() < 1, seed
        if np.bincount(y, minlength=k).min() >= folds:  # sklearn needs every class in every fold
            sk = np.zeros((folds, k))
            for f, (_, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y)):
                np.add.at(sk, (f, y[te]), 1)
            assert np.abs(sk - ideal).max() < 1  # the reference meets the same bound
