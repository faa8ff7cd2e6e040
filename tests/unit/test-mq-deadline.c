// SPDX-License-Identifier: MIT
/*
 * block/mq-deadline.c. The rules, on the recording driver with a budget
 * of one request and requests held until the test completes them, so
 * every request waits in the scheduler and the order it leaves in is
 * the scheduler's alone:
 *
 *  - sector order within a batch, starting at the last position;
 *  - a request past read_expire is served at the start of the next
 *    batch; fifo_batch bounds how long an expired request waits;
 *  - writes_starved: with fifo_batch 1 the pattern is R R W R R W for
 *    the default 2, writes first for 0;
 *  - priority classes: RT before BE; a BE request older than
 *    prio_aging_expire goes before RT;
 *  - front merges happen with front_merges=1 only, back merges always;
 *  - async_depth limits the scheduler tags writes may hold, never reads;
 *  - on a rotational device, writes wait while a read is in flight
 *    (unless expired) and at most fifo_batch are in the driver at once;
 *    a non-rotational one has neither limit;
 *  - the iosched/ attributes: defaults, stores, bad values refused;
 *  - the default scheduler: mq-deadline on single-queue rotational
 *    devices only;
 *  - the counters in the debug dump add up.
 *
 * Then the acceptance: switching none <-> mq-deadline 100 times
 * under a verifying load, nothing lost or duplicated -- on sim ssd, sim
 * hdd and a two-queue null_blk (one scheduler instance for both hctxs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "lib/prandom.h"
#include "testlib.h"

#define KB(n)	((n) * 1024U)

static unsigned char *zbuf;	/* data for writes; contents do not matter */

static struct rec_dev *dd_dev(void)
{
	struct rec_config cfg;
	struct rec_dev *d;

	rec_config_init(&cfg);
	cfg.capacity = 1ULL << 24;	/* 8 GiB, no data kept */
	cfg.has_budget = true;
	cfg.budget = 1;
	cfg.mode = REC_HELD;
	d = rec_create(&cfg);
	if (!CHECK(d))
		return NULL;
	if (!CHECK_EQ_INT(test_attr_store(rec_disk(d), "scheduler",
					  "mq-deadline"), 0)) {
		rec_destroy(d);
		return NULL;
	}
	return d;
}

static void dd_set(struct rec_dev *d, const char *attr, const char *val)
{
	char name[64];

	snprintf(name, sizeof(name), "iosched/%s", attr);
	test_attr_store(rec_disk(d), name, val);
}

/* The first request, held by the driver: the rest queue behind it. */
static void dd_plug(struct rec_dev *d, struct tio *t)
{
	tio_submit(t, rec_disk(d), REQ_OP_READ, 0, zbuf, KB(4));
	CHECK(rec_wait_held(d, 1, 3000));
}

static void dd_submit(struct rec_dev *d, struct tio *t, enum req_op op,
		      sector_t sector)
{
	tio_submit(t, rec_disk(d), op, sector, zbuf, KB(4));
}

/*
 * Let @n queued requests through one at a time; their sectors in the
 * order they reached the driver go to @out (the plug excluded).
 */
static bool dd_release(struct rec_dev *d, struct tio *t, unsigned int n,
		       sector_t *out)
{
	unsigned int base = rec_nr_ios(d);

	for (unsigned int k = 0; k < n; k++) {
		/* logged a moment before it is held: complete it once held */
		CHECK(rec_wait_held(d, 1, 3000));
		rec_complete_n(d, 1);
		if (!CHECK_MSG(rec_wait_ios(d, base + k + 1, 3000),
			       "request %u of %u never came", k + 1, n)) {
			blk_mq_debug_dump(rec_disk(d), stderr);
			rec_dump(d, "stuck");
			return false;
		}
		out[k] = rec_io_at(d, base + k).sector;
	}
	CHECK(rec_wait_held(d, 1, 3000));
	rec_complete_all(d);
	return CHECK(tio_wait(t, t->nr, 3000)) && CHECK_EQ_U64(t->errors, 0);
}

static bool order_is(const sector_t *got, const sector_t *want,
		     unsigned int n, const char *what)
{
	for (unsigned int i = 0; i < n; i++) {
		if (got[i] != want[i]) {
			char buf[512];
			size_t pos = 0;

			for (unsigned int k = 0; k < n; k++)
				pos += (size_t)snprintf(buf + pos,
							sizeof(buf) - pos,
							"%llu ",
							(unsigned long long)got[k]);
			CHECK_MSG(0, "%s: dispatched %s", what, buf);
			return false;
		}
	}
	return true;
}

