"""A COCO panoptic category without ``supercategory`` is written back without one (the docs promise the same JSON,
every key and value; the writer added ``"supercategory": ""``), one with an empty one keeps it, and a
supercategory given to the class afterwards is written."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

from maslow.io import coco
from maslow.io.coco_panoptic import read_coco_panoptic, write_coco_panoptic
from tests.io.test_coco_panoptic import golden_doc, write_golden


def _doc() -> dict:
    doc = golden_doc()
    cats = copy.deepcopy(doc["categories"])
    del cats[0]["supercategory"]  # car: no key
    cats[2]["supercategory"] = ""  # road: an empty one, as Datumaro writes them
    doc["categories"] = cats
    return doc


def test_an_absent_supercategory_stays_absent_and_an_empty_one_stays(tmp_path: Path) -> None:
    src = write_golden(tmp_path / "in", doc=_doc())
    ds = read_coco_panoptic(src)
    out = tmp_path / "out" / "panoptic_val.json"
    rep = write_coco_panoptic(ds, out)
    assert rep.lossless
    assert json.loads(out.read_text()) == json.loads(src.read_text())  # every key and value
    written = {c["name"]: c for c in json.loads(out.read_text())["categories"]}
    assert "supercategory" not in written["car"] and written["road"]["supercategory"] == ""
    assert list(written["road"]) == ["id", "name", "supercategory", "isthing", "color"]  # in COCO's place


def test_the_coco_instances_file_made_from_it_keeps_the_absence_too(tmp_path: Path) -> None:
    ds = read_coco_panoptic(write_golden(tmp_path / "in", doc=_doc()))
    coco.write_coco(ds, tmp_path / "instances.json")
    cats = {c["name"]: c for c in json.loads((tmp_path / "instances.json").read_text())["categories"]}
    assert "supercategory" not in cats["car"] and cats["road"]["supercategory"] == ""


def test_a_supercategory_set_afterwards_is_written(tmp_path: Path) -> None:
    ds = read_coco_panoptic(write_golden(tmp_path / "in", doc=_doc()))
    classes = tuple(replace(c, supercategory="vehicle") if c.name == "car" else c for c in ds.schema.classes)
    ds = ds.replace(schema=replace(ds.schema, classes=classes))
    write_coco_panoptic(ds, tmp_path / "out" / "p.json")
    cats = {c["name"]: c for c in json.loads((tmp_path / "out" / "p.json").read_text())["categories"]}
    assert cats["car"]["supercategory"] == "vehicle"


def test_a_missing_supercategory_alone_is_no_loss_for_a_target_without_categories(tmp_path: Path) -> None:
    from maslow import io

    doc = golden_doc()
    for c in doc["categories"]:
        c.pop("supercategory", None)
        c.pop("synset", None)
    ds = read_coco_panoptic(write_golden(tmp_path / "in", doc=doc))
    assert all(v == {"supercategory": None} for v in ds.info["coco_categories"].values())
    rep = io.write(ds, tmp_path / "yolo", "yolo")
    assert not any("coco_categories" in n for n in rep.notes), rep.notes
    ds.info["coco_categories"][next(iter(ds.info["coco_categories"]))] = {"supercategory": None, "isthing": 1}
    rep = io.write(ds, tmp_path / "yolo2", "yolo")
    assert any("coco_categories" in n for n in rep.notes), rep.notes  # anything more is still said
    ds.info["coco_categories"] = ["not", "a", "dict"]  # a Parquet header may hold anything there: said, no crash
    rep = io.write(ds, tmp_path / "yolo3", "yolo")
    assert any("coco_categories" in n for n in rep.notes), rep.notes
