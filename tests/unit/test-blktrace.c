// SPDX-License-Identifier: MIT
/*
 * blktrace (block/blktrace*.c, docs/blktrace.md): the binary record byte
 * for byte, categories, filters, process/timestamp/message notes, drops
 * with tiny buffers, the merged stream, live text, stage statistics, and
 * every order of control calls across the ioctl-style and sysfs paths
 * (seed 000: enable then disable through sysfs), also with I/O running on
 * several threads and with the device removed while tracing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blkstack/blktrace.h>

#include "block/blk.h"
#include "block/blk-trace.h"
#include "block/blktrace-priv.h"
#include "lib/thread-slot.h"
#include "testlib.h"

#define BLK 4096

static char buf[1 << 20];

/* A failed precondition ends the program (usable in any function). */
#define MUST(cond)                                   \
	do {                                         \
		if (!CHECK(cond))                    \
			exit(test_report() ? 1 : 1); \
	} while (0)

/* The record layout is an interface: blkparse reads these offsets. */
_Static_assert(sizeof(struct blk_io_trace) == 48, "blk_io_trace size");
_Static_assert(offsetof(struct blk_io_trace, time) == 8, "time");
_Static_assert(offsetof(struct blk_io_trace, sector) == 16, "sector");
_Static_assert(offsetof(struct blk_io_trace, bytes) == 24, "bytes");
_Static_assert(offsetof(struct blk_io_trace, action) == 28, "action");
_Static_assert(offsetof(struct blk_io_trace, pid) == 32, "pid");
_Static_assert(offsetof(struct blk_io_trace, device) == 36, "device");
_Static_assert(offsetof(struct blk_io_trace, cpu) == 40, "cpu");
_Static_assert(offsetof(struct blk_io_trace, error) == 44, "error");
_Static_assert(offsetof(struct blk_io_trace, pdu_len) == 46, "pdu_len");

/* ---- reading traces back ---- */

struct rec {
	struct blk_io_trace t;
	unsigned char pdu[256];
};

struct recs {
	struct rec *r;
	unsigned int n, max;
};

static void recs_free(struct recs *rs)
{
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
}

/*
 * Read @len bytes, or fewer at end of file. A pipe gives what is in it
 * now: a stream's writer still at work may have put in part of a record.
 */
static ssize_t read_full(int fd, void *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Append the records of one file or stream; false on a torn record. */
static bool recs_read_fd(struct recs *rs, int fd)
{
	struct rec r;

	for (;;) {
		ssize_t n = read_full(fd, &r.t, sizeof(r.t));

		if (n == 0)
			return true;
		if (!CHECK_MSG(n == sizeof(r.t), "torn header: %zd", n))
			return false;
		if (!CHECK_MSG(r.t.magic == (BLK_IO_TRACE_MAGIC |
					     BLK_IO_TRACE_VERSION),
			       "magic %#x", r.t.magic))
			return false;
		if (!CHECK(r.t.pdu_len <= sizeof(r.pdu)))
			return false;
		if (r.t.pdu_len &&
		    !CHECK(read_full(fd, r.pdu, r.t.pdu_len) == r.t.pdu_len))
			return false;
		if (rs->n == rs->max) {
			rs->max = rs->max ? rs->max * 2 : 256;
			rs->r = realloc(rs->r, rs->max * sizeof(*rs->r));
			MUST(rs->r);
		}
		rs->r[rs->n++] = r;
	}
}

/* Every <dev>.blktrace.<cpu> of @dir, numbered from 0 without a gap. */
static unsigned int recs_read_dir(struct recs *rs, const char *dir,
				  const char *dev)
{
	unsigned int cpu;
	char path[512];

	for (cpu = 0;; cpu++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s.blktrace.%u", dir, dev,
			 cpu);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			break;
		recs_read_fd(rs, fd);
		close(fd);
	}
	return cpu;
}

static unsigned int recs_count(const struct recs *rs, uint32_t act)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < rs->n; i++)
		if ((rs->r[i].t.action & 0xffff) == act &&
		    !(rs->r[i].t.action & BLK_TC_ACT(BLK_TC_NOTIFY)))
			n++;
	return n;
}

static const struct rec *recs_find(const struct recs *rs, uint32_t act,
				   uint64_t sector)
{
	for (unsigned int i = 0; i < rs->n; i++)
		if ((rs->r[i].t.action & 0xffff) == act &&
		    !(rs->r[i].t.action & BLK_TC_ACT(BLK_TC_NOTIFY)) &&
		    rs->r[i].t.sector == sector)
			return &rs->r[i];
	return NULL;
}

static const struct rec *recs_note(const struct recs *rs, uint32_t action)
{
	for (unsigned int i = 0; i < rs->n; i++)
		if (rs->r[i].t.action == action)
			return &rs->r[i];
	return NULL;
}

static const struct rec *recs_note_pid(const struct recs *rs, uint32_t pid)
{
	for (unsigned int i = 0; i < rs->n; i++)
		if (rs->r[i].t.action == BLK_TN_PROCESS &&
		    rs->r[i].t.pid == pid)
			return &rs->r[i];
	return NULL;
}

/* blkparse's rule: per CPU, sequences 1, 2, 3... in time order. */
static void check_sequences(const struct recs *rs)
{
	static uint32_t seq[BLK_MAX_CPUS];
	static uint64_t last[BLK_MAX_CPUS];

	memset(seq, 0, sizeof(seq));
	memset(last, 0, sizeof(last));
	for (unsigned int i = 0; i < rs->n; i++) {
		const struct blk_io_trace *t = &rs->r[i].t;

		if (t->action & BLK_TC_ACT(BLK_TC_NOTIFY))
			continue;
		if (!CHECK(t->cpu < BLK_MAX_CPUS))
			return;
		if (!CHECK_MSG(t->sequence == seq[t->cpu] + 1,
			       "cpu %u: sequence %u after %u", t->cpu,
			       t->sequence, seq[t->cpu]) ||
		    !CHECK_MSG(t->time >= last[t->cpu],
			       "cpu %u: time goes back", t->cpu))
			return;
		seq[t->cpu] = t->sequence;
		last[t->cpu] = t->time;
	}
}

static void tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/blktrace-test-XXXXXX");
	MUST(mkdtemp(dir));
}