static void test_sector_order(void)
{
	static const sector_t in[] = { 5000, 1000, 4000, 2000, 3000 };
	static const sector_t want[] = { 1000, 2000, 3000, 4000, 5000 };
	struct rec_dev *d = dd_dev();
	sector_t got[5];
	struct tio t;

	test_begin("sector order within a batch", 10);
	if (!d)
		return;
	tio_init(&t);
	dd_plug(d, &t);
	for (unsigned int i = 0; i < 5; i++)
		dd_submit(d, &t, REQ_OP_READ, in[i]);
	if (dd_release(d, &t, 5, got))
		order_is(got, want, 5, "sorted reads");
	tio_destroy(&t);
	rec_destroy(d);
}

/* A far request queued first, then near ones, all left to expire. */
static void run_expiry(const char *expire, const char *batch,
		       const sector_t *want, const char *what)
{
	struct rec_dev *d = dd_dev();
	sector_t got[9];
	struct tio t;

	if (!d)
		return;
	dd_set(d, "read_expire", expire);
	dd_set(d, "fifo_batch", batch);
	tio_init(&t);
	dd_plug(d, &t);
	dd_submit(d, &t, REQ_OP_READ, 1000000);
	for (unsigned int i = 1; i <= 8; i++)
		dd_submit(d, &t, REQ_OP_READ, i * 100);
	test_sleep_ms(60);
	if (dd_release(d, &t, 9, got))
		order_is(got, want, 9, what);
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_expiry(void)
{
	static const sector_t sorted[] = { 100, 200, 300, 400, 500, 600, 700,
					   800, 1000000 };
	static const sector_t batch1[] = { 1000000, 100, 200, 300, 400, 500,
					   600, 700, 800 };
	static const sector_t batch3[] = { 100, 200, 1000000, 300, 400, 500,
					   600, 700, 800 };

	test_begin("deadline expiry: not expired, sector order", 10);
	run_expiry("10000", "1", sorted, "read_expire 10 s, fifo_batch 1");
	test_begin("deadline expiry: the expired oldest goes first", 10);
	run_expiry("20", "1", batch1, "read_expire 20 ms, fifo_batch 1");
	test_begin("fifo_batch: an expired request waits out the batch", 10);
	/* the plug opened a batch of 3: two more, then the FIFO's head */
	run_expiry("20", "3", batch3, "read_expire 20 ms, fifo_batch 3");
}

static void run_starved(const char *starved, const sector_t *want,
			const char *what)
{
	struct rec_dev *d = dd_dev();
	sector_t got[9];
	struct tio t;

	if (!d)
		return;
	dd_set(d, "fifo_batch", "1");
	dd_set(d, "writes_starved", starved);
	tio_init(&t);
	dd_plug(d, &t);
	for (unsigned int i = 1; i <= 6; i++)
		dd_submit(d, &t, REQ_OP_READ, i * 100);
	for (unsigned int i = 1; i <= 3; i++)
		dd_submit(d, &t, REQ_OP_WRITE, 100000 + i * 100);
	if (dd_release(d, &t, 9, got))
		order_is(got, want, 9, what);
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_writes_starved(void)
{
	static const sector_t def[] = { 100, 200, 100100, 300, 400, 100200,
					500, 600, 100300 };
	static const sector_t zero[] = { 100100, 100200, 100300, 100, 200,
					 300, 400, 500, 600 };

	test_begin("writes_starved 2: two read batches, then a write", 10);
	run_starved("2", def, "writes_starved 2");
	test_begin("writes_starved 0: writes first", 10);
	run_starved("0", zero, "writes_starved 0");
}

static void run_prio(const char *aging_ms, unsigned int sleep_ms,
		     const sector_t *want, const char *what)
{
	struct io_context *rt = ioc_create(1, IOPRIO_PRIO_VALUE(
					   IOPRIO_CLASS_RT, 0), 0, "rt");
	struct io_context *be = ioc_create(2, IOPRIO_PRIO_VALUE(
					   IOPRIO_CLASS_BE, 4), 0, "be");
	struct rec_dev *d = dd_dev();
	sector_t got[5];
	struct tio t;

	if (!d || !CHECK(rt && be))
		goto out;
	dd_set(d, "prio_aging_expire", aging_ms);
	tio_init(&t);
	dd_plug(d, &t);
	blk_set_current_ioc(be);
	dd_submit(d, &t, REQ_OP_READ, 500);
	blk_set_current_ioc(rt);
	for (unsigned int i = 1; i <= 4; i++)
		dd_submit(d, &t, REQ_OP_READ, 1000 * i);
	blk_set_current_ioc(NULL);
	test_sleep_ms(sleep_ms);
	if (dd_release(d, &t, 5, got))
		order_is(got, want, 5, what);
	tio_destroy(&t);
out:
	rec_destroy(d);
	put_io_context(rt);
	put_io_context(be);
}

static void test_prio(void)
{
	static const sector_t rt_first[] = { 1000, 2000, 3000, 4000, 500 };
	static const sector_t aged[] = { 500, 1000, 2000, 3000, 4000 };

	test_begin("priority classes: RT before BE", 10);
	run_prio("10000", 0, rt_first, "no aging");
	test_begin("prio_aging_expire: an old BE request goes before RT", 10);
	run_prio("30", 60, aged, "BE aged 60 ms, prio_aging_expire 30 ms");
}

/*
 * Adjacent writes: how many requests reach the driver. For a front
 * merge the one-hit cache (q->last_merge, which merges either way, as
 * in the kernel) first moves to another request by a back merge there.
 */
static unsigned int run_merge(const char *front, bool front_order)
{
	struct rec_dev *d = dd_dev();
	unsigned int n = 0;
	struct tio t;

	if (!d)
		return 0;
	dd_set(d, "front_merges", front);
	tio_init(&t);
	dd_plug(d, &t);
	rec_clear_log(d);
	if (front_order) {
		dd_submit(d, &t, REQ_OP_WRITE, 108);
		dd_submit(d, &t, REQ_OP_WRITE, 5000);
		dd_submit(d, &t, REQ_OP_WRITE, 5008);
		dd_submit(d, &t, REQ_OP_WRITE, 100);
	} else {
		dd_submit(d, &t, REQ_OP_WRITE, 100);
		dd_submit(d, &t, REQ_OP_WRITE, 108);
	}
	/* let everything through */
	for (unsigned int i = 0; i < 3000 && tio_pending(&t); i++) {
		rec_complete_all(d);
		test_sleep_ms(1);
	}
	CHECK(tio_wait(&t, t.nr, 3000));
	n = rec_nr_ios(d);
	tio_destroy(&t);
	rec_destroy(d);
	return n;
}

static void test_merges(void)
{
	test_begin("front_merges 1: a bio ending where a request starts "
		   "joins it", 10);
	CHECK_EQ_U64(run_merge("1", true), 2);
	test_begin("front_merges 0: it does not", 10);
	CHECK_EQ_U64(run_merge("0", true), 3);
	test_begin("back merges through the hash either way", 10);
	CHECK_EQ_U64(run_merge("0", false), 1);
}

struct nowait_count {
	_Atomic unsigned int ok, again, other;
};

static void nowait_done(void *priv, int err)
{
	struct nowait_count *c = priv;

	if (!err)
		atomic_fetch_add(&c->ok, 1);
	else if (err == -EAGAIN)
		atomic_fetch_add(&c->again, 1);
	else
		atomic_fetch_add(&c->other, 1);
}

/* Submit @n NOWAIT I/Os of @op while the driver holds everything. */
static unsigned int queued_nowait(struct rec_dev *d, enum req_op op,
				  unsigned int n, struct nowait_count *c)
{
	for (unsigned int i = 0; i < n; i++)
		blkdev_submit(rec_disk(d), op | REQ_NOWAIT,
			      (off_t)(1000 + i * 16) * 512, zbuf, KB(4),
			      nowait_done, c);
	return n - atomic_load(&c->again);
}

static void test_async_depth(void)
{
	struct nowait_count w = { 0 }, r = { 0 };
	struct rec_dev *d = dd_dev();
	unsigned int writes, reads;
	char buf[32];
	struct tio t;

	test_begin("async_depth: writes get only so many scheduler tags", 10);
	if (!d)
		return;
	/* 128 scheduler tags by default; async_depth starts at 3/4 */
	CHECK_MSG(!strcmp(test_attr_show(rec_disk(d), "iosched/async_depth",
					 buf, sizeof(buf)), "96"),
		  "async_depth %s", buf);
	dd_set(d, "async_depth", "8");
	tio_init(&t);
	dd_plug(d, &t);
	writes = queued_nowait(d, REQ_OP_WRITE, 40, &w);
	reads = queued_nowait(d, REQ_OP_READ, 40, &r);
	/* a few per sbitmap word may round up, never the whole map */
	CHECK_MSG(writes >= 4 && writes <= 12, "%u async writes queued",
		  writes);
	CHECK_EQ_U64(reads, 40);
	CHECK_EQ_U64(atomic_load(&r.again), 0);
	for (unsigned int i = 0; i < 3000 && atomic_load(&w.ok) +
	     atomic_load(&r.ok) < writes + reads; i++) {
		rec_complete_all(d);
		test_sleep_ms(1);
	}
	CHECK_EQ_U64(atomic_load(&w.ok) + atomic_load(&r.ok), writes + reads);
	CHECK_EQ_U64(atomic_load(&w.other) + atomic_load(&r.other), 0);
	rec_complete_all(d);
	CHECK(tio_wait(&t, 1, 3000));
	tio_destroy(&t);
	rec_destroy(d);
}

static void check_attr(struct rec_dev *d, const char *attr, const char *want)
{
	char name[64], buf[64];

	snprintf(name, sizeof(name), "iosched/%s", attr);
	test_attr_show(rec_disk(d), name, buf, sizeof(buf));
	CHECK_MSG(!strcmp(buf, want), "%s is '%s', want '%s'", name, buf, want);
}

/* A rotational (or not) recording device with room for many requests. */
static struct rec_dev *dd_disk_dev(bool rotational)
{
	struct rec_config cfg;
	struct rec_dev *d;

	rec_config_init(&cfg);
	cfg.capacity = 1ULL << 24;
	cfg.mode = REC_HELD;
	d = rec_create(&cfg);
	if (!CHECK(d))
		return NULL;
	if (!CHECK_EQ_INT(test_attr_store(rec_disk(d), "rotational",
					  rotational ? "1" : "0"), 0) ||
	    !CHECK_EQ_INT(test_attr_store(rec_disk(d), "scheduler",
					  "mq-deadline"), 0)) {
		rec_destroy(d);
		return NULL;
	}
	return d;
}

/*
 * A read held in the driver, then @n writes: @want of them must reach the
 * driver within @ms while the read stays in flight. On a mismatch the
 * queue state (mq-deadline's in_flight and writes_held) is dumped.
 */
static void writes_past_read(struct rec_dev *d, struct tio *t, unsigned int n,
			     unsigned int ms, unsigned int want)
{
	unsigned int got;

	tio_submit(t, rec_disk(d), REQ_OP_READ, 0, zbuf, KB(4));
	CHECK(rec_wait_held(d, 1, 3000));
	for (unsigned int i = 0; i < n; i++)
		dd_submit(d, t, REQ_OP_WRITE, 1000 + i * 100);
	rec_wait_ios(d, 1 + n, ms);
	got = rec_count_op(d, REQ_OP_WRITE);
	if (!CHECK_MSG(got == want, "%u of %u writes reached the driver past "
		       "a read in flight in %u ms, want %u", got, n, ms, want)) {
		rec_dump(d, "writes past a read");
		blk_mq_debug_dump(rec_disk(d), stderr);
	}
}


static unsigned int plug_cached(const struct blk_plug *plug)
{
	unsigned int n = 0;

	for (struct request *rq = plug->cached_rq; rq; rq = rq->rq_next)
		n++;
	return n;
}

/*
 * A plug expecting several I/Os takes scheduler tags for them in one
 * go when the scheduler lets the first take any tag (a read), as the
 * kernel's blk_mq_get_tags(); async_depth (a write) allocates one by
 * one, so that the limit is applied to each.
 */
static void test_plug_batch(void)
{
	struct rec_dev *d = dd_dev();
	struct blk_plug plug;
	struct tio t;

	test_begin("a plug takes scheduler tags for reads in a batch", 10);
	if (!d)
		return;
	tio_init(&t);
	dd_plug(d, &t);
	blk_start_plug_nr_ios(&plug, 8);
	dd_submit(d, &t, REQ_OP_READ, 1024);
	CHECK_EQ_U64(plug_cached(&plug), 7);
	for (unsigned int i = 1; i < 8; i++)
		dd_submit(d, &t, REQ_OP_READ, 1024 + 64 * i);
	CHECK_EQ_U64(plug_cached(&plug), 0);
	blk_finish_plug(&plug);

	blk_start_plug_nr_ios(&plug, 8);
	dd_submit(d, &t, REQ_OP_WRITE, 4096);
	CHECK_EQ_U64(plug_cached(&plug), 0);
	blk_finish_plug(&plug);

	for (unsigned int i = 0; i < 3000 && tio_done(&t) < t.nr; i++) {
		rec_complete_all(d);
		test_sleep_ms(1);
	}
	CHECK(tio_wait(&t, t.nr, 3000));
	CHECK_EQ_U64(t.errors, 0);
	rec_destroy(d);
}


/*
 * A request holds its issuer's io_context only under a scheduler that
 * keeps per-issuer state (bfq), as the kernel attaches an icq only for
 * an elevator with an icq_cache: under mq-deadline or kyber the
 * reference would be two atomic operations per request for nothing.
 * Returns the references the held request (and its scheduler) took.
 */
static int ioc_refs_taken(const char *sched)
{
	struct io_context *ioc = ioc_create(7, IOPRIO_DEFAULT, 0, "refs");
	struct rec_config cfg;
	struct rec_dev *d;
	struct tio t;
	int before, taken = -1;

	rec_config_init(&cfg);
	cfg.capacity = 1ULL << 24;
	cfg.mode = REC_HELD;
	d = rec_create(&cfg);
	if (!CHECK(d && ioc))
		goto out;
	if (!CHECK_EQ_INT(test_attr_store(rec_disk(d), "scheduler", sched), 0))
		goto out;
	tio_init(&t);
	before = atomic_load(&ioc->refcount);
	blk_set_current_ioc(ioc);
	dd_submit(d, &t, REQ_OP_READ, 0);
	blk_set_current_ioc(NULL);
	CHECK(rec_wait_held(d, 1, 3000));
	taken = atomic_load(&ioc->refcount) - before;
	rec_complete_all(d);
	CHECK(tio_wait(&t, 1, 3000));
	tio_destroy(&t);
out:
	if (d)
		rec_destroy(d);
	if (ioc)
		put_io_context(ioc);
	return taken;
}

static void test_ioc_refs(void)
{
	test_begin("only bfq's requests hold their io_context", 10);
	CHECK_EQ_INT(ioc_refs_taken("mq-deadline"), 0);
	CHECK_EQ_INT(ioc_refs_taken("kyber"), 0);
	CHECK_MSG(ioc_refs_taken("bfq") > 0, "bfq took no reference");
}

/*
 * End everything the driver holds until @n I/Os of @t have ended, not
 * once: rec_wait_ios() returns when a request is logged, and the driver
 * puts it on its held list only after starting it, so a request that
 * reached the driver a moment ago may not be held yet. Slow builds
 * (ASan) and loaded hosts left one behind, held for ever.
 */
static void dd_complete_until(struct rec_dev *d, struct tio *t, unsigned int n)
{
	for (unsigned int i = 0; i < 3000 && !tio_wait(t, n, 1); i++)
		rec_complete_all(d);
	CHECK_MSG(tio_wait(t, n, 1), "%u of %u I/Os ended, %u held",
		  tio_done(t), n, rec_nr_held(d));
}

static void test_disk_writes(void)
{
	struct rec_dev *d;
	struct tio t;

	test_begin("rotational: writes wait while a read is in flight", 10);
	d = dd_disk_dev(true);
	if (!d)
		return;
	/* the read is not slow (a quarter of read_expire): no ramp after */
	dd_set(d, "read_expire", "20000");
	tio_init(&t);
	writes_past_read(d, &t, 4, 100, 0);
	/* the read completes: the writes go, no later run needed */
	rec_complete_n(d, 1);
	CHECK_MSG(rec_wait_ios(d, 5, 3000), "%u requests reached the driver",
		  rec_nr_ios(d));
	dd_complete_until(d, &t, 5);
	tio_destroy(&t);
	rec_destroy(d);

	test_begin("rotational: an expired write goes past a read in flight",
		   10);
	d = dd_disk_dev(true);
	if (!d)
		return;
	dd_set(d, "write_expire", "20");
	tio_init(&t);
	writes_past_read(d, &t, 2, 2000, 2);
	dd_complete_until(d, &t, 3);
	tio_destroy(&t);
	rec_destroy(d);

	test_begin("non-rotational: writes go past a read in flight", 10);
	d = dd_disk_dev(false);
	if (!d)
		return;
	tio_init(&t);
	writes_past_read(d, &t, 4, 3000, 4);
	dd_complete_until(d, &t, 5);
	tio_destroy(&t);
	rec_destroy(d);
}

/*
 * A read that took over a quarter of read_expire: for a fifth of
 * read_expire after it ends one write at a time goes to the disk, then
 * one more per fifth (CFQ's ramp after a delayed sync request).
 */
static void test_write_ramp(void)
{
	struct rec_dev *d;
	unsigned int got;
	struct tio t;

	test_begin("rotational: after a slow read, writes go one at a time", 10);
	d = dd_disk_dev(true);
	if (!d)
		return;
	dd_set(d, "read_expire", "400");	/* slow: 100 ms; steps: 80 ms */
	tio_init(&t);
	tio_submit(&t, rec_disk(d), REQ_OP_READ, 0, zbuf, KB(4));
	CHECK(rec_wait_held(d, 1, 3000));
	test_sleep_ms(150);
	rec_complete_n(d, 1);
	CHECK(tio_wait(&t, 1, 3000));
	for (unsigned int i = 0; i < 6; i++)
		dd_submit(d, &t, REQ_OP_WRITE, 1000 + i * 100);
	rec_wait_ios(d, 3, 30);
	got = rec_count_op(d, REQ_OP_WRITE);
	CHECK_MSG(got == 1, "%u of 6 writes in the driver after a slow read",
		  got);
	/* and the ramp lets them all through in time */
	dd_complete_until(d, &t, 7);
	tio_destroy(&t);
	rec_destroy(d);
}

static void run_write_cap(bool rotational, unsigned int want)
{
	struct rec_dev *d = dd_disk_dev(rotational);
	struct tio t;

	if (!d)
		return;
	dd_set(d, "fifo_batch", "3");
	tio_init(&t);
	for (unsigned int i = 0; i < 8; i++)
		dd_submit(d, &t, REQ_OP_WRITE, 1000 + i * 100);
	rec_wait_ios(d, 8, rotational ? 100 : 3000);
	CHECK_EQ_U64(rec_nr_ios(d), want);
	if (rotational) {
		/* one completes: exactly one more goes in */
		rec_complete_n(d, 1);
		CHECK(rec_wait_ios(d, want + 1, 3000));
		test_sleep_ms(50);
		CHECK_EQ_U64(rec_nr_held(d), want);
	}
	for (unsigned int i = 0; i < 3000 && !tio_wait(&t, 8, 1); i++)
		rec_complete_all(d);
	CHECK(tio_wait(&t, 8, 3000));
	CHECK_EQ_U64(rec_nr_ios(d), 8);
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_write_cap(void)
{
	test_begin("rotational: at most fifo_batch writes in the driver", 10);
	run_write_cap(true, 3);
	test_begin("non-rotational: writes in the driver not capped", 10);
	run_write_cap(false, 8);
}

static void test_attributes(void)
{
	struct rec_dev *d = dd_dev();
	char buf[256];

	test_begin("iosched/ attributes: defaults, stores, bad values", 10);
	if (!d)
		return;
	check_attr(d, "read_expire", "500");
	check_attr(d, "write_expire", "5000");
	check_attr(d, "writes_starved", "2");
	check_attr(d, "front_merges", "1");
	check_attr(d, "fifo_batch", "16");
	check_attr(d, "prio_aging_expire", "10000");
	dd_set(d, "read_expire", "250\n");
	check_attr(d, "read_expire", "250");
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "iosched/front_merges",
					  "2"), -EINVAL);
	CHECK_MSG(strstr(blkstack_errmsg(), "front_merges") &&
		  strstr(blkstack_errmsg(), "0..1"), "message '%s'",
		  blkstack_errmsg());
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "iosched/read_expire",
					  "-1"), -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "iosched/read_expire",
					  "soon"), -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "iosched/async_depth",
					  "0"), -EINVAL);
	check_attr(d, "read_expire", "250");
	check_attr(d, "front_merges", "1");
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "iosched/nosuch", "1"),
		     -ENOENT);
	test_attr_show(rec_disk(d), "scheduler", buf, sizeof(buf));
	CHECK_MSG(strstr(buf, "[mq-deadline]"), "scheduler '%s'", buf);
	/* the kernel's alias */
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "scheduler", "none"), 0);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "scheduler", "deadline"),
		     0);
	test_attr_show(rec_disk(d), "scheduler", buf, sizeof(buf));
	CHECK_MSG(strstr(buf, "[mq-deadline]"), "scheduler '%s'", buf);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "scheduler", "none"), 0);
	CHECK_EQ_INT(blk_queue_attr_show(rec_disk(d), "iosched/read_expire",
					 buf, sizeof(buf)), -ENOENT);
	rec_destroy(d);
}

