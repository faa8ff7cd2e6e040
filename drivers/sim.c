// SPDX-License-Identifier: MIT
/*
 * sim: a block device with the service times of a disk or an SSD
 * (drivers/sim-hdd.c, sim-ssd.c), for showing what I/O schedulers do.
 * Data lives in a sparse page store, so verify works.
 *
 * Time: the model runs on its own clock, model time = (wall time since
 * the device was made) x time_scale. A command is stamped with the
 * model time it reached the driver; the model says when it completes;
 * the device's completion thread (the "interrupt" context) sleeps until
 * the wall time that corresponds and completes it there. Serial models
 * (hdd) are fed by that thread: when the disk comes free it picks the
 * next queued command (NCQ reordering) starting at the exact model time
 * the previous one ended, so a late wake-up delays completions on the
 * wall clock but never changes the model's timings. The latencies this
 * driver reports (sim_get_stats(), the debug dump) are model time;
 * diskstats and the schedulers' clocks are wall time, i.e. model time
 * divided by time_scale (docs/sim.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "block/blk.h"
#include "drivers/sim.h"
#include "lib/page-store.h"

extern const struct blk_driver sim_driver;

struct sim_cmd {
	struct list_head list;
	struct request *rq;
	struct sim_io io;
	uint64_t arrival;		/* model ns */
	uint64_t done;			/* model ns */
	blk_status_t error;
};

struct sim_dev {
	struct gendisk *disk;
	struct sim_params p;
	struct blk_mq_tag_set set;
	struct page_store store;
	uint64_t t0;			/* wall ns at model time 0 */
	pthread_mutex_t lock;		/* all below */
	pthread_cond_t cond;
	struct sim_model model;
	struct list_head pending;	/* serial: waiting for the device */
	struct list_head timed;		/* in service, by completion time */
	struct sim_cmd *busy;		/* serial: the one in service */
	uint64_t free_at;		/* serial: model time it comes free */
	struct sim_stats stats;
	bool stop;
	bool has_thread;
	pthread_t thread;
};

/* ---- the model clock ---- */

static uint64_t sim_now(struct sim_dev *dev)
{
	unsigned __int128 wall = ktime_get_ns() - dev->t0;

	return (uint64_t)(wall * dev->p.time_scale / dev->p.time_div);
}

static struct timespec sim_wall(struct sim_dev *dev, uint64_t model_ns)
{
	return ns_to_timespec(dev->t0 +
			      (uint64_t)((unsigned __int128)model_ns *
					 dev->p.time_div / dev->p.time_scale));
}

/* ---- statistics (dev->lock held) ---- */

static void sim_lat_add(struct sim_lat *lat, uint64_t ns)
{
	unsigned int b = ns ? 63 - (unsigned int)__builtin_clzll(ns) : 0;

	lat->count++;
	lat->total_ns += ns;
	lat->max_ns = max(lat->max_ns, ns);
	lat->bucket[b]++;
}

uint64_t sim_lat_percentile(const struct sim_lat *lat, double pct)
{
	uint64_t want = (uint64_t)(lat->count * pct / 100.0 + 0.5), seen = 0;

	if (!lat->count)
		return 0;
	want = max(want, 1ULL);
	for (unsigned int b = 0; b < SIM_LAT_BUCKETS; b++) {
		seen += lat->bucket[b];
		/* the bucket's upper edge, but never past the maximum */
		if (seen >= want)
			return min(lat->max_ns, (2ULL << b) - 1);
	}
	return lat->max_ns;
}

