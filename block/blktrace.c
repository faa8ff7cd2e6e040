// SPDX-License-Identifier: MIT
/*
 * blktrace: recording events and the trace's lifetime (the kernel's
 * kernel/trace/blktrace.c). Buffers and output are in blktrace-relay.c,
 * text and statistics in blktrace-fmt.c and blktrace-stats.c, the sysfs
 * attributes in blktrace-sysfs.c.
 *
 * Lifetime. q->blk_trace is read by tracepoints on any thread without a
 * lock. Every tracepoint body runs inside a read-side section, and the
 * pointer is cleared and then every section that might have seen it is
 * waited for before the trace is freed: RCU done with per-thread section
 * counters and membarrier(2), the scheme of lib/percpu-ref.c. Because the
 * pointer is the only thing a tracepoint trusts, no sequence of control
 * calls (sysfs or ioctl-style, in any order, with device removal) can
 * leave a tracepoint looking at freed or half-built state: the seed-000
 * oops (a list entry deleted that was never added) has no counterpart,
 * since there is no global list of running traces at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "blk-trace.h"
#include "blktrace-priv.h"
#include "lib/clock.h"

/* ---- read-side sections ---- */

/*
 * Per owned thread slot: a counter that is odd while the thread is inside
 * a tracepoint. Threads of the shared slot count in bt_shared_readers.
 */
struct bt_reader {
	_Atomic unsigned long seq;
} ____cacheline_aligned;

static struct bt_reader bt_readers[THREAD_SLOTS];
static _Atomic long bt_shared_readers ____cacheline_aligned;
static bool bt_membarrier; /* set before any trace is published */
static pthread_once_t bt_once = PTHREAD_ONCE_INIT;
/* all control operations, both paths */
static pthread_mutex_t bt_ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t bt_next_gen = 1;

static void bt_init_once(void)
{
	/* percpu_ref registered this process for expedited membarrier */
	bt_membarrier = percpu_ref_fast_path();
}

static inline struct blk_trace *bt_read_lock(struct request_queue *q,
					     struct thread_slot *ts)
{
	if (likely(!ts->shared)) {
		_Atomic unsigned long *seq = &bt_readers[ts->slot].seq;
		unsigned long s =
			atomic_load_explicit(seq, memory_order_relaxed);

		if (likely(bt_membarrier)) {
			/* the drainer's membarrier orders store and load */
			atomic_store_explicit(seq, s + 1, memory_order_relaxed);
			atomic_signal_fence(memory_order_seq_cst);
		} else {
			atomic_store_explicit(seq, s + 1, memory_order_seq_cst);
		}
	} else {
		atomic_fetch_add(&bt_shared_readers, 1);
	}
	return atomic_load_explicit(&q->blk_trace, memory_order_acquire);
}

static inline void bt_read_unlock(struct thread_slot *ts)
{
	if (likely(!ts->shared)) {
		_Atomic unsigned long *seq = &bt_readers[ts->slot].seq;

		atomic_store_explicit(
			seq,
			atomic_load_explicit(seq, memory_order_relaxed) + 1,
			memory_order_release);
	} else {
		atomic_fetch_sub_explicit(&bt_shared_readers, 1,
					  memory_order_release);
	}
}

/*
 * Wait until no tracepoint can still be using a trace that was reachable
 * before this call. Either a reader's section started after the
 * membarrier (then it sees the cleared pointer), or its odd counter is
 * visible here and we wait for it to move.
 */
static void bt_synchronize(void)
{
	unsigned long snap[THREAD_SLOTS];

	if (bt_membarrier)
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0,
			0);
	smp_mb();
	for (int i = 0; i < THREAD_SLOTS; i++)
		snap[i] = atomic_load_explicit(&bt_readers[i].seq,
					       memory_order_acquire);
	for (int i = 0; i < THREAD_SLOTS; i++) {
		if (!(snap[i] & 1))
			continue;
		while (atomic_load_explicit(&bt_readers[i].seq,
					    memory_order_acquire) == snap[i])
			usleep(20);
	}
	while (atomic_load_explicit(&bt_shared_readers, memory_order_acquire))
		usleep(20);
}

