/* SPDX-License-Identifier: MIT */
/*
 * Scalable bitmaps (the kernel's lib/sbitmap.c behaviour, written here).
 *
 * struct sbitmap splits a bitmap of @depth bits into words of 1 << shift
 * bits, each word on its own cache line, so threads allocating from
 * different words do not bounce lines. Allocation starts from a per-thread
 * hint so concurrent allocators spread over the map. Freed bits go to the
 * word's ->cleared mask first (deferred clearing): the allocator folds
 * ->cleared back into ->word only when the word looks full, which keeps the
 * free path to one atomic OR on a line the allocator rarely touches.
 *
 * struct sbitmap_queue adds waiting: SBQ_WAIT_QUEUES wait states, waiters
 * spread round-robin over them, and frees wake waiters in batches of
 * ->wake_batch so a busy queue does not wake one sleeper per free.
 * A waiter that prepared to wait and then finds a free bit must never
 * sleep forever: no lost wake-ups.
 *
 * Locking: all get/clear operations are lock-free. Wait-state lists are
 * protected by a per-wait-state mutex.
 */
#ifndef BLKSTACK_LIB_SBITMAP_H
#define BLKSTACK_LIB_SBITMAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "compiler.h"
#include <blkstack/list.h>

#define SBQ_WAIT_QUEUES	8
#define SBQ_WAKE_BATCH	8
#define BITS_PER_LONG	64

struct sbitmap_word {
	/* bits in use (1 = allocated) */
	_Atomic unsigned long word;
	/* bits freed but not yet folded back into ->word */
	_Atomic unsigned long cleared ____cacheline_aligned;
	/* serialises folding ->cleared into ->word */
	_Atomic int swap_lock;
} ____cacheline_aligned;

struct sbitmap {
	unsigned int depth;	/* bits in use, <= map_nr << shift */
	unsigned int shift;	/* log2 of bits per word */
	unsigned int map_nr;	/* words in use */
	unsigned int map_alloc;	/* words allocated (resize never grows past) */
	bool round_robin;	/* strict round-robin allocation (hints advance) */
	struct sbitmap_word *map;
	/* per-thread allocation hints: a thread uses slot (thread id % nr) */
	unsigned int nr_hints;
	struct sbitmap_hint *alloc_hint;
};

struct sbitmap_hint {
	_Atomic unsigned int hint;
} ____cacheline_aligned;

/*
 * A waiter. @func is called with the wait state's lock held when the waiter
 * is woken; the default (set by sbitmap_prepare_to_wait) wakes the sleeping
 * thread. blk-mq sets its own @func to rerun a queue instead of sleeping.
 * @func returns true if it counts as a wake-up (the waiter is removed).
 * @func runs with the waiter still listed; the waker removes it if @func
 * returns true. @func must not free bits of, or wait on, the same
 * sbitmap_queue (the wait-state lock is held): schedule work instead.
 */
struct sbq_wait {
	struct list_head entry;
	bool (*func)(struct sbq_wait *w);
	void *private;
	/*
	 * A sleeper: set while counted in ->ws_active, from
	 * sbitmap_prepare_to_wait() to sbitmap_finish_wait(). A callback
	 * waiter: the queue given to sbitmap_add_wait_queue() (it counts in
	 * ->ws_active while listed). One sbq_wait is used one way only.
	 */
	struct sbitmap_queue *sbq;
	/* the wait state whose list holds @entry, NULL when off any list */
	struct sbq_wait_state *ws;
	_Atomic int woken;
	pthread_mutex_t lock;		/* for the default sleeping waiter */
	pthread_cond_t cond;
};

struct sbq_wait_state {
	pthread_mutex_t lock;
	struct list_head waiters;
	/* waiters on ->waiters; lets wakers skip empty states unlocked */
	_Atomic unsigned int nr_waiters;
} ____cacheline_aligned;

struct sbitmap_queue {
	struct sbitmap sb;
	unsigned int wake_batch;
	_Atomic unsigned int wake_index;
	struct sbq_wait_state *ws;
	_Atomic int ws_active;		/* waiters on all wait states */
	unsigned int min_shallow_depth;
	_Atomic unsigned int completion_cnt;
	_Atomic unsigned int wakeup_cnt;
};

