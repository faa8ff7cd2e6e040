// SPDX-License-Identifier: MIT
/*
 * The deadline I/O scheduler (the kernel's block/mq-deadline.c): for each
 * I/O priority class (RT, BE, IDLE) and each direction, requests sit in a
 * tree sorted by sector and in a FIFO by arrival. Dispatch goes in
 * sector order, in batches of up to fifo_batch requests in one direction,
 * and turns to the FIFO when its oldest request has waited longer than
 * read_expire / write_expire. Reads are preferred, but writes are served
 * after writes_starved read batches that passed them over. Higher
 * classes go first; a lower-class request older than prio_aging_expire
 * goes before them. Asynchronous requests (writes, async reads) may use
 * only async_depth of the scheduler tags, so synchronous reads always
 * find one. On a rotational device, writes wait while reads are in
 * flight, and at most fifo_batch of them are in the device at once,
 * fewer for a while after a slow read (dd_hold_writes()).
 *
 * One instance per queue; its lock (dd->lock) serialises insertion,
 * merging and dispatch from every hctx. The elevator's merge callbacks
 * (request_merge, request_merged, requests_merged, former/next_request)
 * run with it held, from dd_bio_merge() and dd_insert_requests().
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "lib/rbtree.h"

enum dd_data_dir {
	DD_READ = 0,	/* READ == rq_data_dir() 0 */
	DD_WRITE = 1,
	DD_DIR_COUNT = 2,
};

enum dd_prio {
	DD_RT_PRIO = 0,
	DD_BE_PRIO = 1,
	DD_IDLE_PRIO = 2,
	DD_PRIO_MAX = 2,
	DD_PRIO_COUNT = 3,
};

/* the kernel's defaults (Documentation/block/deadline-iosched.rst) */
#define DD_READ_EXPIRE_MS	500
#define DD_WRITE_EXPIRE_MS	5000
#define DD_PRIO_AGING_MS	10000
#define DD_WRITES_STARVED	2
#define DD_FIFO_BATCH		16

static const char *const dd_prio_name[DD_PRIO_COUNT] = { "RT", "BE", "IDLE" };

struct dd_stats {
	unsigned long inserted;
	unsigned long merged;		/* requests merged away */
	unsigned long bio_merged;	/* bios merged into queued requests */
	unsigned long dispatched;
	_Atomic unsigned long completed;	/* finish_request, unlocked */
	unsigned long expired;		/* taken from the FIFO, past deadline */
	unsigned long starved;		/* writes served after writes_starved */
	unsigned long aged;		/* sent ahead by prio_aging_expire */
	uint64_t max_wait_ns;		/* longest insert-to-dispatch wait */
};

struct dd_per_prio {
	struct list_head dispatch;	/* at_head insertions and requeues */
	struct rb_root sort_list[DD_DIR_COUNT];
	struct list_head fifo_list[DD_DIR_COUNT];
	/* end sector of the last dispatched request, per direction */
	sector_t latest_pos[DD_DIR_COUNT];
	struct dd_stats stats;
};

struct deadline_data {
	pthread_spinlock_t lock;
	struct request_queue *q;
	struct dd_per_prio per_prio[DD_PRIO_COUNT];
	_Atomic unsigned int nr_queued;	/* in the lists: has_work, unlocked */
	enum dd_data_dir last_dir;
	unsigned int batching;		/* requests sent in this batch */
	unsigned int starved;		/* read batches that passed writes */
	/* rotational: dispatched, not yet finished (rq->elv.priv[1]) */
	_Atomic unsigned int in_flight[DD_DIR_COUNT];
	/* rotational: when the last slow read ended (dd_write_depth()) */
	_Atomic uint64_t last_delayed_read;
	unsigned long writes_held;	/* dispatches that held writes back */
	/* tunables (iosched/ attributes) */
	uint64_t fifo_expire[DD_DIR_COUNT];	/* ns */
	uint64_t prio_aging_expire;		/* ns */
	unsigned int fifo_batch;
	unsigned int writes_starved;
	unsigned int front_merges;
	unsigned int async_depth;
};

/* ---- requests in the sector trees ---- */

static enum dd_prio dd_ioprio_to_prio(unsigned short ioprio)
{
	switch (IOPRIO_PRIO_CLASS(ioprio)) {
	case IOPRIO_CLASS_RT:
		return DD_RT_PRIO;
	case IOPRIO_CLASS_IDLE:
		return DD_IDLE_PRIO;
	default:
		return DD_BE_PRIO;	/* NONE and BE */
	}
}

