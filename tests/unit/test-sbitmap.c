// SPDX-License-Identifier: MIT
/*
 * Unit and stress tests for lib/sbitmap.c.
 *
 * The unit part checks the sbitmap contract single-threaded. The stress part
 * runs many threads against small depths, allocating with the sleep protocol
 * (or blk-mq's callback waiter) when the map is full, and checks that no bit
 * is ever held twice, that every operation completes, and that nobody
 * sleeps forever: a watchdog fails the test if progress stops.
 *
 * Exit 0 on success, 1 on any failure (the message names the check).
 * SBITMAP_STRESS_SECONDS sets the time per stress configuration (a soak);
 * SANITIZER (or a sanitizer build) scales iterations down.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/sbitmap.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SAN_BUILD 1
#endif
#endif
#ifndef SAN_BUILD
#define SAN_BUILD 0
#endif

static int failures;
static bool slow;	/* sanitizer build: fewer iterations, longer watchdog */

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "FAIL %s:%d: %s: ", __func__,	\
				__LINE__, #cond);			\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			failures++;					\
		}							\
	} while (0)

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* ---- sbitmap, single-threaded ---- */

static void test_init_shift(void)
{
	static const struct {
		unsigned int depth, shift, map_nr;
	} cases[] = {
		{ 0, 6, 0 }, { 1, 6, 1 }, { 3, 6, 1 }, { 4, 0, 4 },
		{ 7, 0, 7 }, { 8, 1, 4 }, { 63, 3, 8 }, { 64, 4, 4 },
		{ 65, 4, 5 }, { 256, 6, 4 }, { 4096, 6, 64 },
	};
	struct sbitmap sb;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		CHECK(sbitmap_init(&sb, cases[i].depth, -1, false) == 0,
		      "depth %u", cases[i].depth);
		CHECK(sb.shift == cases[i].shift, "depth %u: shift %u, want %u",
		      cases[i].depth, sb.shift, cases[i].shift);
		CHECK(sb.map_nr == cases[i].map_nr,
		      "depth %u: map_nr %u, want %u", cases[i].depth,
		      sb.map_nr, cases[i].map_nr);
		CHECK(((uintptr_t)sb.map % SMP_CACHE_BYTES) == 0,
		      "depth %u: map not cache-line aligned", cases[i].depth);
		CHECK(sb.nr_hints >= 1 && sb.alloc_hint, "hints");
		sbitmap_free(&sb);
	}
	CHECK(sizeof(struct sbitmap_word) % SMP_CACHE_BYTES == 0,
	      "sbitmap_word is %zu bytes", sizeof(struct sbitmap_word));
	CHECK(offsetof(struct sbitmap_word, cleared) >= SMP_CACHE_BYTES,
	      "->cleared shares ->word's cache line");
	CHECK(sbitmap_init(&sb, 100, 7, false) == -EINVAL, "shift 7");
	CHECK(sbitmap_init(&sb, 10, 0, false) == 0, "explicit shift 0");
	CHECK(sb.map_nr == 10, "shift 0: map_nr %u", sb.map_nr);
	sbitmap_free(&sb);

	/* depth 0 is a valid, always-full map */
	CHECK(sbitmap_init(&sb, 0, -1, false) == 0, "depth 0");
	CHECK(sbitmap_get(&sb) == -1, "depth 0 get");
	CHECK(sbitmap_get_shallow(&sb, 1) == -1, "depth 0 shallow get");
	CHECK(sbitmap_weight(&sb) == 0 && !sbitmap_any_bit_set(&sb), "depth 0");
	sbitmap_free(&sb);
}

/* Fill the map, checking every bit is new and in range, then empty it. */
static void fill_and_check(unsigned int depth, int shift, bool rr)
{
	struct sbitmap sb;
	unsigned char *seen = calloc(depth + 1, 1);
	unsigned int n = 0;
	int nr;

	CHECK(sbitmap_init(&sb, depth, shift, rr) == 0, "init %u", depth);
	while ((nr = sbitmap_get(&sb)) >= 0) {
		CHECK((unsigned int)nr < depth, "depth %u: got %d", depth, nr);
		if ((unsigned int)nr >= depth)
			break;
		CHECK(!seen[nr], "depth %u: bit %d handed out twice", depth,
		      nr);
		seen[nr] = 1;
		n++;
	}
	CHECK(n == depth, "depth %u shift %d rr %d: %u bits before full",
	      depth, shift, rr, n);
	CHECK(sbitmap_get(&sb) == -1, "depth %u: full map gave a bit", depth);
	CHECK(sbitmap_weight(&sb) == depth, "depth %u: weight %u", depth,
	      sbitmap_weight(&sb));

	if (depth) {
		/* a plain clear is reused at once */
		sbitmap_clear_bit(&sb, depth / 2);
		CHECK(!sbitmap_test_bit(&sb, depth / 2), "clear_bit");
		CHECK(sbitmap_get(&sb) == (int)(depth / 2),
		      "reuse after clear");
		/* a deferred clear is folded back when the word looks full */
		sbitmap_deferred_clear_bit(&sb, depth - 1);
		CHECK(!sbitmap_test_bit(&sb, depth - 1), "deferred clear test");
		CHECK(sbitmap_weight(&sb) == depth - 1,
		      "weight after deferred");
		CHECK(sbitmap_get(&sb) == (int)(depth - 1),
		      "reuse after deferred clear");
		CHECK(sbitmap_get(&sb) == -1, "full again");
	}
	for (n = 0; n < depth; n++)
		sbitmap_deferred_clear_bit(&sb, n);
	CHECK(sbitmap_weight(&sb) == 0 && !sbitmap_any_bit_set(&sb),
	      "depth %u: weight %u after freeing all", depth,
	      sbitmap_weight(&sb));
	sbitmap_free(&sb);
	free(seen);
}

