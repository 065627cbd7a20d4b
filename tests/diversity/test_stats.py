from __future__ import annotations

import json

import numpy as np
import pytest

from maslow.core import Annotations, Dataset, Images, LabelSchema, masks
from maslow.diversity import dataset_stats
from maslow.sample import shapes


def _tiny() -> Dataset:
    schema = LabelSchema.from_names(["cat", "dog"])
    images = Images(path=["a.jpg", "b.jpg", "c.jpg"], width=[100, 200, 300], height=[100, 200, 300],
                    split=["train", "train", "val"])
    boxes = [[0, 0, 10, 10], [0, 0, 40, 40], [0, 0, 100, 100], [np.nan] * 4]
    ann = Annotations(image=[0, 0, 2, 2], label=[0, 1, 1, 0], box=boxes)
    return Dataset(schema, images, ann)


def test_counts_per_class_split_and_size() -> None:
    s = dataset_stats(_tiny())
    assert s.n_images == 3 and s.n_annotations == 4
    assert s.annotations_per_class.tolist() == [2, 2]
    assert s.images_per_class.tolist() == [2, 2]
    assert s.splits == ("train", "val")
    assert s.images_per_split.tolist() == [2, 1]
    assert s.annotations_per_class_split.tolist() == [[1, 1], [1, 1]]
    # 10x10 small, 40x40 medium, 100x100 large; the tag has no box
    assert s.size_per_class.tolist() == [[1, 0, 0], [0, 1, 1]]
    assert s.label_types["box"] == 3 and s.label_types["tag"] == 1
    assert s.n_empty_images == 1
    assert s.per_image_max == 2 and s.per_image_median == 2.0


def test_per_image_histogram_sums_to_images() -> None:
    ds = shapes(30, seed=3)
    s = dataset_stats(ds)
    assert int(s.per_image_hist.sum()) == ds.n_images
    per_image = np.bincount(ds.annotations.image, minlength=ds.n_images)
    assert s.per_image_hist[0] == int((per_image == 0).sum())
    assert np.isclose(s.per_image_mean, per_image.mean())


def test_matches_independent_count_on_sample() -> None:
    ds = shapes(40, seed=5)
    s = dataset_stats(ds)
    names = np.asarray(ds.schema.names)[ds.annotations.label]
    for k, name in enumerate(ds.schema.names):
        assert s.annotations_per_class[k] == int((names == name).sum())
    assert s.label_types["crowd"] == int(ds.annotations.iscrowd.sum())
    colours = [c for c in ds.annotations.attributes["colour"] if c is not None]
    assert sum(s.attributes["colour"].values()) == len(colours)


def test_to_dict_is_json_safe() -> None:
    d = dataset_stats(shapes(10, seed=1)).to_dict()
    back = json.loads(json.dumps(d))
    assert back["n_images"] == 10
    assert sum(c["annotations"] for c in back["classes"]) == back["n_annotations"]


def test_empty_dataset() -> None:
    ds = Dataset(LabelSchema.from_names(["a"]), Images.empty(), Annotations.empty())
    s = dataset_stats(ds)
    assert s.n_images == 0 and s.annotations_per_class.tolist() == [0]
    assert np.isnan(s.per_image_mean)


def test_semantic_classes_get_pixel_counts() -> None:
    """Label maps give one annotation per class and image: the per-class table was all ones per image."""
    road = np.zeros((3, 4), bool)
    road[1:] = True
    schema = LabelSchema.from_names(["sky", "road"], task="semantic_segmentation")
    images = Images(path=["a.png", "b.png"], width=[4, 4], height=[3, 3], split=["train", "val"])
    ann = Annotations(image=[0, 0, 1], label=[0, 1, 1],
                      mask=[masks.encode(~road), masks.encode(road), masks.encode(np.ones((3, 4), bool))])
    s = dataset_stats(Dataset(schema, images, ann))
    assert s.annotations_per_class.tolist() == [1, 2] and s.semantic.tolist() == [True, True]
    assert s.pixels_per_class.tolist() == [4, 20] and s.pixels_per_class_split.tolist() == [[4, 0], [8, 12]]
    assert s.pixel_share.tolist() == pytest.approx([4 / 24, 20 / 24])
    c = s.to_dict()["classes"]
    assert [x["pixels"] for x in c] == [4, 20] and c[1]["pixels_per_split"] == {"train": 8, "val": 12}


def test_object_classes_have_no_pixels() -> None:
    s = dataset_stats(shapes(6, seed=2))
    assert not s.semantic.any() and np.isnan(s.pixels_per_class).all() and np.isnan(s.pixel_share).all()
    assert all(c["pixels"] is None and c["pixels_per_split"] is None for c in s.to_dict()["classes"])
