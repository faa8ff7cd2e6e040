// SPDX-License-Identifier: MIT
/*
 * Splitting bios to the queue limits and merging bios into requests and
 * requests with each other (the kernel's block/blk-merge.c).
 *
 * A split keeps the front part (marked REQ_NOMERGE: there is no chance to
 * merge it) and resubmits the rest, chained so the original completes
 * last; inside submit_bio_noacct() the resubmission is queued, not
 * recursed into.
 */
#include <errno.h>

#include "blk.h"
#include "blk-trace.h"

static unsigned int blk_chunk_sectors_left(sector_t offset,
					   unsigned int chunk_sectors)
{
	if (!(chunk_sectors & (chunk_sectors - 1)))
		return chunk_sectors - (unsigned int)(offset & (chunk_sectors - 1));
	return chunk_sectors - (unsigned int)(offset % chunk_sectors);
}

/* Most sectors one request may carry, counted from @bio's start. */
static unsigned int get_max_io_size(const struct bio *bio,
				    const struct queue_limits *lim)
{
	unsigned int pbs = lim->physical_block_size >> SECTOR_SHIFT;
	unsigned int lbs = lim->logical_block_size >> SECTOR_SHIFT;
	unsigned int max_sectors = lim->max_sectors, start, end;

	if (lim->chunk_sectors)
		max_sectors = min(max_sectors,
				  blk_chunk_sectors_left(bio->bi_iter.bi_sector,
							 lim->chunk_sectors));
	/* end splits on a physical block boundary where we can */
	start = (unsigned int)(bio->bi_iter.bi_sector & (pbs - 1));
	end = (start + max_sectors) & ~(pbs - 1);
	if (end > start)
		return end - start;
	return max_sectors & ~(lbs - 1);
}

/*
 * Account for a segment of @bv: it may be several hardware segments if
 * it is longer than max_segment_size. Returns true if the bio must be
 * split within or before this segment.
 */
static bool bvec_split_segs(const struct queue_limits *lim,
			    const struct bio_vec *bv, unsigned int *nsegs,
			    unsigned int *bytes, unsigned int max_segs,
			    unsigned int max_bytes)
{
	unsigned int max_len = max_bytes - *bytes;
	unsigned int len = min(bv->bv_len, max_len);
	unsigned int total_len = 0;

	while (len && *nsegs < max_segs) {
		unsigned int seg_size = min(lim->max_segment_size, len);

		(*nsegs)++;
		total_len += seg_size;
		len -= seg_size;
	}
	*bytes += total_len;
	return len > 0 || bv->bv_len > max_len;
}

/*
 * Where a read or write must be split to fit max_sectors, max_segments,
 * max_segment_size and chunk_sectors. Returns the sectors to split at, 0
 * for "fits", or -EINVAL if no aligned prefix fits.
 */
static int bio_split_rw_at(const struct bio *bio,
			   const struct queue_limits *lim,
			   unsigned int *segs)
{
	unsigned int max_bytes = get_max_io_size(bio, lim) << SECTOR_SHIFT;
	unsigned int nsegs = 0, bytes = 0;
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		if (nsegs < lim->max_segments &&
		    bytes + bv.bv_len <= max_bytes &&
		    bv.bv_len <= lim->max_segment_size) {
			nsegs++;
			bytes += bv.bv_len;
		} else if (bvec_split_segs(lim, &bv, &nsegs, &bytes,
					   lim->max_segments, max_bytes)) {
			goto split;
		}
	}
	*segs = nsegs;
	return 0;
split:
	*segs = nsegs;
	bytes &= ~(lim->logical_block_size - 1);
	if (!bytes)
		return -EINVAL;
	return (int)(bytes >> SECTOR_SHIFT);
}

static unsigned int bio_split_discard_at(const struct bio *bio,
					 const struct queue_limits *lim)
{
	unsigned int granularity = max(lim->discard_granularity >> SECTOR_SHIFT,
				       1U);
	unsigned int max_discard = lim->max_discard_sectors;
	unsigned int split, tmp;

	max_discard = min(max_discard, (UINT32_MAX >> SECTOR_SHIFT) &
				       ~((lim->logical_block_size >>
					  SECTOR_SHIFT) - 1));
	max_discard -= max_discard % granularity;
	if (!max_discard || bio_sectors(bio) <= max_discard)
		return 0;
	split = max_discard;
	/* end the piece on a granularity boundary so the next one starts on it */
	tmp = (unsigned int)((bio->bi_iter.bi_sector + split) % granularity);
	if (split > tmp)
		split -= tmp;
	return split;
}

