"""VOC image ids in ImageSets/Main/<split>.txt (one id a line): an id with a line break is refused before anything
is written, an id ending in a space keeps its split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maslow import Annotations, Dataset, FormatError, Images, LabelSchema
from maslow.io import voc


def _ds(tmp_path: Path, paths: list[str], split: list[str] | None = None) -> Dataset:
    n = len(paths)
    return Dataset(schema=LabelSchema.from_names(["a"]),
                   images=Images(path=paths, width=[10] * n, height=[8] * n, split=split),
                   annotations=Annotations(image=list(range(n)), label=[0] * n, box=[[1, 1, 5, 6]] * n),
                   root=tmp_path)


@pytest.mark.parametrize("name", ["newline\nname.png", "cr\rname.png", "ls\u2028name.png", "ff\x0cname.png",
                                  "end\n.png"])
def test_an_id_with_a_line_break_is_refused_naming_the_image(tmp_path: Path, name: str) -> None:
    ds = _ds(tmp_path, ["ok.png", name])
    with pytest.raises(FormatError, match=r"images\[1\] \(.*\), field 'path': the image's VOC id .* holds a line "
                                          r"break.*nothing was written") as e:
        voc.write(ds, tmp_path / "out", images=False)
    assert repr(name) in str(e.value)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []  # no temp folder either


def test_the_cli_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    from tests.helpers import run_cli

    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 8},
                       {"id": 2, "file_name": "new\nline.png", "width": 10, "height": 8}],
            "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 1, 4, 5], "area": 20,
                             "iscrowd": 0}],
            "categories": [{"id": 1, "name": "a"}]}
    (tmp_path / "in.json").write_text(json.dumps(coco))
    code, text = run_cli(["convert", str(tmp_path / "in.json"), str(tmp_path / "voc"), "--from", "coco", "--to",
                          "voc", "--write-option", "images=false"])
    assert code == 2, text
    assert "'new\\nline'" in text and "line break" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


def test_ids_with_spaces_tabs_and_a_trailing_space_keep_their_split(tmp_path: Path) -> None:
    paths = ["two words.png", "tab\there.png", "trailing .png", "plain.png"]
    ds = _ds(tmp_path, paths, split=["train", "val", "val", "train"])
    voc.write(ds, tmp_path / "out", images=False)
    back, report = voc.parse(tmp_path / "out", images_root=tmp_path)
    assert len(report) == 0, [str(i) for i in report]
    got = dict(zip(back.images.path.tolist(), back.images.split.tolist(), strict=True))
    assert got == dict(zip(paths, ["train", "val", "val", "train"], strict=True))
