"""An annotation no prediction touches: its ``extra`` score is the model's expected recall, not 1.

A detector that misses real objects makes its misses look exactly like boxes on nothing; how much its silence
weighs is what the data says about its recall: the mean over the annotations of how well its predictions explain
each (``ObjectScores.explained``: a sighting by a prediction right 60% of the time counts 0.6).
"""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.quality import find_label_issues
from maslow.quality.consensus import object_scores

BOX = [10.0, 10.0, 40.0, 40.0]
NOTHING = [60.0, 60.0, 90.0, 90.0]  # an empty corner: the spurious box


def _images(m: int) -> Images:
    return Images(path=obj_array([f"{i}.jpg" for i in range(m)]), width=np.full(m, 100), height=np.full(m, 100))


def _case(n_missed: int, m: int = 30, seed: int = 0) -> tuple[Dataset, Dataset, int]:
    """One object per image, predicted exactly except on the first ``n_missed`` images after image 0; a spurious
    box on image 0. Returns truth, predictions and the spurious row."""
    schema = LabelSchema.from_names(["a", "b"])
    truth = Dataset(schema, _images(m), Annotations.sort_rows(
        image=np.r_[np.arange(m), 0], label=np.zeros(m + 1, np.int64), box=np.array([BOX] * m + [NOTHING])))
    seen = np.r_[0, np.arange(1 + n_missed, m)]
    score = np.random.default_rng(seed).uniform(0.6, 0.99, m)[seen]
    pred = Dataset(schema, _images(m), Annotations(image=seen, label=np.zeros(len(seen), np.int64),
                                                   box=np.array([BOX] * len(seen)), score=score))
    ta = truth.annotations
    assert ta.box is not None
    spurious = int(np.flatnonzero(ta.box[:, 0] == NOTHING[0])[0])
    return truth, pred, spurious


def test_an_annotation_no_prediction_touches_scores_the_models_expected_recall() -> None:
    truth, pred, r = _case(n_missed=3)
    s = object_scores(truth, pred, iou_type="bbox")
    assert s.explained[r] == 0.0
    # the expected recall: the mean of how well the model explains each object (q of its prediction; here every
    # prediction is right, q = 1), 0 for the 4 of 31 it does not see
    assert s.recall == pytest.approx(s.explained.mean(), abs=1e-12)
    assert s.recall == pytest.approx(27 / 31, abs=1e-12)
    unseen = np.flatnonzero(s.explained == 0)
    assert len(unseen) == 4 and r in unseen
    np.testing.assert_allclose(s.annotation["extra"][unseen], s.recall, rtol=0, atol=1e-12)  # not 1
    np.testing.assert_allclose(s.annotation["extra"], s.recall * (1 - s.explained), rtol=0, atol=1e-12)
    extra = find_label_issues(truth, pred, iou_type="bbox").of_type("extra")
    reason = dict(zip(extra.annotation.tolist(), extra.reason, strict=True))[r]
    assert reason == (f"'a': the model sees no object of any class here (it sees {100 * s.recall:.0f}% of the "
                      "labelled objects)")


def test_the_more_objects_the_model_misses_the_less_its_silence_weighs() -> None:
    scores = []
    for n_missed in (0, 3, 9, 15):
        truth, pred, r = _case(n_missed)
        s = object_scores(truth, pred, iou_type="bbox")
        scores.append(s.annotation["extra"][r])
        # the missed real objects look like the spurious box: the model cannot tell them apart
        assert np.all(s.annotation["extra"][s.explained == 0] == scores[-1])
    assert np.all(np.diff(scores) < 0), scores
    assert scores[0] > 0.75 and scores[-1] < 0.5  # all but one object seen, confidently; then half of them missed


