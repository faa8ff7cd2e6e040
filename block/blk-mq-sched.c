// SPDX-License-Identifier: MIT
/*
 * Scheduler glue (the kernel's block/blk-mq-sched.c): dispatching from an
 * elevator or from the software queues, bio merging through the elevator
 * or into the CPU's software queue, SCHED_RESTART, and scheduler tags.
 */
#include <errno.h>
#include <stdlib.h>

#include "blk.h"
#include "blk-trace.h"

#define BLK_MQ_BUDGET_DELAY	3	/* ms */
/* how many requests at the tail of a ctx list a bio may merge into */
#define BLK_BIO_LIST_MERGE_MAX	8

void blk_mq_sched_mark_restart_hctx(struct blk_mq_hw_ctx *hctx)
{
	if (!hctx_test_bit(BLK_MQ_S_SCHED_RESTART, hctx))
		hctx_set_bit(BLK_MQ_S_SCHED_RESTART, hctx);
}

/*
 * A request completed (a tag freed): if dispatch gave up for lack of
 * resources, run the queue again.
 */
void blk_mq_sched_restart(struct blk_mq_hw_ctx *hctx)
{
	if (likely(!hctx_test_bit(BLK_MQ_S_SCHED_RESTART, hctx)))
		return;
	hctx_clear_bit(BLK_MQ_S_SCHED_RESTART, hctx);
	/* order clearing the bit before looking at the dispatch list */
	smp_mb();
	blk_mq_run_hw_queue(hctx, true);
}

static void blk_mq_delay_run_hw_queues(struct request_queue *q,
				       unsigned long msecs)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	queue_for_each_hw_ctx(q, hctx, i)
		if (!hctx_test_bit(BLK_MQ_S_INACTIVE, hctx))
			blk_mq_delay_run_hw_queue(hctx, msecs);
}

static int blk_mq_get_budget(struct request_queue *q)
{
	if (q->mq_ops->get_budget)
		return q->mq_ops->get_budget(q) ? 0 : -1;
	return 0;
}

static void blk_mq_put_budget(struct request_queue *q)
{
	if (q->mq_ops->put_budget)
		q->mq_ops->put_budget(q);
}

/*
 * Pull requests from the elevator, each with budget, and send them.
 * Returns 1 if it dispatched and may go on, 0 if done, -EAGAIN if the
 * dispatch list filled up meanwhile.
 */
static int __blk_mq_do_dispatch_sched(struct blk_mq_hw_ctx *hctx)
{
	struct request_queue *q = hctx->queue;
	struct elevator_queue *e = q->elevator;
	bool run_queue = false, busy = false, dispatched = false;
	LIST_HEAD(rq_list);
	unsigned int count = 0, max_dispatch;

	max_dispatch = atomic_load_explicit(&hctx->dispatch_busy,
					    memory_order_relaxed) ?
		       1 : q->nr_requests;
	do {
		struct request *rq;

		if (e->type->ops.has_work && !e->type->ops.has_work(hctx))
			break;
		if (hctx_dispatch_busy_list(hctx)) {
			busy = true;
			break;
		}
		if (blk_mq_get_budget(q) < 0)
			break;
		rq = e->type->ops.dispatch_request(hctx);
		if (!rq) {
			blk_mq_put_budget(q);
			/* the scheduler holds back (idling): try later */
			run_queue = true;
			break;
		}
		list_add_tail(&rq->queuelist, &rq_list);
		count++;
		/* no driver tag: stop taking requests out of the scheduler */
		if (!blk_mq_get_driver_tag(rq))
			break;
	} while (count < max_dispatch);

	if (!count) {
		if (run_queue)
			blk_mq_delay_run_hw_queues(q, BLK_MQ_BUDGET_DELAY);
	} else {
		struct request *rq;
		bool mixed = false;

		list_for_each_entry(rq, &rq_list, queuelist)
			if (rq->mq_hctx != hctx)
				mixed = true;
		if (!mixed) {
			dispatched = blk_mq_dispatch_rq_list(hctx, &rq_list,
							     count);
		} else {
			/* a scheduler shared by hctxs: send each its own */
			while (!list_empty(&rq_list)) {
				struct blk_mq_hw_ctx *h;
				struct request *pos, *n;
				LIST_HEAD(one);
				unsigned int c = 0;

				h = list_first_entry(&rq_list, struct request,
						     queuelist)->mq_hctx;
				list_for_each_entry_safe(pos, n, &rq_list,
							 queuelist) {
					if (pos->mq_hctx != h)
						continue;
					list_move_tail(&pos->queuelist, &one);
					c++;
				}
				dispatched |= blk_mq_dispatch_rq_list(h, &one, c);
			}
		}
	}
	if (busy)
		return -EAGAIN;
	return !!dispatched;
}

