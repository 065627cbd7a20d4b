/* rle_iou.h: rleIou of (prediction, truth) pairs of run-length masks for maslow._native.rle (part of rle.c,
 * included after its run_area, for py_iou; a separate file only to keep each under ~600 lines; pure C, no GIL
 * needed), bit for bit pycocotools' (maskApi.c):
 *   pair_iou: as pycocotools computes it: rleToBbox of both (side_box), bbIou, and only where that is > 0: -1
 *     for a size mismatch, else the walk over both run lists with uint32 counters (i == 0: u = 1; crowd: u = the
 *     prediction's area), o = (double)i / (double)u; it also finds the walks that never end (run sums that
 *     differ: pycocotools loops forever);
 *   quick_iou: the same number, for the usual pairs (same size, 1 <= h * w < 2^31, runs that sum to h * w), with
 *     no box: only the shared pixels are counted, over the positions where both have foreground (the boxes were
 *     a third of the time of rle.iou, the walk outside the overlap much of the rest).
 */
#ifndef MASLOW_RLE_IOU_H
#define MASLOW_RLE_IOU_H

#include <math.h>
#include <stdint.h>

#include "rle_poly.h" /* RunWalk, run_walk, run_take */

/* What quick_iou needs of an object: whether it is plain (state 1: 1 <= h * w < 2^31, runs summing to h * w;
 * 2: not plain; 0: not computed yet), whether it has an empty run after its first (`gaps`), its foreground
 * pixels' first position and the end of its last (first < 0: none) and its area. */
typedef struct {
    int64_t first, end;
    uint32_t area;
    uint8_t state, gaps;
} Span;

/* One side of the pairs: its runs, bounds, sizes, and boxes and spans computed on first use. */
typedef struct {
    const uint32_t *runs;
    const int64_t *start, *end, *h, *w;
    double *box; /* 4 per object; box[4i + 2] < 0: not computed yet */
    Span *span;
} Side;

/* Widens [xs, xe] x [ys, ye] by the foreground run from pixel (x0, y0) to (x1, y1) (rleToBbox's loop body). */
static inline void widen(uint32_t b[4], uint32_t h, uint32_t x0, uint32_t y0, uint32_t x1, uint32_t y1) {
    b[0] = x0 < b[0] ? x0 : b[0];
    b[1] = x1 > b[1] ? x1 : b[1];
    if (x0 < x1) { /* the run crosses a column: the whole height */
        b[2] = 0;
        b[3] = h - 1;
    } else {
        b[2] = y0 < b[2] ? y0 : b[2];
        b[3] = y1 > b[3] ? y1 : b[3];
    }
}

/* rleToBbox of object i into S->box (pycocotools >= 2.0.8: uint32 arithmetic, the run count rounded down to
 * even, empty foreground runs skipped; no run: [0, 0, 0, 0]); -1: h = 0 under a foreground run (a division by
 * zero there). pycocotools divides each run's first and last pixel position by h; here the column and row are
 * carried from run to run (a division only where a run passes a column's end), which is the same while the
 * positions stay below 2^32. Past that pycocotools' positions wrap, and its own formula is used. */
