#include "hash64.h"

#include <string.h>

/* Odd 64-bit constants with well-mixed bits (golden ratio and friends). */
static const uint64_t M1 = 0x9E3779B97F4A7C15ULL;
static const uint64_t M2 = 0xD6E8FEB86659FD93ULL;
static const uint64_t M3 = 0xFF51AFD7ED558CCDULL;
static const uint64_t M4 = 0xC4CEB9FE1A85EC53ULL;

static inline uint64_t rotl(uint64_t x, unsigned r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v; /* little-endian hosts only (x86_64, aarch64): the format is little-endian */
}

static inline uint32_t load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t mix_lane(uint64_t lane, uint64_t word) {
    lane += word * M2;
    lane = rotl(lane, 29);
    return lane * M1;
}

static inline void consume_stripes(uint64_t lanes[4], const uint8_t *p, size_t stripes) {
    uint64_t a = lanes[0], b = lanes[1], c = lanes[2], d = lanes[3];
    for (size_t i = 0; i < stripes; i++, p += 32) {
        a = mix_lane(a, load64(p));
        b = mix_lane(b, load64(p + 8));
        c = mix_lane(c, load64(p + 16));
        d = mix_lane(d, load64(p + 24));
    }
    lanes[0] = a; lanes[1] = b; lanes[2] = c; lanes[3] = d;
}

static inline uint64_t avalanche(uint64_t h) {
    h ^= h >> 31;
    h *= M3;
    h ^= h >> 29;
    h *= M4;
    h ^= h >> 32;
    return h;
}

void cshim_hash64_reset(cshim_hash64_state *state, uint64_t seed) {
    state->lanes[0] = seed + M1 + M2;
    state->lanes[1] = seed + M2;
    state->lanes[2] = seed;
    state->lanes[3] = seed - M1;
    state->total = 0;
    state->seed = seed;
    state->pendingCount = 0;
}

void cshim_hash64_update(cshim_hash64_state *state, const void *data, size_t length) {
    const uint8_t *p = data;
    state->total += length;
    if (state->pendingCount > 0) {
        size_t take = 32 - state->pendingCount;
        if (take > length) take = length;
        memcpy(state->pending + state->pendingCount, p, take);
        state->pendingCount += (uint32_t)take;
        p += take;
        length -= take;
        if (state->pendingCount < 32) return;
        consume_stripes(state->lanes, state->pending, 1);
        state->pendingCount = 0;
    }
    size_t stripes = length / 32;
    consume_stripes(state->lanes, p, stripes);
    p += stripes * 32;
    length -= stripes * 32;
    if (length > 0) {
        memcpy(state->pending, p, length);
        state->pendingCount = (uint32_t)length;
    }
}

uint64_t cshim_hash64_digest(const cshim_hash64_state *state) {
    uint64_t h;
    if (state->total >= 32) {
        const uint64_t *v = state->lanes;
        h = rotl(v[0], 1) + rotl(v[1], 9) + rotl(v[2], 17) + rotl(v[3], 25);
        for (int i = 0; i < 4; i++) {
            h ^= mix_lane(0, v[i]);
            h = h * M1 + M4;
        }
    } else {
        h = state->seed + M3;
    }
    h += state->total;

    const uint8_t *p = state->pending;
    size_t left = state->pendingCount;
    while (left >= 8) {
        h ^= mix_lane(0, load64(p));
        h = rotl(h, 27) * M1 + M4;
        p += 8;
        left -= 8;
    }
    if (left >= 4) {
        h ^= (uint64_t)load32(p) * M1;
        h = rotl(h, 23) * M2 + M3;
        p += 4;
        left -= 4;
    }
    while (left > 0) {
        h ^= (uint64_t)(*p) * M4;
        h = rotl(h, 11) * M1;
        p++;
        left--;
    }
    return avalanche(h);
}

uint64_t cshim_hash64(const void *data, size_t length, uint64_t seed) {
    cshim_hash64_state state;
    cshim_hash64_reset(&state, seed);
    cshim_hash64_update(&state, data, length);
    return cshim_hash64_digest(&state);
}
