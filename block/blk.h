/* SPDX-License-Identifier: MIT */
/*
 * Internal structures and functions of the block core, shared by the
 * files of block/ (the kernel's block/blk.h and blk-mq.h). Drivers see
 * only <blkstack/blk-mq.h>.
 */
#ifndef BLKSTACK_BLOCK_BLK_H
#define BLKSTACK_BLOCK_BLK_H

#include <pthread.h>
#include <blkstack/blk-mq.h>

#include "lib/bug.h"
#include "lib/compiler.h"
#include "lib/cpumask.h"
#include "lib/log.h"
#include "lib/percpu-ref.h"
#include "lib/rbtree.h"
#include "lib/thread-slot.h"
#include "lib/sbitmap.h"
#include "lib/time.h"
#include "lib/workqueue.h"

/* ---- tags (blk-mq-tag.c) ---- */

struct blk_mq_tags {
	unsigned int nr_tags;		/* including reserved */
	unsigned int nr_reserved_tags;
	_Atomic unsigned int active_queues;	/* for fair sharing */
	struct sbitmap_queue bitmap_tags;
	struct sbitmap_queue breserved_tags;
	/* request owning each driver tag right now (NULL when free) */
	struct request *_Atomic *rqs;
	/* preallocated requests, one per tag */
	struct request **static_rqs;
	void *rq_mem;
	size_t rq_size;
	pthread_spinlock_t lock;	/* rqs[] vs. busy iteration */
};

/* ---- software queue: one per CPU (blk-mq.c) ---- */

struct blk_mq_ctx {
	struct {
		pthread_spinlock_t lock;
		struct list_head rq_lists[HCTX_MAX_TYPES];
	} ____cacheline_aligned;
	unsigned int cpu;
	unsigned short index_hw[HCTX_MAX_TYPES];
	struct blk_mq_hw_ctx *hctxs[HCTX_MAX_TYPES];
	struct request_queue *queue;
} ____cacheline_aligned;

/* diskstats, one set per thread slot (summed when read), blk-stat.c */
#define BLK_STAT_SLOTS	THREAD_SLOTS
struct disk_stats {
	_Atomic uint64_t ios[4];
	_Atomic uint64_t merges[4];
	_Atomic uint64_t sectors[4];
	_Atomic uint64_t nsecs[4];
	_Atomic long in_flight[2];
} ____cacheline_aligned;

/* hctx->state bits */
enum {
	BLK_MQ_S_STOPPED,
	BLK_MQ_S_TAG_ACTIVE,
	BLK_MQ_S_SCHED_RESTART,
	BLK_MQ_S_INACTIVE,	/* no CPU maps to it */
};

/* ---- hardware queue (blk-mq.c) ---- */

struct blk_mq_hw_ctx {
	struct {
		pthread_spinlock_t lock;	/* protects ->dispatch */
		struct list_head dispatch;
		/* !list_empty(&dispatch), readable without the lock */
		_Atomic bool dispatch_pending;
		_Atomic unsigned long state;
	} ____cacheline_aligned;
	struct delayed_work run_work;
	struct cpumask cpumask;		/* CPUs whose ctxs feed it */
	unsigned long flags;		/* tag_set->flags */
	void *sched_data;
	struct request_queue *queue;
	void *driver_data;
	struct sbitmap ctx_map;		/* ctxs with pending requests */
	unsigned int dispatch_from;	/* round-robin start in ctxs[] */
	_Atomic unsigned int dispatch_busy;	/* EWMA of "driver was busy" */
	unsigned short type;
	unsigned short nr_ctx;
	struct blk_mq_ctx **ctxs;
	struct sbq_wait dispatch_wait;	/* waiting for a driver tag */
	_Atomic int dispatch_wait_active;
	_Atomic int nr_active;		/* driver tags held, shared sets */
	_Atomic int dispatching;	/* runs in progress (quiesce waits) */
	struct blk_mq_tags *tags;
	struct blk_mq_tags *sched_tags;
	unsigned int queue_num;
	struct list_head hctx_list;	/* on q->unused_hctx_list if parked */
	/* debug counters */
	_Atomic unsigned long queued;
	_Atomic unsigned long run;
	_Atomic unsigned long dispatched[7];	/* log2 buckets of batch size */
	_Atomic unsigned long requeued;
	/* plug lists flushed with this hctx first: per hctx, so that
	 * threads flushing to their own queues share no counter */
	_Atomic unsigned long plug_flushes;
};

