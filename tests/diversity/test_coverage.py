from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity.coverage import coverage, plot_coverage
from maslow.errors import MaslowError
from maslow.io import voc
from maslow.sample import write_shapes
from tests.conftest import shared_path


def _tiny(root: Path) -> Dataset:
    """Two images: flat grey (no edges) and a black/white checkerboard; boxes at known places."""
    Image.fromarray(np.full((40, 80), 128, np.uint8)).save(root / "flat.png")
    board = (np.indices((40, 40)).sum(0) % 2 * 255).astype(np.uint8)
    Image.fromarray(board).save(root / "board.png")
    images = Images(path=["flat.png", "board.png"], width=[80, 40], height=[40, 40],
                    extra={"camera": ["a", "a"]})
    boxes = [[0, 0, 10, 10], [60, 30, 80, 40], [0, 0, 40, 40]]
    ann = Annotations(image=[0, 0, 1], label=[0, 0, 1], box=boxes,
                      attributes={"weather": ["sun", "sun", "rain"]})
    return Dataset(LabelSchema.from_names(["a", "b"]), images, ann, root=root)


def test_image_properties_by_hand(tmp_path: Path) -> None:
    r = coverage(_tiny(tmp_path), grid=2)
    v = r.values
    assert v["brightness"][0] == pytest.approx(128 / 255) and v["contrast"][0] == pytest.approx(0.0)
    assert v["sharpness"][0] == 0.0
    assert v["brightness"][1] == pytest.approx(0.5, abs=0.01) and v["contrast"][1] == pytest.approx(0.5, abs=0.01)
    # Laplacian of a checkerboard is +-4 * 255 everywhere inside
    assert v["sharpness"][1] == pytest.approx((4 * 255) ** 2, rel=0.01)
    assert v["aspect"].tolist() == [2.0, 1.0]
    assert r.image["aspect"].counts == (0, 0, 1, 0, 1)  # 2.0 opens the last bin


def test_object_properties_and_position_grid(tmp_path: Path) -> None:
    r = coverage(_tiny(tmp_path), grid=2, pixels=False)
    assert "brightness" not in r.image
    # centres: (5, 5)/(80, 40) -> top-left; (70, 35) -> bottom-right; (20, 20)/(40, 40) -> cell (1, 1)
    assert r.position.tolist() == [[1, 0], [0, 2]]
    assert r.objects["size"].counts == (2, 1, 0)  # areas 100, 200, 1600 (medium: >= 32^2)
    assert r.objects["size"].under == ("large",)
    assert set(r.objects["position"].under) == {"r0c1", "r1c0"}
    assert r.per_class["b"].counts == (0, 1, 0)
    # camera has one value on every image: kept (not id-like); weather counted from attributes
    assert r.metadata["extra:camera"].counts == (2,)
    assert r.metadata["attribute:weather"].labels == ("rain", "sun")
    d = r.to_dict()
    assert {"group": "objects", "property": "size", "value": "large"} in d["under_covered"]


def test_under_covered_rule_and_ordered_bins(tmp_path: Path) -> None:
    ds = _tiny(tmp_path)
    r = coverage(ds, pixels=False, rel_share=0.25)
    # aspect histogram: 1.0 and 2.0 observed; only bins between the lowest and highest observed are named,
    # so the empty gap 1.25-2 is under-covered but the empty tails (< 0.8) are not
    assert r.image["aspect"].under == ("1.25-2",)


def test_shapes_sample_and_plots(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "s", 16, seed=2)
    seen: list[int] = []
    r = coverage(ds, progress=lambda done, total: seen.append(done))
    assert seen[-1] == 16 and not r.unreadable
    assert np.isfinite(r.values["sharpness"]).all() and r.image["brightness"].total == 16
    assert r.objects["class"].total == ds.n_annotations
    assert "extra:frame" in r.metadata and "attribute:colour" in r.metadata
    paths = plot_coverage(r, tmp_path / "plots")
    assert [p.name for p in paths] == ["coverage_images.png", "coverage_objects.png", "coverage_metadata.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert not list((tmp_path / "plots").glob("*.tmp"))


def test_missing_image_reported(tmp_path: Path) -> None:
    images = Images(path=["nope.jpg"], width=[10], height=[10])
    ds = Dataset(LabelSchema.from_names(["a"]), images, Annotations(image=[], label=[]), root=tmp_path)
    r = coverage(ds)
    assert r.unreadable[0][0] == 0 and np.isnan(r.values["brightness"][0])


@pytest.mark.parametrize(("options", "match"), [
    pytest.param({"grid": 0}, "grid must be >= 1, got 0", id="zero-grid"),  # used to raise IndexError
    pytest.param({"grid": -3}, "grid must be >= 1, got -3", id="negative-grid"),  # used to raise ValueError
    pytest.param({"rel_share": float("nan")}, "rel_share must be a number >= 0, got nan", id="nan-share"),
])
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, float], match: str) -> None:
    with pytest.raises(MaslowError, match=match):
        coverage(_tiny(tmp_path), pixels=False, **options)  # type: ignore[arg-type]


def test_bccd() -> None:
    ds, _ = voc.parse(shared_path("bccd", "annotations"))
    r = coverage(ds)
    assert not r.unreadable and r.image["brightness"].total == 364
    assert r.objects["class"].counts == (361, 4155, 372)
    assert r.image["resolution_mp"].counts[2] == 364  # 640x480 = 0.31 MP
