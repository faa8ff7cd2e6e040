// SPDX-License-Identifier: MIT
/*
 * Flush and FUA sequencing (the kernel's block/blk-flush.c).
 *
 * A write with REQ_PREFLUSH and/or REQ_FUA to a device with a volatile
 * cache becomes up to three steps: PREFLUSH (flush the cache), DATA (the
 * write itself, FUA kept if the device honours it), POSTFLUSH (flush
 * again, emulating FUA). Steps that are not needed are skipped; a device
 * without a volatile cache never sees a flush.
 *
 * Flushes are shared: requests waiting for a flush collect on the pending
 * list; one flush request is in flight at a time and completes the step
 * of every request that was waiting when it was issued. Two lists swap
 * roles (pending/running) so new waiters never ride on a flush that
 * started before they arrived.
 *
 * The flush request borrows the driver tag of the first waiter (which
 * cannot be in flight meanwhile), so a flush never needs a tag of its own.
 */
#include <stdlib.h>
#include <string.h>

#include "blk.h"

enum {
	REQ_FSEQ_PREFLUSH	= (1 << 0),
	REQ_FSEQ_DATA		= (1 << 1),
	REQ_FSEQ_POSTFLUSH	= (1 << 2),
	REQ_FSEQ_DONE		= (1 << 3),
	REQ_FSEQ_ACTIONS	= REQ_FSEQ_PREFLUSH | REQ_FSEQ_DATA |
				  REQ_FSEQ_POSTFLUSH,
};

/* Hold back a flush while data writes are in flight, but not forever. */
#define FLUSH_PENDING_TIMEOUT_NS	(5 * NSEC_PER_SEC)

static void blk_kick_flush(struct request_queue *q, struct blk_flush_queue *fq,
			   blk_opf_t flags);

bool is_flush_rq(struct request *rq)
{
	return rq->q && rq->q->fq && rq == rq->q->fq->flush_rq;
}

unsigned int blk_flush_policy(struct request *rq)
{
	const struct queue_limits *lim = &rq->q->limits;
	unsigned int policy = 0;

	if (blk_rq_sectors(rq))
		policy |= REQ_FSEQ_DATA;
	if (lim->features_write_cache) {
		if (rq->cmd_flags & REQ_PREFLUSH)
			policy |= REQ_FSEQ_PREFLUSH;
		if (!lim->features_fua && (rq->cmd_flags & REQ_FUA))
			policy |= REQ_FSEQ_POSTFLUSH;
	}
	return policy;
}

static unsigned int blk_flush_cur_seq(struct request *rq)
{
	return 1U << __builtin_ctz(~rq->flush.seq);
}

static void blk_flush_restore_request(struct request *rq)
{
	/* the bios were never advanced: just make it an ordinary request */
	rq->rq_flags &= ~RQF_FLUSH_SEQ;
	rq->end_io = rq->flush.saved_end_io;
}

/*
 * Move @rq past the step(s) in @seq and start its next one.
 * Called with fq->mq_flush_lock held.
 */
static void blk_flush_complete_seq(struct request *rq,
				   struct blk_flush_queue *fq,
				   unsigned int seq, blk_status_t error)
{
	struct request_queue *q = rq->q;
	struct list_head *pending = &fq->flush_queue[fq->flush_pending_idx];
	blk_opf_t cmd_flags = rq->cmd_flags;

	BUG_ON(rq->flush.seq & seq);
	rq->flush.seq |= seq;
	seq = likely(!error) ? blk_flush_cur_seq(rq) : REQ_FSEQ_DONE;

	switch (seq) {
	case REQ_FSEQ_PREFLUSH:
	case REQ_FSEQ_POSTFLUSH:
		if (list_empty(pending))
			fq->flush_pending_since = ktime_get_ns();
		list_move_tail(&rq->queuelist, pending);
		break;
	case REQ_FSEQ_DATA:
		fq->flush_data_in_flight++;
		pthread_spin_lock(&q->requeue_lock);
		list_move(&rq->queuelist, &q->requeue_list);
		pthread_spin_unlock(&q->requeue_lock);
		blk_mq_kick_requeue_list(q);
		break;
	case REQ_FSEQ_DONE:
		list_del_init(&rq->queuelist);
		blk_flush_restore_request(rq);
		atomic_fetch_add_explicit(&fq->flush_seqs, 1,
					  memory_order_relaxed);
		/* ends the bios and frees the request: drop our lock first */
		pthread_spin_unlock(&fq->mq_flush_lock);
		blk_mq_end_request(rq, error);
		pthread_spin_lock(&fq->mq_flush_lock);
		break;
	default:
		BUG();
	}
	blk_kick_flush(q, fq, cmd_flags);
}

