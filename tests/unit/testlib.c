// SPDX-License-Identifier: MIT
/*
 * Shared helpers of the unit tests: checks, watchdog, data patterns,
 * devices through the public API, async I/O, the recording driver and
 * the "fifo-test" scheduler. See testlib.h for what each does.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/blk.h"
#include "testlib.h"

/* ---- checks, report, watchdog ---- */

_Atomic int testlib_failures;
static _Atomic unsigned long allowed_warns;
static unsigned long warns_at_start;
static const char *_Atomic phase = "setup";
static _Atomic uint64_t phase_deadline_ns;
static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;

void testlib_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	fprintf(stderr, "FAIL %s:%d [%s]: ", file, line, atomic_load(&phase));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	atomic_fetch_add(&testlib_failures, 1);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SAN_BUILD 1
#endif
#endif
#ifndef TEST_SAN_BUILD
#define TEST_SAN_BUILD 0
#endif

/* Time limits (watchdog, waits) stretch by this much when test_slow(). */
#define TEST_SLOW_FACTOR 4

bool test_slow(void)
{
	return TEST_SAN_BUILD || getenv("SANITIZER") != NULL;
}

unsigned int test_scale(unsigned int n)
{
	return test_slow() ? (n / 4 ? n / 4 : 1) : n;
}

uint64_t test_now_ns(void)
{
	return ktime_get_ns();
}

void test_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int dump_disk(struct gendisk *disk, void *arg)
{
	blk_mq_debug_dump(disk, stderr);
	return 0;
}

static void *dump_thread(void *arg)
{
	blkstack_dev_for_each(dump_disk, NULL);
	return NULL;
}

static void *watchdog(void *arg)
{
	for (;;) {
		uint64_t dl = atomic_load(&phase_deadline_ns);
		pthread_t t;

		test_sleep_ms(50);
		if (!dl || test_now_ns() < dl)
			continue;
		fprintf(stderr, "FAIL watchdog: '%s' made no progress in time "
			"(a hang); queue state follows\n",
			atomic_load(&phase));
		/* the dump may block on whatever hangs: give it a moment */
		if (!pthread_create(&t, NULL, dump_thread, NULL))
			pthread_detach(t);
		test_sleep_ms(2000);
		_exit(1);
	}
	return NULL;
}

static void watchdog_start(void)
{
	pthread_t t;

	if (!pthread_create(&t, NULL, watchdog, NULL))
		pthread_detach(t);
}

void test_init(unsigned int nr_cpus)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nr_cpus) {
		if (blk_cpu_topology_set(nr_cpus, NULL))
			test_skip("cannot set a topology of %u CPUs: %s",
				  nr_cpus, blkstack_errmsg());
		blk_set_current_cpu(0);
	}
	warns_at_start = bug_warn_count();
	pthread_once(&watchdog_once, watchdog_start);
}

void test_begin(const char *name, unsigned int secs)
{
	atomic_store(&phase, name);
	if (test_slow())
		secs *= TEST_SLOW_FACTOR;
	atomic_store(&phase_deadline_ns,
		     test_now_ns() + (uint64_t)secs * NSEC_PER_SEC);
	fprintf(stderr, "-- %s\n", name);
}

void test_allow_warns(unsigned long n)
{
	atomic_fetch_add(&allowed_warns, n);
}

int test_report(void)
{
	unsigned long warns = bug_warn_count() - warns_at_start;
	int f;

	atomic_store(&phase_deadline_ns, 0);
	atomic_store(&phase, "report");
	if (warns > atomic_load(&allowed_warns))
		CHECK_MSG(0, "%lu unexpected WARN(s) fired (see above)",
			  warns - atomic_load(&allowed_warns));
	f = atomic_load(&testlib_failures);
	if (f) {
		fprintf(stderr, "%d check(s) failed\n", f);
		return 1;
	}
	fprintf(stderr, "all checks passed\n");
	return 0;
}

void test_skip(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "SKIP: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(77);
}

/*
 * xorshift of seed and offset: any byte tells where it belongs. Byte b
 * of the device is byte b % 8 of the word of b / 8.
 */
static uint64_t pattern_word(uint64_t seed, uint64_t word)
{
	uint64_t x = word * 0x9E3779B97F4A7C15ULL + seed;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 32;
	return x;
}

/* The pattern byte for offset @off; *@x caches the word of @off. */
static uint8_t pattern_byte(uint64_t seed, uint64_t off, uint64_t *x,
			    bool first)
{
	if (first || !(off & 7))
		*x = pattern_word(seed, off >> 3);
	return (uint8_t)(*x >> ((off & 7) * 8));
}

void test_fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *p = buf;
	uint64_t x = 0;

	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(seed, off + i, &x, !i);
}

long test_verify(const void *buf, size_t len, uint64_t seed, uint64_t off)
{
	const uint8_t *p = buf;
	uint64_t x = 0;

	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern_byte(seed, off + i, &x, !i))
			return (long)i;
	return -1;
}

bool test_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

void test_cpu_mask(uint64_t *mask, size_t words, const int *list)
{
	memset(mask, 0, words * sizeof(*mask));
	for (; *list >= 0; list++)
		mask[*list / 64] |= 1ULL << (*list % 64);
}

/* ---- devices through the public API ---- */

struct gendisk *test_null_add(const char *name, const char *fmt, ...)
{
	struct gendisk *disk = NULL;
	char params[512];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vsnprintf(params, sizeof(params), fmt, ap);
	va_end(ap);
	if (!CHECK_MSG(ret >= 0 && (size_t)ret < sizeof(params),
		       "%s: parameters too long", name))
		return NULL;
	ret = blkstack_dev_add("null", name, params, &disk);
	if (!CHECK_MSG(ret == 0, "create %s (%s): %d %s", name, params, ret,
		       blkstack_errmsg()))
		return NULL;
	return disk;
}

