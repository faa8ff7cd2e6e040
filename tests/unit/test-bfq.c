// SPDX-License-Identifier: MIT
/*
 * block/bfq-iosched.c and block/bfq-wf2q.c, on null_blk with timed
 * completions (irqmode=2), where each request takes completion_nsec
 * whatever else is in flight, so one issuer at queue depth 1 cannot use
 * the device alone and what each gets is the scheduler's choice:
 *
 *  - weights: three sequential readers at depth 1 with io_context
 *    weights 100, 200 and 400 get service (completed sectors) 1:2:4;
 *    with ioprio levels 0 and 4 (weights 80 and 40), 2:1;
 *  - budget timeout: a seeky issuer that never drains its queue is
 *    expired by timeout_sync, not before its budget with a long one;
 *  - low_latency: explicit weights are not raised, raised queues get
 *    short turns, an interactive raising ends after 120000 sectors;
 *  - preemption: an arrival of higher weight takes the device, one of
 *    equal weight does not;
 *  - peak rate: max_budget, unset, follows the device's rate;
 *  - idling: two sequential readers are each served a budget at a time
 *    (the device waits slice_idle for the next request), and switch at
 *    every request with slice_idle 0; on a non-rotational device with a
 *    deep queue idling turns itself off;
 *  - the iosched/ attributes: defaults, stores, bad values refused;
 *  - the counters in the debug dump add up;
 *  - switching none <-> bfq 100 times under a verifying load, nothing
 *    lost or duplicated, on sim ssd, sim hdd and two-queue null_blk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "lib/prandom.h"
#include "testlib.h"

#define KB(n)	((n) * 1024U)

static struct gendisk *bfq_null(const char *extra)
{
	struct gendisk *disk = test_null_add("bfq0", "size=1G,irqmode=2,%s",
					     extra);

	if (!disk)
		return NULL;
	if (test_attr_store(disk, "scheduler", "bfq")) {
		test_dev_del(disk);
		return NULL;
	}
	return disk;
}

static void bfq_set(struct gendisk *disk, const char *attr, const char *val)
{
	char name[64];

	snprintf(name, sizeof(name), "iosched/%s", attr);
	test_attr_store(disk, name, val);
}

/* A counter from the dump line starting with @line ("bfq:"), or -1. */
static long dump_counter(struct gendisk *disk, const char *line,
			 const char *name)
{
	char key[64];

	snprintf(key, sizeof(key), "  %s", line);
	return test_dump_field(disk, key, name);
}

static long expired(struct gendisk *disk, const char *reason)
{
	return dump_counter(disk, "bfq expired:", reason);
}

/*
 * test_wait_idle(), then until bfq has heard of every completion: the
 * scheduler hears of one after the disk's counters (on a loaded host,
 * late enough for a check between the two to see it in flight).
 */
static void bfq_wait_idle(struct gendisk *disk)
{
	CHECK_EQ_U64(test_wait_idle(disk, 3000), 0);
	for (unsigned int i = 0; i < 3000 &&
	     dump_counter(disk, "bfq:", "in_driver") != 0; i++)
		test_sleep_ms(1);
}

/* ---- readers: one io_context each, one request at a time ---- */

struct reader {
	pthread_t thread;
	struct gendisk *disk;
	struct io_context *ioc;
	_Atomic bool *stop;
	bool seeky;
	unsigned int depth;		/* seeky readers: requests in flight */
	sector_t base;
	_Atomic unsigned long long sectors;	/* completed */
	unsigned long errors;
};

static void *seq_reader(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf = aligned_alloc(4096, KB(64));
	sector_t pos = r->base;

	if (!buf)
		return NULL;
	blk_set_current_ioc(r->ioc);
	while (!atomic_load(r->stop)) {
		if (test_bio_sync(r->disk, REQ_OP_READ, pos, buf, KB(64)) < 0)
			r->errors++;
		else
			atomic_fetch_add(&r->sectors, KB(64) >> 9);
		pos += KB(64) >> 9;
		if (pos >= r->base + (1U << 18))	/* stay in 128 MiB */
			pos = r->base;
	}
	blk_set_current_ioc(NULL);
	free(buf);
	return NULL;
}

