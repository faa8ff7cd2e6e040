// SPDX-License-Identifier: MIT
/*
 * The io_uring driver (drivers/uring.c, docs/uring.md) on real files: one
 * on ext4 (a directory under /var/tmp) and one on tmpfs (/dev/shm). Data
 * is checked through the device and in the backing file itself: vectors
 * and splits, flush, FUA, discard (zeroes and a hole in block_status),
 * write zeroes, O_DIRECT alignment, reads past the end of a file that
 * shrank, several hw queues from several threads, poll queues, SQPOLL,
 * bad parameters, readonly=1, removal with I/O in flight, and a loop
 * device.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/blk.h"
#include "testlib.h"

#define BLK	4096
#define MB	(1024 * 1024)

static char wbuf[4 * MB] __attribute__((aligned(BLK)));
static char rbuf[4 * MB] __attribute__((aligned(BLK)));

static char tmpdirs[2][64];
static const char *const fs_names[2] = { "ext4", "tmpfs" };

static void make_dirs(void)
{
	snprintf(tmpdirs[0], sizeof(tmpdirs[0]), "/var/tmp/test-uring.XXXXXX");
	snprintf(tmpdirs[1], sizeof(tmpdirs[1]), "/dev/shm/test-uring.XXXXXX");
	for (int i = 0; i < 2; i++)
		if (!mkdtemp(tmpdirs[i]))
			test_skip("mkdtemp %s: %s", tmpdirs[i], strerror(errno));
}

static void remove_dirs(void)
{
	char cmd[160];

	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdirs[i]);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", tmpdirs[i]);
	}
}

static struct gendisk *uring_add(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct gendisk *uring_add(const char *name, const char *fmt, ...)
{
	struct gendisk *disk = NULL;
	char params[512];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(params, sizeof(params), fmt, ap);
	va_end(ap);
	ret = blkstack_dev_add("uring", name, params, &disk);
	if (!CHECK_MSG(ret == 0, "create %s (%s): %d %s", name, params, ret,
		       blkstack_errmsg()))
		return NULL;
	return disk;
}

/* The backing file holds the pattern too: the data really went there. */
static void check_file(const char *path, off_t off, size_t len, uint64_t seed)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	REQUIRE_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	n = pread(fd, rbuf, len, off);
	close(fd);
	REQUIRE_MSG(n == (ssize_t)len, "pread %s: %zd", path, n);
	CHECK_MSG(test_verify(rbuf, len, seed, (uint64_t)off) < 0,
		  "%s: file content differs at @%lld+%zu", path,
		  (long long)off, len);
}

static void check_file_zero(const char *path, off_t off, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	REQUIRE_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	memset(rbuf, 0xa5, len);
	n = pread(fd, rbuf, len, off);
	close(fd);
	CHECK_MSG(n == (ssize_t)len && test_is_zero(rbuf, len),
		  "%s: @%lld+%zu is not zero in the file", path,
		  (long long)off, len);
}

struct extent_log {
	unsigned int nr;
	uint64_t off[64], len[64];
	bool hole[64];
};

static int log_extent(uint64_t off, uint64_t len, bool hole, void *arg)
{
	struct extent_log *l = arg;

	if (l->nr < 64) {
		l->off[l->nr] = off;
		l->len[l->nr] = len;
		l->hole[l->nr] = hole;
	}
	l->nr++;
	return 0;
}

/* Is [off, off + len) entirely a hole according to ->block_status? */
static bool is_hole(struct gendisk *disk, uint64_t off, uint64_t len)
{
	struct extent_log l = { 0 };
	uint64_t covered = 0;
	int ret;

	ret = disk->driver->block_status(disk, off, len, log_extent, &l);
	if (!CHECK_MSG(ret == 0, "block_status: %d %s", ret, blkstack_errmsg()))
		return false;
	for (unsigned int i = 0; i < l.nr && i < 64; i++) {
		CHECK_MSG(l.off[i] == off + covered, "extents not consecutive");
		covered += l.len[i];
		if (!l.hole[i])
			return false;
	}
	CHECK_EQ_U64(covered, len);
	return true;
}

