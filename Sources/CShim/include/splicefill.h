#ifndef RUNSC_CSHIM_SPLICEFILL_H
#define RUNSC_CSHIM_SPLICEFILL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Copies `count` bytes from the start of file `in` to file `out` at
 * `outOffset`, through a pipe (splice both ways): the host copies from its
 * page cache into `out`'s pages, which a memfd allocates without clearing
 * them first, and the caller's mapping of `out` takes no fault. 0 when all
 * of them were copied; -errno otherwise (EIO: `in` ended first), after which
 * the caller copies them another way.
 */
int cshim_splice_file(int in, int out, uint64_t outOffset, size_t count);

#endif
