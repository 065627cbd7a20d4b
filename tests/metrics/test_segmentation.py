"""maslow.metrics semantic segmentation: the streaming ConfusionMatrix against a plain bincount and scikit-learn,
the scores against scikit-learn and hotcoco, edge cases, and semantic_scores on datasets (CamVid when present)."""

from __future__ import annotations

import doctest
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

import maslow.metrics.segmentation
from maslow._native import load as load_native
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError, SchemaError
from maslow.metrics import ConfusionMatrix, SegmentationResult, scores_from_confusion, semantic_scores
from tests.conftest import shared_path


def reference(t: np.ndarray, p: np.ndarray, k: int, ignore: int | None) -> np.ndarray:
    t, p = t.reshape(-1).astype(np.int64), p.reshape(-1).astype(np.int64)
    keep = np.ones(t.size, bool) if ignore is None else t != ignore
    return np.bincount(t[keep] * k + p[keep], minlength=k * k).reshape(k, k)


def blocky(rng: np.random.Generator, shape: tuple[int, ...], k: int, block: int = 7) -> np.ndarray:
    """Piecewise-constant label maps (what real maps look like), any leading axes."""
    *lead, h, w = shape
    small = rng.integers(0, k, (*lead, -(-h // block), -(-w // block)))
    big = np.repeat(np.repeat(small, block, axis=-2), block, axis=-1)
    return np.ascontiguousarray(big[..., :h, :w]).astype(np.uint8)


def perturb(rng: np.random.Generator, t: np.ndarray, k: int, frac: float = 0.05, shift: int = 2) -> np.ndarray:
    p = np.roll(t, shift, axis=-1).copy()
    noise = rng.random(p.shape) < frac
    p[noise] = rng.integers(0, k, int(noise.sum()))
    return p


CASES: dict[str, dict[str, Any]] = {
    "blocky-512": {"shape": (64, 512), "kind": "blocky"},
    "odd-width": {"shape": (37, 53), "kind": "blocky"},
    "tiny-width": {"shape": (40, 3), "kind": "blocky"},
    "one-row": {"shape": (1, 301), "kind": "blocky"},
    "flat-1d": {"shape": (301,), "kind": "noise"},
    "batch": {"shape": (3, 30, 40), "kind": "blocky"},
    "noise": {"shape": (50, 64), "kind": "noise"},
    "many-chunks": {"shape": (700, 520), "kind": "blocky"},
    "wide-row": {"shape": (3, 300_000), "kind": "blocky"},
}


@pytest.fixture(params=["native", "native-portable", "numpy"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the C kernel (where built; its AVX2 block test where the CPU has it, and its portable one)
    and with the numpy path (MASLOW_NATIVE=0)."""
    native = load_native("confusion")
    if request.param == "numpy":
        monkeypatch.setenv("MASLOW_NATIVE", "0")
    elif native is None:
        pytest.skip("maslow's C kernels are not built (no C compiler at install)")
    if native is not None:
        native.set_simd(request.param != "native-portable")
    yield str(request.param)
    if native is not None:
        native.set_simd(True)


@pytest.mark.parametrize("ignore", [None, 255, 2], ids=["no-ignore", "ignore-255", "ignore-class-2"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_matrix_equals_bincount(case: str, ignore: int | None, kernel: str) -> None:
    rng = np.random.default_rng(list(CASES).index(case))
    spec, k = CASES[case], 6
    shape = spec["shape"]
    if spec["kind"] == "blocky" and len(shape) >= 2:
        t = blocky(rng, shape, k)
    else:
        t = rng.integers(0, k, shape).astype(np.uint8)
    p = perturb(rng, t, k, frac=0.001 if spec["kind"] == "blocky" else 0.3)  # blocky: the sparse path
    if ignore == 255:
        t[..., :3] = 255
        t[rng.random(t.shape) < 0.001] = 255
    cm = ConfusionMatrix(k, ignore_index=ignore)
    cm.add(t, p)
    np.testing.assert_array_equal(cm.matrix, reference(t, p, k, ignore))
    assert cm.result().n_ignored == (int((t == ignore).sum()) if ignore is not None else 0)


def test_noise_rows_between_blocky_rows(kernel: str) -> None:
    """Rows that change almost everywhere (counted directly by the C kernel) between piecewise-constant ones."""
    rng = np.random.default_rng(7)
    k = 9
    t = blocky(rng, (4, 60, 83), k)
    p = perturb(rng, t, k, frac=0.002)
    for rows in (slice(5, 9), slice(30, 31), slice(59, 60)):
        t[:, rows] = rng.integers(0, k, t[:, rows].shape)
        p[:, rows] = rng.integers(0, k, p[:, rows].shape)
    t[1, 10:20, 5:50] = 255
    cm = ConfusionMatrix(k, ignore_index=255)
    for i in range(4):
        cm.add(t[i], p[i])
    cm.add(t, p)  # the batch at once: the same counts again
    np.testing.assert_array_equal(cm.matrix, 2 * reference(t, p, k, 255))
    assert cm.result().n_ignored == 2 * int((t == 255).sum())
    # a bad value deep inside a map: an error, and nothing of that map counted (the C kernel takes its counts back)
    bad_t, bad_p = t[2].copy(), p[2].copy()
    bad_p[33, 17] = k + 1  # a prediction that is no class, at an evaluated pixel
    with pytest.raises(ValueError, match="pred values at evaluated pixels"):
        cm.add(bad_t, bad_p)
    bad_t, bad_p = t[3].copy(), p[3].copy()
    bad_t[58, 80] = k + 2  # a truth value that is neither a class nor the ignore value
    with pytest.raises(ValueError, match="truth values must be class ids"):
        cm.add(bad_t, bad_p)
    np.testing.assert_array_equal(cm.matrix, 2 * reference(t, p, k, 255))
    assert cm.result().n_ignored == 2 * int((t == 255).sum())


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.int8])
def test_other_dtypes_and_negative_ignore(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    t = blocky(rng, (40, 48), 5).astype(dtype)
    p = perturb(rng, t, 5).astype(dtype)
    ign = -1 if np.dtype(dtype).kind == "i" else 300
    t[rng.random(t.shape) < 0.1] = ign
    cm = ConfusionMatrix(5, ignore_index=ign)
    cm.add(t, p)
    np.testing.assert_array_equal(cm.matrix, reference(t, p, 5, ign))
    assert cm.result().n_ignored == int((t == ign).sum())


@pytest.mark.parametrize(("k", "ign"), [(5, 200), (254, 255), (254, None), (3, 0)])
def test_uint8_ignore_values_and_class_counts(k: int, ign: int | None) -> None:
    rng = np.random.default_rng(k)
    t = blocky(rng, (30, 64), k)
    p = perturb(rng, t, k, frac=0.01)
    if ign is not None:
        t[rng.random(t.shape) < 0.05] = ign
    cm = ConfusionMatrix(k, ignore_index=ign)
    cm.add(t, p)
    np.testing.assert_array_equal(cm.matrix, reference(t, p, k, ign))


@pytest.mark.parametrize("ign", [1000, 5])
def test_many_classes_take_the_wide_path(ign: int) -> None:
    rng = np.random.default_rng(4)
    k = 300
    t = rng.integers(0, k, (20, 30))
    p = np.where(rng.random(t.shape) < 0.8, t, rng.integers(0, k, t.shape))
    t[0, :5] = ign
    cm = ConfusionMatrix(k, ignore_index=ign)
    cm.add(t, p)
    np.testing.assert_array_equal(cm.matrix, reference(t, p, k, ign))
    assert cm.result().n_ignored == int((t == ign).sum())
    if ign < k:
        assert math.isnan(cm.result().iou_per_class[ign])


def test_streaming_equals_one_shot_and_result_any_time() -> None:
    rng = np.random.default_rng(5)
    t = blocky(rng, (6, 32, 40), 4)
    p = perturb(rng, t, 4)
    whole = ConfusionMatrix(4)
    whole.add(t, p)
    parts = ConfusionMatrix(4)
    assert math.isnan(parts.result().miou) and parts.result().n_images == 0
    for i in range(6):
        parts.add(t[i], p[i])
        r = parts.result()
        assert r.n_images == i + 1
    np.testing.assert_array_equal(parts.matrix, whole.matrix)
    assert parts.result().miou == whole.result().miou


def test_scores_equal_sklearn() -> None:
    rng = np.random.default_rng(6)
    k = 7
    t = blocky(rng, (4, 40, 56), k - 1)  # class 6 never in the truth
    p = perturb(rng, t, k - 1, frac=0.2)
    p[0, 0, :10] = 6  # ... but predicted a little
    t[1] = np.where(t[1] == 3, 0, t[1])  # keep class 3 in other maps
    p[p == 5] = 4  # class 5 never predicted
    cm = ConfusionMatrix(k)
    cm.add(t, p)
    r = cm.result()
    yt, yp = t.reshape(-1), p.reshape(-1)
    labels = np.arange(k)
    kw: dict[str, Any] = {"labels": labels, "average": None, "zero_division": np.nan}
    iou = skm.jaccard_score(yt, yp, labels=labels, average=None, zero_division=0)  # no 0/0 here: all unions > 0
    np.testing.assert_allclose(r.iou_per_class, iou, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.dice_per_class, skm.f1_score(yt, yp, **kw), rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.accuracy_per_class, skm.recall_score(yt, yp, **kw), rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.precision_per_class, skm.precision_score(yt, yp, **kw), rtol=0, atol=1e-12)
    assert r.pixel_accuracy == pytest.approx(skm.accuracy_score(yt, yp), abs=1e-12)
    np.testing.assert_array_equal(r.confusion_matrix, skm.confusion_matrix(yt, yp, labels=labels))
    assert r.iou_per_class[5] == 0.0 and r.iou_per_class[6] == 0.0  # never predicted / never present: both count
    assert math.isnan(r.accuracy_per_class[6])
    assert r.miou == pytest.approx(float(np.mean(r.iou_per_class)), abs=1e-12)
    freq = r.confusion_matrix.sum(1) / r.confusion_matrix.sum()
    assert r.fw_iou == pytest.approx(float(np.sum(freq * r.iou_per_class)), abs=1e-12)


def test_scores_equal_hotcoco() -> None:
    semantic = pytest.importorskip("hotcoco.semantic")
    rng = np.random.default_rng(7)
    k = 9
    t = blocky(rng, (5, 48, 64), k - 1)  # class 8 absent everywhere: nan, left out of the means
    p = perturb(rng, t, k - 1, frac=0.1)
    t[rng.random(t.shape) < 0.03] = 255
    cm = ConfusionMatrix(k, ignore_index=255)
    ev = semantic.SemanticEval(k, ignore_index=255)
    for i in range(len(t)):
        cm.add(t[i], p[i])
        ev.update(t[i], p[i])
    r, h = cm.result(), ev.results()
    np.testing.assert_array_equal(cm.matrix, ev.confusion().astype(np.int64))
    for mine, theirs in ((r.miou, "mIoU"), (r.fw_iou, "fwIoU"), (r.mean_accuracy, "mAcc"),
                         (r.pixel_accuracy, "aAcc")):
        assert mine == pytest.approx(h[theirs], abs=1e-12), theirs
    assert math.isnan(r.iou_per_class[8]) and math.isnan(r.dice_per_class[8])


def test_edge_cases() -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.add(np.full((4, 5), 255, np.uint8), np.zeros((4, 5), np.uint8))  # all ignored
    r = cm.result()
    assert r.n_pixels == 0 and r.n_ignored == 20 and r.n_images == 1
    for v in (r.miou, r.mean_dice, r.mean_accuracy, r.pixel_accuracy, r.fw_iou):
        assert math.isnan(v)
    cm.add(np.zeros((0, 5), np.uint8), np.zeros((0, 5), np.uint8))  # empty map
    assert cm.result().n_images == 2
    perfect = ConfusionMatrix(3)
    m = np.array([[0, 1, 1], [2, 2, 0]], np.uint8)
    perfect.add(m, m)
    r = perfect.result()
    assert r.miou == r.mean_dice == r.pixel_accuracy == r.fw_iou == r.mean_accuracy == 1.0


def test_ignore_class_inside_range_is_excluded() -> None:
    t = np.array([[0, 0, 1, 1, 2, 2]], np.uint8)
    p = np.array([[0, 2, 1, 1, 2, 0]], np.uint8)
    cm = ConfusionMatrix(3, ignore_index=2)
    cm.add(t, p)
    r = cm.result()
    assert math.isnan(r.iou_per_class[2]) and r.n_ignored == 2
    # class 0: 1 tp, 1 predicted as the ignored class (a miss); class 1 perfect
    assert r.iou_per_class.tolist()[:2] == [0.5, 1.0] and r.miou == 0.75


def test_invalid_values_raise_and_count_nothing(kernel: str) -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match=r"truth values must be class ids 0\.\.2 or the ignore value 255, got 7"):
        cm.add(np.array([[0, 7]], np.uint8), np.array([[0, 1]], np.uint8))
    with pytest.raises(ValueError, match=r"pred values at evaluated pixels must be class ids 0\.\.2, got 1 pixels"):
        cm.add(np.array([[0, 1]], np.uint8), np.array([[0, 9]], np.uint8))
    with pytest.raises(ValueError, match=r"truth values must be class ids 0\.\.2 or the ignore value 255, got -4"):
        cm.add(np.array([[0, -4]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="same shape"):
        cm.add(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match="integer class ids"):
        cm.add(np.zeros((2, 3)), np.zeros((2, 3)))
    cm.add(np.array([[255, 1]], np.uint8), np.array([[9, 1]], np.uint8))  # a bad prediction on an ignored pixel
    assert cm.matrix.sum() == 1 and cm.result().n_ignored == 1
    with pytest.raises(ValueError, match="n_classes"):
        ConfusionMatrix(0)


def test_result_is_frozen_and_serialisable() -> None:
    r = scores_from_confusion([[5, 1, 0], [2, 3, 0], [0, 0, 0]], class_names=["a", "b", "c"])
    assert isinstance(r, SegmentationResult)
    with pytest.raises(AttributeError):
        r.miou = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        r.iou_per_class[0] = 1.0
    d = r.to_dict()
    assert d["per_class"]["iou"][2] is None and d["miou"] == pytest.approx((5 / 8 + 3 / 6) / 2)
    df = r.to_pandas()
    assert df["truth_pixels"].tolist() == [6, 5, 0]
    with pytest.raises(ValueError, match=r"\(K, K\)"):
        scores_from_confusion([[1, 2, 3]])


def test_doctests() -> None:
    failures, tried = doctest.testmod(maslow.metrics.segmentation)
    assert tried > 0 and failures == 0


# -- Dataset level ----------------------------------------------------------------------------------------------


def semantic_dataset(maps: list[np.ndarray], names: list[str], *, crowd_value: int | None = None,
                     ids: list[int] | None = None) -> Dataset:
    """One RLE per class present per image; the class with pixel value crowd_value gets iscrowd."""
    rows: list[tuple[int, int, Any, bool]] = []
    for i, m in enumerate(maps):
        for v in np.unique(m).tolist():
            if v < len(names):
                rows.append((i, v, M.encode(m == v), v == crowd_value))
    classes = tuple(ClassDef(n, kind="semantic", id=None if ids is None else ids[j]) for j, n in enumerate(names))
    h, w = maps[0].shape
    return Dataset(
        LabelSchema(classes, tasks=(Task.SEMANTIC_SEGMENTATION,)),
        Images(path=obj_array([f"{i}.png" for i in range(len(maps))]), width=[w] * len(maps), height=[h] * len(maps)),
        Annotations(image=[r[0] for r in rows], label=[r[1] for r in rows], mask=obj_array([r[2] for r in rows]),
                    iscrowd=[r[3] for r in rows]),
    )


def test_semantic_scores_equal_label_map_counts() -> None:
    rng = np.random.default_rng(8)
    names = ["bg", "road", "car", "void"]
    t = [blocky(rng, (24, 32), 4) for _ in range(3)]
    p = [np.minimum(perturb(rng, m, 3), 2) for m in t]
    truth = semantic_dataset(t, names, crowd_value=3)
    pred = semantic_dataset(p, names[:3])
    r = semantic_scores(truth, pred)
    assert r.class_names == ("bg", "road", "car")
    ref = ConfusionMatrix(3, ignore_index=3)
    for a, b in zip(t, p, strict=True):
        ref.add(a, b)
    np.testing.assert_array_equal(r.confusion_matrix, ref.matrix)
    assert r.n_ignored == sum(int((m == 3).sum()) for m in t) and r.n_images == 3
    assert r.miou == ref.result().miou
    # the same void class chosen by its label-map value instead of crowd flags
    by_id = semantic_scores(semantic_dataset(t, names, ids=[0, 1, 2, 11]), pred, ignore_index=11)
    np.testing.assert_array_equal(by_id.confusion_matrix, ref.matrix)


def test_semantic_scores_unpredicted_pixels_and_unknown_classes() -> None:
    t = [np.array([[0, 0, 1, 1]], np.uint8)]
    truth = semantic_dataset(t, ["a", "b"])
    pred = semantic_dataset([np.array([[0, 9, 2, 1]], np.uint8)], ["a", "b", "other"])  # 9: no mask there
    r = semantic_scores(truth, pred)
    assert r.n_unpredicted_per_class.tolist() == [1, 1]
    assert r.confusion_matrix.tolist() == [[1, 0], [0, 1]]
    assert r.accuracy_per_class.tolist() == [0.5, 0.5] and r.iou_per_class.tolist() == [0.5, 0.5]


def test_semantic_scores_errors() -> None:
    m = [np.array([[0, 1], [1, 0]], np.uint8)]
    truth = semantic_dataset(m, ["a", "b"])
    det = truth.replace(schema=LabelSchema(truth.schema.classes, tasks=(Task.DETECTION,)))
    with pytest.raises(SchemaError, match="truth task must be semantic_segmentation"):
        semantic_scores(det, truth)
    with pytest.raises(SchemaError, match="ignore_index must be the id of a truth class"):
        semantic_scores(truth, truth, ignore_index=42)
    a = truth.annotations
    overlap = truth.replace(annotations=a.with_columns(mask=obj_array([M.encode(np.ones((2, 2), bool))] * 2)))
    with pytest.raises(InvalidDatasetError, match="must not overlap"):
        semantic_scores(truth, overlap)
    small = truth.replace(annotations=a.with_columns(mask=obj_array([M.encode(np.ones((1, 2), bool))] * 2)))
    with pytest.raises(InvalidDatasetError, match=r"size must be the image's \[2, 2\]"):
        semantic_scores(truth, small)
    other = semantic_dataset(m + m, ["a", "b"])
    with pytest.raises(InvalidDatasetError, match="images table of truth"):
        semantic_scores(truth, other)


def test_camvid_shifted_prediction() -> None:
    from PIL import Image

    from maslow.io import read_masks

    folder = shared_path("camvid_val", "annotations")
    files = sorted(folder.glob("*.png"))[:12]
    maps = [np.asarray(Image.open(f)) for f in files]
    pred_maps = [np.minimum(np.roll(m, (3, 4), axis=(0, 1)), 10) for m in maps]  # 11 is void: never predicted
    cm = ConfusionMatrix(11, ignore_index=11)
    for a, b in zip(maps, pred_maps, strict=True):
        cm.add(a, b)
    yt = np.concatenate([m.reshape(-1) for m in maps])
    yp = np.concatenate([m.reshape(-1) for m in pred_maps])
    keep = yt != 11
    np.testing.assert_array_equal(cm.matrix, skm.confusion_matrix(yt[keep], yp[keep], labels=np.arange(11)))
    r = cm.result()
    assert 0.5 < r.miou < 0.95 and r.pixel_accuracy > 0.8
    # the Dataset path on the same maps, read as maslow reads them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = read_masks(folder.parent / "annotations", ignore_index=11)
    truth = truth.select_images(np.arange(12))
    pred = semantic_dataset(pred_maps, [c.name for c in truth.schema.classes[:11]])
    pred = pred.replace(images=truth.images)
    rd = semantic_scores(truth, pred)
    np.testing.assert_array_equal(rd.confusion_matrix, r.confusion_matrix)
    assert rd.miou == r.miou and rd.n_ignored == int((yt == 11).sum())


# -- randomized comparison with a plain numpy reference ---------------------------------------------------------


def reference_scores(pairs: list[tuple[np.ndarray, np.ndarray]], k: int, ignore: int | None) -> dict[str, Any]:
    """The scores the module docstring defines, from a bincount confusion matrix of the non-ignored pixels."""
    cm = sum((reference(t, p, k, ignore) for t, p in pairs), np.zeros((k, k), np.int64))
    excluded = [ignore] if ignore is not None and 0 <= ignore < k else []
    tp, truth, pred = np.diag(cm).astype(float), cm.sum(1).astype(float), cm.sum(0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = {"iou_per_class": tp / (truth + pred - tp), "dice_per_class": 2 * tp / (truth + pred),
               "accuracy_per_class": tp / truth, "precision_per_class": tp / pred}
    for a in per.values():
        a[excluded] = np.nan
    total = truth.sum()
    present = truth > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nanmean of all-nan: nan
        means = {"miou": np.nanmean(per["iou_per_class"]), "mean_dice": np.nanmean(per["dice_per_class"]),
                 "mean_accuracy": np.nanmean(per["accuracy_per_class"])}
    return {"confusion_matrix": cm, **per, **means,
            "pixel_accuracy": tp.sum() / total if total else np.nan,
            "fw_iou": np.sum(truth[present] / total * per["iou_per_class"][present]) if total else np.nan,
            "n_pixels": total,
            "n_ignored": sum(int((t == ignore).sum()) for t, _ in pairs) if ignore is not None else 0}


def same(a: object, b: object) -> bool:
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


@pytest.mark.parametrize("seed", range(8))
def test_random_maps_of_different_sizes_equal_numpy_reference(seed: int, kernel: str) -> None:
    rng = np.random.default_rng(400 + seed)
    for trial in range(12):
        k = int(rng.choice([1, 2, 3, 5, 21, 254, 300]))
        ignore = [None, 255, int(rng.integers(0, k)), -1, 200][trial % 5]
        dtype: Any = [np.uint8, np.int64, np.int32, np.uint16, np.int16][int(rng.integers(0, 5))]
        if k > 254 and dtype == np.uint8:
            dtype = np.int32
        if ignore == -1 and dtype in (np.uint8, np.uint16):
            dtype = np.int16
        if ignore == 200 and k > 200:
            ignore = None
        cm = ConfusionMatrix(k, ignore_index=ignore)
        pairs = []
        for _ in range(int(rng.integers(1, 4))):  # images of different sizes, some empty, some batches
            shape: tuple[int, ...] = (int(rng.integers(0, 40)), int(rng.integers(1, 40)))
            if rng.random() < 0.2:
                shape = (int(rng.integers(1, 3)), *shape)
            t = blocky(rng, shape, k, block=int(rng.integers(1, 9))).astype(np.int64) if k <= 255 else \
                rng.integers(0, k, shape)
            p = np.where(rng.random(shape) < 0.3, rng.integers(0, k, shape), t)  # every class, the ignored one too
            if ignore is not None:
                void = rng.random(shape) < 0.1
                t = np.where(void, ignore, t)
                p = np.where(void & (rng.random(shape) < 0.5), ignore, p)  # the ignore value predicted where ignored
            t, p = t.astype(dtype), p.astype(dtype)
            cm.add(t, p)
            pairs.append((t, p))
        r, ref = cm.result(), reference_scores(pairs, k, ignore)
        for name, v in ref.items():
            assert same(getattr(r, name), v), (trial, k, ignore, dtype, name, getattr(r, name), v)
        assert r.n_images == sum(math.prod(t.shape[:-2]) for t, _ in pairs)


def test_ignore_value_predicted_at_an_evaluated_pixel() -> None:
    t = np.array([[0, 1, 255], [1, 1, 0]], np.uint8)
    cm = ConfusionMatrix(2, ignore_index=255)
    cm.add(t, np.array([[0, 1, 255], [1, 0, 0]], np.uint8))  # 255 predicted where the truth is ignored: fine
    assert cm.result().n_pixels == 5 and cm.result().pixel_accuracy == 0.8
    with pytest.raises(ValueError, match=r"pred values at evaluated pixels must be class ids 0\.\.1, got 1 pixels"):
        cm.add(t, np.array([[255, 1, 0], [1, 1, 0]], np.uint8))  # ... but not where the truth is evaluated
    assert cm.result().n_pixels == 5  # nothing counted
    inside = ConfusionMatrix(3, ignore_index=2)  # an ignore class inside 0..K-1: predicting it is a miss
    inside.add(np.array([[0, 1, 2]]), np.array([[2, 1, 0]]))
    r = inside.result()
    assert r.n_pixels == 2 and r.n_ignored == 1 and r.pixel_accuracy == 0.5
    assert r.iou_per_class.tolist()[:2] == [0.0, 1.0] and r.miou == 0.5  # the truth-2 pixel predicted 0: ignored


def test_scores_from_confusion_excluded_rows_are_not_evaluated() -> None:
    # regression: the truth pixels (row) of an excluded class counted in n_pixels, pixel accuracy and fwIoU, and
    # as false positives of the classes they were predicted as; now they are ignored, as ConfusionMatrix does
    full = np.array([[3, 1, 0], [0, 4, 1], [2, 0, 5]])
    r = scores_from_confusion(full, excluded=[2], n_ignored=1)
    dropped = full.copy()
    dropped[2] = 0
    t = np.array([[0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]])  # pixels whose confusion matrix is `full`
    p = np.array([[0, 0, 0, 1, 1, 1, 1, 1, 2, 0, 0, 2, 2, 2, 2, 2]])
    ref = reference_scores([(t, p)], 3, 2)
    np.testing.assert_array_equal(ref["confusion_matrix"], dropped)
    for name, v in ref.items():
        if name != "n_ignored":
            assert same(getattr(r, name), v), name
    assert r.n_pixels == 9 and r.n_ignored == 1 + 7 and r.pixel_accuracy == 7 / 9
    assert r.iou_per_class[0] == 0.75  # was 0.5: the two truth-2 pixels predicted 0 were false positives
