#ifndef RUNSC_CSHIM_MEMFD_H
#define RUNSC_CSHIM_MEMFD_H
/*
 * memfd_create, which glibc declares only under _GNU_SOURCE (so Swift's
 * Glibc module does not see it). Returns the FD or -errno.
 */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CSHIM_MFD_CLOEXEC 0x0001U

static inline int cshim_memfd_create(const char *name, unsigned int flags) {
    long fd = syscall(SYS_memfd_create, name, flags);
    return fd < 0 ? -errno : (int)fd;
}

#endif
