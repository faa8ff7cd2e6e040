// SPDX-License-Identifier: MIT
/*
 * Scalable bitmaps, following the kernel's lib/sbitmap.c (see sbitmap.h for
 * the model). What this file adds is the reasoning behind the ordering and
 * the wake-up accounting.
 *
 * Ordering: every read-modify-write of ->word and ->cleared, the loads that
 * decide "this word is full", and every ->ws_active update and load are
 * sequentially consistent. That is the pairing the kernel gets from
 * smp_mb__after_atomic() in the free path and set_current_state() in the
 * waiter: a freer frees a bit and then reads ->ws_active; a waiter raises
 * ->ws_active and then retries the allocation. In the single total order one
 * of them comes first, so either the freer sees the waiter or the waiter sees
 * the bit. On x86 this costs nothing extra: locked RMWs are full barriers
 * and SC loads are plain moves.
 *
 * Wait-list locking: a waiter's ->ws names the wait state whose list holds
 * it and changes only under that state's lock. Whoever wants to add, remove
 * or test a waiter locks the state ->ws names and re-checks. A waker calls
 * ->func while the waiter is still listed and removes it afterwards, under
 * the same lock hold; clearing ->ws (a release store) is its last touch of
 * the waiter, so an owner that sees ->ws == NULL may free it.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bug.h"
#include "sbitmap.h"

#define SB_MAX_SHIFT	6	/* ilog2(BITS_PER_LONG) */

BUILD_BUG_ON(BITS_PER_LONG != 8 * sizeof(unsigned long));
BUILD_BUG_ON((SBQ_WAIT_QUEUES & (SBQ_WAIT_QUEUES - 1)) != 0);

/* ---- helpers ---- */

static inline unsigned long sb_low_mask(unsigned int nbits)
{
	return nbits >= BITS_PER_LONG ? ~0UL : (1UL << nbits) - 1;
}

static inline unsigned int sb_map_nr(const struct sbitmap *sb,
				     unsigned int depth)
{
	unsigned int bpw = sbitmap_bits_per_word(sb);

	return (depth >> sb->shift) + !!(depth & (bpw - 1));
}

/*
 * Bits in use in word @index for a map of @depth bits. Callers take one
 * READ_ONCE() of ->depth and derive everything from it, so a concurrent
 * resize never gives them a depth and a word count that disagree.
 */
static inline unsigned int sb_word_depth(const struct sbitmap *sb,
					 unsigned int depth, unsigned int index)
{
	return min(depth - (index << sb->shift), sbitmap_bits_per_word(sb));
}

static inline unsigned long sb_word_held(const struct sbitmap_word *map)
{
	return atomic_load(&map->word) & ~atomic_load(&map->cleared);
}

/*
 * The kernel's sbitmap_calculate_shift(): with a small depth use fewer bits
 * per word so the map still spreads over about four cache lines.
 */
static int sb_calc_shift(unsigned int depth)
{
	int shift = SB_MAX_SHIFT;

	if (depth >= 4) {
		while ((4U << shift) > depth)
			shift--;
	}
	return shift;
}

static _Atomic unsigned int sb_next_slot;
/* initial-exec: no __tls_get_addr() call on the hot path in the .so */
_Thread_local unsigned int sb_slot_plus1;

unsigned int sbitmap_thread_slot_claim(void)
{
	if (!sb_slot_plus1)
		sb_slot_plus1 = 1 + atomic_fetch_add_explicit(&sb_next_slot, 1,
						memory_order_relaxed);
	return sb_slot_plus1 - 1;
}

/*
 * A start bit for hint slot @i: the Weyl sequence i * golden ratio scaled to
 * @depth, so consecutive slots (threads started one after another) start in
 * different words. The kernel uses a random number here.
 */
static unsigned int sb_spread_hint(unsigned int i, unsigned int depth)
{
	return (unsigned int)(((uint64_t)(i * 0x9e3779b9U) * depth) >> 32);
}

static inline _Atomic unsigned int *sb_hint_ptr(struct sbitmap *sb)
{
	return &sb->alloc_hint[sbitmap_thread_slot() % SB_NR_HINTS].hint;
}

static unsigned int sb_hint_before_get(struct sbitmap *sb,
				       _Atomic unsigned int *hp,
				       unsigned int depth)
{
	unsigned int hint = atomic_load_explicit(hp, memory_order_relaxed);

	if (unlikely(hint >= depth)) {
		hint = depth ? sb_spread_hint(sbitmap_thread_slot(), depth) : 0;
		atomic_store_explicit(hp, hint, memory_order_relaxed);
	}
	return hint;
}

/*
 * Move the hint past a bit we took from it (or always, in round-robin mode).
 * The kernel wraps at depth - 1, which makes round-robin skip the last bit;
 * we wrap at depth.
 */
static void sb_hint_after_get(struct sbitmap *sb, _Atomic unsigned int *hp,
			      unsigned int depth, unsigned int hint, int nr)
{
	if (nr < 0) {
		/* the map is full: a hint will not help */
		atomic_store_explicit(hp, 0, memory_order_relaxed);
	} else if ((unsigned int)nr == hint || unlikely(sb->round_robin)) {
		hint = nr + 1;
		if (hint >= depth)
			hint = 0;
		atomic_store_explicit(hp, hint, memory_order_relaxed);
	}
}

