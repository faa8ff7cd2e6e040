/* SPDX-License-Identifier: MIT */
/*
 * blkstackd's insides: the daemon state, the reply a command fills, and
 * the command registry shared by the control socket and the config file.
 *
 * Adding a command family is one file and one line:
 *
 *   daemon/cmd-foo.c:
 *	static int foo_show(struct blkstackd *d, int argc, char **argv,
 *			    struct cmd_reply *r) { ... }
 *	const struct blk_cmd foo_cmds[] = {
 *		{ "foo", "show", "foo show NAME", 1, 1, 0, foo_show },
 *		{ NULL },
 *	};
 *
 *   daemon/cmd.c: one line "foo_cmds," in cmd_tables[] (and the extern
 *   beside it).
 *
 * A command's argv holds only its arguments (after the family and verb
 * words). It writes output to r->out (text lines) or, when r->json, JSON
 * through r->json_w; it returns 0, or -errno after cmd_err() (or a library
 * call that set blkstack_errmsg()) said what was wrong. A command that
 * fails must change nothing. Commands run one at a time on the daemon's
 * main thread, except the second half of one that waits (cmd_defer()).
 */
#ifndef BLKSTACK_DAEMON_BLKSTACKD_H
#define BLKSTACK_DAEMON_BLKSTACKD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/json.h"

struct gendisk;
struct nbd_server;
struct blk_config;

struct blkstackd {
	const char *state_dir;
	const char *nbd_listen;		/* NULL: no NBD server */
	struct nbd_server *nbd;
	const char *config_path;	/* NULL: embedded default or empty */
	struct blk_config *config;	/* what the config file created */
};

struct cmd_job;

struct cmd_reply {
	FILE *out;			/* output lines */
	bool json;			/* the client asked for --json */
	struct json_writer json_w;	/* on @out */
	char err[1024];			/* cmd_err()'s message */
	/*
	 * A descriptor the client passed with the command (blkctl's stdout
	 * for "trace ... -o -"); the control loop closes it after the
	 * command returns, so a command keeps a duplicate.
	 */
	bool has_fd;
	int fd;
	bool can_defer;			/* cmd_defer() is allowed */
	struct cmd_job *job;		/* set by cmd_defer() */
};

/*
 * A command that waits (trace run -w SECONDS) finishes on a thread of its
 * own, so the control loop keeps serving other clients meanwhile: its
 * run() checks its arguments, fills a job and returns cmd_defer(r, job).
 * The control loop then calls job->run() on a new thread with a fresh
 * reply and answers the client when it returns. At shutdown job->cancel()
 * (any thread, any time before job->free()) asks it to end soon; the loop
 * waits for every job, then calls job->free().
 */
struct cmd_job {
	int (*run)(struct cmd_job *job, struct cmd_reply *r);
	void (*cancel)(struct cmd_job *job);
	void (*free)(struct cmd_job *job);
};

/* Flags of a command. */
enum {
	CMD_CONFIG	= 1 << 0,	/* may appear in the config file */
};

struct blk_cmd {
	const char *family;		/* first word: "dev" */
	const char *verb;		/* second word: "add"; NULL if none */
	const char *usage;		/* "dev add DRIVER NAME [KEY=VALUE]..." */
	int min_args, max_args;		/* after family and verb; -1: any */
	unsigned int flags;
	int (*run)(struct blkstackd *d, int argc, char **argv,
		   struct cmd_reply *r);
	/*
	 * Optional, for CMD_CONFIG commands: before @run on a config reload,
	 * write into @buf the command line that would undo it (the current
	 * value of an attribute), or "" if nothing to undo. Reload uses it
	 * to roll back when a later line fails.
	 */
	int (*undo_line)(struct blkstackd *d, int argc, char **argv,
			 char *buf, size_t len);
};

/* ---- registry and dispatch (cmd.c) ---- */

/* Set r->err from the format; returns @err (a -errno). */
int cmd_err(struct cmd_reply *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * Split @line into words (blanks separate; '...' and "..." quote; \
 * escapes outside single quotes; '#' starts a comment at a word start).
 * Returns the count (0 for a blank line) or -EINVAL with r->err set.
 * The words point into @line, which is modified.
 */
int cmd_split(char *line, char **argv, int max, struct cmd_reply *r);
/* The command @argv names (family and verb), or NULL with r->err set. */
const struct blk_cmd *cmd_lookup(int argc, char **argv, int *nwords,
				 struct cmd_reply *r);
/*
 * Look up and run @argv. @config: only CMD_CONFIG commands are allowed.
 * Returns 0 or -errno with r->err holding the one-line message.
 */
int cmd_run(struct blkstackd *d, int argc, char **argv, struct cmd_reply *r,
	    bool config);
/* Split and run one line ("--json" first word sets r->json). */
int cmd_run_line(struct blkstackd *d, char *line, struct cmd_reply *r);
/* Quote @argv back into one line that cmd_split() splits the same way. */
int cmd_join(int argc, char *const *argv, char *buf, size_t len);

/*
 * Hand @job to the control loop (r->can_defer must be set; returns 0).
 * Without a control loop to take it (r->can_defer false) the job runs
 * here and now, and its result is returned.
 */
int cmd_defer(struct cmd_reply *r, struct cmd_job *job);

/* Helpers for commands. */
struct gendisk *cmd_get_disk(const char *name, struct cmd_reply *r);
/* The device's scheduler name (the bracketed one of the sysfs list). */
void cmd_disk_scheduler(struct gendisk *disk, char *buf, size_t len);
/* An io context's priority as the ioprio commands take it: "be:4", "idle". */
void cmd_format_ioprio(uint16_t ioprio, char *buf, size_t len);
/* Remove @disk's exports and the device itself (flushing nothing). */
int cmd_dev_del(struct blkstackd *d, const char *name, struct cmd_reply *r);

/* ---- config file (config.c) ---- */

/*
 * Make the running state what @path (or, when NULL, the embedded default)
 * describes: add what is new, remove what the config created and no
 * longer lists, re-apply every other line. All or nothing: on a bad line
 * everything done is undone, and *@errbuf says "FILE:LINE: message".
 */
int config_apply(struct blkstackd *d, const char *path, char *errbuf,
		 size_t len);
/* The embedded default (nullb0 and disk0), errors logged, not fatal. */
int config_apply_default(struct blkstackd *d);
void config_free(struct blkstackd *d);
/* A device or export name the config owns was removed at run time. */
void config_forget_dev(struct blkstackd *d, const char *name);

/* ---- control socket (control.c) ---- */

/* Bind and listen on @path (made when ready, atomically). fd or -errno. */
int control_listen(const char *path);
/*
 * Serve the control socket @lfd until @on_signal, called when the
 * signalfd @sfd is readable, returns true.
 */
void control_loop(struct blkstackd *d, int sfd, int lfd,
		  bool (*on_signal)(struct blkstackd *d, int sfd));

#endif
