/* maslow._native.cocoeval, orders (included by cocoeval.c, after its buffer helpers): the orders of the
 * predictions. dense_ranks, pack_keys and kept_predictions are the steps of _prepare._pred_orders / _kept;
 * pred_orders does all of them at once for use_cats (radix and counting sorts, no comparison sort). */

/* -- prediction orders ------------------------------------------------------------------------------- */

/* dense_ranks(score, order, out) -> None: out[order[i]] = the number of distinct scores before position i of
 * order (score sorted, highest first): _prepare._pred_orders' dense rank of -score (equal floats share one). */
static PyObject *py_dense_ranks(PyObject *self, PyObject *args) {
    PyObject *o[3];
    if (!PyArg_ParseTuple(args, "OOO", &o[0], &o[1], &o[2])) return NULL;
    static const enum kind kinds[3] = {K_F64, K_I64, K_I64};
    static const char *names[3] = {"score", "order", "out"};
    Py_buffer v[3];
    Py_ssize_t n[3];
    if (get_bufs(o, v, n, kinds, names, 3, 2) < 0) return NULL;
    const double *score = v[0].buf;
    const int64_t *order = v[1].buf;
    int64_t *out = v[2].buf;
    int bad = n[1] != n[0] || n[2] != n[0];
    Py_BEGIN_ALLOW_THREADS
    int64_t rank = -1;
    double prev = 0.0;
    for (Py_ssize_t i = 0; i < n[0] && !bad; i++) {
        int64_t p = order[i];
        if (p < 0 || p >= n[0]) {
            bad = 1;
            break;
        }
        double x = score[p];
        rank += !i || x != prev; /* numpy: s[1:] != s[:-1] */
        prev = x;
        out[p] = rank;
    }
    Py_END_ALLOW_THREADS
    release_all(v, 3);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.dense_ranks: inconsistent sizes or order out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* pack_keys(columns, spans, row_bits, key) -> None: key[i] = ((c0[i] * s1 + c1[i]) * s2 + ...) << row_bits | i,
 * the packed sort keys of _prepare.packed_order (the caller checked every column in [0, span) and the width). */
static PyObject *py_pack_keys(PyObject *self, PyObject *args) {
    PyObject *cols, *spans, *o_key;
    int row_bits;
    if (!PyArg_ParseTuple(args, "O!O!iO", &PyTuple_Type, &cols, &PyTuple_Type, &spans, &row_bits, &o_key))
        return NULL;
    Py_ssize_t n_cols = PyTuple_GET_SIZE(cols), n_key;
    if (n_cols < 1 || n_cols > 4 || PyTuple_GET_SIZE(spans) != n_cols || row_bits < 0 || row_bits > 62) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.pack_keys: 1 to 4 columns, one span each");
        return NULL;
    }
    Py_buffer v[5];
    const int64_t *c[4];
    int64_t span[4];
    if (get_buf(o_key, &v[0], K_I64, 1, "key", &n_key) < 0) return NULL;
    for (Py_ssize_t j = 0; j < n_cols; j++) {
        Py_ssize_t n_c;
        span[j] = PyLong_AsLongLong(PyTuple_GET_ITEM(spans, j));
        if ((span[j] == -1 && PyErr_Occurred()) ||
            get_buf(PyTuple_GET_ITEM(cols, j), &v[j + 1], K_I64, 0, "column", &n_c) < 0) {
            release_all(v, (int)j + 1); /* key and the columns before j */
            return NULL;
        }
        if (n_c != n_key) {
            release_all(v, (int)j + 2);
            PyErr_SetString(PyExc_ValueError, "cocoeval.pack_keys: columns and key must have one length");
            return NULL;
        }
        c[j] = v[j + 1].buf;
    }
    int64_t *key = v[0].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_key; i++) {
        int64_t k = c[0][i];
        for (Py_ssize_t j = 1; j < n_cols; j++) k = k * span[j] + c[j][i];
        key[i] = (k << row_bits) | (int64_t)i;
    }
    Py_END_ALLOW_THREADS
    release_all(v, (int)n_cols + 1);
    Py_RETURN_NONE;
}

/* -- evaluated predictions -------------------------------------------------------------------------- */

/* kept_predictions(p_order, acc_order, group, k, score, max_det, sel, kept_group, rank, kept_k, acc, kept_score)
 *   -> number kept: evaluateImg's dt[0:maxDet] of every group (_prepare._kept). Walks the predictions in group
 *   order (p_order: group, -score, row); keeps each with rank < max_det in its group (sel, its group, rank,
 *   class and score); then acc = the accumulation order (acc_order, over all predictions) as positions among
 *   the kept ones. Outputs are (n,) int64 (kept_score float64), filled up to the count. */
