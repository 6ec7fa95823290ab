/*
 * Stub processes for the ptrace platform.
 *
 * A stub is forked from a dedicated factory thread, so that its parent thread
 * (the one PR_SET_PDEATHSIG watches) lives as long as the Sentry. The child
 * runs only async-signal-safe C and raw syscalls: it keeps the MemoryFile as
 * CSHIM_STUB_MEMFD and closes every other FD, resets signal state, drops the
 * inherited rseq registration, copies
 * the stub code to CSHIM_STUB_ADDRESS, sets NoNewPrivs, installs the stub's
 * seccomp filter (see stub_install_filter) and jumps there. The stub code unmaps
 * everything below itself (the host binary, libraries, stack, vDSO and vvar)
 * and stops itself with SIGSTOP. The requesting Sentry thread then seizes it
 * and becomes the stub's tracer.
 */
#define _GNU_SOURCE
#include "ptrace_stub.h"
#include "cpus.h"

#include <cpuid.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>

/*
 * The stub page. Position independent, needs no stack: entry at offset 0,
 * then `syscall; int3` at cshim_stub_code_syscall for injected calls (the
 * int3 returns control to the tracer after the call). On a setup failure the
 * stub exits with the errno as its status.
 */
__asm__(
    ".pushsection .text.cshim_stub, \"ax\", @progbits\n"
    ".balign 16\n"
    ".globl cshim_stub_code_start\n"
    ".hidden cshim_stub_code_start\n"
    "cshim_stub_code_start:\n"
    "    mov $11, %eax\n"                 /* munmap(0, CSHIM_STUB_ADDRESS) */
    "    xor %edi, %edi\n"
    "    movabs $0x7fffffffe000, %rsi\n"
    "    syscall\n"
    "    test %rax, %rax\n"
    "    jnz 1f\n"
    "    mov $39, %eax\n"                 /* kill(getpid(), SIGSTOP) */
    "    syscall\n"
    "    mov %rax, %rdi\n"
    "    mov $19, %esi\n"
    "    mov $62, %eax\n"
    "    syscall\n"
    "    int3\n"
    ".globl cshim_stub_code_syscall\n"
    ".hidden cshim_stub_code_syscall\n"
    "cshim_stub_code_syscall:\n"
    "    syscall\n"
    "    int3\n"
    /* An injected clone of a stub thread: the parent traps as after any
     * injected call; the new thread, which nobody traces yet, waits in
     * pause() (it has no stack and needs none) until its tracer seizes it. */
    ".globl cshim_stub_code_clone\n"
    ".hidden cshim_stub_code_clone\n"
    "cshim_stub_code_clone:\n"
    "    syscall\n"
    "    test %rax, %rax\n"
    "    jz 2f\n"
    "    int3\n"
    ".globl cshim_stub_code_clone_trap\n"
    ".hidden cshim_stub_code_clone_trap\n"
    "cshim_stub_code_clone_trap:\n"
    "2:\n"
    "    mov $34, %eax\n"                /* pause() */
    "    syscall\n"
    "    jmp 2b\n"
    /* Batched MemoryFile mmaps and mprotects, up to three in one stop,
     * their arguments in registers only (other threads of the stub run the
     * application meanwhile: nothing here reads its memory). Entries are in
     * (rdi, rsi, rdx), (rbx, rbp, r12), (r13, r14, r15), each (address,
     * length | op, file offset); op's bits 0-2 are the protection, bit 3
     * asks for mprotect instead of mmap(MAP_SHARED | MAP_FIXED, the
     * MemoryFile); a zero second word ends the batch. The call's success is
     * rax equal to its address (mmap) or 0 (mprotect; mmap at a nonzero
     * address never returns 0). All done: int3 before batch_done; a call
     * failed: int3 before batch_failed, with rax its result and rdi its
     * address. */
    ".globl cshim_stub_code_batch\n"
    ".hidden cshim_stub_code_batch\n"
    "cshim_stub_code_batch:\n"
    "3:\n"
    "    test %rsi, %rsi\n"
    "    jz 5f\n"
    "    mov %rdx, %r9\n"
    "    mov %rsi, %rdx\n"
    "    and $7, %edx\n"
    "    mov $0x11, %r10d\n"             /* MAP_SHARED | MAP_FIXED */
    "    mov $3, %r8d\n"                 /* CSHIM_STUB_MEMFD */
    "    mov $9, %eax\n"                 /* mmap */
    "    bt $3, %rsi\n"
    "    jnc 4f\n"
    "    mov $10, %eax\n"                /* mprotect */
    "4:\n"
    "    and $-4096, %rsi\n"
    "    syscall\n"
    "    cmp %rdi, %rax\n"
    "    je 6f\n"
    "    test %rax, %rax\n"
    "    jnz 7f\n"
    "6:\n"
    "    mov %rbx, %rdi\n"
    "    mov %rbp, %rsi\n"
    "    mov %r12, %rdx\n"
    "    mov %r13, %rbx\n"
    "    mov %r14, %rbp\n"
    "    mov %r15, %r12\n"
    "    xor %r14d, %r14d\n"
    "    jmp 3b\n"
    "5:\n"
    "    int3\n"
    ".globl cshim_stub_code_batch_done\n"
    ".hidden cshim_stub_code_batch_done\n"
    "cshim_stub_code_batch_done:\n"
    "7:\n"
    "    int3\n"
    ".globl cshim_stub_code_batch_failed\n"
    ".hidden cshim_stub_code_batch_failed\n"
    "cshim_stub_code_batch_failed:\n"
    "1:\n"
    "    mov %rax, %rdi\n"                /* exit_group(-rax) */
    "    neg %rdi\n"
    "    mov $231, %eax\n"
    "    syscall\n"
    "    ud2\n"
    ".globl cshim_stub_code_end\n"
    ".hidden cshim_stub_code_end\n"
    "cshim_stub_code_end:\n"
    ".popsection\n");

