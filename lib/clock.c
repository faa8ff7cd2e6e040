// SPDX-License-Identifier: MIT
/*
 * clock_ns(): the TSC scaled by mult >> 32, or clock_gettime().
 *
 * The source is chosen on the first call from any thread (pthread_once);
 * after that a reading is one acquire load (a plain load on x86), rdtsc,
 * a 64x64->128 multiply and a shift. The calibration fields are written
 * once, before the source is published, and never again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#define CLOCK_HAVE_TSC 1
#endif

#include "clock.h"
#include "compiler.h"
#include "time.h"

#define TSC_CALIBRATE_NS	(15 * NSEC_PER_MSEC)
#define TSC_SHIFT		32

static struct {
	uint64_t tsc_base, ns_base;	/* one pair read at the same time */
	uint64_t mult;			/* ns per cycle << TSC_SHIFT */
	bool usable;
} tsc;

static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;
static _Atomic int clock_src = -1;	/* enum clock_source once chosen */

/* Both flags, as whole words of the first "flags" line of /proc/cpuinfo. */
static bool tsc_cpu_flags(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char *line = NULL, *tok, *save;
	size_t len = 0;
	int found = 0;

	if (!f)
		return false;
	while (getline(&line, &len, f) > 0) {
		if (strncmp(line, "flags", 5))
			continue;
		for (tok = strtok_r(line, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save)) {
			if (!strcmp(tok, "constant_tsc"))
				found |= 1;
			else if (!strcmp(tok, "nonstop_tsc"))
				found |= 2;
		}
		break;
	}
	free(line);
	fclose(f);
	return found == 3;
}

#ifdef CLOCK_HAVE_TSC
static inline uint64_t tsc_read(void)
{
	return __rdtsc();
}

static inline uint64_t tsc_to_ns(uint64_t cyc)
{
	int64_t d = (int64_t)(cyc - tsc.tsc_base);

	/* another CPU's TSC may be a few cycles behind the base */
	if (unlikely(d < 0))
		return tsc.ns_base - (uint64_t)(((unsigned __int128)-d *
						 tsc.mult) >> TSC_SHIFT);
	return tsc.ns_base + (uint64_t)(((unsigned __int128)d * tsc.mult) >>
					TSC_SHIFT);
}

/* A TSC reading and the CLOCK_MONOTONIC time it was taken at, +- 1/2 gap. */
static void tsc_pair(uint64_t *ns, uint64_t *cyc)
{
	uint64_t best = UINT64_MAX;

	/* the tightest of a few tries: no preemption between the reads */
	for (int i = 0; i < 5; i++) {
		uint64_t t0 = ktime_get_ns(), c = tsc_read();
		uint64_t t1 = ktime_get_ns();

		if (t1 - t0 < best) {
			best = t1 - t0;
			*ns = t0 + (t1 - t0) / 2;
			*cyc = c;
		}
	}
}

static void tsc_calibrate(void)
{
	struct timespec ts = ns_to_timespec(TSC_CALIBRATE_NS);
	uint64_t ns0, c0, ns1, c1, dns, dc;

	if (!tsc_cpu_flags())
		return;
	tsc_pair(&ns0, &c0);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	tsc_pair(&ns1, &c1);
	dns = ns1 - ns0;
	dc = c1 - c0;
	/* between 100 MHz and 100 GHz, or something is off: do not trust it */
	if (dns < TSC_CALIBRATE_NS / 2 || dc < dns / 10 || dc > dns * 100)
		return;
	tsc.mult = (uint64_t)(((unsigned __int128)dns << TSC_SHIFT) / dc);
	tsc.tsc_base = c1;
	tsc.ns_base = ns1;
	tsc.usable = true;
}
#else
static inline uint64_t tsc_read(void)
{
	return 0;
}

static inline uint64_t tsc_to_ns(uint64_t cyc)
{
	return cyc;
}

static void tsc_calibrate(void)
{
	(void)tsc_cpu_flags;	/* no TSC on this architecture */
}
#endif

bool clock_tsc_usable(void)
{
	pthread_once(&tsc_once, tsc_calibrate);
	return tsc.usable;
}

/* The default: the TSC when usable and not refused by the environment. */
static void clock_choose(void)
{
	const char *env = getenv("BLKSTACK_CLOCKSOURCE");
	int src = CLOCK_SOURCE_GETTIME, none = -1;

	if (!(env && !strcmp(env, "clock_gettime")) && clock_tsc_usable())
		src = CLOCK_SOURCE_TSC;
	/* a clock_set_source() that came first wins */
	atomic_compare_exchange_strong(&clock_src, &none, src);
}

static int clock_get_source(void)
{
	int src = atomic_load_explicit(&clock_src, memory_order_acquire);

	if (unlikely(src < 0)) {
		pthread_once(&clock_once, clock_choose);
		src = atomic_load_explicit(&clock_src, memory_order_acquire);
	}
	return src;
}

uint64_t clock_ns(void)
{
	if (clock_get_source() == CLOCK_SOURCE_TSC)
		return tsc_to_ns(tsc_read());
	return ktime_get_ns();
}

const char *clock_source_name(void)
{
	return clock_get_source() == CLOCK_SOURCE_TSC ? "tsc" : "clock_gettime";
}

int clock_set_source(enum clock_source src)
{
	if (src == CLOCK_SOURCE_TSC && !clock_tsc_usable())
		return -ENODEV;
	atomic_store_explicit(&clock_src, (int)src, memory_order_release);
	return 0;
}
