// SPDX-License-Identifier: MIT
/*
 * blkbench - a load generator for blkstack devices, with fio's option names,
 * meanings and output formats (normal, json, json+).
 *
 * The device is created in this process from --filename=DRIVER:PARAMS. Each
 * job is a thread that keeps --iodepth bios in flight. A completion may run
 * inline inside submit_bio() (null irqmode=0) or on a driver thread
 * (irqmode=1/2); either way bb_end_io() only timestamps the I/O and pushes it
 * on a lock-free list. The job thread reaps, accounts and resubmits, so
 * nothing is ever submitted from a completion and inline completion cannot
 * recurse.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <blkstack/blkdev.h>
#include <blkstack/bio.h>

#include "lib/bench-job.h"
#include "lib/bench-report.h"
#include "lib/clock.h"
#include "lib/compiler.h"
#include "lib/crc32c.h"
#include "lib/fio-stat.h"
#include "lib/histogram.h"
#include "lib/jobfile.h"
#include "lib/prandom.h"
#include "lib/randperm.h"
#include "lib/verify.h"

#define BB_SPIN		256		/* polls of the done list before sleeping */
/*
 * The per-I/O steps are used by the paced loop too; inline them in both,
 * as they were when the unpaced loop was their only caller.
 */
#define bb_hot		static inline __attribute__((always_inline))

/*
 * The jobs' options, one per job section; @opt is the first, whose
 * device and run-wide options (filename, ioscheduler, queue, output
 * format, eta) all jobs share.
 */
static struct bb_opts *bb_opts;
static unsigned int bb_nr_opts;
static struct bb_opts opt;
static unsigned int bb_nr_jobs;		/* threads, over all job sections */
static struct gendisk *bb_disk;
static char bb_devname[48];
static atomic_int bb_stop;		/* SIGINT: finish early, still report */
static atomic_uint bb_running;
static pthread_barrier_t bb_barrier;

struct bb_job;

/* rate_iops and thinktime: when the job may issue next. */
struct bb_pace {
	bool on;			/* either is set: the paced loop runs */
	uint64_t interval_ns[DDIR_NR];	/* 1 s / rate_iops, 0 = no cap */
	uint64_t next_ns[DDIR_NR];	/* the next I/O's earliest issue */
	int ddir;			/* picked but not yet issued, or -1 */
	unsigned int since_think;	/* I/Os issued since the last think */
	uint64_t think_until;		/* 0: not thinking */
};

/* One I/O slot of a job; iodepth of them cycle between free and in flight. */
struct bb_io {
	struct bb_io *next;		/* free list or done list */
	struct bb_job *job;
	struct bio *bio;		/* in flight on the bio path; we hold it */
	void *buf;
	uint64_t off, issue_ns, done_ns;
	int ddir, err;
};

struct bb_job {
	/* written by completing threads: keep it off the job's hot lines */
	_Alignas(64) struct {
		struct bb_io *_Atomic done;
		atomic_int waiting;
		atomic_uint wake_seq;
	} cq;
	_Alignas(64) const struct bb_opts *o;	/* its job section */
	unsigned int id;		/* thread of the section: 0..numjobs-1 */
	unsigned int nr;		/* over all sections */
	pthread_t thread;
	uint64_t start, size, nblocks;	/* region [start, start + size) */
	uint64_t rand;			/* xorshift64* state */
	struct randperm perm;		/* random map: this pass's order */
	uint64_t rpos;			/* blocks of this pass done */
	uint64_t seq[DDIR_NR];		/* next sequential block per direction */
	uint64_t issued;		/* bytes issued in the workload phase */
	unsigned int inflight;
	struct bb_io *ios, *free;
	uint64_t *written;		/* verify: blocks written, one bit each */
	uint64_t vcursor, vblocks, vbad;
	bool verifying, stopping;
	struct io_context *ioc;		/* who the schedulers see issuing */
	uint8_t *patbuf;		/* one block of the verify pattern */
	struct bb_pace pace;		/* rate_iops and thinktime */
	uint64_t t_start, t_end;
	uint64_t ramp_end;		/* I/Os issued before are not counted */
	int err;
	char errmsg[256];
	double usr_ms, sys_ms;
	uint64_t ctx;
	_Atomic uint64_t prog_bytes[DDIR_NR], prog_ios[DDIR_NR];
	atomic_int state;		/* eta character: r R w W m M V _ */
	struct bb_stat st[DDIR_NR];
};

/* ---- small helpers ---- */

