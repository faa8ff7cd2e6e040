// SPDX-License-Identifier: MIT
/*
 * The disk model of sim (model=hdd): one actuator, so commands are
 * served one at a time, each costing
 *
 *   command overhead + seek(distance in cylinders)
 *   + rotational wait (until the sector comes under the head)
 *   + transfer at the zone's media rate (outer zone fastest).
 *
 * The seek curve goes through three datasheet figures: track-to-track
 * for one cylinder, the average seek at a third of the stroke (the mean
 * distance between two random points) and the full stroke, rising as a
 * square root on short seeks (acceleration-limited) and linearly on long
 * ones (coast at top speed) -- the shape Ruemmler and Wilkes measured.
 * The platter turns continuously: where a sector sits on its track is a
 * fixed function of its number and of the seed (track skew), so the
 * rotational wait depends on the time the seek ends, as on a real disk.
 *
 * After a media read the head goes on reading into the drive's buffer
 * (read-ahead): a later read of what follows is served as the data
 * streams in, so sequential reads run at media speed even with a gap
 * between commands. With the volatile write cache on, writes complete
 * once in the cache; a full cache first writes back the dirty extent
 * nearest ahead of the head (a C-SCAN pass), and a flush writes back
 * all of it; an idle drive writes back in the background. FUA writes
 * and writes with the cache off go to the media.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/sim.h"
#include "lib/compiler.h"
#include "lib/prandom.h"
#include "lib/time.h"

struct hdd_extent {
	sector_t start;
	sector_t end;
};

struct hdd {
	uint64_t period_ns;		/* one revolution */
	sector_t head_lba;		/* where the head is */
	/* read-ahead: [ra_start, ra_end) buffered, ra_end read at ra_time */
	bool stream;
	sector_t ra_start, ra_end;
	uint64_t ra_time;
	/* dirty extents of the write cache, sorted, not touching */
	struct hdd_extent *dirty;
	unsigned int nr_dirty, max_dirty;
	uint64_t dirty_sectors, cache_sectors;
	uint64_t idle_since;		/* when the last command ended */
};

static struct hdd *hdd_of(struct sim_model *m)
{
	return m->priv;
}

uint64_t sim_hdd_seek_ns(const struct sim_params *p, uint64_t distance)
{
	double d3 = p->cylinders / 3.0, d = (double)distance;
	double t2t = p->track_to_track_us * 1e3, avg = p->avg_seek_us * 1e3;
	double full = p->full_seek_us * 1e3;

	if (!distance)
		return 0;
	if (d <= d3)
		return (uint64_t)(t2t + (avg - t2t) * sqrt((d - 1) / (d3 - 1)));
	return (uint64_t)(avg + (full - avg) * (d - d3) /
				(p->cylinders - d3));
}

/* Media rate at @lba, bytes per ns: zones fall from outer to inner. */
static double hdd_rate(struct sim_model *m, sector_t lba)
{
	double frac = (double)lba / (double)m->capacity;

	return (m->p.outer_mbps - (m->p.outer_mbps - (double)m->p.inner_mbps) *
		frac) / 1e3;
}

static uint64_t hdd_cyl(struct sim_model *m, sector_t lba)
{
	return (uint64_t)((double)lba * m->p.cylinders / (double)m->capacity);
}

static uint64_t hdd_xfer_ns(struct sim_model *m, sector_t lba, uint64_t n)
{
	return (uint64_t)(n * SECTOR_SIZE / hdd_rate(m, lba));
}

static uint64_t hdd_iface_ns(struct sim_model *m, uint64_t bytes)
{
	return bytes * 1000 / m->p.interface_mbps;
}

/* Where in a revolution @lba passes under the head, in ns from index. */
static uint64_t hdd_angle_ns(struct sim_model *m, sector_t lba)
{
	struct hdd *h = hdd_of(m);
	double spt = hdd_rate(m, lba) * (double)h->period_ns / SECTOR_SIZE;
	double skew = (double)(splitmix64(m->p.seed ^ hdd_cyl(m, lba)) >> 11) /
		      (double)(1ULL << 53);
	double turns = (double)lba / spt + skew;

	return (uint64_t)((turns - floor(turns)) * (double)h->period_ns);
}

/* Seek and rotational wait to reach @lba from the head at time @t. */
static uint64_t hdd_position(struct sim_model *m, sector_t lba, uint64_t t,
			     uint64_t *seek, uint64_t *rot)
{
	struct hdd *h = hdd_of(m);
	uint64_t from = hdd_cyl(m, h->head_lba), to = hdd_cyl(m, lba);
	uint64_t at;

	*seek = sim_hdd_seek_ns(&m->p, from > to ? from - to : to - from);
	at = (t + *seek) % h->period_ns;
	*rot = (hdd_angle_ns(m, lba) + h->period_ns - at) % h->period_ns;
	return *seek + *rot;
}

