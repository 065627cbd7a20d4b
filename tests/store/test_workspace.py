from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.core.atomic import file_lock
from maslow.core.dataset import Dataset
from maslow.core.issues import Issue, Report
from maslow.errors import FormatError, MaslowError
from maslow.io import ExportReport, parquet
from maslow.sample import shapes
from maslow.store import Workspace, init_workspace, workspace
from tests.helpers import assert_datasets_equal

ALL = ("path", "size", "split", "label", "box", "mask", "polygon", "keypoints", "iscrowd")


def test_init_creates_config_and_state(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    assert (tmp_path / "maslow.yaml").is_file()
    assert (tmp_path / ".maslow" / "versions").is_dir()
    assert ws.settings()["database"].startswith("sqlite:///")
    assert Workspace.find(tmp_path / ".maslow").root == tmp_path.resolve()


def test_find_outside_a_workspace_fails(tmp_path: Path) -> None:
    with pytest.raises(MaslowError, match="maslow init"):
        Workspace.find(tmp_path)


def test_commit_load_round_trip_and_log(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(16, seed=2)
    report = Report((Issue("missing_image", "error", "gone", file="x.png"),))
    v1 = ws.commit(ds, dataset="shapes", message="import", report=report, source="a.json", format="coco")
    back = ws.load("shapes")
    assert_datasets_equal(ds, back, fields=ALL, attributes=["colour", "occluded"])
    assert ws.version(v1.id).report["counts"] == {"missing_image": 1}

    v2 = ws.commit(ds.select(ds.annotations.label != 0), dataset="shapes", message="drop circles")
    assert v2.parent == v1.id and v2.id != v1.id
    assert [v.id for v in ws.log("shapes")] == [v2.id, v1.id]
    assert ws.load(v1.id[:8]).n_annotations == ds.n_annotations
    assert ws.load().n_annotations == int((ds.annotations.label != 0).sum())


def test_same_content_same_parent_is_not_a_new_version(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(8, seed=0)
    v1 = ws.commit(ds, dataset="d", message="one")
    v1b = ws.commit(ds, dataset="d", message="again")
    assert v1b.id == v1.id
    assert len(ws.log("d")) == 1


def test_reverting_content_makes_a_new_version_without_a_cycle(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(8, seed=0)
    v1 = ws.commit(ds, dataset="d", message="one")
    ws.commit(ds.select(np.zeros(ds.n_annotations, bool)), dataset="d", message="empty")
    v3 = ws.commit(ds, dataset="d", message="back")
    assert v3.id != v1.id
    assert [v.message for v in ws.log("d")] == ["back", "empty", "one"]


def test_bad_refs_and_names(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    with pytest.raises(MaslowError, match="no dataset yet"):
        ws.load()
    with pytest.raises(MaslowError, match="dataset name"):
        ws.commit(shapes(2), dataset="../evil", message="x")
    ws.commit(shapes(2), dataset="a", message="x")
    ws.commit(shapes(3), dataset="b", message="x")
    with pytest.raises(MaslowError, match="several datasets"):
        ws.load()
    with pytest.raises(MaslowError, match="must be a dataset name or a version id"):
        ws.load("zzzz")


def test_same_content_under_two_names_makes_two_versions(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(4, seed=0)
    va = ws.commit(ds, dataset="a", message="import")
    vb = ws.commit(ds, dataset="b", message="import")  # used to fail: os.replace onto a's version folder
    assert va.id != vb.id
    assert ws.version("a").dataset == "a" and ws.version("b").dataset == "b"
    assert ws.load("b").n_annotations == ds.n_annotations


def test_init_where_a_file_is_in_the_way_names_it(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FormatError, match="afile"):
        init_workspace(tmp_path / "afile" / "ws")


def test_a_commit_killed_before_moving_the_ref_can_be_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(6, seed=0)
    v1 = ws.commit(ds, dataset="d", message="one")

    def killed(path: Path) -> None:
        raise KeyboardInterrupt  # the snapshot is in versions/, the ref still names v1

    monkeypatch.setattr(workspace, "atomic_path", killed)
    with pytest.raises(KeyboardInterrupt):
        ws.commit(ds.select(ds.annotations.label != 0), dataset="d", message="two")
    monkeypatch.undo()
    assert [v.id for v in ws.log("d")] == [v1.id]
    v2 = ws.commit(ds.select(ds.annotations.label != 0), dataset="d", message="two")  # used to fail: OSError
    assert v2.parent == v1.id and [v.id for v in ws.log("d")] == [v2.id, v1.id]


def test_the_head_is_read_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(6, seed=0)
    other: list[str] = []
    real_write = parquet.write

    def write_then_race(d: Dataset, dst: Path, **kw: Any) -> ExportReport:  # another commit lands while this one writes
        out = real_write(d, dst, **kw)
        if not other:
            other.append("")
            other[0] = ws.commit(ds.select(ds.annotations.label != 0), dataset="d", message="other").id
        return out

    monkeypatch.setattr(parquet, "write", write_then_race)
    mine = ws.commit(ds, dataset="d", message="mine")
    assert mine.parent == other[0]  # used to be None: the other commit was lost from the history
    assert [v.message for v in ws.log("d")] == ["mine", "other"]


def test_commits_wait_for_the_workspace_lock(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    done = threading.Event()

    def commit() -> None:
        ws.commit(shapes(3), dataset="d", message="x")
        done.set()

    worker = threading.Thread(target=commit)
    with file_lock(ws.state / "lock"):  # as a concurrent commit holds it
        worker.start()
        assert not done.wait(0.3)
    worker.join(10)
    assert done.is_set() and ws.datasets() == ["d"]


def test_refs_never_read_outside_the_workspace(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ws.commit(shapes(2), dataset="d", message="x")
    for ref in ("../../maslow.yaml", "../refs/d", "", str(tmp_path / "maslow.yaml")):
        with pytest.raises(MaslowError, match="must be a dataset name or a version id") as e:
            ws.load(ref)
        assert "database" not in str(e.value)  # the file's text used to be read as a version id
    with pytest.raises(MaslowError, match="not in the workspace"):
        ws.log("../../maslow.yaml")
    (tmp_path / ".maslow" / "refs" / "d").write_text("../../maslow.yaml\n")
    with pytest.raises(FormatError, match=r"refs/d: must hold a version id"):
        ws.load("d")


def test_temp_files_in_refs_are_not_datasets(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ws.commit(shapes(2), dataset="d", message="x")
    (tmp_path / ".maslow" / "refs" / ".d.0123456789ab.tmp").write_text("x\n")  # a ref write killed midway
    assert ws.datasets() == ["d"]
    assert ws.load().n_images == 2


def test_a_broken_settings_file_fails_before_anything_is_written(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    (tmp_path / "maslow.yaml").write_text("datasets: [1, 2]\n")
    with pytest.raises(FormatError, match=r"maslow.yaml, field 'datasets': must be a mapping"):
        ws.commit(shapes(2), dataset="d", message="x")  # used to be an AttributeError after the ref moved
    assert ws.datasets() == [] and not any((tmp_path / ".maslow" / "versions").iterdir())


def test_broken_version_records_name_the_file(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    v1 = ws.commit(shapes(2), dataset="d", message="x")
    record = tmp_path / ".maslow" / "versions" / v1.id / "version.json"
    good = record.read_text()
    record.write_text('"ab"')
    with pytest.raises(FormatError, match=r"version.json: unreadable version record: must be a JSON object"):
        ws.log("d")
    record.write_text(good.replace('"parent": null', f'"parent": "{v1.id}"'))
    with pytest.raises(FormatError, match="field 'parent': must be an earlier version id"):
        ws.log("d")
