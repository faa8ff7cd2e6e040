// SPDX-License-Identifier: MIT
/*
 * lib/options.c: fio's sizes and times, each option type from a table,
 * '-' and '_' alike, enum aliases, options allowed once, and the one-line
 * messages for bad input (read back from stderr).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/compiler.h"
#include "lib/options.h"
#include "lib/time.h"
#include "testlib.h"

static void test_sizes(void)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "0", 0 }, { "4096", 4096 }, { "4k", 4096 }, { "4K", 4096 },
		{ "4kb", 4096 }, { "4KiB", 4096 }, { "1m", 1 << 20 },
		{ "2g", 2ULL << 30 }, { "1t", 1ULL << 40 }, { "1p", 1ULL << 50 },
		{ "0x1000", 4096 }, { "16777215t", 16777215ULL << 40 },
	};
	static const char *const bad[] = { "", "k", "4q", "4kbb", "-1", "4 k",
					   "16777216t", "99999999999999999999" };
	uint64_t v;

	test_begin("sizes", 10);
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		CHECK_MSG(!opt_parse_size(good[i].s, &v) && v == good[i].v,
			  "%s", good[i].s);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK_MSG(opt_parse_size(bad[i], &v) == -EINVAL, "%s", bad[i]);
}

static void test_times(void)
{
	static const struct { const char *s; uint64_t ns; } good[] = {
		{ "10", 10 * NSEC_PER_SEC }, { "10s", 10 * NSEC_PER_SEC },
		{ "500ms", 500 * NSEC_PER_MSEC }, { "20us", 20000 },
		{ "2m", 120 * NSEC_PER_SEC }, { "1h", 3600 * NSEC_PER_SEC },
		{ "3MS", 3 * NSEC_PER_MSEC },
	};
	static const char *const bad[] = { "", "5x", "ms", "1.5s", "-1",
					   "99999999999h" };
	uint64_t v;

	test_begin("times", 10);
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		CHECK_MSG(!opt_parse_time(good[i].s, &v) && v == good[i].ns,
			  "%s", good[i].s);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK_MSG(opt_parse_time(bad[i], &v) == -EINVAL, "%s", bad[i]);
}

static struct {
	const char *name, *file;
	unsigned int depth;
	uint64_t bs, runtime, think;
	bool direct, seen_name;
	int rw;
} o;

static const char *const rw_vals[] = { "read", "write", "rw=readwrite",
				       "readwrite", NULL };

static const struct opt_def defs[] = {
	{ "name", OPT_STR, &o.name, .seen = &o.seen_name, .help = "a name",
	  .once = "only once" },
	{ "file_name", OPT_STR, &o.file, .help = "a file" },
	{ "iodepth", OPT_UINT, &o.depth, NULL, 1, 64, .help = "depth" },
	{ "bs", OPT_SIZE, &o.bs, .help = "block size" },
	{ "runtime", OPT_TIME, &o.runtime, .help = "how long" },
	{ "thinktime", OPT_TIME_US, &o.think, .help = "microseconds" },
	{ "direct", OPT_BOOL, &o.direct, .help = "O_DIRECT" },
	{ "rw", OPT_ENUM, &o.rw, rw_vals, .help = "direction" },
};

static const struct opt_table table = {
	.prog = "prog", .defs = defs, .nr = ARRAY_SIZE(defs),
	.no_words = "no job files",
};

/* opts_parse(@args...) with stderr captured into @err. */
static int parse(char *err, size_t len, ...)
{
	char *argv[16] = { "prog" };
	FILE *tmp = tmpfile();
	int argc = 1, saved, ret;
	va_list ap;
	size_t n;

	va_start(ap, len);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	memset(&o, 0, sizeof(o));
	fflush(stderr);
	saved = dup(2);
	dup2(fileno(tmp), 2);
	ret = opts_parse(&table, argc, argv);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(err, 1, len - 1, tmp);
	err[n] = 0;
	fclose(tmp);
	return ret;
}

#define CHECK_ERR(msg, ...)						\
	do {								\
		char __e[512];						\
		int __r = parse(__e, sizeof(__e), __VA_ARGS__, NULL);	\
		CHECK_MSG(__r == -EINVAL && !strcmp(__e, msg),		\
			  "got %d, '%s', wanted '%s'", __r, __e, msg);	\
	} while (0)

