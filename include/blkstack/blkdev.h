/* SPDX-License-Identifier: MIT */
/*
 * The consumer API: create and find devices, do I/O on them (async with a
 * completion callback, or sync), plug, set who is issuing (io context and
 * priority), poll, and read the counters. Driver authors also include
 * <blkstack/blk-mq.h>.
 *
 * Errors: functions return 0 (or a count) on success and -errno on
 * failure; blkstack_errmsg() then holds one line saying what was wrong and
 * what the valid values are.
 */
#ifndef BLKSTACK_BLKDEV_H
#define BLKSTACK_BLKDEV_H

#include <stdio.h>
#include <sys/types.h>
#include "blk_types.h"
#include "bio.h"
#include "list.h"

struct gendisk;
struct request;
struct request_queue;

/* The calling thread's last error message ("" when none). */
const char *blkstack_errmsg(void);

/* ---- devices ---- */

/*
 * Create device @name with driver @driver ("null", ...) and its parameters
 * as "key=value,key=value" with the kernel module's names
 * (null: "size=1G,irqmode=0,memory_backed=1"). On success *@diskp (if
 * not NULL) holds a reference the caller drops with blk_put_disk().
 */
int blkstack_dev_add(const char *driver, const char *name,
		     const char *params, struct gendisk **diskp);
/* Remove @name: new I/O fails, in-flight I/O drains, then it is freed. */
int blkstack_dev_del(const char *name);
/* Look up a device by name; NULL (and blkstack_errmsg()) if none. */
struct gendisk *blk_get_disk(const char *name);
void blk_put_disk(struct gendisk *disk);
/* Call @fn for each device in creation order; stop when it returns != 0. */
int blkstack_dev_for_each(int (*fn)(struct gendisk *disk, void *arg),
			  void *arg);
/* Names of the registered drivers, space separated. */
const char *blkstack_driver_names(void);

const char *blk_disk_name(const struct gendisk *disk);
const char *blk_disk_driver(const struct gendisk *disk);
sector_t get_capacity(const struct gendisk *disk);
unsigned int bdev_logical_block_size(const struct gendisk *disk);
unsigned int bdev_physical_block_size(const struct gendisk *disk);
void blk_disk_devt(const struct gendisk *disk, int *major, int *minor);
bool bdev_read_only(const struct gendisk *disk);
void set_disk_ro(struct gendisk *disk, bool read_only);

/* ---- queue attributes, by their /sys/block/<dev>/queue/ names ---- */

/* Read @attr into @buf as sysfs shows it (with a trailing newline). */
int blk_queue_attr_show(struct gendisk *disk, const char *attr, char *buf,
			size_t len);
/* Write @attr; a bad name or value changes nothing. */
int blk_queue_attr_store(struct gendisk *disk, const char *attr,
			 const char *val);
/* NULL-terminated list of the attribute names. */
const char *const *blk_queue_attr_names(void);

/* ---- I/O ---- */

/* Completion of blkdev_submit(): @err is 0 or -errno. */
typedef void (blkdev_done_fn)(void *priv, int err);

/*
 * Asynchronous I/O of @len bytes at byte offset @off. @opf is a REQ_OP_*
 * ored with REQ_* flags (REQ_FUA, REQ_PREFLUSH, REQ_POLLED...). @done runs
 * exactly once, on the completing thread. Returns 0, or -errno if the bio
 * could not even be built (then @done is not called).
 */
int blkdev_submit(struct gendisk *disk, blk_opf_t opf, off_t off, void *buf,
		  size_t len, blkdev_done_fn *done, void *priv);

/* Synchronous helpers: bytes done, or -errno. */
ssize_t blkdev_pread(struct gendisk *disk, void *buf, size_t len, off_t off);
ssize_t blkdev_pwrite(struct gendisk *disk, const void *buf, size_t len,
		      off_t off);
int blkdev_flush(struct gendisk *disk);
int blkdev_discard(struct gendisk *disk, off_t off, size_t len);
int blkdev_write_zeroes(struct gendisk *disk, off_t off, size_t len);

/*
 * One synchronous I/O straight to the driver with no block layer at all
 * (blkbench --bypass: the floor the stack is measured against).
 * -EOPNOTSUPP if the driver has no such path.
 */
int blkdev_bypass_rw(struct gendisk *disk, enum req_op op, sector_t sector,
		     void *buf, unsigned int len);

/*
 * Reap completions of REQ_POLLED I/O on the poll queue this thread's CPU
 * maps to (all poll queues if none). Returns how many completed, >= 0.
 */
int blkdev_poll(struct gendisk *disk);

/* ---- plugging ---- */

/*
 * Requests made between blk_start_plug() and blk_finish_plug() on this
 * thread are held and merged, then sent as a batch. Plugs nest: only the
 * outermost one counts. Keep the struct on the caller's stack.
 */
