/* buffers.h: numpy arrays into the C kernels through the buffer protocol (header-only: static functions), for
 * cocoeval.c and rle.c. Define BUF_OWNER (the module's name, for error messages) before including it.
 *
 * get_buf: a C-contiguous buffer of int64 ('q'/'l'), int32 ('i'/'l'), int16 ('h'), uint32 ('I'/'L'), float64
 * ('d') or one-byte bools/uint8 ('?'/'B'/'b'), checked by item size and format (TypeError naming the argument);
 * get_bufs: several at once, writable from an index on, all released on an error; release_all.
 */
#ifndef MASLOW_BUFFERS_H
#define MASLOW_BUFFERS_H

#include <Python.h>
#include <limits.h>

enum kind { K_I64, K_I32, K_I16, K_U32, K_F64, K_U8 };
static const char *kind_names[] = {"int64", "int32", "int16", "uint32", "float64", "uint8/bool"};

static int get_buf(PyObject *obj, Py_buffer *view, enum kind kind, int writable, const char *name, Py_ssize_t *n) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int ok = f[0] && f[1] == 0;
    if (kind == K_I64) ok = ok && view->itemsize == 8 && (f[0] == 'q' || f[0] == 'l');
    if (kind == K_I32) ok = ok && view->itemsize == 4 && (f[0] == 'i' || f[0] == 'l');
    if (kind == K_I16) ok = ok && view->itemsize == 2 && f[0] == 'h';
    if (kind == K_U32) ok = ok && view->itemsize == 4 && (f[0] == 'I' || f[0] == 'L');
    if (kind == K_F64) ok = ok && view->itemsize == 8 && f[0] == 'd';
    if (kind == K_U8) ok = ok && view->itemsize == 1 && (f[0] == 'B' || f[0] == '?' || f[0] == 'b');
    if (!ok) {
        PyErr_Format(PyExc_TypeError, BUF_OWNER ": %s must be a C-contiguous %s array, got format '%s' itemsize %zd",
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

/* The `count` arguments o[i] as buffers of kinds[i] into v[i] (n[i] items), writable from index `first_out` on;
 * -1 on an error, with the buffers taken so far released. */
static int get_bufs(PyObject *const *o, Py_buffer *v, Py_ssize_t *n, const enum kind *kinds,
                    const char *const *names, int count, int first_out) {
    for (int i = 0; i < count; i++) {
        if (get_buf(o[i], &v[i], kinds[i], i >= first_out, names[i], &n[i]) < 0) {
            release_all(v, i);
            return -1;
        }
    }
    return 0;
}

/* The arguments of an entry point taking `count` arrays then two ints (as "O" * count + "ii" would parse them): the
 * arrays into v / n as get_bufs takes them, the ints into i0, i1; -1 on an error (nothing left held). */
static int get_arrays_ii(PyObject *args, Py_buffer *v, Py_ssize_t *n, const enum kind *kinds,
                         const char *const *names, int count, int first_out, int *i0, int *i1) {
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != count + 2) {
        PyErr_Format(PyExc_TypeError, "%s: %d arguments expected", BUF_OWNER, count + 2);
        return -1;
    }
    long ints[2];
    for (int k = 0; k < 2; k++) {
        ints[k] = PyLong_AsLong(PyTuple_GET_ITEM(args, count + k));
        if (ints[k] == -1 && PyErr_Occurred()) return -1;
        if (ints[k] < INT_MIN || ints[k] > INT_MAX) {
            PyErr_Format(PyExc_OverflowError, "%s: integer argument out of range", BUF_OWNER);
            return -1;
        }
    }
    *i0 = (int)ints[0], *i1 = (int)ints[1];
    return get_bufs(&PyTuple_GET_ITEM(args, 0), v, n, kinds, names, count, first_out);
}

#endif
