/* The Sentry's own vDSO: clock_gettime, gettimeofday, time, clock_getres and
 * getcpu without a trap. The clocks are read from the data page the Sentry
 * keeps ([vvar], the page just below this image: see vdso.lds and
 * Sources/CShim/include/vdso_params.h); anything the page does not cover
 * (another clock, a TSC the Sentry does not trust) is the real syscall, which
 * traps into the Sentry like any other. No libc, no relocations, no host
 * addresses: the image is position independent and the same in every sandbox.
 * Built by scripts/build-vdso into Sources/Sentry/Time/VDSOImage.swift. */
#include <stdint.h>
#include <stddef.h>
#include "vdso_params.h"

/* Linux's numbers (uapi/linux/time.h, asm/unistd_64.h). */
#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_clock_getres 229
#define SYS_getcpu 309
#define NSEC_PER_SEC 1000000000LL
/* CONFIG_HZ=250, as the Sentry's clock_getres says for the coarse clocks. */
#define COARSE_RESOLUTION_NSEC 4000000LL

struct timespec64 { int64_t tv_sec; int64_t tv_nsec; };
struct timeval64 { int64_t tv_sec; int64_t tv_usec; };

/* Placed one page below the image by vdso.lds. */
extern const volatile struct cshim_vdso_params vvar_params __attribute__((visibility("hidden")));

static long fallback(long number, long a, long b, long c) {
    long result;
    __asm__ __volatile__("syscall" : "=a"(result) : "0"(number), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return result;
}

/* Out of line, as it always was: the functions glibc found in an image's
 * vDSO keep their addresses (vdso_params.h's reader is inlined here). */
static __attribute__((noinline)) int read_clock(int realtime, int64_t *nanoseconds) {
    return cshim_vdso_read_clock(&vvar_params, realtime, nanoseconds);
}

static int clock_kind(long clock) {
    switch (clock) {
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_MONOTONIC_COARSE: case CLOCK_BOOTTIME: return 0;
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: return 1;
    default: return -1;
    }
}

long __vdso_clock_gettime(long clock, struct timespec64 *ts) {
    int kind = clock_kind(clock);
    int64_t now;
    if (kind < 0 || !read_clock(kind, &now)) return fallback(SYS_clock_gettime, clock, (long)ts, 0);
    ts->tv_sec = now / NSEC_PER_SEC;
    ts->tv_nsec = now % NSEC_PER_SEC;
    return 0;
}

long __vdso_gettimeofday(struct timeval64 *tv, void *tz) {
    int64_t now;
    if (tz != NULL || !read_clock(1, &now)) return fallback(SYS_gettimeofday, (long)tv, (long)tz, 0);
    if (tv != NULL) {
        tv->tv_sec = now / NSEC_PER_SEC;
        tv->tv_usec = now % NSEC_PER_SEC / 1000;
    }
    return 0;
}

long __vdso_time(int64_t *t) {
    int64_t now;
    if (!read_clock(1, &now)) return fallback(SYS_time, (long)t, 0, 0);
    int64_t seconds = now / NSEC_PER_SEC;
    if (t != NULL) *t = seconds;
    return seconds;
}

long __vdso_clock_getres(long clock, struct timespec64 *res) {
    int kind = clock_kind(clock);
    if (kind < 0 || !vvar_params.tsc_usable) return fallback(SYS_clock_getres, clock, (long)res, 0);
    if (res != NULL) {
        res->tv_sec = 0;
        res->tv_nsec = clock == CLOCK_REALTIME_COARSE || clock == CLOCK_MONOTONIC_COARSE ? COARSE_RESOLUTION_NSEC : 1;
    }
    return 0;
}

/* The Sentry's getcpu syscall answers CPU 0 on node 0 (Syscalls+Process.swift); so does this. */
long __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache) {
    (void)cache;
    if (cpu != NULL) *cpu = 0;
    if (node != NULL) *node = 0;
    return 0;
}

long clock_gettime(long, struct timespec64 *) __attribute__((weak, alias("__vdso_clock_gettime")));
long gettimeofday(struct timeval64 *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(int64_t *) __attribute__((weak, alias("__vdso_time")));
long clock_getres(long, struct timespec64 *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