/* Random 4 KiB reads, @depth in flight, never letting the queue drain. */
static void *seeky_reader(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf = aligned_alloc(4096, KB(4));
	uint64_t rnd = 42;
	struct tio t;

	if (!buf)
		return NULL;
	tio_init(&t);
	blk_set_current_ioc(r->ioc);
	while (!atomic_load(r->stop)) {
		while (tio_pending(&t) < r->depth && t.nr < TIO_MAX)
			tio_submit(&t, r->disk, REQ_OP_READ,
				   (prandom_u64(&rnd) % (1U << 17)) * 8, buf,
				   KB(4));
		if (t.nr >= TIO_MAX) {
			tio_wait(&t, t.nr, 5000);
			tio_destroy(&t);
			tio_init(&t);
			continue;
		}
		tio_wait_pending(&t, r->depth - 1, 5000);
	}
	tio_wait(&t, t.nr, 5000);
	r->errors += t.errors;
	tio_destroy(&t);
	blk_set_current_ioc(NULL);
	free(buf);
	return NULL;
}

static void readers_start(struct reader *r, unsigned int n,
			  struct gendisk *disk, _Atomic bool *stop)
{
	for (unsigned int i = 0; i < n; i++) {
		r[i].disk = disk;
		r[i].stop = stop;
		r[i].base = (sector_t)i << 18;
		atomic_init(&r[i].sectors, 0);
		pthread_create(&r[i].thread, NULL,
			       r[i].seeky ? seeky_reader : seq_reader, &r[i]);
	}
}

static void readers_stop(struct reader *r, unsigned int n, _Atomic bool *stop)
{
	atomic_store(stop, true);
	for (unsigned int i = 0; i < n; i++) {
		pthread_join(r[i].thread, NULL);
		CHECK_EQ_U64(r[i].errors, 0);
	}
}

/*
 * Sectors each of @n readers completes in @ms after a warm-up; true
 * when every share is within 20% of @want[i] / sum(@want).
 */
static void check_shares(struct reader *r, unsigned int n,
			 const unsigned int *want, unsigned int ms)
{
	unsigned long long before[4], got[4], total = 0;
	unsigned int wsum = 0;

	test_sleep_ms(300);
	for (unsigned int i = 0; i < n; i++)
		before[i] = atomic_load(&r[i].sectors);
	test_sleep_ms(ms);
	for (unsigned int i = 0; i < n; i++) {
		got[i] = atomic_load(&r[i].sectors) - before[i];
		total += got[i];
		wsum += want[i];
	}
	if (!CHECK_MSG(total > 0, "no service at all"))
		return;
	for (unsigned int i = 0; i < n; i++) {
		double share = (double)got[i] / (double)total;
		double expect = (double)want[i] / wsum;

		printf("   reader %u (weight %u): %llu sectors, share %.3f, "
		       "want %.3f\n", i, want[i], got[i], share, expect);
		CHECK_MSG(share > expect * 0.8 && share < expect * 1.2,
			  "reader %u: share %.3f, want %.3f +- 20%%", i,
			  share, expect);
	}
}

static void test_weights(void)
{
	static const unsigned int weights[] = { 100, 200, 400 };
	struct gendisk *disk = bfq_null("rotational=1,completion_nsec=100000");
	struct reader r[3];
	_Atomic bool stop = false;

	test_begin("weights 100/200/400: service 1:2:4", 20);
	if (!disk)
		return;
	bfq_set(disk, "low_latency", "0");
	/*
	 * More, shorter turns in the window; idling long enough that a
	 * reader thread descheduled on a busy machine keeps its turn.
	 */
	bfq_set(disk, "max_budget", "4096");
	bfq_set(disk, "slice_idle", "20");
	memset(r, 0, sizeof(r));
	for (unsigned int i = 0; i < 3; i++)
		r[i].ioc = ioc_create(100 + (pid_t)i, IOPRIO_DEFAULT,
				      (uint16_t)weights[i], "weighted");
	readers_start(r, 3, disk, &stop);
	check_shares(r, 3, weights, test_slow() ? 3000 : 2000);
	readers_stop(r, 3, &stop);
	bfq_wait_idle(disk);
	CHECK(expired(disk, "budget_exhausted") > 10);
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "dispatched"),
		     dump_counter(disk, "bfq:", "completed"));
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "inserted"),
		     dump_counter(disk, "bfq:", "completed"));
	for (unsigned int i = 0; i < 3; i++)
		put_io_context(r[i].ioc);
	test_dev_del(disk);
}

