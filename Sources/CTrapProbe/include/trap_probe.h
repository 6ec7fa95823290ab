#ifndef RUNSC_TRAP_PROBE_H
#define RUNSC_TRAP_PROBE_H
/* Benchmark probes for trap mechanisms other than the ptrace platform's
 * (runsc-bench platform): what a seccomp SECCOMP_RET_TRAP + SIGSYS hand-off
 * through shared memory would cost on this host, as gVisor's systrap
 * platform does it. Never linked into runsc. */
#include <stdint.h>

/* How the trapped thread and its server hand over. */
enum trap_probe_handoff {
    /* Both pinned to one CPU; each side sleeps in FUTEX_WAIT until woken. */
    TRAP_PROBE_FUTEX_SAME_CPU = 0,
    /* Pinned to two CPUs; each side spins on the shared word, never sleeps. */
    TRAP_PROBE_SPIN_TWO_CPUS = 1,
};

/* Forks a child that makes `iterations` getppid calls, each trapped by its
 * seccomp filter into a SIGSYS handler that hands the call to this thread
 * through a shared page and returns the answer. Returns the child's wall
 * time per call in ns (>= 0), or -errno (-EINVAL: two CPUs asked for and
 * fewer given). `cpus` are the CPUs to pin to (the first, or the first two). */
int64_t trap_probe_sigsys_round_trip(int64_t iterations, enum trap_probe_handoff handoff,
                                     const int *cpus, int cpu_count);
#endif