/* ---- sbitmap ---- */

/*
 * sbitmap_init() - @shift < 0 picks a default (word size chosen so the map
 * spreads over about 4 words when @depth is small). Returns 0 or -errno
 * (-EINVAL for shift > 6, -ENOMEM).
 */
int sbitmap_init(struct sbitmap *sb, unsigned int depth, int shift,
		 bool round_robin);
void sbitmap_free(struct sbitmap *sb);
/*
 * Shrink or grow within the allocated words (a larger @depth is clamped to
 * them); bits past @depth are ignored.
 */
void sbitmap_resize(struct sbitmap *sb, unsigned int depth);
/* Returns a free bit number (now set) or -1. */
int sbitmap_get(struct sbitmap *sb);
/* Like sbitmap_get(), using at most @shallow_depth bits of each word. */
int sbitmap_get_shallow(struct sbitmap *sb, unsigned long shallow_depth);
bool sbitmap_any_bit_set(const struct sbitmap *sb);
/* Number of set bits, excluding deferred-cleared ones. */
unsigned int sbitmap_weight(const struct sbitmap *sb);
void sbitmap_set_bit(struct sbitmap *sb, unsigned int bitnr);
void sbitmap_clear_bit(struct sbitmap *sb, unsigned int bitnr);
/* Free @bitnr through the word's ->cleared mask. */
void sbitmap_deferred_clear_bit(struct sbitmap *sb, unsigned int bitnr);
bool sbitmap_bad_bit(const struct sbitmap *sb, unsigned int bitnr);
/*
 * True if @bitnr is set and not freed through ->cleared. Inline: blk-mq
 * asks it of every bio that might merge into a software queue.
 */
static inline bool sbitmap_test_bit(const struct sbitmap *sb,
				    unsigned int bitnr)
{
	unsigned int index = bitnr >> sb->shift;
	unsigned long bit = 1UL << (bitnr & ((1U << sb->shift) - 1));
	const struct sbitmap_word *map = &sb->map[index];

	if (unlikely(index >= sb->map_alloc))
		return sbitmap_bad_bit(sb, bitnr);
	return atomic_load(&map->word) & ~atomic_load(&map->cleared) & bit;
}
/*
 * Call @fn for each set bit (ignoring deferred-cleared ones) from bit 0
 * upwards; stop early when @fn returns false.
 */
void sbitmap_for_each_set(struct sbitmap *sb,
			  bool (*fn)(struct sbitmap *, unsigned int, void *),
			  void *data);

static inline unsigned int sbitmap_bits_per_word(const struct sbitmap *sb)
{
	return 1U << sb->shift;
}

/* ---- sbitmap_queue ---- */

int sbitmap_queue_init(struct sbitmap_queue *sbq, unsigned int depth,
		       int shift, bool round_robin);
void sbitmap_queue_free(struct sbitmap_queue *sbq);
/* Change the depth and recompute wake_batch; waiters are woken. */
void sbitmap_queue_resize(struct sbitmap_queue *sbq, unsigned int depth);
/* Returns a free bit or -1; never sleeps. */
int __sbitmap_queue_get(struct sbitmap_queue *sbq);
/*
 * Get up to @nr_tags bits at once from one word. Returns a mask of the bits
 * obtained relative to *@offset (bit i of the mask is bit *@offset + i), or
 * 0 when none could be had.
 */
unsigned long __sbitmap_queue_get_batch(struct sbitmap_queue *sbq, int nr_tags,
					unsigned int *offset);
/* Like __sbitmap_queue_get() but limited to @shallow_depth bits per word. */
int sbitmap_queue_get_shallow(struct sbitmap_queue *sbq,
			      unsigned int shallow_depth);
/*
 * Tell the queue the smallest shallow depth any caller will use, so that
 * wake_batch stays small enough for shallow waiters to be woken.
 */
void sbitmap_queue_min_shallow_depth(struct sbitmap_queue *sbq,
				     unsigned int min_shallow_depth);
