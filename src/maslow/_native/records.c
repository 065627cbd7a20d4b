/* maslow._native.records: a JSON array of COCO annotation/result objects, straight to columns.
 *
 * parse(buffer, start, end, bbox_optional) scans buffer[start:end], which must begin (after whitespace) with
 * the '[' of an array of annotation objects, and returns a dict of columns (Column objects: bytes-like buffers
 * handed over without a copy, which numpy wraps with np.frombuffer), or a str saying why it bailed out. It bails out on anything the Python reader
 * (maslow.io._coco_columns.AnnColumns.add) would treat in any other way than plainly storing a value: an
 * unknown key, null, a wrong type, a value the Python path reports as a finding, non-ASCII text, malformed
 * JSON. The caller then parses the whole file with the Python path, which gives every finding and message.
 *
 * Columns (n records; "ok" columns are uint8 presence flags):
 *   id, image_id, category_id (int64, -1 where absent) + id_ok, image_id_ok, category_id_ok;
 *   score, area (float64, NaN where absent); iscrowd (uint8); bbox (n, 4 float64 xywh, NaN rows where absent)
 *   + bbox_ok; ring_count (int64 per record), ring_len (int64 per ring), coords (float64 x, y, ...);
 *   kp_len (int64 per record, -1 where absent), kp (float64 values);
 *   rle (int64 x 6 per RLE: record, h, w, kind 0 = counts string / 1 = run lengths, start, stop),
 *   rle_chars (the counts strings, unescaped, one after the other), rle_runs (int64 run lengths);
 *   rle_objects (a list: per RLE, the dict {"size": [h, w], "counts": bytes}, or None for run lengths);
 *   attrs (int64 x 3 per "attributes" object: record, start, end: where the object stands in the buffer, for
 *   the caller to parse; only validated here; null attributes: none);
 *   keys: bitmask of the keys that occurred (bit order = KEY_NAMES, the module's KEYS); n; end: offset just
 *   past the ']'.
 * A per-record column is empty when its key occurred in no record (the caller makes the default column).
 *
 * Numbers equal what json/orjson give, bit for bit: integers are exact int64 (beyond int64: bail out); other
 * numbers use Clinger's exact fast path (<= 19 digits with value < 2^53, |exponent| <= 22) and glibc's
 * correctly rounded strtod_l in the "C" locale otherwise. The scan runs without the GIL (no Python objects;
 * memory from PyMem_Raw*); every read is bounds checked against `end`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- growable byte buffers ---------------------------------------------------------------------------- */
typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) {
        if (cap > ((size_t)1 << 60)) return -1;
        cap *= 2;
    }
    char *p = PyMem_RawRealloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_push(Buf *b, const void *src, size_t size) {
    if (!size) return 0;
    if (b->len + size > b->cap && buf_reserve(b, size)) return -1;
    memcpy(b->data + b->len, src, size);
    b->len += size;
    return 0;
}

/* Fixed-size pushes, inlined (the hot path: a few per number). */
static inline int push_i64(Buf *b, int64_t v) {
    if (b->len + sizeof v > b->cap && buf_reserve(b, sizeof v)) return -1;
    memcpy(b->data + b->len, &v, sizeof v);
    b->len += sizeof v;
    return 0;
}

static inline int push_f64(Buf *b, double v) {
    if (b->len + sizeof v > b->cap && buf_reserve(b, sizeof v)) return -1;
    memcpy(b->data + b->len, &v, sizeof v);
    b->len += sizeof v;
    return 0;
}

static inline int push_u8(Buf *b, uint8_t v) {
    if (b->len + 1 > b->cap && buf_reserve(b, 1)) return -1;
    b->data[b->len++] = (char)v;
    return 0;
}

/* ---- keys ----------------------------------------------------------------------------------------------- */
enum { K_ID, K_IMAGE_ID, K_CATEGORY_ID, K_BBOX, K_SEGMENTATION, K_AREA, K_ISCROWD, K_KEYPOINTS, K_NUM_KEYPOINTS,
       K_SCORE, K_ATTRIBUTES, N_KEYS };
static const char *const KEY_NAMES[N_KEYS] = {"id", "image_id", "category_id", "bbox", "segmentation", "area",
                                              "iscrowd", "keypoints", "num_keypoints", "score",
                                              "attributes"};

