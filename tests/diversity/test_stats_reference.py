"""dataset_stats against counts written out by hand (plain loops, collections.Counter, statistics) on random
datasets: classes with no objects, empty images, tags, NaN scores and attributes, and histogram/size-bucket
boundaries."""

from __future__ import annotations

import math
import statistics
from collections import Counter

import numpy as np
import pytest

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.core.tables import SOURCES
from maslow.diversity import dataset_stats
from maslow.sample import shapes

# per-image counts that sit on every histogram boundary (0, 1, 2, 5, 10, 20, 50, 100) and just past it
_BOUNDARY_COUNTS = [0, 1, 2, 3, 5, 6, 10, 11, 20, 21, 50, 51, 100, 101]


def _random_dataset(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 7))
    names = [f"c{j}" for j in range(k)]
    m = int(rng.integers(len(_BOUNDARY_COUNTS), 40))
    counts = np.concatenate([_BOUNDARY_COUNTS, rng.integers(0, 8, m - len(_BOUNDARY_COUNTS))])
    rng.shuffle(counts)
    image = np.repeat(np.arange(m), counts)
    n = len(image)
    used = rng.choice(k, size=max(1, k - 1), replace=False)  # at least one class (when k > 1) has no object
    label = rng.choice(used, n)
    side = rng.choice([0.0, 1.0, 31.9, 32.0, 32.1, 95.9, 96.0, 96.1, 200.0], (n, 2))
    x1y1 = rng.uniform(0, 50, (n, 2))
    box = np.hstack([x1y1, x1y1 + side])
    box[rng.random(n) < 0.15] = np.nan  # tags
    score = rng.random(n)
    score[rng.random(n) < 0.3] = np.nan
    kp = rng.uniform(0, 50, (n, 3, 3))
    kp[:, :, 2] = rng.choice([0.0, 1.0, 2.0, np.nan], (n, 3))
    colour = np.empty(n, dtype=object)
    colour[:] = [rng.choice(["red", "blue", None, np.nan, "7", True]) for _ in range(n)]
    flag = np.empty(n, dtype=object)
    flag[:] = [rng.choice([True, False, None]) for _ in range(n)]
    split = rng.choice(["train", "val", "", "test"], m)
    return Dataset(
        LabelSchema.from_names(names),
        Images(path=[f"{i}.jpg" for i in range(m)], width=[640] * m, height=[480] * m, split=split),
        Annotations(image=image, label=label, box=box, score=score, keypoints=kp, iscrowd=rng.random(n) < 0.1,
                    attributes={"colour": colour, "flag": flag}, source=rng.choice(SOURCES, n)),
    )


