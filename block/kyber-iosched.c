// SPDX-License-Identifier: MIT
/*
 * Kyber (the kernel's block/kyber-iosched.c): latency control by
 * throttling how many requests of each kind the device holds.
 *
 * Requests fall into four domains (read, write, discard, other). Each
 * domain has a token pool (an sbitmap_queue) whose depth is how many of its
 * requests may be in the device at once; a request takes a token when it
 * is dispatched and gives it back when it is freed. Completions feed
 * latency histograms (total: from the first bio; io: from dispatch) in
 * buckets of a quarter of the domain's target. A timer about every 100 ms
 * looks at windows of at least 500 samples (or one second): if any
 * domain's p90 io latency misses its target the device is congested, and
 * the domains that meet their targets are throttled in proportion to
 * their p99; a domain that misses its own target gets more depth.
 *
 * Requests wait in per-software-queue lists (kcq, one per ctx of the
 * hctx), where bios merge into them, and move to the hctx's domain list
 * only when a token is there for them. Dispatch takes batches per domain
 * (16 reads, 8 writes, 1 discard, 1 other), round robin.
 *
 * Locks: khd->lock serialises dispatch on an hctx (and the kcq flush);
 * kcq->lock guards one kcq's lists. The timer work owns the window state.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"

enum {
	KYBER_READ,
	KYBER_WRITE,
	KYBER_DISCARD,
	KYBER_OTHER,
	KYBER_NUM_DOMAINS,
};

static const char *const kyber_domain_names[] = {
	[KYBER_READ] = "read",
	[KYBER_WRITE] = "write",
	[KYBER_DISCARD] = "discard",
	[KYBER_OTHER] = "other",
};

/* Async requests may take 75% of the scheduler tags; sync ones all. */
#define KYBER_ASYNC_PERCENT	75

/* The most each domain may have in flight: also where it starts. */
static const unsigned int kyber_depth[] = {
	[KYBER_READ] = 256,
	[KYBER_WRITE] = 128,
	[KYBER_DISCARD] = 64,
	[KYBER_OTHER] = 16,
};

/* Default latency targets; "other" has none and is never measured. */
static const uint64_t kyber_latency_targets[] = {
	[KYBER_READ] = 2 * NSEC_PER_MSEC,
	[KYBER_WRITE] = 10 * NSEC_PER_MSEC,
	[KYBER_DISCARD] = 5 * NSEC_PER_SEC,
};

/* Requests dispatched from a domain before the next gets a turn. */
static const unsigned int kyber_batch_size[] = {
	[KYBER_READ] = 16,
	[KYBER_WRITE] = 8,
	[KYBER_DISCARD] = 1,
	[KYBER_OTHER] = 1,
};

enum {
	KYBER_TOTAL_LATENCY,	/* from the request's start */
	KYBER_IO_LATENCY,	/* from dispatch to the driver */
	KYBER_NUM_LAT_TYPES,
};

static const char *const kyber_latency_type_names[] = { "total", "io" };

/*
 * Buckets are target / 4 wide: the first four meet the target, the last
 * four miss it (the last counts everything from 1.75x up).
 */
#define KYBER_LATENCY_SHIFT	2
#define KYBER_GOOD_BUCKETS	(1 << KYBER_LATENCY_SHIFT)
#define KYBER_LATENCY_BUCKETS	(2 << KYBER_LATENCY_SHIFT)

#define KYBER_TIMER_MS		100
#define KYBER_MIN_SAMPLES	500		/* a window ends at this many */
#define KYBER_MAX_WINDOW_NS	NSEC_PER_SEC	/* or this long after its first */

BUILD_BUG_ON(ARRAY_SIZE(kyber_depth) != KYBER_NUM_DOMAINS);
BUILD_BUG_ON(ARRAY_SIZE(kyber_batch_size) != KYBER_NUM_DOMAINS);
BUILD_BUG_ON(ARRAY_SIZE(kyber_domain_names) != KYBER_NUM_DOMAINS);
BUILD_BUG_ON(ARRAY_SIZE(kyber_latency_targets) != KYBER_OTHER);

/* Samples since the last timer run, per CPU the request was made on. */
struct kyber_cpu_latency {
	_Atomic unsigned int buckets[KYBER_OTHER][KYBER_NUM_LAT_TYPES]
				    [KYBER_LATENCY_BUCKETS];
} ____cacheline_aligned;

/* A software queue's requests waiting for a token, by domain. */
struct kyber_ctx_queue {
	pthread_spinlock_t lock;
	struct list_head rq_list[KYBER_NUM_DOMAINS];
} ____cacheline_aligned;

