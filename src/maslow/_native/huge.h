/* huge.h: large scratch buffers in transparent huge pages (header-only: static functions).
 *
 * A fresh page costs a fault when first written: about 2 us on a 4 KiB page here (zeroing, accounting), which
 * is a fifth of an evaluation's time at COCO scale. Where the system offers transparent huge pages on request
 * (/sys/kernel/mm/transparent_hugepage/enabled = madvise, the common default), a buffer of a MiB or more is
 * allocated 2 MiB-aligned, rounded up to whole 2 MiB pages and marked MADV_HUGEPAGE: one fault per 2 MiB.
 * Elsewhere (no MADV_HUGEPAGE, or THP off) these are plain malloc/free. numpy does the same for its own
 * allocations of 4 MiB or more.
 */
#ifndef MASLOW_HUGE_H
#define MASLOW_HUGE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)1 << 20) /* below this, malloc: rounding up to 2 MiB would waste more than it saves */

/* Mark the whole 2 MiB pages inside [p, p + len) for huge pages (best effort: a hint). */
static void advise_huge(void *p, size_t len) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    uintptr_t from = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t to = ((uintptr_t)p + len) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (to > from) (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

/* malloc, in whole huge pages from HUGE_MIN bytes on; free with free(). */
static void *big_alloc(size_t size) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (size >= HUGE_MIN && size <= ((size_t)1 << 60)) {
        size_t whole = (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        void *p = NULL;
        if (posix_memalign(&p, HUGE_PAGE, whole) != 0) return NULL;
        advise_huge(p, whole);
        return p;
    }
#endif
    return malloc(size ? size : 1);
}

/* big_alloc, zeroed. */
static void *big_zalloc(size_t size) {
    void *p = big_alloc(size);
    if (p) memset(p, 0, size);
    return p;
}

#endif
