#define _GNU_SOURCE
#include "splicefill.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int cshim_splice_file(int in, int out, uint64_t outOffset, size_t count) {
    int pipes[2];
    if (pipe2(pipes, O_CLOEXEC) != 0) return -errno;
    /* A larger pipe moves more per call; its default size works too. */
    (void)fcntl(pipes[1], F_SETPIPE_SZ, 1 << 20);
    __off64_t inOffset = 0, outPosition = (__off64_t)outOffset;
    size_t done = 0;
    int result = 0;
    while (done < count) {
        ssize_t got = splice(in, &inOffset, pipes[1], NULL, count - done, SPLICE_F_MOVE);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            result = got == 0 ? -EIO : -errno;
            break;
        }
        size_t moved = 0;
        while (moved < (size_t)got) {
            ssize_t put = splice(pipes[0], NULL, out, &outPosition, (size_t)got - moved, SPLICE_F_MOVE);
            if (put < 0 && errno == EINTR) continue;
            if (put <= 0) {
                result = put == 0 ? -EIO : -errno;
                break;
            }
            moved += (size_t)put;
        }
        if (result != 0) break;
        done += moved;
    }
    close(pipes[0]);
    close(pipes[1]);
    return result;
}
