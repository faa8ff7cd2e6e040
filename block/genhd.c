// SPDX-License-Identifier: MIT
/*
 * Disks (the kernel's block/genhd.c): allocation, the registry of disks
 * by name with major:minor numbers, removal that drains I/O, reference
 * counting, and the table of drivers that blkstack_dev_add() creates
 * devices with.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "blk-trace.h"

#define BLKSTACK_MAJOR	252

/* The driver table: adding a driver is its file plus one line here. */
extern const struct blk_driver null_blk_driver;
extern const struct blk_driver nbd_driver;
extern const struct blk_driver uring_driver;
extern const struct blk_driver sim_driver;
static const struct blk_driver *const blk_drivers[] = {
	&null_blk_driver,
	&nbd_driver,
	&uring_driver,
	&sim_driver,
	NULL,
};

static pthread_mutex_t disks_lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(disks);
static int next_minor;

const char *blkstack_driver_names(void)
{
	static char names[256];

	if (!names[0]) {
		size_t pos = 0;

		for (int i = 0; blk_drivers[i]; i++)
			pos += (size_t)snprintf(names + pos, sizeof(names) - pos,
						"%s%s", i ? " " : "",
						blk_drivers[i]->name);
	}
	return names;
}

static const struct blk_driver *find_driver(const char *name)
{
	for (int i = 0; blk_drivers[i]; i++)
		if (!strcmp(blk_drivers[i]->name, name))
			return blk_drivers[i];
	return NULL;
}

struct gendisk *__alloc_disk(struct request_queue *q)
{
	struct gendisk *disk = calloc(1, sizeof(*disk));

	if (!disk)
		return NULL;
	disk->nr_stats = BLK_STAT_SLOTS;
	disk->stats = aligned_alloc(SMP_CACHE_BYTES,
				    disk->nr_stats * sizeof(*disk->stats));
	if (!disk->stats)
		goto fail;
	memset(disk->stats, 0, disk->nr_stats * sizeof(*disk->stats));
	disk->queue = q;
	q->disk = disk;
	atomic_init(&disk->refcount, 1);
	INIT_LIST_HEAD(&disk->list);
	return disk;
fail:
	free(disk);
	return NULL;
}

static struct gendisk *alloc_disk_with_queue(const struct queue_limits *lim,
					     void *queuedata,
					     struct request_queue **qp)
{
	struct request_queue *q = blk_alloc_queue();
	struct gendisk *disk;

	if (!q) {
		blk_err(-ENOMEM, "out of memory for a queue");
		return NULL;
	}
	if (lim) {
		q->limits = *lim;
		if (blk_validate_limits(&q->limits)) {
			blk_free_queue(q);
			return NULL;
		}
	} else {
		blk_validate_limits(&q->limits);
	}
	blk_queue_apply_limits(q);
	q->queuedata = queuedata;
	disk = __alloc_disk(q);
	if (!disk) {
		blk_free_queue(q);
		blk_err(-ENOMEM, "out of memory for a disk");
		return NULL;
	}
	*qp = q;
	return disk;
}

struct gendisk *blk_mq_alloc_disk(struct blk_mq_tag_set *set,
				  const struct queue_limits *lim,
				  void *queuedata)
{
	struct request_queue *q;
	struct gendisk *disk = alloc_disk_with_queue(lim, queuedata, &q);

	if (!disk)
		return NULL;
	if (blk_mq_init_allocated_queue(set, q)) {
		q->disk = NULL;
		free(disk->stats);
		free(disk);
		blk_free_queue(q);
		return NULL;
	}
	return disk;
}

struct gendisk *blk_alloc_disk(const struct block_device_operations *fops,
			       const struct queue_limits *lim, void *queuedata)
{
	struct request_queue *q;
	struct gendisk *disk;

	if (!fops || !fops->submit_bio) {
		blk_err(-EINVAL, "a bio-based disk needs fops->submit_bio");
		return NULL;
	}
	disk = alloc_disk_with_queue(lim, queuedata, &q);
	if (disk)
		disk->fops = fops;
	return disk;
}

static struct gendisk *__find_disk(const char *name)
{
	struct gendisk *disk;

	list_for_each_entry(disk, &disks, list)
		if (!strcmp(disk->disk_name, name))
			return disk;
	return NULL;
}

