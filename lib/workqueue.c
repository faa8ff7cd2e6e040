// SPDX-License-Identifier: MIT
/*
 * One process-wide pool (like the kernel's kblockd workqueue) started on
 * first use. Ready items are run in FIFO order; delayed items wait on a
 * list sorted by due time, and idle workers sleep until the first is due.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "bug.h"
#include "time.h"
#include "workqueue.h"

#define KBLOCKD_THREADS 2

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond;	/* work arrived / time to look */
static pthread_cond_t done_cond;	/* a work item finished */
static LIST_HEAD(ready_list);
static LIST_HEAD(delayed_list);
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void *kblockd_thread(void *arg);

/*
 * The first thread to queue work starts the pool, and its policy would be
 * inherited: an NBD reader runs SCHED_BATCH (it must not preempt its
 * client), blktrace's reader SCHED_IDLE at times; the workers run queues
 * for every thread and take neither. Leaving SCHED_IDLE needs
 * CAP_SYS_NICE or an RLIMIT_NICE that allows it: without, the workers
 * keep the starter's policy rather than not start.
 */
static void kblockd_start_worker(pthread_attr_t *tattr)
{
	pthread_t t;
	int ret = pthread_create(&t, tattr, kblockd_thread, NULL);

	if (ret == EPERM) {
		pthread_attr_setinheritsched(tattr, PTHREAD_INHERIT_SCHED);
		ret = pthread_create(&t, tattr, kblockd_thread, NULL);
	}
	BUG_ON(ret);
	pthread_setname_np(t, "kblockd");
}

static void pool_start(void)
{
	pthread_condattr_t attr;
	pthread_attr_t tattr;
	int policy = sched_getscheduler(0);

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool_cond, &attr);
	pthread_cond_init(&done_cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_attr_init(&tattr);
	pthread_attr_setdetachstate(&tattr, PTHREAD_CREATE_DETACHED);
	if (policy == SCHED_BATCH || policy == SCHED_IDLE) {
		struct sched_param sp = { 0 };

		pthread_attr_setinheritsched(&tattr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&tattr, SCHED_OTHER);
		pthread_attr_setschedparam(&tattr, &sp);
	}
	for (int i = 0; i < KBLOCKD_THREADS; i++)
		kblockd_start_worker(&tattr);
	pthread_attr_destroy(&tattr);
}

void work_init(struct work_struct *w, work_func_t fn)
{
	INIT_LIST_HEAD(&w->entry);
	w->func = fn;
	w->when_ns = 0;
	w->pending = false;
	w->running = false;
	w->rerun = false;
}

/* Caller holds pool_lock. */
static void __insert_delayed(struct work_struct *w)
{
	struct work_struct *pos;

	list_for_each_entry(pos, &delayed_list, entry) {
		if (pos->when_ns > w->when_ns) {
			list_add_tail(&w->entry, &pos->entry);
			return;
		}
	}
	list_add_tail(&w->entry, &delayed_list);
}

/* Caller holds pool_lock; @w is not pending. */
static void __queue(struct work_struct *w, unsigned long msecs)
{
	w->pending = true;
	if (msecs) {
		w->when_ns = ktime_get_ns() + msecs * NSEC_PER_MSEC;
		__insert_delayed(w);
	} else {
		w->when_ns = 0;
		list_add_tail(&w->entry, &ready_list);
	}
	pthread_cond_signal(&pool_cond);
}

static bool queue_work_after(struct work_struct *w, unsigned long msecs,
			     bool modify)
{
	bool queued = false;

	pthread_once(&pool_once, pool_start);
	pthread_mutex_lock(&pool_lock);
	if (w->pending && modify) {
		list_del_init(&w->entry);
		w->pending = false;
	}
	if (!w->pending) {
		__queue(w, msecs);
		queued = true;
	}
	pthread_mutex_unlock(&pool_lock);
	return queued;
}

bool kblockd_schedule_work(struct work_struct *w)
{
	return queue_work_after(w, 0, false);
}

bool kblockd_schedule_delayed_work(struct delayed_work *dw,
				   unsigned long msecs)
{
	return queue_work_after(&dw->work, msecs, false);
}

void kblockd_mod_delayed_work(struct delayed_work *dw, unsigned long msecs)
{
	queue_work_after(&dw->work, msecs, true);
}

bool work_pending(struct work_struct *w)
{
	bool p;

	pthread_mutex_lock(&pool_lock);
	p = w->pending;
	pthread_mutex_unlock(&pool_lock);
	return p;
}

void cancel_work_sync(struct work_struct *w)
{
	pthread_once(&pool_once, pool_start);
	pthread_mutex_lock(&pool_lock);
	if (w->pending) {
		list_del_init(&w->entry);
		w->pending = false;
	}
	w->rerun = false;
	while (w->running)
		pthread_cond_wait(&done_cond, &pool_lock);
	pthread_mutex_unlock(&pool_lock);
}

void flush_work(struct work_struct *w)
{
	pthread_once(&pool_once, pool_start);
	pthread_mutex_lock(&pool_lock);
	while ((w->pending && w->when_ns <= ktime_get_ns()) || w->running ||
	       w->rerun)
		pthread_cond_wait(&done_cond, &pool_lock);
	pthread_mutex_unlock(&pool_lock);
}

/* Caller holds pool_lock: move due delayed items to the ready list. */
static uint64_t __promote_due(void)
{
	uint64_t now = ktime_get_ns();
	struct work_struct *w;

	while (!list_empty(&delayed_list)) {
		w = list_first_entry(&delayed_list, struct work_struct, entry);
		if (w->when_ns > now)
			return w->when_ns;
		list_move_tail(&w->entry, &ready_list);
	}
	return 0;
}

static void run_one(struct work_struct *w)
{
	list_del_init(&w->entry);
	w->pending = false;
	if (w->running) {
		/* the other worker runs it again when it finishes */
		w->rerun = true;
		return;
	}
	w->running = true;
	do {
		w->rerun = false;
		pthread_mutex_unlock(&pool_lock);
		w->func(w);
		pthread_mutex_lock(&pool_lock);
	} while (w->rerun);
	w->running = false;
	pthread_cond_broadcast(&done_cond);
}

static void *kblockd_thread(void *arg)
{
	pthread_mutex_lock(&pool_lock);
	for (;;) {
		uint64_t next = __promote_due();

		if (!list_empty(&ready_list)) {
			run_one(list_first_entry(&ready_list,
						 struct work_struct, entry));
			continue;
		}
		if (next) {
			struct timespec ts = ns_to_timespec(next);

			pthread_cond_timedwait(&pool_cond, &pool_lock, &ts);
		} else {
			pthread_cond_wait(&pool_cond, &pool_lock);
		}
	}
	return NULL;
}
