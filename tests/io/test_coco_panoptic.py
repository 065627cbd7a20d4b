"""COCO panoptic (``coco-panoptic``): a hand-written file read (things and stuff, a crowd region, an image without
segments, segments touching the border, string and integer ids), lossless round trips (the same JSON, pixel-equal
PNGs, byte-equal rewrites), the findings on damaged files (each naming file, record and field), malformed files
refused, predictions read onto a truth, and the writer's losses, progress and atomic output."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError, MaslowWarning
from maslow.io.coco_panoptic import PNG_NAME, SEGMENT_ID, TASKS, parse, read_coco_panoptic, write_coco_panoptic

CATEGORIES = [
    {"supercategory": "vehicle", "isthing": 1, "id": 3, "name": "car", "color": [0, 0, 142]},
    {"supercategory": "person", "isthing": 1, "id": 1, "name": "person", "color": [220, 20, 60], "synset": "p.n.01"},
    {"supercategory": "ground", "isthing": 0, "id": 149, "name": "road", "color": [128, 64, 128]},
    {"supercategory": "sky", "isthing": 0, "id": 187, "name": "sky-other-merged", "color": [70, 130, 180]},
]


def rgb(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def golden_maps() -> list[np.ndarray]:
    a = np.zeros((6, 8), np.int64)
    a[:2] = 0x010203  # sky (id 66051: every channel used)
    a[2:, :] = 7  # road
    a[3:6, 5:8] = 300  # a car touching the right and bottom borders
    a[4:6, 0:2] = 9  # a crowd of persons
    a[3, 0] = 0  # one VOID pixel
    b = np.zeros((4, 5), np.int64)
    b[:, :] = 11  # road only
    return [a, b, np.zeros((3, 3), np.int64)]


def write_golden(folder: Path, *, doc: dict[str, Any] | None = None, maps: list[np.ndarray] | None = None) -> Path:
    """The hand-written file: 3 images (the last one without segments), JSON and PNGs as panopticapi lays them."""
    maps = golden_maps() if maps is None else maps
    (folder / "panoptic_val").mkdir(parents=True, exist_ok=True)
    for k, m in enumerate(maps):
        Image.fromarray(rgb(m)).save(folder / "panoptic_val" / f"{k:04d}.png")
    src = folder / "panoptic_val.json"
    src.write_text(json.dumps(golden_doc() if doc is None else doc))
    return src


def golden_doc() -> dict[str, Any]:
    return {
        "info": {"description": "golden", "year": 2024},
        "licenses": [{"id": 1, "name": "CC"}],
        "images": [{"file_name": "0000.jpg", "height": 6, "width": 8, "id": 42, "license": 1},
                   {"file_name": "sub/0001.jpg", "height": 4, "width": 5, "id": 43, "license": 1},
                   {"file_name": "0002.jpg", "height": 3, "width": 3, "id": 44, "license": 1}],
        "annotations": [
            {"segments_info": [
                {"id": 66051, "category_id": 187, "iscrowd": 0, "bbox": [0, 0, 8, 2], "area": 16},
                {"id": 7, "category_id": 149, "iscrowd": 0, "bbox": [0, 2, 8, 4], "area": 18},
                {"id": 300, "category_id": 3, "iscrowd": 0, "bbox": [5, 3, 3, 3], "area": 9},
                {"id": 9, "category_id": 1, "iscrowd": 1, "bbox": [0, 4, 2, 2], "area": 4}],
             "file_name": "0000.png", "image_id": 42},
            {"segments_info": [{"id": 11, "category_id": 149, "iscrowd": 0, "bbox": [0, 0, 5, 4], "area": 20}],
             "file_name": "0001.png", "image_id": 43},
            {"segments_info": [], "file_name": "0002.png", "image_id": 44},
        ],
        "categories": copy.deepcopy(CATEGORIES),
    }


# -- reading --------------------------------------------------------------------------------------------------

def test_the_golden_file_reads_to_segments_with_masks_boxes_and_kinds(tmp_path: Path) -> None:
    src = write_golden(tmp_path)
    ds, report = parse(src)
    assert not len(report), report.to_dict()
    assert ds.schema.tasks == TASKS
    assert [(c.name, c.kind, c.id, c.color) for c in ds.schema.classes] == [
        ("car", "object", 3, "#00008e"), ("person", "object", 1, "#dc143c"), ("road", "semantic", 149, "#804080"),
        ("sky-other-merged", "semantic", 187, "#4682b4")]
    assert ds.images.path.tolist() == ["0000.jpg", "sub/0001.jpg", "0002.jpg"]
    assert ds.images.extra[PNG_NAME].tolist() == ["0000.png", "0001.png", "0002.png"]
    assert ds.images.extra["coco_id"].tolist() == [42, 43, 44] and ds.images.extra["license"].tolist() == [1, 1, 1]
    a = ds.annotations
    assert a.image.tolist() == [0, 0, 0, 0, 1]
    assert [ds.schema.names[k] for k in a.label] == ["sky-other-merged", "road", "car", "person", "road"]
    assert a.iscrowd.tolist() == [False, False, False, True, False]
    assert a.extra[SEGMENT_ID].tolist() == [66051, 7, 300, 9, 11] and a.extra["area"].tolist() == [16, 18, 9, 4, 20]
    assert a.box.tolist()[2] == [5.0, 3.0, 8.0, 6.0]  # the car, to the borders: xyxy of inclusive pixels
    maps = golden_maps()
    for r in range(5):
        i = int(a.image[r])
        assert np.array_equal(M.decode(a.mask[r]), maps[i] == a.extra[SEGMENT_ID][r])
        assert a.mask[r]["counts"] == M.encode(maps[i] == a.extra[SEGMENT_ID][r])["counts"]
    assert ds.info["coco"] == {"info": {"description": "golden", "year": 2024}, "licenses": [{"id": 1, "name": "CC"}]}
    assert ds.info["coco_categories"] == {"1": {"synset": "p.n.01"}}


def test_the_registry_and_import_dataset_read_it(tmp_path: Path) -> None:
    src = write_golden(tmp_path)
    assert io.get_format("coco_panoptic").name == "coco-panoptic" and io.get_format("coco-panoptic").reports_progress
    imp = io.import_dataset(src, "coco-panoptic", check_files=False)
    assert imp.dataset.n_annotations == 5 and not len(imp.report)
    assert io.read(src, "coco-panoptic").n_annotations == 5


def test_the_png_folder_can_be_given(tmp_path: Path) -> None:
    src = write_golden(tmp_path)
    (tmp_path / "panoptic_val").rename(tmp_path / "pngs")
    with pytest.raises(FormatError, match=r"panoptic_val.json: the folder of PNGs must exist, got .*panoptic_val "
                                          r"\(default: the JSON's path without .json\); pass png_folder"):
        parse(src)
    assert parse(src, png_folder=tmp_path / "pngs")[0].n_annotations == 5


# -- round trips ------------------------------------------------------------------------------------------------

def pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def test_round_trip_gives_the_json_and_pixels_back_and_rewrites_byte_for_byte(tmp_path: Path) -> None:
    src = write_golden(tmp_path / "in")
    ds = read_coco_panoptic(src)
    out = tmp_path / "out" / "panoptic_val.json"
    rep = write_coco_panoptic(ds, out)
    assert rep.lossless and (rep.n_images, rep.n_annotations) == (3, 5)
    assert json.loads(out.read_text()) == json.loads(src.read_text())  # every key and value, in any order
    assert pixels(out.with_suffix("")).keys() == pixels(src.with_suffix("")).keys()
    for k, v in pixels(src.with_suffix("")).items():
        assert np.array_equal(pixels(out.with_suffix(""))[k], v), k
    back = read_coco_panoptic(out)
    a, b = ds.annotations, back.annotations
    for col in ("image", "label", "box", "iscrowd"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    assert [m["counts"] for m in a.mask] == [m["counts"] for m in b.mask]
    assert {k: v.tolist() for k, v in a.extra.items()} == {k: v.tolist() for k, v in b.extra.items()}
    assert back.schema == ds.schema and back.info == ds.info
    again = tmp_path / "again" / "panoptic_val.json"
    write_coco_panoptic(back, again)
    assert again.read_bytes() == out.read_bytes()
    for p in sorted(out.with_suffix("").rglob("*.png")):
        assert (again.with_suffix("") / p.name).read_bytes() == p.read_bytes()


def test_generated_segments_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    maps, infos, images = [], [], []
    for i in range(6):
        m = rng.integers(0, 5, (9, 13)) * int(rng.integers(1, 1 << 22))  # noisy: many runs per segment
        maps.append(m)
        ids = [int(v) for v in np.unique(m) if v]
        infos.append({"segments_info": [{"id": v, "category_id": CATEGORIES[k % 4]["id"], "iscrowd": int(k == 1),
                                         "bbox": bbox(m == v), "area": int((m == v).sum())} for k, v in enumerate(ids)],
                      "file_name": f"{i:04d}.png", "image_id": i + 1})
        images.append({"id": i + 1, "file_name": f"{i:04d}.jpg", "width": 13, "height": 9})
    src = write_golden(tmp_path / "in", doc={"images": images, "annotations": infos, "categories": CATEGORIES},
                       maps=maps)
    ds, report = parse(src)
    assert not len(report)
    out = tmp_path / "out" / "p.json"
    write_coco_panoptic(ds, out)
    assert json.loads(out.read_text()) == json.loads(src.read_text())
    for i, m in enumerate(maps):
        got = np.asarray(Image.open(out.with_suffix("") / f"{i:04d}.png")).astype(np.int64)
        assert np.array_equal(got[..., 0] + 256 * got[..., 1] + 65536 * got[..., 2], m)


def bbox(m: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(m)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def test_string_image_ids_round_trip(tmp_path: Path) -> None:
    doc = golden_doc()
    for im, rec in zip(doc["images"], doc["annotations"], strict=True):
        im["id"] = rec["image_id"] = f"frankfurt_{im['id']:06d}"
    src = write_golden(tmp_path / "in", doc=doc)
    ds = read_coco_panoptic(src)
    assert ds.images.extra["coco_id"].tolist()[0] == "frankfurt_000042"
    out = tmp_path / "out" / "p.json"
    write_coco_panoptic(ds, out)
    assert json.loads(out.read_text())["annotations"] == doc["annotations"]


# -- findings --------------------------------------------------------------------------------------------------

def edit_segment(key: str, value: Any, seg: int = 2) -> Callable[[dict[str, Any], list[np.ndarray]], None]:
    def f(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
        doc["annotations"][0]["segments_info"][seg][key] = value
    return f


def listed_not_drawn(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    doc["annotations"][0]["segments_info"].append({"id": 302, "category_id": 3, "iscrowd": 0, "bbox": [0, 0, 1, 1],
                                                   "area": 1})


def listed_as_void(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    doc["annotations"][0]["segments_info"].append({"id": 0, "category_id": 3})


def listed_twice(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    doc["annotations"][0]["segments_info"].append(dict(doc["annotations"][0]["segments_info"][2]))


def colour_not_listed(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    maps[0][3, 0] = 5000  # the VOID pixel


def second_record(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    doc["annotations"].append(dict(doc["annotations"][1]))


def unknown_image(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    doc["annotations"][1]["image_id"] = 99


def no_record(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    del doc["annotations"][2]


def other_size(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    doc["images"][1]["width"] = 6


def bad_isthing(doc: dict[str, Any], maps: list[np.ndarray]) -> None:
    doc["categories"][2]["isthing"] = "no"


FINDINGS = [
    pytest.param(listed_not_drawn, "panoptic_segment_not_in_png", "error", "annotations[0] (image_id=42) "
                 "segments_info[4] (id=302)", "id", id="segment-absent-from-png"),
    pytest.param(colour_not_listed, "panoptic_unlisted_segment", "error", "annotations[0] (image_id=42)",
                 "segments_info", id="colour-not-listed"),
    pytest.param(edit_segment("area", 10), "panoptic_area_mismatch", "warning", "annotations[0] (image_id=42) "
                 "segments_info[2] (id=300)", "area", id="area"),
    pytest.param(edit_segment("bbox", [5, 3, 3, 2]), "panoptic_bbox_mismatch", "warning", "annotations[0] "
                 "(image_id=42) segments_info[2] (id=300)", "bbox", id="bbox"),
    pytest.param(edit_segment("bbox", [5, 3, -3, 2]), "panoptic_bad_bbox", "error", "annotations[0] (image_id=42) "
                 "segments_info[2] (id=300)", "bbox", id="bad-bbox"),
    pytest.param(edit_segment("area", "9"), "panoptic_bad_area", "error", "annotations[0] (image_id=42) "
                 "segments_info[2] (id=300)", "area", id="bad-area"),
    pytest.param(edit_segment("iscrowd", 2), "panoptic_bad_iscrowd", "warning", "annotations[0] (image_id=42) "
                 "segments_info[2] (id=300)", "iscrowd", id="bad-iscrowd"),
    pytest.param(listed_twice, "panoptic_duplicate_segment", "error", "annotations[0] (image_id=42) "
                 "segments_info[4] (id=300)", "id", id="overlapping-claims"),
    pytest.param(edit_segment("category_id", 5), "panoptic_unknown_category", "error", "annotations[0] "
                 "(image_id=42) segments_info[2] (id=300)", "category_id", id="unknown-category"),
    pytest.param(listed_as_void, "panoptic_bad_segment_id", "error", "annotations[0] (image_id=42) "
                 "segments_info[4] (id=0)", "id", id="id-0-is-void"),
    pytest.param(second_record, "panoptic_duplicate_record", "error", "annotations[3] (image_id=43)", "image_id",
                 id="second-record"),
    pytest.param(unknown_image, "panoptic_unknown_image", "error", "annotations[1] (image_id=99)", "image_id",
                 id="unknown-image"),  # and image 43 has no record: tested below
    pytest.param(no_record, "panoptic_missing_record", "warning", "images[2]", None, id="image-without-record"),
    pytest.param(other_size, "panoptic_size_mismatch", "error", "annotations[1] (image_id=43)", "file_name",
                 id="png-size"),
    pytest.param(bad_isthing, "panoptic_bad_isthing", "warning", "categories[2] (id=149)", "isthing",
                 id="bad-isthing"),
]


@pytest.mark.parametrize(("edit", "kind", "severity", "record", "field"), FINDINGS)
def test_findings_name_file_record_and_field(tmp_path: Path, edit: Callable[..., None], kind: str, severity: str,
                                             record: str, field: str | None) -> None:
    doc, maps = golden_doc(), golden_maps()
    edit(doc, maps)
    src = write_golden(tmp_path, doc=doc, maps=maps)
    ds, report = parse(src)
    found = [(i.type, i.severity, i.file, i.record, i.field) for i in report]
    if kind == "panoptic_unknown_image":
        assert found.pop() == ("panoptic_missing_record", "warning", str(src), "images[1]", None)
    assert found == [(kind, severity, str(src), record, field)], report.to_dict()
    with pytest.raises(FormatError, match=f"{kind}; strict mode"):
        parse(src, strict=True)
    with pytest.warns(MaslowWarning, match=kind):
        read_coco_panoptic(src)
    assert ds.n_annotations <= 6


def test_what_the_findings_leave_in_the_dataset(tmp_path: Path) -> None:
    doc, maps = golden_doc(), golden_maps()
    edit_segment("id", 301)(doc, maps)  # the car's pixels are left without a segment
    edit_segment("area", 10, seg=0)(doc, maps)
    ds, _ = parse(write_golden(tmp_path, doc=doc, maps=maps))
    a = ds.annotations
    assert M.area([a.mask[2]])[0] == 0 and a.box[2].tolist() == [5.0, 3.0, 8.0, 6.0]  # the file's box, no pixel
    assert a.extra["area"].tolist()[0] == 10  # the file's area kept
    missing = tmp_path / "m"
    src = write_golden(missing)
    (missing / "panoptic_val" / "0001.png").unlink()
    ds, report = parse(src)
    assert [(i.type, i.record, i.field) for i in report] == [
        ("panoptic_missing_png", "annotations[1] (image_id=43)", "file_name")]
    assert ds.annotations.mask[4] is None and ds.annotations.box[4].tolist() == [0.0, 0.0, 5.0, 4.0]


def test_a_grey_png_is_unreadable_and_an_rgba_one_is_read(tmp_path: Path) -> None:
    src = write_golden(tmp_path)
    Image.fromarray(np.full((4, 5), 11, np.uint8)).save(tmp_path / "panoptic_val" / "0001.png")
    assert [i.type for i in parse(src)[1]] == ["panoptic_unreadable_png"]
    four = np.concatenate([rgb(golden_maps()[1]), np.full((4, 5, 1), 255, np.uint8)], axis=2)
    Image.fromarray(four).save(tmp_path / "panoptic_val" / "0001.png")
    ds, report = parse(src)
    assert not len(report) and M.area([ds.annotations.mask[4]])[0] == 20


# -- malformed files ---------------------------------------------------------------------------------------------

def malformed(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def f(doc: dict[str, Any]) -> None:
        target = doc
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
    return f


@pytest.mark.parametrize(("edit", "pattern"), [
    pytest.param(malformed(["annotations"], {}), r"field 'annotations': must be a list, got dict", id="annotations"),
    pytest.param(malformed(["annotations", 1], [1]), r"annotations\[1\]: must be an object, got list", id="record"),
    pytest.param(malformed(["annotations", 1, "image_id"], 4.5),
                 r"annotations\[1\], field 'image_id': image_id must be an integer or a string", id="image-id"),
    pytest.param(malformed(["annotations", 1, "file_name"], None),
                 r"annotations\[1\] \(image_id=43\), field 'file_name': file_name must be the PNG's name",
                 id="file-name"),
    pytest.param(malformed(["annotations", 1, "segments_info"], "x"),
                 r"annotations\[1\] \(image_id=43\), field 'segments_info': segments_info must be a list, got str",
                 id="segments-info"),
    pytest.param(malformed(["annotations", 0, "segments_info", 1, "id"], "7"),
                 r"annotations\[0\] \(image_id=42\) segments_info\[1\], field 'id': id must be an integer, got '7'",
                 id="segment-id"),
    pytest.param(malformed(["annotations", 0, "segments_info", 1, "category_id"], None),
                 r"annotations\[0\] \(image_id=42\) segments_info\[1\], field 'category_id': category_id must be an "
                 r"integer, got None",
                 id="category-id"),
    pytest.param(malformed(["annotations", 0, "file_name"], "../x.png"),
                 r"annotations\[0\] \(image_id=42\), field 'file_name': image path must stay inside", id="escape"),
    pytest.param(malformed(["categories", 1, "id"], "1"), r"categories\[1\], field 'id': id must be an integer",
                 id="category"),
])
def test_malformed_files_are_refused_naming_file_record_and_field(tmp_path: Path, edit: Callable[..., None],
                                                                  pattern: str) -> None:
    doc = golden_doc()
    edit(doc)
    src = write_golden(tmp_path, doc=doc)
    with pytest.raises(FormatError, match=f"panoptic_val.json, {pattern}"):
        parse(src)


def test_a_json_list_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p.json").write_text("[]")
    with pytest.raises(FormatError, match=r"p\.json: must be a COCO panoptic object"):
        parse(tmp_path / "p.json")


# -- predictions ---------------------------------------------------------------------------------------------------

def test_predictions_read_onto_the_truth_by_image_and_category_id(tmp_path: Path) -> None:
    truth = read_coco_panoptic(write_golden(tmp_path / "gt"))
    maps = golden_maps()
    maps[0][maps[0] == 300] = 7  # the car predicted as road
    records = [{"image_id": 43, "file_name": "0001.png", "segments_info": [{"id": 11, "category_id": 149}]},
               {"image_id": 42, "file_name": "0000.png",
                "segments_info": [{"id": 66051, "category_id": 187, "isthing": False, "score": 0.5},
                                  {"id": 7, "category_id": 149, "isthing": False, "score": 0.75},
                                  {"id": 9, "category_id": 1, "isthing": True, "score": 0.25}]},
               {"image_id": 7, "file_name": "0002.png", "segments_info": []}]
    src = write_golden(tmp_path / "pred", doc={"annotations": records}, maps=maps)
    pred, report = parse(src, like=truth)
    assert [(i.type, i.record) for i in report] == [("panoptic_unknown_image", "annotations[2] (image_id=7)"),
                                                   ("panoptic_missing_record", "images[2]")]
    assert pred.images is truth.images and pred.schema is truth.schema
    a = pred.annotations
    assert a.image.tolist() == [0, 0, 0, 1] and a.extra["score"].tolist() == [0.5, 0.75, 0.25, None]
    assert a.extra["area"].tolist() == [16, 27, 4, 20]  # the pixel counts where the file has none
    assert a.box[1].tolist() == [0.0, 2.0, 8.0, 6.0] and not a.iscrowd.any()
    out = tmp_path / "out" / "pred.json"
    write_coco_panoptic(pred, out)
    segs = json.loads(out.read_text())["annotations"][0]["segments_info"]
    assert segs[1] == {"id": 7, "category_id": 149, "iscrowd": 0, "bbox": [0, 2, 8, 4], "area": 27, "isthing": False,
                       "score": 0.75}


def test_a_file_without_images_gets_one_image_per_record(tmp_path: Path) -> None:
    doc = golden_doc()
    del doc["images"]
    ds, report = parse(write_golden(tmp_path, doc=doc))
    assert not len(report)
    assert ds.images.path.tolist() == ["0000.png", "0001.png", "0002.png"]
    assert ds.images.width.tolist() == [8, 5, 3] and ds.images.height.tolist() == [6, 4, 3]


# -- writing ---------------------------------------------------------------------------------------------------

def test_the_writer_counts_what_it_cannot_hold_and_paints_later_rows_over_earlier(tmp_path: Path) -> None:
    full = np.ones((4, 4), bool)
    left = np.zeros((4, 4), bool)
    left[:, :2] = True
    schema = LabelSchema(classes=(ClassDef("a"), ClassDef("b", kind="semantic")))
    ann = Annotations(image=np.zeros(4, np.int64), label=np.array([1, 0, 0, 0]),
                      box=np.array([[0, 0, 4, 4], [0, 0, 2, 4], [1, 1, 2, 2], [np.nan] * 4]),
                      mask=obj_array([M.encode(full), M.encode(left), None, None]), score=np.array([0.9, 0.8, 0.7, 0.6]))
    ds = Dataset(schema=schema, images=Images(path=obj_array(["x/a.jpg"]), width=np.array([4]), height=np.array([4])),
                 annotations=ann)
    out = tmp_path / "p.json"
    rep = write_coco_panoptic(ds, out)
    assert dict(rep.lost) == {"score": 4, "box": 1, "tags": 1, "overlap_pixels": 8}
    assert rep.n_annotations == 2 and any("the later one won" in n for n in rep.notes)
    doc = json.loads(out.read_text())
    assert doc["annotations"][0]["file_name"] == "x/a.png"
    assert doc["annotations"][0]["segments_info"] == [  # the box and area of the pixels each got
        {"id": 1, "category_id": 2, "iscrowd": 0, "bbox": [2, 0, 2, 4], "area": 8},
        {"id": 2, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 2, 4], "area": 8}]
    assert [c["isthing"] for c in doc["categories"]] == [1, 0]
    ids = np.asarray(Image.open(tmp_path / "p" / "x" / "a.png"))[..., 0]
    assert ids[:, :2].tolist() == [[2, 2]] * 4 and ids[:, 2:].tolist() == [[1, 1]] * 4
    with pytest.raises(FormatError, match=r"must differ from the JSON file: give the JSON file a name ending in '\.json'"):
        write_coco_panoptic(ds, out, png_folder=out)
    hidden = ds.replace(annotations=ann.take(np.array([1, 0])))  # the full mask over the left one
    rep = write_coco_panoptic(hidden, out)
    assert rep.lost["hidden"] == 1 and rep.n_annotations == 1
    assert [s["area"] for s in json.loads(out.read_text())["annotations"][0]["segments_info"]] == [16]


def test_polygons_are_painted_and_unknown_sizes_are_counted(tmp_path: Path) -> None:
    schema = LabelSchema(classes=(ClassDef("a"),))
    ann = Annotations(image=np.array([0, 1]), label=np.array([0, 0]), box=np.array([[0, 0, 4, 4], [0, 0, 1, 1]]),
                      polygon=[[np.array([0.0, 0, 4, 0, 4, 4, 0, 4])], None])
    ds = Dataset(schema=schema, images=Images(path=obj_array(["a.jpg", "b.jpg"]), width=np.array([6, 0]),
                                              height=np.array([5, 0])), annotations=ann)
    rep = write_coco_panoptic(ds, tmp_path / "p.json")
    assert dict(rep.lost) == {"unknown_size": 1} and any("polygons written" in n for n in rep.notes)
    back, report = parse(tmp_path / "p.json")  # the image without a size has no record (nor PNG)
    assert [(i.type, i.record) for i in report] == [("panoptic_missing_record", "images[1]")]
    assert back.n_annotations == 1 and M.area([back.annotations.mask[0]])[0] == 16


def test_progress_runs_to_the_end_and_changes_no_byte(tmp_path: Path) -> None:
    ds = read_coco_panoptic(write_golden(tmp_path / "in"))
    a, b = tmp_path / "a" / "p.json", tmp_path / "b" / "p.json"
    io.write(ds, a, "coco-panoptic")
    calls: list[tuple[int, int]] = []
    io.write(ds, b, "coco-panoptic", progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert a.read_bytes() == b.read_bytes()
    assert sorted(os.listdir(tmp_path / "b")) == ["p", "p.json"]  # no temporary file or folder left


def test_an_error_while_writing_leaves_the_old_output(tmp_path: Path) -> None:
    ds = read_coco_panoptic(write_golden(tmp_path / "in"))
    out = tmp_path / "out" / "p.json"
    write_coco_panoptic(ds, out)
    before = {p: p.read_bytes() for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()}

    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_coco_panoptic(ds, out, progress=stop)
    assert {p: p.read_bytes() for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()} == before
    assert sorted(os.listdir(tmp_path / "out")) == ["p", "p.json"]


def test_a_coco_instances_dataset_written_as_panoptic_reads_back_without_findings(tmp_path: Path) -> None:
    from maslow.sample import shapes

    ds = shapes(4, seed=2)  # polygons and masks that overlap, keypoints, attributes
    rep = write_coco_panoptic(ds, tmp_path / "p.json")
    back, report = parse(tmp_path / "p.json")
    assert not len(report)  # the box and area of what was painted: a consistent file
    a = ds.annotations
    rles = [M.from_polygons(a.polygon[r], 120, 160) if a.polygon is not None and a.polygon[r] else a.mask[r]
            for r in range(ds.n_annotations)]
    union = [int(np.any([M.decode(rles[r]) for r in range(len(a)) if a.image[r] == i], axis=0).sum())
             for i in range(ds.n_images)]
    assert rep.lost["overlap_pixels"] == int(M.area(rles).sum()) - sum(union) > 0
    assert rep.lost["attributes"] > 0 and back.n_annotations == rep.n_annotations
    assert [c.name for c in back.schema.classes] == list(ds.schema.names)
