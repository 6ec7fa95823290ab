#ifndef RUNSC_CSHIM_FATAL_H
#define RUNSC_CSHIM_FATAL_H

/* For the sandbox process: sets RLIMIT_CORE to 0 (soft and hard) so a fault
 * never writes the Sentry's address space to disk, and installs handlers for
 * the signals a fault or a Swift runtime trap raises (SIGSEGV, SIGBUS, SIGILL,
 * SIGTRAP, SIGFPE, SIGABRT). Each writes one line to `fd` with write(2) only
 * (async-signal-safe): `prefix`, the signal, the fault address and the name
 * and TID of the thread, then the process dies of the signal. Returns 0 or
 * -errno. */
int cshim_install_fatal_signal_report(int fd, const char *prefix);

/* For the sandbox process's host seccomp filter in its logging mode
 * (SECCOMP_RET_TRAP under --debug): installs a SIGSYS handler that writes one
 * line to the fatal report's `fd` (call cshim_install_fatal_signal_report
 * first) naming the forbidden host syscall by `names[number]` (`count`
 * entries, NULL where unknown; the caller keeps them alive), its arguments
 * and the thread, then makes the call return -ENOSYS. Returns 0 or -errno. */
int cshim_install_forbidden_syscall_report(const char *const *names, unsigned long count);

/* Test hook: makes acct(NULL), a host call the Sentry never makes, and
 * returns its result or -errno. */
long cshim_forbidden_host_call(void);

#endif
