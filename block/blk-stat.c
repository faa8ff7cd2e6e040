// SPDX-License-Identifier: MIT
/*
 * Disk statistics in /proc/diskstats form (the kernel's block/blk-core.c
 * and genhd.c accounting): per-CPU-slot counters summed when read,
 * in-flight counts, io_ticks sampled as the kernel does (at most once per
 * millisecond, by whoever sees the clock move).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "blk.h"
#include "lib/thread-slot.h"

/*
 * Each thread counts in a slot of its own (lib/thread-slot.h): a slot with
 * one writer needs no atomic read-modify-write, as the kernel's per-CPU
 * counters need none with preemption off. The per-request accounting is
 * inline in blk-stat.h.
 */
long disk_in_flight(struct gendisk *disk)
{
	long n = 0;

	for (unsigned int i = 0; i < disk->nr_stats; i++)
		n += atomic_load_explicit(&disk->stats[i].in_flight[0],
					  memory_order_relaxed) +
		     atomic_load_explicit(&disk->stats[i].in_flight[1],
					  memory_order_relaxed);
	return n > 0 ? n : 0;
}

/* The clock moved past the last sample: whoever swaps the stamp adds. */
void __update_io_ticks(struct gendisk *disk, uint64_t now_ms, bool end)
{
	uint64_t stamp = atomic_load_explicit(&disk->stamp_ms,
					      memory_order_relaxed);

	if (now_ms <= stamp)
		return;
	if (!atomic_compare_exchange_strong(&disk->stamp_ms, &stamp, now_ms))
		return;
	if (end || disk_in_flight(disk))
		atomic_fetch_add_explicit(&disk->io_ticks_ms, now_ms - stamp,
					  memory_order_relaxed);
}

void blk_account_io_flush(struct request *rq)
{
	struct gendisk *disk = rq->q->disk;
	struct disk_stats *st;
	struct thread_slot *ts;
	uint64_t now = ktime_get_ns();

	if (!disk)
		return;
	st = disk_this_stats(disk, &ts);
	slot_counter_add(ts, &st->ios[STAT_FLUSH], 1);
	slot_counter_add(ts, &st->nsecs[STAT_FLUSH], now - rq->start_time_ns);
}

void blk_account_io_merge_bio(struct request *rq)
{
	struct gendisk *disk = rq->q->disk;
	struct thread_slot *ts;
	struct disk_stats *st;

	if (!(rq->rq_flags & RQF_IO_STAT) || !disk)
		return;
	st = disk_this_stats(disk, &ts);
	slot_counter_add(ts, &st->merges[op_stat_group(rq->cmd_flags)], 1);
}

/* @rq was merged into another request: it is no longer in flight. */
void blk_account_io_merge_request(struct request *rq)
{
	struct gendisk *disk = rq->q->disk;
	struct disk_stats *st;
	struct thread_slot *ts;

	if (!(rq->rq_flags & RQF_IO_STAT) || !disk)
		return;
	st = disk_this_stats(disk, &ts);
	slot_counter_add(ts, &st->merges[op_stat_group(rq->cmd_flags)], 1);
	slot_counter_add(ts, &st->in_flight[rq_data_dir(rq)], -1);
	rq->rq_flags &= ~RQF_IO_STAT;
}

/* Bio-based devices account per bio (the kernel's bio_start_io_acct). */
void bio_start_io_acct(struct bio *bio)
{
	struct gendisk *disk = bio->bi_disk;
	struct thread_slot *ts;
	struct disk_stats *st;

	update_io_ticks(disk, ktime_get_ms(), false);
	st = disk_this_stats(disk, &ts);
	slot_counter_add(ts, &st->in_flight[op_is_write(bio->bi_opf)], 1);
}

void bio_end_io_acct(struct bio *bio, uint64_t start_ns)
{
	struct gendisk *disk = bio->bi_disk;
	struct thread_slot *ts;
	struct disk_stats *st = disk_this_stats(disk, &ts);
	int sgrp = op_stat_group(bio->bi_opf);
	uint64_t now = ktime_get_ns();

	update_io_ticks(disk, now / NSEC_PER_MSEC, true);
	slot_counter_add(ts, &st->ios[sgrp], 1);
	slot_counter_add(ts, &st->sectors[sgrp], bio_sectors(bio));
	slot_counter_add(ts, &st->nsecs[sgrp], now - start_ns);
	slot_counter_add(ts, &st->in_flight[op_is_write(bio->bi_opf)], -1);
}

void blk_disk_get_stats(struct gendisk *disk, struct blk_disk_stats *out)
{
	uint64_t nsecs[4] = { 0 };

	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < disk->nr_stats; i++) {
		struct disk_stats *st = &disk->stats[i];

		for (int g = 0; g < 4; g++) {
			out->ios[g] += atomic_load(&st->ios[g]);
			out->merges[g] += atomic_load(&st->merges[g]);
			out->sectors[g] += atomic_load(&st->sectors[g]);
			nsecs[g] += atomic_load(&st->nsecs[g]);
		}
	}
	for (int g = 0; g < 4; g++)
		out->ticks_ms[g] = nsecs[g] / NSEC_PER_MSEC;
	out->in_flight = (uint64_t)disk_in_flight(disk);
	/* bring io_ticks up to now, as reading diskstats does */
	update_io_ticks(disk, ktime_get_ms(), false);
	out->io_ticks_ms = atomic_load(&disk->io_ticks_ms);
	out->time_in_queue_ms = (nsecs[0] + nsecs[1] + nsecs[2] + nsecs[3]) /
				NSEC_PER_MSEC;
}

int blk_disk_stat_line(struct gendisk *disk, char *buf, size_t len)
{
	struct blk_disk_stats st;

	blk_disk_get_stats(disk, &st);
	return snprintf(buf, len,
			"%4d %7d %s %llu %llu %llu %llu %llu %llu %llu %llu "
			"%llu %llu %llu %llu %llu %llu %llu %llu %llu\n",
			disk->major, disk->first_minor, disk->disk_name,
			(unsigned long long)st.ios[STAT_READ],
			(unsigned long long)st.merges[STAT_READ],
			(unsigned long long)st.sectors[STAT_READ],
			(unsigned long long)st.ticks_ms[STAT_READ],
			(unsigned long long)st.ios[STAT_WRITE],
			(unsigned long long)st.merges[STAT_WRITE],
			(unsigned long long)st.sectors[STAT_WRITE],
			(unsigned long long)st.ticks_ms[STAT_WRITE],
			(unsigned long long)st.in_flight,
			(unsigned long long)st.io_ticks_ms,
			(unsigned long long)st.time_in_queue_ms,
			(unsigned long long)st.ios[STAT_DISCARD],
			(unsigned long long)st.merges[STAT_DISCARD],
			(unsigned long long)st.sectors[STAT_DISCARD],
			(unsigned long long)st.ticks_ms[STAT_DISCARD],
			(unsigned long long)st.ios[STAT_FLUSH],
			(unsigned long long)st.ticks_ms[STAT_FLUSH]);
}