static void test_fill(void)
{
	static const unsigned int depths[] = { 1, 2, 7, 63, 64, 65, 100, 4096 };
	unsigned int i;
	int shift;

	for (i = 0; i < ARRAY_SIZE(depths); i++) {
		fill_and_check(depths[i], -1, false);
		fill_and_check(depths[i], -1, true);
	}
	for (shift = 0; shift <= 6; shift++)
		fill_and_check(100, shift, shift & 1);
}

static void test_deferred(void)
{
	struct sbitmap sb;
	unsigned int i;

	sbitmap_init(&sb, 64, 6, false);
	for (i = 0; i < 64; i++)
		sbitmap_get(&sb);
	sbitmap_deferred_clear_bit(&sb, 5);
	sbitmap_deferred_clear_bit(&sb, 9);
	CHECK(atomic_load(&sb.map[0].word) == ~0UL,
	      "deferred clear touched ->word");
	CHECK(atomic_load(&sb.map[0].cleared) == ((1UL << 5) | (1UL << 9)),
	      "->cleared %#lx", atomic_load(&sb.map[0].cleared));
	CHECK(sbitmap_weight(&sb) == 62, "weight %u", sbitmap_weight(&sb));
	CHECK(!sbitmap_test_bit(&sb, 5) && sbitmap_test_bit(&sb, 6),
	      "test_bit");
	i = sbitmap_get(&sb);
	CHECK(i == 5 || i == 9, "get after deferred clear gave %u", i);
	CHECK(atomic_load(&sb.map[0].cleared) == 0, "->cleared not folded");
	CHECK(sbitmap_get(&sb) == (i == 5 ? 9 : 5), "second folded bit");
	CHECK(sbitmap_get(&sb) == -1, "full");
	sbitmap_free(&sb);
}

static void test_shallow(void)
{
	struct sbitmap sb;
	unsigned int n = 0;
	int nr;

	sbitmap_init(&sb, 64, 4, false);	/* 4 words of 16 */
	while ((nr = sbitmap_get_shallow(&sb, 3)) >= 0) {
		CHECK((nr & 15) < 3, "shallow 3 gave bit %d", nr);
		n++;
	}
	CHECK(n == 12, "shallow 3 over 4 words gave %u bits", n);
	/* the rest of each word is still there for full-depth callers */
	n = 0;
	while (sbitmap_get(&sb) >= 0)
		n++;
	CHECK(n == 52, "full depth after shallow gave %u", n);
	sbitmap_free(&sb);

	sbitmap_init(&sb, 40, 4, false);	/* last word has 8 bits */
	n = 0;
	while ((nr = sbitmap_get_shallow(&sb, 100)) >= 0)
		n++;
	CHECK(n == 40, "shallow above word size gave %u of 40", n);
	sbitmap_free(&sb);
}

static void test_resize(void)
{
	struct sbitmap sb;
	unsigned int n = 0;
	int nr;

	sbitmap_init(&sb, 64, -1, false);
	sbitmap_resize(&sb, 10);
	CHECK(sb.depth == 10 && sb.map_nr == 1, "depth %u map_nr %u",
	      sb.depth, sb.map_nr);
	while ((nr = sbitmap_get(&sb)) >= 0) {
		CHECK(nr < 10, "shrunk map gave bit %d", nr);
		n++;
	}
	CHECK(n == 10, "shrunk map gave %u bits", n);
	/* a bit freed while shrunk is folded back on the way up */
	sbitmap_deferred_clear_bit(&sb, 3);
	sbitmap_resize(&sb, 64);
	CHECK(sbitmap_weight(&sb) == 9, "weight after grow %u",
	      sbitmap_weight(&sb));
	n = 0;
	while (sbitmap_get(&sb) >= 0)
		n++;
	CHECK(n == 55, "grown map gave %u more bits", n);
	sbitmap_resize(&sb, 1000);
	CHECK(sb.depth == 64 && sb.map_nr == sb.map_alloc,
	      "grow past allocation: depth %u", sb.depth);
	sbitmap_resize(&sb, 0);
	CHECK(sbitmap_get(&sb) == -1, "depth 0 after resize");
	sbitmap_free(&sb);
}

struct collect {
	unsigned int bits[16];
	unsigned int n, stop_after;
};