void test_dev_del(struct gendisk *disk)
{
	char name[64];
	int ret;

	if (!disk)
		return;
	snprintf(name, sizeof(name), "%s", blk_disk_name(disk));
	ret = blkstack_dev_del(name);
	CHECK_MSG(ret == 0, "delete %s: %d %s", name, ret, blkstack_errmsg());
	blk_put_disk(disk);
}

int test_attr_store(struct gendisk *disk, const char *attr, const char *val)
{
	int ret = blk_queue_attr_store(disk, attr, val);

	CHECK_MSG(ret == 0, "store %s=%s: %d %s", attr, val, ret,
		  blkstack_errmsg());
	return ret;
}

const char *test_attr_show(struct gendisk *disk, const char *attr, char *buf,
			   size_t len)
{
	int ret = blk_queue_attr_show(disk, attr, buf, len);

	if (ret < 0) {
		snprintf(buf, len, "<error %d>", ret);
		return buf;
	}
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

uint64_t test_wait_idle(struct gendisk *disk, unsigned int ms)
{
	uint64_t dl = test_now_ns() + (uint64_t)ms * NSEC_PER_MSEC;
	struct blk_disk_stats st;

	for (;;) {
		blk_disk_get_stats(disk, &st);
		if (!st.in_flight || test_now_ns() > dl)
			return st.in_flight;
		test_sleep_ms(1);
	}
}

bool test_write_verify(struct gendisk *disk, off_t off, size_t len,
		       uint64_t seed, void *wbuf, void *rbuf)
{
	ssize_t n;
	long bad;

	test_fill(wbuf, len, seed, (uint64_t)off);
	n = blkdev_pwrite(disk, wbuf, len, off);
	if (!CHECK_MSG(n == (ssize_t)len, "pwrite %s @%lld+%zu: %zd %s",
		       blk_disk_name(disk), (long long)off, len, n,
		       blkstack_errmsg()))
		return false;
	memset(rbuf, 0xa5, len);
	n = blkdev_pread(disk, rbuf, len, off);
	if (!CHECK_MSG(n == (ssize_t)len, "pread %s @%lld+%zu: %zd %s",
		       blk_disk_name(disk), (long long)off, len, n,
		       blkstack_errmsg()))
		return false;
	bad = test_verify(rbuf, len, seed, (uint64_t)off);
	return CHECK_MSG(bad < 0, "%s: data mismatch at byte %ld of @%lld+%zu",
			 blk_disk_name(disk), bad, (long long)off, len);
}

int test_bio_sync(struct gendisk *disk, blk_opf_t opf, sector_t sector,
		  void *buf, unsigned int len)
{
	struct bio *bio = bio_alloc(disk, 1, opf);
	int ret;

	if (!CHECK_MSG(bio, "bio_alloc failed"))
		return -ENOMEM;
	bio->bi_iter.bi_sector = sector;
	if (buf)
		bio_add_buf(bio, buf, len);
	else
		bio->bi_iter.bi_size = len;
	ret = submit_bio_wait(bio);
	bio_put(bio);
	return ret;
}

/* ---- asynchronous I/O ---- */

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
}

static struct timespec deadline_in(unsigned int ms)
{
	if (test_slow())
		ms *= TEST_SLOW_FACTOR;
	return ns_to_timespec(test_now_ns() + (uint64_t)ms * NSEC_PER_MSEC);
}

void tio_init(struct tio *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	cond_init_mono(&t->cond);
}

void tio_destroy(struct tio *t)
{
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
}

/* A new I/O of @t recorded in @r (counted in t->nr by the caller). */
static void tio_start(struct tio *t, struct tio_req *r)
{
	r->t = t;
	r->err = 0;
	r->calls = 0;
	r->done_seq = 0;
	r->done_ns = 0;
	r->submit_ns = test_now_ns();
	atomic_store(&r->done, false);
}