static void check_default(const char *driver, const char *params,
			  const char *want)
{
	struct gendisk *disk = NULL;
	char buf[128];

	if (!CHECK_MSG(blkstack_dev_add(driver, "dflt", params, &disk) == 0,
		       "%s %s: %s", driver, params, blkstack_errmsg()))
		return;
	test_attr_show(disk, "scheduler", buf, sizeof(buf));
	CHECK_MSG(strstr(buf, want), "%s:%s starts with '%s', want %s", driver,
		  params, buf, want);
	test_dev_del(disk);
}

static void test_default(void)
{
	test_begin("default: mq-deadline on single-queue rotational devices",
		   10);
	check_default("sim", "model=hdd,size=64M", "[mq-deadline]");
	check_default("sim", "model=ssd,size=64M", "[none]");
	check_default("null", "size=64M", "[none]");
	check_default("null", "size=64M,rotational=1", "[mq-deadline]");
	check_default("null", "size=64M,rotational=1,submit_queues=2",
		      "[none]");
}

/* A counter of class @cls from the debug dump ("BE", "dispatched"). */
static long dump_counter(struct gendisk *disk, const char *cls,
			 const char *name)
{
	char key[64];

	snprintf(key, sizeof(key), "mq-deadline %s:", cls);
	return test_dump_field(disk, key, name);
}

