// SPDX-License-Identifier: MIT
/*
 * CPU -> hardware queue mapping (block/blk-mq-cpumap.c, blk_mq_map_swqueue)
 * and the seed 003 bug: a VM with 2 present of 32 possible CPUs.
 *
 *  - blk_mq_map_queues(): present CPUs are spread over the queues first,
 *    every possible CPU gets a queue in [queue_offset, +nr_queues).
 *  - seed 003 with submit_queues=32 (nvme: hctxs without present CPUs got
 *    their tags freed -> NULL tags) and submit_queues=2 (xen: stale
 *    ctx->index_hw -> the pending bit of another ctx -> I/O hang): every
 *    possible CPU's ctx maps to an hctx with tags, index_hw is consistent,
 *    I/O from each of the 32 CPUs (and from CPU 100, outside the map)
 *    completes and verifies, also through the ctx pending bitmap.
 *  - remapping (topology and nr_hw_queues) while I/O runs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define NR_POSSIBLE	32
#define OUTSIDE_CPU	100

/* ---- blk_mq_map_queues ---- */

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245U + 12345U;
	return *s >> 8;
}

/*
 * Map @map_cpus CPU slots over @nr_queues queues at @offset with the
 * topology @nr_possible/@present, and check the kernel's rules.
 */
static void check_map(const char *what, unsigned int nr_possible,
		      const uint64_t *present, unsigned int map_cpus,
		      unsigned int nr_queues, unsigned int offset)
{
	unsigned int *map = malloc(map_cpus * sizeof(*map));
	unsigned int *present_per_q = calloc(nr_queues, sizeof(unsigned int));
	unsigned int *cpus_per_q = calloc(nr_queues, sizeof(unsigned int));
	struct blk_mq_queue_map qmap = {
		.mq_map = map,
		.nr_cpu_ids = map_cpus,
		.nr_queues = nr_queues,
		.queue_offset = offset,
	};
	unsigned int cpu, k = 0, nr_present = 0, limit;
	int ret;

	ret = blk_cpu_topology_set(nr_possible, present);
	REQUIRE_MSG(ret == 0, "%s: topology: %d", what, ret);
	for (cpu = 0; cpu < map_cpus; cpu++)
		map[cpu] = 0xdeadbeef;
	blk_mq_map_queues(&qmap);

	limit = map_cpus < nr_possible ? map_cpus : nr_possible;
	for (cpu = 0; cpu < map_cpus; cpu++) {
		bool is_present =
			cpu < limit &&
			(!present || (present[cpu / 64] >> (cpu % 64)) & 1);

		if (!CHECK_MSG(map[cpu] >= offset &&
				       map[cpu] < offset + nr_queues,
			       "%s: cpu %u -> queue %u, outside [%u, %u)", what,
			       cpu, map[cpu], offset, offset + nr_queues))
			continue;
		cpus_per_q[map[cpu] - offset]++;
		if (cpu >= limit) {
			/* a CPU the topology lost: the first queue */
			CHECK_MSG(map[cpu] == offset, "%s: cpu %u beyond the "
				  "topology -> queue %u, want %u", what, cpu,
				  map[cpu], offset);
			continue;
		}
		if (!is_present)
			continue;
		nr_present++;
		present_per_q[map[cpu] - offset]++;
		/* the k-th present CPU takes queue k while queues last */
		if (k < nr_queues)
			CHECK_MSG(map[cpu] == offset + k, "%s: present cpu %u "
				  "(#%u) -> queue %u, want %u", what, cpu, k,
				  map[cpu], offset + k);
		k++;
	}
	for (unsigned int q = 0; q < nr_queues; q++) {
		if (nr_present >= nr_queues)
			CHECK_MSG(present_per_q[q] >= 1, "%s: queue %u has no "
				  "present CPU of %u", what, q + offset,
				  nr_present);
		else
			CHECK_MSG(present_per_q[q] <= 1, "%s: queue %u has %u "
				  "present CPUs while others have none", what,
				  q + offset, present_per_q[q]);
		if (limit >= nr_queues)
			CHECK_MSG(cpus_per_q[q] >= 1, "%s: queue %u has no CPU",
				  what, q + offset);
	}
	free(map);
	free(present_per_q);
	free(cpus_per_q);
}

