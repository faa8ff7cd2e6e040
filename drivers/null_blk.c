// SPDX-License-Identifier: MIT
/*
 * null_blk: a block device that does nothing, fast, or keeps data in
 * memory (the kernel's drivers/block/null_blk). Its parameters carry the
 * module's names and meanings; see docs/null_blk.md.
 *
 * Completion modes (irqmode): 0 completes inside queue_rq; 1 hands the
 * request to a per-hardware-queue completion thread (the "interrupt");
 * 2 completes from that thread after completion_nsec, like a timer. Poll
 * queues (poll_queues) complete only when the submitter polls.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "block/blk.h"
#include "block/blk-trace.h"
#include "drivers/null_blk.h"

extern const struct blk_driver null_blk_driver;

#define NULL_PAGE_SIZE		4096U
#define NULL_PAGE_SECTORS	(NULL_PAGE_SIZE >> SECTOR_SHIFT)
#define NULL_L2_SHIFT		9
#define NULL_L2_SIZE		(1U << NULL_L2_SHIFT)
#define NULL_LOCK_STRIPES	64
#define NULL_MAX_BADBLOCKS	64

enum { NULL_IRQ_NONE, NULL_IRQ_SOFTIRQ, NULL_IRQ_TIMER };
enum { NULL_Q_BIO = 0, NULL_Q_RQ = 1, NULL_Q_MQ = 2 };

/* Sparse page store: a two-level table of 4 KiB pages made on write. */
struct null_store {
	uint64_t nr_pages;
	size_t nr_l1;
	void *_Atomic *_Atomic *l1;	/* [nr_l1] -> [NULL_L2_SIZE] pages */
	_Atomic uint64_t pages;
};

struct nullb_cmd {
	struct nullb_cmd *next;
	uint64_t due_ns;
	blk_status_t error;
	bool fake_timeout;
	struct request *rq;
	struct bio *bio;	/* bio-based mode */
};

/* One per hardware queue: the "interrupt" thread and the poll list. */
struct nullb_queue {
	struct nullb *nullb;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct nullb_cmd *head, *tail;	/* FIFO: due times only grow */
	bool stop;
	pthread_t thread;
	bool has_thread;
	pthread_spinlock_t poll_lock;
	struct nullb_cmd *poll_head, *poll_tail;
	_Atomic unsigned long completed;
};

struct nullb {
	struct gendisk *disk;
	struct null_params p;
	struct blk_mq_tag_set tag_set;
	struct blk_mq_tag_set *set;	/* own or the shared one */
	struct null_store store;
	struct null_store cache;
	pthread_mutex_t cache_lock;
	_Atomic uint64_t cache_pages;
	pthread_spinlock_t stripe[NULL_LOCK_STRIPES];
	struct { sector_t start, end; } bad[NULL_MAX_BADBLOCKS];
	unsigned int nr_bad;
	_Atomic unsigned long nr_requests;
	struct nullb_queue bio_nq;	/* bio-based completion thread */
	_Atomic unsigned long flushes;
	_Atomic unsigned long requeues;
	_Atomic unsigned long timeouts;
};

/* Devices with shared_tags=1 share one tag set, as the module's do. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct blk_mq_tag_set shared_set;
static unsigned int shared_users;

/* ---- the page store ---- */

static int null_store_init(struct null_store *s, uint64_t bytes)
{
	s->nr_pages = DIV_ROUND_UP(bytes, NULL_PAGE_SIZE);
	s->nr_l1 = (size_t)DIV_ROUND_UP(s->nr_pages, NULL_L2_SIZE);
	s->l1 = calloc(s->nr_l1 ? s->nr_l1 : 1, sizeof(*s->l1));
	atomic_init(&s->pages, 0);
	return s->l1 ? 0 : -ENOMEM;
}

static void null_store_free(struct null_store *s)
{
	if (!s->l1)
		return;
	for (size_t i = 0; i < s->nr_l1; i++) {
		void *_Atomic *l2 = s->l1[i];

		if (!l2)
			continue;
		for (unsigned int j = 0; j < NULL_L2_SIZE; j++)
			free(l2[j]);
		free(l2);
	}
	free(s->l1);
	s->l1 = NULL;
}

/* The slot for page @idx, making the second level if @alloc. */
static void *_Atomic *null_page_slot(struct null_store *s, uint64_t idx,
				     bool alloc)
{
	void *_Atomic *_Atomic *l1p = &s->l1[idx >> NULL_L2_SHIFT];
	void *_Atomic *l2 = atomic_load_explicit(l1p, memory_order_acquire);

	if (!l2) {
		void *_Atomic *fresh, *_Atomic expected = NULL;

		if (!alloc)
			return NULL;
		fresh = calloc(NULL_L2_SIZE, sizeof(*fresh));
		if (!fresh)
			return NULL;
		expected = NULL;
		if (atomic_compare_exchange_strong(l1p, (void *_Atomic **)&expected,
						   fresh)) {
			l2 = fresh;
		} else {
			free(fresh);
			l2 = atomic_load(l1p);
		}
	}
	return &l2[idx & (NULL_L2_SIZE - 1)];
}

static pthread_spinlock_t *null_stripe(struct nullb *nullb, uint64_t idx)
{
	return &nullb->stripe[idx % NULL_LOCK_STRIPES];
}

/* Copy @len bytes at page @idx offset @off; caller holds the stripe. */
static int null_page_write(struct null_store *s, uint64_t idx,
			   unsigned int off, const void *src, unsigned int len)
{
	void *_Atomic *slot = null_page_slot(s, idx, true);
	void *page;

	if (!slot)
		return -ENOMEM;
	page = atomic_load_explicit(slot, memory_order_relaxed);
	if (!page) {
		page = calloc(1, NULL_PAGE_SIZE);
		if (!page)
			return -ENOMEM;
		atomic_store_explicit(slot, page, memory_order_relaxed);
		atomic_fetch_add(&s->pages, 1);
	}
	if (src)
		memcpy((char *)page + off, src, len);
	else
		memset((char *)page + off, 0, len);
	return 0;
}

