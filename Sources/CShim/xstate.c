#include "xstate.h"

#include <cpuid.h>

uint64_t cshim_xsave_features(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return 0x3;
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}

uint32_t cshim_xsave_component_offset(uint32_t component) {
    unsigned int eax, ebx, ecx, edx;
    if (component < 2 || !__get_cpuid_count(0xd, component, &eax, &ebx, &ecx, &edx) || eax == 0) return 0;
    return ebx;
}