/* ---- elevator (elevator.c) ---- */

struct elv_fs_entry {
	const char *name;
	ssize_t (*show)(struct elevator_queue *e, char *buf, size_t len);
	ssize_t (*store)(struct elevator_queue *e, const char *val);
};

enum elv_merge {
	ELEVATOR_NO_MERGE = 0,
	ELEVATOR_FRONT_MERGE = 1,
	ELEVATOR_BACK_MERGE = 2,
	ELEVATOR_DISCARD_MERGE = 3,
};

/*
 * One class of a scheduler as the debug dump shows it. dispatched: handed
 * to the driver; merged: bios and requests merged in the scheduler;
 * expired: served out of order because a deadline (FIFO) passed; starved:
 * times the class was held back (mq-deadline: writes passed over for
 * reads past writes_starved; kyber: no token for the domain); max_wait:
 * the longest a request of the class waited to be dispatched. expired and
 * starved are shown only where the scheduler has the notion (@has).
 */
#define ELV_MAX_CLASSES		4
enum {
	ELV_STAT_EXPIRED	= 1 << 0,
	ELV_STAT_STARVED	= 1 << 1,
};

struct elv_class_stats {
	const char *name;
	unsigned int has;		/* ELV_STAT_* */
	unsigned long dispatched, merged, expired, starved;
	uint64_t max_wait_ns;
};

struct blk_mq_alloc_data;
struct blk_trace;
struct blk_trace_stats;

/*
 * The scheduler ops table (DESIGN.md §5). All optional but
 * insert_requests, dispatch_request and has_work.
 */
struct elevator_mq_ops {
	int (*init_sched)(struct request_queue *q, struct elevator_queue *e);
	void (*exit_sched)(struct elevator_queue *e);
	int (*init_hctx)(struct blk_mq_hw_ctx *hctx, unsigned int idx);
	void (*exit_hctx)(struct blk_mq_hw_ctx *hctx, unsigned int idx);
	void (*depth_updated)(struct blk_mq_hw_ctx *hctx);
	bool (*allow_merge)(struct request_queue *q, struct request *rq,
			    struct bio *bio);
	bool (*bio_merge)(struct request_queue *q, struct bio *bio,
			  unsigned int nr_segs);
	int (*request_merge)(struct request_queue *q, struct request **rq,
			     struct bio *bio);
	void (*request_merged)(struct request_queue *q, struct request *rq,
			       enum elv_merge type);
	void (*requests_merged)(struct request_queue *q, struct request *rq,
				struct request *next);
	void (*limit_depth)(blk_opf_t opf, struct blk_mq_alloc_data *data);
	void (*prepare_request)(struct request *rq);
	void (*finish_request)(struct request *rq);
	void (*insert_requests)(struct blk_mq_hw_ctx *hctx,
				struct list_head *list, bool at_head);
	struct request *(*dispatch_request)(struct blk_mq_hw_ctx *hctx);
	bool (*has_work)(struct blk_mq_hw_ctx *hctx);
	void (*completed_request)(struct request *rq, uint64_t now);
	void (*requeue_request)(struct request *rq);
	struct request *(*former_request)(struct request_queue *q,
					  struct request *rq);
	struct request *(*next_request)(struct request_queue *q,
					struct request *rq);
	/* extra lines for the debug dump */
	void (*show)(struct elevator_queue *e, FILE *out);
	/*
	 * The counters every scheduler keeps per class (its own classes:
	 * mq-deadline's and bfq's I/O priority classes, kyber's domains),
	 * for "debug NAME" and its JSON. Fills up to ELV_MAX_CLASSES of
	 * @st, returns how many.
	 */
	int (*class_stats)(struct elevator_queue *e,
			   struct elv_class_stats *st);
};

struct elevator_type {
	const char *elevator_name;
	const char *elevator_alias;
	struct elevator_mq_ops ops;
	const struct elv_fs_entry *elevator_attrs;	/* NULL-name ended */
	/*
	 * Keeps per-issuer state: its requests hold a reference on their
	 * issuer's io_context (rq->ioc), as the kernel assigns an icq only
	 * to the requests of an elevator with an icq_cache (bfq).
	 */
	bool uses_ioc;
	struct list_head list;
};

#define ELV_HASH_BITS	6

struct elevator_queue {
	const struct elevator_type *type;
	void *elevator_data;
	struct request_queue *queue;
	pthread_mutex_t sysfs_lock;
	/* requests by end sector, for back merges; scheduler's lock held */
	struct list_head hash[1 << ELV_HASH_BITS];
};

