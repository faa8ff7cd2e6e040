// SPDX-License-Identifier: MIT
/*
 * The bio submission path (the kernel's block/blk-core.c): submit_bio ->
 * submit_bio_noacct -> checks -> __submit_bio, the per-thread bio list
 * that turns recursion from stacked devices into iteration, queue
 * enter/exit and freezing, plugging, and the synchronous wait helpers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "blk-trace.h"

struct bio_list {
	struct bio *head;
	struct bio *tail;
};

/*
 * Non-NULL while this thread is inside submit_bio_noacct(): bios submitted
 * from within (by a stacked driver, or a completion that resubmits) are
 * queued on [0] and run by the outermost call, in order.
 */
static _Thread_local struct bio_list *current_bio_list
	__attribute__((tls_model("initial-exec")));
_Thread_local struct blk_plug *current_plug;
static _Thread_local char errmsg[1024];	/* lists of valid values are long */

static void blk_flush_plug_sleep(void);

const char *blkstack_errmsg(void)
{
	return errmsg;
}

int blk_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return err;
}

static inline void bio_list_init(struct bio_list *bl)
{
	bl->head = bl->tail = NULL;
}

static inline void bio_list_add(struct bio_list *bl, struct bio *bio)
{
	bio->bi_next = NULL;
	if (bl->tail)
		bl->tail->bi_next = bio;
	else
		bl->head = bio;
	bl->tail = bio;
}

static inline void bio_list_merge(struct bio_list *bl, struct bio_list *bl2)
{
	if (!bl2->head)
		return;
	if (bl->tail)
		bl->tail->bi_next = bl2->head;
	else
		bl->head = bl2->head;
	bl->tail = bl2->tail;
}

static inline struct bio *bio_list_pop(struct bio_list *bl)
{
	struct bio *bio = bl->head;

	if (bio) {
		bl->head = bio->bi_next;
		if (!bl->head)
			bl->tail = NULL;
		bio->bi_next = NULL;
	}
	return bio;
}

/* ---- queue usage: enter, exit, freeze ---- */

static bool queue_dying_cb(void *arg)
{
	return blk_queue_dying((struct request_queue *)arg);
}

/*
 * Take a usage reference on @q, sleeping while it is frozen. Returns
 * -EAGAIN for BLK_MQ_REQ_NOWAIT on a frozen queue, -ENODEV if it is dying.
 */
int blk_queue_enter(struct request_queue *q, unsigned int flags)
{
	while (!percpu_ref_tryget_live(&q->q_usage_counter)) {
		if (flags & BLK_MQ_REQ_NOWAIT)
			return -EAGAIN;
		blk_flush_plug_sleep();
		percpu_ref_wait_live(&q->q_usage_counter, queue_dying_cb, q);
		if (blk_queue_dying(q))
			return -ENODEV;
	}
	return 0;
}

bool bio_queue_enter(struct bio *bio)
{
	struct request_queue *q = bio->bi_disk->queue;
	int ret;

	ret = blk_queue_enter(q, (bio->bi_opf & REQ_NOWAIT) ?
				 BLK_MQ_REQ_NOWAIT : 0);
	if (likely(!ret))
		return true;
	bio->bi_status = ret == -EAGAIN ? BLK_STS_AGAIN : BLK_STS_OFFLINE;
	bio_endio(bio);
	return false;
}

void blk_freeze_queue_start(struct request_queue *q)
{
	pthread_mutex_lock(&q->mq_freeze_lock);
	if (++q->mq_freeze_depth == 1) {
		percpu_ref_kill(&q->q_usage_counter);
		pthread_mutex_unlock(&q->mq_freeze_lock);
		/* push out what sits in queues so the counter can drain */
		if (queue_is_mq(q))
			blk_mq_run_hw_queues(q, false);
		return;
	}
	pthread_mutex_unlock(&q->mq_freeze_lock);
}

void blk_mq_freeze_queue_wait(struct request_queue *q)
{
	blk_flush_plug_sleep();
	percpu_ref_wait_zero(&q->q_usage_counter);
}

void blk_mq_freeze_queue(struct request_queue *q)
{
	blk_freeze_queue_start(q);
	blk_mq_freeze_queue_wait(q);
}

