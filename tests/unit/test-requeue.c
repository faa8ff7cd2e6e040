// SPDX-License-Identifier: MIT
/*
 * A driver that cannot take a request now (block/blk-mq.c dispatch,
 * direct issue and requeue; blk-mq-sched.c SCHED_RESTART), seen from the
 * recording driver:
 *
 *  - BLK_STS_RESOURCE: the request is retried after a delay, even with
 *    nothing else in flight and while other requests stay in flight;
 *  - BLK_STS_DEV_RESOURCE: retried only when another request of the
 *    device completes (SCHED_RESTART), not by a timer;
 *  - blk_mq_requeue_request() from the driver: the request comes back
 *    (and its data is right), counted in nr_requeues;
 *  - a budget (get_budget false): dispatch stops at the budget and goes
 *    on as budget comes back, with and without a scheduler; refused
 *    requests give their budget back;
 *  - hctx->dispatch_busy rises under repeated RESOURCE and decays to 0
 *    once the driver takes requests again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define KB(n)	((n) * 1024U)

static unsigned char *buf;

static struct rec_dev *mkdev(enum rec_mode mode, bool budget,
			     unsigned int nr_budget)
{
	struct rec_config cfg;

	rec_config_init(&cfg);
	cfg.memory_backed = true;
	cfg.mode = mode;
	cfg.has_budget = budget;
	cfg.budget = nr_budget;
	return rec_create(&cfg);
}

static struct blk_mq_hw_ctx *hctx0(struct rec_dev *d)
{
	return rec_queue(d)->queue_hw_ctx[0];
}

static void test_resource(void)
{
	struct rec_dev *d = mkdev(REC_INLINE, false, 0), *h;
	uint64_t t0, ms;
	struct tio t;

	REQUIRE(d);
	test_begin("RESOURCE: retried after a delay with nothing in flight",
		   10);
	rec_fail_next(d, 0, 3, BLK_STS_RESOURCE);
	t0 = test_now_ns();
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 0, buf, KB(4)),
		     0);
	ms = (test_now_ns() - t0) / 1000000;
	CHECK_EQ_U64(rec_nr_ios(d), 4);
	CHECK_EQ_U64(rec_accepted(d), 1);
	for (unsigned int i = 0; i < 3; i++)
		CHECK_EQ_U64(rec_io_at(d, i).ret, BLK_STS_RESOURCE);
	CHECK_EQ_U64(rec_io_at(d, 3).sector, 0);
	/* BLK_MQ_RESOURCE_DELAY (3 ms), not a busy loop */
	CHECK_MSG(ms >= 3, "three refusals retried within %llu ms",
		  (unsigned long long)ms);
	rec_destroy(d);

	h = mkdev(REC_HELD, false, 0);
	REQUIRE(h);
	test_begin("RESOURCE: retried while another request stays in flight",
		   10);
	tio_init(&t);
	tio_submit(&t, rec_disk(h), REQ_OP_WRITE, 0, buf, KB(4));
	CHECK(rec_wait_held(h, 1, 3000));
	rec_fail_next(h, 0, 2, BLK_STS_RESOURCE);
	tio_submit(&t, rec_disk(h), REQ_OP_WRITE, 64, buf, KB(4));
	/* the first stays held: only the timer can bring the second in */
	CHECK(rec_wait_held(h, 2, 3000));
	CHECK_EQ_U64(rec_nr_ios(h), 4);
	CHECK_EQ_U64(tio_done(&t), 0);
	rec_complete_all(h);
	CHECK(tio_wait(&t, 2, 3000));
	CHECK_EQ_U64(t.errors, 0);
	tio_destroy(&t);
	rec_destroy(h);
}

