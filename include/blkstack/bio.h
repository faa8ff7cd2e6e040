/* SPDX-License-Identifier: MIT */
/*
 * struct bio: one I/O to a block device, described as a start sector and a
 * vector of memory segments. The consumer's unit of work (the kernel's
 * include/linux/bio.h, with user-space buffers instead of pages).
 *
 * Life cycle: bio_alloc() (from a per-thread cache) -> bio_add_buf() ->
 * submit_bio() -> ->bi_end_io(bio) is called exactly once, from whatever
 * thread completed the I/O, with ->bi_status set -> bio_put().
 * The library does not touch a bio after calling its ->bi_end_io, so the
 * owner may put or reuse it from any thread as soon as that call starts.
 */
#ifndef BLKSTACK_BIO_H
#define BLKSTACK_BIO_H

#include <stddef.h>
#include "blk_types.h"

struct gendisk;
struct bio;

typedef void (bio_end_io_t)(struct bio *bio);

struct bio_vec {
	void *bv_buf;
	unsigned int bv_len;
};

/* Position inside a bio: what is left to do. */
struct bvec_iter {
	sector_t bi_sector;
	unsigned int bi_size;		/* bytes left */
	unsigned int bi_idx;		/* current index into bi_io_vec */
	unsigned int bi_bvec_done;	/* bytes done in the current bvec */
};

/* bi_flags */
enum {
	BIO_CLONED,		/* shares another bio's bi_io_vec */
	BIO_CHAIN,		/* has a parent: ->bi_private is the parent */
	BIO_REMAPPED,		/* start sector already remapped (stacked dev) */
	BIO_TRACE_COMPLETION,
	BIO_QUIESCE_CHECKED,
	BIO_SPLIT_DONE,		/* already split to the queue limits */
	BIO_REFFED,		/* bio_get() was called: count references */
	BIO_FLAG_LAST
};

#define BIO_INLINE_VECS	4

struct bio {
	struct bio *bi_next;		/* request queue link, bio lists */
	struct gendisk *bi_disk;
	blk_opf_t bi_opf;
	unsigned short bi_flags;
	unsigned short bi_ioprio;
	blk_status_t bi_status;
	_Atomic int __bi_remaining;	/* chained children + self */
	struct bvec_iter bi_iter;
	bio_end_io_t *bi_end_io;
	void *bi_private;
	void *bi_end_data;		/* a second word for the submitter */
	struct io_context *bi_ioc;	/* issuer; NULL = current thread's */
	unsigned int bi_cookie;		/* polling: hctx the bio went to */
	unsigned short bi_vcnt;
	unsigned short bi_max_vecs;
	_Atomic int __bi_cnt;		/* references */
	struct bio_vec *bi_io_vec;
	uint64_t bi_issue_ns;		/* submission time, for latency stats */
	struct bio_vec bi_inline_vecs[BIO_INLINE_VECS];
};

/*
 * Allocate a bio for @disk able to hold @nr_vecs segments. Up to
 * BIO_INLINE_VECS come from the per-thread cache without malloc().
 * Returns NULL only when memory is exhausted.
 */
struct bio *bio_alloc(struct gendisk *disk, unsigned short nr_vecs,
		      blk_opf_t opf);
void bio_get(struct bio *bio);
void bio_put(struct bio *bio);
/* Reinitialise for reuse (keeps the vector storage). */
void bio_reset(struct bio *bio, struct gendisk *disk, blk_opf_t opf);

/*
 * Append @len bytes at @buf. A buffer contiguous with the last segment
 * extends it. Returns @len, or 0 if the bio has no room for another
 * segment (submit it and start another).
 */
unsigned int bio_add_buf(struct bio *bio, void *buf, unsigned int len);

/*
 * Make @bio a child of @parent: @parent completes only after @bio, and an
 * error in either is kept in @parent.
 */
void bio_chain(struct bio *bio, struct bio *parent);

/*
 * Split off the first @sectors of @bio into a new bio (returned), chained
 * to @bio, sharing its vectors; @bio is advanced past them. Returns NULL
 * if @sectors is 0 or not less than the bio's size, or on no memory.
 */
struct bio *bio_split(struct bio *bio, unsigned int sectors);

/* A new bio sharing @src's vectors (BIO_CLONED), for stacked devices. */
struct bio *bio_alloc_clone(struct gendisk *disk, struct bio *src);

void __bio_advance(struct bio *bio, unsigned int bytes);

/*
 * Move @bio's position @bytes on. Done in full (every completion of a
 * whole bio), only the size is left to say so, as in the kernel: the
 * sector and segment index are not moved.
 */
static inline void bio_advance(struct bio *bio, unsigned int bytes)
{
	if (bytes == bio->bi_iter.bi_size) {
		bio->bi_iter.bi_size = 0;
		return;
	}
	__bio_advance(bio, bytes);
}

