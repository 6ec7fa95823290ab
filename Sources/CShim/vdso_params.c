#include "vdso_params.h"
#include <cpuid.h>

int cshim_tsc_is_invariant(void) {
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_max(0x80000000, 0) < 0x80000007) return 0;
    __cpuid(0x80000007, eax, ebx, ecx, edx);
    return (edx >> 8) & 1;
}

void cshim_vdso_write_begin(struct cshim_vdso_params *page) {
    volatile struct cshim_vdso_params *p = page;
    p->sequence = p->sequence + 1;
    /* A full fence: the odd sequence is visible before the writer reads the TSC it bases the new values on. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void cshim_vdso_write_end(struct cshim_vdso_params *page, const struct cshim_vdso_params *values) {
    volatile struct cshim_vdso_params *p = page;
    p->tsc_usable = values->tsc_usable;
    p->base_tsc = values->base_tsc;
    p->base_monotonic = values->base_monotonic;
    p->multiplier = values->multiplier;
    p->shift = values->shift;
    p->realtime_offset = values->realtime_offset;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    p->sequence = p->sequence + 1;
}
