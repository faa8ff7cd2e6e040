// SPDX-License-Identifier: MIT
/*
 * The Budget Fair Queueing I/O scheduler (the kernel's block/bfq-iosched.c,
 * Documentation/block/bfq-iosched.rst), flat: no cgroup hierarchy.
 *
 * Every issuer (io_context: a thread, an NBD connection, a job) gets its
 * own synchronous bfq_queue; asynchronous requests go to queues shared
 * per priority (class and level), as in the kernel. A queue holds its
 * requests in a sector-sorted tree and a FIFO. The queue in service is
 * given a budget (sectors) and served alone until the budget is used up,
 * the queue empties, or the budget timeout passes; then it expires and
 * the B-WF2Q+ service trees (bfq-wf2q.c) choose the next one by virtual
 * finish time, in proportion to the queues' weights. The budget of each
 * queue follows its behaviour (feedback on the expiration reason).
 *
 * A synchronous queue that empties is not expired at once: the device
 * idles up to slice_idle for its next request (the issuer is thinking),
 * which keeps a sequential reader sequential and makes weights hold for
 * issuers with one request in flight. Idling is skipped where it only
 * costs throughput (unless weights differ, or strict_guarantees): deep
 * queues on flash, seeky queues on flash and on disks with NCQ, and
 * issuers whose think time exceeds slice_idle.
 *
 * low_latency raises the weight of interactive queues (new ones, and ones
 * back after a long idle period) and of soft real-time ones (that come
 * back periodically with little to do), for a limited time.
 *
 * One instance per queue: bfqd->lock serialises everything but the
 * unlocked has_work peek. The elevator's merge callbacks run with it
 * held, from bfq_bio_merge() and bfq_insert_requests().
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfq-iosched.h"

/* the kernel's defaults */
#define BFQ_DEFAULT_MAX_BUDGET		(16 * 1024)	/* sectors */
#define BFQ_FIFO_EXPIRE_SYNC_MS		125
#define BFQ_FIFO_EXPIRE_ASYNC_MS	250
#define BFQ_BACK_SEEK_MAX_KB		(16 * 1024)
#define BFQ_BACK_SEEK_PENALTY		2
#define BFQ_SLICE_IDLE_US		8000
#define BFQ_TIMEOUT_MS			125
#define BFQ_ASYNC_CHARGE_FACTOR		3
#define BFQQ_SEEK_THR			(8 * 100)	/* sectors */
#define BFQ_HW_QUEUE_THRESHOLD		3
#define BFQ_HW_QUEUE_SAMPLES		32
/* weight raising (low_latency) */
#define BFQ_WR_COEFF			30
#define BFQ_WR_INTERACTIVE_MS		6000
#define BFQ_WR_MIN_IDLE_MS		2000
#define BFQ_WR_SOFTRT_MS		300
#define BFQ_SOFTRT_WEIGHT_FACTOR	100	/* soft rt: coeff x 100 */
#define BFQ_SOFTRT_MAX_RATE		7000	/* sectors/s */
/* an interactive queue served this much is I/O bound: raising ends */
#define BFQ_WR_MAX_SERVICE		120000	/* sectors */
/* the weight of a best-effort level-4 issuer: the only one raised */
#define BFQ_DEFAULT_WEIGHT		40

const char *const bfq_expire_name[BFQQE_NR] = {
	[BFQQE_TOO_IDLE] = "too_idle",
	[BFQQE_BUDGET_TIMEOUT] = "budget_timeout",
	[BFQQE_BUDGET_EXHAUSTED] = "budget_exhausted",
	[BFQQE_NO_MORE_REQUESTS] = "no_more_requests",
	[BFQQE_PREEMPTED] = "preempted",
};

/* ---- requests in a queue's sector tree ---- */

static struct bfq_queue *RQ_BFQQ(const struct request *rq)
{
	return rq->elv.priv[0];
}

#define RQ_IN_DRIVER	((void *)(uintptr_t)1)

static bool bfq_rq_in_driver(const struct request *rq)
{
	return rq->elv.priv[1] == RQ_IN_DRIVER;
}

static void bfq_add_rq_rb(struct bfq_queue *bfqq, struct request *rq)
{
	elv_rb_add(&bfqq->sort_list, rq);
}

static sector_t bfq_dist(sector_t a, sector_t b)
{
	return a > b ? a - b : b - a;
}

/*
 * The cost of serving @rq next from @last: a request behind the head is
 * worth back_seek_penalty times its distance, and beyond back_seek_max
 * it is not considered (the kernel's bfq_choose_req()).
 */
static sector_t bfq_seek_cost(struct bfq_data *bfqd, struct request *rq,
			      sector_t last)
{
	sector_t pos = blk_rq_pos(rq);

	if (pos >= last)
		return pos - last;
	if (last - pos <= (sector_t)bfqd->bfq_back_max * 2)
		return (last - pos) * bfqd->bfq_back_penalty;
	return (sector_t)-1;
}

/* The best next request in @bfqq's tree, seen from the head position. */
static struct request *bfq_find_next_rq(struct bfq_data *bfqd,
					struct bfq_queue *bfqq)
{
	sector_t last = bfqd->last_position;
	struct rb_node *n = bfqq->sort_list.rb_node;
	struct request *after = NULL, *before = NULL;

	while (n) {
		struct request *rq = rb_to_rq(n);

		if (blk_rq_pos(rq) >= last) {
			after = rq;
			n = n->rb_left;
		} else {
			before = rq;
			n = n->rb_right;
		}
	}
	if (!after)
		return before ? before :
		       rb_to_rq(rb_first(&bfqq->sort_list));
	if (before && bfq_seek_cost(bfqd, before, last) <
		      bfq_seek_cost(bfqd, after, last))
		return before;
	return after;
}

/* ---- peak rate: what max_budget is when not set ---- */

#define BFQ_RATE_SHIFT		16	/* rates in sectors/µs << 16 */
#define BFQ_RATE_MIN_SAMPLES	32
#define BFQ_RATE_MIN_INTERVAL	(300 * NSEC_PER_MSEC)
#define BFQ_RATE_REF_INTERVAL	NSEC_PER_SEC
/* above 20M sectors/s a sample is nonsense */
#define BFQ_RATE_MAX		(20ULL << BFQ_RATE_SHIFT)
/* dispatched within this of a completion: the device was not idle */
#define BFQ_MIN_TT		(2 * NSEC_PER_MSEC)
/* the kernel's reference rates of a disk and an SSD */
static const uint64_t bfq_ref_rate[2] = { 14000, 33000 };

static void bfq_reset_rate(struct bfq_data *bfqd, struct request *rq,
			   uint64_t now)
{
	struct bfq_rate_sample *r = &bfqd->rate;

	r->samples = 0;
	if (!rq)
		return;
	r->first_dispatch = r->last_dispatch = now;
	r->samples = 1;
	r->seq_samples = 0;
	r->sectors = blk_rq_sectors(rq);
	r->delta = 0;
}

/*
 * An observation interval ended: fold its rate into the peak rate with
 * a low-pass filter weighted by how sequential and how long it was, if
 * it was long enough to mean something and either mostly sequential or
 * faster than the estimate (a seeky interval says nothing about the
 * peak). The kernel's bfq_update_rate_reset().
 */
static void bfq_update_rate_reset(struct bfq_data *bfqd, struct request *rq,
				  uint64_t now)
{
	struct bfq_rate_sample *r = &bfqd->rate;
	uint64_t rate, delta;
	unsigned int weight, divisor;

	if (r->samples < BFQ_RATE_MIN_SAMPLES ||
	    r->delta < BFQ_RATE_MIN_INTERVAL)
		goto reset;
	/* the device worked until its last completion */
	delta = max(r->delta, r->last_completion > r->first_dispatch ?
			      r->last_completion - r->first_dispatch : 0);
	rate = (r->sectors << BFQ_RATE_SHIFT) / max(1ULL, delta / NSEC_PER_USEC);
	if ((r->seq_samples < 3 * r->samples / 4 && rate <= bfqd->peak_rate) ||
	    rate > BFQ_RATE_MAX)
		goto reset;
	weight = 9 * r->seq_samples / r->samples;
	weight = (unsigned int)min(8ULL, weight * delta / BFQ_RATE_REF_INTERVAL);
	divisor = 10 - weight;
	bfqd->peak_rate = bfqd->peak_rate * (divisor - 1) / divisor +
			  rate / divisor;
	bfqd->peak_rate = max(1ULL, bfqd->peak_rate);
	bfqd->peak_rate_measured = true;
reset:
	bfq_reset_rate(bfqd, rq, now);
}

/*
 * At each dispatch: sample the device's rate over intervals of about a
 * second. An interval ends early if the device sat idle for 100 ms (that
 * idle time is not the device's rate). A dispatch is sequential when
 * close to the last one and the device was busy (something in flight,
 * or a completion within BFQ_MIN_TT). The kernel's
 * bfq_update_peak_rate().
 */
