/* SPDX-License-Identifier: MIT */
/*
 * fio-style command lines from a table of options: --NAME=VALUE, or
 * --NAME alone for a boolean; '-' and '_' are the same in names. Sizes
 * take k/m/g/t/p as powers of 1024 (fio's rule), times s/ms/us/m/h.
 * A bad argument gets one line on stderr, "PROG: ARG: what is valid".
 */
#ifndef BLKSTACK_LIB_OPTIONS_H
#define BLKSTACK_LIB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_type {
	OPT_STR,	/* const char *, pointing into argv */
	OPT_UINT,	/* unsigned int within [lo, hi] */
	OPT_SIZE,	/* uint64_t bytes */
	OPT_TIME,	/* uint64_t nanoseconds; a bare number is seconds */
	OPT_BOOL,	/* bool: --NAME, --NAME=1 or --NAME=0 */
	OPT_ENUM,	/* int: the index of the value among the non-aliases */
	OPT_TIME_US,	/* uint64_t nanoseconds; a bare number is microseconds
			 * (fio's thinktime) */
};

struct opt_def {
	const char *name;
	enum opt_type type;
	void *dst;
	const char *const *vals;	/* OPT_ENUM, NULL-ended; "a=b": a is an
					 * alias of b */
	unsigned int lo, hi;		/* OPT_UINT bounds */
	bool *seen;			/* set true when given (optional) */
	const char *help;
	const char *once;		/* given twice: refused with this (needs
					 * @seen) */
};

struct opt_table {
	const char *prog;		/* the messages' prefix */
	const struct opt_def *defs;
	size_t nr;
	const char *no_words;		/* why a word without -- is refused */
};

#define OPTS_HELP	1	/* --help or -h: show opts_usage(), exit 0 */
#define OPTS_VERSION	2	/* --version */

/* Set each option from argv[1..]: 0, OPTS_HELP, OPTS_VERSION or -EINVAL. */
int opts_parse(const struct opt_table *t, int argc, char **argv);
/*
 * Set the option @name (@len characters; '-' and '_' alike) from @val (NULL
 * for a bare boolean); @arg names it in messages ("--bs=3", "job.fio:4").
 * 0, or -EINVAL/-ENOENT after the message.
 */
int opts_set_one(const struct opt_table *t, const char *name, size_t len,
		 const char *val, const char *arg);
/* One line per option: "  --NAME  help". */
void opts_usage(const struct opt_table *t, FILE *f);
/* "PROG: ARG: WHAT" on stderr; returns -EINVAL. */
int opts_err(const struct opt_table *t, const char *arg, const char *what);

/* fio's sizes (4096, 4k, 1m, 2gib, 0x1000) and times (10, 500ms, 2m). */
int opt_parse_size(const char *s, uint64_t *out);
int opt_parse_time(const char *s, uint64_t *ns);

#endif
