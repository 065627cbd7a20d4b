/* maslow._native.cocoeval: pycocotools 2.0.11's COCOeval.evaluateImg (greedy matching) and COCOeval.accumulate
 * (precision / recall / scores), plus the steps that feed them (evaluated predictions, boxes, pairs and their
 * box IoU), as plain C loops.
 *
 * Every function has a numpy twin in maslow/metrics that is the reference (MASLOW_NATIVE=0 selects the twins):
 * dense_ranks and pack_keys: _prepare._pred_orders and packed_order; kept_predictions: _prepare._kept;
 * pred_orders: _prepare._pred_orders then _kept (use_cats); xywh_rows: _iou.boxes; pairs: _prepare.pairs and
 * _iou.box_iou_pairs; match: _match.match; match_flags: coco._match_flags; accumulate: _accumulate.accumulate;
 * oks_terms and oks_sums: _iou.oks_pairs; keypoint_extents: _iou.keypoint_extent_areas; match_table:
 * coco._match_table; obb_iou_pairs: _obb._numpy_iou_pairs. The results are the same bit for bit (same float64 operations in the
 * same order, same comparisons; no FMA: the module is built with -std=c11, where GCC does not contract). Arrays
 * come in through the buffer protocol (C-contiguous, checked item size and kind); outputs are arrays the caller
 * preallocated (or, for the pairs, bytearrays sized here). No global state; the loops run without the GIL.
 *
 * Six files, one translation unit: this one (buffers, boxes, pairs, matching, the module), coco_orders.h (the
 * prediction orders), coco_accumulate.h (the accumulation), coco_oks.h (keypoint similarity), coco_table.h
 * (the per-object match table) and coco_obb.h (oriented-box IoU), included below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "huge.h"   /* big_alloc: scratch buffers in huge pages */
#include "column.h" /* Column: a Buf (in huge pages when large) handed to Python without a copy */

#define BUF_OWNER "cocoeval"
#include "buffers.h" /* get_buf, get_bufs, release_all */

#include "coco_orders.h" /* dense_ranks, pack_keys, kept_predictions, pred_orders */

/* -- boxes ------------------------------------------------------------------------------------------- */

/* The COCO [x, y, w, h] of xyxy box row b as pycocotools reads it, into d: raw row q (NULL: none) when consistent
 * with b (x1 == x, y1 == y, x + w == x2, y + h == y2), else w = x2 - x1, h = y2 - y1. */
static inline void read_xywh(const double *b, const double *q, double *d) {
    if (q && q[0] == b[0] && q[1] == b[1] && q[0] + q[2] == b[2] && q[1] + q[3] == b[3]) {
        d[0] = q[0], d[1] = q[1], d[2] = q[2], d[3] = q[3];
    } else {
        d[0] = b[0], d[1] = b[1], d[2] = b[2] - b[0], d[3] = b[3] - b[1];
    }
}

/* xywh_rows(box, raw | None, rows, out) -> (number of rows without a box, first such position or -1):
 * out[i] = the COCO [x, y, w, h] of box row rows[i] as pycocotools reads it (_prepare.coco_xywh and
 * core.boxes.as_read_xywh): the raw row as read when consistent with the xyxy box (x1 == x, y1 == y,
 * x + w == x2, y + h == y2), else w = x2 - x1, h = y2 - y1. box and raw are (n, 4), out (len(rows), 4); or out
 * (len(rows),): the areas w * h only (_iou.box_areas), without the (n, 4) array. */
