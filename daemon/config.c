// SPDX-License-Identifier: MIT
/*
 * The config file: blkctl commands, one a line, that describe the state
 * the daemon should be in. Applying it (at start and on SIGHUP) reconciles:
 *
 *  - a "dev add" whose device the config made before with the same driver
 *    and parameters is left alone; a changed one is deleted and made again;
 *    a new one is added; devices the config made and no longer lists are
 *    removed (last, when everything else has worked);
 *  - an "export nbd" already in place is left alone, others are added;
 *    exports the config made and no longer lists are removed;
 *  - every other line ("queue ...", "trace ...") runs again, in order.
 *
 * All or nothing: each step records the command that undoes it (the
 * command's ->undo_line), and a failing line undoes everything done so
 * far in reverse. Devices and exports made at run time by blkctl are not
 * the config's: reload leaves them alone and refuses a config that names
 * them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <blkstack/blkdev.h>
#include <blkstack/nbd-server.h>

#include "blkstackd.h"
#include "blkctl-proto.h"
#include "lib/log.h"

#define CFG_MAX_ARGS	64

struct cfg_line {
	unsigned int lineno;
	char *text;			/* the words, split in place */
	int argc;
	char *argv[CFG_MAX_ARGS];
	const struct blk_cmd *cmd;
};

/* A device or export the config made, as the config said it. */
struct cfg_obj {
	char *name;
	char *def;			/* the joined command line */
};

struct blk_config {
	struct cfg_obj *devs, *exps;
	int nr_devs, nr_exps;
};

struct cfg_file {
	const char *path;
	struct cfg_line *lines;
	int nr;
	struct blk_config want;		/* what this file makes */
};

struct undo_log {
	char **lines;
	int nr, cap;
};

static void objs_free(struct cfg_obj *o, int nr)
{
	for (int i = 0; i < nr; i++) {
		free(o[i].name);
		free(o[i].def);
	}
	free(o);
}

static void blk_config_clear(struct blk_config *c)
{
	objs_free(c->devs, c->nr_devs);
	objs_free(c->exps, c->nr_exps);
	memset(c, 0, sizeof(*c));
}

static struct cfg_obj *obj_find(struct cfg_obj *o, int nr, const char *name)
{
	for (int i = 0; i < nr; i++)
		if (!strcmp(o[i].name, name))
			return &o[i];
	return NULL;
}

static int obj_add(struct cfg_obj **o, int *nr, const char *name,
		   const char *def)
{
	struct cfg_obj *n = realloc(*o, (size_t)(*nr + 1) * sizeof(**o));

	if (!n)
		return -ENOMEM;
	*o = n;
	n[*nr].name = strdup(name);
	n[*nr].def = strdup(def);
	if (!n[*nr].name || !n[*nr].def) {
		free(n[*nr].name);
		free(n[*nr].def);
		return -ENOMEM;
	}
	(*nr)++;
	return 0;
}

static void cfg_file_free(struct cfg_file *f)
{
	for (int i = 0; i < f->nr; i++)
		free(f->lines[i].text);
	free(f->lines);
	blk_config_clear(&f->want);
}

/* The export name of an "export nbd DEV [name=X] [readonly]" line. */
static const char *export_name(const struct cfg_line *l)
{
	for (int i = 3; i < l->argc; i++)
		if (!strncmp(l->argv[i], "name=", 5) && l->argv[i][5])
			return l->argv[i] + 5;
	return l->argv[2];
}

static bool is_cmd(const struct cfg_line *l, const char *family,
		   const char *verb)
{
	return !strcmp(l->cmd->family, family) && l->cmd->verb &&
	       !strcmp(l->cmd->verb, verb);
}

/* Record what a dev add / export nbd line makes; duplicates are errors. */
static int want_line(struct cfg_file *f, struct cfg_line *l,
		     struct cmd_reply *r)
{
	struct blk_config *w = &f->want;
	char def[BLKCTL_MAX_LINE];
	const char *name;

	if (cmd_join(l->argc, l->argv, def, sizeof(def)))
		return cmd_err(r, -E2BIG, "line too long");
	if (is_cmd(l, "dev", "add")) {
		name = l->argv[3];
		if (obj_find(w->devs, w->nr_devs, name))
			return cmd_err(r, -EEXIST, "device '%s' is added "
				       "twice", name);
		return obj_add(&w->devs, &w->nr_devs, name, def);
	}
	if (is_cmd(l, "export", "nbd")) {
		name = export_name(l);
		if (obj_find(w->exps, w->nr_exps, name))
			return cmd_err(r, -EEXIST, "export '%s' is made "
				       "twice", name);
		return obj_add(&w->exps, &w->nr_exps, name, def);
	}
	return 0;
}

