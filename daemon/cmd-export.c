// SPDX-License-Identifier: MIT
/*
 * "export nbd NAME [name=EXPORT] [readonly]", "export ls" and "unexport
 * EXPORT": devices served by the daemon's NBD server (<blkstack/nbd-server.h>).
 */
#include <errno.h>
#include <string.h>

#include <blkstack/blkdev.h>
#include <blkstack/nbd-server.h>

#include "blkstackd.h"

static int need_server(struct blkstackd *d, struct cmd_reply *r)
{
	if (d->nbd)
		return 0;
	return cmd_err(r, -ENOTCONN, "no NBD server (blkstackd was started "
		       "with --nbd-listen none)");
}

/* Parse "name=EXPORT" and "readonly" (or "ro"); -EINVAL names a bad word. */
static int export_opts(int argc, char **argv, const char **name, bool *ro,
		       struct cmd_reply *r)
{
	*name = NULL;
	*ro = false;
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "name=", 5) && argv[i][5])
			*name = argv[i] + 5;
		else if (!strcmp(argv[i], "readonly") || !strcmp(argv[i], "ro"))
			*ro = true;
		else
			return cmd_err(r, -EINVAL, "export nbd: '%s': valid "
				       "options are name=EXPORT and readonly",
				       argv[i]);
	}
	return 0;
}

static int export_nbd(struct blkstackd *d, int argc, char **argv,
		      struct cmd_reply *r)
{
	struct gendisk *disk;
	const char *name;
	bool ro;
	int ret;

	ret = need_server(d, r) ?: export_opts(argc - 1, argv + 1, &name, &ro, r);
	if (ret)
		return ret;
	disk = cmd_get_disk(argv[0], r);
	if (!disk)
		return -ENODEV;
	ret = nbd_export_add(d->nbd, name, disk, ro);
	blk_put_disk(disk);
	return ret;
}

static int export_nbd_undo(struct blkstackd *d, int argc, char **argv,
			   char *buf, size_t len)
{
	const char *name;
	struct cmd_reply r = { 0 };
	char *line[2];
	bool ro;

	if (export_opts(argc - 1, argv + 1, &name, &ro, &r))
		return 0;
	line[0] = "unexport";
	line[1] = (char *)(name ? name : argv[0]);
	return cmd_join(2, line, buf, len);
}

static int unexport(struct blkstackd *d, int argc, char **argv,
		    struct cmd_reply *r)
{
	int ret = need_server(d, r);

	if (ret)
		return ret;
	ret = nbd_export_del(d->nbd, argv[0]);
	if (ret == -ENOENT)
		return cmd_err(r, ret, "no export '%s' (blkctl export ls "
			       "lists them)", argv[0]);
	return ret;
}

static int export_ls_one(const struct nbd_export_info *info, void *arg)
{
	struct cmd_reply *r = arg;
	char prio[16];

	cmd_format_ioprio(info->ioprio, prio, sizeof(prio));
	if (!r->json) {
		fprintf(r->out, "%-16s %-12s %-3s %-5u %-7s %u\n", info->name,
			blk_disk_name(info->disk), info->readonly ? "ro" : "rw",
			info->nr_conns, prio, info->weight);
		return 0;
	}
	json_open_object(&r->json_w, NULL);
	json_string(&r->json_w, "name", info->name);
	json_string(&r->json_w, "device", blk_disk_name(info->disk));
	json_bool(&r->json_w, "readonly", info->readonly);
	json_u64(&r->json_w, "connections", info->nr_conns);
	json_string(&r->json_w, "ioprio", prio);
	json_u64(&r->json_w, "weight", info->weight);
	json_close_object(&r->json_w);
	return 0;
}

static int export_ls(struct blkstackd *d, int argc, char **argv,
		     struct cmd_reply *r)
{
	if (r->json) {
		json_open_object(&r->json_w, NULL);
		json_string(&r->json_w, "listen", d->nbd_listen ?: "none");
		json_open_array(&r->json_w, "exports");
	} else {
		fprintf(r->out, "%-16s %-12s %-3s %-5s %-7s %s\n", "EXPORT",
			"DEVICE", "RW", "CONNS", "IOPRIO", "WEIGHT");
	}
	if (d->nbd)
		nbd_export_for_each(d->nbd, export_ls_one, r);
	if (r->json) {
		json_close_array(&r->json_w);
		json_close_object(&r->json_w);
	}
	return 0;
}

const struct blk_cmd export_cmds[] = {
	{ "export", "nbd", "export nbd NAME [name=EXPORT] [readonly]", 1, 3,
	  CMD_CONFIG, export_nbd, export_nbd_undo },
	{ "export", "ls", "export ls", 0, 0, 0, export_ls, NULL },
	{ "unexport", NULL, "unexport EXPORT", 1, 1, 0, unexport, NULL },
	{ NULL },
};
