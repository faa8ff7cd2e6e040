// SPDX-License-Identifier: MIT
/*
 * Merging bios into requests (block/blk-merge.c, blk-mq.c plugging,
 * blk-mq-sched.c software-queue merges), checked at the driver with the
 * recording driver:
 *
 *  - plug merges: sequential bios under a plug become one request; back
 *    and front merges; only contiguous bios of the same op merge, and
 *    only into the most recent request; REQ_NOMERGE, FUA and PREFLUSH
 *    stop merging; max_sectors and max_segments stop a merge and mark
 *    the full request REQ_NOMERGE (ll_back_merge_fn);
 *  - plug flush thresholds: 32 requests (BLK_MAX_REQUEST_COUNT), a last
 *    request of 128 KiB (BLK_PLUG_FLUSH_SIZE, not with nomerges=2), 64
 *    when two devices are mixed, each device's requests then dispatched
 *    as one run;
 *  - nomerges=0/1/2 through the queue attribute;
 *  - software-queue merges into the last 8 requests of a ctx list, with
 *    the hw queue stopped or the driver out of budget;
 *  - ->queue_rqs takes a plain plug flush; ->commit_rqs is called when a
 *    run ends without bd->last;
 *  - the diskstats merge counters match.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define KB(n)	((n) * 1024U)
#define SECT(bytes)	((bytes) >> SECTOR_SHIFT)

static unsigned char *scratch;	/* bio buffers: sector s at s * 512 */
#define SCRATCH_BYTES	(16U << 20)

/* Submit @sectors at @s from (or into) the scratch buffer. */
static void io(struct tio *t, struct rec_dev *d, blk_opf_t opf, sector_t s,
	       unsigned int sectors)
{
	tio_submit(t, rec_disk(d), opf, s, scratch + (s << SECTOR_SHIFT),
		   sectors << SECTOR_SHIFT);
}

static void wait_all(struct tio *t)
{
	CHECK_MSG(tio_wait(t, t->nr, 5000), "only %u of %u bios completed",
		  tio_done(t), t->nr);
	CHECK_EQ_U64(t->errors, 0);
	for (unsigned int i = 0; i < t->nr; i++)
		CHECK_MSG(t->req[i].calls == 1, "bio %u ended %u times", i,
			  t->req[i].calls);
}

/* @n 4k bios from sector @s, @stride apart, under one plug; wait_all(). */
static void plugged_ios(struct tio *t, struct rec_dev *d, blk_opf_t opf,
			sector_t s, unsigned int n, unsigned int stride)
{
	struct blk_plug plug;

	blk_start_plug(&plug);
	for (unsigned int i = 0; i < n; i++)
		io(t, d, opf, s + i * stride, 8);
	blk_finish_plug(&plug);
	wait_all(t);
}

static void get_stats(struct rec_dev *d, struct blk_disk_stats *st)
{
	blk_disk_get_stats(rec_disk(d), st);
}

static struct rec_dev *mkdev(bool queue_rqs, bool commit_rqs)
{
	struct rec_config cfg;

	rec_config_init(&cfg);
	cfg.has_queue_rqs = queue_rqs;
	cfg.has_commit_rqs = commit_rqs;
	return rec_create(&cfg);
}

/* A ->queue_rqs device with the limits @l. */
static struct rec_dev *mkdev_lim(const struct rec_limits *l)
{
	struct rec_config cfg;

	rec_config_init(&cfg);
	cfg.has_queue_rqs = true;
	rec_config_limits(&cfg, l);
	return rec_create(&cfg);
}

/* ---- plug merges ---- */

