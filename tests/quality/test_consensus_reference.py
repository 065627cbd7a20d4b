"""Consensus scoring against independent references: classification's documented formulas computed one by one
(the isotonic support by the max-min formula, the label confidence by scipy's optimiser), a per-image brute force
of the documented detection formulas, hand-built planted errors and the monotonicity the formulas promise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.quality import find_label_issues
from maslow.quality._consensus_cls import class_support, label_confidence, label_evidence
from maslow.quality.consensus import object_scores

# -- classification ------------------------------------------------------------------------------------


def _cls(y: np.ndarray, p: np.ndarray, labelled: np.ndarray | None = None) -> tuple[Dataset, Dataset]:
    n, k = p.shape
    schema = LabelSchema.from_names([f"c{i}" for i in range(k)], task=Task.CLASSIFICATION)
    images = Images(path=obj_array([f"{i}.png" for i in range(n)]), width=np.ones(n, np.int64),
                    height=np.ones(n, np.int64))
    idx = np.arange(n) if labelled is None else np.flatnonzero(labelled)
    truth = Dataset(schema, images, Annotations(image=idx, label=y[idx]))
    pred = truth.replace(annotations=Annotations(image=np.arange(n), label=p.argmax(1), score=p.max(1),
                                                 extra={"probs": p}))
    return truth, pred


def _support_reference(p: np.ndarray, y: np.ndarray, prior: float = 3.0) -> np.ndarray:
    """Per class: isotonic fit of "labelled j" on the distinct probabilities (max-min formula, weights = ties),
    blocks = runs of equal fit, each image left out of its block, shrunk toward the class's share by 3."""
    n, k = p.shape
    out = np.zeros((n, k))
    for j in range(k):
        vals = np.unique(p[:, j])
        w = np.asarray([(p[:, j] == v).sum() for v in vals], float)
        h = np.asarray([((p[:, j] == v) & (y == j)).sum() for v in vals], float)
        m = len(vals)
        fit = np.asarray([max(min(h[a:b + 1].sum() / w[a:b + 1].sum() for b in range(g, m)) for a in range(g + 1))
                          for g in range(m)])
        for i in range(n):
            g = int(np.searchsorted(vals, p[i, j]))
            block = [g2 for g2 in range(m) if fit[g2] == fit[g]]
            size = w[block].sum()
            num = fit[g] * size - (y[i] == j)
            out[i, j] = min(max((num + prior * (y == j).mean()) / (size - 1 + prior), 0.0), 1.0)
    return out


