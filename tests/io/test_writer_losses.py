"""What the folder writers keep or count: Open Images keeps images without boxes and splits (``image-ids.csv``);
VOC, YOLO, DOTA, Open Images and label maps count the class ids and supercategories they can't hold; VOC reads an
inverted box as the box written the right way round and gives sub-pixel boxes back to the bit.

Sources: the Open Images download page (``image_ids_and_rotation.csv``, ``validation-images-with-rotation.csv``:
``ImageID,Subset,OriginalURL,...,Rotation``); the VOC devkit's 1-based pixels (``x1 = xmin - 1``); the CVAT writer's
``class_id``/``supercategory`` counts (``_cvat_write.py``), the reference for what the others must count.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.io import coco, dota, openimages, semantic, voc, yolo
from maslow.sample import shapes, write_shapes


def _without_boxes(ds: Dataset, rows: list[int]) -> Dataset:
    return ds.select(~np.isin(ds.annotations.image, rows))


def _split(ds: Dataset) -> list[str]:
    assert ds.images.split is not None
    return [str(s) for s in ds.images.split.tolist()]


# -- Open Images: images without boxes, splits ----------------------------------------------------------------
def test_openimages_keeps_images_without_boxes_their_order_and_splits(tmp_path: Path) -> None:
    ds = _without_boxes(write_shapes(tmp_path / "s", 8, seed=1), [2, 6])  # 0 and 7 have none either
    assert _split(ds) == ["train"] * 4 + ["val"] * 4
    rep = openimages.write(ds, tmp_path / "oi")
    assert rep.n_images == 8 and not {"images", "split"} & set(rep.lost)
    assert any("image-ids.csv lists every image" in n and "the 4 images without a box" in n and "the splits" in n
               for n in rep.notes), rep.notes
    back, report = openimages.parse(tmp_path / "oi")
    assert not [i for i in report if i.severity == "error"]
    assert back.n_images == 8  # the old writer gave back 4, without splits
    assert back.images.path.tolist() == [p.rsplit("/", 1)[1] for p in ds.images.path.tolist()]
    assert _split(back) == _split(ds)
    assert back.images.width.tolist() == ds.images.width.tolist()
    assert back.annotations.image.tolist() == ds.annotations.image.tolist()


def test_openimages_writes_no_image_list_where_the_boxes_give_every_image_back(tmp_path: Path) -> None:
    ds = shapes(6, seed=1)
    ds = _without_boxes(ds, [0]).select_images(np.arange(1, 6))  # every image has boxes
    ds = ds.replace(images=dataclasses.replace(ds.images, split=np.array([""] * 5, object)))
    rep = openimages.write(ds, tmp_path / "oi", images=False)
    assert not (tmp_path / "oi" / openimages.IMAGE_LIST_FILE).exists()
    assert not any("image-ids" in n for n in rep.notes)
    back, _ = openimages.parse(tmp_path / "oi")
    assert back.n_images == 5


def test_openimages_reads_an_official_images_list_with_subsets(tmp_path: Path) -> None:
    root = tmp_path / "oi"
    root.mkdir()
    (root / "validation-annotations-bbox.csv").write_text(
        "ImageID,LabelName,XMin,XMax,YMin,YMax\nb2,/m/01,0.1,0.5,0.2,0.6\n")
    (root / "validation-images-with-rotation.csv").write_text(
        "ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,Title,OriginalSize,"
        "OriginalMD5,Thumbnail300KURL,Rotation\n"
        "a1,validation,u,u,l,p,x,t,1,m,th,0.0\nb2,validation,u,u,l,p,x,t,1,m,th,\nc3,test,u,u,l,p,x,t,1,m,th,90\n")
    ds, _ = openimages.parse(root)
    assert ds.images.path.tolist() == ["a1.jpg", "b2.jpg", "c3.jpg"]  # the list's order; a1 and c3 have no box
    assert _split(ds) == ["validation", "validation", "test"]
    assert ds.annotations.image.tolist() == [1]


def test_openimages_images_list_twice_listed_image_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "oi"
    root.mkdir()
    (root / "annotations-bbox.csv").write_text("ImageID,LabelName,XMin,XMax,YMin,YMax\na,/m/01,0.1,0.5,0.2,0.6\n")
    (root / "image-ids.csv").write_text("ImageID,Subset\na,train\nb,val\na,val\n")
    ds, report = openimages.parse(root)
    assert _split(ds) == ["train", "val"]
    (issue,) = report.of_type("duplicate_image")
    assert issue.record == "line 4" and issue.field == "Subset"


def test_openimages_bccd_splits_survive(tmp_path: Path) -> None:
    src = Path(__file__).parents[3] / "shared" / "data" / "bccd" / "annotations"
    if not src.is_dir():
        pytest.skip("the BCCD sample (../shared/data/bccd) is not here")
    ds, _ = voc.parse(src)
    openimages.write(ds, tmp_path / "oi", images=False)
    back, _ = openimages.parse(tmp_path / "oi")
    assert back.n_images == ds.n_images == 364 and back.n_annotations == ds.n_annotations
    assert _split(back) == _split(ds)
    assert {s: _split(back).count(s) for s in ("train", "val", "test")} == {"train": 205, "val": 87,
                                                                                         "test": 72}


# -- class ids and supercategories --------------------------------------------------------------------------
def _classes(ds: Dataset, ids: list[int | None], supers: list[str]) -> Dataset:
    return ds.replace(schema=ds.schema.with_classes(dataclasses.replace(c, id=i, supercategory=s) for c, i, s
                                                    in zip(ds.schema.classes, ids, supers, strict=True)))


def _write(fmt: str, ds: Dataset, dst: Path) -> object:
    if fmt == "voc":
        return voc.write(ds, dst, images=False)
    if fmt == "yolo":
        return yolo.write(ds, dst, images=False, task="detect")
    if fmt == "dota":
        return dota.write(ds, dst, images=False)
    if fmt == "openimages":
        return openimages.write(ds, dst, images=False)
    return semantic.write(ds, dst)


@pytest.mark.parametrize(("fmt", "ids", "n_ids"), [
    pytest.param("voc", [1, 5, 90], 3, id="voc-any-id"),       # VOC keeps no ids: COCO -> VOC -> COCO renumbers
    pytest.param("yolo", [1, 5, 90], 3, id="yolo-not-0..k-1"),
    pytest.param("yolo", [0, 1, 2], 0, id="yolo-0..k-1"),
    pytest.param("dota", [1, 5, 90], 3, id="dota-any-id"),
    pytest.param("openimages", [1, 5, 90], 2, id="openimages-not-1..n"),
    pytest.param("openimages", [None, None, None], 0, id="openimages-no-ids"),
    pytest.param("masks", [1, 5, 90], 0, id="masks-ids-are-values"),
    pytest.param("masks", [5, 5, 7], 2, id="masks-repeated-ids"),
])
def test_class_ids_and_supercategories_that_cant_be_held_are_counted(tmp_path: Path, fmt: str, ids: list[int | None],
                                                                     n_ids: int) -> None:
    ds = _classes(shapes(4, seed=2), ids, ["shape", "", "shape"])
    rep = _write(fmt, ds, tmp_path / "out")
    lost = rep.lost  # type: ignore[attr-defined]
    assert lost["supercategory"] == 2, dict(lost)
    assert lost["class_id"] == n_ids, dict(lost)
    notes = " ".join(rep.notes)  # type: ignore[attr-defined]
    assert "supercategories are not written" in notes and "'circle': 'shape'" in notes
    assert ("class ids" in notes) == (n_ids > 0)


def test_coco_voc_coco_renumbering_is_reported(tmp_path: Path) -> None:
    """The audit's case: toothbrush (id 90, supercategory indoor) comes back as id 3 and no supercategory."""
    ds = _classes(shapes(4, seed=2), [1, 2, 90], ["shape", "shape", "indoor"])
    rep = voc.write(ds, tmp_path / "voc", images=False)
    assert rep.lost["class_id"] == 3 and rep.lost["supercategory"] == 3
    assert any("'triangle' 90" in n for n in rep.notes)
    back, _ = voc.parse(tmp_path / "voc", images_root=ds.root)
    coco.write(back, tmp_path / "back.json")
    again, _ = coco.parse(tmp_path / "back.json")
    assert [(c.id, c.supercategory) for c in again.schema.classes][2] == (3, "")  # what the report announced