static int side_box(Side *S, int64_t i) {
    double *bb = S->box + 4 * i;
    if (bb[2] >= 0) return 0;
    const uint32_t *r = S->runs + S->start[i];
    uint32_t h = (uint32_t)S->h[i], b[4] = {(uint32_t)S->w[i], 0, h, 0}; /* xs, xe, ys, ye */
    int64_t m = (S->end[i] - S->start[i]) / 2 * 2, j = 0;
    if (m == 0) {
        bb[0] = bb[1] = bb[2] = bb[3] = 0;
        return 0;
    }
    uint64_t pos = 0;
    uint32_t col = 0, row = 0; /* the current pixel: pos = col * h + row (below 2^32: no overflow below) */
    for (; j < m && h; j++) {
        uint32_t c = r[j];
        if (pos + c > UINT32_MAX) break;
        if (j % 2 && c) {
            uint32_t x1 = col, y1 = row + c - 1;
            if (y1 >= h) x1 += y1 / h, y1 %= h;
            widen(b, h, col, row, x1, y1);
            col = x1, row = y1 + 1;
        } else {
            row += c;
        }
        if (row >= h) { /* most runs inside an object end in the next column: no division */
            if (row - h < h) col++, row -= h;
            else col += row / h, row %= h;
        }
        pos += c;
    }
    uint32_t cc = (uint32_t)pos;
    for (; j < m; j++) { /* h = 0, or positions past 2^32: pycocotools' arithmetic as written */
        uint32_t start = cc;
        cc += r[j];
        if (j % 2 == 0 || r[j] == 0) continue;
        if (h == 0) return -1;
        uint32_t y0 = start % h, x0 = (start - y0) / h, y1 = (cc - 1) % h, x1 = (cc - 1 - y1) / h;
        widen(b, h, x0, y0, x1, y1);
    }
    bb[0] = b[0];
    bb[2] = (uint32_t)(b[1] - b[0] + 1);
    bb[1] = b[2];
    bb[3] = (uint32_t)(b[3] - b[2] + 1);
    return 0;
}

/* rleIou of one pair (boxes known): 0 with *o set, or 1 when pycocotools' walk would never end. */
static int pair_iou(Side *D, Side *G, int64_t d, int64_t g, int crowd, double *o) {
    const double *db = D->box + 4 * d, *gb = G->box + 4 * g;
    double da = db[2] * db[3], ga = gb[2] * gb[3]; /* bbIou */
    *o = 0;
    double w = fmin(db[2] + db[0], gb[2] + gb[0]) - fmax(db[0], gb[0]);
    if (w <= 0) return 0;
    double h = fmin(db[3] + db[1], gb[3] + gb[1]) - fmax(db[1], gb[1]);
    if (h <= 0) return 0;
    double bi = w * h, bu = crowd ? da : da + ga - bi;
    *o = bi / bu;
    if (!(*o > 0)) return 0;
    if (D->h[d] != G->h[g] || D->w[d] != G->w[g]) {
        *o = -1;
        return 0;
    }
    /* both have 2 runs or more here: the box of fewer is [0, 0, 0, 0], whose bbIou is 0 */
    RunWalk A = run_walk(D->runs + D->start[d], (size_t)(D->end[d] - D->start[d]));
    RunWalk B = run_walk(G->runs + G->start[g], (size_t)(G->end[g] - G->start[g]));
    uint32_t ct = 1, i = 0, u = 0;
    while (ct > 0) {
        uint32_t c = A.left < B.left ? A.left : B.left;
        if (A.on || B.on) {
            u += c;
            if (A.on && B.on) i += c;
        }
        run_take(&A, c);
        run_take(&B, c);
        ct = A.left + B.left;
        if (ct && ((!A.left && A.at == A.k) || (!B.left && B.at == B.k))) return 1; /* one side spent: no progress */
    }
    if (i == 0) u = 1;
    else if (crowd) u = run_area(A.r, (int64_t)A.k);
    *o = (double)i / (double)u;
    return 0;
}

