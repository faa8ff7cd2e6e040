// SPDX-License-Identifier: MIT
/*
 * Hardware queue state changes while I/O runs: freeze/unfreeze, quiesce/
 * unquiesce, blk_mq_update_nr_hw_queues (null_blk irqmode 0, 1, 2), stop
 * and start of hw queues, and device removal with I/O in flight. Data is
 * verified throughout; nothing may be lost, fail or hang.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "testlib.h"

#define NR_CPUS		4
#define WINDOW		8
#define BLK		4096

/* ---- an asynchronous write-then-verify worker ---- */

struct aio_worker {
	struct gendisk *disk;
	unsigned int id;
	_Atomic bool *stop;
	bool verify;		/* memory-backed: read back and compare */
	bool allow_enodev;	/* the device may go away */
	struct tio w;
	_Atomic unsigned long rounds;
	long enodev;
	bool ok;
};

static bool aio_round(struct aio_worker *a, blk_opf_t op, char *bufs,
		      uint64_t seed, off_t base)
{
	struct tio_req io[WINDOW];

	for (unsigned int k = 0; k < WINDOW; k++) {
		off_t off = base + (off_t)k * BLK;
		int ret;

		if (op == REQ_OP_WRITE)
			test_fill(bufs + k * BLK, BLK, seed, (uint64_t)off);
		else
			memset(bufs + k * BLK, 0xee, BLK);
		ret = tio_blkdev_submit(&a->w, &io[k], a->disk, op, off,
					bufs + k * BLK, BLK);
		if (!CHECK_MSG(ret == 0, "worker %u: submit: %d %s", a->id, ret,
			       blkstack_errmsg()))
			return false;
	}
	if (!CHECK_MSG(tio_wait_pending(&a->w, 0, 10000), "worker %u: %u I/Os "
		       "never completed (hang)", a->id, tio_pending(&a->w)))
		return false;
	for (unsigned int k = 0; k < WINDOW; k++) {
		if (io[k].err == -ENODEV && a->allow_enodev) {
			a->enodev++;
			continue;
		}
		if (!CHECK_MSG(io[k].err == 0, "worker %u: %s failed: %d",
			       a->id, op == REQ_OP_WRITE ? "write" : "read",
			       io[k].err))
			return false;
	}
	if (op == REQ_OP_READ && a->verify && !a->enodev)
		for (unsigned int k = 0; k < WINDOW; k++) {
			off_t off = base + (off_t)k * BLK;
			long bad = test_verify(bufs + k * BLK, BLK, seed,
					       (uint64_t)off);

			if (!CHECK_MSG(bad < 0, "worker %u: data mismatch at "
				       "%lld+%ld", a->id, (long long)off, bad))
				return false;
		}
	return true;
}

static void *aio_thread(void *arg)
{
	struct aio_worker *a = arg;
	char *wbufs = malloc(WINDOW * BLK), *rbufs = malloc(WINDOW * BLK);
	off_t base = (off_t)a->id * 4 * 1024 * 1024;

	a->ok = true;
	while (!atomic_load(a->stop) && a->ok && !a->enodev) {
		uint64_t seed = (uint64_t)a->id << 40 | a->rounds;
		off_t off = base + (off_t)(a->rounds % 64) * WINDOW * BLK;

		blk_set_current_cpu((int)((a->id + a->rounds) % NR_CPUS));
		a->ok = aio_round(a, REQ_OP_WRITE, wbufs, seed, off) &&
			aio_round(a, REQ_OP_READ, rbufs, seed, off);
		a->rounds++;
	}
	free(wbufs);
	free(rbufs);
	return NULL;
}

struct workers {
	struct aio_worker a[4];
	pthread_t th[4];
	unsigned int n;
	_Atomic bool stop;
};

