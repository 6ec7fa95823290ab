#ifndef RUNSC_CSHIM_PTRACE_STUB_H
#define RUNSC_CSHIM_PTRACE_STUB_H
/*
 * The ptrace platform's C half: creating stub processes (fork in a
 * multithreaded process must stay in C) and thin wrappers over the variadic
 * ptrace, waitpid's status macros and siginfo's unions, which Swift cannot
 * call or read. Every wrapper returns 0 (or a value >= 0) on success and
 * -errno on failure, so Swift never reads the global errno.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <elf.h>
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>

/* Where the stub's code page lives in every stub: the last page below the
 * 47-bit user limit. The host stack could only be there if its ASLR offset
 * were zero; application mappings must stay below it. */
#define CSHIM_STUB_ADDRESS 0x7fffffffe000ULL
#define CSHIM_STUB_PAGE_SIZE 4096ULL
/* The one host FD a stub keeps: the MemoryFile. */
#define CSHIM_STUB_MEMFD 3
/* Sent with tgkill to kick a running stub thread back to its tracer. A stub
 * never has children, so a real SIGCHLD cannot be confused with it. */
#define CSHIM_STUB_INTERRUPT_SIGNAL SIGCHLD

/* The most instructions a stub's allow-list filter may have. */
#define CSHIM_STUB_FILTER_MAX 256

/* Address of the stub's `syscall; int3` pair that injected calls run on. */
uint64_t cshim_stub_syscall_address(void);
/* Address of the stub's clone site: `syscall` then, in the parent, an int3
 * whose trap leaves rip at cshim_stub_clone_trap_address(); the new thread
 * waits in pause() there until a tracer seizes it. */
uint64_t cshim_stub_clone_address(void);
uint64_t cshim_stub_clone_trap_address(void);
/* The stub's batch site (see cshim_stub_code_batch in ptrace_stub.c): up
 * to three MemoryFile mmaps or mprotects whose arguments are in registers;
 * it traps with rip at the done address when all succeeded, at the failed
 * address (rax the result, rdi the address) when one failed. */
uint64_t cshim_stub_batch_address(void);
uint64_t cshim_stub_batch_done_address(void);
uint64_t cshim_stub_batch_failed_address(void);
/* The length word's flag in a batch entry that asks for mprotect. */
#define CSHIM_STUB_BATCH_PROTECT 8ULL
/* The flags a stub thread is cloned with: a thread of the stub's process
 * (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM). */
uint64_t cshim_stub_thread_clone_flags(void);

/*
 * Creates a stub process on a long-lived factory thread (so the stub's parent
 * thread, and with it PR_SET_PDEATHSIG, outlives any Sentry thread). The stub
 * keeps only `memfd` (as CSHIM_STUB_MEMFD) and the stub page, has unmapped
 * everything else, and waits in group-stop, not yet traced: the caller
 * seizes it (cshim_ptrace_seize_stopped) and becomes its tracer. Before
 * its first instruction on the stub page the stub sets NoNewPrivs and installs a
 * seccomp filter: any syscall made outside the stub page kills it, and those
 * made on it must pass `filter` (a classic BPF program of at most
 * CSHIM_STUB_FILTER_MAX instructions, read only during the call; NULL with
 * length 0 installs none, for measuring its cost). Returns the
 * pid or -errno (the child's failure is reported as its errno).
 */
pid_t cshim_stub_create(int memfd, const struct sock_filter *filter, unsigned short filter_length);

/* The calling thread's kernel thread ID, cached per thread. */
pid_t cshim_current_tid(void);

/* Size in bytes of the XSAVE area for the features enabled in XCR0 (CPUID
 * leaf 0xD, sub-leaf 0, EBX); 512 + 64 if XSAVE is unavailable. */
uint32_t cshim_xsave_size(void);

/* Names the calling thread (first 15 bytes), as ps and /proc show it. */
void cshim_name_current_thread(const char *name);

static inline int cshim_ptrace_result(long r) { return r < 0 ? -errno : (int)r; }

/* Seizes `tid`, a stub's thread in group-stop (a new or pooled stub), with
 * the trace options (TRACESYSGOOD tells syscall stops from SIGTRAP faults;
 * EXITKILL kills the stub if its tracer thread dies), sending no SIGSTOP:
 * the kernel makes the stopped thread trap at once (the tracer's wait sees
 * a PTRACE_EVENT_STOP), and no SIGSTOP stays queued for the first injected
 * call to swallow in a stop of its own, as PTRACE_ATTACH's would. */
static inline int cshim_ptrace_seize_stopped(pid_t tid) {
    return cshim_ptrace_result(ptrace(PTRACE_SEIZE, tid, 0,
                                      (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)));
}

/* Seizes a running thread with the same options (no SIGSTOP is sent, so
 * the other threads of its process keep running), then stops it with
 * PTRACE_INTERRUPT: the tracer's wait sees a PTRACE_EVENT_STOP. */
static inline int cshim_ptrace_seize_and_interrupt(pid_t tid) {
    long r = ptrace(PTRACE_SEIZE, tid, 0,
                    (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL));
    if (r < 0) return -errno;
    return cshim_ptrace_result(ptrace(PTRACE_INTERRUPT, tid, 0, 0));
}