/* ---- recording ---- */

uint64_t bt_now(const struct blk_trace *bt)
{
	uint64_t now = clock_ns();

	return now > bt->start_ns ? now - bt->start_ns : 0;
}

/* Remember @ioc's name for the consumer's process notes. */
static void bt_note_comm(struct blk_trace *bt, const struct io_context *ioc)
{
	struct bt_comm *c;

	pthread_mutex_lock(&bt->comm_lock);
	for (unsigned int i = 0; i < bt->nr_comms; i++)
		if (bt->comms[i].pid == (uint32_t)ioc->pid)
			goto out;
	if (bt->nr_comms == bt->max_comms) {
		unsigned int n = bt->max_comms ? bt->max_comms * 2 : 16;

		c = realloc(bt->comms, n * sizeof(*c));
		if (!c)
			goto out;
		bt->comms = c;
		bt->max_comms = n;
	}
	c = &bt->comms[bt->nr_comms++];
	c->pid = (uint32_t)ioc->pid;
	memcpy(c->comm, ioc->comm, sizeof(c->comm));
	c->comm[sizeof(c->comm) - 1] = '\0';
	c->noted = false;
out:
	pthread_mutex_unlock(&bt->comm_lock);
}

/*
 * Name @ioc's process before its first event in this trace. A ring is
 * its trace's and remembers the last few pids its producers named, in
 * its header, a line the event writes anyway: under a load that enters
 * the kernel between events, a line of thread-local names read per
 * event was another cache miss (10-25% of the event's time, timed in
 * place under the uring load of bench/blktrace.sh). On the shared slot
 * the caller holds the ring's lock, and a first sight names the pid
 * under it (once per pid and trace).
 */
static inline void bt_check_comm(struct blk_trace *bt, struct bt_ring *r,
				 const struct io_context *ioc)
{
	uint32_t pid = (uint32_t)ioc->pid;
	unsigned int i = r->noted_next % BT_NOTED;

	/* the entry made last is the one that hits, nearly always */
	if (likely(r->noted[i] == pid))
		return;
	for (i = 0; i < BT_NOTED; i++)
		if (r->noted[i] == pid)
			return;
	bt_note_comm(bt, ioc);
	i = ++r->noted_next % BT_NOTED;
	r->noted[i] = pid;
}

/*
 * This thread's ring of the trace @gen names, kept beside the block
 * layer's thread-local state: the event then touches no line of the
 * trace's ring table.
 */
static _Thread_local struct {
	uint64_t gen;
	struct bt_ring *ring;
} bt_ring_seen;

static inline struct bt_ring *bt_this_ring(struct blk_trace *bt,
					   struct thread_slot *ts)
{
	struct bt_ring *r;

	if (likely(bt_ring_seen.gen == bt->gen))
		return bt_ring_seen.ring;
	r = atomic_load_explicit(&bt->rings[ts->slot], memory_order_acquire);
	if (!r)
		r = bt_ring_alloc(bt, ts->slot);
	if (r) {
		bt_ring_seen.gen = bt->gen;
		bt_ring_seen.ring = r;
	}
	return r;
}

/* Take the next @n free entries of @r, or count a drop and return NULL. */
static inline struct bt_event *bt_reserve(struct bt_ring *r, unsigned int n)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t last = head + n - 1;

	if (unlikely(last - r->cached_tail > r->mask)) {
		r->cached_tail =
			atomic_load_explicit(&r->tail, memory_order_acquire);
		if (last - r->cached_tail > r->mask) {
			atomic_fetch_add_explicit(&r->dropped, 1,
						  memory_order_relaxed);
			return NULL;
		}
	}
	return &r->ev[head & r->mask];
}

/*
 * Publish the @n entries. Every quarter ring the reader is woken, so a
 * fast producer does not wait for its next pass to find the ring full;
 * the line four ahead is prefetched for writing, since the ring streams
 * through memory the reader has touched.
 */
static inline void bt_commit(struct blk_trace *bt, struct bt_ring *r,
			     unsigned int n)
{
	uint64_t old = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t head = old + n;

	__builtin_prefetch(&r->ev[(head + 8) & r->mask], 1);
	atomic_store_explicit(&r->head, head, memory_order_release);
	if (unlikely((old ^ head) & ~r->kick_mask))
		bt_consumer_kick(bt, r);
}

