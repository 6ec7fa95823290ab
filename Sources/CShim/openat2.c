#define _GNU_SOURCE
#include "openat2.h"

#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

int cshim_openat2(int directory, const char *path, unsigned long long flags, unsigned long long mode,
                  unsigned long long resolve) {
    struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
    return (int)syscall(SYS_openat2, directory, path, &how, sizeof how);
}
