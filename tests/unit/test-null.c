// SPDX-License-Identifier: MIT
/*
 * null_blk, mode by mode (drivers/null_blk.c, docs/null_blk.md): irqmode
 * 0/1/2 with completion_nsec, memory_backed 0/1, bs=4096, several submit
 * queues, poll queues, a tiny hw_queue_depth under many I/Os, blocking,
 * shared_tags, the volatile cache with flush and FUA, badblocks, the
 * bio-based queue_mode=0, discard and write-zeroes, requeue/resource
 * fault injection, the diskstats counters and the debug dump.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define BLK 4096

static char wbuf[1 << 21], rbuf[1 << 21];

/* ---- completion modes ---- */

static void test_irqmode(unsigned int irqmode)
{
	const unsigned int nsec = 5000000;	/* 5 ms */
	struct gendisk *disk;
	struct tio w;
	struct tio_req io;
	char name[16], what[32];

	snprintf(what, sizeof(what), "irqmode=%u", irqmode);
	test_begin(what, 10);
	snprintf(name, sizeof(name), "irq%u", irqmode);
	disk = test_null_add(name, "size=16,memory_backed=1,irqmode=%u,"
			     "completion_nsec=%u", irqmode, nsec);
	if (!disk)
		return;
	test_write_verify(disk, 0, 64 * 1024, 1, wbuf, rbuf);
	test_write_verify(disk, 12345 * 512, 3 * 512, 2, wbuf, rbuf);

	tio_init(&w);
	CHECK_MSG(tio_blkdev_submit(&w, &io, disk, REQ_OP_READ, 0, rbuf,
				    BLK) == 0, "submit");
	if (irqmode == 0)
		/* completes inside queue_rq, i.e. inside the submit call */
		CHECK_MSG(atomic_load(&io.done), "irqmode=0: not complete when "
			  "blkdev_submit() returned");
	CHECK_MSG(tio_wait_pending(&w, 0, 2000) && io.err == 0, "%s: read: %d",
		  what, io.err);
	if (irqmode == 2) {
		/* each I/O takes at least completion_nsec */
		for (int i = 0; i < 5; i++) {
			CHECK_MSG(tio_blkdev_submit(&w, &io, disk, REQ_OP_READ,
						    (off_t)i * BLK, rbuf,
						    BLK) == 0,
				  "submit");
			CHECK_MSG(!atomic_load(&io.done),
				  "irqmode=2: complete at once");
			CHECK_MSG(tio_wait_pending(&w, 0, 2000), "stuck");
			CHECK_MSG(io.done_ns - io.submit_ns >= nsec,
				  "irqmode=2: latency %llu us < "
				  "completion_nsec %u us",
				  (unsigned long long)(io.done_ns -
						       io.submit_ns) / 1000,
				  nsec / 1000);
			CHECK_MSG(io.done_ns - io.submit_ns <
				  20 * (uint64_t)nsec * (test_slow() ? 10 : 1),
				  "irqmode=2: latency %llu us for "
				  "completion_nsec %u us",
				  (unsigned long long)(io.done_ns -
						       io.submit_ns) / 1000,
				  nsec / 1000);
		}
	}
	tio_destroy(&w);
	test_dev_del(disk);
}

/* ---- data ---- */

static void test_memory_backed(void)
{
	struct gendisk *disk;
	ssize_t n;

	test_begin("memory_backed=0 and 1", 10);
	disk = test_null_add("nomem", "size=16,memory_backed=0,irqmode=0");
	if (disk) {
		test_fill(wbuf, 8192, 3, 0);
		CHECK_MSG(blkdev_pwrite(disk, wbuf, 8192, 0) == 8192, "write");
		memset(rbuf, 0, 8192);
		n = blkdev_pread(disk, rbuf, 8192, 0);
		CHECK_MSG(n == 8192, "read: %zd", n);
		/* nothing is kept: a read does not bring the write back */
		CHECK_MSG(test_is_zero(rbuf, 8192),
			  "memory_backed=0 returned data");
		test_dev_del(disk);
	}
	disk = test_null_add("mem", "size=16,memory_backed=1,irqmode=0");
	if (disk) {
		/* never written: zeroes */
		memset(rbuf, 0xa5, 8192);
		CHECK_MSG(blkdev_pread(disk, rbuf, 8192, 1 << 20) == 8192,
			  "read");
		CHECK_MSG(test_is_zero(rbuf, 8192), "unwritten range not zero");
		test_write_verify(disk, 0, 1 << 20, 4, wbuf, rbuf);
		/* last block of the device */
		test_write_verify(disk, (16 << 20) - BLK, BLK, 5, wbuf, rbuf);
		test_dev_del(disk);
	}
}