static void test_ioprio_weights(void)
{
	static const unsigned int weights[] = { 80, 40 };
	struct gendisk *disk = bfq_null("rotational=1,completion_nsec=100000");
	struct reader r[2];
	_Atomic bool stop = false;

	test_begin("ioprio levels 0 and 4: weights 80 and 40", 20);
	if (!disk)
		return;
	bfq_set(disk, "low_latency", "0");
	bfq_set(disk, "max_budget", "4096");
	bfq_set(disk, "slice_idle", "20");
	memset(r, 0, sizeof(r));
	r[0].ioc = ioc_create(200, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 0), 0,
			      "be0");
	r[1].ioc = ioc_create(201, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 4), 0,
			      "be4");
	readers_start(r, 2, disk, &stop);
	check_shares(r, 2, weights, 1500);
	readers_stop(r, 2, &stop);
	for (unsigned int i = 0; i < 2; i++)
		put_io_context(r[i].ioc);
	test_dev_del(disk);
}

/* ---- budget timeout ---- */

/*
 * A seeky reader for 400 ms, and on until the queue has had @until
 * budget timeouts (5 s at most): a reader thread late on a loaded host
 * lets its queue run dry, and the turn ends for want of requests before
 * its time is up, so a fixed window may hold few timeouts.
 */
static long run_seeky(const char *timeout_ms, long until)
{
	struct gendisk *disk = bfq_null("rotational=1,completion_nsec=2000000");
	struct reader r;
	_Atomic bool stop = false;
	long n;

	if (!disk)
		return -1;
	bfq_set(disk, "timeout_sync", timeout_ms);
	/* a raised queue gets short budgets: this is about plain ones */
	bfq_set(disk, "low_latency", "0");
	/* a budget it cannot use up in the test's 400 ms */
	bfq_set(disk, "max_budget", "65536");
	memset(&r, 0, sizeof(r));
	r.seeky = true;
	r.depth = 8;
	r.ioc = ioc_create(300, IOPRIO_DEFAULT, 0, "seeky");
	readers_start(&r, 1, disk, &stop);
	test_sleep_ms(400);
	for (int i = 0; i < 100 && expired(disk, "budget_timeout") < until; i++)
		test_sleep_ms(50);
	readers_stop(&r, 1, &stop);
	test_wait_idle(disk, 3000);
	n = expired(disk, "budget_timeout");
	/*
	 * Its budget can run out only after the queue ran dry (a reader
	 * thread late on a loaded host) and came back to finish what was
	 * left of a budget shrunk for it.
	 */
	CHECK_MSG(expired(disk, "budget_exhausted") <=
		  expired(disk, "too_idle") + expired(disk, "no_more_requests"),
		  "%ld budgets used up, %ld turns ended dry",
		  expired(disk, "budget_exhausted"),
		  expired(disk, "too_idle") + expired(disk, "no_more_requests"));
	CHECK_MSG(dump_counter(disk, "bfq queue pid=300", "seeky") == 1,
		  "the random reader is not seen as seeky");
	put_io_context(r.ioc);
	test_dev_del(disk);
	return n;
}

static void test_budget_timeout(void)
{
	long n;

	test_begin("timeout_sync expires a seeky queue", 20);
	n = run_seeky("20", 5);
	CHECK_MSG(n >= 5, "%ld budget timeouts in 5 s of timeout_sync 20 ms",
		  n);
	test_begin("not with timeout_sync 10 s", 20);
	n = run_seeky("10000", 0);
	CHECK_MSG(n == 0, "%ld budget timeouts", n);
}

/* ---- idling ---- */

/*
 * Two sequential readers for @ms, and on until 400 requests were
 * dispatched (5 s at most): the relations checked are per request, and
 * a loaded host may give few in @ms.
 */
static void run_two_readers(struct gendisk *disk, unsigned int ms)
{
	struct reader r[2];
	_Atomic bool stop = false;

	memset(r, 0, sizeof(r));
	for (unsigned int i = 0; i < 2; i++)
		r[i].ioc = ioc_create(400 + (pid_t)i, IOPRIO_DEFAULT, 0, "seq");
	readers_start(r, 2, disk, &stop);
	test_sleep_ms(ms);
	for (int i = 0; i < 500 && atomic_load(&r[0].sectors) +
	     atomic_load(&r[1].sectors) < 400 * (KB(64) >> 9); i++)
		test_sleep_ms(10);
	readers_stop(r, 2, &stop);
	test_wait_idle(disk, 3000);
	for (unsigned int i = 0; i < 2; i++)
		put_io_context(r[i].ioc);
}