static void test_dev_resource(void)
{
	struct rec_dev *d = mkdev(REC_HELD, false, 0);
	struct tio t;

	REQUIRE(d);
	test_begin("DEV_RESOURCE: retried when a request of the device "
		   "completes", 10);
	tio_init(&t);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE, 0, buf, KB(4));
	CHECK(rec_wait_held(d, 1, 3000));
	rec_fail_next(d, 0, 2, BLK_STS_DEV_RESOURCE);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE, 64, buf, KB(4));
	CHECK(rec_wait_ios(d, 3, 3000));
	test_sleep_ms(50);
	/* no timer: nothing happens until the first one completes */
	CHECK_EQ_U64(rec_nr_ios(d), 3);
	CHECK_EQ_U64(rec_io_at(d, 1).ret, BLK_STS_DEV_RESOURCE);
	CHECK_EQ_U64(rec_io_at(d, 2).ret, BLK_STS_DEV_RESOURCE);
	CHECK(blk_mq_sched_needs_restart(hctx0(d)));
	CHECK_EQ_U64(rec_complete_n(d, 1), 1);
	CHECK(tio_wait(&t, 1, 3000));
	CHECK(rec_wait_held(d, 1, 3000));
	CHECK_EQ_U64(rec_nr_ios(d), 4);
	CHECK_EQ_U64(rec_io_at(d, 3).sector, 64);
	CHECK_EQ_U64(rec_io_at(d, 3).ret, BLK_STS_OK);
	rec_complete_all(d);
	CHECK(tio_wait(&t, 2, 3000));
	CHECK_EQ_U64(t.errors, 0);
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_requeue(void)
{
	struct rec_dev *d = mkdev(REC_INLINE, false, 0);
	struct request_queue *q;
	unsigned long rq0, hr0;
	unsigned char *r;
	struct tio t;

	REQUIRE(d);
	q = rec_queue(d);
	test_begin("requeue: a request the driver requeues comes back", 10);
	rq0 = atomic_load(&q->nr_requeues);
	hr0 = atomic_load(&hctx0(d)->requeued);
	test_fill(buf, KB(16), 1, KB(64));
	rec_requeue_next(d, 1);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 128, buf,
				   KB(16)), 0);
	CHECK_EQ_U64(rec_nr_ios(d), 2);
	CHECK_EQ_U64(rec_accepted(d), 1);
	CHECK(rec_io_at(d, 0).requeued);
	CHECK_EQ_U64(rec_io_at(d, 1).sector, 128);
	CHECK_EQ_U64(rec_io_at(d, 1).bytes, KB(16));
	CHECK_EQ_U64(atomic_load(&q->nr_requeues) - rq0, 1);
	CHECK(atomic_load(&hctx0(d)->requeued) - hr0 >= 1);
	r = malloc(KB(16));
	REQUIRE(r);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_READ, 128, r, KB(16)),
		     0);
	CHECK(test_verify(r, KB(16), 1, KB(64)) < 0);
	free(r);

	test_begin("requeue: three times in a row, then held", 10);
	rec_clear_log(d);
	rec_set_mode(d, REC_HELD);
	rec_requeue_next(d, 3);
	tio_init(&t);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE, 256, buf, KB(4));
	CHECK(rec_wait_held(d, 1, 3000));
	CHECK_EQ_U64(rec_nr_ios(d), 4);
	CHECK_EQ_U64(tio_done(&t), 0);
	rec_complete_all(d);
	CHECK(tio_wait(&t, 1, 3000));
	CHECK_EQ_INT(t.req[0].err, 0);
	CHECK_EQ_U64(t.req[0].calls, 1);
	tio_destroy(&t);
	rec_destroy(d);
}

