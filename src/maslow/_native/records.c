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
 *   kp_len (int64 per record, -1 where absent), kp (float64 values);
 *   rle (int64 x 6 per RLE: record, h, w, kind 0 = counts string / 1 = run lengths, start, stop),
 *   rle_chars (the counts strings, unescaped, one after the other), rle_runs (int64 run lengths);
 *   rle_objects (a list: per RLE, the dict {"size": [h, w], "counts": bytes}, or None for run lengths);
 *   rle_box (float64 x 4 per RLE: pycocotools' toBbox [x, y, w, h] of a counts string, see coco_rle.h; NaN for
 *   run lengths and for the strings left to pycocotools);
 *   attrs (int64 x 3 per "attributes" object: record, start, end: where the object stands in the buffer, for
 *   the caller to parse; only validated here; null attributes: none);
 *   others (a list, per distinct key without a column, in order of appearance: (the key's JSON string, int64
 *   records that have it, the JSON array of its values), all Columns, for the caller to parse with orjson);
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
       K_SCORE, K_ATTRIBUTES, N_KEYS };
static const char *const KEY_NAMES[N_KEYS] = {"id", "image_id", "category_id", "bbox", "segmentation", "area",
                                              "iscrowd", "keypoints", "num_keypoints", "score",
                                              "attributes"};

/* ---- the parser state ----------------------------------------------------------------------------------- */
enum { C_ID, C_ID_OK, C_IMAGE_ID, C_IMAGE_ID_OK, C_CATEGORY_ID, C_CATEGORY_ID_OK, C_SCORE, C_AREA, C_ISCROWD,
       C_BBOX, C_BBOX_OK, C_RING_COUNT, C_RING_LEN, C_COORDS, C_KP_LEN, C_KP, C_RLE, C_RLE_CHARS, C_RLE_RUNS,
       C_RLE_BOX, C_ATTRS, C_IMAGE_ROW, C_LABEL_ROW, C_XYXY,
       N_COLS };
static const char *const COL_NAMES[N_COLS] = {
    "id", "id_ok", "image_id", "image_id_ok", "category_id", "category_id_ok", "score", "area", "iscrowd",
    "bbox", "bbox_ok", "ring_count", "ring_len", "coords", "kp_len", "kp", "rle", "rle_chars", "rle_runs",
    "rle_box", "attrs", "image_row", "label_row", "xyxy"};

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

/* ---- values of one record ------------------------------------------------------------------------------- */
typedef struct Record Record;
static int push_key(Parser *P, int key, const Record *r);

/* One record's values before they go to the columns (defaults: absent). */
struct Record {
    int64_t ids[3];
    uint8_t ids_ok[3];
    double score, area, bbox[4];
    uint8_t bbox_ok, crowd;
    int64_t rings, kp_len;
};

/* bbox: exactly 4 numbers. */
static int read_bbox(Parser *P, Record *r) {
    TRY(expect(&P->s, '['));
    for (int k = 0; k < 4; k++) {
        if (k) TRY(expect(&P->s, ','));
        TRY(read_double(&P->s, &r->bbox[k]));
    }
    TRY(expect(&P->s, ']'));
    r->bbox_ok = 1;
    return 0;
}

/* A flat list of numbers pushed to `out`; returns how many, or -1. */
static int64_t read_numbers(Parser *P, Buf *out) {
    int64_t count = 0;
    if (accept(&P->s, ']')) return 0;
    do {
        double d;
        TRY(read_double(&P->s, &d));
        OOM(&P->s, push_f64(out, d));
        count++;
    } while (accept(&P->s, ','));
    TRY(expect(&P->s, ']'));
    return count;
}

/* keypoints: a non-empty flat list of 3*K numbers. */
static int read_keypoints(Parser *P, Record *r) {
    TRY(expect(&P->s, '['));
    int64_t count = read_numbers(P, &P->col[C_KP]);
    if (count < 0) return -1;
    if (count == 0 || count % 3) BAIL(&P->s, "keypoints not 3*K numbers");
    r->kp_len = count;
    return 0;
}

/* Polygons: a list of rings, each a flat list of at least 6 numbers, even in count; [] is no polygon. */
static int read_polygons(Parser *P, Record *r) {
    if (accept(&P->s, ']')) return 0;
    do {
        TRY(expect(&P->s, '['));
        int64_t count = read_numbers(P, &P->col[C_COORDS]);
        if (count < 0) return -1;
        if (count < 6 || count % 2) BAIL(&P->s, "odd, short or empty polygon");
        OOM(&P->s, push_i64(&P->col[C_RING_LEN], count));
        r->rings++;
    } while (accept(&P->s, ','));
    return expect(&P->s, ']');
}