static bool collect_bit(struct sbitmap *sb, unsigned int bitnr, void *data)
{
	struct collect *c = data;

	if (c->n < ARRAY_SIZE(c->bits))
		c->bits[c->n] = bitnr;
	c->n++;
	return c->n != c->stop_after;
}

static void test_for_each_weight(void)
{
	static const unsigned int set[] = { 0, 3, 17, 63, 64, 200, 255 };
	struct collect c = { .stop_after = 0 };
	struct sbitmap sb;
	unsigned int i;

	sbitmap_init(&sb, 256, -1, false);
	CHECK(!sbitmap_any_bit_set(&sb), "empty map has bits");
	for (i = ARRAY_SIZE(set); i-- > 0;)
		sbitmap_set_bit(&sb, set[i]);
	sbitmap_set_bit(&sb, 100);
	sbitmap_deferred_clear_bit(&sb, 100);	/* excluded everywhere */
	CHECK(sbitmap_weight(&sb) == ARRAY_SIZE(set), "weight %u",
	      sbitmap_weight(&sb));
	CHECK(sbitmap_any_bit_set(&sb), "any_bit_set");
	sbitmap_for_each_set(&sb, collect_bit, &c);
	CHECK(c.n == ARRAY_SIZE(set), "visited %u bits", c.n);
	for (i = 0; i < ARRAY_SIZE(set) && i < c.n; i++)
		CHECK(c.bits[i] == set[i], "visit %u was bit %u, want %u", i,
		      c.bits[i], set[i]);

	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	sbitmap_for_each_set(&sb, collect_bit, &c);
	CHECK(c.n == 3 && c.bits[2] == 17, "early stop after %u", c.n);
	sbitmap_free(&sb);
}

static void test_round_robin(void)
{
	struct sbitmap sb;
	int i, nr;

	/* each get starts after the previous one, even though bits free up */
	sbitmap_init(&sb, 8, -1, true);
	for (i = 0; i < 20; i++) {
		nr = sbitmap_get(&sb);
		CHECK(nr == i % 8, "round-robin get %d gave %d", i, nr);
		if (nr >= 0)
			sbitmap_clear_bit(&sb, nr);
	}
	sbitmap_free(&sb);

	/*
	 * A search never wraps inside a word, but the free bit below the
	 * hint in the hint's own word is still found once all else is full.
	 */
	sbitmap_init(&sb, 8, 2, true);	/* 2 words of 4 */
	for (i = 0; i < 7; i++)
		sbitmap_get(&sb);
	sbitmap_clear_bit(&sb, 5);
	sbitmap_set_bit(&sb, 7);	/* the hint now points at a held bit */
	nr = sbitmap_get(&sb);
	CHECK(nr == 5, "round-robin found %d, want 5", nr);
	CHECK(sbitmap_get(&sb) == -1, "round-robin full");
	sbitmap_free(&sb);
}

/* ---- sbitmap_queue, single-threaded ---- */

static void test_wake_batch(void)
{
	static const struct {
		unsigned int depth, batch;
	} cases[] = {
		{ 1, 1 }, { 7, 1 }, { 16, 2 }, { 24, 3 }, { 64, 8 },
		{ 256, 8 }, { 4096, 8 },
	};
	struct sbitmap_queue sbq;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		sbitmap_queue_init(&sbq, cases[i].depth, -1, false);
		CHECK(sbq.wake_batch == cases[i].batch,
		      "depth %u: wake_batch %u, want %u", cases[i].depth,
		      sbq.wake_batch, cases[i].batch);
		sbitmap_queue_free(&sbq);
	}
	sbitmap_queue_init(&sbq, 64, -1, false);	/* 4 words of 16 */
	sbitmap_queue_min_shallow_depth(&sbq, 2);
	CHECK(sbq.wake_batch == 1, "shallow 2: wake_batch %u", sbq.wake_batch);
	sbitmap_queue_min_shallow_depth(&sbq, 16);
	CHECK(sbq.wake_batch == 8, "shallow 16: wake_batch %u", sbq.wake_batch);
	sbitmap_queue_resize(&sbq, 16);
	CHECK(sbq.wake_batch == 2, "resized: wake_batch %u", sbq.wake_batch);
	sbitmap_queue_free(&sbq);
}

