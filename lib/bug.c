// SPDX-License-Identifier: MIT
#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bug.h"

static _Thread_local bug_dump_fn bug_dumper;
static _Thread_local void *bug_dumper_arg;
static _Atomic unsigned long warn_count;
#if defined(__SANITIZE_THREAD__)
_Atomic unsigned long __smp_mb_word;
#endif
static pthread_mutex_t bug_print_lock = PTHREAD_MUTEX_INITIALIZER;

void bug_set_dumper(bug_dump_fn fn, void *arg)
{
	bug_dumper = fn;
	bug_dumper_arg = arg;
}

unsigned long bug_warn_count(void)
{
	return atomic_load(&warn_count);
}

static void print_backtrace(void)
{
	void *frames[32];
	int n = backtrace(frames, ARRAY_SIZE(frames));

	fputs("Call Trace:\n", stderr);
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
}

static void report(const char *kind, const char *file, int line,
		   const char *func, const char *cond)
{
	fprintf(stderr, "------------[ cut here ]------------\n"
		"%s at %s:%d %s(): %s (thread %d)\n",
		kind, file, line, func, cond, (int)gettid());
	print_backtrace();
}

void __bug(const char *file, int line, const char *func, const char *cond)
{
	pthread_mutex_lock(&bug_print_lock);
	report("kernel BUG", file, line, func, cond);
	if (bug_dumper) {
		fputs("---[ state of the object involved ]---\n", stderr);
		bug_dumper(bug_dumper_arg);
	}
	fputs("---[ end trace ]---\n", stderr);
	fflush(stderr);
	abort();
}

void __warn(const char *file, int line, const char *func, const char *cond)
{
	atomic_fetch_add(&warn_count, 1);
	pthread_mutex_lock(&bug_print_lock);
	report("WARNING", file, line, func, cond);
	fputs("---[ end trace ]---\n", stderr);
	pthread_mutex_unlock(&bug_print_lock);
}

bool __warn_ratelimit_ok(long long *last_ns, int *count)
{
	struct timespec ts;
	long long now, last;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	last = __atomic_load_n(last_ns, __ATOMIC_RELAXED);
	if (now - last > 1000000000LL) {
		__atomic_store_n(last_ns, now, __ATOMIC_RELAXED);
		__atomic_store_n(count, 0, __ATOMIC_RELAXED);
	}
	return __atomic_fetch_add(count, 1, __ATOMIC_RELAXED) < 10;
}