static void bb_futex_wait(atomic_uint *addr, unsigned int val, long ns)
{
	struct timespec ts = { 0, ns };

	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void bb_futex_wake(atomic_uint *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* ---- verification ---- */

static void bb_fill(struct bb_job *job, struct bb_io *io)
{
	const struct bb_opts *o = job->o;

	if (o->verify == VERIFY_PATTERN)
		memcpy(io->buf, job->patbuf, o->bs);
	else
		verify_fill(io->buf, o->bs, io->off, o->seed);
}

/* Before a verify read: a device that moves no data must not pass. */
static void bb_poison(const struct bb_opts *o, struct bb_io *io)
{
	if (o->verify == VERIFY_PATTERN)
		memset(io->buf, (uint8_t)~o->pattern[0], o->bs);
	else
		memset(io->buf, 0, sizeof(struct verify_hdr));
}

static void bb_verify_block(struct bb_job *job, struct bb_io *io)
{
	const struct bb_opts *o = job->o;
	char why[160];
	int bad;

	job->vblocks++;
	if (o->verify == VERIFY_PATTERN)
		bad = verify_pattern_check(io->buf, job->patbuf, o->bs, io->off,
					   why, sizeof(why));
	else
		bad = verify_check(io->buf, o->bs, io->off, o->seed, why,
				   sizeof(why));
	if (!bad || job->vbad++)
		return;
	snprintf(job->errmsg, sizeof(job->errmsg),
		 "verify: job %u: block at offset %" PRIu64 " (%" PRIu64 " bytes): %s",
		 job->nr, io->off, o->bs, why);
}

/* The next block this job wrote, in offset order; false at the end. */
static bool bb_next_written(struct bb_job *job, uint64_t *blk)
{
	uint64_t b = job->vcursor;

	while (b < job->nblocks) {
		uint64_t w = job->written[b / 64] >> (b % 64);

		if (w) {
			b += (uint64_t)__builtin_ctzll(w);
			job->vcursor = b + 1;
			*blk = b;
			return true;
		}
		b = (b | 63) + 1;
	}
	job->vcursor = b;
	return false;
}

/* ---- the I/O engine ---- */

/* Runs on whichever thread completed the I/O: timestamp, hand back, wake. */
static void bb_complete(struct bb_io *io)
{
	struct bb_job *job = io->job;
	struct bb_io *head = atomic_load_explicit(&job->cq.done,
						  memory_order_relaxed);

	do {
		io->next = head;
	} while (!atomic_compare_exchange_weak(&job->cq.done, &head, io));
	/* @io may be reaped and reused from here on: touch only @job */
	if (atomic_load(&job->cq.waiting)) {
		atomic_fetch_add(&job->cq.wake_seq, 1);
		bb_futex_wake(&job->cq.wake_seq);
	}
}

static void bb_end_io(struct bio *bio)
{
	struct bb_io *io = bio->bi_private;

	io->done_ns = clock_ns();
	io->err = bio->bi_status ? blk_status_to_errno(bio->bi_status) : 0;
	bb_complete(io);
}

static void bb_job_fail(struct bb_job *job, struct bb_io *io, int err,
			const char *what)
{
	const struct bb_opts *o = job->o;

	job->stopping = true;
	if (job->err)
		return;
	job->err = err;
	snprintf(job->errmsg, sizeof(job->errmsg),
		 "job %u: %s at offset %" PRIu64 " (%" PRIu64 " bytes): %s (%d)",
		 job->nr, io->ddir == DDIR_WRITE ? "write" : "read", io->off,
		 o->bs, what ? what : strerror(-err), err);
}

bb_hot void bb_account(struct bb_job *job, struct bb_io *io)
{
	const struct bb_opts *o = job->o;
	int d = io->ddir;
	uint64_t lat;

	if (io->err) {
		bb_job_fail(job, io, io->err, NULL);
		return;
	}
	if (job->verifying) {
		bb_verify_block(job, io);
		return;
	}
	if (d == DDIR_WRITE && job->written) {
		uint64_t b = (io->off - job->start) / o->bs;

		job->written[b / 64] |= 1ULL << (b % 64);
	}
	if (unlikely(io->issue_ns < job->ramp_end))
		return;
	/* two CPUs' TSCs may differ by a few cycles: never a 2^64 ns I/O */
	lat = io->done_ns > io->issue_ns ? io->done_ns - io->issue_ns : 0;
	job->st[d].bytes += o->bs;
	lat_hist_add(&job->st[d].lat, lat);
	atomic_store_explicit(&job->prog_ios[d], job->st[d].lat.nr,
			      memory_order_relaxed);
	atomic_store_explicit(&job->prog_bytes[d], job->st[d].bytes,
			      memory_order_relaxed);
}

/* Take everything the completion side handed back. */
bb_hot unsigned int bb_reap(struct bb_job *job)
{
	struct bb_io *io, *next;
	unsigned int n = 0;

	if (!atomic_load_explicit(&job->cq.done, memory_order_relaxed))
		return 0;
	io = atomic_exchange(&job->cq.done, NULL);
	for (; io; io = next, n++) {
		next = io->next;
		if (io->bio) {
			bio_put(io->bio);
			io->bio = NULL;
		}
		bb_account(job, io);
		io->next = job->free;
		job->free = io;
		job->inflight--;
	}
	return n;
}

/*
 * --hipri: reap our CPU's poll queue instead of sleeping. Without poll
 * queues the bios complete the normal way and this just spins.
 */
static void bb_poll(struct bb_job *job)
{
	if (!blkdev_poll(bb_disk))
		cpu_relax();
}

static void bb_wait(struct bb_job *job)
{
	unsigned int seq;

	if (job->o->hipri) {
		bb_poll(job);
		return;
	}
	for (int i = 0; i < BB_SPIN; i++) {
		if (atomic_load_explicit(&job->cq.done, memory_order_relaxed))
			return;
		cpu_relax();
	}
	/* seq_cst: either we see the push or the completer sees waiting */
	seq = atomic_load(&job->cq.wake_seq);
	atomic_store(&job->cq.waiting, 1);
	if (!atomic_load(&job->cq.done))
		bb_futex_wait(&job->cq.wake_seq, seq, 10 * 1000 * 1000);
	atomic_store(&job->cq.waiting, 0);
}

bb_hot int bb_pick_ddir(struct bb_job *job)
{
	const struct bb_opts *o = job->o;

	switch (o->rw) {
	case RW_READ:
	case RW_RANDREAD:
		return DDIR_READ;
	case RW_WRITE:
	case RW_RANDWRITE:
		return DDIR_WRITE;
	default:
		return prandom_u64(&job->rand) % 100 < o->rwmixread ? DDIR_READ
								   : DDIR_WRITE;
	}
}

bb_hot uint64_t bb_pick_block(struct bb_job *job, int ddir)
{
	const struct bb_opts *o = job->o;
	uint64_t b;

	if (bb_opts_random(o) && o->norandommap)
		return (uint64_t)(((unsigned __int128)prandom_u64(&job->rand) *
				   job->nblocks) >> 64);
	if (bb_opts_random(o)) {	/* fio's random map: each block once a pass */
		b = randperm_at(&job->perm, job->rpos);
		if (++job->rpos == job->nblocks) {	/* a new order */
			job->rpos = 0;
			randperm_init(&job->perm, job->nblocks,
				      prandom_u64(&job->rand));
		}
		return b;
	}
	b = job->seq[ddir];
	job->seq[ddir] = b + 1 == job->nblocks ? 0 : b + 1;
	return b;
}

/* A workload I/O in direction @ddir: its block, and its data if a write. */
bb_hot void bb_prep_work(struct bb_job *job, struct bb_io *io, int ddir)
{
	const struct bb_opts *o = job->o;
	uint64_t blk = bb_pick_block(job, ddir);

	io->ddir = ddir;
	job->issued += o->bs;
	io->off = job->start + blk * o->bs;
	if (ddir == DDIR_WRITE && o->verify)
		bb_fill(job, io);
}

/* Choose the next I/O of the current phase; false when there is none. */
bb_hot bool bb_prep(struct bb_job *job, struct bb_io *io)
{
	const struct bb_opts *o = job->o;
	uint64_t blk;

	if (job->verifying) {
		if (!bb_next_written(job, &blk))
			return false;
		io->ddir = DDIR_READ;
		io->off = job->start + blk * o->bs;
		bb_poison(o, io);
		return true;
	}
	if (!o->time_based && job->issued >= job->size)
		return false;
	bb_prep_work(job, io, bb_pick_ddir(job));
	return true;
}

bb_hot int bb_issue(struct bb_job *job, struct bb_io *io)
{
	enum req_op op = io->ddir == DDIR_WRITE ? REQ_OP_WRITE : REQ_OP_READ;
	/* what an O_DIRECT write carries in the kernel */
	blk_opf_t opf = op == REQ_OP_WRITE ? op | REQ_SYNC | REQ_IDLE : op;
	const struct bb_opts *o = job->o;
	struct bio *bio;
	int ret;

	io->issue_ns = clock_ns();
	if (o->bypass) {	/* synchronous, straight to the driver */
		ret = blkdev_bypass_rw(bb_disk, op, io->off >> SECTOR_SHIFT,
				       io->buf, (unsigned int)o->bs);
		io->done_ns = clock_ns();
		io->err = ret < 0 ? ret : 0;
		if (ret < 0 && *blkstack_errmsg())	/* ours: it ran here */
			bb_job_fail(job, io, ret, blkstack_errmsg());
		bb_complete(io);
		return 0;
	}
	if (o->hipri)
		opf |= REQ_POLLED;
	bio = bio_alloc(bb_disk, 1, opf);
	if (!bio)
		return -ENOMEM;
	if (bio_add_buf(bio, io->buf, (unsigned int)o->bs) != o->bs) {
		bio_put(bio);
		return -EINVAL;
	}
	bio->bi_iter.bi_sector = io->off >> SECTOR_SHIFT;
	bio->bi_ioc = job->ioc;		/* the schedulers' issuer: this job */
	bio->bi_end_io = bb_end_io;
	bio->bi_private = io;
	io->bio = bio;		/* before submit: it may complete inside */
	submit_bio(bio);
	return 0;
}

/* Take @io off the free list and send it; false if it could not go. */
bb_hot bool bb_start(struct bb_job *job, struct bb_io *io)
{
	int ret;

	job->free = io->next;
	job->inflight++;
	ret = bb_issue(job, io);
	if (likely(!ret))
		return true;
	io->next = job->free;
	job->free = io;
	job->inflight--;
	bb_job_fail(job, io, ret, "could not build the bio");
	return false;
}

/* Submit up to iodepth_batch_submit I/Os under one plug; false when done. */
static bool bb_submit_batch(struct bb_job *job)
{
	const struct bb_opts *o = job->o;
	unsigned int n = o->iodepth - job->inflight;
	struct blk_plug plug;
	bool plugged, more = true;

	if (n > o->batch)
		n = o->batch;
	plugged = n > 1 && !o->bypass;
	if (plugged)
		blk_start_plug_nr_ios(&plug, (unsigned short)n);
	while (n--) {
		struct bb_io *io = job->free;

		if (!bb_prep(job, io) || !bb_start(job, io)) {
			more = false;
			break;
		}
	}
	if (plugged)
		blk_finish_plug(&plug);
	return more;
}

static bool bb_should_stop(struct bb_job *job, uint64_t deadline)
{
	return job->stopping ||
	       atomic_load_explicit(&bb_stop, memory_order_relaxed) ||
	       (deadline != UINT64_MAX && clock_ns() >= deadline);
}

/* Keep iodepth I/Os in flight until the phase has no more, then drain. */
static void bb_run_phase(struct bb_job *job, uint64_t deadline)
{
	unsigned int iodepth = job->o->iodepth;
	bool more = true;

	while (more || job->inflight) {
		if (more && bb_should_stop(job, deadline))
			more = false;
		if (more && job->inflight < iodepth)
			more = bb_submit_batch(job);
		if (!bb_reap(job) && job->inflight &&
		    (!more || job->inflight >= iodepth))
			bb_wait(job);
	}
}

/* ---- pacing: rate_iops and thinktime ---- */

/*
 * Sleep until @t (a clock_ns() time) or, with I/O in flight, until a
 * completion comes first; at most 20 ms, so a stop is seen soon.
 */
static void bb_wait_until(struct bb_job *job, uint64_t t)
{
	uint64_t now = clock_ns();
	long ns = t > now + 20000000 ? 20000000 : (long)(t - now);
	unsigned int seq;

	if (t <= now)
		return;
	if (job->o->hipri && job->inflight) {
		bb_poll(job);
		return;
	}
	if (!job->inflight) {
		struct timespec ts = { 0, ns };

		nanosleep(&ts, NULL);
		return;
	}
	seq = atomic_load(&job->cq.wake_seq);
	atomic_store(&job->cq.waiting, 1);
	if (!atomic_load(&job->cq.done))
		bb_futex_wait(&job->cq.wake_seq, seq, ns);
	atomic_store(&job->cq.waiting, 0);
}

/*
 * When the job may issue next: 0 now, else a clock_ns() time, or
 * UINT64_MAX while a think time waits for the job's I/O to complete
 * (fio's thinktime_blocks_type=complete: think after the blocks are done).
 */
static uint64_t bb_pace_gate(struct bb_job *job, uint64_t now)
{
	const struct bb_opts *o = job->o;
	struct bb_pace *p = &job->pace;

	if (o->thinktime_ns && p->since_think >= o->thinktime_blocks) {
		if (job->inflight)
			return UINT64_MAX;
		if (!p->think_until)
			p->think_until = now + o->thinktime_ns;
		if (now < p->think_until)
			return p->think_until;
		p->think_until = 0;
		p->since_think = 0;
	}
	if (p->ddir < 0)	/* rates are per direction: pick it first */
		p->ddir = bb_pick_ddir(job);
	if (p->interval_ns[p->ddir] && now < p->next_ns[p->ddir])
		return p->next_ns[p->ddir];
	return 0;
}

/*
 * An I/O of @ddir went out: the next one's earliest time. linear keeps
 * the schedule (a late I/O lets the next ones catch up, as fio does);
 * poisson draws exponential gaps of the same mean.
 */
static void bb_pace_issued(struct bb_job *job, int ddir)
{
	struct bb_pace *p = &job->pace;
	double step = (double)p->interval_ns[ddir];

	if (step && job->o->rate_process == RATE_POISSON) {
		double u = ((double)(prandom_u64(&job->rand) >> 11) + 1) * 0x1p-53;

		step *= -log(u);
	}
	p->next_ns[ddir] += (uint64_t)step;
	p->since_think++;
	p->ddir = -1;
}

/* The paced job's next I/O, in the direction the gate picked. */
static bool bb_submit_paced(struct bb_job *job)
{
	struct bb_io *io = job->free;
	int ddir = job->pace.ddir;

	if (!job->o->time_based && job->issued >= job->size)
		return false;
	bb_prep_work(job, io, ddir);
	bb_pace_issued(job, ddir);
	return bb_start(job, io);
}

/* bb_run_phase() for a job with rate_iops or thinktime: I/Os one by one. */
static void bb_run_paced(struct bb_job *job, uint64_t deadline)
{
	unsigned int iodepth = job->o->iodepth;
	bool more = true;

	for (int d = 0; d < DDIR_NR; d++)
		job->pace.next_ns[d] = job->t_start;
	while (more || job->inflight) {
		uint64_t until = UINT64_MAX;

		if (more && bb_should_stop(job, deadline))
			more = false;
		if (bb_reap(job))
			continue;
		if (more && job->inflight < iodepth) {
			until = bb_pace_gate(job, clock_ns());
			if (!until) {
				more = bb_submit_paced(job);
				continue;
			}
		}
		if (until == UINT64_MAX)
			bb_wait(job);
		else
			bb_wait_until(job, until < deadline ? until : deadline);
	}
}

/* --cpus_allowed: the whole set (shared) or the id-th CPU of it (split). */
static void bb_pin(struct bb_job *job)
{
	const struct bb_opts *o = job->o;
	cpu_set_t set = o->cpus;
	unsigned int want = job->nr % (o->ncpus ? o->ncpus : 1), seen = 0;

	if (!o->ncpus)
		return;
	if (o->cpus_policy) {
		CPU_ZERO(&set);
		for (int c = 0; c < CPU_SETSIZE; c++) {
			if (CPU_ISSET(c, &o->cpus) && seen++ == want) {
				CPU_SET(c, &set);
				break;
			}
		}
	}
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int bb_state_char(const struct bb_opts *o)
{
	static const char st[] = { 'R', 'W', 'r', 'w', 'm', 'M' };

	return st[o->rw];
}

/* In the job's thread, so the io context carries the thread's id. */
static int bb_job_ioc(struct bb_job *job)
{
	const struct bb_opts *o = job->o;

	job->ioc = ioc_create((pid_t)gettid(), o->ioprio, (uint16_t)o->weight,
			      o->name);
	if (job->ioc)
		return 0;
	job->err = -ENOMEM;
	snprintf(job->errmsg, sizeof(job->errmsg), "job %u: %s", job->nr,
		 blkstack_errmsg());
	return -ENOMEM;
}

static void *bb_job_main(void *arg)
{
	struct bb_job *job = arg;
	const struct bb_opts *o = job->o;
	uint64_t deadline = UINT64_MAX;
	struct rusage ru;
	int ret;

	bb_pin(job);
	ret = bb_job_ioc(job);
	pthread_barrier_wait(&bb_barrier);
	job->t_start = clock_ns();
	job->ramp_end = job->t_start + o->ramp_ns;
	if (o->runtime_ns)
		deadline = job->ramp_end + o->runtime_ns;
	if (!ret && job->pace.on)
		bb_run_paced(job, deadline);
	else if (!ret)
		bb_run_phase(job, deadline);
	job->t_end = clock_ns();
	/* the report's runtime is the measured part */
	job->t_start = min(job->ramp_end, job->t_end);
	if (!getrusage(RUSAGE_THREAD, &ru)) {
		job->usr_ms = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3;
		job->sys_ms = ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
		job->ctx = (uint64_t)(ru.ru_nvcsw + ru.ru_nivcsw);
	}
	if (job->written && !job->err) {
		job->verifying = true;
		atomic_store(&job->state, 'V');
		bb_run_phase(job, UINT64_MAX);
	}
	atomic_store(&job->state, '_');
	atomic_fetch_sub(&bb_running, 1);
	return NULL;
}

/* rate_iops and thinktime; a job with neither runs the unpaced loop. */
static void bb_pace_init(struct bb_job *job)
{
	const struct bb_opts *o = job->o;
	struct bb_pace *p = &job->pace;

	for (int d = 0; d < DDIR_NR; d++)
		p->interval_ns[d] = o->rate_iops[d] ? 1000000000ULL /
						      o->rate_iops[d] : 0;
	p->on = p->interval_ns[DDIR_READ] || p->interval_ns[DDIR_WRITE] ||
		o->thinktime_ns;
	p->ddir = -1;
}

/* The thread's region: thread N of a job starts N offset_increments on. */
static int bb_job_region(struct bb_job *job, uint64_t cap)
{
	const struct bb_opts *o = job->o;
	unsigned int lbs = bdev_logical_block_size(bb_disk);

	if (o->bs % lbs || o->offset % lbs || o->offset_increment % lbs) {
		fprintf(stderr, "blkbench: job '%s': --bs, --offset and --offset_increment must be multiples of %s's logical block size (%u)\n",
			o->name, bb_devname, lbs);
		return -1;
	}
	job->start = o->offset + job->id * o->offset_increment;
	if (job->start < cap)
		job->size = o->size ? o->size : cap - job->start;
	job->size -= job->size % o->bs;
	if (!job->size || job->start + job->size > cap) {
		fprintf(stderr, "blkbench: job %u: region [%" PRIu64 ", %" PRIu64
			") does not fit %s (%" PRIu64 " bytes); check --size, --offset and --offset_increment\n",
			job->nr, job->start, job->start + (o->size ? o->size : 0),
			bb_devname, cap);
		return -1;
	}
	job->nblocks = job->size / o->bs;
	return 0;
}

/* The verify pattern, one block of it, for --verify=pattern. */
static int bb_job_pattern(struct bb_job *job)
{
	const struct bb_opts *o = job->o;

	if (o->verify != VERIFY_PATTERN)
		return 0;
	if (posix_memalign((void **)&job->patbuf, 4096, o->bs))
		return -1;
	for (uint64_t i = 0; i < o->bs; i++)
		job->patbuf[i] = o->pattern[i % o->pattern_len];
	return 0;
}

/*
 * Thread @id of job section @o, thread @nr of all: its region, buffers
 * and PRNG; -1 after printing why not.
 */
static int bb_job_init(struct bb_job *job, const struct bb_opts *o,
		       unsigned int id, unsigned int nr, uint64_t cap)
{
	job->o = o;
	job->id = id;
	job->nr = nr;
	if (bb_job_region(job, cap))
		return -1;
	job->rand = splitmix64(o->seed + nr) | 1;
	if (bb_opts_random(o) && !o->norandommap)
		randperm_init(&job->perm, job->nblocks,
			      prandom_u64(&job->rand));
	bb_stat_init(&job->st[DDIR_READ]);
	bb_stat_init(&job->st[DDIR_WRITE]);
	atomic_init(&job->state, bb_state_char(o));
	bb_pace_init(job);
	job->ios = calloc(o->iodepth, sizeof(*job->ios));
	if (o->verify)
		job->written = calloc((job->nblocks + 63) / 64, 8);
	if (!job->ios || (o->verify && !job->written) || bb_job_pattern(job))
		return -1;
	for (unsigned int i = 0; i < o->iodepth; i++) {
		struct bb_io *io = &job->ios[i];
		uint64_t s = job->rand + i;

		if (posix_memalign(&io->buf, 4096, o->bs))
			return -1;
		/* not zeros: a device that ignores the data is no faster */
		for (uint64_t k = 0; k < o->bs / 8; k++)
			((uint64_t *)io->buf)[k] = prandom_u64(&s);
		io->job = job;
		io->next = job->free;
		job->free = io;
	}
	return 0;
}

/* After the device is gone: no bio can still point at the io context. */
static void bb_job_exit(struct bb_job *job)
{
	if (!job->o)	/* never initialised */
		return;
	for (unsigned int i = 0; job->ios && i < job->o->iodepth; i++)
		free(job->ios[i].buf);
	free(job->ios);
	free(job->written);
	free(job->patbuf);
	put_io_context(job->ioc);
}

/* ---- options (the table and the rules: lib/bench-job.c) ---- */

static void bb_usage(FILE *f)
{
	fprintf(f, "usage: blkbench [--OPTION[=VALUE] ...] [--name=JOB [--OPTION[=VALUE] ...] ...] [JOBFILE ...]\n"
		"Load generator for blkstack devices with fio's option names.\n"
		"Options before the first --name are global; each --name starts a job,\n"
		"and all jobs run at once on the one device. A JOBFILE is fio's ini\n"
		"format ([global], [JOB], key=value).\n"
		"No options: 4k randread, iodepth 32, 10 s on " BB_DEFAULT_DEV
		".\nWithout --size or --runtime a job is time_based for 10 s.\n\n");
	bb_opts_usage(f);
}

static int bb_opt_err(const char *arg, const char *what)
{
	fprintf(stderr, "blkbench: %s: %s\n", arg, what);
	return -1;
}

/* Options point into it: it lives as long as the jobs. */
static struct jobfile bb_jobfile;

/* The jobs from the command line and job files; exits for --help. */
static int bb_parse_args(int argc, char **argv)
{
	int ret;

	jobfile_init(&bb_jobfile);
	ret = jobfile_parse_args(&bb_jobfile, argc, argv);
	if (ret == JOBFILE_HELP) {
		bb_usage(stdout);
		exit(0);
	}
	if (ret == JOBFILE_VERSION) {
		puts(BB_VERSION);
		exit(0);
	}
	if (ret) {
		fprintf(stderr, "blkbench: %s\n", bb_jobfile.err);
		return -1;
	}
	if (bb_jobs_build(&bb_jobfile, &bb_opts, &bb_nr_opts))
		return -1;
	opt = bb_opts[0];
	for (unsigned int i = 0; i < bb_nr_opts; i++)
		bb_nr_jobs += bb_opts[i].numjobs;
	return 0;
}

/* What the whole run shares: the clock and the live line. */
static int bb_setup(void)
{
	if (opt.seen_clock && clock_set_source(opt.clocksource)) {
		fprintf(stderr, "blkbench: --clocksource=cpu: this CPU's TSC is not usable (needs constant_tsc and nonstop_tsc); use clock_gettime\n");
		return -1;
	}
	clock_ns();	/* calibrate now, not in the first job's timing */
	if (opt.eta == ETA_AUTO)
		opt.eta = isatty(STDERR_FILENO) ? ETA_ALWAYS : ETA_NEVER;
	return 0;
}

/* ---- the device ---- */

static int bb_attr(const char *attr, const char *val, const char *arg)
{
	int ret = blk_queue_attr_store(bb_disk, attr, val);

	if (ret)
		fprintf(stderr, "blkbench: %s: %s\n", arg,
			*blkstack_errmsg() ? blkstack_errmsg() : strerror(-ret));
	return ret;
}

/* --queue=ATTR=VALUE,...: sysfs queue attributes, in the order given. */
static int bb_apply_queue(void)
{
	char *list = strdup(opt.queue), *save = NULL, *item, arg[256];
	int ret = 0;

	for (item = strtok_r(list, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		snprintf(arg, sizeof(arg), "--queue=%s", opt.queue);
		if (!eq || eq == item) {
			ret = bb_opt_err(arg, "expected ATTR=VALUE[,ATTR=VALUE...]");
			break;
		}
		*eq = 0;
		snprintf(arg, sizeof(arg), "--queue: %s=%s", item, eq + 1);
		ret = bb_attr(item, eq + 1, arg);
	}
	free(list);
	return ret ? -1 : 0;
}

static void bb_dev_destroy(void)
{
	blk_put_disk(bb_disk);
	blkstack_dev_del(bb_devname);
	bb_disk = NULL;
}

/* Probe once: a driver without a bypass path fails here, not per I/O. */
static int bb_probe_bypass(void)
{
	void *buf;
	int ret;

	if (posix_memalign(&buf, 4096, opt.bs))
		return -1;
	ret = blkdev_bypass_rw(bb_disk, REQ_OP_READ, opt.offset >> SECTOR_SHIFT,
			       buf, (unsigned int)opt.bs);
	free(buf);
	if (ret < 0)
		fprintf(stderr, "blkbench: --bypass: %s\n",
			*blkstack_errmsg() ? blkstack_errmsg() : strerror(-ret));
	return ret < 0 ? -1 : 0;
}

/*
 * --filename=DRIVER:PARAMS: create the device in this process. The syntax
 * has no device name, so the driver names it (null: nullb0, nullb1 ...).
 */
static int bb_dev_create(void)
{
	const char *colon = strchr(opt.filename, ':');
	size_t n = colon ? (size_t)(colon - opt.filename) : strlen(opt.filename);
	char driver[32], arg[256], uri[1024];
	const char *params = colon ? colon + 1 : "";
	unsigned int lbs;
	int ret;

	snprintf(arg, sizeof(arg), "--filename=%s", opt.filename);
	/* an NBD URI (fio's nbd engine takes one) is the NBD client's uri= */
	if (!strncmp(opt.filename, "nbd", 3) &&
	    colon == strstr(opt.filename, "://")) {
		snprintf(uri, sizeof(uri), "uri=%s", opt.filename);
		params = uri;
		n = 3;
	}
	if (!n || n >= sizeof(driver)) {
		fprintf(stderr, "blkbench: %s: expected DRIVER:PARAMS like %s (drivers: %s)\n",
			arg, BB_DEFAULT_DEV, blkstack_driver_names());
		return -1;
	}
	memcpy(driver, opt.filename, n);
	driver[n] = 0;
	ret = blkstack_dev_add(driver, NULL, params, &bb_disk);
	if (ret) {
		fprintf(stderr, "blkbench: %s: %s\n", arg,
			*blkstack_errmsg() ? blkstack_errmsg() : strerror(-ret));
		return -1;
	}
	snprintf(bb_devname, sizeof(bb_devname), "%s", blk_disk_name(bb_disk));
	lbs = bdev_logical_block_size(bb_disk);
	if (opt.bs % lbs || opt.offset % lbs || opt.offset_increment % lbs) {
		fprintf(stderr, "blkbench: --bs, --offset and --offset_increment must be multiples of %s's logical block size (%u)\n",
			bb_devname, lbs);
		goto fail;
	}
	if (opt.ioscheduler) {
		snprintf(arg, sizeof(arg), "--ioscheduler=%s", opt.ioscheduler);
		if (bb_attr("scheduler", opt.ioscheduler, arg))
			goto fail;
	}
	if ((opt.queue && bb_apply_queue()) || (opt.bypass && bb_probe_bypass()))
		goto fail;
	return 0;
fail:
	bb_dev_destroy();
	return -1;
}

/* ---- reports (in fio's formats: lib/bench-report.c) ---- */

/* What thread @job did, for the report. */
static void bb_job_report(const struct bb_job *job, struct bb_report *r)
{
	r->o = job->o;
	r->njobs = 1;
	r->err = job->err;
	r->runtime_ns = job->t_end - job->t_start;
	r->vblocks = job->vblocks;
	r->vbad = job->vbad;
	r->ctx = job->ctx;
	r->usr_ms = job->usr_ms;
	r->sys_ms = job->sys_ms;
	r->st[DDIR_READ] = job->st[DDIR_READ];
	r->st[DDIR_WRITE] = job->st[DDIR_WRITE];
}

/* ---- the live line (fio's eta) ---- */

struct bb_eta {
	uint64_t t, bytes[DDIR_NR], ios[DDIR_NR];
	int len;
};

/* "r=1234MiB/s" or "r=..,w=..": only the directions the jobs do. */
static void bb_eta_rates(char *buf, size_t len, const uint64_t *v, double dt,
			 bool bin, const char *unit)
{
	char a[32], b[32];
	bool rd = false, wr = false;

	for (unsigned int i = 0; i < bb_nr_opts; i++) {
		rd |= bb_opts_reads(&bb_opts[i]);
		wr |= bb_opts_writes(&bb_opts[i]);
	}

	fio_num2str(a, sizeof(a), v[DDIR_READ] / dt, bin, unit);
	fio_num2str(b, sizeof(b), v[DDIR_WRITE] / dt, bin, unit);
	snprintf(buf, len, "%s%s%s%s%s", rd ? "r=" : "", rd ? a : "",
		 rd && wr ? "," : "", wr ? "w=" : "", wr ? b : "");
}

/* The longest job's runtime; time_based if every job is. */
static uint64_t bb_runtime_ns;
static bool bb_time_based;

static void bb_eta_init(void)
{
	bb_time_based = true;
	for (unsigned int i = 0; i < bb_nr_opts; i++) {
		if (bb_opts[i].runtime_ns + bb_opts[i].ramp_ns > bb_runtime_ns)
			bb_runtime_ns = bb_opts[i].runtime_ns + bb_opts[i].ramp_ns;
		bb_time_based &= bb_opts[i].time_based;
	}
}

static void bb_eta_show(struct bb_job *jobs, struct bb_eta *prev, uint64_t t0)
{
	uint64_t now = clock_ns(), b[DDIR_NR] = { 0 }, n[DDIR_NR] = { 0 };
	uint64_t db[DDIR_NR], dn[DDIR_NR], total = 0;
	double dt = (now - prev->t) / 1e9, el = (now - t0) / 1e9, pct, eta;
	char st[64] = "", bw[96], io[96], line[320];
	unsigned int running = 0, run = 0;
	int prevc = 0, len;

	for (unsigned int i = 0; i <= bb_nr_jobs; i++) {
		int c = i < bb_nr_jobs ? atomic_load(&jobs[i].state) : 0;

		if (run && c != prevc && strlen(st) < sizeof(st) - 12)
			snprintf(st + strlen(st), sizeof(st) - strlen(st),
				 "%c(%u)", prevc, run);
		run = c == prevc ? run + 1 : 1;
		prevc = c;
		if (i == bb_nr_jobs)
			break;
		running += c != '_';
		total += jobs[i].size;
		for (int d = 0; d < DDIR_NR; d++) {
			b[d] += atomic_load_explicit(&jobs[i].prog_bytes[d],
						     memory_order_relaxed);
			n[d] += atomic_load_explicit(&jobs[i].prog_ios[d],
						     memory_order_relaxed);
		}
	}
	for (int d = 0; d < DDIR_NR; d++) {
		db[d] = b[d] - prev->bytes[d];
		dn[d] = n[d] - prev->ios[d];
		prev->bytes[d] = b[d];
		prev->ios[d] = n[d];
	}
	prev->t = now;
	pct = bb_runtime_ns ? el * 1e9 / (double)bb_runtime_ns : 0;
	if (!bb_time_based && total)
		pct = fmax(pct, (double)(b[0] + b[1]) / (double)total);
	pct = fmin(pct, 1);
	eta = pct > 0 ? el / pct - el : 0;
	bb_eta_rates(bw, sizeof(bw), db, dt, true, "B/s");
	bb_eta_rates(io, sizeof(io), dn, dt, false, "");
	len = snprintf(line, sizeof(line),
		       "Jobs: %u (f=%u): [%s][%.1f%%][%s][%s IOPS][eta %02um:%02us]",
		       running, running, st, pct * 100, bw, io,
		       (unsigned int)eta / 60, (unsigned int)eta % 60);
	fprintf(stderr, "\r%s%*s", line, prev->len > len ? prev->len - len : 0, "");
	fflush(stderr);
	prev->len = len;
}

/* Main thread while the jobs run: refresh the live line about once a second. */
static void bb_eta_loop(struct bb_job *jobs, uint64_t t0)
{
	struct bb_eta prev = { .t = t0 };
	uint64_t next = t0 + 1000000000ULL;

	bb_eta_init();
	while (atomic_load(&bb_running)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		if (opt.eta == ETA_ALWAYS && clock_ns() >= next) {
			bb_eta_show(jobs, &prev, t0);
			next += 1000000000ULL;
		}
	}
	if (prev.len)
		fputc('\n', stderr);
}

/* ---- main ---- */

static void bb_sigint(int sig)
{
	(void)sig;
	atomic_store(&bb_stop, 1);
}

/* fio's header: a line per job section, then the thread count. */
static void bb_banner(void)
{
	for (unsigned int i = 0; i < bb_nr_opts; i++) {
		const struct bb_opts *o = &bb_opts[i];

		printf("%s: (g=%u): rw=%s, bs=(R) %" PRIu64 "B-%" PRIu64 "B, (W) %" PRIu64
		       "B-%" PRIu64 "B, ioengine=blkstack%s, iodepth=%u, clocksource=%s\n",
		       o->name, o->groupid, bb_rw_names[o->rw], o->bs, o->bs, o->bs,
		       o->bs, o->bypass ? "-bypass" : o->hipri ? "-hipri" : "",
		       o->iodepth, clock_source_name());
	}
	printf("Starting %u thread%s on %s (%s)\n", bb_nr_jobs,
	       bb_nr_jobs > 1 ? "s" : "", bb_devname, opt.filename);
	fflush(stdout);
}

/* Start the jobs together, show progress, wait; returns the wall time. */
static uint64_t bb_run(struct bb_job *jobs)
{
	struct sigaction sa = { .sa_handler = bb_sigint, .sa_flags = SA_RESETHAND };
	uint64_t t0;

	sigaction(SIGINT, &sa, NULL);
	pthread_barrier_init(&bb_barrier, NULL, bb_nr_jobs + 1);
	atomic_store(&bb_running, bb_nr_jobs);
	for (unsigned int i = 0; i < bb_nr_jobs; i++) {
		if (pthread_create(&jobs[i].thread, NULL, bb_job_main, &jobs[i])) {
			fprintf(stderr, "blkbench: cannot start job %u\n", i);
			exit(1);	/* the barrier would never open */
		}
	}
	pthread_barrier_wait(&bb_barrier);
	t0 = clock_ns();
	bb_eta_loop(jobs, t0);
	for (unsigned int i = 0; i < bb_nr_jobs; i++)
		pthread_join(jobs[i].thread, NULL);
	pthread_barrier_destroy(&bb_barrier);
	return clock_ns() - t0;
}

/* Print what went wrong in any job; returns the exit status. */
static int bb_errors(struct bb_job *jobs)
{
	int status = 0;

	for (unsigned int i = 0; i < bb_nr_jobs; i++) {
		if (jobs[i].errmsg[0])
			fprintf(stderr, "blkbench: %s\n", jobs[i].errmsg);
		if (jobs[i].vbad)
			fprintf(stderr, "blkbench: verify: job %u: %" PRIu64 " of %" PRIu64
				" blocks bad\n", i, jobs[i].vbad, jobs[i].vblocks);
		if (jobs[i].err || jobs[i].vbad)
			status = 1;
	}
	return status;
}

static int bb_report_all(struct bb_job *jobs, uint64_t wall_ns)
{
	struct bb_run_info run = {
		.devname = bb_devname,
		.wall_ns = wall_ns,
		.format = opt.format,
		.nr_groups = bb_opts[bb_nr_opts - 1].groupid + 1,
	};
	struct bb_report *thr = calloc(bb_nr_jobs, sizeof(*thr));
	char line[512];
	int ret;

	if (!thr)
		return 1;
	for (unsigned int i = 0; i < bb_nr_jobs; i++)
		bb_job_report(&jobs[i], &thr[i]);
	blk_disk_get_stats(bb_disk, &run.ds);
	if (blk_disk_stat_line(bb_disk, line, sizeof(line)) < 0)
		*line = 0;
	run.diskstat_line = line;
	ret = bb_report_print(thr, bb_nr_jobs, &run);
	free(thr);
	return ret ? 1 : bb_errors(jobs);
}

/*
 * --debug_dump=FILE: the queue's state after the run (scheduler and driver
 * counters, e.g. a sim device's model clock), for benchmarks to read.
 */
static int bb_debug_dump(void)
{
	bool std = !strcmp(opt.debug_dump, "-");
	FILE *f = std ? stderr : fopen(opt.debug_dump, "w");

	if (!f) {
		fprintf(stderr, "blkbench: --debug_dump=%s: %s\n", opt.debug_dump,
			strerror(errno));
		return 1;
	}
	blk_mq_debug_dump(bb_disk, f);
	if (!std && fclose(f)) {
		fprintf(stderr, "blkbench: --debug_dump=%s: %s\n", opt.debug_dump,
			strerror(errno));
		return 1;
	}
	return 0;
}

/* Every thread of every job section, on the device just made. */
static int bb_jobs_init(struct bb_job *jobs)
{
	uint64_t cap = get_capacity(bb_disk) << SECTOR_SHIFT;
	unsigned int nr = 0;

	for (unsigned int i = 0; i < bb_nr_opts; i++)
		for (unsigned int id = 0; id < bb_opts[i].numjobs; id++, nr++)
			if (bb_job_init(&jobs[nr], &bb_opts[i], id, nr, cap))
				return -1;
	return 0;
}

static void bb_free_opts(void)
{
	free(bb_opts);
	jobfile_free(&bb_jobfile);
}

int main(int argc, char **argv)
{
	struct bb_job *jobs;
	uint64_t wall;
	int status = 1;

	if (bb_parse_args(argc, argv) || bb_setup())
		goto out_opts;
	if (crc32c_selftest()) {
		fprintf(stderr, "blkbench: crc32c self-test failed\n");
		goto out_opts;
	}
	if (bb_dev_create())
		goto out_opts;
	jobs = aligned_alloc(64, bb_nr_jobs * sizeof(*jobs));
	if (!jobs)
		goto out_dev;
	memset(jobs, 0, bb_nr_jobs * sizeof(*jobs));
	if (bb_jobs_init(jobs))
		goto out_jobs;
	if (opt.format == FMT_NORMAL)
		bb_banner();
	wall = bb_run(jobs);
	status = bb_report_all(jobs, wall);
	if (opt.debug_dump && bb_debug_dump())
		status = 1;
out_jobs:
	/*
	 * Device first: deleting it drains the completion side, which may
	 * still be inside bb_complete() reading a job we have reaped dry.
	 */
	bb_dev_destroy();
	for (unsigned int i = 0; i < bb_nr_jobs; i++)
		bb_job_exit(&jobs[i]);
	free(jobs);
	bb_free_opts();
	return status;
out_dev:
	bb_dev_destroy();
out_opts:
	bb_free_opts();
	return status;
}