static void workers_start(struct workers *ws, struct gendisk *disk,
			  unsigned int n, bool verify, bool allow_enodev)
{
	ws->n = n;
	atomic_store(&ws->stop, false);
	for (unsigned int i = 0; i < n; i++) {
		ws->a[i] = (struct aio_worker){ .disk = disk, .id = i,
						.stop = &ws->stop,
						.verify = verify,
						.allow_enodev = allow_enodev };
		tio_init(&ws->a[i].w);
		CHECK_MSG(pthread_create(&ws->th[i], NULL, aio_thread,
					 &ws->a[i]) == 0,
			  "pthread_create");
	}
}

static long workers_rounds(struct workers *ws)
{
	long n = 0;

	for (unsigned int i = 0; i < ws->n; i++)
		n += (long)ws->a[i].rounds;
	return n;
}

/*
 * Each worker through its first round before the test changes anything:
 * on a loaded host a new thread may not run for as long as a whole test
 * takes, and would end with no rounds ("made no progress") though
 * nothing in the block layer held it up. A round ends (rounds counts it)
 * even when it fails; one that hangs gives up after 10 s.
 */
static void workers_wait_running(struct workers *ws, const char *what)
{
	for (unsigned int i = 0; i < ws->n; i++) {
		for (int t = 0; t < 15000 && !atomic_load(&ws->a[i].rounds);
		     t++)
			test_sleep_ms(1);
		CHECK_MSG(atomic_load(&ws->a[i].rounds), "%s: worker %u did "
			  "not finish a round in 15 s", what, i);
	}
}

static void workers_stop(struct workers *ws, const char *what)
{
	atomic_store(&ws->stop, true);
	fprintf(stderr, "%s: %ld rounds of %u writes + reads\n", what,
		workers_rounds(ws), WINDOW);
	for (unsigned int i = 0; i < ws->n; i++) {
		pthread_join(ws->th[i], NULL);
		CHECK_MSG(ws->a[i].ok, "%s: worker %u failed", what, i);
		CHECK_MSG(ws->a[i].rounds > 0, "%s: worker %u made no progress",
			  what, i);
		CHECK_MSG(tio_pending(&ws->a[i].w) == 0,
			  "%s: worker %u left %u I/Os", what, i,
			  tio_pending(&ws->a[i].w));
		tio_destroy(&ws->a[i].w);
	}
}

static long workers_done(struct workers *ws)
{
	long n = 0;

	for (unsigned int i = 0; i < ws->n; i++)
		n += tio_done(&ws->a[i].w);
	return n;
}

static struct gendisk *hwq_dev(const char *name, const char *extra)
{
	return test_null_add(name, "size=64,memory_backed=1,"
			     "completion_nsec=20000,%s", extra);
}

/* ---- freeze ---- */