/* Returns false if the page does not exist (reads as zeroes). */
static bool null_page_read(struct null_store *s, uint64_t idx,
			   unsigned int off, void *dst, unsigned int len)
{
	void *_Atomic *slot = null_page_slot(s, idx, false);
	void *page = slot ? atomic_load_explicit(slot, memory_order_relaxed) :
			    NULL;

	if (!page)
		return false;
	memcpy(dst, (char *)page + off, len);
	return true;
}

static void null_page_drop(struct null_store *s, uint64_t idx)
{
	void *_Atomic *slot = null_page_slot(s, idx, false);
	void *page = slot ? atomic_exchange(slot, NULL) : NULL;

	if (page) {
		free(page);
		atomic_fetch_sub(&s->pages, 1);
	}
}

/* ---- the volatile cache (cache_size) ---- */

/* Write every cached page back to the store; caller holds cache_lock. */
static int null_flush_cache(struct nullb *nullb)
{
	struct null_store *c = &nullb->cache;

	for (size_t i = 0; i < c->nr_l1; i++) {
		void *_Atomic *l2 = c->l1[i];

		if (!l2)
			continue;
		for (unsigned int j = 0; j < NULL_L2_SIZE; j++) {
			uint64_t idx = ((uint64_t)i << NULL_L2_SHIFT) | j;
			void *page = atomic_exchange(&l2[j], NULL);
			int ret;

			if (!page)
				continue;
			pthread_spin_lock(null_stripe(nullb, idx));
			ret = null_page_write(&nullb->store, idx, 0, page,
					      NULL_PAGE_SIZE);
			pthread_spin_unlock(null_stripe(nullb, idx));
			free(page);
			atomic_fetch_sub(&c->pages, 1);
			if (ret)
				return ret;
		}
	}
	atomic_fetch_add(&nullb->flushes, 1);
	return 0;
}

static uint64_t null_cache_limit(struct nullb *nullb)
{
	return nullb->p.cache_size_mb * (1024 * 1024 / NULL_PAGE_SIZE);
}

/*
 * A write to a device with a cache lands in the cache; a full cache is
 * written back first. A page entering the cache starts as the store's
 * copy so partial writes keep the rest.
 */
static int null_cache_write(struct nullb *nullb, uint64_t idx,
			    unsigned int off, const void *src, unsigned int len)
{
	char tmp[NULL_PAGE_SIZE];
	void *_Atomic *slot;
	int ret = 0;

	pthread_mutex_lock(&nullb->cache_lock);
	slot = null_page_slot(&nullb->cache, idx, false);
	if (!slot || !atomic_load(slot)) {
		if (atomic_load(&nullb->cache.pages) >= null_cache_limit(nullb))
			ret = null_flush_cache(nullb);
		if (!ret) {
			pthread_spin_lock(null_stripe(nullb, idx));
			if (!null_page_read(&nullb->store, idx, 0, tmp,
					    NULL_PAGE_SIZE))
				memset(tmp, 0, sizeof(tmp));
			pthread_spin_unlock(null_stripe(nullb, idx));
			ret = null_page_write(&nullb->cache, idx, 0, tmp,
					      NULL_PAGE_SIZE);
		}
	}
	if (!ret)
		ret = null_page_write(&nullb->cache, idx, off, src, len);
	pthread_mutex_unlock(&nullb->cache_lock);
	return ret;
}

static bool null_cache_read(struct nullb *nullb, uint64_t idx,
			    unsigned int off, void *dst, unsigned int len)
{
	bool found;

	pthread_mutex_lock(&nullb->cache_lock);
	found = null_page_read(&nullb->cache, idx, off, dst, len);
	pthread_mutex_unlock(&nullb->cache_lock);
	return found;
}

static void null_cache_drop(struct nullb *nullb, uint64_t idx)
{
	pthread_mutex_lock(&nullb->cache_lock);
	null_page_drop(&nullb->cache, idx);
	pthread_mutex_unlock(&nullb->cache_lock);
}

/* ---- data transfer ---- */

static int null_transfer(struct nullb *nullb, bool is_write, bool fua,
			 sector_t sector, char *buf, unsigned int len)
{
	bool cached = nullb->p.cache_size_mb && !fua;

	while (len) {
		uint64_t off = (uint64_t)sector << SECTOR_SHIFT;
		uint64_t idx = off / NULL_PAGE_SIZE;
		unsigned int poff = (unsigned int)(off % NULL_PAGE_SIZE);
		unsigned int n = min(len, NULL_PAGE_SIZE - poff);
		int ret = 0;

		if (is_write && cached) {
			ret = null_cache_write(nullb, idx, poff, buf, n);
		} else if (is_write) {
			if (nullb->p.cache_size_mb)
				null_cache_drop(nullb, idx);
			pthread_spin_lock(null_stripe(nullb, idx));
			ret = null_page_write(&nullb->store, idx, poff, buf, n);
			pthread_spin_unlock(null_stripe(nullb, idx));
		} else if (!nullb->p.cache_size_mb ||
			   !null_cache_read(nullb, idx, poff, buf, n)) {
			pthread_spin_lock(null_stripe(nullb, idx));
			if (!null_page_read(&nullb->store, idx, poff, buf, n))
				memset(buf, 0, n);
			pthread_spin_unlock(null_stripe(nullb, idx));
		}
		if (ret)
			return ret;
		buf += n;
		len -= n;
		sector += n >> SECTOR_SHIFT;
	}
	return 0;
}

