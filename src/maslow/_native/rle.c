/* maslow._native.rle: COCO masks as run lengths, and their areas and IoUs, bit for bit what pycocotools 2.0.11
 * (maskApi.c) gives, for metrics/_segm.py.
 *
 * A side's masks are one uint32 array of runs (pycocotools' cnts: alternating background / foreground pixel
 * counts, column-major) and, per object, its runs' [start, end) in it and its h and w. The constructors
 * return (Columns, column.h: bytes-like, wrapped with np.frombuffer without a copy):
 *   poly_runs(xy, ring_offsets, row_offsets, rows, h, w) -> (runs, offsets, status): the polygons of `rows`
 *     (maslow's flat layout, core/polygons.py), each ring rasterised as rleFrPoly and the rings unioned as
 *     rleMerge (rle_poly.h); a row without a ring is an all-zero mask (run [h * w], as rleEncode gives it).
 *     offsets: len(rows) + 1 (int64); status (uint8): 0 done, 1 left to pycocotools (below), 2 the first ring
 *     has 4 values (pycocotools reads it as a box).
 *   dict_runs(masks) -> (runs, offsets, h, w, status): COCO RLE dicts {"size": [h, w], "counts": bytes | list
 *     of int}: a counts string parsed as rleFrString, a counts list taken as is (what frUncompressedRLE and the
 *     string it writes give back). status: 0 done, 1 left to pycocotools, 3 anything else (None, str counts,
 *     other types: the caller normalises those as pycocotools reads them and calls again).
 * Status 1 marks inputs on which pycocotools' C has undefined behaviour or overflows, which the caller leaves
 * to pycocotools itself: rings of fewer than 3 points or an odd number of values, coordinates with
 * |5x + .5| >= 2^22, h or w of 0 or h * w >= 2^29 (polygons; see rle_poly.h); counts strings that end inside a
 * run or hold a run of more than 6 characters (embedded NUL: the string ends there, as pycocotools reads a C
 * string); counts lists that are empty or whose rleToString deltas need more than 6 characters; sizes outside
 * int64; h = 0 (mod 2^32) under a foreground run (rleToBbox divides by h).
 *   areas(runs, start, end, out): rleArea (uint32 sums of the foreground runs) as float64.
 *   iou(d_runs, d_start, d_end, d_h, d_w, g_runs, g_start, g_end, g_h, g_w, crowd, p_idx, t_idx, out) -> int:
 *     rleIou of each pair (p_idx[i], t_idx[i]) (crowd per truth object): rleToBbox of both, bbIou, and only
 *     where that is > 0: -1 for a size mismatch, else the walk over both run lists with uint32 counters
 *     (i == 0: u = 1; crowd: u = the prediction's area), o = (double)i / (double)u; the usual pairs get the same
 *     number without the boxes (rle_iou.h). Returns -1, or the first pair whose walk never ends in pycocotools
 *     (run sums that differ: it loops forever), left unfilled.
 * Inputs come through the buffer protocol (C-contiguous, checked item size and kind); every index and size is
 * checked (ValueError). The loops run without the GIL; memory from PyMem_Raw.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "json_scan.h" /* Buf */
#include "coco_rle.h"  /* rle_run: one run of a counts string */
#include "column.h"    /* Column: a Buf handed to Python without a copy */
#include "rle_poly.h"  /* ring_runs, merge_ring: rleFrPoly and rleMerge */
#define BUF_OWNER "rle"
#include "buffers.h" /* get_buf, get_bufs, release_all */

/* A tuple of Columns taking over bufs[0:n] (freed on failure). */
static PyObject *columns(Buf *bufs, int n) {
    PyObject *t = PyTuple_New(n);
    for (int i = 0; t && i < n; i++) {
        PyObject *c = take_column(&bufs[i]);
        if (!c) Py_CLEAR(t);
        else PyTuple_SET_ITEM(t, i, c);
    }
    for (int i = 0; i < n; i++) buf_free(&bufs[i]);
    return t;
}

