// SPDX-License-Identifier: MIT
/*
 * Live per-stage latencies from the event stream, as btt computes them:
 * Q2G (queued to request allocated), G2I (to inserted), I2D (to issued to
 * the driver), D2C (driver time) and Q2C (the whole life of an I/O,
 * merged ones included). The consumer thread feeds every event it writes
 * out, so the figures are exactly those btt gets from the same files.
 *
 * Matching is btt's, so that the two agree on the same run: an I/O is
 * known by its start sector from Q on (a second Q at a start still
 * pending is not tracked, as btt's tree refuses it); G and M charge the
 * I/O holding their sector; I, D, R and C charge every I/O lying wholly
 * inside their range, each of them: D2C, like Q2C, is per queued I/O,
 * merged ones included. A bio split after Q (X) is longer than any of
 * its requests, so it is never charged, as in btt.
 */
#include <stdlib.h>
#include <string.h>

#include "blktrace-priv.h"

struct bt_io {
	struct rb_node node;
	uint64_t sector;
	uint64_t len; /* sectors */
	uint64_t q, g, i, d; /* event times; g, i, d 0 = not yet */
	bool has_g, has_i, has_d;
};

static inline struct bt_io *bt_io_of(struct rb_node *n)
{
	return n ? rb_entry(n, struct bt_io, node) : NULL;
}

static void bt_stage_add(struct blk_trace *bt, enum blk_trace_stage s,
			 uint64_t from, uint64_t to)
{
	struct blk_trace_stage_stats *st = &bt->stats.stage[s];
	uint64_t ns = to > from ? to - from : 0;
	unsigned int b = ns ? 63 - (unsigned int)__builtin_clzll(ns) : 0;

	if (!st->count || ns < st->min_ns)
		st->min_ns = ns;
	if (ns > st->max_ns)
		st->max_ns = ns;
	st->count++;
	st->sum_ns += ns;
	st->hist[b]++;
}

static void bt_io_queue(struct blk_trace *bt, const struct bt_event *ev)
{
	struct rb_node **link = &bt->io_tree.rb_node, *parent = NULL;
	struct bt_io *io;

	while (*link) {
		io = bt_io_of(*link);
		parent = *link;
		if (ev->sector < io->sector)
			link = &(*link)->rb_left;
		else if (ev->sector > io->sector)
			link = &(*link)->rb_right;
		else
			return; /* that start is taken: untracked */
	}
	io = bt->io_free;
	if (io)
		bt->io_free = bt_io_of(io->node.rb_right);
	else if (!(io = malloc(sizeof(*io))))
		return;
	memset(io, 0, sizeof(*io));
	io->sector = ev->sector;
	io->len = ev->bytes >> SECTOR_SHIFT;
	io->q = ev->time;
	rb_link_node(&io->node, parent, link);
	rb_insert_color(&io->node, &bt->io_tree);
}

static void bt_io_release(struct blk_trace *bt, struct bt_io *io)
{
	rb_erase(&io->node, &bt->io_tree);
	io->node.rb_right = bt->io_free ? &bt->io_free->node : NULL;
	bt->io_free = io;
}

/* The I/O whose range holds @sector: the last start at or below it. */
static struct bt_io *bt_io_find_sec(struct blk_trace *bt, uint64_t sector)
{
	struct rb_node *n = bt->io_tree.rb_node;
	struct bt_io *best = NULL;

	while (n) {
		struct bt_io *io = bt_io_of(n);

		if (sector < io->sector) {
			n = n->rb_left;
		} else {
			best = io;
			n = n->rb_right;
		}
	}
	return best && sector < best->sector + best->len ? best : NULL;
}

/* The first I/O starting at or after @sector. */
static struct rb_node *bt_io_first_from(struct blk_trace *bt, uint64_t sector)
{
	struct rb_node *n = bt->io_tree.rb_node, *best = NULL;

	while (n) {
		if (bt_io_of(n)->sector >= sector) {
			best = n;
			n = n->rb_left;
		} else {
			n = n->rb_right;
		}
	}
	return best;
}

typedef void(bt_io_fn)(struct blk_trace *bt, struct bt_io *io,
		       const struct bt_event *ev);

/* @fn for each I/O wholly inside @ev's range (it may release the I/O). */
static void bt_io_for_range(struct blk_trace *bt, const struct bt_event *ev,
			    bt_io_fn *fn)
{
	uint64_t end = ev->sector + (ev->bytes >> SECTOR_SHIFT);
	struct rb_node *n = bt_io_first_from(bt, ev->sector), *next;

	for (; n && bt_io_of(n)->sector < end; n = next) {
		struct bt_io *io = bt_io_of(n);

		next = rb_next(n);
		if (io->sector + io->len <= end)
			fn(bt, io, ev);
	}
}

static void bt_on_insert(struct blk_trace *bt, struct bt_io *io,
			 const struct bt_event *ev)
{
	io->i = ev->time;
	io->has_i = true;
	if (io->has_g)
		bt_stage_add(bt, BLK_TRACE_G2I, io->g, io->i);
}

static void bt_on_issue(struct blk_trace *bt, struct bt_io *io,
			const struct bt_event *ev)
{
	io->d = ev->time;
	io->has_d = true;
	if (io->has_i)
		bt_stage_add(bt, BLK_TRACE_I2D, io->i, io->d);
}

