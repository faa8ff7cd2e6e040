// SPDX-License-Identifier: MIT
#include <linux/membarrier.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bug.h"
#include "percpu-ref.h"
#include "time.h"

static bool membarrier_ok;
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register(void)
{
	/* BLKSTACK_NO_MEMBARRIER=1 forces the atomic path (tests) */
	if (getenv("BLKSTACK_NO_MEMBARRIER"))
		return;
	membarrier_ok = syscall(__NR_membarrier,
				MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
				0, 0) == 0;
}

bool percpu_ref_fast_path(void)
{
	pthread_once(&membarrier_once, membarrier_register);
	return membarrier_ok;
}

/* A full barrier on every running thread of the process. */
static void membarrier_all(void)
{
	if (membarrier_ok)
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	smp_mb();
}

/* Plain update allowed: one writer per slot, and membarrier orders it. */
static inline bool slot_fast(const struct thread_slot *ts)
{
	return likely(membarrier_ok) && likely(!ts->shared);
}

static inline void slot_add(struct percpu_ref *ref, long v)
{
	struct thread_slot *ts = this_thread_slot();
	_Atomic long *c = &ref->slot[ts->slot].count;

	if (slot_fast(ts)) {
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

void percpu_ref_init(struct percpu_ref *ref)
{
	pthread_condattr_t attr;

	pthread_once(&membarrier_once, membarrier_register);
	for (int i = 0; i < PERCPU_REF_SLOTS; i++)
		atomic_init(&ref->slot[i].count, 0);
	atomic_init(&ref->dying, 0);
	atomic_init(&ref->waiters, 0);
	pthread_mutex_init(&ref->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ref->wq, &attr);
	pthread_condattr_destroy(&attr);
}

void percpu_ref_exit(struct percpu_ref *ref)
{
	WARN_ON(percpu_ref_sum(ref) != 0);
	pthread_mutex_destroy(&ref->lock);
	pthread_cond_destroy(&ref->wq);
}

static long __percpu_ref_sum(struct percpu_ref *ref)
{
	long sum = 0;

	for (int i = 0; i < PERCPU_REF_SLOTS; i++)
		sum += atomic_load_explicit(&ref->slot[i].count,
					    memory_order_acquire);
	return sum;
}

long percpu_ref_sum(struct percpu_ref *ref)
{
	membarrier_all();
	return __percpu_ref_sum(ref);
}

bool percpu_ref_tryget_live(struct percpu_ref *ref)
{
	slot_add(ref, 1);
	/* acquire: what the unfreezer changed is seen by the new holder */
	if (likely(!atomic_load_explicit(&ref->dying, memory_order_acquire)))
		return true;
	percpu_ref_put(ref);
	return false;
}

void percpu_ref_get(struct percpu_ref *ref)
{
	slot_add(ref, 1);
}

void percpu_ref_put(struct percpu_ref *ref)
{
	slot_add(ref, -1);
	/* someone draining the ref sleeps: let them re-sum now */
	if (unlikely(atomic_load_explicit(&ref->dying, memory_order_relaxed)) &&
	    atomic_load(&ref->waiters))
		percpu_ref_wake(ref);
}

void percpu_ref_kill(struct percpu_ref *ref)
{
	atomic_store(&ref->dying, 1);
}

void percpu_ref_resurrect(struct percpu_ref *ref)
{
	atomic_store(&ref->dying, 0);
	percpu_ref_wake(ref);
}

bool percpu_ref_is_dying(struct percpu_ref *ref)
{
	return atomic_load(&ref->dying);
}

bool percpu_ref_is_zero(struct percpu_ref *ref)
{
	return atomic_load(&ref->dying) && percpu_ref_sum(ref) == 0;
}

void percpu_ref_wake(struct percpu_ref *ref)
{
	pthread_mutex_lock(&ref->lock);
	pthread_cond_broadcast(&ref->wq);
	pthread_mutex_unlock(&ref->lock);
}

/*
 * A put racing with our sum may not see ->waiters (its plain store is not
 * ordered against its read of ->waiters): the wake-up is a shortcut, and
 * the wait is bounded so the sum is taken again. Draining is rare.
 */
void percpu_ref_wait_zero(struct percpu_ref *ref)
{
	pthread_mutex_lock(&ref->lock);
	atomic_fetch_add(&ref->waiters, 1);
	while (percpu_ref_sum(ref) != 0) {
		struct timespec ts = ns_to_timespec(ktime_get_ns() +
						    NSEC_PER_MSEC);

		pthread_cond_timedwait(&ref->wq, &ref->lock, &ts);
	}
	atomic_fetch_sub(&ref->waiters, 1);
	pthread_mutex_unlock(&ref->lock);
}

void percpu_ref_wait_live(struct percpu_ref *ref, bool (*give_up)(void *),
			  void *arg)
{
	pthread_mutex_lock(&ref->lock);
	while (atomic_load(&ref->dying) && !(give_up && give_up(arg)))
		pthread_cond_wait(&ref->wq, &ref->lock);
	pthread_mutex_unlock(&ref->lock);
}
