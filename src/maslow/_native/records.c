/* maslow._native.records: a JSON array of COCO annotation/result objects, straight to columns.
 *
 * parse(buffer, start, end, bbox_optional) scans buffer[start:end], which must begin (after whitespace) with
 * the '[' of an array of annotation objects, and returns a dict of columns (Columns, column.h: bytes-like buffers
 * handed over without a copy, which numpy wraps with np.frombuffer), or a str saying why it bailed out. It bails
 * out on anything the Python reader (maslow.io._coco_columns.AnnColumns.add) would treat in any other way than
 * plainly storing a value: null, a wrong type, a value the Python path reports as a finding, non-ASCII RLE
 * counts, a key twice in a record, malformed JSON. The caller then parses the whole file with the Python path,
 * which gives every finding and message. Keys without a column here are located for the caller (`others`).
 *
 * Columns (n records; "ok" columns are uint8 presence flags):
 *   id, image_id, category_id (int64, -1 where absent) + id_ok, image_id_ok, category_id_ok;
 *   score, area (float64, NaN where absent); iscrowd (uint8); bbox (n, 4 float64 xywh, NaN rows where absent)
 *   + bbox_ok; ring_count (int64 per record), ring_len (int64 per ring), coords (float64 x, y, ...);
 *   kp_len (int64 per record, -1 where absent), kp (float64 values), kp_box (float64 x 4 per record with
 *   keypoints: min x, min y, max x, max y of its keypoints, labelled or not; inf where an extent is a 0 of
 *   either sign, see read_keypoints);
 *   rle (int64 x 6 per RLE: record, h, w, kind 0 = counts string / 1 = run lengths, start, stop),
 *   rle_chars (the counts strings, unescaped, one after the other), rle_runs (int64 run lengths);
 *   rle_objects (a list: per RLE, the dict {"size": [h, w], "counts": bytes}, or None for run lengths);
 *   rle_box (float64 x 4 per RLE: pycocotools' toBbox [x, y, w, h] of a counts string, see coco_rle.h; NaN for
 *   run lengths, for the strings left to pycocotools and for strings whose runs don't sum to h * w);
 *   attrs (int64 x 3 per "attributes" object: record, start, end: where the object stands in the buffer, for
 *   the caller to parse; only validated here; null attributes: none);
 *   others (a list, per distinct key without a column, in order of appearance: (the key's JSON string, int64
 *   records that have it, the JSON array of its values), all Columns, for the caller to parse with orjson);
 *   obb, rbox (n, 5 float64: [cx, cy, w, h, angle]) and poly (n, 8 float64: the corners), NaN rows where absent:
 *   oriented boxes, each a list of exactly so many numbers with w, h >= 0; any other value (null, a wrong length,
 *   a negative size), and any value of a record with a segmentation (a ring or an RLE: kept as read, see
 *   maslow.io._coco_obb), goes to `others` instead. A record of an annotations file may lack a bbox where it has
 *   such a box;
 *   keys: bitmask of the keys that occurred (bit order = KEY_NAMES, the module's KEYS); n; end: offset just
 *   past the ']'.
 * Given the truth's tables (lookup=, results): image_row, label_row (int64 per record, -1: none) and xyxy (n, 4
 * float64, when every record has a bbox) instead of image_id and category_id (left empty, with their _ok
 * columns), and the counts misses, box_odd, looks_xyxy, first_xyxy, sized, inexact (see rows_and_box).
 * release= (a read-only file mapping only): the pages of the buffer already consumed are given back as the scan
 * goes (madvise), so a file of hundreds of MB adds a few MB to the resident set.
 * A per-record column is empty when its key occurred in no record (the caller makes the default column).
 * Numbers are what json/orjson give, bit for bit (json_scan.h). The scan runs without the GIL (no Python
 * objects; memory from PyMem_Raw*); every read is bounds checked against `end`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "json_scan.h" /* Buf, Scanner, numbers, strings, skip_value */
#include "column.h"    /* Column: a Buf handed to Python without a copy */
#include "coco_rle.h"  /* rle_string_box (pycocotools' toBbox of a counts string), rle_objects */

#include <sys/mman.h> /* madvise */
#include <unistd.h>   /* sysconf */