/* Read or write [@lba, @lba + @n) on the media from time @t. */
static uint64_t hdd_media(struct sim_model *m, sector_t lba, uint64_t n,
			  uint64_t t)
{
	struct hdd *h = hdd_of(m);
	uint64_t seek, rot, xfer = hdd_xfer_ns(m, lba, n);

	hdd_position(m, lba, t, &seek, &rot);
	m->st.seeks += seek != 0;
	m->st.seek_ns += seek;
	m->st.rot_ns += rot;
	m->st.xfer_ns += xfer;
	h->head_lba = lba + n;
	h->stream = false;
	return t + seek + rot + xfer;
}

/* ---- read-ahead ---- */

static sector_t hdd_ra_max(struct sim_model *m)
{
	return (sector_t)m->p.readahead_kb * 2;
}

static bool hdd_ra_hit(struct sim_model *m, const struct sim_io *io)
{
	struct hdd *h = hdd_of(m);
	sector_t end = io->sector + io->bytes / SECTOR_SIZE;

	return h->stream && io->sector >= h->ra_start &&
	       end <= h->ra_end + hdd_ra_max(m);
}

/* When the read-ahead has brought in everything up to @end. */
static uint64_t hdd_ra_ready(struct sim_model *m, sector_t end)
{
	struct hdd *h = hdd_of(m);

	if (end <= h->ra_end)
		return h->ra_time;
	return h->ra_time + hdd_xfer_ns(m, h->ra_end, end - h->ra_end);
}

static uint64_t hdd_read(struct sim_model *m, const struct sim_io *io,
			 uint64_t t)
{
	struct hdd *h = hdd_of(m);
	sector_t n = io->bytes / SECTOR_SIZE, end = io->sector + n;
	uint64_t done;

	if (hdd_ra_hit(m, io)) {
		uint64_t ready = hdd_ra_ready(m, end);

		m->st.ra_hits++;
		done = max(t, ready) + hdd_iface_ns(m, io->bytes);
		if (end > h->ra_end) {
			h->ra_end = end;
			h->ra_time = ready;
			h->head_lba = end;
		}
		h->ra_start = io->sector;
		return done;
	}
	done = hdd_media(m, io->sector, n, t);
	h->stream = true;
	h->ra_start = io->sector;
	h->ra_end = end;
	h->ra_time = done;
	return done;
}

/* ---- the write cache ---- */