static enum dd_prio dd_rq_prio(const struct request *rq)
{
	return dd_ioprio_to_prio(rq->ioprio);
}

static struct dd_per_prio *dd_rq_per_prio(struct deadline_data *dd,
					  const struct request *rq)
{
	return &dd->per_prio[dd_rq_prio(rq)];
}

static struct rb_root *deadline_rb_root(struct dd_per_prio *per_prio,
					struct request *rq)
{
	return &per_prio->sort_list[rq_data_dir(rq)];
}

static void deadline_add_rq_rb(struct dd_per_prio *per_prio,
			       struct request *rq)
{
	elv_rb_add(deadline_rb_root(per_prio, rq), rq);
}

static void deadline_del_rq_rb(struct dd_per_prio *per_prio,
			       struct request *rq)
{
	elv_rb_del(deadline_rb_root(per_prio, rq), rq);
}

/* The queued request starting exactly at @sector, for front merges. */
static struct request *deadline_rb_find(struct rb_root *root, sector_t sector)
{
	struct rb_node *n = root->rb_node;

	while (n) {
		struct request *rq = rb_to_rq(n);

		if (sector < blk_rq_pos(rq))
			n = n->rb_left;
		else if (sector > blk_rq_pos(rq))
			n = n->rb_right;
		else
			return rq;
	}
	return NULL;
}

/* The first request at or after @pos in @data_dir's tree. */
static struct request *deadline_from_pos(struct dd_per_prio *per_prio,
					 enum dd_data_dir data_dir,
					 sector_t pos)
{
	struct rb_node *n = per_prio->sort_list[data_dir].rb_node;
	struct request *res = NULL;

	while (n) {
		struct request *rq = rb_to_rq(n);

		if (blk_rq_pos(rq) >= pos) {
			res = rq;
			n = n->rb_left;
		} else {
			n = n->rb_right;
		}
	}
	return res;
}

/* Take @rq out of the lists, tree and merge hash. dd->lock held. */
static void deadline_remove_request(struct deadline_data *dd,
				    struct dd_per_prio *per_prio,
				    struct request *rq)
{
	struct request_queue *q = dd->q;

	if (!list_empty(&rq->queuelist)) {
		list_del_init(&rq->queuelist);
		atomic_fetch_sub_explicit(&dd->nr_queued, 1,
					  memory_order_relaxed);
	}
	deadline_del_rq_rb(per_prio, rq);
	elv_rqhash_del(q, rq);
	if (q->last_merge == rq)
		q->last_merge = NULL;
}

/* ---- merging (dd->lock held by the caller, see the top) ---- */

static int dd_request_merge(struct request_queue *q, struct request **rq,
			    struct bio *bio)
{
	struct deadline_data *dd = q->elevator->elevator_data;
	struct dd_per_prio *per_prio;
	struct request *__rq;

	if (!READ_ONCE(dd->front_merges))
		return ELEVATOR_NO_MERGE;
	/* a queued request that starts where the bio ends */
	per_prio = &dd->per_prio[dd_ioprio_to_prio(bio->bi_ioprio)];
	__rq = deadline_rb_find(&per_prio->sort_list[op_is_write(bio->bi_opf)],
				bio_end_sector(bio));
	if (!__rq || !blk_rq_merge_ok(__rq, bio) ||
	    !blk_mq_sched_allow_merge(q, __rq, bio))
		return ELEVATOR_NO_MERGE;
	*rq = __rq;
	return ELEVATOR_FRONT_MERGE;
}

/* A bio was merged into @req: a front merge moved its start sector. */
static void dd_request_merged(struct request_queue *q, struct request *req,
			      enum elv_merge type)
{
	struct deadline_data *dd = q->elevator->elevator_data;
	struct dd_per_prio *per_prio = dd_rq_per_prio(dd, req);

	per_prio->stats.bio_merged++;
	if (type == ELEVATOR_FRONT_MERGE && !RB_EMPTY_NODE(rq_rb(req))) {
		deadline_del_rq_rb(per_prio, req);
		deadline_add_rq_rb(per_prio, req);
	}
}