/* ---- keys ----------------------------------------------------------------------------------------------- */
enum { K_ID, K_IMAGE_ID, K_CATEGORY_ID, K_BBOX, K_SEGMENTATION, K_AREA, K_ISCROWD, K_KEYPOINTS, K_NUM_KEYPOINTS,
       K_SCORE, K_ATTRIBUTES, K_OBB, K_RBOX, K_POLY, N_KEYS };
static const char *const KEY_NAMES[N_KEYS] = {"id", "image_id", "category_id", "bbox", "segmentation", "area",
                                              "iscrowd", "keypoints", "num_keypoints", "score",
                                              "attributes", "obb", "rbox", "poly"};
/* The oriented-box keys (K_OBB, K_RBOX, K_POLY, in that order) and the numbers each holds. */
enum { N_ORIENTED = 3 };
static const int ORIENTED_LEN[N_ORIENTED] = {5, 5, 8};

/* ---- the parser state ----------------------------------------------------------------------------------- */
enum { C_ID, C_ID_OK, C_IMAGE_ID, C_IMAGE_ID_OK, C_CATEGORY_ID, C_CATEGORY_ID_OK, C_SCORE, C_AREA, C_ISCROWD,
       C_BBOX, C_BBOX_OK, C_RING_COUNT, C_RING_LEN, C_COORDS, C_KP_LEN, C_KP, C_KP_BOX, C_RLE, C_RLE_CHARS,
       C_RLE_RUNS, C_RLE_BOX, C_ATTRS, C_IMAGE_ROW, C_LABEL_ROW, C_XYXY, C_OBB, C_RBOX, C_POLY,
       N_COLS };
static const char *const COL_NAMES[N_COLS] = {
    "id", "id_ok", "image_id", "image_id_ok", "category_id", "category_id_ok", "score", "area", "iscrowd",
    "bbox", "bbox_ok", "ring_count", "ring_len", "coords", "kp_len", "kp", "kp_box", "rle", "rle_chars",
    "rle_runs", "rle_box", "attrs", "image_row", "label_row", "xyxy", "obb", "rbox", "poly"};

/* A key without a column here ("ignore", LVIS-style extras, annotator, source, ...), as spelled in the file. */
enum { MAX_OTHERS = 32 }; /* distinct such keys in a file; more bail out */
typedef struct {
    Buf name;     /* the key's JSON string, quotes included */
    Buf records;  /* int64 per occurrence: the record */
    Buf values;   /* the values' JSON texts: "[v0,v1,...]" (the ']' added at the end) */
    int64_t last; /* the last record that had the key (twice in one record: bail out) */
} Other;

/* An id -> row map of the truth (results): sorted distinct `keys` and their `rows`, or (keys NULL) a dense table
 * rows[id - lo] (-1: no row). The last id found is remembered (results list an image's predictions together). */
typedef struct {
    const int64_t *keys, *rows;
    size_t n;
    int64_t lo, last_id, last_row;
} IdMap;

/* The truth's tables, when given: image and category ids -> rows, and each image's size. */
typedef struct {
    IdMap image, label;
    const double *widths, *heights; /* per image row */
    int64_t n_images;
} Lookup;

typedef struct {
    Scanner s;                           /* the buffer and the cursor (json_scan.h) */
    Lookup *lookup;                      /* NULL: no rows or boxes here (the caller maps the ids) */
    int64_t misses, box_odd, looks_xyxy, first_xyxy, sized, inexact; /* with lookup: see rows_and_box */
    size_t release;                      /* > 0: give back the pages consumed, every `release` bytes */
    uintptr_t page;                      /* the page size */
    const unsigned char *released;       /* the pages before it are given back */
    const unsigned char *start;          /* where the array starts */
    int bbox_optional;                   /* results: a record may lack a bbox */
    unsigned keys;                       /* keys seen in any record */
    int64_t n;                           /* records parsed */
    double oriented[N_ORIENTED][8];      /* the record's obb, rbox, poly as read (Record.oriented: which) */
    const unsigned char *oriented_at[N_ORIENTED][2]; /* and where their texts start and end */
    Buf col[N_COLS];
    Other others[MAX_OTHERS];
    int n_others;
} Parser;

