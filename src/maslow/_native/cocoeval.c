/* maslow._native.cocoeval: pycocotools 2.0.11's COCOeval.evaluateImg (greedy matching) and COCOeval.accumulate
 * (precision / recall / scores), plus the steps that feed them (evaluated predictions, boxes, pairs and their
 * box IoU), as plain C loops.
 *
 * Every function has a numpy twin in maslow/metrics that is the reference (MASLOW_NATIVE=0 selects the twins):
 * dense_ranks and pack_keys: _prepare._pred_orders and packed_order; kept_predictions: _prepare._kept;
 * xywh_rows: _iou.boxes; pairs: _prepare.pairs and _iou.box_iou_pairs;
 * match: _match.match; match_flags: coco._match_flags; accumulate: _accumulate.accumulate. The results are the
 * same bit for bit (same float64 operations in the same order, same comparisons; no FMA: the module is built
 * with -std=c11, where GCC does not contract). Arrays come in through the buffer protocol (C-contiguous,
 * checked item size and kind); outputs are arrays the caller preallocated (or, for the pairs, bytearrays sized
 * here). No global state; the loops run without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* -- buffers ------------------------------------------------------------------------------------------ */

enum kind { K_I64, K_I32, K_I16, K_F64, K_U8 };

/* A C-contiguous buffer of int64 ('q'/'l'), int32 ('i'), int16 ('h'), float64 ('d') or one-byte bools/uint8
 * ('?'/'B'), of n items. */
static const char *kind_names[] = {"int64", "int32", "int16", "float64", "uint8/bool"};

static int get_buf(PyObject *obj, Py_buffer *view, enum kind kind, int writable, const char *name, Py_ssize_t *n) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int ok = 0;
    if (kind == K_I64) ok = view->itemsize == 8 && (f[0] == 'q' || f[0] == 'l') && f[1] == 0;
    if (kind == K_I32) ok = view->itemsize == 4 && (f[0] == 'i' || f[0] == 'l') && f[1] == 0;
    if (kind == K_I16) ok = view->itemsize == 2 && f[0] == 'h' && f[1] == 0;
    if (kind == K_F64) ok = view->itemsize == 8 && f[0] == 'd' && f[1] == 0;
    if (kind == K_U8) ok = view->itemsize == 1 && (f[0] == 'B' || f[0] == '?' || f[0] == 'b') && f[1] == 0;
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "cocoeval: %s must be a C-contiguous %s array, got format '%s' itemsize %zd",
                     name, kind_names[kind], f, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    *n = view->len / view->itemsize;
    return 0;
}

static void release_all(Py_buffer *views, int n) {
    for (int i = 0; i < n; i++) PyBuffer_Release(&views[i]);
}

/* -- prediction orders ------------------------------------------------------------------------------- */

/* dense_ranks(score, order, out) -> None: out[order[i]] = the number of distinct scores before position i of
 * order (score sorted, highest first): _prepare._pred_orders' dense rank of -score (equal floats share one). */
static PyObject *py_dense_ranks(PyObject *self, PyObject *args) {
    PyObject *o[3];
    if (!PyArg_ParseTuple(args, "OOO", &o[0], &o[1], &o[2])) return NULL;
    static const enum kind kinds[3] = {K_F64, K_I64, K_I64};
    static const char *names[3] = {"score", "order", "out"};
    Py_buffer v[3];
    Py_ssize_t n[3];
    for (int i = 0; i < 3; i++) {
        if (get_buf(o[i], &v[i], kinds[i], i == 2, names[i], &n[i]) < 0) {
            release_all(v, i);
            return NULL;
        }
    }
    const double *score = v[0].buf;
    const int64_t *order = v[1].buf;
    int64_t *out = v[2].buf;
    int bad = n[1] != n[0] || n[2] != n[0];
    Py_BEGIN_ALLOW_THREADS
    int64_t rank = -1;
    double prev = 0.0;
    for (Py_ssize_t i = 0; i < n[0] && !bad; i++) {
        int64_t p = order[i];
        if (p < 0 || p >= n[0]) {
            bad = 1;
            break;
        }
        double x = score[p];
        rank += !i || x != prev; /* numpy: s[1:] != s[:-1] */
        prev = x;
        out[p] = rank;
    }
    Py_END_ALLOW_THREADS
    release_all(v, 3);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.dense_ranks: inconsistent sizes or order out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* pack_keys(columns, spans, row_bits, key) -> None: key[i] = ((c0[i] * s1 + c1[i]) * s2 + ...) << row_bits | i,
 * the packed sort keys of _prepare.packed_order (the caller checked every column in [0, span) and the width). */
static PyObject *py_pack_keys(PyObject *self, PyObject *args) {
    PyObject *cols, *spans, *o_key;
    int row_bits;
    if (!PyArg_ParseTuple(args, "O!O!iO", &PyTuple_Type, &cols, &PyTuple_Type, &spans, &row_bits, &o_key))
        return NULL;
    Py_ssize_t n_cols = PyTuple_GET_SIZE(cols), n_key;
    if (n_cols < 1 || n_cols > 4 || PyTuple_GET_SIZE(spans) != n_cols || row_bits < 0 || row_bits > 62) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.pack_keys: 1 to 4 columns, one span each");
        return NULL;
    }
    Py_buffer v[5];
    const int64_t *c[4];
    int64_t span[4];
    if (get_buf(o_key, &v[0], K_I64, 1, "key", &n_key) < 0) return NULL;
    for (Py_ssize_t j = 0; j < n_cols; j++) {
        Py_ssize_t n_c;
        span[j] = PyLong_AsLongLong(PyTuple_GET_ITEM(spans, j));
        if ((span[j] == -1 && PyErr_Occurred()) ||
            get_buf(PyTuple_GET_ITEM(cols, j), &v[j + 1], K_I64, 0, "column", &n_c) < 0) {
            release_all(v, (int)j + 1); /* key and the columns before j */
            return NULL;
        }
        if (n_c != n_key) {
            release_all(v, (int)j + 2);
            PyErr_SetString(PyExc_ValueError, "cocoeval.pack_keys: columns and key must have one length");
            return NULL;
        }
        c[j] = v[j + 1].buf;
    }
    int64_t *key = v[0].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_key; i++) {
        int64_t k = c[0][i];
        for (Py_ssize_t j = 1; j < n_cols; j++) k = k * span[j] + c[j][i];
        key[i] = (k << row_bits) | (int64_t)i;
    }
    Py_END_ALLOW_THREADS
    release_all(v, (int)n_cols + 1);
    Py_RETURN_NONE;
}

