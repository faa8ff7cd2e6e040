// SPDX-License-Identifier: MIT
/*
 * Plug callbacks (blk_check_plugged, block/blk-core.c), checked with the
 * recording driver completing inline:
 *
 *  - without a plug there is nothing to register (NULL: act now);
 *  - one callback per (function, data): asking again returns it;
 *  - callbacks run once, when the plug is finished, after the plugged
 *    requests were dispatched (so they see the batch's completions),
 *    with from_schedule false; each frees its own struct;
 *  - requests a callback submits, and callbacks registered by callbacks
 *    or by completions during the flush, are handled in the same flush;
 *  - blk_flush_plug(plug, true) (a thread about to sleep) runs them with
 *    from_schedule true (its requests may be issued asynchronously then,
 *    as the kernel does) and the plug stays usable.
 */
#include <stdlib.h>

#include "block/blk.h"
#include "testlib.h"

static unsigned char buf[64 << 10];

/* A callback's record: how it ran and what the device had seen then. */
struct cb_log {
	unsigned int runs;
	bool from_schedule;
	unsigned int ios_seen;		/* rec_nr_ios() when it ran */
	unsigned int done_seen;		/* tio_done() when it ran */
	struct rec_dev *d;
	struct tio *t;
	bool submit;			/* submit one more write when run */
	bool chain;			/* register another callback when run */
	struct cb_log *next;		/* ... with this log */
};

struct test_cb {
	struct blk_plug_cb cb;
	struct cb_log *log;
};

static void record_cb(struct blk_plug_cb *cb, bool from_schedule);

static struct test_cb *check_plugged(struct cb_log *log)
{
	struct test_cb *tcb = (struct test_cb *)blk_check_plugged(record_cb, log,
							       sizeof(*tcb));

	if (tcb)
		tcb->log = log;
	return tcb;
}

static void record_cb(struct blk_plug_cb *cb, bool from_schedule)
{
	struct cb_log *log = ((struct test_cb *)cb)->log;

	CHECK(cb->data == log);
	log->runs++;
	log->from_schedule = from_schedule;
	log->ios_seen = rec_nr_ios(log->d);
	log->done_seen = tio_done(log->t);
	if (log->submit)
		tio_submit(log->t, rec_disk(log->d), REQ_OP_WRITE, 64, buf, 4096);
	if (log->chain)
		CHECK(check_plugged(log->next) != NULL);
	free(cb);
}

static struct rec_dev *mkdev(void)
{
	struct rec_config cfg;

	rec_config_init(&cfg);
	cfg.has_queue_rqs = true;
	return rec_create(&cfg);
}

static void test_no_plug(void)
{
	test_begin("plug cb: no plug, nothing registered", 10);
	CHECK(blk_check_plugged(record_cb, NULL, sizeof(struct test_cb)) ==
	      NULL);
}

static void test_once_after_dispatch(void)
{
	struct rec_dev *d = mkdev();
	struct cb_log a = { .d = d }, b = { .d = d };
	struct test_cb *ca, *cb;
	struct blk_plug plug;
	struct tio t;

	test_begin("plug cb: one per (fn, data), run once after dispatch", 10);
	tio_init(&t);
	a.t = b.t = &t;
	blk_start_plug(&plug);
	for (unsigned int i = 0; i < 4; i++)
		tio_submit(&t, rec_disk(d), REQ_OP_WRITE, i * 16, buf, 4096);
	ca = check_plugged(&a);
	cb = check_plugged(&b);
	CHECK(ca && cb && ca != cb);
	CHECK(check_plugged(&a) == ca);
	CHECK(check_plugged(&b) == cb);
	CHECK_EQ_U64(rec_nr_ios(d), 0);		/* still plugged */
	CHECK_EQ_U64(a.runs + b.runs, 0);
	blk_finish_plug(&plug);
	CHECK_EQ_U64(a.runs, 1);
	CHECK_EQ_U64(b.runs, 1);
	CHECK(!a.from_schedule && !b.from_schedule);
	CHECK_EQ_U64(a.ios_seen, 4);
	CHECK_EQ_U64(a.done_seen, 4);		/* inline completions */
	CHECK(tio_wait(&t, 4, 5000));
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_chained(void)
{
	struct rec_dev *d = mkdev();
	struct cb_log second = { .d = d };
	struct cb_log first = { .d = d, .submit = true, .chain = true,
				.next = &second };
	struct blk_plug plug;
	struct tio t;

	test_begin("plug cb: what a callback submits and registers runs too",
		   10);
	tio_init(&t);
	first.t = second.t = &t;
	blk_start_plug(&plug);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE, 0, buf, 4096);
	CHECK(check_plugged(&first) != NULL);
	blk_finish_plug(&plug);
	CHECK_EQ_U64(first.runs, 1);
	CHECK_EQ_U64(first.ios_seen, 1);
	CHECK_EQ_U64(second.runs, 1);
	/* the callback's write was plugged, then dispatched in the flush */
	CHECK_EQ_U64(rec_nr_ios(d), 2);
	CHECK(tio_wait(&t, 2, 5000));
	CHECK(blk_current_plug() == NULL);
	tio_destroy(&t);
	rec_destroy(d);
}

static void test_from_schedule(void)
{
	struct rec_dev *d = mkdev();
	struct cb_log a = { .d = d }, b = { .d = d };
	struct blk_plug plug;
	struct tio t;

	test_begin("plug cb: a flush before sleeping runs them, plug lives on",
		   10);
	tio_init(&t);
	a.t = b.t = &t;
	blk_start_plug(&plug);
	tio_submit(&t, rec_disk(d), REQ_OP_WRITE, 0, buf, 4096);
	CHECK(check_plugged(&a) != NULL);
	blk_flush_plug(&plug, true);
	CHECK_EQ_U64(a.runs, 1);
	CHECK(a.from_schedule);
	CHECK(blk_current_plug() == &plug);
	/* registering again after the flush makes a new one */
	CHECK(check_plugged(&a) != NULL);
	CHECK(check_plugged(&b) != NULL);
	blk_finish_plug(&plug);
	CHECK_EQ_U64(a.runs, 2);
	CHECK(!a.from_schedule);
	CHECK_EQ_U64(b.runs, 1);
	CHECK(tio_wait(&t, 1, 5000));
	tio_destroy(&t);
	rec_destroy(d);
}

int main(void)
{
	test_init(2);
	test_no_plug();
	test_once_after_dispatch();
	test_chained();
	test_from_schedule();
	return test_report();
}
