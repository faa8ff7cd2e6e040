// SPDX-License-Identifier: MIT
#include "percpu-ref.h"
#include "bug.h"

static _Atomic unsigned int next_slot;
static _Thread_local int my_slot = -1;

static struct percpu_ref_slot *this_slot(struct percpu_ref *ref)
{
	if (unlikely(my_slot < 0))
		my_slot = (int)(atomic_fetch_add(&next_slot, 1) %
				PERCPU_REF_SLOTS);
	return &ref->slot[my_slot];
}

void percpu_ref_init(struct percpu_ref *ref)
{
	pthread_condattr_t attr;

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

long percpu_ref_sum(struct percpu_ref *ref)
{
	long sum = 0;

	for (int i = 0; i < PERCPU_REF_SLOTS; i++)
		sum += atomic_load(&ref->slot[i].count);
	return sum;
}

bool percpu_ref_tryget_live(struct percpu_ref *ref)
{
	struct percpu_ref_slot *s = this_slot(ref);

	atomic_fetch_add(&s->count, 1);		/* seq_cst: before the load */
	if (likely(!atomic_load(&ref->dying)))
		return true;
	percpu_ref_put(ref);
	return false;
}

void percpu_ref_get(struct percpu_ref *ref)
{
	atomic_fetch_add_explicit(&this_slot(ref)->count, 1,
				  memory_order_relaxed);
}

void percpu_ref_put(struct percpu_ref *ref)
{
	atomic_fetch_sub(&this_slot(ref)->count, 1);
	/* someone draining the ref sleeps: let them re-sum */
	if (unlikely(atomic_load(&ref->dying)) &&
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

void percpu_ref_wait_zero(struct percpu_ref *ref)
{
	pthread_mutex_lock(&ref->lock);
	atomic_fetch_add(&ref->waiters, 1);
	/*
	 * ->waiters goes up before we sum and a put drops its count before
	 * it reads ->waiters (both seq_cst): either our sum sees the put, or
	 * the put sees us and broadcasts under the lock we hold until we
	 * sleep. No wake-up is lost.
	 */
	while (percpu_ref_sum(ref) != 0)
		pthread_cond_wait(&ref->wq, &ref->lock);
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
