/* The overlaps of two sides' run-length masks for maslow._native.png (sums, pairs; used by
 * metrics/_panoptic_pairs.py): each foreground run an event at each end, all events sorted by position (LSD radix,
 * 11 bits a pass), one sweep adding each stretch between two positions to the (truth, pred) pair in force.
 * Expects Python.h included. */
#ifndef MASLOW_PANOPTIC_PAIRS_H
#define MASLOW_PANOPTIC_PAIRS_H

/* -- overlaps of two sides' run lengths (metrics/_panoptic_pairs.py) ---------------------------------------- */

static int get_typed(PyObject *o, Py_buffer *b, Py_ssize_t item, const char *name) {
    if (PyObject_GetBuffer(o, b, PyBUF_SIMPLE) < 0) return -1;
    if (b->len % item) {
        PyErr_Format(PyExc_ValueError, "%s: a buffer of %zd-byte items expected", name, item);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

/* sums(runs, offsets) -> (total, foreground): per mask (runs[offsets[m]:offsets[m + 1]], uint32; offsets int64),
 * the sum of its runs and of its odd-numbered (foreground) ones, int64 each. */
static PyObject *py_sums(PyObject *self, PyObject *args) {
    PyObject *ro, *oo;
    Py_buffer rb, ob;
    if (!PyArg_ParseTuple(args, "OO", &ro, &oo)) return NULL;
    if (get_typed(ro, &rb, 4, "sums")) return NULL;
    if (get_typed(oo, &ob, 8, "sums")) {
        PyBuffer_Release(&rb);
        return NULL;
    }
    const uint32_t *runs = rb.buf;
    const int64_t *off = ob.buf;
    Py_ssize_t n = ob.len / 8 - 1, nr = rb.len / 4;
    PyObject *tot = NULL, *fg = NULL, *res = NULL;
    for (Py_ssize_t m = 0; m < n; m++)
        if (off[m] < 0 || off[m] > off[m + 1] || off[m + 1] > nr) {
            PyErr_SetString(PyExc_ValueError, "sums: offsets must rise within the runs");
            goto done;
        }
    if (n < 0) n = 0;
    tot = PyBytes_FromStringAndSize(NULL, 8 * n);
    fg = PyBytes_FromStringAndSize(NULL, 8 * n);
    if (!tot || !fg) goto done;
    int64_t *t = (int64_t *)PyBytes_AS_STRING(tot), *f = (int64_t *)PyBytes_AS_STRING(fg);
    for (Py_ssize_t m = 0; m < n; m++) {
        int64_t a = 0, b = 0;
        for (int64_t k = off[m]; k < off[m + 1]; k++) {
            a += runs[k];
            if ((k - off[m]) & 1) b += runs[k];
        }
        t[m] = a;
        f[m] = b;
    }
    res = PyTuple_Pack(2, tot, fg);
done:
    Py_XDECREF(tot);
    Py_XDECREF(fg);
    PyBuffer_Release(&rb);
    PyBuffer_Release(&ob);
    return res;
}

typedef struct {
    uint64_t pos;
    int32_t dt, dp; /* +s where segment s (1-based) of that side begins, -s where it ends */
} Event;

/* The events of one side's masks (foreground runs of positive length), from base[m] on; returns the count. */
static size_t side_events(Event *ev, const uint32_t *runs, const int64_t *off, const int64_t *base, Py_ssize_t n,
                          int pred) {
    size_t ne = 0;
    for (Py_ssize_t m = 0; m < n; m++) {
        uint64_t pos = (uint64_t)base[m];
        for (int64_t k = off[m]; k < off[m + 1]; k++) {
            uint64_t r = runs[k];
            if (((k - off[m]) & 1) && r) {
                int32_t s = (int32_t)(m + 1);
                ev[ne++] = pred ? (Event){pos, 0, s} : (Event){pos, s, 0};
                ev[ne++] = pred ? (Event){pos + r, 0, -s} : (Event){pos + r, -s, 0};
            }
            pos += r;
        }
    }
    return ne;
}

/* Sort by pos, 11 bits a pass (LSD radix; tmp as large as ev). Returns the sorted array (ev or tmp). */
static Event *radix(Event *ev, Event *tmp, size_t ne) {
    uint64_t top = 0;
    for (size_t e = 0; e < ne; e++)
        if (ev[e].pos > top) top = ev[e].pos;
    size_t cnt[1 << 11];
    for (int shift = 0; shift < 64 && (top >> shift); shift += 11) {
        memset(cnt, 0, sizeof cnt);
        for (size_t e = 0; e < ne; e++) cnt[(ev[e].pos >> shift) & 2047]++;
        size_t at = 0;
        for (int d = 0; d < 2048; d++) {
            size_t c = cnt[d];
            cnt[d] = at;
            at += c;
        }
        for (size_t e = 0; e < ne; e++) tmp[cnt[(ev[e].pos >> shift) & 2047]++] = ev[e];
        Event *t = ev;
        ev = tmp;
        tmp = t;
    }
    return ev;
}

/* pairs(t_runs, t_off, t_base, p_runs, p_off, p_base) -> bytes | None: the pixels each (truth segment or none,
 * predicted segment or none) pair shares, an (n_t + 1, n_p + 1) int64 table (only cells of a predicted segment
 * filled; the others 0), from the masks' runs each placed at its base; None where two masks of a side overlap. */
static PyObject *py_pairs(PyObject *self, PyObject *args) {
    PyObject *o[6];
    Py_buffer b[6];
    static const Py_ssize_t items[6] = {4, 8, 8, 4, 8, 8};
    if (!PyArg_ParseTuple(args, "OOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5])) return NULL;
    int got = 0;
    for (; got < 6; got++)
        if (get_typed(o[got], &b[got], items[got], "pairs")) break;
    PyObject *res = NULL;
    Event *ev = NULL, *tmp = NULL;
    if (got < 6) goto done;
    Py_ssize_t n[2] = {b[1].len / 8 - 1, b[4].len / 8 - 1};
    size_t ne = 0;
    for (int side = 0; side < 2; side++) {
        const int64_t *off = b[3 * side + 1].buf;
        Py_ssize_t nr = b[3 * side].len / 4;
        if (n[side] < 0 || b[3 * side + 2].len / 8 != n[side]) {
            PyErr_SetString(PyExc_ValueError, "pairs: one offset more than bases");
            goto done;
        }
        for (Py_ssize_t m = 0; m < n[side]; m++) {
            if (off[m] < 0 || off[m] > off[m + 1] || off[m + 1] > nr || ((const int64_t *)b[3 * side + 2].buf)[m] < 0) {
                PyErr_SetString(PyExc_ValueError, "pairs: offsets must rise within the runs, bases be >= 0");
                goto done;
            }
        }
        ne += (size_t)nr + 1;
    }
    ev = PyMem_RawMalloc(ne * sizeof(Event));
    tmp = PyMem_RawMalloc(ne * sizeof(Event));
    res = PyBytes_FromStringAndSize(NULL, (n[0] + 1) * (n[1] + 1) * 8);
    if (!ev || !tmp || !res) {
        Py_CLEAR(res);
        PyErr_NoMemory();
        goto done;
    }
    int64_t *table = (int64_t *)PyBytes_AS_STRING(res);
    int overlap = 0;
    Py_BEGIN_ALLOW_THREADS
    memset(table, 0, (size_t)((n[0] + 1) * (n[1] + 1) * 8));
    size_t k = side_events(ev, b[0].buf, b[1].buf, b[2].buf, n[0], 0);
    k += side_events(ev + k, b[3].buf, b[4].buf, b[5].buf, n[1], 1);
    Event *sorted = radix(ev, tmp, k);
    int64_t ct = 0, cp = 0, at = 0, ap = 0; /* the segments in force, and how many */
    for (size_t e = 0; e < k;) {
        uint64_t pos = sorted[e].pos;
        for (; e < k && sorted[e].pos == pos; e++) {
            ct += sorted[e].dt;
            cp += sorted[e].dp;
            at += (sorted[e].dt > 0) - (sorted[e].dt < 0);
            ap += (sorted[e].dp > 0) - (sorted[e].dp < 0);
        }
        if (at > 1 || ap > 1) {
            overlap = 1;
            break;
        }
        if (ap && e < k) table[ct * (n[1] + 1) + cp] += (int64_t)(sorted[e].pos - pos);
    }
    Py_END_ALLOW_THREADS
    if (overlap) Py_SETREF(res, Py_NewRef(Py_None));
done:
    PyMem_RawFree(ev);
    PyMem_RawFree(tmp);
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
    return res;
}

#endif