/* Discard and write-zeroes: whole pages go, partial ones are zeroed. */
static int null_zero_range(struct nullb *nullb, sector_t sector,
			   uint64_t bytes, bool free_pages)
{
	uint64_t off = (uint64_t)sector << SECTOR_SHIFT;
	uint64_t end = off + bytes;

	while (off < end) {
		uint64_t idx = off / NULL_PAGE_SIZE;
		unsigned int poff = (unsigned int)(off % NULL_PAGE_SIZE);
		unsigned int n = (unsigned int)min((uint64_t)NULL_PAGE_SIZE - poff,
						   end - off);
		int ret = 0;

		if (nullb->p.cache_size_mb)
			null_cache_drop(nullb, idx);
		pthread_spin_lock(null_stripe(nullb, idx));
		if (n == NULL_PAGE_SIZE && free_pages) {
			null_page_drop(&nullb->store, idx);
		} else {
			void *_Atomic *slot = null_page_slot(&nullb->store, idx,
							     false);

			if (slot && atomic_load(slot))
				ret = null_page_write(&nullb->store, idx, poff,
						      NULL, n);
		}
		pthread_spin_unlock(null_stripe(nullb, idx));
		if (ret)
			return ret;
		off += n;
	}
	return 0;
}

static bool null_is_bad(struct nullb *nullb, sector_t sector,
			unsigned int nr_sectors)
{
	sector_t end = sector + nr_sectors;

	for (unsigned int i = 0; i < nullb->nr_bad; i++)
		if (sector <= nullb->bad[i].end && end > nullb->bad[i].start)
			return true;
	return false;
}

static blk_status_t null_handle_data(struct nullb *nullb, enum req_op op,
				     blk_opf_t flags, sector_t sector,
				     uint64_t bytes, struct bio *first)
{
	bool fua = flags & REQ_FUA;
	int ret = 0;

	if (nullb->nr_bad && null_is_bad(nullb, sector,
					 (unsigned int)(bytes >> SECTOR_SHIFT)))
		return BLK_STS_IOERR;
	switch (op) {
	case REQ_OP_FLUSH:
		if (nullb->p.cache_size_mb) {
			pthread_mutex_lock(&nullb->cache_lock);
			ret = null_flush_cache(nullb);
			pthread_mutex_unlock(&nullb->cache_lock);
		}
		break;
	case REQ_OP_DISCARD:
		if (nullb->p.memory_backed)
			ret = null_zero_range(nullb, sector, bytes, true);
		break;
	case REQ_OP_WRITE_ZEROES:
		if (nullb->p.memory_backed)
			ret = null_zero_range(nullb, sector, bytes, false);
		break;
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		if (!nullb->p.memory_backed)
			break;
		for (struct bio *bio = first; bio && !ret; bio = bio->bi_next) {
			struct bvec_iter iter;
			struct bio_vec bv;
			sector_t s = bio->bi_iter.bi_sector;

			bio_for_each_segment(bv, bio, iter) {
				ret = null_transfer(nullb, op == REQ_OP_WRITE,
						    fua, s, bv.bv_buf,
						    bv.bv_len);
				if (ret)
					break;
				s += bv.bv_len >> SECTOR_SHIFT;
			}
		}
		break;
	default:
		return BLK_STS_NOTSUPP;
	}
	return ret ? BLK_STS_RESOURCE : BLK_STS_OK;
}

/* ---- completion threads ---- */

static void null_end_cmd(struct nullb_cmd *cmd)
{
	if (cmd->bio) {
		struct bio *bio = cmd->bio;

		bio->bi_status = cmd->error;
		free(cmd);
		bio_end_io_acct(bio, bio->bi_issue_ns);
		bio_endio(bio);
		return;
	}
	blk_mq_complete_request(cmd->rq);
}

/*
 * End the commands of @list as one batch. Under a plug, as the kernel's
 * softirq runs them in one go: whoever is told of a completion can leave
 * its work for the end of the batch (blk_check_plugged), such as the NBD
 * server's replies, which then leave in one send.
 */
static void null_complete_list(struct nullb_queue *nq, struct nullb_cmd *list)
{
	DEFINE_IO_COMP_BATCH(iob);
	struct blk_plug plug;
	struct nullb_cmd *cmd;

	blk_start_plug(&plug);
	while ((cmd = list)) {
		list = cmd->next;
		cmd->next = NULL;
		atomic_fetch_add_explicit(&nq->completed, 1,
					  memory_order_relaxed);
		if (cmd->bio || cmd->error || !blk_mq_mark_complete(cmd->rq)) {
			if (cmd->bio)
				null_end_cmd(cmd);
			else if (cmd->error)
				blk_mq_complete_request(cmd->rq);
			continue;
		}
		if (!blk_mq_add_to_batch(cmd->rq, &iob, 0,
					 blk_mq_end_request_batch))
			blk_mq_end_request(cmd->rq, BLK_STS_OK);
	}
	if (iob.req_list)
		iob.complete(&iob);
	blk_finish_plug(&plug);
}

static void *null_irq_thread(void *arg)
{
	struct nullb_queue *nq = arg;

	/* the default 50 us slack would swamp completion_nsec */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	pthread_mutex_lock(&nq->lock);
	for (;;) {
		struct nullb_cmd *cmd = nq->head;
		uint64_t now;

		if (!cmd) {
			if (nq->stop)
				break;
			pthread_cond_wait(&nq->cond, &nq->lock);
			continue;
		}
		now = ktime_get_ns();
		if (cmd->due_ns > now) {
			struct timespec ts = ns_to_timespec(cmd->due_ns);

			pthread_mutex_unlock(&nq->lock);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
					NULL);
			pthread_mutex_lock(&nq->lock);
			continue;
		}
		/* take everything due now, then complete it unlocked */
		struct nullb_cmd *list = cmd, *last = cmd;

		while (last->next && last->next->due_ns <= now)
			last = last->next;
		nq->head = last->next;
		if (!nq->head)
			nq->tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&nq->lock);
		null_complete_list(nq, list);
		pthread_mutex_lock(&nq->lock);
	}
	pthread_mutex_unlock(&nq->lock);
	return NULL;
}

