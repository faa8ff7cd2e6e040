// SPDX-License-Identifier: MIT
/*
 * drivers/sim*.c: the timing models driven directly (model time, no
 * threads, exact) and the device through the block layer with
 * time_scale:
 *
 *  - hdd: the seek curve rises with distance through the datasheet's
 *    three points; random 4 KiB reads cost about seek + half a turn;
 *    sequential reads run at the media rate (read-ahead), far faster;
 *    outer zones transfer faster than inner ones; a flush writes back
 *    what the write cache holds, and costs far more than a cached write;
 *  - ssd: random reads at queue depth 32 get many times the IOPS of
 *    depth 1 (dies in parallel); writes slow down once the flash is
 *    past gc_threshold (garbage collection) and a TRIM brings it back;
 *    a read suspends the program or erase its die is doing (not work
 *    queued before it), up to max_suspends times; new pages pass over
 *    a busy die;
 *  - the same seed gives the same times, another seed other times;
 *  - the device: data written and read back through the block layer
 *    (verify, concurrent I/O), latencies reported in model time while
 *    the wall clock runs time_scale times faster, NCQ reordering beats a
 *    FIFO disk, the rotational flag, the debug dump; time_scale below 1
 *    runs the model slower than the wall clock;
 *  - bad parameters: each refused with a message naming the key and the
 *    valid values, nothing created.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "drivers/sim.h"
#include "lib/prandom.h"
#include "testlib.h"

#define KB(n)	((uint64_t)(n) * 1024)
#define MB(n)	(KB(n) * 1024)

static bool model_make(struct sim_model *m, const char *params)
{
	struct sim_params p;

	if (!CHECK_MSG(sim_params_parse(&p, params) == 0, "parse '%s': %s",
		       params, blkstack_errmsg()))
		return false;
	return CHECK(sim_model_init(m, &p, (p.size_mb << 20) >> 9) == 0);
}

/* Serve @io at @t as a serial device would: returns its completion. */
static uint64_t serve(struct sim_model *m, enum req_op op, sector_t sector,
		      uint32_t bytes, uint64_t t)
{
	struct sim_io io = { .op = op, .sector = sector, .bytes = bytes };

	return m->ops->service(m, &io, t);
}

/* ---- hdd ---- */

static void test_seek_curve(void)
{
	struct sim_params p;
	uint64_t prev = 0;

	test_begin("hdd: seek time rises with distance through the figures",
		   5);
	sim_params_default(&p, SIM_HDD);
	CHECK_EQ_U64(sim_hdd_seek_ns(&p, 0), 0);
	CHECK_EQ_U64(sim_hdd_seek_ns(&p, 1), p.track_to_track_us * 1000ULL);
	CHECK_EQ_U64(sim_hdd_seek_ns(&p, p.cylinders), p.full_seek_us * 1000ULL);
	/* a third of the stroke is the mean random distance: the average */
	CHECK_MSG(llabs((long long)sim_hdd_seek_ns(&p, p.cylinders / 3) -
			(long long)p.avg_seek_us * 1000) < 10000,
		  "seek(D/3) %llu ns, avg_seek_us %u",
		  (unsigned long long)sim_hdd_seek_ns(&p, p.cylinders / 3),
		  p.avg_seek_us);
	for (uint64_t d = 0; d <= p.cylinders; d += 97) {
		uint64_t s = sim_hdd_seek_ns(&p, d);

		if (!CHECK_MSG(s >= prev, "seek(%llu) = %llu < %llu",
			       (unsigned long long)d, (unsigned long long)s,
			       (unsigned long long)prev))
			break;
		prev = s;
	}
}