static void test_plug_sequential(void)
{
	struct rec_dev *d = mkdev(true, true);
	struct blk_disk_stats st0, st1;
	struct blk_plug plug;
	struct rec_io r;
	struct tio t;

	REQUIRE(d);
	test_begin("plug: 8 sequential 4k writes become one request", 10);
	get_stats(d, &st0);
	tio_init(&t);
	blk_start_plug(&plug);
	for (unsigned int i = 0; i < 8; i++)
		io(&t, d, REQ_OP_WRITE, i * 8, 8);
	CHECK_EQ_U64(rec_nr_ios(d), 0);	/* held in the plug */
	blk_finish_plug(&plug);
	wait_all(&t);
	if (rec_expect_ios(d, 1, "sequential writes")) {
		r = rec_io_at(d, 0);
		CHECK_EQ_U64(r.op, REQ_OP_WRITE);
		CHECK_EQ_U64(r.sector, 0);
		CHECK_EQ_U64(r.bytes, KB(32));
		CHECK_EQ_U64(r.nr_bios, 8);
		CHECK_EQ_U64(r.nr_phys_segments, 8);
		for (unsigned int i = 0; i < 8; i++)
			CHECK_EQ_U64(r.bio_sector[i], i * 8);
		CHECK(r.via_queue_rqs);
		CHECK(r.last);
	}
	CHECK_EQ_U64(rec_queue_rqs_calls(d), 1);
	CHECK_EQ_U64(rec_commit_calls(d), 0);
	get_stats(d, &st1);
	CHECK_EQ_U64(st1.merges[STAT_WRITE] - st0.merges[STAT_WRITE], 7);
	CHECK_EQ_U64(st1.ios[STAT_WRITE] - st0.ios[STAT_WRITE], 1);
	CHECK_EQ_U64(st1.sectors[STAT_WRITE] - st0.sectors[STAT_WRITE], 64);
	tio_destroy(&t);

	test_begin("plug: 8 sequential 4k reads become one request", 10);
	rec_clear_log(d);
	tio_init(&t);
	plugged_ios(&t, d, REQ_OP_READ, 512, 8, 8);
	if (rec_expect_ios(d, 1, "sequential reads")) {
		r = rec_io_at(d, 0);
		CHECK_EQ_U64(r.op, REQ_OP_READ);
		CHECK_EQ_U64(r.sector, 512);
		CHECK_EQ_U64(r.nr_bios, 8);
	}
	get_stats(d, &st0);
	CHECK_EQ_U64(st0.merges[STAT_READ] - st1.merges[STAT_READ], 7);
	tio_destroy(&t);

	test_begin("plug: nested plugs flush only at the outermost", 10);
	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	{
		struct blk_plug inner;

		blk_start_plug(&inner);
		io(&t, d, REQ_OP_WRITE, 0, 8);
		blk_finish_plug(&inner);
		CHECK_EQ_U64(rec_nr_ios(d), 0);
		io(&t, d, REQ_OP_WRITE, 8, 8);
	}
	blk_finish_plug(&plug);
	wait_all(&t);
	if (rec_expect_ios(d, 1, "nested plug"))
		CHECK_EQ_U64(rec_io_at(d, 0).nr_bios, 2);
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_back_front(void)
{
	struct rec_dev *d = mkdev(true, false);
	struct blk_disk_stats st0, st1;
	struct blk_plug plug;
	struct rec_io r;
	struct tio t;

	REQUIRE(d);
	test_begin("plug: back and front merges", 10);
	get_stats(d, &st0);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, d, REQ_OP_WRITE, 8, 8);
	io(&t, d, REQ_OP_WRITE, 16, 8);		/* back */
	io(&t, d, REQ_OP_WRITE, 0, 8);		/* front */
	io(&t, d, REQ_OP_WRITE, 24, 16);	/* back, 8k */
	blk_finish_plug(&plug);
	wait_all(&t);
	if (rec_expect_ios(d, 1, "back/front")) {
		r = rec_io_at(d, 0);
		CHECK_EQ_U64(r.sector, 0);
		CHECK_EQ_U64(r.bytes, KB(20));
		CHECK_EQ_U64(r.nr_bios, 4);
		/* bios in disk order: front merge put sector 0 first */
		CHECK_EQ_U64(r.bio_sector[0], 0);
		CHECK_EQ_U64(r.bio_sector[1], 8);
		CHECK_EQ_U64(r.bio_sector[2], 16);
		CHECK_EQ_U64(r.bio_sector[3], 24);
	}
	get_stats(d, &st1);
	CHECK_EQ_U64(st1.merges[STAT_WRITE] - st0.merges[STAT_WRITE], 3);
	tio_destroy(&t);

	test_begin("plug: only contiguous bios merge", 10);
	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, d, REQ_OP_WRITE, 100, 8);
	io(&t, d, REQ_OP_WRITE, 116, 8);	/* gap of 8 sectors */
	io(&t, d, REQ_OP_WRITE, 120, 8);	/* overlaps 116..124 */
	io(&t, d, REQ_OP_WRITE, 92, 4);		/* 4-sector gap before 100 */
	blk_finish_plug(&plug);
	wait_all(&t);
	rec_expect_ios(d, 4, "gaps and overlaps");
	tio_destroy(&t);

	test_begin("plug: only the most recent request is tried", 10);
	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, d, REQ_OP_WRITE, 0, 8);
	io(&t, d, REQ_OP_WRITE, 1000, 8);
	io(&t, d, REQ_OP_WRITE, 8, 8);	/* contiguous with the older one */
	io(&t, d, REQ_OP_WRITE, 16, 8);	/* merges into the previous */
	blk_finish_plug(&plug);
	wait_all(&t);
	if (rec_expect_ios(d, 3, "most recent only")) {
		unsigned int two = 0;

		for (unsigned int i = 0; i < 3; i++)
			if (rec_io_at(d, i).nr_bios == 2)
				two++;
		CHECK_EQ_U64(two, 1);
	}
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_ops_and_flags(void)
{
	struct rec_config cfg;
	struct rec_dev *d = mkdev(true, false), *wc;
	struct blk_plug plug;
	struct rec_io r;
	struct tio t;

	REQUIRE(d);
	test_begin("plug: different ops do not merge", 10);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, d, REQ_OP_WRITE, 0, 8);
	io(&t, d, REQ_OP_READ, 8, 8);
	io(&t, d, REQ_OP_WRITE, 16, 8);
	blk_finish_plug(&plug);
	wait_all(&t);
	if (rec_expect_ios(d, 3, "write/read/write")) {
		CHECK_EQ_U64(rec_count_op(d, REQ_OP_WRITE), 2);
		CHECK_EQ_U64(rec_count_op(d, REQ_OP_READ), 1);
	}
	tio_destroy(&t);

	test_begin("plug: REQ_NOMERGE on the bio or the request", 10);
	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, d, REQ_OP_WRITE, 0, 8);
	io(&t, d, REQ_OP_WRITE | REQ_NOMERGE, 8, 8);	/* bio refuses */
	io(&t, d, REQ_OP_WRITE, 16, 8);	/* request has NOMERGE */
	blk_finish_plug(&plug);
	wait_all(&t);
	rec_expect_ios(d, 3, "nomerge");
	tio_destroy(&t);

	test_begin("plug: no write cache: FUA dropped, so it merges", 10);
	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, d, REQ_OP_WRITE, 0, 8);
	io(&t, d, REQ_OP_WRITE | REQ_FUA, 8, 8);
	io(&t, d, REQ_OP_WRITE | REQ_PREFLUSH, 16, 8);
	blk_finish_plug(&plug);
	wait_all(&t);
	if (rec_expect_ios(d, 1, "FUA without write cache")) {
		r = rec_io_at(d, 0);
		CHECK_EQ_U64(r.nr_bios, 3);
		CHECK_EQ_U64(r.cmd_flags & (REQ_FUA | REQ_PREFLUSH), 0);
	}
	tio_destroy(&t);
	rec_destroy(d);

	rec_config_init(&cfg);
	cfg.has_queue_rqs = true;
	cfg.lim.features_write_cache = true;
	cfg.lim.features_fua = true;
	wc = rec_create(&cfg);
	REQUIRE(wc);
	test_begin("plug: FUA and PREFLUSH writes are never merged", 10);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, wc, REQ_OP_WRITE, 0, 8);
	io(&t, wc, REQ_OP_WRITE | REQ_FUA, 8, 8);	/* bio refuses */
	io(&t, wc, REQ_OP_WRITE, 16, 8);	/* FUA request refuses */
	io(&t, wc, REQ_OP_WRITE | REQ_PREFLUSH, 24, 8);	/* flush machinery */
	io(&t, wc, REQ_OP_WRITE, 32, 8);	/* tail is the 16..24 one */
	blk_finish_plug(&plug);
	wait_all(&t);
	/* W0, W8 FUA, W16+W32? no: 16..24 then 32 is not contiguous */
	if (rec_expect_ios(wc, 6, "FUA/PREFLUSH")) {
		unsigned int fua = 0;

		CHECK_EQ_U64(rec_count_op(wc, REQ_OP_FLUSH), 1);
		CHECK_EQ_U64(rec_count_op(wc, REQ_OP_WRITE), 5);
		for (unsigned int i = 0; i < 6; i++) {
			r = rec_io_at(wc, i);
			CHECK_MSG(r.nr_bios <= 1, "request #%u has %u bios", i,
				  r.nr_bios);
			if (r.cmd_flags & REQ_FUA) {
				CHECK_EQ_U64(r.sector, 8);
				fua++;
			}
		}
		CHECK_EQ_U64(fua, 1);
	}
	tio_destroy(&t);
	rec_destroy(wc);
}