static int blk_mq_do_dispatch_sched(struct blk_mq_hw_ctx *hctx)
{
	uint64_t end = ktime_get_ns() + NSEC_PER_SEC;
	int ret;

	do {
		ret = __blk_mq_do_dispatch_sched(hctx);
		if (ret != 1)
			break;
		/* do not hog the CPU: after a second, let a worker go on */
		if (ktime_get_ns() > end) {
			ret = -EAGAIN;
			break;
		}
	} while (1);
	return ret;
}

static struct blk_mq_ctx *blk_mq_next_ctx(struct blk_mq_hw_ctx *hctx,
					  struct blk_mq_ctx *ctx)
{
	unsigned short idx = ctx->index_hw[hctx->type];

	if (++idx == hctx->nr_ctx)
		idx = 0;
	return hctx->ctxs[idx];
}

/*
 * The driver is busy: take one request at a time, round-robin over the
 * ctxs, so requests stay in ctx lists (mergeable) until the driver can
 * take them.
 */
static int blk_mq_do_dispatch_ctx(struct blk_mq_hw_ctx *hctx)
{
	struct request_queue *q = hctx->queue;
	LIST_HEAD(rq_list);
	struct blk_mq_ctx *ctx = hctx->nr_ctx ?
		hctx->ctxs[READ_ONCE(hctx->dispatch_from) % hctx->nr_ctx] :
		NULL;
	struct request *rq;
	int ret = 0;

	do {
		if (hctx_dispatch_busy_list(hctx)) {
			ret = -EAGAIN;
			break;
		}
		if (!sbitmap_any_bit_set(&hctx->ctx_map))
			break;
		if (blk_mq_get_budget(q) < 0)
			break;
		rq = blk_mq_dequeue_from_ctx(hctx, ctx);
		if (!rq) {
			blk_mq_put_budget(q);
			blk_mq_delay_run_hw_queues(q, BLK_MQ_BUDGET_DELAY);
			break;
		}
		list_add(&rq->queuelist, &rq_list);
		ctx = blk_mq_next_ctx(hctx, rq->mq_ctx);
	} while (blk_mq_dispatch_rq_list(rq->mq_hctx, &rq_list, 1));
	if (ctx)
		WRITE_ONCE(hctx->dispatch_from, ctx->index_hw[hctx->type]);
	return ret;
}

static int __blk_mq_sched_dispatch_requests(struct blk_mq_hw_ctx *hctx)
{
	bool need_dispatch = false;
	LIST_HEAD(rq_list);

	/* what the driver refused before goes first, for fairness */
	if (hctx_dispatch_busy_list(hctx)) {
		pthread_spin_lock(&hctx->lock);
		list_splice_init(&hctx->dispatch, &rq_list);
		__hctx_dispatch_update(hctx);
		pthread_spin_unlock(&hctx->lock);
	}
	if (!list_empty(&rq_list)) {
		blk_mq_sched_mark_restart_hctx(hctx);
		if (!blk_mq_dispatch_rq_list(hctx, &rq_list, 0))
			return 0;
		need_dispatch = true;
	} else {
		need_dispatch = atomic_load_explicit(&hctx->dispatch_busy,
						     memory_order_relaxed);
	}
	if (hctx->queue->elevator)
		return blk_mq_do_dispatch_sched(hctx);
	if (need_dispatch)
		return blk_mq_do_dispatch_ctx(hctx);
	blk_mq_flush_busy_ctxs(hctx, &rq_list);
	blk_mq_dispatch_rq_list(hctx, &rq_list, 0);
	return 0;
}