static void test_hdd_random_vs_seq(void)
{
	struct sim_model m;
	uint64_t t = 0, t0, s = 7, nr = 2000, cap;
	double rnd_ms, seq_mbps;

	test_begin("hdd: random 4k reads ~ seek + half a turn; sequential at "
		   "media rate", 10);
	if (!model_make(&m, "model=hdd,size=1T"))
		return;
	cap = m.capacity;
	for (unsigned int i = 0; i < nr; i++) {
		sector_t lba = (prandom_u64(&s) % (cap / 8)) * 8;

		t = serve(&m, REQ_OP_READ, lba, 4096, t);
	}
	rnd_ms = t / (double)nr / 1e6;
	/* 50 us overhead + 8.5 ms seek + 4.17 ms rotation + transfer */
	printf("   random 4k read %.2f ms\n", rnd_ms);
	CHECK_MSG(rnd_ms > 11.0 && rnd_ms < 14.5,
		  "random 4k read %.2f ms each", rnd_ms);
	CHECK_MSG(m.st.rot_ns / (double)nr / 1e6 > 3.6 &&
		  m.st.rot_ns / (double)nr / 1e6 < 4.8,
		  "mean rotational wait %.2f ms (7200 rpm: 4.17)",
		  m.st.rot_ns / (double)nr / 1e6);

	/* sequential 64k reads from LBA 0, one after the other */
	t0 = t;
	for (unsigned int i = 0; i < nr; i++)
		t = serve(&m, REQ_OP_READ, (sector_t)i * 128, 65536, t);
	seq_mbps = nr * 65536.0 / ((t - t0) / 1e3);
	CHECK_MSG(seq_mbps > 150 && seq_mbps <= 200.5,
		  "sequential read %.1f MB/s (outer zone 200)", seq_mbps);
	printf("   sequential 64k read %.1f MB/s\n", seq_mbps);
	CHECK(m.st.ra_hits >= nr - 2);
	/* sequential 4k: still streaming, ~50x the random IOPS or more */
	t0 = t;
	for (unsigned int i = 0; i < nr; i++)
		t = serve(&m, REQ_OP_READ, (sector_t)(nr * 128 + i * 8), 4096,
			  t);
	CHECK_MSG((t - t0) / (double)nr / 1e6 * 50 < rnd_ms,
		  "sequential 4k %.3f ms vs random %.2f ms",
		  (t - t0) / (double)nr / 1e6, rnd_ms);

	/* the inner zone is slower */
	t0 = t;
	for (unsigned int i = 0; i < 200; i++)
		t = serve(&m, REQ_OP_READ, cap - 200 * 128 + (sector_t)i * 128,
			  65536, t);
	CHECK_MSG(200 * 65536.0 / ((t - t0) / 1e3) < 0.7 * seq_mbps,
		  "inner zone %.1f MB/s vs outer %.1f",
		  200 * 65536.0 / ((t - t0) / 1e3), seq_mbps);
	sim_model_exit(&m);
}

static void test_hdd_flush(void)
{
	struct sim_model m;
	uint64_t t = 0, s = 3, write_max = 0, t0;

	test_begin("hdd: cached writes are fast, the flush pays for them", 10);
	if (!model_make(&m, "model=hdd,size=100G"))
		return;
	for (unsigned int i = 0; i < 100; i++) {
		uint64_t d = serve(&m, REQ_OP_WRITE,
				   (prandom_u64(&s) % (m.capacity / 8)) * 8,
				   4096, t);

		write_max = max(write_max, d - t);
		t = d;
	}
	CHECK_MSG(write_max < 100 * 1000, "cached 4k write took %llu ns",
		  (unsigned long long)write_max);
	CHECK_EQ_U64(m.st.destages, 0);
	t0 = t;
	t = serve(&m, REQ_OP_FLUSH, 0, 0, t);
	printf("   flush after 100 cached random writes: %.1f ms\n",
	       (t - t0) / 1e6);
	CHECK_EQ_U64(m.st.destages, 100);
	/* 100 sorted random writes: a few ms each, even in C-SCAN order */
	CHECK_MSG(t - t0 > 100 * write_max && t - t0 > 100 * NSEC_PER_MSEC,
		  "flush of 100 writes took %.1f ms",
		  (t - t0) / 1e6);
	/* nothing dirty: a flush is just the command */
	t0 = t;
	t = serve(&m, REQ_OP_FLUSH, 0, 0, t);
	CHECK(t - t0 < NSEC_PER_MSEC);
	sim_model_exit(&m);

	test_begin("hdd: an idle disk writes back its cache in the background",
		   5);
	if (!model_make(&m, "model=hdd,size=100G"))
		return;
	t = 0;
	for (unsigned int i = 0; i < 50; i++) {
		/* short gaps between commands leave the cache alone */
		uint64_t start = t + 10 * NSEC_PER_USEC;
		uint64_t d = serve(&m, REQ_OP_WRITE,
				   (prandom_u64(&s) % (m.capacity / 8)) * 8,
				   4096, start);

		CHECK_MSG(d - start < 100 * NSEC_PER_USEC, "cached write %u "
			  "took %llu ns", i, (unsigned long long)(d - start));
		t = d;
	}
	CHECK_EQ_U64(m.st.destages, 0);
	/* a second of idle time: all 50 written back by the next command */
	t = serve(&m, REQ_OP_FLUSH, 0, 0, t + NSEC_PER_SEC) - t -
	    NSEC_PER_SEC;
	CHECK_EQ_U64(m.st.destages, 50);
	CHECK_MSG(t < NSEC_PER_MSEC, "flush after idle write-back %llu ns",
		  (unsigned long long)t);
	sim_model_exit(&m);

	test_begin("hdd: write_cache=0 and FUA go to the media", 5);
	if (!model_make(&m, "model=hdd,size=100G,write_cache=0"))
		return;
	t = serve(&m, REQ_OP_WRITE, m.capacity / 2, 4096, 0);
	CHECK_MSG(t > 2 * NSEC_PER_MSEC, "uncached write %llu ns",
		  (unsigned long long)t);
	sim_model_exit(&m);
}

