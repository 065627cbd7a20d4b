/* coco_obb.h: IoU of oriented boxes (convex quadrilaterals), included by cocoeval.c (metrics._obb.iou_pairs).
 *
 * obb_iou_pairs(p_corners, t_corners, p_area, t_area, p_idx, t_idx, crowd, out): for every pair i,
 * out[i] = area(P & T) / (p_area + t_area - area(P & T)), or / p_area where crowd[t_idx[i]] (a crowd region: the
 * prediction's area alone, as pycocotools' crowd IoU); 0 when the union is not positive. P and T are rows
 * p_idx[i], t_idx[i] of the (n, 4, 2) corner arrays, each counter-clockwise in the y-up sense (non-negative
 * signed area: the caller orders them). P & T: P clipped by each edge of T in turn (Sutherland-Hodgman; a point
 * on an edge is inside), its area by the shoelace formula summed in vertex order. The float64 operations and
 * their order are those of metrics._obb._numpy_iou_pairs, so both give the same numbers bit for bit. Quads whose
 * axis-aligned extents are apart are not clipped (0).
 */

#define OBB_MAX 16 /* vertices of a clipped polygon: 4 + 4 in exact arithmetic; room for degenerate duplicates (the
                    * numpy twin's _WIDTH: beyond it both drop the later vertices) */

/* Clip polygon (x, y, *n) by the line through a -> b, keeping its left side (cross >= 0), into (ox, oy). */
static inline int obb_clip(const double *x, const double *y, int n, double ax, double ay, double bx, double by,
                           double *ox, double *oy) {
    double ex = bx - ax, ey = by - ay;
    int m = 0;
    if (n == 0) return 0;
    double px = x[n - 1], py = y[n - 1];
    double cp = ex * (py - ay) - ey * (px - ax);
    for (int k = 0; k < n; k++) {
        double cx = x[k], cy = y[k];
        double cc = ex * (cy - ay) - ey * (cx - ax);
        int cin = cc >= 0, pin = cp >= 0;
        if (cin != pin && m < OBB_MAX) {
            double t = cp / (cp - cc);
            ox[m] = px + t * (cx - px);
            oy[m] = py + t * (cy - py);
            m++;
        }
        if (cin && m < OBB_MAX) {
            ox[m] = cx, oy[m] = cy;
            m++;
        }
        px = cx, py = cy, cp = cc;
    }
    return m;
}

static double obb_intersection(const double *p, const double *q) {
    double xa[OBB_MAX], ya[OBB_MAX], xb[OBB_MAX], yb[OBB_MAX];
    int n = 4;
    for (int k = 0; k < 4; k++) xa[k] = p[2 * k], ya[k] = p[2 * k + 1];
    double *sx = xa, *sy = ya, *dx = xb, *dy = yb;
    for (int j = 0; j < 4 && n; j++) {
        int j1 = (j + 1) & 3;
        n = obb_clip(sx, sy, n, q[2 * j], q[2 * j + 1], q[2 * j1], q[2 * j1 + 1], dx, dy);
        double *tx = sx, *ty = sy;
        sx = dx, sy = dy, dx = tx, dy = ty;
    }
    double s = 0.0;
    for (int k = 0; k < n; k++) {
        int k1 = k + 1 == n ? 0 : k + 1;
        s += sx[k] * sy[k1] - sx[k1] * sy[k];
    }
    return s > 0 ? s / 2 : 0.0;
}

/* 1 when the axis-aligned extents of quads p and q are apart (a gap on x or y): no intersection, no clipping. */
static inline int obb_apart(const double *p, const double *q) {
    for (int d = 0; d < 2; d++) {
        double p0 = p[d], p1 = p[d], q0 = q[d], q1 = q[d];
        for (int k = 1; k < 4; k++) {
            double a = p[2 * k + d], b = q[2 * k + d];
            p0 = a < p0 ? a : p0, p1 = a > p1 ? a : p1;
            q0 = b < q0 ? b : q0, q1 = b > q1 ? b : q1;
        }
        if (p1 < q0 || q1 < p0) return 1;
    }
    return 0;
}

static PyObject *py_obb_iou_pairs(PyObject *self, PyObject *args) {
    enum { N = 8 };
    PyObject *o[N];
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7])) return NULL;
    static const enum kind kinds[N] = {K_F64, K_F64, K_F64, K_F64, K_I64, K_I64, K_U8, K_F64};
    static const char *names[N] = {"p_corners", "t_corners", "p_area", "t_area", "p_idx", "t_idx", "crowd", "out"};
    Py_buffer v[N];
    Py_ssize_t n[N];
    if (get_bufs(o, v, n, kinds, names, N, 7) < 0) return NULL;
    Py_ssize_t n_p = n[2], n_t = n[3], n_pairs = n[7];
    if (n[0] != 8 * n_p || n[1] != 8 * n_t || n[4] != n_pairs || n[5] != n_pairs || n[6] != n_t) {
        release_all(v, N);
        PyErr_SetString(PyExc_ValueError, "cocoeval.obb_iou_pairs: corners must be (n, 4, 2) beside (n,) areas, "
                                          "p_idx, t_idx and out of one length, crowd (n_t,)");
        return NULL;
    }
    const double *pc = v[0].buf, *tc = v[1].buf, *pa = v[2].buf, *ta = v[3].buf;
    const int64_t *pi = v[4].buf, *ti = v[5].buf;
    const uint8_t *crowd = v[6].buf;
    double *out = v[7].buf;
    for (Py_ssize_t i = 0; i < n_pairs; i++) {
        if (pi[i] < 0 || pi[i] >= n_p || ti[i] < 0 || ti[i] >= n_t) {
            release_all(v, N);
            PyErr_SetString(PyExc_IndexError, "cocoeval.obb_iou_pairs: a pair index is out of range");
            return NULL;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_pairs; i++) {
        const double *p = &pc[8 * pi[i]], *q = &tc[8 * ti[i]];
        double inter = obb_apart(p, q) ? 0.0 : obb_intersection(p, q);
        double u = crowd[ti[i]] ? pa[pi[i]] : (pa[pi[i]] + ta[ti[i]]) - inter;
        out[i] = u > 0 && inter > 0 ? inter / u : 0.0;
    }
    Py_END_ALLOW_THREADS
    release_all(v, N);
    Py_RETURN_NONE;
}