/* What the debug dump shows of a domain. */
struct kyber_domain_stats {
	_Atomic unsigned long inserted, merged, dispatched, completed;
	_Atomic unsigned long throttled;	/* dispatch found no token */
	_Atomic uint64_t max_wait_ns;		/* queue entry to the driver */
	_Atomic unsigned int depth;		/* the token pool's, now */
	/* the timer's: windows judged, depth changes, last percentiles */
	_Atomic unsigned long windows, scaled_up, scaled_down;
	_Atomic int last_p90, last_p99;		/* bucket, -1 = none yet */
	_Atomic uint64_t hist[KYBER_NUM_LAT_TYPES][KYBER_LATENCY_BUCKETS];
};

struct kyber_queue_data {
	struct request_queue *q;
	/* how many requests of each domain may be in the device */
	struct sbitmap_queue domain_tokens[KYBER_NUM_DOMAINS];
	/* async_depth of the scheduler tags, per sbitmap word */
	unsigned int async_depth;
	_Atomic uint64_t latency_targets[KYBER_OTHER];
	struct kyber_cpu_latency *cpu_latency;		/* [q->nr_cpu_ids] */
	struct delayed_work timer;
	/* the timer is queued: completions need not queue it (a mutex) */
	_Atomic bool timer_armed;
	/* owned by the timer work */
	unsigned int latency_buckets[KYBER_OTHER][KYBER_NUM_LAT_TYPES]
				    [KYBER_LATENCY_BUCKETS];
	uint64_t latency_timeout[KYBER_OTHER];	/* window end, 0 = none */
	int domain_p99[KYBER_OTHER];		/* kept for a congested window */
	struct kyber_domain_stats stats[KYBER_NUM_DOMAINS];
};

struct kyber_hctx_data {
	pthread_spinlock_t lock;
	/* requests holding a token's claim, next to dispatch */
	struct list_head rqs[KYBER_NUM_DOMAINS];
	unsigned int cur_domain;
	unsigned int batching;
	struct kyber_ctx_queue *kcqs;			/* [hctx->nr_ctx] */
	struct sbitmap kcq_map[KYBER_NUM_DOMAINS];	/* kcqs with requests */
	/* run the hctx when a token of the domain frees */
	struct sbq_wait domain_wait[KYBER_NUM_DOMAINS];
	_Atomic int wait_active[KYBER_NUM_DOMAINS];
	_Atomic unsigned int wait_index[KYBER_NUM_DOMAINS];
};

static unsigned int kyber_sched_domain(blk_opf_t opf)
{
	switch (opf & REQ_OP_MASK) {
	case REQ_OP_READ:
		return KYBER_READ;
	case REQ_OP_WRITE:
		return KYBER_WRITE;
	case REQ_OP_DISCARD:
		return KYBER_DISCARD;
	default:
		return KYBER_OTHER;
	}
}

static int rq_get_domain_token(struct request *rq)
{
	return (int)(intptr_t)rq->elv.priv[0];
}

static void rq_set_domain_token(struct request *rq, int token)
{
	rq->elv.priv[0] = (void *)(intptr_t)token;
}

/* ---- latency windows and depth scaling (the timer) ---- */

/* A completion's latency into this CPU's histogram of the domain. */
static void add_latency_sample(struct kyber_cpu_latency *cpu_latency,
			       unsigned int sched_domain, unsigned int type,
			       uint64_t target, uint64_t latency)
{
	uint64_t divisor = max(target >> KYBER_LATENCY_SHIFT, (uint64_t)1);
	uint64_t bucket;

	/*
	 * The kernel's min((latency - 1) / divisor, 7), without a 64-bit
	 * division (~40 cycles, twice per request) for the first and the
	 * last bucket, where a fast device meeting its target and a storm
	 * missing it put most samples (x / 7 is a multiplication).
	 */
	if (latency <= divisor)
		bucket = 0;
	else if ((latency - 1) / (KYBER_LATENCY_BUCKETS - 1) >= divisor)
		bucket = KYBER_LATENCY_BUCKETS - 1;
	else
		bucket = (latency - 1) / divisor;
	atomic_fetch_add_explicit(&cpu_latency->buckets[sched_domain][type]
				  [bucket], 1, memory_order_relaxed);
}

/* Fold every CPU's samples into the window (timer work only). */
static void kyber_flush_latency(struct kyber_queue_data *kqd)
{
	for (unsigned int cpu = 0; cpu < kqd->q->nr_cpu_ids; cpu++) {
		struct kyber_cpu_latency *cl = &kqd->cpu_latency[cpu];

		for (int d = 0; d < KYBER_OTHER; d++) {
			for (int t = 0; t < KYBER_NUM_LAT_TYPES; t++) {
				for (int b = 0; b < KYBER_LATENCY_BUCKETS; b++) {
					unsigned int n = atomic_exchange_explicit(
						&cl->buckets[d][t][b], 0,
						memory_order_relaxed);

					kqd->latency_buckets[d][t][b] += n;
					atomic_fetch_add_explicit(&kqd->stats[d].hist[t][b],
								  n, memory_order_relaxed);
				}
			}
		}
	}
}

/*
 * The bucket holding the @percentile-th sample of the domain's window, or
 * -1 while the window is still open (fewer than 500 samples and less than
 * a second since its first). Judging a window empties it.
 */
