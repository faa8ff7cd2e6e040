// SPDX-License-Identifier: MIT
/*
 * blkbench's reports in fio's formats: the normal output (a block per
 * thread or group, "Run status group N", disk stats) and the json/json+
 * document with fio's field names, from what each thread did.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blkstack/blk_types.h>

#include "bench-report.h"
#include "clock.h"
#include "compiler.h"
#include "fio-stat.h"
#include "json.h"

void bb_stat_init(struct bb_stat *s)
{
	s->bytes = 0;
	lat_hist_init(&s->lat);
}

void bb_stat_merge(struct bb_stat *dst, const struct bb_stat *src)
{
	dst->bytes += src->bytes;
	lat_hist_merge(&dst->lat, &src->lat);
}

/* ---- the normal output ---- */

/*
 * fio's rule: a thread with group_reporting joins the report of the
 * thread before it if that one has group_reporting too and is in the
 * same group; every other thread has its own.
 */
static bool bb_joins_previous(const struct bb_report *thr, unsigned int i)
{
	return i && thr[i].o->group_reporting &&
	       thr[i - 1].o->group_reporting &&
	       thr[i].o->groupid == thr[i - 1].o->groupid;
}

/* The reports to print: threads, or runs of them summed. */
static struct bb_report *bb_group(const struct bb_report *thr, unsigned int nr,
				  unsigned int *nr_reps)
{
	struct bb_report *reps = calloc(nr ? nr : 1, sizeof(*reps));
	struct bb_report *r = NULL;

	if (!reps)
		return NULL;
	*nr_reps = 0;
	for (unsigned int i = 0; i < nr; i++) {
		const struct bb_report *t = &thr[i];

		if (!bb_joins_previous(thr, i)) {
			r = &reps[(*nr_reps)++];
			bb_stat_init(&r->st[DDIR_READ]);
			bb_stat_init(&r->st[DDIR_WRITE]);
			r->o = t->o;
		}
		r->njobs += t->njobs;
		for (int d = 0; d < DDIR_NR; d++)
			bb_stat_merge(&r->st[d], &t->st[d]);
		r->runtime_ns = max(r->runtime_ns, t->runtime_ns);
		r->err = r->err ? r->err : t->err;
		r->vblocks += t->vblocks;
		r->vbad += t->vbad;
		r->usr_ms += t->usr_ms;
		r->sys_ms += t->sys_ms;
		r->ctx += t->ctx;
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

	printf("%s: (groupid=%u, jobs=%u): err=%2d: pid=%d\n", r->o->name,
	       r->o->groupid, r->njobs, -r->err, (int)getpid());
	if (r->st[DDIR_READ].lat.nr)
		bb_print_dir("read", &r->st[DDIR_READ], r->runtime_ns);
	if (r->st[DDIR_WRITE].lat.nr)
		bb_print_dir("write", &r->st[DDIR_WRITE], r->runtime_ns);
	printf("  cpu          : usr=%.2f%%, sys=%.2f%%, ctx=%" PRIu64 "\n",
	       ms ? 100 * r->usr_ms / ms : 0, ms ? 100 * r->sys_ms / ms : 0, r->ctx);
	if (r->o->verify)
		printf("  verify       : %" PRIu64 " blocks read back, %" PRIu64 " bad\n",
		       r->vblocks, r->vbad);
}

/* fio's "Run status group N" lines, one per direction that did I/O. */
static void bb_print_group(const struct bb_report *thr, unsigned int nr,
			   unsigned int g)
{
	static const char *const label[] = { "   READ", "  WRITE" };

	printf("\nRun status group %u (all jobs):\n", g);
	for (int d = 0; d < DDIR_NR; d++) {
		uint64_t bytes = 0, rmin = UINT64_MAX, rmax = 0;
		double bmin = INFINITY, bmax = 0;
		char s[8][32];

		for (unsigned int i = 0; i < nr; i++) {
			uint64_t rt = thr[i].runtime_ns;
			double bw = bb_rate(thr[i].st[d].bytes, rt);

			/* fio: a job without I/O this way has no rate in it */
			if (thr[i].o->groupid != g || !thr[i].st[d].bytes)
				continue;
			bytes += thr[i].st[d].bytes;
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

static void bb_print_disk(const struct bb_run_info *run)
{
	const struct blk_disk_stats *ds = &run->ds;
	const char *line = run->diskstat_line;
	uint64_t wall_ns = run->wall_ns;

	printf("\nDisk stats (read/write):\n");
	printf("  %s: ios=%" PRIu64 "/%" PRIu64 ", sectors=%" PRIu64 "/%" PRIu64
	       ", merge=%" PRIu64 "/%" PRIu64 ", ticks=%" PRIu64 "/%" PRIu64
	       ", in_queue=%" PRIu64 ", util=%.2f%%\n", run->devname,
	       ds->ios[STAT_READ], ds->ios[STAT_WRITE], ds->sectors[STAT_READ],
	       ds->sectors[STAT_WRITE], ds->merges[STAT_READ],
	       ds->merges[STAT_WRITE], ds->ticks_ms[STAT_READ],
	       ds->ticks_ms[STAT_WRITE], ds->time_in_queue_ms,
	       bb_util(ds, wall_ns));
	printf("  mean request=%.1fKiB, discards=%" PRIu64 ", flushes=%" PRIu64
	       ", in_flight=%" PRIu64 "\n", bb_mean_request_kb(ds),
	       ds->ios[STAT_DISCARD], ds->ios[STAT_FLUSH], ds->in_flight);
	if (*line)
		printf("  diskstats: %s%s", line,
		       line[strlen(line) - 1] == '\n' ? "" : "\n");
}

/* ---- JSON, with fio's field names ---- */

/* json+ adds the histogram's buckets (set once per report) */
static bool json_plus;

static void json_lat(struct json_writer *w, const char *key,
		     const struct lat_hist *h)
{
	fio_json_lat(w, key, h, fio_default_pcts, fio_default_pcts_nr,
		     json_plus);
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

/* Keys "job options" always has; a job's own options add the rest. */
static const char *const json_fixed_opts[] = { "name", "filename", "rw",
	"readwrite", "bs", "blocksize", "iodepth", "numjobs", "prioclass",
	"prio", "weight", "rate_iops", "thinktime", "thinktime_blocks", NULL };

static void json_opt_u(struct json_writer *w, const char *key, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	json_string(w, key, buf);
}

/* fio's "job options": values as strings, the job's own as given. */
static void json_job_options(struct json_writer *w, const struct bb_opts *o)
{
	json_open_object(w, "job options");
	json_string(w, "name", o->name);
	json_string(w, "filename", o->filename);
	json_string(w, "rw", bb_rw_names[o->rw]);
	json_opt_u(w, "bs", o->bs);
	json_opt_u(w, "iodepth", o->iodepth);
	json_opt_u(w, "numjobs", o->numjobs);
	if (o->ioprio) {
		json_opt_u(w, "prioclass", IOPRIO_PRIO_CLASS(o->ioprio));
		json_opt_u(w, "prio", IOPRIO_PRIO_LEVEL(o->ioprio));
	}
	if (o->weight)
		json_opt_u(w, "weight", o->weight);
	if (o->rate_iops_str)
		json_string(w, "rate_iops", o->rate_iops_str);
	if (o->thinktime_ns) {
		json_opt_u(w, "thinktime", o->thinktime_ns / 1000);
		json_opt_u(w, "thinktime_blocks", o->thinktime_blocks);
	}
	for (size_t i = 0; i < o->nr_own; i++) {
		const struct jobfile_entry *e = &o->own[i];
		bool fixed = false;

		for (int k = 0; json_fixed_opts[k] && !fixed; k++)
			fixed = !strcmp(e->key, json_fixed_opts[k]);
		if (!fixed)
			json_string(w, e->key, e->val ? e->val : "");
	}
	json_close_object(w);
}

static void json_job(struct json_writer *w, const struct bb_report *r)
{
	double ms = r->runtime_ns / 1e6 * r->njobs;

	json_open_object(w, NULL);
	json_string(w, "jobname", r->o->name);
	json_u64(w, "groupid", r->o->groupid);
	json_u64(w, "error", (uint64_t)-r->err);
	json_u64(w, "eta", 0);
	json_u64(w, "elapsed", (r->runtime_ns + 500000000) / 1000000000);
	json_job_options(w, r->o);
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
	if (r->o->verify) {
		json_open_object(w, "verify");
		json_u64(w, "blocks", r->vblocks);
		json_u64(w, "bad", r->vbad);
		json_close_object(w);
	}
	json_close_object(w);
}

static void json_disk(struct json_writer *w, const struct bb_run_info *run)
{
	const struct blk_disk_stats *ds = &run->ds;
	uint64_t wall_ns = run->wall_ns;

	json_open_object(w, "disk");
	json_string(w, "name", run->devname);
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
	json_string(w, "name", run->devname);
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
			  const struct bb_run_info *run)
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
	json_disk(&w, run);
	json_close_object(&w);
}

int bb_report_print(const struct bb_report *thr, unsigned int nr,
		    const struct bb_run_info *run)
{
	unsigned int nr_reps;
	struct bb_report *reps = bb_group(thr, nr, &nr_reps);

	if (!reps)
		return -ENOMEM;
	if (run->format == FMT_NORMAL) {
		for (unsigned int i = 0; i < nr_reps; i++)
			bb_print_report(&reps[i]);
		for (unsigned int g = 0; g < run->nr_groups; g++)
			bb_print_group(thr, nr, g);
		bb_print_disk(run);
	} else {
		json_plus = run->format == FMT_JSON_PLUS;
		bb_print_json(reps, nr_reps, run);
	}
	fflush(stdout);
	free(reps);
	return 0;
}
