// SPDX-License-Identifier: MIT
/*
 * Tag allocation throughput: get+put pairs per second with 1 and 2 threads,
 * for our sbitmap_queue (__sbitmap_queue_get + sbitmap_queue_clear) against
 * two simple allocators of the same kind:
 *
 *	mutex_bitmap	a bitmap of the same depth under one pthread mutex,
 *			find-first-zero under the lock
 *	atomic_word	one 64-bit word, find-first-zero plus a CAS loop
 *
 * Each case runs --trials timed trials (default 3) sharing --seconds
 * (default 1) and reports the median. The machine is small and shared, so a
 * trial in which some thread spent over 10% of it runnable but waiting for
 * a CPU (another process had it; /proc/thread-self/schedstat) is thrown
 * away and run again, up to 5 times; a note goes to stderr. Blocking on
 * the mutex is not counted: that is the mutex's cost. Output is CSV on
 * stdout:
 *
 *	impl,threads,ops_per_sec,ns_per_op
 *
 * ops_per_sec counts get+put pairs by all threads together; ns_per_op is
 * the time one thread spends on one pair (threads / ops_per_sec).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/sbitmap.h"

#define MAX_THREADS	2
#define STOP_CHECK	64	/* pairs between looks at the stop flag */
#define MAX_RQ_WAIT	0.1	/* share of a trial spent waiting for a CPU */
#define MAX_ATTEMPTS	5

struct bench_impl;

struct bench {
	const struct bench_impl *impl;
	unsigned int depth;
	_Atomic bool stop;
	pthread_barrier_t start;
	/* the allocators; only the one under test is set up */
	struct sbitmap_queue sbq;
	pthread_mutex_t lock;
	unsigned long *bits;
	_Atomic unsigned long word ____cacheline_aligned;
};

struct bench_impl {
	const char *name;
	int (*init)(struct bench *b);
	void (*exit)(struct bench *b);
	int (*get)(struct bench *b);
	void (*put)(struct bench *b, int nr);
};

/* ---- sbitmap_queue ---- */

static int sbq_init(struct bench *b)
{
	return sbitmap_queue_init(&b->sbq, b->depth, -1, false);
}

static void sbq_exit(struct bench *b)
{
	sbitmap_queue_free(&b->sbq);
}

static int sbq_get(struct bench *b)
{
	return __sbitmap_queue_get(&b->sbq);
}

static void sbq_put(struct bench *b, int nr)
{
	sbitmap_queue_clear(&b->sbq, nr);
}

/* ---- mutex-guarded bitmap ---- */

static int mb_init(struct bench *b)
{
	b->bits = calloc(DIV_ROUND_UP(b->depth, BITS_PER_LONG),
			 sizeof(*b->bits));
	if (!b->bits)
		return -1;
	return pthread_mutex_init(&b->lock, NULL);
}

static void mb_exit(struct bench *b)
{
	pthread_mutex_destroy(&b->lock);
	free(b->bits);
}

static int mb_get(struct bench *b)
{
	unsigned int i, n = DIV_ROUND_UP(b->depth, BITS_PER_LONG);
	int nr = -1;

	pthread_mutex_lock(&b->lock);
	for (i = 0; i < n; i++) {
		unsigned long avail = ~b->bits[i];
		unsigned int bit;

		if (!avail)
			continue;
		bit = __builtin_ctzl(avail);
		if (i * BITS_PER_LONG + bit >= b->depth)
			break;
		b->bits[i] |= 1UL << bit;
		nr = i * BITS_PER_LONG + bit;
		break;
	}
	pthread_mutex_unlock(&b->lock);
	return nr;
}

static void mb_put(struct bench *b, int nr)
{
	pthread_mutex_lock(&b->lock);
	b->bits[nr / BITS_PER_LONG] &= ~(1UL << (nr % BITS_PER_LONG));
	pthread_mutex_unlock(&b->lock);
}

/* ---- one atomic word ---- */

static int aw_init(struct bench *b)
{
	atomic_init(&b->word, 0);
	return 0;
}

static void aw_exit(struct bench *b)
{
}

static int aw_get(struct bench *b)
{
	unsigned long old = atomic_load_explicit(&b->word,
						 memory_order_relaxed);
	unsigned long bit;

	do {
		if (old == ~0UL)
			return -1;
		bit = ~old & (old + 1);	/* lowest zero bit */
	} while (!atomic_compare_exchange_weak(&b->word, &old, old | bit));
	return __builtin_ctzl(bit);
}

static void aw_put(struct bench *b, int nr)
{
	atomic_fetch_and(&b->word, ~(1UL << nr));
}

static const struct bench_impl impls[] = {
	{ "sbitmap_queue", sbq_init, sbq_exit, sbq_get, sbq_put },
	{ "mutex_bitmap", mb_init, mb_exit, mb_get, mb_put },
	{ "atomic_word", aw_init, aw_exit, aw_get, aw_put },
};

