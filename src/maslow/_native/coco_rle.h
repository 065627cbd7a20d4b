/* coco_rle.h: COCO RLE masks for maslow._native.records (and rle.c): the RLE dicts handed to Python
 * (rle_objects), the parse of one run of a compressed RLE string (rle_run), and the string's bounding box, bit for
 * bit what pycocotools' toBbox gives (rle_string_box).
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
 * height of 0 (mod 2^32) with a run to box (a division by zero). So are strings whose runs (as uint32, summed
 * exactly) don't add up to h * w: pycocotools' decode refuses more pixels than h * w and leaves the pixels past
 * fewer uninitialised, so the reader checks those (maslow.io._coco_rle_check) and drops their masks
 * (coco_bad_rle). rle_string_box is pure C (no Python object, no allocation); rle_objects needs the GIL.
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

/* One run of a counts string at s[*p] (before its delta), *p moved past it; 1 where pycocotools' parse is undefined
 * (the string ends inside the run, or the run has more than 6 characters). Most runs are one character: read
 * without the loop (the loop's exit, taken after 1 to 6 characters, was mispredicted at every other run). */
static inline int rle_run(const unsigned char *s, size_t len, size_t *p, int64_t *out) {
    int c = (int)(signed char)(s[(*p)++] - 48);
    if (!(c & 0x20)) {
        *out = (int64_t)(((c & 0x1f) ^ 0x10) - 0x10); /* 5 bits, bit 4 the sign */
        return 0;
    }
    int k = 1;
    int64_t x = c & 0x1f;
    while (c & 0x20) {
        if (*p >= len || k > 5) return 1; /* reads past the string / shifts past 30 bits */
        c = (int)(signed char)(s[(*p)++] - 48);
        x |= (int64_t)((c & 0x1f) << (5 * k++));
    }
    uint32_t neg = (c & 0x10) != 0; /* bit 4 of the last group: a negative value (no branch: 50/50) */
    *out = x | (int64_t)(int32_t)((0u - neg) << (5 * k));
    return 0;
}

/* The box [x, y, width, height] of the counts string s[0:len] of an h x w mask into out; -1: left to the caller
 * (the cases above).
 * The runs are taken two at a time (background, foreground: rleToBbox's loop body looks at such pairs). */
static int rle_string_box(const unsigned char *s, size_t len, int64_t h64, int64_t w64, double out[4]) {
    if (memchr(s, 0, len)) return -1;
    uint32_t h = (uint32_t)h64, w = (uint32_t)w64; /* pycocotools: (uint) of its siz */
    div32 by_h = div32_of(h ? h : 1);              /* used only when h > 0 */
    uint32_t xs = w, ys = h, xe = 0, ye = 0, bg = 0, fg = 0; /* the last pair of runs */
    uint64_t total = 0; /* the runs' sum (the pixels so far: at most len runs of < 2^32); cc is it modulo 2^32 */
    size_t m = 0, p = 0;
    int64_t a = 0, b;
    int odd = 0;
    while (p < len) {
        if (rle_run(s, len, &p, &a)) return -1;
        if (p >= len) { /* an odd last run: parsed, then dropped by rleToBbox (not by the sum) */
            odd = 1;
            break;
        }
        if (rle_run(s, len, &p, &b)) return -1;
        bg = (uint32_t)(m > 2 ? a + bg : a); /* runs m and m + 1; from the third run on, deltas */
        fg = (uint32_t)(m + 1 > 2 ? b + fg : b);
        m += 2;
        uint32_t start = (uint32_t)total + bg; /* the foreground run is [start, cc) */
        total += (uint64_t)bg + fg;
        uint32_t cc = (uint32_t)total;
        if (fg) {
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
    if (odd) total += (uint32_t)(m > 2 ? a + bg : a);
    /* the runs must cover the h x w pixels exactly (h, w >= 0; a product past 2^64 is never a sum of runs) */
    if (h64 < 0 || w64 < 0 || (h64 && (uint64_t)w64 > UINT64_MAX / (uint64_t)h64) ||
        total != (uint64_t)h64 * (uint64_t)w64)
        return -1;
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
/* The ints of the sizes, shared by the masks of one size (a file's masks mostly have their image's size): two
 * objects fewer to make, and to free, per mask (ints are immutable: sharing them is invisible). */
typedef struct {
    int64_t h, w;
    PyObject *hh, *ww; /* NULL: none yet */
} SizeInts;

static int size_ints(SizeInts *z, int64_t h, int64_t w) {
    if (z->hh && z->h == h && z->w == w) return 0;
    PyObject *hh = PyLong_FromLongLong(h), *ww = PyLong_FromLongLong(w);
    if (!hh || !ww) {
        Py_XDECREF(hh);
        Py_XDECREF(ww);
        return -1;
    }
    Py_XDECREF(z->hh);
    Py_XDECREF(z->ww);
    z->h = h, z->w = w, z->hh = hh, z->ww = ww;
    return 0;
}

static PyObject *rle_object(PyObject *size_key, PyObject *counts_key, SizeInts *z, int64_t h, int64_t w,
                            const char *counts, Py_ssize_t len) {
    if (size_ints(z, h, w) < 0) return NULL;
    PyObject *d = PyDict_New(), *size = PyList_New(2), *c = PyBytes_FromStringAndSize(counts, len);
    if (!d || !size || !c) goto fail;
    Py_INCREF(z->hh);
    Py_INCREF(z->ww);
    PyList_SET_ITEM(size, 0, z->hh);
    PyList_SET_ITEM(size, 1, z->ww);
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
    Py_XDECREF(c);
    return NULL;
}

static PyObject *rle_objects(const Buf *meta, const Buf *chars) {
    Py_ssize_t n = (Py_ssize_t)(meta->len / (6 * sizeof(int64_t)));
    PyObject *list = PyList_New(n), *size_key = PyUnicode_InternFromString("size");
    PyObject *counts_key = PyUnicode_InternFromString("counts");
    SizeInts z = {0, 0, NULL, NULL};
    if (!list || !size_key || !counts_key) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t m[6];
        memcpy(m, meta->data + (size_t)i * sizeof m, sizeof m); /* record, h, w, kind, start, stop */
        PyObject *item = Py_None;
        if (m[3]) Py_INCREF(item);
        else if (!(item = rle_object(size_key, counts_key, &z, m[1], m[2], chars->data + m[4],
                                     (Py_ssize_t)(m[5] - m[4]))))
            goto fail;
        PyList_SET_ITEM(list, i, item);
    }
    Py_DECREF(size_key);
    Py_DECREF(counts_key);
    Py_XDECREF(z.hh);
    Py_XDECREF(z.ww);
    return list;
fail:
    Py_XDECREF(list);
    Py_XDECREF(size_key);
    Py_XDECREF(counts_key);
    Py_XDECREF(z.hh);
    Py_XDECREF(z.ww);
    return NULL;
}

#endif /* MASLOW_COCO_RLE_H */