/* RLE counts as a list of run lengths (uncompressed, e.g. crowd regions): non-empty, integers >= 0. */
static int read_runs(Parser *P) {
    if (accept(&P->s, ']')) BAIL(&P->s, "empty RLE counts");
    do {
        int64_t v;
        TRY(read_int(&P->s, &v));
        if (v < 0) BAIL(&P->s, "negative RLE run");
        OOM(&P->s, push_i64(&P->col[C_RLE_RUNS], v));
    } while (accept(&P->s, ','));
    return expect(&P->s, ']');
}

/* An RLE object {"size": [h, w], "counts": "..." or [runs]} (no other key). */
static int read_rle(Parser *P, int64_t record) {
    int64_t meta[6] = {record, -1, -1, 0, 0, 0};
    int seen = 0;
    if (accept(&P->s, '}')) BAIL(&P->s, "empty RLE object");
    do {
        int k = read_key(P, rle_key);
        if (k < 0) return -1;
        if (seen & (1 << k)) BAIL(&P->s, "duplicate key");
        seen |= 1 << k;
        if (k == 0) {
            TRY(expect(&P->s, '['));
            TRY(read_int(&P->s, &meta[1]));
            TRY(expect(&P->s, ','));
            TRY(read_int(&P->s, &meta[2]));
            TRY(expect(&P->s, ']'));
            if (meta[1] < 0 || meta[2] < 0) BAIL(&P->s, "negative RLE size");
            continue;
        }
        skip_ws(&P->s);
        if (P->s.p < P->s.end && *P->s.p == '[') {
            P->s.p++;
            meta[3] = 1;
            meta[4] = (int64_t)(P->col[C_RLE_RUNS].len / sizeof(int64_t));
            TRY(read_runs(P));
            meta[5] = (int64_t)(P->col[C_RLE_RUNS].len / sizeof(int64_t));
        } else {
            meta[4] = (int64_t)P->col[C_RLE_CHARS].len;
            TRY(read_string(&P->s, &P->col[C_RLE_CHARS]));
            meta[5] = (int64_t)P->col[C_RLE_CHARS].len;
        }
    } while (accept(&P->s, ','));
    TRY(expect(&P->s, '}'));
    if (seen != 3) BAIL(&P->s, "RLE without size or counts");
    OOM(&P->s, buf_push(&P->col[C_RLE], meta, sizeof meta));
    double box[4] = {NAN, NAN, NAN, NAN}, got[4]; /* NaN: run lengths, or a string left to pycocotools */
    const Buf *chars = &P->col[C_RLE_CHARS];
    if (!meta[3] && meta[5] > meta[4]
        && rle_string_box((const unsigned char *)chars->data + meta[4], (size_t)(meta[5] - meta[4]), meta[1], meta[2],
                          got) == 0)
        memcpy(box, got, sizeof box);
    else if (!meta[3] && meta[5] == meta[4]) /* "": no run */
        memset(box, 0, sizeof box);
    OOM(&P->s, buf_push(&P->col[C_RLE_BOX], box, sizeof box));
    return 0;
}

static int read_segmentation(Parser *P, Record *r) {
    skip_ws(&P->s);
    if (P->s.p < P->s.end && *P->s.p == '[') {
        P->s.p++;
        return read_polygons(P, r);
    }
    TRY(expect(&P->s, '{'));
    return read_rle(P, P->n);
}

/* iscrowd: an integer (any value: truthiness) or true/false. */
static int read_crowd(Parser *P, Record *r) {
    skip_ws(&P->s);
    if (P->s.end - P->s.p >= 4 && memcmp(P->s.p, "true", 4) == 0) { P->s.p += 4; r->crowd = 1; return 0; }
    if (P->s.end - P->s.p >= 5 && memcmp(P->s.p, "false", 5) == 0) { P->s.p += 5; r->crowd = 0; return 0; }
    int64_t v;
    TRY(read_int(&P->s, &v));
    r->crowd = v != 0;
    return 0;
}

/* ---- attributes: validated and located, parsed by the caller (any JSON values) ---------------------------- */

