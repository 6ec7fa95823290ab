#include <seccomp.h>
#include <stdint.h>
/* What the host filters compare arguments against and Glibc's module does not
 * export: prctl's options and clone's namespace flags. */
#include <linux/prctl.h>
#include <linux/sched.h>

/* SCMP_ACT_ERRNO is a function-like macro, which Swift cannot call. */
static inline uint32_t cseccomp_act_errno(uint16_t error) { return SCMP_ACT_ERRNO(error); }
