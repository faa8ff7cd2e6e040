/* SPDX-License-Identifier: MIT */
/*
 * The driver-author API (the kernel's include/linux/blk-mq.h): tag sets,
 * struct request, the blk_mq_ops a request-based driver implements, the
 * bio-based entry for stacked drivers, queue limits, and the driver
 * registry. Consumers need only <blkstack/blkdev.h>.
 */
#ifndef BLKSTACK_BLK_MQ_H
#define BLKSTACK_BLK_MQ_H

#include "blkdev.h"
#include "list.h"

struct blk_mq_hw_ctx;
struct blk_mq_ctx;
struct blk_mq_tags;
struct blk_mq_tag_set;
struct elevator_queue;

enum hctx_type {
	HCTX_TYPE_DEFAULT,	/* all I/O not otherwise accounted for */
	HCTX_TYPE_READ,		/* just reads */
	HCTX_TYPE_POLL,		/* polled I/O of any kind */
	HCTX_MAX_TYPES,
};

/* rq_flags */
#define RQF_STARTED		(1U << 0)	/* driver saw it */
#define RQF_FLUSH_SEQ		(1U << 1)	/* inside the flush machinery */
#define RQF_MIXED_MERGE		(1U << 2)
#define RQF_DONTPREP		(1U << 3)
#define RQF_SCHED_TAGS		(1U << 4)	/* allocated from sched_tags */
#define RQF_USE_SCHED		(1U << 5)	/* goes through the elevator */
#define RQF_FAILED		(1U << 6)
#define RQF_IO_STAT		(1U << 7)	/* account in diskstats */
#define RQF_PM			(1U << 8)
#define RQF_HASHED		(1U << 9)
#define RQF_STATS		(1U << 10)
#define RQF_SPECIAL_PAYLOAD	(1U << 11)
#define RQF_TIMED_OUT		(1U << 12)
#define RQF_RESV		(1U << 13)	/* reserved tag */
#define RQF_MQ_INFLIGHT		(1U << 14)	/* counted in hctx->nr_active */
#define RQF_ELV			(1U << 15)	/* elevator prepared it */

enum mq_rq_state {
	MQ_RQ_IDLE = 0,
	MQ_RQ_IN_FLIGHT = 1,
	MQ_RQ_COMPLETE = 2,
};

#define BLK_MQ_NO_TAG	(-1)

typedef enum rq_end_io_ret {
	RQ_END_IO_NONE,
	RQ_END_IO_FREE,
} rq_end_io_ret_t;
typedef rq_end_io_ret_t (rq_end_io_fn)(struct request *rq, blk_status_t err);

/*
 * A request: one or more contiguous bios going to the driver as one unit.
 * The driver's per-request data (tag_set->cmd_size bytes) follows it in
 * memory: blk_mq_rq_to_pdu().
 */
struct request {
	struct request_queue *q;
	struct blk_mq_ctx *mq_ctx;
	struct blk_mq_hw_ctx *mq_hctx;
	blk_opf_t cmd_flags;
	uint32_t rq_flags;
	int tag;			/* driver tag, or BLK_MQ_NO_TAG */
	int internal_tag;		/* scheduler tag, or BLK_MQ_NO_TAG */
	unsigned int timeout;		/* ms; 0 = queue default */
	unsigned int __data_len;	/* bytes left */
	sector_t __sector;		/* sector cursor */
	struct bio *bio;
	struct bio *biotail;
	struct list_head queuelist;	/* ctx list, dispatch list, requeue */
	struct list_head hash;		/* elevator back-merge hash */
	struct request *rq_next;	/* plug list, completion batches */
	struct io_context *ioc;		/* issuer of the first bio */
	uint64_t start_time_ns;		/* first bio entered the queue */
	uint64_t io_start_time_ns;	/* handed to the driver */
	uint64_t deadline;		/* time-out, ns (monotonic) */
	uint64_t fifo_time;		/* for schedulers' FIFOs */
	unsigned short nr_phys_segments;
	unsigned short ioprio;
	unsigned int stats_sectors;
	_Atomic int state;		/* enum mq_rq_state */
	_Atomic int ref;
	int mq_cpu;			/* "CPU" the request was made on */
	unsigned int part_in_flight_dir;	/* stat group (STAT_*) */
	struct {			/* flush machinery (blk-flush.c) */
		unsigned int seq;
		struct list_head list;
		rq_end_io_fn *saved_end_io;
	} flush;
	struct {			/* elevator-private */
		void *priv[3];
		struct list_head list;
		uint64_t key;
	} elv;
	rq_end_io_fn *end_io;
	void *end_io_data;
	/* rb node space for schedulers (lib/rbtree) */
	uintptr_t rb_node[3];
};

