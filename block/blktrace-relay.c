// SPDX-License-Identifier: MIT
/*
 * blktrace's relay channels and their reader (the kernel's relay buffers
 * and the blktrace tool's reader threads, in one place).
 *
 * Producers write fixed-size events into a ring per thread slot (the
 * user-space "per CPU", see docs/design-notes.md): one writer per ring,
 * no atomic read-modify-write, and a full ring drops the event and counts
 * it. One consumer thread per trace wakes every BT_DRAIN_MS (or when a
 * ring is a quarter full), merges the rings by time straight from their
 * memory (each ring is in time order, having one producer) and writes
 * each event, as a struct blk_io_trace built in place in the file's
 * buffer, to the file of the CPU the event happened on, to the merged
 * stream, to the live text callback and to the stage statistics. The
 * entries read are then given back to the producer. Events younger than
 * BT_HORIZON_NS wait in their ring for the next pass, so that a producer
 * that stamped an event just before the pass and publishes it just after
 * still lands in order; one preempted for longer than that has its event
 * written with its CPU's last time (it stays in order, a little late).
 * The horizon only has to cover the few instructions between a
 * producer's clock read and its publish, so it is short; a ring more than
 * half full is emptied regardless, or small buffers would drop what
 * waits out the horizon.
 * Sequence numbers are given per CPU in time order, as blkparse checks
 * them.
 */
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "blktrace-priv.h"
#include "lib/clock.h"

#define BT_DRAIN_MS 10
#define BT_HORIZON_NS (100 * NSEC_PER_USEC)

/* ---- rings ---- */

#define BT_HUGE_PAGE (2UL << 20)

/*
 * A ring kept from an earlier trace (blktrace-pool.c), its header made
 * new; else memory starting on a 2 MiB boundary, asked to be huge pages
 * and populated at once: first-touch page faults, one per 4 KiB as the
 * producer streams through a fresh ring, would cost far more than the
 * events themselves (tens of microseconds each in a VM). Only the ring's
 * own pages are populated: rounding its end up to 2 MiB as well doubled
 * the memory of a default ring (2 MiB of entries after its header).
 */
static struct bt_ring *bt_ring_map(uint64_t entries)
{
	struct bt_ring *r = bt_ring_pool_get(entries);
	size_t len;
	char *map, *ring;

