/* SPDX-License-Identifier: MIT */
/*
 * blktrace: every step of a request's path recorded as the kernel records
 * it, in the kernel's binary format (struct blk_io_trace), so the real
 * blkparse and btt read the output.
 *
 * Two ways in, as in the kernel:
 *  - the "ioctl" path: blk_trace_setup() (BLKTRACESETUP), blk_trace_start()
 *    / blk_trace_stop() (BLKTRACESTART/STOP), blk_trace_teardown()
 *    (BLKTRACETEARDOWN), and blk_trace_run() (blktrace -d -w -D);
 *  - the sysfs path: queue attributes trace/enable, trace/act_mask,
 *    trace/start_lba, trace/end_lba, trace/pid through
 *    blk_queue_attr_show()/blk_queue_attr_store().
 * Any order of calls across both paths is safe; a call that does not fit
 * the state (start twice, stop without setup) fails with a message.
 *
 * Output: per-"CPU" files <dir>/<dev>.blktrace.<cpu>, and/or one merged,
 * time-ordered stream on a file descriptor (blktrace -o -), and/or text
 * lines in blkparse's format passed to a callback (live mode). Events
 * never block I/O: when a buffer is full the event is counted as dropped.
 */
#ifndef BLKSTACK_BLKTRACE_H
#define BLKSTACK_BLKTRACE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct gendisk;
struct request;

/* ---- the binary format (include/uapi/linux/blktrace_api.h) ---- */

/* Categories: act_mask bits, and bits 16.. of an event's action. */
enum blktrace_cat {
	BLK_TC_READ = 1 << 0,
	BLK_TC_WRITE = 1 << 1,
	BLK_TC_FLUSH = 1 << 2,
	BLK_TC_SYNC = 1 << 3,
	BLK_TC_QUEUE = 1 << 4,
	BLK_TC_REQUEUE = 1 << 5,
	BLK_TC_ISSUE = 1 << 6,
	BLK_TC_COMPLETE = 1 << 7,
	BLK_TC_FS = 1 << 8,
	BLK_TC_PC = 1 << 9,
	BLK_TC_NOTIFY = 1 << 10,
	BLK_TC_AHEAD = 1 << 11,
	BLK_TC_META = 1 << 12,
	BLK_TC_DISCARD = 1 << 13,
	BLK_TC_DRV_DATA = 1 << 14,
	BLK_TC_FUA = 1 << 15,
};
#define BLK_TC_SHIFT 16
#define BLK_TC_ACT(act) ((uint32_t)(act) << BLK_TC_SHIFT)
#define BLK_TC_ALL 0xffffU

/* Actions: the low 16 bits of an event's action. */
enum blktrace_act {
	__BLK_TA_QUEUE = 1,
	__BLK_TA_BACKMERGE,
	__BLK_TA_FRONTMERGE,
	__BLK_TA_GETRQ,
	__BLK_TA_SLEEPRQ,
	__BLK_TA_REQUEUE,
	__BLK_TA_ISSUE,
	__BLK_TA_COMPLETE,
	__BLK_TA_PLUG,
	__BLK_TA_UNPLUG_IO,
	__BLK_TA_UNPLUG_TIMER,
	__BLK_TA_INSERT,
	__BLK_TA_SPLIT,
	__BLK_TA_BOUNCE,
	__BLK_TA_REMAP,
	__BLK_TA_ABORT,
	__BLK_TA_DRV_DATA,
};

enum blktrace_notify {
	__BLK_TN_PROCESS = 0, /* pid -> process name */
	__BLK_TN_TIMESTAMP, /* wall-clock time of the trace start */
	__BLK_TN_MESSAGE, /* a text message */
};

#define BLK_TA_QUEUE (__BLK_TA_QUEUE | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_BACKMERGE (__BLK_TA_BACKMERGE | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_FRONTMERGE (__BLK_TA_FRONTMERGE | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_GETRQ (__BLK_TA_GETRQ | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_SLEEPRQ (__BLK_TA_SLEEPRQ | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_REQUEUE (__BLK_TA_REQUEUE | BLK_TC_ACT(BLK_TC_REQUEUE))
#define BLK_TA_ISSUE (__BLK_TA_ISSUE | BLK_TC_ACT(BLK_TC_ISSUE))
#define BLK_TA_COMPLETE (__BLK_TA_COMPLETE | BLK_TC_ACT(BLK_TC_COMPLETE))
#define BLK_TA_PLUG (__BLK_TA_PLUG | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_UNPLUG_IO (__BLK_TA_UNPLUG_IO | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_UNPLUG_TIMER (__BLK_TA_UNPLUG_TIMER | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_INSERT (__BLK_TA_INSERT | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_SPLIT (__BLK_TA_SPLIT)
#define BLK_TA_BOUNCE (__BLK_TA_BOUNCE)
#define BLK_TA_REMAP (__BLK_TA_REMAP | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_ABORT (__BLK_TA_ABORT | BLK_TC_ACT(BLK_TC_QUEUE))
#define BLK_TA_DRV_DATA (__BLK_TA_DRV_DATA | BLK_TC_ACT(BLK_TC_DRV_DATA))

#define BLK_TN_PROCESS (__BLK_TN_PROCESS | BLK_TC_ACT(BLK_TC_NOTIFY))
#define BLK_TN_TIMESTAMP (__BLK_TN_TIMESTAMP | BLK_TC_ACT(BLK_TC_NOTIFY))
#define BLK_TN_MESSAGE (__BLK_TN_MESSAGE | BLK_TC_ACT(BLK_TC_NOTIFY))
#define BLK_TN_MAX_MSG 128

#define BLK_IO_TRACE_MAGIC 0x65617400
#define BLK_IO_TRACE_VERSION 0x07