static void null_queue_to_thread(struct nullb_queue *nq,
				 struct nullb_cmd *cmd, uint64_t delay_ns)
{
	cmd->next = NULL;
	cmd->due_ns = delay_ns ? ktime_get_ns() + delay_ns : 0;
	pthread_mutex_lock(&nq->lock);
	if (nq->tail)
		nq->tail->next = cmd;
	else
		nq->head = cmd;
	nq->tail = cmd;
	/* only an idle thread needs a wake-up */
	if (nq->head == cmd)
		pthread_cond_signal(&nq->cond);
	pthread_mutex_unlock(&nq->lock);
}

static int null_queue_start(struct nullb *nullb, struct nullb_queue *nq,
			    unsigned int idx)
{
	char name[16];

	memset(nq, 0, sizeof(*nq));
	nq->nullb = nullb;
	pthread_mutex_init(&nq->lock, NULL);
	pthread_cond_init(&nq->cond, NULL);
	pthread_spin_init(&nq->poll_lock, PTHREAD_PROCESS_PRIVATE);
	if (nullb->p.irqmode == NULL_IRQ_NONE)
		return 0;
	if (pthread_create(&nq->thread, NULL, null_irq_thread, nq))
		return -EAGAIN;
	snprintf(name, sizeof(name), "null-irq/%u", idx);
	pthread_setname_np(nq->thread, name);
	nq->has_thread = true;
	return 0;
}

static void null_queue_stop(struct nullb_queue *nq)
{
	if (nq->has_thread) {
		pthread_mutex_lock(&nq->lock);
		nq->stop = true;
		pthread_cond_signal(&nq->cond);
		pthread_mutex_unlock(&nq->lock);
		pthread_join(nq->thread, NULL);
	}
	pthread_mutex_destroy(&nq->lock);
	pthread_cond_destroy(&nq->cond);
	pthread_spin_destroy(&nq->poll_lock);
}

/* ---- blk_mq_ops ---- */

/* Every interval-th request, if interval is set (fault injection). */
static bool null_every(struct nullb *nullb, unsigned int interval,
		       unsigned long n)
{
	return interval && n % interval == interval - 1;
}

/*
 * ->queue_rq, and each request of ->queue_rqs, which passes @iob: what
 * irqmode=0 completes then is ended as one batch when the list is done.
 */
static __always_inline blk_status_t
null_queue_rq_iob(struct blk_mq_hw_ctx *hctx,
		  const struct blk_mq_queue_data *bd, struct io_comp_batch *iob)
{
	struct request *rq = bd->rq;
	/* built with the core: the fields, not the exported accessors */
	struct nullb_queue *nq = hctx->driver_data;
	struct nullb *nullb = nq->nullb;
	struct nullb_cmd *cmd = blk_mq_rq_to_pdu(rq);
	/* read once: after the call below it would be read again */
	const bool faults = nullb->p.requeue | nullb->p.timeout |
			    nullb->p.resource;
	unsigned long n = 0;

	/* a counter shared by all queues costs a contended atomic: only
	 * fault injection needs it */
	if (unlikely(faults))
		n = atomic_fetch_add_explicit(&nullb->nr_requests, 1,
					      memory_order_relaxed);

	if (unlikely(faults) && null_every(nullb, nullb->p.resource, n))
		return BLK_STS_RESOURCE;
	/* inline: we are built with the core */
	__blk_mq_start_request(rq);
	if (unlikely(faults) && null_every(nullb, nullb->p.requeue, n)) {
		atomic_fetch_add(&nullb->requeues, 1);
		blk_mq_requeue_request(rq, true);
		return BLK_STS_OK;
	}
	cmd->rq = rq;
	cmd->bio = NULL;
	cmd->fake_timeout = unlikely(faults) &&
			    null_every(nullb, nullb->p.timeout, n);
	if (cmd->fake_timeout) {
		atomic_fetch_add(&nullb->timeouts, 1);
		return BLK_STS_OK;	/* never completes: the timer fires */
	}
	/* no store and no bad blocks: a read or write has nothing to do */
	if (req_op(rq) <= REQ_OP_WRITE && !nullb->p.memory_backed &&
	    !nullb->nr_bad)
		cmd->error = BLK_STS_OK;
	else
		cmd->error = null_handle_data(nullb, req_op(rq),
					      rq->cmd_flags, blk_rq_pos(rq),
					      blk_rq_bytes(rq), rq->bio);
	if (hctx->type == HCTX_TYPE_POLL) {
		cmd->next = NULL;
		pthread_spin_lock(&nq->poll_lock);
		if (nq->poll_tail)
			nq->poll_tail->next = cmd;
		else
			nq->poll_head = cmd;
		nq->poll_tail = cmd;
		pthread_spin_unlock(&nq->poll_lock);
		return BLK_STS_OK;
	}
	switch (nullb->p.irqmode) {
	case NULL_IRQ_NONE:
		if (!iob || !blk_mq_add_to_batch(rq, iob, cmd->error,
						 blk_mq_end_request_batch))
			blk_mq_end_request(rq, cmd->error);
		break;
	case NULL_IRQ_SOFTIRQ:
		null_queue_to_thread(nq, cmd, 0);
		break;
	default:
		null_queue_to_thread(nq, cmd, nullb->p.completion_nsec);
		break;
	}
	return BLK_STS_OK;
}

static blk_status_t null_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	return null_queue_rq_iob(hctx, bd, NULL);
}

/*
 * Nothing to do for a request but start and complete it: irqmode=0, no
 * fault injection, no store, no bad blocks. Read once per list (the
 * parameters are set before I/O; bad blocks may change at any time, and
 * a list is as good a point to see that as a request).
 */
