"""compare_labels: every bootstrap replicate equals classification_scores / multilabel_scores / semantic_scores on the
resampled datasets (images drawn twice count twice), bit for bit; the scores against scikit-learn, McNemar's test
against the exact binomial sum and scipy, hamming_loss read as lower-better, the pairing, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError, SchemaError
from maslow.metrics.classification import classification_scores
from maslow.metrics.compare import (
    LabelComparison,
    compare_labels,
    mcnemar_exact,
    plot_class_deltas,
    render_comparison_html,
    write_comparison_html,
)
from maslow.metrics.multilabel import multilabel_scores
from maslow.metrics.segmentation import semantic_scores


def _images(n: int, h: int = 8, w: int = 8) -> Images:
    return Images(path=obj_array([f"im/{i:03d}.png" for i in range(n)]), width=[w] * n, height=[h] * n)


def _classifier(truth: Dataset, names: list[str], seed: int, skill: float) -> Dataset:
    """Probabilities over ``names`` (rounded to one decimal, so ties occur), the label their arg max."""
    rng = np.random.default_rng(seed)
    n, k = truth.n_images, len(names)
    probs = rng.dirichlet(np.ones(k), n)
    own = np.asarray([names.index(truth.schema.names[y]) if truth.schema.names[y] in names else -1
                      for y in truth.annotations.label.tolist()])
    hit = own >= 0
    probs[np.flatnonzero(hit), own[hit]] += rng.uniform(0, skill, int(hit.sum()))
    probs = np.round(probs / probs.sum(axis=1, keepdims=True), 1)
    schema = LabelSchema.from_names(names, task="classification")
    return Dataset(schema, truth.images, Annotations(image=np.arange(n), label=probs.argmax(axis=1),
                                                     extra={"probs": probs}))


def classification_case(n: int = 40, seed: int = 0, probs: bool = True) -> tuple[Dataset, Dataset, Dataset]:
    """Truth of 4 classes; A predicts a class the truth lacks ("e"), B has no "d" column (unscored for top-k)."""
    rng = np.random.default_rng(seed)
    truth = Dataset(LabelSchema.from_names(list("abcd"), task="classification"), _images(n),
                    Annotations(image=np.arange(n), label=rng.integers(0, 4, n)))
    a = _classifier(truth, list("abcde"), seed + 1, 0.4)
    b = _classifier(truth, list("abc"), seed + 2, 0.8)
    if not probs:
        a, b = (p.replace(annotations=p.annotations.with_columns(extra={})) for p in (a, b))
    return truth, a, b


def multilabel_case(n: int = 40, seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    """Tags x, y, z (some images have none); A also predicts a tag the truth lacks ("w"); scores around the
    threshold."""
    rng = np.random.default_rng(seed)
    t_img, t_lab = np.nonzero(rng.random((n, 3)) < 0.35)
    truth = Dataset(LabelSchema.from_names(list("xyz"), task="multilabel"), _images(n),
                    Annotations(image=t_img, label=t_lab))

    def model(names: list[str], s: int, noise: float) -> Dataset:
        r = np.random.default_rng(s)
        has = np.zeros((n, len(names)))
        has[t_img, t_lab] = 1
        score = np.clip(has * 0.7 + r.normal(0, noise, has.shape) + 0.1, 0, 1)
        img, lab = np.nonzero(score > 0.3)
        return Dataset(LabelSchema.from_names(names, task="multilabel"), truth.images,
                       Annotations(image=img, label=lab, score=score[img, lab]))

    return truth, model(list("xyzw"), seed + 1, 0.3), model(list("xyz"), seed + 2, 0.15)


def semantic_dataset(maps: list[np.ndarray], names: list[str], images: Images, *, void: int | None = None,
                     ids: list[int] | None = None) -> Dataset:
    """One RLE per class present per map (values >= len(names): no mask there); the ``void`` value is a crowd."""
    rows = [(i, v, M.encode(m == v), v == void) for i, m in enumerate(maps) for v in np.unique(m).tolist()
            if v < len(names)]
    classes = tuple(ClassDef(nm, kind="semantic", id=None if ids is None else ids[j]) for j, nm in enumerate(names))
    return Dataset(LabelSchema(classes, tasks=(Task.SEMANTIC_SEGMENTATION,)), images,
                   Annotations(image=[r[0] for r in rows], label=[r[1] for r in rows],
                               mask=obj_array([r[2] for r in rows]), iscrowd=[r[3] for r in rows]))


def semantic_case(n: int = 14, seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    """Blocky maps of bg/road/car plus a void class (value 3) in every image; A leaves pixels without a class
    (value 9) and predicts a class the truth lacks ("bike"); B is closer."""
    rng = np.random.default_rng(seed)
    h, w = 24, 32
    maps = []
    for _ in range(n):
        m = np.repeat(np.repeat(rng.integers(0, 3, (h // 4, w // 4)), 4, 0), 4, 1).astype(np.uint8)
        m[rng.integers(0, h), :5] = 3
        maps.append(m)
    names = ["bg", "road", "car", "void"]
    images = _images(n, h, w)
    truth = semantic_dataset(maps, names, images, void=3)

    def model(s: int, frac: float, extra: bool) -> Dataset:
        r = np.random.default_rng(s)
        out = []
        for m in maps:
            p = np.roll(np.minimum(m, 2), 1, axis=1)
            noise = r.random(p.shape) < frac
            p[noise] = r.choice([0, 1, 2, 4, 9] if extra else [0, 1, 2], int(noise.sum()))
            out.append(p)
        return semantic_dataset(out, ["bg", "road", "car", "void", "bike"] if extra else names[:3], images)

    return truth, model(seed + 1, 0.2, True), model(seed + 2, 0.05, False)


def _draws(n_images: int, n: int, seed: int) -> list[np.ndarray]:
    """The documented draws: per replicate, n_images indexes with replacement from default_rng(seed), sorted."""
    gen = np.random.default_rng(seed)
    return [np.sort(gen.integers(0, n_images, n_images)) for _ in range(n)]


def _values(c: LabelComparison, r: Any) -> tuple[np.ndarray, np.ndarray]:
    """The compared scores and per-class scores (on c's class axis) of a metric function's result."""
    if c.task == "classification":
        top = [r.top_k_accuracy[int(s.split("_")[1])] for s in c.stat_names[6:]]
        stats = [r.accuracy, r.balanced_accuracy, r.fbeta_macro, r.fbeta_weighted, r.precision_macro,
                 r.recall_macro, *top]
        per = [r.fbeta_per_class, r.recall_per_class]
    elif c.task == "multilabel":
        stats = [r.hamming_score, r.hamming_loss, r.subset_accuracy, r.f1_micro, r.f1_macro]
        per = [r.f1_per_class]
    else:
        stats = [r.miou, r.pixel_accuracy, r.mean_accuracy, r.mean_dice, r.fw_iou]
        per = [r.iou_per_class]
    on_axis = np.full((len(per), len(c.class_names)), np.nan)
    on_axis[:, [c.class_names.index(n) for n in r.class_names]] = np.stack(per)
    return np.asarray(stats), on_axis


CASES = {
    "classification": (classification_case, lambda t, p: classification_scores(t, p)),
    "classification-no-probs": (lambda: classification_case(probs=False), lambda t, p: classification_scores(t, p)),
    "multilabel": (multilabel_case, lambda t, p: multilabel_scores(t, p)),
    "semantic": (semantic_case, lambda t, p: semantic_scores(t, p)),
}


@pytest.mark.parametrize("native", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("case", list(CASES))
def test_every_replicate_equals_the_metric_function_on_the_resampled_datasets(
        case: str, native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not native:
        monkeypatch.setenv("MASLOW_NATIVE", "0")
    build, metric = CASES[case]
    truth, a, b = build()
    n_boot = 6
    c = compare_labels(truth, a, b, n_bootstrap=n_boot, seed=5)
    for side, pred, stats, per in (("a", a, c.stats_a, c.a_per_class), ("b", b, c.stats_b, c.b_per_class)):
        ref_stats, ref_per = _values(c, metric(truth, pred))
        np.testing.assert_array_equal(stats, ref_stats, err_msg=side)
        np.testing.assert_array_equal(per, ref_per, err_msg=side)
    twice = 0
    for i, idx in enumerate(_draws(truth.n_images, n_boot, 5)):
        twice += int((np.bincount(idx) > 1).any())
        t = truth.select_images(idx)
        (sa, ka), (sb, kb) = (_values(c, metric(t, p.select_images(idx))) for p in (a, b))
        np.testing.assert_array_equal(c.samples[i], sb - sa)  # bit for bit
        np.testing.assert_array_equal(c.samples_per_class[i], kb - ka)
    assert twice == n_boot  # every replicate drew some image more than once
    if case.startswith("classification"):  # top-1 only: top-5 of 4 classes is trivially 1; none without probs
        assert c.stat_names[6:] == (("top_1_accuracy",) if case == "classification" else ())
        assert c.class_names == ("a", "b", "c", "d", "e")  # truth's, then the class only A predicts


@pytest.mark.filterwarnings("ignore")
def test_classification_scores_equal_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    truth, a, b = classification_case(60, seed=3)
    c = compare_labels(truth, a, b, n_bootstrap=0, k=(2,))
    y = truth.annotations.label
    for pred, stats, per in ((a, c.stats_a, c.a_per_class), (b, c.stats_b, c.b_per_class)):
        p = np.asarray([c.class_names.index(pred.schema.names[v]) for v in pred.annotations.label.tolist()])
        got = dict(zip(c.stat_names, stats.tolist(), strict=True))
        assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, p), abs=1e-12)
        assert got["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, p), abs=1e-12)
        labels = sorted(set(y.tolist()) | set(p.tolist()))
        for name, fn, avg in (("f1_macro", sk.f1_score, "macro"), ("f1_weighted", sk.f1_score, "weighted"),
                              ("precision_macro", sk.precision_score, "macro"),
                              ("recall_macro", sk.recall_score, "macro")):
            assert got[name] == pytest.approx(fn(y, p, labels=labels, average=avg, zero_division=np.nan), abs=1e-12)
        f1 = sk.f1_score(y, p, labels=list(range(4)), average=None, zero_division=np.nan)
        np.testing.assert_allclose(per[0, :4], f1, atol=1e-12)
        np.testing.assert_allclose(per[1, :4], sk.recall_score(y, p, labels=list(range(4)), average=None,
                                                               zero_division=np.nan), atol=1e-12)
    score = a.annotations.extra["probs"]  # A's columns a..e: the truth's classes, then its own
    assert dict(zip(c.stat_names, c.stats_a.tolist(), strict=True))["top_2_accuracy"] == pytest.approx(
        sk.top_k_accuracy_score(y, score, k=2, labels=list(range(5))), abs=1e-12)


def test_multilabel_and_semantic_scores_equal_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    truth, a, b = multilabel_case(50, seed=4)
    c = compare_labels(truth, a, b, n_bootstrap=0)
    y = np.zeros((truth.n_images, 3), int)
    y[truth.annotations.image, truth.annotations.label] = 1
    p = np.zeros_like(y)
    keep = b.annotations.score >= 0.5
    p[b.annotations.image[keep], b.annotations.label[keep]] = 1
    got = dict(zip(c.stat_names, c.stats_b.tolist(), strict=True))
    assert got["hamming_loss"] == pytest.approx(sk.hamming_loss(y, p), abs=1e-12)
    assert got["hamming_score"] == pytest.approx(sk.jaccard_score(y, p, average="samples", zero_division=1.0),
                                                 abs=1e-12)
    assert got["subset_accuracy"] == pytest.approx(sk.accuracy_score(y, p), abs=1e-12)
    assert got["f1_micro"] == pytest.approx(sk.f1_score(y, p, average="micro"), abs=1e-12)
    assert got["f1_macro"] == pytest.approx(sk.f1_score(y, p, average="macro", zero_division=np.nan), abs=1e-12)
    np.testing.assert_allclose(c.b_per_class[0, :3], sk.f1_score(y, p, average=None, zero_division=np.nan),
                               atol=1e-12)
    truth, a, b = semantic_case(6, seed=5)
    c = compare_labels(truth, a, b, n_bootstrap=0)
    tm, pm = _label_maps(truth, 3), _label_maps(b, 3)
    keep = tm != 3  # void: ignored
    iou = sk.jaccard_score(tm[keep], pm[keep], labels=[0, 1, 2], average=None)
    np.testing.assert_allclose(c.b_per_class[0], iou, atol=1e-12)
    assert c.stats_b[0] == pytest.approx(iou.mean(), abs=1e-12)
    assert c.stats_b[1] == pytest.approx(sk.accuracy_score(tm[keep], pm[keep]), abs=1e-12)


def _label_maps(ds: Dataset, fill: int) -> np.ndarray:
    """Every image's label map, flattened and concatenated (``fill`` where no mask covers a pixel)."""
    out = []
    for i in range(ds.n_images):
        m = np.full((int(ds.images.height[i]), int(ds.images.width[i])), fill)
        for r in np.flatnonzero(ds.annotations.image == i).tolist():
            m[M.decode(ds.annotations.mask[r])] = ds.annotations.label[r]
        out.append(m.ravel())
    return np.concatenate(out)


def test_mcnemar_equals_the_exact_binomial_sum_and_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        a, b = rng.random(n) < rng.random(), rng.random(n) < rng.random()
        a_only, b_only, p = mcnemar_exact(a, b)
        assert (a_only, b_only) == (int((a & ~b).sum()), int((~a & b).sum()))
        m = a_only + b_only
        if not m:
            assert p == 1.0
            continue
        tail = sum(math.comb(m, i) for i in range(min(a_only, b_only) + 1)) / 2**m  # one tail of Binomial(m, 1/2)
        assert p == pytest.approx(min(1.0, 2 * tail), rel=1e-9)
        assert p == stats.binomtest(b_only, m, 0.5).pvalue
        assert mcnemar_exact(b, a)[2] == pytest.approx(p, rel=1e-12)  # symmetric
    assert mcnemar_exact([True, False], [True, False]) == (0, 0, 1.0)


def test_mcnemar_of_two_classifiers_and_of_two_taggers() -> None:
    truth, a, b = classification_case(80, seed=6)
    c = compare_labels(truth, a, b, n_bootstrap=0)
    ya = np.asarray([a.schema.names[v] for v in a.annotations.label.tolist()])
    yb = np.asarray([b.schema.names[v] for v in b.annotations.label.tolist()])
    yt = np.asarray([truth.schema.names[v] for v in truth.annotations.label.tolist()])
    assert (c.mcnemar_stat, c.mcnemar_a_only, c.mcnemar_b_only) == (
        "accuracy", int(((ya == yt) & (yb != yt)).sum()), int(((ya != yt) & (yb == yt)).sum()))
    assert c.mcnemar_p == mcnemar_exact(ya == yt, yb == yt)[2]
    perfect = compare_labels(truth, a, truth, n_bootstrap=0)  # B right everywhere: only B is ever alone right
    wrong = int((ya != yt).sum())
    assert (perfect.mcnemar_a_only, perfect.mcnemar_b_only) == (0, wrong)
    assert perfect.mcnemar_p == pytest.approx(2 * 0.5**wrong, rel=1e-9) and perfect.mcnemar_p < 1e-6
    m = compare_labels(*multilabel_case(40, seed=1), n_bootstrap=0)
    assert m.mcnemar_stat == "subset_accuracy" and 0 <= m.mcnemar_p <= 1
    s = compare_labels(*semantic_case(4), n_bootstrap=0)
    assert s.mcnemar_stat is None and math.isnan(s.mcnemar_p) and s.to_dict()["mcnemar"] is None


def test_hamming_loss_is_lower_better() -> None:
    truth, a, b = multilabel_case(80, seed=2)  # B is the better tagger: its loss is lower
    c = compare_labels(truth, a, b, n_bootstrap=200, seed=1)
    i, j = c.stat_names.index("hamming_loss"), c.stat_names.index("hamming_score")
    assert not c.higher_better[i] and c.higher_better.sum() == len(c.stat_names) - 1
    assert c.delta[i] < 0 and c.upper[i] < 0 and c.delta[j] > 0 and c.lower[j] > 0
    assert c.better[i] and c.better[j] and not c.worse.any()
    col = c.samples[:, i]
    assert c.p_not_better[i] == np.mean(col >= 0) and c.p_not_better[j] == np.mean(c.samples[:, j] <= 0)
    r = compare_labels(truth, b, a, n_bootstrap=200, seed=1)  # the other way round: the same draws, negated
    np.testing.assert_array_equal(r.samples, -c.samples)
    assert r.worse[i] and r.worse[j] and not r.better.any()


def test_a_model_against_itself_and_no_bootstrap() -> None:
    truth, a, _ = classification_case(30, seed=7)
    c = compare_labels(truth, a, a, n_bootstrap=25, seed=0)
    defined = ~np.isnan(c.stats_a)
    assert (c.delta[defined] == 0).all() and (c.upper[defined] == 0).all() and not c.significant.any()
    assert (c.p_not_better[defined] == 1).all() and (c.mcnemar_a_only, c.mcnemar_b_only, c.mcnemar_p) == (0, 0, 1.0)
    z = compare_labels(truth, a, a, n_bootstrap=0)
    assert z.samples.shape == (0, len(z.stat_names)) and np.isnan(z.lower).all() and not z.significant.any()


def test_the_seed_fixes_the_draws_and_the_interval_is_the_samples_quantiles() -> None:
    truth, a, b = semantic_case(10, seed=8)
    one = compare_labels(truth, a, b, n_bootstrap=30, seed=4, confidence=0.9)
    same = compare_labels(truth, a, b, n_bootstrap=30, seed=np.random.default_rng(4), confidence=0.9)
    np.testing.assert_array_equal(one.samples, same.samples)
    assert not np.array_equal(one.samples, compare_labels(truth, a, b, n_bootstrap=30, seed=5).samples)
    col = one.samples[:, 0]
    assert (one.lower[0], one.upper[0]) == tuple(np.quantile(col, [0.05, 0.95]))
    done: list[tuple[int, int]] = []
    compare_labels(truth, a, b, n_bootstrap=3, progress=lambda i, n: done.append((i, n)))
    assert done == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_semantic_classes_are_the_whole_truths() -> None:
    """The void class (crowd only) is left out in every replicate, also in one that holds none of its pixels, and
    ignore_index removes a class by its label-map value."""
    truth, a, b = semantic_case(8, seed=9)
    ann = truth.annotations
    truth = truth.select(~ann.iscrowd | (ann.image == 0))  # void regions marked in image 0 only
    c = compare_labels(truth, a, b, n_bootstrap=6, seed=2)
    assert c.class_names == ("bg", "road", "car") and c.samples_per_class.shape == (6, 1, 3)
    assert c.support_per_class.tolist() == semantic_scores(truth, a).to_pandas()["truth_pixels"].tolist()
    without = [i for i, idx in enumerate(_draws(8, 6, 2)) if 0 not in idx]
    assert without  # a replicate without image 0: semantic_scores of that resample alone evaluates "void" too
    idx = _draws(8, 6, 2)[without[0]]
    alone = semantic_scores(truth.select_images(idx), a.select_images(idx))
    assert alone.class_names == ("bg", "road", "car", "void") and np.isfinite(c.samples[without[0]]).all()
    by_id = semantic_dataset([np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8)], ["x", "y"], _images(2, 2, 2),
                             ids=[0, 7])
    r = compare_labels(by_id, by_id, by_id, n_bootstrap=3, ignore_index=7)
    assert r.class_names == ("x",) and r.stats_a[0] == 1.0