void blk_mq_unfreeze_queue(struct request_queue *q)
{
	pthread_mutex_lock(&q->mq_freeze_lock);
	BUG_ON_QUEUE(q->mq_freeze_depth <= 0, q);
	if (--q->mq_freeze_depth == 0)
		percpu_ref_resurrect(&q->q_usage_counter);
	pthread_mutex_unlock(&q->mq_freeze_lock);
}

struct request_queue *blk_alloc_queue(void)
{
	/*
	 * Cache-line aligned, as its members say: from calloc() each
	 * per-thread slot of the usage counters straddled two lines, and
	 * two submitting threads wrote the same line on every I/O.
	 */
	size_t size = ALIGN_UP(sizeof(struct request_queue),
			       (size_t)SMP_CACHE_BYTES);
	struct request_queue *q = aligned_alloc(SMP_CACHE_BYTES, size);

	if (!q)
		return NULL;
	memset(q, 0, size);
	percpu_ref_init(&q->q_usage_counter);
	pthread_mutex_init(&q->mq_freeze_lock, NULL);
	pthread_mutex_init(&q->sysfs_lock, NULL);
	pthread_rwlock_init(&q->hctx_lock, NULL);
	pthread_spin_init(&q->requeue_lock, PTHREAD_PROCESS_PRIVATE);
	INIT_LIST_HEAD(&q->requeue_list);
	INIT_LIST_HEAD(&q->tag_set_list);
	INIT_DELAYED_WORK(&q->requeue_work, blk_mq_requeue_work);
	INIT_DELAYED_WORK(&q->timeout_work, blk_mq_timeout_work);
	blk_set_default_limits(&q->limits);
	q->rq_timeout = 30000;
	atomic_init(&q->queue_flags, (1UL << QUEUE_FLAG_IO_STAT) |
				     (1UL << QUEUE_FLAG_SAME_COMP));
	return q;
}

void blk_free_queue(struct request_queue *q)
{
	cancel_delayed_work_sync(&q->requeue_work);
	cancel_delayed_work_sync(&q->timeout_work);
	percpu_ref_exit(&q->q_usage_counter);
	pthread_mutex_destroy(&q->mq_freeze_lock);
	pthread_mutex_destroy(&q->sysfs_lock);
	pthread_rwlock_destroy(&q->hctx_lock);
	pthread_spin_destroy(&q->requeue_lock);
	free(q);
}

/* ---- checks ---- */

static inline bool bio_check_ro(struct bio *bio)
{
	if (op_is_write(bio->bi_opf) && bdev_read_only(bio->bi_disk)) {
		if (op_is_flush(bio->bi_opf) && !bio_sectors(bio))
			return true;
		WARN_RATELIMIT(0);
		pr_warn("%s: write to read-only device (sector %llu)",
			bio->bi_disk->disk_name,
			(unsigned long long)bio->bi_iter.bi_sector);
		return false;
	}
	return true;
}

/* Past the end of the device? Overflow-safe, as the kernel's. */
static inline bool bio_check_eod(struct bio *bio)
{
	sector_t maxsector = disk_capacity(bio->bi_disk);
	unsigned int nr = bio_sectors(bio);

	if (nr && (nr > maxsector ||
		   bio->bi_iter.bi_sector > maxsector - nr)) {
		pr_info("%s: attempt to access beyond end of device: "
			"sector %llu + %u > %llu",
			bio->bi_disk->disk_name,
			(unsigned long long)bio->bi_iter.bi_sector, nr,
			(unsigned long long)maxsector);
		return false;
	}
	return true;
}

/* Sector and size must be multiples of the logical block size. */
static inline bool bio_check_alignment(struct bio *bio,
				       struct request_queue *q)
{
	unsigned int mask = (q->limits.logical_block_size >> SECTOR_SHIFT) - 1;

	if ((bio->bi_iter.bi_sector & mask) ||
	    (bio->bi_iter.bi_size & (q->limits.logical_block_size - 1)))
		return false;
	if (q->limits.dma_alignment && bio_has_data(bio)) {
		struct bvec_iter iter;
		struct bio_vec bv;

		bio_for_each_segment(bv, bio, iter)
			if (((uintptr_t)bv.bv_buf | bv.bv_len) &
			    q->limits.dma_alignment)
				return false;
	}
	return true;
}

/* submit_bio_checks() verdict: nothing left to do, end the bio with OK */
#define BIO_CHECK_DONE	BLK_STS_MAX