/* sbitmap_queue_clear(): inline, below */
/* Free @nr_tags bits (@tags[i] - @offset) with one wake-up accounting. */
void sbitmap_queue_clear_batch(struct sbitmap_queue *sbq, int offset,
			       const int *tags, int nr_tags);
/* Account @nr frees and wake waiters if a batch completed. */
void sbitmap_queue_wake_up(struct sbitmap_queue *sbq, int nr);
/* Wake every waiter on every wait state. */
void sbitmap_queue_wake_all(struct sbitmap_queue *sbq);

/* Pick the wait state for the next waiter (round-robin over ws). */
struct sbq_wait_state *sbq_wait_ptr(struct sbitmap_queue *sbq,
				    _Atomic unsigned int *wait_index);

void sbq_wait_init(struct sbq_wait *w);
void sbq_wait_destroy(struct sbq_wait *w);
/*
 * Sleep protocol (the caller retries allocation between each step):
 *	sbitmap_prepare_to_wait(sbq, ws, &wait);
 *	if ((nr = __sbitmap_queue_get(sbq)) < 0)
 *		sbitmap_wait(&wait);           // sleeps until woken
 *	sbitmap_finish_wait(sbq, ws, &wait);
 */
void sbitmap_prepare_to_wait(struct sbitmap_queue *sbq,
			     struct sbq_wait_state *ws, struct sbq_wait *w);
void sbitmap_wait(struct sbq_wait *w);
/* Like sbitmap_wait() but gives up after @timeout_ns; false on time-out. */
bool sbitmap_wait_timeout(struct sbq_wait *w, long long timeout_ns);
void sbitmap_finish_wait(struct sbitmap_queue *sbq, struct sbq_wait_state *ws,
			 struct sbq_wait *w);
/*
 * Put a waiter with a caller-set @w->func on @ws without sleeping (blk-mq's
 * dispatch wait). Removed when woken; sbitmap_del_wait_queue() removes it
 * early. Both are safe if @w is already on (or off) the list.
 */
void sbitmap_add_wait_queue(struct sbitmap_queue *sbq,
			    struct sbq_wait_state *ws, struct sbq_wait *w);
void sbitmap_del_wait_queue(struct sbq_wait *w);

/* ---- inline fast paths ---- */

#define SB_NR_HINTS	64

/* Thread id used to pick hint slots; cheap, cached per thread. */
extern _Thread_local unsigned int sb_slot_plus1
	__attribute__((tls_model("initial-exec")));
unsigned int sbitmap_thread_slot_claim(void);

static inline unsigned int sbitmap_thread_slot(void)
{
	unsigned int s = sb_slot_plus1;

	return likely(s) ? s - 1 : sbitmap_thread_slot_claim();
}

void __sbitmap_queue_clear(struct sbitmap_queue *sbq, unsigned int nr);
void __sbitmap_queue_wake_up(struct sbitmap_queue *sbq, int nr);

/*
 * Free @nr and wake waiters as the batch count says. When the bits still
 * held plus the pending credit can no longer make up a batch, a waiter is
 * woken anyway, so a sleeper is never left behind on an idle map.
 *
 * Inline: every request frees its tag here. The SC fetch_or that frees
 * the bit orders everything the holder did with it before the next
 * owner's allocation, and before the ->ws_active load (see sbitmap.c).
 * Then this thread's next allocation starts at the bit just freed.
 */
static inline void sbitmap_queue_clear(struct sbitmap_queue *sbq,
				       unsigned int nr)
{
	struct sbitmap *sb = &sbq->sb;
	unsigned int index = nr >> sb->shift;

	if (unlikely(index >= sb->map_alloc)) {
		__sbitmap_queue_clear(sbq, nr);		/* warns */
		return;
	}
	atomic_fetch_or(&sb->map[index].cleared,
			1UL << (nr & ((1U << sb->shift) - 1)));
	if (unlikely(atomic_load(&sbq->ws_active)))
		__sbitmap_queue_wake_up(sbq, 1);
	if (likely(!sb->round_robin && nr < READ_ONCE(sb->depth)))
		atomic_store_explicit(&sb->alloc_hint[sbitmap_thread_slot() %
						      SB_NR_HINTS].hint,
				      nr, memory_order_relaxed);
}

#endif
