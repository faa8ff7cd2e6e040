// SPDX-License-Identifier: MIT
/*
 * The sysfs side of blktrace: /sys/block/<dev>/trace/{enable, act_mask,
 * start_lba, end_lba, pid} as queue attributes "trace/<name>", with the
 * kernel's rules: writing enable=1 sets up and starts a trace (events go
 * to the live statistics and live listeners), enable=0 removes whatever
 * trace there is, however it was set up; writing another attribute with
 * no trace sets one up first. Also the category names of blktrace -a and
 * the trace section of the debug dump.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk-trace.h"
#include "blktrace-priv.h"

static const struct {
	const char *name;
	uint16_t mask;
} bt_cat_names[] = {
	{ "read", BLK_TC_READ },
	{ "write", BLK_TC_WRITE },
	{ "flush", BLK_TC_FLUSH },
	{ "sync", BLK_TC_SYNC },
	{ "queue", BLK_TC_QUEUE },
	{ "requeue", BLK_TC_REQUEUE },
	{ "issue", BLK_TC_ISSUE },
	{ "complete", BLK_TC_COMPLETE },
	{ "fs", BLK_TC_FS },
	{ "pc", BLK_TC_PC },
	{ "notify", BLK_TC_NOTIFY },
	{ "ahead", BLK_TC_AHEAD },
	{ "meta", BLK_TC_META },
	{ "discard", BLK_TC_DISCARD },
	{ "drv_data", BLK_TC_DRV_DATA },
	{ "fua", BLK_TC_FUA },
};

#define BT_CAT_LIST                                              \
	"read write flush sync queue requeue issue complete fs " \
	"pc notify ahead meta discard drv_data fua all"

static int bt_word2mask(const char *w, size_t n, uint16_t *mask)
{
	if (n == 3 && !strncmp(w, "all", 3)) {
		*mask = BLK_TC_ALL;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(bt_cat_names); i++)
		if (strlen(bt_cat_names[i].name) == n &&
		    !strncasecmp(bt_cat_names[i].name, w, n)) {
			*mask |= bt_cat_names[i].mask;
			return 0;
		}
	return blk_err(-EINVAL,
		       "act_mask: unknown category '%.*s'; valid: " BT_CAT_LIST
		       " (comma-separated) or a number",
		       (int)n, w);
}

int blk_trace_str2mask(const char *str, uint16_t *mask)
{
	uint16_t m = 0;
	char *end;
	unsigned long v;
	const char *p = str;

	v = strtoul(str, &end, 0);
	if (end != str && (*end == '\0' || *end == '\n')) {
		if (v > 0xffff)
			return blk_err(-EINVAL,
				       "act_mask %lu: valid numbers "
				       "are 0..0xffff",
				       v);
		*mask = (uint16_t)v;
		return 0;
	}
	while (*p) {
		size_t n = strcspn(p, ",\n ");
		int ret;

		if (n) {
			ret = bt_word2mask(p, n, &m);
			if (ret)
				return ret;
		}
		p += n;
		if (*p)
			p++;
	}
	if (!m)
		return blk_err(-EINVAL, "act_mask: empty; valid: " BT_CAT_LIST);
	*mask = m;
	return 0;
}

void blk_trace_mask2str(uint16_t mask, char *buf, size_t len)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(bt_cat_names) && pos < len; i++)
		if (mask & bt_cat_names[i].mask)
			pos += (size_t)snprintf(buf + pos, len - pos, "%s%s",
						pos ? "," : "",
						bt_cat_names[i].name);
}

/* ---- attributes ---- */

enum {
	BT_ATTR_ENABLE,
	BT_ATTR_ACT_MASK,
	BT_ATTR_START_LBA,
	BT_ATTR_END_LBA,
	BT_ATTR_PID,
	BT_NR_ATTRS
};

static const char *const bt_attr_names[] = {
	"enable", "act_mask", "start_lba", "end_lba", "pid",
};

static int bt_attr_index(const char *attr)
{
	for (int i = 0; i < BT_NR_ATTRS; i++)
		if (!strcmp(attr, bt_attr_names[i]))
			return i;
	return blk_err(-ENOENT,
		       "no attribute 'trace/%s'; valid: trace/enable "
		       "trace/act_mask trace/start_lba trace/end_lba "
		       "trace/pid",
		       attr);
}

