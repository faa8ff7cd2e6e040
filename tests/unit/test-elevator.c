// SPDX-License-Identifier: MIT
/*
 * The elevator framework (block/elevator.c, blk-mq-sched.c) with a tiny
 * FIFO scheduler registered by the test ("fifo-test", testlib.c):
 *
 *  - elv_register() refuses duplicates and incomplete ops tables;
 *  - the "scheduler" attribute lists the schedulers with the current one
 *    in brackets, switches to a registered one and back to none, refuses
 *    unknown names with -EINVAL and a message naming the valid ones
 *    (leaving the old scheduler), and refuses devices marked NO_SCHED;
 *  - I/O goes through the hooks: each request is prepared, inserted,
 *    dispatched, completed and finished exactly once (flush sequences,
 *    plugged batches and driver requeues included), and the data is
 *    right;
 *  - switching between fifo-test and none 50 times while other threads
 *    write and verify loses and corrupts nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define KB(n)	((n) * 1024U)

static struct fifo_stats s0;

static void mark(void)
{
	fifo_stats_snapshot(&s0);
}

#define DELTA(field) (atomic_load(&fifo_stats.field) - atomic_load(&s0.field))

/*
 * A bio ends inside blk_update_request(), before the request's
 * completed/finish hooks run (maybe on a kblockd worker): wait until
 * every prepared request was finished before reading the counters.
 */
static void settle(void)
{
	for (unsigned int i = 0; i < 3000; i++) {
		if (atomic_load(&fifo_stats.finished) ==
		    atomic_load(&fifo_stats.prepared))
			return;
		test_sleep_ms(1);
	}
	CHECK_MSG(0, "%lu requests prepared, %lu finished",
		  atomic_load(&fifo_stats.prepared),
		  atomic_load(&fifo_stats.finished));
}

static const char *sched_show(struct gendisk *disk, char *buf, size_t len)
{
	int ret = blk_queue_attr_show(disk, "scheduler", buf, len);

	if (!CHECK_MSG(ret > 0, "show scheduler: %d", ret))
		snprintf(buf, len, "<error>");
	return buf;
}

/*
 * The attribute lists none, the built-in schedulers, then the registered
 * ones, the current one in brackets: @want is that list with the
 * built-ins left out (they come and go with the tree).
 */
static bool sched_is(const char *buf, const char *want)
{
	char got[256];
	size_t pos = 0;

	for (const char *w = buf; *w;) {
		size_t n = strcspn(w, " \n");
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)n, w);
		/* built-in: found, and not the one this test registered */
		bool builtin = strcmp(name, "none") && elevator_find(name) &&
			       elevator_find(name) != &fifo_test_elv;

		if (name[0] == '[' || !builtin)
			pos += (size_t)snprintf(got + pos, sizeof(got) - pos,
						"%s%s", pos ? " " : "", name);
		w += n;
		w += strspn(w, " \n");
	}
	return !strcmp(got, want);
}

static struct rec_dev *mkdev(unsigned int nr_hw_queues)
{
	struct rec_config cfg;

	rec_config_init(&cfg);
	cfg.memory_backed = true;
	cfg.nr_hw_queues = nr_hw_queues;
	cfg.has_queue_rqs = true;
	cfg.has_commit_rqs = true;
	cfg.lim.features_write_cache = true;
	return rec_create(&cfg);
}

static struct elevator_type no_has_work = {
	.elevator_name = "broken-test",
};

static struct elevator_type fake_none = {
	.elevator_name = "none",
};

static void test_register(void)
{
	test_begin("elv_register: duplicates and incomplete tables", 5);
	CHECK_EQ_INT(elv_register(&fifo_test_elv), 0);
	CHECK_EQ_INT(elv_register(&fifo_test_elv), -EBUSY);
	no_has_work.ops = fifo_test_elv.ops;
	no_has_work.ops.has_work = NULL;
	CHECK_EQ_INT(elv_register(&no_has_work), -EINVAL);
	fake_none.ops = fifo_test_elv.ops;
	CHECK_EQ_INT(elv_register(&fake_none), -EBUSY);
	CHECK(elevator_find("fifo-test") == &fifo_test_elv);
	CHECK(elevator_find("broken-test") == NULL);
}

