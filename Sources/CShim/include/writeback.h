#ifndef RUNSC_CSHIM_WRITEBACK_H
#define RUNSC_CSHIM_WRITEBACK_H
/*
 * sync_file_range(2) with SYNC_FILE_RANGE_WRITE, which Glibc's Swift overlay
 * does not export (it needs _GNU_SOURCE): an image writer starts the disk
 * writing what it has appended so far while it compresses the rest, so the
 * final fsync only waits for the tail.
 */

/* Starts writeback of the dirty pages in [offset, offset + length) without
 * waiting for it. Returns 0 or -1 with errno set. */
int cshim_start_writeback(int fd, long long offset, long long length);

#endif