static void test_freeze_during_io(const char *irq)
{
	struct workers ws;
	struct gendisk *disk;
	struct request_queue *q;
	struct tio nw;
	struct tio_req nio;
	char buf[BLK], what[64], name[32];
	unsigned int iters = test_scale(100);

	snprintf(what, sizeof(what), "freeze during I/O (%s)", irq);
	test_begin(what, 60);
	snprintf(name, sizeof(name), "freeze%c", irq[8]);
	disk = hwq_dev(name, irq);
	if (!disk)
		return;
	q = disk_queue(disk);
	tio_init(&nw);
	workers_start(&ws, disk, 4, true, false);
	workers_wait_running(&ws, what);
	for (unsigned int i = 0; i < iters; i++) {
		struct blk_disk_stats st;
		long usage = 0;
		int ret;

		blk_mq_freeze_queue(q);
		/* a tryget bumps the count for a moment even when frozen */
		for (int t = 0; t < 1000 && (usage = percpu_ref_sum(
				&q->q_usage_counter)); t++)
			sched_yield();
		CHECK_MSG(usage == 0, "%s: frozen with q_usage_counter %ld",
			  what, usage);
		for (unsigned int h = 0; h < q->nr_hw_queues; h++)
			CHECK_MSG(
				blk_mq_tags_busy(q->queue_hw_ctx[h]->tags) == 0,
				"%s: frozen with %u tags of hctx %u held", what,
				blk_mq_tags_busy(q->queue_hw_ctx[h]->tags), h);
		blk_disk_get_stats(disk, &st);
		CHECK_MSG(st.in_flight == 0, "%s: frozen with %llu requests in "
			  "flight", what, (unsigned long long)st.in_flight);
		if (i % 10 == 0) {
			/* NOWAIT I/O on a frozen queue: -EAGAIN at once */
			ret = tio_blkdev_submit(&nw, &nio, disk,
						REQ_OP_READ | REQ_NOWAIT, 0,
						buf, sizeof(buf));
			CHECK_MSG(ret == 0, "NOWAIT submit: %d", ret);
			CHECK_MSG(atomic_load(&nio.done) && nio.err == -EAGAIN,
				  "%s: NOWAIT read on a frozen queue: done %d "
				  "err %d, want -EAGAIN at once",
				  what, atomic_load(&nio.done), nio.err);
		}
		blk_mq_unfreeze_queue(q);
		if (i % 3 == 0)
			test_sleep_ms(1);
	}
	CHECK_MSG(tio_wait_pending(&nw, 0, 1000), "NOWAIT I/O pending");
	workers_stop(&ws, what);
	/* a waiter wakes when its bio ends, before the request is freed */
	for (int t = 0; t < 2000 && percpu_ref_sum(&q->q_usage_counter); t++)
		test_sleep_ms(1);
	CHECK_MSG(percpu_ref_sum(&q->q_usage_counter) == 0, "%s: %ld queue "
		  "references left after all I/O", what,
		  percpu_ref_sum(&q->q_usage_counter));
	CHECK_MSG(test_wait_idle(disk, 2000) == 0,
		  "%s: in_flight not back to 0", what);
	tio_destroy(&nw);
	test_dev_del(disk);
}

/* ---- quiesce ---- */

static void test_quiesce_during_io(const char *sched)
{
	struct workers ws;
	struct gendisk *disk;
	struct request_queue *q;
	char what[64];
	unsigned int iters = test_scale(50);
	long before, after;

	snprintf(what, sizeof(what), "quiesce during I/O (%s)", sched);
	test_begin(what, 60);
	/* irqmode=0: requests complete inside queue_rq, nowhere else */
	disk = hwq_dev(sched[0] == 'n' ? "quiesce_none" : "quiesce_fifo",
		       "irqmode=0,submit_queues=2");
	if (!disk)
		return;
	q = disk_queue(disk);
	test_attr_store(disk, "scheduler", sched);
	workers_start(&ws, disk, 4, true, false);
	workers_wait_running(&ws, what);
	for (unsigned int i = 0; i < iters; i++) {
		long rounds = workers_rounds(&ws);

		blk_mq_quiesce_queue(q);
		CHECK_MSG(blk_queue_quiesced(q), "QUIESCED flag not set");
		before = workers_done(&ws);
		test_sleep_ms(3);
		after = workers_done(&ws);
		CHECK_MSG(after == before, "%s: %ld requests completed while "
			  "quiesced (queue_rq ran)", what, after - before);
		blk_mq_unquiesce_queue(q);
		/* and it moves again */
		for (int t = 0; t < 2000 && workers_rounds(&ws) == rounds; t++)
			test_sleep_ms(1);
		CHECK_MSG(workers_rounds(&ws) > rounds, "%s: no progress after "
			  "unquiesce", what);
	}
	/* nested quiesce: only the outermost unquiesce restarts */
	blk_mq_quiesce_queue(q);
	blk_mq_quiesce_queue(q);
	blk_mq_unquiesce_queue(q);
	before = workers_done(&ws);
	test_sleep_ms(3);
	CHECK_MSG(workers_done(&ws) == before && blk_queue_quiesced(q),
		  "%s: I/O ran with one of two quiesces undone", what);
	blk_mq_unquiesce_queue(q);
	CHECK_MSG(!blk_queue_quiesced(q), "still quiesced");
	workers_stop(&ws, what);
	CHECK_MSG(test_wait_idle(disk, 2000) == 0,
		  "%s: in_flight not back to 0", what);
	test_dev_del(disk);
}

