/* maslow._native.cocoeval, match table (included by cocoeval.c, after its buffer helpers): the per-object match
 * table of coco._match_table (its numpy twin) at one area range: for every prediction and truth row, and every IoU
 * threshold, its partner's row, their IoU and a status. The (n, T) outputs are written row after row, each cell
 * once before the matches overwrite theirs (numpy fills them, then writes the statuses, then scatters the matches:
 * three passes over the largest arrays of the table). */

/* MatchTable's status codes (maslow/metrics/_result.py). */
enum { ST_IGNORED = 0, ST_TP = 1, ST_FP = 2, ST_FN = 3, ST_SKIPPED = 4 };

typedef struct {
    Py_ssize_t n_eval, n_e, n_pairs, n_te, n_pred, n_truth;
    int n_t, a;
    const int64_t *rows, *t_idx, *truth_row;     /* (n_eval,), (n_pairs,), (n_te,) */
    const uint8_t *out, *truth_ignored, *id_zero; /* (n_eval,), (n_te,), (n_te,) */
    const int16_t *m_t, *m_a;                    /* (n_e,) the match entries */
    const int32_t *m_pred, *m_pair, *partner, *partner_pair; /* (n_e,), (n_e,), (T, n_te), (T, n_te) */
    const double *iou;                           /* (n_pairs,) */
    int64_t *pred_match, *truth_match;           /* (n_pred, T), (n_truth, T) */
    double *pred_iou, *truth_iou;
    int8_t *pred_status, *truth_status;
} table_ctx;

/* Every cell of the table; -1: an index out of range (or a prediction row evaluated twice), -2: no memory. */
static int table_run(const table_ctx *c) {
    int n_t = c->n_t;
    int32_t *pos_of = malloc(sizeof(int32_t) * ((size_t)c->n_pred + 1)); /* row -> evaluated position, or -1 */
    if (!pos_of) return -2;
    memset(pos_of, 0xff, sizeof(int32_t) * (size_t)c->n_pred);
    int rc = 0;
    for (Py_ssize_t p = 0; p < c->n_eval && !rc; p++) {
        int64_t r = c->rows[p];
        if (r < 0 || r >= c->n_pred || pos_of[r] >= 0) rc = -1;
        else pos_of[r] = (int32_t)p;
    }
    /* predictions: not evaluated -> skipped; evaluated -> FP, or ignored outside the area range; then matches */
    for (Py_ssize_t r = 0; r < c->n_pred && !rc; r++) {
        int8_t st = pos_of[r] < 0 ? ST_SKIPPED : c->out[pos_of[r]] ? ST_IGNORED : ST_FP;
        int64_t *mr = &c->pred_match[r * n_t];
        double *ir = &c->pred_iou[r * n_t];
        int8_t *sr = &c->pred_status[r * n_t];
        for (int t = 0; t < n_t; t++) mr[t] = -1, ir[t] = NAN, sr[t] = st;
    }
    for (Py_ssize_t e = 0; e < c->n_e && !rc; e++) {
        if (c->m_a[e] != c->a) continue;
        int32_t p = c->m_pred[e], pair = c->m_pair[e];
        int t = c->m_t[e];
        if (p < 0 || p >= c->n_eval || pair < 0 || pair >= c->n_pairs || t < 0 || t >= n_t) {
            rc = -1;
            break;
        }
        int64_t g = c->t_idx[pair];
        if (g < 0 || g >= c->n_te) {
            rc = -1;
            break;
        }
        Py_ssize_t cell = c->rows[p] * n_t + t;
        int id_ok = !c->id_zero[g];
        c->pred_match[cell] = c->truth_row[g];
        c->pred_iou[cell] = c->iou[pair];
        c->pred_status[cell] = c->truth_ignored[g] || (!id_ok && c->out[p]) ? ST_IGNORED : id_ok ? ST_TP : ST_FP;
    }
    /* truth: matched -> TP, ignored (crowd, outside the range, no keypoints) -> ignored, else FN; not evaluated
     * -> FN with no partner */
    for (Py_ssize_t i = 0; i < c->n_truth * n_t && !rc; i++)
        c->truth_match[i] = -1, c->truth_iou[i] = NAN, c->truth_status[i] = ST_FN;
    for (Py_ssize_t j = 0; j < c->n_te && !rc; j++) {
        int64_t r = c->truth_row[j];
        if (r < 0 || r >= c->n_truth) {
            rc = -1;
            break;
        }
        for (int t = 0; t < n_t; t++) {
            int32_t p = c->partner[(Py_ssize_t)t * c->n_te + j], pair = c->partner_pair[(Py_ssize_t)t * c->n_te + j];
            if (p >= c->n_eval || (p >= 0 && (pair < 0 || pair >= c->n_pairs))) {
                rc = -1;
                break;
            }
            Py_ssize_t cell = r * n_t + t;
            c->truth_match[cell] = p >= 0 ? c->rows[p] : -1;
            c->truth_iou[cell] = p >= 0 ? c->iou[pair] : NAN;
            c->truth_status[cell] = c->truth_ignored[j] ? ST_IGNORED : p >= 0 ? ST_TP : ST_FN;
        }
    }
    free(pos_of);
    return rc;
}

