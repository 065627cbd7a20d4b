"""What the plots draw is what was computed: the data read back from each figure against pycocotools'
``COCOeval.eval`` arrays and a brute-force greedy matching; classes without truth, many classes, user text."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from pycocotools import mask as mask_utils

from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef
from maslow.metrics import (
    coco_map,
    detection_confusion_matrix,
    plot_ap_per_class,
    plot_confusion_matrix,
    plot_pr_curves,
)
from tests.metrics.cocodata import datasets, pycoco, pycoco_params, random_case

Drawn = Callable[[Callable[[Path], Path]], Figure]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Drawn:
    """Run a plot function and return the Figure it saved (matplotlib's savefig is wrapped, not replaced)."""
    figures: list[Figure] = []
    save = Figure.savefig

    def spy(self: Figure, *args: Any, **kwargs: Any) -> None:
        figures.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)

    def run(plot: Callable[[Path], Path]) -> Figure:
        out = tmp_path / f"plot{len(figures)}.png"
        assert plot(out) == out and out.read_bytes()[:4] == b"\x89PNG"
        return figures[-1]

    return run


def _case(seed: int, *, n_cats: int = 5, drop: int | None = 1, **kw: Any) -> tuple[dict[str, Any], list[Any]]:
    """A random COCO case; category ``drop`` (an index) loses its truth objects but keeps predictions."""
    gt, res = random_case(seed, n_images=16, n_cats=n_cats, **kw)
    if drop is not None:
        gone = gt["categories"][drop]["id"]
        gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != gone]
    return gt, res


# -- PR curves ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("opts", [
    pytest.param({}, id="defaults"),
    pytest.param({"area_ranges": {"any": (0.0, 1e10), "big": (400.0, 1e10)}, "max_dets": (1, 10, 50)},
                 id="no-area-all-no-maxdets-100"),
])
def test_pr_curves_are_pycocotools_precision_at_the_cell_the_title_names(drawn: Drawn, opts: dict[str, Any]
                                                                         ) -> None:
    gt, res = _case(3)
    truth, pred = datasets(gt, res)
    result = coco_map(truth, pred, **opts)
    params = pycoco_params(**opts)
    ev = pycoco(gt, res, summarize=False, **params)
    fig = drawn(lambda p: plot_pr_curves(result, p))
    title = fig.get_suptitle()
    found = re.search(r"area (\S+), maxDets (\d+)\)", title)
    assert found, title
    area_labels = params.get("areaRngLbl", ev.params.areaRngLbl)
    a, m = area_labels.index(found[1]), list(ev.params.maxDets).index(int(found[2]))
    precision = ev.eval["precision"][:, :, :, a, m]  # (T, R, K)
    names = [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    thr = ev.params.iouThrs
    panels = {"IoU 0.50": precision[np.isclose(thr, 0.5)], f"IoU {thr.min():.2f}:{thr.max():.2f}": precision}
    for ax in fig.axes:
        p = panels[ax.get_title().split("  ")[0]]
        with_truth = [k for k in range(len(names)) if (p[:, :, k] > -1).all()]
        assert 1 not in with_truth and len(with_truth) > 1  # the dropped category: no curve, not a curve at 0
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        expected = {f"{names[k]} {p[:, :, k].mean():.3f}": p[:, :, k].mean(axis=0) for k in with_truth}
        overall = p[:, :, with_truth].mean(axis=(0, 2))
        expected[f"overall {overall.mean():.3f}"] = overall
        assert set(lines) == set(expected)
        for label, y in expected.items():
            np.testing.assert_array_equal(lines[label].get_xdata(), ev.params.recThrs)
            np.testing.assert_allclose(lines[label].get_ydata(), y, rtol=0, atol=1e-12)


# -- AP per class -------------------------------------------------------------------------------------------

def _bars(fig: Figure) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """(class -> bar width, class -> AP50 mark, class -> text at its row) read back from the AP chart."""
    ax = fig.axes[0]
    names = {round(float(y)): t.get_text() for y, t in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)}
    widths = {names[round(b.get_y() + b.get_height() / 2)]: float(b.get_width()) for b in ax.patches}
    marks = {names[round(float(y))]: float(x) for c in ax.collections for x, y in np.asarray(c.get_offsets())}
    texts = {names[round(float(t.get_position()[1]))]: t.get_text() for t in ax.texts}
    return widths, marks, texts