/* ---- nr_hw_queues ---- */

static void test_update_during_io(const char *irq, const char *sched)
{
	static const unsigned int seq[] = { 2, 4, 2, 1, 4, 1, 2 };
	struct workers ws;
	struct gendisk *disk;
	struct request_queue *q;
	char what[80], name[32], buf[32], val[8];
	unsigned int iters = test_scale(30);

	snprintf(what, sizeof(what), "nr_hw_queues during I/O (%s, %s)", irq,
		 sched);
	test_begin(what, 60);
	REQUIRE_MSG(blk_cpu_topology_set(NR_CPUS, NULL) == 0, "topology");
	snprintf(name, sizeof(name), "upd%c%s", irq[8], sched[0] == 'n' ? "" :
		 "f");
	disk = hwq_dev(name, irq);
	if (!disk)
		goto out;
	q = disk_queue(disk);
	test_attr_store(disk, "scheduler", sched);
	workers_start(&ws, disk, 4, true, false);
	workers_wait_running(&ws, what);
	for (unsigned int i = 0; i < iters; i++) {
		unsigned int nr = seq[i % ARRAY_SIZE(seq)];
		long rounds = workers_rounds(&ws);
		int ret;

		snprintf(val, sizeof(val), "%u", nr);
		ret = i % 2 ? blk_queue_attr_store(disk, "nr_hw_queues", val) :
			      blk_mq_update_nr_hw_queues(q->tag_set, nr);
		CHECK_MSG(ret == 0, "%s: -> %u: %d %s", what, nr, ret,
			  blkstack_errmsg());
		CHECK_MSG(!strcmp(test_attr_show(disk, "nr_hw_queues", buf,
						 sizeof(buf)),
				  val),
			  "%s: nr_hw_queues shows %s, want %s", what, buf, val);
		for (unsigned int h = 0; h < q->nr_hw_queues; h++)
			CHECK_MSG(q->queue_hw_ctx[h]->tags,
				  "%s: hctx %u without tags", what, h);
		for (int t = 0; t < 2000 && workers_rounds(&ws) == rounds; t++)
			test_sleep_ms(1);
		CHECK_MSG(workers_rounds(&ws) > rounds, "%s: no progress after "
			  "the change to %u queues", what, nr);
	}
	workers_stop(&ws, what);
	CHECK_MSG(test_wait_idle(disk, 2000) == 0,
		  "%s: in_flight not back to 0", what);
	test_dev_del(disk);
out:
	blk_cpu_topology_reset();
}

/* ---- stop / start ---- */

