#ifndef RUNSC_CSHIM_FCHMODAT_H
#define RUNSC_CSHIM_FCHMODAT_H
#include <sys/types.h>

/*
 * chmod of `name` in the directory `dirfd` without following a symlink there.
 * glibc's fchmodat(AT_SYMLINK_NOFOLLOW) goes through /proc/self/fd, which the
 * sandbox, pivoted into an empty root, does not have (it fails EOPNOTSUPP):
 * this calls fchmodat2 (Linux 6.6), and before it, for a regular file or a
 * directory, fchmod on the file reopened without following a link and checked
 * to be the same inode; other files answer EOPNOTSUPP there. Returns 0 or -1
 * with errno set (EOPNOTSUPP for a symlink, as Linux).
 */
int cshim_fchmodat_nofollow(int dirfd, const char *name, mode_t mode);

#endif
