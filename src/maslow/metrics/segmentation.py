"""Semantic segmentation scores from a pixel confusion matrix: IoU, Dice, pixel and class accuracy.

Glossary:

- *label map*: an integer array whose last axis is the image width; its values are class ids ``0..K-1``, or the
  *ignore* value (``ignore_index``), whose pixels are not evaluated. ``(H, W)`` is one map; ``(N, H, W)`` (any
  leading axes) is a batch of N maps.
- *confusion matrix* ``C`` (K, K): ``C[i, j]`` counts the evaluated pixels of truth class i predicted as class j
  (rows truth, columns prediction, as scikit-learn, torchmetrics, mmseg and hotcoco). Truth area
  ``T_k = C[k, :].sum()`` (+ the pixels the prediction leaves without a class, Dataset level only), predicted
  area ``P_k = C[:, k].sum()``, intersection ``C[k, k]``.
- *per-class scores*: IoU ``C[k,k] / (T_k + P_k - C[k,k])``; Dice (F1) ``2 C[k,k] / (T_k + P_k)``; accuracy
  (recall) ``C[k,k] / T_k``; precision ``C[k,k] / P_k``. A ratio with a zero denominator is ``nan``.
- *absent classes*: a class absent from both truth and prediction has IoU and Dice ``nan`` (0/0) and is left out
  of every mean, as mmseg's ``IoUMetric`` (``np.nanmean``) and torchmetrics' ``MulticlassJaccardIndex`` (weight 0
  for a class with no truth and no prediction) do. A class in the truth but never predicted, or predicted but
  absent from the truth, has IoU 0 and counts. Class accuracy is ``nan`` for a class absent from the truth.
- *means*: ``miou``, ``mean_dice``, ``mean_accuracy`` are ``nanmean`` over classes; ``pixel_accuracy`` is
  ``trace(C) / C.sum()``; ``fw_iou`` (frequency-weighted IoU) is ``sum_k T_k / sum(T) * IoU_k`` over classes
  present in the truth. Every score is ``nan`` when there is nothing to evaluate (no pixel, or all ignored).
- *ignore*: truth pixels equal to ``ignore_index`` are skipped, whatever is predicted there (predictions at those
  pixels are not checked). An ``ignore_index`` inside ``0..K-1`` removes that class: its per-class scores are
  ``nan``, it is left out of the means, and predictions of it at evaluated pixels count as misses.

Speed: ``ConfusionMatrix.add`` counts pixel pairs without a histogram over every pixel. Label maps are piecewise
constant, so it compares each 8-pixel word (a ``uint64`` view) with the word one row above, and only the pixels
that differ from the pixel above enter a weighted histogram (a pixel at row ``r`` that differs from the one above
adds its key with weight ``rows - r`` and removes the key above with the same weight; row 0 counts ``rows``
times). On maps where most words change (noise), it falls back to ``np.bincount`` over every pixel. Counts are
exact (float64 sums of integers far below 2**53, rounded). ``uint8`` maps take the fast path; other integer
dtypes are checked and converted first. Where maslow's C kernels are built (``maslow._native``), the uint8 fast
path runs the same scheme in C (``confusion.c``: int64 counts, a row that changes almost everywhere is counted
directly), with the same results.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow._native import load as _load_native
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.types import FloatArray, IntArray
from maslow.errors import SchemaError
from maslow.metrics._shared import _check_same_images, _divide, _json_float, _nanmean

log = logging.getLogger(__name__)

#: fraction of changed 8-pixel words above which a chunk is counted pixel by pixel
_DENSE = 0.3
#: pixels per chunk (whole rows): a chunk's maps and buffers stay in the L2 cache for the gathers
_CHUNK = 1 << 18


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """Semantic segmentation scores (see the module docstring for the definitions).

    Attributes:
        class_names: (K,) names of the classes, in the order of every per-class array.
        confusion_matrix: (K, K) int64 pixel counts, rows truth, columns prediction.
        n_unpredicted_per_class: (K,) int64 truth pixels of each class that the prediction leaves without a class
            (no predicted mask covers them, or a class the truth schema lacks); always 0 for label maps.
        iou_per_class, dice_per_class, accuracy_per_class, precision_per_class: (K,) float64, nan where undefined.
        miou, mean_dice, mean_accuracy: nan-means of the per-class arrays.
        pixel_accuracy: correct pixels / evaluated pixels.
        fw_iou: frequency-weighted IoU.
        n_pixels: evaluated (non-ignored) truth pixels.
        n_ignored: truth pixels skipped (ignore value or crowd regions).
        n_images: label maps (images) counted.
    """

    class_names: tuple[str, ...]
    confusion_matrix: IntArray
    n_unpredicted_per_class: IntArray
    iou_per_class: FloatArray
    dice_per_class: FloatArray
    accuracy_per_class: FloatArray
    precision_per_class: FloatArray
    miou: float
    mean_dice: float
    mean_accuracy: float
    pixel_accuracy: float
    fw_iou: float
    n_pixels: int
    n_ignored: int
    n_images: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None): the means, the counts (``n_unpredicted``: truth pixels left without a
        predicted class, in total and per class) and the per-class scores."""
        per = {"iou": self.iou_per_class, "dice": self.dice_per_class, "accuracy": self.accuracy_per_class,
               "precision": self.precision_per_class}
        return {
            "miou": _json_float(self.miou), "mean_dice": _json_float(self.mean_dice),
            "mean_accuracy": _json_float(self.mean_accuracy), "pixel_accuracy": _json_float(self.pixel_accuracy),
            "fw_iou": _json_float(self.fw_iou), "n_pixels": self.n_pixels, "n_ignored": self.n_ignored,
            "n_images": self.n_images, "n_unpredicted": int(self.n_unpredicted_per_class.sum()),
            "class_names": list(self.class_names),
            "per_class": {k: [_json_float(v) for v in a.tolist()] for k, a in per.items()},
            "n_unpredicted_per_class": self.n_unpredicted_per_class.tolist(),
            "confusion_matrix": self.confusion_matrix.tolist(),
        }

    def to_pandas(self) -> Any:
        """Per-class table: one row per class with IoU, Dice, accuracy, precision and pixel areas (truth, predicted,
        and truth pixels left without a predicted class)."""
        import pandas as pd

        cm = self.confusion_matrix
        return pd.DataFrame({
            "class": list(self.class_names), "iou": self.iou_per_class, "dice": self.dice_per_class,
            "accuracy": self.accuracy_per_class, "precision": self.precision_per_class,
            "truth_pixels": cm.sum(axis=1) + self.n_unpredicted_per_class, "pred_pixels": cm.sum(axis=0),
            "unpredicted_pixels": self.n_unpredicted_per_class,
        })