/* ---- the parser state ----------------------------------------------------------------------------------- */
enum { C_ID, C_ID_OK, C_IMAGE_ID, C_IMAGE_ID_OK, C_CATEGORY_ID, C_CATEGORY_ID_OK, C_SCORE, C_AREA, C_ISCROWD,
       C_BBOX, C_BBOX_OK, C_RING_COUNT, C_RING_LEN, C_COORDS, C_KP_LEN, C_KP, C_RLE, C_RLE_CHARS, C_RLE_RUNS,
       C_ATTRS,
       N_COLS };
static const char *const COL_NAMES[N_COLS] = {
    "id", "id_ok", "image_id", "image_id_ok", "category_id", "category_id_ok", "score", "area", "iscrowd",
    "bbox", "bbox_ok", "ring_count", "ring_len", "coords", "kp_len", "kp", "rle", "rle_chars", "rle_runs",
    "attrs"};

typedef struct {
    const unsigned char *base, *p, *end; /* the buffer, the cursor, the end of what may be read */
    const unsigned char *start;          /* where the array starts */
    locale_t c_locale;                   /* for strtod_l; (locale_t)0 when newlocale failed */
    int bbox_optional;                   /* results: a record may lack a bbox */
    const char *why;                     /* the reason of a bail-out */
    unsigned keys;                       /* keys seen in any record */
    int64_t n;                           /* records parsed */
    Buf col[N_COLS];
} Parser;

#define BAIL(P, msg) do { (P)->why = (msg); return -1; } while (0)
#define TRY(expr) do { if ((expr) < 0) return -1; } while (0)
#define OOM(P, expr) do { if ((expr) < 0) BAIL(P, "out of memory"); } while (0)
/* The number readers, inlined at every call site (a tenth of the scan time). */
#define HOT static inline __attribute__((always_inline))

static inline void skip_ws(Parser *P) {
    while (P->p < P->end && (*P->p == ' ' || *P->p == '\n' || *P->p == '\r' || *P->p == '\t')) P->p++;
}

/* Skip whitespace, then consume the character c (bail out when it is something else). */
static inline int expect(Parser *P, char c) {
    skip_ws(P);
    if (P->p >= P->end || *P->p != (unsigned char)c) BAIL(P, "malformed JSON or unexpected value");
    P->p++;
    return 0;
}

/* After skipping whitespace: 1 if the next character is c (consumed), 0 otherwise. */
static inline int accept(Parser *P, char c) {
    skip_ws(P);
    if (P->p < P->end && *P->p == (unsigned char)c) {
        P->p++;
        return 1;
    }
    return 0;
}

/* ---- numbers -------------------------------------------------------------------------------------------- */
static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A number that the fast path can't convert exactly: glibc's correctly rounded strtod, "C" locale. */
static int slow_double(Parser *P, const unsigned char *s, size_t len, double *out) {
    char tmp[400];
    if (len >= sizeof tmp || P->c_locale == (locale_t)0) BAIL(P, "number too long");
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *stop = NULL;
    double d = strtod_l(tmp, &stop, P->c_locale);
    if (stop != tmp + len) BAIL(P, "malformed number");
    if (isinf(d)) BAIL(P, "number out of range");
    *out = d;
    return 0;
}

#define DIGIT(c) ((unsigned)((c) - '0') < 10u)

/* The end of the run of digits starting at p. */
static inline const unsigned char *digits_end(const unsigned char *p, const unsigned char *end) {
    while (p < end && DIGIT(*p)) p++;
    return p;
}

/* The value of the digits [p, q) (at most 19 of them: no overflow). */
static inline uint64_t digits_value(const unsigned char *p, const unsigned char *q, uint64_t w) {
    for (; p < q; p++) w = w * 10 + (uint64_t)(*p - '0');
    return w;
}

/* Parse a JSON number. *is_int: an integer token (no fraction, no exponent), then *ival holds it exactly
 * (beyond int64: bail out) and *dval the double Python's float(int) gives. */
