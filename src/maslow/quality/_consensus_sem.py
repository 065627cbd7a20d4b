"""Semantic segmentation label errors from per-pixel class probabilities (``find_label_issues(..., pixel_probs=)``).

Glossary:

- *probabilities* of an image: a (K, H, W) or (H, W, K) float array (float16, float32 or float64) of the model's
  softmax, one channel per class: channel ``j`` is the ``j``-th class of the truth schema (``truth.schema.names``),
  or, with one channel fewer per void class, the ``j``-th class that is not void. (K, H, W) is read first when
  both fit. Every value in [0, 1], each pixel's channels summing to 1 (within 0.01); NaN, infinity, logits
  (not summing to 1) or another image size or class count are refused, naming the file and the first pixel.
- *void* classes: a class whose truth annotations are all crowd regions (the ignore value of label maps, which
  ``read_masks`` marks so) and the class of label-map value ``ignore_index``. Truth pixels of a void class are not
  scored; a pixel the model gives to a void class is neither an error nor evidence (left out of every count), and
  the other classes' probabilities are renormalised without the void channels' mass.
- *probability files* (``read_pixel_probs``): one ``.npy`` (or ``.npz`` holding one array, or an array named
  ``probs``) per image, named after the image: its path relative to the dataset's root with the suffix replaced
  (``0016E5_07959.png`` -> ``0016E5_07959.npy``; ``seq/0001.jpg`` -> ``seq/0001.npy``), else its stem alone when no
  other image has it. Read one image at a time (a 1,000-image 512 x 512 x 21 float32 set is 22 GB).

Scoring, per connected region (8-neighbour) of truth-``c`` pixels whose most probable class is another, ``g``:
each pixel's evidence is ``1 - p_c``, the model's probability that its label is wrong (``p`` renormalised without
void classes). The model's usual confusion at each confidence, ``R[c, g, b]``, is the share of truth-``c`` pixels of
the other images (each image left out of its own count) that it labels ``g`` with ``p_c`` at most the level ``b``
(8 bins per decade from 1e-6). For a pixel at level ``b``, the image's ``D`` pixels of ``(c, g)`` at most that
level are compared with the ``E = n_c * R[c, g, b]`` expected (``n_c``: the image's scored truth-``c`` pixels);
``u = max(0, D - E) / D`` is the share its usual confusion does not explain. The region scores
``sum(evidence * u) / (n + kappa)``: the mean over its ``n`` pixels of the model's probability that the label is
wrong, less what its usual confusion at that confidence explains, shrunk for a handful of pixels (``kappa`` = 0.1%
of the image's pixels). A confident contradiction the model makes in every image (a pole's edges called
"building") is explained; one it makes nowhere else, or only unsure, is not. The usual confusion is counted twice:
the second time without the pixels of the regions the first count scores 0.5 and more (each weighted by that
score), so that the label errors of other images (the same erased car) do not explain this one's. Types:
``missing`` when ``g`` is not in the image's truth (annotation -1; the class to add is ``g``), ``extra`` when the
region is the whole truth-``c`` area as well, else ``wrong_class``; the box is the region's.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import FormatError, InvalidDatasetError
from maslow.quality.issues import QualityIssues

#: bins of ``p_c`` per decade, and the lowest decade (probabilities below 1e-6 share the first bin)
_PER_DECADE, _DECADES = 8, 6
_NB = _PER_DECADE * _DECADES
#: pseudo-count of pixels, as a share of the image's pixels, that a region's evidence is shrunk by
_PIXEL_PRIOR = 1e-3
#: first-round score from which a region's pixels are taken out of the usual confusion (summarize's threshold)
_TAKEN = 0.5
_ROUNDS = 2
#: how far a pixel's probabilities may sum from 1 (float16 rounding; logits are far off)
_SUM_TOL = 1e-2
_SUFFIXES = (".npy", ".npz")


class ProbsFolder(Sequence[np.ndarray]):
    """Per-image probability files of a folder, read one at a time (``read_pixel_probs``).

    ``probs[i]`` reads the array of image row ``i`` (FormatError for an image without a file: one with nothing to
    score); ``probs.source(i)`` is its file.
    """

    def __init__(self, folder: Path, files: list[Path | None]) -> None:
        self.folder = folder
        self.files = tuple(files)

    def __len__(self) -> int:
        return len(self.files)

    @overload
    def __getitem__(self, i: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[np.ndarray]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        f = self.files[i]
        if f is None:
            raise FormatError(f"image row {i}: has no probability file", path=self.folder)
        return _load(f)

    def source(self, i: int) -> str:
        return str(self.files[i]) if self.files[i] is not None else f"{self.folder} (image row {i})"


def _load(f: Path) -> np.ndarray:
    try:
        if f.suffix.lower() == ".npz":
            with np.load(f, allow_pickle=False) as z:
                keys = list(z.keys())
                if "probs" in keys:
                    return np.asarray(z["probs"])
                if len(keys) != 1:
                    raise FormatError(f"an .npz file must hold one array or one named 'probs', got {keys}", path=f)
                return np.asarray(z[keys[0]])
        return np.asarray(np.load(f, allow_pickle=False))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"must be a numpy .npy/.npz array file, got {e}", path=f) from None


def read_pixel_probs(folder: str | Path, *, like: Dataset) -> ProbsFolder:
    """The probability files of ``folder`` for the images of ``like`` (see the module glossary for names).

    Args:
        folder: one ``.npy``/``.npz`` per image (searched recursively).
        like: the ground truth whose images the files belong to.

    Returns:
        ProbsFolder, a sequence with one entry per image row of ``like``, read when indexed.

    Raises:
        FormatError: not a folder, a file of no image of ``like`` (named), or an image with truth to score and no
            file (the first named, with the count).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FormatError("must be a folder of .npy/.npz probability files, one per image", path=root)
    found = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
             if p.is_file() and p.suffix.lower() in _SUFFIXES}
    by_key: dict[str, Path] = {}
    for rel, p in found.items():
        key = rel.rsplit(".", 1)[0]
        if key in by_key:
            raise FormatError(f"one probability file per image, got {by_key[key].name} and {p.name}", path=p)
        by_key[key] = p
    stems: dict[str, int] = {}
    paths = [str(x).split("#", 1)[0] for x in like.images.path.tolist()]
    for x in paths:
        stems[Path(x).stem] = stems.get(Path(x).stem, 0) + 1
    files: list[Path | None] = []
    used: set[str] = set()
    for x in paths:
        key = Path(x).with_suffix("").as_posix()
        stem = Path(x).stem
        if key not in by_key and stems[stem] == 1 and stem in by_key:
            key = stem
        files.append(by_key.get(key))
        if key in by_key:
            used.add(key)
    unknown = sorted(set(by_key) - used)
    if unknown:
        raise FormatError(f"every probability file must be named after an image of the ground truth (its path or "
                          f"stem, suffix .npy/.npz), got {by_key[unknown[0]].relative_to(root).as_posix()!r} "
                          f"({len(unknown)} such files)", path=root)
    scored = _scored_images(like)
    lacking = [i for i in np.flatnonzero(scored).tolist() if files[i] is None]
    if lacking:
        i = lacking[0]
        raise FormatError(f"every image with labels must have a probability file, got none for image "
                          f"{paths[i]!r} (expected {Path(paths[i]).with_suffix('.npy').as_posix()!r}; "
                          f"{len(lacking)} such images)", path=root)
    return ProbsFolder(root, files)


