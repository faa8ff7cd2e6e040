// SPDX-License-Identifier: MIT
/*
 * What tracing costs (bench/blktrace.sh, docs/blktrace.md). Three
 * measurements, tracing off and on in the same run, rounds interleaved:
 *
 *  cost   null_blk irqmode=0, 4k random reads, one thread, synchronous:
 *         CPU ns per I/O of the submitting thread (CLOCK_THREAD_CPUTIME_ID,
 *         best of the rounds) and of the whole process (the reader thread
 *         too), divided by the events each I/O records.
 *  uring  the uring driver on a tmpfs file, 4k random reads, iodepth 32,
 *         from a load thread that runs throughout: --pairs pairs of
 *         windows (seconds / 8 each), tracing off and on, the order
 *         swapped from pair to pair: median IOPS of each, median loss of
 *         the pairs, median CPU ns per I/O of the process and of each
 *         kind of thread, the drops.
 *  drops  two threads of unlimited null_blk load for a while, at the
 *         default buffers and at small ones: drops per million events.
 *         Then, at each buffer setting, the same load paced (a rate
 *         limit as fio's rate_iops: an even schedule, a late I/O letting
 *         the next ones catch up), stepped from SWEEP_START_IOPS (up or
 *         down) until drops appear, then bisected SWEEP_BISECT times:
 *         the highest event rate traced with 0 drops. A step the machine
 *         cannot deliver (less than 90% of its rate) ends the sweep: the
 *         rate is then a floor, said so.
 *
 * Output: CSV on stdout, "test,config,metric,value".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include <blkstack/blkdev.h>
#include <blkstack/blktrace.h>

#define BS 4096
#define DEV_SECTORS (1ULL << 21) /* 1 GiB */

static const char *trace_dir = "/dev/shm";
static unsigned int rounds = 5;
/*
 * The uring part's pairs: with 40, runs with neither window traced
 * (--aa) read -3.0..+3.5%, the size of the 3% target; with 200, 0.1%.
 */
static unsigned int uring_pairs = 200;
static bool no_files; /* trace without output files (reader cost only) */
static bool uring_aa; /* --aa: neither window of a uring pair traced */
static unsigned long cost_ios = 200000;
static double seconds = 2.0;
static const char *only; /* cost, uring or drops; NULL = all */

