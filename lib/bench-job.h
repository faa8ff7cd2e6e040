/* SPDX-License-Identifier: MIT */
/*
 * blkbench's job descriptions: the options of one job section (fio's
 * names and meanings), their table, defaults and consistency rules, and
 * the list of jobs built from a command line and job files.
 *
 * Options before the first --name (or in a job file's [global]) are the
 * defaults of the jobs after them; each --name / [JOB] starts a job from
 * those defaults. All jobs run at once on one device, so the options that
 * describe the device or the whole run (filename, ioscheduler, queue,
 * clocksource) must agree; output-format, eta and debug_dump apply
 * wherever given.
 */
#ifndef BLKSTACK_LIB_BENCH_JOB_H
#define BLKSTACK_LIB_BENCH_JOB_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "jobfile.h"
#include "verify.h"

#define BB_VERSION	"blkbench-0.1"
#define BB_DEFAULT_DEV	"null:size=1G,irqmode=0"
#define BB_MAX_BS	(128ULL << 20)

enum bb_rw { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW,
	     RW_READWRITE };
enum { DDIR_READ, DDIR_WRITE, DDIR_NR };
enum bb_verify { VERIFY_NONE, VERIFY_CRC32C, VERIFY_PATTERN };
enum bb_fmt { FMT_NORMAL, FMT_JSON, FMT_JSON_PLUS };
enum bb_eta_mode { ETA_AUTO, ETA_ALWAYS, ETA_NEVER };
enum bb_rate_process { RATE_LINEAR, RATE_POISSON };

/* One job section; read-only once the jobs start. */
struct bb_opts {
	const char *name;
	int rw;
	unsigned int rwmixread;
	uint64_t bs;
	unsigned int iodepth;
	unsigned int batch;		/* iodepth_batch_submit, 0 = iodepth */
	unsigned int numjobs;
	uint64_t runtime_ns;
	uint64_t ramp_ns;		/* ramp_time: unmeasured warm-up */
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
	bool group_reporting, new_group;
	const char *filename;
	const char *ioscheduler;
	const char *queue;
	bool hipri, bypass;
	int format;
	int eta;
	const char *debug_dump;		/* file for the dump after the run */
	uint64_t seed;
	bool randrepeat, norandommap;
	int clocksource;		/* enum clock_source */
	/* who issues: the job's io context */
	unsigned int prioclass, prio, weight;
	uint16_t ioprio;		/* IOPRIO_PRIO_VALUE(prioclass, prio) */
	/* pacing */
	const char *rate_iops_str;
	unsigned int rate_iops[DDIR_NR];	/* 0 = unlimited */
	int rate_process;
	uint64_t thinktime_ns;
	unsigned int thinktime_blocks;
	bool seen_size, seen_runtime, seen_time_based, seen_seed, seen_clock;
	bool seen_prio, seen_prioclass;
	/* where it came from */
	unsigned int groupid;
	bool explicit;			/* from --name or a [JOB] section */
	const struct jobfile_entry *own;	/* the section's own options */
	size_t nr_own;
};

extern const char *const bb_rw_names[];

static inline bool bb_opts_random(const struct bb_opts *o)
{
	return o->rw == RW_RANDREAD || o->rw == RW_RANDWRITE ||
	       o->rw == RW_RANDRW;
}

static inline bool bb_opts_writes(const struct bb_opts *o)
{
	return o->rw != RW_READ && o->rw != RW_RANDREAD;
}

static inline bool bb_opts_reads(const struct bb_opts *o)
{
	return o->rw != RW_WRITE && o->rw != RW_RANDWRITE;
}

/* One line per option, for --help. */
void bb_opts_usage(FILE *f);
/*
 * The jobs @jf describes, checked, in order; *@jobs is freed by the
 * caller. 0, or -EINVAL after one line on stderr ("blkbench: ARG: why").
 */
int bb_jobs_build(const struct jobfile *jf, struct bb_opts **jobs,
		  unsigned int *nr);

#endif
