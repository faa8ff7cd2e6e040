// SPDX-License-Identifier: MIT
/*
 * Live per-stage latencies from the event stream, as btt computes them:
 * Q2G (queued to request allocated), G2I (to inserted), I2D (to issued to
 * the driver), D2C (driver time) and Q2C (the whole life of an I/O,
 * merged ones included). The consumer thread feeds every event it writes
 * out, so the figures are exactly those btt gets from the same files.
 *
 * Matching follows btt: an I/O is known by its start sector from Q on;
 * a request (I, D, R, C) covers a sector range, and each queued I/O
 * whose start lies in it is charged.
 */
#include <stdlib.h>
#include <string.h>

#include "blktrace-priv.h"

struct bt_io {
	struct bt_io *next;		/* hash chain, oldest first */
	uint64_t sector;
	uint64_t len;			/* sectors */
	uint64_t q, g, i, d;		/* event times, 0 = not yet */
	bool merged;
};

#define BT_IO_HASH_BITS	12
#define BT_WALK_MISSES	64	/* give up on a range with missing Qs */

static inline unsigned int bt_io_hash(uint64_t sector)
{
	return (unsigned int)((sector * 0x9e3779b97f4a7c15ULL) >>
			      (64 - BT_IO_HASH_BITS));
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

typedef bool (bt_io_pred)(const struct bt_io *io);

/* The oldest I/O starting at @sector that @pred accepts. */
static struct bt_io **bt_io_find(struct blk_trace *bt, uint64_t sector,
				 bt_io_pred *pred)
{
	struct bt_io **pp = &bt->io_hash[bt_io_hash(sector)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->sector == sector && pred(*pp))
			return pp;
	return NULL;
}

static void bt_io_queue(struct blk_trace *bt, const struct bt_event *ev)
{
	struct bt_io *io = bt->io_free, **pp;

	if (io)
		bt->io_free = io->next;
	else if (!(io = malloc(sizeof(*io))))
		return;
	memset(io, 0, sizeof(*io));
	io->sector = ev->sector;
	io->len = ev->bytes >> SECTOR_SHIFT;
	io->q = ev->time;
	for (pp = &bt->io_hash[bt_io_hash(io->sector)]; *pp; pp = &(*pp)->next)
		;
	*pp = io;
}

static bool bt_pre_getrq(const struct bt_io *io)
{
	return !io->g && !io->merged && !io->d;
}

static bool bt_not_issued(const struct bt_io *io)
{
	return !io->d;
}

static bool bt_issued(const struct bt_io *io)
{
	return io->d;
}

/*
 * Call @fn for each I/O starting inside [@sector, @sector + @len) that
 * @pred accepts; a zero-length request matches at its sector only.
 */
static void bt_io_walk(struct blk_trace *bt, const struct bt_event *ev,
		       bt_io_pred *pred,
		       void (*fn)(struct blk_trace *, struct bt_io **,
				  const struct bt_event *, bool first))
{
	uint64_t x = ev->sector, end = ev->sector + (ev->bytes >> SECTOR_SHIFT);
	unsigned int misses = 0;
	bool first = true;

	if (end == x)
		end = x + 1;
	while (x < end && misses < BT_WALK_MISSES) {
		struct bt_io **pp = bt_io_find(bt, x, pred);
		uint64_t len;

		if (!pp) {
			x++;
			misses++;
			continue;
		}
		len = (*pp)->len ? (*pp)->len : 1;
		fn(bt, pp, ev, first);
		first = false;
		x += len;
	}
}

static void bt_on_insert(struct blk_trace *bt, struct bt_io **pp,
			 const struct bt_event *ev, bool first)
{
	struct bt_io *io = *pp;

	if (io->g && !io->i) {
		io->i = ev->time;
		bt_stage_add(bt, BLK_TRACE_G2I, io->g, io->i);
	}
}

static void bt_on_issue(struct blk_trace *bt, struct bt_io **pp,
			const struct bt_event *ev, bool first)
{
	struct bt_io *io = *pp;

	io->d = ev->time;
	if (io->i && first)
		bt_stage_add(bt, BLK_TRACE_I2D, io->i, io->d);
}

static void bt_on_requeue(struct blk_trace *bt, struct bt_io **pp,
			  const struct bt_event *ev, bool first)
{
	(*pp)->d = 0;
}

static void bt_on_complete(struct blk_trace *bt, struct bt_io **pp,
			   const struct bt_event *ev, bool first)
{
	struct bt_io *io = *pp;

	if (first)
		bt_stage_add(bt, BLK_TRACE_D2C, io->d, ev->time);
	bt_stage_add(bt, BLK_TRACE_Q2C, io->q, ev->time);
	*pp = io->next;
	io->next = bt->io_free;
	bt->io_free = io;
}

static void bt_on_bio(struct blk_trace *bt, const struct bt_event *ev,
		      unsigned int act)
{
	struct bt_io **pp = bt_io_find(bt, ev->sector, bt_pre_getrq);
	uint64_t split;

	if (!pp)
		return;
	switch (act) {
	case __BLK_TA_GETRQ:
		(*pp)->g = ev->time;
		bt_stage_add(bt, BLK_TRACE_Q2G, (*pp)->q, ev->time);
		break;
	case __BLK_TA_BACKMERGE:
	case __BLK_TA_FRONTMERGE:
		(*pp)->merged = true;
		break;
	case __BLK_TA_SPLIT:
		/* the front part goes on; the rest is queued again (Q) */
		memcpy(&split, ev->pdu, sizeof(split));
		split = bt_be64(split);
		if (split > ev->sector)
			(*pp)->len = split - ev->sector;
		break;
	}
}

/* Consumer thread: one event, in time order. */
void bt_stats_account(struct blk_trace *bt, const struct bt_event *ev)
{
	unsigned int act = ev->action & 0xffff;

	if (!bt->io_hash) {
		bt->io_hash = calloc(1U << BT_IO_HASH_BITS,
				     sizeof(*bt->io_hash));
		if (!bt->io_hash)
			return;
	}
	pthread_mutex_lock(&bt->stats_lock);
	bt->stats.events++;
	switch (act) {
	case __BLK_TA_QUEUE:
		bt_io_queue(bt, ev);
		break;
	case __BLK_TA_GETRQ:
	case __BLK_TA_BACKMERGE:
	case __BLK_TA_FRONTMERGE:
	case __BLK_TA_SPLIT:
		bt_on_bio(bt, ev, act);
		break;
	case __BLK_TA_INSERT:
		bt_io_walk(bt, ev, bt_not_issued, bt_on_insert);
		break;
	case __BLK_TA_ISSUE:
		bt_io_walk(bt, ev, bt_not_issued, bt_on_issue);
		break;
	case __BLK_TA_REQUEUE:
		bt_io_walk(bt, ev, bt_issued, bt_on_requeue);
		break;
	case __BLK_TA_COMPLETE:
		bt_io_walk(bt, ev, bt_issued, bt_on_complete);
		break;
	}
	pthread_mutex_unlock(&bt->stats_lock);
}

void bt_stats_free(struct blk_trace *bt)
{
	struct bt_io *io, *next;

	for (unsigned int i = 0; bt->io_hash && i < 1U << BT_IO_HASH_BITS;
	     i++)
		for (io = bt->io_hash[i]; io; io = next) {
			next = io->next;
			free(io);
		}
	for (io = bt->io_free; io; io = next) {
		next = io->next;
		free(io);
	}
	free(bt->io_hash);
}

/* ---- reporting ---- */

static const char *const bt_stage_names[] = {
	[BLK_TRACE_Q2G] = "Q2G",
	[BLK_TRACE_G2I] = "G2I",
	[BLK_TRACE_I2D] = "I2D",
	[BLK_TRACE_D2C] = "D2C",
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
	fprintf(out, "{\"state\": %d, \"events\": %llu, \"dropped\": %llu, "
		"\"stages\": {", st->state, (unsigned long long)st->events,
		(unsigned long long)st->dropped);
	for (int s = 0; s < BLK_TRACE_NR_STAGES; s++) {
		const struct blk_trace_stage_stats *x = &st->stage[s];

		fprintf(out, "%s\"%s\": {\"n\": %llu, \"min_ns\": %llu, "
			"\"avg_ns\": %.1f, \"max_ns\": %llu, \"p50_ns\": %llu, "
			"\"p99_ns\": %llu}", s ? ", " : "", bt_stage_names[s],
			(unsigned long long)x->count,
			(unsigned long long)x->min_ns, bt_mean(x),
			(unsigned long long)x->max_ns,
			(unsigned long long)bt_percentile(x, 50.0),
			(unsigned long long)bt_percentile(x, 99.0));
	}
	fprintf(out, "}}\n");
}