/* The kernel's act_log_check(): true if the event is filtered out. */
static inline bool bt_filtered(struct blk_trace *bt, uint32_t what,
			       sector_t sector, uint32_t pid)
{
	uint32_t mask =
		atomic_load_explicit(&bt->act_mask, memory_order_relaxed);
	uint32_t want_pid =
		atomic_load_explicit(&bt->pid, memory_order_relaxed);

	if (!((mask << BLK_TC_SHIFT) & what))
		return true;
	if (sector &&
	    (sector < atomic_load_explicit(&bt->start_lba,
					   memory_order_relaxed) ||
	     sector > atomic_load_explicit(&bt->end_lba, memory_order_relaxed)))
		return true;
	return want_pid && pid != want_pid;
}

/* Category bits from the operation and its flags, as the kernel sets. */
static inline uint32_t bt_op_categories(blk_opf_t opf)
{
	enum req_op op = bio_op_of(opf);
	uint32_t what =
		BLK_TC_ACT(op_is_write(opf) ? BLK_TC_WRITE : BLK_TC_READ);

	if (opf & REQ_SYNC)
		what |= BLK_TC_ACT(BLK_TC_SYNC);
	if (opf & REQ_RAHEAD)
		what |= BLK_TC_ACT(BLK_TC_AHEAD);
	if (opf & REQ_META)
		what |= BLK_TC_ACT(BLK_TC_META);
	if (opf & REQ_PREFLUSH)
		what |= BLK_TC_ACT(BLK_TC_FLUSH);
	if (opf & REQ_FUA)
		what |= BLK_TC_ACT(BLK_TC_FUA);
	if (op == REQ_OP_DISCARD || op == REQ_OP_SECURE_ERASE)
		what |= BLK_TC_ACT(BLK_TC_DISCARD);
	if (op == REQ_OP_FLUSH)
		what |= BLK_TC_ACT(BLK_TC_FLUSH);
	return what;
}

/*
 * Record one event (the kernel's __blk_add_trace()). @ioc is who the
 * event is charged to: the bio's issuer, else the calling thread's.
 * Called inside a read-side section.
 */
static __attribute__((always_inline)) inline void
__blk_add_trace(struct blk_trace *bt, sector_t sector, unsigned int bytes,
		blk_opf_t opf, uint32_t what, int error, const void *pdu,
		unsigned int pdu_len, const struct io_context *ioc)
{
	struct thread_slot *ts = this_thread_slot();
	struct bt_ring *r;
	struct bt_event *ev;
	unsigned int n;
	uint32_t pid;

	if (atomic_load_explicit(&bt->trace_state, memory_order_relaxed) !=
	    Blktrace_running)
		return;
	what |= bt_op_categories(opf);
	if (!ioc)
		ioc = blk_current_ioc();
	pid = ioc ? (uint32_t)ioc->pid : 0;
	if (bt_filtered(bt, what, sector, pid))
		return;
	r = bt_this_ring(bt, ts);
	if (unlikely(!r))
		return;
	if (unlikely(ts->shared))
		pthread_spin_lock(&r->lock);
	if (ioc)
		bt_check_comm(bt, r, ioc);
	if (pdu_len > BT_PDU_MAX)
		pdu_len = BT_PDU_MAX;
	n = bt_event_entries(pdu_len);
	ev = bt_reserve(r, n);
	if (likely(ev)) {
		unsigned int cpu = raw_smp_processor_id();

		/*
		 * Whole, so the pid and CPU go out as one word: storing
		 * to a bitfield alone would load the entry's line first,
		 * a miss the plain stores do not wait for.
		 */
		*ev = (struct bt_event){
			.time = bt_now(bt),
			.sector = sector,
			.bytes = bytes,
			.action = what,
			.pid = pid,
			.cpu = cpu < BLK_MAX_CPUS ? cpu : BLK_MAX_CPUS - 1,
			.error = (uint16_t)error,
			.pdu_len = (uint16_t)pdu_len,
		};
		if (pdu_len) /* the next entry, or the ring's first */
			memcpy(ev == &r->ev[r->mask] ? r->ev : ev + 1, pdu,
			       pdu_len);
		bt_commit(bt, r, n);
	} else if (!atomic_load_explicit(&bt->kicked, memory_order_relaxed)) {
		bt_consumer_kick(bt, r); /* full: the reader may be asleep */
	}
	if (unlikely(ts->shared))
		pthread_spin_unlock(&r->lock);
}