static void rmdir_all(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static uint32_t devt(struct gendisk *disk)
{
	int major, minor;

	blk_disk_devt(disk, &major, &minor);
	return ((uint32_t)major << 20) | (uint32_t)minor;
}

static int setup_dir(struct gendisk *disk, const char *dir, uint16_t mask)
{
	struct blk_trace_setup buts;

	blk_trace_setup_init(&buts);
	buts.dir = dir;
	buts.act_mask = mask;
	return blk_trace_setup(disk, &buts);
}

/* A fresh directory and null device @name, traced into it from now on. */
static struct gendisk *traced_null(const char *name, char *dir, size_t len)
{
	struct gendisk *disk;

	tmpdir(dir, len);
	disk = test_null_add(name, "size=64,irqmode=0");
	MUST(disk);
	MUST(setup_dir(disk, dir, 0) == 0);
	MUST(blk_trace_start(disk) == 0);
	return disk;
}

/* ---- the record ---- */

static void test_record_format(void)
{
	struct gendisk *disk;
	struct io_context *ioc;
	struct recs rs = { 0 };
	const struct rec *q, *c, *p, *m;
	char dir[64];

	test_begin("record format", 20);
	tmpdir(dir, sizeof(dir));
	disk = test_null_add("bt0", "size=64,irqmode=0");
	ioc = ioc_create(4242, IOPRIO_DEFAULT, 0, "fio");
	MUST(disk && ioc);
	MUST(setup_dir(disk, dir, 0) == 0);
	MUST(blk_trace_start(disk) == 0);
	blk_set_current_ioc(ioc);
	CHECK(test_bio_sync(disk, REQ_OP_READ, 8, buf, BLK) == 0);
	blk_set_current_ioc(NULL);
	CHECK(blk_trace_msg(disk, "hello %d", 42) == 0);
	CHECK(blk_trace_teardown(disk) == 0);
	recs_read_dir(&rs, dir, "bt0");
	check_sequences(&rs);

	q = recs_find(&rs, __BLK_TA_QUEUE, 8);
	c = recs_find(&rs, __BLK_TA_COMPLETE, 8);
	if (CHECK_MSG(q && c, "Q and C at sector 8")) {
		CHECK_EQ_U64(q->t.bytes, BLK);
		CHECK_EQ_U64(q->t.action,
			     BLK_TA_QUEUE | BLK_TC_ACT(BLK_TC_READ));
		CHECK_EQ_U64(q->t.pid, 4242);
		CHECK_EQ_U64(q->t.device, devt(disk));
		CHECK_EQ_U64(q->t.pdu_len, 0);
		CHECK_EQ_U64(c->t.action, BLK_TA_COMPLETE |
						  BLK_TC_ACT(BLK_TC_READ) |
						  BLK_TC_ACT(BLK_TC_FS));
		CHECK_EQ_U64(c->t.error, 0);
		CHECK_EQ_U64(c->t.bytes, BLK);
		CHECK(c->t.time >= q->t.time);
	}
	CHECK_MSG(recs_find(&rs, __BLK_TA_GETRQ, 8), "G");
	CHECK_MSG(recs_find(&rs, __BLK_TA_ISSUE, 8), "D");
	p = recs_note_pid(&rs, 4242);
	if (CHECK_MSG(p, "process note")) {
		CHECK_EQ_U64(p->t.pdu_len, 16);
		CHECK(!strcmp((const char *)p->pdu, "fio"));
		CHECK_MSG(q && p < q && p->t.cpu == q->t.cpu,
			  "the note comes before the first event, same file");
	}
	CHECK_MSG(recs_note(&rs, BLK_TN_TIMESTAMP), "timestamp note");
	m = recs_note(&rs, BLK_TN_MESSAGE);
	if (CHECK_MSG(m, "message note"))
		CHECK(m->t.pdu_len == 8 && !memcmp(m->pdu, "hello 42", 8));
	recs_free(&rs);
	put_io_context(ioc);
	test_dev_del(disk);
	rmdir_all(dir);
}

/*
 * One thread issuing for two processes in turn (A, B, A, B) names each
 * of them once per trace, and a second trace on the same device names
 * them again: the pids named are kept per ring, and a new
 * trace has new rings.
 */
static void test_process_notes(void)
{
	struct io_context *ioc[2];
	struct gendisk *disk;
	struct recs rs = { 0 };
	char dir[64];

	test_begin("process notes, issuers in turn, two traces", 12);
	tmpdir(dir, sizeof(dir));
	disk = test_null_add("bt0", "size=64,irqmode=0");
	ioc[0] = ioc_create(5151, IOPRIO_DEFAULT, 0, "fio");
	ioc[1] = ioc_create(5252, IOPRIO_DEFAULT, 0, "dd");
	MUST(disk && ioc[0] && ioc[1]);
	for (int trace = 0; trace < 2; trace++) {
		unsigned int notes[2] = { 0, 0 }, queues[2] = { 0, 0 };

		MUST(setup_dir(disk, dir, 0) == 0);
		MUST(blk_trace_start(disk) == 0);
		for (int i = 0; i < 8; i++) {
			blk_set_current_ioc(ioc[i % 2]);
			CHECK(test_bio_sync(disk, REQ_OP_READ, 8 * i, buf,
					    BLK) == 0);
		}
		blk_set_current_ioc(NULL);
		CHECK(blk_trace_teardown(disk) == 0);
		recs_read_dir(&rs, dir, "bt0");
		for (unsigned int i = 0; i < rs.n; i++) {
			const struct blk_io_trace *t = &rs.r[i].t;
			int k = t->pid == 5151 ? 0 : t->pid == 5252 ? 1 : -1;

			if (k < 0)
				continue;
			if (t->action == BLK_TN_PROCESS)
				notes[k]++;
			else if ((t->action & 0xffff) == __BLK_TA_QUEUE)
				queues[k]++;
		}
		CHECK_MSG(notes[0] == 1 && notes[1] == 1,
			  "trace %d: notes %u, %u (want 1, 1)", trace,
			  notes[0], notes[1]);
		CHECK_MSG(queues[0] == 4 && queues[1] == 4,
			  "trace %d: Q %u, %u (want 4, 4)", trace, queues[0],
			  queues[1]);
		CHECK(recs_note_pid(&rs, 5151) &&
		      !strcmp((const char *)recs_note_pid(&rs, 5151)->pdu,
			      "fio"));
		CHECK(recs_note_pid(&rs, 5252) &&
		      !strcmp((const char *)recs_note_pid(&rs, 5252)->pdu,
			      "dd"));
		recs_free(&rs);
		rmdir_all(dir);
		tmpdir(dir, sizeof(dir));
	}
	put_io_context(ioc[0]);
	put_io_context(ioc[1]);
	test_dev_del(disk);
	rmdir_all(dir);
}

/*
 * More live threads than thread slots: the last ones share a slot and
 * its ring, under the ring's lock, and each still names its process.
 */
#define SHARED_THREADS (THREAD_SLOTS + 6)

struct shared_issuer {
	struct gendisk *disk;
	pthread_barrier_t *all_alive;
	struct io_context *ioc;
	int i, err;
};

static void *shared_issuer_fn(void *arg)
{
	struct shared_issuer *s = arg;
	char b[BLK];

	/* everyone holds a slot before anyone issues or exits */
	this_thread_slot();
	pthread_barrier_wait(s->all_alive);
	blk_set_current_ioc(s->ioc);
	for (int k = 0; k < 2 && !s->err; k++)
		s->err = test_bio_sync(s->disk, REQ_OP_READ, 8 * (s->i % 16), b,
				       BLK);
	blk_set_current_ioc(NULL);
	pthread_barrier_wait(s->all_alive);
	return NULL;
}

static void test_process_notes_shared_slot(void)
{
	static struct shared_issuer s[SHARED_THREADS];
	pthread_t th[SHARED_THREADS];
	pthread_barrier_t all_alive;
	struct gendisk *disk;
	struct recs rs = { 0 };
	unsigned int named = 0, twice = 0;
	char dir[64];

	test_begin("process notes, threads sharing a slot", 30);
	disk = traced_null("bt0", dir, sizeof(dir));
	pthread_barrier_init(&all_alive, NULL, SHARED_THREADS);
	for (int i = 0; i < SHARED_THREADS; i++) {
		char comm[16];

		snprintf(comm, sizeof(comm), "p%d", i);
		s[i] = (struct shared_issuer){ .disk = disk,
					       .all_alive = &all_alive,
					       .i = i };
		s[i].ioc = ioc_create(7000 + i, IOPRIO_DEFAULT, 0, comm);
		MUST(s[i].ioc);
		MUST(pthread_create(&th[i], NULL, shared_issuer_fn, &s[i]) ==
		     0);
	}
	for (int i = 0; i < SHARED_THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK_MSG(!s[i].err, "thread %d: I/O error %d", i, s[i].err);
	}
	pthread_barrier_destroy(&all_alive);
	CHECK(blk_trace_teardown(disk) == 0);
	recs_read_dir(&rs, dir, "bt0");
	for (int i = 0; i < SHARED_THREADS; i++) {
		const struct rec *p = recs_note_pid(&rs, 7000 + i);
		char comm[16];
		unsigned int n = 0;

		snprintf(comm, sizeof(comm), "p%d", i);
		if (p && !strcmp((const char *)p->pdu, comm))
			named++;
		for (unsigned int k = 0; k < rs.n; k++)
			n += rs.r[k].t.action == BLK_TN_PROCESS &&
			     rs.r[k].t.pid == (uint32_t)(7000 + i);
		twice += n > 1;
	}
	CHECK_MSG(named == SHARED_THREADS, "%u of %d pids named", named,
		  SHARED_THREADS);
	CHECK_MSG(!twice, "%u pids named more than once", twice);
	recs_free(&rs);
	for (int i = 0; i < SHARED_THREADS; i++)
		put_io_context(s[i].ioc);
	test_dev_del(disk);
	rmdir_all(dir);
}

/* ---- categories ---- */

static uint32_t traced_action(struct gendisk *disk, const char *dir,
			      blk_opf_t opf, uint32_t act, unsigned int len)
{
	struct recs rs = { 0 };
	const struct rec *r;
	uint32_t action = 0;

	MUST(setup_dir(disk, dir, 0) == 0);
	MUST(blk_trace_start(disk) == 0);
	CHECK(test_bio_sync(disk, opf, 16,
			    bio_op_of(opf) == REQ_OP_WRITE ||
					    bio_op_of(opf) == REQ_OP_READ
				    ? buf
				    : NULL,
			    len) == 0);
	CHECK(blk_trace_teardown(disk) == 0);
	recs_read_dir(&rs, dir, "bt1");
	r = recs_find(&rs, act, act == __BLK_TA_QUEUE ? 16 : 16);
	if (CHECK_MSG(r, "event %u for opf %#x", act, opf))
		action = r->t.action;
	recs_free(&rs);
	return action;
}

static void test_categories(void)
{
	struct gendisk *disk;
	char dir[64];
	uint32_t a;

	test_begin("categories", 20);
	tmpdir(dir, sizeof(dir));
	/* a write cache with native FUA, else the core drops FUA first */
	disk = test_null_add("bt1", "size=64,irqmode=0,memory_backed=1,"
				    "cache_size=1");
	MUST(disk);
	a = traced_action(disk, dir, REQ_OP_WRITE | REQ_SYNC | REQ_FUA,
			  __BLK_TA_QUEUE, BLK);
	CHECK_EQ_U64(a, BLK_TA_QUEUE | BLK_TC_ACT(BLK_TC_WRITE) |
				BLK_TC_ACT(BLK_TC_SYNC) |
				BLK_TC_ACT(BLK_TC_FUA));
	a = traced_action(disk, dir, REQ_OP_READ | REQ_RAHEAD | REQ_META,
			  __BLK_TA_ISSUE, BLK);
	CHECK_EQ_U64(a, BLK_TA_ISSUE | BLK_TC_ACT(BLK_TC_READ) |
				BLK_TC_ACT(BLK_TC_AHEAD) |
				BLK_TC_ACT(BLK_TC_META) |
				BLK_TC_ACT(BLK_TC_FS));
	a = traced_action(disk, dir, REQ_OP_DISCARD, __BLK_TA_QUEUE, BLK);
	CHECK_EQ_U64(a, BLK_TA_QUEUE | BLK_TC_ACT(BLK_TC_WRITE) |
				BLK_TC_ACT(BLK_TC_DISCARD));
	test_dev_del(disk);
	rmdir_all(dir);
}

/* ---- filters ---- */

static unsigned int run_filtered(struct gendisk *disk, const char *dir,
				 struct recs *rs, const char *attr,
				 const char *val)
{
	MUST(setup_dir(disk, dir, 0) == 0);
	if (attr)
		CHECK(test_attr_store(disk, attr, val) == 0);
	MUST(blk_trace_start(disk) == 0);
	for (int i = 0; i < 8; i++)
		CHECK(test_bio_sync(disk, REQ_OP_READ, (sector_t)i * 8, buf,
				    BLK) == 0);
	CHECK(blk_trace_teardown(disk) == 0);
	recs_read_dir(rs, dir, "bt2");
	return rs->n;
}

static void test_filters(void)
{
	struct gendisk *disk;
	struct io_context *ioc;
	struct recs rs = { 0 };
	char dir[64], show[128];
	uint16_t mask;

	test_begin("filters", 20);
	tmpdir(dir, sizeof(dir));
	disk = test_null_add("bt2", "size=64,irqmode=0");
	MUST(disk);

	run_filtered(disk, dir, &rs, "trace/act_mask", "complete");
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_COMPLETE), 8);
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_QUEUE), 0);
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_ISSUE), 0);
	recs_free(&rs);

	/* as the kernel's act_log_check(), sector 0 is never filtered */
	run_filtered(disk, dir, &rs, "trace/start_lba", "16");
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_QUEUE), 7);
	CHECK(!recs_find(&rs, __BLK_TA_QUEUE, 8));
	CHECK(recs_find(&rs, __BLK_TA_QUEUE, 16));
	recs_free(&rs);

	ioc = ioc_create(777, IOPRIO_DEFAULT, 0, "nbd-conn-3");
	MUST(ioc);
	MUST(setup_dir(disk, dir, 0) == 0);
	CHECK(test_attr_store(disk, "trace/pid", "777") == 0);
	MUST(blk_trace_start(disk) == 0);
	CHECK(test_bio_sync(disk, REQ_OP_READ, 0, buf, BLK) == 0);
	blk_set_current_ioc(ioc);
	CHECK(test_bio_sync(disk, REQ_OP_READ, 8, buf, BLK) == 0);
	blk_set_current_ioc(NULL);
	CHECK(blk_trace_teardown(disk) == 0);
	recs_read_dir(&rs, dir, "bt2");
	CHECK(recs_find(&rs, __BLK_TA_QUEUE, 8) &&
	      !recs_find(&rs, __BLK_TA_QUEUE, 0));
	CHECK(recs_note_pid(&rs, 777) &&
	      !strcmp((char *)recs_note_pid(&rs, 777)->pdu, "nbd-conn-3"));
	recs_free(&rs);
	put_io_context(ioc);

	/* names as blktrace -a takes them */
	CHECK(blk_trace_str2mask("read,write,issue", &mask) == 0 &&
	      mask == (BLK_TC_READ | BLK_TC_WRITE | BLK_TC_ISSUE));
	CHECK(blk_trace_str2mask("all", &mask) == 0 && mask == 0xffff);
	CHECK(blk_trace_str2mask("0x30", &mask) == 0 && mask == 0x30);
	CHECK_EQ_INT(blk_trace_str2mask("read,bogus", &mask), -EINVAL);
	CHECK(strstr(blkstack_errmsg(), "bogus") &&
	      strstr(blkstack_errmsg(), "drv_data"));
	blk_trace_mask2str(BLK_TC_READ | BLK_TC_COMPLETE, show, sizeof(show));
	CHECK(!strcmp(show, "read,complete"));
	test_dev_del(disk);
	rmdir_all(dir);
}