def _confidence_reference(p: np.ndarray, y: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """sigmoid(a[y] + b * logit(mid-rank of p_y among all probabilities)), (a, b) by scipy's BFGS."""
    from scipy.optimize import minimize
    from scipy.special import expit, logit
    from scipy.stats import rankdata

    n, k = p.shape
    r = (rankdata(p.ravel(), method="average") - 0.5) / p.size  # mid-rank: (below + ties / 2) / size
    z = logit(np.clip(r, 0.5 / p.size, 1 - 0.5 / p.size)).reshape(n, k)
    t = y[:, None] == np.arange(k)

    def loss(v: np.ndarray) -> float:
        eta = v[:k][None, :] + v[k] * z
        return float(np.logaddexp(0, np.where(t, -eta, eta)).sum() + 0.5 * ridge * (v @ v))

    v = minimize(loss, np.zeros(k + 1), method="BFGS", options={"gtol": 1e-10}).x
    return np.asarray(expit(v[y] + v[k] * z[np.arange(n), y]))


def _matrices(rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for kind in ("dirichlet", "unnormalised", "ties", "never_predicted", "never_given", "planted"):
        n, k = int(rng.integers(2, 50)), int(rng.integers(2, 6))
        p = rng.dirichlet(np.ones(k), n)
        y = rng.integers(0, k, n)
        if kind == "unnormalised":
            p = rng.random((n, k)) * 3
        elif kind == "ties":
            p = np.round(rng.dirichlet(np.full(k, 0.5), n), 1)
        elif kind == "never_predicted":
            p[:, -1] = 0.0
        elif kind == "never_given":
            y = rng.integers(0, k - 1, n)
        elif kind == "planted":
            y = p.argmax(1)
            flip = rng.random(n) < 0.2
            y[flip] = (y[flip] + 1) % k
        out.append((kind, y, p))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_classification_evidence_is_the_documented_formulas(seed: int) -> None:
    for kind, y, p in _matrices(np.random.default_rng(seed)):
        ev = label_evidence(p, y, p, y)
        np.testing.assert_allclose(class_support(p, y, p, y), _support_reference(p, y), rtol=0, atol=1e-12,
                                   err_msg=kind)
        np.testing.assert_allclose(label_confidence(p, y, p, y), _confidence_reference(p, y), rtol=0, atol=1e-5,
                                   err_msg=kind)
        rows = np.arange(len(y))
        other = ev.support.copy()
        other[rows, y] = -1.0
        assert np.array_equal(ev.suggested, other.argmax(1)), kind  # ties: the first best other class
        q_alt, q_y = other.max(1), ev.support[rows, y]
        share = np.where(q_alt + q_y > 0, q_alt / np.where(q_alt + q_y > 0, q_alt + q_y, 1), 0.0)
        np.testing.assert_allclose(ev.share, share, rtol=0, atol=1e-12, err_msg=kind)
        score = (1 - ev.confidence) * share
        np.testing.assert_allclose(ev.wrong, np.where(share >= 0.75, score, 0), rtol=0, atol=1e-12, err_msg=kind)
        np.testing.assert_allclose(ev.ambiguous, np.where((share >= 0.25) & (share < 0.75), score, 0), rtol=0,
                                   atol=1e-12, err_msg=kind)
        truth, pred = _cls(y, p)
        iss = find_label_issues(truth, pred, min_score=0.0)
        got = np.zeros(len(y))
        got[iss.image] = iss.score
        np.testing.assert_allclose(got, ev.wrong + ev.ambiguous, rtol=0, atol=1e-12, err_msg=kind)
        assert iss.label is not None
        assert np.array_equal(iss.annotation, iss.image) and np.array_equal(iss.label, ev.suggested[iss.image])
        assert set(iss.type[ev.wrong[iss.image] > 0].tolist()) <= {"wrong_class"}


def test_classification_unlabelled_images_are_left_out() -> None:
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(4), 60)
    y = rng.integers(0, 4, 60)
    labelled = rng.random(60) < 0.7
    truth, pred = _cls(y, p, labelled)
    iss = find_label_issues(truth, pred, min_score=0.0)
    idx = np.flatnonzero(labelled)
    ev = label_evidence(p[idx], y[idx], p[idx], y[idx])  # calibrated on the labelled images only
    assert set(iss.image.tolist()) == set(idx[(ev.wrong + ev.ambiguous) > 0].tolist())
    got = dict(zip(iss.image.tolist(), iss.score.tolist(), strict=True))
    np.testing.assert_allclose([got.get(i, 0.0) for i in idx.tolist()], ev.wrong + ev.ambiguous, rtol=0, atol=1e-12)
    assert np.array_equal(truth.annotations.image[iss.annotation], iss.image)


def test_classification_probabilities_must_cover_labelled_images_and_be_numbers() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3), 10)
    y = p.argmax(1)
    truth, pred = _cls(y, p)
    bad = p.copy()
    bad[2, y[2]] = np.nan  # was ranked as the highest probability: the label looked right
    nan_pred = pred.replace(annotations=pred.annotations.with_columns(extra={"probs": bad}))
    with pytest.raises(InvalidDatasetError, match=r"extra\['probs'\] row 2: must be numbers"):
        find_label_issues(truth, nan_pred)
    # no prediction row for image 9: its zeros would read as "the model says c1"
    partial = pred.replace(annotations=pred.annotations.take(np.arange(9)))
    with pytest.raises(InvalidDatasetError, match=r"image 9 \(9.png\) is labelled but has no probabilities"):
        find_label_issues(truth, partial)