static inline void *blk_mq_rq_to_pdu(struct request *rq)
{
	return rq + 1;
}

static inline struct request *blk_mq_rq_from_pdu(void *pdu)
{
	return (struct request *)pdu - 1;
}

static inline enum req_op req_op(const struct request *rq)
{
	return bio_op_of(rq->cmd_flags);
}

static inline sector_t blk_rq_pos(const struct request *rq)
{
	return rq->__sector;
}

static inline unsigned int blk_rq_bytes(const struct request *rq)
{
	return rq->__data_len;
}

static inline unsigned int blk_rq_sectors(const struct request *rq)
{
	return rq->__data_len >> SECTOR_SHIFT;
}

static inline bool blk_rq_is_passthrough(const struct request *rq)
{
	return req_op(rq) == REQ_OP_DRV_IN || req_op(rq) == REQ_OP_DRV_OUT;
}

static inline int rq_data_dir(const struct request *rq)
{
	return op_is_write(rq->cmd_flags) ? 1 : 0;
}

static inline enum mq_rq_state blk_mq_rq_state(struct request *rq)
{
	return (enum mq_rq_state)__atomic_load_n((int *)&rq->state,
						 __ATOMIC_ACQUIRE);
}

/* Walk the bios of a request, and each segment of each bio. */
#define __rq_for_each_bio(_bio, rq) \
	for (_bio = (rq)->bio; _bio; _bio = _bio->bi_next)

#define rq_for_each_segment(bvl, _rq, _iter)			\
	for (struct bio *__b = (_rq)->bio; __b; __b = __b->bi_next)	\
		bio_for_each_segment(bvl, __b, _iter)

/* What queue_rq() gets: the request and whether more follow in this run. */
struct blk_mq_queue_data {
	struct request *rq;
	bool last;
};

/* A completion batch: the driver gathers requests, the core frees them. */
struct io_comp_batch {
	struct request *req_list;	/* in the order they were added */
	struct request *req_tail;	/* valid while req_list is not NULL */
	bool need_ts;
	void (*complete)(struct io_comp_batch *);
};
#define DEFINE_IO_COMP_BATCH(name) struct io_comp_batch name = { }

enum blk_eh_timer_return {
	BLK_EH_DONE,		/* driver completed (or will complete) it */
	BLK_EH_RESET_TIMER,	/* give it another time-out period */
};

/*
 * What a request-based driver implements. Only queue_rq is required.
 * Calls come from submitting threads and kblockd workers; the core never
 * holds its own locks across them.
 */
struct blk_mq_ops {
	/*
	 * Start @bd->rq. BLK_STS_OK: the driver owns it and will complete
	 * it. BLK_STS_RESOURCE: out of resources, the core requeues and
	 * reruns later (after a completion, or a short delay).
	 * BLK_STS_DEV_RESOURCE: the same, rerun only on a completion from
	 * this device. Other codes end the request with that error.
	 * @bd->last false: more requests follow; the driver may batch them
	 * until last or commit_rqs().
	 */
	blk_status_t (*queue_rq)(struct blk_mq_hw_ctx *hctx,
				 const struct blk_mq_queue_data *bd);
	/* Kick what queue_rq() batched when the run ended without "last". */
	void (*commit_rqs)(struct blk_mq_hw_ctx *hctx);
	/*
	 * Issue a whole plug list at once (NULL-terminated via rq_next, all
	 * for one queue, driver tags held). Requests the driver could not
	 * take are left in *@rqlist for the core to issue one by one.
	 */
	void (*queue_rqs)(struct request **rqlist);
	/*
	 * Reserve/release room for one request (per-device depth limits).
	 * The core puts the budget back itself when queue_rq returns a
	 * RESOURCE status. A driver whose get_budget said no must rerun the
	 * queue (blk_mq_run_hw_queues) when budget frees up.
	 */
	bool (*get_budget)(struct request_queue *q);
	void (*put_budget)(struct request_queue *q);
	/* Finish a request after blk_mq_complete_request(). */
	void (*complete)(struct request *rq);
	/* A request passed its deadline. */
	enum blk_eh_timer_return (*timeout)(struct request *rq);
	/* Reap completions of a poll queue; returns how many. */
	int (*poll)(struct blk_mq_hw_ctx *hctx, struct io_comp_batch *iob);
	int (*init_hctx)(struct blk_mq_hw_ctx *hctx, void *driver_data,
			 unsigned int hctx_idx);
	void (*exit_hctx)(struct blk_mq_hw_ctx *hctx, unsigned int hctx_idx);
	int (*init_request)(struct blk_mq_tag_set *set, struct request *rq,
			    unsigned int hctx_idx);
	void (*exit_request)(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx);
	/* Build set->map[]; default blk_mq_map_queues() on each map. */
	void (*map_queues)(struct blk_mq_tag_set *set);
	/* Extra lines for the debug dump of @hctx. */
	void (*show_hctx)(struct blk_mq_hw_ctx *hctx, FILE *out);
};

