/* maslow._native.cocoeval, accumulation (included by cocoeval.c, after its buffer helpers): COCOeval.accumulate.
 * One walk over the predictions in accumulation order, class by class; each prediction is a 64-bit code (class,
 * matched, within each maxDets, outside each area range; its slot) and, when matched, two 64-bit threshold masks
 * per area range, so the walk touches little memory; outputs are written a block of KB classes at a time. */

#define KB 8 /* classes per block of output rows (class_end) */

/* -- accumulation ------------------------------------------------------------------------------------ */

typedef struct {
    Py_ssize_t n, n_e;
    int n_t, n_r, n_k, n_a, n_m;
    const int32_t *k, *rank, *order; /* by prediction, int32 (as pred_orders writes them) */
    const int64_t *n_pos, *max_dets;
    const int16_t *m_t, *m_a; /* the match entries, as match() writes them */
    const int32_t *m_pred;
    const double *score, *rec_thr;
    const uint8_t *out, *m_tp, *m_ig;    /* out: (A, n) */
    double *precision, *recall, *scores; /* (T, R, K, A, M), (T, K, A, M), (T, R, K, A, M) */
} acc_ctx;

/* One prediction as the walk reads it, packed in 64 bits (built in prediction order; the walk reads the codes of an
 * 8-byte-per-prediction table in accumulation order, its only random read for an unmatched prediction): class
 * (15 bits, K <= 32767), matched (bit 15: has a slot in the masks), bit 16 + mi: rank in its group <
 * max_dets[mi] (M <= 8), bit 24 + a: area outside range a (A <= 8); bits 32-63: the slot, when matched. */
#define CODE_K(x) ((int)((x) & 0x7fffu))
#define CODE_MATCHED(x) (((x) >> 15) & 1u)
#define CODE_IN_M(x) (((x) >> 16) & 0xffu)
#define CODE_OUT(x) ((uint32_t)((x) >> 24) & 0xffu)

/* The thresholds of one (matched prediction, area range): bit t of tp, a true positive at threshold t
 * (T <= 64); of free, not matched (or matched to a truth object of id 0). 16 bytes: A = 4 in one cache line. */
typedef struct {
    uint64_t tp, free;
} mask_pair;

typedef struct {
    uint64_t *code;  /* (n,) by prediction: the code, and in the high 32 bits the slot (when matched) */
    int32_t *slot;   /* (n,) by prediction: row in the masks, -1: matched nowhere */
    mask_pair *mask; /* (n_slots, A) */
    int64_t *need;   /* (K, A, R) true positives needed to reach each recall threshold (0: position 0) */
    double *pr, *sc; /* (M, A, T, cap) precision and score at each true positive of the current class */
    int64_t cap;
    int64_t *n_tp, *fp, *fp_free, *nd; /* (M, A, T), (M, A, T), (M, A), (M,) running counts of the walk */
    double *top;                       /* (M,) score at position 0 */
    double *cell_p, *cell_s, *cell_r;  /* a block of KB classes: (T, R, KB, A, M), (T, R, KB, A, M), (T, KB, A, M) */
} acc_work;

/* The prediction codes and, for every matched prediction and area range, its masks: the thresholds where it is
 * a TP (truth object not ignored, id not 0) and where it is free (no match, or a truth object of id 0:
 * pycocotools' dtm holds the id, 0); the rest are matches to ignored truth objects. Slots are numbered as the
 * match entries come (prediction order: sequential writes). -2: index out of range, -1: no memory. */