/* ---- record keys ---------------------------------------------------------------------------------------- */
/* The key of an annotation record (KEY_NAMES) and its ':', matched in place with its closing quote (no scan
 * for the quote: keys are most of a record's bytes). Any other key (or a known one spelled with escapes):
 * N_KEYS, the cursor left on its opening quote. */
static int read_record_key(Parser *P) {
    TRY(expect(&P->s, '"'));
    const unsigned char *s = P->s.p;
    size_t avail = (size_t)(P->s.end - s);
#define KEY(lit, k) \
    if (avail >= sizeof lit && memcmp(s, lit "\"", sizeof lit) == 0) { P->s.p = s + sizeof lit; key = k; break; }
    int key = -1;
    switch (avail ? *s : 0) {
    case 'i': KEY("image_id", K_IMAGE_ID) KEY("id", K_ID) KEY("iscrowd", K_ISCROWD) break;
    case 'a': KEY("area", K_AREA) KEY("attributes", K_ATTRIBUTES) break;
    case 'c': KEY("category_id", K_CATEGORY_ID) break;
    case 'b': KEY("bbox", K_BBOX) break;
    case 's': KEY("score", K_SCORE) KEY("segmentation", K_SEGMENTATION) break;
    case 'k': KEY("keypoints", K_KEYPOINTS) break;
    case 'n': KEY("num_keypoints", K_NUM_KEYPOINTS) break;
    case 'o': KEY("obb", K_OBB) break;
    case 'r': KEY("rbox", K_RBOX) break;
    case 'p': KEY("poly", K_POLY) break;
    }
#undef KEY
    if (key < 0) { /* another key: the caller locates it and its value (read_other) */
        P->s.p = s - 1;
        return N_KEYS;
    }
    TRY(expect(&P->s, ':'));
    return key;
}

/* The key of an RLE object: 0 size, 1 counts, -1 other. */
static int rle_key(const unsigned char *s, size_t len) {
#define IS(name) (memcmp(s, name, sizeof name - 1) == 0)
    if (len == 4) return IS("size") ? 0 : -1;
    if (len == 6) return IS("counts") ? 1 : -1;
    return -1;
#undef IS
}

/* An object key and its ':': a plain string (no escapes) that `match` knows; -1 (bail out) otherwise. */
static int read_key(Parser *P, int (*match)(const unsigned char *, size_t)) {
    TRY(expect(&P->s, '"'));
    const unsigned char *s = P->s.p;
    while (P->s.p < P->s.end && *P->s.p != '"' && *P->s.p != '\\') P->s.p++;
    if (P->s.p >= P->s.end || *P->s.p != '"') BAIL(&P->s, "unknown key");
    int k = match(s, (size_t)(P->s.p - s));
    P->s.p++;
    if (k < 0) BAIL(&P->s, "unknown key");
    TRY(expect(&P->s, ':'));
    return k;
}

#include "coco_record.h" /* Record, read_value, rows_and_box, read_array: the walk over the records */

/* ---- the Python function -------------------------------------------------------------------------------- */
static void free_cols(Parser *P) {
    for (int k = 0; k < N_COLS; k++) {
        buf_free(&P->col[k]);
    }
    for (int k = 0; k < P->n_others; k++) {
        Other *o = &P->others[k];
        buf_free(&o->name);
        buf_free(&o->records);
        buf_free(&o->values);
    }
}

/* The keys without a column, in order of appearance: a list of (key's JSON string, int64 records, values' JSON
 * array) Columns. */
static PyObject *other_keys(Parser *P) {
    PyObject *list = PyList_New(P->n_others);
    if (!list) return NULL;
    for (int k = 0; k < P->n_others; k++) {
        Other *o = &P->others[k];
        if (push_u8(&o->values, ']') < 0) {
            Py_DECREF(list);
            return PyErr_NoMemory();
        }
        PyObject *item = Py_BuildValue("(NNN)", take_column(&o->name), take_column(&o->records),
                                       take_column(&o->values)); /* N: a NULL argument fails the whole call */
        if (!item) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, k, item);
    }
    return list;
}