static void test_counters(void)
{
	struct rec_dev *d = dd_dev();
	sector_t got[8];
	struct tio t;

	test_begin("counters in the debug dump", 10);
	if (!d)
		return;
	dd_set(d, "read_expire", "10");
	dd_set(d, "fifo_batch", "1");
	tio_init(&t);
	dd_plug(d, &t);
	for (unsigned int i = 0; i < 6; i++)
		dd_submit(d, &t, REQ_OP_READ, 100000 - i * 1000);
	dd_submit(d, &t, REQ_OP_WRITE, 200);
	dd_submit(d, &t, REQ_OP_WRITE, 208);	/* back-merges */
	test_sleep_ms(30);
	if (dd_release(d, &t, 7, got)) {
		test_wait_idle(rec_disk(d), 3000);
		CHECK_EQ_U64(dump_counter(rec_disk(d), "BE", "inserted"), 8);
		CHECK_EQ_U64(dump_counter(rec_disk(d), "BE", "dispatched"), 8);
		CHECK_EQ_U64(dump_counter(rec_disk(d), "BE", "completed"), 8);
		CHECK_EQ_U64(dump_counter(rec_disk(d), "BE", "bio_merged"), 1);
		CHECK_EQ_U64(dump_counter(rec_disk(d), "BE", "queued"), 0);
		CHECK(dump_counter(rec_disk(d), "BE", "expired") >= 1);
		CHECK(dump_counter(rec_disk(d), "BE", "max_wait_us") >= 30000);
		CHECK_EQ_U64(dump_counter(rec_disk(d), "RT", "inserted"), 0);
	}
	tio_destroy(&t);
	rec_destroy(d);
}

int main(void)
{
	test_init(2);
	zbuf = aligned_alloc(4096, KB(64));
	if (!zbuf)
		return 1;
	memset(zbuf, 0, KB(64));
	test_sector_order();
	test_expiry();
	test_writes_starved();
	test_prio();
	test_merges();
	test_async_depth();
	test_plug_batch();
	test_ioc_refs();
	test_disk_writes();
	test_write_cap();
	test_write_ramp();
	test_attributes();
	test_default();
	test_counters();
	test_sched_switching("mq-deadline", "sim", "model=ssd,size=64M,time_scale=10");
	test_sched_switching("mq-deadline", "sim", "model=hdd,size=64M,time_scale=200");
	/* one scheduler for two hw queues: it may hand out either's requests */
	test_sched_switching("mq-deadline", "null", "size=64M,memory_backed=1,"
			     "submit_queues=2,irqmode=2,completion_nsec=20000");
	free(zbuf);
	return test_report();
}