static void bfq_update_peak_rate(struct bfq_data *bfqd, struct request *rq,
				 uint64_t now)
{
	struct bfq_rate_sample *r = &bfqd->rate;
	bool seeky = bfq_dist(bfqd->last_position, blk_rq_pos(rq)) >
		     BFQQ_SEEK_THR &&
		     (!bfqd->nonrot || blk_rq_sectors(rq) < 2 * 32);

	if (!r->samples) {
		bfq_reset_rate(bfqd, rq, now);
		return;
	}
	if (now - r->last_dispatch > 100 * NSEC_PER_MSEC &&
	    !bfqd->rq_in_driver) {
		bfq_update_rate_reset(bfqd, rq, now);
		return;
	}
	r->samples++;
	if ((bfqd->rq_in_driver || now - r->last_completion < BFQ_MIN_TT) &&
	    !seeky)
		r->seq_samples++;
	r->sectors += blk_rq_sectors(rq);
	r->delta = now - r->first_dispatch;
	r->last_dispatch = now;
	if (r->delta >= BFQ_RATE_REF_INTERVAL)
		bfq_update_rate_reset(bfqd, rq, now);
}

/* ---- budgets and weights ---- */

/*
 * max_budget as set, or else what the device moves in timeout_sync at
 * its peak rate; the kernel's default until the rate is measured.
 */
static unsigned long bfq_max_budget(struct bfq_data *bfqd)
{
	uint64_t us = bfqd->bfq_timeout / NSEC_PER_USEC;

	if (bfqd->bfq_user_max_budget)
		return bfqd->bfq_user_max_budget;
	if (!bfqd->peak_rate_measured)
		return BFQ_DEFAULT_MAX_BUDGET;
	return (unsigned long)max(1ULL, (bfqd->peak_rate * us) >>
					BFQ_RATE_SHIFT);
}

static unsigned long bfq_min_budget(struct bfq_data *bfqd)
{
	return max(1UL, bfq_max_budget(bfqd) / 32);
}

/*
 * Service a request costs its queue: its size, and for async requests
 * of a queue not weight-raised three times that, so that writes do not
 * crowd out reads (the kernel's bfq_serv_to_charge()).
 */
static unsigned long bfq_serv_to_charge(struct request *rq,
					struct bfq_queue *bfqq)
{
	unsigned long sectors = max(1U, blk_rq_sectors(rq));

	if (bfq_bfqq_sync(bfqq) || bfqq->wr_coeff > 1 ||
	    bfqq->bfqd->strict_guarantees)
		return sectors;
	return sectors * BFQ_ASYNC_CHARGE_FACTOR;
}

/*
 * The kernel's ioprio -> weight mapping: (8 - level) * 10; class NONE is
 * best effort at the default level 4 (a nice-0 task).
 */
static unsigned int bfq_ioprio_to_weight(unsigned short level)
{
	return (IOPRIO_NR_LEVELS - level) * BFQ_WEIGHT_CONVERSION_COEFF;
}

static void bfq_ioprio_of(unsigned short ioprio, unsigned short *class,
			  unsigned short *level)
{
	*class = (unsigned short)IOPRIO_PRIO_CLASS(ioprio);
	*level = (unsigned short)IOPRIO_PRIO_LEVEL(ioprio);
	if (*class == IOPRIO_CLASS_NONE || *class > IOPRIO_CLASS_IDLE) {
		*class = IOPRIO_CLASS_BE;
		*level = 4;
	}
}

/* The counters of @bfqq's class (BE for a request without a queue). */
static struct bfq_class_stats *bfq_cls(struct bfq_data *bfqd,
				       const struct bfq_queue *bfqq)
{
	return &bfqd->stats.cls[(bfqq ? bfqq->ioprio_class :
				 IOPRIO_CLASS_BE) - 1];
}

/* The weight the entity competes with: the base weight, raised. */
static void bfq_update_entity_weight(struct bfq_queue *bfqq)
{
	bfqq->entity.weight = bfqq->entity.orig_weight * bfqq->wr_coeff;
}

/* ---- queue lookup and lifetime ---- */

static unsigned int bfq_ioc_hash(const struct io_context *ioc)
{
	return (unsigned int)(((uintptr_t)ioc * 0x9E3779B97F4A7C15ULL) >>
			      (64 - BFQ_HASH_BITS));
}

static void bfq_init_bfqq(struct bfq_data *bfqd, struct bfq_queue *bfqq,
			  unsigned short ioprio, bool sync)
{
	bfqq->bfqd = bfqd;
	bfqq->sort_list = RB_ROOT;
	INIT_LIST_HEAD(&bfqq->fifo);
	INIT_LIST_HEAD(&bfqq->hash_node);
	INIT_LIST_HEAD(&bfqq->bfqq_list);
	RB_CLEAR_NODE(&bfqq->entity.rb_node);
	bfq_ioprio_of(ioprio, &bfqq->ioprio_class, &bfqq->ioprio);
	bfqq->sync = sync;
	bfqq->wr_coeff = 1;
	bfqq->max_budget = (2 * bfq_max_budget(bfqd)) / 3;
	bfqq->entity.budget = bfqq->max_budget;
	bfqq->entity.orig_weight = bfq_ioprio_to_weight(bfqq->ioprio);
	bfq_update_entity_weight(bfqq);
	bfqq->last_idle_end = 0;
	bfqq->soft_rt_next_start = 0;
	bfqq->short_ttime = true;
	bfqd->stats.queues_created++;
}

/* Explicit weights (1..1000) win over ioprio ones, as the kernel's cgroup
 * and per-process weights do. */
static void bfq_set_ioc_weight(struct bfq_queue *bfqq,
			       const struct io_context *ioc)
{
	unsigned int w = ioc ? ioc->weight : 0;

	bfqq->entity.orig_weight = w ? w : bfq_ioprio_to_weight(bfqq->ioprio);
	if (!bfq_entity_on_tree(&bfqq->entity) && !bfqq->busy)
		bfq_update_entity_weight(bfqq);
}

static struct bfq_queue *bfq_alloc_queue(struct bfq_data *bfqd)
{
	struct bfq_queue *bfqq = calloc(1, sizeof(*bfqq));

	if (!bfqq)
		blk_err(-ENOMEM, "bfq: out of memory for a queue");
	return bfqq;
}

static void bfq_free_queue(struct bfq_data *bfqd, struct bfq_queue *bfqq)
{
	BUG_ON(bfqq->busy || bfqq->ref || bfqq->queued || bfqq->dispatched);
	BUG_ON(bfqq == bfqd->in_service_queue);
	list_del_init(&bfqq->hash_node);
	list_del_init(&bfqq->bfqq_list);
	put_io_context(bfqq->ioc);
	bfqd->stats.queues_freed++;
	free(bfqq);
}

/*
 * A sync queue outlives its idle periods (its virtual times and history
 * matter when it comes back) but not its issuer: once only the queue
 * holds the io_context, nobody can send it I/O again.
 */
static bool bfq_queue_dead(struct bfq_queue *bfqq)
{
	return bfqq->ioc && !bfqq->ref && !bfqq->busy &&
	       bfqq != bfqq->bfqd->in_service_queue &&
	       atomic_load_explicit(&bfqq->ioc->refcount,
				    memory_order_acquire) == 1;
}

/* Free the queues of issuers gone. bfqd->lock held. */
static void bfq_reap_queues(struct bfq_data *bfqd)
{
	struct bfq_queue *bfqq, *next;

	list_for_each_entry_safe(bfqq, next, &bfqd->sync_queues, bfqq_list)
		if (bfq_queue_dead(bfqq))
			bfq_free_queue(bfqd, bfqq);
}

static struct bfq_queue *bfq_find_sync_queue(struct bfq_data *bfqd,
					     struct io_context *ioc)
{
	struct bfq_queue *bfqq;

	list_for_each_entry(bfqq, &bfqd->hash[bfq_ioc_hash(ioc)], hash_node)
		if (bfqq->ioc == ioc)
			return bfqq;
	return NULL;
}

static struct bfq_queue *bfq_get_sync_queue(struct bfq_data *bfqd,
					    struct io_context *ioc,
					    unsigned short ioprio,
					    uint64_t now)
{
	struct bfq_queue *bfqq = bfq_find_sync_queue(bfqd, ioc);

	if (bfqq)
		return bfqq;
	/* a new issuer: a good time to drop those that left */
	bfq_reap_queues(bfqd);
	bfqq = bfq_alloc_queue(bfqd);
	if (!bfqq)
		return NULL;
	bfq_init_bfqq(bfqd, bfqq, ioprio, true);
	get_io_context(ioc);
	bfqq->ioc = ioc;
	bfqq->pid = ioc->pid;
	list_add(&bfqq->hash_node, &bfqd->hash[bfq_ioc_hash(ioc)]);
	list_add_tail(&bfqq->bfqq_list, &bfqd->sync_queues);
	return bfqq;
}

/* Async queues are shared per (class, level) and live as long as bfqd. */
static struct bfq_queue *bfq_get_async_queue(struct bfq_data *bfqd,
					     unsigned short ioprio,
					     uint64_t now)
{
	unsigned short class, level;
	struct bfq_queue **slot;

	bfq_ioprio_of(ioprio, &class, &level);
	slot = &bfqd->async_bfqq[class - 1][level];
	if (!*slot) {
		*slot = bfq_alloc_queue(bfqd);
		if (!*slot)
			return NULL;
		bfq_init_bfqq(bfqd, *slot, ioprio, false);
		(*slot)->pid = -1;
	}
	return *slot;
}

/*
 * The queue of @rq: the issuer's sync queue, or the shared async one.
 * Without memory, the async queue of the default priority (made at init)
 * takes it, so no request is ever refused.
 */