/* The end of the I/O of @priv (a tio_req), on the completing thread. */
static void tio_end(void *priv, int err)
{
	struct tio_req *r = priv;
	struct tio *t = r->t;
	uint64_t now = test_now_ns();

	pthread_mutex_lock(&t->lock);
	r->err = err;
	r->done_ns = now;
	r->calls++;
	r->done_seq = ++t->done;
	if (err) {
		t->errors++;
		t->last_err = err;
	}
	atomic_store(&r->done, true);
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void tio_end_io(struct bio *bio)
{
	struct tio_req *r = bio->bi_end_data;
	int err = blk_status_to_errno(bio->bi_status);

	bio_put(bio);
	tio_end(r, err);
}

int tio_submit_vec(struct tio *t, struct gendisk *disk, blk_opf_t opf,
		   sector_t sector, void *const *bufs,
		   const unsigned int *lens, unsigned int nvec)
{
	struct bio *bio = bio_alloc(disk, (unsigned short)(nvec ? nvec : 1),
				    opf);
	unsigned int idx;

	if (!CHECK_MSG(bio, "bio_alloc failed"))
		return -1;
	bio->bi_iter.bi_sector = sector;
	for (unsigned int i = 0; i < nvec; i++) {
		if (!CHECK_MSG(bio_add_buf(bio, bufs[i], lens[i]) == lens[i],
			       "bio_add_buf segment %u", i)) {
			bio_put(bio);
			return -1;
		}
	}
	if (!nvec && lens)
		bio->bi_iter.bi_size = lens[0];
	pthread_mutex_lock(&t->lock);
	idx = t->nr++;
	pthread_mutex_unlock(&t->lock);
	if (!CHECK_MSG(idx < TIO_MAX, "more than %d bios in one tio", TIO_MAX)) {
		bio_put(bio);
		return -1;
	}
	tio_start(t, &t->req[idx]);
	bio->bi_end_data = &t->req[idx];
	bio->bi_end_io = tio_end_io;
	submit_bio(bio);
	return (int)idx;
}

int tio_submit(struct tio *t, struct gendisk *disk, blk_opf_t opf,
	       sector_t sector, void *buf, unsigned int len)
{
	void *bufs[1] = { buf };

	return tio_submit_vec(t, disk, opf, sector, bufs, &len, buf ? 1 : 0);
}

int tio_blkdev_submit(struct tio *t, struct tio_req *r, struct gendisk *disk,
		      blk_opf_t opf, off_t off, void *buf, size_t len)
{
	int ret;

	tio_start(t, r);
	/* counted first: the I/O may end inside blkdev_submit() */
	pthread_mutex_lock(&t->lock);
	t->nr++;
	pthread_mutex_unlock(&t->lock);
	ret = blkdev_submit(disk, opf, off, buf, len, tio_end, r);
	if (ret) {
		pthread_mutex_lock(&t->lock);
		t->nr--;
		pthread_mutex_unlock(&t->lock);
	}
	return ret;
}

/* Wait until @t->done >= @n and @t->nr - @t->done <= @left. */
static bool tio_wait_for(struct tio *t, unsigned int n, unsigned int left,
			 unsigned int ms)
{
	struct timespec ts = deadline_in(ms);
	bool ok = true;

	pthread_mutex_lock(&t->lock);
	while (t->done < n || t->nr - t->done > left) {
		if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) ==
		    ETIMEDOUT) {
			ok = t->done >= n && t->nr - t->done <= left;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return ok;
}

bool tio_wait(struct tio *t, unsigned int n, unsigned int ms)
{
	return tio_wait_for(t, n, UINT_MAX, ms);
}

bool tio_wait_pending(struct tio *t, unsigned int left, unsigned int ms)
{
	return tio_wait_for(t, 0, left, ms);
}

unsigned int tio_done(struct tio *t)
{
	unsigned int n;

	pthread_mutex_lock(&t->lock);
	n = t->done;
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned int tio_pending(struct tio *t)
{
	unsigned int n;

	pthread_mutex_lock(&t->lock);
	n = t->nr - t->done;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* ---- the recording driver ---- */

#define REC_MAX_HCTX 64

/* Per-request driver data (tag_set->cmd_size). */
struct rec_cmd {
	struct list_head entry;		/* on rec_dev->held */
	blk_status_t status;		/* to complete with */
	bool has_budget;		/* a budget unit to give back */
};

struct rec_dev {
	struct rec_config cfg;
	struct blk_mq_tag_set set;
	struct blk_mq_ops ops;
	struct gendisk *disk;
	unsigned char *mem;
	pthread_mutex_t data_lock;	/* mem */

	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t cond;		/* log grew, held grew */
	enum rec_mode mode;
	struct rec_io *log;
	unsigned int nr_log, log_cap;
	unsigned int nr_accepted;
	struct list_head held;
	unsigned int nr_held;
	unsigned long queue_rqs_calls;
	unsigned long commit_calls;
	unsigned int uncommitted[REC_MAX_HCTX];
	unsigned int fail_skip, fail_n;
	blk_status_t fail_st;
	unsigned int requeue_n;
	sector_t err_start, err_nr;
	blk_status_t err_st;
	unsigned int flush_fail_n;
	blk_status_t flush_fail_st;
	unsigned int budget, budget_in_use, budget_max;
	unsigned long budget_denied;
	bool budget_starved;		/* denied since the last put */
};

static _Atomic unsigned int rec_next_id;

/* The value of a field of @d, read under d->lock. */
#define rec_read(d, field)						\
	({								\
		typeof((d)->field) __v;					\
									\
		pthread_mutex_lock(&(d)->lock);				\
		__v = (d)->field;					\
		pthread_mutex_unlock(&(d)->lock);			\
		__v;							\
	})

/* Set a field of @d under d->lock. */
#define rec_write(d, field, val)					\
	do {								\
		pthread_mutex_lock(&(d)->lock);				\
		(d)->field = (val);					\
		pthread_mutex_unlock(&(d)->lock);			\
	} while (0)

void rec_config_init(struct rec_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = 16 * 2048;
	cfg->nr_hw_queues = 1;
	cfg->queue_depth = 64;
	cfg->tag_flags = BLK_MQ_F_SHOULD_MERGE;
	blk_set_default_limits(&cfg->lim);
	cfg->lim.max_hw_sectors = BLK_DEF_MAX_SECTORS;
	cfg->mode = REC_INLINE;
}

#define REC_LIMIT(cfg, l, field)					\
	do {								\
		if ((l)->field)						\
			(cfg)->lim.field = (l)->field;			\
	} while (0)

void rec_config_limits(struct rec_config *cfg, const struct rec_limits *l)
{
	if (!l)
		return;
	REC_LIMIT(cfg, l, max_hw_sectors);
	REC_LIMIT(cfg, l, logical_block_size);
	REC_LIMIT(cfg, l, physical_block_size);
	REC_LIMIT(cfg, l, max_segments);
	REC_LIMIT(cfg, l, max_segment_size);
	REC_LIMIT(cfg, l, chunk_sectors);
	REC_LIMIT(cfg, l, max_hw_discard_sectors);
	REC_LIMIT(cfg, l, discard_granularity);
	REC_LIMIT(cfg, l, max_write_zeroes_sectors);
	REC_LIMIT(cfg, l, features_write_cache);
}

static struct rec_dev *rq_rec(struct request *rq)
{
	return queue_driver_data(rq->q);
}

static void rec_put_budget_locked(struct rec_dev *d)
{
	if (!CHECK_MSG(d->budget_in_use > 0, "%s: budget put without a get",
		       d->disk->disk_name))
		return;
	d->budget_in_use--;
}

static bool rec_get_budget(struct request_queue *q)
{
	struct rec_dev *d = queue_driver_data(q);
	bool ok;

	pthread_mutex_lock(&d->lock);
	ok = d->budget_in_use < d->budget;
	if (ok) {
		d->budget_in_use++;
		if (d->budget_in_use > d->budget_max)
			d->budget_max = d->budget_in_use;
	} else {
		d->budget_denied++;
		d->budget_starved = true;
	}
	pthread_mutex_unlock(&d->lock);
	return ok;
}

/*
 * As SCSI does (sdev->restarts, scsi_run_queue_async()): when budget
 * comes back after a dispatch was refused, run the queues. The core
 * does not rerun a queue whose dispatch stopped for lack of budget
 * (blk_mq_do_dispatch_sched/ctx): that is the driver's job.
 */
static void rec_put_budget(struct request_queue *q)
{
	struct rec_dev *d = queue_driver_data(q);
	bool kick;

	pthread_mutex_lock(&d->lock);
	rec_put_budget_locked(d);
	kick = d->budget_starved;
	d->budget_starved = false;
	pthread_mutex_unlock(&d->lock);
	if (kick)
		blk_mq_run_hw_queues(q, true);
}

/* Give back the budget of a request the driver is done with. */
static void rec_release_budget(struct rec_dev *d, struct rec_cmd *cmd)
{
	if (!cmd->has_budget)
		return;
	cmd->has_budget = false;
	rec_put_budget(d->disk->queue);
}

static blk_status_t rec_do_data(struct rec_dev *d, struct request *rq)
{
	uint64_t pos = (uint64_t)blk_rq_pos(rq) << SECTOR_SHIFT;
	uint64_t len = blk_rq_bytes(rq);
	struct bvec_iter iter;
	struct bio_vec bv;

	if (!d->mem)
		return BLK_STS_OK;
	if (pos + len > (uint64_t)d->cfg.capacity << SECTOR_SHIFT) {
		CHECK_MSG(0, "%s: request past the end: %llu+%llu",
			  d->disk->disk_name, (unsigned long long)pos,
			  (unsigned long long)len);
		return BLK_STS_IOERR;
	}
	pthread_mutex_lock(&d->data_lock);
	switch (req_op(rq)) {
	case REQ_OP_READ:
		rq_for_each_segment(bv, rq, iter) {
			memcpy(bv.bv_buf, d->mem + pos, bv.bv_len);
			pos += bv.bv_len;
		}
		break;
	case REQ_OP_WRITE:
		rq_for_each_segment(bv, rq, iter) {
			memcpy(d->mem + pos, bv.bv_buf, bv.bv_len);
			pos += bv.bv_len;
		}
		break;
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
	case REQ_OP_WRITE_ZEROES:
		memset(d->mem + pos, 0, len);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&d->data_lock);
	return BLK_STS_OK;
}

static void rec_log_add(struct rec_dev *d, const struct rec_io *io)
{
	if (d->nr_log == d->log_cap) {
		unsigned int cap = d->log_cap ? d->log_cap * 2 : 256;
		struct rec_io *n = realloc(d->log, cap * sizeof(*n));

		BUG_ON(!n);
		d->log = n;
		d->log_cap = cap;
	}
	d->log[d->nr_log++] = *io;
	pthread_cond_broadcast(&d->cond);
}

static void rec_describe(struct request *rq, struct blk_mq_hw_ctx *hctx,
			 struct rec_io *io)
{
	struct bio *bio;

	memset(io, 0, sizeof(*io));
	io->op = req_op(rq);
	io->cmd_flags = rq->cmd_flags;
	io->sector = blk_rq_pos(rq);
	io->bytes = blk_rq_bytes(rq);
	io->nr_phys_segments = rq->nr_phys_segments;
	io->hctx = hctx_index(hctx);
	__rq_for_each_bio(bio, rq) {
		if (io->nr_bios < REC_MAX_BIOS)
			io->bio_sector[io->nr_bios] = bio->bi_iter.bi_sector;
		io->nr_bios++;
	}
}

static blk_status_t rec_queue_one(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd,
				  bool via_queue_rqs)
{
	struct request *rq = bd->rq;
	struct rec_dev *d = rq_rec(rq);
	struct rec_cmd *cmd = blk_mq_rq_to_pdu(rq);
	blk_status_t ret = BLK_STS_OK, status = BLK_STS_OK;
	bool requeue = false;
	struct rec_io io;

	rec_describe(rq, hctx, &io);
	io.last = bd->last;
	io.via_queue_rqs = via_queue_rqs;
	/* ->queue_rqs is called without budget; ->queue_rq with it */
	cmd->has_budget = d->cfg.has_budget && !via_queue_rqs;
	cmd->status = BLK_STS_OK;
	INIT_LIST_HEAD(&cmd->entry);

	pthread_mutex_lock(&d->lock);
	io.seq = d->nr_log;
	if (d->fail_n) {
		if (d->fail_skip) {
			d->fail_skip--;
		} else {
			d->fail_n--;
			ret = d->fail_st;
		}
	}
	if (ret == BLK_STS_OK && d->requeue_n) {
		d->requeue_n--;
		requeue = true;
	}
	io.ret = ret;
	io.requeued = requeue;
	if (ret == BLK_STS_OK && !requeue) {
		d->nr_accepted++;
		if (d->cfg.has_commit_rqs && !via_queue_rqs &&
		    io.hctx < REC_MAX_HCTX) {
			if (bd->last)
				d->uncommitted[io.hctx] = 0;
			else
				d->uncommitted[io.hctx]++;
		}
		if (req_op(rq) == REQ_OP_FLUSH && d->flush_fail_n) {
			d->flush_fail_n--;
			status = d->flush_fail_st;
		} else if (d->err_nr && io.sector < d->err_start + d->err_nr &&
			   io.sector + (io.bytes >> SECTOR_SHIFT) >
				   d->err_start) {
			status = d->err_st;
		}
	}
	rec_log_add(d, &io);
	pthread_mutex_unlock(&d->lock);

	if (ret != BLK_STS_OK) {
		/*
		 * The core gives the budget back for RESOURCE/DEV_RESOURCE
		 * (blk_mq_dispatch_rq_list); for other errors it ends the
		 * request and the budget is ours to return.
		 */
		if (ret != BLK_STS_RESOURCE && ret != BLK_STS_DEV_RESOURCE)
			rec_release_budget(d, cmd);
		else
			cmd->has_budget = false;
		return ret;
	}
	blk_mq_start_request(rq);
	if (requeue) {
		rec_release_budget(d, cmd);
		blk_mq_requeue_request(rq, true);
		return BLK_STS_OK;
	}
	if (status == BLK_STS_OK)
		status = rec_do_data(d, rq);
	cmd->status = status;

	pthread_mutex_lock(&d->lock);
	if (d->mode == REC_HELD) {
		list_add_tail(&cmd->entry, &d->held);
		d->nr_held++;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		return BLK_STS_OK;
	}
	pthread_mutex_unlock(&d->lock);
	rec_release_budget(d, cmd);
	blk_mq_end_request(rq, status);
	return BLK_STS_OK;
}

static blk_status_t rec_queue_rq(struct blk_mq_hw_ctx *hctx,
				 const struct blk_mq_queue_data *bd)
{
	return rec_queue_one(hctx, bd, false);
}

/* Like null_blk's: take each; leave what was refused for the core. */
static void rec_queue_rqs(struct request **rqlist)
{
	struct request *left = NULL, **tail = &left, *rq = *rqlist;
	struct rec_dev *d;

	if (!rq)
		return;
	d = rq_rec(rq);
	pthread_mutex_lock(&d->lock);
	d->queue_rqs_calls++;
	pthread_mutex_unlock(&d->lock);
	while ((rq = *rqlist)) {
		struct blk_mq_queue_data bd = { .rq = rq,
						.last = rq->rq_next == NULL };

		*rqlist = rq->rq_next;
		rq->rq_next = NULL;
		if (rec_queue_one(rq->mq_hctx, &bd, true) != BLK_STS_OK) {
			*tail = rq;
			tail = &rq->rq_next;
		}
	}
	*rqlist = left;
}

static void rec_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	struct rec_dev *d = queue_driver_data(hctx_queue(hctx));
	unsigned int h = hctx_index(hctx);

	pthread_mutex_lock(&d->lock);
	d->commit_calls++;
	if (h < REC_MAX_HCTX)
		d->uncommitted[h] = 0;
	pthread_mutex_unlock(&d->lock);
}

/* ->complete, after blk_mq_complete_request() from rec_complete_*(). */
static void rec_complete_rq(struct request *rq)
{
	struct rec_cmd *cmd = blk_mq_rq_to_pdu(rq);

	rec_release_budget(rq_rec(rq), cmd);
	blk_mq_end_request(rq, cmd->status);
}

struct rec_dev *rec_create(const struct rec_config *cfg)
{
	struct rec_dev *d = calloc(1, sizeof(*d));
	char name[32];
	int ret;

	if (!CHECK_MSG(d, "out of memory"))
		return NULL;
	d->cfg = *cfg;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->data_lock, NULL);
	cond_init_mono(&d->cond);
	INIT_LIST_HEAD(&d->held);
	d->mode = cfg->mode;
	d->budget = cfg->budget;

	d->ops.queue_rq = rec_queue_rq;
	d->ops.complete = rec_complete_rq;
	if (cfg->has_queue_rqs)
		d->ops.queue_rqs = rec_queue_rqs;
	if (cfg->has_commit_rqs)
		d->ops.commit_rqs = rec_commit_rqs;
	if (cfg->has_budget) {
		d->ops.get_budget = rec_get_budget;
		d->ops.put_budget = rec_put_budget;
	}
	if (cfg->memory_backed) {
		d->mem = calloc(1, (size_t)cfg->capacity << SECTOR_SHIFT);
		if (!CHECK_MSG(d->mem, "out of memory for the data"))
			goto fail;
	}

	d->set.ops = &d->ops;
	d->set.nr_hw_queues = cfg->nr_hw_queues;
	d->set.queue_depth = cfg->queue_depth;
	d->set.reserved_tags = cfg->reserved_tags;
	d->set.cmd_size = sizeof(struct rec_cmd);
	d->set.flags = cfg->tag_flags;
	d->set.driver_data = d;
	ret = blk_mq_alloc_tag_set(&d->set);
	if (!CHECK_MSG(ret == 0, "blk_mq_alloc_tag_set: %d %s", ret,
		       blkstack_errmsg()))
		goto fail;
	d->disk = blk_mq_alloc_disk(&d->set, &cfg->lim, d);
	if (!CHECK_MSG(d->disk, "blk_mq_alloc_disk: %s", blkstack_errmsg()))
		goto fail_set;
	if (cfg->name)
		snprintf(name, sizeof(name), "%s", cfg->name);
	else
		snprintf(name, sizeof(name), "rec%u",
			 atomic_fetch_add(&rec_next_id, 1));
	ret = add_disk(d->disk, name, cfg->capacity);
	if (!CHECK_MSG(ret == 0, "add_disk %s: %d %s", name, ret,
		       blkstack_errmsg()))
		goto fail_disk;
	return d;

fail_disk:
	put_disk(d->disk);
fail_set:
	blk_mq_free_tag_set(&d->set);
fail:
	free(d->mem);
	free(d);
	return NULL;
}

void rec_destroy(struct rec_dev *d)
{
	if (!d)
		return;
	rec_set_mode(d, REC_INLINE);
	rec_complete_all(d);
	del_gendisk(d->disk);
	put_disk(d->disk);
	blk_mq_free_tag_set(&d->set);
	CHECK_MSG(d->nr_held == 0, "requests still held at destroy");
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->data_lock);
	pthread_cond_destroy(&d->cond);
	free(d->log);
	free(d->mem);
	free(d);
}

