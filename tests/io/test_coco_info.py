"""COCO's top-level metadata (``info``, ``licenses``, other keys) survives reading and writing (``Dataset.info``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import maslow.io as io
from maslow.core.dataset import Dataset
from maslow.errors import FormatError, InvalidDatasetError
from maslow.sample import shapes

INFO = {"description": "COCO 2017 Dataset", "url": "http://cocodataset.org", "version": "1.0", "year": 2017,
        "contributor": "COCO Consortium", "date_created": "2017/09/01"}
LICENSES = [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1,
             "name": "Attribution-NonCommercial-ShareAlike License"},
            {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License ü"}]


def _coco(path: Path, **top: object) -> Path:
    doc = {**top,
           "images": [{"id": 7, "file_name": "a.jpg", "width": 40, "height": 30, "license": 4,
                       "coco_url": "http://images.cocodataset.org/val2017/a.jpg"}],
           "annotations": [{"id": 3, "image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12,
                            "iscrowd": 0}],
           "categories": [{"id": 1, "name": "cat", "supercategory": "animal"}]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("native", ["0", "1"], ids=["python", "kernel"])
def test_coco_round_trip_keeps_info_licenses_and_other_top_level_keys(tmp_path: Path, native: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    src = _coco(tmp_path / "in.json", info=INFO, licenses=LICENSES, type="instances")
    ds = io.read(src, "coco")
    assert ds.info == {"coco": {"info": INFO, "licenses": LICENSES, "type": "instances"}}
    rep = io.write(ds, tmp_path / "out.json", "coco")
    assert rep.lossless and rep.notes == []
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert out["info"] == INFO and out["licenses"] == LICENSES and out["type"] == "instances"
    assert out["images"][0]["license"] == 4  # the image's own key, kept as before
    assert list(out)[-3:] == ["images", "annotations", "categories"]


def test_pretty_output_is_json_pycocotools_reads(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    ds = io.read(_coco(tmp_path / "in.json", info=INFO, licenses=LICENSES), "coco")
    io.write(ds, tmp_path / "out.json", "coco", indent=2)
    coco = COCO(str(tmp_path / "out.json"))
    assert coco.dataset["licenses"] == LICENSES and coco.dataset["info"] == INFO
    assert coco.getAnnIds() == [3]


def test_without_info_the_writer_names_maslow_and_no_licenses(tmp_path: Path) -> None:
    ds = io.read(_coco(tmp_path / "in.json"), "coco")
    assert ds.info == {}
    io.write(ds, tmp_path / "out.json", "coco")
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert out["info"] == {"description": "written by maslow"} and out["licenses"] == []


def test_parquet_and_subsets_keep_info(tmp_path: Path) -> None:
    ds = io.read(_coco(tmp_path / "in.json", info=INFO, licenses=LICENSES), "coco")
    io.write(ds, tmp_path / "pq", "parquet")
    back = io.read(tmp_path / "pq", "parquet")
    assert back.info == ds.info
    assert back.select_images([0]).info == ds.info and back.select([]).info == ds.info
    merged = shapes(2).concat(back)
    assert merged.info == ds.info


def test_other_formats_note_the_info_they_cannot_hold(tmp_path: Path) -> None:
    ds = io.read(_coco(tmp_path / "in.json", info=INFO, licenses=LICENSES), "coco")
    rep = io.write(ds, tmp_path / "voc", "voc")
    assert any("info['coco'] (info, licenses) not written: voc" in n for n in rep.notes), rep.notes


def test_values_json_cannot_hold_are_counted_not_written(tmp_path: Path) -> None:
    ds = shapes(2).replace(info={"coco": {"info": INFO, "licenses": {1, 2}, "images": []}})
    rep = io.write(ds, tmp_path / "out.json", "coco")
    assert rep.lost["info"] == 1 and not rep.lossless
    assert any("info['coco']['images'] not written" in n for n in rep.notes)
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert out["info"] == INFO and out["licenses"] == [] and len(out["images"]) == 2
    with pytest.raises(FormatError, match="info"):
        io.write(shapes(2).replace(info={"when": {1, 2}}), tmp_path / "pq", "parquet")
    assert not (tmp_path / "pq").exists()


def test_info_must_be_a_mapping_with_text_keys() -> None:
    ds = shapes(1)
    with pytest.raises(InvalidDatasetError, match="info must be a mapping"):
        Dataset(ds.schema, ds.images, ds.annotations, info=[("coco", {})])  # type: ignore[arg-type]


def test_the_placeholders_maslow_writes_are_not_kept(tmp_path: Path) -> None:
    io.write(shapes(2), tmp_path / "a.json", "coco")  # no info: maslow's placeholder info and empty licenses
    ds = io.read(tmp_path / "a.json", "coco")
    assert ds.info == {}
    rep = io.write(ds, tmp_path / "voc", "voc")
    assert not any("info[" in n for n in rep.notes), rep.notes
    io.write(ds, tmp_path / "b.json", "coco")
    first = [(tmp_path / n).read_text(encoding="utf-8").split("\n", 1)[0] for n in ("a.json", "b.json")]
    assert first[0] == first[1] == '{"info": {"description":"written by maslow"}, "licenses": [],'  # the same head
    kept = io.read(_coco(tmp_path / "in.json", info={"description": "written by maslow"}, licenses=LICENSES), "coco")
    assert kept.info == {"coco": {"licenses": LICENSES}}
