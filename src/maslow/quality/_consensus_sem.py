"""Semantic segmentation label errors: from the model's class masks (``find_label_issues(truth, pred)``,
``mask_regions``) and from its per-pixel class probabilities (``find_label_issues(..., pixel_probs=)``,
``prob_regions``). Both read one image at a time and keep only per-image counts and the candidate regions.

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
- *probability files*: ``maslow.io.read_pixel_probs`` (``maslow.io.pixel_probs``), one file per image, read when
  indexed.

Class masks (``mask_regions``): the model's usual confusion ``M[c, g]``, the share of truth-``c`` pixels it labels
``g``, counted over the other images of the reference (each image left out of its own count; the reference is the
data scored, or ``reference=(truth, pred)``, a set the scored images are matched to by path). A truth class ``c``
of ``n`` pixels, ``d`` of them labelled ``g``, ``e = n * M[c, g]`` expected, scores ``max(0, d - e) / (d + kappa)``
for the ``g`` of highest score (``kappa`` = 0.1% of the image's pixels); a class the model draws where the truth has
none is ``missing``, scored the same over all the pixels it draws. The per-image (c, g) pixel counts and the boxes
of their pixels are all that is kept of an image's maps: a 5,000-image set of 1024 x 2048 maps (20 GB of maps) is
scored in about 8 bytes per pixel of one image.

Probabilities (``prob_regions``), per connected region (8-neighbour) of truth-``c`` pixels whose most probable class
is another, ``g``:
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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import FormatError, InvalidDatasetError
from maslow.io.pixel_probs import labelled_images
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


@dataclass(frozen=True)
class MaskRegions:
    """Class masks: one row per (image, class) region the truth or the model has that scores above 0."""

    image: IntArray
    label: IntArray  # truth class of the region (wrong/extra) or predicted class (missing)
    annotation: IntArray  # truth mask row, -1 for missing
    type: list[str]
    score: FloatArray
    suggested: IntArray
    box: FloatArray  # (n, 4) xyxy of the contradicted pixels (those the model labels ``suggested``)
    pixels: IntArray  # the contradicted pixels
    expected: FloatArray  # how many of them the model's usual confusion explains
    size: IntArray  # pixels of the region (truth region; missing: the predicted one)


@dataclass(frozen=True)
class _Pairs:
    """One image's (truth class ``c``, predicted class ``g``) pixel counts, sparse: ``key`` = ``c * k + g``
    (ascending, counts > 0), ``n`` pixels, ``box`` (m, 4) xyxy of those pixels (None when not asked)."""

    key: IntArray
    n: IntArray
    box: IntArray | None

    def dense(self, k: int) -> FloatArray:
        out = np.zeros(k * k)
        out[self.key] = self.n
        return out.reshape(k, k)


def _pairs(t: np.ndarray, p: np.ndarray, k: int, fill: int, boxes: bool) -> _Pairs:
    """Pixels of each (truth, predicted) class pair of two label maps, where neither is ``fill``."""
    code = t.astype(np.uint16)  # c * k + g + 1 (k <= 254), 0 where either side is fill: 2 bytes a pixel
    code *= k
    code += p
    code += 1
    bad = t == fill
    for side in (p == fill, t >= k, p >= k):
        bad |= side
    code[bad] = 0
    del bad
    h, w = code.shape
    step = max(1, (1 << 16) // max(w, 1))  # bincount makes an int64 copy: rows in blocks of 64k pixels
    n = np.zeros(k * k + 1, np.int64)
    for y in range(0, h, step):
        n += np.bincount(code[y:y + step].ravel(), minlength=k * k + 1)
    n = n[1:]
    key = np.flatnonzero(n)
    box = None
    if boxes:
        from scipy import ndimage

        spans = ndimage.find_objects(code)  # one bounding slice per code: the pair's pixels
        box = np.asarray([(sl[1].start, sl[0].start, sl[1].stop, sl[0].stop) for sl in
                          (spans[j] for j in key.tolist())], np.int64).reshape(-1, 4)
    return _Pairs(key=key.astype(np.int64), n=n[key], box=box)


def _mask_pass(ds: Dataset, pred: Dataset, remap: IntArray, code: IntArray, fill: int, boxes: bool
               ) -> tuple[list[_Pairs], FloatArray]:
    """Every image's pairs (its two maps painted, counted and dropped), and their sum."""
    from maslow.core.masks import paint_label_map

    k = len(code)
    total = np.zeros(k * k, np.int64)
    ts, ps = ds.image_slices(), pred.image_slices()
    out = []
    side = "truth" if boxes else "reference truth"
    for i in range(ds.n_images):
        h, w = int(ds.images.height[i]), int(ds.images.width[i])
        t = paint_label_map(ds.annotations, range(ts[i], ts[i + 1]), code, h, w, fill, side, i, crowd=True)
        p = paint_label_map(pred.annotations, range(ps[i], ps[i + 1]), remap, h, w, fill, side.replace("truth", "pred"), i,
                   crowd=True)
        pairs = _pairs(t, p, k, fill, boxes)
        total[pairs.key] += pairs.n
        out.append(pairs)
    return out, total.astype(np.float64).reshape(k, k)