static PyObject *py_xywh_rows(PyObject *self, PyObject *args) {
    PyObject *o_box, *o_raw, *o_rows, *o_out;
    if (!PyArg_ParseTuple(args, "OOOO", &o_box, &o_raw, &o_rows, &o_out)) return NULL;
    Py_buffer v[4];
    Py_ssize_t n_box, n_raw = 0, n_rows, n_out;
    int nv = 0, has_raw = o_raw != Py_None;
    if (get_buf(o_box, &v[nv++], K_F64, 0, "box", &n_box) < 0) return NULL;
    if (get_buf(o_rows, &v[nv++], K_I64, 0, "rows", &n_rows) < 0 ||
        get_buf(o_out, &v[nv++], K_F64, 1, "out", &n_out) < 0 ||
        (has_raw && get_buf(o_raw, &v[nv++], K_F64, 0, "raw", &n_raw) < 0)) {
        release_all(v, nv - 1);
        return NULL;
    }
    int areas = n_out == n_rows && n_out != 4 * n_rows;
    if (n_box % 4 || (n_out != 4 * n_rows && !areas) || (has_raw && n_raw != n_box)) {
        release_all(v, nv);
        PyErr_SetString(PyExc_ValueError, "cocoeval.xywh_rows: box/raw must be (n, 4) and out (len(rows), 4) or "
                                          "(len(rows),)");
        return NULL;
    }
    const double *box = v[0].buf, *raw = has_raw ? v[3].buf : NULL;
    const int64_t *rows = v[1].buf;
    double *out = v[2].buf;
    Py_ssize_t n = n_box / 4, n_bad = 0, first_bad = -1, out_of_range = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_rows; i++) {
        int64_t r = rows[i];
        if (r < 0 || r >= n) {
            out_of_range = 1;
            break;
        }
        if (i + 16 < n_rows && rows[i + 16] >= 0 && rows[i + 16] < n) { /* random reads, prefetched */
            __builtin_prefetch(box + 4 * rows[i + 16]);
            if (raw) __builtin_prefetch(raw + 4 * rows[i + 16]);
        }
        const double *b = box + 4 * r;
        if (isnan(b[0]) && !n_bad++) first_bad = i;
        if (areas) {
            double d[4];
            read_xywh(b, raw ? raw + 4 * r : NULL, d);
            out[i] = d[2] * d[3];
        } else {
            read_xywh(b, raw ? raw + 4 * r : NULL, out + 4 * i);
        }
    }
    Py_END_ALLOW_THREADS
    release_all(v, nv);
    if (out_of_range) {
        PyErr_SetString(PyExc_IndexError, "cocoeval.xywh_rows: row out of range");
        return NULL;
    }
    return Py_BuildValue("(nn)", n_bad, first_bad);
}

/* -- pairs and box IoU ------------------------------------------------------------------------------- */

/* C's fmin and fmax (a NaN argument gives the other one, as maskApi.c's bbIou gets them), inlined (the compiler
 * calls libm for fmin/fmax). */
static inline double min_num(double a, double b) { return a < b ? a : b == b ? b : a; }
static inline double max_num(double a, double b) { return a > b ? a : b == b ? b : a; }

/* maskApi.c's bbIou of detection d and truth box b ([x, y, w, h]; crowd: the union is the detection's area), 0
 * where they don't overlap. odd: a coordinate may be infinite or NaN (C's fmin/fmax); else (every coordinate
 * finite: no sum is NaN) plain min/max, which compile to minsd/maxsd without a data-dependent branch (random boxes
 * mispredict half the branches of fmin-like code). The two differ only in the sign of a zero, which no IoU sees
 * (w <= 0 either way). */
static inline double bb_iou(const double *d, const double *b, int crowd, int odd) {
    double da = d[2] * d[3], ga = b[2] * b[3];
    double x2 = d[2] + d[0], gx2 = b[2] + b[0], y2 = d[3] + d[1], gy2 = b[3] + b[1];
    double w = odd ? min_num(x2, gx2) - max_num(d[0], b[0]) : (x2 < gx2 ? x2 : gx2) - (d[0] > b[0] ? d[0] : b[0]);
    double h = odd ? min_num(y2, gy2) - max_num(d[1], b[1]) : (y2 < gy2 ? y2 : gy2) - (d[1] > b[1] ? d[1] : b[1]);
    double in = w * h, q = in / (crowd ? da : (da + ga) - in);
    return (w > 0) & (h > 0) ? q : 0.0;
}

