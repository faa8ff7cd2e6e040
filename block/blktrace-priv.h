/* SPDX-License-Identifier: MIT */
/*
 * Inside blktrace: the trace object shared by blktrace.c (control,
 * lifetime, recording), blktrace-relay.c (buffers, consumer, output) and
 * blktrace-fmt.c (blkparse text, stage statistics).
 */
#ifndef BLKSTACK_BLOCK_BLKTRACE_PRIV_H
#define BLKSTACK_BLOCK_BLKTRACE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <blkstack/blktrace.h>

#include "blk.h"
#include "lib/rbtree.h"

enum {
	Blktrace_none,
	Blktrace_setup,
	Blktrace_running,
	Blktrace_stopped,
};

/* Payload an event carries at most: one ring entry's worth. */
#define BT_PDU_MAX 32
/* Pids a ring remembers having named (process notes). */
#define BT_NOTED 4

/*
 * One event as a producer records it: 32 bytes, one ring entry, two to
 * a cache line. A payload (an unplug's count, a split's sector, a
 * remap) takes the entry after it, so the common event writes half a
 * line and the reader reads half a line. pid_max is at most 2^22 and
 * the CPU is below BLK_MAX_CPUS (2^10): the two share a word.
 */
struct bt_event {
	uint64_t time; /* ns since trace start */
	uint64_t sector;
	uint32_t bytes;
	uint32_t action;
	uint32_t pid : 22;
	uint32_t cpu : 10;
	uint16_t error;
	uint16_t pdu_len; /* bytes in the entries that follow */
};

_Static_assert(sizeof(struct bt_event) == 32, "a ring entry is 32 bytes");
_Static_assert(BLK_MAX_CPUS <= 1 << 10, "the CPU has 10 bits");

/* Ring entries an event with @pdu_len bytes of payload takes. */
static inline unsigned int bt_event_entries(unsigned int pdu_len)
{
	return 1 + (pdu_len + sizeof(struct bt_event) - 1) /
			   sizeof(struct bt_event);
}

/*
 * A relay buffer: a ring of events with one producer (the thread owning
 * the slot; the shared slot's producers take ->lock) and one consumer.
 * The producer keeps the consumer's position cached so that it touches
 * the consumer's cache line only when the ring looks full.
 */
struct bt_ring {
	struct {
		_Atomic uint64_t head; /* next entry to write */
		uint64_t cached_tail;
		_Atomic uint64_t dropped;
		pthread_spinlock_t lock; /* shared slot only */
		unsigned int noted_next; /* noted[] entry made last */
		uint32_t noted[BT_NOTED]; /* pids its producers named lately */
	} ____cacheline_aligned;
	_Atomic uint64_t tail ____cacheline_aligned; /* next to read */
	uint64_t mask;
	uint64_t kick_mask; /* wake the reader every quarter ring */
	void *map; /* the mapping holding this ring */
	size_t map_len;
	struct bt_event ev[];
};

/* Pending I/O in the consumer's btt-style matcher (blktrace-fmt.c). */
struct bt_io;
/* A CPU's file and its buffer (blktrace-relay.c). */
struct bt_out;
/* The merged stream's buffer and descriptor (blktrace-stream.c). */
struct bt_stream;

struct bt_comm {
	uint32_t pid;
	char comm[16];
	bool noted; /* process notify written */
};

struct blk_trace {
	/* what every event reads: one cache line (bt_alloc aligns it) */
	_Atomic int trace_state ____cacheline_aligned;
	/* filters: the sysfs path may change them while running */
	_Atomic uint16_t act_mask;
	_Atomic uint64_t start_lba;
	_Atomic uint64_t end_lba;
	_Atomic uint32_t pid;
	uint32_t dev; /* major << 20 | minor */
	uint64_t gen; /* unique per trace, for caches */
	uint64_t start_ns; /* clock_ns() at setup: time 0 */
	struct gendisk *disk;
	char name[32];
	uint64_t ring_entries;
	struct bt_ring *_Atomic rings[THREAD_SLOTS];
	pthread_mutex_t ring_alloc_lock;

	/* process names, filled by producers on first sight of a pid */
	pthread_mutex_t comm_lock;
	struct bt_comm *comms;
	unsigned int nr_comms, max_comms;

