// SPDX-License-Identifier: MIT
/*
 * blkbench's jobs from a jobfile list: the option table writes into one
 * working copy, which is saved as the globals or as a job at each section
 * boundary; so a job is exactly the globals seen before it plus its own
 * options, as in fio.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blkstack/blk_types.h>

#include "bench-job.h"
#include "compiler.h"
#include "options.h"
#include "prandom.h"

#define SECTOR_BYTES	512

static struct bb_opts cur;		/* what the table writes */
static bool bj_ignored;

const char *const bb_rw_names[] = { "read", "write", "randread",
	"randwrite", "randrw", "readwrite", "rw=readwrite", NULL };
static const char *const verify_vals[] = { "none", "crc32c", "pattern",
	"0=none", "crc32c-intel=crc32c", NULL };
static const char *const fmt_vals[] = { "normal", "json", "json+", NULL };
static const char *const eta_vals[] = { "auto", "always", "never", NULL };
/* in enum clock_source's order; "tsc" is what the reports call "cpu" */
static const char *const clock_vals[] = { "cpu", "clock_gettime", "tsc=cpu",
	NULL };
static const char *const policy_vals[] = { "shared", "split", NULL };
static const char *const rate_process_vals[] = { "linear", "poisson", NULL };

static const struct opt_def bj_defs[] = {
	{ "name", OPT_STR, &cur.name,
	  .help = "starts a job section; options before the first are global" },
	{ "filename", OPT_STR, &cur.filename,
	  .help = "DRIVER:PARAMS, the device to create (" BB_DEFAULT_DEV ")" },
	{ "rw", OPT_ENUM, &cur.rw, bb_rw_names, .help = "read, write, randread, "
	  "randwrite, randrw, readwrite (randread)" },
	{ "readwrite", OPT_ENUM, &cur.rw, bb_rw_names, .help = "same as --rw" },
	{ "rwmixread", OPT_UINT, &cur.rwmixread, NULL, 0, 100,
	  .help = "percent reads of randrw/readwrite (50)" },
	{ "bs", OPT_SIZE, &cur.bs, .help = "block size, k/m = 1024-based (4k)" },
	{ "blocksize", OPT_SIZE, &cur.bs, .help = "same as --bs" },
	{ "iodepth", OPT_UINT, &cur.iodepth, NULL, 1, 4096,
	  .help = "I/Os in flight per job (32)" },
	{ "iodepth_batch_submit", OPT_UINT, &cur.batch, NULL, 0, 4096,
	  .help = "I/Os submitted under one plug (iodepth)" },
	{ "iodepth_batch", OPT_UINT, &cur.batch, NULL, 0, 4096,
	  .help = "same as --iodepth_batch_submit" },
	{ "numjobs", OPT_UINT, &cur.numjobs, NULL, 1, 1024,
	  .help = "threads of this job (1)" },
	{ "runtime", OPT_TIME, &cur.runtime_ns, .seen = &cur.seen_runtime,
	  .help = "stop after this long: 10, 10s, 500ms, 2m" },
	{ "ramp_time", OPT_TIME, &cur.ramp_ns,
	  .help = "run this long before measuring (after it, runtime counts)" },
	{ "time_based", OPT_BOOL, &cur.time_based, .seen = &cur.seen_time_based,
	  .help = "run for --runtime, wrapping around the region" },
	{ "size", OPT_SIZE, &cur.size, .seen = &cur.seen_size,
	  .help = "bytes of I/O and region per job (device size)" },
	{ "offset", OPT_SIZE, &cur.offset, .help = "start of the region (0)" },
	{ "offset_increment", OPT_SIZE, &cur.offset_increment,
	  .help = "thread N of a job starts at offset + N * this (0)" },
	{ "verify", OPT_ENUM, &cur.verify, verify_vals,
	  .help = "crc32c, pattern: read back and check what was written" },
	{ "verify_pattern", OPT_STR, &cur.verify_pattern,
	  .help = "0xHEX, \"string\" or a number, for --verify=pattern" },
	{ "cpus_allowed", OPT_STR, &cur.cpus_allowed,
	  .help = "CPUs the jobs run on, like 0-1,3" },
	{ "cpus_allowed_policy", OPT_ENUM, &cur.cpus_policy, policy_vals,
	  .help = "shared (all threads on the set) or split (one CPU each)" },
	{ "group_reporting", OPT_BOOL, &cur.group_reporting,
	  .help = "sum the job's threads into one report (fio's rule)" },
	{ "new_group", OPT_BOOL, &cur.new_group,
	  .help = "this job starts a new reporting group" },
	{ "prioclass", OPT_UINT, &cur.prioclass, NULL, 0, 3,
	  .seen = &cur.seen_prioclass,
	  .help = "I/O priority class: 1 rt, 2 be, 3 idle (0 none)" },
	{ "prio", OPT_UINT, &cur.prio, NULL, 0, 7, .seen = &cur.seen_prio,
	  .help = "I/O priority level in the class, 0 highest (be if no class)" },
	{ "weight", OPT_UINT, &cur.weight, NULL, 0, 1000,
	  .help = "the io context's weight 1..1000 (0: from the priority)" },
	{ "rate_iops", OPT_STR, &cur.rate_iops_str,
	  .help = "IOPS cap per thread: N, or READ,WRITE (none)" },
	{ "rate_process", OPT_ENUM, &cur.rate_process, rate_process_vals,
	  .help = "linear (even spacing) or poisson (random spacing)" },
	{ "thinktime", OPT_TIME_US, &cur.thinktime_ns,
	  .help = "idle this long (us) after thinktime_blocks I/Os complete" },
	{ "thinktime_blocks", OPT_UINT, &cur.thinktime_blocks, NULL, 1,
	  1000000, .help = "I/Os between think times (1)" },
	{ "ioscheduler", OPT_STR, &cur.ioscheduler,
	  .help = "the queue's scheduler (none, mq-deadline, ...)" },
	{ "queue", OPT_STR, &cur.queue,
	  .help = "ATTR=VALUE,... queue attributes, applied in order" },
	{ "hipri", OPT_BOOL, &cur.hipri, .help = "polled I/O (REQ_POLLED + bio_poll)" },
	{ "bypass", OPT_BOOL, &cur.bypass,
	  .help = "synchronous I/O straight to the driver: no block layer" },
	{ "output-format", OPT_ENUM, &cur.format, fmt_vals,
	  .help = "normal, json, json+" },
	{ "eta", OPT_ENUM, &cur.eta, eta_vals,
	  .help = "live line on stderr: auto (if a tty), always, never" },
	{ "debug_dump", OPT_STR, &cur.debug_dump,
	  .help = "after the run, write the queue's debug dump to FILE (- = stderr)" },
	{ "randseed", OPT_SIZE, &cur.seed, .seen = &cur.seen_seed,
	  .help = "seed of offsets and verify data (0x89)" },
	{ "seed", OPT_SIZE, &cur.seed, .seen = &cur.seen_seed,
	  .help = "same as --randseed" },
	{ "randrepeat", OPT_BOOL, &cur.randrepeat,
	  .help = "0: a new seed each run (1)" },
	{ "direct", OPT_BOOL, &bj_ignored, .help = "accepted; always direct" },
	{ "thread", OPT_BOOL, &bj_ignored, .help = "accepted; jobs are threads" },
	{ "norandommap", OPT_BOOL, &cur.norandommap,
	  .help = "random offsets may repeat within a pass over the region" },
	{ "clocksource", OPT_ENUM, &cur.clocksource, clock_vals,
	  .seen = &cur.seen_clock,
	  .help = "I/O timestamps: cpu (TSC) or clock_gettime (cpu if usable)" },
};