/* 0 when groups (n,) are in [0, n_groups) and sorted, else -1. */
static int sorted_groups(const int64_t *g, Py_ssize_t n, int64_t n_groups) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (g[i] < 0 || g[i] >= n_groups || (i && g[i] < g[i - 1])) return -1;
    return 0;
}

/* The truth rows [*s, *e) of group g, for groups asked in non-decreasing order (*s starts at 0): a merge walk over
 * the sorted truth groups, without a table per group. */
static inline void group_span(const int64_t *tg, Py_ssize_t n_t, int64_t g, Py_ssize_t *s, Py_ssize_t *e) {
    while (*s < n_t && tg[*s] < g) (*s)++;
    for (*e = *s; *e < n_t && tg[*e] == g; (*e)++) {}
}

/* pairs(truth_group, pred_group, n_groups, pred_xywh | None, truth_xywh | None, crowd | None, min_iou=-inf)
 *   -> (p_idx, t_idx, iou | None) as Columns (bytes-like, column.h): _prepare.pairs (prediction-major, truth in
 *   group order) and, with boxes, pycocotools' bbIou of each pair (maskApi.c: the same expressions as
 *   _iou.box_iou_pairs). Both sides sorted by group (as _prepare.build_groups makes them). pred_xywh may be
 *   (box, raw | None, rows): the dataset's xyxy boxes, boxes as read and the rows evaluated, read as xywh_rows
 *   reads them. With boxes, only the pairs with iou >= min_iou (or NaN) are kept (a pair below every threshold
 *   never matches: most pairs, whose arrays then take no memory). */
