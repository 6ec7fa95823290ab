#ifndef RUNSC_CSHIM_FUTEX_H
#define RUNSC_CSHIM_FUTEX_H
/* Atomic operations on a futex word in the Sentry's mapping of application
 * memory, which other application threads change at the same time; and the
 * host's membarrier, which glibc does not wrap. */
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/membarrier.h>

/* membarrier(MEMBARRIER_CMD_GLOBAL): returns once every host CPU has passed
 * a full barrier; 0 or -errno. */
static inline int cshim_membarrier_global(void) {
    return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0 ? 0 : -errno;
}

static inline uint32_t cshim_atomic_load_u32(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_SEQ_CST);
}

/* Stores `desired` if the word holds `expected`; returns the value seen. */
static inline uint32_t cshim_atomic_cmpxchg_u32(uint32_t *word, uint32_t expected, uint32_t desired) {
    __atomic_compare_exchange_n(word, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}

/* FUTEX_WAKE_OP's operation (FUTEX_OP_SET, ADD, OR, ANDN, XOR: 0..4) on the
 * word; returns the old value. The caller checks `op` is one of them. */
static inline uint32_t cshim_atomic_futex_op(uint32_t *word, int op, uint32_t argument) {
    switch (op) {
    case 0: return __atomic_exchange_n(word, argument, __ATOMIC_SEQ_CST);
    case 1: return __atomic_fetch_add(word, argument, __ATOMIC_SEQ_CST);
    case 2: return __atomic_fetch_or(word, argument, __ATOMIC_SEQ_CST);
    case 3: return __atomic_fetch_and(word, ~argument, __ATOMIC_SEQ_CST);
    default: return __atomic_fetch_xor(word, argument, __ATOMIC_SEQ_CST);
    }
}
#endif
