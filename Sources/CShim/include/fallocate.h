#ifndef RUNSC_CSHIM_FALLOCATE_H
#define RUNSC_CSHIM_FALLOCATE_H
/*
 * fallocate(2), which Glibc's Swift overlay does not export (it needs
 * _GNU_SOURCE): hostfs reserves blocks in the host file for the application.
 */

/* Returns 0 or -1 with errno set. */
int cshim_fallocate(int fd, int mode, long long offset, long long length);

#endif