/*
 * The checks below for the common bio, a plain read or write: what the
 * general path would find, in its order, without its flush and poll
 * cases.
 */
static inline blk_status_t submit_bio_checks_rw(struct bio *bio,
						struct request_queue *q)
{
	if (!bio_check_ro(bio))
		return BLK_STS_IOERR;
	if (!bio_flagged(bio, BIO_REMAPPED) && !bio_check_eod(bio))
		return BLK_STS_IOERR;
	if (!bio_check_alignment(bio, q))
		return BLK_STS_INVAL;
	return bio->bi_iter.bi_size ? BLK_STS_OK : BLK_STS_INVAL;
}

/* submit_bio_checks() of everything but a plain read or write */
static noinline blk_status_t submit_bio_checks_slow(struct bio *bio)
{
	struct request_queue *q = bio->bi_disk->queue;
	const struct queue_limits *lim = &q->limits;

	/* a bare REQ_OP_FLUSH is an empty write with a preflush */
	if (bio_op(bio) == REQ_OP_FLUSH) {
		if (bio->bi_iter.bi_size)
			return BLK_STS_INVAL;
		bio->bi_opf = REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC |
			      (bio->bi_opf & ~REQ_OP_MASK);
	}
	if (!bio_check_ro(bio))
		return BLK_STS_IOERR;
	if (!bio_flagged(bio, BIO_REMAPPED) && !bio_check_eod(bio))
		return BLK_STS_IOERR;
	if (!bio_check_alignment(bio, q))
		return BLK_STS_INVAL;

	/* flushes are meaningless without a volatile cache: drop them */
	if (op_is_flush(bio->bi_opf) && !lim->features_write_cache) {
		bio->bi_opf &= ~(REQ_PREFLUSH | REQ_FUA);
		if (!bio_sectors(bio))
			return BIO_CHECK_DONE;
	}
	if (!blk_queue_flag_test(QUEUE_FLAG_POLL, q))
		bio->bi_opf &= ~REQ_POLLED;

	switch (bio_op(bio)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		if (bio_has_data(bio) || op_is_flush(bio->bi_opf))
			break;
		return BLK_STS_INVAL;		/* no data, no flush */
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
		if (!lim->max_discard_sectors)
			return BLK_STS_NOTSUPP;
		break;
	case REQ_OP_WRITE_ZEROES:
		if (!lim->max_write_zeroes_sectors)
			return BLK_STS_NOTSUPP;
		break;
	case REQ_OP_DRV_IN:
	case REQ_OP_DRV_OUT:
		return BLK_STS_NOTSUPP;	/* only via blk_execute_rq */
	default:
		return BLK_STS_NOTSUPP;
	}
	return BLK_STS_OK;
}

/*
 * Everything about a bio that can be judged before it enters the queue.
 * Returns BLK_STS_OK to go on, BIO_CHECK_DONE, or the status to end it
 * with.
 */
static inline blk_status_t submit_bio_checks(struct bio *bio)
{
	if (likely(bio_op(bio) <= REQ_OP_WRITE &&
		   !(bio->bi_opf & (REQ_PREFLUSH | REQ_FUA | REQ_POLLED))))
		return submit_bio_checks_rw(bio, bio->bi_disk->queue);
	return submit_bio_checks_slow(bio);
}

/* ---- submission ---- */

static inline void __submit_bio(struct bio *bio)
{
	struct gendisk *disk = bio->bi_disk;

	if (!disk->fops) {
		/* blk_mq_submit_bio() takes and keeps the usage ref */
		blk_mq_submit_bio(bio);
		return;
	}
	if (likely(bio_queue_enter(bio))) {
		trace_block_bio_queue(bio);	/* bio-based: Q only */
		disk->fops->submit_bio(bio);
		blk_queue_exit(disk->queue);
	}
}

/*
 * Bio-based (stacked) devices: a driver's ->submit_bio may submit bios to
 * lower devices. Those are collected and run after it returns, lower
 * devices first, so the stack is walked iteratively. Out of line: the
 * blk-mq path beside it then needs fewer registers saved.
 */
