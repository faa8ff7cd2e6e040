/* SPDX-License-Identifier: MIT */
/*
 * A cheap monotonic nanosecond clock for per-I/O timestamps, like fio's
 * clocksource=cpu: the TSC scaled to nanoseconds when the CPU says its
 * rate is constant and it keeps counting in sleep states (constant_tsc and
 * nonstop_tsc in /proc/cpuinfo), else clock_gettime(CLOCK_MONOTONIC).
 *
 * The TSC is calibrated against CLOCK_MONOTONIC (~15 ms) on first use
 * from any thread, and its readings start from CLOCK_MONOTONIC's value at
 * calibration, so the two clocks can be compared (over seconds they drift
 * apart by the calibration error, about 10 ppm).
 *
 * BLKSTACK_CLOCKSOURCE=clock_gettime in the environment, read on first
 * use, forces the fallback; clock_set_source() switches at any time.
 */
#ifndef BLKSTACK_LIB_CLOCK_H
#define BLKSTACK_LIB_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

enum clock_source {
	CLOCK_SOURCE_TSC,		/* fio's "cpu" */
	CLOCK_SOURCE_GETTIME,		/* clock_gettime(CLOCK_MONOTONIC) */
};

/*
 * Nanoseconds, monotonic as the TSC is: always on one CPU, and across CPUs
 * to within their synchronisation (a few cycles where the kernel trusts
 * the TSC; a thread that migrates may see such a step back).
 */
uint64_t clock_ns(void);

/* "tsc" or "clock_gettime": what clock_ns() reads now. */
const char *clock_source_name(void);

/* Whether this CPU's TSC can be used (calibrates it the first time). */
bool clock_tsc_usable(void);

/*
 * 0, or -ENODEV when asked for the TSC and it cannot be used. A switch may
 * step the time by the two clocks' drift: switch before timing anything.
 */
int clock_set_source(enum clock_source src);

#endif
