// SPDX-License-Identifier: MIT
/*
 * Rings kept from traces that ended, for the next trace to take.
 *
 * A fresh ring costs a page fault per 4 KiB the first time each page is
 * touched, and under a hypervisor that shadows the guest's page tables
 * that is dear: on the machine of bench/blktrace.sh a page costs ~11 us
 * at its first touch even after MADV_POPULATE_WRITE (0.6 us in the
 * guest, the rest in the host), so a 4 MiB ring costs ~11 ms, paid by
 * the producer on its first way round. A trace started and stopped over
 * and over (blkctl trace run, the sysfs switch, the benchmark's windows)
 * paid it every time. The kernel's relay buffers are made at setup, off
 * the I/O path; ours are made at a thread's first event, so they are
 * kept instead: up to BT_POOL_RINGS rings and BT_POOL_BYTES of mappings
 * in all, given back to the system BT_POOL_KEEP_MS after the last one came
 * in.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "blktrace-priv.h"
#include "lib/workqueue.h"

#define BT_POOL_BYTES (64UL << 20)
#define BT_POOL_KEEP_MS 10000

/* how long kept rings wait for a trace: BT_POOL_KEEP_MS but in tests */
static _Atomic unsigned long bt_pool_keep_ms = BT_POOL_KEEP_MS;

static struct {
	pthread_mutex_t lock;
	unsigned int nr;
	size_t bytes;
	struct bt_ring *ring[BT_POOL_RINGS];
	struct delayed_work reap;
	bool reap_ready;
} bt_pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void bt_ring_unmap(struct bt_ring *r)
{
	munmap(r->map, r->map_len);
}

/*
 * A kept ring of @entries, its header as a fresh mapping's (all zero but
 * the mapping it lives in), or NULL.
 */
struct bt_ring *bt_ring_pool_get(uint64_t entries)
{
	struct bt_ring *r = NULL;
	void *map;
	size_t map_len;

	pthread_mutex_lock(&bt_pool.lock);
	for (unsigned int i = 0; i < bt_pool.nr; i++) {
		if (bt_pool.ring[i]->mask + 1 != entries)
			continue;
		r = bt_pool.ring[i];
		bt_pool.ring[i] = bt_pool.ring[--bt_pool.nr];
		bt_pool.bytes -= r->map_len;
		break;
	}
	pthread_mutex_unlock(&bt_pool.lock);
	if (!r)
		return NULL;
	map = r->map;
	map_len = r->map_len;
	memset(r, 0, sizeof(*r));
	r->map = map;
	r->map_len = map_len;
	return r;
}

void bt_ring_pool_reap(void)
{
	struct bt_ring *ring[BT_POOL_RINGS];
	unsigned int nr;

	pthread_mutex_lock(&bt_pool.lock);
	nr = bt_pool.nr;
	memcpy(ring, bt_pool.ring, nr * sizeof(ring[0]));
	bt_pool.nr = 0;
	bt_pool.bytes = 0;
	pthread_mutex_unlock(&bt_pool.lock);
	for (unsigned int i = 0; i < nr; i++)
		bt_ring_unmap(ring[i]);
}

static void bt_pool_reap_work(struct work_struct *w)
{
	bt_ring_pool_reap();
}

/* Keep @r for a later trace, or unmap it if the pool is full. */
void bt_ring_pool_put(struct bt_ring *r)
{
	bool kept = false;

	pthread_mutex_lock(&bt_pool.lock);
	if (bt_pool.nr < BT_POOL_RINGS &&
	    bt_pool.bytes + r->map_len <= BT_POOL_BYTES) {
		bt_pool.ring[bt_pool.nr++] = r;
		bt_pool.bytes += r->map_len;
		kept = true;
		if (!bt_pool.reap_ready) {
			INIT_DELAYED_WORK(&bt_pool.reap, bt_pool_reap_work);
			bt_pool.reap_ready = true;
		}
		kblockd_mod_delayed_work(&bt_pool.reap,
					 atomic_load(&bt_pool_keep_ms));
	}
	pthread_mutex_unlock(&bt_pool.lock);
	if (!kept)
		bt_ring_unmap(r);
}

void bt_ring_pool_set_keep(unsigned long msecs)
{
	atomic_store(&bt_pool_keep_ms, msecs ? msecs : BT_POOL_KEEP_MS);
}

unsigned int bt_ring_pool_count(void)
{
	unsigned int nr;

	pthread_mutex_lock(&bt_pool.lock);
	nr = bt_pool.nr;
	pthread_mutex_unlock(&bt_pool.lock);
	return nr;
}