static int gather(const acc_ctx *c, acc_work *w) {
    Py_ssize_t n = c->n;
    int n_a = c->n_a, rc = 0;
    size_t max_slots = (size_t)(n < c->n_e ? n : c->n_e) + 1;
    w->mask = big_alloc(sizeof(mask_pair) * max_slots * n_a); /* only the pages of the slots used are touched */
    if (!w->mask) return -1;
    memset(w->slot, 0xff, sizeof(int32_t) * (size_t)n);
    uint64_t all = c->n_t == 64 ? ~(uint64_t)0 : ((uint64_t)1 << c->n_t) - 1;
    int32_t n_slots = 0;
    for (Py_ssize_t e = 0; e < c->n_e; e++) {
        int64_t p = c->m_pred[e];
        if (p < 0 || p >= n || c->m_t[e] < 0 || c->m_t[e] >= c->n_t || c->m_a[e] < 0 || c->m_a[e] >= n_a) return -2;
        if (!(c->m_tp[e] || c->m_ig[e])) continue;
        int32_t s = w->slot[p];
        if (s < 0) {
            s = w->slot[p] = n_slots++;
            for (int a = 0; a < n_a; a++) w->mask[(size_t)s * n_a + a].tp = 0, w->mask[(size_t)s * n_a + a].free = all;
        }
        mask_pair *mp = &w->mask[(size_t)s * n_a + c->m_a[e]];
        uint64_t bit = (uint64_t)1 << c->m_t[e];
        mp->free &= ~bit;
        if (c->m_tp[e]) mp->tp |= bit;
    }
    for (Py_ssize_t p = 0; p < n && !rc; p++) {
        if (c->k[p] < 0 || c->k[p] >= c->n_k || c->rank[p] < 0) return -2;
        uint32_t x = (uint32_t)c->k[p] | (uint32_t)(w->slot[p] >= 0) << 15;
        for (int mi = 0; mi < c->n_m; mi++) x |= (uint32_t)(c->rank[p] < c->max_dets[mi]) << (16 + mi);
        for (int a = 0; a < n_a; a++) x |= (uint32_t)(c->out[(Py_ssize_t)a * n + p] != 0) << (24 + a);
        w->code[p] = x | (uint64_t)(uint32_t)w->slot[p] << 32;
    }
    return rc;
}

/* need[k, a, r]: the smallest n >= 1 with n / npig >= r in float64 (searchsorted(rc, r, "left") lands on the
 * n-th true positive), 0 for r <= 0 (position 0, whatever it holds), npig + 1 when unreachable. */
static void recall_needs(const acc_ctx *c, acc_work *w) {
    for (int ka = 0; ka < c->n_k * c->n_a; ka++) {
        double npig = (double)c->n_pos[ka];
        for (int r = 0; r < c->n_r; r++) {
            double thr = c->rec_thr[r];
            int64_t *out = &w->need[(Py_ssize_t)ka * c->n_r + r];
            if (thr <= 0 || c->n_pos[ka] <= 0) {
                *out = thr <= 0 ? 0 : 1;
                continue;
            }
            double est = ceil(thr * npig);
            int64_t n = est < 1 ? 1 : est > npig + 1 ? (int64_t)npig + 1 : (int64_t)est;
            while (n > 1 && (double)(n - 1) / npig >= thr) n--;
            while (n <= c->n_pos[ka] && (double)n / npig < thr) n++;
            *out = n;
        }
    }
}

/* The precision envelope of one cell and its reads at the recall thresholds (accumulate's "q" and "ss"), into
 * the class buffers. */
static void read_cell(const acc_ctx *c, const acc_work *w, int k, int a, int t, int mi) {
    int am = a * c->n_m + mi, n_am = c->n_a * c->n_m, mat = (mi * c->n_a + a) * c->n_t + t;
    double *pr = &w->pr[mat * w->cap], *sc = &w->sc[mat * w->cap];
    int64_t m = w->n_tp[mat], nd = w->nd[mi];
    const int64_t *need = &w->need[((Py_ssize_t)k * c->n_a + a) * c->n_r];
    for (int64_t i = m - 1; i > 0; i--) /* "if pr[i] > pr[i-1]: pr[i-1] = pr[i]" (only TPs can raise it) */
        pr[i - 1] = pr[i] > pr[i - 1] ? pr[i] : pr[i - 1];
    int kb = k % KB;
    w->cell_r[(t * KB + kb) * n_am + am] = (double)m / (double)c->n_pos[k * c->n_a + a]; /* rc[-1] */
    for (int r = 0; r < c->n_r; r++) { /* the bare try/except: the first unreachable threshold ends the fill */
        Py_ssize_t cell = (((Py_ssize_t)t * c->n_r + r) * KB + kb) * n_am + am;
        if (need[r] == 0 && nd > 0) { /* r <= 0: position 0 */
            w->cell_p[cell] = m ? pr[0] : 0.0;
            w->cell_s[cell] = w->top[mi];
        } else if (need[r] > 0 && need[r] <= m) {
            w->cell_p[cell] = pr[need[r] - 1];
            w->cell_s[cell] = sc[need[r] - 1];
        } else {
            break; /* the rest stays 0 */
        }
    }
}