/* tag_set->flags */
#define BLK_MQ_F_SHOULD_MERGE	(1U << 0)
#define BLK_MQ_F_TAG_QUEUE_SHARED (1U << 1)	/* set by the core */
#define BLK_MQ_F_STACKING	(1U << 2)
#define BLK_MQ_F_TAG_HCTX_SHARED (1U << 3)	/* one tag map for all hctxs */
#define BLK_MQ_F_BLOCKING	(1U << 5)	/* queue_rq may sleep */
#define BLK_MQ_F_NO_SCHED	(1U << 6)
#define BLK_MQ_F_NO_SCHED_BY_DEFAULT (1U << 7)

struct blk_mq_queue_map {
	unsigned int *mq_map;		/* CPU -> hw queue index */
	unsigned int nr_cpu_ids;	/* entries in mq_map */
	unsigned int nr_queues;
	unsigned int queue_offset;
};

struct blk_mq_tag_set {
	const struct blk_mq_ops *ops;
	struct blk_mq_queue_map map[HCTX_MAX_TYPES];
	unsigned int nr_maps;		/* 1..HCTX_MAX_TYPES */
	unsigned int nr_hw_queues;
	unsigned int queue_depth;	/* tags per hw queue, incl. reserved */
	unsigned int reserved_tags;
	unsigned int cmd_size;		/* driver bytes after each request */
	unsigned int timeout;		/* ms; 0 = 30 s */
	unsigned int flags;		/* BLK_MQ_F_* */
	void *driver_data;
	/* filled by the core */
	unsigned int nr_cpu_ids;
	struct blk_mq_tags **tags;	/* per hw queue (or all = shared) */
	struct blk_mq_tags *shared_tags;
	pthread_mutex_t tag_list_lock;
	struct list_head tag_list;	/* queues using this set */
	unsigned int nr_queues_using;
};

/* Limits a driver sets and the core enforces (blk-settings.c). */
struct queue_limits {
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned int io_min;
	unsigned int io_opt;
	unsigned int max_hw_sectors;
	unsigned int max_sectors;
	unsigned int max_user_sectors;	/* 0 = not set by the user */
	unsigned int max_segments;
	unsigned int max_segment_size;
	unsigned int chunk_sectors;
	unsigned int max_discard_sectors;
	unsigned int max_hw_discard_sectors;
	unsigned int discard_granularity;	/* bytes */
	unsigned int max_write_zeroes_sectors;
	unsigned int dma_alignment;		/* mask; buffers must align */
	bool features_write_cache;		/* volatile cache: flushes matter */
	bool features_fua;			/* the device honours FUA */
	bool features_rotational;
	bool features_poll;
};

#define BLK_DEF_MAX_SECTORS	2560	/* 1280 KiB, the kernel's cap */
#define BLK_MAX_SEGMENTS	128
#define BLK_MAX_SEGMENT_SIZE	65536
#define BLK_SAFE_MAX_SECTORS	255

/* Fill @lim with the kernel's defaults for a 512-byte device. */
void blk_set_default_limits(struct queue_limits *lim);
/* Validate a driver's limits (-EINVAL with a message) and fill gaps. */
int blk_validate_limits(struct queue_limits *lim);

