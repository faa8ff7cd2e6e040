/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the blk-mq unit tests (test-cpumap, test-tags,
 * test-hwq, test-null, test-badinput, test-timeout): checks that count
 * failures, a watchdog that turns a hang into a failure with a queue dump,
 * data patterns, an asynchronous I/O tracker and null_blk device helpers.
 * Header-only (static functions) so each test stays one program.
 */
#ifndef BLKSTACK_TESTS_MQTEST_H
#define BLKSTACK_TESTS_MQTEST_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blkstack/blk-mq.h>
#include "block/blk.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MT_SAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MT_SAN_BUILD 1
#endif
#endif
#ifndef MT_SAN_BUILD
#define MT_SAN_BUILD 0
#endif

static _Atomic int mt_failures;

#define CHECK(cond, ...)						\
	({								\
		bool __ok = !!(cond);					\
		if (!__ok) {						\
			fprintf(stderr, "FAIL %s:%d: %s: ", __func__,	\
				__LINE__, #cond);			\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			atomic_fetch_add(&mt_failures, 1);		\
		}							\
		__ok;							\
	})

/* A check the rest of the subtest depends on. */
#define REQUIRE(cond, ...)						\
	do {								\
		if (!CHECK(cond, __VA_ARGS__))				\
			return;						\
	} while (0)

static inline bool mt_slow(void)
{
	return MT_SAN_BUILD || getenv("SANITIZER") != NULL;
}

/* @n, or a quarter of it (at least 1) under sanitizers. */
static inline unsigned int mt_scale(unsigned int n)
{
	return mt_slow() ? (n / 4 ? n / 4 : 1) : n;
}

static inline uint64_t mt_now_ns(void)
{
	return ktime_get_ns();
}

static inline void mt_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- watchdog: a hang becomes a failure with a dump ---- */

static _Atomic uint64_t mt_deadline_ns;
static const char *_Atomic mt_phase_name = "start";
static pthread_t mt_wd_thread;

static int mt_dump_one(struct gendisk *disk, void *arg)
{
	blk_mq_debug_dump(disk, stderr);
	return 0;
}

static void *mt_dump_thread(void *arg)
{
	blkstack_dev_for_each(mt_dump_one, NULL);
	return NULL;
}

static void *mt_watchdog(void *arg)
{
	for (;;) {
		uint64_t dl = atomic_load(&mt_deadline_ns);
		pthread_t t;

		mt_sleep_ms(50);
		if (!dl || mt_now_ns() < dl)
			continue;
		fprintf(stderr, "FAIL watchdog: no progress in phase '%s': "
			"a hang; queue state follows\n",
			atomic_load(&mt_phase_name));
		/* the dump may block on the lock that hangs: bound it */
		if (!pthread_create(&t, NULL, mt_dump_thread, NULL))
			pthread_detach(t);
		mt_sleep_ms(3000);
		_exit(1);
	}
	return NULL;
}

/* Enter phase @name: fail (with a dump) unless it ends in @secs. */
static inline void mt_phase(const char *name, unsigned int secs)
{
	atomic_store(&mt_phase_name, name);
	if (mt_slow())
		secs *= 4;
	atomic_store(&mt_deadline_ns, mt_now_ns() + secs * NSEC_PER_SEC);
	if (!mt_wd_thread) {
		if (!pthread_create(&mt_wd_thread, NULL, mt_watchdog, NULL))
			pthread_detach(mt_wd_thread);
	}
	fprintf(stderr, "-- %s\n", name);
}

/* ---- data patterns ---- */

static inline uint64_t mt_word(uint64_t seed, uint64_t off)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + off + 1;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	return x;
}

/* Fill @len bytes that live at device byte offset @off. */
static inline void mt_fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = mt_word(seed, off + i * 8);
}

/* -1 if @buf holds the pattern, else the first bad byte index. */
static inline long mt_verify(const void *buf, size_t len, uint64_t seed,
			     uint64_t off)
{
	const uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != mt_word(seed, off + i * 8))
			return (long)(i * 8);
	return -1;
}

static inline bool mt_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- asynchronous I/O tracking ---- */

struct mt_waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	long pending;
	long done;
	long errors;
	int last_err;
};

struct mt_io {
	struct mt_waiter *w;
	int err;
	_Atomic bool done;
	uint64_t submit_ns;
	uint64_t done_ns;
};

static inline void mt_waiter_init(struct mt_waiter *w)
{
	pthread_condattr_t attr;

	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
}

