"""Bias checks against scipy.stats and a brute-force reading of the module docstring: contingency tables counted
pair by pair, chi-square, p and Cramér's V from scipy, and what gets flagged from the thresholds."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.quality import CheckConfig, chi_square, label_associations
from maslow.quality.bias import check_bias

stats = pytest.importorskip("scipy.stats")
contingency = pytest.importorskip("scipy.stats.contingency")


def _scipy(table: np.ndarray) -> tuple[float, float, float, int]:
    t = np.asarray(table)  # scipy wants integer counts
    t = t[t.sum(1) > 0][:, t.sum(0) > 0]
    if t.size == 0 or min(t.shape) < 2:
        return 0.0, 1.0, 0.0, 0
    res = stats.chi2_contingency(t, correction=False)
    return float(res.statistic), float(res.pvalue), float(contingency.association(t, method="cramer")), int(res.dof)


@pytest.mark.parametrize("seed", range(6))
def test_chi_square_matches_scipy_with_empty_rows_and_columns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(150):
        r, c = rng.integers(1, 6, 2)
        t = rng.integers(0, 7, (r, c)) * (rng.random((r, c)) < 0.8)
        if rng.random() < 0.3:
            t[rng.integers(r)] = 0
        if rng.random() < 0.3:
            t[:, rng.integers(c)] = 0
        got = chi_square(t)
        assert got[3] == _scipy(t)[3]
        np.testing.assert_allclose(got[:3], _scipy(t)[:3], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("table", [
    pytest.param([1, 2, 3], id="1-D"),
    pytest.param([[[1, 2], [3, 4]]], id="3-D"),
    pytest.param([[1, -1], [2, 3]], id="negative"),
    pytest.param([[np.nan, 1], [1, 1]], id="nan"),
    pytest.param([[np.inf, 1], [1, 1]], id="inf"),
])
def test_chi_square_refuses_what_is_not_a_count_table(table: object) -> None:
    with pytest.raises(ValueError, match="chi_square: table must"):
        chi_square(table)


def test_chi_square_degenerate_tables_are_no_association() -> None:
    for t in ([[0, 0], [0, 0]], [[5, 3]], [[5], [3]], [[4, 0], [0, 0]], np.zeros((0, 3)), [[]]):
        assert chi_square(t) == (0.0, 1.0, 0.0, 0)


def _unset(v: object) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


def _random_dataset(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 5))
    m = int(rng.integers(10, 60))
    counts = rng.integers(0, 6, m)
    image = np.repeat(np.arange(m), counts)
    n = len(image)
    site = np.empty(m, dtype=object)
    site[:] = [rng.choice(["north", "south", "east", None, np.float32("nan"), float("nan"), 3]) for _ in range(m)]
    # a class that follows the site half of the time: some seeds flag it
    site_code = np.array([hash(str(s)) % k for s in site])
    label = np.where(rng.random(n) < 0.5, site_code[image], rng.integers(0, k, n))
    light = np.empty(n, dtype=object)
    light[:] = [rng.choice(["day", "night", None]) for _ in range(n)]
    single = np.empty(n, dtype=object)
    single[:] = ["only"] * n  # one value: never tested
    who = np.empty(n, dtype=object)
    who[:] = [rng.choice(["ann", "bob", "cy", None]) for _ in range(n)]
    skew = np.array([w == "cy" for w in who])
    label = np.where(skew & (rng.random(n) < 0.6), 0, label)  # cy favours class 0
    return Dataset(
        LabelSchema.from_names([f"c{j}" for j in range(k)]),
        Images(path=[f"{i}.jpg" for i in range(m)], width=[9] * m, height=[9] * m,
               extra={"site": site, "index": np.arange(m)}),
        Annotations(image=image, label=label, attributes={"light": light, "single": single}, annotator=who),
    )


def _brute_table(ds: Dataset, values: list[object]) -> tuple[list[str], list[str], np.ndarray]:
    """(classes, values, table) counted pair by pair; unset values, empty classes and values left out."""
    names = ds.schema.names
    pairs = Counter((names[lab], str(v)) for lab, v in zip(ds.annotations.label.tolist(), values, strict=True)
                    if not _unset(v))
    rows = [c for c in names if any(p[0] == c for p in pairs)]
    cols = sorted({p[1] for p in pairs})
    return rows, cols, np.array([[pairs[r, c] for c in cols] for r in rows], np.int64).reshape(len(rows), len(cols))


def _one_value_per_image(ds: Dataset, values: list[object]) -> bool:
    seen: dict[int, str] = {}
    for i, v in zip(ds.annotations.image.tolist(), values, strict=True):
        if not _unset(v) and seen.setdefault(i, str(v)) != str(v):
            return False
    return True


def _expected(ds: Dataset, config: CheckConfig) -> list[tuple[str, list[str], list[str], np.ndarray, float, str]]:
    """(variable, classes, values, table, V threshold, unit) per association the docstring promises."""
    a = ds.annotations
    variables: list[tuple[str, list[object], int]] = []
    for name, col in ds.images.extra.items():
        per_image = col.tolist()
        distinct = len({str(v) for v in per_image if not _unset(v)})
        if distinct > sum(not _unset(v) for v in per_image) / 2:  # an id-like column is no variable
            continue
        variables.append((name, [per_image[i] for i in a.image.tolist()], distinct))
    for name, col in a.attributes.items():
        variables.append((f"attr:{name}", col.tolist(), len({str(v) for v in col.tolist() if not _unset(v)})))
    who = a.annotator.tolist()
    variables.append(("annotator", who, len({str(v) for v in who if not _unset(v)})))
    out = []
    for name, values, distinct in variables:
        if not 2 <= distinct <= config.max_categories:
            continue
        rows, cols, t = _brute_table(ds, values)
        if len(rows) >= 2 and len(cols) >= 2:
            unit = "image" if name in ds.images.extra or _one_value_per_image(ds, values) else "annotation"
            out.append((name, rows, cols, t, config.bias_cramers_v, unit))
    names = ds.schema.names
    team = [w for w in who if not _unset(w)]
    for person in sorted(set(team)):
        mine = Counter(names[lab] for lab, w in zip(a.label.tolist(), who, strict=True) if w == person)
        rest = Counter(names[lab] for lab, w in zip(a.label.tolist(), who, strict=True)
                       if not _unset(w) and w != person)
        cols = [c for c in names if mine[c] + rest[c] > 0]
        if sum(rest.values()) and len(cols) >= 2:
            t = np.array([[mine[c] for c in cols], [rest[c] for c in cols]], np.int64)
            unit = "image" if _one_value_per_image(ds, who) else "annotation"
            out.append((f"annotator={person}", [person, "rest of the team"], cols, t, config.annotator_bias_v, unit))
    return out


@pytest.mark.parametrize("seed", range(10))
def test_associations_match_a_brute_force_reading_of_the_docstring(seed: int) -> None:
    ds = _random_dataset(seed)
    config = CheckConfig(max_categories=int(np.random.default_rng(seed).choice([3, 50])), bias_p=0.05)
    got = label_associations(ds, config=config)
    want = _expected(ds, config)
    assert [s.variable for s in got] == [w[0] for w in want]
    for s, (_, rows, cols, t, v_min, unit) in zip(got, want, strict=True):
        assert list(s.classes) == rows and list(s.values) == cols
        np.testing.assert_array_equal(s.table, t)
        chi2, p, v, dof = _scipy(t)
        assert s.dof == dof and s.unit == unit
        np.testing.assert_allclose([s.chi2, s.cramers_v], [chi2, v], rtol=1e-9, atol=1e-12)
        if unit == "annotation":
            assert s.p_value == pytest.approx(p, rel=1e-9, abs=1e-12) and s.n_permutations == 0
        else:  # (1 + exceedances) / (1 + shuffles)
            assert 1 <= s.n_permutations <= 1999
            hits = s.p_value * (s.n_permutations + 1)
            assert hits == pytest.approx(round(hits)) and 1 <= round(hits) <= s.n_permutations + 1
        assert s.flagged == (s.cramers_v >= v_min and s.p_value < config.bias_p)
    flagged = [s for s in got if s.flagged]
    assert len(check_bias(ds, config)) == len(flagged)


def test_annotations_without_an_annotator_are_not_a_team_member_called_none() -> None:
    # rows with no annotator (None) differ from the team's labels; they are nobody's bias
    label = [0] * 30 + [1] * 30 + [0, 1] * 20
    who = [None] * 60 + ["ann", "bob"] * 20
    ds = Dataset(LabelSchema.from_names(["a", "b"]), Images(path=["x.jpg"], width=[9], height=[9]),
                 Annotations(image=[0] * len(label), label=label, annotator=who))
    variables = [s.variable for s in label_associations(ds)]
    assert "annotator=None" not in variables
    assert {"annotator=ann", "annotator=bob"} <= set(variables)
    by_ann = {s.variable: s for s in label_associations(ds)}["annotator=ann"]
    np.testing.assert_array_equal(by_ann.table, [[20, 0], [0, 20]])  # the rest is bob alone


def test_one_class_or_one_value_gives_no_association() -> None:
    ds = Dataset(LabelSchema.from_names(["a", "b"]),
                 Images(path=["x.jpg", "y.jpg"], width=[9, 9], height=[9, 9], extra={"site": ["n", "s"]}),
                 Annotations(image=[0, 0, 1, 1], label=[0, 0, 0, 0], annotator=["p", "q", "p", "q"]))
    assert label_associations(ds) == []


def test_nan_of_any_float_type_is_an_unset_value() -> None:
    site = np.empty(6, dtype=object)
    site[:] = ["n", np.float32("nan"), "s", np.float64("nan"), "n", "s"]
    ds = Dataset(LabelSchema.from_names(["a", "b"]),
                 Images(path=[f"{i}.jpg" for i in range(6)], width=[9] * 6, height=[9] * 6, extra={"site": site}),
                 Annotations(image=[0, 1, 2, 3, 4, 5], label=[0, 1, 1, 0, 0, 1]))
    (s,) = label_associations(ds)
    assert s.values == ("n", "s")
    np.testing.assert_array_equal(s.table, [[2, 0], [0, 2]])


def test_id_like_image_columns_are_not_variables() -> None:
    # coco_id, flickr_url, date_captured: one value per image; on a small COCO subset every class "depended" on
    # them (Cramer's V 0.81) and label_bias warned five times
    rng = np.random.default_rng(0)
    m = 12
    image = np.repeat(np.arange(m), 3)
    camera = np.array(["a", "b"] * (m // 2), dtype=object)
    label = np.where(camera[image] == "a", 0, 1)  # the class follows the camera: a real association
    ds = Dataset(LabelSchema.from_names(["x", "y"]),
                 Images(path=[f"{i}.jpg" for i in range(m)], width=[9] * m, height=[9] * m,
                        extra={"coco_id": np.arange(m) * 7, "camera": camera,
                               "date": np.array([f"2024-01-{d:02d}" for d in rng.permutation(m) + 1], dtype=object)}),
                 Annotations(image=image, label=label))
    found = {s.variable: s for s in label_associations(ds)}
    assert set(found) == {"camera"}
    # 12 images split 6/6 by camera: even a perfect split has an exact image-level p of 2 / C(12, 6) = 0.0022
    assert found["camera"].unit == "image" and found["camera"].n_images == m and not found["camera"].flagged
    assert found["camera"].p_value == pytest.approx(2 / math.comb(12, 6), abs=0.002)