static uint64_t clk(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int trace_setup(struct gendisk *disk, uint32_t buf_size,
		       uint32_t buf_nr, char *dir, size_t len)
{
	struct blk_trace_setup buts;
	int ret;

	snprintf(dir, len, "%s/bench-blktrace-XXXXXX", trace_dir);
	if (!mkdtemp(dir))
		return -errno;
	blk_trace_setup_init(&buts);
	buts.dir = no_files ? NULL : dir;
	buts.buf_size = buf_size;
	buts.buf_nr = buf_nr;
	ret = blk_trace_setup(disk, &buts);
	if (ret)
		fprintf(stderr, "bench-blktrace: %s\n", blkstack_errmsg());
	return ret;
}

static int trace_on(struct gendisk *disk, uint32_t buf_size, uint32_t buf_nr,
		    char *dir, size_t len)
{
	int ret = trace_setup(disk, buf_size, buf_nr, dir, len);

	if (!ret && (ret = blk_trace_start(disk)))
		fprintf(stderr, "bench-blktrace: %s\n", blkstack_errmsg());
	return ret;
}

/* Teardown, then remove the files; the trace's final counters. */
static void trace_off(struct gendisk *disk, const char *dir,
		      struct blk_trace_stats *st)
{
	char cmd[512];

	blk_trace_teardown(disk);
	blk_trace_get_stats(disk, st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "bench-blktrace: could not remove %s\n", dir);
}

/* ---- cost per event ---- */

static void sync_reads(struct gendisk *disk, unsigned long n, uint64_t *seed,
		       char *buf)
{
	for (unsigned long i = 0; i < n; i++) {
		off_t off = (off_t)(xorshift(seed) % (DEV_SECTORS / 8)) * BS;

		blkdev_pread(disk, buf, BS, off);
	}
}

static void bench_cost(void)
{
	/* 64 sub-buffers holding twice a round's events (64 bytes each) */
	uint32_t cost_buf_size = (uint32_t)min_u64(
		4ULL << 20, max_u64(1ULL << 20, cost_ios * 4 * 64 * 2 / 64));
	static char buf[BS];
	struct gendisk *disk;
	struct blk_trace_stats st;
	uint64_t seed = 88172645463325252ULL,
		 best[2] = { UINT64_MAX, UINT64_MAX };
	uint64_t best_proc[2] = { UINT64_MAX, UINT64_MAX }, events = 0;
	uint64_t dropped = 0;
	char dir[256];

	if (blkstack_dev_add("null", "btcost", "size=1G,irqmode=0", &disk)) {
		fprintf(stderr, "bench-blktrace: %s\n", blkstack_errmsg());
		exit(1);
	}
	blk_queue_attr_store(disk, "scheduler", "none");
	sync_reads(disk, cost_ios / 4, &seed, buf); /* warm up */
	for (unsigned int r = 0; r < rounds; r++) {
		for (int on = 0; on < 2; on++) {
			uint64_t t0, p0, t, p;

			/*
			 * Room for the whole round: the reader may get no
			 * CPU on a loaded machine, and a dropped event costs
			 * less than a recorded one.
			 */
			if (on &&
			    trace_on(disk, cost_buf_size, 64, dir, sizeof(dir)))
				exit(1);
			/* steady state: the first event maps the ring */
			sync_reads(disk, 1, &seed, buf);
			t0 = clk(CLOCK_THREAD_CPUTIME_ID);
			p0 = clk(CLOCK_PROCESS_CPUTIME_ID);
			sync_reads(disk, cost_ios, &seed, buf);
			/*
			 * The submitter's time is its I/O loop's; the
			 * process's adds the reader's, up to the stop that
			 * writes out the last event. Teardown (and removing
			 * the files) is no cost of an event.
			 */
			t = clk(CLOCK_THREAD_CPUTIME_ID) - t0;
			if (on)
				blk_trace_stop(disk);
			p = clk(CLOCK_PROCESS_CPUTIME_ID) - p0;
			if (on) {
				trace_off(disk, dir, &st);
				events = st.events + st.dropped;
				dropped += st.dropped;
			}
			if (t < best[on])
				best[on] = t;
			if (p < best_proc[on])
				best_proc[on] = p;
		}
	}
	{
		double per_io = (double)events / (double)cost_ios;
		double off_ns = (double)best[0] / (double)cost_ios;
		double on_ns = (double)best[1] / (double)cost_ios;
		double poff = (double)best_proc[0] / (double)cost_ios;
		double pon = (double)best_proc[1] / (double)cost_ios;

		printf("cost,null-irqmode0-4k-randread,events_per_io,%.2f\n",
		       per_io);
		printf("cost,null-irqmode0-4k-randread,submitter_ns_per_io_off,"
		       "%.1f\n",
		       off_ns);
		printf("cost,null-irqmode0-4k-randread,submitter_ns_per_io_on,"
		       "%.1f\n",
		       on_ns);
		printf("cost,null-irqmode0-4k-randread,submitter_ns_per_event,"
		       "%.1f\n",
		       (on_ns - off_ns) / per_io);
		printf("cost,null-irqmode0-4k-randread,process_ns_per_event,"
		       "%.1f\n",
		       (pon - poff) / per_io);
		printf("cost,null-irqmode0-4k-randread,drops_per_million,%."
		       "1f\n",
		       1e6 * (double)dropped / (double)(events * rounds));
	}
	blkstack_dev_del("btcost");
	blk_put_disk(disk);
}

/* ---- uring on tmpfs, iodepth 32 ---- */

#define URING_DEPTH 32

/*
 * The load runs on a thread of its own, as fio's does, while the main
 * thread turns tracing on and off under it: submit up to the depth, then
 * sleep until a completion makes room (fio's io_uring engine waits for
 * one completion the same way). A spinning submitter would hold a core
 * for nothing and make every other thread, the trace reader among them,
 * look dearer than it is.
 */
struct uring_load {
	struct gendisk *disk;
	_Atomic unsigned int inflight;
	_Atomic unsigned long done;
	_Atomic bool stop;
	char *bufs;
	uint64_t seed;
};

static void futex_wait(_Atomic unsigned int *addr, unsigned int val)
{
	struct timespec ts = { 0, 1000000 };

	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void futex_wake(_Atomic unsigned int *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void uring_done(void *priv, int err)
{
	struct uring_load *l = priv;

	atomic_fetch_add(&l->done, 1);
	/* only a full queue has the submitter asleep */
	if (atomic_fetch_sub(&l->inflight, 1) == URING_DEPTH)
		futex_wake(&l->inflight);
}

static void *uring_load_fn(void *arg)
{
	struct uring_load *l = arg;
	unsigned int slot = 0;

	pthread_setname_np(pthread_self(), "bt-load");
	while (!atomic_load(&l->stop)) {
		while (atomic_load(&l->inflight) < URING_DEPTH) {
			off_t off = (off_t)(xorshift(&l->seed) % 65536) * BS;

			atomic_fetch_add(&l->inflight, 1);
			if (blkdev_submit(l->disk, REQ_OP_READ, off,
					  l->bufs + (slot++ % URING_DEPTH) * BS,
					  BS, uring_done, l)) {
				atomic_fetch_sub(&l->inflight, 1);
				break;
			}
		}
		futex_wait(&l->inflight, URING_DEPTH);
	}
	while (atomic_load(&l->inflight))
		futex_wait(&l->inflight, atomic_load(&l->inflight));
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double sum(const double *v, unsigned int n)
{
	double s = 0;

	for (unsigned int i = 0; i < n; i++)
		s += v[i];
	return s;
}

#define URING_MAX_PAIRS 256

/* Who spends the process's CPU, by thread name (/proc/self/task). */
enum uring_who { W_LOAD, W_CQ, W_IOWQ, W_READER, W_OTHER, W_NR };
static const char *const uring_who_name[W_NR] = {
	"submitter", "completion", "io-wq", "trace-reader", "other",
};

static enum uring_who uring_who_of(const char *comm)
{
	if (!strncmp(comm, "uring-cq", 8))
		return W_CQ;
	if (!strncmp(comm, "iou-wrk", 7))
		return W_IOWQ;
	if (!strncmp(comm, "blktrace", 8))
		return W_READER;
	if (!strncmp(comm, "bt-load", 7))
		return W_LOAD;
	return W_OTHER;
}

/* Add (@sign 1) or take away (-1) each thread's CPU ns to @ns. */
static void uring_thread_cpu(double *ns, int sign)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300], comm[32] = "";
		unsigned long long run = 0;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* gone: its time is lost to both windows */
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &run) == 1)
			ns[uring_who_of(comm)] += sign * (double)run;
		fclose(f);
	}
	if (d)
		closedir(d);
}