static bool null_plain(const struct nullb *nullb)
{
	return nullb->p.irqmode == NULL_IRQ_NONE && !nullb->p.memory_backed &&
	       !(nullb->p.requeue | nullb->p.timeout | nullb->p.resource) &&
	       !nullb->nr_bad;
}

/* null_queue_rq_iob() of a plain device's read or write */
static __always_inline void null_queue_rq_plain(struct request *rq,
						struct io_comp_batch *iob)
{
	struct nullb_cmd *cmd = blk_mq_rq_to_pdu(rq);

	__blk_mq_start_request(rq);
	cmd->rq = rq;
	cmd->bio = NULL;
	cmd->fake_timeout = false;
	cmd->error = BLK_STS_OK;
	if (!blk_mq_add_to_batch(rq, iob, BLK_STS_OK, blk_mq_end_request_batch))
		blk_mq_end_request(rq, BLK_STS_OK);
}

static void null_queue_rqs(struct request **rqlist)
{
	struct request *requeue = NULL, **tail = &requeue, *rq = *rqlist;
	const bool plain = rq && null_plain(
		((struct nullb_queue *)rq->mq_hctx->driver_data)->nullb);
	DEFINE_IO_COMP_BATCH(iob);

	while ((rq = *rqlist)) {
		struct blk_mq_queue_data bd = { .rq = rq,
						.last = rq->rq_next == NULL };

		*rqlist = rq->rq_next;
		rq->rq_next = NULL;
		if (plain && req_op(rq) <= REQ_OP_WRITE &&
		    rq->mq_hctx->type != HCTX_TYPE_POLL) {
			null_queue_rq_plain(rq, &iob);
			continue;
		}
		if (null_queue_rq_iob(rq->mq_hctx, &bd, &iob) != BLK_STS_OK) {
			*tail = rq;
			tail = &rq->rq_next;
		}
	}
	*rqlist = requeue;
	if (iob.req_list)
		iob.complete(&iob);
}

static void null_complete_rq(struct request *rq)
{
	struct nullb_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->error);
}

static int null_poll(struct blk_mq_hw_ctx *hctx, struct io_comp_batch *iob)
{
	struct nullb_queue *nq = hctx_driver_data(hctx);
	struct nullb_cmd *list, *cmd;
	int nr = 0;

	pthread_spin_lock(&nq->poll_lock);
	list = nq->poll_head;
	nq->poll_head = nq->poll_tail = NULL;
	pthread_spin_unlock(&nq->poll_lock);
	while ((cmd = list)) {
		list = cmd->next;
		cmd->next = NULL;
		nr++;
		if (!blk_mq_mark_complete(cmd->rq))
			continue;
		if (!blk_mq_add_to_batch(cmd->rq, iob, cmd->error,
					 blk_mq_end_request_batch))
			blk_mq_end_request(cmd->rq, cmd->error);
	}
	return nr;
}

static enum blk_eh_timer_return null_timeout_rq(struct request *rq)
{
	struct nullb_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct nullb_queue *nq = hctx_driver_data(rq->mq_hctx);

	pr_info("null_blk: rq %p timed out", (void *)rq);
	cmd->error = BLK_STS_TIMEOUT;
	if (hctx_type_of(rq->mq_hctx) == HCTX_TYPE_POLL) {
		/* take it off the poll list: we complete it here */
		struct nullb_cmd **pp;

		pthread_spin_lock(&nq->poll_lock);
		for (pp = &nq->poll_head; *pp; pp = &(*pp)->next) {
			if (*pp == cmd) {
				*pp = cmd->next;
				cmd->fake_timeout = true;
				break;
			}
		}
		nq->poll_tail = NULL;
		for (struct nullb_cmd *c = nq->poll_head; c; c = c->next)
			nq->poll_tail = c;
		pthread_spin_unlock(&nq->poll_lock);
	}
	/* a real one in flight completes (with the error) on its own */
	if (cmd->fake_timeout)
		blk_mq_complete_request(rq);
	return BLK_EH_DONE;
}

static int null_init_hctx(struct blk_mq_hw_ctx *hctx, void *data,
			  unsigned int idx)
{
	struct nullb *nullb = queue_driver_data(hctx_queue(hctx));
	struct nullb_queue *nq = malloc(sizeof(*nq));

	if (!nq)
		return -ENOMEM;
	if (null_queue_start(nullb, nq, idx)) {
		free(nq);
		return -EAGAIN;
	}
	hctx_set_driver_data(hctx, nq);
	return 0;
}

static void null_exit_hctx(struct blk_mq_hw_ctx *hctx, unsigned int idx)
{
	struct nullb_queue *nq = hctx_driver_data(hctx);

	null_queue_stop(nq);
	free(nq);
}

/* submit_queues for the default map, poll_queues for the poll map. */
static void null_map_queues(struct blk_mq_tag_set *set)
{
	struct nullb *nullb = set->driver_data;

	blk_mq_map_default_and_poll(set, nullb ? nullb->p.poll_queues : 0);
}

static void null_show_hctx(struct blk_mq_hw_ctx *hctx, FILE *out)
{
	struct nullb_queue *nq = hctx_driver_data(hctx);

	fprintf(out, "  null_blk: completed_by_thread=%lu\n",
		atomic_load(&nq->completed));
}

static const struct blk_mq_ops null_mq_ops = {
	.queue_rq	= null_queue_rq,
	.queue_rqs	= null_queue_rqs,
	.complete	= null_complete_rq,
	.timeout	= null_timeout_rq,
	.poll		= null_poll,
	.init_hctx	= null_init_hctx,
	.exit_hctx	= null_exit_hctx,
	.map_queues	= null_map_queues,
	.show_hctx	= null_show_hctx,
};

/* ---- bio-based mode (queue_mode=0) ---- */