static void test_idling(void)
{
	struct gendisk *disk;
	long exhausted, nomore, dispatched;

	test_begin("slice_idle: a sequential reader keeps the device", 20);
	disk = bfq_null("rotational=1,completion_nsec=100000");
	if (!disk)
		return;
	/* raised (new) queues get short budgets: this is about idling */
	bfq_set(disk, "low_latency", "0");
	/*
	 * Not the default 8 ms: a reader thread descheduled that long on
	 * a loaded host would end its turn (too_idle), and one often late
	 * would be found not worth idling for (think time over slice_idle).
	 */
	bfq_set(disk, "slice_idle", "40");
	/*
	 * Nor turns ended by the default 125 ms timeout on a host where a
	 * request takes the reader thread milliseconds: a turn is a
	 * budget's worth (128 requests of 64 KiB at most).
	 */
	bfq_set(disk, "timeout_sync", "500");
	run_two_readers(disk, 500);
	exhausted = expired(disk, "budget_exhausted");
	nomore = expired(disk, "no_more_requests") +
		 expired(disk, "too_idle");
	dispatched = dump_counter(disk, "bfq:", "dispatched");
	printf("   idling: %ld requests, %ld budgets used up, %ld timed out, "
	       "%ld switches for want of requests\n", dispatched, exhausted,
	       expired(disk, "budget_timeout"), nomore);
	/*
	 * Idle waits end by the awaited request. Not counted per request:
	 * one that comes before bfq hears of the last completion (the
	 * completing thread descheduled between waking the reader and
	 * finishing the request) needs no wait at all.
	 */
	CHECK_MSG(dump_counter(disk, "bfq:", "idle_hits") >
		  dump_counter(disk, "bfq:", "idle_waits") / 2,
		  "%ld idle waits, %ld hits, %ld requests",
		  dump_counter(disk, "bfq:", "idle_waits"),
		  dump_counter(disk, "bfq:", "idle_hits"), dispatched);
	/* turns end by budget (or its timeout on a loaded machine) */
	CHECK_MSG(nomore * 10 < dispatched,
		  "%ld no_more_requests/too_idle in %ld requests", nomore,
		  dispatched);
	CHECK_MSG(dump_counter(disk, "bfq:", "activations") * 10 < dispatched,
		  "%ld turns for %ld requests", dump_counter(disk, "bfq:",
		  "activations"), dispatched);
	test_dev_del(disk);

	test_begin("slice_idle 0: the queues alternate at every request", 20);
	disk = bfq_null("rotational=1,completion_nsec=100000");
	if (!disk)
		return;
	bfq_set(disk, "slice_idle", "0");
	run_two_readers(disk, 500);
	/* ended empty, or taken over by the other once it was not worth
	 * idling for (preempted) */
	nomore = expired(disk, "no_more_requests") +
		 expired(disk, "preempted");
	dispatched = dump_counter(disk, "bfq:", "dispatched");
	printf("   no idling: %ld requests, %ld no_more_requests/preempted\n",
	       dispatched, nomore);
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "idle_waits"), 0);
	CHECK_MSG(nomore > dispatched / 2, "%ld no_more_requests/preempted "
		  "in %ld requests", nomore, dispatched);
	test_dev_del(disk);
}

/* Deep queue on flash: hw_tag found, idling off for equal weights. */
static void test_nonrot_deep(void)
{
	struct gendisk *disk = bfq_null("completion_nsec=100000");
	struct reader r[2];
	_Atomic bool stop = false;
	long waits;

	test_begin("non-rotational, deep queue: no idling", 20);
	if (!disk)
		return;
	memset(r, 0, sizeof(r));
	for (unsigned int i = 0; i < 2; i++) {
		r[i].ioc = ioc_create(500 + (pid_t)i, IOPRIO_DEFAULT, 0, "deep");
		r[i].seeky = true;
		r[i].depth = 8;
	}
	readers_start(r, 2, disk, &stop);
	test_sleep_ms(300);
	/*
	 * hw_tag is found over 32 dispatches with the queue deep, and
	 * sampled again while not found: reader threads late on a loaded
	 * host may take more than 300 ms to keep it deep that long.
	 */
	for (int i = 0; i < 100 && dump_counter(disk, "bfq:", "hw_tag") != 1;
	     i++)
		test_sleep_ms(50);
	waits = dump_counter(disk, "bfq:", "idle_waits");
	test_sleep_ms(300);
	readers_stop(r, 2, &stop);
	test_wait_idle(disk, 3000);
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "hw_tag"), 1);
	CHECK_MSG(dump_counter(disk, "bfq:", "idle_waits") == waits,
		  "idled after hw_tag was found");
	for (unsigned int i = 0; i < 2; i++)
		put_io_context(r[i].ioc);
	test_dev_del(disk);
}