	if (r)
		return r;
	len = ALIGN_UP(sizeof(struct bt_ring) +
			       entries * sizeof(struct bt_event),
		       4096);
	map = mmap(NULL, len + BT_HUGE_PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	ring = (char *)ALIGN_UP((uintptr_t)map, BT_HUGE_PAGE);
	madvise(ring, len, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
	if (madvise(ring, len, MADV_POPULATE_WRITE))
#endif
		for (size_t off = 0; off < len; off += 4096)
			ring[off] = 0;
	((struct bt_ring *)ring)->map = map;
	((struct bt_ring *)ring)->map_len = len + BT_HUGE_PAGE;
	return (struct bt_ring *)ring;
}

/* First event of a thread slot: make its ring (rare, under a lock). */
struct bt_ring *bt_ring_alloc(struct blk_trace *bt, int slot)
{
	struct bt_ring *r;

	pthread_mutex_lock(&bt->ring_alloc_lock);
	r = atomic_load_explicit(&bt->rings[slot], memory_order_acquire);
	if (!r) {
		r = bt_ring_map(bt->ring_entries);
		if (r) {
			r->mask = bt->ring_entries - 1;
			r->kick_mask = bt->ring_entries >= 4
					       ? bt->ring_entries / 4 - 1
					       : 0;
			pthread_spin_init(&r->lock, PTHREAD_PROCESS_PRIVATE);
			for (int i = 0; i < BT_NOTED; i++)
				r->noted[i] = UINT32_MAX; /* none named yet */
			atomic_store_explicit(&bt->rings[slot], r,
					      memory_order_release);
		}
	}
	pthread_mutex_unlock(&bt->ring_alloc_lock);
	return r;
}

void bt_rings_free(struct blk_trace *bt)
{
	for (int i = 0; i < THREAD_SLOTS; i++) {
		struct bt_ring *r = atomic_load(&bt->rings[i]);

		if (r) {
			pthread_spin_destroy(&r->lock);
			bt_ring_pool_put(r);
		}
	}
}

uint64_t bt_dropped(struct blk_trace *bt)
{
	uint64_t n = 0;

	for (int i = 0; i < THREAD_SLOTS; i++) {
		struct bt_ring *r = atomic_load(&bt->rings[i]);

		if (r)
			n += atomic_load_explicit(&r->dropped,
						  memory_order_relaxed);
	}
	return n +
	       atomic_load_explicit(&bt->stream_dropped, memory_order_relaxed);
}

static void bt_emit_live(struct blk_trace *bt, const struct blk_io_trace *t,
			 const void *pdu)
{
	char line[512];

	if (bt_format_event(bt, t, pdu, bt_comm_of(bt, t->pid), line,
			    sizeof(line)) > 0)
		bt->cur_live(bt->cur_live_arg, line);
}

/* ---- output ---- */

/*
 * Each CPU's file is written from a buffer of our own, BT_OUT_BYTES at a
 * time: the record is built in place, so an event costs its header's
 * stores and a share of one write(2) (stdio would copy it once more).
 */
#define BT_OUT_BYTES (256U << 10)

struct bt_out {
	int fd;
	size_t len;
	char buf[BT_OUT_BYTES];
};

static void bt_out_flush(struct blk_trace *bt, struct bt_out *o)
{
	size_t off = 0;

	while (off < o->len) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!bt->output_error)
				bt->output_error = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	o->len = 0;
}

static int bt_open_cpu_file(struct blk_trace *bt, unsigned int cpu)
{
	char path[4096];
	struct bt_out *o;

	if (!bt->dir || bt->cpu_out[cpu])
		return 0;
	snprintf(path, sizeof(path), "%s/%s.blktrace.%u", bt->dir, bt->name,
		 cpu);
	o = malloc(sizeof(*o));
	if (!o)
		return blk_err(-ENOMEM, "blktrace: out of memory for %s",
			       path);
	o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->fd < 0) {
		free(o);
		return blk_err(-errno, "blktrace: cannot create %s: %s", path,
			       strerror(errno));
	}
	o->len = 0;
	bt->cpu_out[cpu] = o;
	return 0;
}

/* blktrace makes one file per CPU up front; blkparse stops at a gap. */
int bt_output_open(struct blk_trace *bt)
{
	unsigned int n = (unsigned int)get_nprocs_conf();
	int ret;

	if (!bt->dir)
		return 0;
	if (mkdir(bt->dir, 0755) && errno != EEXIST)
		return blk_err(-errno,
			       "blktrace: cannot create directory "
			       "%s: %s",
			       bt->dir, strerror(errno));
	for (unsigned int cpu = 0; cpu < n && cpu < BLK_MAX_CPUS; cpu++) {
		ret = bt_open_cpu_file(bt, cpu);
		if (ret)
			return ret;
	}
	return 0;
}

static void bt_output_flush(struct blk_trace *bt)
{
	for (unsigned int cpu = 0; cpu < BLK_MAX_CPUS; cpu++)
		if (bt->cpu_out[cpu] && bt->cpu_out[cpu]->len)
			bt_out_flush(bt, bt->cpu_out[cpu]);
}

void bt_output_close(struct blk_trace *bt)
{
	/* fill gaps below the highest CPU seen, for blkparse */
	for (unsigned int cpu = 0; cpu <= bt->max_cpu_seen; cpu++)
		bt_open_cpu_file(bt, cpu);
	for (unsigned int cpu = 0; cpu < BLK_MAX_CPUS; cpu++) {
		struct bt_out *o = bt->cpu_out[cpu];

		if (!o)
			continue;
		bt_out_flush(bt, o);
		if (close(o->fd) && !bt->output_error)
			bt->output_error = -errno;
		free(o);
		bt->cpu_out[cpu] = NULL;
	}
}

/*
 * Room for one record in @cpu's file buffer, or NULL when there are no
 * files (or the file could not be made: the first error is kept).
 */