/* Hash of requests by end sector (the scheduler calls these under its lock) */
void elv_rqhash_add(struct request_queue *q, struct request *rq);
void elv_rqhash_del(struct request_queue *q, struct request *rq);
void elv_rqhash_reposition(struct request_queue *q, struct request *rq);
struct request *elv_rqhash_find(struct request_queue *q, sector_t offset);

/*
 * Sector-sorted trees of requests (mq-deadline, bfq): the node lives in
 * rq->rb_node; equal sectors go right, so they keep arrival order.
 */
static inline struct rb_node *rq_rb(struct request *rq)
{
	BUILD_BUG_ON(sizeof(struct rb_node) > sizeof(rq->rb_node));
	return (struct rb_node *)rq->rb_node;
}

static inline struct request *rb_to_rq(struct rb_node *node)
{
	return node ? container_of((void *)node, struct request, rb_node) :
		      NULL;
}

void elv_rb_add(struct rb_root *root, struct request *rq);
/* Takes @rq out of @root if it is in a tree; a no-op otherwise. */
void elv_rb_del(struct rb_root *root, struct request *rq);
/* ->former_request / ->next_request for a scheduler keeping such trees. */
struct request *elv_rb_former_request(struct request_queue *q,
				      struct request *rq);
struct request *elv_rb_latter_request(struct request_queue *q,
				      struct request *rq);


/* ---- flush machinery (blk-flush.c) ---- */

struct blk_flush_queue {
	pthread_spinlock_t mq_flush_lock;
	unsigned int flush_pending_idx : 1;
	unsigned int flush_running_idx : 1;
	blk_status_t rq_status;
	uint64_t flush_pending_since;
	struct list_head flush_queue[2];
	unsigned long flush_data_in_flight;
	struct request *flush_rq;
	/* counters for the debug dump and tests */
	_Atomic unsigned long flushes_issued;
	_Atomic unsigned long flush_seqs;
};

/* ---- queue and disk ---- */

/* queue_flags bits */
enum {
	QUEUE_FLAG_DYING,
	QUEUE_FLAG_NOMERGES,	/* nomerges = 2 */
	QUEUE_FLAG_NOXMERGES,	/* nomerges = 1 */
	QUEUE_FLAG_SAME_COMP,
	QUEUE_FLAG_NONROT,
	QUEUE_FLAG_IO_STAT,
	QUEUE_FLAG_POLL,
	QUEUE_FLAG_QUIESCED,
	QUEUE_FLAG_REGISTERED,
	QUEUE_FLAG_STATS,
	QUEUE_FLAG_HCTX_ACTIVE,	/* counted in shared tags' active_queues */
};

struct request_queue {
	/* hot, read-mostly */
	struct elevator_queue *elevator;
	const struct blk_mq_ops *mq_ops;
	struct blk_mq_ctx *queue_ctx;		/* [nr_cpu_ids] */
	unsigned int nr_cpu_ids;
	struct blk_mq_hw_ctx **queue_hw_ctx;	/* [nr_hw_queues] */
	unsigned int nr_hw_queues;
	_Atomic unsigned long queue_flags;
	struct queue_limits limits;
	struct blk_mq_tag_set *tag_set;
	struct list_head tag_set_list;
	void *queuedata;
	struct gendisk *disk;
	unsigned int nr_requests;		/* scheduler depth */
	unsigned int rq_timeout;		/* ms */
	struct request *last_merge;		/* one-hit merge cache */
	struct blk_flush_queue *fq;
	/*
	 * blktrace (block/blktrace.c): NULL unless a trace is set up. Read
	 * by every trace point, so it sits with the read-mostly fields, not
	 * with the counters below that any thread may write.
	 */
	struct blk_trace *_Atomic blk_trace;

	/* freeze and quiesce */
	struct percpu_ref q_usage_counter;
	pthread_mutex_t mq_freeze_lock;
	int mq_freeze_depth;
	_Atomic int quiesce_depth;
	struct percpu_ref dispatch_counter;	/* dispatch sections */

	/* requeue */
	pthread_spinlock_t requeue_lock;
	struct list_head requeue_list;
	struct delayed_work requeue_work;

	/* time-outs */
	struct delayed_work timeout_work;
	_Atomic uint64_t timeout_next_ns;