/* -- polygons ----------------------------------------------------------------------------------------- */

#define HW_LIMIT ((int64_t)1 << 29) /* h * w below this (see rle_poly.h) */

/* 0: rasterise here, 1: leave to pycocotools, 2: the first ring is a box (see the header). */
static int poly_status(const double *xy, const int64_t *ring_off, int64_t k0, int64_t k1, int64_t h, int64_t w) {
    int small = h < HW_LIMIT && w < HW_LIMIT && h * w < HW_LIMIT;
    if (k1 == k0) return small ? 0 : 1;
    if (ring_off[k0 + 1] - ring_off[k0] == 4) return 2;
    if (!small || h == 0 || w == 0) return 1;
    for (int64_t q = k0; q < k1; q++) {
        int64_t s = ring_off[q], e = ring_off[q + 1];
        if (e - s < 6 || (e - s) % 2) return 1;
        for (int64_t j = s; j < e; j++) {
            double v = 5.0 * xy[j] + .5;
            if (!(v > -POLY_LIMIT && v < POLY_LIMIT)) return 1;
        }
    }
    return 0;
}

/* The runs of one object (rings k0..k1, checked by poly_status) appended to `out`. */
static int poly_object(Poly *P, const double *xy, const int64_t *ring_off, int64_t k0, int64_t k1, Buf *out) {
    if (k1 == k0) {
        uint32_t all = (uint32_t)(P->h * P->w);
        return buf_push(out, &all, sizeof all);
    }
    for (int64_t q = k0; q < k1; q++) {
        if (ring_runs(P, xy + ring_off[q], (size_t)(ring_off[q + 1] - ring_off[q]) / 2)) return -1;
        if (q == k0) { /* rleMerge of one RLE is a copy */
            P->acc.n = 0;
            if (u32_reserve(&P->acc, P->ring.n)) return -1;
            memcpy(P->acc.p, P->ring.p, P->ring.n * sizeof(uint32_t));
            P->acc.n = P->ring.n;
        } else if (merge_ring(P)) {
            return -1;
        }
    }
    return buf_push(out, P->acc.p, P->acc.n * sizeof(uint32_t));
}

static PyObject *py_poly_runs(PyObject *self, PyObject *args) {
    enum { N = 6 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5])) return NULL;
    static const enum kind kinds[N] = {K_F64, K_I64, K_I64, K_I64, K_I64, K_I64};
    static const char *names[N] = {"xy", "ring_offsets", "row_offsets", "rows", "h", "w"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, N) < 0) return NULL;
    const double *xy = v[0].buf;
    const int64_t *ring_off = v[1].buf, *row_off = v[2].buf, *rows = v[3].buf, *hs = v[4].buf, *ws = v[5].buf;
    Py_ssize_t n_xy = n[0], n_ring = n[1] - 1, n_row = n[2] - 1, n_obj = n[3];
    if (n_ring < 0 || n_row < 0 || n[4] != n_obj || n[5] != n_obj) {
        release_all(v, N);
        PyErr_SetString(PyExc_ValueError, "rle.poly_runs: offsets must hold at least one value, h and w one per row");
        return NULL;
    }
    Buf out[3] = {{0}}; /* runs, offsets, status */
    Poly P = {{0}};
    int err = 0; /* 1: no memory, 2: an index out of range, 3: a negative size */
    Py_BEGIN_ALLOW_THREADS
    err = push_i64(&out[1], 0) || buf_reserve(&out[2], (size_t)n_obj);
    for (Py_ssize_t i = 0; i < n_obj && !err; i++) {
        int64_t r = rows[i], h = hs[i], w = ws[i];
        if (r < 0 || r >= n_row || row_off[r] < 0 || row_off[r + 1] < row_off[r] || row_off[r + 1] > n_ring) {
            err = 2;
            break;
        }
        int64_t k0 = row_off[r], k1 = row_off[r + 1];
        for (int64_t q = k0; q < k1 && !err; q++)
            if (ring_off[q] < 0 || ring_off[q + 1] < ring_off[q] || ring_off[q + 1] > n_xy) err = 2;
        if (!err && (h < 0 || w < 0)) err = 3;
        if (err) break;
        int st = poly_status(xy, ring_off, k0, k1, h, w);
        P.h = (uint64_t)h, P.w = (uint64_t)w;
        if ((st == 0 && poly_object(&P, xy, ring_off, k0, k1, &out[0])) || push_u8(&out[2], (uint8_t)st) ||
            push_i64(&out[1], (int64_t)(out[0].len / sizeof(uint32_t))))
            err = 1;
    }
    poly_free(&P);
    Py_END_ALLOW_THREADS
    release_all(v, N);
    if (err) {
        for (int i = 0; i < 3; i++) buf_free(&out[i]);
        if (err == 1) return PyErr_NoMemory();
        PyErr_SetString(PyExc_ValueError, err == 2 ? "rle.poly_runs: a row or offset out of range"
                                                   : "rle.poly_runs: h and w must be >= 0");
        return NULL;
    }
    return columns(out, 3);
}