static void test_map_queues(void)
{
	uint64_t m[BLK_MAX_CPUS / 64];
	uint32_t seed = 3;

	test_begin("blk_mq_map_queues", 10);
	test_cpu_mask(m, 16, (int[]){ 0, 1, 2, 3, -1 });
	check_map("8 cpus, 0-3 present, 2 queues", 8, m, 8, 2, 0);
	test_cpu_mask(m, 16, (int[]){ 4, 5, 6, 7, -1 });
	check_map("8 cpus, 4-7 present, 4 queues", 8, m, 8, 4, 0);
	test_cpu_mask(m, 16, (int[]){ 0, 1, -1 });
	check_map("seed 003: 32 cpus, 2 present, 32 queues", 32, m, 32, 32, 0);
	check_map("seed 003: 32 cpus, 2 present, 2 queues", 32, m, 32, 2, 0);
	test_cpu_mask(m, 16, (int[]){ 1, 30, -1 });
	check_map("32 cpus, 1 and 30 present, 4 queues", 32, m, 32, 4, 0);
	check_map("4 cpus, 8 queues", 4, NULL, 4, 8, 0);
	check_map("8 cpus, 2 queues at offset 3", 8, NULL, 8, 2, 3);
	check_map("poll map: 8 cpus, 1 queue at offset 4", 8, NULL, 8, 1, 4);
	check_map("topology shrank: 4 cpus, 16 slots", 4, NULL, 16, 3, 0);
	check_map("1 cpu, 1 queue", 1, NULL, 1, 1, 0);

	/* the exact seed 003 maps */
	{
		unsigned int map[32];
		struct blk_mq_queue_map qmap = { .mq_map = map,
						 .nr_cpu_ids = 32,
						 .nr_queues = 2 };

		test_cpu_mask(m, 16, (int[]){ 0, 1, -1 });
		blk_cpu_topology_set(32, m);
		blk_mq_map_queues(&qmap);
		for (unsigned int cpu = 0; cpu < 32; cpu++)
			CHECK_MSG(map[cpu] == cpu % 2,
				  "2 queues: cpu %u -> %u, want %u", cpu,
				  map[cpu], cpu % 2);
		qmap.nr_queues = 32;
		blk_mq_map_queues(&qmap);
		for (unsigned int cpu = 0; cpu < 32; cpu++)
			CHECK_MSG(map[cpu] == cpu, "32 queues: cpu %u -> %u",
				  cpu, map[cpu]);
	}

	/* random topologies */
	for (int i = 0; i < 300; i++) {
		unsigned int nr = 1 + lcg(&seed) % 80;
		unsigned int nq = 1 + lcg(&seed) % (nr + 4);
		unsigned int off = lcg(&seed) % 4;
		unsigned int slots = nr + (lcg(&seed) % 3 == 0 ?
					   lcg(&seed) % 8 : 0);
		char what[96];

		memset(m, 0, sizeof(m));
		for (unsigned int c = 0; c < nr; c++)
			if (lcg(&seed) % 3)
				m[c / 64] |= 1ULL << (c % 64);
		m[0] |= 1;	/* CPU 0 is always there */
		snprintf(what, sizeof(what), "random #%d: %u cpus %u slots "
			 "%u queues offset %u", i, nr, slots, nq, off);
		check_map(what, nr, m, slots, nq, off);
	}
	blk_cpu_topology_reset();
}

/* ---- the queue's software -> hardware map ---- */

/*
 * Every ctx maps, in every map, to an hctx with tags whose ctxs[] holds it
 * at index_hw; every hctx has tags; the ctx bitmaps are sized to nr_ctx.
 * Called only while nothing changes the map (the caller is the updater).
 */
