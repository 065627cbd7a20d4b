/* coco_rle.h: COCO RLE masks for maslow._native.records: the RLE dicts handed to Python (rle_objects), and the
 * bounding box of a compressed RLE string, bit for bit what pycocotools' toBbox gives (rle_string_box).
 *
 * pycocotools (maskApi.c) decodes the string with rleFrString and boxes it with rleToBbox. Both are mirrored
 * here in one pass, without storing the runs:
 *   - rleFrString: each run is a little-endian group of 6-bit characters ('0' + value; bit 5: more follow, bit 4
 *     of the last: negative); from the third run on, the value is a delta to the run two before. Its arithmetic
 *     is kept: the characters as signed chars, `(c & 0x1f) << 5*k` as a 32-bit int, the sum in a 64-bit long,
 *     each run stored as a 32-bit unsigned int (the `m > 2` test, not `m >= 2`, is pycocotools').
 *   - rleToBbox (pycocotools >= 2.0.8): the run count rounded down to even (an odd last run is dropped); no run
 *     left: [0, 0, 0, 0]; otherwise, with 32-bit unsigned arithmetic throughout, each non-empty run of ones
 *     [start, end) widens [xs, xe] by the columns of its first and last pixel, and [ys, ye] by their rows, or to
 *     the whole height when it crosses a column; width = xe - xs + 1 (wrapping as a uint: no run of ones gives
 *     xs = w, xe = 0, as in pycocotools).
 * Strings on which pycocotools has undefined behaviour or crashes are left to it (rle_string_box returns -1):
 * an embedded NUL, a string ending inside a run, a run of more than 6 characters (its shifts overflow), and a
 * height of 0 (mod 2^32) with a run to box (a division by zero). rle_string_box is pure C (no
 * Python object, no allocation); rle_objects needs the GIL.
 */
#ifndef MASLOW_COCO_RLE_H
#define MASLOW_COCO_RLE_H

#include "json_scan.h" /* Buf, and Python.h */

/* n / d for 32-bit unsigned n and a fixed d >= 1 (then n % d = n - (n / d) * d), without a division (its latency
 * is most of a run's cost): Lemire, Kaser and Kurz, "Faster remainder by direct computation" (2019): with
 * M = 2^64 / d rounded up, the quotient is the high 64 bits of M * n, exact for every 32-bit n and d (d = 1
 * overflows M: set apart). */
typedef struct {
    uint64_t m;
    uint32_t d;
} div32;

static inline div32 div32_of(uint32_t d) {
    div32 v = {d > 1 ? UINT64_MAX / d + 1 : 0, d};
    return v;
}

static inline uint32_t div32_q(div32 v, uint32_t n) {
#if defined(__SIZEOF_INT128__)
    return v.d == 1 ? n : (uint32_t)(((unsigned __int128)v.m * n) >> 64);
#else
    return n / v.d;
#endif
}

/* The box [x, y, width, height] of the counts string s[0:len] of an h x w mask into out; -1: ask pycocotools. */
static int rle_string_box(const unsigned char *s, size_t len, int64_t h64, int64_t w64, double out[4]) {
    uint32_t h = (uint32_t)h64, w = (uint32_t)w64; /* pycocotools: (uint) of its siz */
    div32 by_h = div32_of(h ? h : 1); /* used only when h > 0 */
    uint32_t xs = w, ys = h, xe = 0, ye = 0, cc = 0;
    uint32_t before2 = 0, before1 = 0; /* the runs m-2 and m-1 (deltas add the one two before) */
    uint32_t held = 0;                 /* an even-indexed run waiting for its partner (an odd last one is dropped) */
    size_t m = 0, p = 0;
    while (p < len) {
        int64_t x = 0;
        int k = 0, more = 1;
        while (more) {
            if (p >= len || s[p] == 0 || k > 5) return -1; /* ends inside a run, a NUL, a shift past 30 bits */
            int c = (int)(signed char)(s[p] - 48);
            x |= (int64_t)(int32_t)((uint32_t)(c & 0x1f) << (5 * k));
            more = c & 0x20;
            p++;
            k++;
            if (!more && (c & 0x10)) x |= (int64_t)(int32_t)((uint32_t)-1 << (5 * k)); /* k <= 6 here */
        }
        if (m > 2) x += (int64_t)before2;
        uint32_t run = (uint32_t)x;
        before2 = before1;
        before1 = run;
        if (m % 2 == 0) {
            held = run;
        } else { /* runs m - 1 (zeros: skipped) and m (ones, [start, cc)): rleToBbox's loop body */
            uint32_t start = cc + held;
            cc = start + run;
            if (run) {
                if (h == 0) return -1;
                uint32_t x0 = div32_q(by_h, start), x1 = div32_q(by_h, cc - 1); /* (n - n % h) / h = n / h */
                uint32_t y0 = start - x0 * h, y1 = (cc - 1) - x1 * h;
                xs = x0 < xs ? x0 : xs;
                xe = x1 > xe ? x1 : xe;
                if (x0 < x1) { /* the run crosses a column: the whole height */
                    ys = 0;
                    ye = h - 1;
                } else {
                    ys = y0 < ys ? y0 : ys;
                    ye = y1 > ye ? y1 : ye;
                }
            }
        }
        m++;
    }
    if (m < 2) {
        out[0] = out[1] = out[2] = out[3] = 0;
        return 0;
    }
    out[0] = xs;
    out[1] = ys;
    out[2] = (uint32_t)(xe - xs + 1);
    out[3] = (uint32_t)(ye - ys + 1);
    return 0;
}