/* ---- data on a file ---- */

static void test_vectors(struct gendisk *disk, const char *path)
{
	void *bufs[5];
	unsigned int lens[5] = { BLK, 2 * BLK, BLK, 3 * BLK, BLK };
	struct tio t;
	size_t off = 0;

	/* one bio of five segments, one request of several iovecs */
	test_fill(wbuf, 8 * BLK, 11, MB);
	for (int i = 0; i < 5; i++) {
		/* scattered in memory so they stay separate segments */
		bufs[i] = wbuf + 2 * MB + (size_t)i * 64 * 1024;
		memcpy(bufs[i], wbuf + off, lens[i]);
		off += lens[i];
	}
	tio_init(&t);
	tio_submit_vec(&t, disk, REQ_OP_WRITE, MB >> SECTOR_SHIFT, bufs, lens,
		       5);
	CHECK_MSG(tio_wait(&t, 1, 5000) && t.req[0].err == 0,
		  "vector write: %d", t.req[0].err);
	for (int i = 0; i < 5; i++)
		memset(bufs[i], 0, lens[i]);
	tio_submit_vec(&t, disk, REQ_OP_READ, MB >> SECTOR_SHIFT, bufs, lens,
		       5);
	CHECK_MSG(tio_wait(&t, 2, 5000) && t.req[1].err == 0,
		  "vector read: %d", t.req[1].err);
	off = 0;
	for (int i = 0; i < 5; i++) {
		CHECK_MSG(test_verify(bufs[i], lens[i], 11, MB + off) < 0,
			  "vector read: segment %d differs", i);
		off += lens[i];
	}
	tio_destroy(&t);
	check_file(path, MB, 8 * BLK, 11);

	/* 3 MiB: split at max_sectors (1280 KiB) into several requests */
	test_write_verify(disk, 4 * MB, 3 * MB, 12, wbuf, rbuf);
	check_file(path, 4 * MB, 3 * MB, 12);
	/* odd sizes and offsets, in 512-byte sectors */
	test_write_verify(disk, 7 * 512, 5 * 512, 13, wbuf, rbuf);
	check_file(path, 7 * 512, 5 * 512, 13);
}

static void test_flush_fua(struct gendisk *disk, const char *path)
{
	struct blk_disk_stats before, after;
	int ret;

	blk_disk_get_stats(disk, &before);
	ret = blkdev_flush(disk);
	CHECK_MSG(ret == 0, "flush: %d %s", ret, blkstack_errmsg());
	test_fill(wbuf, 2 * BLK, 21, 8 * MB);
	ret = test_bio_sync(disk, REQ_OP_WRITE | REQ_FUA,
			    (8 * MB) >> SECTOR_SHIFT, wbuf, 2 * BLK);
	CHECK_MSG(ret == 0, "FUA write: %d", ret);
	check_file(path, 8 * MB, 2 * BLK, 21);
	test_wait_idle(disk, 2000);
	blk_disk_get_stats(disk, &after);
	CHECK_MSG(after.ios[STAT_FLUSH] > before.ios[STAT_FLUSH],
		  "no flush reached the device");
}

