// SPDX-License-Identifier: MIT
/*
 * The flush state machine (block/blk-flush.c) on a device with a volatile
 * write cache, seen from the recording driver, with "none" and then with
 * the fifo-test scheduler attached:
 *
 *  - an empty PREFLUSH is exactly one REQ_OP_FLUSH;
 *  - PREFLUSH + data: FLUSH, then the write (not before the flush ends);
 *  - FUA without FUA support: the write without REQ_FUA, then a FLUSH;
 *    with FUA support: the write keeps REQ_FUA and no flush is sent;
 *  - PREFLUSH + FUA without FUA support: FLUSH, WRITE, FLUSH;
 *  - flush requests that pile up while a flush is in flight share the
 *    next one; a pending flush waits while flush data is in flight;
 *  - an error from a flush or from the data step ends the bio with it
 *    and stops the sequence;
 *  - diskstats count each flush once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define KB(n)	((n) * 1024U)

static unsigned char *buf;

/* A device with a write cache, running @sched (NULL: none). */
static struct rec_dev *mkdev(bool fua, enum rec_mode mode, const char *sched)
{
	struct rec_config cfg;
	struct rec_dev *d;

	rec_config_init(&cfg);
	cfg.lim.features_write_cache = true;
	cfg.lim.features_fua = fua;
	cfg.mode = mode;
	d = rec_create(&cfg);
	if (d && sched)
		CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "scheduler",
						  sched), 0);
	return d;
}

/* The accepted requests as letters: F flush, W write, R read. */
static void seq_of(struct rec_dev *d, char *s, size_t len)
{
	size_t n = 0;

	for (unsigned int i = 0; i < rec_nr_ios(d) && n + 1 < len; i++) {
		struct rec_io r;

		rec_get_io(d, i, &r);
		if (r.ret != BLK_STS_OK || r.requeued)
			continue;
		s[n++] = r.op == REQ_OP_FLUSH ? 'F' :
			 r.op == REQ_OP_WRITE ? 'W' :
			 r.op == REQ_OP_READ ? 'R' : '?';
	}
	s[n] = '\0';
}

static bool expect_seq(struct rec_dev *d, const char *want, const char *what)
{
	char got[64];

	seq_of(d, got, sizeof(got));
	if (CHECK_MSG(!strcmp(got, want), "%s: driver saw '%s', expected '%s'",
		      what, got, want))
		return true;
	rec_dump(d, what);
	return false;
}

/* The @i-th accepted request. */
static struct rec_io nth(struct rec_dev *d, unsigned int i)
{
	struct rec_io r;

	for (unsigned int j = 0; rec_get_io(d, j, &r); j++)
		if (r.ret == BLK_STS_OK && !r.requeued && !i--)
			return r;
	CHECK_MSG(0, "no accepted request #%u", i);
	memset(&r, 0, sizeof(r));
	return r;
}

/* Held mode: wait for one more request, check its op, complete it. */
static void step(struct rec_dev *d, struct tio *t, enum req_op op,
		 unsigned int done_before)
{
	struct rec_io r;

	CHECK(rec_wait_held(d, 1, 3000));
	CHECK_EQ_U64(rec_nr_held(d), 1);
	r = nth(d, rec_accepted(d) - 1);
	CHECK_MSG(r.op == op, "next request is %s, expected %s",
		  blk_op_str(r.op), blk_op_str(op));
	/* the bio is not done while any step is outstanding */
	CHECK_EQ_U64(tio_done(t), done_before);
	rec_complete_all(d);
}

/*
 * Held mode: submit one bio and step it through @steps (F flush, W
 * write), then wait for it.
 */
static void submit_steps(struct rec_dev *d, struct tio *t, blk_opf_t opf,
			 sector_t sector, void *data, unsigned int len,
			 const char *steps)
{
	tio_submit(t, rec_disk(d), opf, sector, data, len);
	for (; *steps; steps++)
		step(d, t, *steps == 'F' ? REQ_OP_FLUSH : REQ_OP_WRITE, 0);
	CHECK(tio_wait(t, 1, 3000));
}

static unsigned long flush_ios(struct rec_dev *d)
{
	struct blk_disk_stats st;

	blk_disk_get_stats(rec_disk(d), &st);
	return st.ios[STAT_FLUSH];
}

