/* SPDX-License-Identifier: MIT */
/* null_blk parameters, with the kernel module's names (docs/null_blk.md). */
#ifndef BLKSTACK_DRIVERS_NULL_BLK_H
#define BLKSTACK_DRIVERS_NULL_BLK_H

#include <stdint.h>
#include <blkstack/blk-mq.h>

struct null_params {
	uint64_t size_mb;		/* size (MiB; M/G/T suffixes) */
	unsigned int bs;		/* logical block size */
	unsigned int submit_queues;
	unsigned int poll_queues;
	unsigned int hw_queue_depth;
	unsigned int irqmode;		/* 0 none, 1 thread, 2 timer */
	unsigned int completion_nsec;	/* irqmode 2 delay */
	unsigned int memory_backed;
	unsigned int blocking;
	unsigned int shared_tags;	/* one tag set for all such devices */
	unsigned int shared_tag_bitmap;	/* one tag map for all hctxs */
	uint64_t cache_size_mb;		/* volatile write cache */
	unsigned int fua;		/* honour FUA natively (with a cache) */
	unsigned int queue_mode;	/* 0 bio, 2 multi-queue */
	unsigned int no_sched;
	unsigned int discard;
	unsigned int rotational;
	unsigned int max_sectors;
	/* fault injection: act on every N-th request (0 = never) */
	unsigned int requeue;		/* blk_mq_requeue_request() it */
	unsigned int timeout;		/* never complete it: it times out */
	unsigned int resource;		/* queue_rq returns BLK_STS_RESOURCE */
	struct { sector_t start, end; } bad[64];
	unsigned int nr_bad;
};

void null_params_default(struct null_params *p);
int null_params_parse(struct null_params *out, const char *params);

#endif
