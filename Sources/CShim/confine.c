#define _GNU_SOURCE
#include "confine.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

int cshim_pivot_root(const char *new_root) {
    if (chdir(new_root) != 0) return -errno;
    if (syscall(SYS_pivot_root, ".", ".") != 0) return -errno;
    if (umount2(".", MNT_DETACH) != 0) return -errno;
    return chdir("/") == 0 ? 0 : -errno;
}
