#define _GNU_SOURCE
#include "pidfd.h"

#include <errno.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int cshim_wait_for_exit(pid_t pid, int timeout_ms) {
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return errno == ESRCH ? 1 : -errno;
    struct pollfd entry = { .fd = fd, .events = POLLIN };
    int ready;
    do {
        ready = poll(&entry, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (ready < 0) return -saved;
    return ready > 0 ? 1 : 0;
}