/* -- evaluated predictions -------------------------------------------------------------------------- */

/* kept_predictions(p_order, acc_order, group, k, score, max_det, sel, kept_group, rank, kept_k, acc, kept_score)
 *   -> number kept: evaluateImg's dt[0:maxDet] of every group (_prepare._kept). Walks the predictions in group
 *   order (p_order: group, -score, row); keeps each with rank < max_det in its group (sel, its group, rank,
 *   class and score); then acc = the accumulation order (acc_order, over all predictions) as positions among
 *   the kept ones. Outputs are (n,) int64 (kept_score float64), filled up to the count. */
static PyObject *py_kept_predictions(PyObject *self, PyObject *args) {
    enum { N = 11 };
    PyObject *o[N];
    long long max_det;
    if (!PyArg_ParseTuple(args, "OOOOOLOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &max_det, &o[5], &o[6], &o[7],
                          &o[8], &o[9], &o[10]))
        return NULL;
    static const enum kind kinds[N] = {K_I64, K_I64, K_I64, K_I64, K_F64, K_I64,
                                       K_I64, K_I64, K_I64, K_I64, K_F64};
    static const char *names[N] = {"p_order", "acc_order", "group", "k", "score", "sel", "kept_group", "rank",
                                   "kept_k", "acc", "kept_score"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    for (int i = 0; i < N; i++) {
        if (get_buf(o[i], &v[i], kinds[i], i >= 5, names[i], &n[i]) < 0) {
            release_all(v, i);
            return NULL;
        }
    }
    Py_ssize_t m = n[0], kept = 0, bad = 0;
    for (int i = 1; i < N; i++) bad |= n[i] != m;
    int64_t *side_pos = bad ? NULL : malloc(sizeof(int64_t) * ((size_t)m + 1));
    if (!bad && !side_pos) {
        release_all(v, N);
        return PyErr_NoMemory();
    }
    const int64_t *order = v[0].buf, *acc_order = v[1].buf, *group = v[2].buf, *k = v[3].buf;
    const double *score = v[4].buf;
    int64_t *sel = v[5].buf, *kg = v[6].buf, *rank = v[7].buf, *kk = v[8].buf, *acc = v[9].buf;
    double *ks = v[10].buf;
    Py_ssize_t n_acc = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t r = 0, prev = 0;
    for (Py_ssize_t i = 0; i < m && !bad; i++) {
        if (i + 32 < m && (uint64_t)order[i + 32] < (uint64_t)m) { /* the random reads, prefetched */
            int64_t q = order[i + 32];
            __builtin_prefetch(&group[q]), __builtin_prefetch(&k[q]), __builtin_prefetch(&score[q]);
            __builtin_prefetch(&side_pos[q], 1);
        }
        int64_t p = order[i];
        if (p < 0 || p >= m) {
            bad = 1;
            break;
        }
        int64_t g = group[p];
        r = (i && g == prev) ? r + 1 : 0;
        prev = g;
        side_pos[p] = r < max_det ? kept : -1;
        if (r < max_det) {
            sel[kept] = p, kg[kept] = g, rank[kept] = r, kk[kept] = k[p], ks[kept] = score[p];
            kept++;
        }
    }
    for (Py_ssize_t i = 0; i < m && !bad; i++) {
        if (i + 32 < m && (uint64_t)acc_order[i + 32] < (uint64_t)m) __builtin_prefetch(&side_pos[acc_order[i + 32]]);
        int64_t p = acc_order[i];
        if (p < 0 || p >= m) {
            bad = 1;
            break;
        }
        if (side_pos[p] >= 0) acc[n_acc++] = side_pos[p];
    }
    Py_END_ALLOW_THREADS
    free(side_pos);
    release_all(v, N);
    if (bad || n_acc != kept) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.kept_predictions: inconsistent sizes, or orders that are not "
                                          "permutations");
        return NULL;
    }
    return PyLong_FromSsize_t(kept);
}

