/* json_scan.h: the generic JSON scanning of maslow's C readers (header-only: static functions).
 *
 * A Scanner walks a byte buffer [base, end) with a cursor p; every read is bounds checked against `end` (the
 * input is an untrusted file). The readers return 0 on success and -1 on a bail-out, after setting S->why to
 * the reason (a static string): the callers then leave the file to the Python path, which reports it.
 * Memory comes from PyMem_Raw* (usable without the GIL); nothing here touches a Python object.
 *
 *   Buf: growable byte buffers (buf_reserve, buf_push, push_i64, push_f64, push_u8).
 *   skip_ws, expect, accept: whitespace and punctuation.
 *   parse_number, read_double, read_int: numbers, bit for bit what json/orjson give (Clinger's exact fast path,
 *     then binary fractions written in full (dyadic), then the Eisel-Lemire algorithm, glibc's correctly rounded
 *     strtod_l in the "C" locale for what they all leave; integers exact int64).
 *   read_string: an ASCII string, unescaped; skip_string, skip_literal, skip_value: any JSON value, validated.
 */
#ifndef MASLOW_JSON_SCAN_H
#define MASLOW_JSON_SCAN_H

#include <Python.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h> /* madvise */

#include "huge.h"
#include "pow10_128.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- growable byte buffers ---------------------------------------------------------------------------- */
/* A buffer of BIG_BUF bytes or more is a private anonymous mapping of its own (on Linux), 2 MiB-aligned and in
 * transparent huge pages where the system has them: a column of MBs then costs a page fault per 2 MiB instead of
 * per 4 KiB (0.1 instead of 0.35 ms per MB here: a tenth of the parse time), and its pages go back to the system
 * when it is freed, whatever malloc keeps. */
#if defined(__linux__) && defined(MREMAP_MAYMOVE)
#define MAPPED_BUFS 1
#else
#define MAPPED_BUFS 0
#endif
enum { BIG_BUF = 1 << 20 };

#if MAPPED_BUFS
/* A fresh mapping of cap bytes (a multiple of HUGE_PAGE) at a 2 MiB boundary, so that all of it can be huge pages:
 * mapped with HUGE_PAGE to spare, the unaligned ends unmapped. */
static void *map_aligned(size_t cap) {
    size_t span = cap + HUGE_PAGE;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return MAP_FAILED;
    char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p) (void)munmap(p, (size_t)(a - p));
    if (p + span > a + cap) (void)munmap(a + cap, (size_t)(p + span - (a + cap)));
    return a;
}
#endif

typedef struct {
    char *data;
    size_t len, cap;
    int mapped; /* data is a mapping of cap bytes (munmap), else PyMem_Raw memory */
} Buf;

static void buf_free(Buf *b) {
    if (b->mapped) (void)munmap(b->data, b->cap);
    else PyMem_RawFree(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->mapped = 0;
}

/* Give back the pages of a mapped buffer past its length (a huge page is mapped whole once touched). */
static void buf_trim(Buf *b) {
    if (!b->mapped) return;
    const uintptr_t page = 4096;
    uintptr_t from = ((uintptr_t)b->data + b->len + page - 1) & ~(page - 1), to = (uintptr_t)b->data + b->cap;
    if (to > from) (void)madvise((void *)from, to - from, MADV_DONTNEED);
}

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) {
        if (cap > ((size_t)1 << 60)) return -1;
        cap *= 2;
    }
#if MAPPED_BUFS
    if (cap >= BIG_BUF) {
        cap = (cap + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1); /* whole huge pages */
        void *p = b->mapped ? mremap(b->data, b->cap, cap, MREMAP_MAYMOVE) : map_aligned(cap);
        if (p == MAP_FAILED) return -1;
        if (!b->mapped) {
            if (b->len) memcpy(p, b->data, b->len);
            PyMem_RawFree(b->data);
            b->mapped = 1;
        }
        b->data = p;
        b->cap = cap;
        advise_huge(p, cap);
        return 0;
    }
#endif
    char *p = PyMem_RawRealloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_push(Buf *b, const void *src, size_t size) {
    if (!size) return 0;
    if (b->len + size > b->cap && buf_reserve(b, size)) return -1;
    memcpy(b->data + b->len, src, size);
    b->len += size;
    return 0;
}