extern const char cshim_stub_code_start[];
extern const char cshim_stub_code_syscall[];
extern const char cshim_stub_code_end[];
extern const char cshim_stub_code_clone[];
extern const char cshim_stub_code_clone_trap[];
extern const char cshim_stub_code_batch[];
extern const char cshim_stub_code_batch_done[];
extern const char cshim_stub_code_batch_failed[];

uint64_t cshim_stub_syscall_address(void) {
    return CSHIM_STUB_ADDRESS + (uint64_t)(cshim_stub_code_syscall - cshim_stub_code_start);
}

uint64_t cshim_stub_clone_address(void) {
    return CSHIM_STUB_ADDRESS + (uint64_t)(cshim_stub_code_clone - cshim_stub_code_start);
}

uint64_t cshim_stub_thread_clone_flags(void) {
    return CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
}

uint64_t cshim_stub_batch_address(void) {
    return CSHIM_STUB_ADDRESS + (uint64_t)(cshim_stub_code_batch - cshim_stub_code_start);
}

uint64_t cshim_stub_batch_done_address(void) {
    return CSHIM_STUB_ADDRESS + (uint64_t)(cshim_stub_code_batch_done - cshim_stub_code_start);
}

uint64_t cshim_stub_batch_failed_address(void) {
    return CSHIM_STUB_ADDRESS + (uint64_t)(cshim_stub_code_batch_failed - cshim_stub_code_start);
}

uint64_t cshim_stub_clone_trap_address(void) {
    return CSHIM_STUB_ADDRESS + (uint64_t)(cshim_stub_code_clone_trap - cshim_stub_code_start);
}

/* The kernel's struct sigaction for rt_sigaction (glibc's differs). */
struct stub_kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/*
 * The child inherits the forking thread's rseq registration, whose area is in
 * that thread's TLS, which the stub unmaps; the kernel would then raise
 * SIGSEGV on the next return to user mode that updates it. The registration
 * must be undone with the exact length glibc used (__rseq_size, or the
 * original 32 bytes for glibc versions that report a smaller feature size).
 */
static int stub_unregister_rseq(void) {
    if (__rseq_size == 0) return 0;
    void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
    unsigned int lengths[2] = { __rseq_size, 32 };
    int err = 0;
    for (int i = 0; i < 2; i++) {
        if (syscall(SYS_rseq, area, lengths[i], 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG) == 0) return 0;
        err = errno;
    }
    return err;
}

static void __attribute__((noreturn)) stub_fail(long err) {
    syscall(SYS_exit_group, err > 0 && err < 256 ? err : EIO);
    __builtin_unreachable();
}