/* Split and check one line: a known config command with its arguments. */
static int parse_line(struct cfg_file *f, struct cfg_line *l,
		      struct cmd_reply *r)
{
	int nwords, nargs;

	l->argc = cmd_split(l->text, l->argv, CFG_MAX_ARGS, r);
	if (l->argc <= 0)
		return l->argc;
	l->cmd = cmd_lookup(l->argc, l->argv, &nwords, r);
	if (!l->cmd)
		return -EINVAL;
	if (!(l->cmd->flags & CMD_CONFIG))
		return cmd_err(r, -EINVAL, "'%s%s%s' does not belong in a "
			       "config file (it changes nothing lasting)",
			       l->cmd->family, l->cmd->verb ? " " : "",
			       l->cmd->verb ? l->cmd->verb : "");
	nargs = l->argc - nwords;
	if (nargs < l->cmd->min_args ||
	    (l->cmd->max_args >= 0 && nargs > l->cmd->max_args))
		return cmd_err(r, -EINVAL, "usage: %s", l->cmd->usage);
	return want_line(f, l, r);
}

/* Read and check the whole file before anything is changed. */
static int cfg_file_read(struct cfg_file *f, const char *path, char *errbuf,
			 size_t errlen)
{
	struct cmd_reply r = { 0 };
	FILE *in = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	int ret = 0;

	memset(f, 0, sizeof(*f));
	f->path = path;
	if (!in) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (getline(&buf, &cap, in) > 0) {
		struct cfg_line *l, *n;

		lineno++;
		n = realloc(f->lines, (size_t)(f->nr + 1) * sizeof(*n));
		if (!n) {
			ret = -ENOMEM;
			break;
		}
		f->lines = n;
		l = &n[f->nr];
		memset(l, 0, sizeof(*l));
		l->lineno = lineno;
		l->text = strdup(buf);
		if (!l->text) {
			ret = -ENOMEM;
			break;
		}
		f->nr++;
		ret = parse_line(f, l, &r);
		if (ret < 0)
			break;
	}
	free(buf);
	fclose(in);
	if (ret < 0) {
		snprintf(errbuf, errlen, "%s:%u: %s", path, lineno,
			 r.err[0] ? r.err : strerror(-ret));
		cfg_file_free(f);
	}
	return ret < 0 ? ret : 0;
}