static struct bfq_queue *bfq_get_queue(struct bfq_data *bfqd,
				       struct request *rq, uint64_t now)
{
	struct io_context *ioc = rq->ioc;
	unsigned short ioprio = rq->ioprio ? rq->ioprio :
				(ioc ? ioc->ioprio : IOPRIO_DEFAULT);
	struct bfq_queue *bfqq = NULL;

	if (ioc && op_is_sync(rq->cmd_flags))
		bfqq = bfq_get_sync_queue(bfqd, ioc, ioprio, now);
	else
		bfqq = bfq_get_async_queue(bfqd, ioprio, now);
	if (!bfqq)
		bfqq = bfqd->async_bfqq[IOPRIO_CLASS_BE - 1][4];
	if (bfqq->sync)
		bfq_set_ioc_weight(bfqq, ioc);
	return bfqq;
}

/* ---- weight raising (low_latency) ---- */

static void bfq_end_wr(struct bfq_queue *bfqq)
{
	bfqq->wr_coeff = 1;
	bfqq->wr_cur_max_time = 0;
	bfqq->wr_interactive_end = 0;
}

/*
 * Raising ends when its time is up; a soft real-time raising that
 * interrupted an interactive one hands back to it for what is left of
 * it (the kernel's switch_back_to_interactive_wr()). True if it ended.
 */
static bool bfq_wr_check_end(struct bfq_queue *bfqq, uint64_t now)
{
	if (bfqq->wr_coeff == 1 ||
	    now - bfqq->wr_start <= bfqq->wr_cur_max_time)
		return false;
	if (bfqq->wr_coeff != BFQ_WR_COEFF && now < bfqq->wr_interactive_end) {
		bfqq->wr_coeff = BFQ_WR_COEFF;
		bfqq->wr_start = now;
		bfqq->wr_cur_max_time = bfqq->wr_interactive_end - now;
		bfqq->wr_interactive_end = 0;
		return false;
	}
	bfq_end_wr(bfqq);
	return true;
}

static void bfq_start_wr(struct bfq_data *bfqd, struct bfq_queue *bfqq,
			 unsigned int coeff, uint64_t max_ms, uint64_t now)
{
	/* a raised queue starts with a budget near its backlog: it is
	 * served sooner, and it rarely needs more */
	if (bfqq->wr_coeff == 1)
		bfqq->max_budget = min(bfqq->max_budget,
				       2 * bfq_min_budget(bfqd));
	if (coeff == BFQ_WR_COEFF)
		bfqq->service_from_wr = 0;
	bfqq->wr_coeff = coeff;
	bfqq->wr_start = now;
	bfqq->wr_cur_max_time = max_ms * NSEC_PER_MSEC;
}

/*
 * When a queue becomes busy: interactive if new or back after a long
 * idle period; soft real-time if it comes back no earlier than its
 * previous batch, served at a low rate, allows (the kernel's
 * bfq_bfqq_softrt_next_start()), has nothing in flight and is not
 * wholly seeky (a player reads a stream). Soft real-time queues are
 * raised far above interactive ones (the kernel's
 * BFQ_SOFTRT_WEIGHT_FACTOR): missing a period shows at once, and they
 * ask for little.
 */
static void bfq_update_wr_on_activation(struct bfq_data *bfqd,
					struct bfq_queue *bfqq, uint64_t now)
{
	bool fresh = !bfqq->last_idle_end;
	bool interactive, soft_rt;

	/*
	 * An issuer given another weight (explicitly or by its priority)
	 * asked for that share: raising it would overrule the request.
	 */
	if (!bfqd->low_latency || !bfq_bfqq_sync(bfqq) ||
	    bfqq->ioprio_class == IOPRIO_CLASS_IDLE ||
	    bfqq->entity.orig_weight != BFQ_DEFAULT_WEIGHT) {
		bfq_end_wr(bfqq);
		return;
	}
	interactive = !bfqq->dispatched && (fresh ||
		      now - bfqq->last_idle_end >
		      BFQ_WR_MIN_IDLE_MS * NSEC_PER_MSEC);
	soft_rt = bfqq->soft_rt_next_start && !bfqq->softrt_update &&
		  now >= bfqq->soft_rt_next_start &&
		  !bfqq->dispatched && !BFQQ_TOTALLY_SEEKY(bfqq);
	if (interactive) {
		bfq_start_wr(bfqd, bfqq, BFQ_WR_COEFF, BFQ_WR_INTERACTIVE_MS,
			     now);
		bfqd->stats.wr_interactive++;
	} else if (soft_rt) {
		/* an interactive raising under way resumes after this one */
		if (bfqq->wr_coeff == BFQ_WR_COEFF)
			bfqq->wr_interactive_end = bfqq->wr_start +
						   bfqq->wr_cur_max_time;
		bfq_start_wr(bfqd, bfqq,
			     BFQ_WR_COEFF * BFQ_SOFTRT_WEIGHT_FACTOR,
			     BFQ_WR_SOFTRT_MS, now);
		bfqd->stats.wr_soft_rt++;
	} else {
		bfq_wr_check_end(bfqq, now);
	}
}

/*
 * At each dispatch of the queue in service: raising ends when its time
 * is up, and an interactive raising also once the queue has been given
 * BFQ_WR_MAX_SERVICE (it is a long reader that happened to start or
 * come back: the kernel's bfq_update_wr_data()). The new weight counts
 * from its next turn.
 */
static void bfq_update_wr_on_dispatch(struct bfq_data *bfqd,
				      struct bfq_queue *bfqq,
				      unsigned long charge, uint64_t now)
{
	if (bfqq->wr_coeff == 1)
		return;
	bfqq->service_from_wr += charge;
	if (!bfqd->low_latency || (bfqq->wr_coeff == BFQ_WR_COEFF &&
				   bfqq->service_from_wr > BFQ_WR_MAX_SERVICE))
		bfq_end_wr(bfqq);
	else
		bfq_wr_check_end(bfqq, now);
	bfq_update_entity_weight(bfqq);
}

/* At expiration: raising ends when its time is up. */
static void bfq_update_wr_on_expire(struct bfq_data *bfqd,
				    struct bfq_queue *bfqq, uint64_t now)
{
	if (!bfqd->low_latency)
		bfq_end_wr(bfqq);
	else
		bfq_wr_check_end(bfqq, now);
}

/*
 * The earliest time @bfqq may come back and still count as soft
 * real-time: when the service of its last busy period, issued from its
 * start at BFQ_SOFTRT_MAX_RATE, would have ended, and not within
 * 3 x slice_idle: a queue back by then is a continuous reader that was
 * a little late (it resumes its budget, see bfq_budget_for_activation()),
 * not a periodic one (the kernel waits slice_idle and 4 jiffies).
 * Never earlier than the last such bound: a reader that took much a
 * moment ago is not made soft real-time by one short busy period (the
 * kernel's bfq_bfqq_softrt_next_start()). Known only once nothing of
 * the queue is in flight: till then, never.
 */
static void bfq_softrt_next_start(struct bfq_data *bfqd,
				  struct bfq_queue *bfqq, uint64_t now)
{
	uint64_t busy_ns = (bfqq->service_from_backlogged * NSEC_PER_SEC) /
			   BFQ_SOFTRT_MAX_RATE;
	uint64_t prev = bfqq->softrt_update ? 0 : bfqq->soft_rt_next_start;

	bfqq->softrt_update = false;
	if (!bfqd->low_latency) {
		bfqq->soft_rt_next_start = 0;
		return;
	}
	if (bfqq->dispatched) {
		bfqq->soft_rt_next_start = UINT64_MAX;
		bfqq->softrt_update = true;
		return;
	}
	bfqq->soft_rt_next_start = max(max(prev, bfqq->busy_start + busy_ns),
				       now + 3 * bfqd->bfq_slice_idle);
}

/* ---- becoming busy and idle ---- */

static void bfq_bfqq_expire(struct bfq_data *bfqd, struct bfq_queue *bfqq,
			    enum bfqq_expiration reason, uint64_t now);
static bool bfq_better_to_idle(struct bfq_data *bfqd, struct bfq_queue *bfqq);

/* Lower class numbers are the higher classes (RT 1, BE 2, IDLE 3). */
static bool bfq_higher_class_or_weight(const struct bfq_queue *bfqq,
				       const struct bfq_queue *in_serv)
{
	if (bfqq->ioprio_class != in_serv->ioprio_class)
		return bfqq->ioprio_class < in_serv->ioprio_class;
	return bfqq->entity.weight > in_serv->entity.weight;
}

/*
 * @bfqq just became busy: does it take the device from the queue in
 * service? Yes if it is in a higher class or has a higher weight (a
 * raised interactive queue): waiting for the end of the other's budget
 * would cost it more than its share allows. Yes too if the queue in
 * service is one not worth idling for: keeping the device for it only
 * costs throughput (the kernel's bfq_bfqq_handle_idle_busy_switch()).
 */
static bool bfq_may_preempt(struct bfq_data *bfqd, struct bfq_queue *bfqq,
			    bool resumed)
{
	struct bfq_queue *in_serv = bfqd->in_service_queue;

	if (!in_serv || in_serv == bfqq)
		return false;
	return (resumed && bfqq->wr_coeff > in_serv->wr_coeff) ||
	       bfq_higher_class_or_weight(bfqq, in_serv) ||
	       !bfq_better_to_idle(bfqd, in_serv);
}