static rq_end_io_ret_t flush_end_io(struct request *flush_rq,
				    blk_status_t error)
{
	struct request_queue *q = flush_rq->q;
	struct blk_flush_queue *fq = q->fq;
	struct list_head *running;
	struct request *rq, *n;
	LIST_HEAD(done);

	blk_account_io_flush(flush_rq);
	pthread_spin_lock(&fq->mq_flush_lock);
	atomic_store_explicit(&flush_rq->state, MQ_RQ_IDLE,
			      memory_order_release);
	if (fq->rq_status != BLK_STS_OK) {
		error = fq->rq_status;
		fq->rq_status = BLK_STS_OK;
	}
	if (!q->elevator) {
		flush_rq->tag = BLK_MQ_NO_TAG;
	} else {
		blk_mq_put_driver_tag(flush_rq);
		flush_rq->internal_tag = BLK_MQ_NO_TAG;
	}
	running = &fq->flush_queue[fq->flush_running_idx];
	BUG_ON_QUEUE(fq->flush_pending_idx == fq->flush_running_idx, q);
	fq->flush_running_idx ^= 1;
	/* take them off first: completing one may change the lists */
	list_splice_init(running, &done);
	list_for_each_entry_safe(rq, n, &done, queuelist) {
		unsigned int seq = blk_flush_cur_seq(rq);

		BUG_ON(seq != REQ_FSEQ_PREFLUSH && seq != REQ_FSEQ_POSTFLUSH);
		blk_flush_complete_seq(rq, fq, seq, error);
	}
	pthread_spin_unlock(&fq->mq_flush_lock);
	return RQ_END_IO_NONE;
}

/*
 * Issue the shared flush if one is due: none in flight (C1), requests
 * waiting, and no data writes in flight unless they have been waiting
 * for FLUSH_PENDING_TIMEOUT (C2, C3 in the kernel's comment).
 * Called with fq->mq_flush_lock held.
 */
static void blk_kick_flush(struct request_queue *q, struct blk_flush_queue *fq,
			   blk_opf_t flags)
{
	struct list_head *pending = &fq->flush_queue[fq->flush_pending_idx];
	struct request *flush_rq = fq->flush_rq;
	struct request *first_rq;

	if (fq->flush_pending_idx != fq->flush_running_idx ||
	    list_empty(pending))
		return;
	if (fq->flush_data_in_flight &&
	    ktime_get_ns() < fq->flush_pending_since + FLUSH_PENDING_TIMEOUT_NS)
		return;
	first_rq = list_first_entry(pending, struct request, queuelist);
	fq->flush_pending_idx ^= 1;

	flush_rq->mq_ctx = first_rq->mq_ctx;
	flush_rq->mq_hctx = first_rq->mq_hctx;
	flush_rq->rq_flags = RQF_FLUSH_SEQ;
	if (!q->elevator) {
		flush_rq->tag = first_rq->tag;
		flush_rq->internal_tag = BLK_MQ_NO_TAG;
	} else {
		flush_rq->tag = BLK_MQ_NO_TAG;
		flush_rq->internal_tag = first_rq->internal_tag;
	}
	flush_rq->cmd_flags = REQ_OP_FLUSH | REQ_PREFLUSH |
			      (flags & (REQ_DRV | REQ_FAILFAST_MASK));
	flush_rq->__data_len = 0;
	flush_rq->__sector = 0;
	flush_rq->bio = flush_rq->biotail = NULL;
	flush_rq->nr_phys_segments = 0;
	flush_rq->timeout = 0;
	flush_rq->ioc = NULL;
	flush_rq->end_io = flush_end_io;
	flush_rq->start_time_ns = ktime_get_ns();
	atomic_store_explicit(&flush_rq->ref, 1, memory_order_release);
	atomic_fetch_add_explicit(&fq->flushes_issued, 1, memory_order_relaxed);

	pthread_spin_lock(&q->requeue_lock);
	list_add_tail(&flush_rq->queuelist, &q->requeue_list);
	pthread_spin_unlock(&q->requeue_lock);
	blk_mq_kick_requeue_list(q);
}

