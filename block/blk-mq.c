// SPDX-License-Identifier: MIT
/*
 * The blk-mq I/O path (the kernel's block/blk-mq.c): request allocation,
 * blk_mq_submit_bio(), plugging, insertion into software queues,
 * dispatch to the driver with budget and driver tags, direct issue,
 * completion (single and batched), requeue and queue runs.
 *
 * Setup and teardown of queues, hctxs and ctxs live in blk-mq-init.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "blk-trace.h"

#define BLK_MQ_RESOURCE_DELAY	3	/* ms before retrying a busy driver */
#define BLK_MQ_BUDGET_DELAY	3
#define BLK_MAX_REQUEST_COUNT	32	/* plug flush threshold (requests) */
#define BLK_PLUG_FLUSH_SIZE	(128 * 1024)	/* ... and (bytes of last rq) */
#define TAG_COMP_BATCH		32

/* ---- mapping ---- */

/*
 * The software queue of the CPU we run on. A CPU beyond the map (a
 * simulated topology, or a CPU that appeared later) uses CPU 0's ctx,
 * which always maps to hctx 0: never an hctx without tags.
 */
struct blk_mq_ctx *blk_mq_get_ctx(struct request_queue *q)
{
	unsigned int cpu = raw_smp_processor_id();

	if (unlikely(cpu >= q->nr_cpu_ids))
		cpu = 0;
	return &q->queue_ctx[cpu];
}

/*
 * Whoever queued a request and then finds the hctx stopped leaves the
 * run to blk_mq_start_hw_queue(). The barrier orders that caller's
 * insertion before the second look at the bit; it pairs with the one
 * after the start clears the bit and before it looks for work: either
 * we see the bit cleared, or the start sees the request.
 */
bool blk_mq_hctx_stopped(struct blk_mq_hw_ctx *hctx)
{
	if (likely(!hctx_test_bit(BLK_MQ_S_STOPPED, hctx)))
		return false;
	smp_mb();
	return hctx_test_bit(BLK_MQ_S_STOPPED, hctx);
}

/* ---- request allocation ---- */

/*
 * The request flags every request of @data starts with, worked out once
 * per allocation (the kernel's data->rq_flags).
 */
static uint32_t blk_mq_alloc_rq_flags(const struct blk_mq_alloc_data *data)
{
	uint32_t flags = 0;

	if (data->q->elevator) {
		flags |= RQF_SCHED_TAGS;
		/* only bare flushes and passthrough go around the scheduler */
		if (bio_op_of(data->cmd_flags) != REQ_OP_FLUSH &&
		    bio_op_of(data->cmd_flags) < REQ_OP_DRV_IN)
			flags |= RQF_USE_SCHED;
	} else if (data->hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED) {
		/* a driver tag of a shared set counts toward our fair share */
		flags |= RQF_MQ_INFLIGHT;
	}
	if (data->flags & BLK_MQ_REQ_PM)
		flags |= RQF_PM;
	if (data->flags & BLK_MQ_REQ_RESERVED)
		flags |= RQF_RESV;
	if (blk_queue_io_stat(data->q))
		flags |= RQF_IO_STAT;
	return flags;
}

/*
 * What the kernel's blk_mq_rq_ctx_init() sets; the rest is set on the
 * way (bio, sector and length by blk_rq_bio_prep(), the I/O start by
 * blk_mq_start_request()) or left clean when the request was freed
 * (->ioc, ->state, the flush fields).
 */
static inline struct request *
blk_mq_rq_ctx_init(const struct blk_mq_alloc_data *data,
		   struct blk_mq_tags *tags, unsigned int tag,
		   uint32_t rq_flags)
{
	struct request *rq = tags->static_rqs[tag];

	rq->q = data->q;
	rq->mq_ctx = data->ctx;
	rq->mq_hctx = data->hctx;
	rq->cmd_flags = data->cmd_flags;
	rq->rq_flags = rq_flags;
	if (rq_flags & RQF_SCHED_TAGS) {
		rq->tag = BLK_MQ_NO_TAG;
		rq->internal_tag = (int)tag;
		/* the elevator's fields: only its requests use them */
		INIT_LIST_HEAD(&rq->hash);
		INIT_LIST_HEAD(&rq->elv.list);
		rq->elv.priv[0] = rq->elv.priv[1] = rq->elv.priv[2] = NULL;
	} else {
		rq->tag = (int)tag;
		rq->internal_tag = BLK_MQ_NO_TAG;
		if (rq_flags & RQF_MQ_INFLIGHT)
			atomic_fetch_add_explicit(
				blk_mq_active_counter(data->hctx), 1,
				memory_order_relaxed);
		atomic_store_explicit(&tags->rqs[tag], rq,
				      memory_order_release);
	}
	rq->timeout = 0;
	INIT_LIST_HEAD(&rq->queuelist);
	/* start_time_ns: when it is handed out (blk_mq_use_cached_rq) */
	rq->io_start_time_ns = 0;
	rq->deadline = 0;
	rq->nr_phys_segments = 0;
	rq->stats_sectors = 0;
	rq->mq_cpu = (int)data->ctx->cpu;
	rq->end_io = NULL;
	rq->end_io_data = NULL;
	/*
	 * Release: a busy-tag iterator that takes a reference (bt_iter)
	 * then sees the fields set above, not the previous user's.
	 */
	atomic_store_explicit(&rq->ref, 1, memory_order_release);
	return rq;
}

/* Scheduler hooks run once the request knows its issuer. */
static void blk_mq_rq_sched_prepare(struct request *rq)
{
	struct elevator_queue *e = rq->q->elevator;

	if (!(rq->rq_flags & RQF_USE_SCHED))
		return;
	if (e->type->ops.prepare_request) {
		e->type->ops.prepare_request(rq);
		rq->rq_flags |= RQF_ELV;
	}
}

/*
 * Allocate data->nr_tags requests with one tag-map operation; the first
 * is returned, the rest wait in the plug's cache (each holding a queue
 * usage reference, as the first does).
 */
static struct request *
__blk_mq_alloc_requests_batch(struct blk_mq_alloc_data *data)
{
	struct blk_mq_tags *tags = data->q->elevator ? data->hctx->sched_tags :
						       data->hctx->tags;
	struct blk_mq_alloc_data d;
	unsigned long tag_mask;
	unsigned int tag_offset, i, nr = 0;
	uint32_t rq_flags;
	struct request *rq, *list;

	tag_mask = blk_mq_get_tags(data, (int)data->nr_tags, &tag_offset);
	if (!tag_mask)
		return NULL;
	rq_flags = blk_mq_alloc_rq_flags(data);
	/*
	 * Locals, which the stores into the requests cannot alias: the
	 * loop then keeps them in registers instead of reloading them.
	 */
	d = *data;
	list = *data->cached_rq;
	do {
		i = (unsigned int)__builtin_ctzl(tag_mask);
		tag_mask &= tag_mask - 1;
		rq = blk_mq_rq_ctx_init(&d, tags, tag_offset + i, rq_flags);
		rq->rq_next = list;
		list = rq;
		nr++;
	} while (tag_mask);
	if (nr > 1)
		percpu_ref_get_many(&data->q->q_usage_counter, (long)nr - 1);
	data->nr_tags -= min(nr, data->nr_tags);
	*data->cached_rq = list->rq_next;
	rq = list;
	rq->rq_next = NULL;
	rq->start_time_ns = blk_time_get_ns();
	return rq;
}

static struct request *__blk_mq_alloc_requests(struct blk_mq_alloc_data *data)
{
	struct request_queue *q = data->q;
	struct elevator_queue *e = q->elevator;
	struct blk_mq_tags *tags;
	struct request *rq;
	int tag;