static PyObject *py_pairs(PyObject *self, PyObject *args) {
    PyObject *o_tg, *o_pg, *o_pb, *o_tb, *o_cr;
    long long n_groups;
    double min_iou = -INFINITY;
    if (!PyArg_ParseTuple(args, "OOLOOO|d", &o_tg, &o_pg, &n_groups, &o_pb, &o_tb, &o_cr, &min_iou)) return NULL;
    Py_buffer v[7];
    int nv = 0;
    Py_ssize_t n_t, n_p, n_pb = 0, n_tb = 0, n_cr = 0, n_rows = 0, n_raw = 0;
    int with_iou = o_pb != Py_None, from_rows = PyTuple_Check(o_pb) && PyTuple_GET_SIZE(o_pb) == 3, has_raw = 0;
    const double *pbox = NULL, *praw = NULL;
    const int64_t *prows = NULL;
    if (get_buf(o_tg, &v[nv], K_I64, 0, "truth_group", &n_t) < 0) return NULL;
    nv++;
    if (get_buf(o_pg, &v[nv], K_I64, 0, "pred_group", &n_p) < 0) goto fail;
    nv++;
    if (with_iou) {
        if (get_buf(from_rows ? PyTuple_GET_ITEM(o_pb, 0) : o_pb, &v[nv], K_F64, 0, "pred_xywh", &n_pb) < 0) goto fail;
        nv++;
        if (get_buf(o_tb, &v[nv], K_F64, 0, "truth_xywh", &n_tb) < 0) goto fail;
        nv++;
        if (get_buf(o_cr, &v[nv], K_U8, 0, "crowd", &n_cr) < 0) goto fail;
        nv++;
        if (from_rows) { /* (box, raw | None, rows): each prediction's xywh read as xywh_rows does, no (n, 4) copy */
            if (get_buf(PyTuple_GET_ITEM(o_pb, 2), &v[nv], K_I64, 0, "pred_rows", &n_rows) < 0) goto fail;
            prows = v[nv++].buf, pbox = v[2].buf;
            has_raw = PyTuple_GET_ITEM(o_pb, 1) != Py_None;
            if (has_raw && get_buf(PyTuple_GET_ITEM(o_pb, 1), &v[nv], K_F64, 0, "pred_raw", &n_raw) < 0) goto fail;
            if (has_raw) praw = v[nv++].buf;
            int bad_rows = n_rows != n_p || n_pb % 4 || (has_raw && n_raw != n_pb);
            for (Py_ssize_t i = 0; i < n_rows && !bad_rows; i++) bad_rows = prows[i] < 0 || 4 * prows[i] >= n_pb;
            if (bad_rows) {
                PyErr_SetString(PyExc_ValueError, "cocoeval.pairs: pred (box, raw, rows) inconsistent");
                goto fail;
            }
        }
        if ((!from_rows && n_pb != 4 * n_p) || n_tb != 4 * n_t || n_cr != n_t) {
            PyErr_SetString(PyExc_ValueError, "cocoeval.pairs: boxes must be (n, 4) and crowd (n_truth,)");
            goto fail;
        }
    }
    if (n_groups < 0) n_groups = 0;
    const int64_t *tg = v[0].buf, *pg = v[1].buf;
    Py_ssize_t total = 0, bad = 0, widest = 0;
    int truth_odd = 0; /* a truth coordinate not finite */
    Py_BEGIN_ALLOW_THREADS
    bad = sorted_groups(tg, n_t, n_groups) < 0 || sorted_groups(pg, n_p, n_groups) < 0;
    for (Py_ssize_t i = 0, s = 0, e = 0; i < n_p && !bad; i++) {
        group_span(tg, n_t, pg[i], &s, &e);
        total += e - s;
        widest = e - s > widest ? e - s : widest;
    }
    if (with_iou)
        for (Py_ssize_t k = 0; k < 4 * n_t; k++) truth_odd |= !isfinite(((const double *)v[3].buf)[k]);
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.pairs: groups must be in [0, n_groups) and sorted");
        goto fail;
    }
    /* room for every pair; the pages past the pairs kept are never written, so never mapped */
    Buf bufs[3] = {{0}, {0}, {0}};
    double *row = with_iou ? malloc(sizeof(double) * ((size_t)widest + 1)) : NULL; /* one prediction's IoUs */
    int oom = (with_iou && !row) || (total && (buf_reserve(&bufs[0], (size_t)total * 8) < 0 ||
                                               buf_reserve(&bufs[1], (size_t)total * 8) < 0 ||
                                               (with_iou && buf_reserve(&bufs[2], (size_t)total * 8) < 0)));
    if (oom) {
        for (int k = 0; k < 3; k++) buf_free(&bufs[k]);
        free(row);
        PyErr_NoMemory();
        goto fail;
    }
    int64_t *p_idx = (int64_t *)bufs[0].data, *t_idx = (int64_t *)bufs[1].data;
    double *iou = with_iou ? (double *)bufs[2].data : NULL;
    const double *db = with_iou ? v[2].buf : NULL, *gb = with_iou ? v[3].buf : NULL;
    const uint8_t *crowd = with_iou ? v[4].buf : NULL;
    Py_ssize_t j = 0; /* pairs kept */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0, s = 0, e = 0; i < n_p; i++) {
        group_span(tg, n_t, pg[i], &s, &e);
        if (!iou) {
            for (Py_ssize_t g = s; g < e; g++, j++) p_idx[j] = i, t_idx[j] = g;
            continue;
        }
        if (e == s) continue;
        if (pbox && i + 16 < n_p) { /* the boxes come in group order: random reads, prefetched */
            __builtin_prefetch(pbox + 4 * prows[i + 16]);
            if (praw) __builtin_prefetch(praw + 4 * prows[i + 16]);
        }
        double d_row[4];
        const double *d = d_row;
        if (pbox) read_xywh(pbox + 4 * prows[i], praw ? praw + 4 * prows[i] : NULL, d_row);
        else d = db + 4 * i;
        /* the IoUs first, then the pairs kept: the kept count (the next pair's slot) never waits on a division */
        if (truth_odd || !isfinite(d[0]) || !isfinite(d[1]) || !isfinite(d[2]) || !isfinite(d[3]))
            for (Py_ssize_t g = s; g < e; g++) row[g - s] = bb_iou(d, gb + 4 * g, crowd[g], 1);
        else
            for (Py_ssize_t g = s; g < e; g++) row[g - s] = bb_iou(d, gb + 4 * g, crowd[g], 0);
        for (Py_ssize_t g = s; g < e; g++) {
            double x = row[g - s];
            p_idx[j] = i, t_idx[j] = g, iou[j] = x;
            j += !(x < min_iou);
        }
    }
    Py_END_ALLOW_THREADS
    free(row);
    release_all(v, nv);
    for (int k = 0; k < 3; k++) {
        bufs[k].len = (size_t)j * 8;
        buf_trim(&bufs[k]); /* the rest of the last huge page written: back to the system */
    }
    PyObject *b_p = take_column(&bufs[0]), *b_t = b_p ? take_column(&bufs[1]) : NULL;
    PyObject *b_i = !b_t ? NULL : with_iou ? take_column(&bufs[2]) : (Py_INCREF(Py_None), Py_None);
    if (!b_i) {
        Py_XDECREF(b_p);
        Py_XDECREF(b_t);
        for (int k = 0; k < 3; k++) buf_free(&bufs[k]);
        return NULL;
    }
    return Py_BuildValue("(NNN)", b_p, b_t, b_i);
