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
 *
 * With `runs` (`runCount` pairs of page indices: first, end), only the pages
 * of those runs are read and the others count as zero: the caller knows them
 * to be holes of the file `base` maps, which reading through a shared
 * mapping would allocate.
 */
size_t cshim_mark_nonzero_pages(const void *base, size_t pageCount, size_t pageSize, uint8_t *bitmap,
                                const size_t *runs, size_t runCount);

/*
 * lseek(2) with SEEK_DATA (`hole` false) or SEEK_HOLE (`hole` true), which
 * Glibc's Swift overlay does not name: the offset, or -errno (-ENXIO: no
 * data at or after `offset`).
 */
int64_t cshim_seek_data(int fd, uint64_t offset, bool hole);

/*
 * Copies the pages of `source` marked in `bitmap` (as found by
 * cshim_mark_nonzero_pages) to `target`, one after another; returns how many.
 * For an extent with some zero pages, once the scan has already been done.
 */
size_t cshim_gather_marked_pages(const void *source, size_t pageCount, size_t pageSize,
                                 const uint8_t *bitmap, void *target);

/*
 * The inverse: copies the pages stored one after another at `source` to the
 * pages of `target` marked in `bitmap`, leaving unmarked pages untouched.
 */
void cshim_scatter_pages(const void *source, size_t pageCount, size_t pageSize,
                         const uint8_t *bitmap, void *target);

/*
 * Copies `length` bytes of whole pages to `target` (page-aligned), faulting
 * the destination in with one madvise first: a frame whose pages are all
 * present.
 */
void cshim_place_all_pages(const void *source, size_t length, void *target);

/*
 * Faults in `length` bytes at `target` (page-aligned) for writing with one
 * madvise, before something writes them all (a frame decompressed in place):
 * cheaper than a fault per page. Best effort.
 */
void cshim_prefault_for_write(void *target, size_t length);

#endif
