// SPDX-License-Identifier: MIT
/*
 * Request time-outs (block/blk-timeout.c): null_blk's timeout=N fault
 * injection with a short io_timeout (the lost requests end with
 * -ETIMEDOUT in bounded time, the others succeed, nr_timeouts counts
 * them), a driver without a ->timeout op (the core fails the request), a
 * ->timeout that asks for more time (BLK_EH_RESET_TIMER), and a late
 * completion after a time-out being ignored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define BLK		4096
#define IO_TIMEOUT_MS	100

static char bufs[16][BLK];

/* ---- null_blk timeout=N ---- */

static void null_timeouts(const char *mode, bool polled)
{
	const unsigned int nr = 16, every = 4;
	struct gendisk *disk;
	struct request_queue *q;
	struct tio w;
	struct tio_req io[16];
	char name[32], what[64], *dump = NULL;
	size_t dump_len = 0;
	unsigned int timed_out = 0;
	uint64_t t0, dl;
	FILE *f;

	snprintf(what, sizeof(what), "null_blk timeout=%u (%s%s)", every, mode,
		 polled ? ", polled" : "");
	test_begin(what, 20);
	snprintf(name, sizeof(name), "tmo%c%s", mode[8], polled ? "p" : "");
	disk = test_null_add(name, "size=16,memory_backed=1,%s,"
			     "completion_nsec=1000000,timeout=%u%s", mode,
			     every, polled ? ",poll_queues=1" : "");
	if (!disk)
		return;
	q = disk_queue(disk);
	test_attr_store(disk, "io_timeout", "100");
	tio_init(&w);
	t0 = test_now_ns();
	for (unsigned int i = 0; i < nr; i++)
		CHECK_MSG(tio_blkdev_submit(&w, &io[i], disk,
					    REQ_OP_READ |
						    (polled ? REQ_POLLED : 0),
					    (off_t)i * BLK, bufs[i], BLK) == 0,
			  "submit %u", i);
	dl = t0 + 2 * NSEC_PER_SEC * (test_slow() ? 3 : 1);
	while (tio_done(&w) < nr && test_now_ns() < dl) {
		if (polled)
			blkdev_poll(disk);
		else
			test_sleep_ms(5);
	}
	CHECK_MSG(tio_done(&w) == nr, "%s: %u of %u I/Os completed "
		  "in 2 s", what, tio_done(&w), nr);
	for (unsigned int i = 0; i < nr; i++) {
		uint64_t lat = io[i].done_ns - io[i].submit_ns;

		if (!atomic_load(&io[i].done))
			continue;
		if (io[i].err == -ETIMEDOUT) {
			timed_out++;
			CHECK_MSG(lat >= IO_TIMEOUT_MS * NSEC_PER_MSEC,
				  "%s: I/O %u timed out after %llu ms, before "
				  "io_timeout",
				  what, i, (unsigned long long)lat / 1000000);
			/* null_blk counts queue_rq calls: every 4th is lost */
			CHECK_MSG(i % every == every - 1,
				  "%s: I/O %u timed out; the lost ones are 3, "
				  "7, 11, 15",
				  what, i);
		} else {
			CHECK_MSG(io[i].err == 0, "%s: I/O %u failed: %d", what,
				  i, io[i].err);
		}
	}
	CHECK_MSG(timed_out == nr / every, "%s: %u I/Os timed out, want %u",
		  what, timed_out, nr / every);
	CHECK_MSG(atomic_load(&q->nr_timeouts) == nr / every,
		  "%s: nr_timeouts %lu, want %u", what,
		  atomic_load(&q->nr_timeouts), nr / every);
	f = open_memstream(&dump, &dump_len);
	if (f) {
		blk_mq_debug_dump(disk, f);
		fclose(f);
		CHECK_MSG(dump && strstr(dump, "timeouts=4"),
			  "%s: the debug dump does not show timeouts=4", what);
		free(dump);
	}
	CHECK_MSG(test_wait_idle(disk, 1000) == 0, "%s: in flight after all",
		  what);
	/* the device still works */
	{
		char w2[8192], r2[8192];

		test_attr_store(disk, "io_timeout", "30000");
		test_write_verify(disk, 1 << 20, sizeof(w2), 9, w2, r2);
	}
	tio_destroy(&w);
	test_dev_del(disk);
}