static inline struct blk_io_trace *
bt_out_reserve(struct blk_trace *bt, unsigned int cpu, size_t len)
{
	struct bt_out *o = bt->cpu_out[cpu];

	if (unlikely(!o)) {
		if (!bt->dir || bt_open_cpu_file(bt, cpu))
			return NULL;
		o = bt->cpu_out[cpu];
	}
	if (unlikely(o->len + len > BT_OUT_BYTES))
		bt_out_flush(bt, o);
	o->len += len;
	return (struct blk_io_trace *)(o->buf + o->len - len);
}

static void bt_fill_record(struct blk_trace *bt, struct blk_io_trace *t,
			   const struct bt_event *ev, uint64_t time,
			   uint32_t sequence, const void *pdu)
{
	t->magic = BLK_IO_TRACE_MAGIC | BLK_IO_TRACE_VERSION;
	t->sequence = sequence;
	t->time = time;
	t->sector = ev->sector;
	t->bytes = ev->bytes;
	t->action = ev->action;
	t->pid = ev->pid;
	t->device = bt->dev;
	t->cpu = ev->cpu;
	t->error = ev->error;
	t->pdu_len = ev->pdu_len;
	if (ev->pdu_len)
		memcpy(t + 1, pdu, ev->pdu_len);
}

/* The record to the stream and the live listener, if they are there. */
static void bt_emit_others(struct blk_trace *bt, const struct blk_io_trace *t,
			   const void *pdu)
{
	if (bt->cur_stream && !bt_stream_put(bt->cur_stream, t, pdu))
		atomic_fetch_add_explicit(&bt->stream_dropped, 1,
					  memory_order_relaxed);
	if (bt->cur_live)
		bt_emit_live(bt, t, pdu);
}

/* No file to build the record in: build it on the stack. */
static noinline void
bt_emit_unfiled(struct blk_trace *bt, const struct bt_event *ev,
		uint64_t time, uint32_t sequence, const void *pdu)
{
	union {
		struct blk_io_trace t;
		char bytes[sizeof(struct blk_io_trace) + BLK_TN_MAX_MSG];
	} local;

	bt_fill_record(bt, &local.t, ev, time, sequence, pdu);
	bt_emit_others(bt, &local.t, pdu);
}

/*
 * One record with its payload to the CPU's file, the stream and the live
 * listener; built where it is written (the file buffer when there is
 * one). Inline, as it runs for every event the reader writes.
 */
static inline void bt_emit_record(struct blk_trace *bt,
				  const struct bt_event *ev, uint64_t time,
				  uint32_t sequence, const void *pdu)
{
	struct blk_io_trace *t;

	if (unlikely(ev->cpu > bt->max_cpu_seen))
		bt->max_cpu_seen = ev->cpu;
	t = bt_out_reserve(bt, ev->cpu, sizeof(*t) + ev->pdu_len);
	if (unlikely(!t)) {
		bt_emit_unfiled(bt, ev, time, sequence, pdu);
		return;
	}
	bt_fill_record(bt, t, ev, time, sequence, pdu);
	if (unlikely(bt->cur_stream || bt->cur_live))
		bt_emit_others(bt, t, pdu);
}

/* The kernel's trace_note_tsk(): name a pid before its first event. */
static void bt_emit_process_note(struct blk_trace *bt,
				 const struct bt_event *ev, uint64_t time)
{
	struct bt_event note = *ev;
	char comm[16];
	bool emit = false;

	pthread_mutex_lock(&bt->comm_lock);
	for (unsigned int i = 0; i < bt->nr_comms; i++) {
		if (bt->comms[i].pid != ev->pid)
			continue;
		if (!bt->comms[i].noted) {
			bt->comms[i].noted = true;
			memcpy(comm, bt->comms[i].comm, sizeof(comm));
			emit = true;
		}
		bt->noted[ev->pid % ARRAY_SIZE(bt->noted)] = ev->pid;
		break;
	}
	pthread_mutex_unlock(&bt->comm_lock);
	if (!emit)
		return;
	note.action = BLK_TN_PROCESS;
	note.sector = 0;
	note.bytes = 0;
	note.error = 0;
	note.pdu_len = sizeof(comm);
	bt_emit_record(bt, &note, time, 0, comm);
}