static int calculate_percentile(struct kyber_queue_data *kqd,
				unsigned int sched_domain, unsigned int type,
				unsigned int percentile, uint64_t now)
{
	unsigned int *buckets = kqd->latency_buckets[sched_domain][type];
	unsigned int bucket, samples = 0, percentile_samples;

	for (bucket = 0; bucket < KYBER_LATENCY_BUCKETS; bucket++)
		samples += buckets[bucket];
	if (!samples)
		return -1;
	if (!kqd->latency_timeout[sched_domain])
		kqd->latency_timeout[sched_domain] = now + KYBER_MAX_WINDOW_NS;
	if (samples < KYBER_MIN_SAMPLES &&
	    now < kqd->latency_timeout[sched_domain])
		return -1;
	kqd->latency_timeout[sched_domain] = 0;

	percentile_samples = (samples * percentile + 99) / 100;
	for (bucket = 0; bucket < KYBER_LATENCY_BUCKETS - 1; bucket++) {
		if (buckets[bucket] >= percentile_samples)
			break;
		percentile_samples -= buckets[bucket];
	}
	memset(buckets, 0, sizeof(kqd->latency_buckets[sched_domain][type]));
	return (int)bucket;
}

/* Timer work: set a domain's token depth, within 1..its maximum. */
static void kyber_resize_domain(struct kyber_queue_data *kqd,
				unsigned int sched_domain, unsigned int depth)
{
	struct kyber_domain_stats *st = &kqd->stats[sched_domain];
	unsigned int cur = atomic_load(&st->depth);

	depth = clamp(depth, 1U, kyber_depth[sched_domain]);
	if (depth == cur)
		return;
	sbitmap_queue_resize(&kqd->domain_tokens[sched_domain], depth);
	atomic_store(&st->depth, depth);
	atomic_fetch_add_explicit(depth > cur ? &st->scaled_up :
				  &st->scaled_down, 1, memory_order_relaxed);
}

/* Is any domain's p90 io latency over its target (the device congested)? */
static bool kyber_congested(struct kyber_queue_data *kqd, uint64_t now)
{
	bool bad = false;

	for (unsigned int d = 0; d < KYBER_OTHER; d++) {
		int p90 = calculate_percentile(kqd, d, KYBER_IO_LATENCY, 90,
					       now);

		if (p90 < 0)
			continue;
		atomic_store(&kqd->stats[d].last_p90, p90);
		atomic_fetch_add(&kqd->stats[d].windows, 1);
		if (p90 >= KYBER_GOOD_BUCKETS)
			bad = true;
	}
	return bad;
}

/*
 * Scale a domain's depth by its p99 over the target: a p99 at 3/4 of the
 * target leaves 3/4 of the depth, at 2x (or more) doubles it. A domain
 * meeting its target is throttled only while the device is congested;
 * one missing it always gets more room.
 */
static void kyber_adjust_domain(struct kyber_queue_data *kqd,
				unsigned int sched_domain, bool bad,
				uint64_t now)
{
	int p99 = calculate_percentile(kqd, sched_domain,
				       KYBER_TOTAL_LATENCY, 99, now);
	unsigned int depth;

	if (p99 >= 0)
		atomic_store(&kqd->stats[sched_domain].last_p99, p99);
	/*
	 * Domains fill their windows at different rates: remember a p99
	 * for the next congested window; after throttling on it, wait for
	 * a new one.
	 */
	if (bad) {
		if (p99 < 0)
			p99 = kqd->domain_p99[sched_domain];
		kqd->domain_p99[sched_domain] = -1;
	} else if (p99 >= 0) {
		kqd->domain_p99[sched_domain] = p99;
	}
	if (p99 < 0 || (!bad && p99 < KYBER_GOOD_BUCKETS))
		return;
	depth = atomic_load(&kqd->stats[sched_domain].depth);
	kyber_resize_domain(kqd, sched_domain,
			    (depth * (unsigned int)(p99 + 1)) >>
			    KYBER_LATENCY_SHIFT);
}

static void kyber_timer_fn(struct work_struct *work)
{
	struct kyber_queue_data *kqd = container_of(work,
			struct kyber_queue_data, timer.work);
	uint64_t now = ktime_get_ns();
	bool bad;

	/* before the flush: a sample from now on re-arms the timer */
	atomic_store(&kqd->timer_armed, false);
	kyber_flush_latency(kqd);
	bad = kyber_congested(kqd, now);
	for (unsigned int d = 0; d < KYBER_OTHER; d++)
		kyber_adjust_domain(kqd, d, bad, now);
}

/* ---- setup ---- */