static inline int cshim_ptrace_get_regs(pid_t tid, struct user_regs_struct *regs) {
    return cshim_ptrace_result(ptrace(PTRACE_GETREGS, tid, 0, regs));
}

static inline int cshim_ptrace_set_regs(pid_t tid, const struct user_regs_struct *regs) {
    return cshim_ptrace_result(ptrace(PTRACE_SETREGS, tid, 0, regs));
}

/* Writes rax alone (PTRACE_POKEUSER): a third of PTRACE_SETREGS's cost,
 * which copies and checks every register. */
static inline int cshim_ptrace_set_rax(pid_t tid, uint64_t value) {
    return cshim_ptrace_result(ptrace(PTRACE_POKEUSER, tid, (void *)offsetof(struct user_regs_struct, rax),
                                      (void *)(uintptr_t)value));
}

/* Whether `a` and `b` hold the same registers, rax aside. */
static inline int cshim_regs_equal_but_rax(const struct user_regs_struct *a, const struct user_regs_struct *b) {
    const size_t rax = offsetof(struct user_regs_struct, rax), after = rax + sizeof(a->rax);
    return memcmp(a, b, rax) == 0
        && memcmp((const char *)a + after, (const char *)b + after, sizeof(*a) - after) == 0;
}

/* Reads the XSAVE area; on success *length is what the kernel wrote. */
static inline int cshim_ptrace_get_xstate(pid_t tid, void *buffer, size_t *length) {
    struct iovec iov = { buffer, *length };
    long r = ptrace(PTRACE_GETREGSET, tid, (void *)(uintptr_t)NT_X86_XSTATE, &iov);
    if (r < 0) return -errno;
    *length = iov.iov_len;
    return 0;
}

static inline int cshim_ptrace_set_xstate(pid_t tid, const void *buffer, size_t length) {
    struct iovec iov = { (void *)buffer, length };
    return cshim_ptrace_result(ptrace(PTRACE_SETREGSET, tid, (void *)(uintptr_t)NT_X86_XSTATE, &iov));
}

/* Writes only the legacy FXSAVE region (512 bytes): the host keeps the
 * other XSAVE components as they are and marks x87 and SSE in use. Cheaper
 * than PTRACE_SETREGSET of the XSAVE area, which allocates kernel memory
 * (vmalloc) at every call. */
static inline int cshim_ptrace_set_fxsave(pid_t tid, const void *buffer) {
    return cshim_ptrace_result(ptrace(PTRACE_SETFPREGS, tid, 0, (void *)buffer));
}

/* Resumes with PTRACE_SYSEMU: the next syscall stops before running and is
 * never run by the host. Pending signals are suppressed (data 0). */
static inline int cshim_ptrace_sysemu(pid_t tid) {
    return cshim_ptrace_result(ptrace(PTRACE_SYSEMU, tid, 0, 0));
}

/* Resumes without syscall stops (for injected calls, which run for real). */
static inline int cshim_ptrace_cont(pid_t tid) {
    return cshim_ptrace_result(ptrace(PTRACE_CONT, tid, 0, 0));
}

/* The fault's signal, si_code and si_addr of the current signal-delivery-stop. */
static inline int cshim_ptrace_get_fault(pid_t tid, int *signo, int *code, uint64_t *address) {
    siginfo_t info;
    if (ptrace(PTRACE_GETSIGINFO, tid, 0, &info) < 0) return -errno;
    *signo = info.si_signo;
    *code = info.si_code;
    *address = (uint64_t)(uintptr_t)info.si_addr;
    return 0;
}

/* waitpid(tid, __WALL), retrying EINTR. */
static inline int cshim_wait_thread(pid_t tid, int *status) {
    for (;;) {
        pid_t r = waitpid(tid, status, __WALL);
        if (r >= 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

static inline int cshim_status_stopped(int status) { return WIFSTOPPED(status); }
static inline int cshim_status_stop_signal(int status) { return WSTOPSIG(status); }
/* The PTRACE_EVENT_* of a stop, 0 for none. */
static inline int cshim_status_event(int status) { return (status >> 16) & 0xff; }
/* Whether a seized tracee's stop is a group-stop (PTRACE_EVENT_STOP with a
 * stopping signal), not a PTRACE_INTERRUPT (SIGTRAP) or a signal's stop. */
static inline int cshim_status_group_stop(int status) {
    if (((status >> 16) & 0xff) != PTRACE_EVENT_STOP) return 0;
    int signal = WSTOPSIG(status);
    return signal == SIGSTOP || signal == SIGTSTP || signal == SIGTTIN || signal == SIGTTOU;
}
static inline int cshim_status_exited(int status) { return WIFEXITED(status); }
static inline int cshim_status_exit_code(int status) { return WEXITSTATUS(status); }
static inline int cshim_status_signaled(int status) { return WIFSIGNALED(status); }
static inline int cshim_status_term_signal(int status) { return WTERMSIG(status); }

static inline int cshim_tgkill(pid_t tgid, pid_t tid, int sig) {
    return cshim_ptrace_result(syscall(SYS_tgkill, tgid, tid, sig));
}

static inline int cshim_kill(pid_t pid, int sig) {
    return cshim_ptrace_result(kill(pid, sig));
}

#endif