/* Fixed-size pushes, inlined (the hot path: a few per number). */
static inline int push_i64(Buf *b, int64_t v) {
    if (b->len + sizeof v > b->cap && buf_reserve(b, sizeof v)) return -1;
    memcpy(b->data + b->len, &v, sizeof v);
    b->len += sizeof v;
    return 0;
}

static inline int push_f64(Buf *b, double v) {
    if (b->len + sizeof v > b->cap && buf_reserve(b, sizeof v)) return -1;
    memcpy(b->data + b->len, &v, sizeof v);
    b->len += sizeof v;
    return 0;
}

static inline int push_u8(Buf *b, uint8_t v) {
    if (b->len + 1 > b->cap && buf_reserve(b, 1)) return -1;
    b->data[b->len++] = (char)v;
    return 0;
}


/* ---- the scanner ---------------------------------------------------------------------------------------- */
typedef struct {
    const unsigned char *base, *p, *end; /* the buffer, the cursor, the end of what may be read */
    locale_t c_locale;                   /* for strtod_l; (locale_t)0 when newlocale failed */
    const char *why;                     /* the reason of a bail-out */
} Scanner;

#define BAIL(S, msg) do { (S)->why = (msg); return -1; } while (0)
#if defined(__GNUC__)
#define UNLIKELY(x) __builtin_expect(!!(x), 0) /* the bail-outs: code laid out for the plain path (3% faster) */
#else
#define UNLIKELY(x) (x)
#endif
#define TRY(expr) do { if (UNLIKELY((expr) < 0)) return -1; } while (0)
#define OOM(S, expr) do { if (UNLIKELY((expr) < 0)) BAIL(S, "out of memory"); } while (0)
/* The number readers, inlined at every call site (a tenth of the scan time). */
#define HOT static inline __attribute__((always_inline))

static inline void skip_ws(Scanner *S) {
    while (S->p < S->end && (*S->p == ' ' || *S->p == '\n' || *S->p == '\r' || *S->p == '\t')) S->p++;
}

/* Skip whitespace, then consume the character c (bail out when it is something else). */
static inline int expect(Scanner *S, char c) {
    skip_ws(S);
    if (S->p >= S->end || *S->p != (unsigned char)c) BAIL(S, "malformed JSON or unexpected value");
    S->p++;
    return 0;
}

/* After skipping whitespace: 1 if the next character is c (consumed), 0 otherwise. */
static inline int accept(Scanner *S, char c) {
    skip_ws(S);
    if (S->p < S->end && *S->p == (unsigned char)c) {
        S->p++;
        return 1;
    }
    return 0;
}


/* ---- numbers -------------------------------------------------------------------------------------------- */
static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A number that the fast path can't convert exactly: glibc's correctly rounded strtod, "C" locale. */
static int slow_double(Scanner *S, const unsigned char *s, size_t len, double *out) {
    char tmp[400];
    if (len >= sizeof tmp || S->c_locale == (locale_t)0) BAIL(S, "number too long");
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *stop = NULL;
    double d = strtod_l(tmp, &stop, S->c_locale);
    if (stop != tmp + len) BAIL(S, "malformed number");
    if (isinf(d)) BAIL(S, "number out of range");
    *out = d;
    return 0;
}

/* w * 10^q (w > 0, at most 19 digits) correctly rounded to a double, by the Eisel-Lemire algorithm (D. Lemire,
 * "Number parsing at a gigabyte per second", Software: Practice and Experience 51(8), 2021; N. Tao's variant, as in
 * Go's strconv): w, normalised, times the 128-bit mantissa of 10^q rounded down; the top 54 bits of the product
 * give the double unless the bits below could still carry into them (checked with the low 64 bits of the table
 * entry) or the value sits exactly halfway between two doubles. 0: not decided here (those cases, and results
 * that would be subnormal, zero or infinite): the caller asks strtod. Numbers with 16 or more digits, such as
 * the float32 values Python writes as 17 of them, mostly miss Clinger's fast path; strtod takes about 0.1 us more
 * for each of them here. */