/*
 * An event, read where the producer left it in the ring. A late event (a
 * producer preempted between its clock read and its publish for longer
 * than the horizon) takes the time of its CPU's last record, so each
 * CPU's file stays in time order with its sequence numbers.
 */
static void bt_emit_event(struct blk_trace *bt, const struct bt_event *ev,
			  const void *pdu)
{
	unsigned int cpu = ev->cpu;
	struct bt_event late;

	if (unlikely(ev->time < bt->last_time[cpu])) {
		late = *ev;
		late.time = bt->last_time[cpu];
		ev = &late;
	}
	bt->last_time[cpu] = ev->time;
	if (ev->pid &&
	    unlikely(bt->noted[ev->pid % ARRAY_SIZE(bt->noted)] != ev->pid))
		bt_emit_process_note(bt, ev, ev->time);
	bt_stats_account(bt, ev);
	bt_emit_record(bt, ev, ev->time, ++bt->sequence[cpu], pdu);
}

/* ---- notes from the control path (timestamp, messages) ---- */

/*
 * Messages are longer than a ring entry and rare: they wait in a list
 * and join the next drain, stamped now.
 */
void bt_queue_note(struct blk_trace *bt, uint32_t action, uint32_t pid,
		   const void *data, unsigned int len)
{
	struct bt_event *ev;

	pthread_mutex_lock(&bt->msg_lock);
	if (bt->nr_msgs == bt->max_msgs) {
		unsigned int n = bt->max_msgs ? bt->max_msgs * 2 : 8;
		struct bt_event *m = realloc(bt->msgs, n * sizeof(*m));
		char(*tx)[BLK_TN_MAX_MSG];

		if (m)
			bt->msgs = m;
		tx = realloc(bt->msg_text, n * sizeof(*tx));
		if (tx)
			bt->msg_text = tx;
		if (!m || !tx)
			goto out;
		bt->max_msgs = n;
	}
	ev = &bt->msgs[bt->nr_msgs];
	memset(ev, 0, sizeof(*ev));
	ev->time = bt_now(bt);
	ev->action = action;
	ev->pid = pid;
	ev->cpu = raw_smp_processor_id() % BLK_MAX_CPUS;
	ev->pdu_len = (uint16_t)min_t(unsigned int, len, BLK_TN_MAX_MSG);
	memcpy(bt->msg_text[bt->nr_msgs], data, ev->pdu_len);
	bt->nr_msgs++;
out:
	pthread_mutex_unlock(&bt->msg_lock);
}

/* ---- the consumer ---- */

/*
 * Where one ring's pass stands: entries [pos, end) are to be read, those
 * stamped before @limit in this pass.
 */
struct bt_cursor {
	struct bt_ring *r;
	uint64_t pos, end;
	uint64_t limit;
};

/*
 * Give the entries read so far back to the producer, every so often (a
 * power of two: crossing a multiple of it is the signal).
 */
#define BT_TAIL_BATCH 256

static inline bool bt_before(const struct bt_event *x,
			     const struct bt_event *y)
{
	/* same time: keep per-CPU order stable enough for blkparse */
	return x->time < y->time || (x->time == y->time && x->cpu < y->cpu);
}

/*
 * The cursor whose next event is oldest and older than its limit, or -1;
 * @next is set to the next event of the others (NULL if none), which
 * the picked ring's events may run up to.
 */
static int bt_pick(struct bt_cursor *c, unsigned int *nr,
		   const struct bt_event **next)
{
	const struct bt_event *best_ev = NULL, *second = NULL;
	int best = -1;

	for (unsigned int k = 0; k < *nr;) {
		const struct bt_event *ev =
			&c[k].r->ev[c[k].pos & c[k].r->mask];

		if (c[k].pos == c[k].end || ev->time >= c[k].limit) {
			/* done for this pass: its events come in order */
			atomic_store_explicit(&c[k].r->tail, c[k].pos,
					      memory_order_release);
			c[k] = c[--*nr];
			continue;
		}
		if (!best_ev || bt_before(ev, best_ev)) {
			second = best_ev;
			best_ev = ev;
			best = (int)k;
		} else if (!second || bt_before(ev, second)) {
			second = ev;
		}
		k++;
	}
	*next = second;
	return best;
}

