// SPDX-License-Identifier: MIT
/*
 * lib/fio-stat.c: num2str's rounding and prefixes, the unit thresholds,
 * and the exact text of the clat line, the percentile table and the JSON
 * latency object for a histogram of the samples 1..100.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/compiler.h"
#include "lib/fio-stat.h"
#include "testlib.h"

static void test_num2str(void)
{
	static const struct {
		double v;
		bool bin;
		const char *unit, *want;
	} cases[] = {
		{ 0, false, "", "0" }, { 1.5, false, "", "1.5" },
		{ 99.5, false, "", "99.5" }, { 100.4, false, "", "100" },
		{ 9999, false, "", "9999" }, { 10000, false, "", "10k" },
		{ 12345, false, "", "12.3k" }, { 123456789, false, "", "123M" },
		{ 1048576, true, "B", "1024KiB" }, { 4096, true, "B", "4096B" },
		{ 10240, true, "B/s", "10KiB/s" }, { 10400, true, "B/s", "10.2KiB/s" },
		{ 3e9, true, "B/s", "2861MiB/s" },
	};
	char buf[32];

	test_begin("num2str", 10);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		fio_num2str(buf, sizeof(buf), cases[i].v, cases[i].bin,
			    cases[i].unit);
		CHECK_MSG(!strcmp(buf, cases[i].want), "%f: '%s', wanted '%s'",
			  cases[i].v, buf, cases[i].want);
	}
}

static void test_units(void)
{
	double d;

	test_begin("time units", 10);
	CHECK(!strcmp(fio_time_unit(99999, &d), "nsec") && d == 1);
	CHECK(!strcmp(fio_time_unit(100000, &d), "usec") && d == 1e3);
	CHECK(!strcmp(fio_time_unit(99999999, &d), "usec") && d == 1e3);
	CHECK(!strcmp(fio_time_unit(100000000, &d), "msec") && d == 1e6);
}

/* Run @call with FILE *f open on a string, compare it with @want. */
#define CHECK_TEXT(want, call)						\
	do {								\
		char *__b;						\
		size_t __n;						\
		FILE *f = open_memstream(&__b, &__n);			\
		call;							\
		fclose(f);						\
		CHECK_MSG(!strcmp(__b, want), "wrote\n%s\nwanted\n%s",	\
			  __b, want);					\
		free(__b);						\
	} while (0)

static void test_text(void)
{
	static struct lat_hist h;

	test_begin("text and JSON", 10);
	lat_hist_init(&h);
	for (uint64_t v = 1; v <= 100; v++)
		lat_hist_add(&h, v);
	CHECK_TEXT("    clat (nsec): min=1, max=100, avg=50.50, stdev=29.01\n",
		   fio_print_lat(f, "clat", &h));
	CHECK_TEXT("    clat percentiles (nsec):\n"
		   "     |  1.00th=[  1],  5.00th=[  5], 10.00th=[ 10], 20.00th=[ 20],\n"
		   "     | 30.00th=[ 30], 40.00th=[ 40], 50.00th=[ 50], 60.00th=[ 60],\n"
		   "     | 70.00th=[ 70], 80.00th=[ 80], 90.00th=[ 90], 95.00th=[ 95],\n"
		   "     | 99.00th=[ 99], 99.50th=[100], 99.90th=[100], 99.95th=[100],\n"
		   "     | 99.99th=[100]\n",
		   fio_print_pcts(f, &h, fio_default_pcts, fio_default_pcts_nr));
}

static void json_lat(FILE *f, const struct lat_hist *h, bool bins)
{
	static const double p[] = { 50, 99.9 };
	struct json_writer w;

	json_init(&w, f);
	fio_json_lat(&w, NULL, h, p, 2, bins);
}

static void test_json(void)
{
	static struct lat_hist h;

	test_begin("JSON", 10);
	lat_hist_init(&h);
	lat_hist_add(&h, 2);
	lat_hist_add(&h, 1000);
	CHECK_TEXT("{\n  \"min\" : 2,\n  \"max\" : 1000,\n  \"mean\" : 501.000000,\n"
		   "  \"stddev\" : 705.692568,\n  \"N\" : 2,\n"
		   "  \"percentile\" : {\n    \"50.000000\" : 2,\n"
		   "    \"99.900000\" : 1004\n  },\n"
		   "  \"bins\" : {\n    \"2\" : 1,\n    \"1004\" : 1\n  }\n}\n",
		   json_lat(f, &h, true));
	CHECK_TEXT("{\n  \"min\" : 0,\n  \"max\" : 0,\n  \"mean\" : 0.000000,\n"
		   "  \"stddev\" : 0.000000,\n  \"N\" : 0\n}\n",
		   json_lat(f, NULL, true));
}

int main(void)
{
	test_init(2);
	test_num2str();
	test_units();
	test_text();
	test_json();
	return test_report();
}