/* "attributes": an object (located for the caller) or null (none); anything else is a finding: bail out. */
static int read_attributes(Parser *P) {
    skip_ws(&P->s);
    if (P->s.p < P->s.end && *P->s.p == 'n') return skip_literal(&P->s, "null", 4);
    if (P->s.p >= P->s.end || *P->s.p != '{') BAIL(&P->s, "attributes not an object");
    int64_t span[3] = {P->n, (int64_t)(P->s.p - P->s.base), 0};
    TRY(skip_value(&P->s, 0));
    span[2] = (int64_t)(P->s.p - P->s.base);
    OOM(&P->s, buf_push(&P->col[C_ATTRS], span, sizeof span));
    return 0;
}

/* A key that has no column here, at its opening quote: validated, and its value's text appended to the key's
 * list (in Other), for the caller to parse with orjson and check. */
static int read_other(Parser *P) {
    const unsigned char *name = P->s.p;
    TRY(skip_string(&P->s));
    size_t len = (size_t)(P->s.p - name);
    TRY(expect(&P->s, ':'));
    skip_ws(&P->s);
    const unsigned char *value = P->s.p;
    TRY(skip_value(&P->s, 0));
    Other *o = NULL;
    for (int k = 0; k < P->n_others && !o; k++)
        if (P->others[k].name.len == len && memcmp(P->others[k].name.data, name, len) == 0) o = &P->others[k];
    if (!o) {
        if (P->n_others == MAX_OTHERS) BAIL(&P->s, "too many distinct keys");
        o = &P->others[P->n_others++];
        o->last = -1;
        OOM(&P->s, buf_push(&o->name, name, len));
        OOM(&P->s, push_u8(&o->values, '['));
    }
    if (o->last == P->n) BAIL(&P->s, "duplicate key");
    if (o->last >= 0) OOM(&P->s, push_u8(&o->values, ','));
    o->last = P->n;
    OOM(&P->s, push_i64(&o->records, P->n));
    OOM(&P->s, buf_push(&o->values, value, (size_t)(P->s.p - value)));
    return 0;
}

static int read_value(Parser *P, int key, Record *r) {
    double ignored;
    switch (key) {
    case K_ID: case K_IMAGE_ID: case K_CATEGORY_ID:
        r->ids_ok[key] = 1;
        return read_int(&P->s, &r->ids[key]);
    case K_BBOX: return read_bbox(P, r);
    case K_SEGMENTATION: return read_segmentation(P, r);
    case K_AREA: return read_double(&P->s, &r->area);
    case K_ISCROWD: return read_crowd(P, r);
    case K_KEYPOINTS: return read_keypoints(P, r);
    case K_NUM_KEYPOINTS: return read_double(&P->s, &ignored); /* known to the Python path, not stored */
    case K_SCORE: return read_double(&P->s, &r->score);
    case K_ATTRIBUTES: return read_attributes(P);
    }
    BAIL(&P->s, "unknown key");
}

/* Per-record columns exist from the first record that has their key: a key absent from every record costs
 * nothing (the caller fills its default); the records before the first one get the default here. */
static int backfill(Parser *P, int key) {
    static const Record def = {{-1, -1, -1}, {0, 0, 0}, NAN, NAN, {NAN, NAN, NAN, NAN}, 0, 0, 0, -1};
    for (int64_t i = 0; i < P->n; i++) TRY(push_key(P, key, &def));
    return 0;
}

/* Room in the columns of `key` for the records still to come, guessed from the bytes per record so far (a
 * guess too large costs address space only: pages never written are never mapped). */
static int reserve_key(Parser *P, int key) {
    static const struct { int col; size_t width; } cols[N_KEYS][2] = {
        [K_ID] = {{C_ID, 8}, {C_ID_OK, 1}}, [K_IMAGE_ID] = {{C_IMAGE_ID, 8}, {C_IMAGE_ID_OK, 1}},
        [K_CATEGORY_ID] = {{C_CATEGORY_ID, 8}, {C_CATEGORY_ID_OK, 1}}, [K_BBOX] = {{C_BBOX, 32}, {C_BBOX_OK, 1}},
        [K_SEGMENTATION] = {{C_RING_COUNT, 8}}, [K_AREA] = {{C_AREA, 8}}, [K_ISCROWD] = {{C_ISCROWD, 1}},
        [K_KEYPOINTS] = {{C_KP_LEN, 8}}, [K_NUM_KEYPOINTS] = {{0, 0}}, [K_SCORE] = {{C_SCORE, 8}},
        [K_ATTRIBUTES] = {{0, 0}}};
    if (P->lookup && (key == K_IMAGE_ID || key == K_CATEGORY_ID)) return 0; /* no column (push_key) */
    size_t per_record = (size_t)(P->s.p - P->start) / (size_t)(P->n + 1) + 1;
    size_t records = (size_t)(P->s.end - P->s.p) / per_record * 9 / 8 + 16;
    for (int k = 0; k < 2; k++)
        if (cols[key][k].width && buf_reserve(&P->col[cols[key][k].col], cols[key][k].width * records) < 0)
            return -1;
    return 0;
}