/* ---- deferred clearing ---- */

/*
 * ->swap_lock is a tiny spin lock held for two atomics. A holder preempted
 * on an oversubscribed machine would keep spinners burning their slice, so
 * spinners yield now and then.
 */
static void sb_swap_lock(struct sbitmap_word *map)
{
	unsigned int spins = 0;

	while (atomic_exchange_explicit(&map->swap_lock, 1,
					memory_order_acquire)) {
		while (atomic_load_explicit(&map->swap_lock,
					    memory_order_relaxed)) {
			if (++spins % 64)
				cpu_relax();
			else
				sched_yield();
		}
	}
}

static void sb_swap_unlock(struct sbitmap_word *map)
{
	atomic_store_explicit(&map->swap_lock, 0, memory_order_release);
}

/*
 * Fold ->cleared into ->word. An allocator calls this when it found no free
 * bit among the bits @search; it returns true if a new search may succeed.
 *
 * With ->cleared empty we still test ->word, under the lock: another folder
 * may have taken ->cleared just before we read it and not yet cleared the
 * bits in ->word, so the word looked full when it was not. Returning "full"
 * then sends the caller to sleep with a free bit in the map whose free was
 * already accounted for: a lost wake-up (the kernel hung on exactly this).
 * Under the lock no fold is half done, so the free bits we see are real.
 * @search == 0 just folds and reports whether anything was folded.
 */
static bool sb_deferred_clear(struct sbitmap_word *map, unsigned long search)
{
	unsigned long mask = 0;
	bool again;

	sb_swap_lock(map);
	if (atomic_load(&map->cleared))
		mask = atomic_exchange(&map->cleared, 0);
	if (mask) {
		atomic_fetch_and(&map->word, ~mask);
		again = true;
	} else {
		again = (atomic_load(&map->word) & search) != search;
	}
	sb_swap_unlock(map);
	return again;
}

/* ---- allocation ---- */

/*
 * Take a zero bit below @depth in one word, scanning from @hint upwards and,
 * if @wrap, then from bit 0. One RMW per attempt.
 */
static int sb_get_word(struct sbitmap_word *map, unsigned int depth,
		       unsigned int hint, bool wrap)
{
	unsigned long all = sb_low_mask(depth);
	unsigned long from = all & ~sb_low_mask(hint);
	unsigned long word = atomic_load(&map->word);

	for (;;) {
		unsigned long avail = ~word & from;
		unsigned long bit;
		int nr;

		if (!avail) {
			if (wrap && from != all) {
				from = all;
				continue;
			}
			return -1;
		}
		nr = __builtin_ctzl(avail);
		bit = 1UL << nr;
		/* testing only @bit of the result lets this be a lock bts */
		if (!(atomic_fetch_or(&map->word, bit) & bit))
			return nr;
		word = atomic_load(&map->word);
	}
}

static int sb_find_bit_in_word(struct sbitmap_word *map, unsigned int depth,
			       unsigned int hint, bool wrap)
{
	unsigned long search = sb_low_mask(depth);
	int nr;

	if (hint >= depth)
		hint = 0;
	if (!wrap)
		search &= ~sb_low_mask(hint);
	do {
		nr = sb_get_word(map, depth, hint, wrap);
		if (nr >= 0)
			return nr;
	} while (sb_deferred_clear(map, search));
	return -1;
}

/*
 * Search the words from @index, at most @limit bits of each, starting at bit
 * @hint of the first word. Round-robin (!@wrap) never wraps inside a word,
 * so the kernel can fail while bits below the hint in the first word are
 * free; we look at those last, so -1 really means "full".
 */
static int sb_find_bit(struct sbitmap *sb, unsigned int depth,
		       unsigned long limit, unsigned int index,
		       unsigned int hint, bool wrap)
{
	unsigned int map_nr = sb_map_nr(sb, depth);
	unsigned int i, start = index, start_hint = hint;
	int nr;

	for (i = 0; i < map_nr; i++) {
		unsigned int wd = min_t(unsigned long,
					sb_word_depth(sb, depth, index), limit);

		nr = sb_find_bit_in_word(&sb->map[index], wd, hint, wrap);
		if (nr >= 0)
			return nr + (index << sb->shift);
		hint = 0;
		if (++index >= map_nr)
			index = 0;
	}
	if (!wrap && start_hint && map_nr) {
		unsigned int wd = min_t(unsigned long,
					sb_word_depth(sb, depth, start), limit);

		nr = sb_find_bit_in_word(&sb->map[start], wd, 0, false);
		if (nr >= 0)
			return nr + (start << sb->shift);
	}
	return -1;
}

/*
 * The first step of sb_find_bit() for a map that is not round-robin: a
 * free bit in the hint's word, taken by the first RMW. Inline, because the
 * schedulers take a tag or token this way for every request (the driver
 * tag at dispatch, kyber's domain token) and the general search costs
 * ~100 instructions more in calls and masks. -1 sends the caller to it.
 */