static int eisel_lemire(uint64_t w, int64_t q, double *out) {
#if defined(__SIZEOF_INT128__)
    if (w == 0 || q < POW10_Q_MIN || q > POW10_Q_MAX) return 0;
    int lz = __builtin_clzll(w);
    w <<= lz;
    int64_t t = 217706 * q; /* floor(q * log2(10)) = floor(t / 2^16), t < 0 included */
    int64_t log2_10q = t >= 0 ? t >> 16 : -((-t + 65535) >> 16);
    uint64_t exp2 = (uint64_t)(log2_10q + 64 + 1023 - lz);
    const uint64_t *m = POW10_128[q - POW10_Q_MIN];
    unsigned __int128 x = (unsigned __int128)w * m[0];
    uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
    if ((hi & 0x1ff) == 0x1ff && lo + w < w) { /* the truncated low half of 10^q may carry into the top bits */
        unsigned __int128 y = (unsigned __int128)w * m[1];
        uint64_t y_hi = (uint64_t)(y >> 64), y_lo = (uint64_t)y;
        uint64_t merged_lo = lo + y_hi, merged_hi = hi + (merged_lo < lo);
        if ((merged_hi & 0x1ff) == 0x1ff && merged_lo + 1 == 0 && y_lo + w < w) return 0;
        hi = merged_hi, lo = merged_lo;
    }
    uint64_t top = hi >> 63;
    uint64_t mant = hi >> (top + 9); /* 54 bits: the double's 53 and one to round with */
    exp2 -= 1 ^ top;
    if (lo == 0 && (hi & 0x1ff) == 0 && (mant & 3) == 1) return 0; /* exactly halfway, maybe */
    mant += mant & 1; /* round half up on 54 bits = half to even here (the halfway case is gone) */
    mant >>= 1;
    if (mant >> 53) {
        mant >>= 1;
        exp2 += 1;
    }
    if (exp2 - 1 >= 0x7ff - 1) return 0; /* subnormal, zero or beyond the largest double */
    uint64_t bits = exp2 << 52 | (mant & (((uint64_t)1 << 52) - 1));
    memcpy(out, &bits, sizeof bits);
    return 1;
#else
    (void)w, (void)q, (void)out;
    return 0;
#endif
}

/* w * 10^q (q < 0) when it is a binary fraction, w = m * 5^-q: then m * 2^q, rounded once (int to double) and
 * scaled exactly. A float32 written in full ("347.34271240234375") is one: exactly a double, where Eisel-Lemire's
 * rounded-down powers of ten land just under it and it can't decide. Divisibility and quotient by one
 * multiplication with the inverse of 5^-q modulo 2^64 (Granlund and Montgomery). */
static inline int dyadic(uint64_t w, int64_t q, double *out) {
    if (q >= 0 || q < -27) return 0;
    uint64_t m = w * POW5_64[-q][1]; /* w / 5^-q when divisible */
    if (m > POW5_64[-q][2]) return 0;
    uint64_t bits = (uint64_t)(1023 + q) << 52; /* 2^q, q >= -27: exact, and so is the product's scaling */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    *out = (double)m * scale;
    return 1;
}

#define DIGIT(c) ((unsigned)((c) - '0') < 10u)

/* The run of digits at p (before end): returns its end, and *w becomes *w * 10^digits + their value (wrapping
 * around past 19 digits). (Eight bytes at a time, SWAR, measured no faster here.) */
static inline const unsigned char *scan_digits(const unsigned char *p, const unsigned char *end, uint64_t *w) {
    for (; p < end && DIGIT(*p); p++) *w = *w * 10 + (uint64_t)(*p - '0');
    return p;
}

/* Parse a JSON number. *is_int: an integer token (no fraction, no exponent), then *ival holds it exactly
 * (beyond int64: bail out) and *dval the double Python's float(int) gives. */
