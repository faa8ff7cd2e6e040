// SPDX-License-Identifier: MIT
/*
 * "debug NAME": the debugfs-style state dump of the device's queue
 * (/sys/kernel/debug/block/<dev>/: hctx state, tags and sched_tags,
 * dispatch lists, the pending ctx map), from blk_mq_debug_dump().
 */
#include <errno.h>

#include <blkstack/blkdev.h>

#include "blkstackd.h"

static int debug_cmd(struct blkstackd *d, int argc, char **argv,
		     struct cmd_reply *r)
{
	struct gendisk *disk;

	if (r->json)
		return cmd_err(r, -EINVAL, "debug: the state dump is text "
			       "only (no --json)");
	disk = cmd_get_disk(argv[0], r);
	if (!disk)
		return -ENODEV;
	blk_mq_debug_dump(disk, r->out);
	blk_put_disk(disk);
	return 0;
}

const struct blk_cmd debug_cmds[] = {
	{ "debug", NULL, "debug NAME", 1, 1, 0, debug_cmd, NULL },
	{ NULL },
};