struct uring_window {
	unsigned long ios;
	double iops, cpu_ns;
	double who_ns[W_NR]; /* CPU ns per I/O by thread */
};

/*
 * One window of the running load, traced or not. A traced window starts
 * the trace at its start and stops it at its end, and the stop writes
 * out every event recorded: the reader's work is all inside the window
 * that made it. Setup (the files, the reader thread) and teardown are
 * outside: a user pays them once per trace, not per event.
 */
static struct uring_window uring_window(struct uring_load *l, bool on,
					double secs)
{
	struct timespec nap = { (time_t)secs,
				(long)((secs - (double)(time_t)secs) * 1e9) };
	struct uring_window w = { 0 };
	uint64_t t0, c0, t, c;
	unsigned long d0, d;

	uring_thread_cpu(w.who_ns, -1);
	t0 = clk(CLOCK_MONOTONIC);
	c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
	d0 = atomic_load(&l->done);
	if (on && blk_trace_start(l->disk))
		exit(1);
	nanosleep(&nap, NULL);
	if (on)
		blk_trace_stop(l->disk);
	d = atomic_load(&l->done) - d0;
	t = clk(CLOCK_MONOTONIC) - t0;
	c = clk(CLOCK_PROCESS_CPUTIME_ID) - c0;
	uring_thread_cpu(w.who_ns, 1);
	w.ios = d;
	w.iops = (double)d * 1e9 / (double)t;
	w.cpu_ns = d ? (double)c / (double)d : 0;
	for (int k = 0; k < W_NR; k++)
		w.who_ns[k] = d ? w.who_ns[k] / (double)d : 0;
	return w;
}