void blk_mq_sched_dispatch_requests(struct blk_mq_hw_ctx *hctx)
{
	struct request_queue *q = hctx->queue;

	if (unlikely(blk_mq_hctx_stopped(hctx) || blk_queue_quiesced(q)))
		return;
	atomic_fetch_add_explicit(&hctx->run, 1, memory_order_relaxed);
	/* the dispatch list refilled while we worked: once more, then defer */
	if (__blk_mq_sched_dispatch_requests(hctx) == -EAGAIN) {
		if (__blk_mq_sched_dispatch_requests(hctx) == -EAGAIN)
			blk_mq_run_hw_queue(hctx, true);
	}
}

/* ---- merging ---- */

/*
 * Merge @bio into one of the last few requests of a ctx list (no
 * scheduler). Called with the ctx lock held.
 */
bool blk_bio_list_merge(struct request_queue *q, struct list_head *list,
			struct bio *bio, unsigned int nr_segs)
{
	struct request *rq;
	int checked = BLK_BIO_LIST_MERGE_MAX;

	list_for_each_entry_reverse(rq, list, queuelist) {
		if (!checked--)
			break;
		switch (blk_attempt_bio_merge(q, rq, bio, nr_segs, true)) {
		case BIO_MERGE_NONE:
			continue;
		case BIO_MERGE_OK:
			return true;
		case BIO_MERGE_FAILED:
			return false;
		}
	}
	return false;
}

bool blk_mq_sched_bio_merge(struct request_queue *q, struct bio *bio,
			    unsigned int nr_segs, struct blk_mq_ctx *ctx)
{
	struct elevator_queue *e = q->elevator;
	struct blk_mq_hw_ctx *hctx;
	bool ret = false;
	enum hctx_type type;

	if (e && e->type->ops.bio_merge)
		return e->type->ops.bio_merge(q, bio, nr_segs);
	if (e || blk_queue_nomerges(q) || op_is_flush(bio->bi_opf))
		return false;

	hctx = blk_mq_map_queue(q, bio->bi_opf, ctx);
	type = hctx->type;
	/* as the kernel: a look at the list without the lock first */
	if (!(hctx->flags & BLK_MQ_F_SHOULD_MERGE) ||
	    list_empty_careful(&ctx->rq_lists[type]))
		return false;
	pthread_spin_lock(&ctx->lock);
	/* the request may have been merged or dispatched meanwhile */
	if (blk_bio_list_merge(q, &ctx->rq_lists[type], bio, nr_segs))
		ret = true;
	pthread_spin_unlock(&ctx->lock);
	return ret;
}

/*
 * The elevator's helper for bio merging: find a request (one-hit cache,
 * then the elevator's own lookup) and merge, then let the elevator try
 * merging the grown request with its neighbour. A request emptied by
 * such a merge is returned in *@merged for the caller to free.
 */