struct gendisk *rec_disk(struct rec_dev *d)
{
	return d->disk;
}

struct request_queue *rec_queue(struct rec_dev *d)
{
	return disk_queue(d->disk);
}

unsigned char *rec_mem(struct rec_dev *d)
{
	return d->mem;
}

unsigned int rec_nr_ios(struct rec_dev *d)
{
	return rec_read(d, nr_log);
}

bool rec_get_io(struct rec_dev *d, unsigned int i, struct rec_io *out)
{
	bool ok;

	pthread_mutex_lock(&d->lock);
	ok = i < d->nr_log;
	if (ok)
		*out = d->log[i];
	else
		memset(out, 0, sizeof(*out));
	pthread_mutex_unlock(&d->lock);
	return ok;
}

unsigned int rec_accepted(struct rec_dev *d)
{
	return rec_read(d, nr_accepted);
}

unsigned int rec_count_op(struct rec_dev *d, enum req_op op)
{
	unsigned int n = 0;

	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < d->nr_log; i++)
		if (d->log[i].op == op && d->log[i].ret == BLK_STS_OK &&
		    !d->log[i].requeued)
			n++;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void rec_clear_log(struct rec_dev *d)
{
	pthread_mutex_lock(&d->lock);
	d->nr_log = 0;
	d->nr_accepted = 0;
	d->queue_rqs_calls = 0;
	d->commit_calls = 0;
	pthread_mutex_unlock(&d->lock);
}

