// SPDX-License-Identifier: MIT
/*
 * Setting up and tearing down blk-mq (the setup half of the kernel's
 * block/blk-mq.c): tag sets, per-CPU software queues, hardware queues,
 * the software -> hardware queue map, tag sharing between the queues of a
 * set, and changing the number of hardware queues while I/O runs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"

#define BLK_MQ_MAX_DEPTH	10240
#define BLK_MQ_TAG_MIN		1

/* ---- tag sets ---- */

static int blk_mq_alloc_maps(struct blk_mq_tag_set *set)
{
	for (unsigned int i = 0; i < HCTX_MAX_TYPES; i++) {
		set->map[i].nr_cpu_ids = set->nr_cpu_ids;
		set->map[i].mq_map = calloc(set->nr_cpu_ids, sizeof(unsigned int));
		if (!set->map[i].mq_map)
			return -ENOMEM;
	}
	return 0;
}

static void blk_mq_free_maps(struct blk_mq_tag_set *set)
{
	for (unsigned int i = 0; i < HCTX_MAX_TYPES; i++) {
		free(set->map[i].mq_map);
		set->map[i].mq_map = NULL;
	}
}

/* Let the driver build its maps, or spread every map the default way. */
static void blk_mq_update_queue_map(struct blk_mq_tag_set *set)
{
	if (set->nr_maps == 1)
		set->map[HCTX_TYPE_DEFAULT].nr_queues = set->nr_hw_queues;
	if (set->ops->map_queues) {
		for (unsigned int i = 0; i < set->nr_maps; i++)
			memset(set->map[i].mq_map, 0,
			       set->nr_cpu_ids * sizeof(unsigned int));
		set->ops->map_queues(set);
		return;
	}
	for (unsigned int i = 0; i < set->nr_maps; i++)
		if (set->map[i].nr_queues)
			blk_mq_map_queues(&set->map[i]);
}

static struct blk_mq_tags *set_tags_for(struct blk_mq_tag_set *set,
					unsigned int idx)
{
	if (blk_mq_is_shared_tags(set->flags))
		return set->shared_tags;
	return blk_mq_alloc_map_and_rqs(set, idx, set->queue_depth);
}

static void blk_mq_free_set_tags(struct blk_mq_tag_set *set,
				 unsigned int from, unsigned int to)
{
	for (unsigned int i = from; i < to; i++) {
		if (!blk_mq_is_shared_tags(set->flags))
			blk_mq_free_map_and_rqs(set, set->tags[i], i);
		set->tags[i] = NULL;
	}
}

static int blk_mq_alloc_set_tags(struct blk_mq_tag_set *set,
				 unsigned int from, unsigned int to)
{
	for (unsigned int i = from; i < to; i++) {
		set->tags[i] = set_tags_for(set, i);
		if (!set->tags[i]) {
			blk_mq_free_set_tags(set, from, i);
			return -ENOMEM;
		}
	}
	return 0;
}

static int blk_mq_validate_tag_set(struct blk_mq_tag_set *set)
{
	if (!set->ops || !set->ops->queue_rq)
		return blk_err(-EINVAL, "tag set: ops->queue_rq is required");
	if (!set->nr_hw_queues)
		return blk_err(-EINVAL,
			       "tag set: nr_hw_queues 0: must be at least 1");
	if (!set->queue_depth || set->queue_depth > BLK_MQ_MAX_DEPTH)
		return blk_err(-EINVAL,
			       "tag set: queue_depth %u: valid range is 1..%u",
			       set->queue_depth, BLK_MQ_MAX_DEPTH);
	if (set->queue_depth < set->reserved_tags + BLK_MQ_TAG_MIN)
		return blk_err(-EINVAL,
			       "tag set: reserved_tags %u leaves no normal tag "
			       "of queue_depth %u", set->reserved_tags,
			       set->queue_depth);
	if (set->nr_maps > HCTX_MAX_TYPES)
		return blk_err(-EINVAL, "tag set: nr_maps %u: valid range 1..%d",
			       set->nr_maps, HCTX_MAX_TYPES);
	return 0;
}