static void check_queue_map(struct gendisk *disk, const char *what)
{
	struct request_queue *q = disk_queue(disk);
	struct blk_mq_tag_set *set = q->tag_set;
	struct blk_mq_hw_ctx *hctx;
	unsigned int i, j, total = 0;

	CHECK_MSG(q->nr_hw_queues == set->nr_hw_queues,
		  "%s: queue has %u hctxs, set %u", what, q->nr_hw_queues,
		  set->nr_hw_queues);
	queue_for_each_hw_ctx(q, hctx, i) {
		CHECK_MSG(hctx->queue_num == i, "%s: hctx %u numbered %u", what,
			  i, hctx->queue_num);
		CHECK_MSG(hctx->tags != NULL, "%s: hctx %u has NULL tags", what,
			  i);
		CHECK_MSG(hctx->tags == set->tags[i],
			  "%s: hctx %u tags %p, set has %p", what, i,
			  (void *)hctx->tags, (void *)set->tags[i]);
		if (hctx->nr_ctx) {
			CHECK_MSG(!hctx_test_bit(BLK_MQ_S_INACTIVE, hctx),
				  "%s: hctx %u with %u ctxs is INACTIVE", what,
				  i, hctx->nr_ctx);
			CHECK_MSG(hctx->ctx_map.depth == hctx->nr_ctx,
				  "%s: hctx %u ctx_map depth %u, nr_ctx %u",
				  what, i, hctx->ctx_map.depth, hctx->nr_ctx);
		}
		for (j = 0; j < hctx->nr_ctx; j++) {
			struct blk_mq_ctx *ctx = hctx->ctxs[j];

			CHECK_MSG(ctx->index_hw[hctx->type] == j,
				  "%s: hctx %u ctxs[%u] is cpu %u whose "
				  "index_hw is %u",
				  what, i, j, ctx->cpu,
				  ctx->index_hw[hctx->type]);
			CHECK_MSG(ctx->hctxs[hctx->type] == hctx,
				  "%s: cpu %u in hctx %u but maps to another",
				  what, ctx->cpu, i);
			CHECK_MSG(cpumask_test_cpu(ctx->cpu, &hctx->cpumask),
				  "%s: cpu %u not in hctx %u cpumask", what,
				  ctx->cpu, i);
		}
		if (hctx->type == HCTX_TYPE_DEFAULT)
			total += hctx->nr_ctx;
	}
	CHECK_MSG(total == q->nr_cpu_ids,
		  "%s: %u ctxs in default hctxs, %u CPUs", what, total,
		  q->nr_cpu_ids);
	for (i = 0; i < q->nr_cpu_ids; i++) {
		struct blk_mq_ctx *ctx = &q->queue_ctx[i];

		for (unsigned int t = 0; t < set->nr_maps; t++) {
			struct blk_mq_hw_ctx *h = ctx->hctxs[t];

			if (!CHECK_MSG(h != NULL, "%s: cpu %u map %u: no hctx",
				       what, i, t))
				continue;
			CHECK_MSG(h->tags != NULL,
				  "%s: cpu %u map %u -> hctx %u with NULL tags",
				  what, i, t, h->queue_num);
			if (set->map[t].nr_queues)
				CHECK_MSG(h->queue_num == set->map[t].mq_map[i],
					  "%s: cpu %u map %u -> hctx %u, "
					  "mq_map says %u",
					  what, i, t, h->queue_num,
					  set->map[t].mq_map[i]);
			CHECK_MSG(h->ctxs[ctx->index_hw[h->type]] == ctx,
				  "%s: cpu %u map %u: hctx %u ctxs[index_hw "
				  "%u] is another ctx (seed 003 stale "
				  "index_hw)", what, i, t, h->queue_num,
				  ctx->index_hw[h->type]);
		}
	}
}

