#define _GNU_SOURCE
#include "fchmodat.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

int cshim_fchmodat_nofollow(int dirfd, const char *name, mode_t mode) {
    if (syscall(SYS_fchmodat2, dirfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0) return 0;
    if (errno != ENOSYS) return -1;
    struct stat before;
    if (fstatat(dirfd, name, &before, AT_SYMLINK_NOFOLLOW) != 0) return -1;
    if (!S_ISREG(before.st_mode) && !S_ISDIR(before.st_mode)) {
        errno = EOPNOTSUPP;
        return -1;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat opened;
    int result = fstat(fd, &opened);
    if (result == 0 && (opened.st_dev != before.st_dev || opened.st_ino != before.st_ino)) {
        errno = ENOENT;
        result = -1;
    }
    if (result == 0) result = fchmod(fd, mode);
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}