static int kyber_init_tokens(struct kyber_queue_data *kqd)
{
	for (int i = 0; i < KYBER_NUM_DOMAINS; i++) {
		int ret = sbitmap_queue_init(&kqd->domain_tokens[i],
					     kyber_depth[i], -1, false);

		if (ret) {
			while (--i >= 0)
				sbitmap_queue_free(&kqd->domain_tokens[i]);
			return ret;
		}
		atomic_init(&kqd->stats[i].depth, kyber_depth[i]);
		atomic_init(&kqd->stats[i].last_p90, -1);
		atomic_init(&kqd->stats[i].last_p99, -1);
	}
	return 0;
}

static int kyber_init_sched(struct request_queue *q, struct elevator_queue *e)
{
	struct kyber_queue_data *kqd = calloc(1, sizeof(*kqd));

	if (!kqd)
		return -ENOMEM;
	kqd->q = q;
	kqd->cpu_latency = aligned_alloc(64, q->nr_cpu_ids *
					 sizeof(*kqd->cpu_latency));
	if (!kqd->cpu_latency)
		goto err_kqd;
	memset(kqd->cpu_latency, 0, q->nr_cpu_ids * sizeof(*kqd->cpu_latency));
	if (kyber_init_tokens(kqd))
		goto err_latency;
	for (int i = 0; i < KYBER_OTHER; i++) {
		atomic_init(&kqd->latency_targets[i], kyber_latency_targets[i]);
		kqd->domain_p99[i] = -1;
	}
	INIT_DELAYED_WORK(&kqd->timer, kyber_timer_fn);
	e->elevator_data = kqd;
	return 0;
err_latency:
	free(kqd->cpu_latency);
err_kqd:
	free(kqd);
	return -ENOMEM;
}

/* The queue is frozen: no request holds a token, none will complete. */
static void kyber_exit_sched(struct elevator_queue *e)
{
	struct kyber_queue_data *kqd = e->elevator_data;

	cancel_delayed_work_sync(&kqd->timer);
	for (int i = 0; i < KYBER_NUM_DOMAINS; i++) {
		WARN_ON(sbitmap_weight(&kqd->domain_tokens[i].sb));
		sbitmap_queue_free(&kqd->domain_tokens[i]);
	}
	free(kqd->cpu_latency);
	free(kqd);
}

static void kyber_ctx_queue_init(struct kyber_ctx_queue *kcq)
{
	pthread_spin_init(&kcq->lock, PTHREAD_PROCESS_PRIVATE);
	for (int i = 0; i < KYBER_NUM_DOMAINS; i++)
		INIT_LIST_HEAD(&kcq->rq_list[i]);
}

/* Async requests may not take the last quarter of each tag word. */
static void kyber_depth_updated(struct blk_mq_hw_ctx *hctx)
{
	struct kyber_queue_data *kqd = hctx->queue->elevator->elevator_data;
	struct blk_mq_tags *tags = hctx->sched_tags;
	unsigned int shift = tags->bitmap_tags.sb.shift;

	WRITE_ONCE(kqd->async_depth,
		   max(1U, (1U << shift) * KYBER_ASYNC_PERCENT / 100U));
	sbitmap_queue_min_shallow_depth(&tags->bitmap_tags,
					READ_ONCE(kqd->async_depth));
}

static bool kyber_domain_wake(struct sbq_wait *wait);

static void kyber_free_hctx_data(struct kyber_hctx_data *khd, int nr_maps)
{
	for (int i = 0; i < nr_maps; i++)
		sbitmap_free(&khd->kcq_map[i]);
	for (int i = 0; i < KYBER_NUM_DOMAINS; i++)
		sbq_wait_destroy(&khd->domain_wait[i]);
	free(khd->kcqs);
	free(khd);
}

static int kyber_init_hctx(struct blk_mq_hw_ctx *hctx, unsigned int hctx_idx)
{
	struct kyber_hctx_data *khd = calloc(1, sizeof(*khd));
	int i;

	if (!khd)
		return -ENOMEM;
	for (i = 0; i < KYBER_NUM_DOMAINS; i++) {
		sbq_wait_init(&khd->domain_wait[i]);
		khd->domain_wait[i].func = kyber_domain_wake;
		khd->domain_wait[i].private = hctx;
	}
	khd->kcqs = aligned_alloc(64, (hctx->nr_ctx ? hctx->nr_ctx : 1) *
				  sizeof(*khd->kcqs));
	if (!khd->kcqs) {
		kyber_free_hctx_data(khd, 0);
		return -ENOMEM;
	}
	for (i = 0; i < hctx->nr_ctx; i++)
		kyber_ctx_queue_init(&khd->kcqs[i]);
	for (i = 0; i < KYBER_NUM_DOMAINS; i++) {
		if (sbitmap_init(&khd->kcq_map[i], hctx->nr_ctx ? hctx->nr_ctx : 1,
				 -1, false)) {
			kyber_free_hctx_data(khd, i);
			return -ENOMEM;
		}
		INIT_LIST_HEAD(&khd->rqs[i]);
	}
	pthread_spin_init(&khd->lock, PTHREAD_PROCESS_PRIVATE);
	hctx->sched_data = khd;
	kyber_depth_updated(hctx);
	return 0;
}