static void test_bs4096(void)
{
	struct gendisk *disk;
	char buf[32];

	test_begin("bs=4096", 10);
	disk = test_null_add("bs4k",
			     "size=16,bs=4096,memory_backed=1,irqmode=1");
	if (!disk)
		return;
	CHECK_MSG(!strcmp(test_attr_show(disk, "logical_block_size", buf,
					 sizeof(buf)),
			  "4096"),
		  "logical_block_size %s", buf);
	CHECK_MSG(!strcmp(test_attr_show(disk, "physical_block_size", buf,
					 sizeof(buf)),
			  "4096"),
		  "physical_block_size %s", buf);
	CHECK_MSG(bdev_logical_block_size(disk) == 4096, "lbs");
	CHECK_MSG(blkdev_pread(disk, rbuf, 512, 0) == -EINVAL,
		  "a 512-byte read on a 4096-byte-block device");
	CHECK_MSG(blkdev_pread(disk, rbuf, BLK, 512) == -EINVAL, "a read at a "
		  "512-byte offset on a 4096-byte-block device");
	test_write_verify(disk, 0, 5 * BLK, 6, wbuf, rbuf);
	test_write_verify(disk, 100 * BLK, BLK, 7, wbuf, rbuf);
	test_dev_del(disk);
}

static void test_submit_queues(void)
{
	struct gendisk *disk;
	struct request_queue *q;
	char buf[32];

	test_begin("submit_queues=4", 10);
	REQUIRE_MSG(blk_cpu_topology_set(4, NULL) == 0, "topology");
	disk = test_null_add("sq4", "size=16,submit_queues=4,memory_backed=1,"
			     "irqmode=1");
	if (!disk)
		goto out;
	q = disk_queue(disk);
	CHECK_MSG(!strcmp(test_attr_show(disk, "nr_hw_queues", buf,
					 sizeof(buf)), "4"),
		  "nr_hw_queues %s", buf);
	for (unsigned int i = 0; i < q->nr_hw_queues; i++)
		CHECK_MSG(q->queue_hw_ctx[i]->nr_ctx == 1,
			  "hctx %u has %u ctxs", i, q->queue_hw_ctx[i]->nr_ctx);
	for (int cpu = 0; cpu < 4; cpu++) {
		blk_set_current_cpu(cpu);
		test_write_verify(disk, cpu * 65536, 65536, 10 + cpu, wbuf,
				  rbuf);
	}
	blk_set_current_cpu(-1);
	test_dev_del(disk);
out:
	blk_cpu_topology_reset();
}

/* ---- polling ---- */

struct poll_bio {
	_Atomic bool done;
	blk_status_t status;
};

static void poll_bio_end(struct bio *bio)
{
	struct poll_bio *p = bio->bi_private;

	p->status = bio->bi_status;
	atomic_store(&p->done, true);
}

static void test_poll_queues(void)
{
	struct gendisk *disk;
	struct request_queue *q;
	struct tio w;
	struct tio_req io[4];
	struct poll_bio pb = { false, 0 };
	struct bio *bio;
	char buf[32];
	int polled = 0;
	uint64_t dl;

	test_begin("poll_queues=1", 10);
	disk = test_null_add("pollq", "size=16,submit_queues=1,poll_queues=1,"
			     "memory_backed=1,irqmode=1");
	if (!disk)
		return;
	q = disk_queue(disk);
	CHECK_MSG(!strcmp(test_attr_show(disk, "io_poll", buf, sizeof(buf)),
			  "1"), "io_poll %s", buf);
	REQUIRE_MSG(q->nr_hw_queues == 2, "%u hctxs, want 1 + 1 poll",
		    q->nr_hw_queues);
	CHECK_MSG(q->queue_hw_ctx[1]->type == HCTX_TYPE_POLL, "hctx 1 type %u",
		  q->queue_hw_ctx[1]->type);
	CHECK_MSG(q->queue_hw_ctx[0]->type == HCTX_TYPE_DEFAULT,
		  "hctx 0 type %u", q->queue_hw_ctx[0]->type);

	/* polled writes: nothing completes until someone polls */
	tio_init(&w);
	for (int i = 0; i < 4; i++) {
		test_fill(wbuf + i * BLK, BLK, 20, (uint64_t)i * BLK);
		CHECK_MSG(tio_blkdev_submit(&w, &io[i], disk,
					    REQ_OP_WRITE | REQ_POLLED,
					    (off_t)i * BLK, wbuf + i * BLK,
					    BLK) == 0, "submit");
	}
	test_sleep_ms(20);
	CHECK_MSG(tio_done(&w) == 0, "%u polled writes completed without "
		  "polling", tio_done(&w));
	dl = test_now_ns() + 2 * NSEC_PER_SEC;
	while (tio_done(&w) < 4 && test_now_ns() < dl)
		polled += blkdev_poll(disk);
	CHECK_MSG(tio_done(&w) == 4 && w.errors == 0, "polling completed "
		  "%u of 4 writes (%u errors)", tio_done(&w), w.errors);
	CHECK_MSG(polled >= 4, "blkdev_poll() reported %d completions for 4",
		  polled);
	CHECK_MSG(blkdev_poll(disk) == 0, "blkdev_poll() found more");

	/* bio_poll() on the bio itself */
	memset(rbuf, 0, 4 * BLK);
	bio = bio_alloc(disk, 1, REQ_OP_READ | REQ_POLLED);
	REQUIRE_MSG(bio, "bio_alloc");
	bio->bi_iter.bi_sector = 0;
	bio_add_buf(bio, rbuf, 4 * BLK);
	bio->bi_end_io = poll_bio_end;
	bio->bi_private = &pb;
	bio_get(bio);
	submit_bio(bio);
	test_sleep_ms(10);
	CHECK_MSG(!atomic_load(&pb.done),
		  "polled read completed without polling");
	dl = test_now_ns() + 2 * NSEC_PER_SEC;
	while (!atomic_load(&pb.done) && test_now_ns() < dl)
		bio_poll(bio);
	CHECK_MSG(atomic_load(&pb.done) && pb.status == BLK_STS_OK, "bio_poll: "
		  "done %d status %u", atomic_load(&pb.done), pb.status);
	bio_put(bio);	/* our extra reference */
	bio_put(bio);
	CHECK_MSG(test_verify(rbuf, 4 * BLK, 20, 0) < 0, "polled read data");

	/* submit_bio_wait() polls by itself */
	bio = bio_alloc(disk, 1, REQ_OP_READ | REQ_POLLED);
	bio->bi_iter.bi_sector = 0;
	bio_add_buf(bio, rbuf, BLK);
	CHECK_MSG(submit_bio_wait(bio) == 0, "submit_bio_wait polled");
	bio_put(bio);

	/* unpolled I/O on the same device completes by itself */
	test_write_verify(disk, 65536, 65536, 21, wbuf, rbuf);
	tio_destroy(&w);
	test_dev_del(disk);

	/* REQ_POLLED on a device without poll queues: just completes */
	disk = test_null_add("nopollq", "size=16,irqmode=1");
	if (!disk)
		return;
	CHECK_MSG(blkdev_poll(disk) == 0,
		  "polling a device without poll queues");
	tio_init(&w);
	CHECK_MSG(tio_blkdev_submit(&w, &io[0], disk, REQ_OP_READ | REQ_POLLED,
				    0, rbuf, BLK) == 0,
		  "submit");
	CHECK_MSG(tio_wait_pending(&w, 0, 2000) && io[0].err == 0, "REQ_POLLED "
		  "without poll queues did not complete by itself");
	tio_destroy(&w);
	test_dev_del(disk);
}

