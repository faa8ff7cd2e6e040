// SPDX-License-Identifier: MIT
/*
 * Splitting bios to the queue limits (block/blk-merge.c
 * __bio_split_to_limits) and the checks of submit_bio (block/blk-core.c),
 * seen from the recording driver:
 *
 *  - max_sectors (and the max_sectors_kb attribute), physical-block
 *    aligned split points, max_segments, max_segment_size (one large
 *    buffer is several segments), chunk_sectors (no request crosses a
 *    chunk), discard split to max_discard_sectors on discard_granularity
 *    boundaries, write-zeroes split;
 *  - the front pieces carry REQ_NOMERGE; data survives a large
 *    multi-segment write and read that are split every few KiB; the
 *    original bio completes exactly once, after all pieces, in whatever
 *    order they complete; an error in one piece reaches the original;
 *    REQ_NOWAIT bios that need a split fail with -EAGAIN;
 *  - submit_bio checks: past the end -> -EIO, misaligned to the logical
 *    block size -> -EINVAL, discard/write-zeroes unsupported ->
 *    -EOPNOTSUPP, write to a read-only disk -> -EIO, flushes to a device
 *    without a volatile cache complete without reaching the driver.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define KB(n)	((n) * 1024U)
#define SECT(bytes)	((bytes) >> SECTOR_SHIFT)

static unsigned char *wbuf, *rbuf;
#define BUF_BYTES	(4U << 20)

/* A memory-backed recording device with the limits @l (NULL: defaults). */
static struct rec_dev *mkdev(const struct rec_limits *l)
{
	struct rec_config cfg;

	rec_config_init(&cfg);
	cfg.memory_backed = true;
	rec_config_limits(&cfg, l);
	return rec_create(&cfg);
}

/* The pieces must be @starts[i] .. @starts[i + 1], in order. */
static void expect_pieces(struct rec_dev *d, const sector_t *starts,
			  unsigned int n, const char *what)
{
	if (!rec_expect_ios(d, n, what))
		return;
	for (unsigned int i = 0; i < n; i++) {
		struct rec_io r = rec_io_at(d, i);

		CHECK_MSG(r.sector == starts[i] &&
			  r.sector + SECT(r.bytes) == starts[i + 1],
			  "%s: piece %u is %llu+%u, expected %llu..%llu", what,
			  i, (unsigned long long)r.sector, SECT(r.bytes),
			  (unsigned long long)starts[i],
			  (unsigned long long)starts[i + 1]);
		/* the fronts cannot merge any more; the last piece can */
		CHECK_MSG(!!(r.cmd_flags & REQ_NOMERGE) == (i + 1 < n),
			  "%s: piece %u REQ_NOMERGE is %d", what, i,
			  !!(r.cmd_flags & REQ_NOMERGE));
		CHECK_EQ_U64(r.nr_bios, 1);
	}
}

static unsigned long nr_splits(struct rec_dev *d)
{
	return atomic_load(&rec_queue(d)->nr_splits);
}

/* Write @len of pattern @seed at @sector through one bio, then read back. */
static void write_read_verify(struct rec_dev *d, sector_t sector,
			      unsigned int len, uint32_t seed)
{
	uint64_t off = (uint64_t)sector << SECTOR_SHIFT;
	long bad;

	test_fill(wbuf, len, seed, off);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, sector, wbuf,
				   len), 0);
	bad = test_verify(rec_mem(d) + off, len, seed, off);
	CHECK_MSG(bad < 0, "device data wrong at byte %ld", bad);
	memset(rbuf, 0, len);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_READ, sector, rbuf,
				   len), 0);
	bad = test_verify(rbuf, len, seed, off);
	CHECK_MSG(bad < 0, "read back wrong at byte %ld", bad);
}

/* ---- limits ---- */

static void test_max_sectors(void)
{
	static const sector_t pieces[] = { 0, 16, 32, 48, 64, 80, 96, 112,
					   128 };
	struct rec_dev *d = mkdev(&(struct rec_limits){ .max_hw_sectors = 16 });
	unsigned long s0;

	REQUIRE(d);
	test_begin("split: 64k to max_sectors 8k", 10);
	s0 = nr_splits(d);
	write_read_verify(d, 0, KB(64), 1);
	CHECK_EQ_U64(rec_nr_ios(d), 16);
	CHECK_EQ_U64(rec_count_op(d, REQ_OP_WRITE), 8);
	CHECK_EQ_U64(nr_splits(d) - s0, 14);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 0, wbuf, KB(64)),
		     0);
	expect_pieces(d, pieces, 8, "max_sectors 16");
	rec_destroy(d);
}