/* ---- plug, merge, split, remap, requeue-free paths ---- */

static void test_plug_merge_split_remap(void)
{
	struct gendisk *disk;
	struct recs rs = { 0 };
	struct blk_plug plug;
	struct tio t;
	const struct rec *r;
	char dir[64];
	uint64_t v;
	struct bio *bio;

	test_begin("plug merge split remap", 20);
	disk = traced_null("bt3", dir, sizeof(dir));

	tio_init(&t);
	blk_start_plug(&plug);
	CHECK(tio_submit(&t, disk, REQ_OP_WRITE, 100, buf, BLK) >= 0);
	CHECK(tio_submit(&t, disk, REQ_OP_WRITE, 108, buf, BLK) >= 0);
	CHECK(tio_submit(&t, disk, REQ_OP_WRITE, 92, buf, BLK) >= 0);
	blk_finish_plug(&plug);
	CHECK(tio_wait(&t, 3, 5000));
	tio_destroy(&t);

	CHECK(test_attr_store(disk, "max_sectors_kb", "4") == 0);
	CHECK(test_bio_sync(disk, REQ_OP_READ, 200, buf, 3 * BLK) == 0);

	bio = bio_alloc(disk, 1, REQ_OP_READ);
	MUST(bio);
	bio->bi_iter.bi_sector = 300;
	bio->bi_iter.bi_size = BLK;
	trace_block_bio_remap(bio, (9U << 20) | 3, 1000);
	bio_put(bio);
	CHECK(blk_trace_teardown(disk) == 0);

	recs_read_dir(&rs, dir, "bt3");
	check_sequences(&rs);
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_PLUG), 1);
	r = recs_find(&rs, __BLK_TA_UNPLUG_IO, 0);
	if (CHECK_MSG(r, "U") && CHECK(r->t.pdu_len == 8)) {
		memcpy(&v, r->pdu, 8);
		CHECK_EQ_U64(__builtin_bswap64(v), 1); /* one request */
	}
	CHECK_MSG(recs_find(&rs, __BLK_TA_BACKMERGE, 108), "M at 108");
	CHECK_MSG(recs_find(&rs, __BLK_TA_FRONTMERGE, 92), "F at 92");
	r = recs_find(&rs, __BLK_TA_ISSUE, 92);
	if (CHECK_MSG(r, "D of the merged request"))
		CHECK_EQ_U64(r->t.bytes, 3 * BLK);
	r = recs_find(&rs, __BLK_TA_SPLIT, 200);
	if (CHECK_MSG(r, "X at 200") && CHECK(r->t.pdu_len == 8)) {
		memcpy(&v, r->pdu, 8);
		CHECK_EQ_U64(__builtin_bswap64(v), 208);
	}
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_SPLIT), 2);
	r = recs_find(&rs, __BLK_TA_REMAP, 300);
	if (CHECK_MSG(r, "A at 300") &&
	    CHECK(r->t.pdu_len == sizeof(struct blk_io_trace_remap))) {
		struct blk_io_trace_remap rm;

		memcpy(&rm, r->pdu, sizeof(rm));
		CHECK_EQ_U64(__builtin_bswap32(rm.device_from), (9U << 20) | 3);
		CHECK_EQ_U64(__builtin_bswap32(rm.device_to), devt(disk));
		CHECK_EQ_U64(__builtin_bswap64(rm.sector_from), 1000);
	}
	/* every Q has its C; nothing bounces */
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_BOUNCE), 0);
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_COMPLETE),
		     recs_count(&rs, __BLK_TA_ISSUE));
	recs_free(&rs);
	test_dev_del(disk);

	/* a bio-based device (no requests) shows its bios' Q */
	disk = test_null_add("bt3b", "size=64,queue_mode=0");
	MUST(disk);
	MUST(setup_dir(disk, dir, 0) == 0);
	MUST(blk_trace_start(disk) == 0);
	CHECK(test_bio_sync(disk, REQ_OP_READ, 40, buf, BLK) == 0);
	CHECK(blk_trace_teardown(disk) == 0);
	recs_read_dir(&rs, dir, "bt3b");
	CHECK_MSG(recs_find(&rs, __BLK_TA_QUEUE, 40),
		  "Q on a bio-based device");
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_ISSUE), 0);
	recs_free(&rs);
	test_dev_del(disk);
	rmdir_all(dir);
}

