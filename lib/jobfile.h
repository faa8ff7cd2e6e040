/* SPDX-License-Identifier: MIT */
/*
 * fio job descriptions as an ordered list of sections and options, from a
 * command line (--name=JOB starts a job section; options before the first
 * --name are global) and from job files (fio's ini syntax: [global] and
 * [JOB] headers, "key=value" or "key" lines, ';' and '#' comments). The
 * list says nothing about what the options mean: the program applies it
 * in order, each job starting from the globals seen before it.
 */
#ifndef BLKSTACK_LIB_JOBFILE_H
#define BLKSTACK_LIB_JOBFILE_H

#include <stddef.h>

enum jobfile_kind {
	JF_GLOBAL,		/* [global]: following options are defaults */
	JF_JOB,			/* [name] or --name=name: a new job */
	JF_OPTION,		/* key[=val] of the current section */
};

struct jobfile_entry {
	enum jobfile_kind kind;
	char *key;		/* the option or job name */
	char *val;		/* NULL: a bare option ("direct", "--thread") */
	char where[128];	/* "FILE:LINE" or "--key=val" for messages */
};

struct jobfile {
	struct jobfile_entry *e;
	size_t nr, alloc;
	char err[320];		/* why the last call failed, one line */
};

#define JOBFILE_HELP	1	/* --help or -h on the command line */
#define JOBFILE_VERSION	2	/* --version */

void jobfile_init(struct jobfile *jf);
void jobfile_free(struct jobfile *jf);
/*
 * argv[1..]: --key[=val] options, --name=JOB sections, and FILE words,
 * each a job file parsed after the whole command line (fio's order: the
 * command line's globals apply to the files' jobs too). 0, JOBFILE_HELP,
 * JOBFILE_VERSION or -errno with jf->err set.
 */
int jobfile_parse_args(struct jobfile *jf, int argc, char **argv);
/* A job file from disk; -errno with jf->err "FILE:LINE: why". */
int jobfile_parse_file(struct jobfile *jf, const char *path);
/* The same from memory; @path only names it in messages. */
int jobfile_parse_buf(struct jobfile *jf, const char *path, const char *buf);

#endif
