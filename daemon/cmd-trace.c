// SPDX-License-Identifier: MIT
/*
 * "trace NAME ...": blktrace's ioctl path (BLKTRACESETUP/START/STOP/
 * TEARDOWN) and the blktrace tool's one-shot run, on a device of the
 * daemon (docs/blktrace.md). The sysfs path is "queue NAME trace/enable
 * 1" and friends, through blk-sysfs.c.
 *
 *   trace NAME setup [buf_size=B] [buf_nr=N] [act_mask=LIST] [start=LBA]
 *                    [end=LBA] [pid=PID] [dir=DIR] [out=PATH|-] [-o PATH|-]
 *   trace NAME start | stop | teardown
 *   trace NAME run -w SECONDS [-D DIR] [setup options]
 *   trace NAME live [-w SECONDS] [setup options]   (listens to the trace
 *                    set up, if any; else traces for the while)
 *   trace NAME stats
 *
 * out=PATH / -o PATH streams the merged binary trace to a file or a FIFO;
 * "-o -" to the descriptor the client passed with the command (blkctl's
 * stdout: "blkctl trace nullb0 run -w 5 -o - | blkparse -i -"). The
 * stream ends at stop or teardown, so its reader sees end of file.
 *
 * run waits on a job thread (cmd_defer()): the control loop serves other
 * commands, this device's included, while it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blkstack/blkdev.h>
#include <blkstack/blktrace.h>

#include "blkstackd.h"
#include "lib/compiler.h"

static int trace_num(struct cmd_reply *r, const char *key, const char *v,
		     uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || end == v || *end || *v == '-' || n > max)
		return cmd_err(r, -EINVAL,
			       "trace: %s=%s: not a number in "
			       "0..%llu",
			       key, v, (unsigned long long)max);
	*out = n;
	return 0;
}

/* A FIFO needs its reader first: never block the daemon on open. */
static int trace_open_out(struct cmd_reply *r, const char *path)
{
	int fd = open(path,
		      O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC,
		      0644);

	if (fd < 0)
		return cmd_err(
			r, -errno, "trace: out=%s: %s%s", path, strerror(errno),
			errno == ENXIO ? " (start the FIFO's reader first)"
				       : "");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* Where the merged stream goes: a path, or "-", the passed descriptor. */
static int trace_out(struct cmd_reply *r, struct blk_trace_setup *buts,
		     const char *where)
{
	int fd;

	if (buts->out_fd >= 0)
		close(buts->out_fd);
	buts->out_fd = -1;
	if (strcmp(where, "-"))
		fd = trace_open_out(r, where);
	else if (!r->has_fd)
		fd = cmd_err(r, -EINVAL,
			     "trace: -o - streams to the descriptor the "
			     "client passes with the command (blkctl passes "
			     "its stdout); none came with this one");
	else if ((fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0)) < 0)
		fd = cmd_err(r, -errno, "trace: -o -: %s", strerror(errno));
	if (fd < 0)
		return fd;
	buts->out_fd = fd;
	return 0;
}

/* Parse KEY=VALUE setup options (and -w/-D for run and live). */
static int trace_parse(struct cmd_reply *r, int argc, char **argv,
		       struct blk_trace_setup *buts, unsigned int *secs)
{
	uint64_t v;
	int ret = 0;

	for (int i = 0; i < argc && !ret; i++) {
		char *a = argv[i], *eq = strchr(a, '=');

		if (secs && !strcmp(a, "-w") && i + 1 < argc) {
			ret = trace_num(r, "-w", argv[++i], 86400, &v);
			*secs = (unsigned int)v;
		} else if (secs && !strcmp(a, "-D") && i + 1 < argc) {
			buts->dir = argv[++i];
		} else if (!strcmp(a, "-o") && i + 1 < argc) {
			ret = trace_out(r, buts, argv[++i]);
		} else if (!eq) {
			ret = cmd_err(r, -EINVAL,
				      "trace: '%s': expected "
				      "buf_size= buf_nr= act_mask= start= end= "
				      "pid= dir= out= -o PATH|-%s",
				      a, secs ? " -w SECONDS -D DIR" : "");
		} else if (!strncmp(a, "buf_size=", 9)) {
			ret = trace_num(r, "buf_size", eq + 1, UINT32_MAX, &v);
			buts->buf_size = (uint32_t)v;
		} else if (!strncmp(a, "buf_nr=", 7)) {
			ret = trace_num(r, "buf_nr", eq + 1, UINT32_MAX, &v);
			buts->buf_nr = (uint32_t)v;
		} else if (!strncmp(a, "act_mask=", 9)) {
			ret = blk_trace_str2mask(eq + 1, &buts->act_mask);
			if (ret)
				cmd_err(r, ret, "%s", blkstack_errmsg());
		} else if (!strncmp(a, "start=", 6)) {
			ret = trace_num(r, "start", eq + 1, UINT64_MAX,
					&buts->start_lba);
		} else if (!strncmp(a, "end=", 4)) {
			ret = trace_num(r, "end", eq + 1, UINT64_MAX,
					&buts->end_lba);
		} else if (!strncmp(a, "pid=", 4)) {
			ret = trace_num(r, "pid", eq + 1, UINT32_MAX, &v);
			buts->pid = (uint32_t)v;
		} else if (!strncmp(a, "dir=", 4)) {
			buts->dir = eq + 1;
		} else if (!strncmp(a, "out=", 4)) {
			ret = trace_out(r, buts, eq + 1);
		} else {
			ret = cmd_err(r, -EINVAL,
				      "trace: unknown option '%s'; "
				      "valid: buf_size= buf_nr= act_mask= "
				      "start= end= pid= dir= out=",
				      a);
		}
	}
	return ret;
}