/* ---- depth, blocking, shared tags ---- */

static void many_ios(struct gendisk *disk, unsigned int nr, uint64_t seed)
{
	struct tio_req *io = calloc(nr, sizeof(*io));
	struct tio w;
	const char *name = blk_disk_name(disk);

	tio_init(&w);
	for (unsigned int i = 0; i < nr; i++) {
		test_fill(wbuf + i * BLK, BLK, seed, (uint64_t)i * BLK);
		CHECK_MSG(tio_blkdev_submit(&w, &io[i], disk, REQ_OP_WRITE,
					    (off_t)i * BLK, wbuf + i * BLK,
					    BLK) == 0,
			  "submit");
	}
	CHECK_MSG(tio_wait_pending(&w, 0, 5000), "%s: %u of %u writes stuck",
		  name, tio_pending(&w), nr);
	for (unsigned int i = 0; i < nr; i++) {
		memset(rbuf + i * BLK, 0, BLK);
		CHECK_MSG(tio_blkdev_submit(&w, &io[i], disk, REQ_OP_READ,
					    (off_t)i * BLK, rbuf + i * BLK,
					    BLK) == 0,
			  "submit");
	}
	CHECK_MSG(tio_wait_pending(&w, 0, 5000), "%s: %u of %u reads stuck",
		  name, tio_pending(&w), nr);
	CHECK_MSG(w.errors == 0, "%s: %u I/Os failed (%d)", name, w.errors,
		  w.last_err);
	CHECK_MSG(test_verify(rbuf, (size_t)nr * BLK, seed, 0) < 0, "%s: data",
		  name);
	tio_destroy(&w);
	free(io);
}

struct many_arg {
	struct gendisk *disk;
	int id;
};

static void *many_thread(void *arg)
{
	struct many_arg *m = arg;
	char *wb = malloc(16 * BLK), *rb = malloc(16 * BLK);
	struct tio_req io[16];
	struct tio w;
	off_t base = (off_t)m->id * 16 * BLK + (1 << 20);

	tio_init(&w);
	for (int round = 0; round < 20; round++) {
		uint64_t seed = (uint64_t)m->id * 1000 + (uint64_t)round;

		for (int k = 0; k < 16; k++) {
			test_fill(wb + k * BLK, BLK, seed,
				  (uint64_t)(base + k * BLK));
			tio_blkdev_submit(&w, &io[k], m->disk, REQ_OP_WRITE,
					  base + k * BLK, wb + k * BLK, BLK);
		}
		if (!CHECK_MSG(tio_wait_pending(&w, 0, 5000), "writes stuck"))
			break;
		for (int k = 0; k < 16; k++)
			tio_blkdev_submit(&w, &io[k], m->disk, REQ_OP_READ,
					  base + k * BLK, rb + k * BLK, BLK);
		if (!CHECK_MSG(tio_wait_pending(&w, 0, 5000), "reads stuck"))
			break;
		CHECK_MSG(test_verify(rb, 16 * BLK, seed, (uint64_t)base) < 0,
			  "thread %d round %d: data", m->id, round);
	}
	CHECK_MSG(w.errors == 0, "thread %d: %u errors", m->id, w.errors);
	tio_destroy(&w);
	free(wb);
	free(rb);
	return NULL;
}