/*
 * Traced and untraced windows in pairs, the order swapped from pair to
 * pair so that a drift of the machine cancels, the medians reported: on
 * two shared cores the load's IOPS move by a third from second to
 * second (the submitter, the completion thread and io_uring's workers
 * share them), and short windows in many pairs see through that better
 * than a few long runs. Untraced windows run with no trace set up at
 * all; the trace is set up before its window and torn down after.
 */
static void bench_uring(void)
{
	struct uring_load l = { .seed = 1234567 };
	struct blk_trace_stats st;
	char path[256], params[512], dir[256];
	double iops[2][URING_MAX_PAIRS], cpu[2][URING_MAX_PAIRS];
	double lost[URING_MAX_PAIRS], secs = seconds / 8;
	double who[2][W_NR][URING_MAX_PAIRS];
	unsigned int n = uring_pairs;
	uint64_t dropped = 0, events = 0;
	unsigned long ios = 0;
	pthread_t load;
	int fd;

	snprintf(path, sizeof(path), "%s/bench-blktrace-uring-XXXXXX",
		 trace_dir);
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 256ULL << 20)) {
		fprintf(stderr, "bench-blktrace: %s: %s\n", path,
			strerror(errno));
		return;
	}
	close(fd);
	snprintf(params, sizeof(params), "path=%s,depth=64", path);
	if (blkstack_dev_add("uring", "bturing", params, &l.disk)) {
		fprintf(stderr, "bench-blktrace: uring: %s\n",
			blkstack_errmsg());
		unlink(path);
		return;
	}
	l.bufs = aligned_alloc(4096, URING_DEPTH * BS);
	pthread_create(&load, NULL, uring_load_fn, &l);
	uring_window(&l, false, seconds / 2); /* warm up */
	for (unsigned int r = 0; r < n; r++) {
		for (int i = 0; i < 2; i++) {
			int on = (int)(r % 2) ^ i;
			bool traced = on && !uring_aa;
			struct uring_window w;

			if (traced &&
			    trace_setup(l.disk, 0, 0, dir, sizeof(dir)))
				exit(1);
			w = uring_window(&l, traced, secs);
			iops[on][r] = w.iops;
			cpu[on][r] = w.cpu_ns;
			for (int k = 0; k < W_NR; k++)
				who[on][k][r] = w.who_ns[k];
			if (traced) {
				trace_off(l.disk, dir, &st);
				dropped += st.dropped;
				events += st.events + st.dropped;
				ios += w.ios;
			}
		}
		lost[r] = 100.0 * (iops[0][r] - iops[1][r]) / iops[0][r];
	}
	atomic_store(&l.stop, true);
	pthread_join(load, NULL);
	printf("uring,tmpfs-4k-randread-qd32,iops_off,%.0f\n",
	       median(iops[0], n));
	printf("uring,tmpfs-4k-randread-qd32,iops_on,%.0f\n",
	       median(iops[1], n));
	printf("uring,tmpfs-4k-randread-qd32,iops_lost_pct,%.2f\n",
	       median(lost, n));
	printf("uring,tmpfs-4k-randread-qd32,iops_lost_pct_all,%.2f\n",
	       100.0 * (1 - sum(iops[1], n) / sum(iops[0], n)));
	printf("uring,tmpfs-4k-randread-qd32,cpu_ns_per_io_off,%.0f\n",
	       median(cpu[0], n));
	printf("uring,tmpfs-4k-randread-qd32,cpu_ns_per_io_on,%.0f\n",
	       median(cpu[1], n));
	for (int k = 0; k < W_NR; k++)
		for (int on = 0; on < 2; on++)
			printf("uring,tmpfs-4k-randread-qd32,"
			       "cpu_ns_per_io_%s_%s,%.0f\n",
			       on ? "on" : "off", uring_who_name[k],
			       median(who[on][k], n));
	printf("uring,tmpfs-4k-randread-qd32,events_per_io,%.2f\n",
	       ios ? (double)events / (double)ios : 0);
	printf("uring,tmpfs-4k-randread-qd32,pairs,%u\n", n);
	printf("uring,tmpfs-4k-randread-qd32,window_s,%.3f\n", secs);
	printf("uring,tmpfs-4k-randread-qd32,dropped,%llu\n",
	       (unsigned long long)dropped);
	blkstack_dev_del("bturing");
	blk_put_disk(l.disk);
	free(l.bufs);
	unlink(path);
}

