/* rle_poly.h: polygons to run-length masks, bit for bit what pycocotools' rleFrPoly and rleMerge (maskApi.c)
 * give, for maslow._native.rle (header-only; pure C, usable without the GIL).
 *
 * rleFrPoly, per ring of k points:
 *   1. each vertex upsampled 5x: (int)(5.0 * x + .5) (truncation, not rounding, below 0);
 *   2. a walk along every edge (the last one back to the first vertex), one point per step along the longer
 *      axis: the other coordinate is (int)(start + s * t + .5) with s = delta / steps, the edge reversed when
 *      it runs backwards along that axis. A zero-length edge is one point whose y is (int) of 0/0 (NaN, no
 *      value in C): it is never read, as no step to or from it is a crossing (see ring_runs);
 *   3. each step whose x changes is a y-boundary crossing: x = the smaller of the two, kept only when
 *      (x + .5) / 5 - .5 is a whole column inside the image; y = the smaller of the two, (y + .5) / 5 - .5
 *      clamped to [0, h] and rounded up;
 *   4. the positions x * h + y, plus h * w, sorted (as uint32), turned into differences, and a zero-length run
 *      merged with the one after it (the run after a zero is added to the run before it).
 * Only the crossings matter, and their order doesn't (they are sorted), so the walk visits just the steps that
 * can be one: on an edge walked along x, every step changes x, and (x + .5) / 5 - .5 is whole exactly when
 * x % 5 == 2 (a fifth of the steps); on an edge walked along y, x is monotone in the step and changes by at most
 * 1, so each column it enters is found by a short search around where the line says it enters. Both evaluate
 * pycocotools' expressions at the same steps, so the values are the same doubles.
 * rleMerge (union, intersect=0) of an object's rings is mirrored as written: a two-pointer walk over the runs
 * of the union so far and the next ring.
 *
 * The caller keeps the inputs where this is exact and pycocotools well defined (rle.c: poly_status): at least 3
 * points per ring, an even number of values, |5x + .5| < 2^22 (no int overflow anywhere, and the rounding
 * errors stay small enough that x changes by at most 1 per step along y), h and w >= 1 and h * w < 2^29
 * (pycocotools writes each ring to a counts string and reads it back: a run of 2^29 or more needs 7
 * characters, which its parser can't read).
 */
#ifndef MASLOW_RLE_POLY_H
#define MASLOW_RLE_POLY_H

#include <Python.h> /* PyMem_Raw* (no GIL needed) */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define POLY_LIMIT 4194304.0 /* 2^22: the bound on |5x + .5| (see above) */

/* A growable uint32 array (PyMem_Raw memory). */
typedef struct {
    uint32_t *p;
    size_t n, cap;
} U32s;

