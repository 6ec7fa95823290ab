#define _GNU_SOURCE
#include "cpus.h"
#include "ptrace_stub.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

/* The process's CPUs, read once at load, before any thread (the main one
 * included: a Context made there pins it) is pinned; 0 when read, else -errno. */
static cpu_set_t process_cpus;
static int process_cpus_error = -EAGAIN;

__attribute__((constructor)) static void read_process_cpus(void) {
    CPU_ZERO(&process_cpus);
    process_cpus_error = sched_getaffinity(0, sizeof(process_cpus), &process_cpus) == 0 ? 0 : -errno;
}

int cshim_allowed_cpus(int *cpus, int capacity) {
    if (process_cpus_error != 0) return process_cpus_error;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
        if (CPU_ISSET(cpu, &process_cpus)) cpus[count++] = cpu;
    }
    return count;
}

int cshim_current_cpu(void) {
    int cpu = sched_getcpu();
    return cpu < 0 ? -errno : cpu;
}

/* The CPU the calling thread pinned itself to and was not let go from since, or -1. */
static __thread int pinned_self = -1;

/* How many threads have pinned themselves to each CPU and not been let go:
 * Sentry threads driving their stubs without sleeping. */
static _Atomic int pinned_threads[CPU_SETSIZE];

static int is_self(pid_t tid) { return tid == 0 || tid == cshim_current_tid(); }

static void note_pinned_self(int cpu) {
    if (pinned_self >= 0) atomic_fetch_sub_explicit(&pinned_threads[pinned_self], 1, memory_order_relaxed);
    if (cpu >= 0) atomic_fetch_add_explicit(&pinned_threads[cpu], 1, memory_order_relaxed);
    pinned_self = cpu;
}

int cshim_pin_thread(pid_t tid, int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(tid, sizeof(set), &set) != 0) return -errno;
    if (is_self(tid)) note_pinned_self(cpu);
    return 0;
}

/* The CPU cshim_pin_self_spread takes from `cpu`, with the pinned counts of
 * `given` (tests) or the live ones (NULL). */
static int spread_choice(int cpu, const int *given, int count) {
    if (cpu < 0 || cpu >= count || process_cpus_error != 0) return cpu;
#define PINNED(c) (given ? given[c] : atomic_load_explicit(&pinned_threads[c], memory_order_relaxed))
    if (PINNED(cpu) == 0) return cpu;
    for (int other = 0; other < count; other++) {
        if (other != cpu && CPU_ISSET(other, &process_cpus) && PINNED(other) == 0) return other;
    }
#undef PINNED
    return cpu;
}

int cshim_spread_choice(int cpu, const int *pinned, int count) {
    return spread_choice(cpu, pinned, count < CPU_SETSIZE ? count : CPU_SETSIZE);
}

int cshim_pin_self_spread(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
    int chosen = spread_choice(cpu, NULL, CPU_SETSIZE);
    int result = cshim_pin_thread(0, chosen);
    return result == 0 ? chosen : result;
}

int cshim_pinned_threads(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return 0;
    return atomic_load_explicit(&pinned_threads[cpu], memory_order_relaxed);
}

int cshim_unpin_thread(pid_t tid) {
    return cshim_pin_thread_away(tid, -1);
}

int cshim_unpin_thread_if_pinned(void) {
    return pinned_self >= 0 ? cshim_unpin_thread(0) : 0;
}

int cshim_pinned_cpu(void) { return pinned_self; }

int cshim_pin_thread_away(pid_t tid, int cpu) {
    if (process_cpus_error != 0) return process_cpus_error;
    cpu_set_t set = process_cpus;
    if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_CLR(cpu, &set);
    if (CPU_COUNT(&set) == 0) set = process_cpus;
    if (sched_setaffinity(tid, sizeof(set), &set) != 0) return -errno;
    if (is_self(tid)) note_pinned_self(-1);
    return 0;
}

int cshim_deprioritize_thread(pid_t tid) {
    struct sched_param parameters = { .sched_priority = 0 };
    return sched_setscheduler(tid, SCHED_IDLE, &parameters) == 0 ? 0 : -errno;
}

int cshim_available_cpus(void) {
    if (process_cpus_error == 0) {
        int count = CPU_COUNT(&process_cpus);
        if (count > 0) return count;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

int cshim_thread_attributes_any_cpu(pthread_attr_t *attributes) {
    if (process_cpus_error != 0) return -process_cpus_error;
    return pthread_attr_setaffinity_np(attributes, sizeof(process_cpus), &process_cpus);
}