static void test_discard_zeroes(struct gendisk *disk, const char *path)
{
	const off_t off = 16 * MB;
	char attr[32];
	int ret;

	test_attr_show(disk, "discard_max_bytes", attr, sizeof(attr));
	REQUIRE_MSG(strtoull(attr, NULL, 10) > 0, "%s: no discard support",
		    path);
	test_write_verify(disk, off, 2 * MB, 31, wbuf, rbuf);
	CHECK_MSG(!is_hole(disk, off, MB), "written range is a hole");
	ret = blkdev_discard(disk, off, MB);
	CHECK_MSG(ret == 0, "discard: %d %s", ret, blkstack_errmsg());
	memset(rbuf, 0xa5, 2 * MB);
	CHECK(blkdev_pread(disk, rbuf, 2 * MB, off) == 2 * MB);
	CHECK_MSG(test_is_zero(rbuf, MB), "discarded range does not read 0");
	CHECK_MSG(test_verify(rbuf + MB, MB, 31, off + MB) < 0,
		  "discard went too far");
	CHECK_MSG(is_hole(disk, off, MB), "block_status: no hole after "
		  "discard");

	/* write zeroes over the second MiB, with and without NOUNMAP */
	ret = blkdev_write_zeroes(disk, off + MB, MB / 2);
	CHECK_MSG(ret == 0, "write zeroes: %d %s", ret, blkstack_errmsg());
	ret = test_bio_sync(disk, REQ_OP_WRITE_ZEROES | REQ_NOUNMAP,
			    (off + MB + MB / 2) >> SECTOR_SHIFT, NULL, MB / 2);
	CHECK_MSG(ret == 0, "write zeroes (NOUNMAP): %d", ret);
	memset(rbuf, 0xa5, MB);
	CHECK(blkdev_pread(disk, rbuf, MB, off + MB) == MB);
	CHECK_MSG(test_is_zero(rbuf, MB), "write zeroes: not zero");
	check_file_zero(path, off, 2 * MB);
}

/* The file shrinks behind the device: reads past its end get zeroes. */
static void test_short_read(const char *dir)
{
	char path[128];
	struct gendisk *disk;
	const off_t cut = 100000;	/* not even sector aligned */
	int fd;

	snprintf(path, sizeof(path), "%s/short.img", dir);
	disk = uring_add("ushort", "path=%s,size=1M", path);
	if (!disk)
		return;
	test_write_verify(disk, 0, MB, 41, wbuf, rbuf);
	fd = open(path, O_RDWR);
	CHECK_MSG(fd >= 0 && ftruncate(fd, cut) == 0, "truncate %s", path);
	if (fd >= 0)
		close(fd);
	memset(rbuf, 0xa5, 128 * 1024);
	CHECK(blkdev_pread(disk, rbuf, 128 * 1024, 64 * 1024) == 128 * 1024);
	CHECK_MSG(test_verify(rbuf, cut - 64 * 1024, 41, 64 * 1024) < 0,
		  "data before the end of the file");
	CHECK_MSG(test_is_zero(rbuf + cut - 64 * 1024,
			       128 * 1024 - (cut - 64 * 1024)),
		  "past the end of the file: not zeroes");
	/* the same through four segments from 32 KiB: the end of the file
	 * falls in the third, the fourth is all past it */
	{
		void *bufs[4];
		unsigned int lens[4] = { 32768, 32768, 32768, 32768 };
		struct tio t;

		for (int i = 0; i < 4; i++) {
			bufs[i] = rbuf + MB + (size_t)i * 65536;
			memset(bufs[i], 0xa5, lens[i]);
		}
		tio_init(&t);
		tio_submit_vec(&t, disk, REQ_OP_READ, (32 * 1024) >> SECTOR_SHIFT,
			       bufs, lens, 4);
		CHECK_MSG(tio_wait(&t, 1, 5000) && t.req[0].err == 0,
			  "vector read past the end: %d", t.req[0].err);
		tio_destroy(&t);
		CHECK(test_verify(bufs[0], 32768, 41, 32768) < 0);
		CHECK(test_verify(bufs[1], 32768, 41, 65536) < 0);
		CHECK(test_verify(bufs[2], cut - 98304, 41, 98304) < 0);
		CHECK(test_is_zero((char *)bufs[2] + cut - 98304,
				   32768 - (cut - 98304)));
		CHECK(test_is_zero(bufs[3], 32768));
	}
	/* a hole in block_status, too */
	CHECK_MSG(is_hole(disk, 512 * 1024, 512 * 1024),
		  "past the end of the file: no hole");
	test_dev_del(disk);
	unlink(path);
}