# -- detection -----------------------------------------------------------------------------------------


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _brute(truth: Dataset, pred: Dataset, k: int, tau: float = 0.5) -> dict[str, np.ndarray]:
    """The formulas of docs/consensus.md, pair by pair (isotonic fit by scikit-learn, blocks = equal fits)."""
    from sklearn.isotonic import IsotonicRegression

    ta, pa = truth.annotations, pred.annotations
    assert ta.box is not None and pa.box is not None and pa.score is not None
    nt, n_p = len(ta), len(pa)
    m = np.zeros((n_p, nt))
    for i in range(n_p):
        for j in range(nt):
            if pa.image[i] == ta.image[j]:
                m[i, j] = _iou(pa.box[i], ta.box[j])
    p_best = m.max(1) if nt else np.zeros(n_p)
    t_best = m.max(0) if n_p else np.zeros(nt)
    same_cls = pa.label[:, None] == ta.label[None, :]
    hit = ((m >= tau) & same_cls).any(1)
    owned = (m > 0) & (m >= p_best[:, None])
    typ = np.full(k, 0.5)
    for c in range(k):
        good = owned & same_cls & (m >= 0.5) & (ta.label[None, :] == c)
        if good.any():
            typ[c] = np.median(m[good])
    score = np.where(np.isnan(pa.score), np.inf, pa.score)
    q = np.zeros(n_p)
    for c in range(k):
        rows = np.flatnonzero(pa.label == c)
        if not len(rows):
            continue
        u, inv = np.unique(score[rows], return_inverse=True)
        cnt = np.bincount(inv).astype(float)
        hits = np.bincount(inv, weights=hit[rows].astype(float))
        fit = IsotonicRegression().fit(np.arange(len(u)), hits / cnt, sample_weight=cnt).predict(np.arange(len(u)))
        block = np.r_[0, np.cumsum(np.abs(np.diff(fit)) > 1e-9)]
        b_n, b_hits = np.bincount(block, weights=cnt), np.bincount(block, weights=hits)
        rate = hit[rows].mean()
        for r, ui in zip(rows.tolist(), inv.tolist(), strict=True):
            b = block[ui]
            q[r] = np.clip((b_hits[b] - hit[r] + 3 * rate) / (b_n[b] - 1 + 3), 0, 1)
    mutual = (m >= t_best[None, :]) & (m >= p_best[:, None]) & (m >= 0.1)
    # each object's match: the same-class prediction it owns overlapping it most, IoU >= 0.1
    match = np.zeros_like(mutual)
    for j in range(nt):
        mine = np.flatnonzero(owned[:, j] & same_cls[:, j])
        if len(mine) and m[mine, j].max() >= 0.1:
            match[mine[np.argmax(m[mine, j])], j] = True
    out = {t: np.zeros(nt) for t in ("wrong_class", "ambiguous", "extra", "low_iou")}
    expl = np.zeros(nt)
    for j in range(nt):
        on = owned[:, j] & (m[:, j] >= tau)
        same = max(q[on & same_cls[:, j]], default=0.0)
        other = max(q[on & ~same_cls[:, j]], default=0.0)
        out["wrong_class"][j] = other * (1 - same)
        out["ambiguous"][j] = min(same, other)
        own = np.flatnonzero(owned[:, j])
        support = np.where((mutual[own, j] & same_cls[own, j]) | match[own, j], 1.0, np.minimum(1.0, m[own, j] / tau))
        expl[j] = max(q[own] * support, default=0.0)
        if match[:, j].any():
            i = int(np.flatnonzero(match[:, j])[0])
            tc = typ[ta.label[j]]
            out["low_iou"][j] = q[i] * np.clip((tc - m[i, j]) / tc, 0, 1)
    # the model's expected recall (every object here is scored) weighs its silence
    out["extra"] = (expl.mean() if nt else 1.0) * (1 - expl)
    # a prediction is explained outright by an object it is mutual with, and by the object whose match it is
    e = np.where(mutual | match, 1.0, np.minimum(1.0, m / tau) ** 2).max(1, initial=0.0)
    miss = q * (1 - e)
    kept = miss.copy()
    for i in np.flatnonzero(miss > 0).tolist():
        for o in np.flatnonzero(miss > 0).tolist():
            if o != i and pa.image[o] == pa.image[i] and _iou(pa.box[o], pa.box[i]) >= tau and (
                    miss[o] > miss[i] or (miss[o] == miss[i] and o < i)):
                kept[i] = 0.0
    return {**out, "missing": kept, "q": q, "typical": typ}


