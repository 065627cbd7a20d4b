"""``diff_datasets`` and ``maslow diff`` compare metadata too (audit 4, finding 1): two versions that differed only in
image metadata (``images.extra``: license, flickr_url, sequence/frame), an annotation's ``area`` (or another
``annotations.extra`` column), the dataset ``info`` or the image root were reported as "No change"
(``"unchanged": true``) although their content hashes differed. Checked against brute-force references, and
``unchanged`` against the workspace's own content hashes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.tables import Images
from maslow.core.types import is_unset
from maslow.sample import shapes
from maslow.store import init_workspace
from maslow.store.diff import diff_datasets
from tests.helpers import run_cli_streams


def _images(ds: Dataset, **extra: Any) -> Dataset:
    im = ds.images
    return ds.replace(images=Images(path=im.path, width=im.width, height=im.height, split=im.split,
                                    extra={**im.extra, **extra}))


def _ann_extra(ds: Dataset, **extra: Any) -> Dataset:
    a = ds.annotations
    return ds.replace(annotations=a.with_columns(extra={**a.extra, **extra}))


@pytest.fixture
def ds() -> Dataset:
    base = shapes(12, seed=3)
    n, m = base.n_annotations, base.n_images
    lic = np.empty(m, object)
    lic[:] = [1, 2, None, 4] * (m // 4)
    return _ann_extra(_images(base, license=lic, coco_id=np.arange(m) + 1),
                      area=np.linspace(10.0, 500.0, n), coco_id=np.arange(n) + 1)


# -- images ----------------------------------------------------------------------------------------------------------
def test_image_metadata_changes_are_reported_per_column(ds: Dataset) -> None:
    lic = ds.images.extra["license"].copy()
    lic[1] = 99  # a value changed
    lic[2] = 3  # None -> a value
    lic[5] = "2"  # the same text, another type
    frame = ds.images.extra["frame"].copy()
    frame[7] += 1
    new = _images(ds, license=lic, frame=frame)
    d = diff_datasets(ds, new)
    paths = ds.images.path
    assert not d.unchanged and d.metadata_changed  # was: unchanged, 0 images changed
    assert {c: v.tolist() for c, v in d.image_metadata.items()} == {
        "license": [paths[1], paths[2], paths[5]], "frame": [paths[7]]}
    assert d.images_changed.tolist() == [paths[1], paths[2], paths[5], paths[7]]
    assert d.record_changed.all() and (d.n_added, d.n_removed) == (0, 0)
    out = d.to_dict(limit=2)
    assert out["image_metadata_changed"]["license"] == {"n": 3, "images": [paths[1], paths[2]]}
    assert not out["unchanged"] and out["metadata_changed"]


def test_an_absent_extra_column_equals_unset_values(ds: Dataset) -> None:
    m = ds.n_images
    none = np.full(m, None, object)
    nan = np.full(m, np.nan)
    for filled in (none, nan):
        assert diff_datasets(ds, _images(ds, note=filled)).unchanged
        assert diff_datasets(_images(ds, note=filled), ds).unchanged
    one = none.copy()
    one[4] = "blurred"
    d = diff_datasets(ds, _images(ds, note=one))
    assert list(d.image_metadata) == ["note"] and d.image_metadata["note"].tolist() == [ds.images.path[4]]


def _image_reference(old: Dataset, new: Dataset) -> dict[str, list[str]]:
    """Brute force: per extra column, the paths (new order) of the images in both whose values differ (unset when
    None or NaN or absent; otherwise by type and value)."""
    where = {str(p): i for i, p in enumerate(old.images.path)}
    out: dict[str, list[str]] = {}
    for c in sorted(set(old.images.extra) | set(new.images.extra)):
        for j, p in enumerate(new.images.path.tolist()):
            if p not in where:
                continue
            a = old.images.extra[c][where[p]] if c in old.images.extra else None
            b = new.images.extra[c][j] if c in new.images.extra else None
            ka = None if is_unset(a) else (type(a.item() if isinstance(a, np.generic) else a), str(a))
            kb = None if is_unset(b) else (type(b.item() if isinstance(b, np.generic) else b), str(b))
            if ka != kb:
                out.setdefault(c, []).append(p)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_image_metadata_matches_a_brute_force_reference(ds: Dataset, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = ds.n_images
    pool: list[Any] = [None, 1, 2, "1", "x", 1.5, float("nan"), True]
    vals = np.empty(m, object)
    vals[:] = [pool[i] for i in rng.integers(0, len(pool), m)]
    other = vals.copy()
    for r in rng.choice(m, m // 2, replace=False):
        other[r] = pool[rng.integers(0, len(pool))]
    old = _images(ds, tag=vals)
    new = _images(ds, tag=other, coco_id=np.where(rng.random(m) < 0.3, 0, ds.images.extra["coco_id"]))
    order = rng.permutation(m)[: m - 2]  # other order, two images dropped
    new = new.select_images(order)
    d = diff_datasets(old, new)
    assert {c: v.tolist() for c, v in d.image_metadata.items()} == _image_reference(old, new)


# -- annotations -----------------------------------------------------------------------------------------------------
def test_an_annotation_area_change_is_reported(ds: Dataset) -> None:
    area = ds.annotations.extra["area"].copy()
    area[3] = 1.0
    d = diff_datasets(ds, _ann_extra(ds, area=area))
    assert not d.unchanged  # was: "No change"
    assert (d.n_added, d.n_removed) == (0, 0)  # the annotation is kept, its metadata changed
    assert d.annotation_metadata == {"area": 1}
    img = str(ds.images.path[ds.annotations.image[3]])
    assert d.images_changed.tolist() == [img] and d.metadata_per_image.tolist() == [1]
    assert not d.record_changed.any()
    out = d.to_dict()
    assert out["annotation_metadata_changed"] == {"area": 1} and out["n_annotations_metadata_changed"] == 1
    assert out["images_changed"] == [{"path": img, "added": 0, "removed": 0, "record_changed": False, "metadata": 1}]


def test_an_edited_annotation_is_an_edit_not_a_metadata_change(ds: Dataset) -> None:
    a = ds.annotations
    assert a.box is not None
    box, area = a.box.copy(), a.extra["area"].copy()
    box[2, 2] += 5.0
    area[2] += 50.0
    d = diff_datasets(ds, _ann_extra(ds.replace(annotations=a.with_columns(box=box)), area=area))
    assert (d.n_added, d.n_removed) == (1, 1) and d.annotation_metadata == {}


def _ann_reference(old: Dataset, new: Dataset) -> dict[str, int]:
    """Brute force: per extra column, the annotations kept (the same image path, class and box, as multisets) less
    those that also keep their value in the column."""
    def rows(ds: Dataset, col: str | None) -> Counter[Any]:
        a = ds.annotations
        assert a.box is not None
        out: Counter[Any] = Counter()
        for r in range(len(a)):
            key: tuple[Any, ...] = (str(ds.images.path[a.image[r]]), int(a.label[r]), tuple(a.box[r].tolist()))
            if col is not None:
                v = a.extra[col][r] if col in a.extra else None
                key += (None if is_unset(v) else (type(v.item() if isinstance(v, np.generic) else v), str(v)),)
            out[key] += 1
        return out
    kept = sum((rows(old, None) & rows(new, None)).values())
    cols = sorted(set(old.annotations.extra) | set(new.annotations.extra))
    out = {c: kept - sum((rows(old, c) & rows(new, c)).values()) for c in cols}
    return {c: n for c, n in out.items() if n}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_annotation_metadata_matches_a_brute_force_reference(ds: Dataset, seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = ds.replace(annotations=ds.annotations.with_columns(attributes={}))
    dup = base.select(np.sort(np.concatenate([np.arange(base.n_annotations), rng.choice(base.n_annotations, 6)])))
    n = dup.n_annotations
    area = dup.annotations.extra["area"].copy()
    area[rng.choice(n, 5, replace=False)] = rng.uniform(0, 10, 5)
    ids = dup.annotations.extra["coco_id"].copy()
    ids[rng.choice(n, 4, replace=False)] += 1000
    new = _ann_extra(dup, area=area, coco_id=ids).select(rng.random(n) > 0.1)
    d = diff_datasets(dup, new)
    assert d.annotation_metadata == _ann_reference(dup, new) and d.annotation_metadata
    assert int(d.metadata_per_image.sum()) <= sum(d.annotation_metadata.values())


def test_duplicates_that_swap_their_metadata_are_unchanged(ds: Dataset) -> None:
    """Annotations are multisets: two identical boxes whose ids swap are the same two annotations."""
    pair = ds.select(np.sort(np.r_[np.arange(ds.n_annotations), 0]))  # row 0 twice
    ids = pair.annotations.extra["coco_id"].copy()
    assert ids[0] == ids[1]
    ids[1] = 999
    old = _ann_extra(pair, coco_id=ids)
    swapped = ids.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    assert diff_datasets(old, _ann_extra(pair, coco_id=swapped)).unchanged


# -- info, root, order ---------------------------------------------------------------------------------------------
def test_info_and_root_changes_are_reported(ds: Dataset) -> None:
    info = {"coco": {"info": {"year": 2017}, "licenses": [{"id": 1, "name": "a"}]}}
    old = ds.replace(info=info, root=Path("images"))
    new = old.replace(info={"coco": {"info": {"year": 2018}, "licenses": info["coco"]["licenses"]}})
    d = diff_datasets(old, new)
    assert not d.unchanged and d.info_changed == ("coco.info",)
    assert diff_datasets(old, old.replace(info={"coco": {**info["coco"], "extra": 1}})).info_changed == ("coco.extra",)
    assert diff_datasets(old, old.replace(info={})).info_changed == ("coco",)
    moved = diff_datasets(old, old.replace(root=Path("elsewhere")))
    assert not moved.unchanged and moved.root_changed
    assert moved.to_dict()["root"] == {"old": "images", "new": "elsewhere"}
    assert diff_datasets(old, old.replace(info=json.loads(json.dumps(info)))).unchanged  # equal values


def test_rows_in_another_order_are_unchanged_but_said(ds: Dataset) -> None:
    order = np.random.default_rng(0).permutation(ds.n_images)
    d = diff_datasets(ds, ds.select_images(order))
    assert d.unchanged and d.reordered
    a = ds.annotations
    within = np.lexsort((-np.arange(len(a)), a.image))
    d = diff_datasets(ds, ds.replace(annotations=a.take(within)))
    assert d.unchanged and d.reordered
    same = diff_datasets(ds, ds)
    assert same.unchanged and not same.reordered and not same.to_dict()["reordered"]


# -- the workspace: unchanged exactly when the content is the same --------------------------------------------------
def test_unchanged_agrees_with_the_versions_content(tmp_path: Path, ds: Dataset) -> None:
    ws = init_workspace(tmp_path / "ws")
    base = ds.replace(info={"coco": {"info": {"year": 2017}}}, root=tmp_path / "images")
    area = ds.annotations.extra["area"].copy()
    area[0] += 1
    lic = ds.images.extra["license"].copy()
    lic[0] = 7
    edits = {"area": _ann_extra(base, area=area), "license": _images(base, license=lic),
             "info": base.replace(info={"coco": {"info": {"year": 2018}}}), "root": base.replace(root=tmp_path / "x"),
             "nothing": base}
    for name, edited in edits.items():
        first = ws.commit(base, dataset=name, message="base")
        second = ws.commit_result(edited, dataset=name, message=name)
        d = diff_datasets(ws.load(first.id), ws.load(second.version.id))
        assert d.unchanged == second.unchanged == (name == "nothing"), name


def test_maslow_diff_reports_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = shapes(6, seed=1)
    io.write(src, tmp_path / "v1.json", "coco")
    data = json.loads((tmp_path / "v1.json").read_text())
    data["annotations"][0]["area"] = 1.0
    data["images"][2]["flickr_url"] = "http://changed"
    (tmp_path / "v2.json").write_text(json.dumps(data))
    assert run_cli_streams(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    for f in ("v1.json", "v2.json"):
        code, out, err = run_cli_streams(["import", str(tmp_path / f), "--from", "coco", "--name", "d",
                                          "--no-check-files", "--json"])
        assert code == 0, err
    code, out, err = run_cli_streams(["diff", "--json"])
    assert code == 0, err
    d = json.loads(out)
    assert d["old"]["content"] != d["new"]["content"]
    assert not d["unchanged"]  # was true
    assert d["annotation_metadata_changed"] == {"area": 1}
    name = data["images"][2]["file_name"]
    assert d["image_metadata_changed"] == {"flickr_url": {"n": 1, "images": [name]}}
    assert (d["n_annotations_added"], d["n_annotations_removed"]) == (0, 0)
    # the same file again with another image root: a new version, and the diff says the root changed
    (tmp_path / "other").mkdir()
    code, out, err = run_cli_streams(["import", str(tmp_path / "v2.json"), "--from", "coco", "--name", "d",
                                      "--no-check-files", "--images-root", str(tmp_path / "other"), "--json"])
    assert code == 0, err
    code, out, err = run_cli_streams(["diff", "--json"])
    d = json.loads(out)
    assert code == 0 and not d["unchanged"] and d["root_changed"]
    assert d["root"]["new"] == str((tmp_path / "other").resolve())


def test_vector_and_date_columns_and_versions_without_annotations(ds: Dataset) -> None:
    """Extra columns of a vector per row and of dates compare by value; a version without annotations (but with a
    keypoints column) compares too: its reshape raised "cannot reshape array of size 0"."""
    n = ds.n_annotations
    assert ds.annotations.keypoints is not None
    bb = np.arange(n * 4.0).reshape(n, 4)
    when = np.full(n, np.datetime64("2020-01-01"), "datetime64[D]")
    old = _ann_extra(ds, bb=bb, when=when)
    bb2, when2 = bb.copy(), when.copy()
    bb2[1, 3] += 1
    when2[[2, 3]] = np.datetime64("NaT")  # set -> unset
    assert diff_datasets(old, _ann_extra(ds, bb=bb2, when=when2)).annotation_metadata == {"bb": 1, "when": 2}
    empty = ds.select(np.zeros(n, bool))
    assert empty.annotations.keypoints is not None and empty.n_annotations == 0
    assert diff_datasets(empty, empty).unchanged
    d = diff_datasets(empty, ds)
    assert (d.n_added, d.n_removed) == (n, 0) and d.annotation_metadata == {}