# -- VOC: inverted boxes, exact round trip ------------------------------------------------------------------
def _voc(tmp_path: Path, box: tuple[str, str, str, str]) -> Path:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
    (root / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>100</width><height>100</height></size><object><name>"
        f"cat</name><bndbox>{coords}</bndbox></object></annotation>")
    return root


@pytest.mark.parametrize("box", [("50", "10", "20", "40"), ("20", "40", "50", "10"), ("50", "40", "20", "10")],
                         ids=["x", "y", "both"])
def test_voc_inverted_box_is_the_box_written_the_right_way_round(tmp_path: Path, box: tuple[str, ...]) -> None:
    ds, report = voc.parse(_voc(tmp_path, box))  # type: ignore[arg-type]
    np.testing.assert_array_equal(ds.annotations.box, [[19, 9, 50, 40]])  # as xmin=20 ymin=10 xmax=50 ymax=40
    issues = report.of_type("voc_inverted_box")
    assert issues and all(i.severity == "error" and "imported with the two swapped" in i.message for i in issues)


def test_voc_inverted_box_with_origin_0(tmp_path: Path) -> None:
    ds, _ = voc.parse(_voc(tmp_path, ("50", "10", "20", "40")), origin=0)
    np.testing.assert_array_equal(ds.annotations.box, [[20, 10, 50, 40]])