static void test_limits(void)
{
	struct blk_disk_stats st0, st1;
	struct blk_plug plug;
	struct rec_dev *d;
	struct rec_io r;
	struct tio t;

	test_begin("merge: max_sectors stops a back merge", 10);
	d = mkdev_lim(&(struct rec_limits){ .max_hw_sectors = 32 }); /* 16k */
	REQUIRE(d);
	get_stats(d, &st0);
	tio_init(&t);
	plugged_ios(&t, d, REQ_OP_WRITE, 0, 8, 8);
	if (rec_expect_ios(d, 2, "max_sectors")) {
		r = rec_io_at(d, 0);
		CHECK_EQ_U64(r.sector, 0);
		CHECK_EQ_U64(r.bytes, KB(16));
		CHECK_EQ_U64(r.nr_bios, 4);
		/* the full request was marked unmergeable */
		CHECK(r.cmd_flags & REQ_NOMERGE);
		r = rec_io_at(d, 1);
		CHECK_EQ_U64(r.sector, 32);
		CHECK_EQ_U64(r.bytes, KB(16));
		CHECK_EQ_U64(r.nr_bios, 4);
		CHECK(!(r.cmd_flags & REQ_NOMERGE));
	}
	get_stats(d, &st1);
	CHECK_EQ_U64(st1.merges[STAT_WRITE] - st0.merges[STAT_WRITE], 6);
	tio_destroy(&t);
	rec_destroy(d);

	test_begin("merge: max_segments stops a back merge", 10);
	d = mkdev_lim(&(struct rec_limits){ .max_segments = 4 });
	REQUIRE(d);
	tio_init(&t);
	plugged_ios(&t, d, REQ_OP_WRITE, 0, 10, 8);
	if (rec_expect_ios(d, 3, "max_segments")) {
		r = rec_io_at(d, 0);
		CHECK_EQ_U64(r.nr_bios, 4);
		CHECK_EQ_U64(r.nr_phys_segments, 4);
		CHECK(r.cmd_flags & REQ_NOMERGE);
		r = rec_io_at(d, 2);
		CHECK_EQ_U64(r.nr_bios, 2);
		CHECK_EQ_U64(r.nr_phys_segments, 2);
	}
	tio_destroy(&t);

	test_begin("merge: segments of multi-segment bios add up", 10);
	rec_clear_log(d);
	tio_init(&t);
	{
		/* 3 + 2 segments > 4: no merge even though contiguous */
		void *a[3] = { scratch, scratch + KB(8), scratch + KB(16) };
		void *b[2] = { scratch + KB(24), scratch + KB(32) };
		unsigned int la[3] = { KB(4), KB(4), KB(4) };
		unsigned int lb[2] = { KB(4), KB(4) };

		blk_start_plug(&plug);
		tio_submit_vec(&t, rec_disk(d), REQ_OP_WRITE, 0, a, la, 3);
		tio_submit_vec(&t, rec_disk(d), REQ_OP_WRITE, 24, b, lb, 2);
		blk_finish_plug(&plug);
	}
	wait_all(&t);
	if (rec_expect_ios(d, 2, "3+2 segments")) {
		CHECK_EQ_U64(rec_io_at(d, 0).nr_phys_segments, 3);
		CHECK_EQ_U64(rec_io_at(d, 1).nr_phys_segments, 2);
	}
	tio_destroy(&t);
	rec_destroy(d);

	test_begin("merge: no request crosses chunk_sectors", 10);
	d = mkdev_lim(&(struct rec_limits){ .chunk_sectors = 32 });
	REQUIRE(d);
	tio_init(&t);
	plugged_ios(&t, d, REQ_OP_WRITE, 16, 8, 8);	/* 16..80 */
	if (rec_expect_ios(d, 3, "chunk_sectors")) {
		for (unsigned int i = 0; i < 3; i++) {
			r = rec_io_at(d, i);
			CHECK_MSG(r.sector / 32 ==
				  (r.sector + SECT(r.bytes) - 1) / 32,
				  "request %llu+%u crosses a 32-sector chunk",
				  (unsigned long long)r.sector, SECT(r.bytes));
		}
	}
	tio_destroy(&t);
	rec_destroy(d);
}