	if (data->cmd_flags & REQ_NOWAIT)
		data->flags |= BLK_MQ_REQ_NOWAIT;
	if (!data->ctx)
		data->ctx = blk_mq_get_ctx(q);
retry:
	data->hctx = blk_mq_map_queue(q, data->cmd_flags, data->ctx);
	if (e) {
		/*
		 * Flushes and passthrough go around the scheduler; reserved
		 * tags are not limited.
		 */
		if (bio_op_of(data->cmd_flags) != REQ_OP_FLUSH &&
		    bio_op_of(data->cmd_flags) < REQ_OP_DRV_IN &&
		    e->type->ops.limit_depth &&
		    !(data->flags & BLK_MQ_REQ_RESERVED))
			e->type->ops.limit_depth(data->cmd_flags, data);
	} else {
		blk_mq_tag_busy(data->hctx);
	}
	/*
	 * Scheduler tags too, as the kernel's: blk_mq_get_tags() refuses
	 * a batch when the elevator limited the depth (async requests),
	 * so only those the scheduler lets take every tag come in batches.
	 */
	if (data->nr_tags > 1) {
		rq = __blk_mq_alloc_requests_batch(data);
		if (rq)
			return rq;
	}
	tag = blk_mq_get_tag(data);
	if (tag == BLK_MQ_NO_TAG) {
		if (data->flags & BLK_MQ_REQ_NOWAIT)
			return NULL;
		/* the hctx went inactive under us: map again */
		data->ctx = blk_mq_get_ctx(q);
		goto retry;
	}
	tags = e ? data->hctx->sched_tags : data->hctx->tags;
	rq = blk_mq_rq_ctx_init(data, tags, (unsigned int)tag,
				blk_mq_alloc_rq_flags(data));
	rq->rq_next = NULL;
	rq->start_time_ns = blk_time_get_ns();
	return rq;
}

struct request *blk_mq_alloc_request(struct request_queue *q, blk_opf_t opf,
				     unsigned int flags)
{
	struct blk_mq_alloc_data data = {
		.q = q,
		.flags = flags,
		.cmd_flags = opf,
	};
	struct request *rq;

	/* the kernel would retry forever: say no instead */
	if ((flags & BLK_MQ_REQ_RESERVED) && !q->tag_set->reserved_tags) {
		blk_err(-EINVAL, "reserved request: the tag set has no "
			"reserved tags");
		return NULL;
	}
	if (blk_queue_enter(q, flags))
		return NULL;
	rq = __blk_mq_alloc_requests(&data);
	if (!rq) {
		blk_queue_exit(q);
		return NULL;
	}
	/* no bio: what blk_rq_bio_prep() would set */
	rq->__sector = 0;
	rq->__data_len = 0;
	rq->bio = rq->biotail = NULL;
	rq->ioprio = 0;
	return rq;
}

/* ---- freeing ---- */

static inline void __blk_mq_free_request(struct request *rq)
{
	struct request_queue *q = rq->q;
	struct blk_mq_ctx *ctx = rq->mq_ctx;
	struct blk_mq_hw_ctx *hctx = rq->mq_hctx;
	const int sched_tag = rq->internal_tag;

	if (rq->ioc) {
		put_io_context(rq->ioc);
		rq->ioc = NULL;
	}
	if (rq->tag != BLK_MQ_NO_TAG) {
		atomic_store_explicit(&hctx->tags->rqs[rq->tag], NULL,
				      memory_order_relaxed);
		blk_mq_put_tag(hctx->tags, ctx, (unsigned int)rq->tag);
	}
	if (sched_tag != BLK_MQ_NO_TAG)
		blk_mq_put_tag(hctx->sched_tags, ctx, (unsigned int)sched_tag);
	blk_mq_sched_restart(hctx);
	blk_queue_exit(q);
}

static void blk_mq_dec_active(struct request *rq)
{
	if (rq->rq_flags & RQF_MQ_INFLIGHT) {
		rq->rq_flags &= ~RQF_MQ_INFLIGHT;
		atomic_fetch_sub_explicit(blk_mq_active_counter(rq->mq_hctx), 1,
					  memory_order_relaxed);
	}
}

/* blk_mq_free_request(), inline for the completion path below */
static inline void blk_mq_finish_and_free(struct request *rq)
{
	if (rq->rq_flags & RQF_ELV) {
		struct elevator_queue *e = rq->q->elevator;

		if (e->type->ops.finish_request)
			e->type->ops.finish_request(rq);
	}
	blk_mq_dec_active(rq);
	atomic_store_explicit(&rq->state, MQ_RQ_IDLE, memory_order_release);
	if (atomic_fetch_sub_explicit(&rq->ref, 1, memory_order_acq_rel) == 1)
		__blk_mq_free_request(rq);
}

void blk_mq_free_request(struct request *rq)
{
	blk_mq_finish_and_free(rq);
}

/* A time-out scan held a reference and dropped the last one. */
void blk_mq_put_rq_ref(struct request *rq)
{
	if (atomic_fetch_sub_explicit(&rq->ref, 1, memory_order_acq_rel) == 1)
		__blk_mq_free_request(rq);
}

/* Requests a plug allocated ahead and did not use. */
void blk_mq_free_cached_rqs(struct blk_plug *plug)
{
	struct request *rq;

	while ((rq = plug->cached_rq)) {
		plug->cached_rq = rq->rq_next;
		rq->rq_next = NULL;
		blk_mq_free_request(rq);
	}
}

/*
 * A request from the plug's cache fits @opf if it is for @q and the
 * hardware queue type @opf would map to (reads may use a default queue).
 */
static struct request *blk_mq_peek_cached_request(struct blk_plug *plug,
						  struct request_queue *q,
						  blk_opf_t opf)
{
	struct request *rq = plug ? plug->cached_rq : NULL;
	enum hctx_type type, have;

	if (!rq || rq->q != q)
		return NULL;
	type = (opf & REQ_POLLED) ? HCTX_TYPE_POLL :
	       (opf & REQ_OP_MASK) == REQ_OP_READ ? HCTX_TYPE_READ :
						    HCTX_TYPE_DEFAULT;
	have = (enum hctx_type)rq->mq_hctx->type;
	if (type != have &&
	    (type != HCTX_TYPE_READ || have != HCTX_TYPE_DEFAULT))
		return NULL;
	if (op_is_flush(opf))
		return NULL;
	return rq;
}

static void blk_mq_use_cached_rq(struct request *rq, struct blk_plug *plug,
				 struct bio *bio)
{
	plug->cached_rq = rq->rq_next;
	rq->rq_next = NULL;
	rq->cmd_flags = bio->bi_opf;
	rq->start_time_ns = blk_time_get_ns();
	/* ->queuelist: still empty from blk_mq_rq_ctx_init() */
}

/* ---- completion ---- */

/*
 * Complete @nr_bytes of @rq's bios. Bios fully done are ended (except
 * inside a flush sequence, which ends them at the end of the sequence).
 * Returns true if bytes remain.
 */
static inline bool __blk_update_request(struct request *rq,
					blk_status_t error,
					unsigned int nr_bytes)
{
	unsigned int total = nr_bytes;

	trace_block_rq_complete(rq, error, nr_bytes);
	if (!rq->bio)
		return false;
	blk_account_io_completion(rq, nr_bytes);
	if (unlikely(error) && !blk_rq_is_passthrough(rq))
		pr_debug("%s: %s error, sector %llu op %s",
			 rq->q->disk ? rq->q->disk->disk_name : "?",
			 blk_status_to_str(error),
			 (unsigned long long)blk_rq_pos(rq),
			 blk_op_str(req_op(rq)));
	while (rq->bio) {
		struct bio *bio = rq->bio;
		unsigned int bio_bytes = min(bio->bi_iter.bi_size, nr_bytes);

		if (error)
			bio->bi_status = error;
		if (bio_bytes == bio->bi_iter.bi_size)
			rq->bio = bio->bi_next;
		bio_advance(bio, bio_bytes);
		nr_bytes -= bio_bytes;
		if (bio->bi_iter.bi_size == 0) {
			bio->bi_next = NULL;
			bio_endio(bio);
		}
		if (!nr_bytes)
			break;
	}
	if (!rq->bio) {
		rq->__data_len = 0;
		return false;
	}
	rq->__data_len -= total;
	rq->__sector += total >> SECTOR_SHIFT;
	return true;
}

bool blk_update_request(struct request *rq, blk_status_t error,
			unsigned int nr_bytes)
{
	return __blk_update_request(rq, error, nr_bytes);
}