int sim_get_stats(struct gendisk *disk, struct sim_stats *st)
{
	struct sim_dev *dev;

	if (!disk || disk->driver != &sim_driver)
		return blk_err(-EINVAL, "sim_get_stats: %s is not a sim device",
			       disk ? disk->disk_name : "(null)");
	dev = disk_private(disk);
	pthread_mutex_lock(&dev->lock);
	*st = dev->stats;
	st->model = dev->model.st;
	st->now_ns = sim_now(dev);
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

/* ---- the completion thread ---- */

/* Keep ->timed sorted by completion time (FIFO among equals). */
static void sim_add_timed(struct sim_dev *dev, struct sim_cmd *cmd)
{
	struct sim_cmd *pos;

	list_for_each_entry_reverse(pos, &dev->timed, list) {
		if (pos->done <= cmd->done) {
			list_add(&cmd->list, &pos->list);
			return;
		}
	}
	list_add(&cmd->list, &dev->timed);
}

/*
 * The serial device came free: start the queued command that can begin
 * soonest (NCQ), among those that had arrived when it came free.
 */
static void sim_start_next(struct sim_dev *dev)
{
	struct sim_model *m = &dev->model;
	struct sim_cmd *cmd, *pick = NULL;
	uint64_t start = UINT64_MAX, best = UINT64_MAX;
	uint64_t age = (uint64_t)m->p.ncq_age_ms * NSEC_PER_MSEC;

	list_for_each_entry(cmd, &dev->pending, list)
		start = min(start, cmd->arrival);
	start = max(start, dev->free_at);
	list_for_each_entry(cmd, &dev->pending, list) {
		uint64_t cost;

		if (cmd->arrival > start)
			continue;
		if (start - cmd->arrival > age) {
			pick = cmd;	/* oldest first: it waited too long */
			break;
		}
		cost = m->ops->position_ns(m, &cmd->io, start);
		if (cost < best) {
			best = cost;
			pick = cmd;
		}
	}
	list_del(&pick->list);
	pick->done = m->ops->service(m, &pick->io, start);
	dev->stats.busy_ns += pick->done - start;
	dev->busy = pick;
	sim_add_timed(dev, pick);
}

/* Move what is due by model time @now to @done; account it. */
static void sim_collect_due(struct sim_dev *dev, uint64_t now,
			    struct list_head *done)
{
	struct sim_cmd *cmd, *next;

	list_for_each_entry_safe(cmd, next, &dev->timed, list) {
		if (cmd->done > now)
			break;
		list_move_tail(&cmd->list, done);
		sim_lat_add(&dev->stats.lat[op_stat_group(cmd->rq->cmd_flags)],
			    cmd->done - cmd->arrival);
		if (cmd == dev->busy) {
			dev->busy = NULL;
			dev->free_at = cmd->done;
		}
	}
}

static void sim_complete_list(struct list_head *done)
{
	struct sim_cmd *cmd, *next;

	list_for_each_entry_safe(cmd, next, done, list) {
		list_del_init(&cmd->list);
		blk_mq_complete_request(cmd->rq);
	}
}

static void *sim_irq_thread(void *arg)
{
	struct sim_dev *dev = arg;

	/* the default 50 us timer slack would blur short model times */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	pthread_mutex_lock(&dev->lock);
	for (;;) {
		LIST_HEAD(done);

		if (dev->model.ops->serial && !dev->busy &&
		    !list_empty(&dev->pending))
			sim_start_next(dev);
		sim_collect_due(dev, sim_now(dev), &done);
		if (!list_empty(&done)) {
			pthread_mutex_unlock(&dev->lock);
			sim_complete_list(&done);
			pthread_mutex_lock(&dev->lock);
			continue;
		}
		if (!list_empty(&dev->timed)) {
			struct timespec ts = sim_wall(dev,
				list_first_entry(&dev->timed, struct sim_cmd,
						 list)->done);

			pthread_cond_timedwait(&dev->cond, &dev->lock, &ts);
		} else if (dev->stop) {
			break;
		} else {
			pthread_cond_wait(&dev->cond, &dev->lock);
		}
	}
	pthread_mutex_unlock(&dev->lock);
	return NULL;
}

/* ---- blk_mq_ops ---- */

static struct sim_dev *rq_sim(struct request *rq)
{
	return queue_driver_data(rq->q);
}

/* Move the data now; the model only decides when it completes. */
static int sim_do_data(struct sim_dev *dev, struct request *rq)
{
	uint64_t off = blk_rq_pos(rq) << SECTOR_SHIFT;
	int ret = 0;

	if (!dev->p.memory_backed)
		return 0;
	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		for (struct bio *bio = rq->bio; bio && !ret; bio = bio->bi_next) {
			uint64_t pos = bio->bi_iter.bi_sector << SECTOR_SHIFT;
			struct bvec_iter iter;
			struct bio_vec bv;

			bio_for_each_segment(bv, bio, iter) {
				if (req_op(rq) == REQ_OP_WRITE)
					ret = page_store_write(&dev->store, pos,
							       bv.bv_buf,
							       bv.bv_len);
				else
					page_store_read(&dev->store, pos,
							bv.bv_buf, bv.bv_len);
				if (ret)
					break;
				pos += bv.bv_len;
			}
		}
		break;
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		page_store_discard(&dev->store, off, blk_rq_bytes(rq));
		break;
	default:
		break;
	}
	return ret;
}