/* ---- ssd ---- */

/*
 * A closed loop of @qd random 4k reads over the first @span bytes of a
 * fresh model: IOPS over @nr reads, model time.
 */
static double ssd_iops(unsigned int qd, unsigned int nr, uint64_t span,
		       uint64_t seed)
{
	uint64_t busy[64] = { 0 }, s = seed | 1, last = 0;
	struct sim_model m;

	if (!model_make(&m, "model=ssd,size=4G"))
		return 0;
	for (unsigned int i = 0; i < nr; i++) {
		unsigned int slot = 0;

		/* the next one starts when the earliest outstanding ended */
		for (unsigned int k = 1; k < qd; k++)
			if (busy[k] < busy[slot])
				slot = k;
		busy[slot] = serve(&m, REQ_OP_READ,
				   (prandom_u64(&s) % (span / 4096)) * 8, 4096,
				   busy[slot]);
		last = max(last, busy[slot]);
	}
	sim_model_exit(&m);
	return nr / (last / 1e9);
}

static void test_ssd_parallelism(void)
{
	double qd1, qd4, qd32, lat;

	test_begin("ssd: throughput grows with queue depth (dies in parallel)",
		   10);
	qd1 = ssd_iops(1, 2000, MB(4096), 1);
	lat = 1e6 / qd1;
	/* 10 us command + 70 us tR + transfers: 80-100 us at depth 1 */
	CHECK_MSG(lat > 75 && lat < 110, "qd1 read latency %.1f us", lat);
	qd4 = ssd_iops(4, 4000, MB(4096), 2);
	qd32 = ssd_iops(32, 20000, MB(4096), 3);
	printf("   random 4k read IOPS: qd1 %.0f, qd4 %.0f, qd32 %.0f\n", qd1,
	       qd4, qd32);
	CHECK_MSG(qd4 > 2.5 * qd1, "qd4 %.0f vs qd1 %.0f IOPS", qd4, qd1);
	CHECK_MSG(qd32 > 10 * qd1, "qd32 %.0f vs qd1 %.0f IOPS", qd32, qd1);
}

/* Random 4k writes at depth 32 over the device: MB/s, model time. */
static double ssd_write_mbps(struct sim_model *m, unsigned int nr,
			     uint64_t *t, uint64_t seed)
{
	uint64_t busy[32], s = seed | 1, start = *t, pages;

	for (unsigned int k = 0; k < 32; k++)
		busy[k] = *t;
	pages = m->capacity / 8;
	for (unsigned int i = 0; i < nr; i++) {
		unsigned int slot = i % 32;

		busy[slot] = serve(m, REQ_OP_WRITE,
				   (prandom_u64(&s) % pages) * 8, 4096,
				   busy[slot]);
		*t = max(*t, busy[slot]);
	}
	/* what the buffer still holds counts too */
	*t = serve(m, REQ_OP_FLUSH, 0, 0, *t);
	return nr * 4096.0 / ((*t - start) / 1e3);
}