/*
 * Installs `allow` behind a prefix that kills the stub for any syscall whose
 * instruction pointer is outside the stub page. The application's syscalls
 * never reach the filter (PTRACE_SYSEMU stops them before seccomp runs and
 * skips them), so it sees only what runs for real: the stub code's own calls
 * and the Sentry's injected ones, all made from the stub page. The prefix is
 * hand-written because libseccomp cannot compare the instruction pointer;
 * `allow` (built with libseccomp) then checks the call and its arguments.
 * Its jumps are relative, so it runs unchanged after the prefix.
 */
static long stub_install_filter(const struct sock_filter *allow, unsigned short count) {
    enum { prefix_length = 6 };
    struct sock_filter program[prefix_length + CSHIM_STUB_FILTER_MAX];
    if (count == 0 || count > CSHIM_STUB_FILTER_MAX) return EINVAL;
    const uint32_t ip_low = offsetof(struct seccomp_data, instruction_pointer);
    const struct sock_filter prefix[prefix_length] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_low + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(CSHIM_STUB_ADDRESS >> 32), 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_low),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, (uint32_t)~(CSHIM_STUB_PAGE_SIZE - 1)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)CSHIM_STUB_ADDRESS, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    for (int i = 0; i < prefix_length; i++) program[i] = prefix[i];
    for (unsigned i = 0; i < count; i++) program[prefix_length + i] = allow[i];
    struct sock_fprog fprog = { (unsigned short)(prefix_length + count), program };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return errno;
    return 0;
}

/* Runs in the child after fork: raw syscalls only, never returns. */
static void __attribute__((noreturn)) stub_child(int memfd, pid_t parent, const struct sock_filter *filter,
                                                 unsigned short filter_length) {
    if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) stub_fail(errno);
    if (syscall(SYS_getppid) != parent) stub_fail(ESRCH);
    int rseq_error = stub_unregister_rseq();
    if (rseq_error != 0) stub_fail(rseq_error);
    /* Out of the terminal's process group: Ctrl-C is for the Sentry. */
    syscall(SYS_setsid);
    /* The sandbox becomes non-dumpable when it drops capabilities, and the
     * stub inherits that; tracing a non-dumpable process would need
     * CAP_SYS_PTRACE, which would let the sandbox trace any host process.
     * The stub holds nothing of the Sentry's, so it may be dumpable. */
    if (syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) stub_fail(errno);
    static const char name[16] = "runsc-stub";
    syscall(SYS_prctl, PR_SET_NAME, name, 0, 0, 0);

    struct stub_kernel_sigaction dfl = { SIG_DFL, 0, NULL, 0 };
    for (int sig = 1; sig <= 64; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
    }
    uint64_t empty = 0;
    if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, 8) != 0) stub_fail(errno);

    if (memfd != CSHIM_STUB_MEMFD && syscall(SYS_dup2, memfd, CSHIM_STUB_MEMFD) < 0) stub_fail(errno);
    if (syscall(SYS_fcntl, CSHIM_STUB_MEMFD, F_GETFD) < 0) stub_fail(errno);
    if (syscall(SYS_close_range, 0, CSHIM_STUB_MEMFD - 1, 0) != 0) stub_fail(errno);
    if (syscall(SYS_close_range, CSHIM_STUB_MEMFD + 1, ~0U, 0) != 0) stub_fail(errno);

    long page = syscall(SYS_mmap, CSHIM_STUB_ADDRESS, CSHIM_STUB_PAGE_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (page == -1) stub_fail(errno);
    if ((uint64_t)page != CSHIM_STUB_ADDRESS) stub_fail(EEXIST);
    size_t size = (size_t)(cshim_stub_code_end - cshim_stub_code_start);
    /* A byte loop, not memcpy: nothing from libc that could touch locks. */
    volatile char *dst = (volatile char *)(uintptr_t)page;
    for (size_t i = 0; i < size; i++) dst[i] = cshim_stub_code_start[i];
    if (syscall(SYS_mprotect, page, CSHIM_STUB_PAGE_SIZE, PROT_READ | PROT_EXEC) != 0) stub_fail(errno);
    if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) stub_fail(errno);
    if (filter != NULL) {
        long filter_error = stub_install_filter(filter, filter_length);
        if (filter_error != 0) stub_fail(filter_error);
    }

    ((void (*)(void))(uintptr_t)page)();
    stub_fail(EFAULT);
}

