/* maslow._native.cocoeval, keypoints (included by cocoeval.c, after its buffer helpers): the object keypoint
 * similarity (OKS) of (prediction, truth) pairs as COCOeval.computeOks computes it, in two steps around numpy's
 * exp (the caller applies np.exp(-e) between them: pycocotools uses numpy's exp, whose last bit may differ from
 * libm's, so the exponential stays numpy's):
 *   oks_terms: per pair, the terms e = (dx**2 + dy**2) / var / (area + eps) / 2 of the keypoints that count (the
 *     truth's labelled ones, v > 0, in keypoint order; with none labelled, all of them, with the distances to a
 *     box twice the truth box), packed at the front of the pair's row;
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

/* oks_terms(d_kp, g_kp, g_xywh, g_area, var, p_idx, t_idx, e, n_used) -> None: d_kp (n_d, K, 3) and g_kp
 * (n_g, K, 3) keypoints (x, y, v), g_xywh (n_g, 4), g_area (n_g,), var (K,) = (2 sigma)**2, p_idx / t_idx
 * (n_pairs,) int64; outputs e (n_pairs, K) float64 (the terms that count first, the rest 0) and n_used
 * (n_pairs,) int64 (how many count). */
static PyObject *py_oks_terms(PyObject *self, PyObject *args) {
    enum { N = 9 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8]))
        return NULL;
    static const enum kind kinds[N] = {K_F64, K_F64, K_F64, K_F64, K_F64, K_I64, K_I64, K_F64, K_I64};
    static const char *names[N] = {"d_kp", "g_kp", "g_xywh", "g_area", "var", "p_idx", "t_idx", "e", "n_used"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 7) < 0) return NULL;
    const double *d_kp = v[0].buf, *g_kp = v[1].buf, *g_xywh = v[2].buf, *g_area = v[3].buf, *var = v[4].buf;
    const int64_t *p_idx = v[5].buf, *t_idx = v[6].buf;
    double *e = v[7].buf;
    int64_t *n_used = v[8].buf;
    Py_ssize_t k = n[4], n_pairs = n[5];
    Py_ssize_t n_d = k ? n[0] / (3 * k) : 0, n_g = k ? n[1] / (3 * k) : 0;
    if (k < 1 || n[0] != n_d * 3 * k || n[1] != n_g * 3 * k || n[2] != 4 * n_g || n[3] != n_g ||
        n[6] != n_pairs || n[7] != n_pairs * k || n[8] != n_pairs) {
        release_all(v, N);
        PyErr_SetString(PyExc_ValueError, "cocoeval.oks_terms: inconsistent array sizes (K >= 1 keypoints)");
        return NULL;
    }
    const double eps = 2.220446049250313e-16; /* np.spacing(1) */
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_pairs; i++) {
        int64_t pd = p_idx[i], tg = t_idx[i];
        if (pd < 0 || pd >= n_d || tg < 0 || tg >= n_g) {
            bad = 1;
            break;
        }
        const double *d = &d_kp[pd * 3 * k], *g = &g_kp[tg * 3 * k], *bb = &g_xywh[tg * 4];
        double *row = &e[i * k], area = g_area[tg] + eps;
        Py_ssize_t used = 0;
        for (Py_ssize_t j = 0; j < k; j++) used += g[3 * j + 2] > 0;
        if (used) {
            Py_ssize_t at = 0;
            for (Py_ssize_t j = 0; j < k; j++) {
                if (!(g[3 * j + 2] > 0)) continue;
                double dx = d[3 * j] - g[3 * j], dy = d[3 * j + 1] - g[3 * j + 1];
                row[at++] = (dx * dx + dy * dy) / var[j] / area / 2;
            }
            for (; at < k; at++) row[at] = 0.0;
        } else { /* no labelled keypoint: the distance to the box twice the truth box, for every keypoint */
            double x0 = bb[0] - bb[2], x1 = bb[0] + bb[2] * 2, y0 = bb[1] - bb[3], y1 = bb[1] + bb[3] * 2;
            for (Py_ssize_t j = 0; j < k; j++) {
                double xd = d[3 * j], yd = d[3 * j + 1];
                double dx = np_max(0.0, x0 - xd) + np_max(0.0, xd - x1);
                double dy = np_max(0.0, y0 - yd) + np_max(0.0, yd - y1);
                row[j] = (dx * dx + dy * dy) / var[j] / area / 2;
            }
            used = k;
        }
        n_used[i] = used;
    }
    Py_END_ALLOW_THREADS
    release_all(v, N);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.oks_terms: p_idx/t_idx out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* oks_sums(ex, n_used, out) -> None: out[i] = sum(ex[i, :n_used[i]]) / n_used[i], numpy's summation order; ex
 * (n_pairs, K) float64 (np.exp(-e) of oks_terms' e), n_used (n_pairs,) int64 in [1, K], out (n_pairs,). */
static PyObject *py_oks_sums(PyObject *self, PyObject *args) {
    enum { N = 3 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OOO", &o[0], &o[1], &o[2])) return NULL;
    static const enum kind kinds[N] = {K_F64, K_I64, K_F64};
    static const char *names[N] = {"ex", "n_used", "out"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 2) < 0) return NULL;
    const double *ex = v[0].buf;
    const int64_t *n_used = v[1].buf;
    double *out = v[2].buf;
    Py_ssize_t n_pairs = n[1], k = n_pairs ? n[0] / n_pairs : 0;
    int bad = n[2] != n_pairs || (n_pairs && n[0] != k * n_pairs);
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n_pairs; i++) {
            if (n_used[i] < 1 || n_used[i] > k) {
                bad = 1;
                break;
            }
            out[i] = pairwise_sum(&ex[i * k], n_used[i]) / (double)n_used[i];
        }
        Py_END_ALLOW_THREADS
    }
    release_all(v, N);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "cocoeval.oks_sums: inconsistent sizes or n_used outside [1, K]");
        return NULL;
    }
    Py_RETURN_NONE;
}