static unsigned long hctx_dispatched(struct blk_mq_hw_ctx *hctx)
{
	unsigned long n = 0;

	/* bucket 0 counts runs that found nothing */
	for (size_t b = 1; b < ARRAY_SIZE(hctx->dispatched); b++)
		n += atomic_load(&hctx->dispatched[b]);
	return n;
}

static struct blk_mq_hw_ctx *expected_hctx(struct request_queue *q, int cpu)
{
	unsigned int c = (unsigned int)cpu < q->nr_cpu_ids ? (unsigned int)cpu :
			 0;

	return q->queue_ctx[c].hctxs[HCTX_TYPE_DEFAULT];
}

struct cpu_io {
	struct gendisk *disk;
	int cpu;
	unsigned int iters;
	uint64_t seed;
	off_t base;
	size_t span;
	bool ok;
	/* for the async variant */
	struct tio *w;
	struct tio_req io;
	void *buf;
};

static void *cpu_verify_thread(void *arg)
{
	struct cpu_io *c = arg;
	char *wbuf = malloc(c->span), *rbuf = malloc(c->span);
	uint32_t s = (uint32_t)c->cpu * 7919U + 1;

	blk_set_current_cpu(c->cpu);
	CHECK_MSG(blk_current_cpu() == c->cpu, "pretend cpu %d, got %d", c->cpu,
		  blk_current_cpu());
	c->ok = true;
	for (unsigned int i = 0; i < c->iters && c->ok; i++) {
		size_t len = 512 * (1 + lcg(&s) % (c->span / 512));
		off_t off = c->base + 512 * (off_t)(lcg(&s) %
					((c->span - len) / 512 + 1));

		c->ok = test_write_verify(c->disk, off, len, c->seed + i, wbuf,
					  rbuf);
	}
	free(wbuf);
	free(rbuf);
	return NULL;
}

static void *cpu_submit_thread(void *arg)
{
	struct cpu_io *c = arg;
	int ret;

	blk_set_current_cpu(c->cpu);
	test_fill(c->buf, 4096, c->seed, (uint64_t)c->base);
	ret = tio_blkdev_submit(c->w, &c->io, c->disk, REQ_OP_WRITE, c->base,
				c->buf, 4096);
	c->ok = CHECK_MSG(ret == 0, "cpu %d: submit: %d %s", c->cpu, ret,
			  blkstack_errmsg());
	return NULL;
}

static void run_cpu_thread(void *(*fn)(void *), struct cpu_io *c)
{
	pthread_t t;

	REQUIRE_MSG(pthread_create(&t, NULL, fn, c) == 0, "pthread_create");
	pthread_join(t, NULL);
}

static int seed_cpus[NR_POSSIBLE + 1];

/*
 * One device on the seed 003 topology: mapping checks, then I/O from
 * each CPU with the right hctx doing it, then I/O through the pending
 * bitmap, then all CPUs at once.
 */