static void test_stop_start(const char *sched)
{
	struct gendisk *disk;
	struct request_queue *q;
	struct tio w, w1;
	struct tio_req io[NR_CPUS * 4], one;
	char *bufs = malloc(NR_CPUS * 4 * BLK), rbuf[BLK], what[64];
	struct blk_mq_hw_ctx *h0, *h1;
	int cpu_on_1 = -1;

	snprintf(what, sizeof(what), "stop/start hw queues (%s)", sched);
	test_begin(what, 20);
	REQUIRE_MSG(blk_cpu_topology_set(NR_CPUS, NULL) == 0, "topology");
	disk = hwq_dev(sched[0] == 'n' ? "stopstart" : "stopstartf",
		       "irqmode=0,submit_queues=2");
	if (!disk)
		goto out;
	q = disk_queue(disk);
	test_attr_store(disk, "scheduler", sched);
	tio_init(&w);
	tio_init(&w1);

	/* all stopped: nothing reaches the driver, start sends everything */
	for (unsigned int h = 0; h < q->nr_hw_queues; h++)
		blk_mq_stop_hw_queue(q->queue_hw_ctx[h]);
	for (unsigned int i = 0; i < NR_CPUS * 4; i++) {
		off_t off = (off_t)i * BLK;

		blk_set_current_cpu((int)(i % NR_CPUS));
		test_fill(bufs + i * BLK, BLK, 42, (uint64_t)off);
		CHECK_MSG(tio_blkdev_submit(&w, &io[i], disk, REQ_OP_WRITE, off,
					    bufs + i * BLK, BLK) == 0,
			  "submit");
	}
	blk_set_current_cpu(-1);
	test_sleep_ms(20);
	CHECK_MSG(tio_done(&w) == 0, "%s: %u writes completed on stopped "
		  "hw queues", what, tio_done(&w));
	for (unsigned int h = 0; h < q->nr_hw_queues; h++)
		CHECK_MSG(blk_mq_hctx_stopped(q->queue_hw_ctx[h]),
			  "hctx %u not stopped", h);
	blk_mq_start_stopped_hw_queues(q, false);
	CHECK_MSG(tio_wait_pending(&w, 0, 2000), "%s: %u writes stuck after "
		  "start", what, tio_pending(&w));
	CHECK_MSG(w.errors == 0, "%s: %u writes failed", what, w.errors);
	for (unsigned int i = 0; i < NR_CPUS * 4; i++) {
		ssize_t n = blkdev_pread(disk, rbuf, BLK, (off_t)i * BLK);

		CHECK_MSG(n == BLK && test_verify(rbuf, BLK, 42,
						  (uint64_t)i * BLK) < 0,
			  "%s: write %u did not land", what, i);
	}

	/* one stopped: the other hctx's I/O goes on */
	h0 = q->queue_ctx[0].hctxs[HCTX_TYPE_DEFAULT];
	for (int c = 1; c < NR_CPUS; c++)
		if (q->queue_ctx[c].hctxs[HCTX_TYPE_DEFAULT] != h0) {
			cpu_on_1 = c;
			break;
		}
	REQUIRE_MSG(cpu_on_1 > 0, "all CPUs map to one hctx with 2 queues");
	h1 = q->queue_ctx[cpu_on_1].hctxs[HCTX_TYPE_DEFAULT];
	blk_mq_stop_hw_queue(h0);
	blk_set_current_cpu(0);
	CHECK_MSG(tio_blkdev_submit(&w1, &one, disk, REQ_OP_READ, 0, rbuf,
				    BLK) == 0,
		  "submit");
	blk_set_current_cpu(cpu_on_1);
	CHECK_MSG(blkdev_pread(disk, bufs, BLK, BLK) == BLK, "%s: read via the "
		  "running hctx %u failed", what, h1->queue_num);
	blk_set_current_cpu(-1);
	test_sleep_ms(10);
	CHECK_MSG(!atomic_load(&one.done),
		  "%s: read on stopped hctx %u completed", what, h0->queue_num);
	blk_mq_start_hw_queue(h0);
	CHECK_MSG(tio_wait_pending(&w1, 0, 2000) && one.err == 0,
		  "%s: read stuck or failed after blk_mq_start_hw_queue (%d)",
		  what, one.err);

	tio_destroy(&w);
	tio_destroy(&w1);
	test_dev_del(disk);
out:
	free(bufs);
	blk_cpu_topology_reset();
}

/* ---- plugs and sleeping ---- */

struct plug_arg {
	struct gendisk *disk;
	_Atomic int step;
	bool ok;
};

/*
 * A thread plugs with a request cache (blk_start_plug_nr_ios), queues a
 * write, then sleeps in the block layer (a flush waiting for a frozen
 * queue): its plug must be flushed and its cached requests freed, or the
 * freeze waits for them forever (the kernel flushes in schedule()).
 */