static void test_batch_get_clear(void)
{
	struct sbitmap_queue sbq;
	unsigned long mask;
	unsigned int offset, total = 0, i;
	int tags[64], n;

	sbitmap_queue_init(&sbq, 64, -1, false);
	while ((mask = __sbitmap_queue_get_batch(&sbq, 6, &offset))) {
		CHECK(__builtin_popcountl(mask) <= 6, "batch of %d",
		      __builtin_popcountl(mask));
		for (i = 0; i < BITS_PER_LONG; i++) {
			if (!(mask & (1UL << i)))
				continue;
			CHECK(sbitmap_test_bit(&sbq.sb, offset + i),
			      "batch bit %u not set", offset + i);
			total++;
		}
	}
	CHECK(total == 64, "batches gave %u of 64 bits", total);
	CHECK(__sbitmap_queue_get(&sbq) == -1, "full after batches");

	/* free one word's worth in one call, plus strays from two others */
	n = 0;
	for (i = 16; i < 32; i++)
		tags[n++] = i + 1000;
	tags[n++] = 3 + 1000;
	tags[n++] = 50 + 1000;
	sbitmap_queue_clear_batch(&sbq, 1000, tags, n);
	CHECK(sbitmap_weight(&sbq.sb) == 64 - 18, "weight %u after clear_batch",
	      sbitmap_weight(&sbq.sb));
	CHECK(!sbitmap_test_bit(&sbq.sb, 3) && !sbitmap_test_bit(&sbq.sb, 50),
	      "clear_batch strays");
	mask = __sbitmap_queue_get_batch(&sbq, 64, &offset);
	CHECK(mask && offset <= 50, "batch after clear: %#lx at %u", mask,
	      offset);
	sbitmap_queue_free(&sbq);

	sbitmap_queue_init(&sbq, 64, -1, true);
	CHECK(__sbitmap_queue_get_batch(&sbq, 4, &offset) == 0,
	      "round-robin batch");
	sbitmap_queue_free(&sbq);
}

static void test_wait_ptr(void)
{
	struct sbitmap_queue sbq;
	_Atomic unsigned int idx = 0;
	int i;

	sbitmap_queue_init(&sbq, 8, -1, false);
	for (i = 0; i < 2 * SBQ_WAIT_QUEUES + 1; i++) {
		struct sbq_wait_state *ws = sbq_wait_ptr(&sbq, &idx);

		CHECK(ws == &sbq.ws[i % SBQ_WAIT_QUEUES],
		      "wait_ptr %d gave %td", i, ws - sbq.ws);
	}
	sbitmap_queue_free(&sbq);
}

struct freer_arg {
	struct sbitmap_queue *sbq;
	int bit;
	unsigned int delay_us;
};

static void *freer(void *p)
{
	struct freer_arg *a = p;

	usleep(a->delay_us);
	sbitmap_queue_clear(a->sbq, a->bit);
	return NULL;
}

static void test_sleep_protocol(void)
{
	struct freer_arg fa;
	struct sbitmap_queue sbq;
	struct sbq_wait_state *ws;
	struct sbq_wait w;
	pthread_t t;
	int nr;

	sbitmap_queue_init(&sbq, 1, -1, false);
	sbq_wait_init(&w);
	nr = __sbitmap_queue_get(&sbq);
	CHECK(nr == 0, "first get %d", nr);

	/* nobody frees: the timed wait times out */
	ws = &sbq.ws[0];
	sbitmap_prepare_to_wait(&sbq, ws, &w);
	CHECK(atomic_load(&sbq.ws_active) == 1, "ws_active after prepare");
	CHECK(__sbitmap_queue_get(&sbq) == -1, "full");
	CHECK(!sbitmap_wait_timeout(&w, 10 * 1000 * 1000), "timed out");
	sbitmap_finish_wait(&sbq, ws, &w);
	CHECK(atomic_load(&sbq.ws_active) == 0, "ws_active after finish");
	CHECK(atomic_load(&ws->nr_waiters) == 0, "still listed");

	/* a wake between prepare and sleep is not lost */
	sbitmap_prepare_to_wait(&sbq, ws, &w);
	sbitmap_queue_clear(&sbq, 0);
	CHECK(atomic_load(&w.woken), "free did not wake the waiter");
	sbitmap_wait(&w);	/* returns at once */
	sbitmap_finish_wait(&sbq, ws, &w);
	CHECK(__sbitmap_queue_get(&sbq) == 0, "get after wake");

	/* a free from another thread wakes a sleeper */
	fa = (struct freer_arg){ &sbq, 0, 20000 };
	sbitmap_prepare_to_wait(&sbq, ws, &w);
	pthread_create(&t, NULL, freer, &fa);
	CHECK(sbitmap_wait_timeout(&w, 5LL * 1000 * 1000 * 1000),
	      "sleeper not woken by free");
	sbitmap_finish_wait(&sbq, ws, &w);
	pthread_join(t, NULL);
	CHECK(atomic_load(&sbq.ws_active) == 0, "ws_active %d",
	      atomic_load(&sbq.ws_active));

	sbq_wait_destroy(&w);
	sbitmap_queue_free(&sbq);
}

struct cb_waiter {
	struct sbq_wait w;
	_Atomic int calls;
	sem_t sem;
};

static bool cb_count(struct sbq_wait *w)
{
	struct cb_waiter *c = container_of(w, struct cb_waiter, w);

	atomic_fetch_add(&c->calls, 1);
	return true;
}

static void cb_init(struct cb_waiter *c, bool (*func)(struct sbq_wait *))
{
	sbq_wait_init(&c->w);
	c->w.func = func;
	atomic_init(&c->calls, 0);
	sem_init(&c->sem, 0, 0);
}

