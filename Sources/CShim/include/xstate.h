#ifndef CSHIM_XSTATE_H
#define CSHIM_XSTATE_H

#include <stdint.h>

/* The XSAVE feature mask the host kernel enables (XCR0, read with xgetbv):
 * the FP/SIMD state components a saved task's XSAVE area may hold, which a
 * restoring host must also enable. 0x3 (x87, SSE) if XSAVE is unavailable. */
uint64_t cshim_xsave_features(void);

/* The byte offset of XSAVE state component `component` in the standard
 * (non-compacted) layout (CPUID leaf 0xD); 0 when the CPU does not say. */
uint32_t cshim_xsave_component_offset(uint32_t component);

#endif
