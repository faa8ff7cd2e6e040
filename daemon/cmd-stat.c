// SPDX-License-Identifier: MIT
/*
 * "stat [NAME]": /proc/diskstats lines (major minor name and the 17
 * counters, Documentation/admin-guide/iostats.rst); --json names the
 * fields as blkbench's disk object does.
 */
#include <errno.h>

#include <blkstack/blkdev.h>

#include "blkstackd.h"

static void stat_json(struct gendisk *disk, struct json_writer *w)
{
	static const char *const kind[] = { "read", "write", "discard",
					    "flush" };
	struct blk_disk_stats st;
	char key[32];
	int major, minor;

	blk_disk_get_stats(disk, &st);
	blk_disk_devt(disk, &major, &minor);
	json_open_object(w, NULL);
	json_string(w, "name", blk_disk_name(disk));
	json_u64(w, "major", (uint64_t)major);
	json_u64(w, "minor", (uint64_t)minor);
	for (int k = STAT_READ; k <= STAT_FLUSH; k++) {
		snprintf(key, sizeof(key), "%s_ios", kind[k]);
		json_u64(w, key, st.ios[k]);
		/* diskstats has no flush merges or sectors */
		if (k != STAT_FLUSH) {
			snprintf(key, sizeof(key), "%s_merges", kind[k]);
			json_u64(w, key, st.merges[k]);
			snprintf(key, sizeof(key), "%s_sectors", kind[k]);
			json_u64(w, key, st.sectors[k]);
		}
		snprintf(key, sizeof(key), "%s_ticks", kind[k]);
		json_u64(w, key, st.ticks_ms[k]);
	}
	json_u64(w, "in_flight", st.in_flight);
	json_u64(w, "io_ticks", st.io_ticks_ms);
	json_u64(w, "time_in_queue", st.time_in_queue_ms);
	json_close_object(w);
}

static int stat_one(struct gendisk *disk, void *arg)
{
	struct cmd_reply *r = arg;
	char line[512];

	if (r->json) {
		stat_json(disk, &r->json_w);
		return 0;
	}
	blk_disk_stat_line(disk, line, sizeof(line));
	fputs(line, r->out);
	return 0;
}

static int stat_cmd(struct blkstackd *d, int argc, char **argv,
		    struct cmd_reply *r)
{
	struct gendisk *disk = NULL;

	if (argc == 1) {
		disk = cmd_get_disk(argv[0], r);
		if (!disk)
			return -ENODEV;
	}
	if (r->json) {
		json_open_object(&r->json_w, NULL);
		json_open_array(&r->json_w, "diskstats");
	}
	if (disk) {
		stat_one(disk, r);
		blk_put_disk(disk);
	} else {
		blkstack_dev_for_each(stat_one, r);
	}
	if (r->json) {
		json_close_array(&r->json_w);
		json_close_object(&r->json_w);
	}
	return 0;
}

const struct blk_cmd stat_cmds[] = {
	{ "stat", NULL, "stat [NAME]", 0, 1, 0, stat_cmd, NULL },
	{ NULL },
};