static void test_pbs_alignment(void)
{
	static const sector_t pieces[] = { 4, 16, 32, 48, 64, 68 };
	struct rec_dev *d = mkdev(&(struct rec_limits){
		.max_hw_sectors = 16,
		.physical_block_size = 4096,
	});

	REQUIRE(d);
	test_begin("split: points on physical block boundaries", 10);
	test_fill(wbuf, KB(32), 2, KB(2));
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 4, wbuf, KB(32)),
		     0);
	expect_pieces(d, pieces, 5, "pbs 4096, max 16, from 4");
	CHECK(test_verify(rec_mem(d) + KB(2), KB(32), 2, KB(2)) < 0);
	rec_destroy(d);
}

static void test_max_sectors_kb(void)
{
	struct rec_dev *d = mkdev(NULL);
	struct gendisk *disk;
	char buf[32];

	REQUIRE(d);
	disk = rec_disk(d);
	test_begin("max_sectors_kb: attribute drives the split", 10);
	CHECK(blk_queue_attr_show(disk, "max_sectors_kb", buf, sizeof(buf)) >
	      0);
	CHECK_MSG(!strcmp(buf, "1280\n"), "max_sectors_kb '%s'", buf);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 0, wbuf, KB(64)), 0);
	rec_expect_ios(d, 1, "default max_sectors_kb");

	CHECK_EQ_INT(blk_queue_attr_store(disk, "max_sectors_kb", "8"), 0);
	CHECK(blk_queue_attr_show(disk, "max_sectors_kb", buf, sizeof(buf)) >
	      0);
	CHECK_MSG(!strcmp(buf, "8\n"), "max_sectors_kb '%s'", buf);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 0, wbuf, KB(64)), 0);
	if (rec_expect_ios(d, 8, "max_sectors_kb 8"))
		for (unsigned int i = 0; i < 8; i++)
			CHECK_EQ_U64(rec_io_at(d, i).bytes, KB(8));

	/* bad values change nothing */
	CHECK_EQ_INT(blk_queue_attr_store(disk, "max_sectors_kb", "2"),
		     -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "max_sectors_kb", "1281"),
		     -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "max_sectors_kb", "8k"),
		     -EINVAL);
	CHECK(blk_queue_attr_show(disk, "max_sectors_kb", buf, sizeof(buf)) >
	      0);
	CHECK_MSG(!strcmp(buf, "8\n"), "max_sectors_kb '%s'", buf);
	/* 0 goes back to the default */
	CHECK_EQ_INT(blk_queue_attr_store(disk, "max_sectors_kb", "0"), 0);
	CHECK(blk_queue_attr_show(disk, "max_sectors_kb", buf, sizeof(buf)) >
	      0);
	CHECK_MSG(!strcmp(buf, "1280\n"), "max_sectors_kb '%s'", buf);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 0, wbuf, KB(64)), 0);
	rec_expect_ios(d, 1, "max_sectors_kb 0");
	rec_destroy(d);
}

static void test_segments(void)
{
	void *bufs[8];
	unsigned int lens[8];
	struct rec_dev *d;
	struct rec_io r;
	struct tio t;

	test_begin("split: 8 separate buffers to max_segments 4", 10);
	d = mkdev(&(struct rec_limits){ .max_segments = 4 });
	REQUIRE(d);
	for (unsigned int i = 0; i < 8; i++) {
		bufs[i] = wbuf + i * KB(8);	/* 4k gaps: never contiguous */
		lens[i] = KB(4);
		test_fill(bufs[i], KB(4), 3, i * KB(4));
	}
	tio_init(&t);
	tio_submit_vec(&t, rec_disk(d), REQ_OP_WRITE, 0, bufs, lens, 8);
	CHECK(tio_wait(&t, 1, 5000));
	CHECK_EQ_INT(t.req[0].err, 0);
	if (rec_expect_ios(d, 2, "max_segments 4")) {
		r = rec_io_at(d, 0);
		CHECK_EQ_U64(r.bytes, KB(16));
		CHECK_EQ_U64(r.nr_phys_segments, 4);
		CHECK(r.cmd_flags & REQ_NOMERGE);
		r = rec_io_at(d, 1);
		CHECK_EQ_U64(r.sector, 32);
		CHECK_EQ_U64(r.nr_phys_segments, 4);
	}
	CHECK(test_verify(rec_mem(d), KB(32), 3, 0) < 0);
	tio_destroy(&t);
	rec_destroy(d);

	test_begin("split: one 32k buffer is 8 segments of 4k", 10);
	d = mkdev(&(struct rec_limits){ .max_segment_size = 4096 });
	REQUIRE(d);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 0, wbuf, KB(32)),
		     0);
	if (rec_expect_ios(d, 1, "max_segment_size 4k"))
		CHECK_EQ_U64(rec_io_at(d, 0).nr_phys_segments, 8);
	rec_destroy(d);

	test_begin("split: ... and with max_segments 4, two requests", 10);
	d = mkdev(&(struct rec_limits){ .max_segment_size = 4096,
					.max_segments = 4 });
	REQUIRE(d);
	write_read_verify(d, 8, KB(32), 4);
	if (rec_expect_ios(d, 4, "max_segment_size 4k, max_segments 4")) {
		for (unsigned int i = 0; i < 4; i++) {
			r = rec_io_at(d, i);
			CHECK_EQ_U64(r.bytes, KB(16));
			CHECK_EQ_U64(r.nr_phys_segments, 4);
		}
	}
	rec_destroy(d);
}