static inline int sb_get_hinted_word(struct sbitmap *sb, unsigned int depth,
				     unsigned int hint)
{
	unsigned int index = hint >> sb->shift;
	struct sbitmap_word *map = &sb->map[index];
	unsigned long avail =
		~atomic_load_explicit(&map->word, memory_order_relaxed) &
		sb_low_mask(sb_word_depth(sb, depth, index));
	unsigned long bit;
	int nr;

	if (!avail)
		return -1;
	nr = __builtin_ctzl(avail);
	bit = 1UL << nr;
	if (atomic_fetch_or(&map->word, bit) & bit)
		return -1;
	return nr + (int)(index << sb->shift);
}

int sbitmap_get(struct sbitmap *sb)
{
	_Atomic unsigned int *hp = sb_hint_ptr(sb);
	unsigned int depth = READ_ONCE(sb->depth);
	unsigned int hint = sb_hint_before_get(sb, hp, depth);
	unsigned int bit = 0;
	int nr;

	if (likely(!sb->round_robin && depth)) {
		nr = sb_get_hinted_word(sb, depth, hint);
		if (likely(nr >= 0)) {
			sb_hint_after_get(sb, hp, depth, hint, nr);
			return nr;
		}
	}
	/*
	 * Unless we allocate round-robin the hint only picks the word: every
	 * search inside a word starts at bit 0.
	 */
	if (sb->round_robin)
		bit = hint & (sbitmap_bits_per_word(sb) - 1);
	nr = sb_find_bit(sb, depth, ULONG_MAX, hint >> sb->shift, bit,
			 !sb->round_robin);
	sb_hint_after_get(sb, hp, depth, hint, nr);
	return nr;
}

int sbitmap_get_shallow(struct sbitmap *sb, unsigned long shallow_depth)
{
	_Atomic unsigned int *hp = sb_hint_ptr(sb);
	unsigned int depth = READ_ONCE(sb->depth);
	unsigned int hint = sb_hint_before_get(sb, hp, depth);
	int nr;

	nr = sb_find_bit(sb, depth, shallow_depth, hint >> sb->shift,
			 hint & (sbitmap_bits_per_word(sb) - 1), true);
	sb_hint_after_get(sb, hp, depth, hint, nr);
	return nr;
}

/* ---- setup ---- */

static void *sb_zalloc_aligned(size_t size)
{
	void *p;

	size = ALIGN_UP(size, SMP_CACHE_BYTES);
	if (posix_memalign(&p, SMP_CACHE_BYTES, size))
		return NULL;
	memset(p, 0, size);
	return p;
}

int sbitmap_init(struct sbitmap *sb, unsigned int depth, int shift,
		 bool round_robin)
{
	unsigned int i;

	if (shift < 0)
		shift = sb_calc_shift(depth);
	if (shift > SB_MAX_SHIFT || depth > INT_MAX)
		return -EINVAL;

	memset(sb, 0, sizeof(*sb));
	sb->shift = shift;
	sb->depth = depth;
	sb->map_nr = sb_map_nr(sb, depth);
	sb->map_alloc = sb->map_nr;
	sb->round_robin = round_robin;
	sb->nr_hints = SB_NR_HINTS;

	sb->alloc_hint = sb_zalloc_aligned(sb->nr_hints *
					   sizeof(*sb->alloc_hint));
	if (!sb->alloc_hint)
		return -ENOMEM;
	for (i = 0; i < sb->nr_hints; i++) {
		unsigned int hint = 0;

		if (depth && !round_robin)
			hint = sb_spread_hint(i, depth);
		atomic_init(&sb->alloc_hint[i].hint, hint);
	}

	if (sb->map_alloc) {
		sb->map = sb_zalloc_aligned(sb->map_alloc * sizeof(*sb->map));
		if (!sb->map)
			goto err_hints;
	}
	return 0;

err_hints:
	free(sb->alloc_hint);
	sb->alloc_hint = NULL;
	return -ENOMEM;
}

void sbitmap_free(struct sbitmap *sb)
{
	free(sb->map);
	free(sb->alloc_hint);
	sb->map = NULL;
	sb->alloc_hint = NULL;
	sb->depth = sb->map_nr = sb->map_alloc = 0;
}

/*
 * Fold every word first so bits freed through ->cleared are not stranded in
 * words that drop out of use. A depth beyond the allocated words is clamped.
 */
void sbitmap_resize(struct sbitmap *sb, unsigned int depth)
{
	uint64_t cap = (uint64_t)sb->map_alloc << sb->shift;
	unsigned int i;

	for (i = 0; i < sb->map_alloc; i++)
		sb_deferred_clear(&sb->map[i], 0);
	if (depth > cap)
		depth = cap;
	WRITE_ONCE(sb->depth, depth);
	WRITE_ONCE(sb->map_nr, sb_map_nr(sb, depth));
}

/* ---- single bits and queries ---- */

static struct sbitmap_word *sb_word_of(const struct sbitmap *sb,
				       unsigned int bitnr)
{
	unsigned int index = bitnr >> sb->shift;

	if (WARN_ON_ONCE(index >= sb->map_alloc))
		return NULL;
	return &sb->map[index];
}