/*
 * @next was merged into @req: @req inherits the earlier deadline (and
 * @next's place in the FIFO), @next leaves the scheduler.
 */
static void dd_merged_requests(struct request_queue *q, struct request *req,
			       struct request *next)
{
	struct deadline_data *dd = q->elevator->elevator_data;
	struct dd_per_prio *per_prio = dd_rq_per_prio(dd, next);

	if (!list_empty(&req->queuelist) && !list_empty(&next->queuelist) &&
	    next->fifo_time < req->fifo_time) {
		list_move(&req->queuelist, &next->queuelist);
		req->fifo_time = next->fifo_time;
		req->elv.key = min(req->elv.key, next->elv.key);
	}
	per_prio->stats.merged++;
	deadline_remove_request(dd, per_prio, next);
}

static bool dd_bio_merge(struct request_queue *q, struct bio *bio,
			 unsigned int nr_segs)
{
	struct deadline_data *dd = q->elevator->elevator_data;
	struct request *free = NULL;
	bool ret;

	pthread_spin_lock(&dd->lock);
	ret = blk_mq_sched_try_merge(q, bio, nr_segs, &free);
	pthread_spin_unlock(&dd->lock);
	if (free)
		blk_mq_free_request(free);
	return ret;
}

/* ---- insertion ---- */

static bool dd_rq_mergeable(const struct request *rq)
{
	return req_op(rq) != REQ_OP_FLUSH &&
	       req_op(rq) != REQ_OP_WRITE_ZEROES &&
	       !(rq->cmd_flags & REQ_NOMERGE_FLAGS) &&
	       !(rq->rq_flags & (RQF_FLUSH_SEQ | RQF_SPECIAL_PAYLOAD));
}

static void dd_insert_request(struct deadline_data *dd, struct request *rq,
			      bool at_head, uint64_t now, struct list_head *free)
{
	struct request_queue *q = dd->q;
	enum dd_data_dir data_dir = (enum dd_data_dir)rq_data_dir(rq);
	struct dd_per_prio *per_prio = dd_rq_per_prio(dd, rq);

	/* a requeued request was counted when it first came in */
	if (!rq->elv.priv[0]) {
		per_prio->stats.inserted++;
		rq->elv.priv[0] = (void *)(uintptr_t)1;
	}
	rq->elv.key = now;
	if (blk_mq_sched_try_insert_merge(q, rq, free))
		return;
	atomic_fetch_add_explicit(&dd->nr_queued, 1, memory_order_relaxed);
	if (at_head) {
		list_add(&rq->queuelist, &per_prio->dispatch);
		rq->fifo_time = now;
		return;
	}
	deadline_add_rq_rb(per_prio, rq);
	if (dd_rq_mergeable(rq)) {
		elv_rqhash_add(q, rq);
		if (!q->last_merge)
			q->last_merge = rq;
	}
	rq->fifo_time = now + READ_ONCE(dd->fifo_expire[data_dir]);
	list_add_tail(&rq->queuelist, &per_prio->fifo_list[data_dir]);
}

static void dd_insert_requests(struct blk_mq_hw_ctx *hctx,
			       struct list_head *list, bool at_head)
{
	struct deadline_data *dd = hctx->queue->elevator->elevator_data;
	/* one clock read per batch (the plug's, if any) */
	uint64_t now = blk_time_get_ns();
	struct request *rq, *next;
	LIST_HEAD(free);

	pthread_spin_lock(&dd->lock);
	while (!list_empty(list)) {
		rq = list_first_entry(list, struct request, queuelist);
		list_del_init(&rq->queuelist);
		dd_insert_request(dd, rq, at_head, now, &free);
	}
	pthread_spin_unlock(&dd->lock);
	list_for_each_entry_safe(rq, next, &free, queuelist) {
		list_del_init(&rq->queuelist);
		blk_mq_free_request(rq);
	}
}

/* ---- dispatch ---- */

/* Did @rq arrive after @latest_start (i.e. is it too young to age)? */
static bool started_after(const struct request *rq, uint64_t latest_start)
{
	return rq->elv.key > latest_start;
}

static struct request *deadline_fifo_request(struct dd_per_prio *per_prio,
					     enum dd_data_dir data_dir)
{
	if (list_empty(&per_prio->fifo_list[data_dir]))
		return NULL;
	return list_first_entry(&per_prio->fifo_list[data_dir], struct request,
				queuelist);
}

