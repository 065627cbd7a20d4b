/* Confusion counts of two uint8 label maps (semantic segmentation): hist[truth << 8 | pred] += pixels.
 *
 * Label maps are piecewise constant, so most pixels equal the pixel above them. The counts of row r are those of
 * row r - 1 plus a few changes; summed over rows, a change at row r counts (rows_in_segment - offset) times. So
 * a "key" row is counted pixel by pixel and every later row only where it differs from the row above, comparing
 * 8 pixels at a time. A row that differs almost everywhere (noise-like maps) becomes a key row itself, counted
 * directly, so the worst case costs one pass more than a plain histogram, never a change list per pixel.
 *
 * count_pairs(truth, pred, width, n_classes, strict, hist) -> bool
 *   truth, pred: C-contiguous uint8 buffers of the same length (maps stacked row after row, `width` pixels a row).
 *   hist: writable int64 buffer of 65536 bins, added to: hist[t << 8 | p] for a class t, with every prediction
 *   that is no class (p >= n_classes) counted at column n_classes; the ignored pixels all at hist[255 << 8].
 *   Truth value 255 is the ignore label. Returns False, counting nothing, when a truth value is neither a class
 *   id (< n_classes) nor 255, or (strict) a prediction at an evaluated pixel is not a class id: the caller's
 *   general path then reports the offending value.
 *
 * The test of a 32-pixel block against the row above is one AVX2 instruction pair where the CPU has AVX2 (chosen
 * at import; set_simd switches it for tests), four 8-byte words elsewhere.
 *
 * The walk counts into a small table first: rows truth 0..K-1, the ignore value, anything else; columns prediction
 * 0..K-1, anything else (K + 2 by K + 1 bins, in L1 cache even when every pixel is visited). The table holds the
 * exact pair counts at the end, so a bad value shows as a non-empty bin; only a valid map is added to `hist`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#error "confusion.c needs gcc or clang (__builtin_ctzll)"
#endif

#define IGNORE 255

static inline uint64_t load8(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The walk's context: the small table, the bin of each truth value's row and of each prediction's column. */
typedef struct {
    int64_t *bins;  /* LANES tables of nbins: a key row spreads its pixels over them (no store-to-load stalls
                     * when neighbouring pixels hit the same bin); they are summed at the end */
    Py_ssize_t nbins;
    int32_t row[256], col[256];
} Counter;

#define LANES 4

static inline void visit(Counter *c, uint8_t t, uint8_t p, int64_t weight) {
    c->bins[c->row[t] + c->col[p]] += weight;
}

/* Number of 8-pixel words of the row at `start` (not the first) that differ from the row above, in truth or
 * prediction (branch-free: gcc vectorises it). */
static Py_ssize_t changed_words(const uint8_t *t, const uint8_t *p, Py_ssize_t start, Py_ssize_t w) {
    Py_ssize_t changed = 0, x = 0;
    for (; x + 8 <= w; x += 8) {
        Py_ssize_t i = start + x;
        changed += ((load8(t + i) ^ load8(t + i - w)) | (load8(p + i) ^ load8(p + i - w))) != 0;
    }
    for (; x < w; x++) changed += (t[start + x] != t[start + x - w]) | (p[start + x] != p[start + x - w]);
    return changed;
}

static void add_row(Counter *c, const uint8_t *t, const uint8_t *p, Py_ssize_t start, Py_ssize_t w,
                    int64_t weight) {
    int64_t *b = c->bins;
    Py_ssize_t nb = c->nbins, x = start, stop = start + w;
    for (; x + LANES <= stop; x += LANES)
        for (int l = 0; l < LANES; l++) b[l * nb + c->row[t[x + l]] + c->col[p[x + l]]] += weight;
    for (; x < stop; x++) visit(c, t[x], p[x], weight);
}

/* Pixel j differs from the one above: +weight for its pair, -weight for the pair above. */
static inline void add_change(Counter *c, const uint8_t *t, const uint8_t *p, Py_ssize_t j, Py_ssize_t w,
                              int64_t weight) {
    visit(c, t[j], p[j], weight);
    visit(c, t[j - w], p[j - w], -weight);
}

/* The differences of the row at `start` from the row above, each weighted `weight`. Returns the number of 8-pixel
 * words that differ; inside such a word only the differing bytes are visited. */
static inline uint64_t word_diff(const uint8_t *t, const uint8_t *p, Py_ssize_t i, Py_ssize_t w) {
    return (load8(t + i) ^ load8(t + i - w)) | (load8(p + i) ^ load8(p + i - w));
}