static void test_table(void)
{
	char err[512];

	test_begin("a table", 10);
	CHECK_EQ_INT(parse(err, sizeof(err), "--name=x", "--file-name=f",
			   "--iodepth=64", "--bs=8k", "--runtime=2m", "--direct",
			   "--rw=rw", NULL), 0);
	CHECK(!strcmp(o.name, "x") && !strcmp(o.file, "f") && o.seen_name);
	CHECK(o.depth == 64 && o.bs == 8192 && o.runtime == 120 * NSEC_PER_SEC);
	CHECK(o.direct && o.rw == 2 && !*err);
	CHECK_EQ_INT(parse(err, sizeof(err), "--direct=1", "--direct=0",
			   "--rw=write", NULL), 0);
	CHECK(!o.direct && o.rw == 1 && !o.seen_name);
	CHECK_EQ_INT(parse(err, sizeof(err), "--bs=1k", "--help", "--bogus", NULL),
		     OPTS_HELP);
	CHECK_EQ_INT(parse(err, sizeof(err), "--version", NULL), OPTS_VERSION);

	CHECK_ERR("prog: --rw=rand: valid values are read, write, readwrite\n",
		  "--rw=rand");
	CHECK_ERR("prog: --iodepth=65: must be a whole number from 1 to 64\n",
		  "--iodepth=65");
	CHECK_ERR("prog: --iodepth=-1: must be a whole number from 1 to 64\n",
		  "--iodepth=-1");
	CHECK_ERR("prog: --direct=yes: valid values are 0, 1\n", "--direct=yes");
	CHECK_ERR("prog: --bs: needs a value (--bs=VALUE)\n", "--bs");
	CHECK_ERR("prog: --bs=4x: expected a size like 4096, 4k, 1m or 2g "
		  "(k/m/g/t are powers of 1024)\n", "--bs=4x");
	CHECK_ERR("prog: --runtime=1d: expected a time like 10 (seconds), 10s, "
		  "500ms, 2m or 1h\n", "--runtime=1d");
	CHECK_ERR("prog: unknown option --nope (prog --help lists them)\n",
		  "--nope=1");
	CHECK_ERR("prog: job.fio: no job files\n", "job.fio");
	CHECK_ERR("prog: --name=b: only once\n", "--name=a", "--name=b");
}

/* opts_set_one() with stderr captured into @err. */
static int set_one(char *err, size_t len, const char *name, const char *val,
		   const char *arg)
{
	FILE *tmp = tmpfile();
	int saved, ret;
	size_t n;

	fflush(stderr);
	saved = dup(2);
	dup2(fileno(tmp), 2);
	ret = opts_set_one(&table, name, strlen(name), val, arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(err, 1, len - 1, tmp);
	err[n] = 0;
	fclose(tmp);
	return ret;
}

/* One option at a time (job files), and times in microseconds. */
static void test_set_one(void)
{
	char err[512];

	test_begin("one option, microsecond times", 10);
	memset(&o, 0, sizeof(o));
	CHECK_EQ_INT(set_one(err, sizeof(err), "thinktime", "250", "j:1"), 0);
	CHECK_EQ_U64(o.think, 250 * NSEC_PER_USEC);
	CHECK_EQ_INT(set_one(err, sizeof(err), "thinktime", "3ms", "j:2"), 0);
	CHECK_EQ_U64(o.think, 3 * NSEC_PER_MSEC);
	CHECK_EQ_INT(set_one(err, sizeof(err), "thinktime", "2s", "j:2"), 0);
	CHECK_EQ_U64(o.think, 2 * NSEC_PER_SEC);
	CHECK_EQ_INT(set_one(err, sizeof(err), "file-name", "f", "j:3"), 0);
	CHECK(o.file && !strcmp(o.file, "f") && !*err);
	CHECK_EQ_INT(set_one(err, sizeof(err), "thinktime", "1d", "j:4: thinktime=1d"),
		     -EINVAL);
	CHECK_MSG(!strcmp(err, "prog: j:4: thinktime=1d: expected a time like 100 "
			  "(microseconds), 100us, 5ms or 1s\n"), "%s", err);
	CHECK_EQ_INT(set_one(err, sizeof(err), "nope", "1", "j:5: nope=1"), -ENOENT);
	CHECK_MSG(!strcmp(err, "prog: j:5: nope=1: unknown option nope (prog "
			  "--help lists them)\n"), "%s", err);
	CHECK_EQ_INT(set_one(err, sizeof(err), "nope", "1", "--nope=1"), -ENOENT);
	CHECK_MSG(!strcmp(err, "prog: unknown option --nope (prog --help lists "
			  "them)\n"), "%s", err);
	CHECK_EQ_INT(set_one(err, sizeof(err), "name", "a", "--name=a"), 0);
	CHECK_EQ_INT(set_one(err, sizeof(err), "name", "b", "--name=b"), -EINVAL);
	CHECK_MSG(!strcmp(err, "prog: --name=b: only once\n"), "%s", err);
}

int main(void)
{
	test_init(2);
	test_sizes();
	test_times();
	test_table();
	test_set_one();
	return test_report();
}