static int trace_lib_err(struct cmd_reply *r, int ret)
{
	return ret ? cmd_err(r, ret, "%s", blkstack_errmsg()) : 0;
}

static void trace_print_stats(struct cmd_reply *r,
			      const struct blk_trace_stats *st)
{
	if (r->json)
		blk_trace_stats_json(st, r->out);
	else
		blk_trace_stats_show(st, r->out);
}

static int trace_setup(struct gendisk *disk, int argc, char **argv,
		       struct cmd_reply *r)
{
	struct blk_trace_setup buts;
	int ret;

	blk_trace_setup_init(&buts);
	ret = trace_parse(r, argc, argv, &buts, NULL);
	if (!ret)
		ret = trace_lib_err(r, blk_trace_setup(disk, &buts));
	/* the trace writes to its own duplicate, if it kept one */
	if (buts.out_fd >= 0)
		close(buts.out_fd);
	return ret;
}

/* "trace NAME run": setup, start, wait (on a job thread), teardown. */
struct trace_run {
	struct cmd_job job;
	struct gendisk *disk;
	struct blk_trace_setup buts;
	char *dir;
	unsigned int secs;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool cancelled;
};

/* Is the run's trace still there (not torn down by "dev del" & co.)? */
static bool trace_run_alive(struct trace_run *t)
{
	struct blk_trace_stats st;

	return !blk_trace_get_stats(t->disk, &st) && st.state != 0;
}

/*
 * Wait the run's seconds, or until its trace is torn down from elsewhere
 * (looked at every second); false if cut short by cancel.
 */
static bool trace_run_wait(struct trace_run *t)
{
	struct timespec end, tick;
	bool done;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += t->secs;
	pthread_mutex_lock(&t->lock);
	while (!t->cancelled) {
		clock_gettime(CLOCK_MONOTONIC, &tick);
		tick.tv_sec++;
		if (tick.tv_sec > end.tv_sec ||
		    (tick.tv_sec == end.tv_sec && tick.tv_nsec > end.tv_nsec))
			tick = end;
		if (pthread_cond_timedwait(&t->wake, &t->lock, &tick) ==
			    ETIMEDOUT &&
		    (tick.tv_sec == end.tv_sec && tick.tv_nsec == end.tv_nsec))
			break;
		pthread_mutex_unlock(&t->lock);
		done = trace_run_alive(t);
		pthread_mutex_lock(&t->lock);
		if (!done)
			break;
	}
	done = !t->cancelled;
	pthread_mutex_unlock(&t->lock);
	return done;
}

static int trace_run_job(struct cmd_job *job, struct cmd_reply *r)
{
	struct trace_run *t = container_of(job, struct trace_run, job);
	struct blk_trace_stats st;
	bool whole = false;
	int ret;

	ret = blk_trace_setup(t->disk, &t->buts);
	/* the trace has its own: the stream must end with the trace */
	if (t->buts.out_fd >= 0)
		close(t->buts.out_fd);
	t->buts.out_fd = -1;
	if (!ret) {
		ret = blk_trace_start(t->disk);
		if (ret)
			cmd_err(r, ret, "%s", blkstack_errmsg());
		whole = !ret && trace_run_wait(t);
		/* "dev del" meanwhile tore it down already: nothing to do */
		blk_trace_teardown(t->disk);
	}
	if (ret)
		return r->err[0] ? ret : trace_lib_err(r, ret);
	if (!whole)
		return cmd_err(r, -ESHUTDOWN,
			       "trace run: blkstackd is shutting down; the "
			       "trace was stopped early and written out");
	if (blk_trace_get_stats(t->disk, &st))
		return 0;
	if (st.dropped && !r->json)
		fprintf(r->out, "You have %llu dropped events\n",
			(unsigned long long)st.dropped);
	trace_print_stats(r, &st);
	return 0;
}