static void cb_destroy(struct cb_waiter *c)
{
	sbq_wait_destroy(&c->w);
	sem_destroy(&c->sem);
}

static void test_callback_waiter(void)
{
	struct sbitmap_queue sbq;
	struct cb_waiter c;

	sbitmap_queue_init(&sbq, 1, -1, false);
	cb_init(&c, cb_count);
	__sbitmap_queue_get(&sbq);

	sbitmap_add_wait_queue(&sbq, &sbq.ws[2], &c.w);
	sbitmap_add_wait_queue(&sbq, &sbq.ws[3], &c.w);	/* already on */
	CHECK(atomic_load(&sbq.ws_active) == 1, "ws_active %d",
	      atomic_load(&sbq.ws_active));
	CHECK(c.w.ws == &sbq.ws[2], "added twice");
	sbitmap_queue_clear(&sbq, 0);
	CHECK(atomic_load(&c.calls) == 1, "callback ran %d times",
	      atomic_load(&c.calls));
	CHECK(!c.w.ws && atomic_load(&sbq.ws_active) == 0,
	      "woken callback still counted");
	sbitmap_del_wait_queue(&c.w);	/* already off: harmless */
	CHECK(atomic_load(&sbq.ws_active) == 0, "del after wake");

	__sbitmap_queue_get(&sbq);
	sbitmap_add_wait_queue(&sbq, &sbq.ws[0], &c.w);
	sbitmap_del_wait_queue(&c.w);
	CHECK(atomic_load(&sbq.ws_active) == 0, "del: ws_active");
	sbitmap_queue_clear(&sbq, 0);
	CHECK(atomic_load(&c.calls) == 1, "removed callback ran");

	cb_destroy(&c);
	sbitmap_queue_free(&sbq);
}

struct sleeper_arg {
	struct sbitmap_queue *sbq;
	struct sbq_wait w;
	struct sbq_wait_state *ws;
	_Atomic int listed;
	bool woken;
	int nr;
};

static void *sleeper(void *p)
{
	struct sleeper_arg *a = p;

	sbitmap_prepare_to_wait(a->sbq, a->ws, &a->w);
	atomic_store(&a->listed, 1);
	a->nr = __sbitmap_queue_get(a->sbq);
	a->woken = a->nr >= 0 ||
		   sbitmap_wait_timeout(&a->w, 5LL * 1000 * 1000 * 1000);
	sbitmap_finish_wait(a->sbq, a->ws, &a->w);
	return NULL;
}

/*
 * The case the kernel's batching alone gets wrong: wake-ups consumed by
 * callback waiters that take no bit, leaving a sleeper behind on an idle
 * map. 64 callbacks queue ahead of the sleeper; the 64 frees make 8 batches
 * of 8 wake-ups, all spent on callbacks. The sleeper must still wake.
 */
static void test_no_stranded_sleeper(void)
{
	struct cb_waiter cbs[64];
	struct sleeper_arg s = { 0 };
	struct sbitmap_queue sbq;
	_Atomic unsigned int idx = 0;
	pthread_t t;
	int i, calls = 0;

	sbitmap_queue_init(&sbq, 64, -1, false);
	CHECK(sbq.wake_batch == 8, "wake_batch %u", sbq.wake_batch);
	for (i = 0; i < 64; i++)
		__sbitmap_queue_get(&sbq);
	for (i = 0; i < 64; i++) {
		cb_init(&cbs[i], cb_count);
		sbitmap_add_wait_queue(&sbq, sbq_wait_ptr(&sbq, &idx),
				       &cbs[i].w);
	}
	s.sbq = &sbq;
	s.ws = sbq_wait_ptr(&sbq, &idx);
	sbq_wait_init(&s.w);
	pthread_create(&t, NULL, sleeper, &s);
	while (!atomic_load(&s.listed))
		usleep(100);
	usleep(1000);

	for (i = 0; i < 64; i++)
		sbitmap_queue_clear(&sbq, i);
	pthread_join(t, NULL);
	for (i = 0; i < 64; i++)
		calls += atomic_load(&cbs[i].calls);
	CHECK(s.woken, "sleeper stranded on an idle map (%d callbacks woken)",
	      calls);
	CHECK(calls == 64, "%d of 64 callbacks woken", calls);
	CHECK(atomic_load(&sbq.ws_active) == 0, "ws_active %d",
	      atomic_load(&sbq.ws_active));
	if (s.nr >= 0)
		sbitmap_queue_clear(&sbq, s.nr);
	sbq_wait_destroy(&s.w);
	for (i = 0; i < 64; i++)
		cb_destroy(&cbs[i]);
	sbitmap_queue_free(&sbq);
}

