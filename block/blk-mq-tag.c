// SPDX-License-Identifier: MIT
/*
 * Tag allocation (the kernel's block/blk-mq-tag.c): a tag map per hardware
 * queue (or one for all of them with BLK_MQ_F_TAG_HCTX_SHARED), normal and
 * reserved tags as two sbitmap_queues, waiting for a tag, fair sharing of
 * a tag set among the queues using it, and iteration over busy tags.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "blk-trace.h"

/*
 * tags->rqs[] is written on every allocation and free: whole cache lines
 * of its own, so that the maps of two hardware queues (two threads)
 * never share one.
 */
static struct request *_Atomic *blk_mq_alloc_rqs_map(unsigned int nr)
{
	size_t size = ALIGN_UP((nr ? nr : 1) * sizeof(struct request *),
			       (size_t)SMP_CACHE_BYTES);
	struct request *_Atomic *rqs = aligned_alloc(SMP_CACHE_BYTES, size);

	if (rqs)
		memset(rqs, 0, size);
	return rqs;
}

struct blk_mq_tags *blk_mq_init_tags(unsigned int total_tags,
				     unsigned int reserved_tags,
				     bool round_robin)
{
	struct blk_mq_tags *tags = calloc(1, sizeof(*tags));
	unsigned int depth = total_tags - reserved_tags;

	if (!tags)
		return NULL;
	tags->nr_tags = total_tags;
	tags->nr_reserved_tags = reserved_tags;
	pthread_spin_init(&tags->lock, PTHREAD_PROCESS_PRIVATE);
	if (sbitmap_queue_init(&tags->bitmap_tags, depth, -1, round_robin))
		goto free_tags;
	if (sbitmap_queue_init(&tags->breserved_tags, reserved_tags, -1,
			       round_robin))
		goto free_bitmap;
	tags->rqs = blk_mq_alloc_rqs_map(total_tags);
	tags->static_rqs = calloc(total_tags, sizeof(*tags->static_rqs));
	if (!tags->rqs || !tags->static_rqs)
		goto free_all;
	return tags;

free_all:
	free(tags->rqs);
	free(tags->static_rqs);
	sbitmap_queue_free(&tags->breserved_tags);
free_bitmap:
	sbitmap_queue_free(&tags->bitmap_tags);
free_tags:
	pthread_spin_destroy(&tags->lock);
	free(tags);
	return NULL;
}

void blk_mq_free_tags(struct blk_mq_tags *tags)
{
	if (!tags)
		return;
	sbitmap_queue_free(&tags->bitmap_tags);
	sbitmap_queue_free(&tags->breserved_tags);
	free(tags->rqs);
	free(tags->static_rqs);
	pthread_spin_destroy(&tags->lock);
	free(tags);
}

/* The request plus the driver's cmd_size, padded to a cache line. */
static size_t blk_mq_rq_size(unsigned int cmd_size)
{
	return ALIGN_UP(sizeof(struct request) + cmd_size,
			(size_t)SMP_CACHE_BYTES);
}

int blk_mq_alloc_rqs(struct blk_mq_tag_set *set, struct blk_mq_tags *tags,
		     unsigned int hctx_idx)
{
	size_t rq_size = blk_mq_rq_size(set->cmd_size);
	char *mem;

	mem = aligned_alloc(SMP_CACHE_BYTES, rq_size * tags->nr_tags);
	if (!mem)
		return -ENOMEM;
	memset(mem, 0, rq_size * tags->nr_tags);
	tags->rq_mem = mem;
	tags->rq_size = rq_size;
	for (unsigned int i = 0; i < tags->nr_tags; i++) {
		struct request *rq = (struct request *)(mem + i * rq_size);

		rq->tag = BLK_MQ_NO_TAG;
		rq->internal_tag = BLK_MQ_NO_TAG;
		INIT_LIST_HEAD(&rq->queuelist);
		tags->static_rqs[i] = rq;
		if (set->ops->init_request &&
		    set->ops->init_request(set, rq, hctx_idx)) {
			tags->static_rqs[i] = NULL;
			blk_mq_free_rqs(set, tags, hctx_idx);
			return -ENOMEM;
		}
	}
	return 0;
}

void blk_mq_free_rqs(struct blk_mq_tag_set *set, struct blk_mq_tags *tags,
		     unsigned int hctx_idx)
{
	if (!tags->rq_mem)
		return;
	for (unsigned int i = 0; i < tags->nr_tags; i++) {
		if (!tags->static_rqs[i])
			break;
		if (set->ops->exit_request)
			set->ops->exit_request(set, tags->static_rqs[i],
					       hctx_idx);
		tags->static_rqs[i] = NULL;
	}
	free(tags->rq_mem);
	tags->rq_mem = NULL;
}