/* ---- tracepoint bodies (blk-trace.h) ---- */

void blk_add_trace_bio(struct request_queue *q, struct bio *bio, uint32_t what)
{
	struct thread_slot *ts = this_thread_slot();
	struct blk_trace *bt = bt_read_lock(q, ts);

	if (bt)
		__blk_add_trace(bt, bio->bi_iter.bi_sector,
				bio->bi_iter.bi_size, bio->bi_opf, what,
				blk_status_to_errno(bio->bi_status), NULL, 0,
				bio->bi_ioc);
	bt_read_unlock(ts);
}

void blk_add_trace_bio_queue(struct request_queue *q, struct bio *bio)
{
	if (bio_flagged(bio, BIO_TRACE_COMPLETION))
		return;
	/*
	 * First Q: only the submitter writes the bio's flags now (another
	 * thread clears BIO_CHAIN only after the bio's own completion).
	 */
	__bio_set_flag(bio, BIO_TRACE_COMPLETION);
	blk_add_trace_bio(q, bio, BLK_TA_QUEUE);
}

void blk_add_trace_sleeprq(struct request_queue *q, blk_opf_t opf)
{
	struct thread_slot *ts = this_thread_slot();
	struct blk_trace *bt = bt_read_lock(q, ts);

	if (bt)
		__blk_add_trace(bt, 0, 0, opf, BLK_TA_SLEEPRQ, 0, NULL, 0,
				NULL);
	bt_read_unlock(ts);
}

void blk_add_trace_plug(struct request_queue *q)
{
	struct thread_slot *ts = this_thread_slot();
	struct blk_trace *bt = bt_read_lock(q, ts);

	if (bt)
		__blk_add_trace(bt, 0, 0, 0, BLK_TA_PLUG, 0, NULL, 0, NULL);
	bt_read_unlock(ts);
}

void blk_add_trace_unplug(struct request_queue *q, unsigned int depth,
			  bool explicit)
{
	struct thread_slot *ts = this_thread_slot();
	struct blk_trace *bt = bt_read_lock(q, ts);
	uint64_t rpdu = bt_be64(depth);

	if (bt)
		__blk_add_trace(bt, 0, 0, 0,
				explicit ? BLK_TA_UNPLUG_IO
					 : BLK_TA_UNPLUG_TIMER,
				0, &rpdu, sizeof(rpdu), NULL);
	bt_read_unlock(ts);
}

void blk_add_trace_split(struct request_queue *q, struct bio *bio,
			 sector_t new_sector)
{
	struct thread_slot *ts = this_thread_slot();
	struct blk_trace *bt = bt_read_lock(q, ts);
	uint64_t rpdu = bt_be64(new_sector);

	if (bt)
		__blk_add_trace(bt, bio->bi_iter.bi_sector,
				bio->bi_iter.bi_size, bio->bi_opf, BLK_TA_SPLIT,
				blk_status_to_errno(bio->bi_status), &rpdu,
				sizeof(rpdu), bio->bi_ioc);
	bt_read_unlock(ts);
}

void blk_add_trace_bio_remap(struct request_queue *q, struct bio *bio,
			     uint32_t dev_from, sector_t from)
{
	struct thread_slot *ts = this_thread_slot();
	struct blk_trace *bt = bt_read_lock(q, ts);
	struct blk_io_trace_remap r;

	if (bt) {
		r.device_from = bt_be32(dev_from);
		r.device_to = bt_be32(bt->dev);
		r.sector_from = bt_be64(from);
		__blk_add_trace(bt, bio->bi_iter.bi_sector,
				bio->bi_iter.bi_size, bio->bi_opf, BLK_TA_REMAP,
				blk_status_to_errno(bio->bi_status), &r,
				sizeof(r), bio->bi_ioc);
	}
	bt_read_unlock(ts);
}