static void test_ssd_gc(void)
{
	struct sim_model m;
	uint64_t t = 0;
	double fresh, full, trimmed;
	struct sim_io trim = { .op = REQ_OP_DISCARD, .sector = 0 };

	test_begin("ssd: writes slow down past gc_threshold, TRIM restores",
		   20);
	if (!model_make(&m, "model=ssd,size=64M,write_buffer_mb=1"))
		return;
	/* a quarter of the device: far below the threshold */
	fresh = ssd_write_mbps(&m, 4096, &t, 1);
	CHECK_EQ_U64(m.st.gc_runs, 0);
	/* fill it all: 64 MiB of 68.5 MiB flash is 93% > 80% */
	for (sector_t s = 0; s < m.capacity; s += 256)
		t = serve(&m, REQ_OP_WRITE, s, 131072, t);
	full = ssd_write_mbps(&m, 16384, &t, 2);
	printf("   random 4k writes: %.1f MB/s fresh, %.1f MB/s at 93%% full\n",
	       fresh, full);
	CHECK_MSG(m.st.gc_runs > 0, "no GC at 93%% full");
	CHECK_MSG(full * 2 < fresh, "write MB/s full %.1f vs fresh %.1f", full,
		  fresh);
	/* TRIM three quarters: below the threshold again */
	trim.bytes = (uint32_t)(m.capacity * 512 / 4 * 3);
	t = m.ops->service(&m, &trim, t);
	{
		uint64_t runs = m.st.gc_runs;

		trimmed = ssd_write_mbps(&m, 4096, &t, 3);
		CHECK_MSG(trimmed > 2 * full, "after TRIM %.1f MB/s vs full %.1f",
			  trimmed, full);
		CHECK_EQ_U64(m.st.gc_runs, runs);
	}
	sim_model_exit(&m);
}

/*
 * One die (program_kb=4: a page's program is the whole program_us), a
 * block of 8 pages: what a read arriving at @at after @pages written at
 * 0 waits for, with @params on top.
 */
static uint64_t ssd_read_after(const char *params, unsigned int pages,
			       uint64_t at, struct sim_model *m)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "model=ssd,size=1G,channels=1,"
		 "dies_per_channel=1,program_kb=4,pages_per_block=8,%s",
		 params);
	if (!model_make(m, buf))
		return 0;
	serve(m, REQ_OP_WRITE, 0, pages * 4096, 0);
	return serve(m, REQ_OP_READ, 1024, 4096, at) - at;
}

static void test_ssd_suspend(void)
{
	struct sim_model m;
	uint64_t on, off, t;

	test_begin("ssd: a read suspends the program or erase in progress", 10);
	/* one program (0..~0.7 ms), a read at 0.1 ms */
	on = ssd_read_after("", 1, 100 * NSEC_PER_USEC, &m);
	CHECK_EQ_U64(m.st.suspends, 1);
	sim_model_exit(&m);
	off = ssd_read_after("suspend=0", 1, 100 * NSEC_PER_USEC, &m);
	sim_model_exit(&m);
	/* 10 us command + 40 us to suspend + 70 us tR + transfers */
	CHECK_MSG(on > 120 * NSEC_PER_USEC && on < 150 * NSEC_PER_USEC,
		  "suspended program: read %llu ns", (unsigned long long)on);
	CHECK_MSG(off > 650 * NSEC_PER_USEC, "waited program: read %llu ns",
		  (unsigned long long)off);

	/* 8 programs fill the block: an erase (~5.6..9.1 ms), read at 7 ms */
	on = ssd_read_after("", 8, 7 * NSEC_PER_MSEC, &m);
	CHECK_EQ_U64(m.st.erases, 1);
	CHECK_EQ_U64(m.st.suspends, 1);
	CHECK_MSG(on > 180 * NSEC_PER_USEC && on < 210 * NSEC_PER_USEC,
		  "suspended erase: read %llu ns", (unsigned long long)on);
	/* a second read while the first is served waits only for it */
	t = serve(&m, REQ_OP_READ, 2048, 4096, 7 * NSEC_PER_MSEC + 50000);
	CHECK_EQ_U64(m.st.suspends, 1);
	CHECK_MSG(t - (7 * NSEC_PER_MSEC + on) < 100 * NSEC_PER_USEC,
		  "read during the suspension ends %llu ns after the first",
		  (unsigned long long)(t - 7 * NSEC_PER_MSEC - on));
	sim_model_exit(&m);
	off = ssd_read_after("suspend=0", 8, 7 * NSEC_PER_MSEC, &m);
	sim_model_exit(&m);
	CHECK_MSG(off > 2 * NSEC_PER_MSEC, "waited erase: read %llu ns",
		  (unsigned long long)off);

	/* max_suspends=1: the erase, suspended once, is then waited out */
	ssd_read_after("max_suspends=1", 8, 7 * NSEC_PER_MSEC, &m);
	t = serve(&m, REQ_OP_READ, 2048, 4096, 8 * NSEC_PER_MSEC);
	CHECK_EQ_U64(m.st.suspends, 1);
	/* the erase ends ~9.1 ms + what the suspension cost it */
	CHECK_MSG(t > 9200 * NSEC_PER_USEC, "second read ends at %llu ns",
		  (unsigned long long)t);
	sim_model_exit(&m);

	/* a read does not overtake programs queued before it */
	off = ssd_read_after("", 3, 100 * NSEC_PER_USEC, &m);
	CHECK_EQ_U64(m.st.suspends, 0);
	CHECK_MSG(off > 1200 * NSEC_PER_USEC, "read behind 2 queued programs "
		  "%llu ns", (unsigned long long)off);
	sim_model_exit(&m);
}

