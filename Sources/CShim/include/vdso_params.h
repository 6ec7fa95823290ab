#ifndef CSHIM_VDSO_PARAMS_H
#define CSHIM_VDSO_PARAMS_H

#include <stdint.h>

/* The vDSO's data page ([vvar]), one for the whole sandbox: the Sentry
 * (Sources/Sentry/Time/Timekeeper.swift) writes it, the vDSO (vdso/vdso.c)
 * reads it. One definition for both sides, as gVisor's vdso params page.
 *
 * The container's clocks as a function of the TSC:
 *   monotonic(tsc) = base_monotonic + ((tsc - base_tsc) * multiplier) >> shift
 *   realtime(tsc)  = monotonic(tsc) + realtime_offset
 * CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW and the coarse clocks read as
 * CLOCK_MONOTONIC or CLOCK_REALTIME do, as the Sentry's clock_gettime
 * answers them. A reader retries while `sequence` is odd or changed under it
 * (a seqcount); `tsc_usable` zero sends every call to the real syscall. */
/* The layout of `struct cshim_vdso_params` (and what its fields mean) that a
 * vDSO's code expects. An image saves it with the vDSO's code it carries; a
 * restore refuses one whose layout differs (the saved code would misread the
 * page). Bump it with every change of the struct or of its meaning. */
#define CSHIM_VDSO_LAYOUT_VERSION 1

struct cshim_vdso_params {
    uint64_t sequence;
    uint64_t tsc_usable;
    uint64_t base_tsc;
    int64_t base_monotonic;
    uint64_t multiplier;
    uint64_t shift;
    int64_t realtime_offset;
};

/* The TSC, ordered after the loads before it (Linux's rdtsc_ordered). */
static inline uint64_t cshim_rdtsc(void) {
    uint32_t low, high;
    __asm__ __volatile__("lfence; rdtsc" : "=a"(low), "=d"(high) :: "memory");
    return ((uint64_t)high << 32) | low;
}

/* The clock at `tsc` from a page's values (a TSC a hair behind the base,
 * another CPU's read, counts as the base). */
static inline int64_t cshim_vdso_monotonic_at(uint64_t base_tsc, int64_t base, uint64_t multiplier, uint64_t shift,
                                              uint64_t tsc) {
    uint64_t delta = tsc > base_tsc ? tsc - base_tsc : 0;
    return base + (int64_t)(((unsigned __int128)delta * multiplier) >> shift);
}

/* Nanoseconds of CLOCK_MONOTONIC (realtime: plus the offset) read from
 * `p` as its seqcount allows; 0 when the page says to ask the Sentry. The
 * one reader of the page: the vDSO's, and the Sentry's own clocks'. */
static inline int cshim_vdso_read_clock(const volatile struct cshim_vdso_params *p, int realtime, int64_t *nanoseconds) {
    uint64_t sequence, tsc, base_tsc, multiplier, shift;
    int64_t base, offset;
    do {
        sequence = p->sequence;
        __asm__ __volatile__("" ::: "memory");
        if (sequence & 1) continue;
        if (!p->tsc_usable) return 0;
        base_tsc = p->base_tsc;
        base = p->base_monotonic;
        multiplier = p->multiplier;
        shift = p->shift;
        offset = p->realtime_offset;
        tsc = cshim_rdtsc();
        __asm__ __volatile__("" ::: "memory");
    } while ((sequence & 1) || p->sequence != sequence);
    int64_t value = cshim_vdso_monotonic_at(base_tsc, base, multiplier, shift, tsc);
    *nanoseconds = realtime ? value + offset : value;
    return 1;
}

/* Whether the CPU's TSC ticks at a constant rate through every P- and C-state
 * (CPUID 0x80000007 EDX bit 8, "invariant TSC": Linux's constant_tsc and nonstop_tsc). */
int cshim_tsc_is_invariant(void);

/* A writer's side of the seqcount: `begin` makes `sequence` odd (readers
 * wait), `end` stores `values` (all but the sequence) and makes it even
 * again. Out of line, so no compiler moves the stores across them. */
void cshim_vdso_write_begin(struct cshim_vdso_params *page);
void cshim_vdso_write_end(struct cshim_vdso_params *page, const struct cshim_vdso_params *values);

#endif