static void test_preflush_empty(const char *sched)
{
	struct rec_dev *d = mkdev(false, REC_INLINE, sched);
	unsigned long f0;
	struct rec_io r;
	struct tio t;

	REQUIRE(d);
	test_begin("flush: empty PREFLUSH is one REQ_OP_FLUSH", 10);
	f0 = flush_ios(d);
	CHECK_EQ_INT(blkdev_flush(rec_disk(d)), 0);
	if (expect_seq(d, "F", "empty preflush")) {
		r = nth(d, 0);
		CHECK_EQ_U64(r.bytes, 0);
		CHECK_EQ_U64(r.nr_bios, 0);
	}
	CHECK_EQ_U64(flush_ios(d) - f0, 1);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_FLUSH, 0, NULL, 0), 0);
	expect_seq(d, "F", "REQ_OP_FLUSH bio");
	rec_destroy(d);

	d = mkdev(false, REC_HELD, sched);
	REQUIRE(d);
	test_begin("flush: the bio ends when the flush does", 10);
	tio_init(&t);
	submit_steps(d, &t, REQ_OP_WRITE | REQ_PREFLUSH, 0, NULL, 0, "F");
	CHECK_EQ_INT(t.req[0].err, 0);
	CHECK_EQ_U64(t.req[0].calls, 1);
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_sequences(const char *sched)
{
	struct rec_dev *d = mkdev(false, REC_HELD, sched), *fua;
	struct rec_io r;
	struct tio t;

	REQUIRE(d);
	test_begin("flush: PREFLUSH + data: FLUSH, then WRITE", 10);
	tio_init(&t);
	submit_steps(d, &t, REQ_OP_WRITE | REQ_PREFLUSH, 64, buf, KB(4), "FW");
	CHECK_EQ_INT(t.req[0].err, 0);
	if (expect_seq(d, "FW", "preflush+data")) {
		r = nth(d, 1);
		CHECK_EQ_U64(r.sector, 64);
		CHECK_EQ_U64(r.bytes, KB(4));
		CHECK_EQ_U64(r.cmd_flags & (REQ_PREFLUSH | REQ_FUA), 0);
		CHECK(r.cmd_flags & REQ_SYNC);
	}
	tio_destroy(&t);

	test_begin("flush: FUA without FUA support: WRITE, then FLUSH", 10);
	rec_clear_log(d);
	tio_init(&t);
	submit_steps(d, &t, REQ_OP_WRITE | REQ_FUA, 64, buf, KB(4), "WF");
	CHECK_EQ_INT(t.req[0].err, 0);
	if (expect_seq(d, "WF", "fua emulated"))
		CHECK_EQ_U64(nth(d, 0).cmd_flags & REQ_FUA, 0);
	tio_destroy(&t);

	test_begin("flush: PREFLUSH + FUA without FUA: FLUSH, WRITE, FLUSH",
		   10);
	rec_clear_log(d);
	tio_init(&t);
	submit_steps(d, &t, REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA, 64, buf,
		     KB(4), "FWF");
	CHECK_EQ_INT(t.req[0].err, 0);
	CHECK_EQ_U64(t.req[0].calls, 1);
	if (expect_seq(d, "FWF", "preflush+fua emulated"))
		CHECK_EQ_U64(nth(d, 1).cmd_flags & (REQ_FUA | REQ_PREFLUSH), 0);
	tio_destroy(&t);
	rec_destroy(d);

	fua = mkdev(true, REC_HELD, sched);
	REQUIRE(fua);
	test_begin("flush: FUA with FUA support: the write keeps REQ_FUA", 10);
	tio_init(&t);
	submit_steps(fua, &t, REQ_OP_WRITE | REQ_FUA, 64, buf, KB(4), "W");
	test_sleep_ms(20);	/* nothing may follow */
	if (expect_seq(fua, "W", "native fua"))
		CHECK(nth(fua, 0).cmd_flags & REQ_FUA);
	tio_destroy(&t);

	test_begin("flush: PREFLUSH + FUA with FUA support: FLUSH, WRITE(FUA)",
		   10);
	rec_clear_log(fua);
	tio_init(&t);
	submit_steps(fua, &t, REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA, 64, buf,
		     KB(4), "FW");
	test_sleep_ms(20);
	if (expect_seq(fua, "FW", "preflush+native fua")) {
		r = nth(fua, 1);
		CHECK(r.cmd_flags & REQ_FUA);
		CHECK(!(r.cmd_flags & REQ_PREFLUSH));
	}
	tio_destroy(&t);
	rec_destroy(fua);
}