HOT int parse_number(Parser *P, int *is_int, int64_t *ival, double *dval) {
    const unsigned char *s = P->p, *p = P->p, *end = P->end;
    int neg = p < end && *p == '-';
    p += neg;
    const unsigned char *int_start = p, *int_end = p = digits_end(p, end);
    if (int_end == int_start) BAIL(P, "malformed JSON or unexpected value");
    if (*int_start == '0' && int_end - int_start > 1) BAIL(P, "malformed number (leading zero)");
    const unsigned char *frac_start = p, *frac_end = p;
    if (p < end && *p == '.') {
        frac_start = p + 1;
        frac_end = p = digits_end(frac_start, end);
        if (frac_end == frac_start) BAIL(P, "malformed number");
    }
    int64_t e = 0;
    int expo = p < end && (*p == 'e' || *p == 'E');
    if (expo) {
        p++;
        int eneg = p < end && *p == '-';
        p += p < end && (*p == '+' || *p == '-');
        const unsigned char *e_start = p;
        for (; p < end && DIGIT(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0'); /* larger: over- or underflows anyway (strtod decides) */
        if (p == e_start) BAIL(P, "malformed number");
        if (eneg) e = -e;
    }
    P->p = p;
    size_t n_int = (size_t)(int_end - int_start), n_frac = (size_t)(frac_end - frac_start);
    *is_int = frac_start == int_end && !expo; /* no fraction (frac_start is past the dot), no exponent */
    if (*is_int) {
        if (n_int > 19) BAIL(P, "integer beyond int64");
        uint64_t w = digits_value(int_start, int_end, 0);
        if (neg ? w > (uint64_t)INT64_MAX + 1 : w > (uint64_t)INT64_MAX) BAIL(P, "integer beyond int64");
        *ival = neg ? (int64_t)(0 - w) : (int64_t)w;
        *dval = (double)*ival;   /* -0 is the integer 0: 0.0, as float(int) */
        return 0;
    }
    if (n_int + n_frac <= 19) {
        uint64_t w = digits_value(frac_start, frac_end, digits_value(int_start, int_end, 0));
        int64_t exp10 = e - (int64_t)n_frac;
        if (w <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
            double d = (double)w; /* exact: w <= 2^53, 10^|e| exact, one correctly rounded operation */
            d = exp10 < 0 ? d / POW10[-exp10] : d * POW10[exp10];
            *dval = neg ? -d : d;
            return 0;
        }
        if (w == 0) {
            *dval = neg ? -0.0 : 0.0;
            return 0;
        }
    }
    return slow_double(P, s, (size_t)(p - s), dval);
}

/* A number (integer or not) as a double. */
HOT int read_double(Parser *P, double *out) {
    int is_int;
    int64_t i;
    skip_ws(P);
    return parse_number(P, &is_int, &i, out);
}

/* An integer token (a float such as 1.0 makes the Python path convert it: bail out instead). */
HOT int read_int(Parser *P, int64_t *out) {
    int is_int;
    double d;
    skip_ws(P);
    TRY(parse_number(P, &is_int, out, &d));
    if (!is_int) BAIL(P, "non-integer id");
    return 0;
}

/* ---- strings -------------------------------------------------------------------------------------------- */
static int hex4(Parser *P, unsigned *out) {
    if (P->end - P->p < 4) BAIL(P, "malformed JSON string escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = P->p[k];
        unsigned d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 16;
        if (d == 16) BAIL(P, "malformed JSON string escape");
        v = v * 16 + d;
    }
    P->p += 4;
    *out = v;
    return 0;
}

/* A JSON string of ASCII characters, unescaped into `out` (non-ASCII text: bail out). */
static int read_string(Parser *P, Buf *out) {
    TRY(expect(P, '"'));
    for (;;) {
        const unsigned char *run = P->p;
        while (P->p < P->end && *P->p != '"' && *P->p != '\\' && *P->p >= 0x20 && *P->p < 0x80) P->p++;
        OOM(P, buf_push(out, run, (size_t)(P->p - run)));
        if (P->p >= P->end) BAIL(P, "unterminated string");
        unsigned char c = *P->p++;
        if (c == '"') return 0;
        if (c != '\\') BAIL(P, c < 0x20 ? "control character in string" : "non-ASCII string");
        if (P->p >= P->end) BAIL(P, "unterminated string");
        unsigned char e = *P->p++;
        unsigned v;
        switch (e) {
        case '"': case '\\': case '/': v = e; break;
        case 'b': v = '\b'; break;
        case 'f': v = '\f'; break;
        case 'n': v = '\n'; break;
        case 'r': v = '\r'; break;
        case 't': v = '\t'; break;
        case 'u': TRY(hex4(P, &v)); if (v >= 0x80) BAIL(P, "non-ASCII string"); break;
        default: BAIL(P, "malformed JSON string escape");
        }
        OOM(P, push_u8(out, (uint8_t)v));
    }
}

/* The key of an annotation record (KEY_NAMES) and its ':', matched in place with its closing quote (no scan
 * for the quote: keys are most of a record's bytes); an unknown or escaped key bails out. */
static int read_record_key(Parser *P) {
    TRY(expect(P, '"'));
    const unsigned char *s = P->p;
    size_t avail = (size_t)(P->end - s);
#define KEY(lit, k) \
    if (avail >= sizeof lit && memcmp(s, lit "\"", sizeof lit) == 0) { P->p = s + sizeof lit; key = k; break; }
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
    if (key < 0) BAIL(P, "unknown key");
    TRY(expect(P, ':'));
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
    TRY(expect(P, '"'));
    const unsigned char *s = P->p;
    while (P->p < P->end && *P->p != '"' && *P->p != '\\') P->p++;
    if (P->p >= P->end || *P->p != '"') BAIL(P, "unknown key");
    int k = match(s, (size_t)(P->p - s));
    P->p++;
    if (k < 0) BAIL(P, "unknown key");
    TRY(expect(P, ':'));
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
    TRY(expect(P, '['));
    for (int k = 0; k < 4; k++) {
        if (k) TRY(expect(P, ','));
        TRY(read_double(P, &r->bbox[k]));
    }
    TRY(expect(P, ']'));
    r->bbox_ok = 1;
    return 0;
}

/* A flat list of numbers pushed to `out`; returns how many, or -1. */
static int64_t read_numbers(Parser *P, Buf *out) {
    int64_t count = 0;
    if (accept(P, ']')) return 0;
    do {
        double d;
        TRY(read_double(P, &d));
        OOM(P, push_f64(out, d));
        count++;
    } while (accept(P, ','));
    TRY(expect(P, ']'));
    return count;
}

/* keypoints: a non-empty flat list of 3*K numbers. */
static int read_keypoints(Parser *P, Record *r) {
    TRY(expect(P, '['));
    int64_t count = read_numbers(P, &P->col[C_KP]);
    if (count < 0) return -1;
    if (count == 0 || count % 3) BAIL(P, "keypoints not 3*K numbers");
    r->kp_len = count;
    return 0;
}

/* Polygons: a list of rings, each a flat list of at least 6 numbers, even in count; [] is no polygon. */
static int read_polygons(Parser *P, Record *r) {
    if (accept(P, ']')) return 0;
    do {
        TRY(expect(P, '['));
        int64_t count = read_numbers(P, &P->col[C_COORDS]);
        if (count < 0) return -1;
        if (count < 6 || count % 2) BAIL(P, "odd, short or empty polygon");
        OOM(P, push_i64(&P->col[C_RING_LEN], count));
        r->rings++;
    } while (accept(P, ','));
    return expect(P, ']');
}

/* RLE counts as a list of run lengths (uncompressed, e.g. crowd regions): non-empty, integers >= 0. */
static int read_runs(Parser *P) {
    if (accept(P, ']')) BAIL(P, "empty RLE counts");
    do {
        int64_t v;
        TRY(read_int(P, &v));
        if (v < 0) BAIL(P, "negative RLE run");
        OOM(P, push_i64(&P->col[C_RLE_RUNS], v));
    } while (accept(P, ','));
    return expect(P, ']');
}

/* An RLE object {"size": [h, w], "counts": "..." or [runs]} (no other key). */
static int read_rle(Parser *P, int64_t record) {
    int64_t meta[6] = {record, -1, -1, 0, 0, 0};
    int seen = 0;
    if (accept(P, '}')) BAIL(P, "empty RLE object");
    do {
        int k = read_key(P, rle_key);
        if (k < 0) return -1;
        if (seen & (1 << k)) BAIL(P, "duplicate key");
        seen |= 1 << k;
        if (k == 0) {
            TRY(expect(P, '['));
            TRY(read_int(P, &meta[1]));
            TRY(expect(P, ','));
            TRY(read_int(P, &meta[2]));
            TRY(expect(P, ']'));
            if (meta[1] < 0 || meta[2] < 0) BAIL(P, "negative RLE size");
            continue;
        }
        skip_ws(P);
        if (P->p < P->end && *P->p == '[') {
            P->p++;
            meta[3] = 1;
            meta[4] = (int64_t)(P->col[C_RLE_RUNS].len / sizeof(int64_t));
            TRY(read_runs(P));
            meta[5] = (int64_t)(P->col[C_RLE_RUNS].len / sizeof(int64_t));
        } else {
            meta[4] = (int64_t)P->col[C_RLE_CHARS].len;
            TRY(read_string(P, &P->col[C_RLE_CHARS]));
            meta[5] = (int64_t)P->col[C_RLE_CHARS].len;
        }
    } while (accept(P, ','));
    TRY(expect(P, '}'));
    if (seen != 3) BAIL(P, "RLE without size or counts");
    OOM(P, buf_push(&P->col[C_RLE], meta, sizeof meta));
    return 0;
}

static int read_segmentation(Parser *P, Record *r) {
    skip_ws(P);
    if (P->p < P->end && *P->p == '[') {
        P->p++;
        return read_polygons(P, r);
    }
    TRY(expect(P, '{'));
    return read_rle(P, P->n);
}

/* iscrowd: an integer (any value: truthiness) or true/false. */
static int read_crowd(Parser *P, Record *r) {
    skip_ws(P);
    if (P->end - P->p >= 4 && memcmp(P->p, "true", 4) == 0) { P->p += 4; r->crowd = 1; return 0; }
    if (P->end - P->p >= 5 && memcmp(P->p, "false", 5) == 0) { P->p += 5; r->crowd = 0; return 0; }
    int64_t v;
    TRY(read_int(P, &v));
    r->crowd = v != 0;
    return 0;
}

/* ---- attributes: validated and located, parsed by the caller (any JSON values) ---------------------------- */
/* A JSON string, validated (escapes; raw bytes >= 0x80 are left to the caller's UTF-8 check), not kept. */
static int skip_string(Parser *P) {
    TRY(expect(P, '"'));
    for (;;) {
        while (P->p < P->end && *P->p != '"' && *P->p != '\\' && *P->p >= 0x20) P->p++;
        if (P->p >= P->end) BAIL(P, "unterminated string");
        unsigned char c = *P->p++;
        if (c == '"') return 0;
        if (c != '\\') BAIL(P, "control character in string");
        if (P->p >= P->end) BAIL(P, "unterminated string");
        unsigned char e = *P->p++;
        unsigned v;
        if (e == 'u') TRY(hex4(P, &v));
        else if (!strchr("\"\\/bfnrt", e) || !e) BAIL(P, "malformed JSON string escape");
    }
}

/* The literal `word` at the cursor (true, false, null). */
static int skip_literal(Parser *P, const char *word, size_t len) {
    if ((size_t)(P->end - P->p) < len || memcmp(P->p, word, len) != 0) BAIL(P, "malformed JSON or unexpected value");
    P->p += len;
    return 0;
}

/* Any JSON value, validated and skipped (nesting up to 64 deep: deeper bails out). */
static int skip_value(Parser *P, int depth) {
    if (depth > 64) BAIL(P, "nested too deeply");
    skip_ws(P);
    if (P->p >= P->end) BAIL(P, "malformed JSON or unexpected value");
    switch (*P->p) {
    case '{':
        P->p++;
        if (accept(P, '}')) return 0;
        do {
            skip_ws(P);
            TRY(skip_string(P));
            TRY(expect(P, ':'));
            TRY(skip_value(P, depth + 1));
        } while (accept(P, ','));
        return expect(P, '}');
    case '[':
        P->p++;
        if (accept(P, ']')) return 0;
        do TRY(skip_value(P, depth + 1)); while (accept(P, ','));
        return expect(P, ']');
    case '"': return skip_string(P);
    case 't': return skip_literal(P, "true", 4);
    case 'f': return skip_literal(P, "false", 5);
    case 'n': return skip_literal(P, "null", 4);
    default: {
        int is_int;
        int64_t i;
        double d;
        return parse_number(P, &is_int, &i, &d);
    }
    }
}

/* "attributes": an object (located for the caller) or null (none); anything else is a finding: bail out. */
static int read_attributes(Parser *P) {
    skip_ws(P);
    if (P->p < P->end && *P->p == 'n') return skip_literal(P, "null", 4);
    if (P->p >= P->end || *P->p != '{') BAIL(P, "attributes not an object");
    int64_t span[3] = {P->n, (int64_t)(P->p - P->base), 0};
    TRY(skip_value(P, 0));
    span[2] = (int64_t)(P->p - P->base);
    OOM(P, buf_push(&P->col[C_ATTRS], span, sizeof span));
    return 0;
}

static int read_value(Parser *P, int key, Record *r) {
    double ignored;
    switch (key) {
    case K_ID: case K_IMAGE_ID: case K_CATEGORY_ID:
        r->ids_ok[key] = 1;
        return read_int(P, &r->ids[key]);
    case K_BBOX: return read_bbox(P, r);
    case K_SEGMENTATION: return read_segmentation(P, r);
    case K_AREA: return read_double(P, &r->area);
    case K_ISCROWD: return read_crowd(P, r);
    case K_KEYPOINTS: return read_keypoints(P, r);
    case K_NUM_KEYPOINTS: return read_double(P, &ignored); /* known to the Python path, not stored */
    case K_SCORE: return read_double(P, &r->score);
    case K_ATTRIBUTES: return read_attributes(P);
    }
    BAIL(P, "unknown key");
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
    size_t per_record = (size_t)(P->p - P->start) / (size_t)(P->n + 1) + 1;
    size_t records = (size_t)(P->end - P->p) / per_record * 9 / 8 + 16;
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
        OOM(P, push_i64(&P->col[id_cols[key][0]], r->ids[key]));
        OOM(P, push_u8(&P->col[id_cols[key][1]], r->ids_ok[key]));
        break;
    case K_SCORE: OOM(P, push_f64(&P->col[C_SCORE], r->score)); break;
    case K_AREA: OOM(P, push_f64(&P->col[C_AREA], r->area)); break;
    case K_ISCROWD: OOM(P, push_u8(&P->col[C_ISCROWD], r->crowd)); break;
    case K_BBOX:
        for (int k = 0; k < 4; k++) OOM(P, push_f64(&P->col[C_BBOX], r->bbox[k]));
        OOM(P, push_u8(&P->col[C_BBOX_OK], r->bbox_ok));
        break;
    case K_SEGMENTATION: OOM(P, push_i64(&P->col[C_RING_COUNT], r->rings)); break;
    case K_KEYPOINTS: OOM(P, push_i64(&P->col[C_KP_LEN], r->kp_len)); break;
    }
    return 0;
}

/* Push one record's row to the columns of every key seen so far (`seen`: the keys of this record). */
static int push_record(Parser *P, const Record *r, unsigned seen) {
    unsigned fresh = seen & ~P->keys;
    for (int k = 0; fresh >> k; k++)
        if (fresh >> k & 1) {
            OOM(P, reserve_key(P, k));
            TRY(backfill(P, k));
        }
    P->keys |= seen;
    for (int k = 0; P->keys >> k; k++)
        if (P->keys >> k & 1) TRY(push_key(P, k, r));
    return 0;
}

/* One annotation object, after its '{'. */
static int read_record(Parser *P) {
    Record r = {{-1, -1, -1}, {0, 0, 0}, NAN, NAN, {NAN, NAN, NAN, NAN}, 0, 0, 0, -1};
    unsigned seen = 0;
    if (!accept(P, '}')) {
        do {
            int key = read_record_key(P);
            if (key < 0) return -1;
            if (seen & (1u << key)) BAIL(P, "duplicate key");
            seen |= 1u << key;
            TRY(read_value(P, key, &r));
        } while (accept(P, ','));
        TRY(expect(P, '}'));
    }
    if (!(seen & (1u << K_BBOX)) && !P->bbox_optional) BAIL(P, "record without bbox");
    TRY(push_record(P, &r, seen));
    P->n++;
    return 0;
}

/* The array: '[' (after whitespace), objects separated by ',', ']'. */
static int read_array(Parser *P) {
    TRY(expect(P, '['));
    if (accept(P, ']')) return 0;
    do {
        TRY(expect(P, '{'));
        TRY(read_record(P));
    } while (accept(P, ','));
    return expect(P, ']');
}

/* ---- the Python function -------------------------------------------------------------------------------- */
static void free_cols(Parser *P) {
    for (int k = 0; k < N_COLS; k++) {
        PyMem_RawFree(P->col[k].data);
        P->col[k].data = NULL;
    }
}

/* A column handed to Python without a copy: owns a PyMem_Raw buffer, exposes it through the buffer protocol
 * (np.frombuffer(column, dtype) wraps it; the array keeps the column alive). */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len;
} Column;

