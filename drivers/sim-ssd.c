// SPDX-License-Identifier: MIT
/*
 * The flash model of sim (model=ssd): channels x dies, each die busy
 * for a page read (tR), a program (tPROG) or a block erase (tBERS), each
 * channel busy while a page crosses it. Commands are taken as they
 * arrive and split into 4 KiB pages:
 *
 *  - a read occupies the die its page lives on (a fixed hash of the page
 *    number and the seed stands for the FTL's map), then the channel:
 *    one 4 KiB read at queue depth 1 costs a whole tR while the other
 *    dies idle, and throughput grows with queue depth until every die
 *    is busy -- the internal parallelism of a real drive;
 *  - a write lands in the write buffer and completes (write_cache=1 or
 *    a power-safe buffer alike) once every page has a slot; pages drain
 *    to the dies round-robin, a slot freeing when its program ends, so
 *    a write burst runs at interface speed until the buffer fills and
 *    at the program rate after;
 *  - each die fills erase blocks; a full block costs an erase, and when
 *    valid data exceeds gc_threshold % of the flash (including the
 *    over-provisioning) the die also copies the victim block's still
 *    valid pages first: a stall of (copies x (tR + tPROG) + tBERS) that
 *    reads queued behind it wait out. The valid fraction of a victim
 *    follows the greedy-GC estimate for uniform random writes (Hu et
 *    al., SYSTOR 2009): write amplification (1 + r) / 2r with r the
 *    spare/valid ratio;
 *  - a flush waits until the buffer has drained; FUA waits for its own
 *    programs; discard (TRIM) and write-zeroes unmap pages, lowering
 *    the fill.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/sim.h"
#include "lib/compiler.h"
#include "lib/prandom.h"
#include "lib/time.h"

#define SSD_PAGE	4096U

struct ssd {
	unsigned int nr_dies;
	uint64_t *die_free;		/* model time each die is free */
	uint64_t *chan_free;
	unsigned int *block_fill;	/* pages programmed in the open block */
	unsigned int next_die;		/* round-robin for programs */
	uint64_t read_ns, prog_ns, erase_ns, xfer_ns;
	/* write buffer: when each slot frees (a ring, oldest next) */
	uint64_t *slot_free;
	unsigned int nr_slots, slot;
	/* mapped pages (a bit per 4 KiB page) */
	uint64_t *valid;
	uint64_t nr_pages, nr_valid, flash_pages;
};

static struct ssd *ssd_of(struct sim_model *m)
{
	return m->priv;
}

static uint64_t ssd_iface_ns(struct sim_model *m, uint64_t bytes)
{
	return bytes * 1000 / m->p.interface_mbps;
}

static unsigned int ssd_die_of(struct sim_model *m, uint64_t lpn)
{
	return (unsigned int)(splitmix64(lpn ^ m->p.seed) % ssd_of(m)->nr_dies);
}

/* Mark @lpn mapped or not; keeps the count of valid pages. */
static void ssd_map(struct ssd *s, uint64_t lpn, bool valid)
{
	uint64_t bit = 1ULL << (lpn % 64), *w = &s->valid[lpn / 64];

	if (valid && !(*w & bit)) {
		*w |= bit;
		s->nr_valid++;
	} else if (!valid && (*w & bit)) {
		*w &= ~bit;
		s->nr_valid--;
	}
}

/* Pages to copy out of a victim block before erasing it (0 below GC). */
static unsigned int ssd_gc_copies(struct sim_model *m)
{
	struct ssd *s = ssd_of(m);
	double spare, wa;

	if (s->nr_valid * 100 <= s->flash_pages * m->p.gc_threshold)
		return 0;
	spare = (double)(s->flash_pages - s->nr_valid) / (double)s->nr_valid;
	wa = (1 + spare) / (2 * spare);
	if (wa <= 1)
		return 0;
	return (unsigned int)(m->p.pages_per_block * (1 - 1 / wa));
}

/* Die @d programmed a page: a full block means erase (and maybe GC). */
static void ssd_block_account(struct sim_model *m, unsigned int d)
{
	struct ssd *s = ssd_of(m);
	unsigned int copies;
	uint64_t cost;

	if (++s->block_fill[d] < m->p.pages_per_block)
		return;
	s->block_fill[d] = 0;
	copies = ssd_gc_copies(m);
	cost = copies * (s->read_ns + s->prog_ns) + s->erase_ns;
	s->die_free[d] += cost;
	m->st.erases++;
	if (copies) {
		m->st.gc_runs++;
		m->st.gc_copies += copies;
		m->st.gc_ns += cost;
	}
}

static uint64_t ssd_read(struct sim_model *m, const struct sim_io *io,
			 uint64_t t)
{
	struct ssd *s = ssd_of(m);
	uint64_t first = io->sector * SECTOR_SIZE / SSD_PAGE;
	uint64_t last = (io->sector * SECTOR_SIZE + io->bytes - 1) / SSD_PAGE;
	uint64_t done = t;

	for (uint64_t lpn = first; lpn <= last; lpn++) {
		unsigned int d = ssd_die_of(m, lpn), c = d % m->p.channels;
		uint64_t r = max(t, s->die_free[d]) + s->read_ns;
		uint64_t x = max(r, s->chan_free[c]);

		s->die_free[d] = r;
		s->chan_free[c] = x + s->xfer_ns;
		done = max(done, s->chan_free[c]);
		m->st.flash_reads++;
	}
	return max(done + ssd_iface_ns(m, SSD_PAGE),
		   t + ssd_iface_ns(m, io->bytes));
}