def scores_from_confusion(confusion: Any, *, class_names: Sequence[str] | None = None,
                          n_unpredicted: Any = None, excluded: Sequence[int] = (), n_ignored: int = 0,
                          n_images: int = 0) -> SegmentationResult:
    """Segmentation scores of a (K, K) pixel confusion matrix (rows truth, columns prediction).

    Args:
        confusion: (K, K) non-negative integer counts.
        class_names: K names; default ``"0".."K-1"``.
        n_unpredicted: (K,) truth pixels of each class left without a predicted class (default zeros).
        excluded: ignore classes inside ``0..K-1``: their scores are nan, they are left out of the means, and
            their truth pixels (rows) are not evaluated (added to ``n_ignored``); predictions of them stay misses.
        n_ignored: truth pixels already skipped; n_images: maps counted (both reported as they are).

    Returns:
        SegmentationResult.

    Example:
        >>> r = scores_from_confusion([[3, 1], [0, 4]])
        >>> round(r.miou, 4), r.pixel_accuracy
        (0.775, 0.875)
    """
    cm = np.asarray(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or (cm.size and (cm.dtype.kind not in "iu" or cm.min() < 0)):
        raise ValueError(f"confusion: must be a (K, K) array of non-negative integers, got shape {cm.shape}, "
                         f"dtype {cm.dtype}")
    cm = cm.astype(np.int64)
    k = cm.shape[0]
    names = tuple(str(i) for i in range(k)) if class_names is None else tuple(class_names)
    if len(names) != k:
        raise ValueError(f"class_names: must name {k} classes, got {len(names)}")
    miss = np.zeros(k, np.int64) if n_unpredicted is None else np.asarray(n_unpredicted, np.int64).reshape(k)
    if excluded:  # the truth pixels of an excluded (ignore) class are not evaluated: they are ignored pixels
        n_ignored += int(cm[list(excluded)].sum() + miss[list(excluded)].sum())
        cm, miss = cm.copy(), miss.copy()
        cm[list(excluded)] = 0
        miss[list(excluded)] = 0
    tp = np.diagonal(cm).astype(np.float64)
    truth = (cm.sum(axis=1) + miss).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    iou = _divide(tp, truth + pred - tp)
    dice = _divide(2.0 * tp, truth + pred)
    acc = _divide(tp, truth)
    prec = _divide(tp, pred)
    for arr in (iou, dice, acc, prec):
        arr[list(excluded)] = np.nan
    total = float(truth.sum())
    present = truth > 0
    if excluded:
        present[list(excluded)] = False
    fw = float(np.sum(truth[present] / total * iou[present])) if total > 0 else math.nan
    for a in (cm, miss, iou, dice, acc, prec):
        a.flags.writeable = False
    return SegmentationResult(
        class_names=names, confusion_matrix=cm, n_unpredicted_per_class=miss, iou_per_class=iou,
        dice_per_class=dice, accuracy_per_class=acc, precision_per_class=prec, miou=_nanmean(iou),
        mean_dice=_nanmean(dice), mean_accuracy=_nanmean(acc),
        pixel_accuracy=float(tp.sum() / total) if total > 0 else math.nan, fw_iou=fw,
        n_pixels=int(total), n_ignored=int(n_ignored), n_images=int(n_images),
    )


class ConfusionMatrix:
    """Streaming pixel confusion matrix over integer label maps; ``result()`` works at any time.

    Args:
        n_classes: K; class ids are ``0..K-1``.
        ignore_index: truth value whose pixels are skipped (e.g. 255); may also be a class id, which removes
            that class (see the module docstring).
        class_names: K names for the result; default ``"0".."K-1"``.

    Example:
        >>> cm = ConfusionMatrix(3, ignore_index=255)
        >>> cm.add(np.array([[0, 0, 1], [2, 255, 1]], np.uint8), np.array([[0, 1, 1], [2, 0, 1]], np.uint8))
        >>> r = cm.result()
        >>> r.n_pixels, r.n_ignored, round(r.miou, 4)
        (5, 1, 0.7222)
    """

    def __init__(self, n_classes: int, *, ignore_index: int | None = None,
                 class_names: Sequence[str] | None = None) -> None:
        if int(n_classes) != n_classes or n_classes < 1:
            raise ValueError(f"n_classes: must be a positive integer, got {n_classes!r}")
        self.n_classes = int(n_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.class_names = None if class_names is None else tuple(class_names)
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise ValueError(f"class_names: must name {self.n_classes} classes, got {len(self.class_names)}")
        k = self.n_classes
        self._counts = np.zeros((k, k + 1), np.int64)  # column K: truth pixels predicted as no class
        self._n_ignored = 0
        self._n_images = 0
        # uint8 maps with ignore value 255 (the common case): the kernel's flat float64 bins, summed as they come
        # (rows: ignored, classes 0..K-1, bad truth values; exact integers far below 2**53), and the bins that
        # must stay empty (bad truth values, predictions outside 0..K-1 at evaluated pixels)
        self._fast: FloatArray | None = None
        self._fast_check: IntArray | None = None
        self._hist: IntArray | None = None  # the C kernel's (256 * 256,) counts of truth << 8 | pred

    def add(self, truth: Any, pred: Any) -> None:
        """Count one label map pair, or a batch (same shape, last axis = width).

        Raises:
            ValueError: shapes differ, values are not integers, a truth value is neither a class id nor the
                ignore value, or a prediction at an evaluated pixel is not a class id (nothing is counted then).
        """
        self._add(truth, pred, strict=True)

    def _add(self, truth: Any, pred: Any, *, strict: bool) -> None:
        t, p = np.asarray(truth), np.asarray(pred)
        if t.shape != p.shape:
            raise ValueError(f"add: truth and pred must have the same shape, got {t.shape} and {p.shape}")
        for name, a in (("truth", t), ("pred", p)):
            if a.dtype.kind not in "iub":
                raise ValueError(f"add: {name} must hold integer class ids, got dtype {a.dtype}")
        n_maps = math.prod(t.shape[:-2]) if t.ndim >= 2 else 1
        if t.size == 0:
            self._n_images += n_maps if t.ndim >= 2 else 0
            return
        k, ign = self.n_classes, self.ignore_index
        if ign == 255 and k <= 254 and t.dtype == np.uint8 and p.dtype == np.uint8:
            native = _load_native("confusion")
            if native is not None:
                if self._hist is None:
                    self._hist = np.zeros(65536, np.int64)
                w = t.shape[-1] if t.ndim else 1
                if native.count_pairs(np.ascontiguousarray(t), np.ascontiguousarray(p), w, k, True, self._hist):
                    self._n_images += n_maps
                    return
                # a bad value (nothing was counted): the general path below reports it (or, not strict, counts it)
            c = _count_uint8_flat(np.ascontiguousarray(t), np.ascontiguousarray(p), k, 1)
            if self._fast is None or self._fast_check is None:
                self._fast = np.zeros(c.size)
                grid = np.arange(c.size).reshape(k + 2, k + 1)
                self._fast_check = np.concatenate([grid[k + 1], grid[1:k + 1, k]])
            if not c[self._fast_check].any():
                self._fast += c
                self._n_images += n_maps
                return
            # a bad value: the general path below reports it (or, not strict, counts it)
        fast = t.dtype == np.uint8 and p.dtype == np.uint8 and (ign is None or ign == 255 or 0 <= ign < k)
        if k <= 254 and not fast:
            t, p, ign = _to_uint8(t, p, k, ign)
        if k <= 254:
            # rows of the uint8 kernel: shift 1 (ignore value 255) -> row 0 ignored, rows 1..K classes, row K+1
            # bad truth values; shift 0 -> rows 0..K-1 classes, row K bad truth values
            shift = 1 if ign == 255 else 0
            bins = _count_uint8(np.ascontiguousarray(t), np.ascontiguousarray(p), k, shift)
            if bins[shift + k].any():
                bad = t[(t >= k) & (t != ign)] if ign is not None else t[t >= k]
                raise ValueError(f"add: truth values must be class ids 0..{k - 1}"
                                 f"{'' if ign is None else f' or the ignore value {self.ignore_index}'}, got "
                                 f"{int(bad.reshape(-1)[0])} ({bad.size} pixels)")
            counts = bins[shift:shift + k]
            n_ign = int(bins[0].sum()) if shift else 0
            if ign is not None and 0 <= ign < k:  # an ignored class: its row is dropped here
                n_ign = int(counts[ign].sum())
                counts = counts.copy()
                counts[ign] = 0
        else:
            bins = _count_wide(t, p, k, ign)  # rows: classes, then ignored pixels
            counts, n_ign = bins[:k], int(bins[k].sum())
        if strict and counts[:, k].any():
            raise ValueError(f"add: pred values at evaluated pixels must be class ids 0..{k - 1}, got "
                             f"{int(counts[:, k].sum())} pixels outside that range")
        self._counts += counts
        self._n_ignored += n_ign
        self._n_images += n_maps

    def result(self) -> SegmentationResult:
        """The scores of everything added so far (all nan before the first pixel)."""
        k = self.n_classes
        excluded = [self.ignore_index] if self.ignore_index is not None and 0 <= self.ignore_index < k else []
        counts, n_ignored = self._merged()
        return scores_from_confusion(counts[:, :k].copy(), class_names=self.class_names,
                                     n_unpredicted=counts[:, k].copy(), excluded=excluded,
                                     n_ignored=n_ignored, n_images=self._n_images)

    def _merged(self) -> tuple[IntArray, int]:
        """(K, K + 1) counts and the ignored pixel count, the fast path's sums included."""
        counts, n_ignored = self._counts, self._n_ignored
        k = self.n_classes
        if self._fast is not None:
            f = np.rint(self._fast).astype(np.int64).reshape(k + 2, k + 1)
            counts, n_ignored = counts + f[1:k + 1], n_ignored + int(f[0].sum())
        if self._hist is not None:  # rows: truth value (255: ignored); columns >= K: not a class
            h = self._hist.reshape(256, 256)
            folded = np.concatenate([h[:k, :k], h[:k, k:].sum(axis=1, keepdims=True)], axis=1)
            counts, n_ignored = counts + folded, n_ignored + int(h[255].sum())
        return counts, n_ignored

    @property
    def matrix(self) -> IntArray:
        """(K, K) int64 copy of the counts so far (rows truth, columns prediction)."""
        return self._merged()[0][:, : self.n_classes].copy()


def _to_uint8(t: np.ndarray, p: np.ndarray, k: int, ign: int | None) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Check and convert any integer maps to uint8 (K <= 254): ignore -> 255, bad predictions -> K."""
    bad_p = (p < 0) | (p >= k)
    p8 = np.where(bad_p, k, p).astype(np.uint8) if bad_p.any() else p.astype(np.uint8)
    is_ign = (t == ign) if ign is not None else np.zeros(t.shape, bool)
    bad_t = ((t < 0) | (t >= k)) & ~is_ign
    if bad_t.any():
        v = t[bad_t].reshape(-1)[0]
        raise ValueError(f"add: truth values must be class ids 0..{k - 1}"
                         f"{'' if ign is None else f' or the ignore value {ign}'}, got {v} "
                         f"({int(bad_t.sum())} pixels)")
    if ign is not None and 0 <= ign < k:
        return t.astype(np.uint8), p8, ign
    t8 = t.astype(np.uint8) if not is_ign.any() else np.where(is_ign, 255, t).astype(np.uint8)
    return t8, p8, None if ign is None else 255


def _keys(tv: np.ndarray, pv: np.ndarray, k: int, shift: int) -> np.ndarray:
    """Bin of each (truth, pred) uint8 pair: row ``min(t + shift, K + shift)`` (wrapping), column ``min(p, K)``."""
    x = tv + np.uint8(shift) if shift else tv
    key: np.ndarray = (x if x.max(initial=0) <= k + shift else np.minimum(x, k + shift)).astype(np.intp)
    key *= k + 1
    key += pv if pv.max(initial=0) < k else np.minimum(pv, k)
    return key


def _count_uint8(t: np.ndarray, p: np.ndarray, k: int, shift: int) -> IntArray:
    """(K + 1 + shift, K + 1) pixel counts over uint8 maps; rows as ``_keys`` (shift 1 puts 255 in row 0)."""
    out: IntArray = _count_uint8_flat(t, p, k, shift).astype(np.int64).reshape(k + 1 + shift, k + 1)
    return out  # exact integers in float64


def _count_uint8_flat(t: np.ndarray, p: np.ndarray, k: int, shift: int) -> FloatArray:
    """``_count_uint8`` as flat float64 bins."""
    w = t.shape[-1] if t.ndim else 1
    tf, pf = t.reshape(-1), p.reshape(-1)
    step = max(1, _CHUNK // w) * w
    if step >= tf.size:
        return _count_chunk(tf, pf, w, k, shift)
    total = np.zeros((k + 1 + shift) * (k + 1), np.float64)
    for s in range(0, tf.size, step):
        total += _count_chunk(tf[s:s + step], pf[s:s + step], w, k, shift)
    return total


def _count_chunk(tf: np.ndarray, pf: np.ndarray, w: int, k: int, shift: int) -> FloatArray:
    n = tf.size
    rows = n // w
    size = (k + 1 + shift) * (k + 1)
    m8 = (n - w) // 8 * 8
    pairs = _chunk_pairs(tf, pf, w)
    if pairs is None:
        return _count_dense(tf, pf, k, shift)
    tv, pv, wt = pairs
    c = np.bincount(_keys(tv, pv, k, shift), wt, size).astype(np.float64, copy=False)
    if m8 < n - w:  # the last few pixels that do not fill a word
        i = np.arange(m8, n - w)
        i = i[(tf[i + w] != tf[i]) | (pf[i + w] != pf[i])]
        wt = np.subtract(rows - 1, i // w, dtype=np.float64)
        c += np.bincount(_keys(tf[i + w], pf[i + w], k, shift), wt, minlength=size)
        c -= np.bincount(_keys(tf[i], pf[i], k, shift), wt, minlength=size)
    return c


def _chunk_pairs(tf: np.ndarray, pf: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray, FloatArray] | None:
    """(truth values, predicted values, weights) whose weighted histogram counts the chunk's pixel pairs, except
    its last ``n - w - m8`` pixels (``_count_chunk`` adds those); None: count the chunk densely."""
    n = tf.size
    rows = n // w
    m8 = (n - w) // 8 * 8
    if rows < 2 or m8 == 0:
        return None
    tn, ta = tf[w:w + m8].view(np.uint64), tf[:m8].view(np.uint64)
    pn, pa = pf[w:w + m8].view(np.uint64), pf[:m8].view(np.uint64)
    changed = tn != ta
    changed |= pn != pa
    nzw = np.flatnonzero(changed)
    if nzw.size > _DENSE * changed.size:
        return None
    g_tn, g_ta, g_pn, g_pa = tn[nzw], ta[nzw], pn[nzw], pa[nzw]
    x = g_tn ^ g_ta
    x |= g_pn ^ g_pa
    jj = np.flatnonzero(x.view(np.uint8) != 0)  # changed bytes of the gathered words (bool: nonzero's fast path)
    q = jj >> 3
    if w % 8 == 0:
        weight = np.subtract(rows - 1, nzw // (w // 8), dtype=np.float64)[q]
    else:
        above = nzw[q] * 8 + (jj & 7)
        weight = np.subtract(rows - 1, above // w, dtype=np.float64)
    # one histogram: changed pixels (+weight), the pixels above them (-weight), row 0 (rows times)
    n_j = jj.size
    tv = np.concatenate((g_tn.view(np.uint8)[jj], g_ta.view(np.uint8)[jj], tf[:w]))
    pv = np.concatenate((g_pn.view(np.uint8)[jj], g_pa.view(np.uint8)[jj], pf[:w]))
    wt = np.empty(2 * n_j + w)
    wt[:n_j] = weight
    np.negative(weight, out=wt[n_j:2 * n_j])
    wt[2 * n_j:] = rows
    return tv, pv, wt


def _count_dense(tf: np.ndarray, pf: np.ndarray, k: int, shift: int) -> FloatArray:
    """``_count_chunk``'s counts by one bincount over every pixel (noise-like maps)."""
    key = tf.astype(np.uint16)  # truth << 8 | pred: 2 bytes a pixel, and no pass to clip the predictions
    key <<= 8
    key |= pf
    b = np.bincount(key, minlength=65536).reshape(256, 256)
    bins = np.concatenate([b[:, :k], b[:, k:].sum(axis=1, keepdims=True)], axis=1)  # column K: not a class
    parts = [bins[255:], bins[:k], bins[k:255].sum(axis=0, keepdims=True)] if shift else [
        bins[:k], bins[k:].sum(axis=0, keepdims=True)]
    return np.concatenate(parts).reshape(-1).astype(np.float64)


def _count_wide(t: np.ndarray, p: np.ndarray, k: int, ign: int | None) -> IntArray:
    """(K + 1, K + 1) counts for K > 255 (plain bincount over every pixel); row K: ignored pixels."""
    tf, pf = t.reshape(-1).astype(np.int64), p.reshape(-1).astype(np.int64)
    is_ign = tf == ign if ign is not None else np.zeros(tf.size, bool)
    bad = ((tf < 0) | (tf >= k)) & ~is_ign
    if bad.any():
        raise ValueError(f"add: truth values must be class ids 0..{k - 1}"
                         f"{'' if ign is None else f' or the ignore value {ign}'}, got {tf[bad][0]} "
                         f"({int(bad.sum())} pixels)")
    pc = np.where((pf < 0) | (pf >= k), k, pf)
    keep = ~is_ign
    counts = np.bincount(tf[keep] * (k + 1) + pc[keep], minlength=k * (k + 1)).reshape(k, k + 1)
    extra = np.zeros((1, k + 1), np.int64)
    extra[0, 0] = int(is_ign.sum())
    return np.vstack([counts, extra])


# -- Dataset level ---------------------------------------------------------------------------------------------


def evaluated_classes(truth: Dataset, ignore_index: int | None, where: str) -> tuple[tuple[str, ...], IntArray]:
    """The classes a semantic evaluation scores (all but the crowd-only ones and the class of id ``ignore_index``)
    and the truth code of each schema class: its position among them, 255 for the others.

    Raises:
        SchemaError: no class has id ``ignore_index``, or more than 254 classes are scored (uint8 label maps).
    """
    crowd_only = truth.crowd_only_classes()
    if ignore_index is not None:
        ids = [c.id for c in truth.schema.classes]
        if ignore_index not in ids:
            raise SchemaError(f"{where}: ignore_index must be the id of a truth class "
                              f"({sorted(i for i in ids if i is not None)}), got {ignore_index}")
        crowd_only[ids.index(ignore_index)] = True
    evaluated = np.flatnonzero(~crowd_only)
    k = len(evaluated)
    if k > 254:
        raise SchemaError(f"{where}: at most 254 evaluated classes, got {k}")
    t_code = np.full(len(truth.schema.classes), 255, np.int64)
    t_code[evaluated] = np.arange(k)
    return tuple(truth.schema.names[j] for j in evaluated), t_code


def pred_codes(names: Sequence[str], pred: Dataset) -> IntArray:
    """The code of each class of ``pred``: its position in ``names`` (``evaluated_classes``), ``len(names)`` for a
    class not scored."""
    index = {name: i for i, name in enumerate(names)}
    return np.asarray([index.get(name, len(names)) for name in pred.schema.names], np.int64)


def semantic_scores(truth: Dataset, pred: Dataset, *, ignore_index: int | None = None) -> SegmentationResult:
    """Semantic segmentation scores of predicted masks against truth masks, image by image.

    Both datasets hold semantic masks (task ``semantic_segmentation``; one RLE per class per image, as
    ``maslow.io.read_masks`` gives) on the same images table. Classes are matched by name.

    - Evaluated classes: the truth schema's classes, except ignore classes: a class whose truth annotations are
      all crowd regions (``read_masks`` marks its ignore/void class so) and the class whose ``ClassDef.id`` (its
      label-map value) equals ``ignore_index``.
    - Ignored pixels: crowd regions, pixels of ignore classes, and truth pixels no mask covers.
    - Predictions: a pixel no predicted mask covers, or covered by a class the truth does not evaluate, is a miss
      for its truth class (``n_unpredicted_per_class``) and no false positive.

    Args:
        truth: ground truth masks.
        pred: predicted masks on the same images.
        ignore_index: label-map value (``ClassDef.id``) of a truth class to ignore, in addition to crowd classes.

    Returns:
        SegmentationResult over the evaluated classes, in truth schema order.

    Raises:
        SchemaError: a dataset is not a semantic segmentation dataset, or no class has id ``ignore_index``.
        InvalidDatasetError: other images, a missing mask, a mask of the wrong size, or masks of one image that
            overlap.
    """
    for name, ds in (("truth", truth), ("pred", pred)):
        if Task.SEMANTIC_SEGMENTATION not in ds.schema.tasks:
            raise SchemaError(f"semantic_scores: {name} task must be semantic_segmentation, got "
                              f"{', '.join(t.value for t in ds.schema.tasks)}")
    _check_same_images(truth, pred, "semantic_scores")
    ta, pa = truth.annotations, pred.annotations
    names, t_code = evaluated_classes(truth, ignore_index, "semantic_scores")
    k = len(names)
    p_code = pred_codes(names, pred)
    acc = ConfusionMatrix(k, ignore_index=255, class_names=list(names))
    ts, ps = truth.image_slices(), pred.image_slices()
    for i in range(truth.n_images):
        h, w = int(truth.images.height[i]), int(truth.images.width[i])
        tmap = M.paint_label_map(ta, range(ts[i], ts[i + 1]), t_code, h, w, 255, "truth", i, crowd=True)
        pmap = M.paint_label_map(pa, range(ps[i], ps[i + 1]), p_code, h, w, k, "pred", i, crowd=False)
        acc._add(tmap, pmap, strict=False)
    return acc.result()
