"""Model comparison: every bootstrap replicate equals coco_map on the resampled datasets (images drawn twice count
twice), bit for bit, with and without the compiled kernel; deltas, intervals, p_not_better and the pairing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.errors import InvalidDatasetError
from maslow.metrics.coco import coco_map
from maslow.metrics.compare import (
    Comparison,
    compare_models,
    plot_ap_deltas,
    render_comparison_html,
    write_comparison_html,
)
from maslow.sample import shapes
from tests.metrics.cocodata import datasets, random_case, random_keypoint_case, random_segm_case
from tests.metrics.simulated import simulate


def _other_model(results: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Another model's results on the same images: a fifth dropped, the scores redrawn (ties kept)."""
    rng = np.random.default_rng(seed)
    out = [copy.deepcopy(r) for r in results if rng.random() > 0.2]
    for r in out:
        r["score"] = float(np.round(rng.random(), 1 if rng.random() < 0.5 else 3))
    return out


def _case(kind: str) -> tuple[Dataset, Dataset, Dataset, str]:
    if kind == "shapes":  # crowds, score ties inside images (one decimal), a sample's own images
        truth = shapes(30, seed=3)
        return truth, simulate(truth, seed=3, score_decimals=1), simulate(truth, seed=4, score_decimals=2), "bbox"
    gt, res = {"bbox": lambda: random_case(11, n_images=16), "segm": lambda: random_segm_case(12, n_images=10),
               "keypoints": lambda: random_keypoint_case(13, n_images=12)}[kind]()
    truth, a = datasets(gt, res)
    _, b = datasets(gt, _other_model(res, 14))
    return truth, a, b, kind


def _draws(n_images: int, n: int, seed: int) -> list[np.ndarray]:
    """The documented draws: per replicate, n_images image indexes with replacement from default_rng(seed)."""
    gen = np.random.default_rng(seed)
    return [np.sort(gen.integers(0, n_images, n_images)) for _ in range(n)]


def _stats(r: Any) -> np.ndarray:
    return np.where(r.stats == -1, np.nan, r.stats)


def _class_ap(r: Any) -> np.ndarray:
    return r.to_pandas()["ap"].to_numpy()


