/* SPDX-License-Identifier: MIT */
/*
 * kblockd: a small pool of worker threads running work items, now or after
 * a delay. Queue runs that must not happen in the caller's context,
 * requeues and time-out scans run here.
 *
 * A work item is pending at most once (queueing a pending item is a no-op)
 * and never runs on two workers at once.
 */
#ifndef BLKSTACK_LIB_WORKQUEUE_H
#define BLKSTACK_LIB_WORKQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <blkstack/list.h>

struct work_struct;
typedef void (*work_func_t)(struct work_struct *work);

struct work_struct {
	struct list_head entry;
	work_func_t func;
	uint64_t when_ns;	/* 0 = ready now */
	bool pending;		/* on a list; under the pool lock */
	bool running;
	bool rerun;		/* queued again while running */
};

struct delayed_work {
	struct work_struct work;
};

#define INIT_WORK(w, fn) work_init((w), (fn))
#define INIT_DELAYED_WORK(dw, fn) work_init(&(dw)->work, (fn))

void work_init(struct work_struct *w, work_func_t fn);
/* Queue @w now; false if already pending. */
bool kblockd_schedule_work(struct work_struct *w);
/* Queue after @msecs unless already pending (then keep its time). */
bool kblockd_schedule_delayed_work(struct delayed_work *dw,
				   unsigned long msecs);
/* Queue after @msecs, moving an already pending item to the new time. */
void kblockd_mod_delayed_work(struct delayed_work *dw, unsigned long msecs);
/* Take @w off the queue and wait until it is not running. */
void cancel_work_sync(struct work_struct *w);
static inline void cancel_delayed_work_sync(struct delayed_work *dw)
{
	cancel_work_sync(&dw->work);
}
/* Wait until @w is neither pending-and-due nor running. */
void flush_work(struct work_struct *w);
bool work_pending(struct work_struct *w);

#endif
