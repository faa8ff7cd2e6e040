// SPDX-License-Identifier: MIT
/*
 * Who the NBD clients are to the schedulers: "export ioprio EXPORT
 * CLASS[:LEVEL] [weight=W]", "conn ls" and "conn ioprio ID CLASS[:LEVEL]
 * [weight=W]". Each connection's bios carry its own io context (pid = the
 * connection id, comm "nbd-conn-N"); these commands set the I/O priority
 * and weight in it that the schedulers key on (mq-deadline's classes,
 * bfq's per-queue weights). Class names are ionice(1)'s.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <blkstack/blkdev.h>
#include <blkstack/nbd-server.h>

#include "blkstackd.h"
#include "blkctl-proto.h"

#define IOPRIO_USAGE	"CLASS[:LEVEL] [weight=W]"
#define MAX_CONNS	1024	/* the server's own limit */

struct ioprio_arg {
	int class, level;
	unsigned int weight;		/* 0: derived from the priority */
};

static const char *const class_names[] = {
	[IOPRIO_CLASS_NONE] = "none", [IOPRIO_CLASS_RT] = "rt",
	[IOPRIO_CLASS_BE] = "be", [IOPRIO_CLASS_IDLE] = "idle",
};

/* ionice's long names are accepted too. */
static int parse_class(const char *s, size_t len)
{
	static const char *const long_names[] = {
		[IOPRIO_CLASS_NONE] = "none", [IOPRIO_CLASS_RT] = "realtime",
		[IOPRIO_CLASS_BE] = "best-effort", [IOPRIO_CLASS_IDLE] = "idle",
	};

	for (int c = IOPRIO_CLASS_NONE; c <= IOPRIO_CLASS_IDLE; c++)
		if ((strlen(class_names[c]) == len &&
		     !strncmp(s, class_names[c], len)) ||
		    (strlen(long_names[c]) == len &&
		     !strncmp(s, long_names[c], len)))
			return c;
	return -1;
}

/*
 * "be", "be:3", "rt:0", "idle", "none"; a level only where the kernel's
 * ioprio_set(2) gives it meaning. rt and be without one take 4 (ionice's
 * default).
 */
static int parse_prio(const char *s, struct ioprio_arg *a,
		      struct cmd_reply *r)
{
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);
	char *end;
	long level;

	a->class = parse_class(s, len);
	if (a->class < 0)
		return cmd_err(r, -EINVAL, "ioprio class '%.*s': valid classes "
			       "are rt, be, idle and none (ionice's names; "
			       "rt and be take :LEVEL 0..7)", (int)len, s);
	a->level = a->class == IOPRIO_CLASS_RT ||
		   a->class == IOPRIO_CLASS_BE ? 4 : 0;
	if (!colon)
		return 0;
	if (a->class == IOPRIO_CLASS_IDLE || a->class == IOPRIO_CLASS_NONE)
		return cmd_err(r, -EINVAL, "ioprio class %s takes no level "
			       "(only rt and be have levels 0..7)",
			       class_names[a->class]);
	errno = 0;
	level = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || level < 0 || level > 7)
		return cmd_err(r, -EINVAL, "ioprio level '%s': valid levels "
			       "are 0 (highest) .. 7 (lowest)", colon + 1);
	a->level = (int)level;
	return 0;
}

static int parse_weight(const char *s, struct ioprio_arg *a,
			struct cmd_reply *r)
{
	char *end;
	unsigned long w;

	if (strncmp(s, "weight=", 7))
		return cmd_err(r, -EINVAL, "'%s': the valid option is "
			       "weight=1..1000", s);
	errno = 0;
	w = strtoul(s + 7, &end, 10);
	if (!s[7] || *end || errno || s[7] == '-' || w < 1 || w > 1000)
		return cmd_err(r, -EINVAL, "weight '%s': valid weights are "
			       "1..1000 (as bfq's; leave it out to derive "
			       "it from the priority)", s + 7);
	a->weight = (unsigned int)w;
	return 0;
}