/*
 * The budget of a queue becoming busy. A queue whose turn ended because
 * it ran dry (not by budget or timeout), and whose next request comes
 * within 3 x slice_idle of its last completion, was only a little late:
 * it goes on with what was left of that budget and keeps its timestamps,
 * as if it had never left (true: it may take the device back). Else
 * leaving would cost it its place, and a late issuer on a busy host
 * would get less than its share (the kernel's
 * bfq_bfqq_update_budg_for_activation(), the "service hole").
 */
static bool bfq_budget_for_activation(struct bfq_data *bfqd,
				      struct bfq_queue *bfqq, uint64_t now)
{
	struct bfq_entity *entity = &bfqq->entity;
	unsigned long next = bfq_serv_to_charge(bfqq->next_rq, bfqq);
	bool resumed = bfqq->non_blocking_wait_rq &&
		       now <= bfqq->last_end_request +
			      3 * bfqd->bfq_slice_idle &&
		       entity->budget >= entity->service + next;

	bfqq->non_blocking_wait_rq = false;
	if (resumed)
		entity->budget = max(min(entity->budget - entity->service,
					 bfqq->max_budget), next);
	else
		entity->budget = max(bfqq->max_budget, next);
	return resumed;
}

static void bfq_add_bfqq_busy(struct bfq_data *bfqd, struct bfq_queue *bfqq,
			      uint64_t now)
{
	bool resumed;

	BUG_ON(bfqq->busy);
	bfq_update_wr_on_activation(bfqd, bfqq, now);
	bfq_update_entity_weight(bfqq);
	bfqq->busy = true;
	bfqq->service_from_backlogged = 0;
	bfqq->busy_start = now;
	bfqd->busy_queues[bfqq->ioprio_class - 1]++;
	resumed = bfq_budget_for_activation(bfqd, bfqq, now);
	bfq_activate_entity(&bfqd->sched_data, &bfqq->entity,
			    bfqq->ioprio_class, resumed);
	if (bfq_may_preempt(bfqd, bfqq, resumed))
		bfq_bfqq_expire(bfqd, bfqd->in_service_queue,
				BFQQE_PREEMPTED, now);
}

static void bfq_del_bfqq_busy(struct bfq_data *bfqd, struct bfq_queue *bfqq,
			      uint64_t now)
{
	BUG_ON(!bfqq->busy);
	bfqq->busy = false;
	bfqd->busy_queues[bfqq->ioprio_class - 1]--;
	bfq_softrt_next_start(bfqd, bfqq, now);
	bfqq->last_idle_end = now;
	bfq_deactivate_entity(&bfqd->sched_data, &bfqq->entity,
			      bfqq->ioprio_class);
}

static unsigned int bfq_tot_busy_queues(const struct bfq_data *bfqd)
{
	return bfqd->busy_queues[0] + bfqd->busy_queues[1] +
	       bfqd->busy_queues[2];
}

/* ---- adding and removing requests ---- */

/* Seekiness: one bit per request, set when it was far from the last. */
static void bfq_update_io_seektime(struct bfq_queue *bfqq, struct request *rq)
{
	bool seeky = bfqq->last_request_pos &&
		     bfq_dist(bfqq->last_request_pos, blk_rq_pos(rq)) >
		     BFQQ_SEEK_THR;

	bfqq->seek_history = (bfqq->seek_history << 1) | seeky;
	bfqq->last_request_pos = blk_rq_pos(rq) + blk_rq_sectors(rq);
}

/* Think time: from the queue's last completion to its next request. */
static void bfq_update_io_thinktime(struct bfq_data *bfqd,
				    struct bfq_queue *bfqq, uint64_t now)
{
	uint64_t elapsed;

	if (!bfqq->last_end_request || bfqq->dispatched || bfqq->queued)
		return;
	elapsed = now - bfqq->last_end_request;
	elapsed = min(elapsed, 2 * bfqd->bfq_slice_idle);
	bfqq->ttime_samples = (7 * bfqq->ttime_samples + 256) / 8;
	bfqq->ttime_total = (7 * bfqq->ttime_total + 256 * elapsed) / 8;
	bfqq->ttime_mean = (bfqq->ttime_total + 128) / bfqq->ttime_samples;
	bfqq->short_ttime = bfqq->ttime_samples < 80 ||
			    bfqq->ttime_mean <= bfqd->bfq_slice_idle;
}

static void bfq_add_request(struct bfq_data *bfqd, struct request *rq,
			    uint64_t now)
{
	struct bfq_queue *bfqq = RQ_BFQQ(rq);
	unsigned int dir = op_is_sync(rq->cmd_flags);

	if (bfq_bfqq_sync(bfqq))
		bfq_update_io_thinktime(bfqd, bfqq, now);
	bfq_update_io_seektime(bfqq, rq);
	bfq_add_rq_rb(bfqq, rq);
	rq->fifo_time = now + bfqd->bfq_fifo_expire[dir];
	list_add_tail(&rq->queuelist, &bfqq->fifo);
	bfqq->queued++;
	atomic_fetch_add_explicit(&bfqd->queued, 1, memory_order_relaxed);
	bfqq->next_rq = bfq_find_next_rq(bfqd, bfqq);
	if (!bfqq->busy)
		bfq_add_bfqq_busy(bfqd, bfqq, now);
	if (bfqq == bfqd->in_service_queue && bfqq->wait_request) {
		/* what we idled for: serve it (the timer will find nothing) */
		bfqq->wait_request = false;
		bfqd->stats.idle_hits++;
	}
}

/* Take @rq out of its queue's tree, FIFO and the merge hash. */
static void bfq_remove_request(struct bfq_data *bfqd, struct request *rq)
{
	struct bfq_queue *bfqq = RQ_BFQQ(rq);
	struct request_queue *q = bfqd->queue;

	list_del_init(&rq->queuelist);
	elv_rb_del(&bfqq->sort_list, rq);
	bfqq->queued--;
	atomic_fetch_sub_explicit(&bfqd->queued, 1, memory_order_relaxed);
	elv_rqhash_del(q, rq);
	if (q->last_merge == rq)
		q->last_merge = NULL;
	if (bfqq->next_rq == rq)
		bfqq->next_rq = bfqq->queued ? bfq_find_next_rq(bfqd, bfqq) :
					       NULL;
}

static void bfq_put_queue(struct bfq_queue *bfqq)
{
	BUG_ON(!bfqq->ref);
	bfqq->ref--;
}

/* ---- expiration ---- */

/*
 * The next budget from how the last one went (the kernel's
 * __bfq_bfqq_recalc_budget()): grow it for queues that used it or were
 * slow, shrink it for ones that kept the device idle. Async queues
 * always get the maximum: their latency does not matter. Weight-raised
 * queues get a small fixed one (twice the minimum): a raised queue is
 * there for latency, and its short turns let other raised queues in.
 */
static void bfq_recalc_budget(struct bfq_data *bfqd, struct bfq_queue *bfqq,
			      enum bfqq_expiration reason)
{
	unsigned long max_b = bfq_max_budget(bfqd), min_b = bfq_min_budget(bfqd);
	unsigned long budget = bfqq->max_budget;

	if (!bfq_bfqq_sync(bfqq)) {
		bfqq->max_budget = max_b;
		return;
	}
	/* raised queues: short turns, so that they are served soon */
	if (bfqq->wr_coeff > 1) {
		bfqq->max_budget = 2 * min_b;
		return;
	}
	switch (reason) {
	case BFQQE_TOO_IDLE:
		if (bfqq->dispatched)
			budget = min(budget * 2, max_b);
		else if (budget > 5 * min_b)
			budget -= 4 * min_b;
		else
			budget = min_b;
		break;
	case BFQQE_BUDGET_TIMEOUT:
		budget = min(budget * 2, max_b);
		break;
	case BFQQE_BUDGET_EXHAUSTED:
		budget = min(budget * 4, max_b);
		break;
	case BFQQE_NO_MORE_REQUESTS:
		budget = max(bfqq->entity.service, min_b);
		break;
	default:
		return;
	}
	bfqq->max_budget = min(max(budget, min_b), max_b);
}

/*
 * A queue that ran out of time with a third of its budget or more left
 * is charged for the time it held the device, as if it had received
 * the service max_budget in timeout_sync is worth, so that slow seeky
 * queues get their share of time, not of sectors (the kernel's
 * bfq_bfqq_charge_time()). The budget grows to match, so that the
 * charge is consistent. Raised queues and strict_guarantees are
 * charged their service only.
 */
static unsigned long bfq_charge_for_time(struct bfq_data *bfqd,
					 struct bfq_queue *bfqq, uint64_t now)
{
	struct bfq_entity *entity = &bfqq->entity;
	uint64_t used = min(now - bfqq->budget_start, bfqd->bfq_timeout);
	unsigned long for_time;

	if (bfqd->strict_guarantees || bfqq->wr_coeff > 1 ||
	    entity->budget - min(entity->service, entity->budget) <
	    entity->budget / 3)
		return entity->service;
	/* in µs: no overflow with any max_budget and timeout_sync */
	for_time = (unsigned long)(bfq_max_budget(bfqd) *
				   (used / NSEC_PER_USEC) /
				   max(1UL, bfqd->bfq_timeout / NSEC_PER_USEC));
	for_time = max(for_time, entity->service);
	entity->budget = max(entity->budget, for_time);
	return for_time;
}