/* Drop the first @n queued notes, which were written. Under msg_lock. */
static void bt_notes_consumed(struct blk_trace *bt, unsigned int n)
{
	if (!n)
		return;
	memmove(bt->msgs, bt->msgs + n, (bt->nr_msgs - n) * sizeof(*bt->msgs));
	memmove(bt->msg_text, bt->msg_text + n,
		(bt->nr_msgs - n) * sizeof(*bt->msg_text));
	bt->nr_msgs -= n;
}

static void bt_emit_note(struct blk_trace *bt, const struct bt_event *ev,
			 const char *text)
{
	bt_emit_record(bt, ev, ev->time, 0, text);
}

/*
 * One pass: merge the rings (each in time order, having one producer)
 * straight from their memory into the output, oldest first, up to the
 * horizon (everything if @all); notes (queued in time order) are merged
 * in by time. What is younger than the horizon stays in its ring for the
 * next pass.
 */
static void bt_drain(struct blk_trace *bt, bool all)
{
	uint64_t now = bt_now(bt);
	uint64_t limit = all		       ? UINT64_MAX
			 : now > BT_HORIZON_NS ? now - BT_HORIZON_NS
					       : 0;
	struct bt_cursor cur[THREAD_SLOTS];
	const struct bt_event *next;
	unsigned int nr = 0, m = 0;
	int k;

	for (int s = 0; s < THREAD_SLOTS; s++) {
		struct bt_ring *r = atomic_load_explicit(&bt->rings[s],
							 memory_order_acquire);

		if (!r)
			continue;
		cur[nr].r = r;
		cur[nr].pos = atomic_load_explicit(&r->tail,
						   memory_order_relaxed);
		cur[nr].end = atomic_load_explicit(&r->head,
						   memory_order_acquire);
		/*
		 * A ring more than half full is emptied whatever its
		 * events' age: holding them would cost drops, which are
		 * worse than an event of another ring written a little
		 * late (with its CPU's last time).
		 */
		cur[nr].limit = cur[nr].end - cur[nr].pos > r->mask / 2
					? UINT64_MAX
					: limit;
		if (cur[nr].pos != cur[nr].end)
			nr++;
	}
	pthread_mutex_lock(&bt->msg_lock);
	pthread_mutex_lock(&bt->stats_lock);
	while ((k = bt_pick(cur, &nr, &next)) >= 0) {
		struct bt_cursor *c = &cur[k];
		const struct bt_event *ev;

		/* a run of this ring's events, up to the others' next */
		do {
			uint64_t pos = c->pos;

			ev = &c->r->ev[pos & c->r->mask];
			for (; m < bt->nr_msgs && bt->msgs[m].time <= ev->time;
			     m++)
				bt_emit_note(bt, &bt->msgs[m],
					     bt->msg_text[m]);
			/* a payload is in the entry after, maybe the first */
			bt_emit_event(bt, ev,
				      &c->r->ev[(pos + 1) & c->r->mask]);
			c->pos = pos + bt_event_entries(ev->pdu_len);
			if ((pos ^ c->pos) & ~(uint64_t)(BT_TAIL_BATCH - 1))
				atomic_store_explicit(&c->r->tail, c->pos,
						      memory_order_release);
			if (c->pos == c->end)
				break;
			ev = &c->r->ev[c->pos & c->r->mask];
		} while (ev->time < c->limit && (!next || bt_before(ev, next)));
	}
	for (; m < bt->nr_msgs && bt->msgs[m].time < limit; m++)
		bt_emit_note(bt, &bt->msgs[m], bt->msg_text[m]);
	pthread_mutex_unlock(&bt->stats_lock);
	bt_notes_consumed(bt, m);
	pthread_mutex_unlock(&bt->msg_lock);
	if (all)
		bt_output_flush(bt);
	if (bt->cur_stream)
		bt_stream_push(bt->cur_stream);
}