/* The RLE objects AnnColumns.add makes, in file order, from `meta` (int64 x 6 per RLE: record, h, w, kind 0 =
 * counts string / 1 = run lengths, start, stop in `chars`, the counts strings one after the other): {"size": [h, w], "counts": bytes} for a counts string,
 * None for run lengths (the caller compresses those). Built here, with the GIL: one dict per RLE is needed
 * anyway (the mask column holds them), and C makes them several times faster than a Python loop. */
static PyObject *rle_object(PyObject *size_key, PyObject *counts_key, int64_t h, int64_t w, const char *counts,
                            Py_ssize_t len) {
    PyObject *d = PyDict_New(), *size = PyList_New(2), *hh = PyLong_FromLongLong(h), *ww = PyLong_FromLongLong(w);
    PyObject *c = PyBytes_FromStringAndSize(counts, len);
    if (!d || !size || !hh || !ww || !c) goto fail;
    PyList_SET_ITEM(size, 0, hh);
    PyList_SET_ITEM(size, 1, ww);
    hh = ww = NULL; /* owned by the list now */
    if (PyDict_SetItem(d, size_key, size) < 0 || PyDict_SetItem(d, counts_key, c) < 0) goto fail;
    /* Neither can be part of a reference cycle (two ints; an int list and bytes): out of the cyclic garbage
     * collector's lists, as CPython keeps dicts of atomic values, or every collection (and the one at interpreter
     * exit) walks two objects per mask: 90 ms of 470 for 74,000 masks. A dict given a container later is tracked
     * again by CPython itself; the size list stays untracked (a cycle made through it would not be collected). */
    PyObject_GC_UnTrack(size);
    PyObject_GC_UnTrack(d);
    Py_DECREF(size);
    Py_DECREF(c);
    return d;
fail:
    Py_XDECREF(d);
    Py_XDECREF(size);
    Py_XDECREF(hh);
    Py_XDECREF(ww);
    Py_XDECREF(c);
    return NULL;
}

static PyObject *rle_objects(const Buf *meta, const Buf *chars) {
    Py_ssize_t n = (Py_ssize_t)(meta->len / (6 * sizeof(int64_t)));
    PyObject *list = PyList_New(n), *size_key = PyUnicode_InternFromString("size");
    PyObject *counts_key = PyUnicode_InternFromString("counts");
    if (!list || !size_key || !counts_key) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t m[6];
        memcpy(m, meta->data + (size_t)i * sizeof m, sizeof m); /* record, h, w, kind, start, stop */
        PyObject *item = Py_None;
        if (m[3]) Py_INCREF(item);
        else if (!(item = rle_object(size_key, counts_key, m[1], m[2], chars->data + m[4], (Py_ssize_t)(m[5] - m[4]))))
            goto fail;
        PyList_SET_ITEM(list, i, item);
    }
    Py_DECREF(size_key);
    Py_DECREF(counts_key);
    return list;
fail:
    Py_XDECREF(list);
    Py_XDECREF(size_key);
    Py_XDECREF(counts_key);
    return NULL;
}

#endif /* MASLOW_COCO_RLE_H */
