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

#endif
