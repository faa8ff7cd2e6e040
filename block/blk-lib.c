// SPDX-License-Identifier: MIT
/*
 * Convenience I/O on a disk by byte offset (the kernel's block/blk-lib.c
 * and the block device read/write path): synchronous helpers and an
 * asynchronous submit with a completion callback.
 */
#include <errno.h>
#include <limits.h>

#include "blk.h"

/* Largest single bio the helpers build; the core splits it further. */
#define BLKDEV_MAX_BIO_BYTES	(1U << 30)

static int check_range(struct gendisk *disk, off_t off, size_t len,
		       bool need_len)
{
	unsigned int lbs = bdev_logical_block_size(disk);
	uint64_t cap = (uint64_t)get_capacity(disk) << SECTOR_SHIFT;

	if (off < 0 || (need_len && !len))
		return blk_err(-EINVAL, "%s: offset %lld length %zu: offset "
			       "must be >= 0 and length > 0", disk->disk_name,
			       (long long)off, len);
	if ((uint64_t)off % lbs || len % lbs)
		return blk_err(-EINVAL, "%s: offset %lld length %zu: must be "
			       "multiples of the logical block size %u",
			       disk->disk_name, (long long)off, len, lbs);
	if ((uint64_t)off > cap || len > cap - (uint64_t)off)
		return blk_err(-ENOSPC, "%s: offset %lld length %zu: beyond "
			       "the device's %llu bytes", disk->disk_name,
			       (long long)off, len, (unsigned long long)cap);
	return 0;
}

static void blkdev_submit_endio(struct bio *bio)
{
	blkdev_done_fn *done = (blkdev_done_fn *)(uintptr_t)bio->bi_private;
	void *priv = bio->bi_end_data;
	int err = blk_status_to_errno(bio->bi_status);

	bio_put(bio);
	done(priv, err);
}

int blkdev_submit(struct gendisk *disk, blk_opf_t opf, off_t off, void *buf,
		  size_t len, blkdev_done_fn *done, void *priv)
{
	struct bio *bio;
	int ret;

	ret = check_range(disk, off, len, !op_has_no_data(opf) &&
				       bio_op_of(opf) != REQ_OP_FLUSH &&
				       !(opf & REQ_PREFLUSH));
	if (ret)
		return ret;
	if (len > UINT_MAX - SECTOR_SIZE)
		return blk_err(-EINVAL, "%s: length %zu: at most %u per I/O",
			       disk->disk_name, len, UINT_MAX - SECTOR_SIZE);
	bio = bio_alloc(disk, 1, opf);
	if (!bio)
		return blk_err(-ENOMEM, "out of memory for a bio");
	bio->bi_iter.bi_sector = (sector_t)off >> SECTOR_SHIFT;
	if (op_has_no_data(opf) || !len)
		bio->bi_iter.bi_size = (unsigned int)len;
	else
		bio_add_buf(bio, buf, (unsigned int)len);
	bio->bi_end_io = blkdev_submit_endio;
	bio->bi_private = (void *)(uintptr_t)done;
	bio->bi_end_data = priv;
	submit_bio(bio);
	return 0;
}

/* One synchronous bio of @op over [off, off + len). */
static int blkdev_sync_bio(struct gendisk *disk, blk_opf_t opf, off_t off,
			   void *buf, size_t len)
{
	struct bio *bio = bio_alloc(disk, 1, opf);
	int ret;

	if (!bio)
		return blk_err(-ENOMEM, "out of memory for a bio");
	bio->bi_iter.bi_sector = (sector_t)off >> SECTOR_SHIFT;
	if (buf)
		bio_add_buf(bio, buf, (unsigned int)len);
	else
		bio->bi_iter.bi_size = (unsigned int)len;
	ret = submit_bio_wait(bio);
	bio_put(bio);
	return ret;
}

static ssize_t blkdev_rw(struct gendisk *disk, blk_opf_t opf, void *buf,
			 size_t len, off_t off)
{
	size_t done = 0;
	int ret = check_range(disk, off, len, false);

	if (ret)
		return ret;
	while (done < len) {
		size_t n = min(len - done, (size_t)BLKDEV_MAX_BIO_BYTES);

		ret = blkdev_sync_bio(disk, opf, off + (off_t)done,
				      buf ? (char *)buf + done : NULL, n);
		if (ret)
			return done ? (ssize_t)done : ret;
		done += n;
	}
	return (ssize_t)done;
}

ssize_t blkdev_pread(struct gendisk *disk, void *buf, size_t len, off_t off)
{
	return blkdev_rw(disk, REQ_OP_READ, buf, len, off);
}

ssize_t blkdev_pwrite(struct gendisk *disk, const void *buf, size_t len,
		      off_t off)
{
	return blkdev_rw(disk, REQ_OP_WRITE | REQ_SYNC, (void *)buf, len, off);
}

int blkdev_flush(struct gendisk *disk)
{
	return blkdev_sync_bio(disk, REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC, 0,
			       NULL, 0);
}

int blkdev_discard(struct gendisk *disk, off_t off, size_t len)
{
	ssize_t ret = blkdev_rw(disk, REQ_OP_DISCARD, NULL, len, off);

	return ret < 0 ? (int)ret : 0;
}

int blkdev_write_zeroes(struct gendisk *disk, off_t off, size_t len)
{
	ssize_t ret = blkdev_rw(disk, REQ_OP_WRITE_ZEROES, NULL, len, off);

	return ret < 0 ? (int)ret : 0;
}
