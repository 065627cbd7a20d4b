/* maslow._native.cocoeval, keypoints (included by cocoeval.c, after its buffer helpers): the object keypoint
 * similarity (OKS) of (prediction, truth) pairs as COCOeval.computeOks computes it, in two steps around numpy's
 * exp (the caller applies np.exp(-e) between them: pycocotools uses numpy's exp, whose last bit may differ from
 * libm's, so the exponential stays numpy's):
 *   oks_terms: per pair, the terms e = (dx**2 + dy**2) / var / (area + eps) / 2 of the keypoints that count (the
 *     truth's labelled ones, v > 0, in keypoint order; with none labelled, all of them, with the distances to a
 *     box twice the truth box), packed pair after pair, save those whose exp is surely 0 (OKS_ZERO_TERM);
 *   oks_sums: per pair, sum(exp(-e)) / len(e), summed in the order of numpy's 1-D np.sum (pairwise: below 8
 *     values one by one from 0.0, up to 128 in 8 interleaved accumulators, beyond that halves rounded down to a
 *     multiple of 8).
 * The numpy twin is _iou.oks_pairs. */

/* numpy's maximum: NaN when either is NaN. */
static inline double np_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a >= b ? a : b); }

/* The sum of a[0:n] in numpy's pairwise order. */
static double pairwise_sum(const double *a, Py_ssize_t n) {
    if (n < 8) {
        double res = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        Py_ssize_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* numpy's exp(-e) is 0.0 for every e above 745.1332... (the result rounds to 0; any exp within an ulp of the
 * true value gives 0 well before 760), and numpy's SIMD exp takes a slow path for such lanes, and for the subnormal
 * results below them: in a COCO-like case where 12% of the terms are that far, they made np.exp 7x slower. The kernel
 * stores no term above OKS_ZERO_TERM (oks_sums puts 0.0 in its place), so numpy only sees the terms it can round. */
#define OKS_ZERO_TERM 760.0

/* A pair whose OKS is surely below min_oks never matches (pycocotools' `if ious[...] < iou: continue`): each term
 * of e >= 3 adds at most OKS_FAR_EXP (exp(-3) = 0.049787... rounded up) to the sum, any other (e >= 0: the truth's
 * area is positive) at most 1, and the slack 1e-9 covers the rounding of numpy's exp and of the sum. */
#define OKS_FAR_TERM 3.0
#define OKS_FAR_EXP 0.0498

/* The bound of a pair's OKS from how many of its `used` terms are below OKS_FAR_TERM, slack included. */
static inline double oks_bound(Py_ssize_t close, Py_ssize_t used) {
    return ((double)close + (double)(used - close) * OKS_FAR_EXP) / (double)used * (1 + 1e-9);
}

/* dx**2 + dy**2 of keypoint j of prediction d: to the truth's keypoint (g), or, when the truth has none labelled,
 * to the box twice the truth box (box2: x0, x1, y0, y1; numpy's maximum, NaN-propagating, as pycocotools). */
static inline double oks_dist2(const double *d, const double *g, const double *box2, int labelled, Py_ssize_t j) {
    double dx, dy;
    if (labelled) {
        dx = d[3 * j] - g[3 * j], dy = d[3 * j + 1] - g[3 * j + 1];
    } else {
        double xd = d[3 * j], yd = d[3 * j + 1];
        dx = np_max(0.0, box2[0] - xd) + np_max(0.0, xd - box2[1]);
        dy = np_max(0.0, box2[2] - yd) + np_max(0.0, yd - box2[3]);
    }
    return dx * dx + dy * dy;
}

/* oks_terms(d_kp, d_rows, g_kp, g_rows, g_xywh, g_area, var, p_idx, t_idx, min_oks, e, n_used, zero) -> int:
 * d_kp (N_d, K, 3) and g_kp (N_g, K, 3) keypoints (x, y, v), read in place: evaluated prediction p is row
 * d_rows[p] of d_kp, truth object t row g_rows[t] of g_kp (no gathered copies); g_xywh (n_g, 4), g_area (n_g,)
 * by evaluated truth object, var (K,) = (2 sigma)**2, p_idx / t_idx (n_pairs,) int64 the pairs; outputs n_used
 * (n_pairs,) int64 (how many terms count; 0: the pair's OKS is surely below min_oks, its terms are not kept), zero
 * (n_pairs, K) uint8 (1 at a term that counts and is above OKS_ZERO_TERM: its exp is 0, it is not stored; only
 * the first n_used of a row are written) and e (n_pairs * K,) float64: the other terms that count, pair after
 * pair, packed at the front. Returns how many were stored. The terms are packed branch-free: each is computed and
 * written, and the write position moves on only for one that is kept (the labelled keypoints come in a random
 * order). */
static PyObject *py_oks_terms(PyObject *self, PyObject *args) {
    enum { N = 12 };
    PyObject *o[N];
    double min_oks;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOdOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &min_oks, &o[9], &o[10], &o[11]))
        return NULL;
    static const enum kind kinds[N] = {K_F64, K_I64, K_F64, K_I64, K_F64, K_F64,
                                       K_F64, K_I64, K_I64, K_F64, K_I64, K_U8};
    static const char *names[N] = {"d_kp",  "d_rows", "g_kp", "g_rows", "g_xywh", "g_area",
                                   "var",   "p_idx",  "t_idx", "e",     "n_used", "zero"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 9) < 0) return NULL;
    const double *d_kp = v[0].buf, *g_kp = v[2].buf, *g_xywh = v[4].buf, *g_area = v[5].buf, *var = v[6].buf;
    const int64_t *d_rows = v[1].buf, *g_rows = v[3].buf, *p_idx = v[7].buf, *t_idx = v[8].buf;
    double *e = v[9].buf;
    int64_t *n_used = v[10].buf;
    uint8_t *zero = v[11].buf;
    Py_ssize_t k = n[6], n_pairs = n[7], n_d = n[1], n_g = n[3];
    Py_ssize_t rows_d = k ? n[0] / (3 * k) : 0, rows_g = k ? n[2] / (3 * k) : 0;
    if (k < 1 || n[0] != rows_d * 3 * k || n[2] != rows_g * 3 * k || n[4] != 4 * n_g || n[5] != n_g ||
        n[8] != n_pairs || n[9] != n_pairs * k || n[10] != n_pairs || n[11] != n_pairs * k) {
        release_all(v, N);
        PyErr_SetString(PyExc_ValueError, "cocoeval.oks_terms: inconsistent array sizes (K >= 1 keypoints)");
        return NULL;
    }
    const double eps = 2.220446049250313e-16; /* np.spacing(1) */
    int bad = 0;
    Py_ssize_t c = 0; /* terms stored; c <= the terms computed before the current one, so e[c] is in bounds */
    double *inv_var = PyMem_RawMalloc(sizeof(double) * (size_t)k);
    /* far_limit[u]: with u terms counting, the fewest far ones (approximate term >= OKS_FAR_TERM) that make the
     * bound fall below min_oks (u + 1: none do); the bound only falls as far ones are added, so the first pass
     * stops at that many: the pair is left out as it would be after all of its terms */
    Py_ssize_t *far_limit = PyMem_RawMalloc(sizeof(Py_ssize_t) * ((size_t)k + 1));
    /* per truth object, its labelled keypoints (-1: not counted yet): counted once, not once per pair */
    int32_t *labelled_of = PyMem_RawMalloc(sizeof(int32_t) * ((size_t)n_g + 1));
    if (labelled_of) memset(labelled_of, 0xff, sizeof(int32_t) * (size_t)n_g);
    for (Py_ssize_t u = 0; far_limit && u <= k; u++) {
        far_limit[u] = u + 1;
        for (Py_ssize_t f = 0; u && f <= u; f++)
            if (oks_bound(u - f, u) < min_oks) {
                far_limit[u] = f;
                break;
            }
    }
    if (!inv_var || !far_limit || !labelled_of) {
        PyMem_RawFree(inv_var);
        PyMem_RawFree(far_limit);
        PyMem_RawFree(labelled_of);
        release_all(v, N);
        return PyErr_NoMemory();
    }
    /* the bound's first pass multiplies by 1 / var where every var is a normal number not too close to 0 */
    int quick = 1;
    for (Py_ssize_t j = 0; j < k; j++) {
        quick = quick && isfinite(var[j]) && var[j] >= 1e-300;
        inv_var[j] = quick ? 1 / var[j] : 0.0;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_pairs; i++) {
        int64_t pd = p_idx[i], tg = t_idx[i];
        if (pd < 0 || pd >= n_d || tg < 0 || tg >= n_g) {
            bad = 1;
            break;
        }
        if (i + 8 < n_pairs && p_idx[i + 8] != p_idx[i + 7]) { /* the prediction 8 pairs ahead, fetched early: */
            int64_t pa = p_idx[i + 8], ra = pa >= 0 && pa < n_d ? d_rows[pa] : -1; /* its row is anywhere */
            for (Py_ssize_t b = 0; ra >= 0 && ra < rows_d && b < 3 * k + 7; b += 8)
                __builtin_prefetch(&d_kp[ra * 3 * k + (b < 3 * k ? b : 3 * k - 1)]);
        }
        int64_t rd = d_rows[pd], rg = g_rows[tg];
        if (rd < 0 || rd >= rows_d || rg < 0 || rg >= rows_g) {
            bad = 1;
            break;
        }
        const double *d = &d_kp[rd * 3 * k], *g = &g_kp[rg * 3 * k], *bb = &g_xywh[tg * 4];
        /* with no labelled keypoint: the distances to the box twice the truth box, for every keypoint */
        const double box2[4] = {bb[0] - bb[2], bb[0] + bb[2] * 2, bb[1] - bb[3], bb[1] + bb[3] * 2};
        uint8_t *z = &zero[i * k];
        double area = g_area[tg] + eps;
        Py_ssize_t used = labelled_of[tg], close = 0, c0 = c;
        if (used < 0) {
            used = 0;
            for (Py_ssize_t j = 0; j < k; j++) used += g[3 * j + 2] > 0;
            labelled_of[tg] = (int32_t)used;
        }
        int labelled = used > 0;
        if (!labelled) used = k;
        /* the bound reasons on terms >= 0 (exp at most 1): applied only with a positive truth area */
        int bounded = min_oks > 0 && area > 0;
        if (bounded && quick && isfinite(area) && area >= 1e-300) {
            /* products for the two divisions (a few ulps off, far below the bound's slack): most pairs of an
             * image are far apart, and their exact terms are then never computed */
            double half_inv_area = 0.5 / area;
            Py_ssize_t far = 0, limit = far_limit[used];
            for (Py_ssize_t j = 0; j < k && far < limit; j++)
                far += (!labelled || g[3 * j + 2] > 0) &
                       !(oks_dist2(d, g, box2, labelled, j) * inv_var[j] * half_inv_area < OKS_FAR_TERM * (1 + 1e-9));
            if (far >= limit) {
                n_used[i] = 0; /* never matches: left out */
                continue;
            }
        }
        Py_ssize_t at = 0; /* <= j: the flag of an unlabelled keypoint is overwritten by the next labelled one */
        for (Py_ssize_t j = 0; j < k; j++) {
            double t = oks_dist2(d, g, box2, labelled, j) / var[j] / area / 2;
            int keep = !labelled || g[3 * j + 2] > 0, far = t > OKS_ZERO_TERM;
            z[at] = (uint8_t)far;
            e[c] = t;
            c += keep & !far;
            at += keep;
            close += keep & (t < OKS_FAR_TERM);
        }
        if (bounded && oks_bound(close, used) < min_oks) {
            used = 0; /* never matches: left out */
            c = c0;
        }
        n_used[i] = used;
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(inv_var);
    PyMem_RawFree(far_limit);
    PyMem_RawFree(labelled_of);
    release_all(v, N);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.oks_terms: p_idx/t_idx or d_rows/g_rows out of range");
        return NULL;
    }
    return PyLong_FromSsize_t(c);
}