def _unset(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _bin(c: int) -> str:
    for lo, hi in ((0, 0), (1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100)):
        if lo <= c <= hi:
            return str(hi) if lo == hi else f"{lo}-{hi}"
    return ">100"


def _bucket(w: float, h: float) -> str:
    area = w * h
    return "small" if area < 32 * 32 else "medium" if area < 96 * 96 else "large"


@pytest.mark.parametrize("seed", range(8))
def test_every_count_matches_a_direct_computation(seed: int) -> None:
    ds = _random_dataset(seed)
    s = dataset_stats(ds)
    a, im = ds.annotations, ds.images
    rows = list(zip(a.image.tolist(), a.label.tolist(), strict=True))
    k, m = len(ds.schema.names), ds.n_images

    assert (s.n_images, s.n_annotations) == (m, len(a))
    per_class = Counter(lab for _, lab in rows)
    assert s.annotations_per_class.tolist() == [per_class[c] for c in range(k)]
    assert s.images_per_class.tolist() == [len({i for i, lab in rows if lab == c}) for c in range(k)]

    splits = sorted({str(x) for x in im.split})
    assert s.splits == tuple(splits)
    assert s.images_per_split.tolist() == [sum(str(x) == sp for x in im.split) for sp in splits]
    by_split = Counter((lab, str(im.split[i])) for i, lab in rows)
    assert s.annotations_per_class_split.tolist() == [[by_split[c, sp] for sp in splits] for c in range(k)]

    per_image = Counter(i for i, _ in rows)
    counts = [per_image[i] for i in range(m)]
    hist = Counter(_bin(c) for c in counts)
    assert dict(zip(s.per_image_bins, s.per_image_hist.tolist(), strict=True)) == {b: hist[b] for b in s.per_image_bins}
    assert s.per_image_mean == pytest.approx(statistics.fmean(counts))
    assert s.per_image_median == statistics.median(counts)
    assert s.per_image_max == max(counts)
    assert s.n_empty_images == counts.count(0)

    size = Counter()
    for r, (_, lab) in enumerate(rows):
        x1, y1, x2, y2 = a.box[r].tolist()
        if not math.isnan(x1):
            size[lab, _bucket(x2 - x1, y2 - y1)] += 1
    assert s.size_per_class.tolist() == [[size[c, b] for b in ("small", "medium", "large")] for c in range(k)]

    boxed = [not math.isnan(b[0]) for b in a.box.tolist()]
    assert s.label_types == {
        "box": sum(boxed),
        "polygon": 0,
        "mask": 0,
        "keypoints": sum(any(v[2] > 0 for v in kp) for kp in a.keypoints.tolist()),  # NaN > 0 is False
        "crowd": int(sum(a.iscrowd.tolist())),
        "scored": sum(not math.isnan(x) for x in a.score.tolist()),
        "tag": boxed.count(False),
    }
    for name, col in a.attributes.items():
        assert s.attributes[name] == dict(Counter(str(v) for v in col.tolist() if not _unset(v)))
    assert s.sources == dict(Counter(a.source.tolist()))


def test_label_types_with_polygons_and_masks_match_a_direct_count() -> None:
    ds = shapes(30, seed=4)
    a = ds.annotations
    s = dataset_stats(ds)
    poly = [row is not None and len(row) > 0 for row in a.polygon.tolist()]
    mask = [m is not None for m in a.mask.tolist()]
    boxed = [not math.isnan(b[0]) for b in a.box.tolist()]
    assert s.label_types["polygon"] == sum(poly)
    assert s.label_types["mask"] == sum(mask)
    assert s.label_types["tag"] == sum(not (b or p or q) for b, p, q in zip(boxed, poly, mask, strict=True))


def test_nan_attribute_values_are_unset_not_a_value_called_nan() -> None:
    # NaN is how tables (pandas, parquet, CSV readers) say "not set"; bias and the writers skip it too
    col = np.empty(4, dtype=object)
    col[:] = ["red", float("nan"), None, "red"]
    ds = Dataset(LabelSchema.from_names(["a"]), Images(path=["x.jpg"], width=[10], height=[10]),
                 Annotations(image=[0] * 4, label=[0] * 4, attributes={"colour": col}))
    assert dataset_stats(ds).attributes == {"colour": {"red": 2}}


def test_an_empty_dataset() -> None:
    ds = Dataset(LabelSchema.from_names(["a", "b"]), Images.empty(), Annotations.empty())
    s = dataset_stats(ds)
    assert math.isnan(s.per_image_mean) and math.isnan(s.per_image_median) and s.per_image_max == 0
    assert s.per_image_hist.tolist() == [0] * len(s.per_image_bins) and s.size_per_class.shape == (2, 3)
    assert [c["annotations"] for c in s.to_dict()["classes"]] == [0, 0]


def test_images_without_annotations_and_classes_without_objects() -> None:
    ds = Dataset(LabelSchema.from_names(["a", "b", "c"]),
                 Images(path=["0.jpg", "1.jpg", "2.jpg"], width=[10] * 3, height=[10] * 3),
                 Annotations(image=[1, 1], label=[2, 2], box=[[0, 0, 1, 1], [0, 0, 2, 2]]))
    s = dataset_stats(ds)
    assert s.annotations_per_class.tolist() == [0, 0, 2] and s.images_per_class.tolist() == [0, 0, 1]
    assert s.n_empty_images == 2 and s.per_image_median == 0.0 and s.per_image_mean == pytest.approx(2 / 3)
    assert s.size_per_class.tolist() == [[0, 0, 0], [0, 0, 0], [2, 0, 0]]
