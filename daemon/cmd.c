// SPDX-License-Identifier: MIT
/*
 * The command registry and dispatcher: one table per family (cmd-*.c),
 * words split shell-style, usage checked before a command runs so that a
 * malformed line never reaches code that changes state.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include <blkstack/blkdev.h>
#include <blkstack/blk-mq.h>

#include "blkstackd.h"
#include "blkctl-proto.h"

extern const struct blk_cmd dev_cmds[];
extern const struct blk_cmd queue_cmds[];
extern const struct blk_cmd export_cmds[];
extern const struct blk_cmd ioprio_cmds[];
extern const struct blk_cmd stat_cmds[];
extern const struct blk_cmd debug_cmds[];
extern const struct blk_cmd trace_cmds[];
extern const struct blk_cmd help_cmds[];

/* The registry: adding a family is its file plus one line here. */
static const struct blk_cmd *const cmd_tables[] = {
	help_cmds,
	dev_cmds,
	queue_cmds,
	export_cmds,
	ioprio_cmds,
	stat_cmds,
	debug_cmds,
	trace_cmds,
	NULL,
};

#define CMD_MAX_ARGS	64

int cmd_err(struct cmd_reply *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return err;
}

/* Copy one word starting at *@sp into place at @dst; NULL on bad quoting. */
static char *split_word(char **sp, char *dst, struct cmd_reply *r)
{
	char *s = *sp, *start = dst;
	char quote = 0;

	for (; *s; s++) {
		if (quote) {
			if (*s == quote)
				quote = 0;
			else if (*s == '\\' && quote == '"' && s[1])
				*dst++ = *++s;
			else
				*dst++ = *s;
		} else if (*s == ' ' || *s == '\t' || *s == '\n' ||
			   *s == '\r') {
			break;
		} else if (*s == '\'' || *s == '"') {
			quote = *s;
		} else if (*s == '\\' && s[1]) {
			*dst++ = *++s;
		} else {
			*dst++ = *s;
		}
	}
	if (quote) {
		cmd_err(r, -EINVAL, "unterminated %c quote", quote);
		return NULL;
	}
	*sp = *s ? s + 1 : s;
	*dst = '\0';
	return start;
}

int cmd_split(char *line, char **argv, int max, struct cmd_reply *r)
{
	char *s = line;
	int argc = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (!*s || *s == '#')
			break;
		if (argc == max)
			return cmd_err(r, -E2BIG, "more than %d words", max);
		/* the word is written over itself: it never grows */
		argv[argc] = split_word(&s, s, r);
		if (!argv[argc])
			return -EINVAL;
		argc++;
	}
	return argc;
}

int cmd_join(int argc, char *const *argv, char *buf, size_t len)
{
	return blkctl_join(argc, argv, buf, len);
}

/* "dev add, dev del, ..., stat" for the unknown-command message. */
static void list_commands(char *buf, size_t len, const char *family)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (int t = 0; cmd_tables[t]; t++)
		for (const struct blk_cmd *c = cmd_tables[t]; c->family; c++) {
			if (family && strcmp(c->family, family))
				continue;
			pos += (size_t)snprintf(buf + pos,
						pos < len ? len - pos : 0,
						"%s%s%s%s", pos ? ", " : "",
						c->family, c->verb ? " " : "",
						c->verb ? c->verb : "");
		}
}

const struct blk_cmd *cmd_lookup(int argc, char **argv, int *nwords,
				 struct cmd_reply *r)
{
	bool family_known = false;
	char list[512];

	for (int t = 0; cmd_tables[t]; t++)
		for (const struct blk_cmd *c = cmd_tables[t]; c->family; c++) {
			if (strcmp(c->family, argv[0]))
				continue;
			family_known = true;
			if (!c->verb) {
				*nwords = 1;
				return c;
			}
			if (argc > 1 && !strcmp(c->verb, argv[1])) {
				*nwords = 2;
				return c;
			}
		}
	list_commands(list, sizeof(list), family_known ? argv[0] : NULL);
	if (family_known && argc == 1)
		cmd_err(r, -EINVAL, "%s: which one? valid: %s", argv[0], list);
	else if (family_known)
		cmd_err(r, -EINVAL, "%s %s: unknown command; valid: %s",
			argv[0], argv[1], list);
	else
		cmd_err(r, -EINVAL, "unknown command '%s'; valid: %s", argv[0],
			list);
	return NULL;
}

