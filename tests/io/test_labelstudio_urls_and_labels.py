"""Label Studio: image values without a scheme are read as URLs (query left out, percent-decoded) unless a file of
the literal name exists; writing its predictions and several annotators' annotations to a format whose labels
are all alike (VOC here) says they were written as labels, not only that their fields were lost; reading reports
progress over the bytes read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.io import _export
from maslow.io import labelstudio as ls


def _task_file(tmp_path: Path, image: str) -> Path:
    p = tmp_path / "export.json"
    p.write_text(json.dumps([{"id": 1, "data": {"image": image}, "annotations": []}]), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("url", "path", "kinds"),
    [
        pytest.param("img.jpg?x=1", "img.jpg", {"url_query"}, id="relative-query"),
        pytest.param("sub/img%201.jpg", "sub/img 1.jpg", set(), id="percent"),
        pytest.param("/storage/img.jpg?x=1", "img.jpg", {"unmappable_url"}, id="absolute-elsewhere"),
        pytest.param("photo#1.jpg", "photo#1.jpg", set(), id="hash-kept"),
        pytest.param("/data/upload/3/a.jpg?v=2", "upload/3/a.jpg", set(), id="upload"),
    ],
)
def test_a_path_without_a_scheme_is_read_as_a_url(tmp_path: Path, url: str, path: str, kinds: set[str]) -> None:
    ds, report = ls.parse(_task_file(tmp_path, url), images_root=tmp_path)
    assert ds.images.path[0] == path
    assert ds.images.extra["ls_url"][0] == url  # written back as it was
    assert set(report.counts()) - {"missing_size", "labelstudio_unknown_size"} == kinds


def test_a_file_named_with_a_question_mark_is_read_as_such(tmp_path: Path) -> None:
    (tmp_path / "what?.jpg").write_bytes(b"")
    ds, report = ls.parse(_task_file(tmp_path, "what?.jpg"), images_root=tmp_path)
    assert ds.images.path[0] == "what?.jpg" and "url_query" not in report.counts()


def test_the_decoded_file_wins_when_both_exist(tmp_path: Path) -> None:
    (tmp_path / "img.jpg?x=1").write_bytes(b"")
    (tmp_path / "img.jpg").write_bytes(b"")
    ds, _ = ls.parse(_task_file(tmp_path, "img.jpg?x=1"), images_root=tmp_path)
    assert ds.images.path[0] == "img.jpg"


def test_a_path_the_writer_encoded_comes_back(tmp_path: Path) -> None:
    ds = Dataset(schema=LabelSchema.from_names(["a"]),
                 images=Images(path=obj_array(["my dir/a b?.png"]), width=np.array([10]), height=np.array([8])),
                 annotations=Annotations(image=np.zeros(0, np.int64), label=np.zeros(0, np.int64),
                                         box=np.zeros((0, 4))))
    ls.write(ds, tmp_path / "t.json", url_prefix="")
    back, _ = ls.parse(tmp_path / "t.json", images_root=tmp_path)
    assert back.images.path.tolist() == ["my dir/a b?.png"]


def _box(x: float, label: str = "car", score: float | None = None) -> dict[str, object]:
    r: dict[str, object] = {"id": f"r{x}", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
                            "original_width": 100, "original_height": 100,
                            "value": {"x": x, "y": 10, "width": 20, "height": 30, "rectanglelabels": [label]}}
    if score is not None:
        r["score"] = score
    return r


@pytest.mark.parametrize("fmt", ["voc", "yolo", "dota"])
def test_predictions_and_annotators_written_as_labels_are_noted(tmp_path: Path, fmt: str) -> None:
    tasks = [{"id": 1, "data": {"image": "a.jpg"},
              "annotations": [{"id": 1, "completed_by": 1, "result": [_box(10)]},
                              {"id": 2, "completed_by": 2, "result": [_box(11)]}],
              "predictions": [{"model_version": "v1", "result": [_box(10, score=0.9), _box(60, "person", 0.4)]}]},
             {"id": 2, "data": {"image": "b.jpg"}, "annotations": [{"id": 3, "completed_by": 1,
                                                                    "result": [_box(5)]}]}]
    (tmp_path / "t.json").write_text(json.dumps(tasks))
    ds, _ = ls.parse(tmp_path / "t.json")
    rep = io.write(ds, tmp_path / fmt, fmt, images=False)
    assert rep.n_annotations == 5 and rep.lost["score"] == 2 and rep.lost["source"] == 2
    machine = [n for n in rep.notes if "not made by a person" in n]
    several = [n for n in rep.notes if "several annotators" in n]
    assert machine == ["2 annotations not made by a person (source: 2 model; e.g. model predictions) were written "
                       "as labels like the human ones: the format can't mark them, only their source and score "
                       "fields are lost"]
    assert len(several) == 1 and several[0].startswith("1 images hold") and "(4 annotations" in several[0]


def test_one_annotator_and_no_model_gets_no_note() -> None:
    ds = Dataset(schema=LabelSchema.from_names(["a"]),
                 images=Images(path=obj_array(["x.png", "y.png"]), width=np.full(2, 10), height=np.full(2, 8)),
                 annotations=Annotations(image=np.asarray([0, 0, 1]), label=np.zeros(3, np.int64),
                                         box=np.tile([0.0, 0, 4, 4], (3, 1)),
                                         annotator=obj_array(["ann", "ann", "bob"])))
    assert _export.label_notes(ds) == []
    assert len(_export.label_notes(ds, np.asarray([True, True, True]))) == 0
    two = ds.replace(annotations=ds.annotations.with_columns(annotator=obj_array(["ann", "bob", "bob"])))
    (note,) = _export.label_notes(two)
    assert note.startswith("1 images hold") and "(2 annotations" in note
    assert _export.label_notes(two, np.asarray([True, False, True])) == []  # only the rows written count


def test_reading_reports_the_bytes_read(tmp_path: Path) -> None:
    """``maslow convert`` showed ``importing tasks.json 0/?`` for the whole read of a big export."""
    tasks = [{"id": t, "data": {"image": f"im{t}.jpg"}, "annotations": [{"id": t, "result": [_box(10)]}]}
             for t in range(2000)]
    p = tmp_path / "t.json"
    p.write_text(json.dumps(tasks))
    size = p.stat().st_size
    calls: list[tuple[int, int]] = []
    ds, _ = ls.parse(p, chunk_bytes=1 << 14, progress=lambda d, t: calls.append((d, t)))
    assert ds.n_images == 2000
    assert calls[0] == (0, size) and calls[-1] == (size, size) and {t for _, t in calls} == {size}
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and 3 < len(calls) <= 102
    from maslow import io

    seen: list[tuple[int, int]] = []
    io.import_dataset(p, "labelstudio", check_files=False, progress=lambda d, t: seen.append((d, t)))
    assert (size, size) in seen