/* Index of the first dirty extent ending after @lba. */
static unsigned int hdd_dirty_find(struct hdd *h, sector_t lba)
{
	unsigned int lo = 0, hi = h->nr_dirty;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (h->dirty[mid].end < lba)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void hdd_dirty_remove(struct hdd *h, unsigned int i, unsigned int nr)
{
	for (unsigned int k = i; k < i + nr; k++)
		h->dirty_sectors -= h->dirty[k].end - h->dirty[k].start;
	memmove(&h->dirty[i], &h->dirty[i + nr],
		(h->nr_dirty - i - nr) * sizeof(*h->dirty));
	h->nr_dirty -= nr;
}

/* Add [@start, @end), merging with what it overlaps or touches. */
static void hdd_dirty_add(struct hdd *h, sector_t start, sector_t end)
{
	unsigned int i = hdd_dirty_find(h, start), j = i;

	while (j < h->nr_dirty && h->dirty[j].start <= end) {
		start = min(start, h->dirty[j].start);
		end = max(end, h->dirty[j].end);
		j++;
	}
	hdd_dirty_remove(h, i, j - i);
	memmove(&h->dirty[i + 1], &h->dirty[i],
		(h->nr_dirty - i) * sizeof(*h->dirty));
	h->dirty[i].start = start;
	h->dirty[i].end = end;
	h->nr_dirty++;
	h->dirty_sectors += end - start;
}

/* Write back the dirty extent next ahead of the head (C-SCAN). */
static uint64_t hdd_destage_one(struct sim_model *m, uint64_t t)
{
	struct hdd *h = hdd_of(m);
	unsigned int i = hdd_dirty_find(h, h->head_lba);
	struct hdd_extent e;
	uint64_t done;

	if (i == h->nr_dirty)
		i = 0;
	e = h->dirty[i];
	hdd_dirty_remove(h, i, 1);
	done = hdd_media(m, e.start, e.end - e.start, t);
	m->st.destages++;
	m->st.destage_ns += done - t;
	return done;
}

static uint64_t hdd_write(struct sim_model *m, const struct sim_io *io,
			  uint64_t t)
{
	struct hdd *h = hdd_of(m);
	sector_t n = io->bytes / SECTOR_SIZE;

	if (!m->p.write_cache || io->fua || n > h->cache_sectors)
		return hdd_media(m, io->sector, n, t);
	if (h->dirty_sectors + n > h->cache_sectors ||
	    h->nr_dirty == h->max_dirty)
		m->st.cache_full_stalls++;
	while (h->nr_dirty && (h->dirty_sectors + n > h->cache_sectors ||
			       h->nr_dirty == h->max_dirty))
		t = hdd_destage_one(m, t);
	hdd_dirty_add(h, io->sector, io->sector + n);
	return t + hdd_iface_ns(m, io->bytes);
}

/* Idle time after which the drive starts writing back its cache. */
#define HDD_IDLE_DESTAGE_NS	(20 * NSEC_PER_MSEC)

/*
 * The drive was idle from the end of its last command until @start:
 * after HDD_IDLE_DESTAGE_NS of that it wrote back dirty data, one extent
 * at a time; the one under way when the command came in is finished
 * first. Short gaps between commands leave the cache alone.
 */
static uint64_t hdd_idle_destage(struct sim_model *m, uint64_t start)
{
	struct hdd *h = hdd_of(m);
	uint64_t t = h->idle_since + HDD_IDLE_DESTAGE_NS;

	if (t >= start)
		return start;
	while (h->nr_dirty && t < start)
		t = hdd_destage_one(m, t);
	return max(t, start);
}

/* Positioning of the write-back a full cache must do first. */
static uint64_t hdd_destage_cost(struct sim_model *m, uint64_t t)
{
	struct hdd *h = hdd_of(m);
	unsigned int i = hdd_dirty_find(h, h->head_lba);
	uint64_t seek, rot;

	if (i == h->nr_dirty)
		i = 0;
	return hdd_position(m, h->dirty[i].start, t, &seek, &rot) +
	       hdd_xfer_ns(m, h->dirty[i].start,
			   h->dirty[i].end - h->dirty[i].start);
}

static uint64_t hdd_flush(struct sim_model *m, uint64_t t)
{
	while (hdd_of(m)->nr_dirty)
		t = hdd_destage_one(m, t);
	return t;
}

/* ---- the model's ops ---- */

static uint64_t __hdd_service(struct sim_model *m, const struct sim_io *io,
			      uint64_t t)
{
	switch (io->op) {
	case REQ_OP_READ:
		return hdd_read(m, io, t);
	case REQ_OP_WRITE:
	case REQ_OP_WRITE_ZEROES:
		return hdd_write(m, io, t);
	case REQ_OP_FLUSH:
		return hdd_flush(m, t);
	default:
		return t;
	}
}

static uint64_t hdd_service(struct sim_model *m, const struct sim_io *io,
			    uint64_t start)
{
	struct hdd *h = hdd_of(m);
	uint64_t t;

	if (h->nr_dirty && start > h->idle_since)
		start = hdd_idle_destage(m, start);
	t = __hdd_service(m, io, start + m->p.cmd_overhead_us * NSEC_PER_USEC);
	h->idle_since = t;
	return t;
}

/* Positioning time of @io from now (what NCQ reordering minimises). */
static uint64_t hdd_position_ns(struct sim_model *m, const struct sim_io *io,
				uint64_t start)
{
	uint64_t seek, rot;

	if (io->op == REQ_OP_READ && hdd_ra_hit(m, io))
		return 0;
	if (io->op != REQ_OP_READ && io->op != REQ_OP_WRITE)
		return 0;
	if (io->op == REQ_OP_WRITE && m->p.write_cache && !io->fua) {
		struct hdd *h = hdd_of(m);

		/* free while the cache has room, else a write-back first */
		if (h->dirty_sectors + io->bytes / SECTOR_SIZE <=
		    h->cache_sectors && h->nr_dirty < h->max_dirty)
			return 0;
		return hdd_destage_cost(m, start);
	}
	return hdd_position(m, io->sector, start, &seek, &rot);
}

static int hdd_init(struct sim_model *m)
{
	struct hdd *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->period_ns = 60 * NSEC_PER_SEC / m->p.rpm;
	h->cache_sectors = (uint64_t)m->p.cache_size_mb << 11;
	/* extents of at least 4 KiB fill the cache: never more of them */
	h->max_dirty = max(1U, m->p.cache_size_mb * 256);
	if (m->p.write_cache) {
		h->dirty = calloc(h->max_dirty + 1, sizeof(*h->dirty));
		if (!h->dirty) {
			free(h);
			return -ENOMEM;
		}
	}
	m->priv = h;
	return 0;
}

static void hdd_exit(struct sim_model *m)
{
	struct hdd *h = hdd_of(m);

	if (h)
		free(h->dirty);
	free(h);
	m->priv = NULL;
}

static void hdd_show(struct sim_model *m, FILE *out)
{
	struct hdd *h = hdd_of(m);

	fprintf(out, "  sim hdd: head_lba=%llu dirty_sectors=%llu "
		"dirty_extents=%u stream=%d\n",
		(unsigned long long)h->head_lba,
		(unsigned long long)h->dirty_sectors, h->nr_dirty, h->stream);
}

const struct sim_model_ops sim_hdd_ops = {
	.name		= "hdd",
	.serial		= true,
	.init		= hdd_init,
	.exit		= hdd_exit,
	.position_ns	= hdd_position_ns,
	.service	= hdd_service,
	.show		= hdd_show,
};
