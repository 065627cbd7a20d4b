"""label_bias on image-level variables: the image is the unit (a permutation test across images), so objects that
cluster by image do not make random metadata look like a bias (audit 19, finding 1)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.quality import CheckConfig, label_associations
from maslow.quality.bias import check_bias

stats = pytest.importorskip("scipy.stats")

# p < 0.05 with no effect-size floor: the flag is the p-value alone, so the rate under the null is testable
LOOSE = CheckConfig(bias_p=0.05, bias_cramers_v=0.0, annotator_bias_v=0.0)


def _clustered(seed: int, m: int = 20, value_of_scene: bool = False) -> tuple[Dataset, np.ndarray]:
    """Images of one kind of scene each (90% of its 1-24 objects of one class); a camera drawn at random per image,
    or (value_of_scene) given away by the scene."""
    rng = np.random.default_rng(seed)
    scene = rng.integers(0, 4, m)
    counts = rng.integers(1, 25, m)
    image = np.repeat(np.arange(m), counts)
    label = np.where(rng.random(len(image)) < 0.9, scene[image], rng.integers(0, 4, len(image)))
    camera = np.array([f"c{s % 3}" for s in scene] if value_of_scene else rng.choice(["c0", "c1", "c2"], m),
                      dtype=object)
    who = np.array(rng.choice(["ann", "bob", "cy"], m), dtype=object)  # one annotator per image
    ds = Dataset(LabelSchema.from_names(["a", "b", "c", "d"]),
                 Images(path=[f"{i}.jpg" for i in range(m)], width=[9] * m, height=[9] * m,
                        extra={"camera": camera}),
                 Annotations(image=image, label=label, annotator=who[image]))
    return ds, camera


def test_random_image_metadata_is_flagged_at_most_at_the_nominal_rate() -> None:
    flagged = old_flagged = annotator_flagged = 0
    for seed in range(40):
        ds, _ = _clustered(seed)
        found = {s.variable: s for s in label_associations(ds, config=LOOSE)}
        cam = found["camera"]
        assert cam.unit == "image" and cam.n_images == 20 and found["annotator"].unit == "image"
        flagged += cam.flagged
        annotator_flagged += found["annotator"].flagged
        old_flagged += stats.chi2_contingency(cam.table, correction=False).pvalue < 0.05  # annotations as units
    # nominal 5% of 40 is 2; the annotation-level chi-square flags most of them
    assert flagged <= 4 and annotator_flagged <= 4
    assert old_flagged >= 25
    assert all(not s.flagged for seed in range(10) for s in label_associations(_clustered(seed)[0]))


def test_metadata_that_gives_the_scene_away_is_still_flagged() -> None:
    ds, _ = _clustered(0, m=60, value_of_scene=True)
    (issue,) = check_bias(ds).reason.tolist()
    cam = {s.variable: s for s in label_associations(ds)}["camera"]
    assert cam.flagged and cam.n_permutations == 1999 and cam.p_value == pytest.approx(1 / 2000)
    assert "camera" in issue and "1999 shuffles of the values across 60 images" in issue
    chi2, _, dof, _ = stats.chi2_contingency(cam.table, correction=False)
    assert cam.chi2 == pytest.approx(chi2, rel=1e-9) and cam.dof == dof
    assert cam.cramers_v == pytest.approx(stats.contingency.association(cam.table, method="cramer"), rel=1e-9)


def test_permutation_p_agrees_with_exact_enumeration_over_images() -> None:
    # 8 images, 4 per value: every one of the C(8, 4) = 70 assignments is equally likely under the null
    rng = np.random.default_rng(3)
    counts = np.array([3, 1, 4, 2, 5, 2, 3, 1])
    image = np.repeat(np.arange(8), counts)
    label = rng.integers(0, 3, len(image))
    label[image < 3] = 0  # the first images lean to class 0
    site = np.array(["n", "n", "s", "n", "s", "s", "n", "s"], dtype=object)
    ds = Dataset(LabelSchema.from_names(["x", "y", "z"]),
                 Images(path=[f"{i}.jpg" for i in range(8)], width=[9] * 8, height=[9] * 8, extra={"site": site}),
                 Annotations(image=image, label=label))
    (s,) = label_associations(ds)

    def chi2_of(values: np.ndarray) -> float:
        t = np.array([[np.sum((label == c) & (values[image] == v)) for v in ("n", "s")] for c in range(3)])
        t = t[t.sum(1) > 0]
        return float(stats.chi2_contingency(t, correction=False).statistic)

    observed = chi2_of(site)
    assert observed == pytest.approx(s.chi2, rel=1e-9)
    every = []
    for north in itertools.combinations(range(8), 4):
        values = np.array(["s"] * 8, dtype=object)
        values[list(north)] = "n"
        every.append(chi2_of(values))
    exact = float(np.mean(np.asarray(every) >= observed - 1e-9))
    n = s.n_permutations
    assert abs(s.p_value - exact) <= 4 * math.sqrt(exact * (1 - exact) / n) + 2 / n
    assert s.unit == "image" and s.n_images == 8


def test_attributes_use_images_only_when_they_take_one_value_per_image() -> None:
    ds, _ = _clustered(1)
    a = ds.annotations
    rng = np.random.default_rng(0)
    per_image = np.array(rng.choice(["day", "night"], ds.n_images), dtype=object)
    varied = np.array(rng.choice(["yes", "no"], len(a)), dtype=object)
    ds = ds.replace(annotations=a.with_columns(attributes={"light": per_image[a.image], "occluded": varied}))
    found = {s.variable: s for s in label_associations(ds)}
    assert found["attr:light"].unit == "image" and found["attr:light"].n_permutations > 0
    occ = found["attr:occluded"]
    assert occ.unit == "annotation" and occ.n_permutations == 0 and occ.n_images == ds.n_images
    assert occ.p_value == pytest.approx(stats.chi2_contingency(occ.table, correction=False).pvalue, rel=1e-9)
    assert found["annotator"].unit == "image"
    assert found["annotator=ann"].unit == "image" and 0 < found["annotator=ann"].p_value <= 1


def test_a_bias_p_no_shuffle_test_can_reach_is_refused() -> None:
    """Below 1/20,000 no image-level variable could ever flag (the smallest p of 19,999 shuffles), however strong,
    and each one ran all 19,999 shuffles to say so."""
    with pytest.raises(ValueError, match=r"CheckConfig.bias_p: must be at least 5e-05"):
        CheckConfig(bias_p=1e-5)
    assert CheckConfig(bias_p=1 / 20_000).bias_p == 1 / 20_000
