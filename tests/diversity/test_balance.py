from __future__ import annotations

import math

import numpy as np
import pytest

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity.balance import balance
from maslow.errors import MaslowError


def _tiny() -> Dataset:
    """4 train images, 1 val image; classes a (6 train), b (2 train, 1 val), c (0)."""
    schema = LabelSchema.from_names(["a", "b", "c"])
    images = Images(path=[f"{i}.jpg" for i in range(5)], width=[10] * 5, height=[10] * 5,
                    split=["train", "train", "train", "train", "val"])
    image = [0, 0, 0, 1, 1, 2, 2, 3, 4]
    label = [0, 0, 0, 0, 0, 0, 1, 1, 1]
    return Dataset(schema, images, Annotations(image=image, label=label))


def test_counts_ratio_effective_number_by_hand() -> None:
    r = balance(_tiny(), split="train", beta=0.9)
    assert r.counts.tolist() == [6, 3, 0]
    assert r.counts_per_split.tolist() == [[6, 0], [2, 1], [0, 0]]
    assert r.remedy_counts.tolist() == [6, 2, 0]
    assert r.imbalance_ratio == 3.0
    assert np.allclose(r.effective_number, [(1 - 0.9**6) / 0.1, (1 - 0.9**2) / 0.1, 0.0])
    assert np.allclose(r.share, [0.75, 0.25, 0.0])


def test_weights_normalised_to_mean_one() -> None:
    r = balance(_tiny(), split="train", beta=0.9)
    # inverse frequency 1/6, 1/2 -> mean 1/3 -> 0.5, 1.5; absent class weight 0
    assert np.allclose(r.weights_inverse, [0.5, 1.5, 0.0])
    e = np.array([(1 - 0.9**6) / 0.1, (1 - 0.9**2) / 0.1])
    w = (1 / e) / (1 / e).mean()
    assert np.allclose(r.weights_effective[:2], w) and r.weights_effective[2] == 0


def test_rare_rule_and_needed() -> None:
    # default rare share 0.5 / 3; b has 0.25 (not rare), c has 0 (rare)
    r = balance(_tiny(), split="train")
    assert r.rare_classes == ("c",)
    r = balance(_tiny(), split="train", rare_share=0.3, target_share=0.4)
    assert r.rare_classes == ("b", "c")
    # (n + x) / (8 + x) >= 0.4: b: x >= (3.2 - 2) / 0.6 = 2; c: x >= 3.2 / 0.6 = 5.33 -> 6; a already
    assert r.needed.tolist() == [0, 2, 6]


def test_repeat_factors_follow_lvis_formula() -> None:
    t = 0.8
    r = balance(_tiny(), split="train", repeat_threshold=t)
    # image frequency on the 4 train images: a in images 0, 1, 2 -> 0.75; b in 2, 3 -> 0.5
    assert np.allclose(r.image_frequency, [0.75, 0.5, 0.0])
    r_a, r_b = max(1.0, math.sqrt(t / 0.75)), max(1.0, math.sqrt(t / 0.5))
    assert np.allclose(r.class_repeat[:2], [r_a, r_b])
    # image repeat = max over its classes; image 4 is not in train
    assert np.allclose(r.image_repeat[:4], [r_a, r_a, max(r_a, r_b), r_b])
    assert math.isnan(r.image_repeat[4])
    assert r.epoch_size == pytest.approx(2 * r_a + 2 * r_b)


def test_all_images_and_serialisation(shapes_ds: Dataset) -> None:
    r = balance(shapes_ds)
    assert r.split is None and int(r.remedy_counts.sum()) == shapes_ds.n_annotations
    d = r.to_dict()
    assert [c["name"] for c in d["classes"]] == list(shapes_ds.schema.names)
    assert len(r.to_pandas()) == len(shapes_ds.schema.names)


def test_bad_arguments() -> None:
    with pytest.raises(MaslowError, match="beta must be in"):
        balance(_tiny(), beta=1.0)
    with pytest.raises(MaslowError, match="split must be one of"):
        balance(_tiny(), split="test")