static void test_small_depth(void)
{
	struct gendisk *disk;
	struct many_arg m[4];
	pthread_t th[4];

	test_begin("hw_queue_depth=2 with many I/Os", 30);
	disk = test_null_add("depth2", "size=16,hw_queue_depth=2,"
			     "memory_backed=1,irqmode=1");
	if (!disk)
		return;
	CHECK_MSG(disk_queue(disk)->queue_hw_ctx[0]->tags->nr_tags == 2,
		  "depth");
	many_ios(disk, 64, 30);
	for (int i = 0; i < 4; i++) {
		m[i] = (struct many_arg){ disk, i };
		CHECK_MSG(pthread_create(&th[i], NULL, many_thread, &m[i]) == 0,
			  "thread");
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK_MSG(test_wait_idle(disk, 2000) == 0, "in flight after all I/O");
	test_dev_del(disk);
}

static void test_blocking(void)
{
	struct gendisk *disk;

	test_begin("blocking=1", 10);
	disk = test_null_add("blocking", "size=16,blocking=1,memory_backed=1,"
			     "irqmode=0,hw_queue_depth=4");
	if (!disk)
		return;
	CHECK_MSG(disk_queue(disk)->tag_set->flags & BLK_MQ_F_BLOCKING,
		  "BLK_MQ_F_BLOCKING not set");
	test_write_verify(disk, 0, 65536, 31, wbuf, rbuf);
	many_ios(disk, 32, 32);
	test_dev_del(disk);
}

static void test_shared_tags_io(void)
{
	struct gendisk *a, *b;

	test_begin("shared_tags=1 I/O", 10);
	a = test_null_add("sh1", "size=16,shared_tags=1,memory_backed=1,"
				 "irqmode=1,hw_queue_depth=8");
	b = test_null_add("sh2", "size=16,shared_tags=1,memory_backed=1,"
				 "irqmode=1,hw_queue_depth=8");
	if (a && b) {
		CHECK_MSG(disk_queue(a)->tag_set == disk_queue(b)->tag_set,
			  "different tag sets");
		many_ios(a, 40, 33);
		many_ios(b, 40, 34);
		/* data is per device */
		CHECK_MSG(blkdev_pread(a, rbuf, BLK, 0) == BLK &&
			  test_verify(rbuf, BLK, 33, 0) < 0, "device a's data");
	}
	test_dev_del(b);
	test_dev_del(a);
	/* the set survives its first user */
	a = test_null_add("sh3",
			  "size=16,shared_tags=1,memory_backed=1,irqmode=0");
	b = test_null_add("sh4",
			  "size=16,shared_tags=1,memory_backed=1,irqmode=0");
	test_dev_del(a);
	if (b)
		test_write_verify(b, 0, 65536, 35, wbuf, rbuf);
	test_dev_del(b);
}

/* ---- the volatile cache ---- */

static void test_cache(void)
{
	struct gendisk *disk;
	struct blk_disk_stats st0, st1;
	struct tio w;
	struct tio_req io;
	char buf[32];

	test_begin("cache_size with flush and FUA", 20);
	disk = test_null_add("cached", "size=16,memory_backed=1,cache_size=1,"
			     "irqmode=1");
	if (!disk)
		return;
	CHECK_MSG(!strcmp(test_attr_show(disk, "write_cache", buf, sizeof(buf)),
			  "write back"), "write_cache '%s'", buf);
	CHECK_MSG(!strcmp(test_attr_show(disk, "fua", buf, sizeof(buf)), "1"),
		  "fua %s", buf);
	test_write_verify(disk, 0, 65536, 40, wbuf, rbuf); /* in the cache */
	blk_disk_get_stats(disk, &st0);
	CHECK_MSG(blkdev_flush(disk) == 0, "flush: %s", blkstack_errmsg());
	blk_disk_get_stats(disk, &st1);
	CHECK_MSG(st1.ios[STAT_FLUSH] == st0.ios[STAT_FLUSH] + 1, "flush count "
		  "%llu -> %llu", (unsigned long long)st0.ios[STAT_FLUSH],
		  (unsigned long long)st1.ios[STAT_FLUSH]);
	CHECK_MSG(blkdev_pread(disk, rbuf, 65536, 0) == 65536 &&
		  test_verify(rbuf, 65536, 40, 0) < 0, "data after flush");

	/* 2 MiB through a 1 MiB cache: write-back makes room */
	test_write_verify(disk, 1 << 20, 2 << 20, 41, wbuf, rbuf);
	CHECK_MSG(blkdev_pread(disk, rbuf, 65536, 0) == 65536 &&
		  test_verify(rbuf, 65536, 40, 0) < 0, "earlier data after the "
		  "cache overflowed");
	CHECK_MSG(blkdev_flush(disk) == 0, "flush");
	CHECK_MSG(blkdev_pread(disk, rbuf, 2 << 20, 1 << 20) == 2 << 20 &&
		  test_verify(rbuf, 2 << 20, 41, 1 << 20) < 0, "data after the "
		  "write-back and a flush");

	/* FUA: through to the store; a later cached partial write on top */
	tio_init(&w);
	test_fill(wbuf, BLK, 42, 8 << 20);
	CHECK_MSG(tio_blkdev_submit(&w, &io, disk, REQ_OP_WRITE | REQ_FUA,
				    8 << 20, wbuf, BLK) == 0,
		  "submit");
	CHECK_MSG(tio_wait_pending(&w, 0, 2000) && io.err == 0, "FUA write: %d",
		  io.err);
	test_fill(wbuf + BLK, 512, 43, (8 << 20) + 512);
	CHECK_MSG(blkdev_pwrite(disk, wbuf + BLK, 512, (8 << 20) + 512) == 512,
		  "partial write");
	CHECK_MSG(blkdev_pread(disk, rbuf, BLK, 8 << 20) == BLK, "read");
	CHECK_MSG(test_verify(rbuf, 512, 42, 8 << 20) < 0 &&
			  test_verify(rbuf + 512, 512, 43, (8 << 20) + 512) <
				  0 &&
			  test_verify(rbuf + 1024, BLK - 1024, 42,
				      (8 << 20) + 1024) < 0,
		  "FUA data with a cached partial overwrite");
	/* a FUA write over a cached page replaces it */
	test_fill(wbuf, BLK, 44, 8 << 20);
	CHECK_MSG(tio_blkdev_submit(&w, &io, disk,
				    REQ_OP_WRITE | REQ_FUA | REQ_PREFLUSH,
				    8 << 20, wbuf, BLK) == 0,
		  "submit");
	CHECK_MSG(tio_wait_pending(&w, 0, 2000) && io.err == 0,
		  "FUA+PREFLUSH: %d", io.err);
	CHECK_MSG(blkdev_pread(disk, rbuf, BLK, 8 << 20) == BLK &&
			  test_verify(rbuf, BLK, 44, 8 << 20) < 0,
		  "stale cached data after a FUA write");
	tio_destroy(&w);
	test_dev_del(disk);

	/* fua=0: the core emulates FUA with a post-flush */
	disk = test_null_add("cachednofua", "size=16,memory_backed=1,"
			     "cache_size=1,fua=0,irqmode=0");
	if (!disk)
		return;
	CHECK_MSG(!strcmp(test_attr_show(disk, "fua", buf, sizeof(buf)), "0"),
		  "fua %s", buf);
	tio_init(&w);
	test_fill(wbuf, BLK, 45, 0);
	blk_disk_get_stats(disk, &st0);
	CHECK_MSG(tio_blkdev_submit(&w, &io, disk, REQ_OP_WRITE | REQ_FUA, 0,
				    wbuf, BLK) == 0,
		  "submit");
	CHECK_MSG(tio_wait_pending(&w, 0, 2000) && io.err == 0,
		  "emulated FUA: %d", io.err);
	blk_disk_get_stats(disk, &st1);
	CHECK_MSG(st1.ios[STAT_FLUSH] > st0.ios[STAT_FLUSH],
		  "no post-flush for FUA on a device without native FUA");
	CHECK_MSG(blkdev_pread(disk, rbuf, BLK, 0) == BLK &&
		  test_verify(rbuf, BLK, 45, 0) < 0, "emulated FUA data");
	tio_destroy(&w);
	test_dev_del(disk);

	/* no cache: a flush is a no-op that succeeds */
	disk = test_null_add("nocache", "size=16,memory_backed=1,irqmode=0");
	if (!disk)
		return;
	CHECK_MSG(!strcmp(test_attr_show(disk, "write_cache", buf, sizeof(buf)),
			  "write through"), "write_cache '%s'", buf);
	blk_disk_get_stats(disk, &st0);
	CHECK_MSG(blkdev_flush(disk) == 0, "flush without a cache");
	blk_disk_get_stats(disk, &st1);
	CHECK_MSG(st1.ios[STAT_FLUSH] == st0.ios[STAT_FLUSH],
		  "a flush reached a device without a volatile cache");
	test_dev_del(disk);
}

/* ---- bad blocks ---- */

static void test_badblocks(void)
{
	struct gendisk *disk;
	const struct {
		sector_t sector;
		unsigned int nr;
		bool bad;
	} cases[] = {
		{ 100, 1, true },	/* first bad */
		{ 107, 1, true },	/* last bad */
		{ 96, 8, true },	/* overlaps the start */
		{ 104, 8, true },	/* overlaps the end */
		{ 99, 1, false },	/* just before */
		{ 108, 1, false },	/* just after */
		{ 88, 8, false },
		{ 108, 16, false },
		{ 2048, 1, true },	/* a single sector */
		{ 2040, 16, true },
		{ 2049, 7, false },
	};

	test_begin("badblocks", 10);
	disk = test_null_add("bad", "size=16,memory_backed=1,irqmode=1,"
			     "badblocks=100-107:2048");
	if (!disk)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		off_t off = (off_t)cases[i].sector * 512;
		size_t len = cases[i].nr * 512;
		ssize_t r = blkdev_pread(disk, rbuf, len, off);
		ssize_t wr = blkdev_pwrite(disk, wbuf, len, off);

		if (cases[i].bad) {
			CHECK_MSG(r == -EIO,
				  "read of sectors %llu+%u: %zd, want -EIO",
				  (unsigned long long)cases[i].sector,
				  cases[i].nr, r);
			CHECK_MSG(wr == -EIO,
				  "write of sectors %llu+%u: %zd, want -EIO",
				  (unsigned long long)cases[i].sector,
				  cases[i].nr, wr);
		} else {
			CHECK_MSG(r == (ssize_t)len && wr == (ssize_t)len,
				  "I/O to good sectors %llu+%u: %zd/%zd",
				  (unsigned long long)cases[i].sector,
				  cases[i].nr, r, wr);
		}
	}
	test_write_verify(disk, 4 << 20, 65536, 50, wbuf, rbuf);
	test_dev_del(disk);
}