int blk_mq_alloc_tag_set(struct blk_mq_tag_set *set)
{
	struct cpu_topology *topo;
	int ret;

	ret = blk_mq_validate_tag_set(set);
	if (ret)
		return ret;
	if (!set->nr_maps)
		set->nr_maps = 1;
	if (!set->timeout)
		set->timeout = 30000;
	topo = malloc(sizeof(*topo));
	if (!topo)
		return -ENOMEM;
	blk_cpu_topology_get(topo);
	set->nr_cpu_ids = topo->nr_cpu_ids;
	free(topo);
	/* more queues than CPUs would leave some without a CPU forever */
	if (set->nr_maps == 1 && set->nr_hw_queues > set->nr_cpu_ids)
		set->nr_hw_queues = set->nr_cpu_ids;

	pthread_mutex_init(&set->tag_list_lock, NULL);
	INIT_LIST_HEAD(&set->tag_list);
	set->nr_queues_using = 0;
	ret = blk_mq_alloc_maps(set);
	if (ret)
		goto out_maps;
	blk_mq_update_queue_map(set);

	ret = -ENOMEM;
	set->tags = calloc(set->nr_hw_queues, sizeof(*set->tags));
	if (!set->tags)
		goto out_maps;
	if (blk_mq_is_shared_tags(set->flags)) {
		set->shared_tags = blk_mq_alloc_map_and_rqs(set, 0,
							    set->queue_depth);
		if (!set->shared_tags)
			goto out_tags;
	}
	if (blk_mq_alloc_set_tags(set, 0, set->nr_hw_queues))
		goto out_shared;
	return 0;

out_shared:
	blk_mq_free_map_and_rqs(set, set->shared_tags, 0);
	set->shared_tags = NULL;
out_tags:
	free(set->tags);
	set->tags = NULL;
out_maps:
	blk_mq_free_maps(set);
	pthread_mutex_destroy(&set->tag_list_lock);
	return ret ? ret : -ENOMEM;
}

void blk_mq_free_tag_set(struct blk_mq_tag_set *set)
{
	WARN_ON(!list_empty(&set->tag_list));
	blk_mq_free_set_tags(set, 0, set->nr_hw_queues);
	blk_mq_free_map_and_rqs(set, set->shared_tags, 0);
	set->shared_tags = NULL;
	free(set->tags);
	set->tags = NULL;
	blk_mq_free_maps(set);
	pthread_mutex_destroy(&set->tag_list_lock);
}

/* ---- hardware queues ---- */

static struct blk_mq_hw_ctx *blk_mq_alloc_hctx(struct request_queue *q,
					       struct blk_mq_tag_set *set,
					       unsigned int idx)
{
	struct blk_mq_hw_ctx *hctx;

	hctx = aligned_alloc(SMP_CACHE_BYTES,
			     ALIGN_UP(sizeof(*hctx), (size_t)SMP_CACHE_BYTES));
	if (!hctx)
		return NULL;
	memset(hctx, 0, sizeof(*hctx));
	pthread_spin_init(&hctx->lock, PTHREAD_PROCESS_PRIVATE);
	INIT_LIST_HEAD(&hctx->dispatch);
	INIT_DELAYED_WORK(&hctx->run_work, blk_mq_run_work_fn);
	INIT_LIST_HEAD(&hctx->hctx_list);
	hctx->flags = set->flags;
	hctx->queue = q;
	hctx->queue_num = idx;
	hctx->tags = set->tags[idx];
	sbq_wait_init(&hctx->dispatch_wait);
	hctx->ctxs = calloc(q->nr_cpu_ids, sizeof(*hctx->ctxs));
	if (!hctx->ctxs)
		goto free_hctx;
	/* 8 ctxs per word, as the kernel: few CPUs share a cache line */
	if (sbitmap_init(&hctx->ctx_map, q->nr_cpu_ids, 3, false))
		goto free_ctxs;
	if (set->ops->init_hctx &&
	    set->ops->init_hctx(hctx, set->driver_data, idx))
		goto free_bitmap;
	return hctx;

free_bitmap:
	sbitmap_free(&hctx->ctx_map);
free_ctxs:
	free(hctx->ctxs);
free_hctx:
	sbq_wait_destroy(&hctx->dispatch_wait);
	pthread_spin_destroy(&hctx->lock);
	free(hctx);
	return NULL;
}

/* Take @hctx out of service: no run pending, the driver's part undone. */
static void blk_mq_shutdown_hctx(struct blk_mq_tag_set *set,
				 struct blk_mq_hw_ctx *hctx, unsigned int idx)
{
	cancel_delayed_work_sync(&hctx->run_work);
	sbitmap_del_wait_queue(&hctx->dispatch_wait);
	WARN_ON(!list_empty(&hctx->dispatch));
	if (set->ops->exit_hctx)
		set->ops->exit_hctx(hctx, idx);
}