	/* consumer */
	pthread_t consumer;
	bool consumer_started;
	pthread_mutex_t cons_lock;
	pthread_cond_t cons_wake;
	pthread_cond_t cons_done; /* a drain pass finished */
	bool cons_stop;
	uint64_t flush_req, flush_done; /* drain-everything requests */
	_Atomic bool kicked; /* a producer asked for a pass */
	bool reader_may_idle; /* it can leave SCHED_IDLE again */
	_Atomic bool reader_idle; /* it runs in idle time (SCHED_IDLE) */
	uint64_t last_time[BLK_MAX_CPUS]; /* per-CPU order kept */
	uint32_t noted[64]; /* pids named already, by pid % 64 */
	uint32_t sequence[BLK_MAX_CPUS];
	unsigned int max_cpu_seen;

	/* output */
	char *dir;
	struct bt_out *cpu_out[BLK_MAX_CPUS]; /* per-CPU files */
	struct bt_stream *stream; /* merged stream, under cons_lock */
	struct bt_stream *cur_stream; /* the reader's copy for one pass */
	/* records the stream's reader had no room for */
	_Atomic uint64_t stream_dropped;
	blk_trace_live_fn *live; /* listener, under cons_lock */
	void *live_arg;
	blk_trace_live_fn *cur_live; /* the reader's copy for one pass */
	void *cur_live_arg;

	/* messages from the control path, written by the consumer */
	pthread_mutex_t msg_lock;
	struct bt_event *msgs;
	char (*msg_text)[BLK_TN_MAX_MSG];
	unsigned int nr_msgs, max_msgs;

	/* statistics (consumer only writes; readers take stats_lock) */
	pthread_mutex_t stats_lock;
	struct blk_trace_stats stats;
	struct rb_root io_tree; /* queued I/Os by start sector */
	struct bt_io *io_free;
	int output_error; /* first write error, -errno */
};

/* blktrace.c */
uint64_t bt_now(const struct blk_trace *bt);
/* the control lock both paths take, and the sysfs path's operations */
void bt_ctl_lock_take(void);
void bt_ctl_lock_drop(void);
int bt_sysfs_setup(struct request_queue *q, bool start);
int bt_sysfs_remove(struct request_queue *q);

/* blktrace-relay.c */
struct bt_ring *bt_ring_alloc(struct blk_trace *bt, int slot);
void bt_rings_free(struct blk_trace *bt);
int bt_consumer_start(struct blk_trace *bt);
void bt_consumer_stop(struct blk_trace *bt);
void bt_consumer_flush(struct blk_trace *bt);
void bt_consumer_kick(struct blk_trace *bt, const struct bt_ring *r);
int bt_consumer_set_live(struct blk_trace *bt, blk_trace_live_fn *fn,
			 void *arg);
uint64_t bt_dropped(struct blk_trace *bt);
int bt_output_open(struct blk_trace *bt);
void bt_output_close(struct blk_trace *bt);
void bt_queue_note(struct blk_trace *bt, uint32_t action, uint32_t pid,
		   const void *data, unsigned int len);

/* blktrace-pool.c: rings kept between traces, at most BT_POOL_RINGS */
#define BT_POOL_RINGS 8
struct bt_ring *bt_ring_pool_get(uint64_t entries);
void bt_ring_pool_put(struct bt_ring *r);
void bt_ring_pool_reap(void);
unsigned int bt_ring_pool_count(void);
void bt_ring_pool_set_keep(unsigned long msecs); /* tests; 0: default */

/* blktrace-stream.c */
int bt_stream_open(const char *name, int fd, size_t bytes,
		   struct bt_stream **out);
bool bt_stream_put(struct bt_stream *s, const struct blk_io_trace *t,
		   const void *pdu);
void bt_stream_push(struct bt_stream *s);
void bt_stream_end(struct bt_stream *s);
void bt_consumer_end_stream(struct blk_trace *bt);

/* blktrace-fmt.c */
int bt_format_event(const struct blk_trace *bt, const struct blk_io_trace *t,
		    const void *pdu, const char *comm, char *buf, size_t len);
void bt_stats_account(struct blk_trace *bt, const struct bt_event *ev);
void bt_stats_free(struct blk_trace *bt);
const char *bt_comm_of(struct blk_trace *bt, uint32_t pid);

/* Payload numbers are big-endian (the kernel's cpu_to_be64()). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint64_t bt_be64(uint64_t v)
{
	return __builtin_bswap64(v);
}

static inline uint32_t bt_be32(uint32_t v)
{
	return __builtin_bswap32(v);
}
#else
static inline uint64_t bt_be64(uint64_t v)
{
	return v;
}

static inline uint32_t bt_be32(uint32_t v)
{
	return v;
}
#endif

#endif