static void kyber_exit_hctx(struct blk_mq_hw_ctx *hctx, unsigned int hctx_idx)
{
	struct kyber_hctx_data *khd = hctx->sched_data;

	for (int i = 0; i < KYBER_NUM_DOMAINS; i++)
		sbitmap_del_wait_queue(&khd->domain_wait[i]);
	pthread_spin_destroy(&khd->lock);
	kyber_free_hctx_data(khd, KYBER_NUM_DOMAINS);
	hctx->sched_data = NULL;
}

/* ---- request life ---- */

static void kyber_limit_depth(blk_opf_t opf, struct blk_mq_alloc_data *data)
{
	struct kyber_queue_data *kqd = data->q->elevator->elevator_data;

	if (!op_is_sync(opf))
		data->shallow_depth = READ_ONCE(kqd->async_depth);
}

static void kyber_prepare_request(struct request *rq)
{
	rq_set_domain_token(rq, -1);
}

/* Freed or requeued: the token goes back to its domain. */
static void kyber_finish_request(struct request *rq)
{
	struct kyber_queue_data *kqd = rq->q->elevator->elevator_data;
	int nr = rq_get_domain_token(rq);

	if (nr == -1)
		return;
	rq_set_domain_token(rq, -1);
	sbitmap_queue_clear(&kqd->domain_tokens[kyber_sched_domain(rq->cmd_flags)],
			    (unsigned int)nr);
}