/* __blk_mq_end_request(), inline for blk_mq_end_request() */
static inline void blk_mq_end_request_common(struct request *rq,
					     blk_status_t error)
{
	uint64_t now = 0;

	if (rq->rq_flags & RQF_IO_STAT) {
		now = blk_time_get_ns();
		blk_account_io_done(rq, now);
	}
	/* a flush step is not the end: the sequence ends it once, later */
	if ((rq->rq_flags & (RQF_ELV | RQF_FLUSH_SEQ)) == RQF_ELV) {
		struct elevator_queue *e = rq->q->elevator;

		if (e->type->ops.completed_request)
			e->type->ops.completed_request(rq, now ? now :
						       ktime_get_ns());
	}
	if (rq->end_io) {
		if (rq->end_io(rq, error) == RQ_END_IO_FREE)
			blk_mq_finish_and_free(rq);
	} else {
		blk_mq_finish_and_free(rq);
	}
}

void __blk_mq_end_request(struct request *rq, blk_status_t error)
{
	blk_mq_end_request_common(rq, error);
}

void blk_mq_end_request(struct request *rq, blk_status_t error)
{
	/* a flush sequence step: the flush machinery ends the bios later */
	bool more = !(rq->rq_flags & RQF_FLUSH_SEQ) &&
		    __blk_update_request(rq, error, blk_rq_bytes(rq));

	BUG_ON_QUEUE(more, rq->q);
	blk_mq_end_request_common(rq, error);
}

bool blk_mq_mark_complete(struct request *rq)
{
	int expected = MQ_RQ_IN_FLIGHT;

	/* first of completion and time-out wins; the other is ignored */
	return atomic_compare_exchange_strong(&rq->state, &expected,
					      MQ_RQ_COMPLETE);
}

bool blk_mq_complete_request(struct request *rq)
{
	if (!blk_mq_mark_complete(rq))
		return false;
	if (WARN_ON_ONCE(!rq->q->mq_ops->complete))
		blk_mq_end_request(rq, BLK_STS_OK);
	else
		rq->q->mq_ops->complete(rq);
	return true;
}

static void blk_mq_flush_tag_batch(struct blk_mq_hw_ctx *hctx, int *tags,
				   int nr_tags)
{
	struct request_queue *q = hctx->queue;

	blk_mq_put_tags(hctx->tags, tags, nr_tags);
	blk_mq_sched_restart(hctx);
	percpu_ref_put_many(&q->q_usage_counter, nr_tags);
}

/*
 * All of @rq is done, without error (the kernel's blk_complete_request()):
 * its bios end as they are, none is advanced first.
 */
static inline void blk_complete_request(struct request *rq)
{
	struct bio *bio = rq->bio;

	rq->bio = NULL;
	rq->__data_len = 0;
	while (bio) {
		struct bio *next = bio->bi_next;

		bio->bi_next = NULL;
		bio_endio(bio);
		bio = next;
	}
}

/* The rest of ending @rq of a batch; true if its tag is ours to free. */
static inline bool blk_mq_end_batched_rq(struct request *rq, uint64_t now)
{
	blk_complete_request(rq);
	if (rq->rq_flags & RQF_ELV) {
		struct elevator_queue *e = rq->q->elevator;

		if (e->type->ops.completed_request)
			e->type->ops.completed_request(rq, now);
		if (e->type->ops.finish_request)
			e->type->ops.finish_request(rq);
	}
	blk_mq_dec_active(rq);
	atomic_store_explicit(&rq->state, MQ_RQ_IDLE, memory_order_release);
	if (atomic_fetch_sub_explicit(&rq->ref, 1, memory_order_acq_rel) != 1)
		return false;
	/* scheduler-tagged requests take the ordinary path */
	if (rq->internal_tag != BLK_MQ_NO_TAG || rq->ioc ||
	    rq->tag == BLK_MQ_NO_TAG) {
		__blk_mq_free_request(rq);
		return false;
	}
	return true;
}

/*
 * End a batch of successfully completed requests. The batch is accounted
 * first, in one go per disk and direction (so that, as for a request
 * ended alone, its bios' end_io sees the I/O out of in_flight); then the
 * bios end, and the driver tags and queue references of each hctx go
 * back in one operation each.
 */
void blk_mq_end_request_batch(struct io_comp_batch *iob)
{
	int tags[TAG_COMP_BATCH], nr_tags = 0;
	struct blk_mq_hw_ctx *cur_hctx = NULL;
	uint64_t now = iob->need_ts ? blk_time_get_ns() : 0;
	struct blk_acct_batch acct = { .nr = 0 };
	struct request *rq;

	for (rq = iob->req_list; rq; rq = rq->rq_next) {
		trace_block_rq_complete(rq, BLK_STS_OK, blk_rq_bytes(rq));
		blk_acct_batch_add(&acct, rq, rq->bio ? blk_rq_bytes(rq) : 0,
				   now);
	}
	blk_acct_batch_flush(&acct, now);

	while ((rq = iob->req_list)) {
		iob->req_list = rq->rq_next;
		rq->rq_next = NULL;
		if (!blk_mq_end_batched_rq(rq, now))
			continue;
		if (nr_tags == TAG_COMP_BATCH || cur_hctx != rq->mq_hctx) {
			if (cur_hctx)
				blk_mq_flush_tag_batch(cur_hctx, tags, nr_tags);
			nr_tags = 0;
			cur_hctx = rq->mq_hctx;
		}
		atomic_store_explicit(&cur_hctx->tags->rqs[rq->tag], NULL,
				      memory_order_relaxed);
		tags[nr_tags++] = rq->tag;
	}
	if (nr_tags)
		blk_mq_flush_tag_batch(cur_hctx, tags, nr_tags);
}

int blk_mq_poll_hctx(struct blk_mq_hw_ctx *hctx)
{
	struct request_queue *q = hctx->queue;
	DEFINE_IO_COMP_BATCH(iob);
	int ret;

	if (!q->mq_ops->poll)
		return 0;
	ret = q->mq_ops->poll(hctx, &iob);
	if (iob.req_list)
		iob.complete(&iob);
	return ret;
}

/* ---- starting and requeueing ---- */

void blk_mq_start_request(struct request *rq)
{
	__blk_mq_start_request(rq);
}

static void __blk_mq_requeue_request(struct request *rq)
{
	blk_mq_put_driver_tag(rq);
	trace_block_rq_requeue(rq);
	atomic_fetch_add_explicit(&rq->mq_hctx->requeued, 1,
				  memory_order_relaxed);
	if (blk_mq_rq_state(rq) != MQ_RQ_IDLE) {
		atomic_store_explicit(&rq->state, MQ_RQ_IDLE,
				      memory_order_release);
		rq->rq_flags &= ~RQF_TIMED_OUT;
	}
}

void blk_mq_requeue_request(struct request *rq, bool kick)
{
	struct request_queue *q = rq->q;
	struct elevator_queue *e = q->elevator;

	__blk_mq_requeue_request(rq);
	atomic_fetch_add_explicit(&q->nr_requeues, 1, memory_order_relaxed);
	if ((rq->rq_flags & RQF_ELV) && e->type->ops.requeue_request)
		e->type->ops.requeue_request(rq);
	pthread_spin_lock(&q->requeue_lock);
	list_add_tail(&rq->queuelist, &q->requeue_list);
	pthread_spin_unlock(&q->requeue_lock);
	if (kick)
		blk_mq_kick_requeue_list(q);
}

void blk_mq_kick_requeue_list(struct request_queue *q)
{
	kblockd_mod_delayed_work(&q->requeue_work, 0);
}

void blk_mq_delay_kick_requeue_list(struct request_queue *q,
				    unsigned long msecs)
{
	kblockd_mod_delayed_work(&q->requeue_work, msecs);
}

