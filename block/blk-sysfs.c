// SPDX-License-Identifier: MIT
/*
 * Queue attributes with the names, units and rules of
 * /sys/block/<dev>/queue/ (the kernel's block/blk-sysfs.c), and
 * queue/iosched/<attr> passed to the scheduler. A write either takes
 * effect whole or changes nothing and says why.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "blk-trace.h"

#define BLK_MQ_MAX_DEPTH	10240

struct queue_attr {
	const char *name;
	ssize_t (*show)(struct request_queue *q, char *buf, size_t len);
	int (*store)(struct request_queue *q, const char *val);
};

/* Parse a whole unsigned decimal; -EINVAL naming @attr otherwise. */
static int parse_uint(const char *attr, const char *val, unsigned long max,
		      unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(val, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (errno || end == val || *end || *val == '-' || v > max)
		return blk_err(-EINVAL, "%s: '%s' is not a number in 0..%lu",
			       attr, val, max);
	*out = v;
	return 0;
}

#define SHOW_UINT(fn, expr)						\
static ssize_t fn(struct request_queue *q, char *buf, size_t len)	\
{									\
	return snprintf(buf, len, "%llu\n", (unsigned long long)(expr));	\
}

SHOW_UINT(queue_nr_requests_show, q->nr_requests)
SHOW_UINT(queue_max_sectors_show, q->limits.max_sectors >> 1)
SHOW_UINT(queue_max_hw_sectors_show, q->limits.max_hw_sectors >> 1)
SHOW_UINT(queue_max_segments_show, q->limits.max_segments)
SHOW_UINT(queue_max_segment_size_show, q->limits.max_segment_size)
SHOW_UINT(queue_logical_block_size_show, q->limits.logical_block_size)
SHOW_UINT(queue_physical_block_size_show, q->limits.physical_block_size)
SHOW_UINT(queue_io_min_show, q->limits.io_min)
SHOW_UINT(queue_io_opt_show, q->limits.io_opt)
SHOW_UINT(queue_chunk_sectors_show, q->limits.chunk_sectors)
SHOW_UINT(queue_discard_granularity_show, q->limits.discard_granularity)
SHOW_UINT(queue_discard_max_show,
	  (uint64_t)q->limits.max_discard_sectors << SECTOR_SHIFT)
SHOW_UINT(queue_discard_max_hw_show,
	  (uint64_t)q->limits.max_hw_discard_sectors << SECTOR_SHIFT)
SHOW_UINT(queue_max_discard_segments_show, 1)
SHOW_UINT(queue_write_zeroes_max_show,
	  (uint64_t)q->limits.max_write_zeroes_sectors << SECTOR_SHIFT)
SHOW_UINT(queue_rotational_show, !blk_queue_nonrot(q))
SHOW_UINT(queue_iostats_show, blk_queue_io_stat(q))
SHOW_UINT(queue_io_poll_show, blk_queue_flag_test(QUEUE_FLAG_POLL, q))
SHOW_UINT(queue_fua_show, q->limits.features_fua)
SHOW_UINT(queue_dma_alignment_show, q->limits.dma_alignment)
SHOW_UINT(queue_nr_hw_queues_show, q->nr_hw_queues)
SHOW_UINT(queue_io_timeout_show, q->rq_timeout)
SHOW_UINT(queue_zero_show, 0)
SHOW_UINT(queue_rq_affinity_show,
	  blk_queue_flag_test(QUEUE_FLAG_SAME_COMP, q) ? 1 : 0)

static ssize_t queue_nomerges_show(struct request_queue *q, char *buf,
				   size_t len)
{
	return snprintf(buf, len, "%d\n", blk_queue_nomerges(q) ? 2 :
					  blk_queue_noxmerges(q) ? 1 : 0);
}

static ssize_t queue_scheduler_show(struct request_queue *q, char *buf,
				    size_t len)
{
	return elv_iosched_show(q, buf, len);
}

static ssize_t queue_write_cache_show(struct request_queue *q, char *buf,
				      size_t len)
{
	return snprintf(buf, len, "%s\n", q->limits.features_write_cache ?
					  "write back" : "write through");
}

static ssize_t queue_zoned_show(struct request_queue *q, char *buf,
				size_t len)
{
	return snprintf(buf, len, "none\n");
}

static ssize_t queue_io_poll_delay_show(struct request_queue *q, char *buf,
					size_t len)
{
	return snprintf(buf, len, "-1\n");
}

static int queue_nr_requests_store(struct request_queue *q, const char *val)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned long nr;
	unsigned int i;
	int ret;

	ret = parse_uint("nr_requests", val, BLK_MQ_MAX_DEPTH, &nr);
	if (ret)
		return ret;
	if (nr < 4)
		nr = 4;	/* the kernel's BLKDEV_MIN_RQ */
	if (!q->elevator && nr > q->tag_set->queue_depth)
		return blk_err(-EINVAL, "nr_requests %lu: without a scheduler "
			       "valid values are 4..%u (the driver's depth)",
			       nr, q->tag_set->queue_depth);
	blk_mq_freeze_queue(q);
	blk_mq_quiesce_queue(q);
	queue_for_each_hw_ctx(q, hctx, i) {
		if (q->elevator) {
			ret = blk_mq_tag_update_depth(hctx, &hctx->sched_tags,
						      (unsigned int)nr);
		} else {
			sbitmap_queue_resize(&hctx->tags->bitmap_tags,
					     (unsigned int)nr -
					     hctx->tags->nr_reserved_tags);
		}
		if (ret)
			break;
		if (q->elevator && q->elevator->type->ops.depth_updated)
			q->elevator->type->ops.depth_updated(hctx);
	}
	if (!ret)
		q->nr_requests = (unsigned int)nr;
	blk_mq_unquiesce_queue(q);
	blk_mq_unfreeze_queue(q);
	return ret ? blk_err(ret, "nr_requests %lu: out of memory", nr) : 0;
}

