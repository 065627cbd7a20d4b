"""`maslow crossval --group-by COLUMN --set KEY=VALUE`: the column's groups share a fold, the overrides reach the
fold models, the weights they started from are said; a column the data lacks exits 2."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core.types import obj_array
from maslow.models import TrainConfig
from maslow.models.crossval import FOLD_COLUMN, fold_assignments, out_of_fold
from tests.helpers import run_cli
from tests.models.tiny_data import colour_squares

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("crossval_groups")
    ds = colour_squares(d / "data", 24, seed=5)  # every image its own sequence
    patient = obj_array([f"p{i % 6}" for i in range(24)])  # 6 patients, 4 images each, spread over the rows
    ds = ds.replace(images=dataclasses.replace(ds.images, extra={**ds.images.extra, "patient": patient}))
    io.write(ds, d / "data" / "ds.parquet", "parquet")
    (d / "cfg.yaml").write_text(f"data: data/ds.parquet\nformat: parquet\nbackbone: light\n"
                                f"params:\n  cache_dir: {d / 'cache'}\n")
    return {"dir": d, "cfg": d / "cfg.yaml", "data": d / "data" / "ds.parquet"}


def _json(args: list[str]) -> Any:
    code, out = run_cli([*args, "--json"])
    assert code == 0, out
    return json.loads(out)


def test_group_by_keeps_each_patient_in_one_fold(files: dict[str, Path]) -> None:
    out = files["dir"] / "oof.parquet"
    d = _json(["crossval", str(files["cfg"]), "--folds", "3", "--group-by", "patient", "--out", str(out)])
    assert d["group_by"] == "patient"
    assert d["weights"] == "light embedder (colour histograms + HOG, no learned weights)"
    oof = io.read(out, "parquet")
    fold = np.asarray(oof.images.extra[FOLD_COLUMN])
    patient = np.asarray(oof.images.extra["patient"])
    assert all(len(set(fold[patient == p].tolist())) == 1 for p in set(patient.tolist()))
    truth = io.read(files["data"], "parquet")
    assert np.array_equal(fold, fold_assignments(truth, 3, 0, groups=truth.images.extra["patient"]))
    # the same folds and predictions as the library's
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(files["dir"] / "cache")})
    lib = out_of_fold(truth, cfg, folds=3, groups=truth.images.extra["patient"])
    assert np.allclose(lib.annotations.score, oof.annotations.score)


def test_set_overrides_the_config_of_every_fold(files: dict[str, Path]) -> None:
    args = ["crossval", str(files["cfg"]), "--folds", "3", "--out"]
    _json([*args, str(files["dir"] / "a.parquet"), "--set", "params.C=100"])
    _json([*args, str(files["dir"] / "b.parquet"), "--set", "params.C=1e-6"])
    strong = io.read(files["dir"] / "a.parquet", "parquet").annotations.score
    weak = io.read(files["dir"] / "b.parquet", "parquet").annotations.score
    assert weak.max() < 0.4 < strong.mean()  # C = 1e-6 leaves every probability near 1/3
    code, err = run_cli([*args, str(files["dir"] / "c.parquet"), "--set", "params.C=-1"])
    assert code == 2 and "params.C" in err


def test_a_group_column_the_data_lacks_exits_2(files: dict[str, Path]) -> None:
    code, err = run_cli(["crossval", str(files["cfg"]), "--folds", "3", "--group-by", "patinet", "--out",
                         str(files["dir"] / "x.parquet")])
    flat = " ".join(err.split())
    assert code == 2 and "--group-by" in flat and "'patinet'" in flat and "'patient'" in flat
    assert not (files["dir"] / "x.parquet").exists()
