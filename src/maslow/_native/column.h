/* column.h: Column, a growable buffer (json_scan.h's Buf) handed to Python without a copy.
 *
 * A Column owns a Buf's memory (PyMem_Raw or a mapping, json_scan.h) and exposes it through the buffer protocol:
 * np.frombuffer(column, dtype) wraps it, and the array keeps the column alive. Call PyType_Ready(&ColumnType)
 * once, in the module's init. column_empty: a fresh Column of n bytes (maslow._native.empty).
 */
#ifndef MASLOW_COLUMN_H
#define MASLOW_COLUMN_H

#include "json_scan.h"

/* A column handed to Python without a copy: owns a Buf's memory, exposes it through the buffer protocol
 * (np.frombuffer(column, dtype) wraps it; the array keeps the column alive). */
typedef struct {
    PyObject_HEAD
    Buf buf; /* its len is the column's */
} Column;

static char EMPTY[1];

static int column_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Column *c = (Column *)self;
    return PyBuffer_FillInfo(view, self, c->buf.data ? c->buf.data : EMPTY, c->buf.data ? (Py_ssize_t)c->buf.len : 0,
                             0, flags);
}

static void column_dealloc(PyObject *self) {
    buf_free(&((Column *)self)->buf);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs column_as_buffer = {column_getbuffer, NULL};

static PyTypeObject ColumnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "maslow._native.Column",
    .tp_basicsize = sizeof(Column),
    .tp_dealloc = column_dealloc,
    .tp_as_buffer = &column_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A parsed column (bytes-like, wrap with np.frombuffer).",
};

/* A new Column that takes over the buffer of `b` (no copy). */
static PyObject *take_column(Buf *b) {
    Column *c = PyObject_New(Column, &ColumnType);
    if (!c) return NULL;
    c->buf = *b;
    b->data = NULL;
    b->len = b->cap = 0;
    b->mapped = 0;
    return (PyObject *)c;
}

/* empty(nbytes) -> Column of nbytes, uninitialised: from BIG_BUF on, a 2 MiB-aligned mapping in huge pages (a
 * fault per 2 MiB when first written, not per 4 KiB) but for its tail past the last whole 2 MiB (4 KiB pages:
 * no memory mapped that the array doesn't hold), else PyMem_Raw memory. maslow._native.empty wraps it. */
static PyObject *column_empty(PyObject *self, PyObject *arg) {
    Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "empty: nbytes must be >= 0");
        return NULL;
    }
    Buf b = {0};
    if (n && buf_reserve(&b, (size_t)n) < 0) return PyErr_NoMemory();
    b.len = (size_t)n;
#if MAPPED_BUFS && defined(MADV_NOHUGEPAGE)
    if (b.mapped) { /* past the last whole 2 MiB page: 4 KiB pages, so that no page is mapped beyond n bytes */
        uintptr_t tail = ((uintptr_t)b.data + b.len) & ~(uintptr_t)(HUGE_PAGE - 1), end = (uintptr_t)b.data + b.cap;
        if (end > tail) (void)madvise((void *)tail, end - tail, MADV_NOHUGEPAGE);
    }
#endif
    PyObject *c = take_column(&b);
    if (!c) buf_free(&b);
    return c;
}

#endif /* MASLOW_COLUMN_H */
