// SPDX-License-Identifier: MIT
/*
 * blktrace events as text in blkparse's default format, for live mode:
 *
 *   dev    cpu  seq      time       pid  act rwbs  detail
 *   251,0    1    7   0.000123456  4321  Q   RS  2048 + 8 [fio]
 *
 * The detail after rwbs depends on the action, as blkparse prints it:
 * "sector + blocks [process]" for queue-side events, "sector + blocks
 * [error]" for completions, "[process] count" for unplugs, "sector /
 * new_sector" for splits, "<- (major,minor) from" for remaps.
 */
#include <string.h>

#include "blktrace-priv.h"

const char *bt_comm_of(struct blk_trace *bt, uint32_t pid)
{
	static _Thread_local char comm[16];

	strcpy(comm, "");
	pthread_mutex_lock(&bt->comm_lock);
	for (unsigned int i = 0; i < bt->nr_comms; i++)
		if (bt->comms[i].pid == pid) {
			memcpy(comm, bt->comms[i].comm, sizeof(comm));
			break;
		}
	pthread_mutex_unlock(&bt->comm_lock);
	return comm;
}

/* Read/write/barrier/sync letters: blkparse's rwbs column. */
static void bt_fill_rwbs(char *rwbs, uint32_t action, uint32_t bytes)
{
	int i = 0;

	if (action & BLK_TC_ACT(BLK_TC_FLUSH))
		rwbs[i++] = 'F';
	if (action & BLK_TC_ACT(BLK_TC_DISCARD))
		rwbs[i++] = 'D';
	else if (action & BLK_TC_ACT(BLK_TC_WRITE))
		rwbs[i++] = 'W';
	else if (bytes)
		rwbs[i++] = 'R';
	else
		rwbs[i++] = 'N';
	if (action & BLK_TC_ACT(BLK_TC_FUA))
		rwbs[i++] = 'F';
	if (action & BLK_TC_ACT(BLK_TC_AHEAD))
		rwbs[i++] = 'A';
	if (action & BLK_TC_ACT(BLK_TC_SYNC))
		rwbs[i++] = 'S';
	if (action & BLK_TC_ACT(BLK_TC_META))
		rwbs[i++] = 'M';
	rwbs[i] = '\0';
}

static const char *const bt_act_names[] = {
	[__BLK_TA_QUEUE] = "Q",		[__BLK_TA_BACKMERGE] = "M",
	[__BLK_TA_FRONTMERGE] = "F",	[__BLK_TA_GETRQ] = "G",
	[__BLK_TA_SLEEPRQ] = "S",	[__BLK_TA_REQUEUE] = "R",
	[__BLK_TA_ISSUE] = "D",		[__BLK_TA_COMPLETE] = "C",
	[__BLK_TA_PLUG] = "P",		[__BLK_TA_UNPLUG_IO] = "U",
	[__BLK_TA_UNPLUG_TIMER] = "UT", [__BLK_TA_INSERT] = "I",
	[__BLK_TA_SPLIT] = "X",		[__BLK_TA_BOUNCE] = "B",
	[__BLK_TA_REMAP] = "A",		[__BLK_TA_ABORT] = "T",
	[__BLK_TA_DRV_DATA] = "DD",
};

static uint64_t bt_pdu_u64(const void *pdu)
{
	uint64_t v;

	memcpy(&v, pdu, sizeof(v));
	return bt_be64(v);
}

static int bt_format_detail(const struct blk_io_trace *t, const void *pdu,
			    const char *comm, char *buf, size_t len)
{
	unsigned long long sector = t->sector;
	unsigned int blocks = t->bytes >> SECTOR_SHIFT;
	struct blk_io_trace_remap r;

	switch (t->action & 0xffff) {
	case __BLK_TA_COMPLETE:
		return snprintf(buf, len, "%llu + %u [%d]", sector, blocks,
				(int)(int16_t)t->error);
	case __BLK_TA_PLUG:
		return snprintf(buf, len, "[%s]", comm);
	case __BLK_TA_UNPLUG_IO:
	case __BLK_TA_UNPLUG_TIMER:
		return snprintf(buf, len, "[%s] %llu", comm,
				t->pdu_len >= 8
					? (unsigned long long)bt_pdu_u64(pdu)
					: 0ULL);
	case __BLK_TA_SPLIT:
		return snprintf(buf, len, "%llu / %llu [%s]", sector,
				t->pdu_len >= 8
					? (unsigned long long)bt_pdu_u64(pdu)
					: 0ULL,
				comm);
	case __BLK_TA_REMAP:
		if (t->pdu_len < sizeof(r))
			break;
		memcpy(&r, pdu, sizeof(r));
		r.device_from = bt_be32(r.device_from);
		return snprintf(buf, len, "%llu + %u <- (%u,%u) %llu", sector,
				blocks, r.device_from >> 20,
				r.device_from & 0xfffff,
				(unsigned long long)bt_be64(r.sector_from));
	case __BLK_TA_DRV_DATA:
		return snprintf(buf, len, "%llu [%s] %u bytes", sector, comm,
				t->pdu_len);
	}
	return snprintf(buf, len, "%llu + %u [%s]", sector, blocks, comm);
}

/*
 * One line (no newline) for @t. Returns its length, or 0 for records
 * blkparse does not print (process and timestamp notes).
 */
int bt_format_event(const struct blk_trace *bt, const struct blk_io_trace *t,
		    const void *pdu, const char *comm, char *buf, size_t len)
{
	unsigned int act = t->action & 0xffff;
	const char *name;
	char rwbs[8];
	int n;

	if (t->action & BLK_TC_ACT(BLK_TC_NOTIFY)) {
		if (act != __BLK_TN_MESSAGE)
			return 0;
		n = snprintf(buf, len,
			     "%3u,%-3u %2u %8u %5u.%09u %5u  m   N "
			     "%.*s",
			     t->device >> 20, t->device & 0xfffff, t->cpu,
			     t->sequence,
			     (unsigned int)(t->time / 1000000000ULL),
			     (unsigned int)(t->time % 1000000000ULL), t->pid,
			     (int)t->pdu_len, (const char *)pdu);
		return n;
	}
	name = act < ARRAY_SIZE(bt_act_names) && bt_act_names[act]
		       ? bt_act_names[act]
		       : "?";
	bt_fill_rwbs(rwbs, t->action, t->bytes);
	n = snprintf(buf, len, "%3u,%-3u %2u %8u %5u.%09u %5u %2s %3s ",
		     t->device >> 20, t->device & 0xfffff, t->cpu, t->sequence,
		     (unsigned int)(t->time / 1000000000ULL),
		     (unsigned int)(t->time % 1000000000ULL), t->pid, name,
		     rwbs);
	if (n < 0 || (size_t)n >= len)
		return n;
	return n + bt_format_detail(t, pdu, comm, buf + n, len - (size_t)n);
}
