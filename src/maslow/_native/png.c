/* maslow._native.png: the 8-bit, non-interlaced PNGs of the COCO panoptic format decoded, and their segment-id
 * maps turned into COCO RLE, for io/_coco_panoptic_png.py.
 *
 *   pixels(zdata, h, w, channels) -> bytes | None: the (h, w, channels) uint8 pixels of a PNG whose IDAT chunks,
 *     joined, are `zdata` (a zlib stream), 8 bits a sample: the stream inflated, its Adler-32 checked, each row
 *     unfiltered (None, Sub, Up, Average, Paeth).
 *   segments(ids, h, w) -> (ids, counts, area, box) | None: the segments of a column-major (h * w,) uint32 id map,
 *     by id ascending, VOID (0) left out: ids (int64), each one's pycocotools counts string (bytes: what
 *     ``pycocotools.mask.frPyObjects`` writes for its run lengths, background first, column-major), area
 *     (int64 pixel counts) and box (float64 x0, y0, x1, y1 of its pixels, pixel i spanning [i, i + 1)).
 *   panoptic(zdata, h, w, channels, palette) -> segments' tuple | None: the segments of a panoptic PNG, its ids
 *     ``R + 256 G + 256^2 B`` of an RGB (channels 3) or RGBA (4) PNG, or of a palette one (channels 1, `palette`
 *     its PLTE chunk: the colours of the indices), without a Python object for the pixels.
 *   sums(runs, offsets) and pairs(...): the masks' pixel counts and the overlaps of two sides' masks, for the
 *     panoptic evaluation (metrics/_panoptic_pairs.py; see there).
 *
 * None means "not here": a stream that is not exactly what zlib would inflate to h rows of the right length (a
 * bad header, code, distance, length or checksum, too few or too many bytes), a filter type above 4, a palette
 * index past the palette; the caller then reads the file with Pillow, which reports it as it always has. The
 * inflater follows RFC 1950/1951 and zlib's checks (over-subscribed or incomplete codes refused, except one
 * distance or length code of one bit); its output is checked against the stream's Adler-32.
 * The loops run without the GIL; memory from PyMem_Raw.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "png_inflate.h"    /* inflate_zlib, build_fixed, SLACK */
#include "panoptic_pairs.h" /* py_sums, py_pairs */

/* -- unfilter ---------------------------------------------------------------------------------------------- */

static inline uint8_t paeth(int a, int b, int c) {
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return (uint8_t)((pa <= pb && pa <= pc) ? a : pb <= pc ? b : c);
}

