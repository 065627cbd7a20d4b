/* Part of records.c, included after its Parser type: one record's values to the columns, the id -> row lookup
 * and the box checks of a results list (rows_and_box), the release of consumed file pages, and the array walk.
 * A separate file only to keep each under ~600 lines; it is not a general-purpose header. */
#ifndef MASLOW_COCO_RECORD_H
#define MASLOW_COCO_RECORD_H

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
    uint8_t rle;       /* the segmentation is an RLE */
    unsigned oriented; /* bit j: P->oriented[j] holds its obb (0), rbox (1) or poly (2) */
};
#define RECORD_DEFAULT {{-1, -1, -1}, {0, 0, 0}, NAN, NAN, {NAN, NAN, NAN, NAN}, 0, 0, 0, -1, 0, 0}

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

/* keypoints: a non-empty flat list of 3*K numbers; their extent [min x, min y, max x, max y] to kp_box (the box
 * COCO.loadRes gives keypoint results, taken while the values are in cache; every number read is finite). An
 * extent of 0 where both 0.0 and -0.0 occur is written as inf: which of the two numpy's min or max gives is its
 * own choice (it varies with the array's shape), so the caller asks numpy for every record then. */
static int read_keypoints(Parser *P, Record *r) {
    TRY(expect(&P->s, '['));
    int64_t count = read_numbers(P, &P->col[C_KP]);
    if (count < 0) return -1;
    if (count == 0 || count % 3) BAIL(&P->s, "keypoints not 3*K numbers");
    r->kp_len = count;
    const double *v = (const double *)(P->col[C_KP].data + P->col[C_KP].len) - count;
    double box[4] = {v[0], v[1], v[0], v[1]};
    int zeros[2] = {0, 0}; /* per axis: bit 0 a -0.0 seen, bit 1 a 0.0 */
    for (int64_t j = 0; j < count; j += 3) {
        double x = v[j], y = v[j + 1];
        box[0] = x < box[0] ? x : box[0], box[1] = y < box[1] ? y : box[1];
        box[2] = x > box[2] ? x : box[2], box[3] = y > box[3] ? y : box[3];
        if (x == 0) zeros[0] |= signbit(x) ? 1 : 2;
        if (y == 0) zeros[1] |= signbit(y) ? 1 : 2;
    }
    for (int a = 0; a < 2; a++)
        if (zeros[a] == 3 && (box[a] == 0 || box[a + 2] == 0)) box[0] = box[1] = box[2] = box[3] = INFINITY;
    OOM(&P->s, buf_push(&P->col[C_KP_BOX], box, sizeof box));
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
    r->rle = 1;
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

/* The value text [value, value + vlen) of the key `name` (its JSON string, quotes included) appended to the key's
 * list (in Other), for the caller to parse with orjson and check. */
static int add_other(Parser *P, const unsigned char *name, size_t len, const unsigned char *value, size_t vlen) {
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
    OOM(&P->s, buf_push(&o->values, value, vlen));
    return 0;
}

/* The value at the cursor, validated and skipped, as add_other's. */
static int push_other(Parser *P, const unsigned char *name, size_t len) {
    skip_ws(&P->s);
    const unsigned char *value = P->s.p;
    TRY(skip_value(&P->s, 0));
    return add_other(P, name, len, value, (size_t)(P->s.p - value));
}

/* A key that has no column here, at its opening quote: validated, and its value located (push_other). */
static int read_other(Parser *P) {
    const unsigned char *name = P->s.p;
    TRY(skip_string(&P->s));
    size_t len = (size_t)(P->s.p - name);
    TRY(expect(&P->s, ':'));
    return push_other(P, name, len);
}

/* ---- oriented boxes ------------------------------------------------------------------------------------------ */
static const char *const ORIENTED_KEYS[N_ORIENTED] = {"\"obb\"", "\"rbox\"", "\"poly\""}; /* as add_other's */

/* obb, rbox ([cx, cy, w, h, angle]) or poly ([x1, y1, ..., x4, y4]): exactly 5 or 8 numbers, w and h >= 0, to
 * P->oriented (where it stands: P->oriented_at). Any other value (null, another length, a string, a negative size)
 * is located as another key's (read_other), for the Python path to report or keep as read (maslow.io._coco_obb). */
static int read_oriented(Parser *P, Record *r, int key) {
    int j = key - K_OBB, len = ORIENTED_LEN[j];
    double *v = P->oriented[j];
    skip_ws(&P->s);
    const unsigned char *start = P->s.p;
    int ok = accept(&P->s, '[');
    for (int k = 0; ok && k < len; k++) ok = (!k || accept(&P->s, ',')) && read_double(&P->s, &v[k]) == 0;
    ok = ok && accept(&P->s, ']') && (len == 8 || (v[2] >= 0 && v[3] >= 0));
    if (!ok) {
        P->s.p = start;
        P->s.why = NULL;
        return push_other(P, (const unsigned char *)ORIENTED_KEYS[j], strlen(ORIENTED_KEYS[j]));
    }
    P->oriented_at[j][0] = start;
    P->oriented_at[j][1] = P->s.p;
    r->oriented |= 1u << j;
    return 0;
}

/* A record with a segmentation (a ring or an RLE) keeps its oriented boxes as read: their texts go to the other
 * keys' lists instead (the record gets NaN rows). */
static int oriented_as_read(Parser *P, Record *r) {
    for (int j = 0; j < N_ORIENTED; j++)
        if (r->oriented >> j & 1) {
            const unsigned char *at = P->oriented_at[j][0];
            TRY(add_other(P, (const unsigned char *)ORIENTED_KEYS[j], strlen(ORIENTED_KEYS[j]), at,
                          (size_t)(P->oriented_at[j][1] - at)));
        }
    r->oriented = 0;
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
    case K_OBB: case K_RBOX: case K_POLY: return read_oriented(P, r, key);
    }
    BAIL(&P->s, "unknown key");
}

/* Per-record columns exist from the first record that has their key: a key absent from every record costs
 * nothing (the caller fills its default); the records before the first one get the default here. */
static int backfill(Parser *P, int key) {
    static const Record def = RECORD_DEFAULT;
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
        [K_ATTRIBUTES] = {{0, 0}}, [K_OBB] = {{C_OBB, 40}}, [K_RBOX] = {{C_RBOX, 40}}, [K_POLY] = {{C_POLY, 64}}};
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
    case K_OBB: case K_RBOX: case K_POLY: {
        static const double none[8] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
        int j = key - K_OBB;
        const double *v = r->oriented >> j & 1 ? P->oriented[j] : none;
        OOM(&P->s, buf_push(&P->col[C_OBB + j], v, sizeof(double) * (size_t)ORIENTED_LEN[j]));
        break;
    }
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
    Record r = RECORD_DEFAULT;
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
    unsigned oriented = r.oriented; /* an oriented box stands in for a missing bbox */
    if (oriented && (r.rings || r.rle)) TRY(oriented_as_read(P, &r));
    if (!(seen & (1u << K_BBOX)) && !P->bbox_optional && !oriented) BAIL(&P->s, "record without bbox");
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

#endif /* MASLOW_COCO_RECORD_H */
