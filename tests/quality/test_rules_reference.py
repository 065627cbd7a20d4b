"""Rule checks, agreement and bias against independent references: scikit-learn's Cohen's kappa, the
krippendorff package, brute-force Fleiss' kappa, alpha and matching, scipy's chi-square, exact segment tests,
brute-force pair sweeps; per-row severities."""

from __future__ import annotations

import itertools
import warnings
from fractions import Fraction

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.quality import (
    CheckConfig,
    annotator_agreement,
    check,
    chi_square,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
)
from maslow.quality.agreement import check_agreement
from maslow.quality.geometry import _segments_cross
from maslow.quality.overlaps import sweep_pairs


def _fleiss(counts: np.ndarray) -> float:
    """Fleiss' kappa, unit by unit: agreeing ordered pairs over all ordered pairs (units with >= 2 ratings)."""
    p_i, total = [], np.zeros(counts.shape[1])
    for row in counts:
        r = row.sum()
        if r >= 2:
            p_i.append(float((row * (row - 1)).sum() / (r * (r - 1))))
            total += row
    if not p_i:
        return float("nan")
    pe = float(((total / total.sum()) ** 2).sum())
    return float("nan") if pe >= 1 else float((np.mean(p_i) - pe) / (1 - pe))


def _alpha(data: np.ndarray) -> float:
    """Nominal alpha from the coincidence matrix, pair by pair (Krippendorff 2011, section C)."""
    units = [[v for v in col if v is not None] for col in data.T]
    units = [u for u in units if len(u) >= 2]
    cats = sorted({v for u in units for v in u})
    if not cats:
        return float("nan")
    o = np.zeros((len(cats), len(cats)))
    for u in units:
        for a, b in itertools.permutations(range(len(u)), 2):
            o[cats.index(u[a]), cats.index(u[b])] += 1 / (len(u) - 1)
    n_c = o.sum(1)
    n = n_c.sum()
    d_e = (n * n - (n_c**2).sum()) / (n - 1)
    return float("nan") if d_e <= 0 else 1 - (o.sum() - np.trace(o)) / d_e


def _same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) < 1e-12


def test_agreement_statistics_against_references() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    kd = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(0)
    for trial in range(150):
        n, k = int(rng.integers(1, 30)), int(rng.integers(1, 5))
        x = rng.integers(0, k, n)
        y = np.where(rng.random(n) < rng.random(), x, rng.integers(0, k, n))  # from chance level to perfect
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = sk.cohen_kappa_score(x, y)
        assert _same(cohen_kappa(x, y), ref), (trial, x, y)
        assert _same(cohen_kappa([f"c{v}" for v in x], [f"c{v}" for v in y]), ref)
        data = rng.integers(0, k, (int(rng.integers(1, 5)), int(rng.integers(1, 20)))).astype(float)
        data[rng.random(data.shape) < 0.3] = np.nan
        obj = data.astype(object)
        obj[np.isnan(data)] = None
        ours = krippendorff_alpha(obj)
        assert _same(ours, _alpha(obj)), trial
        if not np.isnan(ours):
            assert ours == pytest.approx(kd.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-9)
        counts = np.stack([np.bincount(col[~np.isnan(col)].astype(int), minlength=k) for col in data.T])
        assert _same(fleiss_kappa(counts), _fleiss(counts)), trial
    # edge cases: undefined (one category, one rater, no overlap) is NaN, perfect agreement is 1
    assert np.isnan(cohen_kappa([1, 1], [1, 1])) and np.isnan(cohen_kappa([], []))
    assert cohen_kappa([0, 1, 2], [0, 1, 2]) == 1.0 and fleiss_kappa([[3, 0], [0, 3]]) == 1.0
    assert np.isnan(krippendorff_alpha([[1, 2, 3]])) and np.isnan(krippendorff_alpha([[1, None], [None, 2]]))
    assert np.isnan(fleiss_kappa([[1, 0], [0, 1]])) and krippendorff_alpha([[1, 2], [1, 2]]) == 1.0


def _annotated(rows: list[tuple[int, int, list[float], str]], m: int = 3) -> Dataset:
    img, lab, box, who = zip(*rows, strict=True)
    images = Images(path=obj_array([f"{i}.jpg" for i in range(m)]), width=np.full(m, 100), height=np.full(m, 100))
    return Dataset(LabelSchema.from_names(["c0", "c1", "c2"]), images, Annotations.sort_rows(
        image=np.asarray(img), label=np.asarray(lab), box=np.asarray(box, float), annotator=obj_array(list(who))))


_BOXES = [[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0], [50.0, 50.0, 70.0, 90.0]]