/* The oldest request of @data_dir has passed its deadline. */
static bool deadline_check_fifo(struct dd_per_prio *per_prio,
				enum dd_data_dir data_dir, uint64_t now)
{
	struct request *rq = deadline_fifo_request(per_prio, data_dir);

	return rq && rq->fifo_time <= now;
}

static struct request *deadline_next_request(struct dd_per_prio *per_prio,
					     enum dd_data_dir data_dir)
{
	return deadline_from_pos(per_prio, data_dir,
				 per_prio->latest_pos[data_dir]);
}

static unsigned int dd_in_flight(struct deadline_data *dd,
				 enum dd_data_dir dir)
{
	return atomic_load_explicit(&dd->in_flight[dir], memory_order_relaxed);
}

/*
 * A disk serves the command nearest its head first (NCQ), so a read
 * queued in the drive with writes near the head waits for every one of
 * them, up to the drive's own aging limit (hundreds of ms), whatever
 * order they were sent in: a deep drive queue undoes the dispatch order.
 * So on a rotational device
 *  - writes are not sent while a read is in flight -- CFQ's rule ("if we
 *    have sync IO in flight, let [async] wait", the kernel's
 *    cfq_may_dispatch()) -- unless the oldest write's deadline passed;
 *  - at most fifo_batch writes are in the device: a read that comes
 *    waits for one batch of writes at most, as on a drive without a
 *    queue;
 *  - fewer after a slow read (dd_write_depth()).
 * Completions that lift either limit run the queue (dd_finish_request()).
 */

/*
 * The first rule does not help a reader with one read at a time: between
 * its reads nothing is in flight, and the writes fill the drive. So after
 * a read that took over a quarter of read_expire, writes go one at a
 * time, and one more may be in the device per fifth of read_expire
 * since, up to fifo_batch: CFQ's ramp of async depth after a delayed
 * sync request (cfq_may_dispatch(), last_delayed_sync), whose 125 ms
 * (fifo_expire_sync) and 100 ms (slice_sync) these are at the default
 * read_expire. Returns 0 while only one write may go.
 */
static unsigned int dd_write_depth(struct deadline_data *dd, uint64_t now)
{
	unsigned int depth = max(1U, READ_ONCE(dd->fifo_batch));
	uint64_t last = atomic_load_explicit(&dd->last_delayed_read,
					     memory_order_relaxed);
	uint64_t slice = READ_ONCE(dd->fifo_expire[DD_READ]) / 5;
	uint64_t ramp;

	if (!last || !slice)
		return depth;
	ramp = now > last ? (now - last) / slice : 0;
	return ramp < depth ? (unsigned int)ramp : depth;
}

static bool dd_hold_writes(struct deadline_data *dd,
			   struct dd_per_prio *per_prio, uint64_t now)
{
	unsigned int writes = dd_in_flight(dd, DD_WRITE);

	if (writes && writes >= dd_write_depth(dd, now))
		return true;
	if (!dd_in_flight(dd, DD_READ))
		return false;
	return !deadline_check_fifo(per_prio, DD_WRITE, now);
}

/* Which direction to start a new batch in (or -1: nothing to send). */
static int dd_pick_dir(struct deadline_data *dd, struct dd_per_prio *per_prio,
		       uint64_t now)
{
	bool reads = !list_empty(&per_prio->fifo_list[DD_READ]);
	bool writes = !list_empty(&per_prio->fifo_list[DD_WRITE]);

	if (reads) {
		if (!writes || dd->starved++ < READ_ONCE(dd->writes_starved))
			return DD_READ;
		per_prio->stats.starved++;
	} else if (writes && dd_hold_writes(dd, per_prio, now)) {
		dd->writes_held++;
		return -1;
	}
	if (!writes)
		return -1;
	dd->starved = 0;
	return DD_WRITE;
}

/*
 * The next request of one priority class, or NULL. With @latest_start
 * before now (prio aging), only a request that arrived by then counts.
 */
