"""The generated shapes dataset: deterministic, every column kind, clean, and its files match its tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core import Dataset, Task
from maslow.core import masks as M
from maslow.errors import FormatError, MaslowError
from maslow.io import check_boxes, check_dataset, check_images, load
from maslow.ontology.validate import validate
from maslow.sample import CLASSES, COLOURS, shapes, write_shapes
from tests.helpers import assert_datasets_equal

ALL_FIELDS = ("path", "size", "split", "label", "box", "mask", "polygon", "keypoints", "iscrowd")


def test_shapes_is_deterministic_per_seed() -> None:
    a, b, c = shapes(30, seed=4), shapes(30, seed=4), shapes(30, seed=5)
    assert_datasets_equal(a, b, fields=ALL_FIELDS, attributes=("colour", "occluded"))
    assert a.n_annotations != c.n_annotations or not np.allclose(a.annotations.box, c.annotations.box)  # type: ignore[arg-type]
    g1, g2 = shapes(10, seed=np.random.default_rng(9)), shapes(10, seed=np.random.default_rng(9))
    assert_datasets_equal(g1, g2, fields=ALL_FIELDS)


def test_shapes_holds_every_column_kind(shapes_ds: Dataset) -> None:
    ds = shapes_ds
    a = ds.annotations
    assert ds.schema.names == CLASSES and ds.schema.task is Task.INSTANCE_SEGMENTATION
    assert {Task.DETECTION, Task.KEYPOINTS} <= set(ds.schema.tasks)
    assert ds.root is None and ds.n_images == 24 and ds.n_annotations > 20
    assert a.box is not None and a.has_box.all()
    assert a.mask is not None and all(isinstance(r, dict) and isinstance(r["counts"], bytes) for r in a.mask)
    assert a.polygon is not None and a.keypoints is not None and a.keypoints.shape[1:] == (3, 3)
    assert a.iscrowd is not None and a.iscrowd.any() and not a.iscrowd.all()
    assert set(np.unique(a.label).tolist()) == {0, 1, 2}
    assert set(a.attributes) == {"colour", "occluded"}
    assert set(a.attributes["colour"].tolist()) <= set(COLOURS)
    assert {True, False} <= set(a.attributes["occluded"].tolist())
    assert set(ds.images.extra) == {"sequence", "frame"}
    assert set(ds.images.split.tolist()) == {"train", "val"}  # type: ignore[union-attr]
    counts = np.diff(ds.image_slices())
    assert counts[0] == 0 and counts[7] == 0  # every 7th image is empty


def test_shapes_geometry_is_consistent(shapes_ds: Dataset) -> None:
    a = shapes_ds.annotations
    assert a.polygon is not None and a.mask is not None and a.keypoints is not None and a.iscrowd is not None
    for r in range(len(a)):
        if a.iscrowd[r]:
            assert a.polygon[r] is None
            np.testing.assert_allclose(M.to_box([a.mask[r]])[0], a.box[r])  # type: ignore[index]
            assert np.isnan(a.keypoints[r]).all()
            continue
        np.testing.assert_allclose(M.polygon_box(a.polygon[r]), a.box[r])  # type: ignore[index]
        rle = M.from_polygons(a.polygon[r], 120, 160)
        assert rle["counts"] == M.compress(a.mask[r])["counts"]
        if a.label[r] == 2:  # triangles: 3 visible keypoints on the vertices
            np.testing.assert_allclose(a.keypoints[r, :, :2], a.polygon[r][0].reshape(-1, 2))
            assert a.keypoints[r, :, 2].tolist() == [2.0, 2.0, 2.0]
        else:  # no keypoints: a NaN row, as the tables define it
            assert np.isnan(a.keypoints[r]).all()


def test_shapes_passes_the_box_checks_and_keeps_sequences_in_one_split() -> None:
    for seed in range(3):
        ds = shapes(40, seed=seed, width=90, height=200)
        assert check_boxes(ds).issues == ()
        seq, split = ds.images.extra["sequence"], ds.images.split
        assert all(len(set(split[seq == s].tolist())) == 1 for s in set(seq.tolist()))  # type: ignore[index]


@pytest.mark.parametrize("frames", [1, 5])
def test_shapes_sequences_and_frames(frames: int) -> None:
    ds = shapes(10, seed=0, frames_per_sequence=frames)
    assert ds.images.extra["frame"].tolist() == [i % frames for i in range(10)]
    assert len(set(ds.images.extra["sequence"].tolist())) == -(-10 // frames)


def test_write_shapes_writes_pngs_of_the_declared_sizes(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "out", 9, seed=2, width=70, height=50)
    assert ds.root == tmp_path / "out"
    assert_datasets_equal(ds, shapes(9, seed=2, width=70, height=50), fields=ALL_FIELDS)
    files = sorted((tmp_path / "out" / "images").iterdir())
    assert [f"images/{p.name}" for p in files] == ds.images.path.tolist()
    for i, p in enumerate(files):
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size == (int(ds.images.width[i]), int(ds.images.height[i]))
    assert check_images(ds, decode=True).issues == ()
    assert check_dataset(ds, decode=True).issues == ()


def test_write_shapes_draws_the_shapes_in_their_colour(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path, 8, seed=3)
    a = ds.annotations
    s = ds.image_slices()
    checked = 0
    for i in range(ds.n_images):
        rows = [r for r in range(s[i], s[i + 1]) if not a.iscrowd[r]]  # type: ignore[index]
        if len(rows) != 1:
            continue  # overlaps would make the colour ambiguous
        r = rows[0]
        px = load(ds, i)
        inside = M.decode(a.mask[r])  # type: ignore[index]
        mean = px[inside].mean(0)
        np.testing.assert_allclose(mean, COLOURS[str(a.attributes["colour"][r])], atol=25)
        assert px[~inside].mean() > 180  # a light, noisy background
        checked += 1
    assert checked >= 1


def test_write_shapes_is_deterministic(tmp_path: Path) -> None:
    write_shapes(tmp_path / "a", 4, seed=1)
    write_shapes(tmp_path / "b", 4, seed=1)
    for name in sorted(p.name for p in (tmp_path / "a" / "images").iterdir()):
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()


def test_bad_sizes_and_destinations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MaslowError, match="n_images must be >= 0, got -3"):
        shapes(-3)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FormatError, match="afile"):
        write_shapes(tmp_path / "afile" / "out", 2)


def _centres_inside(ring: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reference raster of a convex polygon: the pixels whose centre (x + 0.5, y + 0.5) is inside it."""
    pts = ring.reshape(-1, 2)
    ys, xs = np.mgrid[0:height, 0:width]
    cx, cy = xs + 0.5, ys + 0.5
    nxt = np.roll(pts, -1, axis=0)
    sign = np.sign(np.sum(pts[:, 0] * nxt[:, 1] - nxt[:, 0] * pts[:, 1]))  # orientation
    inside = np.ones((height, width), bool)
    for (x0, y0), (x1, y1) in zip(pts, nxt, strict=True):
        inside &= sign * ((x1 - x0) * (cy - y0) - (y1 - y0) * (cx - x0)) >= 0
    return inside


