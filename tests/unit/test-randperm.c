// SPDX-License-Identifier: MIT
/*
 * lib/randperm.c: a permutation for every size (each value exactly once,
 * powers of two, one more and one less, 1 and 2), the same order from the
 * same seed and another from another, and no sequential runs.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/randperm.h"
#include "testlib.h"

/* Walk all of [0, n): every value once; count steps of +1 (runs). */
static bool check_perm(uint64_t n, uint64_t seed, uint64_t *runs)
{
	uint64_t *seen = calloc((n + 63) / 64, 8), prev = UINT64_MAX;
	struct randperm p;
	bool ok = true;

	randperm_init(&p, n, seed);
	*runs = 0;
	for (uint64_t i = 0; i < n && ok; i++) {
		uint64_t v = randperm_at(&p, i);

		ok = CHECK_MSG(v < n && !(seen[v / 64] >> (v % 64) & 1),
			       "n %llu seed %llu: element %llu is %llu, out of "
			       "range or seen before", (unsigned long long)n,
			       (unsigned long long)seed, (unsigned long long)i,
			       (unsigned long long)v);
		if (ok)
			seen[v / 64] |= 1ULL << (v % 64);
		*runs += v == prev + 1;
		prev = v;
	}
	free(seen);
	return ok;
}

static void test_sizes(void)
{
	static const uint64_t sizes[] = { 1, 2, 3, 5, 7, 63, 64, 65, 100, 255,
					  256, 257, 1000, 4095, 4096, 4097,
					  65536, 100003, 262144, 1000000 };
	uint64_t runs;

	test_begin("every value once", 60);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (uint64_t seed = 0; seed < 3; seed++) {
			if (!check_perm(sizes[i], seed * 0x9e37 + 0x89, &runs))
				return;
			/* a random order has about one +1 step */
			CHECK_MSG(sizes[i] < 100 || runs < 10 + sizes[i] / 1000,
				  "n %llu: %llu sequential steps",
				  (unsigned long long)sizes[i],
				  (unsigned long long)runs);
		}
	}
}

static void test_seeds(void)
{
	const uint64_t n = 10000;
	struct randperm a, b, c;
	unsigned int same_ab = 0, same_ac = 0, fixed = 0;

	test_begin("seeds", 10);
	randperm_init(&a, n, 42);
	randperm_init(&b, n, 42);
	randperm_init(&c, n, 43);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = randperm_at(&a, i);

		same_ab += v == randperm_at(&b, i);
		same_ac += v == randperm_at(&c, i);
		fixed += v == i;
	}
	CHECK_EQ_U64(same_ab, n);
	/* independent permutations agree in about one place */
	CHECK_MSG(same_ac < 20, "seeds 42 and 43 agree at %u of %llu", same_ac,
		  (unsigned long long)n);
	CHECK_MSG(fixed < 20, "%u fixed points of %llu", fixed,
		  (unsigned long long)n);
}

/* The first half of a pass is spread over the whole range. */
static void test_spread(void)
{
	const uint64_t n = 1 << 16;
	unsigned int quarter[4] = { 0 };
	struct randperm p;

	test_begin("spread", 10);
	randperm_init(&p, n, 7);
	for (uint64_t i = 0; i < n / 2; i++)
		quarter[randperm_at(&p, i) / (n / 4)]++;
	for (int q = 0; q < 4; q++)
		CHECK_MSG(quarter[q] > n / 8 * 9 / 10 && quarter[q] < n / 8 * 11 / 10,
			  "quarter %d got %u of the first %llu", q, quarter[q],
			  (unsigned long long)(n / 2));
}

int main(void)
{
	test_init(2);
	test_sizes();
	test_seeds();
	test_spread();
	return test_report();
}