static unsigned int bio_split_write_zeroes_at(const struct bio *bio,
					      const struct queue_limits *lim)
{
	if (!lim->max_write_zeroes_sectors ||
	    bio_sectors(bio) <= lim->max_write_zeroes_sectors)
		return 0;
	return lim->max_write_zeroes_sectors;
}

/*
 * The common case needs no walk: one segment that fits every limit (the
 * kernel's bio_may_need_split()).
 */
static bool bio_fits_one_segment(const struct bio *bio,
				 const struct queue_limits *lim)
{
	unsigned int size = bio->bi_iter.bi_size;
	unsigned int sectors = size >> SECTOR_SHIFT;

	if (bio->bi_vcnt != 1 || bio->bi_iter.bi_idx || bio->bi_iter.bi_bvec_done)
		return false;
	if (size > lim->max_segment_size || sectors > lim->max_sectors)
		return false;
	if (!lim->chunk_sectors)
		return true;
	return sectors <= blk_chunk_sectors_left(bio->bi_iter.bi_sector,
						 lim->chunk_sectors);
}

/*
 * Split @bio to the limits if needed. Returns the bio to go on with (the
 * front part after a split, with the rest resubmitted), or NULL if the
 * bio was ended with an error.
 */
struct bio *__bio_split_to_limits(struct bio *bio,
				  const struct queue_limits *lim,
				  unsigned int *nr_segs)
{
	struct request_queue *q = bio->bi_disk->queue;
	struct bio *split;
	int sectors;

	if (likely(bio_op(bio) <= REQ_OP_WRITE &&
		   bio_fits_one_segment(bio, lim))) {
		*nr_segs = 1;
		return bio;
	}
	switch (bio_op(bio)) {
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
		*nr_segs = 1;
		sectors = (int)bio_split_discard_at(bio, lim);
		break;
	case REQ_OP_WRITE_ZEROES:
		*nr_segs = 0;
		sectors = (int)bio_split_write_zeroes_at(bio, lim);
		break;
	default:
		if (!bio_has_data(bio)) {
			*nr_segs = 0;
			return bio;
		}
		sectors = bio_split_rw_at(bio, lim, nr_segs);
		break;
	}
	if (!sectors)
		return bio;
	if (sectors < 0) {
		bio->bi_status = BLK_STS_INVAL;
		goto fail;
	}
	/* a NOWAIT bio cannot wait for its pieces: let the caller retry */
	if ((bio->bi_opf & REQ_NOWAIT) && bio_op(bio) <= REQ_OP_WRITE) {
		bio->bi_status = BLK_STS_AGAIN;
		goto fail;
	}
	split = bio_split(bio, (unsigned int)sectors);
	if (!split) {
		bio->bi_status = BLK_STS_RESOURCE;
		goto fail;
	}
	split->bi_opf |= REQ_NOMERGE;
	bio_chain(split, bio);
	trace_block_split(split, bio->bi_iter.bi_sector);
	atomic_fetch_add_explicit(&q->nr_splits, 1, memory_order_relaxed);
	submit_bio_noacct(bio);
	return split;
fail:
	bio_endio(bio);
	return NULL;
}

/* ---- merge rules ---- */

static void req_set_nomerge(struct request_queue *q, struct request *req)
{
	req->cmd_flags |= REQ_NOMERGE;
	if (req == q->last_merge)
		q->last_merge = NULL;
}

static bool rq_mergeable(struct request *rq)
{
	if (blk_rq_is_passthrough(rq))
		return false;
	if (req_op(rq) == REQ_OP_FLUSH || req_op(rq) == REQ_OP_WRITE_ZEROES)
		return false;
	if (rq->cmd_flags & REQ_NOMERGE_FLAGS)
		return false;
	if (rq->rq_flags & (RQF_FLUSH_SEQ | RQF_SPECIAL_PAYLOAD))
		return false;
	return blk_mq_rq_state(rq) == MQ_RQ_IDLE;
}

static bool bio_mergeable(const struct bio *bio)
{
	return !(bio->bi_opf & REQ_NOMERGE_FLAGS);
}

unsigned int blk_rq_get_max_sectors(struct request *rq, sector_t offset)
{
	const struct queue_limits *lim = &rq->q->limits;
	unsigned int max_sectors;

	if (blk_rq_is_passthrough(rq))
		return lim->max_hw_sectors;
	switch (req_op(rq)) {
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
		return lim->max_discard_sectors;
	case REQ_OP_WRITE_ZEROES:
		return lim->max_write_zeroes_sectors;
	default:
		max_sectors = lim->max_sectors;
	}
	if (!lim->chunk_sectors)
		return max_sectors;
	return min(max_sectors,
		   blk_chunk_sectors_left(offset, lim->chunk_sectors));
}