static const struct opt_table bj_table = {
	.prog = "blkbench",
	.defs = bj_defs,
	.nr = ARRAY_SIZE(bj_defs),
};

void bb_opts_usage(FILE *f)
{
	opts_usage(&bj_table, f);
}

static void bj_defaults(struct bb_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name = "blkbench";
	o->filename = BB_DEFAULT_DEV;
	o->rw = RW_RANDREAD;
	o->rwmixread = 50;
	o->bs = 4096;
	o->iodepth = 32;
	o->numjobs = 1;
	o->seed = 0x89;		/* fio's default randseed */
	o->randrepeat = true;
	o->thinktime_blocks = 1;
}

/* A message about job @o: named when the user named the job. */
static int bj_err(const struct bb_opts *o, const char *arg, const char *what)
{
	char a[320];

	if (!o->explicit)
		return opts_err(&bj_table, arg, what);
	snprintf(a, sizeof(a), "job '%s': %s", o->name, arg);
	return opts_err(&bj_table, a, what);
}

static void bj_cpulist(char *buf, size_t len, const cpu_set_t *set)
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

/* "0-1,3" into @set; -EINVAL if it is not a CPU list. */
static int bj_cpuset(const char *s, cpu_set_t *set)
{
	char *end;

	CPU_ZERO(set);
	while (*s) {
		unsigned long a, b;

		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		a = b = strtoul(s, &end, 10);
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				return -EINVAL;
			b = strtoul(end + 1, &end, 10);
		}
		if (b < a || b >= CPU_SETSIZE)
			return -EINVAL;
		for (unsigned long c = a; c <= b; c++)
			CPU_SET(c, set);
		s = end;
		if (*s == ',' && s[1])
			s++;
		else if (*s)
			return -EINVAL;
	}
	return CPU_COUNT(set) ? 0 : -EINVAL;
}

