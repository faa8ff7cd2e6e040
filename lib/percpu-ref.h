/* SPDX-License-Identifier: MIT */
/*
 * A usage counter that is cheap to take and drop from many threads and can
 * be "killed" (no new users) and waited on until it drains: the kernel's
 * percpu_ref as the request queue's q_usage_counter uses it.
 *
 * Each thread counts in its own slot (lib/thread-slot.h). Getting a
 * reference increments the slot and then reads ->dying; killing sets
 * ->dying and then sums the slots. For the sum never to read zero while a
 * successful holder remains, the getter's increment must be ordered before
 * its read of ->dying. The kernel gets that from RCU; here the drainer
 * issues membarrier(2), which runs a full barrier on every thread of the
 * process, so the getter itself needs only a compiler barrier and a plain
 * store on a slot nobody else writes (the liburcu scheme). Where
 * membarrier is missing, or a thread shares its slot, the getter uses a
 * sequentially consistent atomic add instead.
 *
 * A reference may be put from a different thread than the one that took
 * it: only the sum matters.
 */
#ifndef BLKSTACK_LIB_PERCPU_REF_H
#define BLKSTACK_LIB_PERCPU_REF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "compiler.h"
#include "thread-slot.h"

#define PERCPU_REF_SLOTS THREAD_SLOTS

struct percpu_ref_slot {
	_Atomic long count;
} ____cacheline_aligned;

struct percpu_ref {
	struct percpu_ref_slot slot[PERCPU_REF_SLOTS];
	_Atomic int dying ____cacheline_aligned;
	pthread_mutex_t lock;
	pthread_cond_t wq;	/* waiters for "drained" and for "alive" */
	_Atomic int waiters;
	_Atomic int wake_pending;	/* a put woke the drainer this pass */
};

void percpu_ref_init(struct percpu_ref *ref);
void percpu_ref_exit(struct percpu_ref *ref);
/* Take a reference unless the ref is dying. */
static inline bool percpu_ref_tryget_live(struct percpu_ref *ref);
static inline void percpu_ref_get(struct percpu_ref *ref);
/* @nr references at once (a batch of requests from a plug). */
static inline void percpu_ref_get_many(struct percpu_ref *ref, long nr);
static inline void percpu_ref_put(struct percpu_ref *ref);
static inline void percpu_ref_put_many(struct percpu_ref *ref, long nr);
/* No new live references from now on. */
void percpu_ref_kill(struct percpu_ref *ref);
/* Allow live references again and wake those waiting for it. */
void percpu_ref_resurrect(struct percpu_ref *ref);
bool percpu_ref_is_zero(struct percpu_ref *ref);
bool percpu_ref_is_dying(struct percpu_ref *ref);
/* The current count, after making every thread's updates visible. */
long percpu_ref_sum(struct percpu_ref *ref);
/* Sleep until the ref is zero (after kill). */
void percpu_ref_wait_zero(struct percpu_ref *ref);
/* Sleep until the ref is alive again, or @give_up(arg) says stop. */
void percpu_ref_wait_live(struct percpu_ref *ref,
			  bool (*give_up)(void *arg), void *arg);
/* Wake everyone sleeping in wait_zero/wait_live to recheck. */
void percpu_ref_wake(struct percpu_ref *ref);
/* Whether the membarrier fast path is in use (for tests and the dump). */
bool percpu_ref_fast_path(void);

/*
 * The get and put are on every I/O: inline, so that each is a load, an
 * add and a store on the thread's own slot.
 */
extern bool percpu_ref_membarrier_ok;
void percpu_ref_wake_drainer(struct percpu_ref *ref);

/* Plain update allowed: one writer per slot, and membarrier orders it. */
static inline bool percpu_ref_slot_fast(const struct thread_slot *ts)
{
	return likely(percpu_ref_membarrier_ok) && likely(!ts->shared);
}

static inline void percpu_ref_slot_add(struct percpu_ref *ref, long v)
{
	struct thread_slot *ts = this_thread_slot();
	_Atomic long *c = &ref->slot[ts->slot].count;

	if (percpu_ref_slot_fast(ts)) {
		/*
		 * release: free on x86, and it gives the drainer's acquire
		 * sum a happens-before edge (what a holder did before its
		 * put is seen by whoever finds the ref drained).
		 */
		atomic_store_explicit(c, atomic_load_explicit(c,
				      memory_order_relaxed) + v,
				      memory_order_release);
		/* the update before any later read of ->dying */
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		atomic_fetch_add(c, v);		/* seq_cst: a full barrier */
	}
}

static inline void percpu_ref_put_many(struct percpu_ref *ref, long nr)
{
	percpu_ref_slot_add(ref, -nr);
	/* someone draining the ref sleeps: let them re-sum now */
	if (unlikely(atomic_load_explicit(&ref->dying, memory_order_relaxed)))
		percpu_ref_wake_drainer(ref);
}

static inline void percpu_ref_put(struct percpu_ref *ref)
{
	percpu_ref_put_many(ref, 1);
}

static inline bool percpu_ref_tryget_live(struct percpu_ref *ref)
{
	percpu_ref_slot_add(ref, 1);
	/* acquire: what the unfreezer changed is seen by the new holder */
	if (likely(!atomic_load_explicit(&ref->dying, memory_order_acquire)))
		return true;
	percpu_ref_put(ref);
	return false;
}

static inline void percpu_ref_get(struct percpu_ref *ref)
{
	percpu_ref_slot_add(ref, 1);
}

static inline void percpu_ref_get_many(struct percpu_ref *ref, long nr)
{
	percpu_ref_slot_add(ref, nr);
}

#endif