def _images(m: int, side: int = 100) -> Images:
    return Images(path=obj_array([f"{i}.jpg" for i in range(m)]), width=np.full(m, side), height=np.full(m, side))


def _random_detection(rng: np.random.Generator, discrete: bool) -> tuple[Dataset, Dataset, int]:
    m, k = int(rng.integers(1, 10)), int(rng.integers(1, 4))
    t_img = np.repeat(np.arange(m), rng.poisson(3, m))
    xy = rng.uniform(0, 80, (len(t_img), 2))
    t_box = np.c_[xy, xy + rng.uniform(5, 30, (len(t_img), 2))]
    t_lab = rng.integers(0, k, len(t_img))
    seen = rng.random(len(t_img)) < 0.85
    p_box = t_box[seen] + rng.normal(0, 3, (int(seen.sum()), 4))
    p_box[:, 2:] = np.maximum(p_box[:, 2:], p_box[:, :2] + 1)
    p_lab = t_lab[seen].copy()
    flip = rng.random(len(p_lab)) < 0.15
    p_lab[flip] = rng.integers(0, k, int(flip.sum()))
    f_img = np.repeat(np.arange(m), rng.poisson(1.0, m))
    fxy = rng.uniform(0, 80, (len(f_img), 2))
    score = rng.random(int(seen.sum()) + len(f_img))
    score = np.round(score, 1) if discrete else score
    schema = LabelSchema.from_names([f"c{i}" for i in range(k)])
    truth = Dataset(schema, _images(m), Annotations(image=t_img, label=t_lab, box=t_box))
    pred = Dataset(schema, _images(m), Annotations.sort_rows(
        image=np.r_[t_img[seen], f_img], label=np.r_[p_lab, rng.integers(0, k, len(f_img))],
        box=np.r_[p_box, np.c_[fxy, fxy + rng.uniform(5, 30, (len(f_img), 2))]], score=score))
    return truth, pred, k