static inline unsigned long sb_bit_of(const struct sbitmap *sb,
				      unsigned int bitnr)
{
	return 1UL << (bitnr & (sbitmap_bits_per_word(sb) - 1));
}

void sbitmap_set_bit(struct sbitmap *sb, unsigned int bitnr)
{
	struct sbitmap_word *map = sb_word_of(sb, bitnr);

	if (map)
		atomic_fetch_or(&map->word, sb_bit_of(sb, bitnr));
}

void sbitmap_clear_bit(struct sbitmap *sb, unsigned int bitnr)
{
	struct sbitmap_word *map = sb_word_of(sb, bitnr);

	if (map)
		atomic_fetch_and(&map->word, ~sb_bit_of(sb, bitnr));
}

void sbitmap_deferred_clear_bit(struct sbitmap *sb, unsigned int bitnr)
{
	struct sbitmap_word *map = sb_word_of(sb, bitnr);

	if (map)
		atomic_fetch_or(&map->cleared, sb_bit_of(sb, bitnr));
}

/* sbitmap_test_bit() of a bit beyond the map: a caller's bug */
bool sbitmap_bad_bit(const struct sbitmap *sb, unsigned int bitnr)
{
	WARN_ON_ONCE(sb_word_of(sb, bitnr) == NULL);
	return false;
}

bool sbitmap_any_bit_set(const struct sbitmap *sb)
{
	unsigned int depth = READ_ONCE(sb->depth);
	unsigned int i, map_nr = sb_map_nr(sb, depth);

	for (i = 0; i < map_nr; i++) {
		unsigned long mask = sb_low_mask(sb_word_depth(sb, depth, i));

		if (sb_word_held(&sb->map[i]) & mask)
			return true;
	}
	return false;
}

unsigned int sbitmap_weight(const struct sbitmap *sb)
{
	unsigned int depth = READ_ONCE(sb->depth);
	unsigned int i, map_nr = sb_map_nr(sb, depth), weight = 0;

	for (i = 0; i < map_nr; i++) {
		unsigned long mask = sb_low_mask(sb_word_depth(sb, depth, i));

		weight += __builtin_popcountl(sb_word_held(&sb->map[i]) & mask);
	}
	return weight;
}

/* True if at least @need bits are held; stops counting once there. */
static bool sb_held_at_least(const struct sbitmap *sb, unsigned int need)
{
	unsigned int depth = READ_ONCE(sb->depth);
	unsigned int i, map_nr = sb_map_nr(sb, depth), held = 0;

	for (i = 0; i < map_nr && held < need; i++) {
		unsigned long mask = sb_low_mask(sb_word_depth(sb, depth, i));

		held += __builtin_popcountl(sb_word_held(&sb->map[i]) & mask);
	}
	return held >= need;
}

void sbitmap_for_each_set(struct sbitmap *sb,
			  bool (*fn)(struct sbitmap *, unsigned int, void *),
			  void *data)
{
	unsigned int depth = READ_ONCE(sb->depth);
	unsigned int i, map_nr = sb_map_nr(sb, depth);

	for (i = 0; i < map_nr; i++) {
		unsigned long mask = sb_low_mask(sb_word_depth(sb, depth, i));
		unsigned long held = sb_word_held(&sb->map[i]) & mask;

		while (held) {
			unsigned int bit = __builtin_ctzl(held);

			held &= held - 1;
			if (!fn(sb, (i << sb->shift) + bit, data))
				return;
		}
	}
}

/* ---- sbitmap_queue: setup ---- */

/*
 * One batch wakes one wait state's worth of waiters, so a batch must be
 * small enough that the whole usable depth (each word possibly limited to
 * min_shallow_depth bits) covers all SBQ_WAIT_QUEUES states.
 */
static unsigned int sbq_calc_wake_batch(struct sbitmap_queue *sbq,
					unsigned int depth)
{
	unsigned int bpw = sbitmap_bits_per_word(&sbq->sb);
	unsigned int shallow = min(bpw, sbq->min_shallow_depth);
	unsigned int usable;

	usable = (depth >> sbq->sb.shift) * shallow +
		 min(depth & (bpw - 1), shallow);
	return clamp(usable / SBQ_WAIT_QUEUES, 1U,
		     (unsigned int)SBQ_WAKE_BATCH);
}

