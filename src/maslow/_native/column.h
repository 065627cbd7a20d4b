/* column.h: Column, a growable buffer (json_scan.h's Buf) handed to Python without a copy.
 *
 * A Column owns a Buf's memory (PyMem_Raw or a mapping, json_scan.h) and exposes it through the buffer protocol:
 * np.frombuffer(column, dtype) wraps it, and the array keeps the column alive. Call PyType_Ready(&ColumnType)
 * once, in the module's init.
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

#endif /* MASLOW_COLUMN_H */