def _scored_images(truth: Dataset) -> BoolArray:
    a = truth.annotations
    out = np.zeros(truth.n_images, bool)
    assert a.iscrowd is not None
    out[a.image[~np.asarray(a.iscrowd)]] = True
    return out


def void_classes(truth: Dataset, ignore_index: int | None) -> BoolArray:
    """(K,) the void classes: crowd-only classes, and the class of label-map value ``ignore_index``."""
    void = truth.crowd_only_classes().copy()
    if ignore_index is not None:
        ids = [c.id for c in truth.schema.classes]
        if ignore_index not in ids:
            raise InvalidDatasetError(f"ignore_index must be the label-map value of a truth class "
                                      f"({sorted(i for i in ids if i is not None)}), got {ignore_index}")
        void[ids.index(ignore_index)] = True
    return np.asarray(void, bool)


def _fail(where: str, path: str | None, msg: str) -> Exception:
    return FormatError(msg, path=path) if path is not None else InvalidDatasetError(f"{where}: {msg}")


def check_probs(arr: Any, *, h: int, w: int, channels: Sequence[int], where: str,
                path: str | None = None) -> FloatArray:
    """(C, h, w) float32 probabilities of one image, checked (see the module glossary).

    Raises:
        FormatError (``path`` given) or InvalidDatasetError: wrong shape, class count, dtype or values.
    """
    a = np.asarray(arr)
    want = " or ".join(str(c) for c in dict.fromkeys(channels))
    if a.ndim != 3:
        raise _fail(where, path, f"probabilities must be ({want}, {h}, {w}) or ({h}, {w}, {want}), got shape "
                                 f"{a.shape}")
    if a.shape[1:] == (h, w) and a.shape[0] in channels:
        p = a
    elif a.shape[:2] == (h, w) and a.shape[2] in channels:
        p = np.moveaxis(a, 2, 0)
    else:
        raise _fail(where, path, f"probabilities must be ({want}, {h}, {w}) or ({h}, {w}, {want}) (classes, the "
                                 f"image's height and width), got shape {a.shape}")
    if not np.issubdtype(p.dtype, np.floating):
        raise _fail(where, path, f"probabilities must be floats (float16/32/64), got {p.dtype}")
    p = np.ascontiguousarray(p, dtype=np.float32)
    bad = ~np.isfinite(p).all(axis=0)
    if bad.any():
        y, x = np.argwhere(bad)[0].tolist()
        raise _fail(where, path, f"pixel (row {y}, col {x}): probabilities must be finite numbers, got "
                                 f"{p[:, y, x].tolist()[:8]} ({int(bad.sum())} pixels)")
    bad = (p.min(axis=0) < -_SUM_TOL) | (p.max(axis=0) > 1 + _SUM_TOL) | (np.abs(p.sum(axis=0) - 1) > _SUM_TOL)
    if bad.any():
        y, x = np.argwhere(bad)[0].tolist()
        raise _fail(where, path, f"pixel (row {y}, col {x}): probabilities must be in [0, 1] and sum to 1 over the "
                                 f"classes, got sum {float(p[:, y, x].sum()):.4g} ({int(bad.sum())} pixels); apply a "
                                 "softmax to logits")
    return p


