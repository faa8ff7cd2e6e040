/* SPDX-License-Identifier: MIT */
/*
 * Small, fast, reproducible pseudo-random numbers for load generation and
 * test data (never for anything secret): SplitMix64 to turn any seed into
 * a well-mixed value, xorshift64* as the generator.
 */
#ifndef BLKSTACK_LIB_PRANDOM_H
#define BLKSTACK_LIB_PRANDOM_H

#include <stdint.h>

/* SplitMix64 of @x: distinct inputs give unrelated outputs. */
static inline uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* xorshift64*: the next value of the sequence in *@s, which must not be 0. */
static inline uint64_t prandom_u64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

#endif