/*
 * Two dies: 50 reads queued on die 0 (3.5 ms of tR), then a FUA write
 * whose page has die 0's turn: when its program ends.
 */
static uint64_t ssd_fua_after_reads(const char *params)
{
	struct sim_io fua = { .op = REQ_OP_WRITE, .fua = true, .bytes = 4096 };
	struct sim_model m;
	char buf[256];
	unsigned int n = 0;
	uint64_t t = 100 * NSEC_PER_USEC;

	snprintf(buf, sizeof(buf), "model=ssd,size=1G,channels=2,"
		 "dies_per_channel=1,program_kb=4,%s", params);
	if (!model_make(&m, buf))
		return 0;
	/* the model's map: page -> die (seed 1) */
	for (uint64_t lpn = 0; n < 50; lpn++)
		if (splitmix64(lpn ^ 1) % 2 == 0) {
			serve(&m, REQ_OP_READ, lpn * 8, 4096, 0);
			n++;
		}
	t = m.ops->service(&m, &fua, t) - t;
	sim_model_exit(&m);
	return t;
}

static void test_ssd_dynamic_alloc(void)
{
	uint64_t dyn, rr;

	test_begin("ssd: programs pass over a busy die (dynamic_alloc)", 5);
	dyn = ssd_fua_after_reads("");
	rr = ssd_fua_after_reads("dynamic_alloc=0");
	/* command + transfers + 700 us program, or the reads first */
	CHECK_MSG(dyn < NSEC_PER_MSEC, "dynamic: FUA write %llu ns",
		  (unsigned long long)dyn);
	CHECK_MSG(rr > 3 * NSEC_PER_MSEC, "round robin: FUA write %llu ns",
		  (unsigned long long)rr);
}

/* ---- determinism ---- */

static uint64_t run_mix(const char *params)
{
	struct sim_model m;
	uint64_t t = 0, s = 99, h = 0;

	if (!model_make(&m, params))
		return 0;
	for (unsigned int i = 0; i < 3000; i++) {
		enum req_op op = prandom_u64(&s) % 3 ? REQ_OP_READ :
						       REQ_OP_WRITE;
		sector_t lba = (prandom_u64(&s) % (m.capacity / 8)) * 8;

		t = serve(&m, op, lba, 4096, t);
		h = splitmix64(h ^ t);
	}
	sim_model_exit(&m);
	return h;
}

static void test_determinism(void)
{
	test_begin("the same seed gives the same times, another seed others",
		   10);
	CHECK_EQ_U64(run_mix("model=hdd,seed=5"), run_mix("model=hdd,seed=5"));
	CHECK(run_mix("model=hdd,seed=5") != run_mix("model=hdd,seed=6"));
	CHECK_EQ_U64(run_mix("model=ssd,seed=5"), run_mix("model=ssd,seed=5"));
	CHECK(run_mix("model=ssd,seed=5") != run_mix("model=ssd,seed=6"));
}

