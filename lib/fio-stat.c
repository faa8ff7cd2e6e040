// SPDX-License-Identifier: MIT
/*
 * fio's output formats for numbers and latencies: fio's num2str.c and the
 * latency parts of its stat.c, as blkbench has always printed them.
 */
#include <inttypes.h>

#include "fio-stat.h"

const double fio_default_pcts[] = { 1, 5, 10, 20, 30, 40, 50, 60, 70, 80,
				    90, 95, 99, 99.5, 99.9, 99.95, 99.99 };
const unsigned int fio_default_pcts_nr =
	sizeof(fio_default_pcts) / sizeof(fio_default_pcts[0]);

char *fio_num2str(char *buf, size_t len, double v, bool bin,
		  const char *unit)
{
	static const char *const dec[] = { "", "k", "M", "G", "T", "P" };
	static const char *const b2[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi" };
	unsigned int i = 0;

	while (v >= 9999.5 && i < 5) {
		v /= bin ? 1024 : 1000;
		i++;
	}
	snprintf(buf, len, v < 100 && v != (double)(uint64_t)v ? "%.1f%s%s"
								: "%.0f%s%s",
		 v, bin ? b2[i] : dec[i], unit);
	return buf;
}

const char *fio_time_unit(uint64_t ns, double *div)
{
	if (ns >= 100000000) {
		*div = 1e6;
		return "msec";
	}
	if (ns >= 100000) {
		*div = 1e3;
		return "usec";
	}
	*div = 1;
	return "nsec";
}

void fio_print_lat(FILE *f, const char *label, const struct lat_hist *h)
{
	uint64_t min = lat_hist_min(h), show;
	const char *u;
	double d;

	/* fio's rule: a bigger unit only when min and mean both fill it */
	show = min < h->mean ? min * 100 : (uint64_t)h->mean * 100;
	u = fio_time_unit(show, &d);

	fprintf(f, "    %s (%s): min=%.0f, max=%.0f, avg=%.2f, stdev=%.2f\n",
		label, u, min / d, h->max / d, h->mean / d,
		lat_hist_stddev(h) / d);
}

void fio_print_pcts(FILE *f, const struct lat_hist *h, const double *pcts,
		    unsigned int nr)
{
	uint64_t v[FIO_PCTS_MAX];
	const char *u;
	double d;
	int w;

	nr = nr < FIO_PCTS_MAX ? nr : FIO_PCTS_MAX;
	if (!nr)
		return;
	lat_hist_percentiles(h, pcts, nr, v);
	/* one unit and one width for the table, set by the largest value */
	u = fio_time_unit(v[nr - 1], &d);
	w = snprintf(NULL, 0, "%.0f", v[nr - 1] / d);
	fprintf(f, "    clat percentiles (%s):\n", u);
	for (unsigned int i = 0; i < nr; i++)
		fprintf(f, "%s %5.2fth=[%*.0f]%s", i % 4 ? "" : "     |",
			pcts[i], w, v[i] / d,
			i == nr - 1 ? "\n" : i % 4 == 3 ? ",\n" : ",");
}

void fio_json_lat(struct json_writer *w, const char *key,
		  const struct lat_hist *h, const double *pcts,
		  unsigned int nr, bool bins)
{
	bool any = h && h->nr;
	uint64_t v[FIO_PCTS_MAX];
	char k[32];

	nr = nr < FIO_PCTS_MAX ? nr : FIO_PCTS_MAX;
	json_open_object(w, key);
	json_u64(w, "min", any ? h->min : 0);
	json_u64(w, "max", any ? h->max : 0);
	json_double(w, "mean", any ? h->mean : 0);
	json_double(w, "stddev", any ? lat_hist_stddev(h) : 0);
	json_u64(w, "N", any ? h->nr : 0);
	if (any) {
		lat_hist_percentiles(h, pcts, nr, v);
		json_open_object(w, "percentile");
		for (unsigned int j = 0; j < nr; j++) {
			snprintf(k, sizeof(k), "%f", pcts[j]);
			json_u64(w, k, v[j]);
		}
		json_close_object(w);
	}
	if (any && bins) {
		json_open_object(w, "bins");
		for (unsigned int i = 0; i < LAT_HIST_NR; i++) {
			if (!h->bins[i])
				continue;
			snprintf(k, sizeof(k), "%" PRIu64,
				 lat_hist_bucket_val(i));
			json_u64(w, k, h->bins[i]);
		}
		json_close_object(w);
	}
	json_close_object(w);
}