static rq_end_io_ret_t mq_flush_data_end_io(struct request *rq,
					    blk_status_t error)
{
	struct request_queue *q = rq->q;
	struct blk_mq_hw_ctx *hctx = rq->mq_hctx;
	struct blk_flush_queue *fq = q->fq;

	if (q->elevator)
		blk_mq_put_driver_tag(rq);
	pthread_spin_lock(&fq->mq_flush_lock);
	fq->flush_data_in_flight--;
	INIT_LIST_HEAD(&rq->queuelist);
	blk_flush_complete_seq(rq, fq, REQ_FSEQ_DATA, error);
	pthread_spin_unlock(&fq->mq_flush_lock);
	blk_mq_sched_restart(hctx);
	return RQ_END_IO_NONE;
}

static void blk_rq_init_flush(struct request *rq)
{
	rq->flush.seq = 0;
	rq->rq_flags |= RQF_FLUSH_SEQ;
	rq->flush.saved_end_io = rq->end_io;
	rq->end_io = mq_flush_data_end_io;
}

/*
 * Route a request with PREFLUSH/FUA. Returns true if the flush machinery
 * took it (or it needed nothing and was completed), false if it goes on
 * as an ordinary request.
 */
bool blk_insert_flush(struct request *rq)
{
	struct request_queue *q = rq->q;
	struct blk_flush_queue *fq = q->fq;
	unsigned int policy = blk_flush_policy(rq);

	WARN_ON_ONCE(rq->bio != rq->biotail);
	rq->cmd_flags &= ~REQ_PREFLUSH;
	if (!q->limits.features_fua)
		rq->cmd_flags &= ~REQ_FUA;
	rq->cmd_flags |= REQ_SYNC;

	switch (policy) {
	case 0:
		/* an empty flush to a device without a volatile cache */
		blk_mq_end_request(rq, BLK_STS_OK);
		return true;
	case REQ_FSEQ_DATA:
		return false;
	case REQ_FSEQ_DATA | REQ_FSEQ_POSTFLUSH:
		/* send the data normally; its completion queues the flush */
		blk_rq_init_flush(rq);
		rq->flush.seq |= REQ_FSEQ_PREFLUSH;
		pthread_spin_lock(&fq->mq_flush_lock);
		fq->flush_data_in_flight++;
		pthread_spin_unlock(&fq->mq_flush_lock);
		return false;
	default:
		blk_rq_init_flush(rq);
		pthread_spin_lock(&fq->mq_flush_lock);
		blk_flush_complete_seq(rq, fq, REQ_FSEQ_ACTIONS & ~policy, 0);
		pthread_spin_unlock(&fq->mq_flush_lock);
		return true;
	}
}

struct blk_flush_queue *blk_alloc_flush_queue(unsigned int cmd_size)
{
	struct blk_flush_queue *fq = calloc(1, sizeof(*fq));
	size_t rq_sz = ALIGN_UP(sizeof(struct request) + cmd_size,
				(size_t)SMP_CACHE_BYTES);

	if (!fq)
		return NULL;
	fq->flush_rq = aligned_alloc(SMP_CACHE_BYTES, rq_sz);
	if (!fq->flush_rq) {
		free(fq);
		return NULL;
	}
	memset(fq->flush_rq, 0, rq_sz);
	fq->flush_rq->tag = BLK_MQ_NO_TAG;
	fq->flush_rq->internal_tag = BLK_MQ_NO_TAG;
	INIT_LIST_HEAD(&fq->flush_rq->queuelist);
	INIT_LIST_HEAD(&fq->flush_rq->hash);
	pthread_spin_init(&fq->mq_flush_lock, PTHREAD_PROCESS_PRIVATE);
	INIT_LIST_HEAD(&fq->flush_queue[0]);
	INIT_LIST_HEAD(&fq->flush_queue[1]);
	return fq;
}

void blk_free_flush_queue(struct blk_flush_queue *fq)
{
	if (!fq)
		return;
	pthread_spin_destroy(&fq->mq_flush_lock);
	free(fq->flush_rq);
	free(fq);
}