static void test_attribute(struct rec_dev *d)
{
	struct gendisk *disk = rec_disk(d);
	char buf[256];

	test_begin("scheduler attribute: show and switch", 10);
	sched_show(disk, buf, sizeof(buf));
	CHECK_MSG(sched_is(buf, "[none] fifo-test"), "scheduler '%s'", buf);
	CHECK(rec_queue(d)->elevator == NULL);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "scheduler", "fifo-test"), 0);
	sched_show(disk, buf, sizeof(buf));
	CHECK_MSG(sched_is(buf, "none [fifo-test]"), "scheduler '%s'", buf);
	CHECK_EQ_U64(atomic_load(&fifo_stats.queues), 1);
	/* the same one again is a no-op */
	CHECK_EQ_INT(blk_queue_attr_store(disk, "scheduler", "fifo-test\n"),
		     0);
	CHECK_EQ_U64(atomic_load(&fifo_stats.queues), 1);

	test_begin("scheduler attribute: bad names", 10);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "scheduler", "nosuch"),
		     -EINVAL);
	CHECK_MSG(strstr(blkstack_errmsg(), "nosuch") &&
		  strstr(blkstack_errmsg(), "none") &&
		  strstr(blkstack_errmsg(), "fifo-test"),
		  "message does not name the valid schedulers: '%s'",
		  blkstack_errmsg());
	CHECK_EQ_INT(blk_queue_attr_store(disk, "scheduler", ""), -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "scheduler", "broken-test"),
		     -EINVAL);
	sched_show(disk, buf, sizeof(buf));
	CHECK_MSG(sched_is(buf, "none [fifo-test]"), "after bad names the "
		  "scheduler is '%s'", buf);
	CHECK_EQ_U64(atomic_load(&fifo_stats.queues), 1);
}

/* Write and read back @n blocks of @len one at a time. */
static void sync_rw(struct rec_dev *d, unsigned int n, unsigned int len,
		    uint32_t seed)
{
	unsigned char *w = malloc(len), *r = malloc(len);

	REQUIRE(w && r);
	for (unsigned int i = 0; i < n; i++)
		test_write_verify(rec_disk(d), (off_t)i * len, len, seed, w, r);
	free(w);
	free(r);
}

static void test_io(struct rec_dev *d)
{
	struct blk_plug plug;
	unsigned char *buf;
	struct rec_io r;
	struct tio t;

	test_begin("scheduler: I/O goes through every hook once", 10);
	mark();
	rec_clear_log(d);
	sync_rw(d, 16, KB(8), 1);
	settle();
	CHECK_EQ_U64(rec_accepted(d), 32);
	CHECK_EQ_U64(DELTA(prepared), 32);
	CHECK_EQ_U64(DELTA(inserted), 32);
	CHECK_EQ_U64(DELTA(dispatched), 32);
	CHECK_EQ_U64(DELTA(completed), 32);
	CHECK_EQ_U64(DELTA(finished), 32);
	CHECK_EQ_U64(DELTA(requeued), 0);

	test_begin("scheduler: a plugged batch is inserted, not queue_rqs'd",
		   10);
	buf = aligned_alloc(4096, KB(32));
	REQUIRE(buf);
	mark();
	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	for (unsigned int i = 0; i < 8; i++)
		tio_submit(&t, rec_disk(d), REQ_OP_WRITE, 2048 + i * 8,
			   buf + i * KB(4), KB(4));
	blk_finish_plug(&plug);
	CHECK(tio_wait(&t, 8, 3000));
	CHECK_EQ_U64(t.errors, 0);
	if (CHECK_EQ_U64(rec_nr_ios(d), 1)) {
		rec_get_io(d, 0, &r);
		CHECK_EQ_U64(r.nr_bios, 8);
		CHECK(!r.via_queue_rqs);
	}
	CHECK_EQ_U64(rec_queue_rqs_calls(d), 0);
	settle();
	CHECK_EQ_U64(DELTA(prepared), 1);
	CHECK_EQ_U64(DELTA(inserted), 1);
	CHECK_EQ_U64(DELTA(dispatched), 1);
	CHECK_EQ_U64(DELTA(finished), 1);
	tio_destroy(&t);

	test_begin("scheduler: flush sequences complete each request once",
		   10);
	mark();
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH |
				   REQ_FUA, 4096, buf, KB(4)), 0);
	settle();
	CHECK_EQ_U64(rec_count_op(d, REQ_OP_FLUSH), 2);
	CHECK_EQ_U64(rec_count_op(d, REQ_OP_WRITE), 1);
	CHECK_EQ_U64(DELTA(prepared), 1);
	CHECK_EQ_U64(DELTA(completed), 1);
	CHECK_EQ_U64(DELTA(finished), 1);
	/* flush steps bypass the scheduler's queue */
	CHECK_EQ_U64(DELTA(inserted), 0);
	mark();
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH,
				   4096, buf, KB(4)), 0);
	CHECK_EQ_INT(blkdev_flush(rec_disk(d)), 0);
	settle();
	CHECK_EQ_U64(DELTA(prepared), 2);
	CHECK_EQ_U64(DELTA(completed), 2);
	CHECK_EQ_U64(DELTA(finished), 2);

	test_begin("scheduler: a driver requeue goes back through it", 10);
	mark();
	rec_clear_log(d);
	rec_requeue_next(d, 1);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 4096, buf,
				   KB(4)), 0);
	settle();
	CHECK_EQ_U64(rec_nr_ios(d), 2);
	CHECK_EQ_U64(rec_accepted(d), 1);
	CHECK_EQ_U64(DELTA(requeued), 1);
	CHECK_EQ_U64(DELTA(prepared), 1);
	CHECK_EQ_U64(DELTA(inserted), 2);
	CHECK_EQ_U64(DELTA(dispatched), 2);
	CHECK_EQ_U64(DELTA(completed), 1);
	CHECK_EQ_U64(DELTA(finished), 1);
	free(buf);
}

