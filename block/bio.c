// SPDX-License-Identifier: MIT
/*
 * bio allocation, chaining, splitting and completion (the kernel's
 * block/bio.c).
 *
 * Bios come from a per-thread cache so the submit path never takes a lock
 * or calls malloc(). A bio is often freed on another thread (the one that
 * completed it); each thread's cache is capped, and overflow moves in
 * batches through a locked depot that empty caches refill from, so a
 * producer/consumer pair does not end up calling malloc() per I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"

#define BIO_CACHE_MAX	512
#define BIO_CACHE_BATCH	128

struct bio_cache {
	struct bio *free;
	unsigned int nr;
	bool registered;
};

static _Thread_local struct bio_cache bio_cache
	__attribute__((tls_model("initial-exec")));
static pthread_mutex_t depot_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bio *depot;	/* batches chained by bi_next */
static unsigned long depot_nr;
static pthread_key_t bio_cache_key;
static pthread_once_t bio_cache_once = PTHREAD_ONCE_INIT;

static noinline void bio_cache_to_depot(struct bio_cache *c, unsigned int nr)
{
	struct bio *head = c->free, *tail = head;

	if (!nr)
		return;
	for (unsigned int i = 1; i < nr; i++)
		tail = tail->bi_next;
	c->free = tail->bi_next;
	c->nr -= nr;
	pthread_mutex_lock(&depot_lock);
	tail->bi_next = depot;
	depot = head;
	depot_nr += nr;
	pthread_mutex_unlock(&depot_lock);
}

/* Thread exit: hand the cache to the depot for other threads. */
static void bio_cache_exit(void *arg)
{
	struct bio_cache *c = &bio_cache;

	bio_cache_to_depot(c, c->nr);
}

static void bio_cache_key_init(void)
{
	BUG_ON(pthread_key_create(&bio_cache_key, bio_cache_exit));
}

/* out of line, as the other slow paths: the fast ones then save no registers */
static noinline void bio_cache_register(struct bio_cache *c)
{
	pthread_once(&bio_cache_once, bio_cache_key_init);
	pthread_setspecific(bio_cache_key, c);
	c->registered = true;
}

static noinline void bio_cache_refill(struct bio_cache *c)
{
	pthread_mutex_lock(&depot_lock);
	while (depot && c->nr < BIO_CACHE_BATCH) {
		struct bio *b = depot;

		depot = b->bi_next;
		depot_nr--;
		b->bi_next = c->free;
		c->free = b;
		c->nr++;
	}
	pthread_mutex_unlock(&depot_lock);
}

static inline struct bio *bio_cache_get(void)
{
	struct bio_cache *c = &bio_cache;
	struct bio *bio;

	if (unlikely(!c->registered))
		bio_cache_register(c);
	if (unlikely(!c->free))
		bio_cache_refill(c);
	bio = c->free;
	if (likely(bio)) {
		c->free = bio->bi_next;
		c->nr--;
		return bio;
	}
	return malloc(sizeof(*bio));
}

static inline void bio_cache_put(struct bio *bio)
{
	struct bio_cache *c = &bio_cache;

	if (unlikely(!c->registered))
		bio_cache_register(c);
	bio->bi_next = c->free;
	c->free = bio;
	if (unlikely(++c->nr > BIO_CACHE_MAX))
		bio_cache_to_depot(c, BIO_CACHE_BATCH);
}

static inline void bio_init(struct bio *bio, struct gendisk *disk, blk_opf_t opf,
		     struct bio_vec *table, unsigned short max_vecs)
{
	bio->bi_next = NULL;
	bio->bi_disk = disk;
	bio->bi_opf = opf;
	bio->bi_flags = 0;
	bio->bi_ioprio = 0;
	bio->bi_status = BLK_STS_OK;
	atomic_init(&bio->__bi_remaining, 1);
	memset(&bio->bi_iter, 0, sizeof(bio->bi_iter));
	bio->bi_end_io = NULL;
	bio->bi_private = NULL;
	bio->bi_end_data = NULL;
	bio->bi_ioc = NULL;
	bio->bi_cookie = 0;
	bio->bi_vcnt = 0;
	bio->bi_max_vecs = max_vecs;
	atomic_init(&bio->__bi_cnt, 1);
	bio->bi_io_vec = table;
	bio->bi_issue_ns = 0;
}

