"""Consistency checks against a brute-force reading of their docstrings: presence fractions and robust count
z-scores computed image by image with ``statistics``, and attribute values judged one by one."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import Counter

import numpy as np
import pytest

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.core.schema import AttributeDef
from maslow.quality import CheckConfig
from maslow.quality.consistency import check_attributes, check_presence_and_counts, class_counts
from maslow.quality.issues import QualityIssues


def _found(parts: list[QualityIssues], typ: str) -> set[tuple[int, int]]:
    issues = QualityIssues.build(parts)
    keep = issues.type == typ
    return set(zip(issues.image[keep].tolist(), issues.annotation[keep].tolist(), strict=True))


def _random_dataset(seed: int, *, annotators: bool) -> Dataset:
    rng = np.random.default_rng(seed)
    k, m = int(rng.integers(1, 5)), int(rng.integers(20, 70))
    common = int(rng.integers(k))
    image, label, who = [], [], []
    for i in range(m):
        raters = ["ann", "bob"][: int(rng.integers(1, 3))] if annotators else [None]
        base = {c: int(rng.poisson(rng.choice([0.3, 2.0, 6.0]))) for c in range(k)}
        base[common] = max(base[common], int(rng.random() < 0.97))  # present nearly everywhere
        if rng.random() < 0.05:
            base[int(rng.integers(k))] += int(rng.integers(10, 40))  # a count far outside the usual
        for r in raters:
            for c, n in base.items():
                n = max(0, n + int(rng.integers(-1, 2))) if annotators else n
                image += [i] * n
                label += [c] * n
                who += [r] * n
    crowd = rng.random(len(image)) < 0.05
    return Dataset(LabelSchema.from_names([f"c{j}" for j in range(k)]),
                   Images(path=[f"{i}.jpg" for i in range(m)], width=[9] * m, height=[9] * m),
                   Annotations(image=image, label=label, iscrowd=crowd,
                               **({"annotator": who} if annotators else {})))


def _brute_counts(ds: Dataset) -> list[list[float]]:
    """(m, k) mean count per annotator of each class's non-crowd objects in each image."""
    a, k = ds.annotations, len(ds.schema.names)
    rows = list(zip(a.image.tolist(), a.label.tolist(), a.iscrowd.tolist(),
                    a.annotator.tolist() if a.annotator is not None else [None] * len(a), strict=True))
    objects = Counter((i, c) for i, c, crowd, _ in rows if not crowd)
    raters = Counter(i for i, _ in {(i, w) for i, _, _, w in rows})
    return [[objects[i, c] / max(raters[i], 1) for c in range(k)] for i in range(ds.n_images)]