@pytest.mark.parametrize("native", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("kind", ["shapes", "bbox", "segm", "keypoints"])
def test_every_replicate_equals_coco_map_on_the_resampled_datasets(kind: str, native: bool,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if not native:
        monkeypatch.setenv("MASLOW_NATIVE", "0")
    truth, a, b, iou_type = _case(kind)
    n_boot = 6
    c = compare_models(truth, a, b, iou_type=iou_type, n_bootstrap=n_boot, seed=5)
    ra, rb = coco_map(truth, a, iou_type=iou_type), coco_map(truth, b, iou_type=iou_type)
    np.testing.assert_array_equal(c.stats_a, _stats(ra))
    np.testing.assert_array_equal(c.delta, _stats(rb) - _stats(ra))
    np.testing.assert_array_equal(c.ap_a_per_class, _class_ap(ra))
    np.testing.assert_array_equal(c.delta_per_class, _class_ap(rb) - _class_ap(ra))
    twice = 0
    for i, idx in enumerate(_draws(truth.n_images, n_boot, 5)):
        twice += int((np.bincount(idx) > 1).any())
        sa = coco_map(truth.select_images(idx), a.select_images(idx), iou_type=iou_type)
        sb = coco_map(truth.select_images(idx), b.select_images(idx), iou_type=iou_type)
        np.testing.assert_array_equal(c.samples[i], _stats(sb) - _stats(sa))  # bit for bit
        np.testing.assert_array_equal(c.samples_per_class[i], _class_ap(sb) - _class_ap(sa))
    assert twice == n_boot  # every replicate had an image drawn more than once


def test_score_ties_inside_an_image_keep_the_copy_order() -> None:
    """Predictions of one image, class and score come copy after copy (A B A B) in a resampled dataset; with a TP
    and an FP tied, A A B B would give other precisions. A hand-built case where the order decides AP."""
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Annotations, Images

    images = Images(path=np.array(["a.jpg", "b.jpg"], object), width=[100, 100], height=[100, 100])
    schema = LabelSchema.from_names(["x"])
    truth = Dataset(schema, images, Annotations(image=[0, 0, 1], label=[0, 0, 0],
                                                box=[[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]]))
    # image 0: a TP then an FP at the same score (A A B B would put both TPs first: precision 1 at recall 2/4,
    # where A B A B gives 2/3); image 1: one TP at a lower score
    pred = truth.replace(annotations=Annotations(
        image=[0, 0, 1], label=[0, 0, 0], box=[[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]],
        score=[0.9, 0.9, 0.5]))
    empty = truth.replace(annotations=Annotations(image=np.zeros(0, np.int64), label=np.zeros(0, np.int64),
                                                  box=np.zeros((0, 4)), score=np.zeros(0)))
    c = compare_models(truth, empty, pred, n_bootstrap=40, seed=1)
    checked = 0
    for i, idx in enumerate(_draws(2, 40, 1)):
        if np.bincount(idx, minlength=2)[0] == 2:
            r = coco_map(truth.select_images(idx), pred.select_images(idx))
            assert c.samples[i, 0] == r.map_50_95  # model A finds nothing: its AP is 0
            checked += 1
    assert checked


def test_a_model_against_itself_has_zero_deltas_and_is_never_better() -> None:
    truth = shapes(20, seed=2)
    pred = simulate(truth, seed=2)
    c = compare_models(truth, pred, pred, n_bootstrap=30, seed=0)
    defined = ~np.isnan(c.stats_a)
    assert (c.delta[defined] == 0).all() and (c.lower[defined] == 0).all() and (c.upper[defined] == 0).all()
    assert (c.p_not_better[defined] == 1).all() and not c.significant.any() and not c.significant_per_class.any()


def test_a_clearly_better_model_is_flagged_and_the_interval_is_the_samples_quantiles() -> None:
    truth = shapes(60, seed=4)
    weak = simulate(truth, seed=4, p_miss=0.5, jitter=0.2, fp_per_image=2.0)
    strong = simulate(truth, seed=5, p_miss=0.05, jitter=0.03, fp_per_image=0.2)
    c = compare_models(truth, weak, strong, n_bootstrap=200, seed=3, confidence=0.9)
    i = c.stat_names.index("map_50_95")
    assert c.delta[i] > 0 and c.lower[i] > 0 and c.significant[i] and c.p_not_better[i] == 0
    col = c.samples[:, i]
    assert (c.lower[i], c.upper[i]) == tuple(np.quantile(col[~np.isnan(col)], [0.05, 0.95]))
    # and the other way round: B worse, flagged by the upper bound, p_not_better 1
    r = compare_models(truth, strong, weak, n_bootstrap=200, seed=3, confidence=0.9)
    assert r.upper[i] < 0 and r.significant[i] and r.p_not_better[i] == 1
    np.testing.assert_allclose(r.samples, -c.samples)  # the same draws, paired


def test_the_seed_fixes_the_draws() -> None:
    truth = shapes(20, seed=6)
    a, b = simulate(truth, seed=6), simulate(truth, seed=7)
    one, same = compare_models(truth, a, b, n_bootstrap=25, seed=9), compare_models(truth, a, b, n_bootstrap=25, seed=9)
    other = compare_models(truth, a, b, n_bootstrap=25, seed=10)
    np.testing.assert_array_equal(one.samples, same.samples)
    assert not np.array_equal(one.samples, other.samples, equal_nan=True)
    gen = compare_models(truth, a, b, n_bootstrap=25, seed=np.random.default_rng(9))
    np.testing.assert_array_equal(one.samples, gen.samples)


def test_no_bootstrap_gives_deltas_without_intervals() -> None:
    truth = shapes(10, seed=1)
    c = compare_models(truth, simulate(truth, seed=1), simulate(truth, seed=2), n_bootstrap=0)
    assert c.samples.shape == (0, len(c.stat_names)) and np.isnan(c.lower).all() and np.isnan(c.p_not_better).all()
    assert not c.significant.any() and not np.isnan(c.delta[0])


def test_to_dict_is_json_safe_and_to_pandas_has_a_row_per_stat_and_class() -> None:
    truth = shapes(16, seed=8)
    c = compare_models(truth, simulate(truth, seed=8), simulate(truth, seed=9), n_bootstrap=20)
    d = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert [r["name"] for r in d["stats"]] == list(c.stat_names)
    assert [r["name"] for r in d["per_class"]] == list(c.class_names)
    assert d["stats"][0]["delta"] == pytest.approx(float(c.delta[0]))
    df = c.to_pandas()
    assert list(df["kind"]) == ["stat"] * len(c.stat_names) + ["class"] * len(c.class_names)
    assert df["upper"].iloc[0] == c.upper[0] and df["a"].isna().sum() == int(np.isnan(c.stats_a).sum()
                                                                           + np.isnan(c.ap_a_per_class).sum())


def test_bad_input_is_refused() -> None:
    truth = shapes(10, seed=1)
    pred = simulate(truth, seed=1)
    other = simulate(shapes(11, seed=1), seed=1)
    with pytest.raises(InvalidDatasetError, match=r"pred_b\.images must be the images table of truth"):
        compare_models(truth, pred, other)
    with pytest.raises(ValueError, match="confidence must be in"):
        compare_models(truth, pred, pred, confidence=95)
    with pytest.raises(ValueError, match="n_bootstrap must be"):
        compare_models(truth, pred, pred, n_bootstrap=-1)
    with pytest.raises(ValueError, match="iou_type must be"):
        compare_models(truth, pred, pred, iou_type="box")
    no_scores = truth.replace(annotations=truth.annotations.with_columns(score=None))
    with pytest.raises(InvalidDatasetError, match="score"):
        compare_models(truth, pred, no_scores)


def test_plot_and_html_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    truth = shapes(16, seed=8)
    pred = simulate(truth, seed=8)
    c: Comparison = compare_models(truth, pred, pred, n_bootstrap=10)
    png = plot_ap_deltas(c, tmp_path / "d.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = write_comparison_html(c, tmp_path / "r.html", sources={"A": "a<1>.json"})
    text = page.read_text(encoding="utf-8")
    assert "a&lt;1&gt;.json" in text and "data:image/png;base64," in text
    assert "the data cannot tell them apart" in text  # the same model twice
    assert render_comparison_html(c, plots=False).count("<img") == 0


def test_agrees_with_hotcoco_compare(tmp_path: Path) -> None:
    """hotcoco's point estimates (stats and per-category AP of both models) equal maslow's; its intervals
    differ by definition (an m-of-n subsample of distinct images), so only their sign agreement is checked on a
    clear improvement."""
    hotcoco = pytest.importorskip("hotcoco")
    from maslow.io.coco_results import write_coco_results
    from maslow.metrics import MatchTable, coco_matches

    gt, res = random_case(21, n_images=40, crowd_rate=0.05)
    truth, a = datasets(gt, res)
    fp = coco_matches(truth, a).pred_status[:, 0] == MatchTable.FP
    b = a.select(~fp | (np.arange(a.n_annotations) % 3 == 0))  # B: A without two thirds of its false alarms
    for name, obj in (("gt", gt), ("a", res)):
        (tmp_path / f"{name}.json").write_text(json.dumps(obj))
    write_coco_results(b, tmp_path / "b.json")
    coco = hotcoco.COCO(str(tmp_path / "gt.json"))
    evs = []
    for name in ("a", "b"):
        ev = hotcoco.COCOeval(coco, coco.load_res(str(tmp_path / f"{name}.json")), "bbox")
        ev.evaluate()
        evs.append(ev)
    h = hotcoco.compare(evs[0], evs[1], n_bootstrap=200, seed=0)
    c = compare_models(truth, a, b, n_bootstrap=200, seed=0)
    names = {"map_50_95": "AP", "map_50": "AP50", "map_75": "AP75", "map_small": "APs", "map_medium": "APm",
             "map_large": "APl", "mar_1": "AR1", "mar_10": "AR10", "mar_100": "AR100", "mar_small": "ARs",
             "mar_medium": "ARm", "mar_large": "ARl"}
    for i, n in enumerate(c.stat_names):
        for mine, theirs in ((c.stats_a[i], h["metrics_a"][names[n]]), (c.stats_b[i], h["metrics_b"][names[n]])):
            assert (np.isnan(mine) and theirs == -1) or mine == pytest.approx(theirs, abs=1e-12), n
    per_cat = {d["cat_name"]: d for d in h["per_category"]}
    for k, n in enumerate(c.class_names):
        if not np.isnan(c.ap_a_per_class[k]):
            assert c.ap_a_per_class[k] == pytest.approx(per_cat[n]["ap_a"], abs=1e-12)
            assert c.delta_per_class[k] == pytest.approx(per_cat[n]["delta"], abs=1e-12)
    i = c.stat_names.index("map_50_95")
    assert c.delta[i] > 0 and h["deltas"]["AP"] == pytest.approx(c.delta[i], abs=1e-12)
    assert (c.lower[i] > 0) == (h["ci"]["AP"]["lower"] > 0)


def test_doctests() -> None:
    import doctest

    import maslow.metrics.compare

    failures, tried = doctest.testmod(maslow.metrics.compare)
    assert tried and not failures
