"""Open Images boxes, class descriptions and image-level labels: read, written back to the byte, and bad input named.

Sources (public): the Open Images V6/V7 download page (``validation-annotations-bbox.csv``: ``ImageID,Source,
LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside``; V7 adds
``XClick1X`` ... ``XClick4Y``; ``oidv6-class-descriptions-boxable.csv`` without a header; image-level labels with
Confidence 1/0), the 2019 challenge files (``ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf``) and hotcoco 1.3's
``COCO.from_oid`` (1 x 1 images without an images folder), used as the reference below where it is installed.
"""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.errors import FormatError, MaslowWarning
from maslow.io import openimages as oi
from maslow.sample import shapes

DATA = Path(__file__).parents[1] / "data" / "openimages"
BOXES = DATA / "validation-annotations-bbox.csv"
DESCRIPTIONS = DATA / "class-descriptions-boxable.csv"
LABELS = DATA / "validation-annotations-human-imagelabels-boxable.csv"
#: the golden images' sizes: odd sizes, so that a fraction times the size is seldom exact
SIZES = {"0001eeaf4aed83f9": (97, 61), "000595fe6fee6369": (64, 48), "00075905539074f2": (33, 50),
         "0009bad4d8539bb4": (40, 40)}
HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"


def _images(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, (image_id, size) in enumerate(SIZES.items()):
        Image.new("RGB", size).save(folder / f"{image_id}.{'jpg' if k % 2 else 'png'}")
    return folder


def _copy(tmp_path: Path, *, images: bool) -> Path:
    root = tmp_path / "oi"
    root.mkdir()
    for p in (BOXES, DESCRIPTIONS, LABELS):
        shutil.copy(p, root / p.name)
    if images:
        _images(root / "images")
    return root


def _csv(tmp_path: Path, text: str, name: str = "boxes.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_same(a: Dataset, b: Dataset) -> None:
    """Every column, the schema and info equal (boxes to the bit); the roots may differ."""
    assert a.schema == b.schema
    assert a.info == b.info
    for name in ("path", "width", "height", "split"):
        assert getattr(a.images, name).tolist() == getattr(b.images, name).tolist(), name
    assert a.images.extra.keys() == b.images.extra.keys()
    for k in a.images.extra:
        assert a.images.extra[k].tolist() == b.images.extra[k].tolist(), k
    x, y = a.annotations, b.annotations
    for name in ("image", "label", "iscrowd", "source"):
        assert getattr(x, name).tolist() == getattr(y, name).tolist(), name
    assert x.box is not None and y.box is not None
    np.testing.assert_array_equal(x.box, y.box)
    assert (x.score is None) == (y.score is None)
    if x.score is not None:
        np.testing.assert_array_equal(x.score, y.score)
    assert x.attributes.keys() == y.attributes.keys() and x.extra.keys() == y.extra.keys()
    for k in x.attributes:
        assert x.attributes[k].tolist() == y.attributes[k].tolist(), k
    for k in x.extra:
        assert x.extra[k].tolist() == y.extra[k].tolist(), k


# -- the golden files ------------------------------------------------------------------------------------------
def test_golden_files_without_images_read_as_fractions_on_1x1_images() -> None:
    ds, report = oi.parse(BOXES, class_descriptions=DESCRIPTIONS, image_labels=LABELS)
    assert report.counts() == {"openimages_no_image_size": 1}
    assert report.issues[0].severity == "info"
    assert ds.schema.names == ("Airplane", "Person", "Bicycle", "Car")  # every class described, in file order
    assert [c.id for c in ds.schema.classes] == [1, 2, 3, 4]
    assert ds.info["openimages"]["mids"] == {"Airplane": "/m/0cmf2", "Person": "/m/01g317", "Bicycle": "/m/0199g",
                                             "Car": "/m/0k4j"}
    assert ds.images.path.tolist() == [f"{i}.jpg" for i in SIZES]  # the labels-only image too, sorted
    assert ds.images.width.tolist() == [1, 1, 1, 1] and ds.images.extra["openimages_unsized"].all()
    a = ds.annotations
    np.testing.assert_array_equal(a.box[0], [0.022673031, 0.07103825, 0.9642005, 0.80054647])  # xyxy, not XXYY
    assert a.image.tolist() == [0, 1, 1, 2, 2]
    assert a.label.tolist() == [0, 1, 1, 2, 1]
    assert a.iscrowd.tolist() == [False, True, False, False, False]
    assert a.attributes["occluded"].tolist() == [False, True, None, False, True]  # -1: unknown
    assert a.attributes["depiction"].tolist() == [False, False, None, True, False]
    assert {d.name: d.type for d in ds.schema.attributes} == {"occluded": "bool", "truncated": "bool",
                                                             "depiction": "bool", "inside": "bool"}
    assert a.source.tolist() == ["human"] * 5
    assert a.extra["openimages_source"].tolist() == ["xclick", "xclick", "activemil", "xclick", "xclick"]
    assert "openimages_confidence" not in a.extra  # every Confidence is 1
    assert ds.images.extra["pos_category_ids"].tolist() == [[1], [2], [3, 2], []]
    assert ds.images.extra["neg_category_ids"].tolist() == [[4], [], [], [4, 3]]


def test_golden_files_with_images_give_pixel_boxes(tmp_path: Path) -> None:
    folder = _images(tmp_path / "images")
    ds, report = oi.parse(BOXES, images_root=folder, class_descriptions=DESCRIPTIONS)
    assert len(report) == 0
    assert ds.root == folder and ds.images.path.tolist() == ["0001eeaf4aed83f9.png", "000595fe6fee6369.jpg",
                                                             "00075905539074f2.png"]
    assert list(zip(ds.images.width.tolist(), ds.images.height.tolist(), strict=True)) == list(SIZES.values())[:3]
    assert "openimages_unsized" not in ds.images.extra
    np.testing.assert_array_equal(ds.annotations.box[1], [0, 0.1 * 48, 64, 0.95 * 48])  # touches both borders
    np.testing.assert_array_equal(ds.annotations.box[0], [0.022673031 * 97, 0.07103825 * 61, 0.9642005 * 97,
                                                          0.80054647 * 61])


@pytest.mark.parametrize("images", [False, True], ids=["fractions", "pixels"])
def test_folder_round_trip_is_exact_and_writes_the_same_bytes(tmp_path: Path, images: bool) -> None:
    ds, _ = oi.parse(_copy(tmp_path, images=images))  # a folder: the three CSVs and images/ found by name
    assert ds.images.extra["pos_category_ids"].tolist() == [[1], [2], [3, 2], []]
    rep = oi.write(ds, tmp_path / "out", copy_images=True)
    assert rep.lossless and rep.n_annotations == 5 and rep.n_images == 4, rep.to_dict()
    assert (tmp_path / "out" / oi.BOXES_FILE).read_bytes() == BOXES.read_bytes()
    assert (tmp_path / "out" / oi.DESCRIPTIONS_FILE).read_bytes() == DESCRIPTIONS.read_bytes()
    assert (tmp_path / "out" / oi.LABELS_FILE).read_bytes() == LABELS.read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").glob("images/*")) == (
        ["0001eeaf4aed83f9.png", "000595fe6fee6369.jpg", "00075905539074f2.png", "0009bad4d8539bb4.jpg"]
        if images else [])
    back, report = oi.parse(tmp_path / "out")
    assert [i.type for i in report] == ([] if images else ["openimages_no_image_size"])
    assert_same(back, ds)


def test_read_class_descriptions_without_a_header() -> None:
    plain = oi.read_class_descriptions(DESCRIPTIONS)
    assert list(plain.items())[:2] == [("/m/0cmf2", "Airplane"), ("/m/01g317", "Person")]


def test_descriptions_header_and_quoted_names_are_written_back(tmp_path: Path) -> None:
    desc = _csv(tmp_path, 'LabelName,DisplayName\n/m/0cmf2,Airplane\n/m/01g317,"Person, adult"\n', "classes.csv")
    assert oi.read_class_descriptions(desc) == {"/m/0cmf2": "Airplane", "/m/01g317": "Person, adult"}
    ds, _ = oi.parse(_csv(tmp_path, HEADER + "a1,xclick,/m/01g317,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n"),
                     class_descriptions=desc)
    assert ds.schema.names == ("Airplane", "Person, adult")
    oi.write(ds, tmp_path / "out", images=False)
    assert (tmp_path / "out" / oi.DESCRIPTIONS_FILE).read_text() == desc.read_text()


def test_without_descriptions_classes_are_mids_in_order_of_first_use_and_hotcoco_agrees() -> None:
    ds, _ = oi.parse(BOXES)
    assert ds.schema.names == ("/m/0cmf2", "/m/01g317", "/m/0199g")
    assert "mids" not in ds.info["openimages"]
    hotcoco = pytest.importorskip("hotcoco")
    ref = hotcoco.COCO.from_oid(str(BOXES))
    names = {c["id"]: c["name"] for c in ref.dataset["categories"]}
    files = {im["id"]: im["file_name"] for im in ref.dataset["images"]}
    got = sorted((files[r["image_id"]], names[r["category_id"]], bool(r["is_group_of"]), *np.round(r["bbox"], 12))
                 for r in ref.dataset["annotations"])
    box = ds.annotations.box
    xywh = np.concatenate([box[:, :2], box[:, 2:] - box[:, :2]], axis=1)
    ids = [p[:-4] for p in ds.images.path.tolist()]
    ours = sorted((ids[i], ds.schema.names[k], bool(c), *np.round(b, 12)) for i, k, c, b in
                  zip(ds.annotations.image, ds.annotations.label, ds.annotations.iscrowd, xywh, strict=True))
    assert ours == got


def test_hotcoco_reads_the_same_pixel_boxes_from_the_images(tmp_path: Path) -> None:
    hotcoco = pytest.importorskip("hotcoco")
    folder = _images(tmp_path / "images")
    ds, _ = oi.parse(BOXES, images_root=folder, class_descriptions=DESCRIPTIONS)
    ref = hotcoco.COCO.from_oid(str(BOXES), class_descriptions=str(DESCRIPTIONS), images_dir=str(folder))
    sizes = {Path(im["file_name"]).stem: (im["width"], im["height"]) for im in ref.dataset["images"]}
    assert sizes == {k: v for k, v in SIZES.items() if k != "0009bad4d8539bb4"}
    names = {c["id"]: c["name"] for c in ref.dataset["categories"]}
    ref_boxes = sorted((names[r["category_id"]], *np.round(r["bbox"], 6)) for r in ref.dataset["annotations"])
    box = ds.annotations.box
    ours = sorted((ds.schema.names[k], *np.round([*b[:2], *(b[2:] - b[:2])], 6))
                  for k, b in zip(ds.annotations.label, box, strict=True))
    assert ours == ref_boxes


def test_v7_click_columns_and_challenge_layout_come_back_as_written(tmp_path: Path) -> None:
    v7 = (HEADER.rstrip("\n") + ",XClick1X,XClick2X,XClick3X,XClick4X,XClick1Y,XClick2Y,XClick3Y,XClick4Y\n"
          "a1,xclick,/m/01,1,0.1,0.5,0.2,0.6,0,0,0,0,0,0.1,0.5,0.3,0.2,0.4,0.3,0.2,0.6\n"
          "b2,activemil,/m/02,1,0.3,0.4,0.5,0.9,0,0,0,0,1,-1,-1,-1,-1,-1,-1,-1,-1\n")
    ds, _ = oi.parse(_csv(tmp_path, v7))
    assert ds.annotations.extra["openimages:XClick3X"].tolist() == ["0.3", "-1"]  # kept as text
    oi.write(ds, tmp_path / "v7", images=False)
    assert (tmp_path / "v7" / oi.BOXES_FILE).read_text() == v7
    challenge = ("ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf\n"
                 "a1,/m/01,0.1,0.5,0.2,0.6,0\nb2,/m/02,0,1,0.25,0.75,1\n")
    ds, _ = oi.parse(_csv(tmp_path, challenge, "challenge-bbox.csv"))
    assert ds.annotations.iscrowd.tolist() == [False, True] and ds.schema.attributes == ()
    oi.write(ds, tmp_path / "challenge", images=False)
    assert (tmp_path / "challenge" / oi.BOXES_FILE).read_text() == challenge


@pytest.mark.parametrize("text", [
    pytest.param("a1,xclick,/m/01,1,0.012500,0.195312,0.148438,0.587500,0,1,0,0,0\n", id="fixed-decimals"),
    pytest.param("a1,xclick,/m/01,1,0.0,1.0,0.25,0.5,0,1,0,0,0\n", id="python-repr-ints"),
    pytest.param("a1,xclick,/m/01,0.5,0.1,0.2,0.3,0.4,0,1,-1,0,0\r\n", id="crlf-confidence-group-unknown"),
])
def test_number_styles_flags_and_line_ends_come_back_as_printed(tmp_path: Path, text: str) -> None:
    src = _csv(tmp_path, HEADER.replace("\n", "\r\n" if "\r" in text else "\n") + text)
    ds, _ = oi.parse(src)
    rep = oi.write(ds, tmp_path / "out", images=False)
    assert rep.lossless, rep.to_dict()
    assert (tmp_path / "out" / oi.BOXES_FILE).read_bytes() == src.read_bytes()
    assert_same(oi.parse(tmp_path / "out")[0], ds)


def test_confidence_unknown_group_and_sources_are_kept(tmp_path: Path) -> None:
    ds, report = oi.parse(_csv(tmp_path, HEADER.replace("Source", "source") + "a1,machine,/m/01,0.5,0.1,0.2,0.3,0.4,0,1,-1,0,0\n"
                                                  "a1,someone,/m/01,1,0.1,0.2,0.3,0.4,0,1,1,0,0\n"
                                                  "a1,other,/m/01,1,0.1,0.2,0.3,0.4,0,1,1,0,0\n"))
    a = ds.annotations
    assert a.extra["openimages_confidence"].tolist() == [0.5, 1.0, 1.0]
    assert a.extra["openimages_group_unknown"].tolist() == [True, False, False]
    assert a.iscrowd.tolist() == [False, True, True]
    assert a.source.tolist() == ["model", "human", "human"]
    (unknown,) = report.of_type("openimages_unknown_source")  # 'someone' and 'other' read as human, the texts kept
    assert (unknown.record, unknown.field) == ("line 3", "source") and "['someone', 'other']" in unknown.message


def test_repeated_display_names_get_their_mid_and_are_written_back(tmp_path: Path) -> None:
    desc = _csv(tmp_path, "/m/01,Mouse\n/m/02,Mouse\n/m/03,Cat\n", "desc.csv")
    ds, report = oi.parse(_csv(tmp_path, HEADER + "a1,xclick,/m/02,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n"),
                          class_descriptions=desc)
    assert ds.schema.names == ("Mouse (/m/01)", "Mouse (/m/02)", "Cat")
    assert report.counts()["openimages_repeated_name"] == 1
    oi.write(ds, tmp_path / "out", images=False)
    assert (tmp_path / "out" / oi.DESCRIPTIONS_FILE).read_text() == desc.read_text()
    assert_same(oi.parse(tmp_path / "out")[0], ds)


def test_a_dataset_from_elsewhere_is_written_with_what_is_lost_counted(tmp_path: Path) -> None:
    ds = shapes(4, seed=2)
    rep = oi.write(ds, tmp_path / "out", images=False)
    assert rep.n_annotations == ds.n_annotations
    # polygons, masks, keypoints, other attributes and images.extra have no place; a box whose pixels no fraction
    # gives back to the bit (160 is not a power of 2) is counted too
    assert set(rep.lost) <= {"box", "polygon", "mask", "keypoints", "attributes", "images.extra", "supercategory"}, \
        rep.to_dict()
    assert rep.lost["supercategory"] == 3  # circle, square, triangle: 'shape'; Open Images has none
    assert rep.lost["polygon"] == rep.lost["mask"] == ds.n_annotations and rep.lost["box"] <= 2
    back, report = oi.parse(tmp_path / "out", images_root=tmp_path)  # no image files: sizes 1 x 1
    missing = report.of_type("missing_image")
    assert len(missing) == back.n_images and missing[0].file == str(tmp_path / back.images.path[0])  # the full path
    assert back.schema.names == ds.schema.names  # the descriptions keep the class order
    frac = ds.annotations.box / np.tile(np.c_[ds.images.width, ds.images.height][ds.annotations.image], 2)
    np.testing.assert_allclose(back.annotations.box, frac, rtol=1e-15)


def test_progress_is_reported_while_reading_and_writing(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    ds, _ = oi.parse(_copy(tmp_path, images=True), progress=lambda d, t: calls.append((d, t)))
    total = 5 + 7 + 4  # box rows, label rows, image headers
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    calls.clear()
    oi.write(ds, tmp_path / "out", progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)


def test_doctests() -> None:
    failures, tried = doctest.testmod(oi)
    assert tried and not failures


def test_read_openimages_warns_with_a_summary() -> None:
    with pytest.warns(MaslowWarning, match="openimages_no_image_size"):
        ds = oi.read_openimages(BOXES, class_descriptions=DESCRIPTIONS, image_labels=LABELS)
    assert ds.n_images == 4


# -- bad input: named, nothing dropped silently -------------------------------------------------------------------
@pytest.mark.parametrize(("text", "match"), [
    pytest.param("ImageID,LabelName,XMin,YMin,YMax\na,/m/01,0.1,0.2,0.3\n", r"line 1 \(header\), field 'XMax'",
                 id="missing-column"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\nb,xclick,/m/01,1,0.1,half,0.3,0.4,0,0,0,0,0\n",
                 r"line 3, field 'XMax': XMax must be a number, got 'half'", id="not-a-number"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,nan,0,0,0,0,0\n", r"line 2, field 'YMax'.*finite",
                 id="nan"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,2,0,0,0\n", r"line 2, field 'IsTruncated'.*got '2'",
                 id="bad-flag"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0\n", r"line 2: row must have 13 fields",
                 id="short-row"),
    pytest.param(HEADER + ",xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n", r"line 2, field 'ImageID'", id="empty-id"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n../b,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n",
                 r"line 3, field 'ImageID'.*got '../b'", id="id-with-a-slash"),
    pytest.param(HEADER + 'a,"x,click",/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\nb,xclick,/m/01,1,0.1,0.2,0.3,0.4,0\n',
                 r"line 3: row must have 13 fields", id="quoted-then-short"),
])
def test_bad_rows_raise_naming_the_file_line_and_field(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(FormatError, match=match) as err:
        oi.parse(_csv(tmp_path, text))
    assert err.value.path == str(tmp_path / "boxes.csv")


def test_out_of_range_and_inverted_boxes_are_reported_and_kept(tmp_path: Path) -> None:
    src = _csv(tmp_path, HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n"
                                  "a,xclick,/m/01,1,0.1,1.25,0.3,0.4,0,0,0,0,0\n"
                                  "b,xclick,/m/01,1,0.1,0.2,0.9,0.4,0,0,0,0,0\n")
    ds, report = oi.parse(src)
    (out,), (inverted,) = report.of_type("openimages_out_of_range"), report.of_type("openimages_inverted_box")
    assert (out.record, out.field, out.severity) == ("line 3", "XMax", "error") and "1.25" in out.message
    assert (inverted.record, inverted.field) == ("line 4", "YMin") and "swapped" in inverted.message
    assert ds.n_annotations == 3
    np.testing.assert_array_equal(ds.annotations.box[1:], [[0.1, 0.3, 1.25, 0.4], [0.1, 0.4, 0.2, 0.9]])
    with pytest.raises(FormatError, match=r"line 3, field 'XMax'.*strict"):
        oi.parse(src, strict=True)


def test_unknown_mids_with_descriptions_are_reported_with_their_count(tmp_path: Path) -> None:
    src = _csv(tmp_path, HEADER + "a,xclick,/m/0cmf2,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n"
                                  "a,xclick,/m/zzz,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n"
                                  "b,xclick,/m/zzz,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n")
    labels = _csv(tmp_path, "ImageID,Source,LabelName,Confidence\na,verification,/m/yyy,1\n"
                            "b,machine,/m/0cmf2,0.7\n", "labels.csv")
    ds, report = oi.parse(src, class_descriptions=DESCRIPTIONS, image_labels=labels)
    boxes, tags = report.of_type("openimages_unknown_class")
    assert (boxes.record, boxes.field, boxes.severity) == ("line 3", "LabelName", "error")
    assert "'/m/zzz' (2 boxes of 1 MIDs)" in boxes.message
    assert (tags.file, tags.record) == (str(labels), "line 2")
    (machine,) = report.of_type("openimages_unverified_label")
    assert machine.record == "line 3" and machine.field == "Confidence"
    assert ds.n_annotations == 1 and ds.n_images == 2  # the images stay
    assert ds.images.extra["pos_category_ids"].tolist() == [[], []]


def test_a_folder_with_two_boxes_files_asks_for_one(tmp_path: Path) -> None:
    root = _copy(tmp_path, images=False)
    shutil.copy(BOXES, root / "train-annotations-bbox.csv")
    with pytest.raises(FormatError, match=r"must hold one boxes CSV.*got 2"):
        oi.parse(root)
    with pytest.raises(FormatError, match="must hold an Open Images boxes CSV"):
        oi.parse(_images(tmp_path / "imgs"))


@pytest.mark.parametrize("quoted", [False, True], ids=["fast-path", "exact-path"])
def test_image_level_labels_grouped_per_image_in_file_order(tmp_path: Path, quoted: bool) -> None:
    """Many labels rows, images interleaved, unknown MIDs, machine labels and images only the labels name: each
    image's verified-present and verified-absent class ids and their Sources are the file's rows in order, as a
    plain loop over the CSV gives them."""
    import csv

    rng = np.random.default_rng(3)
    mids = [f"/m/{k:04x}" for k in range(12)]
    (tmp_path / "class-descriptions-boxable.csv").write_text("".join(f"{m},Class {k}\n" for k, m in enumerate(mids)))
    box_ids = [f"{k:016x}" for k in range(20)]
    with open(tmp_path / "annotations-bbox.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
                    "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"])
        for i in box_ids:
            w.writerow([i, "xclick", mids[int(rng.integers(12))], 1, 0.1, 0.5, 0.2, 0.6, 0, 0, 0, 0, 0])
    label_ids = box_ids + [f"{k:016x}" for k in range(100, 106)]  # six images only the labels name
    rows = [[label_ids[int(rng.integers(len(label_ids)))], str(rng.choice(["verification", "crowdsource"])),
             mids[int(rng.integers(12))] if rng.random() > 0.05 else "/m/zzzz",
             str(rng.choice(["1", "0", "0.7"], p=[0.6, 0.35, 0.05]))] for _ in range(400)]
    header = ['"ImageID"' if quoted else "ImageID", "Source", "LabelName", "Confidence"]
    (tmp_path / "annotations-human-imagelabels-boxable.csv").write_text(
        ",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    with pytest.warns(MaslowWarning):
        ds = oi.read_openimages(tmp_path)
    stems = [Path(p).stem for p in ds.images.path.tolist()]
    want: dict[str, tuple[list[int], list[int], list[str], list[str]]] = {s: ([], [], [], []) for s in stems}
    for image_id, source, mid, conf in rows:
        if mid not in mids or conf not in ("1", "0"):
            continue
        pos, neg, pos_src, neg_src = want[image_id]
        (pos if conf == "1" else neg).append(mids.index(mid) + 1)
        (pos_src if conf == "1" else neg_src).append(source)
    assert set(stems) == set(label_ids)
    assert ds.images.extra["pos_category_ids"].tolist() == [want[s][0] for s in stems]
    assert ds.images.extra["neg_category_ids"].tolist() == [want[s][1] for s in stems]
    assert ds.images.extra["openimages_label_source"].tolist() == [want[s][2] + want[s][3] for s in stems]
