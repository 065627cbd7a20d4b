"""balance() against references written here from the literature it cites, on random datasets with crowd regions,
empty images, classes without annotations, a single class and unassigned splits:

- effective number (Cui et al. 2019, eq. 3): ``E_n = (1 - beta^n) / (1 - beta)``;
- repeat-factor sampling as LVIS (Gupta et al. 2019, section 4.1) and detectron2's
  ``RepeatFactorTrainingSampler.repeat_factors_from_category_frequency`` define it, over per-image dicts:
  ``f_c`` = images holding c / all images (empty ones included), ``r_c = max(1, sqrt(t / f_c))``, an image's
  factor the max over its categories (1 for an image without any), the epoch ``floor(r) + Bernoulli(r - floor(r))``
  copies of each image, so its expected size is the sum of the factors;
- ``needed`` by counting up until the share, compared as ``rare`` compares it, reaches the target.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.cli.render import json_text
from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity.balance import balance
from maslow.errors import MaslowError
from maslow.sample import write_shapes
from tests.helpers import run_cli


def _random(rng: np.random.Generator) -> Dataset:
    k, m = int(rng.integers(1, 6)), int(rng.integers(1, 12))
    img, lab, crowd = [], [], []
    for i in range(m):
        for _ in range(int(rng.integers(0, 5))):  # some images empty
            img.append(i)
            lab.append(int(rng.integers(0, k)))  # some classes unused
            crowd.append(bool(rng.random() < 0.2))
    split = rng.choice(["train", "val", ""], m).tolist()
    return Dataset(LabelSchema.from_names([f"c{j}" for j in range(k)]),
                   Images(path=[f"{i}.jpg" for i in range(m)], width=[10] * m, height=[10] * m, split=split),
                   Annotations(image=img, label=lab, iscrowd=crowd, box=[[0.0, 0.0, 5.0, 5.0]] * len(img)))


def _dataset_dicts(ds: Dataset, split: str | None) -> list[dict]:
    """detectron2's form: one dict per image of the split, with its annotations (crowd regions included)."""
    out = []
    for i in range(ds.n_images):
        if split is None or str(ds.images.split[i]) == split:
            rows = np.flatnonzero(ds.annotations.image == i)
            out.append({"image_id": i, "annotations": [{"category_id": int(ds.annotations.label[r]),
                                                        "iscrowd": int(ds.annotations.iscrowd[r])} for r in rows]})
    return out


def _repeat_factors(dicts: list[dict], t: float) -> tuple[dict[int, float], list[float]]:
    """LVIS / detectron2 repeat factors: (category -> r_c, per-image r_i), written from the paper's definition."""
    images_with = {}
    for d in dicts:
        for c in {a["category_id"] for a in d["annotations"]}:
            images_with[c] = images_with.get(c, 0) + 1
    r_c = {c: max(1.0, math.sqrt(t / (n / len(dicts)))) for c, n in images_with.items()}
    r_i = [max((r_c[a["category_id"]] for a in d["annotations"]), default=1.0) for d in dicts]
    return r_c, r_i


def _smallest_x(n: int, total: int, s: float) -> int:
    x = 0
    while total and (n + x) / (total + x) < s:
        x += 1
    return x


