#ifndef RUNSC_CSHIM_RENAMEAT_H
#define RUNSC_CSHIM_RENAMEAT_H
/*
 * renameat2(2) flags that Glibc's Swift overlay does not expose: used to put
 * a finished image directory in place atomically.
 */

/* Atomically swaps two existing paths; returns 0 or -1 with errno set. */
int cshim_rename_exchange(const char *from, const char *to);

/* Renames only if `to` does not exist (EEXIST otherwise); returns 0 or -1 with errno set. */
int cshim_rename_noreplace(const char *from, const char *to);

#endif