/* ---- plug flush thresholds ---- */

/*
 * Under one plug, a write of @bytes at sector 0, then 4k at 1000: the
 * requests that reached the driver before the plug ended (both must
 * have reached it after).
 */
static unsigned int big_then_small(struct rec_dev *d, unsigned int bytes)
{
	struct blk_plug plug;
	unsigned int early;
	struct tio t;

	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, d, REQ_OP_WRITE, 0, SECT(bytes));
	io(&t, d, REQ_OP_WRITE, 1000, 8);
	early = rec_nr_ios(d);
	blk_finish_plug(&plug);
	wait_all(&t);
	CHECK_EQ_U64(rec_nr_ios(d), 2);
	tio_destroy(&t);
	return early;
}

static void test_plug_thresholds(void)
{
	struct rec_dev *d = mkdev(true, false), *a, *b;
	struct blk_plug plug;
	struct tio t;

	REQUIRE(d);
	test_begin("plug: flushed when it holds 32 requests", 10);
	tio_init(&t);
	blk_start_plug(&plug);
	for (unsigned int i = 0; i < 32; i++)
		io(&t, d, REQ_OP_WRITE, i * 16, 8);	/* gaps: no merges */
	CHECK_EQ_U64(rec_nr_ios(d), 0);
	io(&t, d, REQ_OP_WRITE, 32 * 16, 8);	/* the 33rd flushes 32 */
	CHECK_EQ_U64(rec_nr_ios(d), 32);
	CHECK_EQ_U64(rec_queue_rqs_calls(d), 1);
	blk_finish_plug(&plug);
	wait_all(&t);
	CHECK_EQ_U64(rec_nr_ios(d), 33);
	tio_destroy(&t);

	test_begin("plug: flushed when the last request is >= 128 KiB", 10);
	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	io(&t, d, REQ_OP_WRITE, 0, SECT(KB(128)));
	CHECK_EQ_U64(rec_nr_ios(d), 0);
	io(&t, d, REQ_OP_WRITE, 1000, 8);
	CHECK_EQ_U64(rec_nr_ios(d), 1);
	CHECK_EQ_U64(rec_io_at(d, 0).bytes, KB(128));
	blk_finish_plug(&plug);
	wait_all(&t);
	CHECK_EQ_U64(rec_nr_ios(d), 2);
	tio_destroy(&t);

	test_begin("plug: 124 KiB is below the size threshold", 10);
	CHECK_EQ_U64(big_then_small(d, KB(124)), 0);

	test_begin("plug: a request grown to 128 KiB by merges counts", 10);
	rec_clear_log(d);
	tio_init(&t);
	blk_start_plug(&plug);
	for (unsigned int i = 0; i < 32; i++)
		io(&t, d, REQ_OP_WRITE, i * 8, 8);	/* 32 x 4k merged */
	CHECK_EQ_U64(rec_nr_ios(d), 0);	/* merging never flushes */
	io(&t, d, REQ_OP_WRITE, 1000, 8);
	CHECK_EQ_U64(rec_nr_ios(d), 1);
	if (rec_nr_ios(d) == 1) {
		CHECK_EQ_U64(rec_io_at(d, 0).bytes, KB(128));
		CHECK_EQ_U64(rec_io_at(d, 0).nr_bios, 32);
	}
	blk_finish_plug(&plug);
	wait_all(&t);
	tio_destroy(&t);

	test_begin("plug: nomerges=2 turns the size threshold off", 10);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "nomerges", "2"), 0);
	CHECK_EQ_U64(big_then_small(d, KB(128)), 0);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "nomerges", "0"), 0);
	rec_destroy(d);

	test_begin("plug: two devices: 64 requests, each device one run", 10);
	a = mkdev(true, false);
	b = mkdev(true, false);
	REQUIRE(a && b);
	tio_init(&t);
	blk_start_plug(&plug);
	for (unsigned int i = 0; i < 32; i++) {
		io(&t, a, REQ_OP_WRITE, i * 16, 8);
		io(&t, b, REQ_OP_WRITE, i * 16, 8);
	}
	CHECK_EQ_U64(rec_nr_ios(a) + rec_nr_ios(b), 0);
	io(&t, a, REQ_OP_WRITE, 32 * 16, 8);	/* the 65th flushes 64 */
	CHECK_EQ_U64(rec_nr_ios(a), 32);
	CHECK_EQ_U64(rec_nr_ios(b), 32);
	for (unsigned int n = 0; n < 2; n++) {
		struct rec_dev *x = n ? b : a;
		unsigned int lasts = 0;
		sector_t seen = 0;

		/* mixed lists skip ->queue_rqs and go queue by queue */
		CHECK_EQ_U64(rec_queue_rqs_calls(x), 0);
		for (unsigned int i = 0; i < rec_nr_ios(x); i++) {
			struct rec_io r = rec_io_at(x, i);

			if (r.last)
				lasts++;
			seen |= 1ULL << (r.sector / 16);
		}
		CHECK_MSG(lasts == 1, "device %s got its requests in %u runs",
			  blk_disk_name(rec_disk(x)), lasts);
		CHECK_EQ_U64(seen, 0xffffffffULL);
	}
	blk_finish_plug(&plug);
	wait_all(&t);
	CHECK_EQ_U64(rec_nr_ios(a), 33);
	/* the plug is a single-queue one again: ->queue_rqs took it */
	CHECK_EQ_U64(rec_queue_rqs_calls(a), 1);
	tio_destroy(&t);
	rec_destroy(a);
	rec_destroy(b);
}

