/* Inflate (RFC 1950/1951) for maslow._native.png: a zlib stream into a buffer of exactly the size it must fill,
 * zlib's checks kept (over-subscribed or incomplete codes refused, except one distance or length code of one bit;
 * distances before the output's start; a bad header or Adler-32), the output's checksum checked. Codes of up to
 * FAST_BITS bits are looked up in one table, longer ones read bit by bit (puff's decode); the bit buffer is
 * refilled 8 bytes at a time (libdeflate's way) and matches copied 8 bytes at a time where they allow it.
 * inflate_zlib(in, len, out, cap) -> 0 or -1; out must have SLACK bytes past cap. Call build_fixed() once. */
#ifndef MASLOW_PNG_INFLATE_H
#define MASLOW_PNG_INFLATE_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* -- inflate ---------------------------------------------------------------------------------------------- */

#define FAST_BITS 10
#define FAST_MASK ((1u << FAST_BITS) - 1)
#define SLACK 16 /* bytes past the output that a match copy may scribble on */

typedef struct {
    uint16_t fast[1 << FAST_BITS]; /* symbol << 4 | length of the codes of up to FAST_BITS bits; 0: longer */
    uint16_t count[16];            /* codes of each length */
    uint16_t symbol[320];          /* symbols in canonical order */
} Huff;

typedef struct {
    const uint8_t *p, *start, *end;
    uint64_t buf; /* bits, next one lowest; buf holds n of them (above: bytes at p, read again later) */
    int n;
    size_t over; /* zero bytes fed past the end */
} Bits;

