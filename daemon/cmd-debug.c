// SPDX-License-Identifier: MIT
/*
 * "debug NAME": the debugfs-style state dump of the device's queue
 * (/sys/kernel/debug/block/<dev>/: hctx state, tags and sched_tags,
 * dispatch lists, the pending ctx map), from blk_mq_debug_dump(); with
 * --json its counters (the scheduler's per class among them).
 */
#include <errno.h>

#include <blkstack/blkdev.h>

#include "blkstackd.h"

static int debug_cmd(struct blkstackd *d, int argc, char **argv,
		     struct cmd_reply *r)
{
	struct gendisk *disk = cmd_get_disk(argv[0], r);

	if (!disk)
		return -ENODEV;
	if (r->json)
		blk_mq_debug_dump_json(disk, r->out);
	else
		blk_mq_debug_dump(disk, r->out);
	blk_put_disk(disk);
	return 0;
}

const struct blk_cmd debug_cmds[] = {
	{ "debug", NULL, "debug NAME", 1, 1, 0, debug_cmd, NULL },
	{ NULL },
};