/* ---- nomerges ---- */

static void test_nomerges(void)
{
	struct rec_dev *d = mkdev(true, false);
	struct gendisk *disk;
	char buf[32];
	struct tio t;

	REQUIRE(d);
	disk = rec_disk(d);
	test_begin("nomerges: 0, 1, 2 and bad values", 10);
	CHECK(blk_queue_attr_show(disk, "nomerges", buf, sizeof(buf)) > 0);
	CHECK(!strcmp(buf, "0\n"));
	for (int v = 2; v >= 0; v--) {
		char val[16];
		unsigned int expect = v == 2 ? 8 : 1;

		snprintf(val, sizeof(val), "%d", v);
		CHECK_EQ_INT(blk_queue_attr_store(disk, "nomerges", val), 0);
		CHECK(blk_queue_attr_show(disk, "nomerges", buf,
					  sizeof(buf)) > 0);
		CHECK_MSG(atoi(buf) == v, "nomerges shows '%s' after %d", buf,
			  v);
		rec_clear_log(d);
		tio_init(&t);
		plugged_ios(&t, d, REQ_OP_WRITE, 0, 8, 8);
		CHECK_MSG(rec_nr_ios(d) == expect, "nomerges=%d: %u requests, "
			  "expected %u", v, rec_nr_ios(d), expect);
		tio_destroy(&t);
	}
	CHECK_EQ_INT(blk_queue_attr_store(disk, "nomerges", "1"), 0);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "nomerges", "3"), -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "nomerges", "x"), -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "nomerges", "-1"), -EINVAL);
	CHECK(blk_queue_attr_show(disk, "nomerges", buf, sizeof(buf)) > 0);
	CHECK(!strcmp(buf, "1\n"));
	rec_destroy(d);
}