static void test_chunk_sectors(void)
{
	static const sector_t pieces[] = { 4, 16, 32, 48, 64, 68 };
	struct rec_dev *d = mkdev(&(struct rec_limits){ .chunk_sectors = 16 });

	REQUIRE(d);
	test_begin("split: no request crosses chunk_sectors", 10);
	write_read_verify(d, 4, KB(32), 5);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_READ, 4, rbuf, KB(32)),
		     0);
	expect_pieces(d, pieces, 5, "chunk 16 from 4");
	rec_destroy(d);
}

/* ---- discard and write zeroes ---- */

static void test_discard(void)
{
	static const sector_t pieces[] = { 8, 64, 128, 192, 256, 320, 384,
					   408 };
	static const sector_t wz[] = { 0, 32, 64, 96, 128 };
	struct rec_dev *d = mkdev(&(struct rec_limits){
		.max_hw_discard_sectors = 64,
		.discard_granularity = 8192,
		.max_write_zeroes_sectors = 32,
	});
	struct gendisk *disk;
	unsigned char *mem;

	REQUIRE(d);
	disk = rec_disk(d);
	mem = rec_mem(d);
	test_begin("split: discard to max_discard_sectors on granularity", 10);
	test_fill(wbuf, KB(256), 6, 0);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 0, wbuf, KB(256)), 0);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_DISCARD, 8, NULL, KB(200)), 0);
	expect_pieces(d, pieces, 7, "discard");
	for (unsigned int i = 0; i < rec_nr_ios(d); i++)
		CHECK_EQ_U64(rec_io_at(d, i).op, REQ_OP_DISCARD);
	CHECK(test_verify(mem, KB(4), 6, 0) < 0);
	for (unsigned int i = KB(4); i < KB(204); i++)
		if (!CHECK_MSG(mem[i] == 0, "byte %u not discarded", i))
			break;
	CHECK(test_verify(mem + KB(204), KB(52), 6, KB(204)) < 0);

	test_begin("split: discard_max_bytes attribute", 10);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "discard_max_bytes", "16384"),
		     0);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_DISCARD, 0, NULL, KB(64)), 0);
	rec_expect_ios(d, 4, "discard_max_bytes 16k");
	CHECK_EQ_INT(blk_queue_attr_store(disk, "discard_max_bytes", "1000"),
		     -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "discard_max_bytes",
					  "1048576"), -EINVAL);

	test_begin("split: write zeroes to max_write_zeroes_sectors", 10);
	test_fill(wbuf, KB(64), 7, 0);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 0, wbuf, KB(64)), 0);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE_ZEROES, 0, NULL, KB(64)),
		     0);
	expect_pieces(d, wz, 4, "write zeroes");
	for (unsigned int i = 0; i < KB(64); i++)
		if (!CHECK_MSG(mem[i] == 0, "byte %u not zeroed", i))
			break;
	rec_destroy(d);

	test_begin("discard/write zeroes without support: -EOPNOTSUPP", 10);
	d = mkdev(NULL);
	REQUIRE(d);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_DISCARD, 0, NULL,
				   KB(64)), -EOPNOTSUPP);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE_ZEROES, 0, NULL,
				   KB(64)), -EOPNOTSUPP);
	CHECK_EQ_INT(blkdev_discard(rec_disk(d), 0, KB(64)), -EOPNOTSUPP);
	rec_expect_ios(d, 0, "unsupported ops");
	rec_destroy(d);
}

/* ---- data through many splits ---- */

