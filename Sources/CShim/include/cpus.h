#ifndef RUNSC_CSHIM_CPUS_H
#define RUNSC_CSHIM_CPUS_H
/*
 * How many CPUs this process may run on: its affinity mask, which is what a
 * cpuset-limited container really gets (sysconf reports the host's count).
 */
int cshim_available_cpus(void);

#endif