/* Push the row of `r` to the columns of key. */
static int push_key(Parser *P, int key, const Record *r) {
    static const int id_cols[3][2] = {{C_ID, C_ID_OK}, {C_IMAGE_ID, C_IMAGE_ID_OK}, {C_CATEGORY_ID, C_CATEGORY_ID_OK}};
    switch (key) {
    case K_ID: case K_IMAGE_ID: case K_CATEGORY_ID:
        if (P->lookup && key != K_ID) break; /* rows instead (rows_and_box) */
        OOM(&P->s, push_i64(&P->col[id_cols[key][0]], r->ids[key]));
        OOM(&P->s, push_u8(&P->col[id_cols[key][1]], r->ids_ok[key]));
        break;
    case K_SCORE: OOM(&P->s, push_f64(&P->col[C_SCORE], r->score)); break;
    case K_AREA: OOM(&P->s, push_f64(&P->col[C_AREA], r->area)); break;
    case K_ISCROWD: OOM(&P->s, push_u8(&P->col[C_ISCROWD], r->crowd)); break;
    case K_BBOX:
        for (int k = 0; k < 4; k++) OOM(&P->s, push_f64(&P->col[C_BBOX], r->bbox[k]));
        OOM(&P->s, push_u8(&P->col[C_BBOX_OK], r->bbox_ok));
        break;
    case K_SEGMENTATION: OOM(&P->s, push_i64(&P->col[C_RING_COUNT], r->rings)); break;
    case K_KEYPOINTS: OOM(&P->s, push_i64(&P->col[C_KP_LEN], r->kp_len)); break;
    }
    return 0;
}

/* Push one record's row to the columns of every key seen so far (`seen`: the keys of this record). */
static int push_record(Parser *P, const Record *r, unsigned seen) {
    unsigned fresh = seen & ~P->keys;
    for (int k = 0; fresh >> k; k++)
        if (fresh >> k & 1) {
            OOM(&P->s, reserve_key(P, k));
            TRY(backfill(P, k));
        }
    P->keys |= seen;
    for (int k = 0; P->keys >> k; k++)
        if (P->keys >> k & 1) TRY(push_key(P, k, r));
    return 0;
}

/* Row of an id in `m`; -1 where the id is missing (ok == 0) or has no row. */
static inline int64_t row_of(IdMap *m, int64_t id, int ok) {
    if (!ok) return -1;
    if (id == m->last_id && m->last_row >= 0) return m->last_row;
    int64_t row = -1;
    if (!m->keys) {
        uint64_t at = (uint64_t)id - (uint64_t)m->lo; /* wraps around for ids below lo: then at >= n */
        row = at < m->n ? m->rows[at] : -1;
    } else {
        size_t lo = 0, hi = m->n; /* the first key >= id */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (m->keys[mid] < id) lo = mid + 1;
            else hi = mid;
        }
        row = lo < m->n && m->keys[lo] == id ? m->rows[lo] : -1;
    }
    m->last_id = id;
    m->last_row = row;
    return row;
}

/* With the truth's tables: the record's image and label rows, and (when it has a bbox) its xyxy box (x + w,
 * y + h: what the Python path computes), counting in `misses` the records without an image or label row, in
 * `box_odd` the boxes the Python path reports (not finite, negative width or height, x + w overflowing), in
 * `looks_xyxy` those that look written as xyxy (coco._boxes; the first: `first_xyxy`), in `sized` the plain
 * boxes in images of known size, and in `inexact` those whose x2 - x1 or y2 - y1 differs from the width or
 * height as read. Where no record misses and no box is odd (the usual case) the caller takes these columns as
 * they are; otherwise it recomputes everything from the ids and boxes as read. */
