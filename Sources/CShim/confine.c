#define _GNU_SOURCE
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/capability.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int cshim_set_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

static int capabilities_get(struct __user_cap_data_struct data[2]) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    return syscall(SYS_capget, &header, data) == 0 ? 0 : -errno;
}

int cshim_limit_capabilities(uint64_t keep) {
    int last = CAP_LAST_CAP;
    long reported = prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0);
    /* A kernel newer than our headers knows more capabilities: walk until it says EINVAL. */
    while (reported >= 0 && last < 63) {
        last++;
        reported = prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0);
    }
    for (int cap = 0; cap <= last; cap++) {
        if (keep & (1ULL << cap)) continue;
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return -errno;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return -errno;

    struct __user_cap_data_struct data[2];
    int got = capabilities_get(data);
    if (got != 0) return got;
    for (int word = 0; word < 2; word++) {
        uint32_t kept = (uint32_t)(keep >> (32 * word));
        data[word].permitted &= kept;
        data[word].effective = data[word].permitted;
        data[word].inheritable = 0;
    }
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}


int cshim_unshare_namespace(const char *name) {
    static const struct { const char *name; int flag; } kinds[] = {
        { "mnt", CLONE_NEWNS }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS }, { "net", CLONE_NEWNET },
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        if (strcmp(kinds[i].name, name) != 0) continue;
        if (unshare(kinds[i].flag) != 0) return -errno;
        if (kinds[i].flag == CLONE_NEWNS && mount("none", "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) return -errno;
        return 0;
    }
    return -EINVAL;
}

int cshim_pivot_root(const char *new_root, int *pivoted) {
    *pivoted = 0;
    if (chdir(new_root) != 0) return -errno;
    if (syscall(SYS_pivot_root, ".", ".") != 0) {
        int code = errno;
        /* The caller detaches `new_root`: its working directory must not hold it. */
        chdir("/");
        return -code;
    }
    *pivoted = 1;
    if (umount2(".", MNT_DETACH) != 0) return -errno;
    return chdir("/") == 0 ? 0 : -errno;
}

/* In the clone child: sends errno to the parent and exits. */
static void child_fail(int report) {
    int code = errno;
    while (write(report, &code, sizeof code) < 0 && errno == EINTR) {}
    _exit(127);
}

int cshim_spawn_in_new_pid_namespace(const char *path, char *const argv[], char *const envp[], int stdio_fd,
                                     int keep_fd, int keep_target, const int *close_fds, int close_count,
                                     const int *default_signals, int default_count, int *child_failed) {
    *child_failed = 0;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    long pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid < 0) {
        int code = errno;
        close(report[0]);
        close(report[1]);
        return -code;
    }
    if (pid > 0) {
        close(report[1]);
        int code = 0;
        ssize_t got;
        while ((got = read(report[0], &code, sizeof code)) < 0 && errno == EINTR) {}
        close(report[0]);
        if (got != (ssize_t)sizeof code) return (int)pid;
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR) {}
        *child_failed = 1;
        return -code;
    }
    close(report[0]);
    /* Above every FD the child sets up or closes, so none of it touches the report pipe. */
    int floor = keep_target > 2 ? keep_target + 1 : 3;
    for (int i = 0; i < close_count; i++) {
        if (close_fds[i] >= floor) floor = close_fds[i] + 1;
    }
    int moved = fcntl(report[1], F_DUPFD_CLOEXEC, floor);
    if (moved < 0) child_fail(report[1]);
    close(report[1]);
    if (stdio_fd >= 0) {
        for (int fd = 0; fd <= 2; fd++) {
            if (dup2(stdio_fd, fd) < 0) child_fail(moved);
        }
    }
    if (keep_fd >= 0) {
        if (dup2(keep_fd, keep_target) < 0) child_fail(moved);
    } else {
        int null = open("/dev/null", O_RDWR);
        if (null < 0) child_fail(moved);
        for (int fd = 0; fd <= 2; fd++) {
            if (dup2(null, fd) < 0) child_fail(moved);
        }
        if (null > 2) close(null);
    }
    for (int i = 0; i < close_count; i++) close(close_fds[i]);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int i = 0; i < default_count; i++) sigaction(default_signals[i], &action, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(path, argv, envp);
    child_fail(moved);
    return -1;
}