static void blk_mq_free_hctx(struct blk_mq_hw_ctx *hctx)
{
	/* a late kick may have queued a run of a parked hctx */
	cancel_delayed_work_sync(&hctx->run_work);
	sbitmap_free(&hctx->ctx_map);
	free(hctx->ctxs);
	sbq_wait_destroy(&hctx->dispatch_wait);
	pthread_spin_destroy(&hctx->lock);
	free(hctx);
}

static void blk_mq_exit_hctx(struct request_queue *q,
			     struct blk_mq_tag_set *set,
			     struct blk_mq_hw_ctx *hctx, unsigned int idx)
{
	blk_mq_shutdown_hctx(set, hctx, idx);
	blk_mq_free_hctx(hctx);
}

/*
 * An hctx that an nr_hw_queues update takes away is parked, not freed (the
 * kernel's unused_hctx_list): a submitter that handed its queue reference
 * to a request still kicks rq->mq_hctx after inserting it, and by then
 * the request may have completed and the update gone ahead. A parked
 * hctx is STOPPED, so such a late kick does nothing; it is reused when
 * the queue grows and freed with the queue.
 */
static void blk_mq_park_hctx(struct request_queue *q,
			     struct blk_mq_tag_set *set,
			     struct blk_mq_hw_ctx *hctx, unsigned int idx)
{
	hctx_set_bit(BLK_MQ_S_STOPPED, hctx);
	hctx_set_bit(BLK_MQ_S_INACTIVE, hctx);
	blk_mq_shutdown_hctx(set, hctx, idx);
	hctx->driver_data = NULL;
	hctx->tags = NULL;
	list_add(&hctx->hctx_list, &q->unused_hctx_list);
}

/* A parked hctx back in service as number @idx; NULL if none (or -ENOMEM). */
static struct blk_mq_hw_ctx *blk_mq_unpark_hctx(struct request_queue *q,
						struct blk_mq_tag_set *set,
						unsigned int idx)
{
	struct blk_mq_hw_ctx *hctx;

	hctx = list_first_entry_or_null(&q->unused_hctx_list,
					struct blk_mq_hw_ctx, hctx_list);
	if (!hctx)
		return NULL;
	hctx->flags = set->flags;
	hctx->queue_num = idx;
	hctx->tags = set->tags[idx];
	atomic_store(&hctx->dispatch_busy, 0);
	if (set->ops->init_hctx &&
	    set->ops->init_hctx(hctx, set->driver_data, idx))
		return NULL;
	list_del_init(&hctx->hctx_list);
	hctx_clear_bit(BLK_MQ_S_STOPPED, hctx);
	return hctx;
}

/*
 * Make q->queue_hw_ctx match set->nr_hw_queues: keep the hctxs that stay,
 * add new ones, remove the rest. Caller froze the queue (or it is new).
 * On failure the old array stays and -ENOMEM is returned.
 */
static int blk_mq_realloc_hw_ctxs_checked(struct blk_mq_tag_set *set,
					  struct request_queue *q)
{
	unsigned int old_nr = q->nr_hw_queues, new_nr = set->nr_hw_queues;
	struct blk_mq_hw_ctx **hctxs;
	unsigned int i;

	hctxs = calloc(new_nr, sizeof(*hctxs));
	if (!hctxs)
		return -ENOMEM;
	for (i = 0; i < new_nr; i++) {
		if (i < old_nr) {
			hctxs[i] = q->queue_hw_ctx[i];
			hctxs[i]->tags = set->tags[i];
			continue;
		}
		hctxs[i] = blk_mq_unpark_hctx(q, set, i);
		if (!hctxs[i])
			hctxs[i] = blk_mq_alloc_hctx(q, set, i);
		if (!hctxs[i])
			goto fail;
	}
	for (i = new_nr; i < old_nr; i++)
		blk_mq_park_hctx(q, set, q->queue_hw_ctx[i], i);
	free(q->queue_hw_ctx);
	q->queue_hw_ctx = hctxs;
	q->nr_hw_queues = new_nr;
	return 0;

fail:
	for (unsigned int j = old_nr; j < i; j++)
		blk_mq_park_hctx(q, set, hctxs[j], j);
	free(hctxs);
	return -ENOMEM;
}