/* Program one page that entered the buffer at @t; its program end. */
static uint64_t ssd_program(struct sim_model *m, uint64_t t)
{
	struct ssd *s = ssd_of(m);
	unsigned int d = s->next_die++ % s->nr_dies, c = d % m->p.channels;
	uint64_t x = max(t, s->chan_free[c]), end;

	s->chan_free[c] = x + s->xfer_ns;
	end = max(s->chan_free[c], s->die_free[d]) + s->prog_ns;
	s->die_free[d] = end;
	m->st.flash_programs++;
	ssd_block_account(m, d);
	return end;
}

static uint64_t ssd_write(struct sim_model *m, const struct sim_io *io,
			  uint64_t t)
{
	struct ssd *s = ssd_of(m);
	uint64_t first = io->sector * SECTOR_SIZE / SSD_PAGE;
	uint64_t last = (io->sector * SECTOR_SIZE + io->bytes - 1) / SSD_PAGE;
	uint64_t in = t, programmed = t;

	for (uint64_t lpn = first; lpn <= last; lpn++) {
		uint64_t *slot = &s->slot_free[s->slot];
		uint64_t enter = max(t, *slot);

		in = max(in, enter);
		*slot = ssd_program(m, enter);
		programmed = max(programmed, *slot);
		s->slot = (s->slot + 1) % s->nr_slots;
		ssd_map(s, lpn, true);
	}
	if (in > t) {
		m->st.buffer_stalls++;
		m->st.buffer_stall_ns += in - t;
	}
	if (io->fua)
		in = programmed;
	return max(in, t + ssd_iface_ns(m, io->bytes));
}

/* Unmap whole pages of the range (TRIM); partial ones stay mapped. */
static uint64_t ssd_unmap(struct sim_model *m, const struct sim_io *io,
			  uint64_t t)
{
	uint64_t off = io->sector * SECTOR_SIZE, end = off + io->bytes;

	for (uint64_t lpn = DIV_ROUND_UP(off, SSD_PAGE);
	     (lpn + 1) * SSD_PAGE <= end; lpn++)
		ssd_map(ssd_of(m), lpn, false);
	return t;
}

static uint64_t ssd_flush(struct sim_model *m, uint64_t t)
{
	struct ssd *s = ssd_of(m);

	for (unsigned int i = 0; i < s->nr_slots; i++)
		t = max(t, s->slot_free[i]);
	return t;
}

static uint64_t ssd_service(struct sim_model *m, const struct sim_io *io,
			    uint64_t start)
{
	uint64_t t = start + m->p.cmd_overhead_us * NSEC_PER_USEC;

	switch (io->op) {
	case REQ_OP_READ:
		return ssd_read(m, io, t);
	case REQ_OP_WRITE:
		return ssd_write(m, io, t);
	case REQ_OP_FLUSH:
		return ssd_flush(m, t);
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		return ssd_unmap(m, io, t);
	default:
		return t;
	}
}

static int ssd_init(struct sim_model *m)
{
	const struct sim_params *p = &m->p;
	struct ssd *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	m->priv = s;
	s->nr_dies = p->channels * p->dies_per_channel;
	s->read_ns = p->read_us * NSEC_PER_USEC;
	/* one program writes program_kb on a die: the cost per 4 KiB page */
	s->prog_ns = (uint64_t)p->program_us * NSEC_PER_USEC * 4 /
		     p->program_kb;
	s->erase_ns = p->erase_us * NSEC_PER_USEC;
	s->xfer_ns = (uint64_t)SSD_PAGE * 1000 / p->channel_mbps;
	s->nr_slots = max(1U, p->write_buffer_mb * 256);
	s->nr_pages = m->capacity * SECTOR_SIZE / SSD_PAGE;
	s->flash_pages = s->nr_pages * (100 + p->over_provisioning) / 100;
	s->die_free = calloc(s->nr_dies, sizeof(*s->die_free));
	s->chan_free = calloc(p->channels, sizeof(*s->chan_free));
	s->block_fill = calloc(s->nr_dies, sizeof(*s->block_fill));
	s->slot_free = calloc(s->nr_slots, sizeof(*s->slot_free));
	s->valid = calloc(DIV_ROUND_UP(s->nr_pages, 64) + 1, sizeof(uint64_t));
	if (!s->die_free || !s->chan_free || !s->block_fill ||
	    !s->slot_free || !s->valid)
		return -ENOMEM;		/* the caller calls ->exit */
	return 0;
}

static void ssd_exit(struct sim_model *m)
{
	struct ssd *s = ssd_of(m);

	if (!s)
		return;
	free(s->die_free);
	free(s->chan_free);
	free(s->block_fill);
	free(s->slot_free);
	free(s->valid);
	free(s);
	m->priv = NULL;
}

static void ssd_show(struct sim_model *m, FILE *out)
{
	struct ssd *s = ssd_of(m);

	fprintf(out, "  sim ssd: dies=%u valid_pages=%llu flash_pages=%llu "
		"fill=%llu%% gc_copies_per_block=%u\n", s->nr_dies,
		(unsigned long long)s->nr_valid,
		(unsigned long long)s->flash_pages,
		(unsigned long long)(s->nr_valid * 100 / s->flash_pages),
		ssd_gc_copies(m));
}

const struct sim_model_ops sim_ssd_ops = {
	.name		= "ssd",
	.serial		= false,
	.init		= ssd_init,
	.exit		= ssd_exit,
	.service	= ssd_service,
	.show		= ssd_show,
};
