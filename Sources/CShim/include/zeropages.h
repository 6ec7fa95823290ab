#ifndef RUNSC_CSHIM_ZEROPAGES_H
#define RUNSC_CSHIM_ZEROPAGES_H
/*
 * Zero-page detection for the pages image: all-zero pages are not stored,
 * because a restored MemoryFile (a fresh memfd) reads as zeros already.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when all `length` bytes are zero; stops at the first non-zero word. */
bool cshim_is_zero(const void *data, size_t length);

/*
 * Marks each non-zero page of `pageCount` pages of `pageSize` bytes in `bitmap`
 * (bit i of byte i/8, least significant first; the caller zeroes the bitmap)
 * and returns how many pages are non-zero.
 */
size_t cshim_mark_nonzero_pages(const void *base, size_t pageCount, size_t pageSize, uint8_t *bitmap);

#endif
