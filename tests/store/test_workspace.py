from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maslow.core.issues import Issue, Report
from maslow.errors import FormatError, MaslowError
from maslow.sample import shapes
from maslow.store import Workspace, init_workspace
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
