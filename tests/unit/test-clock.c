// SPDX-License-Identifier: MIT
/*
 * lib/clock.c: the environment forces the fallback (checked in a child
 * before this process reads the clock); four threads' first reads race to
 * calibrate; then for each source that works here: monotonic over many reads on two threads, in step with
 * CLOCK_MONOTONIC over a 50 ms sleep (within 2%) and close to it in
 * absolute terms, and clock_set_source() switching both ways.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/time.h"
#include "testlib.h"

/* In a child, so that the parent's first use still sees no variable. */
static void test_env_fallback(void)
{
	pid_t pid;
	int status;

	test_begin("BLKSTACK_CLOCKSOURCE=clock_gettime", 10);
	pid = fork();
	REQUIRE(pid >= 0);
	if (!pid) {
		setenv("BLKSTACK_CLOCKSOURCE", "clock_gettime", 1);
		_exit(strcmp(clock_source_name(), "clock_gettime") ? 1 : 0);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child's source was not clock_gettime (status 0x%x)",
		  status);
}

static pthread_barrier_t first_barrier;

static void *first_use(void *arg)
{
	pthread_barrier_wait(&first_barrier);
	*(uint64_t *)arg = clock_ns();
	return NULL;
}

/* The first reads race to calibrate: one calibration, one answer. */
static void test_first_use(void)
{
	uint64_t t[4], after;
	pthread_t thr[4];

	test_begin("first use from four threads at once", 10);
	pthread_barrier_init(&first_barrier, NULL, 4);
	for (int i = 0; i < 4; i++)
		REQUIRE(!pthread_create(&thr[i], NULL, first_use, &t[i]));
	for (int i = 0; i < 4; i++)
		pthread_join(thr[i], NULL);
	pthread_barrier_destroy(&first_barrier);
	after = clock_ns();
	for (int i = 0; i < 4; i++)
		CHECK_MSG(t[i] <= after && after - t[i] < NSEC_PER_SEC,
			  "thread %d read %llu, later %llu", i,
			  (unsigned long long)t[i], (unsigned long long)after);
}

static void *monotonic_reads(void *arg)
{
	unsigned long n = (unsigned long)(uintptr_t)arg, back = 0;
	uint64_t prev = clock_ns();

	for (unsigned long i = 0; i < n; i++) {
		uint64_t t = clock_ns();

		back += t < prev;
		prev = t;
	}
	return (void *)(uintptr_t)back;
}

static void check_monotonic(void)
{
	unsigned long n = test_slow() ? 200000 : 2000000;
	pthread_t thr;
	void *back_thr, *back;
	uint64_t before, after;

	REQUIRE(!pthread_create(&thr, NULL, monotonic_reads, (void *)(uintptr_t)n));
	back = monotonic_reads((void *)(uintptr_t)n);
	before = clock_ns();	/* read here, then after a read there */
	REQUIRE(!pthread_join(thr, &back_thr));
	after = clock_ns();
	CHECK_MSG(!back && !back_thr, "%s went back %lu + %lu times in 2 x %lu reads",
		  clock_source_name(), (unsigned long)(uintptr_t)back,
		  (unsigned long)(uintptr_t)back_thr, n);
	CHECK(after >= before);
}

/* clock_ns() and CLOCK_MONOTONIC over a 50 ms sleep: within 2%. */
static void check_rate(void)
{
	uint64_t c0 = clock_ns(), m0 = ktime_get_ns(), c1, m1, dc, dm, off;

	test_sleep_ms(50);
	c1 = clock_ns();
	m1 = ktime_get_ns();
	dc = c1 - c0;
	dm = m1 - m0;
	CHECK_MSG(dc * 100 >= dm * 98 && dc * 100 <= dm * 102,
		  "%s: %llu ns while CLOCK_MONOTONIC saw %llu ns",
		  clock_source_name(), (unsigned long long)dc,
		  (unsigned long long)dm);
	/* the same epoch: a few reads, the closest pair within 1 ms */
	off = UINT64_MAX;
	for (int i = 0; i < 10; i++) {
		uint64_t m = ktime_get_ns(), c = clock_ns();
		uint64_t d = c > m ? c - m : m - c;

		off = d < off ? d : off;
	}
	CHECK_MSG(off < NSEC_PER_MSEC, "%s is %llu ns away from CLOCK_MONOTONIC",
		  clock_source_name(), (unsigned long long)off);
}

static void check_source(const char *want)
{
	char name[64];

	snprintf(name, sizeof(name), "source %s", want);
	test_begin(name, 60);
	CHECK(!strcmp(clock_source_name(), want));
	check_monotonic();
	check_rate();
}

int main(void)
{
	bool tsc;

	test_init(2);
	test_env_fallback();
	unsetenv("BLKSTACK_CLOCKSOURCE");
	test_first_use();
	tsc = clock_tsc_usable();
	fprintf(stderr, "TSC usable: %s\n", tsc ? "yes" : "no");
	/* the default is the TSC whenever it can be used */
	test_begin("default", 10);
	CHECK(!strcmp(clock_source_name(), tsc ? "tsc" : "clock_gettime"));
	if (tsc)
		check_source("tsc");
	CHECK_EQ_INT(clock_set_source(CLOCK_SOURCE_GETTIME), 0);
	check_source("clock_gettime");
	CHECK_EQ_INT(clock_set_source(CLOCK_SOURCE_TSC), tsc ? 0 : -ENODEV);
	CHECK(!strcmp(clock_source_name(), tsc ? "tsc" : "clock_gettime"));
	return test_report();
}