static void test_sharing(const char *sched)
{
	struct rec_dev *d = mkdev(false, REC_HELD, sched);
	struct blk_flush_queue *fq;
	unsigned long issued0, f0;
	struct tio t;

	REQUIRE(d);
	fq = rec_queue(d)->fq;
	test_begin("flush: requests piling up share one flush", 10);
	issued0 = atomic_load(&fq->flushes_issued);
	f0 = flush_ios(d);
	tio_init(&t);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH, 0, NULL, 0);
	CHECK(rec_wait_held(d, 1, 3000));
	for (unsigned int i = 1; i < 6; i++)
		tio_submit(&t, rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH, 0,
			   NULL, 0);
	test_sleep_ms(20);
	/* one flush in flight at a time: the others wait for the next */
	CHECK_EQ_U64(rec_accepted(d), 1);
	CHECK_EQ_U64(tio_done(&t), 0);
	rec_complete_all(d);
	CHECK(tio_wait(&t, 1, 3000));
	CHECK(rec_wait_held(d, 1, 3000));
	CHECK_EQ_U64(tio_done(&t), 1);
	rec_complete_all(d);
	CHECK(tio_wait(&t, 6, 3000));
	CHECK_EQ_U64(t.errors, 0);
	expect_seq(d, "FF", "6 shared flushes");
	CHECK_EQ_U64(atomic_load(&fq->flushes_issued) - issued0, 2);
	CHECK_EQ_U64(flush_ios(d) - f0, 2);
	tio_destroy(&t);

	test_begin("flush: a flush waits while flush data is in flight", 10);
	rec_clear_log(d);
	tio_init(&t);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH, 0, buf, KB(4));
	CHECK(rec_wait_held(d, 1, 3000));	/* F1 */
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH, 8, buf, KB(4));
	rec_complete_all(d);			/* F1 done: A's data goes */
	CHECK(rec_wait_held(d, 1, 3000));
	test_sleep_ms(20);
	/* B's preflush is held back until A's data completes */
	expect_seq(d, "FW", "flush held back");
	rec_complete_all(d);			/* A done: F2 goes */
	CHECK(tio_wait(&t, 1, 3000));
	step(d, &t, REQ_OP_FLUSH, 1);
	step(d, &t, REQ_OP_WRITE, 1);
	CHECK(tio_wait(&t, 2, 3000));
	CHECK_EQ_U64(t.errors, 0);
	expect_seq(d, "FWFW", "two preflush writes");
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_errors(const char *sched)
{
	struct rec_dev *d = mkdev(false, REC_INLINE, sched);

	REQUIRE(d);
	test_begin("flush: a failed preflush fails the bio, no write", 10);
	rec_fail_flushes(d, 1, BLK_STS_IOERR);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH, 0,
				   buf, KB(4)), -EIO);
	expect_seq(d, "F", "failed preflush");
	rec_clear_log(d);
	rec_fail_flushes(d, 1, BLK_STS_MEDIUM);
	CHECK_EQ_INT(blkdev_flush(rec_disk(d)), -ENODATA);
	expect_seq(d, "F", "failed empty flush");

	test_begin("flush: a failed post-flush fails the FUA write", 10);
	rec_clear_log(d);
	rec_fail_flushes(d, 1, BLK_STS_IOERR);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_FUA, 0, buf,
				   KB(4)), -EIO);
	expect_seq(d, "WF", "failed postflush");

	test_begin("flush: a failed data step ends the sequence", 10);
	rec_clear_log(d);
	rec_set_error(d, 0, 8, BLK_STS_MEDIUM);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH |
				   REQ_FUA, 0, buf, KB(4)), -ENODATA);
	expect_seq(d, "FW", "failed data");
	rec_set_error(d, 0, 0, BLK_STS_OK);

	test_begin("flush: after errors the machine still works", 10);
	rec_clear_log(d);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE | REQ_PREFLUSH |
				   REQ_FUA, 0, buf, KB(4)), 0);
	expect_seq(d, "FWF", "after errors");
	rec_destroy(d);
}

static void run_all(const char *sched)
{
	test_preflush_empty(sched);
	test_sequences(sched);
	test_sharing(sched);
	test_errors(sched);
}

int main(void)
{
	struct fifo_stats st;

	test_init(2);
	buf = aligned_alloc(4096, KB(64));
	if (!buf)
		test_skip("no memory");
	memset(buf, 0x33, KB(64));

	run_all(NULL);

	fifo_test_register();
	fprintf(stderr, "== again with the fifo-test scheduler\n");
	run_all("fifo-test");
	fifo_stats_snapshot(&st);
	CHECK(st.prepared > 0);
	CHECK_EQ_U64(st.finished, st.prepared);
	CHECK_EQ_U64(st.queues, 0);
	elv_unregister(&fifo_test_elv);

	free(buf);
	return test_report();
}
