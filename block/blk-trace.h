/* SPDX-License-Identifier: MIT */
/*
 * Tracepoints of the request path, one per blktrace action (Q G S P U M F
 * X A I D R C). Each is an inline test of the queue's trace pointer so an
 * untraced queue pays one predictable branch; a traced one calls into
 * blktrace.c, which records the event (include/blkstack/blktrace.h).
 * B (bounce) has no tracepoint: nothing here bounces.
 */
#ifndef BLKSTACK_BLOCK_BLK_TRACE_H
#define BLKSTACK_BLOCK_BLK_TRACE_H

#include <stdio.h>
#include <blkstack/blktrace.h>

#include "blk.h"

/* Out of line, in blktrace.c: called only while a trace is set up. */
void blk_add_trace_bio(struct request_queue *q, struct bio *bio, uint32_t what);
void blk_add_trace_bio_queue(struct request_queue *q, struct bio *bio);
void blk_add_trace_sleeprq(struct request_queue *q, blk_opf_t opf);
void blk_add_trace_plug(struct request_queue *q);
void blk_add_trace_unplug(struct request_queue *q, unsigned int depth,
			  bool explicit);
void blk_add_trace_split(struct request_queue *q, struct bio *bio,
			 sector_t new_sector);
void blk_add_trace_rq(struct request *rq, blk_status_t error,
		      unsigned int nr_bytes, uint32_t what);
void blk_add_trace_bio_remap(struct request_queue *q, struct bio *bio,
			     uint32_t dev_from, sector_t from);

/* Device removal (del_gendisk): stop and free any trace. */
void blk_trace_shutdown(struct request_queue *q);
/* disk_release: what the last trace left for blk_trace_get_stats(). */
void blk_trace_release(struct request_queue *q);
/* queue attributes trace/{enable,act_mask,start_lba,end_lba,pid} */
ssize_t blk_trace_attr_show(struct request_queue *q, const char *attr,
			    char *buf, size_t len);
int blk_trace_attr_store(struct request_queue *q, const char *attr,
			 const char *val);
/* The trace section of the debug dump. */
void blk_trace_debug_dump(struct request_queue *q, FILE *out);

static inline bool blk_traced(struct request_queue *q)
{
	return unlikely(atomic_load_explicit(&q->blk_trace,
					     memory_order_relaxed) != NULL);
}

/*
 * Once per bio, as the kernel's submit_bio_noacct_nocheck(): the rest of
 * a split bio comes back through the submit path without a second Q.
 */
static inline void trace_block_bio_queue(struct bio *bio)
{
	struct request_queue *q = bio->bi_disk->queue;

	if (blk_traced(q))
		blk_add_trace_bio_queue(q, bio);
}

static inline void trace_block_getrq(struct bio *bio)
{
	struct request_queue *q = bio->bi_disk->queue;

	if (blk_traced(q))
		blk_add_trace_bio(q, bio, BLK_TA_GETRQ);
}

static inline void trace_block_sleeprq(struct request_queue *q, blk_opf_t opf)
{
	if (blk_traced(q))
		blk_add_trace_sleeprq(q, opf);
}

static inline void trace_block_plug(struct request_queue *q)
{
	if (blk_traced(q))
		blk_add_trace_plug(q);
}

/* @explicit: blk_finish_plug(); else the plug was flushed on sleeping. */
static inline void trace_block_unplug(struct request_queue *q,
				      unsigned int depth, bool explicit)
{
	if (blk_traced(q))
		blk_add_trace_unplug(q, depth, explicit);
}

static inline void trace_block_bio_backmerge(struct bio *bio)
{
	struct request_queue *q = bio->bi_disk->queue;

	if (blk_traced(q))
		blk_add_trace_bio(q, bio, BLK_TA_BACKMERGE);
}

static inline void trace_block_bio_frontmerge(struct bio *bio)
{
	struct request_queue *q = bio->bi_disk->queue;

	if (blk_traced(q))
		blk_add_trace_bio(q, bio, BLK_TA_FRONTMERGE);
}

/* @bio is the front part split off; @new_sector where the rest starts. */
static inline void trace_block_split(struct bio *bio, sector_t new_sector)
{
	struct request_queue *q = bio->bi_disk->queue;

	if (blk_traced(q))
		blk_add_trace_split(q, bio, new_sector);
}

/*
 * A stacked device sent @bio, which was at @from on the device numbered
 * @dev_from (major << 20 | minor), on to bio->bi_disk at its current
 * sector.
 */
static inline void trace_block_bio_remap(struct bio *bio, uint32_t dev_from,
					 sector_t from)
{
	struct request_queue *q = bio->bi_disk->queue;

	if (blk_traced(q))
		blk_add_trace_bio_remap(q, bio, dev_from, from);
}

static inline void trace_block_rq_insert(struct request *rq)
{
	if (blk_traced(rq->q))
		blk_add_trace_rq(rq, 0, blk_rq_bytes(rq), BLK_TA_INSERT);
}

static inline void trace_block_rq_issue(struct request *rq)
{
	if (blk_traced(rq->q))
		blk_add_trace_rq(rq, 0, blk_rq_bytes(rq), BLK_TA_ISSUE);
}

/*
 * blk_mq_start_request(), inline for the drivers built with the core
 * (null_blk starts each request of a batch): here, beside the issue
 * tracepoint it fires.
 */
static __always_inline void __blk_mq_start_request(struct request *rq)
{
	rq->io_start_time_ns = blk_time_get_ns();
	rq->stats_sectors = blk_rq_sectors(rq);
	trace_block_rq_issue(rq);
	WARN_ON_ONCE(blk_mq_rq_state(rq) != MQ_RQ_IDLE);
	blk_add_timer(rq);
	atomic_store_explicit(&rq->state, MQ_RQ_IN_FLIGHT,
			      memory_order_release);
}

static inline void trace_block_rq_requeue(struct request *rq)
{
	if (blk_traced(rq->q))
		blk_add_trace_rq(rq, 0, blk_rq_bytes(rq), BLK_TA_REQUEUE);
}

static inline void trace_block_rq_complete(struct request *rq,
					   blk_status_t error,
					   unsigned int nr_bytes)
{
	if (blk_traced(rq->q))
		blk_add_trace_rq(rq, error, nr_bytes, BLK_TA_COMPLETE);
}

#endif