static inline void mt_waiter_destroy(struct mt_waiter *w)
{
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}

static inline void mt_io_done(void *priv, int err)
{
	struct mt_io *io = priv;
	struct mt_waiter *w = io->w;

	io->err = err;
	io->done_ns = mt_now_ns();
	pthread_mutex_lock(&w->lock);
	atomic_store(&io->done, true);
	w->pending--;
	w->done++;
	if (err) {
		w->errors++;
		w->last_err = err;
	}
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Submit one tracked I/O; returns blkdev_submit()'s result. */
static inline int mt_submit(struct gendisk *disk, struct mt_waiter *w,
			    struct mt_io *io, blk_opf_t opf, off_t off,
			    void *buf, size_t len)
{
	int ret;

	io->w = w;
	io->err = 0;
	atomic_store(&io->done, false);
	io->submit_ns = mt_now_ns();
	pthread_mutex_lock(&w->lock);
	w->pending++;
	pthread_mutex_unlock(&w->lock);
	ret = blkdev_submit(disk, opf, off, buf, len, mt_io_done, io);
	if (ret) {
		pthread_mutex_lock(&w->lock);
		w->pending--;
		pthread_mutex_unlock(&w->lock);
	}
	return ret;
}

/* Wait until at most @left I/Os are pending; false after @ms. */
static inline bool mt_wait_pending(struct mt_waiter *w, long left,
				   unsigned int ms)
{
	uint64_t dl = mt_now_ns() + (uint64_t)ms * NSEC_PER_MSEC *
		      (mt_slow() ? 4 : 1);
	struct timespec ts = ns_to_timespec(dl);
	bool ok = true;

	pthread_mutex_lock(&w->lock);
	while (w->pending > left) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) ==
		    ETIMEDOUT) {
			ok = w->pending <= left;
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return ok;
}