/* One prediction p of the walk at maxDets index mi: the tps/fps cumsums per (area range, threshold), and at each
 * TP its precision tp / (fp + tp + eps) and score. -2: more TPs than truth objects (inconsistent input). */
static int walk_step(const acc_ctx *c, acc_work *w, Py_ssize_t p, uint64_t x, int mi) {
    const double eps = 2.220446049250313e-16; /* np.spacing(1) */
    int n_t = c->n_t, n_a = c->n_a;
    uint32_t out = CODE_OUT(x);
    int64_t *fp_free = &w->fp_free[mi * n_a];
    if (!w->nd[mi]++) w->top[mi] = c->score[p];
    if (!CODE_MATCHED(x)) { /* unmatched: FP at every threshold, or ignored when outside the area range */
        for (int a = 0; a < n_a; a++) fp_free[a] += !((out >> a) & 1u);
        return 0;
    }
    const mask_pair *mk = &w->mask[(size_t)(x >> 32) * n_a];
    double score = c->score[p];
    for (int a = 0; a < n_a; a++) {
        int mat = (mi * n_a + a) * n_t;
        int64_t *fp = &w->fp[mat], *n_tp = &w->n_tp[mat];
        uint64_t free = mk[a].free, tp = mk[a].tp;
        if (!((out >> a) & 1))
            for (; free; free &= free - 1) fp[__builtin_ctzll(free)]++;
        for (; tp; tp &= tp - 1) {
            int t = __builtin_ctzll(tp);
            if (n_tp[t] >= w->cap) return -2;
            double tps = (double)++n_tp[t];
            w->pr[(mat + t) * w->cap + n_tp[t] - 1] = tps / (((double)(fp_free[a] + fp[t]) + tps) + eps);
            w->sc[(mat + t) * w->cap + n_tp[t] - 1] = score;
        }
    }
    return 0;
}

/* Start class k: every cell -1 without truth objects, else 0 (a class with truth but no prediction stays 0). */
static void class_begin(const acc_ctx *c, acc_work *w, int k) {
    int kb = k % KB, n_am = c->n_a * c->n_m, n_mat = c->n_m * c->n_a * c->n_t;
    double row[n_am]; /* the value of each (a, m) cell, the same for every (t, r) */
    for (int a = 0; a < c->n_a; a++)
        for (int mi = 0; mi < c->n_m; mi++) row[a * c->n_m + mi] = c->n_pos[k * c->n_a + a] > 0 ? 0.0 : -1.0;
    for (int tr = 0; tr < c->n_t * c->n_r; tr++)
        for (int i = 0; i < n_am; i++) w->cell_p[(tr * KB + kb) * n_am + i] = w->cell_s[(tr * KB + kb) * n_am + i] =
                                            row[i];
    for (int t = 0; t < c->n_t; t++)
        for (int i = 0; i < n_am; i++) w->cell_r[(t * KB + kb) * n_am + i] = row[i];
    memset(w->n_tp, 0, sizeof(int64_t) * (size_t)n_mat);
    memset(w->fp, 0, sizeof(int64_t) * (size_t)n_mat);
    memset(w->fp_free, 0, sizeof(int64_t) * (size_t)c->n_m * c->n_a);
    memset(w->nd, 0, sizeof(int64_t) * (size_t)c->n_m);
}

/* Finish class k: every cell's reads; at the end of a block of KB classes (or at the last class), the block's
 * rows copied into the pycocotools-shaped outputs (KB * A * M contiguous values per (t, r): whole cache lines,
 * where one class's A * M values would share lines with its neighbours and write each line twice). */