static void *plug_thread(void *arg)
{
	struct plug_arg *p = arg;
	struct blk_plug plug;
	struct tio w;
	struct tio_req io;
	char buf[BLK];

	tio_init(&w);
	memset(buf, 1, sizeof(buf));
	blk_start_plug_nr_ios(&plug, 16);
	p->ok = CHECK_MSG(tio_blkdev_submit(&w, &io, p->disk, REQ_OP_WRITE, 0,
					    buf, BLK) == 0,
			  "plugged write");
	atomic_store(&p->step, 1);
	while (atomic_load(&p->step) < 2)
		test_sleep_ms(1);
	test_sleep_ms(10);	/* let the freeze begin */
	p->ok &= CHECK_MSG(blkdev_flush(p->disk) == 0, "flush inside a plug");
	blk_finish_plug(&plug);
	p->ok &= CHECK_MSG(tio_wait_pending(&w, 0, 2000) && io.err == 0,
			   "the plugged write: %d", io.err);
	tio_destroy(&w);
	return NULL;
}

static void test_plug_sleep(void)
{
	struct gendisk *disk;
	struct blk_plug plug;
	struct plug_arg p;
	pthread_t th;
	char w[BLK], r[BLK];

	test_begin("sleeping inside a plug", 20);
	disk = hwq_dev("plugsleep", "irqmode=1,cache_size=1");
	if (!disk)
		return;
	/* a synchronous I/O inside a plug must not wait for itself */
	blk_start_plug(&plug);
	test_write_verify(disk, 0, BLK, 5, w, r);
	blk_finish_plug(&plug);
	blk_start_plug_nr_ios(&plug, 8);
	test_write_verify(disk, BLK, BLK, 6, w, r);
	test_write_verify(disk, 2 * BLK, BLK, 7, w, r);
	blk_finish_plug(&plug);

	/* a freeze while another thread's plug caches requests */
	p = (struct plug_arg){ .disk = disk };
	REQUIRE_MSG(pthread_create(&th, NULL, plug_thread, &p) == 0, "thread");
	while (atomic_load(&p.step) < 1)
		test_sleep_ms(1);
	atomic_store(&p.step, 2);
	blk_mq_freeze_queue(disk_queue(disk));
	blk_mq_unfreeze_queue(disk_queue(disk));
	pthread_join(th, NULL);
	CHECK_MSG(p.ok, "plugged thread failed");
	test_dev_del(disk);
}

/* ---- device removal ---- */