bool blk_mq_sched_try_merge(struct request_queue *q, struct bio *bio,
			    unsigned int nr_segs, struct request **merged)
{
	struct request *rq;

	switch (elv_merge(q, &rq, bio)) {
	case ELEVATOR_BACK_MERGE:
		if (!blk_mq_sched_allow_merge(q, rq, bio))
			return false;
		if (!bio_attempt_back_merge(rq, bio, nr_segs))
			return false;
		*merged = attempt_back_merge(q, rq);
		if (!*merged)
			elv_merged_request(q, rq, ELEVATOR_BACK_MERGE);
		return true;
	case ELEVATOR_FRONT_MERGE:
		if (!blk_mq_sched_allow_merge(q, rq, bio))
			return false;
		if (!bio_attempt_front_merge(rq, bio, nr_segs))
			return false;
		*merged = attempt_front_merge(q, rq);
		if (!*merged)
			elv_merged_request(q, rq, ELEVATOR_FRONT_MERGE);
		return true;
	case ELEVATOR_DISCARD_MERGE:
		return bio_attempt_discard_merge(q, rq, bio);
	default:
		return false;
	}
}

bool blk_mq_sched_try_insert_merge(struct request_queue *q,
				   struct request *rq, struct list_head *free)
{
	return elv_attempt_insert_merge(q, rq, free);
}

/* ---- scheduler tags ---- */

void blk_mq_sched_free_rqs(struct request_queue *q)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	queue_for_each_hw_ctx(q, hctx, i) {
		if (hctx->sched_tags) {
			blk_mq_free_map_and_rqs(q->tag_set, hctx->sched_tags, i);
			hctx->sched_tags = NULL;
		}
	}
}

/*
 * Attach elevator type @e to @q (frozen and quiesced by the caller):
 * scheduler tags of nr_requests per hctx, then the scheduler's own
 * init for the queue and each hctx.
 */
int blk_mq_init_sched(struct request_queue *q, const struct elevator_type *e)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;
	int ret;

	/* the kernel's default: twice the smaller of depth and 128 */
	q->nr_requests = 2 * min(q->tag_set->queue_depth, 128U);
	queue_for_each_hw_ctx(q, hctx, i) {
		hctx->sched_tags = blk_mq_alloc_map_and_rqs(q->tag_set, i,
							    q->nr_requests);
		if (!hctx->sched_tags) {
			ret = -ENOMEM;
			goto err_free;
		}
	}
	q->elevator = calloc(1, sizeof(*q->elevator));
	if (!q->elevator) {
		ret = -ENOMEM;
		goto err_free;
	}
	q->elevator->type = e;
	q->elevator->queue = q;
	for (i = 0; i < ARRAY_SIZE(q->elevator->hash); i++)
		INIT_LIST_HEAD(&q->elevator->hash[i]);
	pthread_mutex_init(&q->elevator->sysfs_lock, NULL);
	if (e->ops.init_sched) {
		ret = e->ops.init_sched(q, q->elevator);
		if (ret)
			goto err_elv;
	}
	queue_for_each_hw_ctx(q, hctx, i) {
		if (e->ops.init_hctx) {
			ret = e->ops.init_hctx(hctx, i);
			if (ret)
				goto err_hctx;
		}
	}
	return 0;

err_hctx:
	/* undo only the hctxs that were set up */
	while (i-- && e->ops.exit_hctx)
		e->ops.exit_hctx(q->queue_hw_ctx[i], i);
	if (e->ops.exit_sched)
		e->ops.exit_sched(q->elevator);

err_elv:
	pthread_mutex_destroy(&q->elevator->sysfs_lock);
	free(q->elevator);
	q->elevator = NULL;
err_free:
	blk_mq_sched_free_rqs(q);
	q->nr_requests = q->tag_set->queue_depth;
	return ret;
}

void blk_mq_exit_sched(struct request_queue *q, struct elevator_queue *e)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	queue_for_each_hw_ctx(q, hctx, i) {
		if (e->type->ops.exit_hctx) {
			e->type->ops.exit_hctx(hctx, i);
			hctx->sched_data = NULL;
		}
	}
	if (e->type->ops.exit_sched)
		e->type->ops.exit_sched(e);
	blk_mq_sched_free_rqs(q);
	pthread_mutex_destroy(&e->sysfs_lock);
	free(e);
	q->elevator = NULL;
	q->nr_requests = q->tag_set->queue_depth;
}