def _simulated(seed: int) -> tuple[Dataset, Dataset, np.ndarray, np.ndarray]:
    """120 images of 1 to 4 objects; the model misses 10% of them outright and finds the rest confidently (two
    false alarms in ten images, scored low). Planted: 6 swapped classes, 6 dropped boxes, 6 boxes on nothing.
    Returns the noisy truth, the predictions, whether each noisy row is planted, and the dropped boxes."""
    rng = np.random.default_rng(seed)
    m, k = 120, 3
    img = np.repeat(np.arange(m), rng.integers(1, 5, m))
    n = len(img)
    col = rng.integers(0, 4, n)  # one object per cell of a 4 x 1 grid: no two overlap
    box = np.c_[col * 25 + 2.0, np.full(n, 30.0), col * 25 + 22.0, np.full(n, 55.0)]
    lab = rng.integers(0, k, n)
    keep_cells = np.ones(n, bool)
    for i in range(m):  # one object per cell
        rows = np.flatnonzero(img == i)
        _, first = np.unique(col[rows], return_index=True)
        keep_cells[rows] = False
        keep_cells[rows[first]] = True
    img, box, lab = img[keep_cells], box[keep_cells], lab[keep_cells]
    n = len(img)
    seen = rng.random(n) >= 0.1
    fp = rng.random(m) < 0.2
    p_img = np.r_[img[seen], np.flatnonzero(fp)]
    p_box = np.r_[box[seen] + rng.normal(0, 0.5, (int(seen.sum()), 4)), np.tile([5.0, 70.0, 20.0, 90.0], (fp.sum(), 1))]
    p_score = np.r_[rng.uniform(0.7, 0.99, int(seen.sum())), rng.uniform(0.05, 0.3, int(fp.sum()))]
    p_lab = np.r_[lab[seen], rng.integers(0, k, int(fp.sum()))]
    schema = LabelSchema.from_names(["a", "b", "c"])
    pred = Dataset(schema, _images(m), Annotations.sort_rows(image=p_img, label=p_lab, box=p_box, score=p_score))
    perm = rng.permutation(np.flatnonzero(seen))  # errors planted on objects the model sees
    swap, drop = perm[:6], perm[6:12]
    t_lab = lab.copy()
    t_lab[swap] = (t_lab[swap] + 1) % k
    planted = np.zeros(n, bool)
    planted[swap] = True
    keep = np.ones(n, bool)
    keep[drop] = False
    sp_img = rng.choice(np.flatnonzero(~fp), 6, replace=False)  # a box on nothing, where the model sees nothing
    ann = Annotations.sort_rows(image=np.r_[img[keep], sp_img], label=np.r_[t_lab[keep], np.zeros(6, np.int64)],
                                box=np.r_[box[keep], np.tile([5.0, 70.0, 20.0, 90.0], (6, 1))],
                                extra={"planted": np.r_[planted[keep], np.ones(6, bool)]})
    truth = Dataset(schema, _images(m), ann)
    return truth, pred, np.asarray(ann.extra["planted"], bool), box[drop]


@pytest.mark.parametrize("seed", range(3))
def test_confident_findings_rank_above_the_silence_of_a_model_that_misses_objects(seed: int) -> None:
    truth, pred, planted, dropped = _simulated(seed)
    issues = find_label_issues(truth, pred, iou_type="bbox")
    ok = np.where(issues.annotation >= 0, planted[np.maximum(issues.annotation, 0)], False)
    miss = np.flatnonzero(issues.annotation < 0)
    ok[miss] = [np.abs(dropped - b).max(axis=1).min() < 3 for b in issues.box[miss]]
    # the 12 swapped and dropped objects, each contradicted by a confident prediction, come first; then the 6
    # boxes on nothing tie with the model's own misses (about 28 objects), which it cannot tell apart
    assert ok[:12].all(), list(zip(issues.type[:12].tolist(), ok[:12].tolist(), strict=True))
    unseen = (issues.type == "extra") & (issues.score >= issues.score[issues.type == "extra"].max())
    assert issues.score[unseen].max() < issues.score[:12].min()
    assert int(ok[unseen].sum()) == 6


def test_a_part_scored_against_the_whole_takes_the_wholes_recall() -> None:
    truth, pred, r = _case(n_missed=9)
    whole = object_scores(truth, pred, iou_type="bbox")
    part_t, part_p = truth.select_images(np.array([0])), pred.select_images(np.array([0]))
    alone = object_scores(part_t, part_p, iou_type="bbox")
    with_ref = object_scores(part_t, part_p, iou_type="bbox", reference=(truth, pred))
    assert with_ref.recall == whole.recall
    ta = truth.annotations
    rows = np.flatnonzero(ta.image == 0)
    np.testing.assert_array_equal(with_ref.annotation["extra"], whole.annotation["extra"][rows])
    assert with_ref.annotation["extra"][rows.tolist().index(r)] == whole.recall  # the box on nothing
    assert alone.recall == 0.5 != whole.recall  # alone: its own two objects, one seen (q = 1)


def test_a_model_that_sees_nothing_is_no_evidence() -> None:
    truth, pred, _ = _case(n_missed=0)
    nothing = pred.replace(annotations=pred.annotations.take(np.zeros(0, np.int64)))
    s = object_scores(truth, nothing, iou_type="bbox")
    assert s.recall == 0.0 and not s.annotation["extra"].any()
    assert len(find_label_issues(truth, nothing, iou_type="bbox")) == 0
    # no annotation to score: the recall is 1 (nothing to scale)
    empty = truth.replace(annotations=truth.annotations.take(np.zeros(0, np.int64)))
    assert object_scores(empty, pred, iou_type="bbox").recall == 1.0