/* ---- tag sets and queues ---- */

int blk_mq_alloc_tag_set(struct blk_mq_tag_set *set);
void blk_mq_free_tag_set(struct blk_mq_tag_set *set);

/*
 * Make a request-based disk on @set with @lim (NULL = defaults) and
 * @queuedata for the driver. Returns NULL with blkstack_errmsg() on error.
 */
struct gendisk *blk_mq_alloc_disk(struct blk_mq_tag_set *set,
				  const struct queue_limits *lim,
				  void *queuedata);

/* A bio-based device (stacked drivers): ->submit_bio gets every bio. */
struct block_device_operations {
	void (*submit_bio)(struct bio *bio);
	int (*poll_bio)(struct bio *bio);
};
struct gendisk *blk_alloc_disk(const struct block_device_operations *fops,
			       const struct queue_limits *lim,
			       void *queuedata);

/*
 * Register @disk under @name (and a minor number); it becomes visible to
 * blk_get_disk(). Unregister with del_gendisk(), which drains I/O.
 */
int add_disk(struct gendisk *disk, const char *name, sector_t capacity);
void del_gendisk(struct gendisk *disk);
void put_disk(struct gendisk *disk);
void set_capacity(struct gendisk *disk, sector_t sectors);

struct request_queue *disk_queue(const struct gendisk *disk);
void *disk_private(const struct gendisk *disk);
void disk_set_private(struct gendisk *disk, void *data);
void *queue_driver_data(const struct request_queue *q);
struct gendisk *queue_disk(const struct request_queue *q);
const struct queue_limits *queue_limits(const struct request_queue *q);
/* Update limits while I/O runs (freezes the queue); validated first. */
int queue_limits_update(struct request_queue *q,
			const struct queue_limits *lim);

/* ---- the request life cycle, for drivers ---- */

struct request_queue *hctx_queue(const struct blk_mq_hw_ctx *hctx);
void *hctx_driver_data(const struct blk_mq_hw_ctx *hctx);
void hctx_set_driver_data(struct blk_mq_hw_ctx *hctx, void *data);
unsigned int hctx_index(const struct blk_mq_hw_ctx *hctx);
enum hctx_type hctx_type_of(const struct blk_mq_hw_ctx *hctx);

/* Mark @rq started (arms the time-out); call from queue_rq. */
void blk_mq_start_request(struct request *rq);
/*
 * Signal completion from any thread ("interrupt"). Ignored (returns
 * false) if the request already completed or timed out.
 */
bool blk_mq_complete_request(struct request *rq);
/*
 * Claim the completion of @rq (IN_FLIGHT -> COMPLETE) without running
 * ->complete, for drivers that then gather it with blk_mq_add_to_batch().
 * False if the time-out handling or another completion got there first.
 */
bool blk_mq_mark_complete(struct request *rq);
/* End all of @rq with @error; for ->complete and inline completion. */
void blk_mq_end_request(struct request *rq, blk_status_t error);
/*
 * Complete @bytes of @rq: ends finished bios, returns true if more
 * remain (partial completion), false when the request is done.
 */
bool blk_update_request(struct request *rq, blk_status_t error,
			unsigned int bytes);
void __blk_mq_end_request(struct request *rq, blk_status_t error);
/* Put @rq back for another try, kicking the requeue work if @kick. */
void blk_mq_requeue_request(struct request *rq, bool kick);
void blk_mq_kick_requeue_list(struct request_queue *q);
void blk_mq_delay_kick_requeue_list(struct request_queue *q,
				    unsigned long msecs);

/*
 * Gather @rq into @iob instead of completing it now (poll, batches);
 * false if it must be completed alone. Inline: a driver calls it for
 * every request it completes.
 */
static inline bool blk_mq_add_to_batch(struct request *rq,
				       struct io_comp_batch *iob, int ioerror,
				       void (*complete)(struct io_comp_batch *))
{
	/* errors, end_io and flush steps need the one-by-one path */
	if (ioerror || rq->end_io || (rq->rq_flags & RQF_FLUSH_SEQ))
		return false;
	if (!iob->complete)
		iob->complete = complete;
	else if (iob->complete != complete)
		return false;
	if (rq->rq_flags & RQF_IO_STAT)
		iob->need_ts = true;
	rq->rq_next = NULL;
	if (iob->req_list)
		iob->req_tail->rq_next = rq;
	else
		iob->req_list = rq;
	iob->req_tail = rq;
	return true;
}
/* End every request of @iob with success, freeing tags in bulk. */
void blk_mq_end_request_batch(struct io_comp_batch *iob);

