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

#include "lib/clock.h"
#include "lib/compiler.h"
#include "lib/crc32c.h"
#include "lib/fio-stat.h"
#include "lib/histogram.h"
#include "lib/json.h"
#include "lib/options.h"
#include "lib/prandom.h"
#include "lib/randperm.h"
#include "lib/verify.h"

#define BB_VERSION	"blkbench-0.1"
#define BB_DEFAULT_DEV	"null:size=1G,irqmode=0"
#define BB_SPIN		256		/* polls of the done list before sleeping */
#define BB_MAX_BS	(128ULL << 20)

enum bb_rw { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW,
	     RW_READWRITE };
enum { DDIR_READ, DDIR_WRITE, DDIR_NR };
enum bb_verify { VERIFY_NONE, VERIFY_CRC32C, VERIFY_PATTERN };
enum bb_fmt { FMT_NORMAL, FMT_JSON, FMT_JSON_PLUS };
enum bb_eta_mode { ETA_AUTO, ETA_ALWAYS, ETA_NEVER };

/* Everything the command line sets; read-only once the jobs start. */
struct bb_opts {
	const char *name;
	int rw;
	unsigned int rwmixread;
	uint64_t bs;
	unsigned int iodepth;
	unsigned int batch;		/* iodepth_batch_submit, 0 = iodepth */
	unsigned int numjobs;
	uint64_t runtime_ns;
	bool time_based;
	uint64_t size, offset, offset_increment;
	int verify;
	const char *verify_pattern;
	uint8_t pattern[VERIFY_MAX_PATTERN];
	unsigned int pattern_len;
	const char *cpus_allowed;
	int cpus_policy;		/* 0 shared, 1 split */
	cpu_set_t cpus;
	unsigned int ncpus;
	bool group_reporting;
	const char *filename;
	const char *ioscheduler;
	const char *queue;
	bool hipri, bypass;
	int format;
	int eta;
	uint64_t seed;
	bool randrepeat, norandommap;
	int clocksource;		/* enum clock_source */
	bool seen_size, seen_runtime, seen_time_based, seen_seed, seen_clock;
	bool seen_name;
};

static struct bb_opts opt;
static struct gendisk *bb_disk;
static char bb_devname[48];
static uint8_t *bb_patbuf;		/* one block of the verify pattern */
static atomic_int bb_stop;		/* SIGINT: finish early, still report */
static atomic_uint bb_running;
static pthread_barrier_t bb_barrier;

struct bb_stat {
	uint64_t bytes;
	struct lat_hist lat;		/* issue to completion, ns */
};

struct bb_job;

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
	_Alignas(64) unsigned int id;
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
	uint64_t t_start, t_end;
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

static bool bb_is_random(void)
{
	return opt.rw == RW_RANDREAD || opt.rw == RW_RANDWRITE ||
	       opt.rw == RW_RANDRW;
}

static bool bb_writes(void)
{
	return opt.rw != RW_READ && opt.rw != RW_RANDREAD;
}

/* ---- latency statistics ---- */

static void stat_init(struct bb_stat *s)
{
	s->bytes = 0;
	lat_hist_init(&s->lat);
}

static void stat_merge(struct bb_stat *dst, const struct bb_stat *src)
{
	dst->bytes += src->bytes;
	lat_hist_merge(&dst->lat, &src->lat);
}

/* ---- verification ---- */

static void bb_fill(struct bb_io *io)
{
	if (opt.verify == VERIFY_PATTERN)
		memcpy(io->buf, bb_patbuf, opt.bs);
	else
		verify_fill(io->buf, opt.bs, io->off, opt.seed);
}

/* Before a verify read: a device that moves no data must not pass. */
static void bb_poison(struct bb_io *io)
{
	if (opt.verify == VERIFY_PATTERN)
		memset(io->buf, (uint8_t)~opt.pattern[0], opt.bs);
	else
		memset(io->buf, 0, sizeof(struct verify_hdr));
}

static void bb_verify_block(struct bb_job *job, struct bb_io *io)
{
	char why[160];
	int bad;

	job->vblocks++;
	if (opt.verify == VERIFY_PATTERN)
		bad = verify_pattern_check(io->buf, bb_patbuf, opt.bs, io->off,
					   why, sizeof(why));
	else
		bad = verify_check(io->buf, opt.bs, io->off, opt.seed, why,
				   sizeof(why));
	if (!bad || job->vbad++)
		return;
	snprintf(job->errmsg, sizeof(job->errmsg),
		 "verify: job %u: block at offset %" PRIu64 " (%" PRIu64 " bytes): %s",
		 job->id, io->off, opt.bs, why);
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
	job->stopping = true;
	if (job->err)
		return;
	job->err = err;
	snprintf(job->errmsg, sizeof(job->errmsg),
		 "job %u: %s at offset %" PRIu64 " (%" PRIu64 " bytes): %s (%d)",
		 job->id, io->ddir == DDIR_WRITE ? "write" : "read", io->off,
		 opt.bs, what ? what : strerror(-err), err);
}

static void bb_account(struct bb_job *job, struct bb_io *io)
{
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
	/* two CPUs' TSCs may differ by a few cycles: never a 2^64 ns I/O */
	lat = io->done_ns > io->issue_ns ? io->done_ns - io->issue_ns : 0;
	job->st[d].bytes += opt.bs;
	lat_hist_add(&job->st[d].lat, lat);
	atomic_store_explicit(&job->prog_ios[d], job->st[d].lat.nr,
			      memory_order_relaxed);
	atomic_store_explicit(&job->prog_bytes[d], job->st[d].bytes,
			      memory_order_relaxed);
	if (d == DDIR_WRITE && job->written) {
		uint64_t b = (io->off - job->start) / opt.bs;

		job->written[b / 64] |= 1ULL << (b % 64);
	}
}