/* The Span of object i, computed on first use. */
static const Span *side_span(Side *S, int64_t i) {
    Span *sp = &S->span[i];
    if (sp->state) return sp;
    sp->state = 2;
    int64_t h = S->h[i], w = S->w[i], m = S->end[i] - S->start[i];
    if (h < 1 || w < 1 || h >= ((int64_t)1 << 31) || w >= ((int64_t)1 << 31) || h * w >= ((int64_t)1 << 31))
        return sp;
    const uint32_t *r = S->runs + S->start[i];
    uint64_t even = 0, odd = 0, empty = 0; /* the background and foreground runs' sums (no branch: vectorised) */
    for (int64_t j = 0; j + 1 < m; j += 2) even += r[j], odd += r[j + 1], empty += (r[j] == 0) + (r[j + 1] == 0);
    if (m % 2) even += r[m - 1], empty += r[m - 1] == 0;
    sp->gaps = empty > (uint64_t)(m && r[0] == 0);
    if (even + odd != (uint64_t)(h * w)) return sp;
    int64_t first = -1, end = 0, j = 1, pos = m ? r[0] : 0; /* the first and last non-empty foreground runs */
    for (; j < m && !r[j]; j += 2) pos += r[j] + (j + 1 < m ? r[j + 1] : 0);
    if (j < m) {
        first = pos;
        int64_t k = m % 2 ? m - 2 : m - 1, after = m % 2 ? r[m - 1] : 0; /* the last foreground run, what follows */
        for (; !r[k]; k -= 2) after += r[k - 1]; /* an empty foreground run and the background before it */
        end = h * w - after;
    }
    uint32_t area = (uint32_t)odd; /* rleArea's uint32 sum */
    sp->first = first, sp->end = end, sp->area = area, sp->state = 1;
    return sp;
}

/* The foreground pixels two run lists (of plain objects of one size) share between positions lo and hi (both
 * within each list's total): the walk of rleIou over [lo, hi) only, from the run holding lo on each side (the
 * pixels outside are not foreground on both). */
static uint32_t shared_pixels(const uint32_t *ra, int64_t ma, const uint32_t *rb, int64_t mb, int64_t lo,
                              int64_t hi) {
    int64_t ka = 0, kb = 0, pa = 0, pb = 0; /* the run holding lo on each side, and its start */
    while (ka < ma && pa + ra[ka] <= lo) pa += ra[ka++];
    while (kb < mb && pb + rb[kb] <= lo) pb += rb[kb++];
    if (ka >= ma || kb >= mb) return 0;
    uint32_t la = (uint32_t)(pa + ra[ka] - lo), lb = (uint32_t)(pb + rb[kb] - lo), i = 0;
    int va = (int)(ka & 1), vb = (int)(kb & 1);
    ka++, kb++;
    for (int64_t p = lo; p < hi;) { /* before hi both have runs left: each sums to h * w >= hi */
        uint32_t c = la < lb ? la : lb;
        i += c & (0u - (uint32_t)(va & vb));
        p += c, la -= c, lb -= c;
        if (!la && ka < ma) la = ra[ka++], va ^= 1;
        if (!lb && kb < mb) lb = rb[kb++], vb ^= 1;
    }
    return i;
}

/* rleIou of one pair of plain objects of one size, not both with gaps: 1 with *o set; 0: not such a pair
 * (pair_iou decides). For them pycocotools' result needs no box: where bbIou is 0 the walk would find no shared
 * pixel either (0 both ways); the walk covers every position (it stops where the runs left on both sides add
 * to 0: at the end, or where both step into an empty run at once, which needs empty runs past the first on both
 * sides); and its union is a + b - i exactly (no sum reaches 2^32). */
static int quick_iou(Side *D, Side *G, int64_t d, int64_t g, int crowd, double *o) {
    const Span *a = side_span(D, d), *b = side_span(G, g);
    if (a->state != 1 || b->state != 1 || (a->gaps && b->gaps) || D->h[d] != G->h[g] || D->w[d] != G->w[g])
        return 0;
    int64_t lo = a->first > b->first ? a->first : b->first, hi = a->end < b->end ? a->end : b->end;
    uint32_t i = a->first < 0 || b->first < 0 || lo >= hi ? 0
               : shared_pixels(D->runs + D->start[d], D->end[d] - D->start[d], G->runs + G->start[g],
                               G->end[g] - G->start[g], lo, hi);
    *o = i ? (double)i / (double)(crowd ? a->area : a->area + b->area - i) : 0.0;
    return 1;
}

#endif /* MASLOW_RLE_IOU_H */