/* Passthrough requests are PC and carry no sector, as in the kernel. */
static void bt_add_rq(struct blk_trace *bt, struct request *rq, int error,
		      unsigned int nr_bytes, uint32_t what, const void *pdu,
		      unsigned int pdu_len)
{
	sector_t sector = 0;

	if (blk_rq_is_passthrough(rq)) {
		what |= BLK_TC_ACT(BLK_TC_PC);
	} else {
		what |= BLK_TC_ACT(BLK_TC_FS);
		sector = blk_rq_pos(rq);
	}
	__blk_add_trace(bt, sector, nr_bytes, rq->cmd_flags, what, error, pdu,
			pdu_len, NULL);
}

void blk_add_trace_rq(struct request *rq, blk_status_t error,
		      unsigned int nr_bytes, uint32_t what)
{
	struct thread_slot *ts = this_thread_slot();
	struct blk_trace *bt = bt_read_lock(rq->q, ts);

	if (bt)
		bt_add_rq(bt, rq, blk_status_to_errno(error), nr_bytes, what,
			  NULL, 0);
	bt_read_unlock(ts);
}

void blk_add_driver_data(struct request *rq, const void *data, size_t len)
{
	struct thread_slot *ts;
	struct blk_trace *bt;

	if (!blk_traced(rq->q))
		return;
	ts = this_thread_slot();
	bt = bt_read_lock(rq->q, ts);
	if (bt)
		bt_add_rq(bt, rq, 0, 0, BLK_TA_DRV_DATA, data,
			  (unsigned int)min_t(size_t, len, BT_PDU_MAX));
	bt_read_unlock(ts);
}

/* ---- setup and teardown ---- */

void blk_trace_setup_init(struct blk_trace_setup *buts)
{
	memset(buts, 0, sizeof(*buts));
	buts->out_fd = -1;
}

static uint32_t bt_devt(struct gendisk *disk)
{
	int major, minor;

	blk_disk_devt(disk, &major, &minor);
	return ((uint32_t)major << 20) | ((uint32_t)minor & 0xfffff);
}

static void bt_free(struct blk_trace *bt)
{
	bt_rings_free(bt);
	bt_stats_free(bt);
	free(bt->comms);
	free(bt->msgs);
	free(bt->msg_text);
	free(bt->dir);
	bt_stream_end(bt->stream);
	pthread_mutex_destroy(&bt->ring_alloc_lock);
	pthread_mutex_destroy(&bt->comm_lock);
	pthread_mutex_destroy(&bt->cons_lock);
	pthread_cond_destroy(&bt->cons_wake);
	pthread_cond_destroy(&bt->cons_done);
	pthread_mutex_destroy(&bt->msg_lock);
	pthread_mutex_destroy(&bt->stats_lock);
	free(bt);
}

/* Buffer geometry: sizes as blktrace -b (KiB there, bytes here) and -n. */
static int bt_check_geometry(const struct blk_trace_setup *buts,
			     uint64_t *entries)
{
	uint64_t size = buts->buf_size ? buts->buf_size : 512 * 1024;
	uint64_t nr = buts->buf_nr ? buts->buf_nr : 4;
	uint64_t n = 1, want;

	/* two entries at least: an event with a payload takes two */
	if (size < 2 * sizeof(struct bt_event) || size > (64U << 20) ||
	    nr > 1024)
		return blk_err(-EINVAL,
			       "blktrace: buf_size %llu buf_nr %llu: "
			       "valid buf_size is %zu..%u bytes and buf_nr "
			       "1..1024",
			       (unsigned long long)size, (unsigned long long)nr,
			       2 * sizeof(struct bt_event), 64U << 20);
	if (size * nr > (256ULL << 20))
		return blk_err(-EINVAL,
			       "blktrace: buf_size x buf_nr = %llu "
			       "bytes: at most 256 MiB per CPU",
			       (unsigned long long)(size * nr));
	want = size * nr / sizeof(struct bt_event);
	while (n * 2 <= want)
		n *= 2;
	*entries = n;
	return 0;
}