/* ---- software queue merges ---- */

/* Two contiguous writes wait in the ctx list of a stopped hctx: no merge. */
static void expect_ctx_unmerged(struct rec_dev *d, const char *what)
{
	struct blk_mq_hw_ctx *hctx = rec_queue(d)->queue_hw_ctx[0];
	struct tio t;

	tio_init(&t);
	blk_mq_stop_hw_queue(hctx);
	io(&t, d, REQ_OP_WRITE, 0, 8);
	io(&t, d, REQ_OP_WRITE, 8, 8);
	blk_mq_start_hw_queue(hctx);
	wait_all(&t);
	rec_expect_ios(d, 2, what);
	tio_destroy(&t);
}

static void test_ctx_merge_stopped(void)
{
	struct rec_dev *d = mkdev(false, false);
	struct blk_disk_stats st0, st1;
	struct blk_mq_hw_ctx *hctx;
	struct rec_io r;
	struct tio t;
	unsigned int two = 0;

	REQUIRE(d);
	hctx = rec_queue(d)->queue_hw_ctx[0];
	test_begin("ctx merge: the last 8 requests of a ctx list", 10);
	get_stats(d, &st0);
	tio_init(&t);
	blk_mq_stop_hw_queue(hctx);
	for (unsigned int i = 0; i < 10; i++)	/* R0..R9 at i * 64 */
		io(&t, d, REQ_OP_WRITE, i * 64, 8);
	CHECK_EQ_U64(rec_nr_ios(d), 0);
	io(&t, d, REQ_OP_WRITE, 2 * 64 + 8, 8);	/* R2: 8th from the tail */
	io(&t, d, REQ_OP_WRITE, 1 * 64 + 8, 8);	/* R1: 9th: new request R10 */
	io(&t, d, REQ_OP_WRITE, 9 * 64 + 8, 8);	/* R9: back merge */
	io(&t, d, REQ_OP_WRITE, 8 * 64 - 8, 8);	/* R8: front merge */
	CHECK_EQ_U64(rec_nr_ios(d), 0);
	CHECK_EQ_U64(tio_done(&t), 0);
	blk_mq_start_hw_queue(hctx);
	wait_all(&t);
	if (rec_expect_ios(d, 11, "ctx merges")) {
		for (unsigned int i = 0; i < 11; i++) {
			r = rec_io_at(d, i);
			if (r.nr_bios != 2)
				continue;
			two++;
			CHECK_MSG(r.sector == 2 * 64 || r.sector == 9 * 64 ||
				  r.sector == 8 * 64 - 8,
				  "unexpected merged request at %llu",
				  (unsigned long long)r.sector);
			CHECK_EQ_U64(r.bytes, KB(8));
		}
		CHECK_EQ_U64(two, 3);
	}
	get_stats(d, &st1);
	CHECK_EQ_U64(st1.merges[STAT_WRITE] - st0.merges[STAT_WRITE], 3);
	tio_destroy(&t);

	test_begin("ctx merge: not with nomerges=2", 10);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "nomerges", "2"), 0);
	rec_clear_log(d);
	expect_ctx_unmerged(d, "nomerges=2 ctx");
	rec_destroy(d);

	test_begin("ctx merge: not without BLK_MQ_F_SHOULD_MERGE", 10);
	{
		struct rec_config cfg;

		rec_config_init(&cfg);
		cfg.tag_flags = 0;
		d = rec_create(&cfg);
	}
	REQUIRE(d);
	expect_ctx_unmerged(d, "no SHOULD_MERGE");
	rec_destroy(d);
}