static PyObject *py_kept_predictions(PyObject *self, PyObject *args) {
    enum { N = 11 };
    PyObject *o[N];
    long long max_det;
    if (!PyArg_ParseTuple(args, "OOOOOLOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &max_det, &o[5], &o[6], &o[7],
                          &o[8], &o[9], &o[10]))
        return NULL;
    static const enum kind kinds[N] = {K_I64, K_I64, K_I64, K_I64, K_F64, K_I64,
                                       K_I64, K_I64, K_I64, K_I64, K_F64};
    static const char *names[N] = {"p_order", "acc_order", "group", "k", "score", "sel", "kept_group", "rank",
                                   "kept_k", "acc", "kept_score"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 5) < 0) return NULL;
    Py_ssize_t m = n[0], kept = 0, bad = 0;
    for (int i = 1; i < N; i++) bad |= n[i] != m;
    int64_t *side_pos = bad ? NULL : big_alloc(sizeof(int64_t) * ((size_t)m + 1));
    if (!bad && !side_pos) {
        release_all(v, N);
        return PyErr_NoMemory();
    }
    const int64_t *order = v[0].buf, *acc_order = v[1].buf, *group = v[2].buf, *k = v[3].buf;
    const double *score = v[4].buf;
    int64_t *sel = v[5].buf, *kg = v[6].buf, *rank = v[7].buf, *kk = v[8].buf, *acc = v[9].buf;
    double *ks = v[10].buf;
    Py_ssize_t n_acc = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t r = 0, prev = 0;
    for (Py_ssize_t i = 0; i < m && !bad; i++) {
        if (i + 32 < m && (uint64_t)order[i + 32] < (uint64_t)m) { /* the random reads, prefetched */
            int64_t q = order[i + 32];
            __builtin_prefetch(&group[q]), __builtin_prefetch(&k[q]), __builtin_prefetch(&score[q]);
            __builtin_prefetch(&side_pos[q], 1);
        }
        int64_t p = order[i];
        if (p < 0 || p >= m) {
            bad = 1;
            break;
        }
        int64_t g = group[p];
        r = (i && g == prev) ? r + 1 : 0;
        prev = g;
        side_pos[p] = r < max_det ? kept : -1;
        if (r < max_det) {
            sel[kept] = p, kg[kept] = g, rank[kept] = r, kk[kept] = k[p], ks[kept] = score[p];
            kept++;
        }
    }
    for (Py_ssize_t i = 0; i < m && !bad; i++) {
        if (i + 32 < m && (uint64_t)acc_order[i + 32] < (uint64_t)m) __builtin_prefetch(&side_pos[acc_order[i + 32]]);
        int64_t p = acc_order[i];
        if (p < 0 || p >= m) {
            bad = 1;
            break;
        }
        if (side_pos[p] >= 0) acc[n_acc++] = side_pos[p];
    }
    Py_END_ALLOW_THREADS
    free(side_pos);
    release_all(v, N);
    if (bad || n_acc != kept) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.kept_predictions: inconsistent sizes, or orders that are not "
                                          "permutations");
        return NULL;
    }
    return PyLong_FromSsize_t(kept);
}


/* Sort key of a score for a descending order: a higher score, a smaller key; -0.0 and 0.0 share one (they compare
 * equal, so they tie, as in numpy's sort). NaN is refused by the caller. */
static inline uint64_t desc_key(double x) {
    uint64_t b;
    if (x == 0) x = 0.0;
    memcpy(&b, &x, sizeof b);
    b = (b >> 63) ? ~b : b | ((uint64_t)1 << 63); /* ascending */
    return ~b;
}

/* One prediction while pred_orders sorts an image's predictions. */
typedef struct {
    uint64_t key; /* desc_key of its score */
    int32_t row, k;
} ord_item;

static int ord_cmp(const void *x, const void *y) { /* (key, row): unique, so qsort's instability is harmless */
    const ord_item *a = x, *b = y;
    return a->key != b->key ? (a->key < b->key ? -1 : 1) : (a->row > b->row) - (a->row < b->row);
}

/* Stable sort of one group by key (ties keep their order, the row order): insertion sort for the short groups
 * (COCO results have at most 100 predictions per image), qsort on (key, row) for long ones. */