/* Submit @n writes, check the budget holds dispatch, then drain. */
static void budget_run(struct rec_dev *d, unsigned int n, unsigned int budget)
{
	struct tio t;

	tio_init(&t);
	for (unsigned int i = 0; i < n; i++)
		tio_submit(&t, rec_disk(d), REQ_OP_WRITE, i * 64, buf, KB(4));
	CHECK(rec_wait_held(d, budget, 3000));
	test_sleep_ms(30);
	CHECK_EQ_U64(rec_accepted(d), budget);
	CHECK_EQ_U64(rec_budget_in_use(d), budget);
	CHECK(rec_budget_denied(d) > 0);
	CHECK_EQ_U64(tio_done(&t), 0);
	for (unsigned int done = 0; done < n; done++) {
		/* each completion gives a unit back: one more goes */
		CHECK(rec_wait_held(d, 1, 3000));
		CHECK_EQ_U64(rec_complete_n(d, 1), 1);
		CHECK(tio_wait(&t, done + 1, 3000));
		if (done + 1 + budget <= n)
			CHECK(rec_wait_accepted(d, done + 1 + budget, 3000));
		CHECK(rec_budget_in_use(d) <= budget);
	}
	CHECK(tio_wait(&t, n, 3000));
	CHECK_EQ_U64(t.errors, 0);
	CHECK_EQ_U64(rec_accepted(d), n);
	CHECK(rec_budget_max(d) <= budget);
	CHECK_EQ_U64(rec_budget_in_use(d), 0);
	tio_destroy(&t);
}

static void test_budget(void)
{
	struct rec_dev *d = mkdev(REC_HELD, true, 2);

	REQUIRE(d);
	test_begin("budget: dispatch waits for budget, resumes as it returns",
		   10);
	budget_run(d, 6, 2);

	test_begin("budget: the same through a scheduler", 10);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "scheduler",
					  "fifo-test"), 0);
	rec_clear_log(d);
	budget_run(d, 6, 2);
	CHECK_EQ_INT(blk_queue_attr_store(rec_disk(d), "scheduler", "none"),
		     0);
	rec_destroy(d);

	d = mkdev(REC_INLINE, true, 1);
	REQUIRE(d);
	test_begin("budget: a refused request gives its budget back", 10);
	rec_fail_next(d, 0, 2, BLK_STS_RESOURCE);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 0, buf, KB(4)),
		     0);
	rec_fail_next(d, 0, 1, BLK_STS_DEV_RESOURCE);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 0, buf, KB(4)),
		     0);
	rec_fail_next(d, 0, 1, BLK_STS_IOERR);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 0, buf, KB(4)),
		     -EIO);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 0, buf, KB(4)),
		     0);
	CHECK_EQ_U64(rec_accepted(d), 3);
	CHECK_EQ_U64(rec_budget_max(d), 1);
	CHECK_EQ_U64(rec_budget_in_use(d), 0);
	rec_destroy(d);
}

static void test_dispatch_busy(void)
{
	struct rec_dev *d = mkdev(REC_INLINE, false, 0);
	struct blk_mq_hw_ctx *hctx;
	unsigned int busy;

	REQUIRE(d);
	hctx = hctx0(d);
	test_begin("dispatch_busy: rises under RESOURCE, decays after", 10);
	CHECK_EQ_U64(atomic_load(&hctx->dispatch_busy), 0);
	rec_fail_next(d, 0, 20, BLK_STS_RESOURCE);
	CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, 0, buf, KB(4)),
		     0);
	CHECK_EQ_U64(rec_nr_ios(d), 21);
	busy = atomic_load(&hctx->dispatch_busy);
	CHECK_MSG(busy > 0, "dispatch_busy is %u after 20 refusals", busy);
	for (unsigned int i = 0; i < 20; i++)
		CHECK_EQ_INT(test_bio_sync(rec_disk(d), REQ_OP_WRITE, i * 8,
					   buf, KB(4)), 0);
	CHECK_EQ_U64(rec_accepted(d), 21);
	busy = atomic_load(&hctx->dispatch_busy);
	CHECK_MSG(busy == 0, "dispatch_busy still %u after 20 good requests",
		  busy);
	rec_destroy(d);
}

int main(void)
{
	test_init(2);
	buf = aligned_alloc(4096, KB(64));
	if (!buf)
		test_skip("no memory");
	memset(buf, 0x44, KB(64));
	fifo_test_register();

	test_resource();
	test_dev_resource();
	test_requeue();
	test_budget();
	test_dispatch_busy();

	elv_unregister(&fifo_test_elv);
	free(buf);
	return test_report();
}