/* ---- S, UT, R, C with an error, drv_data ---- */

static void test_more_actions(void)
{
	struct gendisk *disk;
	struct recs rs = { 0 };
	struct blk_plug plug;
	struct request *rq;
	struct tio t;
	const struct rec *r;
	char dir[64];
	uint64_t v;

	test_begin("sleep, timer unplug, requeue, error, drv_data", 20);
	tmpdir(dir, sizeof(dir));
	/* one tag, 2 ms per I/O: the second submitter sleeps for the tag */
	disk = test_null_add("bt8",
			     "size=64,irqmode=2,completion_nsec=2000000,"
			     "hw_queue_depth=1,requeue=3,badblocks=800-807");
	MUST(disk);
	/* no scheduler: requests come straight from the one driver tag */
	CHECK(test_attr_store(disk, "scheduler", "none") == 0);
	MUST(setup_dir(disk, dir, 0) == 0);
	MUST(blk_trace_start(disk) == 0);

	tio_init(&t);
	for (int i = 0; i < 6; i++)
		CHECK(tio_submit(&t, disk, REQ_OP_READ, (sector_t)i * 8, buf,
				 BLK) >= 0);
	CHECK(tio_wait(&t, 6, 10000));
	tio_destroy(&t);
	CHECK(test_bio_sync(disk, REQ_OP_READ, 800, buf, BLK) != 0);

	/* flushed because the thread is about to sleep: UT, not U */
	tio_init(&t);
	blk_start_plug(&plug);
	CHECK(tio_submit(&t, disk, REQ_OP_READ, 1000, buf, BLK) >= 0);
	blk_flush_plug(&plug, true);
	blk_finish_plug(&plug);
	CHECK(tio_wait(&t, 1, 5000));
	tio_destroy(&t);

	rq = blk_mq_alloc_request(disk->queue, REQ_OP_DRV_IN, 0);
	if (CHECK(rq)) {
		blk_add_driver_data(rq, "drvdata!", 8);
		blk_mq_free_request(rq);
	}
	CHECK(blk_trace_teardown(disk) == 0);

	recs_read_dir(&rs, dir, "bt8");
	check_sequences(&rs);
	CHECK_MSG(recs_count(&rs, __BLK_TA_SLEEPRQ) > 0, "S");
	CHECK_MSG(recs_count(&rs, __BLK_TA_REQUEUE) > 0, "R");
	r = recs_find(&rs, __BLK_TA_UNPLUG_TIMER, 0);
	if (CHECK_MSG(r, "UT")) {
		memcpy(&v, r->pdu, 8);
		CHECK_EQ_U64(__builtin_bswap64(v), 1);
	}
	r = recs_find(&rs, __BLK_TA_COMPLETE, 800);
	if (CHECK_MSG(r, "C at 800"))
		CHECK_EQ_INT((int16_t)r->t.error, -EIO);
	r = recs_find(&rs, __BLK_TA_DRV_DATA, 0);
	if (CHECK_MSG(r, "drv_data")) {
		CHECK(r->t.pdu_len == 8 && !memcmp(r->pdu, "drvdata!", 8));
		CHECK(r->t.action & BLK_TC_ACT(BLK_TC_PC));
		CHECK(r->t.action & BLK_TC_ACT(BLK_TC_DRV_DATA));
	}
	recs_free(&rs);
	test_dev_del(disk);
	rmdir_all(dir);
}

