/* SPDX-License-Identifier: MIT */
/*
 * Disk statistics on the request path (blk-stat.c keeps the rest). Every
 * request is accounted three times (start, bytes done, end): these are
 * inline so that each is a few adds on the calling thread's own slot.
 * Included by blk.h after op_stat_group().
 */
#ifndef BLKSTACK_BLOCK_BLK_STAT_H
#define BLKSTACK_BLOCK_BLK_STAT_H

/* The calling thread's set of counters of @disk (lib/thread-slot.h). */
static inline struct disk_stats *disk_this_stats(struct gendisk *disk,
						 struct thread_slot **tsp)
{
	struct thread_slot *ts = this_thread_slot();

	*tsp = ts;
	return &disk->stats[ts->slot];
}

/*
 * slot_counter_add_flag() for diskstats: the slot's shared flag read once
 * by a caller making several adds.
 */
#define disk_stat_add(shared, c, v) slot_counter_add_flag(shared, c, v)

void __update_io_ticks(struct gendisk *disk, uint64_t now_ms, bool end);

/* io_ticks: time with at least one I/O in flight, sampled per ms. */
static inline void update_io_ticks(struct gendisk *disk, uint64_t now_ms,
				   bool end)
{
	if (unlikely(now_ms > atomic_load_explicit(&disk->stamp_ms,
						   memory_order_relaxed)))
		__update_io_ticks(disk, now_ms, end);
}

static inline void blk_account_io_start(struct request *rq)
{
	struct gendisk *disk = rq->q->disk;
	struct thread_slot *ts;
	struct disk_stats *st;

	if (!(rq->rq_flags & RQF_IO_STAT) || !disk)
		return;
	update_io_ticks(disk, rq->start_time_ns / NSEC_PER_MSEC, false);
	st = disk_this_stats(disk, &ts);
	slot_counter_add(ts, &st->in_flight[rq_data_dir(rq)], 1);
}

static inline void blk_account_io_completion(struct request *rq,
					     unsigned int bytes)
{
	struct gendisk *disk = rq->q->disk;
	struct thread_slot *ts;
	struct disk_stats *st;

	if (!(rq->rq_flags & RQF_IO_STAT) || !disk)
		return;
	st = disk_this_stats(disk, &ts);
	slot_counter_add(ts, &st->sectors[op_stat_group(rq->cmd_flags)],
			 bytes >> SECTOR_SHIFT);
}

/* ios, time and in_flight of a request done, on @ts's counters @st */
static inline void __blk_account_io_done(struct request *rq, uint64_t now,
					 struct thread_slot *ts,
					 struct disk_stats *st, int sgrp)
{
	const bool shared = ts->shared;

	update_io_ticks(rq->q->disk, now / NSEC_PER_MSEC, true);
	disk_stat_add(shared, &st->ios[sgrp], 1);
	disk_stat_add(shared, &st->nsecs[sgrp], now > rq->start_time_ns ?
				now - rq->start_time_ns : 0);
	disk_stat_add(shared, &st->in_flight[rq_data_dir(rq)], -1);
}

static inline void blk_account_io_done(struct request *rq, uint64_t now)
{
	struct gendisk *disk = rq->q->disk;
	struct disk_stats *st;
	struct thread_slot *ts;

	/* a flush step is not the end of the request */
	if (!(rq->rq_flags & RQF_IO_STAT) || (rq->rq_flags & RQF_FLUSH_SEQ) ||
	    !disk)
		return;
	st = disk_this_stats(disk, &ts);
	__blk_account_io_done(rq, now, ts, st, op_stat_group(rq->cmd_flags));
}

/*
 * The requests of a completion batch, accounted together: one look-up of
 * this thread's counters and one add per counter for a run of requests of
 * the same disk and direction (blk_mq_end_request_batch).
 */
struct blk_acct_batch {
	struct gendisk *disk;
	unsigned int op;	/* of the run: sgrp and dir follow from it */
	int sgrp, dir;
	unsigned long nr, sectors;
	uint64_t nsecs;
};

/* always inline: the batch then lives in registers, not on the stack */
static __always_inline void blk_acct_batch_flush(struct blk_acct_batch *b,
						 uint64_t now)
{
	struct disk_stats *st;
	struct thread_slot *ts;
	bool shared;

	if (!b->nr)
		return;
	st = disk_this_stats(b->disk, &ts);
	shared = ts->shared;
	update_io_ticks(b->disk, now / NSEC_PER_MSEC, true);
	disk_stat_add(shared, &st->sectors[b->sgrp], b->sectors);
	disk_stat_add(shared, &st->ios[b->sgrp], b->nr);
	disk_stat_add(shared, &st->nsecs[b->sgrp], b->nsecs);
	disk_stat_add(shared, &st->in_flight[b->dir], -(long)b->nr);
	b->nr = b->sectors = 0;
	b->nsecs = 0;
}

/*
 * blk_account_io_completion(@bytes) and blk_account_io_done() of @rq
 * completed in one go, gathered into @b
 */
static inline void blk_acct_batch_add(struct blk_acct_batch *b,
				      struct request *rq, unsigned int bytes,
				      uint64_t now)
{
	struct gendisk *disk = rq->q->disk;
	unsigned int op = req_op(rq);

	if ((rq->rq_flags & (RQF_IO_STAT | RQF_FLUSH_SEQ)) != RQF_IO_STAT ||
	    !disk)
		return;
	/* the same disk and op as the run so far: the same counters */
	if (!b->nr || b->disk != disk || b->op != op) {
		blk_acct_batch_flush(b, now);
		b->disk = disk;
		b->op = op;
		b->sgrp = op_stat_group(op);
		b->dir = op_is_write(op);
	}
	b->nr++;
	b->sectors += bytes >> SECTOR_SHIFT;
	b->nsecs += now > rq->start_time_ns ? now - rq->start_time_ns : 0;
}

#endif