/* The result dict; each column's buffer moves into a Column (no copy). */
static PyObject *build_result(Parser *P, Py_ssize_t end) {
    PyObject *out = PyDict_New();
    if (!out) return NULL;
    PyObject *rles = rle_objects(&P->col[C_RLE], &P->col[C_RLE_CHARS]);
    if (!rles || PyDict_SetItemString(out, "rle_objects", rles) < 0) {
        Py_XDECREF(rles);
        Py_DECREF(out);
        return NULL;
    }
    Py_DECREF(rles);
    for (int k = 0; k < N_COLS; k++) {
        buf_trim(&P->col[k]);
        PyObject *c = take_column(&P->col[k]);
        int bad = !c || PyDict_SetItemString(out, COL_NAMES[k], c) < 0;
        Py_XDECREF(c);
        if (bad) {
            Py_DECREF(out);
            return NULL;
        }
    }
    PyObject *others = other_keys(P);
    int bad_others = !others || PyDict_SetItemString(out, "others", others) < 0;
    Py_XDECREF(others);
    if (bad_others) {
        Py_DECREF(out);
        return NULL;
    }
    PyObject *n = PyLong_FromLongLong(P->n), *e = PyLong_FromSsize_t(end), *keys = PyLong_FromUnsignedLong(P->keys);
    int bad = !n || !e || !keys || PyDict_SetItemString(out, "n", n) < 0 || PyDict_SetItemString(out, "end", e) < 0
              || PyDict_SetItemString(out, "keys", keys) < 0;
    Py_XDECREF(n);
    Py_XDECREF(e);
    Py_XDECREF(keys);
    if (bad) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

PyDoc_STRVAR(parse_doc,
"parse(buffer, start, end, bbox_optional, *, lookup=None, release=0) -> dict | str\n\n"
"Columns of the JSON array of annotation objects at buffer[start:end] (the array's '[' at start, after\n"
"whitespace), or a str saying why the Python path must read the file instead. bbox_optional: a record\n"
"may lack a bbox (results); otherwise such a record makes it bail out, unless it has an oriented box.\n"
"lookup: (image_keys, image_rows, image_lo, label_keys, label_rows, label_lo, widths, heights): per id map,\n"
"int64 sorted distinct keys and their rows, or keys None and a dense table rows[id - lo] (-1: none); float64\n"
"image sizes per row. Then the columns image_row, label_row, xyxy and the counts misses,\n"
"box_odd, looks_xyxy, first_xyxy, sized, inexact are filled (see rows_and_box), and image_id, category_id\n"
"and their _ok columns left empty (a caller that needs them, where some record misses, parses again).\n"
"release: > 0 only for a read-only file mapping (an mmap.mmap; ignored for other buffers): the pages consumed\n"
"are given back every `release` bytes.");

enum { N_TABLES = 6 }; /* image keys, image rows, label keys, label rows, widths, heights */

/* The buffers of `lookup` (see parse_doc), checked; on success the caller releases views[k] where used[k]. */
static int get_lookup(PyObject *lookup, Lookup *L, Py_buffer views[N_TABLES], int used[N_TABLES]) {
    PyObject *t[N_TABLES];
    long long lo[2];
    if (!PyArg_ParseTuple(lookup, "OOLOOLOO", &t[0], &t[1], &lo[0], &t[2], &t[3], &lo[1], &t[4], &t[5])) return -1;
    int ok = 1;
    for (int k = 0; k < N_TABLES; k++) {
        used[k] = t[k] != Py_None && ok;
        if (used[k] && PyObject_GetBuffer(t[k], &views[k], PyBUF_C_CONTIGUOUS) < 0) used[k] = ok = 0;
        else if (t[k] == Py_None && k != 0 && k != 2) ok = 0; /* only the keys may be None */
        else if (used[k] && views[k].len % 8) ok = 0;
    }
    ok = ok && (!used[0] || views[0].len == views[1].len) && (!used[2] || views[2].len == views[3].len)
         && views[4].len == views[5].len;
    if (!ok) {
        for (int k = 0; k < N_TABLES; k++)
            if (used[k]) PyBuffer_Release(&views[k]);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "lookup: tables of 8-byte items, keys and rows alike");
        return -1;
    }
    IdMap *maps[2] = {&L->image, &L->label};
    for (int m = 0; m < 2; m++) {
        maps[m]->keys = used[2 * m] ? views[2 * m].buf : NULL;
        maps[m]->rows = views[2 * m + 1].buf;
        maps[m]->n = (size_t)views[2 * m + 1].len / 8;
        maps[m]->lo = lo[m];
        maps[m]->last_row = -1;
    }
    L->widths = views[4].buf;
    L->heights = views[5].buf;
    L->n_images = (int64_t)(views[4].len / 8);
    return 0;
}

