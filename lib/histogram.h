/* SPDX-License-Identifier: MIT */
/*
 * fio's log-linear latency histogram ("plat" buckets) with exact min, max,
 * mean and standard deviation beside it.
 *
 * Values below 2 * LAT_HIST_VAL (128) each have their own bucket. Above,
 * every power of two [2^m, 2^(m+1)) is cut into LAT_HIST_VAL (64) equal
 * buckets of width 2^(m-6), so a bucket's middle is within 1/128 (0.78%)
 * of any value in it. LAT_HIST_GROUP_NR (29) groups reach 2^34 ns (~17 s);
 * larger values land in the last bucket. The layout is fio's, so fio's
 * json+ "bins" and fio's tools read ours.
 *
 * Not locked: one writer per histogram, merge them for a report.
 */
#ifndef BLKSTACK_LIB_HISTOGRAM_H
#define BLKSTACK_LIB_HISTOGRAM_H

#include <stdint.h>

#define LAT_HIST_BITS		6	/* FIO_IO_U_PLAT_BITS */
#define LAT_HIST_VAL		(1 << LAT_HIST_BITS)
#define LAT_HIST_GROUP_NR	29
#define LAT_HIST_NR		(LAT_HIST_GROUP_NR * LAT_HIST_VAL)

struct lat_hist {
	uint64_t nr, min, max;
	double mean, m2;		/* Welford: mean, sum of squares */
	uint64_t bins[LAT_HIST_NR];
};

/* The bucket of @val (fio's plat_val_to_idx). */
static inline unsigned int lat_hist_idx(uint64_t val)
{
	unsigned int msb, error_bits, idx;

	msb = val ? 63 - (unsigned int)__builtin_clzll(val) : 0;
	if (msb <= LAT_HIST_BITS)
		return (unsigned int)val;
	error_bits = msb - LAT_HIST_BITS;
	idx = ((error_bits + 1) << LAT_HIST_BITS) +
	      (unsigned int)((LAT_HIST_VAL - 1) & (val >> error_bits));
	return idx < LAT_HIST_NR - 1 ? idx : LAT_HIST_NR - 1;
}

/* Per sample, on the I/O path: inline. */
static inline void lat_hist_add(struct lat_hist *h, uint64_t val)
{
	double d = (double)val - h->mean;

	h->nr++;
	if (val < h->min)
		h->min = val;
	if (val > h->max)
		h->max = val;
	h->mean += d / (double)h->nr;
	h->m2 += d * ((double)val - h->mean);
	h->bins[lat_hist_idx(val)]++;
}

void lat_hist_init(struct lat_hist *h);
/* Add @src's samples to @dst; mean and stddev stay exact. */
void lat_hist_merge(struct lat_hist *dst, const struct lat_hist *src);

/* The first value of bucket @idx, and the middle that fio reports. */
uint64_t lat_hist_bucket_start(unsigned int idx);
uint64_t lat_hist_bucket_val(unsigned int idx);

/*
 * fio's percentiles: for each of @pcts (ascending, in percent) the middle
 * of the first bucket where the running count reaches pct% of the
 * samples. All 0 when the histogram is empty.
 */
void lat_hist_percentiles(const struct lat_hist *h, const double *pcts,
			  unsigned int nr, uint64_t *out);
uint64_t lat_hist_percentile(const struct lat_hist *h, double pct);

/* 0 when empty, as fio prints them. */
uint64_t lat_hist_min(const struct lat_hist *h);
uint64_t lat_hist_max(const struct lat_hist *h);
double lat_hist_mean(const struct lat_hist *h);
/* The sample standard deviation (n - 1); 0 below two samples. */
double lat_hist_stddev(const struct lat_hist *h);

#endif