def test_every_number_equals_the_references() -> None:
    rng = np.random.default_rng(11)
    for _ in range(150):
        ds = _random(rng)
        k, a = len(ds.schema.names), ds.annotations
        split_of = [str(s) for s in ds.images.split.tolist()]
        names = sorted(set(split_of))
        for split in [None, *names]:
            beta = float(rng.choice([0.0, 0.5, 0.9, 0.999]))
            t = float(rng.choice([0.0, 0.001, 0.3, 0.7, 1.5]))
            rare_share = None if rng.random() < 0.5 else float(rng.uniform(0, 0.6))
            target = None if rng.random() < 0.5 else float(rng.choice([0.0, 0.1, 0.2, 1 / 3, 0.5, 0.7]))
            r = balance(ds, split=split, beta=beta, rare_share=rare_share, target_share=target, repeat_threshold=t)
            # counts over all images, per split, images per class
            rows = list(zip(a.image.tolist(), a.label.tolist(), strict=True))
            assert r.counts.tolist() == [sum(1 for _, c2 in rows if c2 == c) for c in range(k)]
            assert list(r.splits) == names
            assert r.counts_per_split.tolist() == [[sum(1 for i, c2 in rows if c2 == c and split_of[i] == s)
                                                    for s in names] for c in range(k)]
            assert r.images_per_class.tolist() == [len({i for i, c2 in rows if c2 == c}) for c in range(k)]
            # the split's counts, shares, ratio, effective numbers, weights
            dicts = _dataset_dicts(ds, split)
            n = [sum(1 for d in dicts for x in d["annotations"] if x["category_id"] == c) for c in range(k)]
            total = sum(n)
            assert r.remedy_counts.tolist() == n
            if total:
                assert r.share.tolist() == pytest.approx([x / total for x in n])
                assert r.imbalance_ratio == max(n) / min(x for x in n if x)
            else:
                assert np.isnan(r.share).all() and math.isnan(r.imbalance_ratio)
            eff = [(1 - beta**x) / (1 - beta) for x in n]
            assert r.effective_number.tolist() == pytest.approx(eff)
            present = [c for c in range(k) if n[c]]
            for got, raw in ((r.weights_inverse, [1 / x if x else 0 for x in n]),
                             (r.weights_effective, [1 / e if x else 0 for e, x in zip(eff, n, strict=True)])):
                mean = sum(raw[c] for c in present) / len(present) if present else 1.0
                assert got.tolist() == pytest.approx([w / mean for w in raw])
            s_rare = 0.5 / k if rare_share is None else rare_share
            assert r.rare.tolist() == [x == 0 or x / total < s_rare for x in n]
            s = s_rare if target is None else target
            assert r.needed.tolist() == [_smallest_x(x, total, s) for x in n]
            # repeat factors
            r_c, r_i = _repeat_factors(dicts, t)
            assert r.class_repeat.tolist() == pytest.approx([r_c.get(c, 1.0) for c in range(k)])
            assert r.image_frequency.tolist() == pytest.approx(
                [sum(1 for d in dicts if c in {x["category_id"] for x in d["annotations"]}) / len(dicts)
                 for c in range(k)])
            in_split = [d["image_id"] for d in dicts]
            assert r.image_repeat[in_split].tolist() == pytest.approx(r_i)
            assert np.isnan(np.delete(r.image_repeat, in_split)).all()
            assert r.epoch_size == pytest.approx(sum(r_i))
            d = r.to_dict()
            assert d["n_images"] == len(dicts) and d["n_repeated_images"] == sum(x > 1 for x in r_i)
            assert [c["needed"] for c in d["classes"]] == r.needed.tolist()


def _two_classes(n_a: int, n_b: int) -> Dataset:
    m = n_a + n_b
    return Dataset(LabelSchema.from_names(["a", "b"]),
                   Images(path=[f"{i}.jpg" for i in range(m)], width=[10] * m, height=[10] * m),
                   Annotations(image=np.arange(m), label=[0] * n_a + [1] * n_b))


@pytest.mark.parametrize(("n_a", "n_b", "reachable"), [(46, 68, 7), (158, 3, 3), (22, 172, 20), (5, 8, 44)])
def test_needed_reaches_a_target_just_above_a_reachable_share(n_a: int, n_b: int, reachable: int) -> None:
    # the target is the next float above the share after `reachable` more: that many fall short by one ulp.
    # A 1e-9 tolerance in the closed form used to answer `reachable`, and the class stayed rare after them.
    s = float(np.nextafter((n_a + reachable) / (n_a + n_b + reachable), 1.0))
    r = balance(_two_classes(n_a, n_b), target_share=s, rare_share=s)
    x = int(r.needed[0])
    assert x == _smallest_x(n_a, n_a + n_b, s) == reachable + 1
    assert not balance(_two_classes(n_a + x, n_b), rare_share=s).rare[0]
    assert balance(_two_classes(n_a + x - 1, n_b), rare_share=s).rare[0]