static void class_end(const acc_ctx *c, acc_work *w, int k) {
    int n_am = c->n_a * c->n_m, kb = k % KB;
    for (int a = 0; a < c->n_a; a++) {
        if (c->n_pos[k * c->n_a + a] <= 0) continue; /* no truth object: the cell keeps -1 */
        for (int mi = 0; mi < c->n_m; mi++)
            for (int t = 0; t < c->n_t; t++) read_cell(c, w, k, a, t, mi);
    }
    if (kb != KB - 1 && k != c->n_k - 1) return;
    int k0 = k - kb;
    size_t row = sizeof(double) * (size_t)(kb + 1) * n_am;
    for (int tr = 0; tr < c->n_t * c->n_r; tr++) {
        Py_ssize_t at = ((Py_ssize_t)tr * c->n_k + k0) * n_am, from = (Py_ssize_t)tr * KB * n_am;
        memcpy(&c->precision[at], &w->cell_p[from], row);
        memcpy(&c->scores[at], &w->cell_s[from], row);
    }
    for (int t = 0; t < c->n_t; t++)
        memcpy(&c->recall[((Py_ssize_t)t * c->n_k + k0) * n_am], &w->cell_r[(Py_ssize_t)t * KB * n_am], row);
}

/* One walk over the accumulation order (class, -score, image, rank): classes come in increasing order (-2
 * otherwise); each prediction counts for every maxDets it is within; classes without predictions get their
 * -1/0 cells too. */
static int walk(const acc_ctx *c, acc_work *w) {
    int k = -1, rc = 0;
    for (Py_ssize_t i = 0; i < c->n && !rc; i++) {
        if (i + 32 < c->n && (uint64_t)c->order[i + 32] < (uint64_t)c->n)
            __builtin_prefetch(&w->code[c->order[i + 32]]);
        /* 12 ahead, its code (prefetched 20 steps ago) is in cache: when matched, its masks and score (an
         * unmatched prediction needs neither: most of them) */
        if (i + 12 < c->n && (uint64_t)c->order[i + 12] < (uint64_t)c->n) {
            int64_t q = c->order[i + 12];
            uint64_t xq = w->code[q];
            if (CODE_MATCHED(xq)) {
                const mask_pair *mk = &w->mask[(size_t)(xq >> 32) * c->n_a];
                __builtin_prefetch(mk), __builtin_prefetch(&mk[c->n_a - 1]), __builtin_prefetch(&c->score[q]);
            }
        }
        int64_t p = c->order[i];
        if (p < 0 || p >= c->n) return -2;
        uint64_t x = w->code[p];
        if (CODE_K(x) < k) return -2;
        while (k < CODE_K(x)) {
            if (k >= 0) class_end(c, w, k);
            class_begin(c, w, ++k);
        }
        for (uint32_t in_m = CODE_IN_M(x); in_m && !rc; in_m &= in_m - 1)
            rc = walk_step(c, w, p, x, __builtin_ctz(in_m));
    }
    if (rc) return rc;
    if (k >= 0) class_end(c, w, k);
    while (++k < c->n_k) {
        class_begin(c, w, k);
        class_end(c, w, k);
    }
    return 0;
}

static int accumulate_run(const acc_ctx *c) {
    acc_work w = {0};
    int64_t cap = 1;
    for (int i = 0; i < c->n_k * c->n_a; i++) cap = c->n_pos[i] > cap ? c->n_pos[i] : cap;
    w.cap = cap;
    size_t n_trm = (size_t)c->n_t * c->n_r * c->n_a * c->n_m, n_mat = (size_t)c->n_m * c->n_a * c->n_t;
    w.code = big_alloc(sizeof(uint64_t) * ((size_t)c->n + 1));
    w.slot = big_alloc(sizeof(int32_t) * ((size_t)c->n + 1));
    w.need = malloc(sizeof(int64_t) * (size_t)c->n_k * c->n_a * c->n_r + 8);
    w.pr = malloc(sizeof(double) * n_mat * cap); /* rows of cap, each written only as far as its TPs go */
    w.sc = malloc(sizeof(double) * n_mat * cap);
    w.n_tp = malloc(sizeof(int64_t) * n_mat);
    w.fp = malloc(sizeof(int64_t) * n_mat);
    w.fp_free = malloc(sizeof(int64_t) * (size_t)c->n_m * c->n_a);
    w.nd = malloc(sizeof(int64_t) * (size_t)c->n_m);
    w.top = malloc(sizeof(double) * (size_t)c->n_m);
    w.cell_p = malloc(sizeof(double) * n_trm * KB);
    w.cell_s = malloc(sizeof(double) * n_trm * KB);
    w.cell_r = malloc(sizeof(double) * (size_t)c->n_t * c->n_a * c->n_m * KB);
    int rc = (!w.code || !w.slot || !w.need || !w.pr || !w.sc || !w.n_tp || !w.fp || !w.fp_free || !w.nd || !w.top ||
              !w.cell_p || !w.cell_s || !w.cell_r) ? -1 : 0;
    if (!rc) rc = gather(c, &w);
    if (!rc) recall_needs(c, &w);
    if (!rc) rc = walk(c, &w);
    void *bufs[] = {w.code, w.slot, w.mask, w.need, w.pr, w.sc, w.n_tp, w.fp, w.fp_free, w.nd, w.top,
                    w.cell_p, w.cell_s, w.cell_r};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) free(bufs[i]);
    return rc;
}