void rec_dump(struct rec_dev *d, const char *why)
{
	pthread_mutex_lock(&d->lock);
	fprintf(stderr, "   %s log (%s): %u calls, %u held\n",
		d->disk->disk_name, why, d->nr_log, d->nr_held);
	for (unsigned int i = 0; i < d->nr_log; i++) {
		const struct rec_io *io = &d->log[i];

		fprintf(stderr, "   #%u %s flags %#x sector %llu bytes %u "
			"bios %u segs %u hctx %u last %d%s ret %u%s\n", i,
			blk_op_str(io->op), io->cmd_flags,
			(unsigned long long)io->sector, io->bytes, io->nr_bios,
			io->nr_phys_segments, io->hctx, io->last,
			io->via_queue_rqs ? " (queue_rqs)" : "", io->ret,
			io->requeued ? " requeued" : "");
	}
	pthread_mutex_unlock(&d->lock);
}

bool rec_expect_ios(struct rec_dev *d, unsigned int n, const char *what)
{
	if (CHECK_MSG(rec_nr_ios(d) == n, "%s: %u requests reached the "
		      "driver, expected %u", what, rec_nr_ios(d), n))
		return true;
	rec_dump(d, what);
	return false;
}

struct rec_io rec_io_at(struct rec_dev *d, unsigned int i)
{
	struct rec_io io;

