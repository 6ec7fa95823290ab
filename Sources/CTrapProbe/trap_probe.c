/*
 * A SIGSYS round trip, as a systrap-style platform would make one: the
 * application thread's syscall is turned into SIGSYS by its seccomp filter
 * (SECCOMP_RET_TRAP); the handler publishes the call in a shared page and
 * waits; the server (the caller's thread, standing for a Sentry thread)
 * writes the result; the handler puts it in the signal frame's rax and
 * returns through rt_sigreturn.
 */
#define _GNU_SOURCE
#include "trap_probe.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

enum { IDLE = 0, TRAPPED = 1, ANSWERED = 2, FAILED = 3 };

struct probe_page {
    uint32_t state;
    int32_t spin;
    int64_t answer;
    int64_t nanoseconds;
};

static struct probe_page *probe;

/* Four arguments: FUTEX_WAIT reads its timeout (the fourth, r10), NULL here. */
static long raw_syscall(long number, long a, long b, long c) {
    long result;
    register long d __asm__("r10") = 0;
    __asm__ volatile("syscall" : "=a"(result) : "a"(number), "D"(a), "S"(b), "d"(c), "r"(d) : "rcx", "r11", "memory");
    return result;
}

static void wait_while(uint32_t *word, uint32_t value, int spin) {
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == value) {
        if (spin) __builtin_ia32_pause();
        else raw_syscall(SYS_futex, (long)word, FUTEX_WAIT, value);
    }
}

/* The server's wait_while: 0 once the child is gone without saying FAILED
 * (a signal killed it), looked at after each 100 ms of waiting or each
 * 2^20 polls, so a dead child cannot leave the server waiting forever. */
static int server_wait_while(uint32_t *word, uint32_t value, int spin, pid_t child) {
    const struct timespec slice = {0, 100000000};
    for (unsigned long polls = 1; __atomic_load_n(word, __ATOMIC_ACQUIRE) == value; polls++) {
        if (spin) {
            __builtin_ia32_pause();
            if (polls % (1UL << 20) != 0) continue;
        } else if (syscall(SYS_futex, word, FUTEX_WAIT, value, &slice, NULL, 0) == 0 || errno != ETIMEDOUT) {
            continue;
        }
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)child, &info, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 && info.si_pid == child) return 0;
    }
    return 1;
}

static void publish(uint32_t *word, uint32_t value, int spin) {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
    if (!spin) raw_syscall(SYS_futex, (long)word, FUTEX_WAKE, 1);
}

static void on_sigsys(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)info;
    ucontext_t *frame = context;
    publish(&probe->state, TRAPPED, probe->spin);
    wait_while(&probe->state, TRAPPED, probe->spin);
    frame->uc_mcontext.gregs[REG_RAX] = probe->answer;
}

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The child gives up: the server stops waiting for its traps. */
static void __attribute__((noreturn)) fail(int status) {
    __atomic_store_n(&probe->state, FAILED, __ATOMIC_RELEASE);
    raw_syscall(SYS_futex, (long)&probe->state, FUTEX_WAKE, 1);
    _exit(status);
}

/* The child: async-signal-safe calls only (the caller is multithreaded). */
static void __attribute__((noreturn)) run_child(int64_t iterations, int cpu) {
    if (pin(cpu) != 0) fail(10);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigsys;
    action.sa_flags = SA_SIGINFO;
    sigfillset(&action.sa_mask);
    if (sigaction(SIGSYS, &action, NULL) != 0) fail(11);
    sigset_t unblocked;
    sigemptyset(&unblocked);
    sigaddset(&unblocked, SIGSYS);
    if (sigprocmask(SIG_UNBLOCK, &unblocked, NULL) != 0) fail(12);
    struct sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog filter = { sizeof program / sizeof program[0], program };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(13);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) != 0) fail(14);
    int64_t start = now_ns();
    for (int64_t i = 0; i < iterations; i++) {
        if (raw_syscall(SYS_getppid, 0, 0, 0) != i) fail(15);
    }
    probe->nanoseconds = (now_ns() - start) / iterations;
    _exit(0);
}

int64_t trap_probe_sigsys_round_trip(int64_t iterations, enum trap_probe_handoff handoff,
                                     const int *cpus, int cpu_count) {
    int spin = handoff == TRAP_PROBE_SPIN_TWO_CPUS;
    if (iterations <= 0 || cpu_count < (spin ? 2 : 1)) return -EINVAL;
    probe = mmap(NULL, sizeof *probe, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED) return -errno;
    probe->state = IDLE;
    probe->spin = spin;
    probe->nanoseconds = -1;
    cpu_set_t saved;
    if (sched_getaffinity(0, sizeof saved, &saved) != 0) {
        int error = -errno;
        munmap(probe, sizeof *probe);
        return error;
    }
    int error = pin(cpus[0]);
    pid_t child = error == 0 ? (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, NULL, NULL, 0UL) : -1;
    if (child == 0) run_child(iterations, spin ? cpus[1] : cpus[0]);
    if (child < 0 && error == 0) error = -errno;
    for (int64_t i = 0; child > 0 && i < iterations; i++) {
        if (!server_wait_while(&probe->state, IDLE, spin, child)) break;
        if (__atomic_load_n(&probe->state, __ATOMIC_ACQUIRE) == FAILED) break;
        probe->answer = i;
        /* ANSWERED until the next trap: the handler moves it back through
         * TRAPPED, so the server waits on ANSWERED, not IDLE. */
        publish(&probe->state, ANSWERED, spin);
        if (i + 1 < iterations && !server_wait_while(&probe->state, ANSWERED, spin, child)) break;
    }
    int status = 0;
    if (child > 0 && waitpid(child, &status, __WALL) < 0) error = -errno;
    sched_setaffinity(0, sizeof saved, &saved);
    int64_t result = error != 0 ? error
        : !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? -ECHILD : probe->nanoseconds;
    munmap(probe, sizeof *probe);
    return result;
}