/*
 * End @bfqq's turn: charge it, pick its next budget, requeue it on the
 * service tree (or take it off, if empty). bfqd->lock held.
 */
static void bfq_bfqq_expire(struct bfq_data *bfqd, struct bfq_queue *bfqq,
			    enum bfqq_expiration reason, uint64_t now)
{
	unsigned long charge = bfqq->entity.service;

	BUG_ON(bfqq != bfqd->in_service_queue);
	if (reason == BFQQE_BUDGET_TIMEOUT)
		charge = bfq_charge_for_time(bfqd, bfqq, now);
	bfqd->stats.expired[reason]++;
	bfqq->expired[reason]++;
	bfq_recalc_budget(bfqd, bfqq, reason);
	bfq_update_wr_on_expire(bfqd, bfqq, now);
	bfqq->wait_request = false;
	bfqd->in_service_queue = NULL;
	bfq_entity_served(&bfqd->sched_data, &bfqq->entity, charge,
			  bfqq->ioprio_class);
	if (!bfqq->queued) {
		/* ran dry: it may come back in time (see above) */
		bfqq->non_blocking_wait_rq =
			reason != BFQQE_BUDGET_TIMEOUT &&
			reason != BFQQE_BUDGET_EXHAUSTED;
		bfq_update_entity_weight(bfqq);
		bfq_del_bfqq_busy(bfqd, bfqq, now);
		return;
	}
	bfq_update_entity_weight(bfqq);
	bfqq->entity.budget = max(bfqq->max_budget,
				  bfq_serv_to_charge(bfqq->next_rq, bfqq));
	bfq_requeue_entity(&bfqd->sched_data, &bfqq->entity,
			   bfqq->ioprio_class);
}

/* ---- choosing the queue to serve ---- */

/*
 * Keep the device idle for @bfqq's next request? Only sync queues of
 * issuers that think briefly (strict_guarantees always idles), and only
 * where idling pays (the kernel's idling_boosts_thr_without_issues() and
 * idling_needed_for_service_guarantees()):
 *  - a disk without a command queue: anything it is sent next costs a
 *    seek, so waiting for the queue's next nearby request pays;
 *  - a sequential queue on a disk, or on flash without a deep queue;
 *  - otherwise only where weights or classes differ (service
 *    guarantees), never for a seeky queue on flash. A seeky queue on a
 *    disk with NCQ gains nothing from idling: the drive orders the
 *    commands of every queue by position itself, and an idle drive has
 *    nothing to order.
 * hw_tag is -1 until sampled, which counts as a deep queue (as the
 * kernel's !bfqd->hw_tag).
 */
static bool bfq_better_to_idle(struct bfq_data *bfqd, struct bfq_queue *bfqq)
{
	bool seeky = BFQQ_SEEKY(bfqq);

	if (!bfqd->bfq_slice_idle || !bfq_bfqq_sync(bfqq))
		return false;
	if (bfqd->strict_guarantees)
		return true;
	if (!bfqq->short_ttime)
		return false;
	if (!bfqd->nonrot && !bfqd->hw_tag)
		return true;
	if ((!bfqd->nonrot || !bfqd->hw_tag) && !seeky)
		return true;
	return bfq_asymmetric_scenario(bfqd) && (!bfqd->nonrot || !seeky);
}

/* Caller holds bfqd->lock. */
static void bfq_schedule_idle_timer(struct bfq_data *bfqd, uint64_t now)
{
	uint64_t ms = (bfqd->idle_deadline - now + NSEC_PER_MSEC - 1) /
		      NSEC_PER_MSEC;

	bfqd->idle_timer_due = now + ms * NSEC_PER_MSEC;
	kblockd_mod_delayed_work(&bfqd->idle_slice_timer, (unsigned long)ms);
}

/*
 * Idle for @bfqq's next request until now + slice_idle. The timer is
 * armed lazily: one already due no later than the new deadline is left
 * alone, and when it fires early it sets itself for the rest. A
 * sequential reader waits after every request, and moving the timer
 * each time would wake a kblockd worker per request just to go back to
 * sleep (the kernel's hrtimers are cheap to move; this pool is not).
 */
static void bfq_arm_slice_timer(struct bfq_data *bfqd, struct bfq_queue *bfqq,
				uint64_t now)
{
	uint64_t idle = bfqd->bfq_slice_idle;

	/* seeky queues wait less: they seldom profit */
	if (BFQQ_SEEKY(bfqq) && bfqq->wr_coeff == 1 && !bfqd->nonrot)
		idle = min(idle, 2 * NSEC_PER_MSEC);
	bfqq->wait_request = true;
	bfqd->stats.idle_waits++;
	bfqd->idle_deadline = now + idle;
	if (!bfqd->idle_timer_due ||
	    bfqd->idle_timer_due > bfqd->idle_deadline + NSEC_PER_MSEC)
		bfq_schedule_idle_timer(bfqd, now);
}

/* The oldest request of the queue if it is past its FIFO deadline,
 * looked at once per budget (the kernel's bfq_check_fifo()). */
static struct request *bfq_check_fifo(struct bfq_queue *bfqq, uint64_t now)
{
	struct request *rq;

	if (bfqq->fifo_checked || list_empty(&bfqq->fifo))
		return NULL;
	rq = list_first_entry(&bfqq->fifo, struct request, queuelist);
	if (rq->fifo_time > now)
		return NULL;
	bfqq->fifo_checked = true;
	bfqq->bfqd->stats.fifo_expired++;
	bfq_cls(bfqq->bfqd, bfqq)->fifo_expired++;
	return rq;
}

static struct bfq_queue *bfq_set_in_service_queue(struct bfq_data *bfqd,
						  uint64_t now)
{
	struct bfq_entity *entity;
	struct bfq_queue *bfqq;

	entity = bfq_get_next_entity(&bfqd->sched_data, now);
	if (!entity)
		return NULL;
	bfqq = container_of(entity, struct bfq_queue, entity);
	bfqd->in_service_queue = bfqq;
	bfqq->budget_start = now;
	bfqq->budget_timeout = now + bfqd->bfq_timeout;
	bfqq->fifo_checked = false;
	bfqq->wait_request = false;
	bfqd->stats.activations++;
	return bfqq;
}

/*
 * The queue to take the next request from, expiring the one in service
 * when its turn is over; NULL when there is none or while idling for
 * the in-service queue (the kernel's bfq_select_queue()).
 */
static struct bfq_queue *bfq_select_queue(struct bfq_data *bfqd,
					  uint64_t now)
{
	struct bfq_queue *bfqq = bfqd->in_service_queue;
	enum bfqq_expiration reason;

	if (!bfqq)
		return bfq_set_in_service_queue(bfqd, now);
	if (now >= bfqq->budget_timeout && !bfqq->wait_request) {
		reason = BFQQE_BUDGET_TIMEOUT;
		goto expire;
	}
	if (bfqq->next_rq) {
		if (bfq_serv_to_charge(bfqq->next_rq, bfqq) >
		    bfqq->entity.budget - bfqq->entity.service) {
			reason = BFQQE_BUDGET_EXHAUSTED;
			goto expire;
		}
		return bfqq;
	}
	/* empty: wait for its next request, or give the device away */
	if (bfqq->wait_request)
		return NULL;
	if (bfq_better_to_idle(bfqd, bfqq)) {
		if (!bfqq->dispatched)
			bfq_arm_slice_timer(bfqd, bfqq, now);
		return NULL;
	}
	reason = BFQQE_NO_MORE_REQUESTS;
expire:
	bfq_bfqq_expire(bfqd, bfqq, reason, now);
	return bfq_set_in_service_queue(bfqd, now);
}

/* Samples of how many requests the device takes at once: hw_tag. */
static void bfq_update_hw_tag(struct bfq_data *bfqd)
{
	unsigned int in_driver = bfqd->rq_in_driver;

	bfqd->max_rq_in_driver = max(bfqd->max_rq_in_driver, in_driver);
	if (bfqd->hw_tag == 1)
		return;
	if (in_driver + atomic_load_explicit(&bfqd->queued,
					     memory_order_relaxed) <
	    BFQ_HW_QUEUE_THRESHOLD)
		return;
	if (++bfqd->hw_tag_samples < BFQ_HW_QUEUE_SAMPLES)
		return;
	bfqd->hw_tag = bfqd->max_rq_in_driver > BFQ_HW_QUEUE_THRESHOLD;
	bfqd->max_rq_in_driver = 0;
	bfqd->hw_tag_samples = 0;
}

static void bfq_dispatch_rq_from_bfqq(struct bfq_data *bfqd,
				      struct bfq_queue *bfqq,
				      struct request *rq, uint64_t now)
{
	unsigned long charge = bfq_serv_to_charge(rq, bfqq);

	bfq_remove_request(bfqd, rq);
	bfq_update_peak_rate(bfqd, rq, now);
	bfq_update_wr_on_dispatch(bfqd, bfqq, charge, now);
	bfqq->entity.service += charge;
	bfqq->service_from_backlogged += blk_rq_sectors(rq);
	bfqd->last_position = blk_rq_pos(rq) + blk_rq_sectors(rq);
}