/* ---- bio-based ---- */

static void test_bio_mode(unsigned int irqmode)
{
	struct gendisk *disk;
	struct tio w;
	struct tio_req io;
	char name[16], buf[32];

	snprintf(name, sizeof(name), "bio%u", irqmode);
	test_begin(name, 10);
	disk = test_null_add(name, "size=16,queue_mode=0,memory_backed=1,"
			     "irqmode=%u,completion_nsec=5000000", irqmode);
	if (!disk)
		return;
	CHECK_MSG(disk_queue(disk)->mq_ops == NULL,
		  "queue_mode=0 has blk-mq ops");
	CHECK_MSG(!strcmp(test_attr_show(disk, "nr_requests", buf, sizeof(buf)),
			  "0"),
		  "nr_requests %s", buf);
	CHECK_MSG(blk_queue_attr_store(disk, "scheduler", "none") == -EINVAL,
		  "a scheduler on a bio-based device");
	CHECK_MSG(blk_queue_attr_store(disk, "nr_hw_queues", "2") == -EINVAL,
		  "nr_hw_queues on a bio-based device");
	test_write_verify(disk, 0, 1 << 20, 60, wbuf, rbuf);
	test_write_verify(disk, (2 << 20) + 7 * 512, 3 * 512, 61, wbuf, rbuf);
	tio_init(&w);
	CHECK_MSG(tio_blkdev_submit(&w, &io, disk, REQ_OP_READ, 0, rbuf,
				    BLK) == 0, "submit");
	if (irqmode == 0)
		CHECK_MSG(atomic_load(&io.done),
			  "bio irqmode=0: not done at once");
	if (irqmode == 2)
		CHECK_MSG(!atomic_load(&io.done),
			  "bio irqmode=2: done at once");
	CHECK_MSG(tio_wait_pending(&w, 0, 2000) && io.err == 0,
		  "async read: %d", io.err);
	if (irqmode == 2)
		CHECK_MSG(io.done_ns - io.submit_ns >= 5000000, "bio irqmode=2 "
			  "latency %llu us", (unsigned long long)(io.done_ns -
								 io.submit_ns) /
			  1000);
	CHECK_MSG(test_verify(rbuf, BLK, 60, 0) < 0, "async read data");
	CHECK_MSG(blkdev_discard(disk, 0, 8192) == 0, "discard");
	CHECK_MSG(blkdev_pread(disk, rbuf, 8192, 0) == 8192 &&
		  test_is_zero(rbuf, 8192), "discarded range not zero");
	CHECK_MSG(blkdev_flush(disk) == 0, "flush");
	tio_destroy(&w);
	test_dev_del(disk);
}

