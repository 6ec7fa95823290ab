#ifndef RUNSC_CSHIM_OPENAT2_H
#define RUNSC_CSHIM_OPENAT2_H
/*
 * openat2(2), which glibc does not wrap: hostfs opens host files beneath a
 * mount's root directory without following links out of it.
 */

/* RESOLVE_* flags of <linux/openat2.h>, for Swift. */
#define CSHIM_RESOLVE_NO_MAGICLINKS 0x02ULL
#define CSHIM_RESOLVE_NO_SYMLINKS 0x04ULL
#define CSHIM_RESOLVE_BENEATH 0x08ULL

/* Returns the new FD, or -1 with errno set (ENOSYS on kernels before 5.6). */
int cshim_openat2(int directory, const char *path, unsigned long long flags, unsigned long long mode,
                  unsigned long long resolve);

#endif