/*
 * A driver out of budget: the first request is in flight, the second
 * waits on hctx->dispatch, so later ones stay in the ctx list where
 * contiguous bios find them.
 */
static void test_ctx_merge_busy(void)
{
	struct rec_config cfg;
	struct rec_dev *d;
	struct rec_io r;
	struct tio t;
	unsigned int merged = 0;

	rec_config_init(&cfg);
	cfg.mode = REC_HELD;
	cfg.has_budget = true;
	cfg.budget = 1;
	d = rec_create(&cfg);
	REQUIRE(d);
	test_begin("ctx merge: requests waiting for a busy driver", 10);
	tio_init(&t);
	io(&t, d, REQ_OP_WRITE, 0, 8);		/* in flight */
	CHECK(rec_wait_held(d, 1, 2000));
	io(&t, d, REQ_OP_WRITE, 100, 8);	/* -> hctx->dispatch */
	io(&t, d, REQ_OP_WRITE, 200, 8);	/* -> ctx list */
	io(&t, d, REQ_OP_WRITE, 208, 8);	/* merges into 200 */
	io(&t, d, REQ_OP_WRITE, 192, 8);	/* front merge into 200 */
	CHECK_EQ_U64(rec_accepted(d), 1);
	for (unsigned int i = 0; i < 3; i++) {
		CHECK(rec_wait_held(d, 1, 2000));
		rec_complete_all(d);
		if (i < 2)
			CHECK(rec_wait_accepted(d, i + 2, 2000));
	}
	rec_set_mode(d, REC_INLINE);
	rec_complete_all(d);
	wait_all(&t);
	CHECK_EQ_U64(rec_accepted(d), 3);
	for (unsigned int i = 0; i < rec_nr_ios(d); i++) {
		r = rec_io_at(d, i);
		if (r.ret == BLK_STS_OK && r.nr_bios == 3) {
			merged++;
			CHECK_EQ_U64(r.sector, 192);
			CHECK_EQ_U64(r.bytes, KB(12));
		}
	}
	CHECK_EQ_U64(merged, 1);
	CHECK(rec_budget_max(d) <= 1);
	CHECK_EQ_U64(rec_budget_in_use(d), 0);
	if (merged != 1)
		rec_dump(d, "busy ctx merge");
	tio_destroy(&t);
	rec_destroy(d);
}