void blk_mq_requeue_work(struct work_struct *work)
{
	struct request_queue *q = container_of(work, struct request_queue,
					       requeue_work.work);
	LIST_HEAD(rq_list);
	struct request *rq, *next;

	pthread_spin_lock(&q->requeue_lock);
	list_splice_init(&q->requeue_list, &rq_list);
	pthread_spin_unlock(&q->requeue_lock);
	pthread_rwlock_rdlock(&q->hctx_lock);

	list_for_each_entry_safe(rq, next, &rq_list, queuelist) {
		list_del_init(&rq->queuelist);
		/* flush steps go first; prepared ones skip the scheduler */
		if (rq->rq_flags & RQF_FLUSH_SEQ)
			blk_mq_request_bypass_insert(rq, true, false);
		else if (rq->rq_flags & RQF_DONTPREP)
			blk_mq_request_bypass_insert(rq, false, false);
		else
			blk_mq_insert_request(rq, true, false, false);
	}
	blk_mq_run_hw_queues(q, false);
	pthread_rwlock_unlock(&q->hctx_lock);
}

/* ---- insertion ---- */

static void blk_mq_hctx_mark_pending(struct blk_mq_hw_ctx *hctx,
				     struct blk_mq_ctx *ctx)
{
	unsigned int bit = ctx->index_hw[hctx->type];

	if (!sbitmap_test_bit(&hctx->ctx_map, bit))
		sbitmap_set_bit(&hctx->ctx_map, bit);
}

static void blk_mq_hctx_clear_pending(struct blk_mq_hw_ctx *hctx,
				      struct blk_mq_ctx *ctx)
{
	sbitmap_clear_bit(&hctx->ctx_map, ctx->index_hw[hctx->type]);
}

/* Put @rq straight on the hctx dispatch list (no scheduler, no ctx). */
void blk_mq_request_bypass_insert(struct request *rq, bool at_head, bool run)
{
	struct blk_mq_hw_ctx *hctx = rq->mq_hctx;

	pthread_spin_lock(&hctx->lock);
	if (at_head)
		list_add(&rq->queuelist, &hctx->dispatch);
	else
		list_add_tail(&rq->queuelist, &hctx->dispatch);
	__hctx_dispatch_update(hctx);
	pthread_spin_unlock(&hctx->lock);
	if (run)
		blk_mq_run_hw_queue(hctx, false);
}

static void blk_mq_insert_ctx_list(struct blk_mq_hw_ctx *hctx,
				   struct blk_mq_ctx *ctx,
				   struct list_head *list, bool at_head)
{
	struct request *rq;
	unsigned long n = 0;

	list_for_each_entry(rq, list, queuelist) {
		BUG_ON_QUEUE(rq->mq_ctx != ctx, hctx->queue);
		trace_block_rq_insert(rq);
		n++;
	}
	pthread_spin_lock(&ctx->lock);
	if (at_head)
		list_splice_init(list, &ctx->rq_lists[hctx->type]);
	else
		list_splice_tail_init(list, &ctx->rq_lists[hctx->type]);
	blk_mq_hctx_mark_pending(hctx, ctx);
	pthread_spin_unlock(&ctx->lock);
	atomic_fetch_add_explicit(&hctx->queued, n, memory_order_relaxed);
}

/*
 * Insert one request where it belongs: the flush machinery's requests go
 * to the dispatch list, others to the scheduler or the CPU's ctx list.
 */
void blk_mq_insert_request(struct request *rq, bool at_head, bool run,
			   bool async)
{
	struct request_queue *q = rq->q;
	struct blk_mq_hw_ctx *hctx = rq->mq_hctx;
	LIST_HEAD(list);

	if (blk_rq_is_passthrough(rq) || (rq->rq_flags & RQF_FLUSH_SEQ)) {
		trace_block_rq_insert(rq);
		blk_mq_request_bypass_insert(rq, at_head, false);
	} else if (q->elevator && (rq->rq_flags & RQF_USE_SCHED)) {
		trace_block_rq_insert(rq);
		list_add(&rq->queuelist, &list);
		q->elevator->type->ops.insert_requests(hctx, &list, at_head);
		atomic_fetch_add_explicit(&hctx->queued, 1,
					  memory_order_relaxed);
	} else {
		list_add(&rq->queuelist, &list);
		blk_mq_insert_ctx_list(hctx, rq->mq_ctx, &list, at_head);
	}
	if (run)
		blk_mq_run_hw_queue(hctx, async);
}

/* ---- dispatch ---- */

bool blk_mq_hctx_has_pending(struct blk_mq_hw_ctx *hctx)
{
	struct elevator_queue *e = hctx->queue->elevator;

	return hctx_dispatch_busy_list(hctx) ||
	       sbitmap_any_bit_set(&hctx->ctx_map) ||
	       (e && e->type->ops.has_work(hctx));
}

struct flush_busy_ctx_data {
	struct blk_mq_hw_ctx *hctx;
	struct list_head *list;
};

static bool flush_busy_ctx(struct sbitmap *sb, unsigned int bitnr, void *data)
{
	struct flush_busy_ctx_data *flush_data = data;
	struct blk_mq_hw_ctx *hctx = flush_data->hctx;
	struct blk_mq_ctx *ctx = hctx->ctxs[bitnr];
	enum hctx_type type = hctx->type;

	pthread_spin_lock(&ctx->lock);
	list_splice_tail_init(&ctx->rq_lists[type], flush_data->list);
	sbitmap_clear_bit(sb, bitnr);
	pthread_spin_unlock(&ctx->lock);
	return true;
}

/* Move every request of every busy ctx of @hctx to @list. */
void blk_mq_flush_busy_ctxs(struct blk_mq_hw_ctx *hctx, struct list_head *list)
{
	struct flush_busy_ctx_data data = { .hctx = hctx, .list = list };

	sbitmap_for_each_set(&hctx->ctx_map, flush_busy_ctx, &data);
}

/* Take one request from the ctxs of @hctx, starting at @start. */
struct request *blk_mq_dequeue_from_ctx(struct blk_mq_hw_ctx *hctx,
					struct blk_mq_ctx *start)
{
	unsigned int first = start ? start->index_hw[hctx->type] : 0;
	struct request *rq = NULL;

	for (unsigned int i = 0; i < hctx->nr_ctx && !rq; i++) {
		unsigned int idx = (first + i) % hctx->nr_ctx;
		struct blk_mq_ctx *ctx = hctx->ctxs[idx];
		struct list_head *l = &ctx->rq_lists[hctx->type];

		if (!sbitmap_test_bit(&hctx->ctx_map, idx))
			continue;
		pthread_spin_lock(&ctx->lock);
		if (!list_empty(l)) {
			rq = list_first_entry(l, struct request, queuelist);
			list_del_init(&rq->queuelist);
		}
		if (list_empty(l))
			blk_mq_hctx_clear_pending(hctx, ctx);
		pthread_spin_unlock(&ctx->lock);
	}
	return rq;
}

static int blk_mq_get_dispatch_budget(struct request_queue *q)
{
	if (q->mq_ops->get_budget)
		return q->mq_ops->get_budget(q) ? 0 : -1;
	return 0;
}

static void blk_mq_put_dispatch_budget(struct request_queue *q)
{
	if (q->mq_ops->put_budget)
		q->mq_ops->put_budget(q);
}

/*
 * Driver tag for a request allocated from sched_tags (or re-tag after a
 * requeue). Shared tag sets are fair-shared with hctx_may_queue().
 */
bool __blk_mq_get_driver_tag(struct blk_mq_hw_ctx *hctx, struct request *rq)
{
	struct blk_mq_tags *tags = hctx->tags;
	struct sbitmap_queue *bt = &tags->bitmap_tags;
	unsigned int offset = tags->nr_reserved_tags;
	int tag;

	blk_mq_tag_busy(hctx);
	if (rq->rq_flags & RQF_RESV) {
		bt = &tags->breserved_tags;
		offset = 0;
	} else if (!hctx_may_queue(hctx, bt)) {
		return false;
	}
	tag = __sbitmap_queue_get(bt);
	if (tag < 0)
		return false;
	rq->tag = tag + (int)offset;
	if (hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED) {
		rq->rq_flags |= RQF_MQ_INFLIGHT;
		atomic_fetch_add_explicit(blk_mq_active_counter(hctx), 1,
					  memory_order_relaxed);
	}
	atomic_store_explicit(&tags->rqs[rq->tag], rq, memory_order_release);
	return true;
}