@dataclass(frozen=True)
class ProbRegions:
    """One row per scored region (see the module docstring)."""

    image: IntArray
    label: IntArray  # truth class of the region
    annotation: IntArray  # its truth mask row, -1 for missing
    type: list[str]
    score: FloatArray
    suggested: IntArray
    box: FloatArray  # (n, 4) xyxy of the region
    size: IntArray  # its pixels
    explained: FloatArray  # how many of them the model's usual confusion explains
    label_prob: FloatArray  # mean probability the model gives the truth class over the region


class _Found:
    """What the pass over the images keeps: the regions that can score ``min_score``, and the counts they need.

    Region ``r`` has ``image``, ``c``, ``n`` pixels, ``box``, ``mean_p`` (mean ``p_c``), ``kappa``; its pixels are
    summarised per code (suggested class ``g``, level ``b``) as entries ``e_*``: region, ``g``, ``b``, pixels and
    evidence summed. ``own[(i, c, g)]`` is image ``i``'s count of ``(c, g)`` pixels per level, ``n_own[i]`` its
    scored pixels per class, ``total`` the counts of every image.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.total = np.zeros((k, k, _NB))
        self.own: dict[tuple[int, int, int], FloatArray] = {}
        self.n_own: dict[int, FloatArray] = {}
        self.rows: dict[tuple[int, int], int] = {}
        self.present: dict[int, set[int]] = {}
        self.reg: dict[str, list[Any]] = {f: [] for f in ("image", "c", "n", "box", "mean_p", "kappa")}
        self.ent: dict[str, list[np.ndarray]] = {f: [] for f in ("region", "g", "b", "count", "wsum")}
        self.n_regions = 0


def _image_regions(found: _Found, i: int, t: np.ndarray, p: FloatArray, cls: IntArray, void: BoolArray,
                   fill: int, min_score: float) -> bool:
    """Count image ``i`` (truth map ``t``, probabilities ``p`` of the classes ``cls``) into ``found``; True when a
    region of it was kept."""
    from scipy import ndimage

    k = found.k
    h, w = t.shape
    chan_of = np.zeros(k, np.int64)
    chan_of[cls] = np.arange(len(cls))
    arg = cls[p.argmax(axis=0)]
    keep = (t != fill) & ~void[arg]
    tc = np.where(keep, t, 0).astype(np.int64)
    py = np.take_along_axis(p, chan_of[tc][None], axis=0)[0]
    vch = void[cls]
    if vch.any():  # the classes' probabilities without the void mass
        py = py / np.maximum(1.0 - p[vch].sum(axis=0), 1e-12)
    py = np.clip(py, 0.0, 1.0)
    b = np.clip(((np.log10(np.maximum(py, 10.0 ** -_DECADES)) + _DECADES) * _PER_DECADE).astype(np.int64), 0,
                _NB - 1)
    counts = np.bincount(((tc * k + arg) * _NB + b)[keep], minlength=k * k * _NB).reshape(k, k, _NB)
    found.total += counts
    ev = 1.0 - py
    kappa = _PIXEL_PRIOR * h * w
    dis = keep & (arg != tc)
    kept = False
    spans = ndimage.find_objects(np.where(dis, tc + 1, 0))
    for c, span in enumerate(spans):
        if span is None:
            continue
        y0, x0 = span[0].start, span[1].start
        here = dis[span] & (tc[span] == c)
        lab, n_lab = ndimage.label(here, structure=np.ones((3, 3), bool))
        flat = lab.ravel()
        e_here, p_here = ev[span].ravel(), py[span].ravel()
        size = np.bincount(flat, minlength=n_lab + 1)
        wsum = np.bincount(flat, weights=e_here, minlength=n_lab + 1)
        ok = np.flatnonzero((wsum / (size + kappa) >= min_score) & (wsum > 0))
        ok = ok[ok > 0]
        if not len(ok):
            continue
        new_id = np.full(n_lab + 1, -1, np.int64)
        new_id[ok] = found.n_regions + np.arange(len(ok))
        on = new_id[flat] >= 0
        g_on = arg[span].ravel()[on]
        key = (new_id[flat[on]] * k + g_on) * _NB + b[span].ravel()[on]
        uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        found.ent["region"].append(uniq // (k * _NB))
        found.ent["g"].append(uniq // _NB % k)
        found.ent["b"].append(uniq % _NB)
        found.ent["count"].append(cnt.astype(np.float64))
        found.ent["wsum"].append(np.bincount(inv, weights=e_here[on]))
        psum = np.bincount(flat, weights=p_here, minlength=n_lab + 1)
        boxes = ndimage.find_objects(lab)
        for j in ok.tolist():
            sl = boxes[j - 1]
            assert sl is not None
            found.reg["image"].append(i)
            found.reg["c"].append(c)
            found.reg["n"].append(int(size[j]))
            found.reg["box"].append([float(x0 + sl[1].start), float(y0 + sl[0].start), float(x0 + sl[1].stop),
                                     float(y0 + sl[0].stop)])
            found.reg["mean_p"].append(float(psum[j] / size[j]))
            found.reg["kappa"].append(kappa)
        found.n_regions += len(ok)
        for g in np.unique(g_on).tolist():
            found.own[(i, c, g)] = counts[c, g].astype(np.float64)
        kept = True
    if kept:
        found.n_own[i] = counts.sum(axis=(1, 2)).astype(np.float64)
        found.present[i] = {int(v) for v in np.unique(t[t != fill]).tolist()}
    return kept


def prob_regions(truth: Dataset, probs: Sequence[np.ndarray] | np.ndarray, *, void: BoolArray,
                 min_score: float) -> ProbRegions:
    """Regions where the model's probabilities contradict the truth more than it usually does (module docstring).

    Every image with truth to score is read once, in order; only the regions that can score ``min_score`` or
    ``_TAKEN`` (their evidence alone, before the usual confusion is taken off) are kept until the end, so the scores
    do not depend on ``min_score``.
    """
    from maslow.metrics.segmentation import _paint

    k = len(truth.schema.classes)
    if k > 254:
        raise InvalidDatasetError(f"truth.schema: semantic scoring needs at most 254 classes, got {k}")
    if len(probs) != truth.n_images:
        raise InvalidDatasetError(f"pixel_probs: must have one entry per image ({truth.n_images}), got {len(probs)}")
    fill = 255
    code = np.where(void, fill, np.arange(k)).astype(np.int64)
    nonvoid = np.flatnonzero(~void)
    source = getattr(probs, "source", None)
    ta = truth.annotations
    assert ta.iscrowd is not None
    ts = truth.image_slices()
    found = _Found(k)
    for i in np.flatnonzero(_scored_images(truth)).tolist():
        h, w = int(truth.images.height[i]), int(truth.images.width[i])
        t = _paint(ta, range(ts[i], ts[i + 1]), code, h, w, fill, "truth", i, crowd=True)
        p = check_probs(probs[i], h=h, w=w, channels=(k, len(nonvoid)),
                        where=f"pixel_probs[{i}] ({truth.images.path[i]})", path=None if source is None else source(i))
        if _image_regions(found, i, t, p, np.arange(k) if p.shape[0] == k else nonvoid, void, fill,
                          min(min_score, _TAKEN)):
            for r in range(ts[i], ts[i + 1]):
                if not ta.iscrowd[r]:
                    found.rows[(i, int(ta.label[r]))] = r
    return _score(found)


def _score(found: _Found) -> ProbRegions:
    """Each region's score (module docstring), in two rounds: the second counts the usual confusion without the
    pixels of the regions the first scores ``_TAKEN`` and more, each weighted by that score, so that the label errors
    of other images do not explain this one's."""
    k, reg = found.k, found.reg
    cat = {f: np.concatenate(v) if v else np.zeros(0) for f, v in found.ent.items()}
    e_reg, e_g, e_b = (cat[f].astype(np.int64) for f in ("region", "g", "b"))
    r_img = np.asarray(reg["image"], np.int64)
    r_c = np.asarray(reg["c"], np.int64)
    r_n = np.asarray(reg["n"], np.float64)
    r_kappa = np.asarray(reg["kappa"], np.float64)
    pairs = sorted(found.own)  # (image, c, g), as one sorted integer key each
    p_key = np.asarray([(i * k + c) * k + g for i, c, g in pairs], np.int64)
    e_pair = np.searchsorted(p_key, (r_img[e_reg] * k + r_c[e_reg]) * k + e_g)
    d = np.asarray([found.own[key] for key in pairs]).reshape(-1, _NB)
    d_cum = np.cumsum(d, axis=1)
    p_c, p_g = p_key // k % k, p_key % k
    n_ic = np.asarray([found.n_own[i][c] for i, c, _ in pairs], np.float64)
    ic_key, p_ic = np.unique(p_key // k, return_inverse=True)  # (image, c)
    r_ic = np.searchsorted(ic_key, r_img * k + r_c)
    score = np.zeros(len(r_n))
    rem_total = np.zeros_like(found.total)
    rem_pair = np.zeros_like(d)
    rem_ic = np.zeros(len(ic_key))
    for _ in range(_ROUNDS):
        t_eff = found.total - rem_total
        t_cum = np.cumsum(t_eff, axis=2)
        t_n = t_eff.sum(axis=(1, 2))
        others = t_cum[p_c, p_g] - np.cumsum(d - rem_pair, axis=1)
        rate = others / np.maximum(t_n[p_c] - n_ic + rem_ic[p_ic], 1.0)[:, None]
        u_pair = np.clip(d_cum - n_ic[:, None] * rate, 0.0, None) / np.maximum(d_cum, 1e-12)
        u = u_pair[e_pair, e_b]
        support = np.bincount(e_reg * k + e_g, weights=cat["wsum"] * u, minlength=len(r_n) * k).reshape(-1, k)
        score = np.minimum(support.sum(axis=1) / (r_n + r_kappa), 1.0)
        taken = np.where(score >= _TAKEN, score, 0.0)
        w = taken[e_reg] * cat["count"]
        rem_total = np.zeros_like(found.total)
        np.add.at(rem_total, (r_c[e_reg], e_g, e_b), w)
        rem_pair = np.bincount(e_pair * _NB + e_b, weights=w, minlength=d.size).reshape(d.shape)
        rem_ic = np.bincount(r_ic, weights=taken * r_n, minlength=len(ic_key)).astype(np.float64)
    g_best = support.argmax(axis=1) if len(r_n) else np.zeros(0, np.int64)
    explained = np.bincount(e_reg, weights=cat["count"] * (1.0 - u), minlength=len(r_n)).astype(np.float64)
    whole = r_n >= np.asarray([found.n_own[i][c] for i, c in zip(r_img.tolist(), r_c.tolist(), strict=True)])
    missing = np.asarray([g not in found.present[i] for i, g in zip(r_img.tolist(), g_best.tolist(), strict=True)],
                         bool)
    row = np.asarray([found.rows.get((i, c), -1) for i, c in zip(r_img.tolist(), r_c.tolist(), strict=True)], np.int64)
    kind = np.where(missing, np.where(whole, "extra", "missing"), "wrong_class")
    return ProbRegions(image=r_img, label=r_c, annotation=np.where(missing & ~whole, -1, row), type=kind.tolist(),
                       score=score, suggested=np.asarray(g_best, np.int64),
                       box=np.asarray(reg["box"], np.float64).reshape(-1, 4), size=r_n.astype(np.int64),
                       explained=explained, label_prob=np.asarray(reg["mean_p"], np.float64))


def prob_issues(truth: Dataset, probs: Sequence[np.ndarray] | np.ndarray, *, void: BoolArray, min_score: float,
                one_per_annotation: bool, severity: dict[str, str]) -> QualityIssues:
    """The ranked table of ``prob_regions`` (each truth mask row once, at its best region, when
    ``one_per_annotation``; ``missing`` regions are each kept)."""
    ev = prob_regions(truth, probs, void=void, min_score=min_score)
    keep = (ev.score >= min_score) & (ev.score > 0)
    if one_per_annotation and len(ev.score):
        order = np.lexsort((-ev.score, ev.annotation))
        first = np.ones(len(order), bool)
        first[1:] = ev.annotation[order][1:] != ev.annotation[order][:-1]
        best = np.zeros(len(order), bool)
        best[order[first]] = True
        keep &= best | (ev.annotation < 0)
    names = truth.schema.names
    types = np.asarray(ev.type, dtype=object)
    parts = []
    for t in ("wrong_class", "extra", "missing"):
        sel = np.flatnonzero(keep & (types == t))
        lab, sug = ev.label[sel].tolist(), ev.suggested[sel].tolist()
        facts = [f"{n} pixels labelled {names[c]!r}: the model gives {names[c]!r} {_pct(q)} on average and says "
                 f"{names[g]!r} (its usual confusion at that confidence explains about {x:.0f})"
                 for c, g, n, q, x in zip(lab, sug, ev.size[sel].tolist(), ev.label_prob[sel].tolist(),
                                          ev.explained[sel].tolist(), strict=True)]
        boxes = ev.box[sel]
        if t == "missing":
            reason = [f"{f}; the truth has no {names[g]!r} here" for f, g in zip(facts, sug, strict=True)]
            suggestion = [f"label the {names[g]!r} region at xyxy {_xyxy(bx)}"
                          for g, bx in zip(sug, boxes, strict=True)]
        else:
            reason = facts
            suggestion = [f"relabel the region xyxy {_xyxy(bx)} as {names[g]!r}"
                          for g, bx in zip(sug, boxes, strict=True)]
        parts.append(QualityIssues.block(t, severity[t], image=ev.image[sel], annotation=ev.annotation[sel],
                                         score=ev.score[sel], reason=reason, suggestion=suggestion, box=boxes,
                                         label=ev.suggested[sel]))
    return QualityIssues.build(parts)


def _pct(q: float) -> str:
    return "<1%" if 0 < q < 0.005 else f"{100 * q:.0f}%"


def _xyxy(b: FloatArray) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in b.tolist()) + "]"
