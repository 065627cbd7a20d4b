"""Semantic segmentation from class masks, streamed (``find_label_issues(truth, pred)``): the same rows, scores and
order as the in-memory computation it replaced (every image's two label maps held at once, kept here as the
reference), in a fraction of the memory of the maps; ``reference=`` scores a part as the whole run does, and is
refused with per-pixel probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.quality import QualityIssues, find_label_issues
from tests.helpers import traced_peak

FILL = 255


# -- the in-memory computation the streamed one replaced (maslow before: consensus._semantic + region_evidence) --


def _maps(ds: Dataset, code: np.ndarray) -> list[np.ndarray]:
    """Every image's label map (``code[label]``; crowd regions and unlabelled pixels ``FILL``)."""
    a = ds.annotations
    out = []
    for i in range(ds.n_images):
        m = np.full((int(ds.images.height[i]), int(ds.images.width[i])), FILL, np.uint8)
        for r in np.flatnonzero(a.image == i).tolist():
            m[M.decode(a.mask[r]).astype(bool)] = FILL if a.iscrowd[r] else code[a.label[r]]
        out.append(m)
    return out


def _counts(tm: np.ndarray, pm: np.ndarray, k: int) -> np.ndarray:
    ok = (tm != FILL) & (pm != FILL)
    return np.bincount(tm[ok].astype(np.int64) * k + pm[ok], minlength=k * k).reshape(k, k).astype(np.float64)