static int u32_reserve(U32s *v, size_t extra) {
    if (v->n + extra <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 1024;
    while (cap < v->n + extra) {
        if (cap > ((size_t)1 << 58)) return -1;
        cap *= 2;
    }
    uint32_t *p = PyMem_RawRealloc(v->p, cap * sizeof *p);
    if (!p) return -1;
    v->p = p;
    v->cap = cap;
    return 0;
}

static inline int u32_push(U32s *v, uint32_t x) {
    if (v->n == v->cap && u32_reserve(v, 1)) return -1;
    v->p[v->n++] = x;
    return 0;
}

/* Scratch reused across rings and rows: a ring's crossings and their sort, its runs, the union so far, the
 * merge's output; the image size. */
typedef struct {
    U32s pos, col;      /* a ring's crossings: x * h + y, and x */
    U32s count, tmp;    /* sort_crossings' buckets and output */
    U32s ring, acc, merged;
    uint64_t h, w;
} Poly;

static void poly_free(Poly *P) {
    PyMem_RawFree(P->pos.p);
    PyMem_RawFree(P->col.p);
    PyMem_RawFree(P->count.p);
    PyMem_RawFree(P->tmp.p);
    PyMem_RawFree(P->ring.p);
    PyMem_RawFree(P->acc.p);
    PyMem_RawFree(P->merged.p);
}

/* Step 3 for a step whose x changes: u_min, the smaller x (pycocotools' "u[j] < u[j-1] ? u[j] : u[j] - 1", as
 * x changes by exactly 1), one of the columns edge_walk visits (u_min % 5 == 2, 2 <= u_min <= 5 (w - 1) + 2), and
 * v_min, the smaller y. Appends x * h + y. pycocotools' doubles are exact integers here, computed as such:
 *   x = (u + .5) / 5 - .5 is (u - 2) / 5 exactly (u + .5 = 5x + 2.5 and x + .5 are doubles, |u| < 2^22);
 *   y = ceil(clamp((v + .5) / 5 - .5, 0, h)): (v + .5) / 5 - .5 is (v - 2) / 5 = q + r / 5 up to rounding errors
 *   below 2^-30: exactly q when r = 0, strictly between q and q + 1 otherwise, so its ceiling (and the clamp's
 *   outcome) is that of the exact quotient: 0 for v - 2 <= 0, else (v - 2 + 4) / 5, at most h. */
static inline int crossing(Poly *P, int u_min, int v_min) {
    int x = (u_min - 2) / 5, n = v_min - 2, h = (int)P->h;
    int y = n <= 0 ? 0 : (n + 4) / 5;
    y = y > h ? h : y;
    return u32_push(&P->col, (uint32_t)x) || u32_push(&P->pos, (uint32_t)(x * h + y));
}

/* The first x >= lo with x % 5 == 2 (the only steps whose column can be whole: see the header). */
static inline int64_t next_col(int64_t lo) {
    int64_t r = ((lo - 2) % 5 + 5) % 5;
    return r ? lo + 5 - r : lo;
}

/* x at step t of an edge walked along y (pycocotools' expression). */
static inline int along_y_x(int xs, double s, int t) { return (int)(xs + s * t + .5); }

/* The crossings of the steps inside the edge (xs, ys) -> (xe, ye) (upsampled). pycocotools reverses an edge
 * that runs backwards along its walking axis; the pairs of consecutive points, hence the crossings, are the
 * same either way. */
static int edge_walk(Poly *P, int xs, int ys, int xe, int ye) {
    int dx = abs(xe - xs), dy = abs(ys - ye);
    int flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
        int t = xs;
        xs = xe, xe = t, t = ys, ys = ye, ye = t;
    }
    /* columns that can be kept: u_min in [2, 5 (w - 1) + 2] */
    int64_t col_lo = 2, col_hi = 5 * ((int64_t)P->w - 1) + 2;
    if (dx >= dy) {
        if (dx == 0) return 0; /* one point: no step (its NaN y is never read) */
        double s = (double)(ye - ys) / dx;
        /* steps t -> t + 1 (t in [0, dx)): x = xs + t and xs + t + 1, u_min = xs + t */
        int64_t lo = (int64_t)xs > col_lo ? xs : col_lo, hi = (int64_t)xs + dx - 1 < col_hi ? xs + dx - 1 : col_hi;
        for (int64_t u = next_col(lo); u <= hi; u += 5) {
            int t = (int)(u - xs);
            int v0 = (int)(ys + s * t + .5), v1 = (int)(ys + s * (t + 1) + .5);
            if (crossing(P, (int)u, v0 < v1 ? v0 : v1)) return -1;
        }
        return 0;
    }
    /* along y: v = ys + t, x(t) monotone with steps of at most 1; for each column u_min between x(0) and x(dy),
     * the one step where x goes between u_min and u_min + 1, found from the line's estimate */
    double s = (double)(xe - xs) / dy;
    int x0 = along_y_x(xs, s, 0), x1 = along_y_x(xs, s, dy);
    int up = x1 > x0;
    int64_t lo = up ? x0 : x1, hi = (up ? x1 : x0) - 1;
    lo = lo > col_lo ? lo : col_lo;
    hi = hi < col_hi ? hi : col_hi;
    for (int64_t u = next_col(lo); u <= hi; u += 5) {
        /* t: the last step with x on the start's side of u + 1 (x <= u rising, x >= u + 1 falling) */
        double est = ((double)u + .5 - xs) / s;
        int t = est < 0 ? 0 : est > dy - 1 ? dy - 1 : (int)est;
        if (up) {
            while (t > 0 && along_y_x(xs, s, t) > u) t--;
            while (t < dy - 1 && along_y_x(xs, s, t + 1) <= u) t++;
        } else {
            while (t > 0 && along_y_x(xs, s, t) <= u) t--;
            while (t < dy - 1 && along_y_x(xs, s, t + 1) > u) t++;
        }
        if (crossing(P, (int)u, ys + t)) return -1; /* v = ys + t < ys + t + 1 */
    }
    return 0;
}

/* Sorts the crossings (pycocotools qsorts them; any exact sort gives the same array): by column with a counting
 * sort, then by row inside each column with an insertion sort over the whole array (a crossing moves only
 * within its column: x * h + y with y <= h is never above the next column's). A closed ring crosses every
 * column between its extremes at least twice, so there are at most n / 2 + 1 buckets. */
