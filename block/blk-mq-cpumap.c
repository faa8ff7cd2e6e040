// SPDX-License-Identifier: MIT
/*
 * CPU -> hardware queue maps (the kernel's block/blk-mq-cpumap.c).
 *
 * Every possible CPU gets a queue, not only present ones: a CPU that comes
 * and goes must never find an hctx without tags (seed 003). Present CPUs
 * are spread over the queues first, so the queues that only absent CPUs
 * map to are as few as possible; the remaining CPUs continue the round,
 * with hyper-thread siblings sharing their first sibling's queue.
 */
#include <stdlib.h>

#include "blk.h"

static unsigned int queue_index(const struct blk_mq_queue_map *qmap,
				unsigned int nr_queues, unsigned int index)
{
	return qmap->queue_offset + (index % nr_queues);
}

static void map_queues_topo(struct blk_mq_queue_map *qmap,
			    const struct cpu_topology *topo)
{
	unsigned int *map = qmap->mq_map;
	unsigned int nr_queues = qmap->nr_queues;
	unsigned int nr_cpus = min(qmap->nr_cpu_ids, topo->nr_cpu_ids);
	unsigned int cpu, q = 0;

	/* CPUs the topology no longer has keep a valid queue too */
	for (cpu = 0; cpu < qmap->nr_cpu_ids; cpu++)
		map[cpu] = cpu < nr_cpus ? UINT32_MAX :
			   queue_index(qmap, nr_queues, 0);

	for_each_cpu(cpu, &topo->present) {
		if (cpu >= nr_cpus || q >= nr_queues)
			break;
		map[cpu] = queue_index(qmap, nr_queues, q++);
	}

	for (cpu = 0; cpu < nr_cpus; cpu++) {
		unsigned int first_sibling;

		if (map[cpu] != UINT32_MAX)
			continue;
		if (q < nr_queues) {
			map[cpu] = queue_index(qmap, nr_queues, q++);
			continue;
		}
		first_sibling = topo->first_sibling[cpu];
		if (first_sibling == cpu || map[first_sibling] == UINT32_MAX)
			map[cpu] = queue_index(qmap, nr_queues, q++);
		else
			map[cpu] = map[first_sibling];
	}
}

void blk_mq_map_queues(struct blk_mq_queue_map *qmap)
{
	struct cpu_topology *topo = malloc(sizeof(*topo));

	BUG_ON(!topo);
	blk_cpu_topology_get(topo);
	map_queues_topo(qmap, topo);
	free(topo);
}

/*
 * The split drivers with poll queues use (null_blk, nvme): the last
 * @nr_poll hw queues serve the POLL map, the others the DEFAULT map; no
 * READ queues. At least one DEFAULT queue remains.
 */
void blk_mq_map_default_and_poll(struct blk_mq_tag_set *set,
				 unsigned int nr_poll)
{
	struct blk_mq_queue_map *map = set->map;
	unsigned int submit = set->nr_hw_queues > nr_poll ?
			      set->nr_hw_queues - nr_poll : 1;

	map[HCTX_TYPE_DEFAULT].nr_queues = submit;
	map[HCTX_TYPE_DEFAULT].queue_offset = 0;
	blk_mq_map_queues(&map[HCTX_TYPE_DEFAULT]);
	map[HCTX_TYPE_READ].nr_queues = 0;
	if (set->nr_maps > HCTX_TYPE_POLL && nr_poll) {
		map[HCTX_TYPE_POLL].nr_queues = nr_poll;
		map[HCTX_TYPE_POLL].queue_offset = submit;
		blk_mq_map_queues(&map[HCTX_TYPE_POLL]);
	}
}