struct blk_mq_tags *blk_mq_alloc_map_and_rqs(struct blk_mq_tag_set *set,
					     unsigned int hctx_idx,
					     unsigned int depth)
{
	struct blk_mq_tags *tags;

	tags = blk_mq_init_tags(depth, set->reserved_tags, false);
	if (!tags)
		return NULL;
	if (blk_mq_alloc_rqs(set, tags, hctx_idx)) {
		blk_mq_free_tags(tags);
		return NULL;
	}
	return tags;
}

void blk_mq_free_map_and_rqs(struct blk_mq_tag_set *set,
			     struct blk_mq_tags *tags, unsigned int hctx_idx)
{
	if (!tags)
		return;
	blk_mq_free_rqs(set, tags, hctx_idx);
	blk_mq_free_tags(tags);
}

/*
 * Fair sharing: a queue on a shared tag set marks itself active while it
 * has requests; each active queue may hold about depth / active_queues
 * driver tags (at least 4), as the kernel's hctx_may_queue().
 */
void __blk_mq_tag_busy(struct blk_mq_hw_ctx *hctx)
{
	struct request_queue *q = hctx->queue;
	struct blk_mq_tags *tags = hctx->tags;

	if (blk_mq_is_shared_tags(hctx->flags)) {
		if (blk_queue_flag_test(QUEUE_FLAG_HCTX_ACTIVE, q))
			return;
		if (atomic_fetch_or(&q->queue_flags,
				    1UL << QUEUE_FLAG_HCTX_ACTIVE) &
		    (1UL << QUEUE_FLAG_HCTX_ACTIVE))
			return;
	} else {
		if (hctx_test_bit(BLK_MQ_S_TAG_ACTIVE, hctx))
			return;
		if (hctx_test_and_set_bit(BLK_MQ_S_TAG_ACTIVE, hctx))
			return;
	}
	atomic_fetch_add(&tags->active_queues, 1);
}

void __blk_mq_tag_idle(struct blk_mq_hw_ctx *hctx)
{
	struct request_queue *q = hctx->queue;
	struct blk_mq_tags *tags = hctx->tags;

	if (blk_mq_is_shared_tags(hctx->flags)) {
		if (!(atomic_fetch_and(&q->queue_flags,
				       ~(1UL << QUEUE_FLAG_HCTX_ACTIVE)) &
		      (1UL << QUEUE_FLAG_HCTX_ACTIVE)))
			return;
	} else {
		if (!(atomic_fetch_and(&hctx->state,
				       ~(1UL << BLK_MQ_S_TAG_ACTIVE)) &
		      (1UL << BLK_MQ_S_TAG_ACTIVE)))
			return;
	}
	atomic_fetch_sub(&tags->active_queues, 1);
	blk_mq_tag_wakeup_all(tags);
}

bool hctx_may_queue(struct blk_mq_hw_ctx *hctx, struct sbitmap_queue *bt)
{
	unsigned int depth, users;

	if (!hctx || !(hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED))
		return true;
	if (blk_mq_is_shared_tags(hctx->flags)) {
		if (!blk_queue_flag_test(QUEUE_FLAG_HCTX_ACTIVE, hctx->queue))
			return true;
	} else if (!hctx_test_bit(BLK_MQ_S_TAG_ACTIVE, hctx)) {
		return true;
	}
	users = atomic_load_explicit(&hctx->tags->active_queues,
				     memory_order_relaxed);
	if (!users)
		return true;
	depth = max((bt->sb.depth + users - 1) / users, 4U);
	return atomic_load_explicit(blk_mq_active_counter(hctx),
				    memory_order_relaxed) <
	       (int)depth;
}

static int __blk_mq_get_tag(struct blk_mq_alloc_data *data,
			    struct sbitmap_queue *bt)
{
	if (!data->q->elevator && !(data->flags & BLK_MQ_REQ_RESERVED) &&
	    !hctx_may_queue(data->hctx, bt))
		return BLK_MQ_NO_TAG;
	if (data->shallow_depth)
		return sbitmap_queue_get_shallow(bt, data->shallow_depth);
	return __sbitmap_queue_get(bt);
}