int sbitmap_queue_init(struct sbitmap_queue *sbq, unsigned int depth,
		       int shift, bool round_robin)
{
	int i, ret;

	ret = sbitmap_init(&sbq->sb, depth, shift, round_robin);
	if (ret)
		return ret;

	sbq->min_shallow_depth = UINT_MAX;
	sbq->wake_batch = sbq_calc_wake_batch(sbq, depth);
	atomic_init(&sbq->wake_index, 0);
	atomic_init(&sbq->ws_active, 0);
	atomic_init(&sbq->completion_cnt, 0);
	atomic_init(&sbq->wakeup_cnt, 0);

	sbq->ws = sb_zalloc_aligned(SBQ_WAIT_QUEUES * sizeof(*sbq->ws));
	if (!sbq->ws)
		goto err_sb;
	for (i = 0; i < SBQ_WAIT_QUEUES; i++) {
		ret = -pthread_mutex_init(&sbq->ws[i].lock, NULL);
		if (ret)
			goto err_locks;
		INIT_LIST_HEAD(&sbq->ws[i].waiters);
		atomic_init(&sbq->ws[i].nr_waiters, 0);
	}
	return 0;

err_locks:
	while (--i >= 0)
		pthread_mutex_destroy(&sbq->ws[i].lock);
	free(sbq->ws);
	sbq->ws = NULL;
	sbitmap_free(&sbq->sb);
	return ret;
err_sb:
	sbitmap_free(&sbq->sb);
	return -ENOMEM;
}

void sbitmap_queue_free(struct sbitmap_queue *sbq)
{
	int i;

	if (sbq->ws) {
		for (i = 0; i < SBQ_WAIT_QUEUES; i++) {
			WARN_ON_ONCE(!list_empty(&sbq->ws[i].waiters));
			pthread_mutex_destroy(&sbq->ws[i].lock);
		}
		free(sbq->ws);
		sbq->ws = NULL;
	}
	sbitmap_free(&sbq->sb);
}

static void sbq_update_wake_batch(struct sbitmap_queue *sbq,
				  unsigned int depth)
{
	unsigned int wake_batch = sbq_calc_wake_batch(sbq, depth);

	if (READ_ONCE(sbq->wake_batch) != wake_batch)
		WRITE_ONCE(sbq->wake_batch, wake_batch);
}

/*
 * Waiters are woken because a shrink may leave them waiting for bits that no
 * longer exist, and a grow means there are free bits they have not seen.
 */
void sbitmap_queue_resize(struct sbitmap_queue *sbq, unsigned int depth)
{
	sbitmap_resize(&sbq->sb, depth);
	sbq_update_wake_batch(sbq, READ_ONCE(sbq->sb.depth));	/* clamped */
	sbitmap_queue_wake_all(sbq);
}

void sbitmap_queue_min_shallow_depth(struct sbitmap_queue *sbq,
				     unsigned int min_shallow_depth)
{
	sbq->min_shallow_depth = min_shallow_depth;
	sbq_update_wake_batch(sbq, READ_ONCE(sbq->sb.depth));
}

/* ---- sbitmap_queue: allocation ---- */

int __sbitmap_queue_get(struct sbitmap_queue *sbq)
{
	return sbitmap_get(&sbq->sb);
}

int sbitmap_queue_get_shallow(struct sbitmap_queue *sbq,
			      unsigned int shallow_depth)
{
	WARN_ON_ONCE(shallow_depth < sbq->min_shallow_depth);
	return sbitmap_get_shallow(&sbq->sb, shallow_depth);
}

/*
 * Take the run of bits that starts at the first zero of a word, at most
 * @nr_tags long, with one fetch_or; bits in the run that were already set
 * are simply not ours.
 */
unsigned long __sbitmap_queue_get_batch(struct sbitmap_queue *sbq, int nr_tags,
					unsigned int *offset)
{
	struct sbitmap *sb = &sbq->sb;
	_Atomic unsigned int *hp;
	unsigned int depth, hint, index, map_nr, i;

	if (unlikely(sb->round_robin) || nr_tags <= 0)
		return 0;

	hp = sb_hint_ptr(sb);
	depth = READ_ONCE(sb->depth);
	hint = sb_hint_before_get(sb, hp, depth);
	map_nr = sb_map_nr(sb, depth);
	index = hint >> sb->shift;

	for (i = 0; i < map_nr; i++) {
		struct sbitmap_word *map = &sb->map[index];
		unsigned int wd = sb_word_depth(sb, depth, index);
		unsigned long all = sb_low_mask(wd);
		unsigned long word, run, got;
		unsigned int nr, n;

		if (atomic_load(&map->cleared))
			sb_deferred_clear(map, 0);
		word = atomic_load(&map->word);
		if ((word & all) != all) {
			nr = __builtin_ctzl(~word & all);
			n = min((unsigned int)nr_tags, wd - nr);
			run = sb_low_mask(n) << nr;
			got = (run & ~atomic_fetch_or(&map->word, run)) >> nr;
			if (got) {
				*offset = nr + (index << sb->shift);
				sb_hint_after_get(sb, hp, depth, hint,
						  *offset + n - 1);
				return got;
			}
		}
		if (++index >= map_nr)
			index = 0;
	}
	return 0;
}

/* ---- sbitmap_queue: waking ---- */

static bool sbq_wake_sleeper(struct sbq_wait *w)
{
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->woken, 1);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return true;
}

static inline bool sbq_is_sleeper(const struct sbq_wait *w)
{
	return w->func == sbq_wake_sleeper;
}

/* Caller holds ws->lock. */
static void sbq_ws_add(struct sbq_wait_state *ws, struct sbq_wait *w)
{
	list_add_tail(&w->entry, &ws->waiters);
	atomic_fetch_add(&ws->nr_waiters, 1);
	smp_store_release(&w->ws, ws);
}

