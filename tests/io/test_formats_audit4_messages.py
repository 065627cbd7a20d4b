"""Audit 4, F5: the YOLO reader's messages say what the file holds: the float class id as written, and why an
image's size is unknown (missing or unreadable)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from maslow.io import yolo


def _tree(root: Path, labels: dict[str, str]) -> Path:
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for stem, text in labels.items():
        (root / "labels" / "train" / f"{stem}.txt").write_text(text)
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b, c]\n")
    return root


def test_float_class_message_shows_the_files_value(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"x": "1 0.5 0.5 0.2 0.2\n2.00 0.5 0.5 0.1 0.1\n1.0 0.5 0.5 0.1 0.1\n"})
    Image.new("RGB", (8, 8)).save(root / "images" / "train" / "x.png")
    ds, report = yolo.parse(root)
    (issue,) = [i for i in report if i.type == "yolo_float_class"]
    assert "'2.00'" in issue.message and "line 2" in issue.message and "'0.0'" not in issue.message
    assert issue.message.startswith("2 class ids") and issue.record == "line 2"
    assert ds.annotations.label.tolist() == [1, 2, 1]


def test_unplaced_annotation_names_the_cause(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"bad": "0 0.5 0.5 0.2 0.2\n", "gone": "0 0.5 0.5 0.2 0.2\n"})
    (root / "images" / "train" / "bad.png").write_bytes(b"not a png")
    _, report = yolo.parse(root)
    by_image = {i.image: i for i in report if i.type == "unplaced_annotation"}
    bad = next(i.image for i in report if i.type == "unreadable_image")
    gone = next(i.image for i in report if i.type == "missing_image")
    assert "unreadable image" in by_image[bad].message and "missing" not in by_image[bad].message
    assert "missing image" in by_image[gone].message
