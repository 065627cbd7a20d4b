"""Label maps of images that share a path and stem (``a.png`` and ``a.jpg``): each image gets its own map, and the
reader pairs every map with its image again (audit 19, finding 1: the second map overwrote the first)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from maslow import Annotations, Dataset, Images, LabelSchema, io
from maslow.cli.main import app
from maslow.core import masks as M
from maslow.io.semantic import _map_names, parse


def _mask(h: int, w: int, y: int) -> dict:
    b = np.zeros((h, w), bool)
    b[y:y + 3, 2:6] = True
    return M.encode(b)


def _dataset(root: Path, paths: list[str], sizes: list[tuple[int, int]]) -> Dataset:
    """One annotation per image, class k on image k, each in another place; the image files under ``root``."""
    for p, (w, h) in zip(paths, sizes, strict=True):
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        if not (root / p).exists():
            Image.new("RGB", (w, h)).save(root / p, format="PNG")  # the content's format does not matter here
    masks = np.empty(len(paths), object)
    masks[:] = [_mask(h, w, 1 + k) for k, (w, h) in enumerate(sizes)]
    return Dataset(schema=LabelSchema.from_names([f"c{k}" for k in range(len(paths))]),
                   images=Images(path=paths, width=[w for w, _ in sizes], height=[h for _, h in sizes]),
                   annotations=Annotations(image=np.arange(len(paths)), label=np.arange(len(paths)),
                                           box=M.to_box(list(masks)), mask=masks)).replace(root=root)


def _by_path(ds: Dataset) -> dict[str, tuple[tuple[int, int], list[tuple[str, np.ndarray]]]]:
    """Image path -> ((width, height), [(class name, pixels), ...])."""
    out = {}
    for i, p in enumerate(ds.images.path.tolist()):
        rows = np.flatnonzero(ds.annotations.image == i)
        out[p] = ((int(ds.images.width[i]), int(ds.images.height[i])),
                  [(ds.schema.names[ds.annotations.label[r]], M.decode(ds.annotations.mask[r])) for r in rows])
    return out


def _same(a: Dataset, b: Dataset) -> None:
    got, want = _by_path(b), _by_path(a)
    assert sorted(got) == sorted(want)
    for p, (size, items) in want.items():
        assert got[p][0] == size, p
        assert [n for n, _ in got[p][1]] == [n for n, _ in items], p
        for (_, x), (_, y) in zip(got[p][1], items, strict=True):
            assert np.array_equal(x, y), p


def test_same_stem_images_get_their_own_label_maps(tmp_path: Path) -> None:
    paths = ["a.png", "a.jpg", "sub/b.jpeg", "sub/b.JPG", "c.PNG"]
    sizes = [(20, 10), (30, 16), (12, 9), (14, 11), (8, 8)]
    ds = _dataset(tmp_path / "img", paths, sizes)
    rep = io.write(ds, tmp_path / "out", "masks")
    assert rep.n_images == 5 and rep.n_annotations == 5 and not rep.lost
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert files == ["a.jpg.png", "a.png", "c.png", "sub/b.JPG.png", "sub/b.png"]
    back, report = parse(tmp_path / "out", images_root=tmp_path / "img")
    assert report.counts() == {}  # every map pairs with its own image: no ambiguity, no size mismatch
    _same(ds, back)


def test_map_names_keep_the_plain_name_for_the_image_named_so() -> None:
    # the image named like the map keeps it, whatever its position; others get their whole name + .png
    assert _map_names(["x/a.jpg", "x/a.png"]) == (["x/a.jpg.png", "x/a.png"], [])
    # no image named like the map: the first by suffix (the reader's pick) keeps it
    assert _map_names(["a.png.bmp", "a.jpeg", "a.jpg"])[0] == ["a.png.png", "a.jpeg.png", "a.png"]
    # one path listed three times: the third map can't be paired by name, and says so
    names, unpaired = _map_names(["d.png", "d.png", "d.png"])
    assert names == ["d.png", "d.png.png", "d__2.png"] and unpaired == ["d__2.png"]
    # an image already named a.jpg.png: a.jpg's map can't take that name
    names, unpaired = _map_names(["a.png", "a.jpg", "a.jpg.png"])
    assert len(set(names)) == 3 and unpaired == ["a__2.png"]


def test_a_path_listed_twice_reads_back_twice(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "img", ["d.png", "d.png"], [(10, 10), (10, 10)])
    rep = io.write(ds, tmp_path / "out", "masks")
    assert not rep.lost
    back, _ = parse(tmp_path / "out", images_root=tmp_path / "img")
    assert back.images.path.tolist() == ["d.png", "d.png"]
    assert sorted(back.schema.names[k] for k in back.annotations.label) == ["c0", "c1"]


def test_a_map_no_image_pairs_with_is_counted(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "img", ["d.png"] * 3, [(10, 10)] * 3)
    rep = io.write(ds, tmp_path / "out", "masks")
    assert rep.lost == {"image_names": 1} and any("d__2.png" in n for n in rep.notes)
    assert len(list((tmp_path / "out").glob("*.png"))) == 3  # nothing overwritten


def test_convert_to_masks_keeps_both_images(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "img", ["a.png", "a.jpg"], [(20, 10), (30, 16)])
    io.write(ds, tmp_path / "img" / "in.json", "coco")
    res = CliRunner().invoke(app, ["convert", str(tmp_path / "img" / "in.json"), str(tmp_path / "out"),
                                   "--from", "coco", "--to", "masks", "--json"])
    assert res.exit_code == 0, res.output
    assert not json.loads(res.output[res.output.index("{"):]).get("lost")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.jpg.png", "a.png"]
    back, report = parse(tmp_path / "out", images_root=tmp_path / "img")
    assert report.counts() == {}
    _same(ds, back)


def test_a_path_paired_by_its_stem_listed_twice_is_counted(tmp_path: Path) -> None:
    """``a.jpg`` twice: the repeat's map ``a.jpg.png`` claimed ``a.jpg``, so the first record's ``a.png`` read back
    as an image named ``a.png``, and nothing was counted. The first record keeps its image; the repeat is counted."""
    ds = _dataset(tmp_path / "img", ["a.jpg", "a.jpg"], [(10, 10), (10, 10)])
    rep = io.write(ds, tmp_path / "out", "masks")
    assert rep.lost == {"image_names": 1} and any("a__2.png" in n for n in rep.notes)
    back, _ = parse(tmp_path / "out", images_root=tmp_path / "img")
    got = _by_path(back)
    assert sorted(got) == ["a.jpg", "a__2.png"] and [n for n, _ in got["a.jpg"][1]] == ["c0"]