/*
 * Caller holds ws->lock. Clearing ->ws is the last write to @w: an owner
 * that reads NULL there may free it.
 */
static void sbq_ws_del(struct sbq_wait_state *ws, struct sbq_wait *w)
{
	list_del_init(&w->entry);
	atomic_fetch_sub(&ws->nr_waiters, 1);
	smp_store_release(&w->ws, NULL);
}

/*
 * Lock the wait state @w is listed on (or @ws if none) such that ->ws is
 * stable; returns the locked state, or NULL if @w is on no list and @ws is
 * NULL. ->ws only changes under the lock of the state it names, hence the
 * re-check.
 */
static struct sbq_wait_state *sbq_lock_waiter(struct sbq_wait *w,
					      struct sbq_wait_state *ws)
{
	for (;;) {
		struct sbq_wait_state *cur = smp_load_acquire(&w->ws);
		struct sbq_wait_state *lk = cur ? cur : ws;

		if (!lk)
			return NULL;
		pthread_mutex_lock(&lk->lock);
		if (smp_load_acquire(&w->ws) == cur)
			return lk;
		pthread_mutex_unlock(&lk->lock);
	}
}

/* Put @w on @ws unless it is on a list already; true if added. */
static bool sbq_enqueue(struct sbq_wait_state *ws, struct sbq_wait *w)
{
	struct sbq_wait_state *lk = sbq_lock_waiter(w, ws);
	bool add = !READ_ONCE(w->ws);

	if (add) {
		atomic_store(&w->woken, 0);
		sbq_ws_add(ws, w);
	}
	pthread_mutex_unlock(&lk->lock);
	return add;
}

/* Take @w off whatever list it is on; true if it was on one. */
static bool sbq_dequeue(struct sbq_wait *w)
{
	struct sbq_wait_state *lk = sbq_lock_waiter(w, NULL);
	bool on;

	if (!lk)
		return false;
	on = READ_ONCE(w->ws) != NULL;
	if (on)
		sbq_ws_del(lk, w);
	pthread_mutex_unlock(&lk->lock);
	return on;
}

struct sbq_wake_count {
	unsigned int woken;	/* ->func returned true */
	unsigned int sleepers;	/* of which sleeping waiters */
};

/*
 * Wake waiters of @ws in FIFO order until @nr have counted, or, with
 * @until_sleeper, until one sleeping waiter has been woken. A waiter is
 * removed after its ->func says it counts; callback waiters leave
 * ->ws_active then (a sleeper leaves it in sbitmap_finish_wait()).
 */
static void sbq_ws_wake(struct sbitmap_queue *sbq, struct sbq_wait_state *ws,
			unsigned int nr, bool until_sleeper,
			struct sbq_wake_count *cnt)
{
	struct sbq_wait *w, *tmp;
	unsigned int start_sleepers = cnt->sleepers;
	unsigned int woken = 0;

	pthread_mutex_lock(&ws->lock);
	list_for_each_entry_safe(w, tmp, &ws->waiters, entry) {
		bool sleeper = sbq_is_sleeper(w);

		if (woken >= nr ||
		    (until_sleeper && cnt->sleepers > start_sleepers))
			break;
		if (!w->func(w))
			continue;
		sbq_ws_del(ws, w);
		woken++;
		if (sleeper)
			cnt->sleepers++;
		else
			atomic_fetch_sub(&sbq->ws_active, 1);
	}
	pthread_mutex_unlock(&ws->lock);
	cnt->woken += woken;
}

/*
 * Wake @nr waiters, trying each wait state in turn from ->wake_index. The
 * index moves past every state we look at, so one busy state is not drained
 * before the others get a turn.
 */
static void sbq_wake_nr(struct sbitmap_queue *sbq, unsigned int nr,
			bool until_sleeper, struct sbq_wake_count *cnt)
{
	unsigned int i, idx = atomic_load(&sbq->wake_index);
	unsigned int woken = cnt->woken, sleepers = cnt->sleepers;

	for (i = 0; i < SBQ_WAIT_QUEUES; i++) {
		struct sbq_wait_state *ws = &sbq->ws[idx];
		unsigned int done = cnt->woken - woken;

		if (done >= nr || (until_sleeper && cnt->sleepers > sleepers))
			break;
		idx = (idx + 1) % SBQ_WAIT_QUEUES;
		if (atomic_load(&ws->nr_waiters))
			sbq_ws_wake(sbq, ws, nr - done, until_sleeper, cnt);
	}
	if (idx != atomic_load(&sbq->wake_index))
		atomic_store(&sbq->wake_index, idx);
}

/* Claim one batch of completions for waking; false if none is due. */
static bool sbq_take_batch(struct sbitmap_queue *sbq, unsigned int wake_batch)
{
	unsigned int wakeups = atomic_load(&sbq->wakeup_cnt);

	do {
		if (atomic_load(&sbq->completion_cnt) - wakeups < wake_batch)
			return false;
	} while (!atomic_compare_exchange_weak(&sbq->wakeup_cnt, &wakeups,
					       wakeups + wake_batch));
	return true;
}