/* 4 bytes as a little-endian uint32 (pixel byte k in lane k), and back. */
static inline uint32_t ld4(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline void st4(uint8_t *p, uint32_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

/* Bytewise a + b (mod 256 each). */
static inline uint32_t add_bytes(uint32_t a, uint32_t b) {
    return ((a & 0x7f7f7f7fu) + (b & 0x7f7f7f7fu)) ^ ((a ^ b) & 0x80808080u);
}

static inline __attribute__((always_inline)) uint32_t paeth_px(uint32_t a, uint32_t b, uint32_t c, size_t bpp) {
    if (b == c) return a; /* per byte: pa = 0 */
    if (a == c) return b; /* pb = 0 < pa (where b == c too, a is b) */
    uint32_t v = 0;
    for (size_t k = 0; k < bpp; k++)
        v |= (uint32_t)paeth((a >> (8 * k)) & 255, (b >> (8 * k)) & 255, (c >> (8 * k)) & 255) << (8 * k);
    return v;
}

/* One row of `stride` bytes unfiltered from `src` (after its filter-type byte) into `dst`, `up` the row above
 * (unfiltered). A pixel is a uint32 whose lanes past `bpp` are masked off (loads and stores of 4 bytes: 3 readable
 * and writable bytes follow each row); `bpp` a constant where inlined. -1: a filter type above 4. */
static inline __attribute__((always_inline)) int unfilter_row(uint8_t *dst, const uint8_t *src, const uint8_t *up,
                                                              size_t stride, const size_t bpp) {
    const uint32_t mask = bpp == 4 ? 0xffffffffu : (1u << (8 * bpp)) - 1;
    uint32_t a = 0, c = 0;
    switch (src[-1]) {
    case 0:
        memcpy(dst, src, stride);
        return 0;
    case 1:
        for (size_t i = 0; i < stride; i += bpp) {
            uint32_t d = ld4(src + i) & mask;
            if (d) a = add_bytes(a, d) & mask; /* (flat stretches: no change, and no chain of additions) */
            st4(dst + i, a);
        }
        return 0;
    case 2:
        for (size_t i = 0; i < stride; i++) dst[i] = (uint8_t)(src[i] + up[i]);
        return 0;
    case 3:
        for (size_t i = 0; i < stride; i += bpp) {
            uint32_t b = ld4(up + i) & mask, avg = (a & b) + (((a ^ b) & 0xfefefefeu) >> 1);
            a = add_bytes(avg, ld4(src + i)) & mask;
            st4(dst + i, a);
        }
        return 0;
    case 4:
        for (size_t i = 0; i < stride; i += bpp) {
            uint32_t b = ld4(up + i) & mask, d = ld4(src + i) & mask;
            if (b != c) a = paeth_px(a, b, c, bpp);
            if (d) a = add_bytes(a, d) & mask;
            st4(dst + i, a);
            c = b;
        }
        return 0;
    default:
        return -1;
    }
}

/* Unfilter h rows of `stride` bytes (in `raw` each after its filter-type byte) into `out`, rows back to back;
 * `zero`: stride + 4 zero bytes. -1: a type above 4. */
static int unfilter(const uint8_t *raw, uint8_t *out, size_t h, size_t stride, size_t bpp, const uint8_t *zero) {
    const uint8_t *up = zero;
    for (size_t r = 0; r < h; r++) {
        const uint8_t *x = raw + r * (stride + 1) + 1;
        uint8_t *d = out + r * stride;
        int bad = bpp == 3 ? unfilter_row(d, x, up, stride, 3) : bpp == 4 ? unfilter_row(d, x, up, stride, 4)
                : bpp == 1 ? unfilter_row(d, x, up, stride, 1) : unfilter_row(d, x, up, stride, 2);
        if (bad) return -1;
        up = d;
    }
    return 0;
}

/* Buffers kept between calls (up to SCRATCH_KEEP bytes each; taken and given back under the GIL): a fresh mapping
 * of a megabyte costs as much in page faults as decoding into it (measured: reading the panoptic benchmark's PNGs
 * takes a fifth longer without them). Slot 0: the inflated rows; slot 1: the unfiltered ones. */
#define SCRATCH_KEEP ((size_t)1 << 24)
static void *scratch[2];
static size_t scratch_cap[2];

static void *take(int k, size_t n, size_t *cap) {
    void *p = scratch[k];
    if (p && scratch_cap[k] >= n) {
        scratch[k] = NULL;
        *cap = scratch_cap[k];
        return p;
    }
    *cap = n;
    return PyMem_RawMalloc(n);
}

static void give(int k, void *p, size_t cap) {
    if (!p) return;
    if (cap > SCRATCH_KEEP || (scratch[k] && scratch_cap[k] >= cap)) {
        PyMem_RawFree(p);
        return;
    }
    PyMem_RawFree(scratch[k]);
    scratch[k] = p;
    scratch_cap[k] = cap;
}

/* Inflate (into scratch 0) and unfilter into scratch 1 (`*cap` its size; give it back with give(1, ...)): the rows
 * back to back, 3 bytes after them; NULL: not here. */
static uint8_t *decode_rows(const uint8_t *z, size_t zlen, size_t h, size_t w, size_t channels, size_t *cap) {
    if (!h || !w || w > (SIZE_MAX / 8) / channels || h > (SIZE_MAX / 2) / (w * channels + 1)) return NULL;
    size_t stride = w * channels, n = h * (stride + 1), raw_cap;
    uint8_t *raw = take(0, n + SLACK, &raw_cap), *out = take(1, h * stride + SLACK, cap);
    uint8_t *zero = PyMem_RawCalloc(stride + 4, 1);
    int bad = !raw || !out || !zero;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        bad = inflate_zlib(z, zlen, raw, n) || unfilter(raw, out, h, stride, channels, zero);
        Py_END_ALLOW_THREADS
    }
    PyMem_RawFree(zero);
    give(0, raw, raw_cap);
    if (bad) {
        give(1, out, *cap);
        return NULL;
    }
    return out;
}

static int dims(Py_ssize_t h, Py_ssize_t w, Py_ssize_t channels) {
    if (h <= 0 || w <= 0 || channels < 1 || channels > 4) {
        PyErr_SetString(PyExc_ValueError, "h and w must be > 0 and channels 1..4");
        return -1;
    }
    return 0;
}

static PyObject *py_pixels(PyObject *self, PyObject *args) {
    Py_buffer z;
    Py_ssize_t h, w, c;
    if (!PyArg_ParseTuple(args, "y*nnn", &z, &h, &w, &c)) return NULL;
    PyObject *res = NULL;
    if (dims(h, w, c) == 0) {
        size_t cap;
        uint8_t *raw = decode_rows(z.buf, (size_t)z.len, (size_t)h, (size_t)w, (size_t)c, &cap);
        if (!raw) {
            res = Py_NewRef(Py_None);
        } else {
            size_t stride = (size_t)w * (size_t)c;
            res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(stride * (size_t)h));
            if (res) {
                uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(res);
                memcpy(dst, raw, stride * (size_t)h);
            }
            give(1, raw, cap);
        }
    }
    PyBuffer_Release(&z);
    return res;
}

