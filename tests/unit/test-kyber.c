// SPDX-License-Identifier: MIT
/*
 * kyber (block/kyber-iosched.c):
 *
 *  - its attributes: read_lat_nsec and write_lat_nsec show the kernel's
 *    defaults, take whole nanoseconds, and refuse anything else with a
 *    message naming the valid values, keeping the old value;
 *  - token accounting: on a driver that holds requests, never more of a
 *    domain in the device than its depth (64 discards, 16 "other"), more
 *    go as tokens free, and the counters balance when all is done;
 *  - depth scaling on null_blk with a fixed completion time: while reads
 *    miss their target (the device is congested) the write domain, well
 *    under its own, is throttled down; with the targets swapped, writes
 *    missing theirs get their depth back up to the maximum while reads
 *    are throttled;
 *  - switching none <-> kyber 100 times under a write/read-verify load
 *    loses and corrupts nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

/* ---- the debug dump ---- */

/* The dump of @disk's queue, malloc'ed. */
static char *dump(struct gendisk *disk)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	blk_mq_debug_dump(disk, f);
	fclose(f);
	return text;
}

/* FIELD=N on the dump line "  kyber DOMAIN: ..."; -1 if not there. */
static long kyber_field(struct gendisk *disk, const char *domain,
			const char *field)
{
	char key[64];

	snprintf(key, sizeof(key), "  kyber %s: ", domain);
	return test_dump_field(disk, key, field);
}

static void show_dump(struct gendisk *disk)
{
	char *text = dump(disk);

	fprintf(stderr, "%s", text ? text : "(no dump)\n");
	free(text);
}

/* ---- attributes ---- */

static void check_bad_lat(struct gendisk *disk, const char *attr,
			  const char *val, const char *keep)
{
	char buf[64], want[160];
	int ret = blk_queue_attr_store(disk, attr, val);

	snprintf(want, sizeof(want), "%s '%s': valid values are "
		 "0..18446744073709551615 (nanoseconds)", attr, val);
	CHECK_MSG(ret == -EINVAL && !strcmp(blkstack_errmsg(), want),
		  "%s=%s: %d '%s'", attr, val, ret, blkstack_errmsg());
	CHECK_MSG(!strcmp(test_attr_show(disk, attr, buf, sizeof(buf)), keep),
		  "%s changed to %s", attr, buf);
}

static void test_attrs(void)
{
	struct gendisk *disk = test_null_add("kyb0", "size=64M,irqmode=0,"
					     "memory_backed=1");
	unsigned char *wb = malloc(65536), *rb = malloc(65536);
	char buf[128];

	REQUIRE(disk);
	test_begin("attributes", 10);
	CHECK_EQ_INT(test_attr_store(disk, "scheduler", "kyber"), 0);
	CHECK_MSG(strstr(test_attr_show(disk, "scheduler", buf, sizeof(buf)),
			 "[kyber]"), "scheduler: %s", buf);
	CHECK(!strcmp(test_attr_show(disk, "iosched/read_lat_nsec", buf,
				     sizeof(buf)), "2000000"));
	CHECK(!strcmp(test_attr_show(disk, "iosched/write_lat_nsec", buf,
				     sizeof(buf)), "10000000"));
	CHECK_EQ_INT(test_attr_store(disk, "iosched/read_lat_nsec", "123456"), 0);
	CHECK_EQ_INT(test_attr_store(disk, "iosched/write_lat_nsec", "0"), 0);
	CHECK(!strcmp(test_attr_show(disk, "iosched/read_lat_nsec", buf,
				     sizeof(buf)), "123456"));
	CHECK(!strcmp(test_attr_show(disk, "iosched/write_lat_nsec", buf,
				     sizeof(buf)), "0"));
	check_bad_lat(disk, "iosched/read_lat_nsec", "abc", "123456");
	check_bad_lat(disk, "iosched/read_lat_nsec", "-1", "123456");
	check_bad_lat(disk, "iosched/read_lat_nsec", "", "123456");
	check_bad_lat(disk, "iosched/read_lat_nsec", "1.5", "123456");
	check_bad_lat(disk, "iosched/write_lat_nsec", "99999999999999999999",
		      "0");
	CHECK_EQ_INT(blk_queue_attr_store(disk, "iosched/fifo_batch", "1"),
		     -ENOENT);
	/* I/O flows through it, and is counted */
	CHECK(wb && rb && test_write_verify(disk, 0, 65536, 7, wb, rb));
	CHECK(kyber_field(disk, "write", "dispatched") > 0);
	CHECK(kyber_field(disk, "read", "inserted") > 0);
	free(wb);
	free(rb);
	test_dev_del(disk);
}

/* ---- token accounting ---- */

static struct rec_dev *mk_held_dev(void)
{
	struct rec_limits l = {
		.max_hw_discard_sectors = 2048,
		.max_write_zeroes_sectors = 2048,
	};
	struct rec_config cfg;

	rec_config_init(&cfg);
	cfg.queue_depth = 128;
	cfg.mode = REC_HELD;
	rec_config_limits(&cfg, &l);
	return rec_create(&cfg);
}