static int queue_max_sectors_store(struct request_queue *q, const char *val)
{
	struct queue_limits lim = q->limits;
	unsigned long kb;
	int ret;

	ret = parse_uint("max_sectors_kb", val, UINT_MAX / 2, &kb);
	if (ret)
		return ret;
	if (kb && (kb > lim.max_hw_sectors / 2 || kb < 4))
		return blk_err(-EINVAL, "max_sectors_kb %lu: valid values are "
			       "4..%u (max_hw_sectors_kb), or 0 for the default",
			       kb, lim.max_hw_sectors / 2);
	lim.max_user_sectors = (unsigned int)kb * 2;
	return queue_limits_update(q, &lim);
}

static int queue_discard_max_store(struct request_queue *q, const char *val)
{
	struct queue_limits lim = q->limits;
	unsigned long bytes;
	int ret;

	ret = parse_uint("discard_max_bytes", val, UINT_MAX, &bytes);
	if (ret)
		return ret;
	if (lim.discard_granularity && bytes % lim.discard_granularity)
		return blk_err(-EINVAL, "discard_max_bytes %lu: must be a "
			       "multiple of discard_granularity %u", bytes,
			       lim.discard_granularity);
	if ((bytes >> SECTOR_SHIFT) > lim.max_hw_discard_sectors)
		return blk_err(-EINVAL, "discard_max_bytes %lu: at most "
			       "discard_max_hw_bytes %llu", bytes,
			       (unsigned long long)lim.max_hw_discard_sectors
				       << SECTOR_SHIFT);
	lim.max_discard_sectors = (unsigned int)(bytes >> SECTOR_SHIFT);
	return queue_limits_update(q, &lim);
}

static int queue_nomerges_store(struct request_queue *q, const char *val)
{
	unsigned long v;
	int ret = parse_uint("nomerges", val, 2, &v);

	if (ret)
		return ret;
	blk_queue_flag_clear(QUEUE_FLAG_NOMERGES, q);
	blk_queue_flag_clear(QUEUE_FLAG_NOXMERGES, q);
	if (v == 2)
		blk_queue_flag_set(QUEUE_FLAG_NOMERGES, q);
	else if (v == 1)
		blk_queue_flag_set(QUEUE_FLAG_NOXMERGES, q);
	return 0;
}

static int store_flag(struct request_queue *q, const char *attr,
		      const char *val, unsigned int flag, bool invert)
{
	unsigned long v;
	int ret = parse_uint(attr, val, 1, &v);

	if (ret)
		return ret;
	if (!!v != invert)
		blk_queue_flag_set(flag, q);
	else
		blk_queue_flag_clear(flag, q);
	return 0;
}

