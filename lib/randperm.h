/* SPDX-License-Identifier: MIT */
/*
 * A random permutation of [0, n) with O(1) state: element i of it is
 * randperm_at(p, i). Walking i = 0 .. n-1 visits every value once, in an
 * order fixed by the seed. This is what fio's random map gives (each block
 * once per pass) without a bitmap: fio's lfsr does the same job.
 *
 * A keyed bijection of the k-bit numbers (2^k >= n: three rounds of
 * multiply-add by odd constants and xorshift) with cycle walking: results
 * >= n are fed back in until one lands below n, fewer than two rounds on
 * average. Not cryptographic, but without the strides or runs an affine
 * map or an LFSR shows to a cache or a merge.
 */
#ifndef BLKSTACK_LIB_RANDPERM_H
#define BLKSTACK_LIB_RANDPERM_H

#include <stdint.h>

struct randperm {
	uint64_t n, mask;
	uint64_t mul[3], add[3];	/* the key, from the seed */
	unsigned int shift;
};

/* @n >= 1 values; the same @seed gives the same order. */
void randperm_init(struct randperm *p, uint64_t n, uint64_t seed);

static inline uint64_t randperm_mix(const struct randperm *p, uint64_t x)
{
	for (int r = 0; r < 3; r++) {
		x = (x * p->mul[r] + p->add[r]) & p->mask;
		x ^= x >> p->shift;
	}
	return x;
}

/* Element @i (< n) of the permutation. */
static inline uint64_t randperm_at(const struct randperm *p, uint64_t i)
{
	do {
		i = randperm_mix(p, i);
	} while (i >= p->n);
	return i;
}

#endif