/* ---- low_latency ---- */


/*
 * Two seeky readers of equal weight on a disk: with NCQ (hw_tag found)
 * idling is off, as the drive orders every queue's commands itself;
 * on a disk taking one command at a time (hw_tag 0) it stays on.
 * Returns the idle waits after hw_tag was sampled, or -1.
 */
static long seeky_disk_idle_waits(const char *null_args, long want_hw_tag)
{
	struct gendisk *disk = bfq_null(null_args);
	struct reader r[2];
	_Atomic bool stop = false;
	long waits;

	if (!disk)
		return -1;
	/* raised (new) queues make weights differ for a while */
	bfq_set(disk, "low_latency", "0");
	/*
	 * A queue of depth 1 gets 2 scheduler tags: too few requests to
	 * sample hw_tag (as a SCSI disk at queue_depth 1 keeps its host's
	 * tags, the scheduler is given more)
	 */
	test_attr_store(disk, "nr_requests", "64");
	memset(r, 0, sizeof(r));
	for (unsigned int i = 0; i < 2; i++) {
		r[i].ioc = ioc_create(600 + (pid_t)i, IOPRIO_DEFAULT, 0, "disk");
		r[i].seeky = true;
		r[i].depth = 8;
	}
	readers_start(r, 2, disk, &stop);
	test_sleep_ms(300);
	for (int i = 0; i < 100 &&
	     dump_counter(disk, "bfq:", "hw_tag") != want_hw_tag; i++)
		test_sleep_ms(50);
	waits = dump_counter(disk, "bfq:", "idle_waits");
	test_sleep_ms(300);
	readers_stop(r, 2, &stop);
	test_wait_idle(disk, 3000);
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "hw_tag"), want_hw_tag);
	waits = dump_counter(disk, "bfq:", "idle_waits") - waits;
	for (unsigned int i = 0; i < 2; i++)
		put_io_context(r[i].ioc);
	test_dev_del(disk);
	return waits;
}

static void test_rot_ncq(void)
{
	long waits;

	test_begin("disk with NCQ: no idling for seeky queues", 20);
	waits = seeky_disk_idle_waits("rotational=1,completion_nsec=100000", 1);
	CHECK_MSG(waits == 0, "%ld idle waits after hw_tag was found", waits);

	test_begin("disk without a queue: idling for seeky queues", 20);
	waits = seeky_disk_idle_waits("rotational=1,hw_queue_depth=1,"
				      "completion_nsec=100000", 0);
	CHECK_MSG(waits > 0, "%ld idle waits with hw_tag 0", waits);
}

/* A reader of one 4 KiB block every @ms, for @n periods. */
static void periodic_reader(struct gendisk *disk, struct io_context *ioc,
			    unsigned int n, unsigned int ms)
{
	unsigned char *buf = aligned_alloc(4096, KB(4));

	if (!CHECK(buf))
		return;
	blk_set_current_ioc(ioc);
	for (unsigned int i = 0; i < n; i++) {
		CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_READ, 5000 + i * 8, buf,
					   KB(4)), 0);
		test_sleep_ms(ms);
	}
	blk_set_current_ioc(NULL);
	free(buf);
}

static void run_low_latency(const char *on, long *interactive, long *soft_rt)
{
	struct gendisk *disk = bfq_null("rotational=1,completion_nsec=100000");
	struct io_context *ioc = ioc_create(600, IOPRIO_DEFAULT, 0, "player");

	*interactive = *soft_rt = -1;
	if (!disk || !CHECK(ioc))
		goto out;
	bfq_set(disk, "low_latency", on);
	periodic_reader(disk, ioc, 10, 30);
	*interactive = dump_counter(disk, "bfq:", "wr_interactive");
	*soft_rt = dump_counter(disk, "bfq:", "wr_soft_rt");
out:
	put_io_context(ioc);
	test_dev_del(disk);
}