/* -- segments ---------------------------------------------------------------------------------------------- */

typedef struct {
    uint32_t start, len, slot;
} Run;

typedef struct {
    uint32_t *keys; /* 0: empty (VOID is never a key) */
    uint32_t *vals;
    size_t cap, n;
} Map;

static int map_grow(Map *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint32_t *keys = PyMem_RawCalloc(cap, 4), *vals = PyMem_RawMalloc(cap * 4);
    if (!keys || !vals) {
        PyMem_RawFree(keys);
        PyMem_RawFree(vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = (m->keys[i] * 2654435761u) & (cap - 1);
        while (keys[j]) j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    PyMem_RawFree(m->keys);
    PyMem_RawFree(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

/* The slot of `key`, a new one (m->n) if it has none; -1: out of memory. */
static int64_t map_slot(Map *m, uint32_t key) {
    if (2 * (m->n + 1) > m->cap && map_grow(m)) return -1;
    size_t j = (key * 2654435761u) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->keys[j] == key) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = key;
    m->vals[j] = (uint32_t)m->n;
    return (int64_t)m->n++;
}

/* One pycocotools counts-string value (rleToString: 5 bits a character, more-flag 0x20, offset 48). */
static inline char *put_count(char *s, int64_t x) {
    int more = 1;
    while (more) {
        int c = (int)(x & 0x1f);
        x >>= 5;
        more = (c & 0x10) ? x != -1 : x != 0;
        if (more) c |= 0x20;
        *s++ = (char)(c + 48);
    }
    return s;
}

static const uint32_t *sort_keys;
static int by_key(const void *a, const void *b) {
    uint32_t x = sort_keys[*(const uint32_t *)a], y = sort_keys[*(const uint32_t *)b];
    return (x > y) - (x < y);
}

/* (ids, counts, area, box) of a column-major id map, h * w below 2^32. */
/* The runs of equal ids, column-major, met a column (or a stretch of one) at a time; VOID's left out. */
typedef struct {
    Map m;
    Run *runs;
    size_t nr, rcap;
    uint32_t cur;             /* the id of the run in progress */
    size_t start;             /* where it began */
    uint32_t last_key, last_slot; /* the slot last looked up */
} Scan;

static int emit(Scan *s, size_t end) {
    if (!s->cur) return 0;
    if (s->cur != s->last_key || !s->m.n) {
        int64_t slot = map_slot(&s->m, s->cur);
        if (slot < 0) return -1;
        s->last_key = s->cur;
        s->last_slot = (uint32_t)slot;
    }
    if (s->nr == s->rcap) {
        size_t cap = s->rcap ? 2 * s->rcap : 1024;
        Run *more = PyMem_RawRealloc(s->runs, cap * sizeof(Run));
        if (!more) return -1;
        s->runs = more;
        s->rcap = cap;
    }
    s->runs[s->nr++] = (Run){(uint32_t)s->start, (uint32_t)(end - s->start), s->last_slot};
    return 0;
}

/* `len` ids that follow pixel `base` in column-major order. */
static int scan(Scan *s, const uint32_t *ids, size_t len, size_t base) {
    uint32_t cur = s->cur;
    for (size_t i = 0; i < len; i++) {
        if (ids[i] == cur) continue;
        if (emit(s, base + i)) return -1;
        s->cur = cur = ids[i];
        s->start = base + i;
    }
    return 0;
}

static inline uint32_t id_at(const uint8_t *px, size_t c, const uint32_t *pal) {
    return pal ? pal[*px] : px[0] | (uint32_t)px[1] << 8 | (uint32_t)px[2] << 16;
}

/* The runs of the unfiltered rows without an id per pixel: in column-major order a run can only begin at the top
 * of a column or where a pixel's bytes differ from those above it, so the rows are compared with the rows above
 * (8 bytes at a time), those places sorted by column (counting sort; rows ascending within a column), and the id
 * read there; a place whose id is the run's (a new column, or bytes that differ in alpha or palette index only)
 * continues it. -1: out of memory; -2: a palette index past the palette (every pixel's index is read at such a
 * place or repeats the one above it). */
static int scan_rows(Scan *s, const uint8_t *raw, size_t h, size_t w, size_t c, const uint32_t *pal, size_t npal) {
    size_t stride = w * c, nc = 0, ccap = 4096;
    uint32_t *cx = PyMem_RawMalloc(ccap * 4), *cy = PyMem_RawMalloc(ccap * 4), *at = PyMem_RawCalloc(w + 1, 4);
    uint32_t *ys = NULL;
    int err = -1;
    if (!cx || !cy || !at) goto out;
    for (size_t y = 1; y < h; y++) {
        const uint8_t *a = raw + y * stride, *b = a - stride;
        size_t last = SIZE_MAX, i = 0;
        for (;;) {
            unsigned mk; /* bit j: byte i + j differs from the one above */
            if (i + 16 <= stride) {
#if defined(__SSE2__)
                __m128i u = _mm_loadu_si128((const __m128i *)(a + i)), v = _mm_loadu_si128((const __m128i *)(b + i));
                mk = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(u, v)) & 0xffffu;
#else
                uint64_t u0, u1, v0, v1;
                memcpy(&u0, a + i, 8);
                memcpy(&u1, a + i + 8, 8);
                memcpy(&v0, b + i, 8);
                memcpy(&v1, b + i + 8, 8);
                mk = 0;
                if (u0 != v0 || u1 != v1)
                    for (unsigned j = 0; j < 16; j++) mk |= (unsigned)(a[i + j] != b[i + j]) << j;
#endif
            } else if (i < stride) {
                mk = 0;
                for (unsigned j = 0; i + j < stride; j++) mk |= (unsigned)(a[i + j] != b[i + j]) << j;
            } else {
                break;
            }
            for (; mk; mk &= mk - 1) {
                size_t byte = i + (size_t)__builtin_ctz(mk);
                size_t x = c == 3 ? byte / 3 : c == 4 ? byte >> 2 : byte;
                if (x == last) continue;
                last = x;
                if (nc == ccap) {
                    uint32_t *mx = PyMem_RawRealloc(cx, 2 * ccap * 4);
                    if (mx) cx = mx;
                    uint32_t *my = mx ? PyMem_RawRealloc(cy, 2 * ccap * 4) : NULL;
                    if (!my) goto out;
                    cy = my;
                    ccap *= 2;
                }
                cx[nc] = (uint32_t)x;
                cy[nc++] = (uint32_t)y;
                at[x + 1]++;
            }
            i += 16;
        }
    }
    for (size_t x = 0; x < w; x++) at[x + 1] += at[x] + 1; /* each column: its top, then its places */
    ys = PyMem_RawMalloc((nc + w) * 4);
    if (!ys) goto out;
    for (size_t x = 0; x < w; x++) ys[at[x]++] = 0;
    for (size_t q = 0; q < nc; q++) ys[at[cx[q]]++] = cy[q];
    err = 0;
    for (size_t x = 0, q = 0; x < w; x++) { /* at[x]: the end of column x's places */
        for (; q < at[x]; q++) {
            const uint8_t *px = raw + ys[q] * stride + x * c;
            if (pal && *px >= npal) {
                err = -2;
                goto out;
            }
            uint32_t v = id_at(px, c, pal);
            if (v == s->cur) continue;
            size_t pos = x * h + ys[q];
            if (emit(s, pos)) {
                err = -1;
                goto out;
            }
            s->cur = v;
            s->start = pos;
        }
    }
out:
    PyMem_RawFree(cx);
    PyMem_RawFree(cy);
    PyMem_RawFree(at);
    PyMem_RawFree(ys);
    return err;
}

static void scan_free(Scan *s) {
    PyMem_RawFree(s->runs);
    PyMem_RawFree(s->m.keys);
    PyMem_RawFree(s->m.vals);
}

/* (ids, counts, area, box) of the scanned runs of an h x w map (the last run closed here); frees the scan. */
static PyObject *segments_of(Scan *sc, size_t h, size_t w) {
    PyObject *res = NULL;
    uint32_t *keys = NULL, *order = NULL, *first = NULL, *by_slot = NULL;
    char *text = NULL;
    size_t n = h * w;
    if (emit(sc, n)) goto nomem;
    Run *runs = sc->runs;
    size_t nr = sc->nr;
    Map m = sc->m;
    size_t k = m.n;
    keys = PyMem_RawMalloc((k + 1) * 4);
    order = PyMem_RawMalloc((k + 1) * 4);
    first = PyMem_RawCalloc(k + 1, 4);
    by_slot = PyMem_RawMalloc((nr + 1) * 4);
    if (!keys || !order || !first || !by_slot) goto nomem;
    for (size_t j = 0; j < m.cap; j++)
        if (m.keys[j]) keys[m.vals[j]] = m.keys[j];
    for (size_t s = 0; s < k; s++) order[s] = (uint32_t)s;
    sort_keys = keys; /* under the GIL */
    qsort(order, k, 4, by_key);
    size_t most = 0; /* runs of the segment with the most */
    for (size_t r = 0; r < nr; r++) first[runs[r].slot]++;
    for (size_t s = 0, at = 0; s < k; s++) {
        size_t c = first[s];
        if (c > most) most = c;
        first[s] = (uint32_t)at;
        at += c;
    }
    for (size_t r = 0; r < nr; r++) by_slot[first[runs[r].slot]++] = (uint32_t)r;
    /* first[s] is now the end of slot s's runs; its start is the end of slot s - 1's */
    text = PyMem_RawMalloc(7 * (2 * most + 1) + 1);
    PyObject *id_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * k));
    PyObject *area_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * k));
    PyObject *box_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * k));
    PyObject *counts = PyList_New((Py_ssize_t)k);
    res = PyTuple_New(4);
    if (!text || !id_b || !area_b || !box_b || !counts || !res) {
        Py_XDECREF(id_b);
        Py_XDECREF(area_b);
        Py_XDECREF(box_b);
        Py_XDECREF(counts);
        Py_CLEAR(res);
        goto nomem;
    }
    PyTuple_SET_ITEM(res, 0, id_b);
    PyTuple_SET_ITEM(res, 1, counts);
    PyTuple_SET_ITEM(res, 2, area_b);
    PyTuple_SET_ITEM(res, 3, box_b);
    int64_t *out_id = (int64_t *)PyBytes_AS_STRING(id_b), *out_area = (int64_t *)PyBytes_AS_STRING(area_b);
    double *out_box = (double *)PyBytes_AS_STRING(box_b);
    for (size_t g = 0; g < k; g++) {
        uint32_t s = order[g];
        size_t r0 = s ? first[s - 1] : 0, r1 = first[s];
        char *t = text;
        int64_t prev2 = 0, prev1 = 0; /* the last two counts (rleToString's deltas from the third on) */
        size_t ci = 0, end = 0, area = 0, ymin = h, ymax = 0;
        for (size_t q = r0; q < r1; q++) {
            const Run *rn = &runs[by_slot[q]];
            int64_t vals[2] = {(int64_t)rn->start - (int64_t)end, rn->len};
            for (int e = 0; e < 2; e++, ci++) {
                t = put_count(t, ci > 2 ? vals[e] - prev2 : vals[e]);
                prev2 = prev1;
                prev1 = vals[e];
            }
            size_t a = rn->start, b = (size_t)rn->start + rn->len - 1;
            size_t y0 = a / h == b / h ? a % h : 0, y1 = a / h == b / h ? b % h : h - 1;
            if (y0 < ymin) ymin = y0;
            if (y1 > ymax) ymax = y1;
            area += rn->len;
            end = b + 1;
        }
        if (n > end) t = put_count(t, ci > 2 ? (int64_t)(n - end) - prev2 : (int64_t)(n - end));
        PyObject *str = PyBytes_FromStringAndSize(text, t - text);
        if (!str) {
            Py_CLEAR(res);
            goto done;
        }
        PyList_SET_ITEM(counts, (Py_ssize_t)g, str);
        const Run *a = &runs[by_slot[r0]];
        out_id[g] = keys[s];
        out_area[g] = (int64_t)area;
        out_box[4 * g] = (double)(a->start / h);
        out_box[4 * g + 1] = (double)ymin;
        out_box[4 * g + 2] = (double)((end - 1) / h + 1);
        out_box[4 * g + 3] = (double)(ymax + 1);
    }
    goto done;