def test_bad_input_is_refused() -> None:
    truth, a, b = classification_case(10)
    with pytest.raises(ValueError, match="n_bootstrap must be"):
        compare_labels(truth, a, b, n_bootstrap=-1)
    with pytest.raises(ValueError, match="confidence must be in"):
        compare_labels(truth, a, b, confidence=95)
    with pytest.raises(ValueError, match="threshold applies to a multilabel truth"):
        compare_labels(truth, a, b, threshold=0.3)
    with pytest.raises(ValueError, match="ignore_index applies to a semantic_segmentation truth"):
        compare_labels(truth, a, b, ignore_index=0)
    other = classification_case(11)[1]
    with pytest.raises(InvalidDatasetError, match=r"pred_b\.images must be the images table of truth"):
        compare_labels(truth, a, other)
    two = b.replace(annotations=Annotations(image=[0, *range(10)], label=[0] * 11))
    with pytest.raises(InvalidDatasetError, match=r"pred_b image 0 \('im/000.png'\) must have exactly one label"):
        compare_labels(truth, a, two)
    det = truth.replace(schema=LabelSchema.from_names(list("abcd"), task="detection"))
    with pytest.raises(SchemaError, match="compare_models"):
        compare_labels(det, a, b)
    with pytest.raises(SchemaError, match="pred_a task must be classification"):
        compare_labels(truth, a.replace(schema=LabelSchema.from_names(list("abcde"), task="detection")), b)
    seg, sa, _ = semantic_case(3)
    small = sa.replace(annotations=sa.annotations.with_columns(
        mask=obj_array([M.encode(np.ones((2, 2), bool))] * sa.n_annotations)))
    with pytest.raises(InvalidDatasetError, match=r"pred_b\.annotations\.mask row 0: size must be the image's"):
        compare_labels(seg, sa, small)