@pytest.mark.parametrize(("width", "height"), [(70, 50), (30, 20), (12, 200), (13, 12)])
def test_small_images_keep_every_shape_inside(width: int, height: int) -> None:
    for seed in range(3):
        ds = shapes(40, seed=seed, width=width, height=height)  # radii up to 28 did not fit: a numpy error
        a = ds.annotations
        assert a.box is not None and a.polygon is not None and a.mask is not None and a.keypoints is not None
        assert ds.n_annotations > 20
        b = a.box
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= width).all() and (b[:, 3] <= height).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert (M.area(list(a.mask)) > 0).all()  # every mask lies (at least partly) in its image
        kp = a.keypoints[~np.isnan(a.keypoints[:, 0, 0])]
        assert ((kp[..., 0] >= 0) & (kp[..., 0] <= width) & (kp[..., 1] >= 0) & (kp[..., 1] <= height)).all()
        assert check_boxes(ds).issues == ()
        assert len(validate(ds, ds.schema)) == 0  # labels, attributes and label types within the schema


def test_sizes_that_cannot_hold_a_shape_are_refused() -> None:
    with pytest.raises(MaslowError, match="width and height must be >= 12 pixels, got 11x100"):
        shapes(3, width=11, height=100)
    with pytest.raises(MaslowError, match="got 100x0"):
        shapes(3, width=100, height=0)
    with pytest.raises(MaslowError, match="frames_per_sequence must be >= 1, got 0"):
        shapes(3, frames_per_sequence=0)


def test_drawn_pixels_are_the_annotated_shapes(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path, 30, seed=5)
    a = ds.annotations
    assert a.box is not None and a.polygon is not None and a.mask is not None and a.iscrowd is not None
    s = ds.image_slices()
    colours = {k: np.asarray(v) for k, v in COLOURS.items()}
    lone = 0
    for i in range(ds.n_images):
        px = load(ds, i).astype(int)
        h, w = px.shape[:2]
        painted = np.zeros((h, w), bool)  # the background is light (>= 188): a shape colour is a drawn pixel
        for c in colours.values():
            painted |= (px == c).all(-1)
        cover = np.zeros((h, w), bool)
        for r in range(s[i + 1] - 1, s[i] - 1, -1):  # last drawn on top: its mask pixels show its colour
            m = M.decode(a.mask[r])
            own = m & ~cover if not a.iscrowd[r] else np.zeros_like(m)
            assert (px[own] == colours[str(a.attributes["colour"][r])]).all(), (i, r)
            cover |= m
        assert not (painted & ~cover).any(), i  # nothing drawn outside the annotations
        rows = list(range(s[i], s[i + 1]))
        if len(rows) != 1 or a.iscrowd[rows[0]]:
            continue
        r = rows[0]  # a lone shape: its pixels against the polygon's reference raster and its box
        ref = _centres_inside(a.polygon[r][0], h, w)
        assert (painted & ref).sum() / (painted | ref).sum() > 0.97, (i, r)
        ys, xs = np.nonzero(painted)
        drawn_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)  # pixel edges
        np.testing.assert_allclose(drawn_box, a.box[r], atol=1.0)
        lone += 1
    assert lone >= 3


def test_write_shapes_writes_each_image_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_shapes(tmp_path, 2, seed=0)
    assert list((tmp_path / "images").iterdir()) == []  # no half-written PNG under its final name