def test_needed_on_round_targets_is_the_closed_form() -> None:
    # (n + x) / (N + x) >= s  <=>  x >= (s N - n) / (1 - s), exact in rationals for these targets
    from fractions import Fraction

    for n_a, n_b in ((3, 16), (2, 6), (1, 99), (0, 7), (10, 10)):
        for s in ("0.1", "0.2", "0.25", "0.4", "0.5", "0.6"):
            f = Fraction(s)
            x = max(0, math.ceil((f * (n_a + n_b) - n_a) / (1 - f)))
            assert balance(_two_classes(n_a, n_b), target_share=float(s)).needed[0] == x, (n_a, n_b, s)


@pytest.mark.parametrize("t", [float("nan"), float("inf"), -0.5])
def test_repeat_threshold_must_be_a_finite_number(t: float) -> None:
    # NaN used to be taken and made every repeat factor and the epoch size NaN; inf made them infinite
    with pytest.raises(MaslowError, match="repeat_threshold must be a number >= 0"):
        balance(_two_classes(2, 3), repeat_threshold=t)


def test_split_that_does_not_exist() -> None:
    ds = _two_classes(2, 3)  # no split assigned: "" everywhere
    with pytest.raises(MaslowError, match=r"split must be one of \[''\] \(no image has a split, .*got 'train'"):
        balance(ds, split="train")
    assert balance(ds, split="").remedy_counts.tolist() == [2, 3]
    ds = ds.replace(images=Images(path=ds.images.path, width=ds.images.width, height=ds.images.height,
                                  split=["train", "val", "train", "", "val"]))
    with pytest.raises(MaslowError, match=r"one of \['', 'train', 'val'\] \(omit it for all images\), got 'test'"):
        balance(ds, split="test")


def test_single_class_and_crowd_only() -> None:
    ds = Dataset(LabelSchema.from_names(["a"]), Images(path=["0.jpg", "1.jpg"], width=[9, 9], height=[9, 9]),
                 Annotations(image=[0], label=[0], iscrowd=[True], box=[[0.0, 0.0, 3.0, 3.0]]))
    r = balance(ds, repeat_threshold=1.0)
    assert r.remedy_counts.tolist() == [1] and r.share.tolist() == [1.0] and r.rare_classes == ()
    assert r.weights_inverse.tolist() == [1.0] and r.weights_effective.tolist() == [1.0]
    assert r.class_repeat.tolist() == [math.sqrt(1.0 / 0.5)] and r.image_repeat.tolist() == [math.sqrt(2.0), 1.0]


def test_cli_json_equals_the_api(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "s", 20, seed=6)
    io.write(ds, tmp_path / "s" / "annotations.json", "coco")
    args = ["diversity", "balance", str(tmp_path / "s" / "annotations.json"), "--from", "coco", "--split", "train",
            "--beta", "0.9", "--repeat-threshold", "0.4", "--target-share", "0.3"]
    code, out = run_cli([*args, "--json", "--plot", str(tmp_path / "plots")])
    assert code == 0, out
    got = json.loads(out)
    loaded = io.read(tmp_path / "s" / "annotations.json", "coco")
    r = balance(loaded, split="train", beta=0.9, repeat_threshold=0.4, target_share=0.3)
    assert got.pop("plots") == [str(tmp_path / "plots" / "balance.png")]
    assert got == json.loads(json_text(r.to_dict()))
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["balance.png"]  # written atomically: no temp left
    code, out = run_cli(args)
    assert code == 0, out
    text = " ".join(out.split())
    assert f"{got['n_repeated_images']} of {got['n_images']} images repeated" in text
    assert f"epoch of {got['epoch_size']:.1f} images" in text
    code, out = run_cli([*args, "--repeat-threshold", "nan"])
    assert code == 2 and "diversity balance: --repeat-threshold must be a number >= 0" in out