/* Finish @bio: decrement the chain count, call ->bi_end_io at zero. */
void bio_endio(struct bio *bio);

static inline void bio_io_error(struct bio *bio)
{
	bio->bi_status = BLK_STS_IOERR;
	bio_endio(bio);
}

/* Submit to ->bi_disk. Errors arrive through ->bi_end_io, never here. */
void submit_bio(struct bio *bio);
/* Like submit_bio() without accounting; stacked drivers resubmit with it. */
void submit_bio_noacct(struct bio *bio);
/* Submit and sleep (or poll, for REQ_POLLED) until done; returns -errno. */
int submit_bio_wait(struct bio *bio);

/*
 * Poll for completions of the queue @bio was sent to (REQ_POLLED bios on
 * poll queues). Returns the number of requests completed, >= 0.
 */
int bio_poll(struct bio *bio);

static inline enum req_op bio_op(const struct bio *bio)
{
	return bio_op_of(bio->bi_opf);
}

/*
 * bi_flags may be read by a thread completing a chained child while the
 * submitter still sets flags on the parent: atomic, relaxed.
 */
static inline bool bio_flagged(const struct bio *bio, unsigned int bit)
{
	return __atomic_load_n(&bio->bi_flags, __ATOMIC_RELAXED) & (1U << bit);
}

static inline void bio_set_flag(struct bio *bio, unsigned int bit)
{
	__atomic_fetch_or(&bio->bi_flags, (unsigned short)(1U << bit),
			  __ATOMIC_RELAXED);
}

/*
 * Set a flag where no other thread can write bi_flags (the kernel's plain
 * `|=`): a locked read-modify-write waits for every store before it to
 * reach the cache, and on a freshly built bio those are misses.
 */
static inline void __bio_set_flag(struct bio *bio, unsigned int bit)
{
	__atomic_store_n(&bio->bi_flags,
			 (unsigned short)(__atomic_load_n(&bio->bi_flags,
							  __ATOMIC_RELAXED) |
					  (1U << bit)),
			 __ATOMIC_RELAXED);
}

static inline void bio_clear_flag(struct bio *bio, unsigned int bit)
{
	__atomic_fetch_and(&bio->bi_flags, (unsigned short)~(1U << bit),
			   __ATOMIC_RELAXED);
}

static inline unsigned int bio_sectors(const struct bio *bio)
{
	return bio->bi_iter.bi_size >> SECTOR_SHIFT;
}

static inline sector_t bio_end_sector(const struct bio *bio)
{
	return bio->bi_iter.bi_sector + bio_sectors(bio);
}

static inline bool bio_has_data(const struct bio *bio)
{
	return bio->bi_iter.bi_size && !op_has_no_data(bio->bi_opf);
}

/* The segment at @iter, clipped to what is left of it. */
static inline struct bio_vec bvec_iter_bvec(const struct bio_vec *bv,
					    struct bvec_iter iter)
{
	const struct bio_vec *cur = &bv[iter.bi_idx];
	unsigned int len = cur->bv_len - iter.bi_bvec_done;
	struct bio_vec r = {
		.bv_buf = (char *)cur->bv_buf + iter.bi_bvec_done,
		.bv_len = len < iter.bi_size ? len : iter.bi_size,
	};
	return r;
}

static inline void bvec_iter_advance(const struct bio_vec *bv,
				     struct bvec_iter *iter, unsigned int bytes)
{
	iter->bi_sector += bytes >> SECTOR_SHIFT;
	iter->bi_size -= bytes;
	while (bytes) {
		unsigned int left = bv[iter->bi_idx].bv_len - iter->bi_bvec_done;
		unsigned int step = bytes < left ? bytes : left;

		bytes -= step;
		iter->bi_bvec_done += step;
		if (iter->bi_bvec_done == bv[iter->bi_idx].bv_len) {
			iter->bi_bvec_done = 0;
			iter->bi_idx++;
		}
	}
}

#define __bio_for_each_segment(bvl, bio, iter, start)			\
	for (iter = (start);						\
	     (iter).bi_size &&						\
		((bvl = bvec_iter_bvec((bio)->bi_io_vec, (iter))), 1);	\
	     bvec_iter_advance((bio)->bi_io_vec, &(iter), (bvl).bv_len))

/* Each remaining segment of @bio as a struct bio_vec @bvl. */
#define bio_for_each_segment(bvl, bio, iter) \
	__bio_for_each_segment(bvl, bio, iter, (bio)->bi_iter)

/* Copy between a bio's remaining segments and a flat buffer. */
void bio_copy_to_buf(const struct bio *bio, void *buf);
void bio_copy_from_buf(struct bio *bio, const void *buf);

#endif