static struct request *__dd_dispatch_request(struct deadline_data *dd,
					     struct dd_per_prio *per_prio,
					     uint64_t now,
					     uint64_t latest_start)
{
	struct request *rq, *next_rq;
	int data_dir;

	if (!list_empty(&per_prio->dispatch)) {
		rq = list_first_entry(&per_prio->dispatch, struct request,
				      queuelist);
		if (started_after(rq, latest_start))
			return NULL;
		deadline_remove_request(dd, per_prio, rq);
		return rq;
	}
	/* go on with the batch, in sector order (a write batch pauses) */
	rq = deadline_next_request(per_prio, dd->last_dir);
	if (rq && dd->batching < READ_ONCE(dd->fifo_batch) &&
	    (dd->last_dir == DD_READ || !dd_hold_writes(dd, per_prio, now)))
		goto dispatch_request;

	data_dir = dd_pick_dir(dd, per_prio, now);
	if (data_dir < 0)
		return NULL;
	next_rq = deadline_next_request(per_prio, (enum dd_data_dir)data_dir);
	if (deadline_check_fifo(per_prio, (enum dd_data_dir)data_dir, now)) {
		rq = deadline_fifo_request(per_prio, (enum dd_data_dir)data_dir);
		if (!started_after(rq, latest_start))
			per_prio->stats.expired++;
	} else if (next_rq) {
		rq = next_rq;
	} else {
		/* nothing ahead of the head: start over from the oldest */
		rq = deadline_fifo_request(per_prio, (enum dd_data_dir)data_dir);
	}
	dd->last_dir = (enum dd_data_dir)data_dir;
	dd->batching = 0;

dispatch_request:
	if (started_after(rq, latest_start))
		return NULL;
	dd->batching++;
	deadline_remove_request(dd, per_prio, rq);
	return rq;
}

/* Queued or in flight, per class: a busy higher class holds lower ones. */
static unsigned long dd_queued(struct deadline_data *dd, enum dd_prio prio)
{
	struct dd_stats *st = &dd->per_prio[prio].stats;

	return st->inserted - atomic_load_explicit(&st->completed,
						   memory_order_relaxed);
}

/*
 * With more than one class busy, a BE or IDLE request that has waited
 * prio_aging_expire goes first, so that RT cannot starve them forever.
 */
static struct request *dd_dispatch_prio_aged(struct deadline_data *dd,
					     const unsigned long *queued,
					     uint64_t now)
{
	uint64_t aging = READ_ONCE(dd->prio_aging_expire);
	unsigned int busy = 0;
	struct request *rq;

	for (int prio = 0; prio <= DD_PRIO_MAX; prio++)
		busy += queued[prio] != 0;
	if (busy < 2 || now < aging)
		return NULL;
	for (int prio = DD_BE_PRIO; prio <= DD_PRIO_MAX; prio++) {
		rq = __dd_dispatch_request(dd, &dd->per_prio[prio], now,
					   now - aging);
		if (rq) {
			dd->per_prio[prio].stats.aged++;
			return rq;
		}
	}
	return NULL;
}

static void dd_account_dispatch(struct deadline_data *dd, struct request *rq,
				uint64_t now)
{
	struct dd_per_prio *per_prio = dd_rq_per_prio(dd, rq);
	uint64_t wait = now > rq->elv.key ? now - rq->elv.key : 0;

	per_prio->latest_pos[rq_data_dir(rq)] = blk_rq_pos(rq) +
						 blk_rq_sectors(rq);
	per_prio->stats.dispatched++;
	if (wait > per_prio->stats.max_wait_ns)
		per_prio->stats.max_wait_ns = wait;
	/* once: a requeued request comes back through here */
	if (!rq->elv.priv[1] && !blk_queue_nonrot(dd->q)) {
		rq->elv.priv[1] = (void *)(uintptr_t)(rq_data_dir(rq) + 1);
		atomic_fetch_add_explicit(&dd->in_flight[rq_data_dir(rq)], 1,
					  memory_order_relaxed);
	}
}

static struct request *dd_dispatch_request(struct blk_mq_hw_ctx *hctx)
{
	struct deadline_data *dd = hctx->queue->elevator->elevator_data;
	uint64_t now = blk_time_get_ns();
	unsigned long queued[DD_PRIO_COUNT];
	struct request *rq;

	pthread_spin_lock(&dd->lock);
	for (int prio = 0; prio <= DD_PRIO_MAX; prio++)
		queued[prio] = dd_queued(dd, (enum dd_prio)prio);
	rq = dd_dispatch_prio_aged(dd, queued, now);
	for (int prio = 0; !rq && prio <= DD_PRIO_MAX; prio++) {
		/* nothing queued or in flight: nothing in its lists either */
		if (!queued[prio])
			continue;
		rq = __dd_dispatch_request(dd, &dd->per_prio[prio], now, now);
		/* a class with requests queued or in flight holds lower ones */
		if (!rq)
			break;
	}
	if (rq)
		dd_account_dispatch(dd, rq, now);
	pthread_spin_unlock(&dd->lock);
	return rq;
}