/* oks_sums(ex, n_used, zero, out) -> None: out[i] = sum(row) / n_used[i] in numpy's summation order, where row is
 * pair i's n_used[i] terms' exp: 0.0 where zero is set, else the next value of ex (np.exp(-e) of the terms
 * oks_terms stored, all of them: its return value long); n_used (n_pairs,) int64 in [0, K] (0: a pair left out,
 * out[i] not written), zero (n_pairs, K) uint8, out (n_pairs,). */
static PyObject *py_oks_sums(PyObject *self, PyObject *args) {
    enum { N = 4 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OOOO", &o[0], &o[1], &o[2], &o[3])) return NULL;
    static const enum kind kinds[N] = {K_F64, K_I64, K_U8, K_F64};
    static const char *names[N] = {"ex", "n_used", "zero", "out"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 3) < 0) return NULL;
    const double *ex = v[0].buf;
    const int64_t *n_used = v[1].buf;
    const uint8_t *zero = v[2].buf;
    double *out = v[3].buf;
    Py_ssize_t n_pairs = n[1], k = n_pairs ? n[2] / n_pairs : 0, m = n[0], c = 0;
    int bad = n[3] != n_pairs || (n_pairs && n[2] != k * n_pairs), oom = 0;
    double *row = bad || !k ? NULL : PyMem_RawMalloc(sizeof(double) * (size_t)k);
    if (!bad && k && !row) oom = 1;
    if (!bad && !oom) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n_pairs && !bad; i++) {
            Py_ssize_t u = n_used[i];
            if (!u) continue;
            if (u < 0 || u > k) {
                bad = 1;
                break;
            }
            const uint8_t *z = &zero[i * k];
            for (Py_ssize_t j = 0; j < u; j++) {
                if (z[j]) {
                    row[j] = 0.0;
                } else if (c < m) {
                    row[j] = ex[c++];
                } else {
                    bad = 1;
                    break;
                }
            }
            if (!bad) out[i] = pairwise_sum(row, u) / (double)u;
        }
        bad |= c != m;
        Py_END_ALLOW_THREADS
    }
    PyMem_RawFree(row);
    release_all(v, N);
    if (oom) return PyErr_NoMemory();
    if (bad) {
        PyErr_SetString(PyExc_ValueError,
                        "cocoeval.oks_sums: inconsistent sizes, n_used outside [0, K], or ex not as long as the terms");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* keypoint_extents(kp, out) -> None: kp (n, K, 3) float64, out (n,): (max x - min x) * (max y - min y) over the K
 * keypoints of each row (the box around all of them, labelled or not: COCO.loadRes' area), NaN where a coordinate
 * is NaN (numpy's max and min propagate it). numpy's reductions over the strided K axis took 10 ms for 50k rows. */
static PyObject *py_keypoint_extents(PyObject *self, PyObject *args) {
    enum { N = 2 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OO", &o[0], &o[1])) return NULL;
    static const enum kind kinds[N] = {K_F64, K_F64};
    static const char *names[N] = {"kp", "out"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 1) < 0) return NULL;
    const double *kp = v[0].buf;
    double *out = v[1].buf;
    Py_ssize_t rows = n[1], k = rows ? n[0] / (3 * rows) : 0;
    if (rows && (k < 1 || n[0] != rows * 3 * k)) {
        release_all(v, N);
        PyErr_SetString(PyExc_ValueError, "cocoeval.keypoint_extents: kp must be (n, K, 3) with K >= 1, out (n,)");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < rows; i++) {
        const double *p = &kp[i * 3 * k];
        double x0 = p[0], x1 = p[0], y0 = p[1], y1 = p[1];
        int nan = 0;
        for (Py_ssize_t j = 0; j < k; j++) {
            double x = p[3 * j], y = p[3 * j + 1];
            nan |= isnan(x) | isnan(y);
            x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
            y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
        }
        out[i] = nan ? NAN : (x1 - x0) * (y1 - y0);
    }
    Py_END_ALLOW_THREADS
    release_all(v, N);
    Py_RETURN_NONE;
}