/* ---- discard and write-zeroes ---- */

static void check_zero_range(struct gendisk *disk, size_t total, off_t zs,
			     size_t zlen, uint64_t seed, const char *what)
{
	CHECK_MSG(blkdev_pread(disk, rbuf, total, 0) == (ssize_t)total, "read");
	for (size_t off = 0; off < total; off += 512) {
		bool in = (off_t)off >= zs && (off_t)off < zs + (off_t)zlen;

		if (in)
			CHECK_MSG(test_is_zero(rbuf + off, 512),
				  "%s: byte %zu not zero", what, off);
		else
			CHECK_MSG(test_verify(rbuf + off, 512, seed, off) < 0,
				  "%s: byte %zu outside [%lld, +%zu) lost its "
				  "data",
				  what, off, (long long)zs, zlen);
	}
}

static void test_discard_zeroes(void)
{
	struct gendisk *disk;
	const size_t total = 64 * 1024;
	char buf[32];

	test_begin("discard and write_zeroes", 10);
	disk = test_null_add("discz", "size=16,memory_backed=1,irqmode=1");
	if (!disk)
		return;
	CHECK_MSG(strcmp(test_attr_show(disk, "discard_max_bytes", buf,
					sizeof(buf)),
			 "0"),
		  "discard_max_bytes %s", buf);
	CHECK_MSG(strcmp(test_attr_show(disk, "write_zeroes_max_bytes", buf,
					sizeof(buf)),
			 "0"),
		  "write_zeroes_max_bytes %s", buf);

	test_fill(wbuf, total, 70, 0);
	CHECK_MSG(blkdev_pwrite(disk, wbuf, total, 0) == (ssize_t)total,
		  "fill");
	CHECK_MSG(blkdev_discard(disk, 8192, 16384) == 0, "discard: %s",
		  blkstack_errmsg());
	check_zero_range(disk, total, 8192, 16384, 70, "page-aligned discard");

	CHECK_MSG(blkdev_pwrite(disk, wbuf, total, 0) == (ssize_t)total,
		  "fill");
	CHECK_MSG(blkdev_discard(disk, 3 * 512, 11 * 512) == 0, "discard");
	check_zero_range(disk, total, 3 * 512, 11 * 512, 70,
			 "sector-granular discard");

	CHECK_MSG(blkdev_pwrite(disk, wbuf, total, 0) == (ssize_t)total,
		  "fill");
	CHECK_MSG(blkdev_write_zeroes(disk, 5 * 512, 20 * 512) == 0,
		  "write_zeroes: %s", blkstack_errmsg());
	check_zero_range(disk, total, 5 * 512, 20 * 512, 70, "write_zeroes");

	CHECK_MSG(blkdev_pwrite(disk, wbuf, total, 0) == (ssize_t)total,
		  "fill");
	CHECK_MSG(blkdev_write_zeroes(disk, 0, total) == 0, "write_zeroes all");
	check_zero_range(disk, total, 0, total, 70, "write_zeroes all");
	test_dev_del(disk);

	/* not memory-backed and no discard=1: neither is supported */
	disk = test_null_add("nodisc", "size=16,irqmode=0");
	if (!disk)
		return;
	CHECK_MSG(blkdev_discard(disk, 0, 8192) == -EOPNOTSUPP, "discard on a "
		  "device without discard");
	CHECK_MSG(blkdev_write_zeroes(disk, 0, 8192) == -EOPNOTSUPP,
		  "write_zeroes on a device without it");
	test_dev_del(disk);
	disk = test_null_add("yesdisc", "size=16,irqmode=0,discard=1");
	if (!disk)
		return;
	CHECK_MSG(blkdev_discard(disk, 0, 8192) == 0, "discard=1: %s",
		  blkstack_errmsg());
	test_dev_del(disk);
}