static struct blk_trace *bt_alloc(struct gendisk *disk,
				  const struct blk_trace_setup *buts,
				  uint64_t entries)
{
	/* aligned: the fields every event reads share one cache line */
	struct blk_trace *bt = aligned_alloc(SMP_CACHE_BYTES, sizeof(*bt));

	if (!bt)
		return NULL;
	memset(bt, 0, sizeof(*bt));
	pthread_mutex_init(&bt->ring_alloc_lock, NULL);
	pthread_mutex_init(&bt->comm_lock, NULL);
	pthread_mutex_init(&bt->cons_lock, NULL);
	pthread_cond_init(&bt->cons_wake, NULL);
	pthread_cond_init(&bt->cons_done, NULL);
	pthread_mutex_init(&bt->msg_lock, NULL);
	pthread_mutex_init(&bt->stats_lock, NULL);
	bt->disk = disk;
	snprintf(bt->name, sizeof(bt->name), "%s", blk_disk_name(disk));
	bt->dev = bt_devt(disk);
	bt->gen = atomic_fetch_add(&bt_next_gen, 1);
	bt->ring_entries = entries;
	bt->start_ns = clock_ns(); /* time 0, before the consumer runs */
	bt->act_mask = buts->act_mask ? buts->act_mask : BLK_TC_ALL;
	bt->start_lba = buts->start_lba;
	bt->end_lba = buts->end_lba ? buts->end_lba : UINT64_MAX;
	bt->pid = buts->pid;
	bt->live = buts->live;
	bt->live_arg = buts->live_arg;
	bt->trace_state = Blktrace_setup;
	bt->stats.state = Blktrace_setup;
	if (buts->dir && !(bt->dir = strdup(buts->dir))) {
		bt_free(bt);
		return NULL;
	}
	return bt;
}

/* Caller holds bt_ctl_lock. */
static int __blk_trace_setup(struct request_queue *q, struct gendisk *disk,
			     const struct blk_trace_setup *buts)
{
	struct blk_trace *bt;
	uint64_t entries = 0;
	int ret;

	pthread_once(&bt_once, bt_init_once);
	if (atomic_load(&q->blk_trace))
		return blk_err(-EBUSY,
			       "%s: a trace is already set up "
			       "(teardown first)",
			       blk_disk_name(disk));
	if (blk_queue_dying(q))
		return blk_err(-ENODEV, "%s: device is being removed",
			       blk_disk_name(disk));
	ret = bt_check_geometry(buts, &entries);
	if (ret)
		return ret;
	if (buts->end_lba && buts->end_lba < buts->start_lba)
		return blk_err(-EINVAL,
			       "blktrace: end_lba %llu is below "
			       "start_lba %llu",
			       (unsigned long long)buts->end_lba,
			       (unsigned long long)buts->start_lba);
	bt = bt_alloc(disk, buts, entries);
	if (!bt)
		return blk_err(-ENOMEM, "blktrace: out of memory");
	/* the stream buffers as much as one CPU's relay buffers hold */
	ret = buts->out_fd >= 0
		      ? bt_stream_open(bt->name, buts->out_fd,
				       entries * sizeof(struct bt_event),
				       &bt->stream)
		      : 0;
	if (!ret)
		ret = bt_output_open(bt);
	if (!ret)
		ret = bt_consumer_start(bt);
	if (ret) {
		bt_output_close(bt);
		bt_free(bt);
		return ret;
	}
	atomic_store_explicit(&q->blk_trace, bt, memory_order_release);
	return 0;
}

int blk_trace_setup(struct gendisk *disk, const struct blk_trace_setup *buts)
{
	int ret;

	pthread_mutex_lock(&bt_ctl_lock);
	ret = __blk_trace_setup(disk->queue, disk, buts);
	pthread_mutex_unlock(&bt_ctl_lock);
	return ret;
}