static int undo_push(struct undo_log *u, const char *line)
{
	char *dup;

	if (!line[0])
		return 0;
	if (u->nr == u->cap) {
		int cap = u->cap ? u->cap * 2 : 16;
		char **n = realloc(u->lines, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		u->lines = n;
		u->cap = cap;
	}
	dup = strdup(line);
	if (!dup)
		return -ENOMEM;
	u->lines[u->nr++] = dup;
	return 0;
}

/* Run the undo lines in reverse; what fails is logged, the rest goes on. */
static void undo_run(struct blkstackd *d, struct undo_log *u)
{
	while (u->nr > 0) {
		char *line = u->lines[--u->nr];
		struct cmd_reply r = { .out = fopen("/dev/null", "we") };
		char shown[256];

		/* the line is split in place: keep a copy to log */
		snprintf(shown, sizeof(shown), "%s", line);
		if (!r.out)
			pr_err("config: cannot undo %s: %s", shown,
			       strerror(errno));
		else if (cmd_run_line(d, line, &r) < 0)
			pr_err("config: undoing failed: %s: %s", shown, r.err);
		else
			pr_info("config: undone: %s", shown);
		if (r.out)
			fclose(r.out);
		free(line);
	}
}

static void undo_free(struct undo_log *u)
{
	for (int i = 0; i < u->nr; i++)
		free(u->lines[i]);
	free(u->lines);
}

static bool export_exists(struct blkstackd *d, const char *name);

/*
 * Is the object already there as the config wants it? Then the line is
 * skipped. An object with that name that the config did not make is a
 * conflict.
 */
static int already_there(struct blkstackd *d, const struct cfg_line *l,
			 struct cmd_reply *r)
{
	struct blk_config *have = d->config;
	struct cfg_obj *o;
	char def[BLKCTL_MAX_LINE];
	const char *name;
	bool exists;

	if (is_cmd(l, "dev", "add")) {
		struct gendisk *disk;

		name = l->argv[3];
		o = obj_find(have->devs, have->nr_devs, name);
		disk = blk_get_disk(name);
		exists = disk != NULL;
		if (disk)
			blk_put_disk(disk);
	} else if (is_cmd(l, "export", "nbd")) {
		name = export_name(l);
		o = obj_find(have->exps, have->nr_exps, name);
		exists = export_exists(d, name);
	} else {
		return 0;
	}
	if (exists && !o)
		return cmd_err(r, -EEXIST, "'%s' exists and was made by blkctl, "
			       "not by the config; delete it first", name);
	cmd_join(l->argc, l->argv, def, sizeof(def));
	return exists && o && !strcmp(o->def, def);
}

struct export_find {
	const char *name;
	bool found;
};

static int export_find_one(const struct nbd_export_info *info, void *arg)
{
	struct export_find *e = arg;

	if (strcmp(info->name, e->name))
		return 0;
	e->found = true;
	return 1;
}

static bool export_exists(struct blkstackd *d, const char *name)
{
	struct export_find e = { name, false };

	if (d->nbd)
		nbd_export_for_each(d->nbd, export_find_one, &e);
	return e.found;
}

struct undo_exports {
	struct gendisk *disk;
	struct undo_log *u;
	const char *dev;
	int ret;
	char names[16][256];
	int nr;
};

/* Note the exports of a device about to go, to re-make them on undo. */
static int note_export(const struct nbd_export_info *info, void *arg)
{
	struct undo_exports *e = arg;
	char name_opt[300], line[BLKCTL_MAX_LINE];
	char *argv[] = { "export", "nbd", (char *)e->dev, name_opt,
			 "readonly" };

	if (info->disk != e->disk || e->nr == 16)
		return 0;
	snprintf(e->names[e->nr++], sizeof(e->names[0]), "%s", info->name);
	snprintf(name_opt, sizeof(name_opt), "name=%s", info->name);
	if (!e->ret)
		e->ret = cmd_join(info->readonly ? 5 : 4, argv, line,
				  sizeof(line)) ?: undo_push(e->u, line);
	return 0;
}

/* Delete a device the config made before, its exports first, undoably. */
static int replace_dev(struct blkstackd *d, const char *name,
		       struct undo_log *u, struct cmd_reply *r)
{
	struct cfg_obj *o = obj_find(d->config->devs, d->config->nr_devs,
				     name);
	struct undo_exports e = { .u = u, .dev = name };
	int ret;

	e.disk = blk_get_disk(name);
	if (!e.disk)
		return 0;
	if (d->nbd)
		nbd_export_for_each(d->nbd, note_export, &e);
	for (int i = 0; i < e.nr && d->nbd; i++)
		nbd_export_del(d->nbd, e.names[i]);
	blk_put_disk(e.disk);
	ret = e.ret ?: cmd_dev_del(d, name, r);
	return ret ?: undo_push(u, o->def);
}

static int replace_export(struct blkstackd *d, const char *name,
			  struct undo_log *u)
{
	struct cfg_obj *o = obj_find(d->config->exps, d->config->nr_exps,
				     name);
	int ret = undo_push(u, o->def);

	if (!ret && d->nbd)
		nbd_export_del(d->nbd, name);
	return ret;
}

/* One line of the file: skip, replace-and-run, or run; undoably. */
static int apply_line(struct blkstackd *d, struct cfg_line *l,
		      struct undo_log *u, struct cmd_reply *r)
{
	char undo[BLKCTL_MAX_LINE] = "";
	int nwords = l->cmd->verb ? 2 : 1;
	int ret = already_there(d, l, r);

	if (ret)
		return ret > 0 ? 0 : ret;
	if (is_cmd(l, "dev", "add") &&
	    obj_find(d->config->devs, d->config->nr_devs, l->argv[3]))
		ret = replace_dev(d, l->argv[3], u, r);
	else if (is_cmd(l, "export", "nbd") &&
		 obj_find(d->config->exps, d->config->nr_exps,
			  export_name(l)) &&
		 export_exists(d, export_name(l)))
		ret = replace_export(d, export_name(l), u);
	if (ret)
		return ret;
	if (l->cmd->undo_line)
		l->cmd->undo_line(d, l->argc - nwords, l->argv + nwords, undo,
				  sizeof(undo));
	ret = cmd_run(d, l->argc, l->argv, r, true);
	if (ret)
		return ret;
	return undo_push(u, undo);
}

/* After success: what the config made before and no longer lists goes. */
static void remove_gone(struct blkstackd *d, struct blk_config *want)
{
	struct blk_config *have = d->config;
	struct cmd_reply r = { 0 };

	for (int i = 0; i < have->nr_exps; i++)
		if (!obj_find(want->exps, want->nr_exps, have->exps[i].name) &&
		    export_exists(d, have->exps[i].name)) {
			pr_info("config: unexport %s", have->exps[i].name);
			nbd_export_del(d->nbd, have->exps[i].name);
		}
	/* last made first: a device stacked on another goes before it */
	for (int i = have->nr_devs - 1; i >= 0; i--)
		if (!obj_find(want->devs, want->nr_devs, have->devs[i].name)) {
			pr_info("config: dev del %s", have->devs[i].name);
			if (cmd_dev_del(d, have->devs[i].name, &r) &&
			    r.err[0])
				pr_warn("config: %s", r.err);
		}
}

static bool applying;

static int apply_file(struct blkstackd *d, struct cfg_file *f, char *errbuf,
		      size_t errlen)
{
	struct undo_log u = { 0 };
	struct cmd_reply r = { 0 };
	int ret = 0, i;

	r.out = fopen("/dev/null", "we");
	if (!r.out)
		return -errno;
	applying = true;
	for (i = 0; i < f->nr && !ret; i++)
		if (f->lines[i].argc > 0)
			ret = apply_line(d, &f->lines[i], &u, &r);
	if (ret) {
		snprintf(errbuf, errlen, "%s:%u: %s", f->path,
			 f->lines[i - 1].lineno,
			 r.err[0] ? r.err : strerror(-ret));
		undo_run(d, &u);
	} else {
		remove_gone(d, &f->want);
		blk_config_clear(d->config);
		*d->config = f->want;
		memset(&f->want, 0, sizeof(f->want));
	}
	applying = false;
	undo_free(&u);
	fclose(r.out);
	return ret;
}

static int config_alloc(struct blkstackd *d)
{
	if (!d->config)
		d->config = calloc(1, sizeof(*d->config));
	return d->config ? 0 : -ENOMEM;
}

int config_apply(struct blkstackd *d, const char *path, char *errbuf,
		 size_t len)
{
	struct cfg_file f;
	int ret = config_alloc(d);

	if (ret) {
		snprintf(errbuf, len, "out of memory");
		return ret;
	}
	ret = cfg_file_read(&f, path, errbuf, len);
	if (ret)
		return ret;
	ret = apply_file(d, &f, errbuf, len);
	cfg_file_free(&f);
	return ret;
}

/*
 * The embedded default: a 1 GiB memory-backed null device and a 1 GiB
 * io_uring device on a sparse file in the state directory, both exported
 * under their names. The null device has copied the data when queue_rq
 * returns (as the kernel's brd has), so it completes there (irqmode=0)
 * rather than paying a hop to a completion thread. A line that fails is logged and the rest goes on, so
 * that one missing piece does not take the daemon down.
 */
int config_apply_default(struct blkstackd *d)
{
	char path[4096];
	char *lines[][7] = {
		{ "dev", "add", "null", "nullb0", "size=1G", "memory_backed=1",
		  "irqmode=0" },
		{ "dev", "add", "uring", "disk0", path, "size=1G" },
		{ "export", "nbd", "nullb0" },
		{ "export", "nbd", "disk0" },
	};
	const int argcs[] = { 7, 6, 3, 3 };
	int failed = 0;

	snprintf(path, sizeof(path), "path=%s/disk0.img", d->state_dir);
	for (size_t i = 0; i < sizeof(argcs) / sizeof(argcs[0]); i++) {
		struct cmd_reply r = { 0 };
		char line[BLKCTL_MAX_LINE];

		r.out = fopen("/dev/null", "we");
		if (!r.out)
			return -errno;
		cmd_join(argcs[i], lines[i], line, sizeof(line));
		if (cmd_run(d, argcs[i], lines[i], &r, true) < 0) {
			pr_err("default: %s: %s", line, r.err);
			failed++;
		} else {
			pr_info("default: %s", line);
		}
		fclose(r.out);
	}
	return failed;
}

void config_forget_dev(struct blkstackd *d, const char *name)
{
	struct blk_config *c = d->config;
	struct cfg_obj *o;

	if (applying || !c)
		return;
	o = obj_find(c->devs, c->nr_devs, name);
	if (!o)
		return;
	free(o->name);
	free(o->def);
	/* keep the order: removal goes newest first */
	memmove(o, o + 1, (size_t)(c->devs + --c->nr_devs - o) * sizeof(*o));
}

void config_free(struct blkstackd *d)
{
	if (!d->config)
		return;
	blk_config_clear(d->config);
	free(d->config);
	d->config = NULL;
}