/* ---- a driver that holds requests ---- */

enum hold_mode { HOLD_COMPLETE, HOLD_FOREVER };

static _Atomic int hold_mode;
static struct request *_Atomic held;
static _Atomic int timeout_calls;
static _Atomic int resets_left;

static blk_status_t hold_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	blk_mq_start_request(bd->rq);
	if (atomic_load(&hold_mode) == HOLD_FOREVER) {
		atomic_store(&held, bd->rq);
		return BLK_STS_OK;
	}
	blk_mq_end_request(bd->rq, BLK_STS_OK);
	return BLK_STS_OK;
}

static void hold_complete(struct request *rq)
{
	blk_mq_end_request(rq, BLK_STS_OK);
}

/* Ask for more time @resets_left times, then complete it successfully. */
static enum blk_eh_timer_return hold_timeout(struct request *rq)
{
	atomic_fetch_add(&timeout_calls, 1);
	if (atomic_fetch_sub(&resets_left, 1) > 0)
		return BLK_EH_RESET_TIMER;
	atomic_store(&held, NULL);
	blk_mq_complete_request(rq);
	return BLK_EH_DONE;
}

static const struct blk_mq_ops hold_ops_no_timeout = {
	.queue_rq = hold_queue_rq,
	.complete = hold_complete,
};

static const struct blk_mq_ops hold_ops = {
	.queue_rq = hold_queue_rq,
	.complete = hold_complete,
	.timeout = hold_timeout,
};

struct hold_dev {
	struct blk_mq_tag_set set;
	struct gendisk *disk;
};

static bool hold_dev_init(struct hold_dev *h, const struct blk_mq_ops *ops,
			  const char *name)
{
	int ret;

	memset(h, 0, sizeof(*h));
	h->set.ops = ops;
	h->set.nr_hw_queues = 1;
	h->set.queue_depth = 8;
	h->set.flags = BLK_MQ_F_NO_SCHED;
	ret = blk_mq_alloc_tag_set(&h->set);
	if (!CHECK_MSG(ret == 0, "tag set: %s", blkstack_errmsg()))
		return false;
	h->disk = blk_mq_alloc_disk(&h->set, NULL, NULL);
	if (!CHECK_MSG(h->disk, "disk: %s", blkstack_errmsg()))
		goto free_set;
	ret = add_disk(h->disk, name, 16 * 2048);
	if (!CHECK_MSG(ret == 0, "add_disk: %s", blkstack_errmsg())) {
		put_disk(h->disk);
		goto free_set;
	}
	test_attr_store(h->disk, "io_timeout", "100");
	return true;
free_set:
	blk_mq_free_tag_set(&h->set);
	return false;
}

static void hold_dev_exit(struct hold_dev *h)
{
	del_gendisk(h->disk);
	put_disk(h->disk);
	blk_mq_free_tag_set(&h->set);
}

static bool wait_io(struct tio *w, struct tio_req *io, unsigned int ms)
{
	return tio_wait_pending(w, 0, ms) && atomic_load(&io->done);
}

