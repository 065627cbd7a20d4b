"""Consensus scoring: planted errors of each type ranked first, invariance to batches and to squeezed confidences,
classification vs cleanlab, multi-label tags, attributes, instance and semantic masks, summaries, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.metrics._iou import segm_masks
from maslow.metrics._segm import Runs
from maslow.quality import QualityIssues, estimate_error_rates, find_label_issues, summarize
from maslow.quality.consensus import object_scores
from maslow.sample import shapes


def _model(clean: Dataset, seed: int = 0, fp_per_image: float = 0.5) -> Dataset:
    """Predictions as a decent model would make them: jittered boxes, a few misses and false positives."""
    rng = np.random.default_rng(seed)
    a = clean.annotations
    assert a.box is not None
    n = len(a)
    keep = np.ones(n, bool)
    box = a.box + rng.normal(0, 0.8, (n, 4))
    box[:, 2:] = np.maximum(box[:, 2:], box[:, :2] + 1)
    weak = rng.random(n) < 0.05  # objects the model hardly sees: a low score
    score = np.where(weak, rng.uniform(0.1, 0.4, n), rng.uniform(0.55, 0.99, n))
    fp_img = np.repeat(np.arange(clean.n_images), rng.poisson(fp_per_image, clean.n_images))
    xy = rng.uniform(0, 100, (len(fp_img), 2))
    fp_box = np.c_[xy, xy + rng.uniform(6, 20, (len(fp_img), 2))]
    ann = Annotations.sort_rows(image=np.r_[a.image[keep], fp_img], label=np.r_[a.label[keep], rng.integers(0, 3, len(fp_img))],
                                box=np.r_[box, fp_box], score=np.r_[score, rng.uniform(0.05, 0.4, len(fp_img))],
                                source="model")
    return clean.replace(annotations=ann)


def _clean(n_images: int = 60) -> Dataset:
    ds = shapes(n_images, seed=3)
    a = ds.annotations
    assert a.box is not None
    keep = ~np.asarray(a.iscrowd)
    a = a.take(np.flatnonzero(keep))
    return ds.replace(annotations=Annotations(image=a.image, label=a.label, box=a.box, mask=a.mask,
                                              extra={"coco_id": np.arange(1, len(a) + 1)}))


def _plant(clean: Dataset) -> tuple[Dataset, dict[str, int], tuple[int, np.ndarray]]:
    """A class swap, a shifted box, a spurious box and a dropped box; rows are those of the noisy truth."""
    a = clean.annotations
    assert a.box is not None
    area = (a.box[:, 2] - a.box[:, 0]) * (a.box[:, 3] - a.box[:, 1])
    big = np.argsort(-area, kind="stable")
    swap, shift, drop = int(big[0]), int(big[1]), int(big[2])
    label = a.label.copy()
    label[swap] = (label[swap] + 1) % 3
    box = a.box.copy()
    w, h = box[shift, 2] - box[shift, 0], box[shift, 3] - box[shift, 1]
    box[shift] += [0.45 * w, 0.45 * h, 0.45 * w, 0.45 * h]
    keep = np.ones(len(a), bool)
    keep[drop] = False
    empty = int(np.setdiff1d(np.arange(clean.n_images), a.image)[0])
    kind = np.zeros(len(a), np.int64)
    kind[swap], kind[shift] = 1, 2
    ann = Annotations.sort_rows(image=np.r_[a.image[keep], empty], label=np.r_[label[keep], 0],
                                box=np.r_[box[keep], [[60.0, 40.0, 90.0, 70.0]]],
                                extra={"kind": np.r_[kind[keep], 3]})
    noisy = clean.replace(annotations=ann)
    k = np.asarray(ann.extra["kind"])
    rows = {"wrong_class": int(np.flatnonzero(k == 1)[0]), "low_iou": int(np.flatnonzero(k == 2)[0]),
            "extra": int(np.flatnonzero(k == 3)[0])}
    return noisy, rows, (int(a.image[drop]), a.box[drop])


def test_planted_object_errors_rank_first() -> None:
    clean = _clean()
    pred = _model(clean)
    noisy, rows, (drop_img, drop_box) = _plant(clean)
    issues = find_label_issues(noisy, pred, iou_type="bbox")
    assert isinstance(issues, QualityIssues) and set(issues.type.tolist()) <= {
        "wrong_class", "missing", "extra", "low_iou", "ambiguous"}
    for t, r in rows.items():
        top = issues.of_type(t)
        assert int(top.annotation[0]) == r, (t, top.rows()[:3])
    wrong = issues.of_type("wrong_class")
    assert wrong.label[0] == clean.annotations.label[np.flatnonzero(noisy.annotations.extra["kind"] == 1)[0]] \
        or wrong.label[0] >= 0
    miss = issues.of_type("missing")
    assert miss.annotation[0] == -1 and miss.image[0] == drop_img
    np.testing.assert_allclose(miss.box[0], drop_box, atol=4)
    low = issues.of_type("low_iou")
    assert not np.isnan(low.box[0]).any()
    # the four planted errors are among the six highest-scored findings of the whole table (objects the model
    # hardly sees, scored low, rank near a planted extra box: the model cannot tell them apart)
    top6 = {(t, int(a)) for t, a in zip(issues.type[:6].tolist(), issues.annotation[:6].tolist(), strict=True)}
    assert top6 >= {("wrong_class", rows["wrong_class"]), ("low_iou", rows["low_iou"]), ("extra", rows["extra"]),
                    ("missing", -1)}
    assert np.all(np.diff(issues.score) <= 0) and issues.score.max() <= 1


def test_scores_invariant_to_squeezed_confidences() -> None:
    clean = _clean()
    pred = _model(clean)
    noisy, _, _ = _plant(clean)
    s = pred.annotations.score
    assert s is not None
    base = object_scores(noisy, pred, iou_type="bbox")
    for squeezed in (0.5 + 0.1 * (s - 0.5), 1 / (1 + np.exp(-(s - 0.5) / 20))):
        p2 = pred.replace(annotations=pred.annotations.with_columns(score=squeezed))
        other = object_scores(noisy, p2, iou_type="bbox")
        for t in base.annotation:
            np.testing.assert_array_equal(base.annotation[t], other.annotation[t])
        np.testing.assert_array_equal(base.missing, other.missing)


def test_scores_do_not_depend_on_batches() -> None:
    clean = _clean()
    pred = _model(clean)
    noisy, _, _ = _plant(clean)
    whole = find_label_issues(noisy, pred, iou_type="bbox", min_score=0.0)
    half = noisy.n_images // 2
    parts = []
    for idx in (np.arange(half), np.arange(half, noisy.n_images)):
        t, p = noisy.select_images(idx), pred.select_images(idx)
        iss = find_label_issues(t, p, iou_type="bbox", min_score=0.0, reference=(noisy, pred))
        t_rows = np.flatnonzero(np.isin(noisy.annotations.image, idx))
        parts.append({(int(idx[i]), int(t_rows[a]) if a >= 0 else -1, ty, round(float(sc), 12))
                      for i, a, ty, sc in zip(iss.image.tolist(), iss.annotation.tolist(), iss.type.tolist(),
                                              iss.score.tolist(), strict=True) if ty != "missing"})
    full = {(int(i), int(a), ty, round(float(sc), 12)) for i, a, ty, sc in
            zip(whole.image.tolist(), whole.annotation.tolist(), whole.type.tolist(), whole.score.tolist(),
                strict=True) if ty != "missing"}
    assert parts[0] | parts[1] == full
    # missing objects: same scores per image too
    miss_whole = sorted(whole.of_type("missing").score.round(12).tolist())
    miss_parts = []
    for idx in (np.arange(half), np.arange(half, noisy.n_images)):
        iss = find_label_issues(noisy.select_images(idx), pred.select_images(idx), iou_type="bbox", min_score=0.0,
                                reference=(noisy, pred))
        miss_parts += iss.of_type("missing").score.round(12).tolist()
    assert sorted(miss_parts) == miss_whole


def test_instance_masks_use_mask_iou() -> None:
    clean = _clean(30)
    a = clean.annotations
    label = a.label.copy()
    label[0] = (label[0] + 1) % 3
    noisy = clean.replace(annotations=a.with_columns(label=label),
                          schema=shapes(1).schema)
    pred = clean.replace(annotations=a.with_columns(score=np.linspace(0.6, 0.95, len(a)), source="model"))
    issues = find_label_issues(noisy, pred, iou_type="segm")
    top = issues.of_type("wrong_class")
    assert int(top.annotation[0]) == 0 and noisy.schema.names[int(top.label[0])] == clean.schema.names[a.label[0]]


@pytest.mark.parametrize("n_images", [12, 40])
def test_instance_masks_same_issues_with_and_without_the_mask_kernel(monkeypatch: pytest.MonkeyPatch,
                                                                    n_images: int) -> None:
    """The run-length kernel (metrics._segm) and pycocotools give the same mask IoUs, so the same issues: pairs,
    ownership, and the mask NMS among missing-object candidates (a dropped annotation, duplicated predictions)."""
    pytest.importorskip("maslow._native.rle")
    clean = _clean(n_images)
    a = clean.annotations
    label = a.label.copy()
    label[1] = (label[1] + 1) % 3
    keep = np.ones(len(a), bool)
    keep[[0, 4]] = False
    noisy = clean.replace(annotations=a.with_columns(label=label).take(np.flatnonzero(keep)))
    # the dropped objects predicted twice (overlapping candidates); object 2 not at all (extra)
    dup = np.sort(np.r_[np.setdiff1d(np.arange(len(a)), [2]), [0, 4]])
    score = np.linspace(0.5, 0.97, len(dup))
    pred = clean.replace(annotations=a.take(dup).with_columns(score=score, source="model"))
    runs = []
    for flag in ("1", "0"):
        monkeypatch.setenv("MASLOW_NATIVE", flag)
        iss = find_label_issues(noisy, pred, iou_type="segm", min_score=0.0)
        runs.append(sorted(zip(iss.type.tolist(), iss.annotation.tolist(), iss.score.round(12).tolist(),
                               strict=True)))
    assert runs[0] == runs[1]
    assert {t for t, _, _ in runs[0]} >= {"missing", "extra"}
    monkeypatch.setenv("MASLOW_NATIVE", "1")
    assert isinstance(segm_masks(pred, np.arange(len(dup)), "pred"), Runs)  # the kernel path was the one compared


def _cls_data(n: int = 600, k: int = 4, seed: int = 0) -> tuple[Dataset, Dataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 2.5
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    noisy = y.copy()
    flip = rng.choice(n, n // 20, replace=False)
    noisy[flip] = (y[flip] + rng.integers(1, k, len(flip))) % k
    schema = LabelSchema.from_names([f"c{i}" for i in range(k)], task=Task.CLASSIFICATION)
    images = Images(path=obj_array([f"{i}.png" for i in range(n)]), width=np.ones(n, np.int64),
                    height=np.ones(n, np.int64))
    truth = Dataset(schema, images, Annotations(image=np.arange(n), label=noisy))
    pred = truth.replace(annotations=Annotations(image=np.arange(n), label=p.argmax(1), score=p.max(1),
                                                 extra={"probs": p}, source="model"))
    err = np.zeros(n, bool)
    err[flip] = noisy[flip] != y[flip]
    return truth, pred, err


def _ap(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(-s, kind="stable")
    hits = y[order]
    prec = np.cumsum(hits) / np.arange(1, len(y) + 1)
    return float((prec * hits).sum() / max(hits.sum(), 1))


def test_classification_wrong_labels_vs_cleanlab() -> None:
    truth, pred, err = _cls_data()
    issues = find_label_issues(truth, pred)  # the CLI's call: the ranked table a reviewer reads
    s = np.zeros(truth.n_images)
    s[issues.image] = issues.score
    ap = _ap(err, s)
    assert ap > 0.8
    top = issues.top(10)
    assert err[top.image].mean() >= 0.8 and set(top.type.tolist()) == {"wrong_class"}
    assert all(names.startswith("relabel as") for names in top.suggestion.tolist())
    # squeezed probabilities (any monotone map, the same for every entry): the same table
    p = pred.annotations.extra["probs"]
    for squeezed in (0.5 + 0.1 * (p - 0.5), np.sqrt(p), np.log(p)):
        other = pred.replace(annotations=pred.annotations.with_columns(extra={"probs": squeezed}))
        again = find_label_issues(truth, other)
        np.testing.assert_array_equal(again.image, issues.image)
        np.testing.assert_allclose(again.score, issues.score, rtol=0, atol=1e-12)
        assert again.type.tolist() == issues.type.tolist()
    # batches: a part scored against the whole set's calibration gives the whole run's rows
    part = np.arange(100, 300)
    sub = find_label_issues(truth.select_images(part), pred.select_images(part), min_score=0.0,
                            reference=(truth, pred))
    whole = find_label_issues(truth, pred, min_score=0.0)
    w = np.zeros(truth.n_images)
    w[whole.image] = whole.score
    got = np.zeros(len(part))
    got[sub.image] = sub.score
    np.testing.assert_allclose(got, w[part], rtol=0, atol=1e-12)
    cleanlab = pytest.importorskip("cleanlab.rank")
    cl = 1 - cleanlab.get_label_quality_scores(truth.annotations.label, p)
    assert ap >= _ap(err, cl) - 0.03  # a calibrated simulated model: on a par (see test_consensus_reference)


def test_multilabel_tags_and_attributes() -> None:
    rng = np.random.default_rng(1)
    n, k = 200, 3
    tags = rng.random((n, k)) < 0.4
    probs = np.clip(np.where(tags, rng.uniform(0.6, 1, (n, k)), rng.uniform(0, 0.4, (n, k))), 0, 1)
    noisy = tags.copy()
    noisy[5, 0] = not noisy[5, 0]
    noisy[9, 2] = not noisy[9, 2]
    img, lab = np.nonzero(noisy)
    schema = LabelSchema.from_names(["sky", "sea", "sand"], task=Task.MULTILABEL)
    images = Images(path=obj_array([f"{i}.png" for i in range(n)]), width=np.ones(n, np.int64),
                    height=np.ones(n, np.int64))
    truth = Dataset(schema, images, Annotations(image=img, label=lab))
    pi, pl = np.nonzero(np.ones((n, k), bool))
    pred = truth.replace(annotations=Annotations(image=pi, label=pl, score=probs[pi, pl], source="model"))
    issues = find_label_issues(truth, pred)
    found = {(int(i), str(t)) for i, t in zip(issues.image[:2].tolist(), issues.type[:2].tolist(), strict=True)}
    want = {(5, "extra" if noisy[5, 0] else "missing"), (9, "extra" if noisy[9, 2] else "missing")}
    assert found == want
    # attributes: one flipped boolean value among model probabilities
    ds = _clean(20)
    a = ds.annotations
    occluded = rng.random(len(a)) < 0.3
    p_occ = np.where(occluded, rng.uniform(0.7, 1, len(a)), rng.uniform(0, 0.3, len(a)))
    flipped = occluded.copy()
    flipped[4] = not flipped[4]
    truth_a = ds.replace(annotations=a.with_columns(attributes={"occluded": obj_array(flipped.tolist())}))
    pred_a = ds.replace(annotations=a.with_columns(attributes={"occluded": obj_array(p_occ.tolist())}))
    iss = find_label_issues(truth_a, pred_a, attributes=["occluded"])
    assert int(iss.annotation[0]) == 4 and "occluded" in iss.reason[0]


def test_semantic_regions() -> None:
    h, w = 20, 30
    schema = LabelSchema.from_names(["road", "car", "tree"], task=Task.SEMANTIC_SEGMENTATION)
    images = Images(path=obj_array(["a.png", "b.png"]), width=[w, w], height=[h, h])
    t_img, t_lab, t_mask, p_img, p_lab, p_mask = [], [], [], [], [], []
    for i in range(2):
        truth_map = np.zeros((h, w), np.int64)
        truth_map[5:15, 5:15] = 1
        pred_map = truth_map.copy()
        if i == 1:
            truth_map[:, 20:] = 0  # the truth calls a tree "road"
            pred_map[:, 20:] = 2
        for c in range(3):
            if (truth_map == c).any():
                t_img.append(i), t_lab.append(c), t_mask.append(M.encode(truth_map == c))
            if (pred_map == c).any():
                p_img.append(i), p_lab.append(c), p_mask.append(M.encode(pred_map == c))
    truth = Dataset(schema, images, Annotations(image=t_img, label=t_lab, mask=obj_array(t_mask)))
    pred = Dataset(schema, images, Annotations(image=p_img, label=p_lab, mask=obj_array(p_mask), source="model"))
    issues = find_label_issues(truth, pred)
    assert len(issues) >= 1
    r = issues.rows(names=truth.schema.names)[0]
    assert r["image"] == 1 and r["type"] in ("wrong_class", "missing")
    assert "tree" in r["reason"] + r["suggestion"]["text"]
    assert issues.box[0].tolist() == [20.0, 0.0, 30.0, 20.0]


def test_summaries_and_error_rates() -> None:
    clean = _clean()
    noisy, rows, _ = _plant(clean)
    issues = find_label_issues(noisy, _model(clean), iou_type="bbox")
    summary = summarize(issues, noisy, threshold=0.5)
    assert summary.image_score.shape == (noisy.n_images,)
    i = noisy.annotations.image[rows["extra"]]  # each image's score: its highest finding's
    assert summary.image_score[i] == pytest.approx(issues.score[issues.image == i].max())
    assert summary.image_score.max() == pytest.approx(issues.score.max())
    assert sum(c["wrong_class"] for c in summary.class_counts.values()) >= 1
    rates = estimate_error_rates(issues, noisy)
    assert set(rates) == set(noisy.schema.names)
    assert all(0 <= v <= 1 for r in rates.values() for v in r.values())
    assert summary.to_dict()["class_totals"] == {n: int((noisy.annotations.label == c).sum())
                                                 for c, n in enumerate(noisy.schema.names)}


def test_bad_input_names_the_problem() -> None:
    clean = _clean(10)
    pred = _model(clean)
    with pytest.raises(InvalidDatasetError, match="images"):
        find_label_issues(clean, pred.select_images(np.arange(5)))
    other = pred.replace(schema=LabelSchema.from_names(["circle", "square", "hexagon"]))
    with pytest.raises(InvalidDatasetError, match="hexagon"):
        find_label_issues(clean, other, iou_type="bbox")
    with pytest.raises(InvalidDatasetError, match="iou_type"):
        find_label_issues(clean, pred, iou_type="oks")


def test_quality_issues_stay_backwards_compatible() -> None:
    plain = QualityIssues.block("x", "warning", image=[0, 1], score=[0.2, 0.9], reason="r")
    assert plain.box is not None and np.isnan(plain.box).all() and plain.label is not None
    assert (plain.label == -1).all()
    built = QualityIssues.build([plain, QualityIssues.block("y", "info", image=[2], score=[0.5], reason="r",
                                                             box=[[1.0, 2.0, 3.0, 4.0]], label=[1])])
    assert built.type.tolist() == ["x", "y", "x"] and built.box[1].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert set(built.rows(names=["a", "b"])[0]) == {"image", "annotation", "other", "type", "severity", "score",
                                                    "reason", "suggestion"}


def test_ambiguous_when_the_model_supports_two_classes() -> None:
    clean = _clean()
    pred = _model(clean)
    a, pa = clean.annotations, pred.annotations
    assert a.box is not None and pa.box is not None and pa.score is not None
    r = int(np.argmax((a.box[:, 2] - a.box[:, 0]) * (a.box[:, 3] - a.box[:, 1])))
    mine = np.flatnonzero((pa.image == a.image[r]) & (pa.label == a.label[r]))
    ann = Annotations.sort_rows(image=np.r_[pa.image, a.image[r]], label=np.r_[pa.label, (a.label[r] + 1) % 3],
                                box=np.r_[pa.box, a.box[r:r + 1]], score=np.r_[pa.score, pa.score[mine].max()],
                                source="model")
    issues = find_label_issues(clean, pred.replace(annotations=ann), iou_type="bbox")
    amb = issues.of_type("ambiguous")
    assert len(amb) and int(amb.annotation[0]) == r and int(amb.label[0]) == (a.label[r] + 1) % 3


def test_predictions_without_scores_count_as_one_confidence_level() -> None:
    clean = _clean()
    noisy, rows, _ = _plant(clean)
    pred = _model(clean)
    unscored = pred.replace(annotations=pred.annotations.with_columns(score=None))
    issues = find_label_issues(noisy, unscored, iou_type="bbox")
    assert int(issues.of_type("wrong_class").annotation[0]) == rows["wrong_class"]
    assert int(issues.of_type("extra").annotation[0]) == rows["extra"]


@pytest.mark.parametrize("seed", range(5))
def test_class_tables_equal_a_brute_force_count(seed: int) -> None:
    """summarize's per-class counts, error and flagged rates against a loop over the issues one by one (random
    issues of every type, some of rule-check types that the tables leave out, some of no class)."""
    from maslow.quality.consensus import ISSUE_TYPES

    rng = np.random.default_rng(seed)
    truth = _clean(12)
    n = 300
    a_rows = rng.integers(-1, truth.n_annotations, n)
    types = rng.choice([*ISSUE_TYPES, "duplicate_box"], n)
    text = np.full(n, "", dtype=object)
    issues = QualityIssues(image=np.where(a_rows >= 0, truth.annotations.image[np.maximum(a_rows, 0)],
                                          rng.integers(0, truth.n_images, n)),
                           annotation=a_rows, other=np.full(n, -1), type=types.astype(object),
                           severity=np.full(n, "warning", dtype=object), score=rng.random(n), reason=text,
                           suggestion=text, label=np.where(a_rows >= 0, -1, rng.integers(-1, len(truth.schema.names),
                                                                                        n)))
    s = summarize(issues, truth, threshold=0.4)
    for c, name in enumerate(truth.schema.names):
        total = max(int((truth.annotations.label == c).sum()), 1)
        for t in ISSUE_TYPES:
            mine = [k for k in range(n) if types[k] == t and (
                truth.annotations.label[a_rows[k]] if a_rows[k] >= 0 else issues.label[k]) == c]
            assert s.class_counts[name][t] == sum(issues.score[k] >= 0.4 for k in mine)
            assert s.error_rate[name][t] == pytest.approx(sum(issues.score[k] for k in mine) / total, abs=1e-12)
            assert s.flagged_rate[name][t] == s.class_counts[name][t] / total
