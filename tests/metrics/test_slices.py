"""Slice metrics: the default mAP equals coco_map on every slice and bootstrap draw; weak slices stand out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.metrics import coco_map, slice_metrics
from maslow.sample import shapes
from tests.metrics.cocodata import datasets, random_case, random_keypoint_case, random_segm_case
from tests.metrics.simulated import simulate


def _with_column(ds: Dataset, name: str, values: Sequence[object]) -> Dataset:
    im = ds.images
    return ds.replace(images=Images(path=im.path, width=im.width, height=im.height, split=im.split,
                                    extra={**im.extra, name: obj_array(values)}))


@pytest.mark.parametrize(("case", "iou_type"), [
    pytest.param(lambda: (shapes(40, seed=1), simulate(shapes(40, seed=1), seed=1, score_decimals=1)), "bbox",
                 id="shapes-score-ties-crowds"),
    pytest.param(lambda: datasets(*random_case(3, n_images=20)), "bbox", id="coco-ids-unsorted-id-zero"),
    pytest.param(lambda: datasets(*random_segm_case(4, n_images=12)), "segm", id="segm"),
    pytest.param(lambda: datasets(*random_keypoint_case(5, n_images=14)), "keypoints", id="keypoints-maxdets-20"),
])
def test_default_metric_equals_coco_map_on_every_draw(case: object, iou_type: str) -> None:
    truth, pred = case()  # type: ignore[operator]
    col = [("a", "b", "c")[i % 3] for i in range(truth.n_images)]
    truth = _with_column(truth, "site", col)
    pred = pred.replace(images=truth.images)

    def slow_map(t: Dataset, p: Dataset) -> float:
        return coco_map(t, p, iou_type=iou_type).map_50_95

    fast = slice_metrics(truth, pred, by="site", n_boot=15, rng=7, iou_type=iou_type)
    slow = slice_metrics(truth, pred, by="site", metric=slow_map, n_boot=15, rng=7)
    assert fast.metric == "map_50_95" and slow.metric == "slow_map"
    np.testing.assert_array_equal(fast.samples, slow.samples)  # bit for bit, draws included
    np.testing.assert_array_equal(fast.value, slow.value)
    assert fast.overall == slow.overall == slow_map(truth, pred)
    for s, v in enumerate(fast.values):
        idx = np.flatnonzero(np.asarray(col, dtype=object) == v)
        assert fast.value[s] == slow_map(truth.select_images(idx), pred.select_images(idx))
        assert fast.n_images[s] == len(idx)


def test_a_weak_slice_is_flagged_below() -> None:
    truth = shapes(60, seed=4)
    good = simulate(truth, seed=4, p_miss=0.05, jitter=0.03, fp_per_image=0.2)
    bad = simulate(truth, seed=5, p_miss=0.5, jitter=0.2, fp_per_image=2.0)
    site = ["north" if i % 3 else "south" for i in range(truth.n_images)]
    truth = _with_column(truth, "site", site)
    south = np.asarray(site, dtype=object) == "south"
    # south images get the bad detector
    g = good.annotations.take(np.flatnonzero(~south[good.annotations.image]))
    b = bad.annotations.take(np.flatnonzero(south[bad.annotations.image]))
    ann = Annotations.sort_rows(image=np.r_[g.image, b.image], label=np.r_[g.label, b.label],
                                box=np.r_[g.box, b.box], score=np.r_[g.score, b.score])
    pred = truth.replace(annotations=ann)
    assert 0 < (south[ann.image]).sum() < len(ann)
    res = slice_metrics(truth, pred, by="site", n_boot=200, rng=0)
    by = dict(zip(res.values, range(len(res.values)), strict=True))
    assert res.values == ("north", "south")
    assert res.below[by["south"]] and not res.below[by["north"]]
    assert res.above[by["north"]]
    assert (res.lower <= res.value).all() and (res.value <= res.upper).all()


def test_draws_are_seeded_and_intervals_narrow_with_more_images() -> None:
    truth = shapes(80, seed=2)
    pred = simulate(truth, seed=2)
    a = slice_metrics(truth, pred, by="split", n_boot=50, rng=3)
    calls: list[tuple[int, int]] = []
    b = slice_metrics(truth, pred, by="split", n_boot=50, rng=np.random.default_rng(3),
                      progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(a.samples, b.samples)  # progress changes nothing
    assert calls == [(k, 4) for k in range(5)]  # two slices: values and bootstrap, then random subsets
    assert a.values == ("train", "val")
    width = a.upper - a.lower
    assert a.n_images[0] > a.n_images[1] and width[0] < width[1]  # the larger slice is pinned down better


def test_custom_metric_missing_values_and_no_bootstrap() -> None:
    truth = shapes(12, seed=0)
    pred = simulate(truth, seed=0)
    cam = [None if i % 4 == 0 else float("nan") if i % 4 == 1 else f"cam{i % 2}" for i in range(12)]
    truth = _with_column(truth, "camera", cam)

    def n_images(t: Dataset, p: Dataset) -> float:
        return float(t.n_images)

    res = slice_metrics(truth, pred.replace(images=truth.images), by="camera", metric=n_images, n_boot=0)
    assert res.values == ("cam0", "cam1", None)  # None and NaN are one "missing" slice, last
    assert res.value.tolist() == [3.0, 3.0, 6.0] and res.overall == 12.0
    assert np.isnan(res.lower).all() and not res.below.any() and res.samples.shape == (3, 0)


def test_numeric_column_and_result_forms() -> None:
    truth = shapes(16, seed=3)
    pred = simulate(truth, seed=3)
    res = slice_metrics(truth, pred, by="frame", n_boot=10, rng=0)
    assert res.values == (0, 1, 2, 3)  # sorted numerically
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["by"] == "frame" and [s["value"] for s in d["slices"]] == [0, 1, 2, 3]
    df = res.to_pandas()
    assert list(df["frame"]) == [0, 1, 2, 3] and list(df.columns)[2] == "map_50_95"
    with pytest.raises(ValueError, match="read-only"):
        res.value[0] = 1.0


def test_no_predictions_score_zero_everywhere() -> None:
    truth = shapes(12, seed=0)
    none = truth.select(np.zeros(truth.n_annotations, bool))
    none = none.replace(annotations=none.annotations.with_columns(score=np.zeros(0)))
    res = slice_metrics(truth, none, by="split", n_boot=5, rng=0)
    assert res.overall == coco_map(truth, none).map_50_95 == 0.0
    assert res.value.tolist() == [0.0, 0.0]
    # a bootstrap draw of only empty images has no truth to score (nan); every other draw scores 0
    assert ((res.samples == 0.0) | np.isnan(res.samples)).all() and (res.samples == 0.0).sum() >= 5


def test_bad_column_and_options_are_refused() -> None:
    truth = shapes(6, seed=0)
    pred = simulate(truth)
    with pytest.raises(InvalidDatasetError, match=r"by must be an image column \(split, width, height, frame, "
                                                  r"sequence\), got 'site'"):
        slice_metrics(truth, pred, by="site")
    with pytest.raises(ValueError, match="ci must be in"):
        slice_metrics(truth, pred, by="split", ci=1.0)
    with pytest.raises(ValueError, match="n_boot must be"):
        slice_metrics(truth, pred, by="split", n_boot=-1)


# -- the draws themselves: recorded by a custom metric, checked against the documented procedure -----------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_draws_resample_within_each_slice_and_bounds_are_their_percentiles(seed: int) -> None:
    truth, pred = datasets(*random_case(seed, n_images=15, max_dt=8))
    site = [("north", "south", None)[int(v)] for v in np.random.default_rng(seed).integers(0, 3, truth.n_images)]
    truth = _with_column(truth, "site", site)
    pred = pred.replace(images=truth.images)
    paths = truth.images.path.tolist()
    calls: list[tuple[list[str], float]] = []

    def recorded(t: Dataset, p: Dataset) -> float:
        value = coco_map(t, p).map_50_95
        calls.append((t.images.path.tolist(), value))
        return value

    n_boot = 8
    rec = slice_metrics(truth, pred, by="site", metric=recorded, n_boot=n_boot, rng=seed)
    res = slice_metrics(truth, pred, by="site", n_boot=n_boot, rng=seed)
    assert calls[0] == (paths, res.overall)
    np.testing.assert_array_equal(res.samples, rec.samples)  # the fast default = coco_map on each recorded draw
    repeated = 0
    for s, v in enumerate(res.values):
        members = [p for p, c in zip(paths, site, strict=True) if c == v]
        first = 1 + s * (n_boot + 1)
        assert calls[first] == (members, res.value[s]) and res.n_images[s] == len(members)
        for b, (drawn, value) in enumerate(calls[first + 1:first + 1 + n_boot]):
            # as many images as the slice, all from it, copies side by side (sorted by row)
            assert len(drawn) == len(members) and set(drawn) <= set(members)
            assert drawn == sorted(drawn, key=paths.index)
            repeated += len(set(drawn)) < len(drawn)
            assert res.samples[s, b] == value or (np.isnan(value) and np.isnan(res.samples[s, b]))
        ok = res.samples[s][~np.isnan(res.samples[s])]
        want = np.quantile(ok, [(1 - 0.95) / 2, 1 - (1 - 0.95) / 2]) if len(ok) else [np.nan, np.nan]
        np.testing.assert_array_equal([res.lower[s], res.upper[s]], want)
    # then, slice by slice, n_boot random subsets of the slice's size from all images (no copies), sorted by row
    null = calls[1 + len(res.values) * (n_boot + 1):]
    assert len(null) == len(res.values) * n_boot and repeated > 0
    for s in range(len(res.values)):
        for b, (drawn, value) in enumerate(null[s * n_boot:(s + 1) * n_boot]):
            assert len(drawn) == len(set(drawn)) == res.n_images[s] and drawn == sorted(drawn, key=paths.index)
            assert res.null_samples[s, b] == value or (np.isnan(value) and np.isnan(res.null_samples[s, b]))
        ok = res.null_samples[s][~np.isnan(res.null_samples[s])]
        want = np.quantile(ok, [(1 - 0.95) / 2, 1 - (1 - 0.95) / 2]) if len(ok) else [np.nan, np.nan]
        np.testing.assert_array_equal([res.null_lower[s], res.null_upper[s]], want)
        assert res.below[s] == (res.value[s] < res.null_lower[s]) and res.above[s] == (res.value[s] > res.null_upper[s])
    np.testing.assert_array_equal(res.null_samples, rec.null_samples)
    again = slice_metrics(truth, pred, by="site", n_boot=n_boot, rng=seed)
    other = slice_metrics(truth, pred, by="site", n_boot=n_boot, rng=seed + 100)
    np.testing.assert_array_equal(again.samples, res.samples)
    assert not np.array_equal(other.samples, res.samples, equal_nan=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_intervals_hold_the_slice_value_in_typical_cases(seed: int) -> None:
    truth = shapes(60, seed=seed)
    truth = _with_column(truth, "camera", [f"cam{i % 3}" for i in range(truth.n_images)])
    res = slice_metrics(truth, simulate(truth, seed=seed), by="camera", n_boot=200, rng=seed)
    assert res.n_images.tolist() == [20, 20, 20]
    assert ((res.lower <= res.value) & (res.value <= res.upper) & (res.lower < res.upper)).all()
    assert ((res.null_lower <= res.value) | res.below).all() and ((res.value <= res.null_upper) | res.above).all()
    assert ((res.null_lower < res.overall) & (res.overall < res.null_upper)).all()


def test_a_slice_without_truth_objects_is_nan_and_never_flagged() -> None:
    truth = shapes(28, seed=0)
    pred = simulate(truth, seed=0)
    empty = np.bincount(truth.annotations.image, minlength=truth.n_images) == 0
    truth = _with_column(truth, "kind", ["empty" if e else "objects" for e in empty])
    assert empty.sum() > 0 and np.isin(pred.annotations.image, np.flatnonzero(empty)).any()  # false alarms there
    res = slice_metrics(truth, pred.replace(images=truth.images), by="kind", n_boot=20, rng=0)
    assert res.values == ("empty", "objects") and res.n_images.tolist() == [empty.sum(), (~empty).sum()]
    assert np.isnan(res.value[0]) and np.isnan(res.samples[0]).all() and np.isnan([res.lower[0], res.upper[0]]).all()
    assert not res.below[0] and not res.above[0]
    assert res.to_dict()["slices"][0]["metric"] is None
    assert res.value[1] == coco_map(truth.select_images(np.flatnonzero(~empty)),
                                    pred.select_images(np.flatnonzero(~empty))).map_50_95


def test_cli_slice_by_equals_the_api(tmp_path: Path) -> None:
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions
    from tests.helpers import run_cli

    gt, res = random_case(5, n_images=18, max_dt=8)
    for i, im in enumerate(gt["images"]):
        im["site"] = ("north", "south", None)[i % 3]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    code, text = run_cli(["eval", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "res.json"),
                          "--slice-by", "site", "--n-boot", "30", "--seed", "4", "--json", str(tmp_path / "out.json")])
    assert code == 0, text
    assert "map_50_95 per site" in text
    truth = read_coco(tmp_path / "gt.json")
    api = slice_metrics(truth, read_coco_predictions(tmp_path / "res.json", like=truth), by="site", n_boot=30, rng=4)
    got = json.loads((tmp_path / "out.json").read_text())["slices"]
    assert got == json.loads(json.dumps(api.to_dict())) and got["n_boot"] == 30
    assert [s["value"] for s in got["slices"]] == ["north", "south", None] and api.n_images.tolist() == [6, 6, 6]


# -- the flags: a slice is compared with random images of its size, not with the whole dataset's value ------
def _random_cells(n_images: int, n_cells: int, seed: int) -> tuple[Dataset, Dataset]:
    truth = shapes(n_images, seed=seed)
    truth = _with_column(truth, "cell", [f"c{i % n_cells:02d}" for i in range(n_images)])
    return truth, simulate(truth, seed=seed).replace(images=truth.images)


def test_random_equal_slices_are_flagged_at_about_the_chance_rate() -> None:
    """50 slices of 10 images dealt from one dataset: mAP on 10 images is biased upward (COCO's interpolated
    precision gains on a small sample), so comparing a slice's bootstrap interval with the whole dataset's value
    flagged many slices "above" and none "below". Against random subsets of the same size, a slice is flagged
    with probability 2.5% each way at ci=0.95: 1.25 of 50 expected each way."""
    truth, pred = _random_cells(500, 50, seed=0)
    res = slice_metrics(truth, pred, by="cell", n_boot=100, rng=0)
    assert res.n_images.tolist() == [10] * 50
    assert np.nanmean(res.value) > res.overall + 0.02  # the small-sample bias is there
    assert (res.lower > res.overall).sum() >= 8  # what the old rule flagged "above"
    assert res.above.sum() <= 4 and res.below.sum() <= 4, (res.above.sum(), res.below.sum())
    # the null is centred on what 10 random images score, above the whole dataset's value
    assert np.median((res.null_lower + res.null_upper) / 2) > res.overall


def test_a_planted_weak_slice_among_random_slices_is_flagged_below() -> None:
    truth, pred = _random_cells(500, 50, seed=1)
    bad = simulate(truth, seed=9, p_miss=0.6, jitter=0.25, fp_per_image=3.0)
    weak = np.asarray(truth.images.extra["cell"]) == "c07"
    g = pred.annotations.take(np.flatnonzero(~weak[pred.annotations.image]))
    b = bad.annotations.take(np.flatnonzero(weak[bad.annotations.image]))
    pred = pred.replace(annotations=Annotations.sort_rows(
        image=np.r_[g.image, b.image], label=np.r_[g.label, b.label], box=np.r_[g.box, b.box],
        score=np.r_[g.score, b.score], source="model"))
    res = slice_metrics(truth, pred, by="cell", n_boot=100, rng=1)
    s = res.values.index("c07")
    assert res.below[s] and res.value[s] < res.null_lower[s]
    assert res.below.sum() + res.above.sum() <= 5


def test_a_size_biased_custom_metric_is_compared_at_the_slice_size() -> None:
    """The largest image width grows with the number of images: against the whole dataset every small slice
    lies below; against random subsets of its size, none does more often than chance."""
    truth = shapes(120, seed=2)
    rng = np.random.default_rng(2)
    truth = _with_column(truth, "cell", [f"c{v:02d}" for v in rng.permutation(np.arange(120) % 12)])
    truth = truth.replace(images=Images(path=truth.images.path, width=rng.integers(10, 10_000, 120),
                                        height=truth.images.height, split=truth.images.split,
                                        extra=truth.images.extra))

    def widest(t: Dataset, p: Dataset) -> float:
        return float(t.images.width.max())

    res = slice_metrics(truth, truth, by="cell", metric=widest, n_boot=100, rng=0)
    assert (res.upper < res.overall).sum() >= 10  # the old rule: almost all "below"
    assert res.below.sum() + res.above.sum() <= 2