/* -- stored masks ------------------------------------------------------------------------------------- */

/* 1 when rleToBbox would divide by h = 0 (mod 2^32): a foreground run among the first m - m % 2. */
static int zero_h_box(const uint32_t *r, size_t m, int64_t h) {
    if ((uint32_t)h) return 0;
    for (size_t j = 1; j + 1 <= m - m % 2; j += 2)
        if (r[j]) return 1;
    return 0;
}

/* rleFrString of s[0:len] appended to out (uint32 runs; room for `len` more reserved by the caller: one run
 * takes a character or more); 1: pycocotools' parse is undefined on it. The arithmetic is pycocotools' (rle_run,
 * coco_rle.h): characters as signed chars, each 5-bit group shifted as an int, the run in a 64-bit long, the sign
 * bit of the last group extended, from the third run on the run two before added, stored as uint32. */
static int string_runs(const unsigned char *s, size_t len, Buf *out) {
    const unsigned char *nul = memchr(s, 0, len);
    if (nul) len = (size_t)(nul - s);
    uint32_t *r = (uint32_t *)(out->data + out->len);
    size_t m = 0, p = 0;
    int64_t x;
    for (; p < len && m < 3; m++) { /* no delta before the fourth run */
        if (rle_run(s, len, &p, &x)) return 1;
        r[m] = (uint32_t)x;
    }
    uint32_t before2 = m >= 2 ? r[m - 2] : 0, before1 = m >= 1 ? r[m - 1] : 0; /* runs m - 2 and m - 1 */
    while (p < len) {
        if (rle_run(s, len, &p, &x)) return 1;
        uint32_t run = (uint32_t)(x + before2);
        before2 = before1;
        before1 = r[m++] = run;
    }
    out->len += m * sizeof(uint32_t);
    return 0;
}

typedef struct {
    PyObject *bytes;   /* a counts string (a new reference), or NULL */
    size_t lo, hi;     /* a counts list: its runs in the list buffer */
    int64_t h, w;
    uint8_t status;
} Item;

/* An exact int in [lo, hi) into *out; 0 when it is not one. */
static int exact_int(PyObject *o, int64_t lo, int64_t hi, int64_t *out) {
    if (!PyLong_CheckExact(o)) return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = v;
    return v >= lo && v < hi;
}