static void bt_on_requeue(struct blk_trace *bt, struct bt_io *io,
			  const struct bt_event *ev)
{
	io->has_d = false;
}

static void bt_on_complete(struct blk_trace *bt, struct bt_io *io,
			   const struct bt_event *ev)
{
	bt_stage_add(bt, BLK_TRACE_Q2C, io->q, ev->time);
	if (io->has_d)
		bt_stage_add(bt, BLK_TRACE_D2C, io->d, ev->time);
	bt_io_release(bt, io);
}

static void bt_on_getrq(struct blk_trace *bt, const struct bt_event *ev)
{
	struct bt_io *io = bt_io_find_sec(bt, ev->sector);

	if (io) {
		io->g = ev->time;
		io->has_g = true;
		bt_stage_add(bt, BLK_TRACE_Q2G, io->q, io->g);
	}
}

/* Consumer thread, stats_lock held: one event, in time order. */
void bt_stats_account(struct blk_trace *bt, const struct bt_event *ev)
{
	bt->stats.events++;
	switch (ev->action & 0xffff) {
	case __BLK_TA_QUEUE:
		bt_io_queue(bt, ev);
		break;
	case __BLK_TA_GETRQ:
		bt_on_getrq(bt, ev);
		break;
	case __BLK_TA_INSERT:
		bt_io_for_range(bt, ev, bt_on_insert);
		break;
	case __BLK_TA_ISSUE:
		bt_io_for_range(bt, ev, bt_on_issue);
		break;
	case __BLK_TA_REQUEUE:
		bt_io_for_range(bt, ev, bt_on_requeue);
		break;
	case __BLK_TA_COMPLETE:
		if (ev->bytes) /* btt skips empty completions */
			bt_io_for_range(bt, ev, bt_on_complete);
		break;
	}
}

void bt_stats_free(struct blk_trace *bt)
{
	struct rb_node *n;
	struct bt_io *io;

	while ((n = bt->io_tree.rb_node)) {
		io = bt_io_of(n);
		rb_erase(n, &bt->io_tree);
		free(io);
	}
	while ((io = bt->io_free)) {
		bt->io_free = bt_io_of(io->node.rb_right);
		free(io);
	}
}

/* ---- reporting ---- */

static const char *const bt_stage_names[] = {
	[BLK_TRACE_Q2G] = "Q2G", [BLK_TRACE_G2I] = "G2I",
	[BLK_TRACE_I2D] = "I2D", [BLK_TRACE_D2C] = "D2C",
	[BLK_TRACE_Q2C] = "Q2C",
};

const char *blk_trace_stage_name(enum blk_trace_stage s)
{
	return s < BLK_TRACE_NR_STAGES ? bt_stage_names[s] : "?";
}

/* The upper edge of the bucket holding the @pct percentile. */
static uint64_t bt_percentile(const struct blk_trace_stage_stats *st,
			      double pct)
{
	uint64_t want = (uint64_t)(st->count * pct / 100.0 + 0.5), seen = 0;

	for (unsigned int b = 0; b < BLK_TRACE_HIST_BUCKETS; b++) {
		seen += st->hist[b];
		if (seen >= want && seen)
			return b < 63 ? (2ULL << b) - 1 : UINT64_MAX;
	}
	return st->max_ns;
}

static double bt_mean(const struct blk_trace_stage_stats *st)
{
	return st->count ? (double)st->sum_ns / (double)st->count : 0.0;
}

/* btt's table: seconds with 9 decimals, then N. */
void blk_trace_stats_show(const struct blk_trace_stats *st, FILE *out)
{
	fprintf(out, "ALL           MIN           AVG           MAX"
		     "           N       p99<=\n");
	for (int s = 0; s < BLK_TRACE_NR_STAGES; s++) {
		const struct blk_trace_stage_stats *x = &st->stage[s];

		fprintf(out, "%-3s %13.9f %13.9f %13.9f %11llu %11.9f\n",
			bt_stage_names[s], (double)x->min_ns / 1e9,
			bt_mean(x) / 1e9, (double)x->max_ns / 1e9,
			(unsigned long long)x->count,
			(double)bt_percentile(x, 99.0) / 1e9);
	}
	fprintf(out, "events %llu dropped %llu\n",
		(unsigned long long)st->events,
		(unsigned long long)st->dropped);
}

void blk_trace_stats_json(const struct blk_trace_stats *st, FILE *out)
{
	fprintf(out,
		"{\"state\": %d, \"events\": %llu, \"dropped\": %llu, "
		"\"stages\": {",
		st->state, (unsigned long long)st->events,
		(unsigned long long)st->dropped);
	for (int s = 0; s < BLK_TRACE_NR_STAGES; s++) {
		const struct blk_trace_stage_stats *x = &st->stage[s];

		fprintf(out,
			"%s\"%s\": {\"n\": %llu, \"min_ns\": %llu, "
			"\"avg_ns\": %.1f, \"max_ns\": %llu, \"p50_ns\": %llu, "
			"\"p99_ns\": %llu}",
			s ? ", " : "", bt_stage_names[s],
			(unsigned long long)x->count,
			(unsigned long long)x->min_ns, bt_mean(x),
			(unsigned long long)x->max_ns,
			(unsigned long long)bt_percentile(x, 50.0),
			(unsigned long long)bt_percentile(x, 99.0));
	}
	fprintf(out, "}}\n");
}
