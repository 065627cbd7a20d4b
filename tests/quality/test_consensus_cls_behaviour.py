"""Single-label consensus scoring, what a reviewer sees: a calibrated, accurate model yields findings around its
disagreements only, planted flips rank above images that are ambiguous but correct, the type follows what the model
backs, and a class the model always scores low is not flagged for it."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.quality import QualityIssues, find_label_issues


def _data(y: np.ndarray, p: np.ndarray) -> tuple[Dataset, Dataset]:
    n, k = p.shape
    schema = LabelSchema.from_names([f"c{i}" for i in range(k)], task=Task.CLASSIFICATION)
    images = Images(path=obj_array([f"{i}.png" for i in range(n)]), width=np.ones(n, np.int64),
                    height=np.ones(n, np.int64))
    truth = Dataset(schema, images, Annotations(image=np.arange(n), label=y))
    pred = truth.replace(annotations=Annotations(image=np.arange(n), label=p.argmax(1), score=p.max(1),
                                                 extra={"probs": p}, source="model"))
    return truth, pred


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _image_scores(issues: QualityIssues, n: int) -> np.ndarray:
    s = np.zeros(n)
    s[issues.image] = issues.score
    return s


def test_calibrated_accurate_model_reports_about_its_disagreements() -> None:
    # labels drawn from the model's own probabilities: the model is calibrated, about 97% accurate, and every
    # label it disagrees with is as likely as it says; most probabilities are near 0 (as a trained network's)
    rng = np.random.default_rng(0)
    n, k = 4000, 10
    truth_class = rng.integers(0, k, n)
    logits = rng.normal(0, 1.5, (n, k))
    logits[np.arange(n), truth_class] += 7.0
    p = _softmax(logits)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    disagree = p.argmax(1) != y
    assert 60 <= disagree.sum() <= 250
    issues = find_label_issues(*_data(y, p))  # the CLI's call
    assert len(issues) <= 3 * disagree.sum()  # was every image (all "ambiguous")
    assert issues.counts().get("wrong_class", 0) <= 1.5 * disagree.sum()
    # what is reported is about the disagreements: they fill the top of the ranking
    top = issues.image[:disagree.sum()]
    assert disagree[top].mean() >= 0.8
    wrong = issues.of_type("wrong_class")
    assert disagree[wrong.image].mean() >= 0.95
    # the expected number of wrong labels is what the scores add up to, not ~every image
    assert issues.score.sum() <= 2 * disagree.sum()


def _mixture(seed: int, n: int = 3000, k: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Probabilities, noisy labels, true classes, the ambiguous images (the model splits its belief between their
    class and the next one) and the flipped ones (5% of the others; the model backs their true class)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 5.0
    amb = rng.random(n) < 0.15
    rows = np.flatnonzero(amb)
    logits[rows, (y[amb] + 1) % k] = logits[rows, y[amb]] + rng.normal(0, 0.3, amb.sum())
    flip = ~amb & (rng.random(n) < 0.05)
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, k, flip.sum())) % k
    return _softmax(logits), noisy, y, amb, flip


def test_planted_flips_rank_above_ambiguous_but_correct_images() -> None:
    p, noisy, y, amb, flip = _mixture(1)
    n = len(y)
    issues = find_label_issues(*_data(noisy, p))
    s = _image_scores(issues, n)
    assert s[flip].min() > s[amb].max()  # every flip above every ambiguous-but-correct image
    wrong = issues.of_type("wrong_class")
    flipped = np.isin(wrong.image, np.flatnonzero(flip))
    assert flipped.sum() == flip.sum() and np.array_equal(wrong.label[flipped], y[wrong.image[flipped]])
    # the ambiguous images are reported, nearly all as ambiguous (a few split 1:2 and more: the other class wins)
    on_amb = np.isin(issues.image, np.flatnonzero(amb))
    assert on_amb.sum() >= 0.9 * amb.sum()
    assert (issues.type[on_amb] == "ambiguous").mean() >= 0.9
    assert issues.of_type("ambiguous").score.max() < 0.5


def test_type_follows_what_the_model_backs() -> None:
    p, noisy, y, amb, flip = _mixture(2)
    rows = np.arange(len(y))
    top2 = np.sort(p, axis=1)[:, -2:]
    probe = {"confident_other": int(np.flatnonzero(flip & (p[rows, y] > 0.9))[0]),
             "split": int(np.flatnonzero(amb & (np.abs(top2[:, 1] - top2[:, 0]) < 0.05))[0]),
             "confident_label": int(np.flatnonzero(~amb & ~flip & (p[rows, noisy] > 0.95))[0])}
    issues = find_label_issues(*_data(noisy, p))
    got = {name: issues.type[issues.image == i].tolist() for name, i in probe.items()}
    assert got == {"confident_other": ["wrong_class"], "split": ["ambiguous"], "confident_label": []}
    i = probe["confident_other"]
    row = issues.image.tolist().index(i)
    assert issues.label[row] == y[i] and issues.suggestion[row] == f"relabel as 'c{y[i]}'"
    assert f"labelled 'c{noisy[i]}'; the model says 'c{y[i]}'" in issues.reason[row]
    i = probe["split"]
    row = issues.image.tolist().index(i)
    assert issues.suggestion[row] == f"check: 'c{noisy[i]}' or 'c{(noisy[i] + 1) % 6}'"
    assert issues.severity[row] == "info"
    # one type per image: the types are bands of one score, with or without one_per_annotation
    both = find_label_issues(*_data(noisy, p), one_per_annotation=False)
    assert np.array_equal(both.image, issues.image) and np.array_equal(both.score, issues.score)
    assert len(np.unique(issues.image)) == len(issues)
    with pytest.raises(InvalidDatasetError, match="ambiguous_share"):
        find_label_issues(*_data(noisy, p), ambiguous_share=0.7)
    # the widest setting, 0.5: every image where the other class has the edge is wrong_class, none ambiguous
    wide = find_label_issues(*_data(noisy, p), ambiguous_share=0.5)
    assert wide.type[wide.image == probe["confident_other"]].tolist() == ["wrong_class"]
    assert len(wide.of_type("wrong_class")) > len(issues.of_type("wrong_class"))
    assert wide.counts().get("ambiguous", 0) == 0


def test_a_class_the_model_always_scores_low_is_not_flagged_for_it() -> None:
    # class 0 is hard: its images get p_0 around 0.45 and a runner-up around 0.25, while the other classes get
    # 0.9 and more. Per class, 0.45 is how class 0 looks, so those labels are fine (one rank scale over all
    # probabilities made them all "ambiguous"); real flips still come first.
    rng = np.random.default_rng(3)
    n, k = 3000, 5
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 0.5, (n, k))
    logits[np.arange(n), y] += np.where(y == 0, 1.2, 4.0)
    p = _softmax(logits)
    flip = rng.random(n) < 0.04
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, k, flip.sum())) % k
    issues = find_label_issues(*_data(noisy, p))
    hard_ok = (noisy == 0) & ~flip
    assert np.isin(np.flatnonzero(hard_ok), issues.image).mean() <= 0.1
    s = _image_scores(issues, n)
    top = np.argsort(-s, kind="stable")[:flip.sum()]
    assert flip[top].mean() >= 0.8
