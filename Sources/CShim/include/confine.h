#ifndef RUNSC_CSHIM_CONFINE_H
#define RUNSC_CSHIM_CONFINE_H
/* The sandbox process's own confinement on the host: prctl is variadic,
 * capset a raw syscall, unshare and CLONE_NEW* are declared only under
 * _GNU_SOURCE; Swift sees none of them. Each returns 0 or -errno. */
#include <stdint.h>
#include <linux/capability.h>

/* PR_SET_NO_NEW_PRIVS: no exec by this process or its children (the stubs)
 * can gain privileges, and seccomp filters need no CAP_SYS_ADMIN. */
int cshim_set_no_new_privs(void);

/* Keeps only the capabilities whose bits are set in `keep` (bit n is
 * capability n): every other one leaves the bounding set (this needs
 * CAP_SETPCAP, so it runs first), the ambient set is cleared, the inheritable
 * set emptied, and permitted and effective become `keep` (within what is
 * permitted now). Returns 0 or the first failure's -errno. */
int cshim_limit_capabilities(uint64_t keep);

/* Moves the calling thread into a new namespace of the kind /proc/PID/ns
 * calls `name` ("mnt", "ipc", "uts", "net"; EINVAL for others). A new mount
 * namespace is a copy of the current one; its mounts are then made slaves,
 * so mounts made inside never propagate out. Returns 0 or -errno. */
int cshim_unshare_namespace(const char *name);

/* pivot_root(2) into `new_root`, a mount point: the old root is stacked on the
 * new one by pivot_root(".", "."), detached (MNT_DETACH), and the working
 * directory becomes the new "/". Returns 0 or -errno; `*pivoted` says whether
 * pivot_root itself succeeded (then a failure is the detach or the chdir,
 * and the old root may still be stacked on "/"). A failed pivot_root leaves
 * the working directory at the old "/". */
int cshim_pivot_root(const char *new_root, int *pivoted);

/* Starts `path` as posix_spawn would with these file actions, but as the
 * init of a new PID namespace (clone with CLONE_NEWPID, which posix_spawn
 * cannot ask for): in the child, `stdio_fd` (if >= 0) becomes 0, 1 and 2;
 * `keep_fd` becomes `keep_target`, or without it (-1) 0, 1 and 2 are
 * /dev/null; the `close_fds` are closed; the `default_signals` get their
 * default action and no signal is blocked. The child makes raw calls only
 * until execve (this process may have threads). Returns the child's PID as
 * this namespace sees it, or -errno: with `*child_failed` 0, the clone's
 * (EPERM without CAP_SYS_ADMIN); with 1, the child's setup or execve's, sent
 * back through a close-on-exec pipe (the child is reaped). */
int cshim_spawn_in_new_pid_namespace(const char *path, char *const argv[], char *const envp[], int stdio_fd,
                                     int keep_fd, int keep_target, const int *close_fds, int close_count,
                                     const int *default_signals, int default_count, int *child_failed);

#endif
