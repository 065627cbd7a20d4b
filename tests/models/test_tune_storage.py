"""tune's study folder: one SQLite database written as a relative or an absolute path (or another sqlite URL
form) is one study's; a study that really differs is refused, saying what differs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maslow.errors import MaslowError
from maslow.models.base import TrainConfig
from maslow.models.tune import STUDY_FILE, _claim, same_storage
from tests.models.tiny_data import write_tiny_classification


def test_same_storage_writes_one_database_one_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    absolute = f"sqlite:///{tmp_path.resolve() / 'o.db'}"
    for url in ("sqlite:///o.db", "sqlite:///./o.db", "sqlite:///sub/../o.db", absolute,
                f"sqlite+pysqlite:///{tmp_path / 'o.db'}", "sqlite:///o.db?timeout=10"):
        assert same_storage(url) == absolute, url
    assert same_storage("sqlite:///other.db") != absolute
    for url in ("postgresql://user@host/db", "sqlite://", "sqlite:///:memory:"):  # not a file: as given
        assert same_storage(url) == url


def test_claim_takes_the_same_database_written_another_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    _claim(root, "s", f"sqlite:///{tmp_path / 'o.db'}")
    _claim(root, "s", "sqlite:///o.db")  # the same file, relative to the current folder
    _claim(root, "s", "sqlite:///./o.db")
    assert (root / STUDY_FILE).read_text() == f"s\nsqlite:///{tmp_path.resolve() / 'o.db'}\n"
    (root / STUDY_FILE).write_text("s\nsqlite:///o.db\n")  # a marker an earlier version wrote as given
    _claim(root, "s", f"sqlite:///{tmp_path / 'o.db'}")


@pytest.mark.parametrize(("name", "storage", "differ"), [
    ("other", "sqlite:///o.db", "the study names differ"),
    ("s", "sqlite:///elsewhere.db", "the databases differ"),
    ("other", "sqlite:///elsewhere.db", "the study names and the databases differ"),
])
def test_claim_says_what_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, storage: str,
                                 differ: str) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    _claim(root, "s", "sqlite:///o.db")
    with pytest.raises(MaslowError) as e:
        _claim(root, name, storage)
    text = str(e.value)
    assert differ in text and f"holds the trials of study 's' (sqlite:///{tmp_path.resolve() / 'o.db'})" in text
    assert f"got study {name!r} ({same_storage(storage)})" in text


def test_tune_adds_trials_whichever_way_the_database_is_written(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's case: a first run with the default (absolute) storage, a second with --storage sqlite:///o.db in
    the same folder: refused as another study, though Optuna opens the same file."""
    pytest.importorskip("optuna")
    pytest.importorskip("sklearn")
    from maslow.models.tune import tune

    data = write_tiny_classification(tmp_path / "data", n_train=4, n_val=2)
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(data=str(data), format="imagefolder", model="embed-logreg", backbone="light", out="t",
                      tracking="off", params={"cache_dir": str(tmp_path / "cache")})
    space = {"C": {"low": 1e-3, "high": 10.0, "log": True}}
    first = tune(cfg, trials=1, storage=f"sqlite:///{tmp_path / 'o.db'}", space=space, study_name="a")
    again = tune(cfg, trials=1, storage="sqlite:///o.db", space=space, study_name="a")
    assert [t["number"] for t in first.trials] == [0] and [t["number"] for t in again.trials] == [0, 1]
    assert sorted(p.name for p in (tmp_path / "t").glob("trial-*")) == ["trial-0000", "trial-0001"]
    assert os.path.samefile(tmp_path / "o.db", "o.db")