static void test_integrity(void)
{
	enum { NW = 40, NR = 13 };
	void *bufs[NW];
	unsigned int lens[NW], total = 0, rtotal = 0;
	struct rec_dev *d = mkdev(&(struct rec_limits){
		.max_hw_sectors = 24,
		.max_segments = 3,
		.max_segment_size = 4096,
	});
	const sector_t at = 100;
	struct tio t;
	long bad;

	REQUIRE(d);
	test_begin("split: data of a 40-segment write and a 13-segment read",
		   10);
	/* segments of 512..3584 bytes, scattered in wbuf */
	for (unsigned int i = 0; i < NW; i++) {
		lens[i] = 512 * (1 + (i * 5) % 7);
		bufs[i] = wbuf + i * KB(8) + 512 * (i % 3);
		test_fill(bufs[i], lens[i], 8, (at << SECTOR_SHIFT) + total);
		total += lens[i];
	}
	tio_init(&t);
	tio_submit_vec(&t, rec_disk(d), REQ_OP_WRITE, at, bufs, lens, NW);
	CHECK(tio_wait(&t, 1, 5000));
	CHECK_EQ_INT(t.req[0].err, 0);
	CHECK_EQ_U64(t.req[0].calls, 1);
	CHECK(rec_nr_ios(d) >= total / KB(12));
	for (unsigned int i = 0; i < rec_nr_ios(d); i++) {
		struct rec_io r = rec_io_at(d, i);

		CHECK_MSG(r.bytes <= KB(12) && r.nr_phys_segments <= 3,
			  "request #%u: %u bytes in %u segments over the "
			  "limits", i, r.bytes, r.nr_phys_segments);
	}
	bad = test_verify(rec_mem(d) + (at << SECTOR_SHIFT), total, 8,
			  at << SECTOR_SHIFT);
	CHECK_MSG(bad < 0, "device data wrong at byte %ld of %u", bad, total);

	/* read it back through a different scatter list */
	rec_clear_log(d);
	memset(rbuf, 0, BUF_BYTES);
	for (unsigned int i = 0; i < NR; i++) {
		lens[i] = i + 1 < NR ? 512 * (2 + (i * 3) % 11) : total - rtotal;
		bufs[i] = rbuf + i * KB(16) + 512;
		rtotal += lens[i];
	}
	CHECK_EQ_U64(rtotal, total);
	tio_submit_vec(&t, rec_disk(d), REQ_OP_READ, at, bufs, lens, NR);
	CHECK(tio_wait(&t, 2, 5000));
	CHECK_EQ_INT(t.req[1].err, 0);
	CHECK(rec_nr_ios(d) >= total / KB(12));
	rtotal = 0;
	for (unsigned int i = 0; i < NR; i++) {
		bad = test_verify(bufs[i], lens[i], 8,
				  (at << SECTOR_SHIFT) + rtotal);
		CHECK_MSG(bad < 0, "read segment %u wrong at byte %ld", i,
			  bad);
		rtotal += lens[i];
	}
	tio_destroy(&t);
	rec_destroy(d);
}

/* ---- completion of the original ---- */

static void test_completion(void)
{
	struct rec_dev *d = mkdev(&(struct rec_limits){ .max_hw_sectors = 16 });
	struct tio t;

	REQUIRE(d);
	rec_set_mode(d, REC_HELD);
	test_begin("split: original completes once, after all pieces", 10);
	tio_init(&t);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE, 0, wbuf, KB(64));
	CHECK(rec_wait_held(d, 8, 5000));
	/* complete from the last piece backwards */
	for (unsigned int i = 8; i > 0; i--) {
		CHECK(rec_complete_at(d, i - 1));
		test_sleep_ms(1);
		if (i > 1)
			CHECK_MSG(tio_done(&t) == 0, "original completed with "
				  "%u pieces outstanding", i - 1);
	}
	CHECK(tio_wait(&t, 1, 5000));
	CHECK_EQ_U64(t.req[0].calls, 1);
	CHECK_EQ_INT(t.req[0].err, 0);
	tio_destroy(&t);

	test_begin("split: an error in one piece reaches the original", 10);
	rec_set_mode(d, REC_INLINE);
	rec_set_error(d, 40, 1, BLK_STS_MEDIUM);
	rec_clear_log(d);
	tio_init(&t);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE, 0, wbuf, KB(64));
	CHECK(tio_wait(&t, 1, 5000));
	CHECK_EQ_U64(t.req[0].calls, 1);
	CHECK_EQ_INT(t.req[0].err, -ENODATA);
	CHECK_EQ_U64(rec_nr_ios(d), 8);	/* the others still went */
	rec_set_error(d, 0, 0, BLK_STS_OK);
	tio_destroy(&t);

	test_begin("split: REQ_NOWAIT bio that needs a split: -EAGAIN", 10);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_NOWAIT, 0,
				   wbuf, KB(64)), -EAGAIN);
	rec_expect_ios(d, 0, "nowait split");
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_NOWAIT, 0,
				   wbuf, KB(8)), 0);
	rec_destroy(d);
}