/* The changes inside one 8-pixel word at i whose difference from the row above is `diff` (not 0). */
static inline void add_word(Counter *c, const uint8_t *t, const uint8_t *p, Py_ssize_t i, Py_ssize_t w,
                            uint64_t diff, int64_t weight) {
    while (diff) {  /* the differing bytes, lowest address first */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        int b = __builtin_clzll(diff) >> 3;
        diff &= ~(0xFF00000000000000ull >> (8 * b));
#else
        int b = __builtin_ctzll(diff) >> 3;
        diff &= ~(0xFFull << (8 * b));
#endif
        add_change(c, t, p, i + b, w, weight);
    }
}

/* The changes of the row at `start` from pixel x on, 8 pixels at a time, then one at a time; returns the number of
 * differing 8-pixel words (and single pixels of the tail). */
static Py_ssize_t add_changes_from(Counter *c, const uint8_t *t, const uint8_t *p, Py_ssize_t start, Py_ssize_t x,
                                   Py_ssize_t w, int64_t weight) {
    Py_ssize_t changed = 0;
    for (; x + 8 <= w; x += 8) {
        Py_ssize_t i = start + x;
        uint64_t diff = word_diff(t, p, i, w);
        if (!diff) continue;
        changed++;
        add_word(c, t, p, i, w, diff, weight);
    }
    for (; x < w; x++) {
        Py_ssize_t j = start + x;
        if (t[j] != t[j - w] || p[j] != p[j - w]) {
            add_change(c, t, p, j, w, weight);
            changed++;
        }
    }
    return changed;
}

/* A 32-pixel block at i that differs from the row above: its changes, word by word. */
static inline Py_ssize_t add_block(Counter *c, const uint8_t *t, const uint8_t *p, Py_ssize_t i, Py_ssize_t w,
                                   int64_t weight) {
    Py_ssize_t changed = 0;
    for (int q = 0; q < 4; q++) {
        uint64_t d = word_diff(t, p, i + 8 * q, w);
        if (d) {
            changed++;
            add_word(c, t, p, i + 8 * q, w, d, weight);
        }
    }
    return changed;
}

/* The differences of the row at `start` from the row above, each weighted `weight`. Returns the number of 8-pixel
 * words that differ; inside such a word only the differing bytes are visited. 32 pixels are tested at a time
 * first: in a piecewise-constant map most such blocks equal the row above. */
static Py_ssize_t add_changes_portable(Counter *c, const uint8_t *t, const uint8_t *p, Py_ssize_t start,
                                       Py_ssize_t w, int64_t weight) {
    Py_ssize_t x = 0, changed = 0;
    for (; x + 32 <= w; x += 32) {
        Py_ssize_t i = start + x;
        if (word_diff(t, p, i, w) | word_diff(t, p, i + 8, w) | word_diff(t, p, i + 16, w) |
            word_diff(t, p, i + 24, w))
            changed += add_block(c, t, p, i, w, weight);
    }
    return changed + add_changes_from(c, t, p, start, x, w, weight);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* The same with one AVX2 test per 32-pixel block (chosen at run time where the CPU has AVX2): the test is most of
 * the work on piecewise-constant maps, and the portable test of four 8-byte words took twice as long. */
__attribute__((target("avx2"))) static Py_ssize_t add_changes_avx2(Counter *c, const uint8_t *t, const uint8_t *p,
                                                                   Py_ssize_t start, Py_ssize_t w, int64_t weight) {
    Py_ssize_t x = 0, changed = 0;
    for (; x + 32 <= w; x += 32) {
        Py_ssize_t i = start + x;
        __m256i dt = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(t + i)),
                                      _mm256_loadu_si256((const __m256i *)(t + i - w)));
        __m256i dp = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)),
                                      _mm256_loadu_si256((const __m256i *)(p + i - w)));
        __m256i d = _mm256_or_si256(dt, dp);
        if (!_mm256_testz_si256(d, d)) changed += add_block(c, t, p, i, w, weight);
    }
    return changed + add_changes_from(c, t, p, start, x, w, weight);
}
#define HAVE_AVX2_PATH 1
#endif

typedef Py_ssize_t (*changes_fn)(Counter *, const uint8_t *, const uint8_t *, Py_ssize_t, Py_ssize_t, int64_t);
static changes_fn add_changes = add_changes_portable;

/* Rows are walked from the bottom up, so the end of the current segment (the key row below, or the last row) is
 * known: a segment key .. end - 1 counts its key row end - key times and a change at row q end - q times. Whether
 * a row is a key row is guessed from the row below it (both ways count exactly; the guess only saves time). */
