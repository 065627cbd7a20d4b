"""The workspace as it grows: version records stay small whatever the import report holds, and two versions are
compared (``diff_datasets``, ``maslow diff``) by content, as a brute-force multiset comparison does."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.issues import Issue, Report
from maslow.core.types import is_unset, obj_array
from maslow.sample import shapes
from maslow.store import init_workspace
from maslow.store.diff import diff_datasets
from tests.helpers import run_cli_streams


def _report(n: int) -> Report:
    return Report(tuple(Issue("missing_image", "error", f"img/{i:07d}.jpg: image file not found",
                              file=f"img/{i:07d}.jpg", record=f"images[{i}]", field="path", image=i)
                        for i in range(n)))


def test_the_version_record_does_not_grow_with_the_report(tmp_path: Path) -> None:
    """A 200,000-image import whose files were not found wrote every issue into version.json (50 MB), which every
    command naming a version parses again (``maslow log``: every version's)."""
    ws = init_workspace(tmp_path)
    ds = shapes(6, seed=0)
    sizes = []
    for k, n in enumerate((3, 3000)):
        v = ws.commit(ds.select(np.arange(ds.n_annotations - k)), dataset="d", message=f"{n} issues",
                      report=_report(n))
        sizes.append((tmp_path / ".maslow" / "versions" / v.id / "version.json").stat().st_size)
        assert ws.version(v.id).report == {"n_issues": n, "n_errors": n, "counts": {"missing_image": n}}
        back = ws.report(v.id)
        assert len(back) == n and back.issues[-1] == _report(n).issues[-1]
        assert ws.load(v.id).n_annotations == ds.n_annotations - k  # the report is not part of the content hash
    assert abs(sizes[1] - sizes[0]) < 100, sizes
    assert len(ws.report(ws.commit(ds.select([0]), dataset="d", message="no report").id)) == 0


def test_records_holding_the_whole_report_are_still_read(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    v = ws.commit(shapes(4, seed=0), dataset="d", message="m", report=_report(5))
    folder = tmp_path / ".maslow" / "versions" / v.id
    record = json.loads((folder / "version.json").read_text())
    record["report"] = _report(5).to_dict()  # as versions were written before
    (folder / "version.json").write_text(json.dumps(record))
    (folder / "report.json").unlink()
    assert len(ws.report(v.id)) == 5 and ws.version(v.id).report["n_issues"] == 5
    assert ws.load(v.id).n_images == 4


# -- diff ----------------------------------------------------------------------------------------------------------
def _key(ds: Dataset, r: int) -> tuple[Any, ...]:
    """Everything annotation ``r`` holds, as a tuple: the brute-force reference's identity of an annotation."""
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None and a.source is not None
    poly = None if a.polygon is None or a.polygon[r] is None else tuple(tuple(p.tolist()) for p in a.polygon[r])
    mask = None if a.mask is None or a.mask[r] is None else (tuple(a.mask[r]["size"]), a.mask[r]["counts"])
    kp = None if a.keypoints is None else tuple(np.nan_to_num(a.keypoints[r], nan=-1e300).ravel().tolist())
    attrs = tuple(sorted((k, None if is_unset(v[r]) else str(v[r])) for k, v in a.attributes.items()
                         if not is_unset(v[r])))
    return (str(ds.images.path[a.image[r]]), ds.schema.names[a.label[r]],
            tuple(np.nan_to_num(a.box[r], nan=-1e300).tolist()), bool(a.iscrowd[r]), poly, mask, kp, attrs,
            a.source[r])


def _reference(old: Dataset, new: Dataset) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    c_old = Counter(_key(old, r) for r in range(old.n_annotations))
    c_new = Counter(_key(new, r) for r in range(new.n_annotations))
    return c_new - c_old, c_old - c_new


def _edited(ds: Dataset, seed: int) -> Dataset:
    """Rows removed, boxes moved, classes and attributes changed, a polygon vertex moved, one image dropped."""
    rng = np.random.default_rng(seed)
    a = ds.annotations
    assert a.box is not None
    n = len(a)
    box, label = a.box.copy(), a.label.copy()
    moved = rng.random(n) < 0.1
    box[moved] += rng.uniform(-2, 2, (int(moved.sum()), 1))
    relabel = rng.random(n) < 0.05
    label[relabel] = (label[relabel] + 1) % len(ds.schema.names)
    colour = a.attributes["colour"].copy()
    recolour = np.flatnonzero(rng.random(n) < 0.05)
    colour[recolour] = "red"
    rows = a.polygon.tolist() if a.polygon is not None else [None] * n
    bent = int(np.flatnonzero([p is not None and len(p) > 0 for p in rows])[0])
    rows[bent] = [rows[bent][0].copy()]
    rows[bent][0][0] += 1.0
    a2 = a.with_columns(box=box, label=label, attributes={**a.attributes, "colour": colour}, polygon=obj_array(rows))
    keep = rng.random(n) > 0.08
    out = ds.replace(annotations=a2).select(keep)
    return out.select_images(np.arange(1, out.n_images))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diff_counts_match_a_brute_force_multiset_comparison(seed: int) -> None:
    old = shapes(40, seed=seed)
    new = _edited(old, seed)
    d = diff_datasets(old, new)
    added, removed = _reference(old, new)
    assert (d.n_added, d.n_removed) == (sum(added.values()), sum(removed.values()))
    assert d.n_added and d.n_removed
    per_class: dict[str, list[int]] = {}
    for counter, j in ((added, 0), (removed, 1)):
        for k, c in counter.items():
            per_class.setdefault(k[1], [0, 0])[j] += c
    assert {n: [c["added"], c["removed"]] for n, c in d.per_class.items() if c["added"] or c["removed"]} == per_class
    per_image: Counter[str] = Counter()
    for counter in (added, removed):
        for k, c in counter.items():
            per_image[k[0]] += c
    dropped = str(old.images.path[0])
    assert d.images_removed.tolist() == [dropped] and not len(d.images_added)
    changed = {p: a + r for p, a, r in zip(d.images_changed.tolist(), d.added_per_image.tolist(),
                                           d.removed_per_image.tolist(), strict=True)}
    assert changed == {p: c for p, c in per_image.items() if p != dropped}


def test_diff_of_the_same_data_in_another_order_is_empty() -> None:
    ds = shapes(30, seed=4)
    order = np.random.default_rng(0).permutation(ds.n_images)
    assert diff_datasets(ds, ds.select_images(order)).unchanged  # images in another order
    a = ds.annotations
    within = np.lexsort((-np.arange(len(a)), a.image))  # each image's annotations in reverse order
    d = diff_datasets(ds, ds.replace(annotations=a.take(within)))
    assert d.unchanged and d.n_added == d.n_removed == 0
    # content, not row numbers: the same boxes without their attributes are other annotations
    bare = ds.replace(annotations=a.with_columns(attributes={}))
    assert diff_datasets(ds, bare).n_removed == ds.n_annotations


def test_maslow_diff_on_workspace_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = shapes(20, seed=5)
    new = _edited(old, 5)
    io.write(old, tmp_path / "v1.json", "coco")
    io.write(new, tmp_path / "v2.json", "coco")
    assert run_cli_streams(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    for f in ("v1.json", "v2.json"):
        assert run_cli_streams(["import", str(tmp_path / f), "--from", "coco", "--name", "d", "--no-check-files",
                                "--json"])[0] == 0
    code, out, _ = run_cli_streams(["diff", "--json", "--top", "3"])
    assert code == 0, out
    d = json.loads(out)
    want = diff_datasets(io.read(tmp_path / "v1.json", "coco"), io.read(tmp_path / "v2.json", "coco"))
    assert (d["n_annotations_added"], d["n_annotations_removed"]) == (want.n_added, want.n_removed)
    assert d["n_images_removed"] == 1 and len(d["images_changed"]) == min(3, len(want.images_changed))
    assert d["old"]["id"] == d["new"]["parent"] and "issues" not in d["new"]["report"]
    code, out, _ = run_cli_streams(["diff", "d", "d", "--json"])
    assert code == 0 and json.loads(out)["unchanged"]
    first = d["old"]["id"]
    code, _, err = run_cli_streams(["diff", first])
    assert code == 2 and "no parent" in err
    code, _, err = run_cli_streams(["diff", "a", "b", "c"])
    assert code == 2 and "[OLD] [NEW]" in err