static void test_no_timeout_op(void)
{
	struct hold_dev h;
	struct request_queue *q;
	struct tio w;
	struct tio_req io;
	struct request *rq;

	test_begin("a driver without ->timeout", 10);
	if (!hold_dev_init(&h, &hold_ops_no_timeout, "tmo_noop"))
		return;
	q = disk_queue(h.disk);
	tio_init(&w);

	/* completed in time: no time-out */
	atomic_store(&hold_mode, HOLD_COMPLETE);
	CHECK_MSG(tio_blkdev_submit(&w, &io, h.disk, REQ_OP_READ, 0, bufs[0],
				    BLK) == 0,
		  "submit");
	CHECK_MSG(wait_io(&w, &io, 1000) && io.err == 0, "prompt I/O: %d",
		  io.err);

	/* never completed: the core ends it with BLK_STS_TIMEOUT */
	atomic_store(&hold_mode, HOLD_FOREVER);
	CHECK_MSG(tio_blkdev_submit(&w, &io, h.disk, REQ_OP_READ, 0, bufs[0],
				    BLK) == 0,
		  "submit");
	CHECK_MSG(wait_io(&w, &io, 2000), "a request the driver never "
		  "completes did not time out in 2 s");
	CHECK_MSG(io.err == -ETIMEDOUT, "lost request ended with %d, want "
		  "-ETIMEDOUT", io.err);
	CHECK_MSG(io.done_ns - io.submit_ns >= IO_TIMEOUT_MS * NSEC_PER_MSEC,
		  "timed out after %llu ms < io_timeout",
		  (unsigned long long)(io.done_ns - io.submit_ns) / 1000000);
	CHECK_MSG(atomic_load(&q->nr_timeouts) == 1, "nr_timeouts %lu",
		  atomic_load(&q->nr_timeouts));
	/* the driver's late completion is ignored */
	rq = atomic_exchange(&held, NULL);
	if (rq)
		CHECK_MSG(!blk_mq_complete_request(rq),
			  "a completion after the time-out was accepted");
	CHECK_MSG(test_wait_idle(h.disk, 1000) == 0,
		  "in flight after the time-out");

	/* and the queue goes on */
	atomic_store(&hold_mode, HOLD_COMPLETE);
	CHECK_MSG(tio_blkdev_submit(&w, &io, h.disk, REQ_OP_WRITE, 0, bufs[0],
				    BLK) == 0,
		  "submit");
	CHECK_MSG(wait_io(&w, &io, 1000) && io.err == 0,
		  "I/O after a time-out");
	tio_destroy(&w);
	hold_dev_exit(&h);
}

static void test_reset_timer(void)
{
	struct hold_dev h;
	struct request_queue *q;
	struct tio w;
	struct tio_req io;

	test_begin("->timeout returning BLK_EH_RESET_TIMER", 10);
	if (!hold_dev_init(&h, &hold_ops, "tmo_reset"))
		return;
	q = disk_queue(h.disk);
	tio_init(&w);
	atomic_store(&hold_mode, HOLD_FOREVER);
	atomic_store(&timeout_calls, 0);
	atomic_store(&resets_left, 1);
	CHECK_MSG(tio_blkdev_submit(&w, &io, h.disk, REQ_OP_READ, 0, bufs[0],
				    BLK) == 0,
		  "submit");
	CHECK_MSG(wait_io(&w, &io, 3000), "no completion after a reset and a "
		  "second time-out");
	CHECK_MSG(io.err == 0, "the driver completed it from ->timeout, yet it "
		  "ended with %d", io.err);
	CHECK_MSG(atomic_load(&timeout_calls) == 2,
		  "->timeout called %d times, want 2",
		  atomic_load(&timeout_calls));
	CHECK_MSG(io.done_ns - io.submit_ns >=
			  2 * IO_TIMEOUT_MS * NSEC_PER_MSEC,
		  "two time-out periods took only %llu ms",
		  (unsigned long long)(io.done_ns - io.submit_ns) / 1000000);
	CHECK_MSG(atomic_load(&q->nr_timeouts) == 2, "nr_timeouts %lu, want 2",
		  atomic_load(&q->nr_timeouts));
	CHECK_MSG(test_wait_idle(h.disk, 1000) == 0, "in flight after all");
	tio_destroy(&w);
	hold_dev_exit(&h);
}

int main(void)
{
	test_init(0);
	null_timeouts("irqmode=1", false);
	null_timeouts("irqmode=0", false);
	null_timeouts("irqmode=2", false);
	null_timeouts("irqmode=1", true);
	test_no_timeout_op();
	test_reset_timer();
	return test_report();
}
