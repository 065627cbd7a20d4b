"""Dataset: row links, select/select_images, concat, replace, by_split, image_slices; property tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow.core import Annotations, AttributeDef, ClassDef, Dataset, Images, LabelSchema, Task
from maslow.errors import InvalidDatasetError
from tests.helpers import assert_datasets_equal

ALL_FIELDS = ("path", "size", "split", "label", "box", "score", "mask", "polygon", "keypoints", "iscrowd")


def make(
    image: list[int],
    label: list[int],
    *,
    m: int | None = None,
    names: tuple[str, ...] = ("a", "b", "c"),
    prefix: str = "img",
    root: Path | str | None = None,
    **cols: object,
) -> Dataset:
    m = (max(image) + 1 if image else 0) if m is None else m
    n = len(image)
    cols.setdefault("box", [[i, i, i + 2 + j, i + 3] for j, i in enumerate(range(n))])
    return Dataset(
        schema=LabelSchema.from_names(names),
        images=Images(path=[f"{prefix}{i}.png" for i in range(m)], width=np.full(m, 50), height=np.full(m, 40)),
        annotations=Annotations(image=np.asarray(image, np.int64), label=np.asarray(label, np.int64), **cols),  # type: ignore[arg-type]
        root=root,
    )


# -- validation -------------------------------------------------------------------------------------


def test_image_link_out_of_range_names_the_row() -> None:
    with pytest.raises(InvalidDatasetError, match=r"annotations\.image row 2: must be a row of images \(0\.\.1\), got 2"):
        make([0, 1, 2], [0, 0, 0], m=2)
    with pytest.raises(InvalidDatasetError, match=r"annotations\.image row 0: must be a row of images .*got -1"):
        make([-1, 0], [0, 0], m=2)


def test_label_out_of_range_names_the_row() -> None:
    with pytest.raises(InvalidDatasetError, match=r"annotations\.label row 1: must index schema\.classes \(0\.\.2\), got 3 \(2 rows\)"):
        make([0, 0, 1], [0, 3, 7])


def test_annotations_on_an_empty_images_table_are_refused() -> None:
    with pytest.raises(InvalidDatasetError, match=r"annotations\.image row 0"):
        make([0], [0], m=0)


def test_root_is_a_path_and_sizes_and_repr() -> None:
    ds = make([0, 0, 2], [0, 1, 2], m=4, root="some/dir")
    assert ds.root == Path("some/dir")
    assert (len(ds), ds.n_images, ds.n_annotations) == (4, 4, 3)
    assert "4 images, 3 annotations, 3 classes, task=detection" in repr(ds)


def test_image_slices_offsets_include_empty_images() -> None:
    ds = make([1, 1, 3, 3, 3], [0, 0, 0, 0, 0], m=5)
    s = ds.image_slices()
    assert s.tolist() == [0, 0, 2, 2, 5, 5]
    assert make([], [], m=2).image_slices().tolist() == [0, 0, 0]


def test_replace_revalidates_and_leaves_the_original() -> None:
    ds = make([0, 1], [0, 1])
    other = ds.replace(schema=LabelSchema.from_names(["x", "y"]))
    assert other.schema.names == ("x", "y") and ds.schema.names == ("a", "b", "c")
    with pytest.raises(InvalidDatasetError, match=r"annotations\.label row 1"):
        ds.replace(schema=LabelSchema.from_names(["x"]))
    with pytest.raises(InvalidDatasetError, match=r"annotations\.image row 1"):
        ds.replace(images=ds.images.take(np.array([0])))


# -- select -----------------------------------------------------------------------------------------


def test_select_by_mask_and_by_index_keep_images() -> None:
    ds = make([0, 0, 1, 2, 2], [0, 1, 2, 0, 1], score=np.arange(5) / 10)
    by_mask = ds.select(ds.annotations.label == 0)
    by_index = ds.select([0, 3])
    for s in (by_mask, by_index):
        assert s.n_images == 3 and s.annotations.label.tolist() == [0, 0]
        assert s.annotations.score is not None and s.annotations.score.tolist() == [0.0, 0.3]
    # unsorted and negative indexes select the same rows, in table order
    assert ds.select(np.array([3, 0])).annotations.score.tolist() == [0.0, 0.3]  # type: ignore[union-attr]
    assert ds.select([-1]).annotations.score.tolist() == [0.4]  # type: ignore[union-attr]
    assert ds.select([]).n_annotations == 0 and ds.select(np.zeros(5, bool)).n_images == 3


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        pytest.param(np.ones(4, bool), r"select: a boolean mask must have shape \(5,\), got \(4,\)", id="mask-len"),
        pytest.param([0, 5], r"select: row indexes must be in 0\.\.4, got 0\.\.5", id="too-big"),
        pytest.param([-6], r"select: row indexes must be in 0\.\.4", id="too-negative"),
        pytest.param([0.0, 1.0], r"select: rows must be a boolean mask or integers, got dtype float64", id="floats"),
        pytest.param(np.array([[0, 1]]), r"select: rows must be 1-D", id="2d"),
    ],
)
def test_select_refuses_bad_rows(rows: object, match: str) -> None:
    with pytest.raises(InvalidDatasetError, match=match):
        make([0, 0, 1, 2, 2], [0, 1, 2, 0, 1]).select(rows)  # type: ignore[arg-type]


def test_select_images_reorders_and_reindexes() -> None:
    ds = make([0, 0, 1, 2, 2, 2], [0, 1, 2, 0, 1, 2], score=np.arange(6.0), m=4)
    out = ds.select_images([2, 0, 3])
    assert out.images.path.tolist() == ["img2.png", "img0.png", "img3.png"]
    assert out.annotations.image.tolist() == [0, 0, 0, 1, 1]
    assert out.annotations.score.tolist() == [3.0, 4.0, 5.0, 0.0, 1.0]  # type: ignore[union-attr]
    mask = np.array([False, True, False, True])
    by_mask = ds.select_images(mask)
    assert by_mask.images.path.tolist() == ["img1.png", "img3.png"]
    assert by_mask.annotations.image.tolist() == [0] and by_mask.annotations.label.tolist() == [2]


def test_select_images_empty_selection() -> None:
    ds = make([0, 1], [0, 1])
    for rows in ([], np.zeros(2, bool)):
        out = ds.select_images(rows)
        assert out.n_images == 0 and out.n_annotations == 0 and out.schema == ds.schema
    with pytest.raises(InvalidDatasetError, match=r"select_images: row indexes must be in 0\.\.1"):
        ds.select_images([2])


def test_select_images_repeated_rows_repeat_their_annotations() -> None:
    # bootstrap resampling: each copy of an image carries its annotations
    ds = make([0, 0, 1], [0, 1, 2])
    out = ds.select_images([0, 1, 0])
    assert out.annotations.image.tolist() == [0, 0, 1, 2, 2]
    assert out.annotations.label.tolist() == [0, 1, 2, 0, 1]


def test_select_images_keeps_every_column(shapes_ds: Dataset) -> None:
    idx = np.array([5, 3, 11])
    out = shapes_ds.select_images(idx)
    s = shapes_ds.image_slices()
    rows = np.concatenate([np.arange(s[i], s[i + 1]) for i in idx])
    a, b = shapes_ds.annotations, out.annotations
    assert out.images.extra["sequence"].tolist() == shapes_ds.images.extra["sequence"][idx].tolist()
    np.testing.assert_array_equal(b.box, a.box[rows])  # type: ignore[index]
    np.testing.assert_array_equal(b.keypoints, a.keypoints[rows])  # type: ignore[index]
    assert b.mask.tolist() == a.mask[rows].tolist()  # type: ignore[union-attr,index]
    assert b.attributes["colour"].tolist() == a.attributes["colour"][rows].tolist()
    assert b.iscrowd.tolist() == a.iscrowd[rows].tolist()  # type: ignore[union-attr,index]


# -- property tests ---------------------------------------------------------------------------------


@st.composite
def datasets(draw: st.DrawFn, prefix: str = "img") -> Dataset:
    m = draw(st.integers(0, 8))
    counts = draw(st.lists(st.integers(0, 4), min_size=m, max_size=m))
    image = np.repeat(np.arange(m), counts)
    n = len(image)
    labels = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    score = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    return make(image.tolist(), labels, m=m, prefix=prefix, score=np.asarray(score, float).reshape(n))


@settings(max_examples=60, deadline=None)
@given(datasets())
def test_select_images_of_all_rows_is_the_original(ds: Dataset) -> None:
    same = ds.select_images(np.arange(ds.n_images))
    assert_datasets_equal(ds, same, fields=("path", "size", "label", "box", "score"))
    np.testing.assert_array_equal(same.annotations.image, ds.annotations.image)
    same_mask = ds.select_images(np.ones(ds.n_images, bool))
    np.testing.assert_array_equal(same_mask.annotations.score, ds.annotations.score)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(datasets(), st.randoms(use_true_random=False))
def test_select_images_permutation_keeps_row_order_within_each_image(ds: Dataset, rnd: object) -> None:
    perm = np.arange(ds.n_images)
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    out = ds.select_images(perm)
    s, t = ds.image_slices(), out.image_slices()
    for new, old in enumerate(perm.tolist()):
        np.testing.assert_array_equal(out.annotations.score[t[new] : t[new + 1]],  # type: ignore[index]
                                      ds.annotations.score[s[old] : s[old + 1]])  # type: ignore[index]


@settings(max_examples=60, deadline=None)
@given(datasets(prefix="a"), datasets(prefix="b"))
def test_concat_then_select_images_gives_back_each_part(x: Dataset, y: Dataset) -> None:
    both = x.concat(y)
    assert both.n_images == x.n_images + y.n_images
    left = both.select_images(np.arange(x.n_images))
    right = both.select_images(np.arange(x.n_images, both.n_images))
    assert_datasets_equal(x, left, fields=("path", "size", "label", "box", "score"))
    assert_datasets_equal(y, right, fields=("path", "size", "label", "box", "score"))


# -- concat -----------------------------------------------------------------------------------------


def test_concat_merges_schemas_by_name_and_remaps_labels() -> None:
    x = make([0, 1], [0, 1], names=("cat", "dog"))
    y = Dataset(
        schema=LabelSchema(classes=(ClassDef("bird"), ClassDef("cat"), ClassDef("dog")),
                           tasks=(Task.CLASSIFICATION,), attributes=(AttributeDef("occluded", type="bool"),)),
        images=Images(path=["b0.png", "b1.png"], width=[5, 5], height=[5, 5]),
        annotations=Annotations(image=[0, 0, 1], label=[0, 1, 2], attributes={"occluded": [True, None, False]}),
    )
    c = x.concat(y)
    assert c.schema.names == ("cat", "dog", "bird")
    names = np.asarray(c.schema.names, dtype=object)[c.annotations.label].tolist()
    assert names == ["cat", "dog", "bird", "cat", "dog"]
    assert c.annotations.image.tolist() == [0, 1, 2, 2, 3]
    assert [a.name for a in c.schema.attributes] == ["occluded"]
    assert c.schema.tasks == (Task.DETECTION, Task.CLASSIFICATION)
    assert c.annotations.attributes["occluded"].tolist() == [None, None, True, None, False]


def test_concat_with_identical_class_names_keeps_the_others_attribute_definitions() -> None:
    x = make([0], [0])
    y = make([0], [1]).replace(schema=LabelSchema(classes=x.schema.classes, attributes=(AttributeDef("truncated"),)))
    c = x.concat(y)
    assert c.schema.names == x.schema.names
    assert [a.name for a in c.schema.attributes] == ["truncated"]


def test_concat_fills_columns_present_on_one_side() -> None:
    x = make([0, 0], [0, 1], score=[0.9, 0.8], annotator=["u1", "u2"], attributes={"colour": ["r", "g"]},
             extra={"ann_id": np.array([7, 8])})
    x = x.replace(images=Images(path=x.images.path, width=x.images.width, height=x.images.height,
                                split=["train"], extra={"coco_id": np.array([42])}))
    y = make([0], [2], box=[[np.nan] * 4], mask=[{"size": [2, 2], "counts": b"04"}], iscrowd=[True], prefix="y")
    c = x.concat(y)
    a = c.annotations
    assert a.score is not None and a.score[:2].tolist() == [0.9, 0.8] and np.isnan(a.score[2])
    assert a.annotator is not None and a.annotator.tolist() == ["u1", "u2", None]
    assert a.attributes["colour"].tolist() == ["r", "g", None]
    assert a.extra["ann_id"].tolist() == [7, 8, -1]
    assert a.mask is not None and a.mask.tolist() == [None, None, {"size": [2, 2], "counts": b"04"}]
    assert a.iscrowd is not None and a.iscrowd.tolist() == [False, False, True]
    assert not a.has_box[2] and a.has_box[:2].all()
    assert c.images.extra["coco_id"].tolist() == [42, -1]
    assert c.images.split is not None and c.images.split.tolist() == ["train", ""]


def test_concat_pads_keypoints_of_different_k() -> None:
    x = make([0], [0], keypoints=np.ones((1, 2, 3)))
    y = make([0, 0], [1, 1], keypoints=np.full((2, 4, 3), 2.0), prefix="y")
    z = make([0], [2], prefix="z")
    c = x.concat(y).concat(z)
    kp = c.annotations.keypoints
    assert kp is not None and kp.shape == (4, 4, 3)
    np.testing.assert_array_equal(kp[0, :2], np.ones((2, 3)))
    assert np.isnan(kp[0, 2:]).all()
    np.testing.assert_array_equal(kp[1:3], np.full((2, 4, 3), 2.0))
    assert np.isnan(kp[3]).all()


def test_concat_of_multidimensional_extra_on_one_side() -> None:
    x = make([0], [0])
    x = x.replace(images=Images(path=x.images.path, width=x.images.width, height=x.images.height,
                                extra={"gps": np.array([[1.5, 2.5]]), "tile": np.array([[3, 4]])}))
    c = x.concat(make([0], [0], prefix="y"))
    assert c.images.extra["gps"].shape == (2, 2) and np.isnan(c.images.extra["gps"][1]).all()
    assert c.images.extra["tile"].tolist() == [[3, 4], [-1, -1]]


def test_concat_rebases_paths_when_roots_differ(tmp_path: Path) -> None:
    x = make([0], [0], root=tmp_path / "a")
    y = make([0], [0], prefix="y", root=tmp_path / "b" / "c")
    c = x.concat(y)
    assert c.root == tmp_path / "a"
    assert c.images.path.tolist() == ["img0.png", "../b/c/y0.png"]
    assert (c.root / c.images.path[1]).resolve() == (tmp_path / "b" / "c" / "y0.png").resolve()
    same = x.concat(make([0], [0], prefix="y", root=tmp_path / "a" / "." ))
    assert same.images.path.tolist() == ["img0.png", "y0.png"]
    # unknown root on one side: paths are kept, the known root is used
    assert make([0], [0]).concat(y).root == tmp_path / "b" / "c"
    assert x.concat(make([0], [0], prefix="y")).images.path.tolist() == ["img0.png", "y0.png"]


def test_concat_of_shapes_with_itself(shapes_ds: Dataset) -> None:
    c = shapes_ds.concat(shapes_ds)
    assert c.n_images == 2 * shapes_ds.n_images and c.n_annotations == 2 * shapes_ds.n_annotations
    assert c.schema == shapes_ds.schema
    back = c.select_images(np.arange(shapes_ds.n_images, c.n_images))
    assert_datasets_equal(shapes_ds, back, fields=ALL_FIELDS, attributes=("colour", "occluded"))


# -- by_split ---------------------------------------------------------------------------------------


def test_by_split_partitions_images_in_order_of_appearance() -> None:
    ds = make([0, 1, 1, 2, 3], [0, 1, 2, 0, 1], m=5)
    ds = ds.replace(images=Images(path=ds.images.path, width=ds.images.width, height=ds.images.height,
                                  split=["val", "train", "val", "", "train"]))
    parts = ds.by_split()
    assert list(parts) == ["val", "train", ""]
    assert parts["val"].images.path.tolist() == ["img0.png", "img2.png"]
    assert parts["train"].annotations.label.tolist() == [1, 2]
    assert parts["val"].annotations.label.tolist() == [0, 0]
    assert parts[""].n_images == 1 and parts[""].n_annotations == 1
    assert sum(p.n_annotations for p in parts.values()) == ds.n_annotations


def test_methods_do_not_mutate_the_dataset(shapes_ds: Dataset) -> None:
    before = shapes_ds.annotations.label.copy(), shapes_ds.images.path.copy()
    shapes_ds.select(shapes_ds.annotations.label == 0)
    shapes_ds.select_images([3, 1])
    shapes_ds.concat(shapes_ds)
    shapes_ds.split({"a": 0.5, "b": 0.5}, rng=1)
    np.testing.assert_array_equal(shapes_ds.annotations.label, before[0])
    np.testing.assert_array_equal(shapes_ds.images.path, before[1])