/* The request to send now: at_head ones first, then by B-WF2Q+. */
static struct request *__bfq_dispatch_request(struct bfq_data *bfqd,
					      uint64_t now)
{
	struct bfq_queue *bfqq;
	struct request *rq;

	if (!list_empty(&bfqd->dispatch)) {
		rq = list_first_entry(&bfqd->dispatch, struct request,
				      queuelist);
		list_del_init(&rq->queuelist);
		atomic_fetch_sub_explicit(&bfqd->queued, 1,
					  memory_order_relaxed);
		return rq;
	}
	bfqq = bfq_select_queue(bfqd, now);
	if (!bfqq)
		return NULL;
	rq = bfq_check_fifo(bfqq, now);
	if (!rq || bfq_serv_to_charge(rq, bfqq) >
		   bfqq->entity.budget - bfqq->entity.service)
		rq = bfqq->next_rq;
	bfq_dispatch_rq_from_bfqq(bfqd, bfqq, rq, now);
	return rq;
}

static void bfq_account_dispatch(struct bfq_data *bfqd, struct request *rq,
				 uint64_t now)
{
	struct bfq_queue *bfqq = RQ_BFQQ(rq);
	uint64_t wait = now > rq->elv.key ? now - rq->elv.key : 0;
	struct bfq_class_stats *cls = bfq_cls(bfqd, bfqq);

	bfqd->stats.dispatched++;
	if (wait > bfqd->stats.max_wait_ns)
		bfqd->stats.max_wait_ns = wait;
	cls->dispatched++;
	if (wait > cls->max_wait_ns)
		cls->max_wait_ns = wait;
	if (!bfqq)
		return;
	bfqq->dispatched++;
	bfqq->nr_dispatched++;
	bfqd->rq_in_driver++;
	rq->elv.priv[1] = RQ_IN_DRIVER;
	bfq_update_hw_tag(bfqd);
}

static struct request *bfq_dispatch_request(struct blk_mq_hw_ctx *hctx)
{
	struct bfq_data *bfqd = hctx->queue->elevator->elevator_data;
	/* a plug's cached clock, as the kernel's bfq (a read is ~50 ns here) */
	uint64_t now = blk_time_get_ns();
	struct request *rq;

	pthread_spin_lock(&bfqd->lock);
	rq = __bfq_dispatch_request(bfqd, now);
	if (rq)
		bfq_account_dispatch(bfqd, rq, now);
	pthread_spin_unlock(&bfqd->lock);
	return rq;
}

static bool bfq_has_work(struct blk_mq_hw_ctx *hctx)
{
	struct bfq_data *bfqd = hctx->queue->elevator->elevator_data;

	return atomic_load_explicit(&bfqd->queued, memory_order_relaxed);
}

/* ---- idling ---- */

/*
 * The in-service queue stayed empty for slice_idle: give the device to
 * the next queue (the kernel's bfq_idle_slice_timer()). Runs on kblockd;
 * early (armed for an earlier wait, see bfq_arm_slice_timer()) it sets
 * itself again for the rest of the current one.
 */
static void bfq_idle_slice_timer(struct work_struct *work)
{
	struct bfq_data *bfqd = container_of(work, struct bfq_data,
					     idle_slice_timer.work);
	uint64_t now = ktime_get_ns();
	struct bfq_queue *bfqq;
	bool run = false;

	pthread_spin_lock(&bfqd->lock);
	bfqd->idle_timer_due = 0;
	bfqq = bfqd->in_service_queue;
	if (bfqq && bfqq->wait_request && !bfqq->queued &&
	    now < bfqd->idle_deadline) {
		bfq_schedule_idle_timer(bfqd, now);
	} else if (bfqq && bfqq->wait_request && !bfqq->queued) {
		bfqd->stats.idle_timeouts++;
		bfq_bfqq_expire(bfqd, bfqq, now >= bfqq->budget_timeout ?
				BFQQE_BUDGET_TIMEOUT : BFQQE_TOO_IDLE, now);
		run = true;
	}
	pthread_spin_unlock(&bfqd->lock);
	if (run)
		blk_mq_run_hw_queues(bfqd->queue, true);
}

/*
 * A request of @bfqq completed. When the in-service queue has drained,
 * either idle for its next request or end its turn; true if the hw
 * queues must run again (another queue may go now).
 */
static bool bfq_completed_request(struct bfq_data *bfqd,
				  struct bfq_queue *bfqq, uint64_t now)
{
	BUG_ON(!bfqq->dispatched || !bfqd->rq_in_driver);
	bfqq->dispatched--;
	bfqd->rq_in_driver--;
	bfqq->last_end_request = now;
	bfqd->rate.last_completion = now;
	if (bfqq->softrt_update && !bfqq->dispatched && !bfqq->busy)
		bfq_softrt_next_start(bfqd, bfqq, now);
	if (bfqq != bfqd->in_service_queue || bfqq->queued ||
	    bfqq->dispatched || bfqq->wait_request)
		return false;
	if (bfq_better_to_idle(bfqd, bfqq) && now < bfqq->budget_timeout) {
		bfq_arm_slice_timer(bfqd, bfqq, now);
		return false;
	}
	bfq_bfqq_expire(bfqd, bfqq, now >= bfqq->budget_timeout ?
			BFQQE_BUDGET_TIMEOUT : BFQQE_NO_MORE_REQUESTS, now);
	return bfq_tot_busy_queues(bfqd) != 0;
}

/* ---- insertion ---- */

static bool bfq_rq_mergeable(const struct request *rq)
{
	return req_op(rq) != REQ_OP_FLUSH &&
	       req_op(rq) != REQ_OP_WRITE_ZEROES &&
	       !(rq->cmd_flags & REQ_NOMERGE_FLAGS) &&
	       !(rq->rq_flags & (RQF_FLUSH_SEQ | RQF_SPECIAL_PAYLOAD));
}

static void bfq_insert_request(struct bfq_data *bfqd, struct request *rq,
			       bool at_head, uint64_t now,
			       struct list_head *free)
{
	struct request_queue *q = bfqd->queue;
	struct bfq_queue *bfqq = RQ_BFQQ(rq);

	/* a requeued request keeps its queue (and the reference on it) */
	if (!bfqq) {
		bfqq = bfq_get_queue(bfqd, rq, now);
		bfqq->ref++;
		rq->elv.priv[0] = bfqq;
		bfqd->stats.inserted++;
	}
	rq->elv.key = now;
	if (blk_mq_sched_try_insert_merge(q, rq, free))
		return;
	if (at_head) {
		list_add(&rq->queuelist, &bfqd->dispatch);
		atomic_fetch_add_explicit(&bfqd->queued, 1,
					  memory_order_relaxed);
		return;
	}
	bfq_add_request(bfqd, rq, now);
	if (bfq_rq_mergeable(rq)) {
		elv_rqhash_add(q, rq);
		if (!q->last_merge)
			q->last_merge = rq;
	}
}

static void bfq_insert_requests(struct blk_mq_hw_ctx *hctx,
				struct list_head *list, bool at_head)
{
	struct bfq_data *bfqd = hctx->queue->elevator->elevator_data;
	uint64_t now = blk_time_get_ns();
	struct request *rq, *next;
	LIST_HEAD(free);

	pthread_spin_lock(&bfqd->lock);
	while (!list_empty(list)) {
		rq = list_first_entry(list, struct request, queuelist);
		list_del_init(&rq->queuelist);
		bfq_insert_request(bfqd, rq, at_head, now, &free);
	}
	pthread_spin_unlock(&bfqd->lock);
	/* the caller runs the queue: a request idling waited for goes then */
	list_for_each_entry_safe(rq, next, &free, queuelist) {
		list_del_init(&rq->queuelist);
		blk_mq_free_request(rq);
	}
}

/* ---- merging (bfqd->lock held by the caller, see the top) ---- */

/* The queued request of the bio's queue starting where the bio ends. */
static int bfq_request_merge(struct request_queue *q, struct request **req,
			     struct bio *bio)
{
	struct bfq_data *bfqd = q->elevator->elevator_data;
	struct io_context *ioc = bio->bi_ioc;
	sector_t end = bio_end_sector(bio);
	struct bfq_queue *bfqq;
	struct rb_node *n;

	if (!ioc || !op_is_sync(bio->bi_opf))
		return ELEVATOR_NO_MERGE;
	bfqq = bfq_find_sync_queue(bfqd, ioc);
	for (n = bfqq ? bfqq->sort_list.rb_node : NULL; n; ) {
		struct request *rq = rb_to_rq(n);

		if (end < blk_rq_pos(rq)) {
			n = n->rb_left;
		} else if (end > blk_rq_pos(rq)) {
			n = n->rb_right;
		} else {
			if (!blk_rq_merge_ok(rq, bio) ||
			    !blk_mq_sched_allow_merge(q, rq, bio))
				return ELEVATOR_NO_MERGE;
			*req = rq;
			return ELEVATOR_FRONT_MERGE;
		}
	}
	return ELEVATOR_NO_MERGE;
}

/* A bio joined @req: a front merge moved its start sector. */
static void bfq_request_merged(struct request_queue *q, struct request *req,
			       enum elv_merge type)
{
	struct bfq_data *bfqd = q->elevator->elevator_data;
	struct bfq_queue *bfqq = RQ_BFQQ(req);