static inline void refill(Bits *b) {
    if (b->end - b->p >= 8) {
        uint64_t w;
        memcpy(&w, b->p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        b->buf |= w << b->n;
        b->p += (63 - b->n) >> 3;
        b->n |= 56;
    } else {
        while (b->n < 56) { /* n stays below 64 */
            uint64_t byte = 0;
            if (b->p < b->end) byte = *b->p++;
            else b->over++;
            b->buf |= byte << b->n;
            b->n += 8;
        }
    }
}

static inline void drop(Bits *b, int k) {
    b->buf >>= k;
    b->n -= k;
}

/* Canonical code of `n` symbols of `lengths`; -1 over-subscribed, -2 incomplete (allowed by the caller where
 * zlib allows it), 0 complete (or no code at all: count[0] == n). */
static int huff_build(Huff *h, const uint8_t *lengths, int n) {
    uint16_t offs[16], next[16];
    memset(h->count, 0, sizeof h->count);
    memset(h->fast, 0, sizeof h->fast);
    for (int s = 0; s < n; s++) h->count[lengths[s]]++;
    if (h->count[0] == n) return 0;
    int left = 1;
    for (int len = 1; len < 16; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return -1;
    }
    offs[1] = 0;
    for (int len = 1; len < 15; len++) offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
    unsigned code = 0;
    for (int len = 1; len < 16; len++) {
        code = (code + h->count[len - 1] * (len > 1)) << 1;
        next[len] = (uint16_t)code;
    }
    for (int s = 0; s < n; s++) {
        int len = lengths[s];
        if (!len) continue;
        h->symbol[offs[len]++] = (uint16_t)s;
        unsigned c = next[len]++;
        if (len > FAST_BITS) continue;
        unsigned rev = 0;
        for (int k = 0; k < len; k++) rev |= ((c >> k) & 1u) << (len - 1 - k);
        for (unsigned j = rev; j <= FAST_MASK; j += 1u << len) h->fast[j] = (uint16_t)(s << 4 | len);
    }
    return left ? -2 : 0;
}

/* A symbol from the bits (at least 15 there), bit by bit (puff's decode); -1: no such code. */
static int huff_slow(const Huff *h, uint64_t bits, int *used) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; len++) {
        code |= (int)(bits & 1);
        bits >>= 1;
        int count = h->count[len];
        if (code - count < first) {
            *used = len;
            return h->symbol[index + (code - first)];
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

static inline int decode(Bits *b, const Huff *h) {
    unsigned e = h->fast[b->buf & FAST_MASK];
    if (e) {
        drop(b, (int)(e & 15));
        return (int)(e >> 4);
    }
    int used = 0, s = huff_slow(h, b->buf, &used);
    if (s >= 0) drop(b, used);
    return s;
}

static const uint16_t LBASE[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                   31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t LEXT[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t DBASE[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                   193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t DEXT[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int codes(Bits *b, const Huff *lit, const Huff *dist, uint8_t *out, size_t *o_io, size_t cap) {
    size_t o = *o_io;
    for (;;) {
        refill(b);
        int sym = decode(b, lit);
        if (sym < 0) return -1;
        if (sym < 256) {
            if (o >= cap) return -1;
            out[o++] = (uint8_t)sym;
            continue;
        }
        if (sym == 256) break;
        sym -= 257;
        if (sym >= 29) return -1;
        size_t len = LBASE[sym] + (size_t)(b->buf & ((1u << LEXT[sym]) - 1));
        drop(b, LEXT[sym]);
        int ds = decode(b, dist); /* at most 20 bits used so far: 36 left */
        if (ds < 0 || ds >= 30) return -1;
        size_t d = DBASE[ds] + (size_t)(b->buf & ((1u << DEXT[ds]) - 1));
        drop(b, DEXT[ds]);
        if (d > o || len > cap - o) return -1;
        uint8_t *dst = out + o;
        const uint8_t *src = dst - d;
        if (d == 1) {
            memset(dst, *src, len);
        } else if (d >= 8) { /* 8 bytes at a time; up to 7 past the end (SLACK, or rewritten later) */
            uint8_t *end = dst + len;
            do {
                memcpy(dst, src, 8);
                dst += 8;
                src += 8;
            } while (dst < end);
        } else {
            for (size_t k = 0; k < len; k++) dst[k] = src[k];
        }
        o += len;
    }
    *o_io = o;
    return 0;
}

static Huff FIXED_LIT, FIXED_DIST;

static void build_fixed(void) {
    uint8_t l[288];
    for (int s = 0; s < 288; s++) l[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
    huff_build(&FIXED_LIT, l, 288);
    for (int s = 0; s < 30; s++) l[s] = 5;
    huff_build(&FIXED_DIST, l, 30);
}

/* zlib's check of a length or distance code: complete, or a single code of one bit. */
static int usable(int err, const Huff *h, int n) {
    if (err == -1) return 0;
    if (err == -2) return h->count[1] == 1 && h->count[0] == n - 1;
    return 1;
}

static int dynamic(Bits *b, Huff *lit, Huff *dist) {
    static const uint8_t ORDER[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    uint8_t lengths[320];
    Huff cl;
    refill(b);
    int nlen = (int)(b->buf & 31) + 257, ndist = (int)((b->buf >> 5) & 31) + 1, ncode = (int)((b->buf >> 10) & 15) + 4;
    drop(b, 14);
    if (nlen > 286 || ndist > 30) return -1;
    memset(lengths, 0, 19);
    for (int k = 0; k < ncode; k++) {
        refill(b);
        lengths[ORDER[k]] = (uint8_t)(b->buf & 7);
        drop(b, 3);
    }
    if (huff_build(&cl, lengths, 19) != 0) return -1; /* complete, as zlib asks */
    int k = 0;
    while (k < nlen + ndist) {
        refill(b);
        int sym = decode(b, &cl);
        if (sym < 0) return -1;
        if (sym < 16) {
            lengths[k++] = (uint8_t)sym;
            continue;
        }
        int len = 0, rep;
        if (sym == 16) {
            if (!k) return -1;
            len = lengths[k - 1];
            rep = 3 + (int)(b->buf & 3);
            drop(b, 2);
        } else if (sym == 17) {
            rep = 3 + (int)(b->buf & 7);
            drop(b, 3);
        } else {
            rep = 11 + (int)(b->buf & 127);
            drop(b, 7);
        }
        if (k + rep > nlen + ndist) return -1;
        while (rep--) lengths[k++] = (uint8_t)len;
    }
    if (!lengths[256]) return -1; /* no end-of-block code */
    if (!usable(huff_build(lit, lengths, nlen), lit, nlen)) return -1;
    if (!usable(huff_build(dist, lengths + nlen, ndist), dist, ndist)) return -1;
    return 0;
}

/* Adler-32 (zlib's), 32 bytes a step: the sum of the bytes and the sum weighted by 32..1 (SSE2 where built for
 * it), the running sum before each step added 32 times. */
static uint32_t adler32(const uint8_t *p, size_t n) {
    uint64_t a = 1, b = 0;
    while (n) {
        size_t k = n < 5536 ? n : 5536; /* below zlib's NMAX, a multiple of 32 */
        size_t steps = k / 32;
        uint64_t sum = 0, before = 0, weighted = 0;
#if defined(__SSE2__)
        const __m128i zero = _mm_setzero_si128();
        const __m128i w0 = _mm_setr_epi16(32, 31, 30, 29, 28, 27, 26, 25), w1 = _mm_setr_epi16(24, 23, 22, 21, 20, 19, 18, 17);
        const __m128i w2 = _mm_setr_epi16(16, 15, 14, 13, 12, 11, 10, 9), w3 = _mm_setr_epi16(8, 7, 6, 5, 4, 3, 2, 1);
        __m128i vs = zero, vb = zero, vw = zero;
        for (size_t t = 0; t < steps; t++, p += 32) {
            __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16));
            vb = _mm_add_epi64(vb, vs);
            vs = _mm_add_epi64(vs, _mm_add_epi64(_mm_sad_epu8(x0, zero), _mm_sad_epu8(x1, zero)));
            __m128i m = _mm_add_epi32(_mm_madd_epi16(_mm_unpacklo_epi8(x0, zero), w0),
                                      _mm_madd_epi16(_mm_unpackhi_epi8(x0, zero), w1));
            m = _mm_add_epi32(m, _mm_add_epi32(_mm_madd_epi16(_mm_unpacklo_epi8(x1, zero), w2),
                                               _mm_madd_epi16(_mm_unpackhi_epi8(x1, zero), w3)));
            vw = _mm_add_epi32(vw, m);
        }
        uint64_t l[2];
        uint32_t q[4];
        _mm_storeu_si128((__m128i *)l, vs);
        sum = l[0] + l[1];
        _mm_storeu_si128((__m128i *)l, vb);
        before = l[0] + l[1];
        _mm_storeu_si128((__m128i *)q, vw);
        weighted = (uint64_t)q[0] + q[1] + q[2] + q[3];
#else
        for (size_t t = 0; t < steps; t++, p += 32) {
            uint32_t s = 0, ws = 0;
            for (int j = 0; j < 32; j++) {
                s += p[j];
                ws += (uint32_t)(32 - j) * p[j];
            }
            before += sum;
            sum += s;
            weighted += ws;
        }
#endif
        b += 32 * (a * steps + before) + weighted;
        a += sum;
        n -= k;
        for (k -= 32 * steps; k; k--) {
            a += *p++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return (uint32_t)(b << 16 | a);
}

/* Inflate the zlib stream `in` into exactly `cap` bytes at `out` (SLACK more allocated); 0 or -1. */
static int inflate_zlib(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    if (len < 6) return -1;
    unsigned cmf = in[0], flg = in[1];
    if ((cmf & 15) != 8 || (cmf >> 4) > 7 || ((cmf << 8) | flg) % 31 || (flg & 0x20)) return -1;
    Bits b = {in + 2, in, in + len, 0, 0, 0};
    Huff lit, dist;
    size_t o = 0;
    int final;
    do {
        refill(&b);
        final = (int)(b.buf & 1);
        int type = (int)((b.buf >> 1) & 3);
        drop(&b, 3);
        if (type == 0) {
            drop(&b, b.n & 7);
            size_t q = (size_t)(b.p - b.start) + b.over - (size_t)(b.n >> 3); /* next byte */
            if (q + 4 > len) return -1;
            size_t n = in[q] | (size_t)in[q + 1] << 8;
            if ((n ^ (in[q + 2] | (size_t)in[q + 3] << 8)) != 0xffff) return -1;
            q += 4;
            if (n > len - q || n > cap - o) return -1;
            memcpy(out + o, in + q, n);
            o += n;
            b.p = in + q + n;
            b.buf = 0;
            b.n = 0;
            b.over = 0;
        } else if (type == 1) {
            if (codes(&b, &FIXED_LIT, &FIXED_DIST, out, &o, cap)) return -1;
        } else if (type == 2) {
            if (dynamic(&b, &lit, &dist) || codes(&b, &lit, &dist, out, &o, cap)) return -1;
        } else {
            return -1;
        }
        if (b.over > 8) return -1; /* read past the end */
    } while (!final);
    if (o != cap) return -1;
    drop(&b, b.n & 7);
    size_t q = (size_t)(b.p - b.start) + b.over - (size_t)(b.n >> 3);
    if (q + 4 > len) return -1;
    uint32_t want = (uint32_t)in[q] << 24 | (uint32_t)in[q + 1] << 16 | (uint32_t)in[q + 2] << 8 | in[q + 3];
    return adler32(out, cap) == want ? 0 : -1;
}

#endif