static bool dd_has_work(struct blk_mq_hw_ctx *hctx)
{
	struct deadline_data *dd = hctx->queue->elevator->elevator_data;

	return atomic_load_explicit(&dd->nr_queued, memory_order_relaxed);
}

/* ---- tags ---- */

/*
 * async_depth is a number of scheduler tags; the tag allocator limits
 * bits per sbitmap word, so scale it to a word's share.
 */
static unsigned int dd_to_word_depth(struct blk_mq_hw_ctx *hctx,
				     unsigned int qdepth)
{
	struct blk_mq_tags *tags = hctx->sched_tags;
	unsigned int nr = tags->nr_tags - tags->nr_reserved_tags;
	unsigned int shift = tags->bitmap_tags.sb.shift;

	return max(1U, (unsigned int)((((uint64_t)qdepth << shift) + nr - 1) /
				      nr));
}

/* Synchronous reads may take every tag; the rest only async_depth. */
static void dd_limit_depth(blk_opf_t opf, struct blk_mq_alloc_data *data)
{
	struct deadline_data *dd = data->q->elevator->elevator_data;

	if (op_is_sync(opf) && !op_is_write(opf))
		return;
	data->shallow_depth = dd_to_word_depth(data->hctx,
					       READ_ONCE(dd->async_depth));
}

static void dd_depth_updated(struct blk_mq_hw_ctx *hctx)
{
	struct deadline_data *dd = hctx->queue->elevator->elevator_data;
	struct blk_mq_tags *tags = hctx->sched_tags;
	unsigned int nr = tags->nr_tags - tags->nr_reserved_tags;

	WRITE_ONCE(dd->async_depth, max(1U, 3 * nr / 4));
	sbitmap_queue_min_shallow_depth(&tags->bitmap_tags, 1);
}

static int dd_init_hctx(struct blk_mq_hw_ctx *hctx, unsigned int idx)
{
	dd_depth_updated(hctx);
	return 0;
}

/* ---- request life ---- */

static void dd_prepare_request(struct request *rq)
{
	RB_CLEAR_NODE(rq_rb(rq));
	rq->elv.priv[0] = NULL;
	rq->elv.priv[1] = NULL;
}

/*
 * The last read in flight, or a write below the limit of writes in
 * flight: writes held back may go now (dd_hold_writes()). A slow read
 * restarts the ramp of writes in flight (dd_write_depth()).
 */
static void dd_finish_in_flight(struct deadline_data *dd, struct request *rq)
{
	enum dd_data_dir dir = (enum dd_data_dir)((uintptr_t)rq->elv.priv[1] - 1);
	unsigned int was = atomic_fetch_sub_explicit(&dd->in_flight[dir], 1,
						     memory_order_relaxed);
	bool lift = dir == DD_READ ? was == 1 :
		    was <= max(1U, READ_ONCE(dd->fifo_batch));

	if (dir == DD_READ) {
		uint64_t now = blk_time_get_ns();

		if (now - rq->start_time_ns >=
		    READ_ONCE(dd->fifo_expire[DD_READ]) / 4)
			atomic_store_explicit(&dd->last_delayed_read, now,
					      memory_order_relaxed);
	}
	if (lift && atomic_load_explicit(&dd->nr_queued, memory_order_relaxed))
		blk_mq_run_hw_queues(rq->q, true);
}

static void dd_finish_request(struct request *rq)
{
	struct deadline_data *dd = rq->q->elevator->elevator_data;

	if (rq->elv.priv[0])
		atomic_fetch_add_explicit(&dd_rq_per_prio(dd, rq)->stats.completed,
					  1, memory_order_relaxed);
	if (rq->elv.priv[1])
		dd_finish_in_flight(dd, rq);
}

/* ---- setup ---- */