/* @argv: CLASS[:LEVEL] [weight=W] */
static int parse_ioprio(int argc, char **argv, struct ioprio_arg *a,
			struct cmd_reply *r)
{
	a->weight = 0;
	return parse_prio(argv[0], a, r) ?:
	       (argc > 1 ? parse_weight(argv[1], a, r) : 0);
}

void cmd_format_ioprio(uint16_t ioprio, char *buf, size_t len)
{
	int class = IOPRIO_PRIO_CLASS(ioprio);

	if (class == IOPRIO_CLASS_RT || class == IOPRIO_CLASS_BE)
		snprintf(buf, len, "%s:%d", class_names[class],
			 (int)IOPRIO_PRIO_LEVEL(ioprio));
	else
		snprintf(buf, len, "%s", class <= IOPRIO_CLASS_IDLE ?
			 class_names[class] : "?");
}

static int need_nbd(struct blkstackd *d, struct cmd_reply *r)
{
	if (d->nbd)
		return 0;
	return cmd_err(r, -ENOTCONN, "no NBD server (blkstackd was started "
		       "with --nbd-listen none)");
}

/* ---- export ioprio ---- */

struct export_lookup {
	const char *name;
	bool found;
	uint16_t ioprio, weight;
};

static int export_lookup_one(const struct nbd_export_info *info, void *arg)
{
	struct export_lookup *e = arg;

	if (strcmp(info->name, e->name))
		return 0;
	e->found = true;
	e->ioprio = info->ioprio;
	e->weight = info->weight;
	return 1;
}

struct conn_ids {
	const char *export_name;	/* NULL: every connection */
	unsigned int ids[MAX_CONNS];
	unsigned int nr;
};

static int conn_ids_one(const struct nbd_conn_info *info, void *arg)
{
	struct conn_ids *c = arg;

	if (c->nr < MAX_CONNS && info->export_name &&
	    !strcmp(info->export_name, c->export_name))
		c->ids[c->nr++] = info->id;
	return 0;
}

/*
 * The export's default for new connections and, so that the command
 * means what it says, the value of its open ones too.
 */
static int export_ioprio(struct blkstackd *d, int argc, char **argv,
			 struct cmd_reply *r)
{
	struct export_lookup e = { .name = argv[0] };
	struct conn_ids *c;
	struct ioprio_arg a;
	int ret;

	ret = need_nbd(d, r) ?: parse_ioprio(argc - 1, argv + 1, &a, r);
	if (ret)
		return ret;
	nbd_export_for_each(d->nbd, export_lookup_one, &e);
	if (!e.found)
		return cmd_err(r, -ENOENT, "no export '%s' (blkctl export ls "
			       "lists them)", argv[0]);
	c = calloc(1, sizeof(*c));
	if (!c)
		return cmd_err(r, -ENOMEM, "out of memory");
	c->export_name = argv[0];
	ret = nbd_export_set_ioprio(d->nbd, argv[0], a.class, a.level,
				    a.weight);
	if (!ret)
		nbd_conn_for_each(d->nbd, conn_ids_one, c);
	/* a connection that closed meanwhile needs nothing */
	for (unsigned int i = 0; !ret && i < c->nr; i++)
		nbd_conn_set_ioprio(d->nbd, c->ids[i], a.class, a.level,
				    a.weight);
	free(c);
	return ret;
}

/* On a config reload: the line that puts the export's value back. */
static int export_ioprio_undo(struct blkstackd *d, int argc, char **argv,
			      char *buf, size_t len)
{
	struct export_lookup e = { .name = argv[0] };
	char prio[16], weight[16];
	char *line[] = { "export", "ioprio", argv[0], prio, weight };

	if (!d->nbd)
		return 0;
	nbd_export_for_each(d->nbd, export_lookup_one, &e);
	if (!e.found)
		return 0;
	cmd_format_ioprio(e.ioprio, prio, sizeof(prio));
	snprintf(weight, sizeof(weight), "weight=%u", e.weight);
	return cmd_join(e.weight ? 5 : 4, line, buf, len);
}

