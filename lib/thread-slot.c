// SPDX-License-Identifier: MIT
#include <pthread.h>
#include <stdint.h>

#include "bug.h"
#include "thread-slot.h"

BUILD_BUG_ON(THREAD_SLOTS > 64);

_Thread_local struct thread_slot current_thread_slot = { .slot = -1 };

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
/*
 * Bit per exclusively owned slot. The last slot is never owned: threads
 * that find no free slot all share it, with atomic updates, so a plain
 * store of an owner can never race with them.
 */
static uint64_t slot_used = 1ULL << (THREAD_SLOTS - 1);
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void thread_slot_release(void *arg)
{
	int slot = (int)(intptr_t)arg - 1;

	pthread_mutex_lock(&slot_lock);
	slot_used &= ~(1ULL << slot);
	pthread_mutex_unlock(&slot_lock);
}

static void thread_slot_key_init(void)
{
	BUG_ON(pthread_key_create(&slot_key, thread_slot_release));
}

void thread_slot_claim(void)
{
	struct thread_slot *ts = &current_thread_slot;

	pthread_once(&slot_once, thread_slot_key_init);
	pthread_mutex_lock(&slot_lock);
	if (~slot_used) {
		ts->slot = __builtin_ctzll(~slot_used);
		ts->shared = false;
		slot_used |= 1ULL << ts->slot;
		pthread_setspecific(slot_key, (void *)(intptr_t)(ts->slot + 1));
	} else {
		ts->slot = THREAD_SLOTS - 1;
		ts->shared = true;
	}
	pthread_mutex_unlock(&slot_lock);
}