/* ---- fault injection ---- */

static void test_requeue(const char *fault)
{
	struct gendisk *disk;
	struct request_queue *q;
	char name[16];

	snprintf(name, sizeof(name), "%.7s3", fault);
	test_begin(name, 20);
	disk = test_null_add(name, "size=16,memory_backed=1,irqmode=1,"
			     "hw_queue_depth=8,%s=3", fault);
	if (!disk)
		return;
	q = disk_queue(disk);
	many_ios(disk, 64, 80);
	test_write_verify(disk, 1 << 20, 1 << 20, 81, wbuf, rbuf);
	if (!strcmp(fault, "requeue"))
		CHECK_MSG(atomic_load(&q->nr_requeues) > 0, "requeue=3: no "
			  "requeues counted");
	CHECK_MSG(test_wait_idle(disk, 2000) == 0, "in flight after all I/O");
	test_dev_del(disk);
}

/* ---- diskstats ---- */

static void test_diskstats(void)
{
	struct gendisk *disk;
	struct blk_disk_stats st;
	struct blk_plug plug;
	struct tio w;
	struct tio_req io[4];
	char line[512], name[16];
	unsigned long long f[20];
	int major, minor;

	test_begin("diskstats", 10);
	disk = test_null_add("stats", "size=16,memory_backed=1,irqmode=0,"
			     "cache_size=1");
	if (!disk)
		return;
	blk_disk_get_stats(disk, &st);
	CHECK_MSG(st.ios[STAT_READ] == 0 && st.ios[STAT_WRITE] == 0,
		  "a new disk has I/O counted");
	for (int i = 0; i < 10; i++)
		CHECK_MSG(blkdev_pread(disk, rbuf, BLK,
				       (off_t)i * 3 * BLK) == BLK, "read");
	for (int i = 0; i < 5; i++)
		CHECK_MSG(blkdev_pwrite(disk, wbuf, 8192, (off_t)(100 + i * 4) *
					BLK) == 8192, "write");
	blk_disk_get_stats(disk, &st);
	CHECK_MSG(st.ios[STAT_READ] == 10, "reads %llu, want 10",
		  (unsigned long long)st.ios[STAT_READ]);
	CHECK_MSG(st.sectors[STAT_READ] == 80, "read sectors %llu, want 80",
		  (unsigned long long)st.sectors[STAT_READ]);
	CHECK_MSG(st.ios[STAT_WRITE] == 5, "writes %llu, want 5",
		  (unsigned long long)st.ios[STAT_WRITE]);
	CHECK_MSG(st.sectors[STAT_WRITE] == 80, "write sectors %llu, want 80",
		  (unsigned long long)st.sectors[STAT_WRITE]);
	CHECK_MSG(st.merges[STAT_READ] == 0 && st.merges[STAT_WRITE] == 0,
		  "merges %llu/%llu without adjacent I/O",
		  (unsigned long long)st.merges[STAT_READ],
		  (unsigned long long)st.merges[STAT_WRITE]);
	CHECK_MSG(st.in_flight == 0, "in_flight %llu",
		  (unsigned long long)st.in_flight);
	CHECK_MSG(st.ios[STAT_FLUSH] == 0, "flushes %llu before any flush",
		  (unsigned long long)st.ios[STAT_FLUSH]);

	/* four adjacent plugged writes merge into one request */
	tio_init(&w);
	blk_start_plug(&plug);
	for (int i = 0; i < 4; i++)
		CHECK_MSG(tio_blkdev_submit(&w, &io[i], disk, REQ_OP_WRITE,
					    (1 << 20) + (off_t)i * BLK,
					    wbuf + i * BLK, BLK) == 0,
			  "submit");
	blk_finish_plug(&plug);
	CHECK_MSG(tio_wait_pending(&w, 0, 2000) && w.errors == 0,
		  "plugged writes");
	blk_disk_get_stats(disk, &st);
	CHECK_MSG(st.ios[STAT_WRITE] == 6,
		  "writes %llu after 4 merged ones, want 6",
		  (unsigned long long)st.ios[STAT_WRITE]);
	CHECK_MSG(st.merges[STAT_WRITE] == 3, "write merges %llu, want 3",
		  (unsigned long long)st.merges[STAT_WRITE]);
	CHECK_MSG(st.sectors[STAT_WRITE] == 112, "write sectors %llu, want 112",
		  (unsigned long long)st.sectors[STAT_WRITE]);
	tio_destroy(&w);

	/*
	 * The flush request counts as a flush; the empty REQ_PREFLUSH write
	 * that carried it may count as a write too (the kernel's does).
	 */
	CHECK_MSG(blkdev_flush(disk) == 0, "flush");
	blk_disk_get_stats(disk, &st);
	CHECK_MSG(st.ios[STAT_FLUSH] == 1, "flushes %llu, want 1",
		  (unsigned long long)st.ios[STAT_FLUSH]);
	CHECK_MSG(st.sectors[STAT_WRITE] == 112, "a flush added %llu written "
		  "sectors", (unsigned long long)st.sectors[STAT_WRITE] - 112);
	CHECK_MSG(blkdev_discard(disk, 0, 8192) == 0, "discard");
	blk_disk_get_stats(disk, &st);
	CHECK_MSG(st.ios[STAT_DISCARD] == 1 && st.sectors[STAT_DISCARD] == 16,
		  "discards %llu sectors %llu, want 1 and 16",
		  (unsigned long long)st.ios[STAT_DISCARD],
		  (unsigned long long)st.sectors[STAT_DISCARD]);
	CHECK_MSG(test_wait_idle(disk, 1000) == 0, "in_flight not 0");
	blk_disk_get_stats(disk, &st);

	/* /proc/diskstats: major minor name, then 17 counters */
	CHECK_MSG(blk_disk_stat_line(disk, line, sizeof(line)) > 0,
		  "stat line");
	blk_disk_devt(disk, &major, &minor);
	{
		int maj, min, n;

		n = sscanf(line,
			   "%d %d %15s %llu %llu %llu %llu %llu %llu %llu %llu "
			   "%llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &maj, &min, name, &f[0], &f[1], &f[2], &f[3], &f[4],
			   &f[5], &f[6], &f[7], &f[8], &f[9], &f[10], &f[11],
			   &f[12], &f[13], &f[14], &f[15], &f[16]);
		CHECK_MSG(n == 20, "stat line has %d fields: %s", n, line);
		CHECK_MSG(maj == major && min == minor &&
				  !strcmp(name, "stats"),
			  "stat line header: %s", line);
		CHECK_MSG(f[0] == 10 && f[1] == 0 && f[2] == 80 &&
				  f[4] == st.ios[STAT_WRITE] && f[5] == 3 &&
				  f[6] == 112 && f[8] == 0 && f[11] == 1 &&
				  f[12] == 0 && f[13] == 16 && f[15] == 1,
			  "stat line counters: %s", line);
	}
	test_dev_del(disk);
}