def test_annotator_agreement_edge_cases() -> None:
    perfect = _annotated([(i, j, _BOXES[j], w) for i in range(3) for j in range(3) for w in "ab"])
    res = annotator_agreement(perfect)
    assert res is not None and res.cohen_kappa[0, 1] == 1.0 and res.fleiss_kappa == 1.0
    assert res.krippendorff_alpha == 1.0 and np.all(res.precision == 1) and np.all(res.recall == 1)
    assert len(check_agreement(perfect)) == 0
    assert annotator_agreement(_annotated([(i, 0, _BOXES[0], "a") for i in range(3)])) is None  # one annotator
    apart = _annotated([(i, 0, _BOXES[0], "a") for i in range(3)] + [(i, 0, _BOXES[2], "b") for i in range(3)])
    res = annotator_agreement(apart)  # no overlap: six objects, each seen by one of two annotators
    assert res is not None and len(res.unit_image) == 6 and np.isnan(res.cohen_kappa[0, 1])
    assert np.isnan(res.fleiss_kappa) and np.isnan(res.krippendorff_alpha) and np.all(res.precision == 0)
    assert check_agreement(apart).counts() == {"annotator_missed_object": 6, "ambiguous_image": 3,
                                               "annotator_low_agreement": 2}
    # one planted disagreement among three annotators: found on that row only, naming who and what
    rows = [(i, j, _BOXES[j], w) for i in range(3) for j in range(3) for w in "abc"]
    rows[3 * 5 + 1] = (1, 0, _BOXES[2], "b")  # image 1, object 2, annotator b: c0 for c2
    ds = _annotated(rows)
    iss = check_agreement(ds)
    assert iss.counts() == {"annotator_class_disagreement": 1}
    r = int(iss.annotation[0])
    assert ds.annotations.annotator is not None and ds.annotations.annotator[r] == "b"
    assert ds.annotations.image[r] == 1 and ds.annotations.label[r] == 0 and iss.image[0] == 1
    assert iss.reason[0] == "b labelled c0; the majority (2 of 3) labelled c2"


def test_annotator_agreement_statistics_follow_the_matched_objects() -> None:
    """Random three- to four-annotator data: kappas, Fleiss and alpha equal the references on the units, and the
    matching is a maximum-IoU assignment (scipy, on the whole IoU matrix) per image and pair of annotators."""
    sk = pytest.importorskip("sklearn.metrics")
    from scipy.optimize import linear_sum_assignment

    from maslow.core.boxes import iou
    from maslow.quality.agreement import _match

    rng = np.random.default_rng(3)
    for _ in range(12):
        r, rows = int(rng.integers(2, 5)), []
        for i in range(5):
            for _o in range(int(rng.poisson(4))):
                xy = rng.uniform(0, 70, 2)
                b, cls = np.r_[xy, xy + rng.uniform(8, 25, 2)], int(rng.integers(0, 3))
                for w in range(r):
                    if rng.random() < 0.85:
                        lab = cls if rng.random() < 0.8 else int(rng.integers(0, 3))
                        rows.append((i, lab, list(b + rng.normal(0, 1.5, 4)), f"w{w}"))
        ds = _annotated(rows, m=5)
        res = annotator_agreement(ds)
        if res is None:
            continue
        a, U = ds.annotations, res.unit_rows
        counts = np.zeros((len(U), 3))
        for u, j in zip(*np.nonzero(U >= 0), strict=True):
            counts[u, a.label[U[u, j]]] += 1
        assert _same(res.fleiss_kappa, _fleiss(counts))
        rel = np.where(U >= 0, a.label[np.maximum(U, 0)], -1).T.astype(object)
        rel[rel == -1] = None
        assert _same(res.krippendorff_alpha, _alpha(rel))
        for i, j in itertools.combinations(range(r), 2):
            both = (U[:, i] >= 0) & (U[:, j] >= 0)
            if both.any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ref = sk.cohen_kappa_score(a.label[U[both, i]], a.label[U[both, j]])
                assert _same(res.cohen_kappa[i, j], ref)
        _, who = np.unique(a.annotator.astype(str), return_inverse=True)  # type: ignore[union-attr]
        mp, mq = _match(ds, who.astype(np.int64), np.arange(len(a)), 0.5)
        assert a.box is not None
        m = iou(a.box, a.box)
        expected = 0.0
        for img in range(5):
            for x, y in itertools.combinations(range(r), 2):
                rx = np.flatnonzero((a.image == img) & (who == x))
                ry = np.flatnonzero((a.image == img) & (who == y))
                sub = np.where(m[np.ix_(rx, ry)] >= 0.5, m[np.ix_(rx, ry)], 0.0)
                ri, ci = linear_sum_assignment(sub, maximize=True)
                expected += sub[ri, ci].sum()
        assert m[mp, mq].sum() == pytest.approx(expected, abs=1e-9)


def test_chi_square_and_cramers_v_against_scipy() -> None:
    from scipy.stats import chi2_contingency
    from scipy.stats.contingency import association

    rng = np.random.default_rng(0)
    for _ in range(100):
        t = rng.integers(0, 20, (int(rng.integers(2, 6)), int(rng.integers(2, 6))))
        t[0] = 0  # an empty row is dropped
        kept = t[t.sum(1) > 0][:, t.sum(0) > 0]
        chi2, p, v, dof = chi_square(t)
        if min(kept.shape) < 2:
            assert (chi2, p, v, dof) == (0.0, 1.0, 0.0, 0)
            continue
        ref = chi2_contingency(kept, correction=False)
        assert chi2 == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        assert dof == ref.dof and v == pytest.approx(association(kept, method="cramer"), abs=1e-12)