/*
 * Submit @n data-less @op bios far apart (no merging) and check that the
 * driver holds exactly @depth of them, then that completing some lets as
 * many more in, and that all end.
 */
static void check_domain_tokens(struct rec_dev *d, enum req_op op,
				const char *domain, unsigned int n,
				unsigned int depth)
{
	struct gendisk *disk = rec_disk(d);
	struct tio t;

	tio_init(&t);
	for (unsigned int i = 0; i < n; i++)
		tio_submit(&t, disk, op, (sector_t)i * 64, NULL, 4096);
	CHECK(rec_wait_held(d, depth, 5000));
	test_sleep_ms(50);	/* nothing more may arrive */
	CHECK_EQ_U64(rec_nr_held(d), depth);
	CHECK_EQ_U64(kyber_field(disk, domain, "tokens_used"), depth);
	CHECK(kyber_field(disk, domain, "throttled") > 0);
	CHECK_EQ_U64(rec_complete_n(d, 10), 10);
	CHECK(rec_wait_held(d, depth, 5000));
	test_sleep_ms(20);
	CHECK_EQ_U64(rec_nr_held(d), depth);
	while (tio_done(&t) < n && rec_wait_held(d, 1, 5000))
		rec_complete_all(d);
	CHECK(tio_wait(&t, n, 5000));
	CHECK_EQ_U64(t.errors, 0);
	CHECK_EQ_U64(test_wait_idle(disk, 3000), 0);
	/* every request went in, out and back once */
	CHECK_EQ_U64(kyber_field(disk, domain, "inserted"), n);
	CHECK_EQ_U64(kyber_field(disk, domain, "dispatched"), n);
	CHECK_EQ_U64(kyber_field(disk, domain, "completed"), n);
	CHECK_EQ_U64(kyber_field(disk, domain, "tokens_used"), 0);
	tio_destroy(&t);
}

static void test_tokens(void)
{
	struct rec_dev *d = mk_held_dev();
	struct gendisk *disk;

	REQUIRE(d);
	disk = rec_disk(d);
	test_begin("tokens: a domain's depth bounds what the device holds", 20);
	CHECK_EQ_INT(test_attr_store(disk, "scheduler", "kyber"), 0);
	CHECK_EQ_INT(test_attr_store(disk, "nomerges", "2"), 0);
	CHECK_EQ_U64(kyber_field(disk, "discard", "depth"), 64);
	CHECK_EQ_U64(kyber_field(disk, "other", "depth"), 16);
	check_domain_tokens(d, REQ_OP_DISCARD, "discard", 100, 64);
	check_domain_tokens(d, REQ_OP_WRITE_ZEROES, "other", 40, 16);
	if (testlib_failures)
		show_dump(disk);
	rec_destroy(d);
}

/* ---- depth scaling ---- */

/* Reads and writes, @n of each at a time, until @done() or @ms pass. */
static bool load_until(struct gendisk *disk, unsigned int n,
		       bool (*done)(struct gendisk *), unsigned int ms)
{
	uint64_t end = test_now_ns() + (uint64_t)ms * 1000000;
	static unsigned char buf[2][4096];
	unsigned int round = 0;

	while (test_now_ns() < end) {
		struct tio t;

		if (done(disk))
			return true;
		tio_init(&t);
		for (unsigned int i = 0; i < n; i++) {
			sector_t s = (sector_t)((round * n + i) % 8192) * 8;

			tio_submit(&t, disk, REQ_OP_READ, s, buf[0], 4096);
			tio_submit(&t, disk, REQ_OP_WRITE | REQ_SYNC,
				   s + 65536, buf[1], 4096);
		}
		if (!CHECK(tio_wait(&t, 2 * n, 10000)))
			return false;
		CHECK_EQ_U64(t.errors, 0);
		tio_destroy(&t);
		round++;
	}
	return done(disk);
}

static bool writes_throttled(struct gendisk *disk)
{
	long w = kyber_field(disk, "write", "depth");

	return w >= 1 && w <= 2;
}

static bool writes_restored(struct gendisk *disk)
{
	return kyber_field(disk, "write", "depth") == 128 &&
	       kyber_field(disk, "read", "depth") < 256;
}