bool blk_mq_get_driver_tag(struct request *rq)
{
	if (rq->tag == BLK_MQ_NO_TAG)
		return __blk_mq_get_driver_tag(rq->mq_hctx, rq);
	/* a flush request borrows its tag: claim the slot for lookups */
	atomic_store_explicit(&rq->mq_hctx->tags->rqs[rq->tag], rq,
			      memory_order_release);
	return true;
}

/* Give back a driver tag taken at dispatch (scheduler requests only). */
void blk_mq_put_driver_tag(struct request *rq)
{
	struct blk_mq_hw_ctx *hctx = rq->mq_hctx;

	if (rq->tag == BLK_MQ_NO_TAG || rq->internal_tag == BLK_MQ_NO_TAG)
		return;
	atomic_store_explicit(&hctx->tags->rqs[rq->tag], NULL,
			      memory_order_relaxed);
	blk_mq_put_tag(hctx->tags, rq->mq_ctx, (unsigned int)rq->tag);
	rq->tag = BLK_MQ_NO_TAG;
	blk_mq_dec_active(rq);
}

static bool blk_mq_dispatch_wake(struct sbq_wait *wait)
{
	struct blk_mq_hw_ctx *hctx = wait->private;

	atomic_store(&hctx->dispatch_wait_active, 0);
	blk_mq_run_hw_queue(hctx, true);
	return true;
}

/*
 * No driver tag: make sure something reruns us once one frees. For an
 * unshared tag map the SCHED_RESTART bit does (our own completions); a
 * shared map may be drained by other queues, so wait on its wait queue.
 * Returns true if a tag was had after all.
 */
static bool blk_mq_mark_tag_wait(struct blk_mq_hw_ctx *hctx,
				 struct request *rq)
{
	struct sbitmap_queue *sbq = &hctx->tags->bitmap_tags;
	bool ret;

	if (!(hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED)) {
		blk_mq_sched_mark_restart_hctx(hctx);
		/* a tag freed between our try and the mark is caught here */
		return blk_mq_get_driver_tag(rq);
	}
	if (atomic_exchange(&hctx->dispatch_wait_active, 1))
		return false;	/* already waiting */
	hctx->dispatch_wait.func = blk_mq_dispatch_wake;
	hctx->dispatch_wait.private = hctx;
	sbitmap_add_wait_queue(sbq, sbq_wait_ptr(sbq, &sbq->wake_index),
			       &hctx->dispatch_wait);
	ret = blk_mq_get_driver_tag(rq);
	if (ret) {
		sbitmap_del_wait_queue(&hctx->dispatch_wait);
		atomic_store(&hctx->dispatch_wait_active, 0);
	}
	return ret;
}

/* EWMA of "the driver was busy", in 1/16 units (kernel: weight 8, 4 bits) */
#define BLK_MQ_DISPATCH_BUSY_EWMA_WEIGHT 8
#define BLK_MQ_DISPATCH_BUSY_EWMA_FACTOR 4
static void blk_mq_update_dispatch_busy(struct blk_mq_hw_ctx *hctx, bool busy)
{
	unsigned int ewma = atomic_load_explicit(&hctx->dispatch_busy,
						 memory_order_relaxed);

	if (!ewma && !busy)
		return;
	ewma *= BLK_MQ_DISPATCH_BUSY_EWMA_WEIGHT - 1;
	if (busy)
		ewma += 1 << BLK_MQ_DISPATCH_BUSY_EWMA_FACTOR;
	ewma /= BLK_MQ_DISPATCH_BUSY_EWMA_WEIGHT;
	atomic_store_explicit(&hctx->dispatch_busy, ewma,
			      memory_order_relaxed);
}

enum prep_dispatch {
	PREP_DISPATCH_OK,
	PREP_DISPATCH_NO_TAG,
	PREP_DISPATCH_NO_BUDGET,
};

static enum prep_dispatch blk_mq_prep_dispatch_rq(struct request *rq,
						  bool need_budget)
{
	struct blk_mq_hw_ctx *hctx = rq->mq_hctx;

	if (need_budget && blk_mq_get_dispatch_budget(rq->q) < 0)
		return PREP_DISPATCH_NO_BUDGET;
	if (!blk_mq_get_driver_tag(rq) && !blk_mq_mark_tag_wait(hctx, rq)) {
		if (need_budget)
			blk_mq_put_dispatch_budget(rq->q);
		return PREP_DISPATCH_NO_TAG;
	}
	return PREP_DISPATCH_OK;
}

static void blk_mq_count_dispatch(struct blk_mq_hw_ctx *hctx,
				  unsigned int queued)
{
	/* bucket 0: nothing; then 1, 2-3, 4-7, ... 32+ (debugfs "dispatched") */
	unsigned int b = queued ? 1 + (31 - (unsigned int)__builtin_clz(queued)) : 0;

	if (b >= ARRAY_SIZE(hctx->dispatched))
		b = ARRAY_SIZE(hctx->dispatched) - 1;
	atomic_fetch_add_explicit(&hctx->dispatched[b], 1,
				  memory_order_relaxed);
}

/*
 * Send the requests on @list to the driver. Returns true if all went;
 * otherwise the rest is parked on hctx->dispatch and a rerun is arranged:
 * right away if nothing else will, after a delay for BLK_STS_RESOURCE,
 * or by the next completion (SCHED_RESTART).
 */
bool blk_mq_dispatch_rq_list(struct blk_mq_hw_ctx *hctx,
			     struct list_head *list, unsigned int nr_budgets)
{
	struct request_queue *q = hctx->queue;
	enum prep_dispatch prep = PREP_DISPATCH_OK;
	blk_status_t ret = BLK_STS_OK;
	bool needs_resource = false;
	unsigned int queued = 0;
	struct request *rq;

	if (list_empty(list))
		return false;
	do {
		struct blk_mq_queue_data bd;

		rq = list_first_entry(list, struct request, queuelist);
		WARN_ON_ONCE(hctx != rq->mq_hctx);
		prep = blk_mq_prep_dispatch_rq(rq, !nr_budgets);
		if (prep != PREP_DISPATCH_OK)
			break;
		list_del_init(&rq->queuelist);
		bd.rq = rq;
		bd.last = list_empty(list);
		if (nr_budgets)
			nr_budgets--;
		ret = q->mq_ops->queue_rq(hctx, &bd);
		switch (ret) {
		case BLK_STS_OK:
			queued++;
			break;
		case BLK_STS_RESOURCE:
			needs_resource = true;
			/* fallthrough */
		case BLK_STS_DEV_RESOURCE:
			list_add(&rq->queuelist, list);
			__blk_mq_requeue_request(rq);
			blk_mq_put_dispatch_budget(q);
			goto out;
		default:
			blk_mq_end_request(rq, ret);
		}
	} while (!list_empty(list));
out:
	blk_mq_count_dispatch(hctx, queued);
	/* we told the driver more was coming; it was not */
	if ((!list_empty(list) || ret != BLK_STS_OK) &&
	    q->mq_ops->commit_rqs && queued)
		q->mq_ops->commit_rqs(hctx);
	if (!list_empty(list)) {
		bool needs_restart;
		bool no_tag = prep == PREP_DISPATCH_NO_TAG &&
			      (hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED);

		while (nr_budgets--)
			blk_mq_put_dispatch_budget(q);
		pthread_spin_lock(&hctx->lock);
		list_splice_tail_init(list, &hctx->dispatch);
		__hctx_dispatch_update(hctx);
		pthread_spin_unlock(&hctx->lock);
		/*
		 * Order the splice before reading SCHED_RESTART: a completion
		 * clears the bit then looks at the dispatch list.
		 */
		smp_mb();
		needs_restart = blk_mq_sched_needs_restart(hctx);
		if (prep == PREP_DISPATCH_NO_BUDGET)
			needs_resource = true;
		if (!needs_restart ||
		    (no_tag && !atomic_load(&hctx->dispatch_wait_active)))
			blk_mq_run_hw_queue(hctx, true);
		else if (needs_resource)
			blk_mq_delay_run_hw_queue(hctx, BLK_MQ_RESOURCE_DELAY);
		blk_mq_update_dispatch_busy(hctx, true);
		return false;
	}
	blk_mq_update_dispatch_busy(hctx, false);
	return true;
}

