#ifndef RUNSC_CSHIM_SCMRIGHTS_H
#define RUNSC_CSHIM_SCMRIGHTS_H
/*
 * Descriptors over an AF_UNIX socket (SCM_RIGHTS), whose CMSG_* macros Swift
 * cannot call: `runsc exec` passes its stdio to the sandbox this way.
 */
#include <stddef.h>
#include <sys/types.h>

/* The most descriptors one message carries. */
#define CSHIM_MAX_PASSED_FDS 8

/* sendmsg of `length` bytes with `count` (at most CSHIM_MAX_PASSED_FDS)
 * descriptors attached, MSG_NOSIGNAL. Returns the bytes sent or -errno. */
ssize_t cshim_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count);

/* recvmsg of up to `length` bytes, MSG_CMSG_CLOEXEC. Descriptors that came
 * with them are stored in `fds` (room for CSHIM_MAX_PASSED_FDS) and counted in
 * `*count`; a truncated control message closes what arrived and fails with
 * -EMSGSIZE. Returns the bytes received (0 at end of stream) or -errno. */
ssize_t cshim_recv_with_fds(int socket, void *bytes, size_t length, int *fds, int *count);

#endif
