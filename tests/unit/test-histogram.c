// SPDX-License-Identifier: MIT
/*
 * lib/histogram.c: fio's bucket layout at its boundaries, percentiles
 * against the exact order statistics of known samples (within the 1/128
 * bucket error), min/max/mean/stddev against two-pass sums, and merging.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/histogram.h"
#include "lib/prandom.h"
#include "testlib.h"

#define NR_SAMPLES	20000

static const double pcts[] = { 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95,
			       99, 99.5, 99.9, 99.95, 99.99, 100 };
#define NR_PCTS	(sizeof(pcts) / sizeof(pcts[0]))

static struct lat_hist h_all, h_a, h_b, h_empty;
static uint64_t samples[NR_SAMPLES];

static void test_boundaries(void)
{
	test_begin("bucket boundaries", 10);
	for (uint64_t v = 0; v < 2 * LAT_HIST_VAL; v++)	/* exact below 128 */
		CHECK_EQ_U64(lat_hist_idx(v), v);
	CHECK_EQ_U64(lat_hist_idx(128), 128);	/* width 2 from 128 */
	CHECK_EQ_U64(lat_hist_idx(129), 128);
	CHECK_EQ_U64(lat_hist_idx(130), 129);
	CHECK_EQ_U64(lat_hist_idx(255), 191);
	CHECK_EQ_U64(lat_hist_idx(256), 192);	/* width 4 from 256 */
	CHECK_EQ_U64(lat_hist_idx(259), 192);
	CHECK_EQ_U64(lat_hist_idx(260), 193);
	CHECK_EQ_U64(lat_hist_bucket_val(128), 129);	/* fio's plat_idx_to_val */
	CHECK_EQ_U64(lat_hist_bucket_val(192), 258);
	/* every bucket: its first value maps to it, the one before does not */
	for (unsigned int i = 1; i < LAT_HIST_NR; i++) {
		uint64_t start = lat_hist_bucket_start(i);

		CHECK_MSG(lat_hist_idx(start) == i && lat_hist_idx(start - 1) == i - 1,
			  "bucket %u starts at %llu", i, (unsigned long long)start);
		CHECK_MSG(lat_hist_bucket_val(i) >= start &&
			  (i == LAT_HIST_NR - 1 ||
			   lat_hist_bucket_val(i) < lat_hist_bucket_start(i + 1)),
			  "bucket %u: middle outside it", i);
	}
	/* the last bucket ends at 2^34 ns and takes everything above */
	CHECK_EQ_U64(lat_hist_idx((1ULL << 34) - 1), LAT_HIST_NR - 1);
	CHECK_EQ_U64(lat_hist_idx(1ULL << 34), LAT_HIST_NR - 1);
	CHECK_EQ_U64(lat_hist_idx(UINT64_MAX), LAT_HIST_NR - 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Latency-like samples: mostly 1-100 us, a tail to 50 ms, repeats. */
static void make_samples(unsigned int shape)
{
	uint64_t s = 0x89 + shape;

	for (unsigned int i = 0; i < NR_SAMPLES; i++) {
		uint64_t r = prandom_u64(&s);

		switch (shape) {
		case 0:		/* small: exact buckets and the first groups */
			samples[i] = r % 300;
			break;
		case 1:		/* log-uniform over 100 ns .. 50 ms */
			samples[i] = (uint64_t)(100 * exp((double)(r % 100000) /
							  100000 * 13.1));
			break;
		default:	/* few distinct values: ties at percentiles */
			samples[i] = 1000 * (1 + r % 7);
			break;
		}
	}
}

/* Fill h_all with every sample, h_a/h_b with the halves. */
static void fill_hists(void)
{
	lat_hist_init(&h_all);
	lat_hist_init(&h_a);
	lat_hist_init(&h_b);
	lat_hist_init(&h_empty);
	for (unsigned int i = 0; i < NR_SAMPLES; i++) {
		lat_hist_add(&h_all, samples[i]);
		lat_hist_add(i < NR_SAMPLES / 3 ? &h_a : &h_b, samples[i]);
	}
}

static void check_percentiles(unsigned int shape)
{
	uint64_t got[NR_PCTS];

	qsort(samples, NR_SAMPLES, sizeof(samples[0]), cmp_u64);
	lat_hist_percentiles(&h_all, pcts, NR_PCTS, got);
	for (unsigned int j = 0; j < NR_PCTS; j++) {
		/* fio's rule: the first bucket whose count reaches p% */
		double need = pcts[j] / 100.0 * NR_SAMPLES;
		uint64_t rank = (uint64_t)ceil(need), want, err;

		rank = rank < 1 ? 1 : rank > NR_SAMPLES ? NR_SAMPLES : rank;
		want = samples[rank - 1];
		err = want < 2 * LAT_HIST_VAL ? 0 : want / 128;
		CHECK_MSG(got[j] + err >= want && got[j] <= want + err,
			  "shape %u: p%g = %llu, the sample is %llu (+-%llu)",
			  shape, pcts[j], (unsigned long long)got[j],
			  (unsigned long long)want, (unsigned long long)err);
		CHECK_EQ_U64(lat_hist_percentile(&h_all, pcts[j]), got[j]);
	}
}

static bool close_to(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)) + 1e-9;
}