@pytest.mark.parametrize("seed", range(3))
def test_detection_scores_equal_a_brute_force_of_the_documented_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(25):
        truth, pred, k = _random_detection(rng, discrete=trial % 2 == 1)  # rounded scores: ties
        s = object_scores(truth, pred, iou_type="bbox")
        ref = _brute(truth, pred, k)
        np.testing.assert_allclose(s.q, ref["q"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(s.match_iou, ref["typical"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(s.missing, ref["missing"], rtol=0, atol=1e-9)
        for t, v in s.annotation.items():
            np.testing.assert_allclose(v, ref[t], rtol=0, atol=1e-9, err_msg=t)


def _planted_detection(shift: float = 10.0) -> tuple[Dataset, Dataset, dict[str, tuple[int, int]]]:
    """30 images, two objects each, found by the model exactly; one planted error of each type:
    image 3 relabelled, image 5 object dropped, image 7 box shifted, image 9 a box on nothing, image 11 a
    second confident prediction of the other class on its first object."""
    m = 30
    base = np.array([[10.0, 10.0, 40.0, 40.0], [50.0, 50.0, 90.0, 80.0]])
    img = np.repeat(np.arange(m), 2)
    lab = np.tile([0, 1], m)
    box = np.tile(base, (m, 1))
    score = np.random.default_rng(0).uniform(0.7, 0.99, 2 * m)
    t_lab, t_box = lab.copy(), box.copy()
    t_lab[6] = 1
    t_box[14] = base[0] + shift
    keep = np.arange(2 * m) != 11
    schema = LabelSchema.from_names(["a", "b"])
    truth = Dataset(schema, _images(m), Annotations.sort_rows(
        image=np.r_[img[keep], 9], label=np.r_[t_lab[keep], 0], box=np.r_[t_box[keep], [[60.0, 5.0, 90.0, 30.0]]]))
    pred = Dataset(schema, _images(m), Annotations.sort_rows(
        image=np.r_[img, 11], label=np.r_[lab, 1], box=np.r_[box, base[:1]], score=np.r_[score, score[22]]))
    ta = truth.annotations
    assert ta.box is not None
    t_x1 = ta.box[:, 0]

    def row(i: int, x1: float) -> int:
        return int(np.flatnonzero((ta.image == i) & (t_x1 == x1))[0])

    planted = {"wrong_class": (3, row(3, 10)), "missing": (5, -1), "low_iou": (7, row(7, 10 + shift)),
               "extra": (9, row(9, 60)), "ambiguous": (11, row(11, 10))}
    return truth, pred, planted


def test_detection_planted_errors_found_where_planted_and_nowhere_else() -> None:
    truth, pred, planted = _planted_detection()
    iss = find_label_issues(truth, pred, iou_type="bbox")
    top = {(t, int(i), int(a)) for t, i, a in zip(iss.type[:5].tolist(), iss.image[:5].tolist(),
                                                   iss.annotation[:5].tolist(), strict=True)}
    assert top == {(t, i, a) for t, (i, a) in planted.items()}
    # nothing else: the clean objects' extra scores (1 - q of the prediction that confirms each) are not findings
    assert len(iss) == 5 and iss.score[4] > 0.6
    s = object_scores(truth, pred, iou_type="bbox")
    clean = np.setdiff1d(np.flatnonzero(s.confirmed), [a for _, a in planted.values()])
    assert len(clean) and 0 < s.annotation["extra"][clean].max() < 0.1
    by_type = {t: iss.of_type(t) for t in planted}
    label = {t: np.asarray(b.label) for t, b in by_type.items()}
    box = {t: np.asarray(b.box) for t, b in by_type.items()}
    assert label["wrong_class"][0] == 0 and label["ambiguous"][0] == 1 and label["missing"][0] == 1
    np.testing.assert_array_equal(box["missing"][0], [50.0, 50.0, 90.0, 80.0])
    np.testing.assert_array_equal(box["low_iou"][0], [10.0, 10.0, 40.0, 40.0])
    assert "sees a 'a'" in by_type["wrong_class"].reason[0] and "no object" in by_type["extra"].reason[0]


def test_detection_scores_move_the_documented_way() -> None:
    truth, pred, planted = _planted_detection()
    r7 = planted["low_iou"][1]
    pa = pred.annotations
    assert pa.box is not None
    p7 = int(np.flatnonzero((pa.image == 7) & (pa.label == 0))[0])
    low = []
    for shift in np.linspace(0.0, 17.0, 18):  # the pair stays mutual (IoU >= 0.1) up to a 17 px shift
        t, p, pl = _planted_detection(shift)
        s = object_scores(t, p, iou_type="bbox")
        assert pl["low_iou"][1] == r7
        low.append(s.annotation["low_iou"][r7])
        # a loose box is low_iou, not extra: its prediction supports it in full
        assert s.explained[r7] == s.q[p7] and s.q[p7] > 0.9
        assert s.annotation["extra"][r7] == pytest.approx(s.recall * (1 - s.q[p7]), abs=1e-12)
    assert low[0] == 0 and np.all(np.diff(low) > 0)  # worse overlap, higher low_iou
    # a prediction sliding onto an annotation is ever less missing
    i = int(np.flatnonzero((pa.image == 5) & (pa.label == 1))[0])
    miss = []
    for f in np.linspace(0, 1, 21):
        box = pa.box.copy()
        box[i] = (1 - f) * pa.box[i] + f * np.array([10.0, 10.0, 40.0, 40.0])
        p = pred.replace(annotations=pa.with_columns(box=box))
        miss.append(object_scores(truth, p, iou_type="bbox").missing[i])
    assert miss[0] > 0.9 and miss[-1] == 0 and np.all(np.diff(miss) <= 1e-12)


def test_detection_planted_errors_agree_with_cleanlab_when_confident() -> None:
    """cleanlab's subtype scores (confident predictions: its thresholds are absolute) point at the same objects;
    it has no score for a box on nothing (image 9)."""
    od = pytest.importorskip("cleanlab.object_detection.rank")
    truth, pred, planted = _planted_detection()
    pa = pred.annotations
    assert pa.score is not None
    pred = pred.replace(annotations=pa.with_columns(score=0.96 + 0.039 * (pa.score - 0.7) / 0.29))
    ta, pa = truth.annotations, pred.annotations
    assert ta.box is not None and pa.box is not None and pa.score is not None
    labels = [{"bboxes": ta.box[ta.image == i].astype(np.float32), "labels": ta.label[ta.image == i]}
              for i in range(truth.n_images)]
    preds = [[np.c_[pa.box[(pa.image == i) & (pa.label == c)], pa.score[(pa.image == i) & (pa.label == c)]]
              .astype(np.float32).reshape(-1, 5) for c in range(2)] for i in range(truth.n_images)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        swap = np.concatenate(od.compute_swap_box_scores(labels=labels, predictions=preds))
        badloc = np.concatenate(od.compute_badloc_box_scores(labels=labels, predictions=preds))
        image_q = od.get_label_quality_scores(labels, preds, verbose=False)
    assert set(np.argsort(swap)[:2].tolist()) == {planted["wrong_class"][1], planted["ambiguous"][1]}
    assert int(np.argmin(badloc)) == planted["low_iou"][1]
    assert set(np.argsort(image_q)[:4].tolist()) == {3, 5, 7, 11} and image_q[9] > 0.99


def test_an_object_the_model_confirms_only_at_unreliable_scores_is_extra_and_says_so() -> None:
    # 30 images, object 'a' at (10, 10, 40, 40) in each, predicted exactly; on image 0 at the lowest score, among 40
    # false alarms (empty corners) scored about as low: predictions at that score are right about 1 time in 5
    m = 30
    schema = LabelSchema.from_names(["a", "b"])
    truth = Dataset(schema, _images(m), Annotations.sort_rows(
        image=np.arange(m), label=np.zeros(m, np.int64), box=np.tile([10.0, 10.0, 40.0, 40.0], (m, 1))))
    rng = np.random.default_rng(1)
    fp_img = rng.integers(0, m, 40)
    score = np.r_[0.2, rng.uniform(0.8, 0.99, m - 1), rng.uniform(0.1, 0.3, 40)]
    pred = Dataset(schema, _images(m), Annotations.sort_rows(
        image=np.r_[np.arange(m), fp_img], label=np.zeros(m + 40, np.int64),
        box=np.r_[np.tile([10.0, 10.0, 40.0, 40.0], (m, 1)), np.tile([60.0, 60.0, 70.0, 70.0], (40, 1))],
        score=score))
    s = object_scores(truth, pred, iou_type="bbox")
    assert s.confirmed.all() and s.annotation["extra"][0] >= 0.5 and s.annotation["extra"][1:].max() < 0.5
    extra = find_label_issues(truth, pred, iou_type="bbox").of_type("extra")
    assert list(extra.annotation) == [0]  # the confidently confirmed ones are no findings
    right = round(100 * s.explained[0])  # the q of the prediction that confirms it
    assert extra.reason[0] == f"'a': the model sees it only with a 'a' prediction right {right}% of the time at its score"