static void trace_run_cancel(struct cmd_job *job)
{
	struct trace_run *t = container_of(job, struct trace_run, job);

	pthread_mutex_lock(&t->lock);
	t->cancelled = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
}

static void trace_run_free(struct cmd_job *job)
{
	struct trace_run *t = container_of(job, struct trace_run, job);

	if (t->buts.out_fd >= 0)
		close(t->buts.out_fd);
	blk_put_disk(t->disk);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t->dir);
	free(t);
}

/* Check the arguments here; the waiting half runs as a job. */
static int trace_run(struct gendisk *disk, int argc, char **argv,
		     struct cmd_reply *r)
{
	struct trace_run *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;
	int ret;

	if (!t) {
		blk_put_disk(disk);
		return cmd_err(r, -ENOMEM, "out of memory");
	}
	blk_trace_setup_init(&t->buts);
	ret = trace_parse(r, argc, argv, &t->buts, &t->secs);
	if (!ret && !t->secs)
		ret = cmd_err(r, -EINVAL,
			      "trace run: -w SECONDS (1..86400) "
			      "is required");
	/* the words go with the connection; the job outlives it */
	if (!ret && t->buts.dir && !(t->dir = strdup(t->buts.dir)))
		ret = cmd_err(r, -ENOMEM, "out of memory");
	if (ret) {
		if (t->buts.out_fd >= 0)
			close(t->buts.out_fd);
		free(t);
		blk_put_disk(disk);
		return ret;
	}
	t->buts.dir = t->dir;
	t->disk = disk; /* the caller's reference is the job's now */
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->wake, &ca);
	pthread_condattr_destroy(&ca);
	t->job = (struct cmd_job){ .run = trace_run_job,
				   .cancel = trace_run_cancel,
				   .free = trace_run_free };
	return cmd_defer(r, &t->job);
}

static void trace_live_line(void *arg, const char *line)
{
	fprintf(arg, "%s\n", line);
}

static int trace_live(struct gendisk *disk, int argc, char **argv,
		      struct cmd_reply *r)
{
	struct blk_trace_setup buts;
	unsigned int secs = 5;
	int ret;

	if (r->json)
		return cmd_err(r, -EINVAL, "trace live: text only (no --json)");
	blk_trace_setup_init(&buts);
	ret = trace_parse(r, argc, argv, &buts, &secs);
	if (!ret && !secs)
		ret = cmd_err(r, -EINVAL, "trace live: -w SECONDS is 1..86400");
	if (ret)
		goto out;
	buts.live = trace_live_line;
	buts.live_arg = r->out;
	/*
	 * A trace is set up: listen to it (its own filters apply); else
	 * make one for the while.
	 */
	if (!blk_trace_live(disk, trace_live_line, r->out)) {
		struct timespec ts = { .tv_sec = secs };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		blk_trace_live(disk, NULL, NULL);
		goto out;
	}
	ret = trace_lib_err(r, blk_trace_run(disk, &buts, secs, NULL));
out:
	if (buts.out_fd >= 0)
		close(buts.out_fd);
	return ret;
}

static int trace_cmd(struct blkstackd *d, int argc, char **argv,
		     struct cmd_reply *r)
{
	struct blk_trace_stats st;
	struct gendisk *disk;
	const char *verb = argv[1];
	int ret;

	disk = cmd_get_disk(argv[0], r);
	if (!disk)
		return -ENODEV;
	argc -= 2;
	argv += 2;
	if (!strcmp(verb, "setup"))
		ret = trace_setup(disk, argc, argv, r);
	else if (!strcmp(verb, "run"))
		return trace_run(disk, argc, argv, r); /* takes the reference */
	else if (!strcmp(verb, "live"))
		ret = trace_live(disk, argc, argv, r);
	else if (argc)
		ret = cmd_err(r, -EINVAL, "trace %s takes no options", verb);
	else if (!strcmp(verb, "start"))
		ret = trace_lib_err(r, blk_trace_start(disk));
	else if (!strcmp(verb, "stop"))
		ret = trace_lib_err(r, blk_trace_stop(disk));
	else if (!strcmp(verb, "teardown"))
		ret = trace_lib_err(r, blk_trace_teardown(disk));
	else if (!strcmp(verb, "stats")) {
		ret = trace_lib_err(r, blk_trace_get_stats(disk, &st));
		if (!ret)
			trace_print_stats(r, &st);
	} else
		ret = cmd_err(r, -EINVAL,
			      "trace: unknown verb '%s'; valid: "
			      "setup start stop teardown run live stats",
			      verb);
	blk_put_disk(disk);
	return ret;
}

const struct blk_cmd trace_cmds[] = {
	{ "trace", NULL,
	  "trace NAME setup|start|stop|teardown|run|live|stats "
	  "[OPTIONS] (-o - streams to blkctl's stdout)",
	  2, -1, 0, trace_cmd, NULL },
	{ NULL },
};