static void null_submit_bio(struct bio *bio)
{
	struct nullb *nullb = disk_private(bio->bi_disk);
	blk_status_t status;
	uint64_t bytes = bio->bi_iter.bi_size;
	struct nullb_cmd *cmd;

	/* a bio-based driver accounts its own I/O in diskstats */
	bio->bi_issue_ns = ktime_get_ns();
	bio_start_io_acct(bio);
	if (bio_op(bio) == REQ_OP_WRITE && (bio->bi_opf & REQ_PREFLUSH))
		null_handle_data(nullb, REQ_OP_FLUSH, 0, 0, 0, NULL);
	status = bytes || bio_op(bio) != REQ_OP_WRITE ?
		 null_handle_data(nullb, bio_op(bio), bio->bi_opf,
				  bio->bi_iter.bi_sector, bytes, bio) :
		 BLK_STS_OK;
	if (nullb->p.irqmode == NULL_IRQ_NONE ||
	    !(cmd = malloc(sizeof(*cmd)))) {
		bio->bi_status = status;
		bio_end_io_acct(bio, bio->bi_issue_ns);
		bio_endio(bio);
		return;
	}
	cmd->bio = bio;
	cmd->rq = NULL;
	cmd->error = status;
	null_queue_to_thread(&nullb->bio_nq, cmd,
			     nullb->p.irqmode == NULL_IRQ_TIMER ?
			     nullb->p.completion_nsec : 0);
}

static const struct block_device_operations null_bio_ops = {
	.submit_bio	= null_submit_bio,
};

/* ---- parameters ---- */

static int parse_size_mb(const char *key, const char *v, uint64_t *mb)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t mult;

	if (end == v || *v == '-')
		goto bad;
	switch (*end) {
	case '\0': case 'M': case 'm': mult = 1; break;
	case 'G': case 'g': mult = 1024; break;
	case 'T': case 't': mult = 1024 * 1024; break;
	default: goto bad;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		goto bad;
	*mb = n * mult;
	return 0;
bad:
	return blk_err(-EINVAL, "null: %s=%s: a size in MiB, or with a "
		       "M/G/T suffix (e.g. %s=1G)", key, v, key);
}

static int parse_uint_param(const char *key, const char *v,
			    unsigned long min, unsigned long max,
			    unsigned int *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (end == v || *end || *v == '-' || n < min || n > max)
		return blk_err(-EINVAL, "null: %s=%s: valid values are %lu..%lu",
			       key, v, min, max);
	*out = (unsigned int)n;
	return 0;
}

static int parse_badblocks(struct null_params *p, const char *v)
{
	char buf[512], *save, *tok;

	snprintf(buf, sizeof(buf), "%s", v);
	p->nr_bad = 0;
	for (tok = strtok_r(buf, ":", &save); tok;
	     tok = strtok_r(NULL, ":", &save)) {
		unsigned long long s, e;
		int n = 0;

		if (p->nr_bad == NULL_MAX_BADBLOCKS)
			return blk_err(-EINVAL, "null: badblocks: at most %d "
				       "ranges", NULL_MAX_BADBLOCKS);
		if (sscanf(tok, "%llu-%llu%n", &s, &e, &n) == 2 &&
		    !tok[n] && s <= e) {
			p->bad[p->nr_bad].start = s;
			p->bad[p->nr_bad++].end = e;
		} else if (sscanf(tok, "%llu%n", &s, &n) == 1 && !tok[n]) {
			p->bad[p->nr_bad].start = s;
			p->bad[p->nr_bad++].end = s;
		} else {
			return blk_err(-EINVAL, "null: badblocks=%s: ranges of "
				       "sectors as START-END, separated by "
				       "':' (e.g. 100-107:2048)", v);
		}
	}
	return 0;
}

void null_params_default(struct null_params *p)
{
	memset(p, 0, sizeof(*p));
	p->size_mb = 250;
	p->bs = 512;
	p->submit_queues = 1;
	p->hw_queue_depth = 64;
	p->irqmode = NULL_IRQ_SOFTIRQ;
	p->completion_nsec = 10000;
	p->queue_mode = NULL_Q_MQ;
	p->fua = 1;
}

static const char null_keys[] = "size, gb, bs, submit_queues, poll_queues, "
	"hw_queue_depth, irqmode, completion_nsec, memory_backed, blocking, "
	"shared_tags, shared_tag_bitmap, cache_size, fua, badblocks, "
	"queue_mode, no_sched, discard, rotational, max_sectors, requeue, "
	"timeout, resource";

static int null_param_set(struct null_params *p, const char *k, const char *v)
{
	unsigned int u;
	int ret = 0;

#define UINT_PARAM(name, lo, hi, field)					\
	if (!strcmp(k, name)) {						\
		ret = parse_uint_param(k, v, lo, hi, &u);		\
		if (!ret)						\
			p->field = u;					\
		return ret;						\
	}
	if (!strcmp(k, "size"))
		return parse_size_mb(k, v, &p->size_mb);
	if (!strcmp(k, "gb")) {
		ret = parse_uint_param(k, v, 1, 1U << 20, &u);
		if (!ret)
			p->size_mb = (uint64_t)u * 1024;
		return ret;
	}
	if (!strcmp(k, "cache_size"))
		return parse_size_mb(k, v, &p->cache_size_mb);
	if (!strcmp(k, "badblocks"))
		return parse_badblocks(p, v);
	UINT_PARAM("bs", 512, 4096, bs)
	UINT_PARAM("submit_queues", 1, BLK_MAX_CPUS, submit_queues)
	UINT_PARAM("poll_queues", 0, BLK_MAX_CPUS, poll_queues)
	UINT_PARAM("hw_queue_depth", 1, 10240, hw_queue_depth)
	UINT_PARAM("irqmode", 0, 2, irqmode)
	UINT_PARAM("completion_nsec", 0, 1000000000, completion_nsec)
	UINT_PARAM("memory_backed", 0, 1, memory_backed)
	UINT_PARAM("blocking", 0, 1, blocking)
	UINT_PARAM("shared_tags", 0, 1, shared_tags)
	UINT_PARAM("shared_tag_bitmap", 0, 1, shared_tag_bitmap)
	UINT_PARAM("fua", 0, 1, fua)
	UINT_PARAM("queue_mode", 0, 2, queue_mode)
	UINT_PARAM("no_sched", 0, 1, no_sched)
	UINT_PARAM("discard", 0, 1, discard)
	UINT_PARAM("rotational", 0, 1, rotational)
	UINT_PARAM("max_sectors", 8, 1U << 24, max_sectors)
	UINT_PARAM("requeue", 0, 1U << 30, requeue)
	UINT_PARAM("timeout", 0, 1U << 30, timeout)
	UINT_PARAM("resource", 0, 1U << 30, resource)
#undef UINT_PARAM
	return blk_err(-EINVAL, "null: unknown parameter '%s'; valid: %s", k,
		       null_keys);
}