@pytest.mark.parametrize("annotators", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_presence_and_count_outliers_match_the_docstring(seed: int, annotators: bool) -> None:
    ds = _random_dataset(seed, annotators=annotators)
    config = CheckConfig(min_images=20, min_class_count=20, presence_fraction=0.9, count_z=4.0)
    counts = _brute_counts(ds)
    np.testing.assert_allclose(class_counts(ds), counts, rtol=1e-12)
    parts = check_presence_and_counts(ds, config)
    m, k = ds.n_images, len(ds.schema.names)
    missing, outliers = set(), set()
    for c in range(k):
        col = [row[c] for row in counts]
        present = sum(x > 0 for x in col) / m
        if present >= config.presence_fraction:
            missing |= {(i, -1) for i, x in enumerate(col) if x == 0}
        if sum(x > 0 for x in col) < config.min_class_count and sum(col) < config.min_class_count:
            continue
        med = statistics.median(col)
        mad = statistics.median(abs(x - med) for x in col)
        scale = max(1.4826 * mad, math.sqrt(med), 1.0)
        outliers |= {(i, -1) for i, x in enumerate(col) if abs(x - med) / scale > config.count_z}
    assert _found(parts, "missing_common_class") == missing
    assert _found(parts, "count_outlier") == outliers
    if seed == 0:
        assert missing and outliers  # the random data exercises both


def test_too_few_images_or_no_annotations_give_nothing() -> None:
    ds = _random_dataset(0, annotators=False)
    assert check_presence_and_counts(ds, CheckConfig(min_images=ds.n_images + 1)) == []
    empty = Dataset(ds.schema, ds.images, Annotations.empty())
    assert check_presence_and_counts(empty, CheckConfig(min_images=1)) == []


def _schema(*attrs: AttributeDef) -> LabelSchema:
    return dataclasses.replace(LabelSchema.from_names(["car", "person"]), attributes=attrs)


def _col(values: list[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


_VALUES = [0, 1, 2.5, "3", "-4e2", "abc", True, False, "true", "no", "maybe", None, float("nan"), np.float32("nan"),
           "x", "y", "z", 7]
_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}


def _unset(v: object) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


def _is_valid(kind: str, v: object) -> bool:
    if kind == "bool":
        return isinstance(v, bool) or str(v).strip().lower() in _TRUE | _FALSE
    if kind == "enum":
        return str(v) in {"x", "y", "7"}
    if kind == "number":
        if isinstance(v, bool):
            return False
        try:
            float(v)  # type: ignore[arg-type]
        except ValueError:
            return False
        return True
    return True


@pytest.mark.parametrize("kind", ["bool", "enum", "number", "text"])
def test_attribute_values_are_judged_as_the_docstring_says(kind: str) -> None:
    n = len(_VALUES)
    label = [i % 2 for i in range(n)]
    crowd = [i % 5 == 4 for i in range(n)]
    attr = AttributeDef("a", type=kind, values=("x", "y", "7") if kind == "enum" else (), required=True,
                        classes=("car",))
    ds = Dataset(_schema(attr), Images(path=["p.jpg"], width=[9], height=[9]),
                 Annotations(image=[0] * n, label=label, iscrowd=crowd, attributes={"a": _col(_VALUES)}))
    parts = check_attributes(ds)
    invalid = {(0, r) for r, v in enumerate(_VALUES) if not _unset(v) and not _is_valid(kind, v)}
    missing = {(0, r) for r, v in enumerate(_VALUES) if _unset(v) and label[r] == 0 and not crowd[r]}
    assert _found(parts, "attribute_invalid") == invalid
    assert _found(parts, "attribute_missing") == missing


def test_number_attributes_zero_and_one_are_numbers() -> None:
    attr = AttributeDef("count", type="number")
    ds = Dataset(_schema(attr), Images(path=["p.jpg"], width=[9], height=[9]),
                 Annotations(image=[0] * 4, label=[0] * 4, attributes={"count": _col([0, 1, "1", "two"])}))
    assert _found(check_attributes(ds), "attribute_invalid") == {(0, 3)}


def test_nan_is_an_unset_value() -> None:
    attrs = (AttributeDef("kind", type="enum", values=("a", "b"), required=True),
             AttributeDef("size", type="number", required=True))
    ds = Dataset(_schema(*attrs), Images(path=["p.jpg"], width=[9], height=[9]),
                 Annotations(image=[0, 0], label=[0, 0],
                             attributes={"kind": _col(["a", float("nan")]), "size": _col([np.float32("nan"), 3])}))
    parts = check_attributes(ds)
    assert _found(parts, "attribute_invalid") == set()
    assert _found(parts, "attribute_missing") == {(0, 1), (0, 0)}


def test_conflicts_need_every_value_of_the_rule() -> None:
    n = 6
    occ = _col([True, "yes", False, None, True, float("nan")])
    trunc = _col([True, "1", True, True, None, True])
    colour = _col(["red", "red", "red", "blue", "red", "red"])
    ds = Dataset(_schema(), Images(path=["p.jpg"], width=[9], height=[9]),
                 Annotations(image=[0] * n, label=[0] * n,
                             attributes={"occluded": occ, "truncated": trunc, "colour": colour}))
    config = CheckConfig(exclusive_attributes=(("occluded", "truncated"),),
                         forbidden_combinations=((("colour", "red"), ("occluded", True)),))
    issues = QualityIssues.build(check_attributes(ds, config))
    rows = Counter(issues.annotation[issues.type == "attribute_conflict"].tolist())
    # occluded & truncated both true: rows 0, 1; red & occluded: rows 0, 1, 4
    assert rows == Counter({0: 2, 1: 2, 4: 1})