fail:
    release_all(v, nv);
    return NULL;
}

/* -- matching ---------------------------------------------------------------------------------------- */

typedef struct {
    const double *iou, *thr;
    const int64_t *p_idx, *t_idx;
    const uint8_t *ignored, *crowd; /* ignored: (A, n_truth) */
    Py_ssize_t n_pairs, n_truth;
    int n_t, n_a, a_match;
    int32_t *partner, *partner_pair;          /* (T, n_truth) */
    int16_t *out_t, *out_a;                    /* (cap,) the entries; counted past cap, not written */
    int32_t *out_p, *out_pair;
    Py_ssize_t n_out, cap;
} match_ctx;

/* Record the match of pred to pair j at threshold t and area range a (match_one, match_single). */
static inline void match_take(match_ctx *m, int64_t pred, Py_ssize_t j, int t, int a, uint8_t *taken) {
    int64_t g = m->t_idx[j];
    if (!m->crowd[g]) taken[g * m->n_t * m->n_a + a * m->n_t + t] = 1;
    if (a == m->a_match) {
        m->partner[(Py_ssize_t)t * m->n_truth + g] = (int32_t)pred;
        m->partner_pair[(Py_ssize_t)t * m->n_truth + g] = (int32_t)j;
    }
    if (m->n_out < m->cap) {
        m->out_t[m->n_out] = (int16_t)t, m->out_a[m->n_out] = (int16_t)a;
        m->out_p[m->n_out] = (int32_t)pred, m->out_pair[m->n_out] = (int32_t)j;
    }
    m->n_out++;
}

/* evaluateImg's inner loop for one prediction (pairs lo..hi) at every (threshold, area range) c = a * T + t:
 * the last free non-ignored truth object with the highest IoU >= min(t, 1 - 1e-10), else the last best
 * ignored one (non-ignored objects come first in pycocotools' order and scanning stops at the first ignored
 * one after a real match). Crowd regions are never "taken". Entries past the output capacity are only counted. */
