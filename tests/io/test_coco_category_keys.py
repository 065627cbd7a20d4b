"""COCO categories' own keys beyond the schema's (LVIS's ``frequency``, ``synset``, ``image_count``...) are kept in
``Dataset.info["coco_categories"]`` and written back with their category (they were dropped on reading)."""

from __future__ import annotations

import json
from pathlib import Path

from maslow import io
from maslow.io.coco import read_coco


def _lvis_like(path: Path) -> Path:
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10, "neg_category_ids": [2],
                       "not_exhaustive_category_ids": []}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16}],
           "categories": [{"id": 1, "name": "aerosol_can", "frequency": "c", "synset": "aerosol.n.02",
                           "synonyms": ["aerosol can", "spray can"], "image_count": 64, "instance_count": 109},
                          {"id": 2, "name": "air_conditioner", "frequency": "f", "def": "a machine"},
                          {"id": 3, "name": "plain"}]}
    path.write_text(json.dumps(doc))
    return path


def test_category_keys_are_kept_and_written_back(tmp_path: Path) -> None:
    ds = read_coco(_lvis_like(tmp_path / "lvis.json"))
    assert ds.info["coco_categories"] == {
        "1": {"frequency": "c", "synset": "aerosol.n.02", "synonyms": ["aerosol can", "spray can"],
              "image_count": 64, "instance_count": 109},
        "2": {"frequency": "f", "def": "a machine"}}
    rep = io.write(ds, tmp_path / "back.json", "coco")
    assert not any("coco_categories" in n for n in rep.notes)
    back = json.loads((tmp_path / "back.json").read_text())
    original = json.loads((tmp_path / "lvis.json").read_text())
    strip = {"supercategory"}  # maslow writes an empty supercategory where the file had none
    assert [{k: v for k, v in c.items() if k not in strip} for c in back["categories"]] == original["categories"]
    assert back["images"][0]["neg_category_ids"] == [2]


def test_another_format_notes_the_keys_it_cannot_hold(tmp_path: Path) -> None:
    ds = read_coco(_lvis_like(tmp_path / "lvis.json"))
    rep = io.write(ds, tmp_path / "yolo", "yolo")
    assert any("info['coco_categories']" in n for n in rep.notes)