def mask_regions(truth: Dataset, pred: Dataset, remap: IntArray, *, void: BoolArray,
                 reference: tuple[Dataset, Dataset, IntArray] | None = None) -> MaskRegions:
    """Regions of each image where the model's class masks contradict the truth's class more than it usually does
    (module docstring). ``remap``: pred class -> truth class (-1: none); ``reference``: ``(truth, pred, remap)`` of
    the set whose usual confusion is used (default: the data scored), its images matched to the scored ones by
    path. One pass over the images (and one over the reference's), one image's label maps at a time, keeps each
    image's pair counts and their boxes; the scores come from them and the total."""
    k = len(truth.schema.classes)
    if k > 254:
        raise InvalidDatasetError(f"truth.schema: semantic scoring needs at most 254 classes, got {k}")
    fill = 255
    code = np.where(void, fill, np.arange(k, dtype=np.int64))

    def pred_code(r: IntArray) -> IntArray:  # a predicted void class (or crowd region) is neither error nor evidence
        return np.where((r < 0) | void[np.maximum(r, 0)], fill, r)

    found, total = _mask_pass(truth, pred, pred_code(remap), code, fill, boxes=True)
    own: dict[str, _Pairs] | None = None
    if reference is not None:
        r_truth, r_pred, r_remap = reference
        r_found, total = _mask_pass(r_truth, r_pred, pred_code(r_remap), code, fill, boxes=False)
        own = dict(zip(r_truth.images.path.tolist(), r_found, strict=True))
    ta = truth.annotations
    assert ta.iscrowd is not None
    ts = truth.image_slices()
    image: list[int] = []
    label: list[int] = []
    ann: list[int] = []
    typ: list[str] = []
    score: list[float] = []
    sug: list[int] = []
    box: list[IntArray] = []
    pix: list[int] = []
    exp_: list[float] = []
    size: list[int] = []

    def add(i: int, c: int, row: int, t: str, s: float, g: int, b: IntArray, d: float, e: float, n: float) -> None:
        image.append(i)
        label.append(c)
        ann.append(row)
        typ.append(t)
        score.append(s)
        sug.append(g)
        box.append(b)
        pix.append(int(d))
        exp_.append(e)
        size.append(int(n))

    zero = np.zeros((k, k))
    for i, pairs in enumerate(found):
        rows = {int(ta.label[r]): r for r in range(ts[i], ts[i + 1]) if not ta.iscrowd[r] and not void[ta.label[r]]}
        cnt = pairs.dense(k)
        if own is None:
            rest = total - cnt
        else:  # the reference's own counts of this image: the rest of the reference (none when it lacks the image)
            mine = own.get(truth.images.path[i])
            rest = total - (zero if mine is None else mine.dense(k))
        rate = rest / np.maximum(rest.sum(axis=1, keepdims=True), 1.0)
        n_c = cnt.sum(axis=1)
        expected = n_c[:, None] * rate
        kappa = _PIXEL_PRIOR * (int(truth.images.height[i]) * int(truth.images.width[i]))
        sc = np.clip(cnt - expected, 0.0, None) / (cnt + kappa)
        np.fill_diagonal(sc, 0.0)
        assert pairs.box is not None
        for c, row in rows.items():
            if c >= k or not n_c[c]:
                continue
            g = int(np.argmax(sc[c]))
            if sc[c, g] <= 0:
                continue
            whole = 1.0 - cnt[c, c] / n_c[c]
            t = "extra" if whole >= 0.999 and g not in rows else "wrong_class"
            at = int(np.searchsorted(pairs.key, c * k + g))
            add(i, c, row, t, float(sc[c, g]), g, pairs.box[at], cnt[c, g], float(expected[c, g]), n_c[c])
        for g in np.flatnonzero(cnt.sum(axis=0) > 0).tolist():
            if g in rows:
                continue
            d, e = float(cnt[:, g].sum()), float(expected[:, g].sum())
            if d > e:
                b = pairs.box[pairs.key % k == g]  # every pixel the model draws g on (truth of any class)
                add(i, g, -1, "missing", (d - e) / (d + kappa), g, np.r_[b[:, :2].min(axis=0), b[:, 2:].max(axis=0)],
                    d, e, d)
    return MaskRegions(image=np.asarray(image, np.int64), label=np.asarray(label, np.int64),
                       annotation=np.asarray(ann, np.int64), type=typ, score=np.asarray(score, float),
                       suggested=np.asarray(sug, np.int64), box=np.asarray(box, float).reshape(-1, 4),
                       pixels=np.asarray(pix, np.int64), expected=np.asarray(exp_, float),
                       size=np.asarray(size, np.int64))


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
    from maslow.core.masks import paint_label_map

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
    for i in np.flatnonzero(labelled_images(truth)).tolist():
        h, w = int(truth.images.height[i]), int(truth.images.width[i])
        t = paint_label_map(ta, range(ts[i], ts[i + 1]), code, h, w, fill, "truth", i, crowd=True)
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