/* -- boxes ------------------------------------------------------------------------------------------- */

/* xywh_rows(box, raw | None, rows, out) -> (number of rows without a box, first such position or -1):
 * out[i] = the COCO [x, y, w, h] of box row rows[i] as pycocotools reads it (_prepare.coco_xywh and
 * core.boxes.as_read_xywh): the raw row as read when consistent with the xyxy box (x1 == x, y1 == y,
 * x + w == x2, y + h == y2), else w = x2 - x1, h = y2 - y1. box and raw are (n, 4), out (len(rows), 4). */
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
    if (n_box % 4 || n_out != 4 * n_rows || (has_raw && n_raw != n_box)) {
        release_all(v, nv);
        PyErr_SetString(PyExc_ValueError, "cocoeval.xywh_rows: box/raw must be (n, 4) and out (len(rows), 4)");
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
        const double *b = box + 4 * r, *q = raw ? raw + 4 * r : NULL;
        double *d = out + 4 * i;
        if (isnan(b[0]) && !n_bad++) first_bad = i;
        if (q && q[0] == b[0] && q[1] == b[1] && q[0] + q[2] == b[2] && q[1] + q[3] == b[3]) {
            d[0] = q[0], d[1] = q[1], d[2] = q[2], d[3] = q[3];
        } else {
            d[0] = b[0], d[1] = b[1], d[2] = b[2] - b[0], d[3] = b[3] - b[1];
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

/* t_start/t_count (n_groups,): the truth rows of each group (the truth side is sorted by group). Fails (-1) when
 * a group index is out of range or unsorted. */
static int group_spans(const int64_t *tg, Py_ssize_t n_t, int64_t n_groups, int64_t *t_start, int64_t *t_count) {
    for (int64_t g = 0; g < n_groups; g++) t_start[g] = t_count[g] = 0;
    for (Py_ssize_t i = 0; i < n_t; i++) {
        if (tg[i] < 0 || tg[i] >= n_groups || (i && tg[i] < tg[i - 1])) return -1;
        if (!t_count[tg[i]]) t_start[tg[i]] = i;
        t_count[tg[i]]++;
    }
    return 0;
}

/* pairs(truth_group, pred_group, n_groups, pred_xywh | None, truth_xywh | None, crowd | None)
 *   -> (p_idx, t_idx, iou | None) as bytearrays: _prepare.pairs (prediction-major, truth in group order) and,
 *   with boxes, pycocotools' bbIou of each pair (maskApi.c: the same expressions as _iou.box_iou_pairs). */
static PyObject *py_pairs(PyObject *self, PyObject *args) {
    PyObject *o_tg, *o_pg, *o_pb, *o_tb, *o_cr;
    long long n_groups;
    if (!PyArg_ParseTuple(args, "OOLOOO", &o_tg, &o_pg, &n_groups, &o_pb, &o_tb, &o_cr)) return NULL;
    Py_buffer v[5];
    int nv = 0;
    Py_ssize_t n_t, n_p, n_pb = 0, n_tb = 0, n_cr = 0;
    int with_iou = o_pb != Py_None;
    if (get_buf(o_tg, &v[nv], K_I64, 0, "truth_group", &n_t) < 0) return NULL;
    nv++;
    if (get_buf(o_pg, &v[nv], K_I64, 0, "pred_group", &n_p) < 0) goto fail;
    nv++;
    if (with_iou) {
        if (get_buf(o_pb, &v[nv], K_F64, 0, "pred_xywh", &n_pb) < 0) goto fail;
        nv++;
        if (get_buf(o_tb, &v[nv], K_F64, 0, "truth_xywh", &n_tb) < 0) goto fail;
        nv++;
        if (get_buf(o_cr, &v[nv], K_U8, 0, "crowd", &n_cr) < 0) goto fail;
        nv++;
        if (n_pb != 4 * n_p || n_tb != 4 * n_t || n_cr != n_t) {
            PyErr_SetString(PyExc_ValueError, "cocoeval.pairs: boxes must be (n, 4) and crowd (n_truth,)");
            goto fail;
        }
    }
    if (n_groups < 0) n_groups = 0;
    const int64_t *tg = v[0].buf, *pg = v[1].buf;
    int64_t *t_start = malloc(sizeof(int64_t) * (size_t)(n_groups + 1));
    int64_t *t_count = malloc(sizeof(int64_t) * (size_t)(n_groups + 1));
    if (!t_start || !t_count) {
        free(t_start);
        free(t_count);
        PyErr_NoMemory();
        goto fail;
    }
    Py_ssize_t total = 0, bad = 0;
    Py_BEGIN_ALLOW_THREADS
    if (group_spans(tg, n_t, n_groups, t_start, t_count) < 0) bad = 1;
    for (Py_ssize_t i = 0; i < n_p && !bad; i++) {
        if (pg[i] < 0 || pg[i] >= n_groups) bad = 1;
        else total += t_count[pg[i]];
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        free(t_start);
        free(t_count);
        PyErr_SetString(PyExc_ValueError, "cocoeval.pairs: groups must be in [0, n_groups), truth groups sorted");
        goto fail;
    }
    PyObject *b_p = PyByteArray_FromStringAndSize(NULL, total * 8);
    PyObject *b_t = PyByteArray_FromStringAndSize(NULL, total * 8);
    PyObject *b_i = with_iou ? PyByteArray_FromStringAndSize(NULL, total * 8) : (Py_INCREF(Py_None), Py_None);
    if (!b_p || !b_t || !b_i) {
        Py_XDECREF(b_p);
        Py_XDECREF(b_t);
        Py_XDECREF(b_i);
        free(t_start);
        free(t_count);
        goto fail;
    }
    int64_t *p_idx = (int64_t *)PyByteArray_AS_STRING(b_p), *t_idx = (int64_t *)PyByteArray_AS_STRING(b_t);
    double *iou = with_iou ? (double *)PyByteArray_AS_STRING(b_i) : NULL;
    const double *db = with_iou ? v[2].buf : NULL, *gb = with_iou ? v[3].buf : NULL;
    const uint8_t *crowd = with_iou ? v[4].buf : NULL;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < n_p; i++) {
        int64_t s = t_start[pg[i]], c = t_count[pg[i]];
        for (int64_t g = s; g < s + c; g++, j++) {
            p_idx[j] = i;
            t_idx[j] = g;
            if (!iou) continue;
            /* maskApi.c bbIou: w = min(dw + dx, gw + gx) - max(dx, gx); crowd: union = detection area */
            const double *d = db + 4 * i, *b = gb + 4 * g;
            double da = d[2] * d[3], ga = b[2] * b[3];
            double w = fmin(d[2] + d[0], b[2] + b[0]) - fmax(d[0], b[0]);
            double h = fmin(d[3] + d[1], b[3] + b[1]) - fmax(d[1], b[1]);
            double in = w * h;
            double u = crowd[g] ? da : (da + ga) - in;
            iou[j] = (w > 0 && h > 0) ? in / u : 0.0;
        }
    }
    Py_END_ALLOW_THREADS
    free(t_start);
    free(t_count);
    release_all(v, nv);
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
    int64_t *partner, *partner_pair;          /* (T, n_truth) */
    int16_t *out_t, *out_a;                    /* (cap,) the entries; counted past cap, not written */
    int32_t *out_p, *out_pair;
    Py_ssize_t n_out, cap;
} match_ctx;

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
            if (j < 0) continue;
            int64_t g = m->t_idx[j];
            if (!m->crowd[g]) taken[g * n_c + c] = 1;
            if (a == m->a_match) { /* gtm: the last prediction matched to each truth object */
                m->partner[(Py_ssize_t)t * m->n_truth + g] = pred;
                m->partner_pair[(Py_ssize_t)t * m->n_truth + g] = j;
            }
            if (m->n_out < m->cap) {
                m->out_t[m->n_out] = (int16_t)t, m->out_a[m->n_out] = (int16_t)a;
                m->out_p[m->n_out] = (int32_t)pred, m->out_pair[m->n_out] = (int32_t)j;
            }
            m->n_out++;
        }
    }
    return 0;
}