static void test_back_to_none(struct rec_dev *d)
{
	struct gendisk *disk = rec_disk(d);
	struct rec_config cfg;
	struct rec_dev *nosched;
	char buf[256];

	test_begin("scheduler attribute: back to none", 10);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "scheduler", "none"), 0);
	sched_show(disk, buf, sizeof(buf));
	CHECK_MSG(sched_is(buf, "[none] fifo-test"), "scheduler '%s'", buf);
	CHECK_EQ_U64(atomic_load(&fifo_stats.queues), 0);
	mark();
	sync_rw(d, 4, KB(4), 2);
	settle();
	CHECK_EQ_U64(DELTA(prepared), 0);

	test_begin("scheduler attribute: a NO_SCHED device takes none only",
		   10);
	rec_config_init(&cfg);
	cfg.tag_flags |= BLK_MQ_F_NO_SCHED;
	nosched = rec_create(&cfg);
	REQUIRE(nosched);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(nosched), "scheduler",
					  "fifo-test"), -EINVAL);
	CHECK(rec_queue(nosched)->elevator == NULL);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(nosched), "scheduler",
					  "none"), 0);
	rec_destroy(nosched);
}

/* ---- switching under load ---- */

#define STRESS_BLOCKS	64
#define STRESS_BLOCK	KB(8)

struct worker {
	pthread_t thread;
	struct rec_dev *d;
	unsigned int id;
	_Atomic bool *stop;
	uint32_t seed[STRESS_BLOCKS];	/* last pattern of each block */
	unsigned long ios;
	unsigned long bad;
	int err;
};

static off_t worker_off(const struct worker *w, unsigned int b)
{
	return (off_t)(w->id * STRESS_BLOCKS + b) * STRESS_BLOCK;
}

/*
 * Sync write + read-verify (even ids; every 4th write PREFLUSH|FUA) or
 * plugged async batches (odd ids).
 */
static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	struct gendisk *disk = rec_disk(w->d);
	unsigned char *wb = aligned_alloc(4096, STRESS_BLOCK * 8);
	unsigned char *rb = aligned_alloc(4096, STRESS_BLOCK);
	unsigned int it = 0;

	blk_set_current_cpu((int)(w->id % 2));
	if (!wb || !rb) {
		w->err = -ENOMEM;
		goto out;
	}
	while (!atomic_load(&w->stop[0])) {
		uint32_t seed = (w->id << 24) | ++it;

		if (w->id % 2 == 0) {
			unsigned int b = it % STRESS_BLOCKS;
			off_t off = worker_off(w, b);
			ssize_t n;

			test_fill(wb, STRESS_BLOCK, seed, (uint64_t)off);
			/* every 4th through the flush machinery */
			if (it % 4 == 0)
				n = test_bio_sync(disk, REQ_OP_WRITE |
						  REQ_PREFLUSH | REQ_FUA,
						  (sector_t)off >> SECTOR_SHIFT,
						  wb, STRESS_BLOCK);
			else
				n = blkdev_pwrite(disk, wb, STRESS_BLOCK, off);
			if (n != (it % 4 ? STRESS_BLOCK : 0)) {
				w->err = (int)n;
				break;
			}
			w->seed[b] = seed;
			n = blkdev_pread(disk, rb, STRESS_BLOCK, off);
			if (n != STRESS_BLOCK) {
				w->err = (int)n;
				break;
			}
			if (test_verify(rb, STRESS_BLOCK, seed,
					(uint64_t)off) >= 0)
				w->bad++;
			w->ios += 2;
		} else {
			unsigned int first = (it * 8) % STRESS_BLOCKS;
			struct blk_plug plug;
			struct tio t;

			tio_init(&t);
			blk_start_plug(&plug);
			for (unsigned int i = 0; i < 8; i++) {
				off_t off = worker_off(w, first + i);

				test_fill(wb + i * STRESS_BLOCK, STRESS_BLOCK,
					  seed, (uint64_t)off);
				tio_submit(&t, disk, REQ_OP_WRITE,
					   (sector_t)off >> SECTOR_SHIFT,
					   wb + i * STRESS_BLOCK, STRESS_BLOCK);
			}
			blk_finish_plug(&plug);
			if (!tio_wait(&t, 8, 10000) || t.errors) {
				w->err = t.errors ? t.req[0].err : -ETIMEDOUT;
				tio_destroy(&t);
				break;
			}
			tio_destroy(&t);
			for (unsigned int i = 0; i < 8; i++)
				w->seed[first + i] = seed;
			w->ios += 8;
		}
	}