int cmd_run(struct blkstackd *d, int argc, char **argv, struct cmd_reply *r,
	    bool config)
{
	const struct blk_cmd *c;
	int nwords, nargs, ret;

	if (argc == 0)
		return cmd_err(r, -EINVAL, "empty command");
	c = cmd_lookup(argc, argv, &nwords, r);
	if (!c)
		return -EINVAL;
	if (config && !(c->flags & CMD_CONFIG))
		return cmd_err(r, -EINVAL, "'%s%s%s' does not belong in a "
			       "config file (it changes nothing lasting)",
			       c->family, c->verb ? " " : "",
			       c->verb ? c->verb : "");
	nargs = argc - nwords;
	if (nargs < c->min_args || (c->max_args >= 0 && nargs > c->max_args))
		return cmd_err(r, -EINVAL, "usage: %s", c->usage);
	blk_err(0, "%s", "");
	ret = c->run(d, nargs, argv + nwords, r);
	if (ret < 0 && !r->err[0])
		snprintf(r->err, sizeof(r->err), "%s",
			 blkstack_errmsg()[0] ? blkstack_errmsg() :
			 strerror(-ret));
	return ret;
}

int cmd_run_line(struct blkstackd *d, char *line, struct cmd_reply *r)
{
	char *argv[CMD_MAX_ARGS];
	int argc = cmd_split(line, argv, CMD_MAX_ARGS, r);

	if (argc < 0)
		return argc;
	if (argc > 0 && !strcmp(argv[0], "--json")) {
		r->json = true;
		json_init(&r->json_w, r->out);
		return cmd_run(d, argc - 1, argv + 1, r, false);
	}
	return cmd_run(d, argc, argv, r, false);
}

/* ---- helpers shared by the families ---- */

int cmd_defer(struct cmd_reply *r, struct cmd_job *job)
{
	int ret;

	if (r->can_defer) {
		r->job = job;
		return 0;
	}
	ret = job->run(job, r);
	job->free(job);
	return ret;
}

struct gendisk *cmd_get_disk(const char *name, struct cmd_reply *r)
{
	struct gendisk *disk = blk_get_disk(name);

	if (!disk)
		cmd_err(r, -ENODEV, "no device '%s' (blkctl dev ls lists them)",
			name);
	return disk;
}

void cmd_disk_scheduler(struct gendisk *disk, char *buf, size_t len)
{
	char list[256];
	char *open, *close;

	if (blk_queue_attr_show(disk, "scheduler", list, sizeof(list)) < 0) {
		snprintf(buf, len, "none");
		return;
	}
	open = strchr(list, '[');
	close = open ? strchr(open, ']') : NULL;
	if (open && close) {
		*close = '\0';
		snprintf(buf, len, "%s", open + 1);
	} else {
		list[strcspn(list, " \n")] = '\0';
		snprintf(buf, len, "%s", list);
	}
}

/* "help": every registered command's usage, new families included. */
static int help_cmd(struct blkstackd *d, int argc, char **argv,
		    struct cmd_reply *r)
{
	if (r->json) {
		json_open_object(&r->json_w, NULL);
		json_open_array(&r->json_w, "commands");
	}
	for (int t = 0; cmd_tables[t]; t++)
		for (const struct blk_cmd *c = cmd_tables[t]; c->family; c++) {
			if (r->json)
				json_string(&r->json_w, NULL, c->usage);
			else
				fprintf(r->out, "%s\n", c->usage);
		}
	if (r->json) {
		json_close_array(&r->json_w);
		json_close_object(&r->json_w);
	}
	return 0;
}

const struct blk_cmd help_cmds[] = {
	{ "help", NULL, "help", 0, 0, 0, help_cmd, NULL },
	{ NULL },
};