def test_to_dict_and_to_pandas() -> None:
    truth, a, b = classification_case(30, seed=1)
    c = compare_labels(truth, a, b, n_bootstrap=20)
    d = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert [r["name"] for r in d["stats"]] == list(c.stat_names) and d["task"] == "classification"
    assert [(r["metric"], r["name"]) for r in d["per_class"]] == [(m, n) for m in ("f1", "recall")
                                                                   for n in c.class_names]
    assert d["per_class"][4]["b"] is None  # class "e": B neither predicts it nor sees it in the truth
    assert d["mcnemar"]["a_only"] == c.mcnemar_a_only and d["mcnemar"]["p_value"] == pytest.approx(c.mcnemar_p)
    df = c.to_pandas()
    assert list(df["kind"]) == ["stat"] * len(c.stat_names) + ["f1"] * 5 + ["recall"] * 5
    assert df["support"].iloc[len(c.stat_names):].tolist() == [*truth_counts(truth), 0] * 2


def truth_counts(truth: Dataset) -> list[int]:
    return np.bincount(truth.annotations.label, minlength=len(truth.schema.names)).tolist()


def test_plots_and_html_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    truth, a, b = classification_case(40, seed=2)
    c = compare_labels(truth, a, b, n_bootstrap=20)
    for metric in c.class_metrics:
        png = plot_class_deltas(c, tmp_path / f"{metric}.png", metric=metric)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="metric must be one of"):
        plot_class_deltas(c, tmp_path / "x.png", metric="iou")
    text = write_comparison_html(c, tmp_path / "r.html", sources={"B": "b<1>"}).read_text(encoding="utf-8")
    assert "b&lt;1&gt;" in text and text.count("data:image/png;base64,") == 2
    assert "F1 per class" in text and "recall per class" in text
    assert f"A alone is right on {c.mcnemar_a_only} images" in text
    m = compare_labels(*multilabel_case(30), n_bootstrap=10)
    page = render_comparison_html(m, plots=False)
    assert page.count("<img") == 0 and "hamming_loss (lower is better)" in page
    assert "except for hamming_loss, where lower is better" in page


def test_doctests() -> None:
    import doctest

    import maslow.metrics._compare_labels

    failures, tried = doctest.testmod(maslow.metrics._compare_labels)
    assert tried >= 2 and not failures
