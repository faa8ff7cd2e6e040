// SPDX-License-Identifier: MIT
/*
 * blktrace's relay channels and their reader (the kernel's relay buffers
 * and the blktrace tool's reader threads, in one place).
 *
 * Producers write fixed-size events into a ring per thread slot (the
 * user-space "per CPU", see docs/design-notes.md): one writer per ring,
 * no atomic read-modify-write, and a full ring drops the event and counts
 * it. One consumer thread per trace drains the rings every
 * BT_DRAIN_MS, sorts what it drained by time, and writes each event, as
 * a struct blk_io_trace, to the file of the CPU the event happened on,
 * to the merged stream, to the live text callback and to the stage
 * statistics. Events younger than BT_HORIZON_NS wait for the next pass,
 * so that a producer preempted between stamping and publishing an event
 * still lands in order; sequence numbers are given per CPU in time order,
 * as blkparse checks them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "blktrace-priv.h"
#include "lib/clock.h"

#define BT_DRAIN_MS 10
#define BT_HORIZON_NS (5 * NSEC_PER_MSEC)

/* ---- rings ---- */

#define BT_HUGE_PAGE (2UL << 20)

/*
 * Ring memory is mapped on 2 MiB boundaries, asked to be huge pages and
 * populated at once: first-touch page faults, one per 4 KiB as the
 * producer streams through a fresh ring, would cost far more than the
 * events themselves (tens of microseconds each in a VM).
 */
