// SPDX-License-Identifier: MIT
#include <linux/membarrier.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bug.h"
#include "percpu-ref.h"
#include "time.h"

bool percpu_ref_membarrier_ok;
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register(void)
{
	/* BLKSTACK_NO_MEMBARRIER=1 forces the atomic path (tests) */
	if (getenv("BLKSTACK_NO_MEMBARRIER"))
		return;
	percpu_ref_membarrier_ok = syscall(__NR_membarrier,
				MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
				0, 0) == 0;
}

bool percpu_ref_fast_path(void)
{
	pthread_once(&membarrier_once, membarrier_register);
	return percpu_ref_membarrier_ok;
}

/* A full barrier on every running thread of the process. */
static void membarrier_all(void)
{
	if (percpu_ref_membarrier_ok)
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	smp_mb();
}

void percpu_ref_init(struct percpu_ref *ref)
{
	pthread_condattr_t attr;

	pthread_once(&membarrier_once, membarrier_register);
	for (int i = 0; i < PERCPU_REF_SLOTS; i++)
		atomic_init(&ref->slot[i].count, 0);
	atomic_init(&ref->dying, 0);
	atomic_init(&ref->waiters, 0);
	atomic_init(&ref->wake_pending, 0);
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

/*
 * The slow side of percpu_ref_put() on a dying ref: one wake-up per pass
 * of the drainer, not one per put. Getters refused by a dying ref put
 * in a tight loop; each taking ->lock would keep the drainer from
 * taking it back to sum again (a drain could take seconds).
 */
void percpu_ref_wake_drainer(struct percpu_ref *ref)
{
	if (atomic_load(&ref->waiters) &&
	    !atomic_exchange(&ref->wake_pending, 1))
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
	for (;;) {
		struct timespec ts;

		/* under ->lock: a put's wake-up after this reaches our wait */
		atomic_store(&ref->wake_pending, 0);
		if (percpu_ref_sum(ref) == 0)
			break;
		ts = ns_to_timespec(ktime_get_ns() + NSEC_PER_MSEC);
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
