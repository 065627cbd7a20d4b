"""Audit: annotations without an annotator (None, NaN) take no part in the agreement, as in the bias tables;
``maslow check --json`` carries the agreement figures; an image annotators labelled alike is not ambiguous."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from maslow import io
from maslow.cli.main import app
from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.core.types import obj_array
from maslow.quality import CheckConfig, annotator_agreement, check
from maslow.sample import shapes


def _team(unset: object) -> tuple[Dataset, np.ndarray, np.ndarray, int]:
    """Annotators a and b label every object of the sample (b differs on 4), plus a third copy of every object
    with another class and no annotator (``unset``)."""
    ds = shapes(30, seed=0)
    a = ds.annotations
    assert a.box is not None
    n = len(a)
    label_b = a.label.copy()
    label_b[:4] = (label_b[:4] + 1) % 3
    stray = (a.label + 2) % 3
    two = Annotations.sort_rows(
        image=np.concatenate([a.image] * 3), label=np.concatenate([a.label, label_b, stray]),
        box=np.concatenate([a.box, a.box + 0.5, a.box + 1.0]),
        annotator=obj_array(["a"] * n + ["b"] * n + [unset] * n))
    return ds.replace(annotations=two), a.label, label_b, n


@pytest.mark.parametrize("unset", [None, float("nan")], ids=["none", "nan"])
def test_rows_without_annotator_belong_to_nobody(unset: object) -> None:
    ds, label_a, label_b, _ = _team(unset)
    res = annotator_agreement(ds)
    assert res is not None
    assert res.annotators == ("a", "b")
    assert res.cohen_kappa[0, 1] == pytest.approx(cohen_kappa_score(label_a, label_b))
    assert res.precision.tolist() == pytest.approx([(len(label_a) - 4) / len(label_a)] * 2)
    nobody = ds.annotations.annotator
    rows = set(np.flatnonzero([x is None or x != x for x in nobody.tolist()]).tolist())
    issues = check(ds, config=CheckConfig(families=("agreement",)))
    assert len(issues) > 0
    assert not rows & set(issues.annotation.tolist()) and not rows & set(issues.other.tolist())
    assert not any("None" in r or "nan" in r for r in issues.reason.tolist())


def test_only_one_named_annotator_is_no_agreement() -> None:
    ds, *_ = _team(None)
    a = ds.annotations
    who = obj_array([None if w == "b" else w for w in a.annotator.tolist()])
    assert annotator_agreement(ds.replace(annotations=a.with_columns(annotator=who))) is None


def test_ambiguous_images_are_those_with_a_disagreement() -> None:
    ds, label_a, label_b, _ = _team(None)
    res = annotator_agreement(ds)
    assert res is not None
    rows = res.ambiguous_images(n=100)
    disputed = np.flatnonzero(np.nan_to_num(res.image_disagreement, nan=0.0) > 0)
    assert sorted(rows.tolist()) == disputed.tolist()
    assert set(rows.tolist()) == set(ds.annotations.image[np.flatnonzero(label_a != label_b)].tolist())


def test_check_json_reports_the_agreement_figures(tmp_path: Path) -> None:
    ds, label_a, label_b, _ = _team(None)
    io.write_parquet(ds, tmp_path / "team.parquet")
    res = CliRunner().invoke(app, ["check", str(tmp_path / "team.parquet"), "--from", "parquet", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)["agreement"]
    assert got["annotators"] == ["a", "b"]
    assert got["cohen_kappa"]["a|b"] == pytest.approx(cohen_kappa_score(label_a, label_b))
    assert got["n_objects"] == len(label_a)
    alone = ds.replace(annotations=ds.annotations.with_columns(annotator=None))
    io.write_parquet(alone, tmp_path / "alone.parquet")
    res = CliRunner().invoke(app, ["check", str(tmp_path / "alone.parquet"), "--from", "parquet", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["agreement"] is None


@pytest.mark.parametrize("unset", [None, float("nan")], ids=["none", "nan"])
def test_duplicates_without_an_annotator_are_found_whether_none_or_nan(unset: object) -> None:
    ds = shapes(20, seed=0)
    a = ds.annotations
    assert a.box is not None
    first = np.flatnonzero(~a.iscrowd)[0]
    rows = np.sort(np.concatenate([np.arange(len(a)), [first]]), kind="stable")  # one object twice, nobody's
    twice = a.take(rows).with_columns(annotator=obj_array([unset] * len(rows)))
    issues = check(ds.replace(annotations=twice), config=CheckConfig(families=("overlaps",)))
    assert issues.counts().get("duplicate_box") == 1
    pair = {int(issues.annotation[0]), int(issues.other[0])}
    assert len(pair) == 2 and all(int(twice.image[r]) == int(a.image[first]) for r in pair)