static void test_wake_all(void)
{
	struct sleeper_arg s[3];
	struct sbitmap_queue sbq;
	pthread_t t[3];
	int i;

	sbitmap_queue_init(&sbq, 64, -1, false);
	for (i = 0; i < 64; i++)
		__sbitmap_queue_get(&sbq);
	for (i = 0; i < 3; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].sbq = &sbq;
		s[i].ws = &sbq.ws[i % 2];
		sbq_wait_init(&s[i].w);
		pthread_create(&t[i], NULL, sleeper, &s[i]);
	}
	for (i = 0; i < 3; i++)
		while (!atomic_load(&s[i].listed))
			usleep(100);
	sbitmap_queue_wake_all(&sbq);
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		CHECK(s[i].woken, "wake_all missed sleeper %d", i);
		sbq_wait_destroy(&s[i].w);
	}
	sbitmap_queue_free(&sbq);
}

/* ---- stress ---- */

enum stress_kind { STRESS_SLEEP, STRESS_CALLBACK };

struct stress_cfg {
	const char *name;
	unsigned int depth;
	unsigned int shallow;	/* 0: full depth */
	bool batch;		/* some threads use get_batch/clear_batch */
	bool resize;		/* a thread keeps resizing the map */
	bool callback;		/* half the threads use callback waiters */
	unsigned int hog;	/* bits held by the main thread all round */
};

struct stress {
	const struct stress_cfg *cfg;
	struct sbitmap_queue sbq;
	_Atomic unsigned int *owner;	/* thread id + 1 holding each bit */
	unsigned int *payload;		/* plain: TSan checks the ordering */
	_Atomic unsigned int wait_index;
	unsigned long ops;		/* per thread */
	_Atomic unsigned long completed;
	_Atomic unsigned long sleeps;
	_Atomic bool stop_resizer;
	_Atomic int failed;
	pthread_barrier_t start;	/* all workers begin together */
};

struct stress_thread {
	struct stress *st;
	unsigned int id;
	bool callback;
	uint32_t rnd;
	struct cb_waiter cb;	/* callback waiter: func posts cb.sem */
	struct sbq_wait w;	/* sleeping waiter */
	pthread_t tid;
};