	bfqd->stats.bio_merged++;
	bfq_cls(bfqd, bfqq)->merged++;
	if (type != ELEVATOR_FRONT_MERGE || RB_EMPTY_NODE(rq_rb(req)))
		return;
	rb_erase(rq_rb(req), &bfqq->sort_list);
	bfq_add_rq_rb(bfqq, req);
	bfqq->next_rq = bfq_find_next_rq(bfqd, bfqq);
}

/*
 * @next was merged into @rq: @rq takes the earlier FIFO place, @next
 * leaves its queue (its reference is dropped when it is freed).
 */
static void bfq_requests_merged(struct request_queue *q, struct request *rq,
				struct request *next)
{
	struct bfq_data *bfqd = q->elevator->elevator_data;

	if (!list_empty(&rq->queuelist) && !list_empty(&next->queuelist) &&
	    RQ_BFQQ(rq) == RQ_BFQQ(next) && next->fifo_time < rq->fifo_time) {
		list_move(&rq->queuelist, &next->queuelist);
		rq->fifo_time = next->fifo_time;
	}
	bfqd->stats.merged++;
	bfq_cls(bfqd, RQ_BFQQ(next))->merged++;
	if (!RB_EMPTY_NODE(rq_rb(next)))
		bfq_remove_request(bfqd, next);
}

/* Merge only within one queue: a bio joins a request of its issuer. */
static bool bfq_allow_bio_merge(struct request_queue *q, struct request *rq,
				struct bio *bio)
{
	struct bfq_queue *bfqq = RQ_BFQQ(rq);

	if (!bfqq || op_is_sync(bio->bi_opf) != op_is_sync(rq->cmd_flags))
		return false;
	return !bfqq->sync || bfqq->ioc == bio->bi_ioc;
}

static bool bfq_bio_merge(struct request_queue *q, struct bio *bio,
			  unsigned int nr_segs)
{
	struct bfq_data *bfqd = q->elevator->elevator_data;
	struct request *free = NULL;
	bool ret;

	pthread_spin_lock(&bfqd->lock);
	ret = blk_mq_sched_try_merge(q, bio, nr_segs, &free);
	pthread_spin_unlock(&bfqd->lock);
	if (free)
		blk_mq_free_request(free);
	return ret;
}

/* ---- request life ---- */

static void bfq_prepare_request(struct request *rq)
{
	RB_CLEAR_NODE(rq_rb(rq));
	rq->elv.priv[0] = NULL;
	rq->elv.priv[1] = NULL;
}

/* Leaving the driver without completing: it will be inserted again. */
static void bfq_requeue_request(struct request *rq)
{
	struct bfq_data *bfqd = rq->q->elevator->elevator_data;
	struct bfq_queue *bfqq = RQ_BFQQ(rq);

	if (!bfqq || !bfq_rq_in_driver(rq))
		return;
	pthread_spin_lock(&bfqd->lock);
	rq->elv.priv[1] = NULL;
	bfqq->dispatched--;
	bfqd->rq_in_driver--;
	pthread_spin_unlock(&bfqd->lock);
}

static void bfq_finish_request(struct request *rq)
{
	struct bfq_data *bfqd = rq->q->elevator->elevator_data;
	struct bfq_queue *bfqq = RQ_BFQQ(rq);
	uint64_t now;
	bool run = false;

	if (!bfqq)
		return;
	now = blk_time_get_ns();
	pthread_spin_lock(&bfqd->lock);
	if (bfq_rq_in_driver(rq)) {
		bfqd->stats.completed++;
		bfqq->completed_sectors += rq->stats_sectors;
		run = bfq_completed_request(bfqd, bfqq, now);
	}
	bfq_put_queue(bfqq);
	if (bfq_queue_dead(bfqq))
		bfq_free_queue(bfqd, bfqq);
	rq->elv.priv[0] = NULL;
	rq->elv.priv[1] = NULL;
	pthread_spin_unlock(&bfqd->lock);
	if (run)
		blk_mq_run_hw_queues(bfqd->queue, true);
}

/* ---- setup ---- */

static int bfq_init_sched(struct request_queue *q, struct elevator_queue *e)
{
	struct bfq_data *bfqd = calloc(1, sizeof(*bfqd));
	uint64_t now = ktime_get_ns();

	if (!bfqd)
		return -ENOMEM;
	pthread_spin_init(&bfqd->lock, PTHREAD_PROCESS_PRIVATE);
	bfqd->queue = q;
	INIT_LIST_HEAD(&bfqd->dispatch);
	INIT_LIST_HEAD(&bfqd->sync_queues);
	for (unsigned int i = 0; i < ARRAY_SIZE(bfqd->hash); i++)
		INIT_LIST_HEAD(&bfqd->hash[i]);
	bfq_init_sched_data(&bfqd->sched_data);
	INIT_DELAYED_WORK(&bfqd->idle_slice_timer, bfq_idle_slice_timer);
	bfqd->bfq_fifo_expire[0] = BFQ_FIFO_EXPIRE_ASYNC_MS * NSEC_PER_MSEC;
	bfqd->bfq_fifo_expire[1] = BFQ_FIFO_EXPIRE_SYNC_MS * NSEC_PER_MSEC;
	bfqd->bfq_back_max = BFQ_BACK_SEEK_MAX_KB;
	bfqd->bfq_back_penalty = BFQ_BACK_SEEK_PENALTY;
	bfqd->bfq_slice_idle = BFQ_SLICE_IDLE_US * NSEC_PER_USEC;
	bfqd->bfq_timeout = BFQ_TIMEOUT_MS * NSEC_PER_MSEC;
	bfqd->low_latency = true;
	bfqd->nonrot = blk_queue_nonrot(q);
	bfqd->hw_tag = -1;
	/* until measured: 2/3 of the reference device's rate, and the
	 * kernel's default max budget */
	bfqd->peak_rate = bfq_ref_rate[bfqd->nonrot] * 2 / 3;
	/* the fallback queue for requests when memory runs out */
	if (!bfq_get_async_queue(bfqd, IOPRIO_DEFAULT, now)) {
		pthread_spin_destroy(&bfqd->lock);
		free(bfqd);
		return -ENOMEM;
	}
	e->elevator_data = bfqd;
	return 0;
}

static void bfq_exit_sched(struct elevator_queue *e)
{
	struct bfq_data *bfqd = e->elevator_data;
	struct bfq_queue *bfqq, *next;

	cancel_delayed_work_sync(&bfqd->idle_slice_timer);
	pthread_spin_lock(&bfqd->lock);
	/* the queue was frozen: nothing queued or in flight */
	WARN_ON(atomic_load(&bfqd->queued) || bfqd->rq_in_driver);
	if (bfqd->in_service_queue)
		bfq_bfqq_expire(bfqd, bfqd->in_service_queue,
				BFQQE_NO_MORE_REQUESTS, ktime_get_ns());
	list_for_each_entry_safe(bfqq, next, &bfqd->sync_queues, bfqq_list)
		bfq_free_queue(bfqd, bfqq);
	for (unsigned int c = 0; c < BFQ_IOPRIO_CLASSES; c++)
		for (unsigned int l = 0; l < IOPRIO_NR_LEVELS; l++)
			if (bfqd->async_bfqq[c][l])
				bfq_free_queue(bfqd, bfqd->async_bfqq[c][l]);
	pthread_spin_unlock(&bfqd->lock);
	pthread_spin_destroy(&bfqd->lock);
	free(bfqd);
}

/* ---- attributes (iosched/) ---- */

static int bfq_parse(const char *name, const char *val, unsigned long lo,
		     unsigned long hi, unsigned long *out)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(val, &end, 10);
	if (*end == '\n')
		end++;
	if (end == val || *end || *val == '-' || errno || n < lo || n > hi)
		return blk_err(-EINVAL, "iosched/%s '%s': valid values are "
			       "%lu..%lu", name, val, lo, hi);
	*out = n;
	return 0;
}

/* Attribute values are read and written under bfqd->lock. */
static unsigned long bfq_attr_get(struct bfq_data *bfqd, size_t off,
				  size_t size, unsigned long unit)
{
	unsigned long v;
	char *p = (char *)bfqd + off;

	pthread_spin_lock(&bfqd->lock);
	if (size == sizeof(uint64_t))
		v = (unsigned long)(*(uint64_t *)p / unit);
	else if (size == sizeof(unsigned int))
		v = *(unsigned int *)p / unit;
	else
		v = *(bool *)p;
	pthread_spin_unlock(&bfqd->lock);
	return v;
}

static void bfq_attr_set(struct bfq_data *bfqd, size_t off, size_t size,
			 unsigned long unit, unsigned long v)
{
	char *p = (char *)bfqd + off;

	pthread_spin_lock(&bfqd->lock);
	if (size == sizeof(uint64_t))
		*(uint64_t *)p = (uint64_t)v * unit;
	else if (size == sizeof(unsigned int))
		*(unsigned int *)p = (unsigned int)(v * unit);
	else
		*(bool *)p = v;
	pthread_spin_unlock(&bfqd->lock);
}