static noinline void __submit_bio_noacct(struct bio *bio)
{
	struct bio_list bio_list_on_stack[2];

	BUG_ON(bio->bi_next);
	bio_list_init(&bio_list_on_stack[0]);
	current_bio_list = bio_list_on_stack;
	do {
		struct request_queue *q = bio->bi_disk->queue;
		struct bio_list lower, same;

		bio_list_on_stack[1] = bio_list_on_stack[0];
		bio_list_init(&bio_list_on_stack[0]);
		__submit_bio(bio);

		bio_list_init(&lower);
		bio_list_init(&same);
		while ((bio = bio_list_pop(&bio_list_on_stack[0])) != NULL)
			bio_list_add(bio->bi_disk->queue == q ? &same : &lower,
				     bio);
		bio_list_merge(&bio_list_on_stack[0], &lower);
		bio_list_merge(&bio_list_on_stack[0], &same);
		bio_list_merge(&bio_list_on_stack[0], &bio_list_on_stack[1]);
	} while ((bio = bio_list_pop(&bio_list_on_stack[0])));
	current_bio_list = NULL;
}

static inline void __submit_bio_noacct_mq(struct bio *bio)
{
	struct bio_list bio_list[2] = { };

	current_bio_list = bio_list;
	do {
		__submit_bio(bio);
	} while ((bio = bio_list_pop(&bio_list[0])));
	current_bio_list = NULL;
}

static inline void submit_bio_noacct_nocheck(struct bio *bio)
{
	if (current_bio_list) {
		bio_list_add(&current_bio_list[0], bio);
		return;
	}
	if (!bio->bi_disk->fops)
		__submit_bio_noacct_mq(bio);
	else
		__submit_bio_noacct(bio);
}

/* submit_bio_noacct(), inline for submit_bio() */
static inline void __submit_bio_noacct_checked(struct bio *bio)
{
	blk_status_t status;

	if (unlikely(!bio->bi_disk)) {
		WARN_ON_ONCE(1);
		bio->bi_status = BLK_STS_INVAL;
		bio_endio(bio);
		return;
	}
	status = submit_bio_checks(bio);
	if (unlikely(status != BLK_STS_OK)) {
		bio->bi_status = status == BIO_CHECK_DONE ? BLK_STS_OK : status;
		bio_endio(bio);
		return;
	}
	submit_bio_noacct_nocheck(bio);
}

void submit_bio_noacct(struct bio *bio)
{
	__submit_bio_noacct_checked(bio);
}

void submit_bio(struct bio *bio)
{
	if (!bio->bi_ioc)
		bio->bi_ioc = blk_current_ioc();
	if (!bio->bi_ioprio && bio->bi_ioc)
		bio->bi_ioprio = bio->bi_ioc->ioprio;
	__submit_bio_noacct_checked(bio);
}

/* ---- waiting ---- */

struct submit_bio_ret {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void submit_bio_wait_endio(struct bio *bio)
{
	struct submit_bio_ret *ret = bio->bi_private;

	pthread_mutex_lock(&ret->lock);
	ret->done = true;
	pthread_cond_signal(&ret->cond);
	pthread_mutex_unlock(&ret->lock);
}

int submit_bio_wait(struct bio *bio)
{
	struct submit_bio_ret ret = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};

	BUG_ON(current_bio_list);	/* would wait on ourselves */
	bio->bi_private = &ret;
	bio->bi_end_io = submit_bio_wait_endio;
	bio_get(bio);		/* bio_poll() looks at it after completion */
	submit_bio(bio);
	blk_flush_plug_sleep();
	if (bio->bi_opf & REQ_POLLED) {
		for (;;) {
			pthread_mutex_lock(&ret.lock);
			bool done = ret.done;

			pthread_mutex_unlock(&ret.lock);
			if (done)
				break;
			bio_poll(bio);
		}
	}
	pthread_mutex_lock(&ret.lock);
	while (!ret.done)
		pthread_cond_wait(&ret.cond, &ret.lock);
	pthread_mutex_unlock(&ret.lock);
	bio_put(bio);
	return blk_status_to_errno(bio->bi_status);
}

int bio_poll(struct bio *bio)
{
	struct gendisk *disk = bio->bi_disk;
	struct request_queue *q = disk->queue;
	int ret;

	if (disk->fops)
		return disk->fops->poll_bio ? disk->fops->poll_bio(bio) : 0;
	if (!(bio->bi_opf & REQ_POLLED) || !blk_queue_flag_test(QUEUE_FLAG_POLL, q))
		return 0;
	if (blk_queue_enter(q, BLK_MQ_REQ_NOWAIT))
		return 0;
	ret = bio->bi_cookie < q->nr_hw_queues ?
	      blk_mq_poll_hctx(q->queue_hw_ctx[bio->bi_cookie]) : 0;
	blk_queue_exit(q);
	return ret;
}