static int dd_init_sched(struct request_queue *q, struct elevator_queue *e)
{
	struct deadline_data *dd = calloc(1, sizeof(*dd));

	if (!dd)
		return -ENOMEM;
	pthread_spin_init(&dd->lock, PTHREAD_PROCESS_PRIVATE);
	dd->q = q;
	for (int prio = 0; prio <= DD_PRIO_MAX; prio++) {
		struct dd_per_prio *per_prio = &dd->per_prio[prio];

		INIT_LIST_HEAD(&per_prio->dispatch);
		for (int dir = 0; dir < DD_DIR_COUNT; dir++) {
			INIT_LIST_HEAD(&per_prio->fifo_list[dir]);
			per_prio->sort_list[dir] = RB_ROOT;
		}
	}
	dd->fifo_expire[DD_READ] = DD_READ_EXPIRE_MS * NSEC_PER_MSEC;
	dd->fifo_expire[DD_WRITE] = DD_WRITE_EXPIRE_MS * NSEC_PER_MSEC;
	dd->prio_aging_expire = DD_PRIO_AGING_MS * NSEC_PER_MSEC;
	dd->writes_starved = DD_WRITES_STARVED;
	dd->front_merges = 1;
	dd->last_dir = DD_WRITE;
	dd->fifo_batch = DD_FIFO_BATCH;
	dd->async_depth = q->nr_requests;
	e->elevator_data = dd;
	return 0;
}

static void dd_exit_sched(struct elevator_queue *e)
{
	struct deadline_data *dd = e->elevator_data;

	/* the queue was frozen: nothing can be left */
	for (int prio = 0; prio <= DD_PRIO_MAX; prio++) {
		struct dd_per_prio *per_prio = &dd->per_prio[prio];

		WARN_ON(!list_empty(&per_prio->dispatch) ||
			!list_empty(&per_prio->fifo_list[DD_READ]) ||
			!list_empty(&per_prio->fifo_list[DD_WRITE]));
		WARN_ON(dd_queued(dd, (enum dd_prio)prio));
	}
	pthread_spin_destroy(&dd->lock);
	free(dd);
}

/* ---- attributes (iosched/) ---- */

