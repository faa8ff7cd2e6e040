// SPDX-License-Identifier: MIT
/*
 * fio's latency histogram: merging, bucket values and percentiles. Adding
 * a sample is inline in histogram.h.
 */
#include <math.h>
#include <string.h>

#include "histogram.h"

void lat_hist_init(struct lat_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/* Chan et al.'s pairwise update, so merged means and stddevs are exact. */
void lat_hist_merge(struct lat_hist *dst, const struct lat_hist *src)
{
	double n, delta;

	if (!src->nr)
		return;
	n = (double)(dst->nr + src->nr);
	delta = src->mean - dst->mean;
	dst->mean += delta * (double)src->nr / n;
	dst->m2 += src->m2 + delta * delta * (double)dst->nr *
		   (double)src->nr / n;
	dst->nr += src->nr;
	dst->min = src->min < dst->min ? src->min : dst->min;
	dst->max = src->max > dst->max ? src->max : dst->max;
	for (unsigned int i = 0; i < LAT_HIST_NR; i++)
		dst->bins[i] += src->bins[i];
}

uint64_t lat_hist_bucket_start(unsigned int idx)
{
	unsigned int error_bits;

	if (idx < (LAT_HIST_VAL << 1))
		return idx;
	error_bits = (idx >> LAT_HIST_BITS) - 1;
	return (1ULL << (error_bits + LAT_HIST_BITS)) +
	       ((uint64_t)(idx % LAT_HIST_VAL) << error_bits);
}

/* fio's plat_idx_to_val: the middle of the bucket, rounded down. */
uint64_t lat_hist_bucket_val(unsigned int idx)
{
	unsigned int error_bits;
	uint64_t base, k;

	if (idx < (LAT_HIST_VAL << 1))
		return idx;
	error_bits = (idx >> LAT_HIST_BITS) - 1;
	base = 1ULL << (error_bits + LAT_HIST_BITS);
	k = idx % LAT_HIST_VAL;
	return base + (uint64_t)((k + 0.5) * (1ULL << error_bits));
}

void lat_hist_percentiles(const struct lat_hist *h, const double *pcts,
			  unsigned int nr, uint64_t *out)
{
	uint64_t sum = 0;
	unsigned int j = 0;

	memset(out, 0, nr * sizeof(*out));
	for (unsigned int i = 0; i < LAT_HIST_NR && j < nr && h->nr; i++) {
		sum += h->bins[i];
		while (j < nr && sum >= pcts[j] / 100.0 * h->nr)
			out[j++] = lat_hist_bucket_val(i);
	}
}

uint64_t lat_hist_percentile(const struct lat_hist *h, double pct)
{
	uint64_t v;

	lat_hist_percentiles(h, &pct, 1, &v);
	return v;
}

uint64_t lat_hist_min(const struct lat_hist *h)
{
	return h->nr ? h->min : 0;
}

uint64_t lat_hist_max(const struct lat_hist *h)
{
	return h->nr ? h->max : 0;
}

double lat_hist_mean(const struct lat_hist *h)
{
	return h->nr ? h->mean : 0;
}

double lat_hist_stddev(const struct lat_hist *h)
{
	return h->nr > 1 ? sqrt(h->m2 / (double)(h->nr - 1)) : 0;
}