static void test_low_latency(void)
{
	long interactive, soft_rt;

	test_begin("low_latency: a new queue is raised, a periodic one is "
		   "soft real-time", 20);
	run_low_latency("1", &interactive, &soft_rt);
	CHECK_EQ_U64(interactive, 1);
	CHECK_MSG(soft_rt >= 5, "%ld soft real-time raisings in 10 periods",
		  soft_rt);
	test_begin("low_latency 0: no raising", 20);
	run_low_latency("0", &interactive, &soft_rt);
	CHECK_EQ_U64(interactive, 0);
	CHECK_EQ_U64(soft_rt, 0);
}

/* @n sequential 64 KiB reads from @base as @ioc's issuer. */
static void seq_reads(struct gendisk *disk, struct io_context *ioc,
		      sector_t base, unsigned int n)
{
	unsigned char *buf = aligned_alloc(4096, KB(64));

	if (!CHECK(buf))
		return;
	blk_set_current_ioc(ioc);
	for (unsigned int i = 0; i < n; i++)
		if (!CHECK_EQ_INT(test_bio_sync(disk, REQ_OP_READ,
						base + i * (KB(64) >> 9), buf,
						KB(64)), 0))
			break;
	blk_set_current_ioc(NULL);
	free(buf);
}

/*
 * Raising is for issuers of the default weight only: an explicit one is
 * a share asked for. A raised queue gets turns of twice the minimum
 * budget (max_budget / 32); an interactive raising ends once the queue
 * has been given 120000 sectors (a long reader that just started).
 */
static void test_raising_rules(void)
{
	struct gendisk *disk = bfq_null("rotational=1,completion_nsec=50000");
	struct io_context *weighted = ioc_create(700, IOPRIO_DEFAULT, 100,
						 "weighted");
	struct io_context *plain = ioc_create(701, IOPRIO_DEFAULT, 0, "plain");
	struct io_context *longr = ioc_create(702, IOPRIO_DEFAULT, 0, "long");

	test_begin("low_latency: explicit weights not raised, raised queues "
		   "get short turns, long readers lose it", 30);
	if (!disk || !CHECK(weighted && plain && longr))
		goto out;
	/* not the peak rate's: the minimum budget must stay 512 */
	bfq_set(disk, "max_budget", "16384");
	seq_reads(disk, weighted, 0, 40);
	seq_reads(disk, plain, 1U << 19, 40);
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "wr_interactive"), 1);
	CHECK_EQ_U64(dump_counter(disk, "bfq queue pid=700", "wr"), 1);
	CHECK_EQ_U64(dump_counter(disk, "bfq queue pid=701", "wr"), 30);
	/* 5120 sectors in turns of 1024: it used up its budget */
	CHECK_EQ_U64(dump_counter(disk, "bfq queue pid=701", "max_budget"),
		     2 * 16384 / 32);
	/* 1000 x 128 sectors: past 120000, raising ends */
	seq_reads(disk, longr, 1U << 20, 1000);
	CHECK_EQ_U64(dump_counter(disk, "bfq queue pid=702", "wr"), 1);
out:
	put_io_context(weighted);
	put_io_context(plain);
	put_io_context(longr);
	test_dev_del(disk);
}

/*
 * A greedy reader of weight 100 holds the device; another issuer reads
 * one block every 100 ms (over twice slice_idle: its turn ends each
 * time, and it is not worth idling for). Coming back with a higher
 * weight it takes the device at once (the greedy queue is preempted);
 * with an equal one it waits for the greedy turn to end.
 *
 * Only the greedy queue's preemptions count. A greedy thread late by
 * more than slice_idle on a loaded host ends its turn (too_idle); back
 * while the periodic queue is served, it rightly takes the device from
 * a queue not worth idling for, and that is no answer to the question.
 * slice_idle is generous so that the greedy queue itself stays worth
 * idling for (think time within slice_idle) however late its thread.
 */
static long run_preempt(uint16_t weight)
{
	struct gendisk *disk = bfq_null("rotational=1,completion_nsec=100000");
	struct io_context *ioc = ioc_create(801, IOPRIO_DEFAULT, weight,
					    "periodic");
	_Atomic bool stop = false;
	struct reader r;
	long n = -1;

	if (!disk || !CHECK(ioc))
		goto out;
	bfq_set(disk, "low_latency", "0");
	bfq_set(disk, "slice_idle", "40");
	memset(&r, 0, sizeof(r));
	r.ioc = ioc_create(800, IOPRIO_DEFAULT, 100, "greedy");
	readers_start(&r, 1, disk, &stop);
	test_sleep_ms(50);
	periodic_reader(disk, ioc, 10, 100);
	readers_stop(&r, 1, &stop);
	test_wait_idle(disk, 3000);
	n = dump_counter(disk, "bfq queue pid=800", "preempted");
	printf("   weight %u: greedy queue preempted %ld times, all %ld\n",
	       weight, n, expired(disk, "preempted"));
	put_io_context(r.ioc);
out:
	put_io_context(ioc);
	test_dev_del(disk);
	return n;
}