struct blk_plug_cb;
/* Runs when the plug is flushed; it owns @cb (frees it). */
typedef void (*blk_plug_cb_fn)(struct blk_plug_cb *cb, bool from_schedule);

struct blk_plug_cb {
	struct list_head list;
	blk_plug_cb_fn callback;
	void *data;
};

struct blk_plug {
	struct list_head cb_list;	/* blk_check_plugged() callbacks */
	struct request *mq_list;	/* singly linked via rq->rq_next */
	struct request *mq_tail;
	unsigned short rq_count;
	bool multiple_queues;
	bool has_elevator;
	bool nested;
	unsigned short nr_ios;		/* requests to allocate at once */
	struct request *cached_rq;	/* allocated, not yet used */
	uint64_t cur_ktime;		/* time cached for the plugged batch */
};

void blk_start_plug(struct blk_plug *plug);
/*
 * Like blk_start_plug() for a caller about to submit @nr_ios bios: tags
 * and requests are then allocated in batches (up to 32 at a time, as
 * many as one word of the tag map has free).
 */
void blk_start_plug_nr_ios(struct blk_plug *plug, unsigned short nr_ios);
void blk_finish_plug(struct blk_plug *plug);
/* Send what the current plug holds now (e.g. before sleeping). */
void blk_flush_plug(struct blk_plug *plug, bool from_schedule);
/*
 * Work to do once, when this thread's plug is flushed: the callback
 * registered for (@unplug, @data), made (zeroed, @size bytes, at least a
 * struct blk_plug_cb) if there is none yet. Flushing first sends the
 * plugged requests, then runs the callbacks; requests the callbacks
 * submit, and callbacks registered meanwhile, are handled in the same
 * flush. NULL if the thread has no plug (or no memory): do the work now.
 * Lets a caller gather work per batch, such as the replies of requests
 * completed together.
 */
struct blk_plug_cb *blk_check_plugged(blk_plug_cb_fn unplug, void *data,
				      size_t size);

/* ---- who is issuing ---- */

/*
 * An io context with @ioprio (IOPRIO_PRIO_VALUE) and @weight (0 = derive
 * from ioprio, else 1..1000). @comm names the issuer in traces.
 */
struct io_context *ioc_create(pid_t pid, uint16_t ioprio, uint16_t weight,
			      const char *comm);
void get_io_context(struct io_context *ioc);
void put_io_context(struct io_context *ioc);
/*
 * Bios of this thread without ->bi_ioc use @ioc (NULL = a per-thread one).
 * An io_context set on a bio must stay alive until the bio completes;
 * requests hold their own reference.
 */
void blk_set_current_ioc(struct io_context *ioc);
struct io_context *blk_current_ioc(void);
/* Validate and set; -EINVAL with a message for a bad class/level/weight. */
int ioc_set_ioprio(struct io_context *ioc, int class, int level);
int ioc_set_weight(struct io_context *ioc, unsigned int weight);

/* ---- CPUs (simulated topologies for tests and experiments) ---- */

/*
 * Pretend this thread runs on @cpu (which may be outside the map, to test
 * the fallback); -1 returns to sched_getcpu().
 */
void blk_set_current_cpu(int cpu);
int blk_current_cpu(void);
/*
 * Replace the CPU topology that new queues map over: @nr_possible CPUs of
 * which those in @present (a bitmap of nr_possible bits) are usable.
 * NULL @present = all. Existing queues keep theirs until
 * blk_mq_update_nr_hw_queues(). Returns -EINVAL past BLK_MAX_CPUS.
 */
#define BLK_MAX_CPUS	1024
int blk_cpu_topology_set(unsigned int nr_possible, const uint64_t *present);
/* Back to what the system says (possible CPUs and our affinity mask). */
void blk_cpu_topology_reset(void);

/* ---- counters and state ---- */

struct blk_disk_stats {
	uint64_t ios[4];	/* read, write, discard, flush (completed) */
	uint64_t merges[4];
	uint64_t sectors[4];
	uint64_t ticks_ms[4];	/* time spent in each kind */
	uint64_t in_flight;
	uint64_t io_ticks_ms;	/* time with at least one I/O in flight */
	uint64_t time_in_queue_ms;
};
enum { STAT_READ, STAT_WRITE, STAT_DISCARD, STAT_FLUSH };

void blk_disk_get_stats(struct gendisk *disk, struct blk_disk_stats *st);
/* One /proc/diskstats line (20 fields after major minor name). */
int blk_disk_stat_line(struct gendisk *disk, char *buf, size_t len);
/* The debugfs-style state dump of the device's queue. */
void blk_mq_debug_dump(struct gendisk *disk, FILE *out);
/*
 * Its counters as one JSON object: the queue's, each hardware queue's,
 * and the scheduler's per class ("iosched": {"name", "classes": {CLASS:
 * {"dispatched", "merged", ["expired",] ["starved",] "max_wait_ns"}}}).
 */
void blk_mq_debug_dump_json(struct gendisk *disk, FILE *out);

#endif