void blk_mq_realloc_hw_ctxs(struct blk_mq_tag_set *set,
			    struct request_queue *q)
{
	if (blk_mq_realloc_hw_ctxs_checked(set, q))
		pr_err("blk-mq: cannot allocate hardware queues");
}

/*
 * Rebuild which ctxs feed which hctx, for every possible CPU (seed 003:
 * mapping only present CPUs left index_hw stale and the pending bitmap
 * wrong). An hctx no CPU maps to is marked inactive, but keeps its tags,
 * so a stale lookup can never find NULL tags.
 */
void blk_mq_map_swqueue(struct request_queue *q)
{
	struct blk_mq_tag_set *set = q->tag_set;
	struct blk_mq_hw_ctx *hctx;
	unsigned int i, j;

	queue_for_each_hw_ctx(q, hctx, i) {
		cpumask_clear(&hctx->cpumask);
		hctx->nr_ctx = 0;
		hctx->dispatch_from = 0;
	}
	for (i = 0; i < q->nr_cpu_ids; i++) {
		struct blk_mq_ctx *ctx = &q->queue_ctx[i];

		for (j = 0; j < set->nr_maps; j++) {
			unsigned int hctx_idx;

			if (!set->map[j].nr_queues) {
				ctx->hctxs[j] = ctx->hctxs[HCTX_TYPE_DEFAULT];
				continue;
			}
			hctx_idx = set->map[j].mq_map[i];
			if (WARN_ON_ONCE(hctx_idx >= q->nr_hw_queues))
				hctx_idx = 0;
			hctx = q->queue_hw_ctx[hctx_idx];
			ctx->hctxs[j] = hctx;
			/* same hctx in two maps: one ctx slot */
			if (cpumask_test_cpu(i, &hctx->cpumask))
				continue;
			cpumask_set_cpu(i, &hctx->cpumask);
			hctx->type = (unsigned short)j;
			ctx->index_hw[hctx->type] = hctx->nr_ctx;
			hctx->ctxs[hctx->nr_ctx++] = ctx;
		}
		for (; j < HCTX_MAX_TYPES; j++)
			ctx->hctxs[j] = ctx->hctxs[HCTX_TYPE_DEFAULT];
	}
	queue_for_each_hw_ctx(q, hctx, i) {
		if (!hctx->nr_ctx) {
			hctx_set_bit(BLK_MQ_S_INACTIVE, hctx);
			continue;
		}
		hctx_clear_bit(BLK_MQ_S_INACTIVE, hctx);
		hctx->tags = set->tags[i];
		BUG_ON_QUEUE(!hctx->tags, q);
		sbitmap_resize(&hctx->ctx_map, hctx->nr_ctx);
	}
}

/* ---- software queues ---- */

static int blk_mq_alloc_ctxs(struct request_queue *q)
{
	size_t sz = ALIGN_UP(sizeof(struct blk_mq_ctx) * q->nr_cpu_ids,
			     (size_t)SMP_CACHE_BYTES);

	q->queue_ctx = aligned_alloc(SMP_CACHE_BYTES, sz);
	if (!q->queue_ctx)
		return -ENOMEM;
	memset(q->queue_ctx, 0, sz);
	for (unsigned int i = 0; i < q->nr_cpu_ids; i++) {
		struct blk_mq_ctx *ctx = &q->queue_ctx[i];

		pthread_spin_init(&ctx->lock, PTHREAD_PROCESS_PRIVATE);
		for (int t = 0; t < HCTX_MAX_TYPES; t++)
			INIT_LIST_HEAD(&ctx->rq_lists[t]);
		ctx->cpu = i;
		ctx->queue = q;
	}
	return 0;
}

static void blk_mq_free_ctxs(struct request_queue *q)
{
	for (unsigned int i = 0; i < q->nr_cpu_ids; i++)
		pthread_spin_destroy(&q->queue_ctx[i].lock);
	free(q->queue_ctx);
	q->queue_ctx = NULL;
}

/* ---- queues sharing a tag set ---- */

static void queue_set_hctx_shared(struct request_queue *q, bool shared)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	queue_for_each_hw_ctx(q, hctx, i) {
		if (shared)
			hctx->flags |= BLK_MQ_F_TAG_QUEUE_SHARED;
		else
			hctx->flags &= ~BLK_MQ_F_TAG_QUEUE_SHARED;
	}
}