def _bbox(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _in_memory(truth: Dataset, pred: Dataset, void: np.ndarray, min_score: float,
               ref: tuple[Dataset, Dataset] | None = None) -> list[tuple]:
    """(image, annotation, type, score, box, label) rows, ranked, as maslow computed them before, with every map
    in memory. ``ref``: the usual confusion counted over these images instead (an image of the same path left out)."""
    k = len(truth.schema.names)
    code = np.where(void, FILL, np.arange(k))

    def pred_code(p: Dataset) -> np.ndarray:
        pos = {n: j for j, n in enumerate(truth.schema.names)}
        r = np.asarray([pos.get(n, -1) for n in p.schema.names])
        return np.where((r < 0) | void[np.maximum(r, 0)], FILL, r)

    t_maps, p_maps = _maps(truth, code), _maps(pred, pred_code(pred))
    counts = [_counts(tm, pm, k) for tm, pm in zip(t_maps, p_maps, strict=True)]
    total = np.sum(counts, axis=0) if counts else np.zeros((k, k))
    own = counts
    if ref is not None:
        r_counts = [_counts(tm, pm, k) for tm, pm in zip(_maps(ref[0], code), _maps(ref[1], pred_code(ref[1])),
                                                         strict=True)]
        total = np.sum(r_counts, axis=0)
        at = {p: c for p, c in zip(ref[0].images.path.tolist(), r_counts, strict=True)}
        own = [at.get(p, np.zeros((k, k))) for p in truth.images.path.tolist()]
    a = truth.annotations
    rows: dict[str, list] = {t: [] for t in ("wrong_class", "extra", "missing")}
    for i, (tm, pm) in enumerate(zip(t_maps, p_maps, strict=True)):
        t_rows = {int(a.label[r]): r for r in np.flatnonzero(a.image == i).tolist()
                  if not a.iscrowd[r] and not void[a.label[r]]}
        cnt = counts[i]
        rest = total - own[i]
        rate = rest / np.maximum(rest.sum(axis=1, keepdims=True), 1.0)
        n_c = cnt.sum(axis=1)
        expected = n_c[:, None] * rate
        kappa = 1e-3 * tm.size
        sc = np.clip(cnt - expected, 0.0, None) / (cnt + kappa)
        np.fill_diagonal(sc, 0.0)
        for c, row in t_rows.items():
            if not n_c[c]:
                continue
            g = int(np.argmax(sc[c]))
            if sc[c, g] <= 0:
                continue
            t = "extra" if 1.0 - cnt[c, c] / n_c[c] >= 0.999 and g not in t_rows else "wrong_class"
            rows[t].append((i, row, t, float(sc[c, g]), _bbox((tm == c) & (pm == g)), g))
        for g in np.flatnonzero(cnt.sum(axis=0) > 0).tolist():
            d, e = float(cnt[:, g].sum()), float(expected[:, g].sum())
            if g not in t_rows and d > e:
                rows["missing"].append((i, -1, "missing", (d - e) / (d + kappa), _bbox((pm == g) & (tm != FILL)), g))
    found = [r for t in rows for r in rows[t] if r[3] >= max(min_score, 1e-12)]
    order = np.argsort(-np.asarray([r[3] for r in found]), kind="stable")
    return [found[j] for j in order.tolist()]


def _rows(issues: QualityIssues) -> list[tuple]:
    return list(zip(issues.image.tolist(), issues.annotation.tolist(), issues.type.tolist(), issues.score.tolist(),
                    issues.box.tolist(), issues.label.tolist(), strict=True))


# -- random label maps ------------------------------------------------------------------------------------------


def _side(maps: list[np.ndarray | None], crowd: set[int], rng: np.random.Generator, split: bool) -> Annotations:
    img, lab, mask, iscrowd = [], [], [], []
    for i, m in enumerate(maps):
        for c in [] if m is None else np.unique(m[m != FILL]).tolist():
            whole = m == c
            below = np.arange(m.shape[0])[:, None] > np.median(np.nonzero(whole)[0])
            parts = [whole & ~below, whole & below] if split and rng.random() < 0.3 else [whole]  # 2 masks of c
            for p in parts:
                if p.any():
                    img.append(i), lab.append(c), mask.append(M.encode(p)), iscrowd.append(c in crowd)
    return Annotations(image=np.asarray(img, np.int64), label=np.asarray(lab, np.int64), mask=obj_array(mask),
                       iscrowd=np.asarray(iscrowd, bool))


def _case(seed: int) -> tuple[Dataset, Dataset, int | None]:
    """Blocky truth maps of 2 to 6 classes (a crowd class, unlabelled pixels, images without truth or without
    predictions, a class in two masks), a noisy model (its classes in another order, a crowd region, pixels it
    leaves out), images of different sizes, and maybe an ``ignore_index``."""
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 7)), int(rng.integers(1, 14))
    names = [f"c{j}" for j in range(k)]
    sizes = [(int(rng.integers(5, 30)), int(rng.integers(5, 40))) for _ in range(n)]
    t_maps: list[np.ndarray | None] = []
    p_maps: list[np.ndarray | None] = []
    for h, w in sizes:
        t = np.kron(rng.integers(0, k, (h // 4 + 1, w // 4 + 1)), np.ones((4, 4), np.int64))[:h, :w]
        if rng.random() < 0.3:
            t[rng.random((h, w)) < 0.1] = FILL
        p = np.where((rng.random((h, w)) < rng.uniform(0, 0.5)) | (t == FILL), rng.integers(0, k, (h, w)), t)
        if rng.random() < 0.2:
            p[rng.random((h, w)) < 0.2] = FILL
        t_maps.append(None if rng.random() < 0.1 else t)
        p_maps.append(None if rng.random() < 0.1 else p)
    images = Images(path=obj_array([f"im_{i:03d}.png" for i in range(n)]), width=np.asarray([w for _, w in sizes]),
                    height=np.asarray([h for h, _ in sizes]))
    truth = Dataset(LabelSchema.from_names(names, task=Task.SEMANTIC_SEGMENTATION), images,
                    _side(t_maps, {k - 1} if rng.random() < 0.3 else set(), rng, True))
    perm = rng.permutation(k) if rng.random() < 0.5 else np.arange(k)
    inv = np.r_[np.argsort(perm), np.zeros(FILL - k, np.int64), FILL]  # truth class -> pred schema row
    p_maps = [None if m is None else inv[m] for m in p_maps]
    pred = Dataset(LabelSchema.from_names([names[j] for j in perm], task=Task.SEMANTIC_SEGMENTATION), images,
                   _side(p_maps, {int(inv[0])} if rng.random() < 0.2 else set(), rng, False).with_columns(
                       source="model"))
    ids = [c.id for c in truth.schema.classes]
    return truth, pred, ids[int(rng.integers(0, k))] if rng.random() < 0.3 else None


def _void(truth: Dataset, ignore_index: int | None) -> np.ndarray:
    void = truth.crowd_only_classes().copy()
    if ignore_index is not None:
        void[[c.id for c in truth.schema.classes].index(ignore_index)] = True
    return void


@pytest.mark.parametrize("seed", range(60))
def test_streamed_rows_equal_the_in_memory_computation(seed: int) -> None:
    truth, pred, ignore = _case(seed)
    want = _in_memory(truth, pred, _void(truth, ignore), 0.0)
    assert _rows(find_label_issues(truth, pred, min_score=0.0, ignore_index=ignore)) == want  # exact, same order
    high = [r for r in want if r[3] >= 0.3]
    assert _rows(find_label_issues(truth, pred, min_score=0.3, ignore_index=ignore)) == high


def _big(n: int = 60, h: int = 120, w: int = 160) -> tuple[Dataset, Dataset, int]:
    """A road, a car and a tree per image; the model misses part of the car and sometimes sees a tree."""
    rng = np.random.default_rng(0)
    t_maps, p_maps = [], []
    for _ in range(n):
        t = np.zeros((h, w), np.int64)
        y, x = rng.integers(10, h - 40), rng.integers(10, w - 50)
        t[y:y + 30, x:x + 40] = 1
        t[:20, rng.integers(0, w - 30):][:, :30] = 2
        p = t.copy()
        p[y:y + 30, x:x + rng.integers(5, 15)] = 0
        if rng.random() < 0.3:
            p[h - 20:, :25] = 2
        t_maps.append(t), p_maps.append(p)
    images = Images(path=obj_array([f"{i}.png" for i in range(n)]), width=np.full(n, w), height=np.full(n, h))
    schema = LabelSchema.from_names(["road", "car", "tree"], task=Task.SEMANTIC_SEGMENTATION)
    rng2 = np.random.default_rng(1)
    truth = Dataset(schema, images, _side(list(t_maps), set(), rng2, False))
    pred = Dataset(schema, images, _side(list(p_maps), set(), rng2, False).with_columns(source="model"))
    return truth, pred, 2 * n * h * w  # bytes of the two uint8 maps of every image


def test_memory_is_a_few_images_maps_not_all_of_them() -> None:
    truth, pred, map_bytes = _big(200)
    want = find_label_issues(truth, pred)  # also warms the datasets' cached columns
    assert _rows(want) == _in_memory(truth, pred, np.zeros(3, bool), 0.05) and len(want)
    peak = traced_peak(lambda: find_label_issues(truth, pred))
    # before: both maps of every image held at once (peak above map_bytes); now one image's, and its counts
    assert peak < map_bytes / 10, (peak, map_bytes)


def test_reference_scores_a_part_as_the_whole_run() -> None:
    # before: reference was ignored, so a part's usual confusion came from the part alone
    truth, pred, _ = _big(24)
    whole = find_label_issues(truth, pred, min_score=0.0)
    got: list[tuple] = []
    for idx in (np.arange(0, 24, 3), np.setdiff1d(np.arange(24), np.arange(0, 24, 3))):
        part = find_label_issues(truth.select_images(idx), pred.select_images(idx), min_score=0.0,
                                 reference=(truth, pred))
        rows = np.flatnonzero(np.isin(truth.annotations.image, idx))  # part annotation row -> whole row
        got += [(int(idx[i]), int(rows[a]) if a >= 0 else -1, t, s, b, g) for i, a, t, s, b, g in _rows(part)]
        alone = find_label_issues(truth.select_images(idx), pred.select_images(idx), min_score=0.0)
        assert _rows(alone) != _rows(part)  # the part's own confusion is another statistic
    assert sorted(got, key=lambda r: (r[0], r[2], r[1])) == sorted(_rows(whole), key=lambda r: (r[0], r[2], r[1]))


def test_reference_of_other_images_is_not_left_out() -> None:
    # a held-out reference set (no image of the part): its whole confusion is the usual one
    truth, pred, _ = _big(24)
    part, rest = np.arange(8), np.arange(8, 24)
    t, p = truth.select_images(part), pred.select_images(part)
    ref = (truth.select_images(rest), pred.select_images(rest))
    got = _rows(find_label_issues(t, p, min_score=0.0, reference=ref))
    assert got == _in_memory(t, p, np.zeros(3, bool), 0.0, ref=ref) and got


def test_reference_void_classes_are_the_whole_sets() -> None:
    # class 'tree' is a crowd region in the part only: void for the part alone, scored in the whole run
    truth, pred, _ = _big(12)
    a = truth.annotations
    crowd = (a.label == 2) & (a.image < 4)
    truth = truth.replace(annotations=a.with_columns(iscrowd=crowd))
    idx = np.arange(4)
    part_t, part_p = truth.select_images(idx), pred.select_images(idx)
    assert part_t.crowd_only_classes()[2] and not truth.crowd_only_classes()[2]
    got = _rows(find_label_issues(part_t, part_p, min_score=0.0, reference=(truth, pred)))
    whole = [r for r in _rows(find_label_issues(truth, pred, min_score=0.0)) if r[0] < 4]
    assert got == whole and any(r[5] == 2 for r in whole)  # the model's trees still count as trees


def test_reference_is_checked_and_refused_with_probabilities() -> None:
    truth, pred, _ = _big(4)
    other = truth.replace(schema=LabelSchema.from_names(["road", "tree", "car"], task=Task.SEMANTIC_SEGMENTATION))
    with pytest.raises(InvalidDatasetError, match="reference truth: must have the truth's classes"):
        find_label_issues(truth, pred, reference=(other, pred))
    with pytest.raises(InvalidDatasetError, match=r"reference pred\.images"):
        find_label_issues(truth, pred, reference=(truth, pred.select_images(np.arange(2))))
    probs = [np.full((3, 120, 160), 1 / 3, np.float32)] * 4
    # before: reference was silently ignored with pixel_probs
    with pytest.raises(InvalidDatasetError, match=r"reference: must be None with pixel_probs"):
        find_label_issues(truth, truth, pixel_probs=probs, reference=(truth, pred))