/*
 * The kernel's batching alone can strand a waiter: frees are counted and
 * every ->wake_batch of them wakes that many waiters, but the last few frees
 * (fewer than a batch) wake nobody, and a woken callback waiter (blk-mq's
 * queue rerun) may not take a bit at all. Then a waiter sleeps on a map with
 * free bits and no holder left to free anything: a lost wake-up.
 *
 * So after each accounted free: if the credit pending plus the bits still
 * held cannot make up another batch, the batch mechanism can no longer be
 * relied on, and we wake waiters in order until a sleeping one is woken.
 * A woken sleeper retries the allocation: it either takes a bit, which it
 * will free later, or finds every bit held, and each holder will free; both
 * bring us back here. If this call already woke a sleeper, that is enough.
 * The check only runs when waiters exist and stops counting held bits once
 * it has enough, so under load it reads one word.
 */
static void sbq_wake_if_stranded(struct sbitmap_queue *sbq,
				 unsigned int wake_batch,
				 struct sbq_wake_count *cnt)
{
	unsigned int credit;

	if (cnt->sleepers)
		return;
	credit = atomic_load(&sbq->completion_cnt) -
		 atomic_load(&sbq->wakeup_cnt);
	if (credit >= wake_batch)
		return;	/* another freer is claiming that batch */
	if (sb_held_at_least(&sbq->sb, wake_batch - credit))
		return;
	sbq_wake_nr(sbq, UINT_MAX, true, cnt);
}

void __sbitmap_queue_wake_up(struct sbitmap_queue *sbq, int nr)
{
	struct sbq_wake_count cnt = { 0, 0 };
	unsigned int wake_batch;

	wake_batch = READ_ONCE(sbq->wake_batch);
	atomic_fetch_add(&sbq->completion_cnt, nr);
	while (sbq_take_batch(sbq, wake_batch))
		sbq_wake_nr(sbq, wake_batch, false, &cnt);
	sbq_wake_if_stranded(sbq, wake_batch, &cnt);
}

void sbitmap_queue_wake_up(struct sbitmap_queue *sbq, int nr)
{
	if (atomic_load(&sbq->ws_active))
		__sbitmap_queue_wake_up(sbq, nr);
}

/* Let this thread's next allocation start at the bit it just freed. */
static void sbq_update_hint(struct sbitmap *sb, unsigned int nr)
{
	if (likely(!sb->round_robin && nr < READ_ONCE(sb->depth)))
		atomic_store_explicit(sb_hint_ptr(sb), nr,
				      memory_order_relaxed);
}

/* sbitmap_queue_clear() out of line: a bit beyond the map warns here */
void __sbitmap_queue_clear(struct sbitmap_queue *sbq, unsigned int nr)
{
	sbitmap_deferred_clear_bit(&sbq->sb, nr);
	if (unlikely(atomic_load(&sbq->ws_active)))
		__sbitmap_queue_wake_up(sbq, 1);
	sbq_update_hint(&sbq->sb, nr);
}

/*
 * sbitmap_queue_clear_batch() of a map of at most BITS_PER_LONG bits (a
 * queue depth up to 64, in up to four words): the tags are gathered
 * into one mask of the whole map first, then each word's part is cleared
 * with one RMW. The same RMWs as tracking runs of one word, with fewer
 * instructions per tag.
 */
static void sbitmap_clear_small(struct sbitmap *sb, int offset,
				const int *tags, int nr_tags)
{
	const unsigned int shift = sb->shift, nbits = sb->map_alloc << shift;
	const unsigned long word_mask = shift >= 6 ? ~0UL :
					(1UL << (1U << shift)) - 1;
	unsigned long all = 0;
	unsigned int index;
	int i;

	for (i = 0; i < nr_tags; i++) {
		unsigned int tag = (unsigned int)(tags[i] - offset);

		if (WARN_ON_ONCE(tag >= nbits))
			continue;
		all |= 1UL << tag;
	}
	for (index = 0; index < sb->map_alloc; index++) {
		unsigned long mask = (all >> (index << shift)) & word_mask;

		if (mask)
			atomic_fetch_and(&sb->map[index].word, ~mask);
	}
}

/*
 * Bits are cleared straight in ->word, one RMW per run of the same word
 * (a completion batch frees tags mostly in allocation order, so runs are
 * long).
 */
void sbitmap_queue_clear_batch(struct sbitmap_queue *sbq, int offset,
			       const int *tags, int nr_tags)
{
	struct sbitmap *sb = &sbq->sb;
	const unsigned int shift = sb->shift, bits = (1U << shift) - 1;
	unsigned int index = UINT_MAX;
	unsigned long mask = 0;
	int i;

	if (nr_tags <= 0)
		return;
	if (sb->map_alloc << shift <= BITS_PER_LONG) {
		sbitmap_clear_small(sb, offset, tags, nr_tags);
		goto wake;
	}
	for (i = 0; i < nr_tags; i++) {
		unsigned int tag = (unsigned int)(tags[i] - offset);

		if (tag >> shift != index) {
			if (mask)
				atomic_fetch_and(&sb->map[index].word, ~mask);
			mask = 0;
			index = tag >> shift;
			if (WARN_ON_ONCE(index >= sb->map_alloc)) {
				index = UINT_MAX;
				continue;
			}
		}
		mask |= 1UL << (tag & bits);
	}
	if (mask)
		atomic_fetch_and(&sb->map[index].word, ~mask);
wake:
	sbitmap_queue_wake_up(sbq, nr_tags);
	sbq_update_hint(sb, (unsigned int)(tags[nr_tags - 1] - offset));
}