/* Caller holds set->tag_list_lock. */
static void blk_mq_update_tag_set_shared(struct blk_mq_tag_set *set,
					 bool shared)
{
	struct request_queue *q;

	list_for_each_entry(q, &set->tag_list, tag_set_list) {
		blk_mq_freeze_queue(q);
		queue_set_hctx_shared(q, shared);
		blk_mq_unfreeze_queue(q);
	}
}

static void blk_mq_add_queue_tag_set(struct blk_mq_tag_set *set,
				     struct request_queue *q)
{
	pthread_mutex_lock(&set->tag_list_lock);
	/* the second user turns sharing on for the first */
	if (!list_empty(&set->tag_list) &&
	    !(set->flags & BLK_MQ_F_TAG_QUEUE_SHARED)) {
		set->flags |= BLK_MQ_F_TAG_QUEUE_SHARED;
		blk_mq_update_tag_set_shared(set, true);
	}
	if (set->flags & BLK_MQ_F_TAG_QUEUE_SHARED)
		queue_set_hctx_shared(q, true);
	list_add_tail(&q->tag_set_list, &set->tag_list);
	set->nr_queues_using++;
	pthread_mutex_unlock(&set->tag_list_lock);
}

static void blk_mq_del_queue_tag_set(struct request_queue *q)
{
	struct blk_mq_tag_set *set = q->tag_set;

	pthread_mutex_lock(&set->tag_list_lock);
	list_del_init(&q->tag_set_list);
	set->nr_queues_using--;
	if (list_is_singular(&set->tag_list)) {
		set->flags &= ~BLK_MQ_F_TAG_QUEUE_SHARED;
		blk_mq_update_tag_set_shared(set, false);
	}
	pthread_mutex_unlock(&set->tag_list_lock);
}

/* ---- queue init/exit ---- */

int blk_mq_init_allocated_queue(struct blk_mq_tag_set *set,
				struct request_queue *q)
{
	q->mq_ops = set->ops;
	q->tag_set = set;
	q->nr_cpu_ids = set->nr_cpu_ids;
	q->nr_requests = set->queue_depth;
	q->rq_timeout = set->timeout;
	percpu_ref_init(&q->dispatch_counter);
	INIT_LIST_HEAD(&q->unused_hctx_list);
	if (blk_mq_alloc_ctxs(q))
		goto err_ref;
	if (blk_mq_realloc_hw_ctxs_checked(set, q))
		goto err_ctxs;
	q->fq = blk_alloc_flush_queue(set->cmd_size);
	if (!q->fq)
		goto err_hctxs;
	q->fq->flush_rq->q = q;
	if (set->ops->init_request &&
	    set->ops->init_request(set, q->fq->flush_rq, 0))
		goto err_fq;
	if (set->map[HCTX_TYPE_POLL].nr_queues)
		blk_queue_flag_set(QUEUE_FLAG_POLL, q);
	blk_mq_add_queue_tag_set(set, q);
	blk_mq_map_swqueue(q);
	return 0;

err_fq:
	blk_free_flush_queue(q->fq);
	q->fq = NULL;
err_hctxs:
	for (unsigned int i = 0; i < q->nr_hw_queues; i++)
		blk_mq_exit_hctx(q, set, q->queue_hw_ctx[i], i);
	free(q->queue_hw_ctx);
	q->queue_hw_ctx = NULL;
	q->nr_hw_queues = 0;
err_ctxs:
	blk_mq_free_ctxs(q);
err_ref:
	percpu_ref_exit(&q->dispatch_counter);
	q->mq_ops = NULL;
	return blk_err(-ENOMEM, "out of memory setting up queues");
}

void blk_mq_exit_queue(struct request_queue *q)
{
	struct blk_mq_tag_set *set = q->tag_set;
	struct blk_mq_hw_ctx *hctx, *next;

	blk_mq_del_queue_tag_set(q);
	for (unsigned int i = 0; i < q->nr_hw_queues; i++)
		blk_mq_exit_hctx(q, set, q->queue_hw_ctx[i], i);
	list_for_each_entry_safe(hctx, next, &q->unused_hctx_list, hctx_list)
		blk_mq_free_hctx(hctx);
	free(q->queue_hw_ctx);
	q->queue_hw_ctx = NULL;
	q->nr_hw_queues = 0;
	blk_mq_free_ctxs(q);
	if (set->ops->exit_request)
		set->ops->exit_request(set, q->fq->flush_rq, 0);
	blk_free_flush_queue(q->fq);
	q->fq = NULL;
	percpu_ref_exit(&q->dispatch_counter);
}

