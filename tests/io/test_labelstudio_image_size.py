"""Label Studio keeps an image's size only on its regions' results (``original_width``/``original_height``): the
size of an image without a region is read back from the image file, and where the writer finds no such file under
the dataset's root it counts the size lost (``image_size``) and says which (CVAT -> Label Studio -> CVAT turned a
64x48 image without annotations into 0x0 with nothing in the report)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from PIL import Image

from maslow.io import cvat, labelstudio

CVAT_XML = Path(__file__).parents[1] / "data" / "cvat" / "annotations.xml"


def _read(folder: Path) -> object:
    shutil.copy(CVAT_XML, folder / "annotations.xml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cvat.read_cvat(folder / "annotations.xml")


def test_the_size_of_an_image_without_regions_is_counted_lost_when_no_file_gives_it_back(tmp_path: Path) -> None:
    ds = _read(tmp_path)
    i = ds.images.path.tolist().index("img1.jpg")
    assert (ds.images.width[i], ds.images.height[i]) == (64, 48)
    assert not (ds.annotations.image == i).any()  # no annotation: no result to carry original_width
    rep = labelstudio.write(ds, tmp_path / "tasks.json")
    assert rep.lost["image_size"] == 1 and not rep.lossless, rep.to_dict()
    assert any("image sizes not written: 1 images" in n and "img1.jpg 64x48" in n for n in rep.notes), rep.notes
    back, report = labelstudio.parse(tmp_path / "tasks.json")
    j = back.images.path.tolist().index("img1.jpg")
    assert (back.images.width[j], back.images.height[j]) == (0, 0)  # what the count said
    assert report.counts().get("labelstudio_unknown_size") == 1


def test_the_size_is_not_lost_where_the_image_file_gives_it_back(tmp_path: Path) -> None:
    ds = _read(tmp_path)
    Image.new("RGB", (64, 48)).save(tmp_path / "img1.jpg")
    rep = labelstudio.write(ds, tmp_path / "tasks.json")
    assert "image_size" not in rep.lost and not any("image sizes" in n for n in rep.notes), rep.to_dict()
    back, _ = labelstudio.parse(tmp_path / "tasks.json")
    j = back.images.path.tolist().index("img1.jpg")
    assert (back.images.width[j], back.images.height[j]) == (64, 48)
