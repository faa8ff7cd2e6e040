/* SPDX-License-Identifier: MIT */
/*
 * Structures shared by the BFQ scheduler's files: bfq-iosched.c (queues,
 * budgets, idling, hooks) and bfq-wf2q.c (the B-WF2Q+ service trees).
 */
#ifndef BLKSTACK_BLOCK_BFQ_IOSCHED_H
#define BLKSTACK_BLOCK_BFQ_IOSCHED_H

#include "blk.h"
#include "lib/rbtree.h"

#define BFQ_IOPRIO_CLASSES		3	/* RT, BE, IDLE */
#define BFQ_WEIGHT_CONVERSION_COEFF	10
#define BFQ_HASH_BITS			6
/* the idle class gets the device at least this often (ms) */
#define BFQ_CL_IDLE_TIMEOUT_MS		200

/* why a queue's turn ended (the kernel's enum bfqq_expiration) */
enum bfqq_expiration {
	BFQQE_TOO_IDLE = 0,		/* idled slice_idle for nothing */
	BFQQE_BUDGET_TIMEOUT,		/* held the device timeout_sync */
	BFQQE_BUDGET_EXHAUSTED,		/* used its budget */
	BFQQE_NO_MORE_REQUESTS,		/* empty, and not worth idling */
	BFQQE_PREEMPTED,		/* a queue of higher class or weight came */
	BFQQE_NR,
};
extern const char *const bfq_expire_name[BFQQE_NR];

/*
 * What B-WF2Q+ schedules: virtual start and finish times, in units of
 * service (sectors) << BFQ_SERVICE_SHIFT divided by the weight.
 */
struct bfq_entity {
	struct rb_node rb_node;		/* in its class's active tree */
	uint64_t start, finish;
	unsigned long budget;		/* sectors this turn may use */
	unsigned long service;		/* sectors charged this turn */
	unsigned int weight;		/* orig_weight * wr_coeff */
	unsigned int orig_weight;	/* from the ioc weight or ioprio */
	unsigned int wsum_weight;	/* what it adds to its tree's wsum */
};

static inline bool bfq_entity_on_tree(const struct bfq_entity *entity)
{
	return !RB_EMPTY_NODE(&entity->rb_node);
}

struct bfq_service_tree {
	struct rb_root active;		/* eligible or not, by finish time */
	uint64_t vtime;			/* the system virtual time */
	unsigned long wsum;		/* weights of the busy entities */
	unsigned int nr;		/* busy entities, in service included */
};

struct bfq_sched_data {
	struct bfq_service_tree st[BFQ_IOPRIO_CLASSES];
	uint64_t idle_class_last_service;	/* ns */
};

struct bfq_data;

struct bfq_queue {
	struct bfq_entity entity;
	struct bfq_data *bfqd;
	struct io_context *ioc;		/* sync: the issuer (a reference) */
	pid_t pid;			/* for the dump; -1 for async */
	unsigned short ioprio_class, ioprio;
	bool sync;
	bool busy;			/* has requests or is in service */
	bool wait_request;		/* idling for its next request */
	bool fifo_checked;		/* FIFO looked at in this budget */
	bool short_ttime;		/* think time within slice_idle */
	bool non_blocking_wait_rq;	/* expired dry, budget left */
	bool softrt_update;		/* soft_rt_next_start at last completion */
	unsigned int ref;		/* requests inserted, not finished */
	struct rb_root sort_list;	/* queued requests by sector */
	struct list_head fifo;		/* queued requests by arrival */
	struct request *next_rq;	/* the next one by head position */
	unsigned int queued;
	unsigned int dispatched;	/* in the driver */
	unsigned long max_budget;	/* next budget, by feedback */
	uint64_t budget_start, budget_timeout;	/* ns */
	/* seek and think time */
	uint32_t seek_history;
	sector_t last_request_pos;
	uint64_t last_end_request;
	uint64_t ttime_samples, ttime_total, ttime_mean;
	/* weight raising */
	unsigned int wr_coeff;
	uint64_t wr_start, wr_cur_max_time;
	unsigned long service_from_wr;	/* sectors since raising began */
	uint64_t wr_interactive_end;	/* under soft rt: interactive's end */
	uint64_t busy_start, last_idle_end, soft_rt_next_start;
	unsigned long service_from_backlogged;
	/* counters */
	unsigned long nr_dispatched;
	unsigned long long completed_sectors;
	unsigned long expired[BFQQE_NR];
	struct list_head hash_node;	/* bfqd->hash, by ioc */
	struct list_head bfqq_list;	/* bfqd->sync_queues */
};