/*
 * Every state is locked, even an empty one: a waiter listing itself after
 * we pass its state took that lock after us, so it sees whatever our caller
 * changed (a resize, say) when it retries the allocation.
 */
void sbitmap_queue_wake_all(struct sbitmap_queue *sbq)
{
	struct sbq_wake_count cnt = { 0, 0 };
	unsigned int i, idx = atomic_load(&sbq->wake_index);

	for (i = 0; i < SBQ_WAIT_QUEUES; i++) {
		sbq_ws_wake(sbq, &sbq->ws[idx], UINT_MAX, false, &cnt);
		idx = (idx + 1) % SBQ_WAIT_QUEUES;
	}
}

/* ---- waiters ---- */

struct sbq_wait_state *sbq_wait_ptr(struct sbitmap_queue *sbq,
				    _Atomic unsigned int *wait_index)
{
	unsigned int old = atomic_load(wait_index), idx;

	do {
		idx = old % SBQ_WAIT_QUEUES;
	} while (!atomic_compare_exchange_weak(wait_index, &old,
					       (idx + 1) % SBQ_WAIT_QUEUES));
	return &sbq->ws[idx];
}

void sbq_wait_init(struct sbq_wait *w)
{
	pthread_condattr_t attr;

	memset(w, 0, sizeof(*w));
	INIT_LIST_HEAD(&w->entry);
	atomic_init(&w->woken, 0);
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
}

void sbq_wait_destroy(struct sbq_wait *w)
{
	WARN_ON_ONCE(smp_load_acquire(&w->ws) != NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

/*
 * ->ws_active goes up before the waiter is listed and before the caller
 * retries the allocation: see the ordering note at the top of this file.
 */
void sbitmap_prepare_to_wait(struct sbitmap_queue *sbq,
			     struct sbq_wait_state *ws, struct sbq_wait *w)
{
	w->func = sbq_wake_sleeper;
	if (!w->sbq) {
		w->sbq = sbq;
		atomic_fetch_add(&sbq->ws_active, 1);
	}
	sbq_enqueue(ws, w);
}

/*
 * ->woken is set under w->lock by sbq_wake_sleeper() and reset only while
 * the waiter is off every list, so a wake that came between prepare and
 * here is seen and we do not sleep.
 */
void sbitmap_wait(struct sbq_wait *w)
{
	bool listed = smp_load_acquire(&w->ws) != NULL;

	pthread_mutex_lock(&w->lock);
	if (WARN_ON_ONCE(!atomic_load(&w->woken) && !listed)) {
		pthread_mutex_unlock(&w->lock);
		return;	/* not prepared: nobody would wake us */
	}
	while (!atomic_load(&w->woken))
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

bool sbitmap_wait_timeout(struct sbq_wait *w, long long timeout_ns)
{
	struct timespec ts;
	bool woken;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ns < 0)
		timeout_ns = 0;
	ts.tv_sec += timeout_ns / 1000000000LL;
	ts.tv_nsec += timeout_ns % 1000000000LL;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&w->woken)) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
	woken = atomic_load(&w->woken);
	pthread_mutex_unlock(&w->lock);
	return woken;
}

/*
 * @ws is the state passed to sbitmap_prepare_to_wait(); the waiter records
 * where it really is, so it is only checked.
 */
void sbitmap_finish_wait(struct sbitmap_queue *sbq, struct sbq_wait_state *ws,
			 struct sbq_wait *w)
{
	struct sbq_wait_state *cur = smp_load_acquire(&w->ws);

	WARN_ON_ONCE(cur && cur != ws);
	sbq_dequeue(w);
	if (w->sbq) {
		atomic_fetch_sub(&sbq->ws_active, 1);
		w->sbq = NULL;
	}
}

/*
 * A callback waiter counts in ->ws_active exactly while it is listed: the
 * waker or sbitmap_del_wait_queue() drops it, whichever takes it off.
 * Adding and removing the same waiter concurrently is the caller's to
 * prevent (blk-mq serialises them per hardware queue).
 */
void sbitmap_add_wait_queue(struct sbitmap_queue *sbq,
			    struct sbq_wait_state *ws, struct sbq_wait *w)
{
	WARN_ON_ONCE(!w->func || sbq_is_sleeper(w));
	w->sbq = sbq;
	atomic_fetch_add(&sbq->ws_active, 1);
	if (!sbq_enqueue(ws, w))
		atomic_fetch_sub(&sbq->ws_active, 1);
}

void sbitmap_del_wait_queue(struct sbq_wait *w)
{
	if (sbq_dequeue(w))
		atomic_fetch_sub(&w->sbq->ws_active, 1);
}
