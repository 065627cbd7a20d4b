"""Annotator agreement on image tags (rows without a box): multi-label tags are matched by class, one object per
(image, class); single-label tags stay one object per image (audit 19, finding 2)."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.core.schema import Task
from maslow.quality import CheckConfig, annotator_agreement, check

AGREEMENT = CheckConfig(families=("agreement",))


def _tags(rows: list[tuple[int, int, str]], n_images: int, task: Task = Task.DETECTION,
          names: tuple[str, ...] = ("cat", "dog", "bird")) -> Dataset:
    """rows: (image, class, annotator), in the order the annotators gave them."""
    return Dataset(LabelSchema.from_names(list(names), task=task),
                   Images(path=[f"{i}.jpg" for i in range(n_images)], width=[9] * n_images, height=[9] * n_images),
                   Annotations.sort_rows(image=np.array([r[0] for r in rows]), label=np.array([r[1] for r in rows]),
                                         annotator=np.array([r[2] for r in rows], dtype=object)))


@pytest.mark.parametrize("b_order", [(0, 1), (1, 0)], ids=["same order", "B lists dog first"])
def test_identical_multi_label_answers_agree_whatever_their_order(b_order: tuple[int, int]) -> None:
    rows = [(0, 0, "A"), (0, 1, "A"), *[(0, c, "B") for c in b_order], (1, 0, "A"), (1, 0, "B")]
    ds = _tags(rows, 2)
    res = annotator_agreement(ds)
    assert res is not None
    lab = ds.annotations.label
    units = sorted((int(res.unit_image[u]), int(lab[res.unit_rows[u, 0]]), int(lab[res.unit_rows[u, 1]]))
                   for u in range(len(res.unit_image)))
    assert units == [(0, 0, 0), (0, 1, 1), (1, 0, 0)]  # image 0: cat and dog, both given by A and B
    assert res.precision.tolist() == [1.0, 1.0] and res.recall.tolist() == [1.0, 1.0]
    assert np.nan_to_num(res.image_disagreement).tolist() == [0.0, 0.0]
    assert len(check(ds, config=AGREEMENT)) == 0


def test_a_tag_one_annotator_left_out_is_missed_by_hand() -> None:
    # A: cat dog; B: cat; C: dog cat (3 raters). Objects: (0, cat) by all, (0, dog) by A and C
    ds = _tags([(0, 0, "A"), (0, 1, "A"), (0, 0, "B"), (0, 1, "C"), (0, 0, "C"), (1, 2, "A"), (1, 2, "B")], 2)
    res = annotator_agreement(ds)
    assert res is not None and res.annotators == ("A", "B", "C")
    assert len(res.unit_image) == 3
    assert res.unit_label.tolist() == [0, 1, 2] and res.unit_consensus.all()  # dog: 2 of 3 is a majority
    # B: 2 own tags, both in the consensus; 3 consensus objects on B's images, B gave 2
    np.testing.assert_allclose(res.precision, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(res.recall, [1.0, 2 / 3, 2 / 2])
    assert res.image_disagreement.tolist() == [0.5, 0.0]
    issues = check(ds, config=AGREEMENT)
    assert issues.of_type("annotator_class_disagreement").reason.tolist() == []
    assert issues.of_type("annotator_missed_object").reason.tolist() == ["labelled by A, C but not by B"]
    assert [int(ds.annotations.label[r]) for r in issues.of_type("annotator_missed_object").annotation] == [1]


def test_single_label_tags_still_compare_classes() -> None:
    # one tag per annotator per image: image 0 agrees, image 1 splits cat / dog, image 2 two of three say dog
    ds = _tags([(0, 0, "A"), (0, 0, "B"), (1, 0, "A"), (1, 1, "B"), (2, 1, "A"), (2, 1, "B"), (2, 0, "C")], 3)
    res = annotator_agreement(ds)
    assert res is not None
    assert res.unit_image.tolist() == [0, 1, 2] and res.unit_label.tolist() == [0, -1, 1]
    issues = check(ds, config=AGREEMENT)
    reasons = issues.of_type("annotator_class_disagreement").reason.tolist()
    assert sorted(reasons) == ["C labelled cat; the majority (2 of 3) labelled dog", "no majority class: A cat, B dog"]
    assert len(issues.of_type("annotator_missed_object")) == 0
    # A and B share 3 objects: (cat, cat), (cat, dog), (dog, dog): po 2/3, pe (2*1 + 1*2) / 9 = 4/9
    assert res.cohen_kappa[0, 1] == pytest.approx((2 / 3 - 4 / 9) / (1 - 4 / 9))


def test_the_multilabel_task_makes_single_tags_multi_label() -> None:
    rows = [(0, 0, "A"), (0, 1, "B")]
    single = check(_tags(rows, 1), config=AGREEMENT)
    assert single.of_type("annotator_class_disagreement").reason.tolist() == ["no majority class: A cat, B dog"]
    multi = check(_tags(rows, 1, task=Task.MULTILABEL), config=AGREEMENT)
    assert len(multi.of_type("annotator_class_disagreement")) == 0
    assert sorted(multi.of_type("annotator_missed_object").reason.tolist()) == [
        "labelled by A but not by B", "labelled by B but not by A"]


def test_single_label_alpha_and_kappa_against_krippendorff_and_sklearn() -> None:
    krippendorff = pytest.importorskip("krippendorff")
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    m, people = 40, ("A", "B", "C")
    truth = rng.integers(0, 3, m)
    matrix = np.full((3, m), np.nan)
    rows = []
    for i in range(m):
        for j, who in enumerate(people):
            if rng.random() < 0.8:
                c = int(truth[i] if rng.random() < 0.7 else rng.integers(0, 3))
                matrix[j, i] = c
                rows.append((i, c, who))
    res = annotator_agreement(_tags(rows, m))
    assert res is not None
    shared = (~np.isnan(matrix)).sum(axis=0) >= 2
    assert len(res.unit_image) == int(shared.sum())
    assert res.krippendorff_alpha == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"), abs=1e-12)
    both = ~np.isnan(matrix[0]) & ~np.isnan(matrix[1])
    assert res.cohen_kappa[0, 1] == pytest.approx(sk.cohen_kappa_score(matrix[0, both], matrix[1, both]), abs=1e-12)


def test_multi_label_presence_matches_a_hand_count() -> None:
    # 3 annotators tag 30 images with random subsets of 3 classes; objects are the (image, class) pairs anyone gave
    rng = np.random.default_rng(11)
    rows, given = [], {}
    for i in range(30):
        for who in ("A", "B", "C"):
            tags = [c for c in range(3) if rng.random() < 0.5]
            given[i, who] = set(tags)
            rows += [(i, c, who) for c in rng.permutation(tags).tolist()]
    ds = _tags(rows, 30)
    res = annotator_agreement(ds)
    assert res is not None
    raters = {i: [w for w in "ABC" if given[i, w]] for i in range(30)}
    want = sorted((i, c) for i in range(30) if len(raters[i]) >= 2 for c in set().union(*(given[i, w] for w in "ABC")))
    lab = ds.annotations.label
    got = sorted((int(res.unit_image[u]), int(lab[res.unit_rows[u][res.unit_rows[u] >= 0][0]]))
                 for u in range(len(res.unit_image)))
    assert got == want
    for u in range(len(res.unit_image)):
        i, c = int(res.unit_image[u]), int(lab[res.unit_rows[u][res.unit_rows[u] >= 0][0]])
        by = [w for w in "ABC" if c in given[i, w]]
        assert [res.annotators[j] for j in np.flatnonzero(res.unit_rows[u] >= 0)] == by
        assert res.unit_label[u] == (c if 2 * len(by) > len(raters[i]) else -1)