/* The item's form (GIL held): a counts string (bytes kept), a counts list (runs pushed to `lists`), or 3. */
static int classify(PyObject *m, Item *it, U32s *lists) {
    static PyObject *k_size, *k_counts;
    if (!k_size && !(k_size = PyUnicode_InternFromString("size"))) return -1;
    if (!k_counts && !(k_counts = PyUnicode_InternFromString("counts"))) return -1;
    it->status = 3;
    if (!PyDict_CheckExact(m)) return 0;
    PyObject *size = PyDict_GetItemWithError(m, k_size), *counts = size ? PyDict_GetItemWithError(m, k_counts) : NULL;
    if (PyErr_Occurred()) return -1;
    if (!counts || !PyList_CheckExact(size) || PyList_GET_SIZE(size) != 2) return 0;
    int64_t h, w;
    int sized = exact_int(PyList_GET_ITEM(size, 0), 0, INT64_MAX, &h) &&
                exact_int(PyList_GET_ITEM(size, 1), 0, INT64_MAX, &w);
    if (PyBytes_CheckExact(counts)) { /* pycocotools reads it as is: other sizes are its to report */
        PyObject *e0 = PyList_GET_ITEM(size, 0), *e1 = PyList_GET_ITEM(size, 1);
        if (!sized && !(PyLong_CheckExact(e0) && PyLong_CheckExact(e1))) return 0;
        it->status = sized ? 0 : 1;
        it->h = sized ? h : 0, it->w = sized ? w : 0;
        Py_INCREF(counts);
        it->bytes = counts;
        return 0;
    }
    if (!PyList_CheckExact(counts) || !sized) return 0;
    Py_ssize_t n = PyList_GET_SIZE(counts);
    size_t lo = lists->n;
    if (u32_reserve(lists, (size_t)n)) return -1;
    int64_t x;
    for (Py_ssize_t j = 0; j < n; j++) {
        if (!exact_int(PyList_GET_ITEM(counts, j), 0, (int64_t)1 << 32, &x)) {
            lists->n = lo;
            return 0; /* pycocotools' uint32 conversion is the one to report it */
        }
        lists->p[lists->n++] = (uint32_t)x;
    }
    it->lo = lo, it->hi = lists->n, it->h = h, it->w = w, it->status = 0;
    return 0;
}

/* A counts list is written by rleToString (deltas to the run two before, 5 bits a character) and read back
 * by rleFrString, which is the identity when every delta fits 6 characters ([-2^29, 2^29)); 1 otherwise, and
 * for an empty list (its string is written past a 0-byte allocation). */
static int list_status(const uint32_t *r, size_t m) {
    if (!m) return 1;
    for (size_t i = 0; i < m; i++) {
        int64_t x = (int64_t)r[i] - (i > 2 ? (int64_t)r[i - 2] : 0);
        if (x < -HW_LIMIT || x >= HW_LIMIT) return 1;
    }
    return 0;
}