static void test_remove_in_flight(void)
{
	struct gendisk *disk;
	struct tio w;
	struct tio_req io[16], late;
	char *bufs = malloc(16 * BLK), rbuf[BLK];
	uint64_t t0, t1;
	ssize_t r;
	int ret;

	test_begin("remove with I/O in flight", 20);
	disk = hwq_dev("removeme", "irqmode=2,completion_nsec=30000000");
	if (!disk)
		goto out;
	tio_init(&w);
	for (unsigned int i = 0; i < 16; i++) {
		test_fill(bufs + i * BLK, BLK, 7, (uint64_t)i * BLK);
		CHECK_MSG(tio_blkdev_submit(&w, &io[i], disk, REQ_OP_WRITE,
					    (off_t)i * BLK, bufs + i * BLK,
					    BLK) == 0,
			  "submit");
	}
	t0 = test_now_ns();
	ret = blkstack_dev_del("removeme");
	t1 = test_now_ns();
	CHECK_MSG(ret == 0, "delete: %d %s", ret, blkstack_errmsg());
	/* del drains: every write in flight completed, successfully */
	CHECK_MSG(tio_pending(&w) == 0, "%u writes still pending after the "
		  "delete returned", tio_pending(&w));
	CHECK_MSG(tio_done(&w) == 16 && w.errors == 0, "in-flight writes: %u "
		  "done, %u failed (%d)", tio_done(&w), w.errors, w.last_err);
	CHECK_MSG(t1 - t0 >= 10 * NSEC_PER_MSEC,
		  "delete returned after %llu us, before the 30 ms writes "
		  "could complete",
		  (unsigned long long)(t1 - t0) / 1000);
	CHECK_MSG(blk_get_disk("removeme") == NULL, "the name still resolves");
	CHECK_MSG(strstr(blkstack_errmsg(), "removeme") != NULL, "errmsg '%s'",
		  blkstack_errmsg());

	/* new I/O on our old reference: -ENODEV (BLK_STS_OFFLINE) */
	r = blkdev_pread(disk, rbuf, BLK, 0);
	CHECK_MSG(r == -ENODEV, "read after removal: %zd, want -ENODEV", r);
	r = blkdev_pwrite(disk, rbuf, BLK, 0);
	CHECK_MSG(r == -ENODEV, "write after removal: %zd, want -ENODEV", r);
	ret = tio_blkdev_submit(&w, &late, disk, REQ_OP_READ, 0, rbuf, BLK);
	CHECK_MSG(ret == 0 && tio_wait_pending(&w, 0, 1000) &&
			  late.err == -ENODEV,
		  "async read after removal: submit %d err %d, want -ENODEV",
		  ret, late.err);
	CHECK_MSG(blkstack_dev_del("removeme") == -ENODEV, "deleting twice");
	tio_destroy(&w);
	blk_put_disk(disk);	/* the last reference: freed now */
out:
	free(bufs);
}

/* Removal while workers keep submitting: each I/O succeeds or -ENODEV. */
static void test_remove_under_load(const char *irq)
{
	struct workers ws;
	struct gendisk *disk;
	char what[64];

	snprintf(what, sizeof(what), "remove under load (%s)", irq);
	test_begin(what, 30);
	disk = hwq_dev("removeload", irq);
	if (!disk)
		return;
	workers_start(&ws, disk, 4, true, true);
	test_sleep_ms(20);
	CHECK_MSG(blkstack_dev_del("removeload") == 0, "delete: %s",
		  blkstack_errmsg());
	atomic_store(&ws.stop, true);
	for (unsigned int i = 0; i < ws.n; i++) {
		pthread_join(ws.th[i], NULL);
		fprintf(stderr, "%s: worker %u: %lu rounds, %ld I/Os failed "
			"with -ENODEV\n", what, i, atomic_load(&ws.a[i].rounds),
			ws.a[i].enodev);
		CHECK_MSG(ws.a[i].ok, "%s: worker %u failed", what, i);
		CHECK_MSG(tio_pending(&ws.a[i].w) == 0,
			  "%s: worker %u: %u I/Os hang", what, i,
			  tio_pending(&ws.a[i].w));
		tio_destroy(&ws.a[i].w);
	}
	{
		char buf[BLK];

		CHECK_MSG(blkdev_pread(disk, buf, BLK, 0) == -ENODEV,
			  "%s: read after removal did not fail with -ENODEV",
			  what);
	}
	blk_put_disk(disk);
}

int main(void)
{
	test_init(0);
	fifo_test_register();
	test_freeze_during_io("irqmode=0");
	test_freeze_during_io("irqmode=1");
	test_freeze_during_io("irqmode=2");
	test_quiesce_during_io("none");
	test_quiesce_during_io("fifo-test");
	test_update_during_io("irqmode=0", "none");
	test_update_during_io("irqmode=1", "none");
	test_update_during_io("irqmode=2", "none");
	test_update_during_io("irqmode=1", "fifo-test");
	test_stop_start("none");
	test_stop_start("fifo-test");
	test_plug_sleep();
	test_remove_in_flight();
	test_remove_under_load("irqmode=1");
	test_remove_under_load("irqmode=2");
	return test_report();
}
