from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.core import Annotations, Dataset, Images, LabelSchema, masks
from maslow.core.schema import ClassDef
from maslow.diversity.balance import balance
from maslow.errors import MaslowError
from maslow.sample import write_shapes
from tests.helpers import run_cli


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


def _stuff() -> Dataset:
    """Two 4 x 5 label maps (20 pixels each) and one of unknown size; classes sky, road, pole (semantic) and car
    (object). Image 0: sky 12, road 8. Image 1: road 18, pole 2, one car. Image 2 (size unknown): a pole box of
    2 x 3 pixels."""
    sky0 = np.zeros((4, 5), bool)
    sky0[:3, :4] = True
    pole1 = np.zeros((4, 5), bool)
    pole1[:2, 0] = True
    schema = LabelSchema(classes=(ClassDef("sky", kind="semantic"), ClassDef("road", kind="semantic"),
                                  ClassDef("pole", kind="semantic"), ClassDef("car")))
    nan = [np.nan] * 4
    return Dataset(schema, Images(path=["0.png", "1.png", "2.png"], width=[5, 5, 0], height=[4, 4, 0]),
                   Annotations(image=[0, 0, 1, 1, 1, 2], label=[0, 1, 1, 2, 3, 2],
                               mask=[masks.encode(sky0), masks.encode(~sky0), masks.encode(~pole1),
                                     masks.encode(pole1), None, None],
                               box=[nan, nan, nan, nan, [0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]]))


def test_semantic_classes_by_hand() -> None:
    r = balance(_stuff())
    assert r.measure == ("pixels", "pixels", "pixels", "annotations")
    assert r.counts.tolist() == [1, 2, 2, 1]
    # pole: 2 mask pixels + a 2 x 3 box; the car is an object, measured in annotations
    assert r.pixels[:3].tolist() == [12, 26, 8] and math.isnan(r.pixels[3])
    assert r.share[:3].tolist() == pytest.approx([12 / 46, 26 / 46, 8 / 46]) and r.share[3] == 1.0
    # one ratio per measure; the two do not compare, so there is no single ratio
    assert r.imbalance_ratios == {"annotations": 1.0, "pixels": 26 / 8} and math.isnan(r.imbalance_ratio)
    # default thresholds: half the uniform share of each measure's classes
    assert r.rare_shares == {"annotations": 0.5, "pixels": 0.5 / 3} and math.isnan(r.rare_share)
    assert r.rare_classes == ()
    # median frequency: f = pixels / pixels of the (known-size) images holding the class; the box on the image of
    # unknown size is left out of f
    f = np.array([12 / 20, 26 / 40, 2 / 20])
    assert r.pixel_frequency[:3].tolist() == pytest.approx(f.tolist())
    assert r.weights_median_frequency[:3].tolist() == pytest.approx((np.median(f) / f).tolist())
    inv = 1 / np.array([12, 26, 8])
    assert r.weights_inverse.tolist() == pytest.approx([*(inv / inv.mean()), 1.0])
    assert np.isnan(r.effective_number[:3]).all() and r.weights_effective[3] == 1.0
    r = balance(_stuff(), target_share=0.25)
    # pole: (8 + x) / (46 + x) >= 0.25 -> x >= (11.5 - 8) / 0.75 = 4.67 -> 5 pixels; the car alone is 100%
    assert r.needed.tolist() == [0, 0, 5, 0] and r.target_share == 0.25


def test_plot_of_a_mixed_dataset(tmp_path: Path) -> None:
    from maslow.diversity.balance import plot_balance

    assert plot_balance(balance(_stuff()), tmp_path) == [tmp_path / "balance.png"]
    assert (tmp_path / "balance.png").stat().st_size > 1000


def test_semantic_task_measures_every_class_in_pixels() -> None:
    ds = _stuff()
    ds = ds.replace(schema=LabelSchema.from_names(ds.schema.names, task="semantic_segmentation"))
    r = balance(ds)
    assert r.measure == ("pixels",) * 4 and r.pixels[3] == 4.0  # the car's 2 x 2 box
    assert r.imbalance_ratio == 26 / 4 and r.rare_share == 0.5 / 4


def test_balance_table_fits_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """13 columns (with one per split) cut the headers to 'an…', 'te…' in an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    ds = write_shapes(tmp_path / "s", 20, seed=6)
    io.write(ds, tmp_path / "s" / "annotations.json", "coco")
    for extra in ([], ["--split", "train"], ["--weight", "inverse"]):
        code, out = run_cli(["diversity", "balance", str(tmp_path / "s" / "annotations.json"), "--from", "coco",
                             *extra])
        assert code == 0, out
        assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80, out
        header = next(line for line in out.splitlines() if "class" in line and "┃" in line)
        assert [h.strip() for h in header.strip("┃").split("┃")] == ["class", "annotations", "share", "rare",
                                                                     "weight", "repeat", "needed"]
    code, out = run_cli(["diversity", "balance", str(tmp_path / "s" / "annotations.json"), "--from", "coco",
                         "--json"])
    r = balance(io.read(tmp_path / "s" / "annotations.json", "coco"))
    got = json.loads(out)
    assert [c["weight_effective"] for c in got["classes"]] == pytest.approx(r.weights_effective.tolist())
    assert all(c["pixels"] is None and c["weight_median_frequency"] is None for c in got["classes"])
