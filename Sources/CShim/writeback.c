#define _GNU_SOURCE
#include "writeback.h"

#include <fcntl.h>

int cshim_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}
