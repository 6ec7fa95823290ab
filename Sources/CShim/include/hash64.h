#ifndef RUNSC_CSHIM_HASH64_H
#define RUNSC_CSHIM_HASH64_H
/*
 * A fast non-cryptographic 64-bit hash for image frame checksums: four
 * independent multiply-rotate lanes over 32-byte stripes (so the CPU overlaps
 * the multiplies), then a final avalanche. It detects corruption; it does not
 * resist an adversary.
 */
#include <stddef.h>
#include <stdint.h>

/* Streaming state; one-shot and streaming hashes of the same bytes agree. */
typedef struct cshim_hash64_state {
    uint64_t lanes[4];
    uint64_t total;
    uint64_t seed;
    uint8_t pending[32];
    uint32_t pendingCount;
} cshim_hash64_state;

void cshim_hash64_reset(cshim_hash64_state *state, uint64_t seed);
void cshim_hash64_update(cshim_hash64_state *state, const void *data, size_t length);
uint64_t cshim_hash64_digest(const cshim_hash64_state *state);
uint64_t cshim_hash64(const void *data, size_t length, uint64_t seed);

#endif