	/* attribute writes, elevator switch */
	pthread_mutex_t sysfs_lock;
	/*
	 * Held for writing while hctxs are reallocated (frozen queue);
	 * workers that walk hctxs without a usage reference read-lock it.
	 */
	pthread_rwlock_t hctx_lock;
	/* hctxs an nr_hw_queues update took away: parked, freed at exit */
	struct list_head unused_hctx_list;

	/* driver tags held when one tag map serves all hctxs (fair share) */
	_Atomic int nr_active_requests_shared_tags;

	struct blk_trace_stats *blk_trace_last;	/* of the last trace */

	/* per-queue counters, on a line of their own (plug flushes: hctx) */
	struct {
		_Atomic unsigned long nr_timeouts;
		_Atomic unsigned long nr_requeues;
		_Atomic unsigned long nr_splits;
	} ____cacheline_aligned;
};

/* gendisk flags */
#define GD_READ_ONLY	(1U << 0)
#define GD_DEAD		(1U << 1)
#define GD_ADDED	(1U << 2)

struct gendisk {
	char disk_name[32];
	int major;
	int first_minor;
	_Atomic sector_t capacity;
	_Atomic unsigned int flags;
	const struct block_device_operations *fops;	/* bio-based */
	struct request_queue *queue;
	void *private_data;
	_Atomic int refcount;
	const struct blk_driver *driver;
	struct list_head list;		/* all disks, genhd.c */
	/* diskstats (blk-stat.c) */
	struct disk_stats *stats;
	unsigned int nr_stats;
	_Atomic uint64_t stamp_ms;	/* last io_ticks update */
	_Atomic uint64_t io_ticks_ms;
};

/* get_capacity(), inline for the submit checks */
static inline sector_t disk_capacity(const struct gendisk *disk)
{
	return atomic_load_explicit(&disk->capacity, memory_order_relaxed);
}

struct blk_mq_alloc_data {
	struct request_queue *q;
	unsigned int flags;		/* BLK_MQ_REQ_* */
	unsigned int shallow_depth;
	blk_opf_t cmd_flags;
	unsigned int nr_tags;		/* batch allocation from a plug */
	struct request **cached_rq;	/* where the rest of a batch goes */
	struct blk_mq_ctx *ctx;
	struct blk_mq_hw_ctx *hctx;
};

static inline bool blk_queue_flag_test(unsigned int bit,
				       struct request_queue *q)
{
	return atomic_load_explicit(&q->queue_flags, memory_order_relaxed) &
	       (1UL << bit);
}

static inline void blk_queue_flag_set(unsigned int bit,
				      struct request_queue *q)
{
	atomic_fetch_or(&q->queue_flags, 1UL << bit);
}

static inline void blk_queue_flag_clear(unsigned int bit,
					struct request_queue *q)
{
	atomic_fetch_and(&q->queue_flags, ~(1UL << bit));
}

#define blk_queue_nomerges(q)	blk_queue_flag_test(QUEUE_FLAG_NOMERGES, q)
#define blk_queue_noxmerges(q)	blk_queue_flag_test(QUEUE_FLAG_NOXMERGES, q)
#define blk_queue_nonrot(q)	blk_queue_flag_test(QUEUE_FLAG_NONROT, q)
#define blk_queue_io_stat(q)	blk_queue_flag_test(QUEUE_FLAG_IO_STAT, q)
#define blk_queue_dying(q)	blk_queue_flag_test(QUEUE_FLAG_DYING, q)
#define blk_queue_quiesced(q)	blk_queue_flag_test(QUEUE_FLAG_QUIESCED, q)

static inline bool blk_mq_sched_allow_merge(struct request_queue *q,
					    struct request *rq,
					    struct bio *bio)
{
	if (rq->rq_flags & RQF_USE_SCHED) {
		struct elevator_queue *e = q->elevator;

		if (e->type->ops.allow_merge)
			return e->type->ops.allow_merge(q, rq, bio);
	}
	return true;
}

static inline bool queue_is_mq(const struct request_queue *q)
{
	return q->mq_ops != NULL;
}

static inline bool hctx_test_bit(unsigned int bit,
				 const struct blk_mq_hw_ctx *hctx)
{
	return atomic_load_explicit((_Atomic unsigned long *)&hctx->state,
				    memory_order_relaxed) & (1UL << bit);
}

static inline void hctx_set_bit(unsigned int bit, struct blk_mq_hw_ctx *hctx)
{
	atomic_fetch_or(&hctx->state, 1UL << bit);
}