/* ---- ->commit_rqs ---- */

static void test_commit_rqs(void)
{
	struct rec_config cfg;
	struct blk_mq_hw_ctx *hctx;
	struct blk_plug plug;
	struct rec_dev *d;
	struct tio t;

	d = mkdev(false, true);
	REQUIRE(d);
	test_begin("commit_rqs: plug issue stopped by BLK_STS_RESOURCE", 10);
	tio_init(&t);
	rec_fail_next(d, 2, 1, BLK_STS_RESOURCE);
	plugged_ios(&t, d, REQ_OP_WRITE, 0, 4, 16);
	CHECK_EQ_U64(rec_accepted(d), 4);
	CHECK_EQ_U64(rec_nr_ios(d), 5);
	CHECK_EQ_U64(rec_commit_calls(d), 1);
	CHECK_EQ_U64(rec_uncommitted(d), 0);
	/* the two before the refusal were told more would follow */
	CHECK(!rec_io_at(d, 0).last);
	CHECK(!rec_io_at(d, 1).last);
	CHECK_EQ_U64(rec_io_at(d, 2).ret, BLK_STS_RESOURCE);
	tio_destroy(&t);

	test_begin("commit_rqs: dispatch run stopped by BLK_STS_RESOURCE", 10);
	rec_clear_log(d);
	hctx = rec_queue(d)->queue_hw_ctx[0];
	tio_init(&t);
	blk_mq_stop_hw_queue(hctx);
	for (unsigned int i = 0; i < 4; i++)
		io(&t, d, REQ_OP_WRITE, i * 16, 8);
	rec_fail_next(d, 2, 1, BLK_STS_RESOURCE);
	blk_mq_start_hw_queue(hctx);
	wait_all(&t);
	CHECK_EQ_U64(rec_accepted(d), 4);
	CHECK(rec_commit_calls(d) >= 1);
	CHECK_EQ_U64(rec_uncommitted(d), 0);
	tio_destroy(&t);
	rec_destroy(d);

	/*
	 * The kernel's blk_mq_plug_issue_direct() treats "no budget" like
	 * BLK_STS_RESOURCE and commits what it queued; without that the
	 * driver sits on requests it was told more would follow.
	 */
	rec_config_init(&cfg);
	cfg.has_commit_rqs = true;
	cfg.has_budget = true;
	cfg.budget = 2;
	cfg.mode = REC_HELD;
	d = rec_create(&cfg);
	REQUIRE(d);
	test_begin("commit_rqs: plug issue stopped by the budget", 10);
	tio_init(&t);
	blk_start_plug(&plug);
	for (unsigned int i = 0; i < 4; i++)
		io(&t, d, REQ_OP_WRITE, i * 16, 8);
	blk_finish_plug(&plug);
	CHECK(rec_wait_held(d, 2, 2000));
	CHECK_EQ_U64(rec_accepted(d), 2);
	CHECK_MSG(rec_uncommitted(d) == 0, "%u requests queued with "
		  "bd->last false and never committed", rec_uncommitted(d));
	for (unsigned int i = 0; i < 4 && tio_done(&t) < 4; i++) {
		rec_wait_held(d, 1, 2000);
		rec_complete_all(d);
		tio_wait(&t, i + 1, 2000);
	}
	rec_set_mode(d, REC_INLINE);
	rec_complete_all(d);
	wait_all(&t);
	CHECK_EQ_U64(rec_accepted(d), 4);
	CHECK(rec_budget_max(d) <= 2);
	tio_destroy(&t);
	rec_destroy(d);
}

int main(void)
{
	test_init(2);
	scratch = aligned_alloc(4096, SCRATCH_BYTES);
	if (!scratch)
		test_skip("no memory for buffers");
	memset(scratch, 0x5a, SCRATCH_BYTES);

	test_plug_sequential();
	test_back_front();
	test_ops_and_flags();
	test_limits();
	test_plug_thresholds();
	test_nomerges();
	test_ctx_merge_stopped();
	test_ctx_merge_busy();
	test_commit_rqs();

	free(scratch);
	return test_report();
}
