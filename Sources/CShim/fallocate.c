#define _GNU_SOURCE
#include "fallocate.h"

#include <fcntl.h>

int cshim_fallocate(int fd, int mode, long long offset, long long length) {
    return fallocate(fd, mode, offset, length);
}