/* Forks one stub and waits until it has stopped itself (or failed). */
static pid_t stub_fork(int memfd, const struct sock_filter *filter, unsigned short filter_length) {
    pid_t parent = getpid();
    /* Raw clone: fork() would run pthread_atfork handlers in a multithreaded process. */
    long pid = syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, NULL, NULL, 0UL);
    if (pid < 0) return -errno;
    if (pid == 0) stub_child(memfd, parent, filter, filter_length);

    int status = 0;
    for (;;) {
        if (waitpid((pid_t)pid, &status, WUNTRACED | __WALL) >= 0) break;
        if (errno != EINTR) {
            int err = errno;
            kill((pid_t)pid, SIGKILL);
            waitpid((pid_t)pid, &status, __WALL);
            return -err;
        }
    }
    if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP) return (pid_t)pid;
    if (WIFSTOPPED(status)) {
        kill((pid_t)pid, SIGKILL);
        waitpid((pid_t)pid, &status, __WALL);
        return -EPROTO;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) return -WEXITSTATUS(status);
    return -ECHILD;
}

/* One request at a time; `factory_serial` serialises requesters. */
static pthread_once_t factory_once = PTHREAD_ONCE_INIT;
static int factory_start_error;
static pthread_mutex_t factory_serial = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t factory_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t factory_cond = PTHREAD_COND_INITIALIZER;
static struct {
    int pending;
    int done;
    int memfd;
    const struct sock_filter *filter;
    unsigned short filter_length;
    pid_t result;
} factory_request;

static void *factory_main(void *unused) {
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    /* Named by itself: pthread_setname_np on another thread opens its
     * /proc/self/task/TID/comm, which the host seccomp filter refuses. */
    prctl(PR_SET_NAME, "stub-factory", 0, 0, 0);
    for (;;) {
        pthread_mutex_lock(&factory_mutex);
        while (!factory_request.pending) pthread_cond_wait(&factory_cond, &factory_mutex);
        int memfd = factory_request.memfd;
        const struct sock_filter *filter = factory_request.filter;
        unsigned short filter_length = factory_request.filter_length;
        pthread_mutex_unlock(&factory_mutex);

        pid_t result = stub_fork(memfd, filter, filter_length);

        pthread_mutex_lock(&factory_mutex);
        factory_request.pending = 0;
        factory_request.result = result;
        factory_request.done = 1;
        pthread_cond_broadcast(&factory_cond);
        pthread_mutex_unlock(&factory_mutex);
    }
    return NULL;
}

static void factory_start(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    cshim_thread_attributes_any_cpu(&attr);
    pthread_t thread;
    factory_start_error = pthread_create(&thread, &attr, factory_main, NULL);
    pthread_attr_destroy(&attr);
}

pid_t cshim_stub_create(int memfd, const struct sock_filter *filter, unsigned short filter_length) {
    if (memfd < 0) return -EBADF;
    if ((filter == NULL) != (filter_length == 0) || filter_length > CSHIM_STUB_FILTER_MAX) return -EINVAL;
    pthread_once(&factory_once, factory_start);
    if (factory_start_error != 0) return -factory_start_error;

    pthread_mutex_lock(&factory_serial);
    pthread_mutex_lock(&factory_mutex);
    factory_request.memfd = memfd;
    factory_request.filter = filter;
    factory_request.filter_length = filter_length;
    factory_request.done = 0;
    factory_request.pending = 1;
    pthread_cond_broadcast(&factory_cond);
    while (!factory_request.done) pthread_cond_wait(&factory_cond, &factory_mutex);
    pid_t result = factory_request.result;
    pthread_mutex_unlock(&factory_mutex);
    pthread_mutex_unlock(&factory_serial);
    return result;
}

static __thread pid_t cached_tid;

pid_t cshim_current_tid(void) {
    if (cached_tid == 0) cached_tid = (pid_t)syscall(SYS_gettid);
    return cached_tid;
}

uint32_t cshim_xsave_size(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx) || ebx == 0) return 512 + 64;
    return ebx;
}


void cshim_name_current_thread(const char *name) {
    char buffer[16];
    strncpy(buffer, name, sizeof(buffer) - 1);
    buffer[sizeof(buffer) - 1] = 0;
    prctl(PR_SET_NAME, buffer, 0, 0, 0);
}