static int match_one(match_ctx *m, int64_t pred, Py_ssize_t lo, Py_ssize_t hi, uint8_t *taken, double *best,
                     int64_t *pick, const double *thr_c, const int *t_sorted) {
    int n_c = m->n_t * m->n_a;
    memcpy(best, thr_c, sizeof(double) * 2 * (size_t)n_c); /* iou = min([t, 1 - 1e-10]) */
    memset(pick, 0xff, sizeof(int64_t) * 2 * (size_t)n_c); /* m = -1 */
    for (Py_ssize_t j = lo; j < hi; j++) {
        double v = m->iou[j];
        int n_le = 0; /* only thresholds <= v can take this pair (the running best starts at the threshold) */
        while (n_le < m->n_t && m->thr[t_sorted[n_le]] <= v) n_le++;
        if (!n_le) continue;
        int64_t g = m->t_idx[j];
        int crowd = m->crowd[g];
        for (int a = 0; a < m->n_a; a++) {
            int off = m->ignored[(Py_ssize_t)a * m->n_truth + g] ? n_c : 0; /* second half: ignored objects */
            for (int i = 0; i < n_le; i++) {
                int c = a * m->n_t + t_sorted[i];
                if (!crowd && taken[g * n_c + c]) continue; /* gtm[tind, gind] > 0 and not iscrowd */
                if (v >= best[off + c]) {                   /* "if ious < iou: continue", then iou = ious */
                    best[off + c] = v;
                    pick[off + c] = j;
                }
            }
        }
    }
    for (int a = 0; a < m->n_a; a++) {
        for (int t = 0; t < m->n_t; t++) {
            int c = a * m->n_t + t;
            int64_t j = pick[c] >= 0 ? pick[c] : pick[n_c + c];
            if (j >= 0) match_take(m, pred, j, t, a, taken);
        }
    }
    return 0;
}


/* match_one for a prediction with one candidate pair j (most of them): with a single candidate, whether it is
 * ignored doesn't change the pick; it is taken wherever its IoU reaches the threshold and the truth object is
 * free (or a crowd region). Same entries, same order (area range, then threshold). */
static void match_single(match_ctx *m, int64_t pred, Py_ssize_t j, uint8_t *taken) {
    double v = m->iou[j];
    int64_t g = m->t_idx[j];
    const uint8_t *tk = &taken[g * m->n_t * m->n_a];
    int crowd = m->crowd[g];
    for (int a = 0; a < m->n_a; a++)
        for (int t = 0; t < m->n_t; t++)
            if (v >= m->thr[t] && (crowd || !tk[a * m->n_t + t])) match_take(m, pred, j, t, a, taken);
}

/* Walk the predictions in order (pairs are prediction-major and the predictions of a group are in rank order,
 * so each group is matched sequentially, as evaluateImg does). 0, or -1 out of memory, -2 bad input. */
static int match_all(match_ctx *m) {
    int n_c = m->n_t * m->n_a;
    double thr_min = INFINITY;
    for (int t = 0; t < m->n_t; t++) thr_min = fmin(thr_min, m->thr[t]);
    uint8_t *taken = big_zalloc((size_t)(m->n_truth * n_c) + 1);
    double *best = malloc(sizeof(double) * 2 * (size_t)n_c + 8);
    int64_t *pick = malloc(sizeof(int64_t) * 2 * (size_t)n_c + 8);
    double *thr_c = malloc(sizeof(double) * 2 * (size_t)n_c + 8); /* the starting "iou" of each column */
    int *t_sorted = malloc(sizeof(int) * (size_t)m->n_t + 4);     /* thresholds in increasing order */
    int rc = 0;
    if (!taken || !best || !pick || !thr_c || !t_sorted) rc = -1;
    for (int c = 0; rc == 0 && c < 2 * n_c; c++) thr_c[c] = m->thr[c % m->n_t];
    for (int i = 0; rc == 0 && i < m->n_t; i++) { /* insertion sort: T is small */
        int t = i, at = i;
        for (; at > 0 && m->thr[t_sorted[at - 1]] > m->thr[t]; at--) t_sorted[at] = t_sorted[at - 1];
        t_sorted[at] = t;
    }
    for (Py_ssize_t lo = 0, hi; rc == 0 && lo < m->n_pairs; lo = hi) {
        int64_t pred = m->p_idx[lo];
        int live = 0; /* a pair below every threshold can never match (the numpy twin drops it first) */
        for (hi = lo; hi < m->n_pairs && m->p_idx[hi] == pred; hi++) {
            if (m->t_idx[hi] < 0 || m->t_idx[hi] >= m->n_truth) rc = -2;
            live |= m->iou[hi] >= thr_min;
        }
        if (hi < m->n_pairs && m->p_idx[hi] < pred) rc = -2;
        if (rc == 0 && live && hi == lo + 1) match_single(m, pred, lo, taken);
        else if (rc == 0 && live) rc = match_one(m, pred, lo, hi, taken, best, pick, thr_c, t_sorted);
    }
    free(taken);
    free(best);
    free(pick);
    free(thr_c);
    free(t_sorted);
    return rc;
}

