// SPDX-License-Identifier: MIT
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <blkstack/blk-mq.h>

#include "cpumask.h"

static pthread_mutex_t topo_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cpu_topology topo;
static bool topo_valid;
static _Thread_local int pretend_cpu = -1;

unsigned int cpumask_weight(const struct cpumask *m)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < BLK_MAX_CPUS / 64; i++)
		n += (unsigned int)__builtin_popcountll(m->bits[i]);
	return n;
}

unsigned int cpumask_next(int cpu, const struct cpumask *m)
{
	for (unsigned int c = (unsigned int)(cpu + 1); c < BLK_MAX_CPUS; c++) {
		uint64_t w = m->bits[c / 64] >> (c % 64);

		if (w)
			return c + (unsigned int)__builtin_ctzll(w);
		c |= 63;
	}
	return BLK_MAX_CPUS;
}

int cpumask_print(char *buf, unsigned int len, const struct cpumask *m)
{
	unsigned int cpu, pos = 0;

	buf[0] = '\0';
	for (cpu = cpumask_first(m); cpu < BLK_MAX_CPUS;) {
		unsigned int end = cpu;

		while (end + 1 < BLK_MAX_CPUS && cpumask_test_cpu(end + 1, m))
			end++;
		pos += (unsigned int)snprintf(buf + pos, pos < len ? len - pos : 0,
					      end > cpu ? "%s%u-%u" : "%s%u",
					      pos ? "," : "", cpu, end);
		cpu = cpumask_next((int)end, m);
	}
	return (int)pos;
}

/* Parse a sysfs CPU list ("0-3,8") into @m; returns the highest CPU + 1. */
static unsigned int parse_cpu_list(const char *s, struct cpumask *m)
{
	unsigned int a, b, top = 0;
	int n;

	cpumask_clear(m);
	while (sscanf(s, "%u%n", &a, &n) == 1) {
		s += n;
		b = a;
		if (*s == '-' && sscanf(s + 1, "%u%n", &b, &n) == 1)
			s += 1 + n;
		for (unsigned int c = a; c <= b && c < BLK_MAX_CPUS; c++)
			cpumask_set_cpu(c, m);
		if (b + 1 > top)
			top = b + 1;
		if (*s != ',')
			break;
		s++;
	}
	return top < BLK_MAX_CPUS ? top : BLK_MAX_CPUS;
}

static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	return ok;
}

static void sibling_of(unsigned int cpu, struct cpu_topology *t)
{
	char path[96], buf[256];
	struct cpumask sib;

	t->first_sibling[cpu] = (uint16_t)cpu;
	snprintf(path, sizeof(path),
		 "/sys/devices/system/cpu/cpu%u/topology/thread_siblings_list",
		 cpu);
	if (read_line(path, buf, sizeof(buf))) {
		parse_cpu_list(buf, &sib);
		if (cpumask_first(&sib) < BLK_MAX_CPUS)
			t->first_sibling[cpu] = (uint16_t)cpumask_first(&sib);
	}
}

/* What the system says: possible CPUs, and the ones we may run on. */
static void topology_from_system(struct cpu_topology *t)
{
	char buf[256];
	cpu_set_t set;
	unsigned int cpu;

	memset(t, 0, sizeof(*t));
	if (read_line("/sys/devices/system/cpu/possible", buf, sizeof(buf)))
		t->nr_cpu_ids = parse_cpu_list(buf, &t->possible);
	if (!t->nr_cpu_ids) {
		t->nr_cpu_ids = 1;
		cpumask_set_cpu(0, &t->possible);
	}
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (cpu = 0; cpu < t->nr_cpu_ids && cpu < CPU_SETSIZE; cpu++)
			if (CPU_ISSET(cpu, &set))
				cpumask_set_cpu(cpu, &t->present);
	}
	if (!cpumask_weight(&t->present))
		t->present = t->possible;
	for (cpu = 0; cpu < t->nr_cpu_ids; cpu++)
		sibling_of(cpu, t);
}

void blk_cpu_topology_get(struct cpu_topology *out)
{
	pthread_mutex_lock(&topo_lock);
	if (!topo_valid) {
		topology_from_system(&topo);
		topo_valid = true;
	}
	*out = topo;
	pthread_mutex_unlock(&topo_lock);
}

int blk_cpu_topology_set(unsigned int nr_possible, const uint64_t *present)
{
	if (nr_possible == 0 || nr_possible > BLK_MAX_CPUS)
		return blk_err(-EINVAL,
			       "nr_possible %u: valid range is 1..%u",
			       nr_possible, BLK_MAX_CPUS);
	pthread_mutex_lock(&topo_lock);
	memset(&topo, 0, sizeof(topo));
	topo.nr_cpu_ids = nr_possible;
	for (unsigned int cpu = 0; cpu < nr_possible; cpu++) {
		cpumask_set_cpu(cpu, &topo.possible);
		if (!present || (present[cpu / 64] >> (cpu % 64)) & 1)
			cpumask_set_cpu(cpu, &topo.present);
		topo.first_sibling[cpu] = (uint16_t)cpu;
	}
	topo_valid = true;
	pthread_mutex_unlock(&topo_lock);
	return 0;
}

void blk_cpu_topology_reset(void)
{
	pthread_mutex_lock(&topo_lock);
	topo_valid = false;
	pthread_mutex_unlock(&topo_lock);
}

void blk_set_current_cpu(int cpu)
{
	pretend_cpu = cpu;
}

int blk_current_cpu(void)
{
	return (int)raw_smp_processor_id();
}

unsigned int raw_smp_processor_id(void)
{
	int cpu = pretend_cpu;

	if (cpu >= 0)
		return (unsigned int)cpu;
	cpu = sched_getcpu();
	return cpu < 0 ? 0 : (unsigned int)cpu;
}
