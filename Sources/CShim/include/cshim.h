#ifndef RUNSC_CSHIM_H
#define RUNSC_CSHIM_H
/* C that Swift cannot call directly; one header per concern, all included here. */
#include "hostepoll.h"
#include "cpus.h"
#include "hash64.h"
#include "fallocate.h"
#include "renameat.h"
#include "fchmodat.h"
#include "zeropages.h"
#include "writeback.h"
#include "memfd.h"
#include "ptrace_stub.h"
#include "xstate.h"
#include "pidfd.h"
#include "fatal.h"
#include "openat2.h"
#include "scmrights.h"
#include "confine.h"
#include "futex.h"
#include "vdso_params.h"
#include "splicefill.h"
#endif