	CHECK_MSG(rec_get_io(d, i, &io), "no request #%u", i);
	return io;
}

unsigned long rec_queue_rqs_calls(struct rec_dev *d)
{
	return rec_read(d, queue_rqs_calls);
}

unsigned long rec_commit_calls(struct rec_dev *d)
{
	return rec_read(d, commit_calls);
}

unsigned int rec_uncommitted(struct rec_dev *d)
{
	unsigned int n = 0;

	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < REC_MAX_HCTX; i++)
		n += d->uncommitted[i];
	pthread_mutex_unlock(&d->lock);
	return n;
}

void rec_fail_next(struct rec_dev *d, unsigned int skip, unsigned int n,
		   blk_status_t st)
{
	pthread_mutex_lock(&d->lock);
	d->fail_skip = skip;
	d->fail_n = n;
	d->fail_st = st;
	pthread_mutex_unlock(&d->lock);
}

void rec_requeue_next(struct rec_dev *d, unsigned int n)
{
	rec_write(d, requeue_n, n);
}

void rec_set_error(struct rec_dev *d, sector_t start, sector_t nr,
		   blk_status_t st)
{
	pthread_mutex_lock(&d->lock);
	d->err_start = start;
	d->err_nr = nr;
	d->err_st = st;
	pthread_mutex_unlock(&d->lock);
}

void rec_fail_flushes(struct rec_dev *d, unsigned int n, blk_status_t st)
{
	pthread_mutex_lock(&d->lock);
	d->flush_fail_n = n;
	d->flush_fail_st = st;
	pthread_mutex_unlock(&d->lock);
}

void rec_set_mode(struct rec_dev *d, enum rec_mode mode)
{
	rec_write(d, mode, mode);
}

unsigned int rec_nr_held(struct rec_dev *d)
{
	return rec_read(d, nr_held);
}

/* Wait until *@what >= @n, reading it under d->lock. */
static bool rec_wait(struct rec_dev *d, const unsigned int *what,
		     unsigned int n, unsigned int ms)
{
	struct timespec ts = deadline_in(ms);
	bool ok = true;

	pthread_mutex_lock(&d->lock);
	while (*what < n) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) ==
		    ETIMEDOUT) {
			ok = *what >= n;
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return ok;
}

bool rec_wait_held(struct rec_dev *d, unsigned int n, unsigned int ms)
{
	return rec_wait(d, &d->nr_held, n, ms);
}

bool rec_wait_ios(struct rec_dev *d, unsigned int n, unsigned int ms)
{
	return rec_wait(d, &d->nr_log, n, ms);
}

bool rec_wait_accepted(struct rec_dev *d, unsigned int n, unsigned int ms)
{
	return rec_wait(d, &d->nr_accepted, n, ms);
}

