#define _GNU_SOURCE
#include "zeropages.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define CSHIM_MADV_POPULATE_WRITE 23
#else
#define CSHIM_MADV_POPULATE_WRITE MADV_POPULATE_WRITE
#endif

#include <string.h>

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

bool cshim_is_zero(const void *data, size_t length) {
    const uint8_t *p = data;
    /* A page in use usually has data in its first bytes: test those first. */
    if (length >= 8 && load64(p) != 0) return false;
    while (length >= 64) {
        uint64_t any = load64(p) | load64(p + 8) | load64(p + 16) | load64(p + 24)
                     | load64(p + 32) | load64(p + 40) | load64(p + 48) | load64(p + 56);
        if (any != 0) return false;
        p += 64;
        length -= 64;
    }
    while (length >= 8) {
        if (load64(p) != 0) return false;
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        if (*p != 0) return false;
        p++;
        length--;
    }
    return true;
}

static size_t mark_run(const uint8_t *base, size_t first, size_t end, size_t pageSize, uint8_t *bitmap) {
    size_t present = 0;
    for (size_t i = first; i < end; i++) {
        if (!cshim_is_zero(base + i * pageSize, pageSize)) {
            bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
            present++;
        }
    }
    return present;
}

size_t cshim_mark_nonzero_pages(const void *base, size_t pageCount, size_t pageSize, uint8_t *bitmap,
                                const size_t *runs, size_t runCount) {
    if (runs == NULL) return mark_run(base, 0, pageCount, pageSize, bitmap);
    size_t present = 0;
    for (size_t r = 0; r < runCount; r++) {
        size_t first = runs[2 * r], end = runs[2 * r + 1];
        if (end > pageCount) end = pageCount;
        if (first < end) present += mark_run(base, first, end, pageSize, bitmap);
    }
    return present;
}

int64_t cshim_seek_data(int fd, uint64_t offset, bool hole) {
    off_t result = lseek(fd, (off_t)offset, hole ? SEEK_HOLE : SEEK_DATA);
    return result < 0 ? -(int64_t)errno : (int64_t)result;
}

size_t cshim_gather_marked_pages(const void *source, size_t pageCount, size_t pageSize,
                                 const uint8_t *bitmap, void *target) {
    const uint8_t *page = source;
    uint8_t *out = target;
    size_t copied = 0;
    for (size_t i = 0; i < pageCount; i++, page += pageSize) {
        if (bitmap[i / 8] & (1u << (i % 8))) {
            memcpy(out, page, pageSize);
            out += pageSize;
            copied++;
        }
    }
    return copied;
}

/* Faults in the present pages' runs with one madvise each: the kernel fills
 * page tables in bulk instead of taking one fault per page in the copy below
 * (a restore's largest cost). Elided zero pages stay untouched, so sparse
 * memory stays sparse. Best effort: kernels before 5.14 say EINVAL. */
static void populate_present_runs(size_t pageCount, size_t pageSize, const uint8_t *bitmap, uint8_t *target) {
    size_t i = 0;
    while (i < pageCount) {
        if (!(bitmap[i / 8] & (1u << (i % 8)))) { i++; continue; }
        size_t start = i;
        while (i < pageCount && (bitmap[i / 8] & (1u << (i % 8)))) i++;
        (void)madvise(target + start * pageSize, (i - start) * pageSize, CSHIM_MADV_POPULATE_WRITE);
    }
}

void cshim_scatter_pages(const void *source, size_t pageCount, size_t pageSize,
                         const uint8_t *bitmap, void *target) {
    const uint8_t *in = source;
    uint8_t *page = target;
    populate_present_runs(pageCount, pageSize, bitmap, page);
    for (size_t i = 0; i < pageCount; i++, page += pageSize) {
        if (bitmap[i / 8] & (1u << (i % 8))) {
            memcpy(page, in, pageSize);
            in += pageSize;
        }
    }
}

void cshim_prefault_for_write(void *target, size_t length) {
    if (length > 0) (void)madvise(target, length, CSHIM_MADV_POPULATE_WRITE);
}

void cshim_place_all_pages(const void *source, size_t length, void *target) {
    if (length == 0) return;
    cshim_prefault_for_write(target, length);
    memcpy(target, source, length);
}