static PyObject *set_count(PyObject *out, const char *name, int64_t v) {
    PyObject *o = PyLong_FromLongLong(v);
    int bad = !o || PyDict_SetItemString(out, name, o) < 0;
    Py_XDECREF(o);
    if (bad) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *py_parse(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"buffer", "start", "end", "bbox_optional", "lookup", "release", NULL};
    PyObject *obj, *lookup = Py_None;
    Py_ssize_t start, end, release = 0;
    int bbox_optional;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Onnp|$On", kwlist, &obj, &start, &end, &bbox_optional, &lookup,
                                     &release))
        return NULL;
    Lookup L;
    Py_buffer tables[N_TABLES];
    int used[N_TABLES] = {0};
    if (lookup != Py_None && get_lookup(lookup, &L, tables, used) < 0) return NULL;
    Py_buffer view;
    int bad_range = 0;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) == 0) {
        bad_range = start < 0 || end > view.len || start > end || release < 0;
        if (bad_range) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "start/end out of the buffer, or release < 0");
        }
    } else {
        bad_range = 1;
    }
    if (bad_range) {
        for (int k = 0; k < N_TABLES; k++)
            if (used[k]) PyBuffer_Release(&tables[k]);
        return NULL;
    }
    Parser P;
    memset(&P, 0, sizeof P);
    P.s.base = view.buf;
    P.s.p = P.s.base + start;
    P.s.end = P.s.base + end;
    P.start = P.s.p;
    P.bbox_optional = bbox_optional;
    P.lookup = lookup != Py_None ? &L : NULL;
    long page = sysconf(_SC_PAGESIZE);
    P.page = page > 0 ? (uintptr_t)page : 4096;
    /* only a mmap.mmap (the caller's word that it maps a file read-only): anonymous memory would read back zeros */
    int mapping = strcmp(Py_TYPE(obj)->tp_name, "mmap.mmap") == 0;
    if (mapping && (P.page & (P.page - 1)) == 0) { /* the first page boundary at or after the buffer's start */
        P.released = (const unsigned char *)(((uintptr_t)P.s.base + P.page - 1) & ~(P.page - 1));
        P.release = (size_t)release;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    P.s.c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    rc = read_array(&P);
    if (P.s.c_locale != (locale_t)0) freelocale(P.s.c_locale);
    Py_END_ALLOW_THREADS
    Py_ssize_t stop = (Py_ssize_t)(P.s.p - P.s.base);
    PyBuffer_Release(&view);
    for (int k = 0; k < N_TABLES; k++)
        if (used[k]) PyBuffer_Release(&tables[k]);
    if (rc < 0) {
        free_cols(&P);
        return PyUnicode_FromString(P.s.why ? P.s.why : "bail out");
    }
    PyObject *out = build_result(&P, stop);
    free_cols(&P);
    if (out && P.lookup) {
        out = set_count(out, "misses", P.misses);
        if (out) out = set_count(out, "box_odd", P.box_odd);
        if (out) out = set_count(out, "looks_xyxy", P.looks_xyxy);
        if (out) out = set_count(out, "first_xyxy", P.looks_xyxy ? P.first_xyxy : -1);
        if (out) out = set_count(out, "sized", P.sized);
        if (out) out = set_count(out, "inexact", P.inexact);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"parse", (PyCFunction)(void (*)(void))py_parse, METH_VARARGS | METH_KEYWORDS, parse_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "records",
                                    "COCO annotation records (a JSON array of objects) to columns.", -1, methods};

PyMODINIT_FUNC PyInit_records(void) {
    if (PyType_Ready(&ColumnType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *names = PyTuple_New(N_KEYS);
    if (!names) {
        Py_DECREF(m);
        return NULL;
    }
    for (int k = 0; k < N_KEYS; k++) {
        PyObject *name = PyUnicode_FromString(KEY_NAMES[k]);
        if (!name) {
            Py_DECREF(names);
            Py_DECREF(m);
            return NULL;
        }
        PyTuple_SET_ITEM(names, k, name);
    }
    if (PyModule_AddObject(m, "KEYS", names) < 0) {
        Py_DECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
