#ifndef RUNSC_CSHIM_HOSTEPOLL_H
#define RUNSC_CSHIM_HOSTEPOLL_H
#include <stdint.h>
#include <sys/epoll.h>

/* The host's epoll for the Sentry's host poller, without struct epoll_event
 * (packed on x86_64) crossing into Swift: each FD is its own key. */

/* epoll_ctl(epfd, op, fd) with `events` and the FD as data; -1 with errno set on failure. */
static inline int cshim_epoll_ctl(int epfd, int op, int fd, uint32_t events) {
    struct epoll_event event = { .events = events, .data = { .fd = fd } };
    return epoll_ctl(epfd, op, fd, &event);
}

/* Waits (no timeout) for up to `max` events: their FDs and events in the
 * arrays; returns how many, or -1 with errno set. */
static inline int cshim_epoll_wait(int epfd, int *fds, uint32_t *events, int max) {
    struct epoll_event ready[64];
    if (max > 64) max = 64;
    int count = epoll_wait(epfd, ready, max, -1);
    for (int i = 0; i < count; i++) {
        fds[i] = ready[i].data.fd;
        events[i] = ready[i].events;
    }
    return count;
}

#endif