static int queue_rotational_store(struct request_queue *q, const char *val)
{
	int ret = store_flag(q, "rotational", val, QUEUE_FLAG_NONROT, true);

	if (!ret)
		q->limits.features_rotational = !blk_queue_nonrot(q);
	return ret;
}

static int queue_iostats_store(struct request_queue *q, const char *val)
{
	return store_flag(q, "iostats", val, QUEUE_FLAG_IO_STAT, false);
}

static int queue_rq_affinity_store(struct request_queue *q, const char *val)
{
	unsigned long v;
	int ret = parse_uint("rq_affinity", val, 2, &v);

	if (ret)
		return ret;
	if (v)
		blk_queue_flag_set(QUEUE_FLAG_SAME_COMP, q);
	else
		blk_queue_flag_clear(QUEUE_FLAG_SAME_COMP, q);
	return 0;
}

static int queue_write_cache_store(struct request_queue *q, const char *val)
{
	struct queue_limits lim = q->limits;
	size_t n = strcspn(val, "\n");

	if (n == 10 && !strncmp(val, "write back", n))
		lim.features_write_cache = true;
	else if (n == 13 && !strncmp(val, "write through", n))
		lim.features_write_cache = false;
	else
		return blk_err(-EINVAL, "write_cache: '%s': valid values are "
			       "'write back' and 'write through'", val);
	return queue_limits_update(q, &lim);
}

static int queue_scheduler_store(struct request_queue *q, const char *val)
{
	char name[32];
	size_t n = strcspn(val, " \n");

	if (!n || n >= sizeof(name))
		return elevator_switch(q, "?");
	memcpy(name, val, n);
	name[n] = '\0';
	return elevator_switch(q, name);
}

static int queue_nr_hw_queues_store(struct request_queue *q, const char *val)
{
	unsigned long nr;
	int ret = parse_uint("nr_hw_queues", val, ULONG_MAX, &nr);

	if (ret)
		return ret;
	if (!nr || nr > q->nr_cpu_ids)
		return blk_err(-EINVAL, "nr_hw_queues %lu: valid values are "
			       "1..%u", nr, q->nr_cpu_ids);
	return blk_mq_update_nr_hw_queues(q->tag_set, (unsigned int)nr);
}

static int queue_io_timeout_store(struct request_queue *q, const char *val)
{
	unsigned long ms;
	int ret = parse_uint("io_timeout", val, UINT_MAX, &ms);

	if (ret)
		return ret;
	if (!ms)
		return blk_err(-EINVAL, "io_timeout 0: must be at least 1 ms");
	q->rq_timeout = (unsigned int)ms;
	return 0;
}

static const struct queue_attr queue_attrs[] = {
	{ "scheduler", queue_scheduler_show, queue_scheduler_store },
	{ "nr_requests", queue_nr_requests_show, queue_nr_requests_store },
	{ "max_sectors_kb", queue_max_sectors_show, queue_max_sectors_store },
	{ "max_hw_sectors_kb", queue_max_hw_sectors_show, NULL },
	{ "max_segments", queue_max_segments_show, NULL },
	{ "max_segment_size", queue_max_segment_size_show, NULL },
	{ "max_discard_segments", queue_max_discard_segments_show, NULL },
	{ "logical_block_size", queue_logical_block_size_show, NULL },
	{ "physical_block_size", queue_physical_block_size_show, NULL },
	{ "hw_sector_size", queue_logical_block_size_show, NULL },
	{ "minimum_io_size", queue_io_min_show, NULL },
	{ "optimal_io_size", queue_io_opt_show, NULL },
	{ "chunk_sectors", queue_chunk_sectors_show, NULL },
	{ "discard_granularity", queue_discard_granularity_show, NULL },
	{ "discard_max_bytes", queue_discard_max_show, queue_discard_max_store },
	{ "discard_max_hw_bytes", queue_discard_max_hw_show, NULL },
	{ "write_zeroes_max_bytes", queue_write_zeroes_max_show, NULL },
	{ "rotational", queue_rotational_show, queue_rotational_store },
	{ "nomerges", queue_nomerges_show, queue_nomerges_store },
	{ "iostats", queue_iostats_show, queue_iostats_store },
	{ "rq_affinity", queue_rq_affinity_show, queue_rq_affinity_store },
	{ "io_poll", queue_io_poll_show, NULL },
	{ "io_poll_delay", queue_io_poll_delay_show, NULL },
	{ "write_cache", queue_write_cache_show, queue_write_cache_store },
	{ "fua", queue_fua_show, NULL },
	{ "dma_alignment", queue_dma_alignment_show, NULL },
	{ "zoned", queue_zoned_show, NULL },
	{ "add_random", queue_zero_show, NULL },
	{ "stable_writes", queue_zero_show, NULL },
	{ "nr_hw_queues", queue_nr_hw_queues_show, queue_nr_hw_queues_store },
	{ "io_timeout", queue_io_timeout_show, queue_io_timeout_store },
};