/* ---- drops ---- */

static uint64_t run_load(struct gendisk *disk, uint32_t buf_size,
			 uint32_t buf_nr, uint64_t *written)
{
	struct blk_trace_setup buts;
	struct blk_trace_stats st;

	blk_trace_setup_init(&buts);
	buts.buf_size = buf_size;
	buts.buf_nr = buf_nr;
	MUST(blk_trace_setup(disk, &buts) == 0);
	MUST(blk_trace_start(disk) == 0);
	for (int i = 0; i < 2000; i++)
		test_bio_sync(disk, REQ_OP_READ, (sector_t)(i % 64) * 8, buf,
			      BLK);
	CHECK(blk_trace_teardown(disk) == 0);
	MUST(blk_trace_get_stats(disk, &st) == 0);
	*written = st.events;
	return st.dropped;
}

static void test_drops(void)
{
	struct gendisk *disk;
	uint64_t all, written, dropped;

	test_begin("drops with tiny buffers", 30);
	disk = test_null_add("bt4", "size=64,irqmode=0");
	MUST(disk);
	CHECK_EQ_U64(run_load(disk, 0, 0, &all), 0);
	CHECK(all >= 4 * 2000);
	dropped = run_load(disk, 64, 1, &written);
	CHECK_MSG(dropped > 0, "a one-entry buffer dropped nothing");
	CHECK_EQ_U64(written + dropped, all);
	{
		struct blk_trace_setup buts;

		blk_trace_setup_init(&buts);
		buts.buf_size = 1;
		CHECK_EQ_INT(blk_trace_setup(disk, &buts), -EINVAL);
		CHECK(strstr(blkstack_errmsg(), "buf_size"));
	}
	test_dev_del(disk);
}

/*
 * An event with a payload takes two ring entries, the payload's perhaps
 * the ring's first: a queue and a remap in turn on a 4-entry ring start
 * the remap at every entry in turn, the last one among them.
 */
static void test_payload_wrap(void)
{
	struct blk_trace_setup buts;
	struct blk_trace_stats st;
	struct gendisk *disk;
	struct recs rs = { 0 };
	unsigned int found = 0, bad = 0;
	char dir[64];
	const int n = 64;

	test_begin("payloads across the ring's end", 30);
	tmpdir(dir, sizeof(dir));
	disk = test_null_add("bt9", "size=64,irqmode=0");
	MUST(disk);
	blk_trace_setup_init(&buts);
	buts.buf_size = 64; /* two entries... */
	buts.buf_nr = 2;    /* ...twice */
	buts.dir = dir;
	MUST(blk_trace_setup(disk, &buts) == 0);
	MUST(blk_trace_start(disk) == 0);
	for (int i = 0; i < n; i++) {
		struct bio *bio = bio_alloc(disk, 1, REQ_OP_READ);

		MUST(bio);
		bio->bi_iter.bi_sector = 300 + (sector_t)i;
		bio->bi_iter.bi_size = BLK;
		trace_block_bio_queue(bio);
		trace_block_bio_remap(bio, (9U << 20) | 3, 1000 + i);
		bio_put(bio);
		usleep(500); /* the reader drains the ring in between */
	}
	CHECK(blk_trace_teardown(disk) == 0);
	MUST(blk_trace_get_stats(disk, &st) == 0);
	recs_read_dir(&rs, dir, "bt9");
	check_sequences(&rs);
	for (int i = 0; i < n; i++) {
		const struct rec *r = recs_find(&rs, __BLK_TA_REMAP, 300 + i);
		struct blk_io_trace_remap rm;

		if (!r)
			continue;
		found++;
		memcpy(&rm, r->pdu, sizeof(rm));
		if (r->t.pdu_len != sizeof(rm) ||
		    __builtin_bswap64(rm.sector_from) != 1000ULL + i ||
		    __builtin_bswap32(rm.device_from) != ((9U << 20) | 3))
			bad++;
	}
	CHECK_EQ_U64(bad, 0);
	CHECK_EQ_U64(found + recs_count(&rs, __BLK_TA_QUEUE) + st.dropped,
		     2 * n);
	/* most of them written: every start position came up */
	CHECK_MSG(found > n / 2, "remaps written: %u of %d", found, n);
	recs_free(&rs);
	test_dev_del(disk);
	rmdir_all(dir);
}

/* ---- stream, live text, statistics ---- */

struct live {
	pthread_mutex_t lock;
	unsigned int lines, q_lines;
	char first_q[256];
};

static void live_fn(void *arg, const char *line)
{
	struct live *l = arg;

	pthread_mutex_lock(&l->lock);
	l->lines++;
	if (strstr(line, "  Q ")) {
		if (!l->q_lines++)
			snprintf(l->first_q, sizeof(l->first_q), "%s", line);
	}
	pthread_mutex_unlock(&l->lock);
}

static void test_stream_live_stats(void)
{
	struct live l = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct blk_trace_setup buts;
	struct blk_trace_stats st;
	struct gendisk *disk;
	struct recs rs = { 0 };
	char path[] = "/tmp/blktrace-stream-XXXXXX", dump[8192];
	FILE *f;
	int fd;

	test_begin("stream, live, stats", 20);
	fd = mkstemp(path);
	MUST(fd >= 0);
	disk = test_null_add("bt5", "size=64,irqmode=1");
	MUST(disk);
	blk_trace_setup_init(&buts);
	buts.out_fd = fd;
	buts.live = live_fn;
	buts.live_arg = &l;
	MUST(blk_trace_setup(disk, &buts) == 0);
	MUST(blk_trace_start(disk) == 0);
	for (int i = 0; i < 100; i++)
		CHECK(test_bio_sync(disk, REQ_OP_READ, (sector_t)i * 8, buf,
				    BLK) == 0);
	CHECK(blk_trace_stop(disk) == 0);
	CHECK(blk_trace_get_stats(disk, &st) == 0);
	CHECK_EQ_U64(st.stage[BLK_TRACE_Q2C].count, 100);
	CHECK_EQ_U64(st.stage[BLK_TRACE_D2C].count, 100);
	CHECK_EQ_U64(st.stage[BLK_TRACE_Q2G].count, 100);
	CHECK(st.stage[BLK_TRACE_Q2C].sum_ns >= st.stage[BLK_TRACE_D2C].sum_ns);
	f = fmemopen(dump, sizeof(dump), "w");
	blk_mq_debug_dump(disk, f);
	fclose(f);
	CHECK_MSG(strstr(dump, "trace: state=stopped") && strstr(dump, "Q2C"),
		  "debug dump: %s", dump);
	CHECK(blk_trace_teardown(disk) == 0);

	lseek(fd, 0, SEEK_SET);
	recs_read_fd(&rs, fd);
	check_sequences(&rs);
	CHECK_EQ_U64(recs_count(&rs, __BLK_TA_QUEUE), 100);
	for (unsigned int i = 1; i < rs.n; i++)
		if (!(rs.r[i].t.action & BLK_TC_ACT(BLK_TC_NOTIFY)))
			CHECK(rs.r[i].t.time >= rs.r[i - 1].t.time ||
			      (rs.r[i - 1].t.action &
			       BLK_TC_ACT(BLK_TC_NOTIFY)));
	CHECK_EQ_U64(l.q_lines, 100);
	CHECK_MSG(strstr(l.first_q, "  Q   R 0 + 8 ["), "live: '%s'",
		  l.first_q);
	recs_free(&rs);
	close(fd);
	unlink(path);
	test_dev_del(disk);
}