static struct blk_mq_tags *blk_mq_tags_from_data(struct blk_mq_alloc_data *d)
{
	return d->q->elevator ? d->hctx->sched_tags : d->hctx->tags;
}

/*
 * Get a tag for @data->hctx, sleeping until one frees unless NOWAIT.
 * While waiting the thread may move to another CPU; the hctx is looked
 * up again, and the old wait queue is given a wake-up so no other waiter
 * there misses the one we were owed.
 */
int blk_mq_get_tag(struct blk_mq_alloc_data *data)
{
	struct blk_mq_tags *tags = blk_mq_tags_from_data(data);
	struct sbitmap_queue *bt;
	struct sbq_wait_state *ws;
	struct sbq_wait wait;
	unsigned int tag_offset;
	int tag;

	if (data->flags & BLK_MQ_REQ_RESERVED) {
		if (unlikely(!tags->nr_reserved_tags)) {
			WARN_ON_ONCE(1);
			return BLK_MQ_NO_TAG;
		}
		bt = &tags->breserved_tags;
		tag_offset = 0;
	} else {
		bt = &tags->bitmap_tags;
		tag_offset = tags->nr_reserved_tags;
	}

	tag = __blk_mq_get_tag(data, bt);
	if (tag != BLK_MQ_NO_TAG)
		goto found_tag;
	if (data->flags & BLK_MQ_REQ_NOWAIT)
		return BLK_MQ_NO_TAG;

	sbq_wait_init(&wait);
	ws = sbq_wait_ptr(bt, &bt->wake_index);
	for (;;) {
		struct sbitmap_queue *bt_prev;

		/* kick pending I/O before sleeping: it may free tags */
		blk_mq_run_hw_queue(data->hctx, false);
		tag = __blk_mq_get_tag(data, bt);
		if (tag != BLK_MQ_NO_TAG)
			break;
		sbitmap_prepare_to_wait(bt, ws, &wait);
		tag = __blk_mq_get_tag(data, bt);
		if (tag != BLK_MQ_NO_TAG)
			break;
		trace_block_sleeprq(data->q, data->cmd_flags);
		/*
		 * Requests held in our plug own tags; sleeping on them would
		 * wait forever. The kernel flushes the plug in schedule().
		 */
		blk_flush_plug(blk_current_plug(), true);
		bt_prev = bt;
		sbitmap_wait(&wait);
		sbitmap_finish_wait(bt, ws, &wait);

		data->ctx = blk_mq_get_ctx(data->q);
		data->hctx = blk_mq_map_queue(data->q, data->cmd_flags,
					      data->ctx);
		tags = blk_mq_tags_from_data(data);
		bt = (data->flags & BLK_MQ_REQ_RESERVED) ?
		     &tags->breserved_tags : &tags->bitmap_tags;
		if (bt != bt_prev)
			sbitmap_queue_wake_up(bt_prev, 1);
		ws = sbq_wait_ptr(bt, &bt->wake_index);
	}
	sbitmap_finish_wait(bt, ws, &wait);
	sbq_wait_destroy(&wait);

found_tag:
	/* the hctx lost its CPUs while we waited: caller maps again */
	if (unlikely(hctx_test_bit(BLK_MQ_S_INACTIVE, data->hctx))) {
		blk_mq_put_tag(tags, data->ctx, (unsigned int)tag + tag_offset);
		return BLK_MQ_NO_TAG;
	}
	return tag + (int)tag_offset;
}

/*
 * Up to @nr_tags driver tags in one go (a mask relative to *@offset), for
 * plugged batches. Not for shallow, reserved or shared-tag allocations,
 * which need their per-tag rules.
 */
unsigned long blk_mq_get_tags(struct blk_mq_alloc_data *data, int nr_tags,
			      unsigned int *offset)
{
	struct blk_mq_tags *tags = blk_mq_tags_from_data(data);
	unsigned long ret;

	if (data->shallow_depth || (data->flags & BLK_MQ_REQ_RESERVED) ||
	    (data->hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED))
		return 0;
	ret = __sbitmap_queue_get_batch(&tags->bitmap_tags, nr_tags, offset);
	*offset += tags->nr_reserved_tags;
	return ret;
}

void blk_mq_put_tags(struct blk_mq_tags *tags, int *tag_array, int nr_tags)
{
	sbitmap_queue_clear_batch(&tags->bitmap_tags,
				  (int)tags->nr_reserved_tags, tag_array,
				  nr_tags);
}