static void stress_fail(struct stress *st, const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&st->failed, 1))
		return;
	fprintf(stderr, "FAIL stress %s: ", st->cfg->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int stress_try_get(struct stress_thread *t)
{
	struct stress *st = t->st;

	if (st->cfg->shallow)
		return sbitmap_queue_get_shallow(&st->sbq, st->cfg->shallow);
	return __sbitmap_queue_get(&st->sbq);
}

/* blk_mq_get_tag()'s loop: retry after prepare, sleep only if still full */
static int stress_get_sleeping(struct stress_thread *t)
{
	struct stress *st = t->st;
	int nr = stress_try_get(t);

	while (nr < 0) {
		struct sbq_wait_state *ws = sbq_wait_ptr(&st->sbq,
							 &st->wait_index);

		sbitmap_prepare_to_wait(&st->sbq, ws, &t->w);
		nr = stress_try_get(t);
		if (nr < 0) {
			sbitmap_wait(&t->w);
			atomic_fetch_add(&st->sleeps, 1);
		}
		sbitmap_finish_wait(&st->sbq, ws, &t->w);
		if (nr < 0)
			nr = stress_try_get(t);
	}
	return nr;
}

static bool stress_cb_wake(struct sbq_wait *w)
{
	struct cb_waiter *c = container_of(w, struct cb_waiter, w);

	sem_post(&c->sem);	/* "rerun the queue" */
	return true;
}

/* blk_mq_mark_tag_wait()'s shape: add the callback, retry, else wait */
static int stress_get_callback(struct stress_thread *t)
{
	struct stress *st = t->st;
	int nr = stress_try_get(t);

	while (nr < 0) {
		struct sbq_wait_state *ws = sbq_wait_ptr(&st->sbq,
							 &st->wait_index);

		sbitmap_add_wait_queue(&st->sbq, ws, &t->cb.w);
		nr = stress_try_get(t);
		if (nr >= 0) {
			sbitmap_del_wait_queue(&t->cb.w);
			break;
		}
		sem_wait(&t->cb.sem);
		atomic_fetch_add(&st->sleeps, 1);
		nr = stress_try_get(t);
	}
	return nr;
}

static void stress_hold(struct stress_thread *t)
{
	unsigned int spins = xorshift(&t->rnd) % 256, i;

	for (i = 0; i < spins; i++)
		cpu_relax();
	if (xorshift(&t->rnd) % 64 == 0)
		sched_yield();
}

static bool stress_claim(struct stress_thread *t, unsigned int nr)
{
	struct stress *st = t->st;
	unsigned int none = 0;

	if (nr >= st->cfg->depth) {
		stress_fail(st, "bit %u beyond depth %u", nr, st->cfg->depth);
		return false;
	}
	if (!atomic_compare_exchange_strong(&st->owner[nr], &none, t->id + 1)) {
		stress_fail(st, "bit %u handed to thread %u while thread %u "
			    "holds it", nr, t->id, none - 1);
		return false;
	}
	st->payload[nr] = t->id;
	return true;
}

static bool stress_release(struct stress_thread *t, unsigned int nr)
{
	struct stress *st = t->st;
	unsigned int me = t->id + 1;

	if (st->payload[nr] != t->id ||
	    !atomic_compare_exchange_strong(&st->owner[nr], &me, 0)) {
		stress_fail(st, "bit %u changed owner while thread %u held it",
			    nr, t->id);
		return false;
	}
	return true;
}

/* Take up to 4 bits at once and free them with one clear_batch. */
static bool stress_batch_op(struct stress_thread *t)
{
	struct stress *st = t->st;
	unsigned int offset, i;
	unsigned long mask;
	int tags[4], n = 0;

	mask = __sbitmap_queue_get_batch(&st->sbq, 4, &offset);
	if (!mask)
		return false;
	for (i = 0; i < BITS_PER_LONG; i++) {
		if (!(mask & (1UL << i)))
			continue;
		if (n == 4 || !stress_claim(t, offset + i))
			return true;
		tags[n++] = offset + i;
	}
	stress_hold(t);
	for (i = 0; i < (unsigned int)n; i++)
		if (!stress_release(t, tags[i]))
			return true;
	sbitmap_queue_clear_batch(&st->sbq, 0, tags, n);
	atomic_fetch_add(&st->completed, 1);
	return true;
}

static void *stress_worker(void *p)
{
	struct stress_thread *t = p;
	struct stress *st = t->st;
	unsigned long i;
	int nr;

	pthread_barrier_wait(&st->start);
	for (i = 0; i < st->ops && !atomic_load(&st->failed); i++) {
		if (st->cfg->batch && xorshift(&t->rnd) % 4 == 0 &&
		    stress_batch_op(t))
			continue;
		nr = t->callback ? stress_get_callback(t) :
				   stress_get_sleeping(t);
		if (!stress_claim(t, nr))
			break;
		stress_hold(t);
		if (!stress_release(t, nr))
			break;
		sbitmap_queue_clear(&st->sbq, nr);
		atomic_fetch_add(&st->completed, 1);
	}
	return NULL;
}

static void *stress_resizer(void *p)
{
	struct stress *st = p;
	unsigned int depth = st->cfg->depth;

	while (!atomic_load(&st->stop_resizer)) {
		sbitmap_queue_resize(&st->sbq, depth / 4);
		usleep(200);
		sbitmap_queue_resize(&st->sbq, depth);
		usleep(500);
	}
	return NULL;
}

static void stress_dump(struct stress *st)
{
	int i;

	fprintf(stderr, "  depth %u weight %u ws_active %d wake_batch %u "
		"completion_cnt %u wakeup_cnt %u\n  nr_waiters:",
		st->sbq.sb.depth, sbitmap_weight(&st->sbq.sb),
		atomic_load(&st->sbq.ws_active), st->sbq.wake_batch,
		atomic_load(&st->sbq.completion_cnt),
		atomic_load(&st->sbq.wakeup_cnt));
	for (i = 0; i < SBQ_WAIT_QUEUES; i++)
		fprintf(stderr, " %u", atomic_load(&st->sbq.ws[i].nr_waiters));
	fputc('\n', stderr);
}

/*
 * Wait for the workers, failing hard if the completion count stops moving
 * for @watchdog seconds: the workers are asleep with nobody left to wake
 * them, and joining would hang.
 */
static void stress_watch(struct stress *st, unsigned long total,
			 double watchdog)
{
	unsigned long last = 0, done;
	double last_change = now_sec();

	while ((done = atomic_load(&st->completed)) < total &&
	       !atomic_load(&st->failed)) {
		if (done != last) {
			last = done;
			last_change = now_sec();
		} else if (now_sec() - last_change > watchdog) {
			fprintf(stderr, "FAIL stress %s: lost wake-up: no "
				"progress for %.0f s at %lu of %lu ops\n",
				st->cfg->name, watchdog, done, total);
			stress_dump(st);
			exit(1);
		}
		usleep(1000);
	}
}

static bool stress_round(const struct stress_cfg *cfg, unsigned int nthreads,
			 unsigned long ops, unsigned int seed,
			 unsigned long *sleeps)
{
	struct stress_thread *th = calloc(nthreads, sizeof(*th));
	struct stress st = { .cfg = cfg, .ops = ops };
	int hogged[64];
	pthread_t resizer;
	unsigned int i;
	bool ok;

	if (cfg->hog > ARRAY_SIZE(hogged))
		return false;

	if (sbitmap_queue_init(&st.sbq, cfg->depth, -1, false)) {
		fprintf(stderr, "FAIL stress %s: init\n", cfg->name);
		return false;
	}
	if (cfg->shallow)
		sbitmap_queue_min_shallow_depth(&st.sbq, cfg->shallow);
	pthread_barrier_init(&st.start, NULL, nthreads);
	st.owner = calloc(cfg->depth, sizeof(*st.owner));
	st.payload = calloc(cfg->depth, sizeof(*st.payload));
	for (i = 0; i < nthreads; i++) {
		th[i].st = &st;
		th[i].id = i;
		th[i].rnd = seed * 2654435761U + i * 40503U + 1;
		th[i].callback = cfg->callback && (i & 1);
		sbq_wait_init(&th[i].w);
		cb_init(&th[i].cb, stress_cb_wake);
	}
	/*
	 * Hogged bits stand for long-running requests: the workers fight
	 * over the rest, and the rescue in sbitmap_queue_wake_up() never
	 * fires (enough bits stay held), so the batching alone must keep
	 * every sleeper moving.
	 */
	for (i = 0; i < cfg->hog; i++) {
		int nr = __sbitmap_queue_get(&st.sbq);

		if (nr >= 0)
			atomic_store(&st.owner[nr], UINT_MAX);
		hogged[i] = nr;
	}
	for (i = 0; i < nthreads; i++)
		pthread_create(&th[i].tid, NULL, stress_worker, &th[i]);
	if (cfg->resize)
		pthread_create(&resizer, NULL, stress_resizer, &st);

	stress_watch(&st, nthreads * ops, slow ? 60 : 15);
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i].tid, NULL);
	if (cfg->resize) {
		atomic_store(&st.stop_resizer, true);
		pthread_join(resizer, NULL);
	}
	for (i = 0; i < cfg->hog; i++) {
		if (hogged[i] < 0)
			continue;
		atomic_store(&st.owner[hogged[i]], 0);
		sbitmap_queue_clear(&st.sbq, hogged[i]);
	}

	ok = !atomic_load(&st.failed);
	if (ok && atomic_load(&st.completed) != nthreads * ops) {
		stress_fail(&st, "completed %lu of %lu ops",
			    atomic_load(&st.completed), nthreads * ops);
		ok = false;
	}
	if (ok && (sbitmap_weight(&st.sbq.sb) ||
		   atomic_load(&st.sbq.ws_active))) {
		stress_fail(&st, "after the round: weight %u ws_active %d",
			    sbitmap_weight(&st.sbq.sb),
			    atomic_load(&st.sbq.ws_active));
		ok = false;
	}
	*sleeps += atomic_load(&st.sleeps);

	for (i = 0; i < nthreads; i++) {
		sbq_wait_destroy(&th[i].w);
		cb_destroy(&th[i].cb);
	}
	sbitmap_queue_free(&st.sbq);
	pthread_barrier_destroy(&st.start);
	free(st.owner);
	free(st.payload);
	free(th);
	return ok;
}

