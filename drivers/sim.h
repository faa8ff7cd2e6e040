/* SPDX-License-Identifier: MIT */
/*
 * sim: a memory-backed block device whose service times come from a
 * timing model of a disk (model=hdd) or a flash SSD (model=ssd). The
 * driver (sim.c) keeps the data and runs the model on a completion
 * thread per device; the models (sim-hdd.c, sim-ssd.c) are pure
 * functions of their state and the I/O sequence, in model nanoseconds,
 * so tests can drive them directly. Parameters: docs/sim.md.
 */
#ifndef BLKSTACK_DRIVERS_SIM_H
#define BLKSTACK_DRIVERS_SIM_H

#include <stdint.h>
#include <stdio.h>
#include <blkstack/blk-mq.h>

enum sim_model_kind { SIM_HDD, SIM_SSD };

struct sim_params {
	enum sim_model_kind model;
	uint64_t size_mb;
	unsigned int bs;
	unsigned int hw_queue_depth;	/* 0: the model's queue (ncq_depth) */
	/* model time = wall time x time_scale / time_div */
	unsigned int time_scale;
	unsigned int time_div;		/* > 1: time_scale=0.1 etc. */
	uint64_t seed;
	unsigned int memory_backed;
	unsigned int write_cache;	/* volatile cache: flush/FUA matter */
	unsigned int cmd_overhead_us;	/* controller time per command */
	unsigned int interface_mbps;	/* host link (SATA 3: ~550) */
	/* hdd */
	unsigned int rpm;
	unsigned int track_to_track_us;
	unsigned int avg_seek_us;
	unsigned int full_seek_us;
	unsigned int outer_mbps;	/* media rate, outer zone (LBA 0) */
	unsigned int inner_mbps;	/* media rate, inner zone (last LBA) */
	unsigned int cylinders;
	unsigned int ncq_depth;
	unsigned int ncq_age_ms;	/* a command this old goes first */
	unsigned int cache_size_mb;	/* write cache */
	unsigned int readahead_kb;	/* read-ahead past a media read */
	/* ssd */
	unsigned int channels;
	unsigned int dies_per_channel;
	unsigned int read_us;		/* flash page read (tR) */
	unsigned int program_us;	/* page program (tPROG) */
	unsigned int erase_us;		/* block erase (tBERS) */
	unsigned int program_kb;	/* bytes one program writes per die */
	unsigned int pages_per_block;	/* 4 KiB pages per erase block */
	unsigned int channel_mbps;
	unsigned int write_buffer_mb;
	unsigned int gc_threshold;	/* % of flash full before GC copies */
	unsigned int over_provisioning;	/* % spare flash beyond the size */
	unsigned int dynamic_alloc;	/* programs go to the die free first */
	/* a read may suspend the program or erase its die is doing */
	unsigned int suspend;		/* 0: reads wait the operation out */
	unsigned int program_suspend_us; /* until a program stops for it */
	unsigned int erase_suspend_us;	/* until an erase stops for it */
	unsigned int resume_us;		/* the operation's cost to resume */
	unsigned int max_suspends;	/* per operation, then it finishes */
};

void sim_params_default(struct sim_params *p, enum sim_model_kind model);
/* Parse "k=v,..." (model= first decides the defaults); -EINVAL + message. */
int sim_params_parse(struct sim_params *out, const char *params);

/* One command as the model sees it. */
struct sim_io {
	enum req_op op;
	bool fua;
	sector_t sector;
	uint32_t bytes;
};

/* What a model accumulates (model time), for the dump and tests. */
struct sim_model_stats {
	uint64_t seeks, seek_ns, rot_ns, xfer_ns;	/* hdd media access */
	uint64_t ra_hits;			/* hdd reads from read-ahead */
	uint64_t destages, destage_ns;		/* hdd cache write-backs */
	uint64_t cache_full_stalls;		/* hdd writes that waited */
	uint64_t flash_reads, flash_programs, erases;	/* ssd */
	uint64_t gc_runs, gc_copies, gc_ns;	/* ssd garbage collection */
	uint64_t buffer_stalls, buffer_stall_ns;	/* ssd write buffer full */
	uint64_t suspends;			/* ssd program/erase suspends */
};

struct sim_model;

/*
 * A model: its state and how to cost one command. Serial models (a disk
 * with one actuator) serve one command at a time: ->position_ns ranks
 * the queued commands (shortest positioning time first, as NCQ
 * firmware does) and ->service is called when the device is free.
 * Parallel models (flash) take each command when it arrives and
 * account their internal resources themselves.
 */
struct sim_model_ops {
	const char *name;
	bool serial;
	int (*init)(struct sim_model *m);
	void (*exit)(struct sim_model *m);
	uint64_t (*position_ns)(struct sim_model *m, const struct sim_io *io,
				uint64_t start);
	/* Start @io at model time @start; returns its completion time. */
	uint64_t (*service)(struct sim_model *m, const struct sim_io *io,
			    uint64_t start);
	void (*show)(struct sim_model *m, FILE *out);
};

struct sim_model {
	const struct sim_model_ops *ops;
	struct sim_params p;
	sector_t capacity;		/* sectors */
	void *priv;
	struct sim_model_stats st;
};

extern const struct sim_model_ops sim_hdd_ops;
extern const struct sim_model_ops sim_ssd_ops;

/* Set up @m for @p over @capacity sectors: 0 or -errno. */
int sim_model_init(struct sim_model *m, const struct sim_params *p,
		   sector_t capacity);
void sim_model_exit(struct sim_model *m);

/* hdd internals the tests check against the figures in docs/sim.md */
uint64_t sim_hdd_seek_ns(const struct sim_params *p, uint64_t distance);

/* ---- per-device statistics, model time ---- */

#define SIM_LAT_BUCKETS	64	/* log2 buckets of nanoseconds */

struct sim_lat {
	uint64_t count;
	uint64_t total_ns;
	uint64_t max_ns;
	uint64_t bucket[SIM_LAT_BUCKETS];
};

struct sim_stats {
	struct sim_lat lat[4];		/* by STAT_READ.. STAT_FLUSH */
	uint64_t busy_ns;		/* model time with a command in service */
	uint64_t now_ns;		/* model time now */
	struct sim_model_stats model;
};

/* A copy of @disk's counters; -EINVAL if it is not a sim device. */
int sim_get_stats(struct gendisk *disk, struct sim_stats *st);
/* The latency below which @pct % of the commands of @lat completed. */
uint64_t sim_lat_percentile(const struct sim_lat *lat, double pct);

#endif