/* The wait is known without a clock read: both ends are stamped. */
static void kyber_note_wait(struct kyber_domain_stats *st,
			    const struct request *rq)
{
	uint64_t wait = rq->io_start_time_ns > rq->start_time_ns ?
			rq->io_start_time_ns - rq->start_time_ns : 0;
	uint64_t max = atomic_load_explicit(&st->max_wait_ns,
					    memory_order_relaxed);

	while (wait > max &&
	       !atomic_compare_exchange_weak_explicit(&st->max_wait_ns, &max,
						      wait,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static void kyber_completed_request(struct request *rq, uint64_t now)
{
	struct kyber_queue_data *kqd = rq->q->elevator->elevator_data;
	unsigned int sched_domain = kyber_sched_domain(rq->cmd_flags);
	struct kyber_cpu_latency *cl;
	uint64_t target;

	atomic_fetch_add_explicit(&kqd->stats[sched_domain].completed, 1,
				  memory_order_relaxed);
	kyber_note_wait(&kqd->stats[sched_domain], rq);
	if (sched_domain == KYBER_OTHER)
		return;
	cl = &kqd->cpu_latency[(unsigned int)rq->mq_ctx->cpu % kqd->q->nr_cpu_ids];
	target = atomic_load_explicit(&kqd->latency_targets[sched_domain],
				      memory_order_relaxed);
	add_latency_sample(cl, sched_domain, KYBER_TOTAL_LATENCY, target,
			   now > rq->start_time_ns ? now - rq->start_time_ns : 0);
	add_latency_sample(cl, sched_domain, KYBER_IO_LATENCY, target,
			   now > rq->io_start_time_ns ?
			   now - rq->io_start_time_ns : 0);
	/* the kernel's timer_reduce(): a pending run stays as it is */
	if (!atomic_load_explicit(&kqd->timer_armed, memory_order_relaxed) &&
	    !atomic_exchange(&kqd->timer_armed, true))
		kblockd_schedule_delayed_work(&kqd->timer, KYBER_TIMER_MS);
}

/* An unlocked look: a list someone else changes under its lock. */
static bool kyber_list_busy(const struct list_head *head)
{
	return __atomic_load_n(&head->next, __ATOMIC_RELAXED) != head;
}

static struct kyber_ctx_queue *kyber_kcq(struct blk_mq_hw_ctx *hctx,
					 struct blk_mq_ctx *ctx)
{
	struct kyber_hctx_data *khd = hctx->sched_data;

	return &khd->kcqs[ctx->index_hw[hctx->type]];
}

/*
 * Does any kcq hold a request of @sched_domain? When tokens are plenty
 * none does, and a bio need not look up its software queue at all.
 */
static bool kyber_any_waiting(struct request_queue *q,
			      unsigned int sched_domain)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	queue_for_each_hw_ctx(q, hctx, i) {
		struct kyber_hctx_data *khd = hctx->sched_data;

		if (khd && sbitmap_any_bit_set(&khd->kcq_map[sched_domain]))
			return true;
	}
	return false;
}

static bool kyber_bio_merge(struct request_queue *q, struct bio *bio,
			    unsigned int nr_segs)
{
	struct kyber_queue_data *kqd = q->elevator->elevator_data;
	unsigned int sched_domain = kyber_sched_domain(bio->bi_opf);
	struct kyber_ctx_queue *kcq;
	struct blk_mq_hw_ctx *hctx;
	struct blk_mq_ctx *ctx;
	bool merged;

	if (!kyber_any_waiting(q, sched_domain))
		return false;
	ctx = blk_mq_get_ctx(q);
	hctx = blk_mq_map_queue(q, bio->bi_opf, ctx);
	kcq = kyber_kcq(hctx, ctx);
	if (!kyber_list_busy(&kcq->rq_list[sched_domain]))
		return false;
	pthread_spin_lock(&kcq->lock);
	merged = blk_bio_list_merge(q, &kcq->rq_list[sched_domain], bio,
				    nr_segs);
	pthread_spin_unlock(&kcq->lock);
	if (merged)
		atomic_fetch_add_explicit(&kqd->stats[sched_domain].merged, 1,
					  memory_order_relaxed);
	return merged;
}

static void kyber_insert_requests(struct blk_mq_hw_ctx *hctx,
				  struct list_head *rq_list, bool at_head)
{
	struct kyber_queue_data *kqd = hctx->queue->elevator->elevator_data;
	struct kyber_hctx_data *khd = hctx->sched_data;
	struct request *rq, *next;

	/*
	 * The kernel locks the kcq for each request; a run of requests for
	 * the same kcq and domain (a plug's, from one CPU) goes in under one
	 * hold of the lock, with one set_bit.
	 */
	list_for_each_entry_safe(rq, next, rq_list, queuelist) {
		unsigned int sched_domain = kyber_sched_domain(rq->cmd_flags);
		unsigned int idx = rq->mq_ctx->index_hw[hctx->type];
		struct kyber_ctx_queue *kcq = &khd->kcqs[idx];
		struct list_head *head = &kcq->rq_list[sched_domain];
		unsigned long n = 0;

		pthread_spin_lock(&kcq->lock);
		for (;;) {
			if (at_head)
				list_move(&rq->queuelist, head);
			else
				list_move_tail(&rq->queuelist, head);
			n++;
			if (&next->queuelist == rq_list ||
			    next->mq_ctx != rq->mq_ctx ||
			    kyber_sched_domain(next->cmd_flags) != sched_domain)
				break;
			rq = next;
			next = list_next_entry(rq, queuelist);
		}
		sbitmap_set_bit(&khd->kcq_map[sched_domain], idx);
		pthread_spin_unlock(&kcq->lock);
		atomic_fetch_add_explicit(&kqd->stats[sched_domain].inserted, n,
					  memory_order_relaxed);
	}
}

/* ---- dispatch ---- */

struct flush_kcq_data {
	struct kyber_hctx_data *khd;
	unsigned int sched_domain;
	struct list_head *list;
};

static bool flush_busy_kcq(struct sbitmap *sb, unsigned int bitnr, void *data)
{
	struct flush_kcq_data *flush_data = data;
	struct kyber_ctx_queue *kcq = &flush_data->khd->kcqs[bitnr];

	pthread_spin_lock(&kcq->lock);
	list_splice_tail_init(&kcq->rq_list[flush_data->sched_domain],
			      flush_data->list);
	sbitmap_clear_bit(sb, bitnr);
	pthread_spin_unlock(&kcq->lock);
	return true;
}

/* Move every kcq's requests of @sched_domain to @list (khd->lock held). */
static void kyber_flush_busy_kcqs(struct kyber_hctx_data *khd,
				  unsigned int sched_domain,
				  struct list_head *list)
{
	struct flush_kcq_data data = {
		.khd = khd,
		.sched_domain = sched_domain,
		.list = list,
	};

	sbitmap_for_each_set(&khd->kcq_map[sched_domain], flush_busy_kcq,
			     &data);
}

/* A token of the domain freed: run the hctx that waited for one. */
static bool kyber_domain_wake(struct sbq_wait *wait)
{
	struct blk_mq_hw_ctx *hctx = wait->private;
	struct kyber_hctx_data *khd = hctx->sched_data;

	for (int i = 0; i < KYBER_NUM_DOMAINS; i++)
		if (&khd->domain_wait[i] == wait)
			atomic_store(&khd->wait_active[i], 0);
	blk_mq_run_hw_queue(hctx, true);
	return true;
}

/*
 * A token of the current domain, or -1; then the hctx runs again when one
 * frees (khd->lock held, which serialises adding the waiter).
 */
static int kyber_get_domain_token(struct kyber_queue_data *kqd,
				  struct kyber_hctx_data *khd,
				  struct blk_mq_hw_ctx *hctx)
{
	unsigned int sched_domain = khd->cur_domain;
	struct sbitmap_queue *domain_tokens = &kqd->domain_tokens[sched_domain];
	struct sbq_wait *wait = &khd->domain_wait[sched_domain];
	int nr = __sbitmap_queue_get(domain_tokens);

	if (nr < 0 && !atomic_load(&khd->wait_active[sched_domain])) {
		atomic_store(&khd->wait_active[sched_domain], 1);
		sbitmap_add_wait_queue(domain_tokens,
				       sbq_wait_ptr(domain_tokens,
						    &khd->wait_index[sched_domain]),
				       wait);
		/* a token may have freed before we were on the wait queue */
		nr = __sbitmap_queue_get(domain_tokens);
		if (nr >= 0) {
			sbitmap_del_wait_queue(wait);
			atomic_store(&khd->wait_active[sched_domain], 0);
		}
	}
	return nr;
}

static struct request *kyber_take(struct kyber_queue_data *kqd,
				  struct kyber_hctx_data *khd,
				  struct list_head *rqs, int nr)
{
	struct request *rq = list_first_entry(rqs, struct request, queuelist);

	khd->batching++;
	rq_set_domain_token(rq, nr);
	list_del_init(&rq->queuelist);
	atomic_fetch_add_explicit(&kqd->stats[khd->cur_domain].dispatched, 1,
				  memory_order_relaxed);
	return rq;
}

/*
 * A request of the current domain if it has one and a token for it. The
 * kcqs are emptied only when a token is there, so that requests stay
 * where bios can still merge into them.
 */
static struct request *kyber_dispatch_cur_domain(struct kyber_queue_data *kqd,
						 struct kyber_hctx_data *khd,
						 struct blk_mq_hw_ctx *hctx)
{
	struct list_head *rqs = &khd->rqs[khd->cur_domain];
	bool pending = !list_empty(rqs);
	int nr;

	if (!pending && !sbitmap_any_bit_set(&khd->kcq_map[khd->cur_domain]))
		return NULL;
	nr = kyber_get_domain_token(kqd, khd, hctx);
	if (nr < 0) {
		atomic_fetch_add_explicit(&kqd->stats[khd->cur_domain].throttled,
					  1, memory_order_relaxed);
		return NULL;
	}
	if (!pending)
		kyber_flush_busy_kcqs(khd, khd->cur_domain, rqs);
	if (list_empty(rqs)) {	/* the kcq requests merged away meanwhile */
		sbitmap_queue_clear(&kqd->domain_tokens[khd->cur_domain],
				    (unsigned int)nr);
		return NULL;
	}
	return kyber_take(kqd, khd, rqs, nr);
}

static struct request *kyber_dispatch_request(struct blk_mq_hw_ctx *hctx)
{
	struct kyber_queue_data *kqd = hctx->queue->elevator->elevator_data;
	struct kyber_hctx_data *khd = hctx->sched_data;
	struct request *rq = NULL;

	pthread_spin_lock(&khd->lock);
	/* go on with the current batch while it lasts */
	if (khd->batching < kyber_batch_size[khd->cur_domain]) {
		rq = kyber_dispatch_cur_domain(kqd, khd, hctx);
		if (rq)
			goto out;
	}
	/*
	 * A new batch from the next domain with requests and a token; this
	 * comes back round to the current one last.
	 */
	khd->batching = 0;
	for (int i = 0; i < KYBER_NUM_DOMAINS; i++) {
		khd->cur_domain = (khd->cur_domain + 1) % KYBER_NUM_DOMAINS;
		rq = kyber_dispatch_cur_domain(kqd, khd, hctx);
		if (rq)
			break;
	}
out:
	pthread_spin_unlock(&khd->lock);
	return rq;
}

static bool kyber_has_work(struct blk_mq_hw_ctx *hctx)
{
	struct kyber_hctx_data *khd = hctx->sched_data;

	for (int i = 0; i < KYBER_NUM_DOMAINS; i++) {
		if (kyber_list_busy(&khd->rqs[i]) ||
		    sbitmap_any_bit_set(&khd->kcq_map[i]))
			return true;
	}
	return false;
}

/* ---- attributes (iosched/) ---- */

static ssize_t kyber_lat_show(struct elevator_queue *e, unsigned int domain,
			      char *buf, size_t len)
{
	struct kyber_queue_data *kqd = e->elevator_data;

	return snprintf(buf, len, "%" PRIu64 "\n",
			atomic_load(&kqd->latency_targets[domain]));
}

/* A whole number of nanoseconds, as the kernel's kstrtoull() takes it. */
static ssize_t kyber_lat_store(struct elevator_queue *e, unsigned int domain,
			       const char *name, const char *val)
{
	struct kyber_queue_data *kqd = e->elevator_data;
	unsigned long long nsec;
	char *end;

	errno = 0;
	nsec = strtoull(val, &end, 10);
	if (*end == '\n')
		end++;
	if (end == val || *end || !isdigit((unsigned char)*val) || errno)
		return blk_err(-EINVAL, "iosched/%s '%s': valid values are "
			       "0..%llu (nanoseconds)", name, val,
			       (unsigned long long)UINT64_MAX);
	atomic_store(&kqd->latency_targets[domain], (uint64_t)nsec);
	return 0;
}

#define KYBER_LAT_SHOW_STORE(domain, name)				\
static ssize_t kyber_##name##_lat_show(struct elevator_queue *e,	\
				       char *buf, size_t len)		\
{									\
	return kyber_lat_show(e, domain, buf, len);			\
}									\
static ssize_t kyber_##name##_lat_store(struct elevator_queue *e,	\
					const char *val)		\
{									\
	return kyber_lat_store(e, domain, #name "_lat_nsec", val);	\
}
KYBER_LAT_SHOW_STORE(KYBER_READ, read)
KYBER_LAT_SHOW_STORE(KYBER_WRITE, write)
#undef KYBER_LAT_SHOW_STORE

static const struct elv_fs_entry kyber_sched_attrs[] = {
	{ "read_lat_nsec", kyber_read_lat_show, kyber_read_lat_store },
	{ "write_lat_nsec", kyber_write_lat_show, kyber_write_lat_store },
	{ NULL, NULL, NULL },
};

/* ---- debug dump ---- */

static void kyber_show_domain(struct kyber_queue_data *kqd, unsigned int d,
			      FILE *out)
{
	struct kyber_domain_stats *st = &kqd->stats[d];

	fprintf(out, "  kyber %s: depth=%u max_depth=%u tokens_used=%u "
		"inserted=%lu merged=%lu dispatched=%lu completed=%lu "
		"throttled=%lu", kyber_domain_names[d], atomic_load(&st->depth),
		kyber_depth[d], sbitmap_weight(&kqd->domain_tokens[d].sb),
		atomic_load(&st->inserted), atomic_load(&st->merged),
		atomic_load(&st->dispatched), atomic_load(&st->completed),
		atomic_load(&st->throttled));
	if (d == KYBER_OTHER) {
		fputc('\n', out);
		return;
	}
	fprintf(out, " target_ns=%" PRIu64 " windows=%lu scaled_up=%lu "
		"scaled_down=%lu p90_io=%d p99_total=%d\n",
		atomic_load(&kqd->latency_targets[d]), atomic_load(&st->windows),
		atomic_load(&st->scaled_up), atomic_load(&st->scaled_down),
		atomic_load(&st->last_p90), atomic_load(&st->last_p99));
	for (int t = 0; t < KYBER_NUM_LAT_TYPES; t++) {
		fprintf(out, "  kyber %s %s latency (target/4 buckets):",
			kyber_domain_names[d], kyber_latency_type_names[t]);
		for (int b = 0; b < KYBER_LATENCY_BUCKETS; b++)
			fprintf(out, " %" PRIu64, atomic_load(&st->hist[t][b]));
		fputc('\n', out);
	}
}

static void kyber_show(struct elevator_queue *e, FILE *out)
{
	struct kyber_queue_data *kqd = e->elevator_data;
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	fprintf(out, "  kyber: async_depth=%u (per tag word)\n",
		READ_ONCE(kqd->async_depth));
	for (unsigned int d = 0; d < KYBER_NUM_DOMAINS; d++)
		kyber_show_domain(kqd, d, out);
	queue_for_each_hw_ctx(kqd->q, hctx, i) {
		struct kyber_hctx_data *khd = hctx->sched_data;

		if (!khd)
			continue;
		pthread_spin_lock(&khd->lock);
		fprintf(out, "  kyber hctx%u: cur_domain=%s batching=%u\n", i,
			kyber_domain_names[khd->cur_domain], khd->batching);
		pthread_spin_unlock(&khd->lock);
	}
}

static int kyber_class_stats(struct elevator_queue *e,
			     struct elv_class_stats *st)
{
	struct kyber_queue_data *kqd = e->elevator_data;

	for (unsigned int d = 0; d < KYBER_NUM_DOMAINS; d++) {
		struct kyber_domain_stats *ks = &kqd->stats[d];

		st[d] = (struct elv_class_stats){
			.name = kyber_domain_names[d],
			.has = ELV_STAT_STARVED,
			.dispatched = atomic_load(&ks->dispatched),
			.merged = atomic_load(&ks->merged),
			.starved = atomic_load(&ks->throttled),
			.max_wait_ns = atomic_load(&ks->max_wait_ns),
		};
	}
	return KYBER_NUM_DOMAINS;
}

struct elevator_type kyber_sched = {
	.elevator_name = "kyber",
	.ops = {
		.init_sched		= kyber_init_sched,
		.exit_sched		= kyber_exit_sched,
		.init_hctx		= kyber_init_hctx,
		.exit_hctx		= kyber_exit_hctx,
		.depth_updated		= kyber_depth_updated,
		.limit_depth		= kyber_limit_depth,
		.bio_merge		= kyber_bio_merge,
		.prepare_request	= kyber_prepare_request,
		.finish_request		= kyber_finish_request,
		.requeue_request	= kyber_finish_request,
		.completed_request	= kyber_completed_request,
		.insert_requests	= kyber_insert_requests,
		.dispatch_request	= kyber_dispatch_request,
		.has_work		= kyber_has_work,
		.show			= kyber_show,
		.class_stats		= kyber_class_stats,
	},
	.elevator_attrs = kyber_sched_attrs,
};