static PyObject *py_dict_runs(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "rle.dict_runs: masks must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Item *it = PyMem_RawCalloc((size_t)n + 1, sizeof *it);
    U32s lists = {0};
    Buf out[5] = {{0}}; /* runs, offsets, h, w, status */
    int err = !it;
    size_t room = 0; /* runs: at most one per character, or the list's */
    for (Py_ssize_t i = 0; i < n && !err; i++) {
        if (i + 8 < n) __builtin_prefetch(items[i + 8]); /* the dicts are far apart: a fifth of the time was here */
        err = classify(items[i], &it[i], &lists) < 0;
        room += it[i].bytes ? (size_t)PyBytes_GET_SIZE(it[i].bytes) : it[i].hi - it[i].lo;
    }
    size_t per[5] = {(room + 1) * sizeof(uint32_t), ((size_t)n + 1) * 8, (size_t)n * 8, (size_t)n * 8, (size_t)n};
    for (int c = 0; c < 5 && !err; c++) err = buf_reserve(&out[c], per[c]) < 0;
    if (!err) {
        Py_BEGIN_ALLOW_THREADS
        err = push_i64(&out[1], 0);
        for (Py_ssize_t i = 0; i < n && !err; i++) {
            Item *t = &it[i];
            size_t first = out[0].len / sizeof(uint32_t);
            if (t->status == 0 && t->bytes) {
                t->status = (uint8_t)string_runs((const unsigned char *)PyBytes_AS_STRING(t->bytes),
                                                 (size_t)PyBytes_GET_SIZE(t->bytes), &out[0]);
            } else if (t->status == 0) {
                t->status = (uint8_t)list_status(lists.p + t->lo, t->hi - t->lo);
                if (!t->status) err = buf_push(&out[0], lists.p + t->lo, (t->hi - t->lo) * sizeof(uint32_t));
            }
            size_t end = out[0].len / sizeof(uint32_t);
            if (t->status == 0 && zero_h_box((uint32_t *)out[0].data + first, end - first, t->h)) t->status = 1;
            if (t->status) out[0].len = first * sizeof(uint32_t); /* no runs for what the caller handles */
            err = err || push_i64(&out[1], (int64_t)(out[0].len / sizeof(uint32_t))) || push_i64(&out[2], t->h) ||
                  push_i64(&out[3], t->w) || push_u8(&out[4], t->status);
        }
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t i = 0; it && i < n; i++) Py_XDECREF(it[i].bytes);
    PyMem_RawFree(it);
    PyMem_RawFree(lists.p);
    Py_DECREF(seq);
    if (err) {
        for (int i = 0; i < 5; i++) buf_free(&out[i]);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    return columns(out, 5);
}

/* -- areas and IoU ------------------------------------------------------------------------------------ */

/* Object bounds [start, end) inside runs[0:n_runs]: 0 when consistent. */
static int check_bounds(const int64_t *start, const int64_t *end, Py_ssize_t n, Py_ssize_t n_runs) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (start[i] < 0 || end[i] < start[i] || end[i] > n_runs) return -1;
    return 0;
}

/* rleArea: the uint32 sum of the foreground (odd) runs. */
static inline uint32_t run_area(const uint32_t *r, int64_t m) {
    uint32_t a = 0;
    for (int64_t j = 1; j < m; j += 2) a += r[j];
    return a;
}

static PyObject *py_areas(PyObject *self, PyObject *args) {
    enum { N = 4 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OOOO", &o[0], &o[1], &o[2], &o[3])) return NULL;
    static const enum kind kinds[N] = {K_U32, K_I64, K_I64, K_F64};
    static const char *names[N] = {"runs", "start", "end", "out"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 3) < 0) return NULL;
    const uint32_t *runs = v[0].buf;
    const int64_t *start = v[1].buf, *end = v[2].buf;
    double *out = v[3].buf;
    int bad = n[2] != n[1] || n[3] != n[1];
    Py_BEGIN_ALLOW_THREADS
    bad = bad || check_bounds(start, end, n[1], n[0]);
    for (Py_ssize_t i = 0; i < n[1] && !bad; i++) out[i] = run_area(runs + start[i], end[i] - start[i]);
    Py_END_ALLOW_THREADS
    release_all(v, N);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "rle.areas: start, end and out must have one value per object, "
                                          "0 <= start <= end <= len(runs)");
        return NULL;
    }
    Py_RETURN_NONE;
}

#include "rle_iou.h" /* Side, side_box, quick_iou, pair_iou: rleIou of one pair (uses run_area) */

