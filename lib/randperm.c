// SPDX-License-Identifier: MIT
/*
 * randperm key setup. Each round of randperm_mix() is a bijection of
 * [0, 2^k): multiplying by an odd number and adding are, modulo 2^k, and
 * so is x ^= x >> s. Cycle walking then restricts the bijection to
 * [0, n) and keeps it one: following the cycle of an i < n until it
 * returns below n pairs each i with exactly one value.
 */
#include "prandom.h"
#include "randperm.h"

void randperm_init(struct randperm *p, uint64_t n, uint64_t seed)
{
	unsigned int bits = 1;

	if (n > 1)
		bits = 64 - (unsigned int)__builtin_clzll(n - 1);

	p->n = n ? n : 1;
	p->mask = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
	/* a multiply only carries low bits up; the xorshift brings high down */
	p->shift = bits / 2 + 1;
	for (int r = 0; r < 3; r++) {
		p->mul[r] = (splitmix64(seed + 2 * r) | 1) & p->mask;
		p->add[r] = splitmix64(seed + 2 * r + 1) & p->mask;
	}
}