const char *const *blk_queue_attr_names(void)
{
	static const char *names[ARRAY_SIZE(queue_attrs) + 1];

	if (!names[0])
		for (size_t i = 0; i < ARRAY_SIZE(queue_attrs); i++)
			names[i] = queue_attrs[i].name;
	return names;
}

static const struct queue_attr *find_attr(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(queue_attrs); i++)
		if (!strcmp(queue_attrs[i].name, name))
			return &queue_attrs[i];
	return NULL;
}

static int no_such_attr(const char *name)
{
	char list[1024];
	size_t pos = 0;

	for (size_t i = 0; i < ARRAY_SIZE(queue_attrs); i++)
		pos += (size_t)snprintf(list + pos, sizeof(list) - pos, "%s%s",
					i ? " " : "", queue_attrs[i].name);
	return blk_err(-ENOENT, "no queue attribute '%s'; valid: %s iosched/* trace/*",
		       name, list);
}

int blk_queue_attr_show(struct gendisk *disk, const char *attr, char *buf,
			size_t len)
{
	struct request_queue *q = disk->queue;
	const struct queue_attr *a;
	ssize_t ret;

	if (!strncmp(attr, "iosched/", 8)) {
		pthread_mutex_lock(&q->sysfs_lock);
		ret = elv_attr_show(q, attr + 8, buf, len);
		pthread_mutex_unlock(&q->sysfs_lock);
		return (int)ret;
	}
	if (!strncmp(attr, "trace/", 6))	/* blktrace-sysfs.c */
		return (int)blk_trace_attr_show(q, attr + 6, buf, len);
	a = find_attr(attr);
	if (!a)
		return no_such_attr(attr);
	if (!queue_is_mq(q) && a->show == queue_nr_requests_show)
		return snprintf(buf, len, "0\n");
	pthread_mutex_lock(&q->sysfs_lock);
	ret = a->show(q, buf, len);
	pthread_mutex_unlock(&q->sysfs_lock);
	return (int)ret;
}

int blk_queue_attr_store(struct gendisk *disk, const char *attr,
			 const char *val)
{
	struct request_queue *q = disk->queue;
	const struct queue_attr *a;
	int ret;

	if (!strncmp(attr, "iosched/", 8)) {
		pthread_mutex_lock(&q->sysfs_lock);
		ret = elv_attr_store(q, attr + 8, val);
		pthread_mutex_unlock(&q->sysfs_lock);
		return ret;
	}
	if (!strncmp(attr, "trace/", 6))	/* blktrace-sysfs.c */
		return blk_trace_attr_store(q, attr + 6, val);
	a = find_attr(attr);
	if (!a)
		return no_such_attr(attr);
	if (!a->store)
		return blk_err(-EPERM, "queue attribute '%s' is read-only",
			       attr);
	if (!queue_is_mq(q) &&
	    (a->store == queue_scheduler_store ||
	     a->store == queue_nr_requests_store ||
	     a->store == queue_nr_hw_queues_store))
		return blk_err(-EINVAL, "%s: %s is a bio-based device with no "
			       "request queue", attr, disk->disk_name);
	pthread_mutex_lock(&q->sysfs_lock);
	ret = a->store(q, val);
	pthread_mutex_unlock(&q->sysfs_lock);
	return ret;
}