/* ---- queue runs ---- */

/*
 * Dispatch sections are counted so quiesce can wait for them to end; a
 * section that starts after quiesce sees the flag and dispatches nothing.
 */
static bool blk_mq_dispatch_enter(struct request_queue *q);
static void blk_mq_dispatch_exit(struct request_queue *q);

static void __blk_mq_run_hw_queue(struct blk_mq_hw_ctx *hctx)
{
	struct request_queue *q = hctx->queue;

	if (!blk_mq_dispatch_enter(q))
		return;
	blk_mq_sched_dispatch_requests(hctx);
	blk_mq_dispatch_exit(q);
}

/*
 * Callers may no longer own a request of @hctx (a submitter kicks the
 * queue after inserting its request, which may already have completed):
 * the scheduler may be switching or the hctxs changing meanwhile, so
 * even has_pending is looked at only inside a dispatch section, which
 * quiesce waits out (the kernel runs it under RCU for the same reason).
 *
 * A quiesced queue is rerun by unquiesce, which runs only the hctxs it
 * finds work on. A caller that inserted, then found the queue quiesced,
 * must have its request seen by that look: the barrier orders the
 * insertion before a second try to enter, and pairs with the one in
 * blk_mq_unquiesce_queue() between reviving dispatch and the look. So
 * either the second try gets in, or unquiesce sees the request. (The
 * kernel rechecks under the queue lock unquiesce takes.)
 */
void blk_mq_run_hw_queue(struct blk_mq_hw_ctx *hctx, bool async)
{
	struct request_queue *q = hctx->queue;
	bool need_run;

	if (unlikely(blk_mq_hctx_stopped(hctx)))
		return;
	if (unlikely(!blk_mq_dispatch_enter(q))) {
		smp_mb();
		if (!blk_mq_dispatch_enter(q))
			return;
	}
	need_run = blk_mq_hctx_has_pending(hctx);
	if (need_run && !async)
		blk_mq_sched_dispatch_requests(hctx);
	blk_mq_dispatch_exit(q);
	if (need_run && async)
		kblockd_mod_delayed_work(&hctx->run_work, 0);
}

void blk_mq_run_hw_queues(struct request_queue *q, bool async)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	queue_for_each_hw_ctx(q, hctx, i) {
		if (hctx_test_bit(BLK_MQ_S_INACTIVE, hctx))
			continue;
		blk_mq_run_hw_queue(hctx, async);
	}
}

void blk_mq_delay_run_hw_queue(struct blk_mq_hw_ctx *hctx,
			       unsigned long msecs)
{
	if (unlikely(blk_mq_hctx_stopped(hctx)))
		return;
	kblockd_schedule_delayed_work(&hctx->run_work, msecs);
}

void blk_mq_run_work_fn(struct work_struct *work)
{
	struct blk_mq_hw_ctx *hctx = container_of(work, struct blk_mq_hw_ctx,
						  run_work.work);

	__blk_mq_run_hw_queue(hctx);
}

void blk_mq_stop_hw_queue(struct blk_mq_hw_ctx *hctx)
{
	cancel_delayed_work_sync(&hctx->run_work);
	hctx_set_bit(BLK_MQ_S_STOPPED, hctx);
}

/* The barriers: see blk_mq_hctx_stopped(). */
void blk_mq_start_hw_queue(struct blk_mq_hw_ctx *hctx)
{
	hctx_clear_bit(BLK_MQ_S_STOPPED, hctx);
	smp_mb();
	blk_mq_run_hw_queue(hctx, false);
}

void blk_mq_start_stopped_hw_queues(struct request_queue *q, bool async)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	queue_for_each_hw_ctx(q, hctx, i) {
		if (!blk_mq_hctx_stopped(hctx))
			continue;
		hctx_clear_bit(BLK_MQ_S_STOPPED, hctx);
		smp_mb();
		blk_mq_run_hw_queue(hctx, async);
	}
}

/* ---- quiesce ---- */

static bool blk_mq_dispatch_enter(struct request_queue *q)
{
	return percpu_ref_tryget_live(&q->dispatch_counter);
}

static void blk_mq_dispatch_exit(struct request_queue *q)
{
	percpu_ref_put(&q->dispatch_counter);
}

void blk_mq_quiesce_queue(struct request_queue *q)
{
	if (atomic_fetch_add(&q->quiesce_depth, 1) == 0) {
		blk_queue_flag_set(QUEUE_FLAG_QUIESCED, q);
		percpu_ref_kill(&q->dispatch_counter);
	}
	blk_mq_wait_quiesce_done(q);
}

void blk_mq_wait_quiesce_done(struct request_queue *q)
{
	percpu_ref_wait_zero(&q->dispatch_counter);
}

void blk_mq_unquiesce_queue(struct request_queue *q)
{
	int old = atomic_fetch_sub(&q->quiesce_depth, 1);

	BUG_ON(old <= 0);
	if (old == 1) {
		blk_queue_flag_clear(QUEUE_FLAG_QUIESCED, q);
		percpu_ref_resurrect(&q->dispatch_counter);
		/* pairs with blk_mq_run_hw_queue()'s: see there */
		smp_mb();
		blk_mq_run_hw_queues(q, true);
	}
}

/* ---- direct issue ---- */

static blk_status_t __blk_mq_issue_directly(struct blk_mq_hw_ctx *hctx,
					    struct request *rq, bool last)
{
	struct blk_mq_queue_data bd = { .rq = rq, .last = last };
	blk_status_t ret;

	ret = rq->q->mq_ops->queue_rq(hctx, &bd);
	switch (ret) {
	case BLK_STS_OK:
		blk_mq_update_dispatch_busy(hctx, false);
		break;
	case BLK_STS_RESOURCE:
	case BLK_STS_DEV_RESOURCE:
		blk_mq_update_dispatch_busy(hctx, true);
		__blk_mq_requeue_request(rq);
		break;
	default:
		blk_mq_update_dispatch_busy(hctx, false);
		break;
	}
	return ret;
}

static bool blk_mq_get_budget_and_tag(struct request *rq)
{
	if (blk_mq_get_dispatch_budget(rq->q) < 0)
		return false;
	if (!blk_mq_get_driver_tag(rq)) {
		blk_mq_put_dispatch_budget(rq->q);
		return false;
	}
	return true;
}

/*
 * Issue @rq to the driver now, skipping the software queue. Anything that
 * stands in the way (stopped, quiesced, no budget or tag, a busy driver)
 * falls back to queueing, and the queue is run after the insertion. Even
 * when we were refused for quiesce or a stopped hctx: the unquiesce or
 * start may have come and looked for work between our look and our
 * insertion, and it runs only the hctxs it found work on.
 * blk_mq_run_hw_queue() looks again, ordered after the insertion.
 */
static void blk_mq_try_issue_directly(struct blk_mq_hw_ctx *hctx,
				      struct request *rq)
{
	struct request_queue *q = rq->q;
	blk_status_t ret;

	if (unlikely(!blk_mq_dispatch_enter(q))) {
		blk_mq_insert_request(rq, false, true, false);
		return;
	}
	if (blk_mq_hctx_stopped(hctx) || blk_queue_quiesced(q)) {
		blk_mq_insert_request(rq, false, false, false);
		blk_mq_dispatch_exit(q);
		blk_mq_run_hw_queue(hctx, false);
		return;
	}
	if ((rq->rq_flags & RQF_USE_SCHED) || !blk_mq_get_budget_and_tag(rq)) {
		blk_mq_insert_request(rq, false, false, false);
		blk_mq_dispatch_exit(q);
		blk_mq_run_hw_queue(hctx, false);
		return;
	}
	ret = __blk_mq_issue_directly(hctx, rq, true);
	switch (ret) {
	case BLK_STS_OK:
		break;
	case BLK_STS_RESOURCE:
	case BLK_STS_DEV_RESOURCE:
		blk_mq_put_dispatch_budget(q);
		blk_mq_request_bypass_insert(rq, false, false);
		blk_mq_dispatch_exit(q);
		blk_mq_run_hw_queue(hctx, false);
		return;
	default:
		blk_mq_end_request(rq, ret);
		break;
	}
	blk_mq_count_dispatch(hctx, 1);
	blk_mq_dispatch_exit(q);
}