static noinline struct bio *
bio_alloc_slow(struct gendisk *disk, unsigned short nr_vecs, blk_opf_t opf)
{
	struct bio *bio = bio_cache_get();
	struct bio_vec *table = NULL;

	if (unlikely(!bio))
		return NULL;
	if (nr_vecs <= BIO_INLINE_VECS) {
		table = bio->bi_inline_vecs;
		nr_vecs = BIO_INLINE_VECS;
	} else {
		table = malloc(sizeof(*table) * nr_vecs);
		if (!table) {
			bio_cache_put(bio);
			return NULL;
		}
	}
	bio_init(bio, disk, opf, table, nr_vecs);
	return bio;
}

struct bio *bio_alloc(struct gendisk *disk, unsigned short nr_vecs,
		      blk_opf_t opf)
{
	struct bio_cache *c = &bio_cache;
	struct bio *bio = c->free;

	/* a bio in the cache means the cache is registered */
	if (unlikely(!bio || nr_vecs > BIO_INLINE_VECS))
		return bio_alloc_slow(disk, nr_vecs, opf);
	c->free = bio->bi_next;
	c->nr--;
	bio_init(bio, disk, opf, bio->bi_inline_vecs, BIO_INLINE_VECS);
	return bio;
}

void bio_reset(struct bio *bio, struct gendisk *disk, blk_opf_t opf)
{
	bool cloned = bio_flagged(bio, BIO_CLONED);

	BUG_ON(cloned);
	bio_init(bio, disk, opf, bio->bi_io_vec, bio->bi_max_vecs);
}

static inline void bio_free(struct bio *bio)
{
	if (bio->bi_io_vec != bio->bi_inline_vecs &&
	    !bio_flagged(bio, BIO_CLONED))
		free(bio->bi_io_vec);
	bio_cache_put(bio);
}

void bio_get(struct bio *bio)
{
	bio_set_flag(bio, BIO_REFFED);
	atomic_fetch_add_explicit(&bio->__bi_cnt, 1, memory_order_relaxed);
}

static noinline void bio_put_slow(struct bio *bio)
{
	int old;

	if (!bio_flagged(bio, BIO_REFFED)) {
		BUG_ON(atomic_load_explicit(&bio->__bi_cnt,
					    memory_order_relaxed) != 1);
		bio_free(bio);
		return;
	}
	old = atomic_fetch_sub_explicit(&bio->__bi_cnt, 1, memory_order_acq_rel);
	BUG_ON(old <= 0);
	if (old == 1)
		bio_free(bio);
}

/* A bio nobody took an extra reference on is freed without an atomic. */
void bio_put(struct bio *bio)
{
	struct bio_cache *c = &bio_cache;

	/* the common bio: inline vectors, back to a cache with room */
	if (likely(!bio_flagged(bio, BIO_REFFED) &&
		   bio->bi_io_vec == bio->bi_inline_vecs && c->registered &&
		   c->nr < BIO_CACHE_MAX)) {
		BUG_ON(atomic_load_explicit(&bio->__bi_cnt,
					    memory_order_relaxed) != 1);
		bio->bi_next = c->free;
		c->free = bio;
		c->nr++;
		return;
	}
	bio_put_slow(bio);
}

