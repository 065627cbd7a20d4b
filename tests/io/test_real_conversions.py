"""The real datasets in ../shared/data convert between formats without losing a box, a mask or a label.

Each test reads a real dataset, writes it in other formats, reads each back and compares with the original.
Skipped when ../shared/data is absent.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from tests.conftest import shared_path

CAMVID = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
          "Bicyclist", "Unlabelled")


def _read(path: Path, fmt: str, **options: object) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the point here is what survives; issues are tested per format
        return io.import_dataset(path, fmt, check_files=False, **options).dataset


def _by_name(ds: Dataset) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    """Image file name -> sorted (class, rounded box) pairs: order-free comparison across formats."""
    out: dict[str, list[tuple[str, tuple[float, ...]]]] = {}
    s = ds.image_slices()
    names = ds.schema.names
    for i, p in enumerate(ds.images.path.tolist()):
        rows = range(s[i], s[i + 1])
        out[Path(p).name] = sorted(
            (names[ds.annotations.label[r]], tuple(np.round(ds.annotations.box[r], 3).tolist())) for r in rows
        )
    return out


@pytest.mark.parametrize("fmt", ["coco", "yolo", "cvat", "labelstudio", "parquet"])
def test_bccd_voc_converts_without_losing_a_box(tmp_path: Path, fmt: str) -> None:
    voc = _read(shared_path("bccd", "annotations"), "voc")
    assert (voc.n_images, voc.n_annotations) == (364, 4888)
    dst = tmp_path / {"coco": "a.json", "cvat": "a.xml", "labelstudio": "a.json"}.get(fmt, "out")
    rep = io.write(voc, dst, fmt)
    assert rep.n_annotations == 4888 and rep.lost.get("box", 0) == 0
    back = _read(dst, fmt)
    assert back.n_annotations == 4888
    tol = 1e-3 if fmt == "yolo" else 0.0  # YOLO stores 6 decimals of normalised coordinates
    a, b = _by_name(voc), _by_name(back)
    assert a.keys() == b.keys()
    for name in a:
        assert [c for c, _ in a[name]] == [c for c, _ in b[name]], name
        assert np.allclose([x for _, x in a[name]], [x for _, x in b[name]], atol=tol * 640 + 1e-9), name


@pytest.mark.parametrize("fmt", ["cvat", "labelstudio", "parquet", "coco"])
def test_coco_instances_keep_every_mask(tmp_path: Path, fmt: str) -> None:
    src = shared_path("coco_instances_10", "annotations", "instances_val2017_subset.json")
    ds = _read(src, "coco")
    assert (ds.n_images, ds.n_annotations) == (10, 77)
    dst = tmp_path / {"coco": "a.json", "cvat": "a.xml", "labelstudio": "a.json"}.get(fmt, "out")
    rep = io.write(ds, dst, fmt)
    back = _read(dst, fmt)
    assert back.n_annotations == 77
    assert ds.annotations.polygon is not None
    multi = np.array([p is not None and len(p) > 1 for p in ds.annotations.polygon])
    assert multi.sum() == 6  # six objects are drawn as several polygons
    if fmt == "labelstudio":  # a region holds one polygon: the other parts are counted as lost, not dropped silently
        assert rep.lost["polygon_parts"] == 6
        ds, back = ds.select(~multi), back.select(~multi)
    names_a = sorted(ds.schema.names[k] for k in ds.annotations.label)
    names_b = sorted(back.schema.names[k] for k in back.annotations.label)
    assert names_a == names_b

    def pixels(d: Dataset) -> list[int]:
        a = d.annotations
        h, w = d.images.height[a.image], d.images.width[a.image]
        out = []
        for r in range(len(a)):
            if a.mask is not None and a.mask[r] is not None:
                out.append(int(M.decode(a.mask[r]).sum()))
            else:
                out.append(int(M.decode(M.from_polygons([p.tolist() for p in a.polygon[r]], int(h[r]),
                                                         int(w[r]))).sum()))
        return sorted(out)

    assert pixels(ds) == pixels(back)  # every object covers the same number of pixels after the round trip


def test_od_metrics_fixture_agrees_across_its_formats() -> None:
    gts = shared_path("od_metrics_fixture", "annotations", "gts")
    images = shared_path("od_metrics_fixture", "images")
    coco = _by_name(_read(gts / "coco_format_v1" / "instances_default.json", "coco", images_root=images))
    cvat = _by_name(_read(gts / "cvat_format" / "annotations.xml", "cvat"))
    voc = _by_name(_read(gts / "pascalvoc_format", "voc", images_root=images))
    assert sum(map(len, coco.values())) == 273
    assert coco == cvat
    for name in coco:  # VOC's 1-based pixels: same classes, boxes within one pixel
        assert [c for c, _ in coco[name]] == [c for c, _ in voc[name]]
        assert np.allclose([x for _, x in coco[name]], [x for _, x in voc[name]], atol=1.0)


def test_camvid_label_maps_survive_parquet_and_back(tmp_path: Path) -> None:
    ds = _read(shared_path("camvid_val", "annotations"), "masks", classes=list(CAMVID), ignore_index=11)
    few = ds.select_images(np.arange(4))
    io.write(few, tmp_path / "pq", "parquet")
    back = _read(tmp_path / "pq", "parquet")
    io.write(back, tmp_path / "maps", "masks")
    for p in few.images.path.tolist():
        stem = Path(p).stem
        original = np.asarray(io.load_path(shared_path("camvid_val", "annotations", f"{stem}.png")))
        again = np.asarray(io.load_path(tmp_path / "maps" / f"{stem}.png"))
        np.testing.assert_array_equal(original, again)


def test_mnist_labels_survive_imagefolder(tmp_path: Path) -> None:
    ds = _read(shared_path("mnist_test"), "mnist")
    assert np.bincount(ds.annotations.label).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    few = ds.select_images(np.arange(0, 10000, 250))
    io.write(few, tmp_path / "folder", "imagefolder")
    back = _read(tmp_path / "folder", "imagefolder")
    a = sorted((Path(p).name.split("_")[-1], few.schema.names[k])
               for p, k in zip(few.images.path[few.annotations.image], few.annotations.label, strict=True))
    assert len(a) == back.n_annotations == 40
    assert sorted(back.schema.names[k] for k in back.annotations.label) == sorted(n for _, n in a)