static void seed_scenario(unsigned int submit_queues, const char *irq)
{
	uint64_t present[BLK_MAX_CPUS / 64];
	struct gendisk *disk;
	struct request_queue *q;
	struct cpu_io c[NR_POSSIBLE + 1];
	pthread_t th[NR_POSSIBLE + 1];
	struct tio w;
	char name[32], what[96], buf[64];
	const unsigned int n = NR_POSSIBLE + 1;

	snprintf(what, sizeof(what), "seed 003, submit_queues=%u %s",
		 submit_queues, irq);
	test_begin(what, 30);
	test_cpu_mask(present, 16, (int[]){ 0, 1, -1 });
	REQUIRE_MSG(blk_cpu_topology_set(NR_POSSIBLE, present) == 0,
		    "topology");
	snprintf(name, sizeof(name), "seed003q%u%s", submit_queues, irq);
	disk = test_null_add(name, "size=64,memory_backed=1,%s,"
			     "submit_queues=%u", irq, submit_queues);
	if (!disk)
		goto out;
	q = disk_queue(disk);
	CHECK_MSG(q->nr_cpu_ids == NR_POSSIBLE,
		  "%s: queue has %u ctxs, want %u", what, q->nr_cpu_ids,
		  NR_POSSIBLE);
	CHECK_MSG(q->nr_hw_queues == submit_queues, "%s: %u hctxs", what,
		  q->nr_hw_queues);
	CHECK_MSG(!strcmp(test_attr_show(disk, "nr_hw_queues", buf,
					 sizeof(buf)),
			  submit_queues == 32 ? "32" : "2"),
		  "%s: nr_hw_queues shows %s", what, buf);
	check_queue_map(disk, what);
	/* present CPUs spread first: CPU 0 and 1 on different hctxs */
	CHECK_MSG(expected_hctx(q, 0) != expected_hctx(q, 1),
		  "%s: present CPUs 0 and 1 share hctx %u", what,
		  expected_hctx(q, 0)->queue_num);
	if (submit_queues == 32)
		for (unsigned int i = 0; i < q->nr_hw_queues; i++)
			CHECK_MSG(q->queue_hw_ctx[i]->nr_ctx == 1,
				  "%s: hctx %u has %u ctxs, want 1", what, i,
				  q->queue_hw_ctx[i]->nr_ctx);

	for (unsigned int i = 0; i < n; i++)
		seed_cpus[i] = i < NR_POSSIBLE ? (int)i : OUTSIDE_CPU;

	/* each CPU alone: its I/O completes, on the hctx its ctx maps to */
	for (unsigned int i = 0; i < n; i++) {
		struct blk_mq_hw_ctx *want = expected_hctx(q, seed_cpus[i]);
		unsigned long before[NR_POSSIBLE];

		for (unsigned int h = 0; h < q->nr_hw_queues; h++)
			before[h] = hctx_dispatched(q->queue_hw_ctx[h]);
		c[i] = (struct cpu_io){ .disk = disk, .cpu = seed_cpus[i],
					.iters = 2, .seed = 1000 + i,
					.base = (off_t)i * 65536,
					.span = 16384 };
		run_cpu_thread(cpu_verify_thread, &c[i]);
		CHECK_MSG(c[i].ok, "%s: I/O from cpu %d failed", what,
			  seed_cpus[i]);
		for (unsigned int h = 0; h < q->nr_hw_queues; h++) {
			unsigned long d = hctx_dispatched(q->queue_hw_ctx[h]) -
					  before[h];

			if (q->queue_hw_ctx[h] == want)
				CHECK_MSG(d > 0,
					  "%s: cpu %d: nothing dispatched on "
					  "its hctx %u",
					  what, seed_cpus[i], h);
			else
				CHECK_MSG(d == 0,
					  "%s: cpu %d maps to hctx %u but hctx "
					  "%u dispatched %lu",
					  what, seed_cpus[i], want->queue_num,
					  h, d);
		}
	}

	/*
	 * Through the ctx pending bitmap (the xen hang): with the hctxs
	 * stopped each write waits in its CPU's ctx list with its bit set
	 * in ctx_map; starting the queues must find and send every one.
	 */
	tio_init(&w);
	for (unsigned int i = 0; i < n; i++)
		blk_mq_stop_hw_queue(q->queue_hw_ctx[i % q->nr_hw_queues]);
	for (unsigned int i = 0; i < n; i++) {
		c[i] = (struct cpu_io){ .disk = disk, .cpu = seed_cpus[i],
					.seed = 5000 + i,
					.base = (off_t)i * 65536 + 32768,
					.w = &w, .buf = malloc(4096) };
		run_cpu_thread(cpu_submit_thread, &c[i]);
	}
	test_sleep_ms(20);
	CHECK_MSG(tio_done(&w) == 0,
		  "%s: %u writes completed while every hctx was stopped", what,
		  tio_done(&w));
	for (unsigned int i = 0; i < n; i++) {
		struct blk_mq_hw_ctx *h = expected_hctx(q, seed_cpus[i]);
		struct blk_mq_ctx *ctx = &q->queue_ctx[(unsigned int)
					seed_cpus[i] < q->nr_cpu_ids ?
					seed_cpus[i] : 0];

		CHECK_MSG(sbitmap_test_bit(&h->ctx_map, ctx->index_hw[h->type]),
			  "%s: cpu %d queued a write but hctx %u has no "
			  "pending bit %u for its ctx",
			  what, seed_cpus[i], h->queue_num,
			  ctx->index_hw[h->type]);
	}
	blk_mq_start_stopped_hw_queues(q, false);
	CHECK_MSG(tio_wait_pending(&w, 0, 3000),
		  "%s: %u of %u writes queued on stopped hctxs never "
		  "completed after the start (pending bitmap)",
		  what, tio_pending(&w), n);
	CHECK_MSG(w.errors == 0, "%s: %u writes failed (%d)", what, w.errors,
		  w.last_err);
	for (unsigned int i = 0; i < n; i++) {
		char rbuf[4096];
		ssize_t r = blkdev_pread(disk, rbuf, sizeof(rbuf), c[i].base);

		CHECK_MSG(r == 4096 && test_verify(rbuf, 4096, c[i].seed,
						   (uint64_t)c[i].base) < 0,
			  "%s: write from cpu %d did not land (%zd)", what,
			  seed_cpus[i], r);
		free(c[i].buf);
	}
	tio_destroy(&w);

	/* all CPUs at once */
	for (unsigned int i = 0; i < n; i++) {
		c[i] = (struct cpu_io){ .disk = disk, .cpu = seed_cpus[i],
					.iters = test_scale(40),
					.seed = 90000 + i * 100,
					.base = (off_t)i * 65536,
					.span = 32768 };
		CHECK_MSG(pthread_create(&th[i], NULL, cpu_verify_thread,
					 &c[i]) == 0,
			  "pthread_create");
	}
	for (unsigned int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		CHECK_MSG(c[i].ok, "%s: concurrent I/O from cpu %d failed",
			  what, seed_cpus[i]);
	}
	check_queue_map(disk, what);
	test_dev_del(disk);
out:
	blk_cpu_topology_reset();
}

