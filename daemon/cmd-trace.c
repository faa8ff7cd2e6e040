// SPDX-License-Identifier: MIT
/*
 * "trace NAME ...": blktrace's ioctl path (BLKTRACESETUP/START/STOP/
 * TEARDOWN) and the blktrace tool's one-shot run, on a device of the
 * daemon (docs/blktrace.md). The sysfs path is "queue NAME trace/enable
 * 1" and friends, through blk-sysfs.c.
 *
 *   trace NAME setup [buf_size=B] [buf_nr=N] [act_mask=LIST] [start=LBA]
 *                    [end=LBA] [pid=PID] [dir=DIR] [out=PATH]
 *   trace NAME start | stop | teardown
 *   trace NAME run -w SECONDS [-D DIR] [setup options]
 *   trace NAME live [-w SECONDS] [setup options]   (listens to the trace
 *                    set up, if any; else traces for the while)
 *   trace NAME stats
 *
 * out=PATH streams the merged binary trace to a file or a FIFO (the
 * daemon's "-o -": "mkfifo f; blkparse -i - < f &" first); the control
 * connection itself carries one reply, so it cannot be the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blkstack/blkdev.h>
#include <blkstack/blktrace.h>

#include "blkstackd.h"

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
		} else if (!eq) {
			ret = cmd_err(r, -EINVAL,
				      "trace: '%s': expected "
				      "buf_size= buf_nr= act_mask= start= end= "
				      "pid= dir= out=%s",
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
			if (buts->out_fd >= 0)
				close(buts->out_fd);
			buts->out_fd = trace_open_out(r, eq + 1);
			if (buts->out_fd < 0)
				ret = buts->out_fd;
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

static int trace_run(struct gendisk *disk, int argc, char **argv,
		     struct cmd_reply *r)
{
	struct blk_trace_setup buts;
	struct blk_trace_stats st;
	unsigned int secs = 0;
	uint64_t dropped = 0;
	int ret;

	blk_trace_setup_init(&buts);
	ret = trace_parse(r, argc, argv, &buts, &secs);
	if (!ret && !secs)
		ret = cmd_err(r, -EINVAL,
			      "trace run: -w SECONDS (1..86400) "
			      "is required");
	if (!ret)
		ret = trace_lib_err(r,
				    blk_trace_run(disk, &buts, secs, &dropped));
	if (buts.out_fd >= 0)
		close(buts.out_fd);
	if (ret)
		return ret;
	if (dropped && !r->json)
		fprintf(r->out, "You have %llu dropped events\n",
			(unsigned long long)dropped);
	if (!blk_trace_get_stats(disk, &st))
		trace_print_stats(r, &st);
	return 0;
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
		ret = trace_run(disk, argc, argv, r);
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
	  "[OPTIONS]",
	  2, -1, 0, trace_cmd, NULL },
	{ NULL },
};