/* match(iou, p_idx, t_idx, thresholds, truth_ignored, crowd, a_match, truth_partner, truth_pair, out_t, out_a,
 *       out_pred, out_pair) -> number of entries; thresholds already min(t, 1 - 1e-10); truth_partner and
 *   truth_pair (T, n_truth) int32 filled with -1 by the caller; the four (cap,) outputs (int16, int16, int32,
 *   int32: T, A < 2**15 and pairs < 2**31, checked) receive the entries (threshold, area range, prediction,
 *   pair) in prediction order. A count above cap means they were
 *   too short: call again with longer ones (and fresh partner arrays). */
static PyObject *py_match(PyObject *self, PyObject *args) {
    enum { N = 12 };
    PyObject *o[N];
    int a_match;
    if (!PyArg_ParseTuple(args, "OOOOOOiOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &a_match, &o[6], &o[7],
                          &o[8], &o[9], &o[10], &o[11]))
        return NULL;
    static const enum kind kinds[N] = {K_F64, K_I64, K_I64, K_F64, K_U8,  K_U8,
                                       K_I32, K_I32, K_I16, K_I16, K_I32, K_I32};
    static const char *names[N] = {"iou", "p_idx", "t_idx", "thresholds", "truth_ignored", "crowd",
                                   "truth_partner", "truth_pair", "out_t", "out_a", "out_pred", "out_pair"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 6) < 0) return NULL;
    match_ctx m = {0};
    m.iou = v[0].buf, m.p_idx = v[1].buf, m.t_idx = v[2].buf, m.thr = v[3].buf;
    m.ignored = v[4].buf, m.crowd = v[5].buf, m.partner = v[6].buf, m.partner_pair = v[7].buf;
    m.out_t = v[8].buf, m.out_a = v[9].buf, m.out_p = v[10].buf, m.out_pair = v[11].buf, m.cap = n[8];
    m.n_pairs = n[0], m.n_t = (int)n[3], m.n_truth = n[5], m.a_match = a_match;
    m.n_a = m.n_truth ? (int)(n[4] / m.n_truth) : 0;
    if (n[1] != n[0] || n[2] != n[0] || (m.n_truth && n[4] % m.n_truth) || n[6] != m.n_t * m.n_truth ||
        n[7] != n[6] || m.n_t < 1 || n[9] != n[8] || n[10] != n[8] || n[11] != n[8] || m.n_t >= 32768 ||
        m.n_a >= 32768 || m.n_pairs >= INT32_MAX) {
        release_all(v, N);
        PyErr_SetString(PyExc_ValueError, "cocoeval.match: inconsistent array sizes");
        return NULL;
    }
    int rc = 0;
    if (m.n_truth && m.n_pairs) {
        Py_BEGIN_ALLOW_THREADS
        rc = match_all(&m);
        Py_END_ALLOW_THREADS
    }
    release_all(v, N);
    if (rc == -1) return PyErr_NoMemory();
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.match: p_idx must be sorted, t_idx in range");
        return NULL;
    }
    return PyLong_FromSsize_t(m.n_out);
}

/* match_flags(pair, a, t_idx, truth_ignored, id_zero, tp, ignored) -> None (pair int32 and a int16, as match()
 * writes them): for each match entry, whether it is a true positive (its truth object not ignored at its area
 * range and its COCO id not 0) and whether its truth object is ignored (the prediction then is too): what
 * accumulate reads. tp and ignored are (E,) uint8 outputs. */