int add_disk(struct gendisk *disk, const char *name, sector_t capacity)
{
	int ret;

	if (!name || !*name || strlen(name) >= sizeof(disk->disk_name) ||
	    strchr(name, '/') || strchr(name, ' '))
		return blk_err(-EINVAL, "device name '%s': 1..%zu characters, "
			       "no '/' or spaces", name ? name : "",
			       sizeof(disk->disk_name) - 1);
	strcpy(disk->disk_name, name);
	disk->capacity = capacity;
	if (queue_is_mq(disk->queue)) {
		ret = elevator_init_mq(disk->queue);
		if (ret)
			return ret;
	}
	pthread_mutex_lock(&disks_lock);
	if (__find_disk(name)) {
		pthread_mutex_unlock(&disks_lock);
		return blk_err(-EEXIST, "device '%s' already exists", name);
	}
	disk->major = BLKSTACK_MAJOR;
	disk->first_minor = next_minor++;
	list_add_tail(&disk->list, &disks);
	disk->flags |= GD_ADDED;
	atomic_fetch_add(&disk->refcount, 1);	/* the registry's */
	pthread_mutex_unlock(&disks_lock);
	return 0;
}

/*
 * Take @disk away: no new lookups, new I/O fails (BLK_STS_OFFLINE),
 * in-flight I/O drains. The memory goes with the last reference.
 */
void del_gendisk(struct gendisk *disk)
{
	struct request_queue *q = disk->queue;
	bool added;

	pthread_mutex_lock(&disks_lock);
	added = disk->flags & GD_ADDED;
	if (added)
		list_del_init(&disk->list);
	disk->flags = (disk->flags & ~GD_ADDED) | GD_DEAD;
	pthread_mutex_unlock(&disks_lock);

	blk_queue_flag_set(QUEUE_FLAG_DYING, q);
	blk_freeze_queue_start(q);
	percpu_ref_wake(&q->q_usage_counter);	/* waiters see DYING */
	blk_mq_freeze_queue_wait(q);
	/*
	 * No request is left, but a worker may still be unwinding a run
	 * or a completion (the kernel's blk_mq_cancel_work_sync()): wait
	 * for it before anything is freed.
	 */
	if (queue_is_mq(q)) {
		struct blk_mq_hw_ctx *hctx;
		unsigned int i;

		cancel_delayed_work_sync(&q->requeue_work);
		queue_for_each_hw_ctx(q, hctx, i)
			cancel_delayed_work_sync(&hctx->run_work);
	}
	cancel_delayed_work_sync(&q->timeout_work);
	blk_trace_shutdown(q);	/* the files end with the last I/O */
	if (added)
		put_disk(disk);
}

void disk_release(struct gendisk *disk)
{
	struct request_queue *q = disk->queue;

	if (queue_is_mq(q)) {
		elevator_exit(q);
		blk_mq_exit_queue(q);
	}
	if (disk->driver && disk->driver->destroy)
		disk->driver->destroy(disk);
	blk_trace_shutdown(q);
	blk_trace_release(q);
	blk_free_queue(q);
	free(disk->stats);
	free(disk);
}

void put_disk(struct gendisk *disk)
{
	if (disk && atomic_fetch_sub(&disk->refcount, 1) == 1)
		disk_release(disk);
}

void blk_put_disk(struct gendisk *disk)
{
	put_disk(disk);
}

struct gendisk *blk_get_disk(const char *name)
{
	struct gendisk *disk;

	pthread_mutex_lock(&disks_lock);
	disk = __find_disk(name);
	if (disk)
		atomic_fetch_add(&disk->refcount, 1);
	pthread_mutex_unlock(&disks_lock);
	if (!disk)
		blk_err(-ENODEV, "no device '%s'", name);
	return disk;
}

int blkstack_dev_for_each(int (*fn)(struct gendisk *disk, void *arg),
			  void *arg)
{
	struct gendisk **snap = NULL, *disk;
	size_t n = 0, i = 0;
	int ret = 0;

	/* call back without the lock: fn may add or remove devices */
	pthread_mutex_lock(&disks_lock);
	list_for_each_entry(disk, &disks, list)
		n++;
	snap = calloc(n ? n : 1, sizeof(*snap));
	if (snap) {
		list_for_each_entry(disk, &disks, list) {
			atomic_fetch_add(&disk->refcount, 1);
			snap[i++] = disk;
		}
	}
	pthread_mutex_unlock(&disks_lock);
	if (!snap)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (!ret)
			ret = fn(snap[i], arg);
		put_disk(snap[i]);
	}
	free(snap);
	return ret;
}