static void test_scaling(void)
{
	struct gendisk *disk = test_null_add("kyb1", "size=1G,irqmode=2,"
					     "completion_nsec=200000,"
					     "hw_queue_depth=128");
	unsigned int ms = test_slow() ? 40000 : 15000;

	REQUIRE(disk);
	test_begin("depth scaling from p90/p99 latency windows", 3 * ms / 1000);
	CHECK_EQ_INT(test_attr_store(disk, "scheduler", "kyber"), 0);
	CHECK_EQ_U64(kyber_field(disk, "read", "depth"), 256);
	CHECK_EQ_U64(kyber_field(disk, "write", "depth"), 128);
	/* reads (200 us) miss 50 us: congested; writes meet 10 s */
	CHECK_EQ_INT(test_attr_store(disk, "iosched/read_lat_nsec", "50000"), 0);
	CHECK_EQ_INT(test_attr_store(disk, "iosched/write_lat_nsec",
				     "10000000000"), 0);
	if (!CHECK_MSG(load_until(disk, 32, writes_throttled, ms),
		       "write depth %ld, not throttled to 1-2",
		       kyber_field(disk, "write", "depth")))
		show_dump(disk);
	CHECK(kyber_field(disk, "write", "scaled_down") >= 3);
	CHECK_EQ_U64(kyber_field(disk, "write", "scaled_up"), 0);
	CHECK_EQ_U64(kyber_field(disk, "read", "depth"), 256);
	CHECK(kyber_field(disk, "read", "p90_io") >= 4);
	CHECK_EQ_U64(kyber_field(disk, "write", "p99_total"), 0);

	/* swapped: writes miss theirs and grow back; reads meet theirs */
	CHECK_EQ_INT(test_attr_store(disk, "iosched/read_lat_nsec",
				     "10000000000"), 0);
	CHECK_EQ_INT(test_attr_store(disk, "iosched/write_lat_nsec", "50000"), 0);
	if (!CHECK_MSG(load_until(disk, 32, writes_restored, ms),
		       "write depth %ld read depth %ld",
		       kyber_field(disk, "write", "depth"),
		       kyber_field(disk, "read", "depth")))
		show_dump(disk);
	CHECK(kyber_field(disk, "write", "scaled_up") >= 6);
	CHECK(kyber_field(disk, "read", "scaled_down") >= 1);
	CHECK_EQ_U64(test_wait_idle(disk, 3000), 0);
	test_dev_del(disk);
}

/* ---- switching under a verify load ---- */

#define SW_BLOCK	8192
#define SW_BLOCKS	64

struct sw_worker {
	pthread_t thread;
	struct gendisk *disk;
	unsigned int id;
	_Atomic bool *stop;
	unsigned long ios, bad;
	int err;
};

static void *sw_worker_fn(void *arg)
{
	struct sw_worker *w = arg;
	unsigned char *wb = malloc(SW_BLOCK), *rb = malloc(SW_BLOCK);
	uint64_t seed = w->id * 1000003ULL;

	while (wb && rb && !atomic_load(w->stop) && !w->err) {
		off_t off = ((off_t)w->id * SW_BLOCKS +
			     (off_t)(w->ios % SW_BLOCKS)) * SW_BLOCK;
		ssize_t ret;

		test_fill(wb, SW_BLOCK, ++seed, (uint64_t)off);
		ret = blkdev_pwrite(w->disk, wb, SW_BLOCK, off);
		if (ret == SW_BLOCK)
			ret = blkdev_pread(w->disk, rb, SW_BLOCK, off);
		if (ret != SW_BLOCK)
			w->err = ret < 0 ? (int)ret : -EIO;
		else if (test_verify(rb, SW_BLOCK, seed, (uint64_t)off) >= 0)
			w->bad++;
		w->ios++;
	}
	free(wb);
	free(rb);
	return NULL;
}

static void test_switch(void)
{
	enum { NW = 4, SWITCHES = 100 };
	/* two hardware queues: tokens shared, kcqs and waiters per queue */
	struct gendisk *disk = test_null_add("kyb2", "size=64M,irqmode=1,"
					     "memory_backed=1,submit_queues=2");
	struct sw_worker w[NW];
	_Atomic bool stop = false;
	unsigned long total = 0;

	REQUIRE(disk);
	test_begin("100 switches none <-> kyber under write/verify", 30);
	memset(w, 0, sizeof(w));
	for (unsigned int i = 0; i < NW; i++) {
		w[i].disk = disk;
		w[i].id = i;
		w[i].stop = &stop;
		CHECK(pthread_create(&w[i].thread, NULL, sw_worker_fn, &w[i]) == 0);
	}
	for (unsigned int i = 0; i < SWITCHES; i++) {
		const char *name = i % 2 ? "none" : "kyber";
		int ret = blk_queue_attr_store(disk, "scheduler", name);

		CHECK_MSG(ret == 0, "switch %u to %s: %d %s", i, name, ret,
			  blkstack_errmsg());
		test_sleep_ms(2);
	}
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < NW; i++) {
		pthread_join(w[i].thread, NULL);
		CHECK_MSG(w[i].err == 0, "worker %u: error %d", i, w[i].err);
		CHECK_MSG(w[i].bad == 0, "worker %u: %lu blocks read back wrong",
			  i, w[i].bad);
		CHECK_MSG(w[i].ios > 0, "worker %u made no progress", i);
		total += w[i].ios;
	}
	fprintf(stderr, "   %lu write+verify pairs during %d switches\n", total,
		SWITCHES);
	CHECK_EQ_U64(test_wait_idle(disk, 3000), 0);
	test_dev_del(disk);
}

int main(void)
{
	test_init(2);
	test_attrs();
	test_tokens();
	test_scaling();
	test_switch();
	return test_report();
}