static void test_stress(void)
{
	static const struct stress_cfg cfgs[] = {
		{ .name = "depth-1", .depth = 1 },
		{ .name = "depth-2", .depth = 2 },
		{ .name = "depth-7", .depth = 7 },
		{ .name = "depth-64", .depth = 64 },
		{ .name = "depth-64-hog-56", .depth = 64, .hog = 56 },
		{ .name = "depth-64-shallow-2", .depth = 64, .shallow = 2 },
		{ .name = "depth-64-batch", .depth = 64, .batch = true,
		  .hog = 50 },
		{ .name = "depth-64-resize", .depth = 64, .resize = true,
		  .hog = 40 },
		{ .name = "callback-depth-1", .depth = 1, .callback = true },
		{ .name = "callback-depth-4", .depth = 4, .callback = true },
		{ .name = "callback-depth-64", .depth = 64, .callback = true,
		  .batch = true, .hog = 56 },
	};
	const char *env = getenv("SBITMAP_STRESS_SECONDS");
	const unsigned int nthreads = 16;
	double budget = slow ? 1.0 : 0.5;	/* seconds per config */
	unsigned long ops = slow ? 250 : 400;
	unsigned int i;

	if (env && atof(env) > 0)
		budget = atof(env);	/* soak: SBITMAP_STRESS_SECONDS=60 */

	for (i = 0; i < ARRAY_SIZE(cfgs); i++) {
		double start = now_sec(), el;
		unsigned long sleeps = 0;
		unsigned int rounds = 0;
		bool ok = true;

		do {
			ok = stress_round(&cfgs[i], nthreads, ops, rounds,
					  &sleeps);
			rounds++;
		} while (ok && (rounds < 3 || now_sec() - start < budget));
		el = now_sec() - start;
		printf("stress %-19s %3u rounds x %2u threads x %4lu ops, "
		       "%7lu sleeps, %.2f s%s\n", cfgs[i].name, rounds,
		       nthreads, ops, sleeps, el, ok ? "" : "  FAILED");
		if (!ok)
			failures++;
	}
}

int main(void)
{
	const char *san = getenv("SANITIZER");

	slow = SAN_BUILD || (san && *san);
	setvbuf(stdout, NULL, _IOLBF, 0);

	test_init_shift();
	test_fill();
	test_deferred();
	test_shallow();
	test_resize();
	test_for_each_weight();
	test_round_robin();
	test_wake_batch();
	test_batch_get_clear();
	test_wait_ptr();
	test_sleep_protocol();
	test_callback_waiter();
	test_no_stranded_sleeper();
	test_wake_all();
	printf("unit checks done: %d failure(s)\n", failures);
	test_stress();

	printf("%s: %d failure(s)%s\n", failures ? "FAIL" : "PASS", failures,
	       slow ? " (sanitizer scale)" : "");
	return failures ? 1 : 0;
}