static void test_preemption(void)
{
	long n;

	test_begin("a queue of higher weight preempts the one in service", 20);
	n = run_preempt(1000);
	CHECK_MSG(n >= 5, "%ld preemptions in 10 arrivals of weight 1000", n);
	test_begin("one of equal weight does not", 20);
	n = run_preempt(100);
	CHECK_MSG(n == 0, "%ld preemptions in 10 arrivals of weight 100", n);
}

/*
 * With max_budget unset, the max budget is what the device moves in
 * timeout_sync at its peak rate, estimated over ~1 s intervals of
 * dispatches and filtered: after two intervals of one sequential
 * reader it is near the rate the reader saw (from the default 16384).
 */
static void test_peak_rate(void)
{
	struct gendisk *disk = bfq_null("rotational=1,completion_nsec=100000");
	_Atomic bool stop = false;
	struct reader r;
	uint64_t t0, t1;
	unsigned long long got;
	double rate, want;
	long mb;

	test_begin("peak rate: max_budget follows the device's rate", 20);
	if (!disk)
		return;
	bfq_set(disk, "low_latency", "0");
	bfq_set(disk, "timeout_sync", "20");
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "max_budget"), 16384);
	memset(&r, 0, sizeof(r));
	r.ioc = ioc_create(900, IOPRIO_DEFAULT, 0, "seq");
	t0 = test_now_ns();
	readers_start(&r, 1, disk, &stop);
	test_sleep_ms(2300);
	got = atomic_load(&r.sectors);
	t1 = test_now_ns();
	readers_stop(&r, 1, &stop);
	test_wait_idle(disk, 3000);
	rate = (double)got / ((double)(t1 - t0) / 1000.0);	/* sectors/µs */
	want = rate * 20000.0;
	mb = dump_counter(disk, "bfq:", "max_budget");
	printf("   %.3f sectors/us seen: max_budget %ld for %.0f\n", rate, mb,
	       want);
	/*
	 * The filter moves halfway per interval from 2/3 of the kernel's
	 * reference disk (0.142 sectors/µs: 2848 sectors in 20 ms): 0.4
	 * after two if that was far below. It comes down only on
	 * sequential evidence (dispatches within 2 ms of a completion),
	 * which a reader thread on a loaded host may not give; nor is the
	 * rate of such a host steady from one interval to the next.
	 */
	CHECK_MSG(mb != 16384 && mb >= want * 0.4 &&
		  mb <= (want > 2850 ? want : 2850) * 1.6,
		  "max_budget %ld for %.0f sectors in 20 ms", mb, want);
	put_io_context(r.ioc);
	test_dev_del(disk);
}

/* ---- attributes ---- */

static void check_attr(struct gendisk *disk, const char *attr,
		       const char *want)
{
	char name[64], buf[64];

	snprintf(name, sizeof(name), "iosched/%s", attr);
	test_attr_show(disk, name, buf, sizeof(buf));
	CHECK_MSG(!strcmp(buf, want), "%s is '%s', want '%s'", name, buf, want);
}

static void check_bad(struct gendisk *disk, const char *attr, const char *val,
		      const char *range)
{
	char name[64];

	snprintf(name, sizeof(name), "iosched/%s", attr);
	CHECK_EQ_INT(blk_queue_attr_store(disk, name, val), -EINVAL);
	CHECK_MSG(strstr(blkstack_errmsg(), attr) &&
		  strstr(blkstack_errmsg(), range), "%s=%s: message '%s'",
		  attr, val, blkstack_errmsg());
}