static inline void hctx_clear_bit(unsigned int bit, struct blk_mq_hw_ctx *hctx)
{
	atomic_fetch_and(&hctx->state, ~(1UL << bit));
}

static inline bool hctx_test_and_set_bit(unsigned int bit,
					 struct blk_mq_hw_ctx *hctx)
{
	return atomic_fetch_or(&hctx->state, 1UL << bit) & (1UL << bit);
}

#define queue_for_each_hw_ctx(q, hctx, i)				\
	for ((i) = 0; (i) < (q)->nr_hw_queues &&			\
	     ({ hctx = (q)->queue_hw_ctx[i]; 1; }); (i)++)

#define hctx_for_each_ctx(hctx, ctx, i)					\
	for ((i) = 0; (i) < (hctx)->nr_ctx &&				\
	     ({ ctx = (hctx)->ctxs[(i)]; 1; }); (i)++)

static inline bool blk_mq_is_shared_tags(unsigned int flags)
{
	return flags & BLK_MQ_F_TAG_HCTX_SHARED;
}

/*
 * Where the driver tags an hctx holds on a shared set are counted: per
 * queue when one tag map serves all its hctxs, else per hctx.
 */
static inline _Atomic int *blk_mq_active_counter(struct blk_mq_hw_ctx *hctx)
{
	if (blk_mq_is_shared_tags(hctx->flags))
		return &hctx->queue->nr_active_requests_shared_tags;
	return &hctx->nr_active;
}

/* ---- blk-core.c ---- */
int blk_queue_enter(struct request_queue *q, unsigned int flags);

static inline void blk_queue_exit(struct request_queue *q)
{
	percpu_ref_put(&q->q_usage_counter);
}
bool bio_queue_enter(struct bio *bio);
void blk_freeze_queue_start(struct request_queue *q);
void blk_mq_freeze_queue_wait(struct request_queue *q);
struct request_queue *blk_alloc_queue(void);
void blk_free_queue(struct request_queue *q);
/* The calling thread's plug: the kernel's current->plug (blk-core.c) */
extern _Thread_local struct blk_plug *current_plug
	__attribute__((tls_model("initial-exec")));

static inline struct blk_plug *blk_current_plug(void)
{
	return current_plug;
}

/*
 * The time for stamping requests: cached in the plug while one is active
 * so a batch costs one clock read (the kernel's blk_time_get_ns()).
 */
static inline uint64_t blk_time_get_ns(void)
{
	struct blk_plug *plug = current_plug;

	if (!plug)
		return ktime_get_ns();
	if (!plug->cur_ktime)
		plug->cur_ktime = ktime_get_ns();
	return plug->cur_ktime;
}

/* ---- blk-mq.c ---- */
int blk_mq_init_allocated_queue(struct blk_mq_tag_set *set,
				struct request_queue *q);
void blk_mq_exit_queue(struct request_queue *q);
void blk_mq_submit_bio(struct bio *bio);
struct blk_mq_ctx *blk_mq_get_ctx(struct request_queue *q);

/* The hctx @ctx sends @opf to: polled, read or default (every bio asks). */
static inline struct blk_mq_hw_ctx *blk_mq_map_queue(struct request_queue *q,
						     blk_opf_t opf,
						     struct blk_mq_ctx *ctx)
{
	enum hctx_type type = HCTX_TYPE_DEFAULT;

	if (opf & REQ_POLLED)
		type = HCTX_TYPE_POLL;
	else if ((opf & REQ_OP_MASK) == REQ_OP_READ)
		type = HCTX_TYPE_READ;
	return ctx->hctxs[type];
}
void blk_mq_flush_plug_list(struct blk_plug *plug, bool from_schedule);
void blk_mq_insert_request(struct request *rq, bool at_head, bool run,
			   bool async);
void blk_mq_request_bypass_insert(struct request *rq, bool at_head,
				  bool run);
bool blk_mq_dispatch_rq_list(struct blk_mq_hw_ctx *hctx,
			     struct list_head *list, unsigned int nr_budgets);
void blk_mq_flush_busy_ctxs(struct blk_mq_hw_ctx *hctx,
			    struct list_head *list);
struct request *blk_mq_dequeue_from_ctx(struct blk_mq_hw_ctx *hctx,
					struct blk_mq_ctx *start);