static struct bt_ring *bt_ring_map(uint64_t entries)
{
	size_t len = ALIGN_UP(sizeof(struct bt_ring) +
				      entries * sizeof(struct bt_event),
			      BT_HUGE_PAGE);
	char *map, *ring;

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
			munmap(r->map, r->map_len);
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

/* ---- output ---- */

static int bt_open_cpu_file(struct blk_trace *bt, unsigned int cpu)
{
	char path[4096];
	FILE *f;

	if (!bt->dir || bt->cpu_files[cpu])
		return 0;
	snprintf(path, sizeof(path), "%s/%s.blktrace.%u", bt->dir, bt->name,
		 cpu);
	f = fopen(path, "w");
	if (!f)
		return blk_err(-errno, "blktrace: cannot create %s: %s", path,
			       strerror(errno));
	setvbuf(f, NULL, _IOFBF, 1 << 16);
	bt->cpu_files[cpu] = f;
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

void bt_output_close(struct blk_trace *bt)
{
	/* fill gaps below the highest CPU seen, for blkparse */
	for (unsigned int cpu = 0; cpu <= bt->max_cpu_seen; cpu++)
		bt_open_cpu_file(bt, cpu);
	for (unsigned int cpu = 0; cpu < BLK_MAX_CPUS; cpu++) {
		if (!bt->cpu_files[cpu])
			continue;
		if (fclose(bt->cpu_files[cpu]) && !bt->output_error)
			bt->output_error = -errno;
		bt->cpu_files[cpu] = NULL;
	}
}

/* One record with its payload to the CPU's file and the stream. */
static void bt_emit_record(struct blk_trace *bt, const struct blk_io_trace *t,
			   const void *pdu)
{
	char buf[sizeof(*t) + BLK_TN_MAX_MSG];
	size_t len = sizeof(*t) + t->pdu_len;
	FILE *f;

	memcpy(buf, t, sizeof(*t));
	memcpy(buf + sizeof(*t), pdu, t->pdu_len);
	if (bt->dir && !bt_open_cpu_file(bt, t->cpu)) {
		f = bt->cpu_files[t->cpu];
		if (fwrite(buf, 1, len, f) != len && !bt->output_error)
			bt->output_error = -EIO;
	}
	if (bt->cur_stream && !bt_stream_put(bt->cur_stream, t, pdu))
		atomic_fetch_add_explicit(&bt->stream_dropped, 1,
					  memory_order_relaxed);
	if (t->cpu > bt->max_cpu_seen)
		bt->max_cpu_seen = t->cpu;
}

static void bt_fill_header(struct blk_trace *bt, struct blk_io_trace *t,
			   const struct bt_event *ev, uint32_t sequence)
{
	t->magic = BLK_IO_TRACE_MAGIC | BLK_IO_TRACE_VERSION;
	t->sequence = sequence;
	t->time = ev->time;
	t->sector = ev->sector;
	t->bytes = ev->bytes;
	t->action = ev->action;
	t->pid = ev->pid;
	t->device = bt->dev;
	t->cpu = ev->cpu;
	t->error = ev->error;
	t->pdu_len = ev->pdu_len;
}

/* The kernel's trace_note_tsk(): name a pid before its first event. */
static void bt_emit_process_note(struct blk_trace *bt,
				 const struct bt_event *ev)
{
	struct blk_io_trace t;
	struct bt_event note = *ev;
	char comm[16];
	bool emit = false;

	if (bt->noted[ev->pid % ARRAY_SIZE(bt->noted)] == ev->pid)
		return;
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
	bt_fill_header(bt, &t, &note, 0);
	bt_emit_record(bt, &t, comm);
}

static void bt_emit_live(struct blk_trace *bt, const struct blk_io_trace *t,
			 const void *pdu)
{
	char line[512];

	if (bt->cur_live && bt_format_event(bt, t, pdu, bt_comm_of(bt, t->pid),
					    line, sizeof(line)) > 0)
		bt->cur_live(bt->cur_live_arg, line);
}

static void bt_emit_event(struct blk_trace *bt, struct bt_event *ev)
{
	struct blk_io_trace t;
	uint32_t seq = 0;

	if (!(ev->action & BLK_TC_ACT(BLK_TC_NOTIFY))) {
		/* a late event keeps its CPU's file in time order */
		if (ev->time < bt->last_time[ev->cpu])
			ev->time = bt->last_time[ev->cpu];
		bt->last_time[ev->cpu] = ev->time;
		seq = ++bt->sequence[ev->cpu];
		if (ev->pid)
			bt_emit_process_note(bt, ev);
		bt_stats_account(bt, ev);
	}
	bt_fill_header(bt, &t, ev, seq);
	bt_emit_record(bt, &t, ev->pdu);
	bt_emit_live(bt, &t, ev->pdu);
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

static void bt_emit_note(struct blk_trace *bt, const struct bt_event *ev,
			 const char *text)
{
	struct blk_io_trace t;

	bt_fill_header(bt, &t, ev, 0);
	bt_emit_record(bt, &t, text);
	bt_emit_live(bt, &t, text);
}

/* ---- the consumer ---- */

static int bt_pend_reserve(struct blk_trace *bt, size_t more)
{
	size_t n = bt->max_pend ? bt->max_pend : 4096;
	struct bt_event *p;

	if (bt->nr_pend + more <= bt->max_pend)
		return 0;
	while (n < bt->nr_pend + more)
		n *= 2;
	p = realloc(bt->pend, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	bt->pend = p;
	bt->max_pend = n;
	return 0;
}

/* Move what @r holds to the pending array. */
static void bt_drain_ring(struct blk_trace *bt, struct bt_ring *r)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t n = head - tail;

	if (!n || bt_pend_reserve(bt, n))
		return;
	for (; tail != head; tail++)
		bt->pend[bt->nr_pend++] = r->ev[tail & r->mask];
	atomic_store_explicit(&r->tail, tail, memory_order_release);
}

static int bt_cmp_time(const void *a, const void *b)
{
	const struct bt_event *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	/* same time: keep per-CPU order stable enough for blkparse */
	return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

/*
 * pend[] holds sorted runs: what the last pass kept, then what each ring
 * gave (a ring has one producer, so its events come in time order).
 * Merge them into one ordered run: cheaper than sorting it all again.
 */
static void bt_merge_runs(struct blk_trace *bt, size_t *runs,
			  unsigned int nr_runs)
{
	size_t pos[THREAD_SLOTS + 1], out = 0;
	struct bt_event *m;

	if (nr_runs < 2)
		return;
	if (bt->max_merge < bt->max_pend) {
		m = realloc(bt->merge, bt->max_pend * sizeof(*m));
		if (!m) {
			qsort(bt->pend, bt->nr_pend, sizeof(*bt->pend),
			      bt_cmp_time);
			return;
		}
		bt->merge = m;
		bt->max_merge = bt->max_pend;
	}
	for (unsigned int k = 0; k < nr_runs; k++)
		pos[k] = runs[k];
	while (out < bt->nr_pend) {
		int best = -1;

		for (unsigned int k = 0; k < nr_runs; k++)
			if (pos[k] < runs[k + 1] &&
			    (best < 0 || bt_cmp_time(&bt->pend[pos[k]],
						     &bt->pend[pos[best]]) < 0))
				best = (int)k;
		bt->merge[out++] = bt->pend[pos[best]++];
	}
	m = bt->pend;
	bt->pend = bt->merge;
	bt->merge = m;
	out = bt->max_pend;
	bt->max_pend = bt->max_merge;
	bt->max_merge = out;
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

/*
 * One pass: drain every ring, write out in time order everything older
 * than the horizon (everything if @all), keep the rest. Notes (queued in
 * time order) are merged in by time.
 */
static void bt_drain(struct blk_trace *bt, bool all)
{
	uint64_t now = bt_now(bt);
	uint64_t limit = all		       ? UINT64_MAX
			 : now > BT_HORIZON_NS ? now - BT_HORIZON_NS
					       : 0;
	unsigned int m = 0, nr_runs = 0;
	size_t i, kept = 0, runs[THREAD_SLOTS + 2];

	runs[nr_runs++] = 0; /* what the last pass kept */
	for (int s = 0; s < THREAD_SLOTS; s++) {
		struct bt_ring *r = atomic_load_explicit(&bt->rings[s],
							 memory_order_acquire);
		size_t before = bt->nr_pend;

		if (!r)
			continue;
		bt_drain_ring(bt, r);
		if (bt->nr_pend > before)
			runs[nr_runs++] = before;
	}
	runs[nr_runs] = bt->nr_pend;
	bt_merge_runs(bt, runs, nr_runs);
	pthread_mutex_lock(&bt->msg_lock);
	pthread_mutex_lock(&bt->stats_lock);
	for (i = 0; i < bt->nr_pend && bt->pend[i].time < limit; i++) {
		for (; m < bt->nr_msgs && bt->msgs[m].time <= bt->pend[i].time;
		     m++)
			bt_emit_note(bt, &bt->msgs[m], bt->msg_text[m]);
		bt_emit_event(bt, &bt->pend[i]);
	}
	for (; m < bt->nr_msgs && bt->msgs[m].time < limit; m++)
		bt_emit_note(bt, &bt->msgs[m], bt->msg_text[m]);
	pthread_mutex_unlock(&bt->stats_lock);
	bt_notes_consumed(bt, m);
	pthread_mutex_unlock(&bt->msg_lock);
	for (; i < bt->nr_pend; i++)
		bt->pend[kept++] = bt->pend[i];
	bt->nr_pend = kept;
	for (unsigned int cpu = 0; all && cpu < BLK_MAX_CPUS; cpu++)
		if (bt->cpu_files[cpu])
			fflush(bt->cpu_files[cpu]);
	if (bt->cur_stream)
		bt_stream_push(bt->cur_stream);
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
		if (!bt->cons_stop && bt->flush_req == bt->flush_done)
			pthread_cond_timedwait(&bt->cons_wake, &bt->cons_lock,
					       &ts);
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
	}
	pthread_mutex_unlock(&bt->cons_lock);
	return NULL;
}

int bt_consumer_start(struct blk_trace *bt)
{
	int ret = pthread_create(&bt->consumer, NULL, bt_consumer_fn, bt);

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

/* A producer filled a quarter ring: drain now (lock-free; may be lost). */
void bt_consumer_kick(struct blk_trace *bt)
{
	pthread_cond_signal(&bt->cons_wake);
}

void bt_consumer_stop(struct blk_trace *bt)
{
	if (!bt->consumer_started)
		return;
	pthread_mutex_lock(&bt->cons_lock);
	bt->cons_stop = true;
	pthread_cond_signal(&bt->cons_wake);
	pthread_mutex_unlock(&bt->cons_lock);
	pthread_join(bt->consumer, NULL);
	bt->consumer_started = false;
}