static void sort_group(ord_item *g, Py_ssize_t n) {
    if (n > 64) {
        qsort(g, (size_t)n, sizeof *g, ord_cmp);
        return;
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        ord_item x = g[i];
        Py_ssize_t j = i;
        for (; j > 0 && g[j - 1].key > x.key; j--) g[j] = g[j - 1];
        g[j] = x;
    }
}

/* Stable sort of one image's predictions, already grouped by class (increasing), by (class, key): an insertion
 * sort within each group (ties keep the row order); a group longer than 64 goes to sort_group. */
static void sort_image(ord_item *g, Py_ssize_t n) {
    Py_ssize_t g0 = 0; /* the current group's start */
    for (Py_ssize_t i = 1; i < n; i++) {
        ord_item x = g[i];
        if (x.k != g[i - 1].k) {
            if (i - g0 > 64) sort_group(&g[g0], i - g0);
            g0 = i;
            continue;
        }
        if (i - g0 >= 64) continue; /* a long group: sorted at its end */
        Py_ssize_t j = i;
        for (; j > g0 && g[j - 1].key > x.key; j--) g[j] = g[j - 1];
        g[j] = x;
    }
    if (n - g0 > 64) sort_group(&g[g0], n - g0);
}

/* Stable LSD radix sort of (key, pos) pairs by key, BITS bits a pass, passes where every key has the same digit
 * skipped; the result ends in (ka, pa). hist: RADIX_HIST counts of scratch. radix_pairs: 8 bits, or 11 for
 * n >= 2048 (6 passes instead of 8, where the larger histograms pay). */
#define RADIX_HIST (6 * 2048)
#define RADIX_SORT(NAME, BITS)                                                                                \
    static void NAME(uint64_t *ka, int32_t *pa, uint64_t *kb, int32_t *pb, Py_ssize_t n, int32_t *hist) {     \
        enum { B = 1 << (BITS), D = (64 + (BITS) - 1) / (BITS) };                                             \
        memset(hist, 0, sizeof(int32_t) * D * B);                                                             \
        for (Py_ssize_t i = 0; i < n; i++)                                                                    \
            for (int d = 0; d < D; d++) hist[d * B + ((ka[i] >> ((BITS) * d)) & (B - 1))]++;                  \
        uint64_t *k0 = ka, *k1 = kb;                                                                          \
        int32_t *p0 = pa, *p1 = pb;                                                                           \
        for (int d = 0; d < D; d++) {                                                                         \
            int32_t *h = &hist[d * B];                                                                        \
            if (h[(k0[0] >> ((BITS) * d)) & (B - 1)] == n) continue;                                          \
            int32_t sum = 0;                                                                                  \
            for (int b = 0; b < B; b++) {                                                                     \
                int32_t c = h[b];                                                                             \
                h[b] = sum, sum += c;                                                                         \
            }                                                                                                 \
            for (Py_ssize_t i = 0; i < n; i++) {                                                              \
                int32_t j = h[(k0[i] >> ((BITS) * d)) & (B - 1)]++;                                           \
                k1[j] = k0[i], p1[j] = p0[i];                                                                 \
            }                                                                                                 \
            uint64_t *tk = k0;                                                                                \
            k0 = k1, k1 = tk;                                                                                 \
            int32_t *tp = p0;                                                                                 \
            p0 = p1, p1 = tp;                                                                                 \
        }                                                                                                     \
        if (k0 != ka) memcpy(ka, k0, sizeof(uint64_t) * (size_t)n), memcpy(pa, p0, sizeof(int32_t) * (size_t)n); \
    }
RADIX_SORT(radix8, 8)
RADIX_SORT(radix11, 11)

static void radix_pairs(uint64_t *ka, int32_t *pa, uint64_t *kb, int32_t *pb, Py_ssize_t n, int32_t *hist) {
    if (n >= 2048)
        radix11(ka, pa, kb, pb, n, hist);
    else if (n >= 2)
        radix8(ka, pa, kb, pb, n, hist);
}

/* pred_orders(score, image, label, img_of, k_of, n_img, n_k, max_det, sel, kept_group, rank, kept_k, kept_score,
 *             acc) -> number kept, or -1 - row for the first NaN score (of a prediction of a known class):
 *   _prepare._pred_orders + _kept for use_cats, without a global comparison sort. Each row's image position is
 *   img_of[image[row]] (in [0, n_img)) and its class position k_of[label[row]] (-1: a class the truth doesn't
 *   have: the row is left out), read through those small tables (no gathered columns). The rows by image (a
 *   counting sort, skipped when each image's rows are one run, as a results file lists them), each image's
 *   predictions by class (counting) then by score (a short stable sort per group), the first max_det of each
 *   group kept (their row, group = img * n_k + k, rank, class and score; rank, class and acc int32) in group
 *   order; then acc = the kept ones in accumulation order (k, -score, img, row) as positions among them: a
 *   counting sort by class (which keeps the image order; the class counts taken while keeping) then a stable
 *   radix sort of each class by score, sorting acc itself. Few passes over the rows: the time goes to passes and
 *   to first touches of fresh memory. */