/* The kernel's trace_note_time(): wall clock at the start. */
static void bt_note_time(struct blk_trace *bt)
{
	struct timespec now;
	uint32_t words[2];

	clock_gettime(CLOCK_REALTIME, &now);
	words[0] = (uint32_t)now.tv_sec;
	words[1] = (uint32_t)now.tv_nsec;
	bt_queue_note(bt, BLK_TN_TIMESTAMP, 0, words, sizeof(words));
}

/* Caller holds bt_ctl_lock. */
static int __blk_trace_start(struct request_queue *q, const char *name)
{
	struct blk_trace *bt = atomic_load(&q->blk_trace);
	int state;

	if (!bt)
		return blk_err(-EINVAL, "%s: no trace set up (setup first)",
			       name);
	state = atomic_load(&bt->trace_state);
	if (state == Blktrace_running)
		return blk_err(-EINVAL, "%s: the trace is already running",
			       name);
	bt_note_time(bt);
	atomic_store(&bt->trace_state, Blktrace_running);
	return 0;
}

int blk_trace_start(struct gendisk *disk)
{
	int ret;

	pthread_mutex_lock(&bt_ctl_lock);
	ret = __blk_trace_start(disk->queue, blk_disk_name(disk));
	pthread_mutex_unlock(&bt_ctl_lock);
	return ret;
}

/* Stop recording and write out all that was recorded. */
static void bt_stop_and_flush(struct blk_trace *bt)
{
	uint64_t dropped;

	atomic_store(&bt->trace_state, Blktrace_stopped);
	bt_synchronize(); /* no tracepoint is still writing */
	bt_consumer_flush(bt);
	bt_consumer_end_stream(bt); /* its reader sees end of file */
	dropped = bt_dropped(bt);
	if (dropped)
		pr_warn("blktrace %s: You have %llu dropped events", bt->name,
			(unsigned long long)dropped);
}

static int __blk_trace_stop(struct request_queue *q, const char *name)
{
	struct blk_trace *bt = atomic_load(&q->blk_trace);

	if (!bt || atomic_load(&bt->trace_state) != Blktrace_running)
		return blk_err(-EINVAL, "%s: no trace running", name);
	bt_stop_and_flush(bt);
	return 0;
}

int blk_trace_stop(struct gendisk *disk)
{
	int ret;

	pthread_mutex_lock(&bt_ctl_lock);
	ret = __blk_trace_stop(disk->queue, blk_disk_name(disk));
	pthread_mutex_unlock(&bt_ctl_lock);
	return ret;
}

/* Keep the final counters for blk_trace_get_stats() after teardown. */
static void bt_keep_stats(struct request_queue *q, struct blk_trace *bt)
{
	if (!q->blk_trace_last)
		q->blk_trace_last = malloc(sizeof(*q->blk_trace_last));
	if (!q->blk_trace_last)
		return;
	pthread_mutex_lock(&bt->stats_lock);
	*q->blk_trace_last = bt->stats;
	pthread_mutex_unlock(&bt->stats_lock);
	q->blk_trace_last->dropped = bt_dropped(bt);
	q->blk_trace_last->state = Blktrace_none;
}

/*
 * Caller holds bt_ctl_lock. Unpublish, wait out every tracepoint that
 * may hold the pointer, then write out and free: safe in any state.
 */
static int __blk_trace_teardown(struct request_queue *q)
{
	struct blk_trace *bt = atomic_exchange(&q->blk_trace, NULL);

	if (!bt)
		return -EINVAL;
	if (atomic_load(&bt->trace_state) == Blktrace_running)
		bt_stop_and_flush(bt);
	else
		bt_synchronize();
	bt_consumer_stop(bt);
	bt_output_close(bt);
	bt_keep_stats(q, bt);
	bt_free(bt);
	return 0;
}

int blk_trace_teardown(struct gendisk *disk)
{
	int ret;

	pthread_mutex_lock(&bt_ctl_lock);
	ret = __blk_trace_teardown(disk->queue);
	pthread_mutex_unlock(&bt_ctl_lock);
	if (ret)
		return blk_err(ret, "%s: no trace set up", blk_disk_name(disk));
	return 0;
}

void blk_trace_shutdown(struct request_queue *q)
{
	pthread_mutex_lock(&bt_ctl_lock);
	__blk_trace_teardown(q);
	pthread_mutex_unlock(&bt_ctl_lock);
}

