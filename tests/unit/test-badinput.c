// SPDX-License-Identifier: MIT
/*
 * Bad input at every entry point: a -errno, a blkstack_errmsg() that names
 * the problem and the valid values, and nothing changed (no device made,
 * the attribute keeps its value, the data stays, nothing leaked).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

/*
 * @ret must be @want (any negative if @want is 0) and the message must
 * contain each of the NULL-terminated strings.
 */
static bool expect_err_(const char *what, long ret, long want, ...)
{
	const char *msg = blkstack_errmsg();
	const char *s;
	bool ok = true;
	va_list ap;

	if (want)
		ok &= CHECK_MSG(ret == want, "%s: returned %ld, want %ld (%s)",
				what, ret, want, msg);
	else
		ok &= CHECK_MSG(ret < 0, "%s: returned %ld, want an error",
				what, ret);
	ok &= CHECK_MSG(msg && *msg, "%s: no error message", what);
	va_start(ap, want);
	while ((s = va_arg(ap, const char *)))
		ok &= CHECK_MSG(msg && strstr(msg, s),
				"%s: message '%s' does not mention '%s'", what,
				msg ? msg : "", s);
	va_end(ap);
	return ok;
}

#define expect_err(...) expect_err_(__VA_ARGS__, NULL)

static int count_one(struct gendisk *disk, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int nr_devices(void)
{
	int n = 0;

	blkstack_dev_for_each(count_one, &n);
	return n;
}

/* ---- blkstack_dev_add ---- */

static void bad_add(const char *driver, const char *name, const char *params,
		    long want, const char *m1, const char *m2)
{
	struct gendisk *disk = (struct gendisk *)0x1;
	char what[160];
	int before = nr_devices();
	int ret;

	snprintf(what, sizeof(what), "add %s '%s' (%s)",
		 driver ? driver : "NULL", name ? name : "NULL",
		 params ? params : "NULL");
	ret = blkstack_dev_add(driver, name, params, &disk);
	expect_err(what, ret, want, m1, m2, NULL);
	CHECK_MSG(disk == (struct gendisk *)0x1,
		  "%s: *diskp written on failure", what);
	CHECK_MSG(nr_devices() == before, "%s: a device was left behind", what);
	if (name && *name && strcmp(name, "dup")) {
		struct gendisk *found = blk_get_disk(name);

		CHECK_MSG(!found, "%s: the name resolves", what);
		blk_put_disk(found);
	}
}

/* null_blk parameters refused with -EINVAL; words the message must name */
static const struct {
	const char *params, *m1, *m2;
} bad_null_params[] = {
	{ "foo=1", "foo", "irqmode" },
	{ "irqmode", "key=value", "irqmode" },
	{ "irqmode=3", "irqmode", "0..2" },
	{ "irqmode=-1", "irqmode", "0..2" },
	{ "irqmode=1x", "irqmode", "0..2" },
	{ "bs=1000", "bs", "power of two" },
	{ "bs=8192", "bs", "512..4096" },
	{ "size=0", "size", "MiB" },
	{ "size=abc", "size=abc", "G" },
	{ "size=-4", "size", "G" },
	{ "size=1X", "size", "G" },
	{ "queue_mode=1", "queue_mode", "2" },
	{ "queue_mode=3", "queue_mode", "0..2" },
	{ "cache_size=4", "cache_size", "memory_backed" },
	{ "badblocks=garbage", "badblocks", "START-END" },
	{ "badblocks=10-5", "badblocks", "START-END" },
	{ "badblocks=1-2:x", "badblocks", "START-END" },
	{ "submit_queues=0", "submit_queues", "1.." },
	{ "hw_queue_depth=0", "hw_queue_depth", "1.." },
	{ "hw_queue_depth=abc", "hw_queue_depth", "1.." },
	{ "memory_backed=2", "memory_backed", "0..1" },
	{ "irqmode=0,,foo", "foo", NULL },
};

static void test_dev_add(void)
{
	struct gendisk *disk;
	char longname[64];

	test_begin("blkstack_dev_add", 10);
	bad_add("nosuch", "x1", "", -EINVAL, "nosuch", "null");
	bad_add(NULL, "x1", "", -EINVAL, "driver", "null");
	for (size_t i = 0; i < ARRAY_SIZE(bad_null_params); i++)
		bad_add("null", "x1", bad_null_params[i].params, -EINVAL,
			bad_null_params[i].m1, bad_null_params[i].m2);

	/* names */
	bad_add("null", "a/b", "", -EINVAL, "a/b", "'/'");
	bad_add("null", "a b", "", -EINVAL, "a b", "spaces");
	memset(longname, 'n', 40);
	longname[40] = '\0';
	bad_add("null", longname, "", -EINVAL, "characters", NULL);
	bad_add("null", "a/b", "shared_tags=1,memory_backed=1", -EINVAL, "a/b",
		NULL);
	bad_add("null", "a/b", "queue_mode=0", -EINVAL, "a/b", NULL);

	/* a duplicate leaves the first one alone */
	disk = test_null_add("dup", "size=16,memory_backed=1,irqmode=0");
	if (disk) {
		char w[4096], r[4096];

		bad_add("null", "dup", "size=32", -EEXIST, "dup", "exists");
		CHECK_MSG(get_capacity(disk) == 16 * 2048,
			  "the first dup's size changed to %llu sectors",
			  (unsigned long long)get_capacity(disk));
		test_write_verify(disk, 0, sizeof(w), 1, w, r);
		test_dev_del(disk);
	}

	/* no name: one is made up */
	disk = NULL;
	CHECK_MSG(blkstack_dev_add("null", "", "size=16", &disk) == 0,
		  "add with no name: %s", blkstack_errmsg());
	if (disk) {
		CHECK_MSG(!strncmp(blk_disk_name(disk), "nullb", 5),
			  "made-up name '%s'", blk_disk_name(disk));
		test_dev_del(disk);
	}

	expect_err("delete a missing device", blkstack_dev_del("missing"),
		   -ENODEV, "missing", NULL);
	CHECK_MSG(blk_get_disk("missing") == NULL, "blk_get_disk of a missing "
		  "name");
	expect_err("blk_get_disk of a missing name", -ENODEV, -ENODEV,
		   "missing", NULL);
}

/* ---- queue attributes ---- */

static void bad_store(struct gendisk *disk, const char *attr, const char *val,
		      long want, const char *m1, const char *m2)
{
	char before[256], after[256], what[160];
	int ret;

	snprintf(what, sizeof(what), "store %s='%s'", attr, val);
	if (blk_queue_attr_show(disk, attr, before, sizeof(before)) < 0)
		before[0] = '\0';
	ret = blk_queue_attr_store(disk, attr, val);
	expect_err(what, ret, want, m1, m2, NULL);
	if (!before[0])
		return;
	CHECK_MSG(blk_queue_attr_show(disk, attr, after, sizeof(after)) >= 0 &&
		  !strcmp(before, after), "%s: the value changed from '%s' to "
		  "'%s' on a failed store", what, before, after);
}

static void test_attrs(void)
{
	struct gendisk *disk;
	char buf[256];

	test_begin("queue attributes", 10);
	disk = test_null_add("attrs", "size=16,irqmode=0,hw_queue_depth=64,"
			     "memory_backed=1");
	if (!disk)
		return;
	bad_store(disk, "nosuch", "1", -ENOENT, "nosuch", "nomerges");
	expect_err("show nosuch", blk_queue_attr_show(disk, "nosuch", buf,
						      sizeof(buf)),
		   -ENOENT, "nosuch", NULL);
	bad_store(disk, "max_hw_sectors_kb", "4", 0, "max_hw_sectors_kb",
		  "read-only");
	bad_store(disk, "logical_block_size", "4096", 0, "logical_block_size",
		  "read-only");

	bad_store(disk, "nomerges", "3", -EINVAL, "nomerges", "0..2");
	bad_store(disk, "nomerges", "abc", -EINVAL, "nomerges", "0..2");
	bad_store(disk, "nomerges", "-1", -EINVAL, "nomerges", "0..2");
	bad_store(disk, "nomerges", "", -EINVAL, "nomerges", "0..2");
	bad_store(disk, "nomerges", "1 2", -EINVAL, "nomerges", "0..2");
	test_attr_store(disk, "nomerges", "2");
	bad_store(disk, "nomerges", "7", -EINVAL, "nomerges", "0..2");
	test_attr_store(disk, "nomerges", "0");

	bad_store(disk, "max_sectors_kb", "1", -EINVAL, "max_sectors_kb",
		  "4..");
	bad_store(disk, "max_sectors_kb", "99999999", -EINVAL,
		  "max_sectors_kb", "4..");
	bad_store(disk, "max_sectors_kb", "abc", -EINVAL, "max_sectors_kb",
		  NULL);
	bad_store(disk, "max_sectors_kb", "-8", -EINVAL, "max_sectors_kb",
		  NULL);
	test_attr_store(disk, "max_sectors_kb", "64");
	CHECK_MSG(!strcmp(test_attr_show(disk, "max_sectors_kb", buf,
					 sizeof(buf)),
			  "64"),
		  "max_sectors_kb %s", buf);
	bad_store(disk, "max_sectors_kb", "2", -EINVAL, "max_sectors_kb",
		  "4..");

	bad_store(disk, "nr_requests", "abc", -EINVAL, "nr_requests", NULL);
	bad_store(disk, "nr_requests", "99999", -EINVAL, "nr_requests", NULL);
	bad_store(disk, "nr_requests", "100", -EINVAL, "nr_requests", "64");

	bad_store(disk, "scheduler", "nosuch", -EINVAL, "nosuch", "none");
	bad_store(disk, "scheduler", "", -EINVAL, "scheduler", "none");

	bad_store(disk, "write_cache", "maybe", -EINVAL, "write_cache",
		  "write back");
	bad_store(disk, "rotational", "2", -EINVAL, "rotational", "0..1");
	bad_store(disk, "rotational", "yes", -EINVAL, "rotational", "0..1");
	bad_store(disk, "iostats", "5", -EINVAL, "iostats", "0..1");
	bad_store(disk, "rq_affinity", "3", -EINVAL, "rq_affinity", "0..2");
	bad_store(disk, "io_timeout", "0", -EINVAL, "io_timeout", "1");
	bad_store(disk, "io_timeout", "abc", -EINVAL, "io_timeout", NULL);
	bad_store(disk, "io_timeout", "-5", -EINVAL, "io_timeout", NULL);
	bad_store(disk, "nr_hw_queues", "0", -EINVAL, "nr_hw_queues", "1..");
	bad_store(disk, "nr_hw_queues", "abc", -EINVAL, "nr_hw_queues", NULL);
	bad_store(disk, "nr_hw_queues", "5000", -EINVAL, "nr_hw_queues", NULL);
	bad_store(disk, "discard_max_bytes", "1000", -EINVAL,
		  "discard_max_bytes", "discard_granularity");
	bad_store(disk, "iosched/quantum", "1", 0, "quantum", NULL);

	/* the queue still works */
	{
		char w[8192], r[8192];

		test_write_verify(disk, 0, sizeof(w), 2, w, r);
	}
	test_dev_del(disk);
}

/* ---- I/O arguments ---- */

static int submit_called;

static void never_done(void *priv, int err)
{
	submit_called++;
}

static void test_io_args(void)
{
	struct gendisk *disk;
	char w[8192], r[8192], junk[8192];
	off_t cap;

	test_begin("I/O arguments", 10);
	disk = test_null_add("ioargs", "size=16,irqmode=0,memory_backed=1");
	if (!disk)
		return;
	cap = (off_t)get_capacity(disk) * 512;
	test_fill(w, sizeof(w), 3, 0);
	CHECK_MSG(blkdev_pwrite(disk, w, sizeof(w), 0) == sizeof(w), "fill");
	CHECK_MSG(blkdev_pwrite(disk, w, 4096, cap - 4096) == 4096, "fill end");
	memset(junk, 0x5a, sizeof(junk));

	expect_err("pread at offset 100", blkdev_pread(disk, r, 512, 100),
		   -EINVAL, "multiples", "512");
	expect_err("pwrite at offset 100", blkdev_pwrite(disk, junk, 512, 100),
		   -EINVAL, "multiples", "512");
	expect_err("pread of 100 bytes", blkdev_pread(disk, r, 100, 0),
		   -EINVAL, "multiples", "512");
	expect_err("pwrite of 1000 bytes", blkdev_pwrite(disk, junk, 1000, 0),
		   -EINVAL, "multiples", NULL);
	expect_err("pread at -512", blkdev_pread(disk, r, 512, -512), -EINVAL,
		   ">= 0", NULL);
	expect_err("pwrite at -512", blkdev_pwrite(disk, junk, 512, -512),
		   -EINVAL, ">= 0", NULL);
	expect_err("pread at the end", blkdev_pread(disk, r, 512, cap), 0,
		   "beyond", NULL);
	expect_err("pwrite across the end",
		   blkdev_pwrite(disk, junk, 8192, cap - 4096), 0, "beyond",
		   NULL);
	expect_err("pread far beyond", blkdev_pread(disk, r, 512,
						    (off_t)1 << 50),
		   0, "beyond", NULL);
	expect_err("pwrite of SIZE_MAX", blkdev_pwrite(disk, junk,
						       SIZE_MAX & ~511UL, 0),
		   0, NULL, NULL);
	expect_err("discard at 100", blkdev_discard(disk, 100, 4096), -EINVAL,
		   "multiples", NULL);
	expect_err("write_zeroes beyond", blkdev_write_zeroes(disk, cap, 4096),
		   0, "beyond", NULL);
	submit_called = 0;
	expect_err("submit at 100", blkdev_submit(disk, REQ_OP_READ, 100, r,
						  512, never_done, NULL),
		   -EINVAL, "multiples", NULL);
	expect_err("submit of 0 bytes", blkdev_submit(disk, REQ_OP_WRITE, 0, r,
						      0, never_done, NULL),
		   -EINVAL, "length", NULL);
	CHECK_MSG(submit_called == 0, "the callback ran for a refused submit");
	CHECK_MSG(blkdev_pread(disk, r, 0, 0) == 0, "a read of 0 bytes");

	/* nothing was written by the refused writes */
	CHECK_MSG(blkdev_pread(disk, r, sizeof(r), 0) == sizeof(r) &&
			  test_verify(r, sizeof(r), 3, 0) < 0,
		  "data changed by refused writes");
	CHECK_MSG(blkdev_pread(disk, r, 4096, cap - 4096) == 4096 &&
		  test_verify(r, 4096, 3, 0) < 0, "the last block changed");
	test_dev_del(disk);
}

/* ---- io contexts ---- */

static void test_ioc(void)
{
	struct io_context *ioc = ioc_create(1, IOPRIO_PRIO_VALUE(2, 4), 100,
					    "test");
	uint16_t prio;

	test_begin("io contexts", 10);
	REQUIRE_MSG(ioc, "ioc_create: %s", blkstack_errmsg());
	prio = ioc->ioprio;
	expect_err("ioprio class 4", ioc_set_ioprio(ioc, 4, 0), -EINVAL,
		   "class", "3");
	expect_err("ioprio class -1", ioc_set_ioprio(ioc, -1, 0), -EINVAL,
		   "class", NULL);
	expect_err("ioprio level 8", ioc_set_ioprio(ioc, 2, 8), -EINVAL,
		   "level", "0..7");
	expect_err("ioprio level -1", ioc_set_ioprio(ioc, 1, -1), -EINVAL,
		   "level", "0..7");
	CHECK_MSG(ioc->ioprio == prio, "ioprio changed by a refused set");
	CHECK_MSG(ioc_set_ioprio(ioc, IOPRIO_CLASS_RT, 0) == 0, "valid ioprio");
	CHECK_MSG(ioc->ioprio == IOPRIO_PRIO_VALUE(IOPRIO_CLASS_RT, 0),
		  "ioprio");
	expect_err("weight 1001", ioc_set_weight(ioc, 1001), -EINVAL,
		   "1..1000", NULL);
	expect_err("weight UINT_MAX", ioc_set_weight(ioc, 4294967295U),
		   -EINVAL, "1..1000", NULL);
	CHECK_MSG(ioc->weight == 100, "weight changed by a refused set: %u",
		  ioc->weight);
	CHECK_MSG(ioc_set_weight(ioc, 0) == 0 && ioc_set_weight(ioc, 1000) == 0,
		  "valid weights refused");
	put_io_context(ioc);
}

/* ---- CPU topology ---- */

static void test_topology(void)
{
	struct cpu_topology *before = malloc(sizeof(*before));
	struct cpu_topology *after = malloc(sizeof(*after));

	test_begin("CPU topology", 10);
	blk_cpu_topology_get(before);
	expect_err("topology of 0 CPUs", blk_cpu_topology_set(0, NULL),
		   -EINVAL, "1..1024", NULL);
	expect_err("topology of 2000 CPUs", blk_cpu_topology_set(2000, NULL),
		   -EINVAL, "2000", "1..1024");
	expect_err("topology of 1025 CPUs", blk_cpu_topology_set(1025, NULL),
		   -EINVAL, "1..1024", NULL);
	blk_cpu_topology_get(after);
	CHECK_MSG(after->nr_cpu_ids == before->nr_cpu_ids &&
		  !memcmp(&after->present, &before->present,
			  sizeof(after->present)), "a refused topology changed "
		  "the topology (%u -> %u CPUs)", before->nr_cpu_ids,
		  after->nr_cpu_ids);
	CHECK_MSG(blk_cpu_topology_set(1024, NULL) == 0, "1024 CPUs refused");
	blk_cpu_topology_reset();
	free(before);
	free(after);
}

/* ---- tag sets ---- */

static blk_status_t dummy_queue_rq(struct blk_mq_hw_ctx *hctx,
				   const struct blk_mq_queue_data *bd)
{
	return BLK_STS_IOERR;
}

static const struct blk_mq_ops dummy_ops = { .queue_rq = dummy_queue_rq };
static const struct blk_mq_ops no_queue_rq_ops = { .queue_rq = NULL };

static void bad_set(const char *what, const struct blk_mq_ops *ops,
		    unsigned int nr_hw, unsigned int depth,
		    unsigned int reserved, unsigned int nr_maps, const char *m1,
		    const char *m2)
{
	struct blk_mq_tag_set set = {
		.ops = ops,
		.nr_hw_queues = nr_hw,
		.queue_depth = depth,
		.reserved_tags = reserved,
		.nr_maps = nr_maps,
	};

	expect_err(what, blk_mq_alloc_tag_set(&set), -EINVAL, m1, m2, NULL);
	CHECK_MSG(set.tags == NULL && set.map[0].mq_map == NULL, "%s: memory "
		  "left in the set", what);
}

static void test_tag_set(void)
{
	struct blk_mq_tag_set set = {
		.ops = &dummy_ops, .nr_hw_queues = 1, .queue_depth = 4,
		.reserved_tags = 3,
	};

	test_begin("blk_mq_alloc_tag_set", 10);
	bad_set("no ops", NULL, 1, 8, 0, 0, "queue_rq", NULL);
	bad_set("no queue_rq", &no_queue_rq_ops, 1, 8, 0, 0, "queue_rq", NULL);
	bad_set("nr_hw_queues 0", &dummy_ops, 0, 8, 0, 0, "nr_hw_queues",
		"at least 1");
	bad_set("depth 0", &dummy_ops, 1, 0, 0, 0, "queue_depth", "1..");
	bad_set("depth 20000", &dummy_ops, 1, 20000, 0, 0, "queue_depth",
		"1..");
	bad_set("reserved == depth", &dummy_ops, 1, 8, 8, 0, "reserved_tags",
		"queue_depth");
	bad_set("reserved > depth", &dummy_ops, 1, 8, 9, 0, "reserved_tags",
		"queue_depth");
	bad_set("nr_maps 4", &dummy_ops, 1, 8, 0, 4, "nr_maps", "1..");
	/* the edge that is valid */
	CHECK_MSG(blk_mq_alloc_tag_set(&set) == 0,
		  "depth 4 with 3 reserved: %s", blkstack_errmsg());
	blk_mq_free_tag_set(&set);
}

int main(void)
{
	test_init(0);
	test_dev_add();
	test_attrs();
	test_io_args();
	test_ioc();
	test_topology();
	test_tag_set();
	return test_report();
}