/* @unit: nanoseconds per unit of the attribute (1 for plain numbers) */
#define BFQ_ATTR(name, field, unit, lo, hi)				\
static ssize_t bfq_##name##_show(struct elevator_queue *e, char *buf,	\
				 size_t len)				\
{									\
	struct bfq_data *bfqd = e->elevator_data;			\
									\
	BUILD_BUG_ON(sizeof(bfqd->field) != sizeof(uint64_t) &&	\
		     sizeof(bfqd->field) != sizeof(unsigned int) &&	\
		     sizeof(bfqd->field) != sizeof(bool));		\
	return snprintf(buf, len, "%lu\n", bfq_attr_get(bfqd,		\
			offsetof(struct bfq_data, field),		\
			sizeof(bfqd->field), unit));			\
}									\
static ssize_t bfq_##name##_store(struct elevator_queue *e,		\
				  const char *val)			\
{									\
	struct bfq_data *bfqd = e->elevator_data;			\
	unsigned long v;						\
	int ret = bfq_parse(#name, val, lo, hi, &v);			\
									\
	if (ret)							\
		return ret;						\
	bfq_attr_set(bfqd, offsetof(struct bfq_data, field),		\
		     sizeof(bfqd->field), unit, v);			\
	return 0;							\
}

BFQ_ATTR(fifo_expire_sync, bfq_fifo_expire[1], NSEC_PER_MSEC, 0, INT_MAX)
BFQ_ATTR(fifo_expire_async, bfq_fifo_expire[0], NSEC_PER_MSEC, 0, INT_MAX)
BFQ_ATTR(back_seek_max, bfq_back_max, 1, 0, INT_MAX)
BFQ_ATTR(back_seek_penalty, bfq_back_penalty, 1, 1, INT_MAX)
BFQ_ATTR(slice_idle, bfq_slice_idle, NSEC_PER_MSEC, 0, INT_MAX)
BFQ_ATTR(slice_idle_us, bfq_slice_idle, NSEC_PER_USEC, 0, INT_MAX)
BFQ_ATTR(timeout_sync, bfq_timeout, NSEC_PER_MSEC, 1, INT_MAX)
BFQ_ATTR(low_latency, low_latency, 1, 0, 1)

/* 0 = what the peak rate gives (shown as that) */
static ssize_t bfq_max_budget_show(struct elevator_queue *e, char *buf,
				   size_t len)
{
	struct bfq_data *bfqd = e->elevator_data;
	unsigned long v;

	pthread_spin_lock(&bfqd->lock);
	v = bfq_max_budget(bfqd);
	pthread_spin_unlock(&bfqd->lock);
	return snprintf(buf, len, "%lu\n", v);
}

static ssize_t bfq_max_budget_store(struct elevator_queue *e, const char *val)
{
	struct bfq_data *bfqd = e->elevator_data;
	unsigned long v;
	int ret = bfq_parse("max_budget", val, 0, INT_MAX, &v);

	if (ret)
		return ret;
	pthread_spin_lock(&bfqd->lock);
	bfqd->bfq_user_max_budget = v;
	pthread_spin_unlock(&bfqd->lock);
	return 0;
}

/* As in the kernel, strict guarantees need idling of at least 8 ms. */
static ssize_t bfq_strict_guarantees_show(struct elevator_queue *e, char *buf,
					  size_t len)
{
	struct bfq_data *bfqd = e->elevator_data;

	return snprintf(buf, len, "%lu\n", bfq_attr_get(bfqd,
			offsetof(struct bfq_data, strict_guarantees),
			sizeof(bool), 1));
}

static ssize_t bfq_strict_guarantees_store(struct elevator_queue *e,
					   const char *val)
{
	struct bfq_data *bfqd = e->elevator_data;
	unsigned long v;
	int ret = bfq_parse("strict_guarantees", val, 0, 1, &v);

	if (ret)
		return ret;
	pthread_spin_lock(&bfqd->lock);
	bfqd->strict_guarantees = v;
	if (v && bfqd->bfq_slice_idle < 8 * NSEC_PER_MSEC)
		bfqd->bfq_slice_idle = 8 * NSEC_PER_MSEC;
	pthread_spin_unlock(&bfqd->lock);
	return 0;
}

#define BFQ_ATTR_ENTRY(name) { #name, bfq_##name##_show, bfq_##name##_store }

const struct elv_fs_entry bfq_attrs[] = {
	BFQ_ATTR_ENTRY(fifo_expire_sync),
	BFQ_ATTR_ENTRY(fifo_expire_async),
	BFQ_ATTR_ENTRY(back_seek_max),
	BFQ_ATTR_ENTRY(back_seek_penalty),
	BFQ_ATTR_ENTRY(slice_idle),
	BFQ_ATTR_ENTRY(slice_idle_us),
	BFQ_ATTR_ENTRY(max_budget),
	BFQ_ATTR_ENTRY(timeout_sync),
	BFQ_ATTR_ENTRY(strict_guarantees),
	BFQ_ATTR_ENTRY(low_latency),
	{ NULL, NULL, NULL },
};

/* ---- debug dump ---- */

static void bfq_show_queue(struct bfq_queue *bfqq, FILE *out)
{
	fprintf(out, "  bfq queue pid=%d %s class=%u weight=%u/%u budget=%lu "
		"max_budget=%lu service=%lu queued=%u in_driver=%u "
		"dispatched=%lu completed_sectors=%llu seeky=%d wr=%u "
		"preempted=%lu\n",
		bfqq->pid, bfqq->sync ? "sync" : "async", bfqq->ioprio_class,
		bfqq->entity.weight, bfqq->entity.orig_weight,
		bfqq->entity.budget, bfqq->max_budget, bfqq->entity.service,
		bfqq->queued, bfqq->dispatched, bfqq->nr_dispatched,
		(unsigned long long)bfqq->completed_sectors,
		BFQQ_SEEKY(bfqq), bfqq->wr_coeff,
		bfqq->expired[BFQQE_PREEMPTED]);
}

static void bfq_show(struct elevator_queue *e, FILE *out)
{
	struct bfq_data *bfqd = e->elevator_data;
	struct bfq_stats *st = &bfqd->stats;
	struct bfq_queue *bfqq;

	pthread_spin_lock(&bfqd->lock);
	fprintf(out, "  bfq: busy=%u/%u/%u in_service=%d hw_tag=%d "
		"in_driver=%u inserted=%lu dispatched=%lu completed=%lu "
		"merged=%lu bio_merged=%lu fifo_expired=%lu activations=%lu "
		"idle_waits=%lu idle_hits=%lu idle_timeouts=%lu "
		"wr_interactive=%lu wr_soft_rt=%lu queues=%lu/%lu "
		"max_wait_us=%llu peak_rate_kbs=%llu max_budget=%lu\n",
		bfqd->busy_queues[0], bfqd->busy_queues[1],
		bfqd->busy_queues[2], bfqd->in_service_queue ?
		bfqd->in_service_queue->pid : 0, bfqd->hw_tag,
		bfqd->rq_in_driver, st->inserted, st->dispatched, st->completed,
		st->merged, st->bio_merged, st->fifo_expired, st->activations,
		st->idle_waits, st->idle_hits, st->idle_timeouts,
		st->wr_interactive, st->wr_soft_rt, st->queues_created,
		st->queues_freed,
		(unsigned long long)(st->max_wait_ns / NSEC_PER_USEC),
		(unsigned long long)((bfqd->peak_rate * 1000000 / 2) >>
				     BFQ_RATE_SHIFT), bfq_max_budget(bfqd));
	fprintf(out, "  bfq expired:");
	for (int r = 0; r < BFQQE_NR; r++)
		fprintf(out, " %s=%lu", bfq_expire_name[r], st->expired[r]);
	fprintf(out, "\n");
	list_for_each_entry(bfqq, &bfqd->sync_queues, bfqq_list)
		bfq_show_queue(bfqq, out);
	pthread_spin_unlock(&bfqd->lock);
}

static int bfq_class_stats(struct elevator_queue *e,
			   struct elv_class_stats *st)
{
	static const char *const names[] = { "rt", "be", "idle" };
	struct bfq_data *bfqd = e->elevator_data;

	pthread_spin_lock(&bfqd->lock);
	for (int c = 0; c < IOPRIO_CLASS_IDLE; c++) {
		const struct bfq_class_stats *cs = &bfqd->stats.cls[c];

		st[c] = (struct elv_class_stats){
			.name = names[c], .has = ELV_STAT_EXPIRED,
			.dispatched = cs->dispatched, .merged = cs->merged,
			.expired = cs->fifo_expired,
			.max_wait_ns = cs->max_wait_ns,
		};
	}
	pthread_spin_unlock(&bfqd->lock);
	return IOPRIO_CLASS_IDLE;
}

struct elevator_type iosched_bfq_mq = {
	.elevator_name = "bfq",
	.uses_ioc = true,
	.ops = {
		.init_sched		= bfq_init_sched,
		.exit_sched		= bfq_exit_sched,
		.allow_merge		= bfq_allow_bio_merge,
		.bio_merge		= bfq_bio_merge,
		.request_merge		= bfq_request_merge,
		.request_merged		= bfq_request_merged,
		.requests_merged	= bfq_requests_merged,
		.prepare_request	= bfq_prepare_request,
		.finish_request		= bfq_finish_request,
		.requeue_request	= bfq_requeue_request,
		.insert_requests	= bfq_insert_requests,
		.dispatch_request	= bfq_dispatch_request,
		.has_work		= bfq_has_work,
		.former_request		= elv_rb_former_request,
		.next_request		= elv_rb_latter_request,
		.show			= bfq_show,
		.class_stats		= bfq_class_stats,
	},
	.elevator_attrs = bfq_attrs,
};