int blkdev_poll(struct gendisk *disk)
{
	struct request_queue *q = disk->queue;
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;
	int ret = 0;

	if (disk->fops || !blk_queue_flag_test(QUEUE_FLAG_POLL, q))
		return 0;
	if (blk_queue_enter(q, BLK_MQ_REQ_NOWAIT))
		return 0;
	hctx = blk_mq_map_queue(q, REQ_POLLED, blk_mq_get_ctx(q));
	if (hctx->type == HCTX_TYPE_POLL)
		ret = blk_mq_poll_hctx(hctx);
	if (!ret) {
		queue_for_each_hw_ctx(q, hctx, i)
			if (hctx->type == HCTX_TYPE_POLL)
				ret += blk_mq_poll_hctx(hctx);
	}
	blk_queue_exit(q);
	return ret;
}

/* ---- plugging ---- */

void blk_start_plug(struct blk_plug *plug)
{
	blk_start_plug_nr_ios(plug, 1);
}

void blk_start_plug_nr_ios(struct blk_plug *plug, unsigned short nr_ios)
{
	/* nested plugs: only the outermost one is used */
	if (current_plug) {
		plug->nested = true;
		return;
	}
	plug->nr_ios = max_t(unsigned short, nr_ios, 1);
	INIT_LIST_HEAD(&plug->cb_list);
	plug->cached_rq = NULL;
	plug->mq_list = NULL;
	plug->mq_tail = NULL;
	plug->rq_count = 0;
	plug->multiple_queues = false;
	plug->has_elevator = false;
	plug->nested = false;
	plug->cur_ktime = 0;
	current_plug = plug;
}

struct blk_plug_cb *blk_check_plugged(blk_plug_cb_fn unplug, void *data,
				      size_t size)
{
	struct blk_plug *plug = current_plug;
	struct blk_plug_cb *cb;

	if (!plug)
		return NULL;
	list_for_each_entry(cb, &plug->cb_list, list)
		if (cb->callback == unplug && cb->data == data)
			return cb;
	BUG_ON(size < sizeof(*cb));
	cb = calloc(1, size);
	if (!cb)
		return NULL;
	cb->callback = unplug;
	cb->data = data;
	list_add(&cb->list, &plug->cb_list);
	return cb;
}

static void blk_flush_plug_callbacks(struct blk_plug *plug, bool from_schedule)
{
	LIST_HEAD(callbacks);

	while (!list_empty(&plug->cb_list)) {
		list_splice_init(&plug->cb_list, &callbacks);
		while (!list_empty(&callbacks)) {
			struct blk_plug_cb *cb = list_first_entry(&callbacks,
					struct blk_plug_cb, list);

			list_del(&cb->list);
			cb->callback(cb, from_schedule);
		}
	}
}

void blk_flush_plug(struct blk_plug *plug, bool from_schedule)
{
	if (!plug)
		return;
	/*
	 * Requests before callbacks (the kernel runs callbacks first): a
	 * callback gathering the completions of the batch must see the
	 * requests completed inline at dispatch. What callbacks submit goes
	 * round again.
	 */
	do {
		if (plug->mq_list)
			blk_mq_flush_plug_list(plug, from_schedule);
		blk_flush_plug_callbacks(plug, from_schedule);
	} while (plug->mq_list);
	/*
	 * Cached requests hold queue references: a thread about to sleep
	 * must not hold up a freeze with them (the kernel's
	 * __blk_flush_plug() frees them on every flush, schedule included).
	 */
	if (plug->cached_rq)
		blk_mq_free_cached_rqs(plug);
}

/*
 * The calling thread is about to sleep: send what its plug holds, as the
 * kernel does in schedule(). Otherwise a plugged request would never be
 * issued (a synchronous I/O inside a plug waits for itself) and cached
 * requests would hold up a freeze.
 */
static void blk_flush_plug_sleep(void)
{
	blk_flush_plug(current_plug, true);
}

void blk_finish_plug(struct blk_plug *plug)
{
	if (plug != current_plug)
		return;
	blk_flush_plug(plug, false);
	if (plug->cached_rq)
		blk_mq_free_cached_rqs(plug);
	current_plug = NULL;
}