static bool ll_new_hw_segment(struct request *req, unsigned int nr_segs)
{
	/* a discard range merged on adds no data segment */
	if (req_op(req) == REQ_OP_DISCARD)
		return true;
	if (req->nr_phys_segments + nr_segs > req->q->limits.max_segments) {
		req_set_nomerge(req->q, req);
		return false;
	}
	req->nr_phys_segments += nr_segs;
	return true;
}

static bool ll_back_merge_fn(struct request *req, struct bio *bio,
			     unsigned int nr_segs)
{
	if (blk_rq_sectors(req) + bio_sectors(bio) >
	    blk_rq_get_max_sectors(req, blk_rq_pos(req))) {
		req_set_nomerge(req->q, req);
		return false;
	}
	return ll_new_hw_segment(req, nr_segs);
}

static bool ll_front_merge_fn(struct request *req, struct bio *bio,
			      unsigned int nr_segs)
{
	if (blk_rq_sectors(req) + bio_sectors(bio) >
	    blk_rq_get_max_sectors(req, bio->bi_iter.bi_sector)) {
		req_set_nomerge(req->q, req);
		return false;
	}
	return ll_new_hw_segment(req, nr_segs);
}

static inline bool __blk_rq_merge_ok(struct request *rq, struct bio *bio)
{
	if (!rq_mergeable(rq) || !bio_mergeable(bio))
		return false;
	if (req_op(rq) != bio_op(bio))
		return false;
	if (rq->q != bio->bi_disk->queue)
		return false;
	if (rq->ioprio != bio->bi_ioprio)
		return false;
	return true;
}

bool blk_rq_merge_ok(struct request *rq, struct bio *bio)
{
	return __blk_rq_merge_ok(rq, bio);
}


static void blk_rq_set_mixed_merge(struct request *rq)
{
	blk_opf_t ff = rq->cmd_flags & REQ_FAILFAST_MASK;

	if (rq->rq_flags & RQF_MIXED_MERGE)
		return;
	/* failfast is per bio once requests of different kinds mix */
	for (struct bio *bio = rq->bio; bio; bio = bio->bi_next)
		bio->bi_opf |= ff;
	rq->rq_flags |= RQF_MIXED_MERGE;
}

bool bio_attempt_back_merge(struct request *req, struct bio *bio,
			    unsigned int nr_segs)
{
	const blk_opf_t ff = bio->bi_opf & REQ_FAILFAST_MASK;

	if (!ll_back_merge_fn(req, bio, nr_segs))
		return false;
	trace_block_bio_backmerge(bio);
	if ((req->cmd_flags & REQ_FAILFAST_MASK) != ff)
		blk_rq_set_mixed_merge(req);
	req->biotail->bi_next = bio;
	req->biotail = bio;
	req->__data_len += bio->bi_iter.bi_size;
	blk_account_io_merge_bio(req);
	return true;
}

bool bio_attempt_front_merge(struct request *req, struct bio *bio,
			     unsigned int nr_segs)
{
	const blk_opf_t ff = bio->bi_opf & REQ_FAILFAST_MASK;

	if (!ll_front_merge_fn(req, bio, nr_segs))
		return false;
	trace_block_bio_frontmerge(bio);
	if ((req->cmd_flags & REQ_FAILFAST_MASK) != ff)
		blk_rq_set_mixed_merge(req);
	bio->bi_next = req->bio;
	req->bio = bio;
	req->__sector = bio->bi_iter.bi_sector;
	req->__data_len += bio->bi_iter.bi_size;
	blk_account_io_merge_bio(req);
	return true;
}

/* Discards with no data can only be merged when contiguous. */
bool bio_attempt_discard_merge(struct request_queue *q, struct request *req,
			       struct bio *bio)
{
	return bio_attempt_back_merge(req, bio, 0);
}