void blk_trace_release(struct request_queue *q)
{
	free(q->blk_trace_last);
	q->blk_trace_last = NULL;
}

int blk_trace_run(struct gendisk *disk, const struct blk_trace_setup *buts,
		  unsigned int seconds, uint64_t *dropped)
{
	struct timespec ts = { .tv_sec = seconds };
	struct blk_trace_stats st;
	int ret;

	ret = blk_trace_setup(disk, buts);
	if (ret)
		return ret;
	ret = blk_trace_start(disk);
	if (ret) {
		blk_trace_teardown(disk);
		return ret;
	}
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	blk_trace_teardown(disk);
	ret = blk_trace_get_stats(disk, &st);
	if (!ret && dropped)
		*dropped = st.dropped;
	return ret;
}

int blk_trace_msg(struct gendisk *disk, const char *fmt, ...)
{
	struct request_queue *q = disk->queue;
	char buf[BLK_TN_MAX_MSG];
	struct blk_trace *bt;
	va_list ap;
	int n, ret = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return blk_err(-EINVAL, "blktrace: bad message format");
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	pthread_mutex_lock(&bt_ctl_lock);
	bt = atomic_load(&q->blk_trace);
	if (!bt || atomic_load(&bt->trace_state) != Blktrace_running)
		ret = blk_err(-EINVAL, "%s: no trace running",
			      blk_disk_name(disk));
	else
		bt_queue_note(bt, BLK_TN_MESSAGE, (uint32_t)gettid(), buf,
			      (unsigned int)n);
	pthread_mutex_unlock(&bt_ctl_lock);
	return ret;
}

int blk_trace_live(struct gendisk *disk, blk_trace_live_fn *fn, void *arg)
{
	struct blk_trace *bt;
	int ret;

	pthread_mutex_lock(&bt_ctl_lock);
	bt = atomic_load(&disk->queue->blk_trace);
	if (!bt)
		ret = blk_err(-EINVAL, "%s: no trace set up",
			      blk_disk_name(disk));
	else if ((ret = bt_consumer_set_live(bt, fn, arg)))
		ret = blk_err(ret, "%s: a live listener is attached already",
			      blk_disk_name(disk));
	pthread_mutex_unlock(&bt_ctl_lock);
	return ret;
}

int blk_trace_get_stats(struct gendisk *disk, struct blk_trace_stats *st)
{
	struct request_queue *q = disk->queue;
	struct blk_trace *bt;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&bt_ctl_lock);
	bt = atomic_load(&q->blk_trace);
	if (bt) {
		pthread_mutex_lock(&bt->stats_lock);
		*st = bt->stats;
		pthread_mutex_unlock(&bt->stats_lock);
		st->state = atomic_load(&bt->trace_state);
		st->dropped = bt_dropped(bt);
		st->act_mask = atomic_load(&bt->act_mask);
		st->start_lba = atomic_load(&bt->start_lba);
		st->end_lba = atomic_load(&bt->end_lba);
		st->pid = atomic_load(&bt->pid);
	} else if (q->blk_trace_last) {
		*st = *q->blk_trace_last;
	} else {
		ret = blk_err(-ENOENT, "%s: never traced", blk_disk_name(disk));
	}
	pthread_mutex_unlock(&bt_ctl_lock);
	return ret;
}

/* ---- for blktrace-sysfs.c: the same lock and operations ---- */

void bt_ctl_lock_take(void)
{
	pthread_mutex_lock(&bt_ctl_lock);
}

void bt_ctl_lock_drop(void)
{
	pthread_mutex_unlock(&bt_ctl_lock);
}

int bt_sysfs_setup(struct request_queue *q, bool start)
{
	struct blk_trace_setup buts;
	int ret;

	blk_trace_setup_init(&buts);
	ret = __blk_trace_setup(q, q->disk, &buts);
	if (!ret && start)
		ret = __blk_trace_start(q, blk_disk_name(q->disk));
	return ret;
}

int bt_sysfs_remove(struct request_queue *q)
{
	return __blk_trace_teardown(q);
}