bool blk_mq_hctx_has_pending(struct blk_mq_hw_ctx *hctx);
void blk_mq_sched_restart(struct blk_mq_hw_ctx *hctx);
void blk_mq_sched_mark_restart_hctx(struct blk_mq_hw_ctx *hctx);
bool __blk_mq_get_driver_tag(struct blk_mq_hw_ctx *hctx, struct request *rq);
bool blk_mq_get_driver_tag(struct request *rq);
void blk_mq_put_driver_tag(struct request *rq);
void blk_mq_free_cached_rqs(struct blk_plug *plug);
void blk_mq_start_request_time(struct request *rq);
bool blk_mq_hctx_stopped(struct blk_mq_hw_ctx *hctx);
void blk_mq_wait_quiesce_done(struct request_queue *q);
void blk_mq_timeout_work(struct work_struct *work);
void blk_mq_requeue_work(struct work_struct *work);
void blk_mq_run_work_fn(struct work_struct *work);
void blk_mq_realloc_hw_ctxs(struct blk_mq_tag_set *set,
			    struct request_queue *q);
void blk_mq_map_swqueue(struct request_queue *q);
void blk_mq_put_rq_ref(struct request *rq);
int blk_mq_poll_hctx(struct blk_mq_hw_ctx *hctx);

/*
 * The dispatch list is peeked at without its lock on hot paths (the
 * kernel's list_empty_careful()); the peek reads a flag kept in step
 * under the lock, so the unlocked read is a proper atomic one.
 */
static inline bool hctx_dispatch_busy_list(struct blk_mq_hw_ctx *hctx)
{
	return atomic_load_explicit(&hctx->dispatch_pending,
				    memory_order_acquire);
}

/* Caller holds hctx->lock, after changing ->dispatch. */
static inline void __hctx_dispatch_update(struct blk_mq_hw_ctx *hctx)
{
	atomic_store_explicit(&hctx->dispatch_pending,
			      !list_empty(&hctx->dispatch),
			      memory_order_release);
}

static inline bool blk_mq_sched_needs_restart(struct blk_mq_hw_ctx *hctx)
{
	return hctx_test_bit(BLK_MQ_S_SCHED_RESTART, hctx);
}

/* ---- blk-mq-tag.c ---- */
struct blk_mq_tags *blk_mq_init_tags(unsigned int nr_tags,
				     unsigned int reserved, bool round_robin);
void blk_mq_free_tags(struct blk_mq_tags *tags);
int blk_mq_alloc_rqs(struct blk_mq_tag_set *set, struct blk_mq_tags *tags,
		     unsigned int hctx_idx);
void blk_mq_free_rqs(struct blk_mq_tag_set *set, struct blk_mq_tags *tags,
		     unsigned int hctx_idx);
int blk_mq_get_tag(struct blk_mq_alloc_data *data);
void blk_mq_put_tags(struct blk_mq_tags *tags, int *tag_array, int nr_tags);
unsigned long blk_mq_get_tags(struct blk_mq_alloc_data *data, int nr_tags,
			      unsigned int *offset);
bool hctx_may_queue(struct blk_mq_hw_ctx *hctx, struct sbitmap_queue *bt);
void __blk_mq_tag_busy(struct blk_mq_hw_ctx *hctx);
void __blk_mq_tag_idle(struct blk_mq_hw_ctx *hctx);
unsigned int blk_mq_tags_busy(struct blk_mq_tags *tags);
void blk_mq_tag_wakeup_all(struct blk_mq_tags *tags);
void blk_mq_queue_tag_busy_iter(struct request_queue *q,
				bool (*fn)(struct request *, void *),
				void *data);
struct blk_mq_tags *blk_mq_alloc_map_and_rqs(struct blk_mq_tag_set *set,
					     unsigned int hctx_idx,
					     unsigned int depth);
void blk_mq_free_map_and_rqs(struct blk_mq_tag_set *set,
			     struct blk_mq_tags *tags, unsigned int hctx_idx);
int blk_mq_tag_update_depth(struct blk_mq_hw_ctx *hctx,
			    struct blk_mq_tags **tags, unsigned int depth);

static inline void blk_mq_tag_busy(struct blk_mq_hw_ctx *hctx)
{
	if (hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED)
		__blk_mq_tag_busy(hctx);
}

static inline bool blk_mq_tag_is_reserved(struct blk_mq_tags *tags,
					  unsigned int tag)
{
	return tag < tags->nr_reserved_tags;
}