/*
 * One record, in host byte order (blkparse detects the order from the
 * magic), followed by pdu_len bytes of payload. Payloads that hold
 * numbers (unplug count, split sector, remap) are big-endian, as the
 * kernel writes them.
 */
struct blk_io_trace {
	uint32_t magic; /* BLK_IO_TRACE_MAGIC | VERSION */
	uint32_t sequence; /* per CPU, from 1 */
	uint64_t time; /* ns since the trace started */
	uint64_t sector;
	uint32_t bytes;
	uint32_t action; /* BLK_TA_* | category bits */
	uint32_t pid;
	uint32_t device; /* major << 20 | minor */
	uint32_t cpu;
	uint16_t error; /* -errno of a completion */
	uint16_t pdu_len;
};

/* Payload of BLK_TA_REMAP. */
struct blk_io_trace_remap {
	uint32_t device_from; /* big-endian */
	uint32_t device_to; /* big-endian */
	uint64_t sector_from; /* big-endian */
};

/* ---- control ---- */

/* Text of one event in blkparse's default format, for live mode. */
typedef void(blk_trace_live_fn)(void *arg, const char *line);

/* BLKTRACESETUP's struct blk_user_trace_setup, plus where output goes. */
struct blk_trace_setup {
	uint16_t act_mask; /* BLK_TC_* to keep; 0 = all */
	uint32_t buf_size; /* bytes per sub-buffer; 0 = 512 KiB */
	uint32_t buf_nr; /* sub-buffers per CPU; 0 = 4 */
	uint64_t start_lba; /* keep events in [start_lba, end_lba] */
	uint64_t end_lba; /* 0 = to the end of the device */
	uint32_t pid; /* keep only this issuer; 0 = all */
	const char *dir; /* per-CPU files here; NULL = no files */
	int out_fd; /* merged stream (blkparse -i -); -1 = none;
				 * the trace writes to a non-blocking
				 * duplicate, drops what its reader has no
				 * room for, and ends it at stop */
	blk_trace_live_fn *live; /* text lines; NULL = none */
	void *live_arg;
};

/* A struct blk_trace_setup with the defaults (no output anywhere). */
void blk_trace_setup_init(struct blk_trace_setup *buts);

/*
 * Set up a trace on @disk (not yet running). -EBUSY if one exists,
 * -EINVAL for a bad buffer geometry, -errno if the directory cannot be
 * written.
 */
int blk_trace_setup(struct gendisk *disk, const struct blk_trace_setup *buts);
/* Start (or restart) recording. -EINVAL if not set up or running. */
int blk_trace_start(struct gendisk *disk);
/*
 * Stop recording; everything recorded so far is written out. -EINVAL if
 * not running.
 */
int blk_trace_stop(struct gendisk *disk);
/* Stop if running, write out, close and free. -EINVAL if none. */
int blk_trace_teardown(struct gendisk *disk);
/*
 * blktrace -d DEV -w SECONDS -D DIR: setup, start, wait, stop, teardown.
 * The dropped-event count is in *@dropped (if not NULL).
 */
int blk_trace_run(struct gendisk *disk, const struct blk_trace_setup *buts,
		  unsigned int seconds, uint64_t *dropped);

/*
 * Attach @fn as the live listener of @disk's trace (NULL detaches; when
 * that returns, @fn is no longer called). -EINVAL with no trace, -EBUSY
 * if a listener is attached already.
 */
int blk_trace_live(struct gendisk *disk, blk_trace_live_fn *fn, void *arg);

/* A "trace message" record (BLK_TN_MESSAGE), as blkparse prints it. */
int blk_trace_msg(struct gendisk *disk, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Driver-private data attached to @rq's trace (BLK_TA_DRV_DATA), at most
 * 28 bytes kept.
 */
void blk_add_driver_data(struct request *rq, const void *data, size_t len);

/*
 * Parse a comma-separated list of category names as blktrace -a takes
 * them ("read,write,queue,...", "all"), or a number. -EINVAL names the
 * bad word and the valid names.
 */
int blk_trace_str2mask(const char *str, uint16_t *mask);
/* The names of @mask's bits, comma-separated. */
void blk_trace_mask2str(uint16_t mask, char *buf, size_t len);

/* ---- statistics ---- */

/* Stages of btt's latency breakdown. */
enum blk_trace_stage {
	BLK_TRACE_Q2G,
	BLK_TRACE_G2I,
	BLK_TRACE_I2D,
	BLK_TRACE_D2C,
	BLK_TRACE_Q2C,
	BLK_TRACE_NR_STAGES,
};

#define BLK_TRACE_HIST_BUCKETS 64 /* bucket i: [2^i, 2^(i+1)) ns */

struct blk_trace_stage_stats {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns;
	uint64_t max_ns;
	uint64_t hist[BLK_TRACE_HIST_BUCKETS];
};

struct blk_trace_stats {
	int state; /* 0 none, 1 set up, 2 running, 3 stopped */
	uint64_t events; /* written out */
	uint64_t dropped; /* lost because a buffer was full */
	uint16_t act_mask;
	uint64_t start_lba, end_lba;
	uint32_t pid;
	struct blk_trace_stage_stats stage[BLK_TRACE_NR_STAGES];
};

/* Counters of @disk's trace (the last one, if torn down). */
int blk_trace_get_stats(struct gendisk *disk, struct blk_trace_stats *st);
const char *blk_trace_stage_name(enum blk_trace_stage s);
/* Human table of the stages (as btt's), one line each. */
void blk_trace_stats_show(const struct blk_trace_stats *st, FILE *out);
/* The same as one JSON object. */
void blk_trace_stats_json(const struct blk_trace_stats *st, FILE *out);

#endif