/* ---- the device ---- */

struct qd_ctl {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int inflight;
	unsigned int errors;
};

static void qd_done(void *priv, int err)
{
	struct qd_ctl *q = priv;

	pthread_mutex_lock(&q->lock);
	q->inflight--;
	q->errors += err != 0;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/* Wait for at most @left in flight; false after 20 s. */
static bool qd_wait(struct qd_ctl *q, unsigned int left)
{
	uint64_t end = test_now_ns() + 20 * NSEC_PER_SEC;
	bool ok = true;

	pthread_mutex_lock(&q->lock);
	while (q->inflight > left && ok) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&q->cond, &q->lock, &ts);
		ok = test_now_ns() < end;
	}
	pthread_mutex_unlock(&q->lock);
	return CHECK_MSG(ok, "%u I/Os still in flight", q->inflight);
}

static bool qd_submit(struct qd_ctl *q, struct gendisk *disk, blk_opf_t op,
		      off_t off, void *buf, size_t len)
{
	int ret;

	pthread_mutex_lock(&q->lock);
	q->inflight++;
	pthread_mutex_unlock(&q->lock);
	ret = blkdev_submit(disk, op, off, buf, len, qd_done, q);
	if (ret) {
		pthread_mutex_lock(&q->lock);
		q->inflight--;
		pthread_mutex_unlock(&q->lock);
	}
	return CHECK_EQ_INT(ret, 0);
}

static struct gendisk *sim_add(const char *name, const char *params)
{
	struct gendisk *disk = NULL;
	int ret = blkstack_dev_add("sim", name, params, &disk);

	CHECK_MSG(ret == 0, "sim %s: %d %s", params, ret, blkstack_errmsg());
	return ret ? NULL : disk;
}

static void test_device_data(void)
{
	struct qd_ctl q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			    0, 0 };
	unsigned char *w = aligned_alloc(4096, KB(64) * 32);
	unsigned char *r = aligned_alloc(4096, KB(64) * 32);
	struct gendisk *disk;
	char buf[64];

	test_begin("device: data written is read back (hdd and ssd)", 20);
	REQUIRE(w && r);
	for (int model = 0; model < 2; model++) {
		disk = sim_add(model ? "simssd" : "simhdd",
			       model ? "model=ssd,size=256M,time_scale=100" :
				       "model=hdd,size=256M,time_scale=1000");
		if (!disk)
			break;
		CHECK_MSG(!strcmp(test_attr_show(disk, "rotational", buf,
						 sizeof(buf)), model ? "0" : "1"),
			  "rotational %s", buf);
		for (unsigned int i = 0; i < 8; i++)
			test_write_verify(disk, (off_t)(i * 7919 % 4096) * 4096 *
					  16, KB(16), i + 1, w, r);
		/* 32 concurrent 64k writes, then reads of them */
		for (unsigned int i = 0; i < 32; i++) {
			test_fill(w + i * KB(64), KB(64), 77, i * MB(4));
			qd_submit(&q, disk, REQ_OP_WRITE, (off_t)(i * MB(4)),
				  w + i * KB(64), KB(64));
		}
		qd_wait(&q, 0);
		memset(r, 0, KB(64) * 32);
		for (unsigned int i = 0; i < 32; i++)
			qd_submit(&q, disk, REQ_OP_READ, (off_t)(i * MB(4)),
				  r + i * KB(64), KB(64));
		qd_wait(&q, 0);
		for (unsigned int i = 0; i < 32; i++)
			CHECK_MSG(test_verify(r + i * KB(64), KB(64), 77,
					      i * MB(4)) < 0,
				  "block %u read back wrong", i);
		CHECK_EQ_U64(q.errors, 0);
		CHECK_EQ_INT(blkdev_flush(disk), 0);
		/* a discarded range reads as zeroes */
		CHECK_EQ_INT(blkdev_write_zeroes(disk, 0, KB(64)), 0);
		CHECK_EQ_INT(blkdev_pread(disk, r, KB(64), 0), (ssize_t)KB(64));
		CHECK(test_is_zero(r, KB(64)));
		test_dev_del(disk);
	}
	free(w);
	free(r);
}