/* ---- bios to requests ---- */

static void blk_mq_bio_to_request(struct request *rq, struct bio *bio,
				  unsigned int nr_segs)
{
	if (bio->bi_opf & REQ_RAHEAD)
		rq->cmd_flags |= REQ_FAILFAST_MASK;
	rq->__sector = bio->bi_iter.bi_sector;
	rq->ioprio = bio->bi_ioprio;
	/* only a scheduler keeping per-issuer state needs the reference */
	if (bio->bi_ioc && (rq->rq_flags & RQF_USE_SCHED) &&
	    rq->q->elevator->type->uses_ioc) {
		get_io_context(bio->bi_ioc);
		rq->ioc = bio->bi_ioc;
	}
	blk_rq_bio_prep(rq, bio, nr_segs);
	blk_account_io_start(rq);
}

/* ---- plugging ---- */

static unsigned short blk_plug_max_rq_count(struct blk_plug *plug)
{
	if (plug->multiple_queues)
		return BLK_MAX_REQUEST_COUNT * 2;
	return BLK_MAX_REQUEST_COUNT;
}

static void blk_add_rq_to_plug(struct blk_plug *plug, struct request *rq)
{
	struct request *last = plug->mq_tail;

	if (!plug->rq_count) {
		trace_block_plug(rq->q);
	} else if (plug->rq_count >= blk_plug_max_rq_count(plug) ||
		   (!blk_queue_nomerges(rq->q) &&
		    blk_rq_bytes(last) >= BLK_PLUG_FLUSH_SIZE)) {
		blk_mq_flush_plug_list(plug, false);
		last = NULL;
		trace_block_plug(rq->q);
	}
	if (!plug->multiple_queues && last && last->q != rq->q)
		plug->multiple_queues = true;
	if (!plug->has_elevator && (rq->rq_flags & RQF_SCHED_TAGS))
		plug->has_elevator = true;
	rq->rq_next = NULL;
	if (plug->mq_tail)
		plug->mq_tail->rq_next = rq;
	else
		plug->mq_list = rq;
	plug->mq_tail = rq;
	plug->rq_count++;
}

/* Order for dispatching a mixed plug list: queue, hctx, ctx, sector. */
static int plug_rq_cmp(const struct request *a, const struct request *b)
{
	if (a->q != b->q)
		return (uintptr_t)a->q < (uintptr_t)b->q ? -1 : 1;
	if (a->mq_hctx != b->mq_hctx)
		return a->mq_hctx->queue_num < b->mq_hctx->queue_num ? -1 : 1;
	if (a->mq_ctx != b->mq_ctx)
		return a->mq_ctx->cpu < b->mq_ctx->cpu ? -1 : 1;
	if (blk_rq_pos(a) != blk_rq_pos(b))
		return blk_rq_pos(a) < blk_rq_pos(b) ? -1 : 1;
	return 0;
}

/* Stable merge sort of an rq_next-linked list. */
static struct request *rq_list_sort(struct request *head, unsigned int n)
{
	struct request *a, *b, **tail, *out = NULL;
	unsigned int half = n / 2;

	if (n < 2)
		return head;
	b = head;
	for (unsigned int i = 1; i < half; i++)
		b = b->rq_next;
	a = head;
	head = b->rq_next;
	b->rq_next = NULL;
	a = rq_list_sort(a, half);
	b = rq_list_sort(head, n - half);
	tail = &out;
	while (a && b) {
		struct request **pick = plug_rq_cmp(b, a) < 0 ? &b : &a;

		*tail = *pick;
		tail = &(*pick)->rq_next;
		*pick = (*pick)->rq_next;
	}
	*tail = a ? a : b;
	return out;
}

/* Try the driver's batch entry; what it leaves is issued one by one. */
static void blk_mq_plug_issue_direct(struct blk_plug *plug)
{
	struct blk_mq_hw_ctx *hctx = NULL;
	struct request *rq;
	unsigned int depth = 0;
	blk_status_t ret = BLK_STS_OK;

	while ((rq = plug->mq_list)) {
		bool last = rq->rq_next == NULL;

		if (hctx != rq->mq_hctx) {
			if (hctx && hctx->queue->mq_ops->commit_rqs && depth)
				hctx->queue->mq_ops->commit_rqs(hctx);
			depth = 0;
			hctx = rq->mq_hctx;
		}
		if (blk_mq_hctx_stopped(hctx) || blk_queue_quiesced(rq->q) ||
		    !blk_mq_get_budget_and_tag(rq)) {
			/* the rest is queued: commit what went (as RESOURCE) */
			ret = BLK_STS_RESOURCE;
			break;
		}
		plug->mq_list = rq->rq_next;
		rq->rq_next = NULL;
		ret = __blk_mq_issue_directly(hctx, rq, last);
		switch (ret) {
		case BLK_STS_OK:
			depth++;
			break;
		case BLK_STS_RESOURCE:
		case BLK_STS_DEV_RESOURCE:
			blk_mq_put_dispatch_budget(rq->q);
			blk_mq_request_bypass_insert(rq, false, false);
			blk_mq_run_hw_queue(hctx, false);
			goto out;
		default:
			blk_mq_end_request(rq, ret);
			break;
		}
	}
out:
	if (!plug->mq_list)
		plug->mq_tail = NULL;
	if (ret != BLK_STS_OK && hctx && hctx->queue->mq_ops->commit_rqs &&
	    depth)
		hctx->queue->mq_ops->commit_rqs(hctx);
}

/*
 * Queue a run of requests for one (hctx, ctx) from the head of the plug
 * list: to the scheduler, or the ctx list, then run the queue.
 */
static void blk_mq_dispatch_plug_list(struct blk_plug *plug, bool from_sched)
{
	struct request *rq = plug->mq_list;
	struct blk_mq_hw_ctx *this_hctx = rq->mq_hctx;
	struct blk_mq_ctx *this_ctx = rq->mq_ctx;
	struct request_queue *q = rq->q;
	LIST_HEAD(list);
	unsigned int depth = 0;

	while ((rq = plug->mq_list) && rq->mq_hctx == this_hctx &&
	       rq->mq_ctx == this_ctx) {
		plug->mq_list = rq->rq_next;
		rq->rq_next = NULL;
		list_add_tail(&rq->queuelist, &list);
		depth++;
	}
	if (!plug->mq_list)
		plug->mq_tail = NULL;
	trace_block_unplug(q, depth, !from_sched);
	if (q->elevator) {
		struct request *pos, *n;

		/* flush-sequence or bypass requests never go to the elevator */
		list_for_each_entry_safe(pos, n, &list, queuelist) {
			if (pos->rq_flags & RQF_USE_SCHED)
				continue;
			list_del_init(&pos->queuelist);
			blk_mq_insert_request(pos, false, false, false);
		}
		list_for_each_entry(pos, &list, queuelist)
			trace_block_rq_insert(pos);
		if (!list_empty(&list))
			q->elevator->type->ops.insert_requests(this_hctx,
							       &list, false);
	} else {
		blk_mq_insert_ctx_list(this_hctx, this_ctx, &list, false);
	}
	blk_mq_run_hw_queue(this_hctx, from_sched);
}

void blk_mq_flush_plug_list(struct blk_plug *plug, bool from_schedule)
{
	unsigned int depth = plug->rq_count;

	if (!depth)
		return;
	plug->rq_count = 0;
	plug->cur_ktime = 0;	/* issue times are taken afresh */
	atomic_fetch_add_explicit(&plug->mq_list->mq_hctx->plug_flushes, 1,
				  memory_order_relaxed);
	if (!plug->multiple_queues && !plug->has_elevator && !from_schedule) {
		struct request_queue *q = plug->mq_list->q;

		trace_block_unplug(q, depth, true);
		if (q->mq_ops->queue_rqs && blk_mq_dispatch_enter(q)) {
			if (!blk_queue_quiesced(q)) {
				q->mq_ops->queue_rqs(&plug->mq_list);
				plug->mq_tail = NULL;
				for (struct request *r = plug->mq_list; r;
				     r = r->rq_next)
					plug->mq_tail = r;
			}
			blk_mq_dispatch_exit(q);
			if (!plug->mq_list)
				return;
		}
		if (blk_mq_dispatch_enter(q)) {
			blk_mq_plug_issue_direct(plug);
			blk_mq_dispatch_exit(q);
		}
		if (!plug->mq_list)
			return;
	}
	if (plug->multiple_queues) {
		unsigned int n = 0;

		for (struct request *r = plug->mq_list; r; r = r->rq_next)
			n++;
		plug->mq_list = rq_list_sort(plug->mq_list, n);
	}
	do {
		blk_mq_dispatch_plug_list(plug, from_schedule);
	} while (plug->mq_list);
	plug->multiple_queues = false;
	plug->has_elevator = false;
}

