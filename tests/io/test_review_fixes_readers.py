"""Review fixes for two readers.

Open Images: the images list read by itself is maslow's ``image-ids.csv`` or an official list of the boxes CSV's
split (``validation-images-with-rotation.csv`` beside ``validation-annotations-bbox.csv``); lists of other splits
are read only through ``image_list=`` (their images would come in without their boxes), and images only a list
names are counted in an info finding. Sources: the Open Images download page (``{train,validation,test}-images-
with-rotation.csv``, ``image_ids_and_rotation.csv``: ``ImageID,Subset,...``).

YOLO: a trailing value is a confidence only in [0, 1] (``0 .5 .5 .2 .2 17``, a track id, is a line with a value too
many, as before scores were read); lines read with a confidence are counted in an info finding; ``scores=False``
never reads one, ``scores=True`` requires one. Source: Ultralytics ``save_txt``/``save_conf`` (``cls xywh conf``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.errors import FormatError
from maslow.io import openimages, yolo
from maslow.io._common import Collector
from maslow.io._yolo_read import Rows, read_label

BOXES = "ImageID,LabelName,XMin,XMax,YMin,YMax\nb2,/m/01,0.1,0.5,0.2,0.6\n"
LIST_HEADER = "ImageID,Subset,OriginalURL,Rotation\n"


def _folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


# -- Open Images: which images list is read ----------------------------------------------------------------------
def test_official_lists_of_two_splits_read_the_boxes_split(tmp_path: Path) -> None:
    root = _folder(tmp_path / "oi", {
        "validation-annotations-bbox.csv": BOXES,
        "validation-images-with-rotation.csv": LIST_HEADER + "a1,validation,u,0\nb2,validation,u,\n",
        "test-images-with-rotation.csv": LIST_HEADER + "t1,test,u,90\n",
    })
    ds, report = openimages.parse(root)  # was: FormatError "folder must hold one images list CSV, got 2"
    assert ds.images.path.tolist() == ["a1.jpg", "b2.jpg"] and ds.images.split is not None
    assert ds.images.split.tolist() == ["validation", "validation"]
    (skipped,) = report.of_type("openimages_image_list_not_read")
    assert skipped.severity == "info" and "test-images-with-rotation.csv" in skipped.message
    assert "validation" in skipped.message and "image_list=" in skipped.message
    (only,) = report.of_type("openimages_listed_only")  # a1: in the list, no box
    assert only.severity == "info" and "1 images" in only.message and "'a1'" in only.message
    assert only.record == "line 2" and only.field == "ImageID"
    assert str(only.file).endswith("validation-images-with-rotation.csv")


def test_a_list_of_another_split_is_not_read_by_itself(tmp_path: Path) -> None:
    root = _folder(tmp_path / "oi", {"validation-annotations-bbox.csv": BOXES,
                                     "test-images-with-rotation.csv": LIST_HEADER + "zzz,test,u,0\n"})
    ds, report = openimages.parse(root)
    assert ds.images.path.tolist() == ["b2.jpg"]  # was: zzz.jpg too, split test, without a word
    assert ds.images.split is None or ds.images.split.tolist() == [""]
    assert [i.type for i in report if i.type.startswith("openimages_image_list")] == ["openimages_image_list_not_read"]
    assert not report.of_type("openimages_listed_only")
    # named, it is read; its image without a box is said
    ds, report = openimages.parse(root, image_list=root / "test-images-with-rotation.csv")
    assert ds.images.path.tolist() == ["zzz.jpg", "b2.jpg"] and ds.images.split is not None
    assert ds.images.split.tolist() == ["test", ""]
    (only,) = report.of_type("openimages_listed_only")
    assert "1 images" in only.message and "'zzz'" in only.message and only.record == "line 2"
    assert not report.of_type("openimages_image_list_not_read")


def test_the_every_split_list_is_read_only_when_named(tmp_path: Path) -> None:
    every = "ImageID,Subset\nb2,validation\nt1,train\nt2,train\n"
    root = _folder(tmp_path / "oi", {"validation-annotations-bbox.csv": BOXES, "image_ids_and_rotation.csv": every})
    ds, report = openimages.parse(root)
    assert ds.n_images == 1 and report.of_type("openimages_image_list_not_read")
    ds, report = openimages.parse(root, image_list=root / "image_ids_and_rotation.csv")
    assert ds.images.path.tolist() == ["b2.jpg", "t1.jpg", "t2.jpg"]
    (only,) = report.of_type("openimages_listed_only")
    assert "2 images" in only.message and "'t1'" in only.message and only.record == "line 3"


def test_image_labels_count_as_naming_an_image(tmp_path: Path) -> None:
    root = _folder(tmp_path / "oi", {
        "annotations-bbox.csv": BOXES,
        "annotations-human-imagelabels-boxable.csv": "ImageID,Source,LabelName,Confidence\nc3,verification,/m/01,0\n",
        "image-ids.csv": "ImageID,Subset\nb2,val\nc3,val\nd4,val\n",
    })
    ds, report = openimages.parse(root)  # maslow's own list is read by itself, as before
    assert ds.images.path.tolist() == ["b2.jpg", "c3.jpg", "d4.jpg"]
    (only,) = report.of_type("openimages_listed_only")
    assert "1 images" in only.message and "'d4'" in only.message and only.record == "line 4"


def test_maslows_round_trip_says_the_images_without_annotations(tmp_path: Path) -> None:
    from maslow.sample import shapes

    ds = shapes(4, seed=1)
    ds = ds.select(ds.annotations.image != 1)  # image 1 has no box: the writer lists every image
    openimages.write(ds, tmp_path / "oi", images=False)
    bare = [k for k in range(4) if k not in set(ds.annotations.image.tolist())]
    assert 1 in bare
    back, report = openimages.parse(tmp_path / "oi")
    assert back.n_images == 4 and report.n_errors == 0
    (only,) = report.of_type("openimages_listed_only")
    stem = Path(str(ds.images.path[bare[0]])).stem
    assert f"{len(bare)} images" in only.message and repr(stem) in only.message


def test_two_lists_of_the_boxes_split_are_still_refused(tmp_path: Path) -> None:
    root = _folder(tmp_path / "oi", {"validation-annotations-bbox.csv": BOXES,
                                     "validation-images-with-rotation.csv": LIST_HEADER + "b2,validation,u,0\n",
                                     "image-ids.csv": "ImageID\nb2\n"})
    with pytest.raises(FormatError, match="one images list CSV, got 2"):
        openimages.parse(root)


# -- YOLO: a trailing value read as a confidence -----------------------------------------------------------------
def _yolo(root: Path, files: dict[str, str]) -> Path:
    (root / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: [cat, dog]\n")
    for stem, text in files.items():
        img = root / "images" / "train" / f"{stem}.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (20, 10), 0).save(img)
        lab = root / "labels" / "train" / f"{stem}.txt"
        lab.parent.mkdir(parents=True, exist_ok=True)
        lab.write_text(text)
    return root


def test_a_track_id_is_no_confidence_and_a_short_polygon_is_said(tmp_path: Path) -> None:
    src = _yolo(tmp_path / "gt", {"a": "0 .5 .5 .2 .2 17\n0 .1 .2 .3 .4 .5 .6 .7\n"})
    ds, report = yolo.parse(src)
    # was: score [17.0, 0.7], only yolo_mixed_task reported
    (bad,) = report.of_type("yolo_bad_columns")
    assert bad.severity == "error" and bad.record == "line 1" and bad.field == "score"
    assert str(bad.file).endswith("a.txt") and "'17'" in bad.message and "no confidence" in bad.message
    assert ds.n_annotations == 1 and ds.annotations.score is not None and ds.annotations.score.tolist() == [0.7]
    (scored,) = report.of_type("yolo_scored")
    assert scored.severity == "info" and scored.message.startswith("1 lines read as scored predictions")
    assert scored.record == "line 2" and str(scored.file).endswith("a.txt") and "scores=False" in scored.message


@pytest.mark.parametrize("last", ["17", "-0.5", "1.0001"])
def test_a_clean_file_with_an_out_of_range_last_value_is_refused_line_by_line(tmp_path: Path, last: str) -> None:
    src = _yolo(tmp_path / "gt", {"a": f"0 .5 .5 .2 .2 {last}\n1 .25 .5 .1 .2 {last}\n"})
    ds, report = yolo.parse(src)  # was (bulk reader): two boxes scored {last}
    assert ds.n_annotations == 0 and ds.annotations.score is None
    assert [(i.type, i.record) for i in report] == [("yolo_bad_columns", "line 1"), ("yolo_bad_columns", "line 2")]


def test_scored_predictions_are_counted_naming_the_first_file_and_line(tmp_path: Path) -> None:
    src = _yolo(tmp_path / "pred", {"a": "\n0 .5 .5 .2 .2 .9\n1 .25 .5 .1 .2 .125\n", "b": "1 .5 .5 .2 .2 1\n"})
    ds, report = yolo.parse(src)
    assert ds.annotations.score is not None and ds.annotations.score.tolist() == [0.9, 0.125, 1.0]
    assert [i.type for i in report] == ["yolo_scored"]  # was: nothing said
    (scored,) = report.of_type("yolo_scored")
    assert scored.message.startswith("3 lines read as scored predictions (a trailing confidence")
    assert scored.record == "line 2" and str(scored.file).endswith("a.txt") and scored.field == "score"
    plain, report = yolo.parse(_yolo(tmp_path / "gt", {"a": "0 .5 .5 .2 .2\n"}))
    assert plain.annotations.score is None and len(report) == 0


def _read(path: Path, text: str, scores: bool | None, **kw: object) -> tuple[Rows, list[tuple[str, str | None]]]:
    path.write_text(text)
    col, rows = Collector(), Rows()
    read_label(path, 0, None, col, rows, scores=scores, **kw)  # type: ignore[arg-type]
    return rows, [(i.type, i.record) for i in col.report()]


@pytest.mark.parametrize("text", ["0 .5 .5 .2 .2 .9\n", "0 .5 .5 .2 .2 .9\n0 .1 .1 .2 .2\n"], ids=["bulk", "lines"])
def test_scores_false_reads_no_confidence(tmp_path: Path, text: str) -> None:
    rows, found = _read(tmp_path / "a.txt", text, False)
    assert found[0] == ("yolo_bad_columns", "line 1") and len(found) == 1
    assert rows.n_scored == 0 and list(rows.lens) == ([] if text.count("\n") == 1 else [4])
    rows, found = _read(tmp_path / "b.txt", "0 .1 .2 .3 .4 .5 .6 .7\n", False)  # 7 values: a polygon missing one
    assert found == [("yolo_bad_columns", "line 1")] and not rows.cls
    rows, found = _read(tmp_path / "c.txt", "0 .5 .5 .2 .2\n1 .1 .2 .3 .4\n", False)  # unscored: as always
    assert found == [] and rows.cls == [0, 1] and rows.n_scored == 0
    rows, found = _read(tmp_path / "d.txt", "0 .1 .2 .3 .4 .5 .6\n", False)
    assert found == [] and rows.cls == [0] and list(rows.lens) == [6]


def test_scores_true_requires_a_confidence_in_0_1(tmp_path: Path) -> None:
    rows, found = _read(tmp_path / "a.txt", "0 .5 .5 .2 .2 .9\n1 .5 .5 .2 .2\n", True)
    assert found == [("yolo_bad_columns", "line 2")] and rows.cls == [0] and list(rows.score) == [0.9]
    rows, found = _read(tmp_path / "b.txt", "0 .5 .5 .2 .2 1.5\n", True)
    assert found == [("yolo_bad_value", "line 1")] and not rows.cls
    rows, found = _read(tmp_path / "c.txt", "0 .1 .2 .3 .4 .5 .6 .25\n1 .5 .5 .2 .2 0\n", True)
    assert found == [("yolo_mixed_task", "line 1")] and np.allclose(list(rows.score), [0.25, 0.0])
    rows, found = _read(tmp_path / "d.txt", "0 .1 .2 .3 .4 .5 .6 .7 .8 .5\n", True, obb=True)
    assert found == [] and list(rows.score) == [0.5]