HOT int parse_number(Scanner *S, int *is_int, int64_t *ival, double *dval) {
    const unsigned char *s = S->p, *p = S->p, *end = S->end;
    int neg = p < end && *p == '-';
    p += neg;
    /* The digits' value is summed as they are scanned (one pass); past 19 digits it wraps around, unused then. */
    uint64_t w = 0;
    const unsigned char *int_start = p;
    p = scan_digits(p, end, &w);
    const unsigned char *int_end = p;
    if (int_end == int_start) BAIL(S, "malformed JSON or unexpected value");
    if (*int_start == '0' && int_end - int_start > 1) BAIL(S, "malformed number (leading zero)");
    const unsigned char *frac_start = p, *frac_end = p;
    if (p < end && *p == '.') {
        frac_start = ++p;
        p = scan_digits(p, end, &w);
        frac_end = p;
        if (frac_end == frac_start) BAIL(S, "malformed number");
    }
    int64_t e = 0;
    int expo = p < end && (*p == 'e' || *p == 'E');
    if (expo) {
        p++;
        int eneg = p < end && *p == '-';
        p += p < end && (*p == '+' || *p == '-');
        const unsigned char *e_start = p;
        for (; p < end && DIGIT(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0'); /* larger: over- or underflows anyway (strtod decides) */
        if (p == e_start) BAIL(S, "malformed number");
        if (eneg) e = -e;
    }
    S->p = p;
    size_t n_int = (size_t)(int_end - int_start), n_frac = (size_t)(frac_end - frac_start);
    *is_int = frac_start == int_end && !expo; /* no fraction (frac_start is past the dot), no exponent */
    if (*is_int) {
        if (n_int > 19) BAIL(S, "integer beyond int64");
        if (neg ? w > (uint64_t)INT64_MAX + 1 : w > (uint64_t)INT64_MAX) BAIL(S, "integer beyond int64");
        *ival = neg ? (int64_t)(0 - w) : (int64_t)w;
        *dval = (double)*ival;   /* -0 is the integer 0: 0.0, as float(int) */
        return 0;
    }
    size_t n_digits = n_int + n_frac;
    if (n_digits > 19 && *int_start == '0') { /* 0.000ddd: the leading zeros add nothing to w */
        const unsigned char *q = frac_start;
        while (q < frac_end && *q == '0') q++;
        n_digits -= 1 + (size_t)(q - frac_start);
    }
    if (n_digits <= 19) {
        int64_t exp10 = e - (int64_t)n_frac;
        if (w <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
            double d = (double)w; /* exact: w <= 2^53, 10^|e| exact, one correctly rounded operation */
            d = exp10 < 0 ? d / POW10[-exp10] : d * POW10[exp10];
            *dval = neg ? -d : d;
            return 0;
        }
        if (w == 0) {
            *dval = neg ? -0.0 : 0.0;
            return 0;
        }
        double d;
        if (dyadic(w, exp10, &d) || eisel_lemire(w, exp10, &d)) {
            *dval = neg ? -d : d;
            return 0;
        }
    }
    return slow_double(S, s, (size_t)(p - s), dval);
}

/* A number (integer or not) as a double. */
HOT int read_double(Scanner *S, double *out) {
    int is_int;
    int64_t i;
    skip_ws(S);
    return parse_number(S, &is_int, &i, out);
}

/* An integer token (a float such as 1.0 makes the Python path convert it: bail out instead). */
HOT int read_int(Scanner *S, int64_t *out) {
    int is_int;
    double d;
    skip_ws(S);
    TRY(parse_number(S, &is_int, out, &d));
    if (!is_int) BAIL(S, "non-integer id");
    return 0;
}

/* ---- strings -------------------------------------------------------------------------------------------- */
static int hex4(Scanner *S, unsigned *out) {
    if (S->end - S->p < 4) BAIL(S, "malformed JSON string escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = S->p[k];
        unsigned d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 16;
        if (d == 16) BAIL(S, "malformed JSON string escape");
        v = v * 16 + d;
    }
    S->p += 4;
    *out = v;
    return 0;
}

/* The end of the run of plain string characters from p (before end): the first '"', '\\' or byte outside
 * [0x20, 0x80) (ascii) or under 0x20 (!ascii); 16 bytes a step where SSE2 is (every x86-64): a signed byte
 * compare under 0x20 takes the bytes from 0x80 on too (they are negative). */
static inline const unsigned char *plain_run(const unsigned char *p, const unsigned char *end, int ascii) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        __m128i low = ascii ? _mm_cmplt_epi8(v, space) : _mm_and_si128(_mm_cmplt_epi8(v, space),
                                                                      _mm_cmpgt_epi8(v, _mm_set1_epi8(-1)));
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)), low);
        unsigned bits = (unsigned)_mm_movemask_epi8(stop);
        if (bits) return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && (!ascii || *p < 0x80)) p++;
    return p;
}