/* Every request gives its tag back here: inline. */
static inline void blk_mq_put_tag(struct blk_mq_tags *tags,
				  struct blk_mq_ctx *ctx, unsigned int tag)
{
	if (!blk_mq_tag_is_reserved(tags, tag)) {
		BUG_ON(tag >= tags->nr_tags);
		sbitmap_queue_clear(&tags->bitmap_tags,
				    tag - tags->nr_reserved_tags);
	} else {
		sbitmap_queue_clear(&tags->breserved_tags, tag);
	}
}

/* ---- blk-mq-sched.c ---- */
void blk_mq_sched_dispatch_requests(struct blk_mq_hw_ctx *hctx);
bool blk_mq_sched_bio_merge(struct request_queue *q, struct bio *bio,
			    unsigned int nr_segs, struct blk_mq_ctx *ctx);
bool blk_mq_sched_try_merge(struct request_queue *q, struct bio *bio,
			    unsigned int nr_segs, struct request **merged);
bool blk_mq_sched_try_insert_merge(struct request_queue *q,
				   struct request *rq, struct list_head *free);
bool blk_bio_list_merge(struct request_queue *q, struct list_head *list,
			struct bio *bio, unsigned int nr_segs);
int blk_mq_init_sched(struct request_queue *q, const struct elevator_type *e);
void blk_mq_exit_sched(struct request_queue *q, struct elevator_queue *e);
void blk_mq_sched_free_rqs(struct request_queue *q);

/* ---- elevator.c ---- */
const struct elevator_type *elevator_find(const char *name);
int elevator_switch(struct request_queue *q, const char *name);
ssize_t elv_iosched_show(struct request_queue *q, char *buf, size_t len);
int elevator_init_mq(struct request_queue *q);
void elevator_exit(struct request_queue *q);
enum elv_merge elv_merge(struct request_queue *q, struct request **req,
			 struct bio *bio);
void elv_merged_request(struct request_queue *q, struct request *rq,
			enum elv_merge type);
void elv_merge_requests(struct request_queue *q, struct request *rq,
			struct request *next);
struct request *elv_former_request(struct request_queue *q,
				   struct request *rq);
struct request *elv_latter_request(struct request_queue *q,
				   struct request *rq);
bool elv_attempt_insert_merge(struct request_queue *q, struct request *rq,
			      struct list_head *free);
int elv_register(struct elevator_type *e);
void elv_unregister(struct elevator_type *e);
ssize_t elv_attr_show(struct request_queue *q, const char *name, char *buf,
		      size_t len);
int elv_attr_store(struct request_queue *q, const char *name,
		   const char *val);

/* ---- blk-merge.c ---- */
struct bio *__bio_split_to_limits(struct bio *bio,
				  const struct queue_limits *lim,
				  unsigned int *nr_segs);

/*
 * The kernel's bio_may_need_split(): a read or write of one segment within
 * the size limits, on a queue without chunks, goes on as it is (one
 * segment) without a call into blk-merge.c.
 */
static inline bool bio_may_need_split(const struct bio *bio,
				      const struct queue_limits *lim)
{
	return bio_op(bio) > REQ_OP_WRITE || bio->bi_vcnt != 1 ||
	       bio->bi_iter.bi_idx || bio->bi_iter.bi_bvec_done ||
	       bio->bi_iter.bi_size > lim->max_segment_size ||
	       (bio->bi_iter.bi_size >> SECTOR_SHIFT) > lim->max_sectors ||
	       lim->chunk_sectors;
}
bool blk_rq_merge_ok(struct request *rq, struct bio *bio);

/* Where @bio could join @rq: the sector test, before any other. */
static inline enum elv_merge blk_try_merge(struct request *rq,
					   struct bio *bio)
{
	if (blk_rq_pos(rq) + blk_rq_sectors(rq) == bio->bi_iter.bi_sector)
		return ELEVATOR_BACK_MERGE;
	if (blk_rq_pos(rq) - bio_sectors(bio) == bio->bi_iter.bi_sector)
		return ELEVATOR_FRONT_MERGE;
	return ELEVATOR_NO_MERGE;
}
bool bio_attempt_back_merge(struct request *req, struct bio *bio,
			    unsigned int nr_segs);
bool bio_attempt_front_merge(struct request *req, struct bio *bio,
			     unsigned int nr_segs);
bool bio_attempt_discard_merge(struct request_queue *q, struct request *req,
			       struct bio *bio);