static PyObject *py_match_flags(PyObject *self, PyObject *args) {
    enum { N = 7 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6])) return NULL;
    static const enum kind kinds[N] = {K_I32, K_I16, K_I64, K_U8, K_U8, K_U8, K_U8};
    static const char *names[N] = {"pair", "a", "t_idx", "truth_ignored", "id_zero", "tp", "ignored"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 5) < 0) return NULL;
    const int32_t *pair = v[0].buf;
    const int16_t *area = v[1].buf;
    const int64_t *t_idx = v[2].buf;
    const uint8_t *ignored = v[3].buf, *id_zero = v[4].buf;
    uint8_t *tp = v[5].buf, *ig = v[6].buf;
    Py_ssize_t n_e = n[0], n_pairs = n[2], n_truth = n[4];
    int n_a = n_truth ? (int)(n[3] / n_truth) : 0, bad = n[1] != n_e || n[5] != n_e || n[6] != n_e ||
                                                         (n_truth && n[3] != n_a * n_truth);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t e = 0; e < n_e && !bad; e++) {
        if (pair[e] < 0 || pair[e] >= n_pairs || area[e] < 0 || area[e] >= n_a) {
            bad = 1;
            break;
        }
        int64_t g = t_idx[pair[e]];
        if (g < 0 || g >= n_truth) {
            bad = 1;
            break;
        }
        ig[e] = ignored[area[e] * n_truth + g] != 0;
        tp[e] = !ig[e] && !id_zero[g];
    }
    Py_END_ALLOW_THREADS
    release_all(v, N);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.match_flags: inconsistent sizes or index out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}

#include "coco_accumulate.h" /* accumulate: COCOeval.accumulate (py_accumulate) */
#include "coco_oks.h"        /* oks_terms, oks_sums (COCOeval.computeOks around numpy's exp), keypoint_extents */
#include "coco_table.h"      /* match_table: the per-object match table (coco._match_table) */
#include "coco_obb.h"        /* obb_iou_pairs: IoU of oriented boxes (metrics._obb) */


static PyMethodDef methods[] = {
    {"dense_ranks", py_dense_ranks, METH_VARARGS, "Dense ranks of the scores, highest first."},
    {"pack_keys", py_pack_keys, METH_VARARGS, "Packed int64 sort keys of int columns and the row."},
    {"kept_predictions", py_kept_predictions, METH_VARARGS, "The first maxDets predictions of every group."},
    {"pred_orders", py_pred_orders, METH_VARARGS, "Group and accumulation orders of the kept predictions (use_cats)."},
    {"xywh_rows", py_xywh_rows, METH_VARARGS, "COCO [x, y, w, h] of box rows as pycocotools reads them."},
    {"pairs", py_pairs, METH_VARARGS, "Pairs of each group (prediction-major) and their box IoU."},
    {"match", py_match, METH_VARARGS, "Greedy matching of every prediction (COCOeval.evaluateImg)."},
    {"empty", column_empty, METH_O, "empty(nbytes) -> uninitialised writable buffer, in huge pages when large."},
    {"match_flags", py_match_flags, METH_VARARGS, "TP and ignored flags of the match entries."},
    {"accumulate", py_accumulate, METH_VARARGS, "Precision, recall and scores (COCOeval.accumulate)."},
    {"oks_terms", py_oks_terms, METH_VARARGS, "The OKS terms of keypoint pairs (before numpy's exp)."},
    {"oks_sums", py_oks_sums, METH_VARARGS, "OKS of keypoint pairs from the exp of their terms."},
    {"keypoint_extents", py_keypoint_extents, METH_VARARGS, "Area of the box around each row's keypoints."},
    {"match_table", py_match_table, METH_VARARGS, "The per-object match table at one area range."},
    {"obb_iou_pairs", py_obb_iou_pairs, METH_VARARGS, "IoU of oriented-box pairs (convex quadrilaterals)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "cocoeval",
                                 "pycocotools' matching and accumulation in C (see maslow.metrics).", -1, methods};

PyMODINIT_FUNC PyInit_cocoeval(void) {
    if (PyType_Ready(&ColumnType) < 0) return NULL;
    return PyModule_Create(&mod);
}
