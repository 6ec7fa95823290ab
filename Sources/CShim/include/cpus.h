#ifndef RUNSC_CSHIM_CPUS_H
#define RUNSC_CSHIM_CPUS_H

#include <pthread.h>
#include <sys/types.h>

/*
 * The process's CPUs are its affinity mask as read once at load, before any
 * thread was pinned (the calling thread, or the main thread, may be pinned
 * now): what a cpuset-limited container really gets (sysconf reports the
 * host's count), and what every thread may run on unless placement pins it.
 */

/* How many CPUs this process may run on. */
int cshim_available_cpus(void);
/* The process's CPUs written to `cpus`; returns the count, or -errno. */
int cshim_allowed_cpus(int *cpus, int capacity);
/* The CPU the calling thread runs on now, or -errno. */
int cshim_current_cpu(void);

/* Pins thread `tid` (0: the calling thread) to `cpu`. */
int cshim_pin_thread(pid_t tid, int cpu);
/* Pins the calling thread to `cpu`, or, when another thread pinned itself
 * there and is still pinned, to a CPU of the process where none is: two
 * threads that each keep a CPU busy are not stacked on one (pinned, the host
 * could not move either). Returns the CPU chosen, or -errno. */
int cshim_pin_self_spread(int cpu);
/* The CPU cshim_pin_self_spread would choose from `cpu` were `pinned[c]`
 * threads pinned to each CPU c < `count` (tests). */
int cshim_spread_choice(int cpu, const int *pinned, int count);
/* How many threads are pinned to `cpu` by their own cshim_pin_thread. */
int cshim_pinned_threads(int cpu);
/* Lets thread `tid` (0: the calling thread) run on every CPU of the process. */
int cshim_unpin_thread(pid_t tid);
/* cshim_unpin_thread(0) if the calling thread pinned itself (cshim_pin_thread
 * of 0 or its own TID) and has not been let go since; 0 when there was
 * nothing to do. */
int cshim_unpin_thread_if_pinned(void);
/* The CPU the calling thread pinned itself to and was not let go from since,
 * or -1. */
int cshim_pinned_cpu(void);
/* Lets thread `tid` (0: the calling thread) run on every CPU of the process
 * but `cpu` (on all of them when that leaves none, or for -1): work it does
 * next stays off the CPU the caller is pinned to. */
int cshim_pin_thread_away(pid_t tid, int cpu);
/* Gives thread `tid`, which is about to be killed, the SCHED_IDLE policy:
 * the teardown it runs as it exits (unmapping a whole stub) then yields to
 * any other thread, and the host counts its CPU as idle when it places a
 * waking thread. 0 or -errno. */
int cshim_deprioritize_thread(pid_t tid);
/* Makes a thread created with `attributes` run on every CPU of the process,
 * not only on its creator's (a new thread inherits its creator's mask, and a
 * Sentry thread is pinned while it drives a stub); 0 or an errno. */
int cshim_thread_attributes_any_cpu(pthread_attr_t *attributes);

/* A spin-wait loop's pause: a hint that lets the sibling hyperthread run. */
static inline void cshim_cpu_relax(void) { __builtin_ia32_pause(); }

#endif
