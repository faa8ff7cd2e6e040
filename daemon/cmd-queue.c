// SPDX-License-Identifier: MIT
/*
 * "queue NAME [ATTR [VALUE]]": the /sys/block/<dev>/queue/ attributes with
 * their sysfs names, units and formats (blk-sysfs.c), iosched/<attr> for
 * the scheduler's. No ATTR lists every attribute (as grep over the
 * queue directory would); ATTR alone reads one; ATTR VALUE writes one.
 */
#include <errno.h>
#include <string.h>

#include <blkstack/blkdev.h>

#include "blkstackd.h"
#include "block/blk.h"

static void strip_newline(char *s)
{
	s[strcspn(s, "\n")] = '\0';
}

static void queue_print(struct cmd_reply *r, const char *attr,
			const char *val)
{
	if (r->json)
		json_string(&r->json_w, attr, val);
	else
		fprintf(r->out, "%-24s %s\n", attr, val);
}

/*
 * The scheduler's attributes, read under sysfs_lock so that the elevator
 * cannot change while its table is walked.
 */
static void queue_list_iosched(struct gendisk *disk, struct cmd_reply *r)
{
	struct request_queue *q = disk->queue;
	const struct elv_fs_entry *a;
	char name[96], val[256];

	pthread_mutex_lock(&q->sysfs_lock);
	if (q->elevator && q->elevator->type->elevator_attrs) {
		for (a = q->elevator->type->elevator_attrs; a->name; a++) {
			if (a->show(q->elevator, val, sizeof(val)) < 0)
				continue;
			strip_newline(val);
			snprintf(name, sizeof(name), "iosched/%s", a->name);
			queue_print(r, name, val);
		}
	}
	pthread_mutex_unlock(&q->sysfs_lock);
}

static int queue_list(struct gendisk *disk, struct cmd_reply *r)
{
	const char *const *names = blk_queue_attr_names();
	char val[512];

	if (r->json) {
		json_open_object(&r->json_w, NULL);
		json_string(&r->json_w, "device", blk_disk_name(disk));
		json_open_object(&r->json_w, "queue");
	}
	for (int i = 0; names[i]; i++) {
		if (blk_queue_attr_show(disk, names[i], val, sizeof(val)) < 0)
			continue;
		strip_newline(val);
		queue_print(r, names[i], val);
	}
	queue_list_iosched(disk, r);
	if (r->json) {
		json_close_object(&r->json_w);
		json_close_object(&r->json_w);
	}
	return 0;
}

static int queue_show(struct gendisk *disk, const char *attr,
		      struct cmd_reply *r)
{
	char val[512];
	int ret = blk_queue_attr_show(disk, attr, val, sizeof(val));

	if (ret < 0)
		return ret;
	strip_newline(val);
	if (r->json) {
		json_open_object(&r->json_w, NULL);
		json_string(&r->json_w, "device", blk_disk_name(disk));
		json_string(&r->json_w, attr, val);
		json_close_object(&r->json_w);
	} else {
		fprintf(r->out, "%s\n", val);
	}
	return 0;
}

static int queue_cmd(struct blkstackd *d, int argc, char **argv,
		     struct cmd_reply *r)
{
	struct gendisk *disk = cmd_get_disk(argv[0], r);
	int ret;

	if (!disk)
		return -ENODEV;
	if (argc == 1)
		ret = queue_list(disk, r);
	else if (argc == 2)
		ret = queue_show(disk, argv[1], r);
	else
		ret = blk_queue_attr_store(disk, argv[1], argv[2]);
	blk_put_disk(disk);
	return ret;
}

/*
 * What undoes "queue NAME ATTR VALUE": the current value written back.
 * sysfs shows the scheduler as "[cur] other..." and takes only "cur".
 */
static int queue_undo(struct blkstackd *d, int argc, char **argv, char *buf,
		      size_t len)
{
	struct gendisk *disk;
	char val[512], *open, *close;
	char *line[4];
	int ret;

	buf[0] = '\0';
	if (argc != 3)
		return 0;
	disk = blk_get_disk(argv[0]);
	if (!disk)
		return 0;	/* the run will fail and say why */
	ret = blk_queue_attr_show(disk, argv[1], val, sizeof(val));
	blk_put_disk(disk);
	if (ret < 0)
		return 0;
	strip_newline(val);
	open = strchr(val, '[');
	close = open ? strchr(open, ']') : NULL;
	if (open && close) {
		*close = '\0';
		memmove(val, open + 1, strlen(open + 1) + 1);
	}
	line[0] = "queue";
	line[1] = argv[0];
	line[2] = argv[1];
	line[3] = val;
	return cmd_join(4, line, buf, len);
}

const struct blk_cmd queue_cmds[] = {
	{ "queue", NULL, "queue NAME [ATTR [VALUE]]", 1, 3, CMD_CONFIG,
	  queue_cmd, queue_undo },
	{ NULL },
};