enum bio_merge_status {
	BIO_MERGE_OK,
	BIO_MERGE_NONE,
	BIO_MERGE_FAILED,
};
enum bio_merge_status blk_attempt_bio_merge(struct request_queue *q,
					    struct request *rq,
					    struct bio *bio,
					    unsigned int nr_segs,
					    bool sched_allow_merge);
bool blk_attempt_plug_merge(struct request_queue *q, struct bio *bio,
			    unsigned int nr_segs);
struct request *attempt_back_merge(struct request_queue *q,
				   struct request *rq);
struct request *attempt_front_merge(struct request_queue *q,
				    struct request *rq);
bool blk_attempt_req_merge(struct request_queue *q, struct request *rq,
			   struct request *next);
unsigned int blk_rq_get_max_sectors(struct request *rq, sector_t offset);
/* A request's first bio (inline: every request gets one) */
static inline void blk_rq_bio_prep(struct request *rq, struct bio *bio,
				   unsigned int nr_segs)
{
	rq->nr_phys_segments = (unsigned short)nr_segs;
	rq->__data_len = bio->bi_iter.bi_size;
	rq->bio = rq->biotail = bio;
	rq->ioprio = bio->bi_ioprio;
}

/* ---- blk-flush.c ---- */
struct blk_flush_queue *blk_alloc_flush_queue(unsigned int cmd_size);
void blk_free_flush_queue(struct blk_flush_queue *fq);
bool blk_insert_flush(struct request *rq);
bool is_flush_rq(struct request *rq);
unsigned int blk_flush_policy(struct request *rq);

/* ---- blk-stat.c ---- */
void blk_account_io_merge_bio(struct request *rq);
void blk_account_io_merge_request(struct request *rq);
void blk_account_io_flush(struct request *rq);
void bio_start_io_acct(struct bio *bio);
void bio_end_io_acct(struct bio *bio, uint64_t start_ns);
long disk_in_flight(struct gendisk *disk);
static inline int op_stat_group(blk_opf_t op)
{
	switch (bio_op_of(op)) {
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
		return STAT_DISCARD;
	case REQ_OP_FLUSH:
		return STAT_FLUSH;
	default:
		return op_is_write(op) ? STAT_WRITE : STAT_READ;
	}
}
/* blk_account_io_start/completion/done, inline */
#include "blk-stat.h"

/* ---- blk-settings.c / blk-sysfs.c ---- */
void blk_queue_apply_limits(struct request_queue *q);

/* ---- blk-timeout.c ---- */
void blk_arm_timeout(struct request_queue *q, uint64_t expiry);

/* Start @rq's time-out; inline: every request is timed. */
/* time-outs are armed at multiples of this (the kernel rounds to jiffies) */
#define BLK_TIMEOUT_SLACK_NS	(250 * NSEC_PER_MSEC)

static inline void blk_add_timer(struct request *rq)
{
	struct request_queue *q = rq->q;
	unsigned int timeout = rq->timeout ? rq->timeout : q->rq_timeout;
	uint64_t next;

	rq->rq_flags &= ~RQF_TIMED_OUT;
	rq->deadline = rq->io_start_time_ns + (uint64_t)timeout * NSEC_PER_MSEC;
	/*
	 * Armed no later than our deadline rounded up to the slack: the
	 * common case. The armed time is such a multiple, so "next <=
	 * roundup(deadline)" is "next < deadline + slack", without a
	 * division (and without a call for every request of the slack
	 * window whose deadline is below that armed time).
	 */
	next = atomic_load_explicit(&q->timeout_next_ns, memory_order_relaxed);
	if (next && next < rq->deadline + BLK_TIMEOUT_SLACK_NS)
		return;
	blk_arm_timeout(q, rq->deadline);
}
void blk_mq_check_expired_all(struct request_queue *q);

/* ---- genhd.c ---- */
struct gendisk *__alloc_disk(struct request_queue *q);
void disk_release(struct gendisk *disk);

/* debug dump of a queue, for BUG() */
void blk_mq_debug_dump_queue(struct request_queue *q, FILE *out);
void blk_bug_dump_queue(void *q);

/*
 * BUG_ON for an invariant of a queue: the report ends with the queue's
 * debugfs-style dump (DESIGN.md section 6).
 */
#define BUG_ON_QUEUE(cond, q)						\
	do {								\
		if (unlikely(cond)) {					\
			bug_set_dumper(blk_bug_dump_queue, (q));	\
			__bug(__FILE__, __LINE__, __func__, #cond);	\
		}							\
	} while (0)

#endif