/* match_table(rows, out, m_t, m_a, m_pred, m_pair, t_idx, iou, truth_row, truth_ignored, id_zero, partner,
 *             partner_pair, pred_match, pred_iou, pred_status, truth_match, truth_iou, truth_status, a, n_t) -> None:
 *   rows (evaluated prediction rows) int64, out (their area outside range a) and truth_ignored, id_zero (of the
 *   evaluated truth objects, at range a) uint8, the match entries as match() writes them (t, a int16; pred, pair
 *   int32), t_idx int64 and iou float64 per pair, truth_row int64, partner and partner_pair (T, n_te) int32
 *   (Matches.truth_partner / truth_pair); outputs (n_pred, T) and (n_truth, T): int64, float64, int8. */
static PyObject *py_match_table(PyObject *self, PyObject *args) {
    enum { N = 19 };
    int a, n_t;
    static const enum kind kinds[N] = {K_I64, K_U8,  K_I16, K_I16, K_I32, K_I32, K_I64, K_F64, K_I64, K_U8,
                                       K_U8,  K_I32, K_I32, K_I64, K_F64, K_U8,  K_I64, K_F64, K_U8};
    static const char *names[N] = {"rows", "out", "m_t", "m_a", "m_pred", "m_pair", "t_idx", "iou", "truth_row",
                                   "truth_ignored", "id_zero", "partner", "partner_pair", "pred_match",
                                   "pred_iou", "pred_status", "truth_match", "truth_iou", "truth_status"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_arrays_ii(args, v, n, kinds, names, N, 13, &a, &n_t) < 0) return NULL;
    table_ctx c = {0};
    c.rows = v[0].buf, c.out = v[1].buf, c.m_t = v[2].buf, c.m_a = v[3].buf, c.m_pred = v[4].buf;
    c.m_pair = v[5].buf, c.t_idx = v[6].buf, c.iou = v[7].buf, c.truth_row = v[8].buf, c.truth_ignored = v[9].buf;
    c.id_zero = v[10].buf, c.partner = v[11].buf, c.partner_pair = v[12].buf, c.pred_match = v[13].buf;
    c.pred_iou = v[14].buf, c.pred_status = v[15].buf, c.truth_match = v[16].buf, c.truth_iou = v[17].buf;
    c.truth_status = v[18].buf;
    c.n_eval = n[0], c.n_e = n[2], c.n_pairs = n[6], c.n_te = n[8], c.a = a, c.n_t = n_t;
    int ok = n_t > 0 && n[13] % n_t == 0 && n[16] % n_t == 0;
    if (ok) c.n_pred = n[13] / n_t, c.n_truth = n[16] / n_t;
    ok = ok && c.n_pred < INT32_MAX && n[1] == c.n_eval && n[3] == c.n_e && n[4] == c.n_e && n[5] == c.n_e &&
         n[7] == c.n_pairs && n[9] == c.n_te && n[10] == c.n_te && n[11] == (Py_ssize_t)n_t * c.n_te &&
         n[12] == n[11] && n[14] == n[13] && n[15] == n[13] && n[17] == n[16] && n[18] == n[16];
    int rc = ok ? 0 : -1;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        rc = table_run(&c);
        Py_END_ALLOW_THREADS
    }
    release_all(v, N);
    if (rc == -2) return PyErr_NoMemory();
    if (rc) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.match_table: inconsistent sizes or index out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}
