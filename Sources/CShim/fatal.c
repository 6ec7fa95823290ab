#define _GNU_SOURCE
#include "fatal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ucontext.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report_fd = -1;
static char report_prefix[128];

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGABRT};

static const char *fatal_signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL (a Swift runtime trap: the message before this line says which)";
    case SIGTRAP: return "SIGTRAP (a Swift runtime trap: the message before this line says which)";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "a fatal signal";
    }
}

/* Appends `text` to `line` at `*used`, never past `size`. */
static void append(char *line, size_t size, size_t *used, const char *text) {
    while (*text && *used < size) line[(*used)++] = *text++;
}

static void append_number(char *line, size_t size, size_t *used, unsigned long value, unsigned base) {
    char digits[32];
    int count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value && count < (int)sizeof digits);
    while (count > 0 && *used < size) line[(*used)++] = digits[--count];
}

/* Writes `line` to the report FD, retrying short writes and EINTR. */
static void write_report(const char *line, size_t used) {
    if (report_fd < 0) return;
    size_t done = 0;
    while (done < used) {
        ssize_t written = write(report_fd, line + done, used - done);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) break;
        done += (size_t)written;
    }
}

static void fatal_signal_handler(int sig, siginfo_t *info, void *context) {
    (void)context;
    int saved = errno;
    char line[512];
    size_t used = 0;
    char thread[17] = {0};
    prctl(PR_GET_NAME, thread, 0, 0, 0);
    append(line, sizeof line, &used, report_prefix);
    append(line, sizeof line, &used, ": fatal signal ");
    append(line, sizeof line, &used, fatal_signal_name(sig));
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGTRAP || sig == SIGFPE) {
        append(line, sizeof line, &used, " at address 0x");
        append_number(line, sizeof line, &used, (unsigned long)info->si_addr, 16);
    }
    append(line, sizeof line, &used, " in thread \"");
    append(line, sizeof line, &used, thread);
    append(line, sizeof line, &used, "\" (tid ");
    append_number(line, sizeof line, &used, (unsigned long)syscall(SYS_gettid), 10);
    append(line, sizeof line, &used, "); the sandbox process dies, without a core dump\n");
    write_report(line, used);
    errno = saved;
    /* SA_RESETHAND restored the default action: a fault re-executes and the
     * kernel forces its signal, which kills even a PID namespace's init. A
     * signal sent by kill or abort cannot be raised again: the sandbox is the
     * init of its PID namespace, and the kernel drops a default-action signal
     * it sends itself (abort would go on to hlt and die of SIGSEGV). It exits
     * with the status a shell gives a death by that signal instead. */
    if (info->si_code <= 0) syscall(SYS_exit_group, 128 + sig);
}

int cshim_install_fatal_signal_report(int fd, const char *prefix) {
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return -errno;
    report_fd = fd;
    strncpy(report_prefix, prefix, sizeof report_prefix - 1);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = fatal_signal_handler;
    action.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++) {
        if (sigaction(fatal_signals[i], &action, NULL) != 0) return -errno;
    }
    return 0;
}

static const char *const *forbidden_names;
static unsigned long forbidden_name_count;

static void forbidden_syscall_handler(int sig, siginfo_t *info, void *context) {
    (void)sig;
    int saved = errno;
    ucontext_t *user = context;
    char line[512];
    size_t used = 0;
    char thread[17] = {0};
    prctl(PR_GET_NAME, thread, 0, 0, 0);
    unsigned long number = (unsigned long)info->si_syscall;
    append(line, sizeof line, &used, report_prefix);
    append(line, sizeof line, &used, ": host seccomp filter: forbidden host syscall ");
    if (number < forbidden_name_count && forbidden_names[number]) {
        append(line, sizeof line, &used, forbidden_names[number]);
    } else {
        append(line, sizeof line, &used, "?");
    }
    append(line, sizeof line, &used, " (");
    append_number(line, sizeof line, &used, number, 10);
    append(line, sizeof line, &used, ") args");
    static const int argument_registers[] = {REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9};
    for (size_t i = 0; i < 6; i++) {
        append(line, sizeof line, &used, " 0x");
        append_number(line, sizeof line, &used, (unsigned long)user->uc_mcontext.gregs[argument_registers[i]], 16);
    }
    append(line, sizeof line, &used, " in thread \"");
    append(line, sizeof line, &used, thread);
    append(line, sizeof line, &used, "\" (tid ");
    append_number(line, sizeof line, &used, (unsigned long)syscall(SYS_gettid), 10);
    append(line, sizeof line, &used, "); --debug: it fails with ENOSYS instead of killing the sandbox\n");
    write_report(line, used);
    user->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
    errno = saved;
}

int cshim_install_forbidden_syscall_report(const char *const *names, unsigned long count) {
    forbidden_names = names;
    forbidden_name_count = count;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = forbidden_syscall_handler;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGSYS, &action, NULL) == 0 ? 0 : -errno;
}

long cshim_forbidden_host_call(void) {
    long result = syscall(SYS_acct, NULL);
    return result < 0 ? -errno : result;
}