/* ---- the reader's priority ---- */

/*
 * The reader runs in the machine's idle time (SCHED_IDLE) while the
 * rings have room: then the traced load never waits for it, and on a
 * load that keeps a core busy but leaves the other one idle at times the
 * trace costs only the producers' stores. When a producer finds its ring
 * more than a quarter full at a kick, idle time is too short, and the
 * reader is raised to SCHED_OTHER until a pass leaves every ring below
 * that again, so nothing is dropped that the normal priority would have
 * kept. Control calls waiting for a pass (flush, stop) raise it too, or
 * they would wait on a starved thread.
 *
 * Leaving SCHED_IDLE needs CAP_SYS_NICE or an RLIMIT_NICE allowing nice
 * 0; without either the reader stays at normal priority throughout.
 */
static bool bt_can_leave_idle(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	struct rlimit rl;
	int nice;

	if (!syscall(SYS_capget, &hdr, data) &&
	    (data[CAP_TO_INDEX(CAP_SYS_NICE)].effective &
	     CAP_TO_MASK(CAP_SYS_NICE)))
		return true;
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	return !errno && !getrlimit(RLIMIT_NICE, &rl) &&
	       (rl.rlim_cur == RLIM_INFINITY ||
		rl.rlim_cur >= (rlim_t)(20 - nice));
}

static uint64_t bt_ring_fill(const struct bt_ring *r)
{
	return atomic_load_explicit(&r->head, memory_order_relaxed) -
	       atomic_load_explicit(&r->tail, memory_order_relaxed);
}

static bool bt_ring_behind(const struct bt_ring *r)
{
	return bt_ring_fill(r) > r->mask / 4;
}

static bool bt_reader_behind(struct blk_trace *bt)
{
	for (int s = 0; s < THREAD_SLOTS; s++) {
		struct bt_ring *r = atomic_load_explicit(&bt->rings[s],
							 memory_order_acquire);

		if (r && bt_ring_behind(r))
			return true;
	}
	return false;
}

static void bt_reader_policy(pthread_t t, int policy)
{
	struct sched_param sp = { 0 };

	pthread_setschedparam(t, policy, &sp);
}

/* Raise the reader to normal priority, if it is in idle time. */
static void bt_reader_boost(struct blk_trace *bt)
{
	if (bt->reader_may_idle && atomic_exchange(&bt->reader_idle, false))
		bt_reader_policy(bt->consumer, SCHED_OTHER);
}

/*
 * The reader, after a pass, under cons_lock: back to idle time if it has
 * caught up, normal priority if not, or if someone watches the live
 * text (a person waits for each line). The flag goes up before the
 * policy changes, so a producer finding a ring behind in between raises
 * it again; and if that raise came before the lowering, the flag says so
 * afterwards, and the reader raises itself. So the flag is down exactly
 * when the reader runs at normal priority, and staying there needs no
 * system call.
 */
static void bt_reader_rest(struct blk_trace *bt)
{
	if (!bt->reader_may_idle)
		return;
	if (bt->live || bt_reader_behind(bt)) {
		bt_reader_boost(bt); /* bt->consumer is this thread */
	} else if (!atomic_load(&bt->reader_idle)) {
		atomic_store(&bt->reader_idle, true);
		bt_reader_policy(pthread_self(), SCHED_IDLE);
		if (!atomic_load(&bt->reader_idle))
			bt_reader_policy(pthread_self(), SCHED_OTHER);
	}
}