static void count(Counter *c, const uint8_t *t, const uint8_t *p, Py_ssize_t rows, Py_ssize_t w) {
    Py_ssize_t words = (w + 7) / 8, end = rows;
    int dense = 0;
    for (Py_ssize_t r = rows - 1; r >= 1; r--) {
        if (dense) {  /* changes almost everywhere: count the row itself, and see whether the next is alike */
            add_row(c, t, p, r * w, w, (int64_t)(end - r));
            end = r;
            dense = changed_words(t, p, r * w, w) * 2 > words;
        } else {
            dense = add_changes(c, t, p, r * w, w, (int64_t)(end - r)) * 2 > words;
        }
    }
    add_row(c, t, p, 0, w, (int64_t)end);
}

static int get_u8(PyObject *obj, Py_buffer *view, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 1 || (view->format && strcmp(view->format, "B") != 0)) {
        PyErr_Format(PyExc_TypeError, "count_pairs: %s must be a contiguous uint8 buffer", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *count_pairs(PyObject *self, PyObject *args) {
    PyObject *to, *po, *ho;
    Py_ssize_t w;
    int k, strict;
    if (!PyArg_ParseTuple(args, "OOnipO", &to, &po, &w, &k, &strict, &ho)) return NULL;
    Py_buffer tv, pv, hv;
    if (get_u8(to, &tv, "truth") < 0) return NULL;
    if (get_u8(po, &pv, "pred") < 0) { PyBuffer_Release(&tv); return NULL; }
    if (PyObject_GetBuffer(ho, &hv, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&tv); PyBuffer_Release(&pv); return NULL;
    }
    PyObject *result = NULL;
    if (tv.len != pv.len || w <= 0 || tv.len % w != 0 || hv.len != 65536 * 8 || hv.itemsize != 8 || k < 1 || k > 255) {
        PyErr_SetString(PyExc_ValueError, "count_pairs: truth and pred must hold whole rows of the same width, "
                                          "hist 65536 int64 bins, 1 <= n_classes <= 255");
        goto done;
    }
    Py_ssize_t ncol = k + 1;
    Counter c;
    c.nbins = (k + 2) * ncol;
    c.bins = PyMem_Calloc((size_t)(LANES * c.nbins), sizeof(int64_t));
    if (!c.bins) { PyErr_NoMemory(); goto done; }
    for (int v = 0; v < 256; v++) {
        c.row[v] = (int32_t)((v < k ? v : v == IGNORE ? k : k + 1) * ncol);
        c.col[v] = v < k ? v : k;
    }
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    if (tv.len) count(&c, tv.buf, pv.buf, tv.len / w, w);
    for (int l = 1; l < LANES; l++)
        for (Py_ssize_t i = 0; i < c.nbins; i++) c.bins[i] += c.bins[l * c.nbins + i];
    for (Py_ssize_t j = 0; j < ncol; j++) ok &= c.bins[(k + 1) * ncol + j] == 0;  /* truth neither class nor 255 */
    if (strict)
        for (Py_ssize_t i = 0; i < k; i++) ok &= c.bins[i * ncol + k] == 0;  /* no class predicted where evaluated */
    if (ok) {
        int64_t *hist = hv.buf;
        for (Py_ssize_t i = 0; i < k; i++)
            for (Py_ssize_t j = 0; j < ncol; j++) hist[(i << 8) | j] += c.bins[i * ncol + j];
        for (Py_ssize_t j = 0; j < ncol; j++) hist[IGNORE << 8] += c.bins[k * ncol + j];
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(c.bins);
    result = PyBool_FromLong(ok);
done:
    PyBuffer_Release(&tv); PyBuffer_Release(&pv); PyBuffer_Release(&hv);
    return result;
}

/* set_simd(on) -> bool: use the AVX2 test where the CPU has it (on), or the portable one (tests run both); returns
 * whether the AVX2 path is in use. */
static PyObject *set_simd(PyObject *self, PyObject *args) {
    int on;
    if (!PyArg_ParseTuple(args, "p", &on)) return NULL;
    add_changes = add_changes_portable;
#ifdef HAVE_AVX2_PATH
    if (on && __builtin_cpu_supports("avx2")) add_changes = add_changes_avx2;
#endif
    return PyBool_FromLong(add_changes != add_changes_portable);
}

static PyMethodDef methods[] = {
    {"set_simd", set_simd, METH_VARARGS, "set_simd(on) -> bool: the AVX2 test where the CPU has it, or the portable "
     "one; whether AVX2 is in use."},
    {"count_pairs", count_pairs, METH_VARARGS,
     "count_pairs(truth, pred, width, n_classes, strict, hist) -> bool: add the (truth, pred) pixel counts of "
     "uint8 maps to hist[truth << 8 | pred] (65536 int64 bins; see confusion.c); False (nothing added) on an "
     "invalid value."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "confusion",
                                    "Confusion counts of uint8 label maps (see confusion.c).", -1, methods};

PyMODINIT_FUNC PyInit_confusion(void) {
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) add_changes = add_changes_avx2;
#endif
    return PyModule_Create(&module);
}