nomem:
    PyErr_NoMemory();
done:
    PyMem_RawFree(keys);
    PyMem_RawFree(order);
    PyMem_RawFree(first);
    PyMem_RawFree(by_slot);
    PyMem_RawFree(text);
    scan_free(sc);
    return res;
}

static int id_dims(Py_ssize_t h, Py_ssize_t w) {
    if (h <= 0 || w <= 0 || (size_t)w > UINT32_MAX / (size_t)h || w > PY_SSIZE_T_MAX / 4 / h) {
        PyErr_SetString(PyExc_ValueError, "h and w must be > 0, h * w below 2^32 and 4 h w below PY_SSIZE_T_MAX");
        return -1;
    }
    return 0;
}

static PyObject *py_segments(PyObject *self, PyObject *args) {
    Py_buffer ib;
    Py_ssize_t h, w;
    if (!PyArg_ParseTuple(args, "y*nn", &ib, &h, &w)) return NULL;
    PyObject *res = NULL;
    if (id_dims(h, w) == 0) {
        if (ib.len != h * w * 4 || (uintptr_t)ib.buf % 4)
            PyErr_SetString(PyExc_ValueError, "segments: ids must be h * w uint32 values, 4-byte aligned");
        else {
            Scan sc = {0};
            if (scan(&sc, ib.buf, (size_t)(h * w), 0)) {
                scan_free(&sc);
                PyErr_NoMemory();
            } else {
                res = segments_of(&sc, (size_t)h, (size_t)w);
            }
        }
    }
    PyBuffer_Release(&ib);
    return res;
}