unsigned int bio_add_buf(struct bio *bio, void *buf, unsigned int len)
{
	struct bio_vec *bv;

	/* the first segment of a fresh bio: nothing to check but @len */
	if (likely(!bio->bi_vcnt && !bio->bi_iter.bi_size && len &&
		   bio->bi_max_vecs && !bio_flagged(bio, BIO_CLONED))) {
		bv = &bio->bi_io_vec[bio->bi_vcnt++];
		bv->bv_buf = buf;
		bv->bv_len = len;
		bio->bi_iter.bi_size = len;
		return len;
	}
	if (unlikely(bio_flagged(bio, BIO_CLONED) || !len))
		return 0;
	if ((uint64_t)bio->bi_iter.bi_size + len > UINT32_MAX)
		return 0;
	if (bio->bi_vcnt) {
		bv = &bio->bi_io_vec[bio->bi_vcnt - 1];
		if ((char *)bv->bv_buf + bv->bv_len == (char *)buf &&
		    (uint64_t)bv->bv_len + len <= UINT32_MAX) {
			bv->bv_len += len;
			bio->bi_iter.bi_size += len;
			return len;
		}
	}
	if (bio->bi_vcnt >= bio->bi_max_vecs)
		return 0;
	bv = &bio->bi_io_vec[bio->bi_vcnt++];
	bv->bv_buf = buf;
	bv->bv_len = len;
	bio->bi_iter.bi_size += len;
	return len;
}

static void bio_chain_endio(struct bio *bio)
{
	BUG();	/* never called: bio_endio() unrolls chains itself */
}

void bio_chain(struct bio *bio, struct bio *parent)
{
	BUG_ON(bio->bi_private || bio->bi_end_io);
	bio->bi_private = parent;
	bio->bi_end_io = bio_chain_endio;
	bio_set_flag(parent, BIO_CHAIN);
	atomic_fetch_add(&parent->__bi_remaining, 1);
}

static bool bio_remaining_done(struct bio *bio)
{
	if (!bio_flagged(bio, BIO_CHAIN))
		return true;
	BUG_ON(atomic_load(&bio->__bi_remaining) <= 0);
	if (atomic_fetch_sub(&bio->__bi_remaining, 1) == 1) {
		bio_clear_flag(bio, BIO_CHAIN);
		return true;
	}
	return false;
}

/*
 * Completing a chain child completes a step of its parent. Done as a loop
 * rather than recursion so deep split chains cannot overflow the stack.
 */
static noinline void __bio_endio(struct bio *bio)
{
again:
	if (!bio_remaining_done(bio))
		return;
	if (bio->bi_end_io == bio_chain_endio) {
		struct bio *parent = bio->bi_private;

		/* the first error wins, as in the kernel */
		if (bio->bi_status && !parent->bi_status)
			parent->bi_status = bio->bi_status;
		bio_put(bio);
		bio = parent;
		goto again;
	}
	if (bio->bi_end_io)
		bio->bi_end_io(bio);
}

void bio_endio(struct bio *bio)
{
	/* neither counting children nor a child: straight to ->bi_end_io */
	if (unlikely(bio_flagged(bio, BIO_CHAIN) ||
		     bio->bi_end_io == bio_chain_endio)) {
		__bio_endio(bio);
		return;
	}
	if (bio->bi_end_io)
		bio->bi_end_io(bio);
}

/* bio_advance() of part of the bio: walk the segments */
void __bio_advance(struct bio *bio, unsigned int bytes)
{
	BUG_ON(bytes > bio->bi_iter.bi_size);
	if (!bio_has_data(bio)) {
		bio->bi_iter.bi_sector += bytes >> SECTOR_SHIFT;
		bio->bi_iter.bi_size -= bytes;
		return;
	}
	bvec_iter_advance(bio->bi_io_vec, &bio->bi_iter, bytes);
}

struct bio *bio_alloc_clone(struct gendisk *disk, struct bio *src)
{
	struct bio *bio = bio_cache_get();

	if (unlikely(!bio))
		return NULL;
	bio_init(bio, disk, src->bi_opf, src->bi_io_vec, src->bi_max_vecs);
	bio_set_flag(bio, BIO_CLONED);
	bio->bi_iter = src->bi_iter;
	bio->bi_vcnt = src->bi_vcnt;
	bio->bi_ioprio = src->bi_ioprio;
	bio->bi_ioc = src->bi_ioc;
	bio->bi_issue_ns = src->bi_issue_ns;
	if (bio_flagged(src, BIO_REMAPPED))
		bio_set_flag(bio, BIO_REMAPPED);
	return bio;
}

struct bio *bio_split(struct bio *bio, unsigned int sectors)
{
	struct bio *split;