/* ---- submit_bio checks ---- */

static void test_checks(void)
{
	struct rec_dev *d = mkdev(NULL);
	struct gendisk *disk;
	sector_t cap;

	REQUIRE(d);
	disk = rec_disk(d);
	cap = get_capacity(disk);
	test_begin("checks: beyond the end of the device: -EIO", 10);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, cap - 4, wbuf, KB(4)),
		     -EIO);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_READ, cap, rbuf, 512), -EIO);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_READ, ~(sector_t)0 - 1, rbuf,
				   KB(4)), -EIO);
	rec_expect_ios(d, 0, "past the end");
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, cap - 8, wbuf, KB(4)),
		     0);
	rec_expect_ios(d, 1, "the last 4k");

	test_begin("checks: read-only disk refuses writes: -EIO", 10);
	rec_clear_log(d);
	set_disk_ro(disk, true);
	CHECK(bdev_read_only(disk));
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 0, wbuf, KB(4)), -EIO);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_DISCARD, 0, NULL, KB(4)),
		     -EIO);
	rec_expect_ios(d, 0, "read-only writes");
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_READ, 0, rbuf, KB(4)), 0);
	/* an empty flush is not a write of data */
	CHECK_EQ_INT(blkdev_flush(disk), 0);
	set_disk_ro(disk, false);
	CHECK(!bdev_read_only(disk));
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 0, wbuf, KB(4)), 0);

	test_begin("checks: flushes without a write cache never reach the "
		   "driver", 10);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_FLUSH, 0, NULL, 0), 0);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE | REQ_PREFLUSH, 0, NULL,
				   0), 0);
	CHECK_EQ_INT(blkdev_flush(disk), 0);
	rec_expect_ios(d, 0, "empty flushes");
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA,
				   64, wbuf, KB(4)), 0);
	if (rec_expect_ios(d, 1, "PREFLUSH|FUA write")) {
		struct rec_io r = rec_io_at(d, 0);

		CHECK_EQ_U64(r.op, REQ_OP_WRITE);
		CHECK_EQ_U64(r.cmd_flags & (REQ_PREFLUSH | REQ_FUA), 0);
	}
	rec_destroy(d);

	test_begin("checks: read-only disk with a write cache still flushes",
		   10);
	d = mkdev(&(struct rec_limits){ .features_write_cache = true });
	REQUIRE(d);
	set_disk_ro(rec_disk(d), true);
	CHECK_EQ_INT(blkdev_flush(rec_disk(d)), 0);
	CHECK_EQ_U64(rec_count_op(d, REQ_OP_FLUSH), 1);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH, 0,
				   wbuf, KB(4)), -EIO);
	CHECK_EQ_U64(rec_count_op(d, REQ_OP_WRITE), 0);
	rec_destroy(d);

	test_begin("checks: misaligned to a 4096-byte logical block: -EINVAL",
		   10);
	d = mkdev(&(struct rec_limits){ .logical_block_size = 4096 });
	REQUIRE(d);
	disk = rec_disk(d);
	CHECK_EQ_U64(bdev_logical_block_size(disk), 4096);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 1, wbuf, KB(4)),
		     -EINVAL);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_WRITE, 0, wbuf, 512), -EINVAL);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_READ, 4, rbuf, KB(8)),
		     -EINVAL);
	CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_READ, 8, rbuf, KB(6)),
		     -EINVAL);
	rec_expect_ios(d, 0, "misaligned");
	write_read_verify(d, 8, KB(8), 9);
	rec_destroy(d);
}

int main(void)
{
	test_init(2);
	wbuf = aligned_alloc(4096, BUF_BYTES);
	rbuf = aligned_alloc(4096, BUF_BYTES);
	if (!wbuf || !rbuf)
		test_skip("no memory for buffers");
	memset(wbuf, 0x11, BUF_BYTES);
	memset(rbuf, 0x22, BUF_BYTES);

	test_max_sectors();
	test_pbs_alignment();
	test_max_sectors_kb();
	test_segments();
	test_chunk_sectors();
	test_discard();
	test_integrity();
	test_completion();
	test_checks();

	free(wbuf);
	free(rbuf);
	return test_report();
}
