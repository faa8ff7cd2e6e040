// SPDX-License-Identifier: MIT
/*
 * "dev add|del|ls": devices made with blkstack_dev_add() from the driver
 * table (null, uring, nbd, ...). "dev ls" is laid out like lsblk(8):
 * NAME MAJ:MIN SIZE RO DRIVER SCHED EXPORTS; --json like lsblk --json
 * --bytes ("blockdevices", sizes in bytes).
 */
#include <errno.h>
#include <string.h>

#include <blkstack/blkdev.h>
#include <blkstack/nbd-server.h>

#include "blkstackd.h"

/* dev add DRIVER NAME [KEY=VALUE]...: the words are joined with ',' */
static int dev_add(struct blkstackd *d, int argc, char **argv,
		   struct cmd_reply *r)
{
	char params[4096];
	size_t pos = 0;

	for (int i = 2; i < argc; i++) {
		if (!strchr(argv[i], '=') || argv[i][0] == '=')
			return cmd_err(r, -EINVAL, "dev add: '%s': driver "
				       "parameters are KEY=VALUE", argv[i]);
		pos += (size_t)snprintf(params + pos, sizeof(params) - pos,
					"%s%s", pos ? "," : "", argv[i]);
		if (pos >= sizeof(params))
			return cmd_err(r, -E2BIG, "dev add: parameters "
				       "longer than %zu bytes", sizeof(params));
	}
	params[pos] = '\0';
	return blkstack_dev_add(argv[0], argv[1], params, NULL);
}

int cmd_dev_del(struct blkstackd *d, const char *name, struct cmd_reply *r)
{
	struct gendisk *disk = cmd_get_disk(name, r);
	int ret;

	if (!disk)
		return -ENODEV;
	/* exports go first: the server holds disk references */
	if (d->nbd)
		nbd_export_del_disk(d->nbd, disk);
	blk_put_disk(disk);
	ret = blkstack_dev_del(name);
	if (!ret)
		config_forget_dev(d, name);
	return ret;
}

static int dev_del(struct blkstackd *d, int argc, char **argv,
		   struct cmd_reply *r)
{
	return cmd_dev_del(d, argv[0], r);
}

/* lsblk's human sizes: 512B, 64M, 1.5G */
static void human_size(unsigned long long bytes, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	unsigned long long div = 1;
	int u = 0;

	while (u < 6 && bytes >= div * 1024) {
		div *= 1024;
		u++;
	}
	if (bytes % div == 0)
		snprintf(buf, len, "%llu%c", bytes / div, units[u]);
	else
		snprintf(buf, len, "%.1f%c", (double)bytes / (double)div,
			 units[u]);
}

struct exports_of {
	struct gendisk *disk;
	char names[512];
	const char *names_v[16];
	int nr;
};

static int collect_export(const struct nbd_export_info *info, void *arg)
{
	struct exports_of *e = arg;
	size_t pos = strlen(e->names);

	if (info->disk != e->disk || e->nr == 16)
		return 0;
	if (pos + strlen(info->name) + 2 > sizeof(e->names))
		return 0;
	e->names_v[e->nr++] = e->names + pos + (pos ? 1 : 0);
	snprintf(e->names + pos, sizeof(e->names) - pos, "%s%s",
		 pos ? "," : "", info->name);
	return 0;
}

struct dev_ls_ctx {
	struct blkstackd *d;
	struct cmd_reply *r;
};

static int dev_ls_one(struct gendisk *disk, void *arg)
{
	struct dev_ls_ctx *ctx = arg;
	struct cmd_reply *r = ctx->r;
	unsigned long long bytes = (unsigned long long)get_capacity(disk) << 9;
	struct exports_of e = { .disk = disk };
	char size[32], sched[64], devt[24];
	int major, minor;

	blk_disk_devt(disk, &major, &minor);
	snprintf(devt, sizeof(devt), "%d:%d", major, minor);
	human_size(bytes, size, sizeof(size));
	cmd_disk_scheduler(disk, sched, sizeof(sched));
	if (ctx->d->nbd)
		nbd_export_for_each(ctx->d->nbd, collect_export, &e);
	if (!r->json) {
		fprintf(r->out, "%-12s %-8s %6s %2d %-6s %-12s %s\n",
			blk_disk_name(disk), devt, size, bdev_read_only(disk),
			blk_disk_driver(disk), sched, e.nr ? e.names : "");
		return 0;
	}
	json_open_object(&r->json_w, NULL);
	json_string(&r->json_w, "name", blk_disk_name(disk));
	json_string(&r->json_w, "maj:min", devt);
	json_u64(&r->json_w, "size", bytes);
	json_bool(&r->json_w, "ro", bdev_read_only(disk));
	json_string(&r->json_w, "driver", blk_disk_driver(disk));
	json_string(&r->json_w, "sched", sched);
	json_u64(&r->json_w, "log-sec", bdev_logical_block_size(disk));
	json_u64(&r->json_w, "phy-sec", bdev_physical_block_size(disk));
	json_open_array(&r->json_w, "exports");
	for (int i = 0; i < e.nr; i++) {
		char one[256];

		snprintf(one, sizeof(one), "%.*s",
			 (int)strcspn(e.names_v[i], ","), e.names_v[i]);
		json_string(&r->json_w, NULL, one);
	}
	json_close_array(&r->json_w);
	json_close_object(&r->json_w);
	return 0;
}

static int dev_ls(struct blkstackd *d, int argc, char **argv,
		  struct cmd_reply *r)
{
	struct dev_ls_ctx ctx = { d, r };

	if (r->json) {
		json_open_object(&r->json_w, NULL);
		json_open_array(&r->json_w, "blockdevices");
	} else {
		fprintf(r->out, "%-12s %-8s %6s %2s %-6s %-12s %s\n", "NAME",
			"MAJ:MIN", "SIZE", "RO", "DRIVER", "SCHED", "EXPORTS");
	}
	blkstack_dev_for_each(dev_ls_one, &ctx);
	if (r->json) {
		json_close_array(&r->json_w);
		json_close_object(&r->json_w);
	}
	return 0;
}

/* Reload undoes an add by deleting the device again. */
static int dev_add_undo(struct blkstackd *d, int argc, char **argv,
			char *buf, size_t len)
{
	char *del[] = { "dev", "del", argv[1] };

	return cmd_join(3, del, buf, len);
}

const struct blk_cmd dev_cmds[] = {
	{ "dev", "add", "dev add DRIVER NAME [KEY=VALUE]...", 2, -1,
	  CMD_CONFIG, dev_add, dev_add_undo },
	{ "dev", "del", "dev del NAME", 1, 1, 0, dev_del, NULL },
	{ "dev", "ls", "dev ls", 0, 0, 0, dev_ls, NULL },
	{ NULL },
};