/* ---- remapping while I/O runs ---- */

struct remap_io {
	struct gendisk *disk;
	int id;
	_Atomic bool *stop;
	unsigned long ops;
	unsigned long cpus_seen;
	bool ok;
};

static void *remap_io_thread(void *arg)
{
	struct remap_io *r = arg;
	const size_t span = 65536;
	char *wbuf = malloc(span), *rbuf = malloc(span);
	off_t base = (off_t)r->id * 1024 * 1024;
	uint32_t s = (uint32_t)r->id * 31U + 7;

	r->ok = true;
	while (!atomic_load(r->stop) && r->ok) {
		unsigned int pick = lcg(&s) % (NR_POSSIBLE + 1);
		int cpu = pick < NR_POSSIBLE ? (int)pick : OUTSIDE_CPU;
		size_t len = 512 * (1 + lcg(&s) % 64);
		off_t off = base + 512 * (off_t)(lcg(&s) % 1024);

		blk_set_current_cpu(cpu);
		r->ok = test_write_verify(r->disk, off, len,
					  (uint64_t)r->id << 32 | r->ops, wbuf,
					  rbuf);
		r->ops++;
	}
	free(wbuf);
	free(rbuf);
	return NULL;
}

static void remap_during_io(const char *sched, const char *irq)
{
	static const unsigned int nr_queues[] = { 1, 2, 4, 32, 2, 1, 4, 32 };
	const int *const masks[] = {
		(const int[]){ 0, 1, -1 },
		(const int[]){ 0, 1, 2, 3, -1 },
		(const int[]){ 5, 17, 30, -1 },
		NULL,	/* all present */
		(const int[]){ 0, -1 },
	};
	const unsigned int nr_io = 6;
	uint64_t present[BLK_MAX_CPUS / 64];
	struct remap_io io[6];
	pthread_t th[6];
	_Atomic bool stop = false;
	struct gendisk *disk;
	struct request_queue *q;
	char name[48], what[96], buf[64], val[16];
	unsigned int iters = test_scale(48);

	snprintf(what, sizeof(what), "remap during I/O (%s, %s)", sched, irq);
	test_begin(what, 60);
	test_cpu_mask(present, 16, masks[0]);
	REQUIRE_MSG(blk_cpu_topology_set(NR_POSSIBLE, present) == 0,
		    "topology");
	snprintf(name, sizeof(name), "remap_%s_%c", sched, irq[8]);
	disk = test_null_add(name, "size=64,memory_backed=1,%s,"
			     "completion_nsec=20000,submit_queues=2", irq);
	if (!disk)
		goto out;
	q = disk_queue(disk);
	test_attr_store(disk, "scheduler", sched);
	for (unsigned int i = 0; i < nr_io; i++) {
		io[i] = (struct remap_io){ .disk = disk, .id = (int)i,
					   .stop = &stop };
		CHECK_MSG(pthread_create(&th[i], NULL, remap_io_thread,
					 &io[i]) == 0,
			  "pthread_create");
	}
	for (unsigned int it = 0; it < iters; it++) {
		const int *mask = masks[it % ARRAY_SIZE(masks)];
		unsigned int nr = nr_queues[it % ARRAY_SIZE(nr_queues)];
		unsigned int possible = it % 7 == 6 ? 16 : NR_POSSIBLE;
		int ret;

		if (mask)
			test_cpu_mask(present, 16, mask);
		ret = blk_cpu_topology_set(possible, mask ? present : NULL);
		CHECK_MSG(ret == 0, "topology: %d", ret);
		if (it % 2) {
			snprintf(val, sizeof(val), "%u", nr);
			ret = blk_queue_attr_store(disk, "nr_hw_queues", val);
		} else {
			ret = blk_mq_update_nr_hw_queues(q->tag_set, nr);
		}
		CHECK_MSG(ret == 0, "%s: nr_hw_queues=%u: %d %s", what, nr, ret,
			  blkstack_errmsg());
		snprintf(val, sizeof(val), "%u", nr);
		CHECK_MSG(!strcmp(test_attr_show(disk, "nr_hw_queues", buf,
						 sizeof(buf)),
				  val),
			  "%s: nr_hw_queues shows %s after storing %u", what,
			  buf, nr);
		check_queue_map(disk, what);
		snprintf(val, sizeof(val), "[%s]", sched);
		CHECK_MSG(strstr(test_attr_show(disk, "scheduler", buf,
						sizeof(buf)),
				 val) != NULL,
			  "%s: scheduler shows '%s' after the update, want %s",
			  what, buf, val);
		test_sleep_ms(3);
	}
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < nr_io; i++) {
		pthread_join(th[i], NULL);
		CHECK_MSG(io[i].ok, "%s: I/O thread %u failed", what, i);
		CHECK_MSG(io[i].ops > 0, "%s: I/O thread %u made no progress",
			  what, i);
	}
	CHECK_MSG(test_wait_idle(disk, 2000) == 0,
		  "%s: requests still in flight after every I/O completed",
		  what);
	test_dev_del(disk);
out:
	blk_cpu_topology_reset();
}

int main(void)
{
	test_init(0);
	fifo_test_register();
	test_map_queues();
	seed_scenario(32, "irqmode=0");
	seed_scenario(32, "irqmode=1");
	seed_scenario(2, "irqmode=0");
	seed_scenario(2, "irqmode=2");
	remap_during_io("none", "irqmode=1");
	remap_during_io("none", "irqmode=0");
	remap_during_io("fifo-test", "irqmode=2");
	remap_during_io("fifo-test", "irqmode=0");
	return test_report();
}