static int bj_parse_cpus(struct bb_opts *o)
{
	char arg[160], avail_list[128], msg[200];
	cpu_set_t avail;

	snprintf(arg, sizeof(arg), "--cpus_allowed=%s", o->cpus_allowed);
	if (bj_cpuset(o->cpus_allowed, &o->cpus) ||
	    sched_getaffinity(0, sizeof(avail), &avail))
		return bj_err(o, arg, "expected a list of CPUs like 0-1,3");
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &o->cpus) && !CPU_ISSET(c, &avail)) {
			bj_cpulist(avail_list, sizeof(avail_list), &avail);
			snprintf(msg, sizeof(msg), "CPU %d is not available to this process (usable: %s)",
				 c, avail_list);
			return bj_err(o, arg, msg);
		}
	}
	o->ncpus = (unsigned int)CPU_COUNT(&o->cpus);
	return 0;
}

/* Digits in [s, end): 0 when empty; -EINVAL past 10^8 or for a non-digit. */
static int bj_rate_one(const char *s, const char *end, unsigned int *v)
{
	unsigned long x = 0;

	for (; s < end; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		x = x * 10 + (unsigned long)(*s - '0');
		if (x > 100000000)
			return -EINVAL;
	}
	*v = (unsigned int)x;
	return 0;
}

/* fio's rate_iops=N (both directions), READ,WRITE, ",WRITE" or "READ,". */
static int bj_parse_rate(struct bb_opts *o)
{
	const char *s = o->rate_iops_str, *comma = strchr(s, ',');
	unsigned int *v = o->rate_iops;
	char arg[96];

	if (!bj_rate_one(s, comma ? comma : s + strlen(s), &v[DDIR_READ]) &&
	    (!comma || !bj_rate_one(comma + 1, comma + 1 + strlen(comma + 1),
				    &v[DDIR_WRITE]))) {
		if (!comma)
			v[DDIR_WRITE] = v[DDIR_READ];
		return 0;
	}
	snprintf(arg, sizeof(arg), "--rate_iops=%.60s", s);
	return bj_err(o, arg, "expected IOPS per thread: N for both directions, or READ,WRITE (each 0..100000000, 0 = no cap)");
}

/* The verify options of @o, made consistent. */
static int bj_check_verify(struct bb_opts *o)
{
	char arg[64];

	if (o->verify_pattern) {
		snprintf(arg, sizeof(arg), "--verify_pattern=%.40s", o->verify_pattern);
		if (verify_pattern_parse(o->verify_pattern, o->pattern,
					 &o->pattern_len))
			return bj_err(o, arg, "expected 0xHEX, a quoted string or a number");
		if (o->verify == VERIFY_CRC32C)
			return bj_err(o, arg, "goes with --verify=pattern, not crc32c");
		o->verify = VERIFY_PATTERN;
	}
	if (o->verify == VERIFY_PATTERN && !o->pattern_len)
		return bj_err(o, "--verify=pattern", "needs --verify_pattern=0xHEX");
	if (o->verify && !bb_opts_writes(o))
		return bj_err(o, "--verify",
			"needs a job that writes (--rw=write, randwrite, randrw or readwrite): a new device holds nothing to check");
	return 0;
}

/* Defaults, then the rules that tie one job's options together. */
static int bj_check(struct bb_opts *o)
{
	char arg[64];

	if (!o->seen_size && !o->seen_runtime && !o->seen_time_based)
		o->time_based = true;
	if (o->time_based && !o->runtime_ns)
		o->runtime_ns = 10000000000ULL;
	snprintf(arg, sizeof(arg), "--bs=%" PRIu64, o->bs);
	if (o->bs < SECTOR_BYTES || o->bs % SECTOR_BYTES || o->bs > BB_MAX_BS)
		return bj_err(o, arg, "must be a multiple of 512 from 512 to 128m");
	if (!o->batch || o->batch > o->iodepth)
		o->batch = o->iodepth;
	if (o->offset % SECTOR_BYTES || o->offset_increment % SECTOR_BYTES)
		return bj_err(o, "--offset/--offset_increment", "must be multiples of 512");
	if (bj_check_verify(o))
		return -EINVAL;
	if (o->hipri && o->bypass)
		return bj_err(o, "--hipri",
			"cannot be combined with --bypass (its I/O is synchronous)");
	if (o->cpus_allowed && bj_parse_cpus(o))
		return -EINVAL;
	if (o->rate_iops_str && bj_parse_rate(o))
		return -EINVAL;
	/* fio: a level without a class is best effort */
	o->ioprio = IOPRIO_PRIO_VALUE(o->seen_prio && !o->seen_prioclass ?
				      IOPRIO_CLASS_BE : o->prioclass, o->prio);
	if (!o->randrepeat && !o->seen_seed)
		o->seed = splitmix64((uint64_t)time(NULL) ^ (uint64_t)getpid() ^
				     (uint64_t)(uintptr_t)o->name);
	return 0;
}

