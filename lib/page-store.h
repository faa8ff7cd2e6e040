/* SPDX-License-Identifier: MIT */
/*
 * A sparse in-memory store of 4 KiB pages for memory-backed devices: a
 * page exists once written, unwritten ranges read as zeroes, discards
 * free whole pages. Reads and writes of different pages run in parallel
 * (striped locks); the caller orders overlapping I/O as a disk would not.
 */
#ifndef BLKSTACK_LIB_PAGE_STORE_H
#define BLKSTACK_LIB_PAGE_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PAGE_STORE_PAGE		4096U
#define PAGE_STORE_STRIPES	64

struct page_store {
	uint64_t bytes;
	uint64_t nr_pages;
	size_t nr_l1;
	void **_Atomic *l1;		/* [nr_l1] -> second-level tables */
	_Atomic uint64_t pages;		/* pages allocated now */
	pthread_spinlock_t stripe[PAGE_STORE_STRIPES];
};

/* A store of @bytes; 0 or -ENOMEM. */
int page_store_init(struct page_store *s, uint64_t bytes);
void page_store_free(struct page_store *s);

/*
 * Copy @len bytes at byte offset @off in (@buf NULL writes zeroes) or
 * out. The range must lie inside the store. 0 or -ENOMEM.
 */
int page_store_write(struct page_store *s, uint64_t off, const void *buf,
		     uint64_t len);
void page_store_read(struct page_store *s, uint64_t off, void *buf,
		     uint64_t len);
/* Zero a range; whole pages in it are freed. */
void page_store_discard(struct page_store *s, uint64_t off, uint64_t len);
/* Is the page holding @off allocated? */
bool page_store_present(struct page_store *s, uint64_t off);

static inline uint64_t page_store_pages(struct page_store *s)
{
	return s->pages;
}

#endif