/* ---- driver ---- */

struct worker {
	struct bench *b;
	unsigned long ops;
	double rq_wait;	/* seconds runnable but not running */
	pthread_t tid;
};

/* Run-queue wait of this thread so far, in seconds; 0 if unknown. */
static double thread_rq_wait_sec(void)
{
	unsigned long long run, wait;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%llu %llu", &run, &wait);
	fclose(f);
	return n == 2 ? wait / 1e9 : 0;
}

static void *bench_worker(void *p)
{
	struct worker *w = p;
	struct bench *b = w->b;
	const struct bench_impl *impl = b->impl;
	unsigned long ops = 0;
	unsigned int i;
	double rq_wait;

	pthread_barrier_wait(&b->start);
	rq_wait = thread_rq_wait_sec();
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		for (i = 0; i < STOP_CHECK; i++) {
			int nr = impl->get(b);

			if (nr < 0)
				continue;	/* full: cannot happen here */
			impl->put(b, nr);
			ops++;
		}
	}
	w->ops = ops;
	w->rq_wait = thread_rq_wait_sec() - rq_wait;
	return NULL;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * One timed trial; returns pairs per second, or a negative on error.
 * *@waited is the largest share of it any thread spent waiting for a CPU.
 */
static double bench_trial(const struct bench_impl *impl, unsigned int depth,
			  unsigned int threads, double seconds, double *waited)
{
	struct worker w[MAX_THREADS];
	struct bench *b;
	unsigned long ops = 0;
	double start, el;
	unsigned int i;

	if (posix_memalign((void **)&b, SMP_CACHE_BYTES, sizeof(*b)))
		return -1;
	memset(b, 0, sizeof(*b));
	b->impl = impl;
	b->depth = depth;
	if (impl->init(b)) {
		free(b);
		return -1;
	}
	pthread_barrier_init(&b->start, NULL, threads + 1);
	for (i = 0; i < threads; i++) {
		w[i].b = b;
		pthread_create(&w[i].tid, NULL, bench_worker, &w[i]);
	}
	pthread_barrier_wait(&b->start);
	start = now_sec();
	usleep(seconds * 1e6);
	atomic_store(&b->stop, true);
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		ops += w[i].ops;
	}
	el = now_sec() - start;
	*waited = 0;
	for (i = 0; i < threads; i++)
		*waited = max(*waited, w[i].rq_wait / el);

	pthread_barrier_destroy(&b->start);
	impl->exit(b);
	free(b);
	return ops / el;
}

/* A trial, run again while the machine was too busy to give it the CPUs. */
static double bench_case(const struct bench_impl *impl, unsigned int depth,
			 unsigned int threads, double seconds)
{
	double ops = -1, waited = 0;
	int attempt;

	for (attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		ops = bench_trial(impl, depth, threads, seconds, &waited);
		if (ops < 0 || waited <= MAX_RQ_WAIT)
			return ops;
	}
	fprintf(stderr, "note: %s/%u threads: a thread waited %.0f%% of the "
		"trial for a CPU after %d attempts; machine busy, result is "
		"unreliable\n", impl->name, threads, waited * 100,
		MAX_ATTEMPTS);
	return ops;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--seconds S] [--trials N] [--depth D]\n"
		"  S seconds per case (default 1), split over N trials "
		"(default 3,\n  median reported); D bits (default 256; the "
		"atomic_word case is\n  always one 64-bit word)\n", prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "trials", required_argument, NULL, 't' },
		{ "depth", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double seconds = 1.0, res[16];
	unsigned int depth = 256, trials = 3, threads, i, k;
	int c;

	while ((c = getopt_long(argc, argv, "s:t:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			seconds = atof(optarg);
			break;
		case 't':
			trials = atoi(optarg);
			break;
		case 'd':
			depth = atoi(optarg);
			break;
		default:
			usage(argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || trials < 1 || trials > ARRAY_SIZE(res) ||
	    depth < 1 || depth > 1U << 20) {
		usage(argv[0]);
		return 2;
	}

	printf("impl,threads,ops_per_sec,ns_per_op\n");
	for (threads = 1; threads <= MAX_THREADS; threads++) {
		for (i = 0; i < ARRAY_SIZE(impls); i++) {
			unsigned int d = impls[i].get == aw_get ?
					 BITS_PER_LONG : depth;
			double ops;

			for (k = 0; k < trials; k++) {
				res[k] = bench_case(&impls[i], d, threads,
						    seconds / trials);
				if (res[k] < 0) {
					fprintf(stderr, "%s: setup failed\n",
						impls[i].name);
					return 1;
				}
			}
			qsort(res, trials, sizeof(res[0]), cmp_double);
			ops = res[trials / 2];
			printf("%s,%u,%.0f,%.1f\n", impls[i].name, threads, ops,
			       threads * 1e9 / ops);
			fflush(stdout);
		}
	}
	return 0;
}