/* Look up the request that owns driver tag @tag of @hctx (for drivers). */
struct request *blk_mq_tag_to_rq(struct blk_mq_hw_ctx *hctx, int tag);

void blk_mq_stop_hw_queue(struct blk_mq_hw_ctx *hctx);
void blk_mq_start_hw_queue(struct blk_mq_hw_ctx *hctx);
void blk_mq_start_stopped_hw_queues(struct request_queue *q, bool async);
void blk_mq_run_hw_queue(struct blk_mq_hw_ctx *hctx, bool async);
void blk_mq_run_hw_queues(struct request_queue *q, bool async);
void blk_mq_delay_run_hw_queue(struct blk_mq_hw_ctx *hctx,
			       unsigned long msecs);
void blk_mq_quiesce_queue(struct request_queue *q);
void blk_mq_unquiesce_queue(struct request_queue *q);
void blk_mq_freeze_queue(struct request_queue *q);
void blk_mq_unfreeze_queue(struct request_queue *q);
/* Fail all requests of a dying queue, for device removal. */
void blk_mq_mark_dying(struct request_queue *q);

/*
 * Change the number of hw queues of every queue on @set while I/O runs:
 * freeze, rebuild the maps and hctxs, unfreeze. Returns 0 or -errno
 * (the old layout is kept on failure).
 */
int blk_mq_update_nr_hw_queues(struct blk_mq_tag_set *set,
			       unsigned int nr_hw_queues);

/* The kernel's default CPU -> queue spreading for one map. */
void blk_mq_map_queues(struct blk_mq_queue_map *qmap);
/* DEFAULT map on the first hw queues, POLL map on the last @nr_poll. */
void blk_mq_map_default_and_poll(struct blk_mq_tag_set *set,
				 unsigned int nr_poll);

/* Allocate a request directly (passthrough, flush tests, drivers). */
#define BLK_MQ_REQ_NOWAIT	(1U << 0)
#define BLK_MQ_REQ_RESERVED	(1U << 1)
#define BLK_MQ_REQ_PM		(1U << 2)
struct request *blk_mq_alloc_request(struct request_queue *q, blk_opf_t opf,
				     unsigned int flags);
void blk_mq_free_request(struct request *rq);
/* Run @rq to completion on @q, waiting; returns its status. */
blk_status_t blk_execute_rq(struct request *rq, bool at_head);

/* Iterate requests holding tags on @q (in flight); stop when fn false. */
void blk_mq_tagset_busy_iter(struct blk_mq_tag_set *set,
			     bool (*fn)(struct request *rq, void *data),
			     void *data);

/* ---- the driver registry ---- */

/*
 * A device driver, found by name by blkstack_dev_add(). @create parses
 * "key=value,..." (its error names the bad key and the valid ones) and
 * returns an added disk. @destroy undoes it after del_gendisk().
 * @bypass_rw (optional) does one I/O synchronously without the block
 * layer, for blkbench --bypass. @block_status (optional) maps holes.
 */
struct blk_driver {
	const char *name;
	const char *params_help;
	int (*create)(const char *name, const char *params,
		      struct gendisk **diskp);
	void (*destroy)(struct gendisk *disk);
	int (*bypass_rw)(struct gendisk *disk, enum req_op op, sector_t sector,
			 void *buf, unsigned int len);
	/*
	 * Optional: what is allocated in bytes [@off, @off + @len). Calls
	 * @fn for consecutive extents (@hole: unallocated, reads as zeroes)
	 * until the range is covered or @fn returns != 0 (then returns
	 * that). For NBD_CMD_BLOCK_STATUS and tools that copy sparsely.
	 */
	int (*block_status)(struct gendisk *disk, uint64_t off, uint64_t len,
			    int (*fn)(uint64_t off, uint64_t len, bool hole,
				      void *arg),
			    void *arg);
};

/* Set blkstack_errmsg() for the calling thread; returns @err. */
int blk_err(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