static void test_file(int fs)
{
	char path[128], what[64];
	struct gendisk *disk;
	struct stat st;

	snprintf(what, sizeof(what), "file on %s", fs_names[fs]);
	test_begin(what, 30);
	snprintf(path, sizeof(path), "%s/disk.img", tmpdirs[fs]);
	disk = uring_add("ufile", "path=%s,size=64M", path);
	if (!disk)
		return;
	CHECK_MSG(stat(path, &st) == 0 && st.st_size == 64 * MB,
		  "%s not created with 64 MiB", path);
	CHECK_EQ_U64(get_capacity(disk), (64 * MB) >> SECTOR_SHIFT);
	test_vectors(disk, path);
	test_flush_fua(disk, path);
	test_discard_zeroes(disk, path);
	test_dev_del(disk);

	/* again on the existing file: the data is still there */
	disk = uring_add("ufile", "path=%s", path);
	if (disk) {
		CHECK_EQ_U64(get_capacity(disk), (64 * MB) >> SECTOR_SHIFT);
		CHECK(blkdev_pread(disk, rbuf, 3 * MB, 4 * MB) == 3 * MB);
		CHECK_MSG(test_verify(rbuf, 3 * MB, 12, 4 * MB) < 0,
			  "data lost across re-creation");
		test_dev_del(disk);
	}
	test_short_read(tmpdirs[fs]);
	unlink(path);
}

static void test_direct(int fs)
{
	char path[128], what[64], attr[32];
	struct gendisk *disk;
	unsigned int lbs;
	ssize_t n;

	snprintf(what, sizeof(what), "direct=1 on %s", fs_names[fs]);
	test_begin(what, 30);
	snprintf(path, sizeof(path), "%s/direct.img", tmpdirs[fs]);
	disk = uring_add("udirect", "path=%s,size=16M,direct=1", path);
	if (!disk)
		return;
	lbs = bdev_logical_block_size(disk);
	CHECK_MSG(lbs >= 512 && !(lbs & (lbs - 1)), "lbs %u", lbs);
	test_write_verify(disk, 0, MB, 51, wbuf, rbuf);
	test_write_verify(disk, 3 * MB + lbs, 7 * lbs, 52, wbuf, rbuf);
	check_file(path, 3 * MB + lbs, 7 * lbs, 52);
	test_attr_show(disk, "dma_alignment", attr, sizeof(attr));
	if (strtoul(attr, NULL, 10)) {
		/* a misaligned buffer is refused before it reaches the file */
		n = blkdev_pread(disk, rbuf + 1, lbs, 0);
		CHECK_MSG(n == -EINVAL, "misaligned O_DIRECT buffer: %zd", n);
	}
	n = blkdev_pread(disk, rbuf, lbs / 2, 0);
	CHECK_MSG(lbs == 512 || n == -EINVAL, "half a block: %zd", n);
	test_dev_del(disk);
	unlink(path);
}

/* ---- hw queues, poll queues, SQPOLL ---- */

struct qthread {
	struct gendisk *disk;
	int cpu;
	unsigned int nr;
	unsigned int errors;
};

/* Keep 32 writes in flight from this thread's "CPU", in rounds of 256. */
static void *queue_thread(void *arg)
{
	struct qthread *q = arg;
	static char bufs[4][32][BLK] __attribute__((aligned(BLK)));
	uint64_t base = (uint64_t)q->cpu * 8 * MB;
	struct tio *t = malloc(sizeof(*t));

	if (!t)
		return NULL;
	blk_set_current_cpu(q->cpu);
	for (unsigned int i = 0; i < q->nr; i++) {
		char *b = bufs[q->cpu][i % 32];
		uint64_t off = base + (uint64_t)(i % 2048) * BLK;
		unsigned int k = i % 256;

		if (k == 0)
			tio_init(t);
		/* the buffer's previous write is done before it is refilled */
		while (k >= 32 && !atomic_load(&t->req[k - 32].done))
			if (!tio_wait(t, tio_done(t) + 1, 5000))
				break;
		test_fill(b, BLK, 61 + (uint64_t)q->cpu, off);
		tio_submit(t, q->disk, REQ_OP_WRITE, off >> SECTOR_SHIFT, b,
			   BLK);
		if (k == 255 || i == q->nr - 1) {
			tio_wait(t, t->nr, 10000);
			q->errors += t->errors + (t->done != t->nr);
			tio_destroy(t);
		}
	}
	free(t);
	blk_set_current_cpu(-1);
	return NULL;
}