static bool bj_same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* The options of the device and the run: one value for all jobs. */
static int bj_check_run(const struct bb_opts *jobs, unsigned int nr)
{
	const struct bb_opts *a = &jobs[0];
	const char *what = NULL, *va = "", *vb = "";

	for (unsigned int i = 1; i < nr && !what; i++) {
		const struct bb_opts *b = &jobs[i];

		if (!bj_same_str(a->filename, b->filename))
			what = "filename", va = a->filename, vb = b->filename;
		else if (!bj_same_str(a->ioscheduler, b->ioscheduler))
			what = "ioscheduler", va = a->ioscheduler, vb = b->ioscheduler;
		else if (!bj_same_str(a->queue, b->queue))
			what = "queue", va = a->queue, vb = b->queue;
		else if (a->format != b->format)
			what = "output-format", va = fmt_vals[a->format], vb = fmt_vals[b->format];
		else if (a->eta != b->eta)
			what = "eta", va = eta_vals[a->eta], vb = eta_vals[b->eta];
		else if (a->clocksource != b->clocksource)
			what = "clocksource", va = clock_vals[a->clocksource], vb = clock_vals[b->clocksource];
		if (what) {
			char arg[320];

			snprintf(arg, sizeof(arg), "job '%s': --%s=%.100s", b->name,
				 what, vb ? vb : "(unset)");
			fprintf(stderr, "blkbench: %s: differs from job '%s' (%.100s): all jobs run on one device in one run; set it once, in [global] or before the first --name\n",
				arg, a->name, va ? va : "(unset)");
			return -EINVAL;
		}
	}
	return 0;
}

/* Save the working copy as the next job. */
static int bj_push(struct bb_opts **jobs, unsigned int *nr, unsigned int *groupid)
{
	struct bb_opts *p = realloc(*jobs, (*nr + 1) * sizeof(**jobs));

	if (!p) {
		fprintf(stderr, "blkbench: out of memory for the jobs\n");
		return -ENOMEM;
	}
	*jobs = p;
	if (cur.new_group && *nr)
		++*groupid;
	cur.groupid = *groupid;
	if (bj_check(&cur))
		return -EINVAL;
	p[(*nr)++] = cur;
	return 0;
}

/* "--bs=3" from the command line as given; "job.fio:4: bs=3" from a file. */
static int bj_option(const struct jobfile_entry *e)
{
	char arg[320];

	if (!strncmp(e->where, "--", 2))
		snprintf(arg, sizeof(arg), "%s", e->where);
	else
		snprintf(arg, sizeof(arg), "%s: %s%s%.100s", e->where, e->key,
			 e->val ? "=" : "", e->val ? e->val : "");
	return opts_set_one(&bj_table, e->key, strlen(e->key), e->val, arg);
}

/*
 * fio's command-line-only options: they set the process's output wherever
 * they stand, even after a --name.
 */
static bool bj_process_wide(const struct jobfile_entry *e)
{
	return e->kind == JF_OPTION &&
	       (!strcmp(e->key, "output-format") ||
		!strcmp(e->key, "output_format") || !strcmp(e->key, "eta") ||
		!strcmp(e->key, "debug_dump"));
}

int bb_jobs_build(const struct jobfile *jf, struct bb_opts **jobs,
		  unsigned int *nr)
{
	struct bb_opts glob;
	unsigned int groupid = 0;
	bool in_job = false;
	int ret = 0;

	*jobs = NULL;
	*nr = 0;
	bj_defaults(&cur);
	for (size_t i = 0; i < jf->nr && !ret; i++)
		if (bj_process_wide(&jf->e[i]))
			ret = bj_option(&jf->e[i]);
	for (size_t i = 0; i < jf->nr && !ret; i++) {
		const struct jobfile_entry *e = &jf->e[i];

		if (bj_process_wide(e))
			continue;
		if (e->kind == JF_OPTION) {
			ret = bj_option(e);
			cur.nr_own += cur.own != NULL;
			continue;
		}
		if (in_job)
			ret = bj_push(jobs, nr, &groupid);
		else
			glob = cur;
		cur = glob;
		in_job = e->kind == JF_JOB;
		if (in_job) {
			cur.name = e->key;
			cur.explicit = true;
			cur.own = e + 1;
		}
	}
	if (!ret && (in_job || !*nr))
		ret = bj_push(jobs, nr, &groupid);
	if (!ret)
		ret = bj_check_run(*jobs, *nr);
	if (ret) {
		free(*jobs);
		*jobs = NULL;
		*nr = 0;
	}
	return ret;
}