static PyObject *py_pred_orders(PyObject *self, PyObject *args) {
    enum { N = 11 };
    PyObject *o[N];
    long long n_img, n_k, max_det;
    if (!PyArg_ParseTuple(args, "OOOOOLLLOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &n_img, &n_k, &max_det,
                          &o[5], &o[6], &o[7], &o[8], &o[9], &o[10]))
        return NULL;
    static const enum kind kinds[N] = {K_F64, K_I64, K_I64, K_I64, K_I64, K_I64,
                                       K_I64, K_I32, K_I32, K_F64, K_I32};
    static const char *names[N] = {"score", "image", "label", "img_of", "k_of", "sel", "kept_group", "rank",
                                   "kept_k", "kept_score", "acc"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 5) < 0) return NULL;
    Py_ssize_t m = n[0], n_images = n[3], n_labels = n[4];
    int bad = m >= INT32_MAX || n_img < 0 || n_k < 1 || n_k >= INT32_MAX || max_det < 0 || n_img * n_k >= INT32_MAX;
    for (int i = 1; i < N; i++) bad |= i != 3 && i != 4 && n[i] != m;
    const double *score = v[0].buf;
    const int64_t *image = v[1].buf, *label = v[2].buf, *img_of = v[3].buf, *k_of = v[4].buf;
    int64_t *sel = v[5].buf, *kg = v[6].buf;
    int32_t *rank = v[7].buf, *kk = v[8].buf, *acc = v[10].buf;
    double *ks = v[9].buf;
    for (Py_ssize_t i = 0; i < n_images && !bad; i++) bad = img_of[i] < 0 || img_of[i] >= n_img;
    for (Py_ssize_t i = 0; i < n_labels && !bad; i++) bad = k_of[i] < -1 || k_of[i] >= n_k;
    /* i_start: counts by image, then starts; i_first: where each image's first run begins; k_cnt: an image's
     * class counts, then k_tot: the kept ones' (n_k + 2 each) */
    int32_t *i_start = bad ? NULL : calloc((size_t)n_img + 2, sizeof(int32_t));
    int32_t *i_first = bad ? NULL : malloc(sizeof(int32_t) * ((size_t)n_img + 1));
    int32_t *k_cnt = bad ? NULL : calloc(2 * ((size_t)n_k + 2), sizeof(int32_t)), *k_tot = k_cnt + n_k + 2;
    int ok = bad || (i_start && i_first && k_cnt);
    Py_ssize_t runs = 0, filled = 0, skipped = 0, nan_row = -1; /* image runs; images with predictions */
    int64_t prev_g = -1;
    for (Py_ssize_t i = 0; i < m && !bad && ok; i++) { /* the checks, the counts by image, its runs */
        if ((uint64_t)image[i] >= (uint64_t)n_images || (uint64_t)label[i] >= (uint64_t)n_labels) {
            bad = 1;
            break;
        }
        if (k_of[label[i]] < 0) {
            skipped++;
            continue;
        }
        if (isnan(score[i])) {
            nan_row = i;
            break;
        }
        int64_t g = img_of[image[i]];
        if (g != prev_g) i_first[g] = (int32_t)i, runs++, prev_g = g;
        i_start[g + 2]++;
    }
    if (bad || !ok || nan_row >= 0) {
        free(i_start), free(i_first), free(k_cnt);
        release_all(v, N);
        if (!ok) return PyErr_NoMemory();
        if (nan_row >= 0) return PyLong_FromSsize_t(-1 - nan_row);
        PyErr_SetString(PyExc_ValueError, "cocoeval.pred_orders: inconsistent sizes, or image or class out of range");
        return NULL;
    }
    int32_t *ra = NULL;     /* the rows by image (unless one run each) */
    ord_item *items = NULL; /* one image at a time */
    uint64_t *key_a = NULL, *key_b = NULL; /* the sort keys of the kept ones; one class at a time */
    int32_t *pos_b = NULL, *hist = NULL;
    Py_ssize_t kept = 0, longest = 0;
    for (int64_t g = 0; g < n_img; g++) {
        longest = i_start[g + 2] > longest ? i_start[g + 2] : longest;
        filled += i_start[g + 2] > 0;
    }
    int one_run = runs == filled && !skipped; /* each image's rows together: no counting sort by image */
    ok = (one_run || (ra = big_alloc(sizeof(int32_t) * ((size_t)m + 1))) != NULL) &&
         (items = malloc(sizeof(ord_item) * ((size_t)longest + 1))) != NULL;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        for (int64_t g = 0; g < n_img; g++) i_start[g + 2] += i_start[g + 1];
        if (!one_run) {
            for (Py_ssize_t i = 0; i < m; i++) /* i_start[g]: g's start */
                if (k_of[label[i]] >= 0) ra[i_start[img_of[image[i]] + 1]++] = (int32_t)i;
        } else {
            for (int64_t g = 0; g < n_img; g++) i_start[g + 1] = i_start[g + 2];
        }
        for (int64_t im = 0; im < n_img; im++) {
            Py_ssize_t s0 = i_start[im], s1 = i_start[im + 1];
            if (s0 == s1) continue;
            /* the image's rows: ra[s0:s1], or one run from i_first[im] */
            const int32_t *rows = one_run ? NULL : &ra[s0];
            int32_t first = one_run ? i_first[im] : 0;
            Py_ssize_t n_s = s1 - s0;
            memset(k_cnt, 0, sizeof(int32_t) * (size_t)(n_k + 1));
            for (Py_ssize_t i = 0; i < n_s; i++) k_cnt[k_of[label[rows ? rows[i] : first + i]] + 1]++;
            for (int64_t c = 0; c < n_k; c++) k_cnt[c + 1] += k_cnt[c];
            for (Py_ssize_t i = 0; i < n_s; i++) {
                int32_t r = rows ? rows[i] : first + (int32_t)i;
                int32_t c = (int32_t)k_of[label[r]];
                ord_item *it = &items[k_cnt[c]++];
                it->key = desc_key(score[r]), it->row = r, it->k = c;
            }
            sort_image(items, n_s);
            int64_t r = 0, prev = -1;
            for (Py_ssize_t i = 0; i < n_s; i++) { /* rank in the group; the first max_det kept (no branch) */
                int32_t row = items[i].row, c = items[i].k;
                r = c == prev ? r + 1 : 0, prev = c;
                sel[kept] = row, kg[kept] = im * n_k + c, rank[kept] = (int32_t)r, kk[kept] = c;
                ks[kept] = score[row];
                k_tot[c + 2] += r < max_det;
                kept += r < max_det;
            }
        }
        /* accumulation order: kept positions by class (stable: image order kept), then by score in each class;
         * the positions sorted in acc itself, with their keys */
        for (int64_t c = 0; c < n_k; c++) k_tot[c + 2] += k_tot[c + 1];
        Py_ssize_t widest = 0;
        for (int64_t c = 0; c < n_k; c++) /* the longest class: the radix sort's second buffer */
            widest = k_tot[c + 2] - k_tot[c + 1] > widest ? k_tot[c + 2] - k_tot[c + 1] : widest;
        key_b = malloc(sizeof(uint64_t) * ((size_t)widest + 1)), pos_b = malloc(sizeof(int32_t) * ((size_t)widest + 1));
        hist = malloc(sizeof(int32_t) * RADIX_HIST);
        key_a = big_alloc(sizeof(uint64_t) * ((size_t)kept + 1));
        ok = key_a && key_b && pos_b && hist;
        int32_t *pos_a = acc;
        for (Py_ssize_t i = 0; i < kept && ok; i++) {
            int32_t at = k_tot[kk[i] + 1]++;
            key_a[at] = desc_key(ks[i]), pos_a[at] = (int32_t)i;
        }
        for (int64_t c = 0; c < n_k && ok; c++) { /* k_tot[c]: class c's start */
            Py_ssize_t c0 = k_tot[c], c1 = k_tot[c + 1];
            radix_pairs(&key_a[c0], &pos_a[c0], key_b, pos_b, c1 - c0, hist);
        }
        Py_END_ALLOW_THREADS
    }
    free(ra), free(i_start), free(i_first), free(k_cnt), free(items), free(key_a), free(key_b), free(pos_b);
    free(hist);
    release_all(v, N);
    if (!ok) return PyErr_NoMemory();
    return PyLong_FromSsize_t(kept);
}