static int sort_crossings(Poly *P) {
    size_t n = P->pos.n;
    if (n < 2) return 0;
    const uint32_t *col = P->col.p;
    uint32_t lo = col[0], hi = col[0];
    for (size_t i = 1; i < n; i++) {
        lo = col[i] < lo ? col[i] : lo;
        hi = col[i] > hi ? col[i] : hi;
    }
    size_t nb = (size_t)(hi - lo) + 1;
    P->count.n = P->tmp.n = 0;
    if (u32_reserve(&P->count, nb + 1) || u32_reserve(&P->tmp, n)) return -1;
    uint32_t *count = P->count.p, *out = P->tmp.p, *pos = P->pos.p;
    memset(count, 0, (nb + 1) * sizeof *count);
    for (size_t i = 0; i < n; i++) count[col[i] - lo + 1]++;
    for (size_t b = 1; b <= nb; b++) count[b] += count[b - 1];
    for (size_t i = 0; i < n; i++) out[count[col[i] - lo]++] = pos[i];
    for (size_t i = 1; i < n; i++) {
        uint32_t x = out[i];
        size_t j = i;
        for (; j && out[j - 1] > x; j--) out[j] = out[j - 1];
        out[j] = x;
    }
    memcpy(pos, out, n * sizeof *pos);
    return 0;
}

/* The runs of one ring (k points at xy, every |5x + .5| < POLY_LIMIT) into P->ring. The step from one edge's
 * last point to the next edge's first is no crossing: both are the shared vertex's x, or (an edge walked along
 * y truncates toward 0) it and x + 1 when x <= -1, whose column (x + .5) / 5 - .5 is < 0. */
static int ring_runs(Poly *P, const double *xy, size_t k) {
    P->pos.n = P->col.n = 0;
    int fx = (int)(5.0 * xy[0] + .5), fy = (int)(5.0 * xy[1] + .5), px = fx, py = fy;
    for (size_t j = 0; j < k; j++) {
        int nx = fx, ny = fy; /* the last edge goes back to the first vertex */
        if (j + 1 < k) nx = (int)(5.0 * xy[2 * j + 2] + .5), ny = (int)(5.0 * xy[2 * j + 3] + .5);
        if (edge_walk(P, px, py, nx, ny)) return -1;
        px = nx, py = ny;
    }
    if (sort_crossings(P) || u32_push(&P->pos, (uint32_t)(P->h * P->w))) return -1; /* h * w: the largest */
    uint32_t *a = P->pos.p;
    size_t n = P->pos.n;
    uint32_t prev = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t t = a[j];
        a[j] -= prev;
        prev = t;
    }
    P->ring.n = 0;
    if (u32_reserve(&P->ring, n)) return -1;
    uint32_t *b = P->ring.p;
    size_t m = 0, j = 0;
    b[m++] = a[j++];
    while (j < n) {
        if (a[j] > 0) {
            b[m++] = a[j++];
        } else {
            j++;
            if (j < n) b[m - 1] += a[j++];
        }
    }
    P->ring.n = m;
    return 0;
}

/* One side of pycocotools' two-pointer walk over two run lists (rleMerge, rleIou): the next run to enter, what
 * is left of the current one, and whether it is foreground. */
typedef struct {
    const uint32_t *r;
    size_t k, at;
    uint32_t left;
    int on;
} RunWalk;

static inline RunWalk run_walk(const uint32_t *r, size_t k) {
    RunWalk s = {r, k, 1, r[0], 0};
    return s;
}

/* c pixels of the current run consumed; at its end, into the next run if there is one (pycocotools'
 * "ca -= c; if (!ca && a < ka) { ca = cnts[a++]; va = !va; }"). */
static inline void run_take(RunWalk *s, uint32_t c) {
    s->left -= c;
    if (!s->left && s->at < s->k) s->left = s->r[s->at++], s->on = !s->on;
}

/* rleMerge(union) of P->acc and P->ring into P->acc. It ends: both sum to h * w (every position is at most
 * h * w, the last is h * w; the union keeps the sum). */
static int merge_ring(Poly *P) {
    P->merged.n = 0;
    if (u32_reserve(&P->merged, P->acc.n + P->ring.n)) return -1; /* an output run per toggle, plus the last */
    uint32_t *out = P->merged.p;
    RunWalk A = run_walk(P->acc.p, P->acc.n), B = run_walk(P->ring.p, P->ring.n);
    uint32_t cc = 0, ct = 1;
    int v = 0;
    size_t m = 0;
    while (ct > 0) {
        uint32_t c = A.left < B.left ? A.left : B.left;
        cc += c;
        run_take(&A, c);
        run_take(&B, c);
        ct = A.left + B.left;
        int vp = v;
        v = A.on || B.on;
        if (v != vp || ct == 0) out[m++] = cc, cc = 0;
    }
    P->merged.n = m;
    U32s t = P->acc;
    P->acc = P->merged;
    P->merged = t;
    return 0;
}

#endif /* MASLOW_RLE_POLY_H */