/* @n random 4k reads at depth @qd: the model time they took. */
static uint64_t device_random_reads(struct gendisk *disk, unsigned int n,
				    unsigned int qd, uint64_t span,
				    uint64_t seed, struct sim_stats *st)
{
	struct qd_ctl q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			    0, 0 };
	unsigned char *buf = aligned_alloc(4096, KB(4) * qd);
	struct sim_stats before;
	uint64_t s = seed | 1, t0;

	if (!CHECK(buf) || !CHECK_EQ_INT(sim_get_stats(disk, &before), 0)) {
		free(buf);
		return 0;
	}
	t0 = before.now_ns;
	for (unsigned int i = 0; i < n; i++) {
		if (!qd_wait(&q, qd - 1))
			break;
		qd_submit(&q, disk, REQ_OP_READ,
			  (off_t)((prandom_u64(&s) % (span / 4096)) * 4096),
			  buf + (i % qd) * KB(4), KB(4));
	}
	qd_wait(&q, 0);
	CHECK_EQ_U64(q.errors, 0);
	free(buf);
	sim_get_stats(disk, st);
	return st->now_ns - t0;
}

static void test_device_model_time(void)
{
	struct sim_stats st;
	struct gendisk *disk;
	double mean_ms;
	uint64_t wall0, wall, model;

	test_begin("device: latencies in model time, wall time scaled down",
		   30);
	disk = sim_add("simt", "model=hdd,size=1T,time_scale=200,"
		       "memory_backed=0");
	if (!disk)
		return;
	test_attr_store(disk, "scheduler", "none");
	wall0 = test_now_ns();
	model = device_random_reads(disk, 200, 1, MB(1024 * 1024), 1, &st);
	wall = test_now_ns() - wall0;
	mean_ms = st.lat[STAT_READ].total_ns /
		  (double)max(st.lat[STAT_READ].count, 1ULL) / 1e6;
	CHECK_EQ_U64(st.lat[STAT_READ].count, 200);
	/* QD1 random 4k on a 7200 rpm disk: ~12.8 ms each */
	CHECK_MSG(mean_ms > 10 && mean_ms < 16, "mean read %.2f ms (model)",
		  mean_ms);
	/* the wall clock ran ~200x faster (submission overhead adds) */
	CHECK_MSG(wall * 20 < model, "wall %.1f ms, model %.1f ms",
		  wall / 1e6, model / 1e6);
	CHECK(sim_lat_percentile(&st.lat[STAT_READ], 99) >=
	      sim_lat_percentile(&st.lat[STAT_READ], 50));
	test_dev_del(disk);
}

/*
 * time_scale below 1: the model runs slower than the wall clock (here 4x),
 * so the host's own delays shrink in model terms.
 */
static void test_device_slow_time(void)
{
	struct sim_params p;
	struct sim_stats st;
	struct gendisk *disk;
	uint64_t wall0, wall, model;

	test_begin("device: time_scale=0.25 runs the model 4x slower", 30);
	CHECK_EQ_INT(sim_params_parse(&p, "time_scale=2.5"), 0);
	CHECK_MSG(p.time_scale == 5 && p.time_div == 2, "2.5 = %u/%u",
		  p.time_scale, p.time_div);
	disk = sim_add("simslow", "model=ssd,size=1G,time_scale=0.25,"
		       "memory_backed=0");
	if (!disk)
		return;
	wall0 = test_now_ns();
	model = device_random_reads(disk, 200, 1, MB(1024), 3, &st);
	wall = test_now_ns() - wall0;
	CHECK_EQ_U64(st.lat[STAT_READ].count, 200);
	/* QD1 4k read: ~86 us of model time, ~344 us of wall time each */
	CHECK_MSG(wall > 200 * 300000ULL, "200 reads in %.1f ms of wall time",
		  wall / 1e6);
	CHECK_MSG(model * 3 < wall && model * 5 > wall,
		  "model %.1f ms, wall %.1f ms", model / 1e6, wall / 1e6);
	test_dev_del(disk);
}