/* ---- drops under unlimited load ---- */

#define FLOOD_THREADS 2
#define SWEEP_START_IOPS 10000
#define SWEEP_MIN_IOPS 500
#define SWEEP_BISECT 3

struct flood {
	struct gendisk *disk;
	_Atomic bool stop;
	_Atomic unsigned long ios;
	double iops; /* per thread; 0 = unlimited */
};

/* Paced: ahead of the schedule, sleep a millisecond; behind, catch up. */
static void flood_pace(struct flood *f, uint64_t t0, unsigned long done)
{
	struct timespec ms = { .tv_nsec = 1000000 };

	while (!atomic_load(&f->stop) &&
	       (double)done >= f->iops * (double)(clk(CLOCK_MONOTONIC) - t0) /
				       1e9)
		nanosleep(&ms, NULL);
}

static void *flood_fn(void *arg)
{
	struct flood *f = arg;
	char *buf = malloc(BS);
	uint64_t seed = (uint64_t)(uintptr_t)buf | 1,
		 t0 = clk(CLOCK_MONOTONIC);
	unsigned long done = 0;
	unsigned int batch = f->iops > 0 && f->iops < 64000 ? 1 : 64;

	while (!atomic_load(&f->stop)) {
		if (f->iops > 0)
			flood_pace(f, t0, done);
		sync_reads(f->disk, batch, &seed, buf);
		done += batch;
		atomic_fetch_add(&f->ios, batch);
	}
	free(buf);
	return NULL;
}

struct flood_result {
	double events_per_s, written_per_s;
	uint64_t events, dropped;
};

/* Trace @iops (total; 0 = unlimited) of FLOOD_THREADS readers a while. */
static void flood_traced(struct flood_result *res, uint32_t buf_size,
			 uint32_t buf_nr, double iops, double secs)
{
	struct flood f = { .iops = iops / FLOOD_THREADS };
	struct blk_trace_stats st;
	pthread_t th[FLOOD_THREADS];
	char dir[256];
	uint64_t t0;

	if (blkstack_dev_add("null", "btflood",
			     "size=1G,irqmode=0,"
			     "submit_queues=2",
			     &f.disk)) {
		fprintf(stderr, "bench-blktrace: %s\n", blkstack_errmsg());
		exit(1);
	}
	if (trace_on(f.disk, buf_size, buf_nr, dir, sizeof(dir)))
		exit(1);
	t0 = clk(CLOCK_MONOTONIC);
	for (int i = 0; i < FLOOD_THREADS; i++)
		pthread_create(&th[i], NULL, flood_fn, &f);
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&f.stop, true);
	for (int i = 0; i < FLOOD_THREADS; i++)
		pthread_join(th[i], NULL);
	secs = (double)(clk(CLOCK_MONOTONIC) - t0) / 1e9;
	trace_off(f.disk, dir, &st);
	res->events = st.events + st.dropped;
	res->dropped = st.dropped;
	res->events_per_s = (double)res->events / secs;
	res->written_per_s = (double)st.events / secs;
	blkstack_dev_del("btflood");
	blk_put_disk(f.disk);
}

static void bench_drops(const char *name, uint32_t buf_size, uint32_t buf_nr)
{
	struct flood_result res;

	flood_traced(&res, buf_size, buf_nr, 0, seconds);
	printf("drops,%s,events_per_s,%.0f\n", name, res.events_per_s);
	printf("drops,%s,written_events_per_s,%.0f\n", name,
	       res.written_per_s);
	printf("drops,%s,drops_per_million,%.1f\n", name,
	       res.events ? 1e6 * (double)res.dropped / (double)res.events
			  : 0.0);
}

