"""``import_dataset`` runs the image-file checks after the reader; a reader that matched label files to images (YOLO)
already reported an image it could not find or read, and the report says it once."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from maslow import io


@pytest.mark.parametrize("broken", ["missing", "unreadable"])
def test_a_yolo_image_finding_is_reported_once(tmp_path: Path, broken: str) -> None:
    root = tmp_path / "d"
    for name in ("a", "b"):
        (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "images" / "train").mkdir(parents=True)
    Image.new("L", (20, 10)).save(root / "images" / "train" / "b.png")
    if broken == "unreadable":
        (root / "images" / "train" / "a.png").write_bytes(b"not a png")
    (root / "data.yaml").write_text("train: images/train\nnames: [x]\n")
    imp = io.import_dataset(root, "yolo")
    kind = f"{broken}_image"
    found = [i for i in imp.report if i.type == kind]
    assert len(found) == 1, [(i.type, i.image) for i in imp.report]
    row = [Path(p).stem for p in imp.dataset.images.path.tolist()].index("a")  # a missing one is guessed a.jpg
    assert found[0].image == row and found[0].severity == "error"