static char EMPTY[1];

static int column_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Column *c = (Column *)self;
    return PyBuffer_FillInfo(view, self, c->data ? c->data : EMPTY, c->data ? c->len : 0, 0, flags);
}

static void column_dealloc(PyObject *self) {
    PyMem_RawFree(((Column *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs column_as_buffer = {column_getbuffer, NULL};

static PyTypeObject ColumnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "maslow._native.records.Column",
    .tp_basicsize = sizeof(Column),
    .tp_dealloc = column_dealloc,
    .tp_as_buffer = &column_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A parsed column (bytes-like, wrap with np.frombuffer).",
};

/* The RLE objects AnnColumns.add makes, in file order: {"size": [h, w], "counts": bytes} for a counts string,
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

static PyObject *rle_objects(const Parser *P) {
    const Buf *meta = &P->col[C_RLE], *chars = &P->col[C_RLE_CHARS];
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

/* The result dict; each column's buffer moves into a Column (no copy). */
static PyObject *build_result(Parser *P, Py_ssize_t end) {
    PyObject *out = PyDict_New();
    if (!out) return NULL;
    PyObject *rles = rle_objects(P);
    if (!rles || PyDict_SetItemString(out, "rle_objects", rles) < 0) {
        Py_XDECREF(rles);
        Py_DECREF(out);
        return NULL;
    }
    Py_DECREF(rles);
    for (int k = 0; k < N_COLS; k++) {
        Column *c = PyObject_New(Column, &ColumnType);
        if (!c) {
            Py_DECREF(out);
            return NULL;
        }
        c->data = P->col[k].data;
        c->len = (Py_ssize_t)P->col[k].len;
        P->col[k].data = NULL;
        int bad = PyDict_SetItemString(out, COL_NAMES[k], (PyObject *)c) < 0;
        Py_DECREF(c);
        if (bad) {
            Py_DECREF(out);
            return NULL;
        }
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
"parse(buffer, start, end, bbox_optional) -> dict | str\n\n"
"Columns of the JSON array of annotation objects at buffer[start:end] (the array's '[' at start, after\n"
"whitespace), or a str saying why the Python path must read the file instead. bbox_optional: a record\n"
"may lack a bbox (results); otherwise such a record makes it bail out.");

static PyObject *py_parse(PyObject *self, PyObject *args) {
    PyObject *obj;
    Py_ssize_t start, end;
    int bbox_optional;
    if (!PyArg_ParseTuple(args, "Onnp", &obj, &start, &end, &bbox_optional)) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (start < 0 || end > view.len || start > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start/end out of the buffer");
        return NULL;
    }
    Parser P;
    memset(&P, 0, sizeof P);
    P.base = view.buf;
    P.p = P.base + start;
    P.end = P.base + end;
    P.start = P.p;
    P.bbox_optional = bbox_optional;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    P.c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    rc = read_array(&P);
    if (P.c_locale != (locale_t)0) freelocale(P.c_locale);
    Py_END_ALLOW_THREADS
    Py_ssize_t stop = (Py_ssize_t)(P.p - P.base);
    PyBuffer_Release(&view);
    if (rc < 0) {
        free_cols(&P);
        return PyUnicode_FromString(P.why ? P.why : "bail out");
    }
    PyObject *out = build_result(&P, stop);
    free_cols(&P);
    return out;
}

static PyMethodDef methods[] = {
    {"parse", py_parse, METH_VARARGS, parse_doc},
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