static void test_queues(void)
{
	char path[128], *dump = NULL;
	struct qthread q[4];
	pthread_t th[4];
	struct gendisk *disk;
	size_t len = 0;
	FILE *f;

	test_begin("queues=4 from 4 threads", 30);
	snprintf(path, sizeof(path), "%s/queues.img", tmpdirs[1]);
	disk = uring_add("uqueues", "path=%s,size=32M,queues=4,depth=16",
			 path);
	if (!disk)
		return;
	for (int i = 0; i < 4; i++) {
		q[i] = (struct qthread){ .disk = disk, .cpu = i,
					 .nr = test_scale(2000) };
		pthread_create(&th[i], NULL, queue_thread, &q[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_MSG(q[i].errors == 0, "thread %d: %u errors", i,
			  q[i].errors);
	}
	/* each thread's last 2048 blocks (or fewer) hold its pattern */
	for (int i = 0; i < 4; i++) {
		uint64_t base = (uint64_t)i * 8 * MB;
		size_t n = (size_t)min(q[i].nr, 2048U) * BLK;

		CHECK(blkdev_pread(disk, rbuf, n, (off_t)base) == (ssize_t)n);
		CHECK_MSG(test_verify(rbuf, n, 61 + (uint64_t)i, base) < 0,
			  "thread %d: data differs", i);
	}
	/* every ring did work */
	f = open_memstream(&dump, &len);
	blk_mq_debug_dump(disk, f);
	fclose(f);
	for (int i = 0; i < 4; i++) {
		char key[32], *p;

		snprintf(key, sizeof(key), "ring=%d completed=", i);
		p = dump ? strstr(dump, key) : NULL;
		CHECK_MSG(p && strtoul(p + strlen(key), NULL, 10) > 0,
			  "ring %d completed nothing", i);
	}
	free(dump);
	test_dev_del(disk);
	unlink(path);
}

static void polled_end(struct bio *bio)
{
	atomic_store((_Atomic int *)bio->bi_private,
		     blk_status_to_errno(bio->bi_status) - 1);
	bio_put(bio);
}

/* One REQ_POLLED bio, completed only by polling; its -errno. */
static int polled_io(struct gendisk *disk, blk_opf_t opf, off_t off,
		     void *buf, unsigned int len, unsigned long *polls)
{
	struct bio *bio = bio_alloc(disk, 1, opf | REQ_POLLED);
	_Atomic int ret = 1;	/* stays 1 until done; then errno - 1 */
	uint64_t deadline = test_now_ns() + 5000000000ULL;

	if (buf)
		bio_add_buf(bio, buf, len);
	else
		bio->bi_iter.bi_size = len;
	bio->bi_iter.bi_sector = (sector_t)off >> SECTOR_SHIFT;
	bio->bi_end_io = polled_end;
	bio->bi_private = (void *)&ret;
	submit_bio(bio);
	while (atomic_load(&ret) == 1 && test_now_ns() < deadline) {
		blkdev_poll(disk);
		(*polls)++;
	}
	return atomic_load(&ret) == 1 ? -ETIMEDOUT : atomic_load(&ret) + 1;
}

static void test_poll_queues(void)
{
	char path[128];
	struct gendisk *disk;
	unsigned long polls = 0;
	int ret;

	test_begin("poll_queues=1", 30);
	snprintf(path, sizeof(path), "%s/poll.img", tmpdirs[0]);
	disk = uring_add("upoll", "path=%s,size=16M,direct=1,poll_queues=1",
			 path);
	if (!disk)
		return;
	for (int i = 0; i < 64; i++) {
		test_fill(wbuf, BLK, 71, (uint64_t)i * BLK);
		ret = polled_io(disk, REQ_OP_WRITE, i * BLK, wbuf, BLK, &polls);
		CHECK_MSG(ret == 0, "polled write %d: %d", i, ret);
		memset(rbuf, 0, BLK);
		ret = polled_io(disk, REQ_OP_READ, i * BLK, rbuf, BLK, &polls);
		CHECK_MSG(ret == 0 && test_verify(rbuf, BLK, 71,
						  (uint64_t)i * BLK) < 0,
			  "polled read %d: %d", i, ret);
	}
	/* writes at least complete only when polled (reads go to a default
	 * ring when the kernel refuses to poll them, as on this VM) */
	CHECK_MSG(polls >= 64, "completed without polling (%lu polls)", polls);
	/* data-less commands on a poll queue: done synchronously */
	ret = polled_io(disk, REQ_OP_DISCARD, 0, NULL, BLK, &polls);
	CHECK_MSG(ret == 0, "polled discard: %d", ret);
	CHECK(blkdev_pread(disk, rbuf, BLK, 0) == BLK && test_is_zero(rbuf, BLK));
	/* and the default queue still works beside it */
	test_write_verify(disk, MB, MB, 72, wbuf, rbuf);
	test_dev_del(disk);
	unlink(path);
}

static void test_sqpoll(void)
{
	char path[128];
	struct gendisk *disk;

	test_begin("sqpoll=1", 30);
	snprintf(path, sizeof(path), "%s/sqpoll.img", tmpdirs[0]);
	disk = uring_add("usqpoll", "path=%s,size=16M,sqpoll=1,fixed_files=1",
			 path);
	if (!disk)
		return;
	test_write_verify(disk, 0, 2 * MB, 81, wbuf, rbuf);
	test_write_verify(disk, 5 * MB + 512, 9 * 512, 82, wbuf, rbuf);
	CHECK(blkdev_flush(disk) == 0);
	check_file(path, 0, 2 * MB, 81);
	test_dev_del(disk);

	disk = uring_add("unofixed", "path=%s,fixed_files=0,depth=1", path);
	if (disk) {
		/* depth 1: every request waits for the one before */
		test_write_verify(disk, 0, 2 * MB, 83, wbuf, rbuf);
		test_dev_del(disk);
	}
	unlink(path);
}

/* ---- bad input ---- */

static void expect_bad(const char *params, const char *what)
{
	struct gendisk *disk = NULL;
	int ret = blkstack_dev_add("uring", "ubad", params, &disk);

	CHECK_MSG(ret < 0, "'%s' accepted", params);
	CHECK_MSG(strstr(blkstack_errmsg(), what), "'%s': message '%s' "
		  "does not mention '%s'", params, blkstack_errmsg(), what);
	if (!ret)
		test_dev_del(disk);
	CHECK_MSG(!blk_get_disk("ubad"), "'%s' left a device", params);
}

static void test_bad_params(void)
{
	char p[256], file[128], dir[128], missing[128];
	struct stat st;
	int fd;

	test_begin("bad parameters", 10);
	snprintf(file, sizeof(file), "%s/small.img", tmpdirs[0]);
	snprintf(dir, sizeof(dir), "%s", tmpdirs[0]);
	snprintf(missing, sizeof(missing), "%s/missing.img", tmpdirs[0]);
	fd = open(file, O_RDWR | O_CREAT, 0644);
	REQUIRE(fd >= 0 && ftruncate(fd, 8192) == 0);
	close(fd);

	expect_bad("", "path= is required");
	expect_bad("size=1M", "path= is required");
	snprintf(p, sizeof(p), "path=%s,colour=blue", file);
	expect_bad(p, "unknown parameter 'colour'; valid: path, size");
	snprintf(p, sizeof(p), "path=%s,depth", file);
	expect_bad(p, "key=value");
	snprintf(p, sizeof(p), "path=%s,size=lots", file);
	expect_bad(p, "size=lots");
	snprintf(p, sizeof(p), "path=%s,depth=0", file);
	expect_bad(p, "depth=0: valid values are 1..4096");
	snprintf(p, sizeof(p), "path=%s,queues=0", file);
	expect_bad(p, "queues=0: valid values are 1..64");
	snprintf(p, sizeof(p), "path=%s,direct=2", file);
	expect_bad(p, "direct=2: valid values are 0..1");
	snprintf(p, sizeof(p), "path=%s,sqpoll=yes", file);
	expect_bad(p, "sqpoll=yes");
	snprintf(p, sizeof(p), "path=%s,poll_queues=1", file);
	expect_bad(p, "poll_queues=1 needs direct=1");
	snprintf(p, sizeof(p), "path=%s,readonly=1,size=1M", file);
	expect_bad(p, "holds only 8192 bytes");
	snprintf(p, sizeof(p), "path=%s", dir);
	expect_bad(p, "not a regular file or a block device");
	snprintf(p, sizeof(p), "path=%s", missing);
	expect_bad(p, "does not exist");
	/* the file would be made, but the device is empty: nothing stays */
	snprintf(p, sizeof(p), "path=%s,size=100", missing);
	expect_bad(p, "is empty");
	CHECK_MSG(stat(missing, &st) && errno == ENOENT,
		  "a failed create left %s behind", missing);
	/* a bad key after a good size: the file is not made either */
	snprintf(p, sizeof(p), "path=%s,size=1M,depth=99999", missing);
	expect_bad(p, "depth=99999");
	CHECK_MSG(stat(missing, &st) && errno == ENOENT,
		  "a refused create made %s", missing);
	/* nothing grew the existing file */
	CHECK_MSG(stat(file, &st) == 0 && st.st_size == 8192,
		  "%s changed size", file);
	unlink(file);
}

/* readonly=1 and a size= below the file's: a read-only window on it. */
static void test_readonly(void)
{
	char path[128], attr[32];
	struct gendisk *disk;
	struct stat st;
	ssize_t n;

	test_begin("readonly=1, size below the file", 10);
	snprintf(path, sizeof(path), "%s/ro.img", tmpdirs[0]);
	disk = uring_add("urw", "path=%s,size=4M", path);
	if (!disk)
		return;
	test_write_verify(disk, 0, 4 * MB, 101, wbuf, rbuf);
	test_dev_del(disk);
	disk = uring_add("uro", "path=%s,readonly=1,size=2M", path);
	if (!disk)
		return;
	CHECK_EQ_U64(get_capacity(disk), (2 * MB) >> SECTOR_SHIFT);
	CHECK(bdev_read_only(disk));
	CHECK_MSG(blkdev_pread(disk, rbuf, 2 * MB, 0) == 2 * MB &&
		  test_verify(rbuf, 2 * MB, 101, 0) < 0, "read-only read");
	n = blkdev_pwrite(disk, wbuf, BLK, 0);
	CHECK_MSG(n < 0, "write to a read-only device: %zd", n);
	test_attr_show(disk, "discard_max_bytes", attr, sizeof(attr));
	CHECK_MSG(!strcmp(attr, "0"), "read-only device discards: %s", attr);
	test_dev_del(disk);
	/* the file is as it was: 4 MiB, the data intact */
	CHECK(stat(path, &st) == 0 && st.st_size == 4 * MB);
	check_file(path, 0, 4 * MB, 101);
	unlink(path);
}

/* ---- removal ---- */

static void test_remove_inflight(void)
{
	char path[128];
	struct gendisk *disk;
	unsigned int nr = test_scale(256);
	struct tio t;

	test_begin("removal with I/O in flight", 30);
	snprintf(path, sizeof(path), "%s/remove.img", tmpdirs[0]);
	disk = uring_add("uremove", "path=%s,size=64M,queues=2,depth=64",
			 path);
	if (!disk)
		return;
	tio_init(&t);
	for (unsigned int i = 0; i < nr; i++)
		tio_submit(&t, disk, REQ_OP_WRITE,
			   ((uint64_t)i * 128 * 1024) >> SECTOR_SHIFT,
			   wbuf + (i % 16) * 128 * 1024, 128 * 1024);
	CHECK_MSG(blkstack_dev_del("uremove") == 0, "del: %s",
		  blkstack_errmsg());
	/* every I/O ended exactly once, some perhaps with an error */
	CHECK_MSG(tio_wait(&t, nr, 10000), "%u of %u I/Os ended", tio_done(&t),
		  nr);
	for (unsigned int i = 0; i < nr; i++)
		CHECK_MSG(t.req[i].calls == 1, "I/O %u ended %u times", i,
			  t.req[i].calls);
	tio_destroy(&t);
	blk_put_disk(disk);
	unlink(path);
}

/* ---- a block device ---- */

static bool run(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	bool ok;

	if (!f)
		return false;
	ok = fgets(out, (int)len, f) != NULL;
	ok = (pclose(f) == 0) && ok;
	out[strcspn(out, "\n")] = 0;
	return ok;
}

static void test_loop_device(void)
{
	char cmd[512], loop[64] = "", path[128];
	struct gendisk *disk;
	struct loop_info64 info;
	char attr[32];
	int ret, lfd;

	test_begin("block device (loop)", 30);
	snprintf(path, sizeof(path), "%s/loop.img", tmpdirs[0]);
	snprintf(cmd, sizeof(cmd), "truncate -s 32M '%s' && "
		 "losetup -f --show '%s' 2>/dev/null", path, path);
	if (!run(cmd, loop, sizeof(loop)) || strncmp(loop, "/dev/loop", 9)) {
		printf("SKIP: block device case: losetup could not attach a "
		       "loop device\n");
		unlink(path);
		return;
	}
	/* autoclear: a test killed half-way leaves no loop device behind */
	lfd = open(loop, O_RDONLY | O_CLOEXEC);
	if (lfd >= 0 && !ioctl(lfd, LOOP_GET_STATUS64, &info)) {
		info.lo_flags |= LO_FLAGS_AUTOCLEAR;
		CHECK_MSG(!ioctl(lfd, LOOP_SET_STATUS64, &info),
			  "%s: autoclear: %s", loop, strerror(errno));
	}
	snprintf(cmd, sizeof(cmd), "path=%s,size=64M", loop);
	expect_bad(cmd, "holds only");
	disk = uring_add("uloop", "path=%s", loop);
	if (disk) {
		CHECK_EQ_U64(get_capacity(disk), (32 * MB) >> SECTOR_SHIFT);
		test_write_verify(disk, 0, 2 * MB, 91, wbuf, rbuf);
		test_write_verify(disk, 31 * MB, MB, 92, wbuf, rbuf);
		CHECK(blkdev_flush(disk) == 0);
		check_file(loop, 0, 2 * MB, 91);
		ret = blkdev_write_zeroes(disk, 0, MB);
		CHECK_MSG(ret == 0, "write zeroes: %d %s", ret,
			  blkstack_errmsg());
		CHECK(blkdev_pread(disk, rbuf, MB, 0) == MB &&
		      test_is_zero(rbuf, MB));
		test_attr_show(disk, "discard_max_bytes", attr, sizeof(attr));
		if (strtoull(attr, NULL, 10)) {
			/* BLKDISCARD on kblockd; loop punches a hole */
			ret = blkdev_discard(disk, MB, MB);
			CHECK_MSG(ret == 0, "discard: %d %s", ret,
				  blkstack_errmsg());
			CHECK(blkdev_pread(disk, rbuf, MB, MB) == MB);
			CHECK_MSG(test_is_zero(rbuf, MB),
				  "loop: discarded range not zero");
		} else {
			printf("note: %s has no discard\n", loop);
		}
		test_dev_del(disk);
	}
	if (lfd >= 0)
		close(lfd);	/* the last close detaches it (autoclear) */
	/* usually already gone; a failure here means it was */
	snprintf(cmd, sizeof(cmd), "losetup -d %s 2>/dev/null || true", loop);
	if (system(cmd))
		fprintf(stderr, "could not run: %s\n", cmd);
	unlink(path);
}

int main(void)
{
	test_init(4);
	/* a closed stdout (| head) must not kill it before the clean-up */
	signal(SIGPIPE, SIG_IGN);
	make_dirs();
	for (int fs = 0; fs < 2; fs++) {
		test_file(fs);
		test_direct(fs);
	}
	test_queues();
	test_poll_queues();
	test_sqpoll();
	test_bad_params();
	test_readonly();
	test_remove_inflight();
	test_loop_device();
	remove_dirs();
	return test_report();
}