/* Parse "k=v,k=v" on top of the defaults; nothing is half-applied. */
int null_params_parse(struct null_params *out, const char *params)
{
	struct null_params p;
	char *buf = strdup(params ? params : ""), *save, *tok;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	null_params_default(&p);
	for (tok = strtok_r(buf, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			ret = blk_err(-EINVAL, "null: '%s': parameters are "
				      "key=value; valid keys: %s", tok,
				      null_keys);
			break;
		}
		*eq = '\0';
		ret = null_param_set(&p, tok, eq + 1);
	}
	free(buf);
	if (ret)
		return ret;
	if (p.bs & (p.bs - 1))
		return blk_err(-EINVAL, "null: bs=%u: must be a power of two "
			       "from 512 to 4096", p.bs);
	if (p.queue_mode == NULL_Q_RQ)
		return blk_err(-EINVAL, "null: queue_mode=1 (single queue) left "
			       "the kernel in 5.0; use 0 (bio) or 2 (multi-queue)");
	if (p.cache_size_mb && !p.memory_backed)
		return blk_err(-EINVAL, "null: cache_size needs memory_backed=1");
	if (!p.size_mb)
		return blk_err(-EINVAL, "null: size=0: the device needs at "
			       "least 1 MiB");
	*out = p;
	return 0;
}

/* ---- create/destroy ---- */

static void null_fill_limits(const struct null_params *p,
			     struct queue_limits *lim)
{
	blk_set_default_limits(lim);
	lim->logical_block_size = p->bs;
	lim->physical_block_size = p->bs;
	lim->max_hw_sectors = p->max_sectors ? p->max_sectors :
			      BLK_DEF_MAX_SECTORS;
	lim->max_segments = UINT16_MAX;
	lim->max_segment_size = UINT32_MAX >> 1;
	if (p->discard || p->memory_backed) {
		lim->max_hw_discard_sectors = UINT32_MAX >> SECTOR_SHIFT;
		lim->discard_granularity = p->bs;
		lim->max_write_zeroes_sectors = p->memory_backed ?
						UINT32_MAX >> SECTOR_SHIFT : 0;
	}
	lim->features_write_cache = p->cache_size_mb != 0;
	lim->features_fua = p->cache_size_mb && p->fua;
	lim->features_rotational = p->rotational;
	lim->features_poll = p->poll_queues != 0;
}

static void null_init_set(struct nullb *nullb, struct blk_mq_tag_set *set)
{
	const struct null_params *p = &nullb->p;

	memset(set, 0, sizeof(*set));
	set->ops = &null_mq_ops;
	set->nr_hw_queues = p->submit_queues + p->poll_queues;
	set->nr_maps = p->poll_queues ? HCTX_MAX_TYPES : 1;
	set->queue_depth = p->hw_queue_depth;
	set->cmd_size = sizeof(struct nullb_cmd);
	set->driver_data = nullb;
	set->flags = BLK_MQ_F_SHOULD_MERGE;
	if (p->blocking)
		set->flags |= BLK_MQ_F_BLOCKING;
	if (p->no_sched)
		set->flags |= BLK_MQ_F_NO_SCHED;
	if (p->shared_tag_bitmap)
		set->flags |= BLK_MQ_F_TAG_HCTX_SHARED;
}

static int null_setup_tagset(struct nullb *nullb)
{
	int ret;

	if (!nullb->p.shared_tags) {
		null_init_set(nullb, &nullb->tag_set);
		nullb->set = &nullb->tag_set;
		return blk_mq_alloc_tag_set(nullb->set);
	}
	/* the first shared_tags device's parameters shape the set */
	pthread_mutex_lock(&shared_lock);
	if (!shared_users) {
		null_init_set(nullb, &shared_set);
		/* hctx data comes from each queue, not the set */
		shared_set.driver_data = NULL;
		ret = blk_mq_alloc_tag_set(&shared_set);
		if (ret) {
			pthread_mutex_unlock(&shared_lock);
			return ret;
		}
	}
	shared_users++;
	nullb->set = &shared_set;
	pthread_mutex_unlock(&shared_lock);
	return 0;
}

static void null_free_tagset(struct nullb *nullb)
{
	if (nullb->set == &nullb->tag_set) {
		blk_mq_free_tag_set(&nullb->tag_set);
		return;
	}
	pthread_mutex_lock(&shared_lock);
	if (--shared_users == 0)
		blk_mq_free_tag_set(&shared_set);
	pthread_mutex_unlock(&shared_lock);
}

static void null_free(struct nullb *nullb)
{
	null_store_free(&nullb->store);
	null_store_free(&nullb->cache);
	pthread_mutex_destroy(&nullb->cache_lock);
	for (int i = 0; i < NULL_LOCK_STRIPES; i++)
		pthread_spin_destroy(&nullb->stripe[i]);
	free(nullb);
}