/* Take everything the completion side handed back. */
static unsigned int bb_reap(struct bb_job *job)
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

	if (opt.hipri) {
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

static int bb_pick_ddir(struct bb_job *job)
{
	switch (opt.rw) {
	case RW_READ:
	case RW_RANDREAD:
		return DDIR_READ;
	case RW_WRITE:
	case RW_RANDWRITE:
		return DDIR_WRITE;
	default:
		return prandom_u64(&job->rand) % 100 < opt.rwmixread ? DDIR_READ
								   : DDIR_WRITE;
	}
}

static uint64_t bb_pick_block(struct bb_job *job, int ddir)
{
	uint64_t b;

	if (bb_is_random() && opt.norandommap)
		return (uint64_t)(((unsigned __int128)prandom_u64(&job->rand) *
				   job->nblocks) >> 64);
	if (bb_is_random()) {	/* fio's random map: each block once a pass */
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

/* Choose the next I/O of the current phase; false when there is none. */
static bool bb_prep(struct bb_job *job, struct bb_io *io)
{
	uint64_t blk;

	if (job->verifying) {
		if (!bb_next_written(job, &blk))
			return false;
		io->ddir = DDIR_READ;
	} else {
		if (!opt.time_based && job->issued >= job->size)
			return false;
		io->ddir = bb_pick_ddir(job);
		blk = bb_pick_block(job, io->ddir);
		job->issued += opt.bs;
	}
	io->off = job->start + blk * opt.bs;
	if (job->verifying)
		bb_poison(io);
	else if (io->ddir == DDIR_WRITE && opt.verify)
		bb_fill(io);
	return true;
}

static int bb_issue(struct bb_job *job, struct bb_io *io)
{
	enum req_op op = io->ddir == DDIR_WRITE ? REQ_OP_WRITE : REQ_OP_READ;
	/* what an O_DIRECT write carries in the kernel */
	blk_opf_t opf = op == REQ_OP_WRITE ? op | REQ_SYNC | REQ_IDLE : op;
	struct bio *bio;
	int ret;

	io->issue_ns = clock_ns();
	if (opt.bypass) {	/* synchronous, straight to the driver */
		ret = blkdev_bypass_rw(bb_disk, op, io->off >> SECTOR_SHIFT,
				       io->buf, (unsigned int)opt.bs);
		io->done_ns = clock_ns();
		io->err = ret < 0 ? ret : 0;
		if (ret < 0 && *blkstack_errmsg())	/* ours: it ran here */
			bb_job_fail(job, io, ret, blkstack_errmsg());
		bb_complete(io);
		return 0;
	}
	if (opt.hipri)
		opf |= REQ_POLLED;
	bio = bio_alloc(bb_disk, 1, opf);
	if (!bio)
		return -ENOMEM;
	if (bio_add_buf(bio, io->buf, (unsigned int)opt.bs) != opt.bs) {
		bio_put(bio);
		return -EINVAL;
	}
	bio->bi_iter.bi_sector = io->off >> SECTOR_SHIFT;
	bio->bi_end_io = bb_end_io;
	bio->bi_private = io;
	io->bio = bio;		/* before submit: it may complete inside */
	submit_bio(bio);
	return 0;
}

/* Submit up to iodepth_batch_submit I/Os under one plug; false when done. */
static bool bb_submit_batch(struct bb_job *job)
{
	unsigned int n = opt.iodepth - job->inflight;
	struct blk_plug plug;
	bool plugged, more = true;
	int ret;

	if (n > opt.batch)
		n = opt.batch;
	plugged = n > 1 && !opt.bypass;
	if (plugged)
		blk_start_plug_nr_ios(&plug, (unsigned short)n);
	while (n--) {
		struct bb_io *io = job->free;

		if (!bb_prep(job, io)) {
			more = false;
			break;
		}
		job->free = io->next;
		job->inflight++;
		ret = bb_issue(job, io);
		if (ret) {
			io->next = job->free;
			job->free = io;
			job->inflight--;
			bb_job_fail(job, io, ret, "could not build the bio");
			more = false;
			break;
		}
	}
	if (plugged)
		blk_finish_plug(&plug);
	return more;
}

/* Keep iodepth I/Os in flight until the phase has no more, then drain. */
static void bb_run_phase(struct bb_job *job, uint64_t deadline)
{
	bool more = true;

	while (more || job->inflight) {
		if (more && (job->stopping || atomic_load_explicit(&bb_stop,
					memory_order_relaxed) ||
			     (deadline != UINT64_MAX && clock_ns() >= deadline)))
			more = false;
		if (more && job->inflight < opt.iodepth)
			more = bb_submit_batch(job);
		if (!bb_reap(job) && job->inflight &&
		    (!more || job->inflight >= opt.iodepth))
			bb_wait(job);
	}
}

/* --cpus_allowed: the whole set (shared) or the id-th CPU of it (split). */
static void bb_pin(struct bb_job *job)
{
	cpu_set_t set = opt.cpus;
	unsigned int want = job->id % (opt.ncpus ? opt.ncpus : 1), seen = 0;

	if (!opt.ncpus)
		return;
	if (opt.cpus_policy) {
		CPU_ZERO(&set);
		for (int c = 0; c < CPU_SETSIZE; c++) {
			if (CPU_ISSET(c, &opt.cpus) && seen++ == want) {
				CPU_SET(c, &set);
				break;
			}
		}
	}
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int bb_state_char(void)
{
	static const char st[] = { 'R', 'W', 'r', 'w', 'm', 'M' };

	return st[opt.rw];
}

static void *bb_job_main(void *arg)
{
	struct bb_job *job = arg;
	uint64_t deadline = UINT64_MAX;
	struct rusage ru;

	bb_pin(job);
	pthread_barrier_wait(&bb_barrier);
	job->t_start = clock_ns();
	if (opt.runtime_ns)
		deadline = job->t_start + opt.runtime_ns;
	bb_run_phase(job, deadline);
	job->t_end = clock_ns();
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

/* The job's region, buffers and PRNG; -1 after printing why not. */
static int bb_job_init(struct bb_job *job, unsigned int id, uint64_t cap)
{
	job->id = id;
	job->start = opt.offset + id * opt.offset_increment;
	if (job->start < cap)
		job->size = opt.size ? opt.size : cap - job->start;
	job->size -= job->size % opt.bs;
	if (!job->size || job->start + job->size > cap) {
		fprintf(stderr, "blkbench: job %u: region [%" PRIu64 ", %" PRIu64
			") does not fit %s (%" PRIu64 " bytes); check --size, --offset and --offset_increment\n",
			id, job->start, job->start + (opt.size ? opt.size : 0),
			bb_devname, cap);
		return -1;
	}
	job->nblocks = job->size / opt.bs;
	job->rand = splitmix64(opt.seed + id) | 1;
	if (bb_is_random() && !opt.norandommap)
		randperm_init(&job->perm, job->nblocks,
			      prandom_u64(&job->rand));
	stat_init(&job->st[DDIR_READ]);
	stat_init(&job->st[DDIR_WRITE]);
	atomic_init(&job->state, bb_state_char());
	job->ios = calloc(opt.iodepth, sizeof(*job->ios));
	if (opt.verify)
		job->written = calloc((job->nblocks + 63) / 64, 8);
	if (!job->ios || (opt.verify && !job->written))
		return -1;
	for (unsigned int i = 0; i < opt.iodepth; i++) {
		struct bb_io *io = &job->ios[i];
		uint64_t s = job->rand + i;

		if (posix_memalign(&io->buf, 4096, opt.bs))
			return -1;
		/* not zeros: a device that ignores the data is no faster */
		for (uint64_t k = 0; k < opt.bs / 8; k++)
			((uint64_t *)io->buf)[k] = prandom_u64(&s);
		io->job = job;
		io->next = job->free;
		job->free = io;
	}
	return 0;
}

static void bb_job_exit(struct bb_job *job)
{
	for (unsigned int i = 0; job->ios && i < opt.iodepth; i++)
		free(job->ios[i].buf);
	free(job->ios);
	free(job->written);
}

/* ---- options ---- */

static const char *const rw_vals[] = { "read", "write", "randread",
	"randwrite", "randrw", "readwrite", "rw=readwrite", NULL };
static const char *const verify_vals[] = { "none", "crc32c", "pattern",
	"0=none", "crc32c-intel=crc32c", NULL };
static const char *const fmt_vals[] = { "normal", "json", "json+", NULL };
static const char *const eta_vals[] = { "auto", "always", "never", NULL };
/* in enum clock_source's order; "tsc" is what the reports call "cpu" */
static const char *const clock_vals[] = { "cpu", "clock_gettime", "tsc=cpu",
	NULL };
static const char *const policy_vals[] = { "shared", "split", NULL };
static bool bb_ignored;

static const struct opt_def bb_optdefs[] = {
	{ "name", OPT_STR, &opt.name, .seen = &opt.seen_name,
	  .help = "job name (blkbench)",
	  .once = "only one job section is supported; use --numjobs for more threads" },
	{ "filename", OPT_STR, &opt.filename,
	  .help = "DRIVER:PARAMS, the device to create (" BB_DEFAULT_DEV ")" },
	{ "rw", OPT_ENUM, &opt.rw, rw_vals, .help = "read, write, randread, "
	  "randwrite, randrw, readwrite (randread)" },
	{ "readwrite", OPT_ENUM, &opt.rw, rw_vals, .help = "same as --rw" },
	{ "rwmixread", OPT_UINT, &opt.rwmixread, NULL, 0, 100,
	  .help = "percent reads of randrw/readwrite (50)" },
	{ "bs", OPT_SIZE, &opt.bs, .help = "block size, k/m = 1024-based (4k)" },
	{ "blocksize", OPT_SIZE, &opt.bs, .help = "same as --bs" },
	{ "iodepth", OPT_UINT, &opt.iodepth, NULL, 1, 4096,
	  .help = "I/Os in flight per job (32)" },
	{ "iodepth_batch_submit", OPT_UINT, &opt.batch, NULL, 0, 4096,
	  .help = "I/Os submitted under one plug (iodepth)" },
	{ "iodepth_batch", OPT_UINT, &opt.batch, NULL, 0, 4096,
	  .help = "same as --iodepth_batch_submit" },
	{ "numjobs", OPT_UINT, &opt.numjobs, NULL, 1, 1024,
	  .help = "job threads (1)" },
	{ "runtime", OPT_TIME, &opt.runtime_ns, .seen = &opt.seen_runtime,
	  .help = "stop after this long: 10, 10s, 500ms, 2m" },
	{ "time_based", OPT_BOOL, &opt.time_based, .seen = &opt.seen_time_based,
	  .help = "run for --runtime, wrapping around the region" },
	{ "size", OPT_SIZE, &opt.size, .seen = &opt.seen_size,
	  .help = "bytes of I/O and region per job (device size)" },
	{ "offset", OPT_SIZE, &opt.offset, .help = "start of the region (0)" },
	{ "offset_increment", OPT_SIZE, &opt.offset_increment,
	  .help = "job N starts at offset + N * this (0)" },
	{ "verify", OPT_ENUM, &opt.verify, verify_vals,
	  .help = "crc32c, pattern: read back and check what was written" },
	{ "verify_pattern", OPT_STR, &opt.verify_pattern,
	  .help = "0xHEX, \"string\" or a number, for --verify=pattern" },
	{ "cpus_allowed", OPT_STR, &opt.cpus_allowed,
	  .help = "CPUs the jobs run on, like 0-1,3" },
	{ "cpus_allowed_policy", OPT_ENUM, &opt.cpus_policy, policy_vals,
	  .help = "shared (all jobs on the set) or split (one CPU each)" },
	{ "group_reporting", OPT_BOOL, &opt.group_reporting,
	  .help = "one summary for all jobs" },
	{ "ioscheduler", OPT_STR, &opt.ioscheduler,
	  .help = "the queue's scheduler (none, mq-deadline, ...)" },
	{ "queue", OPT_STR, &opt.queue,
	  .help = "ATTR=VALUE,... queue attributes, applied in order" },
	{ "hipri", OPT_BOOL, &opt.hipri, .help = "polled I/O (REQ_POLLED + bio_poll)" },
	{ "bypass", OPT_BOOL, &opt.bypass,
	  .help = "synchronous I/O straight to the driver: no block layer" },
	{ "output-format", OPT_ENUM, &opt.format, fmt_vals,
	  .help = "normal, json, json+" },
	{ "eta", OPT_ENUM, &opt.eta, eta_vals,
	  .help = "live line on stderr: auto (if a tty), always, never" },
	{ "randseed", OPT_SIZE, &opt.seed, .seen = &opt.seen_seed,
	  .help = "seed of offsets and verify data (0x89)" },
	{ "seed", OPT_SIZE, &opt.seed, .seen = &opt.seen_seed,
	  .help = "same as --randseed" },
	{ "randrepeat", OPT_BOOL, &opt.randrepeat,
	  .help = "0: a new seed each run (1)" },
	{ "direct", OPT_BOOL, &bb_ignored, .help = "accepted; always direct" },
	{ "thread", OPT_BOOL, &bb_ignored, .help = "accepted; jobs are threads" },
	{ "norandommap", OPT_BOOL, &opt.norandommap,
	  .help = "random offsets may repeat within a pass over the region" },
	{ "clocksource", OPT_ENUM, &opt.clocksource, clock_vals,
	  .seen = &opt.seen_clock,
	  .help = "I/O timestamps: cpu (TSC) or clock_gettime (cpu if usable)" },
};

static const struct opt_table bb_opt_table = {
	.prog = "blkbench",
	.defs = bb_optdefs,
	.nr = ARRAY_SIZE(bb_optdefs),
	.no_words = "unexpected argument (options are --NAME=VALUE; job files are not supported)",
};

static void bb_usage(FILE *f)
{
	fprintf(f, "usage: blkbench [--OPTION[=VALUE] ...]\n"
		"Load generator for blkstack devices with fio's option names.\n"
		"No options: 4k randread, iodepth 32, 10 s on " BB_DEFAULT_DEV
		".\nWithout --size or --runtime a job is time_based for 10 s.\n\n");
	opts_usage(&bb_opt_table, f);
}

static int bb_opt_err(const char *arg, const char *what)
{
	opts_err(&bb_opt_table, arg, what);
	return -1;
}

static int bb_parse_args(int argc, char **argv)
{
	switch (opts_parse(&bb_opt_table, argc, argv)) {
	case 0:
		return 0;
	case OPTS_HELP:
		bb_usage(stdout);
		exit(0);
	case OPTS_VERSION:
		puts(BB_VERSION);
		exit(0);
	}
	return -1;
}

static void bb_cpulist(char *buf, size_t len, const cpu_set_t *set)
{
	size_t at = 0;

	*buf = 0;
	for (int c = 0; c < CPU_SETSIZE && at < len; c++) {
		int e = c;

		if (!CPU_ISSET(c, set))
			continue;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
			e++;
		at += (size_t)snprintf(buf + at, len - at, e > c ? "%s%d-%d" : "%s%d",
				       at ? "," : "", c, e);
		c = e;
	}
}

static int bb_parse_cpus(void)
{
	const char *s = opt.cpus_allowed;
	char arg[160], avail_list[128];
	cpu_set_t avail;
	char *end;

	snprintf(arg, sizeof(arg), "--cpus_allowed=%s", s);
	CPU_ZERO(&opt.cpus);
	while (*s) {
		unsigned long a, b;

		if (!isdigit((unsigned char)*s))
			goto bad;
		a = b = strtoul(s, &end, 10);
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				goto bad;
			b = strtoul(end + 1, &end, 10);
		}
		if (b < a || b >= CPU_SETSIZE)
			goto bad;
		for (unsigned long c = a; c <= b; c++)
			CPU_SET(c, &opt.cpus);
		s = end;
		if (*s == ',' && s[1])
			s++;
		else if (*s)
			goto bad;
	}
	if (!CPU_COUNT(&opt.cpus) || sched_getaffinity(0, sizeof(avail), &avail))
		goto bad;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &opt.cpus) && !CPU_ISSET(c, &avail)) {
			char msg[200];

			bb_cpulist(avail_list, sizeof(avail_list), &avail);
			snprintf(msg, sizeof(msg), "CPU %d is not available to this process (usable: %s)",
				 c, avail_list);
			return bb_opt_err(arg, msg);
		}
	}
	opt.ncpus = (unsigned int)CPU_COUNT(&opt.cpus);
	return 0;
bad:
	return bb_opt_err(arg, "expected a list of CPUs like 0-1,3");
}

/* Defaults, then the rules that tie options together. */
static int bb_check_opts(void)
{
	char arg[64];

	if (!opt.seen_size && !opt.seen_runtime && !opt.seen_time_based)
		opt.time_based = true;
	if (opt.time_based && !opt.runtime_ns)
		opt.runtime_ns = 10000000000ULL;
	snprintf(arg, sizeof(arg), "--bs=%" PRIu64, opt.bs);
	if (opt.bs < SECTOR_SIZE || opt.bs % SECTOR_SIZE || opt.bs > BB_MAX_BS)
		return bb_opt_err(arg, "must be a multiple of 512 from 512 to 128m");
	if (!opt.batch || opt.batch > opt.iodepth)
		opt.batch = opt.iodepth;
	if (opt.offset % SECTOR_SIZE || opt.offset_increment % SECTOR_SIZE)
		return bb_opt_err("--offset/--offset_increment", "must be multiples of 512");
	if (opt.verify_pattern) {
		snprintf(arg, sizeof(arg), "--verify_pattern=%.40s", opt.verify_pattern);
		if (verify_pattern_parse(opt.verify_pattern, opt.pattern,
					 &opt.pattern_len))
			return bb_opt_err(arg, "expected 0xHEX, a quoted string or a number");
		if (opt.verify == VERIFY_CRC32C)
			return bb_opt_err(arg, "goes with --verify=pattern, not crc32c");
		opt.verify = VERIFY_PATTERN;
	}
	if (opt.verify == VERIFY_PATTERN && !opt.pattern_len)
		return bb_opt_err("--verify=pattern", "needs --verify_pattern=0xHEX");
	if (opt.verify && !bb_writes())
		return bb_opt_err("--verify",
			"needs a job that writes (--rw=write, randwrite, randrw or readwrite): a new device holds nothing to check");
	if (opt.hipri && opt.bypass)
		return bb_opt_err("--hipri",
			"cannot be combined with --bypass (its I/O is synchronous)");
	if (opt.cpus_allowed && bb_parse_cpus())
		return -1;
	if (opt.seen_clock && clock_set_source(opt.clocksource))
		return bb_opt_err("--clocksource=cpu",
			"this CPU's TSC is not usable (needs constant_tsc and nonstop_tsc); use clock_gettime");
	clock_ns();	/* calibrate now, not in the first job's timing */
	if (!opt.randrepeat && !opt.seen_seed)
		opt.seed = splitmix64((uint64_t)time(NULL) ^ (uint64_t)getpid());
	if (opt.eta == ETA_AUTO)
		opt.eta = isatty(STDERR_FILENO) ? ETA_ALWAYS : ETA_NEVER;
	return 0;
}

static void bb_defaults(void)
{
	opt.name = "blkbench";
	opt.filename = BB_DEFAULT_DEV;
	opt.rw = RW_RANDREAD;
	opt.rwmixread = 50;
	opt.bs = 4096;
	opt.iodepth = 32;
	opt.numjobs = 1;
	opt.seed = 0x89;	/* fio's default randseed */
	opt.randrepeat = true;
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
	char driver[32], arg[256];
	unsigned int lbs;
	int ret;

	snprintf(arg, sizeof(arg), "--filename=%s", opt.filename);
	if (!n || n >= sizeof(driver)) {
		fprintf(stderr, "blkbench: %s: expected DRIVER:PARAMS like %s (drivers: %s)\n",
			arg, BB_DEFAULT_DEV, blkstack_driver_names());
		return -1;
	}
	memcpy(driver, opt.filename, n);
	driver[n] = 0;
	ret = blkstack_dev_add(driver, NULL, colon ? colon + 1 : "", &bb_disk);
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

/* ---- reports ---- */

/* One summary: a job, or all of them with --group_reporting. */
struct bb_report {
	unsigned int njobs;
	int err;
	uint64_t runtime_ns, vblocks, vbad, ctx;
	double usr_ms, sys_ms;
	struct bb_stat st[DDIR_NR];
};

static struct bb_report *bb_reports(struct bb_job *jobs, unsigned int *nr)
{
	struct bb_report *reps;

	*nr = opt.group_reporting ? 1 : opt.numjobs;
	reps = calloc(*nr, sizeof(*reps));
	if (!reps)
		return NULL;
	for (unsigned int i = 0; i < *nr; i++) {
		stat_init(&reps[i].st[DDIR_READ]);
		stat_init(&reps[i].st[DDIR_WRITE]);
	}
	for (unsigned int i = 0; i < opt.numjobs; i++) {
		struct bb_report *r = &reps[opt.group_reporting ? 0 : i];
		struct bb_job *job = &jobs[i];
		uint64_t rt = job->t_end - job->t_start;

		r->njobs++;
		for (int d = 0; d < DDIR_NR; d++)
			stat_merge(&r->st[d], &job->st[d]);
		r->runtime_ns = rt > r->runtime_ns ? rt : r->runtime_ns;
		r->err = r->err ? r->err : job->err;
		r->vblocks += job->vblocks;
		r->vbad += job->vbad;
		r->usr_ms += job->usr_ms;
		r->sys_ms += job->sys_ms;
		r->ctx += job->ctx;
	}
	return reps;
}

static double bb_rate(uint64_t n, uint64_t ns)
{
	return ns ? (double)n * 1e9 / (double)ns : 0;
}

static void bb_print_dir(const char *label, const struct bb_stat *s,
			 uint64_t ns)
{
	char a[32], b[32], c[32], d[32];

	printf("  %s: IOPS=%s, BW=%s (%s)(%s/%" PRIu64 "msec)\n", label,
	       fio_num2str(a, sizeof(a), bb_rate(s->lat.nr, ns), false, ""),
	       fio_num2str(b, sizeof(b), bb_rate(s->bytes, ns), true, "B/s"),
	       fio_num2str(c, sizeof(c), bb_rate(s->bytes, ns), false, "B/s"),
	       fio_num2str(d, sizeof(d), (double)s->bytes, true, "B"), ns / 1000000);
	fio_print_lat(stdout, "clat", &s->lat);
	fio_print_lat(stdout, " lat", &s->lat);
	fio_print_pcts(stdout, &s->lat, fio_default_pcts, fio_default_pcts_nr);
}

static void bb_print_report(const struct bb_report *r)
{
	double ms = r->runtime_ns / 1e6 * r->njobs;

	printf("%s: (groupid=0, jobs=%u): err=%2d: pid=%d\n", opt.name, r->njobs,
	       -r->err, (int)getpid());
	if (r->st[DDIR_READ].lat.nr)
		bb_print_dir("read", &r->st[DDIR_READ], r->runtime_ns);
	if (r->st[DDIR_WRITE].lat.nr)
		bb_print_dir("write", &r->st[DDIR_WRITE], r->runtime_ns);
	printf("  cpu          : usr=%.2f%%, sys=%.2f%%, ctx=%" PRIu64 "\n",
	       ms ? 100 * r->usr_ms / ms : 0, ms ? 100 * r->sys_ms / ms : 0, r->ctx);
	if (opt.verify)
		printf("  verify       : %" PRIu64 " blocks read back, %" PRIu64 " bad\n",
		       r->vblocks, r->vbad);
}

/* fio's "Run status group 0" lines, one per direction that did I/O. */
static void bb_print_group(struct bb_job *jobs)
{
	static const char *const label[] = { "   READ", "  WRITE" };

	printf("\nRun status group 0 (all jobs):\n");
	for (int d = 0; d < DDIR_NR; d++) {
		uint64_t bytes = 0, rmin = UINT64_MAX, rmax = 0;
		double bmin = INFINITY, bmax = 0;
		char s[8][32];

		for (unsigned int i = 0; i < opt.numjobs; i++) {
			uint64_t rt = jobs[i].t_end - jobs[i].t_start;
			double bw = bb_rate(jobs[i].st[d].bytes, rt);

			bytes += jobs[i].st[d].bytes;
			rmin = rt < rmin ? rt : rmin;
			rmax = rt > rmax ? rt : rmax;
			bmin = bw < bmin ? bw : bmin;
			bmax = bw > bmax ? bw : bmax;
		}
		if (!bytes)
			continue;
		printf("%s: bw=%s (%s), %s-%s (%s-%s), io=%s (%s), run=%" PRIu64 "-%" PRIu64 "msec\n",
		       label[d],
		       fio_num2str(s[0], 32, bb_rate(bytes, rmax), true, "B/s"),
		       fio_num2str(s[1], 32, bb_rate(bytes, rmax), false, "B/s"),
		       fio_num2str(s[2], 32, bmin, true, "B/s"),
		       fio_num2str(s[3], 32, bmax, true, "B/s"),
		       fio_num2str(s[4], 32, bmin, false, "B/s"),
		       fio_num2str(s[5], 32, bmax, false, "B/s"),
		       fio_num2str(s[6], 32, (double)bytes, true, "B"),
		       fio_num2str(s[7], 32, (double)bytes, false, "B"),
		       rmin / 1000000, rmax / 1000000);
	}
}

/* Mean size of a completed read or write reaching the driver, in KiB. */
static double bb_mean_request_kb(const struct blk_disk_stats *ds)
{
	uint64_t ios = ds->ios[STAT_READ] + ds->ios[STAT_WRITE];

	return ios ? (ds->sectors[STAT_READ] + ds->sectors[STAT_WRITE]) / 2.0 /
		     (double)ios : 0;
}

static double bb_util(const struct blk_disk_stats *ds, uint64_t wall_ns)
{
	double u = wall_ns ? ds->io_ticks_ms * 1e8 / (double)wall_ns : 0;

	return u > 100 ? 100 : u;
}

static void bb_print_disk(const struct blk_disk_stats *ds, uint64_t wall_ns)
{
	char line[512];

	printf("\nDisk stats (read/write):\n");
	printf("  %s: ios=%" PRIu64 "/%" PRIu64 ", sectors=%" PRIu64 "/%" PRIu64
	       ", merge=%" PRIu64 "/%" PRIu64 ", ticks=%" PRIu64 "/%" PRIu64
	       ", in_queue=%" PRIu64 ", util=%.2f%%\n", bb_devname,
	       ds->ios[STAT_READ], ds->ios[STAT_WRITE], ds->sectors[STAT_READ],
	       ds->sectors[STAT_WRITE], ds->merges[STAT_READ],
	       ds->merges[STAT_WRITE], ds->ticks_ms[STAT_READ],
	       ds->ticks_ms[STAT_WRITE], ds->time_in_queue_ms,
	       bb_util(ds, wall_ns));
	printf("  mean request=%.1fKiB, discards=%" PRIu64 ", flushes=%" PRIu64
	       ", in_flight=%" PRIu64 "\n", bb_mean_request_kb(ds),
	       ds->ios[STAT_DISCARD], ds->ios[STAT_FLUSH], ds->in_flight);
	if (blk_disk_stat_line(bb_disk, line, sizeof(line)) >= 0 && *line)
		printf("  diskstats: %s%s", line,
		       line[strlen(line) - 1] == '\n' ? "" : "\n");
}

/* ---- JSON, with fio's field names ---- */

static void json_lat(struct json_writer *w, const char *key,
		     const struct lat_hist *h)
{
	fio_json_lat(w, key, h, fio_default_pcts, fio_default_pcts_nr,
		     opt.format == FMT_JSON_PLUS);
}

static void json_dir(struct json_writer *w, const char *key,
		     const struct bb_stat *s, uint64_t ns)
{
	uint64_t bytes = s ? s->bytes : 0, ios = s ? s->lat.nr : 0;
	uint64_t bw = (uint64_t)bb_rate(bytes, ns);

	json_open_object(w, key);
	json_u64(w, "io_bytes", bytes);
	json_u64(w, "io_kbytes", bytes >> 10);
	json_u64(w, "bw_bytes", bw);
	json_u64(w, "bw", bw >> 10);
	json_double(w, "iops", bb_rate(ios, ns));
	json_u64(w, "runtime", ios ? ns / 1000000 : 0);
	json_u64(w, "total_ios", ios);
	json_u64(w, "short_ios", 0);
	json_u64(w, "drop_ios", 0);
	json_lat(w, "slat_ns", NULL);	/* submission is not timed apart */
	json_lat(w, "clat_ns", s ? &s->lat : NULL);	/* = lat_ns */
	json_lat(w, "lat_ns", s ? &s->lat : NULL);
	json_close_object(w);
}

static void json_job(struct json_writer *w, const struct bb_report *r)
{
	double ms = r->runtime_ns / 1e6 * r->njobs;
	char v[32];

	json_open_object(w, NULL);
	json_string(w, "jobname", opt.name);
	json_u64(w, "groupid", 0);
	json_u64(w, "error", (uint64_t)-r->err);
	json_u64(w, "eta", 0);
	json_u64(w, "elapsed", (r->runtime_ns + 500000000) / 1000000000);
	json_open_object(w, "job options");
	json_string(w, "name", opt.name);
	json_string(w, "filename", opt.filename);
	json_string(w, "rw", rw_vals[opt.rw]);
	snprintf(v, sizeof(v), "%" PRIu64, opt.bs);
	json_string(w, "bs", v);
	snprintf(v, sizeof(v), "%u", opt.iodepth);
	json_string(w, "iodepth", v);
	snprintf(v, sizeof(v), "%u", opt.numjobs);
	json_string(w, "numjobs", v);
	json_close_object(w);
	json_dir(w, "read", &r->st[DDIR_READ], r->runtime_ns);
	json_dir(w, "write", &r->st[DDIR_WRITE], r->runtime_ns);
	json_dir(w, "trim", NULL, 0);
	json_open_object(w, "sync");
	json_u64(w, "total_ios", 0);
	json_lat(w, "lat_ns", NULL);
	json_close_object(w);
	json_u64(w, "job_runtime", r->runtime_ns / 1000000);
	json_double(w, "usr_cpu", ms ? 100 * r->usr_ms / ms : 0);
	json_double(w, "sys_cpu", ms ? 100 * r->sys_ms / ms : 0);
	json_u64(w, "ctx", r->ctx);
	if (opt.verify) {
		json_open_object(w, "verify");
		json_u64(w, "blocks", r->vblocks);
		json_u64(w, "bad", r->vbad);
		json_close_object(w);
	}
	json_close_object(w);
}

static void json_disk(struct json_writer *w, const struct blk_disk_stats *ds,
		      uint64_t wall_ns)
{
	json_open_object(w, "disk");
	json_string(w, "name", bb_devname);
	json_u64(w, "read_ios", ds->ios[STAT_READ]);
	json_u64(w, "write_ios", ds->ios[STAT_WRITE]);
	json_u64(w, "read_merges", ds->merges[STAT_READ]);
	json_u64(w, "write_merges", ds->merges[STAT_WRITE]);
	json_u64(w, "read_sectors", ds->sectors[STAT_READ]);
	json_u64(w, "write_sectors", ds->sectors[STAT_WRITE]);
	json_u64(w, "read_ticks", ds->ticks_ms[STAT_READ]);
	json_u64(w, "write_ticks", ds->ticks_ms[STAT_WRITE]);
	json_u64(w, "in_flight", ds->in_flight);
	json_u64(w, "io_ticks", ds->io_ticks_ms);
	json_u64(w, "time_in_queue", ds->time_in_queue_ms);
	json_u64(w, "discard_ios", ds->ios[STAT_DISCARD]);
	json_u64(w, "flush_ios", ds->ios[STAT_FLUSH]);
	json_double(w, "mean_request_kb", bb_mean_request_kb(ds));
	json_double(w, "util", bb_util(ds, wall_ns));
	json_close_object(w);
	json_open_array(w, "disk_util");	/* fio's own shape, for fio parsers */
	json_open_object(w, NULL);
	json_string(w, "name", bb_devname);
	json_u64(w, "read_ios", ds->ios[STAT_READ]);
	json_u64(w, "write_ios", ds->ios[STAT_WRITE]);
	json_u64(w, "read_merges", ds->merges[STAT_READ]);
	json_u64(w, "write_merges", ds->merges[STAT_WRITE]);
	json_u64(w, "read_ticks", ds->ticks_ms[STAT_READ]);
	json_u64(w, "write_ticks", ds->ticks_ms[STAT_WRITE]);
	json_u64(w, "in_queue", ds->time_in_queue_ms);
	json_double(w, "util", bb_util(ds, wall_ns));
	json_close_object(w);
	json_close_array(w);
}

static void bb_print_json(const struct bb_report *reps, unsigned int nr,
			  const struct blk_disk_stats *ds, uint64_t wall_ns)
{
	struct json_writer w;
	struct timespec now;
	char tbuf[64];

	clock_gettime(CLOCK_REALTIME, &now);
	strftime(tbuf, sizeof(tbuf), "%a %b %e %H:%M:%S %Y",
		 localtime(&now.tv_sec));
	json_init(&w, stdout);
	json_open_object(&w, NULL);
	json_string(&w, "fio version", BB_VERSION);
	json_u64(&w, "timestamp", (uint64_t)now.tv_sec);
	json_u64(&w, "timestamp_ms",
	       (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000);
	json_string(&w, "time", tbuf);
	json_string(&w, "clocksource", clock_source_name());
	json_open_array(&w, "jobs");
	for (unsigned int i = 0; i < nr; i++)
		json_job(&w, &reps[i]);
	json_close_array(&w);
	json_disk(&w, ds, wall_ns);
	json_close_object(&w);
}

/* ---- the live line (fio's eta) ---- */

struct bb_eta {
	uint64_t t, bytes[DDIR_NR], ios[DDIR_NR];
	int len;
};

/* "r=1234MiB/s" or "r=..,w=..": only the directions this job does. */
static void bb_eta_rates(char *buf, size_t len, const uint64_t *v, double dt,
			 bool bin, const char *unit)
{
	char a[32], b[32];
	bool rd = opt.rw != RW_WRITE && opt.rw != RW_RANDWRITE;
	bool wr = bb_writes();

	fio_num2str(a, sizeof(a), v[DDIR_READ] / dt, bin, unit);
	fio_num2str(b, sizeof(b), v[DDIR_WRITE] / dt, bin, unit);
	snprintf(buf, len, "%s%s%s%s%s", rd ? "r=" : "", rd ? a : "",
		 rd && wr ? "," : "", wr ? "w=" : "", wr ? b : "");
}

static void bb_eta_show(struct bb_job *jobs, struct bb_eta *prev, uint64_t t0)
{
	uint64_t now = clock_ns(), b[DDIR_NR] = { 0 }, n[DDIR_NR] = { 0 };
	uint64_t db[DDIR_NR], dn[DDIR_NR], total = 0;
	double dt = (now - prev->t) / 1e9, el = (now - t0) / 1e9, pct, eta;
	char st[64] = "", bw[96], io[96], line[320];
	unsigned int running = 0, run = 0;
	int prevc = 0, len;

	for (unsigned int i = 0; i <= opt.numjobs; i++) {
		int c = i < opt.numjobs ? atomic_load(&jobs[i].state) : 0;

		if (run && c != prevc && strlen(st) < sizeof(st) - 12)
			snprintf(st + strlen(st), sizeof(st) - strlen(st),
				 "%c(%u)", prevc, run);
		run = c == prevc ? run + 1 : 1;
		prevc = c;
		if (i == opt.numjobs)
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
	pct = opt.runtime_ns ? el * 1e9 / (double)opt.runtime_ns : 0;
	if (!opt.time_based && total)
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

static void bb_banner(void)
{
	printf("%s: (g=0): rw=%s, bs=(R) %" PRIu64 "B-%" PRIu64 "B, (W) %" PRIu64
	       "B-%" PRIu64 "B, ioengine=blkstack%s, iodepth=%u, clocksource=%s\n",
	       opt.name, rw_vals[opt.rw], opt.bs, opt.bs, opt.bs, opt.bs,
	       opt.bypass ? "-bypass" : opt.hipri ? "-hipri" : "", opt.iodepth,
	       clock_source_name());
	printf("Starting %u thread%s on %s (%s)\n", opt.numjobs,
	       opt.numjobs > 1 ? "s" : "", bb_devname, opt.filename);
	fflush(stdout);
}

/* Start the jobs together, show progress, wait; returns the wall time. */
static uint64_t bb_run(struct bb_job *jobs)
{
	struct sigaction sa = { .sa_handler = bb_sigint, .sa_flags = SA_RESETHAND };
	uint64_t t0;

	sigaction(SIGINT, &sa, NULL);
	pthread_barrier_init(&bb_barrier, NULL, opt.numjobs + 1);
	atomic_store(&bb_running, opt.numjobs);
	for (unsigned int i = 0; i < opt.numjobs; i++) {
		if (pthread_create(&jobs[i].thread, NULL, bb_job_main, &jobs[i])) {
			fprintf(stderr, "blkbench: cannot start job %u\n", i);
			exit(1);	/* the barrier would never open */
		}
	}
	pthread_barrier_wait(&bb_barrier);
	t0 = clock_ns();
	bb_eta_loop(jobs, t0);
	for (unsigned int i = 0; i < opt.numjobs; i++)
		pthread_join(jobs[i].thread, NULL);
	pthread_barrier_destroy(&bb_barrier);
	return clock_ns() - t0;
}

/* Print what went wrong in any job; returns the exit status. */
static int bb_errors(struct bb_job *jobs)
{
	int status = 0;

	for (unsigned int i = 0; i < opt.numjobs; i++) {
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
	struct blk_disk_stats ds;
	struct bb_report *reps;
	unsigned int nr;

	reps = bb_reports(jobs, &nr);
	if (!reps)
		return 1;
	blk_disk_get_stats(bb_disk, &ds);
	if (opt.format == FMT_NORMAL) {
		for (unsigned int i = 0; i < nr; i++)
			bb_print_report(&reps[i]);
		bb_print_group(jobs);
		bb_print_disk(&ds, wall_ns);
	} else {
		bb_print_json(reps, nr, &ds, wall_ns);
	}
	fflush(stdout);
	free(reps);
	return bb_errors(jobs);
}

int main(int argc, char **argv)
{
	struct bb_job *jobs;
	uint64_t cap, wall;
	int status = 1;

	bb_defaults();
	if (bb_parse_args(argc, argv) || bb_check_opts())
		return 1;
	if (crc32c_selftest()) {
		fprintf(stderr, "blkbench: crc32c self-test failed\n");
		return 1;
	}
	if (opt.verify == VERIFY_PATTERN) {
		if (posix_memalign((void **)&bb_patbuf, 4096, opt.bs))
			return 1;
		for (uint64_t i = 0; i < opt.bs; i++)
			bb_patbuf[i] = opt.pattern[i % opt.pattern_len];
	}
	if (bb_dev_create())
		return 1;
	cap = get_capacity(bb_disk) << SECTOR_SHIFT;
	jobs = aligned_alloc(64, opt.numjobs * sizeof(*jobs));
	if (!jobs)
		goto out_dev;
	memset(jobs, 0, opt.numjobs * sizeof(*jobs));
	for (unsigned int i = 0; i < opt.numjobs; i++)
		if (bb_job_init(&jobs[i], i, cap))
			goto out_jobs;
	if (opt.format == FMT_NORMAL)
		bb_banner();
	wall = bb_run(jobs);
	status = bb_report_all(jobs, wall);
out_jobs:
	/*
	 * Device first: deleting it drains the completion side, which may
	 * still be inside bb_complete() reading a job we have reaped dry.
	 */
	bb_dev_destroy();
	for (unsigned int i = 0; i < opt.numjobs; i++)
		bb_job_exit(&jobs[i]);
	free(jobs);
	free(bb_patbuf);
	return status;
out_dev:
	bb_dev_destroy();
	free(bb_patbuf);
	return status;
}