def _orient(o: tuple[Fraction, ...], a: tuple[Fraction, ...], b: tuple[Fraction, ...]) -> int:
    v = (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    return (v > 0) - (v < 0)


def test_polygon_crossing_matches_exact_arithmetic() -> None:
    rng = np.random.default_rng(0)
    for _ in range(400):
        v = int(rng.integers(3, 8))
        pts = rng.integers(0, 6, (v, 2))  # a small grid: many touching and collinear edges, never reported
        p = [tuple(Fraction(int(c)) for c in q) for q in pts]
        crossed = any(
            _orient(p[i], p[(i + 1) % v], p[j]) * _orient(p[i], p[(i + 1) % v], p[(j + 1) % v]) < 0
            and _orient(p[j], p[(j + 1) % v], p[i]) * _orient(p[j], p[(j + 1) % v], p[(i + 1) % v]) < 0
            for i in range(v) for j in range(i + 2, v) if not (i == 0 and j == v - 1))
        assert bool(_segments_cross(pts.astype(float)[None])[0]) == crossed, pts.tolist()


@pytest.mark.parametrize("min_iou", [1.0, 0.9, 0.5])
def test_sweep_finds_every_pair_at_any_threshold(min_iou: float) -> None:
    """Brute force over all pairs; at 1.0 ``x2 - 1.0 * w`` used to round below ``x1`` and lose identical boxes."""
    from maslow.core.boxes import iou

    rng = np.random.default_rng(1)
    for _ in range(150):
        n = int(rng.integers(2, 25))
        img = np.sort(rng.integers(0, 3, n))
        xy = rng.uniform(0, 100, (n, 2)) / 7
        box = np.c_[xy, xy + rng.uniform(0.1, 40, (n, 2))]
        dup = rng.integers(1, n, 4)
        box[dup], img[dup] = box[dup - 1], img[dup - 1]
        p, q, _ = sweep_pairs(img, box, min_iou=min_iou)
        m = iou(box, box)
        want = {(i, j) for i in range(n) for j in range(i + 1, n) if img[i] == img[j] and m[i, j] >= min_iou}
        assert set(zip(p.tolist(), q.tolist(), strict=True)) == want


def test_identical_duplicates_found_with_duplicate_iou_one() -> None:
    box = np.array([[4.281428571428571, 0.0, 21.246648697215143, 10.0]] * 2)  # x2 - (x2 - x1) < x1
    ds = Dataset(LabelSchema.from_names(["a"]), Images(path=obj_array(["x.png"]), width=np.array([100]),
                                                         height=np.array([100])),
                 Annotations(image=np.zeros(2, np.int64), label=np.zeros(2, np.int64), box=box))
    iss = check(ds, config=CheckConfig(families=("overlaps",), duplicate_iou=1.0, conflict_iou=1.0))
    assert iss.counts() == {"duplicate_box": 1} and (iss.other[0], iss.annotation[0]) == (0, 1)


def test_severity_is_decided_row_by_row() -> None:
    """Docs: box_out_of_bounds is an error when wholly outside, duplicate_box when the boxes are identical; a
    mixed table used to give every row of the type the same severity (warning)."""
    box = np.array([[10, 10, 30, 30], [200, 200, 250, 250], [90, 90, 120, 120], [5, 5, 25, 25], [5, 5, 25, 25],
                    [40, 40, 60, 60], [40.5, 40, 60, 60]], float)
    img = np.array([0, 0, 1, 2, 2, 3, 3])
    images = Images(path=obj_array([f"{i}.png" for i in range(4)]), width=np.full(4, 100), height=np.full(4, 100))
    ds = Dataset(LabelSchema.from_names(["a"]), images,
                 Annotations(image=img, label=np.zeros(7, np.int64), box=box))
    iss = check(ds, config=CheckConfig(families=("geometry", "overlaps")))
    got = {(t, int(a), int(o), s) for t, a, o, s in zip(iss.type.tolist(), iss.annotation.tolist(),
                                                        iss.other.tolist(), iss.severity.tolist(), strict=True)}
    assert got == {("box_out_of_bounds", 1, -1, "error"), ("box_out_of_bounds", 2, -1, "warning"),
                   ("duplicate_box", 4, 3, "error"), ("duplicate_box", 6, 5, "warning")}
    oob = iss.of_type("box_out_of_bounds")
    assert oob.image.tolist() == [0, 1] and "[200.0, 200.0, 250.0, 250.0]" in oob.reason[0]
    assert "100% of it outside" in oob.reason[0] and "(89% of it outside)" in oob.reason[1]
