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
 *  - a die runs its work in order; a read does not overtake what was
 *    queued before it, but may suspend (suspend=1) the program or erase
 *    the die is doing when it arrives, as NAND program/erase suspend
 *    does: the read starts a suspend time later and the operation
 *    resumes after it, late by the suspend, the read and a resume cost;
 *  - a write lands in the write buffer and completes (write_cache=1 or
 *    a power-safe buffer alike) once every page has a slot; pages drain
 *    to the dies (round-robin, or with dynamic_alloc the die whose
 *    queue ends first), a slot freeing when its program ends, so
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

/* The kinds of work a die queues. */
enum ssd_op { SSD_OP_READ, SSD_OP_PROGRAM, SSD_OP_ERASE, SSD_OP_GC };

/*
 * A die's queue, in model time: the work it was given runs in order and
 * ends at @free; of it only the last operation is known in detail, the
 * one a read arriving now may find in progress.
 */
struct ssd_die {
	uint64_t free;		/* when the die's queued work ends */
	uint64_t op_start;	/* when the last operation starts */
	uint64_t reads_end;	/* it is suspended: the reads served end */
	enum ssd_op op;
	unsigned int suspends;	/* times the last operation was suspended */
};

struct ssd {
	unsigned int nr_dies;
	struct ssd_die *die;
	uint64_t *chan_free;
	unsigned int *block_fill;	/* pages programmed in the open block */
	unsigned int next_die;		/* round-robin for programs */
	uint64_t read_ns, prog_ns, erase_ns, xfer_ns;
	uint64_t prog_sus_ns, erase_sus_ns, resume_ns;
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

/* Queue @ns of @op on @die, starting at @t or when its queue ends. */
static uint64_t ssd_die_queue(struct ssd_die *die, enum ssd_op op,
			      uint64_t t, uint64_t ns)
{
	die->op_start = max(t, die->free);
	die->free = die->op_start + ns;
	die->op = op;
	die->suspends = 0;
	die->reads_end = 0;
	return die->free;
}

/*
 * May a read arriving at @t suspend what @die is doing, and after how
 * long (*@sus_ns)? Only the die's last operation, once started: a read
 * does not overtake work queued before it. Programs and erases can be
 * suspended (GC's copies run to the end), up to max_suspends times
 * each, and only when stopping is quicker than waiting for the end.
 */
static bool ssd_can_suspend(struct sim_model *m, const struct ssd_die *die,
			    uint64_t t, uint64_t *sus_ns)
{
	struct ssd *s = ssd_of(m);

	if (!m->p.suspend || t < die->op_start || t >= die->free ||
	    die->suspends >= m->p.max_suspends)
		return false;
	if (die->op == SSD_OP_PROGRAM)
		*sus_ns = s->prog_sus_ns;
	else if (die->op == SSD_OP_ERASE)
		*sus_ns = s->erase_sus_ns;
	else
		return false;
	return t + *sus_ns < die->free;
}

/*
 * A page read on @die arriving at @t: when the array read ends. A
 * suspended operation resumes after the reads it let through, paying
 * the suspend and resume time on top of theirs.
 */
static uint64_t ssd_die_read(struct sim_model *m, struct ssd_die *die,
			     uint64_t t)
{
	struct ssd *s = ssd_of(m);
	uint64_t sus;

	if (t < die->reads_end) {
		/* suspended already: after the reads it is serving */
		die->reads_end += s->read_ns;
		die->free += s->read_ns;
		return die->reads_end;
	}
	if (!ssd_can_suspend(m, die, t, &sus))
		return ssd_die_queue(die, SSD_OP_READ, t, s->read_ns);
	die->suspends++;
	die->reads_end = t + sus + s->read_ns;
	die->free += sus + s->read_ns + s->resume_ns;
	m->st.suspends++;
	return die->reads_end;
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
	ssd_die_queue(&s->die[d], copies ? SSD_OP_GC : SSD_OP_ERASE, 0, cost);
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
		uint64_t r = ssd_die_read(m, &s->die[d], t);
		uint64_t x = max(r, s->chan_free[c]);

		s->chan_free[c] = x + s->xfer_ns;
		done = max(done, s->chan_free[c]);
		m->st.flash_reads++;
	}
	return max(done + ssd_iface_ns(m, SSD_PAGE),
		   t + ssd_iface_ns(m, io->bytes));
}

/*
 * The die a page entering the buffer at @t is programmed on: the next
 * in turn, or with dynamic_alloc the first from there whose queue ends
 * soonest (an FTL may place new data on any die, so a die erasing or
 * behind on its programs is passed over while another is free).
 */
static unsigned int ssd_program_die(struct sim_model *m, uint64_t t)
{
	struct ssd *s = ssd_of(m);
	unsigned int best = s->next_die % s->nr_dies;

	for (unsigned int i = 1; m->p.dynamic_alloc && i < s->nr_dies &&
	     s->die[best].free > t; i++) {
		unsigned int d = (s->next_die + i) % s->nr_dies;

		if (s->die[d].free < s->die[best].free)
			best = d;
	}
	s->next_die = best + 1;
	return best;
}

/* Program one page that entered the buffer at @t; its program end. */
static uint64_t ssd_program(struct sim_model *m, uint64_t t)
{
	struct ssd *s = ssd_of(m);
	unsigned int d = ssd_program_die(m, t), c = d % m->p.channels;
	uint64_t x = max(t, s->chan_free[c]), end;

	s->chan_free[c] = x + s->xfer_ns;
	end = ssd_die_queue(&s->die[d], SSD_OP_PROGRAM, s->chan_free[c],
			    s->prog_ns);
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
	s->prog_sus_ns = p->program_suspend_us * NSEC_PER_USEC;
	s->erase_sus_ns = p->erase_suspend_us * NSEC_PER_USEC;
	s->resume_ns = p->resume_us * NSEC_PER_USEC;
	s->nr_slots = max(1U, p->write_buffer_mb * 256);
	s->nr_pages = m->capacity * SECTOR_SIZE / SSD_PAGE;
	s->flash_pages = s->nr_pages * (100 + p->over_provisioning) / 100;
	s->die = calloc(s->nr_dies, sizeof(*s->die));
	s->chan_free = calloc(p->channels, sizeof(*s->chan_free));
	s->block_fill = calloc(s->nr_dies, sizeof(*s->block_fill));
	s->slot_free = calloc(s->nr_slots, sizeof(*s->slot_free));
	s->valid = calloc(DIV_ROUND_UP(s->nr_pages, 64) + 1, sizeof(uint64_t));
	if (!s->die || !s->chan_free || !s->block_fill ||
	    !s->slot_free || !s->valid)
		return -ENOMEM;		/* the caller calls ->exit */
	return 0;
}

static void ssd_exit(struct sim_model *m)
{
	struct ssd *s = ssd_of(m);

	if (!s)
		return;
	free(s->die);
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
		"fill=%llu%% gc_copies_per_block=%u suspends=%llu\n",
		s->nr_dies, (unsigned long long)s->nr_valid,
		(unsigned long long)s->flash_pages,
		(unsigned long long)(s->nr_valid * 100 / s->flash_pages),
		ssd_gc_copies(m), (unsigned long long)m->st.suspends);
}

const struct sim_model_ops sim_ssd_ops = {
	.name		= "ssd",
	.serial		= false,
	.init		= ssd_init,
	.exit		= ssd_exit,
	.service	= ssd_service,
	.show		= ssd_show,
};