def test_ap_bars_are_pycocotools_per_class_means_and_no_truth_is_not_zero(drawn: Drawn) -> None:
    gt, res = _case(5, n_cats=6)
    truth, pred = datasets(gt, res)
    result = coco_map(truth, pred)
    ev = pycoco(gt, res, summarize=False)
    precision = ev.eval["precision"][:, :, :, 0, 2]  # area all, maxDets 100
    names = [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    widths, marks, texts = _bars(drawn(lambda p: plot_ap_per_class(result, p)))
    no_truth = gt["categories"][1]["name"]
    for k, name in enumerate(names):
        s = precision[:, :, k]
        if name == no_truth:
            assert (s == -1).all()
            # used to be a zero-width bar and an AP50 mark at 0: read back, an AP50 of 0
            assert name not in widths and name not in marks and texts[name] == "no truth"
            continue
        assert widths[name] == pytest.approx(s[s > -1].mean(), abs=1e-12)
        assert marks[name] == pytest.approx(s[0].mean(), abs=1e-12)
        assert texts[name] == f"{s.mean():.3f}"


def test_ap_chart_without_iou_050_has_no_ap50_marks(drawn: Drawn) -> None:
    gt, res = _case(6, drop=None)
    truth, pred = datasets(gt, res)
    result = coco_map(truth, pred, iou_thresholds=[0.6, 0.7])
    fig = drawn(lambda p: plot_ap_per_class(result, p))
    widths, marks, _ = _bars(fig)
    assert marks == {}  # used to be one mark at 0 per class, named AP50 in the legend
    assert len(widths) == len(result.class_names)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["AP@[.5:.95]"]


# -- detection confusion matrix -------------------------------------------------------------------------------

def _greedy_confusion(truth: Dataset, pred: Dataset, iou_thr: float, score_thr: float) -> tuple[np.ndarray, list[str]]:
    """The module docstring's matrix, matched one prediction at a time: pycocotools' greedy matching with
    ``useCats=0`` (objects of an image taken category by category, then predictions by score, stable; crowd
    regions last and matchable again; IoU with a crowd is over the prediction's area), pycocotools' IoU."""
    names = list(truth.schema.names) + [n for n in pred.schema.names if n not in truth.schema.names]
    k = len(names)
    matrix = np.zeros((k + 1, k + 1), np.int64)
    ta, pa = truth.annotations, pred.annotations
    assert ta.iscrowd is not None and pa.score is not None
    t_cat = np.asarray([c.id for c in truth.schema.classes])[ta.label]
    p_cat = np.asarray([c.id for c in pred.schema.classes])[pa.label]
    p_name = np.asarray([names.index(pred.schema.names[lab]) for lab in pa.label.tolist()], np.int64)
    for image in range(truth.n_images):
        g = np.flatnonzero(ta.image == image)
        g = g[np.argsort(t_cat[g], kind="stable")]
        g = np.r_[g[~ta.iscrowd[g]], g[ta.iscrowd[g]]]
        d = np.flatnonzero((pa.image == image) & (pa.score >= score_thr))
        d = d[np.argsort(p_cat[d], kind="stable")]
        d = d[np.argsort(-pa.score[d], kind="stable")]
        crowd = ta.iscrowd[g]
        ious = np.zeros((len(d), len(g)))
        if len(d) and len(g):
            ious = np.asarray(mask_utils.iou(pa.extra["coco_bbox"][d].tolist(), ta.extra["coco_bbox"][g].tolist(),
                                             crowd.astype(int).tolist()))
        used = np.zeros(len(g), bool)
        for i in range(len(d)):
            best, best_iou = -1, min(iou_thr, 1 - 1e-10)
            for j in range(len(g)):
                if used[j] and not crowd[j]:
                    continue
                if best > -1 and not crowd[best] and crowd[j]:
                    break
                if ious[i, j] >= best_iou:
                    best, best_iou = j, ious[i, j]
            if best == -1:
                matrix[k, p_name[d[i]]] += 1  # background row: a false positive
            elif not crowd[best]:  # matched to a crowd region: left out
                used[best] = True
                matrix[ta.label[g[best]], p_name[d[i]]] += 1
        for j in np.flatnonzero(~used & ~crowd):
            matrix[ta.label[g[j]], k] += 1  # background column: a miss
    return matrix, names


def _with_ghost_class(truth: Dataset, pred: Dataset, seed: int) -> Dataset:
    """Predictions over a schema with one more class, which the truth lacks; a few predictions relabelled to it."""
    schema = pred.schema.with_classes((*pred.schema.classes, ClassDef(name="ghost", id=999)))
    label = pred.annotations.label.copy()
    label[np.random.default_rng(seed).random(len(label)) < 0.15] = len(pred.schema.names)
    return pred.replace(schema=schema, annotations=pred.annotations.with_columns(label=label))


@pytest.mark.parametrize("seed", [0, 13, 29])
@pytest.mark.parametrize(("iou_thr", "score_thr"), [(0.5, 0.3), (0.75, 0.0), (0.3, 0.6)])
def test_confusion_matrix_is_the_greedy_matching_and_the_plot_draws_it(drawn: Drawn, seed: int, iou_thr: float,
                                                                       score_thr: float) -> None:
    gt, res = random_case(seed, n_images=10, n_cats=4, crowd_rate=0.2)
    truth, pred = datasets(gt, res)
    pred = _with_ghost_class(truth, pred, seed)
    cm = detection_confusion_matrix(truth, pred, iou_threshold=iou_thr, score_threshold=score_thr)
    expected, names = _greedy_confusion(truth, pred, iou_thr, score_thr)
    assert list(cm.labels) == [*names, "background"]
    np.testing.assert_array_equal(cm.matrix, expected)
    for normalize in (True, False):
        fig = drawn(lambda p, normalize=normalize: plot_confusion_matrix(cm, p, normalize=normalize))
        ax = fig.axes[0]
        image = np.asarray(ax.images[0].get_array())
        if normalize:
            rows = expected.sum(axis=1, keepdims=True)
            shade = np.divide(expected, rows, out=np.zeros(expected.shape), where=rows > 0)
        else:
            shade = expected / max(expected.max(), 1)
        np.testing.assert_allclose(image, shade, rtol=0, atol=1e-12)
        assert [t.get_text() for t in ax.get_xticklabels()] == [*names, "background"]
        assert [t.get_text() for t in ax.get_yticklabels()] == [*names, "background"]
        cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
        assert {c: v for c, v in cells.items() if v} == {(int(i), int(j)): int(expected[i, j])
                                                        for i, j in zip(*np.nonzero(expected), strict=True)}
        assert f"IoU {iou_thr:g}, score >= {score_thr:g}" in ax.get_title()


# -- many classes, user text ----------------------------------------------------------------------------------

NAMES = ("$x^2$", "a_b", "^hat", "café ☕", r"$\frac{1", "50%", "{x}", "Ünïcødé")


def _renderer(fig: Figure) -> Any:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_eighty_classes_keep_every_name_without_overlap_and_names_are_not_mathtext(drawn: Drawn) -> None:
    gt, res = random_case(0, n_images=60, n_cats=80, max_gt=10)
    for c, name in zip(gt["categories"], NAMES, strict=False):
        c["name"] = name
    truth, pred = datasets(gt, res)
    result = coco_map(truth, pred)
    cm = detection_confusion_matrix(truth, pred, score_threshold=0.0)
    names = set(truth.schema.names)
    small = coco_map(*datasets(*random_case(0, n_images=10, n_cats=4)))
    ap_small = drawn(lambda p: plot_ap_per_class(small, p))
    for plot, arg, ticks in ((plot_ap_per_class, result, ("y",)), (plot_confusion_matrix, cm, ("x", "y")),
                             (plot_pr_curves, result, ())):
        fig = drawn(lambda p, plot=plot, arg=arg: plot(arg, p))
        renderer = _renderer(fig)
        texts = [t for t in fig.findobj(Text) if t.get_text()]
        assert not [t.get_text() for t in texts if t.get_parse_math()]  # "$x^2$" is drawn with its dollars
        ax = fig.axes[0]
        for axis in ticks:
            labels = [t for t in (ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()) if t.get_text()]
            assert names <= {t.get_text() for t in labels}  # none dropped
            if axis == "y":
                boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.y0)
                assert all(a.y1 <= b.y0 + 0.5 for a, b in itertools.pairwise(boxes))  # no overlap
                assert all(0 <= b.y0 and b.y1 <= fig.bbox.height for b in boxes)  # none cut off
        if plot is plot_ap_per_class:
            assert fig.get_size_inches()[1] > 4 * ap_small.get_size_inches()[1]  # grows with the classes