/* Take held request @idx (or the oldest @n) off the list and complete. */
static unsigned int rec_complete_some(struct rec_dev *d, int idx,
				      unsigned int n)
{
	LIST_HEAD(list);
	struct rec_cmd *cmd, *tmp;
	unsigned int done = 0, i = 0;

	pthread_mutex_lock(&d->lock);
	list_for_each_entry_safe(cmd, tmp, &d->held, entry) {
		if (idx >= 0 ? i++ == (unsigned int)idx : done < n) {
			list_move_tail(&cmd->entry, &list);
			d->nr_held--;
			done++;
			if (idx >= 0)
				break;
		}
	}
	pthread_mutex_unlock(&d->lock);
	list_for_each_entry_safe(cmd, tmp, &list, entry) {
		struct request *rq = blk_mq_rq_from_pdu(cmd);

		list_del_init(&cmd->entry);
		CHECK(blk_mq_complete_request(rq));
	}
	return done;
}

unsigned int rec_complete_n(struct rec_dev *d, unsigned int n)
{
	return rec_complete_some(d, -1, n);
}

unsigned int rec_complete_all(struct rec_dev *d)
{
	return rec_complete_some(d, -1, UINT32_MAX);
}

bool rec_complete_at(struct rec_dev *d, unsigned int idx)
{
	return rec_complete_some(d, (int)idx, 1) == 1;
}

void rec_set_budget(struct rec_dev *d, unsigned int budget)
{
	rec_write(d, budget, budget);
}

unsigned int rec_budget_in_use(struct rec_dev *d)
{
	return rec_read(d, budget_in_use);
}

unsigned int rec_budget_max(struct rec_dev *d)
{
	return rec_read(d, budget_max);
}

unsigned long rec_budget_denied(struct rec_dev *d)
{
	return rec_read(d, budget_denied);
}

/* ---- "fifo-test" ---- */

struct fifo_stats fifo_stats;

struct fifo_data {
	pthread_spinlock_t lock;
	struct list_head list;		/* via rq->queuelist */
};

static struct fifo_data *fifo_of(struct blk_mq_hw_ctx *hctx)
{
	return hctx->queue->elevator->elevator_data;
}

static int fifo_init_sched(struct request_queue *q, struct elevator_queue *e)
{
	struct fifo_data *fd = calloc(1, sizeof(*fd));

	if (!fd)
		return -ENOMEM;
	pthread_spin_init(&fd->lock, PTHREAD_PROCESS_PRIVATE);
	INIT_LIST_HEAD(&fd->list);
	e->elevator_data = fd;
	atomic_fetch_add(&fifo_stats.queues, 1);
	return 0;
}

static void fifo_exit_sched(struct elevator_queue *e)
{
	struct fifo_data *fd = e->elevator_data;

	CHECK_MSG(list_empty(&fd->list), "fifo-test torn down with requests "
		  "queued");
	pthread_spin_destroy(&fd->lock);
	free(fd);
	atomic_fetch_sub(&fifo_stats.queues, 1);
}

static void fifo_insert_requests(struct blk_mq_hw_ctx *hctx,
				 struct list_head *list, bool at_head)
{
	struct fifo_data *fd = fifo_of(hctx);
	unsigned long n = list_count(list);

	pthread_spin_lock(&fd->lock);
	if (at_head)
		list_splice_init(list, &fd->list);
	else
		list_splice_tail_init(list, &fd->list);
	pthread_spin_unlock(&fd->lock);
	atomic_fetch_add(&fifo_stats.inserted, n);
}

static struct request *fifo_dispatch_request(struct blk_mq_hw_ctx *hctx)
{
	struct fifo_data *fd = fifo_of(hctx);
	struct request *rq, *found = NULL;

	pthread_spin_lock(&fd->lock);
	list_for_each_entry(rq, &fd->list, queuelist) {
		if (rq->mq_hctx == hctx) {
			list_del_init(&rq->queuelist);
			found = rq;
			break;
		}
	}
	pthread_spin_unlock(&fd->lock);
	if (found)
		atomic_fetch_add(&fifo_stats.dispatched, 1);
	return found;
}

static bool fifo_has_work(struct blk_mq_hw_ctx *hctx)
{
	struct fifo_data *fd = fifo_of(hctx);
	struct request *rq;
	bool ret = false;

	pthread_spin_lock(&fd->lock);
	list_for_each_entry(rq, &fd->list, queuelist) {
		if (rq->mq_hctx == hctx) {
			ret = true;
			break;
		}
	}
	pthread_spin_unlock(&fd->lock);
	return ret;
}

static void fifo_prepare_request(struct request *rq)
{
	atomic_fetch_add(&fifo_stats.prepared, 1);
}

static void fifo_finish_request(struct request *rq)
{
	atomic_fetch_add(&fifo_stats.finished, 1);
}

static void fifo_completed_request(struct request *rq, uint64_t now)
{
	atomic_fetch_add(&fifo_stats.completed, 1);
}

static void fifo_requeue_request(struct request *rq)
{
	atomic_fetch_add(&fifo_stats.requeued, 1);
}

struct elevator_type fifo_test_elv = {
	.elevator_name = "fifo-test",
	.ops = {
		.init_sched = fifo_init_sched,
		.exit_sched = fifo_exit_sched,
		.insert_requests = fifo_insert_requests,
		.dispatch_request = fifo_dispatch_request,
		.has_work = fifo_has_work,
		.prepare_request = fifo_prepare_request,
		.finish_request = fifo_finish_request,
		.completed_request = fifo_completed_request,
		.requeue_request = fifo_requeue_request,
	},
};

void fifo_test_register(void)
{
	int ret = elv_register(&fifo_test_elv);

	CHECK_MSG(ret == 0, "elv_register: %d %s", ret, blkstack_errmsg());
}

void fifo_stats_snapshot(struct fifo_stats *out)
{
	atomic_store(&out->inserted, atomic_load(&fifo_stats.inserted));
	atomic_store(&out->dispatched, atomic_load(&fifo_stats.dispatched));
	atomic_store(&out->prepared, atomic_load(&fifo_stats.prepared));
	atomic_store(&out->finished, atomic_load(&fifo_stats.finished));
	atomic_store(&out->completed, atomic_load(&fifo_stats.completed));
	atomic_store(&out->requeued, atomic_load(&fifo_stats.requeued));
	atomic_store(&out->queues, atomic_load(&fifo_stats.queues));
}