void blk_mq_tag_wakeup_all(struct blk_mq_tags *tags)
{
	sbitmap_queue_wake_all(&tags->bitmap_tags);
	sbitmap_queue_wake_all(&tags->breserved_tags);
}

unsigned int blk_mq_tags_busy(struct blk_mq_tags *tags)
{
	return sbitmap_weight(&tags->bitmap_tags.sb) +
	       sbitmap_weight(&tags->breserved_tags.sb);
}

struct bt_iter_data {
	struct blk_mq_tags *tags;
	unsigned int offset;
	bool (*fn)(struct request *, void *);
	void *data;
	struct request_queue *q;	/* NULL: any queue */
	bool static_rqs;
	bool stop;
};

static bool bt_iter(struct sbitmap *sb, unsigned int bitnr, void *data)
{
	struct bt_iter_data *it = data;
	unsigned int tag = bitnr + it->offset;
	struct request *rq;
	bool ret = true;

	if (it->static_rqs)
		rq = it->tags->static_rqs[tag];
	else
		rq = atomic_load_explicit(&it->tags->rqs[tag],
					  memory_order_acquire);
	if (!rq)
		return true;
	/* hold it so it cannot be freed and reused under fn */
	int ref = atomic_load(&rq->ref);

	do {
		if (ref <= 0)
			return true;
	} while (!atomic_compare_exchange_weak(&rq->ref, &ref, ref + 1));
	if (!it->q || rq->q == it->q)
		ret = it->fn(rq, it->data);
	blk_mq_put_rq_ref(rq);
	if (!ret)
		it->stop = true;
	return ret;
}

static void bt_tags_for_each(struct blk_mq_tags *tags,
			     struct bt_iter_data *it)
{
	it->tags = tags;
	if (tags->nr_reserved_tags) {
		it->offset = 0;
		sbitmap_for_each_set(&tags->breserved_tags.sb, bt_iter, it);
	}
	if (it->stop)
		return;
	it->offset = tags->nr_reserved_tags;
	sbitmap_for_each_set(&tags->bitmap_tags.sb, bt_iter, it);
}

/*
 * Call @fn for each request of @q holding a tag: scheduler tags when an
 * elevator is attached (requests still in the scheduler count), else
 * driver tags.
 */
void blk_mq_queue_tag_busy_iter(struct request_queue *q,
				bool (*fn)(struct request *, void *),
				void *data)
{
	struct bt_iter_data it = { .fn = fn, .data = data, .q = q };
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	queue_for_each_hw_ctx(q, hctx, i) {
		struct blk_mq_tags *tags = q->elevator ? hctx->sched_tags :
							 hctx->tags;

		/* a shared map is walked once */
		if (blk_mq_is_shared_tags(hctx->flags) && i > 0 && !q->elevator)
			break;
		if (!tags)
			continue;
		it.static_rqs = q->elevator != NULL;
		bt_tags_for_each(tags, &it);
		if (it.stop)
			break;
	}
}

void blk_mq_tagset_busy_iter(struct blk_mq_tag_set *set,
			     bool (*fn)(struct request *rq, void *data),
			     void *data)
{
	struct bt_iter_data it = { .fn = fn, .data = data };
	unsigned int n = blk_mq_is_shared_tags(set->flags) ? 1 :
			 set->nr_hw_queues;

	for (unsigned int i = 0; i < n && !it.stop; i++) {
		struct blk_mq_tags *tags = blk_mq_is_shared_tags(set->flags) ?
					   set->shared_tags : set->tags[i];

		if (tags)
			bt_tags_for_each(tags, &it);
	}
}

/*
 * Change the depth of a scheduler tag map (nr_requests). Within the
 * allocated size the bitmap is resized; growing past it allocates a new
 * map. Caller froze the queue.
 */
int blk_mq_tag_update_depth(struct blk_mq_hw_ctx *hctx,
			    struct blk_mq_tags **tagsptr, unsigned int tdepth)
{
	struct blk_mq_tags *tags = *tagsptr;
	struct blk_mq_tag_set *set = hctx->queue->tag_set;

	if (tdepth > tags->nr_tags) {
		struct blk_mq_tags *new;

		new = blk_mq_alloc_map_and_rqs(set, hctx->queue_num, tdepth);
		if (!new)
			return -ENOMEM;
		blk_mq_free_map_and_rqs(set, *tagsptr, hctx->queue_num);
		*tagsptr = new;
	} else {
		sbitmap_queue_resize(&tags->bitmap_tags,
				     tdepth - tags->nr_reserved_tags);
	}
	return 0;
}
