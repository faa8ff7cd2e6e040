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
	update_io_ticks(rq->q->disk, now / NSEC_PER_MSEC, true);
	slot_counter_add(ts, &st->ios[sgrp], 1);
	slot_counter_add(ts, &st->nsecs[sgrp], now > rq->start_time_ns ?
				   now - rq->start_time_ns : 0);
	slot_counter_add(ts, &st->in_flight[rq_data_dir(rq)], -1);
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
 * blk_account_io_completion(@bytes) and blk_account_io_done() of a
 * request completed in one go, on one look-up of this thread's counters.
 */
static inline void blk_account_io_end(struct request *rq, unsigned int bytes,
				      uint64_t now)
{
	struct gendisk *disk = rq->q->disk;
	struct disk_stats *st;
	struct thread_slot *ts;
	int sgrp;

	if (!(rq->rq_flags & RQF_IO_STAT) || (rq->rq_flags & RQF_FLUSH_SEQ) ||
	    !disk)
		return;
	sgrp = op_stat_group(rq->cmd_flags);
	st = disk_this_stats(disk, &ts);
	slot_counter_add(ts, &st->sectors[sgrp], bytes >> SECTOR_SHIFT);
	__blk_account_io_done(rq, now, ts, st, sgrp);
}

#endif