/* accumulate(k, rank, acc_order, score, pred_out, match_t, match_a, match_pred, match_tp, match_ignored,
 *            n_pos, recall_thresholds, max_dets, precision, recall, scores, n_thresholds, n_classes) -> None;
 *   k, rank and acc_order int32 (as pred_orders writes them), match_t/match_a int16 and match_pred int32 (as
 *   match() writes them), n_pos and max_dets int64;
 *   n_pos is (K, A) and pred_out (A, n), T <= 64, K < 2**15, A <= 8, M <= 8; the three outputs are
 *   pycocotools-shaped float64 arrays (T, R, K, A, M), (T, K, A, M), (T, R, K, A, M), every cell written here. */
static PyObject *py_accumulate(PyObject *self, PyObject *args) {
    enum { N = 16 };
    int n_t, n_k;
    static const enum kind kinds[N] = {K_I32, K_I32, K_I32, K_F64, K_U8, K_I16, K_I16, K_I32,
                                       K_U8,  K_U8,  K_I64, K_F64, K_I64, K_F64, K_F64, K_F64};
    static const char *names[N] = {"k", "rank", "acc_order", "score", "pred_out", "match_t", "match_a",
                                   "match_pred", "match_tp", "match_ignored", "n_pos", "recall_thresholds",
                                   "max_dets", "precision", "recall", "scores"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_arrays_ii(args, v, n, kinds, names, N, 13, &n_t, &n_k) < 0) return NULL;
    acc_ctx c = {0};
    c.k = v[0].buf, c.rank = v[1].buf, c.order = v[2].buf, c.score = v[3].buf, c.out = v[4].buf;
    c.m_t = v[5].buf, c.m_a = v[6].buf, c.m_pred = v[7].buf, c.m_tp = v[8].buf, c.m_ig = v[9].buf;
    c.n_pos = v[10].buf, c.rec_thr = v[11].buf, c.max_dets = v[12].buf;
    c.precision = v[13].buf, c.recall = v[14].buf, c.scores = v[15].buf;
    c.n = n[0], c.n_e = n[5], c.n_r = (int)n[11], c.n_m = (int)n[12], c.n_t = n_t, c.n_k = n_k;
    c.n_a = n_k > 0 ? (int)(n[10] / n_k) : 0;
    Py_ssize_t tkam = (Py_ssize_t)n_t * n_k * c.n_a * c.n_m;
    int ok = n_t > 0 && n_t <= 64 && n_k > 0 && n_k <= 32767 && c.n_a > 0 && c.n_a <= 8 && c.n_m <= 8 &&
             c.n < INT32_MAX && n[10] == (Py_ssize_t)n_k * c.n_a && n[1] == c.n && n[2] == c.n &&
             n[3] == c.n && n[4] == c.n_a * c.n && n[6] == c.n_e && n[7] == c.n_e && n[8] == c.n_e &&
             n[9] == c.n_e && c.n_m > 0 && c.n_r > 0 && n[14] == tkam && n[13] == tkam * c.n_r && n[15] == n[13];
    int rc = ok ? 0 : -3;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        rc = accumulate_run(&c);
        Py_END_ALLOW_THREADS
    }
    release_all(v, N);
    if (rc == -1) return PyErr_NoMemory();
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.accumulate: index out of range or classes not contiguous in "
                                          "acc_order, or more true positives than truth objects");
        return NULL;
    }
    if (rc == -3) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.accumulate: inconsistent array sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}