#define BFQQ_SEEKY(bfqq)	(__builtin_popcount((bfqq)->seek_history) > 32 / 8)
/* every one of the last 32 requests was far from the one before */
#define BFQQ_TOTALLY_SEEKY(bfqq)	((bfqq)->seek_history == UINT32_MAX)

static inline bool bfq_bfqq_sync(const struct bfq_queue *bfqq)
{
	return bfqq->sync;
}

/* Per I/O priority class (RT, BE, IDLE), for the debug dump's classes. */
struct bfq_class_stats {
	unsigned long dispatched, merged, fifo_expired;
	uint64_t max_wait_ns;
};

struct bfq_stats {
	unsigned long inserted, dispatched, completed;
	unsigned long merged;		/* requests merged away */
	unsigned long bio_merged;	/* bios merged into queued requests */
	unsigned long fifo_expired;
	unsigned long activations;	/* queues put in service */
	unsigned long expired[BFQQE_NR];
	unsigned long idle_waits, idle_hits, idle_timeouts;
	unsigned long wr_interactive, wr_soft_rt;
	unsigned long queues_created, queues_freed;
	uint64_t max_wait_ns;		/* longest insert-to-dispatch wait */
	struct bfq_class_stats cls[IOPRIO_CLASS_IDLE];	/* [class - 1] */
};

/*
 * The current observation of the device's rate (the kernel's peak-rate
 * estimator): what was dispatched since first_dispatch, and how much of
 * it was sequential.
 */
struct bfq_rate_sample {
	uint64_t first_dispatch, last_dispatch, last_completion;	/* ns */
	uint64_t delta;			/* ns from the first dispatch */
	unsigned long long sectors;
	unsigned int samples, seq_samples;
};

struct bfq_data {
	pthread_spinlock_t lock;
	struct request_queue *queue;
	struct bfq_sched_data sched_data;
	struct bfq_queue *in_service_queue;
	struct list_head dispatch;	/* at_head insertions */
	_Atomic unsigned int queued;	/* all queued: has_work, unlocked */
	unsigned int busy_queues[BFQ_IOPRIO_CLASSES];
	struct list_head hash[1 << BFQ_HASH_BITS];	/* sync, by ioc */
	struct list_head sync_queues;
	struct bfq_queue *async_bfqq[BFQ_IOPRIO_CLASSES][IOPRIO_NR_LEVELS];
	struct delayed_work idle_slice_timer;
	uint64_t idle_deadline;		/* ns: end of the current idle wait */
	uint64_t idle_timer_due;	/* ns: when the timer fires; 0 = idle */
	sector_t last_position;		/* end of the last dispatch */
	/* peak rate (sectors/µs << BFQ_RATE_SHIFT): when max_budget is not
	 * set, the max budget is what it moves in timeout_sync */
	uint64_t peak_rate;
	bool peak_rate_measured;
	struct bfq_rate_sample rate;
	/* how deep the device queue is: hw_tag -1 unknown, 0, 1 */
	bool nonrot;
	int hw_tag;
	unsigned int rq_in_driver, max_rq_in_driver, hw_tag_samples;
	/* tunables (iosched/ attributes), read under the lock */
	uint64_t bfq_fifo_expire[2];	/* ns: [async, sync] */
	unsigned int bfq_back_max;	/* KiB */
	unsigned int bfq_back_penalty;
	uint64_t bfq_slice_idle;	/* ns */
	uint64_t bfq_timeout;		/* ns */
	unsigned long bfq_user_max_budget;	/* sectors; 0 = default */
	bool strict_guarantees;
	bool low_latency;
	struct bfq_stats stats;
};

/* bfq-wf2q.c; bfqd->lock held */
void bfq_init_sched_data(struct bfq_sched_data *sd);
void bfq_activate_entity(struct bfq_sched_data *sd, struct bfq_entity *entity,
			 unsigned short ioprio_class, bool backshifted);
void bfq_requeue_entity(struct bfq_sched_data *sd, struct bfq_entity *entity,
			unsigned short ioprio_class);
void bfq_deactivate_entity(struct bfq_sched_data *sd,
			   struct bfq_entity *entity,
			   unsigned short ioprio_class);
void bfq_entity_served(struct bfq_sched_data *sd, struct bfq_entity *entity,
		       unsigned long served, unsigned short ioprio_class);
struct bfq_entity *bfq_get_next_entity(struct bfq_sched_data *sd,
				       uint64_t now);
bool bfq_asymmetric_scenario(struct bfq_data *bfqd);

/* bfq-iosched.c */
extern const struct elv_fs_entry bfq_attrs[];

#endif
