/* SPDX-License-Identifier: MIT */
/*
 * Numbers and latency histograms shown the way fio shows them, so a tool's
 * output reads (and parses) like fio's: num2str's short sizes and rates,
 * the "clat (usec): min=..." line, the percentile table, and the JSON
 * "clat_ns" object (with json+ "bins").
 */
#ifndef BLKSTACK_LIB_FIO_STAT_H
#define BLKSTACK_LIB_FIO_STAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "histogram.h"
#include "json.h"

#define FIO_PCTS_MAX	20	/* FIO_IO_U_LIST_MAX_LEN */

/* fio's default percentile_list, and its length. */
extern const double fio_default_pcts[];
extern const unsigned int fio_default_pcts_nr;

/*
 * fio's num2str, short: at most four digits before the unit prefix, 1000s
 * (k, M, G) or with @bin 1024s (Ki, Mi, Gi), then @unit ("B/s", "").
 */
char *fio_num2str(char *buf, size_t len, double v, bool bin,
		  const char *unit);

/* "nsec", "usec" or "msec", so that @ns / *@div has at most five digits. */
const char *fio_time_unit(uint64_t ns, double *div);

/* "    clat (usec): min=1, max=9, avg=2.50, stdev=0.71" and a newline. */
void fio_print_lat(FILE *f, const char *label, const struct lat_hist *h);

/* "    clat percentiles (usec):" and rows of four "|  1.00th=[  12]". */
void fio_print_pcts(FILE *f, const struct lat_hist *h, const double *pcts,
		    unsigned int nr);

/*
 * The object @key: min, max, mean, stddev, N, "percentile" (when there are
 * samples) and, with @bins, json+'s "bins" (bucket value : count). @h may
 * be NULL for an object of zeros.
 */
void fio_json_lat(struct json_writer *w, const char *key,
		  const struct lat_hist *h, const double *pcts,
		  unsigned int nr, bool bins);

#endif