/* Model time the disk spent serving @n random reads at depth 32. */
static uint64_t ncq_busy(const char *name, const char *params, unsigned int n)
{
	struct sim_stats before, after;
	struct gendisk *disk = sim_add(name, params);
	uint64_t busy;

	if (!disk)
		return 0;
	test_attr_store(disk, "scheduler", "none");
	sim_get_stats(disk, &before);
	device_random_reads(disk, n, 32, MB(1024), 5, &after);
	busy = after.busy_ns - before.busy_ns;
	if (strstr(params, "hw_queue_depth=32")) {
		char *dump = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&dump, &len);

		blk_mq_debug_dump(disk, f);
		fclose(f);
		CHECK_MSG(dump && strstr(dump, "sim read: ios=") &&
			  strstr(dump, "model=hdd"), "dump:\n%s", dump);
		free(dump);
	}
	test_dev_del(disk);
	return busy;
}

static void test_device_ncq(void)
{
	uint64_t fifo, ncq;

	test_begin("device: NCQ reordering beats a FIFO disk at depth 32", 30);
	/*
	 * 32 reads outstanding in a 1 GiB band of a 1 TiB disk. Busy time,
	 * not elapsed time: a slow submitter (sanitizers) must not count.
	 */
	fifo = ncq_busy("simfifo", "model=hdd,size=1T,time_scale=10,"
			"memory_backed=0,hw_queue_depth=1", 300);
	ncq = ncq_busy("simncq", "model=hdd,size=1T,time_scale=10,"
		       "memory_backed=0,hw_queue_depth=32", 300);
	printf("   300 random reads at depth 32: disk busy %.0f ms NCQ, "
	       "%.0f ms FIFO (model)\n", ncq / 1e6, fifo / 1e6);
	CHECK_MSG(ncq * 3 < fifo * 2, "300 reads: disk busy %.0f ms with NCQ, "
		  "%.0f ms FIFO (model)", ncq / 1e6, fifo / 1e6);
}

/* ---- bad parameters ---- */

static void bad(const char *params, const char *want1, const char *want2)
{
	struct gendisk *disk = NULL;
	int ret = blkstack_dev_add("sim", "simbad", params, &disk);

	CHECK_MSG(ret == -EINVAL, "'%s': %d", params, ret);
	CHECK_MSG(strstr(blkstack_errmsg(), want1) &&
		  (!want2 || strstr(blkstack_errmsg(), want2)),
		  "'%s': message '%s' lacks '%s'/'%s'", params,
		  blkstack_errmsg(), want1, want2 ? want2 : "");
	CHECK(disk == NULL);
	CHECK(blk_get_disk("simbad") == NULL);
}

static void test_bad_params(void)
{
	test_begin("bad parameters: clear errors, nothing created", 10);
	bad("model=tape", "model=tape", "hdd, ssd");
	bad("nosuch=1", "nosuch", "rpm");
	bad("rpm", "key=value", NULL);
	bad("rpm=100", "rpm=100", "3600..20000");
	bad("model=ssd,rpm=7200", "rpm", "model=hdd");
	bad("model=hdd,channels=4", "channels", "model=ssd");
	bad("avg_seek_us=20000", "seek times must rise", NULL);
	bad("inner_mbps=300", "inner_mbps", "outer_mbps");
	bad("size=0", "size=0", "16T");
	bad("size=12Q", "size=12Q", NULL);
	bad("bs=1000", "bs=1000", "power of two");
	bad("time_scale=0", "time_scale=0", "0.001..1000000");
	bad("time_scale=0.0001", "time_scale=0.0001", "three decimals");
	bad("time_scale=1000000.5", "time_scale=1000000.5", NULL);
	bad("time_scale=1/2", "time_scale=1/2", NULL);
	bad("hw_queue_depth=64", "hw_queue_depth=64", "ncq_depth");
	bad("seed=-1", "seed=-1", NULL);
	bad("model=ssd,suspend=2", "suspend=2", "0..1");
	bad("model=hdd,resume_us=5", "resume_us", "model=ssd");
}

int main(void)
{
	test_init(2);
	test_seek_curve();
	test_hdd_random_vs_seq();
	test_hdd_flush();
	test_ssd_parallelism();
	test_ssd_gc();
	test_ssd_suspend();
	test_ssd_dynamic_alloc();
	test_determinism();
	test_bad_params();
	test_device_data();
	test_device_model_time();
	test_device_slow_time();
	test_device_ncq();
	return test_report();
}