static void test_attributes(void)
{
	struct gendisk *disk = bfq_null("completion_nsec=10000");
	char buf[256];

	test_begin("iosched/ attributes: defaults, stores, bad values", 10);
	if (!disk)
		return;
	check_attr(disk, "slice_idle", "8");
	check_attr(disk, "slice_idle_us", "8000");
	check_attr(disk, "back_seek_max", "16384");
	check_attr(disk, "back_seek_penalty", "2");
	check_attr(disk, "fifo_expire_sync", "125");
	check_attr(disk, "fifo_expire_async", "250");
	check_attr(disk, "max_budget", "16384");
	check_attr(disk, "timeout_sync", "125");
	check_attr(disk, "strict_guarantees", "0");
	check_attr(disk, "low_latency", "1");
	bfq_set(disk, "slice_idle_us", "2500\n");
	check_attr(disk, "slice_idle_us", "2500");
	check_attr(disk, "slice_idle", "2");
	/* strict guarantees need at least 8 ms of idling, as in the kernel */
	bfq_set(disk, "strict_guarantees", "1");
	check_attr(disk, "slice_idle", "8");
	bfq_set(disk, "max_budget", "4096");
	check_attr(disk, "max_budget", "4096");
	bfq_set(disk, "max_budget", "0");
	check_attr(disk, "max_budget", "16384");
	check_bad(disk, "back_seek_penalty", "0", "1..");
	check_bad(disk, "timeout_sync", "0", "1..");
	check_bad(disk, "low_latency", "2", "0..1");
	check_bad(disk, "strict_guarantees", "-1", "0..1");
	check_bad(disk, "slice_idle", "soon", "0..");
	check_bad(disk, "max_budget", "99999999999", "0..");
	check_attr(disk, "back_seek_penalty", "2");
	check_attr(disk, "timeout_sync", "125");
	check_attr(disk, "low_latency", "1");
	check_attr(disk, "strict_guarantees", "1");
	CHECK_EQ_INT(blk_queue_attr_store(disk, "iosched/nosuch", "1"),
		     -ENOENT);
	test_attr_show(disk, "scheduler", buf, sizeof(buf));
	CHECK_MSG(strstr(buf, "[bfq]"), "scheduler '%s'", buf);
	CHECK_EQ_INT(blk_queue_attr_store(disk, "scheduler", "none"), 0);
	CHECK_EQ_INT(blk_queue_attr_show(disk, "iosched/slice_idle", buf,
					 sizeof(buf)), -ENOENT);
	test_dev_del(disk);
}

/* ---- counters and merges ---- */

static void test_counters(void)
{
	struct gendisk *disk = bfq_null("rotational=1,completion_nsec=50000");
	unsigned char *buf = aligned_alloc(4096, KB(64));
	struct tio t;

	test_begin("counters: merges, dispatches, completions add up", 10);
	if (!disk || !CHECK(buf))
		goto out;
	memset(buf, 0, KB(64));
	tio_init(&t);
	/* adjacent async writes of one issuer: back merges */
	for (unsigned int i = 0; i < 16; i++)
		tio_submit(&t, disk, REQ_OP_WRITE, 1000 + i * 8, buf, KB(4));
	for (unsigned int i = 0; i < 16; i++)
		tio_submit(&t, disk, REQ_OP_READ, 50000 + i * 64, buf, KB(4));
	CHECK(tio_wait(&t, t.nr, 5000));
	CHECK_EQ_U64(t.errors, 0);
	tio_destroy(&t);
	bfq_wait_idle(disk);
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "dispatched"),
		     dump_counter(disk, "bfq:", "completed"));
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "inserted") -
		     dump_counter(disk, "bfq:", "merged"),
		     dump_counter(disk, "bfq:", "completed"));
	CHECK_EQ_U64(dump_counter(disk, "bfq:", "in_driver"), 0);
	CHECK(dump_counter(disk, "bfq:", "completed") <= 32);
	CHECK(dump_counter(disk, "bfq:", "completed") >= 17);
out:
	free(buf);
	test_dev_del(disk);
}

int main(void)
{
	test_init(2);
	test_attributes();
	test_counters();
	test_weights();
	test_ioprio_weights();
	test_budget_timeout();
	test_idling();
	test_nonrot_deep();
	test_rot_ncq();
	test_low_latency();
	test_raising_rules();
	test_preemption();
	test_peak_rate();
	test_sched_switching("bfq", "sim", "model=ssd,size=64M,time_scale=10");
	test_sched_switching("bfq", "sim", "model=hdd,size=64M,time_scale=200");
	/* one scheduler for two hw queues: it may hand out either's requests */
	test_sched_switching("bfq", "null", "size=64M,memory_backed=1,"
			     "submit_queues=2,irqmode=2,completion_nsec=20000");
	return test_report();
}