static void check_moments(const struct lat_hist *h, unsigned int from,
			  unsigned int to)
{
	uint64_t min = UINT64_MAX, max = 0;
	double sum = 0, sq = 0, mean;

	for (unsigned int i = from; i < to; i++) {
		min = samples[i] < min ? samples[i] : min;
		max = samples[i] > max ? samples[i] : max;
		sum += (double)samples[i];
	}
	mean = sum / (to - from);
	for (unsigned int i = from; i < to; i++)
		sq += ((double)samples[i] - mean) * ((double)samples[i] - mean);
	CHECK_EQ_U64(h->nr, to - from);
	CHECK_EQ_U64(lat_hist_min(h), min);
	CHECK_EQ_U64(lat_hist_max(h), max);
	CHECK_MSG(close_to(lat_hist_mean(h), mean), "mean %f, want %f",
		  lat_hist_mean(h), mean);
	CHECK_MSG(close_to(lat_hist_stddev(h), sqrt(sq / (to - from - 1))),
		  "stddev %f, want %f", lat_hist_stddev(h),
		  sqrt(sq / (to - from - 1)));
}

/* a + b == all, whichever way round, and an empty side changes nothing. */
static void check_merge(void)
{
	static struct lat_hist m;

	m = h_empty;
	lat_hist_merge(&m, &h_a);
	lat_hist_merge(&m, &h_empty);
	lat_hist_merge(&m, &h_b);
	CHECK(!memcmp(m.bins, h_all.bins, sizeof(m.bins)));
	check_moments(&m, 0, NR_SAMPLES);
	m = h_b;
	lat_hist_merge(&m, &h_a);
	CHECK(!memcmp(m.bins, h_all.bins, sizeof(m.bins)));
	CHECK_EQ_U64(lat_hist_percentile(&m, 99), lat_hist_percentile(&h_all, 99));
	CHECK(close_to(lat_hist_stddev(&m), lat_hist_stddev(&h_all)));
}

static void test_samples(unsigned int shape)
{
	char name[64];

	snprintf(name, sizeof(name), "samples, shape %u", shape);
	test_begin(name, 30);
	make_samples(shape);
	fill_hists();
	check_moments(&h_all, 0, NR_SAMPLES);
	check_moments(&h_a, 0, NR_SAMPLES / 3);
	check_moments(&h_b, NR_SAMPLES / 3, NR_SAMPLES);
	check_merge();
	check_percentiles(shape);	/* sorts the samples: last */
}

static void test_empty_and_one(void)
{
	uint64_t v[NR_PCTS];

	test_begin("empty and one sample", 10);
	lat_hist_init(&h_empty);
	lat_hist_percentiles(&h_empty, pcts, NR_PCTS, v);
	for (unsigned int j = 0; j < NR_PCTS; j++)
		CHECK_EQ_U64(v[j], 0);
	CHECK_EQ_U64(lat_hist_min(&h_empty), 0);
	CHECK_EQ_U64(lat_hist_max(&h_empty), 0);
	CHECK(lat_hist_mean(&h_empty) == 0 && lat_hist_stddev(&h_empty) == 0);
	lat_hist_init(&h_a);
	lat_hist_add(&h_a, 5000);
	CHECK_EQ_U64(lat_hist_min(&h_a), 5000);
	CHECK_EQ_U64(lat_hist_max(&h_a), 5000);
	CHECK(lat_hist_mean(&h_a) == 5000 && lat_hist_stddev(&h_a) == 0);
	CHECK_EQ_U64(lat_hist_percentile(&h_a, 50),
		     lat_hist_bucket_val(lat_hist_idx(5000)));
	/* a huge value is counted in the last bucket, exact in max */
	lat_hist_add(&h_a, 1ULL << 40);
	CHECK_EQ_U64(h_a.bins[LAT_HIST_NR - 1], 1);
	CHECK_EQ_U64(lat_hist_max(&h_a), 1ULL << 40);
}

int main(void)
{
	test_init(2);
	test_boundaries();
	for (unsigned int shape = 0; shape < 3; shape++)
		test_samples(shape);
	test_empty_and_one();
	return test_report();
}