# -- MapResult: summary, to_dict, to_pandas -----------------------------------------------------------------

def _strict_json(obj: Any) -> Any:
    return json.loads(json.dumps(obj, allow_nan=False))


@pytest.mark.parametrize("opts", [
    pytest.param({}, id="defaults"),
    pytest.param({"max_dets": (5, 50)}, id="short-ladder"),
    pytest.param({"area_ranges": {"all": (0.0, math.inf), "tiny": (0.0, 16.0)}}, id="unbounded-area"),
])
def test_map_result_dict_and_table_equal_the_stats_and_pycocotools(opts: dict[str, Any]) -> None:
    gt, res = _case(8)
    truth, pred = datasets(gt, res)
    result = coco_map(truth, pred, **opts)
    d = _strict_json(result.to_dict())  # an unbounded area range used to put Infinity in it
    for i, name in enumerate(result.stat_names):
        v = float(result.stats[i])
        assert d["stats"][name] == (None if v == -1 or math.isnan(v) else v)
        assert (math.isnan(getattr(result, name)) and d["stats"][name] is None) or getattr(result, name) == v
    assert d["area_ranges"] == {n: [None if math.isinf(x) else x for x in r]
                                for n, r in zip(result.area_names, result.area_ranges.tolist(), strict=True)}
    ev = pycoco(gt, res, summarize=False, **pycoco_params(**opts))
    a = result.area_names.index("all")
    m = result.max_dets.index(100) if 100 in result.max_dets else len(result.max_dets) - 1
    precision = ev.eval["precision"][:, :, :, a, m]
    df = result.to_pandas()
    assert df["class"].tolist() == [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    for k in range(len(df)):
        s = precision[:, :, k]
        ap = s[s > -1].mean() if (s > -1).any() else None
        row = d["ap_per_class"][k]
        if ap is None:
            assert math.isnan(df["ap"][k]) and row == [None] * len(result.iou_thresholds)
        else:
            assert df["ap"][k] == pytest.approx(ap, abs=1e-12)
            assert row == pytest.approx(s.mean(axis=1).tolist(), abs=1e-12)


def test_to_pandas_keeps_one_column_per_threshold_when_two_round_alike() -> None:
    gt, res = _case(9, drop=None)
    result = coco_map(*datasets(gt, res), iou_thresholds=[0.5, 0.501, 0.75])
    df = result.to_pandas()
    cols = [c for c in df.columns if c.startswith("ap_")]
    assert len(cols) == 3  # used to be two: "ap_0.50" twice, the second overwriting the first
    for t, c in enumerate(cols):
        assert float(c.removeprefix("ap_")) == pytest.approx(result.iou_thresholds[t])
        np.testing.assert_array_equal(df[c].to_numpy(), result.ap_per_class[:, t])
    default = coco_map(*datasets(gt, res)).to_pandas()
    assert [c for c in default.columns if c.startswith("ap_")] == [f"ap_{t:.2f}" for t in np.linspace(0.5, 0.95, 10)]


def test_a_png_is_drawn_beside_its_target_then_renamed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = coco_map(*datasets(*_case(10)))
    target = tmp_path / "ap.png"
    target.write_bytes(b"old")
    seen: list[Path] = []

    def fails_halfway(self: Figure, fname: Any, **kwargs: Any) -> None:
        seen.append(Path(fname))
        Path(fname).write_bytes(b"\x89PNG half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", fails_halfway)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_ap_per_class(result, target)
    assert seen[0].parent == tmp_path and seen[0] != target
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
