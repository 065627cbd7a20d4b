"""Randomised round trips: every format keeps what it documents and counts in ``ExportReport.lost`` what it can't.

Datasets come from ``tests.io.gen_datasets.random_dataset`` (odd names, nested folders, empty and crowd-only
images, border and tiny boxes, multi-part polygons, masks, keypoints v = 0/1/2, attributes of every type).
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.tables import Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import coco, cvat, labelstudio, voc, yolo
from maslow.io._export import output_names
from tests.helpers import assert_datasets_equal
from tests.io.gen_datasets import CLASS_NAMES, random_dataset, write_images
from tests.io.test_coco_native import _same_result

SEEDS = st.integers(0, 10_000)
ATTRS = ("flag", "num", "text", "level")
FEW = settings(max_examples=25, deadline=None)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("roundtrip")


def _tmp(base: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=base))


def _errors(report: Any, *skip: str) -> list[Any]:
    return [i for i in report.issues if i.severity in ("error", "warning") and i.type not in skip]


def _with_paths(ds: Dataset, paths: list[str], split: Any = None) -> Dataset:
    im = ds.images
    return ds.replace(images=Images(path=obj_array(paths), width=im.width, height=im.height,
                                    split=im.split if split is None else split))


def _n(col: Any) -> int:
    return sum(v is not None for v in col.tolist())


# -- COCO ------------------------------------------------------------------------------------------------------
@FEW
@given(SEEDS)
def test_coco_round_trip_is_exact(base: Path, seed: int) -> None:
    ds = random_dataset(seed)
    path = _tmp(base) / "x.json"
    rep = coco.write_coco(ds, path)
    back, report = coco.parse(path)
    assert rep.lossless, rep.lost
    assert not _errors(report)
    assert back.schema.names == ds.schema.names
    assert [c.keypoints for c in back.schema.classes] == [c.keypoints for c in ds.schema.classes]
    kp = ds.annotations.keypoints
    if kp is not None:  # an annotation of a keypoint class without keypoints is written as 3 K zeros (unlabelled)
        k = np.asarray([len(c.keypoints) for c in ds.schema.classes])[ds.annotations.label]
        none = np.isnan(kp).all(axis=(1, 2)) & (k > 0)
        inside = np.arange(kp.shape[1])[None, :, None] < k[:, None, None]
        kp = np.where(none[:, None, None] & inside, 0.0, kp)
        ds = ds.replace(annotations=ds.annotations.with_columns(keypoints=kp))
    assert_datasets_equal(ds, back, fields=("path", "size", "split", "label", "box", "iscrowd", "keypoints", "mask",
                                            "polygon"), atol=0, attributes=ATTRS, absent_as_empty=True)


def _odd_json(top: dict[str, Any]) -> list[str]:
    """The same content written in other ways: escapes, whitespace, key order, number spellings, float ids."""
    rev = {k: top[k] for k in reversed(list(top))}
    rev["annotations"] = [{k: a[k] for k in reversed(list(a))} for a in top["annotations"]]
    floats = json.loads(json.dumps(top))
    for a in floats["annotations"]:
        a.update(id=float(a["id"]), image_id=float(a["image_id"]), bbox=[-0.0 if v == 0 else v for v in a["bbox"]])
    plain = json.dumps(top)
    return [json.dumps(top, ensure_ascii=True), json.dumps(top, indent="\t").replace(": ", " :\r\n "),
            json.dumps(rev), json.dumps(floats), plain.replace("/", "\\/"),
            re.sub(r"(?<=[\[,:])(\d+)\.0(?=[,\]}])", r"\1e0", plain),
            re.sub(r'"area":(\d+)\.0', r'"area":\g<1>00e-2', plain)]


@settings(max_examples=15, deadline=None)
@given(SEEDS)
def test_native_and_python_coco_readers_agree_on_odd_json(base: Path, seed: int) -> None:
    mp = pytest.MonkeyPatch()
    tmp = _tmp(base)
    coco.write_coco(random_dataset(seed), tmp / "x.json")
    try:
        for k, text in enumerate(_odd_json(json.loads((tmp / "x.json").read_text()))):
            (tmp / f"{k}.json").write_text(text)
            results = []
            for flag in ("0", "1"):
                mp.setenv("MASLOW_NATIVE", flag)
                results.append(coco.parse(tmp / f"{k}.json"))
            _same_result(*results)
    finally:
        mp.undo()


# -- YOLO ------------------------------------------------------------------------------------------------------
def _yolo_paths(ds: Dataset) -> tuple[list[str], Any]:
    split = [s or "train" for s in ds.images.split.tolist()]
    out = [""] * ds.n_images
    for s in dict.fromkeys(split):
        members = [i for i, x in enumerate(split) if x == s]
        for i, name in zip(members, output_names([str(ds.images.path[i]) for i in members]), strict=True):
            out[i] = f"images/{s}/{name}"
    return out, obj_array(split)


@settings(max_examples=15, deadline=None)
@given(SEEDS, st.sampled_from(["detect", "segment", "pose"]))
def test_yolo_round_trip_counts_the_rest(base: Path, seed: int, task: str) -> None:
    tmp = _tmp(base)
    ds = write_images(random_dataset(seed, polygons=task != "detect"), tmp / "src")
    if task == "pose" and ds.annotations.keypoints is None:  # refused: pose files without keypoints train nothing
        with pytest.raises(FormatError, match="needs keypoints"):
            yolo.write(ds, tmp / "out", task=task)
        return
    rep = yolo.write(ds, tmp / "out", task=task)
    back, report = yolo.parse(tmp / "out" / "data.yaml")
    assert not _errors(report)
    a = ds.annotations
    kp = None
    if a.keypoints is not None:  # all 0 0 0: no keypoints (documented)
        kp = a.keypoints.copy()
        kp[(np.nan_to_num(kp) == 0).all(axis=(1, 2))] = np.nan
    want = _with_paths(ds.replace(annotations=a.with_columns(keypoints=kp)), *_yolo_paths(ds))
    atol = 1.01e-6 * float(max(ds.images.width.max(), ds.images.height.max()))
    fields = ["path", "size", "split", "label"] + (["box"] if task != "segment" else []) + \
        (["keypoints"] if task == "pose" else [])
    assert_datasets_equal(want, back, fields=fields, atol=atol, absent_as_empty=True)
    assert back.schema.names == ds.schema.names
    lost = Counter({"attributes": sum(_n(c) for c in a.attributes.values()), "iscrowd": int(a.iscrowd.sum()),
                    "class_id": sum(c.id not in (None, k) for k, c in enumerate(ds.schema.classes)),
                    "supercategory": sum(bool(c.supercategory) for c in ds.schema.classes)})
    assert a.mask is not None
    if task == "segment":
        assert a.polygon is not None and a.mask is not None
        lost["mask"] = sum(m is not None and a.polygon.null[r] for r, m in enumerate(a.mask.tolist()))
        lost["polygon_parts"] = sum(len(p) - 1 for p in a.polygon.tolist() if p)
    else:
        lost["mask"] = _n(a.mask)
        lost["polygon"] = 0 if a.polygon is None else int((~a.polygon.null).sum())
    if task != "pose" and a.keypoints is not None:
        lost["keypoints"] = int((~np.isnan(a.keypoints).all(axis=(1, 2))).sum())
    assert +Counter({k: v for k, v in rep.lost.items() if k != "box"}) == +lost


# -- VOC -------------------------------------------------------------------------------------------------------
@FEW
@given(SEEDS)
def test_voc_round_trip_counts_the_rest(base: Path, seed: int) -> None:
    tmp = _tmp(base)
    names = tuple(n for n in CLASS_NAMES if n not in ("#hash", "pad "))  # labelmap.txt can't hold these
    ds = write_images(random_dataset(seed, class_names=names), tmp / "src")
    rep = voc.write(ds, tmp / "out")
    back, report = voc.parse(tmp / "out")
    assert not _errors(report, "voc_zero_based")
    a = ds.annotations

    def text(v: Any) -> Any:  # attributes come back as text (bools as CVAT's checkbox values)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return str(int(v)) if v.is_integer() else repr(v)
        return v.strip() if isinstance(v, str) else v

    attrs = {k: obj_array([text(v) for v in col.tolist()]) for k, col in a.attributes.items()}
    want = _with_paths(ds.replace(annotations=a.with_columns(attributes=attrs)), output_names(ds.images.path.tolist()))
    assert_datasets_equal(want, back, fields=("path", "size", "split", "label", "box"), atol=0, attributes=ATTRS,
                          absent_as_empty=True)
    assert back.schema.names == ds.schema.names
    assert a.mask is not None and a.polygon is not None
    lost = _class_losses(ds) + Counter({"iscrowd": int(a.iscrowd.sum()), "mask": _n(a.mask),
                                        "polygon": int((~a.polygon.null).sum()),
                                        "attributes": sum(isinstance(v, str) and v != v.strip()
                                                          for c in a.attributes.values() for v in c.tolist())})
    if a.keypoints is not None:
        lost["keypoints"] = int((~np.isnan(a.keypoints).all(axis=(1, 2))).sum())
    assert +Counter(rep.lost) == +lost


# -- CVAT and Label Studio ----------------------------------------------------------------------------------
def _class_losses(ds: Dataset) -> Counter[str]:
    c = ds.schema.classes
    return Counter({"class_id": sum(x.id is not None for x in c), "supercategory": sum(bool(x.supercategory) for x in c)})


@FEW
@given(SEEDS)
def test_cvat_round_trip_counts_the_rest(base: Path, seed: int) -> None:
    ds = random_dataset(seed, max_rings=1)
    path = _tmp(base) / "annotations.xml"
    rep = cvat.write(ds, path)
    back, report = cvat.parse(path)
    assert not _errors(report)
    assert back.schema.names == ds.schema.names
    assert_datasets_equal(ds, back, fields=("path", "size", "split", "label", "box", "polygon", "mask"), atol=0,
                          attributes=ATTRS, absent_as_empty=True)
    lost = _class_losses(ds) + Counter({"iscrowd": int(ds.annotations.iscrowd.sum()),
                                        "class_keypoints": sum(bool(c.keypoints) for c in ds.schema.classes)})
    assert +Counter({k: v for k, v in rep.lost.items() if k != "keypoint_visibility"}) == +lost


@FEW
@given(SEEDS)
def test_labelstudio_round_trip_counts_the_rest(base: Path, seed: int) -> None:
    tmp = _tmp(base)
    ds = write_images(random_dataset(seed, max_rings=1, keypoints=False), tmp)
    rep = labelstudio.write(ds, tmp / "tasks.json")
    back, report = labelstudio.parse(tmp / "tasks.json")
    assert not _errors(report)
    assert sorted(back.schema.names) == sorted(ds.schema.names)
    assert_datasets_equal(ds, back, fields=("path", "size", "label", "box", "polygon", "mask"), atol=1e-9,
                          attributes=ATTRS, absent_as_empty=True)
    lost = _class_losses(ds) + Counter({"iscrowd": int(ds.annotations.iscrowd.sum()),
                                        "split": sum(bool(s) for s in ds.images.split.tolist()),
                                        "class_order": int(back.schema.names != ds.schema.names)})
    assert +Counter(rep.lost) == +lost


# -- chains through another format ------------------------------------------------------------------------------
@settings(max_examples=8, deadline=None)
@given(SEEDS)
def test_coco_chains_keep_the_common_subset(base: Path, seed: int) -> None:
    """COCO -> F -> COCO keeps paths (as F renames them), sizes, labels and boxes, and what else F keeps."""
    tmp = _tmp(base)
    names = tuple(n for n in CLASS_NAMES if n not in ("#hash", "pad "))
    src = write_images(random_dataset(seed, class_names=names, max_rings=1, keypoints=False, crowd=False),
                       tmp / "src")
    coco.write_coco(src, tmp / "src" / "a.json")
    ds = coco.read_coco(tmp / "src" / "a.json")
    atol = 1.01e-6 * float(max(ds.images.width.max(), ds.images.height.max()))
    yolo_paths = _yolo_paths(ds)[0]
    renamed = {"yolo": dict(zip(yolo_paths, ds.images.path.tolist(), strict=True)),
               "voc": dict(zip(output_names(ds.images.path.tolist()), ds.images.path.tolist(), strict=True))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # findings are checked by the round trips above
        for fmt, out, read_from, fields in (
                ("yolo", tmp / "y", tmp / "y" / "data.yaml", ("path", "size", "label", "box")),
                ("voc", tmp / "v", tmp / "v", ("path", "size", "split", "label", "box")),
                ("cvat", tmp / "c.xml", tmp / "c.xml", ("path", "size", "split", "label", "box", "polygon", "mask")),
                ("labelstudio", tmp / "src" / "t.json", tmp / "src" / "t.json",
                 ("path", "size", "label", "box", "polygon", "mask")),
                ("parquet", tmp / "p", tmp / "p", ("path", "size", "split", "label", "box", "polygon", "mask"))):
            io.write(ds, out, fmt)
            coco.write_coco(io.read(read_from, fmt), tmp / f"{fmt}.json")
            back = coco.read_coco(tmp / f"{fmt}.json")
            if fmt in renamed:
                back = _with_paths(back, [renamed[fmt][p] for p in back.images.path.tolist()])
            assert_datasets_equal(ds, back, fields=fields, atol=atol if fmt == "yolo" else 0, absent_as_empty=True)
            assert sorted(back.schema.names) == sorted(ds.schema.names), fmt