static blk_status_t sim_queue_rq(struct blk_mq_hw_ctx *hctx,
				 const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct sim_dev *dev = rq_sim(rq);
	struct sim_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct sim_model *m = &dev->model;

	if (sim_do_data(dev, rq))
		return BLK_STS_RESOURCE;	/* out of memory: retry */
	blk_mq_start_request(rq);
	INIT_LIST_HEAD(&cmd->list);
	cmd->rq = rq;
	cmd->error = BLK_STS_OK;
	cmd->io.op = req_op(rq);
	cmd->io.fua = rq->cmd_flags & REQ_FUA;
	cmd->io.sector = blk_rq_pos(rq);
	cmd->io.bytes = blk_rq_bytes(rq);

	pthread_mutex_lock(&dev->lock);
	cmd->arrival = sim_now(dev);
	if (m->ops->serial) {
		list_add_tail(&cmd->list, &dev->pending);
		if (!dev->busy)
			pthread_cond_signal(&dev->cond);
	} else {
		cmd->done = m->ops->service(m, &cmd->io, cmd->arrival);
		dev->stats.busy_ns += cmd->done - cmd->arrival;
		sim_add_timed(dev, cmd);
		/* the thread sleeps until the earliest: wake it if that moved */
		if (list_first_entry(&dev->timed, struct sim_cmd, list) == cmd)
			pthread_cond_signal(&dev->cond);
	}
	pthread_mutex_unlock(&dev->lock);
	return BLK_STS_OK;
}

static void sim_complete_rq(struct request *rq)
{
	struct sim_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->error);
}

/* A deep queue on a slow model can outlast the time-out: let it run. */
static enum blk_eh_timer_return sim_timeout_rq(struct request *rq)
{
	return BLK_EH_RESET_TIMER;
}

static void sim_show_lat(FILE *out, const char *name, const struct sim_lat *l)
{
	if (!l->count)
		return;
	fprintf(out, "  sim %s: ios=%" PRIu64 " mean_us=%" PRIu64
		" p99_us=%" PRIu64 " max_us=%" PRIu64 " (model time)\n", name,
		l->count, l->total_ns / l->count / 1000,
		sim_lat_percentile(l, 99) / 1000, l->max_ns / 1000);
}

static void sim_show_hctx(struct blk_mq_hw_ctx *hctx, FILE *out)
{
	static const char *const names[4] = { "read", "write", "discard",
					      "flush" };
	struct sim_dev *dev = queue_driver_data(hctx_queue(hctx));
	struct sim_model_stats *ms = &dev->model.st;

	pthread_mutex_lock(&dev->lock);
	fprintf(out, "  sim: model=%s time_scale=%g model_now_ms=%" PRIu64
		" busy_ms=%" PRIu64 "\n", dev->model.ops->name,
		(double)dev->p.time_scale / dev->p.time_div,
		sim_now(dev) / 1000000,
		dev->stats.busy_ns / 1000000);
	for (int i = 0; i < 4; i++)
		sim_show_lat(out, names[i], &dev->stats.lat[i]);
	fprintf(out, "  sim model: seeks=%" PRIu64 " seek_ms=%" PRIu64
		" rot_ms=%" PRIu64 " xfer_ms=%" PRIu64 " ra_hits=%" PRIu64
		" destages=%" PRIu64 " cache_full_stalls=%" PRIu64
		" flash_reads=%" PRIu64 " programs=%" PRIu64 " erases=%" PRIu64
		" gc_runs=%" PRIu64 " gc_copies=%" PRIu64
		" buffer_stalls=%" PRIu64 "\n", ms->seeks,
		ms->seek_ns / 1000000, ms->rot_ns / 1000000,
		ms->xfer_ns / 1000000, ms->ra_hits, ms->destages,
		ms->cache_full_stalls, ms->flash_reads, ms->flash_programs,
		ms->erases, ms->gc_runs, ms->gc_copies, ms->buffer_stalls);
	dev->model.ops->show(&dev->model, out);
	pthread_mutex_unlock(&dev->lock);
}

static const struct blk_mq_ops sim_mq_ops = {
	.queue_rq	= sim_queue_rq,
	.complete	= sim_complete_rq,
	.timeout	= sim_timeout_rq,
	.show_hctx	= sim_show_hctx,
};

/* ---- the model ---- */

int sim_model_init(struct sim_model *m, const struct sim_params *p,
		   sector_t capacity)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->ops = p->model == SIM_HDD ? &sim_hdd_ops : &sim_ssd_ops;
	m->p = *p;
	m->capacity = capacity;
	ret = m->ops->init(m);
	if (ret)
		m->ops->exit(m);
	return ret;
}

void sim_model_exit(struct sim_model *m)
{
	if (m->ops)
		m->ops->exit(m);
	m->ops = NULL;
}

/* ---- create / destroy ---- */

static void sim_fill_limits(const struct sim_params *p,
			    struct queue_limits *lim)
{
	blk_set_default_limits(lim);
	lim->logical_block_size = p->bs;
	lim->physical_block_size = 4096;
	lim->max_hw_sectors = BLK_DEF_MAX_SECTORS;
	lim->max_write_zeroes_sectors = UINT32_MAX >> SECTOR_SHIFT;
	if (p->model == SIM_SSD) {
		lim->max_hw_discard_sectors = UINT32_MAX >> SECTOR_SHIFT;
		lim->discard_granularity = 4096;
	}
	lim->features_write_cache = p->write_cache;
	lim->features_fua = p->write_cache;
	lim->features_rotational = p->model == SIM_HDD;
}