/*
 * A stream whose reader does not read: I/O and stop go on without
 * waiting for it, the records it had no room for are counted as drops,
 * what it gets is whole and numbered without gaps (no blkparse skips),
 * and it sees end of file at stop, before teardown.
 */
static void test_stream_stalled(void)
{
	struct blk_trace_setup buts;
	struct blk_trace_stats st = { 0 };
	struct gendisk *disk;
	struct recs rs = { 0 };
	uint64_t t0, stop_ns, most;
	unsigned int notes = 0;
	int p[2], pipe_sz;

	test_begin("stream with a stalled reader", 30);
	MUST(pipe(p) == 0);
	pipe_sz = fcntl(p[1], F_GETPIPE_SZ);
	MUST(pipe_sz > 0);
	disk = test_null_add("bt8", "size=64,irqmode=0");
	MUST(disk);
	blk_trace_setup_init(&buts);
	buts.out_fd = p[1];
	/* rings of 1024 entries, a stream buffer of 64 KiB */
	buts.buf_size = 65536;
	buts.buf_nr = 1;
	/*
	 * Nothing reads the pipe until the trace stops: the stream can
	 * hold no more records than the pipe and its buffer (records are
	 * 48 bytes and more). The rings drop what the trace's reader does
	 * not take in time, and on a loaded host it may take little: the
	 * reads go on until the trace has counted enough events to
	 * overflow the stream, not for a fixed number.
	 */
	most = ((uint64_t)pipe_sz + 65536) / sizeof(struct blk_io_trace);
	MUST(blk_trace_setup(disk, &buts) == 0);
	close(p[1]); /* the trace writes to its own descriptor */
	MUST(blk_trace_start(disk) == 0);
	/* ~4 records of 48 bytes per read, batches of 1000 */
	for (int i = 0; i < 20000 || st.events <= 2 * most; i++) {
		if (!CHECK_MSG(i < 2000000, "%llu events after %d reads",
			       (unsigned long long)st.events, i))
			break;
		test_bio_sync(disk, REQ_OP_READ, (sector_t)(i % 64) * 8, buf,
			      BLK);
		if (!(i % 1000)) {
			usleep(2000); /* let the reader drain the rings */
			MUST(blk_trace_get_stats(disk, &st) == 0);
		}
	}
	t0 = test_now_ns();
	CHECK(blk_trace_stop(disk) == 0);
	stop_ns = test_now_ns() - t0;
	CHECK_MSG(stop_ns < 1000000000ULL, "stop waited %llu ms for the reader",
		  (unsigned long long)(stop_ns / 1000000));
	MUST(blk_trace_get_stats(disk, &st) == 0);
	CHECK_MSG(st.dropped > 0, "a stalled stream dropped nothing");
	/* now read: whole records, no sequence gap, end of file */
	CHECK(recs_read_fd(&rs, p[0]));
	check_sequences(&rs);
	CHECK(rs.n > 1000);
	/* notes (process names, the timestamp) are not events */
	for (unsigned int i = 0; i < rs.n; i++)
		notes += !!(rs.r[i].t.action & BLK_TC_ACT(BLK_TC_NOTIFY));
	CHECK_MSG(rs.n <= most, "stream %u records, at most %llu fit",
		  rs.n, (unsigned long long)most);
	CHECK_MSG(rs.n - notes < st.events, "stream %u records (%u notes), "
		  "events %llu", rs.n, notes, (unsigned long long)st.events);
	CHECK(blk_trace_teardown(disk) == 0);
	recs_free(&rs);
	close(p[0]);
	test_dev_del(disk);
}

/* ---- control orders ---- */

static void test_control_orders(void)
{
	struct blk_trace_setup buts;
	struct blk_trace_stats st;
	struct gendisk *disk;
	char show[64];

	test_begin("control orders", 20);
	disk = test_null_add("bt6", "size=64,irqmode=0");
	MUST(disk);
	blk_trace_setup_init(&buts);

	/* seed 000: enable then disable through sysfs */
	CHECK(!strcmp(test_attr_show(disk, "trace/enable", show, sizeof(show)),
		      "0"));
	CHECK(test_attr_store(disk, "trace/enable", "1") == 0);
	CHECK(test_bio_sync(disk, REQ_OP_READ, 0, buf, BLK) == 0);
	CHECK(test_attr_store(disk, "trace/enable", "0") == 0);
	CHECK(!strcmp(test_attr_show(disk, "trace/enable", show, sizeof(show)),
		      "0"));
	CHECK(blk_trace_get_stats(disk, &st) == 0 && st.events >= 4);
	CHECK(test_attr_store(disk, "trace/enable", "0") == 0); /* no-op */

	/* ioctl setup + start, sysfs disable */
	CHECK(blk_trace_setup(disk, &buts) == 0);
	CHECK(blk_trace_start(disk) == 0);
	CHECK(test_attr_store(disk, "trace/enable", "0") == 0);
	CHECK_EQ_INT(blk_trace_stop(disk), -EINVAL);
	CHECK_EQ_INT(blk_trace_teardown(disk), -EINVAL);

	/* ioctl setup only (never started), sysfs disable */
	CHECK(blk_trace_setup(disk, &buts) == 0);
	CHECK(test_attr_store(disk, "trace/enable", "0") == 0);

	/* start twice, stop twice, setup twice */
	CHECK(blk_trace_setup(disk, &buts) == 0);
	CHECK_EQ_INT(blk_trace_setup(disk, &buts), -EBUSY);
	CHECK(blk_trace_start(disk) == 0);
	CHECK_EQ_INT(blk_trace_start(disk), -EINVAL);
	CHECK(strstr(blkstack_errmsg(), "already running"));
	CHECK(blk_trace_stop(disk) == 0);
	CHECK_EQ_INT(blk_trace_stop(disk), -EINVAL);
	CHECK(blk_trace_start(disk) == 0); /* restart */
	/* teardown while running */
	CHECK(blk_trace_teardown(disk) == 0);
	CHECK_EQ_INT(blk_trace_start(disk), -EINVAL);

	/* sysfs enable, ioctl stop and teardown */
	CHECK(test_attr_store(disk, "trace/enable", "1") == 0);
	CHECK_EQ_INT(blk_trace_setup(disk, &buts), -EBUSY);
	CHECK(blk_trace_stop(disk) == 0);
	CHECK(blk_trace_teardown(disk) == 0);

	/* an attribute with no trace sets one up (stopped), as the kernel */
	CHECK(!strcmp(
		test_attr_show(disk, "trace/act_mask", show, sizeof(show)),
		"disabled"));
	CHECK(test_attr_store(disk, "trace/act_mask", "read,issue") == 0);
	CHECK(!strcmp(test_attr_show(disk, "trace/enable", show, sizeof(show)),
		      "1"));
	CHECK(!strcmp(
		test_attr_show(disk, "trace/act_mask", show, sizeof(show)),
		"read,issue"));
	/* bad values change nothing */
	CHECK_EQ_INT(blk_queue_attr_store(disk, "trace/act_mask", "nope"),
		     -EINVAL);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "trace/enable", "2"), -EINVAL);
	CHECK(strstr(blkstack_errmsg(), "0..1"));
	CHECK_EQ_INT(blk_queue_attr_store(disk, "trace/bogus", "1"), -ENOENT);
	CHECK(strstr(blkstack_errmsg(), "trace/start_lba"));
	CHECK(!strcmp(
		test_attr_show(disk, "trace/act_mask", show, sizeof(show)),
		"read,issue"));
	CHECK(blk_trace_start(disk) == 0);
	CHECK(test_attr_store(disk, "trace/enable", "0") == 0);

	/* live listeners: one at a time, only on a trace */
	{
		struct live l = { .lock = PTHREAD_MUTEX_INITIALIZER };

		CHECK_EQ_INT(blk_trace_live(disk, live_fn, &l), -EINVAL);
		CHECK(blk_trace_setup(disk, &buts) == 0);
		CHECK(blk_trace_live(disk, live_fn, &l) == 0);
		CHECK_EQ_INT(blk_trace_live(disk, live_fn, &l), -EBUSY);
		CHECK(blk_trace_start(disk) == 0);
		CHECK(test_bio_sync(disk, REQ_OP_READ, 8, buf, BLK) == 0);
		CHECK(blk_trace_live(disk, NULL, NULL) == 0);
		CHECK_MSG(l.q_lines == 1, "live saw %u Q", l.q_lines);
		CHECK(test_bio_sync(disk, REQ_OP_READ, 16, buf, BLK) == 0);
		CHECK(blk_trace_teardown(disk) == 0);
		CHECK_EQ_U64(l.q_lines, 1); /* detached: nothing more */
	}

	/* bad geometry */
	buts.buf_nr = 5000;
	CHECK_EQ_INT(blk_trace_setup(disk, &buts), -EINVAL);
	CHECK(strstr(blkstack_errmsg(), "buf_nr"));
	test_dev_del(disk);
}