static inline long mt_done_count(struct mt_waiter *w)
{
	long n;

	pthread_mutex_lock(&w->lock);
	n = w->done;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* ---- devices ---- */

/* Create a null_blk device; NULL (and a failure) if it cannot be. */
static inline struct gendisk *mt_null(const char *name, const char *params)
{
	struct gendisk *disk = NULL;
	int ret = blkstack_dev_add("null", name, params, &disk);

	if (!CHECK(ret == 0, "create %s (%s): %d %s", name, params, ret,
		   blkstack_errmsg()))
		return NULL;
	return disk;
}

/* Remove a device made by mt_null() and drop our reference. */
static inline void mt_del(struct gendisk *disk)
{
	char name[64];
	int ret;

	if (!disk)
		return;
	snprintf(name, sizeof(name), "%s", blk_disk_name(disk));
	ret = blkstack_dev_del(name);
	CHECK(ret == 0, "delete %s: %d %s", name, ret, blkstack_errmsg());
	blk_put_disk(disk);
}

static inline int mt_attr_store(struct gendisk *disk, const char *attr,
				const char *val)
{
	int ret = blk_queue_attr_store(disk, attr, val);

	CHECK(ret == 0, "store %s=%s: %d %s", attr, val, ret,
	      blkstack_errmsg());
	return ret;
}

/* The attribute's value without the trailing newline. */
static inline const char *mt_attr(struct gendisk *disk, const char *attr,
				  char *buf, size_t len)
{
	int ret = blk_queue_attr_show(disk, attr, buf, len);

	if (ret < 0) {
		snprintf(buf, len, "<error %d>", ret);
		return buf;
	}
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/*
 * Wait for the disk's in-flight count to drop to 0: a waiter wakes when its
 * bio ends, a moment before the request's accounting ends.
 */
static inline uint64_t mt_wait_idle(struct gendisk *disk, unsigned int ms)
{
	uint64_t dl = mt_now_ns() + (uint64_t)ms * NSEC_PER_MSEC;
	struct blk_disk_stats st;

	for (;;) {
		blk_disk_get_stats(disk, &st);
		if (!st.in_flight || mt_now_ns() > dl)
			return st.in_flight;
		mt_sleep_ms(1);
	}
}

/* Write @len bytes of pattern @seed at @off, read back, compare. */
static inline bool mt_write_verify(struct gendisk *disk, off_t off,
				   size_t len, uint64_t seed, void *wbuf,
				   void *rbuf)
{
	ssize_t n;
	long bad;

	mt_fill(wbuf, len, seed, (uint64_t)off);
	n = blkdev_pwrite(disk, wbuf, len, off);
	if (!CHECK(n == (ssize_t)len, "pwrite %s @%lld+%zu: %zd %s",
		   blk_disk_name(disk), (long long)off, len, n,
		   blkstack_errmsg()))
		return false;
	memset(rbuf, 0xa5, len);
	n = blkdev_pread(disk, rbuf, len, off);
	if (!CHECK(n == (ssize_t)len, "pread %s @%lld+%zu: %zd %s",
		   blk_disk_name(disk), (long long)off, len, n,
		   blkstack_errmsg()))
		return false;
	bad = mt_verify(rbuf, len, seed, (uint64_t)off);
	return CHECK(bad < 0, "%s: data mismatch at byte %ld of @%lld+%zu",
		     blk_disk_name(disk), bad, (long long)off, len);
}

/* Present-CPU mask of the CPUs in @list (terminated by -1). */
static inline void mt_mask(uint64_t *mask, size_t words, const int *list)
{
	memset(mask, 0, words * sizeof(*mask));
	for (; *list >= 0; list++)
		mask[*list / 64] |= 1ULL << (*list % 64);
}

/* ---- a minimal FIFO I/O scheduler, to run the elevator paths ---- */

struct mt_fifo_hctx {
	pthread_spinlock_t lock;
	struct list_head list;
	_Atomic int nr;
};

static inline int mt_fifo_init_hctx(struct blk_mq_hw_ctx *hctx,
				    unsigned int idx)
{
	struct mt_fifo_hctx *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	pthread_spin_init(&d->lock, PTHREAD_PROCESS_PRIVATE);
	INIT_LIST_HEAD(&d->list);
	hctx->sched_data = d;
	return 0;
}

static inline void mt_fifo_exit_hctx(struct blk_mq_hw_ctx *hctx,
				     unsigned int idx)
{
	struct mt_fifo_hctx *d = hctx->sched_data;

	CHECK(list_empty(&d->list), "mt-fifo: hctx %u torn down with "
	      "requests queued", idx);
	pthread_spin_destroy(&d->lock);
	free(d);
}

static inline void mt_fifo_insert(struct blk_mq_hw_ctx *hctx,
				  struct list_head *list, bool at_head)
{
	struct mt_fifo_hctx *d = hctx->sched_data;
	struct request *rq;
	int n = 0;

	list_for_each_entry(rq, list, queuelist)
		n++;
	pthread_spin_lock(&d->lock);
	if (at_head)
		list_splice_init(list, &d->list);
	else
		list_splice_tail_init(list, &d->list);
	atomic_fetch_add(&d->nr, n);
	pthread_spin_unlock(&d->lock);
}

static inline struct request *mt_fifo_dispatch(struct blk_mq_hw_ctx *hctx)
{
	struct mt_fifo_hctx *d = hctx->sched_data;
	struct request *rq = NULL;

	pthread_spin_lock(&d->lock);
	if (!list_empty(&d->list)) {
		rq = list_first_entry(&d->list, struct request, queuelist);
		list_del_init(&rq->queuelist);
		atomic_fetch_sub(&d->nr, 1);
	}
	pthread_spin_unlock(&d->lock);
	return rq;
}

static inline bool mt_fifo_has_work(struct blk_mq_hw_ctx *hctx)
{
	struct mt_fifo_hctx *d = hctx->sched_data;

	return atomic_load(&d->nr) > 0;
}

static struct elevator_type mt_fifo = {
	.elevator_name = "mt-fifo",
	.ops = {
		.init_hctx = mt_fifo_init_hctx,
		.exit_hctx = mt_fifo_exit_hctx,
		.insert_requests = mt_fifo_insert,
		.dispatch_request = mt_fifo_dispatch,
		.has_work = mt_fifo_has_work,
	},
};

/* Register "mt-fifo" (once per program). */
static inline void mt_register_fifo(void)
{
	static bool done;
	int ret;

	if (done)
		return;
	ret = elv_register(&mt_fifo);
	CHECK(ret == 0, "register mt-fifo: %d %s", ret, blkstack_errmsg());
	done = true;
}

static inline int mt_result(const char *test)
{
	int f = atomic_load(&mt_failures);

	atomic_store(&mt_deadline_ns, 0);
	if (f) {
		fprintf(stderr, "%s: %d check(s) failed\n", test, f);
		return 1;
	}
	fprintf(stderr, "%s: all checks passed\n", test);
	return 0;
}

#endif
