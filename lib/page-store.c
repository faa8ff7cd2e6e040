// SPDX-License-Identifier: MIT
/*
 * The sparse page store: a two-level table (first level allocated up
 * front, second-level tables of 512 page pointers made on first write),
 * so a 1 TiB device costs 2 MiB until it is written. A page's stripe
 * lock covers its contents; second-level tables appear with a
 * compare-and-swap and never go away until the store is freed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compiler.h"
#include "lib/page-store.h"

#define L2_SHIFT	9
#define L2_SIZE		(1U << L2_SHIFT)

int page_store_init(struct page_store *s, uint64_t bytes)
{
	memset(s, 0, sizeof(*s));
	s->bytes = bytes;
	s->nr_pages = DIV_ROUND_UP(bytes, PAGE_STORE_PAGE);
	s->nr_l1 = (size_t)DIV_ROUND_UP(s->nr_pages, L2_SIZE);
	s->l1 = calloc(s->nr_l1 ? s->nr_l1 : 1, sizeof(*s->l1));
	if (!s->l1)
		return -ENOMEM;
	for (int i = 0; i < PAGE_STORE_STRIPES; i++)
		pthread_spin_init(&s->stripe[i], PTHREAD_PROCESS_PRIVATE);
	return 0;
}

void page_store_free(struct page_store *s)
{
	if (!s->l1)
		return;
	for (size_t i = 0; i < s->nr_l1; i++) {
		void **l2 = s->l1[i];

		if (!l2)
			continue;
		for (unsigned int j = 0; j < L2_SIZE; j++)
			free(l2[j]);
		free(l2);
	}
	free(s->l1);
	s->l1 = NULL;
	for (int i = 0; i < PAGE_STORE_STRIPES; i++)
		pthread_spin_destroy(&s->stripe[i]);
}

/* The slot of page @idx; with @alloc, make its table if missing. */
static void **page_slot(struct page_store *s, uint64_t idx, bool alloc)
{
	void **_Atomic *l1p = &s->l1[idx >> L2_SHIFT];
	void **l2 = atomic_load_explicit(l1p, memory_order_acquire);

	if (!l2) {
		void **fresh, **expected = NULL;

		if (!alloc)
			return NULL;
		fresh = calloc(L2_SIZE, sizeof(*fresh));
		if (!fresh)
			return NULL;
		if (atomic_compare_exchange_strong(l1p, &expected, fresh)) {
			l2 = fresh;
		} else {
			free(fresh);
			l2 = expected;
		}
	}
	return &l2[idx & (L2_SIZE - 1)];
}

static pthread_spinlock_t *page_lock(struct page_store *s, uint64_t idx)
{
	return &s->stripe[idx % PAGE_STORE_STRIPES];
}

/* Walk [@off, @off + @len) a page piece at a time. */
#define for_each_page_piece(off, len, idx, poff, n)			\
	for (uint64_t __end = (off) + (len); (off) < __end &&		\
	     ((idx) = (off) / PAGE_STORE_PAGE,				\
	      (poff) = (unsigned int)((off) % PAGE_STORE_PAGE),		\
	      (n) = (unsigned int)min((uint64_t)PAGE_STORE_PAGE - (poff),	\
				      __end - (off)), 1);		\
	     (off) += (n))

int page_store_write(struct page_store *s, uint64_t off, const void *buf,
		     uint64_t len)
{
	const char *src = buf;
	unsigned int poff, n;
	uint64_t idx;

	for_each_page_piece(off, len, idx, poff, n) {
		void **slot = page_slot(s, idx, true);
		int ret = 0;

		if (!slot)
			return -ENOMEM;
		pthread_spin_lock(page_lock(s, idx));
		if (!*slot) {
			*slot = calloc(1, PAGE_STORE_PAGE);
			if (*slot)
				atomic_fetch_add(&s->pages, 1);
			else
				ret = -ENOMEM;
		}
		if (*slot && src)
			memcpy((char *)*slot + poff, src, n);
		else if (*slot)
			memset((char *)*slot + poff, 0, n);
		pthread_spin_unlock(page_lock(s, idx));
		if (ret)
			return ret;
		if (src)
			src += n;
	}
	return 0;
}

void page_store_read(struct page_store *s, uint64_t off, void *buf,
		     uint64_t len)
{
	char *dst = buf;
	unsigned int poff, n;
	uint64_t idx;

	for_each_page_piece(off, len, idx, poff, n) {
		void **slot = page_slot(s, idx, false);

		pthread_spin_lock(page_lock(s, idx));
		if (slot && *slot)
			memcpy(dst, (char *)*slot + poff, n);
		else
			memset(dst, 0, n);
		pthread_spin_unlock(page_lock(s, idx));
		dst += n;
	}
}

void page_store_discard(struct page_store *s, uint64_t off, uint64_t len)
{
	unsigned int poff, n;
	uint64_t idx;

	for_each_page_piece(off, len, idx, poff, n) {
		void **slot = page_slot(s, idx, false);
		void *page = NULL;

		if (!slot)
			continue;
		pthread_spin_lock(page_lock(s, idx));
		if (n == PAGE_STORE_PAGE) {
			page = *slot;
			*slot = NULL;
		} else if (*slot) {
			memset((char *)*slot + poff, 0, n);
		}
		pthread_spin_unlock(page_lock(s, idx));
		if (page) {
			free(page);
			atomic_fetch_sub(&s->pages, 1);
		}
	}
}

bool page_store_present(struct page_store *s, uint64_t off)
{
	uint64_t idx = off / PAGE_STORE_PAGE;
	void **slot = page_slot(s, idx, false);
	bool ret;

	if (!slot)
		return false;
	pthread_spin_lock(page_lock(s, idx));
	ret = *slot != NULL;
	pthread_spin_unlock(page_lock(s, idx));
	return ret;
}
