#ifndef RUNSC_CSHIM_PIDFD_H
#define RUNSC_CSHIM_PIDFD_H
#include <sys/types.h>

/* Waits up to `timeout_ms` for process `pid` (any process, not only a child)
 * to exit, through a pidfd: returns 1 if it exited (or does not exist), 0 on
 * timeout, -errno if pidfds are unavailable (the caller then polls). */
int cshim_wait_for_exit(pid_t pid, int timeout_ms);

#endif
