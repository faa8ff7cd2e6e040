/* SPDX-License-Identifier: MIT */
/*
 * blkbench's reports in fio's formats (normal, json, json+), printed from
 * what each thread did: a block per thread (consecutive threads of a group
 * with group_reporting summed into one), fio's "Run status group N" lines,
 * and the disk's statistics.
 */
#ifndef BLKSTACK_LIB_BENCH_REPORT_H
#define BLKSTACK_LIB_BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <blkstack/blkdev.h>

#include "bench-job.h"
#include "histogram.h"

struct bb_stat {
	uint64_t bytes;
	struct lat_hist lat;		/* issue to completion, ns */
};

void bb_stat_init(struct bb_stat *s);
void bb_stat_merge(struct bb_stat *dst, const struct bb_stat *src);

/* What one thread did (njobs 1), or a group's threads summed. */
struct bb_report {
	const struct bb_opts *o;	/* its job section (a group's first) */
	unsigned int njobs;
	int err;
	uint64_t runtime_ns, vblocks, vbad, ctx;
	double usr_ms, sys_ms;
	struct bb_stat st[DDIR_NR];
};

/* The rest of the report: the device and the run. */
struct bb_run_info {
	const char *devname;
	const char *diskstat_line;	/* /proc/diskstats style, or "" */
	struct blk_disk_stats ds;
	uint64_t wall_ns;
	int format;			/* enum bb_fmt */
	unsigned int nr_groups;		/* reporting groups: 0..nr_groups-1 */
};

/* Print the @nr threads' reports @thr in @run's format: 0 or -ENOMEM. */
int bb_report_print(const struct bb_report *thr, unsigned int nr,
		    const struct bb_run_info *run);

#endif