static PyObject *py_panoptic(PyObject *self, PyObject *args) {
    Py_buffer z, p = {0};
    Py_ssize_t h, w, c;
    PyObject *pal_obj;
    if (!PyArg_ParseTuple(args, "y*nnnO", &z, &h, &w, &c, &pal_obj)) return NULL;
    PyObject *res = NULL;
    uint32_t pal[256];
    size_t npal = 0, raw_cap = 0;
    int has_pal = pal_obj != Py_None;
    if (has_pal && PyObject_GetBuffer(pal_obj, &p, PyBUF_SIMPLE) < 0) goto done;
    if (dims(h, w, c) < 0 || id_dims(h, w) < 0) goto done;
    if (has_pal ? c != 1 || p.len % 3 || p.len > 768 : c < 3) {
        PyErr_SetString(PyExc_ValueError, "panoptic: channels 3 or 4, or 1 with a palette of up to 256 colours");
        goto done;
    }
    if (has_pal) {
        const uint8_t *q = p.buf;
        npal = (size_t)p.len / 3;
        for (size_t k = 0; k < npal; k++) pal[k] = q[3 * k] | (uint32_t)q[3 * k + 1] << 8 | (uint32_t)q[3 * k + 2] << 16;
    }
    uint8_t *raw = decode_rows(z.buf, (size_t)z.len, (size_t)h, (size_t)w, (size_t)c, &raw_cap);
    Scan sc = {0};
    int bad = -1;
    if (raw) {
        Py_BEGIN_ALLOW_THREADS
        bad = scan_rows(&sc, raw, (size_t)h, (size_t)w, (size_t)c, has_pal ? pal : NULL, npal);
        Py_END_ALLOW_THREADS
    }
    give(1, raw, raw_cap);
    if (!raw) res = Py_NewRef(Py_None);
    else if (bad == -1) PyErr_NoMemory();
    else if (bad == -2) res = Py_NewRef(Py_None);
    if (bad) scan_free(&sc);
    else res = segments_of(&sc, (size_t)h, (size_t)w);
done:
    if (has_pal && p.obj) PyBuffer_Release(&p);
    PyBuffer_Release(&z);
    return res;
}


static PyMethodDef methods[] = {
    {"pixels", py_pixels, METH_VARARGS, "Unfiltered 8-bit pixels of a PNG's joined IDAT data (None: not decodable)."},
    {"panoptic", py_panoptic, METH_VARARGS, "Segments of a panoptic PNG's IDAT data (None: not decodable here)."},
    {"segments", py_segments, METH_VARARGS, "Segments of a column-major id map: ids, counts strings, areas, boxes."},
    {"sums", py_sums, METH_VARARGS, "Per mask: the sum of its runs and of its foreground runs."},
    {"pairs", py_pairs, METH_VARARGS, "Pixels shared by every (truth, predicted) pair of two sides' run-length masks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "png",
                                 "8-bit PNGs decoded and panoptic id maps as COCO RLE (see io/_coco_panoptic_png.py).",
                                 -1, methods};

PyMODINIT_FUNC PyInit_png(void) {
    build_fixed();
    return PyModule_Create(&mod);
}