/* ---- changing the number of hardware queues ---- */

static int __blk_mq_update_nr_hw_queues(struct blk_mq_tag_set *set,
					unsigned int nr_hw_queues)
{
	unsigned int prev_nr = set->nr_hw_queues;
	struct blk_mq_tags **new_tags = NULL;
	struct request_queue *q;
	int ret = 0;

	if (nr_hw_queues > prev_nr) {
		new_tags = realloc(set->tags, nr_hw_queues * sizeof(*new_tags));
		if (!new_tags)
			return -ENOMEM;
		set->tags = new_tags;
		for (unsigned int i = prev_nr; i < nr_hw_queues; i++)
			set->tags[i] = NULL;
		if (blk_mq_alloc_set_tags(set, prev_nr, nr_hw_queues))
			return -ENOMEM;
	}
	set->nr_hw_queues = nr_hw_queues;
	list_for_each_entry(q, &set->tag_list, tag_set_list)
		pthread_rwlock_wrlock(&q->hctx_lock);
	list_for_each_entry(q, &set->tag_list, tag_set_list) {
		if (blk_mq_realloc_hw_ctxs_checked(set, q)) {
			ret = -ENOMEM;
			break;
		}
	}
	if (ret) {
		/* fall back to the old number everywhere */
		set->nr_hw_queues = prev_nr;
		list_for_each_entry(q, &set->tag_list, tag_set_list)
			blk_mq_realloc_hw_ctxs(set, q);
		if (nr_hw_queues > prev_nr)
			blk_mq_free_set_tags(set, prev_nr, nr_hw_queues);
	}
	blk_mq_update_queue_map(set);
	list_for_each_entry(q, &set->tag_list, tag_set_list) {
		queue_set_hctx_shared(q, set->flags & BLK_MQ_F_TAG_QUEUE_SHARED);
		blk_mq_map_swqueue(q);
		pthread_rwlock_unlock(&q->hctx_lock);
	}
	if (!ret && nr_hw_queues < prev_nr)
		blk_mq_free_set_tags(set, nr_hw_queues, prev_nr);
	return ret;
}

int blk_mq_update_nr_hw_queues(struct blk_mq_tag_set *set,
			       unsigned int nr_hw_queues)
{
	struct request_queue *q;
	const char *sched[64];
	unsigned int n = 0;
	int ret;

	if (!nr_hw_queues)
		return blk_err(-EINVAL, "nr_hw_queues 0: must be at least 1");
	if (set->nr_maps == 1 && nr_hw_queues > set->nr_cpu_ids)
		nr_hw_queues = set->nr_cpu_ids;

	pthread_mutex_lock(&set->tag_list_lock);
	list_for_each_entry(q, &set->tag_list, tag_set_list)
		blk_freeze_queue_start(q);
	list_for_each_entry(q, &set->tag_list, tag_set_list)
		blk_mq_freeze_queue_wait(q);
	/*
	 * Frozen means no requests, not no queue runs: a run queued by a
	 * completion may still dispatch (reading q->elevator, ctx_map,
	 * ctxs[]). Quiesce so none overlaps the teardown and remap.
	 */
	list_for_each_entry(q, &set->tag_list, tag_set_list)
		blk_mq_quiesce_queue(q);
	/* schedulers keep per-hctx state: detach them across the change */
	list_for_each_entry(q, &set->tag_list, tag_set_list) {
		sched[n] = q->elevator ? q->elevator->type->elevator_name : NULL;
		if (q->elevator)
			elevator_exit(q);
		if (++n == ARRAY_SIZE(sched))
			break;
	}
	ret = __blk_mq_update_nr_hw_queues(set, nr_hw_queues);
	n = 0;
	list_for_each_entry(q, &set->tag_list, tag_set_list) {
		if (n < ARRAY_SIZE(sched) && sched[n])
			elevator_switch(q, sched[n]);
		n++;
	}
	list_for_each_entry(q, &set->tag_list, tag_set_list) {
		blk_mq_unquiesce_queue(q);
		blk_mq_unfreeze_queue(q);
	}
	pthread_mutex_unlock(&set->tag_list_lock);
	if (ret)
		return blk_err(ret, "cannot change to %u hardware queues: "
			       "out of memory", nr_hw_queues);
	return 0;
}