/* One step of the sweep: true if it ran at its rate with 0 drops. */
static bool sweep_step(const char *name, uint32_t buf_size, uint32_t buf_nr,
		       double iops, double *best, bool *short_of_rate)
{
	struct flood_result res;
	double secs = seconds / 2 > 0.5 ? seconds / 2 : 0.5;

	flood_traced(&res, buf_size, buf_nr, iops, secs);
	printf("sweep,%s@%.0fiops,events_per_s,%.0f\n", name, iops,
	       res.events_per_s);
	printf("sweep,%s@%.0fiops,dropped,%llu\n", name, iops,
	       (unsigned long long)res.dropped);
	fflush(stdout);
	/* ~4 events per read: compare I/O rates through the events */
	*short_of_rate = res.events_per_s < 0.9 * iops * 4 && res.events;
	if (res.dropped)
		return false;
	if (res.events_per_s > *best)
		*best = res.events_per_s;
	return true;
}

/*
 * The highest event rate traced with 0 drops: from SWEEP_START_IOPS,
 * double the paced rate until a step drops (or the machine falls short
 * of the rate), or halve it until one does not (down to SWEEP_MIN_IOPS);
 * then bisect between the last clean step and the first dropping one.
 */
static void bench_sweep(const char *name, uint32_t buf_size, uint32_t buf_nr)
{
	double lo = 0, hi = 0, best = 0, iops = SWEEP_START_IOPS;
	bool short_of_rate = false;

	if (sweep_step(name, buf_size, buf_nr, iops, &best, &short_of_rate)) {
		for (lo = iops; !short_of_rate && !hi; iops *= 2)
			if (sweep_step(name, buf_size, buf_nr, iops * 2, &best,
				       &short_of_rate))
				lo = iops * 2;
			else
				hi = iops * 2;
	} else {
		for (hi = iops; !lo && hi / 2 >= SWEEP_MIN_IOPS; hi /= 2)
			if (sweep_step(name, buf_size, buf_nr, hi / 2, &best,
				       &short_of_rate))
				lo = hi / 2;
		if (lo)
			hi = lo * 2;
	}
	for (int i = 0; hi && lo && i < SWEEP_BISECT; i++) {
		double mid = (lo + hi) / 2;

		if (sweep_step(name, buf_size, buf_nr, mid, &best,
			       &short_of_rate))
			lo = mid;
		else
			hi = mid;
	}
	printf("sweep,%s,max_events_per_s_0_drops,%.0f\n", name, best);
	printf("sweep,%s,max_paced_iops_0_drops,%.0f\n", name, lo);
	/* 1: no step dropped before the machine ran out of I/O */
	printf("sweep,%s,limited_by_machine,%d\n", name, !hi);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
			uring_pairs = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ios") && i + 1 < argc)
			cost_ios = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			trace_dir = argv[++i];
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--aa"))
			uring_aa = true;
		else if (!strcmp(argv[i], "--nofiles"))
			no_files = true;
		else {
			fprintf(stderr,
				"usage: bench-blktrace [--rounds N] "
				"[--pairs N] [--ios N] [--seconds S] "
				"[--dir TMPFS_DIR] "
				"[--only cost|uring|drops|sweep] [--aa] "
				"[--nofiles]\n"
				"  --pairs N  uring: pairs of windows (default "
				"200)\n"
				"  --aa       uring: trace neither window of a "
				"pair (the method's own noise)\n"
				"  --nofiles  uring: trace without output files "
				"(what writing them costs)\n");
			return 2;
		}
	}
	if (!rounds || !cost_ios || seconds <= 0) {
		fprintf(stderr, "bench-blktrace: --rounds, --ios and --seconds "
				"must be positive\n");
		return 2;
	}
	if (!uring_pairs || uring_pairs > URING_MAX_PAIRS) {
		fprintf(stderr, "bench-blktrace: --pairs %u: valid values are "
				"1..%d\n", uring_pairs, URING_MAX_PAIRS);
		return 2;
	}
	printf("test,config,metric,value\n");
	if (!only || !strcmp(only, "cost"))
		bench_cost();
	if (!only || !strcmp(only, "uring"))
		bench_uring();
	if (!only || !strcmp(only, "drops")) {
		bench_drops("default-512KiBx4", 0, 0);
		bench_drops("small-4KiBx2", 4096, 2);
		/* what the reader keeps up with when no file is written */
		no_files = true;
		bench_drops("default-512KiBx4-nofiles", 0, 0);
		no_files = false;
	}
	if (!only || !strcmp(only, "sweep")) {
		bench_sweep("default-512KiBx4", 0, 0);
		bench_sweep("small-4KiBx2", 4096, 2);
	}
	return 0;
}