/* ---- with I/O on several threads ---- */

struct loader {
	struct gendisk *disk;
	_Atomic bool stop;
	_Atomic unsigned long ios;
};

static void *load_fn(void *arg)
{
	struct loader *ld = arg;
	static _Thread_local char b[BLK];
	unsigned int i = 0;

	while (!atomic_load(&ld->stop)) {
		struct blk_plug plug;

		blk_start_plug(&plug);
		test_bio_sync(ld->disk, (i & 1) ? REQ_OP_WRITE : REQ_OP_READ,
			      (sector_t)(i % 512) * 8, b, BLK);
		blk_finish_plug(&plug);
		atomic_fetch_add(&ld->ios, 1);
		i++;
	}
	return NULL;
}

static void test_concurrent_control(void)
{
	struct loader ld = { 0 };
	struct blk_trace_setup buts;
	pthread_t th[4];
	char dir[64];
	int cycles = test_slow() ? 20 : 60;

	test_begin("control while I/O runs on 4 threads", 60);
	tmpdir(dir, sizeof(dir));
	ld.disk = test_null_add("bt7", "size=64,irqmode=1,submit_queues=2");
	MUST(ld.disk);
	for (int i = 0; i < 4; i++)
		MUST(pthread_create(&th[i], NULL, load_fn, &ld) == 0);
	blk_trace_setup_init(&buts);
	buts.buf_size = 4096;
	buts.buf_nr = 2;
	for (int c = 0; c < cycles; c++) {
		buts.dir = (c % 3 == 0) ? dir : NULL;
		switch (c % 4) {
		case 0:
			CHECK(blk_trace_setup(ld.disk, &buts) == 0);
			CHECK(blk_trace_start(ld.disk) == 0);
			usleep(2000);
			CHECK(blk_trace_teardown(ld.disk) == 0);
			break;
		case 1:
			CHECK(test_attr_store(ld.disk, "trace/enable", "1") ==
			      0);
			usleep(1000);
			CHECK(test_attr_store(ld.disk, "trace/act_mask",
					      "queue,complete") == 0);
			usleep(1000);
			CHECK(test_attr_store(ld.disk, "trace/enable", "0") ==
			      0);
			break;
		case 2:
			CHECK(blk_trace_setup(ld.disk, &buts) == 0);
			CHECK(blk_trace_start(ld.disk) == 0);
			usleep(1000);
			CHECK(blk_trace_stop(ld.disk) == 0);
			CHECK(blk_trace_start(ld.disk) == 0);
			CHECK(test_attr_store(ld.disk, "trace/enable", "0") ==
			      0);
			break;
		default:
			CHECK(test_attr_store(ld.disk, "trace/enable", "1") ==
			      0);
			usleep(2000);
			CHECK(blk_trace_teardown(ld.disk) == 0);
		}
	}
	/* device removal while tracing, with I/O running */
	buts.dir = dir;
	CHECK(blk_trace_setup(ld.disk, &buts) == 0);
	CHECK(blk_trace_start(ld.disk) == 0);
	usleep(5000);
	CHECK(blkstack_dev_del("bt7") == 0);
	atomic_store(&ld.stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(blk_trace_teardown(ld.disk), -EINVAL);
	CHECK(atomic_load(&ld.ios) > 0);
	{
		struct recs rs = { 0 };

		CHECK(recs_read_dir(&rs, dir, "bt7") > 0);
		CHECK(rs.n > 0);
		check_sequences(&rs);
		recs_free(&rs);
	}
	blk_put_disk(ld.disk);
	rmdir_all(dir);
}

/* ---- the reader's priority ---- */

/* The scheduling policy of this process's thread named @comm, or -1. */
static int thread_policy(const char *comm)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int policy = -1;

	while (d && policy < 0 && (e = readdir(d))) {
		char path[300], name[32] = "", stat[1024];
		const char *p;
		FILE *f;
		int field = 2;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(name, sizeof(name), f))
			name[0] = '\0';
		fclose(f);
		name[strcspn(name, "\n")] = '\0';
		if (strcmp(name, comm))
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(stat, sizeof(stat), f)) {
			/* field 41 is the policy; the name may hold spaces */
			p = strrchr(stat, ')');
			while (p && field < 41 && (p = strchr(p + 1, ' ')))
				field++;
			if (p)
				policy = atoi(p + 1);
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return policy;
}

static _Atomic bool hogs_stop;

static void *hog_fn(void *arg)
{
	while (!atomic_load_explicit(&hogs_stop, memory_order_relaxed))
		;
	return NULL;
}

/*
 * The reader works in idle time, and when every CPU is busy a producer
 * whose ring fills raises it: with a busy loop per CPU at normal
 * priority (an idle-class reader alone would then get almost nothing),
 * a steady load loses no event.
 */