/* ---- conn ls, conn ioprio ---- */

/* "127.0.0.1:40112" out of the server's "conn 7 (127.0.0.1:40112)". */
static void peer_addr(const char *peer, char *buf, size_t len)
{
	const char *open = strchr(peer, '(');
	const char *close = strrchr(peer, ')');

	if (open && close && close > open)
		snprintf(buf, len, "%.*s", (int)(close - open - 1), open + 1);
	else
		snprintf(buf, len, "%s", peer);
}

static int conn_ls_one(const struct nbd_conn_info *info, void *arg)
{
	struct cmd_reply *r = arg;
	char comm[32], addr[128], prio[16];
	const char *exp = info->export_name ? info->export_name : "-";

	snprintf(comm, sizeof(comm), "nbd-conn-%u", info->id);
	peer_addr(info->peer, addr, sizeof(addr));
	cmd_format_ioprio(info->ioprio, prio, sizeof(prio));
	if (!r->json) {
		fprintf(r->out, "%-5u %-16s %-24s %-14s %-7s %u\n", info->id,
			exp, addr, comm, info->export_name ? prio : "-",
			info->weight);
		return 0;
	}
	json_open_object(&r->json_w, NULL);
	json_u64(&r->json_w, "id", info->id);
	if (info->export_name)
		json_string(&r->json_w, "export", info->export_name);
	else
		json_null(&r->json_w, "export");	/* in the handshake */
	json_string(&r->json_w, "peer", addr);
	json_string(&r->json_w, "comm", comm);
	json_string(&r->json_w, "ioprio", prio);
	json_u64(&r->json_w, "weight", info->weight);
	json_bool(&r->json_w, "structured", info->structured);
	json_bool(&r->json_w, "extended", info->extended);
	json_close_object(&r->json_w);
	return 0;
}

static int conn_ls(struct blkstackd *d, int argc, char **argv,
		   struct cmd_reply *r)
{
	if (r->json) {
		json_open_object(&r->json_w, NULL);
		json_open_array(&r->json_w, "connections");
	} else {
		fprintf(r->out, "%-5s %-16s %-24s %-14s %-7s %s\n", "ID",
			"EXPORT", "PEER", "COMM", "IOPRIO", "WEIGHT");
	}
	if (d->nbd)
		nbd_conn_for_each(d->nbd, conn_ls_one, r);
	if (r->json) {
		json_close_array(&r->json_w);
		json_close_object(&r->json_w);
	}
	return 0;
}

static int conn_ioprio(struct blkstackd *d, int argc, char **argv,
		       struct cmd_reply *r)
{
	struct ioprio_arg a;
	unsigned long id;
	char *end;
	int ret;

	errno = 0;
	id = strtoul(argv[0], &end, 10);
	if (!argv[0][0] || *end || errno || argv[0][0] == '-' ||
	    id > UINT32_MAX)
		return cmd_err(r, -EINVAL, "connection '%s': an id is a number "
			       "(blkctl conn ls lists them)", argv[0]);
	ret = need_nbd(d, r) ?: parse_ioprio(argc - 1, argv + 1, &a, r);
	if (ret)
		return ret;
	ret = nbd_conn_set_ioprio(d->nbd, (unsigned int)id, a.class, a.level,
				  a.weight);
	if (ret == -ENOENT)
		return cmd_err(r, ret, "no connection %lu in transmission "
			       "(blkctl conn ls lists them)", id);
	return ret;
}

const struct blk_cmd ioprio_cmds[] = {
	{ "export", "ioprio", "export ioprio EXPORT " IOPRIO_USAGE, 2, 3,
	  CMD_CONFIG, export_ioprio, export_ioprio_undo },
	{ "conn", "ls", "conn ls", 0, 0, 0, conn_ls, NULL },
	{ "conn", "ioprio", "conn ioprio ID " IOPRIO_USAGE, 2, 3, 0,
	  conn_ioprio, NULL },
	{ NULL },
};