/* Walk the predictions in order (pairs are prediction-major and the predictions of a group are in rank order,
 * so each group is matched sequentially, as evaluateImg does). 0, or -1 out of memory, -2 bad input. */
static int match_all(match_ctx *m) {
    int n_c = m->n_t * m->n_a;
    double thr_min = INFINITY;
    for (int t = 0; t < m->n_t; t++) thr_min = fmin(thr_min, m->thr[t]);
    uint8_t *taken = calloc((size_t)(m->n_truth * n_c) + 1, 1);
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
        if (rc == 0 && live) rc = match_one(m, pred, lo, hi, taken, best, pick, thr_c, t_sorted);
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
 *   truth_pair (T, n_truth) int64 filled with -1 by the caller; the four (cap,) outputs (int16, int16, int32,
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
                                       K_I64, K_I64, K_I16, K_I16, K_I32, K_I32};
    static const char *names[N] = {"iou", "p_idx", "t_idx", "thresholds", "truth_ignored", "crowd",
                                   "truth_partner", "truth_pair", "out_t", "out_a", "out_pred", "out_pair"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    for (int i = 0; i < N; i++) {
        if (get_buf(o[i], &v[i], kinds[i], i >= 6, names[i], &n[i]) < 0) {
            release_all(v, i);
            return NULL;
        }
    }
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
    for (int i = 0; i < N; i++) {
        if (get_buf(o[i], &v[i], kinds[i], i >= 5, names[i], &n[i]) < 0) {
            release_all(v, i);
            return NULL;
        }
    }
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

/* -- accumulation ------------------------------------------------------------------------------------ */

typedef struct {
    Py_ssize_t n, n_e;
    int n_t, n_r, n_k, n_a, n_m;
    const int64_t *k, *rank, *order, *n_pos, *max_dets;
    const int16_t *m_t, *m_a; /* the match entries, as match() writes them */
    const int32_t *m_pred;
    const double *score, *rec_thr;
    const uint8_t *out, *m_tp, *m_ig;    /* out: (A, n) */
    double *precision, *recall, *scores; /* (T, R, K, A, M), (T, K, A, M), (T, R, K, A, M) */
} acc_ctx;

/* One prediction as the walk reads it (24 bytes; gathered from its record, one random fetch per prediction). */
typedef struct {
    double score;
    int32_t rank; /* in its group (image, class), clamped to INT32_MAX */
    int32_t k;    /* class */
    int32_t slot; /* row in the masks; -1: matched nowhere */
    uint32_t out; /* bit a: area outside range a (A <= 32) */
} pred_rec;

typedef struct {
    pred_rec *rec;   /* (n,) by prediction */
    uint64_t *tp;    /* (n_slots, A) bit t: a true positive at threshold t (T <= 64) */
    uint64_t *free;  /* (n_slots, A) bit t: not matched (or matched to a truth object of id 0) */
    int64_t *need;   /* (K, A, R) true positives needed to reach each recall threshold (0: position 0) */
    double *pr, *sc; /* (M, A, T, cap) precision and score at each true positive of the current class */
    int64_t cap;
    int64_t *n_tp, *fp, *fp_free, *nd; /* (M, A, T), (M, A, T), (M, A), (M,) running counts of the walk */
    double *top;                       /* (M,) score at position 0 */
    double *cell_p, *cell_s, *cell_r;  /* one class: (T, R, A, M), (T, R, A, M), (T, A, M) */
} acc_work;

/* The prediction records, and for every matched prediction and area range the thresholds where it is a TP
 * (truth object not ignored, id not 0) and where it is free (no match, or a truth object of id 0: pycocotools'
 * dtm holds the id, 0); the rest are matches to ignored truth objects. -2: index out of range, -1: no memory. */
static int gather(const acc_ctx *c, acc_work *w) {
    int rc = 0;
    for (Py_ssize_t p = 0; p < c->n && !rc; p++) {
        pred_rec *x = &w->rec[p];
        x->score = c->score[p], x->k = (int32_t)c->k[p], x->slot = -1, x->out = 0;
        x->rank = c->rank[p] > INT32_MAX ? INT32_MAX : (int32_t)c->rank[p];
        if (c->k[p] < 0 || c->k[p] >= c->n_k || c->rank[p] < 0) rc = -2;
        for (int a = 0; a < c->n_a; a++) x->out |= (uint32_t)(c->out[(Py_ssize_t)a * c->n + p] != 0) << a;
    }
    /* one slot per matched prediction, made on its first entry (at most min(n, E) slots: calloc'd, so only the
     * pages of slots in use are ever touched) */
    size_t max_slots = (size_t)(c->n < c->n_e ? c->n : c->n_e) + 1;
    uint64_t all = c->n_t == 64 ? ~(uint64_t)0 : ((uint64_t)1 << c->n_t) - 1;
    if (!rc && (!(w->tp = calloc(max_slots * c->n_a, 8)) || !(w->free = calloc(max_slots * c->n_a, 8)))) rc = -1;
    int32_t n_slots = 0;
    for (Py_ssize_t e = 0; e < c->n_e && !rc; e++) {
        int64_t p = c->m_pred[e];
        if (p < 0 || p >= c->n || c->m_t[e] < 0 || c->m_t[e] >= c->n_t || c->m_a[e] < 0 || c->m_a[e] >= c->n_a) {
            rc = -2;
            break;
        }
        if (!(c->m_tp[e] || c->m_ig[e])) continue;
        int32_t s = w->rec[p].slot;
        if (s < 0) {
            s = w->rec[p].slot = n_slots++;
            for (int a = 0; a < c->n_a; a++) w->free[(size_t)s * c->n_a + a] = all;
        }
        size_t at = (size_t)s * c->n_a + c->m_a[e];
        uint64_t bit = (uint64_t)1 << c->m_t[e];
        w->free[at] &= ~bit;
        if (c->m_tp[e]) w->tp[at] |= bit;
    }
    return rc;
}

/* need[k, a, r]: the smallest n >= 1 with n / npig >= r in float64 (searchsorted(rc, r, "left") lands on the
 * n-th true positive), 0 for r <= 0 (position 0, whatever it holds), npig + 1 when unreachable. */
static void recall_needs(const acc_ctx *c, acc_work *w) {
    for (int ka = 0; ka < c->n_k * c->n_a; ka++) {
        double npig = (double)c->n_pos[ka];
        for (int r = 0; r < c->n_r; r++) {
            double thr = c->rec_thr[r];
            int64_t *out = &w->need[(Py_ssize_t)ka * c->n_r + r];
            if (thr <= 0 || c->n_pos[ka] <= 0) {
                *out = thr <= 0 ? 0 : 1;
                continue;
            }
            double est = ceil(thr * npig);
            int64_t n = est < 1 ? 1 : est > npig + 1 ? (int64_t)npig + 1 : (int64_t)est;
            while (n > 1 && (double)(n - 1) / npig >= thr) n--;
            while (n <= c->n_pos[ka] && (double)n / npig < thr) n++;
            *out = n;
        }
    }
}

/* The precision envelope of one cell and its reads at the recall thresholds (accumulate's "q" and "ss"), into
 * the class buffers. */
static void read_cell(const acc_ctx *c, const acc_work *w, int k, int a, int t, int mi) {
    int am = a * c->n_m + mi, n_am = c->n_a * c->n_m, mat = (mi * c->n_a + a) * c->n_t + t;
    double *pr = &w->pr[mat * w->cap], *sc = &w->sc[mat * w->cap];
    int64_t m = w->n_tp[mat], nd = w->nd[mi];
    const int64_t *need = &w->need[((Py_ssize_t)k * c->n_a + a) * c->n_r];
    for (int64_t i = m - 1; i > 0; i--) /* "if pr[i] > pr[i-1]: pr[i-1] = pr[i]" (only TPs can raise it) */
        pr[i - 1] = pr[i] > pr[i - 1] ? pr[i] : pr[i - 1];
    w->cell_r[t * n_am + am] = (double)m / (double)c->n_pos[k * c->n_a + a]; /* rc[-1] */
    for (int r = 0; r < c->n_r; r++) { /* the bare try/except: the first unreachable threshold ends the fill */
        Py_ssize_t cell = ((Py_ssize_t)t * c->n_r + r) * n_am + am;
        if (need[r] == 0 && nd > 0) { /* r <= 0: position 0 */
            w->cell_p[cell] = m ? pr[0] : 0.0;
            w->cell_s[cell] = w->top[mi];
        } else if (need[r] > 0 && need[r] <= m) {
            w->cell_p[cell] = pr[need[r] - 1];
            w->cell_s[cell] = sc[need[r] - 1];
        } else {
            break; /* the rest stays 0 */
        }
    }
}

/* One prediction of the walk at maxDets index mi: the tps/fps cumsums per (area range, threshold), and at each
 * TP its precision tp / (fp + tp + eps) and score. -2: more TPs than truth objects (inconsistent input). */
static int walk_step(const acc_ctx *c, acc_work *w, const pred_rec *x, int mi) {
    const double eps = 2.220446049250313e-16; /* np.spacing(1) */
    int n_t = c->n_t, n_a = c->n_a;
    int64_t *fp_free = &w->fp_free[mi * n_a];
    if (!w->nd[mi]++) w->top[mi] = x->score;
    if (x->slot < 0) { /* unmatched: FP at every threshold, or ignored when outside the area range */
        for (int a = 0; a < n_a; a++) fp_free[a] += !((x->out >> a) & 1u);
        return 0;
    }
    for (int a = 0; a < n_a; a++) {
        int mat = (mi * n_a + a) * n_t;
        int64_t *fp = &w->fp[mat], *n_tp = &w->n_tp[mat];
        uint64_t free = w->free[(size_t)x->slot * n_a + a], tp = w->tp[(size_t)x->slot * n_a + a];
        if (!((x->out >> a) & 1))
            for (int t = 0; t < n_t; t++) fp[t] += (free >> t) & 1;
        for (; tp; tp &= tp - 1) {
            int t = __builtin_ctzll(tp);
            if (n_tp[t] >= w->cap) return -2;
            double tps = (double)++n_tp[t];
            w->pr[(mat + t) * w->cap + n_tp[t] - 1] = tps / (((double)(fp_free[a] + fp[t]) + tps) + eps);
            w->sc[(mat + t) * w->cap + n_tp[t] - 1] = x->score;
        }
    }
    return 0;
}

/* Start class k: every cell -1 without truth objects, else 0 (a class with truth but no prediction stays 0). */
static void class_begin(const acc_ctx *c, acc_work *w, int k) {
    int n_am = c->n_a * c->n_m, n_mat = c->n_m * c->n_a * c->n_t;
    double row[n_am]; /* the value of each (a, m) cell, the same for every (t, r) */
    for (int a = 0; a < c->n_a; a++)
        for (int mi = 0; mi < c->n_m; mi++) row[a * c->n_m + mi] = c->n_pos[k * c->n_a + a] > 0 ? 0.0 : -1.0;
    for (int tr = 0; tr < c->n_t * c->n_r; tr++)
        for (int i = 0; i < n_am; i++) w->cell_p[tr * n_am + i] = w->cell_s[tr * n_am + i] = row[i];
    for (int t = 0; t < c->n_t; t++)
        for (int i = 0; i < n_am; i++) w->cell_r[t * n_am + i] = row[i];
    memset(w->n_tp, 0, sizeof(int64_t) * (size_t)n_mat);
    memset(w->fp, 0, sizeof(int64_t) * (size_t)n_mat);
    memset(w->fp_free, 0, sizeof(int64_t) * (size_t)c->n_m * c->n_a);
    memset(w->nd, 0, sizeof(int64_t) * (size_t)c->n_m);
}

/* Finish class k: every cell's reads, then the class's (A, M) rows copied into the pycocotools-shaped outputs. */
static void class_end(const acc_ctx *c, acc_work *w, int k) {
    int n_am = c->n_a * c->n_m;
    for (int a = 0; a < c->n_a; a++) {
        if (c->n_pos[k * c->n_a + a] <= 0) continue; /* no truth object: the cell keeps -1 */
        for (int mi = 0; mi < c->n_m; mi++)
            for (int t = 0; t < c->n_t; t++) read_cell(c, w, k, a, t, mi);
    }
    for (int tr = 0; tr < c->n_t * c->n_r; tr++) { /* rows of A * M cells: short copies, inline */
        Py_ssize_t at = ((Py_ssize_t)tr * c->n_k + k) * n_am;
        double *dp = &c->precision[at], *ds = &c->scores[at];
        const double *sp = &w->cell_p[(Py_ssize_t)tr * n_am], *ss = &w->cell_s[(Py_ssize_t)tr * n_am];
        for (int i = 0; i < n_am; i++) dp[i] = sp[i], ds[i] = ss[i];
    }
    for (int t = 0; t < c->n_t; t++)
        for (int i = 0; i < n_am; i++)
            c->recall[((Py_ssize_t)t * c->n_k + k) * n_am + i] = w->cell_r[(Py_ssize_t)t * n_am + i];
}

/* One walk over the accumulation order (class, -score, image, rank): classes come in increasing order (-2
 * otherwise); each prediction counts for every maxDets it is within; classes without predictions get their
 * -1/0 cells too. */
static int walk(const acc_ctx *c, acc_work *w) {
    int k = -1, rc = 0;
    for (Py_ssize_t i = 0; i < c->n && !rc; i++) {
        /* the random accesses of the walk, prefetched: the record 64 ahead, the masks of the one 32 ahead */
        if (i + 64 < c->n && (uint64_t)c->order[i + 64] < (uint64_t)c->n) __builtin_prefetch(&w->rec[c->order[i + 64]]);
        if (i + 32 < c->n && (uint64_t)c->order[i + 32] < (uint64_t)c->n) {
            int32_t s = w->rec[c->order[i + 32]].slot;
            if (s >= 0) {
                __builtin_prefetch(&w->tp[(size_t)s * c->n_a]);
                __builtin_prefetch(&w->free[(size_t)s * c->n_a]);
            }
        }
        int64_t p = c->order[i];
        if (p < 0 || p >= c->n) return -2;
        const pred_rec x = w->rec[p];
        if (x.k < k) return -2;
        while (k < x.k) {
            if (k >= 0) class_end(c, w, k);
            class_begin(c, w, ++k);
        }
        for (int mi = 0; mi < c->n_m && !rc; mi++)
            if (x.rank < c->max_dets[mi]) rc = walk_step(c, w, &x, mi);
    }
    if (rc) return rc;
    if (k >= 0) class_end(c, w, k);
    while (++k < c->n_k) {
        class_begin(c, w, k);
        class_end(c, w, k);
    }
    return 0;
}

static int accumulate_run(const acc_ctx *c) {
    acc_work w = {0};
    int64_t cap = 1;
    for (int i = 0; i < c->n_k * c->n_a; i++) cap = c->n_pos[i] > cap ? c->n_pos[i] : cap;
    w.cap = cap;
    size_t n_trm = (size_t)c->n_t * c->n_r * c->n_a * c->n_m, n_mat = (size_t)c->n_m * c->n_a * c->n_t;
    w.rec = malloc(sizeof(pred_rec) * ((size_t)c->n + 1));
    w.need = malloc(sizeof(int64_t) * (size_t)c->n_k * c->n_a * c->n_r + 8);
    w.pr = malloc(sizeof(double) * n_mat * cap);
    w.sc = malloc(sizeof(double) * n_mat * cap);
    w.n_tp = malloc(sizeof(int64_t) * n_mat);
    w.fp = malloc(sizeof(int64_t) * n_mat);
    w.fp_free = malloc(sizeof(int64_t) * (size_t)c->n_m * c->n_a);
    w.nd = malloc(sizeof(int64_t) * (size_t)c->n_m);
    w.top = malloc(sizeof(double) * (size_t)c->n_m);
    w.cell_p = malloc(sizeof(double) * n_trm);
    w.cell_s = malloc(sizeof(double) * n_trm);
    w.cell_r = malloc(sizeof(double) * (size_t)c->n_t * c->n_a * c->n_m);
    int rc = (!w.rec || !w.need || !w.pr || !w.sc || !w.n_tp || !w.fp || !w.fp_free || !w.nd || !w.top ||
              !w.cell_p || !w.cell_s || !w.cell_r) ? -1 : 0;
    if (!rc) rc = gather(c, &w);
    if (!rc) recall_needs(c, &w);
    if (!rc) rc = walk(c, &w);
    void *bufs[] = {w.rec, w.tp, w.free, w.need, w.pr, w.sc, w.n_tp, w.fp, w.fp_free, w.nd, w.top,
                    w.cell_p, w.cell_s, w.cell_r};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) free(bufs[i]);
    return rc;
}

/* accumulate(k, rank, acc_order, score, pred_out, match_t, match_a, match_pred, match_tp, match_ignored,
 *            n_pos, recall_thresholds, max_dets, precision, recall, scores, n_thresholds, n_classes) -> None;
 *   match_t/match_a int16 and match_pred int32 (as match() writes them), the other indices int64;
 *   n_pos is (K, A) and pred_out (A, n), T <= 64, A <= 32; the three outputs are pycocotools-shaped float64 arrays
 *   (T, R, K, A, M), (T, K, A, M), (T, R, K, A, M), every cell written here. */
static PyObject *py_accumulate(PyObject *self, PyObject *args) {
    enum { N = 16 };
    PyObject *o[N];
    int n_t, n_k;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOOOii", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7],
                          &o[8], &o[9], &o[10], &o[11], &o[12], &o[13], &o[14], &o[15], &n_t, &n_k))
        return NULL;
    static const enum kind kinds[N] = {K_I64, K_I64, K_I64, K_F64, K_U8, K_I16, K_I16, K_I32,
                                       K_U8,  K_U8,  K_I64, K_F64, K_I64, K_F64, K_F64, K_F64};
    static const char *names[N] = {"k", "rank", "acc_order", "score", "pred_out", "match_t", "match_a",
                                   "match_pred", "match_tp", "match_ignored", "n_pos", "recall_thresholds",
                                   "max_dets", "precision", "recall", "scores"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    for (int i = 0; i < N; i++) {
        if (get_buf(o[i], &v[i], kinds[i], i >= 13, names[i], &n[i]) < 0) {
            release_all(v, i);
            return NULL;
        }
    }
    acc_ctx c = {0};
    c.k = v[0].buf, c.rank = v[1].buf, c.order = v[2].buf, c.score = v[3].buf, c.out = v[4].buf;
    c.m_t = v[5].buf, c.m_a = v[6].buf, c.m_pred = v[7].buf, c.m_tp = v[8].buf, c.m_ig = v[9].buf;
    c.n_pos = v[10].buf, c.rec_thr = v[11].buf, c.max_dets = v[12].buf;
    c.precision = v[13].buf, c.recall = v[14].buf, c.scores = v[15].buf;
    c.n = n[0], c.n_e = n[5], c.n_r = (int)n[11], c.n_m = (int)n[12], c.n_t = n_t, c.n_k = n_k;
    c.n_a = n_k > 0 ? (int)(n[10] / n_k) : 0;
    Py_ssize_t tkam = (Py_ssize_t)n_t * n_k * c.n_a * c.n_m;
    int ok = n_t > 0 && n_t <= 64 && n_k > 0 && c.n_a > 0 && c.n_a <= 32 && n[10] == (Py_ssize_t)n_k * c.n_a &&
             n[1] == c.n && n[2] == c.n &&
             n[3] == c.n && n[4] == c.n_a * c.n && n[6] == c.n_e && n[7] == c.n_e && n[8] == c.n_e &&
             n[9] == c.n_e && c.n_m > 0 && c.n_r > 0 && n[14] == tkam && n[13] == tkam * c.n_r && n[15] == n[13];
    int rc = ok ? 0 : -3;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        rc = accumulate_run(&c);
        Py_END_ALLOW_THREADS
    }
    release_all(v, N);
    if (rc == -1) return PyErr_NoMemory();
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.accumulate: index out of range or classes not contiguous in "
                                          "acc_order, or more true positives than truth objects");
        return NULL;
    }
    if (rc == -3) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.accumulate: inconsistent array sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"dense_ranks", py_dense_ranks, METH_VARARGS, "Dense ranks of the scores, highest first."},
    {"pack_keys", py_pack_keys, METH_VARARGS, "Packed int64 sort keys of int columns and the row."},
    {"kept_predictions", py_kept_predictions, METH_VARARGS, "The first maxDets predictions of every group."},
    {"xywh_rows", py_xywh_rows, METH_VARARGS, "COCO [x, y, w, h] of box rows as pycocotools reads them."},
    {"pairs", py_pairs, METH_VARARGS, "Pairs of each group (prediction-major) and their box IoU."},
    {"match", py_match, METH_VARARGS, "Greedy matching of every prediction (COCOeval.evaluateImg)."},
    {"match_flags", py_match_flags, METH_VARARGS, "TP and ignored flags of the match entries."},
    {"accumulate", py_accumulate, METH_VARARGS, "Precision, recall and scores (COCOeval.accumulate)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "cocoeval",
                                 "pycocotools' matching and accumulation in C (see maslow.metrics).", -1, methods};

PyMODINIT_FUNC PyInit_cocoeval(void) { return PyModule_Create(&mod); }