/* ---- switching schedulers under verified I/O ---- */


#define SW_BLOCKS	16		/* I/Os in flight per worker pass */
#define SW_BYTES	(16 * 1024)	/* each */

struct sw_worker {
	pthread_t thread;
	struct gendisk *disk;
	unsigned int id;
	_Atomic bool *stop;
	unsigned long ios, errors, bad_calls, bad_data;
};

struct sw_io {
	_Atomic unsigned int calls;
	_Atomic int err;
	struct sw_ctl *ctl;
};

struct sw_ctl {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int pending;
};

static void sw_done(void *priv, int err)
{
	struct sw_io *io = priv;
	struct sw_ctl *c = io->ctl;

	atomic_store(&io->err, err);
	atomic_fetch_add(&io->calls, 1);
	pthread_mutex_lock(&c->lock);
	c->pending--;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* One pass: SW_BLOCKS I/Os of @op in flight at once, all waited for. */
static void sw_pass(struct sw_worker *w, enum req_op op, unsigned char *buf,
		    uint64_t seed)
{
	struct sw_ctl c = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			    SW_BLOCKS };
	struct sw_io io[SW_BLOCKS];
	off_t base = (off_t)w->id * 4 * 1024 * 1024;

	for (unsigned int i = 0; i < SW_BLOCKS; i++) {
		off_t off = base + (off_t)i * SW_BYTES;

		atomic_init(&io[i].calls, 0);
		atomic_init(&io[i].err, 0);
		io[i].ctl = &c;
		if (op == REQ_OP_WRITE)
			test_fill(buf + i * SW_BYTES, SW_BYTES, seed, (uint64_t)off);
		if (blkdev_submit(w->disk, op, off, buf + i * SW_BYTES, SW_BYTES,
				  sw_done, &io[i])) {
			w->errors++;
			pthread_mutex_lock(&c.lock);
			c.pending--;
			pthread_mutex_unlock(&c.lock);
		}
	}
	pthread_mutex_lock(&c.lock);
	while (c.pending)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
	for (unsigned int i = 0; i < SW_BLOCKS; i++) {
		off_t off = base + (off_t)i * SW_BYTES;

		/* a late duplicate completion would show up here */
		w->bad_calls += atomic_load(&io[i].calls) != 1;
		w->errors += atomic_load(&io[i].err) != 0;
		if (op == REQ_OP_READ &&
		    test_verify(buf + i * SW_BYTES, SW_BYTES, seed,
				(uint64_t)off) >= 0)
			w->bad_data++;
		w->ios++;
	}
}

static void *sw_thread(void *arg)
{
	struct sw_worker *w = arg;
	unsigned char *buf = aligned_alloc(4096, SW_BYTES * SW_BLOCKS);
	uint64_t seed = w->id * 1000;

	if (!buf)
		return NULL;
	/* spread over the CPUs: with two hw queues, both feed the scheduler */
	blk_set_current_cpu((int)(w->id % 2));
	while (!atomic_load(w->stop)) {
		seed++;
		sw_pass(w, REQ_OP_WRITE, buf, seed);
		memset(buf, 0, SW_BYTES * SW_BLOCKS);
		sw_pass(w, REQ_OP_READ, buf, seed);
	}
	free(buf);
	return NULL;
}

void test_sched_switching(const char *sched, const char *driver,
			  const char *params)
{
	struct sw_worker w[3];
	_Atomic bool stop = false;
	struct gendisk *disk = NULL;
	unsigned long ios = 0;
	char buf[128];
	int ret;

	char title[96];

	snprintf(title, sizeof(title),
		 "none <-> %s 100 times under verified I/O", sched);
	test_begin(title, 30);
	printf("   on %s:%s\n", driver, params);
	ret = blkstack_dev_add(driver, "swdev", params, &disk);
	if (!CHECK_MSG(ret == 0, "%s %s: %s", driver, params,
		       blkstack_errmsg()))
		return;
	for (unsigned int i = 0; i < 3; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].disk = disk;
		w[i].id = i;
		w[i].stop = &stop;
		pthread_create(&w[i].thread, NULL, sw_thread, &w[i]);
	}
	for (unsigned int i = 0; i < 100; i++) {
		test_sleep_ms(2);
		CHECK_EQ_INT(blk_queue_attr_store(disk, "scheduler",
						  i % 2 ? "none" : sched), 0);
	}
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < 3; i++) {
		pthread_join(w[i].thread, NULL);
		CHECK_EQ_U64(w[i].errors, 0);
		CHECK_EQ_U64(w[i].bad_calls, 0);
		CHECK_EQ_U64(w[i].bad_data, 0);
		ios += w[i].ios;
	}
	printf("   %lu verified I/Os while switching\n", ios);
	CHECK_MSG(ios >= 300, "only %lu I/Os ran while switching", ios);
	test_attr_show(disk, "scheduler", buf, sizeof(buf));
	CHECK_MSG(strstr(buf, "[none]"), "scheduler '%s'", buf);
	CHECK_EQ_U64(test_wait_idle(disk, 3000), 0);
	test_dev_del(disk);
}

long test_dump_field(struct gendisk *disk, const char *line,
		     const char *field)
{
	char *dump = NULL, key[64], *p;
	size_t len = 0;
	FILE *f = open_memstream(&dump, &len);
	long v = -1;

	if (!f)
		return -1;
	blk_mq_debug_dump(disk, f);
	fclose(f);
	p = dump ? strstr(dump, line) : NULL;
	if (p) {
		char *eol = strchr(p, '\n');

		if (eol)
			*eol = '\0';
		snprintf(key, sizeof(key), " %s=", field);
		p = strstr(p, key);
		if (p)
			v = strtol(p + strlen(key), NULL, 10);
	}
	free(dump);
	return v;
}