static PyObject *py_iou(PyObject *self, PyObject *args) {
    enum { N = 14 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &o[9], &o[10], &o[11], &o[12], &o[13]))
        return NULL;
    static const enum kind kinds[N] = {K_U32, K_I64, K_I64, K_I64, K_I64, K_U32, K_I64, K_I64,
                                       K_I64, K_I64, K_U8,  K_I64, K_I64, K_F64};
    static const char *names[N] = {"d_runs", "d_start", "d_end", "d_h", "d_w", "g_runs", "g_start",
                                   "g_end", "g_h", "g_w", "crowd", "p_idx", "t_idx", "out"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 13) < 0) return NULL;
    Py_ssize_t nd = n[1], ng = n[6], np_ = n[11];
    Side D = {v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, NULL, NULL};
    Side G = {v[5].buf, v[6].buf, v[7].buf, v[8].buf, v[9].buf, NULL, NULL};
    const uint8_t *crowd = v[10].buf;
    const int64_t *p_idx = v[11].buf, *t_idx = v[12].buf;
    double *out = v[13].buf;
    int err = 0; /* 1: sizes, 2: an index, 3: no memory, 4: h = 0 under a foreground run */
    Py_ssize_t hang = -1;
    if (n[2] != nd || n[3] != nd || n[4] != nd || n[7] != ng || n[8] != ng || n[9] != ng || n[10] != ng ||
        n[12] != np_ || n[13] != np_)
        err = 1;
    Py_BEGIN_ALLOW_THREADS
    if (!err && (check_bounds(D.start, D.end, nd, n[0]) || check_bounds(G.start, G.end, ng, n[5]))) err = 1;
    if (!err) {
        D.box = PyMem_RawMalloc(((size_t)nd + 1) * 4 * sizeof(double));
        G.box = PyMem_RawMalloc(((size_t)ng + 1) * 4 * sizeof(double));
        D.span = PyMem_RawCalloc((size_t)nd + 1, sizeof(Span)); /* state 0: not computed */
        G.span = PyMem_RawCalloc((size_t)ng + 1, sizeof(Span));
        if (!D.box || !G.box || !D.span || !G.span) err = 3;
        for (Py_ssize_t i = 0; i < nd && !err; i++) D.box[4 * i + 2] = -1;
        for (Py_ssize_t i = 0; i < ng && !err; i++) G.box[4 * i + 2] = -1;
    }
    for (Py_ssize_t k = 0; k < np_ && !err; k++) {
        int64_t d = p_idx[k], g = t_idx[k];
        if (d < 0 || d >= nd || g < 0 || g >= ng) {
            err = 2;
            break;
        }
        if (quick_iou(&D, &G, d, g, crowd[g] != 0, &out[k])) continue;
        if (side_box(&D, d) || side_box(&G, g)) {
            err = 4;
            break;
        }
        if (pair_iou(&D, &G, d, g, crowd[g] != 0, &out[k]) && hang < 0) hang = k;
    }
    PyMem_RawFree(D.box);
    PyMem_RawFree(G.box);
    PyMem_RawFree(D.span);
    PyMem_RawFree(G.span);
    Py_END_ALLOW_THREADS
    release_all(v, N);
    if (err == 3) return PyErr_NoMemory();
    if (err) {
        PyErr_SetString(PyExc_ValueError,
                        err == 1   ? "rle.iou: start, end, h, w must have one value per object (crowd per truth "
                                     "object), 0 <= start <= end <= len(runs); p_idx, t_idx and out one per pair"
                        : err == 2 ? "rle.iou: p_idx or t_idx out of range"
                                   : "rle.iou: an object with h = 0 has foreground runs");
        return NULL;
    }
    return PyLong_FromSsize_t(hang);
}

static PyMethodDef methods[] = {
    {"poly_runs", py_poly_runs, METH_VARARGS, "Run lengths of polygons (pycocotools' frPyObjects + merge)."},
    {"dict_runs", py_dict_runs, METH_O, "Run lengths of COCO RLE dicts (compressed or uncompressed counts)."},
    {"areas", py_areas, METH_VARARGS, "Pixel counts of run-length masks (pycocotools' area)."},
    {"iou", py_iou, METH_VARARGS, "IoU of (prediction, truth) pairs of run-length masks (pycocotools' iou)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "rle",
                                 "COCO run-length masks, their areas and IoUs, as pycocotools (see metrics/_segm.py).",
                                 -1, methods};

PyMODINIT_FUNC PyInit_rle(void) {
    if (PyType_Ready(&ColumnType) < 0) return NULL;
    return PyModule_Create(&mod);
}
