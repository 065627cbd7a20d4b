"""Crop-embedding outliers: objects whose box content looks like another class are found."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maslow import io, quality
from maslow.cli.main import app
from maslow.core.dataset import Dataset
from maslow.embed.crops import CROP_DIM, embed_crops
from maslow.sample import write_shapes


@pytest.fixture(scope="module")
def shapes80(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return write_shapes(tmp_path_factory.mktemp("crops") / "shapes", 80, seed=3)


def _relabel(ds: Dataset, rows: np.ndarray, rng: np.random.Generator) -> Dataset:
    lab = ds.annotations.label.copy()
    lab[rows] = (lab[rows] + 1 + rng.integers(0, 2, len(rows))) % 3
    return ds.replace(annotations=ds.annotations.with_columns(label=lab))


def test_embed_crops_shape_and_missing_rows(shapes80: Dataset) -> None:
    f = embed_crops(shapes80)
    a = shapes80.annotations
    assert f.shape == (a.image.size, CROP_DIM)
    ok = ~np.isnan(f).any(1)
    assert ok[a.has_box].all()
    norms = np.linalg.norm(f[ok], axis=1)
    assert np.all(np.isclose(norms, 1.0, atol=1e-5) | (norms == 0))  # unit length, or 0 for a flat crop
    assert (norms > 0).mean() > 0.95
    np.testing.assert_array_equal(f, embed_crops(shapes80))


def test_crops_separate_the_classes(shapes80: Dataset) -> None:
    a = shapes80.annotations
    f = embed_crops(shapes80)
    keep = ~a.iscrowd
    sim = f[keep] @ f[keep].T
    np.fill_diagonal(sim, -np.inf)
    label = a.label[keep]
    agreement = float((label[sim.argmax(1)] == label).mean())
    assert agreement > 0.95  # nearest crop has the same class for almost every object


def test_planted_wrong_classes_are_found(shapes80: Dataset) -> None:
    rng = np.random.default_rng(0)
    found = planted = 0
    for _ in range(5):
        rows = rng.choice(np.flatnonzero(~shapes80.annotations.iscrowd), 3, replace=False)
        res = quality.crop_outliers(_relabel(shapes80, rows, rng))
        found += len(set(rows.tolist()) & set(res.annotation.tolist()))
        planted += len(rows)
        assert set(res.type.tolist()) <= {"embedding_outlier"}
    assert found / planted >= 0.8  # shape features find most relabelled shapes


def test_check_cli_with_outliers(shapes80: Dataset, tmp_path: Path) -> None:
    rows = np.flatnonzero(~shapes80.annotations.iscrowd)[:3]
    bad = _relabel(shapes80, rows, np.random.default_rng(1))
    io.write(bad, shapes80.root / "bad.json", "coco")  # type: ignore[operator]
    res = CliRunner().invoke(app, ["check", str(shapes80.root / "bad.json"), "--from", "coco", "--outliers",
                                   "--json", "--top", "200"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["counts"].get("embedding_outlier", 0) >= 1
