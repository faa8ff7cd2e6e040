// SPDX-License-Identifier: MIT
/*
 * Queue limits (the kernel's block/blk-settings.c): defaults, validation
 * of what a driver asks for, and applying new limits to a live queue.
 */
#include <errno.h>
#include <string.h>

#include "blk.h"

void blk_set_default_limits(struct queue_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->logical_block_size = 512;
	lim->physical_block_size = 512;
	lim->io_min = 512;
	lim->max_hw_sectors = BLK_SAFE_MAX_SECTORS;
	lim->max_sectors = BLK_SAFE_MAX_SECTORS;
	lim->max_segments = BLK_MAX_SEGMENTS;
	lim->max_segment_size = BLK_MAX_SEGMENT_SIZE;
}

static bool is_power_of_2(unsigned int n)
{
	return n && !(n & (n - 1));
}

/*
 * Check a driver's limits and derive the rest: max_sectors is the
 * smaller of the hardware's and the kernel's default cap (or the user's
 * max_sectors_kb), discard limits are aligned to the granularity.
 */
int blk_validate_limits(struct queue_limits *lim)
{
	unsigned int lbs_sectors;

	if (!lim->logical_block_size)
		lim->logical_block_size = 512;
	if (lim->logical_block_size < 512 || lim->logical_block_size > 65536 ||
	    !is_power_of_2(lim->logical_block_size))
		return blk_err(-EINVAL, "logical_block_size %u: must be a "
			       "power of two from 512 to 65536",
			       lim->logical_block_size);
	if (lim->physical_block_size < lim->logical_block_size)
		lim->physical_block_size = lim->logical_block_size;
	if (!is_power_of_2(lim->physical_block_size))
		return blk_err(-EINVAL, "physical_block_size %u: must be a "
			       "power of two >= logical_block_size",
			       lim->physical_block_size);
	if (lim->io_min < lim->physical_block_size)
		lim->io_min = lim->physical_block_size;
	lbs_sectors = lim->logical_block_size >> SECTOR_SHIFT;

	if (!lim->max_hw_sectors)
		lim->max_hw_sectors = BLK_SAFE_MAX_SECTORS;
	lim->max_hw_sectors &= ~(lbs_sectors - 1);
	if (lim->max_hw_sectors < lbs_sectors ||
	    lim->max_hw_sectors < (4096 >> SECTOR_SHIFT))
		return blk_err(-EINVAL, "max_hw_sectors %u: must hold at least "
			       "one page and one logical block",
			       lim->max_hw_sectors);
	if (lim->max_user_sectors) {
		if (lim->max_user_sectors < (4096 >> SECTOR_SHIFT))
			return blk_err(-EINVAL, "max_sectors_kb %u: must be at "
				       "least 4", lim->max_user_sectors / 2);
		lim->max_sectors = min(lim->max_hw_sectors,
				       lim->max_user_sectors);
	} else {
		lim->max_sectors = min(lim->max_hw_sectors,
				       (unsigned int)BLK_DEF_MAX_SECTORS);
	}
	lim->max_sectors &= ~(lbs_sectors - 1);

	if (!lim->max_segments)
		lim->max_segments = BLK_MAX_SEGMENTS;
	if (!lim->max_segment_size)
		lim->max_segment_size = BLK_MAX_SEGMENT_SIZE;
	if (lim->max_segment_size < 4096)
		return blk_err(-EINVAL, "max_segment_size %u: must be at least "
			       "4096", lim->max_segment_size);
	if (lim->chunk_sectors && lim->chunk_sectors < lbs_sectors)
		return blk_err(-EINVAL, "chunk_sectors %u: smaller than a "
			       "logical block", lim->chunk_sectors);

	if (lim->max_hw_discard_sectors && !lim->max_discard_sectors)
		lim->max_discard_sectors = lim->max_hw_discard_sectors;
	lim->max_discard_sectors = min(lim->max_discard_sectors,
				       lim->max_hw_discard_sectors);
	if (lim->max_discard_sectors && !lim->discard_granularity)
		lim->discard_granularity = lim->logical_block_size;
	if (lim->discard_granularity &&
	    (lim->discard_granularity < lim->logical_block_size ||
	     lim->discard_granularity % lim->logical_block_size))
		return blk_err(-EINVAL, "discard_granularity %u: must be a "
			       "multiple of logical_block_size %u",
			       lim->discard_granularity,
			       lim->logical_block_size);
	lim->max_write_zeroes_sectors &= ~(lbs_sectors - 1);
	if (!lim->features_write_cache)
		lim->features_fua = false;
	return 0;
}

/*
 * Replace @q's limits while I/O may run: validated first (nothing changes
 * on error), then swapped under a freeze so no request straddles old and
 * new limits.
 */
int queue_limits_update(struct request_queue *q,
			const struct queue_limits *lim)
{
	struct queue_limits new = *lim;
	int ret = blk_validate_limits(&new);

	if (ret)
		return ret;
	blk_mq_freeze_queue(q);
	q->limits = new;
	blk_queue_apply_limits(q);
	blk_mq_unfreeze_queue(q);
	return 0;
}

/* Flags that mirror limits. */
void blk_queue_apply_limits(struct request_queue *q)
{
	if (q->limits.features_rotational)
		blk_queue_flag_clear(QUEUE_FLAG_NONROT, q);
	else
		blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
}

const struct queue_limits *queue_limits(const struct request_queue *q)
{
	return &q->limits;
}
