"""tune(): Optuna search over a config, resumable from SQLite; search spaces from YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow.errors import FormatError, MaslowError
from maslow.models.base import TrainConfig, read_config
from maslow.models.tune import DEFAULT_SPACES, check_space, overrides_for, read_tune_config
from tests.models.tiny_data import write_tiny_classification


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_classification(tmp_path_factory.mktemp("tune") / "data", n_train=6, n_val=3)


def test_read_tune_config_splits_off_the_search_space(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("data: data\nformat: imagefolder\nmodel: embed-logreg\nsearch:\n"
                                     "  C: {low: 0.01, high: 100, log: true}\n  batch_size: [8, 16]\n")
    cfg, space = read_tune_config(tmp_path / "c.yaml", epochs=3)
    assert cfg.data == str(tmp_path / "data") and cfg.epochs == 3
    assert space == {"C": {"low": 0.01, "high": 100, "log": True}, "batch_size": [8, 16]}
    assert overrides_for(cfg, {"C": 2.0, "batch_size": 16}) == {"batch_size": 16, "params": {"C": 2.0}}
    (tmp_path / "plain.yaml").write_text("data: d\nformat: coco\n")
    assert read_tune_config(tmp_path / "plain.yaml") == (read_config(tmp_path / "plain.yaml"), None)
    assert read_config(tmp_path / "c.yaml", epochs=3) == cfg  # a tuning config trains and cross-validates too


@pytest.mark.parametrize(("space", "match"), [
    pytest.param({"lr": {"low": 0.1}}, "a range must be", id="no-high"),
    pytest.param({"lr": {"low": 0.0, "high": 1.0, "log": True}}, "low > 0", id="log-zero"),
    pytest.param({"lr": {"low": 2.0, "high": 1.0}}, "low <= high", id="reversed"),
    pytest.param({"data": [1, 2]}, "cannot be searched", id="data"),
    pytest.param({"batch_size": []}, "must not be empty", id="empty-choices"),
])
def test_bad_spaces_are_named(space: dict[str, object], match: str) -> None:
    with pytest.raises(MaslowError, match=match):
        check_space(space)


def test_bad_search_in_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("data: d\nformat: imagefolder\nsearch:\n  lr: {low: 1}\n")
    with pytest.raises(MaslowError, match=r"c.yaml: search.lr"):
        read_tune_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("data: d\nformat: imagefolder\nsearch: 3\n")
    with pytest.raises(FormatError, match="field 'search' must be a mapping"):
        read_tune_config(tmp_path / "d.yaml")


def test_every_adapter_has_a_default_space() -> None:
    from maslow.models.base import ADAPTERS

    assert set(ADAPTERS) <= set(DEFAULT_SPACES)
    for space in DEFAULT_SPACES.values():
        check_space(space)


def test_tune_resumes_from_sqlite(data_dir: Path, tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("sklearn")
    from maslow.models.tune import tune

    cfg = TrainConfig(data=str(data_dir), format="imagefolder", model="embed-logreg", backbone="light",
                      out=str(tmp_path / "trials"), tracking="off")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = tune(cfg, trials=3, storage=storage, study_name="s", space={"C": {"low": 1e-3, "high": 10.0, "log": True}})
    assert first.n_trials == 3 and first.metric == "accuracy" and first.best_value is not None
    assert all(t["state"] == "complete" for t in first.trials)
    # each trial says what its model started from
    assert {t["weights"] for t in first.trials} == {"light embedder (colour histograms + HOG, no learned weights)"}
    assert all(1e-3 <= t["params"]["C"] <= 10 for t in first.trials)
    assert first.best_model is not None and (first.best_model / "model.json").is_file()
    best = read_config(first.best_config)  # type: ignore[arg-type]
    assert best.params["C"] == pytest.approx(first.best_params["C"])
    second = tune(cfg, trials=2, storage=storage, study_name="s",
                  space={"C": {"low": 1e-3, "high": 10.0, "log": True}})
    assert second.n_trials == 5 and [t["number"] for t in second.trials] == [0, 1, 2, 3, 4]
    assert len({t["params"]["C"] for t in second.trials}) == 5  # resumed, not replayed
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 5


def test_tune_reports_epochs_for_pruning(data_dir: Path, tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("torchvision")
    from maslow.models.tune import tune

    cfg = TrainConfig(data=str(data_dir), format="imagefolder", model="torchvision-classifier",
                      backbone="mobilenet_v3_small", pretrained="no", epochs=2, image_size=32, threads=1,
                      out=str(tmp_path / "trials"), tracking="off")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = tune(cfg, trials=1, storage=storage, metric="f1_macro", space={"lr": {"low": 1e-4, "high": 1e-2,
                                                                                    "log": True}, "batch_size": 8})
    assert result.metric == "f1_macro" and result.n_trials == 1
    study = optuna.load_study(study_name="maslow-torchvision-classifier", storage=storage)
    assert all(sorted(t.intermediate_values) == [0, 1] for t in study.trials)


def test_tune_needs_validation(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    from maslow.models.tune import tune

    cfg = TrainConfig(data=str(data_dir), format="imagefolder", model="embed-logreg", val_split="none",
                      out=str(tmp_path / "t"), tracking="off")
    with pytest.raises(MaslowError, match="validation"):
        tune(cfg, trials=1, storage=f"sqlite:///{tmp_path / 'o.db'}")


def test_best_config_retrains_the_best_trial_without_touching_the_trials(data_dir: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """best.yaml used to keep ``data`` relative to the working folder (read back against best.yaml's folder: not
    found) and ``out`` = the tuning folder (retraining replaced every trial and best.yaml itself)."""
    pytest.importorskip("optuna")
    pytest.importorskip("sklearn")
    import shutil

    from maslow.models.train import train
    from maslow.models.tune import tune

    shutil.copytree(data_dir, tmp_path / "proj" / "data")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "proj" / "tune.yaml").write_text(
        "data: data\nformat: imagefolder\nbackbone: light\ntracking: 'off'\nout: runs/t\n"
        f"params: {{cache_dir: {tmp_path / 'cache'}}}\n")
    cfg, _ = read_tune_config("proj/tune.yaml")
    space = {"C": {"low": 1e-3, "high": 10.0, "log": True}, "max_iter": 500}
    result = tune(cfg, trials=2, storage=f"sqlite:///{tmp_path / 'o.db'}", space=space)
    assert result.best_config == Path("runs/t/best.yaml") and result.best_value is not None
    best = read_config(result.best_config)
    assert Path(best.data) == (tmp_path / "proj" / "data").resolve() and Path(best.out) == Path("runs/t/best")
    assert best.params["C"] == result.best_params["C"] and best.params["max_iter"] == 500
    again = train(best)
    assert again.metrics[result.metric] == result.best_value  # the saved config reproduces the trial
    assert {p.name for p in Path("runs/t").iterdir()} == {"best", "best.yaml", "trial-0000", "trial-0001",
                                                          ".maslow-study"}


def test_a_second_study_in_the_same_folder_is_refused(data_dir: Path, tmp_path: Path) -> None:
    """Trial folders are numbered per study: a second study's trial-0000 replaced the first one's model."""
    pytest.importorskip("optuna")
    pytest.importorskip("sklearn")
    from maslow.models.tune import tune

    cfg = TrainConfig(data=str(data_dir), format="imagefolder", model="embed-logreg", out=str(tmp_path / "t"),
                      tracking="off", params={"cache_dir": str(tmp_path / "cache")})
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    space = {"C": {"low": 1e-3, "high": 10.0, "log": True}}
    tune(cfg, trials=1, storage=storage, space=space, study_name="a")
    first = (tmp_path / "t" / "trial-0000" / "model.json").read_bytes()
    with pytest.raises(MaslowError, match=r"holds the trials of study 'a'.*got study 'b'"):
        tune(cfg, trials=1, storage=storage, space=space, study_name="b")
    assert (tmp_path / "t" / "trial-0000" / "model.json").read_bytes() == first
    again = tune(cfg, trials=1, storage=storage, space=space, study_name="a")  # the same study adds trials
    assert [t["number"] for t in again.trials] == [0, 1] and (tmp_path / "t" / "trial-0001").is_dir()


def test_params_entries_are_written_with_or_without_the_params_prefix() -> None:
    """``params.C`` (as ``--set params.C=0.5`` and the config's ``params:`` section write it) used to become
    ``params.params.C``, a setting no adapter reads: the first trial failed."""
    cfg = TrainConfig(data="d", format="imagefolder", model="embed-logreg")
    assert overrides_for(cfg, {"params.C": 2.0, "lr": 0.1}) == {"lr": 0.1, "params": {"C": 2.0}}
    assert overrides_for(cfg, {"C": 2.0}) == overrides_for(cfg, {"params.C": 2.0}) == {"params": {"C": 2.0}}
    assert overrides_for(cfg, {"params.lr": 0.5}) == {"params": {"lr": 0.5}}  # what it says: a params entry


@pytest.mark.parametrize(("space", "match"), [
    pytest.param({"C": [1.0], "params.C": [2.0]}, r"search\.params\.C: sets params\.C as search\.C does",
                 id="both-forms"),
    pytest.param({"params.": [1.0]}, r"search\.params\.: a params entry must be named", id="empty-params-key"),
])
def test_a_setting_searched_twice_or_unnamed_is_refused(space: dict[str, object], match: str) -> None:
    with pytest.raises(MaslowError, match=match):
        check_space(space)


@pytest.mark.parametrize(("space", "match"), [
    pytest.param({"params.c": [1.0]}, r"search\.params\.c: config field 'params\.c' is not a setting of "
                 r"embed-logreg; known: C, max_iter", id="typo"),
    pytest.param({"params.params.C": [1.0]}, r"search\.params\.params\.C: config field 'params\.params\.C' is not",
                 id="prefix-twice"),
    pytest.param({"C2": {"low": 0.1, "high": 1.0}}, r"search\.C2: config field 'params\.C2' is not a setting",
                 id="unknown-bare-key"),
    pytest.param({"C": {"low": 0.0, "high": 1.0}}, r"search\.C: config field 'params\.C' must be a number > 0, "
                 r"got 0\.0", id="bad-low-end"),
    pytest.param({"max_iter": [100, "many"]}, r"search\.max_iter: .*'params\.max_iter' must be an integer",
                 id="bad-choice"),
])
def test_a_key_or_value_the_model_refuses_is_named_before_any_trial(space: dict[str, object], match: str) -> None:
    from maslow.models.tune import check_keys

    cfg = TrainConfig(data="d", format="imagefolder", model="embed-logreg", backbone="light")
    with pytest.raises(MaslowError, match=match) as err:
        check_keys(cfg, space)
    assert "written C or params.C" in str(err.value) and "batch_size" in str(err.value)  # what is accepted
    check_keys(cfg, {"params.C": {"low": 0.1, "high": 1.0}, "max_iter": [100, 200], "lr": [0.1]})  # all known


def test_tune_with_a_params_prefixed_key(data_dir: Path, tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("sklearn")
    from maslow.models.tune import tune

    cfg = TrainConfig(data=str(data_dir), format="imagefolder", model="embed-logreg", backbone="light",
                      out=str(tmp_path / "t"), tracking="off", params={"cache_dir": str(tmp_path / "cache")})
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    result = tune(cfg, trials=1, storage=storage, study_name="p",
                  space={"params.C": {"low": 1e-3, "high": 10.0, "log": True}})
    assert [t["state"] for t in result.trials] == ["complete"] and set(result.best_params) == {"params.C"}
    best = read_config(result.best_config)  # type: ignore[arg-type]
    assert set(best.params) == {"C", "cache_dir"} and best.params["C"] == pytest.approx(result.best_params["params.C"])
    # a key no setting answers to is refused before the study, the tuning folder or any trial exists
    with pytest.raises(MaslowError, match=r"search\.params\.c: config field 'params\.c' is not a setting"):
        tune(cfg.with_overrides(out=str(tmp_path / "u")), trials=1, storage=storage, study_name="typo",
             space={"params.c": {"low": 1e-3, "high": 10.0}})
    assert not (tmp_path / "u").exists() and "typo" not in optuna.get_all_study_names(storage)