def test_voc_sub_pixel_boxes_come_back_to_the_bit(tmp_path: Path) -> None:
    rng = random.Random(7)
    ds = write_shapes(tmp_path / "s", 6, seed=3)
    assert ds.annotations.box is not None
    box = ds.annotations.box.copy()
    n = len(box)
    x1 = [3.882256790274258, 0.1, 1e-20, -0.25] + [rng.uniform(0, 60) for _ in range(n - 4)]
    y1 = [rng.uniform(0, 1) for _ in range(n)]
    box[:, 0], box[:, 1] = x1, y1
    box[:, 2], box[:, 3] = box[:, 0] + [rng.uniform(0.5, 40) for _ in range(n)], box[:, 1] + 7.3
    parts = np.full(n, None, object)
    parts[0] = [{"name": "head", "box": [1.8822567902742587, 0.3, 2.5, 4.0]}]
    ann = ds.annotations.with_columns(box=box, extra={**ds.annotations.extra, "voc_parts": parts})
    ds = ds.replace(annotations=ann)
    voc.write(ds, tmp_path / "voc", images=False)
    text = (tmp_path / "voc" / "Annotations").glob("*.xml")
    assert any("<xmin>4.882256790274258</xmin>" in p.read_text() for p in text)
    back, _ = voc.parse(tmp_path / "voc", images_root=ds.root)
    np.testing.assert_array_equal(back.annotations.box, box)  # to the bit: 1 ulp off before for 3.882256790274258
    assert back.annotations.extra["voc_parts"][0] == parts[0]


def test_voc_reads_a_long_decimal_xmin_exactly(tmp_path: Path) -> None:
    """A text float() rounds to a whole number is not taken as one (1.000...0541 - 1 is not 0)."""
    ds, _ = voc.parse(_voc(tmp_path, ("1.000000000000000054104627966160113", "1", "2", "2")))
    assert ds.annotations.box is not None and ds.annotations.box[0, 0] == 5.4104627966160113e-17