	if (!sectors || sectors >= bio_sectors(bio))
		return NULL;
	split = bio_alloc_clone(bio->bi_disk, bio);
	if (!split)
		return NULL;
	split->bi_iter.bi_size = sectors << SECTOR_SHIFT;
	bio_advance(bio, split->bi_iter.bi_size);
	if (bio_flagged(bio, BIO_TRACE_COMPLETION))
		bio_set_flag(split, BIO_TRACE_COMPLETION);
	return split;
}

void bio_copy_to_buf(const struct bio *bio, void *buf)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	char *p = buf;

	bio_for_each_segment(bv, bio, iter) {
		memcpy(p, bv.bv_buf, bv.bv_len);
		p += bv.bv_len;
	}
}

void bio_copy_from_buf(struct bio *bio, const void *buf)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	const char *p = buf;

	bio_for_each_segment(bv, bio, iter) {
		memcpy(bv.bv_buf, p, bv.bv_len);
		p += bv.bv_len;
	}
}

/* ---- status codes ---- */

static const struct {
	int errnum;
	const char *name;
} blk_errors[BLK_STS_MAX] = {
	[BLK_STS_OK]		= { 0,		"" },
	[BLK_STS_NOTSUPP]	= { -EOPNOTSUPP, "operation not supported" },
	[BLK_STS_TIMEOUT]	= { -ETIMEDOUT,	"timeout" },
	[BLK_STS_NOSPC]		= { -ENOSPC,	"critical space allocation" },
	[BLK_STS_TRANSPORT]	= { -ENOLINK,	"recoverable transport" },
	[BLK_STS_TARGET]	= { -EREMOTEIO,	"critical target" },
	[BLK_STS_RESV_CONFLICT]	= { -EBADE,	"reservation conflict" },
	[BLK_STS_MEDIUM]	= { -ENODATA,	"critical medium" },
	[BLK_STS_PROTECTION]	= { -EILSEQ,	"protection" },
	[BLK_STS_RESOURCE]	= { -ENOMEM,	"kernel resource" },
	[BLK_STS_IOERR]		= { -EIO,	"I/O" },
	[BLK_STS_DM_REQUEUE]	= { -EREMCHG,	"dm internal retry" },
	[BLK_STS_AGAIN]		= { -EAGAIN,	"nonblocking retry" },
	[BLK_STS_DEV_RESOURCE]	= { -EBUSY,	"device resource" },
	[BLK_STS_ZONE_OPEN_RESOURCE] = { -ETOOMANYREFS, "open zones exceeded" },
	[BLK_STS_ZONE_ACTIVE_RESOURCE] = { -EOVERFLOW, "active zones exceeded" },
	[BLK_STS_OFFLINE]	= { -ENODEV,	"device offline" },
	[BLK_STS_DURATION_LIMIT] = { -ETIME,	"duration limit exceeded" },
	[BLK_STS_INVAL]		= { -EINVAL,	"invalid" },
	[BLK_STS_NEXUS]		= { -EBADE,	"critical nexus" },
};

int blk_status_to_errno(blk_status_t status)
{
	if (WARN_ON_ONCE(status >= BLK_STS_MAX))
		return -EIO;
	return blk_errors[status].errnum;
}

blk_status_t errno_to_blk_status(int errnum)
{
	for (int i = 0; i < BLK_STS_MAX; i++)
		if (blk_errors[i].errnum == errnum)
			return (blk_status_t)i;
	return BLK_STS_IOERR;
}

const char *blk_status_to_str(blk_status_t status)
{
	if (status >= BLK_STS_MAX)
		return "<null>";
	return blk_errors[status].name;
}

const char *blk_op_str(enum req_op op)
{
	switch (op) {
	case REQ_OP_READ: return "READ";
	case REQ_OP_WRITE: return "WRITE";
	case REQ_OP_FLUSH: return "FLUSH";
	case REQ_OP_DISCARD: return "DISCARD";
	case REQ_OP_SECURE_ERASE: return "SECURE_ERASE";
	case REQ_OP_WRITE_ZEROES: return "WRITE_ZEROES";
	case REQ_OP_DRV_IN: return "DRV_IN";
	case REQ_OP_DRV_OUT: return "DRV_OUT";
	default: return "UNKNOWN";
	}
}