static int rows_and_box(Parser *P, const Record *r, unsigned seen) {
    Lookup *L = P->lookup;
    if (P->n == 0) { /* room for every record, guessed from the first one's bytes (see reserve_key) */
        size_t records = (size_t)(P->s.end - P->start) / ((size_t)(P->s.p - P->start) + 1) * 9 / 8 + 16;
        OOM(&P->s, buf_reserve(&P->col[C_IMAGE_ROW], 8 * records));
        OOM(&P->s, buf_reserve(&P->col[C_LABEL_ROW], 8 * records));
        if (seen & (1u << K_BBOX)) OOM(&P->s, buf_reserve(&P->col[C_XYXY], 32 * records));
    }
    int64_t image = row_of(&L->image, r->ids[K_IMAGE_ID], r->ids_ok[K_IMAGE_ID]);
    int64_t label = row_of(&L->label, r->ids[K_CATEGORY_ID], r->ids_ok[K_CATEGORY_ID]);
    if (image >= L->n_images) BAIL(&P->s, "image row out of the table"); /* a caller's bug: never trust it */
    if (image < 0 || label < 0) P->misses++;
    OOM(&P->s, push_i64(&P->col[C_IMAGE_ROW], image));
    OOM(&P->s, push_i64(&P->col[C_LABEL_ROW], label));
    if (!(seen & (1u << K_BBOX))) return 0;
    const double *b = r->bbox;
    double box[4] = {b[0], b[1], b[0] + b[2], b[1] + b[3]};
    OOM(&P->s, buf_push(&P->col[C_XYXY], box, sizeof box));
    int plain = image >= 0 && isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3]) && b[2] >= 0
                && b[3] >= 0 && isfinite(box[2]) && isfinite(box[3]);
    P->box_odd += !plain;
    if (plain) { /* coco._boxes' test for boxes written as xyxy: beyond the image while width and height fit */
        double w = L->widths[image], h = L->heights[image];
        int like = (box[2] > w + 1.0 || box[3] > h + 1.0) && w > 0 && h > 0 && b[2] <= w && b[3] <= h
                   && b[2] > b[0] && b[3] > b[1];
        if (like && !P->looks_xyxy++) P->first_xyxy = P->n;
        P->sized += w > 0 && h > 0;
    }
    P->inexact += box[2] - box[0] != b[2] || box[3] - box[1] != b[3];
    return 0;
}

/* Give back the whole pages before the cursor (a read-only file mapping: they stay in the page cache, and a
 * later read of them maps them again), so the file adds `release` bytes to the resident set, not its size. */
static void release_consumed(Parser *P) {
    uintptr_t to = (uintptr_t)P->s.p & ~(P->page - 1);
    if (to > (uintptr_t)P->released) {
        (void)madvise((void *)P->released, to - (uintptr_t)P->released, MADV_DONTNEED); /* best effort */
        P->released = (const unsigned char *)to;
    }
}

/* One annotation object, after its '{'. */
static int read_record(Parser *P) {
    Record r = {{-1, -1, -1}, {0, 0, 0}, NAN, NAN, {NAN, NAN, NAN, NAN}, 0, 0, 0, -1};
    unsigned seen = 0;
    if (!accept(&P->s, '}')) {
        do {
            int key = read_record_key(P);
            if (key < 0) return -1;
            if (key == N_KEYS) {
                TRY(read_other(P));
                continue; /* to the ',' test */
            }
            if (seen & (1u << key)) BAIL(&P->s, "duplicate key");
            seen |= 1u << key;
            TRY(read_value(P, key, &r));
        } while (accept(&P->s, ','));
        TRY(expect(&P->s, '}'));
    }
    if (!(seen & (1u << K_BBOX)) && !P->bbox_optional) BAIL(&P->s, "record without bbox");
    TRY(push_record(P, &r, seen));
    if (P->lookup) TRY(rows_and_box(P, &r, seen));
    P->n++;
    return 0;
}

/* The array: '[' (after whitespace), objects separated by ',', ']'. */
static int read_array(Parser *P) {
    TRY(expect(&P->s, '['));
    if (accept(&P->s, ']')) return 0;
    do {
        TRY(expect(&P->s, '{'));
        TRY(read_record(P));
        if (P->release && (size_t)(P->s.p - P->released) >= P->release) release_consumed(P);
    } while (accept(&P->s, ','));
    return expect(&P->s, ']');
}

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
"may lack a bbox (results); otherwise such a record makes it bail out.\n"
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
