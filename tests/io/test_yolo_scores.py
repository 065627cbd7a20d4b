"""YOLO prediction files: Ultralytics' ``save_conf`` lines (the confidence after the coordinates) read as scores, for
detect, segment, pose and obb lines, by the bulk and the line-by-line reader alike; files mixing scored and unscored
lines reported with their line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.io import yolo


def _dataset(root: Path, files: dict[str, str], *, yaml: str = "names: [cat, dog]\n", size: tuple[int, int] = (20, 10)
             ) -> Path:
    """An Ultralytics folder: data.yaml, one PNG of ``size`` and one label file per entry of ``files``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/train\n{yaml}", encoding="utf-8")
    for stem, text in files.items():
        img = root / "images" / "train" / f"{stem}.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", size, 0).save(img)
        lab = root / "labels" / "train" / f"{stem}.txt"
        lab.parent.mkdir(parents=True, exist_ok=True)
        lab.write_text(text, encoding="utf-8")
    return root


def _types(report: object) -> list[str]:
    return [i.type for i in report.issues]  # type: ignore[attr-defined]


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "line-by-line"])
def test_detect_lines_with_a_confidence_are_scored_predictions(tmp_path: Path, bulk: bool) -> None:
    # a value outside [0, 1] (1.2, a warning) sends the file to the line-by-line reader: both give the same rows
    w = "0.2" if bulk else "1.2"
    plain = _dataset(tmp_path / "plain", {"a": f"0 0.5 0.5 {w} 0.4\n1 0.25 0.5 0.1 0.2\n"})
    scored = _dataset(tmp_path / "scored", {"a": f"0 0.5 0.5 {w} 0.4 0.9\n1 0.25 0.5 0.1 0.2 0.125\n"})
    ref, _ = yolo.parse(plain)
    ds, report = yolo.parse(scored)
    assert ref.annotations.score is None
    assert ds.annotations.score is not None and ds.annotations.score.tolist() == [0.9, 0.125]
    np.testing.assert_array_equal(ds.annotations.box, ref.annotations.box)  # the confidence is no coordinate
    assert ds.annotations.label.tolist() == [0, 1]
    assert "yolo_bad_columns" not in _types(report)  # was: every line refused (6 values)
    # the width 1.2, not the confidence; yolo_scored (info) counts the lines read with a confidence
    assert _types(report) == (["yolo_scored"] if bulk else ["yolo_not_normalized", "yolo_scored"])


def test_segment_lines_with_an_even_count_end_with_a_confidence(tmp_path: Path) -> None:
    poly = "0.1 0.1 0.9 0.1 0.5 0.9"
    ref, _ = yolo.parse(_dataset(tmp_path / "plain", {"a": f"1 {poly}\n"}))
    ds, report = yolo.parse(_dataset(tmp_path / "scored", {"a": f"1 {poly} 0.75\n0 {poly} 0.5 0.5 0.25\n"}))
    assert ds.annotations.score is not None and ds.annotations.score.tolist() == [0.75, 0.25]
    got, want = ds.annotations.polygon, ref.annotations.polygon
    assert got is not None and want is not None and ds.annotations.box is not None and ref.annotations.box is not None
    np.testing.assert_array_equal(ds.annotations.box[0], ref.annotations.box[0])
    rows = got.tolist()
    assert rows[0] is not None and rows[1] is not None
    np.testing.assert_allclose(rows[0][0], want.tolist()[0][0])  # type: ignore[index]
    assert len(rows[1][0]) == 8  # 4 points, the confidence left off
    assert report.n_errors == 0


def test_pose_and_obb_lines_with_one_more_value(tmp_path: Path) -> None:
    pose = _dataset(tmp_path / "pose", {"a": "0 0.5 0.5 0.4 0.4 0.4 0.4 2 0.6 0.6 1 0.8\n"},
                    yaml="names: [person]\nkpt_shape: [2, 3]\n")
    ds, report = yolo.parse(pose)
    assert report.n_errors == 0 and ds.annotations.score is not None and ds.annotations.score.tolist() == [0.8]
    assert ds.annotations.keypoints is not None
    np.testing.assert_allclose(ds.annotations.keypoints[0], [[8, 4, 2], [12, 6, 1]])
    obb = _dataset(tmp_path / "obb", {"a": "1 0.1 0.1 0.9 0.1 0.9 0.9 0.1 0.9 0.5\n"}, yaml="names: [a, b]\ntask: obb\n")
    ds, report = yolo.parse(obb)
    assert report.n_errors == 0 and ds.annotations.score is not None and ds.annotations.score.tolist() == [0.5]
    assert ds.annotations.box is not None
    np.testing.assert_allclose(ds.annotations.box, [[2, 1, 18, 9]])


def test_a_file_mixing_scored_and_unscored_lines_is_reported_with_its_line(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "mixed", {"a": "0 0.5 0.5 0.2 0.4 0.9\n\n1 0.25 0.5 0.1 0.2\n0 0.5 0.5 0.2 0.4 0.3\n"})
    ds, report = yolo.parse(src)
    found = [i for i in report.issues if i.type == "yolo_mixed_scores"]
    assert len(found) == 1 and found[0].severity == "error"
    assert found[0].record == "line 3" and str(found[0].file).endswith("a.txt") and found[0].field == "score"
    assert ds.annotations.score is not None
    np.testing.assert_array_equal(ds.annotations.score, [0.9, np.nan, 0.3])


def test_label_files_without_confidences_beside_files_with_them_are_named(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "files", {"a": "1 0.25 0.5 0.1 0.2\n1 0.5 0.5 0.1 0.2\n",
                                         "b": "0 0.5 0.5 0.2 0.4 0.9\n0 0.5 0.5 0.2 0.2 0.8\n", "c": "\n0 0.5 0.5 0.2 0.4\n"})
    ds, report = yolo.parse(src)
    found = [i for i in report.issues if i.type == "yolo_mixed_scores"]
    assert len(found) == 1 and found[0].severity == "warning" and str(found[0].file).endswith("a.txt")
    assert found[0].record == "line 1" and "2 files without (3 lines)" in found[0].message
    assert ds.images.path.tolist() == [f"images/train/{s}.png" for s in "abc"]
    assert ds.annotations.image.tolist() == [0, 0, 1, 1, 2] and ds.annotations.score is not None
    np.testing.assert_array_equal(ds.annotations.score, [np.nan, np.nan, 0.9, 0.8, np.nan])  # each row its own


def test_other_counts_are_still_refused_and_ground_truth_has_no_scores(tmp_path: Path) -> None:
    ds, report = yolo.parse(_dataset(tmp_path / "bad", {"a": "0 0.5 0.5 0.2\n1 0.25 0.5 0.1 0.2\n"}))
    bad = [i for i in report.issues if i.type == "yolo_bad_columns"]
    assert len(bad) == 1 and bad[0].record == "line 1" and "got 4" in bad[0].message
    assert ds.n_annotations == 1 and ds.annotations.score is None and _types(report) == ["yolo_bad_columns"]