/* ---- the entry ---- */

/*
 * Cheap verdicts that spare random I/O the calls below (the answers are
 * theirs): blk_attempt_plug_merge() tries only the request last added
 * for @q, and only if it is adjacent to @bio.
 */
static inline bool blk_plug_may_merge(struct blk_plug *plug,
				      struct request_queue *q, struct bio *bio)
{
	struct request *last = plug ? plug->mq_tail : NULL;

	if (!last)
		return false;
	return last->q != q || blk_try_merge(last, bio) != ELEVATOR_NO_MERGE;
}

/*
 * Without an elevator blk_mq_sched_bio_merge() looks only in a software
 * queue with requests pending (the kernel checks that list first too).
 */
static inline bool blk_mq_may_sched_merge(struct request_queue *q,
					  struct bio *bio,
					  struct blk_mq_ctx *ctx)
{
	struct blk_mq_hw_ctx *hctx;

	if (q->elevator)
		return true;
	hctx = blk_mq_map_queue(q, bio->bi_opf, ctx);
	return (hctx->flags & BLK_MQ_F_SHOULD_MERGE) &&
	       !list_empty_careful(&ctx->rq_lists[hctx->type]);
}

/*
 * Turn @bio into a request and send it on (the kernel's
 * blk_mq_submit_bio()). The caller (__submit_bio) has not entered the
 * queue; we do, and the reference stays with the request.
 */
/*
 * No cached request fits: allocate one, and as many more into the plug's
 * cache as the plug expects I/Os (the kernel's blk_mq_get_new_requests()).
 */
static noinline struct request *
blk_mq_get_new_requests(struct request_queue *q, struct blk_plug *plug,
			struct bio *bio, struct blk_mq_ctx *ctx)
{
	struct blk_mq_alloc_data data = {
		.q = q,
		.ctx = ctx,
		.cmd_flags = bio->bi_opf,
	};
	unsigned int want = 0;
	struct request *rq;

	if (plug && plug->nr_ios > 1) {
		want = min_t(unsigned int, plug->nr_ios, BLK_MAX_REQUEST_COUNT);
		data.nr_tags = want;
		data.cached_rq = &plug->cached_rq;
	}
	rq = __blk_mq_alloc_requests(&data);
	if (want) {
		/* count what was made against what the plug expects */
		unsigned int got = max(want - data.nr_tags, 1U);

		plug->nr_ios -= (unsigned short)min_t(unsigned int, got,
						      plug->nr_ios - 1U);
	}
	if (unlikely(!rq)) {
		bio->bi_status = (bio->bi_opf & REQ_NOWAIT) ? BLK_STS_AGAIN :
							      BLK_STS_IOERR;
		bio_endio(bio);
	}
	return rq;
}

/* Not plugged: issue @rq now, or queue it and run the queue. */
static void blk_mq_submit_unplugged(struct request_queue *q,
				    struct request *rq, bool is_sync)
{
	struct blk_mq_hw_ctx *hctx = rq->mq_hctx;

	if ((rq->rq_flags & RQF_USE_SCHED) ||
	    (atomic_load_explicit(&hctx->dispatch_busy, memory_order_relaxed) &&
	     (q->nr_hw_queues == 1 || !is_sync))) {
		blk_mq_insert_request(rq, false, false, false);
		blk_mq_run_hw_queue(hctx, true);
	} else {
		blk_mq_try_issue_directly(hctx, rq);
	}
}

/*
 * Turn @bio into a request and send it on (the kernel's
 * blk_mq_submit_bio()). The caller (__submit_bio) has not entered the
 * queue; we do, and the reference stays with the request.
 */
void blk_mq_submit_bio(struct bio *bio)
{
	struct request_queue *q = bio->bi_disk->queue;
	struct blk_plug *plug = blk_current_plug();
	struct blk_mq_ctx *ctx;
	unsigned int nr_segs = 1;
	struct request *rq;

	/* a request cached in the plug already holds a usage reference */
	rq = blk_mq_peek_cached_request(plug, q, bio->bi_opf);
	if (!rq && unlikely(!bio_queue_enter(bio)))
		return;
	trace_block_bio_queue(bio);
	if (unlikely(bio_may_need_split(bio, &q->limits))) {
		bio = __bio_split_to_limits(bio, &q->limits, &nr_segs);
		if (!bio)
			goto queue_exit;
	}
	if (!op_is_flush(bio->bi_opf) && !blk_queue_nomerges(q) &&
	    blk_plug_may_merge(plug, q, bio) &&
	    blk_attempt_plug_merge(q, bio, nr_segs))
		goto queue_exit;
	ctx = rq ? rq->mq_ctx : blk_mq_get_ctx(q);
	if (blk_mq_may_sched_merge(q, bio, ctx) &&
	    blk_mq_sched_bio_merge(q, bio, nr_segs, ctx))
		goto queue_exit;

	if (rq) {
		blk_mq_use_cached_rq(rq, plug, bio);
	} else {
		rq = blk_mq_get_new_requests(q, plug, bio, ctx);
		if (unlikely(!rq))
			goto queue_exit;
	}
	trace_block_getrq(bio);
	blk_mq_bio_to_request(rq, bio, nr_segs);
	blk_mq_rq_sched_prepare(rq);
	if (bio->bi_opf & REQ_POLLED)
		bio->bi_cookie = rq->mq_hctx->queue_num;

	if (op_is_flush(bio->bi_opf) && blk_insert_flush(rq))
		return;
	if (plug) {
		blk_add_rq_to_plug(plug, rq);
		return;
	}
	blk_mq_submit_unplugged(q, rq, op_is_sync(bio->bi_opf));
	return;

queue_exit:
	/* a cached request stays cached, with its reference */
	if (!rq)
		blk_queue_exit(q);
}

/* ---- passthrough ---- */

struct blk_rq_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	blk_status_t ret;
};

static rq_end_io_ret_t blk_end_sync_rq(struct request *rq, blk_status_t ret)
{
	struct blk_rq_wait *wait = rq->end_io_data;

	pthread_mutex_lock(&wait->lock);
	wait->ret = ret;
	wait->done = true;
	pthread_cond_signal(&wait->cond);
	pthread_mutex_unlock(&wait->lock);
	return RQ_END_IO_NONE;
}

blk_status_t blk_execute_rq(struct request *rq, bool at_head)
{
	struct blk_rq_wait wait = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};

	rq->end_io_data = &wait;
	rq->end_io = blk_end_sync_rq;
	blk_account_io_start(rq);
	blk_mq_insert_request(rq, at_head, true, false);
	pthread_mutex_lock(&wait.lock);
	while (!wait.done) {
		pthread_mutex_unlock(&wait.lock);
		if (rq->mq_hctx->type == HCTX_TYPE_POLL)
			blk_mq_poll_hctx(rq->mq_hctx);
		pthread_mutex_lock(&wait.lock);
		if (!wait.done && rq->mq_hctx->type != HCTX_TYPE_POLL)
			pthread_cond_wait(&wait.cond, &wait.lock);
	}
	pthread_mutex_unlock(&wait.lock);
	return wait.ret;
}

struct request *blk_mq_tag_to_rq(struct blk_mq_hw_ctx *hctx, int tag)
{
	if (tag < 0 || (unsigned int)tag >= hctx->tags->nr_tags)
		return NULL;
	return atomic_load_explicit(&hctx->tags->rqs[tag],
				    memory_order_acquire);
}