static void sim_free(struct sim_dev *dev)
{
	if (dev->has_thread) {
		pthread_mutex_lock(&dev->lock);
		dev->stop = true;
		pthread_cond_signal(&dev->cond);
		pthread_mutex_unlock(&dev->lock);
		pthread_join(dev->thread, NULL);
	}
	sim_model_exit(&dev->model);
	page_store_free(&dev->store);
	pthread_mutex_destroy(&dev->lock);
	pthread_cond_destroy(&dev->cond);
	free(dev);
}

static struct sim_dev *sim_alloc(const struct sim_params *p)
{
	struct sim_dev *dev = calloc(1, sizeof(*dev));
	pthread_condattr_t attr;
	uint64_t bytes = p->size_mb << 20;

	if (!dev)
		return NULL;
	dev->p = *p;
	pthread_mutex_init(&dev->lock, NULL);
	/* the completion thread sleeps until monotonic deadlines */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&dev->cond, &attr);
	pthread_condattr_destroy(&attr);
	INIT_LIST_HEAD(&dev->pending);
	INIT_LIST_HEAD(&dev->timed);
	if (page_store_init(&dev->store, bytes) ||
	    sim_model_init(&dev->model, p, bytes >> SECTOR_SHIFT)) {
		sim_free(dev);
		return NULL;
	}
	dev->t0 = ktime_get_ns();
	if (pthread_create(&dev->thread, NULL, sim_irq_thread, dev)) {
		sim_free(dev);
		return NULL;
	}
	pthread_setname_np(dev->thread, "sim-irq");
	dev->has_thread = true;
	return dev;
}

/*
 * Make and add the disk. On failure @dev is gone: freed here before the
 * disk exists, by the disk's release (sim_destroy) after.
 */
static int sim_setup_disk(struct sim_dev *dev, const char *name)
{
	struct queue_limits lim;
	int ret;

	memset(&dev->set, 0, sizeof(dev->set));
	dev->set.ops = &sim_mq_ops;
	dev->set.nr_hw_queues = 1;	/* one device, one queue (SATA) */
	dev->set.nr_maps = 1;
	dev->set.queue_depth = dev->p.hw_queue_depth;
	dev->set.cmd_size = sizeof(struct sim_cmd);
	dev->set.driver_data = dev;
	dev->set.flags = BLK_MQ_F_SHOULD_MERGE;
	ret = blk_mq_alloc_tag_set(&dev->set);
	if (ret) {
		sim_free(dev);
		return ret;
	}
	sim_fill_limits(&dev->p, &lim);
	dev->disk = blk_mq_alloc_disk(&dev->set, &lim, dev);
	if (!dev->disk) {
		blk_mq_free_tag_set(&dev->set);
		sim_free(dev);
		return -ENOMEM;
	}
	disk_set_private(dev->disk, dev);
	dev->disk->driver = &sim_driver;
	ret = add_disk(dev->disk, name, (dev->p.size_mb << 20) >> SECTOR_SHIFT);
	if (ret)
		put_disk(dev->disk);	/* disk_release -> sim_destroy */
	return ret;
}

static _Atomic unsigned int sim_index;

static int sim_create(const char *name, const char *params,
		      struct gendisk **diskp)
{
	struct sim_params p;
	struct sim_dev *dev;
	char auto_name[32];
	int ret;

	ret = sim_params_parse(&p, params);
	if (ret)
		return ret;
	if (!name || !*name) {
		snprintf(auto_name, sizeof(auto_name), "sim%u",
			 atomic_fetch_add(&sim_index, 1));
		name = auto_name;
	}
	dev = sim_alloc(&p);
	if (!dev)
		return blk_err(-ENOMEM, "sim: out of memory");
	ret = sim_setup_disk(dev, name);
	if (ret)
		return ret;
	*diskp = dev->disk;
	put_disk(dev->disk);	/* the registry keeps it */
	return 0;
}

static void sim_destroy(struct gendisk *disk)
{
	struct sim_dev *dev = disk_private(disk);

	if (!dev)
		return;
	blk_mq_free_tag_set(&dev->set);
	sim_free(dev);
}

const struct blk_driver sim_driver = {
	.name		= "sim",
	.params_help	= "model=hdd|ssd, size, bs, hw_queue_depth, "
			  "time_scale, seed, memory_backed, write_cache, ... "
			  "(docs/sim.md)",
	.create		= sim_create,
	.destroy	= sim_destroy,
};