/* A JSON string of ASCII characters, unescaped into `out` (non-ASCII text: bail out). */
static int read_string(Scanner *S, Buf *out) {
    TRY(expect(S, '"'));
    for (;;) {
        const unsigned char *run = S->p;
        S->p = plain_run(S->p, S->end, 1);
        OOM(S, buf_push(out, run, (size_t)(S->p - run)));
        if (S->p >= S->end) BAIL(S, "unterminated string");
        unsigned char c = *S->p++;
        if (c == '"') return 0;
        if (c != '\\') BAIL(S, c < 0x20 ? "control character in string" : "non-ASCII string");
        if (S->p >= S->end) BAIL(S, "unterminated string");
        unsigned char e = *S->p++;
        unsigned v;
        switch (e) {
        case '"': case '\\': case '/': v = e; break;
        case 'b': v = '\b'; break;
        case 'f': v = '\f'; break;
        case 'n': v = '\n'; break;
        case 'r': v = '\r'; break;
        case 't': v = '\t'; break;
        case 'u': TRY(hex4(S, &v)); if (v >= 0x80) BAIL(S, "non-ASCII string"); break;
        default: BAIL(S, "malformed JSON string escape");
        }
        OOM(S, push_u8(out, (uint8_t)v));
    }
}


/* ---- skipping values: validated, not kept --------------------------------------------------------------- */
/* A JSON string, validated (escapes; raw bytes >= 0x80 are left to the caller's UTF-8 check), not kept. */
static int skip_string(Scanner *S) {
    TRY(expect(S, '"'));
    for (;;) {
        S->p = plain_run(S->p, S->end, 0);
        if (S->p >= S->end) BAIL(S, "unterminated string");
        unsigned char c = *S->p++;
        if (c == '"') return 0;
        if (c != '\\') BAIL(S, "control character in string");
        if (S->p >= S->end) BAIL(S, "unterminated string");
        unsigned char e = *S->p++;
        unsigned v;
        if (e == 'u') TRY(hex4(S, &v));
        else if (!strchr("\"\\/bfnrt", e) || !e) BAIL(S, "malformed JSON string escape");
    }
}

/* The literal `word` at the cursor (true, false, null). */
static int skip_literal(Scanner *S, const char *word, size_t len) {
    if ((size_t)(S->end - S->p) < len || memcmp(S->p, word, len) != 0) BAIL(S, "malformed JSON or unexpected value");
    S->p += len;
    return 0;
}

/* Any JSON value, validated and skipped (nesting up to 64 deep: deeper bails out). */
static int skip_value(Scanner *S, int depth) {
    if (depth > 64) BAIL(S, "nested too deeply");
    skip_ws(S);
    if (S->p >= S->end) BAIL(S, "malformed JSON or unexpected value");
    switch (*S->p) {
    case '{':
        S->p++;
        if (accept(S, '}')) return 0;
        do {
            skip_ws(S);
            TRY(skip_string(S));
            TRY(expect(S, ':'));
            TRY(skip_value(S, depth + 1));
        } while (accept(S, ','));
        return expect(S, '}');
    case '[':
        S->p++;
        if (accept(S, ']')) return 0;
        do TRY(skip_value(S, depth + 1)); while (accept(S, ','));
        return expect(S, ']');
    case '"': return skip_string(S);
    case 't': return skip_literal(S, "true", 4);
    case 'f': return skip_literal(S, "false", 5);
    case 'n': return skip_literal(S, "null", 4);
    default: {
        int is_int;
        int64_t i;
        double d;
        return parse_number(S, &is_int, &i, &d);
    }
    }
}

#endif /* MASLOW_JSON_SCAN_H */