ssize_t blk_trace_attr_show(struct request_queue *q, const char *attr,
			    char *buf, size_t len)
{
	int idx = bt_attr_index(attr);
	struct blk_trace *bt;
	char mask[160];
	ssize_t n;

	if (idx < 0)
		return idx;
	bt_ctl_lock_take();
	bt = atomic_load(&q->blk_trace);
	if (idx == BT_ATTR_ENABLE)
		n = snprintf(buf, len, "%d\n", bt != NULL);
	else if (!bt)
		n = snprintf(buf, len, "disabled\n");
	else if (idx == BT_ATTR_ACT_MASK) {
		blk_trace_mask2str(atomic_load(&bt->act_mask), mask,
				   sizeof(mask));
		n = snprintf(buf, len, "%s\n", mask);
	} else if (idx == BT_ATTR_START_LBA)
		n = snprintf(buf, len, "%llu\n",
			     (unsigned long long)atomic_load(&bt->start_lba));
	else if (idx == BT_ATTR_END_LBA)
		n = snprintf(buf, len, "%llu\n",
			     (unsigned long long)atomic_load(&bt->end_lba));
	else
		n = snprintf(buf, len, "%u\n", atomic_load(&bt->pid));
	bt_ctl_lock_drop();
	return n;
}

static int bt_parse_u64(const char *attr, const char *val, uint64_t max,
			uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(val, &end, 0);
	while (*end == '\n' || *end == ' ')
		end++;
	if (errno || end == val || *end || *val == '-' || v > max)
		return blk_err(-EINVAL,
			       "trace/%s: '%s' is not a number in "
			       "0..%llu",
			       attr, val, (unsigned long long)max);
	*out = v;
	return 0;
}

/* Parse first: a bad value changes nothing, not even the trace's state. */
static int bt_parse_attr(int idx, const char *val, uint64_t *v)
{
	uint16_t mask;
	int ret;

	switch (idx) {
	case BT_ATTR_ENABLE:
		return bt_parse_u64("enable", val, 1, v);
	case BT_ATTR_ACT_MASK:
		ret = blk_trace_str2mask(val, &mask);
		*v = mask;
		return ret;
	case BT_ATTR_PID:
		return bt_parse_u64("pid", val, UINT32_MAX, v);
	default:
		return bt_parse_u64(bt_attr_names[idx], val, UINT64_MAX, v);
	}
}

static void bt_attr_set(struct blk_trace *bt, int idx, uint64_t v)
{
	switch (idx) {
	case BT_ATTR_ACT_MASK:
		atomic_store(&bt->act_mask, (uint16_t)v);
		break;
	case BT_ATTR_START_LBA:
		atomic_store(&bt->start_lba, v);
		break;
	case BT_ATTR_END_LBA:
		atomic_store(&bt->end_lba, v);
		break;
	case BT_ATTR_PID:
		atomic_store(&bt->pid, (uint32_t)v);
		break;
	}
}

int blk_trace_attr_store(struct request_queue *q, const char *attr,
			 const char *val)
{
	int idx = bt_attr_index(attr);
	struct blk_trace *bt;
	uint64_t v;
	int ret;

	if (idx < 0)
		return idx;
	ret = bt_parse_attr(idx, val, &v);
	if (ret)
		return ret;
	bt_ctl_lock_take();
	bt = atomic_load(&q->blk_trace);
	if (idx == BT_ATTR_ENABLE) {
		/* as the kernel: asking for the state we are in is no-op */
		if (!!v != !!bt)
			ret = v ? bt_sysfs_setup(q, true) : bt_sysfs_remove(q);
		goto out;
	}
	if (!bt) {
		ret = bt_sysfs_setup(q, false);
		bt = atomic_load(&q->blk_trace);
	}
	if (!ret)
		bt_attr_set(bt, idx, v);
out:
	bt_ctl_lock_drop();
	return ret;
}

/* ---- debug dump ---- */

static const char *const bt_state_names[] = {
	"none",
	"setup",
	"running",
	"stopped",
};

void blk_trace_debug_dump(struct request_queue *q, FILE *out)
{
	struct blk_trace_stats st;
	char mask[160];

	if (!q->disk || (!atomic_load(&q->blk_trace) && !q->blk_trace_last))
		return;
	if (blk_trace_get_stats(q->disk, &st))
		return;
	blk_trace_mask2str(st.act_mask, mask, sizeof(mask));
	fprintf(out,
		"trace: state=%s act_mask=%s start_lba=%llu "
		"end_lba=%llu pid=%u\n",
		bt_state_names[st.state & 3], st.state ? mask : "-",
		(unsigned long long)st.start_lba,
		(unsigned long long)st.end_lba, st.pid);
	blk_trace_stats_show(&st, out);
}