static int dd_parse(const char *name, const char *val, unsigned long lo,
		    unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long n;

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

#define DD_ATTR_MS(name, field)						\
static ssize_t dd_##name##_show(struct elevator_queue *e, char *buf,	\
				size_t len)				\
{									\
	struct deadline_data *dd = e->elevator_data;			\
	uint64_t v;							\
									\
	v = READ_ONCE(dd->field) / NSEC_PER_MSEC;			\
	return snprintf(buf, len, "%llu\n", (unsigned long long)v);	\
}									\
static ssize_t dd_##name##_store(struct elevator_queue *e,		\
				 const char *val)			\
{									\
	struct deadline_data *dd = e->elevator_data;			\
	unsigned long v;						\
	int ret = dd_parse(#name, val, 0, INT_MAX, &v);			\
									\
	if (ret)							\
		return ret;						\
	WRITE_ONCE(dd->field, (uint64_t)v * NSEC_PER_MSEC);		\
	return 0;							\
}

#define DD_ATTR_UINT(name, field, lo, hi)				\
static ssize_t dd_##name##_show(struct elevator_queue *e, char *buf,	\
				size_t len)				\
{									\
	struct deadline_data *dd = e->elevator_data;			\
	unsigned int v;							\
									\
	v = READ_ONCE(dd->field);					\
	return snprintf(buf, len, "%u\n", v);				\
}									\
static ssize_t dd_##name##_store(struct elevator_queue *e,		\
				 const char *val)			\
{									\
	struct deadline_data *dd = e->elevator_data;			\
	unsigned long v;						\
	int ret = dd_parse(#name, val, lo, hi, &v);			\
									\
	if (ret)							\
		return ret;						\
	WRITE_ONCE(dd->field, (unsigned int)v);				\
	return 0;							\
}

DD_ATTR_MS(read_expire, fifo_expire[DD_READ])
DD_ATTR_MS(write_expire, fifo_expire[DD_WRITE])
DD_ATTR_MS(prio_aging_expire, prio_aging_expire)
DD_ATTR_UINT(writes_starved, writes_starved, 0, INT_MAX)
DD_ATTR_UINT(front_merges, front_merges, 0, 1)
DD_ATTR_UINT(async_depth, async_depth, 1, INT_MAX)
DD_ATTR_UINT(fifo_batch, fifo_batch, 0, INT_MAX)

#define DD_ATTR(name) { #name, dd_##name##_show, dd_##name##_store }

static const struct elv_fs_entry deadline_attrs[] = {
	DD_ATTR(read_expire),
	DD_ATTR(write_expire),
	DD_ATTR(writes_starved),
	DD_ATTR(front_merges),
	DD_ATTR(async_depth),
	DD_ATTR(fifo_batch),
	DD_ATTR(prio_aging_expire),
	{ NULL, NULL, NULL },
};

/* ---- debug dump ---- */

static unsigned int dd_list_count(const struct list_head *head)
{
	const struct list_head *p;
	unsigned int n = 0;

	for (p = head->next; p != head; p = p->next)
		n++;
	return n;
}

static void dd_show(struct elevator_queue *e, FILE *out)
{
	struct deadline_data *dd = e->elevator_data;

	pthread_spin_lock(&dd->lock);
	fprintf(out, "  mq-deadline: batching=%u starved=%u last_dir=%s "
		"async_depth=%u in_flight=%u/%u writes_held=%lu "
		"write_depth=%u\n",
		dd->batching, dd->starved,
		dd->last_dir == DD_READ ? "read" : "write",
		READ_ONCE(dd->async_depth), dd_in_flight(dd, DD_READ),
		dd_in_flight(dd, DD_WRITE), dd->writes_held,
		max(1U, dd_write_depth(dd, blk_time_get_ns())));
	for (int prio = 0; prio <= DD_PRIO_MAX; prio++) {
		struct dd_per_prio *pp = &dd->per_prio[prio];
		struct dd_stats *st = &pp->stats;

		fprintf(out, "  mq-deadline %s: queued=%lu read=%u write=%u "
			"dispatch=%u inserted=%lu merged=%lu bio_merged=%lu "
			"dispatched=%lu completed=%lu expired=%lu starved=%lu "
			"aged=%lu max_wait_us=%llu\n", dd_prio_name[prio],
			dd_queued(dd, (enum dd_prio)prio),
			dd_list_count(&pp->fifo_list[DD_READ]),
			dd_list_count(&pp->fifo_list[DD_WRITE]),
			dd_list_count(&pp->dispatch), st->inserted, st->merged,
			st->bio_merged, st->dispatched,
			atomic_load(&st->completed), st->expired, st->starved,
			st->aged,
			(unsigned long long)(st->max_wait_ns / NSEC_PER_USEC));
	}
	pthread_spin_unlock(&dd->lock);
}

static int dd_class_stats(struct elevator_queue *e, struct elv_class_stats *st)
{
	static const char *const names[DD_PRIO_COUNT] = { "rt", "be", "idle" };
	struct deadline_data *dd = e->elevator_data;

	pthread_spin_lock(&dd->lock);
	for (int prio = 0; prio <= DD_PRIO_MAX; prio++) {
		const struct dd_stats *ps = &dd->per_prio[prio].stats;

		st[prio] = (struct elv_class_stats){
			.name = names[prio],
			.has = ELV_STAT_EXPIRED | ELV_STAT_STARVED,
			.dispatched = ps->dispatched,
			.merged = ps->merged + ps->bio_merged,
			.expired = ps->expired, .starved = ps->starved,
			.max_wait_ns = ps->max_wait_ns,
		};
	}
	pthread_spin_unlock(&dd->lock);
	return DD_PRIO_COUNT;
}

struct elevator_type mq_deadline = {
	.elevator_name = "mq-deadline",
	.elevator_alias = "deadline",
	.ops = {
		.init_sched		= dd_init_sched,
		.exit_sched		= dd_exit_sched,
		.init_hctx		= dd_init_hctx,
		.depth_updated		= dd_depth_updated,
		.limit_depth		= dd_limit_depth,
		.bio_merge		= dd_bio_merge,
		.request_merge		= dd_request_merge,
		.request_merged		= dd_request_merged,
		.requests_merged	= dd_merged_requests,
		.prepare_request	= dd_prepare_request,
		.finish_request		= dd_finish_request,
		.insert_requests	= dd_insert_requests,
		.dispatch_request	= dd_dispatch_request,
		.has_work		= dd_has_work,
		.former_request		= elv_rb_former_request,
		.next_request		= elv_rb_latter_request,
		.show			= dd_show,
		.class_stats		= dd_class_stats,
	},
	.elevator_attrs = deadline_attrs,
};
