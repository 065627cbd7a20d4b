"""COCO stats of one evaluation on any multiset of its images, without matching again (the bootstrap of
``compare_models``).

COCO matches each (image, class) group on its own, so an image drawn twice in a bootstrap replicate brings its
predictions with the same match results twice: only the accumulation changes. ``Resampler`` evaluates once
(``coco._evaluate``: groups, matches, TP and ignored flags) and re-accumulates for image weights ``w`` (image i
counted ``w[i]`` times), giving the stats ``coco_map`` gives on the resampled dataset
``truth.select_images(idx)``/``pred.select_images(idx)`` (``idx`` sorted, so the copies of an image sit together;
``w = bincount(idx)``) bit for bit.

The replicate's accumulation order is the base order with every run of predictions sharing (class, score, image)
repeated ``w[image]`` times as a whole: copies of an image are adjacent in image order, so score ties between
images keep their order, and the predictions of one run come copy after copy (A B A B, as the resampled dataset
orders them), not A A B B.

With the compiled kernel (``maslow._native.cocoeval``) the accumulation walks that order directly: its walk reads
``acc_order`` as a sequence of prediction indexes, so a prediction listed twice is walked twice, as two copies with
the same matches (the codes and masks it builds per prediction are the same for each copy). The prediction arrays
are padded with inert predictions (last class, rank past every maxDets: walked, never counted) so that the order
always has the arrays' length. Without the kernel the replicate's predictions and match entries are built out in
full and accumulated by the numpy reference (slower, the same numbers).

Only what the summary needs is accumulated: precision and recall at the largest maxDets (every area range); the
recall at the smaller maxDets of the ladder (area "all", the only one the summary reads there) is a weighted count
of the true positives ranked below each maxDets, per class and threshold.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

import numpy as np

from maslow._native import load
from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.metrics._accumulate import _native_accumulate, accumulate
from maslow.metrics._result import _DET_STATS, _KP_STATS, MapResult, _summarize
from maslow.metrics.coco import _evaluate, _match_flags, _Params, _params, _result

_INERT_RANK = np.iinfo(np.int32).max


def coco_params(iou_type: str, kpt_sigmas: Sequence[float] | FloatArray | None,
                boundary_dilation: float = 0.02) -> _Params:
    """COCO's default evaluation options for ``iou_type`` (pycocotools' Params), with ``boundary_dilation`` for
    ``iou_type="boundary"``."""
    return _params(iou_type, None, None, None, None, True, kpt_sigmas, "geometry", boundary_dilation)


class Resampler:
    """One evaluation of ``pred`` against ``truth``, re-accumulated for any image weights.

    Attributes:
        result: the ``MapResult`` of the whole dataset (``coco_map``'s).
        stat_names: the summary stats, in pycocotools' order.
    """

    def __init__(self, truth: Dataset, pred: Dataset, p: _Params) -> None:
        ev = _evaluate(truth, pred, p, keep_pairs=True)
        self.result: MapResult = _result(truth, ev)
        self.stat_names = self.result.stat_names
        g, m = ev.groups, ev.matches
        m_tp, m_ig = _match_flags(m, ev.t_idx, ev.truth_ignored, g.id_zero)
        self._p = p
        self._n_images = truth.n_images
        n_k, n_a, n_t = len(g.class_labels), len(p.area_names), len(p.iou_thresholds)
        self._n_k, self._n_a, self._n_t = n_k, n_a, n_t
        self._a_all = p.area_names.index("all") if "all" in p.area_names else 0
        # the truth objects counted (not ignored): their (class, area range) cell and image, once per range
        t_img = truth.annotations.image[g.truth.row]
        t_k = np.asarray(g.truth.k, np.int64)
        counted = [~ev.truth_ignored[a] for a in range(n_a)]
        self._pos_cell = np.concatenate([t_k[c] * n_a + a for a, c in enumerate(counted)]) if n_a else t_k[:0]
        self._pos_img = np.concatenate([t_img[c] for c in counted]) if n_a else t_img[:0]
        p_img = pred.annotations.image[g.pred.row] if len(g.pred.row) else np.zeros(0, np.int64)
        acc = np.asarray(g.acc_order, np.int64)
        n = len(acc)
        self._n = n
        k_acc, s_acc, i_acc = np.asarray(g.pred.k)[acc], g.score[acc], p_img[acc]
        # runs of (class, score, image) in accumulation order: a drawn image repeats each run as a whole
        new = np.ones(n, bool)
        if n:
            new[1:] = (k_acc[1:] != k_acc[:-1]) | (s_acc[1:] != s_acc[:-1]) | (i_acc[1:] != i_acc[:-1])
        starts = np.flatnonzero(new)
        lengths = np.diff(np.r_[starts, n])
        tie = lengths > 1
        self._acc = acc.astype(np.int32)
        self._acc_img = i_acc
        self._tie_start, self._tie_len, self._tie_img = starts[tie], lengths[tie], i_acc[starts[tie]]
        # the true positives at area "all" per (image, threshold, class), below each smaller maxDets of the ladder
        at_all = (np.asarray(m.a) == self._a_all) & m_tp
        e_pred = np.asarray(m.pred, np.int64)[at_all]
        e_cell = np.asarray(m.t, np.int64)[at_all] * n_k + np.asarray(g.pred.k, np.int64)[e_pred]
        e_rank, e_img = np.asarray(g.rank, np.int64)[e_pred], p_img[e_pred]
        self._tp_below = [(e_cell[e_rank < d], e_img[e_rank < d]) for d in p.max_dets[:-1]]
        self._native = load("cocoeval") if 0 < n_k < 2**15 and n_a <= 8 and n_t <= 64 else None  # its limits
        k32, r32 = np.asarray(g.pred.k, np.int32), np.asarray(g.rank, np.int32)
        self._base = (k32, r32, np.asarray(g.score, np.float64), np.asarray(ev.pred_out, bool))
        self._matches = (np.asarray(m.t), np.asarray(m.a), np.asarray(m.pred), m_tp, m_ig)
        self._padded: tuple[np.ndarray, ...] = ()
        if self._native is not None:
            self._pad(max(16, n // 16))
            self._matches = (np.ascontiguousarray(m.t, np.int16), np.ascontiguousarray(m.a, np.int16),
                             np.ascontiguousarray(m.pred, np.int32), m_tp, m_ig)
        else:  # the match entries of each prediction, to build them out per copy
            e_pred = np.asarray(m.pred, np.int64)
            count = np.bincount(e_pred, minlength=n)
            self._by_pred = (np.argsort(e_pred, kind="stable"), count, np.cumsum(count) - count)

    def _pad(self, extra: int) -> None:
        """The prediction arrays with ``extra`` inert predictions appended (native walk)."""
        k32, r32, score, out = self._base
        last = max(self._n_k - 1, 0)
        self._padded = (np.r_[k32, np.full(extra, last, np.int32)], np.r_[r32, np.full(extra, _INERT_RANK, np.int32)],
                        np.r_[score, np.zeros(extra)],
                        np.ascontiguousarray(np.concatenate([out, np.zeros((out.shape[0], extra), bool)], axis=1)))

    def order(self, w: IntArray) -> np.ndarray:
        """(sum of copies,) the replicate's accumulation order, as indexes of the base predictions."""
        rep = w[self._acc_img]
        order = np.repeat(self._acc, rep)
        if len(self._tie_start):  # runs of several predictions: copy after copy (A B A B), not A A B B
            ends = np.cumsum(rep)
            seg = ends[self._tie_start] - rep[self._tie_start]  # where each run's copies start in ``order``
            copies = w[self._tie_img]
            size = self._tie_len * copies
            total = int(size.sum())
            if total:
                run = np.repeat(np.arange(len(size)), size)
                j = np.arange(total) - np.repeat(np.cumsum(size) - size, size)  # position inside the run's block
                order[np.repeat(seg, size) + j] = self._acc[self._tie_start[run] + j % self._tie_len[run]]
        return order

    def n_pos(self, w: IntArray) -> IntArray:
        """(K, A) truth objects counted, image i counted ``w[i]`` times."""
        n = np.bincount(self._pos_cell, weights=w[self._pos_img].astype(np.float64), minlength=self._n_k * self._n_a)
        return np.rint(n).astype(np.int64).reshape(self._n_k, self._n_a)

    def arrays(self, w: IntArray) -> tuple[FloatArray, FloatArray]:
        """Precision (T, R, K, A, 1) at the largest maxDets and recall (T, K, A, M) of the replicate with image
        weights ``w`` (recall at a smaller maxDets only at area "all", -1 elsewhere: the summary reads no other)."""
        p = self._p
        n_pos = self.n_pos(w)
        order = self.order(w)
        last = (p.max_dets[-1],)
        if self._native is not None:
            if len(order) >= len(self._padded[0]):
                self._pad(len(order) - self._n + max(16, self._n // 16))
            k_p, r_p, s_p, out_p = self._padded
            walk = np.full(len(k_p), self._n, np.int32)  # the inert predictions after the replicate's own
            walk[:len(order)] = order
            precision, rec_last, _ = _native_accumulate(self._native, k_p, r_p, cast(IntArray, walk), s_p, out_p,
                                                        *self._matches, n_pos, self._n_t, self._n_k,
                                                        p.recall_thresholds, last)
        else:
            precision, rec_last = self._numpy_arrays(order, n_pos, last)
        recall = np.full((self._n_t, self._n_k, self._n_a, len(p.max_dets)), -1.0)
        recall[..., -1] = rec_last[..., 0]
        npig = n_pos[:, self._a_all].astype(np.float64)
        has = n_pos[:, self._a_all] > 0
        for mi, (cell, img) in enumerate(self._tp_below):
            n_tp = np.bincount(cell, weights=w[img].astype(np.float64), minlength=self._n_t * self._n_k)
            with np.errstate(divide="ignore", invalid="ignore"):
                rc = n_tp.reshape(self._n_t, self._n_k) / npig[None, :]
            recall[:, :, self._a_all, mi] = np.where(has[None, :], rc, -1.0)
        return precision, recall

    def _numpy_arrays(self, order: np.ndarray, n_pos: IntArray, last: tuple[int, ...]) -> tuple[FloatArray, FloatArray]:
        """The replicate's predictions and match entries built out (a copy of each), accumulated by numpy."""
        k, rank, score, out = self._base
        m_t, m_a, _, m_tp, m_ig = self._matches
        src = order.astype(np.int64)
        e_order, count, first = self._by_pred
        c = count[src]
        total = int(c.sum())
        e = e_order[np.repeat(first[src] - (np.cumsum(c) - c), c) + np.arange(total, dtype=np.int64)]
        new_pred = np.repeat(np.arange(len(src), dtype=np.int64), c)
        precision, recall, _ = accumulate(
            k=k[src].astype(np.int64), rank=rank[src].astype(np.int64), acc_order=np.arange(len(src), dtype=np.int64),
            score=score[src], pred_out=out[:, src], match_t=m_t[e].astype(np.int64), match_a=m_a[e].astype(np.int64),
            match_pred=new_pred, match_tp=m_tp[e], match_ignored=m_ig[e], n_pos=n_pos, n_thresholds=self._n_t,
            n_classes=self._n_k, recall_thresholds=self._p.recall_thresholds, max_dets=last)
        return precision, recall

    def stats(self, w: IntArray) -> tuple[FloatArray, FloatArray]:
        """(S,) the summary stats (nan where pycocotools prints -1) and (K,) AP per class (mean over the IoU
        thresholds of ``MapResult.ap_per_class``: ``to_pandas()["ap"]``) with image weights ``w``."""
        precision, recall = self.arrays(w)
        return summary(self._p, precision, recall), ap_per_class(precision, self._a_all)


def summary(p: _Params, precision: FloatArray, recall: FloatArray) -> FloatArray:
    """pycocotools' stats from precision at the largest maxDets and recall over the ladder (nan for -1)."""
    table = _KP_STATS if p.iou_type == "keypoints" else _DET_STATS
    out = np.full(len(table), np.nan)
    for i, (_, ap, thr, area, dets) in enumerate(table):
        if isinstance(dets, str) and int(dets) >= len(p.max_dets):
            continue
        d = p.max_dets[int(dets)] if isinstance(dets, str) else dets
        if ap:  # AP always reads the largest maxDets of COCO's default ladder (100; 20 for keypoints)
            v = _summarize(precision, recall, p.iou_thresholds, p.area_names, p.max_dets[-1:], True, thr, area, d)
        else:
            v = _summarize(precision, recall, p.iou_thresholds, p.area_names, p.max_dets, False, thr, area, d)
        out[i] = np.nan if v == -1 else v
    return out


def ap_per_class(precision: FloatArray, a: int) -> FloatArray:
    """(K,) AP per class from precision (T, R, K, A, 1): the mean over R, then over T, as ``MapResult``."""
    pk = np.ascontiguousarray(precision[:, :, :, a, 0].transpose(2, 0, 1))  # (K, T, R)
    valid = (pk > -1).all(axis=2)
    n_k, n_t = pk.shape[0], pk.shape[1]
    per_t = np.full((n_k, n_t), np.nan)
    if pk.size:
        per_t[valid] = np.mean(pk, axis=2)[valid]
    out: FloatArray = per_t.mean(axis=1) if n_t else np.full(n_k, np.nan)
    return out


def draws(n_images: int, n_bootstrap: int, gen: np.random.Generator) -> Iterator[IntArray]:
    """``n_bootstrap`` image weights, one at a time: each a draw of ``n_images`` images with replacement, as counts."""
    for _ in range(n_bootstrap):
        yield np.bincount(gen.integers(0, n_images, n_images), minlength=n_images)


def quantiles(samples: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per column of (B, S) samples: the percentile interval (numpy's linear quantiles of the defined values) and
    the fraction of defined values <= 0; nan where a column has none."""
    s = samples.shape[1]
    lower, upper, not_above = np.full(s, np.nan), np.full(s, np.nan), np.full(s, np.nan)
    alpha = (1 - confidence) / 2
    for j in range(s):
        col = samples[:, j]
        ok = col[~np.isnan(col)]
        if len(ok):
            lower[j], upper[j] = np.quantile(ok, [alpha, 1 - alpha])
            not_above[j] = float(np.mean(ok <= 0))
    return lower, upper, not_above


def resampled(ds: Dataset, w: IntArray) -> Dataset:
    """The dataset with image i listed ``w[i]`` times (copies together): what a replicate evaluates."""
    return ds.select_images(np.repeat(np.arange(len(w)), w))
