/* SPDX-License-Identifier: MIT */
/*
 * CPU masks and the CPU topology queues are mapped over. A "CPU" is what
 * sched_getcpu() says, unless a thread pretends otherwise
 * (blk_set_current_cpu) or a test installs a simulated topology
 * (blk_cpu_topology_set: N possible CPUs of which some are present).
 */
#ifndef BLKSTACK_LIB_CPUMASK_H
#define BLKSTACK_LIB_CPUMASK_H

#include <stdbool.h>
#include <stdint.h>
#include <blkstack/blkdev.h>

struct cpumask {
	uint64_t bits[BLK_MAX_CPUS / 64];
};

static inline void cpumask_clear(struct cpumask *m)
{
	for (unsigned int i = 0; i < BLK_MAX_CPUS / 64; i++)
		m->bits[i] = 0;
}

static inline void cpumask_set_cpu(unsigned int cpu, struct cpumask *m)
{
	m->bits[cpu / 64] |= 1ULL << (cpu % 64);
}

static inline bool cpumask_test_cpu(unsigned int cpu, const struct cpumask *m)
{
	return cpu < BLK_MAX_CPUS && (m->bits[cpu / 64] >> (cpu % 64)) & 1;
}

unsigned int cpumask_weight(const struct cpumask *m);
/* First set CPU at or after @cpu, or BLK_MAX_CPUS. */
unsigned int cpumask_next(int cpu, const struct cpumask *m);
static inline unsigned int cpumask_first(const struct cpumask *m)
{
	return cpumask_next(-1, m);
}

#define for_each_cpu(cpu, mask)					\
	for ((cpu) = cpumask_first(mask); (cpu) < BLK_MAX_CPUS;	\
	     (cpu) = cpumask_next((int)(cpu), mask))

/* Print as a list: "0-3,8". */
int cpumask_print(char *buf, unsigned int len, const struct cpumask *m);

struct cpu_topology {
	unsigned int nr_cpu_ids;	/* possible CPUs: 0 .. nr_cpu_ids-1 */
	struct cpumask possible;
	struct cpumask present;		/* those we may run on */
	/* first hyper-thread sibling of each CPU (itself if none) */
	uint16_t first_sibling[BLK_MAX_CPUS];
};

/* A snapshot of the current topology. */
void blk_cpu_topology_get(struct cpu_topology *topo);

/* The calling thread's CPU (pretend or real); never negative. */
unsigned int raw_smp_processor_id(void);

#endif
