"""Audit 19: ``tune`` resumed with a changed search space crashed inside each trial with Optuna's ValueError (a
traceback, exit 1, a FAIL trial added per attempt); best.yaml after a resumed study combined the best (earlier)
trial's sampled values with this call's fixed values; an unknown ``--metric`` was reported as a config field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maslow.errors import MaslowError
from maslow.models.base import TrainConfig, read_config
from tests.helpers import flat_text
from tests.helpers import run_cli_streams as _run
from tests.models.tiny_data import write_tiny_classification

pytest.importorskip("optuna")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_classification(tmp_path_factory.mktemp("tune19") / "data", n_train=6, n_val=3)


def _cfg(data_dir: Path, tmp_path: Path) -> TrainConfig:
    return TrainConfig(data=str(data_dir), format="imagefolder", model="embed-logreg", backbone="light",
                       out=str(tmp_path / "trials"), tracking="off", params={"cache_dir": str(tmp_path / "cache")})


@pytest.mark.parametrize(("first", "second", "old", "new"), [
    pytest.param([0.5, 1.0], [0.5, 1.0, 2.0], "choices [0.5, 1.0]", "choices [0.5, 1.0, 2.0]", id="choices"),
    pytest.param({"low": 1, "high": 10}, {"low": 0.5, "high": 10}, "integers {low: 1, high: 10}",
                 "floats {low: 0.5, high: 10.0}", id="int-to-float"),
    pytest.param({"low": 0.1, "high": 10.0}, [0.5, 1.0], "floats {low: 0.1, high: 10.0}", "choices [0.5, 1.0]",
                 id="range-to-choices"),
    pytest.param({"low": 0.1, "high": 10.0}, {"low": 0.1, "high": 10.0, "log": True},
                 "floats {low: 0.1, high: 10.0}", "floats {low: 0.1, high: 10.0, log: true}", id="log"),
])
def test_a_space_the_study_cannot_take_is_refused_before_any_trial(data_dir: Path, tmp_path: Path, first: Any,
                                                                   second: Any, old: str, new: str) -> None:
    import optuna

    from maslow.models.tune import tune

    cfg, storage = _cfg(data_dir, tmp_path), f"sqlite:///{tmp_path / 'o.db'}"
    tune(cfg, trials=1, storage=storage, study_name="s", space={"C": first})
    with pytest.raises(MaslowError) as e:
        tune(cfg, trials=1, storage=storage, study_name="s", space={"C": second}, where="t.yaml: search")
    text = str(e.value)
    for needle in ("t.yaml: search.C", "study 's'", old, new, "--study", "out folder"):
        assert needle in text, text
    states = [t.state.name for t in optuna.load_study(study_name="s", storage=storage).trials]
    assert states == ["COMPLETE"]  # no FAIL trial added


def test_a_range_of_the_same_kind_with_other_ends_still_resumes(data_dir: Path, tmp_path: Path) -> None:
    from maslow.models.tune import tune

    cfg, storage = _cfg(data_dir, tmp_path), f"sqlite:///{tmp_path / 'o.db'}"
    tune(cfg, trials=1, storage=storage, study_name="s", space={"C": {"low": 0.1, "high": 1.0}})
    result = tune(cfg, trials=1, storage=storage, study_name="s", space={"C": {"low": 1.0, "high": 5.0},
                                                                         "max_iter": 300})
    assert [t["state"] for t in result.trials] == ["complete", "complete"]


def test_the_cli_names_the_config_file_and_exits_2(data_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    base = (f"data: {data_dir}\nformat: imagefolder\nmodel: embed-logreg\nbackbone: light\ntracking: 'off'\n"
            f"params: {{cache_dir: {tmp_path / 'cache'}}}\nout: runs/t\nsearch:\n")
    Path("a.yaml").write_text(base + "  C: [0.5, 1.0]\n")
    Path("b.yaml").write_text(base + "  C: [0.5, 1.0, 2.0]\n")
    opts = ["--trials", "1", "--storage", f"sqlite:///{tmp_path / 'o.db'}", "--study", "s", "--json"]
    code, _, err = _run(["tune", "a.yaml", *opts])
    assert code == 0, err
    code, out, err = _run(["tune", "b.yaml", *opts])
    assert code == 2 and not out and "Traceback" not in err, (code, out, err)
    assert "b.yaml: search.C" in flat_text(err) and "choices [0.5, 1.0]" in flat_text(err)


def test_best_yaml_is_the_config_the_best_trial_trained_with(data_dir: Path, tmp_path: Path) -> None:
    """The audit's repro: a first call with ``class_weight: balanced`` fixed and a good C range, a second with
    ``class_weight: null`` and a C too small to learn: the best trial is the first call's, and best.yaml said
    ``class_weight: null`` (this call's), a config no trial trained with."""
    import json

    from maslow.models.tune import tune

    cfg, storage = _cfg(data_dir, tmp_path), f"sqlite:///{tmp_path / 'o.db'}"
    tune(cfg, trials=2, storage=storage, study_name="s",
         space={"C": {"low": 0.01, "high": 10.0, "log": True}, "class_weight": "balanced"})
    result = tune(cfg, trials=2, storage=storage, study_name="s",
                  space={"C": {"low": 1e-4, "high": 2e-4, "log": True}, "class_weight": None})
    assert result.best_trial in (0, 1)  # C ~ 1e-4 learns nothing: the first call's trial stays best
    assert result.best_model is not None and result.best_config is not None
    trained = json.loads((result.best_model / "model.json").read_text())["config"]["params"]
    best = read_config(result.best_config)
    assert trained["class_weight"] == "balanced"
    assert best.params["class_weight"] == "balanced" and best.params["C"] == trained["C"]
    assert best.params == trained and Path(best.out) == Path(cfg.out) / "best"


def test_an_unknown_metric_names_the_option(data_dir: Path, tmp_path: Path) -> None:
    from maslow.models.tune import tune

    with pytest.raises(MaslowError) as e:
        tune(_cfg(data_dir, tmp_path), trials=1, storage=f"sqlite:///{tmp_path / 'o.db'}", metric="map_50",
             space={"C": [0.5, 1.0]})
    assert "--metric" in str(e.value) and "config field" not in str(e.value) and "'map_50'" in str(e.value)