static void *bt_consumer_fn(void *arg)
{
	struct blk_trace *bt = arg;
	struct timespec ts;
	uint64_t want;
	bool stop;

	sigset_t pipe;

	/* a stream reader that goes away ends the stream, not the process */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	pthread_setname_np(pthread_self(), "blktrace");
	pthread_mutex_lock(&bt->cons_lock);
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += BT_DRAIN_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		/* a kick while the last pass ran is not lost: no wait */
		if (!bt->cons_stop && bt->flush_req == bt->flush_done &&
		    !atomic_load_explicit(&bt->kicked, memory_order_acquire))
			pthread_cond_timedwait(&bt->cons_wake, &bt->cons_lock,
					       &ts);
		atomic_store_explicit(&bt->kicked, false, memory_order_relaxed);
		want = bt->flush_req;
		stop = bt->cons_stop;
		bt->cur_live = bt->live;
		bt->cur_live_arg = bt->live_arg;
		bt->cur_stream = bt->stream;
		pthread_mutex_unlock(&bt->cons_lock);

		bt_drain(bt, want != bt->flush_done || stop);

		pthread_mutex_lock(&bt->cons_lock);
		bt->flush_done = want;
		pthread_cond_broadcast(&bt->cons_done);
		if (stop)
			break;
		if (bt->flush_req == bt->flush_done && !bt->cons_stop)
			bt_reader_rest(bt);
	}
	pthread_mutex_unlock(&bt->cons_lock);
	return NULL;
}

int bt_consumer_start(struct blk_trace *bt)
{
	int ret;

	bt->reader_may_idle = bt_can_leave_idle();
	ret = pthread_create(&bt->consumer, NULL, bt_consumer_fn, bt);

	if (ret)
		return blk_err(-ret,
			       "blktrace: cannot start the reader "
			       "thread: %s",
			       strerror(ret));
	bt->consumer_started = true;
	return 0;
}

/* Write out everything recorded so far; returns when it is written. */
void bt_consumer_flush(struct blk_trace *bt)
{
	uint64_t want;

	pthread_mutex_lock(&bt->cons_lock);
	want = ++bt->flush_req;
	bt_reader_boost(bt);
	pthread_cond_signal(&bt->cons_wake);
	while (bt->flush_done < want)
		pthread_cond_wait(&bt->cons_done, &bt->cons_lock);
	pthread_mutex_unlock(&bt->cons_lock);
}

/*
 * Attach (@fn) or detach (NULL) the live listener. On detach, wait for a
 * whole pass of the reader: the one that may still be calling the old
 * listener has then ended.
 */
int bt_consumer_set_live(struct blk_trace *bt, blk_trace_live_fn *fn, void *arg)
{
	if (!fn) /* what was recorded so far still goes to the listener */
		bt_consumer_flush(bt);
	pthread_mutex_lock(&bt->cons_lock);
	if (fn && bt->live) {
		pthread_mutex_unlock(&bt->cons_lock);
		return -EBUSY;
	}
	bt->live = fn;
	bt->live_arg = arg;
	if (fn)
		bt_reader_boost(bt);
	pthread_mutex_unlock(&bt->cons_lock);
	if (!fn)
		bt_consumer_flush(bt);
	return 0;
}

/*
 * End the merged stream (at stop): its reader gets end of file once what
 * was recorded is written. Detached as the live listener is: after a
 * whole pass of the reader that began without it, nothing uses it.
 */
void bt_consumer_end_stream(struct blk_trace *bt)
{
	struct bt_stream *s;

	pthread_mutex_lock(&bt->cons_lock);
	s = bt->stream;
	bt->stream = NULL;
	pthread_mutex_unlock(&bt->cons_lock);
	if (!s)
		return;
	if (bt->consumer_started)
		bt_consumer_flush(bt);
	bt_stream_end(s);
}

/*
 * A producer wrote another quarter of @r, or found it full: drain now.
 * Taking no lock, the signal may come while the reader is in a pass and
 * find no waiter; the flag keeps it for the reader's next look.
 */
void bt_consumer_kick(struct blk_trace *bt, const struct bt_ring *r)
{
	atomic_store_explicit(&bt->kicked, true, memory_order_release);
	pthread_cond_signal(&bt->cons_wake);
	if (bt_ring_behind(r))
		bt_reader_boost(bt);
}

void bt_consumer_stop(struct blk_trace *bt)
{
	if (!bt->consumer_started)
		return;
	pthread_mutex_lock(&bt->cons_lock);
	bt->cons_stop = true;
	bt_reader_boost(bt);
	pthread_cond_signal(&bt->cons_wake);
	pthread_mutex_unlock(&bt->cons_lock);
	pthread_join(bt->consumer, NULL);
	bt->consumer_started = false;
}