enum bio_merge_status blk_attempt_bio_merge(struct request_queue *q,
					    struct request *rq,
					    struct bio *bio,
					    unsigned int nr_segs,
					    bool sched_allow_merge)
{
	enum elv_merge type = blk_try_merge(rq, bio);

	/*
	 * The position test first: it is two compares, and on random I/O
	 * it says no to almost every bio (the order changes no verdict).
	 */
	if (type == ELEVATOR_NO_MERGE || !__blk_rq_merge_ok(rq, bio))
		return BIO_MERGE_NONE;
	switch (type) {
	case ELEVATOR_BACK_MERGE:
		if (!sched_allow_merge || blk_mq_sched_allow_merge(q, rq, bio))
			return bio_attempt_back_merge(rq, bio, nr_segs) ?
			       BIO_MERGE_OK : BIO_MERGE_FAILED;
		break;
	case ELEVATOR_FRONT_MERGE:
		if (!sched_allow_merge || blk_mq_sched_allow_merge(q, rq, bio))
			return bio_attempt_front_merge(rq, bio, nr_segs) ?
			       BIO_MERGE_OK : BIO_MERGE_FAILED;
		break;
	default:
		return BIO_MERGE_NONE;
	}
	return BIO_MERGE_FAILED;
}

/*
 * Merge @bio into a request waiting in this thread's plug: the most
 * recent one for @q (the whole list when requests for several queues
 * are mixed in it).
 */
bool blk_attempt_plug_merge(struct request_queue *q, struct bio *bio,
			    unsigned int nr_segs)
{
	struct blk_plug *plug = blk_current_plug();
	struct request *rq, *last = NULL;

	if (!plug || !plug->mq_list)
		return false;
	rq = plug->mq_tail;
	if (rq->q == q)
		return blk_attempt_bio_merge(q, rq, bio, nr_segs, false) ==
		       BIO_MERGE_OK;
	if (!plug->multiple_queues)
		return false;
	for (rq = plug->mq_list; rq; rq = rq->rq_next)
		if (rq->q == q)
			last = rq;
	return last && blk_attempt_bio_merge(q, last, bio, nr_segs, false) ==
		       BIO_MERGE_OK;
}

/* ---- request + request ---- */

static bool ll_merge_requests_fn(struct request_queue *q, struct request *req,
				 struct request *next)
{
	unsigned int total = req->nr_phys_segments + next->nr_phys_segments;

	if (blk_rq_sectors(req) + blk_rq_sectors(next) >
	    blk_rq_get_max_sectors(req, blk_rq_pos(req)))
		return false;
	if (total > q->limits.max_segments)
		return false;
	req->nr_phys_segments = (unsigned short)total;
	return true;
}

/*
 * Merge @next into @req if they are contiguous and compatible. Returns
 * @next, now empty, for the caller to free; NULL if not merged.
 */
static struct request *attempt_merge(struct request_queue *q,
				     struct request *req,
				     struct request *next)
{
	/*
	 * The same tests as the kernel's, the cheapest first: an insert
	 * merge tries the last merged request whatever its position, and
	 * for random I/O the position alone says no.
	 */
	if (blk_rq_pos(req) + blk_rq_sectors(req) != blk_rq_pos(next))
		return NULL;
	if (!rq_mergeable(req) || !rq_mergeable(next))
		return NULL;
	if (req_op(req) != req_op(next) || req->ioprio != next->ioprio)
		return NULL;
	if (!ll_merge_requests_fn(q, req, next))
		return NULL;
	if (((req->rq_flags | next->rq_flags) & RQF_MIXED_MERGE) ||
	    (req->cmd_flags & REQ_FAILFAST_MASK) !=
		    (next->cmd_flags & REQ_FAILFAST_MASK)) {
		blk_rq_set_mixed_merge(req);
		blk_rq_set_mixed_merge(next);
	}
	/* accounting follows the older of the two */
	if (next->start_time_ns < req->start_time_ns)
		req->start_time_ns = next->start_time_ns;
	req->biotail->bi_next = next->bio;
	req->biotail = next->biotail;
	req->__data_len += blk_rq_bytes(next);
	if (q->elevator)
		elv_merge_requests(q, req, next);
	blk_account_io_merge_request(next);
	next->bio = NULL;
	next->__data_len = 0;
	return next;
}

struct request *attempt_back_merge(struct request_queue *q,
				   struct request *rq)
{
	struct request *next = elv_latter_request(q, rq);

	return next ? attempt_merge(q, rq, next) : NULL;
}

struct request *attempt_front_merge(struct request_queue *q,
				    struct request *rq)
{
	struct request *prev = elv_former_request(q, rq);

	return prev ? attempt_merge(q, prev, rq) : NULL;
}

bool blk_attempt_req_merge(struct request_queue *q, struct request *rq,
			   struct request *next)
{
	return attempt_merge(q, rq, next) != NULL;
}