static void test_reader_priority(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct blk_trace_setup buts;
	struct blk_trace_stats st;
	struct gendisk *disk;
	pthread_t hogs[8];
	int nhogs = ncpu > 8 ? 8 : (int)ncpu, policy;

	test_begin("the reader in idle time, raised when a ring fills", 30);
	disk = test_null_add("bt10", "size=64,irqmode=0");
	MUST(disk);
	blk_trace_setup_init(&buts);
	buts.buf_size = 0; /* the default rings: 32768 entries */
	buts.buf_nr = 0;
	MUST(blk_trace_setup(disk, &buts) == 0);
	MUST(blk_trace_start(disk) == 0);
	test_bio_sync(disk, REQ_OP_READ, 0, buf, BLK);
	usleep(100 * 1000); /* a few passes of the reader */
	policy = thread_policy("blktrace");
	if (geteuid() == 0)
		CHECK_EQ_INT(policy, SCHED_IDLE);
	else
		CHECK(policy == SCHED_IDLE || policy == SCHED_OTHER);
	atomic_store(&hogs_stop, false);
	for (int i = 0; i < nhogs; i++)
		MUST(pthread_create(&hogs[i], NULL, hog_fn, NULL) == 0);
	/*
	 * 4 events per read, bursts of 2000 events every 10 ms: a ring is
	 * a quarter full in 40 ms, and a reader in idle time alone would
	 * fall behind by more than a ring within the second.
	 */
	for (int i = 0; i < 50000; i++) {
		test_bio_sync(disk, REQ_OP_READ, (sector_t)(i % 64) * 8, buf,
			      BLK);
		if (!(i % 500))
			usleep(10 * 1000);
	}
	atomic_store(&hogs_stop, true);
	for (int i = 0; i < nhogs; i++)
		pthread_join(hogs[i], NULL);
	CHECK(blk_trace_stop(disk) == 0);
	MUST(blk_trace_get_stats(disk, &st) == 0);
	CHECK_EQ_U64(st.dropped, 0);
	CHECK(st.events >= 4 * 50000);
	CHECK(blk_trace_teardown(disk) == 0);
	test_dev_del(disk);
}

static int run_setup_start(struct gendisk *disk)
{
	struct blk_trace_setup buts;

	blk_trace_setup_init(&buts);
	return blk_trace_setup(disk, &buts) ?: blk_trace_start(disk);
}

static pthread_barrier_t pool_barrier;

/*
 * Reads on @arg's disk from a thread of its own, a ring of its own: the
 * threads wait for each other before they end, so none leaves its slot
 * (and ring) to the next.
 */
static void *pool_reader(void *arg)
{
	static char tbuf[BLK];

	for (int i = 0; i < 20; i++)
		test_bio_sync(arg, REQ_OP_READ, (sector_t)i * 8, tbuf, BLK);
	pthread_barrier_wait(&pool_barrier);
	return NULL;
}

/*
 * Rings outlive their trace (blktrace-pool.c): the next trace with the
 * same buffers takes one, its positions new, and records exactly what a
 * fresh ring does (every Q completed, sequences unbroken, nothing
 * dropped); a trace with other buffers leaves it; no more than
 * BT_POOL_RINGS are kept; a reap gives every one back, and one comes by
 * itself when none has been claimed for a while.
 */
static void test_ring_pool(void)
{
	struct recs rs = { 0 };
	struct gendisk *disk;
	uint64_t first, again, other;
	pthread_t t[BT_POOL_RINGS + 2];
	char dir[64];

	test_begin("rings kept between traces", 60);
	bt_ring_pool_reap();
	CHECK_EQ_U64(bt_ring_pool_count(), 0);
	disk = test_null_add("bt11", "size=64,irqmode=0");
	MUST(disk);
	CHECK_EQ_U64(run_load(disk, 0, 0, &first), 0);
	CHECK_EQ_U64(bt_ring_pool_count(), 1);
	CHECK_EQ_U64(run_load(disk, 0, 0, &again), 0);
	CHECK_EQ_U64(again, first);
	CHECK_EQ_U64(bt_ring_pool_count(), 1);
	CHECK_EQ_U64(run_load(disk, 1 << 20, 1, &other), 0);
	CHECK_EQ_U64(other, first);
	CHECK_EQ_U64(bt_ring_pool_count(), 2);
	/* a kept ring that dropped counts nothing for the next trace */
	CHECK(run_load(disk, 4096, 1, &other) > 0);
	CHECK_EQ_U64(bt_ring_pool_count(), 3);
	{
		struct blk_trace_setup buts;
		struct blk_trace_stats st;

		blk_trace_setup_init(&buts);
		buts.buf_size = 4096;
		buts.buf_nr = 1;
		MUST(blk_trace_setup(disk, &buts) == 0);
		MUST(blk_trace_start(disk) == 0);
		CHECK_EQ_U64(bt_ring_pool_count(), 3);
		test_bio_sync(disk, REQ_OP_READ, 0, buf, BLK);
		CHECK_EQ_U64(bt_ring_pool_count(), 2);
		CHECK(blk_trace_teardown(disk) == 0);
		MUST(blk_trace_get_stats(disk, &st) == 0);
		CHECK_EQ_U64(st.dropped, 0);
		CHECK_EQ_U64(st.events, 4);
	}

	tmpdir(dir, sizeof(dir));
	MUST(setup_dir(disk, dir, 0) == 0);
	MUST(blk_trace_start(disk) == 0);
	for (int i = 0; i < 500; i++)
		test_bio_sync(disk, REQ_OP_READ, (sector_t)(i % 64) * 8, buf,
			      BLK);
	CHECK(blk_trace_teardown(disk) == 0);
	CHECK_EQ_U64(bt_ring_pool_count(), 3);
	recs_read_dir(&rs, dir, "bt11");
	CHECK(recs_note_pid(&rs, (uint32_t)gettid()));
	CHECK_EQ_INT(recs_count(&rs, __BLK_TA_QUEUE), 500);
	CHECK_EQ_INT(recs_count(&rs, __BLK_TA_COMPLETE), 500);
	check_sequences(&rs);
	recs_free(&rs);
	rmdir_all(dir);

	MUST(run_setup_start(disk) == 0);
	pthread_barrier_init(&pool_barrier, NULL, ARRAY_SIZE(t));
	for (unsigned int i = 0; i < ARRAY_SIZE(t); i++)
		MUST(pthread_create(&t[i], NULL, pool_reader, disk) == 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(t); i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&pool_barrier);
	CHECK(blk_trace_teardown(disk) == 0);
	CHECK_EQ_U64(bt_ring_pool_count(), BT_POOL_RINGS);
	bt_ring_pool_reap();
	CHECK_EQ_U64(bt_ring_pool_count(), 0);

	/* unclaimed, they go back by themselves (10 s; 50 ms here) */
	bt_ring_pool_set_keep(50);
	CHECK_EQ_U64(run_load(disk, 0, 0, &again), 0);
	CHECK_EQ_U64(bt_ring_pool_count(), 1);
	for (int i = 0; i < 200 && bt_ring_pool_count(); i++)
		usleep(10000);
	CHECK_EQ_U64(bt_ring_pool_count(), 0);
	bt_ring_pool_set_keep(0);
	test_dev_del(disk);
}

int main(void)
{
	test_init(0);
	test_record_format();
	test_process_notes();
	test_process_notes_shared_slot();
	test_categories();
	test_filters();
	test_plug_merge_split_remap();
	test_more_actions();
	test_drops();
	test_payload_wrap();
	test_ring_pool();
	test_stream_live_stats();
	test_stream_stalled();
	test_reader_priority();
	test_control_orders();
	test_concurrent_control();
	return test_report();
}