out:
	free(wb);
	free(rb);
	return NULL;
}

static void test_switch_under_load(void)
{
	enum { NW = 4, SWITCHES = 50 };
	struct worker w[NW];
	_Atomic bool stop = false;
	struct blk_disk_stats st;
	unsigned char *rb = malloc(STRESS_BLOCK);
	struct rec_dev *d = mkdev(2);
	unsigned long total = 0;

	REQUIRE(d && rb);
	test_begin("scheduler: 50 switches under a write/verify load", 20);
	mark();
	memset(w, 0, sizeof(w));
	for (unsigned int i = 0; i < NW; i++) {
		w[i].d = d;
		w[i].id = i;
		w[i].stop = &stop;
		CHECK(pthread_create(&w[i].thread, NULL, worker_fn, &w[i]) == 0);
	}
	test_sleep_ms(5);
	for (unsigned int i = 0; i < SWITCHES; i++) {
		const char *name = i % 2 ? "none" : "fifo-test";
		int ret = blk_queue_attr_store(rec_disk(d), "scheduler", name);

		CHECK_MSG(ret == 0, "switch %u to %s: %d %s", i, name, ret,
			  blkstack_errmsg());
		rec_requeue_next(d, 1);	/* a driver requeue now and then */
		test_sleep_ms(2);
	}
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < NW; i++) {
		pthread_join(w[i].thread, NULL);
		CHECK_MSG(w[i].err == 0, "worker %u: error %d", i, w[i].err);
		CHECK_MSG(w[i].bad == 0, "worker %u: %lu blocks read back "
			  "wrong", i, w[i].bad);
		CHECK_MSG(w[i].ios > 0, "worker %u made no progress", i);
		total += w[i].ios;
	}
	fprintf(stderr, "   %lu I/Os during %d switches\n", total, SWITCHES);
	/* ended on "none": the scheduler is gone and balanced */
	CHECK(rec_queue(d)->elevator == NULL);
	CHECK_EQ_U64(atomic_load(&fifo_stats.queues), 0);
	settle();
	CHECK(DELTA(prepared) > 0);
	CHECK_EQ_U64(DELTA(prepared), DELTA(finished));
	CHECK(DELTA(requeued) > 0);
	CHECK_EQ_U64(DELTA(dispatched), DELTA(inserted));
	/* the last bios end before their requests' accounting does */
	for (unsigned int i = 0; i < 3000; i++) {
		blk_disk_get_stats(rec_disk(d), &st);
		if (!st.in_flight)
			break;
		test_sleep_ms(1);
	}
	CHECK_EQ_U64(st.in_flight, 0);
	/* every block holds what was last written to it */
	for (unsigned int i = 0; i < NW; i++) {
		for (unsigned int b = 0; b < STRESS_BLOCKS; b++) {
			off_t off = worker_off(&w[i], b);

			if (!w[i].seed[b])
				continue;
			CHECK_EQ_INT(blkdev_pread(rec_disk(d), rb, STRESS_BLOCK,
						  off), STRESS_BLOCK);
			if (!CHECK_MSG(test_verify(rb, STRESS_BLOCK,
						   w[i].seed[b],
						   (uint64_t)off) < 0,
				       "worker %u block %u lost its last write",
				       i, b))
				break;
		}
	}
	free(rb);
	rec_destroy(d);
}

int main(void)
{
	struct rec_dev *d;

	test_init(2);
	test_register();
	d = mkdev(1);
	if (d) {
		test_attribute(d);
		test_io(d);
		test_back_to_none(d);
		rec_destroy(d);
	}
	test_switch_under_load();
	elv_unregister(&fifo_test_elv);
	CHECK(elevator_find("fifo-test") == NULL);
	return test_report();
}