int blkstack_dev_add(const char *driver, const char *name,
		     const char *params, struct gendisk **diskp)
{
	const struct blk_driver *drv = find_driver(driver ? driver : "");
	struct gendisk *disk = NULL;
	int ret;

	if (!drv)
		return blk_err(-EINVAL, "driver '%s': valid drivers are %s",
			       driver ? driver : "", blkstack_driver_names());
	pthread_mutex_lock(&disks_lock);
	ret = name && __find_disk(name) ? -EEXIST : 0;
	pthread_mutex_unlock(&disks_lock);
	if (ret)
		return blk_err(ret, "device '%s' already exists", name);
	ret = drv->create(name, params ? params : "", &disk);
	if (ret)
		return ret;
	disk->driver = drv;
	if (diskp) {
		atomic_fetch_add(&disk->refcount, 1);
		*diskp = disk;
	}
	return 0;
}

int blkstack_dev_del(const char *name)
{
	struct gendisk *disk = blk_get_disk(name);

	if (!disk)
		return -ENODEV;
	del_gendisk(disk);
	put_disk(disk);
	return 0;
}

/* ---- accessors ---- */

const char *blk_disk_name(const struct gendisk *disk)
{
	return disk->disk_name;
}

const char *blk_disk_driver(const struct gendisk *disk)
{
	return disk->driver ? disk->driver->name : "";
}

sector_t get_capacity(const struct gendisk *disk)
{
	return atomic_load_explicit((_Atomic sector_t *)&disk->capacity,
				    memory_order_relaxed);
}

void set_capacity(struct gendisk *disk, sector_t sectors)
{
	atomic_store(&disk->capacity, sectors);
}

unsigned int bdev_logical_block_size(const struct gendisk *disk)
{
	return disk->queue->limits.logical_block_size;
}

unsigned int bdev_physical_block_size(const struct gendisk *disk)
{
	return disk->queue->limits.physical_block_size;
}

void blk_disk_devt(const struct gendisk *disk, int *major, int *minor)
{
	*major = disk->major;
	*minor = disk->first_minor;
}

bool bdev_read_only(const struct gendisk *disk)
{
	return atomic_load_explicit((_Atomic unsigned int *)&disk->flags,
				    memory_order_relaxed) & GD_READ_ONLY;
}

void set_disk_ro(struct gendisk *disk, bool read_only)
{
	if (read_only)
		atomic_fetch_or(&disk->flags, GD_READ_ONLY);
	else
		atomic_fetch_and(&disk->flags, ~GD_READ_ONLY);
}

struct request_queue *disk_queue(const struct gendisk *disk)
{
	return disk->queue;
}

void *disk_private(const struct gendisk *disk)
{
	return disk->private_data;
}

void disk_set_private(struct gendisk *disk, void *data)
{
	disk->private_data = data;
}

void *queue_driver_data(const struct request_queue *q)
{
	return q->queuedata;
}

struct gendisk *queue_disk(const struct request_queue *q)
{
	return q->disk;
}

struct request_queue *hctx_queue(const struct blk_mq_hw_ctx *hctx)
{
	return hctx->queue;
}

void *hctx_driver_data(const struct blk_mq_hw_ctx *hctx)
{
	return hctx->driver_data;
}

void hctx_set_driver_data(struct blk_mq_hw_ctx *hctx, void *data)
{
	hctx->driver_data = data;
}

unsigned int hctx_index(const struct blk_mq_hw_ctx *hctx)
{
	return hctx->queue_num;
}

enum hctx_type hctx_type_of(const struct blk_mq_hw_ctx *hctx)
{
	return (enum hctx_type)hctx->type;
}

int blkdev_bypass_rw(struct gendisk *disk, enum req_op op, sector_t sector,
		     void *buf, unsigned int len)
{
	if (!disk->driver || !disk->driver->bypass_rw)
		return blk_err(-EOPNOTSUPP, "%s: driver %s has no bypass path",
			       disk->disk_name, blk_disk_driver(disk));
	return disk->driver->bypass_rw(disk, op, sector, buf, len);
}