/* ---- the debug dump ---- */

static void test_debug_dump(void)
{
	struct gendisk *disk;
	struct request_queue *q;
	struct tio w;
	struct tio_req io;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	test_begin("debug dump", 10);
	disk = test_null_add("dumped", "size=16,irqmode=0,submit_queues=1");
	if (!disk)
		return;
	q = disk_queue(disk);
	tio_init(&w);
	blk_mq_stop_hw_queue(q->queue_hw_ctx[0]);
	blk_set_current_cpu(0);
	CHECK_MSG(tio_blkdev_submit(&w, &io, disk, REQ_OP_WRITE, 4096, wbuf,
				    BLK) == 0,
		  "submit");
	blk_set_current_cpu(-1);
	f = open_memstream(&text, &len);
	REQUIRE_MSG(f, "open_memstream");
	blk_mq_debug_dump(disk, f);
	fclose(f);
	CHECK_MSG(text && strstr(text, "dumped"), "dump lacks the disk name");
	CHECK_MSG(text && strstr(text, "hctx0"), "dump lacks hctx0");
	CHECK_MSG(text && strstr(text, "tags"), "dump lacks tags");
	CHECK_MSG(text && strstr(text, "dispatch"), "dump lacks dispatch");
	CHECK_MSG(text && strstr(text, "STOPPED"),
		  "dump lacks the STOPPED state");
	CHECK_MSG(text && strstr(text, "op=WRITE"), "dump lacks the queued "
		  "request");
	if (atomic_load(&testlib_failures))
		fprintf(stderr, "%s", text ? text : "");
	free(text);
	blk_mq_start_hw_queue(q->queue_hw_ctx[0]);
	CHECK_MSG(tio_wait_pending(&w, 0, 2000), "write stuck after start");
	tio_destroy(&w);
	test_dev_del(disk);
}

int main(void)
{
	test_init(0);
	test_irqmode(0);
	test_irqmode(1);
	test_irqmode(2);
	test_memory_backed();
	test_bs4096();
	test_submit_queues();
	test_poll_queues();
	test_small_depth();
	test_blocking();
	test_shared_tags_io();
	test_cache();
	test_badblocks();
	test_bio_mode(0);
	test_bio_mode(1);
	test_bio_mode(2);
	test_discard_zeroes();
	test_requeue("requeue");
	test_requeue("resource");
	test_diskstats();
	test_debug_dump();
	return test_report();
}
