// SPDX-License-Identifier: MIT
/*
 * lib/json.c: the exact layout (fio's), string escaping, numbers, misuse
 * caught by a WARN with valid output anyway, and a round trip through
 * Python's json parser (skipped, visibly, without /usr/bin/python3).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bug.h"
#include "lib/json.h"
#include "testlib.h"

#define PYTHON	"/usr/bin/python3"

static char *buf;
static size_t len;
static FILE *mem;

static struct json_writer *begin(struct json_writer *w)
{
	mem = open_memstream(&buf, &len);
	json_init(w, mem);
	return w;
}

/* Close the stream and compare what was written with @want. */
static bool output_is(const char *want)
{
	bool ok;

	fclose(mem);
	ok = CHECK_MSG(!strcmp(buf, want), "wrote\n%s\nwanted\n%s", buf, want);
	free(buf);
	return ok;
}

static void test_layout(void)
{
	struct json_writer w;

	test_begin("layout", 10);
	begin(&w);
	json_open_object(&w, NULL);
	json_string(&w, "fio version", "blkbench-0.1");
	json_open_array(&w, "jobs");
	json_open_object(&w, NULL);
	json_u64(&w, "N", 3);
	json_open_object(&w, "empty");
	json_close_object(&w);
	json_close_object(&w);
	json_u64(&w, NULL, 7);
	json_close_array(&w);
	json_bool(&w, "t", true);
	json_null(&w, "n");
	json_close_object(&w);
	output_is("{\n"
		  "  \"fio version\" : \"blkbench-0.1\",\n"
		  "  \"jobs\" : [\n"
		  "    {\n"
		  "      \"N\" : 3,\n"
		  "      \"empty\" : {\n"
		  "      }\n"
		  "    },\n"
		  "    7\n"
		  "  ],\n"
		  "  \"t\" : true,\n"
		  "  \"n\" : null\n"
		  "}\n");

	/* documents one after another, each ending its line */
	begin(&w);
	json_open_array(&w, NULL);
	json_close_array(&w);
	json_open_object(&w, NULL);
	json_close_object(&w);
	output_is("[\n]\n{\n}\n");
}

static void test_escaping(void)
{
	struct json_writer w;

	test_begin("escaping", 10);
	begin(&w);
	json_open_object(&w, NULL);
	json_string(&w, "q\"k\\", "a\"b\\c/d\n\t\x01\x1f\x7f \xc3\xa9");
	json_close_object(&w);
	output_is("{\n  \"q\\\"k\\\\\" : "
		  "\"a\\\"b\\\\c/d\\u000a\\u0009\\u0001\\u001f\x7f \xc3\xa9\"\n}\n");
}

static void test_numbers(void)
{
	struct json_writer w;

	test_begin("numbers", 10);
	begin(&w);
	json_open_array(&w, NULL);
	json_u64(&w, NULL, 0);
	json_u64(&w, NULL, UINT64_MAX);
	json_s64(&w, NULL, INT64_MIN);
	json_double(&w, NULL, 1.5);
	json_double(&w, NULL, -0.0000004);	/* fio's %f: six places */
	json_double(&w, NULL, 123456789.123456789);
	json_double(&w, NULL, NAN);		/* not JSON: written as 0 */
	json_double(&w, NULL, -INFINITY);
	json_close_array(&w);
	output_is("[\n  0,\n  18446744073709551615,\n  -9223372036854775808,\n"
		  "  1.500000,\n  -0.000000,\n  123456789.123457,\n"
		  "  0.000000,\n  0.000000\n]\n");
}

/*
 * A key where none belongs and none where one does: WARN (once per call
 * site, so twice here), stay valid.
 */
static void test_misuse(void)
{
	unsigned long warns = bug_warn_count();
	struct json_writer w;

	test_begin("misuse", 10);
	test_allow_warns(2);
	begin(&w);
	json_open_object(&w, NULL);
	json_u64(&w, NULL, 1);			/* no key in an object */
	json_open_array(&w, "a");
	json_u64(&w, "k", 2);			/* a key in an array */
	json_close_object(&w);			/* wrong kind: ignored */
	json_close_array(&w);
	json_close_object(&w);
	CHECK_EQ_U64(bug_warn_count() - warns, 2);
	output_is("{\n  \"\" : 1,\n  \"a\" : [\n    2\n  ]\n}\n");
}

/* A document with every ASCII character and nesting, checked by Python. */
static void test_python(void)
{
	static const char check[] =
		PYTHON " -c 'import json, sys\n"
		"d = json.load(sys.stdin)\n"
		"s = \"\".join(chr(c) for c in range(1, 128))\n"
		"ok = d[s] == s and d[\"n\"] == [0, 18446744073709551615, -5, 2.5]\n"
		"ok = ok and d[\"o\"] == {\"a\": [[], {}, [True, None]], \"e\": \"\"}\n"
		"sys.exit(0 if ok else 1)'";
	struct json_writer w;
	char all[128];
	FILE *py;
	int status;

	test_begin("round trip through python3", 30);
	if (access(PYTHON, X_OK)) {
		fprintf(stderr, "SKIP part: no %s\n", PYTHON);
		return;
	}
	for (int c = 1; c < 128; c++)
		all[c - 1] = (char)c;
	all[127] = 0;
	py = popen(check, "w");
	REQUIRE(py);
	json_init(&w, py);
	json_open_object(&w, NULL);
	json_string(&w, all, all);
	json_open_array(&w, "n");
	json_u64(&w, NULL, 0);
	json_u64(&w, NULL, UINT64_MAX);
	json_s64(&w, NULL, -5);
	json_double(&w, NULL, 2.5);
	json_close_array(&w);
	json_open_object(&w, "o");
	json_open_array(&w, "a");
	json_open_array(&w, NULL);
	json_close_array(&w);
	json_open_object(&w, NULL);
	json_close_object(&w);
	json_open_array(&w, NULL);
	json_bool(&w, NULL, true);
	json_null(&w, NULL);
	json_close_array(&w);
	json_close_array(&w);
	json_string(&w, "e", "");
	json_close_object(&w);
	json_close_object(&w);
	status = pclose(py);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "python3 rejected the document (status 0x%x)", status);
}

int main(void)
{
	test_init(2);
	test_layout();
	test_escaping();
	test_numbers();
	test_misuse();
	test_python();
	return test_report();
}