static struct nullb *null_alloc(const struct null_params *p)
{
	struct nullb *nullb = calloc(1, sizeof(*nullb));
	uint64_t bytes = p->size_mb << 20;

	if (!nullb)
		return NULL;
	nullb->p = *p;
	nullb->nr_bad = p->nr_bad;
	for (unsigned int i = 0; i < p->nr_bad; i++) {
		nullb->bad[i].start = p->bad[i].start;
		nullb->bad[i].end = p->bad[i].end;
	}
	pthread_mutex_init(&nullb->cache_lock, NULL);
	for (int i = 0; i < NULL_LOCK_STRIPES; i++)
		pthread_spin_init(&nullb->stripe[i], PTHREAD_PROCESS_PRIVATE);
	if ((p->memory_backed && null_store_init(&nullb->store, bytes)) ||
	    (p->cache_size_mb && null_store_init(&nullb->cache, bytes))) {
		null_free(nullb);
		return NULL;
	}
	return nullb;
}

static _Atomic unsigned int null_index;

static int null_create(const char *name, const char *params,
		       struct gendisk **diskp)
{
	struct queue_limits lim;
	struct null_params p;
	struct nullb *nullb;
	char auto_name[32];
	int ret;

	ret = null_params_parse(&p, params);
	if (ret)
		return ret;
	if (!name || !*name) {
		snprintf(auto_name, sizeof(auto_name), "nullb%u",
			 atomic_fetch_add(&null_index, 1));
		name = auto_name;
	}
	nullb = null_alloc(&p);
	if (!nullb)
		return blk_err(-ENOMEM, "null: out of memory");
	null_fill_limits(&p, &lim);

	if (p.queue_mode == NULL_Q_BIO) {
		nullb->disk = blk_alloc_disk(&null_bio_ops, &lim, nullb);
		if (nullb->disk && null_queue_start(nullb, &nullb->bio_nq, 0)) {
			put_disk(nullb->disk);
			nullb->disk = NULL;
		}
	} else {
		ret = null_setup_tagset(nullb);
		if (ret) {
			null_free(nullb);
			return ret;
		}
		nullb->disk = blk_mq_alloc_disk(nullb->set, &lim, nullb);
		if (!nullb->disk)
			null_free_tagset(nullb);
	}
	if (!nullb->disk) {
		null_free(nullb);
		return -ENOMEM;
	}
	disk_set_private(nullb->disk, nullb);
	nullb->disk->driver = &null_blk_driver;
	ret = add_disk(nullb->disk, name, (p.size_mb << 20) >> SECTOR_SHIFT);
	if (ret) {
		put_disk(nullb->disk);	/* disk_release -> null_destroy */
		return ret;
	}
	*diskp = nullb->disk;
	put_disk(nullb->disk);	/* the registry keeps it */
	return 0;
}

static void null_destroy(struct gendisk *disk)
{
	struct nullb *nullb = disk_private(disk);

	if (!nullb)
		return;
	if (nullb->p.queue_mode == NULL_Q_BIO)
		null_queue_stop(&nullb->bio_nq);
	else
		null_free_tagset(nullb);
	null_free(nullb);
}

static int null_bypass_rw(struct gendisk *disk, enum req_op op,
			  sector_t sector, void *buf, unsigned int len)
{
	struct nullb *nullb = disk_private(disk);

	if (!nullb->p.memory_backed || (op != REQ_OP_READ && op != REQ_OP_WRITE))
		return 0;
	return null_transfer(nullb, op == REQ_OP_WRITE, false, sector, buf, len);
}

/* ---- holes, for NBD_CMD_BLOCK_STATUS ---- */

static bool null_page_present(struct null_store *s, uint64_t idx)
{
	void *_Atomic *slot = null_page_slot(s, idx, false);

	return slot && atomic_load_explicit(slot, memory_order_relaxed);
}

static bool null_data_at(struct nullb *nullb, uint64_t idx)
{
	return null_page_present(&nullb->store, idx) ||
	       (nullb->p.cache_size_mb && null_page_present(&nullb->cache, idx));
}

/* Pages never written (or discarded) are holes; a whole empty table at once. */
static uint64_t null_extent_end(struct nullb *nullb, uint64_t off,
				uint64_t end, bool data)
{
	while (off < end) {
		uint64_t idx = off / NULL_PAGE_SIZE;

		if (!data && !nullb->p.cache_size_mb &&
		    !atomic_load(&nullb->store.l1[idx >> NULL_L2_SHIFT])) {
			off = ((idx >> NULL_L2_SHIFT) + 1) * NULL_L2_SIZE *
			      (uint64_t)NULL_PAGE_SIZE;
			continue;
		}
		if (null_data_at(nullb, idx) != data)
			break;
		off = (idx + 1) * NULL_PAGE_SIZE;
	}
	return min(off, end);
}

static int null_block_status(struct gendisk *disk, uint64_t off, uint64_t len,
			     int (*fn)(uint64_t off, uint64_t len, bool hole,
				       void *arg),
			     void *arg)
{
	struct nullb *nullb = disk_private(disk);
	uint64_t end = off + len;

	/* without memory_backed nothing is kept: no hole is known */
	if (!nullb->p.memory_backed)
		return fn(off, len, false, arg);
	while (off < end) {
		bool data = null_data_at(nullb, off / NULL_PAGE_SIZE);
		uint64_t next = null_extent_end(nullb, off, end, data);
		int ret = fn(off, next - off, !data, arg);

		if (ret)
			return ret;
		off = next;
	}
	return 0;
}

const struct blk_driver null_blk_driver = {
	.name		= "null",
	.params_help	= null_keys,
	.create		= null_create,
	.destroy	= null_destroy,
	.bypass_rw	= null_bypass_rw,
	.block_status	= null_block_status,
};
